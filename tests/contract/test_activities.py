"""Behaviour events (``s.activities``) on every adapter: stored in bulk and filtered, the contact checked to
be the customer's, scoped by the customer (another owner's events are not there, not even counted), erased
with the person (properties gone), exported with it, moved by a customer merge, named bad input."""

from __future__ import annotations

import datetime as dt

import pytest

import pycrm
from pycrm import Activity, Contact, Customer, User
from pycrm.errors import NotFound, PermissionDenied, ValidationError

T0 = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
REP = User("Rep", "rep@example.com", roles=["sales"], team_id="t1", id="u1")


class World:
    """Acme (u1's, contact Ann): 30 web visits, one a minute from T0, and 2 app opens; Beta (u2's): 5 visits."""

    def __init__(self, crm: pycrm.CRM):
        with crm.session() as s:
            self.acme = s.customers.add(Customer("Acme", owner_id="u1"))
            self.beta = s.customers.add(Customer("Beta", owner_id="u2"))
            a, b = str(self.acme.id), str(self.beta.id)
            self.ann = s.contacts.add(Contact(a, "Ann", "Lee"))
            visits = [
                Activity(a, "web_visit", T0 + dt.timedelta(minutes=i), {"path": f"/p{i % 3}", "seconds": i},
                         contact_id=str(self.ann.id), source="web", id=f"a{i}")
                for i in range(30)
            ]  # fmt: skip
            opens = [
                Activity(a, "app_open", T0 + dt.timedelta(hours=i), {"version": "2.1"}, source="ios", id=f"o{i}")
                for i in range(2)
            ]
            theirs = [Activity(b, "web_visit", T0, {"path": "/secret"}, id=f"b{i}") for i in range(5)]
            assert s.activities.add_many([*visits, *opens, *theirs]) == 37


def test_activities_are_stored_in_bulk_and_filtered(crm: pycrm.CRM) -> None:
    w = World(crm)
    with crm.session() as s:
        got = s.activities.get("a7")
        assert (got.kind, got.properties, got.contact_id, got.source) == (
            "web_visit", {"path": "/p1", "seconds": 7}, str(w.ann.id), "web"
        )  # fmt: skip
        assert s.activities.count({"kind": "web_visit"}) == 35
        assert s.activities.count({"customer_id": str(w.acme.id), "occurred_at": {"gte": T0 + dt.timedelta(minutes=20)}}) == 11
        assert [a.id for a in s.activities.find({"source": "ios"}, order_by="occurred_at")] == ["o0", "o1"]
        got.properties = {"path": "/p1", "seconds": 8, "bounced": False}
        s.activities.update(got)
    with crm.session() as s:
        assert s.activities.get("a7").properties == {"path": "/p1", "seconds": 8, "bounced": False}


@pytest.mark.parametrize(
    ("kwargs", "field", "code"),
    [
        ({"kind": "Web Visit"}, "kind", "invalid_slug"),
        ({"kind": ""}, "kind", "invalid_slug"),
        ({"properties": {"tags": ["a"]}}, "properties.tags", "type"),
        ({"properties": {"n": float("nan")}}, "properties.n", "not_finite"),
        ({"properties": {"1bad": 1}}, "properties", "invalid_key"),
        ({"properties": {f"k{i}": i for i in range(51)}}, "properties", "too_many"),
        ({"properties": {f"k{i}": "x" * 1000 for i in range(9)}}, "properties", "too_large"),
        ({"properties": [1]}, "properties", "type"),
        ({"source": "My Tracker"}, "source", "invalid_slug"),
    ],
)
def test_bad_input_is_named(kwargs: dict[str, object], field: str, code: str) -> None:
    args: dict[str, object] = {"customer_id": "c1", "kind": "web_visit", "occurred_at": T0, **kwargs}
    with pytest.raises(ValidationError) as e:
        Activity(**args)  # type: ignore[arg-type]
    assert (e.value.errors[0].field, e.value.errors[0].code) == (field, code)


def test_references_are_checked_and_nothing_is_half_written(crm: pycrm.CRM) -> None:
    w = World(crm)
    a, b = str(w.acme.id), str(w.beta.id)
    with crm.session() as s:
        with pytest.raises(ValidationError) as e:
            s.activities.add_many(
                [Activity(a, "web_visit", T0, id="n1"), Activity(b, "web_visit", T0, contact_id=str(w.ann.id), id="n2")]
            )
        assert [(x.field, x.code) for x in e.value.errors] == [("[1].contact_id", "other_customer")]
        with pytest.raises(ValidationError) as e:
            s.activities.add(Activity("no-such-customer", "web_visit", T0))
        assert e.value.errors[0].code == "not_found"
    with crm.session() as s:
        assert s.activities.count({"id": {"in": ["n1", "n2"]}}) == 0


