"""Unique upsert keys: ``customer_keys``, ``pycrm_unique_keys`` and ``pycrm_key_locks`` (storage/sql/keys.py).

Builds the key table from the customers already stored and registers ``custom.external_id`` as unique --
unless some customers already share an external id. Then the key is left non-unique (no key rows, not
registered; imports keyed on it still match under the upsert lock), and the upgrade warns, naming the key
and the customers (a ``UserWarning`` and the ``pycrm`` log); once they are merged, opening the store with
``CustomField("external_id", unique=True)`` makes it unique.

Restartable: each step checks what exists first (MariaDB does not roll DDL back), and a key whose
registration did not happen is keyed again from scratch.

Revision ID: 0007
Revises: 0006
Create Date: 2027-01-11
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pycrm.storage.sql import migrate_ops as ops
from pycrm.storage.sql.coltypes import TABLE_OPTIONS, BinString, BinText

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY_NAME = 100
KEY_TEXT = 160
EXTERNAL_ID = "custom.external_id"


def upgrade() -> None:
    from pycrm.domain import Customer
    from pycrm.storage.sql.keys import backfill, register, registered

    ops.create_table(
        "pycrm_unique_keys",
        sa.Column("entity", BinString(32), nullable=False),
        sa.Column("names", BinText(), nullable=False),
        sa.PrimaryKeyConstraint("entity", name="pk_pycrm_unique_keys"),
        **TABLE_OPTIONS,
    )
    ops.create_table(
        "pycrm_key_locks",
        sa.Column("name", BinString(KEY_NAME + 40), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_pycrm_key_locks"),
        **TABLE_OPTIONS,
    )
    ops.create_table(
        "customer_keys",
        sa.Column("name", BinString(KEY_NAME), nullable=False),
        sa.Column("value", BinString(KEY_TEXT), nullable=False),
        sa.Column("customer_id", BinString(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_customer_keys_customer_id_customers", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("name", "value", name="pk_customer_keys"),
        sqlite_with_rowid=False,
        **TABLE_OPTIONS,
    )
    ops.create_index("ix_customer_keys_customer_id", "customer_keys", ["customer_id"])
    if ops.offline():  # a script: no data to key; open with CustomField("external_id", unique=True) to key it
        return
    bind = op.get_bind()
    keys = sa.table("customer_keys", sa.column("name"))
    have = registered(bind, Customer)
    if EXTERNAL_ID in have:
        return
    register(bind, Customer, have)  # the registry's row, which writers hold in share mode
    bind.execute(sa.delete(keys).where(keys.c.name == EXTERNAL_ID))  # what an interrupted run left
    shared = backfill(bind, [EXTERNAL_ID])
    if EXTERNAL_ID in shared:
        bind.execute(sa.delete(keys).where(keys.c.name == EXTERNAL_ID))
        groups, total = shared[EXTERNAL_ID]
        more = f" and {total - len(groups)} more" if total > len(groups) else ""
        message = (
            f"{EXTERNAL_ID} is left non-unique: {total} values are shared by more than one customer "
            f"({'; '.join(', '.join(ids) for ids in groups)}{more}); merge them, then open the store with "
            "CustomField('external_id', unique=True) to hold it unique"
        )
        logging.getLogger("pycrm").warning("%s", message)
        warnings.warn(message, UserWarning, stacklevel=2)
        return
    register(bind, Customer, [*have, EXTERNAL_ID])


def downgrade() -> None:
    for name in ("customer_keys", "pycrm_key_locks", "pycrm_unique_keys"):
        ops.drop_table(name)
