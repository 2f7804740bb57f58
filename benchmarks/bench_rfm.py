"""RFM speed targets (issue 4), each measured side by side with a hand-written floor in the same run.

    python benchmarks/bench_rfm.py                # 1,000,000 orders of 100,000 customers
    python benchmarks/bench_rfm.py --quick        # 100,000 orders of 10,000 customers, a smoke run
    python benchmarks/bench_rfm.py --only sqlite --only pandas --rounds 5 --profile

- sqlite (target <= 1.3x): ``s.analytics.rfm(as_of=...)`` on a SQLite store built with pycrm, vs one
  hand-written SQL statement (same rules, segments by CASE) on a lean table
  ``orders (customer_id, day, amount_cents)`` (the day as a day number) with an index on ``customer_id``,
  holding the same data, run with raw ``sqlite3``.
- postgres (<= 1.3x): the same on PostgreSQL (``PYCRM_BENCH_POSTGRES_URL``, default the ``pycrm_dev``
  database), the floor run with raw psycopg.
- objects (<= 1.5x): ``rfm(orders)`` over ``Order`` objects, vs a plain dict loop over
  ``(customer_id, datetime, Decimal)`` tuples.
- pandas (<= 1.5x): ``rfm(df)`` over a DataFrame, vs plain pandas: filter, groupby + agg,
  ``rank(method="min")``, segment lookup.

Rounds alternate floor and pycrm after one untimed warm-up of each; the table shows medians. Every round
checks that both sides agree. The built stores are cached under ``benchmarks/results/`` (SQLite files;
on PostgreSQL the schemas ``bench_rfm`` and ``bench_rfm_plain`` of the ``pycrm_dev`` database, created
if missing). Results go to ``benchmarks/results/rfm-latest.json`` (gitignored).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _util import RESULTS, fmt_seconds, profile_call  # noqa: E402

SEED = 20240604
DATA_VERSION = 1
AS_OF = dt.date(2023, 11, 30)  # about 5% of the orders fall after it and must not count
START = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
SPAN_DAYS = 3 * 365
BINS = 5
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/pycrm_dev"
CHUNK = 50_000

# --------------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------------


class Data:
    """Seeded orders as numpy columns: customer index, seconds since START, amount in cents."""

    def __init__(self, n_orders: int, n_customers: int, seed: int = SEED) -> None:
        import numpy as np

        rng = np.random.default_rng(seed)
        weight = rng.lognormal(0.0, 1.2, n_customers)  # some customers buy far more often than others
        self.cust = rng.choice(n_customers, size=n_orders, p=weight / weight.sum())
        self.secs = rng.integers(0, SPAN_DAYS * 86_400, n_orders)
        self.cents = np.maximum(1, rng.lognormal(5.0, 1.0, n_orders) * 100).astype(np.int64)
        self.n_orders, self.n_customers = n_orders, n_customers
        self.ids = [f"cus-{i:06d}" for i in range(n_customers)]
        self.key = f"{n_orders}-{n_customers}-s{seed}-d{DATA_VERSION}"

    def rows(self) -> list[tuple[str, dt.datetime, Decimal]]:
        ids, td = self.ids, dt.timedelta
        return [
            (ids[c], START + td(seconds=s), Decimal(a).scaleb(-2))
            for c, s, a in zip(self.cust.tolist(), self.secs.tolist(), self.cents.tolist())
        ]

    def frame(self) -> Any:
        import numpy as np
        import pandas as pd

        return pd.DataFrame(
            {
                "customer_id": np.array(self.ids, dtype=object)[self.cust],
                "occurred_at": pd.Timestamp(START) + pd.to_timedelta(self.secs, unit="s"),
                "amount": self.cents / 100,
                "currency": "CNY",
            }
        )


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def segment_case(col_r: str = "r", col_f: str = "f") -> str:
    """The segment map as a SQL CASE (first match wins), for the hand-written floors."""
    from pycrm.analytics import DEFAULT_SEGMENTS

    arms = " ".join(
        f"WHEN {col_r} BETWEEN {s.r[0]} AND {s.r[1]} AND {col_f} BETWEEN {s.f[0]} AND {s.f[1]} THEN {_quote(s.name)}"
        for s in DEFAULT_SEGMENTS
    )
    return f"CASE {arms} END"


def floor_sql(dialect: str) -> str:
    """RFM by the contract's rules in one statement, as one would write it by hand."""
    if dialect == "sqlite":
        recency = "CAST(julianday(:ref) - julianday(substr(last_at, 1, 10)) AS INTEGER)"
        cut = ":cutoff"
    else:
        recency = "(CAST(:ref AS date) - CAST(last_at AS date))"
        cut = "CAST(:cutoff AS timestamp)"
    return f"""
WITH agg AS (
  SELECT customer_id, MAX(occurred_at) AS last_at, COUNT(*) AS frequency, SUM(amount_e4) AS monetary_e4
  FROM orders WHERE occurred_at <= {cut} GROUP BY customer_id
), x AS (
  SELECT customer_id, {recency} AS recency_days, frequency, monetary_e4 FROM agg
), s AS (
  SELECT customer_id, recency_days, frequency, monetary_e4,
         1 + :bins * (RANK() OVER (ORDER BY recency_days DESC) - 1) / COUNT(*) OVER () AS r,
         1 + :bins * (RANK() OVER (ORDER BY frequency) - 1) / COUNT(*) OVER () AS f,
         1 + :bins * (RANK() OVER (ORDER BY monetary_e4) - 1) / COUNT(*) OVER () AS m
  FROM x
)
SELECT customer_id, recency_days, frequency, monetary_e4, r, f, m, {segment_case()} AS segment
FROM s ORDER BY customer_id"""


