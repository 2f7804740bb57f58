"""Small helpers shared by the benchmarks: statistics, RSS, profiling, formatting."""

from __future__ import annotations

import cProfile
import gc
import io
import os
import pstats
import resource
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "RESULTS",
    "current_rss",
    "fmt_bytes",
    "fmt_seconds",
    "peak_rss",
    "percentile",
    "profile_call",
    "summary",
]

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation between closest ranks."""
    data = sorted(values)
    if not data:
        raise ValueError("no values")
    pos = (len(data) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p95": percentile(values, 95),
        "min": min(values),
        "max": max(values),
    }


def current_rss() -> int:
    """Resident set size of this process now, in bytes (Linux /proc; falls back to psutil, then peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        try:
            import psutil  # type: ignore[import-not-found]

            return int(psutil.Process().memory_info().rss)
        except ImportError:
            return peak_rss()


def peak_rss() -> int:
    """Peak resident set size of this process, in bytes (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if os.uname().sysname == "Darwin" else r * 1024


def fmt_seconds(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.1f} µs"


def fmt_bytes(n: float) -> str:
    if abs(n) < 100 << 10:
        return f"{n:,.0f} B"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def profile_call(fn: Callable[[], Any], out: Path, top: int = 25) -> str:
    """Run ``fn`` under cProfile; save the stats to ``out``; return the top functions by own time
    and by cumulative time as text."""
    gc.collect()
    prof = cProfile.Profile()
    prof.enable()
    try:
        fn()
    finally:
        prof.disable()
    out.parent.mkdir(parents=True, exist_ok=True)
    prof.dump_stats(str(out))
    text = io.StringIO()
    stats = pstats.Stats(prof, stream=text)
    stats.strip_dirs()
    text.write(f"--- top {top} by own time (tottime) ---\n")
    stats.sort_stats("tottime").print_stats(top)
    text.write(f"--- top {top} by cumulative time ---\n")
    stats.sort_stats("cumulative").print_stats(top)
    # pstats prints a long preamble per call; keep the tables.
    lines = [
        ln
        for ln in text.getvalue().splitlines()
        if ln.strip()
        and "function calls" not in ln
        and not ln.startswith("   Ordered by")
        and not ln.startswith("   List reduced")
    ]
    return "\n".join(lines)
