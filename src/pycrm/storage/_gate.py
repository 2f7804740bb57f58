"""The access policy on the storage port: default deny.

A session hands its code (repositories, analytics, the journals, personal data, import/export, archiving)
one transaction. For the system actor that is the adapter's own; for any other actor it is a
:class:`Gate` around it, and the gate is the only thing that talks to the adapter:

* every operation the gate offers has a rule in :data:`RULES`, and an operation without one does not exist
  on the gate -- a caller that reaches for it fails, it does not read around the policy (a test enumerates
  the port's protocols against :data:`RULES`, so a new adapter method cannot slip through);
* reads are **scoped inside the query**: the actor's row scope is ANDed with the caller's conditions, so a
  row outside it is "not there" -- the same answer, in the same words, as a row that does not exist;
* writes are **checked against the stored row under the scope of the action** (update, delete) and the new
  row against the policy (create, update), whatever the caller checked before;
* records that describe entities (merge records, archived entities) are visible only with the entity they
  describe; journals that span every record are for actors that read everything; anything else is refused;
* the **field rules** apply too: rows, merge snapshots and archived records leave the gate as the actor may
  see them (decrypted, hidden fields left out, masked ones masked, no blind index); a condition or a sort on
  a field the actor sees masked or hidden, and a report over one, are refused (ValidationError naming it);
  raw row streams of a kind with such fields are refused; a write that would store a mask over the real
  value, or drop a value the actor cannot see, is refused.

Steps that move or rewrite rows as they are stored (an update reading what it replaces, a merge, an unmerge,
archiving, an erasure) take the gate's :class:`StoredRows` instead -- the same row scope, no presenting --
through :meth:`Session._stored` with a reason; a test pins those calls as it pins the unguarded ones.

Privileged steps that keep the store consistent (a merge re-pointing references the actor cannot see) do
not go through the gate: they call :meth:`Session._unguarded` with a reason, and a test pins those calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from pycrm.domain import (
    ENTITIES,
    Activity,
    Campaign,
    CampaignMember,
    CampaignResponse,
    Customer,
    Entity,
    Interaction,
    Opportunity,
    Order,
    Product,
    Survey,
    Ticket,
    User,
)
from pycrm.domain._codec import from_data, to_data
from pycrm.errors import CRMError, FieldError, NotFound, PermissionDenied, ValidationError
from pycrm.storage._guard import BLIND_PREFIX, Guard, restore_by_rules
from pycrm.storage._where import Condition, OrderBy
from pycrm.storage.port import (
    BulkMode,
    Counters,
    GroupedCounts,
    KeyLocks,
    Reports,
    RFMPushdown,
    RowLocks,
    RowStreams,
    Transaction,
    UniqueKeys,
)

__all__ = [
    "MERGES",
    "REPORT_GROUP_READS",
    "REPORT_READS",
    "RULES",
    "Gate",
    "StoredRows",
    "archive_stream",
    "duplicate_ids_error",
    "gate",
    "gate_operations",
    "not_found",
]

#: Every operation of the port, with the rule the gate applies to it for an actor other than the system.
#: ``scoped``: the actor's row scope is part of the query; ``checked``: the stored row (and the new one) must
#: be within the scope of the action; ``records``: visible with the entity the record describes, archived
#: entities writable with it, merge records written by merges only; ``journal``: the session's own entries
#: (its actor's); ``everything``: only for an actor that reads every record; ``integrity``: counts a delete
#: needs, for ids the actor may delete, no row leaves; ``control``: no data;
#: ``refused``: never for such an actor.
RULES: Mapping[str, str] = {
    # entities
    "get": "scoped",
    "get_for": "scoped",
    "find": "scoped",
    "count": "scoped",
    "count_by": "scoped",
    "iter": "scoped",
    "existing_ids": "scoped",
    "insert": "checked",
    "update": "checked",
    "delete": "checked",
    "referencing": "integrity",
    "lock": "integrity",
    "lock_keys": "control",
    "next_value": "control",  # a named counter (round-robin turns): a number, no record's data
    "unique_keys": "control",
    # unit of work
    "atomic": "control",
    "bulk": "control",
    "commit": "control",
    "rollback": "control",
    # records
    "record_get": "records",
    "record_put": "records",
    "record_delete": "records",
    "record_list": "records",
    "record_streams": "control",
    # journals
    "journal": "journal",
    "journal_load": "refused",
    "changes_since": "everything",
    "changes_last": "everything",
    "audit_list": "scoped",
    "audit_last": "everything",
    "audit_erase": "refused",  # erasure takes it past the gate, for the records it erased (storage/_personal.py)
    # the outbox: a session writes the events of its own checked writes past the gate (Session._flush, a pinned
    # _unguarded call); claiming, settling, listing and erasing events are the dispatcher's and erasure's, which
    # run as the system actor
    "outbox_add": "refused",
    "outbox_claim": "refused",
    "outbox_settle": "refused",
    "outbox_list": "refused",
    "outbox_retry": "refused",
    "outbox_counts": "refused",
    "outbox_erase": "refused",
    # what the time rules of crm.run_due find, over every record: run_due runs as the system actor
    "due": "refused",
    "fired": "refused",
    "fire": "refused",
    # optional capabilities
    "report": "scoped",
    "rfm": "scoped",
    "export_batches": "scoped",
    "id_ranges": "scoped",
    # rows made outside the session, whole-store snapshots and direct file access pass by the row checks
    "row_preparer": "refused",
    "insert_rows": "refused",
    "snapshot": "refused",
    "schema_revision": "refused",
    "source": "refused",
    "database_file": "refused",
    "file_opener": "refused",
}

#: The kind each pushdown report reads: its conditions get that kind's read scope.
REPORT_KINDS: Mapping[str, type[Entity]] = {
    "forecast": Opportunity,
    "funnel": Opportunity,
    "win_rate": Opportunity,
    "sales_cycle": Opportunity,
    "customer_activity": Order,
    "top_customers": Order,
    "purchase_summary": Order,
    "sales_series": Order,
    "product_sales": Order,
    # basket analysis: the lines' (order_id, product_id) of the orders the actor may read
    "frequent_itemsets": Order,
    "also_bought": Order,
    "ticket_summary": Ticket,
    "service_times": Ticket,
    "satisfaction": Survey,
    "sla": Ticket,
    "activity_counts": Activity,
    "campaign_kpis": Campaign,
    # lead scoring's engagement counts: (customer_id, time) of the rows the actor may read
    "interaction_times": Interaction,
    "ticket_times": Ticket,
    "order_times": Order,
    # lead scoring's deals and customers: the columns its features read, of the rows the actor may read
    "scoring_deals": Opportunity,
    "scoring_customers": Customer,
}

#: Fields a report reads beyond :data:`REPORT_READS` of its kind: masked or hidden for the actor, the report is
#: refused (a lead-scoring customer's kind and status, an engagement count's customer and time).
REPORT_FIELDS: Mapping[str, tuple[str, ...]] = {
    "scoring_customers": ("kind", "category", "country", "tags", "status"),
    "interaction_times": ("customer_id", "occurred_at"),
    "ticket_times": ("customer_id", "created_at"),
    "order_times": ("customer_id", "occurred_at"),
}

#: Reports that also read one field of a related kind (the satisfaction report's agent teams, customer
#: segments and ticket categories): the argument naming it, when the caller gives one, becomes that kind's
#: read scope, and the field must not be masked or hidden for the actor. Without the read right on the kind:
#: PermissionDenied.
REPORT_JOINS: Mapping[str, Mapping[str, tuple[type[Entity], str]]] = {
    "forecast": {"regions": (Customer, "country")},
    "satisfaction": {"teams": (User, "team_id"), "segments": (Customer, "category"), "categories": (Ticket, "category")},
    "sales_series": {"regions": (Customer, "country"), "owners": (Customer, "owner_id")},
    # the campaign KPIs read the members and responses, orders and deals the actor may read
    "campaign_kpis": {
        "members": (CampaignMember, "customer_id"),
        "responses": (CampaignResponse, "kind"),
        "orders": (Order, "amount"),
        "deals": (Opportunity, "amount"),
    },
    "product_sales": {"categories": (Product, "category"), "regions": (Customer, "country"), "owners": (Customer, "owner_id")},
}

#: The fields the reports over each kind read. A report over a field the actor sees masked or hidden is
#: refused, as a filter on it is: sums and counts would give the values back (one order's revenue *is* its
#: amount).
REPORT_READS: Mapping[type[Entity], tuple[str, ...]] = {
    Opportunity: (
        *("customer_id", "amount", "stage", "expected_close", "owner_id", "pipeline"),
        *("probability_override", "closed_at", "created_at", "stage_history"),
    ),
    Order: ("customer_id", "occurred_at", "amount", "lines"),
    Customer: ("category", "tags", "country"),  # an SLA target on the customer's segment, tier or country
    User: ("team_id",),  # the agents' teams of the SLA report
    Ticket: (
        *("customer_id", "priority", "status", "assignee_id", "first_response_at", "resolved_at", "closed_at"),
        *("created_at", "status_history"),
    ),
    Survey: ("customer_id", "kind", "sent_at", "score", "user_id"),
    Activity: ("customer_id", "kind", "occurred_at"),
    Campaign: ("name", "channel", "budget", "spend", "window_days", "attribution"),
    CampaignMember: ("campaign_id", "customer_id"),
    CampaignResponse: ("member_id", "campaign_id", "customer_id", "kind", "at"),
}
#: The groupings of a report that read the field of the same name (checked as :data:`REPORT_READS` are, when
#: the report groups by them): a ticket summary by category reads the categories.
REPORT_GROUP_READS: Mapping[str, frozenset[str]] = {"ticket_summary": frozenset({"category", "channel"})}

#: Record streams that describe one entity each: ``merged_<repository>`` (a merged-away id -> its survivor)
#: and ``archive_<repository>`` (an archived entity as it was); ``merges`` holds merge records.
MERGES = "merges"
_MERGED = "merged_"
_ARCHIVE = "archive_"


def archive_stream(repository: str) -> str:
    """The stream of archived ``repository`` entities (the name ``pycrm.io.archive`` writes, key rotation and
    erasure rewrite)."""
    return _ARCHIVE + repository


def not_found(kind: type[Entity], id: Any) -> NotFound:
    """The one answer for a record that does not exist *or* is outside the actor's scope."""
    return NotFound(f"no {kind.__name__} with id {id!r}")


