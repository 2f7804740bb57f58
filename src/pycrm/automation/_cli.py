"""``pycrm run-due --store URL [--now ISO] [--task-due-hours H] [--overdue] [--dormant-days N] [--stale-days N]
[--anniversary REPOSITORY.FIELD ...]``: the time rules of ``crm.run_due``, for cron.

Prints one line per rule (``name: found N, fired N, already N``); exit status 0, 2 on bad input.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from pycrm.errors import FieldError, ValidationError, quote


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run-due",
        help="fire the time rules (tasks due / overdue, dormant customers, stale deals, anniversaries) once",
        description="Evaluate time rules and write the events they fire to the store's outbox, each record once per "
        "period however often this runs (run it from cron; deliver with your dispatcher).",
    )
    p.add_argument("--store", required=True, metavar="URL", help="store URL or SQLite file")
    p.add_argument("--now", metavar="ISO", help="the time to evaluate at (ISO 8601 with a zone; default: now)")
    p.add_argument("--task-due-hours", type=float, metavar="H", help="TaskDue for open tasks due within H hours")
    p.add_argument("--overdue", action="store_true", help="TaskOverdue for open tasks past due")
    p.add_argument("--dormant-days", type=int, metavar="N", help="CustomerDormant after N days without orders or interactions")
    p.add_argument("--stale-days", type=int, metavar="N", help="OpportunityStale for open deals N days without a stage change")
    p.add_argument(
        "--anniversary",
        action="append",
        default=[],
        metavar="REPOSITORY.FIELD",
        help="DateAnniversary for a date field, e.g. customers.created_at or customers.custom.birthday (repeatable)",
    )
    p.set_defaults(run=run)


def _now(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        at = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError([FieldError("--now", "invalid_datetime", f"{quote(text, 40)} is not an ISO date-time")]) from None
    if at.tzinfo is None:
        raise ValidationError([FieldError("--now", "invalid_datetime", f"{quote(text, 40)} has no time zone (add Z or +00:00)")])
    return at


def rules_of(args: argparse.Namespace) -> list[Any]:
    from pycrm.automation._due import Anniversaries, DormantCustomers, OverdueTasks, StaleOpportunities, TaskDueSoon

    rules: list[Any] = []
    if args.task_due_hours is not None:
        rules.append(TaskDueSoon(within_hours=args.task_due_hours))
    if args.overdue:
        rules.append(OverdueTasks())
    if args.dormant_days is not None:
        rules.append(DormantCustomers(days=args.dormant_days))
    if args.stale_days is not None:
        rules.append(StaleOpportunities(days=args.stale_days))
    for text in args.anniversary:
        repository, dot, field = text.partition(".")
        if not dot:
            raise ValidationError([FieldError("--anniversary", "invalid_field", f"{quote(text, 60)} is not REPOSITORY.FIELD")])
        rules.append(Anniversaries(repository=repository, field=field))
    if not rules:
        raise ValidationError(
            [FieldError("rules", "required", "name at least one rule (--task-due-hours, --overdue, --dormant-days, ...)")]
        )
    return rules


def run(args: argparse.Namespace) -> int:
    import pycrm

    now = _now(args.now)
    rules = rules_of(args)
    url = args.store.strip()
    if "://" not in url:
        if not Path(url).is_file():
            raise ValidationError([FieldError("--store", "bad_store", f"{url}: no such store")])
        url = f"sqlite:///{url}"
    with pycrm.open(url, outbox=True) as crm:
        result = crm.run_due(rules, now=now)
    for r in result.rules:
        print(f"{r.name}: found {r.found}, fired {r.fired}, already {r.already}")
    return 0
