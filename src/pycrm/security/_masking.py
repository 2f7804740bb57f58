"""Field-level security: fields hidden or masked on read, per role, and masked values kept from being saved.

Rules are data: :class:`FieldRules` maps a role name to ``{"<repository>.<field>": rule}``, where the
repository may be ``*`` (any), the field a top-level field (``emails``, ``phones``, ``name``...) or a custom
value (``custom.national_id``), and the rule is ``"hide"``, ``"mask"`` (the usual mask for the field:
e-mail for ``email``/``emails``, phone for ``phones``, text otherwise) or the name of a mask in
:data:`MASKS` (``email``, ``phone``, ``national_id``, ``text``, ``redact``).

A user with several roles sees a field as its *least* restricted role does: a role without a rule for the
field shows it; else a mask beats hiding.

The masks reveal little, and never a whole value:

>>> mask_phone("+8613800138000"), mask_phone("13800138000")
('+86 138****8000', '138****8000')
>>> mask_email("li.lei@example.com"), mask_national_id("110101199003077777")
('l***@example.com', '**************7777')

Masked values are :class:`Masked` strings (a ``str`` subclass) in place of the field's usual type, so they
are never mistaken for a real phone or e-mail (``l***@example.com`` is, to a validator, a valid address).
Writing one back is caught: :func:`assert_unmasked` raises ValidationError naming the field, and
:func:`restore_masked` puts the stored values back into the fields still masked, so an actor who sees a
masked phone can still change a customer's status. Hidden fields are emptied (None, ``[]``, key removed);
the masked copy remembers them so ``restore_masked`` keeps the stored values rather than erase them.

>>> from pycrm.domain import Customer
>>> rules = FieldRules({"analyst": {"customers.phones": "mask", "customers.emails": "hide"}})
>>> c = Customer("Acme", emails=["sales@acme.com"], phones=["+86 138 0013 8000"], id="c1")
>>> seen = mask_entity(c, rules.resolve(["analyst"], "customers"))
>>> seen.phones, seen.emails
(['+86 138****8000'], [])
>>> assert_unmasked(seen)
Traceback (most recent call last):
...
pycrm.errors.ValidationError: phones[0]: is a masked value; it cannot be saved
>>> seen.status = "active"
>>> saved = restore_masked(seen, c)
>>> [str(p) for p in saved.phones], [e.value for e in saved.emails], saved.status
(['+8613800138000'], ['sales@acme.com'], 'active')
"""

from __future__ import annotations

import math
import re
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import attrs
import phonenumbers

from pycrm.domain import ENTITY_REPOSITORIES, EmailAddress, Entity, Role
from pycrm.errors import FieldError, ValidationError, quote

__all__ = [
    "DEFAULT_FIELD_RULES",
    "MASKS",
    "FieldRules",
    "Masked",
    "assert_unmasked",
    "mask_data",
    "mask_email",
    "mask_entity",
    "mask_national_id",
    "mask_phone",
    "mask_text",
    "masked_fields",
    "redact",
    "restore_masked",
]


class Masked(str):
    """A value shown masked. A ``str``, so it prints and serializes as text, but recognisable on the way
    back in: the storage layer refuses to save one (:func:`assert_unmasked`)."""

    __slots__ = ()

    def __new__(cls, value: object = "") -> Masked:
        return super().__new__(cls, value)

    #: Duck-typed flag, so code below ``security`` (the domain's parsers) can refuse masked text unimported.
    __pycrm_masked__ = True

    def __repr__(self) -> str:
        return str.__repr__(self)


_STARS = "***"
E = TypeVar("E", bound=Entity)


def redact(value: str) -> str:
    """Nothing of the value: ``***``."""
    return _STARS


def mask_text(value: str) -> str:
    """The first character and ``***`` (``***`` alone for values of up to 3 characters).

    >>> mask_text("Wang Fang"), mask_text("王芳"), mask_text("")
    ('W***', '***', '***')
    """
    value = str(value).strip()
    return value[0] + _STARS if len(value) > 3 else _STARS


def mask_email(value: str) -> str:
    """The first character of the local part, ``***``, and the domain; without a domain, ``mask_text``.

    A one-character local part is not shown at all.

    >>> mask_email("a@example.com"), mask_email("not an email")
    ('***@example.com', 'n***')
    """
    text = str(value).strip()
    local, at, domain = text.rpartition("@")
    if not at or not local:
        return mask_text(text)
    return (local[0] if len(local) > 1 else "") + _STARS + "@" + domain


def phone_reveal(n: int) -> tuple[int, int]:
    """(leading, trailing) digits a phone mask shows of an ``n``-digit national number.

    At most 3 leading and 4 trailing digits, and at least ``max(4, ceil(n / 3))`` digits stay hidden, so
    a short number is never shown nearly whole: 11 digits -> (3, 4), 10 -> (2, 4), 8 -> (0, 4), 5 -> (0, 1).
    """
    shown = max(0, n - max(4, math.ceil(n / 3)))
    tail = min(4, shown)
    return min(3, shown - tail), tail


