"""The JSON-able ``where`` language shared by every adapter.

``{"status": "active", "amount": {"gte": 1000}, "name": {"contains": "acme"}}`` is parsed and checked
here into :class:`Condition` objects whose values are already normalized (emails lower-cased, phones in
E.164, datetimes in UTC, Decimals for amounts); adapters only translate them. Unknown fields or
operators raise ValidationError.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from pycrm.domain import (
    ENTITIES,
    Activity,
    Attachment,
    Campaign,
    CampaignMember,
    CampaignResponse,
    Contact,
    Customer,
    CustomField,
    EmailAddress,
    Entity,
    Interaction,
    Opportunity,
    Order,
    PhoneNumber,
    Product,
    Survey,
    Task,
    Ticket,
    User,
)
from pycrm.domain import _checks as c
from pycrm.domain._checks import MAX_ROWS, check_count, count_error
from pycrm.domain._custom import FILTER_KINDS
from pycrm.domain._values import _to_decimal
from pycrm.errors import FieldError, ValidationError, quote

__all__ = [
    "FIELD_KINDS",
    "MAX_IN_VALUES",
    "MAX_ROWS",
    "Condition",
    "InValues",
    "OrderBy",
    "check_count",
    "filter_kinds",
    "parse_order_by",
    "parse_where",
]

#: Most values one ``in`` list may hold. Past it ``parse_where`` refuses the filter (ValidationError naming
#: the field) rather than build a statement the database or its driver cannot take: a list this long is
#: bound as one parameter (an array on PostgreSQL, a JSON list on SQLite and MariaDB), and 100,000 values
#: keep that parameter far below MariaDB's default 16 MiB packet. Larger sets are filtered in chunks.
MAX_IN_VALUES = 100_000

# kind of every filterable field, per entity. Kinds: text, int, decimal, money (the amount of a Money
# field), currency (the currency of the entity's Money field), bool, datetime, date, emails, phones, tags,
# email (a single EmailAddress). Fields not listed (addresses, histories, custom, consent, roles) cannot
# be filtered. ``score`` is a decimal that also takes a float (``{"win_probability": {"gte": 0.7}}``).
_BASE = {"id": "text", "version": "int", "created_at": "datetime", "updated_at": "datetime"}
FIELD_KINDS: dict[type[Entity], dict[str, str]] = {
    Customer: {
        **_BASE,
        "name": "text",
        "kind": "text",
        "emails": "emails",
        "phones": "phones",
        "country": "text",
        "category": "text",
        "status": "text",
        "owner_id": "text",
        "team_id": "text",
        "tags": "tags",
    },
    Contact: {
        **_BASE,
        "customer_id": "text",
        "first_name": "text",
        "last_name": "text",
        "emails": "emails",
        "phones": "phones",
        "title": "text",
        "is_primary": "bool",
    },
    Opportunity: {
        **_BASE,
        "customer_id": "text",
        "name": "text",
        "amount": "money",
        "currency": "currency",
        "stage": "text",
        "expected_close": "date",
        "owner_id": "text",
        "pipeline": "text",
        "probability_override": "decimal",
        "lost_reason": "text",
        "closed_at": "datetime",
        "win_probability": "score",
        "scored_at": "datetime",
    },
    Ticket: {
        **_BASE,
        "customer_id": "text",
        "subject": "text",
        "description": "text",
        "priority": "text",
        "status": "text",
        "assignee_id": "text",
        "first_response_at": "datetime",
        "resolved_at": "datetime",
        "closed_at": "datetime",
        "category": "text",
        "channel": "text",
    },
    Interaction: {
        **_BASE,
        "customer_id": "text",
        "kind": "text",
        "occurred_at": "datetime",
        "subject": "text",
        "body": "text",
        "user_id": "text",
        "duration": "int",
        "direction": "text",
        "channel": "text",
        "contact_id": "text",
        "opportunity_id": "text",
        "outcome": "text",
    },
    Order: {
        **_BASE,
        "customer_id": "text",
        "occurred_at": "datetime",
        "amount": "money",
        "currency": "currency",
        "order_no": "text",
        "lines": "lines",  # has a line of this product id (eq), of any of these (in), none of it (ne), no lines
    },
    Task: {**_BASE, "title": "text", "due_at": "datetime", "assignee_id": "text", "related_id": "text", "done": "bool"},
    User: {**_BASE, "name": "text", "email": "email", "team_id": "text"},
    Product: {
        **_BASE,
        "sku": "text",
        "name": "text",
        "category": "text",
        "unit": "text",
        "active": "bool",
    },
    Survey: {
        **_BASE,
        "customer_id": "text",
        "kind": "text",
        "score": "int",
        "comment": "text",
        "ticket_id": "text",
        "interaction_id": "text",
        "user_id": "text",
        "sent_at": "datetime",
        "answered_at": "datetime",
    },
    Activity: {
        **_BASE,
        "customer_id": "text",
        "kind": "text",
        "occurred_at": "datetime",
        "contact_id": "text",
        "source": "text",
    },
    Campaign: {
        **_BASE,
        "name": "text",
        "channel": "text",
        "start": "date",
        "end": "date",
        "status": "text",
        "owner_id": "text",
        "window_days": "int",
        "attribution": "text",
    },
    CampaignMember: {
        **_BASE,
        "campaign_id": "text",
        "customer_id": "text",
        "contact_id": "text",
        "added_at": "datetime",
        "state": "text",
    },
    CampaignResponse: {
        **_BASE,
        "member_id": "text",
        "campaign_id": "text",
        "customer_id": "text",
        "kind": "text",
        "at": "datetime",
    },
    Attachment: {
        **_BASE,
        "customer_id": "text",
        "record_kind": "text",
        "record_id": "text",
        "name": "text",
        "media_type": "text",
        "size": "int",
        "sha256": "text",
        "uploaded_by": "text",
    },
}

LIST_KINDS = frozenset({"emails", "phones", "tags", "lines"})

# ``{"custom.tier": "gold"}`` filters a custom field. An undeclared one (kind ``custom``): eq / ne / in / is_null
# on text, whole numbers and booleans, type-exact (``True`` does not match ``1``, ``"5"`` does not match ``5``);
# a missing key is NULL. A declared one (``CustomField``, passed as ``custom=`` to parse_where) filters by its
# type: ``custom_int`` / ``custom_decimal`` / ``custom_date`` also take ranges, ``custom_text`` (text and
# choice) contains / startswith, ``custom_bool`` equality; a stored value of another type (written before the
# field was declared) matches no comparison, only ``is_null`` false.
_CUSTOM_HOLDERS: frozenset[type[Entity]] = frozenset({Customer, Contact, Opportunity, Ticket, Interaction, Order, Task, Survey})
#: The filter kinds of custom fields: undeclared, then one per declared type.
CUSTOM_KINDS = frozenset({"custom", "custom_text", "custom_int", "custom_decimal", "custom_date", "custom_bool"})
_CUSTOM_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_ORDERED = frozenset({"text", "int", "decimal", "score", "money", "currency", "datetime", "date", "email"})
OPERATORS: dict[str, frozenset[str]] = {
    "text": frozenset({"eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "startswith", "is_null"}),
    "currency": frozenset({"eq", "ne", "in"}),
    "email": frozenset({"eq", "ne", "in", "is_null"}),
    "int": frozenset({"eq", "ne", "lt", "lte", "gt", "gte", "in", "is_null"}),
    "decimal": frozenset({"eq", "ne", "lt", "lte", "gt", "gte", "in", "is_null"}),
    "score": frozenset({"eq", "ne", "lt", "lte", "gt", "gte", "in", "is_null"}),
    "money": frozenset({"eq", "ne", "lt", "lte", "gt", "gte", "in"}),
    "datetime": frozenset({"eq", "ne", "lt", "lte", "gt", "gte", "in", "is_null"}),
    "date": frozenset({"eq", "ne", "lt", "lte", "gt", "gte", "in", "is_null"}),
    "bool": frozenset({"eq", "ne"}),
    "custom": frozenset({"eq", "ne", "in", "is_null"}),
    "custom_text": frozenset({"eq", "ne", "in", "contains", "startswith", "is_null"}),
    "custom_int": frozenset({"eq", "ne", "lt", "lte", "gt", "gte", "in", "is_null"}),
    "custom_decimal": frozenset({"eq", "ne", "lt", "lte", "gt", "gte", "in", "is_null"}),
    "custom_date": frozenset({"eq", "ne", "lt", "lte", "gt", "gte", "in", "is_null"}),
    "custom_bool": frozenset({"eq", "ne", "in", "is_null"}),
    "emails": frozenset({"eq", "ne", "in", "is_null"}),
    "phones": frozenset({"eq", "ne", "in", "is_null"}),
    "tags": frozenset({"eq", "ne", "in", "is_null"}),
    "lines": frozenset({"eq", "ne", "in", "is_null"}),
}
ALL_OPERATORS = frozenset().union(*OPERATORS.values())


def filter_kinds(custom_fields: Mapping[str, Sequence[CustomField]]) -> dict[type[Entity], dict[str, str]]:
    """The declared custom fields (repository name -> CustomField objects) as ``parse_where`` takes them:
    entity kind -> {name: filter kind}."""
    out: dict[type[Entity], dict[str, str]] = {}
    for repo, defs in custom_fields.items():
        kind = ENTITIES.get(repo)
        if kind in _CUSTOM_HOLDERS:
            out[kind] = {d.name: FILTER_KINDS[d.type] for d in defs if _CUSTOM_KEY.fullmatch(d.name)}
    return out


@attrs.frozen
class Condition:
    """One checked condition. For list kinds ``eq`` means "has this element", ``ne`` "lacks it",
    ``in`` "has any of these", ``is_null`` "is empty". ``contains`` and ``startswith`` ignore case."""

    field: str
    op: str
    value: Any
    kind: str


class InValues(tuple[Any, ...]):
    """The values of an ``in`` condition: a tuple (repeats dropped, order kept) whose ``in`` test is one
    hash lookup, so the memory adapter matches a 100,000-value list at the cost of a short one.

    ``exact(v)`` is the type-exact test of custom fields (``True`` is not ``1``)."""

    _exact: frozenset[tuple[type, Any]]
    _plain: frozenset[Any]

    def __new__(cls, values: Iterable[Any]) -> InValues:
        keyed = {(type(v), v): v for v in values}  # keyed by type too, since 1 == True in Python
        self = super().__new__(cls, keyed.values())
        self._exact = frozenset(keyed)
        self._plain = frozenset(self)
        return self

    def __contains__(self, value: object) -> bool:
        try:
            return value in self._plain
        except TypeError:  # an unhashable value equals none of the (hashable) filter values
            return False

    def exact(self, value: Any) -> bool:
        """Whether a value of the same type and equal to ``value`` is in the list."""
        try:
            return (type(value), value) in self._exact
        except TypeError:
            return False


@attrs.frozen
class OrderBy:
    field: str
    descending: bool = False


# Plain lower-case ASCII addresses that email-validator accepts unchanged: checking this pattern costs
# about 1 microsecond instead of about 80, which keeps find(where={"emails": x}) near raw SQL speed.
# Deliberately narrower than email-validator (no "--", no quoting, no IDNA, no special-use names), so
# anything it matches is valid and already normalized; everything else takes the full parser.
_PLAIN_EMAIL = re.compile(r"([a-z0-9_+]+(?:[.-][a-z0-9_+]+)*)@((?:[a-z0-9]+(?:-[a-z0-9]+)*\.)+[a-z]{2,63})")
_SPECIAL_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


def _fast_email(value: Any) -> str | None:
    if type(value) is not str or not value.isascii():
        return None
    s = value.strip().lower()
    m = _PLAIN_EMAIL.fullmatch(s)
    if m is None or len(s) > 200 or len(m.group(1)) > 64:
        return None
    labels = m.group(2).split(".")
    if labels[-1] in _SPECIAL_TLDS or max(map(len, labels)) > 63:
        return None
    return s


def _scalar(kind: str, value: Any, path: str, region: str | None) -> Any:
    if value is None:
        raise c.fail(path, "null_value", "use {'is_null': true} to match missing values")
    if kind == "custom":
        if isinstance(value, bool) or (isinstance(value, int) and abs(value) <= 2**53):
            return value
        if isinstance(value, str):
            return c.text(value, path)
        raise c.fail(path, "type", f"custom fields filter on text, whole numbers or true/false, not {type(value).__name__}")
    if kind == "custom_text":
        if not isinstance(value, str):
            raise c.fail(path, "type", f"expected text, got {quote(value)}")
        return c.text(value, path)
    if kind == "custom_int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise c.fail(path, "type", f"expected a whole number, got {quote(value)}")
        if abs(value) > 2**53:  # what a custom value may hold
            raise c.fail(path, "out_of_range", f"expected a whole number that fits in 53 bits, got {quote(value)}")
        return value
    if kind == "custom_decimal":
        if isinstance(value, float):
            raise c.fail(path, "type", f"expected a decimal as text or a whole number, got {quote(value)}")
        return _to_decimal(value, path)
    if kind == "custom_date":
        return c.opt_date(value, path)
    if kind == "custom_bool":
        if not isinstance(value, bool):
            raise c.fail(path, "type", f"expected true or false, got {quote(value)}")
        return value
    if kind == "text":
        return c.text(getattr(value, "value", value), path)
    if kind == "currency":
        if not isinstance(value, str):
            raise c.fail(path, "type", "expected a currency code")
        return value.upper()
    if kind in ("emails", "email"):
        return _fast_email(value) or EmailAddress.parse(value, path).value
    if kind == "phones":
        return PhoneNumber.parse(value, region, path).e164
    if kind == "tags":
        return c.text(value, path, required=True, max_len=100).strip()
    if kind == "lines":
        return c.req_id(value, path)
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise c.fail(path, "type", f"expected a whole number, got {quote(value)}")
        if not -(2**63) <= value < 2**63:  # what a database integer holds; SQLite's driver would overflow
            raise c.fail(path, "out_of_range", f"expected a whole number that fits in 64 bits, got {quote(value)}")
        return value
    if kind == "score":  # a computed probability: a float is fine too (0.7 is read as its shortest text, 0.7)
        if isinstance(value, float) and math.isfinite(value):
            value = Decimal(repr(value))
        return _to_decimal(value, path)
    if kind in ("decimal", "money"):
        if hasattr(value, "amount") and hasattr(value, "currency"):
            value = value.amount
        return _to_decimal(value, path)
    if kind == "bool":
        return c.boolean(value, path)
    if kind == "datetime":
        return c.utc(value, path)
    if kind == "date":
        return c.opt_date(value, path)
    raise AssertionError(kind)


def parse_where(
    entity: type[Entity],
    where: Mapping[str, Any] | None,
    *,
    region: str | None = None,
    custom: Mapping[str, str] | None = None,
) -> list[Condition]:
    """Check and normalize a ``where`` mapping; every problem is reported at once.

    ``custom``: the declared custom fields of ``entity`` by name, as their filter kind
    (``custom_int``, ... see ``pycrm.domain._custom.FILTER_KINDS``); other ``custom.<key>`` are untyped."""
    if where is None:
        return []
    if not isinstance(where, Mapping):
        raise ValidationError([FieldError("where", "type", f"expected a mapping, got {type(where).__name__}")])
    kinds = FIELD_KINDS[entity]
    out: list[Condition] = []
    errors: list[FieldError] = []
    for field, spec in where.items():
        path = f"where.{field}"
        kind = kinds.get(field) if isinstance(field, str) else None
        if kind is None and entity in _CUSTOM_HOLDERS and isinstance(field, str) and field.startswith("custom."):
            key = field[7:]
            kind = (custom or {}).get(key, "custom") if _CUSTOM_KEY.fullmatch(key) else None
        if kind is None:
            errors.append(FieldError(path, "unknown_field", f"{entity.__name__} has no filterable field {field!r}"))
            continue
        ops = dict(spec) if isinstance(spec, Mapping) else ({"is_null": True} if spec is None else {"eq": spec})
        if not ops:
            errors.append(FieldError(path, "empty", "no operator given"))
        for op, value in ops.items():
            opath = f"{path}.{op}"
            if op not in OPERATORS[kind]:
                code = "unknown_operator" if op not in ALL_OPERATORS else "unsupported_operator"
                hint = ""
                if kind == "custom" and code == "unsupported_operator":
                    hint = "; declare it (CustomField) as integer, decimal or date for ranges, as text for contains"
                errors.append(FieldError(opath, code, f"operator {op!r} does not apply to {field!r} ({kind}){hint}"))
                continue
            try:
                if op == "is_null":
                    norm: Any = c.boolean(value, opath)
                elif op == "in":
                    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Sequence, set, frozenset)):
                        raise c.fail(opath, "type", "expected a list of values")
                    if len(value) > MAX_IN_VALUES:
                        raise c.fail(
                            opath, "too_many", f"at most {MAX_IN_VALUES:,} values per list, got {len(value):,}; filter in chunks"
                        )
                    norm = InValues(_scalar(kind, v, f"{opath}[{i}]", region) for i, v in enumerate(value))
                elif op in ("contains", "startswith"):
                    norm = c.text(value, opath, max_len=c.MAX_TEXT)
                else:
                    norm = _scalar(kind, value, opath, region)
            except ValidationError as exc:
                errors += exc.errors
                continue
            out.append(Condition(field, op, norm, kind))
    if errors:
        raise ValidationError(errors)
    return out


# ---- row scopes (pycrm.security.Policy.scope_conditions) ----
# Two internal shapes that only the security layer produces (a caller's ``where`` cannot name them):
#   Condition("", "any_of", ((cond, ...), (cond, ...)), "scope")  -- at least one group holds entirely;
#   Condition(field, "in_subquery", (kind, (cond, ...)), "subquery") -- field is the id of a ``kind`` row
#   matching the nested conditions.

SCOPE_OPS = frozenset({"any_of", "in_subquery"})


def _repository_kind(name: Any) -> type[Entity]:
    for kind in FIELD_KINDS:
        if kind.entity_name() == name:
            return kind
    raise ValidationError([FieldError("scope.entity", "unknown_entity", f"no repository named {name!r}")])


def parse_scope(
    entity: type[Entity], conditions: Sequence[Mapping[str, Any]], custom: Mapping[str, str] | None = None
) -> list[Condition]:
    """Conditions from ``Policy.scope_conditions`` data (all must hold), checked like a caller's ``where``."""
    out: list[Condition] = []
    for where in conditions:
        plain: dict[str, Any] = {}
        for field, spec in where.items():
            if field == "any_of":
                groups = tuple(tuple(parse_scope(entity, [alt], custom)) for alt in spec)
                out.append(Condition("", "any_of", groups, "scope"))
            elif isinstance(spec, Mapping) and "in_subquery" in spec:
                sub = spec["in_subquery"]
                kind = _repository_kind(sub["entity"])
                if FIELD_KINDS[entity].get(field) != "text":
                    raise ValidationError([FieldError(f"scope.{field}", "unknown_field", f"cannot scope on {field!r}")])
                out.append(Condition(field, "in_subquery", (kind, tuple(parse_scope(kind, [sub["where"]]))), "subquery"))
            else:
                plain[field] = spec
        out += parse_where(entity, plain, custom=custom)
    return out


