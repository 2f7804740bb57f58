"""Rules as data: "when EVENT [if ...] [where ...] then ACTIONS", loaded, checked and run as an automation actor.

A rule is a mapping (from Python, a JSON or a TOML file)::

    {"name": "proposal follow-up",
     "when": "StageChanged",                      # an event class name (a base class such as "Updated" takes
                                                  # every subclass) or a custom event name ("vip.welcome")
     "if": {"to_stage": "proposal"},              # the event's own fields: a value, or {"in": [values]}
     "where": {"amount": {"gte": 1000}},          # the record the event is about, in pycrm's where syntax
     "then": [{"create_task": {"title": "Follow up {record.name}", "due_in_business_days": 2,
                               "assignee": "owner"}}]}

``about`` (a repository name) names the record's kind where the event does not (``Updated``, ``Assigned``,
a custom event) and restricts the rule to events about that repository.

Actions: ``create_task`` (``title`` with ``{record.<field>}`` placeholders for scalar fields; ``due_in_business_days``
or ``due_in_hours`` from the event's time; ``assignee``: ``"owner"``, a user id or ``{"assigner": name}``;
``related``: ``"record"`` (default), ``"customer"`` or None), ``assign_owner`` (a user id or
``{"assigner": name}``), ``set_field`` (``{field: value}``), ``move_to_stage`` (a stage of the deal's
pipeline), ``emit`` (a custom event name, or ``{"name": ..., "data": {...}}``, about the same record) and
``score_leads`` (``{}`` or ``{"where": {...}}``: refit the lead-scoring model on the store's closed deals and
store the open deals' ``win_probability``, as ``s.analytics.score_leads``; with too little history it does
nothing).

:func:`load_rules` checks everything it can when the rules are loaded -- events, fields, operators, actions,
placeholders, values, duplicate names -- and answers with one ValidationError listing every problem by path
(``rules[2].then[0].create_task.due_in_business_days``). It refuses rules that could trigger each other in a
loop (see :func:`loops`). :class:`Rules` runs them: one handler, ``pycrm.rules``, takes the delivered events;
each firing of a rule for an event happens once (a :class:`~pycrm.domain._events.RuleFired` marker with a
key made from the rule and the event is written with the actions, in one transaction, insert-if-absent), as
the automation actor (:data:`AUTOMATION`, or the host's own) whose id the audit trail shows.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import re
import string
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import attrs

from pycrm.domain import ENTITIES, Entity, Opportunity, Task, User
from pycrm.domain._checks import is_id
from pycrm.domain._events import EVENTS, CustomEvent, Deleted, Event, RuleFired, StageChanged
from pycrm.domain._machine import _PIPELINES, StageKind
from pycrm.errors import CRMError, FieldError, NotFound, ValidationError, quote

__all__ = [
    "AUTOMATION",
    "HANDLER_NAME",
    "MAX_ACTIONS",
    "MAX_RULES",
    "Calendar",
    "Rule",
    "Rules",
    "install_rules",
    "load_rules",
    "loops",
]

#: The actor rules run as, unless the host gives its own (with narrower rights, say).
AUTOMATION = User("Automation", email="automation@pycrm.example", roles=["admin"], id="automation")  # type: ignore[arg-type]
#: The name of the one handler :meth:`Rules.install` registers.
HANDLER_NAME = "pycrm.rules"
#: The most rules one set holds, and actions one rule runs.
MAX_RULES = 1000
MAX_ACTIONS = 20
#: The most values of an ``in`` condition; the largest rule text or file read.
MAX_IN = 100
MAX_SOURCE = 1_000_000
#: The most business days / hours a task may be due after its event.
MAX_DAYS = 365
MAX_HOURS = 24 * 365
_TITLE_MAX = 500

#: The field naming a record's person in charge, by repository.
OWNER_FIELDS: Mapping[str, str] = {
    "customers": "owner_id",
    "opportunities": "owner_id",
    "tickets": "assignee_id",
    "tasks": "assignee_id",
}
#: Fields ``set_field`` may not write: kept by the store, or changed only through a transition.
_FIXED = frozenset(
    {"id", "version", "created_at", "updated_at", "stage", "stage_history", "pipeline", "closed_at", "lost_reason"}
    | {"status_history", "first_response_at", "resolved_at"}
)
#: Fields ``set_field`` may not write on one kind (a ticket's status moves through its lifecycle).
_FIXED_BY_KIND: Mapping[str, frozenset[str]] = {"tickets": frozenset({"status"})}
#: Field types a title placeholder may show (their text is short and plain).
_SCALAR_TYPES = frozenset(
    {"str", "int", "bool", "Decimal", "dt.date", "dt.datetime", "Money", "TicketStatus", "TicketPriority", "EmailAddress"}
)
#: A TOML table header (``[[rules]]``), where JSON text would start with ``[{`` or ``[]``.
_TABLE = re.compile(r"\[\[?\s*[A-Za-z_]")
_KEYS = ("name", "when", "about", "if", "where", "then")
_ACTIONS = ("create_task", "assign_owner", "set_field", "move_to_stage", "emit", "score_leads")


class Calendar(Protocol):
    """What rules need of a business calendar (``pycrm.automation.BusinessCalendar``)."""

    def add_business_days(self, at: dt.datetime, n: int) -> dt.datetime: ...


#: An assigner a host registers by name: ``fn(session, record) -> user id`` (or an object with ``user_id``,
#: such as an ``Assignment``; None: nobody).
Assigner = Callable[[Any, Entity | None], Any]


# ---------------------------------------------------------------- the checked form of a rule


@attrs.frozen
class Assignee:
    """Who gets a task or a record: ``how`` is ``owner`` (the record's person in charge), ``user`` (``value``
    is a user id) or ``assigner`` (``value`` names an assigner registered with :class:`Rules`)."""

    how: str
    value: str | None = None


@attrs.frozen
class Action:
    """One checked action: ``type`` (create_task, assign_owner, set_field, move_to_stage, emit, score_leads), its ``path``
    in the rules (for errors) and its parameters."""

    type: str
    path: str
    title: tuple[tuple[str, str | None], ...] = ()  # (literal text, field shown after it or None)
    due_days: int | None = None
    due_hours: float | None = None
    assignee: Assignee | None = None
    related: str | None = "record"
    values: tuple[tuple[str, Any], ...] = ()
    stage: str = ""
    event: str = ""
    data: Mapping[str, Any] = attrs.field(factory=dict)
    where: Mapping[str, Any] | None = None


@attrs.frozen
class Rule:
    """A checked rule: ``name``; ``when`` the event class (None for a custom event, named by ``custom``);
    ``about`` the repository of its records (None: any, and no record is read); ``conditions`` on the
    event's fields: (field, allowed values); ``where`` on the record; ``actions``; ``index`` in its set."""

    name: str
    index: int
    when: type[Event] | None
    custom: str | None
    about: str | None
    conditions: tuple[tuple[str, tuple[Any, ...]], ...]
    where: Mapping[str, Any] | None
    actions: tuple[Action, ...]

    @property
    def path(self) -> str:
        return f"rules[{self.index}]"

    @property
    def reads_record(self) -> bool:
        """Whether firing reads the record the event is about (``where``, placeholders, owner, writes)."""
        if self.where is not None:
            return True
        for a in self.actions:
            if a.type in ("assign_owner", "set_field", "move_to_stage") or any(f for _, f in a.title):
                return True
            if a.related == "customer" or (a.assignee is not None and a.assignee.how == "owner"):
                return True
            if a.assignee is not None and a.assignee.how == "assigner" and self.about is not None:
                return True  # the assigner gets the record (None for a rule about no kind of record)
        return False

    def assigners(self) -> set[str]:
        return {a.assignee.value for a in self.actions if a.assignee and a.assignee.how == "assigner" and a.assignee.value}

    def matches(self, event: Event) -> bool:
        """Whether ``event`` triggers this rule (its type, its repository, its ``if`` conditions)."""
        if self.custom is not None:
            if not isinstance(event, CustomEvent) or event.name != self.custom:
                return False
        elif self.when is None or not isinstance(event, self.when):
            return False
        if self.about is not None and event.entity != self.about:
            return False
        data = event.payload if isinstance(event, CustomEvent) else None
        for field, allowed in self.conditions:
            value = data.get(field) if data is not None else getattr(event, field, None)
            if not _satisfied(value, allowed):
                return False
        return True


