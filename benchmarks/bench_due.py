"""``run_due`` with a dormant-customers rule (issue 22, item 5), side by side with one hand-written SQL query.

    python benchmarks/bench_due.py               # 1,000,000 customers, ~2M orders, ~1M interactions (SQLite)
    python benchmarks/bench_due.py --quick       # 100,000 customers, a smoke run
    python benchmarks/bench_due.py --rounds 5 --profile
    python benchmarks/run.py --only due          # the same through the runner

- pycrm, first run (target <= 1.5x): ``crm.run_due([DormantCustomers(days=90)], now=NOW)`` on a store whose
  outbox holds none of its events: the query in the database, one ``CustomerDormant`` event per customer
  found, written to the outbox (``outbox_add(unique=True)``), committed.
- pycrm, second run: the same again right after: everything found has fired, nothing new is written.
- floor: one hand-written statement with raw ``sqlite3`` on the same file that finds the same customers'
  ids (``NOT EXISTS`` an order / an interaction after the cutoff, on the ``(customer_id, occurred_at)``
  indexes; customers without any activity count when created before the cutoff).

Rounds alternate floor and pycrm (the outbox is emptied, untimed, before each first run); the table shows
medians. Every round checks that the events name exactly the customers the floor finds. The store is built
once with raw inserts into the adapter's own tables (7% of the customers dormant) and cached under
``benchmarks/results/``. Results go to ``benchmarks/results/due-latest.json`` (gitignored).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _util import RESULTS, fmt_seconds, profile_call  # noqa: E402

SEED = 20261207
DATA_VERSION = 2  # 2: the outbox schema of revision 0008 as it is now
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
DAYS = 90
DORMANT_SHARE = 0.07
TARGET = 1.5

FLOOR_SQL = """
SELECT c.id FROM customers c
WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.occurred_at > :cut)
  AND NOT EXISTS (SELECT 1 FROM interactions i WHERE i.customer_id = c.id AND i.occurred_at > :cut)
  AND (c.created_at <= :cut
       OR EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)
       OR EXISTS (SELECT 1 FROM interactions i WHERE i.customer_id = c.id))
