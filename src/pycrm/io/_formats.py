"""Reading and writing the file formats: CSV (UTF-8, UTF-8 with BOM, GB18030), XLSX and JSON Lines.

Readers stream: they yield ``(row number, values)`` where the row number is the one a spreadsheet shows
(the header is row 1; for JSON Lines the line number) and ``values`` is a list aligned with the header
(CSV, XLSX) or a dict (JSON Lines). File-level problems (not a text file, an image or a ZIP under a
``.csv`` name, an encoding that is neither UTF-8 nor GB18030, no header) raise ``ValidationError`` naming
the file; row-level ones (ragged rows, an undecodable line, a line that is not a JSON object) are
yielded as :class:`RowProblem` so the caller can report them all.

>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> p = os.path.join(d, "c.csv")
>>> _ = open(p, "wb").write("名称,电话\\n华为,13800138000\\n".encode("gb18030"))
>>> with open_reader(p) as r:
...     r.format, r.encoding, r.header, list(r)
('csv', 'gb18030', ['名称', '电话'], [(2, ['华为', '13800138000'])])
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import itertools
import json
import operator
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from typing import IO, Any

import attrs

from pycrm._files import open_replacing, replacing
from pycrm.domain._checks import JSONTooDeep, json_loads
from pycrm.errors import FieldError, ValidationError

__all__ = [
    "FORMATS",
    "Reader",
    "RowProblem",
    "Writer",
    "detect_format",
    "file_error",
    "open_reader",
    "open_writer",
    "output_format",
]

FORMATS = ("csv", "xlsx", "jsonl")

_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}

#: Leading bytes of files that are certainly not CSV or JSON Lines text.
_MAGIC = (
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook is one: name the file .xlsx)"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"\xd0\xcf\x11\xe0", "an old binary Excel (.xls) or Office file; save it as .xlsx or CSV"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BM", "a BMP image"),
)

SAMPLE = 1 << 20  # bytes read to detect the encoding


def file_error(
    file: str | os.PathLike[str], message: str, *, row: int | None = None, column: str | None = None, code: str = "bad_file"
) -> ValidationError:
    """A ValidationError whose field names the place: ``crm.csv, row 3, column 'email'``."""
    where = ", ".join(
        p for p in (os.fspath(file), f"row {row}" if row is not None else None, f"column {column!r}" if column else None) if p
    )
    return ValidationError([FieldError(where, code, message)])


@attrs.frozen
class RowProblem:
    """A row that could not be read at all (ragged, undecodable, not JSON)."""

    row: int
    column: str | None
    value: str | None
    message: str


def detect_format(path: str | os.PathLike[str], format: str | None = None) -> str:
    """``csv``, ``xlsx`` or ``jsonl``, from ``format`` or the file name's extension (CSV by default)."""
    if format is not None:
        f = format.lower().lstrip(".")
        f = {"json": "jsonl", "ndjson": "jsonl", "tsv": "csv", "xlsm": "xlsx"}.get(f, f)
        if f not in FORMATS:
            raise file_error(path, f"unknown format {format!r} (use one of: {', '.join(FORMATS)})", code="bad_format")
        return f
    return _EXTENSIONS.get(os.path.splitext(os.fspath(path))[1].lower(), "csv")


def output_format(path: str | os.PathLike[str], format: str | None = None, *, field: str | None = None) -> str:
    """The format to write to ``path`` (``"-"``: standard output): ``format`` or the file's extension (CSV
    when it has none). Refuses what would write the wrong bytes under a name: an extension pycrm does not
    write (``out.pdf``), one that contradicts ``format`` (``--format xlsx -o out.csv``), and an XLSX workbook
    to standard output. ``field`` names the option in the error (``-o``; default: the file name)."""
    name = os.fspath(path)
    where = field or name
    fmt = detect_format(name, format)
    if name == "-":
        if fmt == "xlsx":
            raise ValidationError(
                [
                    FieldError(
                        where, "binary_output", "an XLSX workbook is not written to standard output; name a file: -o FILE.xlsx"
                    )
                ]
            )
        return fmt
    ext = os.path.splitext(name)[1].lower()
    if not ext:
        return fmt
    known = _EXTENSIONS.get(ext)
    if known is None:
        raise ValidationError(
            [FieldError(where, "bad_extension", f"{name}: pycrm does not write {ext} files (name it .csv, .xlsx or .jsonl)")]
        )
    if known != fmt:
        raise ValidationError(
            [
                FieldError(
                    where,
                    "bad_extension",
                    f"{name}: a {ext} file cannot hold {fmt.upper()}; name it for the format or drop --format",
                )
            ]
        )
    return fmt


