"""Roles and scopes: what each built-in role may do, and that the scope conditions the storage layer will
apply select exactly the rows the reference predicate ``Policy.visible`` allows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycrm.domain import (
    ACTIONS,
    ENTITY_REPOSITORIES,
    Contact,
    Customer,
    Entity,
    Interaction,
    Money,
    Opportunity,
    Order,
    Permission,
    Role,
    Task,
    Ticket,
    User,
)
from pycrm.errors import PermissionDenied, ValidationError
from pycrm.security import BUILTIN_ROLES, Policy, get_role, matches, register_role
from pycrm.security._policy import _REGISTRY
from pycrm.storage._where import parse_where

AT = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)


def user(*roles: Role | str, id: str | None = "u1", team: str | None = "t1") -> User:
    return User("Wang Fang", "wang.fang@example.com", roles=list(roles), team_id=team, id=id)


@pytest.fixture
def clean_registry() -> Any:
    saved = dict(_REGISTRY)
    yield
    _REGISTRY.clear()
    _REGISTRY.update(saved)


# ---------------------------------------------------------------- roles


def test_admin_may_do_everything_everywhere() -> None:
    p = Policy(user("admin"))
    assert {p.allowed(e, a) for e in ENTITY_REPOSITORIES for a in ACTIONS} == {"all"}


def test_the_system_actor_may_do_everything_and_sees_every_row() -> None:
    p = Policy(None)
    assert p.allowed("users", "delete") == "all"
    assert p.scope_conditions("customers", "read") == []
    assert p.visible(Customer("Acme", owner_id="someone"))


@pytest.mark.parametrize(
    ("role", "entity", "action", "scope"),
    [
        ("manager", "customers", "delete", "team"),
        ("manager", "opportunities", "merge", "team"),
        ("manager", "users", "read", "team"),
        ("manager", "users", "create", None),
        ("sales", "customers", "read", "own"),
        ("sales", "customers", "update", "own"),
        ("sales", "customers", "delete", None),
        ("sales", "customers", "merge", None),
        ("sales", "orders", "update", None),
        ("sales", "opportunities", "delete", "own"),
        ("support", "customers", "read", "all"),
        ("support", "customers", "update", None),
        ("support", "tickets", "update", "all"),
        ("support", "tickets", "delete", None),
        ("support", "interactions", "create", "own"),
        ("analyst", "orders", "export", "all"),
        ("analyst", "customers", "update", None),
        ("analyst", "users", "read", None),
    ],
)
def test_built_in_roles(role: str, entity: str, action: str, scope: str | None) -> None:
    assert Policy(user(role)).allowed(entity, action) == scope


def test_the_widest_scope_of_all_roles_wins() -> None:
    assert Policy(user("sales", "support")).allowed("customers", "read") == "all"
    assert Policy(user("sales", "support")).allowed("customers", "update") == "own"
    mixed = Role("mixed", [Permission("customers", "read", "own"), Permission("*", "read", "team")])
    assert Policy(user(mixed)).allowed("customers", "read") == "team"


def test_wildcards_match_any_entity_and_action() -> None:
    p = Policy(user(Role("reader", [Permission("*", "read", "all"), Permission("tasks", "*", "own")])))
    assert p.allowed("orders", "read") == "all"
    assert p.allowed("tasks", "delete") == "own"
    assert p.allowed("orders", "delete") is None


def test_a_user_without_roles_may_do_nothing() -> None:
    p = Policy(user())
    assert p.allowed("customers", "read") is None
    with pytest.raises(PermissionDenied, match=r"user 'u1' \(roles: none\) may not read customers"):
        p.scope_conditions("customers")


def test_check_names_the_user_roles_action_and_entity() -> None:
    with pytest.raises(PermissionDenied) as info:
        Policy(user("analyst")).check("customers", "update")
    assert str(info.value) == "user 'u1' (roles: analyst) may not update customers"
    assert Policy(user("analyst")).check("customers", "read") == "all"


def test_unknown_entity_or_action_is_a_validation_error() -> None:
    p = Policy(user("admin"))
    with pytest.raises(ValidationError) as info:
        p.allowed("customer", "read")
    assert info.value.fields == ["entity"]
    with pytest.raises(ValidationError) as info:
        p.allowed("customers", "destroy")
    assert info.value.fields == ["action"]


def test_an_unknown_role_name_is_refused_not_ignored() -> None:
    with pytest.raises(ValidationError) as info:
        Policy(user("sales", "salse"))
    assert info.value.fields == ["roles[1]"]
    assert info.value.errors[0].code == "unknown_role"


def test_hosts_register_their_own_roles(clean_registry: Any) -> None:
    test_auditor = register_role(Role("test_auditor", [Permission("*", "read", "all")]))
    assert get_role("test_auditor") is test_auditor
    assert Policy(user("test_auditor")).allowed("users", "read") == "all"
    assert register_role(Role("test_auditor", [Permission("*", "read", "all")])) is not None  # the same again: fine
    with pytest.raises(ValidationError, match="another role named 'test_auditor'"):
        register_role(Role("test_auditor", [Permission("*", "*", "all")]))
    with pytest.raises(ValidationError, match="another role named 'sales'"):
        register_role(Role("sales", [Permission("*", "*", "all")]))
    register_role(Role("sales", [Permission("*", "read", "own")]), replace=True)
    assert Policy(user("sales")).allowed("customers", "update") is None
    with pytest.raises(ValidationError):
        get_role("nobody")


def test_a_policy_may_use_its_own_role_table() -> None:
    table = {"sales": Role("sales", [Permission("customers", "read", "all")])}
    assert Policy(user("sales"), roles=table).allowed("customers", "read") == "all"
    assert BUILTIN_ROLES["sales"] is get_role("sales")


# ---------------------------------------------------------------- scope conditions


def test_own_and_team_conditions_per_repository() -> None:
    sales, manager = Policy(user("sales")), Policy(user("manager"))
    mine = {"customer_id": {"in_subquery": {"entity": "customers", "where": {"owner_id": "u1"}}}}
    team = {"customer_id": {"in_subquery": {"entity": "customers", "where": {"team_id": "t1"}}}}
    assert sales.scope_conditions("customers") == [{"owner_id": "u1"}]
    assert sales.scope_conditions("contacts") == [mine]
    assert sales.scope_conditions("orders") == [mine]
    assert sales.scope_conditions("opportunities") == [{"any_of": [{"owner_id": "u1"}, mine]}]
    assert sales.scope_conditions("tickets") == [{"any_of": [{"assignee_id": "u1"}, mine]}]
    assert sales.scope_conditions("interactions") == [{"any_of": [{"user_id": "u1"}, mine]}]
    assert sales.scope_conditions("tasks") == [{"assignee_id": "u1"}]
    assert manager.scope_conditions("customers") == [{"any_of": [{"owner_id": "u1"}, {"team_id": "t1"}]}]
    assert manager.scope_conditions("contacts") == [{"any_of": [mine, team]}]
    assert manager.scope_conditions("tasks") == [
        {"any_of": [{"assignee_id": "u1"}, {"assignee_id": {"in_subquery": {"entity": "users", "where": {"team_id": "t1"}}}}]}
    ]
    assert manager.scope_conditions("users") == [{"any_of": [{"id": "u1"}, {"team_id": "t1"}]}]
    assert Policy(user("support")).scope_conditions("tickets", "update") == []


def test_without_a_team_team_scope_is_own_scope() -> None:
    """An actor with no team must not see every row whose team is missing too."""
    p = Policy(user("manager", team=None))
    assert p.scope_conditions("customers") == [{"owner_id": "u1"}]
    assert not p.visible(Customer("Acme", owner_id="u2", team_id=None))


def test_an_unsaved_actor_matches_no_row() -> None:
    p = Policy(user("sales", id=None))
    assert p.scope_conditions("customers") == [{"id": {"in": []}}]
    assert not matches(p.scope_conditions("customers"), Customer("Acme", owner_id=None, id="c1"))
    assert not p.visible(Customer("Acme", owner_id=None))


def _leaves(where: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(entity of the rows, plain where mapping) for every part of a scope condition."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    plain: dict[str, Any] = {}
    for field, spec in where.items():
        if field == "any_of":
            for alt in spec:
                out += _leaves(alt)
        elif isinstance(spec, Mapping) and "in_subquery" in spec:
            sub = spec["in_subquery"]
            out += [(sub["entity"], w) for _, w in _leaves(sub["where"])]
        else:
            plain[field] = spec
    return [("", plain), *out] if plain else out


@pytest.mark.parametrize("role", ["sales", "manager", "support"])
@pytest.mark.parametrize("entity", ENTITY_REPOSITORIES)
def test_every_plain_part_is_in_the_stores_where_language(role: str, entity: str) -> None:
    """The storage layer can hand each plain part to ``parse_where``; only any_of/in_subquery are new."""
    from pycrm.domain import ENTITIES

    p = Policy(user(role))
    if p.allowed(entity, "read") is None:
        return
    for where in p.scope_conditions(entity):
        for on, plain in _leaves(where):
            parse_where(ENTITIES[on or entity], plain)


# ---------------------------------------------------------------- conditions agree with the reference predicate

IDS = ["u1", "u2", "u3"]
TEAMS = ["t1", "t2", None]


@st.composite
def worlds(draw: st.DrawFn) -> tuple[dict[tuple[str, str], Entity], list[Entity]]:
    """Users and customers with owners and teams from small sets, and rows of every kind under them."""
    rows: dict[tuple[str, str], Entity] = {}
    for uid in IDS:
        rows["users", uid] = User(uid, f"{uid}@example.com", team_id=draw(st.sampled_from(TEAMS)), id=uid)
    owners = st.sampled_from([*IDS, None])
    for i in range(3):
        cid = f"c{i}"
        rows["customers", cid] = Customer(f"Customer {i}", owner_id=draw(owners), team_id=draw(st.sampled_from(TEAMS)), id=cid)
    parent = st.sampled_from(["c0", "c1", "c2", "gone"])  # "gone": a dangling reference
    objs: list[Entity] = [rows[k] for k in rows]
    objs += [
        Contact(draw(parent), "Ada", id="k1"),
        Order(draw(parent), AT, Money(10, "CNY"), id="o1"),
        Opportunity(draw(parent), "Deal", Money(10, "CNY"), owner_id=draw(owners), id="p1"),
        Ticket(draw(parent), "Help", assignee_id=draw(owners), id="t1"),
        Interaction(draw(parent), "call", AT, user_id=draw(owners), id="i1"),
        Task("Call back", AT, assignee_id=draw(st.sampled_from([*IDS, None, "gone"])), id="a1"),
    ]
    return rows, objs


actors = st.builds(
    lambda roles, uid, team: user(*roles, id=uid, team=team),
    st.lists(st.sampled_from(sorted(BUILTIN_ROLES)), max_size=2),
    st.sampled_from(IDS),
    st.sampled_from(TEAMS),
)


@given(worlds(), actors, st.sampled_from(ACTIONS))
def test_scope_conditions_select_exactly_the_visible_rows(world: Any, actor: User, action: str) -> None:
    rows, objs = world

    def lookup(repo: str, ident: str) -> Entity | None:
        return rows.get((repo, ident))

    p = Policy(actor)
    for obj in objs:
        entity = obj.entity_name()
        if p.allowed(entity, action) is None:
            assert not p.visible(obj, action, lookup=lookup)
            continue
        conditions = p.scope_conditions(entity, action)
        assert matches(conditions, obj, lookup=lookup) == p.visible(obj, action, lookup=lookup), (entity, conditions)


@given(worlds(), actors)
def test_a_wider_scope_never_shows_fewer_rows(world: Any, actor: User) -> None:
    """team includes own, all includes team: adding a role can only add rows."""
    rows, objs = world

    def lookup(repo: str, ident: str) -> Entity | None:
        return rows.get((repo, ident))

    narrow = Policy(user("sales", id=actor.id, team=actor.team_id))
    wide = Policy(user("sales", "manager", id=actor.id, team=actor.team_id))
    for obj in objs:
        if narrow.visible(obj, lookup=lookup):
            assert wide.visible(obj, lookup=lookup)


def test_children_follow_their_customer() -> None:
    rows = {
        "c1": Customer("Acme", owner_id="u1", team_id="t1", id="c1"),
        "c2": Customer("Globex", owner_id="u2", team_id="t2", id="c2"),
    }

    def lookup(repo: str, ident: str) -> Entity | None:
        return rows.get(ident) if repo == "customers" else None

    sales = Policy(user("sales"))
    assert sales.visible(Contact("c1", "Ada"), lookup=lookup)
    assert not sales.visible(Contact("c2", "Bob"), lookup=lookup)
    assert not sales.visible(Contact("c1", "Ada"))  # no lookup: refused, never guessed
    deal = Opportunity("c2", "Deal", Money(10, "CNY"), owner_id="u1")
    assert sales.visible(deal, lookup=lookup)  # my deal on someone else's customer


def test_check_entity_guards_writes_by_scope() -> None:
    sales = Policy(user("sales"))
    sales.check_entity(Customer("Acme", owner_id="u1"), "create")
    with pytest.raises(PermissionDenied, match="outside its scope"):
        sales.check_entity(Customer("Acme", owner_id="u2", id="c9"), "update")
    with pytest.raises(PermissionDenied, match="may not delete customers"):
        sales.check_entity(Customer("Acme", owner_id="u1"), "delete")


def test_a_users_filter_can_only_narrow() -> None:
    """The storage layer ANDs the scope with the caller's where: rows outside the scope never come back."""
    p = Policy(user("sales"))
    rows = [
        Customer("Acme", owner_id="u1", status="active", id="c1"),
        Customer("Globex", owner_id="u2", status="active", id="c2"),
    ]
    user_where = [{"status": "active"}, {"owner_id": "u2"}]  # asking for someone else's rows explicitly
    found = [c.id for c in rows if matches([*p.scope_conditions("customers"), *user_where], c)]
    assert found == []
