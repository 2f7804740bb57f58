"""Assignment: pick the person for a record, skip who is away, and say why.

A *strategy* picks a user id: :class:`RoundRobin` (a fair turn kept in the store, so concurrent sessions never
take the same turn), :class:`LeastLoaded` (fewest open tasks, tickets and opportunities), :class:`Weighted`
(smooth weighted round robin), :class:`ByField` (a territory map: a field of the record -> people or
another strategy) and :class:`BySkill` (the least loaded of the people skilled in a ticket's category, up its
category tree). :class:`Availability` says who is away at the moment of the assignment: on leave, or
outside the working hours of their :class:`~pycrm.automation.BusinessCalendar`; they are skipped.

:func:`assign` runs a strategy in a session and returns an :class:`Assignment` (the user id, or None when
nobody is available, and the reason in words); :func:`assign_to` also writes the choice on a record and puts
the reason in the audit trail. Everything is read and written through the session (its gate for an actor):
counts of open items are the ones the actor sees, turns are kept with the store's ``Counters`` capability.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import attrs

from pycrm.automation._calendar import BusinessCalendar
from pycrm.domain import Entity, TicketStatus, User
from pycrm.domain._checks import category as check_category
from pycrm.errors import CRMError, FieldError, PermissionDenied, ValidationError, quote
from pycrm.storage.port import Counters, GroupedCounts

__all__ = [
    "MAX_USERS",
    "Assignment",
    "Availability",
    "ByField",
    "BySkill",
    "LeastLoaded",
    "RoundRobin",
    "Strategy",
    "Weighted",
    "assign",
    "assign_to",
]

#: The most users one strategy names.
MAX_USERS = 500
#: The largest sum of :class:`Weighted` weights (the length of its cycle).
MAX_WEIGHT_TOTAL = 10_000
#: The most leave periods of one user.
MAX_LEAVES = 1000
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


def _bad(field: str, message: str, code: str = "invalid") -> ValidationError:
    return ValidationError(message, field=field, code=code)


def _session(value: Any) -> None:
    """A session that is open, or a CRMError naming ``session``."""
    from pycrm.storage import Session

    if not isinstance(value, Session):
        raise _bad("session", f"must be a Session (from crm.session()), got {type(value).__name__}")
    value.unit.check_open()


def _name(value: Any, field: str = "name", longest: int = 24) -> str:
    """A strategy's name: its counter is ``<prefix>:<name>``, at most 32 characters (``pycrm_sequences``)."""
    if not isinstance(value, str) or len(value) > longest or not _NAME.fullmatch(value):
        raise _bad(field, f"must be 1 to {longest} ASCII letters, digits, '_', '.' or '-', got {quote(value)}")
    return value


def _rr_name(value: Any) -> str:
    return _name(value, longest=29)  # rr:<name>


def _wrr_name(value: Any) -> str:
    return _name(value, longest=28)  # wrr:<name>


def _user_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        raise _bad(field, f"must be a user id, got {quote(value)}")
    return value


def _users(value: Any, field: str = "users") -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise _bad(field, f"must be a list of user ids, got {quote(value)}")
    out: list[str] = []
    for i, u in enumerate(value):
        if i >= MAX_USERS:
            raise _bad(field, f"names more than {MAX_USERS} users", "too_many")
        out.append(_user_id(u, f"{field}[{i}]"))
    if not out:
        raise _bad(field, "names nobody", "empty")
    if len(set(out)) != len(out):
        twice = sorted({u for u in out if out.count(u) > 1})
        raise _bad(field, f"names {quote(twice[0])} twice (use Weighted to give someone more turns)", "duplicate")
    return tuple(out)


def _shown_ids(ids: Sequence[str]) -> str:
    return "[" + ", ".join(ids[:20]) + (f", ... ({len(ids)} in all)" if len(ids) > 20 else "") + "]"


# ---------------------------------------------------------------------------------------------------
# results and availability
# ---------------------------------------------------------------------------------------------------


@attrs.frozen
class Assignment:
    """Who was chosen (``user_id``, None when nobody is available), by which strategy, and why in words."""

    user_id: str | None
    strategy: str
    reason: str


