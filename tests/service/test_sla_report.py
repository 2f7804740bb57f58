"""SLA compliance: the pure report's counts and medians, groups, and ``s.analytics.sla`` on every adapter within
the actor's scope (a ticket not yours is not counted; a customer not yours selects no tier target)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

import pycrm
from pycrm import Customer, Ticket, User, ValidationError
from pycrm.automation import BusinessCalendar
from pycrm.service import SlaPolicy, SlaTarget, sla_compliance

UTC = dt.UTC
MON = dt.datetime(2026, 12, 7, 9, tzinfo=UTC)
H = dt.timedelta(hours=1)
POLICY = SlaPolicy(
    [
        SlaTarget("gold", customer_tags=["gold"], first_response="1h", resolution="2h"),
        SlaTarget("urgent", priority="urgent", first_response="30m", resolution="4h"),
        SlaTarget("standard", first_response="2h", resolution="8h"),
    ],
    calendar=BusinessCalendar(),
)


def _ticket(tid: str, customer: str, respond: float, resolve: float | None, **kw: object) -> Ticket:
    t = Ticket(customer, tid, id=tid, created_at=MON, **kw)  # type: ignore[arg-type]
    t.move_to("open", at=MON + respond * H)
    if resolve is not None:
        t.move_to("resolved", at=MON + resolve * H)
    return t


def _data() -> tuple[list[Customer], list[Ticket], list[User]]:
    customers = [Customer("Gold", id="c-gold", tags={"gold"}, owner_id="u1"), Customer("Plain", id="c-plain", owner_id="u2")]
    tickets = [
        _ticket("a", "c-gold", 0.5, 1.5, assignee_id="u1"),  # gold: met, met
        _ticket("b", "c-gold", 2, 3, assignee_id="u1"),  # gold: both breached
        _ticket("c", "c-plain", 1, 6, priority="urgent", assignee_id="u2"),  # urgent: response late, resolution late
        _ticket("d", "c-plain", 1, None, assignee_id="u2"),  # standard: response met, still running
    ]
    users = [
        User("One", "one@example.com", id="u1", team_id="east", roles=["agent"]),
        User("Two", "two@example.com", id="u2", team_id="west", roles=["agent"]),
    ]
    return customers, tickets, users


def test_counts_compliance_and_medians() -> None:
    customers, tickets, users = _data()
    (row,) = sla_compliance(tickets, POLICY, customers=customers, as_of=MON + 7 * H)
    assert (row.period, row.tickets, row.unmatched) == ("2026-12", 4, 0)
    assert (row.first_response_met, row.first_response_breached) == (2, 2)
    assert (row.resolution_met, row.resolution_breached, row.running) == (1, 2, 1)
    assert row.resolution_compliance == Decimal("0.3333")
    assert row.median_resolution_hours == Decimal("3.00")  # 1.5, 3, 6
    assert row.median_first_response_hours == Decimal("1.00")  # 0.5, 2, 1, 1
    by_target = {r.target: r for r in sla_compliance(tickets, POLICY, customers=customers, by="target", as_of=MON + 7 * H)}
    assert set(by_target) == {"gold", "urgent", "standard"}
    assert by_target["gold"].resolution_compliance == Decimal("0.5000")
    # without the customers the gold tickets fall to the standard target
    plain = {r.target: r.tickets for r in sla_compliance(tickets, POLICY, by="target", as_of=MON + 7 * H)}
    assert plain == {"standard": 3, "urgent": 1}
    teams = {r.team: r.tickets for r in sla_compliance(tickets, POLICY, customers=customers, users=users, by=("team",))}
    assert teams == {"east": 2, "west": 2}


def test_unmatched_tickets_and_bad_arguments() -> None:
    _, tickets, _ = _data()
    only_urgent = SlaPolicy([SlaTarget("urgent", priority="urgent", resolution="4h")])
    (row,) = sla_compliance(tickets, only_urgent, as_of=MON + 7 * H)
    assert (row.tickets, row.unmatched, row.resolution_breached) == (4, 3, 1)
    for kw, field in (({"by": "mood"}, "by"), ({"period": "decade"}, "period"), ({"as_of": MON.replace(tzinfo=None)}, "as_of")):
        with pytest.raises(ValidationError) as e:
            sla_compliance(tickets, POLICY, **kw)  # type: ignore[arg-type]
        assert e.value.errors[0].field == field
    with pytest.raises(ValidationError) as e:
        sla_compliance(tickets, {"targets": []})  # type: ignore[arg-type]
    assert e.value.errors[0].field == "policy"


def test_session_report_follows_the_actor_scope(crm: pycrm.CRM) -> None:
    customers, tickets, users = _data()
    with crm.session() as s:
        for c in customers:
            s.customers.add(c)
        for u in users:
            s.users.add(u)
        for t in tickets:
            s.tickets.add(t)
    with crm.session() as s:
        stored = list(s.tickets.iter())
        everything = sla_compliance(stored, POLICY, customers=customers, users=users, by="team", as_of=MON + 7 * H)
        assert list(s.analytics.sla(POLICY, by="team", as_of=MON + 7 * H)) == list(everything)
    rep = User("Rep", "rep@example.com", roles=["sales"], team_id="east", id="u1")
    with crm.session(actor=rep) as s:
        mine = [t for t in stored if t.customer_id == "c-gold"]
        got = list(s.analytics.sla(POLICY, by="target", as_of=MON + 7 * H))
        assert got == list(sla_compliance(mine, POLICY, customers=customers[:1], by="target", as_of=MON + 7 * H))
        assert sum(r.tickets for r in got) == 2
        # a filter narrows, never widens
        narrowed = list(s.analytics.sla(POLICY, where={"customer_id": "c-plain"}, as_of=MON + 7 * H))
        assert narrowed == []


def test_a_tier_hidden_from_the_actor_cannot_choose_targets(open_crm: object) -> None:
    from pycrm.security import FieldRules

    crm = open_crm(field_rules=FieldRules({"sales": {"customers.tags": "hide"}}))  # type: ignore[operator]
    customers, tickets, _ = _data()
    with crm.session() as s:
        for c in customers:
            s.customers.add(c)
        for t in tickets:
            s.tickets.add(t)
    rep = User("Rep", "rep@example.com", roles=["sales"], id="u1")
    with crm.session(actor=rep) as s:
        # a policy reading the customer's tags would tell the rep who is "gold": refused, naming the field
        with pytest.raises(ValidationError) as e:
            s.analytics.sla(POLICY, as_of=MON + 7 * H)
        assert "tags" in e.value.errors[0].field
        # a policy on the ticket alone is fine
        plain = SlaPolicy([SlaTarget("all", resolution="8h")], calendar=BusinessCalendar())
        (row,) = s.analytics.sla(plain, as_of=MON + 7 * H)
        assert row.tickets == 2


def test_a_masked_category_cannot_be_grouped_or_matched(open_crm: object) -> None:
    from pycrm.security import FieldRules

    crm = open_crm(field_rules=FieldRules({"support": {"tickets.category": "mask"}}))  # type: ignore[operator]
    with crm.session() as s:
        s.customers.add(Customer("Plain", id="c-plain"))
        s.tickets.add(_ticket("a", "c-plain", 1, 2, category="Billing/Refunds"))
    agent = User("Agent", "agent@example.com", roles=["support"], id="u5")
    by_category = SlaPolicy([SlaTarget("billing", category="Billing", resolution="1h"), SlaTarget("all", resolution="8h")])
    with crm.session(actor=agent) as s:
        for policy, by in ((by_category, ()), (POLICY, ("category",))):
            with pytest.raises(ValidationError) as e:
                s.analytics.sla(policy, by=by, as_of=MON + 7 * H)
            assert "category" in e.value.errors[0].field
        plain = SlaPolicy([SlaTarget("all", resolution="8h")])
        (row,) = s.analytics.sla(plain, as_of=MON + 7 * H)
        assert row.tickets == 1 and row.category is None


def test_a_ticket_assigned_to_the_rep_on_another_owner_s_customer_tells_nothing_of_that_customer(crm: pycrm.CRM) -> None:
    """The rep reads a ticket assigned to it whose customer (a gold one) it may not read: the tier target is not
    chosen for it (the customer is no customer), and grouping by team shows only teams of users it may read."""
    customers, _, users = _data()
    with crm.session() as s:
        for c in customers:
            s.customers.add(c)
        for u in users:
            s.users.add(u)
        s.customers.add(Customer("Their gold", id="c-their-gold", tags={"gold"}, owner_id="u2", team_id="west"))
        s.tickets.add(_ticket("x", "c-their-gold", 0.5, 1.5, assignee_id="u1"))  # the rep works it
        s.tickets.add(_ticket("y", "c-their-gold", 0.5, 1.5, assignee_id="u2"))  # not the rep's
    rep = User("Rep", "rep@example.com", roles=["sales"], team_id="east", id="u1")
    with crm.session(actor=rep) as s:
        assert {t.id for t in s.tickets.iter()} == {"x"}
        (row,) = s.analytics.sla(POLICY, by="target", as_of=MON + 7 * H)
        assert (row.target, row.tickets) == ("standard", 1)  # not "gold": the tier stays hidden
        by_team = [(r.agent, r.team, r.tickets) for r in s.analytics.sla(POLICY, by=("agent", "team"), as_of=MON + 7 * H)]
        assert by_team == [("u1", "east", 1)]
        assert list(s.analytics.sla(POLICY, where={"assignee_id": "u2"}, as_of=MON + 7 * H)) == []  # "y": not there
