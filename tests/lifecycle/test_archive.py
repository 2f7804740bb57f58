"""Archiving: rules move records out of live queries and reports, exactly back on request, on every adapter."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import pycrm
import pycrm.cli
from pycrm import Customer, Money, NotFound, Order, Task, Ticket, ValidationError
from pycrm.cli import main
from pycrm.domain import utcnow
from pycrm.io._archive import (
    archive,
    archived,
    customers_inactive,
    older_than,
    parse_rule,
    tasks_done,
    tickets_closed,
    unarchive,
)
from tests.lifecycle._data import fill, snapshot

LATER = utcnow() + dt.timedelta(days=1000)  # the day the rules run: everything stored today is old by then


def _store(crm: pycrm.CRM) -> str:
    """fill() plus one customer with a recent order (relative to LATER); returns its id."""
    fill(crm)
    with crm.session() as s:
        active = s.customers.add(Customer("Active Ltd"))
        s.orders.add(Order(str(active.id), LATER - dt.timedelta(days=5), Money("10.00", "CNY")))
    return str(active.id)


def test_customers_inactive_round_trip_is_exact(crm: pycrm.CRM) -> None:
    active = _store(crm)
    before = snapshot(crm)
    rules = [customers_inactive(730)]

    plan = archive(crm, rules, as_of=LATER, dry_run=True)
    moved = {"customers": 4, "contacts": 3, "opportunities": 3, "tickets": 3, "interactions": 3, "orders": 3}
    moved |= {"surveys": 3, "campaign_members": 3, "campaign_responses": 3, "activities": 3, "attachments": 3, "tasks": 3}
    assert plan.dry_run and plan.counts == moved
    assert active not in plan.moved["customers"]
    assert snapshot(crm) == before  # a dry run writes nothing

    done = archive(crm, rules, as_of=LATER)
    assert done.counts == moved and done.moved == plan.moved
    with crm.session() as s:
        assert [c.id for c in s.customers.find()] == [active]
        assert s.orders.count() == 1 and s.contacts.count() == 0 and s.tasks.count() == 0
        assert [r.customer_id for r in s.analytics.rfm(as_of=LATER.date())] == [active]
        gone = [c.id for c in archived(s, "customers")]
        assert sorted(gone) == sorted(plan.moved["customers"])
        assert len(list(archived(s, "customers", {"name": {"contains": "客户"}}))) == 3
        assert [o.amount for o in archived(s, "orders", {"amount": {"gte": 50}})] == [Money("99.95", "USD")] * 3
        assert list(archived(s, "customers", {"phones": "138 0013 8000"}))  # normalized like live filters
        with pytest.raises(ValidationError, match="no filterable field"):
            list(archived(s, "customers", {"nope": 1}))
        with pytest.raises(NotFound, match="no Customer"):
            s.customers.get(gone[0])

    back = unarchive(crm, "customers", plan.moved["customers"])
    assert back.counts == moved
    assert snapshot(crm) == before  # same ids, versions, timestamps and records streams


def test_tickets_and_tasks_rules_and_refusals(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        closed = Ticket(str(c.id), "old and closed")
        for status in ("open", "resolved", "closed"):
            closed.move_to(status)
        s.tickets.add_many([closed, Ticket(str(c.id), "still open")])
        follow_up = s.tasks.add(Task("follow up the ticket", LATER, related_id=str(closed.id)))
        s.tasks.add_many([Task("done", LATER, done=True), Task("not done", LATER)])
    before = snapshot(crm)
    result = archive(crm, [tickets_closed(365), tasks_done(90)], as_of=LATER)
    assert result.counts == {"tickets": 1, "tasks": 2}  # the closed ticket with its task, and the done task
    with crm.session() as s:
        assert [t.subject for t in s.tickets.find()] == ["still open"]
        assert sorted(t.title for t in s.tasks.find()) == ["not done"]
        assert archive(s, [tickets_closed(365)], as_of=LATER).total == 0  # nothing left to move
        with pytest.raises(ValidationError, match="unarchive that instead"):
            unarchive(s, "tasks", [str(follow_up.id)])
        with pytest.raises(NotFound):
            unarchive(s, "tickets", ["no-such-id"])
    unarchive(crm, "tickets", [str(closed.id)])
    done_task = next(t["id"] for t in before["tasks"] if t["title"] == "done")
    unarchive(crm, "tasks", [done_task])
    assert snapshot(crm) == before


def test_a_ticket_whose_customer_is_archived_cannot_come_back_alone(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        t = Ticket(str(c.id), "closed early")
        for status in ("open", "resolved", "closed"):
            t.move_to(status)
        s.tickets.add(t)
    archive(crm, [tickets_closed(10)], as_of=LATER)
    archive(crm, [customers_inactive(10)], as_of=LATER)
    with pytest.raises(ValidationError, match="which is not live"):
        unarchive(crm, "tickets", [str(t.id)])
    unarchive(crm, "customers", [str(c.id)])
    unarchive(crm, "tickets", [str(t.id)])
    with crm.session() as s:
        assert s.tickets.get(str(t.id)).subject == "closed early"


def test_generic_rule_and_bad_rules() -> None:
    crm = pycrm.open("memory://")
    with crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        s.interactions.add(pycrm.Interaction(str(c.id), "call", LATER - dt.timedelta(days=800), subject="old"))
        s.interactions.add(pycrm.Interaction(str(c.id), "email", LATER - dt.timedelta(days=10), subject="new"))
    rule = parse_rule("interactions.occurred_at:730")
    assert rule == older_than("interactions", 730, field="occurred_at")
    assert archive(crm, [rule], as_of=LATER).counts == {"interactions": 1}
    with crm.session() as s:
        assert [i.subject for i in s.interactions.find()] == ["new"]
        assert [i.subject for i in archived(s, "interactions", {"kind": "call"})] == ["old"]
    for bad in ("tickets-closed", "tickets-closed:-1", "widgets:30", "customers.name:30", "tasks-done:x"):
        with pytest.raises(ValidationError):
            parse_rule(bad)
    with pytest.raises(ValidationError, match="has no filterable field 'colour'"):
        older_than("tickets", 30, where={"colour": "red"})


@pytest.fixture
def _commands(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("archive", "unarchive"):
        monkeypatch.setitem(pycrm.cli.COMMANDS, name, "pycrm.io._archive_cli")


@pytest.mark.usefixtures("_commands")
def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "crm.db"
    with pycrm.open(f"sqlite:///{db}", default_region="CN") as crm:
        _store(crm)
        before = snapshot(crm)
    day = LATER.date().isoformat()
    assert main(["archive", str(db), "--rule", "customers-inactive:730", "--as-of", day, "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == (
        "pycrm archive: would archive 4 customers, 3 contacts, 3 opportunities, 3 tickets, 3 interactions, 3 orders, "
        "3 surveys, 3 campaign_members, 3 campaign_responses, 3 activities, 3 attachments, 3 tasks"
    )
    ids = [line.split()[1] for line in out.splitlines() if line.startswith("customers ")]
    assert len(ids) == 4 and err == ""
    assert main(["archive", str(db), "--rule", "customers-inactive:730", "--as-of", day]) == 0
    assert "archived 4 customers" in capsys.readouterr().out
    assert main(["unarchive", str(db), "customers", *ids]) == 0
    assert "unarchived 4 customers" in capsys.readouterr().out
    with pycrm.open(f"sqlite:///{db}") as crm:
        assert snapshot(crm) == before

    assert main(["archive", str(db), "--rule", "widgets:3"]) == 2
    assert capsys.readouterr().err.startswith("pycrm: error: --rule widgets:3: unknown rule 'widgets'")
    assert main(["archive", str(db), "--rule", "tasks-done:3", "--as-of", "soon"]) == 2
    assert "'soon' is not a date" in capsys.readouterr().err
    assert main(["unarchive", str(db), "customers", "nope"]) == 2
    assert capsys.readouterr().err == "pycrm: error: no archived Customer with id 'nope'\n"


def test_every_move_goes_through_the_session_journal(monkeypatch: pytest.MonkeyPatch) -> None:
    """The change feed and the audit trail hear of each archived and unarchived entity."""
    from pycrm.storage import Session

    heard: list[tuple[str, str, bool, bool]] = []

    def journal(self: Session, kind: type, op: str, before: object, after: object) -> None:
        heard.append((kind.__name__, op, before is not None, after is not None))

    monkeypatch.setattr(Session, "_journal", journal)
    crm = pycrm.open("memory://")
    with crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        s.orders.add(Order(str(c.id), LATER - dt.timedelta(days=900), Money("1.00", "EUR")))
    heard.clear()
    archive(crm, [customers_inactive(730)], as_of=LATER)
    assert sorted(heard) == [("Customer", "archive", True, False), ("Order", "archive", True, False)]
    heard.clear()
    unarchive(crm, "customers", [str(c.id)])
    assert heard == [("Customer", "unarchive", False, True), ("Order", "unarchive", False, True)]
