"""Entities to JSON-safe data and back: exact, for every kind (merge snapshots and dumps rely on it)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given

from pycrm.domain import ENTITIES, Customer, Money, Order, OrderLine, Product
from pycrm.domain._codec import from_data, to_data
from pycrm.errors import ValidationError
from tests import strategies as st_
from tests.contract._data import children, full_customer


def _roundtrip(entity: object) -> object:
    data = to_data(entity)  # type: ignore[arg-type]
    text = json.dumps(data, ensure_ascii=False)  # JSON-safe: nothing json cannot write
    return from_data(type(entity), json.loads(text))  # type: ignore[arg-type]


def test_every_kind_round_trips_with_every_field_filled() -> None:
    lined = Order.from_lines(
        "c1",
        dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC),
        [OrderLine("p1", 3, Money("12.50", "EUR"), discount="2.5"), OrderLine("p2", 1, Money("0.0001", "EUR"))],
        order_no="SO-9",
    )
    product = Product("TEA-001", "龙井 Longjing", category="Tea/Green", unit="tin", active=False, custom={"origin": "杭州"})
    samples = {"customers": full_customer(), **children("c1"), "products": product, "lined orders": lined}
    assert set(samples) - {"lined orders"} == set(ENTITIES)
    for name, entity in samples.items():
        back = _roundtrip(entity)
        assert back == entity, name
        assert type(back) is type(entity)


def test_defaults_round_trip() -> None:
    c = Customer("Acme")
    back = _roundtrip(c)
    assert back == c
    assert back.tags == frozenset() and back.emails == []  # type: ignore[attr-defined]


def test_money_keeps_its_digits() -> None:
    data = to_data(children("c1")["orders"])  # type: ignore[arg-type]
    assert data["amount"] == {"amount": "99.95", "currency": "USD"}


@given(st_.customers())
def test_generated_customers_round_trip(c: Customer) -> None:
    assert _roundtrip(c) == c


def test_broken_data_is_a_validation_error_naming_the_kind() -> None:
    data = to_data(full_customer())
    del data["emails"]
    with pytest.raises(ValidationError, match="not Customer data"):
        from_data(Customer, data)
    data = to_data(full_customer())
    data["created_at"] = "yesterday"
    with pytest.raises(ValidationError, match="not Customer data"):
        from_data(Customer, data)
