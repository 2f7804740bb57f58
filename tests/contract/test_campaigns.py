"""Campaigns on every adapter: members from a selection honouring consent, responses, KPIs on a hand-computed
fixture (the store's pushdown equal to the pure function), scoping, erasure, merge and bad input."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

import pycrm
from pycrm import Campaign, CampaignMember, CampaignResponse, Contact, Customer, Opportunity, Order, User
from pycrm.analytics import campaign_kpis
from pycrm.automation import CampaignMemberAdded
from pycrm.domain import Money
from pycrm.errors import NotFound, ValidationError

T0 = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)
REP = User("Rep", "rep@example.com", roles=["sales"], team_id="t1", id="u1")


def day(n: float) -> dt.datetime:
    return T0 + dt.timedelta(days=n)


class Fixture:
    """Customers A, B (the rep's, u1) and C (u2) consent to e-mail, D refuses it; A also consents to SMS.

    Spring (e-mail, last touch, 30 days, spend 100 EUR) has A, B, C; Autumn (SMS, first touch, 7 days,
    budget 50 EUR, no spend) has A. See each test for the figures worked out by hand."""

    def __init__(self, crm: pycrm.CRM):
        with crm.session() as s:
            self.a = s.customers.add(Customer("A", owner_id="u1"))
            self.b = s.customers.add(Customer("B", owner_id="u1"))
            self.c = s.customers.add(Customer("C", owner_id="u2"))
            self.d = s.customers.add(Customer("D", owner_id="u1"))
            self.ca = s.contacts.add(Contact(str(self.a.id), "Ann", "A", consent={"email": True, "sms": True}))
            s.contacts.add(Contact(str(self.b.id), "Bob", "B", consent={"email": True}))
            s.contacts.add(Contact(str(self.c.id), "Cy", "C", consent={"email": True}))
            s.contacts.add(Contact(str(self.d.id), "Di", "D", consent={"email": False}))
            self.spring = s.campaigns.add(Campaign("Spring", "email", spend=Money("100", "EUR"), owner_id="u1"))
            self.autumn = s.campaigns.add(
                Campaign("Autumn", "sms", budget=Money("50", "EUR"), attribution="first", window_days=7, owner_id="u1")
            )
            added = s.campaigns.add_members(self.spring, where={"name": {"in": ["A", "B", "C", "D"]}}, at=T0)
            self.members = {m.customer_id: m for m in added}
            self.autumn_members = s.campaigns.add_members(self.autumn, customer_ids=[str(self.a.id)], at=T0)
            m = {k: str(v.id) for k, v in self.members.items()}
            a, b, c = str(self.a.id), str(self.b.id), str(self.c.id)
            for who, kind, at in (
                (a, "sent", day(1)),
                (a, "opened", day(2)),
                (b, "sent", day(1)),
                (b, "bounced", day(1)),
                (c, "sent", day(1)),
                (c, "clicked", day(3)),
                (c, "unsubscribed", day(4)),
            ):
                s.campaigns.respond(m[who], kind, at=at)
            s.campaigns.respond(str(self.autumn_members[0].id), "sent", at=day(5))
            s.orders.add_many(
                [
                    Order(a, day(10), Money("200", "EUR")),  # 8 days after A's last touch: Spring; Autumn's first + 5
                    Order(a, day(50), Money("300", "EUR")),  # 48 days after: nobody's
                    Order(b, day(-10), Money("50", "EUR")),  # before any touch: B is not new
                    Order(b, day(5), Money("80", "USD")),  # Spring's, in another currency: no revenue
                ]
            )
            deal = s.opportunities.add(Opportunity(c, "Big", Money("1000", "EUR"), owner_id="u2"))
            deal.move_to("closed_won", at=day(20))  # 17 days after C's click
            s.opportunities.update(deal)


@pytest.fixture
def fx(crm: pycrm.CRM) -> Fixture:
    return Fixture(crm)


def _pure(s: Any) -> Any:
    return campaign_kpis(
        s.campaigns.find(),
        s.campaign_members.find(),
        s.campaign_responses.find(),
        s.orders.find(),
        s.opportunities.find(),
    )


def test_members_honour_consent_per_channel(crm: pycrm.CRM, fx: Fixture) -> None:
    """D refused e-mail: not a member; only A consents to SMS."""
    assert sorted(fx.members) == sorted(str(x.id) for x in (fx.a, fx.b, fx.c))
    assert [m.customer_id for m in fx.autumn_members] == [str(fx.a.id)]
    assert fx.members[str(fx.a.id)].contact_id == fx.ca.id
    with crm.session() as s:
        again = s.campaigns.add_members(fx.spring, where={"name": {"in": ["A", "B"]}}, at=T0)
        assert again == []  # already members
        states = {m.customer_id: m.state for m in s.campaigns.members(fx.spring)}
    assert states == {str(fx.a.id): "responded", str(fx.b.id): "contacted", str(fx.c.id): "removed"}


def test_a_campaign_without_consent_data_is_refused(crm: pycrm.CRM, fx: Fixture) -> None:
    with crm.session() as s:
        call = s.campaigns.add(Campaign("Call", "phone"))
        with pytest.raises(ValidationError) as exc:
            s.campaigns.add_members(call, where={})
        assert exc.value.fields == ["channel"] and "no_consent_data" in [e.code for e in exc.value.errors]
        assert "consent data" in str(exc.value) and "'phone'" in str(exc.value)
        assert s.campaign_members.count({"campaign_id": str(call.id)}) == 0


def test_unsubscribing_withdraws_the_channel_consent(crm: pycrm.CRM, fx: Fixture) -> None:
    with crm.session() as s:
        cy = s.contacts.find({"customer_id": str(fx.c.id)})[0]
        assert cy.consent == {"email": False}
        reachable = sorted(x.customer_id for x in s.personal.marketing_list("email"))
        assert reachable == sorted([str(fx.a.id), str(fx.b.id)])
        later = s.campaigns.add(Campaign("Later", "email"))
        added = s.campaigns.add_members(later, where={}, at=T0)
    assert sorted(m.customer_id for m in added) == sorted([str(fx.a.id), str(fx.b.id)])


def test_kpis_on_the_hand_computed_fixture(crm: pycrm.CRM, fx: Fixture) -> None:
    """Spring: 3 members, all sent, A and C responded (2/3), C unsubscribed, B bounced; conversions A's 200 EUR,
    B's 80 USD and C's 1000 EUR deal (3 customers of 3); revenue 1200 EUR; acquired A (first order after the
    touch) -> CAC 100; ROI (1200 - 100) / 100 = 11; CLV = EUR revenue per buying customer (550 / 2 = 275),
    CLV:CAC 2.75. Autumn: A sent, no response; A's 200 EUR 5 days after the first touch (window 7); no spend."""
    with crm.session() as s:
        got = s.analytics.campaign_kpis()
        pure = _pure(s)
    assert list(got) == list(pure)
    autumn, spring = got
    assert (spring.name, spring.members, spring.contacted, spring.responded, spring.unsubscribed, spring.bounced) == (
        "Spring",
        3,
        3,
        2,
        1,
        1,
    )
    assert spring.response_rate == Decimal("0.6667")
    assert (spring.conversions, spring.converted, spring.conversion_rate) == (3, 3, Decimal("1.0000"))
    assert (spring.currency, spring.revenue, spring.spend, spring.acquired) == ("EUR", Decimal(1200), Decimal(100), 1)
    assert (spring.cac, spring.roi, spring.clv, spring.clv_cac) == (
        Decimal("100.00"),
        Decimal("11.0000"),
        Decimal("275.00"),
        Decimal("2.75"),
    )
    assert (autumn.name, autumn.members, autumn.contacted, autumn.responded, autumn.response_rate) == (
        "Autumn",
        1,
        1,
        0,
        Decimal("0.0000"),
    )
    assert (autumn.conversions, autumn.revenue, autumn.acquired, autumn.cac, autumn.roi, autumn.clv_cac) == (
        1,
        Decimal(200),
        1,
        None,
        None,
        None,
    )
    with crm.session() as s:
        fitted = s.campaigns.kpis({"name": "Spring"}, clv=Decimal(500))
    assert [(r.name, r.clv, r.clv_cac) for r in fitted] == [("Spring", Decimal("500.00"), Decimal("5.00"))]


def test_last_touch_and_first_touch_windows(crm: pycrm.CRM, fx: Fixture) -> None:
    """A new order of A 9 days after Autumn's first touch is outside its 7-day window; 28 days after A's last
    Spring touch it is inside Spring's 30."""
    with crm.session() as s:
        s.orders.add(Order(str(fx.a.id), day(14) - dt.timedelta(hours=1), Money("5", "EUR")))
        s.orders.add(Order(str(fx.a.id), day(30), Money("7", "EUR")))
        rows = {r.name: r for r in s.analytics.campaign_kpis()}
        assert list(rows.values()) == list(_pure(s))
    assert rows["Autumn"].revenue == Decimal(200)
    assert rows["Spring"].revenue == Decimal(1212)


def test_another_owners_members_and_responses_are_invisible(crm: pycrm.CRM, fx: Fixture) -> None:
    """The rep sees A and B only: 2 members, B bounced, A responded; conversions A's 200 and B's 80 USD;
    revenue 200 EUR, ROI (200 - 100) / 100 = 1; C's deal and membership count for nothing."""
    c_member = str(fx.members[str(fx.c.id)].id)
    with crm.session(actor=REP) as s:
        assert sorted(m.customer_id for m in s.campaigns.members(fx.spring)) == sorted([str(fx.a.id), str(fx.b.id)])
        assert all(r.customer_id != str(fx.c.id) for r in s.campaigns.responses(fx.spring))
        with pytest.raises(NotFound):
            s.campaign_members.get(c_member)
        with pytest.raises(NotFound):
            s.campaigns.respond(c_member, "replied", at=day(6))
        spring = next(r for r in s.analytics.campaign_kpis() if r.name == "Spring")
    assert (spring.members, spring.responded, spring.bounced, spring.conversions, spring.revenue) == (2, 1, 1, 2, Decimal(200))
    assert spring.roi == Decimal("1.0000")
    with crm.session() as s:  # the refused response wrote nothing
        assert s.campaign_responses.count({"member_id": c_member}) == 3


def test_an_erased_person_leaves_every_campaign(crm: pycrm.CRM, fx: Fixture) -> None:
    a = str(fx.a.id)
    with crm.session() as s:
        exported = s.personal.export(a)
        assert len(exported["campaign_members"]) == 2 and len(exported["campaign_responses"]) == 3
        s.personal.erase(a)
        gone = s.campaign_members.find({"customer_id": a})
        assert [(m.state, m.contact_id) for m in gone] == [("removed", None), ("removed", None)]
        assert s.campaign_members.count({"customer_id": a, "state": {"ne": "removed"}}) == 0
        assert all(x.customer_id != a for x in s.personal.marketing_list("sms"))
        later = s.campaigns.add(Campaign("After", "sms"))
        with pytest.raises(ValidationError):  # nobody left with SMS consent data
            s.campaigns.add_members(later, customer_ids=[a], at=T0)


def test_merge_moves_members_and_responses_and_unmerge_brings_them_back(crm: pycrm.CRM, fx: Fixture) -> None:
    a, b = str(fx.a.id), str(fx.b.id)
    with crm.session() as s:
        record = s.customers.merge(a, b)
        assert s.campaign_members.count({"customer_id": b}) == 0
        assert s.campaign_members.count({"customer_id": a}) == 3
        assert s.campaign_responses.count({"customer_id": a}) == 5
        s.customers.unmerge(record.id)
        assert s.campaign_members.count({"customer_id": b}) == 1
        assert s.campaign_responses.count({"customer_id": b}) == 2


def test_each_member_added_is_an_event_in_the_outbox(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(outbox=True)
    with crm.session() as s:
        x = s.customers.add(Customer("X"))
        s.contacts.add(Contact(str(x.id), "Xi", "X", consent={"email": True}))
        k = s.campaigns.add(Campaign("Reach", "email"))
        added = s.campaigns.add_members(k, where={})
    events = [e.event for e in crm.outbox.entries() if isinstance(e.event, CampaignMemberAdded)]
    assert [(e.entity, e.entity_id) for e in events] == [("campaign_members", added[0].id)]


def test_bad_input_is_named(crm: pycrm.CRM, fx: Fixture) -> None:
    with pytest.raises(ValidationError) as exc:
        Campaign("", "fax", window_days=-1, attribution="middle")
    assert exc.value.fields == ["name", "channel", "window_days", "attribution"]
    with pytest.raises(ValidationError) as exc:
        Campaign("X", "email", budget=Money("5", "EUR"), spend=Money("5", "USD"))
    assert exc.value.fields == ["budget", "spend"]  # they must share one currency
    with pytest.raises(ValidationError) as exc:
        CampaignResponse("m", "k", "c", "liked", T0)
    assert exc.value.fields == ["kind"]
    with crm.session() as s:
        member = str(fx.members[str(fx.a.id)].id)
        with pytest.raises(ValidationError) as exc:
            s.campaigns.respond(member, "sent", at=T0 - dt.timedelta(days=1))
        assert exc.value.fields == ["at"]
        with pytest.raises(NotFound):
            s.campaigns.respond("nope", "sent")
        with pytest.raises(ValidationError) as exc:
            s.campaigns.add_members(fx.spring)
        assert exc.value.fields == ["segment"]
        with pytest.raises(ValidationError) as exc:
            s.campaign_members.add(CampaignMember("nope", str(fx.a.id), T0))
        assert exc.value.fields == ["campaign_id"]
        with pytest.raises(ValidationError) as exc:
            s.analytics.campaign_kpis(clv=Decimal(-1))
        assert exc.value.fields == ["clv"]
        assert s.campaign_responses.count() == 8  # nothing half-written


def test_dormant_customers_join_the_reactivation_campaign(open_crm: Callable[..., pycrm.CRM]) -> None:
    """A customer with no order for 90 days (and a consenting contact) joins; one who bought lately, or never
    consented, does not; each member added is a CampaignMemberAdded event; a second run adds nobody."""
    from pycrm.automation import Reactivation

    crm = open_crm(outbox=True)
    with crm.session() as s:
        old = s.customers.add(Customer("Old", created_at=day(-400)))
        fresh = s.customers.add(Customer("Fresh", created_at=day(-400)))
        silent = s.customers.add(Customer("Silent", created_at=day(-400)))
        s.contacts.add(Contact(str(old.id), "Ole", "O", consent={"email": True}))
        s.contacts.add(Contact(str(fresh.id), "Fra", "F", consent={"email": True}))
        s.contacts.add(Contact(str(silent.id), "Sil", "S"))
        s.orders.add(Order(str(old.id), day(-200), Money("10", "EUR")))
        s.orders.add(Order(str(fresh.id), day(-5), Money("10", "EUR")))
        k = s.campaigns.add(Campaign("We miss you", "email"))
    r = Reactivation(crm, str(k.id), days=90).install()
    for _ in range(2):
        crm.run_due([r.rule], now=T0)
        crm.dispatch()
    with crm.session() as s:
        members = s.campaigns.members(k)
    assert [m.customer_id for m in members] == [str(old.id)]
    added = [e.event for e in crm.outbox.entries() if isinstance(e.event, CampaignMemberAdded)]
    assert [e.entity_id for e in added] == [members[0].id]
    with pytest.raises(NotFound):
        Reactivation(crm, "no-such-campaign")


def test_members_from_an_rfm_segment(crm: pycrm.CRM) -> None:
    """The customers of one RFM segment as of a date (intersected with a where filter when given) that
    consented to the channel; a segment name the map does not know is refused."""
    with crm.session() as s:
        for n, (orders, consent) in enumerate([(8, True), (7, True), (1, True), (6, False)]):
            c = s.customers.add(Customer(f"S{n}", id=f"s{n}"))
            s.contacts.add(Contact(str(c.id), "P", f"{n}", consent={"email": consent}))
            s.orders.add_many([Order(str(c.id), day(-k * 7 - n), Money(str(100 * (k + 1)), "EUR")) for k in range(orders)])
        segments = {x.customer_id: x.segment for x in s.analytics.rfm(as_of=T0)}
        name = segments["s0"]
        k = s.campaigns.add(Campaign("Segment", "email"))
        added = s.campaigns.add_members(k, segment=name, as_of=T0, at=T0)
        wanted = sorted(c for c, g in segments.items() if g == name and c != "s3")  # s3 refused e-mail
        assert sorted(m.customer_id for m in added) == wanted and "s0" in wanted
        other = s.campaigns.add(Campaign("Segment S0", "email"))
        only = s.campaigns.add_members(other, segment=name, as_of=T0, where={"name": "S0"}, at=T0)
        assert [m.customer_id for m in only] == ["s0"]
        with pytest.raises(ValidationError) as exc:
            s.campaigns.add_members(k, segment="No Such Segment", as_of=T0)
        assert exc.value.fields == ["name"]
