"""Backup, restore and verify: a consistent copy of a live store, and back into an empty one of any adapter.

A *logical dump* is a JSON Lines file (gzip-compressed when the name ends in ``.gz``)::

    {"format": "pycrm-dump", "format_version": 1, "pycrm": "0.1.0", "schema": "0003", "source": "sqlite", ...}
    {"section": "entities", "group": "users", "key": "<id>", "data": {...codec data...}}
    {"section": "entities", "group": "customers", "key": "<id>", "data": {...}}
    ...
    {"section": "records", "group": "merges", "key": "<merge id>", "data": {...}}
    {"end": true, "lines": 123, "groups": {"customers": {"count": 2, "sha256": "..."}, ...}}

The header names the format, the pycrm version, the schema revision and the time; each following line is
one record of a *section* (entities by repository, then the JSON record streams); the closing line holds
per-group counts and checksums, so a truncated or altered file is refused. Everything is read in one
transaction (a snapshot on PostgreSQL and MariaDB, a read transaction on SQLite, the store's commit lock on
the memory adapter), streamed in id order, so the dump is consistent while other sessions write and memory
stays flat.

:func:`restore` loads a dump (or a SQLite file made by ``backup(..., method="sqlite")``) into an *empty*
store of any adapter, all or nothing, then runs :func:`verify` inside the same transaction: a SQLite store
moves to PostgreSQL in one call. Checksums are sums of SHA-256 digests of each record's canonical JSON, so
they do not depend on the order a database returns rows in.

Attachments: a backup carries their metadata (the ``attachments`` rows), not their content, which lives
in the blob store (``pycrm.open(blobs=...)``) and is backed up separately -- copy the blob directory or
bucket (content-addressed and write-once: an incremental copy such as ``rsync`` or ``aws s3 sync`` is
exact). Restore both to bring attachments back (docs/attachments.md).

More tables plug in as sections (:func:`register_section`): a name, a function that reads the store and
one that writes a batch back.

>>> import pycrm, tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> with pycrm.open("memory://") as crm:
...     with crm.session() as s:
...         acme = s.customers.add(pycrm.Customer("Acme", emails=["sales@acme.example"]))
...     counts = backup(crm, folder / "crm.jsonl.gz").counts
>>> counts["customers"], sum(counts.values()), list(counts)[-3:]
(1, 1, ['activities', 'attachments', 'tasks'])
>>> with pycrm.open(f"sqlite:///{folder}/copy.db") as target:
...     restore(target, folder / "crm.jsonl.gz").ok
True
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import io
import itertools
import json
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import attrs

from pycrm._files import file_errors, fresh_temp, open_replacing, replacing
from pycrm.domain import ENTITIES, Entity, utcnow
from pycrm.domain._checks import check_count, check_iterable, json_loads
from pycrm.domain._codec import from_data, to_data
from pycrm.errors import CRMError, FieldError, StorageError, ValidationError, quote
from pycrm.io._archive import ORDER
from pycrm.io._entry import check_crm, check_path
from pycrm.io._increment import (
    IncrementDump,
    _is_increment,
    apply_increment,
    check_follows,
    file_sha256,
    positions,
    read_header,
    write_increment,
)
from pycrm.storage.port import FileCopies, Snapshots, Transaction

if TYPE_CHECKING:
    from pycrm._crm import CRM

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "SECTIONS",
    "BackupResult",
    "GroupCheck",
    "Section",
    "Verification",
    "backup",
    "register_section",
    "restore",
    "verify",
]

FORMAT = "pycrm-dump"
#: The newest dump format this pycrm reads and the one it writes.
FORMAT_VERSION = 1
#: Records per write batch on restore.
BATCH = 1000
_GZIP_MAGIC = b"\x1f\x8b"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_MOD = 1 << 256

#: Repositories in the order a restore inserts them: parents before the records that point at them (the
#: archive's order).
ENTITY_ORDER = ORDER


# ---------------------------------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------------------------------


class LineError(Exception):
    """A problem with one line of a dump; turned into a ValidationError naming the file and line."""

    def __init__(self, line: int, message: str, field: str | None = None, code: str = "invalid_dump"):
        super().__init__(message)
        self.line, self.message, self.field, self.code = line, message, field, code


#: One batch of one group as read back from a dump: (line number, key, data).
Batch = list[tuple[int, str, Any]]


@attrs.frozen
class Section:
    """One part of a dump.

    ``read(tx)`` yields ``(group, key, data)`` for every record the section holds, grouped by group (data
    JSON-safe); ``write(tx, group, batch)`` stores one batch of ``(line, key, data)`` back, raising
    :class:`LineError` for bad lines; ``groups(tx)`` names the groups that verify always reports (even when
    empty); ``empty(tx)`` tells whether the store holds nothing of this section.
    """

    name: str
    read: Callable[[Transaction], Iterator[tuple[str, str, Any]]]
    write: Callable[[Transaction, str, Batch], None]
    groups: Callable[[Transaction], list[str]] = attrs.field(default=lambda tx: [])
    empty: Callable[[Transaction], bool] | None = None


#: Section name -> Section, in dump order. Add more with :func:`register_section`.
SECTIONS: dict[str, Section] = {}


def register_section(
    name: str,
    read: Callable[[Transaction], Iterator[tuple[str, str, Any]]],
    write: Callable[[Transaction, str, Batch], None],
    *,
    groups: Callable[[Transaction], list[str]] | None = None,
    empty: Callable[[Transaction], bool] | None = None,
) -> Section:
    """Add (or replace) a dump section; sections are dumped and restored in registration order.

    >>> def read(tx):
    ...     yield from (("notes", k, d) for k, d in tx.record_list("notes"))
    >>> def write(tx, group, batch):
    ...     for line, key, data in batch:
    ...         tx.record_put(group, key, data)
    >>> register_section("example", read, write).name
    'example'
    >>> del SECTIONS["example"]
    """
    if not isinstance(name, str) or not name or "/" in name:
        raise ValidationError([FieldError("name", "invalid", f"not a section name: {name!r}")])
    section = Section(name, read, write, groups or (lambda tx: []), empty)
    SECTIONS[name] = section
    return section


def _entity_order() -> list[str]:
    return [k for k in ENTITY_ORDER if k in ENTITIES] + [k for k in ENTITIES if k not in ENTITY_ORDER]


def _read_entities(tx: Transaction) -> Iterator[tuple[str, str, Any]]:
    for group in _entity_order():
        for e in tx.iter(ENTITIES[group], [], BATCH):
            yield group, str(e.id), to_data(e)


def _check_entity(e: Entity, line: int) -> None:
    problems = []
    if not isinstance(e.id, str) or not e.id or len(e.id) > 64:
        problems.append(("id", f"not an id: {str(e.id)[:70]!r}"))
    if isinstance(e.version, bool) or not isinstance(e.version, int) or e.version < 1:
        problems.append(("version", f"expected a whole number >= 1, got {e.version!r}"))
    for name in ("created_at", "updated_at"):
        v = getattr(e, name)
        if not isinstance(v, dt.datetime) or v.utcoffset() is None:
            problems.append((name, f"expected a date-time with a time zone, got {v!r}"))
    if problems:
        field, message = problems[0]
        raise LineError(line, message, f"data.{field}")
    try:
        e.__attrs_post_init__()
    except ValidationError as exc:
        first = exc.errors[0]
        raise LineError(line, first.message, f"data.{first.field}" if first.field else "data") from None


def _write_entities(tx: Transaction, group: str, batch: Batch) -> None:
    from pycrm.storage._repository import REFERENCES

    kind = ENTITIES.get(group)
    if kind is None:
        raise LineError(batch[0][0], f"unknown repository {group!r}", "group")
    entities: list[Entity] = []
    lines: dict[str, int] = {}
    for line, key, data in batch:
        if not isinstance(data, dict):
            raise LineError(line, f"expected an object, got {type(data).__name__}", "data")
        try:
            e = from_data(kind, data)
        except ValidationError as exc:
            raise LineError(line, exc.errors[0].message, "data") from None
        _check_entity(e, line)
        if e.id != key:
            raise LineError(line, f"key {key!r} differs from the record's id {e.id!r}", "key")
        if key in lines:
            raise LineError(line, f"{kind.__name__} {key!r} repeats line {lines[key]}", "key")
        lines[key] = line
        entities.append(e)
    for taken in sorted(tx.existing_ids(kind, lines)):
        raise LineError(lines[taken], f"{kind.__name__} {taken!r} appears twice in the dump", "key")
    for (child, field), parent in REFERENCES.items():
        if child is not kind:
            continue
        wanted = {getattr(e, field) for e in entities} - {None}  # an optional reference may point at nothing
        missing = wanted - tx.existing_ids(parent, wanted)
        for e in entities:
            if getattr(e, field) in missing:
                raise LineError(
                    lines[str(e.id)],
                    f"{field} {getattr(e, field)!r}: no {parent.entity_name()} record with that id earlier in the dump",
                    f"data.{field}",
                )
    tx.insert(kind, entities)


def _entities_empty(tx: Transaction) -> bool:
    return all(tx.count(ENTITIES[g], []) == 0 for g in _entity_order())


def _read_records(tx: Transaction) -> Iterator[tuple[str, str, Any]]:
    for stream in tx.record_streams():
        for key, data in tx.record_list(stream):
            yield stream, key, data


def _write_records(tx: Transaction, group: str, batch: Batch) -> None:
    for line, key, data in batch:
        if data is None:
            raise LineError(line, "a record needs data", "data")
        if tx.record_get(group, key) is not None:
            raise LineError(line, f"record {group}/{key} appears twice in the dump", "key")
        tx.record_put(group, key, data)


def _read_journal(tx: Transaction) -> Iterator[tuple[str, str, Any]]:
    """The change feed, then the audit trail, as stored (sequence numbers and hashes kept)."""
    cursor = 0
    while True:
        rows = tx.changes_since(cursor, 5000)
        for r in rows:
            yield "changes", str(r["seq"]), {**r, "at": r["at"].isoformat()}
        if len(rows) < 5000:
            break
        cursor = rows[-1]["seq"]
    after = 0
    while True:
        entries = tx.audit_list(after, 5000, None)
        for e in entries:
            yield "audit", str(e["seq"]), e
        if len(entries) < 5000:
            break
        after = entries[-1]["seq"]


def _write_journal(tx: Transaction, group: str, batch: Batch) -> None:
    rows = []
    for line, key, data in batch:
        seq = data.get("seq") if isinstance(data, dict) else None
        if type(seq) is not int or seq < 1 or str(seq) != key:  # the rowid on SQLite: a NULL would get a number
            raise LineError(line, f"not a {group} row with seq {key}", "data")
        try:
            at = dt.datetime.fromisoformat(data["at"])
        except (KeyError, TypeError, ValueError):
            raise LineError(line, f"{group} row {key}: 'at' is not an ISO date-time", "data.at") from None
        rows.append({**data, "at": at} if group == "changes" else data)
    if group == "changes":
        tx.journal_load(rows, [])
    elif group == "audit":
        tx.journal_load([], rows)
    else:
        raise LineError(batch[0][0], f"unknown journal group {group!r}", "group")


def _journal_empty(tx: Transaction) -> bool:
    return not tx.changes_since(0, 1) and not tx.audit_list(0, 1, None)


register_section("entities", _read_entities, _write_entities, groups=lambda tx: _entity_order(), empty=_entities_empty)
register_section("records", _read_records, _write_records, empty=lambda tx: not tx.record_streams())
register_section("journal", _read_journal, _write_journal, groups=lambda tx: ["changes", "audit"], empty=_journal_empty)


# ---------------------------------------------------------------------------------------------------
# checksums and results
# ---------------------------------------------------------------------------------------------------


def _name(section: str, group: str) -> str:
    return group if section == "entities" else f"{section}/{group}"


def _canonical(key: str, data: Any) -> bytes:
    return json.dumps([key, data], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class _Sums:
    """Per-group record counts and order-independent checksums."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.sums: dict[str, int] = {}

    def ensure(self, name: str) -> None:
        self.counts.setdefault(name, 0)
        self.sums.setdefault(name, 0)

    def add(self, name: str, key: str, data: Any) -> None:
        digest = int.from_bytes(hashlib.sha256(_canonical(key, data)).digest(), "big")
        self.counts[name] = self.counts.get(name, 0) + 1
        self.sums[name] = (self.sums.get(name, 0) + digest) % _MOD

    def table(self) -> dict[str, dict[str, Any]]:
        return {n: {"count": self.counts[n], "sha256": f"{self.sums[n]:064x}"} for n in self.counts}


