"""Domain events: what happened in the CRM, as typed, frozen values.

A session raises them from the writes themselves (:func:`derive`: a customer created, a deal moved to another
stage, a ticket's status changed, ...) and, when the store keeps an outbox (``pycrm.open(..., outbox=True)``),
writes them in the same transaction as the change; ``crm.dispatch()`` then hands them to the handlers a host
registered (``pycrm.automation``). Time-based events (a task overdue, a customer dormant) come from
``crm.run_due()``; hosts and rules emit :class:`CustomEvent`.

Every event names the record it is about (``entity``, the repository, and ``entity_id``) and carries the
actor, the time and an idempotency key (``key``: one per event, the same on every delivery of it). Events
hold ids, names and field names, never a record's values: what a person entered stays in the record (where
the field rules and erasure apply), and a handler that needs it reads the record.

>>> from pycrm.domain import Opportunity, Money
>>> before = Opportunity("c1", "Big deal", Money(1000, "USD"), id="o1")
>>> after = Opportunity("c1", "Big deal", Money(1000, "USD"), id="o1")
>>> after.move_to("proposal")
>>> [e.name for e in derive(Opportunity, "update", before, after)]
['OpportunityUpdated', 'StageChanged']
>>> derive(Opportunity, "update", before, after)[1].to_stage
'proposal'
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs

from pycrm.domain._checks import is_id, new_id
from pycrm.domain._entities import (
    Activity,
    Attachment,
    Campaign,
    CampaignMember,
    CampaignResponse,
    Contact,
    Customer,
    Entity,
    Interaction,
    Opportunity,
    Order,
    Product,
    Survey,
    Task,
    Ticket,
    User,
    utcnow,
)
from pycrm.domain._machine import StageKind
from pycrm.errors import FieldError, ValidationError, quote

__all__ = [
    "CREATED",
    "EVENTS",
    "ActivityDeleted",
    "ActivityRecorded",
    "ActivityUpdated",
    "Assigned",
    "AttachmentAdded",
    "AttachmentDeleted",
    "AttachmentUpdated",
    "CampaignCreated",
    "CampaignDeleted",
    "CampaignMemberAdded",
    "CampaignMemberDeleted",
    "CampaignMemberUpdated",
    "CampaignResponseDeleted",
    "CampaignResponseRecorded",
    "CampaignResponseUpdated",
    "CampaignUpdated",
    "ContactCreated",
    "ContactDeleted",
    "ContactUpdated",
    "Created",
    "CustomEvent",
    "CustomerCreated",
    "CustomerDeleted",
    "CustomerDormant",
    "CustomerUpdated",
    "DateAnniversary",
    "DealLost",
    "DealWon",
    "Deleted",
    "Event",
    "InteractionDeleted",
    "InteractionLogged",
    "InteractionUpdated",
    "OpportunityCreated",
    "OpportunityDeleted",
    "OpportunityStale",
    "OpportunityUpdated",
    "OrderDeleted",
    "OrderPlaced",
    "OrderUpdated",
    "ProductCreated",
    "ProductDeleted",
    "ProductUpdated",
    "RecordArchived",
    "RecordUnarchived",
    "RuleFired",
    "StageChanged",
    "SurveyCreated",
    "SurveyDeleted",
    "SurveyUpdated",
    "TaskCompleted",
    "TaskCreated",
    "TaskDeleted",
    "TaskDue",
    "TaskOverdue",
    "TaskUpdated",
    "TicketDeleted",
    "TicketOpened",
    "TicketSlaAtRisk",
    "TicketSlaBreached",
    "TicketStatusChanged",
    "TicketUpdated",
    "Updated",
    "UserCreated",
    "UserDeleted",
    "UserUpdated",
    "derive",
    "derive_rows",
    "event_from_row",
]

#: The largest JSON text a custom event's data may take.
MAX_DATA = 16_000
_NAME = re.compile(r"[a-z][a-z0-9_]*([.:-][a-z0-9_]+)*")


def _opt_id(inst: Any, a: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not is_id(value):
        raise ValidationError([FieldError(a.name, "invalid_id", f"not an id: {quote(value, 70)}")])


#: The longest idempotency key (a time rule's firing made in the database: ``rule|record id|period``).
MAX_KEY = 200


def _key(value: Any) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_KEY or "\x00" in value:
        raise ValidationError([FieldError("key", "invalid_key", f"not an event key: {quote(value, 70)}")])


def _utc(value: Any) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError([FieldError("at", "invalid_datetime", f"not a time: {quote(value, 70)}")]) from None
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValidationError([FieldError("at", "invalid_datetime", f"expected an aware datetime, got {quote(value, 70)}")])
    return value.astimezone(dt.UTC)


#: The metadata of a field holding a datetime (stored as ISO text in the outbox).
_TIME = {"time": True}


@attrs.frozen(kw_only=True)
class Event:
    """Something that happened. ``entity`` / ``entity_id``: the record it is about (repository name and id);
    ``key``: the idempotency key (the same on every delivery of this event); ``at``: when; ``actor_id``: who
    (None for the system actor); ``seq``: its place in the outbox (0 before it is stored)."""

    #: The repository the event's records live in (a subclass fixes it); None: any.
    about: ClassVar[str | None] = None

    entity: str | None = attrs.field(default=None)
    entity_id: str | None = attrs.field(default=None, validator=_opt_id)
    key: str = attrs.field(factory=new_id, validator=lambda i, a, v: _key(v))
    at: dt.datetime = attrs.field(factory=utcnow, converter=_utc)
    actor_id: str | None = attrs.field(default=None, validator=_opt_id)
    seq: int = attrs.field(default=0)

    def __attrs_post_init__(self) -> None:
        if self.entity is None and self.about is not None:
            object.__setattr__(self, "entity", self.about)
        if self.entity is not None:
            from pycrm.domain import ENTITIES

            if not isinstance(self.entity, str) or self.entity not in ENTITIES:
                raise ValidationError([FieldError("entity", "unknown_entity", f"no repository named {quote(self.entity)}")])
        for a in attrs.fields(type(self)):
            if a.name not in _CHECKED:
                value = _check_field(a.name, str(a.type), getattr(self, a.name))
                object.__setattr__(self, a.name, value)

    @property
    def name(self) -> str:
        """The event's type name (``StageChanged``); a custom event's own name (``vip.welcome``)."""
        return type(self).__name__

    def data(self) -> dict[str, Any]:
        """The fields of this event type beyond those every event has, JSON-safe (times as ISO text)."""
        out: dict[str, Any] = {}
        for a in attrs.fields(type(self)):
            if a.name in _BASE:
                continue
            v = getattr(self, a.name)
            if isinstance(v, dt.datetime | dt.date):
                v = v.isoformat()
            elif isinstance(v, tuple):
                v = list(v)
            out[a.name] = v
        return out

    def to_row(self) -> dict[str, Any]:
        """The outbox row of this event (see :func:`event_from_row`)."""
        return {
            "key": self.key,
            "event": type(self).__name__,
            "entity": self.entity,
            "entity_id": self.entity_id,
            "at": self.at,
            "actor_id": self.actor_id,
            "data": self.data(),
        }

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON document (what a webhook sends)."""
        return {
            "event": self.name,
            "key": self.key,
            "seq": self.seq,
            "at": self.at.isoformat(),
            "actor_id": self.actor_id,
            "entity": self.entity,
            "entity_id": self.entity_id,
            "data": self.data(),
        }


