"""Backup and restore of a SQLite store, side by side with SQLite's own text dump as the baseline.

    python benchmarks/bench_lifecycle.py               # 100,000 customers (each with an e-mail and a phone)
    python benchmarks/bench_lifecycle.py --quick       # 10,000 customers, a smoke run
    python benchmarks/bench_lifecycle.py --rounds 5

Measured, each the median of ``--rounds`` rounds (the sides alternate):

- backup, logical: ``backup(crm, "x.jsonl")`` (and ``.jsonl.gz``) — one consistent read, codec data per line;
- backup, sqlite: ``backup(crm, "x.db", method="sqlite")`` — SQLite's online backup API;
- backup, baseline: ``sqlite3.Connection.iterdump()`` written to a ``.sql`` file (what ``sqlite3 .dump`` does);
- restore, logical: ``restore(empty SQLite store, "x.jsonl")`` — validation, reference checks, inserts,
  verify of every group, one transaction;
- restore, from the sqlite copy: ``restore(empty SQLite store, "x.db")`` — the same, reading the copy;
- restore, baseline: ``executescript`` of the ``.sql`` dump into an empty database;
- incremental (on a copy of the store): after 1% of the customers change, ``backup(crm, "i.jsonl",
  base=full)`` next to a full logical backup of the same state, and ``restore(empty, full,
  increments=[i])`` next to a restore of that full backup.

The store is built once with ``add_many`` and cached under ``benchmarks/results/``. The figures go to
``benchmarks/results/lifecycle-latest.json`` (gitignored).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _data import customer_rows  # noqa: E402  # after the path set-up above

import pycrm  # noqa: E402
from pycrm.io._backup import backup, restore  # noqa: E402

RESULTS = HERE / "results"


def build(n: int) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"lifecycle-store-{n}.db"
    if path.exists():
        return path
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    with pycrm.open(f"sqlite:///{tmp}", default_region="CN") as crm:
        rows = list(customer_rows(n))
        for start in range(0, n, 50_000):
            with crm.session() as s:  # the session sets the default region the phones are parsed with
                s.customers.add_many(
                    pycrm.Customer(name, kind=kind, emails=[email], phones=[phone])
                    for name, kind, email, phone in rows[start : start + 50_000]
                )
    tmp.rename(path)
    return path


def incremental(store: Path, work: Path, n: int, rounds: int, record: Callable[..., None]) -> None:
    """Increments after 1% of the customers changed, against a full backup of the same state (the
    baseline of these rows: ``vs baseline`` is against the full backup or its restore)."""
    live = work / "live.db"
    shutil.copyfile(store, live)
    with pycrm.open(f"sqlite:///{live}") as crm:
        backup(crm, work / "chain-0.jsonl")
        with crm.session() as s:
            ids = [str(c.id) for c in s.customers.find(limit=max(1, n // 100) * rounds * 3)]
        for r in range(rounds):
            with crm.session() as s:
                for id in ids[r * len(ids) // rounds : (r + 1) * len(ids) // rounds][: max(1, n // 100)]:
                    c = s.customers.get(id)
                    c.status = "active"
                    s.customers.update(c)
            base, inc, full = work / f"chain-{r}.jsonl", work / f"chain-{r + 1}.jsonl", work / f"full-{r}.jsonl"
            record("incremental: backup, 1% changed", timed(lambda base=base, inc=inc: backup(crm, inc, base=base)), inc)
            record("incremental: full backup, same state", timed(lambda full=full: backup(crm, full)), full)
            chain = [work / f"chain-{i}.jsonl" for i in range(1, r + 2)]
            with pycrm.open(f"sqlite:///{work}/ti-{r}.db") as target:
                record(
                    f"incremental: restore full + {len(chain)}",
                    timed(lambda t=target, c=chain: restore(t, work / "chain-0.jsonl", increments=c)),
                )
            with pycrm.open(f"sqlite:///{work}/tf-{r}.db") as target:
                record("incremental: restore full, same state", timed(lambda t=target, f=full: restore(t, f)))


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    n = args.n or (10_000 if args.quick else 100_000)
    store = build(n)
    work = Path(tempfile.mkdtemp(prefix="pycrm-bench-lifecycle-"))
    times: dict[str, list[float]] = {}
    sizes: dict[str, int] = {}

    def record(name: str, seconds: float, file: Path | None = None) -> None:
        times.setdefault(name, []).append(seconds)
        if file is not None:
            sizes[name] = file.stat().st_size

    try:
        crm = pycrm.open(f"sqlite:///{store}")
        for r in range(args.rounds):
            # backups
            base = work / "base.sql"

            def iterdump(base: Path = base) -> None:
                con = sqlite3.connect(store)
                with open(base, "w", encoding="utf-8") as f:
                    for line in con.iterdump():
                        f.write(line)
                        f.write("\n")
                con.close()

            record("backup: baseline iterdump .sql", timed(iterdump), base)
            for name in ("x.jsonl", "x.jsonl.gz"):
                record(f"backup: logical {name}", timed(lambda name=name: backup(crm, work / name)), work / name)
            record("backup: sqlite online .db", timed(lambda: backup(crm, work / "x.db", method="sqlite")), work / "x.db")

            # restores (each into a fresh, empty store file)
            def baseline_restore(base: Path = base, r: int = r) -> None:
                target = work / f"base-{r}.db"
                con = sqlite3.connect(target)
                con.executescript(base.read_text(encoding="utf-8"))
                con.close()

            record("restore: baseline executescript", timed(baseline_restore))
            for name in ("x.jsonl", "x.db"):
                target = pycrm.open(f"sqlite:///{work}/t-{r}-{name}.db")
                record(f"restore: from {name}", timed(lambda target=target, name=name: restore(target, work / name)))
                with target.session() as s:
                    assert s.customers.count() == n
                target.close()
            for leftover in work.glob("t-*"):
                leftover.unlink()
            for leftover in work.glob("base-*"):
                leftover.unlink()
        crm.close()
        incremental(store, work, n, args.rounds, record)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in times.items()}
    base_b = med["backup: baseline iterdump .sql"]
    base_r = med["restore: baseline executescript"]
    full_b, full_r = med["incremental: full backup, same state"], med["incremental: restore full, same state"]
    print(f"{n:,} customers (each with 1 e-mail, 1 phone), SQLite; median of {args.rounds} rounds")
    print(f"{'':36} {'median':>9} {'vs baseline':>12} {'rows/s':>10} {'file':>10}")
    for k, v in med.items():
        if k.startswith("incremental"):
            ratio = v / (full_b if "backup" in k else full_r)
        else:
            ratio = v / (base_b if k.startswith("backup") else base_r)
        size = f"{sizes[k] / 1e6:.1f} MB" if k in sizes else ""
        print(f"{k:36} {v:8.2f}s {ratio:11.2f}x {n / v:10,.0f} {size:>10}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lifecycle-latest.json").write_text(
        json.dumps({"n": n, "rounds": args.rounds, "times": times, "median": med, "sizes": sizes}, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
