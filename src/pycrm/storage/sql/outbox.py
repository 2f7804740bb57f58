"""The outbox of an SQL store (``pycrm_outbox``, revision 0008): the port's :class:`~pycrm.storage.port.Outbox`.

Events are inserted in the writing session's transaction. A claim first updates the ``outbox`` row of
``pycrm_sequences`` -- a row lock on PostgreSQL and MariaDB, the write lock on SQLite -- so claimers take
turns (a claim is a few statements; the deliveries happen after it commits, in parallel), then reads the
pending events by ``seq`` a page at a time (:class:`pycrm.storage._outbox.Picker` keeps each record's events
in order) and marks those it takes with the claimer and a lease. Values reach SQL as bound parameters only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from pycrm.storage._outbox import Picker, erased_custom
from pycrm.storage.sql import tables
from pycrm.storage.sql.mapping import dump_json, json_in
from pycrm.storage.sql.queries import OUTBOX_NEW

if TYPE_CHECKING:
    from pycrm.storage.sql.store import SQLTransaction

__all__ = ["OutboxTables"]

#: Values per ``IN (...)`` list.
_CHUNK = 500
_T = tables.outbox
_COLUMNS = tuple(c for c in _T.c if c.name not in ("claimed_by",))
#: The insert-if-absent of many events on SQLite (names from the schema, values bound).
_SQLITE_ADD = (
    f"INSERT OR IGNORE INTO {_T.name} (event_key, event, entity, entity_id, at, actor_id, data, state, attempts, next_at, "
    "delivered) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, '[]')"
)


def _naive(v: dt.datetime | None) -> dt.datetime | None:
    return None if v is None else v.astimezone(dt.UTC).replace(tzinfo=None)


def _aware(v: Any) -> dt.datetime | None:
    if v is None:
        return None
    if isinstance(v, str):  # SQLite through a raw cursor
        v = dt.datetime.fromisoformat(v)
    return v.replace(tzinfo=dt.UTC)  # type: ignore[no-any-return]


def _row(r: Any) -> dict[str, Any]:
    return {
        "seq": int(r["seq"]),
        "key": r["event_key"],
        "event": r["event"],
        "entity": r["entity"],
        "entity_id": r["entity_id"],
        "at": _aware(r["at"]),
        "actor_id": r["actor_id"],
        "data": json_in(r["data"]),
        "state": r["state"],
        "attempts": int(r["attempts"]),
        "next_at": _aware(r["next_at"]),
        "claimed_until": _aware(r["claimed_until"]),
        "delivered": json_in(r["delivered"]),
        "error": r["error"],
        "done_at": _aware(r["done_at"]),
    }


class OutboxTables:
    """One transaction's outbox."""

    def __init__(self, tx: SQLTransaction):
        self._tx = tx

    def add(self, rows: Sequence[dict[str, Any]], unique: bool) -> int:
        if not rows:
            return 0
        tx = self._tx
        if unique and tx._sqlite:
            return self._add_sqlite(rows)
        naive = tx._cx.dt_out  # as the adapter stores times (text on SQLite)
        values = []
        for r in rows:
            at = naive(r["at"])
            data = r.get("data")
            text = dump_json(data, f"event {r['event']}") if data else "{}"
            values.append(
                (r["key"], r["event"], r.get("entity"), r.get("entity_id"), at, r.get("actor_id"), text, "pending", 0, at, "[]")
            )
        if not unique:
            stmt = tx._q.outbox_insert()
            tx._append(lambda conn: tx._many(stmt, values))  # fresh keys: no savepoint needed
            return len(values)
        insert: Any
        if tx._store.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            insert = pg_insert(_T).on_conflict_do_nothing(index_elements=["event_key"])
        else:
            insert = sa.insert(_T).prefix_with("IGNORE")
        named = [dict(zip(OUTBOX_NEW, v)) for v in values]
        if tx._store.engine.dialect.insert_returning:
            # the rows that went in say how many did, in batched statements (a rowcount says nothing on
            # PostgreSQL, where the insert returns the new seq); without RETURNING: one at a time below
            returning = insert.returning(_T.c.event_key)
            return len(tx._record_write(lambda conn: conn.execute(returning, named).all()))

        def write(conn: sa.Connection) -> int:
            return sum(max(0, conn.execute(insert, v).rowcount) for v in named)  # one at a time: each rowcount

        return int(tx._record_write(write))

    def _add_sqlite(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert-if-absent on SQLite: one ``executemany`` of a prepared ``INSERT OR IGNORE`` on the driver's
        cursor, values in the driver's form (times as the adapter's text); the row count is the sum of the
        rows that went in (an ignored one adds 0). What a run of ``run_due`` writes by the ten thousand."""
        dt_out = self._tx.codec.dt_out
        values = []
        for r in rows:
            at = dt_out(r["at"])
            data = dump_json(r.get("data") or {}, f"event {r['event']}")
            values.append((r["key"], r["event"], r.get("entity"), r.get("entity_id"), at, r.get("actor_id"), data, at))

        def write(conn: sa.Connection) -> int:
            cur = self._tx._cur
            cur.executemany(_SQLITE_ADD, values)
            return int(cur.rowcount)

        return int(self._tx._record_write(write))

    def held(self, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` the outbox holds (``DueQueries.fired``)."""
        out: set[str] = set()
        wanted = sorted(set(keys))
        for i in range(0, len(wanted), _CHUNK):
            stmt = sa.select(_T.c.event_key).where(_T.c.event_key.in_(wanted[i : i + _CHUNK]))
            out.update(self._tx._core(lambda conn, s=stmt: conn.execute(s).scalars().all()))
        return out

    def claim(self, owner: str, now: dt.datetime, until: dt.datetime, limit: int) -> list[dict[str, Any]]:
        seqs = tables.sequences
        picker = Picker(now, limit)
        page = max(limit, 100)

        def run(conn: sa.Connection) -> list[dict[str, Any]]:
            # the claimers' lock: a row lock on PostgreSQL and MariaDB, the write lock on SQLite
            conn.execute(sa.update(seqs).where(seqs.c.name == "outbox").values(value=seqs.c.value + 1))
            after = 0
            while not picker.done:
                stmt = (
                    sa.select(_T.c.seq, _T.c.entity, _T.c.entity_id, _T.c.next_at, _T.c.claimed_until)
                    .where(_T.c.state == "pending", _T.c.seq > after)
                    .order_by(_T.c.seq)
                    .limit(page)
                )
                rows = conn.execute(stmt).mappings().all()
                if not rows:
                    break
                picker.page({**r, "next_at": _aware(r["next_at"]), "claimed_until": _aware(r["claimed_until"])} for r in rows)
                if len(rows) < page:
                    break
                after = int(rows[-1]["seq"])
            taken = picker.taken
            out: list[dict[str, Any]] = []
            for i in range(0, len(taken), _CHUNK):
                part = taken[i : i + _CHUNK]
                conn.execute(sa.update(_T).where(_T.c.seq.in_(part)).values(claimed_by=owner, claimed_until=_naive(until)))
                out += [_row(r) for r in conn.execute(sa.select(*_COLUMNS).where(_T.c.seq.in_(part))).mappings()]
            return sorted(out, key=lambda r: r["seq"])

        return self._tx._record_write(run)  # type: ignore[no-any-return]

    def settle(self, owner: str, rows: Sequence[dict[str, Any]]) -> int:
        if not rows:
            return 0
        stmt = (
            sa.update(_T)
            .where(_T.c.seq == sa.bindparam("b_seq"), _T.c.claimed_by == sa.bindparam("b_owner"))
            .values(
                state=sa.bindparam("b_state"),
                attempts=sa.bindparam("b_attempts"),
                next_at=sa.bindparam("b_next_at"),
                delivered=sa.bindparam("b_delivered"),
                error=sa.bindparam("b_error"),
                done_at=sa.bindparam("b_done_at"),
                claimed_by=None,
                claimed_until=None,
            )
        )
        values = [
            {
                "b_seq": r["seq"],
                "b_owner": owner,
                "b_state": r["state"],
                "b_attempts": r["attempts"],
                "b_next_at": _naive(r["next_at"]),
                "b_delivered": dump_json(list(r.get("delivered") or ()), "delivered"),
                "b_error": r.get("error"),
                "b_done_at": _naive(r.get("done_at")),
            }
            for r in rows
        ]
        n = self._tx._record_write(lambda conn: conn.execute(stmt, values).rowcount)
        return int(n) if isinstance(n, int) and n >= 0 else len(values)

    def list(self, state: str | None, after: int, limit: int) -> list[dict[str, Any]]:
        stmt = sa.select(*_COLUMNS).where(_T.c.seq > after).order_by(_T.c.seq).limit(limit)
        if state is not None:
            stmt = stmt.where(_T.c.state == state)
        return [_row(r) for r in self._tx._core(lambda conn: conn.execute(stmt).mappings().all())]

    def retry(self, seqs: Sequence[int] | None, now: dt.datetime) -> int:
        values = {"state": "pending", "attempts": 0, "next_at": _naive(now), "claimed_by": None, "claimed_until": None}
        if seqs is None:
            stmt = sa.update(_T).where(_T.c.state == "dead").values(**values)
            return int(self._tx._record_write(lambda conn: conn.execute(stmt).rowcount))
        n = 0
        wanted = sorted(set(seqs))
        for i in range(0, len(wanted), _CHUNK):
            part = wanted[i : i + _CHUNK]
            stmt = sa.update(_T).where(_T.c.state == "dead", _T.c.seq.in_(part)).values(**values)
            n += int(self._tx._record_write(lambda conn, s=stmt: conn.execute(s).rowcount))
        return n

    def counts(self) -> dict[str, int]:
        stmt = sa.select(_T.c.state, sa.func.count()).group_by(_T.c.state)
        got = {str(s): int(n) for s, n in self._tx._core(lambda conn: conn.execute(stmt).all())}
        return {s: got.get(s, 0) for s in ("pending", "done", "dead")}

    def erase(self, records: Mapping[str, Sequence[str]]) -> int:
        n = 0
        for entity, ids in records.items():
            wanted = sorted(set(ids))
            for i in range(0, len(wanted), _CHUNK):
                part = wanted[i : i + _CHUNK]
                find = sa.select(_T.c.seq, _T.c.data).where(
                    _T.c.event == "CustomEvent", _T.c.entity == entity, _T.c.entity_id.in_(part)
                )
                for seq, data in self._tx._core(lambda conn, s=find: conn.execute(s).all()):
                    blank = erased_custom(json_in(data))
                    if blank is None:
                        continue
                    stmt = sa.update(_T).where(_T.c.seq == seq).values(data=dump_json(blank, "data"))
                    self._tx._record_write(lambda conn, s=stmt: conn.execute(s))
                    n += 1
        return n
