"""The outbox's cost on a write, and dispatch throughput (issue 22, "Speed").

    python benchmarks/run.py --only outbox,dispatch       # full sizes
    python benchmarks/run.py --only outbox --quick        # smaller, a smoke run

``outbox``: updates of one customer, each in its own session (get, change, update, commit), on an SQLite file
of 10,000 customers, audit trail on; the same updates on a store opened with ``outbox=True`` (each update
writes its ``CustomerUpdated`` event in the same transaction) and on one opened without, alternating in
rounds; the figure is the median time of one update. Target: the outbox adds at most 10%.

``dispatch``: an outbox of events (``CustomerCreated`` from ``add_many``) delivered by ``crm.dispatch()`` to
one in-process handler that does nothing, on SQLite and on PostgreSQL (``PYCRM_BENCH_POSTGRES_URL``, default
a database ``pycrm_automation_bench`` on the local server); the floor beside it is the least any dispatcher
does on SQLite: read the same rows with raw ``sqlite3`` and mark them done, in batches of the same size.
Target: at least 5,000 events/s on each database.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _util import RESULTS  # noqa: E402
from bench_core import Config, _figure  # noqa: E402
from bench_pgimport import fresh  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/pycrm_automation_bench"
TARGET_UPDATE = 1.10
TARGET_RATE = 5_000.0


def _store(path: Path, n: int, outbox: bool) -> list[str]:
    import pycrm

    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    crm = pycrm.open(f"sqlite:///{path}", outbox=outbox)
    try:
        with crm.session() as s:
            s.customers.add_many([pycrm.Customer(f"Customer {i}", emails=[f"c{i}@example.com"]) for i in range(n)])
            ids = [str(c.id) for c in s.customers.find(limit=2000)]
        if outbox:
            crm.handlers.add(lambda e: None, pycrm.automation.Event, name="drain")
            crm.dispatch()  # start from an empty queue, as a store whose events are dispatched
    finally:
        crm.close()
    return ids


def _updates(path: Path, ids: list[str], k: int, outbox: bool) -> tuple[list[float], list[float]]:
    """Wall and CPU time of each update."""
    import pycrm

    crm = pycrm.open(f"sqlite:///{path}", outbox=outbox)
    times, cpu = [], []
    clock, process = time.perf_counter, time.process_time
    try:
        for i in range(k):
            id = ids[i % len(ids)]
            t, c0 = clock(), process()
            with crm.session() as s:
                c = s.customers.get(id)
                c.category = f"c{i}"
                s.customers.update(c)
            times.append(clock() - t)
            cpu.append(process() - c0)
    finally:
        crm.close()
    return times, cpu


def bench_outbox(cfg: Config) -> dict[str, Any]:
    n = 2_000 if cfg.quick else 10_000
    k = 500 if cfg.quick else 2_000
    RESULTS.mkdir(parents=True, exist_ok=True)
    paths = {"on": RESULTS / "outbox-on.db", "off": RESULTS / "outbox-off.db"}
    ids = {side: _store(p, n, side == "on") for side, p in paths.items()}
    cfg.log(f"outbox: {k:,} single-customer updates per round on {n:,} customers, {cfg.repeat} rounds, alternating")
    medians: dict[str, list[float]] = {"on": [], "off": []}
    cpus: dict[str, list[float]] = {"on": [], "off": []}
    for r in range(cfg.repeat):
        for side in ("off", "on") if r % 2 == 0 else ("on", "off"):
            times, cpu = _updates(paths[side], ids[side], k, side == "on")
            medians[side].append(statistics.median(times))
            cpus[side].append(statistics.mean(cpu))
        cfg.log(
            f"  round {r + 1}: off {medians['off'][-1] * 1e6:.0f} µs, on {medians['on'][-1] * 1e6:.0f} µs per update"
            f" (CPU {cpus['off'][-1] * 1e6:.0f} / {cpus['on'][-1] * 1e6:.0f} µs)"
        )
    for p in paths.values():
        for suffix in ("", "-wal", "-shm"):
            Path(str(p) + suffix).unlink(missing_ok=True)
    on, off = statistics.median(medians["on"]), statistics.median(medians["off"])
    cpu_on, cpu_off = statistics.median(cpus["on"]), statistics.median(cpus["off"])
    rows = [
        _figure(f"update of one customer, outbox on vs off (median of {k:,} x {cfg.repeat})", on, off, "s", TARGET_UPDATE),
        _figure("  CPU time of the process per update (steadier on a shared machine)", cpu_on, cpu_off, "s", None),
    ]
    return {"rows": rows, "details": {"n": n, "k": k, "medians": medians, "cpu": cpus}}


def _filled(url: str, n: int) -> None:
    import pycrm

    fresh(url)
    crm = pycrm.open(url, outbox=True)
    try:
        with crm.session() as s:
            s.customers.add_many([pycrm.Customer(f"Customer {i}") for i in range(n)])
    finally:
        crm.close()


def _dispatch_rate(url: str, n: int, batch: int) -> tuple[float, int]:
    import pycrm

    crm = pycrm.open(url)
    calls = [0]

    def handler(e: Any) -> None:
        calls[0] += 1

    crm.handlers.add(handler, pycrm.automation.Event, name="count")
    try:
        t = time.perf_counter()
        result = crm.dispatch(batch=batch)
        took = time.perf_counter() - t
    finally:
        crm.close()
    assert result.delivered == n == calls[0], (result, n, calls)
    return took, n


def _floor_rate(path: Path, n: int, batch: int) -> float:
    """Raw sqlite3: read the pending rows a batch at a time and mark them done, each batch its own transaction."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("UPDATE pycrm_outbox SET state = 'pending', done_at = NULL")
        t = time.perf_counter()
        after = 0
        while True:
            con.execute("BEGIN IMMEDIATE")
            rows = con.execute(
                "SELECT seq, event_key, event, entity, entity_id, at, actor_id, data FROM pycrm_outbox"
                " WHERE state = 'pending' AND seq > ? ORDER BY seq LIMIT ?",
                (after, batch),
            ).fetchall()
            if not rows:
                con.execute("COMMIT")
                break
            con.executemany("UPDATE pycrm_outbox SET state = 'done', done_at = ? WHERE seq = ?", [("now", r[0]) for r in rows])
            con.execute("COMMIT")
            after = rows[-1][0]
        return time.perf_counter() - t
    finally:
        con.close()


