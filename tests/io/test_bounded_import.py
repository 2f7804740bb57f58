"""Deeply nested JSON in an import (a CSV cell, a JSON Lines record), a backup line, a mapping file or a
``--where``: refused with a ValidationError naming the row and the column, never a RecursionError."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pycrm
from pycrm.cli import main
from pycrm.errors import ValidationError
from pycrm.io import ImportRejected, import_file

DB = settings(
    max_examples=max(6, settings.default.max_examples // 3),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def nested(depth: int, shape: str) -> str:
    """JSON text ``depth`` containers deep."""
    if shape == "list":
        return "[" * depth + '"x"' + "]" * depth
    return '{"a":' * depth + '"x"' + "}" * depth


def csv_cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


@DB
@given(
    depth=st.one_of(st.integers(1, 30), st.integers(150, 250), st.integers(900, 20_000)),
    shape=st.sampled_from(["list", "object"]),
    fmt=st.sampled_from(["csv", "jsonl"]),
    column=st.sampled_from(["custom", "tags", "addresses"]),
)
def test_deep_json_is_refused_naming_the_row_and_column(
    crm: pycrm.CRM, tmp_path: Path, depth: int, shape: str, fmt: str, column: str
) -> None:
    deep = nested(depth, shape)
    if column == "custom":
        deep = '{"k":' + deep + "}"
    if fmt == "csv":
        path = tmp_path / "deep.csv"
        path.write_text(f"name,{column}\nGood,\nDeep,{csv_cell(deep)}\n", encoding="utf-8")
        row = 3
    else:
        path = tmp_path / "deep.jsonl"
        path.write_text('{"name": "Good"}\n' + f'{{"name": "Deep", "{column}": {deep}}}\n', encoding="utf-8")
        row = 2
    try:
        report = import_file(crm, path, entity="customers")
    except ImportRejected as exc:
        (problem,) = exc.report.problems
        assert (problem.row, problem.column) == (row, column)
        # a tags or addresses cell is read as JSON when it starts with "[" (else as text: too long, and named)
        read_as_json = fmt == "jsonl" or column == "custom" or shape == "list"
        if depth > 200 and read_as_json:
            assert "nested deeper than 200 levels" in problem.message
    else:  # shallow enough, and a valid value for the column
        assert report.created == 2
    with crm.session() as s:  # all or nothing, and the store still answers; examples share the store
        assert s.customers.count() in (0, 2)
        for c in s.customers.find():
            s.customers.delete(c.id)


def test_a_single_deep_json_lines_record_names_its_row_and_key(crm: pycrm.CRM, tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text('{"name": "Deep", "custom": ' + nested(50_000, "list") + "}\n", encoding="utf-8")
    with pytest.raises(ValidationError) as exc:
        import_file(crm, path, entity="customers")
    assert "row 1, column 'custom'" in str(exc.value) and "nested deeper" in str(exc.value)


def test_a_restored_backup_line_nested_too_deep_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "crm.db"
    dump = tmp_path / "crm.dump"
    with pycrm.open(f"sqlite:///{db}") as crm:
        with crm.session() as s:
            s.customers.add(pycrm.Customer("Acme"))
        assert main(["backup", f"sqlite:///{db}", str(dump)]) == 0
    lines = dump.read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(1, '{"x": ' + nested(30_000, "list") + "}\n")
    dump.write_text("".join(lines), encoding="utf-8")
    assert main(["restore", str(dump), f"sqlite:///{tmp_path / 'new.db'}"]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "nested deeper than 200 levels" in err and err.count("\n") == 1


def test_a_deep_mapping_file_and_where_are_refused(crm: pycrm.CRM, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "c.csv"
    src.write_text("name\nAcme\n", encoding="utf-8")
    for name, text in (("m.json", '{"mapping": ' + nested(50_000, "list") + "}"), ("m.toml", "a = " + nested(50_000, "list"))):
        (tmp_path / name).write_text(text, encoding="utf-8")
        with pytest.raises(ValidationError, match="nested deeper"):
            import_file(crm, src, entity="customers", mapping=tmp_path / name)
    db = tmp_path / "crm.db"
    pycrm.open(f"sqlite:///{db}").close()
    where = nested(50_000, "object")
    status = main(["export", "customers", "--store", f"sqlite:///{db}", "-o", str(tmp_path / "out.csv"), "--where", where])
    err = capsys.readouterr().err
    assert status == 2 and "--where" in err and err.count("\n") == 1
