"""Time rules of ``crm.run_due`` for SLA clocks: :class:`SlaAtRisk` and :class:`SlaBreached`.

Each run judges the tickets that are neither resolved nor closed with the policy at the run's ``now`` and
writes one event per ticket, clock and instant: :class:`~pycrm.automation.TicketSlaAtRisk` once the at-risk
share is used, :class:`~pycrm.automation.TicketSlaBreached` once the target is passed. The period of a
firing is the instant the clock crossed, so however often ``run_due`` runs a ticket fires once -- and fires
again only if a changed policy (or a reopened ticket) moves that instant.
"""

from __future__ import annotations

import abc
import datetime as dt
from typing import Any, ClassVar

import attrs

from pycrm.automation._due import TimeRule
from pycrm.domain._events import Event, TicketSlaAtRisk, TicketSlaBreached
from pycrm.errors import FieldError, ValidationError, quote
from pycrm.service._sla import METRICS, SlaClock, SlaPolicy

__all__ = ["SlaAtRisk", "SlaBreached"]


def _policy(inst: Any, a: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, SlaPolicy):
        raise ValidationError([FieldError("policy", "type", f"expected an SlaPolicy, got {type(value).__name__}")])


def _metric(inst: Any, a: attrs.Attribute[Any], value: Any) -> None:
    if value not in METRICS:
        raise ValidationError([FieldError("metric", "invalid_choice", f"{quote(value)} is not one of {', '.join(METRICS)}")])


@attrs.frozen(kw_only=True)
class _SlaRule(TimeRule):
    kind: ClassVar[str] = "open_tickets"
    #: The event a crossing raises.
    raises: ClassVar[type[TicketSlaAtRisk] | type[TicketSlaBreached]]

    policy: SlaPolicy = attrs.field(validator=_policy)
    metric: str = attrs.field(default="resolution", validator=_metric)

    def params(self) -> dict[str, Any]:
        return {"customers": self.policy.reads_customers}

    def _clock(self, value: Any, now: dt.datetime) -> tuple[str, SlaClock] | None:
        ticket, customer = value
        if self.policy.find(ticket, customer) is None:
            return None  # a ticket no target matches has no clock to judge
        status = self.policy.status(ticket, customer=customer, as_of=now)
        clock = status.clock(self.metric)
        return None if clock is None else (status.target, clock)

    @abc.abstractmethod
    def _instant(self, clock: SlaClock) -> dt.datetime | None:
        """The instant the clock crossed what this rule watches, or None while it has not."""

    def period(self, value: Any, now: dt.datetime) -> str | None:
        found = self._clock(value, now)
        if found is None:
            return None
        instant = self._instant(found[1])
        return None if instant is None else instant.astimezone(dt.UTC).isoformat(timespec="microseconds")

    def event(self, record_id: str, value: Any, key: str, now: dt.datetime) -> Event:
        found = self._clock(value, now)
        assert found is not None  # period() kept only clocks that crossed
        target, clock = found
        return self.raises(entity_id=record_id, key=key, at=now, metric=self.metric, target=target, due_at=clock.due_at)


@attrs.frozen(kw_only=True)
class SlaAtRisk(_SlaRule):
    """A :class:`~pycrm.automation.TicketSlaAtRisk` event for each open ticket whose ``metric`` clock
    (``resolution`` by default, or ``first_response``) has used the policy's at-risk share but is not breached;
    once per ticket and crossing."""

    raises: ClassVar[type[TicketSlaAtRisk]] = TicketSlaAtRisk

    def default_name(self) -> str:
        return f"sla_at_risk:{self.metric}"

    def _instant(self, clock: SlaClock) -> dt.datetime | None:
        return clock.at_risk_at if clock.state == "at_risk" else None


@attrs.frozen(kw_only=True)
class SlaBreached(_SlaRule):
    """A :class:`~pycrm.automation.TicketSlaBreached` event for each open ticket whose ``metric`` clock ran past
    its target; once per ticket and breach instant."""

    raises: ClassVar[type[TicketSlaBreached]] = TicketSlaBreached

    def default_name(self) -> str:
        return f"sla_breached:{self.metric}"

    def _instant(self, clock: SlaClock) -> dt.datetime | None:
        return clock.due_at if clock.state == "breached" else None
