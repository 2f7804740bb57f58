"""``import_file(..., exclusive=True)``: an SQLite file held for the import leaves write-ahead logging while
it runs (pages written once, behind a rollback journal) and gets it back after; what is stored is the same."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pycrm
from pycrm.io import ImportRejected, import_file

ROWS = 300
CSV = "客户编号,名称,手机,邮箱,标签\n" + "".join(
    f"C{i},客户 {i},138{i:08d},user{i}@example{i % 7}.com,{'vip' if i % 3 == 0 else ''}\n" for i in range(ROWS)
)


def _journal(db: Path) -> str:
    """The file's journal mode from its header (bytes 18-19: 1 rollback journal, 2 write-ahead log), read by
    another process: a connection would wait for the import, and closing a file this process has open
    would drop the import's locks on it (POSIX advisory locks are per process)."""
    head = subprocess.run(["head", "-c", "20", str(db)], check=True, capture_output=True).stdout[18:20]
    return {b"\x01\x01": "rollback", b"\x02\x02": "wal"}.get(head, repr(head))


def _stored(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT c.name, c.emails, c.phones, c.tags, c.custom, e.email, p.phone FROM customers c"
            " JOIN customer_emails e ON e.customer_id = c.id JOIN customer_phones p ON p.customer_id = c.id ORDER BY c.name"
        ).fetchall()


def _import(db: Path, path: Path, workers: int = 1, **kwargs: Any) -> tuple[pycrm.io.ImportReport, list[str]]:
    modes: list[str] = []
    with pycrm.open(f"sqlite:///{db}", default_region="CN") as crm:
        report = import_file(crm, path, batch_size=50, workers=workers, progress=lambda n: modes.append(_journal(db)), **kwargs)
        assert crm.audit.verify().ok
    return report, modes


@pytest.mark.parametrize("workers", [1, 2])  # 2: worker processes forked while the file is held
def test_an_exclusive_import_stores_what_a_plain_one_does(tmp_path: Path, write_csv: Callable[..., Path], workers: int) -> None:
    path = write_csv("c.csv", CSV)
    plain, plain_modes = _import(tmp_path / "plain.db", path, workers)
    held, held_modes = _import(tmp_path / "held.db", path, workers, exclusive=True)
    assert (plain.exclusive, held.exclusive) == (False, True)
    assert held.created == plain.created == ROWS
    assert set(plain_modes) == {"wal"}
    assert set(held_modes) == {"rollback"}  # while it ran: no write-ahead log
    assert not (tmp_path / "held.db-journal").exists()
    assert _journal(tmp_path / "held.db") == "wal"  # and back after
    assert _stored(tmp_path / "held.db") == _stored(tmp_path / "plain.db")
    with sqlite3.connect(tmp_path / "held.db") as conn:
        assert conn.execute("SELECT count(*) FROM pycrm_audit").fetchone()[0] == ROWS
        assert conn.execute("SELECT count(*) FROM pycrm_changes").fetchone()[0] == ROWS
    again, _ = _import(tmp_path / "held.db", path, exclusive=True)  # upserts as usual
    assert (again.created, again.unchanged) == (0, ROWS)


def test_a_store_someone_else_has_open_is_imported_through_the_log(tmp_path: Path, write_csv: Callable[..., Path]) -> None:
    db = tmp_path / "crm.db"
    with pycrm.open(f"sqlite:///{db}") as crm, crm.session() as s:
        s.customers.add(pycrm.Customer("Before"))
    other = sqlite3.connect(db)  # another reader of the file, in write-ahead-log mode
    try:
        assert other.execute("SELECT count(*) FROM customers").fetchone() == (1,)
        report, modes = _import(db, write_csv("c.csv", CSV), exclusive=True)
        assert report.exclusive is False
        assert report.created == ROWS
        assert set(modes) == {"wal"}
        assert other.execute("SELECT count(*) FROM customers").fetchone() == (ROWS + 1,)
    finally:
        other.close()
    assert _journal(db) == "wal"


