"""Exports written by several processes (``export_file(..., workers=N)``): the same file as one process,
whatever the workers do (start late, see another state of the store, die, hang or lie half way)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

import pycrm
from pycrm.cli import main as cli_main
from pycrm.domain import Customer
from pycrm.errors import ValidationError
from pycrm.io import _export_workers as pw
from pycrm.io import export_file
from pycrm.storage.sql.store import SQLTransaction

N = 240  # a multiple of the range size 20 (and, filtered, 120): no empty range after the last


@pytest.fixture
def store(tmp_path: Path) -> Any:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    with pycrm.open(url, default_region="CN") as crm:
        with crm.session() as s:
            s.customers.add_many(
                [
                    Customer(
                        f'客户 {i}, "Ltd"' if i % 7 == 0 else f"Customer {i}",
                        emails=[f"u{i}@example.com"],
                        phones=[f"1380013{i:04d}"],
                        tags={"vip"} if i % 3 == 0 else set(),
                        custom={"external_id": f"C{i:04d}", "n": i},
                        status="active" if i % 2 else "lead",
                    )
                    for i in range(N)
                ]
            )
        yield crm


@pytest.fixture
def workers_seen(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The worker objects each export starts; ranges of 20 records so there are many."""
    seen: list[Any] = []

    class Spy(pw._Worker):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            seen.append(self)

    monkeypatch.setattr(pw, "_Worker", Spy)
    monkeypatch.setattr(pw, "RANGE_ROWS", 20)
    return seen


@pytest.fixture
def turns(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make the parent wait, before its ``at``-th range (1: its first), until ``need`` ranges are taken:
    so the worker takes some whatever the timing, and ranges after the worker's go to part files."""

    class Turns(pw._Ranges):
        at = 1
        need = 3
        calls = 0

        def take(self, owner: list[int] | None = None) -> int:
            if owner is None:  # the parent
                self.calls += 1
                if self.calls == self.at:
                    deadline = time.monotonic() + 60
                    while self._next < self.need and time.monotonic() < deadline:
                        time.sleep(0.01)
            return super().take(owner)

    monkeypatch.setattr(pw, "_Ranges", Turns)
    return Turns


def _one(store: pycrm.CRM, path: Path, **kw: Any) -> bytes:
    export_file(store, path, workers=1, **kw)
    return path.read_bytes()


@pytest.mark.parametrize(
    ("fmt", "where", "bom", "range_rows"),
    [
        ("csv", None, False, 20),
        ("jsonl", None, True, 20),
        ("csv", {"status": "active"}, True, 20),
        ("jsonl", {"status": "active"}, False, 23),
        ("csv", None, False, 23),
    ],
)
@pytest.mark.parametrize("first", ["parent", "worker"])
def test_workers_write_the_same_file_as_one_process(
    store: pycrm.CRM,
    tmp_path: Path,
    workers_seen: list[Any],
    turns: Any,
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
    where: Any,
    bom: bool,
    range_rows: int,
    first: str,
) -> None:
    monkeypatch.setattr(pw, "RANGE_ROWS", range_rows)
    turns.at = 1 if first == "worker" else 2  # the parent waits before its first range, or after it
    one = _one(store, tmp_path / f"one.{fmt}", where=where, bom=bom, batch_size=7)
    assert workers_seen == []  # workers=1: no process started
    expected = N if where is None else N // 2
    seen: list[int] = []
    many = tmp_path / f"many.{fmt}"
    assert export_file(store, many, where=where, bom=bom, workers=2, batch_size=7, progress=seen.append) == expected
    assert many.read_bytes() == one
    assert one.startswith(b"\xef\xbb\xbf") == bom
    (w,) = workers_seen
    assert w.proc.returncode is not None and not w.stale
    assert len(w.taken) >= (3 if first == "worker" else 2) and sorted(w.done) == sorted(w.taken)  # it wrote its ranges
    assert sum(w.done.values()) == sum(min(range_rows, expected - i * range_rows) for i in w.taken)
    assert seen == sorted(seen) and seen[-1] == expected
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".pycrm-export-")] == []  # parts removed


