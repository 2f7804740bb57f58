"""SLA compliance pushed down (issue 23, "Speed"): 1,000,000 tickets, side by side with a hand-written SQL query.

    python benchmarks/bench_sla.py                # 1,000,000 tickets (SQLite)
    python benchmarks/bench_sla.py --quick        # 100,000 tickets, a smoke run
    python benchmarks/bench_sla.py --postgres URL # also on a PostgreSQL store (its tickets replaced by COPY)
    python benchmarks/run.py --only sla           # the same through the runner

The store: tickets created over two years (seeded), each with a realistic status history (opened after
minutes to hours of working time; a third wait on the customer once or twice (``pending``); most resolved,
some closed, a few reopened; the newest still open), assigned to 50 agents. The policy: four priority
rules (urgent 30m/4h, high 1h/8h, normal 4h/2d, low 8h/5d) on one calendar, Monday to Friday 09:00-18:00 in
Asia/Shanghai with China's 2025-2026 public holidays and make-up working days; ``pending`` pauses the clocks.

- pycrm (target <= 1.5x): ``s.analytics.sla(policy, period="month", as_of=...)`` in a session: the calendar
  compiled into the temporary days table, the status histories expanded in SQL, the report built.
- floor: one hand-written SQL statement of the same rules on the raw driver (``sqlite3``; ``psycopg`` and
  ``jsonb_array_elements`` on PostgreSQL), with
  the same calendar days table filled first (timed with it): the history expanded with ``json_each``,
  ``LEAD`` for each segment's end, the priority targets as a ``CASE``, the per-month counts and medians.
- pure (reference): ``pycrm.service.sla_compliance`` over the tickets read from the store (the read included),
  on the quick size only: it is minutes at full size.

Rounds alternate the order of the sides; the table shows medians. Every round checks that the pycrm report's
counts and medians equal the floor's (and, on the quick size, the pure function's). The SQLite store is
built once with raw inserts into the adapter's own tables and cached under ``benchmarks/results/``.
Results go to ``benchmarks/results/sla-latest.json`` (gitignored).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _util import RESULTS, fmt_seconds  # noqa: E402

SEED = 20261207
DATA_VERSION = 1
AS_OF = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
START = dt.datetime(2024, 12, 1, tzinfo=dt.UTC)
TARGET = 1.5
AGENTS = 50
TARGETS = {  # priority: (first response, resolution) in minutes of working time
    "urgent": (30, 240),
    "high": (60, 480),
    "normal": (240, 2 * 1440),
    "low": (480, 5 * 1440),
}


def policy() -> Any:
    from pycrm.automation import BusinessCalendar
    from pycrm.service import SlaPolicy, SlaTarget

    cal = BusinessCalendar.china([2024, 2025, 2026])
    return SlaPolicy(
        [SlaTarget(p, priority=p, first_response=f"{a}m", resolution=f"{b}m") for p, (a, b) in TARGETS.items()],
        calendar=cal,
    )


def _text(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")


def _iso(at: dt.datetime) -> str:
    return at.isoformat()


def tickets(n: int) -> Any:
    """Rows ``(id, created, priority, status, assignee, first_response, resolved, closed, history JSON)``."""
    rng = random.Random(SEED)
    span = (AS_OF - START).total_seconds()
    for i in range(n):
        created = START + dt.timedelta(seconds=int(rng.random() * span), microseconds=rng.randrange(1_000_000))
        priority = rng.choices(("urgent", "high", "normal", "low"), (1, 3, 10, 4))[0]
        at, status = created, "new"
        history: list[dict[str, Any]] = []
        first = resolved = closed = None

        def move(to: str, minutes: float) -> bool:
            nonlocal at, status, first, resolved, closed
            nxt = at + dt.timedelta(minutes=minutes, microseconds=rng.randrange(1_000_000))
            if nxt > AS_OF:
                return False
            history.append({"from": status, "to": to, "at": _iso(nxt), "by": None})  # noqa: B023 (called in its turn)
            at, status = nxt, to
            if to == "open":
                first = first or nxt
                resolved = None
            elif to == "resolved":
                resolved = nxt
            elif to == "closed":
                closed = nxt
            return True

        ok = move("open", rng.expovariate(1 / 180))
        for _ in range(rng.choice((0, 0, 0, 1, 1, 2))):
            ok = ok and move("pending", rng.expovariate(1 / 600)) and move("open", rng.expovariate(1 / 1500))
        ok = ok and move("resolved", rng.expovariate(1 / 1800))
        if ok and rng.random() < 0.08:
            ok = move("open", rng.expovariate(1 / 2000)) and move("resolved", rng.expovariate(1 / 900))
        if ok and rng.random() < 0.4:
            move("closed", rng.expovariate(1 / 4000))
        yield (
            f"tic-{i:07d}",
            created,
            priority,
            status,
            f"u{rng.randrange(AGENTS):02d}",
            first,
            resolved,
            closed,
            json.dumps(history, separators=(",", ":")),
        )


def build(n: int, log: Callable[[str], None] = print) -> Path:
    """A SQLite store of ``n`` tickets (raw inserts into the tables of a store pycrm created); cached."""
    import pycrm

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"sla-store-{n}-d{DATA_VERSION}-s{SEED}.db"
    if path.exists():
        return path
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    pycrm.open(f"sqlite:///{tmp}").close()
    t0 = time.perf_counter()
    con = sqlite3.connect(tmp)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA journal_mode=OFF")
    stamp = _text(START)
    con.execute(
        "INSERT INTO customers VALUES ('cus-1', 1, ?, ?, 'Customer', 'company', '[]', '[]', '[]', NULL, NULL, 'lead',"
        " NULL, NULL, '[]', '{}')",
        (stamp, stamp),
    )
    batch: list[tuple[Any, ...]] = []
    for k, (tid, created, prio, status, agent, first, resolved, closed, hist) in enumerate(tickets(n), start=1):
        opt = [None if x is None else _text(x.replace(tzinfo=None)) for x in (first, resolved, closed)]
        c = _text(created.replace(tzinfo=None))
        batch.append((tid, c, c, prio, status, agent, *opt, hist))
        if len(batch) >= 50_000:
            con.executemany("INSERT INTO tickets VALUES (?, 1, ?, ?, 'cus-1', 'help', '', ?, ?, ?, ?, ?, ?, ?)", batch)
            batch.clear()
            log(f"  built {k:,}/{n:,} tickets ({time.perf_counter() - t0:.0f} s)")
    con.executemany("INSERT INTO tickets VALUES (?, 1, ?, ?, 'cus-1', 'help', '', ?, ?, ?, ?, ?, ?, ?)", batch)
    con.commit()
    con.execute("ANALYZE")
    con.close()
    tmp.rename(path)
    return path


# ---------------------------------------------------------------------------------------------------
# the floor: one hand-written statement of the same rules
# ---------------------------------------------------------------------------------------------------

FLOOR_SQLITE = """
WITH tk AS (
  SELECT id, priority, status_history,
    CAST(strftime('%s', created_at) AS INTEGER) * 1000000 + CAST(substr(created_at, 21, 6) AS INTEGER) AS cu,
    CASE WHEN first_response_at <= :now_text THEN CAST(strftime('%s', first_response_at) AS INTEGER) * 1000000
      + CAST(substr(first_response_at, 21, 6) AS INTEGER) END AS fr
  FROM tickets
),
el AS (
  SELECT id, 0 AS ord, cu AS ts, coalesce(status_history ->> '$[0].from', 'new') AS s, fr, priority FROM tk
  UNION ALL
  SELECT tk.id, j.key + 1,
    CAST(strftime('%s', j.value ->> '$.at') AS INTEGER) * 1000000
      + CASE WHEN length(j.value ->> '$.at') = 32 THEN CAST(substr(j.value ->> '$.at', 21, 6) AS INTEGER) ELSE 0 END,
    j.value ->> '$.to', tk.fr, NULL
  FROM tk, json_each(tk.status_history) j
),
cw AS (
  SELECT el.id, el.ord, el.ts, el.s, el.fr, el.priority, d.c0 + max(min(el.ts, d.hi1) - d.lo1, 0) AS c
  FROM el JOIN sla_days d ON d.cal = 0 AND d.day = (el.ts - :base) / 86400000000
  WHERE el.ord = 0 OR el.ts <= :now
),
seg AS (
  SELECT id, ord, ts, s, c, fr, priority,
    coalesce(LEAD(ts) OVER w, max(ts, :now)) AS te,
    coalesce(LEAD(c) OVER w, CASE WHEN ts >= :now THEN c ELSE :cnow END) AS ce,
    LEAD(ts) OVER w IS NULL AS last
  FROM cw WINDOW w AS (PARTITION BY id ORDER BY ord)
),
per AS (
  SELECT id, MAX(fr) AS fr, MAX(priority) AS priority, MAX(CASE WHEN ord = 0 THEN ts END) AS cu,
    SUM(CASE WHEN s NOT IN ('pending', 'resolved', 'closed') THEN ce - c ELSE 0 END) AS res_el,
    SUM(CASE WHEN s NOT IN ('pending', 'resolved', 'closed') AND ts < fr
      THEN (CASE WHEN te <= fr THEN ce ELSE 0 END) - c ELSE 0 END) AS fr_part,
    SUM(s NOT IN ('pending', 'resolved', 'closed') AND ts < fr AND te > fr) AS fr_cut,
    MAX(last AND s IN ('resolved', 'closed')) AS done
  FROM seg GROUP BY id
),
judged AS (
  SELECT d0.per,
    CASE tk.priority WHEN 'urgent' THEN 1800000000 WHEN 'high' THEN 3600000000
      WHEN 'normal' THEN 14400000000 ELSE 28800000000 END AS tfr,
    CASE tk.priority WHEN 'urgent' THEN 14400000000 WHEN 'high' THEN 28800000000
      WHEN 'normal' THEN 172800000000 ELSE 432000000000 END AS tres,
    CASE WHEN tk.fr IS NULL THEN tk.res_el
      ELSE tk.fr_part + tk.fr_cut * (d.c0 + max(min(tk.fr, d.hi1) - d.lo1, 0)) END AS fr_el,
    tk.res_el,
    tk.fr IS NOT NULL OR tk.done = 1 AS fr_stop, tk.done AS res_stop
  FROM per tk
    JOIN sla_days d0 ON d0.cal = 0 AND d0.day = (tk.cu - :base) / 86400000000
    LEFT JOIN sla_days d ON d.cal = 0 AND d.day = (tk.fr - :base) / 86400000000
),
ranked AS (
  SELECT judged.*,
    ROW_NUMBER() OVER fw AS fr_rn, COUNT(*) OVER fw AS fr_n,
    ROW_NUMBER() OVER rw AS res_rn, COUNT(*) OVER rw AS res_n
  FROM judged
  WINDOW fw AS (PARTITION BY per, fr_stop ORDER BY fr_el ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING),
    rw AS (PARTITION BY per, res_stop ORDER BY res_el ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
)
SELECT per, COUNT(*),
  SUM(fr_stop = 1 AND fr_el <= tfr), SUM(fr_el > tfr),
  AVG(CASE WHEN fr_stop = 1 AND fr_rn IN ((fr_n + 1) / 2, (fr_n + 2) / 2) THEN fr_el END),
  SUM(res_stop = 1 AND res_el <= tres), SUM(res_el > tres),
  AVG(CASE WHEN res_stop = 1 AND res_rn IN ((res_n + 1) / 2, (res_n + 2) / 2) THEN res_el END),
  SUM((fr_stop = 0 AND fr_el <= tfr) OR (res_stop = 0 AND res_el <= tres))
FROM ranked GROUP BY per ORDER BY per
"""


def _days(pol: Any, first_us: int, last_us: int) -> tuple[list[list[int]], int, int, int]:
    """The calendar days table (the same compiled intervals pycrm uses) for the floor."""
    from pycrm.storage.sql._sla import _DAY_US, _calendar_days, _us

    now_us = _us(AS_OF)
    built = _calendar_days(pol, first_us, max(last_us, now_us), now_us, "month")
    assert built is not None
    _cals, _of, rows, width, at_now, base_day = built
    assert width == 1, "one working window a day in UTC"
    return rows, base_day * _DAY_US, at_now[0], now_us


def floor_sqlite(path: Path, pol: Any) -> list[tuple[Any, ...]]:
    from pycrm.storage.sql._sla import _us
    from pycrm.storage.sql.store import SQLITE_CACHE_KIB

    con = sqlite3.connect(path)
    con.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")  # the page cache pycrm's own connections use
    try:
        lo, hi = con.execute("SELECT MIN(created_at), MAX(created_at) FROM tickets").fetchone()
        first = _us(dt.datetime.fromisoformat(lo).replace(tzinfo=dt.UTC))
        last = _us(dt.datetime.fromisoformat(hi).replace(tzinfo=dt.UTC))
        rows, base, cnow, now = _days(pol, first, last)
        con.execute("DROP TABLE IF EXISTS temp.sla_days")
        con.execute("CREATE TEMP TABLE sla_days (cal INTEGER, day INTEGER, per INTEGER, c0 INTEGER, lo1 INTEGER, hi1 INTEGER,"
                    " PRIMARY KEY (cal, day))")  # fmt: skip
        con.executemany("INSERT INTO sla_days VALUES (?, ?, ?, ?, ?, ?)", rows)
        now_text = _text(AS_OF.replace(tzinfo=None))
        params = {"base": base, "now": now, "cnow": cnow, "now_text": now_text}
        return [tuple(r) for r in con.execute(FLOOR_SQLITE, params)]
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------------
# PostgreSQL (``--postgres URL``): the same tickets copied into a pycrm store there, the same two sides
# ---------------------------------------------------------------------------------------------------

FLOOR_POSTGRES = """
WITH tk AS (
  SELECT id, priority, status_history::jsonb AS h,
    CAST(EXTRACT(EPOCH FROM created_at) * 1000000 AS BIGINT) AS cu,
    CASE WHEN first_response_at <= %(now_ts)s THEN CAST(EXTRACT(EPOCH FROM first_response_at) * 1000000 AS BIGINT) END AS fr
  FROM tickets
),
el AS (
  SELECT id, 0::bigint AS ord, cu AS ts, coalesce(h -> 0 ->> 'from', 'new') AS s, fr, priority FROM tk
  UNION ALL
  SELECT tk.id, j.ord, CAST(EXTRACT(EPOCH FROM (j.v ->> 'at')::timestamptz) * 1000000 AS BIGINT), j.v ->> 'to', tk.fr, NULL
  FROM tk CROSS JOIN LATERAL jsonb_array_elements(tk.h) WITH ORDINALITY AS j(v, ord)
),
cw AS (
  SELECT el.id, el.ord, el.ts, el.s, el.fr, el.priority, d.c0 + greatest(least(el.ts, d.hi1) - d.lo1, 0) AS c
  FROM el JOIN sla_days d ON d.cal = 0 AND d.day = (el.ts - %(base)s) / 86400000000
  WHERE el.ord = 0 OR el.ts <= %(now)s
),
seg AS (
  SELECT id, ord, ts, s, c, fr, priority,
    coalesce(LEAD(ts) OVER w, greatest(ts, %(now)s)) AS te,
    coalesce(LEAD(c) OVER w, CASE WHEN ts >= %(now)s THEN c ELSE %(cnow)s END) AS ce,
    LEAD(ts) OVER w IS NULL AS last
  FROM cw WINDOW w AS (PARTITION BY id ORDER BY ord)
),
per AS (
  SELECT id, MAX(fr) AS fr, MAX(priority) AS priority, MAX(CASE WHEN ord = 0 THEN ts END) AS cu,
    SUM(CASE WHEN s NOT IN ('pending', 'resolved', 'closed') THEN ce - c ELSE 0 END) AS res_el,
    SUM(CASE WHEN s NOT IN ('pending', 'resolved', 'closed') AND ts < fr
      THEN (CASE WHEN te <= fr THEN ce ELSE 0 END) - c ELSE 0 END) AS fr_part,
    SUM(CASE WHEN s NOT IN ('pending', 'resolved', 'closed') AND ts < fr AND te > fr THEN 1 ELSE 0 END) AS fr_cut,
    MAX(CASE WHEN last AND s IN ('resolved', 'closed') THEN 1 ELSE 0 END) AS done
  FROM seg GROUP BY id
),
judged AS (
  SELECT d0.per,
    CASE tk.priority WHEN 'urgent' THEN 1800000000 WHEN 'high' THEN 3600000000
      WHEN 'normal' THEN 14400000000 ELSE 28800000000 END AS tfr,
    CASE tk.priority WHEN 'urgent' THEN 14400000000 WHEN 'high' THEN 28800000000
      WHEN 'normal' THEN 172800000000 ELSE 432000000000 END AS tres,
    CASE WHEN tk.fr IS NULL THEN tk.res_el
      ELSE tk.fr_part + tk.fr_cut * (d.c0 + greatest(least(tk.fr, d.hi1) - d.lo1, 0)) END AS fr_el,
    tk.res_el,
    CASE WHEN tk.fr IS NOT NULL OR tk.done = 1 THEN 1 ELSE 0 END AS fr_stop, tk.done AS res_stop
  FROM per tk
    JOIN sla_days d0 ON d0.cal = 0 AND d0.day = (tk.cu - %(base)s) / 86400000000
    LEFT JOIN sla_days d ON d.cal = 0 AND d.day = (tk.fr - %(base)s) / 86400000000
),
ranked AS (
  SELECT judged.*,
    ROW_NUMBER() OVER (PARTITION BY per, fr_stop ORDER BY fr_el) AS fr_rn,
    COUNT(*) OVER (PARTITION BY per, fr_stop ORDER BY fr_el ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS fr_n,
    ROW_NUMBER() OVER (PARTITION BY per, res_stop ORDER BY res_el) AS res_rn,
    COUNT(*) OVER (PARTITION BY per, res_stop ORDER BY res_el ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS res_n
  FROM judged
)
SELECT per, COUNT(*),
  SUM(CASE WHEN fr_stop = 1 AND fr_el <= tfr THEN 1 ELSE 0 END), SUM(CASE WHEN fr_el > tfr THEN 1 ELSE 0 END),
  AVG(CASE WHEN fr_stop = 1 AND fr_rn IN ((fr_n + 1) / 2, (fr_n + 2) / 2) THEN fr_el END),
  SUM(CASE WHEN res_stop = 1 AND res_el <= tres THEN 1 ELSE 0 END), SUM(CASE WHEN res_el > tres THEN 1 ELSE 0 END),
  AVG(CASE WHEN res_stop = 1 AND res_rn IN ((res_n + 1) / 2, (res_n + 2) / 2) THEN res_el END),
  SUM(CASE WHEN (fr_stop = 0 AND fr_el <= tfr) OR (res_stop = 0 AND res_el <= tres) THEN 1 ELSE 0 END)
FROM ranked GROUP BY per ORDER BY per
"""


def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def load_postgres(url: str, n: int, log: Callable[[str], None] = print) -> None:
    """Replace the tickets of the pycrm store at ``url`` by the ``n`` generated ones (``COPY``)."""
    import psycopg

    import pycrm

    pycrm.open(url).close()  # the schema
    t0 = time.perf_counter()
    with psycopg.connect(_pg_dsn(url)) as con, con.cursor() as cur:
        cur.execute("DELETE FROM tickets")
        cur.execute("DELETE FROM customers WHERE id = 'cus-1'")
        st = START.replace(tzinfo=None)
        cur.execute(
            "INSERT INTO customers VALUES ('cus-1', 1, %s, %s, 'Customer', 'company', '[]', '[]', '[]', NULL, NULL,"
            " 'lead', NULL, NULL, '[]', '{}')",
            (st, st),
        )
        cols = "id, version, created_at, updated_at, customer_id, subject, description, priority, status, assignee_id,"
        cols += " first_response_at, resolved_at, closed_at, status_history"
        with cur.copy(f"COPY tickets ({cols}) FROM STDIN") as cp:
            for tid, created, prio, status, agent, first, resolved, closed, hist in tickets(n):
                naive = [None if x is None else x.replace(tzinfo=None) for x in (created, first, resolved, closed)]
                c = naive[0]
                cp.write_row((tid, 1, c, c, "cus-1", "help", "", prio, status, agent, *naive[1:], hist))
        con.commit()
        cur.execute("ANALYZE tickets")
    log(f"  copied {n:,} tickets into PostgreSQL ({time.perf_counter() - t0:.0f} s)")


def floor_postgres(url: str, pol: Any) -> list[tuple[Any, ...]]:
    import psycopg

    from pycrm.storage.sql._sla import _us

    with psycopg.connect(_pg_dsn(url)) as con, con.cursor() as cur:
        lo, hi = cur.execute("SELECT MIN(created_at), MAX(created_at) FROM tickets").fetchone()  # type: ignore[misc]
        rows, base, cnow, now = _days(pol, _us(lo.replace(tzinfo=dt.UTC)), _us(hi.replace(tzinfo=dt.UTC)))
        cur.execute("CREATE TEMP TABLE sla_days (cal INTEGER, day BIGINT, per BIGINT, c0 BIGINT, lo1 BIGINT, hi1 BIGINT,"
                    " PRIMARY KEY (cal, day))")  # fmt: skip
        cur.executemany("INSERT INTO sla_days VALUES (%s, %s, %s, %s, %s, %s)", rows)
        params = {"base": base, "now": now, "cnow": cnow, "now_ts": AS_OF.replace(tzinfo=None)}
        return [tuple(r) for r in cur.execute(FLOOR_POSTGRES, params)]  # type: ignore[arg-type]


def measure_postgres(url: str, n: int, rounds: int, pure: bool, log: Callable[[str], None] = print) -> dict[str, Any]:
    import pycrm
    from pycrm.service import sla_compliance

    load_postgres(url, n, log)
    pol = policy()
    crm = pycrm.open(url)
    times: dict[str, list[float]] = {"floor": [], "pycrm": [], "pure": []}
    try:
        with crm.session() as s:
            report = s.analytics.sla(pol, period="month", as_of=AS_OF)
        floor = _floor_summary(floor_postgres(url, pol))
        if _summary(report) != floor:
            raise AssertionError("the pushed-down report and the hand-written query disagree (PostgreSQL)")
        for k in range(rounds):
            for side in ("floor", "pycrm") if k % 2 == 0 else ("pycrm", "floor"):
                gc.collect()
                t = time.perf_counter()
                if side == "floor":
                    got = _floor_summary(floor_postgres(url, pol))
                else:
                    with crm.session() as s:
                        got = _summary(s.analytics.sla(pol, period="month", as_of=AS_OF))
                times[side].append(time.perf_counter() - t)
                assert got == floor
            log(f"  PostgreSQL round {k + 1}: floor {fmt_seconds(times['floor'][-1])}, pycrm {fmt_seconds(times['pycrm'][-1])}")
        if pure:
            gc.collect()
            t = time.perf_counter()
            with crm.session() as s:
                if list(sla_compliance(s.tickets.iter(), pol, period="month", as_of=AS_OF)) != list(report):
                    raise AssertionError("the pushed-down report and the pure function disagree (PostgreSQL)")
            times["pure"].append(time.perf_counter() - t)
            log(f"  PostgreSQL, pure function over the stored tickets: {fmt_seconds(times['pure'][-1])}")
    finally:
        crm.close()
    med = {k: statistics.median(v) if v else float("nan") for k, v in times.items()}
    return {"tickets": n, "months": len(floor), "times": times, "median": med}


def _summary(report: Any) -> list[tuple[Any, ...]]:
    """The figures the floor also gives, per month (medians in hours, rounded as the report rounds)."""
    return [
        (
            r.period,
            r.tickets,
            r.first_response_met,
            r.first_response_breached,
            r.median_first_response_hours,
            r.resolution_met,
            r.resolution_breached,
            r.median_resolution_hours,
            r.running,
        )
        for r in report
    ]


def _floor_summary(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    from decimal import ROUND_HALF_EVEN, Decimal

    from pycrm.analytics._common import period_label

    def hours(v: Any) -> Any:
        if v is None:
            return None
        return (Decimal(v) / Decimal(3_600_000_000)).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)

    return [
        (period_label(dt.date.fromordinal(p), "month"), n, fm, fb, hours(fmed), rm, rb, hours(rmed), run)
        for p, n, fm, fb, fmed, rm, rb, rmed, run in rows
    ]


def measure(n: int, rounds: int, pure: bool, log: Callable[[str], None] = print) -> dict[str, Any]:
    import pycrm
    from pycrm.service import sla_compliance

    path = build(n, log)
    pol = policy()
    crm = pycrm.open(f"sqlite:///{path}")
    times: dict[str, list[float]] = {"floor": [], "pycrm": [], "pure": []}
    try:
        with crm.session() as s:
            report = s.analytics.sla(pol, period="month", as_of=AS_OF)
        floor = _floor_summary(floor_sqlite(path, pol))
        if _summary(report) != floor:
            raise AssertionError("the pushed-down report and the hand-written query disagree")
        if pure:
            with crm.session() as s:
                if list(sla_compliance(s.tickets.iter(), pol, period="month", as_of=AS_OF)) != list(report):
                    raise AssertionError("the pushed-down report and the pure function disagree")
        for k in range(rounds):
            order = ("floor", "pycrm") if k % 2 == 0 else ("pycrm", "floor")
            for side in order:
                gc.collect()
                t = time.perf_counter()
                if side == "floor":
                    got = _floor_summary(floor_sqlite(path, pol))
                else:
                    with crm.session() as s:
                        got = _summary(s.analytics.sla(pol, period="month", as_of=AS_OF))
                times[side].append(time.perf_counter() - t)
                assert got == floor
            log(f"  round {k + 1}: floor {fmt_seconds(times['floor'][-1])}, pycrm {fmt_seconds(times['pycrm'][-1])}")
        if pure:
            gc.collect()
            t = time.perf_counter()
            with crm.session() as s:
                sla_compliance(s.tickets.iter(), pol, period="month", as_of=AS_OF)
            times["pure"].append(time.perf_counter() - t)
            log(f"  pure function over the stored tickets: {fmt_seconds(times['pure'][-1])}")
    finally:
        crm.close()
    med = {k: statistics.median(v) if v else float("nan") for k, v in times.items()}
    return {"tickets": n, "months": len(floor), "times": times, "median": med}


def bench_sla(cfg: Any) -> dict[str, Any]:
    """``benchmarks/run.py --only sla``: 1,000,000 tickets (``--quick``: 100,000, with the pure function)."""
    from bench_core import _figure

    n = 100_000 if cfg.quick else 1_000_000
    res = measure(n, cfg.repeat, cfg.quick, cfg.log)
    med = res["median"]
    label = f"SLA compliance by month, {n:,} tickets, SQLite"
    rows = [_figure(f"{label}: s.analytics.sla vs one hand-written SQL query", med["pycrm"], med["floor"], "s", TARGET)]
    if cfg.quick:
        rows.append(
            _figure("  the pure function over the stored tickets vs the same query", med["pure"], med["floor"], "s", None)
        )
    return {"rows": rows, "details": res}


BENCHMARKS = {"sla": bench_sla}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pure", action="store_true", help="also time the pure function (default on --quick)")
    ap.add_argument("--postgres", metavar="URL", help="also on this PostgreSQL store (its tickets are replaced)")
    args = ap.parse_args(argv)
    n = args.n or (100_000 if args.quick else 1_000_000)
    res = measure(n, args.rounds, args.pure or args.quick)
    med = res["median"]
    ratio = med["pycrm"] / med["floor"]
    print(f"\nSLA compliance by month, {n:,} tickets ({res['months']} months), SQLite; median of {args.rounds}")
    print(f"  hand-written SQL query (raw sqlite3):   {fmt_seconds(med['floor'])}")
    print(f"  s.analytics.sla (pushed down):          {fmt_seconds(med['pycrm'])}  {ratio:.2f}x  (target <= {TARGET}x)")
    if res["times"]["pure"]:
        print(f"  pure function over the stored tickets:  {fmt_seconds(med['pure'])}  {med['pure'] / med['floor']:.1f}x")
    ok = ratio <= TARGET
    if args.postgres:
        pg = measure_postgres(args.postgres, n, args.rounds, args.pure or args.quick)
        pmed = pg["median"]
        pratio = pmed["pycrm"] / pmed["floor"]
        print(f"\nthe same on PostgreSQL; median of {args.rounds}")
        print(f"  hand-written SQL query (raw psycopg):   {fmt_seconds(pmed['floor'])}")
        print(f"  s.analytics.sla (pushed down):          {fmt_seconds(pmed['pycrm'])}  {pratio:.2f}x  (target <= {TARGET}x)")
        if pg["times"]["pure"]:
            print(f"  pure function over the stored tickets:  {fmt_seconds(pmed['pure'])}  {pmed['pure'] / pmed['floor']:.1f}x")
        res["postgres"] = pg
        ok = ok and pratio <= TARGET
    out = RESULTS / "sla-latest.json"
    out.write_text(json.dumps(res, indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
