"""Unique upsert keys in an SQL store: the key table, its registry and the upsert locks.

What is unique and how a value is keyed is :mod:`pycrm.storage._keys`; here is how the SQL adapter keeps
it (tables of revision 0007, see ``tables.py``):

* ``customer_keys (name, value, customer_id)``, primary key (name, value): a customer's insert, update and
  delete write its key rows in the same savepoint as its row, so the database refuses a second holder of
  a value -- also one written by a concurrent transaction, which the insert waits for (up to the lock
  timeout) and fails on once it commits. The failure becomes ``duplicate_key_error`` for the rows whose
  values are taken (:meth:`KeyTables.taken_error`).
* ``pycrm_unique_keys (entity, names)``: the keys held, a JSON list per entity. A transaction reads its
  entity's row once, at its first customer write, with a locking read that holds the row in share mode
  (``FOR KEY SHARE`` / ``LOCK IN SHARE MODE``; on SQLite the write lock holds everything) to its end. A
  declaration (``SQLStore.declare_keys``) locks the row exclusively and then changes it, so it waits for
  the writers that read the list before it, and a writer that waited for it reads the new list (a locking
  read returns the row's newest version): no customer is written between the keying of the stored ones
  and the registration without its key row.
* ``pycrm_key_locks (name)``: the upsert locks (``KeyLocks``), a row per ``<repository>.<field>`` made when
  first needed and locked ``FOR UPDATE`` to the end of the transaction, waiting up to
  :data:`KEY_LOCK_WAIT` seconds. On SQLite the database's write lock (``BEGIN IMMEDIATE``) is the lock.

:func:`backfill` keys the customers already stored (``declare_keys``, and migration 0007 for
``custom.external_id``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from pycrm.domain import Entity
from pycrm.errors import ConcurrencyError, CRMError
from pycrm.storage._keys import KEY_NAME, KEYED, custom_keys, duplicate_key_error, duplicates_error
from pycrm.storage.sql import tables
from pycrm.storage.sql.errors import is_unique_violation
from pycrm.storage.sql.mapping import MAPPERS, dump_json, json_in

if TYPE_CHECKING:
    from pycrm.storage.sql.store import SQLTransaction

__all__ = ["KEY_LOCK_WAIT", "KeyTables", "KeyTaken", "backfill", "make_rows", "register", "registered"]

#: Seconds an upsert waits for another one's lock on the same key (``KeyLocks``) before a ConcurrencyError:
#: longer than the store's lock timeout, since the other holds it for a whole import.
KEY_LOCK_WAIT = 60
#: Customers read per batch when keying the stored ones, and key values per ``IN`` list.
_BATCH = 2000
_CHUNK = 500

#: A key row: (name, key text, customer id, position of the row in the batch written).
KeyRow = tuple[str, str, str, int]


class KeyTaken(Exception):
    """A key row could not be inserted: another customer holds the value (the write is undone first)."""

    def __init__(self, rows: Sequence[KeyRow]):
        super().__init__("a unique key value is taken")
        self.rows = rows


class KeyTables:
    """One transaction's key tables."""

    def __init__(self, tx: SQLTransaction):
        self._tx = tx
        self._names: dict[type[Entity], tuple[str, ...]] = {}

    # ---- the registry ----
    def unique_keys(self, kind: type[Entity]) -> frozenset[str]:
        """``UniqueKeys``: the keys held unique for ``kind`` as stored (a plain read)."""
        if kind not in KEYED:
            return frozenset()
        got = self._names.get(kind)
        return frozenset(got if got is not None else registered(self._tx.connection, kind))

    def names(self, kind: type[Entity]) -> tuple[str, ...]:
        """The keys a write of ``kind`` keeps, read once per transaction with the registry row held in share
        mode (on SQLite: once the transaction writes)."""
        if kind not in KEYED:
            return ()
        got = self._names.get(kind)
        if got is None:
            tx = self._tx
            if tx._sqlite and not tx._writing:
                tx._begin_writing()
            hold = "none" if tx._sqlite else "share"
            got = self._names[kind] = tx._core(lambda conn: registered(conn, kind, hold))
        return got

    # ---- writing ----
    def rows(self, kind: type[Entity], rows: Sequence[tuple[Any, ...]]) -> list[KeyRow]:
        """The key rows of new table rows of ``kind`` (ids first, ``custom`` as JSON text); a ValidationError
        for a value two of them hold."""
        names = self.names(kind)
        if not names:
            return []
        col = MAPPERS[kind].columns.index("custom")
        needles = [f'"{n[7:]}"' for n in names]
        out: list[KeyRow] = []
        first: dict[tuple[str, str], int] = {}
        taken: list[tuple[int | None, str]] = []
        many = len(rows) > 1
        for i, r in enumerate(rows):
            text = r[col]
            if text == "{}" or (isinstance(text, str) and not _may_hold(text, needles)):
                continue
            for name, value in custom_keys(json_in(text), names):
                if first.setdefault((name, value), i) != i:
                    taken.append((i if many else None, name))
                else:
                    out.append((name, value, r[0], i))
        if taken:
            raise duplicate_key_error(kind, taken)
        return out

    def insert(self, rows: Sequence[KeyRow]) -> None:
        """Insert key rows (inside the caller's savepoint); :class:`KeyTaken` when a value is held."""
        if not rows:
            return
        tx = self._tx
        try:
            tx._many(self._insert_stmt(), [r[:3] for r in rows])
        except tx._error as exc:
            if is_unique_violation(exc, tx._store.dialect):
                raise KeyTaken(rows) from None
            raise

    def replace(self, kind: type[Entity], entity: Any) -> None:
        """After an update of ``entity``: its key rows follow its values (inside the caller's savepoint, after
        the row's update). The transaction's first write of ``kind`` reads the registry row (held in share
        mode) in the same statement as the key rows."""
        if kind not in KEYED:
            return
        t = tables.customer_keys
        tx = self._tx
        cached = self._names.get(kind)
        try:
            if cached is not None:
                names = cached
                stmt = sa.select(t.c.name, t.c.value).where(t.c.customer_id == entity.id)
                had = {(n, v) for n, v in tx._core(lambda conn: conn.execute(stmt).all())}
            else:
                names, had = tx._core(lambda conn: _registered_with_keys(conn, kind, entity.id, not tx._sqlite))
                self._names[kind] = names
            has = set(custom_keys(entity.custom, names))
            gone = had - has
            if gone:
                drop = sa.delete(t).where(t.c.customer_id == entity.id, sa.tuple_(t.c.name, t.c.value).in_(sorted(gone)))
                tx._core(lambda conn: conn.execute(drop))
            self.insert([(n, v, entity.id, 0) for n, v in sorted(has - had)])
        except BaseException:
            if cached is None:  # read inside the savepoint the failure undoes (and its lock with it)
                self._names.pop(kind, None)
            raise

    def delete(self, kind: type[Entity], id: str) -> None:
        """Before a delete of ``id``: its key rows go (inside the caller's savepoint)."""
        if kind in KEYED:
            t = tables.customer_keys
            self._tx._core(lambda conn: conn.execute(sa.delete(t).where(t.c.customer_id == id)))

    def taken_error(self, kind: type[Entity], rows: Sequence[KeyRow], written: int) -> Exception:
        """After :class:`KeyTaken` (the write undone): ``duplicate_key_error`` for the rows whose values another
        customer holds, or a ConcurrencyError when none is held any more (its writer rolled back)."""
        held = _held(self._tx.connection, [(n, v) for n, v, _, _ in rows])
        many = written > 1
        taken = [(i if many else None, n) for n, v, _, i in rows if (n, v) in held]
        if not taken:
            return ConcurrencyError(f"{kind.__name__}: another session was writing the same unique key value; retry")
        return duplicate_key_error(kind, list(dict.fromkeys(taken)))

    def _insert_stmt(self) -> Any:
        q = self._tx._q

        def build() -> Any:
            t = tables.customer_keys
            names = ["v_name", "v_value", "v_id"]
            clause = sa.insert(t).values({c: sa.bindparam(n) for c, n in zip(("name", "value", "customer_id"), names)})
            return q._compile(clause, names)

        return q._cached(("key_insert",), build)

    # ---- the upsert locks ----
    def lock(self, kind: type[Entity], fields: Sequence[str]) -> None:
        """``KeyLocks``: hold the upsert lock of each field to the end of the transaction."""
        tx = self._tx
        if tx._sqlite:
            if not tx._writing:
                with _sqlite_wait(tx, KEY_LOCK_WAIT):
                    tx._begin_writing()
            return
        names = sorted({f"{kind.entity_name()}.{f}"[: KEY_NAME + 40] for f in fields})
        if not names:
            return
        t = tables.key_locks
        dialect = tx._store.dialect
        hold = sa.select(t.c.name).where(t.c.name.in_(names)).order_by(t.c.name).with_for_update()
        own = tx._savepoint()
        try:
            with _server_wait(tx, dialect, KEY_LOCK_WAIT):
                conn = tx.connection
                if len(conn.execute(hold).all()) < len(names):
                    _make_lock_rows(tx._store.engine, dialect, names)
                    conn.execute(hold).all()
            tx._release_savepoint(own)
        except sa.exc.DBAPIError as exc:
            tx._undo(own)
            if isinstance(exc.orig, tx._error):
                raise tx._translate(exc.orig, kind, "lock") from None
            raise
        except BaseException:
            tx._undo(own)
            raise

    # ---- declaring keys ----
    def declare(self, kind: type[Entity], names: Sequence[str]) -> None:
        """``DeclaredKeys`` in this transaction: register the keys not held yet and key the stored customers;
        a CRMError (``duplicates_error``) when some share a value."""
        if kind not in KEYED:
            raise CRMError(f"{kind.__name__} has no custom fields to hold unique")
        wanted = list(dict.fromkeys(names))
        if not set(wanted) - self.unique_keys(kind):
            return
        tx = self._tx
        if tx._sqlite:
            tx._begin_writing()
        conn = tx.connection
        # every writer that read the registry has ended, and the next ones wait for this one and read its list
        held = registered(conn, kind, "none" if tx._sqlite else "update")
        new = [n for n in wanted if n not in held]
        if not new:
            return
        shared = backfill(conn, new)
        for name in new:
            if shared.get(name):
                groups, total = shared[name]
                raise duplicates_error(kind, name, groups, total)
        register(conn, kind, [*held, *new])
        self._names.pop(kind, None)


