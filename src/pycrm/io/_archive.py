"""Archiving: retention rules move old records out of the live tables, and back on request.

A run applies rules such as "closed tickets older than 365 days" (:func:`tickets_closed`), "customers
inactive for 730 days" (:func:`customers_inactive`), "done tasks older than 90 days" (:func:`tasks_done`) or
any repository with a ``where`` and an age (:func:`older_than`). Each moved entity becomes a record in the
stream ``archive_<repository>`` (key: its id; data: its codec data plus an ``_archive`` note saying when,
by which rule, and with which parent or children it moved) and leaves its table, so it is gone from
``find``, ``count``, ``iter`` and every report. A customer moves together with everything that points at
it (contacts, opportunities, tickets, interactions, orders, and tasks whose ``related_id`` is any moved
record). The whole run is atomic; ``dry_run=True`` lists what would move and writes nothing.

:func:`unarchive` brings entities back exactly (same id, version and timestamps), a customer with the
records archived together with it; :func:`archived` streams archived entities, filtered with the same
``where`` as ``find``, so they stay exportable.

>>> import datetime as dt, pycrm
>>> crm = pycrm.open("memory://")
>>> long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
>>> with crm.session() as s:
...     c = s.customers.add(pycrm.Customer("Acme", created_at=long_ago))
...     t = s.tickets.add(pycrm.Ticket(c.id, "Broken", created_at=long_ago))
>>> with crm.session() as s:
...     t.move_to("open", at=long_ago); t.move_to("resolved", at=long_ago); t.move_to("closed", at=long_ago)
...     _ = s.tickets.update(t)
>>> archive(crm, [tickets_closed(365)]).counts
{'tickets': 1}
>>> with crm.session() as s:
...     s.tickets.count(), [x.subject for x in archived(s, "tickets")]
(0, ['Broken'])
>>> unarchive(crm, "tickets", [t.id]).counts
{'tickets': 1}
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import attrs

from pycrm.domain import ENTITIES, Customer, Entity, Task, Ticket, utcnow
from pycrm.domain._checks import check_iterable, is_id
from pycrm.domain._codec import from_data, to_data
from pycrm.errors import FieldError, NotFound, ValidationError, quote
from pycrm.io._entry import check_flag, check_session, check_target
from pycrm.storage._rotate import archive_stream
from pycrm.storage._where import FIELD_KINDS, Condition, parse_where
from pycrm.storage.evaluate import Related, matches
from pycrm.storage.port import Transaction

if TYPE_CHECKING:
    from pycrm._crm import CRM
    from pycrm.storage import Session

__all__ = [
    "ArchiveResult",
    "Rule",
    "archive",
    "archived",
    "customers_inactive",
    "older_than",
    "parse_rule",
    "stream_name",
    "tasks_done",
    "tickets_closed",
    "unarchive",
]

#: Ids per ``in`` condition when looking up children.
CHUNK = 500
#: The order entities are put back in (parents first); deleted in the reverse order.
ORDER = (
    "users",
    "products",
    "customers",
    "contacts",
    "opportunities",
    "tickets",
    "interactions",
    "orders",
    "surveys",
    "campaigns",
    "campaign_members",
    "campaign_responses",
    "activities",
    "attachments",
    "tasks",
)
NOTE = "_archive"


def stream_name(repository: str) -> str:
    """The records stream holding archived ``repository`` entities: ``archive_customers``, ... (named where
    key rotation, which rewrites them, can see it too)."""
    return archive_stream(repository)


def _repository(name: Any, field: str = "repository") -> type[Entity]:
    kind = ENTITIES.get(name) if isinstance(name, str) else None
    if kind is None:
        raise ValidationError([FieldError(field, "unknown_repository", f"{quote(name)} is not one of {', '.join(ENTITIES)}")])
    return kind


#: Most days a rule reaches back: the span of the calendar (years 1 to 9999).
MAX_DAYS = 3_652_059


def _days(days: Any, field: str = "days") -> int:
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= MAX_DAYS:
        raise ValidationError(
            [FieldError(field, "invalid", f"expected a whole number of days from 0 to {MAX_DAYS:,}, got {quote(days)}")]
        )
    return days


#: The kinds of rule and the repository each archives from (``older`` takes any).
_KINDS = {"tickets-closed": "tickets", "customers-inactive": "customers", "tasks-done": "tasks", "older": None}


# ---------------------------------------------------------------------------------------------------
# rules
# ---------------------------------------------------------------------------------------------------


@attrs.frozen
class Rule:
    """A retention rule: which entities of ``repository`` are old enough to archive.

    ``kind`` is ``tickets-closed``, ``customers-inactive``, ``tasks-done`` or ``older`` (any repository:
    ``where`` matches and ``field`` is more than ``days`` days before the run's time).
    """

    kind: str
    repository: str
    days: int
    where: Mapping[str, Any] | None = None
    field: str = "updated_at"

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.kind, str) or self.kind not in _KINDS:
            raise ValidationError([FieldError("kind", "invalid_choice", f"{quote(self.kind)} is not one of {', '.join(_KINDS)}")])
        kind = _repository(self.repository)
        fixed = _KINDS[self.kind]
        if fixed is not None and self.repository != fixed:
            raise ValidationError(
                [FieldError("repository", "invalid", f"a {self.kind} rule archives {fixed}, not {self.repository}")]
            )
        _days(self.days)
        if not isinstance(self.field, str) or FIELD_KINDS[kind].get(self.field) != "datetime":
            raise ValidationError([FieldError("field", "invalid", f"{kind.__name__} has no date-time field {quote(self.field)}")])
        parse_where(kind, self.where)  # check it now, not in the middle of a run

    @property
    def name(self) -> str:
        if self.kind != "older":
            return f"{self.kind}:{self.days}"
        field = "" if self.field == "updated_at" else f".{self.field}"
        return f"{self.repository}{field}:{self.days}"

    def select(
        self,
        tx: Transaction,
        now: dt.datetime,
        region: str | None = None,
        conditions: Callable[[type[Entity], Mapping[str, Any] | None], list[Condition]] | None = None,
    ) -> Iterator[Entity]:
        """The live entities this rule archives at ``now``. ``conditions(kind, where)``: how the rule's ``where``
        becomes conditions (a session's, which matches encrypted fields through their blind index); by default
        plain parsing."""
        kind = ENTITIES[self.repository]
        cutoff = now - dt.timedelta(days=self.days)
        if self.kind == "tickets-closed":
            yield from tx.iter(Ticket, parse_where(Ticket, {"status": "closed", "closed_at": {"lt": cutoff}}), 1000)
            late = {"status": "closed", "closed_at": None, "updated_at": {"lt": cutoff}}  # closed without a date
            yield from tx.iter(Ticket, parse_where(Ticket, late), 1000)
        elif self.kind == "tasks-done":
            yield from tx.iter(Task, parse_where(Task, {"done": True, "updated_at": {"lt": cutoff}}), 1000)
        elif self.kind == "customers-inactive":
            yield from _inactive_customers(tx, cutoff)
        else:
            given = conditions(kind, self.where) if conditions is not None else parse_where(kind, self.where, region=region)
            conds = given + parse_where(kind, {self.field: {"lt": cutoff}})
            yield from tx.iter(kind, conds, 1000)


def tickets_closed(days: int) -> Rule:
    """Closed tickets whose ``closed_at`` (or, without one, ``updated_at``) is more than ``days`` days ago."""
    return Rule("tickets-closed", "tickets", _days(days))


def customers_inactive(days: int) -> Rule:
    """Customers with no activity for ``days`` days: the customer record, its orders and interactions
    (by ``occurred_at``), its opportunities and tickets (by ``updated_at``) all older than the cutoff.
    A customer moves with every record that points at it."""
    return Rule("customers-inactive", "customers", _days(days))


def tasks_done(days: int) -> Rule:
    """Done tasks last changed more than ``days`` days ago."""
    return Rule("tasks-done", "tasks", _days(days))


def older_than(repository: str, days: int, *, where: Mapping[str, Any] | None = None, field: str = "updated_at") -> Rule:
    """Entities of ``repository`` matching ``where`` whose date-time ``field`` is more than ``days`` days ago."""
    return Rule("older", repository, days, where, field)


_NAMED = {"tickets-closed": tickets_closed, "customers-inactive": customers_inactive, "tasks-done": tasks_done}


def parse_rule(text: str) -> Rule:
    """A rule from its command-line form: ``tickets-closed:365``, ``customers-inactive:730``,
    ``tasks-done:90``, ``REPOSITORY:DAYS`` (by ``updated_at``) or ``REPOSITORY.FIELD:DAYS``.

    >>> parse_rule("interactions.occurred_at:730").name
    'interactions.occurred_at:730'
    """
    if not isinstance(text, str):
        raise ValidationError(
            [FieldError("rule", "type", f"expected text such as tickets-closed:365, got {type(text).__name__}")]
        )
    name, sep, days_text = text.strip().rpartition(":")
    if not sep or not days_text.isascii() or not days_text.isdigit() or len(days_text) > 9:
        raise ValidationError([FieldError("rule", "invalid", f"{quote(text)} is not NAME:DAYS (e.g. tickets-closed:365)")])
    days = int(days_text)
    if name in _NAMED:
        return _NAMED[name](days)
    repository, _, field = name.partition(".")
    if repository not in ENTITIES:
        known = ", ".join([*_NAMED, *(f"{r}[.FIELD]" for r in ENTITIES)])
        raise ValidationError([FieldError("rule", "invalid", f"unknown rule {quote(name)} (use one of {known})")])
    return older_than(repository, days, field=field or "updated_at")


def _inactive_customers(tx: Transaction, cutoff: dt.datetime) -> Iterator[Entity]:
    active: set[str] = set()
    activity = (
        ("orders", "occurred_at"),
        ("interactions", "occurred_at"),
        ("opportunities", "updated_at"),
        ("tickets", "updated_at"),
    )
    for kind, field in activity:
        k = ENTITIES[kind]
        active.update(cast(Any, e).customer_id for e in tx.iter(k, parse_where(k, {field: {"gte": cutoff}}), 1000))
    for c in tx.iter(Customer, parse_where(Customer, {"updated_at": {"lt": cutoff}}), 1000):
        if c.id not in active:
            yield c


# ---------------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------------


@attrs.frozen
class ArchiveResult:
    """What a run moved (or, with ``dry_run``, would move): ids by repository."""

    moved: dict[str, tuple[str, ...]]
    dry_run: bool = False
    direction: str = "archive"

    @property
    def counts(self) -> dict[str, int]:
        return {r: len(ids) for r, ids in self.moved.items() if ids}

    @property
    def total(self) -> int:
        return sum(len(ids) for ids in self.moved.values())

    def __str__(self) -> str:
        verb = ("would " if self.dry_run else "") + ("archive" if self.direction == "archive" else "unarchive")
        verb = verb if self.dry_run else verb + "d"
        if not self.total:
            return f"{verb} nothing"
        return f"{verb} " + ", ".join(f"{n} {r}" for r, n in self.counts.items())


# ---------------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _session(target: CRM | Session) -> Iterator[Session]:
    from pycrm.storage import Session

    if isinstance(target, Session):
        target.unit.check_open()
        yield target
        return
    with target.session() as s:
        yield s


def _pointing_at(tx: Transaction, repository: str, ids: Sequence[str]) -> Iterator[tuple[str, Entity]]:
    """(repository, entity) of the live records that point at ``ids`` of ``repository`` (tasks excluded)."""
    from pycrm.storage._repository import REFERENCES

    parent = ENTITIES[repository]
    for (child, field), kind in REFERENCES.items():
        if kind is not parent:
            continue
        for start in range(0, len(ids), CHUNK):
            conds = parse_where(child, {field: {"in": list(ids[start : start + CHUNK])}})
            for e in tx.iter(child, conds, 1000):
                yield child.entity_name(), e


def _add(
    plan: dict[tuple[str, str], tuple[Entity, str, tuple[str, str] | None]],
    children: dict[tuple[str, str], list[tuple[str, str]]],
    key: tuple[str, str],
    e: Entity,
    rule: str,
    parent: tuple[str, str],
) -> None:
    """Plan to move ``e`` with ``parent`` (unless it already moves on its own)."""
    if key not in plan:
        plan[key] = (e, rule, parent)
        children.setdefault(parent, []).append(key)


def _related_tasks(tx: Transaction, ids: Sequence[str]) -> Iterator[Entity]:
    for start in range(0, len(ids), CHUNK):
        yield from tx.iter(Task, parse_where(Task, {"related_id": {"in": list(ids[start : start + CHUNK])}}), 1000)


def archive(
    target: CRM | Session,
    rules: Iterable[Rule],
    *,
    as_of: dt.datetime | None = None,
    dry_run: bool = False,
) -> ArchiveResult:
    """Move what ``rules`` select (at ``as_of``, default now) into the archive; all or nothing.

    ``target`` is a CRM (a session is opened and committed) or an open Session (the caller commits).
    With ``dry_run=True`` nothing is written and the result lists what would move.
    """
    check_target(target)
    check_flag("dry_run", dry_run)
    rules = list(check_iterable("rules", rules, "a list of Rule objects"))
    for i, r in enumerate(rules):
        if not isinstance(r, Rule):
            raise ValidationError([FieldError(f"rules[{i}]", "type", f"expected a Rule, got {type(r).__name__}")])
    now = utcnow() if as_of is None else as_of
    if not isinstance(now, dt.datetime) or now.utcoffset() is None:
        raise ValidationError([FieldError("as_of", "type", f"expected a date-time with a time zone, got {quote(as_of)}")])
    for i, r in enumerate(rules):
        try:  # every cutoff must be a date-time: not before year 1
            now - dt.timedelta(days=r.days)
        except OverflowError:
            problem = f"{r.days} days before {now.date()} is before year 1"
            raise ValidationError([FieldError(f"rules[{i}]", "out_of_range", f"{r.name}: {problem}")]) from None
    with _session(target) as s:
        for r in rules:  # a rule's filter is a filter: not on a field the actor sees masked (a dry run would
            if r.where:  # otherwise tell a right guess of it from a wrong one), as in ``find``
                s.unit.conditions(ENTITIES[r.repository], r.where)
        tx = s.unit.stored("archiving moves the rows as they are stored")
        live = s.unit.transaction()
        # (repository, id) -> (entity, rule name, parent key or None); insertion order = discovery order
        plan: dict[tuple[str, str], tuple[Entity, str, tuple[str, str] | None]] = {}
        children: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for rule in rules:
            chosen = rule.select(tx, now, s.default_region, s.unit.conditions)
            roots = [e for e in chosen if (rule.repository, str(e.id)) not in plan]
            for e in roots:
                plan[(rule.repository, str(e.id))] = (e, rule.name, None)
            mine = [(rule.repository, str(e.id)) for e in roots]
            if rule.repository == "customers":
                for repo, e in _pointing_at(tx, "customers", [id for _, id in mine]):
                    _add(plan, children, (repo, str(e.id)), e, rule.name, ("customers", cast(Any, e).customer_id))
                    mine.append((repo, str(e.id)))
            index = dict((id, (repo, id)) for repo, id in mine)
            for task in _related_tasks(tx, list(index)):
                owner = index[cast(Any, task).related_id]
                _add(plan, children, ("tasks", str(task.id)), task, rule.name, plan[owner][2] or owner)
        moved: dict[str, list[str]] = {r: [] for r in ORDER}
        for repo, id in plan:
            moved.setdefault(repo, []).append(id)
        result = ArchiveResult({r: tuple(ids) for r, ids in moved.items() if ids}, dry_run=dry_run)
        if dry_run or not plan:
            return result
        at = now.isoformat()
        with s.unit.atomic():
            for repo in reversed(ORDER):
                kind = ENTITIES[repo]
                for id in moved.get(repo, ()):
                    e, rule_name, parent = plan[(repo, id)]
                    note: dict[str, Any] = {"at": at, "rule": rule_name}
                    if parent is not None:
                        note["parent"] = list(parent)
                    if (repo, id) in children:
                        note["children"] = [list(k) for k in children[(repo, id)]]
                    _take_out(s, live, kind, e)
                    live.record_put(stream_name(repo), id, {**to_data(e), NOTE: note})
                    s.unit.journal(kind, "archive", e, None)
    return result


def _take_out(s: Session, tx: Transaction, kind: type[Entity], e: Entity) -> None:
    from pycrm.errors import ConcurrencyError

    # the no-op update checks (and on SQL locks) the version read, so a record changed meanwhile is not lost
    if not tx.update(kind, e, e.version) or not tx.delete(kind, str(e.id)):
        raise ConcurrencyError(f"{kind.__name__} {e.id!r} changed in another session during archiving; run again")


def unarchive(target: CRM | Session, repository: str, ids: Iterable[str]) -> ArchiveResult:
    """Bring archived entities of ``repository`` back exactly as they were; a customer comes back with
    the records archived together with it. All or nothing.

    Raises NotFound for an id that is not archived, ValidationError when an entity's parent is itself
    archived (unarchive the parent) or an entity with the same id is live again.
    """
    check_target(target)
    kind = _repository(repository)
    wanted = [ids] if isinstance(ids, str) else list(check_iterable("ids", ids, "an id or a list of ids"))
    for i, id in enumerate(wanted):
        if not is_id(id):
            raise ValidationError([FieldError(f"ids[{i}]", "invalid_id", f"not an id: {quote(id, 70)}")])
    with _session(target) as s:
        tx = s.unit.stored("unarchiving brings the records back as they were stored")
        live = s.unit.transaction()
        back: dict[tuple[str, str], Entity] = {}
        errors: list[FieldError] = []
        for i, id in enumerate(dict.fromkeys(wanted)):
            data = tx.record_get(stream_name(repository), id)
            if data is None:
                raise NotFound(f"no archived {kind.__name__} with id {id!r}")
            note = data.get(NOTE) or {}
            parent = note.get("parent")
            if parent and tx.record_get(stream_name(parent[0]), parent[1]) is not None:
                errors.append(
                    FieldError(
                        f"ids[{i}]",
                        "parent_archived",
                        f"{kind.__name__} {id!r} was archived with {parent[0]} {parent[1]!r}: unarchive that instead",
                    )
                )
                continue
            back[(repository, id)] = from_data(kind, data)
            for repo, cid in note.get("children", ()):
                child = tx.record_get(stream_name(repo), cid)
                if child is not None:
                    back[(repo, cid)] = from_data(ENTITIES[repo], child)
        if errors:
            raise ValidationError(errors)
        moved: dict[str, list[str]] = {}
        with s.unit.atomic():
            for repo in ORDER:
                items = [e for (r, _), e in back.items() if r == repo]
                if not items:
                    continue
                k = ENTITIES[repo]
                taken = live.existing_ids(k, [str(e.id) for e in items])
                if taken:
                    raise ValidationError(
                        [FieldError("ids", "duplicate", f"a live {k.__name__} with id {t!r} exists") for t in sorted(taken)]
                    )
                _check_parents(live, k, items)
                live.insert(k, items)
                for e in items:
                    live.record_delete(stream_name(repo), str(e.id))
                    s.unit.journal(k, "unarchive", None, e)
                moved[repo] = [str(e.id) for e in items]
    return ArchiveResult({r: tuple(v) for r, v in moved.items()}, direction="unarchive")


def _check_parents(tx: Transaction, kind: type[Entity], items: list[Entity]) -> None:
    from pycrm.storage._repository import REFERENCES

    for (child, field), parent in REFERENCES.items():
        if child is not kind:
            continue
        wanted = {getattr(e, field) for e in items} - {None}  # an optional reference may point at nothing
        missing = wanted - tx.existing_ids(parent, wanted)
        if missing:
            raise ValidationError(
                [
                    FieldError(
                        field,
                        "not_found",
                        f"{kind.__name__} {e.id!r} points at {parent.__name__} {getattr(e, field)!r}, which is not live",
                    )
                    for e in items
                    if getattr(e, field) in missing
                ]
            )


def _live_or_archived(tx: Transaction) -> Related:
    """What a scope's subquery follows from an archived record: its live or archived parent."""

    def related(kind: type[Entity], id: str) -> Entity | None:
        found = tx.get(kind, id)
        if found is not None:
            return found
        data = tx.record_get(stream_name(kind.entity_name()), id)
        return None if data is None else from_data(kind, data)

    return related


def archived(session: Session, repository: str, where: Mapping[str, Any] | None = None) -> Iterator[Any]:
    """Archived entities of ``repository`` (by id) matching ``where``, as the session's actor may see them.

    ``where`` has the same meaning as in ``find``; the actor's scope applies as it does to live records.
    """
    check_session(session)
    kind = _repository(repository)
    session.unit.check_open()
    conds: list[Condition] = session.unit.conditions(kind, where, "read")
    tx = session.unit.stored("archived() matches the records as stored (blind indexes) and presents each one")
    related = _live_or_archived(tx)
    for _key, data in tx.record_list(stream_name(repository)):
        e = from_data(kind, data)
        if all(matches(e, c, related) for c in conds):
            yield session.unit.present_stored(kind, e)
