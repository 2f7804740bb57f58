"""Business calendars: which days and hours people work, for due dates and assignment.

A :class:`BusinessCalendar` knows the working weekdays and their working windows in a time zone (one
``start``-``end`` window a day, or several windows per weekday with ``hours``, a window may run past midnight),
the holidays (days off), the make-up working days (a weekend day worked in exchange for a holiday, as in China)
and one-off closures. It answers "is this a working day / a working time", "n working days after this moment",
"the next working moment", "the working time between two instants" and "the instant a working time after
another" (one at a time, or for a whole array of tickets at once with numpy). It depends on no storage: rules,
assignment and SLA policies hold one as configuration.

How it is fast: the working time of a span of years is compiled once per calendar (lazily, cached on the
instance) into a sorted array of working intervals as UTC epoch microseconds with the working time before each;
the working time between two instants is then two bisections, a due time three, and the bulk methods do the same
with ``numpy.searchsorted`` over whole arrays. Windows are local wall-clock times, so a clock change shortens
or lengthens that day's working time.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
import numpy as np

from pycrm.errors import ValidationError, quote

__all__ = ["MAX_BUSINESS_DAYS", "MAX_BUSINESS_SPAN", "MAX_CLOSURES", "MAX_WINDOWS", "BusinessCalendar"]

#: The most working days :meth:`BusinessCalendar.add_business_days` moves (about ten years of every day).
MAX_BUSINESS_DAYS = 3660
#: The longest span :meth:`BusinessCalendar.business_time` and :meth:`~BusinessCalendar.add_business_time` cover, in days.
MAX_BUSINESS_SPAN = 3660
#: The most dates a calendar's ``holidays`` or ``extra_workdays`` hold.
MAX_DATES = 100_000
#: The most working windows per weekday in ``hours``.
MAX_WINDOWS = 12
#: The most one-off closures a calendar holds.
MAX_CLOSURES = 10_000

_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_NAMES = tuple(_WEEKDAYS)
_FULL = {"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6}
_US = dt.timedelta(microseconds=1)
_DAY_US = 86_400_000_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NAIVE_EPOCH = dt.datetime(1970, 1, 1)
_ONE_DAY = dt.timedelta(days=1)
_BLOCK_YEARS = 4  # the working intervals are compiled four local years at a time
_MIN_YEAR, _MAX_YEAR = 2, 9997  # the years a calendar answers for
_KEEP_BLOCKS = 16  # the cached span grows to at most this many blocks (64 years) before it is rebuilt narrower
_MAX_BULK_BLOCKS = 64  # a bulk call's instants lie within about 256 years


def _bad(field: str, message: str, code: str = "invalid") -> ValidationError:
    return ValidationError(message, field=field, code=code)


def _weekday(value: Any, field: str) -> int:
    day: Any = value
    if isinstance(value, str):
        key = value.strip().lower()
        day = _WEEKDAYS.get(key, _FULL.get(key))
    if type(day) is not int or not 0 <= day <= 6:
        raise _bad(field, f"{quote(value)} is not a weekday (0 = Monday ... 6 = Sunday, or 'mon' ... 'sun')")
    return day


def _weekdays(value: Any) -> frozenset[int] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise _bad("weekdays", f"must be a collection of weekdays (0 = Monday ... 6 = Sunday or 'mon'...), got {quote(value)}")
    out: set[int] = set()
    for i, d in enumerate(value):
        if i >= 7 and len(out) == 7:
            raise _bad("weekdays", "too many weekdays")
        day = _WEEKDAYS.get(d[:3].lower()) if isinstance(d, str) else d
        if type(day) is not int or not 0 <= day <= 6:
            raise _bad("weekdays", f"{quote(d)} is not a weekday (0 = Monday ... 6 = Sunday, or 'mon' ... 'sun')")
        out.add(day)
    return frozenset(out)


def _clock(value: Any, field: str) -> dt.time:
    if isinstance(value, str) and len(value) <= 8:
        try:
            value = dt.time.fromisoformat(value)
        except ValueError:
            raise _bad(field, f"{quote(value)} is not a time of day such as '09:00'") from None
    if not isinstance(value, dt.time):
        raise _bad(field, f"must be a time of day such as '09:00', got {quote(value)}")
    if value.tzinfo is not None:
        raise _bad(field, "give the time of day without a time zone: the calendar's timezone applies")
    return value


def _zone(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise _bad("timezone", f"must be a time zone name such as 'Asia/Shanghai', got {quote(value)}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _bad("timezone", f"{quote(value)} is not a known time zone", "unknown") from None
    return value


def _dates(value: Any, field: str) -> frozenset[dt.date]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise _bad(field, f"must be a collection of dates, got {quote(value)}")
    out: set[dt.date] = set()
    for i, d in enumerate(value):
        if i >= MAX_DATES:
            raise _bad(field, f"holds more than {MAX_DATES} dates", "too_many")
        if isinstance(d, str) and len(d) <= 10:
            try:
                d = dt.date.fromisoformat(d)
            except ValueError:
                raise _bad(f"{field}[{i}]", f"{quote(d)} is not a date such as '2026-10-01'") from None
        if not isinstance(d, dt.date) or isinstance(d, dt.datetime):
            raise _bad(f"{field}[{i}]", f"{quote(d)} is not a date")
        out.add(d)
    return frozenset(out)


def _start(value: Any) -> dt.time | None:
    return None if value is None else _clock(value, "start")


def _end(value: Any) -> dt.time | None:
    return None if value is None else _clock(value, "end")


def _holidays(value: Any) -> frozenset[dt.date]:
    return _dates(value, "holidays")


def _extra_workdays(value: Any) -> frozenset[dt.date]:
    return _dates(value, "extra_workdays")


def _aware(value: Any, field: str) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise _bad(field, f"must be a datetime, got {quote(value)}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise _bad(field, "must be timezone-aware (a naive datetime names no moment)")
    return value


# ---------------------------------------------------------------- working windows
Windows = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]


def _text(t: dt.time) -> str:
    return t.isoformat("minutes") if not (t.second or t.microsecond) else t.isoformat()


def _offset(text: str) -> int:
    """Microseconds from midnight of a canonical window time ("24:00" is the end of the day)."""
    if text.startswith("24"):
        return _DAY_US
    t = dt.time.fromisoformat(text)
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond


def _window_time(value: Any, field: str, *, end: bool) -> str:
    if end and isinstance(value, str) and value.strip() in ("24:00", "24:00:00"):
        return "24:00"
    return _text(_clock(value.strip() if isinstance(value, str) else value, field))


def _hours(value: Any) -> Windows | None:
    """``hours`` as ``(("mon", (("09:00", "12:00"), ...)), ...)``, weekdays in order, windows by start; checked."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)) and all(isinstance(p, (tuple, list)) and len(p) == 2 for p in value):
        items = list(value)  # our own normalized form (attrs.evolve, pickling) or pairs
    elif isinstance(value, Mapping):
        items = list(value.items())
    else:
        raise _bad("hours", f"must map weekdays ('mon' ... 'sun', 0 ... 6) to lists of (start, end) windows, got {quote(value)}")
    if len(items) > 7:
        raise _bad("hours", "names more than seven weekdays", "too_many")
    days: dict[int, list[tuple[int, int, str, str, int]]] = {}
    for key, windows in items:
        day = _weekday(key, f"hours.{key}" if isinstance(key, (str, int)) and len(str(key)) <= 20 else "hours")
        field = f"hours.{_NAMES[day]}"
        if day in days:
            raise _bad(field, "the weekday is given twice", "conflict")
        if isinstance(windows, (str, bytes)) or not isinstance(windows, Iterable):
            raise _bad(field, f"must be a list of (start, end) windows such as ('09:00', '12:00'), got {quote(windows)}")
        got: list[tuple[int, int, str, str, int]] = []
        for i, w in enumerate(windows):
            where = f"{field}[{i}]"
            if i >= MAX_WINDOWS:
                raise _bad(field, f"holds more than {MAX_WINDOWS} windows", "too_many")
            if isinstance(w, (str, bytes)) or not isinstance(w, Sequence) or len(w) != 2:
                raise _bad(where, f"must be a (start, end) pair such as ('09:00', '12:00'), got {quote(w)}")
            s, e = _window_time(w[0], where, end=False), _window_time(w[1], where, end=True)
            lo, hi = _offset(s), _offset(e)
            if hi == lo:
                raise _bad(where, f"the window {s}-{e} is empty", "empty")
            if hi < lo:
                hi += _DAY_US  # past midnight: the window belongs to this day and ends on the next
            got.append((lo, hi, s, e, i))
        days[day] = got
    flat = sorted((d * _DAY_US + lo, d * _DAY_US + hi, d, i) for d, ws in days.items() for lo, hi, _s, _e, i in ws)
    if not flat:
        raise _bad("hours", "a calendar needs at least one working window", "empty")
    week = 7 * _DAY_US
    for k, (lo, _hi, d, i) in enumerate(flat):  # each window against the one before it, Sunday's before Monday's
        _plo, phi, pd, pi = flat[k - 1]
        if k == 0:  # the last window of the week, a week earlier
            phi -= week
        if phi > lo:
            raise _bad(f"hours.{_NAMES[d]}[{i}]", f"overlaps the window hours.{_NAMES[pd]}[{pi}]", "overlap")
    return tuple((_NAMES[d], tuple((s, e) for _lo, _hi, s, e, _i in sorted(days[d]))) for d in sorted(days) if days[d])


