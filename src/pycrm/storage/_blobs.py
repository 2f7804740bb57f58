"""Where attachment content lives: a :class:`BlobStore`, content addressed by SHA-256.

* :class:`LocalBlobStore` -- a local directory (the default: ``pycrm.open(..., blobs="/var/lib/crm/blobs")``);
* :class:`FsspecBlobStore` -- any fsspec filesystem (S3-compatible, GCS, Azure, SFTP, ``memory://``...), with
  the ``blobs`` extra (``pip install pycrm[blobs]``): ``blobs="s3://bucket/crm"`` or ``FsspecBlobStore(url)``.

A blob is named by the SHA-256 of its content, so identical content is stored once. ``put`` streams a
readable binary file in chunks to a temporary name, hashing and counting as it goes, and moves it to its final
name only when complete: a reader never sees half a blob, and a failed upload leaves at most a temporary file
(``collect`` removes it later). Content is never held in memory whole.

>>> import io, tempfile
>>> blobs = LocalBlobStore(tempfile.mkdtemp())
>>> put = blobs.put(io.BytesIO(b"hello"), max_size=100)
>>> put.size, put.sha256[:12]
(5, '2cf24dba5fb0')
>>> with blobs.open(put.sha256) as f:
...     f.read()
b'hello'
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

import attrs

from pycrm.errors import FieldError, StorageError, ValidationError, quote

__all__ = ["CHUNK", "BlobStore", "FsspecBlobStore", "LocalBlobStore", "Stored", "blob_store"]

#: Bytes read and written at a time.
CHUNK = 1 << 16
_TMP = ".tmp-"


@attrs.frozen
class Stored:
    """What ``put`` wrote: the content's SHA-256 (hex) and size in bytes, and its first bytes (for sniffing)."""

    sha256: str
    size: int
    head: bytes


class TooLarge(Exception):
    """The content went past ``max_size`` (nothing was kept)."""


@runtime_checkable
class BlobStore(Protocol):
    """Content-addressed storage for attachment content (see the module)."""

    def put(self, stream: IO[bytes], *, max_size: int) -> Stored:
        """Stream ``stream`` in; raises :class:`TooLarge` past ``max_size`` bytes (nothing kept)."""
        ...

    def open(self, sha256: str) -> IO[bytes]:
        """The content, as a readable binary stream; FileNotFoundError when missing."""
        ...

    def exists(self, sha256: str) -> bool: ...

    def delete(self, sha256: str) -> None:
        """Remove the content (no error when missing)."""
        ...

    def list(self) -> Iterator[tuple[str, dt.datetime | None]]:
        """(name, last modified) of every blob and leftover temporary file, for ``collect``."""
        ...


@runtime_checkable
class RemovableBlobs(Protocol):
    """An optional capability of a :class:`BlobStore`: remove a blob or a leftover temporary file by the name
    ``list`` gave (a store without it has its temporary files left alone)."""

    def remove(self, name: str) -> None: ...


def _check_hash(sha256: str) -> str:
    if not isinstance(sha256, str) or len(sha256) != 64 or any(ch not in "0123456789abcdef" for ch in sha256):
        raise ValidationError([FieldError("sha256", "invalid", f"not a SHA-256: {quote(sha256)}")])
    return sha256