@attrs.frozen
class GroupCheck:
    """One entity kind (or record stream) compared between a dump and a store."""

    name: str
    dump_count: int
    store_count: int
    dump_checksum: str
    store_checksum: str

    @property
    def ok(self) -> bool:
        return self.dump_count == self.store_count and self.dump_checksum == self.store_checksum


@attrs.frozen
class Verification:
    """The result of :func:`verify` (and of :func:`restore`): one :class:`GroupCheck` per kind or stream."""

    file: str
    groups: dict[str, GroupCheck]

    @property
    def ok(self) -> bool:
        return all(g.ok for g in self.groups.values())

    @property
    def mismatches(self) -> list[GroupCheck]:
        return [g for g in self.groups.values() if not g.ok]

    def __str__(self) -> str:
        lines = [f"{'group':<24} {'dump':>9} {'store':>9}  result"]
        for g in self.groups.values():
            result = "ok" if g.ok else ("count differs" if g.dump_count != g.store_count else "checksum differs")
            lines.append(f"{g.name:<24} {g.dump_count:>9} {g.store_count:>9}  {result}")
        return "\n".join(lines)


@attrs.frozen
class BackupResult:
    """What :func:`backup` wrote: the file, the method, and per-group counts and checksums."""

    file: str
    method: str
    counts: dict[str, int]
    checksums: dict[str, str]


