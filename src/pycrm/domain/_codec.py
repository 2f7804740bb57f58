"""Entities to JSON-safe data and back, losslessly: snapshots (merge records), exports, dumps.

``to_data`` gives plain dicts, lists, strings, numbers, booleans and None: money as
``{"amount": "12.50", "currency": "EUR"}`` (the amount as text, so no digit is lost), date-times and dates
in ISO 8601, emails and phones as their normalized text, tags sorted, enums and pipelines by value/name.
``from_data`` reverses it exactly for data that ``to_data`` made (it trusts the data: a stored snapshot is
not validated again).

>>> import datetime as dt
>>> from pycrm.domain import Customer, Money, Order
>>> c = Customer("Acme", emails=["Sales@Acme.com"], phones=["+86 138 0013 8000"], tags={"vip"}, id="c1")
>>> data = to_data(c)
>>> data["emails"], data["phones"], data["tags"]
(['sales@acme.com'], ['+8613800138000'], ['vip'])
>>> from_data(Customer, data) == c
True
>>> o = Order("c1", dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.timezone.utc), Money("12.50", "EUR"), id="o1")
>>> to_data(o)["amount"]
{'amount': '12.50', 'currency': 'EUR'}
>>> from_data(Order, to_data(o)) == o
True
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

import attrs

from pycrm.domain._checks import NO_TAGS
from pycrm.domain._entities import Entity, Permission, Role, StageChange, StatusChange
from pycrm.domain._machine import Pipeline, TicketPriority, TicketStatus, get_pipeline
from pycrm.domain._values import Address, EmailAddress, Money, OrderLine, PhoneNumber
from pycrm.errors import FieldError, ValidationError

__all__ = ["from_data", "to_data"]

E = TypeVar("E", bound=Entity)


def _out(v: Any) -> Any:
    t = type(v)
    if v is None or t is str or t is bool or t is int or t is float:
        return v
    if isinstance(v, enum.Enum):
        return v.value
    if t is Decimal:
        return str(v)
    if t is dt.datetime or t is dt.date:
        return v.isoformat()
    if t is EmailAddress:
        return v.value
    if t is PhoneNumber:
        return v.e164
    if t is Money:
        return {"amount": str(v.amount), "currency": v.currency}
    if t is Pipeline:
        return v.name
    if t is Role:
        return {"name": v.name, "permissions": [[p.entity, p.action, p.scope] for p in v.permissions]}
    if t is OrderLine:
        return v.to_mapping()
    if t is Address or t is StageChange or t is StatusChange:
        return {a.name: _out(getattr(v, a.name)) for a in attrs.fields(t)}
    if isinstance(v, str):  # a str subclass (a masked value): plain text
        return str(v)
    if t is frozenset or t is set:
        return sorted(_out(x) for x in v)
    if t is list or t is tuple:
        return [_out(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _out(x) for k, x in v.items()}
    raise ValidationError([FieldError("", "type", f"cannot turn a {t.__name__} into data")])


def to_data(entity: Entity) -> dict[str, Any]:
    """A JSON-safe dict of every field of ``entity`` (see the module docstring)."""
    return {a.name: _out(getattr(entity, a.name)) for a in attrs.fields(type(entity))}


def _same(v: Any) -> Any:
    return v


def _datetime(v: Any) -> dt.datetime | None:
    return None if v is None else dt.datetime.fromisoformat(v)


def _date(v: Any) -> dt.date | None:
    return None if v is None else dt.date.fromisoformat(v)


def _decimal(v: Any) -> Decimal | None:
    return None if v is None else Decimal(v)


def _money(v: Any) -> Money:
    return Money(Decimal(v["amount"]), v["currency"])


def _stage_change(v: Any) -> StageChange:
    return StageChange(v["from_stage"], v["to_stage"], dt.datetime.fromisoformat(v["at"]), v.get("by"))


def _status_change(v: Any) -> StatusChange:
    return StatusChange(v["from_status"], v["to_status"], dt.datetime.fromisoformat(v["at"]), v.get("by"))


def _role(v: Any) -> Role | str:
    if isinstance(v, str):
        return v
    return Role(v["name"], tuple(Permission(*p) for p in v["permissions"]))


def _tags(v: Any) -> frozenset[str]:
    return frozenset(v) if v else NO_TAGS


def _list(one: Callable[[Any], Any]) -> Callable[[Any], list[Any]]:
    return lambda v: [one(x) for x in v]


# annotation text (the entities use postponed annotations) -> decoder
_DECODERS: dict[str, Callable[[Any], Any]] = {
    "str": _same,
    "str | None": _same,
    "int": _same,
    "int | None": _same,
    "bool": _same,
    "dict[str, Any]": _same,
    "dict[str, bool]": _same,
    "dt.datetime": _datetime,
    "dt.datetime | None": _datetime,
    "dt.date | None": _date,
    "Decimal | None": _decimal,
    "Money": _money,
    "Money | None": lambda v: None if v is None else _money(v),
    "Pipeline": lambda v: get_pipeline(v),
    "EmailAddress": EmailAddress,
    "list[EmailAddress]": _list(EmailAddress),
    "list[PhoneNumber]": _list(PhoneNumber),
    "list[Address]": _list(lambda d: Address(**d)),
    "list[OrderLine]": _list(OrderLine.from_stored),
    "frozenset[str]": _tags,
    "list[StageChange]": _list(_stage_change),
    "list[StatusChange]": _list(_status_change),
    "list[Role | str]": _list(_role),
    "TicketPriority": TicketPriority,
    "TicketStatus": TicketStatus,
}

_PLANS: dict[type[Entity], tuple[tuple[str, Callable[[Any], Any]], ...]] = {}


def _plan(kind: type[Entity]) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    plan = _PLANS.get(kind)
    if plan is None:
        out = []
        for a in attrs.fields(kind):
            annotation = a.type if isinstance(a.type, str) else getattr(a.type, "__name__", str(a.type))
            decoder = _DECODERS.get(annotation)
            if decoder is None:  # a new field type: teach the codec (tests/unit/test_codec.py covers every kind)
                raise TypeError(f"pycrm.domain._codec: no decoder for {kind.__name__}.{a.name}: {annotation}")
            out.append((a.name, decoder))
        plan = _PLANS[kind] = tuple(out)
    return plan


def from_data(kind: type[E], data: Mapping[str, Any]) -> E:
    """The ``kind`` entity that ``to_data`` turned into ``data``."""
    try:
        values = {name: decode(data[name]) for name, decode in _plan(kind)}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValidationError([FieldError("", "invalid_data", f"not {kind.__name__} data: {exc}")]) from None
    return kind._load(values)  # type: ignore[no-any-return]