def lean_floor_sql() -> str:
    """RFM over the lean SQLite table: days as integers (days since 1970-01-01), amounts in cents."""
    return f"""
WITH agg AS (
  SELECT customer_id, MAX(day) AS last_day, COUNT(*) AS frequency, SUM(amount_cents) AS monetary_cents
  FROM orders WHERE day <= :day GROUP BY customer_id
), s AS (
  SELECT customer_id, :day - last_day AS recency_days, frequency, monetary_cents,
         1 + :bins * (RANK() OVER (ORDER BY last_day) - 1) / COUNT(*) OVER () AS r,
         1 + :bins * (RANK() OVER (ORDER BY frequency) - 1) / COUNT(*) OVER () AS f,
         1 + :bins * (RANK() OVER (ORDER BY monetary_cents) - 1) / COUNT(*) OVER () AS m
  FROM agg
)
SELECT customer_id, recency_days, frequency, monetary_cents * 100, r, f, m, {segment_case()} AS segment
FROM s ORDER BY customer_id"""


def _cutoff_text() -> str:
    return f"{AS_OF.isoformat()} 23:59:59.999999"


def as_tuples(scores: Sequence[Any]) -> list[tuple[Any, ...]]:
    """pycrm scores in the floors' shape: monetary in 1/10,000 units."""
    return [(s.customer_id, s.recency_days, s.frequency, int(s.monetary.scaleb(4)), s.r, s.f, s.m, s.segment) for s in scores]


# --------------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------------


