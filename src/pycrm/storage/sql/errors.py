"""Driver errors as pycrm errors, for the SQL adapter: one place that knows each database's codes.

:func:`translate` turns a DBAPI exception into what a caller can act on: :class:`~pycrm.errors.StorageError`
when the store failed (a full disk, a read-only or damaged file, a lost connection), ConcurrencyError for
a lock conflict, ValidationError naming the field (and row) for a constraint or data error; anything else
comes back as SQLAlchemy's wrapper, never the raw driver exception.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from pycrm.domain import Entity
from pycrm.errors import ConcurrencyError, FieldError, StorageError, ValidationError
from pycrm.storage.sql.mapping import COLUMN_FIELDS
from pycrm.storage.sql.tables import ENTITY_TABLES, LIST_TABLES

__all__ = ["is_unique_violation", "store_problem", "translate"]

_MYSQL_COLUMN = re.compile(
    r"(?:column [`']?(?:[^`'\s]+[`']?\.[`']?)*|CONSTRAINT `[A-Za-z0-9_]+\.)([A-Za-z0-9_]+)[`']?", re.IGNORECASE
)
_SQLITE_COLUMN = re.compile(r"failed: ([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)")


def translate(
    exc: Exception,
    *,
    dialect: str,
    store: str,
    dbapi: Any,
    kind: type[Entity] | None,
    op: str,
    rows: Sequence[tuple[Any, ...]] = (),
    children: dict[str, list[tuple[Any, ...]]] | None = None,
) -> Exception:
    """A pycrm error for the driver error ``exc`` raised by ``op`` on ``kind`` (the rows written, if any),
    in the store named ``store`` (its URL, password hidden); ``dbapi`` is the driver module."""
    msg = str(exc)
    code = _error_code(dialect, exc)
    what = kind.__name__ if kind is not None else "the transaction"
    first = msg.splitlines()[0] if msg else type(exc).__name__
    problem = _storage_problem(dialect, code, msg)
    if problem is not None:  # the store failed, not the input: name it, with the database's words
        return StorageError(f"{store}: {problem} ({first[:200]})")
    if _is_conflict(dialect, code, msg):
        # writes ran in a savepoint: the transaction has already been marked broken if the database dropped
        # all of it (a MariaDB deadlock); otherwise it stays usable, as in the memory adapter
        return ConcurrencyError(f"{what}: another session holds or changed the same rows ({first}); retry the session")
    constraint = _constraint_kind(dialect, code, msg)
    many = len(rows) > 1
    if constraint == "foreign_key":
        if op == "delete":
            return ValidationError([FieldError("id", "in_use", f"{what} is still referenced by other records")])
        return ValidationError([FieldError("customer_id", "not_found", "no customer with that id")])
    if constraint == "unique":
        if "sku" in msg:  # a product's SKU taken by another session meanwhile (ux_products_sku)
            return ValidationError([FieldError("sku", "duplicate", f"a {what} with this sku exists")])
        return ValidationError([FieldError("id", "duplicate", f"a {what} with this id exists")])
    if constraint in ("not_null", "data", "check") or isinstance(exc, (dbapi.DataError, dbapi.IntegrityError)):
        field, index = _locate(kind, dialect, exc, msg, rows, children)
        path = f"[{index}].{field}" if many and index is not None else field
        return ValidationError([FieldError(path, "invalid_value", f"cannot be stored: {first if msg else exc}")])
    return sa.exc.DBAPIError.instance(None, None, exc, dbapi.Error)


def is_unique_violation(exc: Exception, dialect: str) -> bool:
    """Whether the driver error ``exc`` is a unique constraint's (the statement that raised it says which)."""
    return _constraint_kind(dialect, _error_code(dialect, exc), str(exc)) == "unique"


def _locate(
    kind: type[Entity] | None,
    dialect: str,
    exc: Exception,
    msg: str,
    rows: Sequence[tuple[Any, ...]],
    children: dict[str, list[tuple[Any, ...]]] | None,
) -> tuple[str, int | None]:
    """The entity field (and row) a data error is about, from the message or by checking the values."""
    column = None
    diag = getattr(exc, "diag", None)
    if diag is not None and getattr(diag, "column_name", None):
        column = diag.column_name
    elif dialect == "mysql":
        m = _MYSQL_COLUMN.search(msg)
        column = m.group(1) if m else None
    elif dialect == "sqlite":
        m = _SQLITE_COLUMN.search(msg)
        column = m.group(2) if m else None
    if kind is not None and rows:
        found = _check_values(kind, rows, children or {})
        if found is not None:
            return COLUMN_FIELDS.get(found[0], found[0]), found[1]
    return (COLUMN_FIELDS.get(column, column) if column else ""), None