def mask_phone(value: str) -> str:
    """Keep the country code (of an international number), and of the national number at most the first
    3 and last 4 digits (see :func:`phone_reveal`); other characters are dropped.

    >>> mask_phone("+1 212-555-0100"), mask_phone("+44 7911 123456")
    ('+1 21****0100', '+44 79****3456')
    """
    text = str(value).strip()
    cc = ""
    digits = "".join(ch for ch in text if ch.isdigit() and ch.isascii())
    if text.startswith("+"):
        try:
            num = phonenumbers.parse(text, None)
            cc, digits = f"+{num.country_code} ", str(num.national_number)
        except phonenumbers.NumberParseException:
            cc = "+"
    head, tail = phone_reveal(len(digits))
    hidden = len(digits) - head - tail
    return cc + digits[:head] + "*" * max(hidden, 4) + (digits[len(digits) - tail :] if tail else "")


def mask_national_id(value: str) -> str:
    """An identity document number: ``*`` for every character but the last 4 (the last half, when shorter
    than 8), so the reader can tell which document it is.

    >>> mask_national_id("110101199003077777"), mask_national_id("A123")
    ('**************7777', '**23')
    """
    text = re.sub(r"\s+", "", str(value))
    tail = min(4, len(text) // 2)
    return "*" * (len(text) - tail) + text[len(text) - tail :]


#: Mask functions by name, for ``FieldRules``.
MASKS: Mapping[str, Callable[[str], str]] = {
    "email": mask_email,
    "national_id": mask_national_id,
    "phone": mask_phone,
    "redact": redact,
    "text": mask_text,
}

_RULES = ("hide", "mask", *MASKS)


def _default_mask(field: str) -> str:
    name = field.rsplit(".", 1)[-1]
    if name in ("email", "emails"):
        return "email"
    if name in ("phone", "phones", "mobile"):
        return "phone"
    return "text"


@attrs.frozen
class FieldRules:
    """Which fields each role sees hidden or masked: ``{role: {"customers.phones": "mask", ...}}``.

    Checked when built: a rule must be ``hide``, ``mask`` or a name in :data:`MASKS`, a path
    ``<repository or *>.<field>``.
    """

    rules: Mapping[str, Mapping[str, str]] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        errors: list[FieldError] = []
        if not isinstance(self.rules, Mapping):
            raise ValidationError([FieldError("rules", "type", f"expected a mapping, got {type(self.rules).__name__}")])
        for role, paths in self.rules.items():
            if not isinstance(paths, Mapping):
                errors.append(FieldError(f"rules.{role}", "type", "expected a mapping of field paths to rules"))
                continue
            for path, rule in paths.items():
                where = f"rules.{role}.{path}"
                repo, dot, field = str(path).partition(".")
                if not dot or not field or repo not in ("*", *ENTITY_REPOSITORIES):
                    errors.append(FieldError(where, "invalid_path", f"{path!r} is not '<repository or *>.<field>'"))
                if rule not in _RULES:
                    errors.append(FieldError(where, "invalid_rule", f"{rule!r} is not one of {', '.join(_RULES)}"))
        if errors:
            raise ValidationError(errors)
        object.__setattr__(self, "rules", {r: dict(p) for r, p in self.rules.items()})

    def resolve(self, roles: Iterable[Role | str], entity: str) -> dict[str, str]:
        """The rules for an actor with ``roles`` reading ``entity``: ``{field: "hide" | mask name}``.

        A field is restricted only when every role restricts it; a mask is chosen over hiding (and the
        first role's mask among several). ``mask`` is replaced by the field's usual mask.
        """
        names = [r.name if isinstance(r, Role) else r for r in roles]
        if not names:
            return {}
        per_role: list[dict[str, str]] = []
        for name in names:
            mine: dict[str, str] = {}
            for path, rule in self.rules.get(name, {}).items():
                repo, _, field = path.partition(".")
                if repo in ("*", entity) and (repo == entity or field not in mine):
                    mine[field] = _default_mask(field) if rule == "mask" else rule
            per_role.append(mine)
        out: dict[str, str] = {}
        for field in per_role[0]:
            chosen = [m[field] for m in per_role if field in m]
            if len(chosen) < len(per_role):
                continue  # some role shows it
            masks = [c for c in chosen if c != "hide"]
            out[field] = masks[0] if masks else "hide"
        return out


#: A starting point: analysts see contact details masked and no addresses or identity numbers.
DEFAULT_FIELD_RULES = FieldRules(
    {
        "analyst": {
            "*.emails": "mask",
            "*.phones": "mask",
            "users.email": "mask",
            "customers.addresses": "hide",
            "customers.custom.national_id": "hide",
            "surveys.comment": "redact",
        },
        "support": {"customers.custom.national_id": "national_id"},
    }
)


# ---------------------------------------------------------------- masking entities

# masked copy (by id()) -> {field: the value as masked}; cleared when the copy is garbage collected
_MASKED: dict[int, dict[str, Any]] = {}


def _mask_value(value: Any, mask: Callable[[str], str]) -> Any:
    if value is None:
        return None
    if isinstance(value, (list, tuple, frozenset)):
        return [_mask_value(v, mask) for v in (sorted(value) if isinstance(value, frozenset) else value)]
    if isinstance(value, Mapping):  # an address as data, a nested custom value
        return Masked(_STARS)
    text = value.e164 if hasattr(value, "e164") else getattr(value, "value", value)
    if attrs.has(type(value)) and not isinstance(text, str):  # an Address, a Money: nothing partial to show
        return Masked(_STARS)
    return Masked(mask(str(text)))


def _hidden(value: Any) -> Any:
    return [] if isinstance(value, (list, tuple)) else (frozenset() if isinstance(value, frozenset) else None)


def _check_entity(value: Any, name: str) -> None:
    if not isinstance(value, Entity):
        raise ValidationError([FieldError(name, "type", f"expected an entity, got {type(value).__name__}")])


def _check_rules(rules: Any) -> None:
    """Resolved rules (``FieldRules.resolve``): field path -> ``hide`` or a mask of :data:`MASKS`."""
    if not isinstance(rules, Mapping):
        raise ValidationError([FieldError("rules", "type", f"expected a mapping of field to rule, got {type(rules).__name__}")])
    for path, rule in rules.items():
        if not isinstance(path, str) or not isinstance(rule, str) or (rule != "hide" and rule not in MASKS):
            raise ValidationError(
                [FieldError(f"rules.{quote(path)}", "invalid_choice", f"{quote(rule)} is not hide or one of {', '.join(MASKS)}")]
            )


def mask_entity(entity: E, rules: Mapping[str, str]) -> E:
    """A copy of ``entity`` with the fields of ``rules`` (``FieldRules.resolve``) hidden or masked.

    The original is not changed (with no rules, it is returned as it is). Fields not in ``rules`` are
    shared with the original. Rules for fields the entity does not have are ignored.
    """
    _check_entity(entity, "entity")
    _check_rules(rules)
    if not rules:
        return entity
    names = {a.name for a in attrs.fields(type(entity))}
    values = {a.name: getattr(entity, a.name) for a in attrs.fields(type(entity))}
    record: dict[str, Any] = {}
    for path, rule in rules.items():
        field, _, key = path.partition(".")
        if field not in names:
            continue
        if key:  # custom.<key>
            holder = values[field]
            if not isinstance(holder, Mapping) or key not in holder:
                continue
            holder = values[field] = dict(holder)
            if rule == "hide":
                del holder[key]
                record[path] = _HIDDEN_KEY
            else:
                holder[key] = record[path] = _mask_value(holder[key], MASKS[rule])
            continue
        value = values[field]
        values[field] = _hidden(value) if rule == "hide" else _mask_value(value, MASKS[rule])
        # a snapshot, not the list the copy holds: a value appended in place must count as a change
        record[path] = list(values[field]) if isinstance(values[field], list) else values[field]
    copy = type(entity)._load(values)
    if record:
        _MASKED[id(copy)] = record
        weakref.finalize(copy, _MASKED.pop, id(copy), None)
    return copy  # type: ignore[no-any-return]


_HIDDEN_KEY = object()  # recorded for a custom key removed on read


def masked_fields(entity: Entity) -> frozenset[str]:
    """The field paths that were hidden or masked when this copy was made by :func:`mask_entity`."""
    _check_entity(entity, "entity")
    return frozenset(_MASKED.get(id(entity), ()))


# the shape mask_email gives: an address made from a masked one (the Masked marker lost on the way) is
# still caught, since "l***@example.com" is, to a validator, a valid address
_MASKED_EMAIL = re.compile(r"[^@]?\*\*\*@")


def _find_masked(value: Any, path: str) -> list[str]:
    if isinstance(value, Masked):
        return [path]
    if isinstance(value, EmailAddress):
        return [path] if _MASKED_EMAIL.match(value.value) else []
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in _find_masked(v, f"{path}[{i}]")]
    if isinstance(value, (set, frozenset)):
        return [path] if any(isinstance(v, Masked) for v in value) else []
    if isinstance(value, Mapping):
        return [p for k, v in value.items() for p in _find_masked(v, f"{path}.{k}")]
    return []