def _compare(file: str, dump: dict[str, dict[str, Any]], store: dict[str, dict[str, Any]]) -> Verification:
    zero = {"count": 0, "sha256": "0" * 64}
    names = list(dump) + [n for n in store if n not in dump]
    return Verification(
        file,
        {
            n: GroupCheck(
                n,
                int(dump.get(n, zero)["count"]),
                int(store.get(n, zero)["count"]),
                str(dump.get(n, zero)["sha256"]),
                str(store.get(n, zero)["sha256"]),
            )
            for n in names
        },
    )


# ---------------------------------------------------------------------------------------------------
# reading a store consistently
# ---------------------------------------------------------------------------------------------------


def _snapshot(crm: CRM, tx: Transaction) -> Snapshots:
    """``tx`` as a :class:`~pycrm.storage.port.Snapshots` (reads that see one point in time), or a refusal."""
    if not isinstance(tx, Snapshots):
        raise CRMError(f"{crm.url} cannot read one consistent point in time, so it cannot be backed up or verified")
    return tx


def _lines(tx: Transaction, snap: Snapshots, sums: _Sums) -> Iterator[dict[str, Any]]:
    """Header, one line per record of every section, closing line."""
    from pycrm import __version__

    yield {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "pycrm": __version__,
        "schema": snap.schema_revision(),
        "source": snap.source(),
        "created_at": utcnow().isoformat(),
        "sections": list(SECTIONS),
        **positions(tx),  # where an increment following this backup starts
    }
    n = 1
    for section in SECTIONS.values():
        for group in section.groups(tx):
            sums.ensure(_name(section.name, group))
        for group, key, data in section.read(tx):
            sums.add(_name(section.name, group), key, data)
            n += 1
            yield {"section": section.name, "group": group, "key": key, "data": data}
    yield {"end": True, "lines": n + 1, "groups": sums.table()}


