"""What an adapter implements: one transaction's primitive operations on stored entities.

The shared :class:`~pycrm.storage._repository.Repository` does everything else (validation, ids,
timestamps, versions, reference checks), so every adapter behaves the same by construction.
Conditions arrive parsed and normalized (see ``_where.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from pycrm.domain import Entity
from pycrm.storage._where import Condition, OrderBy


class Transaction(Protocol):
    """One unit of work on one store. Entities passed in are valid; entities returned are trusted copies."""

    def insert(self, kind: type[Entity], entities: Sequence[Entity]) -> None:
        """Store new entities (ids, versions and timestamps already set); all or nothing."""

    def get(self, kind: type[Entity], id: str) -> Entity | None: ...

    def update(self, kind: type[Entity], entity: Entity, expected_version: int) -> bool:
        """Replace the stored row if its version is ``expected_version``; False if not (or missing)."""

    def delete(self, kind: type[Entity], id: str) -> bool: ...

    def find(
        self, kind: type[Entity], where: list[Condition], order_by: list[OrderBy], limit: int | None, offset: int
    ) -> list[Entity]: ...

    def count(self, kind: type[Entity], where: list[Condition]) -> int: ...

    def iter(self, kind: type[Entity], where: list[Condition], batch_size: int) -> Iterator[Entity]:
        """Stream in id order, holding at most about ``batch_size`` entities at a time."""

    def existing_ids(self, kind: type[Entity], ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` exist (used to check references before writing)."""

    def referencing(self, kind: type[Entity], field: str, ids: Iterable[str]) -> int:
        """How many ``kind`` rows have ``field`` in ``ids`` (used before deleting)."""

    def atomic(self) -> AbstractContextManager[None]:
        """A block whose writes all happen or, if it raises, none do; the transaction stays usable."""

    # Records: small JSON documents by (stream, key) that are not entities (merge records, ...), written
    # and read inside the same transaction as the entities.
    def record_get(self, stream: str, key: str) -> Any | None:
        """The data stored under (stream, key), or None."""

    def record_put(self, stream: str, key: str, data: Any) -> None:
        """Store JSON-safe ``data`` under (stream, key), replacing what was there."""

    def record_delete(self, stream: str, key: str) -> bool: ...

    def record_list(self, stream: str) -> list[tuple[str, Any]]:
        """Every (key, data) of the stream, by key."""

    def record_streams(self) -> list[str]:
        """The names of the streams that hold at least one record, sorted."""

    # The journal (storage/_journal.py): change events and audit drafts of this transaction, numbered (and
    # the audit entries chained) under a lock held to the end of the transaction; then read back.
    def journal(self, changes: Sequence[dict[str, Any]], audit: Sequence[dict[str, Any]], *, key: bytes | None = None) -> None:
        """Append ``changes`` to the change feed and ``audit`` drafts to the audit trail, in this transaction."""

    def journal_load(self, changes: Sequence[dict[str, Any]], audit: Sequence[dict[str, Any]]) -> None:
        """Store journal rows exactly as given, numbers and hashes kept (restoring a backup)."""

    def changes_since(self, cursor: int, limit: int) -> list[dict[str, Any]]:
        """Committed change rows with ``seq > cursor``, by seq, at most ``limit``."""

    def changes_last(self) -> int:
        """The newest committed change's ``seq`` (0 for none)."""

    def audit_list(self, after: int, limit: int | None, entity_id: str | None) -> list[dict[str, Any]]:
        """Audit entries (``AuditEntry.to_data`` form) with ``seq > after``, by seq, optionally of one record."""

    def audit_last(self) -> dict[str, Any] | None:
        """The newest audit entry (``AuditEntry.to_data`` form), None for an empty trail."""

    def commit(self) -> None: ...

    # Optional pushdowns (see storage/_analytics.py); an adapter without them gets the pure functions:
    #   rfm(cutoff: datetime, ref_date: date, bins: int) -> (currencies of the orders on or before cutoff,
    #       rows starting (customer_id, recency_days, frequency, monetary: Decimal, r, f, m), by customer_id)

    def rollback(self) -> None: ...


class Store(Protocol):
    """An opened storage backend."""

    def begin(self) -> Transaction: ...

    def close(self) -> None: ...

    @property
    def url(self) -> str: ...


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
