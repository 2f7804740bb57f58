"""``crm.rotate_keys()`` reaches every envelope, so the old key can leave the ring; unknown envelope versions.

After rotating from k1 to k2 and retiring k1, everything a user can reach still reads: the rows, the merge
records (``unmerge`` brings back the snapshots they hold), the archived records (``archived``,
``unarchive``). No stored byte holds a k1 envelope any more, and the journals never held one at all. An
envelope of a version pycrm does not know is an EncryptionError, never returned as plain data.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

import pycrm
from pycrm import Customer, Incoming
from pycrm.errors import EncryptionError
from pycrm.io import archive, archived, older_than, unarchive
from pycrm.security import KeyRing
from pycrm.storage._guard import SecurityConfig
from tests.contract.test_encryption_store import _stored_text

K1, K2, INDEX = bytes(range(32)), bytes(range(1, 33)), bytes(range(32, 64))
OLD = KeyRing({"k1": K1}, active="k1", index_key=INDEX)
BOTH = KeyRing({"k1": K1, "k2": K2}, active="k2", index_key=INDEX)
NEW = KeyRing({"k2": K2}, active="k2", index_key=INDEX)
ENCRYPTED = {"customers": ["custom.national_id", "emails", "phones"]}
LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)  # archive "older than 1 day" as of then: everything qualifies


def person(id: str, n: int) -> Customer:
    return Customer(
        f"Person {n}",
        kind="person",
        emails=[f"p{n}@example.com"],
        phones=[f"138001380{n:02d}"],
        custom={"national_id": f"11010119900307{n:04d}", "tier": "gold"},
        id=id,
    )


SECRETS = [s for n in range(1, 6) for s in (f"11010119900307{n:04d}", f"p{n}@example.com", f"+86138001380{n:02d}")]


def with_ring(adapter: str, open_crm: Callable[..., pycrm.CRM], crm: pycrm.CRM, ring: KeyRing) -> pycrm.CRM:
    """The same store opened with another key ring (memory: a new handle on the same store object)."""
    if adapter == "memory":
        return pycrm.CRM(crm.store, default_region="CN", security=SecurityConfig(keyring=ring, encrypted=ENCRYPTED))
    return open_crm(keyring=ring, encrypted=ENCRYPTED)


def test_rotation_covers_rows_merge_records_and_archives(open_crm: Any, adapter: str) -> None:
    crm = open_crm(keyring=OLD, encrypted=ENCRYPTED)
    with crm.session() as s:
        s.customers.add_many([person(f"c{n}", n) for n in range(1, 6)])
    with crm.session() as s:
        merge = s.customers.merge("c1", ["c2"])
    archive(crm, [older_than("customers", 1, where={"id": "c3"})], as_of=LATER)
    assert "enc:v1:k1:" in _stored_text(crm)

    both = with_ring(adapter, open_crm, crm, BOTH)
    changed = both.rotate_keys(batch_size=2)  # batches smaller than each table: several transactions
    assert changed == 3 + 1 + 1  # live rows c1, c4, c5; the merge record; the archived c3
    assert both.rotate_keys(batch_size=2) == 0  # nothing left under k1: running again changes nothing
    text = _stored_text(both)
    assert "enc:v1:k1:" not in text and "enc:v1:k2:" in text
    for secret in SECRETS:
        assert secret not in text

    new = with_ring(adapter, open_crm, crm, NEW)  # k1 retired
    with new.session() as s:
        assert s.customers.get("c1").custom["national_id"] == "110101199003070001"
        assert [c.id for c in s.customers.find({"custom.national_id": "110101199003070004"})] == ["c4"]
        assert [c.id for c in s.customers.find({"emails": "p5@example.com"})] == ["c5"]
        assert [(c.id, c.custom["national_id"], [e.value for e in c.emails]) for c in archived(s, "customers")] == [
            ("c3", "110101199003070003", ["p3@example.com"])
        ]
    with new.session() as s:
        s.customers.unmerge(merge.id)  # the merge record's snapshots, rotated, come back
    assert unarchive(new, "customers", ["c3"]).counts == {"customers": 1}
    with new.session() as s:
        got = {c.id: c for c in s.customers.find()}
        assert sorted(got) == ["c1", "c2", "c3", "c4", "c5"]
        for n in range(1, 6):
            c = got[f"c{n}"]
            assert c.custom == {"national_id": f"11010119900307{n:04d}", "tier": "gold"}
            assert [e.value for e in c.emails] == [f"p{n}@example.com"]
            assert [p.e164 for p in c.phones] == [f"+86138001380{n:02d}"]
    assert new.audit.verify().ok


def test_a_missing_old_key_names_the_record_it_stops_at(open_crm: Any, adapter: str) -> None:
    crm = open_crm(keyring=OLD, encrypted=ENCRYPTED)
    with crm.session() as s:
        s.customers.add_many([person("c1", 1), person("c2", 2)])
    with crm.session() as s:
        s.customers.merge("c1", ["c2"])
    new = with_ring(adapter, open_crm, crm, NEW)  # k1 dropped before rotating: the error says where
    with pytest.raises(EncryptionError, match=r"Customer 'c1'.*no key 'k1'"):
        new.rotate_keys()


def test_the_journals_never_hold_an_envelope(open_crm: Any, adapter: str, tmp_path: Any) -> None:
    """Every kind of write with encrypted values: the audit trail and the change feed hold no envelope,
    no blind index and no clear value, so there is nothing in them for rotation to rewrite."""
    crm = open_crm(keyring=OLD, encrypted=ENCRYPTED)
    with crm.session() as s:
        s.customers.add_many([person(f"c{n}", n) for n in range(1, 5)])
        s.customers.add(person("c5", 5))
    with crm.session() as s:
        c = s.customers.get("c1")
        c.custom["national_id"] = "110101199003079999"
        c.emails = [*c.emails, "second@example.com"]
        s.customers.update(c)
        merge = s.customers.merge("c1", ["c2"])
    with crm.session() as s:
        s.customers.unmerge(merge.id)
    archive(crm, [older_than("customers", 1, where={"id": "c3"})], as_of=LATER)
    unarchive(crm, "customers", ["c3"])
    with crm.session() as s:
        data = {"name": "Person 4", "kind": "person", "custom": {"national_id": "110101199003078888"}}
        assert s.changes.apply([Incoming("customers", "c4", "upsert", 2, data)]).applied == [("customers", "c4")]
    path = tmp_path / "in.csv"
    path.write_text("name,national_id,email\nPerson 6,110101199003070006,p6@example.com\n", encoding="utf-8")
    with crm.session() as s:
        pycrm.io.import_file(
            s, path, "customers", mapping={"name": "name", "national_id": "custom.national_id", "email": "emails"}
        )
        s.personal.erase("c5")
        s.customers.delete("c4")
    with crm.session() as s:
        feed = s.changes.since(0, limit=10_000)
    journal = json.dumps([e.to_data() for e in crm.audit.entries()], ensure_ascii=False) + repr(feed)
    assert len(feed) > 10
    for marker in ("enc:", "bi:", "__bi_", *SECRETS, "110101199003079999", "110101199003078888", "110101199003070006"):
        assert marker not in journal, marker
    assert crm.audit.verify().ok


@pytest.mark.parametrize("where", ["custom", "emails"])
def test_an_unknown_envelope_version_is_an_error_not_plain_data(open_crm: Any, where: str) -> None:
    crm = open_crm(keyring=OLD, encrypted=ENCRYPTED)
    with crm.session() as s:
        s.customers.add(person("c1", 1))
    stored: Any = None
    with crm.session() as s:
        tx = s._transaction()
        stored = tx.get(Customer, "c1")
        if where == "custom":
            token = stored.custom["national_id"]
            stored.custom["national_id"] = token.replace("enc:v1:", "enc:v9:", 1)
        else:
            index, _, token = stored.emails[0].value.partition("|")
            object.__setattr__(stored.emails[0], "value", f"{index}|{token.replace('enc:v1:', 'enc:v9:', 1)}")
        assert tx.update(Customer, stored, stored.version)
    with crm.session() as s, pytest.raises(EncryptionError, match=r"Customer 'c1'.*unknown envelope version 'v9'"):
        s.customers.get("c1")


@pytest.mark.parametrize("version", ["v9", "v2", "v", "vX"])
def test_the_key_ring_refuses_an_envelope_of_another_version(version: str) -> None:
    token = OLD.encrypt("110101199003077777", "customers.custom.national_id").replace("v1", version, 1)
    assert pycrm.security.is_encrypted(token)
    for read in (OLD.decrypt, OLD.rotate):
        with pytest.raises(EncryptionError, match=f"unknown envelope version '{version}'"):
            read(token, "customers.custom.national_id")


def test_text_that_is_not_unicode_is_an_encryption_error() -> None:
    with pytest.raises(EncryptionError, match="lone surrogate"):
        OLD.encrypt("\ud800", "customers.custom.national_id")
    with pytest.raises(EncryptionError, match="lone surrogate"):
        OLD.blind_index("\ud800", "customers.custom.national_id")


def test_sealed_text_that_is_not_json_is_an_encryption_error(open_crm: Any) -> None:
    """A sealed custom value decrypts to JSON; anything else (written with the key, not by pycrm) is named."""
    crm = open_crm(keyring=OLD, encrypted=ENCRYPTED)
    with crm.session() as s:
        s.customers.add(person("c1", 1))
    with crm.session() as s:
        tx = s._transaction()
        stored = tx.get(Customer, "c1")
        stored.custom["national_id"] = OLD.encrypt("{not json", "customers.custom.national_id")
        assert tx.update(Customer, stored, stored.version)
    with crm.session() as s, pytest.raises(EncryptionError, match=r"Customer 'c1'"):
        s.customers.get("c1")
