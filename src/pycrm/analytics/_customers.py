"""Customer reports over orders: new, active and churned customers per period, and top customers by revenue.

Definitions (the reference semantics), with periods in UTC by order date:

- **active** in a period: has at least one order in it;
- **new** in a period: the customer's first order (among all orders given) is in it;
- **churned** in a period: active in the previous period but not in this one;
- **churn rate** = churned / active in the previous period (``None`` when nobody was active then);
- **retained** = active in both this and the previous period.

Rows run over every period from ``start`` (or the first order) to ``end`` (or the last order), quiet
periods included; orders before ``start`` still decide who is new and who was active just before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from pycrm.analytics._common import (
    aware,
    check_period,
    check_range,
    period_label,
    period_start,
    periods_between,
    previous_start,
    ratio,
    within,
)
from pycrm.analytics._report import Report
from pycrm.analytics._sales import RateTable, _Converter
from pycrm.domain._checks import check_count, check_iterable
from pycrm.errors import FieldError, ValidationError

__all__ = ["CustomerActivityRow", "TopCustomerRow", "customer_activity", "top_customers"]


def _order(order: Any, i: int) -> tuple[str, dt.datetime]:
    where = f"orders[{i}]"
    cid = getattr(order, "customer_id", None)
    if not isinstance(cid, str) or not cid:
        raise ValidationError([FieldError(f"{where}.customer_id", "required", f"not a customer id: {cid!r}")])
    return cid, aware(getattr(order, "occurred_at", None), f"{where}.occurred_at")


@attrs.frozen
class CustomerActivityRow:
    """Customers of one period: active, new, retained and churned, and the churn rate (see the module)."""

    period: str
    active: int
    new: int
    retained: int
    churned: int
    previously_active: int
    churn_rate: Decimal | None


def customer_activity(
    orders: Iterable[Any],
    *,
    period: str = "month",
    start: dt.date | dt.datetime | str | None = None,
    end: dt.date | dt.datetime | str | None = None,
) -> Report[CustomerActivityRow]:
    """New, active, retained and churned customers per period, and the churn rate.

    >>> from pycrm.domain import Money, Order
    >>> def o(cid, month):
    ...     return Order(cid, dt.datetime(2024, month, 10, tzinfo=dt.UTC), Money(10, "CNY"))
    >>> book = [o("a", 1), o("b", 1), o("a", 2), o("c", 2), o("c", 3)]
    >>> for r in customer_activity(book):
    ...     print(r.period, r.active, r.new, r.retained, r.churned, r.churn_rate)
    2024-01 2 2 0 0 None
    2024-02 2 1 1 1 0.5000
    2024-03 1 0 1 1 0.5000
    """
    if period is None:
        raise ValidationError([FieldError("period", "required", "customer activity needs a period (week, month, quarter, year)")])
    grain = check_period(period)
    lo, hi = check_range(start, end)
    active: dict[dt.date, set[str]] = {}
    first: dict[str, dt.date] = {}
    for i, order in enumerate(check_iterable("orders", orders, "a list of orders")):
        cid, at = _order(order, i)
        d = at.date()
        active.setdefault(period_start(d, grain), set()).add(cid)
        if cid not in first or d < first[cid]:
            first[cid] = d
    if lo is None and hi is None and not active:
        return Report(CustomerActivityRow, title="Customer activity", x="period", y="active")
    begin = lo if lo is not None else min(active, default=hi)
    finish = hi if hi is not None else max(active, default=lo)
    assert begin is not None and finish is not None
    new_per: dict[dt.date, int] = {}
    for d in first.values():
        p = period_start(d, grain)
        new_per[p] = new_per.get(p, 0) + 1
    rows = []
    for p in periods_between(begin, finish, grain):
        now = active.get(p, set())
        before = active.get(previous_start(p, grain), set())
        churned = len(before - now)
        rows.append(
            CustomerActivityRow(
                period_label(p, grain),
                len(now),
                new_per.get(p, 0),
                len(now & before),
                churned,
                len(before),
                ratio(churned, len(before)),
            )
        )
    return Report(CustomerActivityRow, rows, title="Customer activity", x="period", y=("active", "new", "churned"))


@attrs.frozen
class TopCustomerRow:
    """One of the best customers by revenue (sum of order amounts in ``currency``)."""

    rank: int
    customer_id: str
    name: str | None
    orders: int
    revenue: Decimal
    currency: str | None


def top_customers(
    orders: Iterable[Any],
    *,
    n: int = 10,
    rates: RateTable | None = None,
    start: dt.date | dt.datetime | str | None = None,
    end: dt.date | dt.datetime | str | None = None,
    names: Mapping[str, str] | None = None,
) -> Report[TopCustomerRow]:
    """The ``n`` customers with the most revenue from orders dated ``start``..``end`` (inclusive, UTC).

    Without ``rates`` every order must be in one currency (another raises ValidationError naming it and
    the order's date); with a :class:`RateTable` each order converts at its date's rate to ``rates.base``.
    Ties are broken by customer id; ``names`` maps ids to names for the ``name`` column.

    >>> from pycrm.analytics import RateTable
    >>> from pycrm.domain import Money, Order
    >>> at = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    >>> book = [Order("a", at, Money(100, "CNY")), Order("b", at, Money(20, "USD")), Order("a", at, Money(5, "CNY"))]
    >>> rates = RateTable("CNY", [("USD", "2024-01-01", "7.1")])
    >>> for r in top_customers(book, rates=rates, names={"a": "Acme"}):
    ...     print(r.rank, r.customer_id, r.name, r.orders, r.revenue, r.currency)
    1 b None 1 142.0000 CNY
    2 a Acme 2 105 CNY
    >>> try:
    ...     top_customers(book)
    ... except ValidationError as exc:
    ...     print(exc.errors[0].message)
    USD on 2024-03-01 differs from CNY; pass rates=RateTable(...) to convert
    """
    check_count("n", n)
    lo, hi = check_range(start, end)
    money = _Converter(rates)
    totals: dict[str, list[Any]] = {}
    for i, order in enumerate(check_iterable("orders", orders, "a list of orders")):
        cid, at = _order(order, i)
        d = at.date()
        if not within(d, lo, hi):
            continue
        amount = money(getattr(order, "amount", None), d, f"orders[{i}]")
        t = totals.setdefault(cid, [0, Decimal(0)])
        t[0] += 1
        t[1] += amount
    best = sorted(totals, key=lambda cid: (-totals[cid][1], cid))[:n]
    names = names or {}
    rows = [
        TopCustomerRow(k, cid, names.get(cid), totals[cid][0], totals[cid][1], money.currency)
        for k, cid in enumerate(best, start=1)
    ]
    return Report(TopCustomerRow, rows, title="Top customers by revenue", x="customer_id", y="revenue")
