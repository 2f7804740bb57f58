"""Satisfaction surveys (``surveys``): CSAT or NPS scores a customer gave, with the ticket, interaction and
agent they are about.

Restartable: the table and each index are made only when missing (``pycrm.storage.sql.migrate_ops``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from pycrm.storage.sql import migrate_ops as ops
from pycrm.storage.sql.coltypes import TABLE_OPTIONS, BinString, LongText, UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ops.create_table(
        "surveys",
        sa.Column("id", BinString(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("customer_id", BinString(64), nullable=False),
        sa.Column("kind", BinString(10), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=False),
        sa.Column("score", sa.SmallInteger),
        sa.Column("comment", LongText(), nullable=False),
        sa.Column("ticket_id", BinString(64)),
        sa.Column("interaction_id", BinString(64)),
        sa.Column("user_id", BinString(64)),
        sa.Column("answered_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_surveys"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name="fk_surveys_customer_id_customers"),
        **TABLE_OPTIONS,
    )
    ops.create_index("ix_surveys_customer_id", "surveys", ["customer_id"])
    ops.create_index("ix_surveys_sent_at", "surveys", ["sent_at"])


def downgrade() -> None:
    ops.drop_table("surveys")  # with its indexes (MariaDB keeps the customer_id one for the foreign key)