_BASE = frozenset(a.name for a in attrs.fields(Event))
#: Fields checked by their own validators.
_CHECKED = frozenset({"entity", "entity_id", "key", "at", "actor_id", "custom_name", "payload"})
#: The most an int field of an event holds (days, years, seq).
_MAX_INT = 2**53


def _check_field(name: str, kind: str, value: Any) -> Any:
    """``value`` checked against the declared type ``kind`` of an event field (a ValidationError naming it)."""
    optional = kind.endswith("| None")
    if value is None and optional:
        return None
    base = kind.removesuffix("| None").strip()
    ok: bool
    if base == "str":
        ok = isinstance(value, str) and len(value) <= 200 and "\x00" not in value
    elif base == "int":
        ok = type(value) is int and 0 <= value <= _MAX_INT
    elif base == "dt.datetime":
        ok = isinstance(value, dt.datetime) and value.tzinfo is not None
    elif base == "tuple[str, ...]":
        items = tuple(value) if isinstance(value, list | tuple) else None
        if items is not None and len(items) <= 500 and all(isinstance(v, str) and len(v) <= 200 for v in items):
            return items
        ok = False
    else:  # pragma: no cover - a field type this check does not know: a programming error
        raise TypeError(f"event field {name}: unchecked type {kind}")
    if not ok:
        what = f"expected {base}{' or None' if optional else ''}, got {quote(value, 70)}"
        raise ValidationError([FieldError(name, "invalid_value", what)])
    return value


