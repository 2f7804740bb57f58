"""``SQLStore`` and its transactions: the SQL adapter on SQLAlchemy 2 for SQLite, PostgreSQL and MariaDB.

Opening a store builds (or adopts) an Engine and applies the Alembic migrations. A transaction checks out
one pooled DBAPI connection, begins a real transaction on it (``BEGIN`` on SQLite, where the ``sqlite3``
module would otherwise leave reads outside any transaction) and runs precompiled statements on its cursor
with bound parameters; commit or rollback end it and return the connection to the pool. On SQLite the
first write of a session switches to ``BEGIN IMMEDIATE`` (see ``_begin_writing``), so concurrent
sessions writing different rows wait for each other instead of failing.

Every write runs inside a savepoint, so a failed write leaves nothing half-written and the session
usable, as with the memory adapter. Driver errors never escape raw: constraint and data errors become
:class:`~pycrm.errors.ValidationError` naming the field, lock conflicts
:class:`~pycrm.errors.ConcurrencyError`; anything else (a lost connection) is SQLAlchemy's wrapped
``DBAPIError``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

from pycrm.domain import Entity, Order
from pycrm.errors import ConcurrencyError, CRMError, FieldError, StorageError, ValidationError
from pycrm.storage import port
from pycrm.storage._backend import index_text
from pycrm.storage._where import Condition, OrderBy
from pycrm.storage.sql import bulk, counters, export_rows, tables
from pycrm.storage.sql.bulk import insert_many
from pycrm.storage.sql.errors import store_problem, translate
from pycrm.storage.sql.journal import JournalTables
from pycrm.storage.sql.keys import KeyTables, KeyTaken
from pycrm.storage.sql.mapping import MAPPERS, Codec, dump_json, json_in, line_rows
from pycrm.storage.sql.migrate import upgrade
from pycrm.storage.sql.outbox import OutboxTables
from pycrm.storage.sql.queries import SAVEPOINT, Queries, Stmt
from pycrm.storage.sql.tables import ENTITY_TABLES, LIST_TABLES

if TYPE_CHECKING:
    from pycrm.storage.sql.prepared import SQLRowPreparer

_LOG = logging.getLogger(__name__)

__all__ = ["SQLStore", "SQLTransaction", "SQLiteFile", "is_engine"]


#: The savepoints around atomic blocks (a merge, an import batch), numbered by depth so nested blocks
#: never reuse a name (MariaDB replaces a savepoint of the same name); single writes nest their own.
def _atomic_sql(depth: int) -> tuple[str, str, str]:
    name = f"pycrm_atomic_{depth}"
    return (f"SAVEPOINT {name}", f"RELEASE SAVEPOINT {name}", f"ROLLBACK TO SAVEPOINT {name}")


SUPPORTED = ("sqlite", "postgresql", "mysql", "mariadb")
#: Seconds a statement waits for another transaction's lock before failing with ConcurrencyError.
LOCK_TIMEOUT = 5
#: Ids per ``IN (...)`` list when checking many ids at once.
CHUNK = 500
#: Page size of new SQLite files pycrm creates. Larger than SQLite's 4,096: a bulk import writes and
#: syncs far fewer pages through the write-ahead log (a 1,000,000-row import: 3.7 instead of 5.1 GB
#: written, about 15% less CPU in the writing process; benchmarks/bench_io.py), and scans read fewer pages.
SQLITE_PAGE_SIZE = 16384
#: Page cache of each SQLite connection pycrm opens, in KiB. SQLite's default, 2,000 KiB whatever the page
#: size, is 125 pages of SQLITE_PAGE_SIZE; this is 512 of them, as many as the default holds of 4 KiB pages.
#: A bulk write touches several tables and indexes at once (rows, lists, the e-mail, phone and name indexes,
#: the journal); with 125 pages they keep evicting each other and dirty pages are spilled to the log and read
#: back mid-transaction: ``add_many`` of 100,000 customers took about 15% more CPU and far more time waiting
#: for the disk (benchmarks/README.md). The cache grows only as pages are used.
SQLITE_CACHE_KIB = 8192


# ---------------------------------------------------------------------------------------------------
# per-connection set-up
# ---------------------------------------------------------------------------------------------------


def _contains(haystack: str | None, needle: str | None) -> bool | None:
    if haystack is None or needle is None:
        return None
    return needle.lower() in haystack.lower()


def _startswith(haystack: str | None, needle: str | None) -> bool | None:
    if haystack is None or needle is None:
        return None
    return haystack.lower().startswith(needle.lower())


def _path_prefix(path: str | None, level: int | None) -> str | None:
    """The first ``level`` parts of a ``/``-separated category path (the product report's roll-up)."""
    if path is None or level is None:
        return path
    return "/".join(path.split("/")[: int(level)])


def _setup_sqlite(dbapi_connection: Any) -> None:
    """Foreign keys on, deleted content overwritten (so what an erasure replaced is not left in free space of
    the file, nor in a copy of it; many builds do it by default, not all), and the case-insensitive matching
    functions (Python's own ``str.lower``)."""
    dbapi_connection.execute("PRAGMA foreign_keys = ON")
    dbapi_connection.execute("PRAGMA secure_delete = ON")
    dbapi_connection.create_function("pycrm_contains", 2, _contains, deterministic=True)
    dbapi_connection.create_function("pycrm_startswith", 2, _startswith, deterministic=True)
    dbapi_connection.create_function("pycrm_path_prefix", 2, _path_prefix, deterministic=True)


def _setup_connection(dialect: str, dbapi_connection: Any) -> None:
    if dialect == "sqlite":
        _setup_sqlite(dbapi_connection)
        return
    cur = dbapi_connection.cursor()
    try:
        if dialect == "postgresql":
            cur.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}s'")
            dbapi_connection.commit()
        else:
            cur.execute(f"SET SESSION innodb_lock_wait_timeout = {LOCK_TIMEOUT}")
            # read committed, as on PostgreSQL: a row read after a lock is taken (a merge's) is the row locked,
            # not the transaction's older snapshot; versions still guard every write (backups and exports
            # that need one snapshot ask for REPEATABLE READ themselves)
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            cur.execute("SELECT @@SESSION.sql_mode")
            row = cur.fetchone()
            mode = str(row[0] if row else "")
            if "STRICT_TRANS_TABLES" not in mode and "STRICT_ALL_TABLES" not in mode:
                # too-long text must fail, not be cut short silently
                cur.execute("SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'STRICT_TRANS_TABLES')")
            dbapi_connection.commit()
    finally:
        cur.close()


def _sqlite_memory(url: sa.URL) -> bool:
    db = url.database or ""
    return db in ("", ":memory:") or "mode=memory" in db or url.query.get("mode") == "memory"


