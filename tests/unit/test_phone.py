"""Phone numbers: every way people write a CN, US or UK number reads as the same E.164 number."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycrm import Contact, Customer, PhoneNumber, ValidationError
from pycrm.domain import current_region, default_region
from tests.strategies import PhoneCase, full_width, phone_cases


@given(phone_cases())
def test_every_spelling_parses_to_e164(case: PhoneCase) -> None:
    number = PhoneNumber.parse(case.spelling, case.region)
    assert number.e164 == case.e164
    assert str(number) == case.e164


@given(phone_cases())
def test_parsing_is_idempotent(case: PhoneCase) -> None:
    number = PhoneNumber.parse(case.spelling, case.region)
    assert PhoneNumber.parse(number.e164) == number
    assert PhoneNumber.parse(number) is number


@given(phone_cases())
def test_full_width_digits_read_like_ascii(case: PhoneCase) -> None:
    assert PhoneNumber.parse(full_width(case.spelling), case.region) == PhoneNumber.parse(case.spelling, case.region)


@given(phone_cases(international_only=True))
def test_the_region_of_an_international_number_comes_from_its_country_code(case: PhoneCase) -> None:
    prefix = next(p for p in ("+86", "+44", "+1") if case.e164.startswith(p))
    expected = {"+86": {"CN"}, "+1": {"US"}, "+44": {"GB", "JE", "GG", "IM"}}[prefix]  # +44 7937: Jersey
    assert PhoneNumber.parse(case.spelling).region in expected


@pytest.mark.parametrize(
    ("spelling", "e164"),
    [
        ("+86 138 0013 8000", "+8613800138000"),
        ("0086 138 0013 8000", "+8613800138000"),
        ("0086-138-0013-8000", "+8613800138000"),
        ("(+86) 138-0013-8000", "+8613800138000"),
        ("１３８ ００１３ ８０００", "+8613800138000"),
        ("＋８６ １３８００１３８０００", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("010 6552 9988", "+861065529988"),
        ("+1 (650) 253-0000", "+16502530000"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+44 (0)7911 123456", "+447911123456"),
    ],
)
def test_known_spellings_with_cn_default(spelling: str, e164: str) -> None:
    assert PhoneNumber.parse(spelling, "CN").e164 == e164


def test_a_local_number_needs_a_region() -> None:
    with pytest.raises(ValidationError) as info:
        PhoneNumber.parse("138 0013 8000", field="phones[0]")
    assert info.value.errors[0].field == "phones[0]"
    assert info.value.errors[0].code == "region_required"


def test_the_default_region_applies_inside_its_block_only() -> None:
    assert current_region() is None
    with default_region("CN"):
        assert current_region() == "CN"
        assert PhoneNumber.parse("138 0013 8000").e164 == "+8613800138000"
    assert current_region() is None
    with pytest.raises(ValidationError):
        PhoneNumber.parse("138 0013 8000")


def test_the_explicit_region_wins_over_the_default() -> None:
    with default_region("CN"):
        assert PhoneNumber.parse("(650) 253-0000", "US").e164 == "+16502530000"


def test_the_customers_country_reads_its_local_numbers() -> None:
    with default_region("CN"):
        us = Customer("Globex LLC", country="US", phones=["(650) 253-0000"])
        cn = Customer("华夏科技", phones=["138 0013 8000"])
        uk = Contact("c1", "Olivia", phones=["+44 7911 123456"])
    assert [p.e164 for p in us.phones] == ["+16502530000"]
    assert [p.e164 for p in cn.phones] == ["+8613800138000"]
    assert [p.e164 for p in uk.phones] == ["+447911123456"]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "hello",
        "12",
        "+86 123",
        "+1 000 000 0000",
        "+999 1234567",
        "1" * 65,
        "'; DROP TABLE customers; --",
        "138\x000013\x008000",
        "\ud800",
    ],
)
def test_non_numbers_are_validation_errors_naming_the_field(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        PhoneNumber.parse(bad, "CN", field="phones[2]")
    assert info.value.fields == ["phones[2]"]


@given(st.one_of(st.text(max_size=80), st.integers(), st.none(), st.binary(max_size=10), st.floats()))
def test_any_input_parses_or_raises_validation_error(value: object) -> None:
    try:
        number = PhoneNumber.parse(value, "CN", field="phone")
    except ValidationError as exc:
        assert exc.fields == ["phone"]
    else:
        assert number.e164.startswith("+")
        assert number.e164[1:].isdigit()


@pytest.mark.parametrize("spelling", ["(+86) 138 0013 8000", "(0086) 138-0013-8000", "+86 (138) 0013 8000"])
def test_a_bracketed_country_code_needs_no_region(spelling: str) -> None:
    assert PhoneNumber.parse(spelling).e164 == "+8613800138000"
