"""BusinessCalendar's working windows per weekday (``hours``, past midnight), make-up weekdays, closures,
configuration as data, China's calendar, the compiled intervals against a naive per-day oracle (Hypothesis,
across clock changes and block boundaries) and the bulk methods against the scalar ones."""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from zoneinfo import ZoneInfo

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycrm import ValidationError
from pycrm.automation import BusinessCalendar
from pycrm.automation._calendar import MAX_CLOSURES, MAX_WINDOWS

UTC = dt.UTC
H = dt.timedelta(hours=1)
BERLIN = ZoneInfo("Europe/Berlin")
LUNCH = {d: [("09:00", "12:00"), ("13:00", "18:00")] for d in ("mon", "tue", "wed", "thu", "fri")}


def _field(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    return exc.value.errors[0].field


def _code(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    return exc.value.errors[0].code


# ---------------------------------------------------------------- windows
def test_several_windows_a_day() -> None:
    cal = BusinessCalendar(hours=LUNCH)
    assert cal.weekdays == frozenset(range(5)) and cal.start is None and cal.end is None
    mon = dt.datetime(2026, 12, 7, tzinfo=UTC)
    assert [cal.is_working_time(mon.replace(hour=h)) for h in (8, 9, 11, 12, 13, 17, 18)] == [
        False, True, True, False, True, True, False,
    ]  # fmt: skip
    assert cal.business_time(mon, mon + 24 * H) == 8 * H  # lunch does not count
    assert cal.add_business_time(mon.replace(hour=11), 2 * H) == mon.replace(hour=14)  # over lunch
    assert cal.next_working_time(mon.replace(hour=12, minute=30)) == mon.replace(hour=13)
    friday_17 = dt.datetime(2026, 12, 4, 17, tzinfo=UTC)
    assert cal.add_business_time(friday_17, 8 * H) == dt.datetime(2026, 12, 7, 17, tzinfo=UTC)


def test_a_window_past_midnight_belongs_to_the_day_it_starts_on() -> None:
    night = BusinessCalendar(hours={"fri": [("22:00", "06:00")]}, holidays=["2026-12-18"], timezone="Europe/Berlin")
    sat_3 = dt.datetime(2026, 12, 12, 3, tzinfo=BERLIN)
    assert night.is_working_time(sat_3)  # Friday 11 December's night shift
    assert not night.is_working_day(sat_3.date())
    assert not night.is_working_time(sat_3 + 7 * 24 * H)  # Friday 18 December is a holiday: its night is off
    assert night.business_time(sat_3 - 24 * H, sat_3 + 24 * H) == 8 * H
    # 3 hours left of that shift, then Friday 18 is off: the last hour on Friday 25 at 22:00
    assert night.add_business_time(sat_3, 4 * H) == dt.datetime(2026, 12, 25, 23, tzinfo=BERLIN)
    assert night.next_working_time(sat_3.replace(hour=7)) == dt.datetime(2026, 12, 25, 22, tzinfo=BERLIN)


def test_24_00_ends_the_day_and_a_whole_day_is_a_window() -> None:
    cal = BusinessCalendar(hours={"sat": [("18:00", "24:00")], "sun": [("00:00", "24:00")]})
    sat = dt.datetime(2026, 12, 12, tzinfo=UTC)
    assert cal.business_time(sat, sat + 72 * H) == 6 * H + 24 * H
    assert cal.to_dict()["hours"] == {"sat": [["18:00", "24:00"]], "sun": [["00:00", "24:00"]]}
    assert cal.is_working_time(sat.replace(hour=23, minute=59)) and cal.is_working_time(sat + 24 * H)


def test_clock_changes_shorten_and_lengthen_a_night_window() -> None:
    cal = BusinessCalendar(hours={"sat": [("22:00", "06:00")]}, timezone="Europe/Berlin")
    spring = dt.datetime(2026, 3, 28, 12, tzinfo=BERLIN)  # clocks go 02:00 -> 03:00 on Sunday 29 March
    autumn = dt.datetime(2026, 10, 24, 12, tzinfo=BERLIN)  # 03:00 -> 02:00 on Sunday 25 October
    usual = dt.datetime(2026, 5, 2, 12, tzinfo=BERLIN)
    assert cal.business_time(usual, usual + 24 * H) == 8 * H
    assert cal.business_time(spring, spring + 24 * H) == 7 * H
    assert cal.business_time(autumn, autumn + 24 * H) == 9 * H
    due = cal.add_business_time(dt.datetime(2026, 3, 28, 22, tzinfo=BERLIN), 5 * H)
    assert due == dt.datetime(2026, 3, 29, 4, tzinfo=BERLIN)  # 5 hours passed, 6 on the clock


def test_make_up_days_take_the_hours_of_the_make_up_weekday() -> None:
    hours = {**LUNCH, "fri": [("09:00", "15:00")]}
    base = BusinessCalendar(hours=hours, extra_workdays=["2026-10-10"])  # a Saturday
    sat = dt.datetime(2026, 10, 10, tzinfo=UTC)
    assert base.business_time(sat, sat + 24 * H) == 8 * H  # Monday's hours, by default
    as_friday = attrs.evolve(base, makeup_weekday="fri")
    assert as_friday.business_time(sat, sat + 24 * H) == 6 * H
    assert as_friday.makeup_weekday == 4
    with pytest.raises(ValidationError) as err:
        BusinessCalendar(hours=hours, makeup_weekday="sun")
    assert _field(err) == "makeup_weekday"


def test_hours_replace_weekdays_start_and_end() -> None:
    for kw in ({"start": "08:00"}, {"end": "17:00"}, {"weekdays": ["mon"]}):
        with pytest.raises(ValidationError) as err:
            BusinessCalendar(hours=LUNCH, **kw)  # type: ignore[arg-type]
        assert (_field(err), _code(err)) == ("hours", "conflict")
    cal = BusinessCalendar(hours=LUNCH, timezone="Asia/Shanghai")
    moved = attrs.evolve(cal, timezone="Europe/Berlin")  # the derived weekdays travel along
    assert moved.hours == cal.hours and moved.weekdays == cal.weekdays and moved.timezone == "Europe/Berlin"
    assert BusinessCalendar(hours={0: [("09:00", "18:00")], "Tuesday": [("09:00", "18:00")]}).weekdays == {0, 1}


@pytest.mark.parametrize(
    ("hours", "field", "code"),
    [
        ({"mon": [("09:00", "12:00"), ("11:00", "13:00")]}, "hours.mon[1]", "overlap"),
        ({"mon": [("13:00", "18:00"), ("09:00", "13:30")]}, "hours.mon[0]", "overlap"),
        ({"fri": [("22:00", "06:00")], "sat": [("05:00", "10:00")]}, "hours.sat[0]", "overlap"),
        ({"sun": [("20:00", "02:00")], "mon": [("01:00", "09:00")]}, "hours.mon[0]", "overlap"),
        ({"mon": [("09:00", "09:00")]}, "hours.mon[0]", "empty"),
        ({"mon": [("00:00", "00:00")]}, "hours.mon[0]", "empty"),
        ({"mon": [("25:00", "26:00")]}, "hours.mon[0]", "invalid"),
        ({"mon": [("24:00", "06:00")]}, "hours.mon[0]", "invalid"),
        ({"mon": [("09:00",)]}, "hours.mon[0]", "invalid"),
        ({"mon": ["09:00-12:00"]}, "hours.mon[0]", "invalid"),
        ({"mon": "09:00-12:00"}, "hours.mon", "invalid"),
        ({"funday": [("09:00", "12:00")]}, "hours.funday", "invalid"),
        ({7: [("09:00", "12:00")]}, "hours.7", "invalid"),
        (
            {
                "mon": [("09:00", "12:00")],
                "tue": [("09:00", "12:00")],
                "wed": [("09:00", "12:00")],
                "thu": [],
                "fri": [],
                "sat": [],
                "sun": [],
                "x": [],
            },
            "hours",
            "too_many",
        ),
        ({"mon": [("09:00", "10:00")], 0: [("11:00", "12:00")]}, "hours.mon", "conflict"),
        ({"mon": [(f"{h:02d}:00", f"{h:02d}:30") for h in range(MAX_WINDOWS + 1)]}, "hours.mon", "too_many"),
        ({}, "hours", "empty"),
        ({"mon": []}, "hours", "empty"),
        ("mon 09:00-18:00", "hours", "invalid"),
    ],
)
def test_bad_windows_name_the_window(hours: object, field: str, code: str) -> None:
    with pytest.raises(ValidationError) as err:
        BusinessCalendar(hours=hours)  # type: ignore[arg-type]
    assert (_field(err), _code(err)) == (field, code)


def test_windows_that_touch_are_fine() -> None:
    cal = BusinessCalendar(hours={"mon": [("09:00", "12:00"), ("12:00", "14:00")], "sun": [("22:00", "09:00")]})
    mon = dt.datetime(2026, 12, 7, tzinfo=UTC)
    assert cal.business_time(mon - 2 * H, mon + 24 * H) == 2 * H + 9 * H + 5 * H
    assert len(BusinessCalendar(hours={"mon": [(f"{h:02d}:00", f"{h:02d}:30") for h in range(MAX_WINDOWS)]}).hours or ()) == 1


# ---------------------------------------------------------------- closures
def test_closures_are_not_working_time() -> None:
    cal = BusinessCalendar(
        timezone="Europe/Berlin",
        closures=[
            ("2026-12-09T12:00", "2026-12-09T15:00"),  # local, in the calendar's zone
            (dt.datetime(2026, 12, 10, 16, tzinfo=UTC), dt.datetime(2026, 12, 11, 8, tzinfo=UTC)),  # 17:00-09:00 there
        ],
    )
    assert cal.closures[0] == (dt.datetime(2026, 12, 9, 11, tzinfo=UTC), dt.datetime(2026, 12, 9, 14, tzinfo=UTC))
    wed = dt.datetime(2026, 12, 9, tzinfo=BERLIN)
    assert not cal.is_working_time(wed.replace(hour=13)) and cal.is_working_time(wed.replace(hour=15))
    assert cal.is_working_day(wed.date())  # a closure closes hours, not the day
    assert cal.next_working_time(wed.replace(hour=12, minute=30)) == wed.replace(hour=15)
    assert cal.business_time(wed, wed + 24 * H) == 6 * H
    assert cal.business_time(wed, wed + 72 * H) == 6 * H + 8 * H + 9 * H  # Thursday ends at 17:00, Friday at 18:00
    assert cal.add_business_time(wed.replace(hour=11), 2 * H) == wed.replace(hour=16)
    assert cal.add_business_time(wed.replace(day=10, hour=16), 2 * H) == wed.replace(day=11, hour=10)


@pytest.mark.parametrize(
    ("closures", "field"),
    [
        ([("2026-12-09T15:00", "2026-12-09T12:00")], "closures[0]"),
        ([("2026-12-09T12:00", "2026-12-09T12:00")], "closures[0]"),
        ([("2026-12-09T12:00", "noon")], "closures[0]"),
        ([("2026-12-09T12:00",)], "closures[0]"),
        ([("2026-12-09T10:00", "2026-12-09T11:00"), "2026-12-10"], "closures[1]"),
        ([(dt.date(2026, 12, 9), dt.date(2026, 12, 10))], "closures[0]"),
        ("2026-12-09", "closures"),
        ([("2026-01-01T00:00Z", "2026-01-01T00:01Z")] * (MAX_CLOSURES + 1), "closures"),
    ],
)
def test_bad_closures_are_named(closures: object, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        BusinessCalendar(closures=closures)  # type: ignore[arg-type]
    assert _field(err) == field


# ---------------------------------------------------------------- configuration as data
ROUND_TRIPS = [
    BusinessCalendar(),
    BusinessCalendar(weekdays=["sun", "mon"], start="08:30", end="17:15:30", timezone="America/New_York"),
    BusinessCalendar(
        hours={**LUNCH, "sat": [("22:00", "06:00")]},
        makeup_weekday="tue",
        timezone="Asia/Shanghai",
        holidays=["2026-10-01"],
        extra_workdays=["2026-10-10"],
        closures=[("2026-12-24T12:00", "2026-12-27T00:00")],
    ),
]


@pytest.mark.parametrize("cal", ROUND_TRIPS)
def test_to_dict_and_back(cal: BusinessCalendar) -> None:
    data = json.loads(json.dumps(cal.to_dict()))
    again = BusinessCalendar.from_dict(data)
    assert again == cal and again.to_dict() == data
    at = dt.datetime(2026, 12, 24, 10, tzinfo=UTC)
    assert again.business_time(at, at + 200 * H) == cal.business_time(at, at + 200 * H)


def test_a_toml_table_is_a_calendar() -> None:
    table = tomllib.loads(
        """
        timezone = "Asia/Shanghai"
        holidays = [2026-10-01]
        closures = [[2026-12-24T12:00:00, "2026-12-26T09:00"]]
        [hours]
        mon = [["09:00", "12:00"], ["13:00", "18:00"]]
        fri = [["22:00", "06:00"]]
        """
    )
    cal = BusinessCalendar.from_dict(table)
    sh = cal.zone
    assert cal.closures == ((dt.datetime(2026, 12, 24, 4, tzinfo=UTC), dt.datetime(2026, 12, 26, 1, tzinfo=UTC)),)
    assert cal.is_working_time(dt.datetime(2026, 12, 19, 2, tzinfo=sh))  # Friday night's shift
    assert not cal.is_working_time(dt.datetime(2026, 12, 26, 2, tzinfo=sh))  # the closure runs to Saturday 09:00


def test_from_dict_names_unknown_keys() -> None:
    with pytest.raises(ValidationError) as err:
        BusinessCalendar.from_dict({"timezone": "UTC", "hour": {"mon": [["09:00", "18:00"]]}})
    assert (_field(err), _code(err)) == ("hour", "unknown")
    with pytest.raises(ValidationError) as err:
        BusinessCalendar.from_dict(["timezone"])  # type: ignore[arg-type]
    assert _field(err) == "calendar"
    with pytest.raises(ValidationError) as err:
        BusinessCalendar.from_dict({"hours": {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}})
    assert _field(err) == "hours.mon[1]"


# ---------------------------------------------------------------- China
def test_china_2026_make_up_days_and_a_year_of_working_time() -> None:
    package = pytest.importorskip("holidays")
    cn = BusinessCalendar.china(2026, hours=LUNCH)
    assert cn.timezone == "Asia/Shanghai"
    assert cn.is_working_day(dt.date(2026, 10, 10)) and dt.date(2026, 10, 10).weekday() == 5  # a Saturday, worked
    assert not cn.is_working_day(dt.date(2026, 10, 1))  # National Day
    official = package.country_holidays("CN", years=2026)
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=k) for k in range(365)]
    expected = [d for d in days if (d.weekday() < 5 and d not in official) or d in official.weekend_workdays]
    assert [d for d in days if cn.is_working_day(d)] == expected
    new_year = dt.datetime(2026, 1, 1, tzinfo=cn.zone)
    year = cn.business_time(new_year, new_year.replace(year=2027))
    assert year == len(expected) * 8 * H  # 09:00-12:00 and 13:00-18:00 on each of them
    assert cn.add_business_time(new_year, year) == dt.datetime(2026, 12, 31, 18, tzinfo=cn.zone)


# ---------------------------------------------------------------- against a naive oracle
CALENDARS = [
    BusinessCalendar(timezone="Europe/Berlin", hours={**LUNCH, "sat": [("22:00", "06:00")]}, holidays=["2026-10-26"]),
    BusinessCalendar(
        timezone="America/New_York",
        hours={"sun": [("20:00", "02:30")], "wed": [("00:00", "24:00")], "thu": [("01:30", "03:00"), ("08:00", "17:00")]},
        extra_workdays=["2026-03-07", "2026-10-31"],
        holidays=["2026-11-26"],
        makeup_weekday="thu",
        closures=[("2026-11-04T12:00", "2026-11-05T10:00"), ("2027-01-01T00:00", "2027-01-08T00:00")],
    ),
    BusinessCalendar(
        timezone="Asia/Shanghai",
        hours=LUNCH,
        holidays=["2026-10-01", "2026-10-02", "2026-10-05", "2026-10-06", "2026-10-07"],
        extra_workdays=["2026-09-27", "2026-10-10"],
        closures=[("2026-12-31T15:00", "2027-01-04T10:00")],
    ),
    BusinessCalendar(timezone="Europe/Berlin", weekdays=range(7), start="00:00", end="23:59"),
]


def _oracle(cal: BusinessCalendar, a: dt.datetime, b: dt.datetime) -> dt.timedelta:
    """Working time in [a, b], day by day: each day's windows in local time, less the closures."""
    zone = cal.zone
    days = dict(cal.hours or [])
    pieces = []
    day = a.astimezone(zone).date() - dt.timedelta(days=1)
    while day <= b.astimezone(zone).date():
        name = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[day.weekday()]
        if cal.hours is None:
            windows: list[tuple[str, str]] = [(str(cal.start), str(cal.end))] if day.weekday() in cal.weekdays else []
        else:
            windows = list(days.get(name, ()))
        if day in cal.extra_workdays and not windows:
            make_up = cal.makeup_weekday if cal.makeup_weekday is not None else min(cal.weekdays)
            windows = list(days[("mon", "tue", "wed", "thu", "fri", "sat", "sun")[make_up]])
        if day in cal.holidays:
            windows = []
        for s, e in windows:
            lo = dt.datetime.combine(day, dt.time.fromisoformat(s), zone)
            end_day = day + dt.timedelta(days=1) if e == "24:00" or e <= s else day
            hi = dt.datetime.combine(end_day, dt.time(0) if e == "24:00" else dt.time.fromisoformat(e), zone)
            pieces.append((max(lo.astimezone(UTC), a), min(hi.astimezone(UTC), b)))
        day += dt.timedelta(days=1)
    total, reach = dt.timedelta(0), a
    for lo, hi in sorted(pieces):  # a union: windows of neighbouring days may meet
        lo = max(lo, reach)
        for c_lo, c_hi in cal.closures:  # closures are few here: cut each piece by each
            if c_lo <= lo < c_hi:
                lo = c_hi
        cut = [c_lo for c_lo, c_hi in cal.closures if lo < c_lo < hi]
        while hi > lo:
            stop = min([hi, *cut])
            total += stop - lo
            reach = max(reach, stop)
            after = [c_hi for c_lo, c_hi in cal.closures if c_lo == stop]
            lo = max([stop, *after]) if stop < hi else hi
            cut = [c for c in cut if c > lo]
    return total


calendars = st.sampled_from(CALENDARS)
instants = st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2029, 1, 10)).map(
    lambda d: d.replace(tzinfo=UTC)
)
# around the clock changes of 2026 in Europe and North America, to the minute
CHANGES = [
    dt.datetime(2026, 3, 8, 7, tzinfo=UTC),  # New York, spring
    dt.datetime(2026, 3, 29, 1, tzinfo=UTC),  # Berlin, spring
    dt.datetime(2026, 10, 25, 1, tzinfo=UTC),  # Berlin, autumn
    dt.datetime(2026, 11, 1, 6, tzinfo=UTC),  # New York, autumn
    dt.datetime(2029, 1, 1, tzinfo=UTC),  # a boundary of the compiled spans
]
minutes = st.integers(-3 * 24 * 60, 3 * 24 * 60).map(lambda m: dt.timedelta(minutes=m))
near_changes = st.builds(lambda c, m: c + m, st.sampled_from(CHANGES), minutes)
moments = st.one_of(instants, near_changes)


