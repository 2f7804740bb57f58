"""Service-level agreements: targets as data, clocks computed from a ticket's status history.

An :class:`SlaPolicy` holds :class:`SlaTarget` rules -- first-response and resolution targets, in business
time, for the tickets a rule matches (priority, ticket category, channel, the customer's category, tags or
country) -- the first matching rule wins. Each target counts on a :class:`~pycrm.automation.BusinessCalendar`
(the policy's, or a named one: per team or region), and the clock **pauses** while the ticket waits on the
customer (``pause_statuses``, ``pending`` by default).

Everything is computed from the ticket's ``status_history`` at an instant ``as_of``: the clock's elapsed
business time, what remains, the due time, whether it is at risk (a share ``at_risk`` of the target used) or
breached. Nothing is stored, so a changed policy replays on old tickets by computing again.

Definitions (the reference semantics, which reports in the database follow):

- The ticket's **segments**: from ``created_at`` in the first status (``new``), then each status change from
  its instant to the next one; the last runs to ``as_of``. A history that goes backwards in time is refused.
- **Resolution clock**: runs in every segment whose status is neither paused nor ``resolved``/``closed``; it
  is *stopped* when the ticket is resolved or closed at ``as_of`` (a reopened ticket runs again).
- **First-response clock**: runs in the segments before ``first_response_at`` (the first move to ``open``)
  whose status is not paused; stopped once the ticket responded.
- **elapsed**: the business time the clock ran; **remaining** = target - elapsed (negative once late).
- **breached** when elapsed > target; **due_at**: the first instant elapsed reaches the target (in the past
  for a breached clock; projected for a running one; None while paused before reaching it, or for a clock
  stopped in time); **at risk**: running, not breached, elapsed >= ``at_risk`` x target.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from pycrm._documents import read_document, under
from pycrm.automation._calendar import BusinessCalendar
from pycrm.domain import Ticket, TicketPriority, TicketStatus, utcnow
from pycrm.domain._entities import MAX_HISTORY
from pycrm.errors import FieldError, ValidationError, quote

__all__ = [
    "CHANNELS",
    "METRICS",
    "SlaClock",
    "SlaPolicy",
    "SlaStatus",
    "SlaTarget",
    "calendar_from",
    "parse_duration",
    "ticket_segments",
]

#: The two clocks of a target.
METRICS = ("first_response", "resolution")
#: A ticket's channels.
CHANNELS = Ticket.CHANNELS
#: The most rules one policy holds, and the most named calendars.
MAX_TARGETS = 500
MAX_CALENDARS = 100
#: The longest target (a year of business time).
MAX_TARGET = dt.timedelta(days=366)
#: The most status changes of one ticket the clocks walk.

_DONE = frozenset({TicketStatus.RESOLVED.value, TicketStatus.CLOSED.value})
_DURATION = re.compile(r"\s*(?:(\d{1,6})\s*d)?\s*(?:(\d{1,7})\s*h)?\s*(?:(\d{1,9})\s*m(?:in)?)?\s*")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\- ]{0,63}")
ZERO = dt.timedelta(0)


def _bad(field: str, message: str, code: str = "invalid") -> ValidationError:
    return ValidationError([FieldError(field, code, message)])


def parse_duration(value: Any, field: str) -> dt.timedelta:
    """A target's length: a timedelta, minutes as a whole number, or text such as ``"30m"``, ``"4h"``,
    ``"1h30m"`` (``"2d"`` is two 24-hour days of business time, not two working days).

    >>> parse_duration("1h30m", "resolution")
    datetime.timedelta(seconds=5400)
    """
    if isinstance(value, str):
        m = _DURATION.fullmatch(value) if len(value) <= 40 else None
        if m is None or not any(m.groups()):
            raise _bad(field, f"{quote(value)} is not a duration such as '30m', '4h' or '1h30m'")
        d, h, mins = (int(g or 0) for g in m.groups())
        value = dt.timedelta(days=d, hours=h, minutes=mins)
    elif type(value) is int:
        if not 0 < value <= MAX_TARGET // dt.timedelta(minutes=1):
            raise _bad(field, f"must be 1 to {MAX_TARGET.days * 1440} minutes, got {value}", "range")
        value = dt.timedelta(minutes=value)
    if not isinstance(value, dt.timedelta):
        raise _bad(field, f"must be a duration ('4h', minutes or a timedelta), got {quote(value)}", "type")
    if not ZERO < value <= MAX_TARGET:
        raise _bad(field, f"must be more than 0 and at most {MAX_TARGET.days} days, got {value}", "range")
    return value


def _choices(value: Any, field: str, allowed: Sequence[str] | None) -> frozenset[str] | None:
    """A frozenset of texts (``None`` = any), each one of ``allowed`` when given; category paths normalized."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if isinstance(items, (bytes, Mapping)) or not isinstance(items, Iterable):
        raise _bad(field, f"must be a text or a list of texts, got {quote(value)}", "type")
    out: set[str] = set()
    for i, v in enumerate(items):
        if i >= 1000:
            raise _bad(field, "names more than 1000 values", "too_many")
        v = _value(v)
        if not isinstance(v, str) or not v.strip() or len(v) > 200:
            raise _bad(f"{field}[{i}]", f"must be a non-empty text, got {quote(v)}", "type")
        v = "/".join(p.strip() for p in v.split("/")) if field.endswith("category") else v.strip()
        if allowed is not None and v not in allowed:
            raise _bad(f"{field}[{i}]", f"{quote(v)} is not one of {', '.join(allowed)}", "invalid_choice")
        out.add(v)
    if not out:
        raise _bad(field, "name at least one value, or leave it out to match any", "empty")
    return frozenset(out)