def assert_unmasked(entity: Entity) -> None:
    """ValidationError naming every field that holds a masked value: it must never be written back.

    Masked values are found by their :class:`Masked` type, and e-mail addresses also by the shape
    ``mask_email`` gives them (``x***@domain``), so one parsed back into an ``EmailAddress`` is still
    refused. Masked phones do not parse as phone numbers at all. The storage layer calls it on every
    entity it is asked to add or update (after :func:`restore_masked` on updates).
    """
    _check_entity(entity, "entity")
    bad = [p for a in attrs.fields(type(entity)) for p in _find_masked(getattr(entity, a.name), a.name)]
    if bad:
        raise ValidationError([FieldError(p, "masked", "is a masked value; it cannot be saved") for p in bad])


def _unchanged(current: Any, recorded: Any) -> bool:
    return type(current) is type(recorded) and current == recorded


def restore_masked(entity: E, stored: E) -> E:
    """``entity`` with every field still as it was masked or hidden on read taken from ``stored``.

    For updates: the actor changed what it could see; what it could not see keeps its stored value. A field
    the actor replaced with a new value keeps the new value. The result is checked by
    :func:`assert_unmasked`, so a masked value copied elsewhere (another field, another entity) is still
    refused. ``entity`` is not changed.
    """
    _check_entity(entity, "entity")
    if type(entity) is not type(stored):
        raise ValidationError([FieldError("", "type", f"expected a stored {type(entity).__name__}")])
    record = _MASKED.get(id(entity), {})
    values = {a.name: getattr(entity, a.name) for a in attrs.fields(type(entity))}
    for path, was in record.items():
        field, _, key = path.partition(".")
        if key:
            holder = values[field]
            stored_holder = getattr(stored, field)
            if not isinstance(holder, Mapping):
                continue
            now = holder.get(key, _HIDDEN_KEY)
            if now is was or (was is not _HIDDEN_KEY and _unchanged(now, was)):
                holder = values[field] = dict(holder)
                if key in stored_holder:
                    holder[key] = stored_holder[key]
                else:
                    holder.pop(key, None)
        elif _unchanged(values[field], was):
            values[field] = getattr(stored, field)
    out = type(entity)._load(values)
    assert_unmasked(out)
    _refuse_copies(out, record)
    return out  # type: ignore[no-any-return]


