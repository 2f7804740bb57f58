"""``pycrm dispatch``: deliver a store's outbox from cron (or any scheduler).

    pycrm dispatch sqlite:///crm.db --config automation.toml
    pycrm dispatch postgresql+psycopg://crm@db/crm --handlers myapp.events:register --limit 10000
    pycrm dispatch crm.db --status
    pycrm dispatch crm.db --replay-dead

``--config`` names a TOML or JSON file with ``rules`` and ``webhooks`` lists (docs/automation.md);
``--handlers MODULE:FUNCTION`` calls ``FUNCTION(crm)`` of an importable module to register a host's own
handlers (repeatable). Prints what was delivered and what the outbox holds. Exit status 0 on success, 2 on
bad input, 3 when the store failed.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from pycrm.errors import FieldError, ValidationError

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "dispatch",
        help="deliver the outbox's due events to the configured handlers",
        description="Deliver the due events of a store's outbox (pycrm.open(..., outbox=True)) to the rules and "
        "webhooks of --config and the handlers --handlers registers: at least once, in order per record, failures "
        "retried with backoff and then dead-lettered. Run it from cron or any scheduler.",
    )
    p.add_argument("db", metavar="DB_URL", help="store URL, or the path of an existing SQLite file")
    p.add_argument("--config", metavar="FILE", help="a TOML or JSON file with 'rules' and 'webhooks' lists")
    p.add_argument(
        "--handlers",
        action="append",
        default=[],
        metavar="MODULE:FUNCTION",
        help="call FUNCTION(crm) of an importable module to register handlers (repeatable)",
    )
    p.add_argument("--limit", type=int, metavar="N", help="deliver at most N events (default: every due one)")
    p.add_argument("--batch", type=int, default=500, metavar="N", help="events claimed at a time (default 500)")
    p.add_argument("--status", action="store_true", help="only print what the outbox holds")
    p.add_argument("--replay-dead", action="store_true", help="bring dead events back before delivering")
    p.set_defaults(run=run)


def _hook(spec: str) -> Any:
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValidationError([FieldError("--handlers", "bad_value", f"{spec!r}: expected MODULE:FUNCTION")])
    try:
        fn = getattr(importlib.import_module(module), name)
    except Exception as exc:  # the host's module: whatever importing it raised, said in one line
        raise ValidationError([FieldError("--handlers", "bad_value", f"{spec!r}: {type(exc).__name__}: {exc}")]) from None
    if not callable(fn):
        raise ValidationError([FieldError("--handlers", "bad_value", f"{spec!r} is not callable")])
    return fn


def configure(crm: Any, config: str | None, hooks: list[str]) -> None:
    """Register the handlers of ``--config`` and ``--handlers`` on ``crm``."""
    if config is not None:
        from pycrm.automation._config import apply_config

        apply_config(crm, config)
    for spec in hooks:
        _hook(spec)(crm)


def run(args: argparse.Namespace) -> int:
    import pycrm
    from pycrm.io._backup_cli import store_url

    for name in ("limit", "batch"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValidationError([FieldError(f"--{name}", "range", f"must be at least 1, got {value}")])
    with pycrm.open(store_url(args.db, must_exist=True), outbox=True) as crm:
        if not args.status:
            configure(crm, args.config, args.handlers)
            if args.replay_dead:
                print(f"replayed {crm.outbox.replay()} dead events")
            if len(crm.handlers) == 0:
                raise ValidationError([FieldError("--config", "required", "no handlers: give --config or --handlers")])
            r = crm.dispatch(limit=args.limit, batch=args.batch)
            print(f"delivered {r.delivered}, retrying {r.retrying}, dead {r.dead} ({r.calls} handler calls, {r.failures} failed)")
        counts = crm.outbox.counts()
        print(f"outbox: {counts['pending']} pending, {counts['done']} done, {counts['dead']} dead")
    return 0
