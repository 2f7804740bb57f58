"""Behaviour events through the bulk path: ``s.activities.add_many`` + commit of N events into a fresh SQLite
store, against the floor -- the same rows (ids, times and properties as JSON text made in Python) written by
``sqlite3.executemany`` in one transaction into the same table, no validation.

    PYTHONPATH=src python benchmarks/bench_activities.py --n 100000 --runs 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import pycrm
from pycrm import Activity, Customer

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def _store(path: Path, customers: int) -> list[str]:
    with pycrm.open(f"sqlite:///{path}") as crm, crm.session() as s:
        ids = [uuid.uuid4().hex for _ in range(customers)]
        s.customers.add_many([Customer(f"C{i}", id=cid) for i, cid in enumerate(ids)])
    return ids


def _events(ids: list[str], n: int) -> list[tuple[str, str, dt.datetime, dict[str, object]]]:
    return [
        (
            ids[i % len(ids)],
            "web_visit" if i % 4 else "app_open",
            T0 + dt.timedelta(seconds=i),
            {"path": f"/p{i % 50}", "ms": i % 997},
        )
        for i in range(n)
    ]


def pycrm_run(path: Path, ids: list[str], n: int) -> float:
    events = _events(ids, n)
    with pycrm.open(f"sqlite:///{path}") as crm:
        start = time.perf_counter()
        with crm.session() as s:
            s.activities.add_many([Activity(c, k, at, p, source="web") for c, k, at, p in events])
        return time.perf_counter() - start


def floor_run(path: Path, ids: list[str], n: int) -> float:
    events = _events(ids, n)
    con = sqlite3.connect(path)
    start = time.perf_counter()
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    rows = [
        (uuid.uuid4().hex, 1, now, now, c, k, at.strftime("%Y-%m-%d %H:%M:%S.%f"), json.dumps(p), None, "web")
        for c, k, at, p in events
    ]
    with con:
        con.executemany("INSERT INTO activities VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    took = time.perf_counter() - start
    con.close()
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    pyc, flo = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.runs):
            for name, fn, out in (("pycrm", pycrm_run, pyc), ("floor", floor_run, flo)):
                path = Path(tmp) / f"{name}{r}.db"
                ids = _store(path, 1000)
                out.append(fn(path, ids, args.n))
    mp, mf = statistics.median(pyc), statistics.median(flo)
    print(
        f"{args.n} events, median of {args.runs}: add_many+commit {mp:.3f}s ({args.n / mp:,.0f}/s), "
        f"executemany floor {mf:.3f}s ({args.n / mf:,.0f}/s), ratio {mp / mf:.2f}x"
    )


if __name__ == "__main__":
    main()
