"""Merges and unmerges, executed: the storage side of :mod:`pycrm.dedup._merge` (which plans them).

``Repository.merge`` / ``unmerge`` / ``merges`` call these. A merge reads the records as stored (encrypted
values stay encrypted, nothing is masked) within the scope of the action, plans the survivor's values, and in
one atomic block re-points every reference to a duplicate, deletes the duplicates, updates the survivor and
keeps a :class:`~pycrm.dedup._merge.MergeRecord`. References the actor cannot see are re-pointed too, past
the gate (they would otherwise point at nothing); what the actor gets back names only what it can read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from pycrm.dedup._merge import MergeRecord, Relink, plan_merge
from pycrm.domain import ENTITIES, Entity, new_id, utcnow
from pycrm.domain._checks import is_id
from pycrm.domain._codec import from_data, to_data
from pycrm.errors import ConcurrencyError, FieldError, NotFound, ValidationError, quote
from pycrm.storage._backend import copy_entity, index_text
from pycrm.storage._gate import not_found
from pycrm.storage._guard import _text_of
from pycrm.storage._repository import _links_to
from pycrm.storage._where import parse_where
from pycrm.storage.port import RowLocks

if TYPE_CHECKING:
    from pycrm.storage._repository import Repository, Session
    from pycrm.storage.port import Transaction

__all__ = ["merge", "merges", "unmerge"]


def merge(
    repo: Repository[Any], survivor_id: str, duplicate_ids: str | Sequence[str], rules: Mapping[str, str] | None = None
) -> MergeRecord:
    """Merge ``duplicate_ids`` into ``survivor_id``; see :mod:`pycrm.dedup._merge` for the rules.

    Records that point at a duplicate are re-pointed to the survivor, the duplicates are deleted, and a
    MergeRecord is stored; all of it happens or none of it does. Undo with :meth:`unmerge`.
    """
    repo._s._check_open()
    dup_ids = _merge_ids(repo, survivor_id, duplicate_ids)
    tx = repo._tx
    stream = f"merged_{repo.kind.entity_name()}"
    for field, id in [("survivor_id", survivor_id), *((f"duplicate_ids[{i}]", d) for i, d in enumerate(dup_ids))]:
        gone = tx.record_get(stream, id)
        if gone is not None:
            raise ValidationError(
                [
                    FieldError(
                        field,
                        "merged_away",
                        f"{repo.kind.__name__} {id!r} was merged into {gone['survivor_id']!r} "
                        f"by merge {gone['merge_id']!r}; unmerge that first",
                    )
                ]
            )
    # the rows are held from here to the end of the transaction (in id order), so what is read below is what
    # is replaced: an update of a duplicate or the survivor waits for the merge instead of being lost, and a
    # stream of updates cannot starve it
    if isinstance(tx, RowLocks):
        tx.lock(repo.kind, [survivor_id, *dup_ids])
    # merges work on the rows as stored (encrypted values stay encrypted, nothing is masked)
    survivor: Any = _stored(repo, survivor_id, "merge", "survivor_id")
    duplicates = [_stored(repo, d, "merge", f"duplicate_ids[{i}]") for i, d in enumerate(dup_ids)]
    guard = repo._s._guard
    guard.check_write(repo.kind, "update", survivor, repo._lookup)
    if rules and not guard.system and isinstance(rules, Mapping):  # a rule picks a value: not one the actor cannot see
        guard.check_visible_fields(repo.kind, [str(f) for f in rules], "merge by")
    values, used = plan_merge(survivor, duplicates, rules)
    for name in repo._s._guard.sealed_fields(repo.kind):  # encrypted emails/phones: one per blind index
        if name in values and isinstance(values[name], list):
            values[name] = list({index_text(_text_of(v)): v for v in reversed(values[name])}.values())[::-1]
    before = {str(e.id): to_data(e) for e in (survivor, *duplicates)}
    now = utcnow()
    relinked: list[Relink] = []
    # every reference moves, those the actor cannot see too (they would point at nothing); only the
    # visible ones are named in what the actor gets back
    every = repo._s._unguarded("a merge re-points every record that points at a duplicate")
    with repo._s._atomic():
        for child, field in _links_to(repo.kind):
            conds = parse_where(child, {field: {"in": list(dup_ids)}})
            for c in every.find(child, conds, [], None, 0):
                assert c.id is not None
                relinked.append(Relink(child.entity_name(), c.id, field, getattr(c, field)))
                _repoint(repo._s, child, c, field, survivor_id, now, every)
        for d, dup in zip(dup_ids, duplicates):
            # the version read is checked before the row goes (a no-op update of it), wherever it is not held
            if not tx.update(repo.kind, dup, dup.version) or not tx.delete(repo.kind, d):
                raise ConcurrencyError(f"{repo.kind.__name__} {d!r} changed in another session during the merge; retry")
            repo._s._journal(repo.kind, "delete", dup, None)
        old_survivor = from_data(repo.kind, before[survivor_id])
        for name, value in values.items():
            if getattr(survivor, name) != value:
                setattr(survivor, name, value)
        repo._write_stored(survivor, old_survivor, now)
        assert survivor.id is not None
        record = MergeRecord(
            id=new_id(),
            kind=repo.kind.entity_name(),
            survivor_id=survivor.id,
            duplicate_ids=tuple(dup_ids),
            rules=used,
            at=now,
            actor_id=repo._s.actor.id if repo._s.actor is not None else None,
            relinked=tuple(relinked),
            before=before,
            after=to_data(survivor),
            survivor_version=survivor.version,
        )
        # the records are written past the gate: the merge checked what they name (no caller may plant one)
        every.record_put("merges", record.id, record.to_data())
        for d in dup_ids:
            every.record_put(stream, d, {"merge_id": record.id, "survivor_id": survivor.id})
        repo._s._event(repo.kind, "merge", survivor.id, {"merge_id": record.id, "duplicate_ids": list(dup_ids)})
    return _shown(repo, record)


def _shown(repo: Repository[Any], record: MergeRecord) -> MergeRecord:
    """A merge record as the actor may see it: snapshots masked, re-pointed records it can read."""
    guard = repo._s._guard
    if guard.system:
        return record
    tx = repo._tx
    visible = tuple(r for r in record.relinked if tx.get(ENTITIES[r.entity], r.id) is not None)
    present = guard.present_data
    return attrs.evolve(
        record,
        relinked=visible,
        before={k: present(repo.kind, v) for k, v in record.before.items()},
        after=present(repo.kind, record.after),
    )


def unmerge(repo: Repository[Any], merge_id: str) -> MergeRecord:
    """Take a merge back: the duplicates return exactly as they were and re-pointed records point back.

    Survivor fields edited after the merge keep their new values; the rest return to their values from
    before the merge. Records added to the survivor after the merge stay with it.
    """
    repo._s._check_open()
    if not is_id(merge_id):
        raise ValidationError([FieldError("merge_id", "invalid_id", f"not a merge id: {quote(merge_id, 70)}")])
    tx = repo._tx
    stored = repo._s._stored("an unmerge restores the records and the survivor as the merge kept them")
    data = stored.record_get("merges", merge_id)
    if data is None:
        raise NotFound(f"no merge with id {merge_id!r}")
    record = MergeRecord.from_data(data)
    if record.kind != repo.kind.entity_name():
        raise ValidationError(
            [FieldError("merge_id", "wrong_kind", f"merge {merge_id!r} merged {record.kind}, not {repo.kind.entity_name()}")]
        )
    if record.undone_at is not None:
        raise ValidationError(
            [FieldError("merge_id", "already_undone", f"merge {merge_id!r} was undone at {record.undone_at.isoformat()}")]
        )
    repo._s._guard.scope(repo.kind, "merge")  # PermissionDenied (recorded) without the right to merge
    if isinstance(tx, RowLocks):  # held while the survivor is read and written back
        tx.lock(repo.kind, [record.survivor_id])
    survivor: Any = stored.get(repo.kind, record.survivor_id)
    if survivor is not None:
        repo._s._guard.check_write(repo.kind, "merge", survivor, repo._lookup)
    if survivor is None:
        raise ValidationError(
            [
                FieldError(
                    "merge_id",
                    "survivor_gone",
                    f"{repo.kind.__name__} {record.survivor_id!r} no longer exists; cannot unmerge",
                )
            ]
        )
    now = utcnow()
    with repo._s._atomic():
        restored = [from_data(repo.kind, record.before[d]) for d in record.duplicate_ids]
        repo._check_duplicate_ids(restored)
        # the survivor gives back first what the merge gave it: a duplicate's unique key goes back with it
        old = from_data(repo.kind, record.before[record.survivor_id])
        current = to_data(survivor)
        changed = False
        was = from_data(repo.kind, current)
        for name in record.rules:
            if current[name] == record.after[name] and current[name] != record.before[record.survivor_id][name]:
                setattr(survivor, name, getattr(old, name))
                changed = True
        if changed:
            repo._write_stored(survivor, was, now)
        tx.insert(repo.kind, restored)
        for r in restored:
            repo._s._journal(repo.kind, "create", None, r)
        every = repo._s._unguarded("an unmerge points back every record its merge re-pointed")
        for link in record.relinked:
            child = ENTITIES[link.entity]
            c = every.get(child, link.id)
            if c is not None and getattr(c, link.field) == record.survivor_id:
                _repoint(repo._s, child, c, link.field, link.old_id, now, every)
        stream = f"merged_{repo.kind.entity_name()}"
        for d in record.duplicate_ids:
            every.record_delete(stream, d)
        actor = repo._s.actor.id if repo._s.actor is not None else None
        done = attrs.evolve(record, undone_at=now, undone_by=actor)
        every.record_put("merges", record.id, done.to_data())
        info = {"merge_id": record.id, "duplicate_ids": list(record.duplicate_ids)}
        repo._s._event(repo.kind, "unmerge", record.survivor_id, info)
    return _shown(repo, done)


def merges(repo: Repository[Any]) -> list[MergeRecord]:
    """Every merge of this kind kept in the store, oldest first (undone ones included)."""
    repo._s._check_open()
    name = repo.kind.entity_name()
    stored = repo._s._stored("merges() lists the records as kept and presents each one")
    records = (MergeRecord.from_data(d) for _, d in stored.record_list("merges"))
    return [_shown(repo, r) for r in records if r.kind == name]


def _merge_ids(repo: Repository[Any], survivor_id: Any, duplicate_ids: Any) -> list[str]:
    repo._check_id(survivor_id)
    ids = [duplicate_ids] if isinstance(duplicate_ids, str) else duplicate_ids
    if not isinstance(ids, (list, tuple)) or not ids:
        raise ValidationError([FieldError("duplicate_ids", "required", "name at least one record to merge")])
    errors = []
    seen: set[str] = set()
    for i, d in enumerate(ids):
        if not is_id(d):
            errors.append(FieldError(f"duplicate_ids[{i}]", "invalid_id", f"not an id: {quote(d, 70)}"))
        elif d == survivor_id:
            errors.append(FieldError(f"duplicate_ids[{i}]", "self_merge", f"cannot merge {d!r} with itself"))
        elif d in seen:
            errors.append(FieldError(f"duplicate_ids[{i}]", "duplicate", f"{d!r} is named twice"))
        else:
            seen.add(d)
    if errors:
        raise ValidationError(errors)
    return list(ids)


def _repoint(s: Session, kind: type[Entity], entity: Any, field: str, to: str, now: dt.datetime, tx: Transaction) -> None:
    before = copy_entity(entity)
    old_version = entity.version
    object.__setattr__(entity, field, to)
    object.__setattr__(entity, "version", old_version + 1)
    object.__setattr__(entity, "updated_at", now)
    if not tx.update(kind, entity, old_version):
        raise ConcurrencyError(f"{kind.__name__} {entity.id!r} changed in another session during the merge; retry")
    s._journal(kind, "update", before, entity)


def _stored(repo: Repository[Any], id: Any, action: str, path: str) -> Any:
    """The row as stored, for ``action`` (merge): NotFound, or PermissionDenied outside the scope."""
    repo._check_id(id)
    found = repo._s._stored_for(repo.kind, id, action)
    if found is None:
        raise NotFound(f"{not_found(repo.kind, id)} ({path})")
    repo._s._guard.check_write(repo.kind, action, found, repo._lookup)
    return found
