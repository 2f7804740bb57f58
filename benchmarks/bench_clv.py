"""Benchmark of the CLV models on the CDNOW 1/10 sample (2,357 customers, 6,919 order lines).

    python benchmarks/bench_clv.py             # median of 5 runs of each step, parameters vs published
    python benchmarks/bench_clv.py --runs 9
    python benchmarks/bench_clv.py --check     # exit 1 when the BG/NBD fit misses its target (< 2 s)

Steps timed: ``purchase_summary`` (calibration to 1997-09-30, daily purchases, weeks), ``fit_bgnbd``,
``fit_gamma_gamma`` and ``customer_lifetime_value`` (12 months, 1 % a month) on the whole summary. SciPy
is imported before timing, so the figures are the work, not the import. The data file is the one the
tests use, ``tests/analytics/data/CDNOW_sample.txt`` (see the README beside it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "analytics" / "data" / "CDNOW_sample.txt"
TARGET_FIT_SECONDS = 2.0

#: Fader, Hardie and Lee (2005) and Fader and Hardie (2013) on the same data.
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "log_likelihood": -9582.4}
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def load() -> list[tuple[str, dt.date, Decimal]]:
    out = []
    for line in DATA.read_text().splitlines():
        _master_id, cid, day, _cds, value = line.split()
        out.append((cid, dt.date(int(day[:4]), int(day[4:6]), int(day[6:])), Decimal(value)))
    return out


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, list[float], Any]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def compare(name: str, got: float, want: float) -> str:
    off = (got - want) / abs(want) * 100
    return f"  {name:<15} {got:>12.4f}   published {want:>10.3f}   {off:+.2f} %"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each step (median reported)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the BG/NBD fit median is over 2 s")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT / "src"))
    # SciPy is imported before timing, as a warmed-up process would have it.
    import scipy.optimize
    import scipy.special

    from pycrm.analytics import customer_lifetime_value, fit_bgnbd, fit_gamma_gamma, purchase_summary

    orders = load()
    print(f"CDNOW 1/10 sample: {len(orders)} order lines; Python {platform.python_version()}, SciPy {scipy.__version__}")
    med_s, _, summary = timed(lambda: purchase_summary(orders, calibration_end="1997-09-30", unit="W"), args.runs)
    med_bg, times_bg, bg = timed(lambda: fit_bgnbd(summary), args.runs)
    med_gg, _, gg = timed(lambda: fit_gamma_gamma(summary), args.runs)
    med_clv, _, scores = timed(lambda: customer_lifetime_value(summary, bg, gg, months=12, discount_rate=0.01), args.runs)

    print(f"\nmedian of {args.runs} runs")
    print(f"  purchase_summary         {med_s * 1000:8.1f} ms   ({len(summary)} customers)")
    ok = med_bg < TARGET_FIT_SECONDS
    print(
        f"  fit_bgnbd                {med_bg * 1000:8.1f} ms   target < {TARGET_FIT_SECONDS:.0f} s: {'met' if ok else 'MISSED'}"
        f"   (runs: {', '.join(f'{t * 1000:.0f}' for t in times_bg)} ms)"
    )
    print(f"  fit_gamma_gamma          {med_gg * 1000:8.1f} ms   ({gg.n_customers} repeat customers)")
    print(f"  customer_lifetime_value  {med_clv * 1000:8.1f} ms   ({len(scores)} customers, 12 months)")

    print("\nBG/NBD (Fader, Hardie and Lee 2005)")
    for name, want in PUBLISHED_BGNBD.items():
        print(compare(name, getattr(bg, name), want))
    print("Gamma-Gamma (Fader and Hardie 2013; calibration-period repeat purchases)")
    for name, want in PUBLISHED_GG.items():
        print(compare(name, getattr(gg, name), want))
    total = sum(s.clv for s in scores)
    print(f"\n12-month CLV of the 2,357 customers at 1 %/month: {total:,.2f} dollars (mean {total / len(scores):.2f})")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
