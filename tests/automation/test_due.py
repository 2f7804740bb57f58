"""Time-based triggers (``crm.run_due``, pycrm/automation/_due.py) on every adapter.

Each rule finds exactly the records due at its boundary times; a record fires once per period however often
``run_due`` runs (a new period -- a new due time, a new dormancy spell -- fires again); the events reach
handlers through ``crm.dispatch``; the store's one-query answer (``DueQueries``) equals the streaming
fallback; bad rule arguments are ValidationErrors naming the field.
"""

from __future__ import annotations

import datetime as dt
import types
from collections.abc import Callable
from typing import Any

import pytest

import pycrm
from pycrm import CRMError, Customer, CustomField, Interaction, Money, Opportunity, Order, Task, ValidationError
from pycrm.automation import (
    Anniversaries,
    CustomerDormant,
    DateAnniversary,
    DormantCustomers,
    OpportunityStale,
    OverdueTasks,
    StaleOpportunities,
    TaskDue,
    TaskDueSoon,
    TaskOverdue,
    run_due,
)
from pycrm.storage._due import due_rows
from pycrm.storage.port import DueQueries

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
US = dt.timedelta(microseconds=1)
DAY = dt.timedelta(days=1)
OPEN = Callable[..., pycrm.CRM]


def _crm(open_crm: OPEN, **kw: Any) -> pycrm.CRM:
    return open_crm(outbox=True, **kw)


def _fired(crm: pycrm.CRM, event: type) -> list[Any]:
    return sorted(
        (e.event for e in crm.outbox.entries() if e.event is not None and type(e.event) is event), key=lambda e: e.entity_id
    )


def _ids(crm: pycrm.CRM, event: type) -> list[str]:
    return [e.entity_id for e in _fired(crm, event)]


def test_tasks_due_soon_and_overdue_at_the_boundaries(open_crm: OPEN) -> None:
    crm = _crm(open_crm)
    with crm.session() as s:
        s.tasks.add(Task("late by a microsecond", NOW - US, id="t-late"))
        s.tasks.add(Task("due now", NOW, id="t-now"))
        s.tasks.add(Task("end of the window", NOW + dt.timedelta(hours=24), id="t-end"))
        s.tasks.add(Task("past the window", NOW + dt.timedelta(hours=24) + US, id="t-after"))
        s.tasks.add(Task("done and late", NOW - DAY, id="t-done", done=True))
        s.tasks.add(Task("done and due", NOW + DAY / 2, id="t-done2", done=True))
    result = crm.run_due([TaskDueSoon(within_hours=24), OverdueTasks()], now=NOW)
    assert _ids(crm, TaskDue) == ["t-end", "t-now"]
    assert _ids(crm, TaskOverdue) == ["t-late"]
    assert (result["task_due_soon:24h"].found, result["task_due_soon:24h"].fired) == (2, 2)
    assert (result["task_overdue"].found, result["task_overdue"].fired, result["task_overdue"].already) == (1, 1, 0)
    due = {e.entity_id: e for e in _fired(crm, TaskDue)}
    assert due["t-now"].due_at == NOW and due["t-now"].at == NOW and due["t-now"].actor_id is None


def test_a_task_fires_once_per_due_time(open_crm: OPEN) -> None:
    crm = _crm(open_crm)
    with crm.session() as s:
        s.tasks.add(Task("call back", NOW - DAY, id="t1"))
    rules = [OverdueTasks()]
    assert crm.run_due(rules, now=NOW).fired == 1
    again = crm.run_due(rules, now=NOW + dt.timedelta(hours=1))
    assert (again.found, again.fired, again.already) == (1, 0, 1)
    with crm.session() as s:  # moved to a new due time, missed again: a new period
        t = s.tasks.get("t1")
        t.due_at = NOW + DAY
        s.tasks.update(t)
    assert crm.run_due(rules, now=NOW + 2 * DAY).fired == 1
    assert [e.due_at for e in _fired(crm, TaskOverdue)] == [NOW - DAY, NOW + DAY]


