"""``pycrm backup``, ``pycrm restore`` and ``pycrm verify-backup``: exit statuses and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

import pycrm
import pycrm.cli
from pycrm.cli import main
from tests.lifecycle._data import fill, snapshot


@pytest.fixture(autouse=True)
def _commands(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("backup", "restore", "verify-backup"):
        monkeypatch.setitem(pycrm.cli.COMMANDS, name, "pycrm.io._backup_cli")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def live(tmp_path: Path) -> Path:
    db = tmp_path / "live.db"
    with pycrm.open(f"sqlite:///{db}", default_region="CN") as crm:
        fill(crm)
    return db


@pytest.mark.parametrize(("name", "method"), [("crm.jsonl.gz", "logical"), ("crm-copy.db", "sqlite")])
def test_backup_restore_verify(capsys: pytest.CaptureFixture[str], live: Path, tmp_path: Path, name: str, method: str) -> None:
    dump = tmp_path / name
    status, out, err = run(capsys, "backup", str(live), str(dump), "--method", method)
    assert (status, err) == (0, "")
    assert f"{dump} ({method}): 29 entities: 3 users, 1 products, 4 customers" in out
    assert ", 3 orders, 3 surveys, 3 tasks" in out
    target = tmp_path / "target.db"
    status, out, err = run(capsys, "restore", str(dump), f"sqlite:///{target}")
    assert (status, err) == (0, "")
    assert "restored and verified" in out
    lines = [line.split() for line in out.splitlines()]
    assert lines[2:4] == [["products", "1", "1", "ok"], ["customers", "4", "4", "ok"]]
    with pycrm.open(f"sqlite:///{live}") as a, pycrm.open(f"sqlite:///{target}") as b:
        assert snapshot(a) == snapshot(b)
    status, out, err = run(capsys, "verify-backup", str(dump), str(target))
    assert (status, err) == (0, "")

    with pycrm.open(f"sqlite:///{target}") as crm, crm.session() as s:
        s.customers.add(pycrm.Customer("New since the backup"))
    status, out, err = run(capsys, "verify-backup", str(dump), str(target))
    assert status == 1
    assert ["customers", "4", "5", "count", "differs"] in [line.split() for line in out.splitlines()]
    # the new customer is also a new change-feed event and a new audit entry
    assert err == f"pycrm verify-backup: {dump} and sqlite:///{target} differ in customers, journal/changes, journal/audit\n"


def test_restore_refuses_a_non_empty_store(capsys: pytest.CaptureFixture[str], live: Path, tmp_path: Path) -> None:
    dump = tmp_path / "crm.jsonl"
    assert run(capsys, "backup", str(live), str(dump))[0] == 0
    status, _, err = run(capsys, "restore", str(dump), str(live))
    assert status == 2
    assert err.startswith("pycrm: error: store: sqlite:///") and "is not empty" in err
    assert err.count("\n") == 1


def test_bad_input_is_one_line_with_status_2(capsys: pytest.CaptureFixture[str], live: Path, tmp_path: Path) -> None:
    picture = tmp_path / "photo.jsonl"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    status, _, err = run(capsys, "restore", str(picture), f"sqlite:///{tmp_path}/t.db")
    assert status == 2
    assert err == f"pycrm: error: {picture}, line 1: not a pycrm dump (it does not start with a JSON header)\n"

    status, _, err = run(capsys, "backup", str(tmp_path / "missing.db"), str(tmp_path / "x.jsonl"))
    assert status == 2 and "no such SQLite file" in err
    status, _, err = run(capsys, "backup", "memory://", str(tmp_path / "x.db"), "--method", "sqlite")
    assert status == 2 and "needs a SQLite store" in err
    status, _, err = run(capsys, "backup", str(live), str(tmp_path / "x.jsonl"), "--method", "zip")
    assert status == 2 and "invalid choice" in err
    status, _, err = run(capsys, "backup", str(live), str(tmp_path / "no" / "dir" / "x.jsonl"))
    assert status == 2 and "no/dir/x.jsonl: No such file or directory" in err
