"""Roles and row scopes: who may do what to which rows.

A :class:`Policy` resolves a :class:`~pycrm.domain.User` (its roles are ``Role`` objects or names of
registered roles) into answers the storage layer needs:

* ``allowed(entity, action)`` -- the widest scope (``own`` < ``team`` < ``all``) any permission grants,
  or None;
* ``check(entity, action)`` -- the same, raising :class:`~pycrm.errors.PermissionDenied` for None;
* ``scope_conditions(entity, action)`` -- the rows within that scope, as plain data (see below);
* ``visible(obj, action)`` / ``check_entity(obj, action)`` -- the same rule for one object in memory,
  the reference predicate that tests hold the adapters to.

What the scopes mean, per repository (``me`` is the actor's id, ``my team`` its ``team_id``)::

    repository      own: the row is mine when ...                     team adds rows where ...
    customers       owner_id == me                                    team_id == my team
    contacts        its customer is mine                              its customer's team_id == my team
    orders          its customer is mine                              its customer's team_id == my team
    opportunities   owner_id == me, or its customer is mine           its customer's team_id == my team
    tickets         assignee_id == me, or its customer is mine        its customer's team_id == my team
    interactions    user_id == me, or its customer is mine            its customer's team_id == my team
    surveys         its customer is mine                              its customer's team_id == my team
    attachments     its customer is mine                              its customer's team_id == my team
                    (and, whatever the scope, only for the kinds of record the actor may read)
    campaigns       owner_id == me                                    the owner's team_id == my team
    campaign_members, campaign_responses
                    its customer is mine                              its customer's team_id == my team
    tasks           assignee_id == me                                 the assignee's team_id == my team
    users           id == me                                          team_id == my team
    products        every row (shared reference data: any scope granted reads the whole catalog)

"its customer is mine" means the parent customer's ``owner_id == me``. ``team`` always includes ``own``,
so the widest scope never loses a row a narrower one gave. An actor without a ``team_id`` has no team:
``team`` is then the same as ``own`` (it never matches rows whose team is missing too). The system actor
(``Policy(None)``, a session opened with ``actor=None``) may do everything.

Scope conditions
----------------
``scope_conditions(entity, action)`` returns a list of *where* mappings in the store's filter language,
**all of which must hold** (AND), and which the storage layer ANDs with the caller's own ``where``, so a
filter from the user can only narrow what the scope shows. ``[]`` means no restriction (scope ``all``).
Besides the plain ``{"owner_id": "u1"}`` (a bare value is ``eq``), two shapes are used:

* ``{"any_of": [where, where, ...]}`` -- at least one of the mappings holds (OR);
* ``{"customer_id": {"in_subquery": {"entity": "customers", "where": where}}}`` -- the field holds the
  ``id`` of a row of that repository matching the nested ``where`` (same grammar, recursively).

SQL: ``any_of`` is ``OR`` of the translated alternatives; ``in_subquery`` is
``customer_id IN (SELECT id FROM customers WHERE ...)``. Memory: :func:`matches` evaluates the conditions
against one object, looking related rows up by id; the memory adapter may call it as it is.

>>> from pycrm.domain import Customer, User
>>> rep = User("Wang Fang", "wang.fang@example.com", roles=["sales"], team_id="t1", id="u1")
>>> policy = Policy(rep)
>>> policy.allowed("customers", "read"), policy.allowed("customers", "delete")
('own', None)
>>> policy.scope_conditions("customers", "read")
[{'owner_id': 'u1'}]
>>> policy.scope_conditions("contacts", "read")
[{'customer_id': {'in_subquery': {'entity': 'customers', 'where': {'owner_id': 'u1'}}}}]
>>> policy.visible(Customer("Acme", owner_id="u1")), policy.visible(Customer("Globex", owner_id="u2"))
(True, False)
>>> policy.check("customers", "delete")
Traceback (most recent call last):
...
pycrm.errors.PermissionDenied: user 'u1' (roles: sales) may not delete customers
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pycrm.domain import ACTIONS, ENTITY_REPOSITORIES, SCOPES, Entity, Permission, Role, User
from pycrm.errors import FieldError, PermissionDenied, ValidationError

__all__ = [
    "BUILTIN_ROLES",
    "Lookup",
    "Policy",
    "get_role",
    "matches",
    "register_role",
]

#: ``lookup(repository, id)``: the stored entity, or None. Used for rows whose scope follows a parent.
Lookup = Callable[[str, str], Entity | None]

_RANK = {scope: i for i, scope in enumerate(SCOPES)}  # own < team < all

_BUSINESS = (
    "customers",
    "contacts",
    "opportunities",
    "tickets",
    "interactions",
    "orders",
    "tasks",
    "surveys",
    "campaigns",
    "campaign_members",
    "campaign_responses",
    "activities",
    "attachments",
)
_CAMPAIGN = ("campaigns", "campaign_members", "campaign_responses")
_WRITE = ("create", "update", "delete")
#: Shared reference data: rows nobody owns (the product catalog). Any scope granted on them covers every row;
#: reading them needs a permission still (default deny), and they are not personal data.
SHARED = ("products",)


def _perms(entities: Iterable[str], actions: Iterable[str], scope: str) -> list[Permission]:
    return [Permission(e, a, scope) for e in entities for a in actions]


#: The built-in roles, by name. Hosts add their own with :func:`register_role`.
BUILTIN_ROLES: Mapping[str, Role] = {
    # everything, everywhere (user administration included)
    "admin": Role("admin", [Permission("*", "*", "all")]),
    # runs a team: every action on the team's records; sees the team's users
    "manager": Role(
        "manager",
        [
            *_perms(_BUSINESS, ["*"], "team"),
            Permission("users", "read", "team"),
            *_perms(["products"], ["read", "create", "update"], "all"),
        ],
    ),
    # works their own accounts: reads and edits their customers and everything under them
    "sales": Role(
        "sales",
        [
            *_perms(["customers", "contacts", "opportunities", "interactions", "tasks"], ["read", "create", "update"], "own"),
            *_perms(["opportunities", "interactions", "tasks"], ["delete"], "own"),
            *_perms(["orders", "tickets", "surveys", "activities"], ["read", "create"], "own"),
            *_perms(_CAMPAIGN, ["read", "create", "update"], "own"),
            *_perms(["attachments"], ["read", "create", "update", "delete"], "own"),
            *_perms(["customers", "contacts"], ["export"], "own"),
            Permission("users", "read", "team"),
            Permission("products", "read", "all"),
        ],
    ),
    # the help desk: reads every customer, works every ticket and survey, logs its own interactions and tasks
    "support": Role(
        "support",
        [
            *_perms(["customers", "contacts", "orders", "interactions", "activities"], ["read"], "all"),
            *_perms(["tickets", "surveys"], ["read", "create", "update"], "all"),
            *_perms(["attachments"], ["read", "create"], "all"),
            *_perms(["interactions"], ["create"], "own"),
            *_perms(["tasks"], ["read", "create", "update"], "own"),
            Permission("users", "read", "all"),
            Permission("products", "read", "all"),
        ],
    ),
    # reporting: reads and exports everything but users, tasks and attachments (their content is the people
    # themselves: photos, voices, signed contracts), changes nothing (field masking hides contact data)
    "analyst": Role(
        "analyst", _perms([*(e for e in _BUSINESS if e not in ("tasks", "attachments")), "products"], ["read", "export"], "all")
    ),
}

_REGISTRY: dict[str, Role] = dict(BUILTIN_ROLES)


def register_role(role: Role, *, replace: bool = False) -> Role:
    """Make a host-defined role known by name, so ``User(roles=["auditor"])`` can refer to it.

    Registering a different role under a taken name (a built-in one included) needs ``replace=True``.

    >>> from pycrm.domain import Permission, Role
    >>> auditor = register_role(Role("auditor", [Permission("*", "read", "all")]))
    >>> get_role("auditor") is auditor
    True
    """
    if not isinstance(role, Role):
        raise ValidationError([FieldError("role", "type", f"expected a Role, got {type(role).__name__}")])
    current = _REGISTRY.get(role.name)
    if current is not None and current != role and not replace:
        raise ValidationError([FieldError("role", "conflict", f"another role named {role.name!r} is registered")])
    _REGISTRY[role.name] = role
    return role


def get_role(name: str) -> Role:
    """The registered role called ``name``; an unknown name is a ValidationError."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValidationError([FieldError("role", "unknown_role", f"no role named {name!r} is registered")]) from None