def _error_code(dialect: str, exc: Exception) -> Any:
    if dialect == "postgresql":
        return getattr(exc, "sqlstate", None)
    if dialect == "mysql":
        return exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    return getattr(exc, "sqlite_errorcode", None)


#: SQLite's primary result codes for a store that failed: full, read-only, I/O error, damaged, cannot open,
#: not a database.
_SQLITE_STORAGE = {
    13: "the disk is full",
    8: "the store is read-only",
    10: "an I/O error",
    11: "the database file is damaged",
    14: "the database file cannot be opened",
    26: "the file is not a database",
}
_PG_STORAGE = {
    "53100": "the disk is full",
    "53200": "the server is out of memory",
    "25006": "the store is read-only",
    "57P01": "the server ended the connection (shut down, or terminated by an administrator)",
    "57P02": "the server crashed",
    "57P03": "the server is starting or stopping",
}
_MYSQL_STORAGE = {
    1021: "the disk is full",
    1114: "a table is full",
    1036: "a table is read-only",
    1290: "the server is read-only",
    2006: "the server went away",
    2013: "the connection was lost",
    1030: "the storage engine failed",
}


def store_problem(dialect: str, exc: BaseException) -> str | None:
    """What failed in the store for the driver error ``exc`` (a full disk, a read-only or damaged file, a lost
    connection), or None when it is about the data, a conflict, or a store that could not be found (a
    missing folder or database is the caller's input)."""
    code = _error_code(dialect, exc)  # type: ignore[arg-type]
    if dialect == "sqlite" and isinstance(code, int) and code & 0xFF == 14:  # SQLITE_CANTOPEN: no such folder
        return None
    return _storage_problem(dialect, code, str(exc))


def _storage_problem(dialect: str, code: Any, msg: str) -> str | None:
    """What failed in the store for a driver error, or None when the error is about the data or a conflict."""
    if dialect == "postgresql":
        if isinstance(code, str) and code.startswith("08"):
            return "the connection was lost"
        return _PG_STORAGE.get(code or "")
    if dialect == "mysql":
        return _MYSQL_STORAGE.get(code)
    if isinstance(code, int):
        return _SQLITE_STORAGE.get(code & 0xFF)
    return "the disk is full" if "database or disk is full" in msg else None


def _is_conflict(dialect: str, code: Any, msg: str) -> bool:
    if dialect == "postgresql":
        return code in ("40001", "40P01", "55P03")
    if dialect == "mysql":
        return code in (1205, 1213)
    if isinstance(code, int):
        return code & 0xFF in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED
    return "database is locked" in msg or "database table is locked" in msg


def _constraint_kind(dialect: str, code: Any, msg: str) -> str | None:
    if dialect == "postgresql":
        return {"23503": "foreign_key", "23505": "unique", "23502": "not_null", "23514": "check"}.get(code or "") or (
            "data" if isinstance(code, str) and code.startswith("22") else None
        )
    if dialect == "mysql":
        if code in (1451, 1452, 1216, 1217):
            return "foreign_key"
        if code == 1062:
            return "unique"
        if code == 1048:
            return "not_null"
        if code in (4025, 3819):
            return "check"
        if code in (1265, 1263, 1264, 1292, 1366, 1367, 1406, 1441, 3140):
            return "data"
        return None
    if isinstance(code, int):
        return {787: "foreign_key", 1555: "unique", 2067: "unique", 1299: "not_null", 275: "check"}.get(code)
    if "FOREIGN KEY" in msg:
        return "foreign_key"
    if "UNIQUE" in msg:
        return "unique"
    if "NOT NULL" in msg:
        return "not_null"
    return None


def _check_values(
    kind: type[Entity], rows: Sequence[tuple[Any, ...]], children: dict[str, list[tuple[Any, ...]]]
) -> tuple[str, int] | None:
    """The first (column, row index) whose value cannot fit its column (too long, NUL characters)."""
    table = ENTITY_TABLES[kind]
    limits = [(i, c.name, getattr(c.type, "length", None)) for i, c in enumerate(table.columns)]
    for r, row in enumerate(rows):
        for i, name, length in limits:
            v = row[i]
            if isinstance(v, str) and ((length is not None and len(v) > length) or "\x00" in v):
                return name, r
    ids = {row[0]: r for r, row in enumerate(rows)}
    for field, crows in children.items():
        lt = LIST_TABLES[kind][field]
        at = list(lt.table.columns).index(lt.value)
        length = getattr(lt.value.type, "length", None)
        for crow in crows:
            v = crow[at]
            if length is not None and isinstance(v, str) and len(v) > length:
                return field, ids.get(crow[0], 0)
    return None
