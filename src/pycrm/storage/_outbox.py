"""What every adapter's outbox (:class:`~pycrm.storage.port.Outbox`) shares: which pending events a claim takes.

Events of one record go out in order: an event is claimed only when no earlier event of its record is still
pending and unclaimable (waiting for its next attempt, or claimed by another dispatcher). Adapters read the
pending events by ``seq`` in pages and hand each page to :class:`Picker`, which remembers the records it saw
blocked across pages.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MAX_SCAN", "STATES", "Picker", "erased_custom"]

#: An outbox row's states.
STATES = ("pending", "done", "dead")
#: How many pending events one claim looks at, at most, per event it may take (rows waiting for a retry
#: at the head of the outbox cannot make a claim read the whole outbox).
MAX_SCAN = 20


class Picker:
    """Chooses the events one claim takes, page by page of pending rows in ``seq`` order."""

    def __init__(self, now: dt.datetime, limit: int):
        self.now = now
        self.limit = limit
        self.taken: list[int] = []
        self.scanned = 0
        self._blocked: set[tuple[Any, Any]] = set()

    @property
    def done(self) -> bool:
        return len(self.taken) >= self.limit or self.scanned >= self.limit * MAX_SCAN

    def page(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Rows with ``seq``, ``entity``, ``entity_id``, ``next_at``, ``claimed_until`` (aware datetimes or None)."""
        now = self.now
        for r in rows:
            if self.done:
                return
            self.scanned += 1
            record = (r["entity"], r["entity_id"]) if r["entity_id"] is not None else None
            if record is not None and record in self._blocked:
                continue
            until = r["claimed_until"]
            ready = r["next_at"] <= now and (until is None or until <= now)
            if ready:
                self.taken.append(int(r["seq"]))
            elif record is not None:
                self._blocked.add(record)


def erased_custom(data: object) -> dict[str, object] | None:
    """A custom event's stored data with its payload erased (its name kept); None when there is nothing to erase."""
    if not isinstance(data, dict) or data.get("data") in ({}, None):
        return None
    return {"name": data.get("name"), "data": {}}
