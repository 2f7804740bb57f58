"""Marketing campaigns (``campaigns``), their members (``campaign_members``: a customer, and the contact
reached, in a campaign) and the members' responses (``campaign_responses``: sent, opened, clicked,
replied, unsubscribed, bounced).

Restartable: each table and index is made only when missing (``pycrm.storage.sql.migrate_ops``).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from pycrm.storage.sql import migrate_ops as ops
from pycrm.storage.sql.coltypes import TABLE_OPTIONS, BinString, UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _base() -> list[sa.Column[object]]:
    return [
        sa.Column("id", BinString(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    ]


def upgrade() -> None:
    ops.create_table(
        "campaigns",
        *_base(),
        sa.Column("name", BinString(200), nullable=False),
        sa.Column("channel", BinString(10), nullable=False),
        sa.Column("start", sa.Date),
        sa.Column("end", sa.Date),
        sa.Column("budget_e4", sa.BigInteger),
        sa.Column("budget_scale", sa.SmallInteger),
        sa.Column("spend_e4", sa.BigInteger),
        sa.Column("spend_scale", sa.SmallInteger),
        sa.Column("currency", BinString(3)),
        sa.Column("status", BinString(20), nullable=False),
        sa.Column("owner_id", BinString(64)),
        sa.Column("window_days", sa.Integer, nullable=False),
        sa.Column("attribution", BinString(10), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
        **TABLE_OPTIONS,
    )
    ops.create_table(
        "campaign_members",
        *_base(),
        sa.Column("campaign_id", BinString(64), nullable=False),
        sa.Column("customer_id", BinString(64), nullable=False),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        sa.Column("contact_id", BinString(64)),
        sa.Column("state", BinString(20), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_members"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_campaign_members_campaign_id_campaigns"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name="fk_campaign_members_customer_id_customers"),
        **TABLE_OPTIONS,
    )
    ops.create_index("ix_campaign_members_campaign_id", "campaign_members", ["campaign_id"])
    ops.create_index("ix_campaign_members_customer_id", "campaign_members", ["customer_id"])
    ops.create_table(
        "campaign_responses",
        *_base(),
        sa.Column("member_id", BinString(64), nullable=False),
        sa.Column("campaign_id", BinString(64), nullable=False),
        sa.Column("customer_id", BinString(64), nullable=False),
        sa.Column("kind", BinString(20), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_responses"),
        sa.ForeignKeyConstraint(["member_id"], ["campaign_members.id"], name="fk_campaign_responses_member_id_campaign_members"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_campaign_responses_campaign_id_campaigns"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name="fk_campaign_responses_customer_id_customers"),
        **TABLE_OPTIONS,
    )
    ops.create_index("ix_campaign_responses_campaign_id", "campaign_responses", ["campaign_id"])
    ops.create_index("ix_campaign_responses_member_id", "campaign_responses", ["member_id"])
    ops.create_index("ix_campaign_responses_customer_id", "campaign_responses", ["customer_id"])


def downgrade() -> None:
    # dropping a table drops its indexes (MariaDB refuses to drop an index a foreign key needs on its own)
    ops.drop_table("campaign_responses")
    ops.drop_table("campaign_members")
    ops.drop_table("campaigns")
