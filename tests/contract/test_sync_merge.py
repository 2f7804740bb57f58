"""Offline sync that merges: ``changes.apply`` with an ``Incoming.base`` merges field by field (three-way),
follows per-field rules where both sides changed a field, reports the rest as conflicts naming the fields,
stays idempotent and all-or-nothing, and keeps the gate: masked values read by a device are never written
back. On every adapter."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pycrm
import pycrm.io as pio
from pycrm import Customer, Incoming, PermissionDenied, User, ValidationError
from pycrm.domain import Permission, Role
from pycrm.domain._codec import to_data
from pycrm.security import FieldRules

CLERK_ROLE = Role("clerk", [Permission("customers", "*", "own")])
CLERK = User("Clerk", "clerk@example.com", roles=[CLERK_ROLE], id="u1")


def _add(crm: pycrm.CRM, **kw: Any) -> dict[str, Any]:
    with crm.session() as s:
        return to_data(s.customers.add(Customer("Acme", id="c1", tags=["a"], category="retail", **kw)))


def _server_edit(crm: pycrm.CRM, **changes: Any) -> None:
    with crm.session() as s:
        c = s.customers.get("c1")
        for k, v in changes.items():
            setattr(c, k, v)
        s.customers.update(c)


def _get(crm: pycrm.CRM) -> Customer:
    with crm.session() as s:
        return s.customers.get("c1")


def _send(base: dict[str, Any], **changes: Any) -> Incoming:
    return Incoming("customers", "c1", "upsert", base["version"] + 1, {**base, **changes}, base=base)


def test_changes_to_different_fields_merge_into_a_new_version(crm: pycrm.CRM) -> None:
    base = _add(crm)
    _server_edit(crm, category="wholesale")
    sent = _send(base, tags=["a", "vip"])
    with crm.session() as s:
        result = s.changes.apply([sent])
    assert result.applied == [("customers", "c1")] and not result.conflicts
    c = _get(crm)
    assert (c.version, sorted(c.tags), c.category) == (3, ["a", "vip"], "wholesale")
    with crm.session() as s:  # delivered again: nothing changes, nothing journaled
        cursor = s.changes.last_seq()
        assert s.changes.apply([sent]).unchanged == [("customers", "c1")]
        assert s.changes.since(cursor) == []
    assert _get(crm).version == 3


def test_the_same_change_on_both_sides_is_no_conflict_and_a_fast_forward_applies(crm: pycrm.CRM) -> None:
    base = _add(crm)
    with crm.session() as s:  # nothing changed here: the sender's changes only
        assert s.changes.apply([_send(base, status="active")]).applied == [("customers", "c1")]
    c = _get(crm)
    assert (c.version, c.status, c.category) == (2, "active", "retail")
    base2 = to_data(c)
    _server_edit(crm, status="prospect")
    with crm.session() as s:
        assert s.changes.apply([_send(base2, status="prospect")]).unchanged == [("customers", "c1")]


@pytest.mark.parametrize(
    ("rules", "tags", "category"),
    [
        ({"customers": {"*": "server_wins"}}, ["a", "srv"], "wholesale"),
        ({"customers": {"*": "device_wins"}}, ["dev"], "direct"),
        ({"customers": {"tags": "union", "*": "server_wins"}}, ["dev", "srv"], "wholesale"),
        ({"customers": {"tags": "union", "category": "device_wins"}}, ["dev", "srv"], "direct"),
    ],
)
def test_fields_changed_on_both_sides_follow_their_rule(
    crm: pycrm.CRM, rules: dict[str, Any], tags: list[str], category: str
) -> None:
    base = _add(crm)
    _server_edit(crm, category="wholesale", tags=frozenset({"a", "srv"}))
    sent = _send(base, tags=["dev"], category="direct")  # removed "a", added "dev"
    with crm.session() as s:
        result = s.changes.apply([sent], rules=rules)
        again = s.changes.apply([sent], rules=rules)
    kept = (tags, category) == (["a", "srv"], "wholesale")  # the server's values won everywhere: nothing to write
    assert (result.unchanged if kept else result.applied) == [("customers", "c1")] and not result.conflicts
    assert again.unchanged == [("customers", "c1")]
    c = _get(crm)
    assert (sorted(c.tags), c.category, c.version) == (tags, category, 2 if kept else 3)


def test_without_a_rule_an_overlap_is_a_conflict_naming_the_fields_and_nothing_is_written(crm: pycrm.CRM) -> None:
    base = _add(crm)
    _server_edit(crm, category="wholesale", tags=frozenset({"srv"}))
    before = to_data(_get(crm))
    with crm.session() as s:
        result = s.changes.apply(
            [_send(base, tags=["dev"], category="direct", status="active")], rules={"customers": {"tags": "union"}}
        )
    assert result.conflict_fields == {("customers", "c1"): ("category",)}
    assert "category" in result.conflicts[0][2] and not result.applied
    assert to_data(_get(crm)) == before  # not even the status, which only the sender changed


def test_latest_wins_compares_the_senders_updated_at(crm: pycrm.CRM) -> None:
    base = _add(crm)
    _server_edit(crm, category="wholesale")
    older = {**base, "category": "old", "updated_at": "2000-01-01T00:00:00+00:00"}
    newer = {**base, "category": "new", "updated_at": "2999-01-01T00:00:00+00:00"}
    rules = {"customers": {"category": "latest_wins"}}
    with crm.session() as s:
        assert s.changes.apply([Incoming("customers", "c1", "upsert", 2, older, base=base)], rules=rules).unchanged
    assert _get(crm).category == "wholesale"
    with crm.session() as s:
        assert s.changes.apply([Incoming("customers", "c1", "upsert", 2, newer, base=base)], rules=rules).applied
    assert _get(crm).category == "new"
    with crm.session() as s, pytest.raises(ValidationError, match="updated_at"):
        no_time = {k: v for k, v in newer.items() if k != "updated_at"} | {"category": "x"}
        s.changes.apply([Incoming("customers", "c1", "upsert", 2, no_time, base=base)], rules=rules)


@pytest.mark.parametrize(
    ("rules", "named"),
    [
        ({"customers": {"nickname": "union"}}, "rules.customers.nickname"),
        ({"customers": {"category": "union"}}, "rules.customers.category"),
        ({"customers": {"tags": "merge_somehow"}}, "rules.customers.tags"),
        ({"planets": {"*": "server_wins"}}, "rules.planets"),
    ],
)
def test_a_bad_rule_is_refused_naming_it_and_nothing_is_written(crm: pycrm.CRM, rules: Any, named: str) -> None:
    base = _add(crm)
    with crm.session() as s, pytest.raises(ValidationError) as info:
        s.changes.apply([_send(base, status="active")], rules=rules)
    assert info.value.errors[0].field == named
    assert _get(crm).version == 1


def test_a_batch_with_an_invalid_change_writes_none_of_it(crm: pycrm.CRM) -> None:
    base = _add(crm)
    _server_edit(crm, category="wholesale")
    good = _send(base, tags=["a", "vip"])
    bad = _send(base, status="bogus")
    with crm.session() as s, pytest.raises(ValidationError):
        s.changes.apply([good, bad])
    assert sorted(_get(crm).tags) == ["a"]
    with crm.session() as s, pytest.raises(ValidationError, match="base"):
        s.changes.apply([Incoming("customers", "c1", "upsert", 2, base, base={**base, "nickname": "x"})])


def test_a_masked_value_sent_back_unchanged_keeps_the_real_one(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(field_rules=FieldRules({"clerk": {"customers.name": "mask", "customers.emails": "mask"}}))
    _add(crm, owner_id="u1", emails=["li.lei@example.com"])
    with crm.session(actor=CLERK) as s:  # what the device read: masked
        seen = to_data(s.customers.get("c1"))
    assert seen["name"] != "Acme" and seen["emails"] != ["li.lei@example.com"]
    _server_edit(crm, category="wholesale")
    with crm.session(actor=CLERK) as s:
        sent = Incoming("customers", "c1", "upsert", 2, {**seen, "tags": ["a", "vip"]}, base=seen)
        assert s.changes.apply([sent], rules={"customers": {"*": "device_wins"}}).applied == [("customers", "c1")]
    c = _get(crm)
    assert (c.name, [e.value for e in c.emails], c.category, sorted(c.tags)) == (
        "Acme",
        ["li.lei@example.com"],
        "wholesale",
        ["a", "vip"],
    )
    _server_edit(crm, name="Acme Ltd")  # changed here; the device still sends its masked read
    with crm.session(actor=CLERK) as s:
        again = s.changes.apply([sent], rules={"customers": {"*": "device_wins"}})
    assert not again.applied and _get(crm).name == "Acme Ltd"
    with crm.session(actor=CLERK) as s:  # a masked field both sides changed: no rule merges what it cannot see
        seen = to_data(s.customers.get("c1"))
    _server_edit(crm, name="Acme Group")
    with crm.session(actor=CLERK) as s:
        sent = Incoming("customers", "c1", "upsert", seen["version"] + 1, {**seen, "name": "Mine Now"}, base=seen)
        clash = s.changes.apply([sent], rules={"customers": {"*": "device_wins"}})
    assert clash.conflict_fields == {("customers", "c1"): ("name",)} and _get(crm).name == "Acme Group"


def test_a_merge_goes_through_the_scope(crm: pycrm.CRM) -> None:
    base = _add(crm, owner_id="someone-else")
    _server_edit(crm, category="wholesale")
    with crm.session(actor=CLERK) as s, pytest.raises(PermissionDenied):
        s.changes.apply([_send(base, tags=["x"])])
    with crm.session(actor=CLERK) as s, pytest.raises(PermissionDenied):  # nothing to write: still not told
        s.changes.apply([_send(base)])
    with crm.session(actor=CLERK) as s, pytest.raises(PermissionDenied):  # nor that it would conflict
        s.changes.apply([_send(base, category="x")])
    assert sorted(_get(crm).tags) == ["a"]


def test_a_base_after_the_incoming_version_is_refused_and_an_unknown_one_is_a_conflict(crm: pycrm.CRM) -> None:
    base = _add(crm)
    with crm.session() as s, pytest.raises(ValidationError, match="base version"):
        s.changes.apply([Incoming("customers", "c1", "upsert", 1, base, base={**base, "version": 2})])
    future = {**base, "version": 7}
    with crm.session() as s:
        result = s.changes.apply([Incoming("customers", "c1", "upsert", 8, {**future, "status": "active"}, base=future)])
    assert result.conflicts == [("customers", "c1", "local version 1, base 7")]
    assert _get(crm).version == 1


def test_a_device_restored_from_a_backup_round_trips_through_the_server(crm: pycrm.CRM, tmp_path: Path) -> None:
    """End to end: a SQLite device restored from the server's backup edits offline while the server
    changes the same customers, sends its changes (merged), pulls the server's, and both agree."""
    with crm.session() as s:
        s.customers.add(Customer("Acme", id="c1", tags=["retail"], category="b2b"))
        s.customers.add(Customer("Globex", id="c2", status="prospect"))
        s.customers.add(Customer("Initech", id="c3"))
    pio.backup(crm, tmp_path / "server.jsonl.gz")
    device = pycrm.open(f"sqlite:///{tmp_path / 'device.db'}")
    try:
        assert pio.restore(device, tmp_path / "server.jsonl.gz").ok
        with device.session() as d:
            seen = {str(c.id): to_data(c) for c in d.customers.iter()}  # the base: the records as restored
            device_cursor = d.changes.last_seq()
        with crm.session() as s:
            server_cursor = s.changes.last_seq()
        with device.session() as d:  # offline edits
            c1, c2 = d.customers.get("c1"), d.customers.get("c2")
            c1.tags = c1.tags | {"vip"}
            c2.status = "active"
            d.customers.update(c1)
            d.customers.update(c2)
        with crm.session() as s:  # the server meanwhile
            c1, c2 = s.customers.get("c1"), s.customers.get("c2")
            c1.category, c2.status = "wholesale", "inactive"
            s.customers.update(c1)
            s.customers.update(c2)
        with device.session() as d:
            mine = sorted({e.id for e in d.changes.since(device_cursor)})
            outgoing = [
                Incoming("customers", i, "upsert", seen[i]["version"] + 1, to_data(d.customers.get(i)), base=seen[i])
                for i in mine
            ]
        rules = {"customers": {"tags": "union", "status": "latest_wins"}}
        with crm.session() as s:
            sent = s.changes.apply(outgoing, rules=rules)
        assert sorted(sent.applied) == [("customers", "c1")]  # c2: the server's status is the newer
        assert sent.unchanged == [("customers", "c2")] and not sent.conflicts
        with crm.session() as s:
            fresh = {e.id: to_data(s.customers.get(e.id)) for e in s.changes.since(server_cursor)}
        with device.session() as d:
            pulled = d.changes.apply(
                [Incoming("customers", i, "upsert", r["version"], r, base=seen[i]) for i, r in fresh.items()],
                rules={"customers": {"*": "device_wins"}},  # the sender is the server
            )
        assert not pulled.conflicts
        fields = ("name", "tags", "category", "status")
        with crm.session() as s, device.session() as d:
            here = {str(c.id): {k: to_data(c)[k] for k in fields} for c in s.customers.iter()}
            there = {str(c.id): {k: to_data(c)[k] for k in fields} for c in d.customers.iter()}
        assert here == there
        assert here["c1"] == {"name": "Acme", "tags": ["retail", "vip"], "category": "wholesale", "status": "lead"}
        assert here["c2"]["status"] == "inactive"
    finally:
        device.close()


def test_rules_given_to_open_apply_and_a_calls_rules_go_on_top(open_crm: Callable[..., pycrm.CRM]) -> None:
    with pytest.raises(ValidationError) as info:
        open_crm(merge_rules={"customers": {"nickname": "union"}})
    assert info.value.errors[0].field == "merge_rules.customers.nickname"
    crm = open_crm(merge_rules={"customers": {"tags": "union", "*": "server_wins"}})
    base = _add(crm)
    _server_edit(crm, category="wholesale", tags=frozenset({"a", "srv"}))
    with crm.session() as s:
        assert s.changes.apply([_send(base, tags=["a", "dev"], category="direct")]).applied == [("customers", "c1")]
    c = _get(crm)
    assert (sorted(c.tags), c.category) == (["a", "dev", "srv"], "wholesale")
    base = to_data(c)
    _server_edit(crm, category="retail")
    with crm.session() as s:  # this call's rule for category, the store's for the rest
        s.changes.apply([_send(base, category="direct")], rules={"customers": {"category": "device_wins"}})
    assert _get(crm).category == "direct"