def _store_sums(crm: CRM, tx: Transaction) -> dict[str, dict[str, Any]]:
    sums = _Sums()
    for section in SECTIONS.values():
        for group in section.groups(tx):
            sums.ensure(_name(section.name, group))
        for group, key, data in section.read(tx):
            sums.add(_name(section.name, group), key, data)
    return sums.table()


# ---------------------------------------------------------------------------------------------------
# backup
# ---------------------------------------------------------------------------------------------------


def _open_read(path: Path, compressed: bool) -> IO[str]:
    if compressed:
        return gzip.open(path, "rt", encoding="utf-8", newline="\n")
    return open(path, encoding="utf-8", newline="\n")


def backup(
    crm: CRM,
    path: str | os.PathLike[str],
    *,
    method: str = "logical",
    incremental: bool = False,
    base: str | os.PathLike[str] | None = None,
) -> BackupResult:
    """Write a consistent backup of ``crm`` to ``path`` (gzip-compressed when it ends in ``.gz``).

    ``incremental=True`` with ``base`` (the previous logical backup of the chain, full or incremental)
    writes an *increment* instead: only what the change feed shows changed after ``base``, naming its
    base, its seq range and the base file's digest (see :mod:`pycrm.io._increment` and
    docs/lifecycle.md). ``base`` alone implies ``incremental``.

    ``method="logical"`` (any adapter) writes a JSON Lines dump; ``method="sqlite"`` (SQLite stores) copies
    the database file with SQLite's online backup API. Either way the file appears only when complete: it
    is written to a fresh temporary file beside it and renamed (``pycrm._files``), so a file or link planted
    at ``path.part`` or any other name is never followed.
    """
    check_crm(crm)
    target = Path(check_path("path", path))
    if not isinstance(method, str) or method not in ("logical", "sqlite"):
        raise ValidationError([FieldError("method", "invalid_choice", f"{quote(method)} is not 'logical' or 'sqlite'")])
    if not isinstance(incremental, bool):
        raise ValidationError([FieldError("incremental", "type", f"expected True or False, got {quote(incremental)}")])
    if incremental or base is not None:
        if base is None:
            raise ValidationError([FieldError("base", "required", "an incremental backup needs base=, the backup it follows")])
        if method != "logical":
            raise ValidationError([FieldError("method", "unsupported", "an incremental backup is a logical one")])
        base_path = Path(check_path("base", base))
        if base_path.resolve() == target.resolve():
            raise ValidationError([FieldError("base", "invalid", "an increment cannot replace its own base")])
        with file_errors(base_path, "read"), file_errors(target):
            return write_increment(crm, target, base_path)
    with file_errors(target):
        if method == "sqlite":
            with replacing(target) as part:
                return _backup_sqlite(crm, part, target)
        return _backup_logical(crm, target)


