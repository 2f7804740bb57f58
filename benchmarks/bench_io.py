"""Import and export speed, side by side with the single-core floor, and peak memory.

    python benchmarks/bench_io.py --rows 100000 --repeat 3
    python benchmarks/bench_io.py --rows 1000000 --repeat 1

* floor: the same rows validated with email-validator + phonenumbers alone on one core, plus raw
  sqlite3 inserts into equivalent tables (customers + e-mail and phone index tables), one transaction;
* import: ``pycrm.io.import_file`` of the CSV into a new SQLite store (validation in worker processes);
* import with ``exclusive=True``: the new store held for the import, so SQLite writes its pages once
  (rollback journal) instead of twice (write-ahead log, then the checkpoint at commit);
* import with ``audit=False`` too (``--no-audit-too``): the audit trail off, the change feed kept;
* export: ``pycrm.io.export_file`` of that store to CSV (raw-row fast path), rows per second, both with
  ``pycrm.open`` counted and streaming only (the store already open); by default several processes
  write ranges side by side from 200,000 rows, so it is also timed with ``workers=1`` (one process);
* the export's baseline: raw sqlite3 reads of the same columns, written as stored with ``csv.writer``;
* peak RSS of an import and of an export, each in its own process (``resource.getrusage``).

Each timed run starts after ``os.sync()``: the gigabytes one run leaves in the page cache would otherwise be
written back to disk during the next one, slowing whichever comes after it. Prints medians and ratios. Files
live under /tmp.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

DIR = Path(tempfile.gettempdir()) / "pycrm-bench-io"


def make_csv(path: Path, n: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["客户编号", "名称", "邮箱", "手机", "城市", "标签"])
        for i in range(n):
            phone = f"13{i % 10}{i:08d}"[-11:]
            w.writerow([f"C{i:07d}", f"客户 {i}", f"user{i}@example{i % 97}.com", phone, "深圳", "vip;b2b" if i % 5 == 0 else ""])


def floor(path: Path, db: Path) -> float:
    import email_validator
    import phonenumbers

    if db.exists():
        db.unlink()
    t0 = time.perf_counter()
    conn = sqlite3.connect(db)
    conn.executescript(
        "CREATE TABLE customers (id TEXT PRIMARY KEY, name TEXT NOT NULL, emails TEXT, phones TEXT, addresses TEXT, tags TEXT,"
        " custom TEXT);"
        "CREATE TABLE customer_emails (customer_id TEXT, email TEXT, PRIMARY KEY (customer_id, email));"
        "CREATE TABLE customer_phones (customer_id TEXT, phone TEXT, PRIMARY KEY (customer_id, phone));"
        "CREATE INDEX ix_e ON customer_emails (email, customer_id); CREATE INDEX ix_p ON customer_phones (phone, customer_id);"
    )
    rows, emails, phones = [], [], []
    with path.open(newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        next(r)
        for i, (ext, name, email, phone, city, tags) in enumerate(r):
            e = email_validator.validate_email(email, check_deliverability=False).normalized.lower()
            p = phonenumbers.parse(phone, "CN")
            if not phonenumbers.is_valid_number(p):
                raise ValueError(phone)
            e164 = phonenumbers.format_number(p, phonenumbers.PhoneNumberFormat.E164)
            cid = f"{i:032x}"
            address = json.dumps([{"street": city}])
            rows.append((cid, name, json.dumps([e]), json.dumps([e164]), address, tags, json.dumps({"external_id": ext})))
            emails.append((cid, e))
            phones.append((cid, e164))
            if len(rows) >= 1000:
                conn.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?,?)", rows)
                conn.executemany("INSERT INTO customer_emails VALUES (?,?)", emails)
                conn.executemany("INSERT INTO customer_phones VALUES (?,?)", phones)
                rows, emails, phones = [], [], []
    conn.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?,?)", rows)
    conn.executemany("INSERT INTO customer_emails VALUES (?,?)", emails)
    conn.executemany("INSERT INTO customer_phones VALUES (?,?)", phones)
    conn.commit()
    conn.close()
    return time.perf_counter() - t0


def pycrm_import(path: Path, db: Path, workers: int | None, audit: bool = True, exclusive: bool = False) -> float:
    import pycrm
    from pycrm.io import import_file

    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    t0 = time.perf_counter()
    with pycrm.open(f"sqlite:///{db}", default_region="CN", audit=audit) as crm:
        report = import_file(crm, path, batch_size=2000, workers=workers, exclusive=exclusive)
    assert report.created > 0 and not report.problems and report.exclusive == exclusive, report.summary()
    return time.perf_counter() - t0


def pycrm_export(db: Path, out: Path, workers: int | None = None) -> tuple[float, float, int]:
    """(seconds with ``pycrm.open``, seconds streaming only, rows); ``workers=None``: pycrm's default."""
    import pycrm
    from pycrm.io import export_file

    t0 = time.perf_counter()
    with pycrm.open(f"sqlite:///{db}", default_region="CN") as crm:
        t1 = time.perf_counter()
        n = export_file(crm, out, "customers", workers=workers)
        t2 = time.perf_counter()
    return t2 - t0, t2 - t1, n


