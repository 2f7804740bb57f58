"""Alembic migrations: from empty they build exactly the schema the adapter uses, and an older schema
holding data upgrades to the newest without losing it (SQLite, PostgreSQL, MariaDB)."""

from __future__ import annotations

import contextlib
import io
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.util import CommandError
from sqlalchemy.pool import NullPool

import pycrm
from pycrm import Contact, CRMError, Customer, CustomField
from pycrm.security import AuditEntry, VerifyResult
from pycrm.storage.sql import migrate_ops as ops
from pycrm.storage.sql.migrate import alembic_config, head_revision
from pycrm.storage.sql.tables import VERSION_TABLE, metadata


@contextlib.contextmanager
def _downgraded(sql_url: str, revision: str) -> Iterator[sa.Connection]:
    """A connection to the database after a downgrade to ``revision``."""
    engine = sa.create_engine(sql_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), revision)  # type: ignore[arg-type]
        with engine.connect() as conn:
            assert _revision(conn) == revision
            yield conn
    finally:
        engine.dispose()


def _revision(conn: sa.Connection) -> str | None:
    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def test_migrations_from_empty_build_exactly_the_tables(sql_url: str) -> None:
    pycrm.open(sql_url).close()  # opening migrates an empty database to the head revision
    engine = sa.create_engine(sql_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            assert _revision(conn) == head_revision()
            ctx = MigrationContext.configure(conn, opts={"compare_type": False, "version_table": VERSION_TABLE})
            diffs = [d for d in compare_metadata(ctx, metadata) if not (isinstance(d, tuple) and d[0] == "remove_table")]
            assert diffs == []
    finally:
        engine.dispose()


def test_a_store_at_the_first_revision_upgrades_with_its_data(sql_url: str) -> None:
    crm = pycrm.open(sql_url)
    with crm.session() as s:
        a = s.customers.add(Customer("Acme Ltd", emails=["a@acme.com"]))
        b = s.customers.add(Customer("ACME LIMITED", emails=["b@acme.com"]))
    crm.close()
    engine = sa.create_engine(sql_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:  # back to the first release's schema, data in place
            command.downgrade(alembic_config(conn), "0001")  # type: ignore[arg-type]
        with engine.connect() as conn:
            assert _revision(conn) == "0001"
            assert "pycrm_records" not in sa.inspect(conn).get_table_names()
    finally:
        engine.dispose()
    crm = pycrm.open(sql_url)  # upgrades to the head revision
    try:
        with crm.session() as s:
            assert s.customers.get(a.id) == a
            record = s.customers.merge(a.id, [b.id])  # needs the records table of revision 0002
        with crm.session() as s:
            assert [e.value for e in s.customers.get(a.id).emails] == ["a@acme.com", "b@acme.com"]
            assert s.customers.merges()[0].id == record.id
    finally:
        crm.close()


def test_revision_0005_keeps_rows_journal_and_trail(sql_url: str) -> None:
    """Revision 0005 rebuilds SQLite's list and journal tables (elsewhere it changes nothing): rows, the
    change feed and the audit trail come through a downgrade to 0004 and back, and lookups still work."""
    crm = pycrm.open(sql_url, audit=True)
    with crm.session() as s:
        a = s.customers.add(Customer("Acme Ltd", emails=["a@acme.com"], phones=["+8613800138000"], tags=["vip"]))
        s.contacts.add(Contact(a.id, "Ada", "Lovelace", emails=["ada@acme.com"], phones=["+8613800138001"]))
        a.name = "Acme Limited"
        s.customers.update(a)
    with crm.session() as s:
        feed = s.changes.since(0)
    trail = crm.audit.history(a.id)
    crm.close()
    engine = sa.create_engine(sql_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0004")  # type: ignore[arg-type]
        with engine.connect() as conn:
            assert _revision(conn) == "0004"
            if conn.dialect.name == "sqlite":
                sql = dict(conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table'").all())
                assert "WITHOUT ROWID" not in sql["customer_emails"] and "seq BIGINT" in sql["pycrm_audit"]
    finally:
        engine.dispose()
    crm = pycrm.open(sql_url, audit=True)  # upgrades to the head revision
    try:
        with crm.session() as s:
            assert s.customers.get(a.id) == a
            assert [c.id for c in s.customers.find({"emails": "a@acme.com"})] == [a.id]
            assert [c.id for c in s.customers.find({"tags": "vip"})] == [a.id]
            assert [c.first_name for c in s.contacts.find({"phones": "+8613800138001"})] == ["Ada"]
            assert s.changes.since(0) == feed
            s.customers.add(Customer("Beta Co", emails=["b@beta.com"]))
        assert crm.audit.history(a.id) == trail
        assert crm.audit.verify().ok
        with crm.session() as s:
            assert [e.seq for e in s.changes.since(0)] == [e.seq for e in feed] + [feed[-1].seq + 1]
    finally:
        crm.close()
    engine = sa.create_engine(sql_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                sql = dict(conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table'").all())
                for name in ("customer_emails", "customer_phones", "customer_tags", "contact_emails", "contact_phones"):
                    assert sql[name].rstrip().endswith("WITHOUT ROWID"), name
                for name in ("pycrm_changes", "pycrm_audit"):
                    assert "seq INTEGER NOT NULL" in sql[name], name
                indexes = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'")}
                assert {"ix_customer_emails_email", "ix_contact_phones_phone", "ix_pycrm_audit_entity_id"} <= indexes
                assert not {i for i in indexes if i.startswith("sqlite_autoindex_pycrm_audit")}
    finally:
        engine.dispose()


def trail_with_an_erasure(sql_url: str) -> tuple[list[AuditEntry], VerifyResult]:
    """Two customers, one of them erased, in a store with the audit trail on: the trail and its check."""
    crm = pycrm.open(sql_url, audit=True)
    try:
        with crm.session() as s:
            a = s.customers.add(Customer("Acme Ltd", emails=["a@acme.com"]))
            s.customers.add(Customer("Beta Co", emails=["b@beta.com"]))
        with crm.session() as s:
            s.personal.erase(a.id)
        trail = list(crm.audit.entries())
        result = crm.audit.verify()
    finally:
        crm.close()
    assert result.ok and all(e.diff_digest for e in trail)
    return trail, result


def test_revision_0006_keeps_the_digests_through_a_downgrade(sql_url: str) -> None:
    """Revision 0006 adds the audit trail's ``diff_digest``; a downgrade keeps the digests aside and the next
    upgrade puts them back, so the trail (with an erasure in it) verifies again."""
    trail, result = trail_with_an_erasure(sql_url)
    assert result.erased == 2  # the create and the erasure's own update
    with _downgraded(sql_url, "0005") as conn:
        assert "diff_digest" not in {c["name"] for c in sa.inspect(conn).get_columns("pycrm_audit")}
        assert conn.exec_driver_sql("SELECT count(*) FROM pycrm_audit_digests").scalar_one() == len(trail)
    crm = pycrm.open(sql_url, audit=True)  # upgrades to the head revision
    try:
        assert list(crm.audit.entries()) == trail
        assert crm.audit.verify() == result
        assert "pycrm_audit_digests" not in sa.inspect(crm.store.engine).get_table_names()
    finally:
        crm.close()


def test_a_table_of_another_application_under_a_pycrm_name_stops_the_open(sql_url: str) -> None:
    """Steps skip what exists (so a crashed upgrade can be completed), but only what pycrm made: a host
    application's own ``customers`` table is not taken for pycrm's, the open fails naming it."""
    engine = sa.create_engine(sql_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE customers (code VARCHAR(10) PRIMARY KEY)"))
        with pytest.raises(CRMError, match=r"table 'customers' exists without the column\(s\) id, version, .*not pycrm's"):
            pycrm.open(sql_url)
        with engine.connect() as conn:
            assert [c["name"] for c in sa.inspect(conn).get_columns("customers")] == ["code"]
    finally:
        engine.dispose()


def test_offline_mode_writes_a_script_that_builds_the_schema(tmp_path: Path) -> None:
    """``alembic upgrade head --sql`` (no database to look at: every step written out) gives a script that
    builds the same tables as an open."""
    cfg: Any = alembic_config()
    cfg.set_main_option("sqlalchemy.url", "sqlite://")
    cfg.output_buffer = io.StringIO()
    command.upgrade(cfg, "head", sql=True)
    script = cfg.output_buffer.getvalue()
    db = sqlite3.connect(tmp_path / "offline.db")
    try:
        db.executescript(script)
    finally:
        db.close()
    engine = sa.create_engine(f"sqlite:///{tmp_path}/offline.db", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            assert _revision(conn) == head_revision()
            ctx = MigrationContext.configure(conn, opts={"compare_type": False, "version_table": VERSION_TABLE})
            assert compare_metadata(ctx, metadata) == []
            sql = dict(conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table'").all())
            assert sql["customer_emails"].rstrip().endswith("WITHOUT ROWID")
    finally:
        engine.dispose()


def test_restartable_steps_do_only_what_is_missing_and_see_ddl_run_behind_their_back(tmp_path: Path) -> None:
    """``migrate_ops``: each step run twice does its work once; DDL run around the steps (here straight on
    the connection) is seen by the next step; a table or index under a pycrm name that is not pycrm's stops
    the migration."""
    engine = sa.create_engine(f"sqlite:///{tmp_path}/steps.db", poolclass=NullPool)
    try:
        with engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
            for run in range(2):
                table = ops.create_table("t", sa.Column("k", sa.String(10), primary_key=True), sa.Column("a", sa.Integer))
                ops.create_index("ix_t_a", "t", ["a"])
                ops.add_column("t", sa.Column("b", sa.Integer))
                assert ops.insert_missing(table, ["k"], [{"k": "x", "a": 1}, {"k": "y", "a": 2}]) == (2 if run == 0 else 0)
            assert conn.exec_driver_sql("SELECT k, a FROM t ORDER BY k").all() == [("x", 1), ("y", 2)]
            assert [c["name"] for c in sa.inspect(conn).get_columns("t")] == ["k", "a", "b"]
            conn.exec_driver_sql("DROP INDEX ix_t_a")  # behind the steps' back
            assert not ops.has_index("t", "ix_t_a")
            ops.create_index("ix_t_a", "t", ["a"])
            assert [i["name"] for i in sa.inspect(conn).get_indexes("t")] == ["ix_t_a"]
            with pytest.raises(CommandError, match="index 'ix_t_a' on 't' exists on"):
                ops.create_index("ix_t_a", "t", ["b"])
            for _ in range(2):
                ops.rename_table("t", "u")
            assert ops.has_table("u") and not ops.has_table("t")
            with pytest.raises(CommandError, match="neither exists"):
                ops.rename_table("t", "v")
            conn.exec_driver_sql("CREATE TABLE t (other INTEGER)")
            with pytest.raises(CommandError, match="table 't' exists without the column\\(s\\) k, a: it is not pycrm's"):
                ops.create_table("t", sa.Column("k", sa.String(10), primary_key=True), sa.Column("a", sa.Integer))
            for _ in range(2):
                ops.drop_column("u", "b")
                ops.drop_index("ix_t_a", "u")
                ops.drop_table("t")
            assert sa.inspect(conn).get_table_names() == ["u"]
            assert [c["name"] for c in sa.inspect(conn).get_columns("u")] == ["k", "a"]
            assert sa.inspect(conn).get_indexes("u") == []
    finally:
        engine.dispose()


def _set_custom(sql_url: str, ids_custom: dict[str, dict[str, Any]]) -> None:
    """Write customers' custom values behind pycrm's back (as a store at an older revision may hold them)."""
    from pycrm.storage.sql.tables import customers

    engine = sa.create_engine(sql_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            for id, custom in ids_custom.items():
                conn.execute(sa.update(customers).where(customers.c.id == id).values(custom=custom))
    finally:
        engine.dispose()


def test_revision_0007_keys_the_external_ids_already_stored(sql_url: str) -> None:
    crm = pycrm.open(sql_url)
    with crm.session() as s:
        a = s.customers.add(Customer("Acme", custom={"external_id": "E1"}))
        s.customers.add(Customer("Beta", custom={"external_id": 2, "note": "x"}))
        s.customers.add(Customer("Gamma"))
    crm.close()
    with _downgraded(sql_url, "0006") as conn:
        assert "customer_keys" not in sa.inspect(conn).get_table_names()
    crm = pycrm.open(sql_url)  # upgrades: the key table is built from the customers stored
    try:
        with pytest.raises(pycrm.ValidationError) as caught, crm.session() as s:
            s.customers.add(Customer("Acme again", custom={"external_id": "E1"}))
        assert [(e.field, e.code) for e in caught.value.errors] == [("custom.external_id", "duplicate_key")]
        with pytest.raises(pycrm.ValidationError), crm.session() as s:
            s.customers.add(Customer("Beta again", custom={"external_id": 2}))
        with crm.session() as s:
            s.customers.add(Customer("Delta", custom={"external_id": "2"}))  # text, not the number 2
            s.customers.delete(a.id)
            s.customers.add(Customer("Acme new", custom={"external_id": "E1"}))
    finally:
        crm.close()


def test_revision_0007_leaves_shared_external_ids_non_unique_and_says_which(sql_url: str) -> None:
    crm = pycrm.open(sql_url)
    with crm.session() as s:
        a = s.customers.add(Customer("Acme", custom={"external_id": "E1"}))
        b = s.customers.add(Customer("ACME Ltd"))
        c = s.customers.add(Customer("Other", custom={"external_id": "E2"}))
    crm.close()
    with _downgraded(sql_url, "0006"):
        pass
    _set_custom(sql_url, {str(b.id): {"external_id": "E1"}})  # two customers share E1, as stores could
    with pytest.warns(UserWarning, match=r"custom\.external_id is left non-unique") as warned:
        crm = pycrm.open(sql_url)
    try:
        assert a.id in str(warned[0].message) and b.id in str(warned[0].message)
        with crm.session() as s:  # the store works; external ids are not held unique
            s.customers.add(Customer("Third", custom={"external_id": "E2"}))
        with pytest.raises(pycrm.CRMError, match=r"custom\.external_id cannot be held unique"):
            pycrm.CRM(crm.store, custom_fields={"customers": [CustomField("external_id", unique=True)]})
        with crm.session() as s:
            s.customers.merge(str(a.id), [str(b.id)])
            s.customers.delete(s.customers.find({"name": "Third"})[0].id)
        unique = pycrm.CRM(crm.store, custom_fields={"customers": [CustomField("external_id", unique=True)]})
        with pytest.raises(pycrm.ValidationError), unique.session() as s:
            s.customers.add(Customer("Fourth", custom={"external_id": "E2"}))
        with crm.session() as s:
            assert s.customers.get(c.id).custom == {"external_id": "E2"}
    finally:
        crm.close()


def test_revision_0007_finishes_after_an_interrupted_run(sql_url: str) -> None:
    """MariaDB does not roll DDL back: a run killed after some steps left tables (and, on any database, a key
    row that no registration covers); the next open completes the revision."""
    from pycrm.storage.sql import tables

    crm = pycrm.open(sql_url)
    with crm.session() as s:
        a = s.customers.add(Customer("Acme", custom={"external_id": "E1"}))
        b = s.customers.add(Customer("Beta", custom={"external_id": "E2"}))
    crm.close()
    with _downgraded(sql_url, "0006"):
        pass
    engine = sa.create_engine(sql_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:  # the first steps of 0007, and a stale key row
            tables.unique_keys.create(conn)
            tables.customer_keys.create(conn)
            conn.execute(sa.insert(tables.customer_keys).values(name="custom.external_id", value="s:E2", customer_id=a.id))
    finally:
        engine.dispose()
    crm = pycrm.open(sql_url)
    try:
        with pytest.raises(pycrm.ValidationError), crm.session() as s:
            s.customers.add(Customer("Beta again", custom={"external_id": "E2"}))
        with crm.session() as s:
            s.customers.delete(b.id)  # E2 was keyed to its holder, not to the stale row's customer
            s.customers.add(Customer("Beta new", custom={"external_id": "E2"}))
    finally:
        crm.close()


def test_revision_0009_downgrades_and_finishes_after_an_interrupted_run(sql_url: str) -> None:
    """Revision 0009 adds ``surveys``: a downgrade to 0008 drops it (its indexes with it), and a run that
    stopped after making the table but not its indexes (MariaDB does not roll DDL back) completes on the
    next open; surveys are stored again."""
    import datetime as dt

    from pycrm import Survey
    from pycrm.storage.sql import tables

    crm = pycrm.open(sql_url)
    with crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        s.surveys.add(Survey(str(c.id), "csat", dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)))
    crm.close()
    with _downgraded(sql_url, "0008") as conn:
        assert "surveys" not in sa.inspect(conn).get_table_names()
    engine = sa.create_engine(sql_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:  # the first step of 0009 only: the table, no index
            meta = sa.MetaData()
            tables.customers.to_metadata(meta)  # what the foreign key refers to (not created: it is there)
            table = tables.surveys.to_metadata(meta)
            table.indexes.clear()
            table.create(conn)
    finally:
        engine.dispose()
    crm = pycrm.open(sql_url)  # upgrades again: the table is kept, the missing indexes made
    try:
        with crm.session() as s:
            assert s.customers.get(str(c.id)).name == "Acme" and s.surveys.count() == 0
            s.surveys.add(Survey(str(c.id), "nps", dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)))
        with crm.session() as s:
            assert [v.kind for v in s.surveys.find()] == ["nps"]
    finally:
        crm.close()
    engine = sa.create_engine(sql_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            assert _revision(conn) == head_revision()
            indexes = {ix["name"] for ix in sa.inspect(conn).get_indexes("surveys")}
            assert {"ix_surveys_customer_id", "ix_surveys_sent_at"} <= indexes
    finally:
        engine.dispose()


def test_revision_0010_keeps_the_tickets_and_adds_category_and_channel(sql_url: str) -> None:
    from pycrm import Ticket

    crm = pycrm.open(sql_url)
    with crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        t = Ticket(str(c.id), "Printer on fire", priority="urgent", assignee_id="u1")
        t.move_to("open")
        old = s.tickets.add(t)
    crm.close()
    with _downgraded(sql_url, "0009") as conn:
        columns = {col["name"] for col in sa.inspect(conn).get_columns("tickets")}
        assert {"category", "channel"}.isdisjoint(columns) and "status_history" in columns
    crm = pycrm.open(sql_url)  # upgrades: the ticket is there, with no category or channel
    try:
        with crm.session() as s:
            got = s.tickets.get(old.id)
            assert got == old and (got.category, got.channel) == (None, None)
            got.category, got.channel = "Hardware/Printer", "phone"
            s.tickets.update(got)
            s.tickets.add(Ticket(str(c.id), "Toner", category="Hardware/Printer/Toner", channel="web"))
        with crm.session() as s:
            branch = s.tickets.find({"category": {"startswith": "Hardware/"}}, order_by="subject")
            assert [(x.subject, x.category, x.channel) for x in branch] == [
                ("Printer on fire", "Hardware/Printer", "phone"),
                ("Toner", "Hardware/Printer/Toner", "web"),
            ]
            assert s.tickets.get(old.id).status_history == old.status_history
    finally:
        crm.close()
    engine = sa.create_engine(sql_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            assert "ix_tickets_category" in {i["name"] for i in sa.inspect(conn).get_indexes("tickets")}
    finally:
        engine.dispose()


def test_revision_0011_swaps_the_orders_index_for_a_covering_one_and_keeps_the_orders(sql_url: str) -> None:
    """Revision 0011 replaces ``ix_orders_customer_id_occurred_at`` by the covering
    ``ix_orders_customer_id_occurred_at_amount``; a downgrade to 0010 puts the old one back, and after the
    round trip the orders, RFM and the purchase summary are what they were."""
    import datetime as dt

    from pycrm import Money, Order

    old, new = "ix_orders_customer_id_occurred_at", "ix_orders_customer_id_occurred_at_amount"
    at = dt.datetime(2024, 1, 1, 9, tzinfo=dt.UTC)

    def figures(crm: pycrm.CRM) -> tuple[Any, ...]:
        with crm.session() as s:
            return (
                sorted((o.id, o.customer_id, o.occurred_at, o.amount) for o in s.orders.iter()),
                s.analytics.rfm(as_of="2024-03-31"),
                list(s.analytics.purchase_summary(calibration_end="2024-03-31")),
                list(s.analytics.purchase_summary(calibration_end="2024-03-31", freq="W", unit="W")),
            )

    def indexes() -> dict[str, list[str]]:
        engine = sa.create_engine(sql_url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                return {i["name"]: i["column_names"] for i in sa.inspect(conn).get_indexes("orders") if i["name"]}
        finally:
            engine.dispose()

    crm = pycrm.open(sql_url)
    try:
        with crm.session() as s:
            ids = [s.customers.add(Customer(f"C{k}")).id for k in range(3)]
            s.orders.add_many(Order(ids[k % 3], at + dt.timedelta(days=5 * k, hours=k), Money(10 + k, "CNY")) for k in range(12))
        before = figures(crm)
    finally:
        crm.close()
    assert indexes()[new] == ["customer_id", "occurred_at", "amount_e4", "currency"] and old not in indexes()
    with _downgraded(sql_url, "0010"):
        pass
    got = indexes()
    assert got[old] == ["customer_id", "occurred_at"] and new not in got
    crm = pycrm.open(sql_url)  # upgrades again
    try:
        assert figures(crm) == before
    finally:
        crm.close()
    got = indexes()
    assert new in got and old not in got


def test_revision_0012_adds_the_campaign_tables_and_downgrades(sql_url: str) -> None:
    """Revision 0012 adds ``campaigns``, ``campaign_members`` and ``campaign_responses``: a downgrade to 0011
    drops them (the customers stay), the next open makes them again and campaigns are stored."""
    import datetime as dt

    from pycrm import Campaign, CampaignMember
    from pycrm.domain import Money

    at = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    names = {"campaigns", "campaign_members", "campaign_responses"}
    crm = pycrm.open(sql_url)
    with crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        k = s.campaigns.add(Campaign("Spring", "email", spend=Money("12.50", "EUR")))
        s.campaign_members.add(CampaignMember(str(k.id), str(c.id), at))
    crm.close()
    with _downgraded(sql_url, "0011") as conn:
        assert names.isdisjoint(sa.inspect(conn).get_table_names())
    crm = pycrm.open(sql_url)  # upgrades again: empty campaign tables, the customer kept
    try:
        with crm.session() as s:
            assert s.customers.get(str(c.id)).name == "Acme" and s.campaigns.count() == 0
            k = s.campaigns.add(Campaign("Again", "sms", budget=Money("7", "EUR"), spend=Money("3.25", "EUR")))
            s.campaign_members.add(CampaignMember(str(k.id), str(c.id), at))
        with crm.session() as s:
            got = s.campaigns.get(str(k.id))
            assert (got.budget, got.spend) == (Money("7", "EUR"), Money("3.25", "EUR"))
            assert s.campaign_members.count({"campaign_id": str(k.id)}) == 1
    finally:
        crm.close()
    engine = sa.create_engine(sql_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            assert _revision(conn) == head_revision()
            assert names <= set(sa.inspect(conn).get_table_names())
            indexes = {ix["name"] for ix in sa.inspect(conn).get_indexes("campaign_responses")}
            assert {"ix_campaign_responses_member_id", "ix_campaign_responses_customer_id"} <= indexes
    finally:
        engine.dispose()


def test_revision_0013_keeps_the_records_and_adds_custom_values_everywhere(sql_url: str) -> None:
    """Revision 0013 gives contacts, opportunities, tickets, interactions, orders, tasks and surveys a ``custom``
    column: records stored before read back with no custom values, and a downgrade to 0012 drops the columns."""
    import datetime as dt

    from pycrm import Interaction, Money, Opportunity, Order, Survey, Task, Ticket

    at = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    crm = pycrm.open(sql_url)
    with crm.session() as s:
        c = s.customers.add(Customer("Acme", custom={"tier": "gold"}))
        cid = str(c.id)
        old = [
            s.contacts.add(Contact(cid, "Ada", emails=["ada@acme.example"])),
            s.opportunities.add(Opportunity(cid, "Deal", Money(100, "CNY"))),
            s.tickets.add(Ticket(cid, "Help")),
            s.interactions.add(Interaction(cid, "call", at)),
            s.orders.add(Order(cid, at, Money(5, "CNY"))),
            s.tasks.add(Task("Call back", at)),
            s.surveys.add(Survey(cid, "csat", at)),
        ]
    crm.close()
    tables = ("contacts", "opportunities", "tickets", "interactions", "orders", "tasks", "surveys")
    with _downgraded(sql_url, "0012") as conn:
        for table in tables:
            assert "custom" not in {col["name"] for col in sa.inspect(conn).get_columns(table)}, table
        assert "custom" in {col["name"] for col in sa.inspect(conn).get_columns("customers")}
    crm = pycrm.open(sql_url, custom_fields={"contacts": [CustomField("score", "integer")]})  # upgrades again
    try:
        with crm.session() as s:
            for e in old:
                got = s._repository(type(e).entity_name()).get(e.id)
                assert got.custom == {} and got.version == e.version, type(e).__name__
            assert s.customers.get(cid).custom == {"tier": "gold"}
            k = s.contacts.get(old[0].id)
            k.custom = {"score": 90}
            s.contacts.update(k)
        with crm.session() as s:
            assert [x.first_name for x in s.contacts.find({"custom.score": {"gte": 80}})] == ["Ada"]
    finally:
        crm.close()


def test_revision_0014_keeps_the_deals_and_adds_the_lead_score(sql_url: str) -> None:
    import datetime as dt
    from decimal import Decimal

    from pycrm import Money, Opportunity

    crm = pycrm.open(sql_url)
    with crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        o = Opportunity(str(c.id), "Big deal", Money(1000, "EUR"), owner_id="u1", probability_override="0.35")
        o.move_to("proposal")
        old = s.opportunities.add(o)
    crm.close()
    for _ in range(2):  # down and up twice: the columns come back each time
        with _downgraded(sql_url, "0013") as conn:
            columns = {col["name"] for col in sa.inspect(conn).get_columns("opportunities")}
            assert {"win_probability", "win_probability_key", "scored_at"}.isdisjoint(columns)
            assert "stage_history" in columns
        crm = pycrm.open(sql_url)  # upgrades: the deal is there, not scored
        try:
            with crm.session() as s:
                got = s.opportunities.get(old.id)
                assert (got.win_probability, got.scored_at) == (None, None)
                assert (got.stage, got.probability_override) == ("proposal", Decimal("0.35"))
                assert got.stage_history == old.stage_history
                got.win_probability, got.scored_at = 0.8125, dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)
                s.opportunities.update(got)
            with crm.session() as s:
                hits = s.opportunities.find({"win_probability": {"gte": "0.8"}})
                assert [(x.id, x.win_probability) for x in hits] == [(old.id, Decimal("0.8125"))]
                assert hits[0].scored_at == dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)
        finally:
            crm.close()


def test_revision_0015_keeps_the_orders_and_adds_products_and_order_lines(sql_url: str) -> None:
    """Revision 0015 adds ``products``, ``orders.lines`` and ``order_lines``: a downgrade to 0014 drops them
    and keeps the orders (an order stored with lines keeps its amount); the upgrade brings the tables back,
    the old orders have no lines, and orders with lines are stored and found by product again."""
    import datetime as dt

    from pycrm import Money, Order, OrderLine, Product

    at = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    crm = pycrm.open(sql_url)
    with crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        p = s.products.add(Product("TEA-1", "Sencha", category="Tea/Green"))
        plain = s.orders.add(Order(str(c.id), at, Money("10.00", "EUR"), order_no="A-1"))
        lined = s.orders.add(Order.from_lines(str(c.id), at, [OrderLine(str(p.id), 3, Money("4.00", "EUR"))]))
    crm.close()
    with _downgraded(sql_url, "0014") as conn:
        inspector = sa.inspect(conn)
        assert {"products", "order_lines"}.isdisjoint(inspector.get_table_names())
        assert "lines" not in {col["name"] for col in inspector.get_columns("orders")}
        amounts = dict(conn.execute(sa.text("SELECT id, amount_e4 FROM orders")).all())
        assert amounts == {plain.id: 100000, lined.id: 120000}
    crm = pycrm.open(sql_url)  # upgrades: both orders are there, without lines
    try:
        with crm.session() as s:
            assert [(o.id, o.amount, o.lines) for o in s.orders.find(order_by="order_no")] == [
                (lined.id, Money("12.00", "EUR"), []),
                (plain.id, Money("10.00", "EUR"), []),
            ]
            q = s.products.add(Product("TEA-2", "Gyokuro", category="Tea/Green"))
            again = s.orders.add(Order.from_lines(str(c.id), at, [OrderLine(str(q.id), 2, Money("7.50", "EUR"))]))
        with crm.session() as s:
            assert [o.id for o in s.orders.find({"lines": str(q.id)})] == [again.id]
            assert s.orders.get(again.id).lines == again.lines
    finally:
        crm.close()
    engine = sa.create_engine(sql_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            assert _revision(conn) == head_revision()
            assert "ix_order_lines_product_id" in {i["name"] for i in sa.inspect(conn).get_indexes("order_lines")}
            assert conn.execute(sa.text("SELECT order_id, product_id, quantity FROM order_lines")).all() == [(again.id, q.id, 2)]
    finally:
        engine.dispose()


def test_revision_0016_keeps_the_interactions_and_adds_what_happened_and_activities(sql_url: str) -> None:
    """Revision 0016 adds ``duration``, ``direction``, ``channel``, ``contact_id``, ``opportunity_id`` and
    ``outcome`` to ``interactions``: a downgrade to 0015 drops them and keeps the interactions; the upgrade
    brings them back empty (NULL), and interactions are linked to a contact and a deal and found by them."""
    import datetime as dt

    from pycrm import Contact, Interaction, Money, Opportunity

    at = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    crm = pycrm.open(sql_url)
    with crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        ann = s.contacts.add(Contact(str(c.id), "Ann", "Lee"))
        deal = s.opportunities.add(Opportunity(str(c.id), "Big", Money("100", "EUR")))
        old = s.interactions.add(
            Interaction(str(c.id), "call", at, "Demo", duration=300, direction="inbound", contact_id=str(ann.id))
        )
    crm.close()
    new = {"duration", "direction", "channel", "contact_id", "opportunity_id", "outcome"}
    with _downgraded(sql_url, "0015") as conn:
        inspector = sa.inspect(conn)
        assert new.isdisjoint({col["name"] for col in inspector.get_columns("interactions")})
        assert "ix_interactions_contact_id" not in {i["name"] for i in inspector.get_indexes("interactions")}
        assert conn.execute(sa.text("SELECT id, subject FROM interactions")).all() == [(old.id, "Demo")]
        assert "activities" not in inspector.get_table_names()
    crm = pycrm.open(sql_url)  # upgrades: the interaction is there, with nothing said of what happened
    try:
        with crm.session() as s:
            got = s.interactions.get(old.id)
            assert (got.subject, got.occurred_at, got.duration, got.contact_id, got.outcome) == ("Demo", at, None, None, None)
            got.duration, got.direction, got.channel = 420, "outbound", "phone"
            got.contact_id, got.opportunity_id, got.outcome = str(ann.id), str(deal.id), "demo booked"
            s.interactions.update(got)
        with crm.session() as s:
            found = s.interactions.find({"contact_id": str(ann.id), "opportunity_id": str(deal.id), "duration": {"gte": 300}})
            assert [(i.id, i.direction, i.channel, i.outcome) for i in found] == [(old.id, "outbound", "phone", "demo booked")]
            from pycrm import Activity

            s.activities.add(Activity(str(c.id), "web_visit", at, {"path": "/pricing"}, contact_id=str(ann.id)))
        with crm.session() as s:
            assert [a.properties for a in s.activities.find({"kind": "web_visit"})] == [{"path": "/pricing"}]
    finally:
        crm.close()
    engine = sa.create_engine(sql_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            assert _revision(conn) == head_revision()
            names = {i["name"] for i in sa.inspect(conn).get_indexes("interactions")}
            assert {"ix_interactions_contact_id", "ix_interactions_opportunity_id"} <= names
            names = {i["name"] for i in sa.inspect(conn).get_indexes("activities")}
            assert {"ix_activities_customer_id_occurred_at", "ix_activities_kind_occurred_at"} <= names
    finally:
        engine.dispose()


def test_revision_0017_adds_attachments_and_a_downgrade_keeps_the_rest(sql_url: str, tmp_path: Path) -> None:
    """Revision 0017 adds ``attachments``: a downgrade to 0016 drops the table and keeps the customers; the
    upgrade brings it back (empty), and attachments are stored and found again."""
    crm = pycrm.open(sql_url, blobs=tmp_path / "blobs")
    with crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        s.attachments.add(c, "contract.pdf", io.BytesIO(b"%PDF-1.7 signed"))
    crm.close()
    with _downgraded(sql_url, "0016") as conn:
        assert "attachments" not in sa.inspect(conn).get_table_names()
        assert conn.execute(sa.text("SELECT name FROM customers")).scalars().all() == ["Acme"]
    crm = pycrm.open(sql_url, blobs=tmp_path / "blobs")  # upgrades: the table is back, empty
    try:
        with crm.session() as s:
            assert s.attachments.count() == 0
            again = s.attachments.add(s.customers.get(str(c.id)), "photo.png", io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"0" * 10))
        with crm.session() as s:
            assert [a.id for a in s.attachments.find({"media_type": "image/png"})] == [again.id]
            with s.attachments.open(str(again.id)) as f:
                assert f.read() == b"\x89PNG\r\n\x1a\n" + b"0" * 10
    finally:
        crm.close()
    engine = sa.create_engine(sql_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            assert _revision(conn) == head_revision()
            assert {"ix_attachments_customer_id", "ix_attachments_sha256"} <= {
                i["name"] for i in sa.inspect(conn).get_indexes("attachments")
            }
    finally:
        engine.dispose()
