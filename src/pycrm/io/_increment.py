"""Incremental backups: what changed after a base backup, from the change feed, chained and verified.

An *increment* is a JSON Lines file like a dump (gzip-compressed when the name ends in ``.gz``)::

    {"format": "pycrm-increment", "format_version": 1, "backup_id": "...", "changes_seq": 120,
     "audit_seq": 250, "base": {"file": "crm-full.jsonl.gz", "backup_id": "...", "sha256": "...",
     "changes_seq": 100, "audit_seq": 210}, ...}
    {"op": "put", "section": "entities", "group": "customers", "key": "<id>", "data": {...}}
    {"op": "delete", "section": "entities", "group": "contacts", "key": "<id>"}
    {"op": "replace", "section": "records", "group": "merges"}      # the stream follows whole
    {"op": "put", "section": "journal", "group": "changes", "key": "101", "data": {...}}
    {"end": true, "lines": 42, "groups": {...the lines' counts and checksums...},
     "state": {...every group's count and checksum in the store at that point...}}

It names its base (file name, backup id, the SHA-256 of the base file's bytes, its change-feed and audit
positions) and its own range (``base.changes_seq`` < seq <= ``changes_seq``). Entities are the records the
change feed names after the base (each as it is now, or a deletion); a records stream whose checksum moved
is copied whole; the journal rows after the base's are appended. ``state`` is what a restore up to this
point must produce, checked like a full backup's closing line.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pycrm._files import open_replacing
from pycrm.domain import ENTITIES, utcnow
from pycrm.domain._checks import json_loads
from pycrm.domain._codec import from_data, to_data
from pycrm.errors import FieldError, ValidationError
from pycrm.storage.port import Transaction

if TYPE_CHECKING:
    from pycrm._crm import CRM
    from pycrm.io._backup import BackupResult

__all__ = ["INCREMENT_FORMAT", "ChainLink", "apply_increment", "chain_link", "write_increment"]

INCREMENT_FORMAT = "pycrm-increment"
INCREMENT_FORMAT_VERSION = 1
_FEED_PAGE = 5000


def _bad(file: str, message: str, code: str = "invalid_increment", line: int | None = None) -> ValidationError:
    where = file if line is None else f"{file}, line {line}"
    return ValidationError([FieldError(where, code, message)])


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ChainLink:
    """One backup of a chain as an increment's base: its id, position, digest and the state it holds."""

    def __init__(self, path: Path, header: dict[str, Any], state: dict[str, dict[str, Any]]):
        self.path = path
        self.file = os.fspath(path)
        self.header = header
        self.state = state
        self.sha256 = file_sha256(path)

    @property
    def increment(self) -> bool:
        return self.header.get("format") == INCREMENT_FORMAT

    def position(self, name: str) -> int:
        value = self.header.get(name)
        if type(value) is not int or value < 0:
            raise _bad(self.file, f"its header has no {name}: a backup from an older pycrm cannot be a base; take a full backup")
        return value

    @property
    def backup_id(self) -> str:
        value = self.header.get("backup_id")
        if not isinstance(value, str) or not value:
            raise _bad(self.file, "its header has no backup_id: a backup from an older pycrm cannot be a base")
        return value


def chain_link(path: Path) -> ChainLink:
    """A full backup or an increment as the base of a new increment: its header, the state its closing line
    records and its digest. Only those two lines are parsed (the rest is checked when a chain is restored)."""
    from pycrm.io._backup import FORMAT, _kind_of

    file = os.fspath(path)
    if not path.is_file():
        raise _bad(file, "no such file", "not_found")
    if _kind_of(path).startswith("sqlite"):
        raise _bad(file, "a SQLite file copy cannot be the base of an increment: use a logical backup")
    first = last = ""
    try:
        with _open_text(path) as f:
            for text in f:
                if not first:
                    first = text
                last = text
        header, trailer = json_loads(first), json_loads(last)
    except (OSError, EOFError, ValueError, UnicodeDecodeError) as exc:
        raise _bad(file, f"not a readable pycrm backup ({exc})") from None
    if not isinstance(header, dict) or header.get("format") not in (FORMAT, INCREMENT_FORMAT):
        raise _bad(file, "not a pycrm backup (the first line is not a backup's header)", line=1)
    if not isinstance(trailer, dict) or trailer.get("end") is not True or not last.endswith("\n"):
        raise _bad(file, "the backup ends without its closing line: it is truncated")
    state = trailer.get("state" if header.get("format") == INCREMENT_FORMAT else "groups")
    if not isinstance(state, dict):
        raise _bad(file, "its closing line records no state")
    return ChainLink(path, header, state)


