"""SLA time rules (``SlaAtRisk``, ``SlaBreached``) through ``crm.run_due`` on every adapter: the tickets whose
clocks crossed fire once per crossing, paused and resolved tickets do not, customers' tiers select targets,
and a rule delivers to an escalation handler."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

import pycrm
from pycrm import Customer, Ticket, ValidationError
from pycrm.automation import BusinessCalendar, TicketSlaAtRisk, TicketSlaBreached, run_due
from pycrm.service import SlaAtRisk, SlaBreached, SlaPolicy, SlaTarget

UTC = dt.UTC
OPEN = Callable[..., pycrm.CRM]
MON = dt.datetime(2026, 12, 7, 9, tzinfo=UTC)
H = dt.timedelta(hours=1)
POLICY = SlaPolicy(
    [
        SlaTarget("gold", customer_tags=["gold"], first_response="1h", resolution="2h"),
        SlaTarget("standard", first_response="2h", resolution="8h"),
    ],
    calendar=BusinessCalendar(),
    at_risk=0.5,
)


def _events(crm: pycrm.CRM, kind: type) -> list[Any]:
    found = [e.event for e in crm.outbox.entries() if type(e.event) is kind]
    return sorted(found, key=lambda e: (e.entity_id, e.metric))


def _ticket(tid: str, customer: str, *moves: tuple[str, dt.datetime]) -> Ticket:
    t = Ticket(customer, f"ticket {tid}", id=tid, created_at=MON)
    for status, at in moves:
        t.move_to(status, at=at)
    return t


def _store(open_crm: OPEN) -> pycrm.CRM:
    crm = open_crm(outbox=True)
    with crm.session() as s:
        s.customers.add(Customer("Gold Ltd", id="c-gold", tags={"gold"}))
        s.customers.add(Customer("Plain Ltd", id="c-plain"))
        s.tickets.add(_ticket("t-gold", "c-gold", ("open", MON + H / 2)))  # gold: resolution 2 h
        s.tickets.add(_ticket("t-plain", "c-plain", ("open", MON + H / 2)))  # standard: 8 h
        s.tickets.add(_ticket("t-pending", "c-gold", ("open", MON + H / 4), ("pending", MON + H / 2)))
        s.tickets.add(_ticket("t-done", "c-gold", ("open", MON + H / 4), ("resolved", MON + 3 * H)))
    return crm


def test_breaches_and_risks_fire_once_per_crossing(open_crm: OPEN) -> None:
    crm = _store(open_crm)
    rules = [SlaBreached(policy=POLICY), SlaAtRisk(policy=POLICY), SlaBreached(policy=POLICY, metric="first_response")]
    early = run_due(crm, rules, now=MON + H + H / 2)  # 1.5 h: gold past half its 2 h; nobody breached
    assert early["sla_breached:resolution"].found == 0
    assert early["sla_at_risk:resolution"].found == 1
    risk = _events(crm, TicketSlaAtRisk)
    assert [(e.entity_id, e.target, e.due_at) for e in risk] == [("t-gold", "gold", MON + 2 * H)]
    late = run_due(crm, rules, now=MON + 5 * H)  # gold breached at 11:00; plain at risk since 13:00
    assert late["sla_breached:resolution"].fired == 1
    assert late["sla_at_risk:resolution"].fired == 1  # t-plain; t-gold is breached now, not at risk
    breached = _events(crm, TicketSlaBreached)
    assert [(e.entity_id, e.metric, e.due_at) for e in breached] == [("t-gold", "resolution", MON + 2 * H)]
    again = run_due(crm, rules, now=MON + 6 * H)
    assert again.fired == 0 and again["sla_breached:resolution"].already == 1
    # the pending ticket (paused at 15 min) and the resolved one (late, but resolved) never fire
    ids = {e.event.entity_id for e in crm.outbox.entries() if isinstance(e.event, (TicketSlaAtRisk, TicketSlaBreached))}
    assert ids == {"t-gold", "t-plain"}


def test_an_escalation_handler_receives_the_breach(open_crm: OPEN) -> None:
    crm = _store(open_crm)
    escalated: list[str] = []
    crm.handlers.add(lambda e: escalated.append(f"{e.entity_id}:{e.metric}"), TicketSlaBreached, name="escalate")
    with pytest.raises(ValidationError) as e:  # the decorator called like add() says so instead of doing nothing
        crm.on(TicketSlaBreached, print)
    assert e.value.errors[0].field == "types[1]"
    run_due(crm, [SlaBreached(policy=POLICY)], now=MON + 9 * H)
    crm.dispatch()
    assert escalated == ["t-gold:resolution", "t-plain:resolution"]


def test_bad_rule_arguments_name_the_field() -> None:
    with pytest.raises(ValidationError) as e:
        SlaBreached(policy=POLICY, metric="lunch")
    assert e.value.errors[0].field == "metric"
    with pytest.raises(ValidationError) as e:
        SlaAtRisk(policy={"targets": []})  # type: ignore[arg-type]
    assert e.value.errors[0].field == "policy"
