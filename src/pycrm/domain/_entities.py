"""The entities. attrs classes whose validators collect every problem and re-run on assignment.

>>> c = Customer("李雷", kind="person", emails=["Li.Lei@Example.com"], phones=["+86 138 0013 8000"])
>>> c.emails[0].value, str(c.phones[0])
('li.lei@example.com', '+8613800138000')
>>> try:
...     Customer("", emails=["ok@example.com", "nope"])
... except ValidationError as exc:
...     print(exc.fields)
['name', 'emails[1]']
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

import attrs

from pycrm.domain import _checks as c
from pycrm.domain._machine import (
    DEFAULT_PIPELINE,
    TICKET_LIFECYCLE,
    Pipeline,
    StageKind,
    TicketPriority,
    TicketStatus,
    get_pipeline,
)
from pycrm.domain._values import Address, EmailAddress, Money, OrderLine, PhoneNumber, check_region
from pycrm.errors import FieldError, TransitionError, ValidationError, quote

__all__ = [
    "Activity",
    "Attachment",
    "Campaign",
    "CampaignMember",
    "CampaignResponse",
    "Contact",
    "Customer",
    "Entity",
    "Interaction",
    "Opportunity",
    "Order",
    "Permission",
    "Product",
    "Role",
    "StageChange",
    "StatusChange",
    "Survey",
    "Task",
    "Ticket",
    "User",
    "utcnow",
]


_EMPTY_OK = (list, frozenset, dict)
_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


#: Containers whose contents can change in place, without the checks that run on assignment.
_IN_PLACE = frozenset({list, dict, set})
#: A declared field type that may hold a value changed in place (``frozenset`` does not match: it cannot).
_HOLDS_IN_PLACE = re.compile(r"\b(list|dict|set|List|Dict|Set|Mapping|MutableMapping|Sequence|Iterable|Any|object)\b")


def _as_is(value: Any, field: str) -> Any:
    return value


@attrs.frozen
class _OwnValue:
    """A field's check that reads its value alone, as ``Entity._self_check`` gives it: ``check(value, field)``."""

    check: c.Checker

    def __call__(self, entity: Any, value: Any, field: str) -> Any:
        return self.check(value, field)


def _takes(check: Any, empty: Any, name: str) -> bool:
    """Whether a field's check accepts the empty container ``empty`` (so that it may be skipped)."""
    try:
        check(None, empty, name)
    except (ValidationError, AttributeError, TypeError):
        return False
    return True


def _on_setattr(inst: Entity, attribute: attrs.Attribute[Any], value: Any) -> Any:
    return inst._check_field(attribute.name, value)


def _html_value(value: Any) -> Any:
    """A field's value as an HTML cell shows it: a Money as amount and currency."""
    if isinstance(value, Money):
        return f"{value.amount} {value.currency}"
    return value


@attrs.define(on_setattr=_on_setattr)
class Entity:
    """Common fields of every stored entity. ``id`` is assigned by ``add`` when missing."""

    _CHECKS: ClassVar[dict[str, c.Checker]] = {}
    _PLAN_CACHE: ClassVar[list[tuple[str, Any, Any, bool, frozenset[type]]]]
    _RECHECK_CACHE: ClassVar[list[tuple[str, Any, Any, bool, frozenset[type]]]]

    id: str | None = attrs.field(default=None, kw_only=True)
    version: int = attrs.field(default=0, kw_only=True)
    created_at: dt.datetime | None = attrs.field(default=None, kw_only=True)
    updated_at: dt.datetime | None = attrs.field(default=None, kw_only=True)

    _BASE_CHECKS: ClassVar[dict[str, c.Checker]] = {
        "id": c.opt_id,
        "version": lambda v, f: (
            v
            if isinstance(v, int) and not isinstance(v, bool) and v >= 0
            else (_ for _ in ()).throw(c.fail(f, "type", "must be a whole number >= 0"))
        ),
        "created_at": c.opt_utc,
        "updated_at": c.opt_utc,
    }

    def __attrs_post_init__(self) -> None:
        self._run_checks(everything=True)

    def _repr_html_(self) -> str:
        """A key/value table of the fields, for notebooks: values escaped, masked values shown masked."""
        from pycrm.domain._html import key_value_table

        fields = [a.name for a in attrs.fields(type(self)) if not a.name.startswith("_")]
        title = type(self).__name__ + (f" {self.id}" if self.id else "")
        return key_value_table(title, ((name, _html_value(getattr(self, name))) for name in fields))

    def _recheck(self) -> None:
        """Check again, before storing, an entity checked when it was built: the fields whose values may have
        changed since without a check (``add_many``). Those are the values held in lists, dicts or sets (changed
        in place, behind the validators' back) and the fields whose check reads other fields (an opportunity's
        stage, after its pipeline was set); any other value was checked by ``__init__`` or by assignment and
        cannot change without one. Raises ValidationError naming every field that no longer passes."""
        self._run_checks(everything=False)

    def _run_checks(self, everything: bool) -> None:
        """Check (and normalize) each field in plan order, collecting every problem; ``everything=False``: only
        the fields :meth:`_recheck` names."""
        errors: list[FieldError] = []
        for name, plain, check, none_ok, empty_ok in self._plan() if everything else self._recheck_plan():
            value = getattr(self, name)
            if value is None and none_ok:
                continue
            if not everything and plain is not None and type(value) not in _IN_PLACE:
                continue
            if not value and type(value) in empty_ok:
                if name == "tags" and type(value) is not frozenset:  # tags=[]: no tags, still a frozenset
                    object.__setattr__(self, name, c.NO_TAGS)
                continue
            try:
                object.__setattr__(self, name, plain(value, name) if plain is not None else check(self, value, name))
            except ValidationError as exc:
                errors += exc.errors
        if errors:
            raise ValidationError(errors)

    @classmethod
    def _plan(cls) -> list[tuple[str, Any, Any, bool, frozenset[type]]]:
        """(field, check(value, field) when it reads the value alone or None, check(self, value, field),
        None-is-fine, the empty containers that are fine as they are) in checking order, built once per class.
        An empty list, dict or frozenset skips the check only where the check takes it (``tags=[]``, not
        ``id=frozenset()``)."""
        plan: list[tuple[str, Any, Any, bool, frozenset[type]]] | None = cls.__dict__.get("_PLAN_CACHE")
        if plan is None:
            plan = []
            for name in cls._check_order():
                check = cls._self_check(name)
                try:
                    none_ok = check(None, None, name) is None
                except (ValidationError, AttributeError, TypeError):
                    none_ok = False
                empty_ok = frozenset(t for t in _EMPTY_OK if _takes(check, t(), name))
                plan.append((name, check.check if isinstance(check, _OwnValue) else None, check, none_ok, empty_ok))
            cls._PLAN_CACHE = plan
        return plan

    @classmethod
    def _recheck_plan(cls) -> list[tuple[str, Any, Any, bool, frozenset[type]]]:
        """The entries of :meth:`_plan` that :meth:`_recheck` may have to run: checks that read other fields,
        and fields whose declared type can hold a list, dict or set (or is not declared), built once per class."""
        plan: list[tuple[str, Any, Any, bool, frozenset[type]]] | None = cls.__dict__.get("_RECHECK_CACHE")
        if plan is None:
            mutable = {a.name for a in attrs.fields(cls) if a.type is None or _HOLDS_IN_PLACE.search(str(a.type))}
            plan = [p for p in cls._plan() if p[1] is None or p[0] in mutable]
            cls._RECHECK_CACHE = plan
        return plan

    @classmethod
    def _check_order(cls) -> list[str]:
        return [*cls._CHECKS, *cls._BASE_CHECKS]

    @classmethod
    def _self_check(cls, name: str) -> Any:
        """check(self, value, field) of a field; subclasses return their own for checks that read other fields."""
        return _OwnValue(cls._CHECKS.get(name) or cls._BASE_CHECKS.get(name) or _as_is)

    def _check_field(self, name: str, value: Any) -> Any:
        return type(self)._self_check(name)(self, value, name)

    @classmethod
    def entity_name(cls) -> str:
        """The repository name (``customers``, ``orders``...)."""
        return _ENTITY_NAMES[cls]

    @classmethod
    def _load(cls, values: Mapping[str, Any]) -> Any:
        """Build from trusted stored values without re-running validation (storage adapters only)."""
        inst = object.__new__(cls)
        for k, v in values.items():
            object.__setattr__(inst, k, v)
        return inst

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Any:
        """Build from a plain mapping (a JSON object, a CSV row); unknown keys are errors."""
        if not isinstance(data, Mapping):
            raise ValidationError([FieldError("", "type", f"expected a mapping, got {type(data).__name__}")])
        names = {a.name for a in attrs.fields(cls)}
        unknown = [k for k in data if k not in names]
        if unknown:
            raise ValidationError([FieldError(str(k), "unknown_field", f"{cls.__name__} has no field {k!r}") for k in unknown])
        missing = [a.name for a in attrs.fields(cls) if a.default is attrs.NOTHING and a.name not in data]
        if missing:
            raise ValidationError([FieldError(m, "required", "is required") for m in missing])
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValidationError([FieldError("", "type", str(exc))]) from None

    def to_mapping(self) -> dict[str, Any]:
        """A JSON-able mapping of every field (inverse of ``from_mapping``)."""
        return {a.name: _plain(getattr(self, a.name)) for a in attrs.fields(type(self))}


