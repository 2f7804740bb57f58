"""Encryption at rest on every adapter: ``pycrm.open(..., keyring=, encrypted={"customers": ["custom.national_id"]})``.

Values round-trip through add, get, find, iter, update and merge; equality filters work through the
blind index; what is stored -- the rows, the audit trail, the change feed, and on SQLite the database
file itself -- holds no plaintext of the field; a wrong or missing key is a clear EncryptionError.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import pycrm
from pycrm import Customer, Permission, Role, User, ValidationError
from pycrm.errors import EncryptionError
from pycrm.security import CHANGED, KeyRing

KEYRING = KeyRing({"k1": bytes(range(32))}, active="k1", index_key=bytes(range(32, 64)))
ENCRYPTED = {"customers": ["custom.national_id"]}
SECRETS = ["110101199003077777", "44030419851212123X", "A1234567"]  # every one must stay out of the store
NUMBER = 731105  # a number is encrypted too, and comes back a number


def _holds(custom: dict[str, Any], op: str, value: Any) -> bool:
    """The custom filter rule (see test_custom_filters): type-exact equality; missing or null is NULL."""
    have = custom.get("national_id")

    def same(v: Any) -> bool:
        return type(have) is type(v) and have == v

    if op == "is_null":
        return (have is None) == value
    if have is None:
        return False
    if op == "eq":
        return same(value)
    if op == "ne":
        return not same(value)
    return any(same(v) for v in value)


def _stored_text(crm: pycrm.CRM) -> str:
    """Everything the store holds, as text: every row of every table (SQL) or every stored object (memory)."""
    store = crm.store
    if not hasattr(store, "engine"):
        return (
            repr({k: t.rows for k, t in store._tables.items()})
            + repr(store._records)
            + repr(store._audit_log)
            + repr(store._changes_log)
        )
    meta = sa.MetaData()
    meta.reflect(store.engine)
    with store.engine.connect() as conn:
        return "\n".join(repr(row) for t in meta.sorted_tables for row in conn.execute(sa.select(t)))


def _no_plaintext(text: str, values: list[str]) -> None:
    for v in values:
        assert v not in text, f"plaintext {v!r} found"


def test_encrypted_values_round_trip_and_stay_findable(open_crm: Any, adapter: str) -> None:
    crm = open_crm(keyring=KEYRING, encrypted=ENCRYPTED)
    rows = [
        {"national_id": SECRETS[0], "tier": "gold"},
        {"national_id": SECRETS[1]},
        {"national_id": NUMBER},
        {"national_id": None},
        {"tier": "silver"},
    ]
    with crm.session() as s:
        first = s.customers.add(Customer("Li Lei", kind="person", custom=rows[0]))
        s.customers.add_many([Customer(f"Person {i}", kind="person", custom=r) for i, r in enumerate(rows[1:], 1)])
    with crm.session() as s:
        by_name = {c.name: c for c in s.customers.find(order_by="name")}
        assert [c.custom for c in s.customers.find(order_by="name")] == rows  # "Li Lei" sorts first
        assert s.customers.get(first.id).custom == rows[0]
        assert [c.custom for c in s.customers.iter(batch_size=2)] == [c.custom for c in s.customers.find()]
        assert type(by_name["Person 2"].custom["national_id"]) is int
        custom_of = {c.id: c.custom for c in by_name.values()}
        for op, value in [
            ("eq", SECRETS[0]),
            ("eq", SECRETS[2]),  # stored nowhere
            ("eq", NUMBER),
            ("eq", str(NUMBER)),  # type-exact: the text does not match the number
            ("ne", SECRETS[1]),
            ("in", [SECRETS[1], NUMBER, "nobody"]),
            ("in", []),
            ("is_null", True),
            ("is_null", False),
        ]:
            where = {"custom.national_id": {op: value}}
            want = {cid for cid, custom in custom_of.items() if _holds(custom, op, value)}
            assert {c.id for c in s.customers.find(where)} == want, where
            assert s.customers.count(where) == len(want), where
        assert [c.name for c in s.customers.find({"custom.national_id": SECRETS[0], "custom.tier": "gold"})] == ["Li Lei"]

    with crm.session() as s:  # change another field: the secret is kept and not reported as changed
        c = s.customers.get(first.id)
        c.status = "active"
        s.customers.update(c)
    with crm.session() as s:  # change the secret itself
        c = s.customers.get(first.id)
        c.custom["national_id"] = SECRETS[2]
        s.customers.update(c)
    with crm.session() as s:
        assert s.customers.get(first.id).custom == {"national_id": SECRETS[2], "tier": "gold"}
        assert s.customers.find({"custom.national_id": SECRETS[0]}) == []
        assert [c.id for c in s.customers.find({"custom.national_id": SECRETS[2]})] == [first.id]

    trail = [e for e in crm.audit.entries() if e.entity_id == first.id]
    assert [e.action for e in trail] == ["create", "update", "update"]
    assert trail[0].diff["custom"] == [None, {"national_id": CHANGED, "tier": "gold"}]
    assert trail[1].diff == {"status": ["lead", "active"]}
    assert SECRETS[2] not in json.dumps(trail[2].diff)  # (what it shows: see the test below)
    with crm.session() as s:
        feed = s.changes.since(0)
    assert [(e.op, e.version) for e in feed if e.id == first.id] == [("create", 1), ("update", 2), ("update", 3)]
    assert [e.fields for e in feed if e.id == first.id][1] == ("status",)
    everything = _stored_text(crm)
    _no_plaintext(everything, [*SECRETS, str(NUMBER)])
    assert "enc:v1:k1:" in everything  # the values are there, sealed
    _no_plaintext(json.dumps([e.to_data() for e in crm.audit.entries()]) + repr(feed), [*SECRETS, str(NUMBER)])


def test_changing_an_encrypted_value_shows_as_changed_in_the_audit_and_the_feed(open_crm: Any) -> None:
    crm = open_crm(keyring=KEYRING, encrypted=ENCRYPTED)
    with crm.session() as s:
        c = s.customers.add(Customer("Li Lei", kind="person", custom={"national_id": SECRETS[0], "tier": "gold"}))
    with crm.session() as s:
        c = s.customers.get(c.id)
        c.custom["national_id"] = SECRETS[1]
        s.customers.update(c)
    with crm.session() as s:
        last_event = s.changes.since(0)[-1]
    assert (last_event.op, last_event.version, last_event.fields) == ("update", 2, ("custom",))
    last = list(crm.audit.entries())[-1]
    assert last.action == "update" and "custom" in last.diff
    assert last.diff["custom"][1]["national_id"] == CHANGED
    _no_plaintext(json.dumps(last.diff), SECRETS)


def test_merges_move_encrypted_values_with_their_index(open_crm: Any) -> None:
    crm = open_crm(keyring=KEYRING, encrypted=ENCRYPTED)
    with crm.session() as s:
        keep = s.customers.add(Customer("Li Lei", kind="person"))
        dup = s.customers.add(Customer("LI LEI", kind="person", custom={"national_id": SECRETS[0]}))
    with crm.session() as s:
        record = s.customers.merge(keep.id, [dup.id])
    with crm.session() as s:
        assert s.customers.get(keep.id).custom == {"national_id": SECRETS[0]}
        assert [c.id for c in s.customers.find({"custom.national_id": SECRETS[0]})] == [keep.id]
        s.customers.unmerge(record.id)
    with crm.session() as s:
        assert s.customers.get(keep.id).custom == {}
        assert s.customers.get(dup.id).custom == {"national_id": SECRETS[0]}
        assert [c.id for c in s.customers.find({"custom.national_id": SECRETS[0]})] == [dup.id]
    _no_plaintext(_stored_text(crm), [SECRETS[0]])


def test_roles_see_decrypted_values_through_their_masks(open_crm: Any) -> None:
    crm = open_crm(keyring=KEYRING, encrypted=ENCRYPTED)  # the default field rules
    with crm.session() as s:
        c = s.customers.add(Customer("Li Lei", kind="person", custom={"national_id": SECRETS[0], "tier": "gold"}))
    desk = User("Desk", "desk@example.com", roles=["support"], id="s-1")
    numbers = User("Numbers", "numbers@example.com", roles=["analyst"], id="a-1")
    with crm.session(actor=desk) as s:
        assert s.customers.get(c.id).custom == {"national_id": "**************7777", "tier": "gold"}
        # a filter on a value the desk sees masked would confirm a guess: refused, naming the field
        with pytest.raises(ValidationError, match=r"custom\.national_id"):
            s.customers.find({"custom.national_id": SECRETS[0]})
    with crm.session(actor=numbers) as s:
        assert s.customers.get(c.id).custom == {"tier": "gold"}
    editor = User("Editor", "editor@example.com", roles=[Role("support", [Permission("customers", "*", "all")])], id="s-2")
    with crm.session(actor=editor) as s:  # a desk that may edit, under the support masks: the secret survives
        assert s.customers.get(c.id).custom["national_id"] == "**************7777"
        seen = s.customers.get(c.id)
        seen.status = "active"
        s.customers.update(seen)
    with crm.session() as s:
        assert s.customers.get(c.id).custom == {"national_id": SECRETS[0], "tier": "gold"}


def test_a_wrong_or_missing_key_is_a_clear_error(open_crm: Any, adapter: str) -> None:
    if adapter == "memory":
        pytest.skip("a memory store lives inside one CRM: it cannot be reopened with another key ring")
    crm = open_crm(keyring=KEYRING, encrypted=ENCRYPTED)
    with crm.session() as s:
        c = s.customers.add(Customer("Li Lei", kind="person", custom={"national_id": SECRETS[0]}))
    wrong = open_crm(
        keyring=KeyRing({"k1": bytes(range(100, 132))}, active="k1", index_key=bytes(range(32, 64))), encrypted=ENCRYPTED
    )
    with wrong.session() as s:
        with pytest.raises(EncryptionError, match=r"wrong key") as info:
            s.customers.get(c.id)
        assert c.id in str(info.value) and "national_id" in str(info.value)
        assert SECRETS[0] not in str(info.value)
        with pytest.raises(EncryptionError, match=r"wrong key"):
            s.customers.find()
    other = open_crm(
        keyring=KeyRing({"k2": bytes(range(1, 33))}, active="k2", index_key=bytes(range(32, 64))), encrypted=ENCRYPTED
    )
    with other.session() as s, pytest.raises(EncryptionError, match=r"no key 'k1' in the key ring"):
        s.customers.get(c.id)
    with crm.session() as s:  # the right key still reads it: nothing was damaged
        assert s.customers.get(c.id).custom == {"national_id": SECRETS[0]}


def test_the_sqlite_file_holds_no_plaintext_of_an_encrypted_field(tmp_path: Path) -> None:
    path = tmp_path / "crm.db"
    crm = pycrm.open(f"sqlite:///{path}", keyring=KEYRING, encrypted=ENCRYPTED)
    try:
        with crm.session() as s:
            ids = [
                s.customers.add(Customer(f"Plainly named {i}", kind="person", custom={"national_id": v, "tier": "gold"})).id
                for i, v in enumerate(SECRETS[:2])
            ]
        with crm.session() as s:  # every write path: update to a new secret, and a delete
            c = s.customers.get(ids[0])
            c.custom["national_id"] = SECRETS[2]
            s.customers.update(c)
            s.customers.delete(ids[1])
        with crm.session() as s:
            assert [c.id for c in s.customers.find({"custom.national_id": SECRETS[2]})] == [ids[0]]
    finally:
        crm.close()
    files = sorted(p for p in tmp_path.iterdir() if p.name.startswith("crm.db"))
    data = b"".join(p.read_bytes() for p in files)
    assert b"Plainly named 0" in data  # the scan does see what is stored in clear ...
    assert b"enc:v1:k1:" in data  # ... and the sealed values
    for secret in [*SECRETS, "77777", "1212123X"]:
        for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
            assert secret.encode(encoding) not in data, (secret, encoding)


def test_encrypted_fields_need_a_key_ring_and_a_custom_field(tmp_path: Path) -> None:
    for url in ("memory://", f"sqlite:///{tmp_path}/crm.db"):
        with pytest.raises(ValidationError) as info:
            pycrm.open(url, encrypted=ENCRYPTED)
        assert [e.field for e in info.value.errors] == ["keyring"]
        assert "KeyRing" in str(info.value)
    with pytest.raises(ValidationError) as info:
        pycrm.open("memory://", keyring=KEYRING, encrypted={"customers": ["name"], "leads": ["custom.x"]})
    assert sorted(e.field for e in info.value.errors) == ["encrypted.customers", "encrypted.leads"]
    assert not (tmp_path / "crm.db").exists()  # refused before anything was created


LISTS = {"customers": ["emails", "phones"], "contacts": ["emails", "phones"]}


def test_encrypted_emails_and_phones_stay_findable(open_crm: Any) -> None:
    """Emails and phones a host marks sensitive: stored as envelopes, matched through a blind index held in
    the index tables, so ``{"phones": "138 0013 8000"}`` still finds the customer; nothing in clear."""
    crm = open_crm(keyring=KEYRING, encrypted=LISTS)
    with crm.session() as s:
        a = s.customers.add(Customer("A", emails=["li.lei@example.com", "ops@example.com"], phones=["13800138000"]))
        b = s.customers.add(Customer("B", emails=["han.meimei@example.com"], phones=["+44 20 7946 0958", "13800138000"]))
        s.customers.add_many([Customer(f"C{i}", emails=[f"c{i}@example.com"]) for i in range(3)])
        s.contacts.add(pycrm.Contact(str(a.id), "Ada", "Lee", emails=["ada@example.com"], phones=["13900139000"]))
    with crm.session() as s:
        assert [e.value for e in s.customers.get(str(a.id)).emails] == ["li.lei@example.com", "ops@example.com"]
        assert {c.id for c in s.customers.find({"phones": "138 0013 8000"})} == {a.id, b.id}
        assert [c.id for c in s.customers.find({"emails": "Han.Meimei@Example.com"})] == [b.id]
        assert s.customers.count({"emails": {"in": ["c1@example.com", "c2@example.com", "nobody@example.com"]}}) == 2
        assert s.customers.count({"emails": {"ne": "ops@example.com"}}) == 4
        assert s.customers.count({"phones": {"is_null": True}}) == 3
        assert [c.first_name for c in s.contacts.find({"phones": "139 0013 9000"})] == ["Ada"]
        b2 = s.customers.get(str(b.id))
        b2.phones = ["13800138000"]  # one kept, one removed
        s.customers.update(b2)
    with crm.session() as s:
        assert [str(p) for p in s.customers.get(str(b.id)).phones] == ["+8613800138000"]
        assert s.customers.count({"phones": "+44 20 7946 0958"}) == 0
        last = s.changes.since(s.changes.last_seq() - 1)[0]
        assert last.fields == ("phones",)
        assert s.audit.history(str(b.id))[-1].diff == {"phones": CHANGED}
    _no_plaintext(
        _stored_text(crm),
        ["li.lei@example.com", "han.meimei", "ada@example.com", "8613800138000", "8613900139000", "442079460958"],
    )


def test_a_merge_keeps_one_of_each_encrypted_email(open_crm: Any) -> None:
    """The same address encrypted twice is two envelopes, but one blind index: the union keeps it once."""
    crm = open_crm(keyring=KEYRING, encrypted=LISTS)
    with crm.session() as s:
        a = s.customers.add(Customer("Acme", emails=["a@example.com", "b@example.com"], phones=["13800138000"]))
        b = s.customers.add(Customer("Acme Ltd", emails=["b@example.com", "c@example.com"], phones=["13800138000"]))
        merge = s.customers.merge(str(a.id), [str(b.id)])
    with crm.session() as s:
        merged = s.customers.get(str(a.id))
        assert [e.value for e in merged.emails] == ["a@example.com", "b@example.com", "c@example.com"]
        assert [str(p) for p in merged.phones] == ["+8613800138000"]
        assert [c.id for c in s.customers.find({"emails": "c@example.com"})] == [a.id]
        s.customers.unmerge(merge.id)
    with crm.session() as s:
        assert [e.value for e in s.customers.get(str(b.id)).emails] == ["b@example.com", "c@example.com"]
        assert [c.id for c in s.customers.find({"emails": "c@example.com"})] == [b.id]
