"""Alembic migrations: from empty they build exactly the schema the adapter uses, and an older schema
holding data upgrades to the newest without losing it (SQLite, PostgreSQL, MariaDB)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.pool import NullPool

import pycrm
from pycrm import Customer
from pycrm.storage.sql.migrate import alembic_config, head_revision
from pycrm.storage.sql.tables import VERSION_TABLE, metadata


def _revision(conn: sa.Connection) -> str | None:
    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def test_migrations_from_empty_build_exactly_the_tables(sql_url: str) -> None:
    pycrm.open(sql_url).close()  # opening migrates an empty database to the head revision
    engine = sa.create_engine(sql_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            assert _revision(conn) == head_revision()
            ctx = MigrationContext.configure(conn, opts={"compare_type": False, "version_table": VERSION_TABLE})
            diffs = [d for d in compare_metadata(ctx, metadata) if not (isinstance(d, tuple) and d[0] == "remove_table")]
            assert diffs == []
    finally:
        engine.dispose()


def test_a_store_at_the_first_revision_upgrades_with_its_data(sql_url: str) -> None:
    crm = pycrm.open(sql_url)
    with crm.session() as s:
        a = s.customers.add(Customer("Acme Ltd", emails=["a@acme.com"]))
        b = s.customers.add(Customer("ACME LIMITED", emails=["b@acme.com"]))
    crm.close()
    engine = sa.create_engine(sql_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:  # back to the first release's schema, data in place
            command.downgrade(alembic_config(conn), "0001")  # type: ignore[arg-type]
        with engine.connect() as conn:
            assert _revision(conn) == "0001"
            assert "pycrm_records" not in sa.inspect(conn).get_table_names()
    finally:
        engine.dispose()
    crm = pycrm.open(sql_url)  # upgrades to the head revision
    try:
        with crm.session() as s:
            assert s.customers.get(a.id) == a
            record = s.customers.merge(a.id, [b.id])  # needs the records table of revision 0002
        with crm.session() as s:
            assert [e.value for e in s.customers.get(a.id).emails] == ["a@acme.com", "b@acme.com"]
            assert s.customers.merges()[0].id == record.id
    finally:
        crm.close()