def _plain(value: Any) -> Any:
    if isinstance(value, (EmailAddress,)):
        return value.value
    if isinstance(value, PhoneNumber):
        return value.e164
    if isinstance(value, Money):
        return {"amount": str(value.amount), "currency": value.currency}
    if isinstance(value, (Address, OrderLine)):
        return value.to_mapping()
    if isinstance(value, Pipeline):
        return value.name
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, frozenset):
        return sorted(_plain(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if attrs.has(type(value)):
        return {a.name: _plain(getattr(value, a.name)) for a in attrs.fields(type(value))}
    if hasattr(value, "value") and isinstance(value.value, str):
        return value.value
    return value


_email_list = c.list_of(lambda v, f: EmailAddress.parse(v, f), EmailAddress)


def _emails(value: Any, field: str) -> list[EmailAddress]:
    return _email_list(value, field)  # type: ignore[no-any-return]


def _money(value: Any, field: str) -> Money:
    if isinstance(value, Money):
        return value
    if isinstance(value, Mapping) and set(value) <= {"amount", "currency"} and "amount" in value:
        return Money.parse(value["amount"], value.get("currency", "CNY"), field)
    raise c.fail(field, "type", f"expected Money(amount, currency), got {type(value).__name__}")


def _purchase_amount(value: Any, field: str) -> Money:
    money = _money(value, field)
    if money.amount < 0:
        raise c.fail(field, "negative", f"{money} is negative; an order's amount is what was bought (refunds are not orders)")
    return money


_address_list = c.list_of(lambda v, f: Address.from_mapping(v, f))


def _addresses(value: Any, field: str) -> list[Address]:
    return _address_list(value, field)  # type: ignore[no-any-return]


def _country(value: Any, field: str) -> str | None:
    return None if value in (None, "") else check_region(value, field)


def _phones(self: Any, value: Any, field: str) -> list[PhoneNumber]:
    """Phones parse with the entity's country (when it has one) or the store's default region."""
    done = c.checked_list(value, PhoneNumber)  # parsed already: the region no longer matters
    if done is not None:
        return done
    region = getattr(self, "country", None)
    return c.list_of(lambda v, f: PhoneNumber.parse(v, region, f))(value, field)  # type: ignore[no-any-return]


class _Phones:
    @classmethod
    def _self_check(cls, name: str) -> Any:
        if name == "phones":
            return _phones
        return super()._self_check(name)  # type: ignore[misc]


@attrs.define(on_setattr=_on_setattr)
class Customer(_Phones, Entity):
    """A company or a person we sell to."""

    KINDS: ClassVar[tuple[str, ...]] = ("company", "person")
    STATUSES: ClassVar[tuple[str, ...]] = ("lead", "prospect", "active", "inactive", "churned")

    name: str
    kind: str = "company"
    emails: list[EmailAddress] = attrs.field(factory=list)
    phones: list[PhoneNumber] = attrs.field(factory=list)
    addresses: list[Address] = attrs.field(factory=list)
    country: str | None = None
    category: str | None = None
    status: str = "lead"
    owner_id: str | None = None
    team_id: str | None = None
    tags: frozenset[str] = c.NO_TAGS
    custom: dict[str, Any] = attrs.field(factory=dict)

    _CHECKS: ClassVar[dict[str, c.Checker]] = {
        "name": c.name,
        "kind": c.choice(KINDS),
        "country": _country,
        "emails": _emails,
        "phones": lambda v, f: v,  # replaced by _phones (needs country), see _Phones
        "addresses": _addresses,
        "category": c.category,
        "status": c.choice(STATUSES),
        "owner_id": c.opt_id,
        "team_id": c.opt_id,
        "tags": c.tags,
        "custom": c.json_dict,
    }


@attrs.define(on_setattr=_on_setattr)
class Contact(_Phones, Entity):
    """A person at a customer."""

    customer_id: str
    first_name: str
    last_name: str = ""
    emails: list[EmailAddress] = attrs.field(factory=list)
    phones: list[PhoneNumber] = attrs.field(factory=list)
    title: str | None = None
    is_primary: bool = False
    consent: dict[str, bool] = attrs.field(factory=dict)
    custom: dict[str, Any] = attrs.field(factory=dict)

    _CHECKS: ClassVar[dict[str, c.Checker]] = {
        "customer_id": c.req_id,
        "first_name": c.name,
        "last_name": lambda v, f: c.text(v, f, max_len=c.MAX_NAME),
        "emails": _emails,
        "phones": lambda v, f: v,
        "title": c.opt_name,
        "is_primary": c.boolean,
        "consent": lambda v, f: {k: c.boolean(x, f"{f}.{k}") for k, x in c.json_dict(v, f).items()},
        "custom": c.json_dict,
    }

    @property
    def full_name(self) -> str:
        """``Ada Lovelace``; Chinese, Japanese and Korean names family name first: ``邓敏``."""
        if _CJK.search(self.last_name):
            return f"{self.last_name}{self.first_name}"
        return f"{self.first_name} {self.last_name}".strip()


@attrs.frozen
class StageChange:
    """One move of an opportunity: from, to, when and by whom."""

    from_stage: str | None
    to_stage: str
    at: dt.datetime
    by: str | None = None


def _pipeline(value: Any, field: str) -> Pipeline:
    if isinstance(value, Pipeline):
        return value
    if isinstance(value, str):
        return get_pipeline(value)
    raise c.fail(field, "type", f"expected a Pipeline or its name, got {type(value).__name__}")


def _probability(value: Any, field: str) -> Decimal | None:
    if value is None:
        return None
    from pycrm.domain._machine import _probability as p

    try:
        return p(value)
    except ValidationError:
        raise c.fail(field, "range", f"must be between 0 and 1, got {value!r}") from None


_FOUR_PLACES = Decimal("0.0001")


def _win_probability(value: Any, field: str) -> Decimal | None:
    """A lead score: a probability, kept to 4 decimal places (``0.7312``)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise c.fail(field, "range", f"must be between 0 and 1, got {value!r}")
    p = _probability(value, field)
    return None if p is None else p.quantize(_FOUR_PLACES)


#: The most stage or status changes one record keeps (what the SLA clocks walk is bounded by it).
MAX_HISTORY = 10_000


def _history(kind: type) -> c.Checker:
    def check(value: Any, field: str) -> Any:
        if isinstance(value, list) and len(value) > MAX_HISTORY:
            raise c.fail(field, "too_many", f"holds {len(value)} changes; at most {MAX_HISTORY} are kept")
        items = c.list_of(
            lambda v, f: v if isinstance(v, kind) else (_ for _ in ()).throw(c.fail(f, "type", f"expected {kind.__name__}"))
        )(value, field)
        return items

    return check


def _stage(self: Any, value: Any, field: str) -> str:
    if value is None and isinstance(self, Opportunity):  # the pipeline's first stage
        return self.pipeline.initial if isinstance(self.pipeline, Pipeline) else None
    value = c.text(value, field, required=True, max_len=100)
    if isinstance(self.pipeline, Pipeline):  # an unknown pipeline is reported under "pipeline" already
        self.pipeline.stage(value)
    return value  # type: ignore[no-any-return]


@attrs.define(on_setattr=_on_setattr)
class Opportunity(Entity):
    """A deal moving along a pipeline. Move it with ``move_to``, ``win``, ``lose`` and ``reopen``.

    >>> o = Opportunity("c1", "Big deal", Money(1000, "USD"))
    >>> o.probability
    Decimal('0.10')
    >>> o.move_to("proposal"); o.probability
    Decimal('0.60')
    >>> o.lose("price too high"); o.stage, o.is_closed
    ('closed_lost', True)
    >>> o.move_to("proposal")
    Traceback (most recent call last):
    ...
    pycrm.errors.TransitionError: closed_lost -> proposal is not allowed in pipeline 'default' (use reopen)

    ``win_probability`` and ``scored_at`` hold the latest lead score (``s.analytics.score_leads``, docs/scoring.md):
    a probability kept to 4 places, and when it was computed; None until the deal is scored.
    """

    customer_id: str
    name: str
    amount: Money
    stage: str = None  # type: ignore[assignment]  # None: the pipeline's first stage
    expected_close: dt.date | None = None
    owner_id: str | None = None
    pipeline: Pipeline = attrs.field(default=DEFAULT_PIPELINE)
    probability_override: Decimal | None = None
    lost_reason: str | None = None
    closed_at: dt.datetime | None = None
    stage_history: list[StageChange] = attrs.field(factory=list)
    win_probability: Decimal | None = None
    scored_at: dt.datetime | None = None
    custom: dict[str, Any] = attrs.field(factory=dict)

    _CHECKS: ClassVar[dict[str, c.Checker]] = {
        "pipeline": _pipeline,
        "customer_id": c.req_id,
        "name": c.name,
        "amount": _money,
        "expected_close": c.opt_date,
        "owner_id": c.opt_id,
        "probability_override": _probability,
        "lost_reason": lambda v, f: c.text(v, f, max_len=2000, optional=True),
        "closed_at": c.opt_utc,
        "stage_history": _history(StageChange),
        "win_probability": _win_probability,
        "scored_at": c.opt_utc,
        "custom": c.json_dict,
    }

    @classmethod
    def _self_check(cls, name: str) -> Any:
        if name == "stage":
            return _stage
        return super()._self_check(name)

    @classmethod
    def _check_order(cls) -> list[str]:
        return ["pipeline", *[k for k in cls._CHECKS if k != "pipeline"], "stage", *cls._BASE_CHECKS]

    @property
    def probability(self) -> Decimal:
        """The override when set, else the stage's probability."""
        if self.probability_override is not None:
            return self.probability_override
        return self.pipeline.stage(self.stage).probability

    @property
    def is_closed(self) -> bool:
        return self.pipeline.stage(self.stage).is_closed

    @property
    def is_won(self) -> bool:
        return self.pipeline.stage(self.stage).kind is StageKind.WON

    @property
    def weighted_amount(self) -> Money:
        return self.amount * self.probability

    def _record(self, to: str, at: dt.datetime | None, by: str | None) -> None:
        when = c.utc(at, "at") if at is not None else utcnow()
        change = StageChange(self.stage, to, when, by)
        object.__setattr__(self, "stage_history", [*self.stage_history, change])
        object.__setattr__(self, "stage", to)
        object.__setattr__(self, "closed_at", when if self.pipeline.stage(to).is_closed else None)

    def move_to(self, stage: str, *, at: dt.datetime | None = None, by: str | None = None) -> None:
        """Move to another stage; an illegal move raises TransitionError and changes nothing.

        Closing as lost goes through ``lose(reason)``, which records why.
        """
        target = self.pipeline.stage(stage) if isinstance(stage, str) else None
        if target is None:
            raise TransitionError(f"{stage!r} is not a stage of pipeline {self.pipeline.name!r}")
        if target.kind is StageKind.LOST:
            raise TransitionError(f"closing {self.name!r} as lost needs a reason: use lose(reason)")
        self._move(stage, at, by)

    def _move(self, stage: str, at: dt.datetime | None, by: str | None) -> None:
        if not self.pipeline.can_move(self.stage, stage):
            hint = " (use reopen)" if self.is_closed else ""
            raise TransitionError(f"{self.stage} -> {stage} is not allowed in pipeline {self.pipeline.name!r}{hint}")
        self._record(stage, at, by)

    def win(self, *, at: dt.datetime | None = None, by: str | None = None) -> None:
        self.move_to(self.pipeline.won_stage().name, at=at, by=by)
        object.__setattr__(self, "lost_reason", None)

    def lose(self, reason: str, *, at: dt.datetime | None = None, by: str | None = None) -> None:
        """Close as lost; a reason is required."""
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError([FieldError("reason", "required", "losing a deal needs a reason")])
        reason = c.text(reason, "reason", max_len=2000)
        self._move(self.pipeline.lost_stage().name, at, by)
        object.__setattr__(self, "lost_reason", reason)

    def reopen(self, stage: str, *, at: dt.datetime | None = None, by: str | None = None) -> None:
        """Take a closed deal back to an open stage."""
        if not self.is_closed:
            raise TransitionError(f"{self.name!r} is not closed; use move_to")
        try:
            ok = self.pipeline.can_reopen(self.stage, stage)
        except ValidationError:
            ok = False
        if not ok:
            raise TransitionError(f"cannot reopen {self.stage} -> {stage!r} in pipeline {self.pipeline.name!r}")
        self._record(stage, at, by)
        object.__setattr__(self, "lost_reason", None)


@attrs.frozen
class StatusChange:
    from_status: str | None
    to_status: str
    at: dt.datetime
    by: str | None = None


#: Resolution targets per priority (hours from creation) used for ``Ticket.sla_due_at``.
SLA_HOURS: dict[TicketPriority, int] = {
    TicketPriority.URGENT: 4,
    TicketPriority.HIGH: 24,
    TicketPriority.NORMAL: 72,
    TicketPriority.LOW: 168,
}


def _enum(kind: type[Any]) -> c.Checker:
    def check(value: Any, field: str) -> Any:
        try:
            return kind(value)
        except ValueError:
            raise c.fail(field, "invalid_choice", f"{value!r} is not one of {', '.join(m.value for m in kind)}") from None

    return check


@attrs.define(on_setattr=_on_setattr)
class Ticket(Entity):
    """A service request: new → open → pending ⇄ open → resolved → closed; resolved → open reopens.

    >>> t = Ticket("c1", "Printer on fire", priority="urgent")
    >>> t.move_to("open"); t.move_to("resolved"); t.status
    <TicketStatus.RESOLVED: 'resolved'>
    >>> t.move_to("pending")
    Traceback (most recent call last):
    ...
    pycrm.errors.TransitionError: ticket: resolved -> pending is not allowed

    ``category`` is a path such as ``"Hardware/Printer"`` (checked as a customer's category is, so
    ``{"category": {"startswith": "Hardware/"}}`` selects a branch); ``channel`` is how the request came in,
    one of :attr:`CHANNELS`.
    """

    CHANNELS: ClassVar[tuple[str, ...]] = ("phone", "email", "web", "chat", "visit")

    customer_id: str
    subject: str
    description: str = ""
    priority: TicketPriority = TicketPriority.NORMAL
    status: TicketStatus = TicketStatus.NEW
    assignee_id: str | None = None
    first_response_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    status_history: list[StatusChange] = attrs.field(factory=list)
    category: str | None = None
    channel: str | None = None
    custom: dict[str, Any] = attrs.field(factory=dict)

    _CHECKS: ClassVar[dict[str, c.Checker]] = {
        "customer_id": c.req_id,
        "subject": lambda v, f: c.text(v, f, required=True, max_len=500),
        "description": c.text,
        "priority": _enum(TicketPriority),
        "status": _enum(TicketStatus),
        "assignee_id": c.opt_id,
        "first_response_at": c.opt_utc,
        "resolved_at": c.opt_utc,
        "closed_at": c.opt_utc,
        "status_history": _history(StatusChange),
        "category": c.category,
        "channel": lambda v, f: None if v is None else c.choice(Ticket.CHANNELS)(v, f),
        "custom": c.json_dict,
    }

    def move_to(self, status: str | TicketStatus, *, at: dt.datetime | None = None, by: str | None = None) -> None:
        try:
            target = TicketStatus(status)
        except ValueError:
            raise TransitionError(f"{status!r} is not a ticket status") from None
        if not TICKET_LIFECYCLE.can_move(self.status, target):
            raise TransitionError(f"ticket: {self.status.value} -> {target.value} is not allowed")
        when = c.utc(at, "at") if at is not None else utcnow()
        if len(self.status_history) >= MAX_HISTORY:
            raise ValidationError([FieldError("status_history", "too_many", f"at most {MAX_HISTORY} changes are kept")])
        if self.status_history and when < self.status_history[-1].at:
            last = self.status_history[-1].at.isoformat()
            raise ValidationError([FieldError("at", "order", f"{when.isoformat()} is before the last status change ({last})")])
        object.__setattr__(
            self, "status_history", [*self.status_history, StatusChange(self.status.value, target.value, when, by)]
        )
        object.__setattr__(self, "status", target)
        if target is TicketStatus.OPEN and self.first_response_at is None:
            object.__setattr__(self, "first_response_at", when)
        if target is TicketStatus.RESOLVED:
            object.__setattr__(self, "resolved_at", when)
        elif target is TicketStatus.OPEN:
            object.__setattr__(self, "resolved_at", None)
        if target is TicketStatus.CLOSED:
            object.__setattr__(self, "closed_at", when)

    @property
    def sla_due_at(self) -> dt.datetime | None:
        """When the ticket should be resolved by, from its priority (None until it is stored)."""
        if self.created_at is None:
            return None
        return self.created_at + dt.timedelta(hours=SLA_HOURS[self.priority])

    def is_breached(self, now: dt.datetime | None = None) -> bool:
        """True when the SLA due time passed before resolution (or is past now, while unresolved)."""
        due = self.sla_due_at
        if due is None:
            return False
        done = self.resolved_at or self.closed_at
        return (done or now or utcnow()) > due


@attrs.define(on_setattr=_on_setattr)
class Interaction(Entity):
    """A call, e-mail, meeting, note, SMS or visit with a customer, and what happened in it.

    ``duration`` is how long it took in whole seconds (``None``: not recorded; a :class:`datetime.timedelta`
    of whole seconds is taken too), ``direction`` who started it (``"inbound"``: the customer, ``"outbound"``:
    you), ``channel`` how it went (one of :attr:`CHANNELS`: a ticket's channels and the consent channels),
    ``contact_id`` the person spoken to and ``opportunity_id`` the deal it was about -- both must belong to
    the interaction's customer (checked on write) -- and ``outcome`` a short text (up to
    :attr:`MAX_OUTCOME` characters) such as ``"demo booked"``.

    >>> at = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    >>> i = Interaction("c1", "call", at, duration=dt.timedelta(minutes=7), direction="inbound", channel="phone")
    >>> i.duration, i.direction, i.outcome
    (420, 'inbound', None)
    >>> try:
    ...     Interaction("c1", "call", at, duration=-5)
    ... except ValidationError as exc:
    ...     print(exc.errors[0].field, exc.errors[0].code)
    duration negative
    """

    KINDS: ClassVar[tuple[str, ...]] = ("call", "email", "meeting", "note", "sms", "visit")
    DIRECTIONS: ClassVar[tuple[str, ...]] = ("inbound", "outbound")
    #: a ticket's channels, then the consent channels it lacks
    CHANNELS: ClassVar[tuple[str, ...]] = ("phone", "email", "web", "chat", "visit", "sms", "mail")
    MAX_OUTCOME: ClassVar[int] = 200
    #: the longest duration taken: a year, in seconds
    MAX_DURATION: ClassVar[int] = 366 * 86400

    customer_id: str
    kind: str
    occurred_at: dt.datetime
    subject: str = ""
    body: str = ""
    user_id: str | None = None
    custom: dict[str, Any] = attrs.field(factory=dict)
    duration: int | None = None
    direction: str | None = None
    channel: str | None = None
    contact_id: str | None = None
    opportunity_id: str | None = None
    outcome: str | None = None

    _CHECKS: ClassVar[dict[str, c.Checker]] = {
        "customer_id": c.req_id,
        "kind": c.choice(KINDS),
        "occurred_at": c.utc,
        "subject": lambda v, f: c.text(v, f, max_len=500),
        "body": c.text,
        "user_id": c.opt_id,
        "custom": c.json_dict,
        "duration": lambda v, f: _seconds(v, f, Interaction.MAX_DURATION),
        "direction": lambda v, f: None if v is None else c.choice(Interaction.DIRECTIONS)(v, f),
        "channel": lambda v, f: None if v is None else c.choice(Interaction.CHANNELS)(v, f),
        "contact_id": c.opt_id,
        "opportunity_id": c.opt_id,
        "outcome": lambda v, f: c.text(v, f, max_len=Interaction.MAX_OUTCOME, optional=True) or None,
    }


def _seconds(value: Any, field: str, most: int) -> int | None:
    """A duration in whole seconds, from ``None``, an ``int`` or a :class:`datetime.timedelta` of whole seconds."""
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        if value.microseconds:
            raise c.fail(field, "not_whole", f"{value} is not a whole number of seconds")
        value = value.days * 86400 + value.seconds
    elif not isinstance(value, int) or isinstance(value, bool):
        raise c.fail(field, "type", f"expected whole seconds or a timedelta, got {type(value).__name__}")
    if value < 0:
        raise c.fail(field, "negative", f"must not be negative, got {value}")
    if value > most:
        raise c.fail(field, "too_large", f"at most {most} seconds, got {value}")
    return int(value)


_SLUG = re.compile(r"[a-z][a-z0-9_]{0,39}")
_PROPERTY_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")


def _slug(value: Any, field: str) -> Any:
    if not isinstance(value, str):
        raise c.fail(field, "type", f"expected text, got {type(value).__name__}")
    if not _SLUG.fullmatch(value):
        raise c.fail(field, "invalid_slug", f"{quote(value)} is not a slug (a-z first, then a-z, 0-9 or _, up to 40)")
    return value


def _properties(value: Any, field: str) -> Any:
    """A JSON object of at most :attr:`Activity.MAX_PROPERTIES` keys whose values are scalars (text up to 1000
    characters, whole numbers, finite numbers, booleans, ``None``), at most :attr:`Activity.MAX_BYTES` long."""
    if not isinstance(value, dict):
        raise c.fail(field, "type", f"expected a mapping, got {type(value).__name__}")
    if len(value) > Activity.MAX_PROPERTIES:
        raise c.fail(field, "too_many", f"at most {Activity.MAX_PROPERTIES} properties, got {len(value)}")
    size = 0
    for k, v in value.items():
        if not isinstance(k, str) or not _PROPERTY_KEY.fullmatch(k):
            raise c.fail(field, "invalid_key", f"{quote(k)} is not a property name (a letter or _ first, up to 64)")
        path = f"{field}.{k}"
        if isinstance(v, str):
            c.text(v, path, max_len=1000)
            size += len(v.encode("utf-8"))
        elif isinstance(v, float) and not math.isfinite(v):
            raise c.fail(path, "not_finite", f"{v!r} is not a finite number")
        elif v is not None and not isinstance(v, (bool, int, float)):
            raise c.fail(path, "type", f"expected text, a number, true/false or null, got {type(v).__name__}")
        elif isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 2**63:
            raise c.fail(path, "too_large", "a whole number must fit in 64 bits")
        size += len(k) + 8
    if size > Activity.MAX_BYTES:
        raise c.fail(field, "too_large", f"at most {Activity.MAX_BYTES} bytes of properties, got about {size}")
    return value


@attrs.define(on_setattr=_on_setattr)
class Activity(Entity):
    """A behaviour event of a customer (optionally of one of its contacts): a web visit, an app start, a
    download. ``kind`` is a free identifier checked as a slug (``"web_visit"``, ``"app_open"``),
    ``properties`` a JSON object of scalar values (``{"path": "/pricing", "seconds": 42}``, at most
    :attr:`MAX_PROPERTIES` keys and :attr:`MAX_BYTES` bytes), ``source`` where it came from (``"web"``, a
    tracker's name; a slug too).

    >>> at = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    >>> Activity("c1", "web_visit", at, properties={"path": "/pricing"}).kind
    'web_visit'
    >>> try:
    ...     Activity("c1", "Web Visit", at, properties={"tags": ["a"]})
    ... except ValidationError as exc:
    ...     print([(e.field, e.code) for e in exc.errors])
    [('kind', 'invalid_slug'), ('properties.tags', 'type')]
    """

    MAX_PROPERTIES: ClassVar[int] = 50
    MAX_BYTES: ClassVar[int] = 8000

    customer_id: str
    kind: str
    occurred_at: dt.datetime
    properties: dict[str, Any] = attrs.field(factory=dict)
    contact_id: str | None = None
    source: str | None = None

    _CHECKS: ClassVar[dict[str, c.Checker]] = {
        "customer_id": c.req_id,
        "kind": _slug,
        "occurred_at": c.utc,
        "properties": _properties,
        "contact_id": c.opt_id,
        "source": lambda v, f: None if v is None else _slug(v, f),
    }


@attrs.define(on_setattr=_on_setattr)
class Order(Entity):
    """One purchase: the input of RFM and CLV. Amounts are never negative (refunds are not orders).

    ``lines`` (optional) say what was bought: :class:`OrderLine` values (or mappings of their fields), each
    in the order's currency, whose totals add up to ``amount`` exactly; an order without lines is one amount,
    as before. :meth:`from_lines` sums them for you. Each line's product must be stored (checked on write).

    >>> at = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    >>> o = Order.from_lines("c1", at, [OrderLine("p1", 2, Money("10", "EUR")), {"product_id": "p2", "quantity": 1,
    ...     "unit_price": "5.50", "currency": "EUR"}])
    >>> o.amount, len(o.lines)
    (Money(amount=Decimal('25.50'), currency='EUR'), 2)
    >>> try:
    ...     Order("c1", at, Money("30", "EUR"), lines=o.lines)
    ... except ValidationError as exc:
    ...     print(exc.errors[0].field, exc.errors[0].code)
    amount lines_mismatch
    """

    MAX_LINES: ClassVar[int] = 1000

    customer_id: str
    occurred_at: dt.datetime
    amount: Money
    order_no: str | None = None
    lines: list[OrderLine] = attrs.field(factory=list)
    custom: dict[str, Any] = attrs.field(factory=dict)

    _CHECKS: ClassVar[dict[str, c.Checker]] = {
        "customer_id": c.req_id,
        "occurred_at": c.utc,
        "amount": _purchase_amount,
        "order_no": lambda v, f: c.text(v, f, max_len=100, optional=True),
        "custom": c.json_dict,
    }

    @classmethod
    def _self_check(cls, name: str) -> Any:
        if name == "lines":
            return _order_lines
        return super()._self_check(name)

    @classmethod
    def _check_order(cls) -> list[str]:
        return [*cls._CHECKS, "lines", *cls._BASE_CHECKS]

    @classmethod
    def from_lines(cls, customer_id: str, occurred_at: dt.datetime, lines: Any, currency: str | None = None, **kw: Any) -> Order:
        """An order whose amount is the sum of ``lines`` (in ``currency``, by default the first line's)."""
        parsed = _parse_lines(lines, "lines", currency)
        cur = currency if currency is not None else (parsed[0].currency if parsed else "CNY")
        total = sum((line.unit_price.amount * line.quantity - line.discount for line in parsed), Decimal(0))
        return cls(customer_id, occurred_at, Money(total, cur), lines=parsed, **kw)

    def set_lines(self, lines: Any) -> None:
        """Replace the lines and make the amount their sum (in the order's currency), together; assigning
        ``lines`` alone checks them against the amount as it is."""
        parsed = _order_lines_only(lines, self.amount.currency)
        total = sum((line.unit_price.amount * line.quantity - line.discount for line in parsed), Decimal(0))
        object.__setattr__(self, "amount", _purchase_amount(Money(total, self.amount.currency), "amount"))
        object.__setattr__(self, "lines", parsed)


def _order_lines_only(lines: Any, currency: str) -> list[OrderLine]:
    """Lines checked on their own and against ``currency`` (no amount to add up to)."""
    parsed = _parse_lines(lines, "lines", currency)
    errors = [
        FieldError(f"lines[{i}].currency", "mixed_currency", f"{line.currency} differs from the order's {currency}")
        for i, line in enumerate(parsed)
        if line.currency != currency
    ]
    if errors:
        raise ValidationError(errors)
    return parsed


def _parse_lines(value: Any, field: str, currency: str | None) -> list[OrderLine]:
    if type(value) is not list and (isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__")):
        raise c.fail(field, "type", f"expected a list of order lines, got {type(value).__name__}")
    items = list(value)
    if len(items) > Order.MAX_LINES:
        raise c.fail(field, "too_long", f"at most {Order.MAX_LINES} lines, got {len(items)}")
    out: list[OrderLine] = []
    errors: list[FieldError] = []
    for i, v in enumerate(items):
        try:
            out.append(OrderLine.parse(v, f"{field}[{i}]", currency))
        except ValidationError as exc:
            errors += exc.errors
    if errors:
        raise ValidationError(errors)
    return out


def _order_lines(self: Any, value: Any, field: str) -> list[OrderLine]:
    """Each line checked; every line in the order's currency; their totals add up to the order's amount."""
    amount = getattr(self, "amount", None)
    currency = amount.currency if isinstance(amount, Money) else None
    lines = _parse_lines(value, field, currency)
    if not lines:
        return lines
    errors = [
        FieldError(f"{field}[{i}].currency", "mixed_currency", f"{line.currency} differs from the order's {currency}")
        for i, line in enumerate(lines)
        if currency is not None and line.currency != currency
    ]
    if errors:
        raise ValidationError(errors)
    if isinstance(amount, Money):
        total = sum((line.unit_price.amount * line.quantity - line.discount for line in lines), Decimal(0))
        if total != amount.amount:
            raise c.fail(
                "amount",
                "lines_mismatch",
                f"{amount} is not the sum of the {len(lines)} lines ({field}[0..{len(lines) - 1}] add up to {total} {currency})",
            )
    return lines


@attrs.define(on_setattr=_on_setattr)
class Product(Entity):
    """An item of the catalog that order lines sell: ``sku`` (unique in the store), ``name``, a ``category``
    path like ``"Tea/Green"`` (``{"category": {"startswith": "Tea/"}}`` selects a branch), the ``unit`` a
    quantity counts (``piece``, ``kg``, ``hour``...), ``active`` (an inactive product stays on old orders) and
    ``custom`` fields. Products are shared reference data, not personal data.

    >>> Product("TEA-001", "Sencha 100 g", category=" Tea / Green ").category
    'Tea/Green'
    """

    sku: str
    name: str
    category: str | None = None
    unit: str = "piece"
    active: bool = True
    custom: dict[str, Any] = attrs.field(factory=dict)

    _CHECKS: ClassVar[dict[str, c.Checker]] = {
        "sku": lambda v, f: c.text(v, f, required=True, max_len=100).strip(),
        "name": c.name,
        "category": c.category,
        "unit": lambda v, f: c.text(v, f, required=True, max_len=20),
        "active": c.boolean,
        "custom": c.json_dict,
    }


@attrs.define(on_setattr=_on_setattr)
class Task(Entity):
    """A to-do with a due time: a follow-up call, a reminder."""

    title: str
    due_at: dt.datetime
    assignee_id: str | None = None
    related_id: str | None = None
    done: bool = False
    custom: dict[str, Any] = attrs.field(factory=dict)

    _CHECKS: ClassVar[dict[str, c.Checker]] = {
        "title": lambda v, f: c.text(v, f, required=True, max_len=500),
        "due_at": c.utc,
        "assignee_id": c.opt_id,
        "related_id": c.opt_id,
        "done": c.boolean,
        "custom": c.json_dict,
    }

    def is_overdue(self, now: dt.datetime | None = None) -> bool:
        return not self.done and (now or utcnow()) > self.due_at


def _survey_score(self: Any, value: Any, field: str) -> Any:
    """A whole number in the survey's scale (csat 1..5, nps 0..10), or None (sent, not answered yet)."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise c.fail(field, "type", f"expected a whole number, got {type(value).__name__}")
    low, high = Survey.SCALES.get(str(getattr(self, "kind", "")), (0, 10))  # an unknown kind: reported under "kind"
    if not low <= value <= high:
        raise c.fail(field, "out_of_range", f"{quote(value)} is outside {low}..{high}")
    return int(value)


def _survey_answered_at(self: Any, value: Any, field: str) -> Any:
    """When the answer came: required when a score is given, absent otherwise, never before ``sent_at``."""
    value = c.opt_utc(value, field)
    answered = self.score is not None  # read even for None (so the plan never skips this check)
    if value is None:
        if answered:
            raise c.fail(field, "required", "is required when a score is given")
        return None
    if not answered:
        raise c.fail(field, "invalid", "needs a score (a survey not answered yet has no answered_at)")
    sent = getattr(self, "sent_at", None)
    if isinstance(sent, dt.datetime) and sent.tzinfo is not None and value < sent:
        raise c.fail(field, "out_of_range", f"{value.isoformat()} is before sent_at {sent.isoformat()}")
    return value


@attrs.define(on_setattr=_on_setattr)
class Survey(Entity):
    """A satisfaction survey sent to a customer: CSAT (1..5) or NPS (0..10), optionally about a ticket or an
    interaction and the agent (``user_id``) rated. ``score`` None: sent, not answered yet; answer it with
    :meth:`answer`, which sets the score, the comment and ``answered_at`` together.

    >>> import datetime as dt
    >>> s = Survey("c1", "csat", sent_at=dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC))
    >>> s.score is None, s.answered_at is None
    (True, True)
    >>> s.answer(4, "quick and kind", at=dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC)); s.score, s.answered_at.hour
    (4, 10)
    >>> try:
    ...     Survey("c1", "nps", score=11, sent_at=s.sent_at, answered_at=s.sent_at)
    ... except ValidationError as exc:
    ...     print(exc.fields, exc.errors[0].code)
    ['score'] out_of_range
    """

    KINDS: ClassVar[tuple[str, ...]] = ("csat", "nps")
    #: The scores each kind allows (inclusive).
    SCALES: ClassVar[dict[str, tuple[int, int]]] = {"csat": (1, 5), "nps": (0, 10)}

    customer_id: str
    kind: str
    sent_at: dt.datetime
    score: int | None = None
    comment: str = ""
    ticket_id: str | None = None
    interaction_id: str | None = None
    user_id: str | None = None
    answered_at: dt.datetime | None = None
    custom: dict[str, Any] = attrs.field(factory=dict)

    _CHECKS: ClassVar[dict[str, c.Checker]] = {
        "customer_id": c.req_id,
        "kind": c.choice(KINDS),
        "sent_at": c.utc,
        "comment": lambda v, f: c.text(v, f, max_len=5000),
        "ticket_id": c.opt_id,
        "interaction_id": c.opt_id,
        "user_id": c.opt_id,
        "custom": c.json_dict,
    }

    @classmethod
    def _self_check(cls, name: str) -> Any:
        if name == "score":
            return _survey_score
        if name == "answered_at":
            return _survey_answered_at
        return super()._self_check(name)

    @classmethod
    def _check_order(cls) -> list[str]:
        return [*cls._CHECKS, "score", "answered_at", *cls._BASE_CHECKS]

    def answer(self, score: int, comment: str = "", *, at: dt.datetime | None = None) -> None:
        """Record the answer: ``score`` in the kind's scale, an optional ``comment``, answered ``at`` (now)."""
        when = c.utc(at, "at") if at is not None else utcnow()
        checked = _survey_score(self, score, "score")
        if checked is None:
            raise ValidationError([FieldError("score", "required", "an answer needs a score")])
        text = c.text(comment, "comment", max_len=5000)
        if when < self.sent_at:
            raise c.fail("answered_at", "out_of_range", f"{when.isoformat()} is before sent_at {self.sent_at.isoformat()}")
        object.__setattr__(self, "score", checked)
        object.__setattr__(self, "comment", text)
        object.__setattr__(self, "answered_at", when)

    @property
    def is_answered(self) -> bool:
        return self.score is not None


def _campaign_money(self: Any, value: Any, field: str) -> Any:
    """A budget or spend: Money that is not negative, in the currency of the campaign's other amount."""
    if value is None:
        return None
    money = _money(value, field)
    if money.amount < 0:
        raise c.fail(field, "negative", f"{money} is negative")
    other = getattr(self, "budget" if field == "spend" else "spend", None)
    if isinstance(other, Money) and other.currency != money.currency:
        raise c.fail(field, "currency_mismatch", f"{money.currency} differs from the campaign's {other.currency}")
    return money


def _campaign_end(self: Any, value: Any, field: str) -> Any:
    value = c.opt_date(value, field)
    start = getattr(self, "start", None)
    if value is not None and isinstance(start, dt.date) and value < start:
        raise c.fail(field, "out_of_range", f"{value.isoformat()} is before start {start.isoformat()}")
    return value


def _window_days(value: Any, field: str) -> Any:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 3660:
        raise c.fail(field, "out_of_range", f"{quote(value)} is not a whole number of days in 0..3660")
    return value


@attrs.define(on_setattr=_on_setattr)
class Campaign(Entity):
    """A marketing campaign on one ``channel`` (a consent channel: ``email``, ``sms``, ``phone``, ``mail``),
    run from ``start`` to ``end`` with a ``budget`` and the ``spend`` so far (Money, one currency), by
    ``owner_id``. Its members are :class:`CampaignMember` rows, their reactions :class:`CampaignResponse`
    rows. An order or won deal of a member within ``window_days`` after its ``attribution`` touch (its
    ``first`` or ``last`` response of kind sent, opened, clicked or replied before the conversion) is
    credited to the campaign (see docs/campaigns.md).

    >>> import datetime as dt
    >>> from pycrm.domain import Money
    >>> c = Campaign("Spring", "email", start=dt.date(2026, 3, 1), spend=Money("500", "EUR"))
    >>> c.status, c.window_days, c.attribution
    ('planned', 30, 'last')
    >>> try:
    ...     Campaign("Spring", "fax", start=dt.date(2026, 3, 1), end=dt.date(2026, 2, 1))
    ... except ValidationError as exc:
    ...     print(exc.fields)
    ['channel', 'end']
    """

    CHANNELS: ClassVar[tuple[str, ...]] = ("email", "sms", "phone", "mail")
    STATUSES: ClassVar[tuple[str, ...]] = ("planned", "active", "completed", "cancelled")
    ATTRIBUTIONS: ClassVar[tuple[str, ...]] = ("first", "last")

    name: str
    channel: str
    start: dt.date | None = None
    end: dt.date | None = None
    budget: Money | None = None
    spend: Money | None = None
    status: str = "planned"
    owner_id: str | None = None
    window_days: int = 30
    attribution: str = "last"

    _CHECKS: ClassVar[dict[str, c.Checker]] = {
        "name": lambda v, f: c.text(v, f, required=True, max_len=200),
        "channel": c.choice(CHANNELS),
        "start": c.opt_date,
        "status": c.choice(STATUSES),
        "owner_id": c.opt_id,
        "window_days": _window_days,
        "attribution": c.choice(ATTRIBUTIONS),
    }

    @classmethod
    def _self_check(cls, name: str) -> Any:
        if name in ("budget", "spend"):
            return _campaign_money
        if name == "end":
            return _campaign_end
        return super()._self_check(name)

    @classmethod
    def _check_order(cls) -> list[str]:
        return [*cls._CHECKS, "end", "budget", "spend", *cls._BASE_CHECKS]


@attrs.define(on_setattr=_on_setattr)
class CampaignMember(Entity):
    """One customer (and the contact reached, when the channel's consent is a contact's) in a campaign,
    since ``added_at``; ``state``: ``added`` (to contact), ``contacted``, ``responded``, ``converted``,
    ``removed`` (left: unsubscribed or taken out). Personal data: scoped, exported, erased and merged with
    its customer."""

    STATES: ClassVar[tuple[str, ...]] = ("added", "contacted", "responded", "converted", "removed")

    campaign_id: str
    customer_id: str
    added_at: dt.datetime
    contact_id: str | None = None
    state: str = "added"

    _CHECKS: ClassVar[dict[str, c.Checker]] = {
        "campaign_id": c.req_id,
        "customer_id": c.req_id,
        "added_at": c.utc,
        "contact_id": c.opt_id,
        "state": c.choice(STATES),
    }


@attrs.define(on_setattr=_on_setattr)
class CampaignResponse(Entity):
    """What happened to one member: ``kind`` one of sent, opened, clicked, replied, unsubscribed, bounced,
    ``at`` a time. Carries the member's campaign and customer (its scope)."""

    KINDS: ClassVar[tuple[str, ...]] = ("sent", "opened", "clicked", "replied", "unsubscribed", "bounced")
    #: The kinds that touch the member (attribution) and those that count as a response (response rate).
    TOUCHES: ClassVar[tuple[str, ...]] = ("sent", "opened", "clicked", "replied")
    RESPONSES: ClassVar[tuple[str, ...]] = ("opened", "clicked", "replied")

    member_id: str
    campaign_id: str
    customer_id: str
    kind: str
    at: dt.datetime

    _CHECKS: ClassVar[dict[str, c.Checker]] = {
        "member_id": c.req_id,
        "campaign_id": c.req_id,
        "customer_id": c.req_id,
        "kind": c.choice(KINDS),
        "at": c.utc,
    }


_SHA256 = re.compile(r"[0-9a-f]{64}")
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


def _sha256(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise c.fail(field, "invalid", f"expected 64 lowercase hex digits (a SHA-256), got {quote(value)}")
    return value


def _media_type(value: Any, field: str) -> str:
    if isinstance(value, str):
        value = value.strip().lower()
    if not isinstance(value, str) or not _MEDIA_TYPE.fullmatch(value):
        raise c.fail(field, "invalid", f"expected a media type such as 'application/pdf', got {quote(value)}")
    return value


def _size(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise c.fail(field, "type", "must be a whole number >= 0")
    return value


def _file_name(value: Any, field: str) -> Any:
    value = c.text(value, field, required=True, max_len=255)
    if "/" in value or "\\" in value or value in (".", ".."):
        raise c.fail(field, "invalid", f"a file name, without folders: {quote(value)}")
    return value


@attrs.define(on_setattr=_on_setattr)
class Attachment(Entity):
    """A file kept with a record (a contract, a photo, a voice note): its metadata. The content lives in the
    store's blob store under its SHA-256 (``s.attachments.add`` streams it there and fills ``size`` and
    ``sha256``). ``record_kind`` / ``record_id`` name the record it belongs to, ``customer_id`` that record's
    customer (its scope: an attachment is read like its customer).

    >>> a = Attachment("c1", "customers", "c1", "contract.pdf", "application/pdf", 4, "0" * 64)
    >>> a.media_type, a.size
    ('application/pdf', 4)
    >>> try:
    ...     Attachment("c1", "planets", "c1", "a/b", "pdf", -1, "xyz")
    ... except ValidationError as exc:
    ...     print(exc.fields)
    ['record_kind', 'name', 'media_type', 'size', 'sha256']
    """

    #: The kinds of record an attachment may belong to (each has a customer).
    RECORD_KINDS: ClassVar[tuple[str, ...]] = ("customers", "contacts", "opportunities", "tickets", "interactions", "orders")

    customer_id: str
    record_kind: str
    record_id: str
    name: str
    media_type: str
    size: int
    sha256: str
    uploaded_by: str | None = None

    _CHECKS: ClassVar[dict[str, c.Checker]] = {
        "customer_id": c.req_id,
        "record_kind": c.choice(RECORD_KINDS),
        "record_id": c.req_id,
        "name": _file_name,
        "media_type": _media_type,
        "size": _size,
        "sha256": _sha256,
        "uploaded_by": c.opt_id,
    }


ENTITY_REPOSITORIES = (
    "customers",
    "contacts",
    "opportunities",
    "tickets",
    "interactions",
    "orders",
    "tasks",
    "users",
    "surveys",
    "campaigns",
    "campaign_members",
    "campaign_responses",
    "products",
    "activities",
    "attachments",
)
ACTIONS = ("read", "create", "update", "delete", "export", "merge")
SCOPES = ("own", "team", "all")


@attrs.frozen
class Permission:
    """May do ``action`` on ``entity`` rows within ``scope`` (own / team / all)."""

    entity: str = attrs.field(validator=lambda i, a, v: _member(v, ("*", *ENTITY_REPOSITORIES), "entity"))
    action: str = attrs.field(validator=lambda i, a, v: _member(v, ("*", *ACTIONS), "action"))
    scope: str = attrs.field(default="all", validator=lambda i, a, v: _member(v, SCOPES, "scope"))


def _member(value: Any, options: tuple[str, ...], field: str) -> None:
    if not isinstance(value, str) or value not in options:
        raise c.fail(field, "invalid_choice", f"{quote(value)} is not one of {', '.join(options)}")


def _permissions(value: Any) -> tuple[Permission, ...]:
    out = []
    for i, p in enumerate(c.check_iterable("permissions", value)):
        if isinstance(p, Permission):
            out.append(p)
        elif isinstance(p, (tuple, list)) and 2 <= len(p) <= 3:
            out.append(Permission(*p))
        elif (
            isinstance(p, Mapping)
            and all(isinstance(k, str) for k in p)
            and {"entity", "action"} <= set(p) <= {"entity", "action", "scope"}
        ):
            out.append(Permission(**p))
        else:
            raise c.fail(
                f"permissions[{i}]", "type", f"expected a Permission, (entity, action[, scope]) or a mapping, got {quote(p)}"
            )
    return tuple(out)


def _role_name(value: Any) -> str:
    return c.text(value, "name", required=True, max_len=100)  # type: ignore[no-any-return]


@attrs.frozen
class Role:
    """A named set of permissions."""

    name: str = attrs.field(converter=_role_name)
    permissions: tuple[Permission, ...] = attrs.field(factory=tuple, converter=_permissions)


def _roles(value: Any, field: str) -> list[Any]:
    def one(v: Any, f: str) -> Any:
        if isinstance(v, Role):
            return v
        return c.text(v, f, required=True, max_len=100)

    return c.list_of(one)(value, field)  # type: ignore[no-any-return]


@attrs.define(on_setattr=_on_setattr)
class User(Entity):
    """Someone who works in the CRM. ``roles`` are Role objects or names of built-in roles."""

    name: str
    email: EmailAddress
    roles: list[Role | str] = attrs.field(factory=list)
    team_id: str | None = None

    _CHECKS: ClassVar[dict[str, c.Checker]] = {
        "name": c.name,
        "email": lambda v, f: EmailAddress.parse(v, f),
        "roles": _roles,
        "team_id": c.opt_id,
    }


_ENTITY_NAMES: dict[type, str] = {
    Customer: "customers",
    Contact: "contacts",
    Opportunity: "opportunities",
    Ticket: "tickets",
    Interaction: "interactions",
    Order: "orders",
    Task: "tasks",
    User: "users",
    Survey: "surveys",
    Campaign: "campaigns",
    CampaignMember: "campaign_members",
    CampaignResponse: "campaign_responses",
    Product: "products",
    Activity: "activities",
    Attachment: "attachments",
}