def _satisfied(value: Any, allowed: tuple[Any, ...]) -> bool:
    """A condition's verdict: a list-valued field (``Updated.fields``) matches when it holds an allowed value."""
    if isinstance(value, list | tuple):
        return any(_same(v, a) for v in value for a in allowed)
    return any(_same(value, a) for a in allowed)


def _same(value: Any, wanted: Any) -> bool:
    if isinstance(value, bool) or isinstance(wanted, bool):  # True is not 1 here
        return type(value) is type(wanted) and value == wanted
    return bool(value == wanted)


# ---------------------------------------------------------------- loading


def _source(source: Any) -> Any:
    """The rules of ``source``: a list of mappings, ``{"rules": [...]}``, JSON or TOML text, or a path."""
    if isinstance(source, Path) or (
        isinstance(source, str) and source.strip()[:1] not in ("[", "{") and "\n" not in source and "=" not in source
    ):
        path = Path(source)
        if path.suffix not in (".json", ".toml"):
            raise ValidationError([FieldError("source", "invalid_source", f"{quote(str(source))} is not a .json or .toml file")])
        try:
            size = path.stat().st_size
            if size > MAX_SOURCE:
                raise ValidationError([FieldError("source", "too_long", f"at most {MAX_SOURCE} bytes, got {size}")])
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValidationError(
                [FieldError("source", "unreadable", f"cannot read {quote(str(source))}: {exc.strerror}")]
            ) from None
        except UnicodeDecodeError:
            raise ValidationError([FieldError("source", "invalid_text", f"{quote(str(source))} is not UTF-8 text")]) from None
        return _parse(text, "toml" if path.suffix == ".toml" else "json")
    if isinstance(source, str):
        if len(source) > MAX_SOURCE:
            raise ValidationError([FieldError("source", "too_long", f"at most {MAX_SOURCE} characters, got {len(source)}")])
        stripped = source.lstrip()
        toml = stripped[:1] not in ("[", "{") or _TABLE.match(stripped) is not None
        return _parse(source, "toml" if toml else "json")
    return source


