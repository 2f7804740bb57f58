"""An error quotes at most a short prefix of a bad value: a 10 MB value in an import row, a field or an
argument gives a message of a few hundred characters (and the command line one line of them), naming the
field; the value itself is never echoed whole."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pycrm
from pycrm import Customer, CustomField, Money, Opportunity, Permission, Stage, Task, Ticket, TicketStatus, User
from pycrm.cli import main
from pycrm.io import ImportRejected, export_file, import_file, parse_rule

BIG = "x" * 10_000_000  # 10 MB
#: What a message about one bad value may take, whatever the value's size.
LIMIT = 1_000

FIELDS = ["name", "email", "phone", "country", "status", "category", "tags", "created_at", "custom.tier", "owner_id"]


@pytest.mark.parametrize("field", FIELDS)
def test_a_10_mb_value_in_an_import_row_gives_a_short_error(tmp_path: Path, field: str) -> None:
    row = {"name": "Acme", field: BIG}
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps({k.replace("custom.", "custom_"): v for k, v in row.items()}) + "\n", encoding="utf-8")
    mapping = {"custom_tier": "custom.tier"} if field == "custom.tier" else None
    with pycrm.open("memory://") as crm:
        with pytest.raises(ImportRejected) as caught:
            import_file(crm, path, "customers", mapping=mapping)
        with crm.session() as s:
            assert s.customers.count() == 0
    message = str(caught.value)
    assert len(message) < LIMIT, message[:2000]
    assert "big.jsonl" in message
    assert all(len(str(e)) < LIMIT for e in caught.value.errors)


def test_the_command_line_prints_short_lines_for_a_10_mb_value(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps({"name": "Acme", "email": BIG}) + "\n", encoding="utf-8")
    assert main(["import", str(path), "--store", str(tmp_path / "crm.db"), "--no-progress"]) == 2
    lines = capsys.readouterr().err.splitlines()  # the problem (with a prefix of its value), then the count
    assert len(lines) == 2 and all(len(line) < LIMIT for line in lines), [line[:300] for line in lines]
    assert "column 'email'" in lines[0] and "1 problems" in lines[1]


BAD: list[tuple[str, Callable[[str], Any]]] = [
    ("status", lambda v: Customer("Acme", status=v)),
    ("kind", lambda v: Customer("Acme", kind=v)),
    ("country", lambda v: Customer("Acme", country=v)),
    ("emails[0]", lambda v: Customer("Acme", emails=[v])),
    ("phones[0]", lambda v: Customer("Acme", phones=[v])),
    ("category", lambda v: Customer("Acme", category=v + "//")),
    ("currency", lambda v: Money(1, v)),
    ("amount", lambda v: Money(v)),
    ("stage", lambda v: Opportunity("c1", "Deal", Money(1), stage=v)),
    ("priority", lambda v: Ticket("c1", "Help", priority=v)),
    ("status", lambda v: TicketStatus(v)),
    ("due_at", lambda v: Task("Call", v)),
    ("entity", lambda v: Permission(v, "read")),
    ("roles[0]", lambda v: User("Uma", "uma@example.com", roles=[v])),
    ("type", lambda v: CustomField("tier", v)),
    ("probability", lambda v: Stage("s", v)),
    ("url", lambda v: pycrm.open(v)),
    ("default_region", lambda v: pycrm.open("memory://", default_region=v)),
    ("rule", lambda v: parse_rule(v)),
    ("entity", lambda v: export_file(pycrm.open("memory://"), "-", v)),
    ("fields[0]", lambda v: export_fields_of(v)),
]


def export_fields_of(value: str) -> Any:
    from pycrm.io import export_fields

    return export_fields("customers", [value])


@pytest.mark.parametrize(("field", "make"), BAD, ids=[f"{i}-{f}" for i, (f, _) in enumerate(BAD)])
def test_a_10_mb_argument_gives_a_short_error_naming_the_field(field: str, make: Callable[[str], Any]) -> None:
    with pytest.raises(pycrm.ValidationError) as caught:
        make(BIG)
    message = str(caught.value)
    assert len(message) < LIMIT, message[:2000]
    assert field in caught.value.fields or any(e.field.startswith(field) for e in caught.value.errors), caught.value.fields


def test_a_store_lookup_by_a_10_mb_id_is_short() -> None:
    with pycrm.open("memory://") as crm, crm.session() as s:
        for call in (lambda: s.customers.get(BIG), lambda: s.customers.find({"name": {"in": [BIG[:300], BIG]}})):
            with pytest.raises(pycrm.CRMError) as caught:
                call()
            assert len(str(caught.value)) < LIMIT
