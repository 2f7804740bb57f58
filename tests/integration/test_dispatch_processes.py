"""Dispatchers in several processes, and one killed mid-batch (issue: automation, item 2).

Concurrent dispatchers started together behind a barrier deliver every event exactly once between them, each
record's events in order. A dispatcher killed (SIGKILL) in the middle of a batch loses nothing: once its
claims' lease has run out, the next dispatch delivers every event it had not settled; the only events
delivered twice are those of the batch it was killed in, recognisable by their idempotency key. On SQLite (a
file), PostgreSQL and MariaDB.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pycrm
from pycrm import Customer
from pycrm.automation import CustomerUpdated, Event
from tests.integration._together import run_together

PROCESSES = 3
RECORDS = 20
UPDATES = 10  # per record: with the creates, 220 events


def _fill(url: str) -> int:
    crm = pycrm.open(url, outbox=True)
    try:
        with crm.session() as s:
            s.customers.add_many([Customer(f"C{i}") for i in range(RECORDS)])
            customers = s.customers.find()
        for n in range(UPDATES):
            with crm.session() as s:
                for c in customers:
                    c.category = f"v{n}"
                    s.customers.update(c)
        return sum(crm.outbox.counts().values())
    finally:
        crm.close()


def _log(path: str, event: Event) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{time.time_ns()} {event.seq} {event.entity_id} {event.key}\n")


def _dispatcher(url: str, path: str, barrier: Any, results: Any) -> None:
    try:
        crm = pycrm.open(url)
        try:
            crm.handlers.add(lambda e: (_log(path, e), time.sleep(0.002)), pycrm.automation.Event, name="log")
            barrier.wait(timeout=120)
            result = crm.dispatch(batch=15)
            results.put((os.getpid(), "ok", result.delivered))
        finally:
            crm.close()
    except BaseException as exc:  # the parent reports what failed where
        results.put((os.getpid(), "error", f"{type(exc).__name__}: {exc}"))


def _read(paths: list[Path]) -> list[tuple[int, int, str, str]]:
    out = []
    for p in paths:
        if p.exists():
            for line in p.read_text(encoding="utf-8").splitlines():
                t, seq, entity_id, key = line.split()
                out.append((int(t), int(seq), entity_id, key))
    return out


def test_concurrent_dispatchers_deliver_each_event_once_in_order_per_record(sql_url: str, tmp_path: Path) -> None:
    total = _fill(sql_url)
    assert total == RECORDS * (UPDATES + 1)
    logs = [tmp_path / f"d{i}.log" for i in range(PROCESSES)]
    got = run_together(_dispatcher, [(sql_url, str(p)) for p in logs], "dispatchers")
    assert [r[1] for r in got] == ["ok"] * PROCESSES, got
    delivered = _read(logs)
    keys = Counter(k for _, _, _, k in delivered)
    assert len(keys) == total and max(keys.values()) == 1  # every event, none twice
    assert sum(r[2] for r in got) == total
    assert sum(1 for p in logs if p.exists()) >= 2  # they did work side by side
    by_record: dict[str, list[tuple[int, int]]] = {}
    for t, seq, entity_id, _ in delivered:
        by_record.setdefault(entity_id, []).append((t, seq))
    for entity_id, items in by_record.items():
        seqs = [seq for _, seq in sorted(items)]
        assert seqs == sorted(seqs), f"the events of {entity_id} went out of order: {seqs}"
    crm = pycrm.open(sql_url)
    try:
        assert crm.outbox.counts() == {"pending": 0, "done": total, "dead": 0}
    finally:
        crm.close()


def _killed(url: str, path: str, after: int) -> None:
    """Deliver ``after`` events of a batch, then die without settling it."""
    crm = pycrm.open(url)
    seen = [0]

    def handler(e: Event) -> None:
        _log(path, e)
        seen[0] += 1
        if seen[0] == after:
            os.kill(os.getpid(), signal.SIGKILL)

    crm.handlers.add(handler, CustomerUpdated, pycrm.automation.CustomerCreated, name="log")
    crm.dispatch(batch=50, lease=30)


def test_a_dispatcher_killed_mid_batch_loses_nothing(sql_url: str, tmp_path: Path) -> None:
    total = _fill(sql_url)
    ctx = multiprocessing.get_context("spawn")
    first, second = tmp_path / "killed.log", tmp_path / "after.log"
    proc = ctx.Process(target=_killed, args=(sql_url, str(first), 80))  # dies in its second batch of 50
    proc.start()
    proc.join(timeout=300)
    assert proc.exitcode == -signal.SIGKILL
    crm = pycrm.open(sql_url)
    try:
        assert crm.outbox.counts()["done"] == 50  # the first batch was settled
        crm.handlers.add(lambda e: _log(str(second), e), pycrm.automation.Event, name="log")
        assert crm.dispatch().delivered == 0  # the dead dispatcher's claims still hold
        later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=31)  # its lease has run out
        result = crm.dispatch(now=later)
        assert result.delivered == total - 50
        assert crm.outbox.counts() == {"pending": 0, "done": total, "dead": 0}
    finally:
        crm.close()
    before, after = _read([first]), _read([second])
    keys = Counter(k for _, _, _, k in before + after)
    assert len(keys) == total  # nothing lost
    twice = {k for k, n in keys.items() if n > 1}
    assert len(twice) == 30  # the 30 of the killed batch it delivered but could not settle
    assert twice == {k for _, seq, _, k in before if seq > 50}
