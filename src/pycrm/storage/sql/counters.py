"""Named counters (the port's ``Counters``: rows of ``pycrm_sequences``) and grouped counts (``GroupedCounts``)
in an SQL store.

The journal keeps its sequences (``changes``, ``audit``) in that table; a counter is a row beside them, named
``prefix:rest`` (``storage/_counters.py``) so the two never meet. ``next_value`` holds the counter's row
``FOR UPDATE`` to the end of the transaction, then writes the new value: a concurrent incrementer waits for
the row and reads the value this one committed. A missing row is made first, committed at once on a
connection of its own (as the upsert locks' rows are, ``keys.py``): inserting it in the locking transaction
would have its rivals wait for it in share mode and then deadlock. On SQLite the database's write lock
(``BEGIN IMMEDIATE``) is the lock, and the row is made in the transaction itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from pycrm.domain import Entity
from pycrm.storage._counters import check_count_field, check_counter_name, too_many_groups
from pycrm.storage._where import Condition
from pycrm.storage.sql import tables
from pycrm.storage.sql.keys import make_rows

if TYPE_CHECKING:
    from pycrm.storage.sql.store import SQLTransaction

__all__ = ["count_by", "next_value"]


def next_value(tx: SQLTransaction, name: str) -> int:
    """``Counters.next_value`` in ``tx``: the counter's new value, its row held to the end of the transaction."""
    check_counter_name(name)
    t = tables.sequences
    hold = sa.select(t.c.value).where(t.c.name == name).with_for_update()
    sqlite = tx._sqlite
    store = tx._store

    def bump(conn: sa.Connection) -> int:
        value = conn.execute(hold).scalar_one_or_none()
        if value is None:
            if sqlite:  # the transaction holds the write lock (its savepoint began writing): no rival
                conn.execute(sa.insert(t).values(name=name, value=0))
            else:
                make_rows(store.engine, store.dialect, t, [{"name": name, "value": 0}])
            value = conn.execute(hold).scalar_one()
        new = int(value) + 1
        conn.execute(sa.update(t).where(t.c.name == name).values(value=new))
        return new

    return int(tx._record_write(bump))


def count_by(tx: SQLTransaction, kind: type[Entity], where: list[Condition], field: str, limit: int) -> dict[str | None, int]:
    """``GroupedCounts.count_by`` in ``tx``: one grouped ``COUNT(*)``, at most ``limit + 1`` rows read."""
    check_count_field(kind, field, limit)
    q = tx._q.count_by(kind, where, field)
    try:
        rows = tx._rows(q.stmt.sql, q.stmt.bind(q.values(where, (limit + 1,))))
    except tx._error as exc:
        raise tx._translate(exc, kind, "count") from None
    if len(rows) > limit:
        raise too_many_groups(field, limit)
    return {value: int(n) for value, n in rows}
