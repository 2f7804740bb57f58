"""SLA policies: targets matched as data, clocks from the status history with pauses, replay, bad input."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycrm.automation import BusinessCalendar
from pycrm.domain import Customer, Ticket
from pycrm.errors import ValidationError
from pycrm.service import SlaPolicy, SlaTarget, parse_duration, ticket_segments

UTC = dt.UTC
H = dt.timedelta(hours=1)
CAL = BusinessCalendar()  # Monday to Friday, 09:00-18:00 UTC


def at(day: int, hour: int, minute: int = 0, month: int = 12) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=UTC)


def policy(**kw: object) -> SlaPolicy:
    targets = [
        SlaTarget("urgent", priority="urgent", first_response="30m", resolution="4h"),
        SlaTarget("normal", first_response="2h", resolution="8h"),
    ]
    return SlaPolicy(targets, calendar=CAL, **kw)  # type: ignore[arg-type]


def ticket(created: dt.datetime, *moves: tuple[str, dt.datetime], **kw: object) -> Ticket:
    t = Ticket("c1", "help", created_at=created, id="t1", **kw)  # type: ignore[arg-type]
    for status, when in moves:
        t.move_to(status, at=when)
    return t


def test_friday_17_ticket_is_due_monday_16_not_after_the_weekend_counted() -> None:
    t = ticket(at(4, 17))  # Friday 4 December 2026, 17:00
    s = policy().status(t, as_of=at(4, 17))
    assert s.target == "normal"
    assert s.resolution is not None and s.first_response is not None
    assert s.resolution.due_at == at(7, 16)  # 1 h on Friday + 7 h on Monday
    assert s.first_response.due_at == at(7, 10)  # 1 h on Friday + 1 h on Monday
    over_weekend = policy().status(t, as_of=at(6, 23))  # Sunday night: only Friday's hour has run
    assert over_weekend.resolution is not None
    assert over_weekend.resolution.elapsed == H
    assert over_weekend.resolution.state == "running"


def test_time_pending_on_the_customer_does_not_count() -> None:
    # Monday 09:00 opened at 10:00, pending from Monday 12:00 to Thursday 08:00 (68 hours), resolved Thursday 10:00
    t = ticket(at(7, 9), ("open", at(7, 10)), ("pending", at(7, 12)), ("open", at(10, 8)), ("resolved", at(10, 10)))
    s = policy().status(t, as_of=at(11, 12))
    assert s.resolution is not None and s.first_response is not None
    assert s.resolution.elapsed == 3 * H + H  # Monday 09-12, Thursday 09-10
    assert s.resolution.state == "met"
    assert s.resolution.stopped_at == at(10, 10)
    assert s.paused == 9 * H * 2 + 6 * H  # Monday 12-18, Tuesday, Wednesday (business time)
    assert s.first_response.state == "met" and s.first_response.elapsed == H
    # the same history without the pause is a breach
    no_pause = policy(pause_statuses=[]).status(t, as_of=at(11, 12))
    assert no_pause.resolution is not None
    assert no_pause.resolution.state == "breached"
    assert no_pause.resolution.due_at == at(7, 17)
    assert no_pause.breached


def test_a_paused_clock_has_no_due_time_and_resumes_where_it_stopped() -> None:
    t = ticket(at(7, 9), ("open", at(7, 9, 30)), ("pending", at(7, 13)))
    paused = policy().status(t, as_of=at(9, 12))
    assert paused.resolution is not None
    assert paused.resolution.state == "paused" and paused.resolution.due_at is None
    assert paused.resolution.remaining == 4 * H
    t.move_to("open", at=at(9, 12))
    resumed = policy().status(t, as_of=at(9, 12))
    assert resumed.resolution is not None
    assert resumed.resolution.due_at == at(9, 16)
    assert resumed.resolution.state == "running"


def test_at_risk_breach_and_the_instants_they_began() -> None:
    t = ticket(at(7, 9), ("open", at(7, 9, 10)))
    p = policy(at_risk="0.75")
    s = p.status(t, as_of=at(7, 15, 30))
    assert s.resolution is not None
    assert s.resolution.state == "at_risk" and s.resolution.at_risk_at == at(7, 15)
    late = p.status(t, as_of=at(7, 17, 1))
    assert late.resolution is not None
    assert late.resolution.state == "breached" and late.resolution.due_at == at(7, 17)
    assert late.resolution.remaining == -dt.timedelta(minutes=1)
    # reaching the target exactly is not late: elapsed == target
    exact = p.status(t, as_of=at(7, 17))
    assert exact.resolution is not None and exact.resolution.state == "at_risk"


def test_reopening_runs_the_resolution_clock_again() -> None:
    t = ticket(at(7, 9), ("open", at(7, 10)), ("resolved", at(7, 12)), ("open", at(8, 9)))
    s = policy().status(t, as_of=at(8, 11))
    assert s.resolution is not None
    assert s.resolution.elapsed == 3 * H + 2 * H
    assert s.resolution.state == "running" and s.resolution.stopped_at is None
    before = policy().status(t, as_of=at(7, 15))  # replayed at a time when it was resolved
    assert before.resolution is not None
    assert before.resolution.state == "met" and before.resolution.stopped_at == at(7, 12)


def test_a_changed_policy_replays_on_old_tickets() -> None:
    t = ticket(at(7, 9), ("open", at(7, 10)), ("resolved", at(7, 16)))
    assert policy().status(t, as_of=at(20, 0)).breached is False  # 7 h of 8
    strict = SlaPolicy([SlaTarget("all", resolution="6h")], calendar=CAL)
    s = strict.status(t, as_of=at(20, 0))
    assert s.breached and s.first_response is None
    assert s.resolution is not None and s.resolution.due_at == at(7, 15)


def test_chinese_make_up_working_day_counts() -> None:
    china = BusinessCalendar.from_holidays("CN", 2026, timezone="Asia/Shanghai")
    p = SlaPolicy([SlaTarget("all", resolution="2h")], calendar=china)
    shanghai = dt.timezone(dt.timedelta(hours=8))
    created = dt.datetime(2026, 10, 9, 17, tzinfo=shanghai)  # the Friday before the make-up Saturday 10 October
    t = Ticket("c1", "x", created_at=created, id="t")
    s = p.status(t, as_of=created)
    assert s.resolution is not None
    assert s.resolution.due_at == dt.datetime(2026, 10, 10, 10, tzinfo=shanghai)
    national_day = Ticket("c1", "x", created_at=dt.datetime(2026, 10, 1, 10, tzinfo=shanghai), id="u")
    s = p.status(national_day, as_of=national_day.created_at)
    assert s.resolution is not None and s.resolution.due_at is not None
    assert s.resolution.due_at == dt.datetime(2026, 10, 8, 11, tzinfo=shanghai)  # 1-7 October off, the 8th works


def test_targets_match_in_order_on_ticket_and_customer() -> None:
    p = SlaPolicy(
        [
            SlaTarget("gold", customer_tags=["gold"], resolution="2h"),
            SlaTarget("cn-vip", customer_category="VIP", customer_country="CN", resolution="3h"),
            SlaTarget("urgent", priority="urgent", resolution="4h"),
            SlaTarget("default", resolution="8h"),
        ],
        calendar=CAL,
    )
    t = ticket(at(7, 9), priority="urgent")
    gold = Customer("Gold", tags={"gold"})
    vip = Customer("V", category="VIP/Asia", country="CN")
    assert p.match(t).name == "urgent"
    assert p.match(t, gold).name == "gold"
    assert p.match(t, vip).name == "cn-vip"
    assert p.match(t, Customer("Other", category="VIPX", country="CN")).name == "urgent"  # VIPX is not under VIP
    assert p.match(ticket(at(7, 9))).name == "default"
    only_urgent = SlaPolicy([SlaTarget("urgent", priority="urgent", resolution="4h")], calendar=CAL)
    with pytest.raises(ValidationError) as e:
        only_urgent.status(ticket(at(7, 9)), as_of=at(7, 9))
    assert e.value.errors[0].code == "no_match"


def test_named_calendars_per_team_or_region() -> None:
    night = BusinessCalendar(start="20:00", end="23:00")
    p = SlaPolicy(
        [SlaTarget("eu", customer_country="DE", resolution="2h", calendar="night"), SlaTarget("all", resolution="2h")],
        calendar=CAL,
        calendars={"night": night},
    )
    t = ticket(at(7, 9))
    s = p.status(t, customer=Customer("D", country="DE"), as_of=at(7, 9))
    assert s.calendar == "night" and s.resolution is not None and s.resolution.due_at == at(7, 22)
    s = p.status(t, customer=Customer("F", country="FR"), as_of=at(7, 9))
    assert s.calendar is None and s.resolution is not None and s.resolution.due_at == at(7, 11)


def test_from_dict_round_trips_and_names_bad_keys() -> None:
    data = {
        "targets": [
            {"name": "urgent", "priority": ["urgent"], "first_response": "30m", "resolution": "4h"},
            {"name": "default", "resolution": "1h30m"},
        ],
        "pause_statuses": ["pending"],
        "at_risk": "0.9",
    }
    p = SlaPolicy.from_dict(data)
    assert p.targets[1].resolution == dt.timedelta(minutes=90)
    assert SlaPolicy.from_dict(p.to_dict()) == p
    cn = SlaPolicy.from_dict({**data, "calendar": {"country": "CN", "years": [2026], "timezone": "Asia/Shanghai"}})
    assert cn.calendar.is_working_day(dt.date(2026, 10, 10)) and not cn.calendar.is_working_day(dt.date(2026, 10, 1))
    assert SlaPolicy.from_dict(cn.to_dict()) == cn
    with pytest.raises(ValidationError) as e:
        SlaPolicy.from_dict({**data, "calendar": {"country": "CN", "years": [2026], "tz": "UTC"}})
    assert e.value.errors[0].field == "calendar.tz"
    bad = {"targets": [{"name": "x", "resolution": "4h", "prio": ["urgent"]}]}
    with pytest.raises(ValidationError) as e:
        SlaPolicy.from_dict(bad)
    assert e.value.errors[0].field == "targets[0].prio"
    with pytest.raises(ValidationError) as e:
        SlaPolicy.from_dict({"targets": [{"name": "x", "resolution": "soon"}]})
    assert e.value.errors[0].field == "targets[0].resolution"


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: SlaTarget("x"), "resolution"),
        (lambda: SlaTarget("x", resolution="0m"), "resolution"),
        (lambda: SlaTarget("x", resolution=-5), "resolution"),
        (lambda: SlaTarget("x", resolution="4h", priority="critical"), "priority[0]"),
        (lambda: SlaTarget("x", resolution="4h", channel="fax"), "channel[0]"),
        (lambda: SlaTarget("", resolution="4h"), "name"),
        (lambda: SlaPolicy([]), "targets"),
        (lambda: SlaPolicy([SlaTarget("a", resolution="1h"), SlaTarget("a", resolution="2h")]), "targets[1].name"),
        (lambda: SlaPolicy([SlaTarget("a", resolution="1h", calendar="emea")]), "targets[0].calendar"),
        (lambda: SlaPolicy([SlaTarget("a", resolution="1h")], at_risk=1.5), "at_risk"),
        (lambda: SlaPolicy([SlaTarget("a", resolution="1h")], at_risk=True), "at_risk"),
        (lambda: SlaPolicy([SlaTarget("a", resolution="1h")], pause_statuses=["waiting"]), "pause_statuses[0]"),
        (lambda: SlaPolicy([SlaTarget("a", resolution="1h")], pause_statuses=["resolved"]), "pause_statuses"),
        (lambda: SlaPolicy([SlaTarget("a", resolution="1h")], calendar={"timezone": "Mars/Base"}), "calendar.timezone"),
        (lambda: SlaPolicy([SlaTarget("a", resolution="1h")], calendars={"x": {"start": "25:00"}}), "calendars.x.start"),
        (lambda: parse_duration("4 hours", "resolution"), "resolution"),
    ],
)
def test_bad_policies_name_the_field(make: object, field: str) -> None:
    with pytest.raises(ValidationError) as e:
        make()  # type: ignore[operator]
    assert e.value.errors[0].field == field


def test_a_history_that_goes_back_in_time_is_refused() -> None:
    t = ticket(at(7, 9), ("open", at(7, 10)), ("pending", at(7, 11)))
    object.__setattr__(t.status_history[1], "at", at(7, 8))  # as a damaged import could hold it
    with pytest.raises(ValidationError) as e:
        policy().status(t, as_of=at(8, 9))
    assert e.value.errors[0].field == "status_history[1].at"
    with pytest.raises(ValidationError) as e:
        policy().status(Ticket("c1", "unsaved"))
    assert e.value.errors[0].field == "created_at"
    with pytest.raises(ValidationError) as e:
        policy().status(ticket(at(7, 9)), as_of=dt.datetime(2026, 12, 7))
    assert e.value.errors[0].field == "as_of"


def test_an_imported_ticket_without_history_uses_its_timestamps() -> None:
    t = Ticket(
        "c1",
        "old",
        created_at=at(7, 9),
        id="t",
        status="closed",
        first_response_at=at(7, 10),
        resolved_at=at(7, 12),
        closed_at=at(8, 9),
    )
    assert [s[2] for s in ticket_segments(t, at(9, 9))] == ["new", "open", "resolved", "closed"]
    s = policy().status(t, as_of=at(9, 9))
    assert s.resolution is not None and s.resolution.state == "met" and s.resolution.elapsed == 3 * H


MOVES = {"new": ["open"], "open": ["pending", "resolved"], "pending": ["open"], "resolved": ["open", "closed"], "closed": []}


@st.composite
def histories(draw: st.DrawFn) -> Ticket:
    created = dt.datetime(2026, 3, 2, tzinfo=UTC) + dt.timedelta(minutes=draw(st.integers(0, 60 * 24 * 14)))
    t = Ticket("c1", "x", created_at=created, id="t")
    when = created
    for _ in range(draw(st.integers(0, 8))):
        options = MOVES[t.status.value]
        if not options:
            break
        when += dt.timedelta(minutes=draw(st.integers(0, 60 * 24 * 3)))
        t.move_to(draw(st.sampled_from(options)), at=when)
    return t


@settings(max_examples=150, deadline=None)
@given(histories(), st.integers(0, 60 * 24 * 30), st.integers(0, 60 * 24 * 5))
def test_clock_properties(t: Ticket, offset: int, later: int) -> None:
    assert t.created_at is not None
    p = SlaPolicy([SlaTarget("all", first_response="3h", resolution="10h")], calendar=CAL)
    as_of = t.created_at + dt.timedelta(minutes=offset)
    s = p.status(t, as_of=as_of)
    assert s.resolution is not None and s.first_response is not None
    segments = ticket_segments(t, as_of)
    # the segments tile [created, as_of] and the clock, the pauses and the resolved time add up to all of it
    assert segments[0][0] == t.created_at and segments[-1][1] == max(as_of, t.created_at)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(segments))
    done = sum((CAL.business_time(a, b) for a, b, st_ in segments if st_ in ("resolved", "closed")), dt.timedelta(0))
    assert s.resolution.elapsed + s.paused + done == CAL.business_time(t.created_at, max(as_of, t.created_at))
    assert s.first_response.elapsed <= s.resolution.elapsed
    # monotone in as_of
    s2 = p.status(t, as_of=as_of + dt.timedelta(minutes=later))
    assert s2.resolution is not None and s2.resolution.elapsed >= s.resolution.elapsed
    # a clock past its target has a due time at which exactly the target had run
    if s.resolution.state == "breached":
        assert s.resolution.due_at is not None
        assert p.status(t, as_of=s.resolution.due_at).resolution.elapsed == dt.timedelta(hours=10)  # type: ignore[union-attr]
    if s.resolution.state in ("running", "at_risk"):
        assert s.resolution.due_at is not None
        assert CAL.business_time(as_of, s.resolution.due_at) == s.resolution.remaining


def test_a_status_change_before_the_last_one_is_refused_on_entry() -> None:
    t = ticket(at(7, 9), ("open", at(7, 10)))
    with pytest.raises(ValidationError) as e:
        t.move_to("pending", at=at(7, 9, 59))
    assert e.value.errors[0].field == "at" and e.value.errors[0].code == "order"
    assert t.status.value == "open" and len(t.status_history) == 1


def test_targets_on_the_ticket_category_tree_and_channel() -> None:
    p = SlaPolicy(
        [
            SlaTarget("printers-by-phone", category="Hardware/Printer", channel=["phone"], resolution="1h"),
            SlaTarget("hardware", category="Hardware", resolution="2h"),
            SlaTarget("default", resolution="8h"),
        ],
        calendar=CAL,
    )
    assert p.match(ticket(at(7, 9), category="Hardware/Printer/Toner", channel="phone")).name == "printers-by-phone"
    assert p.match(ticket(at(7, 9), category="Hardware/Printer", channel="web")).name == "hardware"
    assert p.match(ticket(at(7, 9), category="Hardware", channel="phone")).name == "hardware"
    assert p.match(ticket(at(7, 9), category="Hardwareless")).name == "default"
    assert p.match(ticket(at(7, 9))).name == "default"


# ---------------------------------------------------------------- attacks: junk policy files and arguments


def _deep(n: int = 50_000) -> list[object]:
    out: list[object] = []
    cur = out
    for _ in range(n):
        nxt: list[object] = []
        cur.append(nxt)
        cur = nxt
    return out


@pytest.mark.parametrize("bad", [None, 7, 1.5, b"policy.toml", ["policy.toml"], {"targets": []}, object()])
def test_loading_a_policy_from_something_that_is_not_a_path_names_the_path(bad: object) -> None:
    with pytest.raises(ValidationError) as e:
        SlaPolicy.load(bad)  # type: ignore[arg-type]
    assert e.value.fields == ["path"] and e.value.errors[0].code == "type"


def test_a_policy_file_that_cannot_be_opened_or_parsed_names_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "policy.toml"
    folder.mkdir()  # a directory under a policy's name
    long_int = tmp_path / "long.json"
    long_int.write_text('{"targets": [{"name": "a", "resolution": 1' + "0" * 5000 + "}]}")
    long_toml = tmp_path / "long.toml"
    long_toml.write_text('[[targets]]\nname = "a"\nresolution = 1' + "0" * 5000 + "\n")
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 100_000 + "]" * 100_000)
    for path, code in (
        (folder, "bad_config"),
        (long_int, "bad_config"),  # a number too long to convert: Python's ValueError, not a traceback
        (long_toml, "bad_config"),
        (deep, "bad_config"),
        (str(tmp_path / "nul\x00.toml"), "bad_config"),
    ):
        with pytest.raises(ValidationError) as e:
            SlaPolicy.load(path)
        assert e.value.errors[0].field == str(Path(path)) or "nul" in e.value.errors[0].field
        assert e.value.errors[0].code == code


def test_a_huge_policy_file_is_refused_before_it_is_read_whole(tmp_path: Path) -> None:
    from pycrm._documents import MAX_DOCUMENT_BYTES

    huge = tmp_path / "huge.toml"
    with huge.open("w") as f:  # valid TOML: a comment longer than the limit, then a policy
        f.write("# " + "x" * MAX_DOCUMENT_BYTES + '\n[[targets]]\nname = "a"\nresolution = "1h"\n')
    with pytest.raises(ValidationError) as e:
        SlaPolicy.load(huge)
    assert e.value.errors[0].field == str(huge) and e.value.errors[0].code == "too_large"
    small = tmp_path / "small.toml"
    small.write_text('[[targets]]\nname = "a"\nresolution = "1h"\n')
    assert SlaPolicy.load(small).targets[0].resolution == H


@pytest.mark.parametrize("arg", ["period", "by"])
def test_deeply_nested_report_arguments_are_a_validation_error(arg: str) -> None:
    from pycrm.service import sla_compliance

    with pytest.raises(ValidationError) as e:
        sla_compliance([], policy(), **{arg: _deep()})  # type: ignore[arg-type]
    assert e.value.fields == [arg]


def test_the_clocks_walk_at_most_ten_thousand_status_changes() -> None:
    from pycrm.domain import StatusChange
    from pycrm.service._sla import MAX_HISTORY

    t = ticket(at(7, 9))
    cycle = ("open", "pending")
    moves = [StatusChange("new", "open", at(7, 9) + dt.timedelta(minutes=1))]
    for i in range(1, MAX_HISTORY):  # open <-> pending, a minute apart
        moves.append(StatusChange(cycle[(i - 1) % 2], cycle[i % 2], at(7, 9) + dt.timedelta(minutes=i + 1)))
    object.__setattr__(t, "status_history", moves)
    status = policy().status(t, as_of=at(31, 9))  # 10,000 changes: computed
    assert status.resolution is not None and status.resolution.elapsed > dt.timedelta(0)
    object.__setattr__(t, "status_history", [*moves, StatusChange("pending", "open", at(30, 9))])
    with pytest.raises(ValidationError) as e:  # one more: refused, not walked
        policy().status(t, as_of=at(31, 9))
    assert e.value.fields == ["status_history"] and e.value.errors[0].code == "too_many"
    assert "'t1'" in e.value.errors[0].message  # which ticket: one of a million is found by its id


def test_a_ticket_keeps_at_most_ten_thousand_status_changes_from_entry_on() -> None:
    from pycrm.domain import StatusChange
    from pycrm.domain._entities import MAX_HISTORY

    cycle = ("open", "pending")
    moves = [StatusChange(cycle[i % 2], cycle[(i + 1) % 2], at(7, 9) + dt.timedelta(seconds=i)) for i in range(MAX_HISTORY)]
    with pytest.raises(ValidationError) as e:  # one store row can no longer stop every SLA report and rule
        Ticket("c1", "x", status="open", status_history=[*moves, moves[-1]])
    assert e.value.errors[0].field == "status_history" and e.value.errors[0].code == "too_many"
    t = Ticket("c1", "x", status="open", status_history=moves)
    with pytest.raises(ValidationError) as e:
        t.move_to("pending", at=at(8, 9))
    assert e.value.errors[0].code == "too_many" and len(t.status_history) == MAX_HISTORY
