"""Shared pieces of the reports: periods, checked dates and times, ratios, means and medians.

Periods are calendar periods in UTC: ``week`` (ISO weeks, Monday first, labelled ``2024-W09``),
``month`` (``2024-03``), ``quarter`` (``2024-Q1``) and ``year`` (``2024``); ``None`` puts everything in
one period labelled ``all``.

>>> period_label(dt.date(2024, 2, 29), "week"), period_label(dt.date(2024, 2, 29), "quarter")
('2024-W09', '2024-Q1')
>>> periods_between(dt.date(2023, 12, 15), dt.date(2024, 2, 1), "month")
[datetime.date(2023, 12, 1), datetime.date(2024, 1, 1), datetime.date(2024, 2, 1)]
>>> ratio(2, 3), ratio(1, 0), mean_median([]), mean_median([Decimal(1), Decimal(2)], places=1)
(Decimal('0.6667'), None, (None, None), (Decimal('1.5'), Decimal('1.5')))
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from pycrm.errors import FieldError, ValidationError, quote

PERIODS = ("week", "month", "quarter", "year")
ALL = "all"

#: The days a report accepts as ``start``, ``end``, ``as_of`` or ``calibration_end``: from the first day
#: every supported database stores as a date-time (MariaDB's DATETIME starts at year 1000) to the last day
#: whose next week, month, quarter and year still exist (``date.max`` is 9999-12-31). Outside it a date
#: is refused with ValidationError naming the argument, rather than overflowing in period arithmetic.
MIN_DAY = dt.date(1000, 1, 1)
MAX_DAY = dt.date(9998, 12, 31)


def bounded_day(d: dt.date, field: str) -> dt.date:
    """``d`` if it lies in ``MIN_DAY..MAX_DAY``, else ValidationError naming ``field``."""
    if not MIN_DAY <= d <= MAX_DAY:
        raise ValidationError([FieldError(field, "out_of_range", f"{d.isoformat()} is outside {MIN_DAY} to {MAX_DAY}")])
    return d


def check_period(period: Any, field: str = "period") -> str | None:
    if period is None or period in PERIODS:
        return period  # type: ignore[no-any-return]
    raise ValidationError([FieldError(field, "invalid_choice", f"{quote(period)} is not one of {', '.join(PERIODS)} or None")])


def period_start(d: dt.date, period: str | None) -> dt.date:
    """The first day of the period holding ``d`` (``date.min`` for ``None``)."""
    if period == "week":
        return d - dt.timedelta(days=d.weekday())
    if period == "month":
        return d.replace(day=1)
    if period == "quarter":
        return dt.date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)
    if period == "year":
        return dt.date(d.year, 1, 1)
    return dt.date.min


def next_start(start: dt.date, period: str | None) -> dt.date:
    """The first day of the period after the one starting at ``start``."""
    if period == "week":
        return start + dt.timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}.get(period or "")
    if months is None:
        return dt.date.max
    m = start.month - 1 + months
    return dt.date(start.year + m // 12, m % 12 + 1, 1)


def previous_start(start: dt.date, period: str | None) -> dt.date:
    """The first day of the period before the one starting at ``start``; ``date.max`` (a Friday, and the
    last of a month: a day that starts no period) when ``start`` is in the calendar's first period."""
    if start <= dt.date.min:
        return dt.date.max
    return period_start(start - dt.timedelta(days=1), period)


def period_label(d: dt.date, period: str | None) -> str:
    if period == "week":
        year, week, _ = d.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return f"{d.year}-{d.month:02d}"
    if period == "quarter":
        return f"{d.year}-Q{(d.month - 1) // 3 + 1}"
    if period == "year":
        return f"{d.year}"
    return ALL


def periods_between(first: dt.date, last: dt.date, period: str | None) -> list[dt.date]:
    """Start days of every period from the one holding ``first`` to the one holding ``last``."""
    out, at = [], period_start(first, period)
    while at <= last:
        out.append(at)
        if period is None:
            break
        try:
            at = next_start(at, period)
        except (OverflowError, ValueError):  # the period holding date.max (9999-12-31) is the calendar's last
            break
    return out


def aware(value: Any, field: str) -> dt.datetime:
    """A datetime read from an entity, in UTC; naive ones (and non-datetimes) are refused."""
    if not isinstance(value, dt.datetime):
        raise ValidationError([FieldError(field, "type", f"expected a datetime, got {type(value).__name__}")])
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError([FieldError(field, "naive_datetime", "needs a timezone (use datetime.timezone.utc)")])
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:  # e.g. 0001-01-01 00:00 at UTC+1 is before datetime.min in UTC
        problem = f"{value.isoformat()} is outside {MIN_DAY} to {MAX_DAY}"
        raise ValidationError([FieldError(field, "out_of_range", problem)]) from None


def opt_aware(value: Any, field: str) -> dt.datetime | None:
    return None if value is None else aware(value, field)


def day(value: Any, field: str) -> dt.date:
    """A date from a date, an aware datetime (its UTC date) or a ``YYYY-MM-DD`` string."""
    if isinstance(value, dt.datetime):
        return aware(value, field).date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError([FieldError(field, "invalid_date", f"{value[:40]!r} is not a YYYY-MM-DD date")]) from None
    raise ValidationError([FieldError(field, "type", f"expected a date, got {type(value).__name__}")])


def report_day(value: Any, field: str) -> dt.date:
    """A report's day argument (``start``, ``end``, ``as_of``...): :func:`day`, in ``MIN_DAY..MAX_DAY``."""
    return bounded_day(day(value, field), field)


