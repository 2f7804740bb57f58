"""Parallel export of a large SQLite store to a CSV or JSON Lines file (``export_file(..., workers=...)``).

For a transaction that offers both :class:`~pycrm.storage.port.RowStreams` and
:class:`~pycrm.storage.port.FileBacked` (the SQL adapter on an SQLite file pycrm opened): the exporting
process (the parent) opens its read transaction, notes the newest change-feed sequence number (every
committed change of a record moves it), counts the matching records and splits them, in id order, into
ranges of about :data:`RANGE_ROWS` (``RowStreams.id_ranges``). Worker processes are fresh interpreters
(``python -m pycrm.io._export_workers``), not forks: an SQLite connection must not cross a ``fork()``.
Each opens the file with the store's ``FileBacked.file_opener`` (sent with the job) and its own read
transaction, and checks that it sees the same sequence number, that is the same committed state as the
parent; one that does not exports nothing.

Ranges are handed out one at a time, in order, to whichever process asks first (the parent directly, the
workers over a pipe answered by a thread of the parent), so a worker that starts late or runs slowly takes
fewer. The parent writes a range it takes straight into the file while it follows on from what the file
holds, any other range into a part file in a temporary directory next to it; workers write part files.
At the end the parent appends the parts in order. The ranges of a worker that dies or fails are written by
the parent instead, so the file is byte for byte what one process writes.

Protocol (lines on the worker's standard output, answers on its standard input): the parent first sends
the job (pickled, length-prefixed); the worker says ``stale`` (and stops) or ``take``; the parent answers
with a range index or ``-1`` (none left); after writing range ``i`` of ``n`` rows the worker says
``done i n`` and asks again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, Any, Protocol

from pycrm.domain import ENTITIES
from pycrm.io._convert import flat_value
from pycrm.io._formats import Writer, open_writer
from pycrm.storage._where import Condition
from pycrm.storage.port import FileBacked, RowStreams, Transaction

__all__ = [
    "PARALLEL_MIN_ROWS",
    "RANGE_ROWS",
    "STALL_SECONDS",
    "Shared",
    "can_start_workers",
    "parallel_export",
    "worker_count",
]

_log = logging.getLogger(__name__)

#: Fewer matching records than this are exported by one process when ``workers`` is left to pycrm
#: (a worker process takes about a second to start).
PARALLEL_MIN_ROWS = 200_000
#: Records per range handed out.
RANGE_ROWS = 25_000
#: Seconds a worker may stay silent (no range asked for or reported) before it is stopped and the
#: exporting process writes its ranges.
STALL_SECONDS = 120.0


def worker_count() -> int:
    """Processes for an export when ``workers`` is left to pycrm: one per CPU this process may use, at most 4."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


class Shared(RowStreams, FileBacked, Transaction, Protocol):
    """What a parallel export reads from: a transaction with row streams, on a file other processes open."""


class _Ranges:
    """Hands out range indexes in order, to the parent and to the workers (thread-safe)."""

    def __init__(self, count: int):
        self.count = count
        self._next = 0
        self._lock = threading.Lock()
        self.closed = False

    def take(self, owner: list[int] | None = None) -> int:
        """The next range index (-1: none left), noted in ``owner`` under the same lock."""
        with self._lock:
            if self.closed or self._next >= self.count:
                return -1
            i = self._next
            self._next += 1
            if owner is not None:
                owner.append(i)
            return i

    def close(self) -> None:
        with self._lock:
            self.closed = True


