"""``pycrm import FILE --store URL --entity KIND``: a CSV, XLSX or JSON Lines file into a store.

    pycrm import customers.csv --store crm.db
    pycrm import orders.xlsx --store crm.db --entity orders --map 客户编号=customer.custom.external_id --dry-run
    pycrm import leads.csv --store crm.db --mapping leads-mapping.json --key emails --per-batch

Every problem is printed on its own line (file, row, column: message) on standard error; with problems
the exit status is 2 and, unless ``--per-batch``, the store is unchanged. ``--dry-run`` reports what
would be created, updated and left unchanged, writing nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from pycrm.errors import FieldError, ValidationError, quote
from pycrm.io._cli_common import open_store
from pycrm.io._import import ImportRejected, ImportReport, import_file
from pycrm.io._mapping import IMPORT_KINDS

__all__ = ["register", "run"]

PROG = "pycrm import"


def register(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "import",
        help="import a CSV, XLSX or JSON Lines file (customers, contacts, orders, ...)",
        description="Import a CSV (UTF-8, UTF-8 with BOM or GB18030), XLSX or JSON Lines file into a store: columns "
        "mapped from their headers (English or Chinese) or by --map/--mapping, every row validated, records upserted "
        "by key. All or nothing unless --per-batch. Exit status 0 on success, 2 on bad input.",
    )
    p.add_argument("file", metavar="FILE", help="the file to import (.csv, .tsv, .xlsx, .jsonl)")
    p.add_argument("--store", required=True, metavar="URL", help="store URL, or a SQLite file (created when missing)")
    p.add_argument("--entity", default="customers", choices=IMPORT_KINDS, help="what the rows are (default: customers)")
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="COLUMN=FIELD",
        help="fill FIELD from COLUMN (repeat); FIELD may be custom.KEY, address.city, customer.custom.KEY; "
        "an empty FIELD leaves the column out",
    )
    p.add_argument("--mapping", metavar="FILE", help='mapping file: JSON {"column": "field"} or TOML')
    p.add_argument(
        "--key",
        action="append",
        metavar="FIELD",
        help="upsert key field, tried in order (repeat); default: id, custom.external_id, emails or phones",
    )
    p.add_argument("--dry-run", action="store_true", help="report problems and what would change; write nothing")
    p.add_argument("--per-batch", action="store_true", help="commit each clean batch (default: all or nothing)")
    p.add_argument("--batch-size", type=int, default=1000, metavar="N", help="rows per batch (default 1000)")
    p.add_argument("--workers", type=int, metavar="N", help="validating processes (default: up to 2 cores)")
    p.add_argument(
        "--exclusive",
        action="store_true",
        help="hold the store for the import (other connections wait); on an SQLite file, pages are written once, "
        "without the write-ahead log: for loading a store",
    )
    p.add_argument("--format", choices=("csv", "xlsx", "jsonl"), help="file format (default: from the extension)")
    p.add_argument("--encoding", help="text encoding (default: detected: UTF-8, UTF-8 with BOM, GB18030)")
    p.add_argument("--sheet", help="XLSX sheet (default: the first)")
    p.add_argument("--currency", default="CNY", help="currency of amounts written without one (default CNY)")
    p.add_argument("--timezone", default="UTC", help="time zone of times written without one (default UTC)")
    p.add_argument("--region", default="CN", help="region of phone numbers written without a country code (default CN)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)
    return p


def _mapping(specs: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for spec in specs:
        col, sep, field = spec.partition("=")
        if not sep or not col.strip():
            raise ValidationError([FieldError("--map", "bad_map", f"{spec!r}: expected COLUMN=FIELD, for example 电话=phones")])
        out[col.strip()] = field.strip() or None
    return out


def _progress(enabled: bool) -> tuple[Callable[[int], None] | None, Callable[[], None]]:
    if not enabled:
        return None, lambda: None
    try:
        from tqdm import tqdm  # type: ignore[import-untyped]
    except ImportError:  # tqdm is optional: a plain counter on standard error

        def plain(n: int) -> None:
            print(f"\r{PROG}: {n:,} rows", end="", file=sys.stderr, flush=True)

        return plain, lambda: print(file=sys.stderr)
    tqdm.monitor_interval = 0  # no monitor thread: the import may fork validating processes
    bar = tqdm(unit=" rows", desc=PROG, file=sys.stderr, leave=False, dynamic_ncols=True)

    def update(n: int) -> None:
        bar.update(n - bar.n)

    return update, bar.close


def run(args: argparse.Namespace) -> int:
    mapping: Any = _mapping(args.map)
    if args.mapping:
        from pycrm.io._mapping import load_mapping

        mapping = {**load_mapping(args.mapping), **mapping}
    crm = open_store(args.store, region=args.region, create=not args.dry_run)
    update, done = _progress(not args.no_progress and sys.stderr.isatty())
    try:
        report = import_file(
            crm,
            args.file,
            args.entity,
            mapping=mapping or None,
            key=args.key,
            format=args.format,
            encoding=args.encoding,
            sheet=args.sheet,
            dry_run=args.dry_run,
            per_batch=args.per_batch,
            batch_size=args.batch_size,
            workers=args.workers,
            currency=args.currency,
            timezone=args.timezone,
            progress=update,
            exclusive=args.exclusive,
        )
    except ImportRejected as exc:
        done()
        _print_problems(exc.report)
        kept = (
            f"; {exc.report.committed_rows} rows in clean batches were committed"
            if exc.report.per_batch
            else "; nothing was written"
        )
        print(f"{PROG}: {len(exc.report.problems)} problems{kept}", file=sys.stderr)
        return 2
    finally:
        done()
        crm.close()
    _print_problems(report)
    if args.exclusive and not report.exclusive and not args.dry_run:
        print(f"{PROG}: the store was not held (in use, or not an SQLite file): imported as usual", file=sys.stderr)
    print(report.summary())
    return 2 if report.problems else 0


def _print_problems(report: ImportReport) -> None:
    for p in report.problems:
        shown = quote(p.value, 60)
        value = f" (value {shown})" if p.value not in (None, "") and shown not in p.message else ""
        print(f"{PROG}: {p}{value}", file=sys.stderr)
