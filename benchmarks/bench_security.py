"""The speed targets of issue 5 (security), each measured side by side with its baseline in the same run.

- ``scope``: ``find(where={"emails": x})`` on a 1,000,000-customer SQLite store as a ``sales`` actor who
  owns the row (scope ``owner_id == me``) and as a ``manager`` of the row's team (``owner_id == me OR
  team_id == my team``), vs the same lookup by the system actor (``crm.session()``, no scope) on the same
  file (target: median <= 1.2x). Also ``get(id)`` (a scoped get is a find on id + scope) and
  ``count(where={"status": s})`` (a scan of the customers table) scoped vs unscoped.
- ``encryption``: ``add_many`` of 100,000 customers, each with ``custom={"national_id": <18 digits>}``,
  into a fresh SQLite file with that field encrypted (``encrypted={"customers": ["custom.national_id"]}``:
  AES-256-GCM + HMAC blind index) vs the same data unencrypted, audit trail on for both (target <= 1.5x).
- ``journal``: what the audit trail costs on ``add_many`` of 100,000 customers: ``audit=True`` vs
  ``audit=False`` (the change feed is written in both), next to bench_core's raw ``sqlite3`` floor
  (validation + ``executemany`` into the same tables, no journal). Its "audit on vs raw floor" line is
  issue 2's ``add_many`` target (<= 1.5x the floor with the audit trail on), also checked by bench_core's
  ``add_many`` (audit on, said in its label).

Run through ``benchmarks/run.py --only scope,encryption,journal``. The scope store is built once through
``add_many`` (audit off, change feed on) and cached outside the checkout, in ``CACHE``
(``/tmp/pycrm-bench`` by default, ``PYCRM_BENCH_CACHE`` to move it), keyed by size, data version and
schema. Each ``bench_*`` function returns a dict with ``rows`` (figures for the table) and ``details``.
"""

from __future__ import annotations

import gc
import itertools
import math
import os
import pstats
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _data import DATA_VERSION, Row, customer_rows
from _util import RESULTS, profile_call, summary
from bench_core import (
    BUILD_CHUNK,
    SEED,
    Config,
    _empty_store_schema,
    _figure,
    _fresh,
    _time_calls,
    discover_schema,
    floor_add,
)

__all__ = ["BENCHMARKS", "CACHE", "bench_encryption", "bench_journal", "bench_scope"]

#: Where the scope store is cached (big: about 1 GiB at 1,000,000 customers).
CACHE = Path(os.environ.get("PYCRM_BENCH_CACHE") or Path(tempfile.gettempdir()) / "pycrm-bench")
#: Bump when the owners, teams, statuses or national ids given to the rows change.
SECURITY_DATA_VERSION = 1
USERS = 1_000  # owners of the customers
TEAMS = 50  # user u<k> is in team t<k % TEAMS>; a customer's team is its owner's team
STATUS_WEIGHTS = {"lead": 30, "prospect": 20, "active": 35, "inactive": 10, "churned": 5}
WARM_PER_SESSION = 20  # untimed lookups on other keys at the start of every session
PROFILE_LOOKUPS = 5_000  # profiled lookups per side (passes over one owner's rows)


def _owner(i: int) -> int:
    """The owner (0..USERS-1) of row ``i``: a fixed pseudo-random spread, independent of the store size."""
    return (i * 2_654_435_761 + 12_345) % 4_294_967_296 % USERS


def _status(rng: random.Random) -> str:
    return rng.choices(list(STATUS_WEIGHTS), weights=list(STATUS_WEIGHTS.values()))[0]


def national_ids(n: int, seed: int = SEED) -> list[str]:
    """``n`` distinct-looking 18-digit CN resident id numbers (region, birth date, sequence, check digit)."""
    rng = random.Random(seed + 5)
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    out = []
    for _ in range(n):
        body = f"{rng.randrange(110000, 660000):06d}{rng.randrange(1950, 2005)}{rng.randrange(1, 13):02d}"
        body += f"{rng.randrange(1, 29):02d}{rng.randrange(1000):03d}"
        check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]
        out.append(body + (check if check != "X" else "0"))  # digits only (an X check digit becomes 0)
    return out


