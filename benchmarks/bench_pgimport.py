"""An all-or-nothing import into a fresh PostgreSQL store beside the same import into SQLite (issue 19, item 4).

    python benchmarks/bench_pgimport.py                          # 10k and 100k (3 rounds), 1M once; ~15 min
    python benchmarks/bench_pgimport.py --sizes 10000,100000 --rounds 5
    python benchmarks/bench_pgimport.py --sizes 100000 --profile # also cProfile one PostgreSQL import
    python benchmarks/run.py --only pgimport                     # through the runner (10k and 100k; --quick: 10k)

The same customer CSV as ``bench_io.py`` (Chinese headers, e-mail, phone, city, tags) is imported with
``pycrm.io.import_file`` (all or nothing, the default; ``batch_size=2000``, pycrm's default worker processes)
into a fresh store on each database, audit trail on: an SQLite file, the PostgreSQL database named by
``--pg-url`` / ``PYCRM_BENCH_POSTGRES_URL`` and, for information, the MariaDB database named by
``--mysql-url`` / ``PYCRM_BENCH_MYSQL_URL`` (``--no-mysql`` leaves it out). "Fresh": the SQLite file is
deleted, the PostgreSQL schema ``public`` dropped and made again, the MariaDB database dropped and made
again; then ``pycrm.open`` creates the tables, untimed. The figure is the import and its commit.

Each import runs in a process of its own (after ``os.sync()``), which prints its wall time, the CPU time of
itself and of its worker processes, and, for PostgreSQL, the CPU time of the server process serving its
connection (read from ``/proc``: the server is on this machine). The databases alternate within a round and
the order rotates between rounds; sizes from ``--once-from`` (1,000,000 by default) run once. Prints each
run, then per size the medians and the PostgreSQL / SQLite (and MariaDB / SQLite) ratios, with the load
average: the machine may be shared, so compare ratios within a run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from bench_io import DIR, make_csv  # noqa: E402

__all__ = ["BENCHMARKS", "DEFAULT_MYSQL", "DEFAULT_PG", "bench_pgimport", "fresh", "measure"]

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/pycrm_pgimport_bench"
DEFAULT_MYSQL = "mysql+pymysql://root@127.0.0.1:3306/pycrm_pgimport_bench"
BATCH = 2000
TARGET = 2.0  # PostgreSQL at most 2x SQLite at 100,000 rows


def pg_url() -> str:
    return os.environ.get("PYCRM_BENCH_POSTGRES_URL") or DEFAULT_PG


def mysql_url() -> str:
    return os.environ.get("PYCRM_BENCH_MYSQL_URL") or DEFAULT_MYSQL


def _kind(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql" if url.startswith("postgresql") else "mysql"


def fresh(url: str) -> None:
    """Make the database behind ``url`` empty, as for a first ``pycrm.open`` (created when missing)."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    u = sa.make_url(url)
    kind = _kind(url)
    if kind == "sqlite":
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(u.database) + suffix).unlink(missing_ok=True)
        return
    if kind == "postgresql":
        admin = sa.create_engine(u.set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                if not conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": u.database}).first():
                    conn.exec_driver_sql(f'CREATE DATABASE "{u.database}"')  # the benchmark's own name, not input
        finally:
            admin.dispose()
        engine = sa.create_engine(u, poolclass=NullPool)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
                conn.exec_driver_sql("CREATE SCHEMA public")
        finally:
            engine.dispose()
        return
    admin = sa.create_engine(u.set(database=""), poolclass=NullPool)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{u.database}`")
            conn.exec_driver_sql(f"CREATE DATABASE `{u.database}` CHARACTER SET utf8mb4")
    finally:
        admin.dispose()


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far, from /proc (0.0 where it cannot be read)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def import_once(url: str, csv_path: Path, workers: int | None = None) -> dict[str, Any]:
    """Open the (fresh) store at ``url`` and time ``import_file`` of ``csv_path`` and its commit, in this process."""
    import pycrm
    from pycrm.io import import_file

    t_open = time.perf_counter()
    with pycrm.open(url, default_region="CN", audit=True) as crm:
        opened = time.perf_counter() - t_open
        with crm.session() as s:
            server = 0
            if _kind(url) == "postgresql":
                server = int(s.unit.transaction().connection.exec_driver_sql("SELECT pg_backend_pid()").scalar())  # type: ignore[attr-defined]
            srv0, cpu0, t0 = _proc_cpu(server) if server else 0.0, _cpu(), time.perf_counter()
            report = import_file(s, csv_path, batch_size=BATCH, workers=workers)
            s.commit()
            wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
            srv = _proc_cpu(server) - srv0 if server else None
        with crm.session() as s:
            stored = s.customers.count()
    if report.problems or stored != report.created or report.created == 0:
        raise RuntimeError(f"{url}: {report.summary()}; {stored} stored")
    return {"wall": wall, "cpu": cpu, "server_cpu": srv, "open": opened, "rows": stored}


def run_child(url: str, csv_path: Path, workers: int | None = None) -> dict[str, Any]:
    """:func:`import_once` in a new process, after :func:`fresh` and ``os.sync()``."""
    fresh(url)
    os.sync()
    cmd = [sys.executable, __file__, "--child", url, "--csv", str(csv_path)]
    if workers:
        cmd += ["--workers", str(workers)]
    load = os.getloadavg()[0]
    got = subprocess.run(cmd, check=True, capture_output=True, text=True)
    out: dict[str, Any] = json.loads(got.stdout.strip().splitlines()[-1])
    out["load"] = load
    return out


def ensure_csv(n: int) -> Path:
    DIR.mkdir(exist_ok=True)
    path = DIR / f"customers-{n}.csv"
    if not path.exists():
        make_csv(path, n)
    return path


def measure(
    sizes: Sequence[int],
    rounds: int,
    urls: dict[str, str],
    *,
    once_from: int = 1_000_000,
    workers: int | None = None,
    log: Any = print,
) -> dict[int, dict[str, list[dict[str, Any]]]]:
    """Every size's runs per database (``urls``: name -> URL, SQLite first), alternating, rotating the order."""
    results: dict[int, dict[str, list[dict[str, Any]]]] = {}
    names = list(urls)
    for n in sizes:
        csv_path = ensure_csv(n)
        results[n] = {k: [] for k in names}
        reps = 1 if n >= once_from else rounds
        for r in range(reps):
            order = names[r % len(names) :] + names[: r % len(names)]
            line = []
            for name in order:
                got = run_child(urls[name], csv_path, workers)
                results[n][name].append(got)
                srv = f", server {got['server_cpu']:.1f}" if got["server_cpu"] is not None else ""
                line.append(f"{name} {got['wall']:.2f} s (cpu {got['cpu']:.1f}{srv}, load {got['load']:.1f})")
            log(f"  {n:>9,} rows, round {r + 1}: " + "; ".join(line))
    return results


def summarize(results: dict[int, dict[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """Per size and database: median wall and CPU time, and the ratio to SQLite's median."""
    out = []
    for n, by in results.items():
        base = statistics.median(x["wall"] for x in by["sqlite"])
        base_cpu = statistics.median(x["cpu"] for x in by["sqlite"])
        for name, runs in by.items():
            wall = statistics.median(x["wall"] for x in runs)
            cpu = statistics.median(x["cpu"] for x in runs)
            srv = [x["server_cpu"] for x in runs if x["server_cpu"] is not None]
            out.append(
                {
                    "rows": n,
                    "db": name,
                    "runs": len(runs),
                    "wall": wall,
                    "cpu": cpu,
                    "server_cpu": statistics.median(srv) if srv else None,
                    "ratio": wall / base,
                    "cpu_ratio": cpu / base_cpu,
                    "rows_per_s": n / wall,
                    "load": statistics.median(x["load"] for x in runs),
                }
            )
    return out


def format_summary(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'rows':>9}  {'database':<10} {'runs':>4}  {'median s':>9}  {'rows/s':>8}  {'x SQLite':>8}"
        f"  {'CPU s':>6}  {'CPU x':>5}  {'server CPU s':>12}  {'load':>4}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        srv = f"{r['server_cpu']:.1f}" if r["server_cpu"] is not None else "-"
        lines.append(
            f"{r['rows']:>9,}  {r['db']:<10} {r['runs']:>4}  {r['wall']:>9.2f}  {r['rows_per_s']:>8,.0f}  {r['ratio']:>7.2f}x"
            f"  {r['cpu']:>6.1f}  {r['cpu_ratio']:>4.2f}x  {srv:>12}  {r['load']:>4.1f}"
        )
    return "\n".join(lines)


def profile_pg(url: str, n: int, top: int = 30) -> str:
    """cProfile one PostgreSQL import of ``n`` rows in this process (one worker process less to see)."""
    from _util import RESULTS, profile_call

    csv_path = ensure_csv(n)
    fresh(url)
    return profile_call(lambda: import_once(url, csv_path), RESULTS / f"pgimport-{n}.prof", top)


def bench_pgimport(cfg: Any) -> dict[str, Any]:
    """``benchmarks/run.py --only pgimport``: 10,000 and 100,000 rows (``--quick``: 10,000), no MariaDB."""
    from bench_core import _figure

    sizes = [10_000] if cfg.quick else [10_000, 100_000]
    try:
        fresh(pg_url())
    except Exception as exc:  # no server: nothing to compare (the runner goes on with the other benchmarks)
        cfg.log(f"pgimport: skipped, cannot reach PostgreSQL at {pg_url()}: {str(exc).splitlines()[0][:200]}")
        return {"rows": [], "details": {"skipped": str(exc)}}
    tmp = DIR / "pgimport.db"
    results = measure(sizes, cfg.repeat, {"sqlite": f"sqlite:///{tmp}", "postgresql": pg_url()}, log=cfg.log)
    summary = summarize(results)
    rows = []
    for n in sizes:
        pg = next(r for r in summary if r["rows"] == n and r["db"] == "postgresql")
        lite = next(r for r in summary if r["rows"] == n and r["db"] == "sqlite")
        target = TARGET if n == 100_000 else None
        rows.append(
            _figure(
                f"import {n:,} rows all-or-nothing: PostgreSQL vs SQLite (median of {cfg.repeat})",
                pg["wall"],
                lite["wall"],
                "s",
                target,
            )
        )
        rows.append(_figure("  CPU time of the importing processes", pg["cpu"], lite["cpu"], "s", None))
    if cfg.profile:
        cfg.profiles["pgimport"] = profile_pg(pg_url(), sizes[-1])
    return {"rows": rows, "details": {"summary": summary, "runs": {str(k): v for k, v in results.items()}}}


BENCHMARKS = {"pgimport": bench_pgimport}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated row counts")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--once-from", type=int, default=1_000_000, help="sizes from this one run once")
    ap.add_argument("--pg-url", default=None, help=f"default: $PYCRM_BENCH_POSTGRES_URL or {DEFAULT_PG}")
    ap.add_argument("--mysql-url", default=None, help=f"default: $PYCRM_BENCH_MYSQL_URL or {DEFAULT_MYSQL}")
    ap.add_argument("--no-mysql", action="store_true", help="leave MariaDB out")
    ap.add_argument("--workers", type=int)
    ap.add_argument("--profile", action="store_true", help="also cProfile one PostgreSQL import of the smallest size")
    ap.add_argument("--child")
    ap.add_argument("--csv")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(import_once(args.child, Path(args.csv), args.workers)))
        return
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    urls = {"sqlite": f"sqlite:///{DIR / 'pgimport.db'}", "postgresql": args.pg_url or pg_url()}
    if not args.no_mysql:
        urls["mariadb"] = args.mysql_url or mysql_url()
    DIR.mkdir(exist_ok=True)
    print(f"sizes={sizes} rounds={args.rounds} (1 from {args.once_from:,}) cpus={os.cpu_count()} load={os.getloadavg()}")
    print(f"databases: {', '.join(f'{k}={v}' for k, v in urls.items())}")
    t0 = time.perf_counter()
    results = measure(sizes, args.rounds, urls, once_from=args.once_from, workers=args.workers)
    print()
    print(format_summary(summarize(results)))
    print("\n(wall: import_file + commit; CPU: the importing process and its workers; server CPU: the PostgreSQL")
    print(f" backend of the import's connection; target PostgreSQL <= {TARGET}x SQLite at 100,000 rows)")
    print(f"total {time.perf_counter() - t0:.0f} s, load after {os.getloadavg()}")
    if args.profile:
        print(profile_pg(urls["postgresql"], min(sizes)))


if __name__ == "__main__":
    main()
