"""What the time rules of ``crm.run_due`` find, in Python: the memory adapter's :class:`~pycrm.storage.port.DueQueries`
and the fallback of a store without that capability (then fed by a stream of stored entities).

Each query kind takes the time ``now`` and its parameters and gives ``(id, value)`` rows sorted by id, where
``value`` is the period the firing belongs to (see :mod:`pycrm.automation._due`):

================  ==============================  =============================================================
kind              parameters                      rows
================  ==============================  =============================================================
``task_due``      ``within`` (a timedelta)        open tasks with ``now <= due_at <= now + within``: due_at
``task_overdue``                                  open tasks with ``due_at < now``: due_at
``dormant``       ``days``                        customers whose latest order or interaction is at or before
                                                  ``now - days`` (or who have none and were created by then):
                                                  the latest activity, None for none
``stale``         ``days``, ``closed``            open deals whose last stage change (created_at without one)
                                                  is at or before ``now - days`` (``closed``: the
                                                  (pipeline, stage) pairs that are won or lost): that time
``anniversary``   ``repository``, ``field``       records whose date ``field`` (a date / datetime field or a
                                                  ``custom.<name>`` date) falls on ``now``'s month and day (the
                                                  29th of February on the 28th in common years), at least a
                                                  year before: the field's value
``open_tickets``  ``customers`` (a bool)          tickets neither resolved nor closed, created by ``now``:
                                                  ``(ticket, customer)``, the customer None unless asked for
                                                  (the service desk's SLA clocks judge them in Python)
================  ==============================  =============================================================

An adapter answers None for a kind it does not know (the caller then streams entities here).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pycrm.domain import ENTITIES, Customer, Entity, Interaction, Opportunity, Order, Task, Ticket, TicketStatus

__all__ = ["KINDS", "anniversary_days", "anniversary_of", "closed_stages", "due_rows"]

#: The query kinds this module (and every adapter offering DueQueries) answers.
KINDS = ("task_due", "task_overdue", "dormant", "stale", "anniversary", "open_tickets")

Stream = Callable[[type[Entity]], Iterable[Entity]]


def anniversary_days(now: dt.datetime) -> tuple[str, ...]:
    """The ``MM-DD`` texts whose anniversary falls on ``now``'s (UTC) date: the 29th of February is kept on
    the 28th in common years."""
    day = now.astimezone(dt.UTC).date()
    md = day.strftime("%m-%d")
    if md == "02-28" and not calendar.isleap(day.year):
        return (md, "02-29")
    return (md,)


def anniversary_of(value: Any, now: dt.datetime) -> tuple[str, int] | None:
    """``(date ISO text, years)`` when ``value`` (a date, a datetime or ISO date text) has its anniversary on
    ``now``'s date, at least one year on; None otherwise (not a date, another day, not a year old yet)."""
    if isinstance(value, dt.datetime):
        day = value.astimezone(dt.UTC).date()
    elif isinstance(value, dt.date):
        day = value
    elif isinstance(value, str) and len(value) >= 10:
        try:
            day = dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    else:
        return None
    today = now.astimezone(dt.UTC).date()
    years = today.year - day.year
    if years < 1 or day.strftime("%m-%d") not in anniversary_days(now):
        return None
    return day.isoformat(), years


def closed_stages() -> tuple[tuple[str, str], ...]:
    """(pipeline, stage) of every won or lost stage of the pipelines registered in this process: what the
    ``stale`` query takes as ``closed`` (a deal in another stage is open)."""
    from pycrm.domain._machine import _PIPELINES

    return tuple((p.name, s.name) for p in _PIPELINES.values() for s in p.stages if s.is_closed)


def _value(entity: Entity, field: str) -> Any:
    if field.startswith("custom."):
        custom = getattr(entity, "custom", None)
        return custom.get(field[7:]) if isinstance(custom, Mapping) else None
    return getattr(entity, field, None)


def due_rows(kind: str, now: dt.datetime, params: Mapping[str, Any], stream: Stream) -> list[tuple[Any, ...]] | None:
    """The rows of query ``kind`` (see the module docstring) over the entities ``stream(kind)`` gives; None for
    a kind not known here."""
    out: list[tuple[Any, ...]] = []
    if kind in ("task_due", "task_overdue"):
        until = now + params["within"] if kind == "task_due" else now
        for t in stream(Task):
            assert isinstance(t, Task)
            if t.done:
                continue
            if (kind == "task_due" and now <= t.due_at <= until) or (kind == "task_overdue" and t.due_at < now):
                out.append((t.id, t.due_at))
    elif kind == "dormant":
        cutoff = now - dt.timedelta(days=params["days"])
        last: dict[str, dt.datetime] = {}
        for activity in (Order, Interaction):
            for e in stream(activity):
                cid = e.customer_id  # type: ignore[attr-defined]
                at = e.occurred_at  # type: ignore[attr-defined]
                if cid not in last or at > last[cid]:
                    last[cid] = at
        for c in stream(Customer):
            seen = last.get(c.id)  # type: ignore[arg-type]
            if (seen is not None and seen <= cutoff) or (seen is None and c.created_at is not None and c.created_at <= cutoff):
                out.append((c.id, seen))
    elif kind == "stale":
        cutoff = now - dt.timedelta(days=params["days"])
        for o in stream(Opportunity):
            assert isinstance(o, Opportunity)
            if o.is_closed:
                continue
            since = o.stage_history[-1].at if o.stage_history else o.created_at
            if since is not None and since <= cutoff:
                out.append((o.id, since))
    elif kind == "anniversary":
        field = params["field"]
        for e in stream(ENTITIES[params["repository"]]):
            value = _value(e, field)
            if anniversary_of(value, now) is not None:
                out.append((e.id, value))
    elif kind == "open_tickets":
        done = (TicketStatus.RESOLVED, TicketStatus.CLOSED)
        found = []
        for t in stream(Ticket):
            assert isinstance(t, Ticket)
            if t.status not in done and t.created_at is not None and t.created_at <= now:
                found.append(t)
        owners: dict[str, Entity] = {}
        if params.get("customers") and found:
            wanted = {t.customer_id for t in found}
            owners = {c.id: c for c in stream(Customer) if c.id in wanted}
        out = [(t.id, (t, owners.get(t.customer_id))) for t in found]
    else:
        return None
    out.sort(key=lambda r: r[0])
    return out