def _parse(text: str, fmt: str) -> Any:
    if fmt == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError([FieldError("source", "invalid_json", f"line {exc.lineno}: {exc.msg}")]) from None
        except RecursionError:
            raise ValidationError([FieldError("source", "invalid_json", "nested too deeply")]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError([FieldError("source", "invalid_toml", str(exc)[:200])]) from None


class _Checker:
    """Collects every problem of a rule set, by path."""

    def __init__(self, assigners: Iterable[str] | None, region: str | None):
        self.errors: list[FieldError] = []
        self.assigners = None if assigners is None else set(assigners)
        self.region = region
        self.quiet = False

    def fail(self, path: str, code: str, message: str) -> None:
        self.errors.append(FieldError(path, code, message))

    def rules(self, raw: Any) -> list[Rule]:
        if isinstance(raw, Mapping) and set(raw) == {"rules"}:
            raw = raw["rules"]
        if isinstance(raw, str | bytes | Mapping) or not isinstance(raw, Iterable):
            self.fail("rules", "type", f"expected a list of rules (or {{'rules': [...]}}), got {type(raw).__name__}")
            return []
        out: list[Rule] = []
        names: dict[str, int] = {}
        for i, item in enumerate(raw):
            if i >= MAX_RULES:
                self.fail("rules", "too_many", f"at most {MAX_RULES} rules")
                break
            rule = self.rule(i, item)
            if rule is None:
                continue
            if rule.name in names:
                self.fail(f"rules[{i}].name", "duplicate", f"{quote(rule.name)} also names rules[{names[rule.name]}]")
                continue
            names[rule.name] = i
            out.append(rule)
        return out

    def rule(self, i: int, item: Any) -> Rule | None:
        path = f"rules[{i}]"
        if not isinstance(item, Mapping):
            self.fail(path, "type", f"expected a mapping, got {type(item).__name__}")
            return None
        before = len(self.errors)
        for k in item:
            if k not in _KEYS:
                self.fail(
                    f"{path}.{k}" if isinstance(k, str) else path, "unknown_key", f"{quote(k)} is not one of {', '.join(_KEYS)}"
                )
        name = item.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            self.fail(
                f"{path}.name", "required" if name is None else "invalid_name", "a rule needs a name of 1 to 100 characters"
            )
        when, custom = self.when(f"{path}.when", item.get("when"))
        self.quiet = when is None and custom is None  # the event is wrong: what needs its record is not told again
        about = self.about(path, item.get("about"), when)
        kind = ENTITIES[about] if about is not None else None
        conditions = self.conditions(f"{path}.if", item.get("if"), when, custom)
        where = self.where(f"{path}.where", item.get("where"), kind)
        actions = self.actions(f"{path}.then", item.get("then"), kind, when)
        if len(self.errors) > before:
            return None
        assert isinstance(name, str)
        rule = Rule(name, i, when, custom, about, conditions, where, actions)
        if rule.reads_record and when is not None and issubclass(when, Deleted):
            self.fail(path, "record_gone", f"{when.__name__} is about a deleted record: the rule cannot read or change it")
            return None
        return rule

    def when(self, path: str, value: Any) -> tuple[type[Event] | None, str | None]:
        if not isinstance(value, str):
            self.fail(
                path, "required" if value is None else "type", "name an event (StageChanged, Updated, ...) or a custom event"
            )
            return None, None
        if value in EVENTS:
            if EVENTS[value] is CustomEvent:
                return CustomEvent, None
            return EVENTS[value], None
        if value[:1].isupper():
            self.fail(path, "unknown_event", f"no event named {quote(value)} (custom event names are lower case)")
            return None, None
        try:
            CustomEvent(name=value)
        except ValidationError as exc:
            self.fail(path, "unknown_event", exc.errors[0].message)
            return None, None
        return None, value

    def about(self, path: str, value: Any, when: type[Event] | None) -> str | None:
        fixed = when.about if when is not None else None
        if value is None:
            return fixed
        if not isinstance(value, str) or value not in ENTITIES:
            self.fail(f"{path}.about", "unknown_entity", f"{quote(value)} is not a repository ({', '.join(ENTITIES)})")
            return fixed
        if fixed is not None and value != fixed:
            self.fail(f"{path}.about", "conflict", f"{when.__name__ if when else ''} events are about {fixed}, not {value}")
        return value

    def conditions(
        self, path: str, value: Any, when: type[Event] | None, custom: str | None
    ) -> tuple[tuple[str, tuple[Any, ...]], ...]:
        if value is None:
            return ()
        if not isinstance(value, Mapping):
            self.fail(path, "type", f"expected a mapping of event fields to values, got {type(value).__name__}")
            return ()
        fields: dict[str, attrs.Attribute[Any]] = {}
        is_custom = custom is not None or when is CustomEvent
        if when is not None and not is_custom:
            base = {a.name for a in attrs.fields(Event)}
            fields = {a.name: a for a in attrs.fields(when) if a.name not in base}
        out: list[tuple[str, tuple[Any, ...]]] = []
        for field, cond in value.items():
            at = f"{path}.{field}"
            if not isinstance(field, str) or not field or len(field) > 64:
                self.fail(path, "invalid_field", f"{quote(field)} is not a field name")
                continue
            if not is_custom and when is not None:
                attr = fields.get(field)
                if attr is None:
                    known = ", ".join(fields) or "none"
                    self.fail(at, "unknown_field", f"{when.__name__} has no field {field!r} (its fields: {known})")
                    continue
                if attr.metadata.get("time"):
                    self.fail(at, "unsupported", f"{field!r} is a time: rules compare names and numbers only")
                    continue
            allowed = self.values(at, cond)
            if allowed is not None:
                out.append((field, allowed))
        return tuple(out)

    def values(self, path: str, cond: Any) -> tuple[Any, ...] | None:
        if isinstance(cond, Mapping):
            if set(cond) != {"in"}:
                self.fail(path, "unknown_operator", f"expected a value or {{'in': [values]}}, got keys {sorted(map(str, cond))}")
                return None
            items = cond["in"]
            if isinstance(items, str | bytes | Mapping) or not isinstance(items, Sequence) or not 0 < len(items) <= MAX_IN:
                self.fail(f"{path}.in", "type", f"expected a list of 1 to {MAX_IN} values")
                return None
        else:
            items = [cond]
        for j, v in enumerate(items):
            if v is not None and not isinstance(v, str | int | float | bool):
                where = f"{path}.in[{j}]" if isinstance(cond, Mapping) else path
                self.fail(where, "type", f"expected a text, a number, true/false or null, got {type(v).__name__}")
                return None
        return tuple(items)

    def where(self, path: str, value: Any, kind: type[Entity] | None) -> Mapping[str, Any] | None:
        if value is None:
            return None
        if kind is None:
            if not self.quiet:
                self.fail(path, "needs_about", "this event names no kind of record: give the rule an 'about' repository")
            return None
        if not isinstance(value, Mapping) or not value:
            self.fail(path, "type", "expected a non-empty mapping in pycrm's where syntax")
            return None
        if "id" in value:
            self.fail(f"{path}.id", "unsupported", "the rule's record is the event's: 'id' is set by the rule")
            return None
        from pycrm.storage._where import parse_where

        try:
            parse_where(kind, value, region=self.region)
        except ValidationError as exc:  # its paths start at "where"
            rule = path.removesuffix(".where")
            self.errors += [
                FieldError(f"{rule}.{e.field}" if e.field.startswith("where") else f"{path}.{e.field}", e.code, e.message)
                for e in exc.errors
            ]
            return None
        return dict(value)

    def actions(self, path: str, value: Any, kind: type[Entity] | None, when: type[Event] | None) -> tuple[Action, ...]:
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence) or not value:
            self.fail(path, "required" if value is None else "type", "expected a list of 1 or more actions")
            return ()
        if len(value) > MAX_ACTIONS:
            self.fail(path, "too_many", f"at most {MAX_ACTIONS} actions a rule")
            return ()
        out = []
        for j, item in enumerate(value):
            at = f"{path}[{j}]"
            if not isinstance(item, Mapping) or len(item) != 1:
                self.fail(at, "type", f"expected one action as {{name: parameters}} ({', '.join(_ACTIONS)})")
                continue
            ((name, params),) = item.items()
            if name not in _ACTIONS:
                self.fail(
                    f"{at}.{name}" if isinstance(name, str) else at,
                    "unknown_action",
                    f"{quote(name)} is not one of {', '.join(_ACTIONS)}",
                )
                continue
            action = getattr(self, name)(f"{at}.{name}", params, kind, when)
            if action is not None:
                out.append(action)
        return tuple(out)

    def _needs(self, path: str, kind: type[Entity] | None, what: str) -> bool:
        if kind is None:
            if not self.quiet:
                self.fail(path, "needs_about", f"{what} needs the rule's record: give the rule an 'about' repository")
            return False
        return True

    def _params(self, path: str, params: Any, allowed: Sequence[str]) -> Mapping[str, Any] | None:
        if not isinstance(params, Mapping):
            self.fail(path, "type", f"expected a mapping ({', '.join(allowed)})")
            return None
        ok = True
        for k in params:
            if k not in allowed:
                self.fail(f"{path}.{k}", "unknown_key", f"{quote(k)} is not one of {', '.join(allowed)}")
                ok = False
        return params if ok else None

    def assignee(self, path: str, value: Any, kind: type[Entity] | None, owner_ok: bool) -> Assignee | None:
        if value == "owner" and owner_ok:
            if not self._needs(path, kind, "'owner'"):
                return None
            assert kind is not None
            if kind.entity_name() not in OWNER_FIELDS:
                self.fail(path, "no_owner", f"{kind.entity_name()} have no owner ({', '.join(OWNER_FIELDS)} do)")
                return None
            return Assignee("owner")
        if isinstance(value, Mapping):
            if set(value) != {"assigner"} or not isinstance(value["assigner"], str):
                self.fail(path, "type", "expected {'assigner': name}")
                return None
            name = value["assigner"]
            if self.assigners is not None and name not in self.assigners:
                known = ", ".join(sorted(self.assigners)) or "none registered"
                self.fail(f"{path}.assigner", "unknown_assigner", f"no assigner named {quote(name)} ({known})")
                return None
            return Assignee("assigner", name)
        if isinstance(value, str) and is_id(value) and value != "owner":
            return Assignee("user", value)
        forms = "'owner', a user id or {'assigner': name}" if owner_ok else "a user id or {'assigner': name}"
        self.fail(path, "invalid_assignee", f"{quote(value)} is not an assignee ({forms})")
        return None

    def create_task(self, path: str, params: Any, kind: type[Entity] | None, when: type[Event] | None) -> Action | None:
        p = self._params(path, params, ("title", "due_in_business_days", "due_in_hours", "assignee", "related"))
        if p is None:
            return None
        before = len(self.errors)
        title = self.template(f"{path}.title", p.get("title"), kind)
        days = hours = None
        if ("due_in_business_days" in p) == ("due_in_hours" in p):
            self.fail(f"{path}.due_in_business_days", "required", "give due_in_business_days or due_in_hours (one of them)")
        elif "due_in_business_days" in p:
            days = p["due_in_business_days"]
            if type(days) is not int or not 0 <= days <= MAX_DAYS:
                self.fail(
                    f"{path}.due_in_business_days", "range", f"must be a whole number from 0 to {MAX_DAYS}, got {quote(days)}"
                )
        else:
            hours = p["due_in_hours"]
            if not isinstance(hours, int | float) or isinstance(hours, bool) or not 0 <= hours <= MAX_HOURS:
                self.fail(f"{path}.due_in_hours", "range", f"must be a number from 0 to {MAX_HOURS}, got {quote(hours)}")
        assignee = self.assignee(f"{path}.assignee", p["assignee"], kind, True) if p.get("assignee") is not None else None
        related = p.get("related", "record")
        if related not in ("record", "customer", None):
            self.fail(f"{path}.related", "invalid_choice", f"{quote(related)} is not 'record', 'customer' or null")
        elif related == "customer" and self._needs(f"{path}.related", kind, "'customer'"):
            assert kind is not None
            if kind is not ENTITIES["customers"] and "customer_id" not in attrs.fields_dict(kind):
                self.fail(f"{path}.related", "no_customer", f"{kind.entity_name()} belong to no customer")
        if len(self.errors) > before:
            return None
        return Action("create_task", path, title=title, due_days=days, due_hours=hours, assignee=assignee, related=related)

    def template(self, path: str, value: Any, kind: type[Entity] | None) -> tuple[tuple[str, str | None], ...]:
        if not isinstance(value, str) or not value.strip() or len(value) > _TITLE_MAX:
            self.fail(path, "required" if value is None else "invalid_text", f"a title of 1 to {_TITLE_MAX} characters")
            return ()
        try:
            parts = list(string.Formatter().parse(value))
        except ValueError as exc:
            self.fail(path, "invalid_template", f"{exc} (write {{{{ and }}}} for braces)")
            return ()
        out: list[tuple[str, str | None]] = []
        for literal, field, spec, conversion in parts:
            if field is None:
                out.append((literal, None))
                continue
            shown = "{" + field + "}"
            if spec or conversion:
                self.fail(path, "invalid_placeholder", f"{shown}: no conversions or format specs, just {{record.<field>}}")
                continue
            name = field[7:] if field.startswith("record.") else None
            if name is None:
                self.fail(path, "invalid_placeholder", f"{quote(shown)} is not a placeholder: use {{record.<field>}}")
                continue
            if not self._needs(path, kind, f"the placeholder {shown}"):
                continue
            assert kind is not None
            attr = attrs.fields_dict(kind).get(name)
            if attr is None or name.startswith("_"):
                self.fail(path, "unknown_field", f"{shown}: {kind.entity_name()} have no field {name!r}")
                continue
            if str(attr.type).replace(" | None", "") not in _SCALAR_TYPES:
                self.fail(path, "invalid_placeholder", f"{shown}: only simple fields (text, numbers, dates) can be shown")
                continue
            out.append((literal, name))
        return tuple(out)

    def assign_owner(self, path: str, params: Any, kind: type[Entity] | None, when: type[Event] | None) -> Action | None:
        if not self._needs(path, kind, "assign_owner"):
            return None
        assert kind is not None
        if kind.entity_name() not in OWNER_FIELDS:
            self.fail(path, "no_owner", f"{kind.entity_name()} have no owner ({', '.join(OWNER_FIELDS)} do)")
            return None
        assignee = self.assignee(path, params, kind, False)
        return None if assignee is None else Action("assign_owner", path, assignee=assignee)

    def set_field(self, path: str, params: Any, kind: type[Entity] | None, when: type[Event] | None) -> Action | None:
        if not self._needs(path, kind, "set_field"):
            return None
        assert kind is not None
        if not isinstance(params, Mapping) or not params:
            self.fail(path, "type", "expected {field: value, ...}")
            return None
        fields = attrs.fields_dict(kind)
        fixed = _FIXED | _FIXED_BY_KIND.get(kind.entity_name(), frozenset())
        values: list[tuple[str, Any]] = []
        for field, value in params.items():
            at = f"{path}.{field}"
            if not isinstance(field, str):
                self.fail(path, "invalid_field", f"{quote(field)} is not a field name")
                continue
            if field.startswith("custom."):
                key = field[7:]
                if "custom" not in fields:
                    self.fail(at, "unknown_field", f"{kind.entity_name()} have no custom fields")
                    continue
                if not key or len(key) > 64:
                    self.fail(at, "invalid_field", "a custom field needs a name of 1 to 64 characters")
                    continue
                try:
                    json.dumps(value, allow_nan=False)
                except (TypeError, ValueError):
                    self.fail(at, "type", f"not a JSON value: {quote(value)}")
                    continue
                values.append((field, value))
                continue
            if field not in fields or field.startswith("_"):
                self.fail(at, "unknown_field", f"{kind.entity_name()} have no field {field!r}")
                continue
            if field in fixed:
                how = "move_to_stage" if field == "stage" else "the store or a transition"
                self.fail(at, "read_only", f"{field!r} is set by {how}, not by set_field")
                continue
            check = kind._self_check(field)
            plain = getattr(check, "check", None)
            if plain is not None and value is not None:
                try:
                    value = plain(value, field)
                except ValidationError as exc:
                    self.errors += [FieldError(at, e.code, e.message) for e in exc.errors]
                    continue
            values.append((field, value))
        if len(values) != len(params):
            return None
        return Action("set_field", path, values=tuple(values))

    def move_to_stage(self, path: str, params: Any, kind: type[Entity] | None, when: type[Event] | None) -> Action | None:
        if kind is not Opportunity:
            self.fail(path, "unsupported", "move_to_stage moves deals: the rule must be about opportunities")
            return None
        known = {s.name for p in _PIPELINES.values() for s in p.stages}
        if not isinstance(params, str) or params not in known:
            self.fail(path, "unknown_stage", f"{quote(params)} is not a stage of any registered pipeline")
            return None
        if all(s.kind is StageKind.LOST for p in _PIPELINES.values() for s in p.stages if s.name == params):
            self.fail(path, "unsupported", f"{params!r} closes a deal as lost, which needs a reason: not a rule's move")
            return None
        return Action("move_to_stage", path, stage=params)

    def score_leads(self, path: str, params: Any, kind: type[Entity] | None, when: type[Event] | None) -> Action | None:
        p = self._params(path, {} if params is None else params, ("where",))
        if p is None:
            return None
        where = p.get("where")
        if where is not None:
            before = len(self.errors)
            self.where(f"{path}.where", where, Opportunity)
            if len(self.errors) > before:
                return None
        return Action("score_leads", path, where=None if where is None else dict(where))

    def emit(self, path: str, params: Any, kind: type[Entity] | None, when: type[Event] | None) -> Action | None:
        if isinstance(params, str):
            params = {"name": params}
        p = self._params(path, params, ("name", "data"))
        if p is None:
            return None
        try:
            event = CustomEvent(name=p.get("name", ""), data=p.get("data"))
        except ValidationError as exc:
            self.errors += exc.prefixed(path).errors
            return None
        return Action("emit", path, event=event.name, data=event.payload)


