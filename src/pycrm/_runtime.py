"""Process-wide settings that bulk operations adjust while they run, and put back after."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["BULK_GC_THRESHOLD", "bulk_gc"]

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
