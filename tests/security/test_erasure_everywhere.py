"""``s.personal.erase`` erases the person everywhere the store keeps them, and nothing brings them back.

After an erasure no personal value is left in the audit diffs about the erased records (the chain still
verifies, and names the entries erased), in merge-record snapshots (so ``unmerge`` brings back anonymized
records), in archived records (so does ``unarchive``), in the live tables, or in a backup taken afterwards.
An entry marked erased without a later erasure of its record is caught by ``verify()``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

import pycrm
from pycrm import Campaign, CampaignMember, Contact, Customer, Interaction, Survey, Ticket, User
from pycrm.errors import NotFound
from pycrm.io import archive, archived, backup, older_than, restore, unarchive
from pycrm.security import GENESIS_HASH, KeyRing, chain_hash, verify
from pycrm.security._audit import AuditEntry, legacy_seal
from pycrm.storage._personal import ERASED_TEXT
from tests.contract.test_encryption_store import _stored_text

AT = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)  # archive "older than 1 day" as of then: everything qualifies
RING = KeyRing({"k1": bytes(range(32))}, active="k1", index_key=bytes(range(32, 64)))
ENCRYPTED = {"customers": ["custom.national_id", "emails", "phones"]}
REP = User("Rep", "rep@example.com", roles=["sales"], team_id="t1", id="u1")


def person(n: int, id: str, **kw: Any) -> Customer:
    return Customer(
        f"Zhang Erasable{n}",
        kind="person",
        emails=[f"zhang{n}@erase.example"],
        phones=[f"138001381{n:02d}"],
        addresses=[pycrm.Address(street=f"{n} Erasure Road", city="Shanghai", country="CN")],
        custom={"national_id": f"11010119900307{n:04d}", "tier": "gold"},
        id=id,
        **kw,
    )


def secrets(n: int) -> list[str]:
    """Every personal value of ``person(n)`` and of what belongs to it, as a byte scan looks for them."""
    return [
        f"Erasable{n}",
        f"zhang{n}@erase.example",
        f"138001381{n:02d}",
        f"{n} Erasure Road",
        f"11010119900307{n:04d}",
        f"Meimei{n}",
        f"meimei{n}@erase.example",
        f"Secret plan {n}",
        f"Complaint {n}",
        f"Survey verdict {n}",
    ]


def with_children(s: Any, n: int, customer_id: str) -> None:
    s.contacts.add(Contact(customer_id, f"Meimei{n}", "Han", emails=[f"meimei{n}@erase.example"], title="Buyer", id=f"k{n}"))
    s.interactions.add(Interaction(customer_id, "call", AT, subject=f"Secret plan {n}", body=f"Secret plan {n} body", id=f"i{n}"))
    s.tickets.add(Ticket(customer_id, f"Complaint {n}", description=f"Complaint {n} details", id=f"t{n}"))
    s.surveys.add(Survey(customer_id, "csat", AT, score=2, comment=f"Survey verdict {n}", answered_at=AT, id=f"s{n}"))
    s.campaigns.add(Campaign(f"Campaign {n}", "email", id=f"camp{n}"))
    s.campaign_members.add(CampaignMember(f"camp{n}", customer_id, AT, contact_id=f"k{n}", id=f"m{n}"))


def no_secret_in(text: str, ns: list[int], where: str) -> None:
    for n in ns:
        for value in secrets(n):
            assert value not in text, f"{value!r} is still in {where}"


def trail_text(crm: pycrm.CRM) -> str:
    return json.dumps([e.to_data() for e in crm.audit.entries()], ensure_ascii=False)


# ---------------------------------------------------------------- the audit trail


def test_erasure_erases_the_audit_diffs_and_the_chain_still_verifies(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(audit=True)
    with crm.session() as s:
        s.customers.add(person(1, "c1"))
        s.customers.add(person(2, "c2"))  # someone else: stays as it is
        with_children(s, 1, "c1")
    with crm.session() as s:
        c = s.customers.get("c1")
        c.name = "Zhang Erasable1 Jr"
        s.customers.update(c)
        s.personal.export("c1")
    with crm.session() as s:
        counts = s.personal.erase("c1")
    assert counts["customers"] == counts["contacts"] == counts["interactions"] == counts["tickets"] == 1
    assert counts["surveys"] == counts["campaign_members"] == 1

    text = trail_text(crm)
    no_secret_in(text, [1], "the audit trail")
    assert "Erasable2" in text  # the other customer's entries are untouched
    history = crm.audit.history("c1")
    erase = history[-1]
    assert erase.action == "erase"
    assert erase.diff["records"] == {
        "contacts": ["k1"],
        "customers": ["c1"],
        "interactions": ["i1"],
        "tickets": ["t1"],
        "surveys": ["s1"],
        "campaign_members": ["m1"],
    }
    assert all(e.diff == {"erased": erase.diff["erasure"]} for e in history[:-1])
    assert [e.diff for e in crm.audit.history("i1")] == [{"erased": erase.diff["erasure"]}] * 2  # create, erase's update
    result = crm.audit.verify()
    assert result.ok and result.erased == len(crm.audit.history("c1")) - 1 + 2 + 2 + 2 + 2 + 2
    with crm.session() as s:  # out of the campaign: removed, no contact to reach
        m = s.campaign_members.get("m1")
        assert (m.state, m.contact_id) == ("removed", None)

    with crm.session() as s:  # running it again changes nothing, and the trail still verifies
        assert s.personal.erase("c1") == {
            "customers": 0,
            "contacts": 0,
            "interactions": 0,
            "tickets": 0,
            "surveys": 0,
            "campaign_members": 0,
            "activities": 0,
            "attachments": 0,
            "archived": 0,
            "merges": 0,
        }
    assert crm.audit.verify().ok and crm.audit.verify().erased == result.erased


def test_erasing_a_contact_erases_that_contact_only(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(audit=True)
    with crm.session() as s:
        s.customers.add(person(1, "c1"))
        with_children(s, 1, "c1")
    with crm.session() as s:
        assert s.personal.erase("k1") == {
            "contacts": 1,
            "campaign_members": 1,
            "interactions": 0,
            "activities": 0,
            "attachments": 0,
            "archived": 0,
            "merges": 0,
        }
    assert {e.action for e in crm.audit.history("k1")[:-1]} == {"create", "update"}
    assert all(set(e.diff) == {"erased"} for e in crm.audit.history("k1")[:-1])
    assert crm.audit.history("k1")[-1].diff["records"] == {"contacts": ["k1"], "campaign_members": ["m1"]}
    assert "Erasable1" in json.dumps([e.to_data() for e in crm.audit.history("c1")], ensure_ascii=False)
    text = trail_text(crm)
    assert "Meimei1" not in text and "meimei1@erase.example" not in text and "Secret plan 1" in text
    assert crm.audit.verify().ok


def test_an_erasure_that_fails_erases_nothing(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(audit=True)
    with crm.session() as s:
        s.customers.add(person(1, "c1", owner_id="u1", team_id="t1"))
        with_children(s, 1, "c1")  # a ticket: the sales role may not update tickets
    before = trail_text(crm)
    with pytest.raises(pycrm.errors.PermissionDenied), crm.session(actor=REP) as s:
        s.personal.erase("c1")
    assert trail_text(crm).startswith(before[:-1])  # only the refusal was added
    with crm.session() as s:
        assert s.customers.get("c1").name == "Zhang Erasable1"
    assert crm.audit.verify().ok and crm.audit.verify().erased == 0


# ---------------------------------------------------------------- merges


def test_unmerge_after_erasure_brings_back_only_anonymized_records(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(audit=True, keyring=RING, encrypted=ENCRYPTED)
    with crm.session() as s:
        s.customers.add(person(1, "c1"))
        s.customers.add(person(2, "c2"))  # the same person, twice
        with_children(s, 1, "c1")
        merge = s.customers.merge("c1", ["c2"])
    assert "enc:v1:k1:" in _stored_text(crm) and "__bi_national_id" in _stored_text(crm)
    with crm.session() as s:
        counts = s.personal.erase("c1")
    assert counts["merges"] == 1
    for sealed in ("enc:", "bi:", "__bi_"):  # no envelope and no blind index of the erased values is left
        assert sealed not in _stored_text(crm), sealed
    with crm.session() as s:
        (record,) = s.customers.merges()
        no_secret_in(json.dumps(record.to_data(), ensure_ascii=False), [1, 2], "the merge record")
        s.customers.unmerge(merge.id)
    with crm.session() as s:
        back = s.customers.get("c2")
        assert back.name.startswith("Anonymized") and back.emails == [] and back.phones == []
        assert back.custom == {"tier": "gold"}
        assert s.customers.get("c1").name.startswith("Anonymized")
    no_secret_in(trail_text(crm) + _stored_text(crm), [1, 2], "the store")
    assert crm.audit.verify().ok


def test_a_merged_away_duplicate_can_be_erased(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(audit=True)
    with crm.session() as s:
        s.customers.add(person(1, "c1"))
        s.customers.add(person(2, "c2"))
        merge = s.customers.merge("c1", ["c2"], rules={"name": "primary"})
    with crm.session() as s:
        counts = s.personal.erase("c2")  # merged away: lives on in the merge record and the trail
    assert counts == {"archived": 0, "merges": 1}
    with crm.session() as s:
        (record,) = s.customers.merges()
        assert record.before["c2"]["name"].startswith("Anonymized")
        assert record.before["c1"]["name"] == "Zhang Erasable1"  # the survivor is a record of its own
    assert "Erasable2" not in json.dumps([e.to_data() for e in crm.audit.history("c2")], ensure_ascii=False)
    assert crm.audit.history("c2")[-1].action == "erase"
    with crm.session() as s:
        s.customers.unmerge(merge.id)
        assert s.customers.get("c2").name.startswith("Anonymized")
    assert crm.audit.verify().ok


def test_an_actor_erases_within_its_rights_only(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(audit=True)
    with crm.session() as s:
        s.customers.add(person(1, "c1", owner_id="u1", team_id="t1"))
        s.customers.add(person(2, "c2", owner_id="u1", team_id="t1"))
        s.customers.add(person(3, "c3", owner_id="u2", team_id="t2"))
        s.customers.add(person(4, "c4", owner_id="u2", team_id="t2"))
        s.customers.merge("c1", ["c2"])
        s.customers.merge("c3", ["c4"])
    with crm.session(actor=REP) as s:
        for id in ("c3", "c4"):  # another owner's, live or merged away: not there for the rep
            with pytest.raises(NotFound, match=f"no customer or contact with id '{id}'"):
                s.personal.erase(id)
        s.personal.erase("c2")  # merged into the rep's own customer
    with crm.session() as s:
        by_survivor = {m.survivor_id: m for m in s.customers.merges()}
        assert by_survivor["c1"].before["c2"]["name"].startswith("Anonymized")
        assert by_survivor["c3"].before["c4"]["name"] == "Zhang Erasable4"
    assert crm.audit.verify().ok


# ---------------------------------------------------------------- archives


def test_unarchive_after_erasure_brings_back_only_anonymized_records(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(audit=True, keyring=RING, encrypted=ENCRYPTED)
    with crm.session() as s:
        s.customers.add(person(1, "c1"))
        with_children(s, 1, "c1")
        s.customers.add(person(2, "c2"))
        with_children(s, 2, "c2")
    archive(crm, [older_than("customers", 1, where={"id": "c1"}), older_than("tickets", 1, where={"id": "t2"})], as_of=LATER)
    with crm.session() as s:
        assert s.personal.erase("c1")["archived"] == 6  # archived itself: the customer and its five children
        assert s.personal.erase("c2")["archived"] == 1  # live, with its ticket archived
        assert [t.subject for t in archived(s, "tickets")] == [ERASED_TEXT, ERASED_TEXT]
        assert [v.comment for v in archived(s, "surveys")] == [ERASED_TEXT]  # archived with c1
    no_secret_in(_stored_text(crm) + trail_text(crm), [1, 2], "the store")
    unarchive(crm, "customers", ["c1"])
    unarchive(crm, "tickets", ["t2"])
    with crm.session() as s:
        c1 = s.customers.get("c1")
        assert c1.name.startswith("Anonymized") and c1.emails == [] and c1.custom == {"tier": "gold"}
        assert s.contacts.get("k1").first_name == "Anonymized"
        assert s.interactions.get("i1").subject == ERASED_TEXT
        assert s.surveys.get("s1").comment == ERASED_TEXT and s.surveys.get("s1").score == 2  # the score stays
        assert s.surveys.get("s2").comment == ERASED_TEXT
        assert s.tickets.get("t2").description == ""
    assert crm.audit.verify().ok


# ---------------------------------------------------------------- backups and the live store


def test_a_backup_taken_after_erasure_holds_none_of_the_person(
    open_crm: Callable[..., pycrm.CRM], adapter: str, tmp_path: Path
) -> None:
    crm = open_crm(audit=True, keyring=RING, encrypted=ENCRYPTED)
    with crm.session() as s:
        for n in (1, 2, 3, 4):
            s.customers.add(person(n, f"c{n}"))
        with_children(s, 1, "c1")
        with_children(s, 3, "c3")
        s.customers.merge("c1", ["c2"])
    archive(crm, [older_than("customers", 1, where={"id": "c3"})], as_of=LATER)
    with crm.session() as s:
        s.personal.erase("c1")  # with c2 merged into it
        s.personal.erase("c3")  # archived
    assert crm.audit.verify().ok

    no_secret_in(_stored_text(crm), [1, 2, 3], "the live tables")
    assert "Erasable4" in _stored_text(crm)  # the scan sees what is there
    dump = tmp_path / "after.jsonl"
    backup(crm, dump)
    raw = dump.read_bytes()
    for n in (1, 2, 3):
        for value in secrets(n):
            assert value.encode() not in raw, f"{value!r} is in the logical backup"
    assert b"Erasable4" in raw  # the scan sees what is there
    if adapter == "sqlite":
        copy = tmp_path / "after.db"
        backup(crm, copy, method="sqlite")
        raw = copy.read_bytes()
        for n in (1, 2, 3):
            for value in secrets(n):
                assert value.encode() not in raw, f"{value!r} is in the SQLite backup file"
    fresh = pycrm.open("memory://", audit=True, keyring=RING, encrypted=ENCRYPTED)
    assert restore(fresh, dump).ok
    assert fresh.audit.verify().ok and fresh.audit.verify().erased == crm.audit.verify().erased
    if adapter == "sqlite":  # the database file itself, once closed (its write-ahead log checkpointed)
        crm.close()
        raw = Path(crm.url.split("///", 1)[1]).read_bytes()
        for n in (1, 2, 3):
            for value in secrets(n):
                assert value.encode() not in raw, f"{value!r} is in the database file"


# ---------------------------------------------------------------- tampering


def _tamper(crm: pycrm.CRM, seq: int, **values: Any) -> None:
    """Overwrite stored fields of audit entry ``seq``, as someone with write access to the table could."""
    store = crm.store
    if not hasattr(store, "engine"):
        i = next(i for i, r in enumerate(store._audit_log) if r["seq"] == seq)
        store._audit_log[i] = {**store._audit_log[i], **values}
        return
    values = {k: json.dumps(v, sort_keys=True, separators=(",", ":")) if k == "diff" else v for k, v in values.items()}
    with store.engine.begin() as conn:
        table = sa.table("pycrm_audit", sa.column("seq"), *(sa.column(k) for k in values))
        conn.execute(sa.update(table).where(table.c.seq == seq).values(**values))


def test_an_entry_marked_erased_without_an_erasure_of_its_record_is_caught(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(audit=True)
    with crm.session() as s:
        s.customers.add(person(1, "c1"))
        s.customers.add(person(2, "c2"))
    with crm.session() as s:
        c = s.customers.get("c2")
        c.status = "active"
        s.customers.update(c)  # the edit someone wants to hide
    with crm.session() as s:
        s.personal.erase("c1")
    assert crm.audit.verify().ok
    erasure = crm.audit.history("c1")[-1].diff["erasure"]
    edit = crm.audit.history("c2")[-1].seq

    _tamper(crm, edit, diff={"erased": erasure})  # a real erasure, but not of c2
    result = crm.audit.verify()
    assert not result.ok and result.first_bad_seq == edit
    assert result.reason == f"entry {edit} is marked erased by erasure {erasure!r}, which did not erase customers 'c2'"

    _tamper(crm, edit, diff={"erased": "no-such-erasure"})
    result = crm.audit.verify()
    assert (result.ok, result.first_bad_seq) == (False, edit)
    assert "which no later entry records" in result.reason

    _tamper(crm, edit, diff={"status": ["lead", "customer"]})  # edited instead of erased
    assert crm.audit.verify().reason == f"entry {edit} was altered: its hash does not match its content"


def test_a_marker_must_name_an_erasure_recorded_after_the_entry() -> None:
    def entry(prev: AuditEntry | None, action: str, entity_id: str, diff: dict[str, Any]) -> AuditEntry:
        return pycrm.security.make_entry(
            prev, at=AT, actor_id=None, action=action, entity="customers", entity_id=entity_id, diff=diff
        )

    e1 = entry(None, "create", "c1", {"name": [None, "Ada"]})
    e2 = entry(e1, "erase", "c1", {"erasure": "x1", "records": {"customers": ["c1"]}})
    e3 = entry(e2, "update", "c1", {"name": ["Ada", "Bea"]})
    assert verify([e1, e2, e3]).ok
    erased = attrs.evolve(e1, diff={"erased": "x1"})
    assert verify([erased, e2, e3]) == pycrm.security.VerifyResult(True, erased=1)
    late = attrs.evolve(e3, diff={"erased": "x1"})
    assert verify([e1, e2, late]).reason == "entry 3 is marked erased by erasure 'x1', recorded before it"
    assert verify([erased, e2]).ok
    assert verify([erased]).reason == "entry 1 is marked erased by erasure 'x1', which no later entry records"
    assert verify([{**e1.to_data(), "diff_digest": "x"}]).reason == (
        "entry 1 is malformed: its diff_digest 'x' is not 64 lowercase hexadecimal digits"
    )


def test_entries_written_before_digests_are_erased_and_sealed(open_crm: Callable[..., pycrm.CRM]) -> None:
    """A trail written before revision 0006 hashes the diffs themselves: an erasure seals what is left of
    such an entry, so it still verifies, and an edit of it is still caught."""
    crm = open_crm(audit=True)
    with crm.session() as s:
        s.customers.add(person(1, "c1"))
    (created,) = list(crm.audit.entries())
    old = {**created.to_data(), "diff": {"name": [None, "Zhang Erasable1"]}}  # as revision 0005 wrote it
    del old["diff_digest"]
    old["hash"] = chain_hash(GENESIS_HASH, {k: v for k, v in old.items() if k not in ("prev_hash", "hash")})
    _tamper(crm, 1, diff=old["diff"], hash=old["hash"], diff_digest=None)
    if hasattr(crm.store, "engine"):
        with crm.store.engine.begin() as conn:
            conn.execute(sa.text("UPDATE pycrm_sequences SET last_hash = :h WHERE name = 'audit'"), {"h": old["hash"]})
    else:
        crm.store._audit_log[0] = old
    assert crm.audit.verify().ok
    with crm.session() as s:
        s.personal.erase("c1")
    (first, _, _) = list(crm.audit.entries())
    assert first.diff == {"erased": crm.audit.history("c1")[-1].diff["erasure"]}
    assert first.diff_digest == legacy_seal(old)
    assert crm.audit.verify() == pycrm.security.VerifyResult(True, erased=2)
    _tamper(crm, 1, actor_id="mallory")
    assert crm.audit.verify().reason == "entry 1 was altered: its hash does not match its content"