def load_rules(source: Any, *, assigners: Iterable[str] | None = None, region: str | None = None) -> list[Rule]:
    """The checked rules of ``source``: a list of mappings (or ``{"rules": [...]}``), JSON or TOML text, or
    the path of a ``.json`` / ``.toml`` file. ``assigners``: the names of the assigners that will be there
    (None: not checked here); ``region``: for phone numbers in ``where``. Every problem, loops included (see
    :func:`loops`), is in one ValidationError, each naming its path (``rules[2].then[0].create_task.title``)."""
    if region is not None:
        from pycrm.domain._values import check_region

        region = check_region(region, "region")
    if assigners is not None:
        from pycrm.domain._checks import check_names

        assigners = check_names("assigners", list(assigners) if isinstance(assigners, dict) else assigners, one_ok=False)
    checker = _Checker(assigners, region)
    rules = checker.rules(_source(source))
    if not checker.errors:
        checker.errors += loops(rules)
    if checker.errors:
        raise ValidationError(checker.errors)
    return rules


# ---------------------------------------------------------------- loops


@attrs.frozen
class _Raised:
    """An event a rule's actions raise: its ``cls`` (or the ``custom`` event name), the repository it is
    about (None: unknown), and what the action fixes of its data (``data``: exact values; ``fields``: the
    most an ``Updated`` names)."""

    cls: type[Event]
    custom: str | None
    entity: str | None
    data: Mapping[str, Any] = attrs.field(factory=dict)
    fields: frozenset[str] | None = None


