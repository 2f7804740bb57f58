"""Basket analysis speed target (issue 24, item 2), measured side by side with mlxtend in the same run.

    python benchmarks/bench_basket.py                 # 1,000,000 order lines over 5,000 products
    python benchmarks/bench_basket.py --quick         # 100,000 lines over 1,000 products, a smoke run
    python benchmarks/bench_basket.py --rounds 5 --profile

- pycrm: ``association_rules(frequent_itemsets(lines, min_support=...), min_threshold=...)`` straight from the
  order lines, a list of ``(order_id, product_id)`` tuples of text in random order (grouping the lines into
  baskets is part of pycrm's time).
- floor: mlxtend's ``fpgrowth(df, min_support=..., use_colnames=True)`` + ``association_rules(fi,
  num_itemsets=len(df), metric="confidence", min_threshold=...)`` on the same baskets one-hot encoded as
  a sparse boolean DataFrame (a dense one would take 1.3 GB). The encoding (``pandas.factorize`` of both
  columns, a ``scipy.sparse`` matrix, ``DataFrame.sparse.from_spmatrix``) is timed separately and is NOT
  in the floor: the target ratio is pycrm / (fpgrowth + association_rules) alone; the ratio with the
  encoding counted is printed beside it for information.

Target: pycrm <= 1.5x the floor, same rules. Every round checks that both sides give the same rules (the
same antecedent/consequent pairs, and support, confidence, lift, leverage and conviction equal to 1e-12).
Rounds alternate the sides after one untimed warm-up of each; the table shows medians. Results go to
``benchmarks/results/basket-latest.json`` (gitignored).

Data (seeded): order sizes 1 + geometric (mean about 3.7 lines), products drawn by a Zipf-like popularity
(weight 1 / rank**1.1); 300 of the 1,500 most popular products are "anchors" with 1-3 companion products
added to the order with probability 0.2-0.7 (the co-purchase structure that gives rules); the lines are
topped up or cut to the exact count and shuffled. Some orders hold a product twice (counted once).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _util import RESULTS, fmt_seconds, profile_call  # noqa: E402

SEED = 20241207
TARGET = 1.5


def order_lines(n_lines: int, n_products: int, seed: int = SEED) -> list[tuple[str, str]]:
    """``n_lines`` seeded ``(order_id, product_id)`` lines (see the module)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_products + 1) ** 1.1
    pop /= pop.sum()
    product_of_rank = rng.permutation(n_products)
    n_anchor_pool = min(1500, n_products)
    anchors = rng.choice(n_anchor_pool, min(300, n_anchor_pool), replace=False)
    companions = {
        int(a): (rng.choice(n_products, int(rng.integers(1, 4)), replace=False).tolist(), float(rng.uniform(0.2, 0.7)))
        for a in anchors
    }
    n_base = int(n_lines * 0.8)
    sizes = rng.geometric(1 / 3.0, n_base)
    n_orders = int(np.searchsorted(np.cumsum(sizes), n_base)) + 1
    order = np.repeat(np.arange(n_orders), sizes[:n_orders])[:n_base]
    rank = rng.choice(n_products, n_base, p=pop)
    extra_o: list[int] = []
    extra_r: list[int] = []
    idx = np.nonzero(np.isin(rank, anchors))[0]
    for i, u in zip(idx.tolist(), rng.random(len(idx)).tolist()):
        comp, p = companions[int(rank[i])]
        if u < p:
            extra_o += [int(order[i])] * len(comp)
            extra_r += comp
    o = np.concatenate([order, np.array(extra_o, dtype=np.int64)])
    r = np.concatenate([rank, np.array(extra_r, dtype=np.int64)])
    if len(o) < n_lines:
        k = n_lines - len(o)
        o = np.concatenate([o, rng.integers(0, n_orders, k)])
        r = np.concatenate([r, rng.choice(n_products, k, p=pop)])
    perm = rng.permutation(n_lines)
    o, r = o[:n_lines][perm], product_of_rank[r[:n_lines]][perm]
    oid = [f"SO-{x:07d}" for x in range(n_orders)]
    pid = [f"SKU-{x:05d}" for x in range(n_products)]
    return [(oid[a], pid[b]) for a, b in zip(o.tolist(), r.tolist())]