def _copy(stream: IO[bytes], out: IO[bytes], max_size: int) -> Stored:
    """Copy in chunks, hashing and counting; TooLarge past ``max_size``."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            break
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise ValidationError([FieldError("content", "type", "expected a binary stream (open the file with 'rb')")])
        size += len(chunk)
        if size > max_size:
            raise TooLarge(size)
        if len(head) < 64:
            head += bytes(chunk[: 64 - len(head)])
        digest.update(chunk)
        out.write(chunk)
    return Stored(digest.hexdigest(), size, head)


def _rel(sha256: str) -> str:
    """Blobs fan out by their first two hex digits (no directory grows past what filesystems like)."""
    return f"{sha256[:2]}/{sha256}"


class LocalBlobStore:
    """Blobs in a local directory, ``root/ab/abcdef...`` (created when missing)."""

    def __init__(self, root: str | os.PathLike[str]):
        if not isinstance(root, str | os.PathLike) or not str(os.fspath(root)).strip():
            raise ValidationError([FieldError("root", "type", f"expected a directory, got {quote(root)}")])
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ValidationError([FieldError("root", "not_a_directory", f"{quote(str(root))} is not a directory")]) from None

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    def _path(self, sha256: str) -> Path:
        return self.root / _rel(_check_hash(sha256))

    def put(self, stream: IO[bytes], *, max_size: int) -> Stored:
        tmp = self.root / f"{_TMP}{uuid.uuid4().hex}"
        try:
            with open(tmp, "wb") as out:
                got = _copy(stream, out, max_size)
                out.flush()
                os.fsync(out.fileno())
            final = self._path(got.sha256)
            if final.exists():  # identical content: stored once
                tmp.unlink()
            else:
                final.parent.mkdir(exist_ok=True)
                os.replace(tmp, final)  # atomic: the blob is whole or absent
            return got
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def open(self, sha256: str) -> IO[bytes]:
        return open(self._path(sha256), "rb")

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def delete(self, sha256: str) -> None:
        self._path(sha256).unlink(missing_ok=True)

    def list(self) -> Iterator[tuple[str, dt.datetime | None]]:
        for p in sorted(self.root.iterdir()):
            if p.is_file() and p.name.startswith(_TMP):
                yield p.name, dt.datetime.fromtimestamp(p.stat().st_mtime, dt.UTC)
            elif p.is_dir() and len(p.name) == 2:
                for f in sorted(p.iterdir()):
                    yield f.name, dt.datetime.fromtimestamp(f.stat().st_mtime, dt.UTC)

    def remove(self, name: str) -> None:
        """Remove a blob or a leftover temporary file by the name ``list`` gave."""
        if name.startswith(_TMP):
            (self.root / name).unlink(missing_ok=True)
        else:
            self.delete(name)


class FsspecBlobStore:
    """Blobs on an fsspec filesystem under ``url`` (``s3://bucket/prefix``, ``memory://crm``...); needs fsspec
    (the ``blobs`` extra). ``storage_options`` go to ``fsspec.core.url_to_fs`` (credentials, endpoint...)."""

    def __init__(self, url: str, **storage_options: Any):
        if not isinstance(url, str) or "://" not in url:
            raise ValidationError(
                [FieldError("url", "type", f"expected an fsspec URL such as 's3://bucket/crm', got {quote(url)}")]
            )
        try:
            from fsspec.core import url_to_fs
        except ImportError:
            raise ValidationError(
                [FieldError("blobs", "missing_extra", f"{quote(url)} needs fsspec: pip install 'pycrm[blobs]'")]
            ) from None
        self.url = url
        self.fs, root = url_to_fs(url, **storage_options)
        self.root = str(root).rstrip("/")
        self.fs.makedirs(self.root, exist_ok=True)

    def __repr__(self) -> str:
        return f"FsspecBlobStore({self.url!r})"

    def _path(self, sha256: str) -> str:
        return f"{self.root}/{_rel(_check_hash(sha256))}"

    def put(self, stream: IO[bytes], *, max_size: int) -> Stored:
        tmp = f"{self.root}/{_TMP}{uuid.uuid4().hex}"
        try:
            with self.fs.open(tmp, "wb") as out:
                got = _copy(stream, out, max_size)
            final = self._path(got.sha256)
            if self.fs.exists(final):
                self.fs.rm(tmp)
            else:
                self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
                self.fs.mv(tmp, final)  # object stores: a copy then a delete; readers see the whole blob or none
            return got
        except BaseException:
            if self.fs.exists(tmp):
                self.fs.rm(tmp)
            raise

    def open(self, sha256: str) -> IO[bytes]:
        path = self._path(sha256)
        if not self.fs.exists(path):
            raise FileNotFoundError(path)
        return self.fs.open(path, "rb")  # type: ignore[no-any-return]

    def exists(self, sha256: str) -> bool:
        return bool(self.fs.exists(self._path(sha256)))

    def delete(self, sha256: str) -> None:
        path = self._path(sha256)
        if self.fs.exists(path):
            self.fs.rm(path)

    def list(self) -> Iterator[tuple[str, dt.datetime | None]]:
        for info in self.fs.find(self.root, detail=True).values():
            name = str(info["name"]).rstrip("/").rsplit("/", 1)[-1]
            yield name, _modified(info)

    def remove(self, name: str) -> None:
        if name.startswith(_TMP):
            path = f"{self.root}/{name}"
            if self.fs.exists(path):
                self.fs.rm(path)
        else:
            self.delete(name)


def _modified(info: dict[str, Any]) -> dt.datetime | None:
    for key in ("mtime", "LastModified", "last_modified", "created"):
        v = info.get(key)
        if isinstance(v, dt.datetime):
            return v if v.tzinfo else v.replace(tzinfo=dt.UTC)
        if isinstance(v, int | float):
            return dt.datetime.fromtimestamp(v, dt.UTC)
    return None


def blob_store(value: Any) -> BlobStore | None:
    """``pycrm.open(blobs=...)`` checked: None, a BlobStore, a local path, ``file://`` URL or fsspec URL."""
    if value is None or isinstance(value, BlobStore):
        return value
    if isinstance(value, os.PathLike):
        return LocalBlobStore(value)
    if not isinstance(value, str) or not value.strip():
        raise ValidationError([FieldError("blobs", "type", f"expected a directory, a URL or a BlobStore, got {quote(value)}")])
    if value.startswith("file://"):
        return LocalBlobStore(value[len("file://") :])
    if "://" in value:
        return FsspecBlobStore(value)
    return LocalBlobStore(value)


def remove_blob(store: BlobStore, name: str) -> None:
    """Remove a blob or leftover temporary file named as ``list`` names it."""
    if isinstance(store, RemovableBlobs):
        store.remove(name)
    elif not name.startswith(_TMP):
        store.delete(name)


def copy_out(store: BlobStore, sha256: str, out: IO[bytes]) -> int:
    """Copy a blob to ``out`` in chunks; returns the bytes copied. StorageError when it is missing."""
    try:
        with store.open(sha256) as f:
            n = 0
            while chunk := f.read(CHUNK):
                out.write(chunk)
                n += len(chunk)
            return n
    except FileNotFoundError:
        raise StorageError(f"the content {sha256} is missing from the blob store") from None
