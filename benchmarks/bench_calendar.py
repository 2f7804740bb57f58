"""Due times on a business calendar (issue 23, "Speed"): 1,000,000 tickets under one calendar.

    python benchmarks/bench_calendar.py             # 1,000,000 tickets; the naive loop on 10,000, scaled
    python benchmarks/bench_calendar.py --quick     # 100,000 tickets
    python benchmarks/bench_calendar.py --rounds 5 --profile
    python benchmarks/run.py --only calendar        # the same through the runner

The calendar: mainland China 2026 (``BusinessCalendar.china(2026)``: the public holidays and the make-up
working days of the ``holidays`` package, Asia/Shanghai) with the windows 09:00-12:00 and 13:00-18:00 on
Monday to Friday. The tickets: opened at random instants of 2026 (seeded), each with a priority's amount of
working time to go (4 h, 8 h or 24 h).

- pycrm, bulk (target <= 5 s): ``cal.due_times(starts, amounts)`` over numpy arrays (``datetime64[us]`` and
  ``timedelta64[us]``), the compiled intervals searched with ``numpy.searchsorted``.
- pycrm, scalar: ``cal.add_business_time(at, amount)`` once per ticket (aware datetimes in, out), a bisection
  in the compiled intervals each.
- pycrm, business_times: ``cal.business_times(starts, ends)`` for the same tickets, to a random later instant.
- floor (the old way): a per-day Python loop like the first implementation, with the same windows, holidays
  and make-up days: for each day from the ticket's, is it a working day, its windows as UTC instants
  (``datetime.combine`` in the zone), take what is left of the amount; run on 10,000 tickets and scaled to the
  full count.

The compiling of the calendar (its first use) is timed apart, on a fresh calendar each round. Rounds alternate the
order of the sides; the table shows medians. Every round checks that the bulk due times equal the scalar ones on all
tickets and the naive loop's on its 10,000, and that ``business_times`` equals ``business_time`` on those
10,000. Results go to ``benchmarks/results/calendar-latest.json`` (gitignored).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _util import RESULTS, fmt_seconds, profile_call  # noqa: E402

SEED = 20261207
TARGET = 5.0  # seconds for 1,000,000 due times
NAIVE_N = 10_000
WINDOWS = [("09:00", "12:00"), ("13:00", "18:00")]
AMOUNTS_H = (4, 8, 24)  # by priority: urgent, high, normal


def make_calendar() -> Any:
    from pycrm.automation import BusinessCalendar

    return BusinessCalendar.china(2026, hours={d: WINDOWS for d in ("mon", "tue", "wed", "thu", "fri")})


def tickets(n: int) -> tuple[Any, Any, Any]:
    """``n`` opening instants in 2026 (datetime64[us], UTC), their amounts (timedelta64[us]) and a later instant each."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    lo = np.datetime64("2026-01-01T00:00", "us").astype(np.int64)
    hi = np.datetime64("2027-01-01T00:00", "us").astype(np.int64)
    starts = rng.integers(lo, hi, n).view("datetime64[us]")
    amounts = np.array(AMOUNTS_H, dtype="timedelta64[h]")[rng.integers(0, len(AMOUNTS_H), n)].astype("timedelta64[us]")
    ends = starts + rng.integers(0, 30 * 86_400_000_000, n).astype("timedelta64[us]")
    return starts, amounts, ends


def naive_due(cal: Any, at: dt.datetime, amount: dt.timedelta) -> dt.datetime:
    """The old way: one step per day, the day's windows made with ``datetime.combine`` in the zone."""
    zone = cal.zone
    windows = [(dt.time.fromisoformat(s), dt.time.fromisoformat(e)) for s, e in WINDOWS]
    left = amount
    a = at.astimezone(dt.UTC)
    day = a.astimezone(zone).date()
    for _ in range(3661):
        if cal.is_working_day(day):
            for s, e in windows:
                lo = max(dt.datetime.combine(day, s, zone).astimezone(dt.UTC), a)
                hi = dt.datetime.combine(day, e, zone).astimezone(dt.UTC)
                if hi > lo:
                    if hi - lo >= left:
                        return (lo + left).astimezone(at.tzinfo)
                    left -= hi - lo
        day += dt.timedelta(days=1)
    raise AssertionError("more than ten years")