def _raises(rule: Rule) -> list[_Raised]:
    """What firing ``rule`` may raise (more than it will, never less)."""
    about = rule.about
    out = [_Raised(RuleFired, None, about, {"rule": rule.name})]
    for a in rule.actions:
        if a.type == "create_task":
            out.append(_Raised(EVENTS["TaskCreated"], None, "tasks"))
        elif a.type == "emit":
            out.append(_Raised(CustomEvent, a.event, about, dict(a.data)))
        elif a.type == "score_leads":
            out.append(_Raised(_updated("opportunities"), None, "opportunities", {}, frozenset({"win_probability", "scored_at"})))
        elif about is not None:
            updated = _updated(about)
            if a.type == "assign_owner":
                owner = OWNER_FIELDS[about]
                to = {"to_user": a.assignee.value} if a.assignee and a.assignee.how == "user" else {}
                out += [
                    _Raised(updated, None, about, {}, frozenset({owner})),
                    _Raised(EVENTS["Assigned"], None, about, {"field": owner, **to}),
                ]
            elif a.type == "set_field":
                names = frozenset(n for f, _ in a.values for n in ((f, "custom") if f.startswith("custom.") else (f,)))
                out.append(_Raised(updated, None, about, {}, names))
                person = OWNER_FIELDS.get(about)
                if person in names:
                    out.append(_Raised(EVENTS["Assigned"], None, about, {"field": person}))
                if about == "tasks" and "done" in names:
                    out.append(_Raised(EVENTS["TaskCompleted"], None, about))
            elif a.type == "move_to_stage":
                out += [_Raised(updated, None, about), _Raised(StageChanged, None, about, {"to_stage": a.stage})]
                if any(s.kind is StageKind.WON for p in _PIPELINES.values() for s in p.stages if s.name == a.stage):
                    out.append(_Raised(EVENTS["DealWon"], None, about, {"stage": a.stage}))
    return out