def _customers(crm: pycrm.CRM) -> None:
    old = NOW - dt.timedelta(days=400)
    cut = NOW - dt.timedelta(days=90)
    with crm.session() as s:
        for cid in ("c-order-at-cut", "c-order-after", "c-both-old", "c-old-order-new-call", "c-never-old", "c-never-new"):
            created = NOW - dt.timedelta(days=10) if cid == "c-never-new" else old
            s.customers.add(Customer(cid, id=cid, created_at=created))
        s.orders.add(Order("c-order-at-cut", cut, Money(10, "USD")))
        s.orders.add(Order("c-order-after", cut + US, Money(10, "USD")))
        s.orders.add(Order("c-both-old", cut - DAY, Money(10, "USD")))
        s.interactions.add(Interaction("c-both-old", "call", cut - dt.timedelta(hours=1)))
        s.orders.add(Order("c-old-order-new-call", old, Money(10, "USD")))
        s.interactions.add(Interaction("c-old-order-new-call", "email", NOW - DAY))


def test_dormant_customers_at_the_boundary(open_crm: OPEN) -> None:
    crm = _crm(open_crm)
    _customers(crm)
    result = crm.run_due([DormantCustomers(days=90)], now=NOW)
    assert _ids(crm, CustomerDormant) == ["c-both-old", "c-never-old", "c-order-at-cut"]
    got = {e.entity_id: e for e in _fired(crm, CustomerDormant)}
    cut = NOW - dt.timedelta(days=90)
    assert got["c-order-at-cut"].last_activity == cut
    assert got["c-both-old"].last_activity == cut - dt.timedelta(hours=1)  # the latest of both
    assert got["c-never-old"].last_activity is None and got["c-never-old"].days == 90
    assert (result.found, result.fired, result.already) == (3, 3, 0)


def test_dormancy_fires_once_per_spell(open_crm: OPEN) -> None:
    crm = _crm(open_crm)
    _customers(crm)
    rules = [DormantCustomers(days=90)]
    crm.run_due(rules, now=NOW)
    second = crm.run_due(rules, now=NOW)
    assert (second.found, second.fired, second.already) == (3, 0, 3)

    def spells() -> list[Any]:
        found = [e.last_activity for e in _fired(crm, CustomerDormant) if e.entity_id == "c-never-old"]
        return sorted(found, key=lambda v: (v is not None, v))

    with crm.session() as s:  # c-never-old buys: active again ...
        s.orders.add(Order("c-never-old", NOW + DAY, Money(5, "USD")))
    crm.run_due(rules, now=NOW + 2 * DAY)
    assert spells() == [None]
    crm.run_due(rules, now=NOW + 91 * DAY - US)
    assert spells() == [None]
    crm.run_due(rules, now=NOW + 91 * DAY)  # ... then quiet for 90 days: a new spell
    assert spells() == [None, NOW + DAY]
    crm.run_due(rules, now=NOW + 95 * DAY)
    assert spells() == [None, NOW + DAY]


def test_stale_opportunities(open_crm: OPEN) -> None:
    crm = _crm(open_crm)
    cut = NOW - dt.timedelta(days=30)
    with crm.session() as s:
        s.customers.add(Customer("Acme", id="c1"))
        moved_at_cut = Opportunity("c1", "at cut", Money(1, "USD"), id="o-cut")
        moved_at_cut.move_to("qualification", at=cut - DAY)
        moved_at_cut.move_to("proposal", at=cut)
        moved_after = Opportunity("c1", "after", Money(1, "USD"), id="o-after")
        moved_after.move_to("proposal", at=cut + US)
        never = Opportunity("c1", "never moved", Money(1, "USD"), id="o-never", created_at=cut - DAY)
        fresh = Opportunity("c1", "new", Money(1, "USD"), id="o-new", created_at=cut + DAY)
        won = Opportunity("c1", "won", Money(1, "USD"), id="o-won")
        won.win(at=cut - dt.timedelta(days=100))
        for o in (moved_at_cut, moved_after, never, fresh, won):
            s.opportunities.add(o)
    crm.run_due([StaleOpportunities(days=30)], now=NOW)
    got = {e.entity_id: e for e in _fired(crm, OpportunityStale)}
    assert sorted(got) == ["o-cut", "o-never"]
    assert got["o-cut"].since == cut and got["o-never"].since == cut - DAY and got["o-cut"].days == 30
    assert crm.run_due([StaleOpportunities(days=30)], now=NOW).fired == 0
    with crm.session() as s:  # moved on, then stuck again: a new period
        o = s.opportunities.get("o-cut")
        o.move_to("negotiation", at=NOW)
        s.opportunities.update(o)
    assert crm.run_due([StaleOpportunities(days=30)], now=NOW + 31 * DAY).fired == 3  # o-cut again, o-after, o-new


