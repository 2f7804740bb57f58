"""Time-based triggers: ``crm.run_due(now=..., rules=[...])`` turns time rules into events in the outbox.

A time rule finds the records something is due for -- a task due soon or overdue, a customer dormant, a deal
stale, an anniversary of a date -- with **one query in the database** (the port's
:class:`~pycrm.storage.port.DueQueries`; a store without it streams its records through the same checks in
Python). Each record found gets one event, written to the outbox with ``outbox_add(..., unique=True)``
under a key made of the rule's name, the record's id and the **period** of the firing:

===========================  ===========================================  ===========================
rule                         event                                        period (fires once per ...)
===========================  ===========================================  ===========================
:class:`TaskDueSoon`         :class:`~pycrm.automation.TaskDue`           the task's due time
:class:`OverdueTasks`        :class:`~pycrm.automation.TaskOverdue`       the task's due time
:class:`DormantCustomers`    :class:`~pycrm.automation.CustomerDormant`   the last activity ("never")
:class:`StaleOpportunities`  :class:`~pycrm.automation.OpportunityStale`  the last stage change
:class:`Anniversaries`       :class:`~pycrm.automation.DateAnniversary`   the year
===========================  ===========================================  ===========================

so however often ``run_due`` runs -- every minute from cron, in two processes at once -- a record fires once
per period: a task moved to another due time fires again, a dormant customer who buys and then goes quiet
again fires again. ``crm.dispatch()`` then delivers the events to the handlers (``crm.on(CustomerDormant)``).

``run_due`` is a function for the host's scheduler (cron, APScheduler, Celery beat), not a daemon: it runs
as the system actor, one transaction per rule.

New kinds of rules (the service desk's SLA at-risk and breach clocks) subclass :class:`TimeRule`: a
``kind`` the adapters' ``due`` answers (or answers None for, and :func:`pycrm.storage._due.due_rows`
computes), its parameters, and the event and period of each row found.
"""

from __future__ import annotations

import abc
import datetime as dt
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

import attrs

from pycrm.domain import ENTITIES, utcnow
from pycrm.domain._checks import check_count, check_iterable
from pycrm.domain._events import CustomerDormant, DateAnniversary, Event, OpportunityStale, TaskDue, TaskOverdue
from pycrm.errors import ConcurrencyError, CRMError, FieldError, ValidationError, quote
from pycrm.storage._due import anniversary_of, closed_stages, due_rows
from pycrm.storage._where import FIELD_KINDS
from pycrm.storage.port import DueQueries, Outbox, Store

__all__ = [
    "Anniversaries",
    "DormantCustomers",
    "DueResult",
    "OverdueTasks",
    "RuleCount",
    "StaleOpportunities",
    "TaskDueSoon",
    "TimeRule",
    "run_due",
]

_NAME = re.compile(r"[a-z][a-z0-9_]*([.:-][a-z0-9_]+)*")
#: Events written per ``outbox_add`` call.
CHUNK = 1000
#: The longest window / age a rule takes, in days (about a hundred years).
MAX_DAYS = 36_500


