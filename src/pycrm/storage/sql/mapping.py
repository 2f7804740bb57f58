"""Rows <-> entities, by explicit functions (the domain classes know nothing about SQL).

``to_row(entity, codec)`` gives a tuple in the table's column order; ``from_row(row, codec)`` builds a
trusted entity with ``Entity._load`` (stored values were validated when written, so loading does not
validate again). A :class:`Codec` holds the few conversions that differ per database driver: SQLite
keeps date-times and dates as ISO text, the other drivers take and give ``datetime``/``date`` objects;
PostgreSQL's driver hands JSON back already parsed.

Also here: the exact encodings of money (``amount_e4`` + ``amount_scale``) and of decimal probabilities
(exact text + an order-preserving key), and the conversion of filter values to those encodings.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from pycrm.domain import (
    Activity,
    Address,
    Attachment,
    Campaign,
    CampaignMember,
    CampaignResponse,
    Contact,
    Customer,
    EmailAddress,
    Entity,
    Interaction,
    Money,
    Opportunity,
    Order,
    OrderLine,
    Permission,
    PhoneNumber,
    Product,
    Role,
    StageChange,
    StatusChange,
    Survey,
    Task,
    Ticket,
    TicketPriority,
    TicketStatus,
    User,
    get_pipeline,
)
from pycrm.domain._checks import NO_TAGS
from pycrm.errors import FieldError, ValidationError
from pycrm.storage._backend import index_text
from pycrm.storage.sql.tables import ENTITY_TABLES

__all__ = [
    "MAPPERS",
    "Codec",
    "Mapper",
    "child_values",
    "decimal_filter_key",
    "decimal_key",
    "money_filter_value",
    "money_in",
    "money_out",
]

UTC = dt.UTC
Row = Sequence[Any]

# ---------------------------------------------------------------------------------------------------
# driver conversions
# ---------------------------------------------------------------------------------------------------


_last_dt: tuple[Any, Any] = (None, None)


def _dt_out_text(v: dt.datetime | None) -> str | None:
    global _last_dt
    if v is None:
        return None
    last = _last_dt
    if v is last[0]:  # add_many stamps every entity with the same datetime object
        return last[1]  # type: ignore[no-any-return]
    u = v if v.tzinfo is UTC else v.astimezone(UTC)
    s = u.replace(tzinfo=None).isoformat(" ", "microseconds")
    _last_dt = (v, s)
    return s


def _dt_in_text(v: str | None) -> dt.datetime | None:
    return None if v is None else _fromiso(v + "+00:00")  # fromisoformat gives the timezone.utc singleton


_fromiso = dt.datetime.fromisoformat


def _dt_out_native(v: dt.datetime | None) -> dt.datetime | None:
    if v is None:
        return None
    if v.tzinfo is not UTC:
        v = v.astimezone(UTC)
    return v.replace(tzinfo=None)


def _dt_in_native(v: Any) -> dt.datetime | None:
    if v is None:
        return None
    if type(v) is str:  # a driver without native date-times
        v = dt.datetime.fromisoformat(v)
    return v.replace(tzinfo=UTC)  # type: ignore[no-any-return]


def _date_out_text(v: dt.date | None) -> str | None:
    return None if v is None else v.isoformat()


def _date_in_text(v: Any) -> dt.date | None:
    return None if v is None else dt.date.fromisoformat(v)


def _identity(v: Any) -> Any:
    return v


def _date_in_native(v: Any) -> dt.date | None:
    if v is None or type(v) is dt.date:
        return v
    if isinstance(v, dt.datetime):
        return v.date()
    return dt.date.fromisoformat(v)


class Codec:
    """Value conversions between Python and one database driver."""

    __slots__ = ("date_in", "date_out", "dialect", "dt_in", "dt_out")

    def __init__(self, dialect: str):
        self.dialect = dialect
        self.dt_in: Callable[[Any], dt.datetime | None]
        self.dt_out: Callable[[dt.datetime | None], Any]
        self.date_in: Callable[[Any], dt.date | None]
        self.date_out: Callable[[dt.date | None], Any]
        if dialect == "sqlite":
            self.dt_in, self.dt_out = _dt_in_text, _dt_out_text
            self.date_in, self.date_out = _date_in_text, _date_out_text
        else:
            self.dt_in, self.dt_out = _dt_in_native, _dt_out_native
            self.date_in, self.date_out = _date_in_native, _identity


# ---------------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------------

_ENC = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
_ENC_ASCII = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), check_circular=False)
_loads = json.loads


_TEXT = json.encoder.encode_basestring  # what _ENC gives for a str
_NULL = "null"


def _checked(text: str, obj: Any, field: str, plain: Callable[[Any], Any] | None = None) -> str:
    """``text``, the JSON of ``obj`` written directly, as :func:`dump_json` gives it. Not valid Unicode (a lone
    surrogate): ``obj``, made plain by ``plain``, goes through dump_json after all."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return dump_json(obj if plain is None else plain(obj), field)
    return text


