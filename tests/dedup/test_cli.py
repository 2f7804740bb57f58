"""``pycrm dedup FILE.csv``: CSV pairs out, exit 0; bad input, exit 2 with one line naming file, row and column."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import pytest

from pycrm.dedup._cli import main, register

GOOD = """id,Company Name,Phone,Email,Address,City
1,上海携程商务有限公司,+86 21 3406 4888,,上海市长宁区福泉路99号,上海
2,携程商务（上海）有限公司,021-34064888,,长宁区福泉路99号,上海
3,"Acme Co., Ltd.",,sales@acme.com,12 Main St,Springfield
4,ACME LIMITED,,Sales@ACME.com ,12 Main Street,Springfield
5,Globex Corporation,+1 212 555 0100,info@globex.com,1 Park Ave,New York
6,Initech Inc,+1 212 555 0199,,5 Elm Rd,Austin
"""


def write(tmp_path: Path, text: str | bytes, name: str = "in.csv") -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_pairs_come_out_as_csv_with_their_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, write(tmp_path, GOOD), "--id-column", "id")
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["id_a", "id_b", "score", "cluster"]
    assert [(r[0], r[1], r[3]) for r in rows[1:]] == [("1", "2", "1"), ("3", "4", "2")]
    assert all(0.5 <= float(r[2]) <= 1 for r in rows[1:])


def test_output_file_and_explicit_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_path = tmp_path / "pairs.csv"
    code, out, err = run_cli(
        capsys,
        write(tmp_path, GOOD),
        "--id-column",
        "id",
        "--field",
        "Company Name:name",
        "--field",
        "Phone:phone",
        "-o",
        str(out_path),
    )
    assert code == 0 and out == ""
    assert "2 clusters" in err
    lines = out_path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id_a,id_b,score,cluster" and len(lines) == 3


def test_blank_fields_are_fine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "id,name,email\n1,,\n2,,\n3,Acme Ltd,a@acme.com\n4,ACME,a@acme.com\n5,Globex,g@globex.com\n"
    code, out, _ = run_cli(capsys, write(tmp_path, text), "--id-column", "id")
    assert code == 0
    assert out.splitlines()[1].startswith("3,4,")


def test_a_header_only_file_has_no_pairs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, write(tmp_path, "id,name\n"), "--id-column", "id")
    assert (code, out) == (0, "id_a,id_b,score,cluster\n")


BAD = [
    # (file content, extra arguments, words the one-line message must contain)
    ("", [], ["row 1", "empty"]),
    ("\n\n", [], ["row 1", "empty"]),
    ("name,phone\nAcme,1\n", [], ["row 1", "'id'", "--id-column"]),
    ("id,name,id\n1,a,2\n", [], ["row 1", "column id", "2 times"]),
    ("id,name\n1,a\n1,b\n", [], ["row 3", "column id", "already used on row 2"]),
    ("id,name\n1,a\n ,b\n", [], ["row 3", "column id", "blank"]),
    (b"id,name\n1,Acme\n2,caf\xe9\n", [], ["row 3", "column name", "UTF-8"]),
    ("id,name\n1,a\n", ["--field", "name:telephone"], ["row 1", "column name", "unknown comparator kind 'telephone'"]),
    ("id,name\n1,a\n", ["--field", "nmae:name"], ["row 1", "'nmae'"]),
    ("id,name\n1,a\n", ["--field", "name"], ["--field", "COL:KIND"]),
    ("id,name\n1,a\n", ["--threshold", "1.5"], ["--threshold", "between 0 and 1"]),
    ("id,name\n1,a\n", ["--threshold", "high"], ["--threshold"]),
    ("id,colour\n1,red\n", [], ["row 1", "--field"]),
    ("id,name\n1,a\n2,b,extra\n", [], ["row 3", "3 values", "2 columns"]),
]


@pytest.mark.parametrize(("content", "extra", "words"), BAD)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | bytes, extra: list[str], words: list[str]
) -> None:
    path = write(tmp_path, content)
    code, out, err = run_cli(capsys, path, "--id-column", "id", *extra)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("pycrm dedup: "), err
    if not any(w.startswith("--") for w in words):
        assert path in err
    for word in words:
        assert word in err, (word, err)
    assert "Traceback" not in err


def test_a_missing_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, str(tmp_path / "nope.csv"), "--id-column", "id")
    assert code == 2 and "nope.csv" in err and err.count("\n") == 1


def test_register_adds_the_dedup_subcommand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="pycrm")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["dedup", write(tmp_path, GOOD), "--id-column", "id"])
    assert args.run(args) == 0
    assert capsys.readouterr().out.startswith("id_a,id_b,score,cluster\n")