def test_anniversaries_of_created_at_and_a_custom_date(open_crm: OPEN) -> None:
    fields = {"customers": [CustomField("birthday", "date")]}
    crm = _crm(open_crm, custom_fields=fields)
    with crm.session() as s:
        at = NOW.replace(hour=3)
        s.customers.add(Customer("Since 2024", id="c-2024", created_at=at.replace(year=2024)))
        s.customers.add(Customer("Today", id="c-today", created_at=at))
        s.customers.add(Customer("Tomorrow", id="c-other", created_at=at.replace(year=2020) + DAY))
        s.customers.add(Customer("Born", id="c-born", custom={"birthday": "1990-03-10"}))
        s.customers.add(Customer("Leap", id="c-leap", custom={"birthday": "2000-02-29"}))
        s.customers.add(Customer("No date", id="c-none"))
    rules = [
        Anniversaries(repository="customers", field="created_at"),
        Anniversaries(repository="customers", field="custom.birthday"),
    ]
    result = crm.run_due(rules, now=NOW)
    got = {(e.entity_id, e.field): e for e in _fired(crm, DateAnniversary)}
    assert sorted(got) == [("c-2024", "created_at"), ("c-born", "custom.birthday")]
    assert got[("c-2024", "created_at")].years == 2 and got[("c-2024", "created_at")].date == "2024-03-10"
    assert got[("c-born", "custom.birthday")].years == 36 and got[("c-born", "custom.birthday")].entity == "customers"
    assert result.fired == 2
    assert crm.run_due(rules, now=NOW + dt.timedelta(hours=5)).fired == 0  # once a year
    feb28 = dt.datetime(2027, 2, 28, 9, tzinfo=dt.UTC)  # 2027 is a common year: the 29th comes on the 28th
    crm.run_due(rules, now=feb28)
    assert [e.years for e in _fired(crm, DateAnniversary) if e.entity_id == "c-leap"] == [27]
    assert crm.run_due(rules, now=NOW.replace(year=2027)).fired == 3  # next year: all three again


def test_events_reach_handlers(open_crm: OPEN) -> None:
    crm = _crm(open_crm)
    _customers(crm)
    seen: list[tuple[str | None, Any]] = []

    @crm.on(CustomerDormant)
    def dormant(event: Any) -> None:
        seen.append((event.entity_id, event.last_activity))

    crm.run_due([DormantCustomers(days=90)], now=NOW)
    crm.dispatch()
    assert sorted(i for i, _ in seen) == ["c-both-old", "c-never-old", "c-order-at-cut"]
    crm.run_due([DormantCustomers(days=90)], now=NOW)
    crm.dispatch()
    assert len(seen) == 3


def _all_rules() -> list[Any]:
    return [
        TaskDueSoon(within_hours=48),
        OverdueTasks(),
        DormantCustomers(days=90),
        StaleOpportunities(days=5),
        Anniversaries(repository="customers", field="created_at"),
    ]