def encode(lines: list[tuple[str, str]]) -> Any:
    """The baskets one-hot encoded for mlxtend: a sparse boolean DataFrame, one row per order."""
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    orders, order_ids = pd.factorize(pd.Series([a for a, _ in lines]))
    products, product_ids = pd.factorize(pd.Series([b for _, b in lines]))
    m = sp.csr_matrix((np.ones(len(lines), dtype=bool), (orders, products)), shape=(len(order_ids), len(product_ids)))
    m.sum_duplicates()  # a product twice in one order is one True
    return pd.DataFrame.sparse.from_spmatrix(m, columns=list(product_ids))


Rules = dict[tuple[frozenset[str], frozenset[str]], tuple[float, ...]]


def mlxtend_rules(df: Any, min_support: float, min_confidence: float) -> Rules:
    from mlxtend.frequent_patterns import association_rules, fpgrowth

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        fi = fpgrowth(df, min_support=min_support, use_colnames=True)
        r = association_rules(fi, num_itemsets=len(df), metric="confidence", min_threshold=min_confidence)
    return {
        (a, c): v
        for a, c, *v in zip(
            r["antecedents"], r["consequents"], r["support"], r["confidence"], r["lift"], r["leverage"], r["conviction"]
        )
    }


def pycrm_rules(lines: list[tuple[str, str]], min_support: float, min_confidence: float) -> Any:
    from pycrm.analytics import association_rules, frequent_itemsets

    return association_rules(frequent_itemsets(lines, min_support=min_support), min_threshold=min_confidence)


def same_rules(floor: Rules, ours: Any) -> int:
    got = {
        (frozenset(r.antecedent), frozenset(r.consequent)): (r.support, r.confidence, r.lift, r.leverage, r.conviction)
        for r in ours
    }
    if got.keys() != floor.keys():
        raise AssertionError(
            f"different rules: {len(got.keys() - floor.keys())} only pycrm's, {len(floor.keys() - got.keys())} only mlxtend's"
        )
    for k, v in got.items():
        for a, b in zip(v, floor[k]):
            if not (a == b or abs(a - b) <= 1e-12 * max(abs(a), abs(b))):
                raise AssertionError(f"rule {k}: pycrm {v} vs mlxtend {floor[k]}")
    return len(got)


