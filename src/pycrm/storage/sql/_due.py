"""The time rules of ``crm.run_due`` in the database: the SQL adapter's :class:`~pycrm.storage.port.DueQueries`.

One Core statement per rule (the kinds and their rows are listed in :mod:`pycrm.storage._due`, whose Python
the memory adapter runs), values as bound parameters only, on SQLite, PostgreSQL and MariaDB/MySQL:

* ``task_due`` / ``task_overdue``: a range on ``tasks.due_at`` of the tasks not done;
* ``dormant``: ``NOT EXISTS`` an order / an interaction after the cutoff (each an index seek on
  ``(customer_id, occurred_at)``), and for the customers found the latest of each (``MAX`` scalar
  subqueries on the same indexes) -- the period of the firing;
* ``stale``: the last element of the JSON ``stage_history`` (its ``at``, ISO text with ``+00:00``, which
  sorts as the times do under a binary collation) or ``created_at`` when it is empty, for deals outside the
  won and lost stages;
* ``anniversary``: the ``MM-DD`` of a date / datetime column or of a ``custom.<name>`` date (ISO text in
  the JSON column), on ``now``'s day, in an earlier year; the caller checks each found value once more.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from pycrm.domain import ENTITIES
from pycrm.storage._due import anniversary_days
from pycrm.storage.sql import tables
from pycrm.storage.sql.coltypes import mysql_collation
from pycrm.storage.sql.tables import ENTITY_TABLES

if TYPE_CHECKING:
    from pycrm.storage.sql.store import SQLTransaction

__all__ = ["due"]


def _naive(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(tzinfo=None)


def _aware(v: Any) -> Any:
    if isinstance(v, str):
        v = dt.datetime.fromisoformat(v)
    if isinstance(v, dt.datetime):
        return v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v.astimezone(dt.UTC)
    return v


def _binary(d: str, expr: Any, tx: SQLTransaction) -> Any:
    """Text compared by code point (the ISO times of a JSON document)."""
    if d == "postgresql":
        return sa.collate(expr, "C")
    if d == "mysql":
        return sa.collate(expr, mysql_collation(tx._store.engine.dialect))
    return expr


def _text(d: str, col: Any) -> Any:
    """A JSON column as its text (PostgreSQL stores ``json``)."""
    return sa.cast(col, sa.Text) if d == "postgresql" else sa.type_coerce(col, sa.Text)


def _json_text(d: str, col: Any, path: str, pg_key: Any) -> Any:
    """A text value inside a JSON text column: ``path`` (a JSON path, bound) or on PostgreSQL ``->> pg_key``."""
    if d == "postgresql":
        return sa.cast(col, JSONB).op("->>", return_type=sa.Text)(pg_key)
    if d == "sqlite":
        return sa.func.json_extract(_text(d, col), sa.literal(path, sa.Text))
    return sa.func.json_unquote(sa.func.json_extract(_text(d, col), sa.literal(path, sa.Text)))


def _exists(*where: Any) -> Any:
    """``EXISTS (SELECT 1 ...)``: SQLite reads the rows for ``EXISTS (SELECT * ...)`` (what ``sa.exists()`` writes),
    where ``SELECT 1`` stays in the index (a dormant-customers query: 10% faster)."""
    return sa.select(sa.literal(1)).where(*where).exists()


def _tasks(now: dt.datetime, until: dt.datetime | None) -> Any:
    t = tables.tasks
    where = [t.c.done == sa.false()]
    if until is None:
        where.append(t.c.due_at < _naive(now))
    else:
        where += [t.c.due_at >= _naive(now), t.c.due_at <= _naive(until)]
    return sa.select(t.c.id, t.c.due_at).where(*where).order_by(t.c.id)


def _latest(t: sa.Table) -> Any:
    """A customer's latest ``occurred_at`` in ``t`` (orders, interactions): one seek to the end of the
    ``(customer_id, occurred_at)`` index (``MAX()`` read every entry of the customer)."""
    c = tables.customers
    return sa.select(t.c.occurred_at).where(t.c.customer_id == c.c.id).order_by(t.c.occurred_at.desc()).limit(1).scalar_subquery()


def _dormant(cut: dt.datetime, *columns: Any) -> Any:
    """``columns`` of the customers without an order or interaction after ``cut`` (and with one, or created by
    then), by id."""
    c, o, i = tables.customers, tables.orders, tables.interactions
    return (
        sa.select(c.c.id, *columns)
        .where(
            ~_exists(o.c.customer_id == c.c.id, o.c.occurred_at > cut),
            ~_exists(i.c.customer_id == c.c.id, i.c.occurred_at > cut),
            sa.or_(
                c.c.created_at <= cut,
                _exists(o.c.customer_id == c.c.id),
                _exists(i.c.customer_id == c.c.id),
            ),
        )
        .order_by(c.c.id)
    )


def dormant_statement(cutoff: dt.datetime) -> Any:
    """Customers without an order or interaction after ``cutoff`` (and with one, or created by then), with
    their latest order and latest interaction times."""
    # the times as stored (text on SQLite), parsed by _aware: SQLAlchemy's own parsing costs more than the query
    return _dormant(
        _naive(cutoff),
        sa.type_coerce(_latest(tables.orders), sa.String).label("last_order"),
        sa.type_coerce(_latest(tables.interactions), sa.String).label("last_interaction"),
    )


def _stale(tx: SQLTransaction, d: str, cutoff: dt.datetime, closed: Sequence[tuple[str, str]]) -> Any:
    t = tables.opportunities
    hist = _text(d, t.c.stage_history)
    last: Any
    if d == "postgresql":
        element = sa.cast(hist, JSONB).op("->", return_type=JSONB)(sa.literal(-1, sa.Integer))
        last = element.op("->>", return_type=sa.Text)(sa.literal("at", sa.Text))
    elif d == "sqlite":
        last = sa.func.json_extract(hist, sa.literal("$[#-1].at", sa.Text))
    else:
        path = sa.func.concat(sa.literal("$[", sa.Text), sa.func.json_length(hist) - 1, sa.literal("].at", sa.Text))
        last = sa.func.json_unquote(sa.func.json_extract(hist, path))
    empty = hist == sa.literal("[]", sa.Text)
    cut_text = cutoff.astimezone(dt.UTC).isoformat()
    where = [
        sa.or_(
            sa.and_(empty, t.c.created_at <= _naive(cutoff)),
            sa.and_(~empty, _binary(d, last, tx) <= sa.literal(cut_text, sa.Text)),
        )
    ]
    if closed:
        where.append(~sa.or_(*[sa.and_(t.c.pipeline == p, t.c.stage == s) for p, s in closed]))
    return sa.select(t.c.id, t.c.created_at, sa.case((empty, sa.null()), else_=last).label("last")).where(*where).order_by(t.c.id)


def _anniversary(d: str, now: dt.datetime, repository: str, field: str) -> Any:
    t = ENTITY_TABLES[ENTITIES[repository]]
    days = list(anniversary_days(now))
    year = now.astimezone(dt.UTC).year
    if field.startswith("custom."):
        key = field[7:]
        value = _json_text(d, t.c.custom, '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"', sa.literal(key, sa.Text))
        md = sa.func.substr(value, 6, 5)
        where = [sa.func.length(value) >= 10, md.in_(days), sa.func.substr(value, 1, 4) < sa.literal(f"{year:04d}", sa.Text)]
        return sa.select(t.c.id, value).where(*where).order_by(t.c.id)
    col = t.c[field]
    if d == "sqlite":
        md = sa.func.substr(col, 6, 5)
        earlier = sa.func.substr(col, 1, 4) < sa.literal(f"{year:04d}", sa.Text)
    elif d == "postgresql":
        md = sa.func.to_char(col, sa.literal("MM-DD", sa.Text))
        earlier = sa.extract("year", col) < year
    else:
        md = sa.func.date_format(col, sa.literal("%m-%d", sa.Text))
        earlier = sa.func.year(col) < year
    return sa.select(t.c.id, col).where(col.is_not(None), md.in_(days), earlier).order_by(t.c.id)


def due(tx: SQLTransaction, kind: str, now: dt.datetime, **params: Any) -> list[tuple[Any, ...]] | None:
    """``DueQueries.due`` on this transaction: ``(id, value)`` rows by id, None for an unknown kind."""
    d = str(tx.source())
    if kind in ("task_due", "task_overdue"):
        stmt = _tasks(now, now + params["within"] if kind == "task_due" else None)
        rows = tx._core(lambda conn: conn.execute(stmt).all())
        return [(r[0], _aware(r[1])) for r in rows]
    if kind == "dormant":
        stmt = dormant_statement(now - dt.timedelta(days=params["days"]))
        rows = tx._core(lambda conn: conn.execute(stmt).all())
        out = []
        for r in rows:
            seen = [_aware(v) for v in r[1:] if v is not None]
            out.append((r[0], max(seen) if seen else None))
        return out
    if kind == "stale":
        stmt = _stale(tx, d, now - dt.timedelta(days=params["days"]), params.get("closed", ()))
        rows = tx._core(lambda conn: conn.execute(stmt).all())
        return [(r[0], _aware(r[2]) if r[2] is not None else _aware(r[1])) for r in rows]
    if kind == "anniversary":
        stmt = _anniversary(d, now, params["repository"], params["field"])
        rows = tx._core(lambda conn: conn.execute(stmt).all())
        return [(r[0], _aware(r[1]) if isinstance(r[1], dt.datetime) else r[1]) for r in rows]
    return None


def _iso_text(d: str, expr: Any) -> Any:
    """A stored time as ISO 8601 text with its UTC offset (what ``datetime.isoformat`` writes), in SQL."""
    if d == "sqlite":  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff'
        text = sa.func.replace(sa.type_coerce(expr, sa.String), sa.literal(" ", sa.String), sa.literal("T", sa.String))
    elif d == "postgresql":
        text = sa.func.to_char(expr, sa.literal('YYYY-MM-DD"T"HH24:MI:SS.US', sa.String))
    else:
        text = sa.func.date_format(expr, sa.literal("%Y-%m-%dT%H:%i:%s.%f", sa.String))
    return sa.type_coerce(text, sa.String) + sa.literal("+00:00", sa.String)


def _found_table(d: str) -> sa.Table:
    kw: dict[str, Any] = {"postgresql_on_commit": "DROP"} if d == "postgresql" else {}
    return sa.Table(
        "pycrm_due_found",
        sa.MetaData(),
        sa.Column("entity_id", sa.String(64)),
        sa.Column("last_order", tables.orders.c.occurred_at.type),
        sa.Column("last_interaction", tables.orders.c.occurred_at.type),
        prefixes=["TEMPORARY"],
        **kw,
    )


def fire(tx: SQLTransaction, kind: str, now: dt.datetime, name: str, **params: Any) -> tuple[int, int] | None:
    """``DueQueries.fire``: a dormant-customers rule in the database -- the customers found go to a temporary
    table (their count is ``found``), then one ``INSERT ... SELECT`` adds each one's ``CustomerDormant`` event
    to the outbox unless its key ``name|id|last activity`` is there (``added``). Other kinds: None."""
    if kind != "dormant":
        return None
    from pycrm.storage.sql.tables import outbox

    d = str(tx.source())
    days = int(params["days"])
    found_rows = _found_table(d)
    found = _dormant(_naive(now - dt.timedelta(days=days)), _latest(tables.orders), _latest(tables.interactions))
    f = found_rows.c
    text = sa.String
    lo, li = f.last_order, f.last_interaction
    last = _iso_text(d, sa.case((lo.is_(None), li), (li.is_(None), lo), (lo > li, lo), else_=li))  # NULL: neither
    period = sa.func.coalesce(last, sa.literal("never", text))
    key = sa.literal(f"{name}|", text) + f.entity_id + sa.literal("|", text) + period
    last_json = sa.func.coalesce(sa.literal('"', text) + last + sa.literal('"', text), sa.literal("null", text))
    data = sa.literal(f'{{"days": {days}, "last_activity": ', text) + last_json + sa.literal("}", text)
    at = tx._cx.dt_out(now)
    columns = ["event_key", "event", "entity", "entity_id", "at", "actor_id", "data", "state", "attempts", "next_at", "delivered"]
    values = sa.select(
        key,
        sa.literal("CustomerDormant", text),
        sa.literal("customers", text),
        f.entity_id,
        sa.literal(at, text if d == "sqlite" else outbox.c.at.type),
        sa.null(),
        data,
        sa.literal("pending", text),
        sa.literal(0, sa.Integer),
        sa.literal(at, text if d == "sqlite" else outbox.c.at.type),
        sa.literal("[]", text),
    )  # in the temporary table's order: by id, as the rows went in (no sort)
    insert: Any
    if d == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        insert = pg_insert(outbox).from_select(columns, values).on_conflict_do_nothing(index_elements=["event_key"])
    else:
        insert = sa.insert(outbox).from_select(columns, values).prefix_with("OR IGNORE" if d == "sqlite" else "IGNORE")

    def run(conn: sa.Connection) -> tuple[int, int]:
        # a temporary table outlives the transaction on SQLite and MariaDB: one left by a failed run goes first
        # (DROP TEMPORARY: a plain DROP TABLE would commit the transaction on MariaDB)
        if d == "mysql":
            conn.exec_driver_sql("DROP TEMPORARY TABLE IF EXISTS pycrm_due_found")
        elif d == "sqlite":
            conn.exec_driver_sql("DROP TABLE IF EXISTS temp.pycrm_due_found")
        found_rows.create(conn)
        try:
            conn.execute(sa.insert(found_rows).from_select(["entity_id", "last_order", "last_interaction"], found))
            n_found = conn.execute(sa.select(sa.func.count()).select_from(found_rows)).scalar_one()
            if d == "postgresql":  # psycopg gives no row count here: the rows the insert returns
                added = insert.returning(sa.literal(1)).cte("added")
                n_added = conn.execute(sa.select(sa.func.count()).select_from(added)).scalar_one()
            else:
                n_added = conn.execute(insert).rowcount
        finally:
            if d == "mysql":
                conn.exec_driver_sql("DROP TEMPORARY TABLE pycrm_due_found")
            elif d == "sqlite":
                conn.exec_driver_sql("DROP TABLE temp.pycrm_due_found")
        return int(n_found), int(n_added)

    return tx._record_write(run)  # type: ignore[no-any-return]
