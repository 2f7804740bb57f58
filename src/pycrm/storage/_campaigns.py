"""``s.campaigns``: the campaigns repository, plus filling a campaign with members and recording responses.

* ``add_members(campaign, segment=..., where=..., customer_ids=...)`` -- the customers selected (an RFM
  segment, a ``where`` filter on customers, ids; together they intersect) that consented to the campaign's
  channel through one of their contacts become members, one each (the contact reached is the first of them
  by id). A customer none of whose contacts consented is left out; when no contact of the customers selected
  says anything about the channel (no consent data), nothing is added and a ValidationError says so.
  Each member added raises ``CampaignMemberAdded`` (in the outbox when it is on): contacting it is the host's
  job.
* ``respond(member_id, kind, at=...)`` -- records a response; ``sent`` makes the member ``contacted``,
  opened / clicked / replied ``responded``, and ``unsubscribed`` ``removed`` and withdraws the consent of the
  member's contact (of every contact of its customer without one) for the campaign's channel.
* ``members(campaign_id)`` / ``responses(campaign_id)`` / ``kpis(...)``.

Everything goes through the session's repositories, so the actor's scope applies: a customer outside it is
neither selected nor counted, a member outside it is "not there".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from pycrm.analytics._campaigns import CampaignKpiRow
from pycrm.analytics._report import Report
from pycrm.domain import Campaign, CampaignMember, CampaignResponse, utcnow
from pycrm.domain import _checks as c
from pycrm.domain._checks import check_iterable, check_mapping
from pycrm.errors import FieldError, ValidationError, quote
from pycrm.security import ANONYMIZED_PREFIX, consent_allows
from pycrm.storage._repository import Repository

__all__ = ["CampaignRepository"]

#: Customer ids per ``in`` condition when reading the contacts of the customers selected.
CHUNK = 500
#: The member state a response moves it to (None: unchanged).
_STATE = {
    "sent": "contacted",
    "opened": "responded",
    "clicked": "responded",
    "replied": "responded",
    "unsubscribed": "removed",
}


def _has_consent_data(consent: Mapping[str, Any], channel: str) -> bool:
    return channel in consent or "marketing" in consent


class CampaignRepository(Repository[Campaign]):
    """The campaigns, with their members and responses (see the module)."""

    def _campaign(self, campaign: Campaign | str) -> Campaign:
        cid = campaign.id if isinstance(campaign, Campaign) else campaign
        if not isinstance(cid, str):
            raise ValidationError([FieldError("campaign", "type", f"expected a Campaign or its id, got {quote(campaign)}")])
        return self.get(cid)

    def add_members(
        self,
        campaign: Campaign | str,
        *,
        segment: str | None = None,
        as_of: dt.date | dt.datetime | str | None = None,
        where: Mapping[str, Any] | None = None,
        customer_ids: Iterable[str] | None = None,
        at: dt.datetime | None = None,
        require_consent_data: bool = True,
    ) -> list[CampaignMember]:
        """Add the consenting customers selected as members (see the module); returns the members added
        (a customer already a member, not removed, is not added again). ``require_consent_data=False``: no
        consent data for the channel adds nobody, without an error (an automation adding one customer)."""
        self._s._check_open()
        camp = self._campaign(campaign)
        when = utcnow() if at is None else c.utc(at, "at")
        filters = dict(check_mapping("where", where) or {})
        if segment is None and where is None and customer_ids is None:
            raise ValidationError(
                [FieldError("segment", "required", "give a segment, a where filter on customers or customer_ids")]
            )
        wanted: set[str] | None = None
        if customer_ids is not None:
            ids = [customer_ids] if isinstance(customer_ids, str) else list(check_iterable("customer_ids", customer_ids))
            wanted = {str(i) for i in ids}
        if segment is not None:
            from pycrm.analytics import segment_members

            if as_of is None:
                as_of = when
            in_segment = set(segment_members(self._s.analytics.rfm(as_of=as_of), segment))
            wanted = in_segment if wanted is None else wanted & in_segment
        if wanted is not None and "id" not in filters:
            filters["id"] = {"in": sorted(wanted)}
        chosen = sorted(str(x.id) for x in self._s.customers.iter(filters or None) if wanted is None or str(x.id) in wanted)
        already = {m.customer_id for m in self._s.campaign_members.iter({"campaign_id": str(camp.id)}) if m.state != "removed"}
        members: list[CampaignMember] = []
        seen_data = False
        for start in range(0, len(chosen), CHUNK):
            part = chosen[start : start + CHUNK]
            reach: dict[str, str] = {}
            for contact in sorted(self._s.contacts.iter({"customer_id": {"in": part}}), key=lambda x: str(x.id)):
                if contact.first_name == ANONYMIZED_PREFIX:
                    continue
                seen_data = seen_data or _has_consent_data(contact.consent, camp.channel)
                if consent_allows(contact, camp.channel):
                    reach.setdefault(contact.customer_id, str(contact.id))
            for cid in part:
                if cid in reach and cid not in already:
                    members.append(CampaignMember(str(camp.id), cid, when, contact_id=reach[cid]))
        if not isinstance(require_consent_data, bool):
            raise ValidationError([FieldError("require_consent_data", "type", "expected true or false")])
        if chosen and not seen_data and require_consent_data:
            raise ValidationError(
                [
                    FieldError(
                        "channel",
                        "no_consent_data",
                        f"none of the {len(chosen)} customers selected has consent data for {camp.channel!r}: "
                        "record their contacts' consent first",
                    )
                ]
            )
        if members:
            self._s.campaign_members.add_many(members)
        return members

    def respond(self, member_id: str, kind: str, *, at: dt.datetime | None = None) -> CampaignResponse:
        """Record a response of the member ``member_id`` (see the module); returns it."""
        self._s._check_open()
        member = self._s.campaign_members.get(member_id)
        camp = self.get(member.campaign_id)
        when = utcnow() if at is None else c.utc(at, "at")
        response = CampaignResponse(str(member.id), member.campaign_id, member.customer_id, kind, when)
        if when < member.added_at:
            raise ValidationError([FieldError("at", "out_of_range", f"{when.isoformat()} is before the member was added")])
        with self._s._atomic():
            self._s.campaign_responses.add(response)
            state = _STATE.get(response.kind)
            if state is not None and member.state != "removed" and not (state == "contacted" and member.state != "added"):
                member.state = state
                self._s.campaign_members.update(member)
            if response.kind == "unsubscribed":
                self._withdraw(member, camp.channel)
        return response

    def _withdraw(self, member: CampaignMember, channel: str) -> None:
        """The member's contact (every contact of its customer without one) no longer consents to ``channel``."""
        contacts = (
            [self._s.contacts.get(member.contact_id)]
            if member.contact_id is not None
            else list(self._s.contacts.iter({"customer_id": member.customer_id}))
        )
        for contact in contacts:
            if contact.consent.get(channel) is not False:
                contact.consent = {**contact.consent, channel: False}
                self._s.contacts.update(contact)

    def members(self, campaign: Campaign | str) -> list[CampaignMember]:
        """The members of a campaign the actor may read, by id."""
        camp = self._campaign(campaign)
        return self._s.campaign_members.find({"campaign_id": str(camp.id)})

    def responses(self, campaign: Campaign | str) -> list[CampaignResponse]:
        """The responses of a campaign's members the actor may read, by id."""
        camp = self._campaign(campaign)
        return self._s.campaign_responses.find({"campaign_id": str(camp.id)})

    def kpis(self, where: Mapping[str, Any] | None = None, *, clv: Decimal | int | None = None) -> Report[CampaignKpiRow]:
        """``s.analytics.campaign_kpis``: the KPIs of the campaigns matching ``where``."""
        return self._s.analytics.campaign_kpis(where=where, clv=clv)