def _leave(value: Any) -> dict[str, tuple[tuple[dt.date, dt.date], ...]]:
    if not isinstance(value, Mapping):
        raise _bad("leave", f"must map user ids to (first day, last day) periods, got {quote(value)}")
    out: dict[str, tuple[tuple[dt.date, dt.date], ...]] = {}
    for user, periods in value.items():
        where = f"leave.{user}"
        _user_id(user, "leave")
        if isinstance(periods, (str, bytes)) or not isinstance(periods, Iterable):
            raise _bad(where, f"must be a list of (first day, last day) periods, got {quote(periods)}")
        got: list[tuple[dt.date, dt.date]] = []
        for i, p in enumerate(periods):
            if i >= MAX_LEAVES:
                raise _bad(where, f"holds more than {MAX_LEAVES} periods", "too_many")
            if isinstance(p, (str, bytes)) or not isinstance(p, Sequence) or len(p) != 2:
                raise _bad(f"{where}[{i}]", f"must be a (first day, last day) pair, got {quote(p)}")
            first, last = (_day(d, f"{where}[{i}]") for d in p)
            if last < first:
                raise _bad(f"{where}[{i}]", f"ends ({last}) before it begins ({first})", "range")
            got.append((first, last))
        out[user] = tuple(sorted(got))
    return out


def _day(value: Any, field: str) -> dt.date:
    if isinstance(value, str) and len(value) <= 10:
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    raise _bad(field, f"{quote(value)} is not a date such as '2026-12-01'")


def _calendars(value: Any) -> dict[str, BusinessCalendar]:
    if not isinstance(value, Mapping):
        raise _bad("calendars", f"must map user ids to BusinessCalendar objects, got {quote(value)}")
    for user, cal in value.items():
        _user_id(user, "calendars")
        if not isinstance(cal, BusinessCalendar):
            raise _bad(f"calendars.{user}", f"must be a BusinessCalendar, got {quote(cal)}")
    return dict(value)


def _default_calendar(value: Any) -> BusinessCalendar | None:
    if value is not None and not isinstance(value, BusinessCalendar):
        raise _bad("default", f"must be a BusinessCalendar or None, got {quote(value)}")
    return value


@attrs.frozen
class Availability:
    """Who works when: a :class:`BusinessCalendar` per user id (``calendars``, else ``default``; no calendar
    at all: always working) and leave periods per user id (``leave={"u2": [("2026-12-01", "2026-12-10")]}``,
    first and last day included, days in the user's calendar's time zone)."""

    calendars: Mapping[str, BusinessCalendar] = attrs.field(factory=dict, converter=_calendars)
    default: BusinessCalendar | None = attrs.field(default=None, converter=_default_calendar)
    leave: Mapping[str, tuple[tuple[dt.date, dt.date], ...]] = attrs.field(factory=dict, converter=_leave)

    def calendar(self, user_id: str) -> BusinessCalendar | None:
        return self.calendars.get(user_id, self.default)

    def away(self, user_id: str, at: dt.datetime) -> str | None:
        """Why ``user_id`` cannot take work at ``at`` (``"on leave 2026-12-01..2026-12-10"``, ``"off shift at
        ..."``), or None when they can."""
        cal = self.calendar(user_id)
        local = at.astimezone(cal.zone) if cal is not None else at.astimezone(dt.UTC)
        for first, last in self.leave.get(user_id, ()):
            if first <= local.date() <= last:
                return f"on leave {first.isoformat()}..{last.isoformat()}"
        if cal is not None and not cal.is_working_time(at):
            return f"off shift at {local:%Y-%m-%d %H:%M} {cal.timezone}"
        return None


#: Nobody is away.
ALWAYS = Availability()


# ---------------------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------------------


@attrs.frozen
class _Context:
    """What a strategy may use: the session, the record being assigned, the moment and who is away."""

    session: Any
    item: Entity | None
    at: dt.datetime
    availability: Availability

    def turn(self, counter: str) -> int:
        """The next turn of the counter ``counter`` (``Counters``, held to the end of the session)."""
        tx = self.session.unit.transaction()
        if not isinstance(tx, Counters):
            raise CRMError(f"this store keeps no counters (storage.port.Counters), which {counter!r} needs")
        return tx.next_value(counter)

    def sort_available(self, users: Sequence[str]) -> tuple[list[str], list[str]]:
        """(the available users, in order; the others as ``"u2 skipped: on leave ..."``)."""
        ok: list[str] = []
        skipped: list[str] = []
        for u in users:
            why = self.availability.away(u, self.at)
            if why is None:
                ok.append(u)
            else:
                skipped.append(f"{u} skipped: {why}")
        return ok, skipped


