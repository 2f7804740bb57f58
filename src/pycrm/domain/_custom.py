"""Custom field definitions: hosts add fields to customers without schema changes."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from pycrm.domain._checks import check_flag, check_iterable, text
from pycrm.errors import FieldError, ValidationError, quote

__all__ = ["FILTER_KINDS", "CustomField", "check_custom", "check_required", "is_blank"]

TYPES = ("text", "integer", "decimal", "boolean", "date", "choice")
#: The types a custom field held unique (``unique=True``) may have: identifiers are text or whole numbers.
UNIQUE_TYPES = ("text", "integer")
#: The longest name of a unique custom field (the store's key table names it ``custom.<name>``).
UNIQUE_NAME = 90
#: The longest name of an indexed custom field (the index is named after its table and the field).
INDEXED_NAME = 40
#: What a custom field's name must look like to be filtered (``{"custom.<name>": ...}``) or indexed.
FILTER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
#: A decimal custom value written as text: plain notation (``"-12.50"``), no exponent, so every database
#: compares it as a number.
DECIMAL_TEXT = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
#: A date custom value: ``YYYY-MM-DD`` (so comparing the text compares the dates).
DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: The filter kind (``pycrm.storage._where``) of a custom field of each type: ranges on numbers and dates,
#: ``contains`` / ``startswith`` on text, equality on booleans.
FILTER_KINDS = {
    "text": "custom_text",
    "choice": "custom_text",
    "integer": "custom_int",
    "decimal": "custom_decimal",
    "date": "custom_date",
    "boolean": "custom_bool",
}


def _name(value: Any) -> str:
    return text(value, "name", required=True, max_len=200)  # type: ignore[no-any-return]


def _required(value: Any) -> bool:
    return check_flag("required", value)


def _type(value: Any) -> str:
    if not isinstance(value, str) or value not in TYPES:
        raise ValidationError([FieldError("type", "invalid_choice", f"{quote(value)} is not one of {', '.join(TYPES)}")])
    return value


def _choices(value: Any) -> tuple[str, ...]:
    items = tuple(check_iterable("choices", value))
    for i, v in enumerate(items):
        text(v, f"choices[{i}]", max_len=100_000)
    return items


@attrs.frozen
class CustomField:
    """One custom field: ``CustomField("tier", "choice", choices=("gold", "silver"))``.

    ``unique=True`` makes the field an upsert key the store holds unique, as it always holds
    ``custom.external_id``: two customers never share a value (``None`` is no value). Only ``text`` and
    ``integer`` fields may be unique, and their name must be an identifier of at most 90 characters.

    ``indexed=True`` has a SQL store keep an index on the field's value (an expression index on SQLite and
    PostgreSQL, an indexed virtual column on MariaDB/MySQL) that filters on it use; the name must be an
    identifier of at most 40 characters, its type not ``boolean``. A memory store has nothing to index.

    Values are checked by type: ``text`` a string, ``integer`` a whole number, ``decimal`` a whole number or
    a string in plain notation (``"12.50"``), ``boolean`` true or false, ``date`` ISO text ``"YYYY-MM-DD"``,
    ``choice`` one of ``choices``.
    """

    name: str = attrs.field(converter=_name)
    type: str = attrs.field(default="text", converter=_type)
    required: bool = attrs.field(default=False, converter=_required)
    choices: tuple[str, ...] = attrs.field(default=(), converter=_choices)
    unique: bool = attrs.field(default=False, kw_only=True)
    indexed: bool = attrs.field(default=False, kw_only=True)

    def __attrs_post_init__(self) -> None:
        where = f"custom_fields.{self.name}" if isinstance(self.name, str) else "custom_fields"
        if self.indexed is not False:
            if not isinstance(self.indexed, bool):
                raise ValidationError([FieldError(f"{where}.indexed", "type", f"expected true or false, got {self.indexed!r}")])
            if self.type == "boolean":
                raise ValidationError(
                    [
                        FieldError(
                            f"{where}.indexed",
                            "unsupported",
                            "a boolean field is not indexed (two values: an index would not help)",
                        )
                    ]
                )
            if not FILTER_NAME.fullmatch(self.name) or len(self.name) > INDEXED_NAME:
                raise ValidationError(
                    [
                        FieldError(
                            where,
                            "invalid_name",
                            f"an indexed field's name is an identifier (letters, digits, _) of at most {INDEXED_NAME} characters",
                        )
                    ]
                )
        if self.unique is False:
            return
        if not isinstance(self.unique, bool):
            raise ValidationError([FieldError(f"{where}.unique", "type", f"expected true or false, got {self.unique!r}")])
        errors = []
        if self.type not in UNIQUE_TYPES:
            errors.append(
                FieldError(f"{where}.unique", "unsupported", f"a {self.type} field cannot be unique (use text or integer)")
            )
        name = self.name
        if not isinstance(name, str) or not name.isidentifier() or len(name) > UNIQUE_NAME or name.startswith("__"):
            errors.append(
                FieldError(where, "invalid_name", f"a unique field's name is an identifier of at most {UNIQUE_NAME} characters")
            )
        if errors:
            raise ValidationError(errors)

    def check(self, value: Any, field: str) -> FieldError | None:
        t = self.type
        ok = True
        if t == "text":
            ok = isinstance(value, str)
        elif t == "integer":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif t == "decimal":
            try:
                ok = (type(value) is int or (isinstance(value, str) and DECIMAL_TEXT.fullmatch(value) is not None)) and Decimal(
                    str(value)
                ).is_finite()
            except InvalidOperation:
                ok = False
        elif t == "boolean":
            ok = isinstance(value, bool)
        elif t == "date":
            try:
                ok = isinstance(value, str) and DATE_TEXT.fullmatch(value) is not None and bool(dt.date.fromisoformat(value))
            except ValueError:
                ok = False
        elif t == "choice":
            ok = value in self.choices
        if ok:
            return None
        expected = {
            "choice": f"one of {', '.join(self.choices)}",
            "decimal": "a decimal (a whole number or text such as '12.50')",
            "date": "a date ('YYYY-MM-DD')",
            "integer": "an integer",
        }.get(t, f"a {t}")
        return FieldError(field, "invalid_custom", f"{quote(value)} is not {expected}")


def check_custom(custom: Mapping[str, Any], definitions: Iterable[CustomField], prefix: str = "custom") -> None:
    """Check ``custom`` against the store's definitions; unknown keys are refused when any are defined."""
    defs = {d.name: d for d in definitions}
    if not defs:
        return
    errors: list[FieldError] = []
    for key, value in custom.items():
        d = defs.get(key)
        if d is None:
            errors.append(FieldError(f"{prefix}.{key}", "unknown_field", f"no custom field {key!r} is defined"))
        elif value is not None and (err := d.check(value, f"{prefix}.{key}")):
            errors.append(err)
    for d in defs.values():
        if d.required and custom.get(d.name) is None:
            errors.append(FieldError(f"{prefix}.{d.name}", "required", "is required"))
    if errors:
        raise ValidationError(errors)


def is_blank(value: Any) -> bool:
    """Whether a field holds nothing: None, empty or blank text, an empty list, set or mapping."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        return not value
    return False


def check_required(entity: Any, fields: Iterable[str]) -> None:
    """A ValidationError naming each of ``fields`` the entity leaves blank (a store's ``required_fields``)."""
    errors = [FieldError(f, "required", "is required in this store") for f in fields if is_blank(getattr(entity, f, None))]
    if errors:
        raise ValidationError(errors)
