"""Upsert keys the store holds unique, the same on every adapter: which ones, and how a value is keyed.

``custom.external_id`` is always unique, and so is every custom field declared ``CustomField(...,
unique=True)`` when a store is opened (``pycrm.open(custom_fields=...)``): two customers never share a
value, whoever writes them and however many processes do it at once. An adapter keeps a *key table*: one
row per (key name, key text) naming the customer that holds it, unique on the pair, written in the same
transaction as the customer (the SQL adapter's ``customer_keys``; the memory adapter's index). A write that
would share a value fails with a ValidationError naming the field (code ``duplicate_key``), whoever holds
the value -- the one thing it tells an actor is that some customer holds it, as a taken id does.

The key text of a value (:func:`key_text`) keeps its JSON type (the text ``"7"`` and the number ``7`` are
two values, as for ``where``), and a value the store keeps encrypted is keyed by its blind index, never its
clear text: a sealed custom value comes with ``custom["__bi_<key>"]`` (see ``storage/_guard.py``), and
:func:`custom_keys` keys that one. Text longer than :data:`KEY_TEXT` is keyed by its SHA-256.

Which keys are unique is stored with the data (the adapter's registry), not only in the configuration of
one process: a key declared by any opener is held unique for every writer from then on. Declaring a key on
a store whose customers already share values of it fails with a CRMError naming the key and the customers
(:func:`duplicates_error`); merge them first.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pycrm.domain import Customer, Entity
from pycrm.errors import CRMError, FieldError, ValidationError

__all__ = [
    "ALWAYS_UNIQUE",
    "KEY_NAME",
    "KEY_TEXT",
    "custom_keys",
    "declare",
    "duplicate_key_error",
    "duplicates_error",
    "key_text",
]

#: Upsert keys every store holds unique (with the custom fields declared ``unique=True``).
ALWAYS_UNIQUE: tuple[str, ...] = ("custom.external_id",)
#: The longest key name (``custom.<name>``) and key text the key table holds.
KEY_NAME = 100
KEY_TEXT = 160
#: The custom-field key holding the blind index of an encrypted value (``storage._guard.BLIND_PREFIX``).
_BLIND = "__bi_"
#: Which entity kinds have unique keys (custom fields live on customers).
KEYED: tuple[type[Entity], ...] = (Customer,)


def key_text(value: Any) -> str | None:
    """The text a key value is kept under: its JSON type and value (``s:`` text, ``i:`` whole number, ``j:``
    anything else as canonical JSON), hashed past :data:`KEY_TEXT` characters; None for no value."""
    if value is None:
        return None
    t = type(value)
    if t is str:
        return _fit("s:" + value)
    if t is int:
        return _fit(f"i:{value}")
    return _fit("j:" + json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")))


def _fit(text: str) -> str:
    if len(text) > KEY_TEXT:
        return "h:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return text


def custom_keys(custom: Mapping[str, Any], names: Iterable[str]) -> list[tuple[str, str]]:
    """(name, key text) of each key in ``names`` (``custom.<key>``) that the stored ``custom`` holds a value of:
    for an encrypted value its blind index (``b:<index>``), otherwise :func:`key_text` of the value."""
    out = []
    for name in names:
        key = name[7:]
        blind = custom.get(_BLIND + key)
        text = _fit("b:" + blind) if isinstance(blind, str) else key_text(custom.get(key))
        if text is not None:
            out.append((name, text))
    return out


def duplicate_key_error(kind: type[Entity], taken: Sequence[tuple[int | None, str]]) -> ValidationError:
    """The one answer for key values another record holds, whoever can see it: (row in the batch or None,
    key name) each. Neither the holder nor the value is named (the value may be one the store encrypts)."""
    return ValidationError(
        [
            FieldError(
                name if i is None else f"[{i}].{name}",
                "duplicate_key",
                f"another {kind.__name__.lower()} has this value (a unique key)",
            )
            for i, name in taken
        ]
    )


def duplicates_error(kind: type[Entity], name: str, groups: Sequence[Sequence[str]], total: int) -> CRMError:
    """A key cannot be made unique: ``groups`` of ids that share a value (some of them), ``total`` groups."""
    shown = "; ".join(", ".join(ids) for ids in groups)
    more = f" and {total - len(groups)} more" if total > len(groups) else ""
    return CRMError(
        f"{name} cannot be held unique: {total} values are shared by more than one "
        f"{kind.__name__.lower()} ({shown}{more}); merge or change them, then open the store again"
    )


def declare(store: Any, kind: type[Entity], names: Sequence[str]) -> None:
    """Have ``store`` hold the keys ``names`` of ``kind`` unique from now on (``pycrm.open`` with custom fields
    declared ``unique=True``); a CRMError when the store cannot (no
    :class:`~pycrm.storage.port.DeclaredKeys`) or when stored records already share a value."""
    from pycrm.storage.port import DeclaredKeys

    if not isinstance(store, DeclaredKeys):
        raise CRMError(f"the store {store.url} cannot hold keys unique: {', '.join(names)} declared unique=True")
    store.declare_keys(kind, names)