def test_the_query_in_the_store_equals_the_streaming_fallback(open_crm: OPEN) -> None:
    crm = _crm(open_crm)
    _customers(crm)
    with crm.session() as s:
        s.tasks.add(Task("a", NOW - DAY, id="t1"))
        s.tasks.add(Task("b", NOW + DAY, id="t2"))
        s.opportunities.add(Opportunity("c-both-old", "x", Money(1, "USD"), id="o1", created_at=NOW - 10 * DAY))
        s.customers.add(Customer("Since 2023", id="c-2023", created_at=NOW.replace(year=2023, hour=23)))
    tx = crm.store.begin()
    try:
        assert isinstance(tx, DueQueries)
        for rule in _all_rules():
            params = rule.params()
            streamed = due_rows(rule.kind, NOW, params, lambda k: tx.iter(k, [], 1000))
            assert tx.due(rule.kind, NOW, **params) == streamed, rule.name
            assert streamed, rule.name
        assert tx.due("sla_breach", NOW) is None  # a kind the store does not know: the caller falls back
    finally:
        tx.rollback()

    # a store without the capability: run_due streams, with the same result
    class Plain:
        def __init__(self, tx: Any):
            self._tx = tx

        def __getattr__(self, name: str) -> Any:
            if name == "due":
                raise AttributeError(name)
            return getattr(self._tx, name)

    store = types.SimpleNamespace(begin=lambda: Plain(crm.store.begin()), close=lambda: None, url=crm.url)  # a port.Store
    plain = types.SimpleNamespace(store=store, outbox_on=True, security=crm.security)
    first = run_due(plain, _all_rules(), now=NOW)
    assert not isinstance(store.begin(), DueQueries)
    again = crm.run_due(_all_rules(), now=NOW)
    assert first.fired == first.found > 0 and (again.fired, again.already) == (0, first.found)


def test_each_rule_writes_the_row_of_its_event() -> None:
    times = [NOW - DAY, NOW.replace(microsecond=5)]
    values = {"dormant": [*times, None], "anniversary": [NOW.replace(year=2020), "2000-03-10"]}
    for rule in _all_rules():
        for value in values.get(rule.kind, times):
            assert rule.period(value, NOW) is not None
            key = "k" * 32
            assert rule.row("r1", value, key, NOW) == rule.event("r1", value, key, NOW).to_row(), rule.name


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: DormantCustomers(days=0), "days"),
        (lambda: DormantCustomers(days=True), "days"),
        (lambda: DormantCustomers(days="90"), "days"),
        (lambda: StaleOpportunities(days=10**9), "days"),
        (lambda: TaskDueSoon(within_hours=0), "within_hours"),
        (lambda: TaskDueSoon(within_hours=float("nan")), "within_hours"),
        (lambda: Anniversaries(repository="people", field="created_at"), "repository"),
        (lambda: Anniversaries(repository="customers", field="name"), "field"),
        (lambda: Anniversaries(repository="customers", field="custom.Bad Key"), "field"),
        (lambda: OverdueTasks(name="Has Spaces"), "name"),
        (lambda: OverdueTasks(name="x" * 65), "name"),
    ],
)
def test_bad_rule_arguments_name_the_field(make: Callable[[], Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        make()
    assert [e.field for e in err.value.errors] == [field]


def test_bad_run_due_arguments(open_crm: OPEN) -> None:
    crm = _crm(open_crm)
    cases: list[tuple[Callable[[], Any], str]] = [
        (lambda: crm.run_due([], now=NOW), "rules"),
        (lambda: crm.run_due(OverdueTasks(), now=NOW), "rules"),
        (lambda: crm.run_due(["overdue"], now=NOW), "rules[0]"),
        (lambda: crm.run_due([OverdueTasks(), OverdueTasks()], now=NOW), "rules[1].name"),
        (lambda: crm.run_due([OverdueTasks()], now=dt.datetime(2026, 1, 1)), "now"),
        (lambda: crm.run_due([OverdueTasks()], now="2026-01-01"), "now"),
        (lambda: crm.run_due([OverdueTasks()], now=NOW, chunk=0), "chunk"),
    ]
    for call, field in cases:
        with pytest.raises(ValidationError) as err:
            call()
        assert err.value.errors[0].field == field
    two = [DormantCustomers(days=30), DormantCustomers(days=90)]  # distinct default names
    assert [r.name for r in crm.run_due(two, now=NOW).rules] == ["dormant_customers:30d", "dormant_customers:90d"]


def test_run_due_needs_an_outbox(open_crm: OPEN) -> None:
    crm = open_crm()
    with pytest.raises(CRMError, match="outbox"):
        crm.run_due([OverdueTasks()], now=NOW)