def _backup_logical(crm: CRM, target: Path) -> BackupResult:
    sums = _Sums()
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    with crm.session() as s:
        tx = s.unit.transaction()
        snap = _snapshot(crm, tx)
        with snap.snapshot(), open_replacing(target, "wb") as raw:
            if target.name.endswith(".gz"):
                f: IO[str] = gzip.open(raw, "wt", encoding="utf-8", compresslevel=6)  # noqa: SIM115 - closed by the with below
            else:
                f = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
            with f:
                write = f.write
                for line in _lines(tx, snap, sums):
                    write(dumps(line))
                    write("\n")
    table = sums.table()
    return BackupResult(
        str(target),
        "logical",
        {n: v["count"] for n, v in table.items() if "/" not in n},
        {n: v["sha256"] for n, v in table.items()},
    )


def _backup_sqlite(crm: CRM, part: Path, target: Path) -> BackupResult:
    store = crm.store
    unsupported = ValidationError(
        [FieldError("method", "unsupported", f"method='sqlite' needs a SQLite store, not {crm.url}; use method='logical'")]
    )
    if not isinstance(store, FileCopies):
        raise unsupported
    compress = target.name.endswith(".gz")
    with contextlib.ExitStack() as stack:
        # compressed: the database is copied into a second fresh temporary file, then gzip writes ``part``
        raw_path = stack.enter_context(fresh_temp(part.parent, target.name)) if compress else part
        try:
            copied = store.copy_database(os.fspath(raw_path))  # one step: a consistent copy while others keep writing
        except StorageError as exc:  # named by the file asked for, not the temporary one written
            raise StorageError(str(exc).replace(os.fspath(raw_path), os.fspath(target))) from None
        if copied is None:
            raise unsupported
        counts = {g: copied[g] for g in _entity_order()}
        if compress:
            fd = os.open(part, os.O_WRONLY | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0))
            with open(raw_path, "rb") as src, open(fd, "wb") as dst_file, gzip.open(dst_file, "wb", compresslevel=6) as out:
                shutil.copyfileobj(src, out, 1 << 20)
    return BackupResult(str(target), "sqlite", counts, {})


def pycrm_open_sqlite(path: Path) -> CRM:
    import pycrm

    return pycrm.open(f"sqlite:///{path}")


# ---------------------------------------------------------------------------------------------------
# reading a dump
# ---------------------------------------------------------------------------------------------------


def _bad(file: str, line: int | None, message: str, field: str | None = None, code: str = "invalid_dump") -> ValidationError:
    where = file if line is None else f"{file}, line {line}"
    if field:
        where += f", field {field!r}"
    return ValidationError([FieldError(where, code, message)])