def bench_dispatch(cfg: Config) -> dict[str, Any]:
    n = 5_000 if cfg.quick else 50_000
    batch = 500
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "dispatch.db"
    urls: dict[str, str] = {"sqlite": f"sqlite:///{path}"}
    pg = os.environ.get("PYCRM_BENCH_POSTGRES_URL") or DEFAULT_PG
    try:
        fresh(pg)
        urls["postgresql"] = pg
    except Exception as exc:  # no server: the SQLite figure alone, saying why
        cfg.log(f"dispatch: PostgreSQL left out ({type(exc).__name__}: {exc})")
    cfg.log(f"dispatch: {n:,} events, batches of {batch}, {cfg.repeat} rounds per database")
    rates: dict[str, list[float]] = {k: [] for k in urls}
    floors: list[float] = []
    for r in range(cfg.repeat):
        for name, url in urls.items():
            _filled(url, n)
            took, count = _dispatch_rate(url, n, batch)
            rates[name].append(count / took)
            if name == "sqlite":
                floors.append(n / _floor_rate(path, n, batch))
        cfg.log(f"  round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f} events/s" for k, v in rates.items()))
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    rows = []
    for name, values in rates.items():
        rate = statistics.median(values)
        row = _figure(
            f"dispatch on {name}, events/s, target >= {TARGET_RATE:,.0f} (floor: raw sqlite3 read + mark done)",
            rate,
            statistics.median(floors),
            "ev/s",
            None,
        )
        row["ok"] = rate >= TARGET_RATE  # a floor to stay above, not a ceiling
        rows.append(row)
    return {"rows": rows, "details": {"n": n, "batch": batch, "rates": rates, "floor": floors}}


BENCHMARKS: dict[str, Callable[[Config], dict[str, Any]]] = {"outbox": bench_outbox, "dispatch": bench_dispatch}
