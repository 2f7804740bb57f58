"""Custom fields on every entity: a ``custom`` JSON column (``{}`` for the rows already stored) on contacts,
opportunities, tickets, interactions, orders, tasks and surveys, as customers have had since revision 0001.

Restartable: each column is added only when missing. A downgrade drops the columns, and with them the custom
values written since (a downgrade of a store in use loses them; back it up first).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from pycrm.storage.sql import migrate_ops as ops
from pycrm.storage.sql.coltypes import JSONText

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The tables that gain the column, in the order they are changed.
TABLES = ("contacts", "opportunities", "tickets", "interactions", "orders", "tasks", "surveys")


def upgrade() -> None:
    for table in TABLES:
        ops.add_column(table, sa.Column("custom", JSONText(), nullable=False, server_default="{}"))


def downgrade() -> None:
    for table in reversed(TABLES):
        ops.drop_column(table, "custom")
        ops.rebuild(table)  # MariaDB: the dropped column out of the rows, so an upgrade can add it again
