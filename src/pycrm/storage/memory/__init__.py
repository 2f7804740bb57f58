"""The in-memory adapter: complete and public, not a test double.

Committed entities live in dicts; emails, phones and tags have hash indexes. A transaction keeps its
own overlay of changes and applies it on commit under a lock, re-checking versions, so an uncommitted
or rolled-back session leaves the store untouched.
"""

from __future__ import annotations

import bisect
import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from pycrm.domain import Entity
from pycrm.errors import ConcurrencyError
from pycrm.security import GENESIS_HASH
from pycrm.storage._backend import copy_entity, index_text
from pycrm.storage._journal import chain, number_changes
from pycrm.storage._where import FIELD_KINDS, LIST_KINDS, Condition, InValues, OrderBy, sort_key_value

__all__ = ["MemoryStore"]

_DELETED = object()


def _list_values(entity: Entity, field: str, kind: str) -> Iterable[str]:
    items = getattr(entity, field)
    if kind == "emails":
        return [index_text(e.value) for e in items]
    if kind == "phones":
        return [index_text(p.e164) for p in items]
    return items  # type: ignore[no-any-return]  # tags: a frozenset of str


def _custom_matches(entity: Entity, cond: Condition) -> bool:
    value = entity.custom.get(cond.field[7:])  # type: ignore[attr-defined]
    if cond.op == "is_null":
        return bool((value is None) == cond.value)
    if value is None:
        return False

    def same(v: Any) -> bool:  # type-exact: True is not 1
        return type(value) is type(v) and bool(value == v)

    if cond.op == "eq":
        return same(cond.value)
    if cond.op == "ne":
        return not same(cond.value)
    if isinstance(cond.value, InValues):
        return cond.value.exact(value)
    return any(same(v) for v in cond.value)  # in


def _scalar(entity: Entity, field: str, kind: str) -> Any:
    if kind == "currency":
        return entity.amount.currency  # type: ignore[attr-defined]
    v = getattr(entity, field)
    if v is None:
        return None
    if kind == "money":
        return v.amount
    if kind == "email":
        return v.value
    if kind == "text" and not isinstance(v, str):
        return getattr(v, "value", None) if not hasattr(v, "stages") else v.name
    return v


def _match(entity: Entity, cond: Condition, tx: MemoryTransaction | None = None) -> bool:
    op, value, kind = cond.op, cond.value, cond.kind
    if op == "any_of":
        return any(all(_match(entity, c, tx) for c in group) for group in value)
    if op == "in_subquery":
        ref = getattr(entity, cond.field, None)
        related = tx._current(value[0], ref) if tx is not None and isinstance(ref, str) else None
        return related is not None and all(_match(related, c, tx) for c in value[1])
    if kind == "custom":
        return _custom_matches(entity, cond)
    if kind in LIST_KINDS:
        have = _list_values(entity, cond.field, kind)
        if op == "eq":
            return value in have
        if op == "ne":
            return value not in have
        if op == "in":
            return any(v in value for v in have)  # a hash lookup per element the entity has
        return bool((not have) == value)  # is_null
    v = _scalar(entity, cond.field, kind)
    if op == "is_null":
        return bool((v is None) == value)
    if v is None:
        return False  # SQL three-valued logic: comparisons with NULL are not true
    if op == "eq":
        return bool(v == value)
    if op == "ne":
        return bool(v != value)
    if op == "in":
        return v in value
    if op == "contains":
        return value.lower() in v.lower()
    if op == "startswith":
        return bool(v.lower().startswith(value.lower()))
    if op == "lt":
        return bool(v < value)
    if op == "lte":
        return bool(v <= value)
    if op == "gt":
        return bool(v > value)
    return bool(v >= value)  # gte


class _Table:
    __slots__ = ("indexes", "rows")

    def __init__(self, kind: type[Entity]):
        self.rows: dict[str, Entity] = {}
        self.indexes: dict[str, dict[str, Any]] = {f: {} for f, k in FIELD_KINDS[kind].items() if k in LIST_KINDS}

    def index_add(self, entity: Entity) -> None:
        for field, index in self.indexes.items():
            for value in _list_values(entity, field, FIELD_KINDS[type(entity)][field]):
                have = index.get(value)
                if have is None:
                    index[value] = entity.id
                elif isinstance(have, str):
                    if have != entity.id:
                        index[value] = [have, entity.id]
                elif entity.id not in have:
                    have.append(entity.id)

    def index_remove(self, entity: Entity) -> None:
        for field, index in self.indexes.items():
            for value in _list_values(entity, field, FIELD_KINDS[type(entity)][field]):
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

    @property
    def url(self) -> str:
        return "memory://"

    def begin(self) -> MemoryTransaction:
        return MemoryTransaction(self)

    def close(self) -> None:
        pass

    def table(self, kind: type[Entity]) -> _Table:
        return self._tables[kind]


class MemoryTransaction:
    def __init__(self, store: MemoryStore):
        self._store = store
        self._changes: dict[type[Entity], dict[str, Any]] = {}
        self._expected: dict[tuple[type[Entity], str], int] = {}
        self._records: dict[tuple[str, str], Any] = {}  # (stream, key) -> JSON text or _DELETED
        self._journal: list[tuple[list[dict[str, Any]], list[dict[str, Any]], bytes | None]] = []
        self._loaded: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = []  # journal_load (restores)

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
        return [e for e in self._candidates(kind, where) if all(_match(e, c, self) for c in where)]

    # ---- Transaction protocol ----
    def insert(self, kind: type[Entity], entities: Sequence[Entity]) -> None:
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
        key = (kind, entity.id)
        if key not in self._expected and entity.id in self._store.table(kind).rows and entity.id not in self._overlay(kind):
            self._expected[key] = expected_version
        self._overlay(kind)[entity.id] = copy_entity(entity)
        return True

    def delete(self, kind: type[Entity], id: str) -> bool:
        cur = self._current(kind, id)
        if cur is None:
            return False
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
                v = sort_key_value(_scalar(e, f, k))
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
        saved = ({k: dict(v) for k, v in self._changes.items()}, dict(self._expected), dict(self._records))
        n_journal = len(self._journal)
        try:
            yield
        except BaseException:
            self._changes, self._expected, self._records = saved
            del self._journal[n_journal:]
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
        start = bisect.bisect_right(log, after, key=lambda r: r["seq"])
        rows = (r for r in log[start:] if entity_id is None or r["entity_id"] == entity_id)
        out = []
        for r in rows:
            out.append(json.loads(json.dumps(r)))
            if limit is not None and len(out) >= limit:
                break
        return out

    def commit(self) -> None:
        store = self._store
        with store._lock:
            for (kind, id), version in self._expected.items():
                cur = store.table(kind).rows.get(id)
                if cur is None or cur.version != version:
                    self._changes.clear()
                    raise ConcurrencyError(f"{kind.__name__} {id!r} was changed by another session; nothing was committed")
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
            for changes, audit, key in self._journal:
                last = store._changes_log[-1]["seq"] if store._changes_log else 0
                store._changes_log += number_changes(last, changes)
                tail: dict[str, Any] = store._audit_log[-1] if store._audit_log else {"seq": 0, "hash": GENESIS_HASH}
                store._audit_log += [e.to_data() for e in chain(int(tail["seq"]), str(tail["hash"]), audit, key)]
        self._journal.clear()
        self._loaded.clear()
        self._changes.clear()
        self._expected.clear()
        self._records.clear()

    def rollback(self) -> None:
        self._journal.clear()
        self._loaded.clear()
        self._loaded.clear()
        self._changes.clear()
        self._expected.clear()
        self._records.clear()
