"""The SQL adapter writes some JSON columns directly (addresses, flat custom fields); it must be exactly what
``dump_json`` gives, lone surrogates included, or stored rows would differ with the path that wrote them."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pycrm.domain import Address
from pycrm.storage.sql.mapping import _address_dicts, _addresses_out, _dict_out, _trusted, dump_json
from tests import strategies as s

#: Any text at all, lone surrogates too: an Address refuses those, but a value built without checks must
#: still be stored as dump_json stores it.
_any_text = st.none() | s.hostile_texts


def _address(values: dict[str, Any]) -> Address:
    return _trusted(Address, **values)  # type: ignore[no-any-return]


_addresses = st.lists(
    st.fixed_dictionaries({k: _any_text for k in ("street", "city", "postcode", "region", "country")}).map(_address),
    max_size=3,
)


@given(_addresses)
def test_addresses_are_written_as_dump_json_writes_them(items: list[Address]) -> None:
    expected = dump_json(_address_dicts(items), "addresses") if items else "[]"
    assert _addresses_out(items) == expected


def test_addresses_holding_other_values_go_through_dump_json() -> None:
    odd = _address({"street": "1 Main St", "city": 42, "postcode": None, "region": None, "country": "CN"})
    assert _addresses_out([odd]) == '[{"street":"1 Main St","city":42,"postcode":null,"region":null,"country":"CN"}]'
    assert json.loads(_addresses_out([Address(city="深圳"), odd]))[0]["city"] == "深圳"


@given(st.dictionaries(s.hostile_texts, st.one_of(s.hostile_texts, st.integers(), st.booleans(), st.none()), max_size=4))
def test_flat_dicts_are_written_as_dump_json_writes_them(d: dict[str, Any]) -> None:
    assert _dict_out(d, "custom") == (dump_json(d, "custom") if d else "{}")


def test_a_lone_surrogate_is_escaped_as_dump_json_escapes_it() -> None:
    assert _dict_out({"k": "a\udc80"}, "custom") == '{"k":"a\\udc80"}'
    assert _addresses_out([_address({"street": "\ud800", "city": None, "postcode": None, "region": None, "country": None})]) == (
        '[{"street":"\\ud800","city":null,"postcode":null,"region":null,"country":null}]'
    )
