"""RFM inside the database: one statement with window functions, the same rules as ``pycrm.analytics.rfm``.

``rank_r = RANK() OVER (ORDER BY recency_days DESC)`` is 1 + the number of customers with larger recency;
``RANK() OVER (ORDER BY frequency)`` is 1 + the number with smaller frequency; the score is
``1 + bins * (rank - 1) DIV n`` in integer arithmetic on every database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from pycrm.storage.sql.tables import orders

__all__ = ["order_currencies", "rfm_rows", "rfm_statement"]


def _naive_utc(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(tzinfo=None)


def _days_between(dialect: str, ref_date: dt.date, last_at: Any) -> Any:
    """Whole days from the date of ``last_at`` (naive UTC) to ``ref_date``."""
    if dialect == "sqlite":
        day_ref = sa.func.julianday(sa.literal(ref_date.isoformat(), sa.String))
        # the stored text starts with the date; date() would round 9999-12-31 23:59:59.9999 up to NULL
        return sa.cast(day_ref - sa.func.julianday(sa.func.substr(last_at, 1, 10)), sa.Integer)
    if dialect == "postgresql":
        return sa.literal(ref_date, sa.Date) - sa.cast(last_at, sa.Date)
    return sa.func.datediff(sa.literal(ref_date, sa.Date), last_at)  # MariaDB / MySQL


def rfm_statement(dialect: str, cutoff: dt.datetime, ref_date: dt.date, bins: int, where: Sequence[Any] = ()) -> sa.Select[Any]:
    """The RFM statement; ``where`` adds clauses on the orders (a caller's filter, an actor's row scope)."""
    o = orders
    agg = (
        sa.select(
            o.c.customer_id,
            sa.func.max(o.c.occurred_at).label("last_at"),
            sa.func.count().label("frequency"),
            sa.func.sum(o.c.amount_e4).label("monetary_e4"),
        )
        .where(o.c.occurred_at <= _naive_utc(cutoff), *where)
        .group_by(o.c.customer_id)
        .cte("rfm_agg")
    )
    x = sa.select(
        agg.c.customer_id,
        _days_between(dialect, ref_date, agg.c.last_at).label("recency_days"),
        agg.c.frequency,
        agg.c.monetary_e4,
    ).cte("rfm_x")
    n = sa.func.count().over()
    nbins = sa.literal(bins, sa.Integer)

    def score(rank: Any) -> Any:
        scaled = nbins * (rank - 1)
        if dialect in ("mysql", "mariadb"):  # FLOOR(a / b) would round a / b to 4 places first
            return 1 + scaled.op("DIV", return_type=sa.Integer)(n)
        return 1 + scaled // n  # integer division on SQLite and PostgreSQL

    monetary: Any = x.c.monetary_e4
    if dialect == "postgresql":  # exact numeric with 4 places, so rows need no conversion in Python
        monetary = sa.type_coerce(x.c.monetary_e4 * sa.literal_column("0.0001"), sa.Numeric(asdecimal=True))
    return sa.select(
        x.c.customer_id,
        x.c.recency_days,
        x.c.frequency,
        monetary.label("monetary"),
        score(sa.func.rank().over(order_by=x.c.recency_days.desc())).label("r"),
        score(sa.func.rank().over(order_by=x.c.frequency)).label("f"),
        score(sa.func.rank().over(order_by=x.c.monetary_e4)).label("m"),
    ).order_by(x.c.customer_id)


def rfm_rows(
    conn: sa.Connection,
    cutoff: dt.datetime,
    ref_date: dt.date,
    bins: int,
    where: Sequence[Any] = (),
    params: dict[str, Any] | None = None,
) -> tuple[set[str], list[tuple[Any, ...]]]:
    """The currencies of the counted orders, and (customer_id, recency_days, frequency, monetary, r, f, m)
    per customer, by customer id (the figures from one statement). ``where`` clauses (with their bound
    ``params``) restrict the orders counted."""
    dialect = conn.dialect.name
    stmt = rfm_statement(dialect, cutoff, ref_date, bins, where)
    rows: Any = conn.execute(stmt, params or {}).fetchall()  # one fetch: iterating the result would fetch row by row
    if not rows:
        return set(), []
    currencies = order_currencies(conn, cutoff, where, params)
    if dialect == "postgresql":  # int, int, int, Decimal (4 places), int, int, int already
        return currencies, rows
    return currencies, list(_converted(rows, dialect == "sqlite"))


def _converted(rows: Any, ints: bool) -> Iterator[tuple[Any, ...]]:
    dec = Decimal
    if ints:  # SQLite: integers already; monetary in 1/10,000 units
        for cid, rec, freq, mon_e4, r, f, m in rows:
            yield cid, rec, freq, dec(mon_e4).scaleb(-4), r, f, m
        return
    for cid, rec, freq, mon_e4, r, f, m in rows:  # MariaDB / MySQL: DECIMAL sums and counts
        yield cid, int(rec), int(freq), dec(int(mon_e4)).scaleb(-4), int(r), int(f), int(m)


def order_currencies(
    conn: sa.Connection, cutoff: dt.datetime, where: Sequence[Any] = (), params: dict[str, Any] | None = None
) -> set[str]:
    """Currencies of the orders on or before ``cutoff``.

    MIN and MAX over the whole table first: two probes of ``ix_orders_currency``, no scan. When every order
    has one currency, so have the counted ones; only a store with several currencies needs the filtered list.
    """
    low = conn.execute(sa.select(sa.func.min(orders.c.currency))).scalar()
    high = conn.execute(sa.select(sa.func.max(orders.c.currency))).scalar()
    if low is None or low == high:
        return set() if low is None else {low}
    counted = sa.select(orders.c.currency).where(orders.c.occurred_at <= _naive_utc(cutoff), *where).distinct()
    return {row[0] for row in conn.execute(counted, params or {})}
