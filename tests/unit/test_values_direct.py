"""Value objects built directly (not through ``parse``) are checked too: garbage is never stored."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycrm import ValidationError
from pycrm.domain import Customer, EmailAddress, PhoneNumber


@pytest.mark.parametrize(
    ("make", "bad"),
    [
        (PhoneNumber, "garbage"),
        (PhoneNumber, "13800138000"),  # local, not E.164: PhoneNumber.parse reads it with a region
        (PhoneNumber, "+0123"),
        (PhoneNumber, 8613800138000),
        (EmailAddress, "not-an-email"),
        (EmailAddress, "two@at@signs"),
        (EmailAddress, "spaces in@it.cn"),
        (EmailAddress, None),
    ],
)
def test_a_value_object_built_directly_refuses_what_parse_would(make: type, bad: object) -> None:
    with pytest.raises(ValidationError) as caught:
        make(bad)
    assert caught.value.errors[0].code in ("invalid_phone", "invalid_email")


def test_garbage_built_directly_never_reaches_an_entity() -> None:
    with pytest.raises(ValidationError):
        Customer("Acme", phones=[PhoneNumber("garbage")])


def test_stored_forms_are_accepted() -> None:
    assert PhoneNumber("+8613800138000").e164 == "+8613800138000"
    assert EmailAddress("li.lei@example.com").value == "li.lei@example.com"
    sealed = "bi:0123456789abcdef0123456789abc|enc:v1:k1:AAAA"  # an encrypted element as stored
    assert PhoneNumber(sealed).e164 == sealed and EmailAddress(sealed).value == sealed


@given(st.text(min_size=200, max_size=5000))
def test_an_error_quotes_only_a_short_prefix_of_a_bad_value(text: str) -> None:
    for make in (PhoneNumber, EmailAddress):
        try:
            make(text)
        except ValidationError as exc:
            assert len(str(exc)) < 200