def raw_export(db: Path, out: Path) -> float:
    """The export's baseline: raw sqlite3 reads of the same columns of the same store, in the same
    keyset-paged batches of 5,000, written with ``csv.writer`` as stored (no conversion, no scope or masking)."""
    from pycrm.io import EXPORT_FIELDS

    cols = ", ".join(EXPORT_FIELDS["customers"])
    t0 = time.perf_counter()
    conn = sqlite3.connect(db)
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(EXPORT_FIELDS["customers"])
        rows = conn.execute(f"SELECT {cols} FROM customers ORDER BY id LIMIT 5000").fetchall()
        while rows:
            w.writerows(rows)
            if len(rows) < 5000:
                break
            rows = conn.execute(f"SELECT {cols} FROM customers WHERE id > ? ORDER BY id LIMIT 5000", (rows[-1][0],)).fetchall()
    conn.close()
    return time.perf_counter() - t0


def _child(args: argparse.Namespace) -> None:
    """Run one import or export and print peak RSS (MiB) of this process and of its worker processes."""
    if args.child in ("import", "import-exclusive"):
        pycrm_import(Path(args.csv), Path(args.db), args.workers, exclusive=args.child == "import-exclusive")
    else:
        pycrm_export(Path(args.db), Path(args.out))
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"self_mib": round(own, 1), "largest_child_mib": round(kids, 1)}))


def rss(kind: str, csv_path: Path, db: Path, out: Path, workers: int | None) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", kind, "--csv", str(csv_path), "--db", str(db), "--out", str(out)]
    if workers:
        cmd += ["--workers", str(workers)]
    got = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(got.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def settled(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` once the page cache's dirty pages are on disk (see the module docstring)."""
    os.sync()
    return fn(*args, **kwargs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int)
    ap.add_argument("--no-rss", action="store_true")
    ap.add_argument("--rss-only", action="store_true")
    ap.add_argument("--no-audit-too", action="store_true", help="also time imports with audit=False")
    ap.add_argument("--child")
    ap.add_argument("--csv")
    ap.add_argument("--db")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.child:
        _child(args)
        return
    DIR.mkdir(exist_ok=True)
    csv_path = DIR / f"customers-{args.rows}.csv"
    if not csv_path.exists():
        make_csv(csv_path, args.rows)
    floor_db, db, out = DIR / "floor.db", DIR / "crm.db", DIR / "export.csv"
    print(f"rows={args.rows:,} repeat={args.repeat} cpus={os.cpu_count()} load={os.getloadavg()}")
    if not args.no_rss:  # first, while this process is small: Linux carries ru_maxrss over fork and exec
        print(f"peak RSS import: {rss('import', csv_path, db, out, args.workers)}")
        print(f"peak RSS import, exclusive: {rss('import-exclusive', csv_path, db, out, args.workers)}")
        print(f"peak RSS export: {rss('export', csv_path, db, out, args.workers)}")
    if args.rss_only:
        return
    floors, imports, held, quiet, exports, streams, singles, raws = [], [], [], [], [], [], [], []
    for i in range(args.repeat):  # interleaved, so load changes hit both sides alike
        floors.append(settled(floor, csv_path, floor_db))
        imports.append(settled(pycrm_import, csv_path, db, args.workers))
        held.append(settled(pycrm_import, csv_path, db, args.workers, exclusive=True))
        extra = f"  import exclusive {held[-1]:.2f}s"
        if args.no_audit_too:
            quiet.append(settled(pycrm_import, csv_path, db, args.workers, audit=False))
            extra += f"  import audit=False {quiet[-1]:.2f}s"
        t, st, n = settled(pycrm_export, db, out)
        exports.append(t)
        streams.append(st)
        singles.append(settled(pycrm_export, db, out, workers=1)[1])
        raws.append(settled(raw_export, db, DIR / "export-raw.csv"))
        print(
            f"  run {i + 1}: floor {floors[-1]:.2f}s  import {imports[-1]:.2f}s{extra}  export {exports[-1]:.2f}s"
            f" (streaming {st:.2f}s, one process {singles[-1]:.2f}s, {n:,} rows; raw sqlite3 + csv {raws[-1]:.2f}s)"
            f"  load {os.getloadavg()[0]:.2f}"
        )
    f, im, ex, st = (statistics.median(x) for x in (floors, imports, exports, streams))
    print(f"floor (validate + raw sqlite3, 1 core): median {f:.2f}s  {args.rows / f:,.0f} rows/s")
    print(f"pycrm import:                          median {im:.2f}s  {args.rows / im:,.0f} rows/s  ratio {im / f:.2f}")
    h = statistics.median(held)
    print(f"pycrm import, exclusive=True:          median {h:.2f}s  {args.rows / h:,.0f} rows/s  ratio {h / f:.2f}")
    if quiet:
        q = statistics.median(quiet)
        print(f"pycrm import, audit=False:             median {q:.2f}s  {args.rows / q:,.0f} rows/s  ratio {q / f:.2f}")
    print(f"pycrm export to CSV, with open:        median {ex:.2f}s  {args.rows / ex:,.0f} rows/s")
    print(f"pycrm export to CSV, streaming:        median {st:.2f}s  {args.rows / st:,.0f} rows/s  (target >= 100,000)")
    one = statistics.median(singles)
    print(f"pycrm export to CSV, one process:      median {one:.2f}s  {args.rows / one:,.0f} rows/s")
    rx = statistics.median(raws)
    print(
        f"raw sqlite3 + csv.writer, same columns: median {rx:.2f}s  {args.rows / rx:,.0f} rows/s"
        f"  (export ratio {st / rx:.2f}, one process {one / rx:.2f})"
    )
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