def is_engine(target: Any) -> bool:
    """Whether ``target`` is a SQLAlchemy Engine (``pycrm.open`` takes one besides URL text)."""
    return isinstance(target, Engine)


def _make_engine(target: Any, echo: bool) -> tuple[Engine, bool, sa.URL]:
    """(engine, whether the store owns it, the URL to show)."""
    if isinstance(target, Engine):
        return target, False, target.url
    try:
        url = sa.make_url(target)
    except (sa.exc.ArgumentError, ValueError, TypeError) as exc:
        raise ValidationError([FieldError("url", "invalid_url", f"not a database URL: {exc}")]) from None
    shown = url
    backend = url.get_backend_name()
    if backend not in SUPPORTED:
        raise ValidationError(
            [FieldError("url", "unsupported_database", f"{backend!r} is not supported (use sqlite, postgresql or mysql/mariadb)")]
        )
    if backend in ("mysql", "mariadb") and not url.database:
        where = shown.render_as_string(hide_password=True)
        raise ValidationError([FieldError("url", "no_database", f"{where} names no database")])
    kwargs: dict[str, Any] = {"echo": echo}
    if backend == "sqlite" and _sqlite_memory(url):
        # one shared connection, so every thread sees the same in-memory database
        kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    if backend in ("mysql", "mariadb") and "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})
    try:
        engine = sa.create_engine(url, **kwargs)
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        raise ValidationError([FieldError("url", "driver_missing", f"cannot load the database driver: {exc}")]) from None
    except (sa.exc.ArgumentError, TypeError, ValueError) as exc:
        raise ValidationError([FieldError("url", "invalid_url", f"{exc}")]) from None
    if backend == "sqlite":
        _install_sqlite_events(engine)
    return engine, True, shown


def _install_sqlite_events(engine: Engine) -> None:
    """SQLAlchemy's recipe for real SQLite transactions: the driver never begins or skips BEGIN on its
    own, SQLAlchemy emits BEGIN itself (see the SQLite dialect docs, "Transactions with SQLite")."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None
        _setup_sqlite(dbapi_connection)
        dbapi_connection.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")  # pycrm's own engine only
        record.info["pycrm_ready"] = True

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN")


#: The key of PostgreSQL's advisory lock held while pycrm's migrations run ("pycrm" in ASCII).
MIGRATION_LOCK_KEY = 0x7079636D72
#: How long an opener waits for another one's migrations, in seconds (they can take a while on a big store).
MIGRATION_WAIT = 600


@contextlib.contextmanager
def _migration_lock(conn: sa.Connection, dialect: str) -> Iterator[None]:
    """Hold the database's migration lock for the block: concurrent openers of one database (web workers
    starting together) apply the schema one at a time, and each sees what the one before it did.

    PostgreSQL: a transaction-level advisory lock (released at commit or rollback, a crash included).
    MariaDB: ``GET_LOCK`` on a name holding the database's name (released at the end, or when the session
    dies). SQLite: :func:`_file_lock` around the whole open."""
    if dialect == "postgresql":
        conn.execute(sa.text(f"SET LOCAL lock_timeout = '{MIGRATION_WAIT}s'"))
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        yield
        return
    if dialect != "mysql":
        yield
        return
    name = f"pycrm_migrate:{conn.exec_driver_sql('SELECT DATABASE()').scalar()}"[:64]
    got = conn.execute(sa.text("SELECT GET_LOCK(:n, :t)"), {"n": name, "t": MIGRATION_WAIT}).scalar()
    if got != 1:
        raise ConcurrencyError(f"another process kept the pycrm migration lock {name!r} for {MIGRATION_WAIT} s")
    try:
        yield
    finally:
        conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": name})


@contextlib.contextmanager
def _file_lock(database: str | None) -> Iterator[None]:
    """An exclusive ``flock`` on ``<database file>.pycrm-lock`` while an SQLite file is opened and migrated:
    setting its page size and write-ahead log and creating its tables happen in one process at a time.

    The holder removes the lock file before releasing it, and a waiter that then finds another file (or
    none) under the name starts again, so no file is left behind and no two processes hold it at once.
    Where the file cannot be made (a read-only directory) nothing is locked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    if not database:
        yield
        return
    path = f"{database}.pycrm-lock"
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError:
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            here = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            here = None
        mine = os.fstat(fd)
        if here is not None and (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino):
            break
        os.close(fd)  # the holder before us removed it: lock the one there now
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)  # closing releases the lock


def _unwritable(database: str | None) -> str | None:
    """Why an SQLite file in a folder that exists could not be opened, when the machine is the reason (a
    read-only file system, file or folder), or None (no such folder: the URL is wrong)."""
    if not database:
        return None
    folder = os.path.dirname(os.path.abspath(database))
    if not os.path.isdir(folder):
        return None
    if not os.access(folder, os.W_OK) or (os.path.exists(database) and not os.access(database, os.R_OK | os.W_OK)):
        return "the file or its folder is read-only"
    return None


# ---------------------------------------------------------------------------------------------------
# the store
# ---------------------------------------------------------------------------------------------------


