"""New rows made where the entities were built: an import's worker processes encode them for the table.

A worker process that validated new entities can also make their table rows, child-table rows and audit
diffs (:func:`prepare_rows`), so the process that writes only inserts them (``Repository._add_prepared``).
The rows come from the same mappers as ``Transaction.insert``; the session takes them only where it would
check nothing row by row (see ``Session._prepared_dialect``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import attrs

from pycrm.domain import Entity
from pycrm.security._audit import created_diff_text
from pycrm.storage._repository import reference_fields, stamp_new
from pycrm.storage.sql.mapping import Codec
from pycrm.storage.sql.store import table_rows

__all__ = ["PreparedRows", "prepare_rows"]


@attrs.frozen
class PreparedRows:
    """New rows of one kind made for one SQL dialect: ``ids``, table ``rows`` and ``diffs`` (the audit
    diffs' canonical JSON, None when not made) one per row; child-table rows by field; the values of
    the reference fields (such as ``customer_id``) one per row, by field."""

    kind: str
    dialect: str
    ids: list[str]
    rows: list[tuple[Any, ...]]
    children: dict[str, list[tuple[Any, ...]]]
    references: dict[str, list[Any]]
    diffs: list[str] | None


def prepare_rows(kind: type[Entity], entities: Sequence[Entity], dialect: str, at: dt.datetime, audit: bool) -> PreparedRows:
    """Stamp validated new ``entities`` as ``add_many`` would (an id where missing, version 1, created and
    updated ``at`` unless created before) and make their rows for ``dialect``, with audit diffs if ``audit``."""
    for e in entities:
        stamp_new(e, at)
    rows, children = table_rows(kind, entities, Codec(dialect))
    return PreparedRows(
        kind.entity_name(),
        dialect,
        [e.id for e in entities],  # type: ignore[misc]
        rows,
        children,
        {f: [getattr(e, f) for e in entities] for f in reference_fields(kind)},
        [created_diff_text(e) for e in entities] if audit else None,
    )
