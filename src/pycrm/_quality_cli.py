"""``pycrm quality [--store URL] [--entity customers] [--stale-days N] [--as-of YYYY-MM-DD] [--duplicates]``
``[--format text|json]``.

Prints the data-quality report of one repository of a store (``s.quality.report``, see docs/quality.md):
completeness per field, phones and e-mails that no longer parse, stale records, and with ``--duplicates``
the share of records in a duplicate cluster. The store defaults to the demo's SQLite file. Bad input is one
line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from pycrm.errors import CRMError, FieldError, ValidationError

DEFAULT_STORE = "pycrm-demo.db"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "quality",
        help="data-quality report of a store: completeness, invalid phones/e-mails, stale records",
        description="Print the data-quality report of one repository of a pycrm store.",
    )
    p.add_argument("--store", default=DEFAULT_STORE, metavar="URL", help=f"store URL or SQLite file (default: {DEFAULT_STORE})")
    p.add_argument("--entity", default="customers", help="repository to report on (default: customers)")
    p.add_argument("--stale-days", default="365", help="records not updated for this many days are stale (default 365)")
    p.add_argument("--as-of", help="reference date YYYY-MM-DD (default: now, UTC)")
    p.add_argument("--duplicates", action="store_true", help="also the duplicate rate (pycrm.dedup; costly)")
    p.add_argument("--format", default="text", choices=("text", "json"), help="text (default) or json")
    p.set_defaults(run=run)


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 100_000:
        raise ValidationError([FieldError("--stale-days", "invalid", f"{text!r} is not a whole number from 1 to 100000")])
    return value


def _as_of(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ValidationError([FieldError("--as-of", "invalid", f"{text!r} is not a date YYYY-MM-DD")]) from None
    return dt.datetime.combine(day, dt.time(23, 59, 59), dt.UTC)


def format_text(report: Any) -> str:
    """The report as plain-text lines (what ``pycrm quality`` and ``pycrm demo`` print)."""
    lines = [f"{report.entity}: {report.total} records"]
    for field, c in report.completeness.items():
        lines.append(f"  {field:<16} {c.filled:>7} filled  {c.share:6.1%}")
    for field, bad in report.invalid.items():
        sample = f"  e.g. {', '.join(bad.sample[:3])}" if bad.sample else ""
        lines.append(f"  invalid {field:<8} {bad.records:>7} records{sample}")
    lines.append(f"  stale (>{report.stale_days} days) {report.stale:>4} records")
    if report.duplicates is not None:
        lines.append(f"  in duplicate clusters {report.duplicates:6.1%}")
    for field, why in report.skipped.items():
        lines.append(f"  {field}: not reported ({why})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import pycrm
    from pycrm.analytics._report_cli import _store_url
    from pycrm.storage.port import DriverErrors

    problems: list[FieldError] = []
    days = as_of = None
    try:
        days = _days(args.stale_days)
    except ValidationError as exc:
        problems += exc.errors
    try:
        as_of = _as_of(args.as_of)
    except ValidationError as exc:
        problems += exc.errors
    if problems:
        raise ValidationError(problems)
    assert days is not None
    url = _store_url(args.store)
    with pycrm.open(url) as crm:
        store = crm.store
        errors = store.driver_errors() if isinstance(store, DriverErrors) else ()
        try:
            with crm.session() as s:
                report = s.quality.report(args.entity, stale_days=days, as_of=as_of, duplicates=args.duplicates)
        except errors as exc:
            raise CRMError(f"--store {args.store}: cannot read the store: {type(exc).__name__}: {exc}") from None
    if args.format == "json":
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        print(f"pycrm quality: store {args.store}, as of {report.as_of.date().isoformat()}\n")
        print(format_text(report))
    return 0
