"""Bulk paths on every adapter: a few thousand records through add_many, found by index and streamed back."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import sqlalchemy as sa

import pycrm
from pycrm import Customer, Money, Order, ValidationError

N = 3000


def test_bulk_import_lookup_and_streaming(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        added = s.customers.add_many(
            Customer(
                f"客户 {i:05d}",
                emails=[f"user{i}@example.com"],
                phones=[f"+86 138 {i // 10000:04d} {i % 10000:04d}"],
                tags=["even"] if i % 2 == 0 else [],
            )
            for i in range(N)
        )
    assert added == N
    with crm.session() as s:
        assert s.customers.count() == N
        assert s.customers.count({"tags": "even"}) == N // 2
        (hit,) = s.customers.find({"emails": "USER1234@example.com"})
        assert hit.name == "客户 01234"
        (hit,) = s.customers.find({"phones": "138 0000 2345"})
        assert hit.name == "客户 02345"
        streamed = [c.id for c in s.customers.iter(batch_size=1000)]
        assert len(streamed) == N == len(set(streamed))
        assert streamed == sorted(streamed)
        page = s.customers.find(order_by="-name", limit=3, offset=10)
        assert [c.name for c in page] == [f"客户 {N - 11 - i:05d}" for i in range(3)]
        ids = [c.id for c in s.customers.find({"name": {"startswith": "客户 0000"}}, order_by="name")]
    with crm.session() as s:
        n = s.orders.add_many(
            Order(ids[i % len(ids)], dt.datetime(2025, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=i), Money(f"{i}.99", "CNY"))
            for i in range(500)
        )
    assert n == 500
    with crm.session() as s:
        assert s.orders.count({"amount": {"gte": 250}}) == 250
        assert sum(o.amount.amount for o in s.orders.iter(batch_size=64)) == sum(Money(f"{i}.99").amount for i in range(500))


def test_columns_null_in_every_row_of_a_batch(sql_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """On SQLite a batch's INSERT leaves out the columns no row fills (binding None costs more than the
    insert); the rows read back the same either way, and a required column still cannot be NULL."""
    crm = pycrm.open(sql_url, audit=True, echo=True)
    try:
        plain = [Customer(f"plain {i}") for i in range(3)]  # country, category, owner, team: NULL in every row
        mixed = [Customer(f"mixed {i}", country="CN" if i == 1 else None, category="vip" if i == 2 else None) for i in range(3)]
        with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"), crm.session() as s:
            s.customers.add_many(plain)
            s.customers.add_many(mixed)
        inserts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("INSERT INTO customers")]
        assert len(inserts) == 2
        if sql_url.startswith("sqlite"):
            assert "country" not in inserts[0] and "owner_id" not in inserts[0] and "name" in inserts[0]
            assert "country" in inserts[1] and "category" in inserts[1] and "owner_id" not in inserts[1]
        else:
            assert all("country" in i and "owner_id" in i for i in inserts)
        with crm.session() as s:
            for e in plain + mixed:
                assert s.customers.get(e.id) == e
            assert [c.name for c in s.customers.find({"country": "CN"})] == ["mixed 1"]
            assert s.customers.count({"country": {"is_null": True}}) == 5
            assert all(ev.actor_id is None for ev in s.changes.since(0))
        assert crm.audit.verify().ok
        if sql_url.startswith("sqlite"):  # a required column no row fills is still refused
            with pytest.raises(ValidationError, match=r"NOT NULL constraint failed: customers\.name"), crm.session() as s:
                s._transaction().insert_rows(Customer, [(*r[:4], None, *r[5:]) for r in _rows(plain)], {})
            ragged = _rows(plain)
            ragged[0] += ("one too many",)
            with pytest.raises(sa.exc.DBAPIError, match="Incorrect number of bindings"), crm.session() as s:  # not cut to fit
                s._transaction().insert_rows(Customer, ragged, {})
    finally:
        crm.close()


def _rows(entities: list[Customer], url: str = "sqlite://") -> list[tuple[object, ...]]:
    from pycrm.storage.sql.mapping import Codec
    from pycrm.storage.sql.store import table_rows

    dialect = sa.engine.make_url(url).get_backend_name()
    fresh = [Customer(e.name, id=f"{e.id}-x", version=1, created_at=e.created_at, updated_at=e.updated_at) for e in entities]
    return table_rows(Customer, fresh, Codec("mysql" if dialect == "mariadb" else dialect))[0]


def test_bulk_writes_in_an_atomic_block_without_savepoints_of_their_own(sql_url: str) -> None:
    """``Session._bulk`` (an import's batches): on SQLite, inserts and journal writes inside an atomic block
    open no savepoint of their own (SQLite would copy the pages they change into its sub-journal), and a
    failed one takes the database back to where the block began; elsewhere nothing changes."""
    crm = pycrm.open(sql_url, audit=True)
    sqlite = sql_url.startswith("sqlite")
    try:
        with crm.session() as s:
            s.customers.add(Customer("before"))
        with crm.session() as s:
            with s._transaction().bulk() as on:
                assert on is sqlite
            if sqlite:  # the statements SQLite runs, savepoints included (the driver's own, not SQLAlchemy's log)
                statements: list[str] = []
                s._transaction()._cur.connection.set_trace_callback(statements.append)  # type: ignore[attr-defined]
            with s._atomic(), s._bulk():
                s.customers.add_many([Customer("in bulk 1"), Customer("in bulk 2")])
                s._flush()  # the journal's write too
            if sqlite:
                bulk, statements[:] = list(statements), []
            with s._atomic():
                s.customers.add_many([Customer("plain")])
                s._flush()
            if sqlite:
                assert any(m.startswith("INSERT INTO customers") for m in bulk)
                assert any(m.startswith("INSERT INTO pycrm_audit") for m in bulk)
                assert not any(m.startswith("SAVEPOINT pycrm_write") for m in bulk)
                assert sum(m.startswith("SAVEPOINT pycrm_write") for m in statements) == 2  # the insert, the journal
                s._transaction()._cur.connection.set_trace_callback(None)  # type: ignore[attr-defined]
        with crm.session() as s:
            assert sorted(c.name for c in s.customers.find()) == ["before", "in bulk 1", "in bulk 2", "plain"]
            start = s.changes.last_seq()
            with pytest.raises(ValidationError, match=r"(?i)null"), s._atomic(), s._bulk():
                s.customers.add(Customer("rolled back with its block"))
                s._flush()
                rows = _rows([Customer("no name")], sql_url)
                s._transaction().insert_rows(Customer, [(*rows[0][:4], None, *rows[0][5:])], {})
            # the block failed as a whole: its rows and journal entries are gone, the transaction is usable
            assert sorted(c.name for c in s.customers.find()) == ["before", "in bulk 1", "in bulk 2", "plain"]
            s.customers.add(Customer("after"))
        with crm.session() as s:
            assert [e.op for e in s.changes.since(start)] == ["create"]
            assert s.customers.count() == 5
        assert crm.audit.verify().ok
    finally:
        crm.close()
