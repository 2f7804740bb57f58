"""The journal: change feed (pycrm_changes), audit trail (pycrm_audit) and their sequences.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from pycrm.storage.sql import migrate_ops as ops
from pycrm.storage.sql.coltypes import TABLE_OPTIONS, BinString, LongText, UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64  # pycrm.security.GENESIS_HASH, written out: a migration must not change later


def upgrade() -> None:
    ops.create_table(
        "pycrm_changes",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("entity", BinString(32), nullable=False),
        sa.Column("entity_id", BinString(64), nullable=False),
        sa.Column("op", BinString(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("fields", LongText(), nullable=False),
        sa.Column("actor_id", BinString(64), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_pycrm_changes"),
        **TABLE_OPTIONS,
    )
    ops.create_table(
        "pycrm_audit",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor_id", BinString(64), nullable=True),
        sa.Column("action", BinString(32), nullable=False),
        sa.Column("entity", BinString(32), nullable=False),
        sa.Column("entity_id", BinString(64), nullable=True),
        sa.Column("diff", LongText(), nullable=False),
        sa.Column("prev_hash", BinString(64), nullable=False),
        sa.Column("hash", BinString(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_pycrm_audit"),
        **TABLE_OPTIONS,
    )
    ops.create_index("ix_pycrm_audit_entity_id", "pycrm_audit", ["entity_id"])
    sequences = ops.create_table(
        "pycrm_sequences",
        sa.Column("name", BinString(32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", BinString(64), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_pycrm_sequences"),
        **TABLE_OPTIONS,
    )
    # on MariaDB the table can outlive a crash without its rows: add those it lacks
    ops.insert_missing(
        sequences,
        ["name"],
        [{"name": "changes", "value": 0, "last_hash": None}, {"name": "audit", "value": 0, "last_hash": GENESIS_HASH}],
    )


def downgrade() -> None:
    ops.drop_table("pycrm_sequences")
    ops.drop_index("ix_pycrm_audit_entity_id", "pycrm_audit")
    ops.drop_table("pycrm_audit")
    ops.drop_table("pycrm_changes")
