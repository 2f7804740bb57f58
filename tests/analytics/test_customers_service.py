"""Customer and service reports: activity and churn, top customers, ticket counts, service times and SLA.

Expected values are worked out by hand in the comments.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

import pycrm
from pycrm import Money, Order, Ticket
from pycrm.analytics import (
    CustomerActivityRow,
    RateTable,
    ServiceTimeRow,
    TicketCountRow,
    TopCustomerRow,
    customer_activity,
    service_times,
    ticket_summary,
    top_customers,
)

UTC = dt.UTC
D = Decimal


def order(cid: str, day: str, amount: int | str = 10, currency: str = "CNY") -> Order:
    d = dt.date.fromisoformat(day)
    return Order(cid, dt.datetime(d.year, d.month, d.day, 12, tzinfo=UTC), Money(amount, currency))


# ---------------------------------------------------------------------------------------------- activity

BOOK = [
    order("a", "2024-01-03"),
    order("b", "2024-01-20"),
    order("a", "2024-01-25"),  # a twice in January: still one active customer
    order("a", "2024-02-01"),
    order("c", "2024-02-14"),
    # March: nobody
    order("b", "2024-04-30"),
    order("d", "2024-04-01"),
]


def test_customer_activity_per_month_with_a_quiet_month() -> None:
    assert customer_activity(BOOK) == [
        # period, active, new, retained, churned, previously active, churn rate
        CustomerActivityRow("2024-01", 2, 2, 0, 0, 0, None),  # nobody was active before: no rate
        CustomerActivityRow("2024-02", 2, 1, 1, 1, 2, D("0.5")),  # b churned of {a, b}
        CustomerActivityRow("2024-03", 0, 0, 0, 2, 2, D(1)),  # a and c churned
        CustomerActivityRow("2024-04", 2, 1, 0, 0, 0, None),  # b returns (not new), d is new
    ]


def test_customer_activity_by_quarter_and_within_a_range() -> None:
    assert customer_activity(BOOK, period="quarter") == [
        CustomerActivityRow("2024-Q1", 3, 3, 0, 0, 0, None),
        CustomerActivityRow("2024-Q2", 2, 1, 1, 2, 3, D("0.6667")),  # a, c churned; b retained
    ]
    # from February: January still decides who churned and who is new
    got = customer_activity(BOOK, start="2024-02-10", end=dt.date(2024, 3, 31))
    assert [(r.period, r.new, r.churned, r.churn_rate) for r in got] == [("2024-02", 1, 1, D("0.5")), ("2024-03", 0, 2, D(1))]
    # a range after the last order: every period listed, all zeros, no division by zero
    later = customer_activity(BOOK, start="2024-06-01", end="2024-07-31")
    assert later == [
        CustomerActivityRow("2024-06", 0, 0, 0, 0, 0, None),
        CustomerActivityRow("2024-07", 0, 0, 0, 0, 0, None),
    ]
    weeks = customer_activity([order("a", "2024-01-01"), order("a", "2024-01-15")], period="week")
    assert [(r.period, r.active, r.churned) for r in weeks] == [("2024-W01", 1, 0), ("2024-W02", 0, 1), ("2024-W03", 1, 0)]


def test_customer_activity_empty_and_bad_input() -> None:
    assert customer_activity([]) == []
    assert customer_activity([], start="2024-01-01", end="2024-01-31") == [CustomerActivityRow("2024-01", 0, 0, 0, 0, 0, None)]
    with pytest.raises(pycrm.ValidationError) as err:
        customer_activity(BOOK, period=None)  # type: ignore[arg-type]
    assert err.value.fields == ["period"]
    o = order("a", "2024-01-01")
    object.__setattr__(o, "occurred_at", dt.datetime(2024, 1, 1))
    with pytest.raises(pycrm.ValidationError) as err:
        customer_activity([order("b", "2024-01-01"), o])
    assert err.value.fields == ["orders[1].occurred_at"] and err.value.errors[0].code == "naive_datetime"
    with pytest.raises(pycrm.ValidationError) as err:
        customer_activity(BOOK, end=dt.datetime(2024, 1, 1, 12))
    assert err.value.fields == ["end"]


# ---------------------------------------------------------------------------------------------- top customers


def test_top_customers_by_revenue_ties_broken_by_id() -> None:
    book = [
        order("b", "2024-01-01", 50),
        order("a", "2024-01-02", 30),
        order("a", "2024-01-03", "20.50"),
        order("c", "2024-01-04", 5),
    ]
    got = top_customers(book, n=2, names={"a": "Acme"})
    assert got == [
        TopCustomerRow(1, "a", "Acme", 2, D("50.50"), "CNY"),
        TopCustomerRow(2, "b", None, 1, D(50), "CNY"),
    ]
    tie = top_customers([order("z", "2024-01-01", 5), order("y", "2024-01-01", 5)])
    assert [r.customer_id for r in tie] == ["y", "z"]
    assert [r.customer_id for r in top_customers(book, start="2024-01-03")] == ["a", "c"]
    assert top_customers([]) == []
    with pytest.raises(pycrm.ValidationError) as err:
        top_customers(book, n=0)
    assert err.value.fields == ["n"]


def test_top_customers_convert_at_each_orders_date() -> None:
    rates = RateTable("CNY", [("USD", "2024-01-01", "7"), ("USD", "2024-06-01", "7.5")])
    book = [order("a", "2024-02-01", 10, "USD"), order("a", "2024-07-01", 10, "USD"), order("b", "2024-07-01", 140)]
    # a: 70 + 75 = 145 CNY; b: 140 CNY
    assert [(r.customer_id, r.revenue, r.currency) for r in top_customers(book, rates=rates)] == [
        ("a", 145, "CNY"),
        ("b", 140, "CNY"),
    ]
    with pytest.raises(pycrm.ValidationError) as err:
        top_customers([order("a", "2023-12-31", 1, "USD")], rates=rates)
    assert err.value.errors[0].code == "missing_rate"
    assert "USD" in str(err.value) and "2023-12-31" in str(err.value)


def test_top_customers_refuse_mixed_currencies_without_rates() -> None:
    with pytest.raises(pycrm.ValidationError) as err:
        top_customers([order("a", "2024-01-01", 1), order("b", "2024-03-02", 1, "EUR")])
    assert err.value.fields == ["orders[1].amount.currency"]
    assert "EUR" in str(err.value) and "2024-03-02" in str(err.value)


# ---------------------------------------------------------------------------------------------- tickets

T0 = dt.datetime(2024, 5, 6, 9, tzinfo=UTC)


def ticket(priority: str = "normal", *, moves: tuple[tuple[str, float], ...] = (), created: dt.datetime | None = T0) -> Ticket:
    t = Ticket("c1", "help", priority=priority, created_at=created)
    for status, hours in moves:
        t.move_to(status, at=T0 + dt.timedelta(hours=hours))
    return t


def tickets() -> list[Ticket]:
    return [
        # urgent, SLA 4 h: response 1 h, resolved after 3 h (in time), closed later
        ticket("urgent", moves=(("open", 1), ("resolved", 3), ("closed", 50))),
        # urgent: response 0.5 h, resolved after 6 h (late)
        ticket("urgent", moves=(("open", 0.5), ("resolved", 6))),
        # high, SLA 24 h: response 2 h, resolved at 10, reopened at 12, resolved again at 30 (late)
        ticket("high", moves=(("open", 2), ("resolved", 10), ("open", 12), ("resolved", 30))),
        # normal, SLA 72 h: response 5 h, waiting on the customer, unresolved
        ticket("normal", moves=(("open", 5), ("pending", 6))),
        # low, SLA 168 h: never answered; created in June
        ticket("low", created=dt.datetime(2024, 6, 1, tzinfo=UTC)),
    ]


def test_ticket_counts_by_status_priority_and_both() -> None:
    assert ticket_summary(tickets()) == [
        TicketCountRow("new", None, 1),
        TicketCountRow("pending", None, 1),
        TicketCountRow("resolved", None, 2),
        TicketCountRow("closed", None, 1),
    ]
    assert [(r.priority, r.tickets) for r in ticket_summary(tickets(), by="priority")] == [
        ("urgent", 2),
        ("high", 1),
        ("normal", 1),
        ("low", 1),
    ]
    both = ticket_summary(tickets(), by=("status", "priority"))
    assert [(r.status, r.priority, r.tickets) for r in both] == [
        ("new", "low", 1),
        ("pending", "normal", 1),
        ("resolved", "urgent", 1),
        ("resolved", "high", 1),
        ("closed", "urgent", 1),
    ]
    assert [r.tickets for r in ticket_summary(tickets(), start="2024-06-01")] == [1]
    assert ticket_summary([]) == []
    with pytest.raises(pycrm.ValidationError):
        ticket_summary(tickets(), by=())
    with pytest.raises(pycrm.ValidationError):
        ticket_summary(tickets(), by="assignee")


def test_service_times_and_sla_breaches() -> None:
    as_of = dt.datetime(2024, 5, 10, 9, tzinfo=UTC)  # 96 h after T0: the pending normal ticket is past 72 h
    got = service_times(tickets(), as_of=as_of)
    assert got == [
        # May: responses 1, 0.5, 2, 5 h -> mean 2.125 (2.12 half-even), median 1.5;
        # resolutions 3, 6, 30 h -> mean 13, median 6; breached: urgent 6 h, high 30 h, normal unresolved at 96 h
        ServiceTimeRow("2024-05", None, 4, 4, D("2.12"), D("1.50"), 3, D("13.00"), D("6.00"), 3, D("0.75")),
        # June: created after as_of, nothing due yet: no breach, no times
        ServiceTimeRow("2024-06", None, 1, 0, None, None, 0, None, None, 0, D(0)),
    ]
    early = service_times(tickets(), as_of=dt.date(2024, 5, 7), period=None)  # end of May 7: 39 h in, normal not late yet
    assert [(r.period, r.tickets, r.breached) for r in early] == [("all", 5, 2)]
    by_priority = service_times(tickets(), period="quarter", by="priority", as_of=as_of, end="2024-05-31")
    assert [(r.priority, r.tickets, r.mean_resolution_hours, r.breached) for r in by_priority] == [
        ("urgent", 2, D("4.50"), 1),
        ("high", 1, D("30.00"), 1),
        ("normal", 1, None, 1),
    ]
    assert service_times([], as_of=as_of) == []


def test_service_times_bad_input() -> None:
    with pytest.raises(pycrm.ValidationError) as err:
        service_times(tickets(), as_of=dt.datetime(2024, 5, 10))  # naive
    assert err.value.fields == ["as_of"]
    t = ticket(moves=(("open", 1),))
    object.__setattr__(t, "first_response_at", dt.datetime(2024, 5, 6, 10))
    with pytest.raises(pycrm.ValidationError) as err:
        service_times([t], as_of=T0)
    assert err.value.fields == ["tickets[0].first_response_at"]
    with pytest.raises(pycrm.ValidationError) as err:
        service_times(tickets(), period="fortnight")
    assert err.value.fields == ["period"]


def test_a_ticket_without_created_at_counts_but_has_no_times() -> None:
    t = ticket(created=None, moves=(("open", 1),))
    assert service_times([t], as_of=T0) == [ServiceTimeRow(None, None, 1, 0, None, None, 0, None, None, 0, D(0))]