def _kind_of(path: Path) -> str:
    """'gzip', 'sqlite' or 'text' from the file's first bytes."""
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(_GZIP_MAGIC):
        with gzip.open(path, "rb") as g:
            try:
                inner = g.read(16)
            except (OSError, EOFError, zlib.error):
                return "gzip"
        return "sqlite-gzip" if inner.startswith(_SQLITE_MAGIC) else "gzip"
    if head.startswith(_SQLITE_MAGIC):
        return "sqlite"
    return "text" if head.lstrip()[:1] in (b"{", b"") else "other"


class _Dump:
    """The lines of a dump file: ``(line number, object)`` after checking the header; checks the closing line."""

    def __init__(self, path: Path):
        self.path = path
        self.file = os.fspath(path)
        self.header: dict[str, Any] = {}
        self.trailer: dict[str, Any] | None = None

    def lines(self) -> Iterator[tuple[int, dict[str, Any]]]:
        kind = _kind_of(self.path)
        if kind == "other":
            raise _bad(self.file, 1, "not a pycrm dump (it does not start with a JSON header)")
        compressed = kind == "gzip"
        n = 0
        try:
            with _open_read(self.path, compressed) as f:
                for n, text in enumerate(f, 1):  # n is read after the loop
                    if not text.endswith("\n"):
                        raise _bad(self.file, n, "the line is cut short: the dump is truncated")
                    try:
                        obj = json_loads(text)
                    except ValueError as exc:  # JSONTooDeep too: a line nested too deep to parse
                        if n == 1:
                            raise _bad(self.file, 1, "not a pycrm dump (the first line is not a JSON header)") from None
                        raise _bad(self.file, n, f"not JSON: {exc}") from None
                    if not isinstance(obj, dict):
                        raise _bad(self.file, n, f"expected a JSON object, got {type(obj).__name__}")
                    if n == 1:
                        self._header(obj)
                        continue
                    if self.trailer is not None:
                        raise _bad(self.file, n, "a line after the closing line")
                    if obj.get("end") is True:
                        self.trailer = obj
                        if obj.get("lines") != n:
                            raise _bad(self.file, n, f"the closing line counts {obj.get('lines')!r} lines, the file has {n}")
                        continue
                    yield n, obj
        except UnicodeDecodeError:
            raise _bad(self.file, n + 1, "not UTF-8 text: not a pycrm dump") from None
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise _bad(self.file, n + 1, f"the compressed file is damaged or truncated ({exc})") from None
        if n == 0:
            raise _bad(self.file, None, "empty file: not a pycrm dump")
        if self.trailer is None:
            raise _bad(self.file, n, "the dump ends without its closing line: it is truncated")

    def _header(self, obj: dict[str, Any]) -> None:
        if obj.get("format") != FORMAT:
            raise _bad(self.file, 1, "not a pycrm dump (the header does not name the pycrm-dump format)")
        version = obj.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise _bad(self.file, 1, f"format_version {version!r} is not a version number", "format_version")
        if version > FORMAT_VERSION:
            raise _bad(
                self.file,
                1,
                f"written in dump format {version} by pycrm {obj.get('pycrm')}; this pycrm reads format "
                f"{FORMAT_VERSION} and older: upgrade pycrm",
                "format_version",
            )
        self.header = obj

    def records(self) -> Iterator[tuple[int, str, str, str, Any]]:
        """(line, section, group, key, data) of every record line, checked for shape."""
        for n, obj in self.lines():
            section, group, key = obj.get("section"), obj.get("group"), obj.get("key")
            if section not in SECTIONS:
                if not isinstance(section, str):
                    raise _bad(self.file, n, "expected a record line with a section", "section")
                raise _bad(self.file, n, f"unknown section {section!r} (written by a newer pycrm?)", "section")
            if not isinstance(group, str) or not group or len(group) > 100:
                raise _bad(self.file, n, f"not a group name: {str(group)[:70]!r}", "group")
            if not isinstance(key, str) or not key or len(key) > 200:
                raise _bad(self.file, n, f"not a key: {str(key)[:70]!r}", "key")
            if "data" not in obj:
                raise _bad(self.file, n, "the line has no data", "data")
            yield n, section, group, key, obj["data"]

    def check_trailer(self, sums: _Sums) -> dict[str, dict[str, Any]]:
        """The closing line's table, after checking that the records read add up to it."""
        assert self.trailer is not None
        end_line = int(self.trailer["lines"])
        table = self.trailer.get("groups")
        if not isinstance(table, dict):
            raise _bad(self.file, end_line, "the closing line has no groups table", "groups")
        mine = sums.table()
        for name in sorted(set(table) | set(mine)):
            theirs = table.get(name)
            if (
                not isinstance(theirs, dict)
                or theirs.get("count") != mine.get(name, {}).get("count", 0)
                or (theirs.get("count") and theirs.get("sha256") != mine.get(name, {}).get("sha256"))
            ):
                raise _bad(
                    self.file,
                    end_line,
                    f"the records of {name!r} do not match the closing line's count and checksum: "
                    "the dump was altered or damaged",
                    "groups",
                )
        return table