def _text_or_null(v: str | None) -> str:
    return _NULL if v is None else _TEXT(v)


def dump_json(obj: Any, field: str) -> str:
    """Compact JSON text; non-ASCII kept readable unless it is not valid Unicode (lone surrogates)."""
    try:
        s = _ENC.encode(obj)
    except (TypeError, ValueError) as exc:
        raise ValidationError([FieldError(field, "type", f"cannot be stored: {exc}")]) from None
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            s = _ENC_ASCII.encode(obj)  # \udXXX escapes: stored and read back exactly
    return s


def _str_list(items: list[str]) -> str:
    """JSON for a list of strings; plain text needs no escaping, so it is joined directly."""
    if not items:
        return "[]"
    for x in items:
        if '"' in x or "\\" in x or not x.isprintable():
            return dump_json(items, "")
    return '["' + '","'.join(items) + '"]'


def json_in(v: Any) -> Any:
    if type(v) is str:
        if v == "[]":
            return []
        if v == "{}":
            return {}
        return _loads(v)
    if isinstance(v, (bytes, bytearray)):
        return _loads(v)
    return v  # already parsed by the driver (psycopg)


# ---------------------------------------------------------------------------------------------------
# value objects
# ---------------------------------------------------------------------------------------------------


def _trusted(cls: type[Any], **values: Any) -> Any:
    """An attrs value object built from stored values, skipping converters and validators."""
    obj = object.__new__(cls)
    for k, v in values.items():
        object.__setattr__(obj, k, v)
    return obj


def _str_list_in(v: Any) -> list[str]:
    """Inverse of ``_str_list``: unescaped lists are split directly, the rest parsed as JSON."""
    if type(v) is str:
        if v == "[]":
            return []
        if "\\" not in v and v.startswith('["') and v.endswith('"]'):
            parts = v[2:-2].split('","')
            for x in parts:
                if '"' in x:  # written with other separators (json.dumps): parse properly
                    return json_in(v)  # type: ignore[no-any-return]
            return parts
    return json_in(v)  # type: ignore[no-any-return]


def _emails_in(v: Any) -> list[EmailAddress]:
    return [EmailAddress(x) for x in _str_list_in(v)]


def _phones_in(v: Any) -> list[PhoneNumber]:
    return [PhoneNumber(x) for x in _str_list_in(v)]


def _addresses_out(items: list[Address]) -> str:
    if not items:
        return "[]"
    parts = []
    for a in items:  # written directly while every value is plain text or None: dump_json's exact output
        st, ci, pc, rg, co = a.street, a.city, a.postcode, a.region, a.country
        if not (_plain(st) and _plain(ci) and _plain(pc) and _plain(rg) and _plain(co)):
            return dump_json(_address_dicts(items), "addresses")
        parts.append(
            f'{{"street":{_text_or_null(st)},"city":{_text_or_null(ci)},"postcode":{_text_or_null(pc)},'
            f'"region":{_text_or_null(rg)},"country":{_text_or_null(co)}}}'
        )
    return _checked("[" + ",".join(parts) + "]", items, "addresses", _address_dicts)


def _plain(v: Any) -> bool:
    return v is None or type(v) is str


def _address_dicts(items: list[Address]) -> list[dict[str, Any]]:
    return [{"street": a.street, "city": a.city, "postcode": a.postcode, "region": a.region, "country": a.country} for a in items]


def _addresses_in(v: Any) -> list[Address]:
    return [_trusted(Address, **a) for a in json_in(v)]


def _tags_out(tags: frozenset[str]) -> str:
    return _str_list(sorted(tags)) if tags else "[]"


def _tags_in(v: Any) -> frozenset[str]:
    items = _str_list_in(v)
    return frozenset(items) if items else NO_TAGS


def _dict_out(d: dict[str, Any], field: str) -> str:
    if not d:
        return "{}"
    if len(d) == 1:  # one custom value, often text
        ((k, v),) = d.items()
        if type(k) is str and type(v) is str:
            return _checked(f"{{{_TEXT(k)}:{_TEXT(v)}}}", d, field)
    elif all(type(k) is str and type(v) is str for k, v in d.items()):  # flat text
        return _checked("{" + ",".join([f"{_TEXT(k)}:{_TEXT(v)}" for k, v in d.items()]) + "}", d, field)
    return dump_json(d, field)


def _at_out(v: Any) -> Any:
    return v.isoformat() if isinstance(v, dt.datetime) else v


def _at_in(v: Any) -> Any:
    return dt.datetime.fromisoformat(v) if isinstance(v, str) else v


