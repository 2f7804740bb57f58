"""Campaign KPIs: response rate, conversion rate, CAC, ROI and CLV:CAC of each campaign.

Definitions (the reference semantics; the SQL pushdown gives the same figures):

- **members**: the campaign's :class:`~pycrm.domain.CampaignMember` rows; ``contacted``: members with a
  ``sent`` response; ``responded``: members with an ``opened``, ``clicked`` or ``replied`` response;
  ``unsubscribed`` / ``bounced``: members with such a response.
- **response_rate** = responded / contacted (4 places; ``None`` when nobody was contacted).
- **touches** of a member: its responses of kind sent, opened, clicked or replied.
- **conversion**: an order (at ``occurred_at``) or a won deal (at ``closed_at``) of the member's customer
  attributed to the campaign: with ``attribution="last"`` (the default) when the member's last touch at or
  before the sale is at most ``window_days`` days before it; with ``"first"`` when the sale is from the
  member's first touch to ``window_days`` days after it. Each campaign credits its own touches: one sale
  touched by two campaigns counts for both (no cross-campaign deduplication).
- **converted**: distinct customers with a conversion; **conversion_rate** = converted / members.
- **revenue**: the attributed sales in the campaign's currency (that of its spend or budget); sales in
  another currency count as conversions but not as revenue; ``None`` for a campaign without any amount.
- **acquired**: converted customers whose first order ever (in any currency) is attributed to the campaign
  (new customers won by it); **cac** = spend / acquired (2 places; ``None`` without spend or acquisitions).
- **roi** = (revenue - spend) / spend (4 places; ``None`` without a spend above zero).
- **clv**: the ``clv`` given (e.g. a fitted model's mean customer value), else the mean revenue per buying
  customer of the orders in the campaign's currency (all orders read); **clv_cac** = clv / cac (2 places).
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from pycrm.analytics._common import entities_of, quantize, ratio
from pycrm.analytics._report import Report
from pycrm.domain import Campaign, CampaignMember, CampaignResponse, Opportunity, Order
from pycrm.errors import FieldError, ValidationError

__all__ = ["CampaignKpiRow", "Sale", "attributed", "campaign_kpis", "campaign_report", "check_clv", "in_window"]


@attrs.frozen
class CampaignKpiRow:
    """The KPIs of one campaign (see the module's definitions)."""

    campaign_id: str
    name: str
    channel: str
    currency: str | None
    members: int
    contacted: int
    responded: int
    unsubscribed: int
    bounced: int
    response_rate: Decimal | None
    conversions: int
    converted: int
    conversion_rate: Decimal | None
    revenue: Decimal | None
    spend: Decimal | None
    acquired: int
    cac: Decimal | None
    roi: Decimal | None
    clv: Decimal | None
    clv_cac: Decimal | None


#: A sale of a customer: (kind "order" / "deal", id, at, amount, currency).
Sale = tuple[str, str, dt.datetime, Decimal, str]
#: A campaign's member counts: (members, contacted, responded, unsubscribed, bounced).
Counts = tuple[int, int, int, int, int]
#: A customer's sale after one of its touches in a campaign: (campaign_id, customer_id, sale, first touch of
#: the customer in the campaign, its last touch at or before the sale).
Candidate = tuple[str, str, Sale, dt.datetime, dt.datetime]


def in_window(campaign: Campaign, first: dt.datetime, last: dt.datetime, at: dt.datetime) -> bool:
    """Whether a sale ``at`` is credited to ``campaign``, given the customer's ``first`` touch in it and its
    ``last`` touch at or before the sale."""
    window = dt.timedelta(days=campaign.window_days)
    if campaign.attribution == "first":
        return first <= at <= first + window
    return last <= at <= last + window


def attributed(campaign: Campaign, touches: Sequence[dt.datetime], at: dt.datetime) -> bool:
    """Whether a sale ``at`` is credited to ``campaign`` given a customer's sorted ``touches`` in it."""
    i = bisect.bisect_right(touches, at)
    return i > 0 and in_window(campaign, touches[0], touches[i - 1], at)


def _currency(c: Campaign) -> str | None:
    money = c.spend if c.spend is not None else c.budget
    return None if money is None else money.currency


def check_clv(clv: Any) -> Decimal | None:
    """The checked ``clv`` argument: a Decimal (or int) >= 0, or None."""
    if clv is None:
        return None
    if isinstance(clv, bool) or not isinstance(clv, (int, Decimal)) or not Decimal(clv).is_finite() or clv < 0:
        raise ValidationError([FieldError("clv", "invalid", f"expected a Decimal >= 0 or None, got {clv!r}")])
    return Decimal(clv)


def campaign_report(
    campaigns: Sequence[Campaign],
    counts: Mapping[str, Counts],
    candidates: Iterable[Candidate],
    first_orders: Mapping[str, dt.datetime],
    mean_revenue: Mapping[str, Decimal],
    clv: Decimal | None,
) -> Report[CampaignKpiRow]:
    """The rows of :func:`campaign_kpis` from each campaign's member counts, the sales that follow a touch
    (with the customer's first and last touch before them), each member customer's first order and the mean
    revenue per buying customer by currency: shared with the SQL pushdown, so both give the same figures."""
    by_id = {str(c.id): c for c in campaigns}
    credited: dict[str, dict[tuple[str, str], Sale]] = {cid: {} for cid in by_id}
    buyers: dict[str, set[str]] = {cid: set() for cid in by_id}
    acquired: dict[str, set[str]] = {cid: set() for cid in by_id}
    for cid, customer, sale, first, last in candidates:
        c = by_id.get(cid)
        if c is None or not in_window(c, first, last, sale[2]):
            continue
        credited[cid][(sale[0], sale[1])] = sale
        buyers[cid].add(customer)
        if sale[0] == "order" and first_orders.get(customer) == sale[2]:
            acquired[cid].add(customer)
    rows = []
    for cid in sorted(by_id, key=lambda k: (by_id[k].name, k)):
        c = by_id[cid]
        n, sent, responded, unsub, bounced = counts.get(cid, (0, 0, 0, 0, 0))
        cur = _currency(c)
        revenue = None if cur is None else sum((s[3] for s in credited[cid].values() if s[4] == cur), Decimal(0))
        spend = None if c.spend is None else c.spend.amount
        won = len(acquired[cid])
        cac = quantize(spend / won, 2) if spend is not None and won else None
        roi = quantize((revenue - spend) / spend, 4) if revenue is not None and spend else None
        value = clv if clv is not None else (mean_revenue.get(cur) if cur is not None else None)
        value = None if value is None else quantize(value, 2)
        clv_cac = quantize(value / cac, 2) if value is not None and cac else None
        rows.append(
            CampaignKpiRow(
                cid,
                c.name,
                c.channel,
                cur,
                n,
                sent,
                responded,
                unsub,
                bounced,
                ratio(responded, sent),
                len(credited[cid]),
                len(buyers[cid]),
                ratio(len(buyers[cid]), n),
                revenue,
                spend,
                won,
                cac,
                roi,
                value,
                clv_cac,
            )
        )
    return Report(CampaignKpiRow, rows, title="Campaign KPIs", x="name", y="roi")


def campaign_kpis(
    campaigns: Iterable[Any],
    members: Iterable[Any],
    responses: Iterable[Any],
    orders: Iterable[Any] = (),
    opportunities: Iterable[Any] = (),
    *,
    clv: Decimal | int | None = None,
) -> Report[CampaignKpiRow]:
    """The KPIs of each campaign (one row each, by name) from its members and their responses, and the
    orders and deals of the members' customers (see the module's definitions).

    >>> from pycrm.domain import Money
    >>> at = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    >>> c = Campaign("Spring", "email", spend=Money("100", "EUR"), id="k1")
    >>> ms = [CampaignMember("k1", who, at, id=f"m{who}") for who in ("a", "b")]
    >>> rs = [CampaignResponse(f"m{who}", "k1", who, kind, at) for who in ("a", "b") for kind in ("sent", "opened")]
    >>> os = [Order("a", at + dt.timedelta(days=3), Money("250", "EUR"), id="o1")]
    >>> r = campaign_kpis([c], ms, rs, os)[0]
    >>> r.response_rate, r.conversion_rate, r.revenue, r.acquired, r.cac, r.roi
    (Decimal('1.0000'), Decimal('0.5000'), Decimal('250'), 1, Decimal('100.00'), Decimal('1.5000'))
    """
    clv_value = check_clv(clv)
    cs = list(entities_of(campaigns, "campaigns", Campaign))
    wanted = {str(c.id) for c in cs}
    owner: dict[str, tuple[str, str]] = {}
    tally: dict[str, list[int]] = {}
    for m in entities_of(members, "members", CampaignMember):
        if m.campaign_id in wanted:
            owner[str(m.id)] = (m.campaign_id, m.customer_id)
    kinds: dict[str, set[str]] = {}
    touches: dict[tuple[str, str], list[dt.datetime]] = {}
    for r in entities_of(responses, "responses", CampaignResponse):
        key = owner.get(r.member_id)
        if key is None:
            continue
        kinds.setdefault(r.member_id, set()).add(r.kind)
        if r.kind in CampaignResponse.TOUCHES:
            touches.setdefault(key, []).append(r.at)
    for mid, (cid, _) in owner.items():
        k = kinds.get(mid, set())
        t = tally.setdefault(cid, [0, 0, 0, 0, 0])
        flags = ("sent" in k, bool(k & set(CampaignResponse.RESPONSES)), "unsubscribed" in k, "bounced" in k)
        for i, flag in enumerate((True, *flags)):
            t[i] += flag
    customers = {customer for _, customer in owner.values()}
    sales: dict[str, list[Sale]] = {}
    first: dict[str, dt.datetime] = {}
    totals: dict[str, tuple[Decimal, set[str]]] = {}
    for o in entities_of(orders, "orders", Order):
        total, who = totals.setdefault(o.amount.currency, (Decimal(0), set()))
        totals[o.amount.currency] = (total + o.amount.amount, who)
        who.add(o.customer_id)
        if o.customer_id in customers:
            sales.setdefault(o.customer_id, []).append(("order", str(o.id), o.occurred_at, o.amount.amount, o.amount.currency))
            if o.customer_id not in first or o.occurred_at < first[o.customer_id]:
                first[o.customer_id] = o.occurred_at
    for d in entities_of(opportunities, "opportunities", Opportunity):
        if d.customer_id in customers and d.closed_at is not None and d.is_won:
            sales.setdefault(d.customer_id, []).append(("deal", str(d.id), d.closed_at, d.amount.amount, d.amount.currency))
    candidates: list[Candidate] = []
    for (cid, customer), times in touches.items():
        times.sort()
        for sale in sales.get(customer, ()):
            i = bisect.bisect_right(times, sale[2])
            if i:
                candidates.append((cid, customer, sale, times[0], times[i - 1]))
    mean = {cur: total / len(who) for cur, (total, who) in totals.items() if who}
    counts = {cid: (t[0], t[1], t[2], t[3], t[4]) for cid, t in tally.items()}
    return campaign_report(cs, counts, candidates, first, mean, clv_value)
