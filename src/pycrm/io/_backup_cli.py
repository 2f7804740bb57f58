"""``pycrm backup``, ``pycrm restore`` and ``pycrm verify-backup``: copies of a store and back.

    pycrm backup sqlite:///crm.db crm-2025-01-31.jsonl.gz             # logical dump, any adapter
    pycrm backup crm.db crm-2025-01-31.db --method sqlite             # SQLite online backup of the file
    pycrm backup crm.db crm-02-01.inc.jsonl.gz --incremental crm-2025-01-31.jsonl.gz   # changes since
    pycrm restore crm-2025-01-31.jsonl.gz postgresql+psycopg://u@h/crm   # into an EMPTY store
    pycrm restore crm-2025-01-31.jsonl.gz new.db --increment crm-02-01.inc.jsonl.gz   # up to that point
    pycrm verify-backup crm-2025-01-31.jsonl.gz sqlite:///crm.db      # counts and checksums per kind

``DB_URL`` is a store URL or the path of a SQLite file. Exit status 0 on success, 1 when
``verify-backup`` finds a difference, 2 on bad input (one line naming the file and line).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pycrm.errors import FieldError, ValidationError

__all__ = ["register", "run_backup", "run_restore", "run_verify", "store_url"]

EXIT_DIFFERS = 1


def register(subparsers: Any) -> None:
    """Add ``backup``, ``restore`` and ``verify-backup`` (once, however often it is called)."""
    if "backup" in subparsers.choices:
        return
    p = subparsers.add_parser(
        "backup",
        help="write a consistent backup of a store (JSON Lines dump, or a SQLite file copy)",
        description="Write a consistent backup of a live store. The logical method (default) writes a "
        "JSON Lines dump that restores into any adapter (gzip-compressed when FILE ends in .gz); "
        "the sqlite method copies a SQLite store with SQLite's online backup API.",
    )
    p.add_argument("db", metavar="DB_URL", help="store URL, or the path of an existing SQLite file")
    p.add_argument("file", metavar="FILE", help="where to write the backup (.jsonl, .jsonl.gz, or .db with --method sqlite)")
    p.add_argument("--method", default="logical", choices=("logical", "sqlite"), help="logical (default) or sqlite")
    p.add_argument(
        "--incremental",
        metavar="BASE",
        help="write an increment: only what changed after BASE, the previous backup of the chain (full or increment)",
    )
    p.set_defaults(run=run_backup)

    p = subparsers.add_parser(
        "restore",
        help="load a backup into an empty store of any adapter, then verify it",
        description="Load a backup (a dump, or a SQLite file from 'pycrm backup --method sqlite') into an "
        "empty store, all or nothing, and compare counts and checksums per kind.",
    )
    p.add_argument("file", metavar="FILE", help="the backup file")
    p.add_argument("db", metavar="DB_URL", help="target store URL (must be empty), or a SQLite file path")
    p.add_argument(
        "--increment",
        metavar="INC",
        action="append",
        default=[],
        help="an increment to apply after FILE, repeated in chain order: restores to the point of the last one",
    )
    p.set_defaults(run=run_restore)

    p = subparsers.add_parser(
        "verify-backup",
        help="compare a backup with a store (counts and checksums per kind)",
        description="Compare a backup with a store: record counts and checksums per entity kind and record "
        "stream. Exit status 0 when they match, 1 when they differ.",
    )
    p.add_argument("file", metavar="FILE", help="the backup file")
    p.add_argument("db", metavar="DB_URL", help="store URL, or the path of an existing SQLite file")
    p.set_defaults(run=run_verify)


def store_url(text: str, *, must_exist: bool) -> str:
    """A store URL for ``DB_URL``: a URL as given, or a SQLite file (which must exist when reading from it)."""
    if not isinstance(text, str):  # argparse gives a list for "x -- --"
        raise ValidationError([FieldError("DB_URL", "type", "expected one store URL or SQLite file")])
    text = text.strip()
    if text in ("memory://", "memory:"):
        return "memory://"
    if "://" in text and not text.startswith("sqlite:///"):
        return text
    path = Path(text[len("sqlite:///") :] if text.startswith("sqlite:///") else text)
    if must_exist and not path.is_file():
        raise ValidationError([FieldError(str(path), "not_found", "no such SQLite file")])
    if not must_exist and not path.parent.is_dir():
        raise ValidationError([FieldError(str(path), "not_found", f"no such directory: {path.parent}")])
    return f"sqlite:///{path}"


def _open(text: str, *, must_exist: bool) -> Any:
    import pycrm

    return pycrm.open(store_url(text, must_exist=must_exist))


def run_backup(args: argparse.Namespace) -> int:
    from pycrm.io._backup import backup

    with _open(args.db, must_exist=True) as crm:
        if args.incremental:
            result = backup(crm, args.file, method=args.method, base=args.incremental)
            changed = sum(result.counts.values())
            print(f"pycrm backup: {result.file} (increment after {args.incremental}): {changed} entities changed")
            return 0
        result = backup(crm, args.file, method=args.method)
    total = sum(result.counts.values())
    kinds = ", ".join(f"{n} {k}" for k, n in result.counts.items() if n)
    print(f"pycrm backup: {result.file} ({result.method}): {total} entities{': ' + kinds if kinds else ''}")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    from pycrm.io._backup import restore

    with _open(args.db, must_exist=False) as crm:
        result = restore(crm, args.file, increments=args.increment)
    print(result)
    upto = f" + {len(args.increment)} increment(s) up to {args.increment[-1]}" if args.increment else ""
    print(f"pycrm restore: {args.file}{upto} -> {crm.url}: restored and verified")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from pycrm.io._backup import verify

    with _open(args.db, must_exist=True) as crm:
        result = verify(crm, args.file)
    print(result)
    if not result.ok:
        names = ", ".join(g.name for g in result.mismatches)
        print(f"pycrm verify-backup: {args.file} and {crm.url} differ in {names}", file=sys.stderr)
        return EXIT_DIFFERS
    return 0