def _name(inst: Any, a: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or len(value) > 64 or not _NAME.fullmatch(value):
        raise ValidationError(
            [FieldError("name", "invalid_name", f"{quote(value, 70)} is not a rule name (lower case, digits, . _ : -)")]
        )


def _days(inst: Any, a: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_DAYS:
        raise ValidationError(
            [FieldError(a.name, "range", f"must be a whole number of days from 1 to {MAX_DAYS}, got {value!r}")]
        )


def _hours(inst: Any, a: attrs.Attribute[Any], value: Any) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not 0 < value <= MAX_DAYS * 24:
        raise ValidationError(
            [FieldError(a.name, "range", f"must be more than 0 and at most {MAX_DAYS * 24} hours, got {value!r}")]
        )


def firing_key(rule: str, record_id: str, period: str) -> str:
    """The idempotency key of a firing: the same for the same rule, record and period, in any process, and the
    one an adapter firing a rule in the database writes (``rule|id|period``, at most 200 characters)."""
    return f"{rule}|{record_id}|{period}"


def _iso(value: dt.datetime | None) -> str:
    return "never" if value is None else value.astimezone(dt.UTC).isoformat(timespec="microseconds")


@attrs.frozen(kw_only=True)
class TimeRule(abc.ABC):
    """A time rule: what to look for (``kind`` and :meth:`params`, answered by the store's ``due`` query) and
    the event and period of each record found. ``name`` (lower case, digits, ``. _ : -``) identifies the rule
    in the firing keys: keep it stable, or its records fire again."""

    #: The query kind (storage/_due.py).
    kind: ClassVar[str] = ""

    name: str = attrs.field(default=None, validator=_name)

    def __attrs_post_init__(self) -> None:
        if self.name is None:
            object.__setattr__(self, "name", self.default_name())

    @abc.abstractmethod
    def default_name(self) -> str:
        """The name the rule gets when none is given (its kind and settings)."""

    def params(self) -> dict[str, Any]:
        """The keyword arguments of the store's ``due(kind, now, ...)``."""
        return {}

    def period(self, value: Any, now: dt.datetime) -> str | None:
        """The period a row's ``value`` (what the query gives with the id) fires in; None to skip the row."""
        return _iso(value)

    @abc.abstractmethod
    def event(self, record_id: str, value: Any, key: str, now: dt.datetime) -> Event:
        """The event of a row found at ``now``, under the firing ``key``."""

    def row(self, record_id: str, value: Any, key: str, now: dt.datetime) -> dict[str, Any]:
        """The outbox row of :meth:`event` (a rule that may find very many records makes it directly)."""
        return self.event(record_id, value, key, now).to_row()


@attrs.frozen(kw_only=True)
class TaskDueSoon(TimeRule):
    """A :class:`TaskDue` reminder for each task not done that is due within ``within_hours`` from now
    (``now <= due_at <= now + within_hours``); once per task and due time."""

    kind: ClassVar[str] = "task_due"
    within_hours: float = attrs.field(validator=_hours)

    def default_name(self) -> str:
        return f"task_due_soon:{self.within_hours:g}h"

    def params(self) -> dict[str, Any]:
        return {"within": dt.timedelta(hours=self.within_hours)}

    def event(self, record_id: str, value: Any, key: str, now: dt.datetime) -> Event:
        return TaskDue(entity_id=record_id, key=key, at=now, due_at=value)


@attrs.frozen(kw_only=True)
class OverdueTasks(TimeRule):
    """A :class:`TaskOverdue` event for each task not done whose due time has passed (``due_at < now``);
    once per task and due time."""

    kind: ClassVar[str] = "task_overdue"

    def default_name(self) -> str:
        return "task_overdue"

    def event(self, record_id: str, value: Any, key: str, now: dt.datetime) -> Event:
        return TaskOverdue(entity_id=record_id, key=key, at=now, due_at=value)


@attrs.frozen(kw_only=True)
class DormantCustomers(TimeRule):
    """A :class:`CustomerDormant` event for each customer with no order and no interaction for ``days`` days:
    the latest of both is at or before ``now - days``. A customer with neither counts once it was created at
    least ``days`` ago (``last_activity`` None). Once per dormancy spell: an order or interaction later, the
    customer can go dormant -- and fire -- again."""

    kind: ClassVar[str] = "dormant"
    days: int = attrs.field(validator=_days)

    def default_name(self) -> str:
        return f"dormant_customers:{self.days}d"

    def params(self) -> dict[str, Any]:
        return {"days": self.days}

    def event(self, record_id: str, value: Any, key: str, now: dt.datetime) -> Event:
        return CustomerDormant(entity_id=record_id, key=key, at=now, days=self.days, last_activity=value)

    def row(self, record_id: str, value: Any, key: str, now: dt.datetime) -> dict[str, Any]:
        # what event(...).to_row() gives (a test holds them equal), without building and checking an event
        # per customer: the id comes from the store, the rest from this rule
        last = None if value is None else value.isoformat()
        data = {"days": self.days, "last_activity": last}
        return {
            "key": key,
            "event": "CustomerDormant",
            "entity": "customers",
            "entity_id": record_id,
            "at": now,
            "actor_id": None,
            "data": data,
        }


@attrs.frozen(kw_only=True)
class StaleOpportunities(TimeRule):
    """An :class:`OpportunityStale` event for each open deal (not in a won or lost stage) whose last stage
    change -- its creation if it never moved -- is at or before ``now - days``; once per deal and stage
    change."""

    kind: ClassVar[str] = "stale"
    days: int = attrs.field(validator=_days)

    def default_name(self) -> str:
        return f"stale_opportunities:{self.days}d"

    def params(self) -> dict[str, Any]:
        return {"days": self.days, "closed": closed_stages()}

    def event(self, record_id: str, value: Any, key: str, now: dt.datetime) -> Event:
        return OpportunityStale(entity_id=record_id, key=key, at=now, days=self.days, since=value)


def _repository(inst: Any, a: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or value not in ENTITIES:
        raise ValidationError(
            [FieldError("repository", "unknown_entity", f"no repository named {quote(value)} ({', '.join(ENTITIES)})")]
        )


def _date_field(inst: Any, a: attrs.Attribute[Any], value: Any) -> None:
    kind = ENTITIES.get(inst.repository)
    kinds = FIELD_KINDS[kind] if kind is not None else {}
    custom = kind is not None and "custom" in attrs.fields_dict(kind)
    if isinstance(value, str) and value.startswith("custom.") and _NAME.fullmatch(value[7:]) and custom:
        return
    if isinstance(value, str) and kinds.get(value) in ("date", "datetime"):
        return
    dated = ", ".join(f for f, k in kinds.items() if k in ("date", "datetime"))
    raise ValidationError(
        [
            FieldError(
                "field", "invalid_field", f"{quote(value)} is not a date field of {inst.repository} ({dated}, custom.<name>)"
            )
        ]
    )


@attrs.frozen(kw_only=True)
class Anniversaries(TimeRule):
    """A :class:`DateAnniversary` event for each record of ``repository`` whose date ``field`` -- a date or
    datetime field (``created_at``: customer since) or a ``custom.<name>`` date -- comes round on ``now``'s
    (UTC) date, one year or more later; the 29th of February is kept on the 28th in common years. Once per
    record and year."""

    kind: ClassVar[str] = "anniversary"
    repository: str = attrs.field(validator=_repository)
    field: str = attrs.field(validator=_date_field)

    def default_name(self) -> str:
        return f"anniversary:{self.repository}.{self.field.replace('.', '_')}"

    def params(self) -> dict[str, Any]:
        return {"repository": self.repository, "field": self.field}

    def period(self, value: Any, now: dt.datetime) -> str | None:
        return None if anniversary_of(value, now) is None else str(now.astimezone(dt.UTC).year)

    def event(self, record_id: str, value: Any, key: str, now: dt.datetime) -> Event:
        got = anniversary_of(value, now)
        assert got is not None  # period() kept only anniversaries
        return DateAnniversary(
            entity=self.repository, entity_id=record_id, key=key, at=now, field=self.field, date=got[0], years=got[1]
        )


@attrs.frozen
class RuleCount:
    """What one rule did in a ``run_due``: records ``found`` due, events ``fired`` (new in the outbox) and
    ``already`` fired for the same period before."""

    name: str
    found: int
    fired: int
    already: int


@attrs.frozen
class DueResult:
    """What one ``run_due`` did, rule by rule (``result["dormant_customers:90d"]``) and in all."""

    at: dt.datetime
    rules: tuple[RuleCount, ...]

    @property
    def found(self) -> int:
        return sum(r.found for r in self.rules)

    @property
    def fired(self) -> int:
        return sum(r.fired for r in self.rules)

    @property
    def already(self) -> int:
        return sum(r.already for r in self.rules)

    def __getitem__(self, name: str) -> RuleCount:
        for r in self.rules:
            if r.name == name:
                return r
        raise KeyError(name)


def _check_rules(rules: Any, encrypted: Mapping[str, Iterable[str]]) -> list[TimeRule]:
    items = list(check_iterable("rules", rules, "a list of time rules"))
    if not items:
        raise ValidationError([FieldError("rules", "required", "name at least one time rule")])
    errors = []
    seen: set[str] = set()
    for i, r in enumerate(items):
        if not isinstance(r, TimeRule) or not r.kind:
            errors.append(FieldError(f"rules[{i}]", "type", f"expected a time rule (TaskDueSoon, ...), got {type(r).__name__}"))
        elif r.name in seen:
            errors.append(FieldError(f"rules[{i}].name", "duplicate", f"two rules are named {r.name!r}"))
        elif isinstance(r, Anniversaries) and r.field in tuple(encrypted.get(r.repository, ())):
            errors.append(FieldError(f"rules[{i}].field", "encrypted", f"{r.field} of {r.repository} is stored encrypted"))
        else:
            seen.add(r.name)
    if errors:
        raise ValidationError(errors)
    return items


def _rows(tx: Any, rule: TimeRule, now: dt.datetime) -> list[tuple[Any, ...]]:
    params = rule.params()
    rows = tx.due(rule.kind, now, **params) if isinstance(tx, DueQueries) else None
    if rows is None:

        def stream(kind: Any) -> Iterator[Any]:
            return iter(tx.iter(kind, [], 1000))

        rows = due_rows(rule.kind, now, params, stream)
    if rows is None:
        raise CRMError(f"this store ({type(tx).__name__}) cannot evaluate time rules of kind {rule.kind!r}")
    return rows


def run_rule(store: Store, rule: TimeRule, now: dt.datetime, chunk: int = CHUNK) -> RuleCount:
    """One rule in one transaction: its query, then its events added to the outbox ``chunk`` at a time."""
    tx = store.begin()
    try:
        if not isinstance(tx, Outbox):
            raise CRMError(f"this store ({type(tx).__name__}) keeps no outbox: run_due writes its events there")
        pushed = tx.fire(rule.kind, now, rule.name, **rule.params()) if isinstance(tx, DueQueries) else None
        if pushed is not None:  # the whole firing in the database: no row comes back
            tx.commit()
            return RuleCount(rule.name, pushed[0], pushed[1], pushed[0] - pushed[1])
        found = fired = 0
        rows = _rows(tx, rule, now)
        for lo in range(0, len(rows), chunk):
            keyed = []
            for record_id, value in rows[lo : lo + chunk]:
                period = rule.period(value, now)
                if period is not None:
                    keyed.append((record_id, value, firing_key(rule.name, record_id, period)))
            found += len(keyed)
            # the firings already in the outbox are not made again; for the others, outbox_add(unique=True)
            # decides (a concurrent run may add one first)
            held = tx.fired([k for _, _, k in keyed]) if isinstance(tx, DueQueries) and keyed else set()
            new = [rule.row(record_id, value, key, now) for record_id, value, key in keyed if key not in held]
            if new:
                fired += tx.outbox_add(new, unique=True)
        tx.commit()
    except BaseException:
        tx.rollback()
        raise
    return RuleCount(rule.name, found, fired, found - fired)


def run_due(crm: Any, rules: Iterable[TimeRule], *, now: dt.datetime | None = None, chunk: int = CHUNK) -> DueResult:
    """Evaluate time ``rules`` at ``now`` (default: the clock) on ``crm``'s store and write what they find to its
    outbox, each record once per period (see the module docstring); ``crm.run_due``. Needs a store that keeps
    an outbox (``pycrm.open(..., outbox=True)``; a CRMError otherwise). ``chunk``: events per outbox write."""
    if now is not None and (not isinstance(now, dt.datetime) or now.tzinfo is None):
        raise ValidationError([FieldError("now", "invalid_datetime", f"expected an aware datetime, got {quote(now, 70)}")])
    check_count("chunk", chunk)
    store = getattr(crm, "store", None)
    if not isinstance(store, Store):
        raise ValidationError([FieldError("crm", "type", f"expected a CRM (pycrm.open), got {type(crm).__name__}")])
    if not getattr(crm, "outbox_on", True):
        raise CRMError("run_due writes events to the outbox: open the store with pycrm.open(..., outbox=True)")
    security = getattr(crm, "security", None)
    checked = _check_rules(rules, getattr(security, "encrypted", None) or {})
    at = (now or utcnow()).astimezone(dt.UTC)
    return DueResult(at, tuple(_retrying(store, r, at, chunk) for r in checked))


def _retrying(store: Store, rule: TimeRule, now: dt.datetime, chunk: int, attempts: int = 3) -> RuleCount:
    """:func:`run_rule`, again when a concurrent run's firings made its transaction fail (ConcurrencyError): the
    next attempt finds them in the outbox."""
    for attempt in range(attempts):
        try:
            return run_rule(store, rule, now, chunk)
        except ConcurrencyError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
