"""Attachments (``attachments``): the metadata of files kept with a record -- name, media type, size, SHA-256
of the content (which lives in the store's blob store, not in the database), the record it belongs to
(``record_kind``, ``record_id``), that record's customer (its scope) and who uploaded it.

Restartable: the table and each index are made only when missing.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from pycrm.storage.sql import migrate_ops as ops
from pycrm.storage.sql.coltypes import TABLE_OPTIONS, BinString, UTCDateTime

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ops.create_table(
        "attachments",
        sa.Column("id", BinString(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("customer_id", BinString(64), nullable=False),
        sa.Column("record_kind", BinString(20), nullable=False),
        sa.Column("record_id", BinString(64), nullable=False),
        sa.Column("name", BinString(255), nullable=False),
        sa.Column("media_type", BinString(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", BinString(64), nullable=False),
        sa.Column("uploaded_by", BinString(64)),
        sa.PrimaryKeyConstraint("id", name="pk_attachments"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name="fk_attachments_customer_id_customers"),
        **TABLE_OPTIONS,
    )
    ops.create_index("ix_attachments_customer_id", "attachments", ["customer_id"])
    ops.create_index("ix_attachments_record_id", "attachments", ["record_id"])
    ops.create_index("ix_attachments_sha256", "attachments", ["sha256"])


def downgrade() -> None:
    # dropping the table drops its indexes (MariaDB refuses to drop an index a foreign key needs on its own)
    ops.drop_table("attachments")