def _updated(repository: str) -> type[Event]:
    from pycrm.domain._events import _UPDATED

    return _UPDATED[ENTITIES[repository]]


def _may_trigger(raised: _Raised, rule: Rule) -> bool:
    if rule.custom is not None:
        if raised.custom != rule.custom:
            return False
    elif rule.when is None or not issubclass(raised.cls, rule.when):
        return False
    if rule.about is not None and raised.entity is not None and raised.entity != rule.about:
        return False
    for field, allowed in rule.conditions:
        if field in raised.data and not _satisfied(raised.data[field], allowed):
            return False
        if field == "fields" and raised.fields is not None and not any(f in raised.fields for f in allowed):
            return False
    return True


def loops(rules: Sequence[Rule]) -> list[FieldError]:
    """One error for each group of rules that could trigger each other (or itself) in a loop.

    Conservative: a rule's actions raise what :func:`~pycrm.domain._events.derive` says such a write raises
    (an update raises ``<Kind>Updated``, ``Assigned`` when it changes the owner, ``StageChanged`` and ``DealWon``
    when it moves a deal, ...), every firing raises ``RuleFired``, and a rule listens to a raised event when
    its ``when`` takes the event's class (``Updated`` takes ``CustomerUpdated``) or custom name, unless its
    ``about`` names another repository or its ``if`` excludes what the action fixes of the event (the stage a
    move goes to, the fields a ``set_field`` writes, an emitted event's data). ``where`` is not considered: a
    loop its ``where`` would break at run time is still refused."""
    by_when: dict[Any, list[int]] = {}
    for i, r in enumerate(rules):
        by_when.setdefault(r.custom if r.custom is not None else r.when, []).append(i)
    edges: list[list[int]] = []
    for r in rules:
        targets: set[int] = set()
        for raised in _raises(r):
            keys: list[Any] = [raised.custom] if raised.custom is not None else []
            keys += list(raised.cls.__mro__)
            for key in keys:
                targets.update(j for j in by_when.get(key, ()) if _may_trigger(raised, rules[j]))
        edges.append(sorted(targets))
    errors = []
    for group in _cycles(edges):
        names = [rules[i].name for i in group]
        loop = " -> ".join([*names, names[0]])
        what = (
            f"rule {names[0]!r} triggers itself" if len(group) == 1 else f"rules {', '.join(map(repr, names))} trigger each other"
        )
        errors.append(FieldError(rules[group[0]].path, "loop", f"{what} in a loop ({loop})"))
    return errors