class Strategy(Protocol):
    """Picks a user for a record (see :func:`assign`)."""

    @property
    def kind(self) -> str:
        """The strategy's kind as a reason names it (``round_robin``, ...)."""

    def user_ids(self) -> frozenset[str]:
        """Every user id the strategy may choose (checked against the users stored)."""

    def choose(self, ctx: _Context) -> Assignment: ...


def _among(ctx: _Context, kind: str, users: Sequence[str], what: str, pick: Callable[[list[str]], tuple[str, str]]) -> Assignment:
    """The Assignment of a strategy over ``users`` (``what`` names it): ``pick`` chooses among the available
    ones (not empty) and says how; the people away are named after it, or nobody is chosen."""
    ok, skipped = ctx.sort_available(users)
    if not ok:
        return Assignment(None, kind, f"{what}: nobody available; " + "; ".join(skipped))
    user, how = pick(ok)
    return Assignment(user, kind, f"{what}: {how}" + "".join(f"; {x}" for x in skipped))


def _rotate(ctx: _Context, counter: str, cycle: Sequence[str], ok: Sequence[str]) -> tuple[str, int]:
    """Take turns of ``counter`` over ``cycle`` until one falls to an available user (one of ``ok``, not
    empty): (that user, the turn). At most ``len(cycle)`` turns, since every available user is in it."""
    allowed = set(ok)
    for _ in range(len(cycle)):
        turn = ctx.turn(counter)
        user = cycle[(turn - 1) % len(cycle)]
        if user in allowed:
            return user, turn
    raise AssertionError("an available user is in the cycle")  # pragma: no cover


@attrs.frozen
class RoundRobin:
    """Turns in the order of ``users``, kept in the store (a counter ``rr:<name>``): each assignment takes the
    next turn, so concurrent sessions never share one; a turn that falls to someone away passes to the next
    turn, so the others' turns stay even."""

    name: str = attrs.field(converter=_rr_name)
    users: tuple[str, ...] = attrs.field(converter=_users)
    kind = "round_robin"

    def user_ids(self) -> frozenset[str]:
        return frozenset(self.users)

    def choose(self, ctx: _Context) -> Assignment:
        def pick(ok: list[str]) -> tuple[str, str]:
            user, turn = _rotate(ctx, f"rr:{self.name}", self.users, ok)
            return user, f"turn {turn} -> {user}"

        return _among(ctx, self.kind, self.users, f"round robin {self.name!r} over {_shown_ids(self.users)}", pick)


def _weights(value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping) or not value:
        raise _bad("weights", f"must map user ids to positive whole weights, got {quote(value)}", "empty")
    if len(value) > MAX_USERS:
        raise _bad("weights", f"names more than {MAX_USERS} users", "too_many")
    out: dict[str, int] = {}
    for user, w in value.items():
        _user_id(user, "weights")
        if type(w) is not int or w <= 0:
            raise _bad(f"weights.{user}", f"must be a positive whole number, got {quote(w)}")
        out[user] = w
    if sum(out.values()) > MAX_WEIGHT_TOTAL:
        raise _bad("weights", f"add up to more than {MAX_WEIGHT_TOTAL}", "range")
    return out


def _smooth_cycle(weights: Mapping[str, int]) -> tuple[str, ...]:
    """One cycle of smooth weighted round robin (nginx's): each user appears ``weight`` times, spread out."""
    total = sum(weights.values())
    current = dict.fromkeys(weights, 0)
    out: list[str] = []
    for _ in range(total):
        for u, w in weights.items():
            current[u] += w
        best = max(current, key=lambda u: current[u])  # the first of the highest, in the given order
        current[best] -= total
        out.append(best)
    return tuple(out)


