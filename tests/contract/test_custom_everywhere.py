"""Custom fields on every entity, typed filters, indexes and a store's required built-in fields, on every
adapter (memory, SQLite, PostgreSQL, MariaDB).

``pycrm.open(custom_fields={"contacts": [CustomField("score", "integer")]})`` gives contacts (and
opportunities, tickets, interactions, orders, tasks, surveys) custom values checked by type; a declared
field filters by its type (ranges on integers, decimals and dates, ``contains`` / ``startswith`` on text),
with the same rows on every adapter; ``required_fields=`` makes built-in fields required.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pycrm
from pycrm import (
    Contact,
    Customer,
    CustomField,
    Interaction,
    Money,
    Opportunity,
    Order,
    Survey,
    Task,
    Ticket,
    User,
    ValidationError,
)
from pycrm.domain._codec import to_data
from pycrm.io import export_file, import_file
from pycrm.security import FieldRules, KeyRing

DB = settings(
    max_examples=max(10, settings.default.max_examples // 3),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
AT = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)

FIELDS = [
    CustomField("score", "integer", indexed=True),
    CustomField("budget", "decimal"),
    CustomField("since", "date", indexed=True),
    CustomField("nick", "text"),
    CustomField("tier", "choice", choices=("gold", "silver")),
    CustomField("vip", "boolean"),
]
REPOSITORIES = ("customers", "contacts", "opportunities", "tickets", "interactions", "orders", "tasks", "surveys")
ALL_FIELDS = {repo: FIELDS for repo in REPOSITORIES}


def _record(repo: str, customer_id: str, custom: dict[str, Any], n: int = 0) -> Any:
    """A new record of ``repo`` with ``custom`` values."""
    make: dict[str, Callable[[], Any]] = {
        "customers": lambda: Customer(f"C{n}", custom=custom),
        "contacts": lambda: Contact(customer_id, f"K{n}", custom=custom),
        "opportunities": lambda: Opportunity(customer_id, f"O{n}", Money(100, "CNY"), custom=custom),
        "tickets": lambda: Ticket(customer_id, f"T{n}", custom=custom),
        "interactions": lambda: Interaction(customer_id, "call", AT, custom=custom),
        "orders": lambda: Order(customer_id, AT, Money(5, "CNY"), custom=custom),
        "tasks": lambda: Task(f"Task {n}", AT, custom=custom),
        "surveys": lambda: Survey(customer_id, "csat", AT, custom=custom),
    }
    return make[repo]()


def test_every_entity_keeps_typed_custom_values_and_filters_on_them(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(custom_fields=ALL_FIELDS)
    value = {"score": 90, "budget": "12.50", "since": "2024-01-05", "nick": "Bobby", "tier": "gold", "vip": True}
    with crm.session() as s:
        owner = s.customers.add(Customer("Owner"))
        ids = {repo: getattr(s, repo).add(_record(repo, str(owner.id), value)).id for repo in REPOSITORIES}
    with crm.session() as s:
        for repo in REPOSITORIES:
            r = getattr(s, repo)
            got = r.get(ids[repo])
            assert got.custom == value, repo
            for where in (
                {"custom.score": {"gte": 80}},
                {"custom.budget": {"gt": "12.4", "lte": 13}},
                {"custom.since": {"lt": dt.date(2024, 2, 1)}},
                {"custom.nick": {"contains": "OBB"}},
                {"custom.tier": {"in": ["gold"]}},
                {"custom.vip": True},
            ):
                assert [x.id for x in r.find(where)] == [ids[repo]], (repo, where)
            assert r.count({"custom.score": {"lt": 90}}) == 0
            got.custom = {**got.custom, "score": 70}
            r.update(got)
        assert [x.id for x in s.contacts.find({"custom.score": {"lt": 80}})] == [ids["contacts"]]


scores = st.one_of(st.none(), st.integers(min_value=-3, max_value=6), st.sampled_from(["5", True]))
budgets = st.one_of(st.none(), st.sampled_from(["0", "1.5", "-2.25", "10", "1.50", 3, -1, "x1", True]))
dates = st.one_of(st.none(), st.sampled_from(["2024-01-05", "2023-12-31", "2024-06-01", "20240105", 5]))
nicks = st.one_of(st.none(), st.sampled_from(["Bobby", "bob", "Alice", "上海 Bob", "", "_%/", 7]))
raw_rows = st.fixed_dictionaries({}, optional={"score": scores, "budget": budgets, "since": dates, "nick": nicks})

FILTERS = {
    "score": st.one_of(
        st.tuples(st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte"]), st.integers(min_value=-3, max_value=6)),
        st.tuples(st.just("in"), st.lists(st.integers(min_value=-3, max_value=6), max_size=3)),
    ),
    "budget": st.one_of(
        st.tuples(st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte"]), st.sampled_from(["1.5", "0", "-2", "10.0", 3])),
        st.tuples(st.just("in"), st.lists(st.sampled_from(["1.5", "10", "-1"]), max_size=3)),
    ),
    "since": st.one_of(
        st.tuples(
            st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte"]),
            st.sampled_from(["2024-01-05", "2024-01-01", "2023-12-31", "2025-01-01"]),
        ),
        st.tuples(st.just("in"), st.lists(st.sampled_from(["2024-01-05", "2024-06-01"]), max_size=2)),
    ),
    "nick": st.one_of(
        st.tuples(st.sampled_from(["eq", "ne", "contains", "startswith"]), st.sampled_from(["Bob", "bob", "", "_%/", "上海"])),
        st.tuples(st.just("in"), st.lists(st.sampled_from(["Bobby", "bob", ""]), max_size=3)),
    ),
}


def _typed(key: str, v: Any) -> Any:
    """The rule, written plainly: the stored value as its declared type, None when it is not of it."""
    if key == "score":
        return v if type(v) is int else None
    if key == "budget":
        if type(v) is int:
            return Decimal(v)
        ok = type(v) is str and v.lstrip("+-").replace(".", "", 1).isdigit() and not v.endswith(".")
        return Decimal(v) if ok else None
    if key == "since":
        return dt.date.fromisoformat(v) if type(v) is str and len(v) == 10 else None
    return v if type(v) is str else None


def _holds(row: dict[str, Any], key: str, op: str, value: Any) -> bool:
    have = _typed(key, row.get(key))
    conv: Callable[[Any], Any] = {
        "score": lambda x: x,
        "budget": lambda x: Decimal(str(x)),
        "since": dt.date.fromisoformat,
        "nick": lambda x: x,
    }[key]
    if have is None:
        return False
    if op == "in":
        return have in [conv(x) for x in value]
    if op == "contains":
        return value.lower() in have.lower()
    if op == "startswith":
        return bool(have.lower().startswith(value.lower()))
    want = conv(value)
    return {
        "eq": have == want,
        "ne": have != want,
        "lt": have < want,
        "lte": have <= want,
        "gt": have > want,
        "gte": have >= want,
    }[op]


@DB
@given(rows=st.lists(raw_rows, min_size=1, max_size=6), data=st.data())
def test_typed_filters_give_the_same_rows_as_the_rule_on_every_adapter(crm: pycrm.CRM, rows, data) -> None:
    """Values of another type (stored by a store that did not declare the field) match no comparison."""
    key = data.draw(st.sampled_from(sorted(FILTERS)))
    op, value = data.draw(FILTERS[key])
    typed = pycrm.CRM(crm.store, custom_fields={"contacts": FIELDS[:4]})  # the same store, fields declared
    with crm.session() as s:  # undeclared here: any JSON value is kept
        owner = s.customers.add(Customer("Owner"))
        added = [s.contacts.add(Contact(str(owner.id), f"K{i}", custom=row)) for i, row in enumerate(rows)]
    try:
        with typed.session() as s:
            where = {f"custom.{key}": {op: value}}
            got = {c.id for c in s.contacts.find(where)}
            assert s.contacts.count(where) == len(got)
            nulls = {c.id for c in s.contacts.find({f"custom.{key}": None})}
        assert got == {c.id for c, row in zip(added, rows) if _holds(row, key, op, value)}
        assert nulls == {c.id for c, row in zip(added, rows) if row.get(key) is None}
    finally:
        with crm.session() as s:  # examples share the store: leave it empty
            for c in added:
                s.contacts.delete(c.id)
            s.customers.delete(owner.id)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"score": "90"}, "custom.score"),
        ({"score": 1.5}, "custom.score"),
        ({"budget": "1e5"}, "custom.budget"),
        ({"budget": 1.5}, "custom.budget"),
        ({"since": "20240105"}, "custom.since"),
        ({"since": "2024-02-30"}, "custom.since"),
        ({"nick": 5}, "custom.nick"),
        ({"tier": "bronze"}, "custom.tier"),
        ({"vip": "yes"}, "custom.vip"),
        ({"unknown": 1}, "custom.unknown"),
    ],
)
def test_wrong_values_are_refused_naming_the_field_and_nothing_is_written(
    open_crm: Callable[..., pycrm.CRM], values: dict[str, Any], field: str
) -> None:
    crm = open_crm(custom_fields=ALL_FIELDS)
    with crm.session() as s:
        owner = s.customers.add(Customer("Owner"))
    for repo in ("contacts", "orders", "tasks"):
        with crm.session() as s, pytest.raises(ValidationError) as err:
            getattr(s, repo).add(_record(repo, str(owner.id), values))
        assert err.value.fields == [field], repo
        with crm.session() as s:
            assert getattr(s, repo).count() == 0


@pytest.mark.parametrize(
    ("where", "field"),
    [
        ({"custom.nick": {"gt": "a"}}, "where.custom.nick.gt"),  # no ranges on text
        ({"custom.vip": {"gte": True}}, "where.custom.vip.gte"),
        ({"custom.score": {"contains": "9"}}, "where.custom.score.contains"),
        ({"custom.score": {"gte": "80"}}, "where.custom.score.gte"),  # wrong type of value
        ({"custom.score": {"gte": 1.5}}, "where.custom.score.gte"),
        ({"custom.budget": {"lt": 1.5}}, "where.custom.budget.lt"),  # a float is not exact: text or integer
        ({"custom.since": {"lt": "yesterday"}}, "where.custom.since.lt"),
        ({"custom.vip": {"in": [1]}}, "where.custom.vip.in[0]"),
        ({"custom.undeclared": {"gte": 1}}, "where.custom.undeclared.gte"),  # undeclared: equality only
        ({"custom.a-b": 1}, "where.custom.a-b"),
    ],
)
def test_bad_filters_name_the_field(open_crm: Callable[..., pycrm.CRM], where: dict[str, Any], field: str) -> None:
    crm = open_crm(custom_fields=ALL_FIELDS)
    for repo in ("contacts", "tickets"):
        with crm.session() as s, pytest.raises(ValidationError) as err:
            getattr(s, repo).find(where)
        assert err.value.fields == [field]


def test_open_refuses_unknown_entities_types_and_required_fields() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"custom_fields": {"clients": [CustomField("x")]}}, "custom_fields.clients"),
        ({"custom_fields": {"users": [CustomField("x")]}}, "custom_fields.users"),  # users have no custom fields
        ({"required_fields": {"clients": ["emails"]}}, "required_fields.clients"),
        ({"required_fields": {"customers": ["email"]}}, "required_fields.customers[0]"),
        ({"required_fields": {"contacts": ["emails", "custom"]}}, "required_fields.contacts[1]"),
        ({"required_fields": {"contacts": ["id"]}}, "required_fields.contacts[0]"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ValidationError) as err:
            pycrm.open("memory://", **kwargs)
        assert err.value.fields == [field], kwargs
    with pytest.raises(ValidationError) as err:
        CustomField("score", "float")
    assert err.value.fields == ["type"]
    with pytest.raises(ValidationError) as err:
        CustomField("my score", "integer", indexed=True)
    assert err.value.fields == ["custom_fields.my score"]
    with pytest.raises(ValidationError) as err:
        CustomField("ref", "text", unique=True)  # fine on customers ...
        pycrm.open("memory://", custom_fields={"contacts": [CustomField("ref", "text", unique=True)]})
    assert err.value.fields == ["custom_fields.contacts.ref"]  # ... not elsewhere


def test_required_fields_are_refused_on_add_update_and_import(open_crm: Callable[..., pycrm.CRM], tmp_path: Path) -> None:
    crm = open_crm(required_fields={"customers": ["emails", "phones"], "contacts": ["emails"]})
    with crm.session() as s, pytest.raises(ValidationError) as err:
        s.customers.add(Customer("Acme", emails=["sales@acme.example"]))
    assert err.value.fields == ["phones"]
    with crm.session() as s:
        c = s.customers.add(Customer("Acme", emails=["sales@acme.example"], phones=["138 0013 8000"]))
        with pytest.raises(ValidationError) as err:
            s.contacts.add_many([Contact(str(c.id), "Ada", emails=["ada@acme.example"]), Contact(str(c.id), "Bob")])
        assert err.value.fields == ["[1].emails"]
    with crm.session() as s:
        assert s.contacts.count() == 0
        got = s.customers.get(c.id)
        got.emails = []
        with pytest.raises(ValidationError) as err:
            s.customers.update(got)
        assert err.value.fields == ["emails"]
    with crm.session() as s:
        assert [e.value for e in s.customers.get(c.id).emails] == ["sales@acme.example"]
    path = tmp_path / "contacts.csv"
    path.write_text(f"customer_id,first_name,emails\n{c.id},Ada,ada@acme.example\n{c.id},Bob,\n", encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        import_file(crm, path, "contacts")
    assert err.value.fields == [f"{path}, row 3, column 'emails'"]
    path.write_text(f"customer_id,first_name\n{c.id},Ada\n", encoding="utf-8")
    with pytest.raises(ValidationError) as err:  # no column can fill a required field
        import_file(crm, path, "contacts")
    assert err.value.fields == [f"{path}, row 1, column 'emails'"]
    with crm.session() as s:
        assert s.contacts.count() == 0


def test_export_and_import_carry_custom_values_of_contacts(open_crm: Callable[..., pycrm.CRM], tmp_path: Path) -> None:
    crm = open_crm(custom_fields={"contacts": FIELDS})
    with crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        s.contacts.add(Contact(str(c.id), "Ada", custom={"score": 90, "since": "2024-01-05"}))
    out = io.StringIO()
    assert export_file(crm, out, "contacts", fields=["customer_id", "first_name", "custom.score", "custom.since", "custom"]) == 1
    lines = out.getvalue().splitlines()
    assert lines[0] == "customer_id,first_name,custom.score,custom.since,custom"
    assert lines[1].startswith(f"{c.id},Ada,90,2024-01-05,")
    path = tmp_path / "more.csv"
    path.write_text(f"customer_id,first_name,score,since\n{c.id},Bob,75,2023-12-31\n", encoding="utf-8")
    import_file(crm, path, "contacts", mapping={"score": "custom.score", "since": "custom.since"})
    with crm.session() as s:
        (bob,) = s.contacts.find({"custom.score": {"lt": 80}})
        assert (bob.first_name, bob.custom) == ("Bob", {"score": 75, "since": "2023-12-31"})
    path.write_text(f"customer_id,first_name,score\n{c.id},Eve,lots\n", encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        import_file(crm, path, "contacts", mapping={"score": "custom.score"})
    assert err.value.fields == [f"{path}, row 2, column 'score'"]


def test_merging_contacts_keeps_both_custom_values_and_the_feed_names_custom(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        a = s.contacts.add(Contact(str(c.id), "Ada", custom={"score": 90}))
        b = s.contacts.add(Contact(str(c.id), "Ada", custom={"score": 10, "nick": "Lovelace"}))
    with crm.session() as s:
        s.contacts.merge(str(a.id), [str(b.id)])
    with crm.session() as s:
        assert s.contacts.get(a.id).custom == {"score": 90, "nick": "Lovelace"}
        got = s.contacts.get(a.id)
        got.custom = {"score": 91}
        s.contacts.update(got)
        last = s.changes.since(0)[-1]
        assert (last.entity, last.id, "custom" in last.fields) == ("contacts", a.id, True)


def test_another_owners_records_stay_invisible_through_custom_filters(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(custom_fields={"contacts": FIELDS, "opportunities": FIELDS})
    me = User("Me", "me@example.com", roles=["sales"], id="u-me")
    other = User("Other", "other@example.com", roles=["sales"], id="u-other")
    with crm.session() as s:
        s.users.add_many([me, other])
        mine = s.customers.add(Customer("Mine", owner_id="u-me"))
        theirs = s.customers.add(Customer("Theirs", owner_id="u-other"))
        for cust in (mine, theirs):
            s.contacts.add(Contact(str(cust.id), cust.name, custom={"score": 90}))
            s.opportunities.add(
                Opportunity(str(cust.id), cust.name, Money(1, "CNY"), owner_id=cust.owner_id, custom={"score": 90})
            )
    with crm.session(actor=me) as s:
        assert [k.first_name for k in s.contacts.find({"custom.score": {"gte": 80}})] == ["Mine"]
        assert s.contacts.count({"custom.score": {"gte": 80}}) == 1
        assert [o.name for o in s.opportunities.find({"custom.score": {"in": [90]}})] == ["Mine"]


RULES = FieldRules({"clerk": {"contacts.custom.national_id": "national_id", "tickets.custom.score": "hide"}})
CLERK = User("Clerk", "clerk@example.com", roles=[pycrm.Role("clerk", [pycrm.Permission("*", "*", "all")])], id="u1")
NATIONAL_ID = "110101199003077777"


def test_masked_custom_values_of_contacts_are_not_filterable_and_never_written_back(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(field_rules=RULES, custom_fields={"contacts": [CustomField("national_id"), *FIELDS], "tickets": FIELDS})
    with crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        k = s.contacts.add(Contact(str(c.id), "Lei", custom={"national_id": NATIONAL_ID, "score": 5}))
        t = s.tickets.add(Ticket(str(c.id), "Help", custom={"score": 3}))
    with crm.session(actor=CLERK) as s:
        seen = s.contacts.get(k.id)
        assert seen.custom == {"national_id": "**************7777", "score": 5}
        assert s.tickets.get(t.id).custom == {}
        for repo, where in (("contacts", {"custom.national_id": NATIONAL_ID}), ("tickets", {"custom.score": {"gte": 1}})):
            with pytest.raises(ValidationError, match="masked or hidden"):
                getattr(s, repo).count(where)
        seen.custom = {**seen.custom, "score": 6}
        s.contacts.update(seen)
        hidden = s.tickets.get(t.id)
        hidden.subject = "Help!"
        s.tickets.update(hidden)
    with crm.session() as s:
        assert s.contacts.get(k.id).custom == {"national_id": NATIONAL_ID, "score": 6}
        assert s.tickets.get(t.id).custom == {"score": 3}


def test_encrypted_custom_values_of_contacts_filter_by_equality_only(open_crm: Callable[..., pycrm.CRM]) -> None:
    ring = KeyRing({"k1": bytes(range(32))}, active="k1", index_key=bytes(range(32, 64)))
    crm = open_crm(
        keyring=ring,
        encrypted={"contacts": ["custom.national_id", "custom.score"]},
        custom_fields={"contacts": [CustomField("national_id"), *FIELDS]},
    )
    with crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        k = s.contacts.add(Contact(str(c.id), "Lei", custom={"national_id": NATIONAL_ID, "score": 5}))
    with crm.session() as s:
        assert s.contacts.get(k.id).custom == {"national_id": NATIONAL_ID, "score": 5}
        assert [x.id for x in s.contacts.find({"custom.national_id": NATIONAL_ID})] == [k.id]
        assert [x.id for x in s.contacts.find({"custom.score": 5})] == [k.id]
        with pytest.raises(ValidationError) as err:  # a range would need the clear value in the database
            s.contacts.find({"custom.score": {"gte": 1}})
        assert err.value.fields == ["where.custom.score.gte"]
    with crm.session() as s:
        stored = s._stored("test: the row as stored").get(Contact, k.id)
        assert NATIONAL_ID not in repr(to_data(stored)) and stored.custom["score"] != 5


def test_erasing_a_person_removes_personal_custom_values_of_their_records(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        c = s.customers.add(Customer("Li Lei", kind="person", custom={"wechat_id": "lilei", "tier": "gold"}))
        k = s.contacts.add(Contact(str(c.id), "Lei", custom={"national_id": NATIONAL_ID, "score": 5}))
        i = s.interactions.add(Interaction(str(c.id), "call", AT, custom={"wechat_id": "lilei", "minutes": 5}))
    with crm.session() as s:
        s.personal.erase(str(c.id))
    with crm.session() as s:
        assert s.customers.get(c.id).custom == {"tier": "gold"}
        assert s.contacts.get(k.id).custom == {"score": 5}
        assert s.interactions.get(i.id).custom == {"minutes": 5}


def test_a_backup_restores_the_custom_values_of_every_entity(open_crm: Callable[..., pycrm.CRM], tmp_path: Path) -> None:
    from pycrm.io import backup, restore

    crm = open_crm(custom_fields=ALL_FIELDS)
    with crm.session() as s:
        owner = s.customers.add(Customer("Owner", custom={"score": 1}))
        for n, repo in enumerate(REPOSITORIES[1:]):
            getattr(s, repo).add(_record(repo, str(owner.id), {"score": n, "nick": repo}))
        before = {repo: sorted(to_data(e)["custom"].items()) for repo in REPOSITORIES for e in getattr(s, repo).iter()}
    path = tmp_path / "crm.jsonl"
    backup(crm, path)
    with pycrm.open("memory://", custom_fields=ALL_FIELDS) as other:
        assert restore(other, path).ok
        with other.session() as s:
            after = {repo: sorted(to_data(e)["custom"].items()) for repo in REPOSITORIES for e in getattr(s, repo).iter()}
            assert after == before
            assert [x.first_name for x in s.contacts.find({"custom.nick": {"startswith": "CONT"}})] == ["K0"]
