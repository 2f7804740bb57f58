"""SLA compliance: how many tickets met their first-response and resolution targets, per period and group.

Definitions (the reference semantics):

- each ticket is judged by :meth:`SlaPolicy.status <pycrm.service.SlaPolicy.status>` at ``as_of``; a ticket
  no target matches is counted in ``unmatched`` and judged on nothing else;
- a clock **met** its target when it stopped within it; it is **breached** once past it (stopped or not);
  clocks still running within their target are neither (``running`` counts them, paused ones included);
- ``*_compliance`` = met / (met + breached), None when nothing was judged;
- ``median_*_hours``: the median business time of the stopped clocks, in hours, rounded half-even to 2 places;
- tickets are grouped by the UTC date of ``created_at``; ``start`` / ``end`` are inclusive days;
- groups: ``priority``, ``category``, ``channel``, ``target`` (the name of the matching rule), ``agent``
  (``assignee_id``) and ``team`` (the agent's ``team_id``, from ``users``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from pycrm.analytics._common import (
    HOUR_US,
    as_tuple,
    check_period,
    check_range,
    entities_of,
    mean_median_us,
    micros,
    period_label,
    ratio,
    sort_key,
    within,
)
from pycrm.analytics._report import Report
from pycrm.domain import Customer, Ticket, User, utcnow
from pycrm.errors import FieldError, ValidationError
from pycrm.service._sla import SlaClock, SlaPolicy, _aware

__all__ = ["GROUPS", "SlaRow", "sla_compliance"]

GROUPS = ("priority", "category", "channel", "target", "agent", "team")


@attrs.frozen
class SlaRow:
    """SLA results of the tickets created in a period (and a group: fields not grouped by are None)."""

    period: str | None
    priority: str | None
    category: str | None
    channel: str | None
    target: str | None
    agent: str | None
    team: str | None
    tickets: int
    unmatched: int
    first_response_met: int
    first_response_breached: int
    first_response_compliance: Decimal | None
    median_first_response_hours: Decimal | None
    resolution_met: int
    resolution_breached: int
    resolution_compliance: Decimal | None
    median_resolution_hours: Decimal | None
    running: int


def _index(values: Any, kind: type, name: str) -> dict[str, Any]:
    if values is None:
        return {}
    if isinstance(values, Mapping):
        values = values.values()
    return {e.id: e for e in entities_of(values, name, kind) if e.id is not None}


def sla_compliance(
    tickets: Iterable[Any],
    policy: SlaPolicy,
    *,
    customers: Iterable[Customer] | Mapping[str, Customer] | None = None,
    users: Iterable[User] | Mapping[str, User] | None = None,
    period: str | None = "month",
    by: str | Sequence[str] = (),
    start: dt.date | dt.datetime | str | None = None,
    end: dt.date | dt.datetime | str | None = None,
    as_of: dt.datetime | None = None,
) -> Report[SlaRow]:
    """SLA compliance of ``tickets`` under ``policy`` at ``as_of`` (default: now), per period of creation and
    the groups of ``by`` (see the module docstring). ``customers`` (for targets on the customer's tier or
    segment) and ``users`` (for ``team``) are looked up by id.

    >>> from pycrm.service import SlaTarget
    >>> p = SlaPolicy([SlaTarget("all", resolution="2h")])  # Monday to Friday, 09:00-18:00 UTC
    >>> t0 = dt.datetime(2026, 12, 7, 9, tzinfo=dt.UTC)
    >>> fast, slow = Ticket("c1", "a", created_at=t0, id="a"), Ticket("c1", "b", created_at=t0, id="b")
    >>> fast.move_to("open", at=t0); fast.move_to("resolved", at=t0 + dt.timedelta(hours=1))
    >>> slow.move_to("open", at=t0); slow.move_to("resolved", at=t0 + dt.timedelta(hours=3))
    >>> r = sla_compliance([fast, slow], p, as_of=t0 + dt.timedelta(days=1))[0]
    >>> r.period, r.resolution_met, r.resolution_breached, r.resolution_compliance, r.median_resolution_hours
    ('2026-12', 1, 1, Decimal('0.5000'), Decimal('2.00'))
    """
    if not isinstance(policy, SlaPolicy):
        raise ValidationError([FieldError("policy", "type", f"expected an SlaPolicy, got {type(policy).__name__}")])
    period = check_period(period)
    groups = as_tuple(by, GROUPS)
    lo, hi = check_range(start, end)
    now = _aware(as_of, "as_of") if as_of is not None else utcnow()
    owners = _index(customers, Customer, "customers")
    staff = _index(users, User, "users")
    acc: dict[tuple[str | None, str | None, str | None, str | None, str | None, str | None, str | None], list[Any]] = {}
    for t in entities_of(tickets, "tickets", Ticket):
        if t.created_at is None:
            continue
        created = _aware(t.created_at, "created_at")
        if not within(created.date(), lo, hi):
            continue
        customer = owners.get(t.customer_id)
        target = policy.find(t, customer)
        agent = t.assignee_id
        user = staff.get(agent) if agent is not None else None
        values: dict[str, str | None] = {
            "priority": t.priority.value,
            "category": t.category,
            "channel": t.channel,
            "target": None if target is None else target.name,
            "agent": agent,
            "team": None if user is None else user.team_id,
        }
        g = {k: (v if k in groups else None) for k, v in values.items()}
        key = (
            period_label(created.date(), period),
            g["priority"],
            g["category"],
            g["channel"],
            g["target"],
            g["agent"],
            g["team"],
        )
        a = acc.setdefault(key, [0, 0, [0, 0, []], [0, 0, []], 0])
        a[0] += 1
        if target is None:
            a[1] += 1
            continue
        status = policy.status(t, customer=customer, as_of=now)
        running = False
        for slot, clock in ((2, status.first_response), (3, status.resolution)):
            running |= _count(a[slot], clock)
        a[4] += running
    rows = []
    for group in sorted(acc, key=lambda k: tuple(sort_key(v) for v in k)):
        n, unmatched, fr, res, running = acc[group]
        rows.append(
            SlaRow(
                *group,
                n,
                unmatched,
                fr[0],
                fr[1],
                ratio(fr[0], fr[0] + fr[1]),
                mean_median_us(fr[2], HOUR_US)[1],
                res[0],
                res[1],
                ratio(res[0], res[0] + res[1]),
                mean_median_us(res[2], HOUR_US)[1],
                running,
            )
        )
    return Report(SlaRow, rows, title="SLA compliance", x="period", y=("resolution_compliance", "first_response_compliance"))


def _count(slot: list[Any], clock: SlaClock | None) -> bool:
    """Counts ``clock`` into ``[met, breached, stopped elapsed us]``; True when it still runs within its target."""
    if clock is None:
        return False
    if clock.stopped:
        slot[2].append(micros(clock.elapsed))
    if clock.state == "met":
        slot[0] += 1
    elif clock.state == "breached":
        slot[1] += 1
    else:
        return True
    return False