class SQLStore:
    """A pycrm store in a SQL database. ``pycrm.open(url_or_engine)`` makes one.

    ``target`` is a SQLAlchemy URL (``sqlite:///crm.db``, ``postgresql+psycopg://...``,
    ``mysql+pymysql://...``) or an application's own Engine (which the store then does not dispose).
    Opening applies the schema migrations.
    """

    def __init__(self, target: str | sa.URL | Engine, *, echo: bool = False):
        engine, own, shown = _make_engine(target, echo)
        self._engine = engine
        self._shown_url = shown
        self._own = own
        dialect = engine.dialect.name
        if dialect not in SUPPORTED:
            raise ValidationError([FieldError("url", "unsupported_database", f"{dialect!r} is not supported")])
        self.dialect = "mysql" if dialect == "mariadb" else dialect
        self._memory = self.dialect == "sqlite" and _sqlite_memory(engine.url)
        self._exclusive = threading.Lock() if self._memory else None
        self._exclusive_owner: int | None = None
        connect_errors = (sa.exc.OperationalError, sa.exc.InterfaceError, engine.dialect.loaded_dbapi.OperationalError)
        try:
            lower_collation = self._open()
        except connect_errors as exc:  # no such directory, server down, access denied; a full disk, a read-only file
            if own:
                engine.dispose()
            orig = getattr(exc, "orig", exc)
            reason = (str(orig).strip().splitlines() or [type(orig).__name__])[0][:200]
            problem = store_problem(self.dialect, orig)
            if problem is None and self.dialect == "sqlite" and not self._memory:
                problem = _unwritable(engine.url.database)
            if problem is not None:
                raise StorageError(f"cannot open {shown}: {problem} ({reason})") from None
            raise ValidationError([FieldError("url", "cannot_open", f"cannot open {shown}: {reason}")]) from None
        except (sa.exc.DatabaseError, engine.dialect.loaded_dbapi.DatabaseError) as exc:  # not a database, damaged
            if own:
                engine.dispose()
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:200]
            raise StorageError(f"cannot open {shown}: {reason}") from None
        except BaseException:
            if own:
                engine.dispose()
            raise
        self.codec = Codec(self.dialect)
        self.queries = Queries(engine.dialect, self.codec, lower_collation=lower_collation)
        self._dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        self._echo = bool(engine.echo)

    def _open(self) -> str | None:
        """Apply the migrations, one opener at a time (see :func:`_migration_lock`); return the collation
        PostgreSQL lowers text with (None elsewhere)."""
        with _file_lock(self._engine.url.database if self.dialect == "sqlite" and not self._memory else None):
            collation = self._open_locked()
        self._backfill()
        return collation

    def _backfill(self) -> None:
        """SQLite file: copy what the log holds into the database file now (a passive checkpoint, which waits
        for no one), so that a transaction that later fills the disk leaves a log with nothing committed in it,
        which rolling back can cut to zero bytes (:meth:`SQLTransaction._shrink_log`). Best effort."""
        if self.dialect != "sqlite" or self._memory or not self._own:
            return
        with contextlib.suppress(Exception):
            raw = self._engine.raw_connection()
            try:
                raw.dbapi_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
            finally:
                raw.close()

    def _open_locked(self) -> str | None:
        from alembic.util import CommandError

        engine = self._engine
        if self.dialect == "sqlite" and self._own and not self._memory:
            raw = engine.raw_connection()
            try:
                dbapi: Any = raw.dbapi_connection
                # A new file gets pages of SQLITE_PAGE_SIZE bytes (an existing one keeps its own: SQLite only
                # changes it on an empty database); then write-ahead logging.
                dbapi.execute(f"PRAGMA page_size = {SQLITE_PAGE_SIZE}")
                dbapi.execute("PRAGMA journal_mode = WAL")
            finally:
                raw.close()
        lower_collation = None
        with engine.connect() as conn:
            self.prepare(conn.connection)
            with conn.begin(), _migration_lock(conn, self.dialect):
                if self.dialect == "sqlite" and not conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
                    conn.exec_driver_sql("BEGIN")  # an application's engine without the BEGIN recipe
                try:
                    upgrade(conn)
                except CommandError as exc:
                    raise CRMError(f"cannot upgrade the pycrm schema in {self.url}: {exc}") from None
                if self.dialect == "postgresql":
                    found = conn.exec_driver_sql("SELECT collname FROM pg_collation WHERE collname = 'und-x-icu'").first()
                    lower_collation = "und-x-icu" if found else "default"
        return lower_collation

    def prepare(self, raw: Any) -> None:
        """Set up a pooled connection once (SQLite functions and foreign keys, lock timeouts)."""
        info = raw.info
        if not info.get("pycrm_ready"):
            _setup_connection(self.dialect, raw.dbapi_connection)
            info["pycrm_ready"] = True

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return self._shown_url.render_as_string(hide_password=True)

    @property
    def engine(self) -> Engine:
        return self._engine

    def begin(self) -> SQLTransaction:
        return SQLTransaction(self)

    def close(self) -> None:
        """Release pooled connections (an Engine handed in by the application is left to it)."""
        if self._own:
            self._engine.dispose()

    def __repr__(self) -> str:
        return f"<SQLStore {self.url}>"

    @contextlib.contextmanager
    def held(self) -> Iterator[bool]:
        """Hold an SQLite file for one bulk write (``import_file(..., exclusive=True)``); yields whether it could.

        When the file is in write-ahead-log mode and no other connection has read it and is still open, it
        leaves write-ahead logging for the block: writes then go straight into the database file behind a
        rollback journal, so a large transaction's pages are written once, with no log to copy back at
        commit. Meanwhile other connections (readers too, once the transaction writes) wait up to their busy
        timeout (5 s by default) and then fail; a crash still rolls back. Write-ahead logging is back after
        the block (or, should another connection hold the file then, when the store is next opened). Yields
        False, changing nothing, for other databases, in-memory SQLite, an application's own Engine, a file
        not in write-ahead-log mode, or one that another connection holds.
        """
        if self.dialect != "sqlite" or self._memory or not self._own:
            yield False
            return
        self._engine.dispose()  # idle pooled connections would keep the log open
        switched = False
        try:
            switched = self._journal_mode("wal", "delete")
            yield switched
        finally:
            if switched and not self._journal_mode("delete", "wal"):
                _LOG.warning("%s stays in rollback-journal mode until it is next opened: another connection holds it", self.url)

    def declare_keys(self, kind: type[Entity], names: Sequence[str]) -> None:
        """``DeclaredKeys``: hold ``names`` unique from now on, in a transaction of its own (storage/sql/keys.py)."""
        tx = self.begin()
        try:
            tx._keys.declare(kind, names)
            tx.commit()
        except BaseException:
            tx.rollback()
            raise

    def index_custom_fields(self, kind: type[Entity], fields: Sequence[Any]) -> list[str]:
        """``CustomIndexes``: an index on the typed value of each field (storage/sql/custom.py), created when
        missing, in a transaction of its own."""
        from pycrm.storage.sql import custom

        wanted = custom.indexed_fields({kind: fields})
        if not wanted:
            return []
        with self._engine.begin() as conn:
            vcols = custom.create_indexes(conn, wanted)
        for table, key in vcols:
            self.queries.vcols[table] = self.queries.vcols.get(table, frozenset()) | {custom.vcol_name(key)}
        return [custom.index_name(t.name, key) for t, key, _ in wanted]

    def driver_errors(self) -> tuple[type[Exception], ...]:
        """``DriverErrors``: SQLAlchemy's errors (a lost connection, a database that cannot be read)."""
        return (sa.exc.SQLAlchemyError,)

    def copy_database(self, path: str) -> dict[str, int] | None:
        """``FileCopies``: copy an SQLite database into a new file at ``path`` with SQLite's online backup
        API, in one step (a consistent copy while others keep writing); the number of records per
        repository in the copy. None, writing nothing, on other databases."""
        if self.dialect != "sqlite":
            return None
        import sqlite3

        from pycrm.domain import ENTITIES

        raw = self._engine.raw_connection()
        try:
            dst = sqlite3.connect(path)
            try:
                raw.dbapi_connection.backup(dst)  # type: ignore[union-attr]
                return {
                    name: int(dst.execute(f"SELECT count(*) FROM {ENTITY_TABLES[kind].name}").fetchone()[0])
                    for name, kind in ENTITIES.items()
                }
            finally:
                dst.close()
        except sqlite3.Error as exc:  # a full disk, a damaged source: both files named, not a driver error
            for side in ("-journal", "-wal", "-shm"):  # what SQLite left beside the copy it could not finish
                with contextlib.suppress(OSError):
                    os.unlink(path + side)
            err = translate(exc, dialect="sqlite", store=f"copying {self.url} to {path}", dbapi=sqlite3, kind=None, op="copy")
            raise (err if isinstance(err, CRMError) else StorageError(f"copying {self.url} to {path}: {exc}")) from None
        finally:
            raw.close()

    def _journal_mode(self, was: str, mode: str) -> bool:
        """Switch SQLite's journal mode from ``was`` to ``mode`` (outside any transaction); whether it did."""
        raw = self._engine.raw_connection()
        try:
            dbapi: Any = raw.dbapi_connection
            row = dbapi.execute("PRAGMA journal_mode").fetchone()
            if not row or str(row[0]).lower() != was:
                return False
            row = dbapi.execute(f"PRAGMA journal_mode = {mode}").fetchone()  # a constant of this module, not input
        except self._dbapi_error:  # locked by another connection
            return False
        finally:
            raw.close()
        return bool(row) and str(row[0]).lower() == mode

    def _acquire(self) -> None:
        lock = self._exclusive
        if lock is None:
            return
        me = threading.get_ident()
        if self._exclusive_owner == me:
            raise CRMError(
                "an in-memory SQLite store has one connection: finish the open session before starting another "
                "(or use a file, e.g. sqlite:///crm.db)"
            )
        lock.acquire()
        self._exclusive_owner = me

    def _release(self) -> None:
        if self._exclusive is not None and self._exclusive_owner == threading.get_ident():
            self._exclusive_owner = None
            self._exclusive.release()


