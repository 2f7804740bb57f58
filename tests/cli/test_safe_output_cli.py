"""The command line never destroys or mislabels a file (issue 20, "Command line"): ``pycrm demo`` replaces
only a store an earlier demo made (or with ``--force``); an XLSX workbook is not sent to standard output;
an output name whose extension is not what the command writes (``out.pdf``) is refused. Each refusal is one
line naming the file or option, exit status 2, and nothing written."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import sqlite3
import zipfile
from pathlib import Path

import pytest

import pycrm
import pycrm.io as pio
from pycrm import Customer, Money, Order
from pycrm.cli import main
from pycrm.errors import ValidationError


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_error_line(err: str, *needles: str) -> None:
    assert err.startswith("pycrm: error: ") and err.count("\n") == 1 and "Traceback" not in err
    for needle in needles:
        assert needle in err


@pytest.fixture
def store(tmp_path: Path) -> Path:
    db = tmp_path / "crm.db"
    with pycrm.open(f"sqlite:///{db}") as crm, crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        s.orders.add(Order(c.id, dt.datetime(2024, 3, 1, tzinfo=dt.UTC), Money(10, "CNY")))
    return db


# --- pycrm demo --db ---------------------------------------------------------------------------------


def test_demo_refuses_a_store_it_did_not_make(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = digest(store)
    assert main(["demo", "--db", str(store), "--customers", "20"]) == 2
    captured = capsys.readouterr()
    one_error_line(captured.err, str(store), "--force")
    assert captured.out == ""
    assert digest(store) == before
    with pycrm.open(f"sqlite:///{store}") as crm, crm.session() as s:
        assert [c.name for c in s.customers.find()] == ["Acme"]  # the real store is intact


def test_demo_refuses_a_foreign_sqlite_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "app.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("create table notes (body text)")
        con.execute("insert into notes values ('keep me')")
    con.close()
    before = digest(db)
    assert main(["demo", "--db", str(db), "--customers", "20"]) == 2
    one_error_line(capsys.readouterr().err, str(db), "--force")
    assert digest(db) == before


def test_demo_force_replaces_the_store(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--db", str(store), "--customers", "20", "--force"]) == 0
    capsys.readouterr()
    with pycrm.open(f"sqlite:///{store}") as crm, crm.session() as s:
        names = [c.name for c in s.customers.find(limit=100)]
    assert len(names) >= 20 and "Acme" not in names


def test_demo_replaces_its_own_store_and_marks_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pycrm._demo import DEMO_APPLICATION_ID

    db = tmp_path / "demo.db"
    assert main(["demo", "--db", str(db), "--customers", "20", "--seed", "1"]) == 0
    with sqlite3.connect(db) as con:
        assert con.execute("pragma application_id").fetchone()[0] == DEMO_APPLICATION_ID
    con.close()
    assert main(["demo", "--db", str(db), "--customers", "25", "--seed", "2"]) == 0  # no --force needed
    capsys.readouterr()
    with sqlite3.connect(db) as con:
        assert con.execute("select count(*) from customers").fetchone()[0] >= 25
    con.close()


def test_demo_still_refuses_a_file_that_is_not_sqlite_even_with_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "thesis.db"
    doc.write_text("years of work\n", encoding="utf-8")
    for extra in ([], ["--force"]):
        assert main(["demo", "--db", str(doc), "--customers", "20", *extra]) == 2
        one_error_line(capsys.readouterr().err, str(doc))
    assert doc.read_text(encoding="utf-8") == "years of work\n"


# --- XLSX to standard output ---------------------------------------------------------------------------


def test_export_xlsx_to_standard_output_is_refused(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    for argv in (["--format", "xlsx"], ["--format", "xlsx", "-o", "-"]):
        assert main(["export", "customers", "--store", str(store), *argv]) == 2
        captured = capsys.readouterr()
        one_error_line(captured.err, "-o", "XLSX")
        assert captured.out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no file named "-" either


def test_export_xlsx_to_a_file_still_works(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "customers.xlsx"
    assert main(["export", "customers", "--store", str(store), "-o", str(out)]) == 0
    capsys.readouterr()
    assert zipfile.is_zipfile(out)


def test_library_export_refuses_xlsx_to_a_stream_or_dash(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pycrm.open(f"sqlite:///{store}") as crm:
        for target in ("-", io.StringIO()):
            with pytest.raises(ValidationError):
                pio.export_file(crm, target, "customers", format="xlsx")
    assert not (tmp_path / "-").exists()


# --- output names whose extension is not what is written --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("out.pdf", []),
        ("out.pdf", ["--format", "csv"]),
        ("out.docx", []),
        ("out.csv", ["--format", "xlsx"]),
        ("out.xlsx", ["--format", "jsonl"]),
        ("out.jsonl", ["--format", "csv"]),
    ],
)
def test_export_refuses_a_name_that_contradicts_the_format(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, extra: list[str]
) -> None:
    assert main(["export", "customers", "--store", str(store), "-o", str(tmp_path / name), *extra]) == 2
    one_error_line(capsys.readouterr().err, "-o", name)
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize(("name", "extra"), [("out.jsonl", []), ("out.csv", ["--format", "csv"]), ("out", ["--format", "jsonl"])])
def test_export_to_a_matching_name_still_works(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, extra: list[str]
) -> None:
    out = tmp_path / name
    assert main(["export", "customers", "--store", str(store), "-o", str(out), *extra]) == 0
    capsys.readouterr()
    assert "Acme" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["scores.pdf", "scores.xlsx", "scores.jsonl"])
def test_rfm_refuses_a_name_that_is_not_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    src = tmp_path / "orders.csv"
    src.write_text("cust,day,amt\na,2024-01-05,100\n", encoding="utf-8")
    args = ["--customer-column", "cust", "--date-column", "day", "--amount-column", "amt", "--as-of", "2024-03-31"]
    assert main(["rfm", str(src), *args, "-o", str(tmp_path / name)]) == 2
    one_error_line(capsys.readouterr().err, "-o", name)
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize("name", ["pairs.pdf", "pairs.xlsx"])
def test_dedup_refuses_a_name_that_is_not_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    src = tmp_path / "people.csv"
    src.write_text("id,name,email\n1,Li Lei,li@example.com\n2,Li Lei,li@example.com\n", encoding="utf-8")
    assert main(["dedup", str(src), "--id-column", "id", "-o", str(tmp_path / name)]) == 2
    one_error_line(capsys.readouterr().err, "-o", name)
    assert not (tmp_path / name).exists()
