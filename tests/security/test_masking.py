"""Field masking: the masks never show more than they promise, masked copies leave the original alone,
and a masked value cannot be written back."""

from __future__ import annotations

import gc
import math
import re

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycrm.domain import Address, Contact, Customer, EmailAddress, PhoneNumber, User
from pycrm.errors import ValidationError
from pycrm.security import (
    DEFAULT_FIELD_RULES,
    FieldRules,
    Masked,
    assert_unmasked,
    mask_data,
    mask_email,
    mask_entity,
    mask_national_id,
    mask_phone,
    mask_text,
    masked_fields,
    restore_masked,
)
from pycrm.security._masking import phone_reveal
from tests.strategies import emails, phone_e164

# ---------------------------------------------------------------- the masks


def test_the_documented_examples() -> None:
    assert mask_phone("+8613800138000") == "+86 138****8000"
    assert mask_phone("13800138000") == "138****8000"
    assert mask_email("li.lei@example.com") == "l***@example.com"
    assert mask_national_id("110101199003077777") == "**************7777"
    assert mask_text("Acme Trading") == "A***"


@given(phone_e164)
def test_a_masked_phone_keeps_the_country_code_and_at_most_3_plus_4_national_digits(e164: str) -> None:
    num = phonenumbers.parse(e164, None)
    national = str(num.national_number)
    masked = mask_phone(e164)
    cc, rest = masked.split(" ")
    assert cc == f"+{num.country_code}"
    head, tail = re.fullmatch(r"(\d*)\*+(\d*)", rest).groups()  # type: ignore[union-attr]
    assert national.startswith(head) and national.endswith(tail)
    assert len(head) <= 3 and len(tail) <= 4
    assert len(national) - len(head) - len(tail) >= max(4, math.ceil(len(national) / 3))


@given(st.text(max_size=40))
def test_a_masked_phone_never_shows_more_digits_than_allowed(text: str) -> None:
    masked = mask_phone(text)
    shown = "".join(ch for ch in masked.split(" ")[-1] if ch.isdigit())
    digits = [ch for ch in text if ch.isdigit() and ch.isascii()]
    assert len(shown) <= max(0, len(digits) - max(4, math.ceil(len(digits) / 3))) or text.strip().startswith("+")
    assert len(shown) <= 7 and "****" in masked


@given(phone_e164)
def test_a_masked_phone_is_not_a_phone(e164: str) -> None:
    with pytest.raises(ValidationError):
        PhoneNumber.parse(mask_phone(e164), "CN")


@pytest.mark.parametrize(
    ("n", "shown"), [(11, (3, 4)), (10, (2, 4)), (9, (1, 4)), (8, (0, 4)), (5, (0, 1)), (4, (0, 0)), (0, (0, 0))]
)
def test_short_numbers_show_less(n: int, shown: tuple[int, int]) -> None:
    assert phone_reveal(n) == shown


@given(emails)
def test_a_masked_email_shows_only_the_first_character_and_the_domain(address: str) -> None:
    local, domain = address.rsplit("@", 1)
    masked = mask_email(address)
    assert masked == (local[0] if len(local) > 1 else "") + "***@" + domain
    assert len(masked.split("@")[0].replace("*", "")) <= 1  # nothing of the local part but its first character


@given(st.text(max_size=30))
def test_a_masked_national_id_shows_at_most_the_last_4(text: str) -> None:
    masked = mask_national_id(text)
    compact = re.sub(r"\s+", "", text)
    shown = masked.lstrip("*")
    assert len(shown) <= 4 and len(shown) <= len(compact) // 2
    assert compact.endswith(shown)


@given(st.text(max_size=30))
def test_mask_text_shows_at_most_one_character(text: str) -> None:
    masked = mask_text(text)
    assert masked.endswith("***") and len(masked) <= 4


# ---------------------------------------------------------------- rules


def test_rules_are_checked_when_built() -> None:
    with pytest.raises(ValidationError) as info:
        FieldRules({"analyst": {"customers.phones": "blur", "customer.emails": "hide", "phones": "mask"}})
    assert info.value.fields == ["rules.analyst.customers.phones", "rules.analyst.customer.emails", "rules.analyst.phones"]


def test_a_field_is_restricted_only_when_every_role_restricts_it() -> None:
    rules = FieldRules(
        {
            "analyst": {"*.phones": "mask", "customers.emails": "hide", "customers.name": "hide"},
            "support": {"customers.phones": "hide", "customers.emails": "hide"},
        }
    )
    assert rules.resolve(["analyst"], "customers") == {"phones": "phone", "emails": "hide", "name": "hide"}
    assert rules.resolve(["analyst"], "contacts") == {"phones": "phone"}
    assert rules.resolve(["analyst", "support"], "customers") == {"phones": "phone", "emails": "hide"}
    assert rules.resolve(["analyst", "admin"], "customers") == {}
    assert rules.resolve([], "customers") == {}