def side_by_side(
    name: str,
    floor: Callable[[], Any],
    ours: Callable[[], Any],
    check: Callable[[Any, Any], None],
    rounds: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Warm both sides once (checking they agree), then alternate floor and pycrm for ``rounds`` rounds."""
    check(floor(), ours())
    ft: list[float] = []
    pt: list[float] = []
    for k in range(rounds):
        for _side, fn, out in (
            (("floor", floor, ft), ("pycrm", ours, pt)) if k % 2 == 0 else (("pycrm", ours, pt), ("floor", floor, ft))
        ):
            gc.collect()
            t = time.perf_counter()
            res = fn()
            out.append(time.perf_counter() - t)
            del res
        log(f"  {name} round {k + 1}: floor {fmt_seconds(ft[-1])}, pycrm {fmt_seconds(pt[-1])}")
    return {"floor": ft, "pycrm": pt, "floor_median": statistics.median(ft), "pycrm_median": statistics.median(pt)}


def _same(label: str) -> Callable[[Any, Any], None]:
    def check(floor: Any, ours: Any) -> None:
        if floor != ours:
            diff = next((i for i, (a, b) in enumerate(zip(floor, ours)) if a != b), min(len(floor), len(ours)))
            raise AssertionError(f"{label}: pycrm and the floor disagree at row {diff} (of {len(floor)} / {len(ours)})")

    return check


# --------------------------------------------------------------------------------------------------
# stores
# --------------------------------------------------------------------------------------------------


def fill_pycrm(crm: Any, data: Data, log: Callable[[str], None]) -> None:
    import pycrm

    t0 = time.perf_counter()
    with crm.session() as s:
        s.customers.add_many(pycrm.Customer(f"Customer {i}", id=cid) for i, cid in enumerate(data.ids))
    rows = data.rows()
    for lo in range(0, len(rows), CHUNK):
        with crm.session() as s:
            s.orders.add_many(pycrm.Order(c, at, pycrm.Money(a, "CNY")) for c, at, a in rows[lo : lo + CHUNK])
        done = min(lo + CHUNK, len(rows))
        log(f"  stored {done:,}/{len(rows):,} orders ({time.perf_counter() - t0:.0f} s)")


def sqlite_stores(data: Data, log: Callable[[str], None]) -> tuple[Path, Path]:
    """(pycrm store, plain table) files for ``data``, built once and cached."""
    import pycrm

    RESULTS.mkdir(parents=True, exist_ok=True)
    store, plain = RESULTS / f"rfm-store-{data.key}.db", RESULTS / f"rfm-lean-{data.key}.db"
    if not store.exists():
        log(f"sqlite: building the pycrm store {store.name} (cached for later runs)")
        tmp = Path(f"{store}.building")
        for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            p.unlink(missing_ok=True)
        crm = pycrm.open(f"sqlite:///{tmp}")
        try:
            fill_pycrm(crm, data, log)
        finally:
            crm.close()
        con = sqlite3.connect(tmp)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("ANALYZE")
        con.close()
        os.replace(tmp, store)
    if not plain.exists():
        log(f"sqlite: building the lean table {plain.name}")
        tmp = Path(f"{plain}.building")
        tmp.unlink(missing_ok=True)
        con = sqlite3.connect(tmp)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("CREATE TABLE orders (customer_id TEXT NOT NULL, day INTEGER NOT NULL, amount_cents INTEGER NOT NULL)")
        con.execute("CREATE INDEX ix_orders_customer_id ON orders (customer_id)")
        epoch = dt.date(1970, 1, 1).toordinal()
        con.executemany(
            "INSERT INTO orders (customer_id, day, amount_cents) VALUES (?, ?, ?)",
            ((c, at.date().toordinal() - epoch, int(a.scaleb(2))) for c, at, a in data.rows()),
        )
        con.commit()
        con.execute("ANALYZE")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        os.replace(tmp, plain)
    return store, plain


def bench_sqlite(data: Data, cfg: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    import pycrm

    store, plain = sqlite_stores(data, log)
    sql = lean_floor_sql()
    params = {"day": AS_OF.toordinal() - dt.date(1970, 1, 1).toordinal(), "bins": BINS}
    con = sqlite3.connect(plain)
    crm = pycrm.open(f"sqlite:///{store}")
    try:

        def floor() -> list[tuple[Any, ...]]:
            return con.execute(sql, params).fetchall()

        def ours() -> list[Any]:
            with crm.session() as s:
                return s.analytics.rfm(as_of=AS_OF)

        res = side_by_side("sqlite", floor, ours, lambda a, b: _same("sqlite")(a, as_tuples(b)), cfg.rounds, log)
        res["plan_pycrm"] = _sqlite_plan(store, crm)
        res["plan_floor"] = [r[3] for r in con.execute("EXPLAIN QUERY PLAN " + sql, params)]
        res["floor_sql"] = sql
        if cfg.profile:
            res["profile"] = profile_call(ours, RESULTS / "rfm_sqlite.prof")
    finally:
        crm.close()
        con.close()
    return res


def _sqlite_plan(store: Path, crm: Any) -> list[str]:
    from pycrm.analytics._rfm import _cutoff
    from pycrm.storage.sql import _rfm

    cutoff, ref = _cutoff(AS_OF)
    stmt = _rfm.rfm_statement("sqlite", cutoff, ref, BINS)
    import sqlalchemy as sa

    eng = sa.create_engine(f"sqlite:///{store}")
    try:
        compiled = stmt.compile(eng, compile_kwargs={"literal_binds": True})
        with eng.connect() as conn:
            return [r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled))]
    finally:
        eng.dispose()


def bench_postgres(data: Data, cfg: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    import psycopg
    import sqlalchemy as sa

    import pycrm

    url = os.environ.get("PYCRM_BENCH_POSTGRES_URL", PG_DEFAULT)
    sa_url = sa.make_url(url)
    if sa_url.database in (None, "", "test"):
        raise SystemExit("refusing to benchmark on the 'test' database (the test suite empties it); use pycrm_dev")
    _ensure_database(sa_url)
    libpq = sa_url.set(drivername="postgresql").render_as_string(hide_password=False)
    raw = psycopg.connect(libpq, autocommit=True)
    try:
        raw.execute("CREATE SCHEMA IF NOT EXISTS bench_rfm")
        raw.execute("CREATE SCHEMA IF NOT EXISTS bench_rfm_plain")
        raw.execute("CREATE TABLE IF NOT EXISTS bench_rfm_plain.meta (key text PRIMARY KEY, value text)")
        have = dict(raw.execute("SELECT key, value FROM bench_rfm_plain.meta").fetchall())
        engine = sa.create_engine(sa_url, connect_args={"options": "-csearch_path=bench_rfm"})
        if have.get("store") != data.key:
            log(f"postgres: building the pycrm store in schema bench_rfm ({data.key})")
            raw.execute("DROP SCHEMA bench_rfm CASCADE")
            raw.execute("CREATE SCHEMA bench_rfm")
            crm = pycrm.open(engine)
            try:
                fill_pycrm(crm, data, log)
            finally:
                crm.close()
            raw.execute("ANALYZE bench_rfm.orders")
            raw.execute(
                "INSERT INTO bench_rfm_plain.meta VALUES ('store', %s) ON CONFLICT (key) DO UPDATE SET value = %s",
                (data.key, data.key),
            )
        if have.get("plain") != data.key:
            log("postgres: building the plain table bench_rfm_plain.orders")
            raw.execute("DROP TABLE IF EXISTS bench_rfm_plain.orders")
            raw.execute(
                'CREATE TABLE bench_rfm_plain.orders (id bigserial PRIMARY KEY, customer_id text COLLATE "C" NOT NULL,'
                " occurred_at timestamp NOT NULL, amount_e4 bigint NOT NULL, currency char(3) NOT NULL)"
            )
            with raw.cursor().copy(
                "COPY bench_rfm_plain.orders (customer_id, occurred_at, amount_e4, currency) FROM STDIN"
            ) as cp:
                for c, at, a in data.rows():
                    cp.write_row((c, at.replace(tzinfo=None), int(a.scaleb(4)), "CNY"))
            raw.execute("CREATE INDEX ON bench_rfm_plain.orders (customer_id, occurred_at)")
            raw.execute("ANALYZE bench_rfm_plain.orders")
            raw.execute(
                "INSERT INTO bench_rfm_plain.meta VALUES ('plain', %s) ON CONFLICT (key) DO UPDATE SET value = %s",
                (data.key, data.key),
            )
        raw.execute("SET search_path = bench_rfm_plain")
        sql = floor_sql("postgresql").replace(":ref", "%(ref)s").replace(":cutoff", "%(cutoff)s").replace(":bins", "%(bins)s")
        params = {"ref": AS_OF.isoformat(), "cutoff": _cutoff_text(), "bins": BINS}
        crm = pycrm.open(engine)
        try:

            def floor() -> list[tuple[Any, ...]]:
                return raw.execute(sql, params).fetchall()  # type: ignore[arg-type]

            def ours() -> list[Any]:
                with crm.session() as s:
                    return s.analytics.rfm(as_of=AS_OF)

            res = side_by_side("postgres", floor, ours, lambda a, b: _same("postgres")(a, as_tuples(b)), cfg.rounds, log)
            res["floor_sql"] = sql
            res["plan_floor"] = [r[0] for r in raw.execute("EXPLAIN " + sql, params).fetchall()]  # type: ignore[arg-type]
            if cfg.profile:
                res["profile"] = profile_call(ours, RESULTS / "rfm_postgres.prof")
        finally:
            crm.close()
            engine.dispose()
    finally:
        raw.close()
    return res


def _ensure_database(url: Any) -> None:
    import psycopg

    try:
        psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False)).close()
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
        admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{url.database}"')


# --------------------------------------------------------------------------------------------------
# pure functions
# --------------------------------------------------------------------------------------------------


def plain_rfm(rows: Sequence[tuple[str, dt.datetime, Decimal]], as_of: dt.date, bins: int = BINS) -> list[tuple[Any, ...]]:
    """The floor of the object path: the contract's rules as a plain dict loop (no checks)."""
    from pycrm.analytics import DEFAULT_SEGMENTS, segment_of

    cutoff = dt.datetime.combine(as_of, dt.time.max, dt.UTC)
    agg: dict[str, list[Any]] = {}
    for cid, at, amount in rows:
        if at > cutoff:
            continue
        a = agg.get(cid)
        if a is None:
            agg[cid] = [at, 1, amount]
        else:
            if at > a[0]:
                a[0] = at
            a[1] += 1
            a[2] += amount
    ids = sorted(agg)
    n = len(ids)
    ref = as_of.toordinal()
    rec = [ref - agg[c][0].toordinal() for c in ids]
    freq = [agg[c][1] for c in ids]
    mon = [agg[c][2] for c in ids]

    def below(values: list[Any]) -> list[int]:  # how many values are smaller, for rank(method="min")
        order = sorted(range(n), key=values.__getitem__)
        out, cur, prev = [0] * n, 0, None
        for pos, k in enumerate(order):
            if pos == 0 or values[k] != prev:
                cur, prev = pos, values[k]
            out[k] = cur
        return out

    older, fewer, less = below([-x for x in rec]), below(freq), below(mon)
    table = {(r, f): segment_of(r, f, DEFAULT_SEGMENTS) for r in range(1, bins + 1) for f in range(1, bins + 1)}
    out = []
    for k, cid in enumerate(ids):
        r, f, m = 1 + bins * older[k] // n, 1 + bins * fewer[k] // n, 1 + bins * less[k] // n
        out.append((cid, rec[k], freq[k], mon[k], r, f, m, table[r, f]))
    return out


def bench_objects(data: Data, cfg: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    import pycrm
    from pycrm.analytics import rfm

    rows = data.rows()
    t0 = time.perf_counter()
    orders = [pycrm.Order(c, at, pycrm.Money(a, "CNY")) for c, at, a in rows]
    log(f"objects: built {len(orders):,} Order objects in {time.perf_counter() - t0:.0f} s")

    def check(floor: Any, ours: Any) -> None:
        _same("objects")(
            floor, [(s.customer_id, s.recency_days, s.frequency, s.monetary, s.r, s.f, s.m, s.segment) for s in ours]
        )

    res = side_by_side("objects", lambda: plain_rfm(rows, AS_OF), lambda: rfm(orders, as_of=AS_OF), check, cfg.rounds, log)
    if cfg.profile:
        res["profile"] = profile_call(lambda: rfm(orders, as_of=AS_OF), RESULTS / "rfm_objects.prof")
    return res


def plain_pandas(df: Any, as_of: dt.date, bins: int = BINS) -> Any:
    """The floor of the DataFrame path: filter, groupby + agg, rank(method="min"), segment lookup."""
    import numpy as np
    import pandas as pd

    from pycrm.analytics import DEFAULT_SEGMENTS, segment_of

    day = pd.Timestamp(as_of, tz="UTC")
    d = df[df["occurred_at"] < day + pd.Timedelta(days=1)]
    g = d.groupby("customer_id").agg(last=("occurred_at", "max"), frequency=("occurred_at", "size"), monetary=("amount", "sum"))
    n = len(g)
    g["recency_days"] = (day - g["last"].dt.floor("D")).dt.days
    g["r"] = 1 + bins * (g["recency_days"].rank(method="min", ascending=False).astype("int64") - 1) // n
    g["f"] = 1 + bins * (g["frequency"].rank(method="min").astype("int64") - 1) // n
    g["m"] = 1 + bins * (g["monetary"].rank(method="min").astype("int64") - 1) // n
    table = np.array([[segment_of(r, f, DEFAULT_SEGMENTS) for f in range(bins + 1)] for r in range(bins + 1)], dtype=object)
    g["segment"] = table[g["r"].to_numpy(), g["f"].to_numpy()]
    return g


def bench_pandas(data: Data, cfg: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    from pycrm.analytics import rfm

    df = data.frame()

    def check(floor: Any, ours: Any) -> None:
        want = list(
            zip(floor.index, floor["recency_days"], floor["frequency"], floor["r"], floor["f"], floor["m"], floor["segment"])
        )
        _same("pandas")(want, [(s.customer_id, s.recency_days, s.frequency, s.r, s.f, s.m, s.segment) for s in ours])

    res = side_by_side("pandas", lambda: plain_pandas(df, AS_OF), lambda: rfm(df, as_of=AS_OF), check, cfg.rounds, log)
    if cfg.profile:
        res["profile"] = profile_call(lambda: rfm(df, as_of=AS_OF), RESULTS / "rfm_pandas.prof")
    return res


BENCHMARKS: dict[str, tuple[str, float, Callable[[Data, argparse.Namespace, Callable[[str], None]], dict[str, Any]]]] = {
    "sqlite": ("s.analytics.rfm, SQLite vs raw sqlite3 SQL on a lean table", 1.3, bench_sqlite),
    "postgres": ("s.analytics.rfm, PostgreSQL vs raw psycopg SQL", 1.3, bench_postgres),
    "objects": ("rfm(Order objects) vs plain dict loop", 1.5, bench_objects),
    "pandas": ("rfm(DataFrame) vs pandas groupby + rank", 1.5, bench_pandas),
}


def table(rows: list[dict[str, Any]]) -> str:
    head = ("figure", "pycrm", "floor", "ratio", "target", "")
    body = [
        (
            r["figure"],
            fmt_seconds(r["pycrm"]),
            fmt_seconds(r["floor"]),
            f"{r['ratio']:.2f}x",
            f"<= {r['target']:g}x",
            "ok" if r["ok"] else "MISSED",
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
    ap.add_argument("--quick", action="store_true", help="100,000 orders of 10,000 customers")
    ap.add_argument("--orders", type=int, help="orders (default 1,000,000; quick 100,000)")
    ap.add_argument("--customers", type=int, help="customers (default 100,000; quick 10,000)")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per side (default 3)")
    ap.add_argument("--only", action="append", metavar="NAME", help=f"one of {', '.join(BENCHMARKS)} (repeatable)")
    ap.add_argument("--profile", action="store_true", help="cProfile the pycrm side after timing")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args(argv)
    names = [n for o in (args.only or []) for n in o.split(",") if n] or list(BENCHMARKS)
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        ap.error(f"unknown benchmark {', '.join(sorted(unknown))}")
    n_orders = args.orders or (100_000 if args.quick else 1_000_000)
    n_customers = args.customers or (10_000 if args.quick else 100_000)

    def log(msg: str) -> None:
        print(msg, flush=True)

    import pycrm

    env = f"Python {sys.version.split()[0]} · SQLite {sqlite3.sqlite_version} · {os.cpu_count()} CPUs"
    log(f"pycrm {pycrm.__version__} · {env} · load {os.getloadavg()}")
    log(f"data: {n_orders:,} orders of {n_customers:,} customers, seed {SEED}, as_of {AS_OF}")
    data = Data(n_orders, n_customers)
    results: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    failed = False
    for name in names:
        label, target, fn = BENCHMARKS[name]
        try:
            res = fn(data, args, log)
        except Exception as exc:  # one broken side must not hide the others
            import traceback

            failed = True
            results[name] = {"error": traceback.format_exc()}
            log(f"{name}: FAILED: {type(exc).__name__}: {exc}")
            continue
        ratio = res["pycrm_median"] / res["floor_median"]
        rows.append(
            {
                "figure": f"{label} (median of {args.rounds})",
                "pycrm": res["pycrm_median"],
                "floor": res["floor_median"],
                "ratio": ratio,
                "target": target,
                "ok": ratio <= target,
            }
        )
        results[name] = res
    text = table(rows) if rows else "(no figures)"
    log(f"\nRFM benchmarks: {n_orders:,} orders, {n_customers:,} customers; floor and pycrm alternating; lower is better\n")
    log(text)
    for name, res in results.items():
        if "profile" in res:
            log(f"\n=== profile: {name} (pycrm side) ===\n{res['profile']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "orders": n_orders,
        "customers": n_customers,
        "seed": SEED,
        "as_of": AS_OF.isoformat(),
        "rounds": args.rounds,
        "loadavg": os.getloadavg(),
        "table": text,
        "figures": rows,
        "results": results,
    }
    out = RESULTS / "rfm-latest.json"
    out.write_text(json.dumps(doc, indent=2, default=str))
    log(f"\nresults: {out}")
    if failed:
        return 2
    return 1 if args.check and not all(r["ok"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
