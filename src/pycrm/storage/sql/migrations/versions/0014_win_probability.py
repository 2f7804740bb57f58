"""Lead scores on opportunities: ``opportunities.win_probability`` (the exact decimal text, as
``probability_override`` is kept), ``win_probability_key`` (text whose order is numeric order, for filters)
and ``scored_at``. Opportunities already stored keep all three NULL (not scored yet).

Restartable: each column is made only when missing.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from pycrm.storage.sql import migrate_ops as ops
from pycrm.storage.sql.coltypes import BinText, UTCDateTime

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ops.add_column("opportunities", sa.Column("win_probability", BinText(), nullable=True))
    ops.add_column("opportunities", sa.Column("win_probability_key", BinText(), nullable=True))
    ops.add_column("opportunities", sa.Column("scored_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    ops.drop_column("opportunities", "scored_at")
    ops.drop_column("opportunities", "win_probability_key")
    ops.drop_column("opportunities", "win_probability")
    ops.rebuild("opportunities")  # MariaDB: the dropped columns out of the rows, so an upgrade can add them again
