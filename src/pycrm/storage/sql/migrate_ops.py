"""Restartable schema steps for pycrm's migrations: each one looks at what the database has and does only
what is missing, so a revision cut short by a crash is completed by the next run of the same revision.

MariaDB/MySQL commit every ``CREATE``/``ALTER``/``DROP`` on their own, and Alembic writes the new revision
to the version table only after the whole revision ran: a process killed in the middle of a revision leaves
its first tables in place under the old revision number, and the next open runs the revision again from
its start. PostgreSQL and SQLite roll the whole upgrade back instead (pycrm runs it in one transaction);
the same steps are correct there too, they simply always find nothing done.

Every migration script (``migrations/versions``) makes its schema changes through these functions instead
of ``alembic.op``'s directly (or behind checks of its own, as revision 0005's table rebuilds), and makes each
data step safe to run twice (:func:`insert_missing`, or an ``UPDATE`` that sets the same values again).
The functions only run inside an Alembic migration (they use ``alembic.op``); the checks read the catalog
through SQLAlchemy's inspector, afresh for every step. In offline mode (``alembic upgrade --sql``) there is
no database to look at: every step is written out. ``tests/integration/test_crash_open.py`` runs every
revision, new ones included, killed after each DDL statement on MariaDB and on SQLite without a transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from alembic.util import CommandError
from sqlalchemy.schema import SchemaItem

__all__ = [
    "add_column",
    "create_index",
    "create_table",
    "drop_column",
    "drop_index",
    "drop_table",
    "has_column",
    "has_index",
    "has_table",
    "insert_missing",
    "offline",
    "rename_table",
]


def offline() -> bool:
    """Whether Alembic writes a script (``--sql``) instead of running on a database."""
    return bool(op.get_context().as_sql)


def _inspector() -> sa.Inspector:
    return sa.inspect(op.get_bind())  # a new inspector: no cached answer from before the last step


def has_table(name: str) -> bool:
    """Whether the table exists (offline: False, so the script creates it)."""
    return not offline() and _inspector().has_table(name)


def _columns(table: str) -> set[str]:
    if offline():
        return set()
    return {c["name"] for c in _inspector().get_columns(table)}


def has_column(table: str, name: str) -> bool:
    return name in _columns(table)


def _index_columns(table: str, name: str) -> list[str | None] | None:
    if offline():
        return None
    inspector = _inspector()
    if not inspector.has_index(table, name):  # one catalog query on PostgreSQL, cheaper than all indexes
        return None
    for index in inspector.get_indexes(table):
        if index["name"] == name:
            return list(index["column_names"])
    return None


def has_index(table: str, name: str) -> bool:
    return _index_columns(table, name) is not None


def create_table(name: str, *items: SchemaItem, **kw: Any) -> sa.Table:
    """``op.create_table`` unless the table exists; returns the table either way (for :func:`insert_missing`).

    A table that exists must have every column named here (``CREATE TABLE`` is atomic, so a table of
    pycrm's own has them all): one without them is someone else's, and the migration stops saying so."""
    if not has_table(name):
        return op.create_table(name, *items, **kw)
    table = sa.Table(name, sa.MetaData(), *items, **kw)
    there = _columns(name)
    missing = [c.name for c in table.columns if c.name not in there]
    if missing:
        raise CommandError(f"table {name!r} exists without the column(s) {', '.join(missing)}: it is not pycrm's")
    return table


def create_index(name: str, table: str, columns: Sequence[str], **kw: Any) -> None:
    """``op.create_index`` unless the table has an index of that name, which must be on the same columns."""
    found = _index_columns(table, name)
    if found is None:
        op.create_index(name, table, list(columns), **kw)
    elif found != list(columns):
        raise CommandError(f"index {name!r} on {table!r} exists on {found}, not {list(columns)}: it is not pycrm's")


def add_column(table: str, column: sa.Column[Any]) -> None:
    """``op.add_column`` unless the table has a column of that name."""
    if not has_column(table, column.name):
        op.add_column(table, column)


def drop_column(table: str, name: str) -> None:
    if offline() or has_column(table, name):
        op.drop_column(table, name)


def drop_index(name: str, table: str) -> None:
    if offline() or (has_table(table) and has_index(table, name)):
        op.drop_index(name, table_name=table)


def drop_table(name: str) -> None:
    if offline() or has_table(name):
        op.drop_table(name)


def rename_table(old: str, new: str) -> None:
    """Rename ``old`` to ``new``; done already when only ``new`` is there."""
    if offline() or has_table(old):
        op.rename_table(old, new)
    elif not has_table(new):
        raise CommandError(f"cannot rename table {old!r} to {new!r}: neither exists")


def insert_missing(table: sa.Table, key: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert the rows whose ``key`` columns match no row of ``table`` yet; return how many were inserted.

    For a data step after a ``CREATE TABLE``: on MariaDB the table can survive a crash without its rows."""
    if offline():
        op.bulk_insert(table, [dict(r) for r in rows])
        return len(rows)
    bind = op.get_bind()
    have = {tuple(r) for r in bind.execute(sa.select(*(table.c[k] for k in key)))}
    todo = [dict(r) for r in rows if tuple(r[k] for k in key) not in have]
    if todo:
        bind.execute(sa.insert(table), todo)
    return len(todo)
