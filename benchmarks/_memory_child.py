"""Child process for the memory benchmark: ``python _memory_child.py {pycrm|plain} N SEED``.

Loads N customers, then prints one JSON object: RSS growth, peak RSS, the bytes of the distinct ``str``
objects the store holds, and what is left per customer. Run in its own process so RSS is isolated.

- ``pycrm``: ``pycrm.open("memory://")``, customers added with ``add_many`` in sessions of 50,000.
- ``plain``: the floor. The same normalized strings held in the leanest plain-Python layout that still
  answers the same questions: ``{id: (id, version, created, updated, name, kind, status, (email,), (phone,))}``
  plus ``{email: id}`` and ``{phone: id}`` indexes. No validation; nothing else.
"""

from __future__ import annotations

import gc
import itertools
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import customer_rows
from _util import current_rss, peak_rss

CHUNK = 50_000


def _walk(roots: list[Any]) -> tuple[int, int, Counter[str], Counter[str]]:
    """Distinct objects reachable from ``roots`` (types, modules and functions excluded):
    (str bytes, str count, getsizeof bytes per other type, count per other type)."""
    seen: set[int] = set()
    stack = list(roots)
    str_bytes = str_count = 0
    sizes: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    skip = (type, type(sys), type(_walk), type(len))
    getsizeof, get_referents = sys.getsizeof, gc.get_referents
    while stack:
        o = stack.pop()
        i = id(o)
        if i in seen:
            continue
        seen.add(i)
        if type(o) is str:
            str_bytes += getsizeof(o)
            str_count += 1
            continue
        if isinstance(o, skip):
            continue
        name = type(o).__name__
        sizes[name] += getsizeof(o)
        counts[name] += 1
        stack.extend(get_referents(o))
    return str_bytes, str_count, sizes, counts


def load_pycrm(n: int, seed: int) -> tuple[Any, list[Any]]:
    import pycrm

    crm = pycrm.open("memory://", default_region="CN")
    rows = customer_rows(n, seed)
    Customer = pycrm.Customer
    left = n
    while left:
        take = min(CHUNK, left)
        left -= take
        with crm.session() as s:
            s.customers.add_many(
                [
                    Customer(name, kind=kind, emails=[email], phones=[phone])
                    for name, kind, email, phone in itertools.islice(rows, take)
                ]
            )
    table = crm.store.table(pycrm.Customer)
    return crm, [table.rows, table.indexes]


def load_plain(n: int, seed: int) -> tuple[Any, list[Any]]:
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    rows: dict[str, tuple[Any, ...]] = {}
    by_email: dict[str, str] = {}
    by_phone: dict[str, str] = {}
    for i, (name, kind, email, phone) in enumerate(customer_rows(n, seed)):
        cid = f"01J{i:023d}"
        e = email.lower()
        digits = "".join(ch for ch in phone if ch.isdigit())
        if digits.startswith("0086"):
            digits = digits[4:]
        elif digits.startswith("86") and len(digits) == 13:
            digits = digits[2:]
        p = "+86" + digits
        rows[cid] = (cid, 1, now, now, name, kind, "lead", (e,), (p,))
        by_email[e] = cid
        by_phone[p] = cid
    return None, [rows, by_email, by_phone]


def main() -> None:
    mode, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    import pycrm  # noqa: F401  (both modes: imports are not part of the growth)

    gc.collect()
    rss0 = current_rss()
    t0 = time.perf_counter()
    keep, roots = (load_pycrm if mode == "pycrm" else load_plain)(n, seed)
    load_s = time.perf_counter() - t0
    gc.collect()
    rss1 = current_rss()
    peak = peak_rss()
    str_bytes, str_count, sizes, counts = _walk(roots)
    growth = rss1 - rss0
    top = sorted(sizes.items(), key=lambda kv: -kv[1])[:12]
    print(
        json.dumps(
            {
                "mode": mode,
                "n": n,
                "rss_before": rss0,
                "rss_after": rss1,
                "rss_growth": growth,
                "peak_rss": peak,
                "peak_growth": peak - rss0,
                "load_seconds": load_s,
                "str_bytes": str_bytes,
                "str_count": str_count,
                "bytes_per_customer": growth / n,
                "beyond_strings_per_customer": (growth - str_bytes) / n,
                "objects_per_customer": {k: round(counts[k] / n, 3) for k, _ in top},
                "getsizeof_per_customer": {k: round(v / n, 1) for k, v in top},
            }
        )
    )
    del keep


if __name__ == "__main__":
    main()
