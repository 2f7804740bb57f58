"""The memory and SQLite adapters, driven side by side by a Hypothesis state machine, must agree.

Every rule does the same thing to both stores (same ids, same data) and compares the outcomes: the same
results, or the same kind of error naming the same fields. After every step both stores must hold the
same records, and exactly those a small model says they should. Texts are ASCII and CJK, whose case
folding every database agrees on, so ``contains`` and ``startswith`` mean the same everywhere.
"""

from __future__ import annotations

import copy
import datetime as dt
import shutil
import string
import tempfile
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, initialize, invariant, multiple, rule

import pycrm
from pycrm import ConcurrencyError, CRMError, Customer, Money, Order
from pycrm.domain import new_id

UTC = dt.UTC
CJK = "北京上海华夏科技有限公司李雷韩梅梅王伟张芳"
TEXT = st.text(string.ascii_letters + string.digits + " %_'\\-./" + CJK, min_size=1, max_size=10)
NAMES = st.one_of(TEXT, st.sampled_from(["Acme Ltd", "acme holdings", "ACME", "北京华夏", "100% Pure_Juice", " spaced "]))
EMAILS = ["a@acme.example", "b@acme.example", "info@huaxia.cn", "zoe@cafe.example"]
EMAIL_SPELLINGS = [*EMAILS, " A@ACME.example", "INFO@HuaXia.CN"]
PHONES = ["+8613800138000", "+861065529988", "+16502530000", "+447911123456"]
PHONE_SPELLINGS = [*PHONES, "138 0013 8000", "0086 10 6552 9988", "+1 (650) 253-0000", "１３８００１３８０００"]
TAGS = ["vip", "b2b", "重点客户", "VIP"]
CATEGORIES = [None, "Retail", "Retail/Online", "Manufacturing", "零售/线上"]
STATUSES = list(Customer.STATUSES)
COUNTRIES = [None, "CN", "US", "GB"]
OWNERS = [None, "u1", "u2"]
TIMES = [
    dt.datetime(2024, 1, 1, tzinfo=UTC),
    dt.datetime(2024, 1, 1, 8, tzinfo=dt.timezone(dt.timedelta(hours=8))),  # the same instant as the one above
    dt.datetime(2024, 6, 15, 12, 0, 0, 123456, tzinfo=UTC),
    dt.datetime(2024, 6, 15, 12, 0, 0, 123457, tzinfo=UTC),
    dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
    dt.datetime(2035, 3, 3, 3, 3, 3, tzinfo=UTC),
]
AMOUNTS = [Decimal(x) for x in ["0", "0.0001", "-5", "99.99", "100", "100.0000", "12345678901234.5678", "-0.5"]]
CURRENCIES = ["CNY", "USD", "EUR"]

customer_specs = st.fixed_dictionaries(
    {
        "name": NAMES,
        "kind": st.sampled_from(["company", "person"]),
        "emails": st.lists(st.sampled_from(EMAILS), max_size=2, unique=True),
        "phones": st.lists(st.sampled_from(PHONES), max_size=2, unique=True),
        "country": st.sampled_from(COUNTRIES),
        "category": st.sampled_from(CATEGORIES),
        "status": st.sampled_from(STATUSES),
        "owner_id": st.sampled_from(OWNERS),
        "tags": st.lists(st.sampled_from(TAGS), max_size=2, unique=True),
        "custom": st.dictionaries(
            st.sampled_from(["a", "b", "级别"]), st.one_of(st.integers(-5, 5), TEXT, st.booleans()), max_size=2
        ),
        "created_at": st.sampled_from(TIMES),
    }
)
order_specs = st.fixed_dictionaries(
    {
        "occurred_at": st.sampled_from(TIMES),
        "amount": st.sampled_from(AMOUNTS),
        "currency": st.sampled_from(CURRENCIES),
        "order_no": st.one_of(st.none(), st.sampled_from(["SO-1", "SO-2", "so-1", "订单-1"])),
        "created_at": st.sampled_from(TIMES),
    }
)
customer_changes = st.fixed_dictionaries(
    {},
    optional={
        "name": NAMES,
        "emails": st.lists(st.sampled_from(EMAIL_SPELLINGS), max_size=2),
        "phones": st.lists(st.sampled_from(PHONE_SPELLINGS), max_size=2),
        "category": st.sampled_from(CATEGORIES),
        "status": st.sampled_from(STATUSES),
        "owner_id": st.sampled_from(OWNERS),
        "tags": st.lists(st.sampled_from(TAGS), max_size=3),
        "country": st.sampled_from(COUNTRIES),
    },
)


