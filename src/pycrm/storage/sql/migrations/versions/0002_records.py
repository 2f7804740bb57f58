"""Records: small JSON documents that are not entities (merge records), by (stream, key).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from pycrm.storage.sql import migrate_ops as ops
from pycrm.storage.sql.coltypes import TABLE_OPTIONS, BinString, LongText

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ops.create_table(
        "pycrm_records",
        sa.Column("stream", BinString(32), nullable=False),
        sa.Column("record_key", BinString(64), nullable=False),
        sa.Column("data", LongText(), nullable=False),
        sa.PrimaryKeyConstraint("stream", "record_key", name="pk_pycrm_records"),
        **TABLE_OPTIONS,
    )


def downgrade() -> None:
    ops.drop_table("pycrm_records")
