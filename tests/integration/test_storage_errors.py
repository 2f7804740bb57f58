"""The store failing, not the input: a full disk, a file that is not a database, a URL without a database.

Each is a :class:`pycrm.StorageError` (or ValidationError for the URL) naming the store, never a driver's
exception or a traceback; the unit of work that met it is rolled back and the store stays usable; the
command line says so in one line and exits 3."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

import pycrm
from pycrm import Customer, StorageError, ValidationError
from pycrm.cli import EXIT_STORAGE, main


def _full_engine(path: Path, pages: int) -> sa.Engine:
    """An SQLite engine whose database cannot grow past ``pages`` pages: a disk that fills up."""
    engine = sa.create_engine(f"sqlite:///{path}")

    @sa.event.listens_for(engine, "connect")
    def _limit(dbapi_connection: object, record: object) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")  # type: ignore[attr-defined]

    return engine


def test_a_full_disk_is_a_storage_error_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "crm.db"
    with pycrm.open(f"sqlite:///{path}") as crm, crm.session() as s:
        s.customers.add(Customer("Before"))
    import sqlite3

    with sqlite3.connect(path) as conn:
        used = int(conn.execute("PRAGMA page_count").fetchone()[0])
    crm = pycrm.open(_full_engine(path, used + 2))
    try:
        with pytest.raises(StorageError, match="disk is full") as caught, crm.session() as s:
            s.customers.add_many(Customer(f"Customer {i}", custom={"note": "x" * 500}) for i in range(2000))
        assert "crm.db" in str(caught.value)
        with crm.session() as s:  # as the last commit left it, and usable
            assert [c.name for c in s.customers.find()] == ["Before"]
    finally:
        crm.close()
        crm.store.engine.dispose()


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are notes, not a database\n" * 100, encoding="utf-8")
    with pytest.raises(StorageError, match=r"notes\.txt.*not a database"):
        pycrm.open(f"sqlite:///{path}")
    assert path.read_text(encoding="utf-8").startswith("these are notes")


def test_a_server_url_without_a_database_is_named() -> None:
    with pytest.raises(ValidationError, match="names no database"):
        pycrm.open("mysql+pymysql://root@127.0.0.1:3306/")


def test_the_command_line_says_storage_in_one_line_and_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "crm.db"
    with pycrm.open(f"sqlite:///{path}") as crm, crm.session() as s:
        s.customers.add(Customer("Before"))
    real = pycrm.open

    def full(*args: object, **kwargs: object) -> pycrm.CRM:  # the store the command opens has a full disk
        return real(_full_engine(path, 1), **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pycrm, "open", full)
    csv = tmp_path / "in.csv"
    csv.write_text("name,note\n" + "".join(f"Name {i},{'x' * 400}\n" for i in range(3000)), encoding="utf-8")
    assert main(["import", str(csv), "--store", f"sqlite:///{path}", "--map", "note=custom.note"]) == EXIT_STORAGE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "disk is full" in err, err
    monkeypatch.undo()
    with pycrm.open(f"sqlite:///{path}") as crm, crm.session() as s:  # nothing of the import was kept
        assert [c.name for c in s.customers.find()] == ["Before"]
