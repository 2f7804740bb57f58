"""The raw-row fast path of exports on SQL stores: column values straight from SQL rows, no entities.

A Core ``SELECT`` of just the columns the chosen fields need, with the same WHERE as every other query
path (the conditions come from ``Session._conditions``, compiled by the store's own condition builder),
paged by keyset on ``id``. Each column value is turned into exactly the flat form the entity path gives
(``_convert.flatten``); a test checks that both paths write the same bytes. Only used when the session
says stored rows may leave as they are (``Session._raw_rows_ok``: no masking, no encrypted fields).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from pycrm.domain import ENTITIES
from pycrm.io._convert import flat_value
from pycrm.storage._where import Condition
from pycrm.storage.sql.mapping import json_in, money_in
from pycrm.storage.sql.queries import Query
from pycrm.storage.sql.tables import ENTITY_TABLES

__all__ = ["raw_batches", "supports_raw"]

_DATETIMES = frozenset({"created_at", "updated_at", "occurred_at", "closed_at", "first_response_at", "resolved_at", "due_at"})
_LISTS = frozenset({"emails", "phones", "tags"})
_DICTS = frozenset({"custom", "consent"})
_UNSAFE = (";", ",", "|", "；", "，", "、", "\n", '"')


def supports_raw(tx: Any) -> bool:
    """Whether ``tx`` is a SQL transaction this module can read from."""
    return hasattr(tx, "_core") and hasattr(tx, "_q") and hasattr(tx, "_cx")


def _history(kind: str) -> Callable[[Any], Any]:
    a, b = ("from_stage", "to_stage") if kind == "stage" else ("from_status", "to_status")

    def conv(v: Any) -> Any:
        return [{a: c["from"], b: c["to"], "at": c["at"], "by": c["by"]} for c in json_in(v)]

    return conv


Cell = Callable[[Sequence[Any]], Any]


def _at(i: int, fn: Callable[[Any], Any]) -> Cell:
    return lambda r: fn(r[i])


def _then(first: Callable[[Any], Any], second: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: second(first(v))


def _money(i: int, j: int, k: int) -> Cell:
    return lambda r: str(money_in(r[i], r[j], r[k]).amount)


def _plan(tx: Any, kind: str, fields: Sequence[str], json_native: bool) -> tuple[list[str], list[Cell]]:
    """(columns to select, per output field a function of the selected row)."""
    cx = tx._cx
    cols: list[str] = ["id"]

    def col(name: str) -> int:
        if name not in cols:
            cols.append(name)
        return cols.index(name)

    empty = None if json_native else ""

    def flat(v: Any) -> Any:
        return flat_value(v, json_native)

    def custom(key: str) -> Callable[[Any], Any]:
        def get(v: Any) -> Any:
            x = json_in(v).get(key)
            return flat(x) if not isinstance(x, (int, float)) or json_native else str(x)

        return get

    def dt_out(v: Any) -> Any:
        if v is None:
            return empty
        if type(v) is str and len(v) == 26 and v[10] == " ":  # SQLite text: 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC
            return f"{v[:10]}T{v[11:19] if v.endswith('.000000') else v[11:]}+00:00"
        return cx.dt_in(v).isoformat()

    def date_out(v: Any) -> Any:
        return empty if v is None else cx.date_in(v).isoformat()

    def list_out(v: Any) -> Any:
        if json_native:
            return json_in(v)
        if v == "[]" or v is None:
            return ""
        if type(v) is str and v.startswith('["') and "\\" not in v:  # plain strings, as mapping._str_list writes them
            items = v[2:-2].split('","')
            if not items[0].startswith("[") and not any(c in x for x in items for c in _UNSAFE):
                return "; ".join(items)
        return flat_value(json_in(v))

    def json_out(v: Any) -> Any:
        # stored JSON is compact with non-ASCII kept (mapping.dump_json), exactly what flat_value writes
        if not json_native and type(v) is str and "\\u" not in v:
            return "" if v in ("{}", "[]") else v
        return flat(json_in(v))

    def bool_out(v: Any) -> Any:
        return bool(v) if json_native else ("true" if v else "false")

    def int_out(v: Any) -> Any:
        return v if json_native else str(v)

    def text_out(v: Any) -> Any:
        return empty if v is None else v

    out: list[Cell] = []
    for f in fields:
        if f == "amount":
            out.append(_money(col("amount_e4"), col("amount_scale"), col("currency")))
        elif f.startswith("custom."):
            out.append(_at(col("custom"), custom(f[7:])))
        elif f in _DATETIMES:
            out.append(_at(col(f), dt_out))
        elif f == "expected_close":
            out.append(_at(col(f), date_out))
        elif f in _LISTS:
            out.append(_at(col(f), list_out))
        elif f in _DICTS or f == "addresses":
            out.append(_at(col(f), json_out))
        elif f in ("stage_history", "status_history"):
            out.append(_at(col(f), _then(_history(f.split("_")[0]), flat)))
        elif f == "is_primary":
            out.append(_at(col(f), bool_out))
        elif f == "version":
            out.append(_at(col(f), int_out))
        else:  # text, ids, enums, exact decimal text
            out.append(_at(col(f), text_out))
    return cols, out


def _fetch(stmt: Any, params: Any) -> Callable[[Any], list[Any]]:
    return lambda conn: list(conn.exec_driver_sql(stmt.sql, params).fetchall())


def raw_batches(
    tx: Any, kind: str, conds: list[Condition], fields: Sequence[str], *, json_native: bool = False, batch_size: int = 5000
) -> Iterator[list[list[Any]]]:
    """Batches of flat rows of ``fields`` for the ``kind`` records matching ``conds``, in id order."""
    cls = ENTITIES[kind]
    t = ENTITY_TABLES[cls]
    cols, convs = _plan(tx, kind, fields, json_native)
    q = tx._q
    queries = []
    for after in (False, True):
        names: list[str] = []
        clauses, binders = q._where(cls, conds, names)
        if after:
            names.append("k_after")
            clauses.append(t.c.id > sa.bindparam("k_after"))
        names.append("k_limit")
        sel = sa.select(*[t.c[c] for c in cols]).where(*clauses).order_by(t.c.id).limit(sa.bindparam("k_limit"))
        queries.append(Query(q._compile(sel, names), binders))
    first, later = queries
    last: str | None = None
    while True:
        query = first if last is None else later
        extra: tuple[Any, ...] = (batch_size,) if last is None else (last, batch_size)
        rows = tx._core(_fetch(query.stmt, query.stmt.bind(query.values(conds, extra))))
        if not rows:
            return
        yield [[c(r) for c in convs] for r in rows]
        if len(rows) < batch_size:
            return
        last = rows[-1][0]
