"""Domain events, the transactional outbox and dispatch, on every adapter."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

import pycrm
from pycrm import Customer, Money, Opportunity, Task, Ticket, User
from pycrm.automation import (
    Assigned,
    Created,
    CustomerCreated,
    CustomerUpdated,
    CustomEvent,
    DealWon,
    Event,
    OpportunityUpdated,
    Retry,
    StageChanged,
    TaskCompleted,
    TicketStatusChanged,
    Updated,
)
from pycrm.errors import CRMError, NotFound, ValidationError
from pycrm.storage.port import Outbox

#: After every event a test writes (events are due when written).
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=1)
REP = User("Rep", email="rep@example.com", roles=["sales"], id="u1", team_id="t1")


@pytest.fixture
def crm(open_crm: Callable[..., pycrm.CRM]) -> pycrm.CRM:
    return open_crm(outbox=True)


def _names(crm: pycrm.CRM) -> list[str]:
    return [e.name for e in crm.outbox.entries()]


def test_each_write_raises_its_events_with_actor_time_and_key(crm: pycrm.CRM) -> None:
    with crm.session(actor=REP) as s:
        c = s.customers.add(Customer("Acme", owner_id="u1", team_id="t1"))
        o = s.opportunities.add(Opportunity(str(c.id), "Deal", Money(100, "USD"), owner_id="u1"))
        o.move_to("proposal")
        s.opportunities.update(o)
        o.win()
        s.opportunities.update(o)
    entries = crm.outbox.entries()
    assert [e.name for e in entries] == [
        "CustomerCreated",
        "OpportunityCreated",
        "OpportunityUpdated",
        "StageChanged",
        "OpportunityUpdated",
        "StageChanged",
        "DealWon",
    ]
    assert [e.seq for e in entries] == sorted(e.seq for e in entries)
    assert len({e.key for e in entries}) == len(entries)
    events = [e.event for e in entries]
    assert all(isinstance(e, Event) and e.actor_id == "u1" and e.at.tzinfo is not None for e in events)
    moved = [e for e in events if isinstance(e, StageChanged)]
    assert [(m.from_stage, m.to_stage) for m in moved] == [("prospecting", "proposal"), ("proposal", "closed_won")]
    assert isinstance(events[-1], DealWon) and events[-1].entity_id == o.id and events[-1].entity == "opportunities"
    assert "stage" in events[2].fields  # type: ignore[attr-defined]
    assert all(e.state == "pending" and e.attempts == 0 for e in entries)


def test_tickets_tasks_and_owners_raise_what_they_mean(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        c = s.customers.add(Customer("Acme", owner_id="u1"))
        t = s.tickets.add(Ticket(str(c.id), "Broken"))
        task = s.tasks.add(Task("Call", NOW, assignee_id="u1"))
        t.move_to("open")
        s.tickets.update(t)
        task.done = True
        s.tasks.update(task)
        c.owner_id = "u2"
        s.customers.update(c)
    events = [e.event for e in crm.outbox.entries()]
    status = [e for e in events if isinstance(e, TicketStatusChanged)]
    assert [(e.from_status, e.to_status) for e in status] == [("new", "open")]
    assert [e.entity_id for e in events if isinstance(e, TaskCompleted)] == [task.id]
    assigned = [e for e in events if isinstance(e, Assigned)]
    assert [(e.entity, e.field, e.from_user, e.to_user) for e in assigned] == [("customers", "owner_id", "u1", "u2")]


def test_events_hold_ids_and_names_never_values(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        c = s.customers.add(Customer("SECRET Name", emails=["secret@example.com"], custom={"note": "SECRET"}))
        c.name = "SECRET Renamed"
        s.customers.update(c)
    text = repr([(e.event, e.event.to_json() if e.event else None) for e in crm.outbox.entries()])
    assert "SECRET" not in text and "secret@" not in text
    assert _names(crm) == ["CustomerCreated", "CustomerUpdated"]


def test_events_are_written_with_the_change_or_not_at_all(crm: pycrm.CRM) -> None:
    with pytest.raises(RuntimeError), crm.session() as s:
        s.customers.add(Customer("Rolled back"))
        raise RuntimeError("the unit of work fails")
    with crm.session() as s:
        s.customers.add(Customer("Kept"))
        with pytest.raises(ValidationError):  # a failed bulk insert drops its rows and its events
            s.customers.add_many([Customer("Half"), Customer("")])
    assert _names(crm) == ["CustomerCreated"]
    with crm.session() as s:
        assert [c.name for c in s.customers.find()] == ["Kept"]


def test_bulk_writes_raise_one_event_per_record(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        assert s.customers.add_many([Customer(f"C{i}") for i in range(30)]) == 30
        ids = {str(c.id) for c in s.customers.find()}
    entries = crm.outbox.entries()
    assert {e.event.entity_id for e in entries if isinstance(e.event, CustomerCreated)} == ids
    assert len(entries) == 30


def test_a_store_without_the_outbox_writes_none(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm()
    with crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        with pytest.raises(CRMError, match="outbox"):
            s.emit(CustomEvent(name="x", entity="customers", entity_id=str(c.id)))
    assert crm.outbox.counts() == {"pending": 0, "done": 0, "dead": 0}
    assert crm.dispatch().delivered == 0


def test_dispatch_delivers_each_event_once_in_order(crm: pycrm.CRM) -> None:
    got: list[tuple[str, str | None]] = []
    crm.on(Created, Updated, name="all")(lambda e: got.append((e.name, e.entity_id)))
    crm.on(DealWon, name="won")(lambda e: got.append(("won!", e.entity_id)))
    with crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        o = s.opportunities.add(Opportunity(str(c.id), "Deal", Money(1, "USD")))
        o.win()
        s.opportunities.update(o)
    result = crm.dispatch(now=NOW + dt.timedelta(days=1))
    assert (result.delivered, result.retrying, result.dead, result.calls) == (5, 0, 0, 4)
    assert got == [("CustomerCreated", c.id), ("OpportunityCreated", o.id), ("OpportunityUpdated", o.id), ("won!", o.id)]
    assert crm.dispatch().delivered == 0  # nothing twice
    assert crm.outbox.counts() == {"pending": 0, "done": 5, "dead": 0}
    done = crm.outbox.entries("done")
    assert all(e.done_at is not None for e in done)
    assert [e.delivered for e in done][-1] == ("won",)


def test_a_failing_handler_is_retried_with_backoff_then_dead_then_replayed(crm: pycrm.CRM) -> None:
    calls: dict[str, int] = {"good": 0, "bad": 0}
    fail = {"on": True}

    def good(e: Event) -> None:
        calls["good"] += 1

    def bad(e: Event) -> None:
        calls["bad"] += 1
        if fail["on"]:
            raise ValueError("target down")

    crm.handlers.add(good, CustomerCreated, name="good")
    crm.handlers.add(bad, CustomerCreated, name="bad")
    with crm.session() as s:
        s.customers.add(Customer("Acme"))
    retry = Retry(attempts=3, base=60)
    first = crm.dispatch(now=NOW, retry=retry)
    assert (first.delivered, first.retrying, first.failures) == (0, 1, 1)
    [entry] = crm.outbox.entries("pending")
    assert entry.attempts == 1 and entry.next_at == NOW + dt.timedelta(seconds=60)
    assert entry.delivered == ("good",) and entry.error is not None and "bad: ValueError: target down" in entry.error
    assert crm.dispatch(now=NOW + dt.timedelta(seconds=59), retry=retry).calls == 0  # not due yet
    crm.dispatch(now=NOW + dt.timedelta(seconds=60), retry=retry)
    [entry] = crm.outbox.entries("pending")
    assert entry.attempts == 2 and entry.next_at == NOW + dt.timedelta(seconds=180)  # 60 s, then 120 s
    last = crm.dispatch(now=NOW + dt.timedelta(hours=1), retry=retry)
    assert last.dead == 1
    assert calls == {"good": 1, "bad": 3}  # the handler that took it is not called again
    [dead] = crm.outbox.dead()
    assert dead.attempts == 3 and dead.state == "dead"
    fail["on"] = False
    assert crm.outbox.replay([dead.seq], now=NOW + dt.timedelta(hours=2)) == 1
    assert crm.dispatch(now=NOW + dt.timedelta(hours=2), retry=retry).delivered == 1
    assert calls == {"good": 1, "bad": 4}
    assert crm.outbox.counts() == {"pending": 0, "done": 1, "dead": 0}


def test_a_records_later_events_wait_for_its_failed_one(crm: pycrm.CRM) -> None:
    seen: list[str] = []
    broken = {"acme": True}

    def handler(e: Event) -> None:
        if e.entity_id == ids["acme"] and isinstance(e, CustomerCreated) and broken["acme"]:
            raise RuntimeError("no")
        seen.append(f"{e.name}:{names[str(e.entity_id)]}")

    crm.handlers.add(handler, CustomerCreated, CustomerUpdated, name="h")
    with crm.session() as s:
        a = s.customers.add(Customer("Acme"))
        b = s.customers.add(Customer("Beta"))
    ids = {"acme": str(a.id)}
    names = {str(a.id): "acme", str(b.id): "beta"}
    with crm.session() as s:
        for c in (a, b):
            c.category = "x"
            s.customers.update(c)
    retry = Retry(attempts=2, base=10)
    crm.dispatch(now=NOW, retry=retry)
    assert seen == ["CustomerCreated:beta", "CustomerUpdated:beta"]  # acme's update waits behind its create
    crm.dispatch(now=NOW + dt.timedelta(seconds=5), retry=retry)
    assert seen == ["CustomerCreated:beta", "CustomerUpdated:beta"]
    crm.dispatch(now=NOW + dt.timedelta(seconds=10), retry=retry)  # the create dies: the update goes on alone
    assert seen[-1] == "CustomerUpdated:acme"
    assert [e.name for e in crm.outbox.dead()] == ["CustomerCreated"]
    broken["acme"] = False
    crm.outbox.replay()
    crm.dispatch(now=NOW + dt.timedelta(seconds=20), retry=retry)
    assert seen[-1] == "CustomerCreated:acme"


def test_a_handler_that_raises_anything_leaves_the_store_consistent(crm: pycrm.CRM) -> None:
    def writes_then_fails(e: Event) -> None:
        with crm.session() as s:
            s.customers.add(Customer("Written by the handler"))
            raise KeyError("boom")

    crm.handlers.add(writes_then_fails, CustomerCreated, name="w")
    with crm.session() as s:
        s.customers.add(Customer("Acme"))
    result = crm.dispatch(now=NOW, retry=Retry(attempts=1))
    assert result.dead == 1
    [dead] = crm.outbox.dead()
    assert dead.error is not None and "KeyError" in dead.error
    with crm.session() as s:
        assert [c.name for c in s.customers.find()] == ["Acme"]


def test_emit_raises_a_custom_event_about_a_record_the_actor_may_update(crm: pycrm.CRM) -> None:
    got: list[Any] = []
    crm.handlers.add(lambda e: got.append((e.name, e.payload, e.actor_id)), "vip.welcome", name="vip")
    with crm.session() as s:
        mine = s.customers.add(Customer("Mine", owner_id="u1", team_id="t1"))
        theirs = s.customers.add(Customer("Theirs", owner_id="u2", team_id="t2"))
    with crm.session(actor=REP) as s:
        s.emit(CustomEvent(name="vip.welcome", data={"tier": "gold"}, entity="customers", entity_id=str(mine.id)))
        with pytest.raises(NotFound) as caught:
            s.emit(CustomEvent(name="vip.welcome", entity="customers", entity_id=str(theirs.id)))
        with pytest.raises(NotFound) as missing:
            s.emit(CustomEvent(name="vip.welcome", entity="customers", entity_id="nope"))
        assert str(caught.value).replace(str(theirs.id), "X") == str(missing.value).replace("nope", "X")
        with pytest.raises(ValidationError):
            s.emit(CustomerCreated(entity_id=str(mine.id)))  # typed events come from writes only
    crm.dispatch()
    assert got == [("vip.welcome", {"tier": "gold"}, "u1")]


def test_an_erasure_erases_the_custom_events_about_the_person(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        c = s.customers.add(Customer("Jane Roe", kind="person"))
        s.emit(CustomEvent(name="note", data={"said": "SECRET words"}, entity="customers", entity_id=str(c.id)))
    crm.dispatch()
    with crm.session() as s:
        s.emit(CustomEvent(name="note", data={"said": "SECRET again"}, entity="customers", entity_id=str(c.id)))
        s.personal.erase(str(c.id))
    entries = crm.outbox.entries()
    assert "SECRET" not in repr([e.event for e in entries])
    assert [e.name for e in entries if e.name == "note"] == ["note", "note"]  # the events stay, their data goes


def test_an_actor_reaches_no_outbox_operation(crm: pycrm.CRM) -> None:
    with crm.session(actor=REP) as s:
        tx = s.unit.transaction()
        assert not isinstance(tx, Outbox)
        for name in ("outbox_add", "outbox_claim", "outbox_settle", "outbox_list", "outbox_retry", "outbox_erase"):
            assert not hasattr(tx, name), name


def test_bad_arguments_are_named(crm: pycrm.CRM) -> None:
    for kw, field in (
        ({"batch": 0}, "batch"),
        ({"limit": -1}, "limit"),
        ({"lease": 0}, "lease"),
        ({"now": dt.datetime(2026, 1, 1)}, "now"),  # naive
    ):
        with pytest.raises(ValidationError) as caught:
            crm.dispatch(**kw)
        assert field in str(caught.value)
    with pytest.raises(ValidationError, match="attempts"):
        Retry(attempts=0)
    with pytest.raises(ValidationError, match="types"):
        crm.on(42)(print)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="name"):
        crm.on("Not A Name!")(print)
    crm.on(OpportunityUpdated, name="once")(print)
    with pytest.raises(ValidationError, match="is registered"):
        crm.on(OpportunityUpdated, name="once")(print)
    with pytest.raises(ValidationError, match="state"):
        crm.outbox.entries("gone")
    with pytest.raises(ValidationError):
        crm.outbox.replay(["x"])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="data"):
        CustomEvent(name="big", data={"x": "y" * 20_000})
    with pytest.raises(ValidationError, match="name"):
        CustomEvent(name="Bad Name")


def test_imports_merges_and_archiving_raise_their_events(crm: pycrm.CRM, tmp_path: Any) -> None:
    import pycrm.io as pio

    path = tmp_path / "in.csv"
    path.write_text("name,emails\nAcme,a@acme.example\nAcme Ltd,a2@acme.example\nGlobex,g@globex.example\n", encoding="utf-8")
    assert pio.import_file(crm, path).created == 3
    assert _names(crm) == ["CustomerCreated"] * 3
    with crm.session() as s:
        a, b, _ = s.customers.find(order_by=["name"])
        s.customers.merge(str(a.id), str(b.id))
    merged = [e.event for e in crm.outbox.entries(after=3)]
    assert {(type(e).__name__, e.entity_id) for e in merged} >= {("CustomerUpdated", a.id), ("CustomerDeleted", b.id)}
    last = crm.outbox.entries()[-1].seq
    pio.archive(crm, [pio.older_than("customers", 1)], as_of=dt.datetime(2099, 1, 1, tzinfo=dt.UTC))
    archived = [e.event for e in crm.outbox.entries(after=last)]
    assert {type(e).__name__ for e in archived} == {"RecordArchived"} and len(archived) == 2


def test_the_rows_a_session_writes_are_the_events_derive_makes() -> None:
    from pycrm.domain._events import derive, derive_rows

    before = Opportunity("c1", "Deal", Money(1, "USD"), id="o1", owner_id="u1")
    after = Opportunity("c1", "Deal", Money(1, "USD"), id="o1", owner_id="u2")
    after.win()
    rows = derive_rows(Opportunity, "update", before, after, ("owner_id", "stage"), NOW, "u9")
    events = derive(Opportunity, "update", before, after, ("owner_id", "stage"), at=NOW, actor_id="u9")
    assert [e.name for e in events] == ["OpportunityUpdated", "StageChanged", "DealWon", "Assigned"]
    assert [{**r, "key": None} for r in rows] == [{**e.to_row(), "key": None} for e in events]
    for op in ("create", "delete", "archive", "unarchive"):
        [row] = derive_rows(Opportunity, op, None if op == "create" else before, after if op == "create" else None, (), NOW, None)
        [event] = derive(Opportunity, op, None if op == "create" else before, after if op == "create" else None, at=NOW)
        assert {**row, "key": None} == {**event.to_row(), "key": None}
