"""The machine failing under pycrm: a full disk, a read-only folder or database, a file that is not a
database, a lost connection.

Each is a :class:`pycrm.StorageError` naming the file or the store (a URL without its password), the command
line's one line and exit status 3; the store is as the last commit left it (all-or-nothing imports and
archives: unchanged; per-batch imports: at a batch boundary); no file appears under the name asked for, no
temporary file is left beside it, and an SQLite store keeps no write-ahead log full of the failed pages.

The full disk is real where the test may mount a 1 MiB tmpfs of its own (root, as on the project's
machines): the kernel's ENOSPC reaches every writer (Python's files, zipfile, gzip, SQLite). Everywhere, the
same cases also run with the failure injected: files opened for writing under the target folder share a byte
budget and raise ``OSError(ENOSPC)`` past it; SQLite databases get a page limit (``max_page_count``), which
SQLite reports as "database or disk is full".
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import hashlib
import io
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import pycrm
from pycrm import Customer, StorageError, Ticket
from pycrm.cli import EXIT_BAD_INPUT, EXIT_STORAGE, main
from pycrm.io import archive, backup, export_file, import_file, tickets_closed, unarchive
from tests.conftest import reset_server_database, server_url

# openpyxl leaves a half-written workbook's objects to the garbage collector, which cannot finish them (their
# file is gone): Python reports that as an unraisable exception, whenever it collects them, after pycrm has
# raised its error and removed the file
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

FORMATS = ["csv", "jsonl", "xlsx"]
BACKUPS = [("crm.jsonl", "logical"), ("crm.jsonl.gz", "logical"), ("crm.db", "sqlite"), ("crm.db.gz", "sqlite")]


# ---------------------------------------------------------------- a small disk, real or injected


@contextlib.contextmanager
def tmpfs(folder: Path, size: str = "1m") -> Iterator[bool]:
    """Mount a tmpfs of ``size`` on ``folder``; yields whether it could (root, mount allowed)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    except OSError:
        yield False
        return
    if done.returncode != 0:
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path, leave: int) -> None:
    """Fill the file system holding ``folder`` until about ``leave`` bytes are free (a ballast file)."""
    ballast = folder / "ballast"
    with open(ballast, "wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    os.truncate(ballast, max(0, ballast.stat().st_size - leave))


class Budget:
    """Files opened for writing in ``folder`` share ``left`` bytes; a write past them writes what fits and
    raises ``OSError(ENOSPC)``, as a full disk does."""

    def __init__(self, folder: Path, left: int):
        self.folder = str(folder)
        self.left = left

    def wrap(self, f: Any, file: Any, mode: str) -> Any:
        name = os.fspath(file) if isinstance(file, (str, os.PathLike)) else ""
        if not name.startswith(self.folder) or not any(c in mode for c in "wax+"):
            return f
        return _Filling(f, self)


class _Filling:
    def __init__(self, f: Any, budget: Budget):
        self._f = f
        self._budget = budget

    def write(self, data: Any) -> int:
        size = len(data.encode("utf-8", "surrogatepass")) if isinstance(data, str) else len(data)
        if size > self._budget.left:
            self._f.write(data[: self._budget.left])  # what fits, as a disk that fills up mid-write
            self._budget.left = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._budget.left -= size
        return int(self._f.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._f)

    def __enter__(self) -> _Filling:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()


@pytest.fixture(params=["tmpfs", "injected"])
def small_disk(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder where about 48 KiB can still be written: on a nearly full tmpfs, or by injection."""
    folder = tmp_path / "disk"
    if request.param == "tmpfs":
        with tmpfs(folder) as mounted:
            if not mounted:
                pytest.skip("cannot mount a tmpfs here (not root); the injected full disk runs instead")
            fill(folder, 48 * 1024)
            yield folder
        return
    folder.mkdir()
    budget = Budget(folder, 48 * 1024)
    real_open = builtins.open

    def limited_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        return budget.wrap(real_open(file, mode, *args, **kwargs), file, mode)

    monkeypatch.setattr(builtins, "open", limited_open)
    monkeypatch.setattr(io, "open", limited_open)
    real_connect = sqlite3.connect

    def limited_connect(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:  # a backup's copy
        conn = real_connect(database, *args, **kwargs)
        if str(database).startswith(str(folder)):
            conn.execute("PRAGMA max_page_count = 4")
        return conn

    monkeypatch.setattr(sqlite3, "connect", limited_connect)
    yield folder


def limited_store(path: Path, pages: int) -> pycrm.CRM:
    """An SQLite store whose file cannot grow past ``pages`` pages: a disk that fills up (injected)."""
    engine = sa.create_engine(f"sqlite:///{path}")

    @sa.event.listens_for(engine, "connect")
    def _limit(dbapi_connection: Any, record: object) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    return pycrm.open(engine)


def leftovers(folder: Path) -> list[str]:
    """Files in ``folder`` besides the ballast: nothing may be left under a final or temporary name."""
    return sorted(p.name for p in folder.iterdir() if p.name != "ballast")


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def noise(i: int) -> str:
    """Text that compresses badly (gzip and XLSX must fill the disk too)."""
    return hashlib.sha256(str(i).encode()).hexdigest() * 4


@pytest.fixture
def source(tmp_path: Path) -> str:
    """An SQLite store (on the big disk) with 2,000 customers: about 700 KB to export or back up."""
    url = f"sqlite:///{tmp_path / 'source.db'}"
    with pycrm.open(url) as crm, crm.session() as s:
        s.customers.add_many(Customer(f"Customer {i}", custom={"note": noise(i)}) for i in range(2000))
    return url


# ---------------------------------------------------------------- exports and backups


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_export_that_fills_the_disk_leaves_no_file(source: str, small_disk: Path, fmt: str, capsys: Any) -> None:
    target = small_disk / f"out.{fmt}"
    with pycrm.open(source) as crm:
        with pytest.raises(StorageError, match="disk is full") as caught:
            export_file(crm, target, "customers", workers=1)
        assert str(target) in str(caught.value)
        assert leftovers(small_disk) == []
        with crm.session() as s:
            assert s.customers.count() == 2000
    assert main(["export", "customers", "--store", source, "-o", str(target)]) == EXIT_STORAGE
    err = one_line(capsys)
    assert str(target) in err and "disk is full" in err
    assert leftovers(small_disk) == []


@pytest.mark.parametrize(("name", "method"), BACKUPS)
def test_a_backup_that_fills_the_disk_leaves_no_file(source: str, small_disk: Path, name: str, method: str, capsys: Any) -> None:
    target = small_disk / name
    with pycrm.open(source) as crm:
        with pytest.raises(StorageError, match="disk is full") as caught:
            backup(crm, target, method=method)
        assert str(target) in str(caught.value)
        assert leftovers(small_disk) == []  # no copy, no -journal of the copy
    assert main(["backup", source, str(target), "--method", method]) == EXIT_STORAGE
    err = one_line(capsys)
    assert str(target) in err and "disk is full" in err
    assert leftovers(small_disk) == []


# ---------------------------------------------------------------- writes into an SQLite store on a full disk


@pytest.fixture
def full_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], pycrm.CRM]]:
    """Opens an SQLite store holding one customer, "Before", on a disk with about 48 KiB left (a tmpfs), or
    whose file may grow by a few pages only (injected)."""
    kind = request.param
    folder = tmp_path / "disk"
    with contextlib.ExitStack() as stack:
        if kind == "tmpfs":
            # the store's schema (about 1.5 MiB of mostly empty pages) is written through the WAL first: room for
            # both, with some to spare as the schema grows (fill() then leaves 48 KiB whatever the size)
            if not stack.enter_context(tmpfs(folder, "5m")):
                pytest.skip("cannot mount a tmpfs here (not root); the injected full disk runs instead")
        else:
            folder.mkdir()
        path = folder / "crm.db"
        with pycrm.open(f"sqlite:///{path}") as crm, crm.session() as s:
            s.customers.add(Customer("Before"))
            s.tickets.add_many(
                Ticket(s.customers.find()[0].id, f"Ticket {i}", description=noise(i) * 4, status="closed") for i in range(60)
            )
        if kind == "tmpfs":
            fill(folder, 48 * 1024)
            opened: list[pycrm.CRM] = []

            def open_full() -> pycrm.CRM:
                opened.append(pycrm.open(f"sqlite:///{path}"))
                return opened[-1]
        else:
            pages = sqlite3.connect(path).execute("PRAGMA page_count").fetchone()[0]

            def open_full() -> pycrm.CRM:
                opened.append(limited_store(path, int(pages) + 3))
                return opened[-1]

            opened = []
        open_full.path = path  # type: ignore[attr-defined]
        open_full.kind = kind  # type: ignore[attr-defined]
        yield open_full
        for crm in opened:
            crm.close()


def wal_after_close(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


@pytest.fixture
def rows(tmp_path: Path) -> Path:
    """3,000 customers to import (about 800 KB), on the big disk."""
    csv = tmp_path / "in.csv"
    csv.write_text("name,note\n" + "".join(f"Name {i},{noise(i)}\n" for i in range(3000)), encoding="utf-8")
    return csv


@pytest.mark.parametrize("full_store", ["tmpfs", "injected"], indirect=True)
def test_an_import_that_fills_the_disk_changes_nothing(full_store: Any, rows: Path, capsys: Any) -> None:
    crm = full_store()
    with pytest.raises(StorageError, match="disk is full") as caught:
        import_file(crm, rows, "customers", mapping={"note": "custom.note"}, workers=1)
    assert "crm.db" in str(caught.value)
    with crm.session() as s:
        assert [c.name for c in s.customers.find()] == ["Before"]
    crm.close()
    assert wal_after_close(full_store.path) < 64 * 1024  # no log full of the failed import's pages
    crm = full_store()  # the next open works, and sees the store as it was
    with crm.session() as s:
        assert s.customers.count() == 1


@pytest.mark.parametrize("full_store", ["tmpfs"], indirect=True)
def test_an_import_from_the_command_line_that_fills_the_disk_is_one_line(full_store: Any, rows: Path, capsys: Any) -> None:
    url = f"sqlite:///{full_store.path}"
    status = main(["import", str(rows), "--store", url, "--map", "note=custom.note", "--workers", "1", "--no-progress"])
    assert status == EXIT_STORAGE
    err = one_line(capsys)
    assert "crm.db" in err and "disk is full" in err
    crm = full_store()
    with crm.session() as s:
        assert s.customers.count() == 1


@pytest.mark.parametrize("full_store", ["tmpfs", "injected"], indirect=True)
def test_a_per_batch_import_that_fills_the_disk_stops_at_a_batch_boundary(full_store: Any, rows: Path) -> None:
    crm = full_store()
    with pytest.raises(StorageError, match="disk is full"):
        import_file(crm, rows, "customers", mapping={"note": "custom.note"}, per_batch=True, batch_size=100, workers=1)
    with crm.session() as s:
        kept = s.customers.count() - 1
    assert kept % 100 == 0 and kept < 3000


@pytest.mark.parametrize("full_store", ["tmpfs", "injected"], indirect=True)
def test_an_archive_that_fills_the_disk_changes_nothing(full_store: Any, capsys: Any) -> None:
    crm = full_store()
    with crm.session() as s:
        before = sorted(t.id for t in s.tickets.find())
    later = pycrm.domain.utcnow().replace(year=2100)
    with pytest.raises(StorageError, match="disk is full") as caught:
        archive(crm, [tickets_closed(0)], as_of=later)
    assert "crm.db" in str(caught.value)
    with crm.session() as s:
        assert sorted(t.id for t in s.tickets.find()) == before
        assert list(pycrm.io.archived(s, "tickets")) == []
    crm.close()
    assert wal_after_close(full_store.path) < 64 * 1024
    if full_store.kind == "tmpfs":  # the command opens its own store: the injected limit is not on it
        url = f"sqlite:///{full_store.path}"
        assert main(["archive", url, "--rule", "tickets-closed:0", "--as-of", "2100-01-01"]) == EXIT_STORAGE
        assert "disk is full" in one_line(capsys)


# ---------------------------------------------------------------- read-only folders and databases


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder nothing can be written in: a read-only tmpfs (root), or a folder without write permission."""
    folder = tmp_path / "ro"
    with tmpfs(folder) as mounted:
        if mounted:
            (folder / "crm.db").write_bytes(b"")
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
            yield folder
            return
    if os.geteuid() == 0:  # pragma: no cover - root that may not mount: permissions do not stop root
        pytest.skip("root without mount: no folder is read-only to this process")
    folder.chmod(0o555)  # pragma: no cover - not root
    yield folder  # pragma: no cover
    folder.chmod(0o755)  # pragma: no cover


def test_writing_into_a_read_only_folder_is_a_storage_error(source: str, read_only_folder: Path, rows: Path, capsys: Any) -> None:
    with pycrm.open(source) as crm:
        for write in (
            lambda: export_file(crm, read_only_folder / "out.csv", "customers"),
            lambda: backup(crm, read_only_folder / "crm.jsonl"),
            lambda: backup(crm, read_only_folder / "crm.db", method="sqlite"),
        ):
            with pytest.raises(StorageError, match="read-only") as caught:
                write()
            assert str(read_only_folder) in str(caught.value)
    with pytest.raises(StorageError, match="read-only"):
        pycrm.open(f"sqlite:///{read_only_folder / 'crm.db'}")
    assert main(["backup", source, str(read_only_folder / "crm.jsonl")]) == EXIT_STORAGE
    assert "read-only" in one_line(capsys)
    store = f"sqlite:///{read_only_folder / 'crm.db'}"
    assert main(["import", str(rows), "--store", store, "--workers", "1", "--no-progress"]) == EXIT_STORAGE
    assert "read-only" in one_line(capsys)


def test_a_read_only_database_file_refuses_writes_and_keeps_its_rows(tmp_path: Path, rows: Path) -> None:
    path = tmp_path / "crm.db"
    with pycrm.open(f"sqlite:///{path}") as crm, crm.session() as s:
        s.customers.add(Customer("Before"))
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    with pycrm.open(url) as crm:
        with pytest.raises(StorageError, match="read-only"), crm.session() as s:
            s.customers.add(Customer("After"))
        with pytest.raises(StorageError, match="read-only"):
            import_file(crm, rows, "customers", workers=1)
        with crm.session() as s:
            assert [c.name for c in s.customers.find()] == ["Before"]


# ---------------------------------------------------------------- a file that is not a database


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("these are notes, not a database\n" * 200, encoding="utf-8")
    return path


def test_a_file_that_is_not_a_database_is_one_line_from_every_command(notes: Path, tmp_path: Path, capsys: Any) -> None:
    store = f"sqlite:///{notes}"
    good = f"sqlite:///{tmp_path / 'good.db'}"
    pycrm.open(good).close()
    for argv, status in [
        (["backup", store, str(tmp_path / "b.jsonl")], EXIT_STORAGE),
        (["backup", store, str(tmp_path / "b.db"), "--method", "sqlite"], EXIT_STORAGE),
        (["archive", store, "--rule", "tickets-closed:30"], EXIT_STORAGE),
        (["unarchive", store, "customers", "c1"], EXIT_STORAGE),
        # import, export and report look at a --store file first and call a text file bad input
        (["export", "customers", "--store", store, "-o", str(tmp_path / "x.csv")], EXIT_BAD_INPUT),
        (["report", "sales", "--store", store], EXIT_BAD_INPUT),
        (["verify-backup", str(notes), good], EXIT_BAD_INPUT),  # a backup file that is not one: the input
        (["restore", str(notes), good], EXIT_BAD_INPUT),
        (["verify-backup", str(tmp_path / "b.jsonl"), store], EXIT_STORAGE),  # the store is opened first
    ]:
        assert main(argv) == status, argv
        err = one_line(capsys)
        assert "notes.txt" in err or "b.jsonl" in err, (argv, err)
    assert notes.read_text(encoding="utf-8").startswith("these are notes")
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(("b.", "x.", ".b.", ".x."))]


def test_unarchive_into_a_file_that_is_not_a_database(notes: Path) -> None:
    with pytest.raises(StorageError, match="not a database"):
        unarchive(pycrm.open(f"sqlite:///{notes}"), "customers", ["c1"])


# ---------------------------------------------------------------- a lost connection


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres), pytest.param("mysql", marks=pytest.mark.mysql)])
def server(request: pytest.FixtureRequest) -> tuple[str, str]:
    adapter = str(request.param)
    url = server_url(adapter)
    reset_server_database(adapter, url)
    if adapter == "postgres":  # trust authentication ignores a password: one that must not be shown
        url = sa.make_url(url).set(password="s3cret-pw").render_as_string(hide_password=False)
    return adapter, url


