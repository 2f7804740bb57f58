"""A covering index for the order analytics: ``ix_orders_customer_id_occurred_at_amount`` on
``orders (customer_id, occurred_at, amount_e4, currency)`` replaces ``ix_orders_customer_id_occurred_at``.

RFM and the purchase summary read exactly these four columns of every counted order, grouped by customer;
with them all in the index, the database reads the index in customer order and never visits the table's
rows (on SQLite a ``SCAN orders USING COVERING INDEX``). The old index is a prefix of the new one, so every
query that used it can use the new one; it is dropped after the new one is made (on MariaDB the foreign
key on ``customer_id`` always has an index to use).

Restartable: the new index is made only when missing, the old one dropped only when there.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from pycrm.storage.sql import migrate_ops as ops

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = ("ix_orders_customer_id_occurred_at", ["customer_id", "occurred_at"])
NEW = ("ix_orders_customer_id_occurred_at_amount", ["customer_id", "occurred_at", "amount_e4", "currency"])


def upgrade() -> None:
    ops.create_index(NEW[0], "orders", NEW[1])
    ops.drop_index(OLD[0], "orders")


def downgrade() -> None:
    ops.create_index(OLD[0], "orders", OLD[1])
    ops.drop_index(NEW[0], "orders")