def _sniff_binary(path: str, head: bytes, fmt: str) -> None:
    for magic, what in _MAGIC:
        if head.startswith(magic):
            if fmt == "xlsx" and magic == b"PK\x03\x04":
                return
            raise file_error(
                path,
                f"this is {what}, not {'an XLSX workbook' if fmt == 'xlsx' else fmt.upper() + ' text'}",
                row=None,
                code="bad_file",
            )
    if fmt == "xlsx":
        raise file_error(path, "not an XLSX workbook (an .xlsx file is a ZIP archive); is it CSV text named .xlsx?")
    if b"\x00" in head[:4096] and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise file_error(path, "this is binary data (it holds NUL bytes), not text")


def _detect_encoding(path: str, head: bytes, encoding: str | None) -> str:
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise file_error(path, f"unknown encoding {encoding!r}", code="bad_encoding") from None
        return encoding
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    utf8 = codecs.getincrementaldecoder("utf-8")()
    try:
        utf8.decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    gb = codecs.getincrementaldecoder("gb18030")()
    try:
        gb.decode(head, final=False)
        return "gb18030"
    except UnicodeDecodeError:
        pass
    row, column = _locate(head, first_bad)
    raise file_error(
        path,
        f"the text is neither UTF-8 nor GB18030 (byte 0x{head[first_bad]:02x}); save the file as UTF-8 or pass an encoding",
        row=row,
        column=column,
        code="bad_encoding",
    )


