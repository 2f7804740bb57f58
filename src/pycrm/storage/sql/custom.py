"""Declared custom fields in SQL: the typed value of ``custom.<key>`` per dialect, and its index.

A declared custom field (``CustomField("score", "integer")``) filters by its type (``{"custom.score":
{"gte": 80}}``). The value compared is one SQL expression over the row's JSON column that yields the stored
value converted to the field's type, or NULL when the row holds no value or one of another type (written
before the field was declared) -- the same rule as ``pycrm.storage.evaluate.custom_value`` in Python:

==============  ==========================================================================================
type            value compared
==============  ==========================================================================================
text, choice    the JSON string
integer         the JSON whole number (not a boolean, not a fraction)
decimal         a JSON whole number or a string in plain notation (``"-12.50"``), as a number: REAL on
                SQLite, NUMERIC on PostgreSQL, DECIMAL(65,30) on MariaDB/MySQL
date            a JSON string ``YYYY-MM-DD``, compared as text (which is date order)
==============  ==========================================================================================

The expression is plain SQL text with the key written in (a checked identifier, never a value: values are
bound parameters), so that a field declared ``indexed=True`` gets an index on exactly that expression,
which the database then uses for the filter: an expression index on SQLite and PostgreSQL; on MariaDB/MySQL
an indexed virtual column ``cf_<key>`` computed by it, which the filter then names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from pycrm.domain import Entity
from pycrm.domain._custom import FILTER_KINDS, FILTER_NAME, CustomField
from pycrm.errors import CRMError
from pycrm.storage.sql.coltypes import mysql_collation
from pycrm.storage.sql.tables import ENTITY_TABLES

__all__ = ["TYPED", "index_name", "indexed_fields", "typed_sql", "vcol_name"]

#: The filter kinds compared through a typed expression (booleans and undeclared keys are matched as JSON).
TYPED = frozenset({"custom_text", "custom_int", "custom_decimal", "custom_date"})

_DECIMAL_RE = "^[+-]?[0-9]+([.][0-9]+)?$"
_DATE_RE = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DATE_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"


def _key(key: str) -> str:
    if not FILTER_NAME.fullmatch(key):  # pragma: no cover - parse_where and CustomField checked it
        raise CRMError(f"{key!r} is not a custom field name that can be filtered")
    return key


def typed_sql(dialect: str, column: str, key: str, kind: str) -> str:
    """SQL text of the typed value of ``custom.<key>`` (filter ``kind``) read from the JSON column ``column``
    (``custom`` or ``<table>.custom``) on ``dialect`` (``sqlite``, ``postgresql``, ``mysql``)."""
    key = _key(key)
    if dialect == "sqlite":
        path = f"'$.\"{key}\"'"
        jtype = f"json_type({column}, {path})"
        raw = f"json_extract({column}, {path})"
        cond, value = {
            "custom_text": (f"{jtype} = 'text'", raw),
            "custom_int": (f"{jtype} = 'integer'", raw),
            "custom_decimal": (
                f"({jtype} = 'integer' OR ({jtype} = 'text' AND {raw} NOT GLOB '*[^0-9.+-]*' AND {raw} GLOB '*[0-9]'))",
                f"CAST({raw} AS REAL)",
            ),
            "custom_date": (f"{jtype} = 'text' AND {raw} GLOB '{_DATE_GLOB}'", raw),
        }[kind]
    elif dialect == "postgresql":
        doc = f"(CAST({column} AS JSONB) -> '{key}')"
        jtype = f"jsonb_typeof{doc}"
        raw = f"(CAST({column} AS JSONB) ->> '{key}')"
        cond, value = {
            "custom_text": (f"{jtype} = 'string'", raw),
            "custom_int": (f"{jtype} = 'number' AND {raw} ~ '^-?[0-9]+$'", f"CAST({raw} AS NUMERIC)"),
            "custom_decimal": (
                f"{jtype} IN ('number', 'string') AND {raw} ~ '{_DECIMAL_RE}'",
                f"CAST({raw} AS NUMERIC)",
            ),
            "custom_date": (f"{jtype} = 'string' AND {raw} ~ '{_DATE_RE}'", f'{raw} COLLATE "C"'),
        }[kind]
    else:  # MariaDB / MySQL
        raw = f"JSON_EXTRACT({column}, '$.\"{key}\"')"
        jtype = f"JSON_TYPE({raw})"
        text = f"JSON_UNQUOTE({raw})"
        cond, value = {
            "custom_text": (f"{jtype} = 'STRING'", text),
            "custom_int": (f"{jtype} = 'INTEGER'", f"CAST({raw} AS SIGNED)"),
            "custom_decimal": (
                f"({jtype} = 'INTEGER' OR ({jtype} = 'STRING' AND {text} REGEXP '{_DECIMAL_RE}'))",
                f"CAST({text} AS DECIMAL(65,30))",
            ),
            "custom_date": (f"{jtype} = 'STRING' AND {text} REGEXP '{_DATE_RE}'", text),
        }[kind]
    return f"(CASE WHEN {cond} THEN {value} END)"


def typed_expr(dialect: Any, table: sa.Table, key: str, kind: str, vcols: frozenset[str] = frozenset()) -> Any:
    """The typed value of ``custom.<key>`` as a SQLAlchemy expression (the indexed virtual column on
    MariaDB/MySQL when ``vcols`` names it)."""
    name = "mysql" if dialect.name in ("mysql", "mariadb") else dialect.name
    if name == "mysql" and vcol_name(key) in vcols:  # the column has the binary collation already
        return sa.literal_column(f"{table.name}.{vcol_name(key)}")
    expr: Any = sa.literal_column(typed_sql(name, f"{table.name}.custom", key, kind))
    if name == "mysql" and kind in ("custom_text", "custom_date"):
        expr = expr.collate(mysql_collation(dialect))
    return expr


def index_name(table: str, key: str) -> str:
    """``ix_<table>_cf_<key>``: at most 63 characters (PostgreSQL's limit) for the longest table name."""
    return f"ix_{table}_cf_{key}"


def vcol_name(key: str) -> str:
    """The MariaDB/MySQL virtual column holding the typed value of an indexed ``custom.<key>``."""
    return f"cf_{key}"


def indexed_fields(
    custom_fields: Mapping[type[Entity], Iterable[CustomField]],
) -> list[tuple[sa.Table, str, str]]:
    """(table, key, filter kind) of every declared field with ``indexed=True`` whose type has a typed value."""
    out = []
    for kind, defs in custom_fields.items():
        for d in defs:
            fk = FILTER_KINDS[d.type]
            if d.indexed and fk in TYPED:
                out.append((ENTITY_TABLES[kind], d.name, fk))
    return out


def _mysql_type(kind: str, dialect: Any) -> str:
    return {
        "custom_text": f"LONGTEXT CHARACTER SET utf8mb4 COLLATE {mysql_collation(dialect)}",
        "custom_int": "BIGINT",
        "custom_decimal": "DECIMAL(65,30)",
        "custom_date": f"VARCHAR(10) CHARACTER SET utf8mb4 COLLATE {mysql_collation(dialect)}",
    }[kind]


def create_indexes(conn: sa.Connection, fields: Iterable[tuple[sa.Table, str, str]]) -> set[tuple[str, str]]:
    """Create the index of each declared field that has none yet (idempotent); on MariaDB/MySQL the virtual
    column too. Returns the (table, key) pairs indexed through a virtual column."""
    dialect = conn.dialect
    name = "mysql" if dialect.name in ("mysql", "mariadb") else dialect.name
    vcols: set[tuple[str, str]] = set()
    fields = list(fields)
    if not fields:
        return vcols
    inspector = sa.inspect(conn) if name == "mysql" else None
    for table, key, kind in fields:
        ix = index_name(table.name, key)
        if inspector is not None:
            col = vcol_name(key)
            if col not in {c["name"] for c in inspector.get_columns(table.name)}:
                expr = typed_sql(name, "custom", key, kind)
                conn.execute(
                    sa.text(f"ALTER TABLE {table.name} ADD COLUMN {col} {_mysql_type(kind, dialect)} AS ({expr}) VIRTUAL")
                )
            if ix not in {i["name"] for i in inspector.get_indexes(table.name)}:
                # an index key is at most 3072 bytes: text is indexed by its first 191 characters
                part = f"{col}(191)" if kind == "custom_text" else col
                conn.execute(sa.text(f"CREATE INDEX {ix} ON {table.name} ({part})"))
            vcols.add((table.name, key))
        else:  # SQLite, PostgreSQL: an expression index (whose reflection SQLAlchemy skips: IF NOT EXISTS instead)
            expr = typed_sql(name, "custom", key, kind)
            conn.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {ix} ON {table.name} ({expr})"))
    return vcols
