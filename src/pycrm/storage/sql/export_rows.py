"""The raw-row fast path of exports on SQL stores: column values straight from SQL rows, no entities.

The SQL adapter's :class:`~pycrm.storage.port.RowStreams` (``SQLTransaction.export_batches`` and
``id_ranges``). A Core ``SELECT`` of just the columns the chosen fields need, with the same WHERE as every
other query path (the conditions come from ``Session._conditions``, compiled by the store's own condition
builder), paged by keyset on ``id``. Each column value is turned into exactly the flat form the entity
path gives (``pycrm.io``'s ``flatten``; values in no simpler stored form go through the ``flat`` function
the caller hands in); a test checks that both paths write the same bytes. Only used when the session says
stored rows may leave as they are (``Session._raw_rows_ok``: no masking, no encrypted fields).

Conversion works on whole columns of a batch, not cell by cell: a batch of rows is transposed, each
column converted by one function (text columns pass through: the CSV writer writes None as an empty
field, as the entity path does), and transposed back. The common stored forms are converted with a few
string operations on the column joined into one text (lists written by ``mapping._str_list``, SQLite
date-times, JSON without ``\\u`` escapes); a column that holds anything else in a batch is converted
cell by cell with the general functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from pycrm.domain import Entity
from pycrm.storage._where import Condition
from pycrm.storage.port import FlatValue
from pycrm.storage.sql.mapping import json_in, money_in
from pycrm.storage.sql.queries import Query
from pycrm.storage.sql.tables import ENTITY_TABLES

if TYPE_CHECKING:
    from pycrm.storage.sql.store import SQLTransaction

__all__ = ["export_batches", "id_ranges"]

_DATETIMES = frozenset(
    {
        "created_at",
        "updated_at",
        "occurred_at",
        "closed_at",
        "first_response_at",
        "resolved_at",
        "due_at",
        "sent_at",
        "answered_at",
    }
)
_LISTS = frozenset({"emails", "phones", "tags"})
_DICTS = frozenset({"custom", "consent"})
_UNSAFE = (";", ",", "|", "；", "，", "、", "\n", '"')
#: What may not be left in a joined list column once its JSON delimiters are removed (see ``_lists``).
_LIST_LEFTOVER = (*_UNSAFE, "\\", "[", "]")
_SEP = "\x00"  # joins a column: stored JSON and SQLite date-times never hold it (checked, not assumed)

Column = Sequence[Any]
ColumnConv = Callable[..., Sequence[Any]]
"""Columns of a batch (one or more, as the plan says) -> the flat values of one output field."""


def _history(kind: str) -> Callable[[Any], Any]:
    a, b = ("from_stage", "to_stage") if kind == "stage" else ("from_status", "to_status")

    def conv(v: Any) -> Any:
        return [{a: c["from"], b: c["to"], "at": c["at"], "by": c["by"]} for c in json_in(v)]

    return conv


def _cells(fn: Callable[..., Any]) -> ColumnConv:
    """A column converter applying ``fn`` to each cell (to the cells of each row for several columns)."""

    def conv(*cols: Column) -> list[Any]:
        return list(map(fn, *cols))

    return conv


def _all_text(col: Column) -> bool:
    return not col or set(map(type, col)) == {str}


def _lists(cell: Callable[[Any], Any]) -> ColumnConv:
    """Lists of strings as stored by ``mapping._str_list`` (``["a","b"]``, ``[]``) joined with ``"; "``.

    When every value of the column is such a list whose items hold no separator, no quote, backslash
    (JSON escape) or bracket, the column is converted with a few replacements on its joined text, which
    gives exactly ``"; ".join(items)`` per value; otherwise cell by cell.
    """

    def conv(col: Column) -> Sequence[Any]:
        n = len(col)
        if n and _all_text(col):
            s = _SEP.join(col)
            if (
                s[0] == "["
                and s[-1] == "]"
                and s.count("[") == n
                and s.count("]") == n
                and s.count(_SEP + "[") == n - 1
                and s.count("]" + _SEP) == n - 1
                and s.count(_SEP) == n - 1
                and _clean(s.replace('","', "").replace('["', "").replace('"]', "").replace("[]", ""))
            ):
                return s.replace('","', "; ").replace('["', "").replace('"]', "").replace("[]", "").split(_SEP)
        return list(map(cell, col))

    return conv


def _clean(items: str) -> bool:
    return not any(c in items for c in _LIST_LEFTOVER)


def _json_text(cell: Callable[[Any], Any]) -> ColumnConv:
    """Stored compact JSON without ``\\u`` escapes is already its flat form (``""`` for ``{}`` and ``[]``)."""

    def conv(col: Column) -> Sequence[Any]:
        if _all_text(col) and "\\u" not in _SEP.join(col):
            return ["" if v == "{}" or v == "[]" else v for v in col]
        return list(map(cell, col))

    return conv


def _sqlite_datetimes(cell: Callable[[Any], Any]) -> ColumnConv:
    """SQLite date-times (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC) to ISO 8601 with ``+00:00``, a column at once.

    ``.000000`` is dropped, as ``datetime.isoformat`` does; anything but 26-character texts with the one
    space at index 10 is converted cell by cell.
    """

    def conv(col: Column) -> Sequence[Any]:
        n = len(col)
        if n and _all_text(col) and set(map(len, col)) == {26}:
            s = _SEP.join(col) + _SEP  # every value now starts at a multiple of 27
            if s.count(" ") == n and s[10::27] == " " * n and s.count(_SEP) == n:
                out = s.replace(" ", "T").replace(".000000" + _SEP, _SEP).replace(_SEP, "+00:00" + _SEP).split(_SEP)
                out.pop()
                return out
        return list(map(cell, col))

    return conv


def _money(v: Any, scale: Any, currency: Any) -> str:
    return str(money_in(v, scale, currency).amount)


def _plan(
    tx: SQLTransaction, fields: Sequence[str], json_native: bool, flat_value: FlatValue
) -> tuple[list[str], list[tuple[tuple[int, ...], ColumnConv | None]]]:
    """(columns to select, per output field the selected columns it reads and their converter; None: as is)."""
    cx: Any = tx.codec  # dt_in / date_in of a value that is not None
    sqlite = cx.dialect == "sqlite"
    cols: list[str] = ["id"]

    def col(name: str) -> tuple[int, ...]:
        if name not in cols:
            cols.append(name)
        return (cols.index(name),)

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
        return flat_value(json_in(v), False)

    def json_out(v: Any) -> Any:
        # stored JSON is compact with non-ASCII kept (mapping.dump_json), exactly what flat_value writes
        if not json_native and type(v) is str and "\\u" not in v:
            return "" if v in ("{}", "[]") else v
        return flat(json_in(v))

    def history(name: str) -> Callable[[Any], Any]:
        conv = _history(name)
        return lambda v: flat(conv(v))

    def text_out(col: Column) -> Sequence[Any]:
        return col if not json_native and None not in col else [empty if v is None else v for v in col]

    out: list[tuple[tuple[int, ...], ColumnConv | None]] = []
    for f in fields:
        if f == "amount":
            out.append((col("amount_e4") + col("amount_scale") + col("currency"), _cells(_money)))
        elif f.startswith("custom."):
            out.append((col("custom"), _cells(custom(f[7:]))))
        elif f in _DATETIMES:
            out.append((col(f), _sqlite_datetimes(dt_out) if sqlite else _cells(dt_out)))
        elif f == "expected_close":
            out.append((col(f), _cells(date_out)))
        elif f in _LISTS:
            out.append((col(f), _cells(list_out) if json_native else _lists(list_out)))
        elif f == "lines":  # NULL: an order without lines
            out.append((col(f), _cells(lambda v: ([] if json_native else "") if v is None else json_out(v))))
        elif f in _DICTS or f == "addresses":
            out.append((col(f), _cells(json_out) if json_native else _json_text(json_out)))
        elif f in ("stage_history", "status_history"):
            out.append((col(f), _cells(history(f.split("_")[0]))))
        elif f == "is_primary":
            out.append((col(f), _cells(bool) if json_native else _cells(lambda v: "true" if v else "false")))
        elif f == "version":
            out.append((col(f), None if json_native else _cells(str)))
        elif json_native:  # text, ids, enums, exact decimal text: None stays null
            out.append((col(f), None))
        else:
            out.append((col(f), text_out))
    return cols, out


def export_batches(
    tx: SQLTransaction,
    kind: type[Entity],
    conditions: list[Condition],
    fields: Sequence[str],
    *,
    flat: FlatValue,
    json_native: bool = False,
    batch_size: int = 5000,
    after: str | None = None,
    upto: str | None = None,
) -> Iterator[list[Sequence[Any]]]:
    """Batches of the ``kind`` records matching ``conditions``, in id order, as columns: the flat values of
    each of ``fields`` (``SQLTransaction.export_batches``).

    ``after`` / ``upto``: only records whose id is greater than ``after`` / at most ``upto`` (a range of a
    parallel export, see ``pycrm.io._export_workers``).
    """
    conds = conditions
    cols, plan = _plan(tx, fields, json_native, flat)
    queries = [_keyset_select(tx, kind, conds, cols, upto is not None, first) for first in (True, False)]
    last = after
    bound = () if upto is None else (upto,)
    while True:
        query = queries[0] if last is None else queries[1]
        extra = (*bound, batch_size) if last is None else (last, *bound, batch_size)
        rows = tx.fetch_rows(kind, query.stmt.sql, query.stmt.bind(query.values(conds, extra)))
        if not rows:
            return
        columns = list(zip(*rows))
        yield [columns[ix[0]] if conv is None else conv(*[columns[i] for i in ix]) for ix, conv in plan]
        if len(rows) < batch_size:
            return
        last = rows[-1][0]


def _keyset_select(
    tx: SQLTransaction, cls: type[Entity], conds: list[Condition], cols: list[str], upto: bool, first: bool, offset: bool = False
) -> Query:
    """``SELECT cols WHERE conds [AND id > :after] [AND id <= :upto] ORDER BY id LIMIT :n [OFFSET :m]``, compiled."""
    t = ENTITY_TABLES[cls]
    q = tx.queries
    names: list[str] = []
    clauses, binders = q._where(cls, conds, names)
    if not first:
        names.append("k_after")
        clauses.append(t.c.id > sa.bindparam("k_after"))
    if upto:
        names.append("k_upto")
        clauses.append(t.c.id <= sa.bindparam("k_upto"))
    names.append("k_limit")
    sel = sa.select(*[t.c[c] for c in cols]).where(*clauses).order_by(t.c.id).limit(sa.bindparam("k_limit"))
    if offset:
        names.append("k_offset")
        sel = sel.offset(sa.bindparam("k_offset"))
    return Query(q._compile(sel, names), binders)


def id_ranges(tx: SQLTransaction, kind: type[Entity], conditions: list[Condition], size: int, total: int) -> list[str | None]:
    """Split the ``total`` records matching ``conditions`` (as counted in this transaction) into runs of
    ``size`` in id order: the last id of each run, None for the last run (it goes to the end). Range ``i``
    is then ``(ends[i - 1], ends[i]]`` (``SQLTransaction.id_ranges``)."""
    cls, conds = kind, conditions
    first, later = (_keyset_select(tx, cls, conds, ["id"], False, f, offset=True) for f in (True, False))
    ends: list[str | None] = []
    last: str | None = None
    for _ in range(-(-total // size) - 1):
        query = first if last is None else later
        extra = (1, size - 1) if last is None else (last, 1, size - 1)
        rows = tx.fetch_rows(cls, query.stmt.sql, query.stmt.bind(query.values(conds, extra)))
        if not rows:  # pragma: no cover - fewer records than counted in the same transaction
            break
        last = rows[0][0]
        ends.append(last)
    ends.append(None)
    return ends