def _check_name(value: str, options: Sequence[str], field: str) -> None:
    if value not in options:
        raise ValidationError([FieldError(field, "invalid_choice", f"{value!r} is not one of {', '.join(options)}")])


# ---------------------------------------------------------------- the scope rules, as data


#: The field naming the user a row belongs to, per repository (contacts and orders have none).
_PERSON = {
    "customers": "owner_id",
    "opportunities": "owner_id",
    "tickets": "assignee_id",
    "interactions": "user_id",
    "tasks": "assignee_id",
    "users": "id",
    "campaigns": "owner_id",
}
#: Repositories whose rows belong to a customer (scoped by it).
_OF_CUSTOMER = (
    "contacts",
    "orders",
    "opportunities",
    "tickets",
    "interactions",
    "surveys",
    "campaign_members",
    "campaign_responses",
    "activities",
    "attachments",
)
#: The kinds of record an attachment may belong to: an actor sees an attachment only with read access to its kind.
_ATTACHED = ("customers", "contacts", "opportunities", "tickets", "interactions", "orders")


def _own(entity: str, me: str) -> list[dict[str, Any]]:
    """Alternatives (OR) that make a row of ``entity`` the actor's own."""
    mine_customer = {"customer_id": {"in_subquery": {"entity": "customers", "where": {"owner_id": me}}}}
    out: list[dict[str, Any]] = []
    if entity in _PERSON:
        out.append({_PERSON[entity]: me})
    if entity in _OF_CUSTOMER:
        out.append(mine_customer)
    return out


