"""Tickets' category and channel: ``tickets.category`` (a path such as ``Hardware/Printer``, indexed, so a branch
is one range scan) and ``tickets.channel`` (phone, email, web, chat or visit). Tickets already stored keep
both NULL.

Restartable: each column and the index are made only when missing.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from pycrm.storage.sql import migrate_ops as ops
from pycrm.storage.sql.coltypes import BinString

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ops.add_column("tickets", sa.Column("category", BinString(300), nullable=True))
    ops.add_column("tickets", sa.Column("channel", BinString(20), nullable=True))
    ops.create_index("ix_tickets_category", "tickets", ["category"])


def downgrade() -> None:
    ops.drop_index("ix_tickets_category", "tickets")
    ops.drop_column("tickets", "channel")
    ops.drop_column("tickets", "category")
    ops.rebuild("tickets")  # MariaDB: the dropped columns out of the rows, so an upgrade can add them again
