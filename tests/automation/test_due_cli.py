"""``pycrm run-due`` (pycrm/automation/_cli.py): the time rules from cron, on a SQLite file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import pycrm
from pycrm.cli import main


def test_run_due_fires_once_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "crm.db"
    with pycrm.open(f"sqlite:///{db}", outbox=True) as crm, crm.session() as s:
        s.customers.add(pycrm.Customer("Quiet Ltd", id="c1", created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)))
        s.tasks.add(pycrm.Task("call", dt.datetime(2025, 12, 31, tzinfo=dt.UTC), id="t1"))
    args = ["run-due", "--store", str(db), "--now", "2026-01-01T00:00:00Z", "--overdue", "--dormant-days", "90"]
    args += ["--anniversary", "customers.created_at"]
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines() == [
        "task_overdue: found 1, fired 1, already 0",
        "dormant_customers:90d: found 1, fired 1, already 0",
        "anniversary:customers.created_at: found 1, fired 1, already 0",
    ]
    assert main(args) == 0
    assert "dormant_customers:90d: found 1, fired 0, already 1" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--dormant-days", "0"], "days: must be a whole number"),
        (["--now", "2026-01-01", "--overdue"], "--now"),
        ([], "rules: name at least one rule"),
        (["--anniversary", "customers"], "--anniversary"),
        (["--anniversary", "customers.name"], "field:"),
    ],
)
def test_bad_input_is_one_line_and_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    db = tmp_path / "crm.db"
    pycrm.open(f"sqlite:///{db}").close()
    assert main(["run-due", "--store", str(db), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert main(["run-due", "--store", str(tmp_path / "none.db"), "--overdue"]) == 2
    assert "no such store" in capsys.readouterr().err