def terminate_others(adapter: str, url: str) -> int:
    """End every other connection to the test's database, as an administrator (or a restart) would."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            if adapter == "postgres":
                sql = (
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                return int(conn.execute(sa.text(sql)).scalar_one())
            ids = conn.execute(
                sa.text("SELECT id FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()")
            ).scalars()
            n = 0
            for i in list(ids):
                with contextlib.suppress(sa.exc.DBAPIError):  # gone meanwhile
                    conn.execute(sa.text(f"KILL {int(i)}"))
                    n += 1
            return n
    finally:
        engine.dispose()


@pytest.mark.parametrize("when", ["read", "write", "commit"])
def test_a_lost_connection_is_a_storage_error_naming_the_store(server: tuple[str, str], when: str) -> None:
    adapter, url = server
    shown = sa.make_url(url).render_as_string(hide_password=True)
    with pycrm.open(url) as crm:
        with crm.session() as s:
            s.customers.add(Customer("Before"))
        with pytest.raises(StorageError) as caught, crm.session() as s:
            s.customers.add(Customer("Lost"))
            assert terminate_others(adapter, url) >= 1
            if when == "read":
                s.customers.count()
            elif when == "write":
                s.customers.add(Customer("Also lost"))
        message = str(caught.value)
        assert shown in message and "s3cret-pw" not in message
        with crm.session() as s:  # the next session gets a new connection; nothing of the lost one stayed
            assert [c.name for c in s.customers.find()] == ["Before"]
