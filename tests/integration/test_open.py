"""Opening stores: URLs, engines, reopening a database that already has its schema, and bad targets."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from typing import Any

import pytest

import pycrm
from pycrm import Customer, Money, Order, ValidationError


def test_reopening_a_store_keeps_its_data_and_schema(sql_url: str) -> None:
    with pycrm.open(sql_url, default_region="CN") as crm, crm.session() as s:
        c = s.customers.add(Customer("韩梅梅", kind="person", phones=["138 0013 8000"], emails=["hmm@example.com"]))
        s.orders.add(Order(c.id, dt.datetime(2025, 1, 1, tzinfo=dt.UTC), Money("88.80", "CNY")))
    for _ in range(2):  # the schema is already there: opening again must neither fail nor lose anything
        with pycrm.open(sql_url, default_region="CN") as crm, crm.session() as s:
            assert s.customers.get(c.id) == c
            assert [x.id for x in s.customers.find({"phones": "+86 138 0013 8000"})] == [c.id]
            assert s.orders.count({"customer_id": c.id}) == 1


def test_two_handles_on_one_database_see_each_others_commits(sql_url: str) -> None:
    with pycrm.open(sql_url) as first, pycrm.open(sql_url) as second:
        with first.session() as s:
            c = s.customers.add(Customer("Acme Ltd"))
        with second.session() as s:
            got = s.customers.get(c.id)
            got.status = "active"
            s.customers.update(got)
        with first.session() as s:
            assert (s.customers.get(c.id).status, s.customers.get(c.id).version) == ("active", 2)


def test_an_applications_own_engine_can_be_used(tmp_path: Any) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path}/app.db")
    try:
        with pycrm.open(engine, default_region="US") as crm:
            with crm.session() as s:
                c = s.customers.add(Customer("Globex LLC", phones=["(650) 253-0000"]))
            with crm.session() as s:
                assert [x.id for x in s.customers.find({"phones": "650-253-0000"})] == [c.id]
        with pycrm.open(f"sqlite:///{tmp_path}/app.db") as crm, crm.session() as s:
            assert s.customers.get(c.id).name == "Globex LLC"
    finally:
        engine.dispose()


def test_new_sqlite_files_get_large_pages_and_existing_ones_keep_theirs(tmp_path: Any) -> None:
    import sqlite3

    from pycrm.storage.sql.store import SQLITE_PAGE_SIZE

    def page_size(path: Any) -> tuple[int, str]:
        c = sqlite3.connect(path)
        try:
            return c.execute("PRAGMA page_size").fetchone()[0], c.execute("PRAGMA journal_mode").fetchone()[0]
        finally:
            c.close()

    new, old = tmp_path / "new.db", tmp_path / "old.db"
    sqlite3.connect(old).execute("CREATE TABLE app_own (x)").connection.commit()  # an existing file, 4,096-byte pages
    for path in (new, old):
        with pycrm.open(f"sqlite:///{path}") as crm, crm.session() as s:
            s.customers.add(Customer("Acme Ltd"))
        with pycrm.open(f"sqlite:///{path}") as crm, crm.session() as s:
            assert [c.name for c in s.customers.find()] == ["Acme Ltd"]
    assert SQLITE_PAGE_SIZE == 16384
    assert page_size(new) == (16384, "wal")
    assert page_size(old) == (4096, "wal")


def test_sqlite_connections_pycrm_opens_get_a_page_cache_of_512_pages_and_an_applications_engine_its_own(
    tmp_path: Any,
) -> None:
    """SQLite's default cache (2,000 KiB) is 125 pages of pycrm's 16 KiB; pycrm's own connections get 512."""
    import sqlalchemy as sa

    from pycrm.storage.sql.store import SQLITE_CACHE_KIB, SQLITE_PAGE_SIZE

    def cache_sizes(crm: pycrm.CRM) -> set[int]:
        with crm.session() as s:  # a session's connection, as pycrm prepared it
            s.customers.add(Customer("Acme Ltd"))
        with crm.store.engine.connect() as conn:
            return {conn.exec_driver_sql("PRAGMA cache_size").scalar_one() for _ in range(2)}

    assert SQLITE_CACHE_KIB * 1024 == 512 * SQLITE_PAGE_SIZE
    with pycrm.open(f"sqlite:///{tmp_path}/own.db") as crm:
        assert cache_sizes(crm) == {-SQLITE_CACHE_KIB}
    engine = sa.create_engine(f"sqlite:///{tmp_path}/app.db")
    try:
        with pycrm.open(engine) as crm:
            assert -SQLITE_CACHE_KIB not in cache_sizes(crm)  # left as the application configured it
    finally:
        engine.dispose()


