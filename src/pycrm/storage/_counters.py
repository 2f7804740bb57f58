"""Named counters (the port's ``Counters`` capability): what a counter's name may be.

A counter is a number kept by name in the store, incremented atomically by ``next_value`` (a round robin's
turns). Names are namespaced (``rr:<name>``: a prefix and a colon) so they never meet the journal's own
sequences, and short enough for the SQL adapter's ``pycrm_sequences.name`` (32 characters).
"""

from __future__ import annotations

import re
from typing import Any

from pycrm.errors import ValidationError, quote

__all__ = ["MAX_COUNTER_NAME", "check_counter_name"]

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