def _team(entity: str, team: str) -> list[dict[str, Any]]:
    """Alternatives (OR) that put a row of ``entity`` in the actor's team (``own`` not included)."""
    if entity in ("customers", "users"):
        return [{"team_id": team}]
    if entity in ("tasks", "campaigns"):
        return [{_PERSON[entity]: {"in_subquery": {"entity": "users", "where": {"team_id": team}}}}]
    return [{"customer_id": {"in_subquery": {"entity": "customers", "where": {"team_id": team}}}}]


def _one(alternatives: list[dict[str, Any]]) -> dict[str, Any]:
    return alternatives[0] if len(alternatives) == 1 else {"any_of": alternatives}


class Policy:
    """What one actor may do: its roles resolved once, answered per repository and action.

    ``actor=None`` is the system actor, allowed everything. ``roles`` maps role names to roles for
    resolving names in ``actor.roles`` (default: the registered roles, see :func:`register_role`).
    An unknown role name is a ValidationError naming ``roles[i]``: a typo must not pass silently.
    """

    def __init__(self, actor: User | None, *, roles: Mapping[str, Role] | None = None) -> None:
        if actor is not None and not isinstance(actor, User):
            raise ValidationError([FieldError("actor", "type", f"expected a User or None, got {type(actor).__name__}")])
        if roles is not None and not isinstance(roles, Mapping):
            raise ValidationError(
                [FieldError("roles", "type", f"expected a mapping of name to Role, got {type(roles).__name__}")]
            )
        self.actor = actor
        registry = _REGISTRY if roles is None else roles
        resolved: list[Role] = []
        errors: list[FieldError] = []
        for i, r in enumerate(actor.roles if actor is not None else []):
            if isinstance(r, Role):
                resolved.append(r)
            elif isinstance(registry.get(r), Role):
                resolved.append(registry[r])
            else:
                errors.append(FieldError(f"roles[{i}]", "unknown_role", f"no role named {r!r} is registered"))
        if errors:
            raise ValidationError(errors)
        self.roles: tuple[Role, ...] = tuple(resolved)
        self._cache: dict[tuple[str, str], str | None] = {}

    def __repr__(self) -> str:
        who = "system" if self.actor is None else repr(self.actor.id)
        return f"Policy({who}, roles={[r.name for r in self.roles]})"

    @property
    def role_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.roles)

    def allowed(self, entity: str, action: str) -> str | None:
        """The widest scope (``own`` < ``team`` < ``all``) granted for ``action`` on ``entity``, or None.

        ``*`` in a permission's entity or action matches any. Unknown names are a ValidationError.
        """
        key = (entity, action)
        if key in self._cache:
            return self._cache[key]
        _check_name(entity, ENTITY_REPOSITORIES, "entity")
        _check_name(action, ACTIONS, "action")
        if self.actor is None:
            best: str | None = "all"
        else:
            best = None
            for role in self.roles:
                for p in role.permissions:
                    if p.entity in ("*", entity) and p.action in ("*", action) and (best is None or _RANK[p.scope] > _RANK[best]):
                        best = p.scope
        self._cache[key] = best
        return best

    def check(self, entity: str, action: str) -> str:
        """The scope of ``allowed``; PermissionDenied when nothing is granted."""
        scope = self.allowed(entity, action)
        if scope is None:
            raise PermissionDenied(f"{self._who()} may not {action} {entity}")
        return scope

    def _who(self) -> str:
        assert self.actor is not None  # the system actor is never denied
        roles = ", ".join(self.role_names) or "none"
        return f"user {self.actor.id!r} (roles: {roles})"

    def scope_conditions(self, entity: str, action: str = "read") -> list[dict[str, Any]]:
        """The rows of ``entity`` the actor may ``action``, as where mappings that must all hold.

        ``[]`` is no restriction. The storage layer ANDs these with the caller's ``where``. Raises
        PermissionDenied when the action is not granted at all. See the module docstring for the shapes.
        """
        scope = self.check(entity, action)
        extra = self._attached_kinds() if entity == "attachments" else []
        if scope == "all" or entity in SHARED:
            return extra
        assert self.actor is not None
        me = self.actor.id
        if me is None:  # an unsaved user owns nothing: match no row rather than rows with no owner
            return [{"id": {"in": []}}]
        alternatives = _own(entity, me)
        if scope == "team" and self.actor.team_id is not None:
            alternatives += _team(entity, self.actor.team_id)
        return [_one(alternatives), *extra]

    def _attached_kinds(self) -> list[dict[str, Any]]:
        """Attachments: only those of the kinds of record the actor may read (``[]``: every kind)."""
        kinds = [k for k in _ATTACHED if self.allowed(k, "read") is not None]
        return [] if len(kinds) == len(_ATTACHED) else [{"record_kind": {"in": kinds}}]

    # ---------------------------------------------------------------- one object

    def visible(self, obj: Entity, action: str = "read", *, lookup: Lookup | None = None) -> bool:
        """Whether the actor may ``action`` this object: the reference for ``scope_conditions``.

        ``lookup(repository, id)`` finds the parent customer (contacts, orders, opportunities, tickets,
        interactions, surveys) or the assignee (tasks) when the scope depends on it; without it, or when the
        parent is missing, those conditions do not hold (access is refused, never guessed).
        """
        scope = self.allowed(obj.entity_name(), action)
        if scope is None:
            return False
        if obj.entity_name() == "attachments":
            attached = getattr(obj, "record_kind", None)
            if attached not in _ATTACHED or self.allowed(attached, "read") is None:
                return False
        if scope == "all" or obj.entity_name() in SHARED:
            return True
        assert self.actor is not None
        me, team = self.actor.id, self.actor.team_id
        if me is None:
            return False
        kind = obj.entity_name()

        def get(repo: str, ref: Any) -> Any:
            return lookup(repo, ref) if lookup is not None and isinstance(ref, str) else None

        customer = get("customers", getattr(obj, "customer_id", None))
        person = _PERSON.get(kind)
        own = person is not None and getattr(obj, person, None) == me
        if not own and customer is not None and kind in _OF_CUSTOMER:
            own = customer.owner_id == me
        if own or scope == "own" or team is None:
            return own
        if kind in ("customers", "users"):
            return getattr(obj, "team_id", None) == team
        if kind in ("tasks", "campaigns"):
            assignee = get("users", getattr(obj, _PERSON[kind], None))
            return assignee is not None and assignee.team_id == team
        return customer is not None and customer.team_id == team

    def check_entity(self, obj: Entity, action: str, *, lookup: Lookup | None = None) -> None:
        """PermissionDenied unless the actor may ``action`` this object.

        For writes the storage layer calls it on the new object (``create``), on the stored and the new
        version (``update``: a row may neither be edited from outside the scope nor moved out of it) and on
        the stored one (``delete``, ``merge``).
        """
        self.check(obj.entity_name(), action)
        if not self.visible(obj, action, lookup=lookup):
            raise PermissionDenied(f"{self._who()} may not {action} {obj.entity_name()} {obj.id!r}: outside its scope")


