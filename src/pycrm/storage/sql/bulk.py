"""Many rows into one table at once, each database's fastest way that still passes every value as data.

The SQL adapter's inserts of many rows (``add_many``, an import's batches, the change feed and the audit
trail of a write) go through :func:`insert_many`:

* PostgreSQL: ``COPY table (columns) FROM STDIN`` in text format through psycopg's ``cursor.copy()``. The
  rows travel as COPY data, written by psycopg's own encoders (its C formatter with the ``psycopg[binary]``
  extra), which escape tabs, newlines and backslashes and write ``\\N`` for NULL; no value is ever part of
  the statement's text. psycopg's ``executemany`` sends one bound ``INSERT`` per row, and encoding each
  row's parameters, preparing and sending them took most of a 100,000-row import's time in the importing
  process; the server too does much less per row for COPY than for an ``INSERT``. A failed COPY (a duplicate
  key, a value too long) fails as a whole, with the same SQLSTATE and message as the ``INSERT`` would,
  and leaves the transaction as any failed statement does: the write's savepoint takes it back.
* MariaDB / MySQL: PyMySQL's ``executemany`` already sends an ``INSERT ... VALUES (...), (...)`` of many
  rows per statement (up to its ``max_stmt_length``), each value escaped by the driver: kept as it is.
* SQLite: ``executemany`` of the prepared statement, in the process: kept as it is.

Fewer than :data:`COPY_MIN_ROWS` rows go by ``executemany`` everywhere (a single update's tags, a write's
few journal rows): a COPY is a round trip of its own, cheaper only from a few rows on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

if TYPE_CHECKING:
    from pycrm.storage.sql.queries import Stmt

__all__ = ["COPY_MIN_ROWS", "copy_sql", "insert_many", "statement"]

#: The fewest rows sent by COPY on PostgreSQL (fewer go by ``executemany``).
COPY_MIN_ROWS = 8


def copy_sql(dialect: Dialect, table: sa.Table, columns: Sequence[str]) -> str | None:
    """``COPY table (columns) FROM STDIN`` for rows of ``columns`` in this order (PostgreSQL), else None.

    Table and column names come from pycrm's schema (quoted by the dialect), never from input."""
    if dialect.name != "postgresql":
        return None
    quote = dialect.identifier_preparer
    cols = ", ".join(quote.quote(c) for c in columns)
    return f"COPY {quote.format_table(table)} ({cols}) FROM STDIN"


def statement(stmt: Stmt, n: int) -> str:
    """The SQL :func:`insert_many` sends for ``n`` rows: the statement's COPY, or its INSERT."""
    return stmt.copy if stmt.copy is not None and n >= COPY_MIN_ROWS else stmt.sql


def insert_many(cur: Any, stmt: Stmt, rows: list[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (values in ``stmt.names`` order) with ``stmt`` on the DBAPI cursor ``cur``: by COPY where
    the statement has one and there are at least :data:`COPY_MIN_ROWS` rows, else ``executemany``."""
    if stmt.copy is not None and len(rows) >= COPY_MIN_ROWS:
        with cur.copy(stmt.copy) as copy:
            write = copy.write_row
            for row in rows:
                write(row)
        return
    cur.executemany(stmt.sql, stmt.bind_rows(rows))