def _offsets(windows: tuple[tuple[str, str], ...]) -> tuple[tuple[int, int], ...]:
    """A day's windows as microseconds from its midnight (the end past the next midnight for a window that spans it)."""
    out = []
    for s, e in windows:
        lo, hi = _offset(s), _offset(e)
        out.append((lo, hi if hi > lo else hi + _DAY_US))
    return tuple(out)


def _makeup(value: Any) -> int | None:
    return None if value is None else _weekday(value, "makeup_weekday")


def _naive_local(value: Any, field: str, zone: ZoneInfo) -> dt.datetime:
    if isinstance(value, str) and len(value) <= 40:
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise _bad(field, f"{quote(value)} is not a date and time such as '2026-12-24T12:00'") from None
    if not isinstance(value, dt.datetime):
        raise _bad(field, f"must be a datetime or an ISO date and time, got {quote(value)}")
    at: dt.datetime = value if value.tzinfo is not None else value.replace(tzinfo=zone)  # naive: local time
    return at.astimezone(dt.UTC)


def _closures(value: Any, zone: ZoneInfo) -> tuple[tuple[dt.datetime, dt.datetime], ...]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise _bad("closures", f"must be a collection of (start, end) pairs of datetimes, got {quote(value)}")
    out = []
    for i, pair in enumerate(value):
        where = f"closures[{i}]"
        if i >= MAX_CLOSURES:
            raise _bad("closures", f"holds more than {MAX_CLOSURES} closures", "too_many")
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise _bad(where, f"must be a (start, end) pair of datetimes, got {quote(pair)}")
        a, b = _naive_local(pair[0], where, zone), _naive_local(pair[1], where, zone)
        if not a < b:
            raise _bad(where, f"the closure must end after it starts ({a.isoformat()} - {b.isoformat()})", "range")
        out.append((a, b))
    return tuple(sorted(out))


