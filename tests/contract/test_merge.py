"""Merge and unmerge on every adapter: survivorship, re-pointed links, exact undo, nothing half-merged."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

import pycrm
from pycrm import (
    Contact,
    Customer,
    Interaction,
    Money,
    NotFound,
    Opportunity,
    Order,
    Survey,
    Task,
    Ticket,
    ValidationError,
)
from pycrm.dedup._merge import MergeRecord
from pycrm.domain._codec import to_data

UTC = dt.UTC
T0 = dt.datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
REPOS = ("customers", "contacts", "opportunities", "tickets", "interactions", "orders", "tasks", "surveys")


class Boom(Exception):
    pass


def _seed(crm: pycrm.CRM) -> dict[str, Any]:
    """A survivor and two duplicates, each with one record of every kind pointing at it."""
    with crm.session() as s:
        keep = s.customers.add(
            Customer("Acme Ltd", emails=["sales@acme.com"], phones=["+86 138 0013 8000"], tags={"vip"}, custom={"tier": "gold"})
        )
        d1 = s.customers.add(
            Customer(
                "ACME LIMITED",
                emails=["info@acme.com", "sales@acme.com"],
                country="CN",
                category="Manufacturing",
                tags={"export"},
                custom={"tier": "silver", "seats": 5},
            )
        )
        d2 = s.customers.add(Customer("Acme Co., Ltd. (Shanghai branch)", phones=["+86 21 3406 4888"]))
        for c in (keep, d1, d2):
            s.contacts.add(Contact(c.id, f"Contact of {c.name}"))
            s.opportunities.add(Opportunity(c.id, f"Deal {c.name}", Money("100.00", "CNY")))
            s.tickets.add(Ticket(c.id, f"Ticket {c.name}"))
            s.interactions.add(Interaction(c.id, "call", T0))
            s.orders.add(Order(c.id, T0, Money("50.00", "CNY")))
            s.tasks.add(Task(f"Follow up {c.name}", T0, related_id=c.id))
            s.surveys.add(Survey(c.id, "csat", T0, score=4, comment=f"fine {c.name}", answered_at=T0))
    return {"keep": keep.id, "d1": d1.id, "d2": d2.id}


def _snapshot(crm: pycrm.CRM, *, bookkeeping: bool = True) -> dict[str, dict[str, Any]]:
    out = {}
    with crm.session() as s:
        for repo in REPOS:
            for e in getattr(s, repo).iter():
                data = to_data(e)
                if not bookkeeping:
                    data.pop("version")
                    data.pop("updated_at")
                out[f"{repo}/{e.id}"] = data
    return out


def test_merge_fills_the_survivor_repoints_children_and_removes_duplicates(crm: pycrm.CRM) -> None:
    ids = _seed(crm)
    with crm.session() as s:
        record = s.customers.merge(ids["keep"], [ids["d1"], ids["d2"]])
    assert isinstance(record, MergeRecord)
    assert record.survivor_id == ids["keep"] and record.duplicate_ids == (ids["d1"], ids["d2"])
    assert len(record.relinked) == 14  # seven kinds x two duplicates
    with crm.session() as s:
        c = s.customers.get(ids["keep"])
        assert c.name == "Acme Ltd"  # primary: the survivor's own value
        assert [e.value for e in c.emails] == ["sales@acme.com", "info@acme.com"]  # union, survivor first
        assert [p.e164 for p in c.phones] == ["+8613800138000", "+862134064888"]
        assert c.country == "CN" and c.category == "Manufacturing"  # empty on the survivor: taken from d1
        assert c.tags == {"vip", "export"}
        assert c.custom == {"tier": "gold", "seats": 5}  # the survivor wins per key
        assert s.customers.count() == 1
        for repo in REPOS[1:]:
            field = "related_id" if repo == "tasks" else "customer_id"
            assert {getattr(e, field) for e in getattr(s, repo).iter()} == {ids["keep"]}, repo
            assert getattr(s, repo).count() == 3
        with pytest.raises(NotFound, match="merged into"):
            s.customers.get(ids["d1"])
        assert [m.id for m in s.customers.merges()] == [record.id]
        assert s.customers.find({"emails": "info@acme.com"})[0].id == ids["keep"]  # indexes follow


def test_unmerge_restores_every_record_and_link_exactly(crm: pycrm.CRM) -> None:
    ids = _seed(crm)
    before = _snapshot(crm)
    with crm.session() as s:
        record = s.customers.merge(ids["keep"], [ids["d1"], ids["d2"]])
    with crm.session() as s:
        undone = s.customers.unmerge(record.id)
    assert undone.undone_at is not None
    after = _snapshot(crm)
    assert after.keys() == before.keys()
    for key in (f"customers/{ids['d1']}", f"customers/{ids['d2']}"):
        assert after[key] == before[key]  # the duplicates come back verbatim, version and times included
    for key, data in after.items():
        old = dict(before[key])
        for name in ("version", "updated_at"):
            old.pop(name)
            data.pop(name)
        assert data == old, key
    with crm.session() as s:
        assert s.customers.find({"emails": "info@acme.com"})[0].id == ids["d1"]
        assert s.customers.merges()[0].undone_at is not None


def test_unmerge_keeps_later_edits_and_later_children(crm: pycrm.CRM) -> None:
    ids = _seed(crm)
    with crm.session() as s:
        record = s.customers.merge(ids["keep"], [ids["d1"]])
    with crm.session() as s:
        c = s.customers.get(ids["keep"])
        c.status = "active"  # edited after the merge
        c.country = "HK"  # a field the merge filled, edited again afterwards
        s.customers.update(c)
        late = s.orders.add(Order(ids["keep"], T0, Money("1.00", "CNY")))
    with crm.session() as s:
        s.customers.unmerge(record.id)
    with crm.session() as s:
        c = s.customers.get(ids["keep"])
        assert c.status == "active" and c.country == "HK"
        assert [e.value for e in c.emails] == ["sales@acme.com"]  # untouched since the merge: restored
        assert c.tags == {"vip"}
        assert s.orders.get(late.id).customer_id == ids["keep"]
        assert s.orders.count({"customer_id": ids["d1"]}) == 1


def test_rules_choose_per_field(crm: pycrm.CRM) -> None:
    ids = _seed(crm)
    with crm.session() as s:
        record = s.customers.merge(ids["keep"], [ids["d1"], ids["d2"]], rules={"name": "most_complete", "emails": "primary"})
        assert record.rules["name"] == "most_complete" and record.rules["phones"] == "union"
    with crm.session() as s:
        c = s.customers.get(ids["keep"])
        assert c.name == "Acme Co., Ltd. (Shanghai branch)"
        assert [e.value for e in c.emails] == ["sales@acme.com"]


def test_most_recent_takes_the_last_updated_value(crm: pycrm.CRM) -> None:
    ids = _seed(crm)
    with crm.session() as s:
        d2 = s.customers.get(ids["d2"])
        d2.category = "Retail"
        s.customers.update(d2)  # d2 is now the most recently updated record with a category
    with crm.session() as s:
        s.customers.merge(ids["keep"], [ids["d1"], ids["d2"]], rules={"category": "most_recent"})
        assert s.customers.get(ids["keep"]).category == "Retail"


def test_a_failure_inside_a_merge_leaves_nothing_half_merged(crm: pycrm.CRM, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = _seed(crm)
    before = _snapshot(crm)

    def boom(self: MergeRecord) -> dict[str, Any]:
        raise Boom  # after the children were re-pointed, the duplicates deleted and the survivor updated

    with crm.session() as s:
        with monkeypatch.context() as m:
            m.setattr(MergeRecord, "to_data", boom)
            with pytest.raises(Boom):
                s.customers.merge(ids["keep"], [ids["d1"], ids["d2"]])
        assert s.customers.count() == 3  # the session goes on, with nothing of the merge in it
        s.customers.add(Customer("Written after the failure"))
    after = _snapshot(crm)
    assert {k: v for k, v in after.items() if v.get("name") != "Written after the failure"} == before


def test_merge_and_unmerge_refuse_bad_requests(crm: pycrm.CRM) -> None:
    ids = _seed(crm)
    with crm.session() as s:
        with pytest.raises(ValidationError, match="itself") as e:
            s.customers.merge(ids["keep"], [ids["keep"]])
        assert e.value.errors[0].field == "duplicate_ids[0]"
        with pytest.raises(ValidationError, match="at least one"):
            s.customers.merge(ids["keep"], [])
        with pytest.raises(ValidationError, match="twice"):
            s.customers.merge(ids["keep"], [ids["d1"], ids["d1"]])
        with pytest.raises(ValidationError) as e:
            s.customers.merge(ids["keep"], [ids["d1"]], rules={"nickname": "union", "name": "loudest"})
        assert [x.field for x in e.value.errors] == ["rules.nickname", "rules.name"]
        with pytest.raises(NotFound):
            s.customers.merge(ids["keep"], ["no-such-id"])
        with pytest.raises(ValidationError, match="not an id"):
            s.customers.merge(ids["keep"], [42])  # type: ignore[list-item]
        record = s.customers.merge(ids["keep"], [ids["d1"]])
        with pytest.raises(ValidationError, match="was merged into") as e:
            s.customers.merge(ids["d2"], [ids["d1"]])  # a record already merged away
        assert e.value.errors[0].code == "merged_away"
        with pytest.raises(ValidationError, match="was merged into"):
            s.customers.merge(ids["d1"], [ids["d2"]])  # ... nor can it survive
        with pytest.raises(NotFound):
            s.customers.unmerge("0" * 32)
        with pytest.raises(ValidationError, match="not a merge id"):
            s.customers.unmerge("")
        with pytest.raises(ValidationError, match="merged customers"):
            s.contacts.unmerge(record.id)
        s.customers.unmerge(record.id)
        with pytest.raises(ValidationError, match="was undone"):
            s.customers.unmerge(record.id)
        s.customers.merge(ids["d2"], [ids["d1"]])  # after an unmerge the record can be merged again
