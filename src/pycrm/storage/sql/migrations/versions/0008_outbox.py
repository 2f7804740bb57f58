"""The outbox (pycrm_outbox): domain events written with the changes that raised them (storage/sql/outbox.py),
and the row of ``pycrm_sequences`` that dispatchers lock while they claim events.

Restartable: the table, its indexes and the lock row are each made only when missing.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from pycrm.storage.sql import migrate_ops as ops
from pycrm.storage.sql.coltypes import TABLE_OPTIONS, BinString, LongText, UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: On SQLite ``INTEGER PRIMARY KEY``: the rowid, numbered by the database.
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    ops.create_table(
        "pycrm_outbox",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("event_key", BinString(200), nullable=False),
        sa.Column("event", BinString(64), nullable=False),
        sa.Column("entity", BinString(32), nullable=True),
        sa.Column("entity_id", BinString(64), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor_id", BinString(64), nullable=True),
        sa.Column("data", LongText(), nullable=False),
        sa.Column("state", BinString(8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_by", BinString(64), nullable=True),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.Column("delivered", LongText(), nullable=False),
        sa.Column("error", LongText(), nullable=True),
        sa.Column("done_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_pycrm_outbox"),
        **TABLE_OPTIONS,
    )
    ops.create_index("ux_pycrm_outbox_event_key", "pycrm_outbox", ["event_key"], unique=True)
    ops.create_index("ix_pycrm_outbox_state_seq", "pycrm_outbox", ["state", "seq"])
    custom = sa.text("event = 'CustomEvent'")  # erasure's: partial where the database has partial indexes
    ops.create_index("ix_pycrm_outbox_entity_id", "pycrm_outbox", ["entity_id"], sqlite_where=custom, postgresql_where=custom)
    sequences = sa.Table(
        "pycrm_sequences",
        sa.MetaData(),
        sa.Column("name", BinString(32), primary_key=True),
        sa.Column("value", sa.BigInteger()),
        sa.Column("last_hash", BinString(64)),
    )
    ops.insert_missing(sequences, ["name"], [{"name": "outbox", "value": 0, "last_hash": None}])


def downgrade() -> None:
    ops.drop_index("ix_pycrm_outbox_entity_id", "pycrm_outbox")
    ops.drop_index("ix_pycrm_outbox_state_seq", "pycrm_outbox")
    ops.drop_index("ux_pycrm_outbox_event_key", "pycrm_outbox")
    ops.drop_table("pycrm_outbox")
    sequences = sa.table("pycrm_sequences", sa.column("name"))
    sa_delete = sa.delete(sequences).where(sequences.c.name == "outbox")
    from alembic import op

    if not ops.offline():
        op.get_bind().execute(sa_delete)
    else:
        op.execute(sa_delete)
