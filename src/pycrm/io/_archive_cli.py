"""``pycrm archive`` and ``pycrm unarchive``: retention rules on a store, and taking records back.

    pycrm archive sqlite:///crm.db --rule tickets-closed:365 --rule customers-inactive:730 --dry-run
    pycrm archive crm.db --rule tasks-done:90 --rule interactions.occurred_at:1095
    pycrm unarchive crm.db customers 0190c1d2e3f4...

Rules: ``tickets-closed:DAYS``, ``customers-inactive:DAYS``, ``tasks-done:DAYS``, ``REPOSITORY:DAYS``
(by ``updated_at``) and ``REPOSITORY.FIELD:DAYS``. Exit status 0 on success, 2 on bad input.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from pycrm.errors import FieldError, ValidationError

__all__ = ["register", "run_archive", "run_unarchive"]


def register(subparsers: Any) -> None:
    """Add ``archive`` and ``unarchive`` (once, however often it is called)."""
    if "archive" in subparsers.choices:
        return
    p = subparsers.add_parser(
        "archive",
        help="move old records out of the live tables by retention rules",
        description="Move the records the rules select into the store's archive (all or nothing). "
        "Archived records leave queries and reports but stay exportable; 'pycrm unarchive' brings them back.",
    )
    p.add_argument("db", metavar="DB_URL", help="store URL, or the path of an existing SQLite file")
    p.add_argument(
        "--rule",
        action="append",
        required=True,
        metavar="NAME:DAYS",
        help="tickets-closed:DAYS, customers-inactive:DAYS, tasks-done:DAYS, REPOSITORY:DAYS or "
        "REPOSITORY.FIELD:DAYS; repeat for more rules",
    )
    p.add_argument("--as-of", metavar="YYYY-MM-DD", help="count ages from this day (UTC midnight; default: now)")
    p.add_argument("--dry-run", action="store_true", help="list what would move; write nothing")
    p.add_argument("--list", action="store_true", help="also print each moved record as REPOSITORY ID")
    p.set_defaults(run=run_archive)

    p = subparsers.add_parser(
        "unarchive",
        help="bring archived records back into the live tables",
        description="Bring archived records back exactly as they were; a customer comes back with the "
        "records archived together with it.",
    )
    p.add_argument("db", metavar="DB_URL", help="store URL, or the path of an existing SQLite file")
    p.add_argument("repository", help="customers, tickets, tasks, ...")
    p.add_argument("ids", nargs="+", metavar="ID", help="ids of archived records")
    p.set_defaults(run=run_unarchive)


def _as_of(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError([FieldError("--as-of", "invalid_date", f"{text!r} is not a date YYYY-MM-DD")]) from None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _print(result: Any, listing: bool) -> None:
    if listing:
        for repository, ids in result.moved.items():
            for id in ids:
                print(f"{repository} {id}")
    print(f"pycrm {result.direction}: {result}")


def run_archive(args: argparse.Namespace) -> int:
    import pycrm
    from pycrm.io._archive import archive, parse_rule
    from pycrm.io._backup_cli import store_url

    rules = []
    for text in args.rule:
        try:
            rules.append(parse_rule(text))
        except ValidationError as exc:
            raise ValidationError([FieldError(f"--rule {text}", e.code, e.message) for e in exc.errors]) from None
    as_of = _as_of(args.as_of)
    with pycrm.open(store_url(args.db, must_exist=True)) as crm:
        result = archive(crm, rules, as_of=as_of, dry_run=args.dry_run)
    _print(result, args.list or args.dry_run)
    return 0


def run_unarchive(args: argparse.Namespace) -> int:
    import pycrm
    from pycrm.io._archive import unarchive
    from pycrm.io._backup_cli import store_url

    with pycrm.open(store_url(args.db, must_exist=True)) as crm:
        result = unarchive(crm, args.repository, args.ids)
    _print(result, True)
    return 0
