"""Backup, restore and verify: lossless across adapters, consistent under writes, refusing bad input."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import pycrm
from pycrm import Customer, Money, Order, ValidationError
from pycrm.io import _backup
from pycrm.io._backup import SECTIONS, Section, backup, register_section, restore, verify
from tests.conftest import reset_server_database, store_url_for
from tests.lifecycle._data import fill, is_empty, snapshot


def _cleanup(adapter: str, url: str) -> None:
    if adapter in ("postgres", "mysql"):
        reset_server_database(adapter, url)


def test_round_trip_memory_sqlite_postgres_mariadb_memory(tmp_path: Path) -> None:
    """Each hop: back up, restore into the next adapter; every record arrives with identical codec data."""
    hops = ["memory", "sqlite", "postgres", "mysql", "memory"]
    urls = [store_url_for(a, tmp_path) for a in hops]  # skips when a server's variable is not set
    source = pycrm.open(urls[0], default_region="CN")
    fill(source)
    expected = snapshot(source)
    assert expected["records"]  # the merge left records streams, which travel too
    opened = [source]
    try:
        for i, (adapter, url) in enumerate(zip(hops[1:], urls[1:]), 1):
            dump = tmp_path / f"hop{i}.jsonl{'.gz' if i % 2 else ''}"
            made = backup(opened[-1], dump)
            assert made.counts["customers"] == 4 and made.counts["orders"] == 3
            target = pycrm.open(url, default_region="CN")
            opened.append(target)
            result = restore(target, dump)
            assert result.ok, str(result)
            assert snapshot(target) == expected, f"hop {i} into {adapter} changed the data"
            assert verify(target, dump).ok
    finally:
        for crm in opened:
            crm.close()
        for adapter, url in zip(hops, urls):
            _cleanup(adapter, url)


def test_verify_reports_per_kind_differences(crm: pycrm.CRM, tmp_path: Path) -> None:
    fill(crm)
    dump = tmp_path / "crm.jsonl"
    backup(crm, dump)
    assert verify(crm, dump).ok
    with crm.session() as s:
        c = s.customers.find(limit=1)[0]
        c.name = "Renamed"
        s.customers.update(c)
        s.orders.add(Order(str(c.id), c.created_at, Money("1.00", "EUR")))
    result = verify(crm, dump)
    assert not result.ok
    # the two changes are also two new change-feed events and two new audit entries
    assert {g.name for g in result.mismatches} == {"customers", "orders", "journal/changes", "journal/audit"}
    assert result.groups["journal/changes"].store_count == result.groups["journal/changes"].dump_count + 2
    assert result.groups["customers"].dump_count == result.groups["customers"].store_count == 4  # same count, other checksum
    assert result.groups["orders"].store_count == result.groups["orders"].dump_count + 1
    assert result.groups["tickets"].ok


def test_restore_into_a_non_empty_store_is_refused(crm: pycrm.CRM, tmp_path: Path) -> None:
    source = pycrm.open("memory://", default_region="CN")
    fill(source)
    dump = tmp_path / "crm.jsonl"
    backup(source, dump)
    with crm.session() as s:
        s.customers.add(Customer("Already here"))
    before = snapshot(crm)
    with pytest.raises(ValidationError, match="not empty") as info:
        restore(crm, dump)
    assert info.value.errors[0].code == "not_empty"
    assert snapshot(crm) == before


def test_backup_is_consistent_while_another_session_writes(
    crm: pycrm.CRM, adapter: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer commits between the backup's first and last reads; the dump shows the store before it."""
    fill(crm)
    before = snapshot(crm)
    last = before["customers"][-1]
    first_order = before["orders"][0]
    started = threading.Event()
    at_commit = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            with crm.session() as s:
                c = s.customers.get(last["id"])
                c.name = "changed during the backup"
                s.customers.update(c)
                s.orders.add(Order(last["id"], c.created_at, Money("5.00", "EUR")))
                s.orders.delete(first_order["id"])
                at_commit.set()
        except BaseException as exc:  # reported by the test below
            errors.append(exc)
            at_commit.set()

    writer = threading.Thread(target=write)
    original = SECTIONS["entities"]

    def read(tx: Any) -> Iterator[tuple[str, str, Any]]:
        for item in original.read(tx):
            yield item
            if item[0] == "customers" and not started.is_set():
                started.set()  # the snapshot is fixed (users and one customer read); now someone writes
                writer.start()
                if adapter == "memory":
                    at_commit.wait(30)  # its commit waits for the backup's lock
                else:
                    writer.join(30)  # committed for real on another connection

    monkeypatch.setitem(SECTIONS, "entities", Section("entities", read, original.write, original.groups, original.empty))
    dump = tmp_path / "live.jsonl"
    backup(crm, dump)
    writer.join(30)
    assert not errors, errors
    assert started.is_set()
    after = snapshot(crm)
    assert after["customers"][-1]["name"] == "changed during the backup"  # the writer did commit
    monkeypatch.setitem(SECTIONS, "entities", original)
    copy = pycrm.open("memory://", default_region="CN")
    restore(copy, dump)
    assert snapshot(copy) == before


