"""Products and order lines: the product catalog (``products``: SKU unique, name, category path, unit,
active, custom fields), ``orders.lines`` (an order's lines as JSON, NULL for an order without lines) and
``order_lines`` (one row per line: product, quantity, unit price, discount and total in 1/10,000 units, and
currency; indexed by product) that the product reports and basket analysis read. Orders already stored keep
their amounts and have no lines.

Restartable: each table, column and index is made only when missing.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from pycrm.storage.sql import migrate_ops as ops
from pycrm.storage.sql.coltypes import TABLE_OPTIONS, BinString, JSONText, UTCDateTime

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ops.create_table(
        "products",
        sa.Column("id", BinString(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("sku", BinString(100), nullable=False),
        sa.Column("name", BinString(300), nullable=False),
        sa.Column("category", BinString(300)),
        sa.Column("unit", BinString(20), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("custom", JSONText(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_products"),
        **TABLE_OPTIONS,
    )
    ops.create_index("ux_products_sku", "products", ["sku"], unique=True)
    ops.create_index("ix_products_category", "products", ["category"])
    ops.add_column("orders", sa.Column("lines", JSONText(), nullable=True))
    ops.create_table(
        "order_lines",
        sa.Column("order_id", BinString(64), nullable=False),
        sa.Column("line_no", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("product_id", BinString(64), nullable=False),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sa.Column("unit_price_e4", sa.BigInteger, nullable=False),
        sa.Column("discount_e4", sa.BigInteger, nullable=False),
        sa.Column("amount_e4", sa.BigInteger, nullable=False),
        sa.Column("currency", BinString(3), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "line_no", name="pk_order_lines"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_order_lines_order_id_orders", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], name="fk_order_lines_product_id_products"),
        **TABLE_OPTIONS,
    )
    ops.create_index("ix_order_lines_product_id", "order_lines", ["product_id", "order_id"])


def downgrade() -> None:
    ops.drop_table("order_lines")  # its indexes with it (MariaDB keeps a foreign key's index to the end)
    ops.drop_column("orders", "lines")
    ops.rebuild("orders")  # MariaDB: the dropped column out of the rows, so an upgrade can add it again
    ops.drop_table("products")