def registered(conn: sa.Connection, kind: type[Entity], hold: str = "none") -> tuple[str, ...]:
    """The key names registered for ``kind``; ``hold``: the registry row locked in ``share`` or ``update`` mode."""
    t = tables.unique_keys
    stmt = sa.select(t.c.names).where(t.c.entity == kind.entity_name())
    if hold == "share":
        stmt = stmt.with_for_update(read=True, key_share=True)
    elif hold == "update":
        stmt = stmt.with_for_update()
    text = conn.execute(stmt).scalar_one_or_none()
    return tuple(json_in(text)) if text is not None else ()


def _registered_with_keys(
    conn: sa.Connection, kind: type[Entity], id: str, hold: bool
) -> tuple[tuple[str, ...], set[tuple[str, str]]]:
    """:func:`registered` (the registry row held in share mode if ``hold``) and the key rows of ``id``, in one
    statement."""
    r, k = tables.unique_keys, tables.customer_keys
    stmt = (
        sa.select(r.c.names, k.c.name, k.c.value)
        .select_from(r.outerjoin(k, k.c.customer_id == id))
        .where(r.c.entity == kind.entity_name())
    )
    if hold:
        stmt = stmt.with_for_update(read=True, key_share=True, of=r)
    rows = conn.execute(stmt).all()
    names = tuple(json_in(rows[0][0])) if rows else ()
    return names, {(n, v) for _, n, v in rows if n is not None}


