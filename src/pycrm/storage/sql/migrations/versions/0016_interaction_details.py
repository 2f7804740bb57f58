"""Interactions that say what happened, and behaviour events: ``interactions.duration`` (whole seconds), ``direction`` (inbound or
outbound), ``channel``, ``contact_id`` and ``opportunity_id`` (the person spoken to and the deal, each
indexed) and ``outcome`` (a short text). Interactions already stored keep all of them NULL. The new
``activities`` table holds behaviour events (web visits, app events: customer, kind, time, properties as
JSON, contact, source), indexed on (customer_id, occurred_at) and (kind, occurred_at).

Restartable: each column and index is made only when missing.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from pycrm.storage.sql import migrate_ops as ops
from pycrm.storage.sql.coltypes import TABLE_OPTIONS, BinString, JSONText, UTCDateTime

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
    ops.create_table(
        "activities",
        sa.Column("id", BinString(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("customer_id", BinString(64), nullable=False),
        sa.Column("kind", BinString(40), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("properties", JSONText(), nullable=False),
        sa.Column("contact_id", BinString(64)),
        sa.Column("source", BinString(40)),
        sa.PrimaryKeyConstraint("id", name="pk_activities"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name="fk_activities_customer_id_customers"),
        **TABLE_OPTIONS,
    )
    ops.create_index("ix_activities_customer_id_occurred_at", "activities", ["customer_id", "occurred_at"])
    ops.create_index("ix_activities_kind_occurred_at", "activities", ["kind", "occurred_at"])


def downgrade() -> None:
    ops.drop_table("activities")  # with its indexes
    ops.drop_index("ix_interactions_opportunity_id", "interactions")
    ops.drop_index("ix_interactions_contact_id", "interactions")
    for name in ("outcome", "opportunity_id", "contact_id", "channel", "direction", "duration"):
        ops.drop_column("interactions", name)
    ops.rebuild("interactions")  # MariaDB: the dropped columns out of the rows, so an upgrade can add them again