# ---- changes of stored records --------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class Created(Event):
    """A record was created."""


@attrs.frozen(kw_only=True)
class Updated(Event):
    """A record was changed: ``fields`` names what changed (no values)."""

    fields: tuple[str, ...] = attrs.field(default=())


@attrs.frozen(kw_only=True)
class Deleted(Event):
    """A record was deleted (a merge deletes the duplicates it merged away)."""


@attrs.frozen(kw_only=True)
class RecordArchived(Event):
    """A record moved to the archive."""


@attrs.frozen(kw_only=True)
class RecordUnarchived(Event):
    """A record came back from the archive."""


def _crud(entity: str, created: str, prefix: str) -> tuple[type[Created], type[Updated], type[Deleted]]:
    def make(base: type[Event], name: str, doc: str) -> Any:
        return attrs.frozen(kw_only=True)(
            type(name, (base,), {"__doc__": doc, "__module__": __name__, "about": entity, "__annotations__": {}})
        )

    return (
        make(Created, created, f"A record of {entity} was created."),
        make(Updated, f"{prefix}Updated", f"A record of {entity} was changed (``fields``: what changed)."),
        make(Deleted, f"{prefix}Deleted", f"A record of {entity} was deleted."),
    )


CustomerCreated, CustomerUpdated, CustomerDeleted = _crud("customers", "CustomerCreated", "Customer")
ContactCreated, ContactUpdated, ContactDeleted = _crud("contacts", "ContactCreated", "Contact")
OpportunityCreated, OpportunityUpdated, OpportunityDeleted = _crud("opportunities", "OpportunityCreated", "Opportunity")
TicketOpened, TicketUpdated, TicketDeleted = _crud("tickets", "TicketOpened", "Ticket")
InteractionLogged, InteractionUpdated, InteractionDeleted = _crud("interactions", "InteractionLogged", "Interaction")
OrderPlaced, OrderUpdated, OrderDeleted = _crud("orders", "OrderPlaced", "Order")
TaskCreated, TaskUpdated, TaskDeleted = _crud("tasks", "TaskCreated", "Task")
UserCreated, UserUpdated, UserDeleted = _crud("users", "UserCreated", "User")
SurveyCreated, SurveyUpdated, SurveyDeleted = _crud("surveys", "SurveyCreated", "Survey")
CampaignCreated, CampaignUpdated, CampaignDeleted = _crud("campaigns", "CampaignCreated", "Campaign")
#: A member was added to a campaign: the host contacts it (pycrm does not send anything).
CampaignMemberAdded, CampaignMemberUpdated, CampaignMemberDeleted = _crud(
    "campaign_members", "CampaignMemberAdded", "CampaignMember"
)
CampaignResponseRecorded, CampaignResponseUpdated, CampaignResponseDeleted = _crud(
    "campaign_responses", "CampaignResponseRecorded", "CampaignResponse"
)
ProductCreated, ProductUpdated, ProductDeleted = _crud("products", "ProductCreated", "Product")
#: A behaviour event (web visit, app event) was recorded.
ActivityRecorded, ActivityUpdated, ActivityDeleted = _crud("activities", "ActivityRecorded", "Activity")
AttachmentAdded, AttachmentUpdated, AttachmentDeleted = _crud("attachments", "AttachmentAdded", "Attachment")


# ---- what a change means ---------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class StageChanged(Event):
    """A deal moved from one stage of its pipeline to another."""

    about: ClassVar[str | None] = "opportunities"
    pipeline: str = ""
    from_stage: str | None = None
    to_stage: str = ""


@attrs.frozen(kw_only=True)
class DealWon(Event):
    """A deal reached a won stage."""

    about: ClassVar[str | None] = "opportunities"
    pipeline: str = ""
    stage: str = ""