@settings(max_examples=150, deadline=None)
@given(calendars, moments, moments)
def test_business_time_equals_the_naive_oracle(cal: BusinessCalendar, a: dt.datetime, b: dt.datetime) -> None:
    a, b = sorted((a, b))
    assert cal.business_time(a, b) == _oracle(cal, a, b)


@settings(deadline=None)
@given(calendars, moments, moments, moments)
def test_additive_and_monotonic(cal: BusinessCalendar, a: dt.datetime, b: dt.datetime, c: dt.datetime) -> None:
    a, b, c = sorted((a, b, c))
    ab, bc, ac = cal.business_time(a, b), cal.business_time(b, c), cal.business_time(a, c)
    assert ab + bc == ac and dt.timedelta(0) <= ab <= b - a and cal.business_time(c, a) == -ac


@settings(deadline=None)
@given(calendars, moments, st.integers(0, 400 * 60).map(lambda m: dt.timedelta(minutes=m, microseconds=m % 7)))
def test_add_business_time_is_the_inverse(cal: BusinessCalendar, a: dt.datetime, amount: dt.timedelta) -> None:
    due = cal.add_business_time(a, amount)
    assert due >= a and cal.business_time(a, due) == amount
    if amount:
        assert cal.business_time(a, due - dt.timedelta(microseconds=1)) < amount
        assert cal.is_working_time(due - dt.timedelta(microseconds=1))
        before = cal.next_working_time(a)
        assert before <= due and cal.business_time(a, before) == dt.timedelta(0)