def duplicate_ids_error(kind: type[Entity], positions: Mapping[str, int], taken: Iterable[str]) -> ValidationError:
    """The one answer for new ids that are taken, whoever can see the records holding them."""
    many = len(positions) > 1
    return ValidationError(
        [
            FieldError(f"[{positions[t]}].id" if many else "id", "duplicate", f"a {kind.__name__} with id {t!r} exists")
            for t in sorted(taken)
        ]
    )


class Gate:
    """One session's transaction as its actor may use it (see the module docstring)."""

    def __init__(self, tx: Transaction, guard: Guard):
        self._tx = tx
        self._guard = guard
        self._stored = StoredRows(self)

    # ---------------------------------------------------------------- helpers
    def _scope(self, kind: type[Entity], action: str) -> list[Condition]:
        return self._guard.scope(kind, action)

    def _deny(self, kind: type[Entity] | None, action: str, what: str) -> PermissionDenied:
        exc = PermissionDenied(f"{self._guard.policy._who()} may not {what}")
        self._guard.denied(kind or Customer, action, None, exc)
        return exc

    def _lookup(self, repository: str, id: str) -> Entity | None:
        """A related row as stored, for the policy to decide a scope that follows a parent (nothing of it
        leaves the gate)."""
        kind = ENTITIES.get(repository)
        return None if kind is None else self._tx.get(kind, id)

    def _within(self, kind: type[Entity], id: str, action: str) -> Entity | None:
        """The stored row ``id`` if it is within the actor's scope for ``action``."""
        rows = self._tx.find(kind, [Condition("id", "eq", id, "text"), *self._scope(kind, action)], [], 1, 0)
        return rows[0] if rows else None

    def _check_everything(self, what: str) -> None:
        if not self._guard.reads_everything():
            raise self._deny(None, "read", f"{what}: it needs read access to every record")

    # ---------------------------------------------------------------- field rules
    def _shown(self, kind: type[Entity], row: Any) -> Any:
        """A stored row as the actor may see it (decrypted, hidden and masked fields applied)."""
        guard = self._guard
        return guard.present(kind, row) if row is not None and guard.needs_presenting(kind) else row

    def _filters(self, kind: type[Entity], where: Iterable[Condition], order_by: Iterable[OrderBy] = ()) -> None:
        """ValidationError naming a condition or sort field the actor sees masked or hidden (a condition on an
        encrypted value names it by its blind index: the field it indexes is the one checked)."""
        guard = self._guard
        if not guard.rules(kind):
            return
        fields = [_indexed_field(c.field) for c in where]
        if fields:
            guard.check_visible_fields(kind, fields, "filter")
        sorts = [o.field for o in order_by]
        if sorts:
            guard.check_visible_fields(kind, sorts, "sort")

    def _reads(self, kind: type[Entity], where: Iterable[Condition]) -> None:
        """A report over ``kind`` reads :data:`REPORT_READS`: none may be masked or hidden, nor filtered on."""
        self._guard.check_visible_fields(kind, REPORT_READS.get(kind, ()), "report on")
        self._filters(kind, where)

    def _unmasked(self, kind: type[Entity], row: Entity, stored: Entity | None) -> None:
        """Refuse a row that holds a mask the actor was shown, or (an update) drops or masks over a value of
        the stored row the actor sees hidden or masked: what reaches the adapter is a real value."""
        guard = self._guard
        guard.check_new(row)
        rules = guard.rules(kind)
        if stored is None or not rules:
            return
        sealed = bool(guard.sealed_fields(kind))
        plain_row, plain_stored = (guard.unseal(kind, row), guard.unseal(kind, stored)) if sealed else (row, stored)
        restored, now = to_data(restore_by_rules(plain_row, plain_stored, rules)), to_data(plain_row)
        if restored != now:
            bad = sorted(f for f, v in restored.items() if now.get(f) != v)
            what = "would store what this actor sees masked or hidden, not the real value"
            raise ValidationError([FieldError(f, "masked", f"{f!r} {what}") for f in bad])

    # ---------------------------------------------------------------- entities: scoped reads
    def get(self, kind: type[Entity], id: str) -> Entity | None:
        return self._shown(kind, self._stored.get(kind, id))  # type: ignore[no-any-return]

    def get_for(self, kind: type[Entity], id: str, action: str) -> Entity | None:
        """The row ``id`` to ``action`` (update, delete, merge): within the scope of the action, or else within
        the read scope (the policy then refuses it by name); None when the actor sees neither."""
        return self._shown(kind, self._stored.get_for(kind, id, action))  # type: ignore[no-any-return]

    def find(
        self, kind: type[Entity], where: list[Condition], order_by: list[OrderBy], limit: int | None, offset: int
    ) -> list[Entity]:
        rows = self._stored.find(kind, where, order_by, limit, offset)
        return [self._shown(kind, r) for r in rows] if self._guard.needs_presenting(kind) else rows

    def count(self, kind: type[Entity], where: list[Condition]) -> int:
        self._filters(kind, where)
        return self._tx.count(kind, [*where, *self._scope(kind, "read")])

    def iter(self, kind: type[Entity], where: list[Condition], batch_size: int) -> Iterator[Entity]:
        rows = self._stored.iter(kind, where, batch_size)
        return (self._shown(kind, r) for r in rows) if self._guard.needs_presenting(kind) else rows

    def existing_ids(self, kind: type[Entity], ids: Iterable[str]) -> set[str]:
        there: set[str] = self._tx.existing_ids(kind, ids)
        if not there or self._guard.policy.allowed(kind.entity_name(), "read") is None:
            return there  # an actor that reads none of ``kind`` (may only create, say) is told what a write needs
        scope = self._scope(kind, "read")
        if not scope:
            return there
        rows = self._tx.find(kind, [Condition("id", "in", tuple(sorted(there)), "text"), *scope], [], None, 0)
        return {str(r.id) for r in rows}

    def referencing(self, kind: type[Entity], field: str, ids: Iterable[str]) -> int:
        """How many ``kind`` rows point at ``ids`` through the reference ``field``: what a delete of those ids
        needs, so only for ids the actor may delete (no count of another owner's rows, by any field)."""
        from pycrm.storage._repository import REFERENCES  # the repositories import the gate

        parent = REFERENCES.get((kind, field))
        if parent is None:
            raise self._deny(kind, "read", f"count {kind.entity_name()} by {field!r}")
        wanted = tuple(sorted(set(ids)))
        scope = self._scope(parent, "delete")
        if scope and wanted:
            wanted = tuple(str(r.id) for r in self._tx.find(parent, [Condition("id", "in", wanted, "text"), *scope], [], None, 0))
        return self._tx.referencing(kind, field, wanted) if wanted else 0

    # ---------------------------------------------------------------- entities: checked writes
    def insert(self, kind: type[Entity], entities: Sequence[Entity]) -> None:
        """New rows, in their stored form (sealed where encrypted), each within the actor's scope to create."""
        for e in entities:
            self._guard.check_write(kind, "create", e, self._lookup)
            self._unmasked(kind, e, None)
        positions = {str(e.id): i for i, e in enumerate(entities)}
        taken = self._tx.existing_ids(kind, positions)  # records the actor cannot see count too
        if taken:
            raise duplicate_ids_error(kind, positions, taken)
        self._tx.insert(kind, entities)

    def update(self, kind: type[Entity], entity: Entity, expected_version: int) -> bool:
        """A changed row in its stored form: the stored one must be within the scope of the update, and the
        new one neither hold a mask nor drop a value the actor cannot see."""
        stored = self._held(kind, str(entity.id), "update")
        self._guard.check_write(kind, "update", entity, self._lookup)
        self._unmasked(kind, entity, stored)
        return self._tx.update(kind, entity, expected_version)

    def delete(self, kind: type[Entity], id: str) -> bool:
        self._held(kind, id, "delete")
        return self._tx.delete(kind, id)

    def _held(self, kind: type[Entity], id: str, action: str) -> Entity:
        """The stored row ``id`` within the scope of ``action``; NotFound when the actor cannot read it either,
        PermissionDenied (recorded) when it can."""
        stored = self._within(kind, id, action)
        if stored is None:
            if self._stored.get_for(kind, id, action) is None:
                raise not_found(kind, id)
            raise self._deny(kind, action, f"{action} {kind.entity_name()} {id!r}")
        return stored

    # ---------------------------------------------------------------- unit of work
    def atomic(self) -> AbstractContextManager[None]:
        return self._tx.atomic()

    def commit(self) -> None:
        self._tx.commit()

    def rollback(self) -> None:
        self._tx.rollback()

    # ---------------------------------------------------------------- records
    def _subject(self, stream: str, key: str, data: Any) -> tuple[type[Entity], str | Entity | None] | None:
        """What a record describes: (kind, the survivor's id) for a merge record, (kind, the entity as it was
        or None when unreadable) for an archived one; None: not a known stream or not a record of it."""
        if stream == MERGES or stream.startswith(_MERGED):
            if not isinstance(data, Mapping):
                return None
            kind = ENTITIES.get(str(data.get("kind")) if stream == MERGES else stream[len(_MERGED) :])
            survivor = data.get("survivor_id")
            return (kind, survivor) if kind is not None and isinstance(survivor, str) else None
        if stream.startswith(_ARCHIVE):
            kind = ENTITIES.get(stream[len(_ARCHIVE) :])
            if kind is None or not isinstance(data, Mapping):
                return None
            try:
                return kind, from_data(kind, {k: v for k, v in data.items() if not k.startswith("_")})
            except CRMError:
                return kind, None
        return None

    def _allowed(self, stream: str, key: str, data: Any, action: str) -> bool:
        subject = self._subject(stream, key, data)
        if subject is None:
            raise self._deny(None, action, f"use the records stream {stream!r}")
        kind, entity = subject
        if entity is None:
            return False
        if not isinstance(entity, str):  # an archived entity: checked as it was, its parents as they are
            return self._guard.policy.visible(entity, action, lookup=self._lookup)
        if self._guard.policy.allowed(kind.entity_name(), action) is None:
            return False  # about a kind the actor may not read at all: not there (a list of merges spans kinds)
        return self._within(kind, entity, action) is not None  # a merge record: with its survivor

    def _known(self, stream: str) -> None:
        if stream != MERGES and not stream.startswith((_MERGED, _ARCHIVE)):
            raise self._deny(None, "read", f"use the records stream {stream!r}")

    def _shown_record(self, stream: str, data: Any) -> Any:
        """A record as the actor may see it: a merge record's snapshots and an archived entity presented as
        the rows they were (masked, without blind indexes); a merged-away pointer names ids only."""
        present = self._guard.present_data
        if stream == MERGES and isinstance(data, Mapping):
            kind = ENTITIES[str(data.get("kind"))]  # known: _allowed read it
            before = data.get("before")
            return {
                **data,
                "before": {k: present(kind, v) for k, v in before.items()} if isinstance(before, Mapping) else before,
                "after": present(kind, data.get("after")),
            }
        if stream.startswith(_ARCHIVE):
            return present(ENTITIES[stream[len(_ARCHIVE) :]], data)
        return data

    def record_get(self, stream: str, key: str) -> Any | None:
        data = self._stored.record_get(stream, key)
        return None if data is None else self._shown_record(stream, data)

    def record_list(self, stream: str) -> list[tuple[str, Any]]:
        return [(k, self._shown_record(stream, d)) for k, d in self._stored.record_list(stream)]

    def _merges_only(self, stream: str, key: str, what: str) -> None:
        """Merge records name the records a merge re-pointed, and an unmerge points those back past the gate:
        only a merge or an unmerge writes them (after its own checks, see ``Repository.merge``), never a
        caller, or a planted one would move records the actor cannot change."""
        if not stream.startswith(_ARCHIVE):
            raise self._deny(None, "merge", f"{what} the record {key!r} of {stream!r}: merges write their records")

    def record_put(self, stream: str, key: str, data: Any) -> None:
        self._known(stream)
        self._merges_only(stream, key, "write")
        if not self._allowed(stream, key, data, "delete"):
            raise self._deny(None, "delete", f"write the record {key!r} of {stream!r}")
        self._tx.record_put(stream, key, data)

    def record_delete(self, stream: str, key: str) -> bool:
        self._known(stream)
        self._merges_only(stream, key, "delete")
        data = self._tx.record_get(stream, key)
        if data is None:
            return False
        if not self._allowed(stream, key, data, "create"):
            raise self._deny(None, "create", f"delete the record {key!r} of {stream!r}")
        return self._tx.record_delete(stream, key)

    def record_streams(self) -> list[str]:
        return self._tx.record_streams()

    # ---------------------------------------------------------------- journals
    def journal(self, changes: Sequence[dict[str, Any]], audit: Sequence[dict[str, Any]], *, key: bytes | None = None) -> None:
        """The session's own entries: none may name another actor (an admin deleting a record, say)."""
        me = self._guard.actor.id if self._guard.actor is not None else None
        if any(d.get("actor_id") != me for d in (*changes, *audit)):
            raise self._deny(None, "create", "write journal entries in another actor's name")
        self._tx.journal(changes, audit, key=key)

    def changes_since(self, cursor: int, limit: int) -> list[dict[str, Any]]:
        self._check_everything("read the change feed")
        return self._tx.changes_since(cursor, limit)

    def changes_last(self) -> int:
        self._check_everything("read the change feed")
        return self._tx.changes_last()

    def audit_last(self) -> dict[str, Any] | None:
        self._check_everything("read the head of the audit trail")
        return self._tx.audit_last()

    def audit_list(self, after: int, limit: int | None, entity_id: str | None) -> list[dict[str, Any]]:
        """Audit entries about records the actor can read, their diffs masked as the records are.

        Reads the trail in pages until ``limit`` entries qualify (or it ends), so the answer has the size
        the caller asked for; each page is filtered with one scoped query per kind."""
        out: list[dict[str, Any]] = []
        page = 1000 if limit is None else max(limit, 100)
        while limit is None or len(out) < limit:
            rows = self._tx.audit_list(after, page, entity_id)
            out += self._audit_visible(rows)
            if len(rows) < page:
                break
            after = rows[-1]["seq"]
        return out if limit is None else out[:limit]

    def _audit_visible(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        wanted: dict[type[Entity], set[str]] = {}
        for r in rows:
            kind = ENTITIES.get(str(r.get("entity")))
            if kind is not None and isinstance(r.get("entity_id"), str):
                wanted.setdefault(kind, set()).add(r["entity_id"])
        readable = self._guard.policy.allowed  # a kind the actor reads none of: none of its entries
        seen = {kind: self.existing_ids(kind, ids) for kind, ids in wanted.items() if readable(kind.entity_name(), "read")}
        out = []
        for r in rows:
            kind = ENTITIES.get(str(r.get("entity")))
            if kind is not None and r.get("entity_id") in seen.get(kind, ()):
                out.append({**r, "diff": self._guard.mask_diff(kind, r.get("diff"))})
        return out


class StoredRows:
    """The gate's rows as stored: the same row scope, no presenting (encrypted values stay sealed, masked
    and hidden fields are there). For steps that move or rewrite rows as stored -- an update reading what it
    replaces, a merge, an unmerge, archiving, an erasure -- which present what they hand back themselves.
    Reached through ``Session._stored(reason)`` only; a test pins every such call."""

    def __init__(self, gate: Gate):
        self._gate = gate

    def get(self, kind: type[Entity], id: str) -> Entity | None:
        return self._gate._within(kind, id, "read")

    def get_for(self, kind: type[Entity], id: str, action: str) -> Entity | None:
        """The stored row ``id`` to ``action``: within the scope of the action, or else within the read scope
        (the policy then refuses it by name); None when the actor sees neither."""
        g = self._gate
        policy = g._guard.policy
        name = kind.entity_name()
        if policy.allowed(name, action) is not None:
            found = g._within(kind, id, action)
            if found is not None:
                return found
        elif policy.allowed(name, "read") is None:
            raise g._deny(kind, action, f"{action} {name}")
        return g._within(kind, id, "read") if policy.allowed(name, "read") is not None else None

    def find(
        self, kind: type[Entity], where: list[Condition], order_by: list[OrderBy], limit: int | None, offset: int
    ) -> list[Entity]:
        g = self._gate
        g._filters(kind, where, order_by)
        return g._tx.find(kind, [*where, *g._scope(kind, "read")], order_by, limit, offset)

    def iter(self, kind: type[Entity], where: list[Condition], batch_size: int) -> Iterator[Entity]:
        g = self._gate
        g._filters(kind, where)
        return g._tx.iter(kind, [*where, *g._scope(kind, "read")], batch_size)

    def update(self, kind: type[Entity], entity: Entity, expected_version: int) -> bool:
        """An update that rewrites what the actor may not see too (an erasure anonymizes a hidden field):
        the row scope and the policy as for :meth:`Gate.update`, no check of the field rules."""
        g = self._gate
        g._held(kind, str(entity.id), "update")
        g._guard.check_write(kind, "update", entity, g._lookup)
        return g._tx.update(kind, entity, expected_version)

    def record_get(self, stream: str, key: str) -> Any | None:
        g = self._gate
        g._known(stream)
        data = g._tx.record_get(stream, key)
        return data if data is not None and g._allowed(stream, key, data, "read") else None

    def record_list(self, stream: str) -> list[tuple[str, Any]]:
        g = self._gate
        g._known(stream)
        return [(k, d) for k, d in g._tx.record_list(stream) if g._allowed(stream, k, d, "read")]


def _indexed_field(field: str) -> str:
    """The field a condition is about: ``custom.<blind prefix>key`` (an encrypted value's index) is ``custom.key``."""
    return "custom." + field[len(_BLIND) :] if field.startswith(_BLIND) else field


_BLIND = "custom." + BLIND_PREFIX


class _Reports(Gate):
    def report(self, name: str, **kw: Any) -> Any:
        kind = REPORT_KINDS.get(name)
        if kind is None:
            raise self._deny(None, "read", f"run the report {name!r} in the store")
        self._reads(kind, kw.get("conditions", ()))
        if name in REPORT_FIELDS:
            self._guard.check_visible_fields(kind, REPORT_FIELDS[name], "report on")
        grouped = [g for g in kw.get("groups", ()) if g in REPORT_GROUP_READS.get(name, ())]
        if grouped:
            self._guard.check_visible_fields(kind, grouped, "report on")
        kw["conditions"] = [*kw.get("conditions", ()), *self._scope(kind, "read")]
        for arg, (joined, field) in REPORT_JOINS.get(name, {}).items():
            if kw.get(arg) is not None:  # whatever the caller gave: the rows of the joined kind the actor may read
                self._guard.check_visible_fields(joined, (field,), "report on")
                kw[arg] = self._scope(joined, "read")
        if kw.get("team_scope") is not None:  # the SLA report's join to the agents' users: their read scope too
            kw["team_scope"] = [*kw["team_scope"], *self._scope(User, "read")]
        assert isinstance(self._tx, Reports)
        return self._tx.report(name, **kw)


class _Rfm(Gate):
    def rfm(self, cutoff: Any, ref_date: Any, bins: int, where: Sequence[Condition] = ()) -> Any:
        self._reads(Order, where)
        assert isinstance(self._tx, RFMPushdown)
        return self._tx.rfm(cutoff, ref_date, bins, [*where, *self._scope(Order, "read")])


class _RowStreams(Gate):
    def _raw(self, kind: type[Entity], conditions: Iterable[Condition]) -> None:
        """Raw rows leave as stored: only of a kind with nothing to decrypt or mask for the actor."""
        if self._guard.needs_presenting(kind):
            raise self._deny(kind, "read", f"read raw {kind.entity_name()} rows: some of their fields are encrypted or masked")
        self._filters(kind, conditions)

    def export_batches(self, kind: type[Entity], conditions: list[Condition], fields: Sequence[str], **kw: Any) -> Any:
        self._raw(kind, conditions)
        assert isinstance(self._tx, RowStreams)
        return self._tx.export_batches(kind, [*conditions, *self._scope(kind, "read")], fields, **kw)

    def id_ranges(self, kind: type[Entity], conditions: list[Condition], size: int, total: int) -> list[str | None]:
        self._filters(kind, conditions)
        assert isinstance(self._tx, RowStreams)
        return self._tx.id_ranges(kind, [*conditions, *self._scope(kind, "read")], size, total)


class _RowLocks(Gate):
    def lock(self, kind: type[Entity], ids: Sequence[str]) -> None:
        assert isinstance(self._tx, RowLocks)
        self._tx.lock(kind, ids)


class _KeyLocks(Gate):
    def lock_keys(self, kind: type[Entity], fields: Sequence[str]) -> None:
        assert isinstance(self._tx, KeyLocks)
        self._tx.lock_keys(kind, fields)


class _Counters(Gate):
    def next_value(self, name: str) -> int:
        assert isinstance(self._tx, Counters)
        return self._tx.next_value(name)


class _GroupedCounts(Gate):
    def count_by(self, kind: type[Entity], where: list[Condition], field: str, limit: int) -> dict[str | None, int]:
        """Counts per value of ``field`` in the actor's read scope; the field must be one the actor sees (the
        counts would give a masked one's values back), as the conditions' fields must."""
        self._filters(kind, where)
        self._guard.check_visible_fields(kind, [field], "count by")
        assert isinstance(self._tx, GroupedCounts)
        return self._tx.count_by(kind, [*where, *self._scope(kind, "read")], field, limit)


class _UniqueKeys(Gate):
    def unique_keys(self, kind: type[Entity]) -> frozenset[str]:
        assert isinstance(self._tx, UniqueKeys)
        return self._tx.unique_keys(kind)


class _Bulk(Gate):
    def bulk(self) -> AbstractContextManager[Any]:
        assert isinstance(self._tx, BulkMode)
        return self._tx.bulk()


#: The optional capabilities the gate passes on (with their rules) when the adapter has them.
_OPTIONAL: Mapping[type, type[Gate]] = {
    Reports: _Reports,
    RFMPushdown: _Rfm,
    BulkMode: _Bulk,
    RowStreams: _RowStreams,
    RowLocks: _RowLocks,
    KeyLocks: _KeyLocks,
    UniqueKeys: _UniqueKeys,
    Counters: _Counters,
    GroupedCounts: _GroupedCounts,
}
_CLASSES: dict[frozenset[str], type[Gate]] = {}


def gate(tx: Transaction, guard: Guard) -> Gate:
    """The gate around ``tx``, offering each optional capability exactly when ``tx`` does."""
    has = frozenset(p.__name__ for p in _OPTIONAL if isinstance(tx, p))
    cls = _CLASSES.get(has)
    if cls is None:
        bases = tuple(g for p, g in _OPTIONAL.items() if p.__name__ in has) or (Gate,)
        cls = _CLASSES[has] = type("Gate", bases, {"__doc__": Gate.__doc__})
    return cls(tx, guard)


def gate_operations() -> frozenset[str]:
    """Every operation some gate offers (for the test that holds them to :data:`RULES`)."""
    names: set[str] = set()
    for cls in (Gate, *_OPTIONAL.values()):
        names.update(n for n in vars(cls) if not n.startswith("_"))
    return frozenset(names)
