"""``CustomField(..., indexed=True)``: opening a SQL store creates an index on the field's typed value (again and
again without harm), and the database uses it for the filter (SQLite, PostgreSQL, MariaDB)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

import pycrm
from pycrm import Contact, Customer, CustomField
from pycrm.domain import Entity

FIELDS = {
    "contacts": [
        CustomField("score", "integer", indexed=True),
        CustomField("since", "date", indexed=True),
        CustomField("budget", "decimal", indexed=True),
        CustomField("nick", "text", indexed=True),
        CustomField("note", "text"),  # not indexed
    ]
}
INDEXES = {"ix_contacts_cf_score", "ix_contacts_cf_since", "ix_contacts_cf_budget", "ix_contacts_cf_nick"}


def _plan(crm: pycrm.CRM, kind: type[Entity], where: dict[str, Any]) -> str:
    """The database's plan of the query the store runs to count ``kind`` matching ``where``."""
    store: Any = crm.store
    with crm.session() as s:
        conds = s._conditions(kind, where)
    q = store.queries.count(kind, conds)
    params = q.stmt.bind(q.values(conds))
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        if store.dialect == "postgresql":
            cur.execute("SET enable_seqscan = off")  # a few rows: show that the index serves the filter
        prefix = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN "
        cur.execute(prefix + q.stmt.sql, params)
        return repr(cur.fetchall())
    finally:
        raw.close()


def _indexes(crm: pycrm.CRM) -> set[str]:
    store: Any = crm.store
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            q = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'contacts'"
        elif store.dialect == "postgresql":
            q = "SELECT indexname FROM pg_indexes WHERE tablename = 'contacts' AND schemaname = current_schema()"
        else:
            q = (
                "SELECT DISTINCT index_name FROM information_schema.statistics"
                " WHERE table_schema = DATABASE() AND table_name = 'contacts'"
            )
        return {r[0] for r in conn.execute(sa.text(q))}


def test_indexed_custom_fields_get_an_index_the_filter_uses(sql_url: str) -> None:
    for _ in range(2):  # opening again finds the indexes there and keeps them
        crm = pycrm.open(sql_url, custom_fields=FIELDS)
        try:
            assert _indexes(crm) >= INDEXES
            assert not any("note" in name for name in _indexes(crm))
            with crm.session() as s:
                c = s.customers.add(Customer("Acme"))
                s.contacts.add_many(
                    [
                        Contact(str(c.id), f"K{i}", custom={"score": i, "since": f"2024-01-{i + 1:02d}", "budget": f"{i}.5"})
                        for i in range(20)
                    ]
                )
            with crm.session() as s:
                assert s.contacts.count({"custom.score": {"gte": 15}}) in (5, 10)
            for where, index in [
                ({"custom.score": {"gte": 15}}, "ix_contacts_cf_score"),
                ({"custom.since": {"lt": "2024-01-03"}}, "ix_contacts_cf_since"),
                ({"custom.budget": {"gt": "18"}}, "ix_contacts_cf_budget"),
                ({"custom.nick": "Ada"}, "ix_contacts_cf_nick"),
            ]:
                assert index in _plan(crm, Contact, where), where
        finally:
            crm.close()


def test_a_store_opened_without_the_declaration_still_writes_and_reads(sql_url: str) -> None:
    """The index (and MariaDB's virtual column) stays when a later opener declares nothing: writes still work."""
    pycrm.open(sql_url, custom_fields=FIELDS).close()
    crm = pycrm.open(sql_url)
    try:
        with crm.session() as s:
            c = s.customers.add(Customer("Acme"))
            k = s.contacts.add(Contact(str(c.id), "Ada", custom={"score": "not a number", "nick": "x" * 500}))
        with crm.session() as s:
            assert s.contacts.get(k.id).custom == {"score": "not a number", "nick": "x" * 500}
    finally:
        crm.close()
    crm = pycrm.open(sql_url, custom_fields={"contacts": [*FIELDS["contacts"][:3], CustomField("nick", "text", indexed=True)]})
    try:
        with crm.session() as s:  # a value of another type matches no comparison, and breaks nothing
            assert s.contacts.count({"custom.score": {"gte": 0}}) == 0
            assert s.contacts.count({"custom.nick": {"startswith": "xxx"}}) == 1
    finally:
        crm.close()


@pytest.mark.parametrize("name", ["a" * 41, "my score", "1st"])
def test_an_indexed_field_needs_a_short_identifier(name: str) -> None:
    with pytest.raises(pycrm.ValidationError) as err:
        CustomField(name, "integer", indexed=True)
    assert err.value.fields == [f"custom_fields.{name}"]


def test_a_boolean_field_is_not_indexed() -> None:
    with pytest.raises(pycrm.ValidationError) as err:
        CustomField("vip", "boolean", indexed=True)
    assert err.value.fields == ["custom_fields.vip.indexed"]
