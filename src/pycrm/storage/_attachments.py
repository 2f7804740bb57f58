"""``s.attachments``: files kept with a record -- contracts, photos, voice notes (docs/attachments.md).

The metadata (:class:`~pycrm.domain.Attachment`) is a row of the store, scoped like the record's customer
and only for the kinds of record the actor may read; the content lives in the store's blob store
(:mod:`pycrm.storage._blobs`), named by its SHA-256.

* ``add(record, name, content, media_type=None)`` (or ``add(record, path)``) -- ``content`` a path or a readable
  binary stream, read in
  chunks (never whole in memory): size and SHA-256 computed on the way, the first bytes sniffed; a declared
  media type the bytes contradict, a type outside the store's allow-list or content past its size limit is a
  ValidationError naming ``media_type`` or ``content``, and nothing is written. The blob is written (temp
  name, then moved) before the metadata row; should the unit of work then roll back, the blob is left
  unreferenced and ``gc()`` removes it later -- never the other way round (no row without its content).
* ``list(record)`` / ``get(id)`` / ``find(where)`` -- metadata; ``open(id)`` -- the content as a readable
  binary stream (close it). An attachment outside the actor's scope is "not there" for all of them.
* ``delete(id)`` -- removes the row; the content goes once the unit of work commits, unless another
  attachment holds the same content.
* ``gc(older_than=...)`` -- removes blobs no attachment references and leftover temporary files older than
  ``older_than`` (default one hour: an upload still on its way to commit is not collected); system actor or
  one that reads everything.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import mimetypes
import os
from collections.abc import Iterable
from typing import IO, Any

import attrs

from pycrm.domain import Attachment, Customer, Entity, utcnow
from pycrm.errors import FieldError, StorageError, ValidationError, quote
from pycrm.storage._blobs import BlobStore, Stored, TooLarge, remove_blob
from pycrm.storage._repository import Repository

__all__ = ["DEFAULT_MEDIA_TYPES", "AttachmentLimits", "AttachmentRepository", "sniff"]

#: Media types accepted unless the store says otherwise (``AttachmentLimits(media_types=...)``).
DEFAULT_MEDIA_TYPES: frozenset[str] = frozenset(
    {
        "application/pdf",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/heic",
        "audio/mpeg",
        "audio/wav",
        "audio/ogg",
        "audio/mp4",
        "audio/webm",
        "video/mp4",
        "text/plain",
        "text/csv",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.oasis.opendocument.text",
    }
)
#: Other names of the same types (declared or guessed), folded to the name above.
_ALIASES = {
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/mp3": "audio/mpeg",
    "audio/x-m4a": "audio/mp4",
    "audio/m4a": "audio/mp4",
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "application/ogg": "audio/ogg",
}
_SNIFF_BYTES = 64


def _bad(field: str, code: str, message: str) -> ValidationError:
    return ValidationError([FieldError(field, code, message)])


def _fold(media_type: str) -> str:
    media_type = media_type.split(";", 1)[0].strip().lower()
    return _ALIASES.get(media_type, media_type)


def sniff(head: bytes) -> frozenset[str] | None:
    """The media types the first bytes of a file allow, for the common types (png, jpeg, gif, webp, pdf, wav,
    mp3, ogg, m4a/mp4); None when they say nothing.

    >>> sorted(sniff(b"%PDF-1.7 ..."))
    ['application/pdf']
    >>> sniff(b"plain words") is None
    True
    """
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return frozenset({"image/png"})
    if head.startswith(b"\xff\xd8\xff"):
        return frozenset({"image/jpeg"})
    if head.startswith((b"GIF87a", b"GIF89a")):
        return frozenset({"image/gif"})
    if head.startswith(b"%PDF-"):
        return frozenset({"application/pdf"})
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return frozenset({"audio/wav"})
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return frozenset({"image/webp"})
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] in (0xFB, 0xF3, 0xF2)):
        return frozenset({"audio/mpeg"})
    if head.startswith(b"OggS"):
        return frozenset({"audio/ogg", "video/ogg"})
    if head[4:8] == b"ftyp":
        return frozenset({"audio/mp4", "video/mp4"}) if head[8:11] != b"hei" else frozenset({"image/heic"})
    return None


def _media_types(value: Any) -> frozenset[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Iterable) or not all(isinstance(t, str) and "/" in t for t in items):
        raise ValidationError(
            [FieldError("media_types", "type", f"expected media types such as 'image/png', got {quote(value)}")]
        )
    return frozenset(_fold(t) for t in items)


def _max_size(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _bad("max_size", "type", f"expected a whole number of bytes >= 1, got {quote(value)}")
    return value


@attrs.frozen
class AttachmentLimits:
    """What a store accepts as attachment content: at most ``max_size`` bytes (default 25 MB), of the media
    types in ``media_types`` (default :data:`DEFAULT_MEDIA_TYPES`; ``"*/*"`` in it accepts any type)."""

    max_size: int = attrs.field(default=25 * 1024 * 1024, converter=_max_size)
    media_types: frozenset[str] = attrs.field(default=DEFAULT_MEDIA_TYPES, converter=_media_types)


class _Replay(io.RawIOBase):
    """The bytes already read (``head``), then the rest of ``stream``: sniffing without reading twice."""

    def __init__(self, head: bytes, stream: IO[bytes]):
        self._head, self._stream = head, stream

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._head:
            out, self._head = (self._head, b"") if n < 0 or n >= len(self._head) else (self._head[:n], self._head[n:])
            return out
        return self._stream.read(n)


def _customer_of(record: Entity) -> str:
    return str(record.id) if isinstance(record, Customer) else str(getattr(record, "customer_id", ""))


def _read_head(stream: IO[bytes]) -> bytes:
    head = b""
    while len(head) < _SNIFF_BYTES:
        chunk = stream.read(_SNIFF_BYTES - len(head))
        if not chunk:
            break
        if not isinstance(chunk, bytes | bytearray):
            raise _bad("content", "type", "expected a binary stream (open the file with 'rb')")
        head += bytes(chunk)
    return head


class AttachmentRepository(Repository[Attachment]):
    """The attachments of a store (see the module)."""

    def _blobs(self) -> BlobStore:
        blobs: BlobStore | None = self._s._blobs
        if blobs is None:
            raise ValidationError(
                [FieldError("blobs", "required", "this store keeps no attachment content: open it with blobs=a directory or URL")]
            )
        return blobs

    def _record(self, record: Any) -> tuple[str, Entity]:
        """(repository name, the record as the actor may read it) for an entity or a (kind, id) pair."""
        if isinstance(record, Entity) and record.entity_name() in Attachment.RECORD_KINDS and record.id is not None:
            kind, rid = record.entity_name(), record.id
        elif isinstance(record, tuple) and len(record) == 2 and record[0] in Attachment.RECORD_KINDS:
            kind, rid = record
        else:
            kinds = ", ".join(Attachment.RECORD_KINDS)
            raise _bad("record", "type", f"expected a stored record ({kinds}) or a (kind, id) pair, got {quote(record)}")
        return kind, self._s._repository(kind).get(rid)  # outside the actor's scope: NotFound, as if missing

    def add(
        self,
        record: Any,
        name: str | None = None,
        content: str | os.PathLike[str] | IO[bytes] | None = None,
        *,
        media_type: str | None = None,
    ) -> Attachment:
        """Store ``content`` (a path or a readable binary stream) as an attachment of ``record`` (see the module)."""
        self._s._check_open()
        if isinstance(record, Attachment) and name is None and content is None:
            return self._add_row(record)
        if isinstance(record, Attachment):
            raise _bad("record", "type", "s.attachments.add(record, name, content): the record the file belongs to")
        kind, target = self._record(record)
        customer_id = _customer_of(target)
        if content is None and isinstance(name, str | os.PathLike):  # add(record, path): named as the file
            content, name = name, None
        if isinstance(content, str | os.PathLike):
            path = os.fspath(content)
            if name is None:
                name = os.path.basename(path)
            try:
                with open(path, "rb") as f:
                    return self._add(kind, target, customer_id, name, f, media_type)
            except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
                raise ValidationError(
                    [FieldError("content", "not_found", f"cannot read {quote(path)}: {exc.strerror}")]
                ) from None
        if content is None or not callable(getattr(content, "read", None)):
            raise ValidationError(
                [FieldError("content", "type", f"expected a path or a readable binary stream, got {quote(content)}")]
            )
        return self._add(kind, target, customer_id, name, content, media_type)

    def _add(
        self, kind: str, target: Entity, customer_id: str, name: Any, stream: IO[bytes], media_type: str | None
    ) -> Attachment:
        limits: AttachmentLimits = self._s._attachment_limits
        probe = Attachment(customer_id, kind, str(target.id), name, media_type or "application/octet-stream", 0, "0" * 64)
        # the rights first: nothing is written for an actor that may not add it
        self._s._guard.check_write(self.kind, "create", probe, self._lookup)
        head = _read_head(stream)
        sniffed = sniff(head)
        if media_type is not None:
            declared = _fold(probe.media_type)
            if sniffed is not None and declared not in sniffed:
                raise ValidationError(
                    [
                        FieldError(
                            "media_type", "mismatch", f"declared {declared!r}, but the content is {' or '.join(sorted(sniffed))}"
                        )
                    ]
                )
        elif sniffed is not None:
            declared = sorted(sniffed)[0]
        else:
            guessed = mimetypes.guess_type(probe.name)[0]
            declared = _fold(guessed) if guessed else "application/octet-stream"
        if declared not in limits.media_types and "*/*" not in limits.media_types:
            raise ValidationError(
                [
                    FieldError(
                        "media_type", "refused", f"{declared!r} is not accepted here ({', '.join(sorted(limits.media_types))})"
                    )
                ]
            )
        try:
            stored: Stored = self._blobs().put(_Replay(head, stream), max_size=limits.max_size)  # type: ignore[arg-type]
        except TooLarge:
            raise ValidationError(
                [FieldError("content", "too_large", f"more than the {limits.max_size} bytes an attachment may hold")]
            ) from None
        attachment = Attachment(
            customer_id,
            kind,
            str(target.id),
            probe.name,
            declared,
            stored.size,
            stored.sha256,
            uploaded_by=self._s.actor.id if self._s.actor is not None else None,
        )
        # should this (or the unit of work) fail, the blob stays unreferenced until gc(): never a row without content
        return super().add(attachment)

    def _add_row(self, attachment: Attachment) -> Attachment:
        """The metadata of content already in the blob store (a restore, a copy between stores): the system
        actor may add any; another actor only one whose content is there and whose record it can read."""
        if not self._s._guard.system:
            _, target = self._record((attachment.record_kind, attachment.record_id))
            if _customer_of(target) != attachment.customer_id:
                raise _bad("customer_id", "mismatch", "an attachment's customer is its record's customer")
            if not self._blobs().exists(attachment.sha256):
                raise _bad("sha256", "not_found", f"no content {attachment.sha256} in the blob store: add the file instead")
        return super().add(attachment)

    def update(self, entity: Attachment) -> Attachment:
        """Rename or retype an attachment; what ties it to its content and its record stays (a ValidationError
        naming the field otherwise): a new file is a new attachment."""
        self._s._check_open()
        if isinstance(entity, Attachment) and entity.id is not None:
            stored = self._s._stored_for(self.kind, entity.id, "update")
            if stored is not None:
                fixed = ("sha256", "size", "record_kind", "record_id", "customer_id")
                changed = [f for f in fixed if getattr(entity, f) != getattr(stored, f)]
                if changed:
                    raise ValidationError(
                        [FieldError(f, "read_only", "set when the file was added; add the new file instead") for f in changed]
                    )
        return super().update(entity)

    def list(self, record: Any) -> list[Attachment]:
        """The attachments of ``record`` (which the actor must be able to read), oldest first."""
        kind, target = self._record(record)
        return self.find({"record_kind": kind, "record_id": str(target.id)}, order_by="created_at")

    def open(self, id: str) -> IO[bytes]:
        """The content of attachment ``id`` as a readable binary stream (close it); NotFound outside the scope."""
        att = self.get(id)
        self._record((att.record_kind, att.record_id))  # the record itself must be readable too
        try:
            return self._blobs().open(att.sha256)
        except FileNotFoundError:
            raise StorageError(f"the content of attachment {id!r} ({att.sha256}) is missing from the blob store") from None

    def delete(self, id: str) -> None:
        """Delete the attachment; its content goes at commit unless another attachment holds it."""
        self._check_id(id)
        stored = self._s._stored_for(self.kind, id, "delete")
        super().delete(id)
        if stored is not None:
            self._s._after_commit(lambda: self._drop_unreferenced([stored.sha256]))

    def _erase(self, where: dict[str, Any]) -> int:
        """Delete the attachments matching ``where`` (an erasure); their content goes at commit."""
        rows = list(self.iter(where))  # the actor's erasure: those it may read (an admin's: every one)
        for row in rows:
            super().delete(str(row.id))
        hashes = sorted({r.sha256 for r in rows})
        if hashes:
            self._s._after_commit(lambda: self._drop_unreferenced(hashes))
        return len(rows)

    def _drop_unreferenced(self, hashes: Iterable[str]) -> None:
        """After a commit: remove the blobs no attachment references any more."""
        blobs = self._s._blobs
        if blobs is None:
            return
        tx = self._s._store.begin()
        try:
            wanted = list(hashes)
            used = _referenced(tx, wanted)
            for h in wanted:
                if h not in used:
                    with contextlib.suppress(OSError):  # the rows are gone already: gc() removes the content later
                        blobs.delete(h)
        finally:
            tx.rollback()

    def gc(self, *, older_than: dt.timedelta = dt.timedelta(hours=1)) -> dict[str, int]:
        """Remove blobs no attachment references, and leftover temporary files, last modified before
        ``older_than`` ago (see the module); returns ``{"removed": n, "kept": n}``."""
        from pycrm.storage._journal import require_all

        self._s._check_open()
        require_all(self._s, "collect attachment content")
        if not isinstance(older_than, dt.timedelta) or older_than < dt.timedelta(0):
            raise _bad("older_than", "type", "expected a timedelta >= 0")
        blobs = self._blobs()
        cutoff = utcnow() - older_than
        tx = self._s._unguarded("gc compares the blob store with every attachment row")
        old = [name for name, modified in blobs.list() if modified is None or modified <= cutoff]
        used = _referenced(tx, [n for n in old if len(n) == 64])
        removed = 0
        for name in old:
            if name not in used:
                remove_blob(blobs, name)
                removed += 1
        return {"removed": removed, "kept": sum(1 for _ in blobs.list())}


def _referenced(tx: Any, hashes: list[str]) -> set[str]:
    """The hashes among ``hashes`` some attachment holds: a live one, or an archived one (``unarchive`` brings
    it back with its content)."""
    from pycrm.storage._gate import archive_stream
    from pycrm.storage._where import parse_where

    used: set[str] = set()
    for start in range(0, len(hashes), CHUNK):
        part = hashes[start : start + CHUNK]
        for row in tx.iter(Attachment, parse_where(Attachment, {"sha256": {"in": part}}), 1000):
            used.add(row.sha256)
    wanted = set(hashes)
    for _, data in tx.record_list(archive_stream("attachments")):
        if isinstance(data, dict) and data.get("sha256") in wanted:
            used.add(str(data["sha256"]))
    return used


#: Hashes per ``in`` condition.
CHUNK = 500
