"""Personal data: anonymizing removes what identifies a person and keeps what the business counts on."""

from __future__ import annotations

import pytest
from hypothesis import given

from pycrm.domain import Address, Contact, Customer
from pycrm.errors import ValidationError
from pycrm.security import (
    ANONYMIZED_PREFIX,
    PERSONAL_CUSTOM_KEYS,
    anonymize_contact,
    anonymize_customer,
    consent_allows,
    short_hash,
)
from tests.strategies import customers


def lilei() -> Customer:
    return Customer(
        "李雷",
        kind="person",
        emails=["li.lei@example.com"],
        phones=["+86 138 0013 8000"],
        addresses=[Address(street="1 Main St", city="Shanghai", country="CN")],
        country="CN",
        category="Retail/Online",
        status="active",
        owner_id="u1",
        team_id="t1",
        tags={"vip", "b2c"},
        custom={"National-ID": "110101199003077777", "wechat": "lilei88", "tier": "gold", "birthday": "1990-03-07"},
        id="c1",
        version=3,
    )


def test_anonymize_customer_removes_identity_and_keeps_the_relation() -> None:
    c = lilei()
    a = anonymize_customer(c)
    assert a.name == f"{ANONYMIZED_PREFIX} {short_hash('c1')}"
    assert (a.emails, a.phones, a.addresses) == ([], [], [])
    assert a.custom == {"tier": "gold"}
    assert (a.id, a.version, a.kind, a.country, a.category, a.status, a.owner_id, a.team_id, a.tags) == (
        "c1", 3, "person", "CN", "Retail/Online", "active", "u1", "t1", frozenset({"vip", "b2c"}),
    )  # fmt: skip
    assert c.name == "李雷" and c.emails  # the original is untouched


def test_anonymizing_twice_changes_nothing_more() -> None:
    once = anonymize_customer(lilei())
    assert anonymize_customer(once) == once


def test_the_personal_keys_can_be_chosen() -> None:
    a = anonymize_customer(lilei(), personal_keys=PERSONAL_CUSTOM_KEYS | {"tier"})
    assert a.custom == {}
    assert anonymize_customer(lilei(), personal_keys=()).custom == lilei().custom


@given(customers(id="c42"))
def test_no_email_or_phone_survives(c: Customer) -> None:
    a = anonymize_customer(c)
    text = repr(a)
    for e in c.emails:
        assert e.value not in text
    for p in c.phones:
        assert p.e164 not in text
    assert a.tags == c.tags and a.id == "c42"


def test_an_unsaved_customer_cannot_be_anonymized() -> None:
    with pytest.raises(ValidationError) as info:
        anonymize_customer(Customer("Acme"))
    assert info.value.fields == ["id"]
    with pytest.raises(ValidationError):
        anonymize_customer(Contact("c1", "Ada", id="k1"))  # type: ignore[arg-type]


def test_anonymize_contact() -> None:
    k = Contact(
        "c1", "Ada", "Lovelace", emails=["ada@example.com"], phones=["+44 7911 123456"], title="CEO",
        is_primary=True, consent={"email": True}, id="k1",
    )  # fmt: skip
    a = anonymize_contact(k)
    assert (a.first_name, a.last_name) == (ANONYMIZED_PREFIX, short_hash("k1"))
    assert (a.emails, a.phones, a.title, a.consent) == ([], [], None, {})
    assert (a.customer_id, a.is_primary, a.id) == ("c1", True, "k1")
    assert not consent_allows(a, "email")


@pytest.mark.parametrize(
    ("consent", "channel", "allowed"),
    [
        ({}, "email", False),
        ({"email": True}, "email", True),
        ({"email": False}, "email", False),
        ({"email": True}, "sms", False),
        ({"email": True, "sms": True, "marketing": False}, "sms", False),
        ({"marketing": True}, "email", False),
        ({"marketing": True}, "marketing", True),
    ],
)
def test_consent_is_explicit_per_channel(consent: dict[str, bool], channel: str, allowed: bool) -> None:
    assert consent_allows(Contact("c1", "Ada", consent=consent), channel) is allowed
    assert consent_allows(consent, channel) is allowed


def test_a_channel_must_be_named() -> None:
    with pytest.raises(ValidationError):
        consent_allows({}, "")
