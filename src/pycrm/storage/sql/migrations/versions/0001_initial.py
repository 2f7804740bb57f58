"""The initial schema: entities, list-field child tables, indexes and foreign keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.schema import SchemaItem

from pycrm.storage.sql import migrate_ops as ops
from pycrm.storage.sql.coltypes import TABLE_OPTIONS, BinString, BinText, JSONText, LongText, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _base() -> list[sa.Column[object]]:
    return [
        sa.Column("id", BinString(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    ]


def _pk(table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint("id", name=f"pk_{table}")


def _customer_fk(table: str) -> list[SchemaItem]:
    return [
        sa.Column("customer_id", BinString(64), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=f"fk_{table}_customer_id_customers"),
    ]


def _money() -> list[sa.Column[object]]:
    return [
        sa.Column("amount_e4", sa.BigInteger, nullable=False),
        sa.Column("amount_scale", sa.SmallInteger, nullable=False),
        sa.Column("currency", BinString(3), nullable=False),
    ]


def _list_table(name: str, owner: str, parent: str, value: str, length: int) -> None:
    ops.create_table(
        name,
        sa.Column(owner, BinString(64), nullable=False),
        sa.Column(value, BinString(length), nullable=False),
        sa.PrimaryKeyConstraint(owner, value, name=f"pk_{name}"),
        sa.ForeignKeyConstraint([owner], [f"{parent}.id"], name=f"fk_{name}_{owner}_{parent}", ondelete="CASCADE"),
        **TABLE_OPTIONS,
    )
    ops.create_index(f"ix_{name}_{value}", name, [value, owner])


def upgrade() -> None:
    ops.create_table(
        "customers",
        *_base(),
        sa.Column("name", BinString(300), nullable=False),
        sa.Column("kind", BinString(20), nullable=False),
        sa.Column("emails", JSONText(), nullable=False),
        sa.Column("phones", JSONText(), nullable=False),
        sa.Column("addresses", JSONText(), nullable=False),
        sa.Column("country", BinString(2)),
        sa.Column("category", BinString(300)),
        sa.Column("status", BinString(20), nullable=False),
        sa.Column("owner_id", BinString(64)),
        sa.Column("team_id", BinString(64)),
        sa.Column("tags", JSONText(), nullable=False),
        sa.Column("custom", JSONText(), nullable=False),
        _pk("customers"),
        **TABLE_OPTIONS,
    )
    ops.create_index("ix_customers_name", "customers", ["name"])

    ops.create_table(
        "contacts",
        *_base(),
        *_customer_fk("contacts"),
        sa.Column("first_name", BinString(300), nullable=False),
        sa.Column("last_name", BinString(300), nullable=False),
        sa.Column("emails", JSONText(), nullable=False),
        sa.Column("phones", JSONText(), nullable=False),
        sa.Column("title", BinString(300)),
        sa.Column("is_primary", sa.Boolean, nullable=False),
        sa.Column("consent", JSONText(), nullable=False),
        _pk("contacts"),
        **TABLE_OPTIONS,
    )
    ops.create_index("ix_contacts_customer_id", "contacts", ["customer_id"])

    ops.create_table(
        "opportunities",
        *_base(),
        *_customer_fk("opportunities"),
        sa.Column("name", BinString(300), nullable=False),
        *_money(),
        sa.Column("stage", BinString(100), nullable=False),
        sa.Column("expected_close", sa.Date),
        sa.Column("owner_id", BinString(64)),
        sa.Column("pipeline", BinString(300), nullable=False),
        sa.Column("probability_override", BinText()),
        sa.Column("probability_override_key", BinText()),
        sa.Column("lost_reason", BinText()),
        sa.Column("closed_at", UTCDateTime()),
        sa.Column("stage_history", JSONText(), nullable=False),
        _pk("opportunities"),
        **TABLE_OPTIONS,
    )
    ops.create_index("ix_opportunities_customer_id", "opportunities", ["customer_id"])

    ops.create_table(
        "tickets",
        *_base(),
        *_customer_fk("tickets"),
        sa.Column("subject", BinString(500), nullable=False),
        sa.Column("description", LongText(), nullable=False),
        sa.Column("priority", BinString(20), nullable=False),
        sa.Column("status", BinString(20), nullable=False),
        sa.Column("assignee_id", BinString(64)),
        sa.Column("first_response_at", UTCDateTime()),
        sa.Column("resolved_at", UTCDateTime()),
        sa.Column("closed_at", UTCDateTime()),
        sa.Column("status_history", JSONText(), nullable=False),
        _pk("tickets"),
        **TABLE_OPTIONS,
    )
    ops.create_index("ix_tickets_customer_id", "tickets", ["customer_id"])

    ops.create_table(
        "interactions",
        *_base(),
        *_customer_fk("interactions"),
        sa.Column("kind", BinString(20), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("subject", BinString(500), nullable=False),
        sa.Column("body", LongText(), nullable=False),
        sa.Column("user_id", BinString(64)),
        _pk("interactions"),
        **TABLE_OPTIONS,
    )
    ops.create_index("ix_interactions_customer_id_occurred_at", "interactions", ["customer_id", "occurred_at"])

    ops.create_table(
        "orders",
        *_base(),
        *_customer_fk("orders"),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        *_money(),
        sa.Column("order_no", BinString(100)),
        _pk("orders"),
        **TABLE_OPTIONS,
    )
    ops.create_index("ix_orders_customer_id_occurred_at", "orders", ["customer_id", "occurred_at"])

    ops.create_table(
        "tasks",
        *_base(),
        sa.Column("title", BinString(500), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("assignee_id", BinString(64)),
        sa.Column("related_id", BinString(64)),
        sa.Column("done", sa.Boolean, nullable=False),
        _pk("tasks"),
        **TABLE_OPTIONS,
    )
    ops.create_index("ix_tasks_assignee_id", "tasks", ["assignee_id"])

    ops.create_table(
        "users",
        *_base(),
        sa.Column("name", BinString(300), nullable=False),
        sa.Column("email", BinString(320), nullable=False),
        sa.Column("roles", JSONText(), nullable=False),
        sa.Column("team_id", BinString(64)),
        _pk("users"),
        **TABLE_OPTIONS,
    )
    ops.create_index("ix_users_email", "users", ["email"])

    _list_table("customer_emails", "customer_id", "customers", "email", 320)
    _list_table("customer_phones", "customer_id", "customers", "phone", 32)
    _list_table("customer_tags", "customer_id", "customers", "tag", 100)
    _list_table("contact_emails", "contact_id", "contacts", "email", 320)
    _list_table("contact_phones", "contact_id", "contacts", "phone", 32)


def downgrade() -> None:
    for name in ("contact_phones", "contact_emails", "customer_tags", "customer_phones", "customer_emails"):
        ops.drop_table(name)
    for name in ("users", "tasks", "orders", "interactions", "tickets", "opportunities", "contacts", "customers"):
        ops.drop_table(name)