def opt_report_day(value: Any, field: str) -> dt.date | None:
    return None if value is None else report_day(value, field)


def check_range(start: Any, end: Any) -> tuple[dt.date | None, dt.date | None]:
    """Checked ``start``/``end`` (inclusive days in ``MIN_DAY..MAX_DAY``); every problem reported at once."""
    errors: list[FieldError] = []
    lo = hi = None
    try:
        lo = opt_report_day(start, "start")
    except ValidationError as exc:
        errors += exc.errors
    try:
        hi = opt_report_day(end, "end")
    except ValidationError as exc:
        errors += exc.errors
    if lo is not None and hi is not None and hi < lo:
        errors.append(FieldError("end", "range", f"{hi} is before start {lo}"))
    if errors:
        raise ValidationError(errors)
    return lo, hi


def within(d: dt.date, start: dt.date | None, end: dt.date | None) -> bool:
    return (start is None or d >= start) and (end is None or d <= end)


def quantize(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def ratio(part: int, whole: int, places: int = 4) -> Decimal | None:
    """``part / whole`` rounded half-even to ``places``; ``None`` (never NaN, never an error) when ``whole`` is 0."""
    if not whole:
        return None
    return quantize(Decimal(part) / Decimal(whole), places)


def mean_median(values: Sequence[Decimal], places: int = 2) -> tuple[Decimal | None, Decimal | None]:
    """Mean and median rounded half-even to ``places``; ``(None, None)`` for no values."""
    if not values:
        return None, None
    mean = sum(values, Decimal(0)) / len(values)
    return quantize(mean, places), quantize(Decimal(statistics.median(values)), places)


def mean_median_us(micros: Sequence[int], unit_us: int, places: int = 2) -> tuple[Decimal | None, Decimal | None]:
    """Mean and median of durations given in whole microseconds, in units of ``unit_us`` microseconds,
    rounded half-even to ``places`` from the exact rational values; ``(None, None)`` for no values.

    Exact: the result depends only on the multiset of durations (not on summation order or precision),
    so a database that sums and sorts whole microseconds reproduces it (see :func:`exact_mean_median`).
    """
    if not micros:
        return None, None
    values = sorted(micros)
    n = len(values)
    middle = values[(n - 1) // 2 : n // 2 + 1]
    return exact_mean_median(sum(values), n, middle, unit_us, places)


def exact_mean_median(
    total_us: int, n: int, middle: Sequence[int], unit_us: int, places: int = 2
) -> tuple[Decimal | None, Decimal | None]:
    """Mean (``total_us / n``) and median (the mean of the one or two ``middle`` values) in ``unit_us``
    units, each rounded half-even to ``places`` exactly; ``(None, None)`` when ``n`` is 0.

    >>> exact_mean_median(3 * 60_000_000, 10, [0, 0], 3_600_000_000)  # 0.005 hours: half-even gives 0.00
    (Decimal('0.00'), Decimal('0.00'))
    """
    if not n:
        return None, None
    return _round_ratio(total_us, n * unit_us, places), _round_ratio(sum(middle), len(middle) * unit_us, places)


def _round_ratio(num: int, den: int, places: int) -> Decimal:
    """``num / den`` (den > 0) rounded half-even to ``places``, exactly."""
    q, r = divmod(num * 10**places, den)
    if 2 * r > den or (2 * r == den and q % 2):
        q += 1
    return Decimal(q).scaleb(-places)


def micros(delta: dt.timedelta) -> int:
    """Whole microseconds of a timedelta."""
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000

_DAY = Decimal(86400)
_HOUR = Decimal(3600)


def days(delta: dt.timedelta) -> Decimal:
    """Exact (fractional) days of a timedelta."""
    return _seconds(delta) / _DAY


def hours(delta: dt.timedelta) -> Decimal:
    """Exact (fractional) hours of a timedelta."""
    return _seconds(delta) / _HOUR


def _seconds(delta: dt.timedelta) -> Decimal:
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds).scaleb(-6)


def sort_key(value: Any) -> tuple[bool, Any]:
    """Sort ``None`` last."""
    return (value is None, "" if value is None else value)


def entities_of(values: Any, name: str, kind: type) -> Iterator[Any]:
    """The items of ``values`` (an iterable of ``kind`` entities, read once), each checked to be one: a
    ValidationError names the argument (``opportunities``) or the item (``opportunities[3]``)."""
    if isinstance(values, (str, bytes, bytearray, Mapping)) or not isinstance(values, Iterable):
        raise ValidationError(
            [FieldError(name, "type", f"expected a list of {kind.__name__} objects, got {type(values).__name__}")]
        )
    for i, v in enumerate(values):
        if not isinstance(v, kind):
            raise ValidationError([FieldError(f"{name}[{i}]", "type", f"expected {kind.__name__}, got {type(v).__name__}")])
        yield v


def as_tuple(by: Any, allowed: Iterable[str], field: str = "by") -> tuple[str, ...]:
    """``by`` as a tuple of group names, each one of ``allowed``."""
    options = tuple(allowed)
    if by is None:
        return ()
    if isinstance(by, (bytes, bytearray, Mapping)) or not isinstance(by, (str, Iterable)):
        raise ValidationError([FieldError(field, "type", f"expected a name or a list of names, got {type(by).__name__}")])
    names = (by,) if isinstance(by, str) else tuple(by)
    bad = [n for n in names if not isinstance(n, str) or n not in options]
    if bad:
        raise ValidationError(
            [FieldError(field, "invalid_choice", f"{quote(n)} is not one of {', '.join(options)}") for n in bad]
        )
    return names
