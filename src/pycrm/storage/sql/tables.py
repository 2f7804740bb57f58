"""The schema, in one place: SQLAlchemy Core tables for every entity and the child tables that index
list fields (emails, phones, tags).

Conventions:

* ids are ``VARCHAR(64)``; ``customer_id`` columns are foreign keys to ``customers.id``;
* money is exact: ``<field>_e4`` is a BIGINT of 1/10,000 units, ``<field>_scale`` the number of decimal
  places the amount was written with (so ``Decimal("12.50")`` reads back as ``12.50``), ``currency`` the
  ISO 4217 code;
* date-times are naive UTC with microseconds; dates are DATE;
* enums are stored as their string values, the opportunity's pipeline by name;
* list fields are kept twice: as JSON on the main row (``get`` reads one row) and in an indexed child
  table (``find(where={"emails": x})`` goes through the index);
* other structured fields (addresses, custom, consent, histories, roles) are JSON.

The Alembic migrations in ``migrations/versions`` create exactly these tables.
"""

from __future__ import annotations

import attrs
import sqlalchemy as sa

from pycrm.domain import (
    Activity,
    Attachment,
    Campaign,
    CampaignMember,
    CampaignResponse,
    Contact,
    Customer,
    Entity,
    Interaction,
    Opportunity,
    Order,
    Product,
    Survey,
    Task,
    Ticket,
    User,
)
from pycrm.storage._keys import KEY_NAME, KEY_TEXT
from pycrm.storage.sql.coltypes import TABLE_OPTIONS, BinString, BinText, JSONText, LongText, UTCDateTime

__all__ = [
    "ENTITY_TABLES",
    "LIST_TABLES",
    "VERSION_TABLE",
    "ListTable",
    "audit",
    "changes",
    "customer_keys",
    "key_locks",
    "metadata",
    "order_lines",
    "products",
    "records",
    "sequences",
    "unique_keys",
]

#: Alembic's version table for pycrm's own migrations (apart from a host application's ``alembic_version``).
VERSION_TABLE = "pycrm_alembic_version"

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)

ID = 64
NAME = 300
EMAIL = 320
PHONE = 32
TAG = 100


def _id(name: str = "id", *, nullable: bool = True) -> sa.Column[str]:
    return sa.Column(name, BinString(ID), nullable=nullable)


