"""RFM scores and segments: the reference semantics (the SQL pushdown must agree exactly).

Rules (shared/API.md): only orders with ``occurred_at`` on or before ``as_of`` count;
``recency_days`` = days from the last order's date to ``as_of``; ``frequency`` = number of orders;
``monetary`` = sum of amounts. With n customers and integer arithmetic
``f = 1 + bins*(rank_f - 1)//n`` where ``rank_f = 1 + #customers with smaller frequency``; ``m`` likewise
on monetary; ``r`` likewise with ``rank_r = 1 + #customers with larger recency_days`` (recent = high).
"""

from __future__ import annotations

import datetime as dt
import types
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from pycrm.analytics._common import aware, bounded_day, report_day
from pycrm.analytics._report import Report
from pycrm.domain import Order
from pycrm.domain._checks import check_iterable, text
from pycrm.domain._values import _to_amount
from pycrm.errors import FieldError, ValidationError, quote

__all__ = ["DEFAULT_SEGMENTS", "MAX_BINS", "RFMScore", "SegmentRule", "check_bins", "check_segments", "rfm", "segment_of"]

#: Most score bins ``rfm`` takes (``bins`` runs from 1 to this). Scores are computed in integer
#: arithmetic, in SQL too (``bins * rank``), and a segment is looked up once per (r, f) pair that occurs,
#: so the cost is linear in the customers for every ``bins`` in the range.
MAX_BINS = 1000


def check_bins(bins: Any) -> int:
    """``bins`` if it is a whole number from 1 to :data:`MAX_BINS`, else ValidationError naming ``bins``."""
    if isinstance(bins, bool) or not isinstance(bins, int) or not 1 <= bins <= MAX_BINS:
        raise ValidationError([FieldError("bins", "range", f"expected a whole number from 1 to {MAX_BINS:,}, got {quote(bins)}")])
    return bins


def _score_range(value: Any, field: str) -> tuple[int, int]:
    """An inclusive (low, high) range of scores: two whole numbers, low <= high."""
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_BINS for v in value)
        and value[0] <= value[1]
    )
    if not ok:
        raise ValidationError(
            [FieldError(field, "range", f"expected (low, high) scores from 0 to {MAX_BINS:,}, low <= high, got {quote(value)}")]
        )
    return (value[0], value[1])


def _rule_name(value: Any) -> str:
    return text(value, "name", required=True, max_len=100)  # type: ignore[no-any-return]


def _r_range(value: Any) -> tuple[int, int]:
    return _score_range(value, "r")


def _f_range(value: Any) -> tuple[int, int]:
    return _score_range(value, "f")


def check_segments(segments: Any) -> Sequence[SegmentRule]:
    """``segments`` if it is a list or tuple of SegmentRule, else ValidationError naming ``segments``."""
    if not isinstance(segments, (tuple, list)) or not all(isinstance(s, SegmentRule) for s in segments):
        raise ValidationError([FieldError("segments", "type", "expected a sequence of SegmentRule")])
    return segments


@attrs.frozen
class SegmentRule:
    """A segment for customers whose r and f scores fall in the inclusive ranges."""

    name: str = attrs.field(converter=_rule_name)
    r: tuple[int, int] = attrs.field(converter=_r_range)
    f: tuple[int, int] = attrs.field(converter=_f_range)

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


def _score_maker() -> Any:
    """A fast ``RFMScore(...)``: fills the slots directly, skipping the frozen class's guarded ``__setattr__``
    (the scores are built from checked figures). Falls back to the constructor if the layout is unexpected."""
    names = [a.name for a in attrs.fields(RFMScore)]
    slots = [RFMScore.__dict__.get(n) for n in names]
    if not all(isinstance(s, types.MemberDescriptorType) for s in slots):
        return RFMScore
    s0, s1, s2, s3, s4, s5, s6, s7 = (s.__set__ for s in slots)  # type: ignore[union-attr]
    new = object.__new__

    def make(cid: str, rec: int, freq: int, mon: Decimal, r: int, f: int, m: int, seg: str | None) -> RFMScore:
        o = new(RFMScore)
        s0(o, cid)
        s1(o, rec)
        s2(o, freq)
        s3(o, mon)
        s4(o, r)
        s5(o, f)
        s6(o, m)
        s7(o, seg)
        return o

    return make


_new_score: Any = _score_maker()


#: (r, f) -> segment for segment maps that are tuples (immutable), keyed by id; the map itself is kept
#: in the entry so its id cannot be reused while cached.
_SEGMENT_CACHE: dict[int, tuple[tuple[SegmentRule, ...], dict[tuple[int, int], str | None]]] = {}


def segment_of(r: int, f: int, segments: Sequence[SegmentRule] = DEFAULT_SEGMENTS) -> str | None:
    """The first segment whose ranges hold (r, f); None when no rule matches."""
    for label, score in (("r", r), ("f", f)):
        if isinstance(score, bool) or not isinstance(score, int):
            raise ValidationError([FieldError(label, "type", f"expected a whole number, got {type(score).__name__}")])
    check_segments(segments)
    if type(segments) is tuple:
        hit = _SEGMENT_CACHE.get(id(segments))
        if hit is not None and hit[0] is segments:
            known = hit[1]
            name = known.get((r, f), _MISS)
            if name is not _MISS:
                return name  # type: ignore[return-value]
        elif len(_SEGMENT_CACHE) < 64 and all(type(rule) is SegmentRule for rule in segments):
            known = {}
            _SEGMENT_CACHE[id(segments)] = (segments, known)
        else:
            known = None
        if known is not None and len(known) < 4096 and type(r) is int and type(f) is int:
            known[(r, f)] = name = _first_match(r, f, segments)
            return name
    return _first_match(r, f, segments)


