"""Key rotation (``crm.rotate_keys()``): every envelope a store holds re-encrypted under the active key.

An envelope (:mod:`pycrm.security._crypto`) can live in three places, and rotation walks all three, so
that once it is done the old keys can leave the key ring without any record becoming unreadable:

* **entity rows** of the repositories with encrypted fields: sealed custom values and the elements of
  encrypted ``emails`` / ``phones`` (``bi:<index>|<envelope>``);
* **merge records** (stream ``merges``): the snapshot of every merged record as it was (``before``) and
  of the survivor as the merge left it (``after``), taken as stored, so sealed; ``unmerge`` brings them
  back. The ``merged_<repository>`` streams hold ids only;
* **archive records** (stream ``archive_<repository>``): each archived entity as stored.

The journals hold none: the audit trail shows an encrypted value that changed as ``"changed"`` (its
hash chain could not be rewritten anyway) and the change feed names fields, never values
(tests/security/test_rotation_everywhere.py scans both after every kind of write).

Blind indexes do not change: they are made with the ring's separate index key, not the encryption keys.
Work goes in batches of ``batch_size`` rows or records, each its own transaction, so a large store is
rotated without one long lock, and an interrupted rotation can simply be run again (what is already under
the active key is left alone). A row changed by another session meanwhile is a ConcurrencyError (run it
again); records carry no version, so run it while no merge, unmerge or archive run is under way: a record
rewritten by one of those between rotation's read and its write would lose that change.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pycrm.domain import ENTITIES, Entity, utcnow
from pycrm.domain._codec import from_data, to_data
from pycrm.errors import EncryptionError, FieldError, ValidationError
from pycrm.security import KeyRing, is_encrypted
from pycrm.storage._gate import MERGES, archive_stream
from pycrm.storage._guard import BLIND_PREFIX, LIST_INDEX_PREFIX, SEALED_LISTS
from pycrm.storage._where import Condition, OrderBy

if TYPE_CHECKING:
    from pycrm._crm import CRM
    from pycrm.storage._backend import Transaction
    from pycrm.storage._repository import Session

__all__ = ["MERGES", "archive_stream", "rotate_data", "rotate_store"]


def rotate_data(
    ring: KeyRing,
    repository: str,
    fields: tuple[str, ...],
    data: Mapping[str, Any],
    where: str,
    like: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """``data`` (an entity's ``to_data``, as stored) with every envelope of ``fields`` under the active key,
    or None when nothing needed it. ``fields``: what is encrypted, as ``custom.<key>``, ``emails`` or
    ``phones``; ``where`` names the row or record in an EncryptionError.

    ``like``: the live row ``data`` is a snapshot of (a merge record's survivor). A value the row still
    holds (same blind index) takes the row's envelope instead of a fresh one, so the snapshot and the row
    stay equal where they were: ``unmerge`` tells "edited since the merge" by that equality.
    """
    custom = data.get("custom")
    new_custom = dict(custom) if isinstance(custom, Mapping) else None
    live_custom = like.get("custom") if like is not None else None
    changes: dict[str, Any] = {}
    for f in fields:
        field = f"{repository}.{f}"
        if f.startswith("custom."):
            key = f[7:]
            token = new_custom.get(key) if new_custom is not None else None
            if isinstance(token, str) and is_encrypted(token):
                assert new_custom is not None
                index = new_custom.get(BLIND_PREFIX + key)
                same = None
                if isinstance(live_custom, Mapping) and index is not None and live_custom.get(BLIND_PREFIX + key) == index:
                    same = live_custom.get(key)
                new = _rotate(ring, token, field, where, same)
                if new != token:
                    new_custom[key] = new
                    changes["custom"] = new_custom
        elif f in SEALED_LISTS and isinstance(data.get(f), list):
            live_items = like.get(f) if like is not None else None
            live = dict(_split(x) for x in live_items if isinstance(x, str)) if isinstance(live_items, list) else {}
            items = list(data[f])
            for i, item in enumerate(items):
                text = item if isinstance(item, str) else ""
                index, token = _split(text)
                if text.startswith(LIST_INDEX_PREFIX) and token:
                    new = _rotate(ring, token, field, where, live.get(index))
                    if new != token:
                        items[i] = f"{index}|{new}"
                        changes[f] = items
                elif is_encrypted(text):
                    raise EncryptionError(f"{where}: {field}[{i}] is an envelope without its blind index")
    return {**data, **changes} if changes else None


def _split(element: str) -> tuple[str, str]:
    """An encrypted list element ``bi:<index>|<envelope>`` as (index, envelope)."""
    index, _, token = element.partition("|")
    return index, token


def _rotate(ring: KeyRing, token: str, field: str, where: str, same: Any = None) -> str:
    """``token`` under the active key: ``same`` (an envelope of the same value) when it already is."""
    try:
        if not ring.needs_rotation(token, field):
            return token
        if isinstance(same, str) and is_encrypted(same) and not ring.needs_rotation(same, field):
            return same
        return ring.rotate(token, field)
    except EncryptionError as exc:
        raise EncryptionError(f"{where}: {exc}") from None


def rotate_store(crm: CRM, batch_size: int) -> int:
    """Rotate every envelope of ``crm``'s store (see the module's docstring); how many rows and records changed."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError([FieldError("batch_size", "type", f"expected a whole number >= 1, got {batch_size!r}")])
    ring = crm.security.keyring
    encrypted = crm.security.encrypted
    if ring is None or not encrypted:
        return 0
    changed = 0
    for repo, fields in encrypted.items():
        kind = ENTITIES[repo]
        after = ""
        while True:
            with crm.session() as s:
                n, after = _rotate_rows(s, ring, kind, fields, after, batch_size)
                changed += n
            if not after:
                break
        changed += _rotate_stream(crm, archive_stream(repo), batch_size, functools.partial(_archived, ring, repo, fields))
    changed += _rotate_stream(crm, MERGES, batch_size, functools.partial(_merge_record, ring, encrypted))
    return changed


def _rotate_rows(
    session: Session, ring: KeyRing, kind: type[Entity], fields: tuple[str, ...], after: str, batch_size: int
) -> tuple[int, str]:
    """Re-encrypt one batch of ``kind`` rows with ids after ``after``.

    Returns (rows changed, the last id read, or "" when the table is done).
    """
    tx = session._transaction()
    conds = [Condition("id", "gt", after, "text")] if after else []
    rows = tx.find(kind, conds, [OrderBy("id")], batch_size, 0)
    repo = kind.entity_name()
    changed = 0
    for row in rows:
        new = rotate_data(ring, repo, fields, to_data(row), f"{kind.__name__} {row.id!r}")
        if new is not None:
            session._repository(repo)._write_stored(from_data(kind, new), row, utcnow())
            changed += 1
    last = str(rows[-1].id) if len(rows) == batch_size else ""
    return changed, last


def _rotate_stream(crm: CRM, stream: str, batch_size: int, rotate: Callable[[Transaction, str, Any], Any | None]) -> int:
    """Rotate the records of ``stream`` that need it, ``batch_size`` records per transaction.

    One pass reads the stream to find the records holding an envelope under another key (only their keys
    are kept, and nothing is decrypted); each batch then reads its records again in its own transaction,
    so a record changed in between is not overwritten.
    """
    ring = crm.security.keyring
    assert ring is not None
    with crm.session() as s:
        todo = [key for key, data in s._transaction().record_list(stream) if _stale(ring, data)]
    changed = 0
    for start in range(0, len(todo), batch_size):
        with crm.session() as s:
            tx = s._transaction()
            for key in todo[start : start + batch_size]:
                data = tx.record_get(stream, key)
                new = None if data is None else rotate(tx, key, data)
                if new is not None:
                    tx.record_put(stream, key, new)
                    changed += 1
    return changed


def _stale(ring: KeyRing, data: Any) -> bool:
    """Whether JSON-safe ``data`` holds an envelope (alone, or in a ``bi:<index>|<envelope>`` element) under a
    key other than the active one, or one that cannot be read (rotating it then names it)."""
    if isinstance(data, str):
        token = data.partition("|")[2] if data.startswith(LIST_INDEX_PREFIX) else data
        if not is_encrypted(token):
            return False
        try:
            return ring.needs_rotation(token)
        except EncryptionError:
            return True
    if isinstance(data, Mapping):
        return any(_stale(ring, v) for v in data.values())
    if isinstance(data, list):
        return any(_stale(ring, v) for v in data)
    return False


def _archived(ring: KeyRing, repo: str, fields: tuple[str, ...], tx: Transaction, key: str, data: Any) -> dict[str, Any] | None:
    if not isinstance(data, Mapping):
        raise EncryptionError(f"archived {repo} {key!r}: not a record (cannot rotate its keys)")
    return rotate_data(ring, repo, fields, data, f"archived {ENTITIES[repo].__name__} {key!r}")


def _merge_record(
    ring: KeyRing, encrypted: Mapping[str, tuple[str, ...]], tx: Transaction, key: str, data: Any
) -> dict[str, Any] | None:
    """A merge record with its snapshots rotated (``before`` by id, and ``after``), or None.

    ``after`` takes the live survivor's envelopes for the values it still holds (see :func:`rotate_data`):
    the rows are rotated before the merge records, so those envelopes are already under the active key.
    """
    if not isinstance(data, Mapping):
        raise EncryptionError(f"merge record {key!r}: not a record (cannot rotate its keys)")
    repo = data.get("kind")
    fields = encrypted.get(repo) if isinstance(repo, str) else None
    if not fields:
        return None
    assert isinstance(repo, str)
    out: dict[str, Any] = {}
    before = data.get("before")
    if isinstance(before, Mapping):
        snapshots = dict(before)
        for id, snap in before.items():
            if not isinstance(snap, Mapping):
                continue
            new = rotate_data(ring, repo, fields, snap, f"merge record {key!r} (before: {id!r})")
            if new is not None:
                snapshots[id] = new
                out["before"] = snapshots
    after = data.get("after")
    if isinstance(after, Mapping):
        survivor = data.get("survivor_id")
        live = tx.get(ENTITIES[repo], survivor) if isinstance(survivor, str) else None
        like = to_data(live) if live is not None else None
        new = rotate_data(ring, repo, fields, after, f"merge record {key!r} (after)", like)
        if new is not None:
            out["after"] = new
    return {**data, **out} if out else None
