"""Interactions that say what happened: ``interactions.duration`` (whole seconds), ``direction`` (inbound or
outbound), ``channel``, ``contact_id`` and ``opportunity_id`` (the person spoken to and the deal, each
indexed) and ``outcome`` (a short text). Interactions already stored keep all of them NULL.

Restartable: each column and index is made only when missing.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from pycrm.storage.sql import migrate_ops as ops
from pycrm.storage.sql.coltypes import BinString

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ops.add_column("interactions", sa.Column("duration", sa.Integer(), nullable=True))
    ops.add_column("interactions", sa.Column("direction", BinString(20), nullable=True))
    ops.add_column("interactions", sa.Column("channel", BinString(20), nullable=True))
    ops.add_column("interactions", sa.Column("contact_id", BinString(64), nullable=True))
    ops.add_column("interactions", sa.Column("opportunity_id", BinString(64), nullable=True))
    ops.add_column("interactions", sa.Column("outcome", BinString(200), nullable=True))
    ops.create_index("ix_interactions_contact_id", "interactions", ["contact_id"])
    ops.create_index("ix_interactions_opportunity_id", "interactions", ["opportunity_id"])


def downgrade() -> None:
    ops.drop_index("ix_interactions_opportunity_id", "interactions")
    ops.drop_index("ix_interactions_contact_id", "interactions")
    for name in ("outcome", "opportunity_id", "contact_id", "channel", "direction", "duration"):
        ops.drop_column("interactions", name)
    ops.rebuild("interactions")  # MariaDB: the dropped columns out of the rows, so an upgrade can add them again
