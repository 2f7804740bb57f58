"""The in-memory adapter: complete and public, not a test double.

Committed entities live in dicts; emails, phones and tags have hash indexes. A transaction keeps its
own overlay of changes and applies it on commit under a lock, re-checking versions, so an uncommitted
or rolled-back session leaves the store untouched. Conditions are evaluated by
:mod:`pycrm.storage.evaluate`, as for archived records.

Unique keys (:mod:`pycrm.storage._keys`) are a committed index per table, (name, key text) -> id; a
transaction checks each key it writes against that index and its own claims when it writes, and again
at commit, under the lock, against what other sessions committed meanwhile. The upsert locks
(:class:`~pycrm.storage.port.KeyLocks`) are held by a transaction until it commits or rolls back.
"""

from __future__ import annotations

import bisect
import copy
import datetime as dt
import json
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from pycrm.domain import Entity
from pycrm.errors import ConcurrencyError, CRMError, ValidationError
from pycrm.security import GENESIS_HASH
from pycrm.security._audit import erasure_marker
from pycrm.storage import port
from pycrm.storage._backend import copy_entity
from pycrm.storage._counters import check_count_field, check_counter_name, too_many_groups
from pycrm.storage._due import due_rows
from pycrm.storage._journal import chain, erased_row, number_changes
from pycrm.storage._keys import ALWAYS_UNIQUE, KEYED, custom_keys, duplicate_key_error, duplicates_error
from pycrm.storage._outbox import Picker, erased_custom
from pycrm.storage._where import FIELD_KINDS, LIST_KINDS, Condition, OrderBy, sort_key_value
from pycrm.storage.evaluate import list_values, matches, scalar

__all__ = ["MemoryStore"]

_DELETED = object()
#: Seconds a transaction waits for another one's upsert lock (``KeyLocks``) before a ConcurrencyError.
KEY_LOCK_WAIT = 60


class _Table:
    __slots__ = ("indexes", "keys", "rows", "unique")

    def __init__(self, kind: type[Entity]):
        self.rows: dict[str, Entity] = {}
        self.indexes: dict[str, dict[str, Any]] = {f: {} for f, k in FIELD_KINDS[kind].items() if k in LIST_KINDS}
        #: the unique keys of the kind (names), and the committed key index: (name, key text) -> id
        self.unique: tuple[str, ...] = ALWAYS_UNIQUE if kind in KEYED else ()
        self.keys: dict[tuple[str, str], str] = {}

    def keys_of(self, entity: Entity) -> list[tuple[str, str]]:
        return custom_keys(entity.custom, self.unique) if self.unique else []  # type: ignore[attr-defined]

    def index_add(self, entity: Entity) -> None:
        if self.unique:
            for k in self.keys_of(entity):
                self.keys[k] = entity.id  # type: ignore[assignment]
        for field, index in self.indexes.items():
            for value in list_values(entity, field, FIELD_KINDS[type(entity)][field]):
                have = index.get(value)
                if have is None:
                    index[value] = entity.id
                elif isinstance(have, str):
                    if have != entity.id:
                        index[value] = [have, entity.id]
                elif entity.id not in have:
                    have.append(entity.id)

    def index_remove(self, entity: Entity) -> None:
        if self.unique:
            for k in self.keys_of(entity):
                if self.keys.get(k) == entity.id:
                    del self.keys[k]
        for field, index in self.indexes.items():
            for value in list_values(entity, field, FIELD_KINDS[type(entity)][field]):
                have = index.get(value)
                if have == entity.id:
                    del index[value]
                elif isinstance(have, list) and entity.id in have:
                    have.remove(entity.id)
                    if len(have) == 1:
                        index[value] = have[0]

    def lookup(self, field: str, value: str) -> list[str]:
        have = self.indexes[field].get(value)
        if have is None:
            return []
        return [have] if isinstance(have, str) else list(have)


