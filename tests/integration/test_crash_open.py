"""Schema creation and upgrades killed (SIGKILL) at any statement: the next open completes the schema.

A forked child opens the database and kills itself right after its N-th write statement (a SQLAlchemy
``after_cursor_execute`` hook); then this process opens the database again, which must succeed and leave
the same tables, columns, indexes, keys and revision as a store created in one go, and a store that works
(a customer added, read back and found by e-mail, the audit trail verifying, older rows unchanged).

On PostgreSQL and SQLite the upgrade is one transaction, so a kill anywhere leaves the database as it was:
a few kill points suffice. On MariaDB every DDL statement commits, so each one leaves a different half-made
schema: a chain of children, each killed right after its first DDL statement and each starting from what
the one before left, walks through all of them; full recoveries from chosen points besides (a table made
without its index, the journal's sequence table made without its rows). The same chain runs on SQLite
with the migrations outside a transaction from revision 0004 on, for the half-done table rebuilds of
revision 0005. Upgrades
from revision 0003, and revision 0006's data step (audit digests put back), are killed the same way.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.migration import MigrationContext
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

import pycrm
from pycrm import Customer
from pycrm.storage.sql.migrate import alembic_config, head_revision
from pycrm.storage.sql.tables import VERSION_TABLE
from tests.conftest import reset_server_database, server_url
from tests.integration.test_migrations import trail_with_an_erasure

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or not hasattr(signal, "SIGKILL"), reason="needs fork and SIGKILL")

WRITE = re.compile(r"\s*(CREATE|ALTER|DROP|RENAME|INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
DDL = re.compile(r"\s*(CREATE|ALTER|DROP|RENAME)\b", re.IGNORECASE)


@contextlib.contextmanager
def _counting(pattern: re.Pattern[str] = WRITE) -> Iterator[list[str]]:
    """The statements matching ``pattern`` that run in this process inside the block."""
    seen: list[str] = []

    def hook(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if pattern.match(statement):
            seen.append(statement)

    event.listen(Engine, "after_cursor_execute", hook)
    try:
        yield seen
    finally:
        event.remove(Engine, "after_cursor_execute", hook)


def _killed(action: Callable[[], None], after: int, pattern: re.Pattern[str] = WRITE) -> bool:
    """Run ``action`` in a forked child that SIGKILLs itself right after its ``after``-th statement matching
    ``pattern``: True if it was killed, False if the action finished first (any error fails the test)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 3
        try:
            os.close(read)
            count = 0

            def hook(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
                nonlocal count
                if pattern.match(statement):
                    count += 1
                    if count == after:
                        os.kill(os.getpid(), signal.SIGKILL)

            event.listen(Engine, "after_cursor_execute", hook)
            action()
            code = 0
        except BaseException as exc:
            os.write(write, f"{type(exc).__name__}: {exc}"[:2000].encode())
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        message = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True
    assert os.WEXITSTATUS(status) == 0, f"the child failed after statement {after}: {message}"
    return False


def _open(url: str) -> None:
    pycrm.open(url).close()


def _revision(conn: sa.Connection) -> str | None:
    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def _schema(url: str) -> dict[str, Any]:
    """Everything a store's schema is made of: tables, columns with their types, keys, indexes, the
    revision, the journal's sequence names; on SQLite and MariaDB also the DDL the database reports."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            insp = sa.inspect(conn)
            columns, pks, indexes, fks = (
                {key[1]: value for key, value in found.items()}
                for found in (
                    insp.get_multi_columns(),
                    insp.get_multi_pk_constraint(),
                    insp.get_multi_indexes(),
                    insp.get_multi_foreign_keys(),
                )
            )
            tables = {
                t: (
                    [(c["name"], str(c["type"]), c["nullable"]) for c in columns[t]],
                    pks[t],
                    sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in indexes[t]),
                    sorted(
                        (f["name"], tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                        for f in fks[t]
                    ),
                )
                for t in sorted(columns)
            }
            schema: dict[str, Any] = {"revision": _revision(conn), "tables": tables}
            if conn.dialect.name == "sqlite":
                schema["ddl"] = sorted(conn.exec_driver_sql("SELECT type, name, tbl_name, sql FROM sqlite_master").all())
            elif conn.dialect.name in ("mysql", "mariadb"):
                schema["ddl"] = [conn.exec_driver_sql(f"SHOW CREATE TABLE `{t}`").one()[1] for t in tables]
            if "pycrm_sequences" in tables:
                schema["sequences"] = sorted(conn.exec_driver_sql("SELECT name FROM pycrm_sequences").scalars())
            return schema
    finally:
        engine.dispose()


def _completed(url: str, reference: dict[str, Any], stored: list[Customer] | None = None) -> None:
    """The next open (in this process) succeeds and leaves the reference schema and a working store; the
    ``stored`` customers are there as they were, found by their e-mails."""
    crm = pycrm.open(url, audit=True)
    try:
        assert _schema(url) == reference
        with crm.session() as s:
            for c in stored or []:
                assert s.customers.get(c.id) == c
                for e in c.emails:
                    assert [x.id for x in s.customers.find({"emails": e.value})] == [c.id]
            email = f"{uuid.uuid4().hex}@example.com"
            added = s.customers.add(Customer("Opened after a crash", emails=[email]))
        with crm.session() as s:
            assert s.customers.get(added.id).name == "Opened after a crash"
            assert [c.id for c in s.customers.find({"emails": email})] == [added.id]
        assert crm.audit.verify().ok
    finally:
        crm.close()


def _reset(url: str) -> None:
    if url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-shm", ".pycrm-lock"):
            Path(url[len("sqlite:///") :] + suffix).unlink(missing_ok=True)
    else:
        reset_server_database("postgres" if url.startswith("postgresql") else "mysql", url)


def _mariadb(url: str) -> bool:
    return sa.make_url(url).get_backend_name() in ("mysql", "mariadb")


def _after(statements: list[str], prefix: str) -> int:
    """The 1-based number of the first statement starting with ``prefix``."""
    return next(i + 1 for i, s in enumerate(statements) if s.lstrip().startswith(prefix))


def _chain(opener: Callable[[], None], ddl: list[str]) -> None:
    """Children each killed after their first DDL statement, one after the other, until one finishes: on a
    database that commits each DDL statement every child makes exactly one of the ``ddl`` statements a
    clean run makes (none redoes what is there), so the chain passes through every half-made schema."""
    kills = 0
    while _killed(opener, 1, DDL):
        kills += 1
        assert kills <= len(ddl), "a child redid a DDL statement that had already run"
    assert kills == len(ddl)


def _downgrade(url: str, revision: str) -> None:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), revision)  # type: ignore[arg-type]
    finally:
        engine.dispose()


def test_schema_creation_killed_after_a_statement_is_completed_by_the_next_open(sql_url: str) -> None:
    with _counting() as writes:
        _open(sql_url)
    reference = _schema(sql_url)
    assert reference["revision"] == head_revision() and reference["sequences"] == ["audit", "changes", "outbox"]
    if _mariadb(sql_url):  # after the first table (before its index), after the sequences' table (before its rows)
        points = [_after(writes, "CREATE TABLE customers"), _after(writes, "CREATE TABLE pycrm_sequences")]
    else:  # the upgrade is one transaction: a kill anywhere leaves the database as it was
        points = [1, len(writes)]
    for n in points:
        _reset(sql_url)
        assert _killed(lambda: _open(sql_url), n), f"the open finished before statement {n}"
        _completed(sql_url, reference)


def _autocommit_upgrade(url: str, revision: str = "head") -> None:
    """Alembic's upgrade on a SQLite file without a transaction: each statement commits, as on MariaDB."""
    engine = sa.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    # a killed process loses nothing it handed to the OS: no need to wait for the disk
    event.listen(engine, "connect", lambda dbapi, record: dbapi.execute("PRAGMA synchronous = OFF"))
    try:
        with engine.connect() as conn:
            command.upgrade(alembic_config(conn), revision)  # type: ignore[arg-type]
    finally:
        engine.dispose()


@pytest.mark.parametrize("database", [pytest.param("mariadb", marks=pytest.mark.mysql), "sqlite-autocommit"])
def test_schema_creation_killed_after_each_ddl_statement_in_turn(database: str, tmp_path: Path) -> None:
    """Every half-made schema: on MariaDB as pycrm opens an empty database; on SQLite with the migrations
    run outside a transaction (so SQLite keeps what each statement did, like MariaDB) from revision 0004 on,
    which takes revision 0005's table rebuilds through their half-done states (a partial copy beside its
    table, a copy without its table)."""
    if database == "mariadb":
        url = server_url("mysql")
        opener = lambda: _open(url)  # noqa: E731
        start: Callable[[], None] = lambda: None  # noqa: E731
    else:
        url = f"sqlite:///{tmp_path}/crm.db"
        opener = lambda: _autocommit_upgrade(url)  # noqa: E731
        start = lambda: _autocommit_upgrade(url, "0004")  # noqa: E731
    _reset(url)
    start()
    with _counting(DDL) as ddl:
        opener()
    reference = _schema(url)
    _reset(url)
    start()
    _chain(opener, ddl)
    _completed(url, reference)


def _stored(url: str) -> list[Customer]:
    crm = pycrm.open(url)
    try:
        with crm.session() as s:
            return [
                s.customers.add(Customer("Acme Ltd", emails=["a@acme.com", "b@acme.com"], tags=["vip"])),
                s.customers.add(Customer("韩梅梅", kind="person", emails=["hmm@example.cn"], phones=["+8613800138000"])),
            ]
    finally:
        crm.close()


def test_upgrade_from_0003_killed_after_a_statement_is_completed_by_the_next_open(sql_url: str) -> None:
    stored = _stored(sql_url)
    reference = _schema(sql_url)
    _downgrade(sql_url, "0003")
    with _counting() as writes, _counting(DDL) as ddl:
        _open(sql_url)
    assert _schema(sql_url) == reference
    if _mariadb(sql_url):
        _downgrade(sql_url, "0003")
        _chain(lambda: _open(sql_url), ddl)
        _completed(sql_url, reference, stored)
    # MariaDB: after the sequences' rows, not committed (the chain saw every committed state)
    for n in [_after(writes, "INSERT INTO pycrm_sequences")] if _mariadb(sql_url) else [1, len(writes)]:
        _downgrade(sql_url, "0003")
        assert _killed(lambda: _open(sql_url), n), f"the upgrade finished before statement {n}"
        _completed(sql_url, reference, stored)


def test_digests_put_back_by_an_upgrade_killed_midway_are_all_there(sql_url: str) -> None:
    """Revision 0006's data step (the audit digests kept aside by a downgrade go back on their entries)
    killed after each of its statements: the next open puts every digest back, the trail verifies."""
    trail, verified = trail_with_an_erasure(sql_url)
    _downgrade(sql_url, "0005")
    with _counting() as writes:
        _open(sql_url)
    for n in range(1, len(writes) + 1) if _mariadb(sql_url) else [1, len(writes)]:
        _downgrade(sql_url, "0005")
        assert _killed(lambda: _open(sql_url), n), f"the upgrade finished before statement {n}"
        crm = pycrm.open(sql_url, audit=True)
        try:
            assert list(crm.audit.entries()) == trail
            assert crm.audit.verify() == verified
            assert "pycrm_audit_digests" not in sa.inspect(crm.store.engine).get_table_names()
        finally:
            crm.close()
