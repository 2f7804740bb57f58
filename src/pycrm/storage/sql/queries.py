"""SQL statements, built with SQLAlchemy Core once per shape and dialect, then kept as plain strings.

The adapter executes them on the transaction's DBAPI cursor with bound parameters (never values pasted
into SQL text); a ``find`` with the same fields, operators and list lengths reuses the compiled string.
This keeps the hot paths (``get``, ``find`` by e-mail) close to the speed of raw DBAPI calls.

Filter semantics follow the memory adapter exactly:

* comparisons with NULL are never true (plain SQL three-valued logic);
* ``contains``/``startswith`` ignore case: on SQLite through two small SQL functions registered on each
  connection that run Python's own ``str.lower`` (so they agree with the memory adapter on every
  script), elsewhere as ``lower(column) LIKE lower(:pattern) ESCAPE '/'`` with ``%``, ``_`` and ``/``
  escaped in the pattern (PostgreSQL lowers with an ICU collation when the server has one);
* on list fields ``eq`` means "has this element" (``id IN (SELECT owner FROM child WHERE value = :v)``,
  through the child table's index), ``ne`` "lacks it", ``in`` "has any", ``is_null`` "is empty";
* ``money`` compares ``amount_e4`` with an integer bound that gives the exact answer (see
  ``mapping.money_filter_value``), ``decimal`` compares order-preserving keys;
* ordering puts NULLs first ascending and last descending (SQLite's and MariaDB's default, spelled out
  on PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnElement

from pycrm.domain import Entity
from pycrm.storage._where import Condition, OrderBy
from pycrm.storage.sql import tables
from pycrm.storage.sql.bulk import copy_sql
from pycrm.storage.sql.coltypes import mysql_collation
from pycrm.storage.sql.custom import TYPED, typed_expr
from pycrm.storage.sql.mapping import FILTER_COLUMNS, MAPPERS, Codec, decimal_filter_key, money_filter_value
from pycrm.storage.sql.tables import ENTITY_TABLES, LIST_TABLES

__all__ = ["SAVEPOINT", "Queries", "Query", "Stmt", "condition_key"]

Binder = Callable[[Any], list[Any]]

#: An ``in`` list on a text field longer than this is bound as one array / JSON parameter.
LONG_IN = 500

SAVEPOINT = ("SAVEPOINT pycrm_write", "RELEASE SAVEPOINT pycrm_write", "ROLLBACK TO SAVEPOINT pycrm_write")

#: "no limit" for a LIMIT parameter, per dialect (used when only an offset is given).
_NO_LIMIT = {"sqlite": -1, "mysql": 18446744073709551615, "mariadb": 18446744073709551615}


#: The columns a new outbox event is written with (storage/sql/outbox.py).
OUTBOX_NEW = ("event_key", "event", "entity", "entity_id", "at", "actor_id", "data", "state", "attempts", "next_at", "delivered")


class Stmt:
    """A compiled statement: its SQL text and how to order parameter values for the driver."""

    __slots__ = ("copy", "direct", "fixed", "names", "order", "sql")

    def __init__(self, compiled: Any, names: Sequence[str], copy: str | None = None):
        sql = str(compiled)
        if "POSTCOMPILE" in sql:  # pragma: no cover - a programming error
            raise RuntimeError(f"statement needs render-time parameters: {sql}")
        self.sql = sql
        self.names = tuple(names)
        self.order: tuple[str, ...] | None = tuple(compiled.positiontup) if compiled.positional else None
        named = set(self.names)  # a set: a 40,000-value list once made this loop quadratic
        self.fixed = {k: v for k, v in compiled.params.items() if k not in named}
        self.direct = self.order == self.names and not self.fixed
        #: An insert's ``COPY ... FROM STDIN`` for the same columns in the same order (PostgreSQL), or None:
        #: many rows go in by it (:func:`pycrm.storage.sql.bulk.insert_many`).
        self.copy = copy if not self.fixed else None

    def bind(self, values: Sequence[Any]) -> Any:
        """Parameters for the driver from values given in ``names`` order."""
        if self.direct:
            return tuple(values)
        params = dict(zip(self.names, values))
        if self.fixed:
            params.update(self.fixed)
        if self.order is None:
            return params
        return tuple(params[n] for n in self.order)

    def bind_rows(self, rows: list[tuple[Any, ...]]) -> Any:
        if self.direct:
            return rows
        return [self.bind(r) for r in rows]


class Query:
    """A cached ``find``/``count``/``iter`` statement and the binders that turn conditions into values."""

    __slots__ = ("binders", "stmt")

    def __init__(self, stmt: Stmt, binders: list[Binder]):
        self.stmt = stmt
        self.binders = binders

    def values(self, where: Sequence[Condition], extra: Sequence[Any] = ()) -> list[Any]:
        out: list[Any] = []
        for c, b in zip(where, self.binders):
            out += b(c.value)
        out += extra
        return out


def condition_key(c: Condition) -> tuple[str, str, Any]:
    """What determines the SQL of a condition (not its value): field, operator, list length, null test
    (and for custom fields the JSON types of the values, since each type is matched differently)."""
    op = c.op
    if op == "any_of":
        return ("", op, tuple(tuple(map(condition_key, group)) for group in c.value))
    if op == "in_subquery":
        kind, conds = c.value
        return (c.field, op, (kind, tuple(map(condition_key, conds))))
    if c.kind in _UNTYPED and op == "in":
        return (c.field, op, tuple(map(_size_class, _by_type(c.value))))
    if c.kind in _UNTYPED and op != "is_null":
        return (c.field, op, type(c.value).__name__)
    if op == "in":
        return (c.field, op, _size_class(c.value))
    if op == "is_null":
        return (c.field, op, bool(c.value))
    return (c.field, op, None)


#: Custom-field filter kinds matched as JSON values, type-exact (the others compare a typed expression).
_UNTYPED = frozenset({"custom", "custom_bool"})


def _size_class(values: Sequence[Any]) -> int | str:
    """What of an ``in`` list's length shapes its SQL: the length up to ``LONG_IN``, then just "long"."""
    return len(values) if len(values) <= LONG_IN else "long"