def _stages_out(items: list[StageChange]) -> str:
    if not items:
        return "[]"
    return dump_json([{"from": c.from_stage, "to": c.to_stage, "at": _at_out(c.at), "by": c.by} for c in items], "stage_history")


def _stages_in(v: Any) -> list[StageChange]:
    return [_trusted(StageChange, from_stage=c["from"], to_stage=c["to"], at=_at_in(c["at"]), by=c["by"]) for c in json_in(v)]


def _statuses_out(items: list[StatusChange]) -> str:
    if not items:
        return "[]"
    return dump_json(
        [{"from": c.from_status, "to": c.to_status, "at": _at_out(c.at), "by": c.by} for c in items], "status_history"
    )


def _statuses_in(v: Any) -> list[StatusChange]:
    return [_trusted(StatusChange, from_status=c["from"], to_status=c["to"], at=_at_in(c["at"]), by=c["by"]) for c in json_in(v)]


def _roles_out(roles: list[Role | str]) -> str:
    if not roles:
        return "[]"
    return dump_json(
        [
            r if isinstance(r, str) else {"name": r.name, "permissions": [[p.entity, p.action, p.scope] for p in r.permissions]}
            for r in roles
        ],
        "roles",
    )


def _roles_in(v: Any) -> list[Role | str]:
    out: list[Role | str] = []
    for r in json_in(v):
        if isinstance(r, str):
            out.append(r)
        else:
            perms = tuple(_trusted(Permission, entity=p[0], action=p[1], scope=p[2]) for p in r["permissions"])
            out.append(_trusted(Role, name=r["name"], permissions=perms))
    return out


# ---------------------------------------------------------------------------------------------------
# money and decimals
# ---------------------------------------------------------------------------------------------------

#: Stored amounts satisfy |amount| < 10^14, so |amount_e4| < E4_LIMIT.
E4_LIMIT = 10**18
#: A filter bound beyond every stored amount (still inside BIGINT), for values no row can equal.
E4_OUTSIDE = 2 * 10**18
_MONEY_LIMIT = Decimal(10) ** 14
_POW10 = [10**i for i in range(5)]


def money_out(m: Money, field: str = "amount") -> tuple[int, int, str]:
    """(amount_e4, amount_scale, currency): the exact amount in 1/10,000 units and its written scale."""
    amount = m.amount
    exp = amount.as_tuple().exponent
    scale = 0 if not isinstance(exp, int) or exp >= 0 else min(-exp, 4)
    scaled = amount.scaleb(4)
    e4 = int(scaled)
    if e4 != scaled or not -E4_LIMIT < e4 < E4_LIMIT:
        raise ValidationError([FieldError(field, "out_of_range", f"{amount} cannot be stored exactly (4 places, |x| < 10^14)")])
    return e4, scale, m.currency