ORDER BY c.id"""


def _text(at: dt.datetime) -> str:
    """How the SQLite adapter stores a time: naive UTC, microseconds."""
    return at.astimezone(dt.UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def build(n: int, log: Callable[[str], None] = print) -> Path:
    """A SQLite store of ``n`` customers with orders and interactions, made by raw inserts into the tables of a
    store pycrm created (so the schema and indexes are the adapter's own); cached."""
    import pycrm

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"due-store-{n}-d{DATA_VERSION}-s{SEED}.db"
    if path.exists():
        return path
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    pycrm.open(f"sqlite:///{tmp}").close()
    t0 = time.perf_counter()
    rng = random.Random(SEED)
    span = 3 * 365 * 86_400
    cut = NOW - dt.timedelta(days=DAYS)
    con = sqlite3.connect(tmp)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA journal_mode=OFF")
    stamp = _text(NOW - dt.timedelta(days=1200))
    customers, orders, interactions = [], [], []

    def flush() -> None:
        con.executemany(
            "INSERT INTO customers VALUES (?, 1, ?, ?, ?, 'company', '[]', '[]', '[]', NULL, NULL, 'lead', NULL, NULL, '[]', '{}')",  # noqa: E501
            customers,
        )
        con.executemany("INSERT INTO orders VALUES (?, 1, ?, ?, ?, ?, ?, 2, 'CNY', NULL)", orders)
        con.executemany("INSERT INTO interactions VALUES (?, 1, ?, ?, ?, 'call', ?, '', '', NULL)", interactions)
        customers.clear()
        orders.clear()
        interactions.clear()

    seq = 0
    for i in range(n):
        cid = f"cus-{i:07d}"
        customers.append((cid, stamp, stamp, f"Customer {i}"))
        dormant = rng.random() < DORMANT_SHARE
        # a dormant customer's activity all lies before the cutoff (some have none); an active one has some after
        lo, hi = (NOW - dt.timedelta(seconds=span), cut) if dormant else (NOW - dt.timedelta(seconds=span), NOW)
        k_orders = rng.choice((0, 1, 2, 3, 4)) if dormant else rng.choice((1, 2, 3))
        k_calls = rng.choice((0, 1, 2))
        times = [lo + (hi - lo) * rng.random() for _ in range(k_orders + k_calls)]
        if not dormant:
            times[0] = cut + (NOW - cut) * rng.random()  # at least one recent activity
        for j, at in enumerate(times):
            seq += 1
            if j < k_orders:
                orders.append((f"ord-{seq:08d}", stamp, stamp, cid, _text(at), rng.randint(100, 100_000)))
            else:
                interactions.append((f"int-{seq:08d}", stamp, stamp, cid, _text(at)))
        if len(customers) >= 50_000:
            flush()
            log(f"  built {i + 1:,}/{n:,} customers ({time.perf_counter() - t0:.0f} s)")
    flush()
    con.commit()
    con.execute("ANALYZE")
    con.close()
    tmp.rename(path)
    return path


def floor_ids(path: Path) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return [r[0] for r in con.execute(FLOOR_SQL, {"cut": _text(NOW - dt.timedelta(days=DAYS))})]
    finally:
        con.close()


def clear_outbox(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("DELETE FROM pycrm_outbox")
    con.commit()
    con.close()


def fired_ids(path: Path) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return [
            r[0] for r in con.execute("SELECT entity_id FROM pycrm_outbox WHERE event = 'CustomerDormant' ORDER BY entity_id")
        ]
    finally:
        con.close()


def measure(n: int, rounds: int, profile: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    import pycrm
    from pycrm.automation import DormantCustomers

    path = build(n, log)
    rules = [DormantCustomers(days=DAYS)]
    crm = pycrm.open(f"sqlite:///{path}", outbox=True)
    times: dict[str, list[float]] = {"floor": [], "first": [], "second": []}
    found = 0
    try:
        clear_outbox(path)
        expected = floor_ids(path)  # warm both sides once, checking they agree
        crm.run_due(rules, now=NOW)
        if fired_ids(path) != expected:
            raise AssertionError("run_due and the hand-written query find different customers")
        for k in range(rounds):
            clear_outbox(path)
            order = ("floor", "pycrm") if k % 2 == 0 else ("pycrm", "floor")
            for side in order:
                gc.collect()
                if side == "floor":
                    t = time.perf_counter()
                    ids = floor_ids(path)
                    times["floor"].append(time.perf_counter() - t)
                    assert ids == expected
                    continue
                t = time.perf_counter()
                first = crm.run_due(rules, now=NOW)
                times["first"].append(time.perf_counter() - t)
                t = time.perf_counter()
                second = crm.run_due(rules, now=NOW)
                times["second"].append(time.perf_counter() - t)
                assert first.fired == len(expected) and second.fired == 0 and second.already == len(expected)
                found = first.found
            if fired_ids(path) != expected:
                raise AssertionError("run_due and the hand-written query find different customers")
            log(
                f"  round {k + 1}: floor {fmt_seconds(times['floor'][-1])}, run_due first {fmt_seconds(times['first'][-1])}, "
                f"second {fmt_seconds(times['second'][-1])}"
            )
        prof = None
        if profile:
            clear_outbox(path)
            prof = profile_call(lambda: crm.run_due(rules, now=NOW), RESULTS / "due-profile.prof")
    finally:
        crm.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"customers": n, "dormant": found, "times": times, "median": med, "profile": prof}


def bench_due(cfg: Any) -> dict[str, Any]:
    """``benchmarks/run.py --only due``: 1,000,000 customers (``--quick``: 100,000)."""
    from bench_core import _figure

    n = 100_000 if cfg.quick else 1_000_000
    res = measure(n, cfg.repeat, cfg.profile, cfg.log)
    med = res["median"]
    label = f"run_due dormant rule, {n:,} customers ({res['dormant']:,} dormant), SQLite"
    rows = [
        _figure(f"{label}: first run, events written vs one SQL query", med["first"], med["floor"], "s", TARGET),
        _figure("  second run (nothing new to fire) vs the same query", med["second"], med["floor"], "s", None),
    ]
    if res["profile"]:
        cfg.profiles["due"] = res["profile"]
    return {"rows": rows, "details": {k: v for k, v in res.items() if k != "profile"}}


BENCHMARKS = {"due": bench_due}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)
    n = args.n or (100_000 if args.quick else 1_000_000)
    res = measure(n, args.rounds, args.profile)
    med = res["median"]
    ratio1, ratio2 = med["first"] / med["floor"], med["second"] / med["floor"]
    head = f"run_due, dormant customers ({DAYS} days), {n:,} customers, {res['dormant']:,} dormant, SQLite"
    print(f"\n{head}; median of {args.rounds}")
    print(f"  hand-written SQL query (raw sqlite3): {fmt_seconds(med['floor'])}")
    print(f"  run_due, first run (events written):  {fmt_seconds(med['first'])}  {ratio1:.2f}x  (target <= {TARGET}x)")
    print(f"  run_due, second run (nothing new):    {fmt_seconds(med['second'])}  {ratio2:.2f}x")
    if res["profile"]:
        print(res["profile"])
    out = RESULTS / "due-latest.json"
    out.write_text(json.dumps({k: v for k, v in res.items()}, indent=2, default=str))
    return 0 if ratio1 <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