@settings(deadline=None)
@given(
    calendars,
    st.lists(st.tuples(moments, moments, st.integers(0, 200 * 60)), min_size=0, max_size=30),
    st.booleans(),
)
def test_bulk_equals_scalar(cal: BusinessCalendar, rows: list[tuple[dt.datetime, dt.datetime, int]], as_numpy: bool) -> None:
    starts = [r[0] for r in rows]
    ends = [r[1] for r in rows]
    amounts = [dt.timedelta(minutes=r[2]) for r in rows]
    if as_numpy:
        s_in: object = np.array([s.replace(tzinfo=None) for s in starts], dtype="datetime64[us]")
        e_in: object = np.array([e.replace(tzinfo=None) for e in ends], dtype="datetime64[us]")
        a_in: object = np.array(amounts, dtype="timedelta64[us]")
    else:
        s_in, e_in, a_in = starts, [e.astimezone(cal.zone) for e in ends], amounts
    due = cal.due_times(s_in, a_in)
    spent = cal.business_times(s_in, e_in)
    assert due.dtype == np.dtype("datetime64[us]") and spent.dtype == np.dtype("timedelta64[us]")
    assert [d.astype(dt.datetime).replace(tzinfo=UTC) for d in due] == [
        cal.add_business_time(s, m) for s, m in zip(starts, amounts, strict=True)
    ]
    assert [x.astype(dt.timedelta) for x in spent] == [cal.business_time(s, e) for s, e in zip(starts, ends, strict=True)]
    if rows:
        one = cal.due_times(s_in, amounts[0])
        assert [d.astype(dt.datetime).replace(tzinfo=UTC) for d in one] == [cal.add_business_time(s, amounts[0]) for s in starts]


