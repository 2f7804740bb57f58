"""Repositories and the unit of work, shared by every adapter."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from pycrm._runtime import bulk_gc
from pycrm.domain import (
    ENTITIES,
    Activity,
    Attachment,
    Campaign,
    CampaignMember,
    CampaignResponse,
    Contact,
    Customer,
    CustomField,
    Entity,
    Interaction,
    Opportunity,
    Order,
    Product,
    Survey,
    Task,
    Ticket,
    User,
    check_custom,
    check_required,
    new_id,
    utcnow,
)
from pycrm.domain._checks import check_iterable, is_id, new_ids
from pycrm.domain._codec import to_data
from pycrm.domain._events import CREATED, CustomEvent, Event, RuleFired, derive_rows
from pycrm.errors import ConcurrencyError, CRMError, FieldError, NotFound, PermissionDenied, ValidationError, quote
from pycrm.security import AUDIT_ACTIONS
from pycrm.security import diff as audit_diff
from pycrm.security._audit import NOISE, created_diff, created_diff_text, created_diff_texts
from pycrm.storage._analytics import SessionAnalytics
from pycrm.storage._gate import duplicate_ids_error, gate, not_found
from pycrm.storage._guard import Guard, SecurityConfig
from pycrm.storage._journal import AuditLog, ChangeFeed, require_all
from pycrm.storage._personal import PersonalData
from pycrm.storage._quality import SessionQuality
from pycrm.storage._unit import UnitOfWork
from pycrm.storage._where import Condition, InValues, check_count, check_paging, filter_kinds, parse_order_by
from pycrm.storage.port import BulkMode, Outbox, PreparedRows, PreparedWrites, RowPreparer, Transaction

if TYPE_CHECKING:
    from pycrm.dedup import Cluster
    from pycrm.dedup._merge import MergeRecord
    from pycrm.storage._attachments import AttachmentLimits, AttachmentRepository
    from pycrm.storage._blobs import BlobStore
    from pycrm.storage._campaigns import CampaignRepository

__all__ = ["ITEM_REFERENCES", "REFERENCES", "UNIQUE_FIELDS", "Repository", "Session"]

#: Journal entries a session collects before handing them to its transaction.
_FLUSH_AT = 2000
#: Fields that change on every write and say nothing about it (left out of audit diffs, as ``diff`` does).
_QUIET = frozenset(NOISE)
_EVERY: dict[type[Entity], list[str]] = {}


def _every_field(kind: type[Entity]) -> list[str]:
    """The fields a new row of ``kind`` sets, as the change feed names them (sorted, without the noise)."""
    got = _EVERY.get(kind)
    if got is None:
        got = _EVERY[kind] = sorted(a.name for a in attrs.fields(kind) if a.name not in _QUIET)
    return got


E = TypeVar("E", bound=Entity)

#: (child kind, field) -> parent kind: references checked on write and on delete.
REFERENCES: dict[tuple[type[Entity], str], type[Entity]] = {
    (Contact, "customer_id"): Customer,
    (Opportunity, "customer_id"): Customer,
    (Ticket, "customer_id"): Customer,
    (Interaction, "customer_id"): Customer,
    (Order, "customer_id"): Customer,
    (Survey, "customer_id"): Customer,
    (CampaignMember, "customer_id"): Customer,
    (CampaignMember, "campaign_id"): Campaign,
    (CampaignResponse, "customer_id"): Customer,
    (CampaignResponse, "member_id"): CampaignMember,
    (CampaignResponse, "campaign_id"): Campaign,
    (Interaction, "contact_id"): Contact,  # optional references: None points at nothing
    (Interaction, "opportunity_id"): Opportunity,
    (Activity, "customer_id"): Customer,
    (Activity, "contact_id"): Contact,
    (Attachment, "customer_id"): Customer,
}

#: References that must name a record of the same customer: (kind, field) -> the field holding the customer
#: on both sides (an interaction's contact and deal belong to the interaction's customer), checked on write.
SAME_CUSTOMER: dict[tuple[type[Entity], str], str] = {
    (Interaction, "contact_id"): "customer_id",
    (Interaction, "opportunity_id"): "customer_id",
    (Activity, "contact_id"): "customer_id",
}

#: References held by the items of a list field: (kind, list field, item attribute) -> parent kind, checked on
#: write (an order line's product) and on the parent's delete (a product on an order's line stays).
ITEM_REFERENCES: dict[tuple[type[Entity], str, str], type[Entity]] = {(Order, "lines", "product_id"): Product}

#: Fields whose value is unique among the records of a kind (a product's SKU), checked on write.
UNIQUE_FIELDS: dict[type[Entity], tuple[str, ...]] = {Product: ("sku",)}

#: References by id to a record of any kind (not checked on write): re-pointed by merges too.
SOFT_REFERENCES: tuple[tuple[type[Entity], str], ...] = ((Task, "related_id"), (Attachment, "record_id"))


def reference_fields(kind: type[Entity]) -> list[str]:
    """The fields of ``kind`` that must hold the id of a stored record (checked on write)."""
    return [f for (child, f) in REFERENCES if child is kind] + [f for (child, f, _) in ITEM_REFERENCES if child is kind]


def stamp_new(entity: Entity, at: dt.datetime) -> None:
    """Stamp a validated entity about to be stored as new: an id where missing, version 1, created ``at``
    unless created before, updated ``at``."""
    set_ = object.__setattr__
    if entity.id is None:
        set_(entity, "id", new_id())
    if entity.created_at is None:
        set_(entity, "created_at", at)
    set_(entity, "updated_at", at)
    set_(entity, "version", 1)


def stamp_new_many(entities: Sequence[Entity], at: dt.datetime) -> None:
    """:func:`stamp_new` of each entity, the missing ids made together (:func:`~pycrm.domain._checks.new_ids`)."""
    set_ = object.__setattr__
    ids = iter(new_ids(sum(1 for e in entities if e.id is None)))
    for entity in entities:
        if entity.id is None:  # still None: an entity given twice gets one id, as stamp_new gives it
            set_(entity, "id", next(ids))
        if entity.created_at is None:
            set_(entity, "created_at", at)
        set_(entity, "updated_at", at)
        set_(entity, "version", 1)


def _links_to(kind: type[Entity]) -> list[tuple[type[Entity], str]]:
    """(child kind, field) pairs that may hold the id of a ``kind`` record."""
    return [(c, f) for (c, f), parent in REFERENCES.items() if parent is kind] + list(SOFT_REFERENCES)


class Repository(Generic[E]):
    """``add get update delete find count iter add_many`` for one entity kind, the same on every adapter."""

    def __init__(self, session: Session, kind: type[E]):
        self._s = session
        self.kind = kind
        name = kind.entity_name()
        #: the store's declared custom fields and required built-in fields of this repository (fixed per session)
        self._defs: Sequence[CustomField] = tuple(session._custom_fields.get(name, ()))
        self._required: tuple[str, ...] = tuple(session._required_fields.get(name, ()))

    @property
    def _tx(self) -> Transaction:
        return self._s._transaction()

    # ---- writing ----
    def _prepare_new(self, entity: Any, now: dt.datetime, path: str, revalidate: bool = True, stamp: bool = True) -> E:
        """Check a new entity again before storing it; ``stamp``: then stamp it (``add_many`` stamps its
        entities together once all of them passed)."""
        if not isinstance(entity, self.kind):
            raise ValidationError([FieldError(path, "type", f"expected {self.kind.__name__}, got {type(entity).__name__}")])
        if revalidate:
            entity._recheck()  # lists and dicts may have been changed in place
        self._check_custom(entity, path)
        if stamp:
            stamp_new(entity, now)
        return entity

    def _check_custom(self, entity: Any, path: str) -> None:
        """The store's declared custom fields, and the built-in fields it requires (``required_fields``)."""
        defs, required = self._defs, self._required
        if not defs and not required:
            return
        try:
            if defs:
                check_custom(entity.custom, defs)
            if required:
                check_required(entity, required)
        except ValidationError as exc:
            raise exc.prefixed(path) if path else exc from None

    def _check_references(self, entities: Sequence[Entity], stored: Entity | None = None) -> None:
        self._check_reference_values({f: [getattr(e, f) for e in entities] for f in reference_fields(self.kind)})
        if not self._s._guard.system:
            self._check_soft_references(entities, stored)

    def _check_soft_references(self, entities: Sequence[Entity], stored: Entity | None) -> None:
        """For an actor, a soft reference (a task's ``related_id``) it sets must name a record it can read:
        one it cannot would follow that record's fate -- re-pointed by its merge, archived with it -- and tell
        the actor about a record outside its scope. "Not yours" and "not there" give the same error."""
        for child, field in SOFT_REFERENCES:
            if child is not self.kind:
                continue
            column = [getattr(e, field) for e in entities]
            wanted = {v for v in column if v is not None and (stored is None or v != getattr(stored, field))}
            if not wanted:
                continue
            policy = self._s._guard.policy
            for kind in ENTITIES.values():
                if wanted and policy.allowed(kind.entity_name(), "read") is not None:
                    wanted -= self._tx.existing_ids(kind, wanted)
            if wanted:
                raise ValidationError(
                    [
                        FieldError(f"[{i}].{field}" if len(column) > 1 else field, "not_found", f"no record with id {v!r}")
                        for i, v in enumerate(column)
                        if v in wanted
                    ]
                )

    def _check_reference_values(self, values: Mapping[str, Sequence[Any]]) -> None:
        """Every referenced record exists; ``values`` has each reference field's values, one per new row."""
        for (child, field), parent in REFERENCES.items():
            if child is not self.kind:
                continue
            column = values[field]
            wanted = {v for v in column if v is not None}
            missing = wanted - self._tx.existing_ids(parent, wanted) if wanted else set()
            if missing:
                errors = [
                    FieldError(
                        f"[{i}].{field}" if len(column) > 1 else field,
                        "not_found",
                        f"no {parent.entity_name()[:-1] if parent is not Customer else 'customer'} with id {v!r}",
                    )
                    for i, v in enumerate(column)
                    if v in missing
                ]
                raise ValidationError(errors)
            owner = SAME_CUSTOMER.get((child, field))
            if owner is not None and wanted:
                self._check_same_customer(parent, field, column, values[owner], owner)
        for (child, field, attr), parent in ITEM_REFERENCES.items():
            if child is not self.kind:
                continue
            rows = values[field]
            wanted = {getattr(item, attr) for items in rows for item in items}
            missing = wanted - self._tx.existing_ids(parent, wanted) if wanted else set()
            if missing:
                name = parent.__name__.lower()
                raise ValidationError(
                    [
                        FieldError(
                            f"[{i}].{field}[{j}].{attr}" if len(rows) > 1 else f"{field}[{j}].{attr}",
                            "not_found",
                            f"no {name} with id {getattr(item, attr)!r}",
                        )
                        for i, items in enumerate(rows)
                        for j, item in enumerate(items)
                        if getattr(item, attr) in missing
                    ]
                )

    def _check_same_customer(
        self, parent: type[Entity], field: str, column: Sequence[Any], owners: Sequence[Any], owner: str
    ) -> None:
        """Each referenced ``parent`` (seen by the actor: existence was checked in its scope) belongs to the row's
        own customer: an interaction's contact or deal is one of its customer's."""
        of: dict[str, Any] = {}
        ids = sorted({v for v in column if v is not None})
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for p in self._tx.find(parent, [Condition("id", "in", InValues(chunk), "text")], [], None, 0):
                of[str(p.id)] = getattr(p, owner)
        many = len(column) > 1
        errors = [
            FieldError(
                f"[{i}].{field}" if many else field,
                "other_customer",
                f"{parent.__name__.lower()} {v!r} belongs to another customer than {owners[i]!r}",
            )
            for i, v in enumerate(column)
            if v is not None and of.get(v) != owners[i]
        ]
        if errors:
            raise ValidationError(errors)

    def _check_unique_fields(self, entities: Sequence[Entity]) -> None:
        """The fields of :data:`UNIQUE_FIELDS` hold no value another record (or another new one) holds. The
        stored records are searched past the row scope ("taken" must not depend on who asks; only whether it
        is taken leaves); the database's unique index settles a race between two sessions."""
        names = UNIQUE_FIELDS.get(self.kind, ())
        if not names:
            return
        many = len(entities) > 1
        every = self._s._unguarded("a unique field (a product's SKU) is unique among every record, seen or not")
        errors: list[FieldError] = []
        for name in names:
            first: dict[Any, int] = {}
            for i, e in enumerate(entities):
                v = getattr(e, name)
                if v in first:
                    errors.append(FieldError(f"[{i}].{name}", "duplicate", f"{v!r} repeats item {first[v]}"))
                else:
                    first[v] = i
            ids = {e.id for e in entities}
            values = list(first)
            for start in range(0, len(values), 500):
                chunk = values[start : start + 500]
                for other in every.find(self.kind, [Condition(name, "in", InValues(chunk), "text")], [], None, 0):
                    v = getattr(other, name)
                    i = first[v]
                    if other.id not in ids or entities[i].id != other.id:
                        path = f"[{i}].{name}" if many else name
                        errors.append(FieldError(path, "duplicate", f"a {self.kind.__name__} with {name} {v!r} exists"))
        if errors:
            raise ValidationError(errors)

    def _check_in_use_by_items(self, id: str) -> list[str]:
        """What still points at ``id`` through :data:`ITEM_REFERENCES` (an order line's product), counted
        over every record: a product on another owner's order is in use too (only the count leaves)."""
        users = []
        for (child, field, _), parent in ITEM_REFERENCES.items():
            if parent is self.kind:
                every = self._s._unguarded("a record on another owner's order lines is still in use")
                n = every.count(child, [Condition(field, "eq", id, field)])
                if n:
                    users.append(f"{n} {child.entity_name()}")
        return users

    def _check_duplicate_ids(self, entities: Sequence[Entity]) -> None:
        ids = [e.id for e in entities]
        assert None not in ids
        self._check_new_ids(ids)  # type: ignore[arg-type]

    def _check_new_ids(self, ids: Sequence[str]) -> None:
        seen: dict[str, int] = {}
        errors = []
        for i, id in enumerate(ids):
            if id in seen:
                errors.append(FieldError(f"[{i}].id", "duplicate", f"id {id!r} repeats item {seen[id]}"))
            seen[id] = i
        if errors:
            raise ValidationError(errors)
        taken = self._tx.existing_ids(self.kind, seen)
        if taken:
            raise duplicate_ids_error(self.kind, seen, taken)

    def add(self, entity: E) -> E:
        """Validate and store a new entity; assigns ``id`` when missing and sets ``version = 1``."""
        self._s._check_open()
        backup = (entity.id, entity.version, entity.created_at, entity.updated_at) if isinstance(entity, Entity) else None
        try:
            self._prepare_new(entity, utcnow(), "")
            guard = self._s._guard
            guard.check_new(entity)
            self._check_references([entity])
            guard.check_write(self.kind, "create", entity, self._lookup)
            self._check_duplicate_ids([entity])
            self._check_unique_fields([entity])
            stored = guard.seal(self.kind, entity)
            self._tx.insert(self.kind, [stored])
            self._s._journal(self.kind, "create", None, stored)
        except BaseException:
            if backup is not None:
                for name, value in zip(("id", "version", "created_at", "updated_at"), backup):
                    object.__setattr__(entity, name, value)
            raise
        return entity

    def add_many(self, entities: Iterable[E]) -> int:
        """Bulk insert; all or nothing inside the session. Returns how many were added.

        While it runs, the garbage collector starts less often (``pycrm._runtime.bulk_gc``)."""
        with bulk_gc():
            return self._add_many(entities, revalidate=True)

    def _add_many(self, entities: Iterable[E], *, revalidate: bool) -> int:
        """``add_many``; ``revalidate=False`` for entities just built (validated) and not changed since, as an
        import's worker processes make them: custom fields, references, ids and security are still checked."""
        self._s._check_open()
        check_iterable("entities", entities, f"a list of {self.kind.__name__} objects")
        now = utcnow()
        items: list[E] = []
        errors: list[FieldError] = []
        for i, e in enumerate(entities):
            try:
                items.append(self._prepare_new(e, now, f"[{i}]", revalidate, stamp=False))
            except ValidationError as exc:
                errors += (
                    exc.prefixed(f"[{i}]").errors if not all(x.field.startswith(f"[{i}]") for x in exc.errors) else exc.errors
                )
        if errors:
            raise ValidationError(errors)
        if not items:
            return 0
        stamp_new_many(items, now)
        guard = self._s._guard
        if not guard.system:
            for e in items:
                guard.check_new(e)
        self._check_references(items)
        if not guard.system:
            for e in items:
                guard.check_write(self.kind, "create", e, self._lookup)
        self._check_duplicate_ids(items)
        self._check_unique_fields(items)
        stored = [guard.seal(self.kind, e) for e in items] if guard.sealed_fields(self.kind) else items
        self._tx.insert(self.kind, stored)
        self._s._journal_created(self.kind, stored, now)
        return len(items)

    def _add_prepared(self, batch: PreparedRows) -> int:
        """Insert new rows made elsewhere by a :class:`~pycrm.storage.port.RowPreparer` (an import's worker
        processes), for a session where :meth:`Session._prepared_dialect` gives their dialect: references
        and ids are checked here, then the rows are inserted and journalled (the audit diffs were encoded
        with the rows)."""
        self._s._check_open()
        if batch.kind != self.kind.entity_name() or self._s._prepared_dialect(self.kind) != batch.dialect:
            raise CRMError(f"rows prepared for {batch.kind} on {batch.dialect} cannot go into this {self.kind.__name__} store")
        if not batch.ids:
            return 0
        if self._s._security.audit and batch.diffs is None:
            raise CRMError("rows prepared without audit diffs cannot go into a store that keeps an audit trail")
        self._check_reference_values(batch.references)
        self._check_new_ids(batch.ids)
        tx = self._tx
        assert isinstance(tx, PreparedWrites)  # _prepared_dialect said so
        tx.insert_rows(self.kind, batch.rows, batch.children)
        self._s._journal_new(self.kind, batch.ids, batch.diffs, utcnow())
        return len(batch.ids)

    def update(self, entity: E) -> E:
        """Store changes; raises ConcurrencyError if ``entity.version`` is stale. Bumps ``version``."""
        self._s._check_open()
        if not isinstance(entity, self.kind):
            raise ValidationError([FieldError("", "type", f"expected {self.kind.__name__}, got {type(entity).__name__}")])
        if entity.id is None:
            raise ValidationError([FieldError("id", "required", "update needs a stored entity (add it first)")])
        guard = self._s._guard
        tx = self._tx
        stored = self._s._stored_for(self.kind, entity.id, "update")
        if stored is None:
            raise not_found(self.kind, entity.id)
        guard.check_write(self.kind, "update", stored, self._lookup)
        old_version = entity.version
        if stored.version != old_version:
            raise ConcurrencyError(f"{self.kind.__name__} {entity.id!r} changed since version {old_version} was read")
        sealed = guard.sealed_fields(self.kind)
        plain = guard.unseal(self.kind, stored) if sealed else stored
        target = guard.prepare_update(self.kind, entity, plain)  # masked fields get their stored values back
        target.__attrs_post_init__()  # lists may have been changed in place
        self._check_custom(target, "")
        self._check_references([target], plain)
        guard.check_write(self.kind, "update", target, self._lookup)
        self._check_unique_fields([target])
        now = utcnow()
        row = guard.seal(self.kind, target, stored, plain) if sealed else target
        old_updated = entity.updated_at
        for e in {id(x): x for x in (entity, target, row)}.values():
            object.__setattr__(e, "version", old_version + 1)
            object.__setattr__(e, "updated_at", now)
        ok = False
        try:
            ok = tx.update(self.kind, row, old_version)
        finally:
            if not ok:
                for e in (entity, target, row):
                    object.__setattr__(e, "version", old_version)
                    object.__setattr__(e, "updated_at", old_updated)
        if not ok:
            raise ConcurrencyError(f"{self.kind.__name__} {entity.id!r} changed since version {old_version} was read")
        self._s._journal(self.kind, "update", stored, row)
        return entity

    def delete(self, id: str) -> None:
        """Delete by id; refused while other records still point at it."""
        self._s._check_open()
        self._check_id(id)
        stored = self._s._stored_for(self.kind, id, "delete")
        if stored is None:
            raise not_found(self.kind, id)
        self._s._guard.check_write(self.kind, "delete", stored, self._lookup)
        users = []
        for (child, field), parent in REFERENCES.items():
            if parent is self.kind:
                n = self._tx.referencing(child, field, [id])
                if n:
                    users.append(f"{n} {child.entity_name()}")
        users += self._check_in_use_by_items(id)
        if users:
            raise ValidationError(
                [FieldError("id", "in_use", f"{self.kind.__name__} {id!r} is still referenced by {', '.join(users)}")]
            )
        if not self._tx.delete(self.kind, id):
            raise not_found(self.kind, id)
        self._s._journal(self.kind, "delete", stored, None)

    # ---- reading ----
    @staticmethod
    def _check_id(id: Any) -> None:
        if not is_id(id):
            raise ValidationError([FieldError("id", "invalid_id", f"not an id: {quote(id, 70)}")])

    def get(self, id: str) -> E:
        """The entity with this id; raises NotFound."""
        self._s._check_open()
        self._check_id(id)
        found = self._tx.get(self.kind, id)  # for an actor, the scope is part of the query: outside it is "not there"
        if found is None:
            gone = self._tx.record_get(f"merged_{self.kind.entity_name()}", id)  # told only with its survivor
            if gone is not None:
                raise NotFound(f"no {self.kind.__name__} with id {id!r}: it was merged into {gone['survivor_id']!r}")
            raise not_found(self.kind, id)
        return self._s._present(self.kind, found)  # type: ignore[no-any-return]

    def find(
        self,
        where: Mapping[str, Any] | None = None,
        order_by: str | Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[E]:
        """Entities matching ``where`` (see shared/API.md), ordered (ties broken by id) and paged."""
        self._s._check_open()
        conds = self._s._conditions(self.kind, where)
        order = parse_order_by(self.kind, order_by)
        if order and not self._s._guard.system:
            self._s._guard.check_visible_fields(self.kind, [o.field for o in order], "sort")
        check_paging(limit, offset)
        rows = self._tx.find(self.kind, conds, order, limit, offset)
        if self._s._gate is None and self._s._guard.sealed_fields(self.kind):
            return [self._s._present(self.kind, e) for e in rows]
        return rows  # type: ignore[return-value]

    def count(self, where: Mapping[str, Any] | None = None) -> int:
        self._s._check_open()
        return self._tx.count(self.kind, self._s._conditions(self.kind, where))

    # ---- duplicates ----
    def find_duplicates(
        self,
        where: Mapping[str, Any] | None = None,
        *,
        fields: Mapping[str, str] | None = None,
        threshold: float | None = None,
    ) -> list[Cluster]:
        """Groups of likely duplicates among the stored records (``pycrm.dedup.find_duplicates``).

        The records stream through :meth:`iter`: what is held per record is its id and one integer per
        compared field, never the entities themselves.
        """
        from pycrm.dedup import find_duplicates

        return find_duplicates(self.iter(where, batch_size=5000), fields=fields, threshold=threshold)

    def merge(self, survivor_id: str, duplicate_ids: str | Sequence[str], rules: Mapping[str, str] | None = None) -> MergeRecord:
        """Merge ``duplicate_ids`` into ``survivor_id``; see :mod:`pycrm.dedup._merge` for the rules.

        Records that point at a duplicate are re-pointed to the survivor, the duplicates are deleted, and a
        MergeRecord is stored; all of it happens or none of it does. Undo with :meth:`unmerge`.
        """
        from pycrm.storage import _merging

        return _merging.merge(self, survivor_id, duplicate_ids, rules)

    def unmerge(self, merge_id: str) -> MergeRecord:
        """Take a merge back: the duplicates return exactly as they were and re-pointed records point back.

        Survivor fields edited after the merge keep their new values; the rest return to their values from
        before the merge. Records added to the survivor after the merge stay with it.
        """
        from pycrm.storage import _merging

        return _merging.unmerge(self, merge_id)

    def merges(self) -> list[MergeRecord]:
        """Every merge of this kind kept in the store, oldest first (undone ones included); for an actor, the
        merges of survivors it can read, their snapshots masked as it sees the records."""
        from pycrm.storage import _merging

        return _merging.merges(self)

    def _write_stored(self, entity: Any, before: Any, now: dt.datetime, tx: Any = None) -> None:
        """Store an entity in its stored (sealed) form after a merge step changed it (through ``tx``: by
        default the session's transaction)."""
        entity.__attrs_post_init__()
        self._check_references([entity], before)
        old_version = entity.version
        object.__setattr__(entity, "version", old_version + 1)
        object.__setattr__(entity, "updated_at", now)
        if not (tx or self._tx).update(self.kind, entity, old_version):
            object.__setattr__(entity, "version", old_version)
            raise ConcurrencyError(f"{self.kind.__name__} {entity.id!r} changed in another session during the merge; retry")
        self._s._journal(self.kind, "update", before, entity)

    def iter(self, where: Mapping[str, Any] | None = None, batch_size: int = 1000) -> Iterator[E]:
        """Stream matches in id order without loading them all."""
        return self._iter("read", where, batch_size)

    def _iter(self, action: str, where: Mapping[str, Any] | None, batch_size: int) -> Iterator[E]:
        self._s._check_open()
        conds = self._s._conditions(self.kind, where, action)
        check_count("batch_size", batch_size)
        rows = self._tx.iter(self.kind, conds, batch_size)
        if self._s._gate is None and self._s._guard.sealed_fields(self.kind):
            kind, present = self.kind, self._s._present
            return (present(kind, e) for e in rows)
        return rows  # type: ignore[return-value]

    def _lookup(self, repository: str, id: str) -> Entity | None:
        """A stored row by repository name and id, as stored, for the policy to decide a scope that follows
        a related row (nothing of it is returned to the caller)."""
        return self._s._unguarded("the policy looks up the row a scope follows").get(ENTITIES[repository], id)


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
    surveys: Repository[Survey]
    activities: Repository[Activity]
    campaigns: CampaignRepository
    campaign_members: Repository[CampaignMember]
    campaign_responses: Repository[CampaignResponse]
    products: Repository[Product]
    attachments: AttachmentRepository

    def __init__(
        self,
        store: Any,
        *,
        actor: User | None = None,
        default_region: str | None = None,
        custom_fields: Mapping[str, Sequence[CustomField]] | None = None,
        security: SecurityConfig | None = None,
        outbox: bool = False,
        merge_rules: Mapping[str, Mapping[str, str]] | None = None,
        required_fields: Mapping[str, Sequence[str]] | None = None,
        blobs: BlobStore | None = None,
        attachment_limits: AttachmentLimits | None = None,
    ):
        from pycrm.storage._attachments import AttachmentLimits, AttachmentRepository  # it builds on Repository

        self._store = store
        self._blobs = blobs
        self._attachment_limits = attachment_limits if attachment_limits is not None else AttachmentLimits()
        self._post_commit: list[Callable[[], None]] = []
        self._outbox = outbox
        self._merge_rules = dict(merge_rules or {})  # pycrm.open(merge_rules=...), checked there
        self._required_fields = dict(required_fields or {})
        self.actor = actor
        self.default_region = default_region
        self._custom_fields = dict(custom_fields or {})
        self._security = security if security is not None else SecurityConfig()
        self._guard = Guard(
            actor, self._security, default_region, on_denied=self._denied, custom=filter_kinds(self._custom_fields)
        )
        self._tx: Transaction | None = None
        self._gate: Any = None
        self._closed = False
        # the journal of this unit of work: change-feed events and audit drafts, written at commit
        self._changes: list[dict[str, Any]] = []
        self._audit: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []  # outbox rows of the domain events raised (when the outbox is on)
        self._denials: list[dict[str, Any]] = []  # refusals and exports: kept even when the session rolls back
        self._flushes = 0
        self.customers = Repository(self, Customer)
        self.contacts = Repository(self, Contact)
        self.opportunities = Repository(self, Opportunity)
        self.tickets = Repository(self, Ticket)
        self.interactions = Repository(self, Interaction)
        self.orders = Repository(self, Order)
        self.tasks = Repository(self, Task)
        self.users = Repository(self, User)
        self.surveys = Repository(self, Survey)
        self.activities = Repository(self, Activity)
        from pycrm.storage._campaigns import CampaignRepository  # it builds on Repository

        self.campaigns = CampaignRepository(self, Campaign)
        self.campaign_members = Repository(self, CampaignMember)
        self.campaign_responses = Repository(self, CampaignResponse)
        self.products = Repository(self, Product)
        self.attachments = AttachmentRepository(self, Attachment)
        self.analytics = SessionAnalytics(self)
        self.quality = SessionQuality(self)
        self.changes = ChangeFeed(self)
        self.personal = PersonalData(self)
        self.unit = UnitOfWork(self)  # what code built on the session uses of it (pycrm.io)
        self.audit = AuditLog(
            lambda: (self._transaction(), False),
            self._security.audit_key,
            self._check_open,
            self._check_audit,
            lambda: (self._unguarded("verify hashes the trail as stored; only its result leaves"), False),
        )

    def _check_audit(self) -> None:
        self._check_open()
        require_all(self, "read the audit trail")

    def _repository(self, name: str) -> Repository[Any]:
        repo = getattr(self, name, None) if name in ENTITIES else None
        if not isinstance(repo, Repository):
            raise ValidationError([FieldError("entity", "unknown_entity", f"no repository named {name!r}")])
        return repo

    # ---- hooks the security and lifecycle layers fill in (every read and write path goes through them) ----
    def _conditions(self, kind: type[Entity], where: Mapping[str, Any] | None, action: str = "read") -> list[Condition]:
        """The caller's ``where`` parsed, ANDed with the actor's scope for ``action`` on ``kind``.

        Every query path (find, count, iter, get, analytics, exports, dedup) builds its conditions here,
        so all of them see the same rows; raises PermissionDenied when ``action`` is not granted.
        """
        return self._guard.conditions(kind, where, action)

    def _present(self, kind: type[Entity], entity: Any) -> Any:
        """An entity read through :meth:`_transaction` as this actor may see it: the gate presented an actor's
        already; the system actor's is decrypted here."""
        if self._gate is not None or not self._guard.sealed_fields(kind):
            return entity
        return self._guard.unseal(kind, entity)

    def _raw_rows_ok(self, kind: type[Entity]) -> bool:
        """Whether stored rows may leave the store as they are (no masking, no encrypted fields)."""
        return not self._guard.needs_presenting(kind)

    def _journal(
        self, kind: type[Entity], op: str, before: Entity | None, after: Entity | None, *, at: dt.datetime | None = None
    ) -> None:
        """Record one change of a stored row (entities as stored: sealed values stay sealed).

        The change feed gets ``op`` with the changed field names; the audit trail (when enabled) the
        field-level diff, encrypted values shown as changed. Both are written at commit, in the same
        transaction; a rolled-back atomic block drops its part (see :meth:`_atomic`). ``at``: the time
        of the change (default now).
        """
        row = after if after is not None else before
        assert row is not None and row.id is not None
        audit = self._security.audit
        changes: dict[str, Any] | None = {}
        text = None
        if before is None:  # a new row: the feed names every field, the audit shows the non-empty values
            assert after is not None
            fields: Sequence[str] = _every_field(kind)
            if audit:
                if self._guard.sealed_fields(kind):
                    changes = self._guard.redact_diff(kind, created_diff(to_data(after)))
                else:  # encoded as the trail stores it, without building the diff
                    changes, text = None, created_diff_text(after)
        else:
            old = to_data(before)
            new = to_data(after) if after is not None else None
            changes = self._guard.redact_diff(kind, audit_diff(old, new))
            fields = sorted(changes)
        at = at or utcnow()
        if self._outbox:
            actor = self.actor.id if self.actor is not None else None
            self._events += derive_rows(kind, op, before, after, fields, at, actor)
        self._record(kind, op, row.id, None if after is None else after.version, fields, at, changes, text)

    def _journal_created(self, kind: type[Entity], entities: Sequence[Entity], at: dt.datetime) -> None:
        """Record new rows as stored (version 1, created ``at``): what :meth:`_journal` records for each, in
        one pass (``add_many``): the audit diffs are encoded a flush's worth at a time (:func:`created_diff_texts`)
        and the journal drafts made in bulk. Where the trail redacts encrypted fields, entity by entity."""
        if self._security.audit and self._guard.sealed_fields(kind):
            for e in entities:
                self._journal(kind, "create", None, e, at=at)
            return
        audit = self._security.audit
        for i in range(0, len(entities), _FLUSH_AT):  # encoded a flush at a time: the texts of a few rows held
            chunk = entities[i : i + _FLUSH_AT]
            ids: list[str] = [e.id for e in chunk]  # type: ignore[misc]  # stamped
            self._journal_new(kind, ids, created_diff_texts(chunk) if audit else None, at)

    def _journal_new(self, kind: type[Entity], ids: Sequence[str], diffs: Sequence[str] | None, at: dt.datetime) -> None:
        """Record new rows (version 1) inserted together: ``diffs`` their audit diffs' canonical JSON. The
        drafts are those :meth:`_record` makes, built a flush's worth at a time."""
        fields = _every_field(kind)
        actor = self.actor.id if self.actor is not None else None
        name = kind.entity_name()
        audit = self._security.audit
        if self._outbox:
            event = CREATED[kind]
            self._events += (
                [
                    {
                        "key": key,
                        "event": event.__name__,
                        "entity": name,
                        "entity_id": id,
                        "at": at,
                        "actor_id": actor,
                        "data": {},
                    }
                    for key, id in zip(new_ids(len(ids)), ids)
                ]
                if ids
                else []
            )
        i = 0
        while i < len(ids):
            j = min(len(ids), i + max(1, _FLUSH_AT - len(self._changes)))
            self._changes += [
                {"entity": name, "entity_id": id, "op": "create", "version": 1, "fields": fields, "at": at, "actor_id": actor}
                for id in ids[i:j]
            ]
            if audit:
                texts = diffs[i:j] if diffs is not None else [None] * (j - i)
                self._audit += [
                    {
                        "at": at,
                        "actor_id": actor,
                        "action": "create",
                        "entity": name,
                        "entity_id": id,
                        "diff": None,
                        "diff_text": text,
                    }
                    for id, text in zip(ids[i:j], texts)
                ]
            if len(self._changes) >= _FLUSH_AT:
                self._flush()
            i = j

    def _record(
        self,
        kind: type[Entity],
        op: str,
        entity_id: str,
        version: int | None,
        fields: Sequence[str],
        at: dt.datetime,
        changes: dict[str, Any] | None,
        changes_text: str | None,
    ) -> None:
        actor = self.actor.id if self.actor is not None else None
        name = kind.entity_name()
        self._changes.append(
            {"entity": name, "entity_id": entity_id, "op": op, "version": version, "fields": fields, "at": at, "actor_id": actor}
        )
        if self._security.audit:
            action = op if op in AUDIT_ACTIONS else "update"
            self._audit.append(
                {
                    "at": at,
                    "actor_id": actor,
                    "action": action,
                    "entity": name,
                    "entity_id": entity_id,
                    "diff": changes,
                    "diff_text": changes_text,
                }
            )
        if len(self._changes) >= _FLUSH_AT:
            self._flush()

    def _row_preparer(self, kind: type[Entity]) -> RowPreparer | None:
        """What makes new ``kind`` rows outside the session (see :meth:`Repository._add_prepared`), or None:
        the store takes entities only (no :class:`~pycrm.storage.port.PreparedWrites`), or this actor's
        writes are checked row by row, or some fields are encrypted, or the kind has unique fields (checked
        against each other row by row)."""
        tx = self._transaction()
        if (
            not isinstance(tx, PreparedWrites)
            or not self._guard.system
            or self._guard.sealed_fields(kind)
            or kind in UNIQUE_FIELDS
        ):
            return None
        return tx.row_preparer()

    def _prepared_dialect(self, kind: type[Entity]) -> str | None:
        """The dialect of :meth:`_row_preparer`'s rows, or None where rows are not prepared."""
        preparer = self._row_preparer(kind)
        return None if preparer is None else preparer.dialect

    def _flush(self) -> None:
        """Hand the journal collected so far to the transaction (big units of work do not hold it all), and the
        domain events raised to the outbox, in the same transaction.

        The adapter takes the journal lock at the first flush and keeps it to the end of the transaction.
        """
        if self._changes or self._audit or self._events:
            if self._changes or self._audit:
                self._transaction().journal(self._changes, self._audit, key=self._security.audit_key)
            if self._events:
                self._outbox_tx().outbox_add(self._events)
            self._changes, self._audit, self._events = [], [], []
            self._flushes += 1

    def _outbox_tx(self) -> Outbox:
        """The adapter's outbox, past the gate: events are raised by the session from writes the gate checked,
        never handed in by a caller."""
        tx = self._unguarded("the events of the session's own writes, checked as they were made")
        if not isinstance(tx, Outbox):
            raise CRMError(f"this store ({type(tx).__name__}) keeps no outbox; open it without outbox=True")
        return tx

    def emit(self, event: Event) -> Event:
        """Raise a :class:`~pycrm.domain.events.CustomEvent` (written to the outbox with this unit of work,
        which must have been opened with ``outbox=True``); returns it as stored (this session's actor, now).

        An event about a record needs the right to update it ("not yours" and "not there" are one NotFound)."""
        self._check_open()
        if not isinstance(event, CustomEvent):
            raise ValidationError([FieldError("event", "type", f"expected a CustomEvent, got {type(event).__name__}")])
        if event.entity_id is not None:
            kind = ENTITIES[event.entity or "customers"]
            stored = self._stored_for(kind, event.entity_id, "update")
            if stored is None:
                raise not_found(kind, event.entity_id)
            self._guard.check_write(kind, "update", stored, self._repository(kind.entity_name())._lookup)
        if not self._outbox:
            raise CRMError("this store was opened without an outbox: pycrm.open(..., outbox=True) to raise events")
        actor = self.actor.id if self.actor is not None else None
        out = attrs.evolve(event, at=utcnow(), actor_id=actor)
        self._transaction()  # the unit of work writes at commit only once it has a transaction: an emit alone too
        self._events.append(out.to_row())
        return out

    def _fire_once(self, marker: RuleFired) -> bool:
        """Write the marker of a rule firing (``pycrm.automation`` rules) into the outbox now, in this unit of
        work, unless the outbox holds its key: True when written (the rule fires, its actions commit with the
        marker), False when it fired for that event before. Past the gate, as the session's own events are:
        an actor's transaction offers no outbox."""
        self._check_open()
        if not isinstance(marker, RuleFired):
            raise ValidationError([FieldError("marker", "type", f"expected a RuleFired, got {type(marker).__name__}")])
        if not self._outbox:
            raise CRMError("this store was opened without an outbox: pycrm.open(..., outbox=True) to run rules")
        actor = self.actor.id if self.actor is not None else None
        row = attrs.evolve(marker, at=utcnow(), actor_id=actor).to_row()
        return self._outbox_tx().outbox_add([row], unique=True) == 1

    def _event(
        self, kind: type[Entity], action: str, entity_id: str | None, info: Mapping[str, Any], *, lasting: bool = False
    ) -> None:
        """An audit entry that is not a row change (merge, unmerge, export). ``lasting``: kept even when the
        session rolls back, as refusals are (an export: the data has left the store whatever happens next)."""
        if self._security.audit:
            actor = self.actor.id if self.actor is not None else None
            (self._denials if lasting else self._audit).append(
                {
                    "at": utcnow(),
                    "actor_id": actor,
                    "action": action,
                    "entity": kind.entity_name(),
                    "entity_id": entity_id,
                    "diff": dict(info),
                }
            )

    def _denied(self, kind: type[Entity], action: str, entity_id: str | None, exc: PermissionDenied) -> None:
        if self._security.audit:
            actor = self.actor.id if self.actor is not None else None
            self._denials.append(
                {
                    "at": utcnow(),
                    "actor_id": actor,
                    "action": "permission_denied",
                    "entity": kind.entity_name(),
                    "entity_id": entity_id,
                    "diff": {"action": action, "message": str(exc)},
                }
            )

    @contextmanager
    def _atomic(self) -> Iterator[None]:
        """``tx.atomic()`` that also drops the journal entries of a block that fails.

        Entries of earlier writes still waiting here stay: should a flush inside the block have written them,
        the transaction undoes that with the block, and they wait again. (Flushing them before the block
        would take the journal's row locks early, ahead of the other rows a session locks.)"""
        earlier = (list(self._changes), list(self._audit), list(self._events))
        flushes = self._flushes
        try:
            with self._transaction().atomic():
                yield
        except BaseException:
            if self._flushes != flushes:  # the flush that wrote the earlier entries was undone too
                self._changes, self._audit, self._events = earlier
            else:
                del self._changes[len(earlier[0]) :]
                del self._audit[len(earlier[1]) :]
                del self._events[len(earlier[2]) :]
            raise

    @contextmanager
    def _bulk(self) -> Iterator[bool]:
        """Inserts and journal writes inside atomic blocks without savepoints of their own, where the store
        saves work that way (:class:`~pycrm.storage.port.BulkMode`): only for a caller whose atomic blocks
        then fail whenever a write in them does, as ``import_file``'s do. Enter it inside the atomic block;
        yields whether the mode is on."""
        tx = self._transaction()
        with tx.bulk() if isinstance(tx, BulkMode) else nullcontext(False) as on:
            yield bool(on)

    def _check_open(self) -> None:
        if self._closed:
            from pycrm.errors import CRMError

            raise CRMError("this session has ended; open a new one with crm.session()")

    def _transaction(self) -> Transaction:
        """The transaction this session's code uses: for an actor other than the system, the gate that puts
        the access policy on every operation (storage/_gate.py), rows and records presented as the actor may
        see them; for the system actor the adapter's own (rows as stored: see :meth:`_present`)."""
        if self._tx is None:
            self._tx = self._store.begin()
            self._gate = None if self._guard.system else gate(self._tx, self._guard)
        return self._gate if self._gate is not None else self._tx

    def _stored_for(self, kind: type[Entity], id: str, action: str) -> Any:
        """The stored row ``id`` that ``action`` would change: for an actor, one within the scope of the
        action or of reading (see ``Gate.get_for``); None when the actor sees neither."""
        tx = self._transaction()
        if self._gate is not None:
            return self._gate._stored.get_for(kind, id, action)
        return tx.get(kind, id)

    def _stored(self, reason: str) -> Any:
        """Rows and records as stored, within the actor's row scope (the gate's ``StoredRows``; the system
        actor's transaction itself): for steps that move or rewrite them as stored and present what they hand
        back themselves (``reason`` says which; a test lists every caller)."""
        assert reason
        tx = self._transaction()
        return self._gate._stored if self._gate is not None else tx

    def _unguarded(self, reason: str) -> Transaction:
        """The adapter's transaction itself, past the gate: only for steps that keep the store consistent
        whatever the actor may see (``reason`` says which; a test lists every caller)."""
        assert reason
        self._transaction()
        assert self._tx is not None
        return self._tx

    def commit(self) -> None:
        if self._tx is not None:
            self._audit += self._denials
            self._denials = []
            self._flush()
            self._tx.commit()
            self._tx = None
        elif self._denials:
            self._write_denials()
        self._changes, self._audit, self._denials, self._events = [], [], [], []
        done, self._post_commit = self._post_commit, []
        for step in done:  # after the commit: removing attachment content nothing references any more
            step()

    def _after_commit(self, step: Callable[[], None]) -> None:
        """Run ``step`` once this unit of work commits (dropped if it rolls back)."""
        self._post_commit.append(step)

    def rollback(self) -> None:
        self._changes, self._audit, self._events = [], [], []
        self._post_commit = []
        if self._tx is not None:
            tx, self._tx = self._tx, None
            tx.rollback()
        if self._denials:
            self._write_denials()

    def _write_denials(self) -> None:
        """Refused actions are recorded even though the unit of work that tried them rolled back."""
        denials, self._denials = self._denials, []
        tx = self._store.begin()
        try:
            tx.journal([], denials, key=self._security.audit_key)
            tx.commit()
        except BaseException:
            tx.rollback()
            raise

    def close(self) -> None:
        self.rollback()
        self._closed = True
