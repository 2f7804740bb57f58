"""``pycrm rfm FILE.csv --customer-column C --date-column D --amount-column A --as-of YYYY-MM-DD [-o out.csv]``."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from pycrm._files import check_csv_name, open_replacing
from pycrm.analytics._common import report_day
from pycrm.analytics._rfm import RFMScore, rfm
from pycrm.domain._values import _to_amount
from pycrm.errors import FieldError, ValidationError

FIELDS = ("customer_id", "recency_days", "frequency", "monetary", "r", "f", "m", "segment")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "rfm",
        help="RFM scores and segments from an order CSV",
        description="Score customers by recency, frequency and monetary value.",
    )
    p.add_argument("file", type=Path, help="CSV with one order per row (UTF-8, header row)")
    p.add_argument("--customer-column", required=True, help="column holding the customer id")
    p.add_argument("--date-column", required=True, help="column holding the order date (YYYY-MM-DD or ISO date-time)")
    p.add_argument("--amount-column", required=True, help="column holding the order amount")
    p.add_argument("--as-of", required=True, help="reference date YYYY-MM-DD; later orders are ignored")
    p.add_argument("--bins", type=int, default=5, help="score bins (default 5)")
    p.add_argument("-o", "--output", type=Path, help="write scores CSV here (default: standard output)")
    p.set_defaults(run=run)


def _parse_date(text: str, where: str) -> dt.datetime:
    t = text.strip()
    try:
        if len(t) == 10:
            d = dt.date.fromisoformat(t)
            return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)
        at = dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError([FieldError(where, "invalid_date", f"{t[:40]!r} is not a date (YYYY-MM-DD)")]) from None
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def read_orders(path: Path, customer: str, date: str, amount: str) -> Iterator[tuple[str, dt.datetime, Decimal]]:
    """Stream (customer_id, occurred_at, amount) from a CSV; errors name the file, row and column."""
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ValidationError([FieldError(str(path), "unreadable", exc.strerror or str(exc))]) from None
    with fh:
        try:
            reader = csv.DictReader(fh)
            header = reader.fieldnames
            if not header:
                raise ValidationError([FieldError(str(path), "empty", "the file is empty (no header row)")])
            missing = [c for c in (customer, date, amount) if c not in header]
            if missing:
                raise ValidationError(
                    [
                        FieldError(f"{path}: column {c!r}", "missing_column", f"not in the header ({', '.join(header)})")
                        for c in missing
                    ]
                )
            for n, row in enumerate(reader, start=2):
                where = f"{path}: row {n}"
                if None in row or any(v is None for v in row.values()):
                    raise ValidationError(
                        [FieldError(where, "ragged", f"has {len(header)} columns in the header but not in this row")]
                    )
                cid = row[customer].strip()
                if not cid:
                    raise ValidationError([FieldError(f"{where}, column {customer!r}", "required", "customer id is empty")])
                at = _parse_date(row[date], f"{where}, column {date!r}")
                value = _to_amount(row[amount], f"{where}, column {amount!r}")
                if value < 0:
                    raise ValidationError([FieldError(f"{where}, column {amount!r}", "negative", f"{value} is negative")])
                yield cid, at, value
        except UnicodeDecodeError as exc:
            raise ValidationError(
                [FieldError(str(path), "encoding", f"is not UTF-8 text ({exc.reason} at byte {exc.start})")]
            ) from None
        except csv.Error as exc:
            raise ValidationError([FieldError(str(path), "csv", str(exc))]) from None


def write_scores(scores: list[RFMScore], out: IO[str]) -> None:
    w = csv.writer(out, lineterminator="\n")
    w.writerow(FIELDS)
    for s in scores:
        w.writerow([s.customer_id, s.recency_days, s.frequency, s.monetary, s.r, s.f, s.m, s.segment or ""])


def run(args: argparse.Namespace) -> int:
    if args.output:
        check_csv_name(args.output)
    as_of = report_day(args.as_of, "--as-of")
    scores = rfm(read_orders(args.file, args.customer_column, args.date_column, args.amount_column), as_of=as_of, bins=args.bins)
    if args.output:
        with open_replacing(args.output, "w", encoding="utf-8", newline="") as out:
            write_scores(scores, out)
        print(f"{len(scores)} customers scored -> {args.output}", file=sys.stderr)
    else:
        write_scores(scores, sys.stdout)
    return 0