def _cycles(edges: Sequence[Sequence[int]]) -> list[list[int]]:
    """For each strongly connected group of nodes with a cycle, one cycle through its first node (Tarjan's
    algorithm, iterative: linear in nodes and edges)."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    stack: list[int] = []
    on: set[int] = set()
    groups: list[list[int]] = []
    counter = 0
    for root in range(len(edges)):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, k = work.pop()
            if k == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on.add(node)
            if k < len(edges[node]):
                work.append((node, k + 1))
                nxt = edges[node][k]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on:
                    low[node] = min(low[node], index[nxt])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    x = stack.pop()
                    on.discard(x)
                    group.append(x)
                    if x == node:
                        break
                if len(group) > 1 or node in edges[node]:
                    groups.append(_cycle_in(sorted(group), edges))
    return sorted(groups)


def _cycle_in(group: list[int], edges: Sequence[Sequence[int]]) -> list[int]:
    """A shortest cycle through ``group[0]`` inside the group (breadth first)."""
    start, inside = group[0], set(group)
    if start in edges[start]:
        return [start]
    came: dict[int, int] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for m in edges[node]:
                if m == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came[path[-1]])
                    return path[::-1]
                if m in inside and m not in came:
                    came[m] = node
                    nxt.append(m)
        frontier = nxt
    return group  # pragma: no cover  # a strongly connected group has one


# ---------------------------------------------------------------- running


def firing_key(rule: str, cause: str) -> str:
    """The idempotency key of the marker of ``rule`` firing for the event ``cause`` (the same every time)."""
    return hashlib.sha256(f"{rule}\x00{cause}".encode()).hexdigest()[:32]


class Rules:
    """Run ``rules`` (a source :func:`load_rules` reads) on the events ``crm.dispatch()`` delivers, as ``actor``
    (default :data:`AUTOMATION`). ``calendar``: for ``due_in_business_days`` (default: Monday to Friday, UTC);
    ``assigners``: ``{name: fn(session, record) -> user id | None}`` for ``{"assigner": name}``.
    :meth:`install` registers the handler (named ``pycrm.rules``)."""

    def __init__(
        self,
        crm: Any,
        rules: Any,
        *,
        actor: User | None = None,
        calendar: Calendar | None = None,
        assigners: Mapping[str, Assigner] | None = None,
    ):
        from pycrm._crm import CRM

        if not isinstance(crm, CRM):
            raise ValidationError([FieldError("crm", "type", f"expected a CRM (pycrm.open), got {type(crm).__name__}")])
        if not crm.outbox_on:
            raise CRMError("rules run on the events of the outbox: open the store with pycrm.open(..., outbox=True)")
        if actor is not None and not isinstance(actor, User):
            raise ValidationError([FieldError("actor", "type", f"expected a User, got {type(actor).__name__}")])
        if actor is not None and actor.id is None:
            raise ValidationError(
                [FieldError("actor.id", "required", "the automation actor needs an id (the audit trail shows it)")]
            )
        if calendar is not None and not callable(getattr(calendar, "add_business_days", None)):
            raise ValidationError([FieldError("calendar", "type", "expected a calendar with add_business_days(at, n)")])
        if assigners is not None and not isinstance(assigners, Mapping):
            raise ValidationError([FieldError("assigners", "type", "expected a mapping of names to callables")])
        for name, fn in (assigners or {}).items():
            if not isinstance(name, str) or not callable(fn):
                raise ValidationError([FieldError(f"assigners.{name}", "type", "expected a name and a callable")])
        self.crm = crm
        self.actor = actor or AUTOMATION
        self.assigners: dict[str, Assigner] = dict(assigners or {})
        if calendar is None:
            from pycrm.automation._calendar import BusinessCalendar

            calendar = BusinessCalendar()
        self.calendar: Calendar = calendar
        if isinstance(rules, list) and rules and all(isinstance(r, Rule) for r in rules):
            missing = sorted({n for r in rules for n in r.assigners()} - set(self.assigners))
            if missing:
                raise ValidationError(
                    [FieldError("assigners", "unknown_assigner", f"the rules name assigners not given: {missing}")]
                )
            errors = loops(rules)
            if errors:
                raise ValidationError(errors)
            self.rules: list[Rule] = list(rules)
        else:
            self.rules = load_rules(rules, assigners=self.assigners, region=crm.default_region)
        self._by_when: dict[Any, list[Rule]] = {}
        for r in self.rules:
            self._by_when.setdefault(r.custom if r.custom is not None else r.when, []).append(r)

    def install(self) -> Rules:
        """Register the handler ``pycrm.rules`` on ``crm.handlers`` (for every event type the rules name)."""
        types: list[type[Event] | str] = [k for k in self._by_when if k is not None]
        if types:
            self.crm.handlers.add(self.handle, *types, name=HANDLER_NAME)
        return self

    def matching(self, event: Event) -> list[Rule]:
        """The rules ``event`` triggers, in the order they were given."""
        found: list[Rule] = []
        if isinstance(event, CustomEvent):
            found += self._by_when.get(event.name, [])
        for cls in type(event).__mro__:
            found += self._by_when.get(cls, [])
        return sorted((r for r in found if r.matches(event)), key=lambda r: r.index)

    def handle(self, event: Event) -> int:
        """Fire each rule ``event`` triggers, once (the handler); returns how many fired now. A rule whose
        actions fail is rolled back and, once the others ran, its error raised (the dispatcher retries the
        event; rules that fired are not fired again). A rule whose record is gone is skipped."""
        fired = 0
        errors: list[str] = []
        for rule in self.matching(event):
            try:
                fired += self.fire(rule, event)
            except Exception as exc:  # an assigner's bug too: the other rules still run, the error is raised after
                errors.append(f"{rule.name!r}: {type(exc).__name__}: {exc}")
        if errors:
            raise CRMError("rules failed: " + "; ".join(errors))
        return fired

    def fire(self, rule: Rule, event: Event) -> bool:
        """Fire ``rule`` for ``event`` unless it fired for it before; whether it fired now."""
        try:
            with self.crm.session(self.actor) as s:
                record: Entity | None = None
                if rule.about is not None and event.entity_id is not None and rule.reads_record:
                    repo = s._repository(rule.about)
                    if rule.where is not None:  # one query: the record, if the where holds (within the scope)
                        got = repo.find({"id": event.entity_id, **rule.where}, limit=1)
                        if not got:
                            return False
                        record = got[0]
                    else:
                        record = repo.get(event.entity_id)
                elif rule.reads_record:
                    return False  # the event names no record to read
                marker = RuleFired(
                    rule=rule.name,
                    cause=event.key,
                    entity=event.entity,
                    entity_id=event.entity_id,
                    key=firing_key(rule.name, event.key),
                )
                if not s._fire_once(marker):
                    return False
                for action in rule.actions:
                    try:
                        self._run(s, rule, action, event, record)
                    except ValidationError as exc:
                        raise exc.prefixed(action.path) from None
        except NotFound:
            if event.entity_id is not None and rule.about is not None and self._gone(rule.about, event.entity_id):
                return False  # the record was deleted (or merged away) since: nothing to do, ever
            raise
        return True

    def _gone(self, repository: str, id: str) -> bool:
        with self.crm.session() as s:
            return bool(s._repository(repository).count({"id": id}) == 0)

    def _who(self, s: Any, assignee: Assignee, record: Entity | None) -> str | None:
        if assignee.how == "user":
            return assignee.value
        if assignee.how == "owner":
            assert record is not None
            return getattr(record, OWNER_FIELDS[type(record).entity_name()], None)
        fn = self.assigners.get(assignee.value or "")
        if fn is None:
            raise CRMError(f"no assigner named {assignee.value!r} is registered")
        got = fn(s, record)
        user = getattr(got, "user_id", got)
        if user is not None and not is_id(user):
            raise ValidationError([FieldError("assignee", "invalid_id", f"assigner {assignee.value!r} gave {quote(user)}")])
        reason = getattr(got, "reason", None)
        if isinstance(reason, str) and record is not None and record.id is not None:
            # why this person -- or why nobody (user_id None) -- in the audit trail (an Assignment from
            # pycrm.automation.assign says)
            info = {"assigner": assignee.value, "user_id": user, "strategy": getattr(got, "strategy", None), "reason": reason}
            s.unit.event(type(record), "assign", str(record.id), info)
        return user

    def _run(self, s: Any, rule: Rule, action: Action, event: Event, record: Entity | None) -> None:
        if action.type == "create_task":
            title = "".join(lit + ("" if f is None else _shown(getattr(record, f, None))) for lit, f in action.title)
            if action.due_days is not None:
                due = self.calendar.add_business_days(event.at, action.due_days)
            else:
                due = event.at + dt.timedelta(hours=action.due_hours or 0)
            related: str | None = None
            if action.related == "record":
                related = event.entity_id
            elif action.related == "customer" and record is not None:
                related = record.id if rule.about == "customers" else getattr(record, "customer_id", None)
            assignee = self._who(s, action.assignee, record) if action.assignee is not None else None
            s.tasks.add(Task(title[:_TITLE_MAX].strip() or "Task", due, assignee_id=assignee, related_id=related))
        elif action.type == "assign_owner":
            assert record is not None and action.assignee is not None
            user = self._who(s, action.assignee, record)
            field = OWNER_FIELDS[type(record).entity_name()]
            if user is not None and getattr(record, field) != user:
                setattr(record, field, user)
                s._repository(rule.about or "").update(record)
        elif action.type == "set_field":
            assert record is not None
            for field, value in action.values:
                if field.startswith("custom."):
                    record.custom = {**record.custom, field[7:]: value}  # type: ignore[attr-defined]
                else:
                    setattr(record, field, value)
            s._repository(rule.about or "").update(record)
        elif action.type == "move_to_stage":
            assert isinstance(record, Opportunity)
            if record.stage != action.stage:
                record.move_to(action.stage, by=self.actor.id)
                s.opportunities.update(record)
        elif action.type == "score_leads":
            try:
                s.analytics.score_leads(where=action.where)
            except ValidationError as exc:
                if not any(e.code == "too_little" for e in exc.errors):
                    raise  # too little history: nothing to score yet, not an error to retry
        elif action.type == "emit":
            s.emit(CustomEvent(name=action.event, data=dict(action.data), entity=event.entity, entity_id=event.entity_id))


def _shown(value: Any) -> str:
    """A scalar field's value as a title shows it."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


def install_rules(
    crm: Any,
    source: Any,
    *,
    actor: User | None = None,
    calendar: Calendar | None = None,
    assigners: Mapping[str, Assigner] | None = None,
) -> Rules:
    """Load ``source`` (see :func:`load_rules`) and register its handler on ``crm``: :class:`Rules` installed."""
    return Rules(crm, source, actor=actor, calendar=calendar, assigners=assigners).install()
