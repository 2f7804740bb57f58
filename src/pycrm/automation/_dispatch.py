"""Handlers and delivery: ``crm.on(...)`` registers, ``crm.dispatch()`` delivers the outbox's events.

Delivery is at least once, in order per record. A dispatch claims a batch of due events (a lease: no other
dispatcher takes them meanwhile), commits the claim, calls the handlers outside any transaction (a handler
may open sessions of its own and write), then records what happened in one more short transaction: events
every handler took are done; an event whose handler raised is retried later with exponential backoff (the
handlers that succeeded are remembered and not called again) and, after ``Retry.attempts`` deliveries, is
dead -- listed by ``crm.outbox.dead()`` and brought back by ``crm.outbox.replay()``. A later event of a
record whose earlier event failed waits for it. A dispatcher killed mid-batch loses nothing: its claims
lapse with their lease and the events go out again (the idempotency key ``event.key`` tells a handler it
has seen one before).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from pycrm.domain import new_id, utcnow
from pycrm.domain._checks import check_count
from pycrm.domain._events import EVENTS, CustomEvent, Event, event_from_row
from pycrm.errors import CRMError, FieldError, ValidationError, quote
from pycrm.storage.port import Outbox, Store

__all__ = ["DispatchResult", "Handler", "Handlers", "OutboxEntry", "OutboxView", "Retry", "dispatch"]

#: The longest error text kept for a failed delivery.
MAX_ERROR = 2000
_NAME = re.compile(r"[A-Za-z_][\w.:<>-]*")
_Fn = Callable[[Event], Any]


@attrs.frozen
class Retry:
    """How failed deliveries are retried: ``attempts`` deliveries in all, then the event is dead; the n-th retry
    waits ``base * 2 ** (n - 1)`` seconds, at most ``cap``."""

    attempts: int = attrs.field(default=8)
    base: float = attrs.field(default=2.0)
    cap: float = attrs.field(default=3600.0)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.attempts, int) or isinstance(self.attempts, bool) or not 1 <= self.attempts <= 100:
            raise ValidationError(
                [FieldError("attempts", "range", f"must be a whole number from 1 to 100, got {self.attempts!r}")]
            )
        for name in ("base", "cap"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or isinstance(v, bool) or not 0 <= v <= 7 * 86400:
                raise ValidationError([FieldError(name, "range", f"must be 0 to 604800 seconds, got {v!r}")])

    def delay(self, attempt: int) -> dt.timedelta:
        """The wait after the ``attempt``-th failed delivery."""
        return dt.timedelta(seconds=min(self.cap, self.base * 2 ** min(attempt - 1, 40)))


def event_types(values: Iterable[Any], field: str) -> tuple[type[Event] | str, ...]:
    """Event classes (a name of one counts as the class) and custom event names, each checked; a ValidationError
    names ``field[i]`` of a value that is neither, and ``field`` when there is none."""
    out: list[type[Event] | str] = []
    for i, t in enumerate(values):
        if isinstance(t, type) and issubclass(t, Event):
            out.append(t)
        elif isinstance(t, str) and t in EVENTS:
            out.append(EVENTS[t])
        elif isinstance(t, str):
            try:
                CustomEvent(name=t)
            except ValidationError:
                what = f"{quote(t)} is no event type nor a custom event name"
                raise ValidationError([FieldError(f"{field}[{i}]", "unknown_event", what)]) from None
            out.append(t)
        else:
            what = f"expected an Event class or an event name, got {quote(t)}"
            raise ValidationError([FieldError(f"{field}[{i}]", "type", what)])
    if not out:
        raise ValidationError([FieldError(field, "required", "name at least one event type")])
    return tuple(out)


@attrs.frozen
class Handler:
    """A registered handler: ``fn(event)`` for events of ``types`` (classes, and custom event names)."""

    name: str
    fn: Callable[[Event], Any]
    types: tuple[type[Event], ...]
    custom: frozenset[str]

    def wants(self, event: Event) -> bool:
        if isinstance(event, CustomEvent) and event.name in self.custom:
            return True
        return isinstance(event, self.types)


class Handlers:
    """The handlers of one CRM handle, in registration order (``crm.on``)."""

    def __init__(self) -> None:
        self._by_name: dict[str, Handler] = {}

    def on(
        self, *types: type[Event] | str, name: str | None = None
    ) -> Callable[[Callable[[Event], Any]], Callable[[Event], Any]]:
        """A decorator registering ``fn`` for events of ``types`` (event classes -- a base class such as
        ``Updated`` takes every subclass -- or custom event names). ``name`` identifies the handler in the
        outbox (default: the function's module and qualified name); it must stay the same across restarts
        for a retried event not to call the handlers that already took it again."""
        for i, t in enumerate(types):
            if callable(t) and not isinstance(t, type):  # crm.on(Event, fn): the decorator taken for add()
                what = "crm.on is a decorator (@crm.on(EventType)); to register a function, use crm.handlers.add(fn, EventType)"
                raise ValidationError([FieldError(f"types[{i}]", "type", what)])
        event_types(types, "types")

        def register(fn: _Fn) -> _Fn:
            self.add(fn, *types, name=name)
            return fn

        return register

    def add(self, fn: Callable[[Event], Any], *types: type[Event] | str, name: str | None = None) -> Handler:
        if not callable(fn):
            raise ValidationError([FieldError("fn", "type", f"expected a callable, got {type(fn).__name__}")])
        parsed = event_types(types, "types")
        classes = [t for t in parsed if not isinstance(t, str)]
        custom = {t for t in parsed if isinstance(t, str)}
        label = name if name is not None else f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
        if not isinstance(label, str) or not 0 < len(label) <= 200 or not _NAME.fullmatch(label):
            raise ValidationError([FieldError("name", "invalid_name", f"{quote(label, 70)} is not a handler name")])
        if label in self._by_name:
            raise ValidationError([FieldError("name", "duplicate", f"a handler named {label!r} is registered; pass name=")])
        handler = Handler(label, fn, tuple(classes), frozenset(custom))
        self._by_name[label] = handler
        return handler

    def remove(self, name: str) -> None:
        if self._by_name.pop(name, None) is None:
            raise ValidationError([FieldError("name", "not_found", f"no handler named {quote(name)}")])

    def __iter__(self) -> Any:
        return iter(list(self._by_name.values()))

    def __len__(self) -> int:
        return len(self._by_name)

    def matching(self, event: Event) -> list[Handler]:
        return [h for h in self._by_name.values() if h.wants(event)]


@attrs.frozen
class DispatchResult:
    """What one ``dispatch`` did: events ``delivered`` (done), ``retrying`` (failed, to be retried), ``dead``
    (failed for the last time), ``calls`` of handlers, ``failures`` (handler failures)."""

    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    calls: int = 0
    failures: int = 0


@attrs.frozen
class OutboxEntry:
    """An event in the outbox with its delivery state."""

    event: Event | None
    seq: int
    key: str
    name: str
    state: str
    attempts: int
    next_at: dt.datetime
    delivered: tuple[str, ...]
    error: str | None
    done_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> OutboxEntry:
        try:
            event: Event | None = event_from_row(row)
        except CRMError:
            event = None
        return cls(
            event,
            int(row["seq"]),
            str(row["key"]),
            event.name if event is not None else str(row["event"]),
            str(row["state"]),
            int(row["attempts"]),
            row["next_at"],
            tuple(row.get("delivered") or ()),
            row.get("error"),
            row.get("done_at"),
        )


def _outbox(tx: Any) -> Outbox:
    if not isinstance(tx, Outbox):
        raise CRMError(f"this store ({type(tx).__name__}) keeps no outbox")
    return tx


def _in_tx(store: Store, fn: Callable[[Outbox], Any]) -> Any:
    tx = store.begin()
    try:
        out = fn(_outbox(tx))
        tx.commit()
    except BaseException:
        tx.rollback()
        raise
    return out


def _error(handler: str, exc: BaseException) -> str:
    text = f"{handler}: {type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


def dispatch(
    store: Store,
    handlers: Handlers,
    *,
    now: dt.datetime | None = None,
    limit: int | None = None,
    batch: int = 500,
    lease: float = 300.0,
    retry: Retry | None = None,
) -> DispatchResult:
    """Deliver the due events of ``store``'s outbox to ``handlers`` (see the module docstring); ``crm.dispatch``.

    ``now``: the time deliveries happen at (default: the clock, read per batch); ``limit``: at most this many
    events (default: until none is due); ``batch``: events claimed at a time; ``lease``: seconds a claim
    holds (a batch must be delivered within it, or another dispatcher may deliver its events again)."""
    if not isinstance(store, Store):
        raise ValidationError([FieldError("store", "type", f"expected a pycrm store, got {type(store).__name__}")])
    if not isinstance(handlers, Handlers):
        raise ValidationError([FieldError("handlers", "type", f"expected Handlers, got {type(handlers).__name__}")])
    if retry is not None and not isinstance(retry, Retry):
        raise ValidationError([FieldError("retry", "type", f"expected a Retry, got {type(retry).__name__}")])
    check_count("batch", batch)
    if limit is not None:
        check_count("limit", limit)
    if not isinstance(lease, int | float) or isinstance(lease, bool) or not 1 <= lease <= 86400:
        raise ValidationError([FieldError("lease", "range", f"must be 1 to 86400 seconds, got {lease!r}")])
    if now is not None and (not isinstance(now, dt.datetime) or now.tzinfo is None):
        raise ValidationError([FieldError("now", "invalid_datetime", "expected an aware datetime")])
    retry = retry or Retry()
    owner = new_id()
    delivered = retrying = dead = calls = failures = 0
    left = limit
    while left is None or left > 0:
        at = now or utcnow()
        size = min(batch, left) if left is not None else batch
        until = at + dt.timedelta(seconds=lease)

        def claim(ob: Outbox, at: dt.datetime = at, until: dt.datetime = until, size: int = size) -> list[dict[str, Any]]:
            return ob.outbox_claim(owner, at, until, size)

        rows: list[dict[str, Any]] = _in_tx(store, claim)
        if not rows:
            break
        settled: list[dict[str, Any]] = []
        failed_records: set[tuple[Any, Any]] = set()
        for row in rows:
            record = (row["entity"], row["entity_id"]) if row["entity_id"] is not None else None
            state = {
                "seq": row["seq"],
                "state": "pending",
                "attempts": row["attempts"],
                "next_at": row["next_at"],
                "delivered": list(row.get("delivered") or ()),
                "error": row.get("error"),
                "done_at": None,
            }
            settled.append(state)
            if record is not None and record in failed_records:
                continue  # an earlier event of its record failed in this batch: it waits, untouched
            errors: list[str] = []
            try:
                event = event_from_row(row)
            except CRMError as exc:
                event = None
                errors.append(_error("pycrm", exc))
                state["attempts"] = retry.attempts - 1  # cannot be read: it will not be readable later either
            if event is not None:
                for h in handlers.matching(event):
                    if h.name in state["delivered"]:
                        continue
                    calls += 1
                    try:
                        h.fn(event)
                    except Exception as exc:  # a handler's failure is recorded, never lost nor fatal
                        failures += 1
                        errors.append(_error(h.name, exc))
                    else:
                        state["delivered"].append(h.name)
            if not errors:
                state.update(state="done", done_at=utcnow(), error=None)
                delivered += 1
                continue
            state["attempts"] += 1
            state["error"] = "; ".join(errors)[:MAX_ERROR]
            if record is not None:
                failed_records.add(record)
            if state["attempts"] >= retry.attempts:
                state["state"] = "dead"
                dead += 1
            else:
                state["next_at"] = at + retry.delay(state["attempts"])
                retrying += 1

        def settle(ob: Outbox, settled: list[dict[str, Any]] = settled) -> int:
            return ob.outbox_settle(owner, settled)

        _in_tx(store, settle)
        if left is not None:
            left -= len(rows)
    return DispatchResult(delivered, retrying, dead, calls, failures)


class OutboxView:
    """``crm.outbox``: what is in the outbox, and dead events brought back (the system's view)."""

    def __init__(self, store: Store):
        self._store = store

    def counts(self) -> dict[str, int]:
        """Events by state: ``{"pending": n, "done": n, "dead": n}``."""
        return _in_tx(self._store, lambda ob: ob.outbox_counts())  # type: ignore[no-any-return]

    def entries(self, state: str | None = None, *, after: int = 0, limit: int = 1000) -> list[OutboxEntry]:
        """Events with ``seq > after`` (in ``state``: pending, done or dead; None for all), oldest first."""
        if state is not None and state not in ("pending", "done", "dead"):
            raise ValidationError([FieldError("state", "invalid_choice", f"{quote(state)} is not pending, done or dead")])
        check_count("after", after, 0)
        check_count("limit", limit)
        rows = _in_tx(self._store, lambda ob: ob.outbox_list(state, after, limit))
        return [OutboxEntry.from_row(r) for r in rows]

    def dead(self, limit: int = 1000) -> list[OutboxEntry]:
        """The dead-letter list: events whose handlers failed ``Retry.attempts`` times, with the last error."""
        return self.entries("dead", limit=limit)

    def replay(self, seqs: Iterable[int] | None = None, *, now: dt.datetime | None = None) -> int:
        """Dead events (``seqs``, or every one) back to pending, due at once with fresh attempts; how many.
        Handlers that took an event before are not called again for it."""
        wanted: Sequence[int] | None = None
        if seqs is not None:
            from pycrm.domain._checks import check_iterable

            wanted = list(check_iterable("seqs", seqs, "a list of outbox seq numbers"))
            for i, s in enumerate(wanted):
                check_count(f"seqs[{i}]", s)
        at = now or utcnow()

        def retry(ob: Outbox) -> int:
            return ob.outbox_retry(wanted, at)

        return _in_tx(self._store, retry)  # type: ignore[no-any-return]