@attrs.frozen
class Weighted:
    """Smooth weighted round robin: over a cycle of ``sum(weights)`` turns each user gets ``weight`` of them,
    spread out (``{"u1": 2, "u2": 1}``: u1, u2, u1, ...); turns are kept in the store (``wrr:<name>``)."""

    name: str = attrs.field(converter=_wrr_name)
    weights: Mapping[str, int] = attrs.field(converter=_weights)
    cycle: tuple[str, ...] = attrs.field(init=False, repr=False, eq=False)
    kind = "weighted"

    @cycle.default
    def _cycle(self) -> tuple[str, ...]:
        return _smooth_cycle(self.weights)

    def user_ids(self) -> frozenset[str]:
        return frozenset(self.weights)

    def choose(self, ctx: _Context) -> Assignment:
        def pick(ok: list[str]) -> tuple[str, str]:
            user, turn = _rotate(ctx, f"wrr:{self.name}", self.cycle, ok)
            return user, f"turn {turn} ({(turn - 1) % len(self.cycle) + 1} of {len(self.cycle)}) -> {user}"

        shown = ", ".join(f"{u}: {w}" for u, w in list(self.weights.items())[:20])
        return _among(ctx, self.kind, list(self.weights), f"weighted round robin {self.name!r} over {{{shown}}}", pick)


_DONE = (TicketStatus.RESOLVED, TicketStatus.CLOSED)
#: What counts as open work per repository: (the field naming the person, the condition of an open item).
OPEN_ITEMS: Mapping[str, tuple[str, Mapping[str, Any]]] = {
    "tasks": ("assignee_id", {"done": False}),
    "tickets": ("assignee_id", {"status": {"in": [s.value for s in TicketStatus if s not in _DONE]}}),
    "opportunities": ("owner_id", {"closed_at": {"is_null": True}}),
}


def _kinds(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable):
        raise _bad("kinds", f"must name some of {', '.join(OPEN_ITEMS)}, got {quote(value)}")
    out = tuple(dict.fromkeys(value))
    for k in out:
        if k not in OPEN_ITEMS:
            raise _bad("kinds", f"{quote(k)} is not one of {', '.join(OPEN_ITEMS)}", "unknown")
    if not out:
        raise _bad("kinds", "names nothing to count", "empty")
    return out


def _tie_break(value: Any) -> str | None:
    return None if value is None else _name(value, "rotate", 29)  # ll:<name>


@attrs.frozen
class LeastLoaded:
    """The available user with the fewest open items: open tasks assigned (not done), open tickets assigned
    (not resolved or closed) and open opportunities owned, of ``kinds``; counted as the session's actor sees
    them (one grouped count per kind). Ties go to the first in ``users`` order, or, with ``rotate`` (a name),
    to a round robin among the tied (a counter ``ll:<name>``)."""

    users: tuple[str, ...] = attrs.field(converter=_users)
    kinds: tuple[str, ...] = attrs.field(default=tuple(OPEN_ITEMS), converter=_kinds)
    rotate: str | None = attrs.field(default=None, converter=_tie_break)
    kind = "least_loaded"

    def user_ids(self) -> frozenset[str]:
        return frozenset(self.users)

    def choose(self, ctx: _Context) -> Assignment:
        def pick(ok: list[str]) -> tuple[str, str]:
            load = self.load(ctx.session, ok)
            fewest = min(load.values())
            tied = [u for u in ok if load[u] == fewest]
            user, how = tied[0], ""
            if len(tied) > 1 and self.rotate is not None:
                turn = ctx.turn(f"ll:{self.rotate}")
                user = tied[(turn - 1) % len(tied)]
                how = f", tie among {_shown_ids(tied)} broken by turn {turn}"
            elif len(tied) > 1:
                how = f", tie among {_shown_ids(tied)} broken by list order"
            counts = ", ".join(f"{u}: {load[u]}" for u in ok[:20])
            return user, f"open {'+'.join(self.kinds)} {{{counts}}} -> {user}{how}"

        return _among(ctx, self.kind, self.users, f"least loaded of {_shown_ids(self.users)}", pick)

    def load(self, session: Any, users: Sequence[str]) -> dict[str, int]:
        """Open items per user (of ``users``), as ``session`` sees them: one grouped count per kind where the
        store counts by value (``GroupedCounts``), else one count per user and kind."""
        load = dict.fromkeys(users, 0)
        unit = session.unit
        tx = unit.transaction()
        for name in self.kinds:
            field, open_ = OPEN_ITEMS[name]
            repo = unit.repository(name)
            if isinstance(tx, GroupedCounts):
                where = unit.conditions(repo.kind, {**open_, field: {"in": list(users)}})
                for user, n in tx.count_by(repo.kind, where, field, len(users)).items():
                    load[str(user)] += n
            else:
                for u in users:
                    load[u] += repo.count({**open_, field: u})
        return load


