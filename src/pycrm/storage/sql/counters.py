"""Named counters in an SQL store (the port's ``Counters``): rows of ``pycrm_sequences``.

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

from pycrm.storage._counters import check_counter_name
from pycrm.storage.sql import tables
from pycrm.storage.sql.keys import make_rows

if TYPE_CHECKING:
    from pycrm.storage.sql.store import SQLTransaction

__all__ = ["next_value"]


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
