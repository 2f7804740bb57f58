"""``pycrm dedup FILE.csv``: duplicates in any CSV file, as pairs with their cluster.

    pycrm dedup customers.csv --id-column id -o pairs.csv
    pycrm dedup leads.csv --id-column lead_no --field company:name --field tel:phone --threshold 0.9

Without ``--field``, the columns are recognised by their header (name, company, e-mail, phone,
address, postcode, city, date of birth, ...). The output has one row per pair inside each cluster:
``id_a,id_b,score,cluster``. Exit status 0 on success, 2 on bad input, with one line naming the file,
the row and the column.

The ``pycrm`` command adds this with :func:`register`; :func:`run` does the work.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Iterator
from typing import IO, Any

from pycrm._files import check_csv_name, open_replacing
from pycrm.dedup._compare import KINDS
from pycrm.dedup._find import find_duplicates
from pycrm.dedup._records import infer_fields
from pycrm.errors import CRMError

__all__ = ["register", "run"]

PROG = "pycrm dedup"
HEADER = ("id_a", "id_b", "score", "cluster")


class BadInput(Exception):
    """One line for the user; exit status 2."""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``dedup`` sub-command to an ``argparse`` sub-parsers object; returns its parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "dedup",
        help="find duplicate records in a CSV file",
        description="Find duplicate records in a CSV file, with no labelled data and no tuning. "
        "Writes id_a,id_b,score,cluster: one row per pair inside each cluster of duplicates.",
    )
    add_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE.csv", help="UTF-8 CSV file with a header row")
    parser.add_argument("--id-column", required=True, metavar="COL", help="column holding each row's unique id")
    parser.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="COL:KIND",
        help=f"compare column COL as KIND ({', '.join(KINDS)}); repeat for more columns. "
        "Default: the columns recognised by their header",
    )
    parser.add_argument(
        "--threshold",
        metavar="X",
        help="match probability above which two rows are linked (0-1, default 0.5)",
    )
    parser.add_argument("-o", "--output", metavar="pairs.csv", help="write here instead of standard output")


def run(args: argparse.Namespace) -> int:
    """Run the command for parsed ``args``; returns the exit status."""
    try:
        return _run(args)
    except BadInput as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2


def _parse_fields(specs: list[str]) -> list[tuple[str, str]]:
    out = []
    for spec in specs:
        col, sep, kind = spec.rpartition(":")
        if not sep or not col or not kind:
            raise BadInput(f"--field {spec!r}: expected COL:KIND, for example company:name")
        out.append((col, kind.strip().lower()))
    return out


def _threshold(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise BadInput(f"--threshold {text!r}: expected a probability between 0 and 1, such as 0.5")
    return value


def _decode(path: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        row = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        head = data[line_start : exc.start].decode("utf-8", errors="replace")
        column = len(next(csv.reader([head]), [""]))
        header = next(csv.reader([data.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace")]), [])
        name = header[column - 1] if row > 1 and 0 < column <= len(header) else str(column)
        raise BadInput(
            f"{path}, row {row}, column {name}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8"
        ) from None


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise BadInput(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    text = _decode(path, data)
    if not text.strip():
        raise BadInput(f"{path}, row 1: the file is empty; expected a header row and data rows")
    return text


def _rows(path: str, reader: Any, width: int, id_index: int, id_column: str, columns: list[int]) -> Iterator[dict[str, Any]]:
    seen: dict[str, int] = {}
    try:
        for row in reader:
            line = reader.line_num
            if not row or not any(v.strip() for v in row):
                continue
            if len(row) > width:
                raise BadInput(f"{path}, row {line}: {len(row)} values but the header has {width} columns")
            rid = row[id_index].strip() if id_index < len(row) else ""
            if not rid:
                raise BadInput(f"{path}, row {line}, column {id_column}: the id is blank")
            if rid in seen:
                raise BadInput(f"{path}, row {line}, column {id_column}: id {rid!r} is already used on row {seen[rid]}")
            seen[rid] = line
            rec: dict[str, Any] = {"id": rid}
            for k, c in enumerate(columns):
                rec[f"c{k}"] = row[c] if c < len(row) else None
            yield rec
    except csv.Error as exc:
        raise BadInput(f"{path}, row {reader.line_num}: not valid CSV ({exc})") from None


def _run(args: argparse.Namespace) -> int:
    path: str = args.file
    if args.output:
        check_csv_name(args.output)  # before any work: a .xlsx or .pdf name never receives CSV
    field_specs = _parse_fields(list(args.field or []))
    threshold = _threshold(args.threshold)
    text = _read(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except csv.Error as exc:
        raise BadInput(f"{path}, row 1: not valid CSV ({exc})") from None
    header = [h.strip() for h in header]
    id_column: str = args.id_column
    if id_column not in header:
        shown = ", ".join(h for h in header[:12] if h) + (", ..." if len(header) > 12 else "")
        raise BadInput(f"{path}, row 1: no column {id_column!r} for --id-column (columns: {shown})")
    if header.count(id_column) > 1:
        raise BadInput(f"{path}, row 1, column {id_column}: the id column appears {header.count(id_column)} times in the header")
    if field_specs:
        for col, kind in field_specs:
            if col not in header:
                raise BadInput(f"{path}, row 1: no column {col!r} (named by --field {col}:{kind})")
            if kind not in KINDS:
                raise BadInput(f"{path}, row 1, column {col}: unknown comparator kind {kind!r} (use one of: {', '.join(KINDS)})")
        fields = field_specs
    else:
        fields = list(infer_fields(header, id_column=id_column).items())
        if not fields:
            raise BadInput(f"{path}, row 1: no column is recognised for matching; name some with --field COL:KIND")
    for col, _ in fields:
        if header.count(col) > 1:
            raise BadInput(f"{path}, row 1, column {col}: the column appears {header.count(col)} times in the header")
    columns = [header.index(col) for col, _ in fields]
    records = _rows(path, reader, len(header), header.index(id_column), id_column, columns)
    try:
        clusters = find_duplicates(records, fields={f"c{k}": kind for k, (_, kind) in enumerate(fields)}, threshold=threshold)
    except CRMError as exc:
        raise BadInput(f"{path}: {exc}") from None
    if args.output:
        try:
            with open_replacing(args.output, "w", newline="", encoding="utf-8") as out:
                pairs = _write(out, clusters)
        except OSError as exc:
            raise BadInput(f"{args.output}: cannot write the output ({exc.strerror or exc})") from None
        print(f"{PROG}: {len(clusters)} clusters, {pairs} pairs written to {args.output}", file=sys.stderr)
    else:
        _write(sys.stdout, clusters)
    return 0


def _write(out: IO[str], clusters: list[Any]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    count = 0
    for number, cluster in enumerate(clusters, 1):
        for m in cluster.pairs:
            writer.writerow((m.a, m.b, f"{m.score:.4f}", number))
            count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m pycrm.dedup._cli FILE.csv --id-column id``."""
    parser = argparse.ArgumentParser(prog=PROG, description=register.__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
