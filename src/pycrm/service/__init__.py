"""The service desk: SLA policies on business calendars, computed from each ticket's status history.

>>> from pycrm.service import SlaPolicy, SlaTarget
>>> policy = SlaPolicy([SlaTarget("standard", first_response="4h", resolution="1d")])
>>> policy.targets[0].resolution
datetime.timedelta(days=1)
"""

from pycrm.service._report import SlaRow, sla_compliance
from pycrm.service._rules import SlaAtRisk, SlaBreached
from pycrm.service._sla import (
    CHANNELS,
    METRICS,
    SlaClock,
    SlaPolicy,
    SlaStatus,
    SlaTarget,
    parse_duration,
    ticket_segments,
)

__all__ = [
    "CHANNELS",
    "METRICS",
    "SlaAtRisk",
    "SlaBreached",
    "SlaClock",
    "SlaPolicy",
    "SlaRow",
    "SlaStatus",
    "SlaTarget",
    "parse_duration",
    "sla_compliance",
    "ticket_segments",
]