def test_bulk_bad_input_is_named() -> None:
    cal = BusinessCalendar()
    at = dt.datetime(2026, 12, 7, tzinfo=UTC)
    for starts, amount, field in [
        ([at, dt.datetime(2026, 12, 7)], H, "starts[1]"),
        ("2026-12-07", H, "starts"),
        (np.array(["2026-12-07", "NaT"], "datetime64[us]"), H, "starts[1]"),
        ([at], -H, "amount"),
        ([at, at], [H], "amount"),
        ([at, at], np.array([1, -1], "timedelta64[h]"), "amount[1]"),
        ([at], dt.timedelta(days=4000), "amount"),
    ]:
        with pytest.raises(ValidationError) as err:
            cal.due_times(starts, amount)
        assert _field(err) == field
    with pytest.raises(ValidationError) as err:
        cal.business_times([at, at], [at, at + dt.timedelta(days=4000)])
    assert _field(err) == "ends[1]"
    with pytest.raises(ValidationError) as err:
        cal.business_times([at], [at, at])
    assert _field(err) == "ends"
    assert cal.due_times([], H).shape == (0,) and cal.business_times([], []).shape == (0,)


def test_far_and_wide_instants() -> None:
    cal = BusinessCalendar()
    for year in (1900, 2026, 2500, 9000):  # each span is compiled when asked for; the cache moves along
        at = dt.datetime(year, 6, 1, tzinfo=UTC)
        assert cal.business_time(at, at + 7 * 24 * H) == 5 * 9 * H
    far = cal.due_times([dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2200, 1, 1, tzinfo=UTC)], H)
    assert [str(x) for x in far] == ["2026-01-01T10:00:00.000000", "2200-01-01T10:00:00.000000"]
    with pytest.raises(ValidationError) as err:
        cal.due_times([dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2900, 1, 1, tzinfo=UTC)], H)
    assert (_field(err), _code(err)) == ("starts", "range")
    with pytest.raises(ValidationError) as err:
        cal.is_working_time(dt.datetime(9999, 12, 31, tzinfo=UTC))
    assert (_field(err), _code(err)) == ("at", "range")


def test_a_long_run_of_days_off_is_skipped() -> None:
    cal = BusinessCalendar(holidays=[dt.date(2026, 1, 1) + dt.timedelta(days=k) for k in range(20 * 365)])
    at = dt.datetime(2026, 1, 1, tzinfo=UTC)
    assert cal.next_working_time(at).date() == dt.date(2046, 1, 1) + dt.timedelta(days=-5)
    with pytest.raises(ValidationError) as err:
        cal.add_business_time(at, H)
    assert (_field(err), _code(err)) == ("amount", "range")
