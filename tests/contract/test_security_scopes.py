"""Row scopes on every adapter: each actor sees and changes exactly the rows its policy allows.

``Policy(actor).visible(row, action, lookup=...)`` is the reference; the stores must agree with it on
every read path (find, count, iter, get, paging), never let a caller's ``where`` widen the scope, and
refuse writes outside the scope (or moving a row out of it) without changing anything.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pycrm
from pycrm import (
    Contact,
    Customer,
    Interaction,
    Money,
    NotFound,
    Opportunity,
    Order,
    PermissionDenied,
    Survey,
    Task,
    Ticket,
    User,
    ValidationError,
)
from pycrm.domain import ENTITIES
from pycrm.domain._codec import to_data
from pycrm.security import DEFAULT_FIELD_RULES, Policy
from pycrm.storage._where import FIELD_KINDS, OPERATORS
from tests.strategies import (
    SCOPE_AT,
    SCOPE_EMAILS,
    SCOPE_PEOPLE,
    SCOPE_PHONES,
    SCOPE_REPOSITORIES,
    SCOPE_TEAMS,
    SecurityWorld,
    scoped_actors,
    security_worlds,
)

# Each example fills a store with ~25 rows and queries it through every repository for several actors:
# a fraction of the profile's examples keeps the four adapters inside the suite's time budget.
DB = settings(
    max_examples=max(6, settings.default.max_examples // 4),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Children before parents: the order the store accepts deletes in.
DELETE_ORDER = (
    "campaign_responses",
    "campaign_members",
    "campaigns",
    "surveys",
    "tasks",
    "interactions",
    "tickets",
    "orders",
    "opportunities",
    "contacts",
    "customers",
    "users",
)


#: The kinds the fuzzed write test tries (the campaign kinds are read-fuzzed; their refused writes are
#: the intruder's attacks in test_gate.py and the cases of test_campaigns.py).
WRITE_REPOSITORIES = tuple(r for r in SCOPE_REPOSITORIES if not r.startswith("campaign"))


class Rollback(Exception):
    """Raised to end a unit of work without keeping what it did."""


# ---------------------------------------------------------------- helpers


def _insert(crm: pycrm.CRM, world: SecurityWorld) -> None:
    with crm.session() as s:
        for repo in SCOPE_REPOSITORIES:
            if world.rows[repo]:
                getattr(s, repo).add_many(world.rows[repo])


def _clear(crm: pycrm.CRM) -> None:
    """Examples share the store: leave it empty."""
    with crm.session() as s:
        for repo in DELETE_ORDER:
            r = getattr(s, repo)
            for e in list(r.iter()):
                r.delete(e.id)


def _snapshot(crm: pycrm.CRM) -> dict[str, dict[str, Any]]:
    with crm.session() as s:
        return {repo: {e.id: to_data(e) for e in getattr(s, repo).iter()} for repo in SCOPE_REPOSITORIES}


def _expected(world: SecurityWorld, actor: User, repo: str, action: str = "read") -> set[str]:
    policy = Policy(actor)
    return {r.id for r in world.rows[repo] if policy.visible(r, action, lookup=world.lookup)}


def _ids(rows: Any) -> list[str]:
    return [r.id for r in rows]


# ---------------------------------------------------------------- fuzzed filters

_TEXT_VALUES = ["cu0", "cu1", "co0", "op1", "u0", "u1", "u9", "t1", "t2", "lead", "active", "high", "call", "Deal", "A", "%", "_"]
_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "text": st.sampled_from(_TEXT_VALUES),
    "int": st.integers(min_value=0, max_value=3),
    "decimal": st.sampled_from([Decimal("0"), Decimal("0.5"), Decimal("1")]),
    "score": st.sampled_from([Decimal("0.5"), 0.25, "0.7", 1]),
    "money": st.sampled_from(["0", "10", "2500.5", "99999"]),
    "currency": st.sampled_from(["CNY", "USD"]),
    "bool": st.booleans(),
    "datetime": st.sampled_from([SCOPE_AT, SCOPE_AT - dt.timedelta(days=1), SCOPE_AT + dt.timedelta(hours=5)]),
    "date": st.sampled_from([dt.date(2024, 5, 1), dt.date(2030, 1, 1)]),
    "emails": st.sampled_from(SCOPE_EMAILS),
    "email": st.sampled_from(["u0@example.com", "u1@example.com"]),
    "phones": st.sampled_from(SCOPE_PHONES),
    "tags": st.sampled_from(["vip", "b2b", "b2c"]),
    "lines": st.sampled_from(["pr0", "pr1"]),  # product ids on order lines
    "custom": st.sampled_from(["gold", "silver", 5, True]),
}


@st.composite
def where_filters(draw: st.DrawFn, repo: str) -> dict[str, Any]:
    """One to three conditions on random fields of ``repo`` with operators that apply to them."""
    kinds = dict(FIELD_KINDS[ENTITIES[repo]])
    if repo == "customers":
        kinds["custom.tier"] = kinds["custom.seats"] = "custom"
    out: dict[str, Any] = {}
    for field in draw(st.lists(st.sampled_from(sorted(kinds)), min_size=1, max_size=3, unique=True)):
        kind = kinds[field]
        op = draw(st.sampled_from(sorted(OPERATORS[kind])))
        values = _VALUES[kind]
        if op == "is_null":
            value: Any = draw(st.booleans())
        elif op == "in":
            value = draw(st.lists(values, max_size=3))
        elif op in ("contains", "startswith"):
            value = draw(st.sampled_from(["u", "cu", "1", "a", "%", "_"]))
        else:
            value = draw(values)
        out[field] = {op: value}
    return out


# ---------------------------------------------------------------- reads


@DB
@given(world=security_worlds(), actors=st.lists(scoped_actors(), min_size=2, max_size=3), data=st.data())
def test_every_read_path_sees_exactly_what_the_policy_allows(
    crm: pycrm.CRM, world: SecurityWorld, actors: list[User], data: st.DataObject
) -> None:
    _insert(crm, world)
    try:
        filters = {
            repo: data.draw(st.lists(where_filters(repo), min_size=1, max_size=2), label=repo) for repo in SCOPE_REPOSITORIES
        }
        with crm.session() as s:  # what each filter selects with no scope at all
            unscoped: dict[str, list[set[str] | None]] = {}
            for repo, wheres in filters.items():
                unscoped[repo] = []
                for where in wheres:
                    try:
                        unscoped[repo].append(set(_ids(getattr(s, repo).find(where))))
                    except ValidationError:
                        unscoped[repo].append(None)  # not a filter this field takes: checked below
        batch = data.draw(st.integers(min_value=1, max_value=3), label="batch_size")
        for actor in actors:
            policy = Policy(actor)
            with crm.session(actor=actor) as s:
                for repo in SCOPE_REPOSITORIES:
                    r = getattr(s, repo)
                    if policy.allowed(repo, "read") is None:
                        for call in (r.find, r.count, lambda r=r: list(r.iter(batch_size=batch))):
                            with pytest.raises(PermissionDenied, match=f"may not read {repo}"):
                                call()
                        for row in world.rows[repo]:
                            with pytest.raises(PermissionDenied):
                                r.get(row.id)
                        continue
                    want = _expected(world, actor, repo)
                    found = _ids(r.find())
                    assert set(found) == want, (repo, actor)
                    assert len(found) == len(want)
                    assert found == sorted(found)  # ties broken by id: the order is stable
                    assert r.count() == len(want), repo
                    assert _ids(r.iter(batch_size=batch)) == found, repo
                    assert _ids(r.find(order_by="id", limit=2, offset=1)) == found[1:3], repo
                    for row in world.rows[repo]:
                        if row.id in want:
                            assert r.get(row.id).id == row.id
                        else:
                            with pytest.raises(NotFound):
                                r.get(row.id)
                    rules = DEFAULT_FIELD_RULES.resolve(policy.roles, repo)
                    for where, everyone in zip(filters[repo], unscoped[repo]):
                        if everyone is None:
                            with pytest.raises(ValidationError):
                                r.find(where)
                            continue
                        if any(_masked_path(k, rules) for k in where):  # would read a masked value back
                            for call in (r.find, r.count, lambda w, r=r: list(r.iter(w))):
                                with pytest.raises(ValidationError, match="masked or hidden"):
                                    call(where)
                            continue
                        narrowed = set(_ids(r.find(where)))
                        assert narrowed == want & everyone, (repo, where)
                        assert r.count(where) == len(narrowed), (repo, where)
                        assert set(_ids(r.iter(where, batch_size=batch))) == narrowed, (repo, where)
    finally:
        _clear(crm)


def _masked_path(path: str, rules: dict[str, str]) -> bool:
    parts = path.split(".")
    return parts[0] in rules or ".".join(parts[:2]) in rules


def test_a_where_cannot_name_the_scope_shapes(crm: pycrm.CRM) -> None:
    """``any_of`` and ``in_subquery`` are the scope's own vocabulary: a caller using them gets an error,
    not an OR that escapes the scope."""
    rep = User("Rep", "rep@example.com", roles=["sales"], id="u1")
    with crm.session() as s:
        s.customers.add(Customer("Mine", owner_id="u1"))
        s.customers.add(Customer("Theirs", owner_id="u2"))
    with crm.session(actor=rep) as s:
        for where in (
            {"any_of": [{"owner_id": "u2"}, {"owner_id": "u1"}]},
            {"owner_id": {"in_subquery": {"entity": "customers", "where": {}}}},
            {"id": {"in_subquery": {"entity": "users", "where": {"id": "u1"}}}},
        ):
            with pytest.raises(ValidationError):
                s.customers.find(where)
        assert [c.name for c in s.customers.find({"owner_id": "u2"})] == []
        assert [c.name for c in s.customers.find({"owner_id": {"ne": "u1"}})] == []
        assert [c.name for c in s.customers.find({"owner_id": {"in": ["u1", "u2"]}})] == ["Mine"]


# ---------------------------------------------------------------- writes


def _new_row(repo: str, world: SecurityWorld, data: st.DataObject) -> Any:
    """A record an actor might try to create: pointing at a random customer / person / team."""
    person = data.draw(st.sampled_from(SCOPE_PEOPLE), label="person")
    parent = data.draw(st.sampled_from(sorted(world.ids("customers"))), label="parent")
    if repo == "customers":
        return Customer("New Co", owner_id=person, team_id=data.draw(st.sampled_from(SCOPE_TEAMS)))
    if repo == "contacts":
        return Contact(parent, "New", "Person")
    if repo == "opportunities":
        return Opportunity(parent, "New deal", Money("5", "CNY"), owner_id=person)
    if repo == "tickets":
        return Ticket(parent, "New ticket", assignee_id=person)
    if repo == "interactions":
        return Interaction(parent, "note", SCOPE_AT, user_id=person)
    if repo == "orders":
        return Order(parent, SCOPE_AT, Money("5", "CNY"))
    if repo == "tasks":
        return Task("New task", SCOPE_AT, assignee_id=person)
    if repo == "surveys":
        return Survey(parent, "nps", SCOPE_AT, user_id=person)
    return User("New user", "new.user@example.com", team_id=data.draw(st.sampled_from(SCOPE_TEAMS)))


def _raises(expected: tuple[type[Exception], str]) -> Any:
    return pytest.raises(expected[0], match=expected[1])


def _refusal(
    policy: Policy, world: SecurityWorld, row: Any, action: str, repo: str, target: Any = None
) -> tuple[type[Exception], str]:
    """What refusing ``action`` on ``row`` must raise, in the order the store checks:

    * the row: one the actor can neither ``action`` nor read is "not there" (NotFound, as for an id that
      does not exist); with no right at all on the kind, PermissionDenied names the kind;
    * a row it can read but not ``action``: PermissionDenied;
    * the parent customer (create, update): one the actor cannot read is "no customer with id";
    * the row as it would be stored: PermissionDenied."""
    lookup = world.lookup
    if action != "create":
        if policy.allowed(repo, action) is None and policy.allowed(repo, "read") is None:
            return PermissionDenied, f"may not {action} {repo}"
        if not policy.visible(row, action, lookup=lookup) and not policy.visible(row, "read", lookup=lookup):
            return NotFound, f"no {type(row).__name__} with id"
        if not policy.visible(row, action, lookup=lookup):
            return PermissionDenied, f"may not {action} {repo}"
    if not _parent_seen(policy, world, target if target is not None else row):
        return ValidationError, "no customer with id"
    return PermissionDenied, f"may not {action} {repo}"


def _parent_seen(policy: Policy, world: SecurityWorld, row: Any) -> bool:
    """Whether the store finds the customer ``row`` points at for this actor: a customer it cannot read is
    not there, unless it reads no customer at all (then the policy alone decides the write)."""
    parent = getattr(row, "customer_id", None)
    if parent is None or policy.allowed("customers", "read") is None:
        return True
    return policy.visible(world.lookup("customers", parent), "read", lookup=world.lookup)


def _moved(repo: str, row: Any, world: SecurityWorld, data: st.DataObject) -> Any:
    """``row`` with a harmless field changed and, often, the fields its scope depends on changed too."""
    person = data.draw(st.sampled_from(SCOPE_PEOPLE), label="new person")
    team = data.draw(st.sampled_from(SCOPE_TEAMS), label="new team")
    parent = data.draw(st.sampled_from(sorted(world.ids("customers"))), label="new parent")
    move = data.draw(st.booleans(), label="move")
    changes: dict[str, Any] = {
        "customers": {"name": "Renamed Co"},
        "contacts": {"title": "Buyer"},
        "opportunities": {"name": "Renamed deal"},
        "tickets": {"description": "more detail"},
        "interactions": {"subject": "renamed"},
        "orders": {"order_no": "SO-1234"},
        "tasks": {"title": "Renamed task"},
        "users": {"name": "Renamed User"},
        "surveys": {"comment": "edited"},
    }[repo]
    if move:
        changes.update(
            {
                "customers": {"owner_id": person, "team_id": team},
                "contacts": {"customer_id": parent},
                "opportunities": {"owner_id": person, "customer_id": parent},
                "tickets": {"assignee_id": person},
                "interactions": {"user_id": person, "customer_id": parent},
                "orders": {"customer_id": parent},
                "tasks": {"assignee_id": person},
                "users": {"team_id": team},
                "surveys": {"user_id": person, "customer_id": parent},
            }[repo]
        )
    return attrs.evolve(row, **changes)


@DB
@given(world=security_worlds(), actor=scoped_actors(), data=st.data())
def test_writes_outside_the_scope_are_refused_and_change_nothing(
    crm: pycrm.CRM, world: SecurityWorld, actor: User, data: st.DataObject
) -> None:
    _insert(crm, world)
    try:
        policy = Policy(actor)
        before = _snapshot(crm)
        stored = {repo: {e["id"]: e for e in before[repo].values()} for repo in SCOPE_REPOSITORIES}
        allowed: list[tuple[str, str, Any]] = []
        refused = 0
        with crm.session(actor=actor) as s:  # every refused write, then a clean commit
            for repo in WRITE_REPOSITORIES:
                r = getattr(s, repo)
                new = _new_row(repo, world, data)
                if policy.visible(new, "create", lookup=world.lookup) and _parent_seen(policy, world, new):
                    allowed.append((repo, "create", new))
                else:
                    with _raises(_refusal(policy, world, new, "create", repo)):
                        r.add(new)
                    assert new.id is None and new.version == 0  # the caller's object is left as it was
                    refused += 1
                if not world.rows[repo]:
                    continue
                row = data.draw(st.sampled_from(world.rows[repo]), label=f"{repo} row")
                current = _load(repo, stored[repo][row.id])
                target = _moved(repo, current, world, data)
                ok = (
                    policy.visible(current, "update", lookup=world.lookup)
                    and policy.visible(target, "update", lookup=world.lookup)
                    and _parent_seen(policy, world, target)
                )
                if ok:
                    allowed.append((repo, "update", target))
                else:
                    with _raises(_refusal(policy, world, current, "update", repo, target)):
                        r.update(target)
                    assert target.version == current.version
                    refused += 1
                victim = data.draw(st.sampled_from(world.rows[repo]), label=f"{repo} victim")
                if policy.visible(victim, "delete", lookup=world.lookup):
                    allowed.append((repo, "delete", victim.id))
                else:
                    with _raises(_refusal(policy, world, victim, "delete", repo)):
                        r.delete(victim.id)
                    refused += 1
        assert _snapshot(crm) == before  # nothing of a refused write was stored
        for repo, action, arg in allowed:  # ... and a write inside the scope goes through
            with pytest.raises(Rollback), crm.session(actor=actor) as s:
                r = getattr(s, repo)
                if action == "create":
                    assert r.add(attrs.evolve(arg)).version == 1
                elif action == "update":
                    assert r.update(attrs.evolve(arg)).version == arg.version + 1
                else:
                    try:
                        r.delete(arg)
                    except ValidationError as exc:  # a customer with records under it: not a scope matter
                        assert exc.errors[0].code == "in_use"
                raise Rollback
        assert _snapshot(crm) == before
    finally:
        _clear(crm)


def _load(repo: str, data: dict[str, Any]) -> Any:
    from pycrm.domain._codec import from_data

    return from_data(ENTITIES[repo], data)


def test_moving_a_row_out_of_the_scope_is_refused(crm: pycrm.CRM) -> None:
    rep = User("Rep", "rep@example.com", roles=["sales"], team_id="t1", id="u1")
    lead = User("Lead", "lead@example.com", roles=["manager"], team_id="t1", id="u5")
    with crm.session() as s:
        mine = s.customers.add(Customer("Mine", owner_id="u1", team_id="t1"))
        deal = s.opportunities.add(Opportunity(mine.id, "Deal", Money("10", "CNY"), owner_id="u1"))
        other = s.customers.add(Customer("Other team", owner_id="u2", team_id="t2"))
    with crm.session(actor=rep) as s:
        c = s.customers.get(mine.id)
        c.owner_id = "u2"  # giving the account away would take it out of the rep's own scope
        with pytest.raises(PermissionDenied, match="outside its scope"):
            s.customers.update(c)
        d = s.opportunities.get(deal.id)
        d.customer_id, d.owner_id = other.id, "u2"  # a customer the rep cannot see is not there
        with pytest.raises(ValidationError, match="no customer with id"):
            s.opportunities.update(d)
        with pytest.raises(NotFound):
            s.customers.get(other.id)
    with crm.session(actor=lead) as s:
        c = s.customers.get(mine.id)
        c.team_id = "t2"  # out of the manager's team
        with pytest.raises(PermissionDenied, match="outside its scope"):
            s.customers.update(c)
        c.team_id, c.name = "t1", "Renamed inside the team"
        s.customers.update(c)
    with crm.session() as s:
        c = s.customers.get(mine.id)
        assert (c.owner_id, c.team_id, c.name, c.version) == ("u1", "t1", "Renamed inside the team", 2)
        assert s.opportunities.get(deal.id).customer_id == mine.id