def _under(value: str | None, roots: frozenset[str]) -> bool:
    """Whether the category path ``value`` is one of ``roots`` or below one (``Hardware/Printer`` is under
    ``Hardware``)."""
    if value is None:
        return False
    return any(value == r or value.startswith(r + "/") for r in roots)


def _name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise _bad("name", f"{quote(value)} is not a target name (letters, digits, space . _ : -, up to 64)")
    return value


def _first_response(value: Any) -> dt.timedelta | None:
    return None if value is None else parse_duration(value, "first_response")


def _resolution(value: Any) -> dt.timedelta | None:
    return None if value is None else parse_duration(value, "resolution")


def _priority(value: Any) -> frozenset[str] | None:
    return _choices(value, "priority", [p.value for p in TicketPriority])


def _category(value: Any) -> frozenset[str] | None:
    return _choices(value, "category", None)


def _channel(value: Any) -> frozenset[str] | None:
    return _choices(value, "channel", CHANNELS)


def _customer_category(value: Any) -> frozenset[str] | None:
    return _choices(value, "customer_category", None)


def _customer_tags(value: Any) -> frozenset[str] | None:
    return _choices(value, "customer_tags", None)


def _customer_country(value: Any) -> frozenset[str] | None:
    return _choices(value, "customer_country", None)


@attrs.frozen
class SlaTarget:
    """One rule of a policy: the tickets it applies to and their targets.

    Matching: every criterion given must hold (``None``: any). ``priority``: priorities; ``category``: ticket
    categories, each with everything below it; ``channel``: channels; ``customer_category``: the customer's
    categories (a segment), with their subtrees; ``customer_tags``: the customer has one of these tags (a tier
    such as ``"gold"``); ``customer_country``: ISO country codes. ``first_response`` / ``resolution``: the
    targets in business time (``"4h"``; None: that clock is not tracked); ``calendar``: the name of one of
    the policy's ``calendars`` (None: its default calendar).
    """

    name: str = attrs.field(converter=_name)
    first_response: dt.timedelta | None = attrs.field(default=None, converter=_first_response)
    resolution: dt.timedelta | None = attrs.field(default=None, converter=_resolution)
    priority: frozenset[str] | None = attrs.field(default=None, converter=_priority)
    category: frozenset[str] | None = attrs.field(default=None, converter=_category)
    channel: frozenset[str] | None = attrs.field(default=None, converter=_channel)
    customer_category: frozenset[str] | None = attrs.field(default=None, converter=_customer_category)
    customer_tags: frozenset[str] | None = attrs.field(default=None, converter=_customer_tags)
    customer_country: frozenset[str] | None = attrs.field(default=None, converter=_customer_country)
    calendar: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.first_response is None and self.resolution is None:
            raise _bad("resolution", f"target {self.name!r} sets neither first_response nor resolution", "required")
        if self.calendar is not None and (not isinstance(self.calendar, str) or not _NAME.fullmatch(self.calendar)):
            raise _bad("calendar", f"{quote(self.calendar)} is not a calendar name")

    @property
    def reads_customer(self) -> bool:
        """Whether the rule looks at the ticket's customer (its category, tags or country)."""
        return self.customer_category is not None or self.customer_tags is not None or self.customer_country is not None

    def matches(self, ticket: Ticket, customer: Any = None) -> bool:
        """Whether this rule applies to ``ticket`` (of ``customer``: a Customer, or None when unknown -- then
        customer criteria do not hold)."""
        if self.priority is not None and _value(ticket.priority) not in self.priority:
            return False
        if self.category is not None and not _under(ticket.category, self.category):
            return False
        if self.channel is not None and ticket.channel not in self.channel:
            return False
        if self.reads_customer:
            if customer is None:
                return False
            if self.customer_category is not None and not _under(getattr(customer, "category", None), self.customer_category):
                return False
            if self.customer_tags is not None and not (self.customer_tags & set(getattr(customer, "tags", ()) or ())):
                return False
            if self.customer_country is not None and getattr(customer, "country", None) not in self.customer_country:
                return False
        return True

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        for metric in METRICS:
            value = getattr(self, metric)
            if value is not None:
                out[metric] = f"{int(value.total_seconds() // 60)}m"
        for key in ("priority", "category", "channel", "customer_category", "customer_tags", "customer_country"):
            value = getattr(self, key)
            if value is not None:
                out[key] = sorted(value)
        if self.calendar is not None:
            out["calendar"] = self.calendar
        return out


