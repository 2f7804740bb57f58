"""Incremental backups: a full backup, then increments from the change feed, chained by digest; a restore
to any point of the chain equals the store at that time; a broken chain or a damaged increment is refused
naming the file, with nothing written."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

import pycrm
from pycrm import Customer, ValidationError
from pycrm.io import archive, older_than
from pycrm.io._backup import backup, restore, verify
from tests.lifecycle._data import fill, is_empty, snapshot


def state(crm: pycrm.CRM) -> dict[str, Any]:
    """Entities, record streams, change feed and audit trail."""
    out = snapshot(crm)
    with crm.session() as s:
        out["changes"] = [(e.seq, e.entity, e.id, e.op, e.version) for e in s.changes.since(0, 100_000)]
        out["audit"] = [(e.seq, e.hash) for e in s.audit.entries()]
    return out


def _first_customer(crm: pycrm.CRM, name: str) -> str:
    with crm.session() as s:
        return next(str(c.id) for c in s.customers.iter() if c.name == name)


def _step_one(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        c = s.customers.get(_first_customer(crm, "客户 0"))
        c.status, c.tags = "active", frozenset({"vip"})
        s.customers.update(c)
        s.customers.add(Customer("New One", id="new-1", emails=["new@example.com"]))
        task = next(iter(s.tasks.iter()))
        s.tasks.delete(str(task.id))


def _step_two(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        a = s.customers.add(Customer("Twin A", emails=["twin@example.com"]))
        b = s.customers.add(Customer("Twin B", emails=["twin@example.com"]))
    with crm.session() as s:  # a merge: a record stream changes, a customer goes
        s.customers.merge(str(a.id), [str(b.id)])
        c = s.customers.get("new-1")
        c.category = "retail"
        s.customers.update(c)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=10)
    assert archive(crm, [older_than("tasks", 1)], as_of=later).counts  # out of the tables, into a record stream


def _chain(crm: pycrm.CRM, folder: Path) -> tuple[list[Path], list[dict[str, Any]]]:
    fill(crm)
    files = [folder / "full.jsonl.gz"]
    backup(crm, files[0])
    states = [state(crm)]
    for i, step in enumerate((_step_one, _step_two), start=1):
        step(crm)
        files.append(folder / f"inc{i}.jsonl{'.gz' if i == 2 else ''}")
        made = backup(crm, files[-1], incremental=True, base=files[-2])
        assert made.method == "incremental"
        states.append(state(crm))
    return files, states


def test_restore_at_each_point_of_the_chain_equals_the_store_then(crm: pycrm.CRM, tmp_path: Path) -> None:
    files, states = _chain(crm, tmp_path)
    assert states[0] != states[1] != states[2]
    with gzip.open(files[2], "rt") as f:
        ops = {(o.get("op"), o.get("section")) for o in map(json.loads, f) if "op" in o}
    # the merge and the archive: record streams copied whole, entities deleted (the twin, the archived tasks)
    assert {("replace", "records"), ("delete", "entities"), ("put", "entities"), ("put", "journal")} <= ops
    assert verify(crm, files[2]).ok and not verify(crm, files[1]).ok  # an increment verifies as its point
    for n in range(3):
        for url in ("memory://", f"sqlite:///{tmp_path}/point{n}.db"):
            with pycrm.open(url) as target:
                result = restore(target, files[0], increments=files[1 : n + 1])
                assert result.ok and result.file == str(files[n])
                assert state(target) == states[n], (n, url)


def test_a_chain_restores_into_every_adapter(crm: pycrm.CRM, tmp_path: Path) -> None:
    with pycrm.open("memory://") as source:
        files, states = _chain(source, tmp_path)
    assert restore(crm, files[0], increments=files[1:]).ok
    assert state(crm) == states[2]
    with crm.session() as s:  # the restored store goes on working: an increment of it follows the chain
        s.customers.add(Customer("After", id="after-1"))
    backup(crm, tmp_path / "inc3.jsonl", base=files[2])
    with pycrm.open("memory://") as again:
        assert restore(again, files[0], increments=[*files[1:], tmp_path / "inc3.jsonl"]).ok
        assert state(again) == state(crm)


def test_an_increment_that_does_not_follow_its_base_is_refused_naming_it(tmp_path: Path) -> None:
    with pycrm.open("memory://") as source:
        files, _ = _chain(source, tmp_path)
        other = tmp_path / "other-full.jsonl"
        backup(source, other)
    cases = [
        (files[0], [files[2]], files[2]),  # an increment skipped
        (files[0], [files[2], files[1]], files[2]),  # out of order
        (other, [files[1]], files[1]),  # another full backup as the base
    ]
    for full, increments, named in cases:
        with pycrm.open(f"sqlite:///{tmp_path}/t.db") as target:
            with pytest.raises(ValidationError) as info:
                restore(target, full, increments=increments)
            assert info.value.errors[0].field == str(named) and "does not follow" in str(info.value)
            assert is_empty(target)  # nothing half-written
    with pycrm.open("memory://") as target, pytest.raises(ValidationError, match="an increment: restore its full"):
        restore(target, files[1])
    with pycrm.open("memory://") as target, pytest.raises(ValidationError, match="not a pycrm increment"):
        restore(target, files[0], increments=[files[0]])


def test_a_damaged_increment_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    with pycrm.open("memory://") as source:
        files, _ = _chain(source, tmp_path)
    lines = files[1].read_text().splitlines(keepends=True)
    altered = []
    for text in lines:
        obj = json.loads(text)
        if obj.get("op") == "put" and obj.get("group") == "customers":
            obj["data"]["name"] = "Forged"
            text = json.dumps(obj) + "\n"
        altered.append(text)
    bad = {
        "truncated": "".join(lines[:-1]),
        "altered": "".join(altered),
        "cut": "".join(lines)[:-20],
    }
    for name, text in bad.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text(text)
        (tmp_path / f"{name}-copy.jsonl").write_text(text)
        with pycrm.open("memory://") as target:
            with pytest.raises(ValidationError) as info:
                restore(target, files[0], increments=[path])
            assert str(path) in info.value.errors[0].field, name
            assert is_empty(target)


def test_an_increment_needs_a_base_this_store_continues(tmp_path: Path) -> None:
    with pycrm.open("memory://") as one, pycrm.open("memory://") as two:
        fill(one)
        fill(two)
        backup(one, tmp_path / "one.jsonl")
        with pytest.raises(ValidationError, match="does not continue from"):
            backup(two, tmp_path / "two-inc.jsonl", base=tmp_path / "one.jsonl")
        assert not (tmp_path / "two-inc.jsonl").exists()
        with pytest.raises(ValidationError, match="needs base"):
            backup(one, tmp_path / "x.jsonl", incremental=True)
        with pytest.raises(ValidationError, match="logical"):
            backup(one, tmp_path / "x.db", base=tmp_path / "one.jsonl", method="sqlite")
    with pycrm.open(f"sqlite:///{tmp_path}/live.db") as live:
        fill(live)
        backup(live, tmp_path / "live-copy.db", method="sqlite")
        with pytest.raises(ValidationError, match="SQLite file copy"):
            backup(live, tmp_path / "x.jsonl", base=tmp_path / "live-copy.db")


def test_an_erasure_after_the_base_needs_a_full_backup(tmp_path: Path) -> None:
    with pycrm.open("memory://") as crm:
        fill(crm)
        backup(crm, tmp_path / "full.jsonl")
        with crm.session() as s:
            s.personal.erase(_first_customer(crm, "客户 1"))
        with pytest.raises(ValidationError, match="audit trail was rewritten"):
            backup(crm, tmp_path / "inc.jsonl", base=tmp_path / "full.jsonl")


def test_an_empty_increment_restores_the_same_point(tmp_path: Path) -> None:
    with pycrm.open("memory://") as crm:
        fill(crm)
        backup(crm, tmp_path / "full.jsonl")
        made = backup(crm, tmp_path / "same.jsonl.gz", base=tmp_path / "full.jsonl")
        assert made.counts == {}
        with gzip.open(tmp_path / "same.jsonl.gz", "rt") as f:
            head = json.loads(f.readline())
        assert head["base"]["changes_seq"] == head["changes_seq"]
        with pycrm.open("memory://") as target:
            assert restore(target, tmp_path / "full.jsonl", increments=[tmp_path / "same.jsonl.gz"]).ok
            assert state(target) == state(crm)