# --------------------------------------------------------------------------------------------------
# 1. scope enforcement on a big store
# --------------------------------------------------------------------------------------------------


def _actor(kind: str, owner: int) -> Any:
    """The actor of one side: None (system), the row's owner (sales) or a manager of the owner's team."""
    import pycrm

    team = f"t{owner % TEAMS}"
    if kind == "system":
        return None
    if kind == "sales":
        return pycrm.User(f"Sales {owner}", f"u{owner}@example.com", roles=["sales"], team_id=team, id=f"u{owner}")
    return pycrm.User(f"Manager {team}", f"m{team}@example.com", roles=["manager"], team_id=team, id=f"m{team}")


def _scope_store_path(n: int) -> Path:
    key = _empty_store_schema(RESULTS).key()
    return CACHE / f"scope-store-{n}-d{DATA_VERSION}.{SECURITY_DATA_VERSION}-s{SEED}-{key}.db"


def build_scope_store(cfg: Config, n: int, path: Path) -> float:
    """Fill a SQLite store with ``n`` customers (bench_core's rows plus owner, team and status) through
    ``add_many`` in chunks of ``BUILD_CHUNK``, audit off (the change feed is always written)."""
    import pycrm

    Customer = pycrm.Customer
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{path}.building")
    _fresh(tmp)
    crm = pycrm.open(f"sqlite:///{tmp}", default_region="CN", audit=False)
    rng = random.Random(SEED + 3)
    t0 = time.perf_counter()
    rows = customer_rows(n, SEED)
    done = 0
    try:
        while done < n:
            chunk = list(itertools.islice(rows, BUILD_CHUNK))
            with crm.session() as s:  # inside the session: phones resolve against the store's default region
                cs = []
                for j, (name, kind, email, phone) in enumerate(chunk):
                    u = _owner(done + j)
                    cs.append(
                        Customer(
                            name,
                            kind=kind,
                            emails=[email],
                            phones=[phone],
                            owner_id=f"u{u}",
                            team_id=f"t{u % TEAMS}",
                            status=_status(rng),
                        )
                    )
                s.customers.add_many(cs)
            done += len(chunk)
            el = time.perf_counter() - t0
            cfg.log(f"  built {done:,}/{n:,} customers ({el:.0f} s, ~{el / done * (n - done):.0f} s to go)")
    finally:
        crm.close()
    con = sqlite3.connect(tmp)  # fold any WAL back in so the cached file stands alone
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    os.replace(tmp, path)
    _fresh(tmp)
    return time.perf_counter() - t0


