"""Run pycrm's benchmarks: each figure next to its floor, measured in the same run.

    python benchmarks/run.py                 # full sizes (100k add_many, 1M-customer stores; minutes)
    python benchmarks/run.py --quick         # small sizes, a smoke run (a few minutes)
    python benchmarks/run.py --only lookup   # one benchmark (repeatable): add_many, lookup, memory (issue 2,
                                             # bench_core.py); scope, encryption, journal (issue 5, bench_security.py);
                                             # pgimport (issue 19: PostgreSQL vs SQLite import, bench_pgimport.py);
                                             # outbox, dispatch (issue 22: bench_automation.py)
                                             # due (issue 22: run_due vs one SQL query, bench_due.py)
                                             # calendar (issue 23: 1M due times, bench_calendar.py)
                                             # sla (issue 23: SLA compliance pushed down vs one SQL query,
                                             # bench_sla.py)
    python benchmarks/run.py --profile       # also cProfile the pycrm side and print the top costs

Timings never live in the unit tests. Results are also written as JSON under benchmarks/results/
(gitignored), as ``bench-<UTC time>.json`` and ``latest.json``. Exit status is 0 unless ``--check`` is
given and a target is missed (then 1), or a benchmark fails (2).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import sqlite3
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _util import RESULTS, fmt_bytes, fmt_seconds  # noqa: E402
from bench_automation import BENCHMARKS as AUTOMATION_BENCHMARKS  # noqa: E402
from bench_calendar import BENCHMARKS as CALENDAR_BENCHMARKS  # noqa: E402
from bench_core import BENCHMARKS as CORE_BENCHMARKS  # noqa: E402
from bench_core import Config, sql_adapter_error  # noqa: E402
from bench_due import BENCHMARKS as DUE_BENCHMARKS  # noqa: E402
from bench_pgimport import BENCHMARKS as PGIMPORT_BENCHMARKS  # noqa: E402
from bench_security import BENCHMARKS as SECURITY_BENCHMARKS  # noqa: E402
from bench_sla import BENCHMARKS as SLA_BENCHMARKS  # noqa: E402

BENCHMARKS = {
    **CORE_BENCHMARKS,
    **SECURITY_BENCHMARKS,
    **PGIMPORT_BENCHMARKS,
    **AUTOMATION_BENCHMARKS,
    **DUE_BENCHMARKS,
    **CALENDAR_BENCHMARKS,
    **SLA_BENCHMARKS,
}
NEEDS_SQL = {"add_many", "lookup", "scope", "encryption", "journal", "pgimport", "outbox", "dispatch", "due", "sla"}


def _value(v: float, unit: str) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "-"
    if unit == "s":
        return fmt_seconds(v)
    if unit == "B":
        return fmt_bytes(v)
    return f"{v:.3g} {unit}"


def _target(row: dict[str, Any]) -> str:
    t = row["target"]
    if t is None:
        return ""
    return f"<= {t:g}x" if row["ratio_target"] else f"<= {_value(t, row['unit'])}"


def format_table(rows: list[dict[str, Any]]) -> str:
    head = ("figure", "pycrm", "floor", "ratio", "target", "")
    body = [
        (
            r["figure"],
            _value(r["pycrm"], r["unit"]),
            _value(r["floor"], r["unit"]),
            "-" if math.isnan(r["ratio"]) else f"{r['ratio']:.2f}x",
            _target(r),
            {True: "ok", False: "MISSED", None: ""}[r["ok"]],
        )
        for r in rows
    ]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = []
    for k, cells in enumerate([head, *body]):
        line = "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(cells))
        lines.append(line.rstrip())
        if k == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    import pycrm

    try:
        commit = subprocess.run(
            ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "-C", str(HERE), "status", "--porcelain", "--", "../src"], capture_output=True, text=True, check=False
            ).stdout.strip()
        )
    except OSError:
        commit, dirty = "", False
    try:
        import sqlalchemy

        sa = sqlalchemy.__version__
    except ImportError:
        sa = None
    return {
        "pycrm": pycrm.__version__,
        "git": commit + ("+dirty" if dirty else ""),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sa,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    ap.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"run only this benchmark ({', '.join(BENCHMARKS)}); repeat or comma-separate",
    )
    ap.add_argument("--repeat", type=int, help="rounds of add_many, encryption and journal (default 3)")
    ap.add_argument("--samples", type=int, help="lookups timed per kind (default 2000)")
    ap.add_argument("--n-add", type=int, help="customers for add_many, encryption, journal (default 100000, quick 10000)")
    ap.add_argument("--n-store", type=int, help="customers in the lookup and scope stores (default 1000000, quick 100000)")
    ap.add_argument("--n-memory", type=int, help="customers in the memory adapter (default 1000000, quick 100000)")
    ap.add_argument("--profile", action="store_true", help="cProfile the pycrm side of each benchmark (after timing)")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("-o", "--output", type=Path, help="JSON results file (default benchmarks/results/bench-<time>.json)")
    args = ap.parse_args(argv)

    names = [n.strip() for o in (args.only or []) for n in o.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        ap.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")

    cfg = Config(log=lambda m: print(m, flush=True), profile=args.profile, quick=args.quick)
    if args.quick:
        cfg.n_add, cfg.n_store, cfg.n_memory, cfg.repeat, cfg.samples = 10_000, 100_000, 100_000, 3, 1_000
    for opt in ("repeat", "samples", "n_add", "n_store", "n_memory"):
        if getattr(args, opt) is not None:
            setattr(cfg, opt, getattr(args, opt))

    env = environment()
    print(
        f"pycrm {env['pycrm']} ({env['git']}) · Python {env['python']} · SQLite {env['sqlite']} · "
        f"SQLAlchemy {env['sqlalchemy']} · {env['cpus']} CPUs · load {env['loadavg']}",
        flush=True,
    )

    sql_error = sql_adapter_error() if NEEDS_SQL & set(names) else None
    results: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    failed = False
    for name in names:
        if name in NEEDS_SQL and sql_error:
            print(f"{name}: skipped, the SQLite adapter does not open yet ({sql_error})", flush=True)
            results[name] = {"skipped": sql_error}
            continue
        t0 = time.perf_counter()
        try:
            res = BENCHMARKS[name](cfg)
        except Exception:
            failed = True
            tb = traceback.format_exc()
            print(f"{name}: FAILED\n{tb}", file=sys.stderr, flush=True)
            results[name] = {"error": tb}
            continue
        res["seconds"] = time.perf_counter() - t0
        results[name] = res
        rows += res["rows"]
        print(f"{name}: done in {res['seconds']:.0f} s", flush=True)

    table = format_table(rows) if rows else "(no figures)"
    mode = "quick sizes" if args.quick else "full sizes"
    print(f"\npycrm benchmarks ({mode}; pycrm and floor measured side by side in this run; lower is better)\n")
    print(table)
    for name, text in cfg.profiles.items():
        print(f"\n=== profile: {name} (pycrm side) ===\n{text}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.output or RESULTS / f"bench-{stamp}.json"
    doc = {
        "when": stamp,
        "quick": args.quick,
        "config": {k: v for k, v in vars(cfg).items() if k not in ("log", "profiles")},
        "environment": env,
        "table": table,
        "figures": rows,
        "results": results,
        "profiles": cfg.profiles,
    }
    text = json.dumps(doc, indent=2, default=str)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    (RESULTS / "latest.json").write_text(text)
    print(f"\nresults: {out}")

    if failed:
        return 2
    if args.check and any(r["ok"] is False for r in rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
