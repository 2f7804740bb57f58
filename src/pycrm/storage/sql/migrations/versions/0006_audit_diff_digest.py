"""The audit trail's erasable diffs: ``pycrm_audit.diff_digest``.

An entry written from this revision on carries the digest of its diff, and its hash covers the digest
instead of the diff (``pycrm.security._audit``), so erasing a person can replace the diff and the chain still
verifies. Entries already stored keep a NULL digest and their old hashing.

A downgrade keeps the digests aside in ``pycrm_audit_digests`` (seq, hash, digest) -- without them the newer
entries could not be verified -- and the next upgrade puts each back on the entry with the same seq and hash.
Code of an older release does not know the digests: it reports the newer entries as altered until then.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pycrm.storage.sql import migrate_ops as ops
from pycrm.storage.sql.coltypes import TABLE_OPTIONS, BinString

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ASIDE = "pycrm_audit_digests"


def upgrade() -> None:
    ops.add_column("pycrm_audit", sa.Column("diff_digest", BinString(64), nullable=True))
    if ops.has_table(ASIDE):  # setting the same digests again is harmless: a try cut short is run again whole
        op.execute(
            f"UPDATE pycrm_audit SET diff_digest = (SELECT a.diff_digest FROM {ASIDE} a"
            f" WHERE a.seq = pycrm_audit.seq AND a.hash = pycrm_audit.hash)"
            f" WHERE EXISTS (SELECT 1 FROM {ASIDE} a WHERE a.seq = pycrm_audit.seq AND a.hash = pycrm_audit.hash)"
        )
        ops.drop_table(ASIDE)  # on MariaDB this commits the UPDATE first


def downgrade() -> None:
    ops.create_table(
        ASIDE,
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", BinString(64), nullable=False),
        sa.Column("diff_digest", BinString(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=f"pk_{ASIDE}"),
        **TABLE_OPTIONS,
    )
    if ops.has_column("pycrm_audit", "diff_digest"):  # gone: a try cut short kept them all aside already
        op.execute(
            f"INSERT INTO {ASIDE} (seq, hash, diff_digest)"
            " SELECT seq, hash, diff_digest FROM pycrm_audit WHERE diff_digest IS NOT NULL"
            f" AND NOT EXISTS (SELECT 1 FROM {ASIDE} a WHERE a.seq = pycrm_audit.seq)"
        )
        ops.drop_column("pycrm_audit", "diff_digest")