def _field(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"(customer\.)?(custom\.)?[a-z_][a-z0-9_]{0,62}", value):
        raise _bad("field", f"must name a field of the record (or 'customer.<field>'), got {quote(value)}")
    return value


def _strategy(value: Any, field: str) -> Strategy:
    if not all(hasattr(value, a) for a in ("kind", "user_ids", "choose")):
        raise _bad(field, f"must be a strategy (RoundRobin, LeastLoaded, Weighted, ByField, BySkill), got {quote(value)}")
    return value  # type: ignore[no-any-return]


@attrs.frozen
class ByField:
    """A territory map: the value of ``field`` of the record (``country``, ``category``, ``custom.region``, or
    ``customer.<field>`` for a record that belongs to a customer) picks people -- a list of user ids, taken in
    a round robin of their own (``rr:<name>.<position in the map>``) -- or another strategy; ``default`` (a
    strategy) takes values the map does not name. A ``category`` path such as ``"Retail/Online"`` falls back
    to its parents (``"Retail"``)."""

    name: str = attrs.field(converter=_name)
    field: str = attrs.field(converter=_field)
    map: Mapping[Any, Strategy] = attrs.field()
    default: Strategy | None = attrs.field(default=None)
    kind = "by_field"

    @map.validator
    def _check_map(self, attribute: Any, value: Any) -> None:
        if not isinstance(value, Mapping) or not value:
            raise _bad("map", f"must map values to user ids or strategies, got {quote(value)}", "empty")
        if len(value) > MAX_USERS:
            raise _bad("map", f"holds more than {MAX_USERS} values", "too_many")
        out: dict[Any, Strategy] = {}
        for i, (k, v) in enumerate(value.items()):
            if isinstance(v, (list, tuple)):
                out[k] = RoundRobin(f"{self.name}.{i}", _users(v, f"map.{k}"))  # at most 24 + 4 characters
            else:
                out[k] = _strategy(v, f"map.{k}")
        object.__setattr__(self, "map", out)

    @default.validator
    def _check_default(self, attribute: Any, value: Any) -> None:
        if value is not None:
            _strategy(value, "default")

    def user_ids(self) -> frozenset[str]:
        out = frozenset().union(*(s.user_ids() for s in self.map.values()))
        return out | (self.default.user_ids() if self.default is not None else frozenset())

    def choose(self, ctx: _Context) -> Assignment:
        value = self._value(ctx)
        key = self._key(value)
        shown = f"{self.field} = {quote(value)}"
        if key is _MISSING:
            if self.default is None:
                return Assignment(None, self.kind, f"by field {self.name!r}: {shown} is not in the map and there is no default")
            chosen, via = self.default, "not in the map: default"
        else:
            chosen, via = self.map[key], f"maps {quote(key)} to"
        inner = chosen.choose(ctx)
        return Assignment(inner.user_id, self.kind, f"by field {self.name!r}: {shown} {via} {inner.reason}")

    def _value(self, ctx: _Context) -> Any:
        return _record_value(ctx, self.field)

    def _key(self, value: Any) -> Any:
        try:
            if value in self.map:
                return value
        except TypeError:  # an unhashable value (a list) is in no map
            return _MISSING
        if self.field.endswith("category") and isinstance(value, str):
            for parent in _parents(value):
                if parent in self.map:
                    return parent
        return _MISSING


_MISSING = object()


def _parents(path: str) -> list[str]:
    """The parents of a category path, nearest first: ``"A/B/C"`` -> ``["A/B", "A"]``."""
    parts = path.split("/")
    return ["/".join(parts[:n]) for n in range(len(parts) - 1, 0, -1)]


