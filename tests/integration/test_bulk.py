"""Bulk paths on every adapter: a few thousand records through add_many, found by index and streamed back."""

from __future__ import annotations

import datetime as dt

import pycrm
from pycrm import Customer, Money, Order

N = 3000


def test_bulk_import_lookup_and_streaming(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        added = s.customers.add_many(
            Customer(
                f"客户 {i:05d}",
                emails=[f"user{i}@example.com"],
                phones=[f"+86 138 {i // 10000:04d} {i % 10000:04d}"],
                tags=["even"] if i % 2 == 0 else [],
            )
            for i in range(N)
        )
    assert added == N
    with crm.session() as s:
        assert s.customers.count() == N
        assert s.customers.count({"tags": "even"}) == N // 2
        (hit,) = s.customers.find({"emails": "USER1234@example.com"})
        assert hit.name == "客户 01234"
        (hit,) = s.customers.find({"phones": "138 0000 2345"})
        assert hit.name == "客户 02345"
        streamed = [c.id for c in s.customers.iter(batch_size=1000)]
        assert len(streamed) == N == len(set(streamed))
        assert streamed == sorted(streamed)
        page = s.customers.find(order_by="-name", limit=3, offset=10)
        assert [c.name for c in page] == [f"客户 {N - 11 - i:05d}" for i in range(3)]
        ids = [c.id for c in s.customers.find({"name": {"startswith": "客户 0000"}}, order_by="name")]
    with crm.session() as s:
        n = s.orders.add_many(
            Order(ids[i % len(ids)], dt.datetime(2025, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=i), Money(f"{i}.99", "CNY"))
            for i in range(500)
        )
    assert n == 500
    with crm.session() as s:
        assert s.orders.count({"amount": {"gte": 250}}) == 250
        assert sum(o.amount.amount for o in s.orders.iter(batch_size=64)) == sum(Money(f"{i}.99").amount for i in range(500))