def test_a_worker_that_sees_another_state_exports_nothing(
    store: pycrm.CRM,
    tmp_path: Path,
    workers_seen: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    one = _one(store, tmp_path / "one.csv")
    # the parent notes a sequence number the worker will not see: as if a change was committed in between
    monkeypatch.setattr(SQLTransaction, "changes_last", lambda self: -1)  # in this process only
    # the parent waits for the worker (it would stop an idle one) until it has said what it sees
    monkeypatch.setattr(pw._Worker, "idle", lambda self: False)
    with caplog.at_level(logging.WARNING, logger="pycrm.io._export_workers"):
        assert export_file(store, tmp_path / "many.csv", workers=2, batch_size=7) == N
    assert (tmp_path / "many.csv").read_bytes() == one
    (w,) = workers_seen
    assert w.stale and w.taken == []
    assert "saw another committed state" in caplog.text


def _fake(body: str) -> str:
    """A stand-in worker: reads the job, then runs ``body`` (``take()`` asks for a range)."""
    return (
        "import struct, sys, time\n"
        "size, = struct.unpack('>Q', sys.stdin.buffer.read(8))\n"
        "sys.stdin.buffer.read(size)\n"
        "def take():\n"
        "    sys.stdout.write('take\\n'); sys.stdout.flush()\n"
        "    return int(sys.stdin.readline())\n" + body
    )


@pytest.mark.parametrize(
    ("body", "lost", "message"),
    [
        ("take(); take(); print('boom', file=sys.stderr); sys.exit(3)\n", 2, "Its last output: boom"),  # dies
        ("take(); time.sleep(60)\n", 1, "sent nothing for 1.0 seconds"),  # hangs
        ("i = take(); print('done', i, 5, flush=True); take()\n", 1, "stopped before writing"),  # wrong count, no file
    ],
    ids=["dies", "hangs", "lies"],
)
def test_ranges_a_worker_does_not_write_are_written_by_the_parent(
    store: pycrm.CRM,
    tmp_path: Path,
    workers_seen: list[Any],
    turns: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    body: str,
    lost: int,
    message: str,
) -> None:
    turns.need = lost  # the parent starts once the worker has taken its ranges
    monkeypatch.setattr(pw, "STALL_SECONDS", 1.0)
    one = _one(store, tmp_path / "one.jsonl")
    monkeypatch.setattr(pw._Worker, "command", ("-c", _fake(body)))
    with caplog.at_level(logging.WARNING, logger="pycrm.io._export_workers"):
        t0 = time.monotonic()
        assert export_file(store, tmp_path / "many.jsonl", workers=2, batch_size=7) == N
        assert time.monotonic() - t0 < 30
    assert (tmp_path / "many.jsonl").read_bytes() == one
    (w,) = workers_seen
    assert len(w.taken) >= lost and w.done == {}
    assert message in caplog.text


def test_one_process_writes_small_exports_streams_and_sessions(store: pycrm.CRM, tmp_path: Path, workers_seen: list[Any]) -> None:
    one = _one(store, tmp_path / "one.csv")
    export_file(store, tmp_path / "auto.csv")  # workers=None: fewer than PARALLEL_MIN_ROWS records
    export_file(store, tmp_path / "wb.xlsx", workers=2)  # XLSX is one file written in one go
    with store.session() as s:
        export_file(s, tmp_path / "s.csv", workers=2)  # a session's own uncommitted writes are not in the file
    assert workers_seen == []
    assert (tmp_path / "auto.csv").read_bytes() == (tmp_path / "s.csv").read_bytes() == one
    assert _one(store, tmp_path / "one.xlsx") != b""


def test_bad_workers_and_the_command_line(store: pycrm.CRM, tmp_path: Path, workers_seen: list[Any]) -> None:
    for bad in (0, -1, True, 1.5, "2"):
        with pytest.raises(ValidationError) as e:
            export_file(store, tmp_path / "x.csv", workers=bad)  # type: ignore[arg-type]
        assert e.value.errors[0].field == "workers"
    db = str(tmp_path / "crm.db")
    assert cli_main(["export", "customers", "--store", db, "-o", str(tmp_path / "cli.csv"), "--workers", "2"]) == 0
    assert len(workers_seen) == 1
    assert (tmp_path / "cli.csv").read_bytes() == _one(store, tmp_path / "one.csv")
    assert cli_main(["export", "customers", "--store", db, "-o", str(tmp_path / "bad.csv"), "--workers", "0"]) == 2
