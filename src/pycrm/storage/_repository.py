"""Repositories and the unit of work, shared by every adapter."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

from pycrm.domain import (
    Contact,
    Customer,
    CustomField,
    Entity,
    Interaction,
    Opportunity,
    Order,
    Task,
    Ticket,
    User,
    check_custom,
    new_id,
    utcnow,
)
from pycrm.errors import ConcurrencyError, FieldError, NotFound, ValidationError
from pycrm.storage._analytics import SessionAnalytics
from pycrm.storage._backend import Transaction
from pycrm.storage._where import check_paging, parse_order_by, parse_where

__all__ = ["REFERENCES", "Repository", "Session"]

E = TypeVar("E", bound=Entity)

#: (child kind, field) -> parent kind: references checked on write and on delete.
REFERENCES: dict[tuple[type[Entity], str], type[Entity]] = {
    (Contact, "customer_id"): Customer,
    (Opportunity, "customer_id"): Customer,
    (Ticket, "customer_id"): Customer,
    (Interaction, "customer_id"): Customer,
    (Order, "customer_id"): Customer,
}


class Repository(Generic[E]):
    """``add get update delete find count iter add_many`` for one entity kind, the same on every adapter."""

    def __init__(self, session: Session, kind: type[E]):
        self._s = session
        self.kind = kind

    @property
    def _tx(self) -> Transaction:
        return self._s._transaction()

    # ---- writing ----
    def _prepare_new(self, entity: Any, now: dt.datetime, path: str) -> E:
        if not isinstance(entity, self.kind):
            raise ValidationError([FieldError(path, "type", f"expected {self.kind.__name__}, got {type(entity).__name__}")])
        entity.__attrs_post_init__()  # lists may have been changed in place; cheap for parsed values
        self._check_custom(entity, path)
        if entity.id is None:
            object.__setattr__(entity, "id", new_id())
        if entity.created_at is None:
            object.__setattr__(entity, "created_at", now)
        object.__setattr__(entity, "updated_at", now)
        object.__setattr__(entity, "version", 1)
        return entity

    def _check_custom(self, entity: Any, path: str) -> None:
        defs: Sequence[CustomField] = self._s._custom_fields.get(self.kind.entity_name(), ())
        if defs:
            try:
                check_custom(entity.custom, defs)
            except ValidationError as exc:
                raise exc.prefixed(path) if path else exc from None

    def _check_references(self, entities: Sequence[Entity]) -> None:
        for (child, field), parent in REFERENCES.items():
            if child is not self.kind:
                continue
            wanted = {getattr(e, field) for e in entities}
            missing = wanted - self._tx.existing_ids(parent, wanted)
            if missing:
                errors = [
                    FieldError(
                        f"[{i}].{field}" if len(entities) > 1 else field,
                        "not_found",
                        f"no {parent.entity_name()[:-1] if parent is not Customer else 'customer'} with id {getattr(e, field)!r}",
                    )
                    for i, e in enumerate(entities)
                    if getattr(e, field) in missing
                ]
                raise ValidationError(errors)

    def _check_duplicate_ids(self, entities: Sequence[Entity]) -> None:
        seen: dict[str, int] = {}
        errors = []
        for i, e in enumerate(entities):
            assert e.id is not None
            if e.id in seen:
                errors.append(FieldError(f"[{i}].id", "duplicate", f"id {e.id!r} repeats item {seen[e.id]}"))
            seen[e.id] = i
        if errors:
            raise ValidationError(errors)
        taken = self._tx.existing_ids(self.kind, seen)
        if taken:
            raise ValidationError(
                [
                    FieldError(
                        f"[{seen[t]}].id" if len(entities) > 1 else "id",
                        "duplicate",
                        f"a {self.kind.__name__} with id {t!r} exists",
                    )
                    for t in sorted(taken)
                ]
            )

    def add(self, entity: E) -> E:
        """Validate and store a new entity; assigns ``id`` when missing and sets ``version = 1``."""
        self._s._check_open()
        backup = (entity.id, entity.version, entity.created_at, entity.updated_at) if isinstance(entity, Entity) else None
        try:
            self._prepare_new(entity, utcnow(), "")
            self._check_references([entity])
            self._check_duplicate_ids([entity])
            self._tx.insert(self.kind, [entity])
        except BaseException:
            if backup is not None:
                for name, value in zip(("id", "version", "created_at", "updated_at"), backup):
                    object.__setattr__(entity, name, value)
            raise
        return entity

    def add_many(self, entities: Iterable[E]) -> int:
        """Bulk insert; all or nothing inside the session. Returns how many were added."""
        self._s._check_open()
        now = utcnow()
        items: list[E] = []
        errors: list[FieldError] = []
        for i, e in enumerate(entities):
            try:
                items.append(self._prepare_new(e, now, f"[{i}]"))
            except ValidationError as exc:
                errors += (
                    exc.prefixed(f"[{i}]").errors if not all(x.field.startswith(f"[{i}]") for x in exc.errors) else exc.errors
                )
        if errors:
            raise ValidationError(errors)
        if not items:
            return 0
        self._check_references(items)
        self._check_duplicate_ids(items)
        self._tx.insert(self.kind, items)
        return len(items)

    def update(self, entity: E) -> E:
        """Store changes; raises ConcurrencyError if ``entity.version`` is stale. Bumps ``version``."""
        self._s._check_open()
        if not isinstance(entity, self.kind):
            raise ValidationError([FieldError("", "type", f"expected {self.kind.__name__}, got {type(entity).__name__}")])
        if entity.id is None:
            raise ValidationError([FieldError("id", "required", "update needs a stored entity (add it first)")])
        entity.__attrs_post_init__()
        self._check_custom(entity, "")
        self._check_references([entity])
        old_version, old_updated = entity.version, entity.updated_at
        object.__setattr__(entity, "version", old_version + 1)
        object.__setattr__(entity, "updated_at", utcnow())
        try:
            ok = self._tx.update(self.kind, entity, old_version)
        except BaseException:
            ok = None
            raise
        finally:
            if not ok:
                object.__setattr__(entity, "version", old_version)
                object.__setattr__(entity, "updated_at", old_updated)
        if not ok:
            if self._tx.get(self.kind, entity.id) is None:
                raise NotFound(f"no {self.kind.__name__} with id {entity.id!r}")
            raise ConcurrencyError(f"{self.kind.__name__} {entity.id!r} changed since version {old_version} was read")
        return entity

    def delete(self, id: str) -> None:
        """Delete by id; refused while other records still point at it."""
        self._s._check_open()
        self._check_id(id)
        users = []
        for (child, field), parent in REFERENCES.items():
            if parent is self.kind:
                n = self._tx.referencing(child, field, [id])
                if n:
                    users.append(f"{n} {child.entity_name()}")
        if users:
            raise ValidationError(
                [FieldError("id", "in_use", f"{self.kind.__name__} {id!r} is still referenced by {', '.join(users)}")]
            )
        if not self._tx.delete(self.kind, id):
            raise NotFound(f"no {self.kind.__name__} with id {id!r}")

    # ---- reading ----
    @staticmethod
    def _check_id(id: Any) -> None:
        if not isinstance(id, str) or not id or len(id) > 64:
            raise ValidationError([FieldError("id", "invalid_id", f"not an id: {str(id)[:70]!r}")])

    def get(self, id: str) -> E:
        """The entity with this id; raises NotFound."""
        self._s._check_open()
        self._check_id(id)
        found = self._tx.get(self.kind, id)
        if found is None:
            raise NotFound(f"no {self.kind.__name__} with id {id!r}")
        return found  # type: ignore[return-value]

    def find(
        self,
        where: Mapping[str, Any] | None = None,
        order_by: str | Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[E]:
        """Entities matching ``where`` (see shared/API.md), ordered (ties broken by id) and paged."""
        self._s._check_open()
        conds = parse_where(self.kind, where, region=self._s.default_region)
        order = parse_order_by(self.kind, order_by)
        check_paging(limit, offset)
        return self._tx.find(self.kind, conds, order, limit, offset)  # type: ignore[return-value]

    def count(self, where: Mapping[str, Any] | None = None) -> int:
        self._s._check_open()
        return self._tx.count(self.kind, parse_where(self.kind, where, region=self._s.default_region))

    def iter(self, where: Mapping[str, Any] | None = None, batch_size: int = 1000) -> Iterator[E]:
        """Stream matches in id order without loading them all."""
        self._s._check_open()
        conds = parse_where(self.kind, where, region=self._s.default_region)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValidationError([FieldError("batch_size", "type", f"expected a whole number >= 1, got {batch_size!r}")])
        return self._tx.iter(self.kind, conds, batch_size)  # type: ignore[return-value]


class Session:
    """A unit of work: commits when the ``with`` block ends cleanly, rolls back on an exception."""

    customers: Repository[Customer]
    contacts: Repository[Contact]
    opportunities: Repository[Opportunity]
    tickets: Repository[Ticket]
    interactions: Repository[Interaction]
    orders: Repository[Order]
    tasks: Repository[Task]
    users: Repository[User]

    def __init__(
        self,
        store: Any,
        *,
        actor: User | None = None,
        default_region: str | None = None,
        custom_fields: Mapping[str, Sequence[CustomField]] | None = None,
    ):
        self._store = store
        self.actor = actor
        self.default_region = default_region
        self._custom_fields = dict(custom_fields or {})
        self._tx: Transaction | None = None
        self._closed = False
        self.customers = Repository(self, Customer)
        self.contacts = Repository(self, Contact)
        self.opportunities = Repository(self, Opportunity)
        self.tickets = Repository(self, Ticket)
        self.interactions = Repository(self, Interaction)
        self.orders = Repository(self, Order)
        self.tasks = Repository(self, Task)
        self.users = Repository(self, User)
        self.analytics = SessionAnalytics(self)

    def _check_open(self) -> None:
        if self._closed:
            from pycrm.errors import CRMError

            raise CRMError("this session has ended; open a new one with crm.session()")

    def _transaction(self) -> Transaction:
        if self._tx is None:
            self._tx = self._store.begin()
        return self._tx

    def commit(self) -> None:
        if self._tx is not None:
            self._tx.commit()
            self._tx = None

    def rollback(self) -> None:
        if self._tx is not None:
            tx, self._tx = self._tx, None
            tx.rollback()

    def close(self) -> None:
        self.rollback()
        self._closed = True
