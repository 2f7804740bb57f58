"""Interactions that say what happened (duration, direction, channel, contact, deal, outcome) on every adapter:
stored and filtered, the contact and the deal checked to be the customer's, export and import, the change
feed, merges (of customers and of contacts), erasure, scoping and bad input."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import pycrm
from pycrm import Contact, Customer, Interaction, Money, Opportunity, User
from pycrm.errors import NotFound, ValidationError
from pycrm.io import export_file, import_file

T0 = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
REP = User("Rep", "rep@example.com", roles=["sales"], team_id="t1", id="u1")


class World:
    """Acme (u1's) with contacts Ann and Bo and the deal Big; Beta (u2's) with contact Cy and the deal Small.

    Calls with Acme: Ann about Big, inbound, 420 s, "demo booked"; Ann about Big, outbound, 60 s; Bo about Big,
    inbound, 900 s; Ann, no deal, inbound, 1200 s (an e-mail); and one with Beta: Cy about Small, inbound, 600 s."""

    def __init__(self, crm: pycrm.CRM):
        with crm.session() as s:
            self.acme = s.customers.add(Customer("Acme", owner_id="u1"))
            self.beta = s.customers.add(Customer("Beta", owner_id="u2"))
            a, b = str(self.acme.id), str(self.beta.id)
            self.ann = s.contacts.add(Contact(a, "Ann", "Lee"))
            self.bo = s.contacts.add(Contact(a, "Bo", "Ma"))
            self.cy = s.contacts.add(Contact(b, "Cy", "Wu"))
            self.big = s.opportunities.add(Opportunity(a, "Big", Money("1000", "EUR"), owner_id="u1"))
            self.small = s.opportunities.add(Opportunity(b, "Small", Money("10", "EUR"), owner_id="u2"))
            ann, bo, cy, big, small = (str(x.id) for x in (self.ann, self.bo, self.cy, self.big, self.small))
            rows = [
                Interaction(a, "call", T0, "Demo", duration=420, direction="inbound", channel="phone",
                            contact_id=ann, opportunity_id=big, outcome="demo booked", id="i1"),
                Interaction(a, "call", T0 + dt.timedelta(days=1), duration=dt.timedelta(minutes=1), direction="outbound",
                            channel="phone", contact_id=ann, opportunity_id=big, id="i2"),
                Interaction(a, "call", T0 + dt.timedelta(days=2), duration=900, direction="inbound", channel="phone",
                            contact_id=bo, opportunity_id=big, id="i3"),
                Interaction(a, "email", T0 + dt.timedelta(days=3), duration=1200, direction="inbound", channel="email",
                            contact_id=ann, id="i4"),
                Interaction(b, "call", T0, duration=600, direction="inbound", channel="phone", contact_id=cy,
                            opportunity_id=small, outcome="no answer", id="i5", user_id="u2"),
            ]  # fmt: skip
            s.interactions.add_many(rows)


def ids(rows: list[Interaction]) -> list[str]:
    return sorted(str(r.id) for r in rows)


def test_the_new_fields_are_stored_and_read_back(crm: pycrm.CRM) -> None:
    w = World(crm)
    with crm.session() as s:
        got = s.interactions.get("i1")
        assert (got.duration, got.direction, got.channel, got.contact_id, got.opportunity_id, got.outcome) == (
            420, "inbound", "phone", str(w.ann.id), str(w.big.id), "demo booked"
        )  # fmt: skip
        assert s.interactions.get("i2").duration == 60  # a timedelta is kept as whole seconds
        plain = s.interactions.add(Interaction(str(w.acme.id), "note", T0))
        again = s.interactions.get(str(plain.id))
        assert (again.duration, again.direction, again.channel, again.contact_id, again.opportunity_id, again.outcome) == (
            None, None, None, None, None, None
        )  # fmt: skip
        again.duration, again.outcome, again.contact_id = 30, "left a note", str(w.bo.id)
        s.interactions.update(again)
        assert s.interactions.get(str(plain.id)).outcome == "left a note"


def test_calls_with_this_decision_maker_about_this_deal(crm: pycrm.CRM) -> None:
    w = World(crm)
    ann, big = str(w.ann.id), str(w.big.id)
    with crm.session() as s:
        assert ids(s.interactions.find({"contact_id": ann, "opportunity_id": big})) == ["i1", "i2"]
        assert ids(s.interactions.find({"opportunity_id": big, "direction": "inbound", "duration": {"gte": 300}})) == [
            "i1",
            "i3",
        ]
        assert ids(s.interactions.find({"duration": {"gt": 600, "lte": 1200}})) == ["i3", "i4"]
        assert ids(s.interactions.find({"channel": "email"})) == ["i4"]
        assert ids(s.interactions.find({"opportunity_id": {"is_null": True}})) == ["i4"]
        assert ids(s.interactions.find({"outcome": {"startswith": "demo"}})) == ["i1"]
        assert s.interactions.count({"direction": "outbound"}) == 1


def test_the_contact_and_the_deal_must_be_the_customers(crm: pycrm.CRM) -> None:
    w = World(crm)
    acme, beta = str(w.acme.id), str(w.beta.id)
    with crm.session() as s:
        with pytest.raises(ValidationError) as e:
            s.interactions.add(Interaction(acme, "call", T0, contact_id=str(w.cy.id)))
        assert [(x.field, x.code) for x in e.value.errors] == [("contact_id", "other_customer")]
        with pytest.raises(ValidationError) as e:
            s.interactions.add(Interaction(beta, "call", T0, opportunity_id=str(w.big.id)))
        assert [(x.field, x.code) for x in e.value.errors] == [("opportunity_id", "other_customer")]
        with pytest.raises(ValidationError) as e:
            s.interactions.add(Interaction(acme, "call", T0, contact_id="no-such-contact"))
        assert [(x.field, x.code) for x in e.value.errors] == [("contact_id", "not_found")]
        with pytest.raises(ValidationError) as e:  # in a batch, the row is named; nothing is written
            s.interactions.add_many(
                [Interaction(acme, "call", T0, id="ok1"), Interaction(beta, "call", T0, contact_id=str(w.ann.id), id="bad")]
            )
        assert [(x.field, x.code) for x in e.value.errors] == [("[1].contact_id", "other_customer")]
        moved = s.interactions.get("i1")
        moved.customer_id = beta  # moved to another customer, its contact and deal would not follow
        with pytest.raises(ValidationError) as e:
            s.interactions.update(moved)
        assert {x.field for x in e.value.errors} <= {"contact_id", "opportunity_id"}
    with crm.session() as s:
        assert s.interactions.count({"id": {"in": ["ok1", "bad"]}}) == 0
        assert s.interactions.get("i1").customer_id == acme
        with pytest.raises(ValidationError) as e:  # a contact spoken to stays while its interactions do
            s.contacts.delete(str(w.bo.id))
        assert e.value.errors[0].code == "in_use"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("duration", -1, "negative"),
        ("duration", 1.5, "type"),
        ("duration", True, "type"),
        ("duration", "300", "type"),
        ("duration", dt.timedelta(seconds=1.5), "not_whole"),
        ("duration", 10**9, "too_large"),
        ("direction", "sideways", "invalid_choice"),
        ("channel", "pigeon", "invalid_choice"),
        ("outcome", "x" * 201, "too_long"),
        ("contact_id", 5, "type"),
    ],
)
def test_bad_values_are_named(field: str, value: object, code: str) -> None:
    with pytest.raises(ValidationError) as e:
        Interaction("c1", "call", T0, **{field: value})  # type: ignore[arg-type]
    assert [(x.field, x.code) for x in e.value.errors] == [(field, code)]


def test_an_actor_sees_and_links_only_its_own(crm: pycrm.CRM) -> None:
    w = World(crm)
    with crm.session() as s:
        s.users.add(REP)
    with crm.session(actor=REP) as s:
        # another owner's interactions are not there, by any of the new fields
        assert ids(s.interactions.find({"direction": "inbound"})) == ["i1", "i3", "i4"]
        assert s.interactions.find({"opportunity_id": str(w.small.id)}) == []
        assert s.interactions.count({"contact_id": str(w.cy.id)}) == 0
        with pytest.raises(NotFound):
            s.interactions.get("i5")
        # a contact of another owner's customer is "not there" rather than "another customer's"
        with pytest.raises(ValidationError) as e:
            s.interactions.add(Interaction(str(w.acme.id), "call", T0, contact_id=str(w.cy.id), user_id="u1"))
        assert [(x.field, x.code) for x in e.value.errors] == [("contact_id", "not_found")]
        mine = s.interactions.add(
            Interaction(str(w.acme.id), "call", T0, contact_id=str(w.bo.id), opportunity_id=str(w.big.id), user_id="u1")
        )
        assert s.interactions.get(str(mine.id)).contact_id == str(w.bo.id)


def test_the_change_feed_names_the_new_fields(crm: pycrm.CRM) -> None:
    World(crm)
    with crm.session() as s:
        start = s.changes.last_seq()
        got = s.interactions.get("i2")
        got.outcome, got.duration = "call back Friday", 75
        s.interactions.update(got)
    with crm.session() as s:  # the feed holds committed changes
        created = [e for e in s.changes.since(0, limit=10_000) if e.entity == "interactions" and e.id == "i1"]
        updated = [e for e in s.changes.since(start, limit=10_000) if e.entity == "interactions"]
    new = {"duration", "direction", "channel", "contact_id", "opportunity_id", "outcome"}
    assert [e.op for e in created] == ["create"] and new <= set(created[0].fields)
    assert [(e.id, e.op, sorted(e.fields)) for e in updated] == [("i2", "update", ["duration", "outcome"])]


def test_customer_merge_moves_the_links_and_contact_merge_repoints_them(crm: pycrm.CRM) -> None:
    w = World(crm)
    acme, ann, bo = str(w.acme.id), str(w.ann.id), str(w.bo.id)
    with crm.session() as s:
        record = s.contacts.merge(ann, [bo])  # Bo is Ann: the call with Bo was with Ann
        assert ids(s.interactions.find({"contact_id": ann})) == ["i1", "i2", "i3", "i4"]
        s.contacts.unmerge(record.id)
    with crm.session() as s:
        assert ids(s.interactions.find({"contact_id": bo})) == ["i3"]
        s.customers.merge(str(w.beta.id), [acme])  # Beta survives: Acme's calls, contacts and deals move with it
        moved = s.interactions.find({"opportunity_id": str(w.big.id)})
        assert {m.customer_id for m in moved} == {str(w.beta.id)}
        assert s.contacts.get(ann).customer_id == str(w.beta.id)


def test_erasure_removes_the_outcome_and_keeps_the_figures(crm: pycrm.CRM) -> None:
    w = World(crm)
    with crm.session() as s:
        s.personal.erase(str(w.acme.id))
    with crm.session() as s:
        got = s.interactions.get("i1")
        assert (got.subject, got.outcome) == ("[erased]", None)
        assert (got.duration, got.direction, got.channel) == (420, "inbound", "phone")
        assert s.interactions.get("i5").outcome == "no answer"  # Beta's stay


def test_erasing_a_contact_erases_what_was_said_with_it(crm: pycrm.CRM) -> None:
    w = World(crm)
    with crm.session() as s:
        counts = s.personal.erase(str(w.ann.id))
        assert counts["interactions"] == 3
    with crm.session() as s:
        assert [s.interactions.get(i).outcome for i in ("i1", "i3")] == [None, None]
        assert s.interactions.get("i1").subject == "[erased]"
        assert s.interactions.get("i3").subject == ""  # Bo's call is not Ann's


def test_export_and_import_carry_the_new_fields(crm: pycrm.CRM, tmp_path: Path) -> None:
    w = World(crm)
    out = tmp_path / "interactions.csv"
    assert export_file(crm, out, "interactions", where={"customer_id": str(w.acme.id)}) == 4
    header = out.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert {"duration", "direction", "channel", "contact_id", "opportunity_id", "outcome"} <= set(header)
    with crm.session() as s:
        for i in ("i1", "i2", "i3", "i4"):
            s.interactions.delete(i)
    report = import_file(crm, out, "interactions")
    assert report.created == 4, report
    with crm.session() as s:
        got = s.interactions.get("i1")
        assert (got.duration, got.direction, got.channel, got.contact_id, got.opportunity_id, got.outcome) == (
            420, "inbound", "phone", str(w.ann.id), str(w.big.id), "demo booked"
        )  # fmt: skip
        assert s.interactions.get("i4").opportunity_id is None