def _by_type(values: Sequence[Any]) -> tuple[list[Any], list[Any], list[Any]]:
    """A custom field's ``in`` values split by JSON type: texts, whole numbers, and booleans as the words
    ``true`` / ``false`` (each type is matched differently, and type-exact)."""
    texts: list[Any] = []
    ints: list[Any] = []
    bools: list[Any] = []
    for v in values:
        if isinstance(v, bool):
            bools.append("true" if v else "false")
        elif isinstance(v, int):
            ints.append(v)
        else:
            texts.append(v)
    return texts, ints, bools


def _at(i: int) -> Callable[[list[Any]], Any]:
    return lambda values: values[i]


def _json_at(i: int) -> Callable[[list[Any]], Any]:
    return lambda values: json.dumps(values[i])


def _bool_at(i: int) -> Callable[[list[Any]], Any]:
    return lambda values: "true" if values[i] else "false"


def _escape_like(value: str) -> str:
    return value.replace("/", "//").replace("%", "/%").replace("_", "/_")


class Queries:
    """Every statement of one store, compiled for its dialect and cached."""

    def __init__(self, dialect: Dialect, codec: Codec, *, lower_collation: str | None = None):
        self.dialect = dialect
        self.name = dialect.name
        self.codec = codec
        self.lower_collation = lower_collation
        self.no_limit = _NO_LIMIT.get(self.name)
        #: :meth:`ids_in` takes the ids as one array (PostgreSQL).
        self.id_array = self.name == "postgresql"
        self._cache: dict[Any, Any] = {}
        #: per table, the custom fields indexed through a virtual column (MariaDB/MySQL), see ``custom.py``
        self.vcols: dict[str, frozenset[str]] = {}
        self.get = {
            k: self._compile(sa.select(t).where(t.c.id == sa.bindparam("k_id")), ["k_id"]) for k, t in ENTITY_TABLES.items()
        }

    def _compile(self, clause: Any, names: Sequence[str]) -> Stmt:
        return Stmt(clause.compile(dialect=self.dialect), names)

    def _cached(self, key: Any, build: Callable[[], Any]) -> Any:
        got = self._cache.get(key)
        if got is None:
            if len(self._cache) > 2000:
                self._cache.clear()
            got = self._cache[key] = build()
        return got

    # ---- writing ----
    def _insert(self, table: sa.Table, columns: Sequence[str], names: Sequence[str] | None = None) -> Stmt:
        """An ``INSERT`` of one row into ``columns`` of ``table`` (values bound as ``names``, ``v_<column>`` by
        default) and, on PostgreSQL, the ``COPY`` taking rows of the same columns (see :mod:`~.bulk`)."""
        names = [f"v_{c}" for c in columns] if names is None else list(names)
        clause = sa.insert(table).values({c: sa.bindparam(n) for c, n in zip(columns, names)})
        return Stmt(clause.compile(dialect=self.dialect), names, copy_sql(self.dialect, table, columns))

    def insert(self, kind: type[Entity], skip: tuple[int, ...] = ()) -> Stmt:
        """``INSERT`` of one row of ``kind``'s table, columns in the mapper's order but those at the positions
        in ``skip`` (left to the database: NULL)."""

        def build() -> Stmt:
            t = ENTITY_TABLES[kind]
            return self._insert(t, [c for i, c in enumerate(MAPPERS[kind].columns) if i not in skip])

        return self._cached(("insert", kind, skip), build)  # type: ignore[no-any-return]

    def update(self, kind: type[Entity]) -> Stmt:
        def build() -> Stmt:
            t = ENTITY_TABLES[kind]
            cols = [c for c in MAPPERS[kind].columns if c != "id"]
            names = [f"v_{c}" for c in cols]
            clause = (
                sa.update(t)
                .where(t.c.id == sa.bindparam("k_id"), t.c.version == sa.bindparam("k_version"))
                .values({c: sa.bindparam(n) for c, n in zip(cols, names)})
            )
            return self._compile(clause, [*names, "k_id", "k_version"])

        return self._cached(("update", kind), build)  # type: ignore[no-any-return]

    def delete(self, kind: type[Entity]) -> Stmt:
        def build() -> Stmt:
            t = ENTITY_TABLES[kind]
            return self._compile(sa.delete(t).where(t.c.id == sa.bindparam("k_id")), ["k_id"])

        return self._cached(("delete", kind), build)  # type: ignore[no-any-return]

    def child_insert(self, kind: type[Entity], field: str) -> Stmt:
        def build() -> Stmt:
            lt = LIST_TABLES[kind][field]
            return self._insert(lt.table, [c.name for c in lt.table.columns])

        return self._cached(("child_insert", kind, field), build)  # type: ignore[no-any-return]

    def child_delete(self, kind: type[Entity], field: str) -> Stmt:
        def build() -> Stmt:
            lt = LIST_TABLES[kind][field]
            return self._compile(sa.delete(lt.table).where(lt.owner == sa.bindparam("k_id")), ["k_id"])

        return self._cached(("child_delete", kind, field), build)  # type: ignore[no-any-return]

    def journal_insert(self, name: str, skip: tuple[int, ...] = ()) -> Stmt:
        """``INSERT`` of one change-feed (``changes``) or audit (``audit``) row, columns in table order but
        those at the positions in ``skip`` (NULL)."""

        def build() -> Stmt:
            t = tables.changes if name == "changes" else tables.audit
            return self._insert(t, [c.name for i, c in enumerate(t.columns) if i not in skip])

        return self._cached(("journal_insert", name, skip), build)  # type: ignore[no-any-return]

    def outbox_insert(self) -> Stmt:
        """``INSERT`` of one new outbox event (:data:`OUTBOX_NEW` columns; the database numbers it)."""
        return self._cached(("outbox_insert",), lambda: self._insert(tables.outbox, OUTBOX_NEW))  # type: ignore[no-any-return]

    # ---- id sets ----
    def ids_in(self, kind: type[Entity], n: int) -> Stmt:
        """The ids of ``kind`` among ``n`` given: ``n`` parameters, or on PostgreSQL one array parameter
        (``id = ANY(:ids)``: one short statement whatever ``n``, bound as ``[ids]``; see :attr:`id_array`)."""

        def build() -> Stmt:
            t = ENTITY_TABLES[kind]
            if self.id_array:
                return self._compile(
                    sa.select(t.c.id).where(t.c.id == sa.func.any(sa.bindparam("ids", type_=ARRAY(sa.String)))), ["ids"]
                )
            names = [f"i{k}" for k in range(n)]
            return self._compile(sa.select(t.c.id).where(t.c.id.in_([sa.bindparam(x) for x in names])), names)

        return self._cached(("ids_in", kind, 0 if self.id_array else n), build)  # type: ignore[no-any-return]

    def referencing(self, kind: type[Entity], field: str, n: int) -> Stmt:
        def build() -> Stmt:
            t = ENTITY_TABLES[kind]
            names = [f"i{k}" for k in range(n)]
            clause = sa.select(sa.func.count()).select_from(t).where(t.c[field].in_([sa.bindparam(x) for x in names]))
            return self._compile(clause, names)

        return self._cached(("referencing", kind, field, n), build)  # type: ignore[no-any-return]

    # ---- reading ----
    def select(
        self, kind: type[Entity], where: Sequence[Condition], order_by: Sequence[OrderBy], paged: bool, after: bool
    ) -> Query:
        """``SELECT <all columns> ... WHERE <where> [AND id > :after] ORDER BY ... [LIMIT :lim OFFSET :off]``."""
        key = ("select", kind, tuple(map(condition_key, where)), tuple((o.field, o.descending) for o in order_by), paged, after)
        return self._cached(key, lambda: self._build_select(kind, where, order_by, paged, after))  # type: ignore[no-any-return]

    def count(self, kind: type[Entity], where: Sequence[Condition]) -> Query:
        key = ("count", kind, tuple(map(condition_key, where)))

        def build() -> Query:
            t = ENTITY_TABLES[kind]
            names: list[str] = []
            clauses, binders = self._where(kind, where, names)
            return Query(self._compile(sa.select(sa.func.count()).select_from(t).where(*clauses), names), binders)

        return self._cached(key, build)  # type: ignore[no-any-return]

    def count_by(self, kind: type[Entity], where: Sequence[Condition], field: str) -> Query:
        """``SELECT field, COUNT(*) ... GROUP BY field LIMIT :k_limit`` (``GroupedCounts``; the limit comes after
        the conditions' values)."""
        key = ("count_by", kind, field, tuple(map(condition_key, where)))

        def build() -> Query:
            t = ENTITY_TABLES[kind]
            col = t.c[FILTER_COLUMNS.get(field, field)]
            names: list[str] = []
            clauses, binders = self._where(kind, where, names)
            names.append("k_limit")
            sel = sa.select(col, sa.func.count()).select_from(t).where(*clauses).group_by(col).limit(sa.bindparam("k_limit"))
            return Query(self._compile(sel, names), binders)

        return self._cached(key, build)  # type: ignore[no-any-return]

    def _build_select(
        self, kind: type[Entity], where: Sequence[Condition], order_by: Sequence[OrderBy], paged: bool, after: bool
    ) -> Query:
        t = ENTITY_TABLES[kind]
        names: list[str] = []
        clauses, binders = self._where(kind, where, names)
        if after:
            names.append("k_after")
            clauses.append(t.c.id > sa.bindparam("k_after"))
        sel = sa.select(t).where(*clauses)
        pg = self.name == "postgresql"
        for o in order_by:
            col = t.c[FILTER_COLUMNS.get(o.field, o.field)]
            if o.descending:
                sel = sel.order_by(col.desc().nulls_last() if pg else col.desc())
            else:
                sel = sel.order_by(col.asc().nulls_first() if pg else col.asc())
        if paged:
            names += ["k_limit", "k_offset"]
            sel = sel.limit(sa.bindparam("k_limit")).offset(sa.bindparam("k_offset"))
        return Query(self._compile(sel, names), binders)

    # ---- conditions ----
    def _where(self, kind: type[Entity], where: Sequence[Condition], names: list[str]) -> tuple[list[Any], list[Binder]]:
        t = ENTITY_TABLES[kind]
        clauses: list[Any] = []
        binders: list[Binder] = []
        for c in where:
            clause, binder = self._condition(kind, t, c, names)
            clauses.append(clause)
            binders.append(binder)
        return clauses, binders

    def _param(self, names: list[str]) -> Any:
        name = f"p{len(names)}"
        names.append(name)
        return sa.bindparam(name)

    def _condition(self, kind: type[Entity], t: sa.Table, c: Condition, names: list[str]) -> tuple[ColumnElement[bool], Binder]:
        op, vkind = c.op, c.kind
        if op == "any_of":
            parts: list[Any] = []
            group_binders: list[list[Binder]] = []
            for group in c.value:
                clauses, binders = self._where(kind, group, names)
                parts.append(sa.and_(*clauses) if clauses else sa.true())
                group_binders.append(binders)

            def bind_groups(value: Any) -> list[Any]:
                out: list[Any] = []
                for group, binders in zip(value, group_binders):
                    for sub, b in zip(group, binders):
                        out += b(sub.value)
                return out

            return (sa.or_(*parts) if parts else sa.false()), bind_groups
        if op == "in_subquery":
            sub_kind, sub_conds = c.value
            st = ENTITY_TABLES[sub_kind]
            clauses, binders = self._where(sub_kind, sub_conds, names)
            inner = sa.select(st.c.id).where(*clauses).correlate(None)

            def bind_sub(value: Any) -> list[Any]:
                out: list[Any] = []
                for sub, b in zip(value[1], binders):
                    out += b(sub.value)
                return out

            return t.c[c.field].in_(inner), bind_sub
        if vkind in ("emails", "phones", "tags", "lines"):
            return self._list_condition(kind, t, c, names)
        if vkind in _UNTYPED or (vkind in TYPED and op == "is_null"):
            return self._custom_condition(t, c, names)
        if vkind in TYPED:
            col: Any = typed_expr(self.dialect, t, c.field[7:], vkind, self.vcols.get(t.name, frozenset()))
        else:
            col = t.c[FILTER_COLUMNS.get(c.field, c.field)]
        if op == "is_null":
            return (col.is_(None) if c.value else col.is_not(None)), _no_values
        convert = self._converter(vkind, op)
        if op == "in":
            n = len(c.value)
            if n == 0:
                return sa.false(), _no_values
            clause, bind = self._in(col, names, n, _ELEM.get(vkind, "text"))
            return clause, (lambda v: bind([convert(x) for x in v]))
        if op in ("contains", "startswith"):
            return self._text_match(col, op, names)
        p = self._param(names)
        if vkind == "int" and self.name == "postgresql":  # any 64-bit value against an INTEGER column: no error
            p = sa.cast(p, sa.BigInteger)
        elif vkind in ("custom_int", "custom_decimal") and self.name == "postgresql":
            p = sa.cast(p, sa.Numeric)
        elif vkind in ("custom_text", "custom_date") and self.name == "postgresql":
            p = sa.cast(p, sa.Text)
        one: Binder = lambda v: [convert(v)]  # noqa: E731 - a tiny closure per condition shape
        if op == "eq":
            return col == p, one
        if op == "ne":
            return col != p, one
        if op == "lt":
            return col < p, one
        if op == "lte":
            return col <= p, one
        if op == "gt":
            return col > p, one
        if op == "gte":
            return col >= p, one
        raise AssertionError(op)  # pragma: no cover - _where.py checked the operator

    def _in(self, expr: Any, names: list[str], n: int, elem: str) -> tuple[ColumnElement[bool], Binder]:
        """``expr IN (<n values>)``, its SQL linear in ``n``. On PostgreSQL always ``expr = ANY(:p)`` with one
        array parameter; elsewhere ``n`` parameters up to ``LONG_IN`` values, past it one JSON list unpacked in
        SQL (``json_each`` on SQLite, ``JSON_TABLE`` on MariaDB/MySQL). So a list of any length (up to
        ``MAX_IN_VALUES``) stays within the drivers' parameter limits (65,535 on PostgreSQL and MariaDB,
        32,766 on SQLite) and SQLite's expression depth, and long lists share one cached statement.

        ``elem`` is the SQL type of the values as the binder receives them (already converted for the
        driver): ``text``, ``int``, ``datetime`` or ``date``."""
        if self.name == "postgresql":
            p = self._param(names)
            return expr == sa.func.any(sa.cast(p, ARRAY(_PG_ELEM[elem]))), _as_list
        if n <= LONG_IN:
            return expr.in_([self._param(names) for _ in range(n)]), list
        p = self._param(names)
        if self.name == "sqlite":
            values: Any = sa.select(sa.literal_column("value")).select_from(sa.func.json_each(p))
            return expr.in_(values), _json_list
        coll = mysql_collation(self.dialect)
        column = {
            "text": f"LONGTEXT CHARACTER SET utf8mb4 COLLATE {coll}",
            "int": "BIGINT",
            "datetime": "DATETIME(6)",
            "date": "DATE",
            "decimal": "DECIMAL(65,30)",
        }[elem]
        table = sa.text(f"JSON_TABLE(:{p.key}, '$[*]' COLUMNS (v {column} PATH '$')) AS pycrm_in").bindparams(p)
        values = sa.select(sa.literal_column("pycrm_in.v")).select_from(table)
        return expr.in_(values), _json_list

    def _converter(self, vkind: str, op: str) -> Callable[[Any], Any]:
        cx = self.codec
        if vkind == "custom_date":
            return _iso
        if vkind == "custom_decimal" and self.name == "sqlite":
            return float
        if vkind == "datetime":
            return cx.dt_out
        if vkind == "date":
            return cx.date_out
        if vkind == "money":
            return lambda v: money_filter_value(v if isinstance(v, Decimal) else Decimal(v), op)
        if vkind in ("decimal", "score"):
            return lambda v: decimal_filter_key(v if isinstance(v, Decimal) else Decimal(v))
        return _same

    def _custom_condition(self, t: sa.Table, c: Condition, names: list[str]) -> tuple[ColumnElement[bool], Binder]:
        """``custom.<key>`` on the JSON column, type-exact like the memory adapter (True is not 1)."""
        col, key, op = t.c.custom, c.field[7:], c.op
        order: list[Callable[[Any], Any]] = []  # how each bound parameter is made from a filter value

        def param(make: Callable[[Any], Any]) -> Any:
            order.append(make)
            return self._param(names)

        if self.name == "postgresql":
            doc = sa.cast(col, JSONB).op("->", return_type=JSONB)(sa.literal(key))
            jtype: Any = sa.func.coalesce(sa.func.jsonb_typeof(doc), "null")

            def eq(i: int, v: Any) -> Any:
                return doc == sa.cast(param(_json_at(i)), JSONB)
        elif self.name == "sqlite":
            path = f'$."{key}"'
            jtype = sa.func.coalesce(sa.func.json_type(col, path), "null")
            names_of = {str: "text", int: "integer"}

            def eq(i: int, v: Any) -> Any:
                if isinstance(v, bool):  # a parameter, not a literal: the cached SQL serves True and False
                    return jtype == param(_bool_at(i))
                return sa.and_(jtype == names_of[type(v)], sa.func.json_extract(col, path) == param(_at(i)))
        else:  # MariaDB / MySQL
            path = f'$."{key}"'
            raw = sa.func.json_extract(col, path)
            jtype = sa.func.upper(sa.func.coalesce(sa.func.json_type(raw), "NULL"))
            coll = mysql_collation(self.dialect)

            def eq(i: int, v: Any) -> Any:
                if isinstance(v, bool):
                    return sa.and_(jtype == "BOOLEAN", raw == param(_bool_at(i)))
                if isinstance(v, int):
                    return sa.and_(jtype == "INTEGER", sa.cast(raw, sa.BigInteger) == param(_at(i)))
                text = sa.func.json_unquote(raw).collate(coll)
                return sa.and_(jtype == "STRING", text == param(_at(i)))

        missing = sa.func.lower(jtype) == "null"
        if op == "is_null":
            return (missing if c.value else ~missing), _no_values
        if op == "in":
            return self._custom_in(col, key, c.value, names)
        values = [c.value]
        if not values:
            return sa.false(), _no_values
        match = sa.or_(*[eq(i, v) for i, v in enumerate(values)])
        expr = sa.and_(~missing, ~match) if op == "ne" else match
        return expr, (lambda v: [make([v]) for make in order])

    def _custom_in(self, col: Any, key: str, values: Sequence[Any], names: list[str]) -> tuple[ColumnElement[bool], Binder]:
        """``custom.<key> in [...]``, type-exact, its SQL linear in the number of values: on PostgreSQL the
        JSONB value ``= ANY`` of one ``jsonb[]`` parameter; elsewhere one ``IN`` list per JSON type present
        (texts, whole numbers, booleans), each through :meth:`_in`."""
        if not values:
            return sa.false(), _no_values
        if self.name == "postgresql":
            doc = sa.cast(col, JSONB).op("->", return_type=JSONB)(sa.literal(key))
            p = self._param(names)
            return doc == sa.func.any(sa.cast(p, ARRAY(JSONB))), (lambda v: [[json.dumps(x) for x in v]])
        path = f'$."{key}"'
        if self.name == "sqlite":
            jtype: Any = sa.func.json_type(col, path)
            extracted = sa.func.json_extract(col, path)
            typed: list[tuple[Any, Any, str]] = [
                (jtype == "text", extracted, "text"),
                (jtype == "integer", extracted, "int"),
                (None, jtype, "text"),  # json_type is the word 'true' or 'false'
            ]
        else:  # MariaDB / MySQL
            raw = sa.func.json_extract(col, path)
            jtype = sa.func.upper(sa.func.json_type(raw))
            text = sa.func.json_unquote(raw).collate(mysql_collation(self.dialect))
            typed = [(jtype == "STRING", text, "text"), (jtype == "INTEGER", sa.cast(raw, sa.BigInteger), "int")]
            typed.append((jtype == "BOOLEAN", raw, "text"))
        parts: list[Any] = []
        binders: list[tuple[int, Binder]] = []
        for i, (group, (guard, expr, elem)) in enumerate(zip(_by_type(values), typed)):
            if group:
                clause, bind = self._in(expr, names, len(group), elem)
                parts.append(clause if guard is None else sa.and_(guard, clause))
                binders.append((i, bind))

        def bind_all(v: Any) -> list[Any]:
            groups = _by_type(v)
            out: list[Any] = []
            for i, bind in binders:
                out += bind(groups[i])
            return out

        return sa.or_(*parts), bind_all

    def _text_match(self, col: Any, op: str, names: list[str]) -> tuple[ColumnElement[bool], Binder]:
        p = self._param(names)
        if self.name == "sqlite":
            fn = sa.func.pycrm_contains if op == "contains" else sa.func.pycrm_startswith
            return fn(col, p) == sa.literal_column("1"), (lambda v: [v])
        if op == "contains":
            binder: Binder = lambda v: ["%" + _escape_like(v) + "%"]  # noqa: E731
        else:
            binder = lambda v: [_escape_like(v) + "%"]  # noqa: E731
        coll = self.lower_collation
        if coll is not None:
            left = sa.func.lower(col.collate(coll))
            right = sa.func.lower(sa.cast(p, sa.Text).collate(coll))
        else:
            left, right = sa.func.lower(col), sa.func.lower(p)
        return left.like(right, escape="/"), binder

    def _list_condition(
        self, kind: type[Entity], t: sa.Table, c: Condition, names: list[str]
    ) -> tuple[ColumnElement[bool], Binder]:
        lt = LIST_TABLES[kind][c.field]
        op = c.op
        if op == "is_null":
            has_any = sa.exists().where(lt.owner == t.c.id)
            return (~has_any if c.value else has_any), _no_values
        if op == "in":
            n = len(c.value)
            if n == 0:
                return sa.false(), _no_values
            clause, bind = self._in(lt.value, names, n, "text")
            return t.c.id.in_(sa.select(lt.owner).where(clause)), bind
        sub = sa.select(lt.owner).where(lt.value == self._param(names))
        return (t.c.id.in_(sub) if op == "eq" else t.c.id.not_in(sub)), _one


