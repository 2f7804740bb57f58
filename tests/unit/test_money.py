"""Money: Decimal amounts with an ISO 4217 currency; no floats, nothing rounded behind a user's back."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycrm import Money, ValidationError
from tests.strategies import CURRENCIES, amounts, currencies, money


@given(amounts(), currencies)
def test_amounts_are_kept_exactly(amount: Decimal, currency: str) -> None:
    m = Money(amount, currency)
    assert m.amount == amount
    assert m.currency == currency


@given(amounts(), currencies)
def test_decimal_strings_ints_and_decimals_agree(amount: Decimal, currency: str) -> None:
    assert Money(str(amount), currency.lower()) == Money(amount, currency)
    if amount == amount.to_integral_value():
        assert Money(int(amount), currency).amount == amount


@given(money, money)
def test_addition_is_exact_and_commutative_within_a_currency(a: Money, b: Money) -> None:
    b = Money(b.amount // 2, a.currency)  # stay inside the limit
    a = Money(a.amount // 2, a.currency)
    assert a + b == b + a
    assert (a + b).amount == a.amount + b.amount
    assert (a + b) - b == a


@given(money, st.sampled_from(CURRENCIES))
def test_mixing_currencies_is_refused(a: Money, other: str) -> None:
    if other == a.currency:
        return
    with pytest.raises(ValidationError) as info:
        a + Money(1, other)
    assert info.value.errors[0].code == "currency_mismatch"


@given(amounts(max_abs=10**9), st.decimals(min_value=0, max_value=1, places=2))
def test_scaling_rounds_half_even_to_four_places(amount: Decimal, factor: Decimal) -> None:
    scaled = Money(amount, "CNY") * factor
    assert scaled.amount == (amount * factor).quantize(Decimal("0.0001"))
    assert scaled.amount.as_tuple().exponent >= -4


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_floats_are_refused(value: float) -> None:
    with pytest.raises(ValidationError) as info:
        Money(value, "USD")
    assert info.value.fields == ["amount"]


@pytest.mark.parametrize(
    "value",
    [
        "1.23456",
        Decimal("0.00001"),
        Decimal("10") ** 14,
        -(Decimal("10") ** 14),
        "1e20",
        "NaN",
        "Infinity",
        "-inf",
        "abc",
        "",
        "1,2,3.4.5",
        True,
        None,
        [1],
        b"12",
    ],
)
def test_amounts_out_of_range_too_precise_or_not_numbers_are_refused(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        Money.parse(value, "USD")
    assert info.value.fields == ["amount"]


@pytest.mark.parametrize("value", ["1.23450", Decimal("99999999999999.9999"), "-99999999999999.9999", "1,234.50", "１２３.４"])
def test_edge_amounts_are_accepted(value: object) -> None:
    Money.parse(value, "CNY")


@pytest.mark.parametrize("currency", ["XXX", "", "US", "usdollar", "元", None, 840])
def test_unknown_currencies_are_refused(currency: object) -> None:
    with pytest.raises(ValidationError) as info:
        Money.parse("1", currency)
    assert info.value.fields == ["amount.currency"]


def test_parse_reports_amount_and_currency_problems_together() -> None:
    with pytest.raises(ValidationError) as info:
        Money.parse(1.5, "ZZZ", field="price")
    assert info.value.fields == ["price", "price.currency"]


def test_currency_codes_are_upper_cased() -> None:
    assert Money("10", "cny") == Money(Decimal("10.00"), "CNY")
    assert Money("1234.50", "cny").currency == "CNY"
