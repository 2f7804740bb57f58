"""The journal of an SQL store: change events and audit entries written, loaded, erased and read back.

``SQLTransaction`` hands its journal operations (the port's ``journal``, ``journal_load``, ``audit_erase``,
``changes_since``, ``changes_last``, ``audit_list``, ``audit_last``) to a :class:`JournalTables` of its own:
numbering and chaining happen under the sequences' row locks, in the transaction's connection.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from pycrm.security._audit import MalformedJSON, erasure_marker
from pycrm.storage.sql import tables
from pycrm.storage.sql.mapping import dump_json, json_in

if TYPE_CHECKING:
    from pycrm.storage.sql.store import SQLTransaction

__all__ = ["JournalTables"]

#: Ids per statement when erasing audit diffs.
_ERASE_CHUNK = 500


class JournalTables:
    """One transaction's journal tables."""

    def __init__(self, tx: SQLTransaction):
        self._tx = tx

    def journal(self, changes: Sequence[dict[str, Any]], audit: Sequence[dict[str, Any]], *, key: bytes | None = None) -> None:
        """Append change events and audit drafts, numbered (and chained) under the sequences' row locks."""
        from pycrm.storage._journal import chain_rows

        seqs = tables.sequences
        naive = self._tx._cx.dt_out  # as entity timestamps are stored (text on SQLite)

        def write(conn: sa.Connection) -> None:
            # the row locks are held to the end of the transaction: one journal writer at a time
            tails = {
                name: (int(value), last)
                for name, value, last in conn.execute(
                    sa.select(seqs.c.name, seqs.c.value, seqs.c.last_hash)
                    .where(seqs.c.name.in_(["changes", "audit"]))
                    .order_by(seqs.c.name)
                    .with_for_update()
                )
            }
            if changes:
                first = tails["changes"][0] + 1
                skip, rows = _change_rows(changes, first, naive, self._tx)
                self._tx._many(self._tx._q.journal_insert("changes", skip), rows)
                conn.execute(sa.update(seqs).where(seqs.c.name == "changes").values(value=first + len(rows) - 1))
            if audit:
                last_seq, last_hash = tails["audit"]
                entries = chain_rows(last_seq, last_hash or "0" * 64, audit, key)
                skip, rows = _audit_rows(audit, entries, naive, self._tx)
                self._tx._many(self._tx._q.journal_insert("audit", skip), rows)
                seq, _, _, digest, _ = entries[-1]
                conn.execute(sa.update(seqs).where(seqs.c.name == "audit").values(value=seq, last_hash=digest))

        self._tx._record_write(write)

    def journal_load(self, changes: Sequence[dict[str, Any]], audit: Sequence[dict[str, Any]]) -> None:
        """Store journal rows exactly as given (a restore): sequence numbers and hashes kept."""
        seqs = tables.sequences
        out = self._tx._cx.dt_out

        def naive(at: Any) -> Any:  # audit rows carry ISO text (AuditEntry.to_data), change rows datetimes
            return out(at if isinstance(at, dt.datetime) else dt.datetime.fromisoformat(at))

        def write(conn: sa.Connection) -> None:
            if changes:
                self._tx._many(
                    self._tx._q.journal_insert("changes"),
                    [
                        (
                            r["seq"],
                            naive(r["at"]),
                            r["entity"],
                            r["entity_id"],
                            r["op"],
                            r["version"],
                            dump_json(r["fields"], "fields"),
                            r["actor_id"],
                        )
                        for r in changes
                    ],
                )
                top = max(r["seq"] for r in changes)
                conn.execute(sa.update(seqs).where(seqs.c.name == "changes", seqs.c.value < top).values(value=top))
            if audit:
                self._tx._many(
                    self._tx._q.journal_insert("audit"),
                    [
                        (
                            r["seq"],
                            naive(r["at"]),
                            r["actor_id"],
                            r["action"],
                            r["entity"],
                            r["entity_id"],
                            dump_json(r["diff"], "diff"),
                            r["prev_hash"],
                            r["hash"],
                            r.get("diff_digest"),
                        )
                        for r in audit
                    ],
                )
                last = max(audit, key=lambda r: r["seq"])
                conn.execute(
                    sa.update(seqs)
                    .where(seqs.c.name == "audit", seqs.c.value < last["seq"])
                    .values(value=last["seq"], last_hash=last["hash"])
                )

        self._tx._record_write(write)

    def audit_erase(self, records: Mapping[str, Sequence[str]], erasure_id: str, *, key: bytes | None = None) -> None:
        """The erased diffs written in place (see the port); entries without a digest one by one, sealed."""
        from pycrm.storage._journal import erased_row

        t = tables.audit
        marker = erasure_marker(erasure_id)
        text = dump_json(marker, "diff")

        def write(conn: sa.Connection) -> None:
            for entity, ids in records.items():
                wanted = sorted(set(ids))
                for start in range(0, len(wanted), _ERASE_CHUNK):
                    about = (
                        (t.c.entity == entity)
                        & t.c.entity_id.in_(wanted[start : start + _ERASE_CHUNK])
                        & (t.c.action != "erase")
                        & t.c.diff.not_like('{"erased":%')
                    )
                    conn.execute(sa.update(t).where(about, t.c.diff_digest.is_not(None)).values(diff=text))
                    legacy = conn.execute(sa.select(*_AUDIT_COLUMNS).where(about, t.c.diff_digest.is_(None))).mappings().all()
                    chosen = {entity: frozenset(wanted)}
                    for r in legacy:
                        out = erased_row({**r, "at": _audit_time(r["at"]), "diff": None}, chosen, marker, key)
                        if out is not None:
                            conn.execute(
                                sa.update(t).where(t.c.seq == r["seq"]).values(diff=text, diff_digest=out["diff_digest"])
                            )

        self._tx._record_write(write)

    def changes_since(self, cursor: int, limit: int) -> list[dict[str, Any]]:
        t = tables.changes
        stmt = sa.select(t).where(t.c.seq > cursor).order_by(t.c.seq).limit(limit)
        rows = self._tx._core(lambda conn: conn.execute(stmt).mappings().all())
        return [{**r, "at": r["at"].replace(tzinfo=dt.UTC), "fields": json_in(r["fields"])} for r in rows]

    def changes_last(self) -> int:
        t = tables.sequences
        stmt = sa.select(t.c.value).where(t.c.name == "changes")
        return int(self._tx._core(lambda conn: conn.execute(stmt).scalar_one_or_none()) or 0)

    def audit_list(self, after: int, limit: int | None, entity_id: str | None) -> list[dict[str, Any]]:
        t = tables.audit
        stmt = sa.select(*_AUDIT_COLUMNS).where(t.c.seq > after).order_by(t.c.seq)
        if entity_id is not None:
            stmt = stmt.where(t.c.entity_id == entity_id)
        if limit is not None:
            stmt = stmt.limit(limit)
        return self._audit_rows(stmt)

    def audit_last(self) -> dict[str, Any] | None:
        t = tables.audit
        # the primary key's index, backwards
        rows = self._audit_rows(sa.select(*_AUDIT_COLUMNS).order_by(t.c.seq.desc()).limit(1))
        return rows[0] if rows else None

    def _audit_rows(self, stmt: Any) -> list[dict[str, Any]]:
        rows = self._tx._core(lambda conn: conn.execute(stmt).mappings().all())
        return [{**r, "at": _audit_time(r["at"]), "diff": _audit_diff(r["diff"]), "seq": int(r["seq"])} for r in rows]