class _Worker:
    """One worker process and the parent's thread that answers it."""

    #: How a worker process is started, after ``python -P`` (tests start stand-ins that fail on purpose).
    command: tuple[str, ...] = ("-m", "pycrm.io._export_workers")

    def __init__(self, job: bytes, ranges: _Ranges, log: str, expected: Sequence[int], started: list[_Worker]):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # the same pycrm as this process
        self.ranges = ranges
        self.expected = expected
        self.taken: list[int] = []
        self.done: dict[int, int] = {}
        self.stale = False
        self.last_heard = time.monotonic()
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in finish()
        try:
            # -P: the current directory does not shadow the modules this process uses
            self.proc = subprocess.Popen(
                [sys.executable, "-P", *self.command],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                env=env,
            )
        except BaseException:
            self._log.close()
            raise
        started.append(self)  # from here on the caller stops it, even if interrupted
        self._thread = threading.Thread(target=self._serve, args=(job,), daemon=True, name="pycrm-export-worker")
        self._thread.start()

    def _serve(self, job: bytes) -> None:
        proc = self.proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(struct.pack(">Q", len(job)) + job)
            proc.stdin.flush()
            for line in proc.stdout:
                self.last_heard = time.monotonic()
                word, *args = line.split()
                if word == b"take":
                    i = self.ranges.take(self.taken)
                    proc.stdin.write(b"%d\n" % i)
                    proc.stdin.flush()
                elif word == b"done":
                    i, n = int(args[0]), int(args[1])
                    with self.ranges._lock:
                        if i in self.taken and n == self.expected[i]:  # anything else: the parent writes range i
                            self.done[i] = n
                elif word == b"stale":
                    self.stale = True
        except (OSError, ValueError, IndexError):  # the worker went away or wrote nonsense: the parent takes over
            pass

    @property
    def rows(self) -> int:
        with self.ranges._lock:
            return sum(self.done.values())

    def idle(self) -> bool:
        """Whether the worker has taken no range (so, once ranges are closed, it can be stopped at once)."""
        with self.ranges._lock:
            return not self.taken

    def wait(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def log_tail(self) -> str:
        with contextlib.suppress(OSError), open(self.log_path, "rb") as f:  # written by the worker itself
            return f.read()[-2000:].decode("utf-8", "replace").strip()
        return ""  # pragma: no cover - the log is in our own temporary folder

    def finish(self) -> None:
        """Stop the process (if still running) and release its pipes and log."""
        with contextlib.suppress(OSError):
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
        self._thread.join(5)
        for f in (self.proc.stdin, self.proc.stdout, self._log):
            with contextlib.suppress(OSError):
                if f is not None:
                    f.close()


def _part(folder: str, i: int) -> str:
    return os.path.join(folder, f"part-{i:06d}")


def _write_range(
    tx: RowStreams, writer: Writer, job: dict[str, Any], i: int, progress: Callable[[int], None] | None = None
) -> int:
    """Write range ``i`` of the job to ``writer``; the number of records."""
    ends = job["ends"]
    n = 0
    for columns in tx.export_batches(
        ENTITIES[job["entity"]],
        job["conds"],
        job["fields"],
        flat=flat_value,
        json_native=job["json_native"],
        batch_size=job["batch_size"],
        after=ends[i - 1] if i else None,
        upto=ends[i],
    ):
        writer.write_columns(columns)
        n += len(columns[0])
        if progress is not None:
            progress(len(columns[0]))
    return n


def can_start_workers() -> bool:
    """Whether this interpreter can start fresh copies of itself (not a frozen or embedded application)."""
    exe = sys.executable
    return bool(exe) and not getattr(sys, "frozen", False) and os.path.basename(exe).lower().startswith("python")


def parallel_export(
    tx: Shared,
    file: str,
    writer: Writer,
    path: str,
    *,
    entity: str,
    conds: list[Condition],
    fields: Sequence[str],
    fmt: str,
    json_native: bool,
    batch_size: int,
    workers: int,
    minimum: int,
    progress: Callable[[int], None] | None,
) -> int | None:
    """Export with up to ``workers`` processes in all (this one included) from the SQLite ``file``; None,
    with nothing written, when fewer than ``minimum`` records match or the output is not a regular file
    (the caller then exports them itself)."""
    token = tx.changes_last()  # the first read of the transaction: its snapshot is fixed from here
    total: int = tx.count(ENTITIES[entity], conds)
    if total < max(minimum, 2) or not os.path.isfile(path):
        return None
    size = max(1, min(RANGE_ROWS, -(-total // (2 * workers))))
    ends = tx.id_ranges(ENTITIES[entity], conds, size, total)
    expected = [size] * (len(ends) - 1) + [total - size * (len(ends) - 1)]
    st = os.stat(file)
    job = {
        "file": file,
        "inode": (st.st_dev, st.st_ino),
        "entity": entity,
        "conds": conds,
        "fields": tuple(fields),
        "fmt": fmt,
        "json_native": json_native,
        "batch_size": batch_size,
        "ends": ends,
        "token": token,
        "open": tx.file_opener(),  # picklable: opens the same file in a worker
    }
    try:
        folder = tempfile.mkdtemp(prefix=".pycrm-export-", dir=os.path.dirname(os.path.abspath(path)))
    except OSError:
        return None
    job["folder"] = folder
    ranges = _Ranges(len(ends))
    started: list[_Worker] = []
    count = 0

    def report(n: int) -> None:
        nonlocal count
        count += n
        if progress is not None:
            progress(count + sum(w.rows for w in started))

    try:
        blob = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
        for k in range(min(workers - 1, len(ends) - 1)):
            try:
                _Worker(blob, ranges, os.path.join(folder, f"worker-{k}.log"), expected, started)
            except (OSError, ValueError, TypeError):  # no interpreter to start: fewer workers
                break
        direct = 0  # ranges [0, direct) are in the file
        while (i := ranges.take()) >= 0:
            if i == direct:
                _write_range(tx, writer, job, i, report)
                direct += 1
            else:
                _write_part(tx, job, i, report)
        ranges.close()
        for w in started:
            if w.idle():
                w.finish()
                continue
            while not w.wait(0.2):  # until it has written what it took, or has not been heard of for too long
                if progress is not None:
                    progress(count + sum(x.rows for x in started))
                if time.monotonic() - w.last_heard > STALL_SECONDS:
                    _log.warning("an export worker sent nothing for %s seconds; stopping it", STALL_SECONDS)
                    break
            w.finish()
        for w in started:  # what a worker took and did not finish (it died, failed or hung), the parent writes
            if w.stale:
                _log.warning("an export worker saw another committed state of the store; this process wrote its part")
            lost = [i for i in w.taken if i not in w.done]
            if lost:
                _log.warning(
                    "an export worker stopped before writing %d of its ranges; writing them here. Its last output: %s",
                    len(lost),
                    w.log_tail() or "(none)",
                )
            for i in lost:
                _write_part(tx, job, i, report)
        for i in range(direct, len(ends)):
            writer.append_file(_part(folder, i))
        if progress is not None:
            progress(total)
        return total
    finally:
        for w in started:
            w.finish()
        shutil.rmtree(folder, ignore_errors=True)


def _write_part(tx: RowStreams, job: dict[str, Any], i: int, report: Callable[[int], None] | None) -> int:
    part = open_writer(_part(job["folder"], i), job["fmt"], job["fields"], write_header=False)
    try:
        return _write_range(tx, part, job, i, report)
    finally:
        part.close()


# ---------------------------------------------------------------------------------------------- worker


def _worker_main(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    (size,) = struct.unpack(">Q", stdin.read(8))
    job = pickle.loads(stdin.read(size))  # written by the parent process, over a private pipe
    try:
        st = os.stat(job["file"])
    except OSError:
        st = None
    if st is None or (st.st_dev, st.st_ino) != job["inode"]:  # checked before opening: nothing else is touched
        stdout.write(b"stale\n")
        stdout.flush()
        return
    store = job["open"]()  # the store's FileBacked.file_opener
    try:
        tx = store.begin()
        try:
            file = tx.database_file() if isinstance(tx, FileBacked) else None
            st = os.stat(file) if file else None
            if st is None or (st.st_dev, st.st_ino) != job["inode"] or tx.changes_last() != job["token"]:
                stdout.write(b"stale\n")  # another file, or another committed state of it
                stdout.flush()
                return
            while True:
                stdout.write(b"take\n")
                stdout.flush()
                line = stdin.readline()
                if not line:
                    return
                i = int(line)
                if i < 0:
                    return
                n = _write_part(tx, job, i, None)
                stdout.write(b"done %d %d\n" % (i, n))
        finally:
            tx.rollback()
    finally:
        store.close()


if __name__ == "__main__":  # pragma: no cover - runs in the worker processes (tests cover it through them)
    _worker_main(sys.stdin.buffer, sys.stdout.buffer)
