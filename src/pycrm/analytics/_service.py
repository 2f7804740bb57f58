"""Service reports over tickets: counts by status and priority, response and resolution times, SLA breaches;
and over satisfaction surveys: CSAT and NPS (:func:`satisfaction`).

Definitions (the reference semantics):

- **first-response time** = ``first_response_at − created_at`` (the ticket's first move to ``open``);
- **resolution time** = ``resolved_at − created_at`` (the last resolution, after any reopening);
- both in hours, mean and median rounded half-even to 2 places, over the tickets that have them;
- **SLA breach**: the ticket's due time ``Ticket.sla_due_at`` (``created_at`` + ``SLA_HOURS[priority]``)
  passed before it was resolved (``resolved_at``, else ``closed_at``), or, while unresolved, before
  ``as_of``; exactly ``Ticket.is_breached(as_of)``. Tickets without ``created_at`` never breach.
- Tickets are grouped by the UTC date of ``created_at`` (period ``None`` without one); ``start`` and
  ``end`` are inclusive days.
- **Satisfaction** (surveys of one kind, grouped by the UTC date of ``sent_at``): ``response_rate`` =
  answered / sent (4 places); ``mean_score`` (2 places); CSAT: ``csat_pct`` = 100 x answered scoring 4
  or 5 / answered; NPS: promoters score 9-10, passives 7-8, detractors 0-6 and ``nps`` = % promoters -
  % detractors (-100..100); percentages rounded half-even to 2 places from the exact fractions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from pycrm.analytics._common import (
    HOUR_US,
    _round_ratio,
    as_tuple,
    aware,
    bounded_day,
    check_period,
    check_range,
    entities_of,
    mean_median_us,
    micros,
    opt_aware,
    period_label,
    ratio,
    report_day,
    sort_key,
    within,
)
from pycrm.analytics._report import Report
from pycrm.domain import SLA_HOURS, Survey, Ticket, TicketPriority, TicketStatus, utcnow
from pycrm.errors import FieldError, ValidationError, quote

__all__ = [
    "SATISFACTION_GROUPS",
    "TICKET_GROUPS",
    "SatisfactionRow",
    "ServiceTimeRow",
    "TicketCountRow",
    "satisfaction",
    "satisfaction_report",
    "service_times",
    "ticket_summary",
]

_STATUS_ORDER = {s.value: k for k, s in enumerate(TicketStatus)}
_PRIORITY_ORDER = {p.value: k for k, p in enumerate(reversed(TicketPriority))}  # urgent first
_CHANNEL_ORDER = {c: k for k, c in enumerate(Ticket.CHANNELS)}
#: What :func:`ticket_summary` may group by.
TICKET_GROUPS = ("status", "priority", "category", "channel")


def _enum(kind: Any, value: Any, field: str) -> str:
    try:
        return str(kind(value).value)
    except ValueError:
        raise ValidationError(
            [FieldError(field, "invalid_choice", f"{quote(value)} is not one of {', '.join(m.value for m in kind)}")]
        ) from None


@attrs.frozen
class TicketCountRow:
    """How many tickets have a status, priority, category and/or channel (fields not grouped by are ``None``;
    grouped by category or channel, the tickets without one are a group of their own, shown as ``None``)."""

    status: str | None
    priority: str | None
    tickets: int
    category: str | None = None
    channel: str | None = None


_Key = tuple[str | None, str | None, str | None, str | None]  # status, priority, category, channel


def ticket_groups(by: Any) -> tuple[str, ...]:
    """``by`` of :func:`ticket_summary` checked: some of :data:`TICKET_GROUPS`."""
    groups = as_tuple(by, TICKET_GROUPS)
    if not groups:
        raise ValidationError([FieldError("by", "required", f"group by some of {', '.join(TICKET_GROUPS)}")])
    return groups


def ticket_count_report(counts: Mapping[_Key, int], groups: tuple[str, ...]) -> Report[TicketCountRow]:
    """The report of counts per (status, priority, category, channel) key: statuses in lifecycle order,
    priorities urgent first, categories by path (none last), channels in :attr:`Ticket.CHANNELS` order."""

    def order(kv: tuple[_Key, int]) -> tuple[Any, ...]:
        status, priority, category, channel = kv[0]
        return (
            _STATUS_ORDER.get(status or "", -1),
            _PRIORITY_ORDER.get(priority or "", -1),
            (category is None, category or ""),
            _CHANNEL_ORDER.get(channel or "", len(_CHANNEL_ORDER)),
        )

    rows = [TicketCountRow(k[0], k[1], v, category=k[2], channel=k[3]) for k, v in sorted(counts.items(), key=order)]
    x = next(g for g in TICKET_GROUPS if g in groups)
    return Report(TicketCountRow, rows, title="Tickets by " + " and ".join(groups), x=x, y="tickets")


def ticket_summary(
    tickets: Iterable[Any],
    *,
    by: str | Sequence[str] = "status",
    start: dt.date | dt.datetime | str | None = None,
    end: dt.date | dt.datetime | str | None = None,
) -> Report[TicketCountRow]:
    """Tickets counted by ``status``, ``priority``, ``category`` (the whole path), ``channel`` or several
    (``by=("status", "priority")``).

    Only groups that occur are listed, statuses in lifecycle order, priorities urgent first, categories by
    path (tickets without one last) and channels in :attr:`Ticket.CHANNELS` order.
    ``start``/``end`` keep tickets created in that range.

    >>> from pycrm.domain import Ticket
    >>> ts = [Ticket("c1", "a"), Ticket("c1", "b", priority="urgent"), Ticket("c2", "c", priority="urgent")]
    >>> ts[0].move_to("open")
    >>> for r in ticket_summary(ts, by="priority"):
    ...     print(r.priority, r.tickets)
    urgent 2
    normal 1
    >>> [(r.status, r.tickets) for r in ticket_summary(ts)]
    [('new', 2), ('open', 1)]
    >>> ts[0].category, ts[1].category = "Hardware/Printer", "Hardware"
    >>> [(r.category, r.tickets) for r in ticket_summary(ts, by="category")]
    [('Hardware', 1), ('Hardware/Printer', 1), (None, 1)]
    """
    groups = ticket_groups(by)
    lo, hi = check_range(start, end)
    counts: dict[_Key, int] = {}
    for i, t in enumerate(entities_of(tickets, "tickets", Ticket)):
        where = f"tickets[{i}]"
        if lo is not None or hi is not None:
            created = opt_aware(t.created_at, f"{where}.created_at")
            if created is None or not within(created.date(), lo, hi):
                continue
        key = (
            _enum(TicketStatus, t.status, f"{where}.status") if "status" in groups else None,
            _enum(TicketPriority, t.priority, f"{where}.priority") if "priority" in groups else None,
            t.category if "category" in groups else None,
            t.channel if "channel" in groups else None,
        )
        counts[key] = counts.get(key, 0) + 1
    return ticket_count_report(counts, groups)


@attrs.frozen
class ServiceTimeRow:
    """Response and resolution times (hours) and SLA breaches of the tickets created in a period."""

    period: str | None
    priority: str | None
    tickets: int
    responded: int
    mean_response_hours: Decimal | None
    median_response_hours: Decimal | None
    resolved: int
    mean_resolution_hours: Decimal | None
    median_resolution_hours: Decimal | None
    breached: int
    breach_rate: Decimal | None


def service_times(
    tickets: Iterable[Any],
    *,
    period: str | None = "month",
    by: str | Sequence[str] = (),
    start: dt.date | dt.datetime | str | None = None,
    end: dt.date | dt.datetime | str | None = None,
    as_of: dt.datetime | dt.date | str | None = None,
) -> Report[ServiceTimeRow]:
    """First-response and resolution times and SLA breaches per period of creation (``by="priority"`` splits).

    ``as_of`` (default: now) judges tickets still unresolved; a date means the end of that day (UTC).
    ``breach_rate`` = breached / tickets.

    >>> from pycrm.domain import Ticket
    >>> t0 = dt.datetime(2024, 5, 6, 9, tzinfo=dt.UTC)
    >>> a = Ticket("c1", "a", priority="urgent", created_at=t0)
    >>> a.move_to("open", at=t0 + dt.timedelta(hours=1)); a.move_to("resolved", at=t0 + dt.timedelta(hours=6))
    >>> b = Ticket("c1", "b", priority="high", created_at=t0)
    >>> b.move_to("open", at=t0 + dt.timedelta(hours=2)); b.move_to("resolved", at=t0 + dt.timedelta(hours=10))
    >>> r = service_times([a, b], as_of=dt.date(2024, 5, 31))[0]
    >>> r.period, r.mean_response_hours, r.median_resolution_hours, r.breached, r.breach_rate
    ('2024-05', Decimal('1.50'), Decimal('8.00'), 1, Decimal('0.5000'))
    """
    period = check_period(period)
    groups = as_tuple(by, ("priority",))
    lo, hi = check_range(start, end)
    now = _as_of(as_of)
    acc: dict[tuple[str | None, str | None], list[Any]] = {}
    for i, t in enumerate(entities_of(tickets, "tickets", Ticket)):
        where = f"tickets[{i}]"
        created = opt_aware(t.created_at, f"{where}.created_at")
        if created is not None and not within(created.date(), lo, hi):
            continue
        priority = _enum(TicketPriority, t.priority, f"{where}.priority")
        key = (None if created is None else period_label(created.date(), period), priority if "priority" in groups else None)
        a = acc.setdefault(key, [0, [], [], 0])
        a[0] += 1
        responded = opt_aware(t.first_response_at, f"{where}.first_response_at")
        resolved = opt_aware(t.resolved_at, f"{where}.resolved_at")
        closed = opt_aware(t.closed_at, f"{where}.closed_at")
        if created is None:
            continue
        if responded is not None and responded >= created:
            a[1].append(micros(responded - created))
        if resolved is not None and resolved >= created:
            a[2].append(micros(resolved - created))
        sla = dt.timedelta(hours=SLA_HOURS[TicketPriority(priority)])
        if created <= _LAST_INSTANT - sla and (resolved or closed or now) > created + sla:  # due after 9999: never late
            a[3] += 1
    rows = []
    for key in sorted(acc, key=lambda k: (sort_key(k[0]), _PRIORITY_ORDER.get(k[1] or "", -1))):
        n, resp, reso, breached = acc[key]
        response, resolution = mean_median_us(resp, HOUR_US), mean_median_us(reso, HOUR_US)
        rows.append(ServiceTimeRow(*key, n, len(resp), *response, len(reso), *resolution, breached, ratio(breached, n)))
    y = ("mean_response_hours", "mean_resolution_hours")
    return Report(ServiceTimeRow, rows, title="Service times (hours)", x="period", y=y)


_LAST_INSTANT = dt.datetime.max.replace(tzinfo=dt.UTC)


def _as_of(value: Any) -> dt.datetime:
    if value is None:
        return utcnow()
    if isinstance(value, dt.datetime):
        at = aware(value, "as_of")
        bounded_day(at.date(), "as_of")
        return at
    if isinstance(value, (str, dt.date)):
        return dt.datetime.combine(report_day(value, "as_of"), dt.time.max, dt.UTC)
    raise ValidationError([FieldError("as_of", "type", f"expected a date or datetime, got {type(value).__name__}")])


# ---------------------------------------------------------------------------------------------------
# satisfaction
# ---------------------------------------------------------------------------------------------------

#: What :func:`satisfaction` groups by (besides the period): the agent rated (``user_id``), the agent's
#: team (``team_id``), the customer's segment (its ``category``) and the category of the ticket the survey is
#: about (``Ticket.category``).
SATISFACTION_GROUPS = ("agent", "team", "segment", "category")


@attrs.frozen
class SatisfactionRow:
    """Surveys of one kind sent in a period (and to an agent, team, segment or ticket category, when grouped
    by them).

    CSAT rows leave the NPS columns ``None`` and NPS rows leave ``csat_pct`` ``None``."""

    period: str | None
    user_id: str | None
    team_id: str | None
    segment: str | None
    category: str | None
    sent: int
    answered: int
    response_rate: Decimal | None
    mean_score: Decimal | None
    csat_pct: Decimal | None
    promoters: int | None
    passives: int | None
    detractors: int | None
    nps: Decimal | None


#: One group's tally: surveys sent, and answers by score.
Tally = tuple[int, Mapping[int, int]]


def _pct(part: int, whole: int) -> Decimal | None:
    return None if not whole else _round_ratio(100 * part, whole, 2)


#: A group: (period, user_id, team_id, segment, category).
Group = tuple[str | None, str | None, str | None, str | None, str | None]


def satisfaction_report(kind: str, tallies: Mapping[Group, Tally]) -> Report[SatisfactionRow]:
    """The rows of :func:`satisfaction` from each group's tally (``(period, user_id, team_id, segment,
    category)`` -> (sent, {score: answers})): shared with the SQL pushdown, so both give the same figures."""
    rows = []
    for key in sorted(tallies, key=lambda k: tuple(sort_key(v) for v in k)):
        sent, scores = tallies[key]
        answered = sum(scores.values())
        total = sum(score * n for score, n in scores.items())
        mean = None if not answered else _round_ratio(total, answered, 2)
        if kind == "csat":
            happy = sum(n for score, n in scores.items() if score >= 4)
            extra: tuple[Any, ...] = (_pct(happy, answered), None, None, None, None)
        else:
            pro = sum(n for score, n in scores.items() if score >= 9)
            det = sum(n for score, n in scores.items() if score <= 6)
            extra = (None, pro, answered - pro - det, det, _pct(pro - det, answered))
        rows.append(SatisfactionRow(*key, sent, answered, ratio(answered, sent), mean, *extra))
    y = "csat_pct" if kind == "csat" else "nps"
    return Report(SatisfactionRow, rows, title=f"Satisfaction ({kind.upper()})", x="period", y=y)


def check_satisfaction(kind: Any, by: Any) -> tuple[str, tuple[str, ...]]:
    """The checked ``kind`` and ``by`` of :func:`satisfaction`."""
    if kind not in Survey.KINDS:
        raise ValidationError([FieldError("kind", "invalid_choice", f"{quote(kind)} is not one of {', '.join(Survey.KINDS)}")])
    return str(kind), as_tuple(by, SATISFACTION_GROUPS)


def _group_of(mapping: Mapping[str, Any] | None, key: str, name: str) -> str | None:
    """The team or segment ``mapping`` gives ``key``: a text or None, else a ValidationError naming the entry."""
    value = (mapping or {}).get(key)
    if value is not None and not isinstance(value, str):
        raise ValidationError(
            [FieldError(f"{name}[{quote(key)}]", "type", f"expected a text or None, got {type(value).__name__}")]
        )
    return value


def satisfaction(
    surveys: Iterable[Any],
    *,
    kind: str = "csat",
    by: str | Sequence[str] = (),
    period: str | None = None,
    start: dt.date | dt.datetime | str | None = None,
    end: dt.date | dt.datetime | str | None = None,
    teams: Mapping[str, str | None] | None = None,
    segments: Mapping[str, str | None] | None = None,
    categories: Mapping[str, str | None] | None = None,
) -> Report[SatisfactionRow]:
    """CSAT or NPS of the surveys of ``kind`` sent from ``start`` to ``end`` (inclusive days of ``sent_at``),
    per ``period`` of ``sent_at`` (``None``: one period, ``all``) and, with ``by``, per ``agent``
    (``user_id``), ``team`` (the agent's team: ``teams`` maps user ids to team ids), ``segment`` (the
    customer's category: ``segments`` maps customer ids to categories) and ``category`` (the category of
    the ticket the survey is about: ``categories`` maps ticket ids to categories). An agent, customer or
    ticket missing from the mapping (or a survey about no ticket) falls in the ``None`` group. Only groups
    that occur are listed.

    >>> at = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    >>> done = at + dt.timedelta(hours=1)
    >>> csat = [Survey("c1", "csat", at, score=s, answered_at=done, user_id="u1") for s in (5, 4, 2)]
    >>> r = satisfaction([*csat, Survey("c2", "csat", at, user_id="u2")])[0]
    >>> r.sent, r.answered, r.response_rate, r.csat_pct, r.mean_score
    (4, 3, Decimal('0.7500'), Decimal('66.67'), Decimal('3.67'))
    >>> nps = [Survey("c1", "nps", at, score=s, answered_at=done) for s in (10, 9, 8, 3)]
    >>> r = satisfaction(nps, kind="nps")[0]
    >>> r.promoters, r.passives, r.detractors, r.nps
    (2, 1, 1, Decimal('25.00'))
    >>> [(r.user_id, r.csat_pct) for r in satisfaction(csat, by="agent")]
    [('u1', Decimal('66.67'))]
    >>> about = [Survey("c1", "csat", at, score=s, answered_at=done, ticket_id="t1") for s in (5, 3)]
    >>> cats = {"t1": "Billing/Invoice"}
    >>> [(r.category, r.sent) for r in satisfaction([*about, *csat], by="category", categories=cats)]
    [('Billing/Invoice', 2), (None, 3)]
    """
    kind, groups = check_satisfaction(kind, by)
    period = check_period(period)
    lo, hi = check_range(start, end)
    errors = []
    if "team" in groups and not isinstance(teams, Mapping):
        errors.append(FieldError("teams", "required", "grouping by team needs teams: a mapping of user id to team id"))
    if "segment" in groups and not isinstance(segments, Mapping):
        errors.append(FieldError("segments", "required", "grouping by segment needs segments: customer id to category"))
    if "category" in groups and not isinstance(categories, Mapping):
        errors.append(FieldError("categories", "required", "grouping by category needs categories: ticket id to category"))
    if errors:
        raise ValidationError(errors)
    tallies: dict[Group, tuple[int, dict[int, int]]] = {}
    for i, v in enumerate(entities_of(surveys, "surveys", Survey)):
        if v.kind != kind:
            continue
        sent = aware(v.sent_at, f"surveys[{i}].sent_at").date()
        if not within(sent, lo, hi):
            continue
        key: Group = (
            period_label(sent, period),
            v.user_id if "agent" in groups else None,
            _group_of(teams, v.user_id, "teams") if "team" in groups and v.user_id is not None else None,
            _group_of(segments, v.customer_id, "segments") if "segment" in groups else None,
            _group_of(categories, v.ticket_id, "categories") if "category" in groups and v.ticket_id is not None else None,
        )
        n, scores = tallies.setdefault(key, (0, {}))
        if v.score is not None:
            scores[v.score] = scores.get(v.score, 0) + 1
        tallies[key] = (n + 1, scores)
    return satisfaction_report(kind, tallies)