def money_in(e4: int, scale: int, currency: str) -> Money:
    """The stored amount with the number of decimal places it was written with."""
    amount = Decimal(e4 if scale == 4 else e4 // _POW10[4 - scale]).scaleb(-scale)
    return _trusted(Money, amount=amount, currency=currency)  # type: ignore[no-any-return]


def money_filter_value(value: Decimal, op: str) -> int:
    """An integer ``b`` such that ``amount_e4 <op> b`` holds exactly when ``amount <op> value`` does.

    Amounts are whole numbers of 1/10,000 units, so a bound between two of them rounds up for ``lt``
    and ``gte`` and down for ``lte`` and ``gt``; a value no amount can equal maps outside every amount.
    """
    if abs(value) >= _MONEY_LIMIT:
        return E4_OUTSIDE if value > 0 else -E4_OUTSIDE
    if value == 0:
        return 0
    if value.adjusted() < -10:  # 0 < |value| < 10^-10: between 0 and the nearest amount
        floor = 0 if value > 0 else -1
        exact = False
    else:
        num, den = value.as_integer_ratio()
        floor, rem = divmod(num * 10_000, den)
        exact = rem == 0
    if exact:
        return floor
    if op in ("eq", "ne", "in"):
        return E4_OUTSIDE
    return floor + 1 if op in ("lt", "gte") else floor


_KEY_DIGITS = 200
_TINY_KEY = "0." + "0" * (_KEY_DIGITS + 10) + "1"


def decimal_key(d: Decimal, field: str = "probability_override") -> str:
    """Text whose order is the numeric order, for decimals in [0, 1]: ``0``, ``0.25``, ``1`` (no trailing
    zeros, so comparing the text compares the numbers)."""
    if d == 0:
        return "0"
    if d.adjusted() < -_KEY_DIGITS:
        raise ValidationError([FieldError(field, "too_precise", f"{d} has too many decimal places to be stored")])
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    if len(s) > _KEY_DIGITS + 2:
        raise ValidationError([FieldError(field, "too_precise", f"{d} has too many decimal places to be stored")])
    return s


def decimal_filter_key(value: Decimal) -> str:
    """The key of a filter value: below every key for negatives, above every key beyond 1."""
    if value < 0:
        return ""
    if value > 1:
        return "2"
    if value != 0 and value.adjusted() < -_KEY_DIGITS:
        return _TINY_KEY  # between 0 and every storable positive value
    return decimal_key(value)


def _decimal_in(v: Any) -> Decimal | None:
    return None if v is None else Decimal(v)


# ---------------------------------------------------------------------------------------------------
# entities
# ---------------------------------------------------------------------------------------------------


def child_values(kind: type[Entity], entity: Any) -> dict[str, list[str]]:
    """Values of the list fields kept in child tables, deduplicated in order."""
    if kind is Customer:
        return {
            "emails": list(dict.fromkeys(index_text(e.value) for e in entity.emails)),
            "phones": list(dict.fromkeys(index_text(p.e164) for p in entity.phones)),
            "tags": sorted(entity.tags),
        }
    if kind is Contact:
        return {
            "emails": list(dict.fromkeys(index_text(e.value) for e in entity.emails)),
            "phones": list(dict.fromkeys(index_text(p.e164) for p in entity.phones)),
        }
    return {}


def _customer_row(e: Customer, cx: Codec) -> tuple[Any, ...]:
    return (
        e.id,
        e.version,
        cx.dt_out(e.created_at),
        cx.dt_out(e.updated_at),
        e.name,
        e.kind,
        _str_list([x.value for x in e.emails]),
        _str_list([x.e164 for x in e.phones]),
        _addresses_out(e.addresses),
        e.country,
        e.category,
        e.status,
        e.owner_id,
        e.team_id,
        _tags_out(e.tags),
        _dict_out(e.custom, "custom"),
    )


def _customer(r: Row, cx: Codec) -> Customer:
    created = cx.dt_in(r[2])
    return Customer._load(  # type: ignore[no-any-return]
        {
            "id": r[0],
            "version": r[1],
            "created_at": created,
            "updated_at": created if r[3] == r[2] else cx.dt_in(r[3]),
            "name": r[4],
            "kind": r[5],
            "emails": _emails_in(r[6]),
            "phones": _phones_in(r[7]),
            "addresses": _addresses_in(r[8]),
            "country": r[9],
            "category": r[10],
            "status": r[11],
            "owner_id": r[12],
            "team_id": r[13],
            "tags": _tags_in(r[14]),
            "custom": json_in(r[15]),
        }
    )


def _contact_row(e: Contact, cx: Codec) -> tuple[Any, ...]:
    return (
        e.id,
        e.version,
        cx.dt_out(e.created_at),
        cx.dt_out(e.updated_at),
        e.customer_id,
        e.first_name,
        e.last_name,
        _str_list([x.value for x in e.emails]),
        _str_list([x.e164 for x in e.phones]),
        e.title,
        e.is_primary,
        _dict_out(e.consent, "consent"),
        _dict_out(e.custom, "custom"),
    )


def _contact(r: Row, cx: Codec) -> Contact:
    return Contact._load(  # type: ignore[no-any-return]
        {
            "id": r[0],
            "version": r[1],
            "created_at": cx.dt_in(r[2]),
            "updated_at": cx.dt_in(r[3]),
            "customer_id": r[4],
            "first_name": r[5],
            "last_name": r[6],
            "emails": _emails_in(r[7]),
            "phones": _phones_in(r[8]),
            "title": r[9],
            "is_primary": bool(r[10]),
            "consent": json_in(r[11]),
            "custom": json_in(r[12]),
        }
    )


def _opportunity_row(e: Opportunity, cx: Codec) -> tuple[Any, ...]:
    e4, scale, currency = money_out(e.amount)
    p = e.probability_override
    w = e.win_probability
    return (
        e.id,
        e.version,
        cx.dt_out(e.created_at),
        cx.dt_out(e.updated_at),
        e.customer_id,
        e.name,
        e4,
        scale,
        currency,
        e.stage,
        cx.date_out(e.expected_close),
        e.owner_id,
        e.pipeline.name,
        None if p is None else str(p),
        None if p is None else decimal_key(p),
        e.lost_reason,
        cx.dt_out(e.closed_at),
        _stages_out(e.stage_history),
        _dict_out(e.custom, "custom"),
        None if w is None else str(w),
        None if w is None else decimal_key(w, "win_probability"),
        cx.dt_out(e.scored_at),
    )


def _opportunity(r: Row, cx: Codec) -> Opportunity:
    return Opportunity._load(  # type: ignore[no-any-return]
        {
            "id": r[0],
            "version": r[1],
            "created_at": cx.dt_in(r[2]),
            "updated_at": cx.dt_in(r[3]),
            "customer_id": r[4],
            "name": r[5],
            "amount": money_in(r[6], r[7], r[8]),
            "stage": r[9],
            "expected_close": cx.date_in(r[10]),
            "owner_id": r[11],
            "pipeline": get_pipeline(r[12]),
            "probability_override": _decimal_in(r[13]),
            "lost_reason": r[15],
            "closed_at": cx.dt_in(r[16]),
            "stage_history": _stages_in(r[17]),
            "custom": json_in(r[18]),
            "win_probability": _decimal_in(r[19]),
            "scored_at": cx.dt_in(r[21]),
        }
    )


def _ticket_row(e: Ticket, cx: Codec) -> tuple[Any, ...]:
    return (
        e.id,
        e.version,
        cx.dt_out(e.created_at),
        cx.dt_out(e.updated_at),
        e.customer_id,
        e.subject,
        e.description,
        e.priority.value,
        e.status.value,
        e.assignee_id,
        cx.dt_out(e.first_response_at),
        cx.dt_out(e.resolved_at),
        cx.dt_out(e.closed_at),
        _statuses_out(e.status_history),
        e.category,
        e.channel,
        _dict_out(e.custom, "custom"),
    )


def _ticket(r: Row, cx: Codec) -> Ticket:
    return Ticket._load(  # type: ignore[no-any-return]
        {
            "id": r[0],
            "version": r[1],
            "created_at": cx.dt_in(r[2]),
            "updated_at": cx.dt_in(r[3]),
            "customer_id": r[4],
            "subject": r[5],
            "description": r[6],
            "priority": TicketPriority(r[7]),
            "status": TicketStatus(r[8]),
            "assignee_id": r[9],
            "first_response_at": cx.dt_in(r[10]),
            "resolved_at": cx.dt_in(r[11]),
            "closed_at": cx.dt_in(r[12]),
            "status_history": _statuses_in(r[13]),
            "category": r[14],
            "channel": r[15],
            "custom": json_in(r[16]),
        }
    )


def _interaction_row(e: Interaction, cx: Codec) -> tuple[Any, ...]:
    return (
        e.id,
        e.version,
        cx.dt_out(e.created_at),
        cx.dt_out(e.updated_at),
        e.customer_id,
        e.kind,
        cx.dt_out(e.occurred_at),
        e.subject,
        e.body,
        e.user_id,
        _dict_out(e.custom, "custom"),
        e.duration,
        e.direction,
        e.channel,
        e.contact_id,
        e.opportunity_id,
        e.outcome,
    )


def _interaction(r: Row, cx: Codec) -> Interaction:
    return Interaction._load(  # type: ignore[no-any-return]
        {
            "id": r[0],
            "version": r[1],
            "created_at": cx.dt_in(r[2]),
            "updated_at": cx.dt_in(r[3]),
            "customer_id": r[4],
            "kind": r[5],
            "occurred_at": cx.dt_in(r[6]),
            "subject": r[7],
            "body": r[8],
            "user_id": r[9],
            "custom": json_in(r[10]),
            "duration": r[11],
            "direction": r[12],
            "channel": r[13],
            "contact_id": r[14],
            "opportunity_id": r[15],
            "outcome": r[16],
        }
    )


def _order_row(e: Order, cx: Codec) -> tuple[Any, ...]:
    e4, scale, currency = money_out(e.amount)
    return (
        e.id,
        e.version,
        cx.dt_out(e.created_at),
        cx.dt_out(e.updated_at),
        e.customer_id,
        cx.dt_out(e.occurred_at),
        e4,
        scale,
        currency,
        e.order_no,
        _dict_out(e.custom, "custom"),
        _lines_out(e.lines),
    )


def _lines_out(lines: list[OrderLine]) -> str | None:
    """An order's lines as compact JSON (:meth:`OrderLine.to_mapping` each), None without lines."""
    return dump_json([line.to_mapping() for line in lines], "lines") if lines else None


def _lines_in(v: Any) -> list[OrderLine]:
    return [] if v is None else [OrderLine.from_stored(d) for d in json_in(v)]


def line_rows(e: Order) -> list[tuple[Any, ...]]:
    """The ``order_lines`` rows of an order: (order_id, line_no, product_id, quantity, unit_price_e4,
    discount_e4, amount_e4, currency); ``amount_e4`` is the line's total."""
    out = []
    for i, line in enumerate(e.lines):
        price = money_out(line.unit_price, f"lines[{i}].unit_price")[0]
        discount = money_out(Money(line.discount, line.currency), f"lines[{i}].discount")[0]
        total = money_out(line.total, f"lines[{i}]")[0]
        out.append((e.id, i, line.product_id, line.quantity, price, discount, total, line.currency))
    return out


def _product_row(e: Product, cx: Codec) -> tuple[Any, ...]:
    return (
        e.id,
        e.version,
        cx.dt_out(e.created_at),
        cx.dt_out(e.updated_at),
        e.sku,
        e.name,
        e.category,
        e.unit,
        e.active,
        _dict_out(e.custom, "custom"),
    )


def _product(r: Row, cx: Codec) -> Product:
    return Product._load(  # type: ignore[no-any-return]
        {
            "id": r[0],
            "version": r[1],
            "created_at": cx.dt_in(r[2]),
            "updated_at": cx.dt_in(r[3]),
            "sku": r[4],
            "name": r[5],
            "category": r[6],
            "unit": r[7],
            "active": bool(r[8]),
            "custom": json_in(r[9]),
        }
    )


def _order(r: Row, cx: Codec) -> Order:
    return Order._load(  # type: ignore[no-any-return]
        {
            "id": r[0],
            "version": r[1],
            "created_at": cx.dt_in(r[2]),
            "updated_at": cx.dt_in(r[3]),
            "customer_id": r[4],
            "occurred_at": cx.dt_in(r[5]),
            "amount": money_in(r[6], r[7], r[8]),
            "order_no": r[9],
            "custom": json_in(r[10]),
            "lines": _lines_in(r[11]),
        }
    )


def _survey_row(e: Survey, cx: Codec) -> tuple[Any, ...]:
    return (
        e.id,
        e.version,
        cx.dt_out(e.created_at),
        cx.dt_out(e.updated_at),
        e.customer_id,
        e.kind,
        cx.dt_out(e.sent_at),
        e.score,
        e.comment,
        e.ticket_id,
        e.interaction_id,
        e.user_id,
        cx.dt_out(e.answered_at),
        _dict_out(e.custom, "custom"),
    )


def _survey(r: Row, cx: Codec) -> Survey:
    return Survey._load(  # type: ignore[no-any-return]
        {
            "id": r[0],
            "version": r[1],
            "created_at": cx.dt_in(r[2]),
            "updated_at": cx.dt_in(r[3]),
            "customer_id": r[4],
            "kind": r[5],
            "sent_at": cx.dt_in(r[6]),
            "score": None if r[7] is None else int(r[7]),
            "comment": r[8],
            "ticket_id": r[9],
            "interaction_id": r[10],
            "user_id": r[11],
            "answered_at": cx.dt_in(r[12]),
            "custom": json_in(r[13]),
        }
    )


def _activity_row(e: Activity, cx: Codec) -> tuple[Any, ...]:
    return (
        e.id,
        e.version,
        cx.dt_out(e.created_at),
        cx.dt_out(e.updated_at),
        e.customer_id,
        e.kind,
        cx.dt_out(e.occurred_at),
        _dict_out(e.properties, "properties"),
        e.contact_id,
        e.source,
    )


def _activity(r: Row, cx: Codec) -> Activity:
    return Activity._load(  # type: ignore[no-any-return]
        {
            "id": r[0],
            "version": r[1],
            "created_at": cx.dt_in(r[2]),
            "updated_at": cx.dt_in(r[3]),
            "customer_id": r[4],
            "kind": r[5],
            "occurred_at": cx.dt_in(r[6]),
            "properties": json_in(r[7]),
            "contact_id": r[8],
            "source": r[9],
        }
    )


def _campaign_row(e: Campaign, cx: Codec) -> tuple[Any, ...]:
    budget = (None, None, None) if e.budget is None else money_out(e.budget, "budget")
    spend = (None, None, None) if e.spend is None else money_out(e.spend, "spend")
    return (
        e.id,
        e.version,
        cx.dt_out(e.created_at),
        cx.dt_out(e.updated_at),
        e.name,
        e.channel,
        cx.date_out(e.start),
        cx.date_out(e.end),
        budget[0],
        budget[1],
        spend[0],
        spend[1],
        budget[2] or spend[2],
        e.status,
        e.owner_id,
        e.window_days,
        e.attribution,
    )


def _campaign(r: Row, cx: Codec) -> Campaign:
    return Campaign._load(  # type: ignore[no-any-return]
        {
            "id": r[0],
            "version": r[1],
            "created_at": cx.dt_in(r[2]),
            "updated_at": cx.dt_in(r[3]),
            "name": r[4],
            "channel": r[5],
            "start": cx.date_in(r[6]),
            "end": cx.date_in(r[7]),
            "budget": None if r[8] is None else money_in(r[8], r[9], r[12]),
            "spend": None if r[10] is None else money_in(r[10], r[11], r[12]),
            "status": r[13],
            "owner_id": r[14],
            "window_days": int(r[15]),
            "attribution": r[16],
        }
    )


def _member_row(e: CampaignMember, cx: Codec) -> tuple[Any, ...]:
    return (
        e.id,
        e.version,
        cx.dt_out(e.created_at),
        cx.dt_out(e.updated_at),
        e.campaign_id,
        e.customer_id,
        cx.dt_out(e.added_at),
        e.contact_id,
        e.state,
    )


def _member(r: Row, cx: Codec) -> CampaignMember:
    return CampaignMember._load(  # type: ignore[no-any-return]
        {
            "id": r[0],
            "version": r[1],
            "created_at": cx.dt_in(r[2]),
            "updated_at": cx.dt_in(r[3]),
            "campaign_id": r[4],
            "customer_id": r[5],
            "added_at": cx.dt_in(r[6]),
            "contact_id": r[7],
            "state": r[8],
        }
    )


def _response_row(e: CampaignResponse, cx: Codec) -> tuple[Any, ...]:
    return (
        e.id,
        e.version,
        cx.dt_out(e.created_at),
        cx.dt_out(e.updated_at),
        e.member_id,
        e.campaign_id,
        e.customer_id,
        e.kind,
        cx.dt_out(e.at),
    )


def _response(r: Row, cx: Codec) -> CampaignResponse:
    return CampaignResponse._load(  # type: ignore[no-any-return]
        {
            "id": r[0],
            "version": r[1],
            "created_at": cx.dt_in(r[2]),
            "updated_at": cx.dt_in(r[3]),
            "member_id": r[4],
            "campaign_id": r[5],
            "customer_id": r[6],
            "kind": r[7],
            "at": cx.dt_in(r[8]),
        }
    )


def _attachment_row(e: Attachment, cx: Codec) -> tuple[Any, ...]:
    return (
        e.id,
        e.version,
        cx.dt_out(e.created_at),
        cx.dt_out(e.updated_at),
        e.customer_id,
        e.record_kind,
        e.record_id,
        e.name,
        e.media_type,
        e.size,
        e.sha256,
        e.uploaded_by,
    )


def _attachment(r: Row, cx: Codec) -> Attachment:
    return Attachment._load(  # type: ignore[no-any-return]
        {
            "id": r[0],
            "version": r[1],
            "created_at": cx.dt_in(r[2]),
            "updated_at": cx.dt_in(r[3]),
            "customer_id": r[4],
            "record_kind": r[5],
            "record_id": r[6],
            "name": r[7],
            "media_type": r[8],
            "size": r[9],
            "sha256": r[10],
            "uploaded_by": r[11],
        }
    )


def _task_row(e: Task, cx: Codec) -> tuple[Any, ...]:
    return (
        e.id,
        e.version,
        cx.dt_out(e.created_at),
        cx.dt_out(e.updated_at),
        e.title,
        cx.dt_out(e.due_at),
        e.assignee_id,
        e.related_id,
        e.done,
        _dict_out(e.custom, "custom"),
    )


def _task(r: Row, cx: Codec) -> Task:
    return Task._load(  # type: ignore[no-any-return]
        {
            "id": r[0],
            "version": r[1],
            "created_at": cx.dt_in(r[2]),
            "updated_at": cx.dt_in(r[3]),
            "title": r[4],
            "due_at": cx.dt_in(r[5]),
            "assignee_id": r[6],
            "related_id": r[7],
            "done": bool(r[8]),
            "custom": json_in(r[9]),
        }
    )


def _user_row(e: User, cx: Codec) -> tuple[Any, ...]:
    return (
        e.id,
        e.version,
        cx.dt_out(e.created_at),
        cx.dt_out(e.updated_at),
        e.name,
        e.email.value,
        _roles_out(e.roles),
        e.team_id,
    )


def _user(r: Row, cx: Codec) -> User:
    return User._load(  # type: ignore[no-any-return]
        {
            "id": r[0],
            "version": r[1],
            "created_at": cx.dt_in(r[2]),
            "updated_at": cx.dt_in(r[3]),
            "name": r[4],
            "email": EmailAddress(r[5]),
            "roles": _roles_in(r[6]),
            "team_id": r[7],
        }
    )


class Mapper:
    """How one entity kind maps to its table: columns in order, row builder, loader, filter columns."""

    __slots__ = ("columns", "from_row", "kind", "table", "to_row")

    def __init__(
        self,
        kind: type[Entity],
        columns: tuple[str, ...],
        to_row: Callable[[Any, Codec], tuple[Any, ...]],
        from_row: Callable[[Row, Codec], Any],
    ):
        self.kind = kind
        self.table: sa.Table = ENTITY_TABLES[kind]
        actual = tuple(c.name for c in self.table.columns)
        if actual != columns:  # pragma: no cover - a programming error caught at import
            raise RuntimeError(f"mapping of {kind.__name__} is out of date with its table: {actual} != {columns}")
        self.columns = columns
        self.to_row = to_row
        self.from_row = from_row


_BASE = ("id", "version", "created_at", "updated_at")
MAPPERS: dict[type[Entity], Mapper] = {
    Customer: Mapper(
        Customer,
        (
            *_BASE,
            "name",
            "kind",
            "emails",
            "phones",
            "addresses",
            "country",
            "category",
            "status",
            "owner_id",
            "team_id",
            "tags",
            "custom",
        ),
        _customer_row,
        _customer,
    ),
    Contact: Mapper(
        Contact,
        (*_BASE, "customer_id", "first_name", "last_name", "emails", "phones", "title", "is_primary", "consent", "custom"),
        _contact_row,
        _contact,
    ),
    Opportunity: Mapper(
        Opportunity,
        (
            *_BASE,
            "customer_id",
            "name",
            "amount_e4",
            "amount_scale",
            "currency",
            "stage",
            "expected_close",
            "owner_id",
            "pipeline",
            "probability_override",
            "probability_override_key",
            "lost_reason",
            "closed_at",
            "stage_history",
            "custom",
            "win_probability",
            "win_probability_key",
            "scored_at",
        ),
        _opportunity_row,
        _opportunity,
    ),
    Ticket: Mapper(
        Ticket,
        (
            *_BASE,
            "customer_id",
            "subject",
            "description",
            "priority",
            "status",
            "assignee_id",
            "first_response_at",
            "resolved_at",
            "closed_at",
            "status_history",
            "category",
            "channel",
            "custom",
        ),
        _ticket_row,
        _ticket,
    ),
    Interaction: Mapper(
        Interaction,
        (
            *_BASE,
            "customer_id",
            "kind",
            "occurred_at",
            "subject",
            "body",
            "user_id",
            "custom",
            "duration",
            "direction",
            "channel",
            "contact_id",
            "opportunity_id",
            "outcome",
        ),
        _interaction_row,
        _interaction,
    ),
    Order: Mapper(
        Order,
        (*_BASE, "customer_id", "occurred_at", "amount_e4", "amount_scale", "currency", "order_no", "custom", "lines"),
        _order_row,
        _order,
    ),
    Product: Mapper(Product, (*_BASE, "sku", "name", "category", "unit", "active", "custom"), _product_row, _product),
    Task: Mapper(Task, (*_BASE, "title", "due_at", "assignee_id", "related_id", "done", "custom"), _task_row, _task),
    User: Mapper(User, (*_BASE, "name", "email", "roles", "team_id"), _user_row, _user),
    Activity: Mapper(
        Activity,
        (*_BASE, "customer_id", "kind", "occurred_at", "properties", "contact_id", "source"),
        _activity_row,
        _activity,
    ),
    Survey: Mapper(
        Survey,
        (
            *_BASE,
            "customer_id",
            "kind",
            "sent_at",
            "score",
            "comment",
            "ticket_id",
            "interaction_id",
            "user_id",
            "answered_at",
            "custom",
        ),
        _survey_row,
        _survey,
    ),
    Campaign: Mapper(
        Campaign,
        (
            *_BASE,
            "name",
            "channel",
            "start",
            "end",
            "budget_e4",
            "budget_scale",
            "spend_e4",
            "spend_scale",
            "currency",
            "status",
            "owner_id",
            "window_days",
            "attribution",
        ),
        _campaign_row,
        _campaign,
    ),
    CampaignMember: Mapper(
        CampaignMember,
        (*_BASE, "campaign_id", "customer_id", "added_at", "contact_id", "state"),
        _member_row,
        _member,
    ),
    CampaignResponse: Mapper(
        CampaignResponse,
        (*_BASE, "member_id", "campaign_id", "customer_id", "kind", "at"),
        _response_row,
        _response,
    ),
    Attachment: Mapper(
        Attachment,
        (*_BASE, "customer_id", "record_kind", "record_id", "name", "media_type", "size", "sha256", "uploaded_by"),
        _attachment_row,
        _attachment,
    ),
}

#: filter field -> column, where they differ (money compares the amount, decimals their key).
FILTER_COLUMNS: dict[str, str] = {
    "amount": "amount_e4",
    "probability_override": "probability_override_key",
    "win_probability": "win_probability_key",
}

#: column -> entity field, to name the field in errors the database reports by column.
COLUMN_FIELDS: dict[str, str] = {
    "amount_e4": "amount",
    "amount_scale": "amount",
    "currency": "amount.currency",
    "probability_override_key": "probability_override",
    "win_probability_key": "win_probability",
}
