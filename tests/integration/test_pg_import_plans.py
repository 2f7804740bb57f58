"""On PostgreSQL, an import into a fresh store looks records up through its indexes from the first row.

A table filled in the import's own transaction has no planner statistics yet; with the planner's guess of
a few rows every existence check was a sequential scan of everything imported so far, so each batch cost
more than the one before (100,000 rows: 139-250 s). Counted here, not timed: the rows the transaction read
by sequential scans stay far below what scanning the table once per batch would read."""

from __future__ import annotations

from pathlib import Path

import pytest

import pycrm
from pycrm.io import import_file
from tests.conftest import store_url_for

ROWS, BATCH = 4000, 500


@pytest.mark.postgres
def test_an_import_into_a_fresh_store_reads_no_table_sequentially(tmp_path: Path) -> None:
    url = store_url_for("postgres", tmp_path)
    path = tmp_path / "c.csv"
    path.write_text("name,email\n" + "".join(f"Name {i},user{i}@example.com\n" for i in range(ROWS)), encoding="utf-8")
    crm = pycrm.open(url)
    try:
        with crm.session() as s:
            import_file(s, path, batch_size=BATCH)
            tx = s.unit.transaction()
            read = tx.connection.exec_driver_sql(  # type: ignore[attr-defined]
                "SELECT coalesce(sum(seq_tup_read), 0) FROM pg_stat_xact_user_tables"
            ).scalar()
        # a scan per batch of the rows before it would read sum(500, 1000, ..., 3500) = 14,000 rows
        assert read < BATCH, read
        with crm.session() as s:
            assert s.customers.count() == ROWS
    finally:
        crm.close()