def _change_rows(
    changes: Sequence[Mapping[str, Any]], first: int, naive: Any, tx: SQLTransaction
) -> tuple[tuple[int, ...], list[tuple[Any, ...]]]:
    """``(skipped columns, rows)`` of the change events numbered from ``first`` (see ``_null_columns``)."""
    texts: dict[tuple[str, ...], str] = {}  # a new row's field list is the same every time
    at_in: Any = None
    at_stored: Any = None
    rows: list[tuple[Any, ...]] = []
    # the system actor's changes (no actor): rows without that column, as _null_columns would make them
    no_actor = tx._sqlite and all(r["actor_id"] is None for r in changes)
    for seq, r in enumerate(changes, start=first):
        names = tuple(r["fields"])
        text = texts.get(names)
        if text is None:
            text = texts[names] = dump_json(r["fields"], "fields")
        if r["at"] is not at_in:  # the changes of one write share their time
            at_in, at_stored = r["at"], naive(r["at"])
        if no_actor:
            rows.append((seq, at_stored, r["entity"], r["entity_id"], r["op"], r["version"], text))
        else:
            rows.append((seq, at_stored, r["entity"], r["entity_id"], r["op"], r["version"], text, r["actor_id"]))
    return ((7,), rows) if no_actor else tx._null_columns(rows)


def _audit_rows(
    audit: Sequence[Mapping[str, Any]], entries: Sequence[tuple[int, str, str, str, str]], naive: Any, tx: SQLTransaction
) -> tuple[tuple[int, ...], list[tuple[Any, ...]]]:
    """``(skipped columns, rows)`` of the audit drafts chained as ``entries`` (see ``_null_columns``)."""
    at_seen: Any = None
    at_out: Any = None
    rows: list[tuple[Any, ...]] = []
    no_actor = tx._sqlite and all(d["actor_id"] is None for d in audit)
    for d, (seq, text, prev, digest, dd) in zip(audit, entries):
        if d["at"] is not at_seen:  # the entries of one write share their time
            at_seen, at_out = d["at"], naive(d["at"])
        if no_actor:
            rows.append((seq, at_out, d["action"], d["entity"], d["entity_id"], text, prev, digest, dd))
        else:
            rows.append((seq, at_out, d["actor_id"], d["action"], d["entity"], d["entity_id"], text, prev, digest, dd))
    return ((2,), rows) if no_actor else tx._null_columns(rows)


#: The audit table's columns as read back: the time as the driver gives it (a date-time, or SQLite's text),
#: so a row whose time was tampered into something else is read, and named by ``verify()``, not a crash.
_AUDIT_COLUMNS = [sa.type_coerce(c, sa.String).label("at") if c.name == "at" else c for c in tables.audit.c]


def _audit_time(value: Any) -> Any:
    """A stored audit time as UTC ISO 8601 text; what is not a time is returned as it is (verify names it)."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    return value.replace(tzinfo=dt.UTC).isoformat() if isinstance(value, dt.datetime) else value


def _audit_diff(text: Any) -> Any:
    """A stored audit diff, parsed; text that is not JSON comes back marked, for verify() to name."""
    try:
        return json_in(text)
    except ValueError as exc:
        return MalformedJSON(str(text), str(exc))
