"""Analytics see the rows the actor's scope allows, computed where the data lives (pushdown included)."""

from __future__ import annotations

import datetime as dt

import pycrm
from pycrm import Customer, Money, Opportunity, Order, Ticket, User
from pycrm.analytics import rfm, ticket_summary, top_customers

UTC = dt.UTC


def _fill(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        for i in range(8):
            owner = "u1" if i % 3 == 0 else "u2"
            c = s.customers.add(Customer(f"Kunde {i}", owner_id=owner, team_id="t1" if i < 4 else "t2", id=f"k{i}"))
            for k in range(i % 4 + 1):
                s.orders.add(Order(str(c.id), dt.datetime(2025, 1, 1 + k * 3 + i, tzinfo=UTC), Money(f"{10 + i * k}.50", "CNY")))
            s.opportunities.add(Opportunity(str(c.id), f"Deal {i}", Money(f"{1000 * (i + 1)}.00", "CNY"), owner_id=owner))
            s.tickets.add(Ticket(str(c.id), f"Issue {i}", priority="high" if i % 2 else "normal"))


def test_reports_follow_the_actor_scope(crm: pycrm.CRM) -> None:
    _fill(crm)
    rep = User("Rep", "rep@example.com", roles=["sales"], team_id="t1", id="u1")
    boss = User("Boss", "boss@example.com", roles=["manager"], team_id="t2", id="u9")
    with crm.session() as s:
        every_order = list(s.orders.iter())
        every_ticket = list(s.tickets.iter())
        owner = {c.id: c for c in s.customers.iter()}
    for actor, mine in ((rep, lambda c: c.owner_id == "u1"), (boss, lambda c: c.team_id == "t2")):
        orders = [o for o in every_order if mine(owner[o.customer_id])]
        tickets = [t for t in every_ticket if mine(owner[t.customer_id])]
        assert orders and len(orders) < len(every_order)
        with crm.session(actor=actor) as s:
            assert s.analytics.rfm(as_of="2025-06-30") == rfm(orders, as_of="2025-06-30")

            def key(r: object) -> tuple[object, ...]:
                return (r.rank, r.customer_id, r.orders, r.revenue, r.currency)  # type: ignore[attr-defined]

            assert [key(r) for r in s.analytics.top_customers(n=3)] == [key(r) for r in top_customers(orders, n=3)]
            assert [r.name for r in s.analytics.top_customers(n=3)] == [
                owner[r.customer_id].name for r in top_customers(orders, n=3)
            ]
            assert list(s.analytics.ticket_summary()) == list(ticket_summary(tickets))
            # a filter narrows the scope, never widens it
            assert s.analytics.rfm(as_of="2025-06-30") == rfm(orders, as_of="2025-06-30")
            assert {r.customer_id for r in s.analytics.top_customers(n=100, where={"customer_id": {"in": list(owner)}})} == {
                o.customer_id for o in orders
            }