@attrs.frozen(kw_only=True)
class DealLost(Event):
    """A deal reached a lost stage."""

    about: ClassVar[str | None] = "opportunities"
    pipeline: str = ""
    stage: str = ""


@attrs.frozen(kw_only=True)
class TicketStatusChanged(Event):
    """A ticket moved from one status to another."""

    about: ClassVar[str | None] = "tickets"
    from_status: str | None = None
    to_status: str = ""


@attrs.frozen(kw_only=True)
class TaskCompleted(Event):
    """A task was marked done."""

    about: ClassVar[str | None] = "tasks"


@attrs.frozen(kw_only=True)
class Assigned(Event):
    """A record got another owner or assignee: ``field`` (``owner_id`` or ``assignee_id``) changed from
    ``from_user`` to ``to_user`` (user ids; None for nobody)."""

    field: str = ""
    from_user: str | None = None
    to_user: str | None = None


# ---- time-based (crm.run_due) ------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class TaskDue(Event):
    """A task not done is due within the rule's window (a reminder)."""

    about: ClassVar[str | None] = "tasks"
    due_at: dt.datetime | None = attrs.field(default=None, metadata=_TIME)


@attrs.frozen(kw_only=True)
class TaskOverdue(Event):
    """A task not done is past its due time."""

    about: ClassVar[str | None] = "tasks"
    due_at: dt.datetime | None = attrs.field(default=None, metadata=_TIME)


@attrs.frozen(kw_only=True)
class CustomerDormant(Event):
    """A customer had no order or interaction for ``days`` days (``last_activity``: the latest, or None)."""

    about: ClassVar[str | None] = "customers"
    days: int = 0
    last_activity: dt.datetime | None = attrs.field(default=None, metadata=_TIME)


@attrs.frozen(kw_only=True)
class OpportunityStale(Event):
    """An open deal has not changed stage for ``days`` days (since ``since``)."""

    about: ClassVar[str | None] = "opportunities"
    days: int = 0
    since: dt.datetime | None = attrs.field(default=None, metadata=_TIME)


@attrs.frozen(kw_only=True)
class _TicketSla(Event):
    about: ClassVar[str | None] = "tickets"
    metric: str = ""
    target: str = ""
    due_at: dt.datetime | None = attrs.field(default=None, metadata=_TIME)


@attrs.frozen(kw_only=True)
class TicketSlaAtRisk(_TicketSla):
    """A ticket's SLA clock (``metric``: ``first_response`` or ``resolution``, under the policy's target
    ``target``) has used the policy's at-risk share; it is due at ``due_at``."""


@attrs.frozen(kw_only=True)
class TicketSlaBreached(_TicketSla):
    """A ticket's SLA clock (``metric``, under the target ``target``) ran past its target at ``due_at``."""


@attrs.frozen(kw_only=True)
class DateAnniversary(Event):
    """A date field of a record came round again: ``years`` years since ``date`` (``field``)."""

    field: str = ""
    date: str = ""
    years: int = 0


