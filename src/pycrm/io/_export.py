"""``export_file``: records matching a ``where`` filter to CSV, XLSX or JSON Lines, streaming.

Every record goes through the session's hooks: the conditions come from ``Session._conditions(kind,
where, "export")`` (the caller's filter ANDed with the actor's scope for exporting), and each entity is
passed through ``Session._present`` (decrypted, then masked for the actor). On a store whose transaction
offers :class:`~pycrm.storage.port.RowStreams` (the SQL adapter), when the session allows raw rows
(``Session._raw_rows_ok``), column values are read straight from stored rows without building entities;
the output is the same either way. Memory stays flat: records are read in keyset-paged batches and
written one batch at a time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from typing import IO, TYPE_CHECKING, Any, cast

from pycrm._files import file_errors
from pycrm.domain import ENTITIES, User
from pycrm.domain._checks import check_count, check_iterable, check_mapping
from pycrm.errors import FieldError, ValidationError, quote
from pycrm.io._convert import flat_value, flatten
from pycrm.io._entry import check_actor, check_callback, check_file_or_stream, check_flag, check_option, check_target
from pycrm.io._formats import detect_format, open_writer, output_format
from pycrm.io._mapping import EXPORT_FIELDS, IMPORT_KINDS
from pycrm.storage.port import FileBacked, RowStreams

if TYPE_CHECKING:
    from pycrm import CRM
    from pycrm.storage import Session

__all__ = ["EXTRA_FIELDS", "export_fields", "export_file"]

#: Fields an export may name besides the default ones.
EXTRA_FIELDS = ("version", "updated_at")


def export_fields(entity: str, fields: Sequence[str] | None = None) -> tuple[str, ...]:
    """The checked list of columns to export (the default ones when ``fields`` is None)."""
    if not isinstance(entity, str) or entity not in IMPORT_KINDS:
        raise ValidationError(
            [FieldError("entity", "unknown_entity", f"cannot export {quote(entity)} (use one of: {', '.join(IMPORT_KINDS)})")]
        )
    if fields is None:
        return EXPORT_FIELDS[entity]
    if isinstance(fields, str):
        fields = [f.strip() for f in fields.split(",") if f.strip()]
    fields = list(check_iterable("fields", fields, "a list of field names"))
    allowed = (*EXPORT_FIELDS[entity], *EXTRA_FIELDS)
    errors = []
    for i, f in enumerate(fields):
        ok = isinstance(f, str) and (f in allowed or ("custom" in allowed and f.startswith("custom.") and len(f) > 7))
        if not ok:
            errors.append(
                FieldError(
                    f"fields[{i}]",
                    "unknown_field",
                    f"{ENTITIES[entity].__name__} exports have no field {quote(f)} (fields: {', '.join(allowed)})",
                )
            )
    if not errors and len(set(fields)) != len(fields):
        errors.append(FieldError("fields", "duplicate", "a field is named twice"))
    if not fields:
        errors.append(FieldError("fields", "required", "name at least one field"))
    if errors:
        raise ValidationError(errors)
    return tuple(fields)


def export_file(
    target: CRM | Session,
    path: str | os.PathLike[str] | IO[str],
    entity: str = "customers",
    *,
    where: Mapping[str, Any] | None = None,
    fields: Sequence[str] | None = None,
    format: str | None = None,
    actor: User | None = None,
    batch_size: int = 5000,
    bom: bool = False,
    raw: bool | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> int:
    """Write the ``entity`` records matching ``where`` to ``path`` (a file name, ``"-"`` or a text stream).

    ``fields`` chooses and orders the columns (default: every field an import reads back, see
    :data:`pycrm.io.EXPORT_FIELDS`; ``custom.<key>`` columns of every repository with custom fields). The format
    comes from ``format`` or the file name (CSV by default; XLSX needs a file name). A name whose extension pycrm does
    not write (``out.pdf``) or that contradicts ``format`` is refused, as is XLSX to ``"-"``: nothing is
    written. Returns the number of records.
    ``raw=False`` forces the entity path (``None``: the raw-row path where allowed).

    ``workers``: processes that read and write a large export together (this one included). A CSV or
    JSON Lines file exported from a CRM opened on an SQLite file, on the raw-row path, is split by id into
    ranges written side by side and joined in order: the file is the same. ``None`` (default) uses one
    process per CPU (at most 4) once :data:`pycrm.io._export_workers.PARALLEL_MIN_ROWS` records match;
    ``1`` keeps to this process. Elsewhere (streams, XLSX, a session handed in, other databases) one
    process writes.
    """
    check_target(target)
    out: str | IO[str] = check_file_or_stream(path)
    cols = export_fields(entity, fields)
    check_mapping("where", where)
    check_count("batch_size", batch_size)
    check_option(format, "format")
    check_actor(actor)
    check_flag("bom", bom)
    if raw is not None:
        check_flag("raw", raw)
    check_callback(progress)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValidationError([FieldError("workers", "type", f"expected a whole number >= 1, got {quote(workers)}")])
    fmt = output_format(out, format) if isinstance(out, str) else detect_format("-", format or "csv")
    if fmt == "xlsx" and not isinstance(out, str):
        raise ValidationError([FieldError("format", "binary_output", "an XLSX workbook needs a file name, not a text stream")])
    with file_errors(out if isinstance(out, str) else "output"):
        return _export(target, out, entity, cols, fmt, where, actor, batch_size, bom, raw, progress, workers)


def _export(
    target: CRM | Session,
    path: str | IO[str],
    entity: str,
    cols: tuple[str, ...],
    fmt: str,
    where: Mapping[str, Any] | None,
    actor: User | None,
    batch_size: int,
    bom: bool,
    raw: bool | None,
    progress: Callable[[int], None] | None,
    workers: int | None,
) -> int:
    from pycrm.storage import Session

    kind = ENTITIES[entity]
    with ExitStack() as stack:
        s = target if isinstance(target, Session) else stack.enter_context(target.session(actor))
        conds = s.unit.conditions(kind, where, "export")  # the caller's filter and the actor's scope
        tx = s.unit.transaction()
        json_native = fmt == "jsonl"
        writer = open_writer(path, fmt, cols, bom=bom)
        count = 0
        try:
            if raw is not False and s.unit.raw_rows_ok(kind) and isinstance(tx, RowStreams):
                if s is not target and fmt != "xlsx" and isinstance(path, (str, os.PathLike)) and os.fspath(path) != "-":
                    written = writer.file_name or os.fspath(path)  # the temporary file renamed at the end
                    done = _parallel(tx, writer, written, entity, conds, cols, fmt, batch_size, workers, progress)
                    if done is not None:
                        _record_export(s, kind, where, cols, done)
                        return done
                batches = tx.export_batches(kind, conds, cols, flat=flat_value, json_native=json_native, batch_size=batch_size)
                for columns in batches:
                    writer.write_columns(columns)
                    count += len(columns[0])
                    if progress is not None:
                        progress(count)
            else:
                flat = flatten(entity, cols, json_native)
                present = s.unit.present
                batch: list[list[Any]] = []
                for e in tx.iter(kind, conds, batch_size):
                    batch.append(flat(present(kind, e)))
                    if len(batch) >= batch_size:
                        writer.write_many(batch)
                        count += len(batch)
                        batch = []
                        if progress is not None:
                            progress(count)
                if batch:
                    writer.write_many(batch)
                    count += len(batch)
                    if progress is not None:
                        progress(count)
        except BaseException:
            writer.abort()  # the target is left as it was
            raise
        finally:
            writer.close()
        _record_export(s, kind, where, cols, count)
        return count
    raise AssertionError("unreachable")  # pragma: no cover - mypy: ExitStack may swallow exceptions


def _parallel(
    tx: RowStreams,
    writer: Any,
    path: str,
    entity: str,
    conds: list[Any],
    cols: Sequence[str],
    fmt: str,
    batch_size: int,
    workers: int | None,
    progress: Callable[[int], None] | None,
) -> int | None:
    """The export written by several processes (``_export_workers``), or None: one process writes it
    (one worker asked for, not a database file other processes may open, or too few records)."""
    from pycrm.io import _export_workers as pw

    n = pw.worker_count() if workers is None else workers
    if n < 2 or not isinstance(tx, FileBacked):
        return None
    file = tx.database_file()
    if file is None or not pw.can_start_workers():
        return None
    return pw.parallel_export(
        cast(pw.Shared, tx),
        file,
        writer,
        path,
        entity=entity,
        conds=conds,
        fields=cols,
        fmt=fmt,
        json_native=fmt == "jsonl",
        batch_size=batch_size,
        workers=n,
        minimum=pw.PARALLEL_MIN_ROWS if workers is None else 2,
        progress=progress,
    )


def _record_export(s: Any, kind: type[Any], where: Mapping[str, Any] | None, cols: Sequence[str], count: int) -> None:
    """An export is recorded in the audit trail like a write, when its session ends (a rollback keeps it: the
    rows have left): what was exported, by whom, how many rows (the filter's field names, not its values,
    which may be secrets)."""
    s.unit.event(kind, "export", None, {"fields": list(cols), "filter": sorted(where or {}), "rows": count}, lasting=True)
