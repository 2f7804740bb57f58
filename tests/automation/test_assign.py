"""Assignment strategies on every adapter: turns kept in the store, people away skipped, reasons, bad input."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal

import pytest

import pycrm
from pycrm import Customer, Money, Opportunity, Task, Ticket, User, ValidationError
from pycrm.automation import (
    Assignment,
    Availability,
    BusinessCalendar,
    ByField,
    LeastLoaded,
    RoundRobin,
    Weighted,
    assign,
    assign_to,
)

AT = dt.datetime(2026, 12, 7, 10, tzinfo=dt.UTC)  # a Monday, 10:00 UTC
USERS = ("u1", "u2", "u3")


@pytest.fixture
def team(crm: pycrm.CRM) -> pycrm.CRM:
    with crm.session() as s:
        for u in (*USERS, "u4"):
            s.users.add(User(u.upper(), f"{u}@example.com", roles=["sales"], id=u))
    return crm


def _picks(crm: pycrm.CRM, strategy: object, n: int, **kw: object) -> list[str | None]:
    out = []
    for _ in range(n):
        with crm.session() as s:  # a session each: the turn is kept in the store between them
            out.append(assign(s, strategy, at=AT, **kw).user_id)  # type: ignore[arg-type]
    return out


def test_round_robin_takes_turns_kept_across_sessions(team: pycrm.CRM) -> None:
    rr = RoundRobin("sales", list(USERS))
    assert _picks(team, rr, 7) == ["u1", "u2", "u3", "u1", "u2", "u3", "u1"]
    with team.session() as s:
        got = assign(s, rr, at=AT)
    assert got == Assignment("u2", "round_robin", "round robin 'sales' over [u1, u2, u3]: turn 8 -> u2")
    with pytest.raises(RuntimeError), team.session() as s:  # a rolled-back session gives its turn back
        assert assign(s, rr, at=AT).user_id == "u3"
        raise RuntimeError("undo")
    assert _picks(team, rr, 1) == ["u3"]
    assert _picks(team, RoundRobin("other", ["u3", "u1"]), 2) == ["u3", "u1"]  # another name, its own turns


def test_people_on_leave_are_skipped_and_the_others_stay_even(team: pycrm.CRM) -> None:
    away = Availability(leave={"u2": [("2026-12-01", "2026-12-10")]})
    rr = RoundRobin("sales", list(USERS))
    picks = _picks(team, rr, 6, availability=away)
    assert picks == ["u1", "u3", "u1", "u3", "u1", "u3"]
    with team.session() as s:
        got = assign(s, rr, at=AT, availability=away)
    assert got.user_id == "u1"
    assert got.reason == "round robin 'sales' over [u1, u2, u3]: turn 10 -> u1; u2 skipped: on leave 2026-12-01..2026-12-10"
    after = AT + dt.timedelta(days=4)  # back from leave on the 11th
    with team.session() as s:
        assert assign(s, rr, at=after, availability=away).user_id == "u2"


def test_people_off_shift_are_skipped(team: pycrm.CRM) -> None:
    shanghai = BusinessCalendar(timezone="Asia/Shanghai")  # 10:00 UTC is 18:00 there: the day is over
    away = Availability(calendars={"u1": shanghai}, default=BusinessCalendar())
    with team.session() as s:
        got = assign(s, RoundRobin("desk", ["u1", "u2"]), at=AT, availability=away)
    assert got.user_id == "u2"
    assert "u1 skipped: off shift at 2026-12-07 18:00 Asia/Shanghai" in got.reason
    night = Availability(default=BusinessCalendar(start="09:00", end="10:00"))
    with team.session() as s:
        nobody = assign(s, RoundRobin("desk", ["u1", "u2"]), at=AT, availability=night)
    assert nobody.user_id is None and nobody.strategy == "round_robin"
    assert nobody.reason.endswith(
        "nobody available; u1 skipped: off shift at 2026-12-07 10:00 UTC; u2 skipped: off shift at 2026-12-07 10:00 UTC"
    )
    with team.session() as s:  # nobody available took no turn
        assert assign(s, RoundRobin("desk", ["u1", "u2"]), at=AT).reason.endswith("turn 3 -> u1")


def test_least_loaded_counts_open_items_only(team: pycrm.CRM) -> None:
    due = AT + dt.timedelta(days=1)
    with team.session() as s:
        c = s.customers.add(Customer("Acme"))
        s.tasks.add_many([Task("a", due, assignee_id="u1"), Task("b", due, assignee_id="u1"), Task("c", due, assignee_id="u2")])
        s.tasks.add_many([Task(f"done {i}", due, assignee_id="u3", done=True) for i in range(5)])
        s.tickets.add(Ticket(c.id, "open", assignee_id="u3"))
        closed = s.tickets.add(Ticket(c.id, "closed", assignee_id="u2", status="resolved"))
        assert closed.status.value == "resolved"
        won = Opportunity(c.id, "won", Money(Decimal(1), "USD"), owner_id="u2")
        won.win()
        s.opportunities.add(won)
        s.opportunities.add(Opportunity(c.id, "open", Money(Decimal(1), "USD"), owner_id="u1"))
    ll = LeastLoaded(list(USERS))
    with team.session() as s:
        assert ll.load(s, list(USERS)) == {"u1": 3, "u2": 1, "u3": 1}
        got = assign(s, ll, at=AT)
    assert got.user_id == "u2"  # tied with u3: the list order
    assert got.reason == (
        "least loaded of [u1, u2, u3]: open tasks+tickets+opportunities {u1: 3, u2: 1, u3: 1} -> u2, "
        "tie among [u2, u3] broken by list order"
    )
    rotating = LeastLoaded(list(USERS), rotate="desk")
    assert _picks(team, rotating, 3) == ["u2", "u3", "u2"]
    with team.session() as s:
        assert assign(s, LeastLoaded(list(USERS), kinds=["tasks"]), at=AT).user_id == "u3"
        away = Availability(leave={"u2": [(AT.date(), AT.date())], "u3": [(AT.date(), AT.date())]})
        assert assign(s, ll, at=AT, availability=away).user_id == "u1"


def test_weighted_is_smooth_and_fair_over_a_cycle(team: pycrm.CRM) -> None:
    w = Weighted("w", {"u1": 3, "u2": 1, "u3": 2})
    picks = _picks(team, w, 12)
    assert picks[:6] == ["u1", "u3", "u1", "u2", "u3", "u1"]
    assert picks[6:] == picks[:6]  # deterministic, one cycle after another
    assert Counter(picks) == {"u1": 6, "u3": 4, "u2": 2}
    with team.session() as s:
        got = assign(s, w, at=AT, availability=Availability(leave={"u1": [(AT.date(), AT.date())]}))
    assert got.user_id == "u3"
    assert got.reason.startswith("weighted round robin 'w' over {u1: 3, u2: 1, u3: 2}: turn 14 (2 of 6) -> u3")


def test_by_field_maps_territories_with_a_default(team: pycrm.CRM) -> None:
    territory = ByField(
        "terr",
        "country",
        {"CN": ["u1", "u2"], "DE": RoundRobin("de", ["u3"])},
        default=RoundRobin("rest", ["u4"]),
    )
    by_category = ByField("cat", "category", {"Retail": ["u2"], "Retail/Online": ["u3"]})
    with team.session() as s:
        cn, de, fr = (
            s.customers.add(Customer(n, country=n, category=cat))
            for n, cat in (("CN", "Retail/Shops"), ("DE", None), ("FR", "Retail/Online"))
        )
        t = s.tickets.add(Ticket(de.id, "help"))
    with team.session() as s:
        assert [assign(s, territory, x, at=AT).user_id for x in (cn, cn, de, fr)] == ["u1", "u2", "u3", "u4"]
        got = assign(s, territory, fr, at=AT)
        assert got.reason == "by field 'terr': country = 'FR' not in the map: default round robin 'rest' over [u4]: turn 2 -> u4"
        assert assign(s, by_category, cn, at=AT).user_id == "u2"  # Retail/Shops -> its parent Retail
        assert assign(s, by_category, fr, at=AT).user_id == "u3"
        none = assign(s, by_category, de, at=AT)
        assert none == Assignment(None, "by_field", "by field 'cat': category = None is not in the map and there is no default")
        via_customer = ByField("tk", "customer.country", {"DE": ["u4"]})
        assert assign(s, via_customer, t, at=AT).user_id == "u4"
        with pytest.raises(ValidationError) as err:
            assign(s, territory, at=AT)
        assert err.value.errors[0].field == "item"
        with pytest.raises(ValidationError) as err:
            assign(s, ByField("x", "subject", {"a": ["u1"]}), cn, at=AT)
        assert err.value.errors[0].field == "field"


def test_assign_to_writes_the_person_and_audits_why(team: pycrm.CRM) -> None:
    with team.session() as s:
        c = s.customers.add(Customer("Acme"))
        t = s.tickets.add(Ticket(c.id, "help"))
    rr = RoundRobin("desk", ["u2", "u3"])
    with team.session() as s:
        got = assign_to(s, "tickets", t.id, rr, at=AT)
        owner = assign_to(s, "customers", c.id, RoundRobin("owners", ["u4"]), at=AT)
    assert (got.user_id, owner.user_id) == ("u2", "u4")
    with team.session() as s:
        assert s.tickets.get(t.id).assignee_id == "u2"
        assert s.customers.get(c.id).owner_id == "u4"
        entry = s.audit.history(t.id)[-1]
    assert entry.action == "assign"
    assert entry.diff == {"field": "assignee_id", "user_id": "u2", "strategy": "round_robin", "reason": got.reason}
    assert team.audit.verify().ok
    away = Availability(leave={"u2": [(AT.date(), AT.date())], "u3": [(AT.date(), AT.date())]})
    with team.session() as s:
        nobody = assign_to(s, "tickets", t.id, rr, at=AT, availability=away)
        assert nobody.user_id is None
        assert s.tickets.get(t.id).assignee_id == "u2"  # left as it was
    with team.session() as s:
        for repository, field in (("orders", None), ("tickets", "owner_id"), ("customers", "assignee_id")):
            with pytest.raises(ValidationError):
                assign_to(s, repository, t.id, rr, field=field, at=AT)
        with pytest.raises(pycrm.NotFound):
            assign_to(s, "tickets", "nope", rr, at=AT)


def test_an_actor_assigns_through_the_gate(team: pycrm.CRM) -> None:
    rep = User("U1", "u1@example.com", roles=["sales"], id="u1")
    with team.session() as s:
        c = s.customers.add(Customer("Mine", owner_id="u1"))
    with team.session(actor=rep) as s:
        got = assign_to(s, "customers", c.id, RoundRobin("mine", ["u1"]), at=AT)
    assert got.user_id == "u1"
    with team.session() as s:
        assert s.audit.history(c.id)[-1].actor_id == "u1"
        other = s.customers.add(Customer("Theirs", owner_id="u2"))
        s.opportunities.add(Opportunity(other.id, "theirs", Money(Decimal(1), "USD"), owner_id="u2"))
        s.opportunities.add(Opportunity(c.id, "mine", Money(Decimal(1), "USD"), owner_id="u1"))
    with team.session(actor=rep) as s:
        with pytest.raises(pycrm.NotFound):  # another owner's record is not there for the rep
            assign_to(s, "customers", other.id, RoundRobin("mine", ["u1"]), at=AT)
        ll = LeastLoaded(["u1", "u2"], kinds=["opportunities"])
        assert ll.load(s, ["u1", "u2"]) == {"u1": 1, "u2": 0}  # counted as the rep sees them
    with team.session() as s:
        assert ll.load(s, ["u1", "u2"]) == {"u1": 1, "u2": 1}


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: RoundRobin("sales", []), "users"),
        (lambda: RoundRobin("sales", ["u1", "u1"]), "users"),
        (lambda: RoundRobin("sales", "u1"), "users"),
        (lambda: RoundRobin("sales", ["u1", ""]), "users[1]"),
        (lambda: RoundRobin("bad name!", ["u1"]), "name"),
        (lambda: RoundRobin("x" * 30, ["u1"]), "name"),
        (lambda: Weighted("x" * 29, {"u1": 1}), "name"),
        (lambda: ByField("x" * 25, "country", {"CN": ["u1"]}), "name"),
        (lambda: LeastLoaded(["u1"], rotate="x" * 30), "rotate"),
        (lambda: Weighted("w", {}), "weights"),
        (lambda: Weighted("w", {"u1": 0}), "weights.u1"),
        (lambda: Weighted("w", {"u1": -2}), "weights.u1"),
        (lambda: Weighted("w", {"u1": 1.5}), "weights.u1"),
        (lambda: Weighted("w", {"u1": 9_000, "u2": 2_000}), "weights"),
        (lambda: LeastLoaded(["u1"], kinds=["orders"]), "kinds"),
        (lambda: LeastLoaded(["u1"], kinds=[]), "kinds"),
        (lambda: ByField("b", "country", {}), "map"),
        (lambda: ByField("b", "country", {"CN": []}), "map.CN"),
        (lambda: ByField("b", "country", {"CN": "u1"}), "map.CN"),
        (lambda: ByField("b", "country; drop", {"CN": ["u1"]}), "field"),
        (lambda: ByField("b", "country", {"CN": ["u1"]}, default=["u2"]), "default"),
        (lambda: Availability(leave={"u1": [("2026-12-10", "2026-12-01")]}), "leave.u1[0]"),
        (lambda: Availability(leave={"u1": [("2026-12-10",)]}), "leave.u1[0]"),
        (lambda: Availability(leave={"u1": [("soon", "later")]}), "leave.u1[0]"),
        (lambda: Availability(calendars={"u1": "9-5"}), "calendars.u1"),
        (lambda: Availability(default="9-5"), "default"),
    ],
)
def test_bad_configuration_names_the_field(make: object, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        make()  # type: ignore[operator]
    assert err.value.errors[0].field == field


def test_the_longest_names_fit_their_counters(team: pycrm.CRM) -> None:
    longest = ByField("b" * 24, "category", {f"C{i}": ["u1"] for i in range(500)})
    with team.session() as s:
        c = s.customers.add(Customer("Acme", category="C499"))
        assert assign(s, longest, c, at=AT).reason.endswith(f"round robin '{'b' * 24}.499' over [u1]: turn 1 -> u1")
        assert assign(s, RoundRobin("r" * 29, ["u1"]), at=AT).user_id == "u1"
        assert assign(s, Weighted("w" * 28, {"u1": 1}), at=AT).user_id == "u1"
        assert assign(s, LeastLoaded(["u1", "u2"], rotate="l" * 29), at=AT).user_id == "u1"


def test_unknown_users_and_bad_calls_are_refused(team: pycrm.CRM) -> None:
    with team.session() as s:
        with pytest.raises(ValidationError) as err:
            assign(s, ByField("b", "country", {"CN": ["u1", "ghost"]}, default=RoundRobin("d", ["nobody"])), at=AT)
        assert [(e.field, e.message) for e in err.value.errors] == [
            ("users", "no user with id 'ghost'"),
            ("users", "no user with id 'nobody'"),
        ]
        for kw, field in (
            ({"at": dt.datetime(2026, 12, 7)}, "at"),
            ({"availability": {}}, "availability"),
            ({"item": "c1"}, "item"),
        ):
            with pytest.raises(ValidationError) as err:
                assign(s, RoundRobin("ok", ["u1"]), **kw)  # type: ignore[arg-type]
            assert err.value.errors[0].field == field
        with pytest.raises(ValidationError) as err:
            assign(s, "round robin", at=AT)  # type: ignore[arg-type]
        assert err.value.errors[0].field == "strategy"
