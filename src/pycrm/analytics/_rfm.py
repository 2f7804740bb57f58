"""RFM scores and segments: the reference semantics (the SQL pushdown must agree exactly).

Rules (shared/API.md): only orders with ``occurred_at`` on or before ``as_of`` count;
``recency_days`` = days from the last order's date to ``as_of``; ``frequency`` = number of orders;
``monetary`` = sum of amounts. With n customers and integer arithmetic
``f = 1 + bins*(rank_f - 1)//n`` where ``rank_f = 1 + #customers with smaller frequency``; ``m`` likewise
on monetary; ``r`` likewise with ``rank_r = 1 + #customers with larger recency_days`` (recent = high).
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from pycrm.domain import Order
from pycrm.domain._values import _to_amount
from pycrm.errors import FieldError, ValidationError

__all__ = ["DEFAULT_SEGMENTS", "RFMScore", "SegmentRule", "rfm", "segment_of"]


@attrs.frozen
class SegmentRule:
    """A segment for customers whose r and f scores fall in the inclusive ranges."""

    name: str
    r: tuple[int, int]
    f: tuple[int, int]

    def matches(self, r: int, f: int) -> bool:
        return self.r[0] <= r <= self.r[1] and self.f[0] <= f <= self.f[1]


#: The classic 5-bin map from (r, f) to a segment name; the first matching rule wins.
DEFAULT_SEGMENTS: tuple[SegmentRule, ...] = (
    SegmentRule("Hibernating", (1, 2), (1, 2)),
    SegmentRule("At Risk", (1, 2), (3, 4)),
    SegmentRule("Can't Lose Them", (1, 2), (5, 5)),
    SegmentRule("About to Sleep", (3, 3), (1, 2)),
    SegmentRule("Need Attention", (3, 3), (3, 3)),
    SegmentRule("Loyal Customers", (3, 4), (4, 5)),
    SegmentRule("Promising", (4, 4), (1, 1)),
    SegmentRule("New Customers", (5, 5), (1, 1)),
    SegmentRule("Potential Loyalists", (4, 5), (2, 3)),
    SegmentRule("Champions", (5, 5), (4, 5)),
)


@attrs.frozen
class RFMScore:
    """One customer's RFM figures and scores (1 = worst, ``bins`` = best)."""

    customer_id: str
    recency_days: int
    frequency: int
    monetary: Decimal
    r: int
    f: int
    m: int
    segment: str | None


def segment_of(r: int, f: int, segments: Sequence[SegmentRule] = DEFAULT_SEGMENTS) -> str | None:
    """The first segment whose ranges hold (r, f); None when no rule matches."""
    for rule in segments:
        if rule.matches(r, f):
            return rule.name
    return None


def _cutoff(as_of: Any) -> tuple[dt.datetime, dt.date]:
    """The last counted instant and the reference date. A date means the whole day (UTC)."""
    if isinstance(as_of, dt.datetime):
        if as_of.tzinfo is None or as_of.utcoffset() is None:
            raise ValidationError([FieldError("as_of", "naive_datetime", "needs a timezone (use datetime.timezone.utc)")])
        at = as_of.astimezone(dt.UTC)
        return at, at.date()
    if isinstance(as_of, dt.date):
        return dt.datetime.combine(as_of, dt.time.max, dt.UTC), as_of
    if isinstance(as_of, str):
        try:
            return _cutoff(dt.date.fromisoformat(as_of.strip()))
        except ValueError:
            raise ValidationError([FieldError("as_of", "invalid_date", f"{as_of[:40]!r} is not a YYYY-MM-DD date")]) from None
    raise ValidationError([FieldError("as_of", "type", f"expected a date or datetime, got {type(as_of).__name__}")])


