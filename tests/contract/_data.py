"""Sample records shared by the contract tests: one of each kind, every field filled in."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pycrm import (
    Activity,
    Address,
    Attachment,
    Campaign,
    CampaignMember,
    CampaignResponse,
    Contact,
    Customer,
    Interaction,
    Money,
    Opportunity,
    Order,
    Permission,
    Role,
    Survey,
    Task,
    Ticket,
    User,
)

UTC = dt.UTC
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2024, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def full_customer(name: str = "北京华夏科技有限公司") -> Customer:
    return Customer(
        name,
        kind="company",
        emails=["Sales@HuaXia.example", "ops@huaxia.example"],
        phones=["138 0013 8000", "+1 (650) 253-0000"],
        addresses=[
            Address(street="建国门外大街1号", city="北京", postcode="100004", region="北京市", country="CN"),
            {"street": "1600 Amphitheatre Pkwy", "city": "Mountain View", "country": "US"},
        ],
        country="CN",
        category="Manufacturing/Electronics",
        status="active",
        owner_id="user-1",
        team_id="team-north",
        tags=frozenset({"vip", "重点客户"}),
        custom={"tier": "gold", "seats": 42, "notes": ["续约", "upsell"], "flags": {"portal": True, "x": None}},
    )


def children(customer_id: str) -> dict[str, object]:
    """One record of every kind that points at a customer, plus a task and a user, by repository name."""
    opp = Opportunity(
        customer_id,
        "年度采购 2025",
        Money("1234567.8901", "CNY"),
        expected_close=dt.date(2025, 6, 30),
        owner_id="user-1",
        probability_override=Decimal("0.33"),
    )
    opp.move_to("proposal", at=T0, by="user-1")
    opp.lose("price too high", at=T0 + dt.timedelta(days=3), by="user-2")
    ticket = Ticket(
        customer_id,
        "发票抬头错误",
        description="Invoice title wrong\n第二行 😀",
        priority="high",
        assignee_id="agent-7",
        category="硬件/打印机",
        channel="chat",
    )
    ticket.move_to("open", at=T0)
    ticket.move_to("resolved", at=T0 + dt.timedelta(hours=5))
    return {
        "contacts": Contact(
            customer_id,
            "梅梅",
            "韩",
            emails=["hmm@huaxia.example"],
            phones=["+86 139 1234 5678"],
            title="采购经理",
            is_primary=True,
            consent={"email": True, "sms": False},
        ),
        "opportunities": opp,
        "tickets": ticket,
        "interactions": Interaction(
            customer_id,
            "meeting",
            T0.astimezone(SHANGHAI),
            subject="Kick-off 启动会",
            body="Agenda:\n1. 报价\n2. 交付",
            user_id="user-1",
            duration=3725,
            direction="outbound",
            channel="visit",
            outcome="报价已发 quote sent",
        ),
        "orders": Order(customer_id, T0, Money("99.95", "USD"), order_no="SO-2024-0001"),
        "surveys": Survey(
            customer_id,
            "nps",
            T0.astimezone(SHANGHAI),
            score=9,
            comment="Fast fix 很快 😀\nthanks",
            user_id="agent-7",
            answered_at=T0 + dt.timedelta(hours=7),
        ),
        "campaigns": Campaign(
            "春季活动 Spring",
            "sms",
            start=dt.date(2024, 3, 1),
            end=dt.date(2024, 3, 31),
            budget=Money("5000.50", "CNY"),
            spend=Money("1234.5678", "CNY"),
            status="active",
            owner_id="user-1",
            window_days=14,
            attribution="first",
            id=f"camp-{customer_id}",
        ),
        "campaign_members": CampaignMember(
            f"camp-{customer_id}", customer_id, T0.astimezone(SHANGHAI), state="responded", id=f"memb-{customer_id}"
        ),
        "campaign_responses": CampaignResponse(
            f"memb-{customer_id}", f"camp-{customer_id}", customer_id, "clicked", T0 + dt.timedelta(hours=2)
        ),
        "activities": Activity(
            customer_id,
            "web_visit",
            T0.astimezone(SHANGHAI),
            {"path": "/定价/pricing", "seconds": 42, "ratio": 0.5, "returning": True, "ref": None},
            source="web",
        ),
        "attachments": Attachment(
            customer_id,
            "customers",
            customer_id,
            "合同 contract.pdf",
            "application/pdf",
            1234,
            "ab" * 32,
            uploaded_by="user-1",
        ),
        "tasks": Task("Call back 回电", T0 + dt.timedelta(days=1), assignee_id="user-1", related_id=customer_id),
        "users": User(
            "韩梅梅",
            "HMM@HuaXia.example",
            roles=["sales", Role("auditor", [Permission("orders", "read", "team"), ("customers", "export", "all")])],
            team_id="team-north",
        ),
    }
