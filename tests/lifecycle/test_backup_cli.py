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
    assert f"{dump} ({method}): 44 entities: 3 users, 1 products, 4 customers" in out
    assert (
        ", 3 orders, 3 surveys, 3 campaigns, 3 campaign_members, 3 campaign_responses, 3 activities, 3 attachments, 3 tasks"
        in out
    )
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


def test_incremental_backup_and_restore_to_a_chosen_point(capsys: pytest.CaptureFixture[str], live: Path, tmp_path: Path) -> None:
    full, inc1, inc2 = tmp_path / "full.jsonl.gz", tmp_path / "inc1.jsonl.gz", tmp_path / "inc2.jsonl"
    assert run(capsys, "backup", str(live), str(full))[0] == 0
    points = []
    for inc, name in ((inc1, "One"), (inc2, "Two")):
        with pycrm.open(f"sqlite:///{live}") as crm, crm.session() as s:
            s.customers.add(pycrm.Customer(name))
        status, out, err = run(capsys, "backup", str(live), str(inc), "--incremental", str(inc.parent / points_base(inc)))
        assert (status, err) == (0, "")
        assert f"{inc} (increment after" in out and ": 1 entities changed" in out
        with pycrm.open(f"sqlite:///{live}") as crm:
            points.append(snapshot(crm))
    for n, increments in enumerate(([inc1], [inc1, inc2])):
        target = tmp_path / f"point{n}.db"
        args = [a for inc in increments for a in ("--increment", str(inc))]
        status, out, err = run(capsys, "restore", str(full), f"sqlite:///{target}", *args)
        assert (status, err) == (0, "")
        assert f"up to {increments[-1]}" in out and "restored and verified" in out
        with pycrm.open(f"sqlite:///{target}") as crm:
            assert snapshot(crm) == points[n]
    status, _, err = run(capsys, "restore", str(full), f"sqlite:///{tmp_path}/bad.db", "--increment", str(inc2))
    assert status == 2 and err.startswith(f"pycrm: error: {inc2}: does not follow {full}") and err.count("\n") == 1
    with pycrm.open(f"sqlite:///{tmp_path}/bad.db") as crm, crm.session() as s:
        assert s.customers.count() == 0


def points_base(inc: Path) -> str:
    """The previous backup of the chain in the test above."""
    return {"inc1.jsonl.gz": "full.jsonl.gz", "inc2.jsonl": "inc1.jsonl.gz"}[inc.name]
