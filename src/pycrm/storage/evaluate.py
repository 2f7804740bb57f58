"""The ``where`` evaluator: does a stored entity satisfy parsed conditions? One definition for everything
that filters entities in Python: the memory adapter (``pycrm.storage.memory``) and archived records
(``pycrm.io.archived``), so both agree with each other and with the SQL adapter's queries.

Conditions come from :mod:`pycrm.storage._where` (``parse_where``, the actor's scope), values already
normalized; list fields match on their index text (:func:`~pycrm.storage._backend.index_text`, the blind
index of an encrypted element).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from pycrm.domain import Entity
from pycrm.domain._custom import DATE_TEXT, DECIMAL_TEXT
from pycrm.storage._backend import index_text
from pycrm.storage._where import CUSTOM_KINDS, LIST_KINDS, Condition, InValues

__all__ = ["Related", "list_values", "matches", "scalar"]

#: ``related(kind, id)``: the stored record of ``kind`` with that id, or None (see :func:`matches`).
Related = Callable[[type[Entity], str], Entity | None]


def list_values(entity: Entity, field: str, kind: str) -> Iterable[str]:
    """What a list field (``emails``, ``phones``, ``tags``, an order's ``lines`` by product id) holds, as it is
    indexed and matched."""
    items = getattr(entity, field)
    if kind == "emails":
        return [index_text(e.value) for e in items]
    if kind == "phones":
        return [index_text(p.e164) for p in items]
    if kind == "lines":
        return list(dict.fromkeys(line.product_id for line in items))
    return items  # type: ignore[no-any-return]  # tags: a frozenset of str


def custom_value(value: Any, kind: str) -> Any:
    """A stored custom value as a declared field of filter ``kind`` compares it, or None when it is not of
    the type (the same rule as the SQL adapter's typed expression, see ``storage/sql/custom.py``)."""
    t = type(value)
    if kind == "custom_text":
        return value if t is str else None
    if kind == "custom_int":
        return value if t is int else None
    if kind == "custom_decimal":
        if t is int:
            return Decimal(value)
        return Decimal(value) if t is str and DECIMAL_TEXT.fullmatch(value) else None
    if kind == "custom_date":
        if t is str and DATE_TEXT.fullmatch(value):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                return None
        return None
    return value if t is bool else None  # custom_bool


def _custom_matches(entity: Entity, cond: Condition) -> bool:
    value = entity.custom.get(cond.field[7:])  # type: ignore[attr-defined]
    if cond.op == "is_null":
        return bool((value is None) == cond.value)
    if value is None:
        return False
    if cond.kind != "custom":
        return _typed_matches(custom_value(value, cond.kind), cond.op, cond.value)

    def same(v: Any) -> bool:  # type-exact: True is not 1
        return type(value) is type(v) and bool(value == v)

    if cond.op == "eq":
        return same(cond.value)
    if cond.op == "ne":
        return not same(cond.value)
    if isinstance(cond.value, InValues):
        return cond.value.exact(value)
    return any(same(v) for v in cond.value)  # in


def _typed_matches(v: Any, op: str, value: Any) -> bool:
    if v is None:
        return False
    if op == "eq":
        return bool(v == value)
    if op == "ne":
        return bool(v != value)
    if op == "in":
        return v in value
    if op == "contains":
        return value.lower() in v.lower()
    if op == "startswith":
        return bool(v.lower().startswith(value.lower()))
    if op == "lt":
        return bool(v < value)
    if op == "lte":
        return bool(v <= value)
    if op == "gt":
        return bool(v > value)
    return bool(v >= value)  # gte


def scalar(entity: Entity, field: str, kind: str) -> Any:
    """The value a condition on a single-valued field compares (a Money's amount, an email's text, ...)."""
    if kind == "currency":
        return entity.amount.currency  # type: ignore[attr-defined]
    v = getattr(entity, field)
    if v is None:
        return None
    if kind == "money":
        return v.amount
    if kind == "email":
        return v.value
    if kind == "text" and not isinstance(v, str):
        return getattr(v, "value", None) if not hasattr(v, "stages") else v.name
    return v


def matches(entity: Entity, cond: Condition, related: Related | None = None) -> bool:
    """Whether ``entity`` satisfies ``cond``, with SQL's meaning (a comparison with NULL is not true).

    ``related(kind, id)`` finds the record a scope's subquery condition (``in_subquery``) follows, such as
    the customer of a contact; without it such a condition matches nothing.
    """
    op, value, kind = cond.op, cond.value, cond.kind
    if op == "any_of":
        return any(all(matches(entity, c, related) for c in group) for group in value)
    if op == "in_subquery":
        ref = getattr(entity, cond.field, None)
        other = related(value[0], ref) if related is not None and isinstance(ref, str) else None
        return other is not None and all(matches(other, c, related) for c in value[1])
    if kind in CUSTOM_KINDS:
        return _custom_matches(entity, cond)
    if kind in LIST_KINDS:
        have = list_values(entity, cond.field, kind)
        if op == "eq":
            return value in have
        if op == "ne":
            return value not in have
        if op == "in":
            return any(v in value for v in have)  # a hash lookup per element the entity has
        return bool((not have) == value)  # is_null
    v = scalar(entity, cond.field, kind)
    if op == "is_null":
        return bool((v is None) == value)
    return _typed_matches(v, op, value)  # None matches nothing: SQL's three-valued logic
