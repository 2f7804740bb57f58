"""Basket analysis on a store, every adapter: ``s.analytics.frequent_itemsets``, ``basket_rules`` and
``also_bought`` (item and pair counts pushed down into SQL) equal the pure functions over the baskets of the
orders read, follow the actor's scope (another owner's orders add nothing) and name bad thresholds."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest

import pycrm
from pycrm import Customer, Money, Order, OrderLine, Product, User
from pycrm.analytics import also_bought, association_rules, frequent_itemsets, order_baskets
from pycrm.errors import ValidationError

UTC = dt.UTC
T0 = dt.datetime(2026, 1, 1, 9, tzinfo=UTC)


def _fill(crm: pycrm.CRM, seed: int, n_orders: int = 120) -> list[str]:
    """Random orders over 12 products with a skewed popularity and two bundles; some orders without lines,
    some lines repeating a product; customers of two owners."""
    rnd = random.Random(seed)
    with crm.session() as s:
        pids = [str(s.products.add(Product(f"SKU-{i}", f"Product {i}", id=f"p{i:02d}")).id) for i in range(12)]
        cids = [str(s.customers.add(Customer(f"Kunde {i}", owner_id=["u1", "u2"][i % 2], id=f"k{i}")).id) for i in range(6)]
        bundles = [pids[:3], pids[3:7]]
        orders = []
        for n in range(n_orders):
            at = T0 + dt.timedelta(days=rnd.randint(0, 90), hours=rnd.randint(0, 23))
            if rnd.random() < 0.1:
                orders.append(Order(rnd.choice(cids), at, Money("5", "EUR")))
                continue
            items = list(rnd.choice(bundles)) if rnd.random() < 0.4 else []
            items += rnd.choices(pids, weights=[12 - i for i in range(12)], k=rnd.randint(1, 4))
            if rnd.random() < 0.2:
                items.append(items[0])  # the same product on two lines: once in the basket
            lines = [OrderLine(p, rnd.randint(1, 3), Money("2.50", "EUR")) for p in items]
            orders.append(Order.from_lines(rnd.choice(cids), at, lines, order_no=f"SO-{n}"))
        s.orders.add_many(orders)
    return pids


def _baskets(s: Any, **kw: Any) -> list[tuple[str, str]]:
    return list(order_baskets(s.orders.iter(kw.get("where")), start=kw.get("start"), end=kw.get("end")))


@pytest.mark.parametrize("seed", [1, 2])
def test_store_basket_analysis_equals_the_pure_functions(crm: pycrm.CRM, seed: int) -> None:
    pids = _fill(crm, seed)
    cases: list[dict[str, Any]] = [
        {"min_support": 0.05},
        {"min_support": 0.1, "max_len": 2},
        {"min_support": 4},
        {"min_support": 0.03, "start": "2026-01-20", "end": "2026-03-01"},
        {"min_support": 0.05, "where": {"customer_id": {"in": ["k1", "k2", "k4"]}}},
        {"min_support": 0.07, "max_len": 3, "where": {"lines": "p04"}},
        {"min_support": 0.28},
    ]
    with crm.session() as s:
        for kw in cases:
            mine = {k: v for k, v in kw.items() if k in ("min_support", "max_len")}
            want = frequent_itemsets(_baskets(s, **kw), **mine)
            got = s.analytics.frequent_itemsets(**kw)
            assert got.n_baskets == want.n_baskets and got.as_dict() == want.as_dict(), kw
            assert [(i.items, i.count) for i in got] == [(i.items, i.count) for i in want], kw
            assert len(want) > 1 or kw["min_support"] == 0.28, kw  # the cases mine something
            for rule_kw in ({}, {"metric": "lift", "min_threshold": 1.1}, {"min_threshold": 0.3, "min_lift": 1.2}):
                got_rules = s.analytics.basket_rules(**kw, **rule_kw)
                assert list(got_rules) == list(association_rules(want, **rule_kw)), (kw, rule_kw)
        some_rules = s.analytics.basket_rules(min_support=0.05, min_threshold=0.3)
        assert len(some_rules) > 0
        for p in [*pids[:5], "nope"]:
            for kw in ({}, {"top": 3, "min_count": 2}, {"top": None, "start": "2026-02-01"}, {"where": {"customer_id": "k3"}}):
                base = {k: v for k, v in kw.items() if k in ("top", "min_count")}
                want_rows = also_bought(_baskets(s, **kw), p, **base)
                assert list(s.analytics.also_bought(p, **kw)) == list(want_rows), (p, kw)
        assert len(s.analytics.also_bought("p00")) > 0


def test_store_basket_analysis_on_an_empty_store(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        s.customers.add(Customer("Acme", id="acme"))
        s.orders.add(Order("acme", T0, Money("5")))  # no lines: no basket
        fi = s.analytics.frequent_itemsets(min_support=0.5)
        assert (fi.n_baskets, len(fi)) == (0, 0)
        assert list(s.analytics.basket_rules(min_support=1)) == []
        assert list(s.analytics.also_bought("tea")) == []


def test_another_owners_orders_add_nothing(crm: pycrm.CRM) -> None:
    """A sales rep with its own scope mines the baskets of its own customers' orders only: the other owner's
    orders, even with the same products, change no count, rule or "also bought" row."""
    with crm.session() as s:
        for p in ("tea", "milk", "sugar", "cake"):
            s.products.add(Product(p.upper(), p.title(), id=p))
        s.customers.add(Customer("Mine", owner_id="u1", id="mine"))
        s.customers.add(Customer("Theirs", owner_id="u2", id="theirs"))

        def order(cid: str, *items: str) -> Order:
            return Order.from_lines(cid, T0, [OrderLine(p, 1, Money("1.00")) for p in items])

        mine = [order("mine", "tea", "milk"), order("mine", "tea", "milk", "sugar"), order("mine", "tea")]
        s.orders.add_many(mine)
    rep = User("Rep", "rep@example.com", roles=["sales"], id="u1")
    with crm.session(actor=rep) as s:
        before = (
            s.analytics.frequent_itemsets(min_support=1).as_dict(),
            list(s.analytics.basket_rules(min_support=1, min_threshold=0.1)),
            list(s.analytics.also_bought("tea")),
            list(s.analytics.also_bought("cake")),
        )
    with crm.session() as s:  # the other owner buys cake with everything, many times
        s.orders.add_many([order("theirs", "tea", "milk", "sugar", "cake") for _ in range(5)])
    with crm.session(actor=rep) as s:
        after = (
            s.analytics.frequent_itemsets(min_support=1).as_dict(),
            list(s.analytics.basket_rules(min_support=1, min_threshold=0.1)),
            list(s.analytics.also_bought("tea")),
            list(s.analytics.also_bought("cake")),
        )
        assert after == before
        fi = s.analytics.frequent_itemsets(min_support=1)
        assert fi.n_baskets == 3 and fi.count(["tea"]) == 3 and fi.count(["cake"]) is None
        assert [(r.item, r.count) for r in s.analytics.also_bought("tea")] == [("milk", 2), ("sugar", 1)]
        assert list(s.analytics.also_bought("cake")) == []
    with crm.session() as s:  # the whole store sees them
        assert s.analytics.frequent_itemsets(min_support=1).count(["cake", "tea"]) == 5


@pytest.mark.parametrize(
    ("call", "field"),
    [
        ({"min_support": 0}, "min_support"),
        ({"min_support": 1.5}, "min_support"),
        ({"min_support": "0.1"}, "min_support"),
        ({"min_support": 0.1, "max_len": 0}, "max_len"),
        ({"min_support": 0.1, "metric": "zest"}, "metric"),
        ({"min_support": 0.1, "min_threshold": 1.5}, "min_threshold"),
        ({"min_support": 0.1, "min_confidence": -0.1}, "min_confidence"),
        ({"min_support": 0.1, "min_lift": float("nan")}, "min_lift"),
        ({"min_support": 0.1, "start": "2026-13-01"}, "start"),
    ],
)
def test_bad_thresholds_are_named(crm: pycrm.CRM, call: dict[str, Any], field: str) -> None:
    with crm.session() as s, pytest.raises(ValidationError) as e:
        s.analytics.basket_rules(**call)
    assert field in [x.field for x in e.value.errors]


def test_bad_also_bought_arguments_are_named(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        bad = [({"product_id": ""}, "product_id"), ({"product_id": "p", "top": 0}, "top")]
        for kw, field in [*bad, ({"product_id": "p", "min_count": 0}, "min_count")]:
            with pytest.raises(ValidationError) as e:
                s.analytics.also_bought(**kw)
            assert [x.field for x in e.value.errors] == [field]
