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
The functions only run inside an Alembic migration (they use ``alembic.op``). The checks read the catalog
through SQLAlchemy's inspector once per upgrade and keep it up to date with what the steps do: making a
new schema asks the database one question, not one per table and index (every test of an SQL store
makes one). Any other DDL statement on the connection (an ``op.execute``, an ``op`` call) makes them read
the catalog again before their next answer. In offline mode (``alembic upgrade --sql``) there is
no database to look at: every step is written out. ``tests/integration/test_crash_open.py`` runs every
revision, new ones included, killed after each DDL statement on MariaDB and on SQLite without a transaction.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from alembic.util import CommandError
from sqlalchemy import event
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

_DDL = re.compile(r"\s*(CREATE|ALTER|DROP|RENAME)\b", re.IGNORECASE)


class _Catalog:
    """What the database holds, as far as this upgrade knows: read from the inspector when first needed,
    then changed by the steps here; forgotten when another DDL statement runs on the connection."""

    def __init__(self, bind: sa.Connection):
        self.bind = bind
        self.own = False
        self.forget()
        event.listen(bind, "before_cursor_execute", self._saw)

    def forget(self) -> None:
        self._tables: set[str] | None = None
        self._columns: dict[str, set[str]] = {}
        self._indexes: dict[str, dict[str, list[str | None]]] = {}

    def _saw(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not self.own and _DDL.match(statement):
            self.forget()

    @contextlib.contextmanager
    def ours(self) -> Iterator[None]:
        """Run a step's own DDL: the catalog is changed by the step, not forgotten."""
        self.own = True
        try:
            yield
        finally:
            self.own = False

    def tables(self) -> set[str]:
        if self._tables is None:
            self._tables = set(sa.inspect(self.bind).get_table_names())
        return self._tables

    def columns(self, table: str) -> set[str]:
        if table not in self._columns:
            self._columns[table] = {c["name"] for c in sa.inspect(self.bind).get_columns(table)}
        return self._columns[table]

    def indexes(self, table: str) -> dict[str, list[str | None]]:
        if table not in self._indexes:
            found = sa.inspect(self.bind).get_indexes(table)
            self._indexes[table] = {str(i["name"]): list(i["column_names"]) for i in found}
        return self._indexes[table]

    def made(self, table: sa.Table) -> None:
        self.tables().add(table.name)
        self._columns[table.name] = {c.name for c in table.columns}
        if not table.indexes:  # else made with the table: read back when asked
            self._indexes[table.name] = {}

    def changed(self, table: str) -> None:
        self._columns.pop(table, None)
        self._indexes.pop(table, None)

    def dropped(self, table: str) -> None:
        self.tables().discard(table)
        self.changed(table)


def offline() -> bool:
    """Whether Alembic writes a script (``--sql``) instead of running on a database."""
    return bool(op.get_context().as_sql)


def _catalog() -> _Catalog:
    context = op.get_context()
    catalog: _Catalog | None = getattr(context, "_pycrm_catalog", None)
    if catalog is None or catalog.bind is not op.get_bind():
        catalog = _Catalog(op.get_bind())
        context._pycrm_catalog = catalog  # type: ignore[attr-defined]  # one per upgrade run
    return catalog


def has_table(name: str) -> bool:
    """Whether the table exists (offline: False, so the script creates it)."""
    return not offline() and name in _catalog().tables()


def has_column(table: str, name: str) -> bool:
    return not offline() and name in _catalog().columns(table)


def has_index(table: str, name: str) -> bool:
    return not offline() and name in _catalog().indexes(table)


def create_table(name: str, *items: SchemaItem, **kw: Any) -> sa.Table:
    """``op.create_table`` unless the table exists; returns the table either way (for :func:`insert_missing`).

    A table that exists must have every column named here (``CREATE TABLE`` is atomic, so a table of
    pycrm's own has them all): one without them is someone else's, and the migration stops saying so."""
    if offline():
        return op.create_table(name, *items, **kw)
    catalog = _catalog()
    if name not in catalog.tables():
        with catalog.ours():
            table = op.create_table(name, *items, **kw)
        catalog.made(table)
        return table
    table = sa.Table(name, sa.MetaData(), *items, **kw)
    there = catalog.columns(name)
    missing = [c.name for c in table.columns if c.name not in there]
    if missing:
        raise CommandError(f"table {name!r} exists without the column(s) {', '.join(missing)}: it is not pycrm's")
    return table


def create_index(name: str, table: str, columns: Sequence[str], **kw: Any) -> None:
    """``op.create_index`` unless the table has an index of that name, which must be on the same columns."""
    if offline():
        op.create_index(name, table, list(columns), **kw)
        return
    catalog = _catalog()
    found = catalog.indexes(table).get(name)
    if found is None:
        with catalog.ours():
            op.create_index(name, table, list(columns), **kw)
        catalog.indexes(table)[name] = list(columns)
    elif found != list(columns):
        raise CommandError(f"index {name!r} on {table!r} exists on {found}, not {list(columns)}: it is not pycrm's")


def add_column(table: str, column: sa.Column[Any]) -> None:
    """``op.add_column`` unless the table has a column of that name."""
    if offline():
        op.add_column(table, column)
    elif not has_column(table, column.name):
        catalog = _catalog()
        with catalog.ours():
            op.add_column(table, column)
        catalog.columns(table).add(column.name)


def drop_column(table: str, name: str) -> None:
    if offline():
        op.drop_column(table, name)
    elif has_column(table, name):
        catalog = _catalog()
        with catalog.ours():
            op.drop_column(table, name)
        catalog.changed(table)  # the database may change the indexes on the column too


def rebuild(table: str) -> None:
    """Rebuild ``table`` on MariaDB/MySQL (``ALTER TABLE ... FORCE``), after dropping columns: MariaDB drops a
    column instantly, keeping it hidden in the rows until the table is rebuilt, so columns dropped and added
    again (a downgrade and an upgrade, repeated) would pile up until a row no longer fits. Nothing elsewhere."""
    if op.get_context().dialect.name != "mysql":
        return
    if offline() or has_table(table):
        quoted = op.get_context().dialect.identifier_preparer.quote(table)
        catalog = None if offline() else _catalog()
        with catalog.ours() if catalog is not None else contextlib.nullcontext():
            op.execute(sa.text(f"ALTER TABLE {quoted} FORCE"))


def drop_index(name: str, table: str) -> None:
    if offline():
        op.drop_index(name, table_name=table)
    elif has_table(table) and has_index(table, name):
        catalog = _catalog()
        with catalog.ours():
            op.drop_index(name, table_name=table)
        catalog.indexes(table).pop(name, None)


def drop_table(name: str) -> None:
    if offline():
        op.drop_table(name)
    elif has_table(name):
        catalog = _catalog()
        with catalog.ours():
            op.drop_table(name)
        catalog.dropped(name)


def rename_table(old: str, new: str) -> None:
    """Rename ``old`` to ``new``; done already when only ``new`` is there."""
    if offline():
        op.rename_table(old, new)
    elif has_table(old):
        catalog = _catalog()
        with catalog.ours():
            op.rename_table(old, new)
        catalog.dropped(old)
        catalog.tables().add(new)  # its columns and indexes are read again when asked
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