def measure(n: int, rounds: int, profile: bool = False, log: Any = print) -> dict[str, Any]:
    import numpy as np

    starts, amounts, ends = tickets(n)
    py_starts = [x.replace(tzinfo=dt.UTC) for x in starts.astype(dt.datetime)]  # aware datetimes, for the scalar path
    py_amounts = [dt.timedelta(microseconds=int(x)) for x in amounts.view(np.int64)]
    k = min(NAIVE_N, n)
    times: dict[str, list[float]] = {"compile": [], "bulk": [], "bulk_list": [], "scalar": [], "spent": [], "naive": []}
    cal = make_calendar()
    cal.due_times(starts[:10], amounts[:10])  # compiled once; every timed round below starts warm
    for r in range(rounds):
        order = ("naive", "pycrm") if r % 2 == 0 else ("pycrm", "naive")
        for side in order:
            gc.collect()
            if side == "naive":
                t = time.perf_counter()
                naive = [naive_due(cal, py_starts[i], py_amounts[i]) for i in range(k)]
                times["naive"].append((time.perf_counter() - t) * n / k)
                continue
            fresh = make_calendar()
            t = time.perf_counter()
            fresh.due_times(starts[:1], amounts[:1])
            times["compile"].append(time.perf_counter() - t)
            t = time.perf_counter()
            bulk = cal.due_times(starts, amounts)
            times["bulk"].append(time.perf_counter() - t)
            t = time.perf_counter()
            spent = cal.business_times(starts, ends)
            times["spent"].append(time.perf_counter() - t)
            t = time.perf_counter()
            bulk_list = cal.due_times(py_starts, py_amounts)
            times["bulk_list"].append(time.perf_counter() - t)
            add = cal.add_business_time
            t = time.perf_counter()
            scalar = [add(a, m) for a, m in zip(py_starts, py_amounts, strict=True)]
            times["scalar"].append(time.perf_counter() - t)
        if not np.array_equal(bulk, bulk_list):
            raise AssertionError("due_times differs between arrays and datetimes")
        as_us = np.array([(d - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1) for d in scalar])
        if not np.array_equal(bulk.view(np.int64), as_us):
            raise AssertionError("due_times and add_business_time differ")
        if scalar[:k] != naive:
            raise AssertionError("add_business_time and the naive loop differ")
        py_ends = [x.replace(tzinfo=dt.UTC) for x in ends[:k].astype(dt.datetime)]
        one_by_one = [cal.business_time(a, b) // dt.timedelta(microseconds=1) for a, b in zip(py_starts, py_ends)]
        if spent[:k].view(np.int64).tolist() != one_by_one:
            raise AssertionError("business_times and business_time differ")
        log("  round {}: {}".format(r + 1, ", ".join(f"{k2} {fmt_seconds(v[-1])}" for k2, v in times.items())))
    prof = None
    if profile:
        prof = profile_call(lambda: cal.due_times(starts, amounts), RESULTS / "calendar-profile.prof")
    med = {k2: statistics.median(v) for k2, v in times.items()}
    return {"tickets": n, "naive_tickets": k, "times": times, "median": med, "profile": prof}


def bench_calendar(cfg: Any) -> dict[str, Any]:
    """``benchmarks/run.py --only calendar``: 1,000,000 tickets (``--quick``: 100,000)."""
    from bench_core import _figure

    n = 100_000 if cfg.quick else 1_000_000
    res = measure(n, cfg.repeat, cfg.profile, cfg.log)
    med = res["median"]
    label = f"due times, {n:,} tickets, China 2026 calendar (two windows a day)"
    naive = med["naive"]
    note = f"floor: a per-day Python loop on {res['naive_tickets']:,} tickets, scaled"
    rows = [
        _figure(f"{label}: due_times (numpy) vs per-day loop", med["bulk"], naive, "s", TARGET, ratio_target=False, note=note),
        _figure("  due_times from Python datetimes", med["bulk_list"], naive, "s", None),
        _figure("  add_business_time, one ticket at a time", med["scalar"], naive, "s", TARGET, ratio_target=False),
        _figure("  business_times (numpy), to a later instant", med["spent"], naive, "s", None),
        _figure("  compiling the calendar (its first use)", med["compile"], float("nan"), "s", None),
    ]
    if res["profile"]:
        cfg.profiles["calendar"] = res["profile"]
    return {"rows": rows, "details": {k: v for k, v in res.items() if k != "profile"}}


BENCHMARKS = {"calendar": bench_calendar}


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
    print(f"\ndue times under one calendar (China 2026, 09:00-12:00 and 13:00-18:00), {n:,} tickets; median of {args.rounds}")
    print(f"  naive per-day loop ({res['naive_tickets']:,} tickets, scaled): {fmt_seconds(med['naive'])}")
    for key, text in (
        ("bulk", "due_times, numpy arrays"),
        ("bulk_list", "due_times, Python datetimes"),
        ("scalar", "add_business_time, one at a time"),
        ("spent", "business_times, numpy arrays"),
    ):
        print(f"  {text + ':':38} {fmt_seconds(med[key]):>9}  {med['naive'] / med[key]:.0f}x faster than the loop")
    print(f"  compiling the calendar (first use):    {fmt_seconds(med['compile']):>9}")
    print(f"  target: 1,000,000 due times in <= {TARGET:g} s")
    if res["profile"]:
        print(res["profile"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "calendar-latest.json"
    out.write_text(json.dumps({k: v for k, v in res.items()}, indent=2, default=str))
    scale = 1_000_000 / n
    return 0 if med["bulk"] * scale <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
