"""Business calendars: which days and hours people work, for due dates and assignment.

A :class:`BusinessCalendar` knows the working weekdays, the daily working hours in a time zone, the holidays
(days off) and the make-up working days (a weekend day worked in exchange for a holiday, as in China). It
answers "is this a working day / a working time", "n working days after this moment" and "the next working
moment". It depends on no storage: rules and assignment hold one as configuration.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from pycrm.errors import ValidationError, quote

__all__ = ["MAX_BUSINESS_DAYS", "BusinessCalendar"]

#: The most working days :meth:`BusinessCalendar.add_business_days` moves (about ten years of every day).
MAX_BUSINESS_DAYS = 3660
#: The longest span :meth:`BusinessCalendar.business_time` and :meth:`~BusinessCalendar.add_business_time` walk, in days.
MAX_BUSINESS_SPAN = 3660
#: The most dates a calendar's ``holidays`` or ``extra_workdays`` hold.
MAX_DATES = 100_000

_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


def _bad(field: str, message: str, code: str = "invalid") -> ValidationError:
    return ValidationError(message, field=field, code=code)


def _weekdays(value: Any) -> frozenset[int]:
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


def _start(value: Any) -> dt.time:
    return _clock(value, "start")


def _end(value: Any) -> dt.time:
    return _clock(value, "end")


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


@attrs.frozen
class BusinessCalendar:
    """Working days and hours in one time zone.

    ``weekdays``: the working weekdays (0 = Monday ... 6 = Sunday, or ``"mon"`` ... ``"sun"``), Monday to Friday
    by default; ``start`` / ``end``: the daily working hours (``"09:00"`` to ``"18:00"``), in ``timezone``
    (a zoneinfo name, UTC by default); ``holidays``: dates off; ``extra_workdays``: make-up working days on
    days that are otherwise off. Bad values are a ValidationError naming the field.

    >>> cal = BusinessCalendar(timezone="Asia/Shanghai", holidays=["2026-10-01"], extra_workdays=["2026-10-10"])
    >>> cal.is_working_day(dt.date(2026, 10, 1)), cal.is_working_day(dt.date(2026, 10, 10))
    (False, True)
    """

    weekdays: frozenset[int] = attrs.field(default=frozenset(range(5)), converter=_weekdays)
    start: dt.time = attrs.field(default=dt.time(9), converter=_start)
    end: dt.time = attrs.field(default=dt.time(18), converter=_end)
    timezone: str = attrs.field(default="UTC", converter=_zone)
    holidays: frozenset[dt.date] = attrs.field(default=frozenset(), converter=_holidays)
    extra_workdays: frozenset[dt.date] = attrs.field(default=frozenset(), converter=_extra_workdays)

    def __attrs_post_init__(self) -> None:
        if not self.weekdays:  # with one, every week has a working day but for the (finitely many) holidays
            raise _bad("weekdays", "a calendar needs at least one working weekday", "empty")
        if self.start >= self.end:
            raise _bad("end", f"the working day must end after it starts ({self.start} - {self.end})", "range")
        both = self.holidays & self.extra_workdays
        if both:
            raise _bad("extra_workdays", f"{min(both).isoformat()} is a holiday and a make-up working day", "conflict")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def from_holidays(cls, country: str, years: int | Iterable[int], *, subdiv: str | None = None, **kw: Any) -> BusinessCalendar:
        """A calendar with the public holidays (and make-up working days, where the package knows them) of
        ``country`` for ``years``, from the optional ``holidays`` package (``pip install pycrm[automation]``);
        ``kw``: the other fields (``timezone``, ``start``, ...)."""
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

    # ---------------------------------------------------------------- questions
    def is_working_day(self, day: dt.date) -> bool:
        """Whether ``day`` (a date in the calendar's time zone) is a working day."""
        if isinstance(day, dt.datetime) or not isinstance(day, dt.date):
            raise _bad("day", f"must be a date, got {quote(day)}")
        if day in self.extra_workdays:
            return True
        return day.weekday() in self.weekdays and day not in self.holidays

    def is_working_time(self, at: dt.datetime) -> bool:
        """Whether the moment ``at`` (timezone-aware) falls in working hours on a working day."""
        local = _aware(at, "at").astimezone(self.zone)
        return self.is_working_day(local.date()) and self.start <= local.time() < self.end

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
        """``at`` itself if it is working time, else the start of the next working hours (in ``at``'s time zone)."""
        local = _aware(at, "at").astimezone(self.zone)
        if self.is_working_time(at):
            return at
        day = local.date()
        if not (self.is_working_day(day) and local.time() < self.start):
            day = self._next_working_day(day)
        return dt.datetime.combine(day, self.start, self.zone).astimezone(at.tzinfo)

    # ---------------------------------------------------------------- business time
    def _window(self, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        """The working hours of ``day`` as UTC instants (a clock change on the day shortens or lengthens them)."""
        zone = self.zone
        return (
            dt.datetime.combine(day, self.start, zone).astimezone(dt.UTC),
            dt.datetime.combine(day, self.end, zone).astimezone(dt.UTC),
        )

    def business_time(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        """The working time between two instants (negative when ``end`` is before ``start``): the part of each
        working day's hours that falls between them. Additive (a-b plus b-c is a-c) and exact across clock
        changes; one step per day of the span, which is at most :data:`MAX_BUSINESS_SPAN` days.

        >>> cal = BusinessCalendar()  # Monday to Friday, 09:00-18:00 UTC
        >>> friday_17 = dt.datetime(2026, 12, 4, 17, tzinfo=dt.UTC)
        >>> cal.business_time(friday_17, dt.datetime(2026, 12, 7, 17, tzinfo=dt.UTC))  # to Monday 17:00
        datetime.timedelta(seconds=32400)
        """
        a = _aware(start, "start").astimezone(dt.UTC)
        b = _aware(end, "end").astimezone(dt.UTC)
        if b < a:
            return -self.business_time(b, a)
        zone = self.zone
        first, last = a.astimezone(zone).date(), b.astimezone(zone).date()
        if (last - first).days > MAX_BUSINESS_SPAN:
            raise _bad("end", f"spans more than {MAX_BUSINESS_SPAN} days from start", "range")
        total = dt.timedelta(0)
        day = first
        while day <= last:
            if self.is_working_day(day):
                lo, hi = self._window(day)
                lo, hi = max(lo, a), min(hi, b)
                if hi > lo:
                    total += hi - lo
            day += dt.timedelta(days=1)
        return total

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
        left = amount
        if not left:
            return origin
        a = origin.astimezone(dt.UTC)
        day = a.astimezone(self.zone).date()
        for _ in range(MAX_BUSINESS_SPAN + 1):  # one step per day
            if self.is_working_day(day):
                lo, hi = self._window(day)
                lo = max(lo, a)
                if hi > lo:
                    if hi - lo >= left:
                        return (lo + left).astimezone(origin.tzinfo)
                    left -= hi - lo
            day += dt.timedelta(days=1)
        raise _bad("amount", f"needs more than {MAX_BUSINESS_SPAN} days of this calendar", "range")

    def _next_working_day(self, day: dt.date) -> dt.date:
        for _ in range(MAX_DATES + 8):  # a calendar with a working weekday or a make-up day ends this
            day += dt.timedelta(days=1)
            if self.is_working_day(day):
                return day
        raise _bad("at", f"no working day within {MAX_DATES} days of {day.isoformat()}", "range")
