"""Business time on a calendar: the working time between two instants and the instant a working time after another.

Property tests: additive, monotonic, the inverse of each other, exact across clock changes (America/New_York,
Europe/Berlin), with holidays and make-up working days; and the Friday-17:00 ticket of the service desk issue.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycrm.automation import BusinessCalendar
from pycrm.errors import ValidationError

UTC = dt.UTC
H = dt.timedelta(hours=1)

CALENDARS = [
    BusinessCalendar(),
    BusinessCalendar(timezone="America/New_York", start="08:30", end="17:15"),
    BusinessCalendar(timezone="Europe/Berlin", weekdays=["mon", "tue", "wed", "thu"], holidays=["2026-10-26"]),
    BusinessCalendar(
        timezone="Asia/Shanghai",
        holidays=["2026-10-01", "2026-10-02", "2026-10-05", "2026-10-06", "2026-10-07"],
        extra_workdays=["2026-09-27", "2026-10-10"],  # make-up working days (Sundays/Saturdays)
    ),
]

instants = st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)
calendars = st.sampled_from(CALENDARS)


@given(calendars, instants, instants, instants)
def test_business_time_is_additive_and_monotonic(cal: BusinessCalendar, a: dt.datetime, b: dt.datetime, c: dt.datetime) -> None:
    a, b, c = sorted((a, b, c))
    ab, bc, ac = cal.business_time(a, b), cal.business_time(b, c), cal.business_time(a, c)
    assert ab + bc == ac
    assert dt.timedelta(0) <= ab <= b - a
    assert cal.business_time(b, a) == -ab


@given(calendars, instants, st.integers(min_value=0, max_value=60 * 24 * 60).map(lambda m: dt.timedelta(minutes=m)))
def test_adding_business_time_is_the_inverse(cal: BusinessCalendar, a: dt.datetime, amount: dt.timedelta) -> None:
    due = cal.add_business_time(a, amount)
    assert due >= a and cal.business_time(a, due) == amount
    if amount:  # the first such instant: a second earlier is not enough, and it is working time
        assert cal.business_time(a, due - dt.timedelta(seconds=1)) < amount
        assert cal.is_working_time(due - dt.timedelta(microseconds=1))


def test_the_friday_ticket_and_the_weekend() -> None:
    cal = BusinessCalendar()  # 09:00-18:00 UTC, Monday to Friday
    friday_17 = dt.datetime(2026, 12, 4, 17, tzinfo=UTC)
    assert cal.add_business_time(friday_17, 8 * H) == dt.datetime(2026, 12, 7, 16, tzinfo=UTC)  # Monday 16:00
    assert cal.business_time(friday_17, friday_17 + 72 * H) == 9 * H  # the weekend does not count


def test_clock_changes_make_the_day_shorter_or_longer_in_utc_only() -> None:
    cal = BusinessCalendar(timezone="America/New_York", weekdays=range(7), start="00:00", end="23:59")
    spring = dt.date(2026, 3, 8)  # 02:00 -> 03:00: the day has 23 hours
    a = dt.datetime.combine(spring, dt.time(0), cal.zone)
    b = dt.datetime.combine(spring, dt.time(23, 59), cal.zone)
    assert cal.business_time(a, b) == 24 * H - dt.timedelta(minutes=1) - H  # 23:59 on the clock, one hour skipped
    assert cal.add_business_time(a, 5 * H).astimezone(cal.zone).time() == dt.time(6)  # 5 hours passed, not 5 on the clock


def test_make_up_working_days_and_holidays_count_as_the_calendar_says() -> None:
    cal = CALENDARS[3]
    sunday_make_up = dt.datetime(2026, 9, 27, 9, tzinfo=cal.zone)
    assert cal.business_time(sunday_make_up, sunday_make_up + 24 * H) == 9 * H
    golden_week = dt.datetime(2026, 10, 1, 9, tzinfo=cal.zone)
    # Thursday 1 Oct to Friday 9 Oct 09:00: the holidays (1, 2, 5-7) and the weekend are off, Thursday 8 works
    assert cal.business_time(golden_week, golden_week + 8 * 24 * H) == 9 * H
    # Saturday 10 Oct is a make-up working day: a ticket due 9 working hours after Friday 9 Oct 18:00
    friday_evening = dt.datetime(2026, 10, 9, 18, tzinfo=cal.zone)
    assert cal.add_business_time(friday_evening, 9 * H) == dt.datetime(2026, 10, 10, 18, tzinfo=cal.zone)


def test_bad_arguments_are_named() -> None:
    cal = BusinessCalendar()
    with pytest.raises(ValidationError, match="start"):
        cal.business_time(dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2, tzinfo=UTC))  # naive
    with pytest.raises(ValidationError, match="amount"):
        cal.add_business_time(dt.datetime(2026, 1, 1, tzinfo=UTC), -H)
    with pytest.raises(ValidationError, match="amount"):
        cal.add_business_time(dt.datetime(2026, 1, 1, tzinfo=UTC), 5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="end"):
        cal.business_time(dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2046, 1, 1, tzinfo=UTC))
