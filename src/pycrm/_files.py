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
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["fresh_temp", "open_replacing", "replacing"]


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