def _same(v: Any) -> Any:
    return v


def _iso(v: Any) -> Any:
    return v.isoformat()


def _as_list(v: Any) -> list[Any]:
    return [list(v)]


def _json_value(v: Any) -> Any:
    if isinstance(v, (dt.datetime, dt.date)):  # MariaDB's JSON_TABLE reads DATETIME(6) / DATE from ISO text
        return v.isoformat(" ") if isinstance(v, dt.datetime) else v.isoformat()
    if isinstance(v, Decimal):  # MariaDB's JSON_TABLE reads DECIMAL from text exactly
        return str(v)
    return v


def _json_list(v: Any) -> list[Any]:
    return [json.dumps([_json_value(x) for x in v], ensure_ascii=False)]


#: SQL type of the values an ``in`` list binds, per filter kind (after the codec's conversion).
_ELEM = {"int": "int", "money": "int", "datetime": "datetime", "date": "date", "custom_int": "int", "custom_decimal": "decimal"}
_PG_ELEM: dict[str, Any] = {
    "text": sa.Text,
    "int": sa.BigInteger,
    "datetime": sa.DateTime,
    "date": sa.Date,
    "decimal": sa.Numeric,
}


def _no_values(v: Any) -> list[Any]:
    return []


def _one(v: Any) -> list[Any]:
    return [v]