class MemoryStore:
    """Entities in process memory. ``pycrm.open("memory://")`` makes one."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._tables: dict[type[Entity], _Table] = {k: _Table(k) for k in FIELD_KINDS}
        self._records: dict[tuple[str, str], str] = {}  # (stream, key) -> JSON text
        self._changes_log: list[dict[str, Any]] = []  # the change feed, by seq
        self._audit_log: list[dict[str, Any]] = []  # the audit trail as AuditEntry.to_data(), by seq
        self._key_locks: dict[str, MemoryTransaction] = {}  # upsert lock name -> the transaction holding it
        self._key_freed = threading.Condition(self._lock)
        self._outbox: dict[int, dict[str, Any]] = {}  # the outbox by seq (storage/_outbox.py)
        self._outbox_keys: dict[str, int] = {}  # idempotency key -> seq
        self._outbox_seq = 0
        self._counters: dict[str, int] = {}  # Counters: the committed values by name

    @property
    def url(self) -> str:
        return "memory://"

    def begin(self) -> MemoryTransaction:
        return MemoryTransaction(self)

    def close(self) -> None:
        pass

    def table(self, kind: type[Entity]) -> _Table:
        return self._tables[kind]

    def declare_keys(self, kind: type[Entity], names: Sequence[str]) -> None:
        """``DeclaredKeys``: hold ``names`` unique from now on (a CRMError when stored records share a value)."""
        if kind not in KEYED:
            raise CRMError(f"{kind.__name__} has no custom fields to hold unique")
        with self._lock:
            table = self._tables[kind]
            new = tuple(n for n in dict.fromkeys(names) if n not in table.unique)
            if not new:
                return
            found: dict[tuple[str, str], list[str]] = {}
            for id, e in sorted(table.rows.items()):
                for k in custom_keys(e.custom, new):  # type: ignore[attr-defined]
                    found.setdefault(k, []).append(id)
            for name in new:
                shared = [ids for (n, _), ids in found.items() if n == name and len(ids) > 1]
                if shared:
                    raise duplicates_error(kind, name, shared[:10], len(shared))
            table.keys.update({k: ids[0] for k, ids in found.items()})
            table.unique += new


class MemoryTransaction:
    def __init__(self, store: MemoryStore):
        self._store = store
        self._changes: dict[type[Entity], dict[str, Any]] = {}
        self._expected: dict[tuple[type[Entity], str], int] = {}
        self._records: dict[tuple[str, str], Any] = {}  # (stream, key) -> JSON text or _DELETED
        self._journal: list[tuple[list[dict[str, Any]], list[dict[str, Any]], bytes | None]] = []
        # audit erasures, each applied at commit after the journal parts handed over before it
        self._erasures: list[tuple[int, dict[str, frozenset[str]], str, bytes | None]] = []
        self._loaded: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = []  # journal_load (restores)
        # unique keys this transaction wrote (an id) or freed (None), over the committed index
        self._claims: dict[tuple[str, str], str | None] = {}
        self._key_locks: set[str] = set()
        # the outbox: events added (applied at commit), and the old rows of claims and settlements, which
        # apply at once (dispatchers commit right after) and come back on rollback
        self._outbox_new: list[tuple[dict[str, Any], bool]] = []
        self._outbox_undo: list[tuple[int, dict[str, Any] | None]] = []
        self._counters: dict[str, int] = {}  # Counters this transaction incremented (it holds their locks)

    # ---- helpers ----
    def _overlay(self, kind: type[Entity]) -> dict[str, Any]:
        return self._changes.setdefault(kind, {})

    def _current(self, kind: type[Entity], id: str) -> Entity | None:
        over = self._changes.get(kind)
        if over is not None and id in over:
            v = over[id]
            return None if v is _DELETED else v  # overlay values are entities
        return self._store.table(kind).rows.get(id)

    def _candidates(self, kind: type[Entity], where: list[Condition]) -> Iterable[Entity]:
        by_id = next((c for c in where if c.field == "id" and c.op in ("eq", "in")), None)
        if by_id is not None:  # a get through the gate, a rule's record: the rows named, not a scan of the table
            for id in [by_id.value] if by_id.op == "eq" else dict.fromkeys(by_id.value):
                found = self._current(kind, id) if isinstance(id, str) else None
                if found is not None:
                    yield found
            return
        table = self._store.table(kind)
        over = self._changes.get(kind) or {}
        indexed = next((c for c in where if c.kind in LIST_KINDS and c.op in ("eq", "in")), None)
        if indexed is not None:
            values = [indexed.value] if indexed.op == "eq" else indexed.value
            ids = dict.fromkeys(i for v in values for i in table.lookup(indexed.field, v))
            base: Iterable[Entity] = (table.rows[i] for i in ids if i not in over)
        else:
            base = (e for i, e in table.rows.items() if i not in over)
        for e in base:
            yield e
        for e in over.values():
            if e is not _DELETED:
                yield e

    def _select(self, kind: type[Entity], where: list[Condition]) -> list[Entity]:
        related = self._current
        return [e for e in self._candidates(kind, where) if all(matches(e, c, related) for c in where)]

    # ---- unique keys ----
    def _holder(self, table: _Table, key: tuple[str, str]) -> str | None:
        return self._claims[key] if key in self._claims else table.keys.get(key)

    def _claim(self, kind: type[Entity], entities: Sequence[Entity], before: Sequence[Entity | None]) -> None:
        """Check and record the unique keys of ``entities`` replacing ``before`` (None: new); a ValidationError
        (nothing recorded) when another record holds one."""
        table = self._store.table(kind)
        if not table.unique:
            return
        many = len(entities) > 1
        taken: list[tuple[int | None, str]] = []
        mine: dict[tuple[str, str], str] = {}
        plan = []
        for i, (e, old) in enumerate(zip(entities, before)):
            had = set(table.keys_of(old)) if old is not None else set()
            has = table.keys_of(e)
            for k in has:
                if k in had:
                    continue
                holder = mine.get(k) or self._holder(table, k)
                if holder is not None and holder != e.id:
                    taken.append((i if many else None, k[0]))
                mine[k] = e.id  # type: ignore[assignment]
            plan.append((e.id, had - set(has), [k for k in has if k not in had]))
        if taken:
            raise duplicate_key_error(kind, taken)
        for id, freed, claimed in plan:
            for k in freed:
                self._claims[k] = None
            for k in claimed:
                self._claims[k] = id

    def unique_keys(self, kind: type[Entity]) -> frozenset[str]:
        """``UniqueKeys``: the keys held unique for ``kind``."""
        return frozenset(self._store.table(kind).unique)

    def lock_keys(self, kind: type[Entity], fields: Sequence[str]) -> None:
        """``KeyLocks``: hold the upsert locks of ``fields`` until this transaction ends."""
        self._hold(sorted({f"{kind.entity_name()}.{f}" for f in fields}), "the upsert lock of")

    def _hold(self, names: Sequence[str], what: str) -> None:
        """Hold the named locks (in the given order) until this transaction ends, waiting for other holders."""
        store = self._store
        deadline = time.monotonic() + KEY_LOCK_WAIT
        with store._key_freed:
            for name in names:
                while store._key_locks.get(name, self) is not self:
                    left = deadline - time.monotonic()
                    if left <= 0 or not store._key_freed.wait(left):
                        raise ConcurrencyError(f"another session held {what} {name} for {KEY_LOCK_WAIT} s; retry")
                store._key_locks[name] = self
                self._key_locks.add(name)

    def count_by(self, kind: type[Entity], where: list[Condition], field: str, limit: int) -> dict[str | None, int]:
        """``GroupedCounts``: rows matching ``where`` per value of ``field``."""
        check_count_field(kind, field, limit)
        counts: dict[str | None, int] = {}
        for e in self._select(kind, where):
            value = scalar(e, field, "text")
            counts[value] = counts.get(value, 0) + 1
            if len(counts) > limit:
                raise too_many_groups(field, limit)
        return counts

    def next_value(self, name: str) -> int:
        """``Counters``: increment the counter ``name``, held (as a lock ``counter <name>``) until this
        transaction ends; the new value is stored at commit, forgotten at rollback."""
        check_counter_name(name)
        self._hold([f"counter {name}"], "the counter")
        value = self._counters.get(name)
        if value is None:
            with self._store._lock:
                value = self._store._counters.get(name, 0)
        self._counters[name] = value + 1
        return value + 1

    def _unlock_keys(self) -> None:
        if self._key_locks:
            store = self._store
            with store._key_freed:
                for name in self._key_locks:
                    if store._key_locks.get(name) is self:
                        del store._key_locks[name]
                self._key_locks.clear()
                store._key_freed.notify_all()

    # ---- Transaction protocol ----
    def insert(self, kind: type[Entity], entities: Sequence[Entity]) -> None:
        self._claim(kind, entities, [None] * len(entities))
        over = self._overlay(kind)
        for e in entities:
            assert e.id is not None
            over[e.id] = copy_entity(e)

    def get(self, kind: type[Entity], id: str) -> Entity | None:
        e = self._current(kind, id)
        return None if e is None else copy_entity(e)

    def update(self, kind: type[Entity], entity: Entity, expected_version: int) -> bool:
        assert entity.id is not None
        cur = self._current(kind, entity.id)
        if cur is None or cur.version != expected_version:
            return False
        self._claim(kind, [entity], [cur])
        key = (kind, entity.id)
        if key not in self._expected and entity.id in self._store.table(kind).rows and entity.id not in self._overlay(kind):
            self._expected[key] = expected_version
        self._overlay(kind)[entity.id] = copy_entity(entity)
        return True

    def delete(self, kind: type[Entity], id: str) -> bool:
        cur = self._current(kind, id)
        if cur is None:
            return False
        table = self._store.table(kind)
        for k in table.keys_of(cur):
            self._claims[k] = None
        key = (kind, id)
        if key not in self._expected and id in self._store.table(kind).rows and id not in self._overlay(kind):
            self._expected[key] = cur.version
        self._overlay(kind)[id] = _DELETED
        return True

    def find(
        self, kind: type[Entity], where: list[Condition], order_by: list[OrderBy], limit: int | None, offset: int
    ) -> list[Entity]:
        rows = self._select(kind, where)
        for o in reversed(order_by):
            kinds = FIELD_KINDS[kind]

            def key(e: Entity, f: str = o.field, k: str = kinds[o.field]) -> tuple[bool, Any]:
                v = sort_key_value(scalar(e, f, k))
                return (v is not None, v if v is not None else Decimal(0))

            rows.sort(key=key, reverse=o.descending)
        end = None if limit is None else offset + limit
        return [copy_entity(e) for e in rows[offset:end]]

    def count(self, kind: type[Entity], where: list[Condition]) -> int:
        if not where:
            table = self._store.table(kind)
            over = self._changes.get(kind) or {}
            n = len(table.rows)
            for i, v in over.items():
                n += (v is not _DELETED) - (i in table.rows)
            return n
        return len(self._select(kind, where))

    def iter(self, kind: type[Entity], where: list[Condition], batch_size: int) -> Iterator[Entity]:
        # the matches are chosen once (references only: the rows already live in memory), then copied
        # one at a time as the caller reads them
        for e in sorted(self._select(kind, where), key=lambda e: e.id):  # type: ignore[arg-type, return-value]
            yield copy_entity(e)

    def existing_ids(self, kind: type[Entity], ids: Iterable[str]) -> set[str]:
        return {i for i in ids if self._current(kind, i) is not None}

    def referencing(self, kind: type[Entity], field: str, ids: Iterable[str]) -> int:
        wanted = set(ids)
        return sum(1 for e in self._candidates(kind, []) if getattr(e, field) in wanted)

    @contextmanager
    def atomic(self) -> Iterator[None]:
        changes = {k: dict(v) for k, v in self._changes.items()}
        saved = (changes, dict(self._expected), dict(self._records), dict(self._claims), dict(self._counters))
        n_journal, n_erasures = len(self._journal), len(self._erasures)
        n_outbox, n_undo = len(self._outbox_new), len(self._outbox_undo)
        try:
            yield
        except BaseException:
            self._changes, self._expected, self._records, self._claims, self._counters = saved
            del self._journal[n_journal:]
            del self._erasures[n_erasures:]
            del self._outbox_new[n_outbox:]
            self._outbox_restore(n_undo)
            raise

    def record_get(self, stream: str, key: str) -> Any | None:
        text = self._records.get((stream, key))
        if text is None:
            text = self._store._records.get((stream, key))
        return None if text is None or text is _DELETED else json.loads(text)

    def record_put(self, stream: str, key: str, data: Any) -> None:
        self._records[(stream, key)] = json.dumps(data, ensure_ascii=False)

    def record_delete(self, stream: str, key: str) -> bool:
        if self.record_get(stream, key) is None:
            return False
        self._records[(stream, key)] = _DELETED
        return True

    def record_list(self, stream: str) -> list[tuple[str, Any]]:
        keys = {k for s, k in self._store._records if s == stream} | {k for s, k in self._records if s == stream}
        out = []
        for key in sorted(keys):
            data = self.record_get(stream, key)
            if data is not None:
                out.append((key, data))
        return out

    def record_streams(self) -> list[str]:
        streams = {s for s, _ in self._store._records} | {s for s, _ in self._records}
        return sorted(s for s in streams if self.record_list(s))

    # ---- the journal (see storage/_journal.py): numbered and chained at commit, under the store lock ----
    def journal(self, changes: Sequence[dict[str, Any]], audit: Sequence[dict[str, Any]], *, key: bytes | None = None) -> None:
        self._journal.append((list(changes), list(audit), key))

    def journal_load(self, changes: Sequence[dict[str, Any]], audit: Sequence[dict[str, Any]]) -> None:
        self._loaded.append((list(changes), list(audit)))

    def audit_erase(self, records: Mapping[str, Sequence[str]], erasure_id: str, *, key: bytes | None = None) -> None:
        wanted = {name: frozenset(ids) for name, ids in records.items() if ids}
        self._erasures.append((len(self._journal), wanted, erasure_id, key))

    def _erase(self, upto: int) -> None:
        """Apply the erasures handed over before journal part ``upto`` (under the store lock, at commit)."""
        log = self._store._audit_log
        for at, records, erasure_id, key in self._erasures:
            if at != upto:
                continue
            marker = erasure_marker(erasure_id)
            for i, row in enumerate(log):
                if isinstance(row, dict):
                    out = erased_row(row, records, marker, key)
                    if out is not None:
                        log[i] = out

    def _logs(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The committed journal, with rows this transaction restored (``journal_load``) merged in."""
        changes, audit = self._store._changes_log, self._store._audit_log
        if self._loaded:
            changes = sorted([*changes, *(r for c, _ in self._loaded for r in c)], key=lambda r: r["seq"])
            audit = sorted([*audit, *(r for _, a in self._loaded for r in a)], key=lambda r: r["seq"])
        return changes, audit

    def changes_since(self, cursor: int, limit: int) -> list[dict[str, Any]]:
        log = self._logs()[0]
        start = bisect.bisect_right(log, cursor, key=lambda r: r["seq"])
        return [dict(r) for r in log[start : start + limit]]

    def changes_last(self) -> int:
        log = self._logs()[0]
        return int(log[-1]["seq"]) if log else 0

    def audit_last(self) -> dict[str, Any] | None:
        log = self._logs()[1]
        return json.loads(json.dumps(log[-1])) if log else None

    def audit_list(self, after: int, limit: int | None, entity_id: str | None) -> list[dict[str, Any]]:
        log = self._logs()[1]
        try:
            start = bisect.bisect_right(log, after, key=lambda r: r["seq"])
        except (TypeError, KeyError):  # a tampered row without a whole-number seq: read on from the first such one
            start = next((i for i, r in enumerate(log) if not (isinstance(r, dict) and _seq_upto(r, after))), len(log))
        rows = (r for r in log[start:] if entity_id is None or (isinstance(r, dict) and r.get("entity_id") == entity_id))
        out = []
        for r in rows:
            try:
                out.append(json.loads(json.dumps(r)))
            except (TypeError, ValueError):  # not JSON-safe (tampered): as it is, for verify() to name
                out.append(copy.deepcopy(r))
            if limit is not None and len(out) >= limit:
                break
        return out

    # ---- the outbox (port.Outbox; storage/_outbox.py) ----
    def outbox_add(self, rows: Sequence[dict[str, Any]], *, unique: bool = False) -> int:
        store = self._store
        n = 0
        with store._lock:
            mine = {r["key"] for r, _ in self._outbox_new}
            for r in rows:
                if unique and (r["key"] in store._outbox_keys or r["key"] in mine):
                    continue
                json.dumps(r.get("data") or {}, allow_nan=False)  # JSON-safe, as a SQL store needs it
                self._outbox_new.append(({**r, "data": copy.deepcopy(r.get("data") or {})}, unique))
                mine.add(r["key"])
                n += 1
        return n

    # ---- port.DueQueries: the time rules of crm.run_due, over what this transaction sees ----
    def due(self, kind: str, now: dt.datetime, **params: Any) -> list[tuple[Any, ...]] | None:
        return due_rows(kind, now, params, lambda k: self._candidates(k, []))

    def fire(self, kind: str, now: dt.datetime, name: str, **params: Any) -> tuple[int, int] | None:
        return None  # run_due makes the events from due()'s rows

    def fired(self, keys: Sequence[str]) -> set[str]:
        store = self._store
        with store._lock:
            mine = {r["key"] for r, _ in self._outbox_new}
            return {k for k in keys if k in store._outbox_keys or k in mine}

    def _outbox_change(self, seq: int, **values: Any) -> None:
        row = self._store._outbox[seq]
        self._outbox_undo.append((seq, dict(row)))
        row.update(values)

    def _outbox_restore(self, upto: int) -> None:
        store = self._store
        with store._lock:
            while len(self._outbox_undo) > upto:
                seq, old = self._outbox_undo.pop()
                if old is None:
                    continue
                store._outbox[seq] = old
                store._outbox_keys[old["key"]] = seq

    def outbox_claim(self, owner: str, now: dt.datetime, until: dt.datetime, limit: int) -> list[dict[str, Any]]:
        store = self._store
        picker = Picker(now, limit)
        with store._lock:
            picker.page(r for r in store._outbox.values() if r["state"] == "pending")
            for seq in picker.taken:
                self._outbox_change(seq, claimed_by=owner, claimed_until=until)
            return [_outbox_copy(store._outbox[seq]) for seq in picker.taken]

    def outbox_settle(self, owner: str, rows: Sequence[dict[str, Any]]) -> int:
        store = self._store
        n = 0
        with store._lock:
            for r in rows:
                have = store._outbox.get(r["seq"])
                if have is None or have.get("claimed_by") != owner:
                    continue
                self._outbox_change(
                    r["seq"],
                    state=r["state"],
                    attempts=r["attempts"],
                    next_at=r["next_at"],
                    delivered=list(r.get("delivered") or ()),
                    error=r.get("error"),
                    done_at=r.get("done_at"),
                    claimed_by=None,
                    claimed_until=None,
                )
                n += 1
        return n

    def outbox_list(self, state: str | None, after: int, limit: int) -> list[dict[str, Any]]:
        with self._store._lock:
            out = []
            for seq, r in self._store._outbox.items():
                if seq > after and (state is None or r["state"] == state):
                    out.append(_outbox_copy(r))
                    if len(out) >= limit:
                        break
            return out

    def outbox_retry(self, seqs: Sequence[int] | None, now: dt.datetime) -> int:
        store = self._store
        with store._lock:
            wanted = [s for s, r in store._outbox.items() if r["state"] == "dead"] if seqs is None else sorted(set(seqs))
            n = 0
            for seq in wanted:
                r = store._outbox.get(seq)
                if r is not None and r["state"] == "dead":
                    self._outbox_change(seq, state="pending", attempts=0, next_at=now, claimed_by=None, claimed_until=None)
                    n += 1
            return n

    def outbox_counts(self) -> dict[str, int]:
        with self._store._lock:
            out = {"pending": 0, "done": 0, "dead": 0}
            for r in self._store._outbox.values():
                out[r["state"]] += 1
            return out

    def outbox_erase(self, records: Mapping[str, Sequence[str]]) -> int:
        store = self._store
        wanted = {(e, i) for e, ids in records.items() for i in ids}
        n = 0
        with store._lock:
            for i, (r, u) in enumerate(self._outbox_new):
                blank = erased_custom(r["data"]) if r["event"] == "CustomEvent" else None
                if blank is not None and (r.get("entity"), r.get("entity_id")) in wanted:
                    self._outbox_new[i] = ({**r, "data": blank}, u)
            for seq, r in store._outbox.items():
                blank = erased_custom(r["data"]) if r["event"] == "CustomEvent" else None
                if blank is not None and (r.get("entity"), r.get("entity_id")) in wanted:
                    self._outbox_change(seq, data=blank)
                    n += 1
        return n

    def _outbox_commit(self) -> None:
        """Number and store the events added (under the store lock, with the rest of the commit)."""
        store = self._store
        for r, _ in self._outbox_new:
            store._outbox_seq += 1
            seq = store._outbox_seq
            store._outbox[seq] = {
                **r,
                "seq": seq,
                "state": "pending",
                "attempts": 0,
                "next_at": r["at"],
                "claimed_by": None,
                "claimed_until": None,
                "delivered": [],
                "error": None,
                "done_at": None,
            }
            store._outbox_keys[r["key"]] = seq
        self._outbox_new.clear()
        self._outbox_undo.clear()

    def commit(self) -> None:
        try:
            self._commit()
        finally:
            self._unlock_keys()

    def _taken_meanwhile(self) -> ValidationError | None:
        """A key this transaction claimed that another session committed for another record meanwhile."""
        for kind, over in self._changes.items():
            table = self._store.table(kind)
            if not table.unique:
                continue
            for id, e in over.items():
                if e is _DELETED:
                    continue
                for k in table.keys_of(e):
                    holder = table.keys.get(k)
                    if holder is not None and holder != id and holder not in over:
                        return duplicate_key_error(kind, [(None, k[0])])
        return None

    def _commit(self) -> None:
        store = self._store
        with store._lock:
            for (kind, id), version in self._expected.items():
                cur = store.table(kind).rows.get(id)
                if cur is None or cur.version != version:
                    self._changes.clear()
                    raise ConcurrencyError(f"{kind.__name__} {id!r} was changed by another session; nothing was committed")
            taken = self._taken_meanwhile() if self._claims else None
            if taken is not None:
                self._changes.clear()
                self._claims.clear()
                raise taken
            if any(r["key"] in store._outbox_keys for r, _ in self._outbox_new):
                self._changes.clear()
                self._outbox_new.clear()
                raise ConcurrencyError(
                    "an event this session added was added by another session meanwhile; nothing was committed"
                )
            for kind, over in self._changes.items():
                table = store.table(kind)
                for id, new in over.items():
                    old = table.rows.get(id)
                    if old is not None:
                        table.index_remove(old)
                    if new is _DELETED:
                        table.rows.pop(id, None)
                    else:
                        table.rows[id] = new
                        table.index_add(new)
            for rkey, text in self._records.items():
                if text is _DELETED:
                    store._records.pop(rkey, None)
                else:
                    store._records[rkey] = text
            for changes, audit in self._loaded:
                store._changes_log = sorted([*store._changes_log, *changes], key=lambda r: r["seq"])
                store._audit_log = sorted([*store._audit_log, *audit], key=lambda r: r["seq"])
            for i, (changes, audit, key) in enumerate(self._journal):
                self._erase(i)
                last = store._changes_log[-1]["seq"] if store._changes_log else 0
                store._changes_log += number_changes(last, changes)
                tail: dict[str, Any] = store._audit_log[-1] if store._audit_log else {"seq": 0, "hash": GENESIS_HASH}
                store._audit_log += [e.to_data() for e in chain(int(tail["seq"]), str(tail["hash"]), audit, key)]
            self._erase(len(self._journal))
            self._outbox_commit()
            store._counters.update(self._counters)
        self._journal.clear()
        self._erasures.clear()
        self._loaded.clear()
        self._changes.clear()
        self._expected.clear()
        self._records.clear()
        self._claims.clear()
        self._counters.clear()

    # ---- Snapshots (pycrm.storage.port): backups ----
    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read of the block sees one point in time: commits of other sessions wait for it."""
        with self._store._lock:
            yield

    def schema_revision(self) -> str | None:
        """None: the memory adapter has no schema migrations."""
        return None

    def source(self) -> str:
        return "memory"

    def rollback(self) -> None:
        self._outbox_new.clear()
        self._outbox_restore(0)
        self._journal.clear()
        self._erasures.clear()
        self._loaded.clear()
        self._changes.clear()
        self._expected.clear()
        self._records.clear()
        self._claims.clear()
        self._counters.clear()
        self._unlock_keys()


def _implements(tx: MemoryTransaction, store: MemoryStore) -> tuple[Any, ...]:  # pragma: no cover - for mypy, never called
    """The memory adapter implements the port's protocols and capabilities: mypy checks the signatures here."""
    checked: tuple[
        port.Transaction,
        port.Snapshots,
        port.UniqueKeys,
        port.KeyLocks,
        port.Counters,
        port.GroupedCounts,
        port.Outbox,
        port.DueQueries,
        port.Store,
        port.DeclaredKeys,
    ] = (
        tx,
        tx,
        tx,
        tx,
        tx,
        tx,
        tx,
        tx,
        store,
        store,
    )
    return checked


def _outbox_copy(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "claimed_by"}
    out["data"] = copy.deepcopy(row["data"])
    out["delivered"] = list(row["delivered"])
    return out


def _seq_upto(row: dict[str, Any], after: int) -> bool:
    seq = row.get("seq")
    return type(seq) is int and seq <= after