def _us(at: dt.datetime) -> int:
    return (at - _EPOCH) // _US


def _year(us: int, field: str) -> int:
    try:
        year = (_NAIVE_EPOCH + dt.timedelta(microseconds=us)).year
    except OverflowError:
        year = 0
    if not _MIN_YEAR <= year <= _MAX_YEAR:
        raise _bad(field, f"a calendar answers for the years {_MIN_YEAR + 1} to {_MAX_YEAR - 1}", "range")
    return year


def _block_of(year: int) -> int:
    return (year - 1) // _BLOCK_YEARS


@attrs.define(slots=True)
class _Span:
    """The working intervals of consecutive blocks: ``starts``/``ends`` (UTC epoch microseconds, sorted and
    disjoint), ``cum[i]``: the working time before interval ``i``, ``cumend[i]``: up to its end; valid for
    instants in ``[lo, hi]``."""

    k0: int
    k1: int
    lo: int
    hi: int
    starts: list[int]
    ends: list[int]
    cum: list[int]
    cumend: list[int]
    arrays: tuple[Any, Any, Any, Any] | None = None

    def worked(self, t: int) -> int:
        """The working time from ``lo`` to ``t``."""
        i = bisect_right(self.starts, t) - 1
        if i < 0:
            return 0
        return self.cum[i] + min(t, self.ends[i]) - self.starts[i]

    def numpy(self) -> tuple[Any, Any, Any, Any]:
        if self.arrays is None:
            self.arrays = tuple(np.asarray(x, dtype=np.int64) for x in (self.starts, self.ends, self.cum, self.cumend))  # type: ignore[assignment]
        assert self.arrays is not None
        return self.arrays

    def worked_many(self, t: Any) -> Any:
        starts, ends, cum, _ = self.numpy()
        i = np.searchsorted(starts, t, "right") - 1
        ic = np.maximum(i, 0)
        if not len(starts):
            return np.zeros_like(t)
        return np.where(i >= 0, cum[ic] + np.minimum(t, ends[ic]) - starts[ic], 0)


class _Cache:
    __slots__ = ("blocks", "span")

    def __init__(self) -> None:
        self.blocks: dict[int, tuple[int, int, list[tuple[int, int]]]] = {}
        self.span: _Span | None = None


