"""``s.analytics.sla`` on every adapter equals ``pycrm.service.sla_compliance`` over the stored tickets.

On the SQL adapters the report is computed inside the database (``storage/sql/_sla.py``): random tickets
with random status histories (pauses, resolutions, reopenings, changes at the same instant, changes after
``as_of``), imported tickets without a history, random policies of priority rules (with and without a
default rule, a second calendar, other pause statuses) and random ``as_of``, periods and groups. The pure
function over the same stored tickets is the oracle.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pycrm
from pycrm import Customer, Ticket, User
from pycrm.automation import BusinessCalendar
from pycrm.service import SlaPolicy, SlaTarget, sla_compliance

UTC = dt.UTC
T0 = dt.datetime(2026, 9, 28, 6, 30, tzinfo=UTC)  # a Monday; China's National Day week follows
DB = settings(
    max_examples=max(10, settings.default.max_examples // 3),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    deadline=None,
)
PRIORITIES = ["low", "normal", "high", "urgent"]
CALENDARS = {
    "utc": BusinessCalendar(),
    "shanghai": BusinessCalendar(
        timezone="Asia/Shanghai",
        holidays=["2026-10-01", "2026-10-02", "2026-10-05"],
        extra_workdays=["2026-10-10"],
    ),
    "split": BusinessCalendar(
        timezone="Europe/Berlin",
        hours={"mon": [("08:00", "12:00"), ("13:00", "17:30")], "tue": [("22:00", "02:00")], "sat": [("10:00", "14:00")]},
    ),
}

moves = st.lists(
    st.tuples(st.sampled_from(["open", "pending", "pending", "resolved", "closed", "open"]), st.integers(0, 3 * 24 * 60)),
    max_size=6,
)
ticket_specs = st.lists(
    st.fixed_dictionaries(
        {
            "priority": st.sampled_from(PRIORITIES),
            "created": st.integers(0, 40 * 24 * 60),
            "moves": moves,
            "agent": st.sampled_from([None, "u1", "u2", "u3"]),
            "imported": st.sampled_from([None, None, None, "responded", "resolved", "closed", "status"]),
            "same_instant": st.booleans(),
        }
    ),
    max_size=14,
)
durations = st.sampled_from([None, "15m", "1h", "2h30m", "8h", "1d", "3d"])
rules = st.lists(
    st.tuples(st.lists(st.sampled_from(PRIORITIES), max_size=2), durations, durations, st.sampled_from([None, "shanghai"])),
    min_size=1,
    max_size=4,
)
policies = st.fixed_dictionaries(
    {
        "rules": rules,
        "default": st.booleans(),
        "calendar": st.sampled_from(sorted(CALENDARS)),
        "pause": st.sampled_from([["pending"], [], ["pending", "new"], ["open"]]),
    }
)
groupings = st.sampled_from([(), "priority", "target", ("agent", "target"), "team", ("priority", "agent", "team")])


def _policy(spec: dict[str, Any]) -> SlaPolicy:
    targets = []
    for i, (prios, first, resolution, cal) in enumerate(spec["rules"]):
        if first is None and resolution is None:
            resolution = "4h"
        targets.append(SlaTarget(f"r{i}", priority=prios or None, first_response=first, resolution=resolution, calendar=cal))
    if spec["default"]:
        targets.append(SlaTarget("default", first_response="1h", resolution="1d"))
    return SlaPolicy(
        targets,
        calendar=CALENDARS[spec["calendar"]],
        calendars={"shanghai": CALENDARS["shanghai"]},
        pause_statuses=spec["pause"],
    )


def _ticket(customer: str, spec: dict[str, Any]) -> Ticket:
    at = T0 + dt.timedelta(minutes=spec["created"], microseconds=spec["created"] % 7)
    t = Ticket(customer, "help", priority=spec["priority"], created_at=at, assignee_id=spec["agent"])
    imported = spec["imported"]
    if imported is not None:  # no history: the clocks come from the stored times (ticket_segments)
        if imported == "status":
            t.status = pycrm.TicketStatus.PENDING
        else:
            t.first_response_at = at + dt.timedelta(hours=2)
            if imported in ("resolved", "closed"):
                t.status = pycrm.TicketStatus(imported)
                setattr(t, f"{imported}_at", at + dt.timedelta(hours=30, microseconds=5))
        return t
    for status, minutes in spec["moves"]:
        at += dt.timedelta(minutes=0 if spec["same_instant"] and minutes % 3 == 0 else minutes, microseconds=1)
        try:
            t.move_to(status, at=at)
        except pycrm.TransitionError:
            continue
    return t


def _store(crm: pycrm.CRM, specs: list[dict[str, Any]]) -> None:
    with crm.session() as s:
        c = s.customers.add(Customer("C"))
        s.users.add(User("One", "one@example.com", id="u1", team_id="east", roles=["agent"]))
        s.users.add(User("Two", "two@example.com", id="u2", team_id="west", roles=["agent"]))
        s.users.add(User("Three", "three@example.com", id="u3", roles=["agent"]))
        s.tickets.add_many([_ticket(c.id, spec) for spec in specs])


def _empty(crm: pycrm.CRM) -> None:
    with crm.session() as s:  # Hypothesis examples share the store: leave it empty
        for repo in (s.tickets, s.customers, s.users):
            for e in list(repo.iter()):
                repo.delete(e.id)


def _same(pushed: Any, pure: Any) -> None:
    try:
        expected = pure()
    except pycrm.ValidationError as exc:
        with pytest.raises(pycrm.ValidationError) as got:
            pushed()
        assert [(e.field, e.code) for e in got.value.errors] == [(e.field, e.code) for e in exc.errors]
        return
    result = pushed()
    assert list(result) == list(expected)
    assert repr(list(result)) == repr(list(expected))  # Decimal places too
    assert (result.title, result.x, result.y) == (expected.title, expected.x, expected.y)


@DB
@given(
    specs=ticket_specs,
    policy=policies,
    period=st.sampled_from([None, "week", "month", "quarter"]),
    by=groupings,
    as_of=st.integers(-2 * 24 * 60, 60 * 24 * 60),
    start=st.sampled_from([None, 0, 10, 30]),
)
def test_sla_pushdown_equals_the_pure_report(
    crm: pycrm.CRM, specs: list[dict[str, Any]], policy: dict[str, Any], period: str | None, by: Any, as_of: int, start: Any
) -> None:
    _store(crm, specs)
    sla = _policy(policy)
    now = T0 + dt.timedelta(minutes=as_of, seconds=17)
    first = None if start is None else (T0 + dt.timedelta(days=start)).date()
    try:
        with crm.session() as s:
            stored = list(s.tickets.iter())
            staff = list(s.users.iter())
            _same(
                lambda: s.analytics.sla(sla, period=period, by=by, start=first, as_of=now),
                lambda: sla_compliance(stored, sla, users=staff, period=period, by=by, start=first, as_of=now),
            )
            high = [t for t in stored if t.priority.value in ("high", "urgent")]
            _same(
                lambda: s.analytics.sla(sla, by="priority", where={"priority": {"in": ["high", "urgent"]}}, as_of=now),
                lambda: sla_compliance(high, sla, by="priority", as_of=now),
            )
    finally:
        _empty(crm)


def _fixed(crm: pycrm.CRM) -> SlaPolicy:
    specs = [
        {
            "priority": PRIORITIES[k % 4],
            "created": 600 * k,
            "moves": [("open", 30 + k), ("pending", 200), ("open", 900), ("resolved", 60 * k)][: 1 + k % 4],
            "agent": ["u1", "u2", None][k % 3],
            "imported": "resolved" if k == 5 else None,
            "same_instant": False,
        }
        for k in range(12)
    ]
    _store(crm, specs)
    return SlaPolicy(
        [
            SlaTarget("urgent", priority="urgent", first_response="30m", resolution="4h"),
            SlaTarget("high", priority="high", first_response="1h", resolution="8h", calendar="shanghai"),
            SlaTarget("rest", first_response="4h", resolution="2d"),
        ],
        calendar=CALENDARS["utc"],
        calendars={"shanghai": CALENDARS["shanghai"]},
    )


def _count_streams(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The kinds the session's reports stream from now on (none when the report runs in the database)."""
    from pycrm.storage._analytics import SessionAnalytics

    streamed: list[Any] = []
    real = SessionAnalytics._stream

    def counting(self: Any, kind: Any, where: Any) -> Any:
        streamed.append(kind)
        return real(self, kind, where)

    monkeypatch.setattr(SessionAnalytics, "_stream", counting)
    return streamed


