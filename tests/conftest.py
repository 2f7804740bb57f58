"""Shared fixtures: the ``crm`` store fixture over every adapter, and the Hypothesis profiles.

``crm`` runs a test on four adapters: ``memory``, ``sqlite`` (a fresh file per test), ``postgres`` and
``mysql`` (MariaDB/MySQL). The server ones take their URLs from ``PYCRM_TEST_POSTGRES_URL`` and
``PYCRM_TEST_MYSQL_URL``; without the variable the test is skipped with a reason naming it, except when
``CI=true``, where a skipped database would hide a broken adapter, so the test fails instead. Server
databases are shared, so each test empties them first; the store re-creates its schema when opened.

Hypothesis profiles, picked by ``PYCRM_HYPOTHESIS_PROFILE``: ``dev`` (default, fast) and ``ci``
(more examples, still bounded so the whole suite, servers included, runs in minutes on two cores).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

import pycrm

# ---------------------------------------------------------------- Hypothesis profiles

settings.register_profile(
    "dev",
    max_examples=25,
    deadline=None,
    stateful_step_count=15,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    stateful_step_count=50,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("PYCRM_HYPOTHESIS_PROFILE", "dev"))

# ---------------------------------------------------------------- adapters

#: Environment variable naming the server of each server-backed adapter.
SERVER_ENV = {"postgres": "PYCRM_TEST_POSTGRES_URL", "mysql": "PYCRM_TEST_MYSQL_URL"}

ADAPTERS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
]
SQL_ADAPTERS = ADAPTERS[1:]


def server_url(adapter: str) -> str:
    """The server URL for ``adapter``, or skip (fail under ``CI=true``) with a reason naming the variable."""
    var = SERVER_ENV[adapter]
    url = os.environ.get(var, "").strip()
    if not url:
        reason = f"{var} is not set, so the {adapter} adapter is not tested"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: every database must be tested)", pytrace=False)
        pytest.skip(reason)
    return url


def reset_server_database(adapter: str, url: str) -> None:
    """Empty a shared server database so the test starts from nothing (the store migrates on open)."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            if adapter == "postgres":
                # Fail rather than hang if a connection leaked by an earlier test still holds a lock.
                conn.execute(sa.text("SET lock_timeout = '20s'"))
                conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
                conn.execute(sa.text("CREATE SCHEMA public"))
            else:
                conn.execute(sa.text("SET SESSION lock_wait_timeout = 20"))
                conn.execute(sa.text("SET FOREIGN_KEY_CHECKS = 0"))
                rows = conn.execute(
                    sa.text("SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = DATABASE()")
                ).all()
                for name, kind in rows:
                    what = "VIEW" if kind == "VIEW" else "TABLE"
                    conn.execute(sa.text(f"DROP {what} IF EXISTS `{name}`"))
                conn.execute(sa.text("SET FOREIGN_KEY_CHECKS = 1"))
    finally:
        engine.dispose()


def store_url_for(adapter: str, tmp_path: Any) -> str:
    if adapter == "memory":
        return "memory://"
    if adapter == "sqlite":
        return f"sqlite:///{tmp_path}/crm.db"
    url = server_url(adapter)
    reset_server_database(adapter, url)
    return url


@pytest.fixture(params=ADAPTERS)
def adapter(request: pytest.FixtureRequest) -> str:
    """The adapter's name: memory, sqlite, postgres or mysql."""
    return str(request.param)


@pytest.fixture
def store_url(adapter: str, tmp_path: Any) -> str:
    """A URL for an empty store of ``adapter``."""
    return store_url_for(adapter, tmp_path)


@pytest.fixture
def open_crm(store_url: str) -> Iterator[Callable[..., pycrm.CRM]]:
    """Open the test's store (``default_region="CN"`` unless given); everything opened is closed after the test.

    For SQL adapters each call opens the same database; ``memory://`` gives a new, empty store each time.
    """
    opened: list[pycrm.CRM] = []

    def _open(**kwargs: Any) -> pycrm.CRM:
        kwargs.setdefault("default_region", "CN")
        crm = pycrm.open(store_url, **kwargs)
        opened.append(crm)
        return crm

    yield _open
    for crm in reversed(opened):
        crm.close()


@pytest.fixture
def crm(open_crm: Callable[..., pycrm.CRM]) -> pycrm.CRM:
    """An empty store on each adapter, opened with ``default_region="CN"``."""
    return open_crm()


@pytest.fixture(params=SQL_ADAPTERS)
def sql_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A URL for an empty SQL store (sqlite, postgres, mysql)."""
    return store_url_for(str(request.param), tmp_path)
