"""Column types whose DDL differs per database, so every database compares text like Python does.

* text is compared and ordered by code point: ``COLLATE "C"`` on PostgreSQL, a binary NO PAD ``utf8mb4``
  collation on MariaDB/MySQL (``utf8mb4_nopad_bin``; ``utf8mb4_bin`` pads with spaces, so ``'a' = 'a '``
  would be true), SQLite's default BINARY collation;
* long text (up to 100,000 characters) is ``MEDIUMTEXT`` on MariaDB/MySQL;
* date-times are naive UTC with microseconds (``DATETIME(6)`` on MariaDB/MySQL);
* JSON is ``JSON`` on PostgreSQL and SQLite but plain ``LONGTEXT`` on MariaDB/MySQL: MariaDB's JSON check
  refuses ``\udc80`` escapes that Python writes for lone surrogates, and MySQL's binary JSON would
  reorder object keys; the adapter always writes valid JSON text and reads it back verbatim.

Migrations use these types too, so change them only by adding new ones.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles

__all__ = ["TABLE_OPTIONS", "BinString", "BinText", "JSONText", "LongText", "UTCDateTime", "mysql_collation"]

#: Table options for MariaDB/MySQL (both spellings: a ``mariadb://`` URL reads only ``mariadb_*``).
TABLE_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mariadb_engine": "InnoDB",
    "mariadb_charset": "utf8mb4",
}


def mysql_collation(dialect: Any) -> str:
    """The binary, NO PAD ``utf8mb4`` collation of this server (code-point order, trailing spaces count)."""
    if getattr(dialect, "is_mariadb", False):
        return "utf8mb4_nopad_bin"
    version = getattr(dialect, "server_version_info", None) or ()
    return "utf8mb4_0900_bin" if tuple(version) >= (8, 0, 17) else "utf8mb4_bin"


class BinString(sa.String):
    """``VARCHAR(n)`` compared by code point."""


class BinText(sa.Text):
    """Unbounded text (``TEXT``, 64 KiB on MariaDB/MySQL) compared by code point."""


class LongText(sa.Text):
    """Long text (``MEDIUMTEXT`` on MariaDB/MySQL) compared by code point."""


class JSONText(sa.JSON):
    """JSON written and read as text by the adapter (see the module docstring)."""


class UTCDateTime(sa.DateTime):
    """A naive UTC date-time with microseconds; the adapter adds and removes the UTC zone."""

    def __init__(self) -> None:
        super().__init__(timezone=False)


def _mysql_text(base: str, type_: Any, compiler: Any) -> str:
    return f"{base} CHARACTER SET utf8mb4 COLLATE {mysql_collation(compiler.dialect)}"


@compiles(BinString)
def _string_default(type_: BinString, compiler: Any, **kw: Any) -> str:
    return f"VARCHAR({type_.length})"


@compiles(BinString, "postgresql")
def _string_pg(type_: BinString, compiler: Any, **kw: Any) -> str:
    return f'VARCHAR({type_.length}) COLLATE "C"'


@compiles(BinString, "mysql")
@compiles(BinString, "mariadb")
def _string_mysql(type_: BinString, compiler: Any, **kw: Any) -> str:
    return _mysql_text(f"VARCHAR({type_.length})", type_, compiler)


@compiles(BinText)
@compiles(LongText)
def _text_default(type_: sa.Text, compiler: Any, **kw: Any) -> str:
    return "TEXT"


@compiles(BinText, "postgresql")
@compiles(LongText, "postgresql")
def _text_pg(type_: sa.Text, compiler: Any, **kw: Any) -> str:
    return 'TEXT COLLATE "C"'


@compiles(BinText, "mysql")
@compiles(BinText, "mariadb")
def _text_mysql(type_: sa.Text, compiler: Any, **kw: Any) -> str:
    return _mysql_text("TEXT", type_, compiler)


@compiles(LongText, "mysql")
@compiles(LongText, "mariadb")
def _longtext_mysql(type_: sa.Text, compiler: Any, **kw: Any) -> str:
    return _mysql_text("MEDIUMTEXT", type_, compiler)


@compiles(UTCDateTime)
def _dt_default(type_: UTCDateTime, compiler: Any, **kw: Any) -> str:
    return "DATETIME"


@compiles(UTCDateTime, "postgresql")
def _dt_pg(type_: UTCDateTime, compiler: Any, **kw: Any) -> str:
    return "TIMESTAMP WITHOUT TIME ZONE"


@compiles(UTCDateTime, "mysql")
@compiles(UTCDateTime, "mariadb")
def _dt_mysql(type_: UTCDateTime, compiler: Any, **kw: Any) -> str:
    return "DATETIME(6)"


@compiles(JSONText)
def _json_default(type_: JSONText, compiler: Any, **kw: Any) -> str:
    return compiler.visit_JSON(type_, **kw)  # type: ignore[no-any-return]


@compiles(JSONText, "mysql")
@compiles(JSONText, "mariadb")
def _json_mysql(type_: JSONText, compiler: Any, **kw: Any) -> str:
    return "LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