def _scope_sample(path: Path, n: int, samples: int) -> list[tuple[int, list[tuple[str, str]], list[tuple[str, str]]]]:
    """Lookups grouped by owner: ``(owner, timed [(id, email)], warm-up [(id, email)])`` for enough seeded
    owners to give ``samples`` timed lookups, read from the store with raw sqlite3."""
    schema = discover_schema(path)
    assert schema.emails and schema.email_fk and schema.email_value
    per_owner = max(1, n // USERS)
    owners = random.Random(SEED + 4).sample(range(USERS), USERS)
    need = max(1, math.ceil(samples / max(1, per_owner - WARM_PER_SESSION)))
    con = sqlite3.connect(path)
    groups = []
    got = 0
    try:
        for u in owners[: need + 5]:
            rows = con.execute(
                f'SELECT c.id, e."{schema.email_value}" FROM "{schema.customers}" c '
                f'JOIN "{schema.emails}" e ON e."{schema.email_fk}" = c.id WHERE c.owner_id = ? ORDER BY c.id',
                (f"u{u}",),
            ).fetchall()
            random.Random(SEED + u).shuffle(rows)
            warm, timed = rows[:WARM_PER_SESSION], rows[WARM_PER_SESSION:][: samples - got]
            if timed:
                groups.append((u, timed, warm))
                got += len(timed)
            if got >= samples:
                break
    finally:
        con.close()
    return groups


def _rotated(items: Sequence[str], k: int) -> list[str]:
    k %= len(items)
    return [*items[k:], *items[:k]]


def _find_loop(session: Any, emails: Sequence[str], reps: int) -> Callable[[], None]:
    find = session.customers.find

    def run() -> None:
        for _ in range(reps):
            for e in emails:
                find(where={"emails": e})

    return run


def _profile_diff(base: Callable[[], Any], other: Callable[[], Any], calls: int, out: Path, top: int = 20) -> str:
    """cProfile both loops; list the functions whose cumulative time per lookup grew the most, in µs."""

    def run(fn: Callable[[], Any], name: str) -> dict[tuple[str, int, str], tuple[int, float, float]]:
        profile_call(fn, out.with_name(f"{out.stem}-{name}.prof"))
        st = pstats.Stats(str(out.with_name(f"{out.stem}-{name}.prof")))
        return {k: (v[1], v[2], v[3]) for k, v in st.stats.items()}  # type: ignore[attr-defined]

    a, b = run(base, "system"), run(other, "scoped")
    total_a = sum(v[1] for v in a.values()) / calls * 1e6
    total_b = sum(v[1] for v in b.values()) / calls * 1e6
    lines = [
        f"profiled {calls:,} lookups per side: own time summed {total_a:.1f} µs/lookup unscoped, {total_b:.1f} µs scoped "
        f"({total_b - total_a:+.1f} µs; cProfile inflates both)",
        f"{'function':<70} {'calls/lookup':>12} {'cum µs/lookup':>14} {'own µs/lookup':>14}",
        f"{'':<70} {'sys → scoped':>12} {'sys → scoped':>14} {'sys → scoped':>14}",
    ]
    keys = set(a) | set(b)

    def grew(k: tuple[str, int, str]) -> float:
        return b.get(k, (0, 0.0, 0.0))[2] - a.get(k, (0, 0.0, 0.0))[2]

    for k in sorted(keys, key=grew, reverse=True)[:top]:
        na, ta, ca = a.get(k, (0, 0.0, 0.0))
        nb, tb, cb = b.get(k, (0, 0.0, 0.0))
        where = f"{Path(k[0]).name}:{k[1]}:{k[2]}" if k[1] else k[2]
        lines.append(
            f"{where[-70:]:<70} {na / calls:>5.1f} → {nb / calls:<5.1f} {ca / calls * 1e6:>6.1f} → {cb / calls * 1e6:<6.1f} "
            f"{ta / calls * 1e6:>6.1f} → {tb / calls * 1e6:<6.1f}"
        )
    return "\n".join(lines)


def bench_scope(cfg: Config) -> dict[str, Any]:
    import pycrm

    n = cfg.n_store
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = _scope_store_path(n)
    build_seconds = None
    if path.exists():
        cfg.log(f"scope: reusing cached {n:,}-customer store {path}")
    else:
        cfg.log(f"scope: building a {n:,}-customer store {path} (cached for later runs)")
        build_seconds = build_scope_store(cfg, n, path)
    groups = _scope_sample(path, n, cfg.samples)
    k = sum(len(t) for _, t, _ in groups)
    sides = ("system", "sales", "manager")
    cfg.log(f"scope: {k:,} lookups over {len(groups)} owners, sides {', '.join(sides)}, two passes each")
    times: dict[str, list[float]] = {f"{op}_{side}": [] for op in ("find", "get") for side in sides}
    crm = pycrm.open(f"sqlite:///{path}", default_region="CN")
    try:
        # correctness, untimed: a sales actor finds its own row, not another owner's; the system finds both
        u0, mine, _ = groups[0]
        theirs = [e for u, t, _ in groups if u != u0 for _, e in t][:1]
        with crm.session(actor=_actor("sales", u0)) as s:
            if len(s.customers.find(where={"emails": mine[0][1]})) != 1:
                raise RuntimeError("a sales actor does not find its own customer")
            if theirs and s.customers.find(where={"emails": theirs[0]}):
                raise RuntimeError("scope leak: a sales actor finds another owner's customer")

        def find_one(find: Callable[..., list[Any]]) -> Callable[[str], Any]:
            def call(e: str) -> Any:
                found = find(where={"emails": e})
                assert len(found) == 1
                return found

            return call

        # two passes; for each owner every side in a fresh session, the order rotating so that no side
        # is always the first to touch an owner's rows (pages) in a pass
        for p in range(2):
            for g, (u, timed, warm) in enumerate(groups):
                for side in _rotated(sides, g + p):
                    with crm.session(actor=_actor(side, u)) as s:
                        find, get = find_one(s.customers.find), s.customers.get
                        _time_calls(find, [e for _, e in warm])
                        _time_calls(get, [i for i, _ in warm])
                        times[f"find_{side}"] += _time_calls(find, [e for _, e in timed])
                        times[f"get_{side}"] += _time_calls(get, [i for i, _ in timed])

        # count(where={"status": s}): a scan of the table, the scope one more predicate on it
        statuses = list(STATUS_WEIGHTS)
        rounds = max(3, cfg.repeat)
        counts: dict[str, list[float]] = {side: [] for side in sides}
        seen: dict[str, dict[str, int]] = {side: {} for side in sides}
        for r in range(rounds):
            for side in _rotated(sides, r):
                with crm.session(actor=_actor(side, u0)) as s:
                    count = s.customers.count
                    count(where={"status": statuses[0]})  # warm
                    for st in statuses:
                        t = time.perf_counter()
                        seen[side][st] = count(where={"status": st})
                        counts[side].append(time.perf_counter() - t)
        if not sum(seen["sales"].values()) < sum(seen["manager"].values()) < sum(seen["system"].values()) == n:
            raise RuntimeError(f"scoped counts do not nest: {seen}")

        missed = [
            side
            for side in ("sales", "manager")
            if statistics.median(times[f"find_{side}"]) > 1.2 * statistics.median(times["find_system"])
        ]
        if cfg.profile or missed:  # where the extra time of a scoped find goes, per lookup
            emails = [e for _, e in mine]
            reps = max(1, math.ceil(PROFILE_LOOKUPS / len(emails)))
            for side in ("sales", "manager"):
                with crm.session() as s0, crm.session(actor=_actor(side, u0)) as s1:
                    base, scoped = _find_loop(s0, emails, reps), _find_loop(s1, emails, reps)
                    base(), scoped()  # warm: statement caches, pages
                    cfg.profiles[f"scope find ({side} vs system)"] = _profile_diff(
                        base, scoped, len(emails) * reps, RESULTS / f"scope-{side}.prof"
                    )
    finally:
        crm.close()

    st = {key: summary(v) for key, v in times.items()}
    cst = {side: summary(v) for side, v in counts.items()}
    label = f'find(where={{"emails": x}}) on {n:,}'
    out = [
        _figure(f"{label}, sales (own) vs system, median", st["find_sales"]["median"], st["find_system"]["median"], "s", 1.2),
        _figure("  p95", st["find_sales"]["p95"], st["find_system"]["p95"], "s", None),
        _figure(
            f"{label}, manager (team) vs system, median", st["find_manager"]["median"], st["find_system"]["median"], "s", 1.2
        ),
        _figure("  p95", st["find_manager"]["p95"], st["find_system"]["p95"], "s", None),
        _figure("  get(id), sales vs system, median", st["get_sales"]["median"], st["get_system"]["median"], "s", None),
        _figure("  get(id), manager vs system, median", st["get_manager"]["median"], st["get_system"]["median"], "s", None),
        _figure(
            f'count(where={{"status": s}}) on {n:,}, sales vs system', cst["sales"]["median"], cst["system"]["median"], "s", None
        ),
        _figure("  manager vs system", cst["manager"]["median"], cst["system"]["median"], "s", None),
    ]
    return {
        "rows": out,
        "details": {
            "n": n,
            "store": str(path),
            "build_seconds": build_seconds,
            "owners": [u for u, _, _ in groups],
            "lookups": k,
            "stats": st,
            "count_stats": cst,
            "counts_seen": seen,
        },
    }


# --------------------------------------------------------------------------------------------------
# 2. encryption and 3. journal on add_many
# --------------------------------------------------------------------------------------------------


def pycrm_add(rows: Sequence[Row], path: Path, custom: Sequence[dict[str, Any]] | None, **open_kw: Any) -> dict[str, float]:
    """Customer objects from the raw strings (plus ``custom`` values) + ``add_many`` + commit, one session."""
    import pycrm

    Customer = pycrm.Customer
    _fresh(path)
    crm = pycrm.open(f"sqlite:///{path}", default_region="CN", **open_kw)
    try:
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        with crm.session() as s:
            if custom is None:
                cs = [Customer(name, kind=kind, emails=[email], phones=[phone]) for name, kind, email, phone in rows]
            else:
                cs = [
                    Customer(name, kind=kind, emails=[email], phones=[phone], custom=c)
                    for (name, kind, email, phone), c in zip(rows, custom)
                ]
            t1 = time.perf_counter()
            s.customers.add_many(cs)
            t2 = time.perf_counter()
        t3, c3 = time.perf_counter(), time.process_time()
    finally:
        crm.close()
    del cs
    return {"total": t3 - t0, "construct": t1 - t0, "add_many": t2 - t1, "commit": t3 - t2, "cpu": c3 - c0}


def _med(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _alternate(cfg: Config, sides: dict[str, Callable[[], dict[str, float]]], what: str) -> dict[str, list[dict[str, float]]]:
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    for r in range(cfg.repeat):
        for name, fn in sides.items():
            runs[name].append(fn())
            gc.collect()
        cfg.log(f"  {what} round {r + 1}: " + ", ".join(f"{name} {runs[name][-1]['total']:.2f} s" for name in sides))
    return runs


def _keyring() -> Any:
    from pycrm.security import KeyRing

    return KeyRing({"k1": KeyRing.generate_key()}, "k1", index_key=KeyRing.generate_key())


def bench_encryption(cfg: Config) -> dict[str, Any]:
    n = cfg.n_add
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = list(customer_rows(n, SEED))
    custom = [{"national_id": x} for x in national_ids(n)]
    plain_path, sealed_path = RESULTS / "enc-plain.db", RESULTS / "enc-sealed.db"
    ring = _keyring()
    sealed_kw = {"keyring": ring, "encrypted": {"customers": ["custom.national_id"]}}
    cfg.log(
        f"encryption: add_many of {n:,} customers with custom.national_id, {cfg.repeat} rounds, plain and encrypted alternating"
    )
    try:
        runs = _alternate(
            cfg,
            {
                "plain": lambda: pycrm_add(rows, plain_path, custom),
                "encrypted": lambda: pycrm_add(rows, sealed_path, custom, **sealed_kw),
            },
            "encryption",
        )
        schema = discover_schema(sealed_path)
        con = sqlite3.connect(sealed_path)
        try:
            sealed = con.execute(f"SELECT count(*) FROM \"{schema.customers}\" WHERE custom LIKE '%enc:v1:k1:%'").fetchone()[0]
            leaked = con.execute(
                f'SELECT count(*) FROM "{schema.customers}" WHERE instr(custom, ?) > 0', (custom[0]["national_id"],)
            ).fetchone()[0]
        finally:
            con.close()
        if sealed != n or leaked:
            raise RuntimeError(f"encryption check: {sealed} of {n} rows sealed, {leaked} with the plaintext")
        if cfg.profile:
            cfg.profiles["encryption (add_many, encrypted side)"] = profile_call(
                lambda: pycrm_add(rows, sealed_path, custom, **sealed_kw), RESULTS / "encryption.prof"
            )
    finally:
        for p in (plain_path, sealed_path):
            _fresh(p)
    a, b = runs["plain"], runs["encrypted"]
    out = [
        _figure(
            f"add_many {n:,} + national_id encrypted vs plain (median of {cfg.repeat})",
            _med(b, "total"),
            _med(a, "total"),
            "s",
            1.5,
        ),
        _figure("  per customer", _med(b, "total") / n, _med(a, "total") / n, "s", None),
        _figure("  add_many call (sealing, rows, journal chunks)", _med(b, "add_many"), _med(a, "add_many"), "s", None),
        _figure("  commit (the rest of the journal)", _med(b, "commit"), _med(a, "commit"), "s", None),
    ]
    return {"rows": out, "details": {"n": n, "plain_runs": a, "encrypted_runs": b, "audit": True}}


def bench_journal(cfg: Config) -> dict[str, Any]:
    n = cfg.n_add
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = list(customer_rows(n, SEED))
    schema = _empty_store_schema(RESULTS)
    paths = {name: RESULTS / f"journal-{name}.db" for name in ("floor", "audit_off", "audit_on")}
    cfg.log(f"journal: add_many of {n:,} customers, {cfg.repeat} rounds: raw floor, audit off, audit on, alternating")
    try:
        runs = _alternate(
            cfg,
            {
                "floor": lambda: floor_add(rows, paths["floor"], schema),
                "audit_off": lambda: pycrm_add(rows, paths["audit_off"], None, audit=False),
                "audit_on": lambda: pycrm_add(rows, paths["audit_on"], None, audit=True),
            },
            "journal",
        )
        sizes = {name: p.stat().st_size for name, p in paths.items()}
        if cfg.profile:
            cfg.profiles["journal (add_many, audit on)"] = profile_call(
                lambda: pycrm_add(rows, paths["audit_on"], None, audit=True), RESULTS / "journal.prof"
            )
    finally:
        for p in paths.values():
            _fresh(p)
    f, off, on = (runs[k] for k in ("floor", "audit_off", "audit_on"))
    out = [
        _figure(
            f"add_many {n:,}: audit on vs audit off (median of {cfg.repeat})", _med(on, "total"), _med(off, "total"), "s", None
        ),
        _figure("  add_many call: audit on vs off", _med(on, "add_many"), _med(off, "add_many"), "s", None),
        _figure("  commit: audit on vs off", _med(on, "commit"), _med(off, "commit"), "s", None),
        _figure("  audit off vs raw floor (no journal)", _med(off, "total"), _med(f, "total"), "s", None),
        _figure("  audit on vs raw floor (no journal; issue 2's target)", _med(on, "total"), _med(f, "total"), "s", 1.5),
        _figure("  the same in CPU time of the process (steadier when shared)", _med(on, "cpu"), _med(f, "cpu"), "s", None),
        _figure("  audit off vs raw floor, CPU time", _med(off, "cpu"), _med(f, "cpu"), "s", None),
        _figure("  file size: audit on vs off", sizes["audit_on"], sizes["audit_off"], "B", None),
    ]
    return {"rows": out, "details": {"n": n, "runs": runs, "sizes": sizes}}


BENCHMARKS: dict[str, Callable[[Config], dict[str, Any]]] = {
    "scope": bench_scope,
    "encryption": bench_encryption,
    "journal": bench_journal,
}
