"""``import_file``: CSV, XLSX or JSON Lines into a store, validated, upserted, all-or-nothing or per batch.

The pipeline: the file is read as a stream of rows; rows are converted and validated in chunks (in
worker processes when the file is larger than one batch, so validation uses every core); the caller's
process checks keys (duplicates inside the file, records already stored), looks up referenced customers
and writes each batch through the session's repositories. Nothing is written in a dry run.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import hashlib
import multiprocessing
import os
import re
import secrets
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import attrs

from pycrm._runtime import BULK_GC_THRESHOLD, bulk_gc, die_with_parent
from pycrm.domain import Customer, EmailAddress, Entity, PhoneNumber, User, utcnow
from pycrm.domain._checks import check_count, check_mapping, check_names
from pycrm.domain._values import _check_currency, memoize_email_domains
from pycrm.errors import ConcurrencyError, CRMError, FieldError, StorageError, ValidationError, quote
from pycrm.io._convert import Converted, Converter
from pycrm.io._entry import check_actor, check_callback, check_flag, check_option, check_path, check_target
from pycrm.io._formats import RowProblem, open_reader
from pycrm.io._mapping import IMPORT_KINDS, load_mapping, required_fields, resolve
from pycrm.storage._where import FIELD_KINDS
from pycrm.storage.port import ExclusiveHold, PreparedRows, RowPreparer

if TYPE_CHECKING:
    from pycrm import CRM
    from pycrm.storage import Session

__all__ = ["DEFAULT_KEYS", "ImportRejected", "ImportReport", "Problem", "import_file"]

#: Upsert keys tried in order when none are given, among the fields the file fills.
DEFAULT_KEYS: dict[str, tuple[str, ...]] = {
    "customers": ("id", "custom.external_id", "emails", "phones"),
    "contacts": ("id", "emails", "phones"),
    "opportunities": ("id",),
    "tickets": ("id",),
    "interactions": ("id",),
    "orders": ("id", "order_no"),
    "surveys": ("id",),
}

_IN_CHUNK = 500  # values per "in" filter when looking records up


@attrs.frozen
class Problem:
    """One problem in an import file: where (file, row, column), the value, and what is wrong."""

    file: str
    row: int | None
    column: str | None
    value: Any
    message: str

    @property
    def where(self) -> str:
        return ", ".join(
            p
            for p in (
                self.file,
                f"row {self.row}" if self.row is not None else None,
                f"column {self.column!r}" if self.column else None,
            )
            if p
        )

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"

    def field_error(self) -> FieldError:
        return FieldError(self.where, "bad_input", self.message)


@attrs.define
class ImportReport:
    """What an import did (or, in a dry run, would do)."""

    file: str
    entity: str
    format: str
    encoding: str | None
    mapping: dict[str, str]
    ignored_columns: list[str]
    keys: list[str]
    dry_run: bool
    per_batch: bool
    rows: int = 0
    #: whether the import held the store (``exclusive=True`` on an SQLite file no other connection held)
    exclusive: bool = False
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    committed_rows: int = 0
    problems: list[Problem] = attrs.field(factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        verb = "would be" if self.dry_run else "were"
        text = (
            f"{self.file}: {self.rows} rows; {self.created} {verb} created, {self.updated} {verb} updated, "
            f"{self.unchanged} left unchanged"
        )
        if self.problems:
            text += f"; {len(self.problems)} problems"
        return text


class ImportRejected(ValidationError):
    """The file had problems, so nothing was written (all-or-nothing) or the bad batches were not.

    ``errors`` has one FieldError per problem (its field names file, row and column); ``report`` the
    full :class:`ImportReport`.
    """

    def __init__(self, report: ImportReport):
        if not isinstance(report, ImportReport):
            raise ValidationError([FieldError("report", "type", f"expected an ImportReport, got {type(report).__name__}")])
        self.report = report
        self.errors = [p.field_error() for p in report.problems]
        shown = "; ".join(str(p) for p in report.problems[:5])
        more = len(report.problems) - 5
        CRMError.__init__(self, shown + (f" (and {more} more problems)" if more > 0 else ""))


def import_file(
    target: CRM | Session,
    path: str | os.PathLike[str],
    entity: str = "customers",
    *,
    mapping: Mapping[str, str | None] | str | os.PathLike[str] | None = None,
    key: str | Sequence[str] | None = None,
    format: str | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
    dry_run: bool = False,
    per_batch: bool = False,
    batch_size: int = 1000,
    workers: int | None = None,
    currency: str = "CNY",
    timezone: str = "UTC",
    actor: User | None = None,
    progress: Callable[[int], None] | None = None,
    exclusive: bool = False,
) -> ImportReport:
    """Import ``path`` into the ``entity`` repository; returns an :class:`ImportReport`.

    ``target`` is a CRM (a session is opened for ``actor``) or an open Session. ``mapping`` maps columns
    to fields (a dict or a JSON/TOML file); columns it leaves out are mapped from their header when it is
    recognised. ``key`` names the upsert key fields, tried in order (default: id, then
    ``custom.external_id``, emails, phones for customers, among the columns present): a row whose key
    matches a stored record updates it, or leaves it alone when nothing differs.

    Imports of the same keys at the same time, in any processes, make one record per key: each holds its
    keys' upsert locks (:class:`~pycrm.storage.port.KeyLocks`) from its first look-up to the end of its
    transaction, so a later one updates what an earlier one created; a row whose unique key
    (``custom.external_id``, ``CustomField(..., unique=True)``) another session took meanwhile updates that
    record instead (docs/io.md, "Concurrent imports").

    All-or-nothing by default: any problem means nothing is written, and :class:`ImportRejected` (a
    ValidationError) lists every problem. ``per_batch=True`` commits each clean batch of ``batch_size``
    rows. ``dry_run=True`` writes nothing and returns the report with every problem.

    ``exclusive=True`` (for loading a store, all-or-nothing, with ``target`` a CRM): on an SQLite file that
    no other connection holds, the import's pages are written once, straight into the database file, and
    other connections wait (up to their busy timeout, then fail) until it ends (a store's
    :class:`~pycrm.storage.port.ExclusiveHold`);
    ``report.exclusive`` says whether it did. Elsewhere it changes nothing.
    """
    check_target(target)
    file = check_path("path", path)
    if not isinstance(entity, str) or entity not in IMPORT_KINDS:
        raise ValidationError(
            [FieldError("entity", "unknown_entity", f"cannot import {quote(entity)} (use one of: {', '.join(IMPORT_KINDS)})")]
        )
    if mapping is not None and not isinstance(mapping, (str, os.PathLike)):
        check_mapping("mapping", mapping)
    if key is not None:
        check_names("key", key)
    for name, option in (("format", format), ("encoding", encoding), ("sheet", sheet)):
        check_option(option, name)
    for name, flag in (("dry_run", dry_run), ("per_batch", per_batch)):
        check_flag(name, flag)
    _check_currency(currency, "currency")
    check_actor(actor)
    check_callback(progress)
    check_count("batch_size", batch_size)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValidationError([FieldError("workers", "type", f"expected a whole number >= 1, got {workers!r}")])
    _check_timezone(timezone)
    if not isinstance(exclusive, bool):
        raise ValidationError([FieldError("exclusive", "type", f"expected true or false, got {exclusive!r}")])
    from pycrm.storage import Session

    if exclusive and isinstance(target, Session):
        raise ValidationError(
            [FieldError("exclusive", "needs_crm", "an exclusive import opens its own session: pass the CRM, not a session")]
        )
    if exclusive and per_batch:
        raise ValidationError(
            [FieldError("exclusive", "per_batch", "an exclusive import is one transaction: it cannot commit per batch")]
        )
    if isinstance(mapping, (str, os.PathLike)):
        mapping = load_mapping(mapping)
    with ExitStack() as stack:
        stack.enter_context(bulk_gc())  # millions of short-lived objects: see bulk_gc
        reader = stack.enter_context(open_reader(file, format, encoding, sheet=sheet))
        targets, ignored = resolve(entity, reader.header, mapping, file=file)
        keys = _keys(file, entity, targets, key)
        held = False
        if exclusive and not dry_run and not isinstance(target, Session):
            store = target.store
            held = isinstance(store, ExclusiveHold) and stack.enter_context(store.held())
        session = target if isinstance(target, Session) else stack.enter_context(target.session(actor))
        store_required = tuple(session.unit.required_fields(entity))
        _check_required(file, entity, targets, store_required)
        converter = Converter(
            kind=entity,
            columns=tuple(reader.header),
            targets=tuple(targets.items()),
            keys=tuple(keys),
            region=session.default_region,
            currency=currency.upper(),
            timezone=timezone,
            custom_fields=tuple(session.unit.custom_fields(entity)),
            required=store_required,
        )
        report = ImportReport(
            file, entity, reader.format, reader.encoding, targets, ignored, keys, dry_run, per_batch, exclusive=held
        )
        run = _Importer(session, converter, report, batch_size, progress)
        stack.callback(run.seen.close)
        chunks = run.convert(_chunks(reader, batch_size, report), workers)
        if dry_run or per_batch:
            run.apply_all(chunks)
        else:
            # rolled back with its journal entries (change feed, audit) on a problem, so writes in it need no
            # savepoints of their own (session.unit.bulk)
            with session.unit.atomic(), session.unit.bulk() as bulk:
                run.in_place = not bulk  # in bulk mode a failed insert undoes the whole import, not itself
                run.apply_all(chunks)
                if report.problems:
                    raise ImportRejected(report)
        if report.problems and not dry_run:
            raise ImportRejected(report)
        return report
    raise AssertionError("unreachable")  # pragma: no cover - mypy: ExitStack may swallow exceptions


def _check_timezone(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise ValidationError([FieldError("timezone", "type", f"expected a time zone name, got {name!r}")])
    if name.upper() == "UTC":
        return
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            [FieldError("timezone", "unknown_timezone", f"unknown time zone {name!r} (try Asia/Shanghai)")]
        ) from None


def _check_required(file: str, entity: str, targets: Mapping[str, str], store: Sequence[str] = ()) -> None:
    """Every field the entity requires, and those the store requires (``store``), has a column."""
    filled = set(targets.values())
    if "currency" in filled:
        filled.add("amount.currency")
    if "full_name" in filled:
        filled.add("first_name")
    if any(t.startswith("customer.") for t in filled):
        filled.add("customer_id")
    errors = []
    for field in dict.fromkeys([*required_fields(entity), *store]):
        if field not in filled:
            errors.append(
                FieldError(
                    f"{file}, row 1, column {field!r}",
                    "missing_column",
                    f"no column fills the required field {field!r} (columns: {', '.join(targets) or 'none recognised'}); "
                    "name one in the mapping",
                )
            )
    if errors:
        raise ValidationError(errors)


def _keys(file: str, entity: str, targets: Mapping[str, str], key: str | Sequence[str] | None) -> list[str]:
    filled = set(targets.values())
    if key is None:  # the first default key the file fills
        return [k for k in DEFAULT_KEYS[entity] if k in filled][:1]
    wanted = [key] if isinstance(key, str) else list(key)
    kinds = FIELD_KINDS[_entity_class(entity)]
    errors = []
    for k in wanted:
        if not isinstance(k, str) or not (k in kinds or (entity == "customers" and k.startswith("custom."))):
            errors.append(
                FieldError(
                    "key",
                    "bad_key",
                    f"{k!r} cannot be an upsert key of {entity} (use a filterable field such as "
                    f"id, emails, phones{', custom.external_id' if entity == 'customers' else ''})",
                )
            )
        elif k not in filled:
            errors.append(FieldError(f"{file}, row 1", "missing_column", f"the key {k!r} is not filled by any column"))
    if errors:
        raise ValidationError(errors)
    return wanted


def _entity_class(entity: str) -> type[Entity]:
    from pycrm.domain import ENTITIES

    return ENTITIES[entity]


def _chunks(reader: Any, size: int, report: ImportReport) -> Iterator[tuple[list[tuple[int, Any]], list[RowProblem]]]:
    rows: list[tuple[int, Any]] = []
    bad: list[RowProblem] = []
    for item in reader:
        report.rows += 1
        if isinstance(item, RowProblem):
            bad.append(item)
        else:
            rows.append(item)
        if len(rows) + len(bad) >= size:
            yield rows, bad
            rows, bad = [], []
    if rows or bad:
        yield rows, bad


def _worker_started() -> None:
    """In a worker process: objects inherited from the parent (forked) are left out of garbage collection.

    They are never freed here, and a collection that walks them touches every copied-on-write page. The
    worker only converts: its garbage is collected as in bulk work (``pycrm._runtime.bulk_gc``), and it
    remembers each e-mail domain's check (``memoize_email_domains``).
    """
    gc.freeze()
    gc.set_threshold(*BULK_GC_THRESHOLD)
    memoize_email_domains()
    die_with_parent()  # a killed import leaves no worker behind holding the store's files


#: How a converting process prepares new rows: (the store's preparer, time stamp, audit diffs too, keep the entities).
Prep = tuple[RowPreparer, Any, bool, bool]


def _convert_chunk(
    converter: Converter, rows: list[tuple[int, Any]], prep: Prep | None = None
) -> tuple[list[Converted], PreparedRows | None]:
    """Convert a chunk; with ``prep``, also make the table rows and audit diffs of its good rows, should
    they be new (see ``pycrm.storage.port.PreparedWrites``), and drop the entities unless asked to keep them."""
    out = converter.convert_many(rows)
    if prep is None:
        return out, None
    preparer, at, audit, keep = prep
    made = preparer(_entity_class(converter.kind), [c[1] for c in out if not c[2]], at, audit)  # type: ignore[misc]
    if not keep:
        out = [(n, None, p, k, r) for n, _, p, k, r in out]
    return out, made


class _Importer:
    def __init__(
        self,
        session: Session,
        converter: Converter,
        report: ImportReport,
        batch_size: int,
        progress: Callable[[int], None] | None,
    ):
        self.s = session
        self.c = converter
        self.report = report
        self.batch_size = batch_size
        self.progress = progress
        self.kind = _entity_class(converter.kind)
        self.repo = getattr(session, converter.kind)
        self.column_of = {t: c for c, t in converter.targets}
        # the row each key value was first seen on (duplicates inside the file); encrypted keys spill hashed
        self.seen = _SeenKeys(hashed=frozenset(session.unit.security.encrypted.get(converter.kind, ())))
        self.matched: dict[str, int] = {}
        self.fields = self._compared_fields()
        self.done = 0
        # Upserts by the same key match one after the other, in any process: the key's upsert lock is held
        # from before the first look-up to the end of the transaction (KeyLocks), so an import sees what
        # another one committed first and updates it. What is read under it (the count, the key index
        # below) stays true while the lock is held: to the end of an all-or-nothing import, to the end of
        # the first batch of a per-batch one (``current``).
        if not report.dry_run:
            session.unit.lock_keys(self.kind, converter.keys)
        self.current = True
        # keys the store holds unique: a row whose key another record took meanwhile fails to insert
        # (duplicate_key) and is matched again; ``in_place``: such a failure undid only that insert
        self.unique = session.unit.unique_keys(self.kind)
        self.in_place = True
        # An empty repository needs no look-ups (repeats inside the file are caught by ``seen``); keys on
        # custom fields have no index, so for a large repository they are read in one streamed pass.
        self.stored = self.repo.count()
        # New rows made ready to insert by the converting processes (table rows, audit diffs), where the
        # session takes them: the SQL adapter, nothing checked row by row, no customer to look up (that
        # changes the rows). The entities come back too when rows may turn out to be updates.
        targets = [t for _, t in converter.targets]
        self.preparer = (
            None if report.dry_run or any(t.startswith("customer.") for t in targets) else session.unit.row_preparer(self.kind)
        )
        self.keep = self.stored > 0 or self.kind is not Customer or report.per_batch
        self.key_index: dict[tuple[str, Any], Any] | None = None
        if self.stored > 20 * batch_size and any(k.startswith("custom.") for k in converter.keys):
            self.key_index = {}
            for e in self.repo.iter(batch_size=5000):
                for k in converter.keys:
                    for v in _values_of(e, k):
                        prev = self.key_index.get((k, v))
                        self.key_index[(k, v)] = e.id if prev is None or prev == e.id else _AMBIGUOUS

    # ---- conversion, in worker processes when there is more than one chunk ----
    def _prep(self) -> Prep | None:
        if self.preparer is None:
            return None
        return self.preparer, utcnow(), self.s.unit.security.audit, self.keep

    def convert(
        self, chunks: Iterator[tuple[list[tuple[int, Any]], list[RowProblem]]], workers: int | None
    ) -> Iterator[tuple[tuple[list[Converted], PreparedRows | None], list[RowProblem]]]:
        n = workers if workers is not None else min(2, os.cpu_count() or 1)
        first = next(chunks, None)
        if first is None:
            return
        second = next(chunks, None)
        if second is None or n < 2:
            for rows, bad in _prepend([first] if second is None else [first, second], chunks):
                yield _convert_chunk(self.c, rows, self._prep()), bad
            return
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        with ProcessPoolExecutor(n, mp_context=ctx, initializer=_worker_started) as pool:
            pending: collections.deque[tuple[Future[Any], list[RowProblem]]] = collections.deque()
            source = _prepend([first, second], chunks)
            try:
                for rows, bad in source:
                    pending.append((pool.submit(_convert_chunk, self.c, rows, self._prep()), bad))
                    while len(pending) > n * 2:
                        fut, b = pending.popleft()
                        yield fut.result(), b
                while pending:
                    fut, b = pending.popleft()
                    yield fut.result(), b
            finally:
                for fut, _ in pending:
                    fut.cancel()

    # ---- checking and writing, in this process ----
    def apply_all(self, chunks: Iterator[tuple[tuple[list[Converted], PreparedRows | None], list[RowProblem]]]) -> None:
        for (converted, parts), bad in chunks:
            if self.report.per_batch and not self.report.dry_run:
                try:
                    # the commit after each batch let the upsert locks go: hold them again
                    self.s.unit.lock_keys(self.kind, self.c.keys)
                    # a failed batch leaves no change-feed or audit entries behind (and fails its block: _bulk)
                    with self.s.unit.atomic(), self.s.unit.bulk():
                        wrote = self.apply(converted, bad, parts)
                except _BatchFailed:
                    wrote = False
                self.s.commit()
                self.current = False  # others may have upserted since the count and the key index
                if wrote:
                    self.report.committed_rows += len(converted)
            else:
                with contextlib.suppress(_BatchFailed):  # reported; the import's atomic block rolls it all back
                    self.apply(converted, bad, parts)
            self.done += len(converted) + len(bad)
            if self.progress is not None:
                self.progress(self.done)

    def _problem(self, row: int | None, column: str | None, value: Any, message: str) -> None:
        v = value if value is None or isinstance(value, (str, int, float, bool)) else str(value)
        self.report.problems.append(Problem(self.report.file, row, column, v, message))

    def apply(self, converted: list[Converted], bad: list[RowProblem], parts: PreparedRows | None = None) -> bool:
        """Check one batch and write it (unless it or, all-or-nothing, an earlier one had problems).

        ``parts``: the rows the converting processes made ready for the rows without problems, if they did."""
        before = len(self.report.problems)
        for b in bad:
            self._problem(b.row, b.column, b.value, b.message)
        good: list[tuple[int, Any, dict[str, Any], dict[str, Any]]] = []
        earlier_batches = self.seen.lookup([kv for _, _, p, keys, _ in converted if not p for kv in keys.items()])
        this_batch: dict[tuple[str, Any], int] = {}
        for rowno, entity, problems, keys, refs in converted:
            for col, value, message in problems:
                self._problem(rowno, col, value, message)
            if problems:
                continue
            dup = False
            for k, v in keys.items():
                earlier = earlier_batches.get((k, v)) or this_batch.get((k, v))
                if earlier is not None:
                    col = self.column_of.get(k) or self.column_of.get("custom") or k
                    self._problem(rowno, col, v, f"duplicate key: {k} {v!r} is also on row {earlier}")
                    dup = True
            if dup:
                continue
            for k, v in keys.items():
                this_batch[(k, v)] = rowno
            good.append((rowno, entity, keys, refs))
        self.seen.add(this_batch)
        if self.kind is not Customer:
            good = self._resolve_customers(good)
        existing = self._existing(good)
        creates: list[tuple[int, Any]] = []
        updates: list[tuple[int, Any]] = []
        for rowno, entity, keys, _ in good:
            match = None
            for k in self.c.keys:
                if k in keys:
                    match = existing.get((k, keys[k]))
                    if match is not None:
                        break
            if match is None:
                creates.append((rowno, entity))
                continue
            if match is _AMBIGUOUS:
                k = next(k for k in self.c.keys if existing.get((k, keys.get(k))) is _AMBIGUOUS)
                self._problem(rowno, self.column_of.get(k, k), keys[k], f"{k} {keys[k]!r} matches more than one stored record")
                continue
            earlier = self.matched.get(match.id)
            if earlier is not None:
                self._problem(rowno, None, None, f"updates the same stored record ({match.id}) as row {earlier}")
                continue
            self.matched[match.id] = rowno
            changed = self._changes(match, entity)
            if changed:
                updates.append((rowno, (match, changed)))
            else:
                self.report.unchanged += 1
        failed = len(self.report.problems) > before
        blocked = failed or (bool(self.report.problems) and not self.report.per_batch)
        if self.report.dry_run:
            self.report.created += len(creates)
            self.report.updated += len(updates)
            return False
        if blocked:
            return False
        # Rows prepared by the converting processes (one per row without problems) are inserted as they are
        # when every such row is new; otherwise the new ones go in as entities (kept for that case).
        whole = parts is not None and len(creates) == len(parts.ids)
        self._write(creates, updates, parts if whole else None)
        return len(self.report.problems) == before

    def _write(
        self, creates: list[tuple[int, Any]], updates: list[tuple[int, Any]], prepared: PreparedRows | None = None
    ) -> None:
        """Insert ``creates`` (their entities, or ``prepared``: the same rows made ready), apply ``updates``."""
        before = len(self.report.problems)
        created, taken = self._insert(creates, prepared) if creates else (0, [])
        for rowno, (entity, changed) in [*taken, *updates]:
            try:
                for name, value in changed.items():
                    setattr(entity, name, value)
                self.repo.update(entity)
            except ValidationError as exc:
                for e in exc.errors:
                    self._problem(rowno, self._column(e.field), None, e.message)
        if len(self.report.problems) > before:
            raise _BatchFailed
        self.report.created += created
        self.report.updated += len(taken) + len(updates)

    def _insert(self, creates: list[tuple[int, Any]], prepared: PreparedRows | None) -> tuple[int, list[tuple[int, Any]]]:
        """Insert the new rows; returns how many, and the rows that turned out to be updates.

        A row whose unique key (one of the import's keys) another record took since it was looked up -- an
        ``add`` or an import without the upsert lock that committed first -- fails to insert with
        ``duplicate_key``; where that failure undid only the insert, the row is matched again by the key
        and updates the record, and the other rows are inserted again. A record the actor cannot see is
        not matched: the row is a problem saying the value is taken (all it says of that record)."""
        turned: list[tuple[int, Any]] = []
        while creates:
            rows = [r for r, _ in creates]
            try:
                # built and validated by the converting workers, unchanged since: not validated twice
                if prepared is not None:
                    self.s.unit.add_prepared(self.repo, prepared)
                else:
                    entities = [e for _, e in creates]
                    assert None not in entities, "entities are kept whenever rows may be left out of a batch"
                    self.s.unit.add_built(self.repo, entities)
                return len(creates), turned
            except ValidationError as exc:
                located = [(*_located(e.field), e) for e in exc.errors]
                taken = {i: field for i, field, e in located if _taken_key(e.code, field, self.c.keys)}
                if not taken or len(taken) < len(located) or not self.in_place:
                    for i, field, e in located:
                        if e.code == "duplicate_key" and i < len(creates) and creates[i][1] is not None:
                            self._taken_problem(*creates[i], field)
                        else:
                            self._problem(rows[i] if i < len(rows) else None, self._column(field), None, e.message)
                    return 0, turned
            for i, field in sorted(taken.items()):
                rowno, entity = creates[i]
                if entity is None:  # rows prepared without their entities: the import found the store empty
                    raise ConcurrencyError(f"{field} values of this import were added by another session meanwhile; retry")
                self._match_taken(rowno, entity, field, turned)
            creates = [c for i, c in enumerate(creates) if i not in taken]
            prepared = None
        return 0, turned

    def _match_taken(self, rowno: int, entity: Any, field: str, turned: list[tuple[int, Any]]) -> None:
        """A new row whose unique ``field`` another record took meanwhile: that record, updated, if the actor sees it."""
        value = _values_of(entity, field)[0]
        found = list(self._find(self.repo, field, [value]))
        if len(found) != 1:  # another owner's record: all the actor learns is that the value is taken
            self._taken_problem(rowno, entity, field)
            return
        match = found[0]
        earlier = self.matched.get(match.id)
        if earlier is not None:
            self._problem(rowno, None, None, f"updates the same stored record ({match.id}) as row {earlier}")
            return
        self.matched[match.id] = rowno
        changed = self._changes(match, entity)
        if changed:
            turned.append((rowno, (match, changed)))
        else:
            self.report.unchanged += 1

    def _taken_problem(self, rowno: int, entity: Any, field: str) -> None:
        """The row's unique ``field`` is held by a record it is not matched to: that is all that is said of it."""
        value = next(iter(_values_of(entity, field)), None)
        self._problem(rowno, self._column(field), value, f"another record already has {field} {value!r} (a unique key)")

    def _column(self, field: str) -> str | None:
        """The column of the file that fills ``field`` (an error's field path), if one does."""
        if field in self.column_of:
            return self.column_of[field]
        root = re.split(r"[.\[]", field, maxsplit=1)[0]
        col = self.column_of.get(root)
        if root == "customer_id" and col is None:
            col = next((c for t, c in self.column_of.items() if t.startswith("customer.")), None)
        return col

    # ---- keys and references ----
    def _find(self, repo: Any, field: str, values: list[Any]) -> Iterator[Any]:
        for i in range(0, len(values), _IN_CHUNK):
            yield from repo.find({field: {"in": values[i : i + _IN_CHUNK]}})

    def _existing(self, good: list[tuple[int, Any, dict[str, Any], dict[str, Any]]]) -> dict[tuple[str, Any], Any]:
        out: dict[tuple[str, Any], Any] = {}
        if not self.stored and self.current:
            return out
        for k in self.c.keys:
            values = list(dict.fromkeys(keys[k] for _, _, keys, _ in good if k in keys))
            if not values:
                continue
            # once others may have upserted, the key index is trusted only for unique keys, where a record it
            # missed makes the insert fail and the row is matched again (_insert)
            if self.key_index is not None and k.startswith("custom.") and (self.current or k in self.unique):
                ids = {v: self.key_index.get((k, v)) for v in values}
                found = {e.id: e for e in self._find(self.repo, "id", sorted({i for i in ids.values() if isinstance(i, str)}))}
                for v, i in ids.items():
                    if i is _AMBIGUOUS:
                        out[(k, v)] = _AMBIGUOUS
                    elif i in found:
                        out[(k, v)] = found[i]
                continue
            wanted = set(values)
            for e in self._find(self.repo, k, values):
                for v in _values_of(e, k):
                    if v in wanted:
                        prev = out.get((k, v))
                        out[(k, v)] = e if prev is None or prev.id == e.id else _AMBIGUOUS
        return out

    def _resolve_customers(
        self, good: list[tuple[int, Any, dict[str, Any], dict[str, Any]]]
    ) -> list[tuple[int, Any, dict[str, Any], dict[str, Any]]]:
        by_look: dict[str, set[Any]] = {}
        normal: dict[tuple[int, str], Any] = {}
        keep: list[tuple[int, Any, dict[str, Any], dict[str, Any]]] = []
        for rowno, entity, keys, refs in good:
            ok = True
            for look, raw in refs.items():
                try:
                    v = _normal(look, raw, self.s.default_region)
                except ValidationError as exc:
                    self._problem(rowno, self.column_of.get(f"customer.{look}"), raw, "; ".join(e.message for e in exc.errors))
                    ok = False
                    continue
                normal[(rowno, look)] = v
                by_look.setdefault(look, set()).add(v)
            if not refs:
                by_look.setdefault("id", set()).add(entity.customer_id)
                normal[(rowno, "id")] = entity.customer_id
            if ok:
                keep.append((rowno, entity, keys, refs))
        found: dict[tuple[str, Any], Any] = {}
        for look, values in by_look.items():
            wanted = set(values)
            for c in self._find(self.s.customers, look, sorted(values, key=str)):
                for v in _values_of(c, look):
                    if v in wanted:
                        prev = found.get((look, v))
                        found[(look, v)] = c.id if prev is None or prev == c.id else _AMBIGUOUS
        out = []
        for rowno, entity, keys, refs in keep:
            looks = list(refs) or ["id"]
            ids = set()
            ok = True
            for look in looks:
                v = normal[(rowno, look)]
                cid = found.get((look, v))
                col = self.column_of.get(f"customer.{look}") if refs else self.column_of.get("customer_id")
                if cid is None:
                    self._problem(rowno, col, v, f"no customer with {look} {v!r}")
                    ok = False
                elif cid is _AMBIGUOUS:
                    self._problem(rowno, col, v, f"more than one customer has {look} {v!r}; look customers up by a unique field")
                    ok = False
                else:
                    ids.add(cid)
            if ok and len(ids) > 1:
                self._problem(rowno, None, None, f"the customer columns name different customers ({', '.join(sorted(ids))})")
                ok = False
            if ok:
                object.__setattr__(entity, "customer_id", ids.pop())
                out.append((rowno, entity, keys, refs))
        return out

    # ---- comparing ----
    def _compared_fields(self) -> list[str]:
        out: list[str] = []
        for t in self.column_of:
            if t in ("currency", "amount"):
                f = "amount"
            elif t.startswith("customer."):
                f = "customer_id"
            elif t.startswith("address."):
                f = "addresses"
            elif t == "full_name":
                out += ["first_name", "last_name"]
                continue
            elif t.startswith("custom."):
                f = t
            else:
                f = t
            if f not in out and f != "id":
                out.append(f)
        return out

    def _changes(self, stored: Any, new: Any) -> dict[str, Any]:
        changed: dict[str, Any] = {}
        custom: dict[str, Any] | None = None
        for f in self.fields:
            if f.startswith("custom."):
                key = f[7:]
                if stored.custom.get(key) != new.custom.get(key):
                    custom = dict(changed.get("custom", stored.custom)) if custom is None else custom
                    if key in new.custom:
                        custom[key] = new.custom[key]
                    else:
                        custom.pop(key, None)
                continue
            if f == "custom":
                if stored.custom != new.custom:
                    custom = dict(new.custom)
                continue
            if getattr(stored, f) != getattr(new, f):
                changed[f] = getattr(new, f)
        if custom is not None:
            changed["custom"] = custom
        return changed


#: Key values held in memory before the rest go to a temporary SQLite file (memory stays flat). Tests
#: lower it to reach the spill with a small file.
SEEN_IN_MEMORY = 100_000
#: Bytes of the keyed hash a spilled value of an encrypted key is kept as (128 bits: a false match is never
#: met in practice).
SEEN_DIGEST_BYTES = 16


class _SeenKeys:
    """The row each upsert-key value was first seen on: ``{(key, value): row}`` that spills to disk.

    Up to :data:`SEEN_IN_MEMORY` values are kept in a dict; past that, text and whole-number values go to
    a temporary SQLite file (in :func:`tempfile.gettempdir`, deleted when closed), one table per key and
    kind of value, looked up and added a batch at a time. Values are stored with their kind (text or
    number; ``True`` counts as 1, as in a dict), so matches are exact; values of other types stay in memory.

    The values of the keys in ``hashed`` (the fields the store keeps encrypted) never reach the file: a
    keyed hash of each does (BLAKE2b under a random key made for this import and held only in memory), so
    a temporary file, which a crash can leave behind, holds nothing the encryption protects. (Other keys are
    stored as they are: their values are stored in clear in the database too, and a hash's random order
    would cost a large import seconds of B-tree work.)
    """

    def __init__(self, limit: int | None = None, hashed: frozenset[str] = frozenset()):
        self.mem: dict[tuple[str, Any], int] = {}
        self.limit = SEEN_IN_MEMORY if limit is None else limit
        self.hashed = hashed
        self.db: sqlite3.Connection | None = None
        self.path: str | None = None
        self.tables: dict[tuple[str, str], str] = {}  # (key, "s", "i" or "h") -> its table, named here (not by input)
        self._secret = secrets.token_bytes(32)

    def _encode(self, key: str, v: Any) -> tuple[str, str | bytes] | None:
        t = type(v)
        if t is str:
            kind, text = "s", v
        elif t is int or t is bool:
            kind, text = "i", str(int(v))
        else:
            return None
        if key not in self.hashed:
            return kind, text
        data = (kind + text).encode("utf-8", "surrogatepass")
        return "h", hashlib.blake2b(data, key=self._secret, digest_size=SEEN_DIGEST_BYTES).digest()

    @contextlib.contextmanager
    def _file(self) -> Iterator[None]:
        """SQLite's and the file system's errors on the temporary file (a full disk) as a CRMError."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(
                f"the import's temporary file of the keys seen ({self.path or tempfile.gettempdir()}): {exc}"
            ) from None

    def lookup(self, wanted: list[tuple[str, Any]]) -> dict[tuple[str, Any], int]:
        with self._file():
            return self._lookup(wanted)

    def add(self, items: dict[tuple[str, Any], int]) -> None:
        with self._file():
            self._add(items)

    def _lookup(self, wanted: list[tuple[str, Any]]) -> dict[tuple[str, Any], int]:
        out: dict[tuple[str, Any], int] = {}
        groups: dict[str, dict[str | bytes, tuple[str, Any]]] = {}
        tables = self.tables
        for kv in wanted:
            row = self.mem.get(kv)
            if row is not None:
                out[kv] = row
            elif tables and (enc := self._encode(*kv)) is not None:
                table = tables.get((kv[0], enc[0]))
                if table is not None:
                    groups.setdefault(table, {})[enc[1]] = kv
        for table, texts in groups.items():
            values = list(texts)
            for i in range(0, len(values), _IN_CHUNK):
                part = values[i : i + _IN_CHUNK]
                sql = f"SELECT s, row FROM {table} WHERE s IN ({','.join('?' * len(part))})"
                assert self.db is not None
                for text, row in self.db.execute(sql, part):
                    out[texts[text]] = row
        return out

    def _add(self, items: dict[tuple[str, Any], int]) -> None:
        if self.db is None:
            if len(self.mem) + len(items) <= self.limit:
                self.mem.update(items)
                return
            fd, self.path = tempfile.mkstemp(prefix="pycrm-import-keys-", suffix=".db")
            os.close(fd)
            self.db = sqlite3.connect(self.path)
            self.db.execute("PRAGMA journal_mode = OFF")
            self.db.execute("PRAGMA synchronous = OFF")
            items, self.mem = {**self.mem, **items}, {}
        groups: dict[tuple[str, str], list[tuple[str | bytes, int]]] = {}
        for kv, row in items.items():
            enc = self._encode(*kv)
            if enc is None:
                self.mem[kv] = row
            else:
                groups.setdefault((kv[0], enc[0]), []).append((enc[1], row))
        for where, rows in groups.items():
            table = self.tables.get(where)
            if table is None:
                table = self.tables[where] = f"seen_{len(self.tables)}"
                self.db.execute(f"CREATE TABLE {table} (s PRIMARY KEY, row INTEGER) WITHOUT ROWID")
            self.db.executemany(f"INSERT INTO {table} VALUES (?, ?)", rows)
        self.db.commit()  # to the file, not held in this process's page cache

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self.path = None


class _BatchFailed(Exception):
    """A batch could not be written; its problems are in the report (the atomic block rolls it back)."""


class _Ambiguous:
    id = "<ambiguous>"


_AMBIGUOUS: Any = _Ambiguous()


def _located(field: str) -> tuple[int, str]:
    """(row in the batch, field) of an error of a batch insert (``[3].emails[0]``; unprefixed for one row)."""
    m = re.match(r"\[(\d+)\]\.?(.*)", field)
    return (int(m.group(1)), m.group(2)) if m else (0, field)


def _taken_key(code: str, field: str, keys: Sequence[str]) -> bool:
    """Whether an insert's error says another record holds the row's value of one of the import's keys."""
    return field in keys and (code == "duplicate_key" or (code == "duplicate" and field == "id"))


def _values_of(e: Any, field: str) -> list[Any]:
    if field.startswith("custom."):
        v = e.custom.get(field[7:])
        return [] if v is None else [v]
    v = getattr(e, field)
    items = v if isinstance(v, (list, frozenset)) else [v]
    return [x.e164 if isinstance(x, PhoneNumber) else getattr(x, "value", x) for x in items]


def _normal(look: str, raw: Any, region: str | None) -> Any:
    if look == "emails":
        return EmailAddress.parse(raw, "customer.emails").value
    if look == "phones":
        return PhoneNumber.parse(raw, region, "customer.phones").e164
    return raw


def _prepend(first: list[Any], rest: Iterator[Any]) -> Iterator[Any]:
    yield from first
    yield from rest
