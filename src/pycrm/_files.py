"""Writing a file a user names (a backup, an export, scores, a demo store): all or nothing, and never
through a planted link.

Every such file is written by :func:`replacing`: the content goes to a fresh temporary file beside the
target, created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` under a random name (``tempfile.mkstemp``), so a
file or symbolic link someone planted at ``FILE.part`` or any other name is never opened, followed or
overwritten; only when the content is complete (and flushed to disk) is it renamed over the target, in
one step. A failed write leaves the target as it was and removes the temporary file. The rename also
replaces a symbolic link standing at the target itself rather than writing through it.

The new file gets the mode of the file it replaces, or ``0600`` (owner only) when there was none: these
files hold customers' personal data.

>>> import os, tempfile
>>> folder = tempfile.mkdtemp()
>>> target = os.path.join(folder, "out.txt")
>>> os.symlink(os.path.join(folder, "elsewhere"), target + ".part")  # a planted link is ignored
>>> with open_replacing(target, "w", encoding="utf-8") as f:
...     _ = f.write("hello")
>>> open(target, encoding="utf-8").read(), os.path.exists(os.path.join(folder, "elsewhere"))
('hello', False)
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from pycrm.errors import CRMError, FieldError, StorageError, ValidationError

__all__ = ["STORAGE_ERRNOS", "check_csv_name", "file_errors", "file_failure", "fresh_temp", "open_replacing", "replacing"]

#: ``errno`` values of a file that failed for reasons of the machine, not of what was asked: what each means.
STORAGE_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the file is too large for the file system",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied (a read-only file or folder)",
    errno.EPERM: "permission denied (a read-only file or folder)",
    errno.EIO: "an I/O error",
}


def check_csv_name(path: str | os.PathLike[str], field: str = "-o") -> None:
    """Refuse an output file for CSV text whose extension says otherwise (``scores.xlsx``, ``out.pdf``):
    only ``.csv``, ``.txt`` or no extension. Raised before anything is written."""
    name = os.fspath(path)
    ext = os.path.splitext(name)[1].lower()
    if ext not in ("", ".csv", ".txt"):
        raise ValidationError(
            [FieldError(field, "bad_extension", f"{name}: this command writes CSV text, not {ext}; name the file .csv")]
        )


def file_failure(exc: OSError, path: str | os.PathLike[str], action: str = "write") -> CRMError:
    """The pycrm error for ``exc``, met while trying to ``action`` the file ``path`` (the name the caller
    gave, not a temporary one): a :class:`StorageError` when the machine failed (a full disk, a read-only
    file or folder, an I/O error), else a ValidationError naming the file (no such folder, a folder given
    for a file, a name too long)."""
    name = os.fspath(path)
    reason = exc.strerror or str(exc) or type(exc).__name__
    problem = STORAGE_ERRNOS.get(exc.errno or 0)
    if problem is not None:
        tail = "; nothing was written under that name" if action == "write" else ""
        return StorageError(f"{name}: {problem} ({reason}){tail}")
    return ValidationError([FieldError(name, "bad_file", reason)])


@contextlib.contextmanager
def file_errors(path: str | os.PathLike[str], action: str = "write") -> Iterator[None]:
    """Turn an OSError raised inside the block into :func:`file_failure` naming ``path``. A broken pipe (the
    reader of standard output left) is left as it is: the command line stays quiet about it."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise file_failure(exc, path, action) from exc


@contextlib.contextmanager
def fresh_temp(folder: str | os.PathLike[str], name: str = "pycrm") -> Iterator[Path]:
    """The path of a new, empty file in ``folder`` that no one else created (``O_EXCL``, random name,
    mode 0600); removed afterwards whatever happens. An OSError names ``folder/name``, not the random name."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=os.fspath(folder))
    except OSError as exc:  # e.g. no such directory: say which file could not be written
        raise OSError(exc.errno, exc.strerror, os.path.join(os.fspath(folder), name)) from None
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def replacing(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary file beside ``target`` to write; when the block ends without an exception
    it is flushed to disk and renamed over ``target``, otherwise removed (``target`` is left as it was)."""
    final = Path(os.fspath(target))
    folder = final.parent
    with fresh_temp(folder, final.name) as tmp:
        try:
            st = os.stat(final, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISREG(st.st_mode):
            os.chmod(tmp, stat.S_IMODE(st.st_mode))  # keep the replaced file's permissions
        yield tmp
        fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        with contextlib.suppress(OSError):  # make the rename itself durable where the platform allows
            dfd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)


@contextlib.contextmanager
def open_replacing(target: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """:func:`replacing`, with the temporary file opened for writing (``mode`` ``"w"`` or ``"wb"``, and the
    keyword arguments of ``open``), reopened with ``O_NOFOLLOW`` so a link swapped in is refused."""
    with replacing(target) as tmp, open(tmp, mode, opener=_no_follow, **kwargs) as f:
        yield f


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), 0o600)
