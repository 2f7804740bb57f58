"""Re-activation: customers gone dormant join a campaign, and the host contacts them.

:class:`Reactivation` ties the time rule :class:`~pycrm.automation.DormantCustomers` (no order and no
interaction for ``days`` days) to a campaign: ``crm.run_due([r.rule])`` writes a ``CustomerDormant`` event
per dormant customer, and ``crm.dispatch()`` hands each to the handler :meth:`Reactivation.install`
registered, which adds the customer as a member when one of its contacts consented to the campaign's channel
(``s.campaigns.add_members``; a customer already a member is not added twice, so a retried event changes
nothing). Each member added is a ``CampaignMemberAdded`` event in the outbox: sending is the host's job.
"""

from __future__ import annotations

from typing import Any

import attrs

from pycrm.automation._due import DormantCustomers
from pycrm.domain import User
from pycrm.domain._checks import is_id
from pycrm.domain._events import CustomerDormant, Event
from pycrm.errors import FieldError, ValidationError, quote

__all__ = ["Reactivation"]


def _campaign_id(inst: Any, a: attrs.Attribute[Any], value: Any) -> None:
    if not is_id(value):
        raise ValidationError([FieldError("campaign_id", "type", f"expected a campaign id, got {quote(value)}")])


def _actor(inst: Any, a: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, User):
        raise ValidationError([FieldError("actor", "type", f"expected a User or None, got {type(value).__name__}")])


@attrs.frozen
class Reactivation:
    """Customers dormant for ``days`` days join the campaign ``campaign_id`` (see the module), added as
    ``actor`` (None: the system), whose scope then applies.

    >>> import pycrm
    >>> from pycrm import Campaign
    >>> crm = pycrm.open("memory://", outbox=True)
    >>> with crm.session() as s:
    ...     k = s.campaigns.add(Campaign("We miss you", "email"))
    >>> r = Reactivation(crm, str(k.id), days=90).install()
    >>> r.rule
    DormantCustomers(name='dormant_customers:90d', days=90)
    """

    crm: Any
    campaign_id: str = attrs.field(validator=_campaign_id)
    days: int = 90
    actor: User | None = attrs.field(default=None, validator=_actor)
    rule: DormantCustomers = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "rule", DormantCustomers(days=self.days))
        with self.crm.session(actor=self.actor) as s:
            s.campaigns.get(self.campaign_id)  # there, and the actor's

    def install(self) -> Reactivation:
        """Register :meth:`handle` for ``CustomerDormant`` on ``crm.handlers``."""
        self.crm.handlers.add(self.handle, CustomerDormant, name=f"pycrm.reactivation:{self.campaign_id}")
        return self

    def handle(self, event: Event) -> int:
        """Add the dormant customer of ``event`` (of this rule's ``days``) to the campaign; how many were added."""
        if not isinstance(event, CustomerDormant) or event.days != self.days or event.entity_id is None:
            return 0
        with self.crm.session(actor=self.actor) as s:
            added = s.campaigns.add_members(
                self.campaign_id, customer_ids=[event.entity_id], at=event.at, require_consent_data=False
            )
        return len(added)
