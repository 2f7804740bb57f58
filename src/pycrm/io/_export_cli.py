"""``pycrm export ENTITY --store URL``: records to CSV, XLSX or JSON Lines.

    pycrm export customers --store crm.db -o customers.csv
    pycrm export orders --store crm.db --where '{"amount": {"gte": 1000}}' --fields id,customer_id,amount,currency -o big.jsonl

The output imports back unchanged (``pycrm import``). Exit status 0 on success, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pycrm.domain._checks import json_loads
from pycrm.errors import FieldError, ValidationError
from pycrm.io._cli_common import open_store
from pycrm.io._export import export_file
from pycrm.io._formats import output_format
from pycrm.io._mapping import IMPORT_KINDS

__all__ = ["register", "run"]

PROG = "pycrm export"


def register(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "export",
        help="export records to CSV, XLSX or JSON Lines",
        description="Export the records of a store that match --where, the --fields chosen, to CSV, XLSX or JSON Lines "
        "(streaming). Exit status 0 on success, 2 on bad input.",
    )
    p.add_argument("entity", choices=IMPORT_KINDS, help="what to export")
    p.add_argument("--store", required=True, metavar="URL", help="store URL or SQLite file")
    p.add_argument(
        "-o",
        "--output",
        default="-",
        metavar="FILE",
        help="output file: .csv, .xlsx or .jsonl (default: standard output, CSV; XLSX needs a file)",
    )
    p.add_argument("--format", choices=("csv", "xlsx", "jsonl"), help="output format (default: from the file name)")
    p.add_argument("--where", metavar="JSON", help='filter, as JSON: \'{"status": "active"}\'')
    p.add_argument("--fields", metavar="A,B,...", help="columns to write, in order (default: every importable field)")
    p.add_argument("--region", default="CN", help="region of phone numbers in --where without a country code (default CN)")
    p.add_argument("--bom", action="store_true", help="CSV: start with a UTF-8 byte order mark (for Excel)")
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes writing a large CSV or JSON Lines export of an SQLite file together (default: one per CPU, "
        "at most 4, from 200,000 records; 1: this process only)",
    )
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    where = None
    if args.where:
        try:
            where = json_loads(args.where)
        except ValueError as exc:
            raise ValidationError([FieldError("--where", "bad_where", f"not JSON ({exc})")]) from None
        if not isinstance(where, dict):
            raise ValidationError([FieldError("--where", "bad_where", 'expected a JSON object such as {"status": "active"}')])
    fields = [f.strip() for f in args.fields.split(",") if f.strip()] if args.fields else None
    output_format(args.output, args.format, field="-o")  # before the store opens: nothing written on a bad name
    crm = open_store(args.store, region=args.region, create=False)
    try:
        n = export_file(
            crm, args.output, args.entity, where=where, fields=fields, format=args.format, bom=args.bom, workers=args.workers
        )
    finally:
        crm.close()
    if args.output != "-":
        print(f"{PROG}: {n} {args.entity} written to {args.output}", file=sys.stderr)
    return 0
