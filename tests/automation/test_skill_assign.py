"""Skill-based ticket assignment (BySkill): the narrowest skill covering a ticket's category first, then up the
category tree, then a default; the least loaded of the skilled people; people on leave or off shift skipped;
nobody available said in words; and through a rule on a new ticket (every adapter)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

import pycrm
from pycrm import Customer, Ticket, User, ValidationError
from pycrm.automation import Availability, BusinessCalendar, BySkill, assign, install_rules

AT = dt.datetime(2026, 12, 7, 10, tzinfo=dt.UTC)  # a Monday, 10:00 UTC: 18:00 in Shanghai
AGENTS = ("u1", "u2", "u3", "u4", "u5")
SKILLS = {"Hardware/Printer": ["u1"], "Hardware": ["u2", "u3"], "Billing": ["u4"]}
TODAY = [(AT.date(), AT.date())]


def _desk(crm: pycrm.CRM) -> str:
    """The agents, and a customer (its id) whose tickets they take."""
    with crm.session() as s:
        s.users.add_many([User(u.upper(), f"{u}@example.com", id=u) for u in AGENTS])
        return str(s.customers.add(Customer("Acme", category="Retail/Online")).id)


def _who(crm: pycrm.CRM, strategy: BySkill, category: str | None, **kw: Any) -> pycrm.automation.Assignment:
    ticket = Ticket("c1", "help", category=category)
    with crm.session() as s:
        return assign(s, strategy, ticket, at=AT, **kw)


def test_the_narrowest_skill_first_then_up_the_tree_then_the_default(crm: pycrm.CRM) -> None:
    _desk(crm)
    desk = BySkill(SKILLS, default=["u5"])
    got = {
        cat: _who(crm, desk, cat).user_id
        for cat in ("Hardware/Printer", "Hardware/Printer/Toner", "Hardware", "Hardware/Monitor", "Billing/Refunds")
    }
    assert got == {
        "Hardware/Printer": "u1",
        "Hardware/Printer/Toner": "u1",
        "Hardware": "u2",
        "Hardware/Monitor": "u2",
        "Billing/Refunds": "u4",
    }
    # no skill covers these: the default (paths are exact: "hardware" is not "Hardware")
    assert [_who(crm, desk, cat).user_id for cat in ("Software", "hardware/Printer", None)] == ["u5"] * 3
    toner = _who(crm, desk, "Hardware/Printer/Toner")
    assert toner.strategy == "by_skill"
    assert toner.reason == (
        "by skill: category = 'Hardware/Printer/Toner': 'Hardware/Printer' -> least loaded of [u1]: "
        "open tasks+tickets+opportunities {u1: 0} -> u1"
    )
    assert _who(crm, desk, None).reason.startswith("by skill: category = None: default -> least loaded of [u5]")
    assert desk.steps("Hardware/Printer/Toner") == [
        ("Hardware/Printer", ("u1",)),
        ("Hardware", ("u2", "u3")),
        ("default", ("u5",)),
    ]


def test_the_least_loaded_of_the_skilled_agents(crm: pycrm.CRM) -> None:
    cid = _desk(crm)
    with crm.session() as s:
        s.tickets.add_many([Ticket(cid, f"open {i}", assignee_id="u2", status="open") for i in range(2)])
        s.tickets.add(Ticket(cid, "pending", assignee_id="u3", status="open"))
        s.tickets.add_many([Ticket(cid, f"done {i}", assignee_id="u3", status="resolved") for i in range(4)])
    desk = BySkill(SKILLS, default=["u5"])  # u5 has no work, but no hardware skill either
    got = _who(crm, desk, "Hardware/Monitor")
    assert got.user_id == "u3"
    assert got.reason == (
        "by skill: category = 'Hardware/Monitor': 'Hardware' -> least loaded of [u2, u3]: "
        "open tasks+tickets+opportunities {u2: 2, u3: 1} -> u3"
    )
    assert _who(crm, BySkill(SKILLS, kinds=["tasks"]), "Hardware").reason.endswith(
        "{u2: 0, u3: 0} -> u2, tie among [u2, u3] broken by list order"
    )


def test_agents_on_leave_or_off_shift_are_skipped_up_the_tree(crm: pycrm.CRM) -> None:
    _desk(crm)
    desk = BySkill(SKILLS, default=["u5"])
    away = Availability(leave={"u1": TODAY}, calendars={"u2": BusinessCalendar(timezone="Asia/Shanghai")})
    got = _who(crm, desk, "Hardware/Printer", availability=away)
    assert got.user_id == "u3"
    assert got.reason == (
        "by skill: category = 'Hardware/Printer': 'Hardware/Printer' -> least loaded of [u1]: nobody available; "
        "u1 skipped: on leave 2026-12-07..2026-12-07; then 'Hardware' -> least loaded of [u2, u3]: "
        "open tasks+tickets+opportunities {u3: 0} -> u3; u2 skipped: off shift at 2026-12-07 18:00 Asia/Shanghai"
    )
    everyone = Availability(leave={"u1": TODAY, "u3": TODAY}, calendars={"u2": BusinessCalendar(timezone="Asia/Shanghai")})
    assert _who(crm, desk, "Hardware/Printer", availability=everyone).user_id == "u5"  # the default
    # someone skilled at both levels, away: asked once
    twice = BySkill({"Hardware/Printer": ["u1"], "Hardware": ["u1"]}, default=["u4"])
    reason = _who(crm, twice, "Hardware/Printer", availability=everyone).reason
    assert reason.count("u1 skipped") == 1 and "then 'Hardware': nobody else; then default" in reason


def test_nobody_available_leaves_the_ticket_unassigned_and_says_why(crm: pycrm.CRM) -> None:
    _desk(crm)
    away = Availability(leave={"u1": TODAY, "u2": TODAY}, default=BusinessCalendar(end="10:00"))
    got = _who(crm, BySkill(SKILLS), "Hardware/Printer", availability=away)
    assert got.user_id is None
    assert got.reason == (
        "by skill: category = 'Hardware/Printer': nobody available; 'Hardware/Printer' -> least loaded of [u1]: "
        "nobody available; u1 skipped: on leave 2026-12-07..2026-12-07; then 'Hardware' -> least loaded of "
        "[u2, u3]: nobody available; u2 skipped: on leave 2026-12-07..2026-12-07; u3 skipped: off shift at "
        "2026-12-07 10:00 UTC"
    )
    unknown = _who(crm, BySkill(SKILLS), "Software")
    assert unknown.user_id is None
    assert unknown.reason == "by skill: category = 'Software': nobody has the skill and there is no default"


def test_by_the_customers_category(crm: pycrm.CRM) -> None:
    cid = _desk(crm)
    by_customer = BySkill({"Retail": ["u4"]}, field="customer.category")
    with crm.session() as s:
        ticket = s.tickets.add(Ticket(cid, "help", category="Hardware"))
        got = assign(s, by_customer, ticket, at=AT)
    assert (got.user_id, got.reason.split(":")[1]) == ("u4", " customer.category = 'Retail/Online'")


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: BySkill({}), "skills"),
        (lambda: BySkill(["u1"]), "skills"),
        (lambda: BySkill({"Hardware//Printer": ["u1"]}), "skills.Hardware//Printer"),
        (lambda: BySkill({"Hardware": []}), "skills.Hardware"),
        (lambda: BySkill({"Hardware": ["u1", "u1"]}), "skills.Hardware"),
        (lambda: BySkill({"Hardware": ["u1"], " Hardware ": ["u2"]}), "skills. Hardware "),
        (lambda: BySkill({1: ["u1"]}), "skills"),
        (lambda: BySkill({"Hardware": ["u1"]}, default=[]), "default"),
        (lambda: BySkill({"Hardware": ["u1"]}, field="category; drop"), "field"),
        (lambda: BySkill({"Hardware": ["u1"]}, kinds=["orders"]), "kinds"),
    ],
)
def test_bad_skill_maps_name_the_field(make: Callable[[], object], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        make()
    assert err.value.errors[0].field == field


def test_unknown_agents_and_a_record_without_the_field_are_refused(crm: pycrm.CRM) -> None:
    _desk(crm)
    with crm.session() as s:
        with pytest.raises(ValidationError) as err:
            assign(s, BySkill({"Hardware": ["u1", "ghost"]}, default=["nobody"]), Ticket("c1", "x"), at=AT)
        assert [e.message for e in err.value.errors] == ["no user with id 'ghost'", "no user with id 'nobody'"]
        with pytest.raises(ValidationError) as err:
            assign(s, BySkill({"Hardware": ["u1"]}), at=AT)  # no record
        assert err.value.errors[0].field == "item"
        with pytest.raises(ValidationError) as err:
            assign(s, BySkill({"Hardware": ["u1"]}, field="subject_line"), Ticket("c1", "x"), at=AT)
        assert err.value.errors[0].field == "field"


def test_a_rule_assigns_each_new_ticket_by_skill(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(outbox=True, audit=True)
    cid = _desk(crm)
    desk = BySkill(SKILLS)
    away = Availability(leave={"u1": TODAY, "u4": TODAY})
    install_rules(
        crm,
        [
            {
                "name": "route tickets",
                "when": "TicketOpened",
                "where": {"assignee_id": None},  # tickets opened without an assignee
                "then": [{"assign_owner": {"assigner": "desk"}}],
            }
        ],
        assigners={"desk": lambda s, ticket: assign(s, desk, ticket, at=AT, availability=away)},
    )
    with crm.session() as s:
        s.tickets.add(Ticket(cid, "busy", category="Hardware", assignee_id="u2", status="open"))  # u2 has work already
    with crm.session() as s:
        printer = s.tickets.add(Ticket(cid, "Paper jam", category="Hardware/Printer", channel="phone"))
        refund = s.tickets.add(Ticket(cid, "Refund", category="Billing/Refunds", channel="email"))
        other = s.tickets.add(Ticket(cid, "Hello", channel="web"))
    assert crm.dispatch().failures == 0
    with crm.session() as s:
        got = {t.subject: t.assignee_id for t in s.tickets.find({"id": {"in": [printer.id, refund.id, other.id]}})}
        trail = {t: [e for e in s.audit.history(str(t)) if e.action == "assign"] for t in (printer.id, refund.id, other.id)}
        assert [t.assignee_id for t in s.tickets.find({"subject": "busy"})] == ["u2"]  # assigned already: kept
    # the printer expert is on leave: up to Hardware, where u3 has less work than u2
    assert got == {"Paper jam": "u3", "Refund": None, "Hello": None}
    (why,) = trail[printer.id]
    assert why.diff["user_id"] == "u3" and why.diff["assigner"] == "desk" and why.diff["strategy"] == "by_skill"
    assert "u1 skipped: on leave" in why.diff["reason"] and why.diff["reason"].endswith("{u2: 1, u3: 0} -> u3")
    # nobody available (the billing agent is on leave), or nobody with the skill: unassigned, and why
    (nobody,) = trail[refund.id]
    assert nobody.diff["user_id"] is None
    assert nobody.diff["reason"] == (
        "by skill: category = 'Billing/Refunds': nobody available; 'Billing' -> least loaded of [u4]: "
        "nobody available; u4 skipped: on leave 2026-12-07..2026-12-07"
    )
    assert trail[other.id][0].diff["reason"] == "by skill: category = None: nobody has the skill and there is no default"
    assert crm.audit.verify().ok