def text_conditions(field: str, values: st.SearchStrategy[Any], nullable: bool) -> st.SearchStrategy[dict[str, Any]]:
    ops = ["eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "startswith"] + (["is_null"] if nullable else [])
    return st.sampled_from(ops).flatmap(
        lambda op: st.builds(
            lambda v: {field: {op: v}},
            st.booleans() if op == "is_null" else st.lists(values, max_size=3) if op == "in" else values,
        )
    )


def list_conditions(field: str, values: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.sampled_from(values).map(lambda v: {field: v}),
        st.sampled_from(values).map(lambda v: {field: {"ne": v}}),
        st.lists(st.sampled_from(values), max_size=3).map(lambda vs: {field: {"in": vs}}),
        st.booleans().map(lambda b: {field: {"is_null": b}}),
    )


def ordered_conditions(field: str, values: st.SearchStrategy[Any], nullable: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    ops = ["eq", "ne", "lt", "lte", "gt", "gte", "in"] + (["is_null"] if nullable else [])
    return st.sampled_from(ops).flatmap(
        lambda op: st.builds(
            lambda v: {field: {op: v}},
            st.booleans() if op == "is_null" else st.lists(values, max_size=3) if op == "in" else values,
        )
    )


def merged(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in parts:
        for k, v in p.items():
            out.setdefault(k, {}).update(v if isinstance(v, dict) else {"eq": v})
    return out


customer_where = st.lists(
    st.one_of(
        text_conditions("name", NAMES, nullable=False),
        text_conditions("category", st.sampled_from([c for c in CATEGORIES if c] + ["Retail/", "retail", "线"]), nullable=True),
        text_conditions("status", st.sampled_from(STATUSES), nullable=False),
        text_conditions("owner_id", st.sampled_from(["u1", "u2", "u"]), nullable=True),
        text_conditions("country", st.sampled_from(["CN", "US", "GB", "C"]), nullable=True),
        list_conditions("emails", EMAIL_SPELLINGS),
        list_conditions("phones", PHONE_SPELLINGS),
        list_conditions("tags", TAGS),
        ordered_conditions("version", st.integers(0, 4)),
        ordered_conditions("created_at", st.sampled_from(TIMES)),
    ),
    max_size=3,
).map(merged)
order_where = st.lists(
    st.one_of(
        ordered_conditions("amount", st.sampled_from([*AMOUNTS, "100.00", 100, Decimal("-0.50")])),
        st.sampled_from(["eq", "ne", "in"]).flatmap(
            lambda op: st.builds(
                lambda v: {"currency": {op: v}},
                st.lists(st.sampled_from([*CURRENCIES, "usd"]), max_size=2)
                if op == "in"
                else st.sampled_from([*CURRENCIES, "usd"]),
            )
        ),
        ordered_conditions("occurred_at", st.sampled_from(TIMES)),
        text_conditions("order_no", st.sampled_from(["SO-1", "so", "SO", "订单"]), nullable=True),
    ),
    max_size=3,
).map(merged)

CUSTOMER_ORDER = ["name", "category", "status", "country", "owner_id", "created_at", "version", "id"]
ORDER_ORDER = ["amount", "currency", "occurred_at", "order_no", "created_at", "customer_id"]


def order_by(fields: list[str]) -> st.SearchStrategy[Any]:
    one = st.builds(lambda f, desc: ("-" if desc else "") + f, st.sampled_from(fields), st.booleans())
    return st.one_of(st.none(), one, st.lists(one, min_size=1, max_size=2))


paging = st.tuples(st.one_of(st.none(), st.integers(0, 5)), st.integers(0, 3))


def snap(entity: Any) -> dict[str, Any]:
    """Everything about an entity except ``updated_at``, which each store stamps with its own clock."""
    out = entity.to_mapping()
    out.pop("updated_at")
    return out


class Boom(Exception):
    pass


class StoresAgree(RuleBasedStateMachine):
    customers = Bundle("customers")
    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="pycrm-agree-")
        self.stores = {
            "memory": pycrm.open("memory://", default_region="CN"),
            "sqlite": pycrm.open(f"sqlite:///{self.tmp}/crm.db", default_region="CN"),
        }
        self.model: dict[str, int] = {}  # customer id -> version
        self.order_owner: dict[str, str] = {}  # order id -> customer id

    def teardown(self) -> None:
        for crm in self.stores.values():
            crm.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def both(self, action: Callable[[pycrm.CRM], Any]) -> Any:
        """Run ``action`` on both stores; they must give the same result or the same error."""
        outcomes = {}
        for name, crm in self.stores.items():
            try:
                outcomes[name] = ("ok", action(crm))
            except CRMError as exc:
                outcomes[name] = ("error", type(exc).__name__, sorted(getattr(exc, "fields", [])))
        assert outcomes["memory"] == outcomes["sqlite"], f"memory: {outcomes['memory']!r}\nsqlite: {outcomes['sqlite']!r}"
        result = outcomes["memory"]
        size = len(result[1]) if result[0] == "ok" and isinstance(result[1], list) else None
        event(f"{action.__name__}: {result[0]}" + ("" if size is None else f", {min(size, 3)}{'+' if size >= 3 else ''} rows"))
        return result

    # ---- writing
    @initialize(target=customers, specs=st.lists(customer_specs, min_size=2, max_size=8))
    def some_customers(self, specs: list[dict[str, Any]]) -> Any:
        return self.add_many_customers(specs, None)

    @rule(target=customers, spec=customer_specs)
    def add_customer(self, spec: dict[str, Any]) -> str:
        cid = new_id()

        def add(crm: pycrm.CRM) -> int:
            with crm.session() as s:
                return s.customers.add(Customer(id=cid, **copy.deepcopy(spec))).version

        outcome = self.both(add)
        if outcome[0] == "ok":
            self.model[cid] = 1
        return cid

    @rule(target=customers, specs=st.lists(customer_specs, max_size=4), broken=st.one_of(st.none(), st.integers(0, 3)))
    def add_many_customers(self, specs: list[dict[str, Any]], broken: int | None) -> Any:
        ids = [new_id() for _ in specs]

        def add_many(crm: pycrm.CRM) -> int:
            batch = [Customer(id=i, **spec) for i, spec in zip(ids, copy.deepcopy(specs))]
            if broken is not None and broken < len(batch):
                batch[broken].emails.append("not an email")
            with crm.session() as s:
                return s.customers.add_many(batch)

        if self.both(add_many)[0] == "ok":
            self.model.update(dict.fromkeys(ids, 1))
        return multiple(*ids)

    @rule(target=orders, customer=customers | customers | customers | st.just("no-such-customer"), spec=order_specs)
    def add_order(self, customer: str, spec: dict[str, Any]) -> str:
        oid = new_id()
        spec = dict(spec)
        amount = Money(spec.pop("amount"), spec.pop("currency"))

        def add(crm: pycrm.CRM) -> None:
            with crm.session() as s:
                s.orders.add(Order(customer, id=oid, amount=amount, **spec))

        if self.both(add)[0] == "ok":
            self.order_owner[oid] = customer
        return oid

    @rule(customer=customers, changes=customer_changes)
    def update_customer(self, customer: str, changes: dict[str, Any]) -> None:
        def update(crm: pycrm.CRM) -> int:
            with crm.session() as s:
                c = s.customers.get(customer)
                for k, v in copy.deepcopy(changes).items():
                    setattr(c, k, v)
                return s.customers.update(c).version

        outcome = self.both(update)
        if outcome[0] == "ok":
            self.model[customer] = outcome[1]

    @rule(customer=customers, status=st.sampled_from(STATUSES))
    def stale_update(self, customer: str, status: str) -> None:
        def race(crm: pycrm.CRM) -> int:
            with crm.session() as s:
                stale = s.customers.get(customer)
            with crm.session() as s:
                fresh = s.customers.get(customer)
                fresh.status = status
                s.customers.update(fresh)
            stale.name = "stale write"
            try:
                with crm.session() as s:
                    s.customers.update(stale)
            except ConcurrencyError:
                return fresh.version
            raise AssertionError("a stale update went through")

        outcome = self.both(race)
        if outcome[0] == "ok":
            self.model[customer] = outcome[1]

    @rule(customer=consumes(customers))
    def delete_customer(self, customer: str) -> None:
        def delete(crm: pycrm.CRM) -> None:
            with crm.session() as s:
                s.customers.delete(customer)

        if self.both(delete)[0] == "ok":
            del self.model[customer]

    @rule(order=consumes(orders))
    def delete_order(self, order: str) -> None:
        def delete(crm: pycrm.CRM) -> None:
            with crm.session() as s:
                s.orders.delete(order)

        if self.both(delete)[0] == "ok":
            del self.order_owner[order]

    @rule(customer=customers, specs=st.lists(customer_specs, min_size=1, max_size=3), changes=customer_changes)
    def rolled_back_session(self, customer: str, specs: list[dict[str, Any]], changes: dict[str, Any]) -> None:
        def work(crm: pycrm.CRM) -> str:
            try:
                with crm.session() as s:
                    s.customers.add_many(Customer(**spec) for spec in copy.deepcopy(specs))
                    try:
                        c = s.customers.get(customer)
                        for k, v in copy.deepcopy(changes).items():
                            setattr(c, k, v)
                        s.customers.update(c)
                        s.customers.delete(customer)
                    except CRMError:
                        pass
                    raise Boom
            except Boom:
                return "rolled back"

        self.both(work)

    # ---- reading
    @rule(where=customer_where, order=order_by(CUSTOMER_ORDER), page=paging)
    def find_customers(self, where: dict[str, Any], order: Any, page: tuple[int | None, int]) -> None:
        def find(crm: pycrm.CRM) -> list[dict[str, Any]]:
            with crm.session() as s:
                return [snap(c) for c in s.customers.find(where, order_by=order, limit=page[0], offset=page[1])]

        self.both(find)

    @rule(where=order_where, order=order_by(ORDER_ORDER), page=paging)
    def find_orders(self, where: dict[str, Any], order: Any, page: tuple[int | None, int]) -> None:
        def find(crm: pycrm.CRM) -> list[dict[str, Any]]:
            with crm.session() as s:
                return [snap(o) for o in s.orders.find(where, order_by=order, limit=page[0], offset=page[1])]

        self.both(find)

    @rule(where=customer_where)
    def count_customers(self, where: dict[str, Any]) -> None:
        def count(crm: pycrm.CRM) -> int:
            with crm.session() as s:
                return s.customers.count(where)

        self.both(count)

    @rule(where=st.one_of(customer_where, order_where), batch=st.integers(1, 4))
    def iterate(self, where: dict[str, Any], batch: int) -> None:
        repo = "orders" if set(where) & {"amount", "currency", "occurred_at", "order_no"} else "customers"

        def stream(crm: pycrm.CRM) -> list[dict[str, Any]]:
            with crm.session() as s:
                return [snap(e) for e in getattr(s, repo).iter(where, batch_size=batch)]

        self.both(stream)

    # ---- after every step
    @invariant()
    def stores_hold_the_same_records_as_the_model(self) -> None:
        contents = {}
        for name, crm in self.stores.items():
            with crm.session() as s:
                contents[name] = ([snap(c) for c in s.customers.find()], [snap(o) for o in s.orders.find()])
        assert contents["memory"] == contents["sqlite"]
        customers, orders = contents["memory"]
        assert {c["id"]: c["version"] for c in customers} == self.model
        assert {o["id"]: o["customer_id"] for o in orders} == self.order_owner


StoresAgree.TestCase.settings = settings(
    settings.default,
    max_examples=max(8, settings.default.max_examples // 2),
    stateful_step_count=settings.default.stateful_step_count,
)
TestStoresAgree = StoresAgree.TestCase