def _record_value(ctx: _Context, field: str) -> Any:
    """The value of ``field`` (``category``, ``custom.<key>``, ``customer.<field>``) of the record assigned."""
    item = ctx.item
    if item is None:
        raise _bad("item", f"assigning by field {field!r} needs the record (item=...)", "missing")
    path = field
    if path.startswith("customer."):
        customer_id = getattr(item, "customer_id", None)
        if customer_id is None:
            raise _bad("field", f"a {type(item).__name__} belongs to no customer: {path!r} names nothing", "unknown")
        item, path = ctx.session.customers.get(customer_id), path[len("customer.") :]
    if path.startswith("custom."):
        custom = getattr(item, "custom", None)
        if not isinstance(custom, Mapping):
            raise _bad("field", f"a {type(item).__name__} has no custom fields: {path!r} names nothing", "unknown")
        return custom.get(path[len("custom.") :])
    if not attrs.has(type(item)) or path not in attrs.fields_dict(type(item)):
        raise _bad("field", f"a {type(item).__name__} has no field {path!r}", "unknown")
    value = getattr(item, path)
    return getattr(value, "value", value)  # an enum (a ticket's priority) by its value


def _skills(value: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, Mapping) or not value:
        raise _bad("skills", f"must map category paths to user ids, got {quote(value)}", "empty")
    if len(value) > MAX_USERS:
        raise _bad("skills", f"holds more than {MAX_USERS} categories", "too_many")
    out: dict[str, tuple[str, ...]] = {}
    for path, users in value.items():
        if not isinstance(path, str):
            raise _bad("skills", f"must map category paths to user ids, got the key {quote(path)}")
        key = check_category(path, f"skills.{path}")  # a ValidationError naming skills.<path>
        if key in out:
            raise _bad(f"skills.{path}", f"names the category {key!r} twice", "duplicate")
        out[key] = _users(users, f"skills.{path}")
    return out


def _opt_users(value: Any) -> tuple[str, ...] | None:
    return None if value is None else _users(value, "default")


@attrs.frozen
class BySkill:
    """Skill-based routing over a category tree: ``skills`` maps category paths (``"Hardware"``,
    ``"Hardware/Printer"``) to the users who handle them. For a record whose ``field`` (``category`` by
    default; ``customer.category`` for a ticket routed by its customer's category) is ``"Hardware/Printer"``,
    the users of ``"Hardware/Printer"`` are asked first, then those of ``"Hardware"``, then ``default`` (user
    ids, or None: nobody); at each step the available user with the fewest open items is chosen
    (:class:`LeastLoaded` with ``kinds`` and ``rotate``), and a step where nobody is available (on leave, off
    shift) passes to the next. A record without a category goes to ``default``."""

    skills: Mapping[str, tuple[str, ...]] = attrs.field(converter=_skills)
    default: tuple[str, ...] | None = attrs.field(default=None, converter=_opt_users)
    field: str = attrs.field(default="category", converter=_field)
    kinds: tuple[str, ...] = attrs.field(default=tuple(OPEN_ITEMS), converter=_kinds)
    rotate: str | None = attrs.field(default=None, converter=_tie_break)
    kind = "by_skill"

    def user_ids(self) -> frozenset[str]:
        out = frozenset().union(*self.skills.values())
        return out | frozenset(self.default or ())

    def steps(self, category: str | None) -> list[tuple[str, tuple[str, ...]]]:
        """Who is asked, in order, for a record of ``category``: (the skill or ``"default"``, its users)."""
        out = [(p, self.skills[p]) for p in ([category, *_parents(category)] if category else []) if p in self.skills]
        return out + ([("default", self.default)] if self.default is not None else [])

    def choose(self, ctx: _Context) -> Assignment:
        value = _record_value(ctx, self.field)
        if value is not None and not isinstance(value, str):
            raise _bad("field", f"{self.field} must be a category path, got {quote(value)}", "type")
        head = f"by skill: {self.field} = {quote(value)}"
        steps = self.steps(value)
        if not steps:
            return Assignment(None, self.kind, f"{head}: nobody has the skill and there is no default")
        tried: set[str] = set()
        said: list[str] = []
        for skill, users in steps:
            name = repr(skill) if skill != "default" else "default"
            fresh = [u for u in users if u not in tried]  # who was away at a narrower step is away here too
            if not fresh:
                said.append(f"{name}: nobody else")
                continue
            tried.update(fresh)
            got = LeastLoaded(fresh, self.kinds, self.rotate).choose(ctx)
            said.append(f"{name} -> {got.reason}")
            if got.user_id is not None:
                return Assignment(got.user_id, self.kind, f"{head}: " + "; then ".join(said))
        return Assignment(None, self.kind, f"{head}: nobody available; " + "; then ".join(said))


