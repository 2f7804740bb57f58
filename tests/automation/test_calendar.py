"""BusinessCalendar: working days and hours, holidays, make-up days, time zones, bounds and bad input."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from pycrm import ValidationError
from pycrm.automation import BusinessCalendar
from pycrm.automation._calendar import MAX_BUSINESS_DAYS

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")


def _field(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    return exc.value.errors[0].field


def test_the_default_is_monday_to_friday_nine_to_six_utc() -> None:
    cal = BusinessCalendar()
    assert [cal.is_working_day(dt.date(2026, 12, d)) for d in range(7, 14)] == [True] * 5 + [False] * 2
    mon = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    assert not cal.is_working_time(mon.replace(hour=8, minute=59))
    assert cal.is_working_time(mon.replace(hour=9))
    assert cal.is_working_time(mon.replace(hour=17, minute=59))
    assert not cal.is_working_time(mon.replace(hour=18))


def test_holidays_and_make_up_days() -> None:
    # China, October 2026 style: the holiday week off, a Saturday worked in exchange
    cal = BusinessCalendar(holidays=[dt.date(2026, 10, d) for d in range(1, 8)], extra_workdays=["2026-10-10"])
    assert not cal.is_working_day(dt.date(2026, 10, 1))  # a Thursday, but a holiday
    assert cal.is_working_day(dt.date(2026, 10, 10))  # a Saturday, worked
    assert not cal.is_working_day(dt.date(2026, 10, 11))  # the Sunday after
    # from Wednesday 30 September 10:00, 1 working day later is Thursday 8 October, 2 is Friday 9, 3 is Saturday 10
    start = dt.datetime(2026, 9, 30, 10, tzinfo=dt.UTC)
    assert [cal.add_business_days(start, n).date() for n in (1, 2, 3, 4)] == [
        dt.date(2026, 10, 8),
        dt.date(2026, 10, 9),
        dt.date(2026, 10, 10),
        dt.date(2026, 10, 12),
    ]
    assert cal.add_business_days(dt.datetime(2026, 10, 12, 10, tzinfo=dt.UTC), -3).date() == dt.date(2026, 10, 8)


def test_add_business_days_keeps_the_time_of_day_and_zero_is_the_same_moment() -> None:
    cal = BusinessCalendar()
    fri = dt.datetime(2026, 12, 11, 16, 30, tzinfo=dt.UTC)
    assert cal.add_business_days(fri, 0) is fri
    assert cal.add_business_days(fri, 1) == dt.datetime(2026, 12, 14, 16, 30, tzinfo=dt.UTC)
    assert cal.add_business_days(fri, 5) == dt.datetime(2026, 12, 18, 16, 30, tzinfo=dt.UTC)
    sat = dt.datetime(2026, 12, 12, 8, tzinfo=dt.UTC)  # from a day off: the next working days count
    assert cal.add_business_days(sat, 1) == dt.datetime(2026, 12, 14, 8, tzinfo=dt.UTC)


def test_days_are_counted_in_the_calendars_time_zone() -> None:
    cal = BusinessCalendar(timezone="Asia/Shanghai")
    # Friday 20:00 UTC is Saturday 04:00 in Shanghai: the next working day there is Monday
    fri_utc = dt.datetime(2026, 12, 11, 20, tzinfo=dt.UTC)
    moved = cal.add_business_days(fri_utc, 1)
    assert moved.tzinfo is dt.UTC
    assert moved.astimezone(SH) == dt.datetime(2026, 12, 14, 4, tzinfo=SH)  # Monday 04:00 there (in UTC: Sunday)
    assert moved == dt.datetime(2026, 12, 13, 20, tzinfo=dt.UTC)
    assert BusinessCalendar().add_business_days(fri_utc, 1) == dt.datetime(2026, 12, 14, 20, tzinfo=dt.UTC)
    assert cal.is_working_time(dt.datetime(2026, 12, 7, 1, 30, tzinfo=dt.UTC))  # 09:30 in Shanghai
    assert not cal.is_working_time(dt.datetime(2026, 12, 7, 10, 30, tzinfo=dt.UTC))  # 18:30 there


def test_the_local_time_of_day_survives_a_daylight_saving_change() -> None:
    cal = BusinessCalendar(timezone="America/New_York")
    fri = dt.datetime(2026, 10, 30, 10, tzinfo=NY)  # EDT; DST ends on Sunday 1 November
    mon = cal.add_business_days(fri, 1)
    assert mon == dt.datetime(2026, 11, 2, 10, tzinfo=NY)
    assert mon.utcoffset() == dt.timedelta(hours=-5)


def test_next_working_time() -> None:
    cal = BusinessCalendar(timezone="Asia/Shanghai", holidays=["2026-12-14"])
    inside = dt.datetime(2026, 12, 7, 10, tzinfo=SH)
    assert cal.next_working_time(inside) is inside
    assert cal.next_working_time(dt.datetime(2026, 12, 7, 7, tzinfo=SH)) == dt.datetime(2026, 12, 7, 9, tzinfo=SH)
    assert cal.next_working_time(dt.datetime(2026, 12, 7, 19, tzinfo=SH)) == dt.datetime(2026, 12, 8, 9, tzinfo=SH)
    # Friday evening -> the weekend and Monday's holiday are skipped: Tuesday 09:00, in the caller's zone
    got = cal.next_working_time(dt.datetime(2026, 12, 11, 12, tzinfo=dt.UTC))
    assert got == dt.datetime(2026, 12, 15, 9, tzinfo=SH) and got.tzinfo is dt.UTC


def test_custom_weekdays_and_hours() -> None:
    cal = BusinessCalendar(weekdays=["sun", "mon", "tue", "wed", "thu"], start="08:00", end="16:30")
    assert cal.weekdays == frozenset({6, 0, 1, 2, 3})
    assert cal.is_working_day(dt.date(2026, 12, 13))  # a Sunday
    assert not cal.is_working_day(dt.date(2026, 12, 11))  # a Friday
    assert cal.is_working_time(dt.datetime(2026, 12, 13, 16, 29, tzinfo=dt.UTC))


def test_the_number_of_days_is_bounded() -> None:
    cal = BusinessCalendar()
    at = dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC)
    assert cal.add_business_days(at, MAX_BUSINESS_DAYS).year > 2039
    for n in (MAX_BUSINESS_DAYS + 1, -MAX_BUSINESS_DAYS - 1, 1.5, True, "3", None):
        with pytest.raises(ValidationError) as err:
            cal.add_business_days(at, n)  # type: ignore[arg-type]
        assert _field(err) == "n"


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"weekdays": []}, "weekdays"),
        ({"weekdays": [7]}, "weekdays"),
        ({"weekdays": ["funday"]}, "weekdays"),
        ({"weekdays": "mon"}, "weekdays"),
        ({"start": "25:00"}, "start"),
        ({"start": 9}, "start"),
        ({"end": "nine"}, "end"),
        ({"start": "18:00", "end": "09:00"}, "end"),
        ({"start": dt.time(9, tzinfo=dt.UTC)}, "start"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"timezone": 8}, "timezone"),
        ({"holidays": "2026-10-01"}, "holidays"),
        ({"holidays": ["2026-13-01"]}, "holidays[0]"),
        ({"holidays": [dt.datetime(2026, 10, 1)]}, "holidays[0]"),
        ({"extra_workdays": [None]}, "extra_workdays[0]"),
        ({"holidays": ["2026-10-10"], "extra_workdays": ["2026-10-10"]}, "extra_workdays"),
    ],
)
def test_bad_configuration_names_the_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        BusinessCalendar(**kw)  # type: ignore[arg-type]
    assert _field(err) == field


@pytest.mark.parametrize("at", [dt.datetime(2026, 12, 7, 10), "2026-12-07T10:00Z", None])
def test_a_moment_must_be_an_aware_datetime(at: object) -> None:
    cal = BusinessCalendar()
    for call in (cal.is_working_time, cal.next_working_time, lambda a: cal.add_business_days(a, 1)):
        with pytest.raises(ValidationError) as err:
            call(at)  # type: ignore[operator]
        assert _field(err) == "at"
    with pytest.raises(ValidationError):
        cal.is_working_day(dt.datetime(2026, 12, 7, tzinfo=dt.UTC))  # type: ignore[arg-type]


def test_calendars_are_frozen_values() -> None:
    a = BusinessCalendar(holidays=["2026-10-01"])
    assert a == BusinessCalendar(holidays=[dt.date(2026, 10, 1)])
    assert hash(a) == hash(BusinessCalendar(holidays=[dt.date(2026, 10, 1)]))
    with pytest.raises(AttributeError):
        a.timezone = "Asia/Shanghai"  # type: ignore[misc]


def test_from_holidays_takes_public_holidays_and_make_up_days() -> None:
    pytest.importorskip("holidays")
    cal = BusinessCalendar.from_holidays("CN", 2025, timezone="Asia/Shanghai", holidays=["2025-12-24"])
    assert not cal.is_working_day(dt.date(2025, 10, 1))  # National Day
    assert cal.is_working_day(dt.date(2025, 9, 28))  # a Sunday worked in exchange
    assert not cal.is_working_day(dt.date(2025, 12, 24))  # an extra day off given by the caller
    assert all(d.year == 2025 for d in cal.holidays | cal.extra_workdays - {dt.date(2025, 12, 24)})
    assert cal.timezone == "Asia/Shanghai"
    with pytest.raises(ValidationError) as err:
        BusinessCalendar.from_holidays("XX", 2025)
    assert _field(err) == "country"
    with pytest.raises(ValidationError) as err:
        BusinessCalendar.from_holidays("CN", [])
    assert _field(err) == "years"
