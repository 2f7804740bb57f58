"""Process-wide settings that bulk operations adjust while they run, and put back after."""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["BULK_GC_THRESHOLD", "bulk_gc", "die_with_parent"]

#: The garbage collector's thresholds while bulk work runs (Python's defaults are 700, 10, 10).
BULK_GC_THRESHOLD = (50_000, 20, 100)

_lock = threading.Lock()
_holders = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def bulk_gc() -> Iterator[None]:
    """Run the cyclic garbage collector less often inside the block.

    Bulk work, such as an import of 100,000 rows, makes millions of short-lived objects, and reference
    counting frees them. With the default thresholds a collection starts every 700 allocations, and the
    older generations are scanned again and again with every long-lived object of the process (the
    application's own, SQLAlchemy's). That was a quarter of the time of an import's writing process.
    Inside the block a collection starts every 50,000 allocations.

    The setting is the process's. Blocks in several threads share it, and the thresholds found before the
    first block are put back when the last one ends, unless something else changed them meanwhile. Nothing
    is changed where collection is already rarer, or off (``gc.disable()`` or a threshold of 0).
    """
    global _holders, _saved
    with _lock:
        if _holders == 0:
            found = gc.get_threshold()
            if gc.isenabled() and 0 < found[0] < BULK_GC_THRESHOLD[0]:
                _saved = found
                gc.set_threshold(*BULK_GC_THRESHOLD)
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                if _saved is not None and gc.get_threshold() == BULK_GC_THRESHOLD:
                    gc.set_threshold(*_saved)
                _saved = None


#: How often a worker process looks whether the process that started it is still there, in seconds.
PARENT_CHECK = 0.5


def die_with_parent(parent: int | None = None) -> threading.Thread:
    """In a worker process: end this process as soon as its parent is gone (killed, say), instead of
    living on as an orphan that holds the store's files open. A daemon thread compares ``os.getppid()``
    with ``parent`` (the parent now, by default) every :data:`PARENT_CHECK` seconds; the worker's own
    work is not interrupted otherwise."""
    expected = os.getppid() if parent is None else parent

    def watch() -> None:
        while os.getppid() == expected:
            time.sleep(PARENT_CHECK)
        os._exit(70)  # EX_SOFTWARE: nobody is left to read the exit status anyway

    thread = threading.Thread(target=watch, daemon=True, name="pycrm-parent-watch")
    thread.start()
    return thread