# ---- raised by hosts and rules -------------------------------------------------------------------------
def _custom_name(inst: Any, a: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or len(value) > 64 or not _NAME.fullmatch(value):
        raise ValidationError(
            [FieldError("name", "invalid_name", f"{quote(value, 70)} is not an event name (lower case, digits, . _ : -)")]
        )


def _custom_data(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError([FieldError("data", "type", f"expected a mapping, got {type(value).__name__}")])
    try:
        text = json.dumps(dict(value), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError([FieldError("data", "invalid_json", f"not JSON-safe: {exc}")]) from None
    except RecursionError:
        raise ValidationError([FieldError("data", "invalid_json", "nested too deeply")]) from None
    if len(text) > MAX_DATA:
        raise ValidationError([FieldError("data", "too_long", f"at most {MAX_DATA} characters of JSON, got {len(text)}")])
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@attrs.frozen(kw_only=True)
class CustomEvent(Event):
    """An event a host or a rule raises: ``name`` (``vip.welcome``), small JSON ``data``, optionally about a
    record. Keep people's values out of ``data``: name the record instead."""

    custom_name: str = attrs.field(default="", validator=_custom_name, alias="name")
    payload: dict[str, Any] = attrs.field(factory=dict, converter=_custom_data, alias="data")

    @property
    def name(self) -> str:
        return self.custom_name

    def data(self) -> dict[str, Any]:
        return {"name": self.custom_name, "data": self.payload}


@attrs.frozen(kw_only=True)
class RuleFired(Event):
    """A rule ran its actions on a record because of the event ``cause`` (its key): written with the actions,
    so a rule fires once per event however often the event is delivered."""

    rule: str = ""
    cause: str = ""


#: Every event type by name (what the outbox stores in its ``event`` column).
EVENTS: dict[str, type[Event]] = {
    c.__name__: c
    for c in (
        *(Created, Updated, Deleted, RecordArchived, RecordUnarchived),
        *(CustomerCreated, CustomerUpdated, CustomerDeleted, ContactCreated, ContactUpdated, ContactDeleted),
        *(OpportunityCreated, OpportunityUpdated, OpportunityDeleted, TicketOpened, TicketUpdated, TicketDeleted),
        *(InteractionLogged, InteractionUpdated, InteractionDeleted, OrderPlaced, OrderUpdated, OrderDeleted),
        *(TaskCreated, TaskUpdated, TaskDeleted, UserCreated, UserUpdated, UserDeleted),
        *(SurveyCreated, SurveyUpdated, SurveyDeleted),
        *(CampaignCreated, CampaignUpdated, CampaignDeleted, CampaignMemberAdded, CampaignMemberUpdated),
        *(CampaignMemberDeleted, CampaignResponseRecorded, CampaignResponseUpdated, CampaignResponseDeleted),
        *(ProductCreated, ProductUpdated, ProductDeleted),
        *(ActivityRecorded, ActivityUpdated, ActivityDeleted),
        *(AttachmentAdded, AttachmentUpdated, AttachmentDeleted),
        *(StageChanged, DealWon, DealLost, TicketStatusChanged, TaskCompleted, Assigned),
        *(TaskDue, TaskOverdue, CustomerDormant, OpportunityStale, DateAnniversary, CustomEvent, RuleFired),
        *(TicketSlaAtRisk, TicketSlaBreached),
    )
}

CREATED: dict[type[Entity], type[Event]] = {
    Customer: CustomerCreated,
    Contact: ContactCreated,
    Opportunity: OpportunityCreated,
    Ticket: TicketOpened,
    Interaction: InteractionLogged,
    Order: OrderPlaced,
    Task: TaskCreated,
    User: UserCreated,
    Survey: SurveyCreated,
    Campaign: CampaignCreated,
    CampaignMember: CampaignMemberAdded,
    CampaignResponse: CampaignResponseRecorded,
    Product: ProductCreated,
    Activity: ActivityRecorded,
    Attachment: AttachmentAdded,
}
_UPDATED: dict[type[Entity], type[Event]] = {
    Customer: CustomerUpdated,
    Contact: ContactUpdated,
    Opportunity: OpportunityUpdated,
    Ticket: TicketUpdated,
    Interaction: InteractionUpdated,
    Order: OrderUpdated,
    Task: TaskUpdated,
    User: UserUpdated,
    Survey: SurveyUpdated,
    Campaign: CampaignUpdated,
    CampaignMember: CampaignMemberUpdated,
    CampaignResponse: CampaignResponseUpdated,
    Product: ProductUpdated,
    Activity: ActivityUpdated,
    Attachment: AttachmentUpdated,
}
_DELETED: dict[type[Entity], type[Event]] = {
    Customer: CustomerDeleted,
    Contact: ContactDeleted,
    Opportunity: OpportunityDeleted,
    Ticket: TicketDeleted,
    Interaction: InteractionDeleted,
    Order: OrderDeleted,
    Task: TaskDeleted,
    User: UserDeleted,
    Survey: SurveyDeleted,
    Campaign: CampaignDeleted,
    CampaignMember: CampaignMemberDeleted,
    CampaignResponse: CampaignResponseDeleted,
    Product: ProductDeleted,
    Activity: ActivityDeleted,
    Attachment: AttachmentDeleted,
}
#: The field naming a record's person in charge, by kind.
_OWNER = {Customer: "owner_id", Opportunity: "owner_id", Ticket: "assignee_id", Task: "assignee_id"}


def derive(
    kind: type[Entity],
    op: str,
    before: Entity | None,
    after: Entity | None,
    fields: Sequence[str] = (),
    **meta: Any,
) -> list[Event]:
    """The events one change of a stored row raises (``op``: create, update, delete, archive, unarchive);
    ``fields``: what an update changed; ``meta``: ``at``, ``actor_id`` for every event."""
    return [
        event_from_row(r) for r in derive_rows(kind, op, before, after, fields, meta.get("at") or utcnow(), meta.get("actor_id"))
    ]


def derive_rows(
    kind: type[Entity],
    op: str,
    before: Entity | None,
    after: Entity | None,
    fields: Sequence[str],
    at: dt.datetime,
    actor_id: str | None,
) -> list[dict[str, Any]]:
    """:func:`derive` as outbox rows (what ``Event.to_row`` gives), made without building and checking an event
    each: what a session writes for every change. A test holds the two equal."""
    row = after if after is not None else before
    assert row is not None
    name = kind.entity_name()

    def make(event: str, data: dict[str, Any], entity: str = name) -> dict[str, Any]:
        return {
            "key": new_id(),
            "event": event,
            "entity": entity,
            "entity_id": row.id,
            "at": at,
            "actor_id": actor_id,
            "data": data,
        }

    if op == "create":
        return [make(CREATED[kind].__name__, {})]
    if op == "delete":
        return [make(_DELETED[kind].__name__, {})]
    if op in ("archive", "unarchive"):
        return [make("RecordArchived" if op == "archive" else "RecordUnarchived", {})]
    out = [make(_UPDATED[kind].__name__, {"fields": list(fields)})]
    if before is None or after is None:
        return out
    if isinstance(after, Opportunity) and isinstance(before, Opportunity) and before.stage != after.stage:
        pipeline = after.pipeline.name
        out.append(make("StageChanged", {"pipeline": pipeline, "from_stage": before.stage, "to_stage": after.stage}))
        kind_now = after.pipeline.stage(after.stage).kind
        if kind_now == StageKind.WON:
            out.append(make("DealWon", {"pipeline": pipeline, "stage": after.stage}))
        elif kind_now == StageKind.LOST:
            out.append(make("DealLost", {"pipeline": pipeline, "stage": after.stage}))
    elif isinstance(after, Ticket) and isinstance(before, Ticket) and before.status != after.status:
        out.append(make("TicketStatusChanged", {"from_status": str(before.status.value), "to_status": str(after.status.value)}))
    elif isinstance(after, Task) and isinstance(before, Task) and after.done and not before.done:
        out.append(make("TaskCompleted", {}))
    owner = _OWNER.get(kind)
    if owner is not None and getattr(before, owner) != getattr(after, owner):
        out.append(make("Assigned", {"field": owner, "from_user": getattr(before, owner), "to_user": getattr(after, owner)}))
    return out


def event_from_row(row: Mapping[str, Any]) -> Event:
    """An event as the outbox stored it (``seq``, ``key``, ``event``, ``entity``, ``entity_id``, ``at``,
    ``actor_id``, ``data``); an unknown type name is a ValidationError naming it."""
    cls = EVENTS.get(str(row.get("event")))
    if cls is None:
        raise ValidationError([FieldError("event", "unknown_event", f"no event type {quote(row.get('event'))}")])
    data = dict(row.get("data") or {})
    values: dict[str, Any] = {}
    fields = {a.name: a for a in attrs.fields(cls)}
    if cls is CustomEvent:
        values = {"name": data.get("name"), "data": data.get("data")}
    else:
        for k, v in data.items():
            a = fields.get(k)
            if a is None or k in _BASE:
                continue
            if a.metadata.get("time") and isinstance(v, str):
                v = dt.datetime.fromisoformat(v)
            values[k] = v
    entity = row.get("entity")
    meta: dict[str, Any] = {
        "entity_id": row.get("entity_id"),
        "key": row["key"],
        "at": row["at"],
        "actor_id": row.get("actor_id"),
        "seq": int(row.get("seq") or 0),
    }
    if cls.about is None:
        meta["entity"] = entity
    return cls(**values, **meta)