def test_a_repository_rule_beats_a_wildcard() -> None:
    rules = FieldRules({"r": {"*.emails": "hide", "contacts.emails": "mask"}})
    assert rules.resolve(["r"], "contacts") == {"emails": "email"}
    assert rules.resolve(["r"], "customers") == {"emails": "hide"}


# ---------------------------------------------------------------- masking entities


def acme() -> Customer:
    return Customer(
        "Acme",
        emails=["sales@acme.com", "info@acme.com"],
        phones=["+86 138 0013 8000"],
        addresses=[Address(street="1 Main St", city="Shanghai")],
        custom={"national_id": "110101199003077777", "tier": "gold"},
        owner_id="u1",
        id="c1",
    )


def test_mask_entity_leaves_the_original_alone() -> None:
    c = acme()
    seen = mask_entity(c, DEFAULT_FIELD_RULES.resolve(["analyst"], "customers"))
    assert seen.emails == ["s***@acme.com", "i***@acme.com"]
    assert all(isinstance(e, Masked) for e in seen.emails)
    assert seen.phones == ["+86 138****8000"]
    assert seen.addresses == []
    assert seen.custom == {"tier": "gold"}
    assert c.emails[0] == EmailAddress("sales@acme.com") and c.custom["national_id"] == "110101199003077777"
    assert c.addresses and seen.name == "Acme" and seen.id == "c1"
    assert masked_fields(seen) == {"emails", "phones", "addresses", "custom.national_id"}
    assert masked_fields(c) == frozenset()


def test_masks_named_per_field() -> None:
    seen = mask_entity(acme(), {"custom.national_id": "national_id", "name": "text", "owner_id": "redact"})
    assert seen.custom["national_id"] == "**************7777"
    assert (seen.name, seen.owner_id) == ("A***", "***")


def test_a_users_email_is_masked_too() -> None:
    u = User("Wang Fang", "wang.fang@example.com", id="u1")
    assert mask_entity(u, {"email": "email"}).email == "w***@example.com"


def test_writing_a_masked_value_back_is_refused_naming_the_field() -> None:
    seen = mask_entity(acme(), {"phones": "phone", "custom.national_id": "national_id"})
    with pytest.raises(ValidationError) as info:
        assert_unmasked(seen)
    assert info.value.fields == ["phones[0]", "custom.national_id"]
    assert {e.code for e in info.value.errors} == {"masked"}


def test_a_masked_email_parsed_back_into_an_address_is_still_refused() -> None:
    """``x***@domain`` is a valid address to a validator, so the Masked marker alone is not enough."""
    seen = mask_entity(acme(), {"emails": "email"})
    copied = Contact("c1", "Ada", emails=[str(seen.emails[0])])  # the marker is gone now
    with pytest.raises(ValidationError) as info:
        assert_unmasked(copied)
    assert info.value.fields == ["emails[0]"]


def test_restore_masked_keeps_stored_values_behind_masked_and_hidden_fields() -> None:
    stored = acme()
    seen = mask_entity(stored, DEFAULT_FIELD_RULES.resolve(["analyst"], "customers"))
    seen.status = "active"
    saved = restore_masked(seen, stored)
    assert saved.status == "active"
    assert saved.emails == stored.emails and saved.phones == stored.phones and saved.addresses == stored.addresses
    assert saved.custom == stored.custom
    assert_unmasked(saved)


def test_restore_masked_keeps_a_field_the_actor_replaced() -> None:
    stored = acme()
    seen = mask_entity(stored, {"phones": "phone", "emails": "hide"})
    seen.phones = ["+86 139 0013 9000"]
    seen.emails = ["new@acme.com"]
    saved = restore_masked(seen, stored)
    assert [p.e164 for p in saved.phones] == ["+8613900139000"]
    assert [e.value for e in saved.emails] == ["new@acme.com"]


def test_a_masked_value_moved_to_another_field_is_still_refused() -> None:
    stored = acme()
    seen = mask_entity(stored, {"custom.national_id": "national_id"})
    seen.custom = {**seen.custom, "old_id": seen.custom["national_id"]}
    with pytest.raises(ValidationError) as info:
        restore_masked(seen, stored)
    assert info.value.fields == ["custom.old_id"]


def test_the_side_table_does_not_outlive_the_copy() -> None:
    from pycrm.security._masking import _MASKED

    gc.collect()
    before = len(_MASKED)
    seen = mask_entity(acme(), {"phones": "phone"})
    assert len(_MASKED) == before + 1
    del seen
    gc.collect()
    assert len(_MASKED) == before


def test_mask_data_gives_plain_json_text() -> None:
    from pycrm.domain._codec import to_data

    data = mask_data(to_data(acme()), {"emails": "email", "addresses": "hide", "custom.national_id": "hide"})
    assert data["emails"] == ["s***@acme.com", "i***@acme.com"]
    assert type(data["emails"][0]) is str
    assert data["addresses"] == [] and "national_id" not in data["custom"]
    assert mask_data({"addresses": [{"street": "1 Main St"}]}, {"addresses": "text"}) == {"addresses": ["***"]}
