"""Helpers every adapter shares: trusted copies of entities, the text a list element is indexed by.

What an adapter is (the ``Store`` and ``Transaction`` protocols and the optional capabilities) is
declared in :mod:`pycrm.storage.port`; ``Store`` and ``Transaction`` are re-exported here for code that
still imports them from this module.
"""

from __future__ import annotations

from typing import Any

from pycrm.domain import Entity
from pycrm.storage.port import Store, Transaction

__all__ = ["Store", "Transaction", "copy_entity", "index_text"]


def copy_entity(entity: Entity) -> Any:
    """A trusted copy whose lists and dicts are not shared with the original."""
    values = {}
    for name in entity.__slots__ if False else _field_names(type(entity)):
        v = getattr(entity, name)
        if type(v) is list:
            v = list(v)
        elif type(v) is dict:
            v = _deep(v)
        values[name] = v
    return type(entity)._load(values)


def _deep(d: Any) -> Any:
    if type(d) is dict:
        return {k: _deep(v) for k, v in d.items()}
    if type(d) is list:
        return [_deep(v) for v in d]
    return d


_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(kind: type) -> tuple[str, ...]:
    names = _NAMES.get(kind)
    if names is None:
        import attrs

        names = _NAMES[kind] = tuple(a.name for a in attrs.fields(kind))
    return names


def index_text(value: str) -> str:
    """What a list element (an email, a phone) is indexed and matched by: the element itself, or for an
    encrypted element (``bi:<blind index>|<envelope>``, see storage/_guard.py) its blind index."""
    return value.split("|", 1)[0] if value.startswith("bi:") else value