def table(rows: list[dict[str, Any]]) -> str:
    head = ("figure", "pycrm", "floor", "ratio", "target", "")
    body = [
        (
            r["figure"],
            fmt_seconds(r["pycrm"]),
            fmt_seconds(r["floor"]),
            f"{r['ratio']:.2f}x",
            "" if r["target"] is None else f"<= {r['target']:g}x",
            {True: "ok", False: "MISSED", None: ""}[r["ok"]],
        )
        for r in rows
    ]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(cells)).rstrip()
        for cells in [head, *body]
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100,000 lines over 1,000 products")
    ap.add_argument("--lines", type=int, help="order lines (default 1,000,000; quick 100,000)")
    ap.add_argument("--products", type=int, help="products (default 5,000; quick 1,000)")
    ap.add_argument("--min-support", type=float, default=0.001, help="min_support (default 0.001)")
    ap.add_argument("--min-confidence", type=float, default=0.2, help="the rules' min confidence (default 0.2)")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per side (default 3)")
    ap.add_argument("--profile", action="store_true", help="cProfile the pycrm side after timing")
    ap.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    args = ap.parse_args(argv)
    n_lines = args.lines or (100_000 if args.quick else 1_000_000)
    n_products = args.products or (1_000 if args.quick else 5_000)
    ms, mc = args.min_support, args.min_confidence

    def log(msg: str) -> None:
        print(msg, flush=True)

    import mlxtend

    import pycrm

    log(
        f"pycrm {pycrm.__version__} · mlxtend {mlxtend.__version__} · Python {sys.version.split()[0]} · "
        f"{os.cpu_count()} CPUs · load {os.getloadavg()}"
    )
    lines = order_lines(n_lines, n_products)
    df = encode(lines)
    log(f"data: {n_lines:,} lines, {df.shape[0]:,} orders, {n_products:,} products; min_support {ms}, min confidence {mc}")

    # warm-up, and the check that both give the same rules
    n_rules = same_rules(mlxtend_rules(df, ms, mc), pycrm_rules(lines, ms, mc))
    fi = pycrm.analytics.frequent_itemsets(lines, min_support=ms)
    sizes: dict[int, int] = {}
    for s in fi:
        sizes[len(s.items)] = sizes.get(len(s.items), 0) + 1
    log(f"  {len(fi):,} frequent itemsets (by size {dict(sorted(sizes.items()))}), {n_rules:,} rules, the same on both sides")
    del fi
    enc_t: list[float] = []
    ml_t: list[float] = []
    py_t: list[float] = []
    ml_cpu: list[float] = []
    py_cpu: list[float] = []
    for k in range(args.rounds):
        order = ("floor", "pycrm") if k % 2 == 0 else ("pycrm", "floor")
        for side in order:
            gc.collect()
            if side == "floor":
                t0 = time.perf_counter()
                frame = encode(lines)
                t1, c1 = time.perf_counter(), time.process_time()
                floor = mlxtend_rules(frame, ms, mc)
                t2, c2 = time.perf_counter(), time.process_time()
                enc_t.append(t1 - t0)
                ml_t.append(t2 - t1)
                ml_cpu.append(c2 - c1)
                del frame
            else:
                t0, c0 = time.perf_counter(), time.process_time()
                ours = pycrm_rules(lines, ms, mc)
                py_t.append(time.perf_counter() - t0)
                py_cpu.append(time.process_time() - c0)
        same_rules(floor, ours)
        del floor, ours
        log(
            f"  round {k + 1}: one-hot encoding {fmt_seconds(enc_t[-1])}, mlxtend {fmt_seconds(ml_t[-1])}, "
            f"pycrm {fmt_seconds(py_t[-1])} (CPU: mlxtend {fmt_seconds(ml_cpu[-1])}, pycrm {fmt_seconds(py_cpu[-1])})"
        )
    enc, ml, py, mlc, pyc = (statistics.median(x) for x in (enc_t, ml_t, py_t, ml_cpu, py_cpu))
    rows = [
        {
            "figure": f"association rules, {n_lines:,} lines: pycrm vs mlxtend fpgrowth + rules (median of {args.rounds})",
            "pycrm": py,
            "floor": ml,
            "ratio": py / ml,
            "target": TARGET,
            "ok": py / ml <= TARGET,
        },
        {
            "figure": "  the same, CPU time of the process (information)",
            "pycrm": pyc,
            "floor": mlc,
            "ratio": pyc / mlc,
            "target": None,
            "ok": None,
        },
        {
            "figure": "  the same, mlxtend's one-hot encoding counted (information)",
            "pycrm": py,
            "floor": ml + enc,
            "ratio": py / (ml + enc),
            "target": None,
            "ok": None,
        },
    ]
    text = table(rows)
    log(f"\nBasket analysis: {n_lines:,} order lines, {n_products:,} products; sides alternating; lower is better\n")
    log(text)
    log(f"(one-hot encoding alone, median: {fmt_seconds(enc)})")
    profile = None
    if args.profile:
        profile = profile_call(lambda: pycrm_rules(lines, ms, mc), RESULTS / "basket-pycrm.prof")
        log(f"\n=== profile: pycrm side ===\n{profile}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "lines": n_lines,
        "orders": int(df.shape[0]),
        "products": n_products,
        "seed": SEED,
        "min_support": ms,
        "min_confidence": mc,
        "rules": n_rules,
        "rounds": args.rounds,
        "loadavg": os.getloadavg(),
        "table": text,
        "figures": rows,
        "seconds": {"encoding": enc_t, "mlxtend": ml_t, "pycrm": py_t, "mlxtend_cpu": ml_cpu, "pycrm_cpu": py_cpu},
        "profile": profile,
    }
    out = RESULTS / "basket-latest.json"
    out.write_text(json.dumps(doc, indent=2, default=str))
    log(f"\nresults: {out}")
    return 1 if args.check and not rows[0]["ok"] else 0


if __name__ == "__main__":
    sys.exit(main())
