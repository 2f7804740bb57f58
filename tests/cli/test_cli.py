"""The ``pycrm`` command: ``demo`` and ``rfm`` end to end, exit statuses and one-line errors."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest

from pycrm.cli import main


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


RFM_ARGS = ["--customer-column", "cust", "--date-column", "day", "--amount-column", "amt", "--as-of", "2024-03-31"]


def test_rfm_scores_a_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write(
        tmp_path / "orders.csv", "cust,day,amt\na,2024-01-05,100\na,2024-03-01,50.00\nb,2023-06-01,20\nb,2025-01-01,999\n"
    )
    out = tmp_path / "scores.csv"
    assert main(["rfm", str(src), *RFM_ARGS, "-o", str(out)]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["customer_id"] for r in rows] == ["a", "b"]
    assert rows[0] == {
        "customer_id": "a",
        "recency_days": "30",
        "frequency": "2",
        "monetary": "150.00",
        "r": "3",
        "f": "3",
        "m": "3",
        "segment": "Need Attention",
    }
    assert (rows[1]["frequency"], rows[1]["segment"]) == ("1", "Hibernating")  # the 2025 order is after as-of


@pytest.mark.parametrize(
    ("content", "encoding", "expected"),
    [
        ("", "utf-8", "empty"),
        ("cust,day\na,2024-01-01\n", "utf-8", "'amt'"),
        ("cust,day,amt\na,2024-13-01,5\n", "utf-8", "row 2, column 'day'"),
        ("cust,day,amt\na,2024-01-01,5\nb,2024-01-02,abc\n", "utf-8", "row 3, column 'amt'"),
        ("cust,day,amt\na,2024-01-01,-5\n", "utf-8", "row 2, column 'amt'"),
        ("cust,day,amt\na,2024-01-01\n", "utf-8", "row 2"),
        ("cust,day,amt\n张三,2024-01-01,5\n", "gb18030", "UTF-8"),
    ],
)
def test_rfm_bad_input_is_one_line_naming_the_place_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, encoding: str, expected: str
) -> None:
    src = write(tmp_path / "orders.csv", content, encoding)
    assert main(["rfm", str(src), *RFM_ARGS]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pycrm: error: ") and err.count("\n") == 1
    assert expected in err and "Traceback" not in err


def test_rfm_missing_file_and_bad_as_of(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rfm", str(tmp_path / "nope.csv"), *RFM_ARGS]) == 2
    assert "nope.csv" in capsys.readouterr().err
    src = write(tmp_path / "o.csv", "cust,day,amt\na,2024-01-01,5\n")
    assert main(["rfm", str(src), *RFM_ARGS[:-1], "31/03/2024"]) == 2
    assert "--as-of" in capsys.readouterr().err


def test_demo_builds_a_sqlite_store_and_prints_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "demo.db"
    assert main(["demo", "--db", str(db), "--customers", "40", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    for section in (
        "Records",
        "Pipeline 'default' by stage",
        "Weighted forecast of open deals",
        "Tickets",
        "Top 5 customers",
        "RFM segments",
        "Duplicate customers",
        "Automation (rule 'proposal follow-up', run by crm.dispatch())",
        "Campaigns (conversions: orders or won deals within 30 days after the last touch)",
    ):
        assert section in out
    assert "moved to proposal -> task 'Follow up: " in out and "audit trail names 'automation'" in out
    with sqlite3.connect(db) as con:
        assert con.execute("select count(*) from customers").fetchone()[0] >= 40
        fired = con.execute("select count(*) from pycrm_outbox where event = 'RuleFired' and state = 'done'").fetchone()
        assert fired[0] == 1
    assert main(["demo", "--db", str(db), "--customers", "40", "--seed", "3"]) == 0  # runs again over its own file
    assert capsys.readouterr().out.split("\n", 2)[2] == out.split("\n", 2)[2]  # same seed, same report
