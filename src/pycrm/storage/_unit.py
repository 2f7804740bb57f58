"""``session.unit``: what code built on a session (``pycrm.io``, a host's own integrations) may use of it.

A :class:`~pycrm.storage.Session` is the public unit of work (``with crm.session(actor=...) as s``). Code that
moves data in bulk needs a little more of it -- the transaction, the actor's conditions, the journal -- and
takes it from here, never from the session's underscored members. Everything here goes through the same gate
as the session's repositories (storage/_gate.py): the transaction an actor gets is the gated one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from pycrm.domain import CustomField, Entity
from pycrm.storage.port import KeyLocks, UniqueKeys

if TYPE_CHECKING:
    from pycrm.storage._guard import SecurityConfig
    from pycrm.storage._repository import Repository, Session
    from pycrm.storage._where import Condition
    from pycrm.storage.port import PreparedRows, RowPreparer, Transaction

__all__ = ["UnitOfWork"]


class UnitOfWork:
    """One session's unit of work, for code built on it."""

    def __init__(self, session: Session):
        self._s = session

    def check_open(self) -> None:
        """CRMError when the session has ended."""
        self._s._check_open()

    def transaction(self) -> Transaction:
        """The session's transaction: for an actor other than the system, the gate around the adapter's,
        which keeps every read inside the actor's row scope and hands rows and records out as the actor may
        see them (field rules applied). The system actor's rows come as stored: pass each through
        :meth:`present` before it leaves (it decrypts them; an actor's it leaves as they are)."""
        return self._s._transaction()

    def stored(self, reason: str) -> Any:
        """Rows and records as stored, within the actor's row scope (field rules not applied, encrypted values
        sealed): for code that moves them as they are (archiving), which passes what it hands back through
        :meth:`present_stored`. ``reason`` says why; a test lists every caller."""
        return self._s._stored(reason)

    def conditions(self, kind: type[Entity], where: Mapping[str, Any] | None, action: str = "read") -> list[Condition]:
        """``where`` parsed and ANDed with the actor's scope for ``action`` (PermissionDenied if not granted)."""
        return self._s._conditions(kind, where, action)

    def present(self, kind: type[Entity], entity: Any) -> Any:
        """An entity read through :meth:`transaction` as the actor may see it (decrypted, then masked)."""
        return self._s._present(kind, entity)

    def present_stored(self, kind: type[Entity], entity: Any) -> Any:
        """An entity read through :meth:`stored` as the actor may see it (decrypted, then masked)."""
        return self._s._guard.present(kind, entity)

    def raw_rows_ok(self, kind: type[Entity]) -> bool:
        """Whether stored rows of ``kind`` may leave as they are (nothing to decrypt or mask for this actor)."""
        return self._s._raw_rows_ok(kind)

    def atomic(self) -> AbstractContextManager[None]:
        """A block whose writes, journal entries included, all happen or none do."""
        return self._s._atomic()

    def bulk(self) -> AbstractContextManager[bool]:
        """Inserts without savepoints of their own, inside an atomic block that fails whenever one does; yields
        whether the store works that way (then a failed insert undoes the whole innermost atomic block)."""
        return self._s._bulk()

    def lock_keys(self, kind: type[Entity], fields: Sequence[str]) -> bool:
        """Hold the upsert locks of ``fields`` (``KeyLocks``) to the end of the transaction, before looking
        records up by them; False, holding nothing, where the store has none."""
        tx = self.transaction()
        if not isinstance(tx, KeyLocks):
            return False
        tx.lock_keys(kind, fields)
        return True

    def unique_keys(self, kind: type[Entity]) -> frozenset[str]:
        """The keys of ``kind`` the store holds unique (``UniqueKeys``; none where it holds none)."""
        tx = self.transaction()
        return tx.unique_keys(kind) if isinstance(tx, UniqueKeys) else frozenset()

    def journal(self, kind: type[Entity], op: str, before: Entity | None, after: Entity | None) -> None:
        """Record one change of a stored row in the change feed and the audit trail (written at commit)."""
        self._s._journal(kind, op, before, after)

    def event(
        self, kind: type[Entity], action: str, entity_id: str | None, info: Mapping[str, Any], *, lasting: bool = False
    ) -> None:
        """An audit entry that is not a row change (an export, a merge); ``lasting``: kept even when the session
        rolls back (an export: the rows have left the store whatever happens next)."""
        self._s._event(kind, action, entity_id, info, lasting=lasting)

    def repository(self, name: str) -> Repository[Any]:
        """The session's repository by name (ValidationError for an unknown one)."""
        return self._s._repository(name)

    def row_preparer(self, kind: type[Entity]) -> RowPreparer | None:
        """What makes new rows of ``kind`` outside the session, where the store and the actor allow it."""
        return self._s._row_preparer(kind)

    def add_built(self, repository: Repository[Any], entities: Sequence[Entity]) -> int:
        """``repository.add_many`` of entities just built and validated (by an import's workers) and not
        changed since: not validated twice; custom fields, references, ids and the actor's rights are."""
        return repository._add_many(entities, revalidate=False)

    def add_prepared(self, repository: Repository[Any], batch: PreparedRows) -> int:
        """Insert rows made by :meth:`row_preparer`'s preparer (references and ids checked here)."""
        return repository._add_prepared(batch)

    @property
    def security(self) -> SecurityConfig:
        return self._s._security

    def custom_fields(self, repository: str) -> Sequence[CustomField]:
        """The custom fields declared for ``repository``."""
        return tuple(self._s._custom_fields.get(repository, ()))

    def required_fields(self, repository: str) -> Sequence[str]:
        """The built-in fields the store requires of ``repository``'s records (``pycrm.open(required_fields=)``)."""
        return tuple(self._s._required_fields.get(repository, ()))

    def stream(self, kind: type[Entity], where: Mapping[str, Any] | None, batch_size: int) -> Iterator[Any]:
        """``kind`` entities matching ``where`` in the actor's read scope, in id order, as :meth:`transaction`
        reads them."""
        return self.transaction().iter(kind, self.conditions(kind, where), batch_size)