def register(conn: sa.Connection, kind: type[Entity], names: Sequence[str]) -> None:
    """Write the registry row of ``kind``: its unique keys are ``names`` (the caller holds the row)."""
    t = tables.unique_keys
    text = dump_json(sorted(set(names)), "names")
    if conn.execute(sa.update(t).where(t.c.entity == kind.entity_name()).values(names=text)).rowcount == 0:
        conn.execute(sa.insert(t).values(entity=kind.entity_name(), names=text))


def _make_lock_rows(engine: sa.Engine, dialect: str, names: Sequence[str]) -> None:
    """Make the missing rows of upsert locks, committed at once on a connection of their own: inserting them in
    the locking transaction would have its rivals wait for that row in share mode, then deadlock on it."""
    make_rows(engine, dialect, tables.key_locks, [{"name": n} for n in names])


def make_rows(engine: sa.Engine, dialect: str, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert the rows of ``table`` whose primary key is not there yet, committed at once on a connection of
    their own (PostgreSQL, MariaDB: rows a transaction then locks, see :func:`_make_lock_rows`)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        make: Any = pg_insert(table).on_conflict_do_nothing()
    else:
        make = sa.insert(table).prefix_with("IGNORE")
    with engine.begin() as conn:
        conn.execute(make, list(rows))


def backfill(conn: sa.Connection, names: Sequence[str]) -> dict[str, tuple[list[list[str]], int]]:
    """Key the customers stored on ``conn`` for the keys ``names``: insert a key row for every value no other
    customer holds. Returns, per name whose values some customers share, (up to 10 groups of their ids, the
    number of shared values); those values get no key row."""
    customers = sa.table("customers", sa.column("id"), sa.column("custom"))
    t = tables.customer_keys
    needles = [f'"{n[7:]}"' for n in names]
    shared: dict[tuple[str, str], list[str]] = {}
    after: str | None = None
    while True:
        q = sa.select(customers.c.id, customers.c.custom).order_by(customers.c.id).limit(_BATCH)
        if after is not None:
            q = q.where(customers.c.id > after)
        batch = conn.execute(q).all()
        if not batch:
            break
        after = batch[-1][0]
        found: dict[tuple[str, str], str] = {}
        for id, custom in batch:
            if isinstance(custom, str) and (custom == "{}" or not _may_hold(custom, needles)):
                continue
            for k in custom_keys(json_in(custom), names):
                if k in found:
                    shared.setdefault(k, [found[k]]).append(id)
                else:
                    found[k] = id
        held = _held(conn, list(found))
        for k, id in list(found.items()):
            if k in held:
                shared.setdefault(k, [held[k]]).append(id)
                del found[k]
        if found:
            conn.execute(sa.insert(t), [{"name": n, "value": v, "customer_id": id} for (n, v), id in found.items()])
    out: dict[str, tuple[list[list[str]], int]] = {}
    for (name, _), ids in sorted(shared.items()):
        groups, total = out.get(name, ([], 0))
        if len(groups) < 10:
            groups.append(sorted(ids))
        out[name] = (groups, total + 1)
    return out


def _may_hold(text: str, needles: Sequence[str]) -> bool:
    """Whether custom values as JSON text may hold one of the keys (``"name"``): a quick test before parsing
    (text written with ``\\u`` escapes, where a name may hide, is parsed)."""
    return any(n in text for n in needles) or "\\u" in text


def _held(conn: sa.Connection, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Which of ``keys`` (name, key text) the key table holds, and for which customer."""
    t = tables.customer_keys
    out: dict[tuple[str, str], str] = {}
    by_name: dict[str, list[str]] = {}
    for n, v in keys:
        by_name.setdefault(n, []).append(v)
    for name, values in by_name.items():
        for i in range(0, len(values), _CHUNK):
            stmt = sa.select(t.c.value, t.c.customer_id).where(t.c.name == name, t.c.value.in_(values[i : i + _CHUNK]))
            out.update({(name, v): c for v, c in conn.execute(stmt)})
    return out


@contextlib.contextmanager
def _sqlite_wait(tx: SQLTransaction, seconds: int) -> Iterator[None]:
    """SQLite's busy timeout at ``seconds`` for the block (the connection's own afterwards)."""
    cur = tx._cur
    row = cur.execute("PRAGMA busy_timeout").fetchone()
    cur.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
    try:
        yield
    finally:
        cur.execute(f"PRAGMA busy_timeout = {int(row[0]) if row else 5000}")


@contextlib.contextmanager
def _server_wait(tx: SQLTransaction, dialect: str, seconds: int) -> Iterator[None]:
    """The lock wait at ``seconds`` for the block, then the store's own (on PostgreSQL a failure inside the
    caller's savepoint puts it back with the savepoint)."""
    from pycrm.storage.sql.store import LOCK_TIMEOUT

    cur = tx._cur
    if dialect == "postgresql":
        cur.execute(f"SET LOCAL lock_timeout = '{int(seconds)}s'")
        yield
        cur.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}s'")
        return
    cur.execute(f"SET SESSION innodb_lock_wait_timeout = {int(seconds)}")
    try:
        yield
    finally:
        cur.execute(f"SET SESSION innodb_lock_wait_timeout = {LOCK_TIMEOUT}")