# ---------------------------------------------------------------------------------------------------
# running a strategy in a session
# ---------------------------------------------------------------------------------------------------


def _moment(at: Any) -> dt.datetime:
    if at is None:
        return dt.datetime.now(dt.UTC)
    if not isinstance(at, dt.datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise _bad("at", f"must be a timezone-aware datetime, got {quote(at)}")
    return at


def _check_users(session: Any, ids: frozenset[str]) -> None:
    """ValidationError naming the user ids the strategy names that are not stored, where the session can tell:
    for an actor that reads every user (for another, a user outside its scope would look unknown)."""
    try:
        if session.unit.conditions(User, None):
            return
    except PermissionDenied:
        return
    wanted = sorted(ids)
    found: set[str] = set()
    for start in range(0, len(wanted), MAX_USERS):
        chunk = wanted[start : start + MAX_USERS]
        found |= {str(u.id) for u in session.users.find({"id": {"in": chunk}})}
    unknown = [u for u in wanted if u not in found]
    if unknown:
        raise ValidationError(
            [FieldError("users", "unknown", f"no user with id {quote(u)}") for u in unknown[:10]]
            + ([FieldError("users", "unknown", f"... {len(unknown)} unknown in all")] if len(unknown) > 10 else [])
        )


def assign(
    session: Any,
    strategy: Strategy,
    item: Entity | None = None,
    *,
    at: dt.datetime | None = None,
    availability: Availability | None = None,
) -> Assignment:
    """Run ``strategy`` in ``session`` for the record ``item`` at the moment ``at`` (now by default), skipping
    who ``availability`` says is away; the :class:`Assignment` says who (None: nobody available) and why.

    The user ids the strategy names must be stored users (checked when the session's actor reads every
    user). Turns taken are kept when the session commits."""
    _session(session)
    _strategy(strategy, "strategy")
    if item is not None and not isinstance(item, Entity):
        raise _bad("item", f"must be a record (Customer, Ticket, ...), got {quote(item)}")
    if availability is not None and not isinstance(availability, Availability):
        raise _bad("availability", f"must be an Availability, got {quote(availability)}")
    moment = _moment(at)
    _check_users(session, strategy.user_ids())
    return strategy.choose(_Context(session, item, moment, availability or ALWAYS))


#: The fields that name the person responsible for a record, by repository.
PERSON_FIELDS: Mapping[str, str] = {
    "customers": "owner_id",
    "opportunities": "owner_id",
    "tickets": "assignee_id",
    "tasks": "assignee_id",
}


def assign_to(
    session: Any,
    repository: str,
    id: str,
    strategy: Strategy,
    *,
    field: str | None = None,
    at: dt.datetime | None = None,
    availability: Availability | None = None,
) -> Assignment:
    """Choose with :func:`assign` for the record ``id`` of ``repository`` and write the chosen user into its
    ``field`` (``owner_id`` or ``assignee_id``, by repository); the audit trail gets an ``assign`` entry with
    the user and the reason. Nobody available: the record is left as it is and the Assignment says why."""
    _session(session)
    if not isinstance(repository, str) or repository not in PERSON_FIELDS:
        raise _bad("repository", f"must be one of {', '.join(PERSON_FIELDS)}, got {quote(repository)}", "unknown")
    wanted = PERSON_FIELDS[repository] if field is None else field
    if wanted not in ("owner_id", "assignee_id") or wanted != PERSON_FIELDS[repository]:
        raise _bad("field", f"{repository} name their person in {PERSON_FIELDS[repository]!r}, not {quote(field)}", "unknown")
    repo = session.unit.repository(repository)
    record = repo.get(id)
    chosen = assign(session, strategy, record, at=at, availability=availability)
    if chosen.user_id is None:
        return chosen
    if getattr(record, wanted) != chosen.user_id:
        setattr(record, wanted, chosen.user_id)
        repo.update(record)
    info = {"field": wanted, "user_id": chosen.user_id, "strategy": chosen.strategy, "reason": chosen.reason}
    session.unit.event(repo.kind, "assign", str(record.id), info)
    return chosen
