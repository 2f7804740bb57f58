"""Custom field definitions: hosts add fields to customers without schema changes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from pycrm.domain._checks import check_flag, check_iterable, text
from pycrm.errors import FieldError, ValidationError, quote

__all__ = ["CustomField", "check_custom"]

TYPES = ("text", "integer", "decimal", "boolean", "date", "choice")
#: The types a custom field held unique (``unique=True``) may have: identifiers are text or whole numbers.
UNIQUE_TYPES = ("text", "integer")
#: The longest name of a unique custom field (the store's key table names it ``custom.<name>``).
UNIQUE_NAME = 90


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
    """

    name: str = attrs.field(converter=_name)
    type: str = attrs.field(default="text", converter=_type)
    required: bool = attrs.field(default=False, converter=_required)
    choices: tuple[str, ...] = attrs.field(default=(), converter=_choices)
    unique: bool = attrs.field(default=False, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if self.unique is False:
            return
        where = f"custom_fields.{self.name}" if isinstance(self.name, str) else "custom_fields"
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
                ok = isinstance(value, (str, int)) and not isinstance(value, bool) and Decimal(str(value)).is_finite()
            except InvalidOperation:
                ok = False
        elif t == "boolean":
            ok = isinstance(value, bool)
        elif t == "date":
            try:
                ok = isinstance(value, str) and bool(dt.date.fromisoformat(value))
            except ValueError:
                ok = False
        elif t == "choice":
            ok = value in self.choices
        if ok:
            return None
        expected = f"one of {', '.join(self.choices)}" if t == "choice" else f"a {t}"
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
