"""The storage port: what an adapter is. Read this file first.

An adapter is a :class:`Store` that begins :class:`Transaction` objects. A transaction does the primitive
operations on stored entities, records and the journal; the shared
:class:`~pycrm.storage.Repository` and :class:`~pycrm.storage.Session` do everything else (validation,
ids, timestamps, versions, reference checks, the actor's policy), so every adapter behaves the same by
construction. Conditions (:class:`Condition`, :class:`OrderBy`, re-exported here) arrive parsed and
normalized by :mod:`pycrm.storage._where`; entities passed in are valid, entities returned are trusted
copies. :mod:`pycrm.storage.evaluate` says what a condition means for an entity in Python.

Beyond the required protocols an adapter may offer *capabilities*: named protocols below, each a few
plain methods. Callers find them with ``isinstance(tx, Capability)`` (they are ``runtime_checkable``),
never by probing for private names, and a caller that finds one missing falls back to the plain
protocol (reports computed from a stream of entities, one insert per entity, ...) or refuses with a
:class:`~pycrm.errors.CRMError`. Capabilities are methods, never attributes to read or objects to reach
into, so a wrapper around a transaction (such as the guard a session puts between an actor and the
store) offers exactly the capabilities it forwards.

Capabilities of a transaction:

==========================  =====================================================================
:class:`Reports`            analytics reports computed in the database (``s.analytics.forecast``...)
:class:`RFMPushdown`        RFM figures computed in the database (``s.analytics.rfm``)
:class:`PreparedWrites`     new rows made outside the session (import workers), inserted as they are
:class:`BulkMode`           writes in atomic blocks without savepoints of their own (``import_file``)
:class:`RowStreams`         export rows read straight from stored columns, without building entities
:class:`RowLocks`           rows held to the end of the transaction (a merge)
:class:`UniqueKeys`         upsert keys held unique in the store (``custom.external_id``, declared keys)
:class:`KeyLocks`           the lock concurrent upserts by one key take before they look records up
:class:`Counters`           named counters incremented atomically (a round robin's persistent turns)
:class:`GroupedCounts`      counts per value of a field in one query (open items per person)
:class:`Snapshots`          reads that see one point in time, for backups (``pycrm.io.backup``)
:class:`FileBacked`         a database file other processes may open and read (parallel exports)
:class:`Outbox`             domain events written with the changes, claimed and settled by dispatchers
:class:`DueQueries`         what the time rules of ``crm.run_due`` find, one query per rule
==========================  =====================================================================

Capabilities of a store: :class:`ExclusiveHold` (an import that holds the database file),
:class:`FileCopies` (a consistent copy of the database file, ``backup(..., method="sqlite")``),
:class:`DriverErrors` (the database library's own errors, for command-line tools to report),
:class:`DeclaredKeys` (custom fields an opener declares unique), :class:`CustomIndexes` (custom fields an opener
declares ``indexed=True``).

The memory adapter (:mod:`pycrm.storage.memory`) and the SQL adapter (:mod:`pycrm.storage.sql`) are
the two implementations; only they know how they store things.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

import attrs

from pycrm.domain import Entity
from pycrm.storage._where import Condition, OrderBy

__all__ = [
    "BulkMode",
    "Condition",
    "Counters",
    "DeclaredKeys",
    "DriverErrors",
    "DueQueries",
    "ExclusiveHold",
    "FileBacked",
    "FileCopies",
    "FlatValue",
    "GroupedCounts",
    "KeyLocks",
    "OrderBy",
    "Outbox",
    "PreparedRows",
    "PreparedWrites",
    "RFMPushdown",
    "Reports",
    "RowLocks",
    "RowPreparer",
    "RowStreams",
    "Snapshots",
    "Store",
    "Transaction",
    "UniqueKeys",
]


# ---------------------------------------------------------------------------------------------------
# what every adapter implements
# ---------------------------------------------------------------------------------------------------


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

    # Records: small JSON documents by (stream, key) that are not entities (merge records, archives, ...),
    # written and read inside the same transaction as the entities.
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

    def audit_erase(self, records: Mapping[str, Sequence[str]], erasure_id: str, *, key: bytes | None = None) -> None:
        """Erase the diffs of the audit entries about ``records`` (repository name -> ids) stored so far in this
        transaction's view (its own journal included): each becomes ``erasure_marker(erasure_id)``, digest and
        hash kept (an entry without a digest gets ``legacy_seal``, under ``key``); ``erase`` entries and
        entries already erased stay as they are. Applied in journal order, at commit at the latest."""

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


@runtime_checkable
class Store(Protocol):
    """An opened storage backend (``runtime_checkable``: public functions taking a store check it)."""

    def begin(self) -> Transaction: ...

    def close(self) -> None: ...

    @property
    def url(self) -> str: ...


# ---------------------------------------------------------------------------------------------------
# optional capabilities of a transaction
# ---------------------------------------------------------------------------------------------------


@runtime_checkable
class Reports(Protocol):
    """Analytics reports computed where the data lives (``s.analytics``, see storage/_analytics.py).

    ``report(name, conditions=..., **arguments)`` computes the report ``name`` (``forecast``, ``funnel``,
    ``win_rate``, ...) over the rows matching ``conditions`` (the caller's filter and the actor's scope)
    and returns exactly what the pure function of :mod:`pycrm.analytics` returns for the same rows, or
    None when the data needs the pure function (which then computes or raises). Without this capability
    every report runs the pure function over a stream of entities.
    """

    def report(self, name: str, **kw: Any) -> Any: ...


@runtime_checkable
class RFMPushdown(Protocol):
    """RFM figures computed in the database (``s.analytics.rfm``).

    ``rfm(cutoff, ref_date, bins, where)`` gives the currencies of the orders on or before ``cutoff``
    matching ``where`` and, by customer id, rows starting ``(customer_id, recency_days, frequency,
    monetary: Decimal, r, f, m)``. Without it the pure ``pycrm.analytics.rfm`` reads the orders.
    """

    def rfm(
        self, cutoff: dt.datetime, ref_date: dt.date, bins: int, where: Sequence[Condition] = ()
    ) -> tuple[set[str], list[tuple[Any, ...]]]: ...


@attrs.frozen
class PreparedRows:
    """New rows of one kind made for one adapter (see :class:`PreparedWrites`): ``ids``, table ``rows`` and
    ``diffs`` (the audit diffs' canonical JSON, None when not made) one per row; child-table rows by
    field; the values of the reference fields (such as ``customer_id``) one per row, by field. The rows
    themselves are the adapter's business: only the transaction that made the preparer reads them."""

    kind: str
    dialect: str
    ids: list[str]
    rows: list[tuple[Any, ...]]
    children: dict[str, list[tuple[Any, ...]]]
    references: dict[str, list[Any]]
    diffs: list[str] | None


class RowPreparer(Protocol):
    """Makes :class:`PreparedRows` from validated new entities; picklable, so import workers call it.

    ``preparer(kind, entities, at, audit)`` stamps the entities as ``add_many`` would (an id where
    missing, version 1, created and updated ``at`` unless created before) and makes their rows, with
    audit diffs if ``audit``. ``dialect`` names what the rows are made for.
    """

    @property
    def dialect(self) -> str: ...

    def __call__(self, kind: type[Entity], entities: Sequence[Entity], at: dt.datetime, audit: bool) -> PreparedRows: ...


@runtime_checkable
class PreparedWrites(Protocol):
    """New rows made outside the session, inserted as they are (the bulk path of ``import_file``).

    An import's worker processes validate entities; with a preparer from :meth:`row_preparer` they also
    make the table rows (and audit diffs), and the writing process only inserts them with
    :meth:`insert_rows`. The session takes prepared rows only where it checks nothing row by row (the
    system actor, no encrypted fields: ``Session._prepared_dialect``); otherwise entities are inserted.
    """

    def row_preparer(self) -> RowPreparer:
        """A picklable :class:`RowPreparer` making rows this transaction's :meth:`insert_rows` takes."""

    def insert_rows(self, kind: type[Entity], rows: list[tuple[Any, ...]], children: dict[str, list[tuple[Any, ...]]]) -> None:
        """Insert rows made by :meth:`row_preparer` (references and ids already checked); all or nothing."""


@runtime_checkable
class BulkMode(Protocol):
    """Inserts and journal writes inside atomic blocks without savepoints of their own (SQLite).

    Only for a caller whose atomic blocks fail whenever a write in them does, as ``import_file``'s do:
    inside ``with tx.bulk():`` a failed insert takes the transaction back to where the innermost atomic
    block began. Yields whether the mode is on (it changes nothing where the store needs savepoints).
    """

    def bulk(self) -> AbstractContextManager[bool]: ...


#: The flat form of one field value as ``to_data`` gives it (``pycrm.io``'s CSV / JSON Lines cells):
#: ``flat(value, json_native)``.
FlatValue = Callable[[Any, bool], Any]


@runtime_checkable
class RowStreams(Protocol):
    """Export rows read straight from stored columns, without building entities (the SQL adapter).

    Used by ``export_file`` only where the session lets stored rows leave as they are (no masking, no
    encrypted fields); the output is the one the entity path writes, byte for byte. Conditions are
    applied exactly as by :meth:`Transaction.iter`.
    """

    def export_batches(
        self,
        kind: type[Entity],
        conditions: list[Condition],
        fields: Sequence[str],
        *,
        flat: FlatValue,
        json_native: bool = False,
        batch_size: int = 5000,
        after: str | None = None,
        upto: str | None = None,
    ) -> Iterator[list[Sequence[Any]]]:
        """Batches of the matching records in id order, as columns: the flat values of each of ``fields``
        (``flat`` converts what the store keeps in no simpler form). ``after`` / ``upto``: only ids
        greater than ``after`` / at most ``upto``."""

    def id_ranges(self, kind: type[Entity], conditions: list[Condition], size: int, total: int) -> list[str | None]:
        """Split the ``total`` matching records (as counted in this transaction) into runs of ``size`` in
        id order: the last id of each run, None for the last one. Run ``i`` is ``(ends[i - 1], ends[i]]``."""


@runtime_checkable
class RowLocks(Protocol):
    """Rows held to the end of the transaction, so a write that reads several rows before changing them (a
    merge) neither loses a concurrent update nor starves behind a stream of them (the SQL adapter)."""

    def lock(self, kind: type[Entity], ids: Sequence[str]) -> None:
        """Hold the rows ``ids`` of ``kind`` that exist until the transaction ends, taken in id order (so two
        lockers never wait for each other in a circle); waits at most the store's lock timeout, then raises
        ConcurrencyError. Later reads in the transaction see the rows as locked."""


@runtime_checkable
class UniqueKeys(Protocol):
    """Upsert keys the store holds unique (see :mod:`pycrm.storage._keys`): ``custom.external_id`` and the
    custom fields declared ``unique=True`` (:class:`DeclaredKeys`), kept in a key table written with the
    records themselves.

    From then on :meth:`Transaction.insert` and :meth:`Transaction.update` (and ``insert_rows``) refuse a
    record whose key value another record holds with ``_keys.duplicate_key_error`` (a ValidationError,
    code ``duplicate_key``), also when the other record is being written by a concurrent transaction that
    then commits; a delete frees its values.
    """

    def unique_keys(self, kind: type[Entity]) -> frozenset[str]:
        """The key names (``custom.<key>``) held unique for ``kind`` (as stored: any process may add some,
        with :class:`DeclaredKeys`)."""


@runtime_checkable
class KeyLocks(Protocol):
    """The lock an upsert takes before it looks records up by a key (``import_file``), held to the end of the
    transaction: two upserts by the same key, in any processes, match one after the other, so the second
    sees what the first created. Keys that are not unique by nature (e-mails, phones) rely on it alone."""

    def lock_keys(self, kind: type[Entity], fields: Sequence[str]) -> None:
        """Hold the upsert lock of each of ``fields`` of ``kind`` to the end of the transaction (taken in one
        order, so two holders never wait for each other in a circle); waits at most the store's key lock
        wait, then raises ConcurrencyError. Later reads in the transaction see what the previous holder
        committed."""


@runtime_checkable
class Counters(Protocol):
    """Named counters kept in the store (``pycrm.automation``'s round robin): two transactions that increment
    one counter at once get different values, one after the other, and a rolled-back increment is undone."""

    def next_value(self, name: str) -> int:
        """Increment the counter ``name`` (``prefix:rest``, see :func:`pycrm.storage._counters.check_counter_name`;
        0 before its first use) and return its new value; the counter is held to the end of the transaction, so
        a concurrent incrementer waits (at most the store's lock timeout, then ConcurrencyError) and then sees
        this value once committed, or the old one if this transaction rolls back."""


@runtime_checkable
class GroupedCounts(Protocol):
    """Counts per value of a field computed where the data lives, in one query (``pycrm.automation``'s
    least-loaded assignment: open items per person). Without it a caller counts once per value."""

    def count_by(self, kind: type[Entity], where: list[Condition], field: str, limit: int) -> dict[str | None, int]:
        """How many ``kind`` rows matching ``where`` hold each value of ``field`` (a single text field of ``kind``,
        see :func:`pycrm.storage._counters.check_count_field`; None: rows without a value), values with no row
        left out; a ValidationError naming ``limit`` when more than ``limit`` values have rows."""


@runtime_checkable
class Snapshots(Protocol):
    """Reads that all see one point in time, while other sessions write (``backup`` and ``verify``)."""

    def snapshot(self) -> AbstractContextManager[None]:
        """Within the block every read sees one committed state (enter before the first read)."""

    def schema_revision(self) -> str | None:
        """The store's schema revision (the SQL adapter's migration), None where there is none."""

    def source(self) -> str:
        """What a dump's header calls the store: ``memory``, ``sqlite``, ``postgresql`` or ``mysql``."""


@runtime_checkable
class FileBacked(Protocol):
    """A database file that other processes may open and read (an SQLite file opened by pycrm by URL)."""

    def database_file(self) -> str | None:
        """The absolute path of the file this transaction reads, or None (in memory, a temporary database,
        an application's own engine, another database)."""

    def file_opener(self) -> Callable[[], Store]:
        """A picklable function that opens the same file as a new store, in another process."""


@runtime_checkable
class Outbox(Protocol):
    """Domain events written in the same transaction as the changes that raised them, then claimed and settled
    by dispatchers (``crm.dispatch``, see :mod:`pycrm.automation`).

    A row is a dict: ``seq`` (the outbox's order, given by the store), ``key`` (the idempotency key, unique),
    ``event``, ``entity``, ``entity_id``, ``at``, ``actor_id``, ``data`` (a JSON-safe dict), and the delivery
    state: ``state`` (``pending``, ``done`` or ``dead``), ``attempts``, ``next_at`` (not before),
    ``delivered`` (the handlers that succeeded), ``error`` (the last failure), ``done_at``.
    """

    def outbox_add(self, rows: Sequence[dict[str, Any]], *, unique: bool = False) -> int:
        """Append new events as pending (due at once), in this transaction. ``unique``: an event whose key the
        outbox already holds is left out instead of failing (the insert-if-absent of a firing that must
        happen once); returns how many were added. Two transactions adding one key both succeed only if the
        second finds the first committed: otherwise the later commit fails with ConcurrencyError."""

    def outbox_claim(self, owner: str, now: dt.datetime, until: dt.datetime, limit: int) -> list[dict[str, Any]]:
        """Claim up to ``limit`` pending events due at ``now`` for ``owner`` until ``until`` (a lease), by
        ``seq``, none claimed by another owner whose lease runs; an event whose record has an earlier event
        still pending (in backoff, claimed) is not claimed, so each record's events go out in order. Claims
        by concurrent transactions never overlap (one claimer at a time holds the outbox's lock row)."""

    def outbox_settle(self, owner: str, rows: Sequence[dict[str, Any]]) -> int:
        """Record what happened to events ``owner`` claimed: each row ``seq``, ``state``, ``attempts``,
        ``next_at``, ``delivered``, ``error``, ``done_at``; the claim ends. Returns how many were settled
        (an event another owner claimed meanwhile is left to it)."""

    def outbox_list(self, state: str | None, after: int, limit: int) -> list[dict[str, Any]]:
        """Events with ``seq > after`` in ``state`` (None: any), by seq, at most ``limit``."""

    def outbox_retry(self, seqs: Sequence[int] | None, now: dt.datetime) -> int:
        """Dead events (``seqs``, or all) back to pending, due ``now``, attempts reset; how many."""

    def outbox_counts(self) -> dict[str, int]:
        """How many events are in each state."""

    def outbox_erase(self, records: Mapping[str, Sequence[str]]) -> int:
        """Erase the data of the custom events about ``records`` (repository name -> ids), whatever their state
        (their name stays; the other events hold ids and names only): an erasure leaves nothing of the person
        in the outbox, and handlers still learn of the erasure's own changes. Returns how many changed."""


@runtime_checkable
class DueQueries(Protocol):
    """What the time rules of ``crm.run_due`` find, each rule one query in the store (see
    :mod:`pycrm.automation._due`; the kinds and their rows are listed in :mod:`pycrm.storage._due`).

    ``due(kind, now, **params)`` gives ``(id, value)`` rows sorted by id -- open tasks due soon or overdue,
    dormant customers, stale deals, anniversaries of a date field -- or None for a kind the adapter does not
    know (the caller then streams entities through :func:`pycrm.storage._due.due_rows`). Runs as the system
    actor: the gate refuses it to any other actor.
    """

    def due(self, kind: str, now: dt.datetime, **params: Any) -> list[tuple[Any, ...]] | None: ...

    def fired(self, keys: Sequence[str]) -> set[str]:
        """Which of the event ``keys`` the outbox holds (committed, or added in this transaction): the firings
        a run need not make again. ``outbox_add(..., unique=True)`` still decides, for concurrent runs."""

    def fire(self, kind: str, now: dt.datetime, name: str, **params: Any) -> tuple[int, int] | None:
        """The whole firing of the rule ``name`` in the database: what ``due`` finds, and each record's event
        (key ``name|id|period``) added to the outbox if absent, in this transaction; ``(found, added)``, or None
        for a kind the adapter does not fire itself (the caller then uses ``due`` and ``outbox_add``)."""


# ---------------------------------------------------------------------------------------------------
# optional capabilities of a store
# ---------------------------------------------------------------------------------------------------


@runtime_checkable
class ExclusiveHold(Protocol):
    """The store held by one bulk write (``import_file(..., exclusive=True)``)."""

    def held(self) -> AbstractContextManager[bool]:
        """Hold the database for the block; yields whether it could (False changes nothing)."""


@runtime_checkable
class DriverErrors(Protocol):
    """The exceptions of the store's database library that are not about the data (a lost connection, a
    database that cannot be read): a command-line tool names them in one line instead of a traceback."""

    def driver_errors(self) -> tuple[type[Exception], ...]: ...


@runtime_checkable
class DeclaredKeys(Protocol):
    """Keys declared unique by an opener (``pycrm.open`` with ``CustomField(..., unique=True)``)."""

    def declare_keys(self, kind: type[Entity], names: Sequence[str]) -> None:
        """Hold ``names`` (``custom.<key>``) of ``kind`` unique from now on, for every writer, keying the records
        already stored; a CRMError naming the key and the records when some already share a value
        (``_keys.duplicates_error``), and then nothing changes. Keys already held are left as they are."""


@runtime_checkable
class CustomIndexes(Protocol):
    """Indexes on declared custom fields (``pycrm.open`` with ``CustomField(..., indexed=True)``)."""

    def index_custom_fields(self, kind: type[Entity], fields: Sequence[Any]) -> list[str]:
        """Have an index on each of ``fields`` (``CustomField`` objects declared ``indexed=True``) of ``kind``
        that filters on it use, creating those missing (idempotent: an index already there is kept); the
        names of the indexes."""


@runtime_checkable
class FileCopies(Protocol):
    """A consistent copy of the database file while others write (``backup(..., method="sqlite")``)."""

    def copy_database(self, path: str) -> dict[str, int] | None:
        """Copy the database into a new file at ``path``; the number of records per repository, or None
        (nothing written) when the store is not a database file."""