def _value(v: Any) -> Any:
    return getattr(v, "value", v)


def _targets(value: Any) -> tuple[SlaTarget, ...]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise _bad("targets", f"must be a list of SlaTarget (or mappings), got {quote(value)}", "type")
    out: list[SlaTarget] = []
    names: set[str] = set()
    for i, t in enumerate(value):
        if i >= MAX_TARGETS:
            raise _bad("targets", f"holds more than {MAX_TARGETS} rules", "too_many")
        if isinstance(t, Mapping):
            t = _target_from(t, f"targets[{i}]")
        if not isinstance(t, SlaTarget):
            raise _bad(f"targets[{i}]", f"expected an SlaTarget or a mapping, got {type(t).__name__}", "type")
        if t.name in names:
            raise _bad(f"targets[{i}].name", f"two targets are named {t.name!r}", "duplicate")
        names.add(t.name)
        out.append(t)
    if not out:
        raise _bad("targets", "a policy needs at least one target", "required")
    return tuple(out)


_TARGET_KEYS = frozenset(f.name for f in attrs.fields(SlaTarget))


def _target_from(data: Mapping[str, Any], where: str) -> SlaTarget:
    unknown = sorted(str(k) for k in data if k not in _TARGET_KEYS)
    if unknown:
        raise _bad(f"{where}.{unknown[0]}", f"unknown key {unknown[0]!r} ({', '.join(sorted(_TARGET_KEYS))})", "unknown")
    try:
        return SlaTarget(**data)
    except ValidationError as e:
        raise ValidationError([FieldError(f"{where}.{f.field}", f.code, f.message) for f in e.errors]) from None
    except TypeError:
        raise _bad(where, "needs a name and a first_response or resolution", "required") from None


def calendar_from(data: Mapping[str, Any]) -> BusinessCalendar:
    """A calendar from configuration data: :meth:`BusinessCalendar.from_dict
    <pycrm.automation.BusinessCalendar.from_dict>`'s fields, plus ``country`` and ``years`` (and ``subdiv``)
    for the public holidays -- and make-up working days -- of the ``holidays`` package."""
    fields = dict(data)
    if "country" not in fields:
        return BusinessCalendar.from_dict(fields)
    country, years, subdiv = fields.pop("country"), fields.pop("years", None), fields.pop("subdiv", None)
    if years is None:
        raise _bad("years", "a calendar of a country's holidays needs the years, e.g. [2026, 2027]", "required")
    BusinessCalendar.from_dict(fields)  # the other keys checked, named when unknown
    return BusinessCalendar.from_holidays(country, years, subdiv=subdiv, **fields)


def _calendar(value: Any) -> BusinessCalendar:
    if isinstance(value, Mapping):
        try:
            value = calendar_from(value)
        except ValidationError as e:
            raise ValidationError([FieldError(f"calendar.{f.field}", f.code, f.message) for f in e.errors]) from None
    if not isinstance(value, BusinessCalendar):
        raise _bad("calendar", f"must be a BusinessCalendar, got {type(value).__name__}", "type")
    return value


