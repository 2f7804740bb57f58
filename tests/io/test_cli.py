"""``pycrm import`` and ``pycrm export``: exit status, one line per problem, the store unchanged on bad input."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from pycrm.cli import main


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM customers").fetchone()[0])


def test_import_export_round_trip(tmp_path: Path, write_csv: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "crm.db"
    src = write_csv("c.csv", "客户编号,名称,手机\nC1,华为,13800138000\nC2,小米,13900139000\n", "gb18030")
    assert main(["import", str(src), "--store", str(db)]) == 0
    assert "2 were created" in capsys.readouterr().out
    assert main(["import", str(src), "--store", str(db), "--dry-run"]) == 0
    assert "2 left unchanged" in capsys.readouterr().out
    out = tmp_path / "out.jsonl"
    assert (
        main(
            [
                "export",
                "customers",
                "--store",
                str(db),
                "-o",
                str(out),
                "--where",
                '{"phones": "139 0013 9000"}',
                "--fields",
                "name,custom.external_id",
            ]
        )
        == 0
    )
    assert [json.loads(x) for x in out.read_text().splitlines()] == [{"name": "小米", "custom.external_id": "C2"}]


def test_bad_rows_exit_2_and_change_nothing(
    tmp_path: Path, write_csv: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "crm.db"
    src = write_csv("c.csv", "name,email\nA,a@x.com\nB,bad\nA2,a@x.com\n")
    assert main(["import", str(src), "--store", str(db)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"pycrm import: {src}, row 3, column 'email': 'bad' is not a valid e-mail address")
    assert err[1].startswith(f"pycrm import: {src}, row 4, column 'email': duplicate key")
    assert _count(db) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PK\x03\x04junk", "ZIP archive"),
        (b"GIF89a\x00\x00", "GIF image"),
        (b"name,email\nA\xe9,x@y.com\n", "row 2, column 'name'"),
    ],
)
def test_bad_files_exit_2_with_one_line(
    tmp_path: Path, write_csv: Callable[..., Path], capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    db = tmp_path / "crm.db"
    assert main(["import", str(write_csv("bad.csv", content)), "--store", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "bad.csv" in err
    assert _count(db) == 0


def test_bad_arguments_exit_2(tmp_path: Path, write_csv: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    src = write_csv("c.csv", "name\nA\n")
    db = tmp_path / "crm.db"
    assert main(["import", str(src), "--store", str(db), "--map", "nocolumn"]) == 2
    assert main(["export", "customers", "--store", str(tmp_path / "missing.db")]) == 2
    assert main(["import", str(src), "--store", str(db)]) == 0
    assert main(["export", "customers", "--store", str(db), "--where", "{bad json"]) == 2
    assert main(["export", "customers", "--store", str(db), "--fields", "name,nope"]) == 2
    err = capsys.readouterr().err
    assert "--where" in err and "nope" in err


def test_import_exclusive(tmp_path: Path, write_csv: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "crm.db"
    src = write_csv("c.csv", "客户编号,名称,手机\nC1,华为,13800138000\nC2,小米,13900139000\n")
    assert main(["import", str(src), "--store", str(db), "--exclusive"]) == 0
    got = capsys.readouterr()
    assert "2 were created" in got.out
    assert "not held" not in got.err
    assert db.read_bytes()[18:20] == b"\x02\x02"  # write-ahead log again
    other = sqlite3.connect(db)  # someone else has the store open: imported as usual, and said so
    try:
        other.execute("SELECT count(*) FROM customers").fetchone()
        assert main(["import", str(src), "--store", str(db), "--exclusive"]) == 0
    finally:
        other.close()
    got = capsys.readouterr()
    assert "2 left unchanged" in got.out
    assert "the store was not held" in got.err
    assert _count(db) == 2
