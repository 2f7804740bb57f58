"""Products and order lines on every adapter: the product sales report (pushed down into SQL) equals the pure
function, lines follow the actor's scope, bad lines are refused with nothing written, and lines travel with
their orders (merge, erasure)."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest

import pycrm
from pycrm import Customer, Money, Order, OrderLine, Product, User
from pycrm.analytics import product_sales
from pycrm.errors import NotFound, PermissionDenied, ValidationError

UTC = dt.UTC
T0 = dt.datetime(2026, 1, 1, 9, tzinfo=UTC)
CATEGORIES = [None, "Tea", "Tea/Green", "Tea/Green/Sencha", "Tea/Black", "tea/green", "Kitchen/Cups", "茶/绿茶"]
PRICES = ["0", "0.0001", "3.3", "9.99", "10.00", "12345.6789", "500"]


def _fill(crm: pycrm.CRM, seed: int) -> dict[str, Any]:
    """Random products, customers (owners, countries) and orders with and without lines, in two currencies."""
    rnd = random.Random(seed)
    with crm.session() as s:
        pids = [
            str(s.products.add(Product(f"SKU-{i}", f"Product {i}", category=rnd.choice(CATEGORIES), id=f"p{i}")).id)
            for i in range(8)
        ]
        cids = []
        for i in range(6):
            c = Customer(
                f"Kunde {i}", owner_id=rnd.choice([None, "u1", "u2"]), country=rnd.choice([None, "CN", "DE"]), id=f"k{i}"
            )
            cids.append(str(s.customers.add(c).id))
        orders = []
        for n in range(rnd.randint(0, 30)):
            currency = rnd.choice(["CNY", "CNY", "EUR"])
            at = T0 + dt.timedelta(days=rnd.randint(0, 90), hours=rnd.randint(0, 23))
            if rnd.random() < 0.2:  # an order without lines: not in the product report
                orders.append(Order(rnd.choice(cids), at, Money(rnd.choice(PRICES), currency)))
                continue
            lines = []
            for _ in range(rnd.randint(1, 4)):
                price = Money(rnd.choice(PRICES), currency)
                q = rnd.randint(1, 5)
                discount = rnd.choice(["0", "0", "0.5"]) if price.amount * q >= 1 else "0"
                lines.append(OrderLine(rnd.choice(pids), q, price, discount=discount))
            orders.append(Order.from_lines(rnd.choice(cids), at, lines, order_no=f"SO-{n}"))
        s.orders.add_many(orders)
    return {"products": pids, "customers": cids}


def _expected(s: Any, **kw: Any) -> Any:
    orders = list(s.orders.iter(kw.pop("where", None)))
    return product_sales(
        orders,
        categories={str(p.id): p.category for p in s.products.iter()},
        regions={str(c.id): c.country for c in s.customers.iter()},
        owners={str(c.id): c.owner_id for c in s.customers.iter()},
        **kw,
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_product_sales_pushdown_equals_the_pure_function(crm: pycrm.CRM, seed: int) -> None:
    _fill(crm, seed)
    cases: list[dict[str, Any]] = [
        {},
        {"by": "category"},
        {"by": "category", "level": 1},
        {"by": "category", "level": 2},
        {"by": "region"},
        {"by": "owner"},
        {"by": "product", "start": "2026-01-15", "end": "2026-02-20"},
        {"by": "category", "level": 1, "where": {"customer_id": {"in": ["k1", "k2", "k3"]}}},
        {"by": "owner", "where": {"lines": "p3"}},
    ]
    with crm.session() as s:
        for kw in cases:
            got = s.analytics.product_sales(**kw)
            want = _expected(s, **kw)
            assert list(got) == list(want), kw
            assert [str(r.revenue) for r in got] == [str(r.revenue) for r in want], kw  # the same digits too
        total = sum(r.revenue for r in s.analytics.product_sales() if r.currency == "CNY")
        lines_cny = sum(
            (line.total.amount for o in s.orders.iter() for line in o.lines if line.currency == "CNY"),
            start=pycrm.Money(0).amount,
        )
        assert total == lines_cny


def test_product_sales_follow_the_actor_scope(crm: pycrm.CRM) -> None:
    """A sales rep's report covers the lines of its own customers' orders only; another owner's order with the
    same product is not there (not in the report, not found by product, not readable)."""
    with crm.session() as s:
        tea = s.products.add(Product("TEA-1", "Sencha", category="Tea/Green", id="tea"))
        mine = s.customers.add(Customer("Mine", owner_id="u1", country="CN", id="mine"))
        theirs = s.customers.add(Customer("Theirs", owner_id="u2", country="DE", id="theirs"))
        a = s.orders.add(Order.from_lines(str(mine.id), T0, [OrderLine("tea", 2, Money("5.00"))]))
        b = s.orders.add(Order.from_lines(str(theirs.id), T0, [OrderLine("tea", 7, Money("5.00"))]))
    rep = User("Rep", "rep@example.com", roles=["sales"], id="u1")
    with crm.session(actor=rep) as s:
        for by in ("product", "category", "region", "owner"):
            rows = s.analytics.product_sales(by=by)
            assert [(r.orders, r.quantity, r.revenue) for r in rows] == [(1, 2, pycrm.Money("10.00").amount)], by
        assert [r.group for r in s.analytics.product_sales(by="region")] == ["CN"]
        assert [o.id for o in s.orders.find({"lines": str(tea.id)})] == [a.id]
        assert s.orders.count({"lines": {"in": ["tea"]}}) == 1
        with pytest.raises(NotFound):
            s.orders.get(str(b.id))
        assert s.products.get("tea").sku == "TEA-1"  # the catalog is shared reference data
        with pytest.raises(PermissionDenied):
            s.products.add(Product("TEA-2", "Gyokuro"))  # reading it is not changing it
    nobody = User(
        "Guest", "guest@example.com", roles=[pycrm.Role("orders-only", [pycrm.Permission("orders", "read", "all")])], id="g"
    )
    with crm.session(actor=nobody) as s:
        assert sum(r.quantity for r in s.analytics.product_sales()) == 9
        with pytest.raises(PermissionDenied):
            s.analytics.product_sales(by="category")  # categories are read from the products
        with pytest.raises(PermissionDenied):
            s.products.get("tea")


def test_bad_lines_are_refused_naming_the_row_and_field_with_nothing_written(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        c = s.customers.add(Customer("Acme", id="acme"))
        s.products.add(Product("TEA-1", "Sencha", id="tea"))
    cid = str(c.id)
    good = Order.from_lines(cid, T0, [OrderLine("tea", 1, Money("5", "EUR"))])
    with pytest.raises(ValidationError) as e, crm.session() as s:
        s.orders.add_many([good, Order.from_lines(cid, T0, [OrderLine("nope", 1, Money("5", "EUR"))])])
    assert [(x.field, x.code) for x in e.value.errors] == [("[1].lines[0].product_id", "not_found")]
    with crm.session() as s:
        assert s.orders.count() == 0
    with pytest.raises(ValidationError) as e:
        Order(cid, T0, Money("15", "EUR"), lines=[OrderLine("tea", 1, Money("5", "EUR")), OrderLine("tea", 2, Money("5", "USD"))])
    assert [(x.field, x.code) for x in e.value.errors] == [("lines[1].currency", "mixed_currency")]
    with pytest.raises(ValidationError) as e:
        Order(cid, T0, Money("15", "EUR"), lines=[{"product_id": "tea", "quantity": -2, "unit_price": "5"}])
    assert [(x.field.endswith("lines[0].quantity"), x.code) for x in e.value.errors] == [(True, "out_of_range")]
    with pytest.raises(ValidationError) as e:
        Order(cid, T0, Money("15", "EUR"), lines=[OrderLine("tea", 2, Money("5", "EUR"))])
    assert [(x.field, x.code) for x in e.value.errors] == [("amount", "lines_mismatch")]
    assert "lines[0..0] add up to 10 EUR" in e.value.errors[0].message
    with crm.session() as s:
        stored = s.orders.add(good)
    with pytest.raises(ValidationError) as e, crm.session() as s:
        o = s.orders.get(str(stored.id))
        o.lines.append(OrderLine("tea", 1, Money("1", "EUR")))  # changed in place: the sum no longer holds
        s.orders.update(o)
    assert [x.code for x in e.value.errors] == ["lines_mismatch"]
    with crm.session() as s:
        assert s.orders.get(str(stored.id)).lines == good.lines
        with pytest.raises(ValidationError) as e:
            s.products.add(Product(" TEA-1 ", "Another"))
        assert [(x.field, x.code) for x in e.value.errors] == [("sku", "duplicate")]
        with pytest.raises(ValidationError) as e:
            s.products.add_many([Product("A", "a"), Product("A", "b")])
        assert [(x.field, x.code) for x in e.value.errors] == [("[1].sku", "duplicate")]
        with pytest.raises(ValidationError) as e:
            s.products.delete("tea")
        assert [(x.field, x.code) for x in e.value.errors] == [("id", "in_use")]
        assert s.products.count() == 1


def test_orders_without_lines_work_as_before(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        o = s.orders.add(Order(str(c.id), T0, Money("10.50", "CNY"), order_no="A-1"))
    with crm.session() as s:
        got = s.orders.get(str(o.id))
        assert got == o and got.lines == []
        assert s.orders.count({"lines": {"is_null": True}}) == 1
        assert list(s.analytics.product_sales()) == []
        assert [r.orders for r in s.analytics.top_customers(n=5)] == [1]


def test_lines_travel_with_their_orders_through_merge_and_erasure(crm: pycrm.CRM) -> None:
    """A merge re-points the orders (their lines with them) and an unmerge points them back; erasing the
    customer keeps the lines (ids, products, quantities, prices: no personal data), so revenue per product
    stays what it was."""
    with crm.session() as s:
        s.products.add(Product("TEA-1", "Sencha", category="Tea", id="tea"))
        a = s.customers.add(Customer("Acme Ltd", emails=["a@acme.example"]))
        b = s.customers.add(Customer("ACME Limited", emails=["b@acme.example"]))
        o = s.orders.add(Order.from_lines(str(b.id), T0, [OrderLine("tea", 3, Money("4.00"))]))
        before = list(s.analytics.product_sales(by="category"))
    with crm.session() as s:
        record = s.customers.merge(str(a.id), [str(b.id)])
        moved = s.orders.get(str(o.id))
        assert moved.customer_id == a.id and moved.lines == o.lines
        s.customers.unmerge(record.id)
        assert s.orders.get(str(o.id)).customer_id == b.id
    with crm.session() as s:
        s.personal.erase(str(b.id))
        kept = s.orders.get(str(o.id))
        assert kept.lines == o.lines and kept.amount == o.amount
        assert list(s.analytics.product_sales(by="category")) == before
        exported = s.personal.export(str(a.id))
        assert exported is not None


def test_lines_go_through_the_change_feed_and_apply(crm: pycrm.CRM) -> None:
    """An order's lines are in its change-feed entry (``fields`` names them) and ``apply`` of another system's
    order creates it with its lines; incoming lines are checked as new ones are (nothing applied when bad);
    ``set_lines`` changes lines and amount together."""
    from pycrm import Incoming
    from pycrm.domain._codec import to_data

    with crm.session() as s:
        s.customers.add(Customer("Acme", id="acme"))
        s.products.add(Product("TEA-1", "Sencha", id="tea"))
    with crm.session() as s:
        cursor = s.changes.last_seq()
    with crm.session() as s:
        o = s.orders.add(Order.from_lines("acme", T0, [OrderLine("tea", 2, Money("3.50", "EUR"))], id="o1"))
    with crm.session() as s:
        (event,) = s.changes.since(cursor, 10)
        assert (event.entity, event.op, "lines" in event.fields) == ("orders", "create", True)
        stored = s.orders.get("o1")
        stored.set_lines([OrderLine("tea", 3, Money("3.50", "EUR"))])
        s.orders.update(stored)
    with crm.session() as s:
        assert s.orders.get("o1").amount == Money("10.50", "EUR")
    data = {**to_data(o), "id": "o2", "lines": [{**to_data(o)["lines"][0], "quantity": 0}]}
    with pytest.raises(ValidationError) as e, crm.session() as s:
        s.changes.apply([Incoming("orders", "o2", "upsert", 1, data)])
    assert [(x.field.endswith("lines[0].quantity"), x.code) for x in e.value.errors] == [(True, "out_of_range")]
    with crm.session() as s:
        assert s.orders.count() == 1
        result = s.changes.apply([Incoming("orders", "o2", "upsert", 1, {**to_data(o), "id": "o2"})])
        assert result.applied == [("orders", "o2")]
    with crm.session() as s:
        assert s.orders.get("o2").lines == o.lines
