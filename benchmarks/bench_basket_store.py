"""Basket analysis on a store (issue 24, item 2): ``s.analytics.basket_rules`` on a SQLite store vs mlxtend
reading the same SQLite file, side by side in one run.

    python benchmarks/bench_basket_store.py                  # 1,000,000 order lines over 5,000 products
    python benchmarks/bench_basket_store.py --lines 200000   # a smaller run
    python benchmarks/bench_basket_store.py --quick          # 100,000 lines over 1,000 products

The order lines are those of ``bench_basket.py`` (seeded, Zipf-like popularity with co-purchase bundles),
stored once through pycrm (``s.orders.add_many`` of orders with lines; one customer, a catalog of products;
the file is cached under ``benchmarks/results/``).

- pycrm: ``s.analytics.basket_rules(min_support=..., min_threshold=...)`` in a session on the store: the
  number of baskets, the item and pair counts in SQLite, the lines of the orders with three or more frequent
  products read back and mined in Python. Opening the session is in the time.
- floor: mlxtend on the same baskets read from the same SQLite file: ``SELECT order_id, product_id FROM
  order_lines`` into pandas (``pandas.read_sql_query``, sqlite3), one-hot encoded as a sparse boolean
  DataFrame (as in ``bench_basket.py``), ``fpgrowth`` + ``association_rules(num_itemsets=len(df))``. The
  floor's time includes reading and encoding (the fair comparison: both start from the file); the time of
  fpgrowth + rules alone is printed beside it.

Target: pycrm <= 1.5x the floor, same rules (checked every round, floats to 1e-12). Rounds alternate the
sides after an untimed warm-up; medians. Results go to ``benchmarks/results/basket-store-latest.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sqlite3
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _util import RESULTS, fmt_seconds  # noqa: E402
from bench_basket import encode, mlxtend_rules, order_lines, same_rules  # noqa: E402

TARGET = 1.5
CHUNK = 20_000


def build_store(n_lines: int, n_products: int, log: Any) -> Path:
    """The SQLite store holding the seeded lines as orders with lines (built once, cached)."""
    import datetime as dt

    import pycrm

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"basket-store-{n_lines}-{n_products}.db"
    if path.exists():
        return path
    tmp = Path(f"{path}.building")
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        p.unlink(missing_ok=True)
    baskets: dict[str, list[str]] = defaultdict(list)
    for o, p in order_lines(n_lines, n_products):
        baskets[o].append(p)
    t0 = time.perf_counter()
    at = dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC)
    with pycrm.open(f"sqlite:///{tmp}") as crm:
        with crm.session() as s:
            s.products.add_many(pycrm.Product(f"SKU-{i:05d}", f"Product {i}", id=f"SKU-{i:05d}") for i in range(n_products))
            s.customers.add(pycrm.Customer("Everybody", id="c1"))
        items = sorted(baskets.items())
        price = pycrm.Money("1.00")
        for lo in range(0, len(items), CHUNK):
            with crm.session() as s:
                s.orders.add_many(
                    pycrm.Order.from_lines("c1", at, [pycrm.OrderLine(p, 1, price) for p in ps], id=o)
                    for o, ps in items[lo : lo + CHUNK]
                )
            log(f"  stored {min(lo + CHUNK, len(items)):,}/{len(items):,} orders ({time.perf_counter() - t0:.0f} s)")
    con = sqlite3.connect(tmp)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("ANALYZE")
    con.close()
    os.replace(tmp, path)
    return path


def floor_rules(path: Path, ms: float, mc: float) -> tuple[Any, float, float]:
    """mlxtend's rules from the file, and the seconds spent reading + encoding and mining."""
    import pandas as pd

    t0 = time.perf_counter()
    con = sqlite3.connect(path)
    frame = pd.read_sql_query("SELECT order_id, product_id FROM order_lines", con)
    con.close()
    df = encode(list(zip(frame["order_id"].tolist(), frame["product_id"].tolist())))
    t1 = time.perf_counter()
    rules = mlxtend_rules(df, ms, mc)
    return rules, t1 - t0, time.perf_counter() - t1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100,000 lines over 1,000 products")
    ap.add_argument("--lines", type=int, help="order lines (default 1,000,000; quick 100,000)")
    ap.add_argument("--products", type=int, help="products (default 5,000; quick 1,000)")
    ap.add_argument("--min-support", type=float, default=0.001, help="min_support (default 0.001)")
    ap.add_argument("--min-confidence", type=float, default=0.2, help="the rules' min confidence (default 0.2)")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per side (default 3)")
    ap.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    args = ap.parse_args(argv)
    n_lines = args.lines or (100_000 if args.quick else 1_000_000)
    n_products = args.products or (1_000 if args.quick else 5_000)
    ms, mc = args.min_support, args.min_confidence

    def log(msg: str) -> None:
        print(msg, flush=True)

    import mlxtend

    import pycrm

    log(f"pycrm {pycrm.__version__} · mlxtend {mlxtend.__version__} · {os.cpu_count()} CPUs · load {os.getloadavg()}")
    path = build_store(n_lines, n_products, log)
    crm = pycrm.open(f"sqlite:///{path}")

    def ours() -> Any:
        with crm.session() as s:
            return s.analytics.basket_rules(min_support=ms, min_threshold=mc)

    n_rules = same_rules(floor_rules(path, ms, mc)[0], ours())
    with crm.session() as s:
        fi = s.analytics.frequent_itemsets(min_support=ms)
    log(f"data: {n_lines:,} lines, {fi.n_baskets:,} orders, {n_products:,} products; {len(fi):,} itemsets, {n_rules:,} rules")
    fl_t: list[float] = []
    read_t: list[float] = []
    mine_t: list[float] = []
    py_t: list[float] = []
    for k in range(args.rounds):
        for side in ("floor", "pycrm") if k % 2 == 0 else ("pycrm", "floor"):
            gc.collect()
            if side == "floor":
                floor, read, mine = floor_rules(path, ms, mc)
                read_t.append(read)
                mine_t.append(mine)
                fl_t.append(read + mine)
            else:
                t0 = time.perf_counter()
                got = ours()
                py_t.append(time.perf_counter() - t0)
        same_rules(floor, got)
        log(
            f"  round {k + 1}: mlxtend {fmt_seconds(fl_t[-1])} (read + encode {fmt_seconds(read_t[-1])}, "
            f"fpgrowth + rules {fmt_seconds(mine_t[-1])}), pycrm store {fmt_seconds(py_t[-1])}"
        )
    crm.close()
    fl, rd, mn, py = (statistics.median(x) for x in (fl_t, read_t, mine_t, py_t))
    ratio = py / fl
    log(
        f"\nmedian of {args.rounds}: pycrm store {fmt_seconds(py)}, mlxtend from the same file {fmt_seconds(fl)} "
        f"(read + encode {fmt_seconds(rd)}, fpgrowth + rules {fmt_seconds(mn)}): ratio {ratio:.2f}x "
        f"(vs mining alone {py / mn:.2f}x), target <= {TARGET}x: {'met' if ratio <= TARGET else 'MISSED'}"
    )
    out = {
        "lines": n_lines,
        "products": n_products,
        "orders": fi.n_baskets,
        "itemsets": len(fi),
        "rules": n_rules,
        "pycrm_s": py,
        "mlxtend_s": fl,
        "mlxtend_read_s": rd,
        "mlxtend_mine_s": mn,
        "ratio": ratio,
        "target": TARGET,
    }
    (RESULTS / "basket-store-latest.json").write_text(json.dumps(out, indent=2), encoding="utf-8")
    return 1 if args.check and ratio > TARGET else 0


if __name__ == "__main__":
    raise SystemExit(main())