def _row(order: Any, i: int) -> tuple[str, dt.datetime, Decimal, str | None]:
    """(customer_id, occurred_at in UTC, amount, currency) from an Order, a mapping or a tuple."""
    if type(order) is Order:
        return order.customer_id, order.occurred_at, order.amount.amount, order.amount.currency
    if isinstance(order, Mapping):
        try:
            cid, at, amount = order["customer_id"], order["occurred_at"], order["amount"]
        except KeyError as exc:
            raise ValidationError([FieldError(f"orders[{i}].{exc.args[0]}", "required", "is missing")]) from None
    elif isinstance(order, (tuple, list)) and len(order) == 3:
        cid, at, amount = order
    elif isinstance(order, Order):
        return order.customer_id, order.occurred_at, order.amount.amount, order.amount.currency
    else:
        raise ValidationError(
            [FieldError(f"orders[{i}]", "type", "expected an Order, a mapping or a (customer_id, occurred_at, amount) tuple")]
        )
    errors = []
    if not isinstance(cid, str) or not cid:
        errors.append(FieldError(f"orders[{i}].customer_id", "required", f"not a customer id: {cid!r}"))
    if isinstance(at, dt.datetime):
        if at.tzinfo is None or at.utcoffset() is None:
            errors.append(FieldError(f"orders[{i}].occurred_at", "naive_datetime", "needs a timezone"))
    elif isinstance(at, dt.date):
        at = dt.datetime(at.year, at.month, at.day, tzinfo=dt.UTC)
    else:
        errors.append(FieldError(f"orders[{i}].occurred_at", "type", f"expected a datetime, got {type(at).__name__}"))
    currency = None
    if hasattr(amount, "amount") and hasattr(amount, "currency"):
        amount, currency = amount.amount, amount.currency
    try:
        amount = _to_amount(amount, f"orders[{i}].amount")
    except ValidationError as exc:
        errors += exc.errors
    if errors:
        raise ValidationError(errors)
    return cid, at, amount, currency


def rfm(
    orders: Iterable[Any],
    *,
    as_of: dt.date | dt.datetime | str,
    bins: int = 5,
    segments: Sequence[SegmentRule] = DEFAULT_SEGMENTS,
) -> list[RFMScore]:
    """RFM scores per customer, sorted by customer id.

    ``orders`` are Order objects, mappings or ``(customer_id, occurred_at, amount)`` tuples, all in one
    currency. Customers with no order on or before ``as_of`` are absent; an empty book gives ``[]``.

    >>> import datetime as dt
    >>> from pycrm import Money, Order
    >>> utc = dt.timezone.utc
    >>> book = [Order("a", dt.datetime(2024, 1, 5, tzinfo=utc), Money(100, "CNY")),
    ...         Order("a", dt.datetime(2024, 3, 1, tzinfo=utc), Money(50, "CNY")),
    ...         Order("b", dt.datetime(2023, 6, 1, tzinfo=utc), Money(20, "CNY"))]
    >>> for s in rfm(book, as_of=dt.date(2024, 3, 31)):
    ...     print(s.customer_id, s.recency_days, s.frequency, s.monetary, s.r, s.f, s.m, s.segment)
    a 30 2 150 3 3 3 Need Attention
    b 304 1 20 1 1 1 Hibernating
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValidationError([FieldError("bins", "type", f"expected a whole number >= 1, got {bins!r}")])
    cutoff, ref_date = _cutoff(as_of)
    agg: dict[str, list[Any]] = {}
    currency: str | None = None
    for i, order in enumerate(orders):
        cid, at, amount, cur = _row(order, i)
        if at > cutoff:
            continue
        if cur is not None and cur != currency:
            if currency is None:
                currency = cur
            else:
                raise ValidationError(
                    [
                        FieldError(
                            f"orders[{i}].amount.currency",
                            "currency_mismatch",
                            f"{cur} differs from {currency}; convert to one currency first",
                        )
                    ]
                )
        if amount < 0:
            raise ValidationError(
                [FieldError(f"orders[{i}].amount", "negative", f"{amount} is negative; record refunds separately")]
            )
        a = agg.get(cid)
        if a is None:
            agg[cid] = [at, 1, amount]
        else:
            if at > a[0]:
                a[0] = at
            a[1] += 1
            a[2] += amount
    return _score(agg, ref_date, bins, segments)


def _score(agg: Mapping[str, Sequence[Any]], ref_date: dt.date, bins: int, segments: Sequence[SegmentRule]) -> list[RFMScore]:
    n = len(agg)
    if n == 0:
        return []
    ids = sorted(agg)
    rec = [(ref_date - agg[c][0].astimezone(dt.UTC).date()).days for c in ids]
    freq = [agg[c][1] for c in ids]
    mon = [agg[c][2] for c in ids]
    s_rec, s_freq, s_mon = sorted(rec), sorted(freq), sorted(mon)
    out = []
    for k, cid in enumerate(ids):
        rank_r = 1 + (n - bisect_right(s_rec, rec[k]))
        rank_f = 1 + bisect_left(s_freq, freq[k])
        rank_m = 1 + bisect_left(s_mon, mon[k])
        r = 1 + bins * (rank_r - 1) // n
        f = 1 + bins * (rank_f - 1) // n
        m = 1 + bins * (rank_m - 1) // n
        out.append(RFMScore(cid, rec[k], freq[k], mon[k], r, f, m, segment_of(r, f, segments)))
    return out
