"""Rows to entities and entities to flat rows: type conversion both ways, the same text forms.

Flat forms (what CSV and XLSX cells hold; JSON Lines uses native lists and objects where it can):

* lists (``emails``, ``phones``, ``tags``) joined with ``"; "`` (read back splitting on ``;`` ``,`` ``|``,
  full-width too); a list whose items hold a separator is written as a JSON array;
* money as ``amount`` (``"12.50"``) and ``currency`` (``"EUR"``) columns; on reading, ``"¥1,234.50"``,
  ``"12.50 USD"`` and ``"1,234元"`` are understood, the currency column or option filling in;
* date-times in ISO 8601 (``2024-05-01T09:30:00+00:00``); on reading also ``2024/5/1 9:30``,
  ``2024年5月1日``, Excel date cells; times without a zone are in the import's ``timezone`` (UTC default);
* booleans ``true``/``false`` (reading also yes/no, 1/0, 是/否);
* structured fields (addresses, custom, consent, histories, an order's lines) as compact JSON.

The :class:`Converter` is plain data, so it can be sent to worker processes.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from pycrm.domain import (
    ENTITIES,
    Address,
    CustomField,
    Entity,
    PhoneNumber,
    StageChange,
    StatusChange,
    check_custom,
    check_required,
    default_region,
)
from pycrm.domain._checks import JSONTooDeep, json_loads
from pycrm.domain._codec import to_data
from pycrm.errors import FieldError, ValidationError
from pycrm.io._mapping import field_types

__all__ = ["Converted", "Converter", "flat_value", "flatten"]

_SPLIT = re.compile(r"\s*[;,|；，、\n]\s*")
_SEPS = (";", ",", "|", "；", "，", "、", "\n")
_TRUE = frozenset({"true", "t", "yes", "y", "1", "是", "真", "对", "x", "✓"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "否", "假", "", "不是"})
_SYMBOLS = {"¥": "CNY", "￥": "CNY", "元": "CNY", "RMB": "CNY", "$": "USD", "US$": "USD", "€": "EUR", "£": "GBP", "HK$": "HKD"}
_AMOUNT = re.compile(
    r"^\s*(?P<pre>[A-Za-z]{3}|US\$|HK\$|RMB|[¥￥$€£])?\s*(?P<num>[-+]?[\d,，]*\.?\d+)\s*(?P<post>[A-Za-z]{3}|RMB|元)?\s*$"
)
_CN_DATE = re.compile(
    r"^\s*(\d{4})\s*[年/.\-]\s*(\d{1,2})\s*[月/.\-]\s*(\d{1,2})\s*日?\s*(?:[T\s]\s*(\d{1,2})[:时](\d{1,2})(?:[:分](\d{1,2}(?:\.\d+)?))?秒?)?\s*$"
)


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v.strip()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat()
    return str(v).strip()


def _empty(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


class _Bad(Exception):
    """One value that cannot be converted: the message names the expected form."""


def _list(v: Any) -> list[Any]:
    if isinstance(v, (list, tuple)):
        return [x for x in v if not _empty(x)]
    s = _text(v)
    if s.startswith("["):
        try:
            got = json_loads(s)
        except JSONTooDeep as exc:
            raise _Bad(str(exc)) from None
        except ValueError:
            got = None
        if isinstance(got, list):
            return got
    return [x for x in _SPLIT.split(s) if x]


def _json(v: Any, want: type) -> Any:
    if isinstance(v, want):
        return v
    s = _text(v)
    try:
        got = json_loads(s)
    except JSONTooDeep as exc:
        raise _Bad(str(exc)) from None
    except ValueError:
        raise _Bad(f"{s[:60]!r} is not JSON {'an object' if want is dict else 'an array'}") from None
    if not isinstance(got, want):
        raise _Bad(f"expected a JSON {'object' if want is dict else 'array'}, got {type(got).__name__}")
    return got


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = _text(v).lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise _Bad(f"{s[:40]!r} is not true or false (use true/false, yes/no, 1/0, 是/否)")


def _whole(v: Any) -> int:
    """A whole number: an integer cell, a spreadsheet number without a fraction, or text such as ``4``."""
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    s = _text(v).strip()
    if re.fullmatch(r"[+-]?[0-9]{1,18}", s):
        return int(s)
    raise _Bad(f"{s[:40]!r} is not a whole number")


def parse_datetime(v: Any, tz: dt.tzinfo) -> dt.datetime:
    if isinstance(v, dt.datetime):
        return (v.replace(tzinfo=tz) if v.tzinfo is None else v).astimezone(dt.UTC)
    if isinstance(v, dt.date):
        return dt.datetime(v.year, v.month, v.day, tzinfo=tz).astimezone(dt.UTC)
    s = unicodedata.normalize("NFKC", _text(v))
    try:
        got = dt.datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        m = _CN_DATE.match(s)
        if m is None:
            raise _Bad(f"{s[:40]!r} is not a date or date-time (use 2024-05-01 or 2024-05-01T09:30:00+08:00)") from None
        y, mo, d, h, mi, sec = m.groups()
        try:
            frac = float(sec or 0)
            got = dt.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(frac), round((frac % 1) * 1e6))
        except ValueError as exc:
            raise _Bad(f"{s[:40]!r} is not a valid date ({exc})") from None
    if got.tzinfo is None:
        got = got.replace(tzinfo=tz)
    return got.astimezone(dt.UTC)


def parse_date(v: Any) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    s = unicodedata.normalize("NFKC", _text(v))
    try:
        return dt.date.fromisoformat(s)
    except ValueError:
        m = _CN_DATE.match(s)
        if m is None or m.group(4) is not None:
            raise _Bad(f"{s[:40]!r} is not a date (use 2024-05-01)") from None
        try:
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError as exc:
            raise _Bad(f"{s[:40]!r} is not a valid date ({exc})") from None


def parse_amount(v: Any) -> tuple[Decimal, str | None]:
    """(amount, currency written with it or None)."""
    if isinstance(v, bool):
        raise _Bad(f"{v!r} is not an amount")
    if isinstance(v, int):
        return Decimal(v), None
    if isinstance(v, float):
        return Decimal(repr(v)), None  # an XLSX number cell: its shortest decimal text
    if isinstance(v, Decimal):
        return v, None
    if isinstance(v, Mapping) and "amount" in v:
        amount, cur = parse_amount(v["amount"])
        return amount, (str(v["currency"]) if v.get("currency") else cur)
    s = unicodedata.normalize("NFKC", _text(v))
    m = _AMOUNT.match(s)
    if m is None:
        raise _Bad(f"{s[:40]!r} is not an amount (use 1234.50, optionally with a currency such as 'CNY 1234.50')")
    cur = m.group("pre") or m.group("post")
    if cur is not None:
        cur = _SYMBOLS.get(cur, _SYMBOLS.get(cur.upper(), cur.upper()))
    try:
        return Decimal(m.group("num").replace(",", "").replace("，", "")), cur
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        raise _Bad(f"{s[:40]!r} is not an amount") from None


def _stage_history(v: Any, tz: dt.tzinfo) -> list[StageChange]:
    return [StageChange(d.get("from_stage"), d["to_stage"], parse_datetime(d["at"], tz), d.get("by")) for d in _json(v, list)]


def _status_history(v: Any, tz: dt.tzinfo) -> list[StatusChange]:
    return [StatusChange(d.get("from_status"), d["to_status"], parse_datetime(d["at"], tz), d.get("by")) for d in _json(v, list)]


def _addresses(v: Any) -> list[Address]:
    if isinstance(v, list) or (isinstance(v, str) and v.strip().startswith("[")):
        return [Address.from_mapping(d, f"addresses[{i}]") for i, d in enumerate(_json(v, list))]
    if isinstance(v, dict):
        return [Address.from_mapping(v, "addresses[0]")]
    return [Address(street=_text(v))]


def _unknown(target: str) -> Callable[[Any], Any]:
    def fail(v: Any) -> Any:
        raise KeyError(target)

    return fail


def _converter(t: str, tz: dt.tzinfo) -> Callable[[Any], Any]:
    """How a non-blank cell becomes a value of a field of type ``t`` (as ``field_types`` names it)."""
    if t in ("list[EmailAddress]", "list[PhoneNumber]"):
        return lambda v: [_text(x) for x in _list(v)]
    if t == "frozenset[str]":
        return lambda v: frozenset(_text(x) for x in _list(v))
    if t == "list[Address]":
        return _addresses
    if t == "list[OrderLine]":  # JSON: a list of {"product_id", "quantity", "unit_price", "discount", "currency"}
        return lambda v: _json(v, list)
    if t in ("dict[str, Any]", "dict[str, bool]"):
        return lambda v: _json(v, dict)
    if t == "bool":
        return _bool
    if t == "int | None":
        return _whole
    if t.startswith("dt.datetime"):
        return lambda v: parse_datetime(v, tz)
    if t == "dt.date | None":
        return parse_date
    if t == "Decimal | None":
        return lambda v: parse_amount(v)[0]
    if t == "list[StageChange]":
        return lambda v: _stage_history(v, tz)
    if t == "list[StatusChange]":
        return lambda v: _status_history(v, tz)
    return _text


Converted = tuple[int, "Entity | None", list[tuple[str | None, Any, str]], dict[str, Any], dict[str, Any]]
"""(row, entity or None, problems as (column, value, message), key values by field, customer references)."""


@attrs.frozen
class Converter:
    """Turns rows of one file into entities: ``columns`` (header), ``targets`` (column -> target)."""

    kind: str
    columns: tuple[str, ...]
    targets: tuple[tuple[str, str], ...]
    keys: tuple[str, ...] = ()
    region: str | None = None
    currency: str = "CNY"
    timezone: str = "UTC"
    custom_fields: tuple[CustomField, ...] = ()
    #: built-in fields the store requires (``pycrm.open(required_fields=...)``): a row leaving one blank is refused
    required: tuple[str, ...] = ()

    def _tz(self) -> dt.tzinfo:
        if self.timezone.upper() == "UTC":
            return dt.UTC
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.timezone)

    def convert_many(self, rows: list[tuple[int, Any]]) -> list[Converted]:
        """Convert a chunk (run in a worker process or in the caller)."""
        tz = self._tz()
        types = field_types(self.kind)
        cls = ENTITIES[self.kind]
        column_of = {t: c for c, t in self.targets}
        plan = self._plan(types, tz)
        with default_region(self.region):
            return [self.convert(n, v, types, cls, column_of, plan) for n, v in rows]

    def _plan(self, types: dict[str, str], tz: dt.tzinfo) -> list[tuple[str, str, str, Any]]:
        """(column, target, what it fills, how a value converts) per mapped column, decided once per chunk."""
        plan: list[tuple[str, str, str, Any]] = []
        for col, target in self.targets:
            if target.startswith("customer."):
                plan.append((col, target[9:], "ref", None))
            elif target.startswith("custom."):
                plan.append((col, target[7:], "custom", None))
            elif target.startswith("address."):
                plan.append((col, target[8:], "address", None))
            elif target in ("currency", "full_name"):
                plan.append((col, target, target, None))
            elif target not in types:  # reported on every row, as a value that cannot be converted
                plan.append((col, target, "field", _unknown(target)))
            else:
                t = types[target]
                plan.append(
                    (col, target, "Money" if t == "Money" else "blank-text" if t == "str" else "field", _converter(t, tz))
                )
        return plan

    def convert(
        self,
        rowno: int,
        values: Any,
        types: dict[str, str],
        cls: type[Entity],
        column_of: dict[str, str],
        plan: list[tuple[str, str, str, Any]],
    ) -> Converted:
        row = values if isinstance(values, dict) else dict(zip(self.columns, values))
        problems: list[tuple[str | None, Any, str]] = []
        kw: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        address: dict[str, Any] = {}
        refs: dict[str, Any] = {}
        money: Any = None
        money_col = None
        currency: str | None = None
        for col, target, what, conv in plan:
            v = row.get(col)
            if v is None or (isinstance(v, str) and not v.strip()):
                if what == "blank-text":
                    kw[target] = ""  # a required text left blank is reported by the entity
                elif what == "Money":
                    money_col = col
                elif what == "currency":
                    currency = None
                continue
            try:
                if what == "field" or what == "blank-text":
                    kw[target] = conv(v)
                elif what == "ref":
                    refs[target] = _text(v) if target not in ("emails", "phones") else _text(_list(v)[0])
                elif what == "custom":
                    custom[target] = self._custom_value(target, v)
                elif what == "address":
                    address[target] = _text(v)
                elif what == "currency":
                    currency = _text(v).upper()
                elif what == "full_name":
                    kw["first_name"], kw["last_name"] = _split_name(_text(v))
                else:  # Money
                    money, money_col = parse_amount(v), col
            except _Bad as exc:
                problems.append((col, v, str(exc)))
            except (ValidationError, KeyError, TypeError, ValueError) as exc:
                problems.append((col, v, _message(exc)))
        if "Money" in types.values():
            amount_col = column_of.get("amount")
            if money is not None:
                cur = currency or money[1] or self.currency
                kw["amount"] = {"amount": money[0], "currency": cur}
            elif amount_col is not None and money_col is not None and not any(p[0] == amount_col for p in problems):
                problems.append((amount_col, row.get(amount_col), "the amount is blank"))
        if address:
            kw["addresses"] = [Address.from_mapping(address, "address")] if "addresses" not in kw else kw["addresses"]
        if custom:
            kw["custom"] = {**kw.get("custom", {}), **custom}
        if self.kind != "customers" and "customer_id" not in kw:
            kw["customer_id"] = "pending-reference"  # replaced once the reference is looked up
        entity = None
        if not problems:
            try:
                entity = cls(**kw)
                if custom and self.custom_fields:
                    check_custom(entity.custom, self.custom_fields)  # type: ignore[attr-defined]
                if self.required:
                    check_required(entity, self.required)
            except ValidationError as exc:
                for e in exc.errors:
                    problems.append(self._place(e, row, column_of))
            except TypeError as exc:
                problems.append((None, None, str(exc)))
        keys: dict[str, Any] = {}
        if entity is not None:
            for k in self.keys:
                kv = _key_value(entity, k)
                if kv is not None:
                    keys[k] = kv
        return rowno, entity, problems, keys, refs

    def _custom_value(self, key: str, v: Any) -> Any:
        d = next((f for f in self.custom_fields if f.name == key), None)
        if d is None or d.type in ("text", "choice", "date", "decimal"):
            if d is not None and d.type == "date":
                return parse_date(v).isoformat()
            return _text(v) if not isinstance(v, (bool, int)) or d is not None else v
        if d.type == "integer":
            if isinstance(v, int) and not isinstance(v, bool):
                return v
            try:
                return int(_text(v))
            except ValueError:
                raise _Bad(f"{_text(v)[:40]!r} is not a whole number") from None
        return _bool(v)

    def _place(self, e: FieldError, row: Mapping[str, Any], column_of: dict[str, str]) -> tuple[str | None, Any, str]:
        path = e.field
        root = re.split(r"[.\[]", path, maxsplit=1)[0]
        if path.startswith("custom."):
            col = column_of.get(".".join(path.split(".")[:2])) or column_of.get("custom")
        elif path.startswith("amount.currency"):
            col = column_of.get("currency") or column_of.get("amount")
        elif root in ("first_name", "last_name") and root not in column_of:
            col = column_of.get("full_name")
        elif root == "addresses" and "addresses" not in column_of:
            col = next((c for t, c in column_of.items() if t.startswith("address.")), None)
        else:
            col = column_of.get(root)
        return col, row.get(col) if col is not None else None, e.message if col is not None else str(e)


def _split_name(full: str) -> tuple[str, str]:
    """(first name, last name): ``王小明`` -> (小明, 王); ``Ada Lovelace`` -> (Ada, Lovelace)."""
    if re.search("[\u3400-\u9fff]", full) and " " not in full and len(full) >= 2:
        return full[1:], full[0]
    parts = full.rsplit(" ", 1)
    return (parts[0], parts[1]) if len(parts) == 2 else (full, "")


def _key_value(entity: Any, key: str) -> Any:
    if key.startswith("custom."):
        v = entity.custom.get(key[7:])
        return None if v is None or v == "" else v
    v = getattr(entity, key)
    if isinstance(v, list):
        if not v:
            return None
        v = v[0]
    if v is None or v == "":
        return None
    return v.e164 if isinstance(v, PhoneNumber) else getattr(v, "value", v)


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(e.message for e in exc.errors)
    if isinstance(exc, KeyError):
        return f"missing {exc}"
    return str(exc)


# ---------------------------------------------------------------------------------------------- export


def flat_value(v: Any, json_native: bool = False) -> Any:
    """One field value (as ``to_data`` gives it) in its flat form (see the module docstring)."""
    if v is None:
        return None if json_native else ""
    t = type(v)
    if t is str:
        return v
    if t is bool:
        return v if json_native else ("true" if v else "false")
    if t is int:
        return v if json_native else str(v)
    if t is list:
        if json_native:
            return v
        if not v:
            return ""
        if all(type(x) is str for x in v):
            joined = "; ".join(v)
            if not any(s in x for x in v for s in _SEPS) and not joined.startswith("["):
                return joined
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    if t is dict:
        if json_native:
            return v
        return json.dumps(v, ensure_ascii=False, separators=(",", ":")) if v else ""
    return str(v)


Flattener = Callable[[Entity], list[Any]]


def flatten(kind: str, fields: tuple[str, ...], json_native: bool = False) -> Flattener:
    """A function from an entity to its flat row of ``fields``."""

    def row(entity: Entity) -> list[Any]:
        data = to_data(entity)
        out: list[Any] = []
        for f in fields:
            if f == "amount":
                out.append(data["amount"]["amount"])
            elif f == "currency":
                out.append(data["amount"]["currency"])
            elif f.startswith("custom."):
                v = data["custom"].get(f[7:])
                out.append(flat_value(v, json_native) if not isinstance(v, (int, float)) or json_native else str(v))
            else:
                out.append(flat_value(data[f], json_native))
        return out

    return row