_MISS = object()


def _first_match(r: int, f: int, segments: Sequence[SegmentRule]) -> str | None:
    for rule in segments:
        if rule.matches(r, f):
            return rule.name
    return None


def _cutoff(as_of: Any, field: str = "as_of") -> tuple[dt.datetime, dt.date]:
    """The last counted instant and the reference date. A date means the whole day (UTC)."""
    if isinstance(as_of, dt.datetime):
        at = aware(as_of, field)
        return at, bounded_day(at.date(), field)
    if isinstance(as_of, (str, dt.date)):
        d = report_day(as_of, field)
        return dt.datetime.combine(d, dt.time.max, dt.UTC), d
    raise ValidationError([FieldError(field, "type", f"expected a date or datetime, got {type(as_of).__name__}")])


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


def _is_dataframe(obj: Any) -> bool:
    """True for a pandas DataFrame (or subclass), found without importing pandas."""
    return any(k.__name__ == "DataFrame" and (k.__module__ + ".").startswith("pandas.") for k in type(obj).__mro__)


def rfm(
    orders: Iterable[Any],
    *,
    as_of: dt.date | dt.datetime | str,
    bins: int = 5,
    segments: Sequence[SegmentRule] = DEFAULT_SEGMENTS,
) -> Report[RFMScore]:
    """RFM scores per customer, sorted by customer id: a :class:`Report` (a list with ``to_dataframe()``).

    ``orders`` are Order objects, mappings or ``(customer_id, occurred_at, amount)`` tuples, all in one
    currency, or a pandas DataFrame with columns ``customer_id``, ``occurred_at``, ``amount`` (and
    optionally ``currency``), computed with vectorized pandas (see ``docs/segments.md``). Customers with
    no order on or before ``as_of`` are absent; an empty book gives ``[]``.

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
    check_bins(bins)
    check_segments(segments)
    cutoff, ref_date = _cutoff(as_of)
    if _is_dataframe(orders):
        from pycrm.analytics._rfm_pandas import rfm_frame

        return rfm_report(
            rfm_frame(
                orders,
                cutoff=cutoff,
                ref_date=ref_date,
                whole_day=not isinstance(as_of, dt.datetime),
                bins=bins,
                segments=segments,
            )
        )
    agg: dict[str, list[Any]] = {}
    get = agg.get
    currency: str | None = None
    cur: str | None
    order_type = Order
    for i, order in enumerate(check_iterable("orders", orders, "a list of orders")):
        if type(order) is order_type:  # validated on construction: aware UTC time, Money amount
            at = order.occurred_at
            if at > cutoff:
                continue
            money = order.amount
            cid, amount, cur = order.customer_id, money.amount, money.currency
        else:
            cid, at, amount, cur = _row(order, i)
            if at > cutoff:
                continue
        if cur != currency and cur is not None:
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
        a = get(cid)
        if a is None:
            agg[cid] = [at, 1, amount]
        else:
            if at > a[0]:
                a[0] = at
            a[1] += 1
            a[2] += amount
    return rfm_report(_score(agg, ref_date, bins, segments))


def rfm_report(scores: list[RFMScore]) -> Report[RFMScore]:
    """The scores as a Report (built by pycrm: not checked row by row)."""
    return Report._trusted(RFMScore, scores, title="RFM scores", x="customer_id", y=("monetary",))


class _SegmentTable:
    """``table[r, f]`` is ``segment_of(r, f, segments)``, worked out once per (r, f) pair asked for: at most
    one per customer, where a full ``bins`` x ``bins`` table would cost ``bins**2`` rule checks."""

    def __init__(self, segments: Sequence[SegmentRule]):
        self.segments = segments
        self.known: dict[tuple[int, int], str | None] = {}

    def __getitem__(self, rf: tuple[int, int]) -> str | None:
        name = self.known.get(rf, _MISS)
        if name is _MISS:
            name = self.known[rf] = _first_match(rf[0], rf[1], self.segments)
        return name  # type: ignore[return-value]


def _ranks_below(values: Sequence[Any]) -> list[int]:
    """For each value, how many values are strictly smaller (``rank(method="min") - 1``)."""
    order = sorted(range(len(values)), key=values.__getitem__)
    out = [0] * len(values)
    below, prev = 0, None
    for pos, k in enumerate(order):
        v = values[k]
        if pos == 0 or v != prev:
            below, prev = pos, v
        out[k] = below
    return out


def _score(agg: Mapping[str, Sequence[Any]], ref_date: dt.date, bins: int, segments: Sequence[SegmentRule]) -> list[RFMScore]:
    n = len(agg)
    if n == 0:
        return []
    ids = sorted(agg)
    rows = [agg[c] for c in ids]
    utc = dt.UTC
    ref = ref_date.toordinal()
    rec = [ref - (at if at.tzinfo is utc else at.astimezone(utc)).toordinal() for at, _, _ in rows]
    freq = [a[1] for a in rows]
    mon = [a[2] for a in rows]
    older = _ranks_below([-x for x in rec])  # customers with larger recency_days
    fewer, less = _ranks_below(freq), _ranks_below(mon)
    table = _SegmentTable(segments)
    make = _new_score
    out = []
    for k, cid in enumerate(ids):
        r = 1 + bins * older[k] // n
        f = 1 + bins * fewer[k] // n
        out.append(make(cid, rec[k], freq[k], mon[k], r, f, 1 + bins * less[k] // n, table[r, f]))
    return out
