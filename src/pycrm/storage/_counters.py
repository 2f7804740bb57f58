"""Named counters and grouped counts (the port's ``Counters`` and ``GroupedCounts``): what a counter's name
and a grouped count's field may be.

A counter is a number kept by name in the store, incremented atomically by ``next_value`` (a round robin's
turns). Names are namespaced (``rr:<name>``: a prefix and a colon) so they never meet the journal's own
sequences, and short enough for the SQL adapter's ``pycrm_sequences.name`` (32 characters).
"""

from __future__ import annotations

import re
from typing import Any

from pycrm.domain import Entity
from pycrm.errors import ValidationError, quote
from pycrm.storage._where import FIELD_KINDS

__all__ = ["MAX_COUNTER_NAME", "MAX_GROUPS", "check_count_field", "check_counter_name", "too_many_groups"]

#: The most values one grouped count may return.
MAX_GROUPS = 10_000

#: The longest counter name, prefix included.
MAX_COUNTER_NAME = 32
_NAME = re.compile(r"[a-z][a-z0-9_]*:[A-Za-z0-9_.\-]+")


def check_counter_name(name: Any) -> str:
    """``name`` if it is a counter's name (``prefix:rest``, ASCII letters, digits, ``_ . -``, at most
    :data:`MAX_COUNTER_NAME` characters); a ValidationError naming ``name`` otherwise."""
    if not isinstance(name, str) or len(name) > MAX_COUNTER_NAME or not _NAME.fullmatch(name):
        raise ValidationError(
            f"a counter's name is 'prefix:name' of at most {MAX_COUNTER_NAME} ASCII letters, digits, '_', '.' or '-', "
            f"got {quote(name)}",
            field="name",
        )
    return name


def check_count_field(kind: type[Entity], field: Any, limit: Any) -> str:
    """``field`` if ``kind`` rows may be counted by it (``GroupedCounts``: a single text field, such as
    ``owner_id`` or ``status``), and ``limit`` a whole number from 1 to :data:`MAX_GROUPS`; a ValidationError
    naming ``field`` or ``limit`` otherwise."""
    if not isinstance(field, str) or FIELD_KINDS[kind].get(field) != "text":
        raise ValidationError(f"{kind.__name__} rows are not counted by {quote(field)}: name a single text field", field="field")
    if type(limit) is not int or not 1 <= limit <= MAX_GROUPS:
        raise ValidationError(f"must be a whole number from 1 to {MAX_GROUPS}, got {quote(limit)}", field="limit")
    return field


def too_many_groups(field: str, limit: int) -> ValidationError:
    """The answer of a grouped count over more values than its ``limit``."""
    return ValidationError(f"more than {limit} values of {field!r} have rows: narrow the filter", field="limit", code="too_many")