def _open_text(path: Path) -> IO[str]:
    with open(path, "rb") as f:
        compressed = f.read(2) == b"\x1f\x8b"
    if compressed:
        return gzip.open(path, "rt", encoding="utf-8", newline="\n")
    return open(path, encoding="utf-8", newline="\n")


def read_header(path: Path) -> dict[str, Any]:
    """The first line of a logical backup (read whole already, so known to be a JSON object)."""
    with _open_text(path) as f:
        head = json_loads(f.readline(1 << 20))
    return head if isinstance(head, dict) else {}


def _is_increment(path: Path) -> bool:
    """Whether the file's first line is an increment's header (False for anything else)."""
    try:
        with _open_text(path) as f:
            first = f.readline(1 << 16)
        head = json_loads(first)
    except (OSError, EOFError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(head, dict) and head.get("format") == INCREMENT_FORMAT


class IncrementDump:
    """The lines of an increment: header checked, then ``(line, op, section, group, key, data)``; at the
    end the lines are checked against the closing line, whose ``state`` is then available."""

    def __init__(self, path: Path):
        self.path = path
        self.file = os.fspath(path)
        self.header: dict[str, Any] = {}
        self.state: dict[str, dict[str, Any]] = {}

    def records(self) -> Iterator[tuple[int, str, str, str, str, Any]]:
        from pycrm.io._backup import SECTIONS, _Sums

        sums = _Sums()
        trailer: dict[str, Any] | None = None
        n = 0
        try:
            with _open_text(self.path) as f:
                for n, text in enumerate(f, 1):
                    if not text.endswith("\n"):
                        raise _bad(self.file, "the line is cut short: the increment is truncated", line=n)
                    try:
                        obj = json_loads(text)
                    except ValueError as exc:
                        raise _bad(self.file, f"not JSON: {exc}", line=n) from None
                    if not isinstance(obj, dict):
                        raise _bad(self.file, "expected a JSON object", line=n)
                    if n == 1:
                        self._header(obj)
                        continue
                    if trailer is not None:
                        raise _bad(self.file, "a line after the closing line", line=n)
                    if obj.get("end") is True:
                        trailer = obj
                        if obj.get("lines") != n:
                            raise _bad(self.file, f"the closing line counts {obj.get('lines')!r} lines, the file has {n}", line=n)
                        continue
                    op, section, group, key = obj.get("op"), obj.get("section"), obj.get("group"), obj.get("key")
                    if op not in ("put", "delete", "replace") or section not in SECTIONS or not isinstance(group, str):
                        raise _bad(self.file, "not an increment line (op, section, group)", line=n)
                    if op != "replace" and (not isinstance(key, str) or not key):
                        raise _bad(self.file, "the line has no key", line=n)
                    data = obj.get("data")
                    if op == "put" and "data" not in obj:
                        raise _bad(self.file, "the line has no data", line=n)
                    sums.add(f"{section}/{group}", f"{op}:{key or ''}", data)
                    yield n, op, section, group, str(key or ""), data
        except UnicodeDecodeError:
            raise _bad(self.file, "not UTF-8 text", line=n + 1) from None
        except (EOFError, gzip.BadGzipFile) as exc:
            raise _bad(self.file, f"the compressed file is damaged or truncated ({exc})", line=n + 1) from None
        except OSError as exc:  # zlib errors and the like
            raise _bad(self.file, f"the file cannot be read whole ({exc})", line=n + 1) from None
        if trailer is None:
            raise _bad(self.file, "the increment ends without its closing line: it is truncated", line=n)
        if trailer.get("groups") != sums.table() or not isinstance(trailer.get("state"), dict):
            raise _bad(self.file, "the lines do not match the closing line's counts and checksums: altered or damaged", line=n)
        self.state = trailer["state"]

    def _header(self, obj: dict[str, Any]) -> None:
        if obj.get("format") != INCREMENT_FORMAT:
            raise _bad(self.file, "not a pycrm increment", line=1)
        if obj.get("format_version") != INCREMENT_FORMAT_VERSION:
            raise _bad(self.file, f"increment format {obj.get('format_version')!r}: upgrade pycrm", line=1)
        base = obj.get("base")
        if not isinstance(base, dict):
            raise _bad(self.file, "the header names no base", line=1)
        self.header = obj


# ---------------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------------


def _tail(tx: Transaction, seq: int) -> str | None:
    """A digest of the change-feed row ``seq`` (None for 0): what ties an increment to its store's past."""
    if seq == 0:
        return None
    rows = tx.changes_since(seq - 1, 1)
    if not rows or int(rows[0]["seq"]) != seq:
        return ""
    r = rows[0]
    text = json.dumps([r["seq"], r["entity"], r["entity_id"], r["op"], r["version"]], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def positions(tx: Transaction) -> dict[str, Any]:
    """The header fields every logical backup carries so an increment can follow it."""
    changes = int(tx.changes_last())
    last = tx.audit_last()
    return {
        "backup_id": uuid.uuid4().hex,
        "changes_seq": changes,
        "audit_seq": int(last["seq"]) if last else 0,
        "changes_tail": _tail(tx, changes),
    }


def write_increment(crm: CRM, target: Path, base_path: Path) -> BackupResult:
    from pycrm import __version__
    from pycrm.io._backup import SECTIONS, BackupResult, _entity_order, _name, _snapshot, _Sums

    base = chain_link(base_path)
    base_seq, base_audit = base.position("changes_seq"), base.position("audit_seq")
    lines = _Sums()
    with crm.session() as s:
        tx = s.unit.transaction()
        snap = _snapshot(crm, tx)
        with snap.snapshot():
            here = positions(tx)
            if here["changes_seq"] < base_seq or _tail(tx, base_seq) != base.header.get("changes_tail"):
                message = f"this store ({crm.url}) does not continue from {base.file}: its change feed differs at seq {base_seq}"
                raise ValidationError([FieldError("base", "not_a_base", message)])
            # the state at this point: entities and record streams as they are (one pass over the store), the
            # journal as the base's plus the rows appended since (the change feed and the audit trail only grow;
            # an erasure rewrites audit entries in place, and then says so in an ``erase`` entry: refused below)
            state = _Sums()
            for section in SECTIONS.values():
                if section.name == "journal":
                    continue
                for group in section.groups(tx):
                    state.ensure(_name(section.name, group))
                for group, key, data in section.read(tx):
                    state.add(_name(section.name, group), key, data)
            zero = {"count": 0, "sha256": "0" * 64}
            for name in ("journal/changes", "journal/audit"):
                got = base.state.get(name, zero)
                try:
                    state.counts[name], state.sums[name] = int(got["count"]), int(str(got["sha256"]), 16)
                except (KeyError, TypeError, ValueError):
                    raise _bad(base.file, f"its closing line has no count and checksum of {name}") from None
            touched: dict[str, set[str]] = {}
            cursor = base_seq
            while True:
                rows = tx.changes_since(cursor, _FEED_PAGE)
                for r in rows:
                    touched.setdefault(r["entity"], set()).add(r["entity_id"])
                if len(rows) < _FEED_PAGE:
                    break
                cursor = int(rows[-1]["seq"])
            header = {
                "format": INCREMENT_FORMAT,
                "format_version": INCREMENT_FORMAT_VERSION,
                "pycrm": __version__,
                "schema": snap.schema_revision(),
                "source": snap.source(),
                "created_at": utcnow().isoformat(),
                **here,
                "base": {
                    "file": base.path.name,
                    "backup_id": base.backup_id,
                    "sha256": base.sha256,
                    "changes_seq": base_seq,
                    "audit_seq": base_audit,
                },
            }
            dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
            counts: dict[str, int] = {}
            with open_replacing(target, "wb") as raw:
                if target.name.endswith(".gz"):
                    f: IO[str] = gzip.open(raw, "wt", encoding="utf-8", compresslevel=6)  # noqa: SIM115 - closed below
                else:
                    f = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
                with f:
                    n = 1
                    f.write(dumps(header) + "\n")

                    def line(op: str, section: str, group: str, key: str | None, data: Any = None) -> None:
                        nonlocal n
                        obj: dict[str, Any] = {"op": op, "section": section, "group": group}
                        if key is not None:
                            obj["key"] = key
                        if op == "put":
                            obj["data"] = data
                        lines.add(f"{section}/{group}", f"{op}:{key or ''}", data if op == "put" else None)
                        f.write(dumps(obj) + "\n")
                        n += 1

                    order = _entity_order()
                    gone: list[tuple[str, str]] = []
                    for group in order:
                        kind = ENTITIES[group]
                        for id in sorted(touched.get(group, ())):
                            e = tx.get(kind, id)
                            if e is None:
                                gone.append((group, id))
                            else:
                                line("put", "entities", group, id, to_data(e))
                                counts[group] = counts.get(group, 0) + 1
                    for group, id in sorted(gone, key=lambda g: (-order.index(g[0]), g[1])):  # children first
                        line("delete", "entities", group, id)
                    streams = state.table()
                    for name in sorted(n for n in set(streams) | set(base.state) if n.startswith("records/")):
                        if streams.get(name, zero) != base.state.get(name, zero):
                            stream = name.split("/", 1)[1]
                            line("replace", "records", stream, None)
                            for key, data in tx.record_list(stream):
                                line("put", "records", stream, key, data)
                    after = base_seq
                    while True:
                        rows = tx.changes_since(after, _FEED_PAGE)
                        for r in rows:
                            data = {**r, "at": r["at"].isoformat()}
                            line("put", "journal", "changes", str(r["seq"]), data)
                            state.add("journal/changes", str(r["seq"]), data)
                        if len(rows) < _FEED_PAGE:
                            break
                        after = int(rows[-1]["seq"])
                    after = base_audit
                    while True:
                        entries = tx.audit_list(after, _FEED_PAGE, None)
                        for entry in entries:
                            if entry.get("action") == "erase":
                                message = (
                                    f"the audit trail was rewritten since {base.file} (an erasure, audit entry "
                                    f"{entry['seq']}): take a full backup; an increment only appends audit entries"
                                )
                                raise ValidationError([FieldError("base", "not_a_base", message)])
                            line("put", "journal", "audit", str(entry["seq"]), entry)
                            state.add("journal/audit", str(entry["seq"]), entry)
                        if len(entries) < _FEED_PAGE:
                            break
                        after = int(entries[-1]["seq"])
                    table = state.table()
                    f.write(dumps({"end": True, "lines": n + 1, "groups": lines.table(), "state": table}) + "\n")
    return BackupResult(str(target), "incremental", counts, {k: v["sha256"] for k, v in table.items()})


# ---------------------------------------------------------------------------------------------------
# restoring
# ---------------------------------------------------------------------------------------------------


def check_follows(increment: IncrementDump, base_file: str, base_header: dict[str, Any], base_sha: str) -> None:
    """ValidationError naming the increment unless it follows the backup read just before it."""
    named = increment.header["base"]
    reasons = []
    if named.get("sha256") != base_sha:
        reasons.append(f"its base's digest is {str(named.get('sha256'))[:12]}..., {base_file}'s is {base_sha[:12]}...")
    if named.get("backup_id") != base_header.get("backup_id"):
        reasons.append(f"it follows backup {named.get('backup_id')!r}, not {base_header.get('backup_id')!r}")
    if named.get("changes_seq") != base_header.get("changes_seq"):
        ends = base_header.get("changes_seq")
        reasons.append(f"it starts after seq {named.get('changes_seq')!r}, {base_file} ends at {ends!r}")
    if reasons:
        message = f"does not follow {base_file} (it names {named.get('file')!r} as its base): {'; '.join(reasons)}"
        raise ValidationError([FieldError(increment.file, "broken_chain", message)])


_Lines = Iterator[tuple[int, str, str, str, str, Any]]


def apply_increment(tx: Transaction, increment: IncrementDump, records: _Lines, batch: int) -> None:
    """Write an increment's lines into ``tx`` (inside the restore's atomic block)."""
    from pycrm.io._backup import LineError, _check_entity, _write_journal

    file = increment.file
    journal: dict[str, list[tuple[int, str, Any]]] = {"changes": [], "audit": []}

    def flush() -> None:
        for group, rows in journal.items():
            if rows:
                try:
                    _write_journal(tx, group, rows)
                except LineError as exc:
                    raise _bad(file, exc.message, line=exc.line) from None
                rows.clear()

    for line, op, section, group, key, data in records:
        where = f"{section}/{group}/{key}"
        if section == "entities":
            kind = ENTITIES.get(group)
            if kind is None:
                raise _bad(file, f"unknown repository {group!r}", line=line)
            stored = tx.get(kind, key)
            if op == "delete":
                if stored is not None and not tx.delete(kind, key):
                    raise _bad(file, f"cannot delete {where}", line=line)
                continue
            if not isinstance(data, dict):
                raise _bad(file, f"{where}: expected an object", line=line)
            try:
                e = from_data(kind, data)
                _check_entity(e, line)
            except ValidationError as exc:
                raise _bad(file, f"{where}: {exc.errors[0].message}", line=line) from None
            except LineError as exc:
                raise _bad(file, f"{where}: {exc.message}", line=line) from None
            if e.id != key:
                raise _bad(file, f"key {key!r} differs from the record's id {e.id!r}", line=line)
            if stored is None:
                tx.insert(kind, [e])
            elif not tx.update(kind, e, stored.version):
                raise _bad(file, f"cannot replace {where}", line=line)
        elif section == "records":
            if op == "replace":
                for k, _ in tx.record_list(group):
                    tx.record_delete(group, k)
            elif op == "put":
                tx.record_put(group, key, data)
            else:
                tx.record_delete(group, key)
        elif section == "journal" and op == "put" and group in journal:
            journal[group].append((line, key, data))
            if len(journal[group]) >= batch:
                flush()
        else:
            raise _bad(file, f"an increment cannot {op} {section}/{group}", line=line)
    flush()