def test_another_owners_activities_are_invisible_and_not_counted(crm: pycrm.CRM) -> None:
    w = World(crm)
    with crm.session() as s:
        s.users.add(REP)
    with crm.session(actor=REP) as s:
        assert s.activities.count() == 32
        assert s.activities.count({"kind": "web_visit"}) == 30
        assert s.activities.find({"customer_id": str(w.beta.id)}) == []
        with pytest.raises(NotFound):
            s.activities.get("b0")
        with pytest.raises((PermissionDenied, ValidationError, NotFound)):
            s.activities.add(Activity(str(w.beta.id), "web_visit", T0))
        s.activities.add(Activity(str(w.acme.id), "web_visit", T0, {"path": "/mine"}))
        assert s.activities.count() == 33


def test_erased_person_takes_its_activities_properties(crm: pycrm.CRM) -> None:
    w = World(crm)
    with crm.session() as s:
        exported = s.personal.export(str(w.acme.id))
        assert len(exported["activities"]) == 32
        assert {a["properties"].get("path") for a in exported["activities"]} >= {"/p0", "/p1", "/p2"}
        counts = s.personal.erase(str(w.acme.id))
        assert counts["activities"] == 32
    with crm.session() as s:
        mine = s.activities.find({"customer_id": str(w.acme.id)})
        assert len(mine) == 32 and all(a.properties == {} for a in mine)  # kinds and times stay for the counts
        assert s.activities.get("b0").properties == {"path": "/secret"}


def test_erasing_a_contact_erases_its_activities_properties(crm: pycrm.CRM) -> None:
    w = World(crm)
    with crm.session() as s:
        assert s.personal.erase(str(w.ann.id))["activities"] == 30
    with crm.session() as s:
        assert s.activities.get("a3").properties == {}
        assert s.activities.get("o0").properties == {"version": "2.1"}  # not Ann's


def test_a_customer_merge_moves_the_activities_and_unmerge_moves_them_back(crm: pycrm.CRM) -> None:
    w = World(crm)
    a, b = str(w.acme.id), str(w.beta.id)
    with crm.session() as s:
        record = s.customers.merge(a, [b])
        assert s.activities.count({"customer_id": a}) == 37
        s.customers.unmerge(record.id)
    with crm.session() as s:
        assert s.activities.count({"customer_id": b}) == 5


def test_the_change_feed_carries_activities(crm: pycrm.CRM) -> None:
    World(crm)
    with crm.session() as s:
        events = [e for e in s.changes.since(0, limit=10_000) if e.entity == "activities"]
    assert len(events) == 37 and {e.op for e in events} == {"create"}
    assert {"kind", "occurred_at", "properties", "customer_id"} <= set(events[0].fields)


@pytest.mark.parametrize("by", ["kind", "customer", "day", "segment"])
def test_activity_counts_in_the_store_equal_the_pure_function(crm: pycrm.CRM, by: str) -> None:
    from pycrm import Money, Order
    from pycrm.analytics import activity_counts

    w = World(crm)
    end = T0 + dt.timedelta(days=1)
    with crm.session() as s:
        s.orders.add(Order(str(w.acme.id), T0 - dt.timedelta(days=3), Money("100", "EUR")))
        s.activities.add_many([Activity(str(w.beta.id), "web_visit", T0 - dt.timedelta(days=40 + i)) for i in range(3)])
    with crm.session() as s:
        got = s.analytics.activity_counts(by=by, days=30, as_of=end)
        segments = {sc.customer_id: sc.segment for sc in s.analytics.rfm(as_of=end)}
        every = s.activities.find()
    want = activity_counts(every, by=by, since=end - dt.timedelta(days=30), until=end, segments=segments)
    assert got == want and sum(r.activities for r in got) == 37  # the three older visits left out
    if by == "kind":
        assert [(r.key, r.activities) for r in got] == [("app_open", 2), ("web_visit", 35)]
    if by == "day":
        assert [(r.key, r.activities) for r in got] == [(T0.date(), 37)]
    if by == "segment":
        assert {r.key: r.activities for r in got}[segments[str(w.acme.id)]] == 32
        assert {r.key: r.activities for r in got}[None] == 5  # Beta has no orders, so no segment


def test_activity_counts_are_scoped_and_check_their_arguments(crm: pycrm.CRM) -> None:
    w = World(crm)
    with crm.session() as s:
        s.users.add(REP)
    end = T0 + dt.timedelta(days=1)
    with crm.session(actor=REP) as s:
        rows = s.analytics.activity_counts(by="customer", kind="web_visit", since=T0, as_of=end)
        assert [(r.key, r.activities) for r in rows] == [(str(w.acme.id), 30)]  # Beta's five are not counted
        for kwargs, field in (
            ({"by": "week"}, "by"),
            ({"days": 0}, "days"),
            ({"days": 3, "since": T0}, "days"),
            ({"where": {"kind": "x"}, "kind": "y"}, "where.kind"),
        ):
            with pytest.raises(ValidationError) as e:
                s.analytics.activity_counts(as_of=end, **kwargs)  # type: ignore[arg-type]
            assert e.value.errors[0].field == field