# ---------------------------------------------------------------- evaluating conditions in memory


def _holds(where: Mapping[str, Any], obj: Entity, lookup: Lookup | None) -> bool:
    for field, spec in where.items():
        if field == "any_of":
            if not any(_holds(alt, obj, lookup) for alt in spec):
                return False
            continue
        value = getattr(obj, field, None)
        if isinstance(spec, Mapping):
            for op, arg in spec.items():
                if op == "in":
                    ok = value in arg
                elif op == "eq":
                    ok = value is not None and value == arg
                elif op == "in_subquery":
                    related = lookup(arg["entity"], value) if lookup is not None and isinstance(value, str) else None
                    ok = related is not None and _holds(arg["where"], related, lookup)
                else:
                    raise ValidationError(
                        [FieldError(f"where.{field}.{op}", "unknown_operator", f"operator {op!r} is not used by scopes")]
                    )
                if not ok:
                    return False
        elif value is None or value != spec:
            return False
    return True


def matches(conditions: Sequence[Mapping[str, Any]], obj: Entity, *, lookup: Lookup | None = None) -> bool:
    """Whether ``obj`` satisfies every one of ``conditions`` (as returned by ``Policy.scope_conditions``).

    ``lookup(repository, id)`` resolves ``in_subquery``; a missing related row fails the condition. This is
    the memory adapter's predicate; the SQL adapter translates the same data into a WHERE clause.

    >>> from pycrm.domain import Contact, Customer
    >>> rows = {"c1": Customer("Acme", owner_id="u1", id="c1")}
    >>> cond = [{"customer_id": {"in_subquery": {"entity": "customers", "where": {"owner_id": "u1"}}}}]
    >>> matches(cond, Contact("c1", "Ada"), lookup=lambda repo, id: rows.get(id))
    True
    >>> matches([{"any_of": [{"owner_id": "u2"}, {"team_id": "t9"}]}], rows["c1"])
    False
    """
    if isinstance(conditions, (str, bytes, Mapping)) or not isinstance(conditions, Iterable):
        raise ValidationError(
            [FieldError("conditions", "type", f"expected a list of conditions, got {type(conditions).__name__}")]
        )
    if not isinstance(obj, Entity):
        raise ValidationError([FieldError("obj", "type", f"expected an entity, got {type(obj).__name__}")])
    if lookup is not None and not callable(lookup):
        raise ValidationError([FieldError("lookup", "type", f"expected a function or None, got {type(lookup).__name__}")])
    return all(_holds(where, obj, lookup) for where in conditions)
