"""Upsert keys held unique by the store (``custom.external_id`` and custom fields declared ``unique=True``),
on every adapter: a taken value is refused with a ValidationError naming the field (``duplicate_key``),
never a driver error, and says nothing of the record that holds it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

import pycrm
from pycrm import CRMError, Customer, CustomField, FieldError, User, ValidationError
from pycrm.io import ImportRejected, import_file
from pycrm.security import KeyRing

REP = User("Rep", "rep@example.com", roles=["sales"], team_id="t1", id="u1")
KEYRING = KeyRing({"k1": bytes(range(32))}, active="k1", index_key=bytes(range(32, 64)))


def _codes(exc: ValidationError) -> list[tuple[str, str]]:
    return [(e.field, e.code) for e in exc.errors]


def test_an_add_with_a_taken_external_id_names_the_field(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        s.customers.add(Customer("Acme", custom={"external_id": "E1"}))
    late = Customer("Acme again", custom={"external_id": "E1"})
    with pytest.raises(ValidationError) as caught, crm.session() as s:
        s.customers.add(late)
    assert _codes(caught.value) == [("custom.external_id", "duplicate_key")]
    assert (late.id, late.version) == (None, 0)  # the refused entity is left as it was given
    with crm.session() as s:
        s.customers.add(Customer("Other", custom={"external_id": "e1"}))  # another value (case counts)
        s.customers.add(Customer("Number", custom={"external_id": 1}))  # another type is another value
        s.customers.add(Customer("None", custom={"external_id": None}))  # no value
        s.customers.add(Customer("None 2", custom={}))
        assert s.customers.count() == 5


def test_add_many_names_each_row_whose_key_is_taken(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        s.customers.add(Customer("Acme", custom={"external_id": "E1"}))
    batch = [
        Customer("New", custom={"external_id": "E2"}),
        Customer("Stored", custom={"external_id": "E1"}),
        Customer("Twice", custom={"external_id": "E2"}),
    ]
    with pytest.raises(ValidationError) as caught, crm.session() as s:
        s.customers.add_many(batch)
    assert sorted(_codes(caught.value)) in (
        [("[1].custom.external_id", "duplicate_key"), ("[2].custom.external_id", "duplicate_key")],
        [("[2].custom.external_id", "duplicate_key")],  # the repeat inside the batch is found first
    )
    with crm.session() as s:
        assert s.customers.count() == 1  # all or nothing


def test_updates_and_deletes_move_and_free_key_values(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        a = s.customers.add(Customer("A", custom={"external_id": "E1"}))
        b = s.customers.add(Customer("B", custom={"external_id": "E2"}))
    with pytest.raises(ValidationError) as caught, crm.session() as s:
        b2 = s.customers.get(b.id)
        b2.custom = {"external_id": "E1"}
        s.customers.update(b2)
    assert _codes(caught.value) == [("custom.external_id", "duplicate_key")]
    with crm.session() as s:
        a2 = s.customers.get(a.id)
        a2.custom = {"external_id": "E3"}  # E1 is free again
        s.customers.update(a2)
        b2 = s.customers.get(b.id)
        b2.custom = {"external_id": "E1"}
        s.customers.update(b2)
        b2.name = "B renamed"  # an update that keeps its key
        s.customers.update(b2)
    with crm.session() as s:
        s.customers.delete(a.id)
        s.customers.add(Customer("Takes E3", custom={"external_id": "E3"}))
        assert sorted(c.custom["external_id"] for c in s.customers.find()) == ["E1", "E3"]


def test_a_session_that_rolls_back_frees_what_it_took(crm: pycrm.CRM) -> None:
    with pytest.raises(RuntimeError), crm.session() as s:
        s.customers.add(Customer("Gone", custom={"external_id": "E1"}))
        raise RuntimeError("roll back")
    with crm.session() as s:
        s.customers.add(Customer("Kept", custom={"external_id": "E1"}))
        assert s.customers.count() == 1


def test_custom_fields_declared_unique(open_crm: Callable[..., pycrm.CRM]) -> None:
    fields = [CustomField("tax_no", unique=True), CustomField("code", "integer", unique=True), CustomField("note")]
    crm = open_crm(custom_fields={"customers": fields})
    with crm.session() as s:
        s.customers.add(Customer("A", custom={"tax_no": "T1", "code": 7, "note": "same"}))
        s.customers.add(Customer("B", custom={"note": "same"}))  # a field not declared unique may repeat
    for custom, field in (({"tax_no": "T1"}, "custom.tax_no"), ({"code": 7}, "custom.code")):
        with pytest.raises(ValidationError) as caught, crm.session() as s:
            s.customers.add(Customer("C", custom=custom))
        assert _codes(caught.value) == [(field, "duplicate_key")]


def test_a_unique_definition_is_checked() -> None:
    for make, code in (
        (lambda: CustomField("flag", "boolean", unique=True), "unsupported"),
        (lambda: CustomField("price", "decimal", unique=True), "unsupported"),
        (lambda: CustomField("not an identifier", unique=True), "invalid_name"),
        (lambda: CustomField("x" * 91, unique=True), "invalid_name"),
        (lambda: CustomField("ok", unique="yes"), "type"),
    ):
        with pytest.raises(ValidationError) as caught:
            make()
        assert [e.code for e in caught.value.errors] == [code]
    with pytest.raises(ValidationError) as caught:
        pycrm.open("memory://", custom_fields={"orders": [CustomField("ref", unique=True)]})
    assert _codes(caught.value) == [("custom_fields.orders.ref", "unsupported")]


def test_declaring_a_key_whose_values_are_shared_is_refused_naming_them(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        a = s.customers.add(Customer("A", custom={"tax_no": "T1"}))
        b = s.customers.add(Customer("B", custom={"tax_no": "T1"}))
        s.customers.add(Customer("C", custom={"tax_no": "T2"}))
    with pytest.raises(CRMError) as caught:
        pycrm.CRM(crm.store, custom_fields={"customers": [CustomField("tax_no", unique=True)]})
    assert "custom.tax_no" in str(caught.value) and a.id in str(caught.value) and b.id in str(caught.value)
    with crm.session() as s:  # nothing changed: the key is not held unique
        s.customers.add(Customer("D", custom={"tax_no": "T2"}))
        s.customers.delete(b.id)
        s.customers.delete(s.customers.find({"name": "D"})[0].id)
    unique = pycrm.CRM(crm.store, custom_fields={"customers": [CustomField("tax_no", unique=True)]})
    with pytest.raises(ValidationError) as refused, unique.session() as s:
        s.customers.add(Customer("E", custom={"tax_no": "T2"}))
    assert _codes(refused.value) == [("custom.tax_no", "duplicate_key")]
    with pytest.raises(ValidationError), crm.session() as s:  # held for every writer, declared or not
        s.customers.add(Customer("F", custom={"tax_no": "T1"}))


def test_an_encrypted_key_is_unique_by_its_blind_index(open_crm: Callable[..., pycrm.CRM], adapter: str, store_url: str) -> None:
    crm = open_crm(keyring=KEYRING, encrypted={"customers": ["custom.external_id"]})
    with crm.session() as s:
        s.customers.add(Customer("A", custom={"external_id": "SECRET-77"}))
    with pytest.raises(ValidationError) as caught, crm.session() as s:
        s.customers.add(Customer("B", custom={"external_id": "SECRET-77"}))
    assert _codes(caught.value) == [("custom.external_id", "duplicate_key")]
    assert "SECRET" not in str(caught.value)
    if adapter == "memory":
        held = [v for (_, v) in crm.store.table(Customer).keys]  # type: ignore[attr-defined]
    else:
        engine = sa.create_engine(store_url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                held = [v for (v,) in conn.execute(sa.text("SELECT value FROM customer_keys"))]
        finally:
            engine.dispose()
    assert len(held) == 1 and held[0].startswith("b:") and "SECRET" not in held[0]


def test_a_taken_key_tells_a_scoped_actor_nothing_of_the_holder(crm: pycrm.CRM, tmp_path: Path) -> None:
    with crm.session() as s:
        theirs = s.customers.add(Customer("SECRET Theirs", owner_id="u2", team_id="t2", custom={"external_id": "E9"}))
    with pytest.raises(ValidationError) as caught, crm.session(actor=REP) as s:
        s.customers.add(Customer("Mine", owner_id="u1", team_id="t1", custom={"external_id": "E9"}))
    shown = str(caught.value) + repr(caught.value.errors)
    assert _codes(caught.value) == [("custom.external_id", "duplicate_key")]
    assert "SECRET" not in shown and theirs.id not in shown and "u2" not in shown
    # an import by the actor matches only what it sees: the row is refused as taken, nothing of theirs shows
    path = tmp_path / "mine.csv"
    path.write_text("custom.external_id,name,owner_id\nE9,Mine,u1\nE10,Also mine,u1\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as rejected:
        import_file(crm, path, actor=REP)
    (problem,) = rejected.value.report.problems
    assert (problem.row, problem.column, problem.value) == (2, "custom.external_id", "E9")
    assert "unique key" in problem.message
    text = str(rejected.value) + repr(rejected.value.report)
    assert "SECRET" not in text and theirs.id not in text and "'u2'" not in text
    with crm.session() as s:
        assert s.customers.count() == 1
        assert s.customers.get(theirs.id).name == "SECRET Theirs"


def test_a_merge_hands_a_key_to_the_survivor_and_an_unmerge_takes_it_back(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        keep = s.customers.add(Customer("Acme"))
        dup = s.customers.add(Customer("ACME Ltd", custom={"external_id": "E1"}))
        record = s.customers.merge(keep.id, dup.id)
        assert s.customers.get(keep.id).custom == {"external_id": "E1"}
        with pytest.raises(ValidationError):
            s.customers.add(Customer("Third", custom={"external_id": "E1"}))
    with crm.session() as s:
        s.customers.unmerge(record.id)
    with crm.session() as s:
        assert s.customers.get(keep.id).custom == {}
        assert s.customers.get(dup.id).custom == {"external_id": "E1"}
        (holder,) = s.customers.find({"custom.external_id": "E1"})
        assert holder.id == dup.id


def test_in_memory_a_key_committed_meanwhile_fails_the_later_commit() -> None:
    """The memory adapter checks again at commit what another session committed since (the SQL adapters make
    the second insert wait for the first transaction instead)."""
    crm = pycrm.open("memory://")
    first = crm.store.begin()
    second = crm.store.begin()
    first.insert(Customer, [_stored(Customer("First", custom={"external_id": "E1"}), "c1")])
    second.insert(Customer, [_stored(Customer("Second", custom={"external_id": "E1"}), "c2")])
    first.commit()
    with pytest.raises(ValidationError) as caught:
        second.commit()
    assert caught.value.errors == [FieldError("custom.external_id", "duplicate_key", caught.value.errors[0].message)]
    second.rollback()
    with crm.session() as s:
        assert [c.name for c in s.customers.find()] == ["First"]


def _stored(c: Customer, id: str) -> Customer:
    from pycrm.domain import utcnow
    from pycrm.storage._repository import stamp_new

    object.__setattr__(c, "id", id)
    stamp_new(c, utcnow())
    return c