def _dump_lines(tmp_path: Path) -> list[str]:
    source = pycrm.open("memory://", default_region="CN")
    fill(source)
    dump = tmp_path / "good.jsonl"
    backup(source, dump)
    return dump.read_text(encoding="utf-8").splitlines(keepends=True)


def _line_of(lines: list[str], group: str) -> int:
    return next(i for i, line in enumerate(lines) if json.loads(line).get("group") == group)


def _edit(lines: list[str], index: int, change: Callable[[dict[str, Any]], None]) -> list[str]:
    obj = json.loads(lines[index])
    change(obj)
    return [*lines[:index], json.dumps(obj, ensure_ascii=False) + "\n", *lines[index + 1 :]]


def _no_name(o: dict[str, Any]) -> None:
    o["data"]["name"] = "  "


def _orphan(o: dict[str, Any]) -> None:
    o["data"]["customer_id"] = "no-such-customer"


def _renamed(o: dict[str, Any]) -> None:
    o["data"]["name"] = "tampered"


def _no_seq(o: dict[str, Any]) -> None:
    o["key"], o["data"]["seq"] = "None", None


def _newer(o: dict[str, Any]) -> None:
    o["format_version"] = 99


CORRUPTIONS: dict[str, tuple[Callable[[list[str]], bytes], str]] = {
    "truncated at a line end": (lambda ls: "".join(ls[:-3]).encode(), r"line \d+: the dump ends without its closing line"),
    "cut inside a line": (lambda ls: "".join(ls)[:-40].encode(), r"line \d+: the line is cut short"),
    "not JSON": (lambda ls: "".join([*ls[:4], "{oops\n", *ls[5:]]).encode(), r"line 5: not JSON"),
    "an altered value": (
        lambda ls: "".join(_edit(ls, _line_of(ls, "customers"), _renamed)).encode(),
        r"line \d+, field 'groups': the records of 'customers' do not match",
    ),
    "a customer without a name": (
        lambda ls: "".join(_edit(ls, _line_of(ls, "customers"), _no_name)).encode(),
        r"line \d+, field 'data.name'",
    ),
    "an order without its customer": (
        lambda ls: "".join(_edit(ls, _line_of(ls, "orders"), _orphan)).encode(),
        r"line \d+, field 'data.customer_id': customer_id 'no-such-customer'",
    ),
    "an audit entry without its sequence number": (
        lambda ls: "".join(_edit(ls, _line_of(ls, "audit"), _no_seq)).encode(),
        r"line \d+, field 'data': not a audit row with seq None",
    ),
    "a newer format": (lambda ls: "".join(_edit(ls, 0, _newer)).encode(), r"line 1, field 'format_version'.*upgrade pycrm"),
    "a ZIP file": (lambda ls: b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)) * 4, r"line 1: not a pycrm dump"),
    "a PNG image": (lambda ls: b"\x89PNG\r\n\x1a\n" + bytes(200), r"line 1: not a pycrm dump"),
    "an empty file": (lambda ls: b"", r"empty file: not a pycrm dump"),
    "a truncated gzip file": (
        lambda ls: gzip.compress("".join(ls).encode())[:-200],
        r"line \d+: the compressed file is damaged or truncated",
    ),
    "another JSON Lines file": (lambda ls: b'{"name": "Acme"}\n', r"line 1: not a pycrm dump"),
}