def test_memory_stores_are_independent() -> None:
    with pycrm.open("memory://") as a, pycrm.open("memory://") as b:
        with a.session() as s:
            s.customers.add(Customer("Only in a"))
        with b.session() as s:
            assert s.customers.count() == 0


@pytest.mark.parametrize("target", ["crm.db", "", "not a url", 42, None, object(), b"sqlite:///x.db"])
def test_a_target_that_is_not_a_store_is_a_validation_error_naming_the_url(target: Any) -> None:
    with pytest.raises(ValidationError) as info:
        pycrm.open(target)
    assert info.value.fields == ["url"]


@pytest.mark.parametrize("region", ["ZZ", "china", "", 86])
def test_an_unknown_default_region_is_a_validation_error(region: Any) -> None:
    with pytest.raises(ValidationError) as info:
        pycrm.open("memory://", default_region=region)
    assert info.value.fields == ["default_region"]


def test_the_default_region_is_case_insensitive_and_used_for_local_numbers(tmp_path: Any) -> None:
    with pycrm.open("memory://", default_region="gb") as crm, crm.session() as s:
        c = s.customers.add(Customer("Tesco", phones=["07911 123456"]))
        assert c.phones[0].e164 == "+447911123456"
        assert s.customers.count({"phones": "07911 123456"}) == 1


def test_without_a_default_region_local_numbers_need_a_country() -> None:
    with pycrm.open("memory://") as crm, crm.session() as s:
        with pytest.raises(ValidationError) as info:
            s.customers.add(Customer("Acme", phones=["138 0013 8000"]))
        assert info.value.fields == ["phones[0]"]
        s.customers.add(Customer("Acme", country="CN", phones=["138 0013 8000"]))
        with pytest.raises(ValidationError) as info:
            s.customers.find({"phones": "138 0013 8000"})
        assert info.value.fields == ["where.phones.eq"]
        assert s.customers.count({"phones": "+86 138 0013 8000"}) == 1


def test_sqlite_works_without_the_postgres_and_mysql_drivers(tmp_path: Any) -> None:
    code = f"""
import sys

class NoServerDrivers:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("psycopg", "psycopg2", "pymysql", "MySQLdb"):
            raise ImportError("not installed: " + name)
        return None

sys.meta_path.insert(0, NoServerDrivers())
import pycrm
with pycrm.open({f"sqlite:///{tmp_path}/plain.db"!r}) as crm:
    with crm.session() as s:
        s.customers.add(pycrm.Customer("Acme Ltd"))
    with crm.session() as s:
        print(s.customers.count())
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////nonexistent-dir/crm.db",
        "postgresql+psycopg://postgres@127.0.0.1:1/test",
        "mysql+pymysql://root@127.0.0.1:1/test",
    ],
)
def test_a_store_that_cannot_be_opened_is_a_validation_error_naming_the_url(url: str) -> None:
    with pytest.raises(ValidationError) as err:
        pycrm.open(url)
    assert err.value.fields == ["url"]
    assert "cannot open" in str(err.value)


def test_chinese_contacts_read_family_name_first() -> None:
    assert pycrm.Contact("c1", "敏", "邓").full_name == "邓敏"
    assert pycrm.Contact("c1", "Ada", "Lovelace").full_name == "Ada Lovelace"