# ---------------------------------------------------------------------------------------------------
# restore and verify
# ---------------------------------------------------------------------------------------------------


def _source(path: Path) -> tuple[str, str]:
    if not path.exists():
        raise _bad(os.fspath(path), None, "no such file", code="not_found")
    if path.is_dir():
        raise _bad(os.fspath(path), None, "is a directory, not a dump", code="not_a_file")
    return os.fspath(path), _kind_of(path)


@contextlib.contextmanager
def _sqlite_source(path: Path, kind: str) -> Iterator[CRM]:
    """Open a copy of a SQLite backup file (the original is never changed by the migrations or WAL)."""
    with tempfile.TemporaryDirectory(prefix="pycrm-restore-") as tmp:
        copy = Path(tmp) / "source.db"
        try:
            if kind == "sqlite-gzip":
                with gzip.open(path, "rb") as src, open(copy, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
            else:
                shutil.copyfile(path, copy)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise _bad(os.fspath(path), None, f"the compressed file is damaged or truncated ({exc})") from None
        try:
            crm = pycrm_open_sqlite(copy)
        except CRMError as exc:
            raise _bad(os.fspath(path), None, f"not a readable pycrm SQLite backup: {exc}") from None
        try:
            yield crm
        finally:
            crm.close()


_Records = Iterator[tuple[int, str, str, str, Any]]
_Closing = Callable[[_Sums], dict[str, dict[str, Any]]]


def _records_of(path: Path, kind: str, stack: contextlib.ExitStack) -> tuple[_Records, _Closing]:
    """The records of a dump or SQLite backup, and a function giving the checked per-group table at the end."""
    if kind.startswith("sqlite"):
        source = stack.enter_context(_sqlite_source(path, kind))
        s = stack.enter_context(source.session())
        tx = s.unit.transaction()

        def sqlite_records() -> Iterator[tuple[int, str, str, str, Any]]:
            n = 1
            for section in SECTIONS.values():
                for group, key, data in section.read(tx):
                    n += 1
                    yield n, section.name, group, key, data

        def sqlite_table(sums: _Sums) -> dict[str, dict[str, Any]]:
            return _store_sums(source, tx)

        return sqlite_records(), sqlite_table
    dump = _Dump(path)
    return dump.records(), dump.check_trailer


def restore(
    crm: CRM,
    path: str | os.PathLike[str],
    *,
    increments: Iterable[str | os.PathLike[str]] = (),
    batch_size: int = BATCH,
) -> Verification:
    """Load a backup into ``crm``, which must be empty; all or nothing. Returns the verification.

    ``path`` is a logical dump (``.jsonl`` or ``.jsonl.gz``) or a SQLite file written by
    ``backup(..., method="sqlite")``. Bad input (not a dump, truncated, altered, from a newer format)
    raises ValidationError naming the file and line, and leaves the store as it was.

    ``increments``: the increments to apply after the full backup, in chain order -- the first few of a
    chain restore to that point. Each must follow the one before (its base's digest, backup id and seq),
    else ValidationError naming it; the store is then verified against the last one's recorded state.
    """
    check_crm(crm)
    p = Path(check_path("path", path))
    check_count("batch_size", batch_size)
    check_iterable("increments", increments, "a list of increment files")
    chain = [Path(check_path(f"increments[{i}]", x)) for i, x in enumerate(increments)]
    with contextlib.ExitStack() as stack:
        for q in [p, *chain]:
            stack.enter_context(file_errors(q, "read"))
        return _restore(crm, p, batch_size, chain)


def _restore(crm: CRM, p: Path, batch_size: int, chain: list[Path] | None = None) -> Verification:
    file, kind = _source(p)
    chain = chain or []
    if _is_increment(p):
        message = "an increment: restore its full backup with increments=[...] up to this one"
        raise ValidationError([FieldError(file, "not_full", message)])
    for q in chain:
        _source(q)
        if not _is_increment(q):
            raise ValidationError([FieldError(os.fspath(q), "not_an_increment", "not a pycrm increment")])
    with contextlib.ExitStack() as stack:
        records, closing = _records_of(p, kind, stack)
        with crm.session() as s:
            tx = s.unit.transaction()
            busy = [sec.name for sec in SECTIONS.values() if sec.empty is not None and not sec.empty(tx)]
            if busy:
                message = f"{crm.url} is not empty ({', '.join(busy)}): restore only into an empty store"
                raise ValidationError([FieldError("store", "not_empty", message)])
            sums = _Sums()
            with tx.atomic():
                for section in SECTIONS.values():
                    for group in section.groups(tx):
                        sums.ensure(_name(section.name, group))
                current: tuple[str, str] | None = None
                batch: Batch = []

                def flush() -> None:
                    if batch and current is not None:
                        try:
                            SECTIONS[current[0]].write(tx, current[1], batch)
                        except LineError as exc:
                            raise _bad(file, exc.line, exc.message, exc.field, exc.code) from None
                        except ValidationError as exc:  # refused by the database (a value that does not fit)
                            where = f"lines {batch[0][0]}-{batch[-1][0]}" if len(batch) > 1 else f"line {batch[0][0]}"
                            raise ValidationError([FieldError(f"{file}, {where}", "invalid_dump", str(exc))]) from None
                        batch.clear()

                for line, section_name, group, key, data in records:
                    if (section_name, group) != current or len(batch) >= batch_size:
                        flush()
                        current = (section_name, group)
                    sums.add(_name(section_name, group), key, data)
                    batch.append((line, key, data))
                flush()
                expected = closing(sums)
                if chain:
                    if kind.startswith("sqlite"):
                        message = "a SQLite file copy cannot start a chain of increments: use a logical backup"
                        raise ValidationError([FieldError(file, "not_a_base", message)])
                    header, sha = read_header(p), file_sha256(p)
                    for q in chain:
                        inc = IncrementDump(q)
                        lines = inc.records()
                        first = next(lines, None)  # reads the header
                        check_follows(inc, os.fspath(p), header, sha)
                        apply_increment(tx, inc, itertools.chain([first] if first else [], lines), batch_size)
                        file, expected, header, sha, p = inc.file, inc.state, inc.header, file_sha256(q), q
                result = _compare(file, expected, _store_sums(crm, tx))
                if not result.ok:
                    bad = ", ".join(g.name for g in result.mismatches)
                    message = f"the restored store differs from the dump in {bad}; nothing was restored"
                    raise ValidationError([FieldError(file, "verify_failed", message)])
    return result


def verify(crm: CRM, path: str | os.PathLike[str]) -> Verification:
    """Compare a backup with a store: counts and checksums per entity kind and record stream.

    Reads the whole backup (checking it against its closing line) and the store (in one consistent
    transaction); ``result.ok`` is True when they hold the same records.
    """
    check_crm(crm)
    p = Path(check_path("path", path))
    with file_errors(p, "read"):
        return _verify(crm, p)


def _verify(crm: CRM, p: Path) -> Verification:
    file, kind = _source(p)
    if _is_increment(p):  # the state recorded at that point of the chain
        inc = IncrementDump(p)
        for _ in inc.records():
            pass
        with crm.session() as s:
            tx = s.unit.transaction()
            with _snapshot(crm, tx).snapshot():
                found = _store_sums(crm, tx)
        return _compare(file, inc.state, found)
    with contextlib.ExitStack() as stack:
        records, closing = _records_of(p, kind, stack)
        sums = _Sums()
        for _line, section_name, group, key, data in records:
            sums.add(_name(section_name, group), key, data)
        expected = closing(sums)
    with crm.session() as s:
        tx = s.unit.transaction()
        with _snapshot(crm, tx).snapshot():
            found = _store_sums(crm, tx)
    return _compare(file, expected, found)
