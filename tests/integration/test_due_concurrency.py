"""Concurrent ``run_due`` (issue 22, item 5): processes started together behind a barrier evaluate the same
time rules on one store; every record fires exactly once (the outbox's unique idempotency keys), every run
succeeds, and the counts add up. On SQLite (a file), PostgreSQL and MariaDB."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pycrm
from pycrm import Customer, Money, Order, Task
from tests.integration._together import run_together

#: Processes running run_due at once.
PROCESSES = 4
CUSTOMERS = 300
TASKS = 60
NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


def _runner(url: str, barrier: Any, results: Any) -> None:
    """One process: open the store, wait for the others, run the rules, report the counts."""
    try:
        from pycrm.automation import DormantCustomers, OverdueTasks

        crm = pycrm.open(url, outbox=True)
        try:
            barrier.wait(timeout=120)
            result = crm.run_due([DormantCustomers(days=90), OverdueTasks()], now=NOW, chunk=50)
            results.put((os.getpid(), "ok", [(r.name, r.found, r.fired, r.already) for r in result.rules]))
        finally:
            crm.close()
    except BaseException as exc:  # the parent reports what failed where
        results.put((os.getpid(), "error", f"{type(exc).__name__}: {exc}"))


def _run_together(url: str) -> list[tuple[Any, ...]]:
    return run_together(_runner, [(url,)] * PROCESSES, "runners")


def test_concurrent_run_due_fires_each_record_once(sql_url: str) -> None:
    with pycrm.open(sql_url, outbox=True) as crm, crm.session() as s:
        old = NOW - dt.timedelta(days=400)
        s.customers.add_many([Customer(f"C {i}", id=f"c{i:04d}", created_at=old) for i in range(CUSTOMERS)])
        s.orders.add_many([Order(f"c{i:04d}", old, Money(5, "USD")) for i in range(0, CUSTOMERS, 2)])
        s.tasks.add_many([Task(f"T {i}", NOW - dt.timedelta(hours=1), id=f"t{i:03d}") for i in range(TASKS)])
    results = _run_together(sql_url)
    assert [r for r in results if r[1] != "ok"] == []
    for name, total in (("dormant_customers:90d", CUSTOMERS), ("task_overdue", TASKS)):
        counts = [c for r in results for c in r[2] if c[0] == name]
        assert [c[1] for c in counts] == [total] * PROCESSES  # each run found them all
        assert sum(c[2] for c in counts) == total  # together they fired each once
        assert sum(c[3] for c in counts) == total * (PROCESSES - 1)
    with pycrm.open(sql_url, outbox=True) as crm:
        entries = crm.outbox.entries(limit=10_000)
        dormant = [e.event.entity_id for e in entries if e.name == "CustomerDormant" and e.event is not None]
        overdue = [e.event.entity_id for e in entries if e.name == "TaskOverdue" and e.event is not None]
        assert sorted(dormant) == [f"c{i:04d}" for i in range(CUSTOMERS)]
        assert sorted(overdue) == [f"t{i:03d}" for i in range(TASKS)]
        again = crm.run_due([pycrm.automation.DormantCustomers(days=90)], now=NOW)
        assert (again.fired, again.already) == (0, CUSTOMERS)
