"""Sales, customer and service reports (issue 4): pushed down into SQL vs streaming entities, side by side.

    python benchmarks/bench_reports.py                    # 1,000,000 orders / 100,000 customers / 50,000 deals and tickets
    python benchmarks/bench_reports.py --quick            # 100,000 orders / 10,000 customers / 5,000 deals and tickets
    python benchmarks/bench_reports.py --orders 200000 --customers 20000 --deals 10000 --tickets 10000 --only sqlite

For every ``s.analytics`` report (forecast with a dated rate table, funnel, win rate, sales cycle,
customer activity, top customers, the sales series, ticket summary, service times, the CLV purchase summary) the table
shows the median time of the pushed-down report and of the streaming path (the pure function over
``repository.iter()``, what the memory adapter does) and their ratio; every round checks both agree.
SQLite stores are built under ``benchmarks/results/``; PostgreSQL uses ``PYCRM_BENCH_POSTGRES_URL``
(default ``postgresql+psycopg://postgres@127.0.0.1:5432/pycrm_bench``), emptied first. Results go to
``benchmarks/results/reports-latest.json`` (gitignored).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from _util import RESULTS, fmt_seconds  # noqa: E402

import pycrm  # noqa: E402
from pycrm import analytics as pure  # noqa: E402

UTC = dt.UTC
T0 = dt.datetime(2022, 1, 1, tzinfo=UTC)
DAYS = 900
OPEN = ["prospecting", "qualification", "needs_analysis", "proposal", "negotiation"]
RATES = pure.RateTable(
    "CNY", [("USD", dt.date(2021, 12, 1) + dt.timedelta(days=30 * k), Decimal("7.1") + Decimal(k) / 100) for k in range(32)]
)
AS_OF = T0 + dt.timedelta(days=DAYS)
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/pycrm_bench"


def build(crm: pycrm.CRM, cfg: argparse.Namespace, log: Callable[[str], None]) -> None:
    rng = random.Random(20240601)
    started = time.perf_counter()
    with crm.session() as s:
        ids = [f"c{i:07d}" for i in range(cfg.customers)]
        for k in range(0, cfg.customers, 20000):
            s.customers.add_many([pycrm.Customer(f"Customer {i}", id=i) for i in ids[k : k + 20000]])
    batch = 50000
    for k in range(0, cfg.orders, batch):
        with crm.session() as s:
            s.orders.add_many(
                [
                    pycrm.Order(
                        ids[int(rng.paretovariate(1.2) * 7) % cfg.customers],
                        T0 + dt.timedelta(minutes=rng.randrange(DAYS * 1440)),
                        pycrm.Money(Decimal(rng.randrange(100, 500000)).scaleb(-2), "CNY"),
                    )
                    for _ in range(min(batch, cfg.orders - k))
                ]
            )
    with crm.session() as s:
        deals = []
        for i in range(cfg.deals):
            created = T0 + dt.timedelta(minutes=rng.randrange((DAYS - 60) * 1440))
            close = (created + dt.timedelta(days=rng.randrange(10, 120))).date() if rng.random() < 0.8 else None
            opp = pycrm.Opportunity(
                ids[rng.randrange(cfg.customers)],
                f"Deal {i}",
                pycrm.Money(Decimal(rng.randrange(1000, 10_000_000)).scaleb(-2), "USD" if rng.random() < 0.3 else "CNY"),
                expected_close=close,
                owner_id=f"u{rng.randrange(20)}",
                created_at=created,
            )
            at = created
            for _ in range(rng.randrange(4)):
                at += dt.timedelta(hours=rng.randrange(1, 400))
                stage = rng.choice(OPEN)
                if stage != opp.stage:
                    opp.move_to(stage, at=at)
            end = rng.random()
            if end < 0.3:
                opp.win(at=at + dt.timedelta(days=rng.randrange(1, 30)))
            elif end < 0.55:
                opp.lose("price", at=at + dt.timedelta(days=rng.randrange(1, 30)))
            deals.append(opp)
        s.opportunities.add_many(deals)
    with crm.session() as s:
        tickets = []
        for _ in range(cfg.tickets):
            created = T0 + dt.timedelta(minutes=rng.randrange(DAYS * 1440))
            t = pycrm.Ticket(
                ids[rng.randrange(cfg.customers)],
                "help",
                priority=rng.choice(["low", "normal", "high", "urgent"]),
                created_at=created,
            )
            at = created
            for status in ("open", "resolved", "closed")[: rng.randrange(4)]:
                at += dt.timedelta(minutes=rng.randrange(5, 4000))
                t.move_to(status, at=at)
            tickets.append(t)
        s.tickets.add_many(tickets)
    log(f"  built in {time.perf_counter() - started:.0f} s")


def reports(s: Any) -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    a = s.analytics

    def it(repo: Any) -> Any:
        return repo.iter(batch_size=5000)

    return {
        "forecast (rates, by owner)": (
            lambda: a.forecast(rates=RATES, by="owner"),
            lambda: pure.forecast(it(s.opportunities), rates=RATES, by="owner"),
        ),
        "funnel": (lambda: a.funnel(), lambda: pure.funnel(it(s.opportunities))),
        "win_rate": (lambda: a.win_rate(), lambda: pure.win_rate(it(s.opportunities))),
        "sales_cycle": (lambda: a.sales_cycle(), lambda: pure.sales_cycle(it(s.opportunities))),
        "customer_activity": (lambda: a.customer_activity(), lambda: pure.customer_activity(it(s.orders))),
        "top_customers (rates)": (
            lambda: [(r.customer_id, r.revenue) for r in a.top_customers(n=20, rates=RATES)],
            lambda: [(r.customer_id, r.revenue) for r in pure.top_customers(it(s.orders), n=20, rates=RATES)],
        ),
        "sales_series (month, rates)": (
            lambda: a.sales_series(rates=RATES),
            lambda: pure.sales_series(it(s.orders), rates=RATES),
        ),
        "sales_series (week, CNY)": (
            lambda: a.sales_series(period="week", where={"currency": "CNY"}),
            lambda: pure.sales_series(s.orders.iter({"currency": "CNY"}, batch_size=5000), period="week"),
        ),
        "ticket_summary": (
            lambda: a.ticket_summary(by=("status", "priority")),
            lambda: pure.ticket_summary(it(s.tickets), by=("status", "priority")),
        ),
        "service_times": (lambda: a.service_times(as_of=AS_OF), lambda: pure.service_times(it(s.tickets), as_of=AS_OF)),
        "purchase_summary (CLV)": (
            lambda: a.purchase_summary(calibration_end=AS_OF),
            lambda: pure.purchase_summary(it(s.orders), calibration_end=AS_OF),
        ),
    }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def run(url: str, label: str, cfg: argparse.Namespace, log: Callable[[str], None]) -> list[dict[str, Any]]:
    log(f"{label}: building {cfg.orders:,} orders, {cfg.customers:,} customers, {cfg.deals:,} deals, {cfg.tickets:,} tickets")
    rows = []
    with pycrm.open(url) as crm:
        build(crm, cfg, log)
        with crm.session() as s:
            for name, (pushed, streamed) in reports(s).items():
                times: dict[str, list[float]] = {"pushed": [], "streamed": []}
                for _ in range(cfg.rounds):
                    tp, a = timed(pushed)
                    ts, b = timed(streamed)
                    if list(a) != list(b):
                        raise AssertionError(f"{label} {name}: pushed-down and streamed results differ")
                    times["pushed"].append(tp)
                    times["streamed"].append(ts)
                p, st = statistics.median(times["pushed"]), statistics.median(times["streamed"])
                rows.append({"store": label, "report": name, "pushed_s": p, "streamed_s": st, "speedup": st / p if p else None})
                log(f"  {name:28} pushed {fmt_seconds(p):>9}  streamed {fmt_seconds(st):>9}  x{st / p:6.1f}")
    return rows


def _reset_postgres(url: str) -> None:
    import sqlalchemy as sa

    target = sa.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{target.database}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
    admin.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--orders", type=int)
    ap.add_argument("--customers", type=int)
    ap.add_argument("--deals", type=int)
    ap.add_argument("--tickets", type=int)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", action="append", choices=["sqlite", "postgres"])
    cfg = ap.parse_args(argv)
    scale = 10 if cfg.quick else 1
    cfg.orders = cfg.orders or 1_000_000 // scale
    cfg.customers = cfg.customers or 100_000 // scale
    cfg.deals = cfg.deals or 50_000 // scale
    cfg.tickets = cfg.tickets or 50_000 // scale
    only = cfg.only or ["sqlite", "postgres"]
    RESULTS.mkdir(parents=True, exist_ok=True)

    def log(text: str) -> None:
        print(text, flush=True)

    rows: list[dict[str, Any]] = []
    if "sqlite" in only:
        db = RESULTS / f"reports-{cfg.orders}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        rows += run(f"sqlite:///{db}", "sqlite", cfg, log)
    if "postgres" in only:
        url = os.environ.get("PYCRM_BENCH_POSTGRES_URL", DEFAULT_PG)
        _reset_postgres(url)
        rows += run(url, "postgres", cfg, log)
    sizes = {k: getattr(cfg, k) for k in ("orders", "customers", "deals", "tickets", "rounds")}
    (RESULTS / "reports-latest.json").write_text(json.dumps({"sizes": sizes, "rows": rows}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