def _merge(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    pairs.sort()
    out: list[tuple[int, int]] = []
    for a, b in pairs:
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _subtract(work: list[tuple[int, int]], gaps: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``work`` minus ``gaps`` (both sorted and disjoint)."""
    out: list[tuple[int, int]] = []
    j = 0
    for a, b in work:
        while j < len(gaps) and gaps[j][1] <= a:
            j += 1
        k = j
        while k < len(gaps) and gaps[k][0] < b:
            ga, gb = gaps[k]
            if ga > a:
                out.append((a, ga))
            a = max(a, gb)
            if a >= b:
                break
            k += 1
        if a < b:
            out.append((a, b))
    return out


@attrs.frozen
class BusinessCalendar:
    """Working days and hours in one time zone.

    ``weekdays``: the working weekdays (0 = Monday ... 6 = Sunday, or ``"mon"`` ... ``"sun"``), Monday to Friday
    by default; ``start`` / ``end``: the daily working hours (``"09:00"`` to ``"18:00"``), in ``timezone``
    (a zoneinfo name, UTC by default); or, instead of those three, ``hours``: working windows per weekday
    (``{"mon": [("09:00", "12:00"), ("13:00", "18:00")], ...}``, at most :data:`MAX_WINDOWS` a day; a window
    whose end is at or before its start runs past midnight and belongs to the day it starts on; ``"24:00"`` is
    the end of the day; ``start`` and ``end`` are then ``None`` and ``weekdays`` the days it names);
    ``holidays``: dates off; ``extra_workdays``: make-up working days on days that are
    otherwise off, with the windows of ``makeup_weekday`` (the first working weekday by default) when their own
    weekday has none;
    ``closures``: one-off ``(start, end)`` periods that are not working time (aware datetimes, or local ISO
    date-times read in ``timezone``). Bad values are a ValidationError naming the field.

    >>> cal = BusinessCalendar(timezone="Asia/Shanghai", holidays=["2026-10-01"], extra_workdays=["2026-10-10"])
    >>> cal.is_working_day(dt.date(2026, 10, 1)), cal.is_working_day(dt.date(2026, 10, 10))
    (False, True)
    """

    weekdays: frozenset[int] = attrs.field(default=None, converter=_weekdays)
    start: dt.time | None = attrs.field(default=None, converter=_start)
    end: dt.time | None = attrs.field(default=None, converter=_end)
    timezone: str = attrs.field(default="UTC", converter=_zone)
    holidays: frozenset[dt.date] = attrs.field(default=frozenset(), converter=_holidays)
    extra_workdays: frozenset[dt.date] = attrs.field(default=frozenset(), converter=_extra_workdays)
    hours: Windows | None = attrs.field(default=None, converter=_hours)
    makeup_weekday: int | None = attrs.field(default=None, converter=_makeup)
    closures: tuple[tuple[dt.datetime, dt.datetime], ...] = attrs.field(default=())
    _week: tuple[tuple[tuple[int, int], ...], ...] = attrs.field(init=False, eq=False, repr=False, default=())
    _cache: _Cache = attrs.field(init=False, eq=False, repr=False, factory=_Cache)

    def __attrs_post_init__(self) -> None:
        put = object.__setattr__
        if self.hours is None:
            weekdays = frozenset(range(5)) if self.weekdays is None else self.weekdays
            start = dt.time(9) if self.start is None else self.start
            end = dt.time(18) if self.end is None else self.end
            if not weekdays:  # with one, every week has a working day but for the (finitely many) holidays
                raise _bad("weekdays", "a calendar needs at least one working weekday", "empty")
            if start >= end:
                raise _bad("end", f"the working day must end after it starts ({start} - {end})", "range")
            put(self, "weekdays", weekdays)
            put(self, "start", start)
            put(self, "end", end)
            window = ((start.hour * 60 + start.minute) * 60 + start.second) * 1_000_000 + start.microsecond
            window_end = ((end.hour * 60 + end.minute) * 60 + end.second) * 1_000_000 + end.microsecond
            one: tuple[tuple[int, int], ...] = ((window, window_end),)
            week = tuple(one if d in weekdays else () for d in range(7))
        else:
            derived = frozenset(_WEEKDAYS[name] for name, _ in self.hours)
            if self.start is not None or self.end is not None or self.weekdays not in (None, derived):
                raise _bad("hours", "give either hours or weekdays/start/end, not both", "conflict")
            put(self, "weekdays", derived)
            by_day = dict(self.hours)
            week = tuple(_offsets(by_day.get(n, ())) for n in _NAMES)
        if self.makeup_weekday is not None and not week[self.makeup_weekday]:
            raise _bad("makeup_weekday", f"{_NAMES[self.makeup_weekday]} has no working hours", "invalid")
        put(self, "_week", week)
        both = self.holidays & self.extra_workdays
        if both:
            raise _bad("extra_workdays", f"{min(both).isoformat()} is a holiday and a make-up working day", "conflict")
        put(self, "closures", _closures(self.closures, self.zone))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_holidays(cls, country: str, years: int | Iterable[int], *, subdiv: str | None = None, **kw: Any) -> BusinessCalendar:
        """A calendar with the public holidays (and make-up working days, where the package knows them) of
        ``country`` for ``years``, from the optional ``holidays`` package (``pip install pycrm[automation]``);
        ``kw``: the other fields (``timezone``, ``start``, ``hours``, ...)."""
        try:
            import holidays as package
        except ImportError:  # pragma: no cover - an optional dependency
            raise _bad("country", "needs the holidays package: pip install 'pycrm[automation]'", "missing") from None
        wanted = [years] if isinstance(years, int) else list(years)
        if not wanted or len(wanted) > 50 or any(type(y) is not int or not 1900 <= y <= 2200 for y in wanted):
            raise _bad("years", f"must be 1 to 50 years between 1900 and 2200, got {quote(years)}")
        if not isinstance(country, str) or not 2 <= len(country) <= 3:
            raise _bad("country", f"must be an ISO 3166 country code such as 'CN', got {quote(country)}")
        try:
            found = package.country_holidays(country.upper(), subdiv=subdiv, years=wanted)
        except NotImplementedError:
            raise _bad("country", f"the holidays package knows no holidays of {quote(country)}", "unknown") from None
        years_set = set(wanted)
        days = {d for d in found if d.year in years_set}
        extra = {d for d in getattr(found, "weekend_workdays", ()) if d.year in years_set} - days
        return cls(holidays=[*days, *kw.pop("holidays", ())], extra_workdays=[*extra, *kw.pop("extra_workdays", ())], **kw)

    @classmethod
    def china(cls, years: int | Iterable[int], **kw: Any) -> BusinessCalendar:
        """Mainland China's calendar for ``years``: the public holidays and the official make-up working days
        (调休) from the ``holidays`` package, in ``Asia/Shanghai``; ``kw``: the other fields (``hours``, ...).

        >>> cn = BusinessCalendar.china(2026)  # doctest: +SKIP
        >>> cn.is_working_day(dt.date(2026, 10, 10)), cn.is_working_day(dt.date(2026, 10, 1))  # doctest: +SKIP
        (True, False)
        """
        kw.setdefault("timezone", "Asia/Shanghai")
        return cls.from_holidays("CN", years, **kw)

    _KEYS = ("weekdays", "start", "end", "timezone", "holidays", "extra_workdays", "hours", "makeup_weekday", "closures")

    def to_dict(self) -> dict[str, Any]:
        """The calendar as plain data (strings, lists and mappings: JSON and TOML can hold it);
        ``BusinessCalendar.from_dict(cal.to_dict()) == cal``."""
        out: dict[str, Any] = {"timezone": self.timezone}
        if self.hours is None:
            assert self.start is not None and self.end is not None
            out["weekdays"] = [_NAMES[d] for d in sorted(self.weekdays)]
            out["start"], out["end"] = _text(self.start), _text(self.end)
        else:
            out["hours"] = {name: [list(w) for w in windows] for name, windows in self.hours}
            if self.makeup_weekday is not None:
                out["makeup_weekday"] = _NAMES[self.makeup_weekday]
        out["holidays"] = [d.isoformat() for d in sorted(self.holidays)]
        out["extra_workdays"] = [d.isoformat() for d in sorted(self.extra_workdays)]
        out["closures"] = [[a.isoformat(), b.isoformat()] for a, b in self.closures]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BusinessCalendar:
        """A calendar from :meth:`to_dict`'s data (or a config file's table); unknown keys are a ValidationError
        naming them."""
        if not isinstance(data, Mapping):
            raise _bad("calendar", f"must be a mapping of calendar fields, got {quote(data)}")
        for key in data:
            if key not in cls._KEYS:
                raise _bad(str(key), f"is not a calendar field (one of {', '.join(cls._KEYS)})", "unknown")
        return cls(**data)

    # ---------------------------------------------------------------- compiled working intervals
    def _local_us(self, naive: dt.datetime, zone: ZoneInfo) -> int:
        offset = zone.utcoffset(naive)
        assert offset is not None
        return (naive - _NAIVE_EPOCH - offset) // _US

    def _day_windows(self, day: dt.date) -> tuple[tuple[int, int], ...]:
        week = self._week
        if day in self.extra_workdays:
            own = week[day.weekday()]
            if own:
                return own
            makeup = self.makeup_weekday if self.makeup_weekday is not None else min(self.weekdays)
            return week[makeup]
        if day in self.holidays:
            return ()
        return week[day.weekday()]

    def _block(self, k: int) -> tuple[int, int, list[tuple[int, int]]]:
        """The working intervals of the local years ``1 + 4k`` to ``4 + 4k``, clipped to them, closures taken out."""
        got = self._cache.blocks.get(k)
        if got is not None:
            return got
        zone = self.zone
        y0 = 1 + k * _BLOCK_YEARS
        lo = self._local_us(dt.datetime(y0, 1, 1), zone)
        hi = self._local_us(dt.datetime(y0 + _BLOCK_YEARS, 1, 1), zone)
        pairs: list[tuple[int, int]] = []
        day = dt.date(y0, 1, 1) - _ONE_DAY  # the last day before: its windows may run past midnight
        last = dt.date(y0 + _BLOCK_YEARS, 1, 1)
        while day < last:
            windows = self._day_windows(day)
            if windows:
                midnight = dt.datetime(day.year, day.month, day.day)
                for s, e in windows:
                    a_naive = midnight + dt.timedelta(microseconds=s)
                    b_naive = midnight + dt.timedelta(microseconds=e)
                    a = self._local_us(a_naive, zone)
                    b = self._local_us(b_naive, zone)
                    a, b = max(a, lo), min(b, hi)
                    if b > a:  # a window inside a skipped hour of a clock change can come out empty
                        pairs.append((a, b))
            day += _ONE_DAY
        work = _merge(pairs)
        if self.closures:
            lo_dt = _EPOCH + dt.timedelta(microseconds=lo)
            hi_dt = _EPOCH + dt.timedelta(microseconds=hi)
            gaps = _merge([(_us(a), _us(b)) for a, b in self.closures if a < hi_dt and b > lo_dt])
            work = _subtract(work, gaps)
        got = (lo, hi, work)
        if len(self._cache.blocks) >= 4 * _MAX_BULK_BLOCKS:
            self._cache.blocks.clear()
        self._cache.blocks[k] = got
        return got

    def _span(self, lo_us: int, hi_us: int, field: str = "at") -> _Span:
        """The compiled intervals covering the instants ``lo_us`` to ``hi_us`` (cached; widened when needed)."""
        span = self._cache.span
        if span is not None and span.lo <= lo_us and hi_us <= span.hi:
            return span
        k0 = _block_of(max(_year(lo_us, field) - 1, _MIN_YEAR))
        k1 = _block_of(min(_year(hi_us, field) + 1, _MAX_YEAR))
        if k1 - k0 >= _MAX_BULK_BLOCKS:
            raise _bad(field, f"the instants lie more than {_MAX_BULK_BLOCKS * _BLOCK_YEARS} years apart", "range")
        if span is not None and max(k1, span.k1) - min(k0, span.k0) < _KEEP_BLOCKS:
            k0, k1 = min(k0, span.k0), max(k1, span.k1)
        starts: list[int] = []
        ends: list[int] = []
        lo = hi = 0
        for k in range(k0, k1 + 1):
            b_lo, b_hi, work = self._block(k)
            if k == k0:
                lo = b_lo
            hi = b_hi
            for a, b in work:
                if starts and ends[-1] == a:  # two blocks meet inside a working interval
                    ends[-1] = b
                else:
                    starts.append(a)
                    ends.append(b)
        cum: list[int] = []
        cumend: list[int] = []
        total = 0
        for a, b in zip(starts, ends, strict=True):
            cum.append(total)
            total += b - a
            cumend.append(total)
        span = _Span(k0, k1, lo, hi, starts, ends, cum, cumend)
        self._cache.span = span
        return span

    # ---------------------------------------------------------------- questions
    def is_working_day(self, day: dt.date) -> bool:
        """Whether ``day`` (a date in the calendar's time zone) is a working day (its windows may still be
        closed by a closure)."""
        if isinstance(day, dt.datetime) or not isinstance(day, dt.date):
            raise _bad("day", f"must be a date, got {quote(day)}")
        if day in self.extra_workdays:
            return True
        return day.weekday() in self.weekdays and day not in self.holidays

    def is_working_time(self, at: dt.datetime) -> bool:
        """Whether the moment ``at`` (timezone-aware) falls in a working window of a working day, outside closures."""
        t = _us(_aware(at, "at"))
        span = self._span(t, t)
        i = bisect_right(span.starts, t) - 1
        return i >= 0 and t < span.ends[i]

    def add_business_days(self, at: dt.datetime, n: int) -> dt.datetime:
        """The same time of day ``n`` working days after ``at`` (before it for a negative ``n``; ``at`` for 0),
        in ``at``'s time zone; days are counted in the calendar's. ``|n|`` is at most :data:`MAX_BUSINESS_DAYS`."""
        local = _aware(at, "at").astimezone(self.zone)
        if type(n) is not int or abs(n) > MAX_BUSINESS_DAYS:
            bound = MAX_BUSINESS_DAYS
            raise _bad("n", f"must be a whole number of days between -{bound} and {bound}, got {quote(n)}")
        if n == 0:
            return at
        step = dt.timedelta(days=1 if n > 0 else -1)
        day, left = local.date(), abs(n)
        while left:  # at most |n| working days plus the days off between them: bounded by the bound on n
            day += step
            if self.is_working_day(day):
                left -= 1
        moved = dt.datetime.combine(day, local.timetz().replace(tzinfo=None), self.zone)
        return moved.astimezone(at.tzinfo)

    def next_working_time(self, at: dt.datetime) -> dt.datetime:
        """``at`` itself if it is working time, else the start of the next working window (or the end of the
        closure that holds it), in ``at``'s time zone."""
        t = _us(_aware(at, "at"))
        span = self._span(t, t)
        horizon = t + (MAX_DATES + 8) * _DAY_US
        while True:  # bounded: the span grows by at least a block a turn, up to the horizon
            i = bisect_right(span.starts, t)
            if i and t < span.ends[i - 1]:
                return at
            if i < len(span.starts):
                return (_EPOCH + dt.timedelta(microseconds=span.starts[i])).astimezone(at.tzinfo)
            if span.hi >= horizon:
                raise _bad("at", f"no working time within {MAX_DATES} days of {at.isoformat()}", "range")
            span = self._span(t, span.hi + _DAY_US)

    # ---------------------------------------------------------------- business time
    def business_time(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        """The working time between two instants (negative when ``end`` is before ``start``): the part of the
        working windows, closures taken out, that falls between them. Additive (a-b plus b-c is a-c) and exact
        across clock changes; the instants are at most :data:`MAX_BUSINESS_SPAN` days apart.

        >>> cal = BusinessCalendar()  # Monday to Friday, 09:00-18:00 UTC
        >>> friday_17 = dt.datetime(2026, 12, 4, 17, tzinfo=dt.UTC)
        >>> cal.business_time(friday_17, dt.datetime(2026, 12, 7, 17, tzinfo=dt.UTC))  # to Monday 17:00
        datetime.timedelta(seconds=32400)
        """
        a = _us(_aware(start, "start"))
        b = _us(_aware(end, "end"))
        if abs(b - a) > (MAX_BUSINESS_SPAN + 1) * _DAY_US:
            raise _bad("end", f"spans more than {MAX_BUSINESS_SPAN} days from start", "range")
        span = self._span(min(a, b), max(a, b), "end")
        return dt.timedelta(microseconds=span.worked(b) - span.worked(a))

    def add_business_time(self, at: dt.datetime, amount: dt.timedelta) -> dt.datetime:
        """The first instant at which ``amount`` of working time has passed since ``at`` (a due time: a ticket
        opened Friday 17:00 with 8 working hours to go is due Monday 16:00 on a 09:00-18:00 calendar), in
        ``at``'s time zone; ``amount`` 0 gives ``at``. ``business_time(at, result) == amount``. At most
        :data:`MAX_BUSINESS_SPAN` days ahead.

        >>> cal = BusinessCalendar()
        >>> cal.add_business_time(dt.datetime(2026, 12, 4, 17, tzinfo=dt.UTC), dt.timedelta(hours=8))
        datetime.datetime(2026, 12, 7, 16, 0, tzinfo=datetime.timezone.utc)
        """
        origin = _aware(at, "at")
        if not isinstance(amount, dt.timedelta) or amount < dt.timedelta(0):
            raise _bad("amount", f"must be a timedelta of 0 or more, got {quote(amount)}")
        if not amount:
            return origin
        a = _us(origin)
        left = amount // _US
        span = self._span(a, a)
        target = span.worked(a) + left
        j = bisect_left(span.cumend, target)
        if j == len(span.cumend):  # beyond the cached years: widen to the bound
            span = self._span(a, a + (MAX_BUSINESS_SPAN + 1) * _DAY_US)
            target = span.worked(a) + left
            j = bisect_left(span.cumend, target)
        t = span.starts[j] + target - span.cum[j] if j < len(span.cumend) else None
        if t is None or t - a > (MAX_BUSINESS_SPAN + 1) * _DAY_US:
            raise _bad("amount", f"needs more than {MAX_BUSINESS_SPAN} days of this calendar", "range")
        return (_EPOCH + dt.timedelta(microseconds=t)).astimezone(origin.tzinfo)

    # ---------------------------------------------------------------- many at once
    def due_times(self, starts: Any, amount: Any) -> Any:
        """:meth:`add_business_time` for many instants at once: ``starts``, a sequence of aware datetimes or a
        numpy ``datetime64`` array (read as UTC); ``amount``, one ``timedelta`` or one per start (a sequence of
        timedeltas or a ``timedelta64`` array). A numpy ``datetime64[us]`` array of UTC due times, element for
        element equal to :meth:`add_business_time`.

        >>> import numpy as np
        >>> cal = BusinessCalendar()
        >>> cal.due_times(np.array(["2026-12-04T17:00", "2026-12-07T10:00"], "datetime64[us]"), dt.timedelta(hours=8))
        array(['2026-12-07T16:00:00.000000', '2026-12-07T18:00:00.000000'],
              dtype='datetime64[us]')
        """
        a = _instants(starts, "starts")
        amt = _durations(amount, len(a))
        if not len(a):
            return a.view("datetime64[us]")
        bound = (MAX_BUSINESS_SPAN + 1) * _DAY_US
        span = self._span(int(a.min()), int(a.max()), "starts")
        for widen in (False, True):
            if widen:
                span = self._span(int(a.min()), int(a.max()) + bound, "starts")
            _, _, cum, cumend = span.numpy()
            target = span.worked_many(a) + amt
            j = np.searchsorted(cumend, target, "left")
            if not len(cumend) or (j >= len(cumend)).any():
                continue
            starts_arr = span.numpy()[0]
            out = np.where(amt == 0, a, starts_arr[j] + target - cum[j])
            if ((out - a) > bound).any():
                break
            return out.view("datetime64[us]")
        raise _bad("amount", f"needs more than {MAX_BUSINESS_SPAN} days of this calendar", "range")

    def business_times(self, starts: Any, ends: Any) -> Any:
        """:meth:`business_time` for many pairs at once: ``starts`` and ``ends`` as in :meth:`due_times`, of
        one length. A numpy ``timedelta64[us]`` array, element for element equal to :meth:`business_time`."""
        a = _instants(starts, "starts")
        b = _instants(ends, "ends")
        if len(a) != len(b):
            raise _bad("ends", f"holds {len(b)} instants for {len(a)} starts", "invalid")
        if not len(a):
            return np.zeros(0, dtype="timedelta64[us]")
        far = np.flatnonzero(np.abs(b - a) > (MAX_BUSINESS_SPAN + 1) * _DAY_US)
        if len(far):
            raise _bad(f"ends[{int(far[0])}]", f"spans more than {MAX_BUSINESS_SPAN} days from start", "range")
        span = self._span(int(min(a.min(), b.min())), int(max(a.max(), b.max())), "starts")
        return (span.worked_many(b) - span.worked_many(a)).view("timedelta64[us]")


def _instants(values: Any, field: str) -> Any:
    """UTC epoch microseconds (int64) of aware datetimes or a ``datetime64`` array (UTC)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        if values.ndim != 1:
            raise _bad(field, "must be one-dimensional")
        if np.isnat(values).any():
            raise _bad(f"{field}[{int(np.flatnonzero(np.isnat(values))[0])}]", "is not a time (NaT)")
        return values.astype("datetime64[us]").view(np.int64)
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise _bad(field, f"must be a sequence of timezone-aware datetimes or a datetime64 array, got {quote(values)}")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, np.datetime64):
            if np.isnat(v):
                raise _bad(f"{field}[{i}]", "is not a time (NaT)")
            out.append(int(v.astype("datetime64[us]").astype(np.int64)))
        else:
            out.append(_us(_aware(v, f"{field}[{i}]")))
    return np.asarray(out, dtype=np.int64)


def _durations(value: Any, n: int) -> Any:
    """Microseconds (int64, ``n`` of them) of a timedelta or one per instant; none negative."""
    if isinstance(value, dt.timedelta):
        if value < dt.timedelta(0):
            raise _bad("amount", f"must be a timedelta of 0 or more, got {quote(value)}")
        return np.full(n, value // _US, dtype=np.int64)
    if isinstance(value, np.ndarray) and value.dtype.kind == "m":
        if value.ndim != 1 or len(value) != n or np.isnat(value).any():
            raise _bad("amount", f"must hold {n} durations, one per start")
        out = value.astype("timedelta64[us]").view(np.int64)
    elif isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise _bad("amount", f"must be a timedelta or one per start, got {quote(value)}")
    else:
        items = list(value)
        if len(items) != n or not all(isinstance(x, dt.timedelta) for x in items):
            raise _bad("amount", f"must hold {n} timedeltas, one per start")
        out = np.asarray([x // _US for x in items], dtype=np.int64)
    if (out < 0).any():
        raise _bad(f"amount[{int(np.flatnonzero(out < 0)[0])}]", "must be a timedelta of 0 or more")
    return out