@pytest.mark.parametrize("case", CORRUPTIONS)
def test_bad_dumps_are_refused_naming_file_and_line_and_the_store_is_unchanged(case: str, tmp_path: Path) -> None:
    make, message = CORRUPTIONS[case]
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(make(_dump_lines(tmp_path)))
    with pycrm.open(f"sqlite:///{tmp_path}/target.db") as target:
        with pytest.raises(ValidationError, match=message) as info:
            restore(target, bad)
        assert str(bad) in str(info.value)
        assert is_empty(target)
        with pytest.raises(ValidationError) as info:  # verify reads every line too (its checks stop at the first problem)
            verify(target, bad)
        assert str(info.value).startswith(f"{bad}, line ") or str(info.value).startswith(f"{bad}: ")


def test_a_truncated_dump_leaves_every_adapter_unchanged(crm: pycrm.CRM, tmp_path: Path) -> None:
    """The failure comes after every record was inserted: the whole restore rolls back."""
    lines = _dump_lines(tmp_path)
    bad = tmp_path / "truncated.jsonl"
    bad.write_text("".join(lines[:-1]), encoding="utf-8")  # everything but the closing line
    with pytest.raises(ValidationError, match="truncated"):
        restore(crm, bad)
    assert is_empty(crm)
    good = tmp_path / "good.jsonl"
    assert restore(crm, good).ok  # and the store is still usable


def test_missing_file_and_bad_method(tmp_path: Path) -> None:
    crm = pycrm.open("memory://")
    with pytest.raises(ValidationError, match="no such file"):
        restore(crm, tmp_path / "nope.jsonl")
    with pytest.raises(ValidationError, match="SQLite store"):
        backup(crm, tmp_path / "x.db", method="sqlite")
    with pytest.raises(ValidationError, match="'zip' is not"):
        backup(crm, tmp_path / "x.db", method="zip")
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


@pytest.mark.parametrize("name", ["copy.db", "copy.db.gz"])
def test_sqlite_online_backup_restores_anywhere(tmp_path: Path, name: str) -> None:
    with pycrm.open(f"sqlite:///{tmp_path}/live.db", default_region="CN") as live:
        fill(live)
        expected = snapshot(live)
        made = backup(live, tmp_path / name, method="sqlite")
        assert made.method == "sqlite" and made.counts["customers"] == 4
        assert verify(live, tmp_path / name).ok
    raw = (tmp_path / name).read_bytes()
    assert (gzip.decompress(raw) if name.endswith(".gz") else raw).startswith(b"SQLite format 3\x00")
    target = pycrm.open("memory://", default_region="CN")
    assert restore(target, tmp_path / name).ok
    assert snapshot(target) == expected
    assert (tmp_path / name).read_bytes() == raw  # the backup file itself is never modified


def test_a_registered_section_is_dumped_restored_and_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """How a later table (an audit trail, a change feed) joins the dump: a read and a write function."""
    external: dict[str, dict[str, Any]] = {"1": {"event": "created"}, "2": {"event": "updated"}}
    restored: dict[str, Any] = {}

    def read(tx: Any) -> Iterator[tuple[str, str, Any]]:
        for key in sorted(external):
            yield "events", key, external[key]

    def write(tx: Any, group: str, batch: list[tuple[int, str, Any]]) -> None:
        for _line, key, data in batch:
            restored[key] = data

    monkeypatch.setattr(_backup, "SECTIONS", dict(SECTIONS))
    register_section("feed", read, write, groups=lambda tx: ["events"])
    source = pycrm.open("memory://")
    fill(source, 1)
    dump = tmp_path / "crm.jsonl.gz"
    backup(source, dump)
    with gzip.open(dump, "rt", encoding="utf-8") as f:
        assert '"section":"feed"' in f.read()
    result = restore(pycrm.open("memory://"), dump)
    assert restored == external
    assert result.groups["feed/events"].ok and result.groups["feed/events"].dump_count == 2
    external["3"] = {"event": "deleted"}
    assert not verify(source, dump).groups["feed/events"].ok
