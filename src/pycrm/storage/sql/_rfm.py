"""RFM inside the database: one statement with window functions, the same rules as ``pycrm.analytics.rfm``.

``rank_r = RANK() OVER (ORDER BY recency_days DESC)`` is 1 + the number of customers with larger recency;
``RANK() OVER (ORDER BY frequency)`` is 1 + the number with smaller frequency; the score is
``1 + bins * (rank - 1) DIV n`` in integer arithmetic on every database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
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


def rfm_statement(dialect: str, cutoff: dt.datetime, ref_date: dt.date, bins: int) -> sa.Select[Any]:
    o = orders
    agg = (
        sa.select(
            o.c.customer_id,
            sa.func.max(o.c.occurred_at).label("last_at"),
            sa.func.count().label("frequency"),
            sa.func.sum(o.c.amount_e4).label("monetary_e4"),
        )
        .where(o.c.occurred_at <= _naive_utc(cutoff))
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

    return sa.select(
        x.c.customer_id,
        x.c.recency_days,
        x.c.frequency,
        x.c.monetary_e4,
        score(sa.func.rank().over(order_by=x.c.recency_days.desc())).label("r"),
        score(sa.func.rank().over(order_by=x.c.frequency)).label("f"),
        score(sa.func.rank().over(order_by=x.c.monetary_e4)).label("m"),
    ).order_by(x.c.customer_id)


def rfm_rows(conn: sa.Connection, cutoff: dt.datetime, ref_date: dt.date, bins: int) -> Iterator[tuple[Any, ...]]:
    """(customer_id, recency_days, frequency, monetary, r, f, m) per customer, by customer id."""
    stmt = rfm_statement(conn.dialect.name, cutoff, ref_date, bins)
    for cid, rec, freq, mon_e4, r, f, m in conn.execute(stmt):
        yield cid, int(rec), int(freq), Decimal(int(mon_e4)).scaleb(-4), int(r), int(f), int(m)


def order_currencies(conn: sa.Connection, cutoff: dt.datetime) -> set[str]:
    stmt = sa.select(orders.c.currency).where(orders.c.occurred_at <= _naive_utc(cutoff)).distinct()
    return {row[0] for row in conn.execute(stmt)}
