"""``{"custom.<key>": value}`` filters: the same rows on every adapter, type-exact, missing keys as NULL."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pycrm
from pycrm import Customer

DB = settings(
    max_examples=max(10, settings.default.max_examples // 3),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.sampled_from(["gold", "Gold", "gold ", "5", "上海", ""]), st.integers(min_value=-3, max_value=6), st.booleans()
)
customs = st.dictionaries(st.sampled_from(["tier", "n"]), st.one_of(scalars, st.none()), max_size=2)


def holds(custom: dict[str, Any], key: str, op: str, value: Any) -> bool:
    """The rule, written plainly: type-exact equality; a missing key or JSON null is NULL."""
    have = custom.get(key)

    def same(v: Any) -> bool:
        return type(have) is type(v) and have == v

    if op == "is_null":
        return (have is None) == value
    if have is None:
        return False
    if op == "eq":
        return same(value)
    if op == "ne":
        return not same(value)
    return any(same(v) for v in value)


filters = st.one_of(
    st.tuples(st.just("eq"), scalars),
    st.tuples(st.just("ne"), scalars),
    st.tuples(st.just("in"), st.lists(scalars, max_size=3)),
    st.tuples(st.just("is_null"), st.booleans()),
)


@DB
@given(rows=st.lists(customs, min_size=1, max_size=6), key=st.sampled_from(["tier", "n"]), flt=filters)
def test_custom_filters_match_the_rule_on_every_adapter(crm: pycrm.CRM, rows, key: str, flt) -> None:
    op, value = flt
    with crm.session() as s:
        added = [s.customers.add(Customer(f"C{i}", custom=row)) for i, row in enumerate(rows)]
    try:
        with crm.session() as s:
            got = {c.id for c in s.customers.find({f"custom.{key}": {op: value}})}
            assert s.customers.count({f"custom.{key}": {op: value}}) == len(got)
        assert got == {c.id for c, row in zip(added, rows) if holds(row, key, op, value)}
    finally:
        with crm.session() as s:  # examples share the store: leave it empty
            for c in added:
                s.customers.delete(c.id)


def test_custom_filters_combine_with_other_conditions(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        s.customers.add_many(
            [
                Customer("Acme", status="active", custom={"tier": "gold", "seats": 50, "trial": False}),
                Customer("Beta", status="lead", custom={"tier": "gold", "seats": 5, "trial": True}),
                Customer("Gamma", status="active"),
            ]
        )
    with crm.session() as s:
        names = [c.name for c in s.customers.find({"custom.tier": "gold", "status": "active"})]
        assert names == ["Acme"]
        assert [c.name for c in s.customers.find({"custom.trial": True})] == ["Beta"]
        assert [c.name for c in s.customers.find({"custom.trial": 1})] == []  # type-exact: True is not 1
        assert [c.name for c in s.customers.find({"custom.seats": {"in": [50, 7]}}, order_by="name")] == ["Acme"]
        assert [c.name for c in s.customers.find({"custom.tier": None})] == ["Gamma"]


@pytest.mark.parametrize(
    ("where", "field"),
    [
        ({"custom.a-b": "x"}, "where.custom.a-b"),
        ({"custom.": "x"}, "where.custom."),
        ({"custom.tier": 1.5}, "where.custom.tier.eq"),
        ({"custom.tier": {"gt": 1}}, "where.custom.tier.gt"),
        ({"custom.tier": {"contains": "g"}}, "where.custom.tier.contains"),
    ],
)
def test_bad_custom_filters_name_the_field(crm: pycrm.CRM, where: dict[str, Any], field: str) -> None:
    with crm.session() as s, pytest.raises(pycrm.ValidationError) as err:
        s.customers.find(where)
    assert err.value.fields == [field]