def parse_order_by(entity: type[Entity], order_by: str | Sequence[str] | None) -> list[OrderBy]:
    """``"name"``, ``"-created_at"`` or a list of those; ``id`` breaks ties so paging is stable."""
    if order_by is None:
        items: Sequence[str] = []
    elif isinstance(order_by, str):
        items = [order_by]
    elif isinstance(order_by, Sequence):
        items = order_by
    else:
        raise ValidationError([FieldError("order_by", "type", "expected a field name or a list of them")])
    kinds = FIELD_KINDS[entity]
    out, errors = [], []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            errors.append(FieldError(f"order_by[{i}]", "type", "expected a field name"))
            continue
        name = item[1:] if item.startswith("-") else item
        if kinds.get(name) not in _ORDERED:
            errors.append(FieldError(f"order_by[{i}]", "unknown_field", f"cannot order {entity.__name__} by {name!r}"))
            continue
        out.append(OrderBy(name, item.startswith("-")))
    if errors:
        raise ValidationError(errors)
    if not any(o.field == "id" for o in out):
        out.append(OrderBy("id"))
    return out


def check_paging(limit: Any, offset: Any) -> None:
    """``limit`` (None for all) and ``offset``: whole numbers from 0 to :data:`MAX_ROWS`."""
    errors = [count_error("limit", limit, 0) if limit is not None else None, count_error("offset", offset, 0)]
    if any(errors):
        raise ValidationError([e for e in errors if e is not None])


def sort_key_value(value: Any) -> Any:
    """Comparable form of a stored value for ordering in the memory adapter (None sorts first)."""
    if hasattr(value, "amount") and hasattr(value, "currency"):
        return value.amount
    if isinstance(value, EmailAddress):
        return value.value
    return getattr(value, "value", value)


_ = (dt, Decimal)
