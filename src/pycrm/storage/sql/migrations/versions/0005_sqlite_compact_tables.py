"""SQLite: list tables WITHOUT ROWID, journal sequence numbers as the rowid.

On SQLite a table with a composite primary key keeps its rows in one B-tree and the key in another; the
list tables (``customer_emails`` ...) hold nothing but their key, so as WITHOUT ROWID tables they keep one
B-tree less. A ``BIGINT`` primary key is not SQLite's rowid either; the journal's ``seq`` becomes
``INTEGER PRIMARY KEY``, the rowid itself. Each table is rebuilt (new table, rows copied, old one dropped,
new one renamed, its index made again), inside the migration's transaction. Other databases: no change.

Each table's rebuild is restartable like every step (``pycrm.storage.sql.migrate_ops``): a table already in
the wanted form is left alone, a ``_new_`` copy left beside its old table is filled again, and a copy
left without its old table (dropped after the copy) is renamed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import sqlalchemy as sa
from alembic import op

from pycrm.storage.sql import migrate_ops as ops
from pycrm.storage.sql.coltypes import BinString, LongText, UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, owner column, parent table, value column, value length), as revision 0001 made them
LIST_TABLES = [
    ("customer_emails", "customer_id", "customers", "email", 320),
    ("customer_phones", "customer_id", "customers", "phone", 32),
    ("customer_tags", "customer_id", "customers", "tag", 100),
    ("contact_emails", "contact_id", "contacts", "email", 320),
    ("contact_phones", "contact_id", "contacts", "phone", 32),
]


def _list_table(name: str, owner: str, parent: str, value: str, length: int, *, compact: bool) -> None:
    ops.create_table(
        f"_new_{name}",
        sa.Column(owner, BinString(64), nullable=False),
        sa.Column(value, BinString(length), nullable=False),
        sa.PrimaryKeyConstraint(owner, value, name=f"pk_{name}"),
        sa.ForeignKeyConstraint([owner], [f"{parent}.id"], name=f"fk_{name}_{owner}_{parent}", ondelete="CASCADE"),
        sqlite_with_rowid=not compact,
    )


#: The journal tables' columns after ``seq``, as revision 0004 made them: (name, type, nullable).
JOURNAL_COLUMNS: dict[str, list[tuple[str, Any, bool]]] = {
    "pycrm_changes": [
        ("at", UTCDateTime(), False),
        ("entity", BinString(32), False),
        ("entity_id", BinString(64), False),
        ("op", BinString(16), False),
        ("version", sa.Integer(), True),
        ("fields", LongText(), False),
        ("actor_id", BinString(64), True),
    ],
    "pycrm_audit": [
        ("at", UTCDateTime(), False),
        ("actor_id", BinString(64), True),
        ("action", BinString(32), False),
        ("entity", BinString(32), False),
        ("entity_id", BinString(64), True),
        ("diff", LongText(), False),
        ("prev_hash", BinString(64), False),
        ("hash", BinString(64), False),
    ],
}


def _journal_table(name: str, *, compact: bool) -> None:
    seq = sa.Column("seq", sa.Integer() if compact else sa.BigInteger(), autoincrement=False, nullable=False)
    rest = [sa.Column(c, t, nullable=n) for c, t, n in JOURNAL_COLUMNS[name]]
    ops.create_table(f"_new_{name}", seq, *rest, sa.PrimaryKeyConstraint("seq", name=f"pk_{name}"))


#: A table's rebuild: (name, its columns, a function making its ``_new_`` table, its indexes (name, columns)).
Plan = tuple[str, list[str], Callable[[], None], list[tuple[str, list[str]]]]


def _plans(compact: bool) -> list[Plan]:
    plans: list[Plan] = [
        (t[0], [t[1], t[3]], partial(_list_table, *t, compact=compact), [(f"ix_{t[0]}_{t[3]}", [t[3], t[1]])])
        for t in LIST_TABLES
    ]
    for name, indexes in (("pycrm_changes", []), ("pycrm_audit", [("ix_pycrm_audit_entity_id", ["entity_id"])])):
        columns = ["seq", *(c for c, _, _ in JOURNAL_COLUMNS[name])]
        plans.append((name, columns, partial(_journal_table, name, compact=compact), indexes))
    return plans


def _in_form(table: str, name: str, compact: bool) -> bool:
    """Whether SQLite's ``table`` (``name`` or its ``_new_`` copy) is built the wanted way: compact, or as
    revision 0004 made it."""
    sql = op.get_bind().exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).scalar()
    if sql is None:
        return False
    made = "seq INTEGER" in sql if name in JOURNAL_COLUMNS else sql.rstrip().upper().endswith("WITHOUT ROWID")
    return made == compact


def _rebuild(compact: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name, columns, create, indexes in _plans(compact):
        new = f"_new_{name}"
        if ops.offline() or (ops.has_table(name) and not _in_form(name, name, compact)):
            if ops.offline() or not ops.has_table(new):
                create()
            elif _in_form(new, name, compact):
                op.execute(f"DELETE FROM {new}")  # a copy left by a try cut short, perhaps partial: filled again
            else:
                ops.drop_table(new)
                create()
            cols = ", ".join(columns)
            op.execute(f"INSERT INTO {new} ({cols}) SELECT {cols} FROM {name}")
            ops.drop_table(name)
        elif ops.has_table(name):
            ops.drop_table(new)  # the table is rebuilt already: whatever has the copy's name is not needed
        if ops.offline() or ops.has_table(new):  # the copy, whole: its old table is gone
            ops.rename_table(new, name)
        for index, on in indexes:
            ops.create_index(index, name, on)


def upgrade() -> None:
    _rebuild(compact=True)


def downgrade() -> None:
    _rebuild(compact=False)