def test_sql_adapters_compute_the_sla_report_inside_the_database(
    crm: pycrm.CRM, adapter: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ticket is streamed on a SQL store (the fallback is for data and rules the SQL does not judge)."""
    if adapter == "memory":
        pytest.skip("the memory adapter streams into the pure function by design")

    policy = _fixed(crm)
    now = T0 + dt.timedelta(days=9)
    with crm.session() as s:
        stored, staff = list(s.tickets.iter()), list(s.users.iter())
    expected = {by: sla_compliance(stored, policy, users=staff, by=by, as_of=now) for by in ["priority", ("target", "team")]}
    streamed = _count_streams(monkeypatch)
    with crm.session() as s:
        for by, want in expected.items():
            got = s.analytics.sla(policy, by=by, as_of=now)
            assert list(got) == list(want) and sum(r.tickets for r in got) == 12
        assert streamed == []
        # a rule on the customer's tier is not expressed in SQL: the pure function computes it, equally
        tiers = SlaPolicy([SlaTarget("gold", customer_tags="gold", resolution="1h"), *policy.targets], calendars=policy.calendars)
        assert list(s.analytics.sla(tiers, as_of=now)) == list(sla_compliance(stored, tiers, as_of=now))
        assert Ticket in streamed


def test_sla_pushdown_follows_the_actor_scope(crm: pycrm.CRM, adapter: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An actor's report counts only the tickets it may read: its scope is part of the query."""
    policy = _fixed(crm)
    now = T0 + dt.timedelta(days=9)
    with crm.session() as s:
        mine = s.customers.add(Customer("Mine", owner_id="rep"))
        for k in range(3):
            t = Ticket(mine.id, f"mine {k}", priority="urgent", created_at=T0 + dt.timedelta(hours=3 + k))
            t.move_to("open", at=T0 + dt.timedelta(hours=3 + k, minutes=40))  # 40 working minutes
            s.tickets.add(t)
    rep = User("Rep", "rep@example.com", roles=["sales"], id="rep")
    from pycrm.storage._analytics import SessionAnalytics

    if adapter != "memory":

        def no_streaming(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("streamed tickets instead of computing in the database")

        monkeypatch.setattr(SessionAnalytics, "_stream", no_streaming)
    with crm.session(actor=rep) as s:
        got = s.analytics.sla(policy, by="target", as_of=now)
    monkeypatch.undo()
    with crm.session() as s:
        theirs = [t for t in s.tickets.iter() if t.customer_id == mine.id]
    assert list(got) == list(sla_compliance(theirs, policy, by="target", as_of=now))
    assert sum(r.tickets for r in got) == 3 and got[0].first_response_breached == 3


def test_histories_the_sql_does_not_judge_come_out_as_the_pure_function(crm: pycrm.CRM) -> None:
    """A change time stored with another UTC offset, and a history that goes backwards in time, are left to
    the pure function: the first computes the same, the second raises the same ValidationError."""
    from pycrm.domain import StatusChange

    policy = SlaPolicy([SlaTarget("all", first_response="1h", resolution="8h")])
    east = dt.timezone(dt.timedelta(hours=8))
    now = T0 + dt.timedelta(days=5)
    with crm.session() as s:
        c = s.customers.add(Customer("C"))
        offset = Ticket(c.id, "offset", created_at=T0 + dt.timedelta(hours=3))
        offset.status_history = [
            StatusChange("new", "open", (T0 + dt.timedelta(hours=4)).astimezone(east)),
            StatusChange("open", "resolved", (T0 + dt.timedelta(hours=9)).astimezone(east)),
        ]
        s.tickets.add(offset)
        s.tickets.add(Ticket(c.id, "plain", created_at=T0))
    with crm.session() as s:
        stored = list(s.tickets.iter())
        got = s.analytics.sla(policy, as_of=now)
        assert list(got) == list(sla_compliance(stored, policy, as_of=now))
        assert got[0].resolution_met == 1 and str(got[0].median_resolution_hours) == "6.00"  # 09:30 to 15:30
    with crm.session() as s:
        late = Ticket(c.id, "backwards", created_at=T0 + dt.timedelta(days=1))
        late.status_history = [StatusChange("new", "open", T0)]  # before the ticket was created
        s.tickets.add(late)
    with crm.session() as s:
        stored = list(s.tickets.iter())
        with pytest.raises(pycrm.ValidationError) as pure:
            sla_compliance(stored, policy, as_of=now)
        with pytest.raises(pycrm.ValidationError) as pushed:
            s.analytics.sla(policy, as_of=now)
        assert pushed.value.errors == pure.value.errors and pure.value.errors[0].code == "order"


def test_targets_and_groups_on_ticket_category_and_channel_in_the_database(
    crm: pycrm.CRM, adapter: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Category rules take a category's subtree (CJK paths included: a prefix is counted in characters, not
    bytes), channel rules a set of channels; grouping by them in SQL equals the pure function."""

    cats = [None, "硬件", "硬件/打印机", "硬件打印", "Billing", "Billing/Refunds", "Billingual", "billing"]
    channels = [None, "phone", "email", "web", "chat", "visit"]
    with crm.session() as s:
        s.customers.add(Customer("C", id="c1"))
        for i in range(24):
            t = Ticket("c1", f"t{i}", id=f"t{i:02d}", created_at=T0 + dt.timedelta(hours=i), category=cats[i % 8])
            t.channel = channels[i % 6]
            t.move_to("open", at=T0 + dt.timedelta(hours=i + 1))
            if i % 3:
                t.move_to("resolved", at=T0 + dt.timedelta(hours=i + 2 + i % 5))
            s.tickets.add(t)
    policy = SlaPolicy(
        [
            SlaTarget("printers", category="硬件/打印机", channel=["phone", "chat"], resolution="30m"),
            SlaTarget("hardware", category="硬件", resolution="1h"),
            SlaTarget("billing", category=["Billing"], first_response="2h", resolution="3h"),
            SlaTarget("web", channel="web", resolution="2h"),
            SlaTarget("rest", resolution="8h"),
        ]
    )
    now = T0 + dt.timedelta(days=3)
    with crm.session() as s:
        stored = list(s.tickets.iter())
    streamed = _count_streams(monkeypatch)
    with crm.session() as s:
        for by in ["target", ("category", "channel"), ("category", "target")]:
            assert list(s.analytics.sla(policy, by=by, as_of=now, period=None)) == list(
                sla_compliance(stored, policy, by=by, as_of=now, period=None)
            ), by
    targets = {r.target for r in sla_compliance(stored, policy, by="target", as_of=now)}
    assert targets == {"printers", "hardware", "billing", "web", "rest"}  # every rule is exercised
    assert (streamed == []) == (adapter != "memory")
