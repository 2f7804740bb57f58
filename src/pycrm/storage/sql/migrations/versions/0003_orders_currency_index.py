"""An index on orders.currency: RFM checks the currencies of a store by reading its two ends.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from pycrm.storage.sql import migrate_ops as ops

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ops.create_index("ix_orders_currency", "orders", ["currency"])


def downgrade() -> None:
    ops.drop_index("ix_orders_currency", "orders")
