"""New rows made where the entities were built: an import's worker processes encode them for the table.

The SQL adapter's :class:`~pycrm.storage.port.PreparedWrites`: a worker process that validated new
entities can also make their table rows, child-table rows and audit diffs (:class:`SQLRowPreparer`, a
picklable :class:`~pycrm.storage.port.RowPreparer`), so the process that writes only inserts them
(``Repository._add_prepared``). The rows come from the same mappers as ``Transaction.insert``; the session
takes them only where it would check nothing row by row (see ``Session._row_preparer``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import attrs

from pycrm.domain import Entity
from pycrm.security._audit import created_diff_texts
from pycrm.storage._repository import reference_fields, stamp_new
from pycrm.storage.port import PreparedRows
from pycrm.storage.sql.mapping import Codec
from pycrm.storage.sql.store import table_rows

__all__ = ["PreparedRows", "SQLRowPreparer", "prepare_rows"]


@attrs.frozen
class SQLRowPreparer:
    """:func:`prepare_rows` for one dialect (picklable: an import sends it to its worker processes)."""

    dialect: str

    def __call__(self, kind: type[Entity], entities: Sequence[Entity], at: dt.datetime, audit: bool) -> PreparedRows:
        return prepare_rows(kind, entities, self.dialect, at, audit)


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
        created_diff_texts(entities) if audit else None,
    )