def test_a_failed_exclusive_import_leaves_the_store_as_it_was(tmp_path: Path, write_csv: Callable[..., Path]) -> None:
    db = tmp_path / "crm.db"
    with pycrm.open(f"sqlite:///{db}") as crm, crm.session() as s:
        s.customers.add(pycrm.Customer("Before"))
    before = _stored(db)
    bad = CSV + "C9999,Bad,not a phone,x@y.com,\n"
    with pycrm.open(f"sqlite:///{db}", default_region="CN") as crm:
        with pytest.raises(ImportRejected) as caught:
            import_file(crm, write_csv("bad.csv", bad), batch_size=50, workers=1, exclusive=True)
        assert caught.value.report.exclusive is True
        assert "row 302" in str(caught.value)
    assert _journal(db) == "wal"
    assert not (tmp_path / "crm.db-journal").exists()
    assert _stored(db) == before
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM pycrm_audit").fetchone() == (1,)


def test_the_log_comes_back_when_the_store_is_next_opened(
    tmp_path: Path, write_csv: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Should another connection hold the file when the import ends, the store stays in rollback-journal mode
    (with a warning) until it is next opened."""
    from pycrm.storage.sql.store import SQLStore

    db = tmp_path / "crm.db"
    real = SQLStore._journal_mode
    monkeypatch.setattr(SQLStore, "_journal_mode", lambda self, was, mode: real(self, was, mode) if mode == "delete" else False)
    with caplog.at_level(logging.WARNING), pycrm.open(f"sqlite:///{db}", default_region="CN") as crm:
        assert import_file(crm, write_csv("c.csv", CSV), workers=1, exclusive=True).exclusive
    assert "stays in rollback-journal mode" in caplog.text
    assert _journal(db) == "rollback"
    monkeypatch.undo()
    with pycrm.open(f"sqlite:///{db}") as crm, crm.session() as s:
        assert s.customers.count() == ROWS
    assert _journal(db) == "wal"


def test_exclusive_changes_nothing_elsewhere(crm: pycrm.CRM, write_csv: Callable[..., Path]) -> None:
    """Memory, PostgreSQL, MariaDB: the import runs as usual (an SQLite file is held, as above)."""
    sqlite_file = getattr(crm.store, "dialect", None) == "sqlite" and not crm.store._memory
    report = import_file(crm, write_csv("c.csv", CSV), batch_size=50, workers=1, exclusive=True)
    assert (report.exclusive, report.created) == (sqlite_file, ROWS)
    assert import_file(crm, write_csv("c.csv", CSV), dry_run=True, exclusive=True).exclusive is False


def test_in_memory_sqlite_is_left_alone(write_csv: Callable[..., Path]) -> None:
    with pycrm.open("sqlite://", default_region="CN") as crm:
        report = import_file(crm, write_csv("c.csv", CSV), workers=1, exclusive=True)
        assert (report.exclusive, report.created) == (False, ROWS)


def test_an_application_engine_is_left_alone(tmp_path: Path, write_csv: Callable[..., Path]) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        with pycrm.open(engine, default_region="CN") as crm:
            report = import_file(crm, write_csv("c.csv", CSV), workers=1, exclusive=True)
        assert (report.exclusive, report.created) == (False, ROWS)
    finally:
        engine.dispose()


def test_bad_exclusive_values(crm: pycrm.CRM, write_csv: Callable[..., Path]) -> None:
    path = write_csv("c.csv", CSV)
    with pytest.raises(pycrm.ValidationError) as caught:
        import_file(crm, path, exclusive="yes")  # type: ignore[arg-type]
    assert caught.value.errors[0].field == "exclusive"
    with crm.session() as s, pytest.raises(pycrm.ValidationError) as caught:
        import_file(s, path, exclusive=True)
    assert caught.value.errors[0].field == "exclusive"
    assert "pass the CRM" in caught.value.errors[0].message
    with pytest.raises(pycrm.ValidationError) as caught:
        import_file(crm, path, exclusive=True, per_batch=True)
    assert (caught.value.errors[0].field, caught.value.errors[0].code) == ("exclusive", "per_batch")


def test_a_file_not_in_log_mode_is_not_held(tmp_path: Path, write_csv: Callable[..., Path]) -> None:
    """Another exclusive import has the file in rollback-journal mode: this one neither claims it nor puts the
    log back under the other."""
    db = tmp_path / "crm.db"
    with pycrm.open(f"sqlite:///{db}", default_region="CN") as crm:
        assert crm.store._journal_mode("wal", "delete")
        assert not crm.store._journal_mode("wal", "delete")  # not in log mode any more
        report = import_file(crm, write_csv("c.csv", CSV), workers=1, exclusive=True)
        assert (report.exclusive, report.created) == (False, ROWS)
        assert _journal(db) == "rollback"  # left as the other import has it