def _locate(data: bytes, offset: int) -> tuple[int, str | None]:
    """(line number, column name or number) of a byte offset, for messages about undecodable bytes."""
    row = data.count(b"\n", 0, offset) + 1
    start = data.rfind(b"\n", 0, offset) + 1
    prefix = data[start:offset].decode("utf-8", errors="replace")
    index = len(next(csv.reader([prefix]), [""])) - 1 if prefix else 0
    header = next(csv.reader([data.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").rstrip("\r")]), [])
    column = header[index] if row > 1 and index < len(header) else str(index + 1)
    return row, column


class Reader:
    """A streaming reader of one file: ``format``, ``encoding``, ``header``; iterate for rows."""

    format: str
    encoding: str | None
    header: list[str]

    def __init__(self, path: str, format: str | None = None, encoding: str | None = None, *, sheet: str | None = None):
        self.path = path
        self.format = detect_format(path, format)
        self.encoding = None
        self._closers: list[Any] = []
        try:
            with open(path, "rb") as f:
                head = f.read(SAMPLE)
        except FileNotFoundError:
            raise file_error(path, "no such file", code="not_found") from None
        except IsADirectoryError:
            raise file_error(path, "is a directory, not a file", code="bad_file") from None
        except OSError as exc:
            raise file_error(path, f"cannot read the file ({exc.strerror or exc})", code="bad_file") from None
        if not head.strip():
            raise file_error(path, "the file is empty; expected a header row and data rows", row=1, code="empty")
        _sniff_binary(path, head, self.format)
        self._rows: Iterator[tuple[int, Any] | RowProblem]
        if self.format == "xlsx":
            self._open_xlsx(sheet)
        else:
            self.encoding = _detect_encoding(path, head, encoding)
            if self.format == "csv":
                self._open_csv(head)
            else:
                self._open_jsonl()

    # ---- CSV ----
    def _lines(self) -> Iterator[str]:
        """Decoded lines; an undecodable one ends the file with a RowProblem (raised as _BadLine)."""
        enc = self.encoding or "utf-8"
        if enc == "utf-16":  # newlines are two bytes: let the text layer split them
            f16 = open(self.path, encoding=enc, newline="")  # noqa: SIM115 - closed by close()
            self._closers.append(f16)
            yield from f16
            return
        f = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        self._closers.append(f)
        decode = codecs.getdecoder(enc)
        for line_no, raw in enumerate(f, 1):
            try:
                yield decode(raw)[0]
            except UnicodeDecodeError as exc:
                prefix = raw[: exc.start].decode(enc, errors="replace")
                col = len(next(csv.reader([prefix]), [""])) if prefix else 1
                raise _BadLine(line_no, col, f"not {enc} text (byte 0x{raw[exc.start]:02x}); the file mixes encodings") from None

    def _open_csv(self, head: bytes) -> None:
        first = head.split(b"\n", 1)[0].decode(self.encoding or "utf-8", errors="replace")
        ext = os.path.splitext(self.path)[1].lower()
        counts = {d: first.count(d) for d in (",", ";", "\t")}
        delimiter = "\t" if ext == ".tsv" else max(counts, key=lambda d: (counts[d], d == ","))
        lines = self._lines()
        reader = csv.reader(lines, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise file_error(self.path, "the file is empty; expected a header row", row=1, code="empty") from None
        except _BadLine as exc:
            raise file_error(self.path, exc.message, row=exc.line, column=str(exc.column), code="bad_encoding") from None
        except csv.Error as exc:
            raise file_error(self.path, f"not valid CSV ({exc})", row=1, code="bad_csv") from None
        if header and header[0].startswith("\ufeff"):
            header[0] = header[0][1:]
        self.header = _check_header(self.path, [h.strip() for h in header])
        self._rows = self._csv_rows(reader, len(self.header))

    def _csv_rows(self, reader: Any, width: int) -> Iterator[tuple[int, Any] | RowProblem]:
        header = self.header
        row = 1
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except _BadLine as exc:
                name = header[exc.column - 1] if 0 < exc.column <= len(header) else str(exc.column)
                yield RowProblem(exc.line, name, None, exc.message)
                return
            except csv.Error as exc:
                yield RowProblem(row + 1, None, None, f"not valid CSV ({exc})")
                return
            row += 1
            n = len(values)
            if n != width:
                if n == 0 or not any(v.strip() for v in values):
                    continue  # a blank line
                if n > width:
                    extra = values[width:]
                    if any(v.strip() for v in extra):
                        yield RowProblem(row, f"#{width + 1}", extra[0][:80], f"{n} values but the header has {width} columns")
                        continue
                    values = values[:width]
                else:
                    yield RowProblem(row, header[n], None, f"{n} values but the header has {width} columns")
                    continue
            yield row, values

    # ---- XLSX ----
    def _open_xlsx(self, sheet: str | None) -> None:
        try:
            import openpyxl  # type: ignore[import-untyped]
        except ImportError:  # pragma: no cover - an optional dependency
            raise file_error(
                self.path, "reading XLSX needs openpyxl: pip install 'pycrm[excel]'", code="missing_dependency"
            ) from None
        try:
            wb = openpyxl.load_workbook(self.path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a damaged or foreign ZIP
            raise file_error(self.path, f"not a readable XLSX workbook ({type(exc).__name__}: {exc})") from None
        self._closers.append(wb)
        if sheet is not None and sheet not in wb.sheetnames:
            raise file_error(self.path, f"no sheet {sheet!r} (sheets: {', '.join(wb.sheetnames)})", code="bad_sheet")
        ws = wb[sheet] if sheet is not None else wb.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        row = 0
        header: Sequence[Any] | None = None
        for values in rows:
            row += 1
            if values and any(v not in (None, "") for v in values):
                header = values
                break
        if header is None:
            raise file_error(self.path, "the sheet is empty; expected a header row", row=1, code="empty")
        names = [("" if h is None else str(h)).strip() for h in header]
        while names and not names[-1]:
            names.pop()
        self.header = _check_header(self.path, names, row)
        self._rows = self._xlsx_rows(rows, row, len(names))

    def _xlsx_rows(self, rows: Iterator[Sequence[Any]], row: int, width: int) -> Iterator[tuple[int, Any] | RowProblem]:
        for values in rows:
            row += 1
            vals = list(values[:width])
            extra = values[width:]
            if not any(v not in (None, "") for v in vals) and not any(v not in (None, "") for v in extra):
                continue
            if any(v not in (None, "") for v in extra):
                yield RowProblem(row, f"#{width + 1}", None, f"values beyond the {width} columns of the header")
                continue
            if len(vals) < width:
                vals += [None] * (width - len(vals))
            yield row, vals

    # ---- JSON Lines ----
    def _open_jsonl(self) -> None:
        lines = self._lines()
        self._rows = self._jsonl_rows(lines)
        first: tuple[int, Any] | RowProblem | None = None
        pending: list[tuple[int, Any] | RowProblem] = []
        for item in self._rows:
            pending.append(item)
            if isinstance(item, tuple):
                first = item
                break
        if first is None and pending and isinstance(pending[0], RowProblem):
            # no record to take the field names from: the first unreadable line is the file's problem
            bad = pending[0]
            raise file_error(self.path, bad.message, row=bad.row, column=bad.column, code="bad_row")
        self.header = list(first[1]) if isinstance(first, tuple) else []
        self._rows = _prepend(pending, self._rows)

    def _jsonl_rows(self, lines: Iterator[str]) -> Iterator[tuple[int, Any] | RowProblem]:
        line = 0
        try:
            for text in lines:
                line += 1
                text = text.strip()
                if line == 1 and text.startswith("\ufeff"):
                    text = text[1:]
                if not text:
                    continue
                try:
                    obj = json_loads(text)
                except JSONTooDeep as exc:  # named, where json.loads would raise RecursionError
                    yield RowProblem(line, exc.key or None, text[:80], str(exc))
                    continue
                except ValueError as exc:
                    yield RowProblem(line, None, text[:80], f"not a JSON object ({exc})")
                    continue
                if not isinstance(obj, dict):
                    yield RowProblem(line, None, text[:80], f"expected a JSON object per line, got {type(obj).__name__}")
                    continue
                yield line, obj
        except _BadLine as exc:
            yield RowProblem(exc.line, None, None, exc.message)

    # ---- common ----
    def __iter__(self) -> Iterator[tuple[int, Any] | RowProblem]:
        return self._rows

    def close(self) -> None:
        for c in self._closers:
            with contextlib.suppress(Exception):  # closing is best effort
                c.close()
        self._closers.clear()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _prepend(first: list[Any], rest: Iterator[Any]) -> Iterator[Any]:
    yield from first
    yield from rest


class _BadLine(Exception):
    def __init__(self, line: int, column: int, message: str):
        super().__init__(message)
        self.line, self.column, self.message = line, column, message


def _check_header(path: str, header: list[str], row: int = 1) -> list[str]:
    if not any(header):
        raise file_error(path, "the header row is blank; expected column names", row=row, code="bad_header")
    seen: dict[str, int] = {}
    for i, h in enumerate(header):
        if not h:
            continue
        if h in seen:
            raise file_error(
                path, f"the column name appears twice (columns {seen[h] + 1} and {i + 1})", row=row, column=h, code="bad_header"
            )
        seen[h] = i
    return header


def open_reader(
    path: str | os.PathLike[str], format: str | None = None, encoding: str | None = None, *, sheet: str | None = None
) -> Reader:
    """Open ``path`` for streaming rows (see :class:`Reader`)."""
    return Reader(os.fspath(path), format, encoding, sheet=sheet)


# ---------------------------------------------------------------------------------------------- writing


class Writer:
    """Write rows of flat values to CSV, XLSX or JSON Lines, one at a time (constant memory).

    A file named by path is written through a fresh temporary file beside it (``pycrm._files``) that
    :meth:`close` renames over the name and :meth:`abort` removes: the file appears whole or not at all,
    and nothing planted at another name is followed. ``file_name`` is the file being written.
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | IO[str],
        format: str,
        header: Sequence[str],
        *,
        bom: bool = False,
        write_header: bool = True,
    ):
        self.format = format
        self.header = list(header)
        self._close: list[Any] = []
        self._wb: Any = None
        self._path: str | None = None
        self._replace = contextlib.ExitStack()  # the temporary file's rename (or removal) when done
        self.file_name: str | None = None
        if format == "xlsx":
            if not isinstance(target, (str, os.PathLike)):
                raise ValidationError([FieldError("output", "bad_target", "XLSX is written to a file name, not a stream")])
            import openpyxl

            self._path = self.file_name = os.fspath(self._replace.enter_context(replacing(target)))
            self._wb = openpyxl.Workbook(write_only=True)
            self._ws = self._wb.create_sheet("export")
            self._ws.append(self.header)
            return
        if isinstance(target, (str, os.PathLike)):
            if os.fspath(target) == "-":
                out: IO[str] = sys.stdout
            else:
                out = self._replace.enter_context(open_replacing(target, "w", newline="", encoding="utf-8"))
                self.file_name = str(out.name)
                if bom:  # written now, so rows appended as bytes (append_file) come after it
                    out.write("\ufeff")
        else:
            out = target
        self._out = out
        if format == "csv":
            self._csv = csv.writer(out, lineterminator="\n")
            if write_header:
                self._csv.writerow(self.header)
            self.write = self._csv.writerow  # type: ignore[method-assign]
            self.write_many = self._csv.writerows  # type: ignore[method-assign]
        else:
            self._enc = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def write(self, row: Sequence[Any]) -> None:
        if self.format == "xlsx":
            self._ws.append(list(row))
        else:
            self._out.write(self._enc(dict(zip(self.header, row))) + "\n")

    def write_many(self, rows: Sequence[Sequence[Any]]) -> None:
        for r in rows:
            self.write(r)

    def write_columns(self, columns: Sequence[Sequence[Any]]) -> None:
        """Write the rows given column by column (``columns[j][i]``: field ``j`` of row ``i``), as ``write_many``.

        CSV rows of text (or None) and more than one field are joined directly into the lines ``csv.writer``
        would write (quoting as it does); anything else goes through the writer.
        """
        if self.format == "csv" and len(columns) > 1:
            plain = _plain_columns(columns)
            if plain is not None:
                self._out.write("\n".join(map(",".join, zip(*plain))) + "\n" if plain[0] else "")
                return
        self.write_many(list(zip(*columns)))

    def append_file(self, path: str | os.PathLike[str]) -> None:
        """Copy the bytes of ``path`` (rows written by another Writer of this format, no header) to the end."""
        self._out.flush()
        with open(path, "rb") as src:
            shutil.copyfileobj(src, self._out.buffer, 1 << 20)  # type: ignore[attr-defined]

    def close(self) -> None:
        """Finish the file: written whole under its name; if finishing fails (a full disk), the temporary file
        is removed and the name left as it was."""
        try:
            if self._wb is not None:
                assert self._path is not None
                with open(self._path, "wb") as f:  # ours to close at once on failure (its space comes back)
                    self._wb.save(f)
                self._wb = None
            if self.format != "xlsx" and self.file_name is None and not self._close:
                self._out.flush()  # a stream the caller owns
            for c in self._close:
                c.close()
            self._close.clear()
        except BaseException:
            self.abort()
            raise
        self._replace.close()

    def abort(self) -> None:
        """Give the file up after a failure: the temporary file is removed, the name left as it was."""
        self._wb = None
        self._replace.__exit__(RuntimeError, RuntimeError("export aborted"), None)


def _plain_columns(columns: Sequence[Sequence[Any]]) -> list[Sequence[str]] | None:
    """The columns as CSV fields (see ``Writer.write_columns``), or None when ``csv.writer`` must write them.

    With the default dialect (``,`` ``"`` doubled, QUOTE_MINIMAL), a text is written as it is unless it holds
    ``,`` ``"`` or a line break; then it is quoted with its quotes doubled. None is written as an empty field.
    """
    out: list[Sequence[str]] = []
    for col in columns:
        types = set(map(type, col))
        if not types <= {str, type(None)}:
            return None
        if type(None) in types:
            col = ["" if v is None else v for v in col]
        text = "".join(col)
        if "\r" in text or "\x00" in text:  # quoted or refused differently across Python versions
            return None
        if '"' in text:
            if all(map(operator.contains, col, itertools.repeat('"'))):  # JSON, say: every value is quoted
                col = ('"' + "\x00".join(col).replace('"', '""').replace("\x00", '"\x00"') + '"').split("\x00")
            else:
                col = ['"' + v.replace('"', '""') + '"' if '"' in v or "," in v or "\n" in v else v for v in col]
        elif "," in text or "\n" in text:
            col = ['"' + v + '"' if "," in v or "\n" in v else v for v in col]
        out.append(col)
    return out


def open_writer(
    target: str | os.PathLike[str] | IO[str], format: str, header: Sequence[str], *, bom: bool = False, write_header: bool = True
) -> Writer:
    return Writer(target, format, header, bom=bom, write_header=write_header)