def _calendars(value: Any) -> Mapping[str, BusinessCalendar]:
    if not isinstance(value, Mapping):
        raise _bad("calendars", f"must map names to BusinessCalendar, got {quote(value)}", "type")
    if len(value) > MAX_CALENDARS:
        raise _bad("calendars", f"names more than {MAX_CALENDARS} calendars", "too_many")
    out: dict[str, BusinessCalendar] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not _NAME.fullmatch(k):
            raise _bad("calendars", f"{quote(k)} is not a calendar name")
        try:
            out[k] = _calendar(v)
        except ValidationError as e:
            raise ValidationError([FieldError(f"calendars.{k}{f.field[8:]}", f.code, f.message) for f in e.errors]) from None
    return out


def _statuses(value: Any) -> frozenset[str]:
    if isinstance(value, (list, tuple, set, frozenset)) and not value:
        return frozenset()  # nothing pauses the clock
    out = _choices(value, "pause_statuses", [s.value for s in TicketStatus])
    if out is None:
        return frozenset()
    if out & _DONE:
        raise _bad("pause_statuses", "resolved and closed stop the clock; they cannot pause it", "invalid_choice")
    return out


def _share(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        raise _bad("at_risk", f"must be a share between 0 and 1 such as 0.8, got {quote(value)}", "type")
    try:
        share = Decimal(str(value))
    except ArithmeticError:
        raise _bad("at_risk", f"{quote(value)} is not a number") from None
    if not share.is_finite() or not 0 < share < 1:
        raise _bad("at_risk", f"must be more than 0 and less than 1, got {value}", "range")
    return share


@attrs.frozen
class SlaClock:
    """One clock of a ticket (``metric``: ``first_response`` or ``resolution``) at ``as_of``.

    ``state``: ``met`` (stopped within the target), ``breached``, ``running``, ``at_risk`` or ``paused``.
    """

    metric: str
    target: dt.timedelta
    elapsed: dt.timedelta
    state: str
    due_at: dt.datetime | None
    at_risk_at: dt.datetime | None
    stopped_at: dt.datetime | None

    @property
    def remaining(self) -> dt.timedelta:
        """Target minus elapsed business time (negative once breached)."""
        return self.target - self.elapsed

    @property
    def breached(self) -> bool:
        return self.state == "breached"

    @property
    def stopped(self) -> bool:
        return self.stopped_at is not None


@attrs.frozen
class SlaStatus:
    """Where a ticket stands against its policy at ``as_of``: the ``target`` rule that matched, its clocks
    (None for a clock the rule does not track) and the business time spent ``paused``."""

    ticket_id: str | None
    target: str
    calendar: str | None
    as_of: dt.datetime
    first_response: SlaClock | None
    resolution: SlaClock | None
    paused: dt.timedelta

    @property
    def breached(self) -> bool:
        return any(c is not None and c.breached for c in (self.first_response, self.resolution))

    def clock(self, metric: str) -> SlaClock | None:
        if metric not in METRICS:
            raise _bad("metric", f"{quote(metric)} is not one of {', '.join(METRICS)}", "invalid_choice")
        clock: SlaClock | None = getattr(self, metric)
        return clock


@attrs.frozen
class SlaPolicy:
    """Targets for first response and resolution, the calendars they count on, and what pauses the clock.

    >>> policy = SlaPolicy(
    ...     [SlaTarget("urgent", priority="urgent", first_response="30m", resolution="4h"),
    ...      SlaTarget("standard", first_response="4h", resolution="8h")],
    ...     calendar=BusinessCalendar(),  # Monday to Friday, 09:00-18:00 UTC
    ... )
    >>> t = Ticket("c1", "Printer jammed", created_at=dt.datetime(2026, 12, 4, 17, tzinfo=dt.UTC))  # a Friday
    >>> policy.status(t, as_of=t.created_at).resolution.due_at  # 1 h on Friday, 7 h on Monday
    datetime.datetime(2026, 12, 7, 16, 0, tzinfo=datetime.timezone.utc)
    """

    targets: tuple[SlaTarget, ...] = attrs.field(converter=_targets)
    calendar: BusinessCalendar = attrs.field(factory=BusinessCalendar, converter=_calendar)
    calendars: Mapping[str, BusinessCalendar] = attrs.field(factory=dict, converter=_calendars)
    pause_statuses: frozenset[str] = attrs.field(default=frozenset({TicketStatus.PENDING.value}), converter=_statuses)
    at_risk: Decimal = attrs.field(default=Decimal("0.8"), converter=_share)

    def __attrs_post_init__(self) -> None:
        for i, t in enumerate(self.targets):
            if t.calendar is not None and t.calendar not in self.calendars:
                known = ", ".join(sorted(self.calendars)) or "none"
                raise _bad(f"targets[{i}].calendar", f"no calendar named {t.calendar!r} (known: {known})", "unknown")

    # ------------------------------------------------------------------ data
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SlaPolicy:
        """A policy from plain data (JSON or TOML): ``targets`` (a list of mappings with :class:`SlaTarget`'s
        fields, durations as ``"4h"``), ``calendar`` and ``calendars`` (mappings of
        :class:`~pycrm.automation.BusinessCalendar`'s fields), ``pause_statuses``, ``at_risk``."""
        if not isinstance(data, Mapping):
            raise _bad("policy", f"must be a mapping, got {type(data).__name__}", "type")
        known = ("targets", "calendar", "calendars", "pause_statuses", "at_risk")
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise _bad(unknown[0], f"unknown key {unknown[0]!r} ({', '.join(known)})", "unknown")
        if "targets" not in data:
            raise _bad("targets", "a policy needs targets", "required")
        kw = dict(data)
        return cls(**kw)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SlaPolicy:
        """The policy in a ``.toml`` or ``.json`` file (:meth:`from_dict`'s data); a ValidationError names the
        file and the field (``policy.toml: targets[1].resolution``)."""
        data = read_document(path)
        try:
            return cls.from_dict(data)
        except ValidationError as exc:
            raise under(exc, str(path)) from None

    def to_dict(self) -> dict[str, Any]:
        """The policy as plain data (JSON or TOML can hold it): ``SlaPolicy.from_dict(p.to_dict()) == p``."""
        return {
            "targets": [t.to_dict() for t in self.targets],
            "calendar": self.calendar.to_dict(),
            "calendars": {name: cal.to_dict() for name, cal in self.calendars.items()},
            "pause_statuses": sorted(self.pause_statuses),
            "at_risk": str(self.at_risk),
        }

    # ------------------------------------------------------------------ matching
    @property
    def reads_customers(self) -> bool:
        """Whether a target looks at the ticket's customer (then the customers are read to match)."""
        return any(t.reads_customer for t in self.targets)

    def find(self, ticket: Ticket, customer: Any = None) -> SlaTarget | None:
        """The first target that applies to ``ticket``, or None."""
        return next((t for t in self.targets if t.matches(ticket, customer)), None)

    def match(self, ticket: Ticket, customer: Any = None) -> SlaTarget:
        """The first target that applies to ``ticket``; a ValidationError when none does (end the targets
        with a rule without criteria to give every ticket one)."""
        found = self.find(ticket, customer)
        if found is not None:
            return found
        raise _bad("policy", f"no target of this policy matches ticket {quote(ticket.id)} (add a default rule)", "no_match")

    def calendar_of(self, target: SlaTarget) -> BusinessCalendar:
        return self.calendar if target.calendar is None else self.calendars[target.calendar]

    # ------------------------------------------------------------------ clocks
    def status(self, ticket: Ticket, *, customer: Any = None, as_of: dt.datetime | None = None) -> SlaStatus:
        """Where ``ticket`` stands at ``as_of`` (default: now), computed from its status history; see the
        module docstring for the definitions. The ticket needs ``created_at`` (it is stored)."""
        if not isinstance(ticket, Ticket):
            raise _bad("ticket", f"expected a Ticket, got {type(ticket).__name__}", "type")
        now = _aware(as_of, "as_of") if as_of is not None else utcnow()
        target = self.match(ticket, customer)
        cal = self.calendar_of(target)
        segments = ticket_segments(ticket, now)
        paused = ZERO
        for a, b, status in segments:
            if status in self.pause_statuses:
                paused += cal.business_time(a, b)
        responded = _aware(ticket.first_response_at, "first_response_at") if ticket.first_response_at else None
        done = _done_at(segments)
        first = None
        if target.first_response is not None:
            stop = responded if responded is not None and responded <= now else done  # resolving answers too
            first = self._clock("first_response", target.first_response, cal, segments, stop, now)
        resolution = None
        if target.resolution is not None:
            resolution = self._clock("resolution", target.resolution, cal, segments, done, now)
        return SlaStatus(ticket.id, target.name, target.calendar, now, first, resolution, paused)

    def _clock(
        self,
        metric: str,
        target: dt.timedelta,
        cal: BusinessCalendar,
        segments: Sequence[tuple[dt.datetime, dt.datetime, str]],
        stop: dt.datetime | None,
        now: dt.datetime,
    ) -> SlaClock:
        risk = target * float(self.at_risk)
        risk = dt.timedelta(microseconds=round(risk / dt.timedelta(microseconds=1)))
        elapsed = ZERO
        due_at = risk_at = None
        last_status = segments[-1][2] if segments else TicketStatus.NEW.value
        for a, b, status in segments:
            if stop is not None:
                if a >= stop:
                    break
                b = min(b, stop)
            if status in self.pause_statuses or status in _DONE:
                continue
            spent = cal.business_time(a, b)
            if risk_at is None and elapsed + spent >= risk:
                risk_at = cal.add_business_time(a, risk - elapsed)
            if due_at is None and elapsed + spent >= target:
                due_at = cal.add_business_time(a, target - elapsed)
            elapsed += spent
        stopped = stop is not None
        running = not stopped and last_status not in self.pause_statuses
        if running and due_at is None:  # projected from now
            due_at = cal.add_business_time(now, target - elapsed)
        if running and risk_at is None:
            risk_at = cal.add_business_time(now, risk - elapsed)
        if elapsed > target:
            state = "breached"
        elif stopped:
            state, due_at = "met", None
        elif not running:
            state = "paused"
        elif elapsed >= risk:
            state = "at_risk"
        else:
            state = "running"
        return SlaClock(metric, target, elapsed, state, due_at, risk_at, stop if stopped else None)


def _aware(value: Any, field: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise _bad(field, f"must be a timezone-aware datetime, got {quote(value)}", "invalid_datetime")
    return value.astimezone(dt.UTC)


def _done_at(segments: Sequence[tuple[dt.datetime, dt.datetime, str]]) -> dt.datetime | None:
    """When the trailing run of resolved / closed segments began: the resolution (None if not resolved)."""
    done = None
    for a, _, status in reversed(segments):
        if status not in _DONE:
            break
        done = a
    return done


def ticket_segments(ticket: Ticket, as_of: dt.datetime) -> list[tuple[dt.datetime, dt.datetime, str]]:
    """The ticket's ``(start, end, status)`` segments up to ``as_of`` (UTC, empty before it was created).

    From the status history; a ticket without one (imported) gets its segments from ``first_response_at``,
    ``resolved_at`` and ``closed_at``. A history out of time order is a ValidationError naming the change.
    """
    if ticket.created_at is None:
        raise _bad("created_at", "the ticket has no creation time (store it first)", "required")
    start = _aware(ticket.created_at, "created_at")
    history = ticket.status_history
    if len(history) > MAX_HISTORY:
        raise _bad("status_history", f"of ticket {quote(ticket.id)} holds more than {MAX_HISTORY} changes", "too_many")
    changes: list[tuple[dt.datetime, str]] = []
    first = TicketStatus.NEW.value
    if history:
        first = history[0].from_status or TicketStatus.NEW.value
        prev = start
        for i, h in enumerate(history):
            at = _aware(h.at, f"status_history[{i}].at")
            if at < prev:
                raise _bad(
                    f"status_history[{i}].at",
                    f"{at.isoformat()} is before the change or creation before it (ticket {quote(ticket.id)})",
                    "order",
                )
            changes.append((at, h.to_status))
            prev = at
    else:
        for field, status in (("first_response_at", "open"), ("resolved_at", "resolved"), ("closed_at", "closed")):
            at = getattr(ticket, field)
            if at is not None:
                changes.append((max(_aware(at, field), start), status))
        changes.sort(key=lambda c: c[0])
        if not changes and _value(ticket.status) != first:
            changes.append((start, _value(ticket.status)))
    out: list[tuple[dt.datetime, dt.datetime, str]] = []
    at, status = start, first
    for when, to in changes:
        if when > as_of:
            break
        if when > at:
            out.append((at, when, status))
        at, status = when, to
    out.append((at, max(at, as_of), status))  # the status at as_of (a change at as_of included)
    return out