def _base() -> list[sa.Column[object]]:
    return [
        sa.Column("id", BinString(ID), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    ]


def _customer_fk() -> sa.Column[str]:
    return sa.Column("customer_id", BinString(ID), sa.ForeignKey("customers.id"), nullable=False)


def _money(prefix: str) -> list[sa.Column[object]]:
    return [
        sa.Column(f"{prefix}_e4", sa.BigInteger, nullable=False),
        sa.Column(f"{prefix}_scale", sa.SmallInteger, nullable=False),
        sa.Column("currency", BinString(3), nullable=False),
    ]


customers = sa.Table(
    "customers",
    metadata,
    *_base(),
    sa.Column("name", BinString(NAME), nullable=False, index=True),
    sa.Column("kind", BinString(20), nullable=False),
    sa.Column("emails", JSONText(), nullable=False),
    sa.Column("phones", JSONText(), nullable=False),
    sa.Column("addresses", JSONText(), nullable=False),
    sa.Column("country", BinString(2)),
    sa.Column("category", BinString(NAME)),
    sa.Column("status", BinString(20), nullable=False),
    _id("owner_id"),
    _id("team_id"),
    sa.Column("tags", JSONText(), nullable=False),
    sa.Column("custom", JSONText(), nullable=False),
    **TABLE_OPTIONS,
)

contacts = sa.Table(
    "contacts",
    metadata,
    *_base(),
    _customer_fk(),
    sa.Column("first_name", BinString(NAME), nullable=False),
    sa.Column("last_name", BinString(NAME), nullable=False),
    sa.Column("emails", JSONText(), nullable=False),
    sa.Column("phones", JSONText(), nullable=False),
    sa.Column("title", BinString(NAME)),
    sa.Column("is_primary", sa.Boolean, nullable=False),
    sa.Column("consent", JSONText(), nullable=False),
    sa.Column("custom", JSONText(), nullable=False, server_default="{}"),  # revision 0013
    sa.Index("ix_contacts_customer_id", "customer_id"),
    **TABLE_OPTIONS,
)

opportunities = sa.Table(
    "opportunities",
    metadata,
    *_base(),
    _customer_fk(),
    sa.Column("name", BinString(NAME), nullable=False),
    *_money("amount"),
    sa.Column("stage", BinString(100), nullable=False),
    sa.Column("expected_close", sa.Date),
    _id("owner_id"),
    sa.Column("pipeline", BinString(NAME), nullable=False),
    # exact decimal text as given, and a key whose text order is numeric order (see mapping.decimal_key)
    sa.Column("probability_override", BinText()),
    sa.Column("probability_override_key", BinText()),
    sa.Column("lost_reason", BinText()),
    sa.Column("closed_at", UTCDateTime()),
    sa.Column("stage_history", JSONText(), nullable=False),
    sa.Column("custom", JSONText(), nullable=False, server_default="{}"),  # revision 0013
    # the lead score (revision 0014): exact decimal text, its order key, and when it was computed
    sa.Column("win_probability", BinText()),
    sa.Column("win_probability_key", BinText()),
    sa.Column("scored_at", UTCDateTime()),
    sa.Index("ix_opportunities_customer_id", "customer_id"),
    **TABLE_OPTIONS,
)

tickets = sa.Table(
    "tickets",
    metadata,
    *_base(),
    _customer_fk(),
    sa.Column("subject", BinString(500), nullable=False),
    sa.Column("description", LongText(), nullable=False),
    sa.Column("priority", BinString(20), nullable=False),
    sa.Column("status", BinString(20), nullable=False),
    _id("assignee_id"),
    sa.Column("first_response_at", UTCDateTime()),
    sa.Column("resolved_at", UTCDateTime()),
    sa.Column("closed_at", UTCDateTime()),
    sa.Column("status_history", JSONText(), nullable=False),
    sa.Column("category", BinString(NAME)),
    sa.Column("channel", BinString(20)),
    sa.Column("custom", JSONText(), nullable=False, server_default="{}"),  # revision 0013
    sa.Index("ix_tickets_customer_id", "customer_id"),
    sa.Index("ix_tickets_category", "category"),
    **TABLE_OPTIONS,
)

interactions = sa.Table(
    "interactions",
    metadata,
    *_base(),
    _customer_fk(),
    sa.Column("kind", BinString(20), nullable=False),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Column("subject", BinString(500), nullable=False),
    sa.Column("body", LongText(), nullable=False),
    _id("user_id"),
    sa.Column("custom", JSONText(), nullable=False, server_default="{}"),  # revision 0013
    sa.Column("duration", sa.Integer()),  # revision 0016: what happened (seconds, direction, channel, links, outcome)
    sa.Column("direction", BinString(20)),
    sa.Column("channel", BinString(20)),
    _id("contact_id"),
    _id("opportunity_id"),
    sa.Column("outcome", BinString(200)),
    sa.Index("ix_interactions_customer_id_occurred_at", "customer_id", "occurred_at"),
    sa.Index("ix_interactions_contact_id", "contact_id"),
    sa.Index("ix_interactions_opportunity_id", "opportunity_id"),
    **TABLE_OPTIONS,
)

orders = sa.Table(
    "orders",
    metadata,
    *_base(),
    _customer_fk(),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    *_money("amount"),
    sa.Column("order_no", BinString(100)),
    sa.Column("custom", JSONText(), nullable=False, server_default="{}"),  # revision 0013
    sa.Column("lines", JSONText()),  # revision 0015: the lines as JSON (NULL: none), indexed in order_lines
    # revision 0011: covering for RFM and the purchase summary, which read these four columns per customer
    sa.Index("ix_orders_customer_id_occurred_at_amount", "customer_id", "occurred_at", "amount_e4", "currency"),
    sa.Index("ix_orders_currency", "currency"),  # revision 0003: the RFM currency check reads two index ends
    **TABLE_OPTIONS,
)

tasks = sa.Table(
    "tasks",
    metadata,
    *_base(),
    sa.Column("title", BinString(500), nullable=False),
    sa.Column("due_at", UTCDateTime(), nullable=False),
    _id("assignee_id"),
    _id("related_id"),
    sa.Column("done", sa.Boolean, nullable=False),
    sa.Column("custom", JSONText(), nullable=False, server_default="{}"),  # revision 0013
    sa.Index("ix_tasks_assignee_id", "assignee_id"),
    **TABLE_OPTIONS,
)

users = sa.Table(
    "users",
    metadata,
    *_base(),
    sa.Column("name", BinString(NAME), nullable=False),
    sa.Column("email", BinString(EMAIL), nullable=False, index=True),
    sa.Column("roles", JSONText(), nullable=False),
    _id("team_id"),
    **TABLE_OPTIONS,
)


#: Small JSON documents that are not entities, by (stream, key): merge records, ... (Transaction.record_*).
records = sa.Table(
    "pycrm_records",
    metadata,
    sa.Column("stream", BinString(32), primary_key=True),
    sa.Column("record_key", BinString(ID), primary_key=True),
    sa.Column("data", LongText(), nullable=False),
    **TABLE_OPTIONS,
)


#: A journal's sequence number: on SQLite ``INTEGER``, so the primary key is the rowid (revision 0005).
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: The change feed: one row per committed change of a stored row, in commit order (``s.changes``).
changes = sa.Table(
    "pycrm_changes",
    metadata,
    sa.Column("seq", SEQ, primary_key=True, autoincrement=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("entity", BinString(32), nullable=False),
    sa.Column("entity_id", BinString(ID), nullable=False),
    sa.Column("op", BinString(16), nullable=False),
    sa.Column("version", sa.Integer()),
    sa.Column("fields", LongText(), nullable=False),
    sa.Column("actor_id", BinString(ID)),
    **TABLE_OPTIONS,
)

#: The audit trail: hash-chained entries (``pycrm.security.AuditEntry``), one per change or event.
audit = sa.Table(
    "pycrm_audit",
    metadata,
    sa.Column("seq", SEQ, primary_key=True, autoincrement=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("actor_id", BinString(ID)),
    sa.Column("action", BinString(32), nullable=False),
    sa.Column("entity", BinString(32), nullable=False),
    sa.Column("entity_id", BinString(ID), index=True),
    sa.Column("diff", LongText(), nullable=False),
    sa.Column("prev_hash", BinString(64), nullable=False),
    sa.Column("hash", BinString(64), nullable=False),
    # the digest of the diff that the hash covers instead of it, so the diff can be erased (revision 0006)
    sa.Column("diff_digest", BinString(64)),
    **TABLE_OPTIONS,
)

#: The last sequence number (and, for the audit trail, hash) per journal; writers lock its row at commit,
#: so sequence numbers follow commit order and the chain has one writer at a time.
sequences = sa.Table(
    "pycrm_sequences",
    metadata,
    sa.Column("name", BinString(32), primary_key=True),
    sa.Column("value", sa.BigInteger(), nullable=False),
    sa.Column("last_hash", BinString(64)),
    **TABLE_OPTIONS,
)


#: Upsert keys held unique (storage/_keys.py, revision 0007): one row per key value a customer holds, by the
#: key's name (``custom.external_id``) and the value's key text (a blind index for an encrypted value).
customer_keys = sa.Table(
    "customer_keys",
    metadata,
    sa.Column("name", BinString(KEY_NAME), primary_key=True),
    sa.Column("value", BinString(KEY_TEXT), primary_key=True),
    sa.Column("customer_id", BinString(ID), sa.ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    sa.Index("ix_customer_keys_customer_id", "customer_id"),
    sqlite_with_rowid=False,
    **TABLE_OPTIONS,
)

#: Which keys are held unique: one row per entity (repository name), ``names`` a JSON list of key names.
#: Writers read their row under a share lock, a declaration changes it under an exclusive one (storage/sql/keys.py).
unique_keys = sa.Table(
    "pycrm_unique_keys",
    metadata,
    sa.Column("entity", BinString(32), primary_key=True),
    sa.Column("names", BinText(), nullable=False),
    **TABLE_OPTIONS,
)

#: The upsert locks (``KeyLocks``): one row per ``<repository>.<field>``, made when first needed and locked
#: ``FOR UPDATE`` to the end of the transaction that matches records by that field.
key_locks = sa.Table(
    "pycrm_key_locks",
    metadata,
    sa.Column("name", BinString(KEY_NAME + 40), primary_key=True),
    **TABLE_OPTIONS,
)


#: The longest idempotency key of an event (a time rule's firing in the database: rule|id|period).
EVENT_KEY = 200

#: The outbox (revision 0008, storage/sql/outbox.py): domain events written with the changes that raised them,
#: then claimed and settled by dispatchers. ``seq`` is given by the database (events of one record are written
#: in the order of the record's writes, which its row lock orders); ``key`` is the idempotency key.
outbox = sa.Table(
    "pycrm_outbox",
    metadata,
    sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
    sa.Column("event_key", BinString(EVENT_KEY), nullable=False),
    sa.Column("event", BinString(64), nullable=False),
    sa.Column("entity", BinString(32)),
    sa.Column("entity_id", BinString(ID)),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("actor_id", BinString(ID)),
    sa.Column("data", LongText(), nullable=False),
    sa.Column("state", BinString(8), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_at", UTCDateTime(), nullable=False),
    sa.Column("claimed_by", BinString(ID)),
    sa.Column("claimed_until", UTCDateTime()),
    sa.Column("delivered", LongText(), nullable=False),
    sa.Column("error", LongText()),
    sa.Column("done_at", UTCDateTime()),
    sa.Index("ux_pycrm_outbox_event_key", "event_key", unique=True),
    sa.Index("ix_pycrm_outbox_state_seq", "state", "seq"),
    # for erasure, which rewrites custom events only: partial where the database has partial indexes, so the
    # other events (nearly all) cost no entry (a run_due writing 70,000 events: 8% faster)
    sa.Index(
        "ix_pycrm_outbox_entity_id",
        "entity_id",
        sqlite_where=sa.text("event = 'CustomEvent'"),
        postgresql_where=sa.text("event = 'CustomEvent'"),
    ),
    **TABLE_OPTIONS,
)


def _list_table(name: str, owner: str, parent: str, value: str, length: int) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column(owner, BinString(ID), sa.ForeignKey(f"{parent}.id", ondelete="CASCADE"), primary_key=True),
        sa.Column(value, BinString(length), primary_key=True),
        sa.Index(f"ix_{name}_{value}", value, owner),
        sqlite_with_rowid=False,  # the key is the whole row: one B-tree on SQLite, not two (revision 0005)
        **TABLE_OPTIONS,
    )


customer_emails = _list_table("customer_emails", "customer_id", "customers", "email", EMAIL)
customer_phones = _list_table("customer_phones", "customer_id", "customers", "phone", PHONE)
customer_tags = _list_table("customer_tags", "customer_id", "customers", "tag", TAG)

surveys = sa.Table(  # revision 0009
    "surveys",
    metadata,
    *_base(),
    _customer_fk(),
    sa.Column("kind", BinString(10), nullable=False),
    sa.Column("sent_at", UTCDateTime(), nullable=False),
    sa.Column("score", sa.SmallInteger),
    sa.Column("comment", LongText(), nullable=False),
    _id("ticket_id"),
    _id("interaction_id"),
    _id("user_id"),
    sa.Column("answered_at", UTCDateTime()),
    sa.Column("custom", JSONText(), nullable=False, server_default="{}"),  # revision 0013
    sa.Index("ix_surveys_customer_id", "customer_id"),
    sa.Index("ix_surveys_sent_at", "sent_at"),
    **TABLE_OPTIONS,
)

campaigns = sa.Table(  # revision 0012
    "campaigns",
    metadata,
    *_base(),
    sa.Column("name", BinString(200), nullable=False),
    sa.Column("channel", BinString(10), nullable=False),
    sa.Column("start", sa.Date),
    sa.Column("end", sa.Date),
    sa.Column("budget_e4", sa.BigInteger),
    sa.Column("budget_scale", sa.SmallInteger),
    sa.Column("spend_e4", sa.BigInteger),
    sa.Column("spend_scale", sa.SmallInteger),
    sa.Column("currency", BinString(3)),
    sa.Column("status", BinString(20), nullable=False),
    _id("owner_id"),
    sa.Column("window_days", sa.Integer, nullable=False),
    sa.Column("attribution", BinString(10), nullable=False),
    **TABLE_OPTIONS,
)

campaign_members = sa.Table(  # revision 0012
    "campaign_members",
    metadata,
    *_base(),
    sa.Column("campaign_id", BinString(ID), sa.ForeignKey("campaigns.id"), nullable=False),
    _customer_fk(),
    sa.Column("added_at", UTCDateTime(), nullable=False),
    _id("contact_id"),
    sa.Column("state", BinString(20), nullable=False),
    sa.Index("ix_campaign_members_campaign_id", "campaign_id"),
    sa.Index("ix_campaign_members_customer_id", "customer_id"),
    **TABLE_OPTIONS,
)

campaign_responses = sa.Table(  # revision 0012
    "campaign_responses",
    metadata,
    *_base(),
    sa.Column("member_id", BinString(ID), sa.ForeignKey("campaign_members.id"), nullable=False),
    sa.Column("campaign_id", BinString(ID), sa.ForeignKey("campaigns.id"), nullable=False),
    _customer_fk(),
    sa.Column("kind", BinString(20), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Index("ix_campaign_responses_campaign_id", "campaign_id"),
    sa.Index("ix_campaign_responses_member_id", "member_id"),
    sa.Index("ix_campaign_responses_customer_id", "customer_id"),
    **TABLE_OPTIONS,
)

activities = sa.Table(  # revision 0016: behaviour events (web visits, app events)
    "activities",
    metadata,
    *_base(),
    _customer_fk(),
    sa.Column("kind", BinString(40), nullable=False),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Column("properties", JSONText(), nullable=False),
    _id("contact_id"),
    sa.Column("source", BinString(40)),
    sa.Index("ix_activities_customer_id_occurred_at", "customer_id", "occurred_at"),
    sa.Index("ix_activities_kind_occurred_at", "kind", "occurred_at"),
    **TABLE_OPTIONS,
)

products = sa.Table(  # revision 0015
    "products",
    metadata,
    *_base(),
    sa.Column("sku", BinString(100), nullable=False),
    sa.Column("name", BinString(NAME), nullable=False),
    sa.Column("category", BinString(NAME)),
    sa.Column("unit", BinString(20), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("custom", JSONText(), nullable=False),
    sa.Index("ux_products_sku", "sku", unique=True),
    sa.Index("ix_products_category", "category"),
    **TABLE_OPTIONS,
)

#: An order's lines, one row each (revision 0015): what the product reports and basket analysis read.
#: ``amount_e4`` is the line's total (quantity x unit price - discount) in 1/10,000 of ``currency``.
order_lines = sa.Table(
    "order_lines",
    metadata,
    sa.Column("order_id", BinString(ID), sa.ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("line_no", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("product_id", BinString(ID), sa.ForeignKey("products.id"), nullable=False),
    sa.Column("quantity", sa.BigInteger, nullable=False),
    sa.Column("unit_price_e4", sa.BigInteger, nullable=False),
    sa.Column("discount_e4", sa.BigInteger, nullable=False),
    sa.Column("amount_e4", sa.BigInteger, nullable=False),
    sa.Column("currency", BinString(3), nullable=False),
    sa.Index("ix_order_lines_product_id", "product_id", "order_id"),
    **TABLE_OPTIONS,
)

attachments = sa.Table(  # revision 0017
    "attachments",
    metadata,
    *_base(),
    _customer_fk(),
    sa.Column("record_kind", BinString(20), nullable=False),
    _id("record_id", nullable=False),
    sa.Column("name", BinString(255), nullable=False),
    sa.Column("media_type", BinString(255), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", BinString(64), nullable=False),
    _id("uploaded_by"),
    sa.Index("ix_attachments_customer_id", "customer_id"),
    sa.Index("ix_attachments_record_id", "record_id"),
    sa.Index("ix_attachments_sha256", "sha256"),
    **TABLE_OPTIONS,
)

contact_emails = _list_table("contact_emails", "contact_id", "contacts", "email", EMAIL)
contact_phones = _list_table("contact_phones", "contact_id", "contacts", "phone", PHONE)


@attrs.frozen
class ListTable:
    """A child table holding one list field's values (deduplicated) for lookups through an index: ``owner``
    the record's id, ``value`` what a condition on the field matches (an order line's product id); rows may
    hold more columns (an order line's quantity and prices), written in table order."""

    field: str
    table: sa.Table
    owner: sa.Column[str]
    value: sa.Column[str]


def _lt(field: str, table: sa.Table, value: str | None = None) -> ListTable:
    owner, second = list(table.columns)[:2]
    return ListTable(field, table, owner, second if value is None else table.c[value])


ENTITY_TABLES: dict[type[Entity], sa.Table] = {
    Customer: customers,
    Contact: contacts,
    Opportunity: opportunities,
    Ticket: tickets,
    Interaction: interactions,
    Order: orders,
    Task: tasks,
    User: users,
    Survey: surveys,
    Activity: activities,
    Campaign: campaigns,
    CampaignMember: campaign_members,
    CampaignResponse: campaign_responses,
    Product: products,
    Attachment: attachments,
}

#: list field -> child table, per entity kind.
LIST_TABLES: dict[type[Entity], dict[str, ListTable]] = {
    Customer: {
        "emails": _lt("emails", customer_emails),
        "phones": _lt("phones", customer_phones),
        "tags": _lt("tags", customer_tags),
    },
    Contact: {"emails": _lt("emails", contact_emails), "phones": _lt("phones", contact_phones)},
    Order: {"lines": _lt("lines", order_lines, "product_id")},
}
for _kind in ENTITY_TABLES:
    LIST_TABLES.setdefault(_kind, {})
