"""``s.analytics.rfm`` on every adapter gives exactly what the pure ``pycrm.analytics.rfm`` gives.

On the SQL adapters the scores come from one statement inside the database; the pure function is the
oracle. Order books include ties, single customers, one order each, equal amounts and orders after as_of.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pycrm
from pycrm import Customer, Money, Order
from pycrm.analytics import rfm

UTC = dt.UTC
DB = settings(
    max_examples=max(10, settings.default.max_examples // 3),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

books = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=5),  # customer index: few customers -> many ties
        st.integers(min_value=0, max_value=90 * 24 * 60),  # minutes after 2024-01-01
        st.sampled_from(["0", "10", "10.00", "99.99", "0.0001", "12345.6789", "500"]),
    ),
    max_size=30,
)


@DB
@given(book=books, as_of_day=st.integers(min_value=-5, max_value=95), bins=st.sampled_from([1, 3, 5, 10]))
def test_pushdown_agrees_with_the_pure_function(crm: pycrm.CRM, book, as_of_day: int, bins: int) -> None:
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    as_of = (start + dt.timedelta(days=as_of_day)).date()
    with crm.session() as s:
        ids = [c.id for c in [s.customers.add(Customer(f"C{i}")) for i in range(6)]]
        orders = [Order(ids[k], start + dt.timedelta(minutes=m), Money(a, "CNY")) for k, m, a in book]
        s.orders.add_many(orders)
    try:
        with crm.session() as s:
            got = s.analytics.rfm(as_of=as_of, bins=bins)
        assert got == rfm(orders, as_of=as_of, bins=bins)
        assert all(isinstance(x.monetary, Decimal) for x in got)
    finally:
        with crm.session() as s:  # examples share the store: leave it empty
            for o in s.orders.iter():
                s.orders.delete(o.id)
            for cid in ids:
                s.customers.delete(cid)


def test_an_empty_book_and_mixed_currencies(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        assert s.analytics.rfm(as_of="2024-01-01") == []
        c = s.customers.add(Customer("A"))
        s.orders.add(Order(c.id, dt.datetime(2024, 1, 1, tzinfo=UTC), Money(1, "CNY")))
        s.orders.add(Order(c.id, dt.datetime(2024, 1, 2, tzinfo=UTC), Money(1, "USD")))
    with crm.session() as s:
        with pytest.raises(pycrm.ValidationError, match="currenc"):
            s.analytics.rfm(as_of="2024-02-01")
        assert s.analytics.rfm(as_of="2023-12-31") == []  # as_of before every order
        with pytest.raises(pycrm.ValidationError) as err:
            s.analytics.rfm(as_of="someday")
        assert err.value.fields == ["as_of"]