def _masked_texts(record: Mapping[str, Any]) -> set[str]:
    out: set[str] = set()
    for value in record.values():
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str) and v:
                out.add(str(v))
    return out


def _refuse_copies(entity: Entity, record: Mapping[str, Any]) -> None:
    """A masked value copied into a field that normalizes text (losing the :class:`Masked` marker, as a
    category path does) is still refused: no field may hold the text of a mask shown to this actor."""
    refuse_mask_texts(entity, _masked_texts(record))


def refuse_mask_texts(entity: Entity, texts: set[str]) -> None:
    """ValidationError naming every field of ``entity`` that holds one of ``texts`` (masks shown)."""
    if not texts:
        return
    bad: list[str] = []
    for a in attrs.fields(type(entity)):
        value = getattr(entity, a.name)
        if isinstance(value, str) and value in texts:
            bad.append(a.name)
        elif isinstance(value, Mapping):
            bad += [f"{a.name}.{k}" for k, v in value.items() if isinstance(v, str) and v in texts]
        elif isinstance(value, (list, tuple)):
            bad += [f"{a.name}[{i}]" for i, v in enumerate(value) if isinstance(v, str) and v in texts]
    if bad:
        raise ValidationError([FieldError(p, "masked", "is a masked value; it cannot be saved") for p in bad])


def mask_data(data: Mapping[str, Any], rules: Mapping[str, str]) -> dict[str, Any]:
    """The same masking on JSON-safe data (``pycrm.domain._codec.to_data``, an export row): plain strings.

    >>> mask_data({"name": "Acme", "phones": ["+8613800138000"], "custom": {"national_id": "110101199003077777"}},
    ...           {"phones": "phone", "custom.national_id": "national_id"})
    {'name': 'Acme', 'phones': ['+86 138****8000'], 'custom': {'national_id': '**************7777'}}
    """
    if not isinstance(data, Mapping):
        raise ValidationError([FieldError("data", "type", f"expected a mapping, got {type(data).__name__}")])
    _check_rules(rules)
    out = dict(data)
    for path, rule in rules.items():
        field, _, key = path.partition(".")
        if field not in out:
            continue
        if key:
            holder = out[field]
            if not isinstance(holder, Mapping) or key not in holder:
                continue
            holder = out[field] = dict(holder)
            if rule == "hide":
                del holder[key]
            else:
                holder[key] = _plain(_mask_value(holder[key], MASKS[rule]))
        elif rule == "hide":
            out[field] = [] if isinstance(out[field], list) else None
        else:
            out[field] = _plain(_mask_value(out[field], MASKS[rule]))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return None if value is None else str(value)
