"""``pycrm quality``: the report of a store as text or JSON, and bad input as one line with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pycrm
from pycrm import Customer
from pycrm.cli import main
from pycrm.domain import PhoneNumber


def _store(tmp_path: Path) -> Path:
    db = tmp_path / "q.db"
    with pycrm.open(f"sqlite:///{db}") as crm, crm.session() as s:
        s.customers.add(Customer("A", emails=["a@example.com"], phones=["+8613800138000"], category="vip", id="c1"))
        s.customers.add(Customer("B", phones=[PhoneNumber("+10000000000")], id="c2"))
    return db


def test_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = _store(tmp_path)
    assert main(["quality", "--store", str(db)]) == 0
    out = capsys.readouterr().out
    assert "customers: 2 records" in out and "invalid phones         1 records  e.g. c2" in out
    assert main(["quality", "--store", str(db), "--format", "json", "--stale-days", "30", "--duplicates"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total"] == 2 and data["stale_days"] == 30 and data["duplicates"] == 0.0
    assert data["completeness"]["emails"] == {"filled": 1, "share": 0.5}
    assert data["invalid"]["phones"] == {"records": 1, "sample": ["c2"]}
    assert main(["quality", "--store", str(db), "--entity", "contacts", "--as-of", "2030-01-01"]) == 0
    assert "contacts: 0 records" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--entity", "bogus"], "bogus"),
        (["--stale-days", "0"], "--stale-days"),
        (["--stale-days", "many"], "--stale-days"),
        (["--as-of", "2026-13-01"], "--as-of"),
    ],
)
def test_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], named: str) -> None:
    db = _store(tmp_path)
    assert main(["quality", "--store", str(db), *args]) == 2
    err = capsys.readouterr().err
    assert named in err and len(err.strip().splitlines()) == 1


def test_missing_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["quality", "--store", str(tmp_path / "none.db")]) == 2
    assert "no such SQLite file" in capsys.readouterr().err