@attrs.frozen
class SQLiteFile:
    """Opens an SQLite file as an :class:`SQLStore` (picklable: a parallel export's workers get one)."""

    path: str

    def __call__(self) -> SQLStore:
        return SQLStore(sa.URL.create("sqlite", database=self.path))  # no URL text to misread


# ---------------------------------------------------------------------------------------------------
# transactions
# ---------------------------------------------------------------------------------------------------


class SQLTransaction:
    """One unit of work on one pooled connection (see the module docstring)."""

    def __init__(self, store: SQLStore):
        self._store = store
        self._journal = JournalTables(self)
        self._outbox = OutboxTables(self)
        self._keys = KeyTables(self)
        self._q = store.queries
        self._cx = store.codec
        self._error = store._dbapi_error
        self._echo = store._echo
        self._log: Any = store.engine.logger  # SQLAlchemy's engine logger, which echo=True prints
        self._sqlite = store.dialect == "sqlite"
        self._done = False
        self._writing = False
        self._broken: str | None = None
        self._lost: StorageError | None = None  # why, when the store failed (a lost connection, a full disk)
        self._failed = False  # a statement met a failed store (on SQLite: the log may hold a full disk's pages)
        self._atomic_depth = 0
        self._bulk = False  # see bulk()
        store._acquire()
        try:
            conn = store.engine.connect()
        except BaseException:
            store._release()
            raise
        try:
            store.prepare(conn.connection)
            trans = conn.begin()  # on SQLite engines opened by pycrm this emits BEGIN (the recipe above)
            dbapi = conn.connection.dbapi_connection
            self._cur = dbapi.cursor()  # type: ignore[union-attr]
            if self._sqlite and not dbapi.in_transaction:  # type: ignore[union-attr]
                self._cur.execute("BEGIN")  # an application's engine without the recipe
        except BaseException:
            conn.close()
            store._release()
            raise
        self._conn: sa.Connection | None = conn
        self._trans = trans

    @property
    def codec(self) -> Codec:
        """How this store's dialect encodes values in columns."""
        return self._cx

    @property
    def queries(self) -> Queries:
        """This store's compiled statements and condition builder."""
        return self._q

    @property
    def connection(self) -> sa.Connection:
        """The SQLAlchemy connection of this transaction, for Core statements (analytics pushdowns)."""
        self._check()
        assert self._conn is not None
        return self._conn

    # ---- plumbing ----
    def _check(self) -> None:
        if self._done:
            raise CRMError("this transaction has ended (the session committed or rolled back)")
        if self._broken is not None:
            if self._lost is not None:
                raise StorageError(str(self._lost))
            raise ConcurrencyError(f"the transaction was aborted by the database ({self._broken}); start a new session")

    def _run(self, sql: str, args: Any) -> Any:
        if self._echo:
            self._log.info("%s %r", sql, args)
        cur = self._cur
        cur.execute(sql, args)
        return cur

    def _rows(self, sql: str, args: Any) -> list[Any]:
        cur = self._run(sql, args)
        return cur.fetchall()  # type: ignore[no-any-return]

    def _many(self, stmt: Stmt, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            if self._echo:
                self._log.info("%s [%d rows]", bulk.statement(stmt, len(rows)), len(rows))
            insert_many(self._cur, stmt, rows)  # COPY on PostgreSQL (see bulk.py)

    def _null_columns(self, rows: list[tuple[Any, ...]]) -> tuple[tuple[int, ...], list[tuple[Any, ...]]]:
        """``(skip, rows)``: on SQLite the positions of the columns that are NULL in every row, and the rows
        without them, to insert with a statement that leaves them out (the database makes them NULL); the
        driver binds a None through its adapter look-up, which costs more than inserting the rest of the row.
        Elsewhere, or for ragged rows (the driver refuses those), nothing is left out."""
        if self._sqlite and len(rows) > 1 and len(set(map(len, rows))) == 1:
            columns = list(zip(*rows))
            skip = tuple(i for i, c in enumerate(columns) if c[0] is None and c.count(None) == len(c))
            if skip:
                return skip, list(zip(*(c for i, c in enumerate(columns) if i not in skip)))
        return (), rows

    def _release(self) -> None:
        self._done = True
        conn, self._conn = self._conn, None
        try:
            with contextlib.suppress(Exception):  # the connection may be gone already
                self._cur.close()
            if conn is not None:
                conn.close()
        finally:
            self._store._release()

    def _savepoint(self, bulk_ok: bool = False) -> bool:
        """Open the savepoint a write runs in; False, opening none, for a write that may run without one
        (``bulk_ok``) inside an atomic block of a :meth:`bulk` block."""
        if self._sqlite and not self._writing:
            self._begin_writing()
        if bulk_ok and self._bulk and self._atomic_depth:
            return False
        self._control(SAVEPOINT[0])
        return True

    def _control(self, sql: str) -> None:
        """Run a transaction-control statement (a savepoint, its release, ``SET LOCAL``): a store that failed
        (a lost connection, a full disk) is a StorageError naming it, not the driver's exception."""
        try:
            self._cur.execute(sql)
        except self._error as exc:
            raise self._translate(exc, None, "write") from None

    def _break(self, exc: Exception) -> None:
        """The database dropped the whole transaction: ``exc`` came from rolling back to a savepoint."""
        self._broken = f"{type(exc).__name__}: {exc}"
        err = self._translate(exc, None, "write") if isinstance(exc, self._error) else None
        self._lost = err if isinstance(err, StorageError) else None

    @contextlib.contextmanager
    def bulk(self) -> Iterator[bool]:
        """Inserts and journal writes in atomic blocks without savepoints of their own, on SQLite; yields whether.

        For a caller whose atomic blocks fail whenever a write in them does (``import_file``). A write runs in
        a savepoint so that a failed one leaves the transaction as it was; SQLite copies every page such a
        savepoint changes that existed when it began into its sub-journal, a temporary file (about 2.4 GB of
        writes for 1,000,000 imported customers). Here inserts and journal writes inside an atomic block run
        without one, and a failed one takes the database back to where the innermost atomic block began.
        Writes outside atomic blocks, and updates and deletes, keep their savepoints. Yields False, changing
        nothing, on other databases, which need the savepoint to stay usable after an error.
        """
        if self._store.dialect == "postgresql" and not self._bulk:
            self._fixed_plans()
        if not self._sqlite or self._bulk:
            yield False
            return
        self._bulk = True
        try:
            yield True
        finally:
            self._bulk = False

    def _fixed_plans(self) -> None:
        """PostgreSQL, for the rest of this transaction: lookups by key use their indexes whatever the planner's
        statistics say. A table filled in this transaction (a fresh store's first import) has none yet, and the
        planner's guess of a few rows made every existence check a sequential scan: an import got slower with
        every batch (100,000 rows: 139-250 s). ``SET LOCAL`` ends with the transaction."""
        self._check()
        self._control("SET LOCAL enable_seqscan = off")

    def _begin_writing(self) -> None:
        """Before the first write on SQLite: end the read-only transaction and ``BEGIN IMMEDIATE``.

        A deferred transaction that has read cannot start writing once another connection has committed
        (SQLite fails at once, without waiting), so concurrent sessions adding different rows would
        conflict. Taking the write lock up front (waiting up to the busy timeout) gives the reads before
        the first write read-committed semantics, as on PostgreSQL; versions, keys and foreign keys are
        still checked by the database when writing.
        """
        dbapi = self._conn.connection.dbapi_connection if self._conn is not None else None
        self._writing = True
        if dbapi is None or getattr(dbapi, "autocommit", None) is False:
            return  # sqlite3's autocommit=False mode keeps its own transaction open; leave it be
        dbapi.commit()
        try:
            self._cur.execute("BEGIN IMMEDIATE")
        except self._error as exc:
            self._writing = False
            self._cur.execute("BEGIN")
            raise self._translate(exc, None, "write") from None

    def _release_savepoint(self, own: bool = True) -> None:
        if own:
            self._control(SAVEPOINT[1])

    def _undo(self, own: bool = True) -> None:
        """Roll back to the savepoint after a failed write (the transaction stays usable); without one of its
        own (``own`` False, see :meth:`bulk`), to where the innermost atomic block began."""
        if self._broken is not None:
            return
        try:
            if own:
                self._cur.execute(SAVEPOINT[2])
                self._cur.execute(SAVEPOINT[1])
            else:
                self._cur.execute(_atomic_sql(self._atomic_depth - 1)[2])
        except Exception as exc:  # the database dropped the whole transaction
            self._break(exc)

    # ---- Transaction protocol ----
    def get(self, kind: type[Entity], id: str) -> Entity | None:
        if self._done or self._broken:
            self._check()
        st = self._q.get[kind]
        try:
            if self._echo:
                self._log.info("%s %r", st.sql, id)
            cur = self._cur
            cur.execute(st.sql, (id,) if st.order is not None else {"k_id": id})
            rows = cur.fetchall()
        except self._error as exc:
            raise self._translate(exc, kind, "get") from None
        if not rows:
            return None
        return MAPPERS[kind].from_row(rows[0], self._cx)  # type: ignore[no-any-return]

    def insert(self, kind: type[Entity], entities: Sequence[Entity]) -> None:
        self._check()
        if not entities:
            return
        # A bulk insert allocates a few small objects per row while many entities are alive; pausing the
        # cyclic garbage collector meanwhile avoids repeated full collections (nothing here makes cycles).
        paused = len(entities) > 1000 and gc.isenabled()
        if paused:
            gc.disable()
        try:
            rows, children = table_rows(kind, entities, self._cx)  # encoding problems surface before any SQL runs
            self._insert_rows(kind, rows, children)
        finally:
            if paused:
                gc.enable()

    def row_preparer(self) -> SQLRowPreparer:
        """``PreparedWrites``: makes rows :meth:`insert_rows` takes, in an import's worker processes."""
        from pycrm.storage.sql.prepared import SQLRowPreparer

        return SQLRowPreparer(self._cx.dialect)

    def insert_rows(self, kind: type[Entity], rows: list[tuple[Any, ...]], children: dict[str, list[tuple[Any, ...]]]) -> None:
        """Insert rows :func:`table_rows` made elsewhere (an import's worker processes), for this dialect."""
        self._check()
        if rows:
            self._insert_rows(kind, rows, children)

    def _insert_rows(self, kind: type[Entity], rows: list[tuple[Any, ...]], children: dict[str, list[tuple[Any, ...]]]) -> None:
        keys = self._keys.rows(kind, rows)  # unique key values (storage/sql/keys.py)
        own = self._savepoint(bulk_ok=True)
        try:
            skip, filled = self._null_columns(rows)
            self._many(self._q.insert(kind, skip), filled)
            for field, crow in children.items():
                self._many(self._q.child_insert(kind, field), crow)
            self._keys.insert(keys)
            self._release_savepoint(own)
        except KeyTaken as taken:
            self._undo(own)
            raise self._keys.taken_error(kind, taken.rows, len(rows)) from None
        except self._error as exc:
            self._undo(own)
            raise self._translate(exc, kind, "insert", rows, children) from None
        except BaseException:
            self._undo(own)
            raise

    def update(self, kind: type[Entity], entity: Entity, expected_version: int) -> bool:
        self._check()
        m = MAPPERS[kind]
        row = m.to_row(entity, self._cx)
        children = child_rows(kind, [entity])
        stmt = self._q.update(kind)
        args = stmt.bind([*row[1:], entity.id, expected_version])
        self._savepoint()
        try:
            cur = self._run(stmt.sql, args)
            if cur.rowcount != 1:
                self._release_savepoint()
                return False
            for field, crow in children.items():
                self._run(self._q.child_delete(kind, field).sql, self._q.child_delete(kind, field).bind([entity.id]))
                self._many(self._q.child_insert(kind, field), crow)
            self._keys.replace(kind, entity)
            self._release_savepoint()
        except KeyTaken as taken:
            self._undo()
            raise self._keys.taken_error(kind, taken.rows, 1) from None
        except self._error as exc:
            self._undo()
            raise self._translate(exc, kind, "update", [row], children) from None
        except BaseException:
            self._undo()
            raise
        return True

    def unique_keys(self, kind: type[Entity]) -> frozenset[str]:
        """``UniqueKeys``: the keys held unique for ``kind`` (storage/sql/keys.py)."""
        self._check()
        return self._keys.unique_keys(kind)

    def lock_keys(self, kind: type[Entity], fields: Sequence[str]) -> None:
        """``KeyLocks``: the upsert locks of ``fields``, held to the end of the transaction (a row each,
        ``FOR UPDATE``; on SQLite the write lock), waiting up to ``keys.KEY_LOCK_WAIT`` seconds."""
        self._check()
        self._keys.lock(kind, fields)

    def lock(self, kind: type[Entity], ids: Sequence[str]) -> None:
        """``SELECT ... FOR UPDATE`` of the rows in id order (PostgreSQL, MariaDB); on SQLite the database's
        write lock (``BEGIN IMMEDIATE``), which holds every row."""
        self._check()
        if self._sqlite:
            if not self._writing:
                self._begin_writing()
            return
        table = ENTITY_TABLES[kind]
        wanted = sorted(set(ids))
        stmt = sa.select(table.c.id).where(table.c.id.in_(wanted)).order_by(table.c.id).with_for_update()
        self._core(lambda conn: conn.execute(stmt).fetchall())

    def delete(self, kind: type[Entity], id: str) -> bool:
        self._check()
        self._savepoint()
        try:
            for field in LIST_TABLES[kind]:
                st = self._q.child_delete(kind, field)
                self._run(st.sql, st.bind([id]))
            self._keys.delete(kind, id)
            st = self._q.delete(kind)
            n = self._run(st.sql, st.bind([id])).rowcount
            self._release_savepoint()
        except self._error as exc:
            self._undo()
            raise self._translate(exc, kind, "delete") from None
        except BaseException:
            self._undo()
            raise
        return bool(n == 1)

    def find(
        self, kind: type[Entity], where: list[Condition], order_by: list[OrderBy], limit: int | None, offset: int
    ) -> list[Entity]:
        if self._done or self._broken:
            self._check()
        paged = limit is not None or offset != 0
        q = self._q.select(kind, where, order_by, paged, False)
        values = q.values(where, (self._q.no_limit if limit is None else limit, offset)) if paged else q.values(where)
        return self._load(kind, q.stmt, values)

    def _load(self, kind: type[Entity], stmt: Stmt, values: list[Any]) -> list[Entity]:
        try:
            if self._echo:
                self._log.info("%s %r", stmt.sql, values)
            cur = self._cur
            cur.execute(stmt.sql, stmt.bind(values))
            rows = cur.fetchall()
        except self._error as exc:
            raise self._translate(exc, kind, "find") from None
        load = MAPPERS[kind].from_row
        cx = self._cx
        return [load(r, cx) for r in rows]

    def count(self, kind: type[Entity], where: list[Condition]) -> int:
        self._check()
        q = self._q.count(kind, where)
        try:
            rows = self._rows(q.stmt.sql, q.stmt.bind(q.values(where)))
        except self._error as exc:
            raise self._translate(exc, kind, "count") from None
        return int(rows[0][0])

    def iter(self, kind: type[Entity], where: list[Condition], batch_size: int) -> Iterator[Entity]:
        order = [OrderBy("id")]
        after: str | None = None
        while True:
            self._check()
            q = self._q.select(kind, where, order, True, after is not None)
            extra: tuple[Any, ...] = (batch_size, 0) if after is None else (after, batch_size, 0)
            batch = self._load(kind, q.stmt, q.values(where, extra))
            yield from batch
            if len(batch) < batch_size:
                return
            after = batch[-1].id

    def existing_ids(self, kind: type[Entity], ids: Iterable[str]) -> set[str]:
        self._check()
        wanted = list(dict.fromkeys(ids))
        found: set[str] = set()
        try:
            for start in range(0, len(wanted), CHUNK):
                chunk = wanted[start : start + CHUNK]
                st = self._q.ids_in(kind, len(chunk))
                found.update(r[0] for r in self._rows(st.sql, st.bind([chunk] if self._q.id_array else chunk)))
        except self._error as exc:
            raise self._translate(exc, kind, "get") from None
        return found

    def referencing(self, kind: type[Entity], field: str, ids: Iterable[str]) -> int:
        self._check()
        wanted = list(dict.fromkeys(ids))
        n = 0
        try:
            for start in range(0, len(wanted), CHUNK):
                chunk = wanted[start : start + CHUNK]
                st = self._q.referencing(kind, field, len(chunk))
                n += int(self._rows(st.sql, st.bind(chunk))[0][0])
        except self._error as exc:
            raise self._translate(exc, kind, "count") from None
        return n

    def commit(self) -> None:
        if self._done:
            return
        if self._broken is not None:
            self.rollback()
            if self._lost is not None:
                raise StorageError(f"nothing was committed: {self._lost}")
            raise ConcurrencyError(f"nothing was committed: the database aborted the transaction ({self._broken})")
        try:
            self._trans.commit()
        except sa.exc.DBAPIError as exc:
            err = self._translate(exc.orig, None, "commit") if isinstance(exc.orig, self._error) else exc
            self.rollback()
            raise err from None
        self._release()

    def rollback(self) -> None:
        if self._done:
            return
        try:
            self._trans.rollback()
        except sa.exc.DBAPIError:
            pass  # the connection is gone; the database has rolled back
        else:
            if self._failed and self._sqlite:
                self._shrink_log()
        finally:
            self._release()

    def _shrink_log(self) -> None:
        """After a write that met a full disk (SQLite), rolled back: give the write-ahead log's space back.

        The log keeps the pages of the rolled-back transaction (as much as the disk held) until a checkpoint;
        a ``TRUNCATE`` checkpoint with nothing committed to copy only cuts the log to zero bytes, so the disk
        is not left full of it. Best effort: another connection still reading keeps the log as it is."""
        with contextlib.suppress(Exception):
            self._cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # ---- atomic blocks and records ----
    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        self._check()
        if self._sqlite and not self._writing:
            self._begin_writing()
        sql = _atomic_sql(self._atomic_depth)
        self._control(sql[0])
        self._atomic_depth += 1
        try:
            yield
        except BaseException:
            self._atomic_depth -= 1
            if self._broken is None and not self._done:
                try:
                    self._cur.execute(sql[2])
                    self._cur.execute(sql[1])
                except Exception as exc:  # the database dropped the whole transaction
                    self._break(exc)
            raise
        self._atomic_depth -= 1
        self._control(sql[1])

    def record_get(self, stream: str, key: str) -> Any | None:
        t = tables.records
        stmt = sa.select(t.c.data).where(t.c.stream == stream, t.c.record_key == key)
        text = self._core(lambda conn: conn.execute(stmt).scalar_one_or_none())
        return None if text is None else json_in(text)

    def record_put(self, stream: str, key: str, data: Any) -> None:
        t = tables.records
        text = dump_json(data, f"{stream}[{key}]")

        def put(conn: sa.Connection) -> None:
            conn.execute(sa.delete(t).where(t.c.stream == stream, t.c.record_key == key))
            conn.execute(sa.insert(t).values(stream=stream, record_key=key, data=text))

        self._record_write(put)

    def record_delete(self, stream: str, key: str) -> bool:
        t = tables.records
        stmt = sa.delete(t).where(t.c.stream == stream, t.c.record_key == key)
        return bool(self._record_write(lambda conn: conn.execute(stmt).rowcount) == 1)

    def record_list(self, stream: str) -> list[tuple[str, Any]]:
        t = tables.records
        stmt = sa.select(t.c.record_key, t.c.data).where(t.c.stream == stream).order_by(t.c.record_key)
        return [(k, json_in(v)) for k, v in self._core(lambda conn: conn.execute(stmt).all())]

    def record_streams(self) -> list[str]:
        t = tables.records
        stmt = sa.select(t.c.stream).distinct().order_by(t.c.stream)
        return [r for (r,) in self._core(lambda conn: conn.execute(stmt).all())]

    # ---- the journal: change feed and audit trail (see storage/_journal.py) ----
    # ---- the journal (storage/sql/journal.py) ----
    def journal(self, changes: Sequence[dict[str, Any]], audit: Sequence[dict[str, Any]], *, key: bytes | None = None) -> None:
        self._journal.journal(changes, audit, key=key)

    def journal_load(self, changes: Sequence[dict[str, Any]], audit: Sequence[dict[str, Any]]) -> None:
        self._journal.journal_load(changes, audit)

    def audit_erase(self, records: Mapping[str, Sequence[str]], erasure_id: str, *, key: bytes | None = None) -> None:
        self._journal.audit_erase(records, erasure_id, key=key)

    def changes_since(self, cursor: int, limit: int) -> list[dict[str, Any]]:
        return self._journal.changes_since(cursor, limit)

    def changes_last(self) -> int:
        return self._journal.changes_last()

    def audit_list(self, after: int, limit: int | None, entity_id: str | None) -> list[dict[str, Any]]:
        return self._journal.audit_list(after, limit, entity_id)

    def audit_last(self) -> dict[str, Any] | None:
        return self._journal.audit_last()

    # ---- the outbox (storage/sql/outbox.py) ----
    def outbox_add(self, rows: Sequence[dict[str, Any]], *, unique: bool = False) -> int:
        return self._outbox.add(rows, unique)

    def outbox_claim(self, owner: str, now: dt.datetime, until: dt.datetime, limit: int) -> list[dict[str, Any]]:
        return self._outbox.claim(owner, now, until, limit)

    def outbox_settle(self, owner: str, rows: Sequence[dict[str, Any]]) -> int:
        return self._outbox.settle(owner, rows)

    def outbox_list(self, state: str | None, after: int, limit: int) -> list[dict[str, Any]]:
        return self._outbox.list(state, after, limit)

    def outbox_retry(self, seqs: Sequence[int] | None, now: dt.datetime) -> int:
        return self._outbox.retry(seqs, now)

    def outbox_counts(self) -> dict[str, int]:
        return self._outbox.counts()

    def outbox_erase(self, records: Mapping[str, Sequence[str]]) -> int:
        return self._outbox.erase(records)

    def due(self, kind: str, now: dt.datetime, **params: Any) -> list[tuple[Any, ...]] | None:
        """``DueQueries``: what a time rule of ``crm.run_due`` finds, one statement (``storage/sql/_due.py``)."""
        from pycrm.storage.sql import _due

        return _due.due(self, kind, now, **params)

    def fired(self, keys: Sequence[str]) -> set[str]:
        """``DueQueries``: which of the event ``keys`` the outbox holds."""
        return self._outbox.held(keys)

    def fire(self, kind: str, now: dt.datetime, name: str, **params: Any) -> tuple[int, int] | None:
        """``DueQueries``: a time rule's firing in the database (``storage/sql/_due.py``)."""
        from pycrm.storage.sql import _due

        return _due.fire(self, kind, now, name, **params)

    def report(self, name: str, **kw: Any) -> Any:
        """``Reports``: a report computed in the database (``storage/sql/_reports.py``; see storage/_analytics.py)."""
        from pycrm.storage.sql import _reports

        return getattr(_reports, name)(self, **kw)

    def fetch_rows(self, kind: type[Entity] | None, sql: str, params: Any) -> list[Any]:
        """Rows of a compiled statement as the driver gives them (tuples), on this transaction's cursor;
        driver errors translated as for ``find`` on ``kind``."""
        self._check()
        try:
            return self._rows(sql, params)
        except self._error as exc:
            raise self._translate(exc, kind, "find") from None

    # ---- RowStreams (pycrm.storage.port): exports read from stored columns, see export_rows.py ----
    export_batches = export_rows.export_batches
    id_ranges = export_rows.id_ranges

    # ---- Snapshots: consistent reads for backups ----
    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read of the block sees one point in time (enter before the transaction's first statement).

        PostgreSQL and MariaDB: a repeatable-read, read-only transaction (a consistent snapshot); SQLite:
        the open transaction's first read fixes its snapshot (write-ahead log or rollback journal)."""
        dialect = self._store.dialect
        if dialect == "postgresql":
            self.connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        elif dialect == "mysql":
            conn = self.connection
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        yield

    def schema_revision(self) -> str | None:
        """The Alembic revision of the pycrm schema (None when the version table cannot be read)."""
        try:
            row = self.connection.execute(sa.text(f"SELECT version_num FROM {tables.VERSION_TABLE}")).first()
        except sa.exc.DBAPIError:
            return None
        return None if row is None else str(row[0])

    def source(self) -> str:
        """``sqlite``, ``postgresql`` or ``mysql`` (MariaDB too)."""
        return self._store.dialect

    # ---- FileBacked: the SQLite file, for other processes ----
    def database_file(self) -> str | None:
        """The absolute path of the SQLite file this transaction reads, when pycrm opened it by URL (not in
        memory, not a temporary database, not an application's own Engine); None otherwise."""
        store = self._store
        if store.dialect != "sqlite" or store._memory or not store._own:
            return None
        rows = self.fetch_rows(None, "PRAGMA database_list", ())
        name = next((r[2] for r in rows if r[1] == "main"), None)
        return name or None

    def file_opener(self) -> SQLiteFile:
        """A picklable function opening :meth:`database_file` as a new store (in another process)."""
        file = self.database_file()
        if file is None:
            raise CRMError(f"{self._store.url} is not an SQLite file another process may open")
        return SQLiteFile(file)

    def _append(self, fn: Any) -> Any:
        """A write that cannot conflict with stored rows (new rows under fresh keys: a session's events), without
        a savepoint of its own: should it fail all the same (a full disk, a lost connection), the transaction is
        broken -- every later use raises, and nothing of it is committed."""
        self._check()
        if self._sqlite and not self._writing:
            self._begin_writing()
        try:
            return self._core(fn)
        except BaseException as exc:
            self._broken = f"{type(exc).__name__}: {exc}"
            self._lost = exc if isinstance(exc, StorageError) else None
            raise

    def _record_write(self, fn: Any) -> Any:
        self._check()
        own = self._savepoint(bulk_ok=True)
        try:
            out = self._core(fn)
            self._release_savepoint(own)
        except BaseException:
            self._undo(own)
            raise
        return out

    # ---- analytics pushdowns (see storage/_analytics.py) ----
    def rfm(
        self, cutoff: dt.datetime, ref_date: dt.date, bins: int, where: Sequence[Condition] = ()
    ) -> tuple[set[str], list[tuple[Any, ...]]]:
        """RFM figures computed in the database: the orders' currencies, and per customer
        (customer_id, recency_days, frequency, monetary, r, f, m) (PostgreSQL rows carry two more columns).
        ``where``: conditions on the orders counted (an actor's row scope)."""
        from pycrm.storage.sql import _reports, _rfm

        clauses, params = _reports._filter(self, Order, where) if where else ([], {})
        return self._core(lambda conn: _rfm.rfm_rows(conn, cutoff, ref_date, bins, clauses, params))  # type: ignore[no-any-return]

    def next_value(self, name: str) -> int:
        """``Counters``: increment the counter ``name`` and return its new value, its row held ``FOR UPDATE`` to
        the end of the transaction (on SQLite the write lock) (storage/sql/counters.py)."""
        self._check()
        return counters.next_value(self, name)

    def count_by(self, kind: type[Entity], where: list[Condition], field: str, limit: int) -> dict[str | None, int]:
        """``GroupedCounts``: rows matching ``where`` per value of ``field``, one ``GROUP BY`` query
        (storage/sql/counters.py)."""
        self._check()
        return counters.count_by(self, kind, where, field, limit)

    def _core(self, fn: Any) -> Any:
        """Run Core statements on this transaction's connection, translating driver errors."""
        conn = self.connection
        try:
            return fn(conn)
        except sa.exc.DBAPIError as exc:
            if isinstance(exc.orig, self._error):
                raise self._translate(exc.orig, None, "find") from None
            raise
        except self._error as exc:  # a statement run on the driver's own cursor (``_many``)
            raise self._translate(exc, None, "write") from None

    # ---- errors ----

    def _translate(
        self,
        exc: Exception,
        kind: type[Entity] | None,
        op: str,
        rows: Sequence[tuple[Any, ...]] = (),
        children: dict[str, list[tuple[Any, ...]]] | None = None,
    ) -> Exception:
        """A pycrm error for a driver error (:func:`pycrm.storage.sql.errors.translate`)."""
        store = self._store
        if store.dialect == "postgresql" and op in ("get", "find", "count"):
            msg = str(exc)  # PostgreSQL aborts the whole transaction on any error outside a savepoint
            self._broken = msg.splitlines()[0] if msg else type(exc).__name__
        dbapi = store.engine.dialect.loaded_dbapi
        err = translate(exc, dialect=store.dialect, store=store.url, dbapi=dbapi, kind=kind, op=op, rows=rows, children=children)
        if isinstance(err, StorageError):
            self._failed = True
        return err


def table_rows(
    kind: type[Entity], entities: Sequence[Any], cx: Codec
) -> tuple[list[tuple[Any, ...]], dict[str, list[tuple[Any, ...]]]]:
    """The rows of ``entities`` (stored: ids, versions and times set) for ``kind``'s table, and the (owner id,
    value) rows of its child tables, in the form ``cx``'s driver takes."""
    to_row = MAPPERS[kind].to_row
    return [to_row(e, cx) for e in entities], child_rows(kind, entities)


def child_rows(kind: type[Entity], entities: Sequence[Any]) -> dict[str, list[tuple[Any, ...]]]:
    """(owner id, value) rows of the list fields kept in child tables, each value once per owner; an order's
    lines: its ``order_lines`` rows (:func:`~pycrm.storage.sql.mapping.line_rows`)."""
    lists = LIST_TABLES[kind]
    if not lists:
        return {}
    out: dict[str, list[tuple[Any, ...]]] = {}
    if "emails" in lists:
        out["emails"] = _pairs(entities, "emails", "value")
    if "phones" in lists:
        out["phones"] = _pairs(entities, "phones", "e164")
    if "tags" in lists:
        out["tags"] = [(e.id, v) for e in entities if e.tags for v in e.tags]
    if "lines" in lists:
        out["lines"] = [row for e in entities if e.lines for row in line_rows(e)]
    return out


def _pairs(entities: Sequence[Any], field: str, attr: str) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    add = out.append
    for e in entities:
        items = getattr(e, field)
        if not items:
            continue
        if len(items) == 1:
            v = getattr(items[0], attr)
            add((e.id, index_text(v) if v[:3] == "bi:" else v))
        else:
            out.extend((e.id, v) for v in dict.fromkeys(index_text(getattr(x, attr)) for x in items))
    return out


def _implements(tx: SQLTransaction, store: SQLStore) -> tuple[Any, ...]:  # pragma: no cover - for mypy, never called
    """The SQL adapter implements the port's protocols and capabilities: mypy checks the signatures here."""
    checked: tuple[
        port.Transaction,
        port.Reports,
        port.RFMPushdown,
        port.PreparedWrites,
        port.BulkMode,
        port.RowStreams,
        port.RowLocks,
        port.UniqueKeys,
        port.KeyLocks,
        port.Counters,
        port.GroupedCounts,
        port.Snapshots,
        port.FileBacked,
        port.Outbox,
        port.DueQueries,
        port.Store,
        port.ExclusiveHold,
        port.FileCopies,
        port.DriverErrors,
        port.DeclaredKeys,
    ] = (tx, tx, tx, tx, tx, tx, tx, tx, tx, tx, tx, tx, tx, tx, tx, store, store, store, store, store)
    return checked
