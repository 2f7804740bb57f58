"""Data quality (``s.quality``) on every adapter: the store's counts equal the pure function, hand-checked
figures, the actor's scope, masked and hidden fields, and bad input."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

import pycrm
from pycrm import Contact, Customer, CustomField, Permission, Role, User, ValidationError
from pycrm.domain import EmailAddress, PhoneNumber
from pycrm.security import FieldRules
from pycrm.storage._quality import quality_of

UTC = dt.UTC
NOW = dt.datetime.now(UTC)
CUSTOM = {"customers": [CustomField("tier", "text"), CustomField("score", "integer")]}
# shaped like stored values but refused by today's rules (no such numbering plan / no dot in the domain)
BAD_PHONE = PhoneNumber("+10000000000")
BAD_EMAIL = EmailAddress("x@localhost")
KINDS = {"tier": "custom_text", "score": "custom_int", "national_id": "custom_text"}


def _fill(crm: pycrm.CRM) -> dict[str, str]:
    ids = {}
    with crm.session() as s:
        rows = [
            Customer(
                "A", emails=["a@example.com"], phones=["+8613800138000"], category="vip", country="CN", owner_id="u1", id="c1"
            ),
            Customer("B", phones=[BAD_PHONE, "+8613900139000"], owner_id="u1", tags={"x"}, id="c2", custom={"tier": "gold"}),
            Customer("C", emails=[BAD_EMAIL], owner_id="u2", id="c3", custom={"score": 7}),
            Customer("D", owner_id="u2", id="c4", addresses=[pycrm.Address(city="Beijing", country="CN")]),
            Customer("E", emails=["e@example.com"], category="smb", owner_id="u2", id="c5"),
        ]
        for r in rows:
            ids[r.name] = str(s.customers.add(r).id)
        s.contacts.add(Contact("c1", "Li", "Lei", emails=["li@example.com"], id="p1"))
        s.contacts.add(Contact("c2", "Han", "", phones=[BAD_PHONE], id="p2"))
    return ids


def test_report_equals_the_pure_function_and_hand_counts(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(custom_fields=CUSTOM)
    _fill(crm)
    with crm.session() as s:
        r = s.quality.report("customers", as_of=NOW)
        assert r == quality_of(
            list(s.customers.iter()), "customers", custom={"tier": "custom_text", "score": "custom_int"}, as_of=NOW
        )
        assert r.total == 5
        filled = {f: c.filled for f, c in r.completeness.items()}
        assert filled == {
            "emails": 3,
            "phones": 2,
            "addresses": 1,
            "country": 1,
            "category": 2,
            "owner_id": 5,
            "tags": 1,
            "custom.score": 1,
            "custom.tier": 1,
        }
        assert r.completeness["emails"].share == pytest.approx(0.6)
        assert r.invalid["phones"].records == 1 and r.invalid["phones"].sample == ("c2",)
        assert r.invalid["emails"].records == 1 and r.invalid["emails"].sample == ("c3",)
        assert r.stale == 0
        # a year later every record is stale
        later = s.quality.report("customers", as_of=NOW + dt.timedelta(days=400), fields=["emails"])
        assert later.stale == 5 and list(later.completeness) == ["emails"]
        assert s.quality.report("customers", where={"owner_id": "u1"}, as_of=NOW).total == 2
        c = s.quality.report("contacts", as_of=NOW)
        assert c == quality_of(list(s.contacts.iter()), "contacts", as_of=NOW)
        assert c.completeness["last_name"].filled == 1 and c.invalid["phones"].sample == ("p2",)


def test_scores_with_reasons_and_below(crm: pycrm.CRM) -> None:
    _fill(crm)
    with crm.session() as s:
        every = s.quality.scores("customers", fields=["emails", "phones", "category"], as_of=NOW)
        by_id = {r.id: r for r in every}
        assert [r.id for r in every] == ["c1", "c2", "c3", "c4", "c5"]
        assert by_id["c1"].score == 1.0 and by_id["c1"].reasons == ()
        # c2: phones filled, emails and category missing (1/3), one of two phones invalid (1/2), fresh
        assert by_id["c2"].score == pytest.approx(round((1 / 3 + 1 / 2 + 1) / 3, 4))
        assert by_id["c2"].reasons == ("missing: emails", "missing: category", "invalid: phones")
        low = s.quality.scores("customers", fields=["emails", "phones", "category"], below=0.7, as_of=NOW)
        assert [r.id for r in low] == [r.id for r in every if r.score < 0.7]
        stale = s.quality.scores("customers", fields=["emails"], as_of=NOW + dt.timedelta(days=400), limit=2)
        assert len(stale) == 2 and all(any(x.startswith("stale:") for x in r.reasons) for r in stale)


def test_an_actor_counts_only_its_records(crm: pycrm.CRM) -> None:
    _fill(crm)
    rep = User("Rep", "rep@example.com", roles=["sales"], id="u1")
    with crm.session() as s:
        mine = [c for c in s.customers.iter() if c.owner_id == "u1"]
    with crm.session(actor=rep) as s:
        r = s.quality.report("customers", as_of=NOW)
        assert r.total == 2 and r == quality_of(mine, "customers", as_of=NOW)
        assert "c3" not in r.invalid["emails"].sample and r.invalid["emails"].records == 0
        assert {x.id for x in s.quality.scores("customers", as_of=NOW)} == {"c1", "c2"}
        # a filter narrows the scope, never widens it
        assert s.quality.report("customers", where={"owner_id": "u2"}, as_of=NOW).total == 0


RULES = FieldRules({"clerk": {"customers.phones": "mask", "customers.emails": "hide"}})
CLERK = User("Clerk", "clerk@example.com", roles=[Role("clerk", [Permission("*", "*", "all")])], id="u7")


def test_masked_and_hidden_fields_are_not_reported(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(field_rules=RULES)
    _fill(crm)
    with crm.session(actor=CLERK) as s:
        r = s.quality.report("customers", as_of=NOW)
        assert "phones" not in r.completeness and "emails" not in r.completeness
        assert r.invalid == {} and set(r.skipped) == {"phones", "emails"}
        assert r.completeness["category"].filled == 2
        for field in ("emails", "phones"):
            with pytest.raises(ValidationError) as err:
                s.quality.report("customers", fields=[field])
            assert f"fields.{field}" in str(err.value)
        assert all("emails" not in " ".join(x.reasons) for x in s.quality.scores("customers", as_of=NOW))
        # contacts' fields carry no rule: reported in full
        assert s.quality.report("contacts", as_of=NOW).invalid["phones"].records == 1


@pytest.mark.parametrize(
    ("kw", "named"),
    [
        ({"entity": "nothing"}, "entity"),
        ({"fields": ["colour"]}, "fields.colour"),
        ({"fields": ["custom.undeclared"]}, "fields.custom.undeclared"),
        ({"fields": "emails"}, "fields"),
        ({"fields": []}, "fields"),
        ({"stale_days": 0}, "stale_days"),
        ({"stale_days": "7"}, "stale_days"),
        ({"as_of": dt.datetime(2025, 1, 1)}, "as_of"),
        ({"where": {"colour": "red"}}, "colour"),
    ],
)
def test_bad_input_names_the_field(crm: pycrm.CRM, kw: dict[str, object], named: str) -> None:
    kw = dict(kw)
    entity = kw.pop("entity", "customers")
    with crm.session() as s, pytest.raises(ValidationError) as err:
        s.quality.report(entity, **kw)  # type: ignore[arg-type]
    assert named in str(err.value)


def test_bad_scores_input(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        for kw in ({"below": 2}, {"below": True}, {"limit": -1}):
            with pytest.raises(ValidationError):
                s.quality.scores("customers", **kw)  # type: ignore[arg-type]


def test_encrypted_fields_are_counted_and_checked_decrypted(open_crm: Callable[..., pycrm.CRM]) -> None:
    from pycrm.security import KeyRing

    ring = KeyRing({"k1": bytes(range(32))}, active="k1", index_key=bytes(range(32, 64)))
    crm = open_crm(
        keyring=ring,
        encrypted={"customers": ["custom.national_id", "emails", "phones"]},
        custom_fields={"customers": [*CUSTOM["customers"], CustomField("national_id", "text")]},
    )
    _fill(crm)
    with crm.session() as s:
        s.customers.update(attrs_evolve(s.customers.get("c4"), custom={"national_id": "110101199003077777"}))
    with crm.session() as s:
        r = s.quality.report("customers", as_of=NOW)
        assert r == quality_of(list(s.customers.iter()), "customers", custom=KINDS, as_of=NOW)
        assert r.completeness["emails"].filled == 3 and r.completeness["custom.national_id"].filled == 1
        assert r.invalid["phones"].sample == ("c2",) and r.invalid["emails"].sample == ("c3",)


def attrs_evolve(entity: Customer, **changes: object) -> Customer:
    import attrs

    return attrs.evolve(entity, **changes)  # type: ignore[misc]
