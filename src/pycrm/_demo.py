"""``pycrm demo``: a believable sample CRM, generated from a seed, stored in SQLite, and a short report.

The sample is deterministic: the same seed, size and ``as_of`` date give the same records (ids
included) and the same report. Nothing touches the network. A few near-duplicate customers are
planted on purpose, for ``pycrm dedup``.

>>> sample = generate(seed=7, customers=30)
>>> len(sample.customers), len(sample.duplicates) > 0
(30, True)
>>> generate(seed=7, customers=30).customers[0] == sample.customers[0]
True
>>> import pycrm
>>> with pycrm.open("memory://", default_region="CN") as crm:
...     added = save(crm, sample)
...     text = report(crm, as_of=sample.as_of)
>>> added
{'users': 10, 'products': 10, 'customers': 30, 'contacts': 35, 'opportunities': 29, 'tickets': 27, 'interactions': 59, \
'orders': 197, 'surveys': 26, 'campaigns': 1, 'campaign_members': 5, 'campaign_responses': 7, 'tasks': 7}
>>> "Top 5 products by revenue" in text
True
>>> "Top 3 association rules by lift" in text and "Barcode scanner 扫码枪" in text
True
>>> "Weighted forecast of open deals" in text and "Top 5 customers" in text and "RFM segments" in text
True
>>> "Spring re-engagement (email): 5 members, response rate 20.0%, conversion rate 40.0%" in text
True
>>> "Duplicate customers" in text
True
>>> "Data quality of the 30 customers" in text and "completeness: emails" in text
True
>>> "Revenue forecast for the next quarter" in text
True
>>> "Service levels" in text and "due Sat 2026-05-09 10:00 (a make-up working day" in text
True
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import math
import random
import textwrap
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import attrs
import phonenumbers

from pycrm._files import replacing
from pycrm.domain import (
    DEFAULT_PIPELINE,
    Address,
    Campaign,
    CampaignMember,
    CampaignResponse,
    Contact,
    Customer,
    CustomField,
    EmailAddress,
    Interaction,
    Money,
    Opportunity,
    Order,
    OrderLine,
    PhoneNumber,
    Product,
    Survey,
    Task,
    Ticket,
    TicketPriority,
    TicketStatus,
    User,
    default_region,
)

__all__ = [
    "DEFAULT_AS_OF",
    "DEFAULT_CUSTOMERS",
    "DEFAULT_DB",
    "DEFAULT_SEED",
    "HELP",
    "Sample",
    "configure",
    "generate",
    "register",
    "report",
    "run",
    "save",
]

HELP = "generate a believable sample CRM (seeded, offline) into SQLite and print a short report"

DEFAULT_DB = "pycrm-demo.db"
DEFAULT_SEED = 42
DEFAULT_CUSTOMERS = 200
#: The sample's "today": fixed, so that one seed always gives the same data and report.
DEFAULT_AS_OF = dt.date(2026, 6, 30)
MAX_CUSTOMERS = 100_000
CURRENCY = "CNY"

SOURCES = ("website", "referral", "trade_show", "cold_call", "wechat")
#: Custom field definitions of the demo store (hosts add fields without schema changes).
CUSTOM_FIELDS = {
    "customers": (CustomField("source", "choice", choices=SOURCES),),
}

T = TypeVar("T")

# ---------------------------------------------------------------------------------------------
# Vocabulary. Chinese names with their pinyin (for e-mail addresses), English names, places.
# ---------------------------------------------------------------------------------------------

# The vocabulary stays in compact rows.
# fmt: off
CN_SURNAMES = [
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"), ("赵", "zhao"),
    ("黄", "huang"), ("周", "zhou"), ("吴", "wu"), ("徐", "xu"), ("孙", "sun"), ("马", "ma"), ("朱", "zhu"),
    ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("林", "lin"), ("罗", "luo"), ("高", "gao"), ("郑", "zheng"),
    ("梁", "liang"), ("谢", "xie"), ("宋", "song"), ("唐", "tang"), ("韩", "han"), ("冯", "feng"), ("邓", "deng"),
]
CN_GIVEN = [
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("秀英", "xiuying"), ("敏", "min"), ("静", "jing"), ("丽", "li"),
    ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"), ("杰", "jie"),
    ("娟", "juan"), ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀兰", "xiulan"), ("霞", "xia"),
    ("平", "ping"), ("刚", "gang"), ("婷", "ting"), ("浩然", "haoran"), ("子涵", "zihan"), ("雨桐", "yutong"),
    ("思远", "siyuan"), ("欣怡", "xinyi"), ("俊杰", "junjie"), ("梓萱", "zixuan"), ("建国", "jianguo"),
]
CN_BRANDS = [
    ("星辰", "xingchen"), ("华信", "huaxin"), ("鼎盛", "dingsheng"), ("瑞丰", "ruifeng"), ("金桥", "jinqiao"),
    ("博远", "boyuan"), ("天成", "tiancheng"), ("恒通", "hengtong"), ("锦程", "jincheng"), ("佳禾", "jiahe"),
    ("新希望", "xinxiwang"), ("东方", "dongfang"), ("宏达", "hongda"), ("创新", "chuangxin"), ("万象", "wanxiang"),
    ("远航", "yuanhang"), ("云帆", "yunfan"), ("泰和", "taihe"), ("安信", "anxin"), ("美佳", "meijia"),
    ("聚源", "juyuan"), ("汇丰源", "huifengyuan"), ("青禾", "qinghe"), ("明远", "mingyuan"),
]
CN_INDUSTRIES = [
    ("贸易", "trading", "Wholesale/Trading"), ("科技", "tech", "Technology/Software"),
    ("电子", "electronics", "Manufacturing/Electronics"), ("食品", "foods", "Wholesale/Food"),
    ("服饰", "apparel", "Retail/Apparel"), ("物流", "logistics", "Services/Logistics"),
    ("医疗器械", "medical", "Healthcare/Devices"), ("文化传媒", "media", "Services/Media"),
    ("电子商务", "ecommerce", "Retail/Online"), ("连锁超市", "mart", "Retail/Stores"),
    ("纺织", "textiles", "Manufacturing/Textiles"), ("餐饮管理", "catering", "Hospitality/Restaurants"),
]
CN_COMPANY_SUFFIXES = ["有限公司", "有限公司", "有限公司", "股份有限公司", "有限责任公司"]

#: city, region, phone area code, postcode prefix, districts, roads
CN_CITIES = [
    ("上海", "上海市", "021", "200", ["浦东新区", "徐汇区", "静安区", "闵行区"], ["世纪大道", "淮海中路", "南京西路", "虹桥路"]),
    ("北京", "北京市", "010", "100", ["朝阳区", "海淀区", "东城区", "丰台区"], ["建国路", "中关村大街", "东长安街", "西三环路"]),
    ("深圳", "广东省", "0755", "518", ["南山区", "福田区", "宝安区"], ["深南大道", "科技园路", "福华路"]),
    ("广州", "广东省", "020", "510", ["天河区", "越秀区", "海珠区"], ["天河路", "环市东路", "江南大道"]),
    ("杭州", "浙江省", "0571", "310", ["西湖区", "滨江区", "余杭区"], ["文三路", "江南大道", "文一西路"]),
    ("成都", "四川省", "028", "610", ["武侯区", "锦江区", "高新区"], ["人民南路", "天府大道", "红星路"]),
    ("苏州", "江苏省", "0512", "215", ["工业园区", "姑苏区", "吴中区"], ["星湖街", "人民路", "东吴北路"]),
    ("南京", "江苏省", "025", "210", ["鼓楼区", "玄武区", "建邺区"], ["中山路", "北京东路", "江东中路"]),
    ("武汉", "湖北省", "027", "430", ["江汉区", "武昌区", "洪山区"], ["解放大道", "中南路", "珞喻路"]),
]
CN_MOBILE_PREFIXES = [
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155", "156", "157",
    "158", "159", "176", "177", "180", "181", "185", "186", "187", "188", "189", "199",
]

EN_FIRST = [
    "James", "Olivia", "Liam", "Emma", "Noah", "Ava", "William", "Sophia", "Oliver", "Isabella", "Henry",
    "Mia", "George", "Amelia", "Jack", "Charlotte", "Thomas", "Emily", "Daniel", "Grace", "Samuel", "Chloe",
]
EN_LAST = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Taylor", "Clarke",
    "Walker", "Wright", "Thompson", "White", "Hughes", "Edwards", "Green", "Hall", "Wood", "Harris", "Lewis",
]
EN_BRANDS = [
    "Northwind", "Blue Harbor", "Redwood", "Silverline", "Brightstone", "Oakfield", "Summit", "Pioneer",
    "Greenway", "Harbor Point", "Kestrel", "Lakeside", "Ironbridge", "Westbrook", "Copperleaf", "Evergreen",
    "Highgate", "Maple & Finch", "Stonegate", "Clearwater",
]
EN_INDUSTRIES = [
    ("Trading", "Wholesale/Trading"), ("Software", "Technology/Software"), ("Electronics", "Manufacturing/Electronics"),
    ("Foods", "Wholesale/Food"), ("Outfitters", "Retail/Apparel"), ("Logistics", "Services/Logistics"),
    ("Medical", "Healthcare/Devices"), ("Media", "Services/Media"), ("Online", "Retail/Online"),
    ("Markets", "Retail/Stores"),
]
US_SUFFIXES = ["Inc.", "Inc.", "LLC", "Corp."]
GB_SUFFIXES = ["Ltd", "Ltd", "Limited", "plc"]
#: city, region, phone area code (US) or drama-range prefix (GB), postcodes, streets
US_CITIES = [
    ("San Francisco", "CA", "415", ["94103", "94107", "94110"], ["Market Street", "Mission Street", "Folsom Street"]),
    ("New York", "NY", "212", ["10001", "10013", "10022"], ["Broadway", "Madison Avenue", "Hudson Street"]),
    ("Chicago", "IL", "312", ["60601", "60607", "60654"], ["Wacker Drive", "Michigan Avenue", "State Street"]),
    ("Boston", "MA", "617", ["02108", "02110", "02116"], ["Boylston Street", "Congress Street", "Summer Street"]),
    ("Seattle", "WA", "206", ["98101", "98104", "98109"], ["Pike Street", "2nd Avenue", "Westlake Avenue"]),
    ("Austin", "TX", "512", ["78701", "78702", "78704"], ["Congress Avenue", "Lamar Boulevard", "6th Street"]),
]
GB_CITIES = [
    ("London", "England", "020 7946", ["EC1A 1BB", "SE1 9SG", "W1D 3QF"], ["Baker Street", "Old Street", "Borough High Street"]),
    ("Manchester", "England", "0161 496", ["M1 1AE", "M2 5DB", "M4 1HN"], ["Deansgate", "Oxford Road", "Portland Street"]),
    ("Birmingham", "England", "0121 496", ["B1 1BB", "B2 4QA", "B3 2PW"], ["Broad Street", "Colmore Row", "New Street"]),
    ("Leeds", "England", "0113 496", ["LS1 4AP", "LS2 7EY"], ["Park Row", "Briggate", "Wellington Street"]),
    ("Edinburgh", "Scotland", "0131 496", ["EH1 1YZ", "EH2 2ER", "EH3 9WJ"], ["Princes Street", "George Street", "Leith Walk"]),
    ("Bristol", "England", "0117 496", ["BS1 4DJ", "BS1 5TR"], ["Park Street", "Queen Square", "Baldwin Street"]),
]
GB_MOBILE_PREFIXES = ["07700", "07711", "07722", "07800", "07811", "07900", "07911", "07944", "07955"]

TAGS = ["vip", "key-account", "reseller", "newsletter", "wechat", "trade-show-2025", "referral", "price-sensitive"]

CN_TITLES = ["总经理", "采购经理", "财务主管", "运营总监", "IT经理", "行政主管"]
EN_TITLES = ["CEO", "Purchasing Manager", "Head of Operations", "Finance Director", "IT Manager", "Office Manager"]

PRODUCTS_CN = ["ERP 年度订阅", "仓储扫码枪 40 台", "门店收银系统升级", "年度框架采购协议", "CRM 实施服务", "电商平台对接"]
PRODUCTS_EN = ["ERP annual subscription", "Warehouse scanners (40 units)", "POS upgrade", "Framework agreement",
               "CRM rollout services", "Marketplace integration"]
PRODUCTS_PERSON_CN = ["会员年费", "家用净水器", "高级售后服务包", "定制礼品套装"]
PRODUCTS_PERSON_EN = ["Annual membership", "Home water filter", "Premium support plan", "Custom gift hamper"]
LOSS_REASONS = ["price too high", "chose a competitor", "no budget this year", "project cancelled", "no decision"]

TICKETS_CN = ["发票抬头需要修改", "订单未收到", "系统登录失败", "收货时发现包装破损", "申请增值税专用发票",
              "退换货咨询", "数据导出报错", "账号权限调整"]
TICKETS_EN = ["Invoice address needs changing", "Order not received", "Login fails after password reset",
              "Item damaged on delivery", "Request for a VAT invoice", "Return and exchange question",
              "Export to Excel fails", "Add a user to our account"]
#: The category of each ticket subject above (the same position in both lists).
TICKET_CATEGORIES = ["Billing/Invoice", "Delivery/Missing", "Account/Login", "Delivery/Damaged", "Billing/Invoice",
                     "Delivery/Returns", "Software/Export", "Account/Access"]
TICKET_CHANNELS = {"phone": 30, "email": 30, "web": 20, "chat": 15, "visit": 5}
INTERACTIONS = {
    "call": ["电话回访", "Follow-up call", "报价沟通", "Pricing call"],
    "email": ["发送报价单", "Sent proposal", "Sent product brochure", "合同条款确认"],
    "meeting": ["需求调研会议", "Quarterly business review", "Demo meeting"],
    "note": ["客户关注交期", "Prefers WeChat over e-mail", "Budget cycle starts in Q1"],
    "sms": ["发货通知", "Delivery reminder"],
    "visit": ["上门拜访", "On-site visit", "工厂参观"],
}
INTERACTION_WEIGHTS = {"call": 30, "email": 35, "meeting": 10, "note": 10, "sms": 5, "visit": 10}
# fmt: on

# ---------------------------------------------------------------------------------------------
# The sample
# ---------------------------------------------------------------------------------------------


@attrs.define
class Sample:
    """Everything ``generate`` made, ready for ``add_many``; ``duplicates`` lists the planted (original, copy) ids."""

    seed: int
    as_of: dt.date
    users: list[User] = attrs.field(factory=list)
    customers: list[Customer] = attrs.field(factory=list)
    contacts: list[Contact] = attrs.field(factory=list)
    opportunities: list[Opportunity] = attrs.field(factory=list)
    tickets: list[Ticket] = attrs.field(factory=list)
    interactions: list[Interaction] = attrs.field(factory=list)
    orders: list[Order] = attrs.field(factory=list)
    products: list[Product] = attrs.field(factory=list)
    tasks: list[Task] = attrs.field(factory=list)
    surveys: list[Survey] = attrs.field(factory=list)
    campaigns: list[Campaign] = attrs.field(factory=list)
    campaign_members: list[CampaignMember] = attrs.field(factory=list)
    campaign_responses: list[CampaignResponse] = attrs.field(factory=list)
    duplicates: list[tuple[str, str]] = attrs.field(factory=list)

    def repositories(self) -> list[tuple[str, list[Any]]]:
        """(repository name, records) in an order that satisfies references."""
        return [
            ("users", self.users),
            ("products", self.products),
            ("customers", self.customers),
            ("contacts", self.contacts),
            ("opportunities", self.opportunities),
            ("tickets", self.tickets),
            ("interactions", self.interactions),
            ("orders", self.orders),
            ("surveys", self.surveys),
            ("campaigns", self.campaigns),
            ("campaign_members", self.campaign_members),
            ("campaign_responses", self.campaign_responses),
            ("tasks", self.tasks),
        ]


@attrs.define
class _Profile:
    """What the generator knows about a customer beyond the entity (not stored)."""

    customer: Customer
    slug: str
    cn: bool
    since: dt.datetime
    area: str = ""
    activity: float = 1.0


class _Gen:
    def __init__(self, seed: int, as_of: dt.date):
        self.rng = random.Random(seed)
        self.now = dt.datetime.combine(as_of, dt.time(10, 0), tzinfo=dt.UTC)
        self.start = self.now - dt.timedelta(days=730)
        self.phones: set[str] = set()
        self.names: set[str] = set()
        self.slugs: set[str] = set()

    # ---- small helpers ----
    def pick(self, items: Sequence[T]) -> T:
        return items[self.rng.randrange(len(items))]

    def weighted(self, options: dict[str, int]) -> str:
        return self.rng.choices(list(options), weights=list(options.values()))[0]

    def digits(self, n: int) -> str:
        return "".join(str(self.rng.randrange(10)) for _ in range(n))

    def new_id(self, when: dt.datetime) -> str:
        """An id shaped like ``pycrm.domain.new_id``'s (48 bits of milliseconds, 80 bits of the seeded generator)."""
        return f"{(int(when.timestamp() * 1000) << 80) | self.rng.getrandbits(80):032x}"

    def between(self, a: dt.datetime, b: dt.datetime) -> dt.datetime:
        if b <= a:
            return a
        seconds = self.rng.randrange(int((b - a).total_seconds()))
        return (a + dt.timedelta(seconds=seconds)).replace(microsecond=0)

    def money(self, low: int, high: int, step: int = 1) -> Money:
        """Log-uniform amount in [low, high] CNY, rounded to ``step`` (whole yuan) or to fen when step is 0."""
        value = math.exp(self.rng.uniform(math.log(low), math.log(high)))
        if step:
            return Money(max(step, int(value) // step * step), CURRENCY)
        return Money(Decimal(int(value * 100)).scaleb(-2), CURRENCY)

    # ---- phones, e-mails, addresses ----
    def cn_mobile(self, style: int | None = None) -> str:
        number = self.pick(CN_MOBILE_PREFIXES) + self.digits(8)
        style = self.rng.randrange(4) if style is None else style
        if style == 0:
            return f"{number[:3]} {number[3:7]} {number[7:]}"
        if style == 1:
            return f"+86 {number[:3]}-{number[3:7]}-{number[7:]}"
        if style == 2:
            return number
        return f"0086 {number}"

    def cn_landline(self, area: str) -> str:
        return f"{area}-{self.rng.choice('2345678')}{self.digits(3)} {self.digits(4)}"

    def us_phone(self, area: str, international: bool = False) -> str:
        if self.rng.random() < 0.6:
            exchange, line = "555", f"01{self.digits(2)}"  # 555-0100..0199: reserved for fiction
        else:  # only 100 of those per area code: big samples need ordinary-looking numbers too
            exchange, line = f"{self.rng.randrange(2, 10)}{self.digits(2)}", self.digits(4)
        return f"+1 {area} {exchange} {line}" if international else f"({area}) {exchange}-{line}"

    def gb_phone(self, prefix: str, international: bool = False) -> str:
        drama = self.rng.random() < 0.5  # Ofcom's drama ranges for landlines, or a mobile
        local = f"{prefix} 0{self.digits(3)}" if drama else f"{self.pick(GB_MOBILE_PREFIXES)} {self.digits(6)}"
        return "+44 " + local[1:] if international else local

    def phone(self, region: str, make: Callable[..., str], *args: Any) -> str:
        """A number no other generated customer or contact has (so only planted duplicates share one)."""
        for _ in range(10_000):
            text = make(*args)
            if not _valid(text, region):  # not every block is allocated; draw again (still seeded)
                continue
            e164 = _e164(text, region)
            if e164 not in self.phones:
                self.phones.add(e164)
                return text
        raise AssertionError(f"no unused phone number from {make.__name__}")

    def unique_name(self, draw: Callable[[], tuple[str, str, str]], company: bool, cn: bool) -> tuple[str, str, str]:
        """(name, slug, category) with a name and slug that no other generated customer has."""
        for attempt in itertools.count():
            name, slug, category = draw()
            if attempt >= 20:  # a big sample has used up the vocabulary: tell branches apart by number
                n = attempt - 19
                if company and cn:
                    name = name.replace("有限", f"第{n}分公司有限", 1)
                elif company:
                    head, suffix = name.rsplit(" ", 1)
                    name = f"{head} {n} {suffix}"
                else:
                    name = f"{name}{n}" if cn else f"{name} {n}"
                slug = f"{slug}{n}"
            if name.casefold() not in self.names and slug not in self.slugs:
                self.names.add(name.casefold())
                self.slugs.add(slug)
                return name, slug, category
        raise AssertionError("unreachable")

    # ---- people and companies ----
    def cn_person(self) -> tuple[str, str, str, str]:
        (sn, sp), (gn, gp) = self.pick(CN_SURNAMES), self.pick(CN_GIVEN)
        return sn, gn, sp, gp

    def en_person(self) -> tuple[str, str]:
        return self.pick(EN_FIRST), self.pick(EN_LAST)


def _valid(number: str, region: str) -> bool:
    return bool(phonenumbers.is_valid_number(phonenumbers.parse(number, region)))


def _e164(number: str, region: str) -> str:
    return str(phonenumbers.format_number(phonenumbers.parse(number, region), phonenumbers.PhoneNumberFormat.E164))


def _emails(texts: Iterable[str]) -> list[EmailAddress]:
    return [EmailAddress.parse(t) for t in texts]


def _phones(texts: Iterable[str], region: str | None = None) -> list[PhoneNumber]:
    return [PhoneNumber.parse(t, region) for t in texts]


def _slug(text: str) -> str:
    out = "".join(ch.lower() if ch.isascii() and ch.isalnum() else "-" for ch in text)
    return "-".join(p for p in out.split("-") if p)


def generate(*, seed: int = DEFAULT_SEED, customers: int = DEFAULT_CUSTOMERS, as_of: dt.date = DEFAULT_AS_OF) -> Sample:
    """Build a sample of ``customers`` customers (some of them planted near-duplicates) and their records."""
    if isinstance(customers, bool) or not isinstance(customers, int) or not 1 <= customers <= MAX_CUSTOMERS:
        from pycrm.errors import ValidationError

        raise ValidationError(f"--customers must be between 1 and {MAX_CUSTOMERS}, got {customers!r}", field="customers")
    g = _Gen(seed, as_of)
    sample = Sample(seed=seed, as_of=as_of)
    with default_region("CN"):  # contacts have no country: local numbers are Chinese ones
        sales_cn, sales_intl, support = _users(g, sample)
        n_dups = min(customers // 2, max(1, customers // 25))
        profiles = [_customer(g, sales_cn, sales_intl) for _ in range(customers - n_dups)]
        for original in g.rng.sample(profiles, n_dups):
            copy = _near_duplicate(g, original)
            profiles.append(copy)
            assert original.customer.id is not None and copy.customer.id is not None
            sample.duplicates.append((original.customer.id, copy.customer.id))
        for p in profiles:
            sample.customers.append(p.customer)
            sample.contacts += _contacts(g, p)
            sample.interactions += _interactions(g, p)
        for p in profiles:
            sample.opportunities += _opportunities(g, p)
        sample.orders = _orders(g, profiles, sample.opportunities)
        for p in profiles:
            sample.tickets += _tickets(g, p, support)
        sample.tasks = _tasks(g, sample.opportunities, sample.tickets)
        _statuses(g, profiles, sample.orders, sample.opportunities)
        # surveys draw from a generator of their own: the rest of a seed's sample stays as it was
        sample.surveys = _surveys(_Gen(seed + 7919, as_of), sample.tickets)
        _ticket_kinds(_Gen(seed + 104729, as_of), sample.tickets)
        _campaign(_Gen(seed + 1299709, as_of), sample)  # its own generator too
        # the catalog and the orders' lines too: the amounts stay, split into lines
        sample.products = _catalog(_Gen(seed + 15485863, as_of))
        sample.orders = _lines(_Gen(seed + 32452843, as_of), sample.orders, sample.products)
    return sample


def _campaign(g: _Gen, sample: Sample) -> None:
    """One e-mail campaign 120 days before ``as_of``: the customers with a contact that consented to e-mail
    (about half of them, and all of those whose first order came in the four weeks after) as members, each
    sent the mail; about 40 % open it, a third of those click, a few reply, bounce or unsubscribe."""
    start = g.now - dt.timedelta(days=120)
    spend = Money(Decimal(g.rng.randrange(8, 20) * 1000), CURRENCY)
    campaign = Campaign(
        "Spring re-engagement",
        "email",
        start=start.date(),
        end=(start + dt.timedelta(days=30)).date(),
        budget=Money(Decimal(20000), CURRENCY),
        spend=spend,
        status="completed",
        created_at=start - dt.timedelta(days=7),
    )
    campaign.id = g.new_id(start - dt.timedelta(days=7))
    sample.campaigns.append(campaign)
    reach: dict[str, str] = {}
    for contact in sample.contacts:
        if contact.consent.get("email") is True and contact.created_at is not None and contact.created_at < start:
            reach.setdefault(contact.customer_id, str(contact.id))
    first: dict[str, dt.datetime] = {}
    for o in sample.orders:
        if o.customer_id not in first or o.occurred_at < first[o.customer_id]:
            first[o.customer_id] = o.occurred_at
    for cid in sorted(reach):
        new = cid in first and start + dt.timedelta(days=1) <= first[cid] <= start + dt.timedelta(days=28)
        if g.rng.random() < 0.5 and not new:  # prospects who first bought soon after are always in
            continue
        member = CampaignMember(str(campaign.id), cid, start, contact_id=reach[cid], created_at=start)
        member.id = g.new_id(start)
        sample.campaign_members.append(member)
        at = start + dt.timedelta(hours=g.rng.randrange(1, 12))
        kinds = ["sent"]
        roll = g.rng.random()
        if roll < 0.05:
            kinds.append("bounced")
        elif roll < 0.45:
            kinds.append("opened")
            if g.rng.random() < 0.35:
                kinds.append(g.pick(["clicked", "clicked", "replied"]))
            if g.rng.random() < 0.05:
                kinds.append("unsubscribed")
        for kind in kinds:
            response = CampaignResponse(str(member.id), str(campaign.id), cid, kind, at, created_at=at)
            response.id = g.new_id(at)
            sample.campaign_responses.append(response)
            at += dt.timedelta(hours=g.rng.randrange(1, 48))
        member.state = {"sent": "contacted", "bounced": "contacted", "unsubscribed": "removed"}.get(kinds[-1], "responded")


#: The demo's product catalog: (SKU, name, category path, unit, weight of its share of the orders).
CATALOG = (
    ("LIC-CRM-STD", "CRM licence, standard (1 seat, 1 year)", "Software/Licences/CRM", "seat", 8),
    ("LIC-CRM-PRO", "CRM licence, professional (1 seat, 1 year)", "Software/Licences/CRM", "seat", 5),
    ("LIC-BI", "BI dashboards add-on (1 year)", "Software/Licences/Add-ons", "seat", 3),
    ("SUP-GOLD", "Gold support (1 year)", "Services/Support", "contract", 4),
    ("SVC-ONBOARD", "Onboarding workshop (1 day)", "Services/Consulting", "day", 3),
    ("SVC-INTEG", "Integration consulting", "Services/Consulting", "hour", 2),
    ("HW-PRN-01", "Receipt printer 热敏打印机", "Hardware/Printers", "piece", 3),
    ("HW-SCAN-01", "Barcode scanner 扫码枪", "Hardware/Scanners", "piece", 2),
    ("HW-TAB-10", "Tablet 10-inch", "Hardware/Tablets", "piece", 2),
    ("TRN-ONLINE", "Online training course", "Services/Training", "seat", 2),
)


#: Products often bought together in the demo's orders.
BUNDLES = (("LIC-CRM-PRO", "LIC-BI"), ("HW-PRN-01", "HW-SCAN-01"), ("LIC-CRM-STD", "SVC-ONBOARD", "TRN-ONLINE"))


def _catalog(g: _Gen) -> list[Product]:
    out = []
    for sku, name, category, unit, _ in CATALOG:
        p = Product(sku, name, category=category, unit=unit, active=sku != "HW-TAB-10", created_at=g.start)
        p.id = g.new_id(g.start)
        out.append(p)
    return out


def _lines(g: _Gen, orders: list[Order], products: list[Product]) -> list[Order]:
    """The orders again, each with 1 to 3 lines whose totals add up to its amount: the amount split in parts,
    each part a whole quantity at a unit price rounded up to the fen, less the rounding as a discount."""
    weights = [w for *_, w in CATALOG]
    by_sku = {p.sku: p for p in products}
    out = []
    cent = Decimal("0.01")
    for o in orders:
        n = g.rng.choice([1, 1, 1, 2, 2, 3])
        picked = [products[i] for i in dict.fromkeys(g.rng.choices(range(len(products)), weights=weights, k=n))]
        if n >= 2 and g.rng.random() < 0.4:  # a bundle bought together: what the association rules find
            picked = [by_sku[sku] for sku in g.pick(BUNDLES)[:n]]
        total = o.amount.amount
        shares = [Decimal(g.rng.randint(1, 9)) for _ in picked]
        parts = [(total * w / sum(shares)).quantize(cent) for w in shares[:-1]]
        parts.append(total - sum(parts, Decimal(0)))
        if any(part <= 0 for part in parts):  # a small amount: one line
            picked, parts = picked[:1], [total]
        lines = []
        for p, part in zip(picked, parts):
            q = g.rng.choice([1, 1, 2, 3, 5, 10]) if part >= 50 else 1
            unit = (part / q).quantize(cent, rounding="ROUND_CEILING")
            lines.append(OrderLine(str(p.id), q, Money(unit, o.amount.currency), discount=unit * q - part))
        o.lines = lines
        out.append(o)
    return out


def _ticket_kinds(g: _Gen, tickets: list[Ticket]) -> None:
    """Each ticket's category (from its subject) and channel (drawn from a generator of its own)."""
    for t in tickets:
        subjects = TICKETS_CN if t.subject in TICKETS_CN else TICKETS_EN
        t.category = TICKET_CATEGORIES[subjects.index(t.subject)]
        t.channel = g.weighted(TICKET_CHANNELS)


def _users(g: _Gen, sample: Sample) -> tuple[list[User], list[User], list[User]]:
    since = g.start - dt.timedelta(days=90)

    def user(name: str, handle: str, role: str, team: str) -> User:
        u = User(name, EmailAddress.parse(f"{handle}@pycrm-demo.example.com"), roles=[role], team_id=team, created_at=since)
        u.id = g.new_id(since)
        sample.users.append(u)
        return u

    user("周建国", "zhou.jianguo", "manager", "team-cn")
    sales_cn = [
        user(n, h, "sales", "team-cn")
        for n, h in [("王芳", "wang.fang"), ("李强", "li.qiang"), ("陈静", "chen.jing"), ("刘洋", "liu.yang")]
    ]
    sales_intl = [
        user(n, h, "sales", "team-intl") for n, h in [("Emma Clarke", "emma.clarke"), ("Daniel Hughes", "daniel.hughes")]
    ]
    support = [
        user(n, h, "support", "team-service")
        for n, h in [("赵敏", "zhao.min"), ("孙磊", "sun.lei"), ("Grace Hall", "grace.hall")]
    ]
    return sales_cn, sales_intl, support


def _customer(g: _Gen, sales_cn: list[User], sales_intl: list[User]) -> _Profile:
    rng = g.rng
    country = g.weighted({"CN": 62, "US": 22, "GB": 16})
    company = rng.random() < 0.72
    since = g.between(g.start - dt.timedelta(days=180), g.now - dt.timedelta(days=20))
    tags = frozenset(rng.sample(TAGS, rng.choices([0, 1, 2, 3], weights=[4, 4, 2, 1])[0]))
    if country == "CN":
        city, region, area, post, districts, roads = g.pick(CN_CITIES)
        address = Address(
            street=f"{g.pick(districts)}{g.pick(roads)}{rng.randrange(1, 1500)}号",
            city=city,
            postcode=post + g.digits(3),
            region=region,
            country="CN",
        )
        if company:

            def draw() -> tuple[str, str, str]:
                (brand, brand_py), (industry, industry_py, category) = g.pick(CN_BRANDS), g.pick(CN_INDUSTRIES)
                return f"{city}{brand}{industry}{g.pick(CN_COMPANY_SUFFIXES)}", f"{brand_py}-{industry_py}", category
        else:

            def draw() -> tuple[str, str, str]:
                sn, gn, sp, gp = g.cn_person()
                return sn + gn, f"{sp}.{gp}", g.pick(["Consumer/VIP", "Consumer/Member", "Consumer/Online"])

        owner = g.pick(sales_cn)
    else:
        us = country == "US"
        city, region, area, posts, streets = g.pick(US_CITIES if us else GB_CITIES)
        address = Address(
            street=f"{rng.randrange(1, 2400) if us else rng.randrange(1, 240)} {g.pick(streets)}",
            city=city,
            postcode=g.pick(posts),
            region=region,
            country=country,
        )
        if company:

            def draw() -> tuple[str, str, str]:
                brand, (industry, category) = g.pick(EN_BRANDS), g.pick(EN_INDUSTRIES)
                return f"{brand} {industry} {g.pick(US_SUFFIXES if us else GB_SUFFIXES)}", _slug(f"{brand} {industry}"), category
        else:

            def draw() -> tuple[str, str, str]:
                first, last = g.en_person()
                return f"{first} {last}", f"{first}.{last}".lower(), g.pick(["Consumer/VIP", "Consumer/Online"])

        owner = g.pick(sales_intl)
    name, slug, category = g.unique_name(draw, company, country == "CN")
    if company:
        emails = [f"{g.pick(['info', 'sales', 'service', 'contact', 'hello'])}@{slug}.example.com"]
    else:
        emails = [f"{slug}{rng.randrange(10, 99)}@{'example.net' if country == 'CN' else 'example.org'}"]
    if country == "CN":
        phones = [g.phone("CN", g.cn_landline, area)] if company else [g.phone("CN", g.cn_mobile)]
        if company and rng.random() < 0.4:
            phones.append(g.phone("CN", g.cn_mobile))
    else:
        phones = [g.phone(country, g.us_phone if country == "US" else g.gb_phone, area)]
    custom = {"source": g.pick(SOURCES)} if rng.random() < 0.8 else {}
    customer = Customer(
        name,
        kind="company" if company else "person",
        emails=_emails(emails),
        phones=_phones(phones, country),
        addresses=[address],
        country=country,
        category=category,
        owner_id=owner.id,
        team_id=owner.team_id,
        tags=tags,
        custom=custom,
        created_at=since,
    )
    customer.id = g.new_id(since)
    activity = rng.choice([0.0, 0.3, 0.6, 1.0, 1.0, 1.5, 2.5]) if company else rng.choice([0.0, 0.3, 0.6, 1.0])
    return _Profile(customer, slug, country == "CN", since, area, activity)


def _swap_typo(g: _Gen, text: str) -> str:
    letters = [i for i in range(len(text) - 1) if text[i].isalpha() and text[i + 1].isalpha()]
    if not letters:
        return text
    i = g.pick(letters)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def _near_duplicate(g: _Gen, original: _Profile) -> _Profile:
    """The same customer entered again by someone else: spelling, format and completeness differ."""
    rng, c = g.rng, original.customer
    name = c.name
    if original.cn and c.kind == "company":
        plain = "股份" not in name and "责任" not in name
        variants = [
            name.replace("有限公司", "有限责任公司") if plain else name.replace("股份有限公司", "有限公司"),
            name[2:] if rng.random() < 0.5 else name + "(中国)",  # without the city prefix / with a branch mark
            name.replace("有限公司", " 有限公司"),
        ]
        name = g.pick(variants)
    elif original.cn:
        name = " ".join(name) if rng.random() < 0.5 else name[0] + " " + name[1:]
    elif c.kind == "company":
        swaps = {
            "Ltd": "Limited",
            "Limited": "Ltd.",
            "Inc.": "Incorporated",
            "LLC": "L.L.C.",
            "Corp.": "Corporation",
            "plc": "PLC",
        }
        words = name.split(" ")
        words[-1] = swaps.get(words[-1], words[-1])
        name = " ".join(words)
        name = name.upper() if rng.random() < 0.3 else _swap_typo(g, name) if rng.random() < 0.5 else name.replace("&", "and")
    else:
        first, _, last = name.partition(" ")
        name = f"{last}, {first}" if rng.random() < 0.5 else _swap_typo(g, name)
    latest = g.now - dt.timedelta(days=5)
    since = g.between(min(original.since + dt.timedelta(days=30), latest), latest)
    keep_email = rng.random() < 0.6
    emails = [c.emails[0].value.upper() if rng.random() < 0.3 else c.emails[0].value] if keep_email else []
    phones = [_reformat(g, c.phones[0].e164)] if (not keep_email or rng.random() < 0.5) else []
    copy = Customer(
        name,
        kind=c.kind,
        emails=_emails(emails),
        phones=_phones(phones, c.country),
        addresses=list(c.addresses) if rng.random() < 0.5 else [],
        country=c.country,
        category=c.category if rng.random() < 0.5 else None,
        owner_id=c.owner_id,
        team_id=c.team_id,
        created_at=since,
    )
    copy.id = g.new_id(since)
    return _Profile(copy, original.slug, original.cn, since, original.area, activity=0.3)


def _reformat(g: _Gen, e164: str) -> str:
    """The same number as a person would type it: national form, bare digits, or international form."""
    number = phonenumbers.parse(e164, None)
    style = g.rng.randrange(3)
    if style == 0:
        return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))
    if style == 1:
        national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        return "".join(ch for ch in national if ch.isdigit())
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL))


def _contacts(g: _Gen, p: _Profile) -> list[Contact]:
    c, rng = p.customer, g.rng
    if c.kind != "company":
        return []
    out: list[Contact] = []
    handles: set[str] = set()
    for _ in range(g.rng.choice([1, 1, 2, 2, 3])):
        when = g.between(p.since, min(g.now, p.since + dt.timedelta(days=200)))
        if p.cn:
            sn, gn, sp, gp = g.cn_person()
            first, last, handle, title = gn, sn, f"{sp}.{gp}", g.pick(CN_TITLES)
            phone = g.phone("CN", g.cn_mobile)
        else:
            first, last = g.en_person()
            handle, title = f"{first}.{last}".lower(), g.pick(EN_TITLES)
            phone = g.phone(c.country or "", g.us_phone if c.country == "US" else g.gb_phone, p.area, True)
        if handle in handles:  # two people of the same name at one company: keep the first
            continue
        handles.add(handle)
        contact = Contact(
            c.id or "",
            first,
            last,
            emails=_emails([f"{handle}@{p.slug}.example.com"]),
            phones=_phones([phone]),
            title=title,
            is_primary=not out,
            consent={"email": rng.random() < 0.7, "sms": rng.random() < 0.4},
            created_at=when,
        )
        contact.id = g.new_id(when)
        out.append(contact)
    return out


def _interactions(g: _Gen, p: _Profile) -> list[Interaction]:
    out = []
    for _ in range(int(g.rng.choice([0, 1, 2, 3, 4, 6, 8]) * max(p.activity, 0.3))):
        kind = g.weighted(INTERACTION_WEIGHTS)
        when = g.between(p.since, g.now)
        i = Interaction(
            p.customer.id or "", kind, when, subject=g.pick(INTERACTIONS[kind]), user_id=p.customer.owner_id, created_at=when
        )
        i.id = g.new_id(when)
        out.append(i)
    return out


_OPEN_STAGES = [s.name for s in DEFAULT_PIPELINE.stages if not s.is_closed]


def _opportunities(g: _Gen, p: _Profile) -> list[Opportunity]:
    rng, c = g.rng, p.customer
    count = g.rng.choice([0, 1, 1, 2, 3]) if c.kind == "company" else g.rng.choice([0, 0, 1])
    out = []
    for _ in range(count):
        start = g.between(max(p.since, g.start), g.now - dt.timedelta(days=3))
        age = (g.now - start).days
        if c.kind == "company":
            product = g.pick(PRODUCTS_CN if p.cn else PRODUCTS_EN)
        else:
            product = g.pick(PRODUCTS_PERSON_CN if p.cn else PRODUCTS_PERSON_EN)
        amount = g.money(20_000, 2_000_000, 1000) if c.kind == "company" else g.money(2_000, 50_000, 100)
        opp = Opportunity(c.id or "", product, amount, owner_id=c.owner_id, created_at=start)
        opp.id = g.new_id(start)
        closed = rng.random() < min(0.9, age / 200)
        won = closed and rng.random() < 0.55
        if closed:
            end = min(g.now - dt.timedelta(hours=1), start + dt.timedelta(days=rng.randrange(14, 150)))
            target = len(_OPEN_STAGES) - 1 if won else rng.randrange(len(_OPEN_STAGES))
        else:
            end = g.now - dt.timedelta(hours=1)
            reachable = 1 + min(len(_OPEN_STAGES) - 1, max(0, age) // 10)  # young deals have not gone far yet
            target = rng.choices(range(reachable), weights=[30, 25, 20, 15, 10][:reachable])[0]
        path: list[str] = []
        i = 0
        while i < target:
            i = min(target, i + (2 if rng.random() < 0.15 else 1))  # sometimes a stage is skipped
            path.append(_OPEN_STAGES[i])
            if 1 < i < target and rng.random() < 0.12:  # and sometimes a deal slips back a stage
                path.append(_OPEN_STAGES[i - 1])
                path.append(_OPEN_STAGES[i])
        times = sorted(g.between(start, end) for _ in range(len(path) + (1 if closed else 0)))
        for stage, at in zip(path, times):
            opp.move_to(stage, at=at, by=c.owner_id)
        if won:
            opp.win(at=times[-1], by=c.owner_id)
        elif closed:
            opp.lose(g.pick(LOSS_REASONS), at=times[-1], by=c.owner_id)
        else:
            opp.expected_close = (g.now + dt.timedelta(days=rng.randrange(7, 120))).date()
        if closed:
            opp.expected_close = times[-1].date()
        out.append(opp)
    return out


def _orders(g: _Gen, profiles: list[_Profile], opportunities: list[Opportunity]) -> list[Order]:
    rng = g.rng
    raw: list[tuple[dt.datetime, str, Money]] = []
    for opp in opportunities:  # every won deal is also an order
        if opp.is_won and opp.closed_at is not None:
            raw.append((opp.closed_at, opp.customer_id, opp.amount))
    for p in profiles:
        c = p.customer
        pattern = g.weighted({"none": 25, "few": 30, "regular": 30, "lapsed": 15}) if p.activity else "none"
        first = max(p.since, g.start) + dt.timedelta(days=rng.randrange(0, 60))
        if first >= g.now or pattern == "none":
            continue
        last = g.now if pattern != "lapsed" else g.now - dt.timedelta(days=rng.randrange(200, 500))
        if last <= first:
            continue
        months = (last - first).days / 30
        n = rng.randrange(1, 6) if pattern == "few" else max(1, int(months * rng.uniform(0.3, 2.5) * p.activity))
        low, high = (800, 80_000) if c.kind == "company" else (60, 5_000)
        for _ in range(n):
            raw.append((g.between(first, last), c.id or "", g.money(low, high, 0)))
    raw.sort(key=lambda r: (r[0], r[1]))
    out = []
    per_year: Counter[int] = Counter()
    for when, customer_id, amount in raw:
        per_year[when.year] += 1
        order = Order(customer_id, when, amount, order_no=f"SO-{when.year}-{per_year[when.year]:05d}", created_at=when)
        order.id = g.new_id(when)
        out.append(order)
    return out


def _tickets(g: _Gen, p: _Profile, support: list[User]) -> list[Ticket]:
    rng, c = g.rng, p.customer
    out = []
    for _ in range(int(rng.choice([0, 0, 1, 1, 2, 3, 4]) * max(p.activity, 0.3))):
        if rng.random() < 0.12:  # the live queue: raised in the last ten days
            t0 = g.between(max(p.since, g.now - dt.timedelta(days=10)), g.now - dt.timedelta(hours=2))
        else:
            t0 = g.between(max(p.since, g.start), g.now - dt.timedelta(hours=2))
        priority = TicketPriority(g.weighted({"low": 20, "normal": 50, "high": 22, "urgent": 8}))
        subject = g.pick(TICKETS_CN if p.cn else TICKETS_EN)
        agent = g.pick(support)
        ticket = Ticket(c.id or "", subject, description=subject, priority=priority, assignee_id=agent.id, created_at=t0)
        ticket.id = g.new_id(t0)
        sla = {"urgent": 4, "high": 24, "normal": 72, "low": 168}[priority.value]
        # Resolution takes 0.15-1.15x the SLA target (about one in seven late); the other steps fit inside it.
        hours = sla * rng.uniform(0.15, 1.15)
        steps: list[tuple[str, float]] = [("open", hours * rng.uniform(0.05, 0.2))]
        if rng.random() < 0.3:  # waiting on the customer
            steps += [("pending", hours * rng.uniform(0.1, 0.3)), ("open", hours * rng.uniform(0.1, 0.3))]
        steps.append(("resolved", hours - sum(h for _, h in steps)))
        if rng.random() < 0.08:  # the fix did not hold: reopened
            steps += [("open", rng.uniform(6, 96)), ("resolved", rng.uniform(0.2, 1.0) * sla)]
        steps.append(("closed", rng.uniform(72, 168)))
        t = t0
        for status, hours in steps:
            t = t + dt.timedelta(hours=hours)
            if t >= g.now:
                break
            ticket.move_to(status, at=t.replace(microsecond=0), by=None if status == "closed" else agent.id)
        out.append(ticket)
    return out


def _surveys(g: _Gen, tickets: list[Ticket]) -> list[Survey]:
    """A CSAT survey after most resolved tickets (about two in three answered, a day or so later, rating the
    agent), and an NPS survey to some of the customers served."""
    rng, out = g.rng, []
    for t in tickets:
        if t.resolved_at is None or rng.random() < 0.25:
            continue
        sent = t.resolved_at + dt.timedelta(hours=rng.uniform(1, 6))
        if sent >= g.now:
            continue
        survey = Survey(t.customer_id, "csat", sent.replace(microsecond=0), ticket_id=t.id, user_id=t.assignee_id)
        survey.id = g.new_id(sent)
        answered = sent + dt.timedelta(hours=rng.uniform(0.5, 48))
        if rng.random() < 0.65 and answered < g.now:
            late = (t.resolved_at - (t.created_at or t.resolved_at)).total_seconds() / 3600 > 24
            score = int(
                g.weighted(
                    {"5": 45, "4": 30, "3": 12, "2": 8, "1": 5} if not late else {"5": 20, "4": 30, "3": 25, "2": 15, "1": 10}
                )
            )
            survey.answer(score, at=answered.replace(microsecond=0))
        out.append(survey)
    customers = sorted({t.customer_id for t in tickets})
    for cid in customers:
        if rng.random() < 0.5:
            continue
        sent = g.between(g.now - dt.timedelta(days=180), g.now - dt.timedelta(days=1))
        survey = Survey(cid, "nps", sent.replace(microsecond=0))
        survey.id = g.new_id(sent)
        answered = sent + dt.timedelta(hours=rng.uniform(1, 72))
        if rng.random() < 0.5 and answered < g.now:
            survey.answer(int(g.weighted({str(k): w for k, w in enumerate([2, 1, 1, 2, 2, 3, 4, 8, 12, 30, 35])})), at=answered)
        out.append(survey)
    return out


def _tasks(g: _Gen, opportunities: list[Opportunity], tickets: list[Ticket]) -> list[Task]:
    rng, out = g.rng, []
    for opp in opportunities:
        if opp.is_closed or rng.random() < 0.4:
            continue
        due = g.now + dt.timedelta(days=rng.randrange(-10, 21), hours=rng.randrange(0, 8))
        created = min(g.now, max(opp.created_at or g.now, due - dt.timedelta(days=14)))
        task = Task(
            f"Follow up: {opp.name}",
            due,
            assignee_id=opp.owner_id,
            related_id=opp.id,
            done=due < g.now and rng.random() < 0.7,
            created_at=created,
        )
        task.id = g.new_id(created)
        out.append(task)
    for ticket in tickets:
        if ticket.status in (TicketStatus.PENDING, TicketStatus.NEW) and ticket.created_at is not None:
            due = ticket.created_at + dt.timedelta(days=2)
            task = Task(
                f"Chase customer: {ticket.subject}",
                due,
                assignee_id=ticket.assignee_id,
                related_id=ticket.id,
                created_at=ticket.created_at,
            )
            task.id = g.new_id(ticket.created_at)
            out.append(task)
    return out


def _statuses(g: _Gen, profiles: list[_Profile], orders: list[Order], opportunities: list[Opportunity]) -> None:
    last_order: dict[str, dt.datetime] = {}
    for o in orders:
        last_order[o.customer_id] = max(o.occurred_at, last_order.get(o.customer_id, o.occurred_at))
    with_deals = {o.customer_id for o in opportunities}
    for p in profiles:
        c = p.customer
        last = last_order.get(c.id or "")
        if last is None:
            c.status = "prospect" if c.id in with_deals else "lead"
        else:
            days = (g.now - last).days
            c.status = "active" if days <= 180 else "inactive" if days <= 365 else "churned"


# ---------------------------------------------------------------------------------------------
# Storing and reporting
# ---------------------------------------------------------------------------------------------


def save(crm: Any, sample: Sample) -> dict[str, int]:
    """Store the sample in one unit of work with ``add_many``; returns how many records of each kind."""
    added = {}
    with crm.session() as s:
        for name, records in sample.repositories():
            added[name] = getattr(s, name).add_many(records)
    return added


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _ljust(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def _rjust(text: str, width: int) -> str:
    return " " * max(0, width - _width(text)) + text


def _cny(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.01')):,}"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], right: Callable[[int], bool]) -> list[str]:
    rows = [list(r) for r in rows]
    widths = [max(_width(str(x)) for x in col) for col in zip(headers, *rows)]
    lines = []
    for row in [list(headers), *rows]:
        cells = [(_rjust if right(i) else _ljust)(str(x), widths[i]) for i, x in enumerate(row)]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines


def report(crm: Any, *, as_of: dt.date = DEFAULT_AS_OF, top: int = 5, planted: Sequence[tuple[str, str]] | None = None) -> str:
    """A short plain-text report of what the store holds, read back through the repositories.

    ``planted`` (the sample's known duplicate pairs) adds how many of them duplicate detection found.
    """
    now = dt.datetime.combine(as_of, dt.time(10, 0), tzinfo=dt.UTC)
    out: list[str] = []
    with crm.session() as s:
        names = ["users", "customers", "contacts", "opportunities", "tickets", "interactions", "orders", "surveys"]
        names += ["campaigns", "campaign_members", "campaign_responses", "tasks"]
        names.append("products")
        counts = {n: getattr(s, n).count() for n in names}
        out += ["Records", *_table(["entity", "count"], [[n, f"{counts[n]:,}"] for n in names], lambda i: i == 1)]
        statuses = {st: s.customers.count({"status": st}) for st in Customer.STATUSES}
        out.append("  customers by status: " + ", ".join(f"{k} {v}" for k, v in statuses.items()))

        rows, open_weighted, won = [], Decimal(0), Decimal(0)
        for stage in DEFAULT_PIPELINE.stages:
            deals = s.opportunities.find({"stage": stage.name, "currency": CURRENCY})
            amount = sum((o.amount.amount for o in deals), Decimal(0))
            weighted = sum((o.weighted_amount.amount for o in deals), Decimal(0))
            if not stage.is_closed:
                open_weighted += weighted
            elif stage.kind.value == "won":
                won += amount
            rows.append([stage.name, str(len(deals)), _cny(amount), f"{stage.probability:.2f}", _cny(weighted)])
        out += ["", f"Pipeline '{DEFAULT_PIPELINE.name}' by stage (amounts in {CURRENCY})"]
        out += _table(["stage", "deals", "amount", "probability", "weighted"], rows, lambda i: i > 0)
        out.append(f"  Weighted forecast of open deals: {CURRENCY} {_cny(open_weighted)}   (closed won: {CURRENCY} {_cny(won)})")

        by_status = {st.value: s.tickets.count({"status": st.value}) for st in TicketStatus}
        by_priority = {pr.value: s.tickets.count({"priority": pr.value}) for pr in TicketPriority}
        breached_done = breached_open = 0
        for t in s.tickets.iter():
            if t.is_breached(now):
                if t.resolved_at or t.closed_at:
                    breached_done += 1
                else:
                    breached_open += 1
        total = counts["tickets"]
        out += ["", "Tickets"]
        out.append("  by status:   " + ", ".join(f"{k} {v}" for k, v in by_status.items()))
        out.append("  by priority: " + ", ".join(f"{k} {v}" for k, v in by_priority.items()))
        share = f" ({100 * (breached_done + breached_open) / total:.1f}%)" if total else ""
        out.append(
            f"  SLA breaches: {breached_done + breached_open} of {total}{share}: "
            f"{breached_done} resolved late, {breached_open} unresolved past due"
        )
        kpis = []
        for kind, field in (("csat", "csat_pct"), ("nps", "nps")):
            rows = s.analytics.satisfaction(kind=kind, end=as_of)
            if rows:
                unit = "%" if kind == "csat" else ""
                shown = f"{getattr(rows[0], field)}{unit}"
                kpis.append(f"{kind.upper()} {shown} ({rows[0].answered} of {rows[0].sent} answered)")
        out.append("  satisfaction: " + (", ".join(kpis) or "no surveys"))
        out += ["", *_campaign_kpis(s)]

        totals: dict[str, Decimal] = defaultdict(Decimal)
        numbers: Counter[str] = Counter()
        for o in s.orders.iter({"currency": CURRENCY}):
            totals[o.customer_id] += o.amount.amount
            numbers[o.customer_id] += 1
        best = sorted(totals, key=lambda cid: (-totals[cid], cid))[:top]
        rows = []
        for rank, cid in enumerate(best, 1):
            c = s.customers.get(cid)
            rows.append([f"{rank}.", c.name, c.country or "", str(numbers[cid]), _cny(totals[cid])])
        out += ["", f"Top {len(rows)} customers by order total ({CURRENCY})"]
        out += _table(["", "customer", "country", "orders", "total"], rows, lambda i: i in (0, 3, 4))

        sold = s.analytics.product_sales(end=as_of)  # computed inside the database on SQL stores
        sold = [r for r in sold if r.currency == CURRENCY][:top]
        catalog = {str(p.id): p for p in s.products.find({"id": {"in": [str(r.group) for r in sold]}})} if sold else {}
        rows = [
            [f"{rank}.", catalog[str(r.group)].sku, catalog[str(r.group)].name, str(r.orders), str(r.quantity), _cny(r.revenue)]
            for rank, r in enumerate(sold, 1)
        ]
        out += ["", f"Top {len(rows)} products by revenue of order lines ({CURRENCY})"]
        out += _table(["", "sku", "product", "orders", "quantity", "revenue"], rows, lambda i: i in (0, 3, 4, 5))
        by_category = [r for r in s.analytics.product_sales(by="category", level=1, end=as_of) if r.currency == CURRENCY]
        out.append("  by category: " + ", ".join(f"{r.group} {_cny(r.revenue)}" for r in by_category))
        out += ["", *_basket_rules(s, as_of)]

        scores = s.analytics.rfm(as_of=as_of)  # computed inside the database on SQL stores
        sizes = Counter(x.segment or "(none)" for x in scores)
        money: dict[str, Decimal] = defaultdict(Decimal)
        for x in scores:
            money[x.segment or "(none)"] += x.monetary
        seg_rows = [
            [name, str(n), f"{100 * n / len(scores):.1f}%", _cny(money[name])]
            for name, n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        out += ["", f"RFM segments as of {as_of.isoformat()} ({len(scores)} customers with orders; monetary in {CURRENCY})"]
        out += _table(["segment", "customers", "share", "monetary"], seg_rows, lambda i: i > 0)
        out += ["", *_lead_scores(s, now, top)]
    out += ["", *_sales_forecast(crm, as_of)]
    out += ["", *_service_levels(crm, now)]
    out += ["", *_quality(crm, now)]
    out += ["", *_duplicates(crm, planted, top)]
    out += ["", *_automation(crm)]
    return "\n".join(out)


#: The thresholds of the demo's association rules: products in 2% of the orders, rules right 40% of the time.
RULE_SUPPORT, RULE_CONFIDENCE = 0.02, 0.4


def _basket_rules(s: Any, as_of: dt.date) -> list[str]:
    """The three association rules of the orders' lines with the highest lift (item and pair counts computed
    inside the database on SQL stores)."""
    rules = s.analytics.basket_rules(min_support=RULE_SUPPORT, min_threshold=RULE_CONFIDENCE, end=as_of)
    best = sorted(rules, key=lambda r: (-r.lift, -r.confidence, r.antecedent, r.consequent))[:3]
    ids = sorted({x for r in best for x in (*r.antecedent, *r.consequent)})
    names = {str(p.id): p.name for p in s.products.find({"id": {"in": ids}})} if ids else {}
    n = len(best)
    lines = [f"Top {n} association rules by lift (support >= {RULE_SUPPORT:.0%}, confidence >= {RULE_CONFIDENCE:.0%})"]
    rows = [
        [" + ".join(names[x] for x in r.antecedent), " + ".join(names[x] for x in r.consequent), str(r.count), *figures]
        for r in best
        for figures in [[f"{r.support:.1%}", f"{r.confidence:.1%}", f"{r.lift:.2f}"]]
    ]
    lines += _table(["who buys", "also buys", "orders", "support", "confidence", "lift"], rows, lambda i: i > 1)
    return lines


def _lead_scores(s: Any, now: dt.datetime, top: int) -> list[str]:
    """The open deals most likely to be won (lead scoring learned from the store's won and lost deals), why,
    and how well the model did on the newest fifth of the closed deals when trained on the older ones."""
    from pycrm.errors import ValidationError

    try:
        scoring = s.analytics.lead_scoring(as_of=now, leads=False)
        ev = scoring.evaluate(holdout=0.2)
    except ValidationError as exc:
        return ["Lead scores", f"  not enough history: {exc}"]
    rows = []
    for x in scoring.scores(n=top, top=2):
        deal = s.opportunities.get(x.opportunity_id)
        why = "; ".join(f"{r.feature} {r.value} ({r.contribution:+.2f})" for r in x.reasons)
        rows.append([deal.name, deal.stage, f"{100 * x.probability:.0f}%", why])
    out = [f"Lead scores: the {len(rows)} open deals most likely to be won (trained on {scoring.closed} closed deals)"]
    out += _table(["deal", "stage", "win", "why (log-odds)"], rows, lambda i: i == 2)
    out.append(
        f"  holdout (newest {ev.test} closed deals, trained on the {ev.train} before): AUC {ev.auc:.3f}, "
        f"Brier {ev.brier:.3f} (base rate {ev.base_rate:.2f}; always answering it: Brier {ev.brier_base:.3f})"
    )
    return out


def _sales_forecast(crm: Any, as_of: dt.date) -> list[str]:
    """Next quarter's monthly revenue forecast with 95% intervals, fitted on every complete month up to
    ``as_of``, and its backtest (MASE against the seasonal-naive forecast); needs the forecast extra."""
    from pycrm.analytics import MissingDependencyError
    from pycrm.errors import ValidationError

    month = as_of.replace(day=1)
    following = (month + dt.timedelta(days=32)).replace(day=1)
    end = as_of if following - dt.timedelta(days=1) == as_of else month - dt.timedelta(days=1)
    title = f"Revenue forecast for the next quarter, by month ({CURRENCY}; 95% prediction intervals)"
    try:
        with crm.session() as s:
            fc = s.analytics.forecast_sales(horizon=3, period="month", end=end, where={"currency": CURRENCY})
            backtest = fc.evaluate(folds=3, horizon=3)
    except MissingDependencyError:
        return [title, '  needs statsmodels: pip install "pycrm[forecast]"']
    except ValidationError as exc:  # too little history (a small sample)
        return [title, f"  {exc.errors[0].message}"]
    rows = [[p.period, _cny(p.value), _cny(p.lower), _cny(p.upper)] for p in fc.points]
    out = [title, *_table(["month", "forecast", "lower", "upper"], rows, lambda i: i > 0)]
    months = len(fc.history)
    out.append(f"  model {fc.method}, fitted on {months} months ({fc.history[0].period} to {fc.history[-1].period})")
    b = backtest[0]
    shown = "-" if b.mase is None else f"{b.mase:.2f}"
    naive = "-" if b.naive_mase is None else f"{b.naive_mase:.2f}"
    out.append(
        f"  backtest ({b.folds} rolling origins, {b.horizon} months ahead): MASE {shown} "
        f"(seasonal-naive {naive}), sMAPE {b.smape if b.smape is not None else '-'}%"
    )
    return out


#: The demo's service levels: business hours on mainland China's calendar (holidays and make-up working days).
SLA_POLICY = {
    "targets": [
        {"name": "urgent", "priority": ["urgent"], "first_response": "30m", "resolution": "2h"},
        {"name": "delivery", "category": ["Delivery"], "first_response": "1h", "resolution": "8h"},
        {"name": "high", "priority": ["high"], "first_response": "2h", "resolution": "8h"},
        {"name": "normal", "priority": ["normal"], "first_response": "4h", "resolution": "16h"},
        {"name": "low", "first_response": "8h", "resolution": "40h"},
    ],
    "calendar": {
        "country": "CN",
        "years": [2025, 2026],
        "timezone": "Asia/Shanghai",
        "hours": {day: [["09:00", "12:00"], ["13:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    },
    "pause_statuses": ["pending"],
}


def _service_levels(crm: Any, now: dt.datetime) -> list[str]:
    """SLA compliance by priority under :data:`SLA_POLICY`, and what the calendar's make-up working day does."""
    from pycrm.service import SlaPolicy

    policy = SlaPolicy.from_dict(SLA_POLICY)
    with crm.session() as s:
        report = s.analytics.sla(policy, by="priority", period=None, as_of=now)
        by_category = s.analytics.sla(policy, by="category", period=None, as_of=now)
        paused = sum(
            (policy.status(t, as_of=now).paused for t in s.tickets.iter()),
            dt.timedelta(0),
        )
    rows = [
        [
            r.priority or "",
            str(r.tickets),
            _pct(r.first_response_compliance),
            _pct(r.resolution_compliance),
            str(r.resolution_breached),
            str(r.running),
            "" if r.median_resolution_hours is None else f"{r.median_resolution_hours}",
        ]
        for r in sorted(report, key=lambda r: [p.value for p in TicketPriority].index(r.priority or "normal"), reverse=True)
    ]
    zone = policy.calendar.zone
    friday = dt.datetime(2026, 5, 8, 17, tzinfo=zone)
    due = policy.calendar.add_business_time(friday, dt.timedelta(hours=2)).astimezone(zone)
    lines = ["Service levels (business hours 09:00-12:00, 13:00-18:00 Asia/Shanghai, China's holidays; pending pauses)"]
    lines += _table(
        ["priority", "tickets", "response met", "resolved in time", "late", "open", "median hours"], rows, lambda i: i > 0
    )
    shares = ", ".join(f"{r.category} {_pct(r.resolution_compliance)}" for r in by_category if r.category is not None)
    lines += textwrap.wrap("resolved in time by category: " + shares, 110, initial_indent="  ", subsequent_indent="    ")
    lines.append(f"  waiting on customers: {paused.total_seconds() / 3600:,.0f} business hours, not counted against the targets")
    lines.append(
        f"  a ticket opened Fri {friday:%Y-%m-%d %H:%M} with 2 business hours to go is due {due:%a %Y-%m-%d %H:%M}"
        " (a make-up working day, 调休)"
    )
    return lines


def _pct(value: Decimal | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


#: The rule the demo fires (docs/automation.md, "Rules").
FOLLOW_UP = {
    "name": "proposal follow-up",
    "when": "StageChanged",
    "if": {"to_stage": "proposal"},
    "then": [{"create_task": {"title": "Follow up: {record.name}", "due_in_business_days": 2, "assignee": "owner"}}],
}


def _campaign_kpis(s: Any) -> list[str]:
    """The KPIs of the demo's campaigns (``s.analytics.campaign_kpis``, in the database on SQL stores)."""

    def pct(x: Decimal | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    def money(x: Decimal | None) -> str:
        return "-" if x is None else _cny(x)

    out = ["Campaigns (conversions: orders or won deals within 30 days after the last touch)"]
    for k in s.analytics.campaign_kpis():
        out.append(
            f"  {k.name} ({k.channel}): {k.members} members, response rate {pct(k.response_rate)}, "
            f"conversion rate {pct(k.conversion_rate)} ({k.converted} customers, {k.conversions} sales)"
        )
        ratio = "-" if k.clv_cac is None else f"{k.clv_cac}"
        roi = "-" if k.roi is None else f"{100 * k.roi:.1f}%"
        out.append(
            f"  revenue {k.currency} {money(k.revenue)}, spend {money(k.spend)}, {k.acquired} new customers, "
            f"CAC {money(k.cac)}, ROI {roi}, CLV:CAC {ratio}"
        )
    if len(out) == 1:
        out.append("  no campaigns")
    return out


def _automation(crm: Any) -> list[str]:
    """One rule firing: a deal moved into "proposal" gets a follow-up task for its owner, due in 2 business days.

    The sample was stored without events; from here on the store keeps an outbox (the same store, a handle that
    writes events), the rule runs on what ``dispatch`` delivers, as the automation actor."""
    import pycrm
    from pycrm.automation import install_rules

    auto = pycrm.CRM(crm.store, default_region=crm.default_region, custom_fields=crm.custom_fields, outbox=True)
    install_rules(auto, [FOLLOW_UP])
    with auto.session() as s:
        deals = s.opportunities.find({"stage": "qualification", "owner_id": {"is_null": False}}, order_by=["id"], limit=1)
        if not deals:
            return ["Automation", "  (no deal in qualification to move)"]
        deal = deals[0]
        before = {t.id for t in s.tasks.find({"related_id": deal.id})}
        deal.move_to("proposal")
        s.opportunities.update(deal)
        owner = s.users.get(str(deal.owner_id))
    result = auto.dispatch()
    with auto.session() as s:
        [task] = [t for t in s.tasks.find({"related_id": deal.id}) if t.id not in before]
        by = [e.actor_id for e in s.audit.history(str(task.id))]
    return [
        "Automation (rule 'proposal follow-up', run by crm.dispatch())",
        f"  deal {deal.name!r} moved to proposal -> task {task.title!r} for {owner.name},"
        f" due {task.due_at:%Y-%m-%d %H:%M} UTC (2 business days)",
        f"  {result.delivered} events delivered, {result.dead} dead; the task's audit trail names {by[0]!r}",
    ]


def _quality(crm: Any, now: dt.datetime) -> list[str]:
    """A short data-quality report of the customers (``s.quality.report``: counted in the database on SQL
    stores; phones and e-mails re-checked with today's parsing rules)."""
    with crm.session() as s:
        r = s.quality.report("customers", fields=["emails", "phones", "addresses", "category"], as_of=now)
    out = [f"Data quality of the {r.total} customers (s.quality.report; pycrm quality)"]
    out.append("  completeness: " + ", ".join(f"{f} {c.share:.1%}" for f, c in r.completeness.items()))
    out.append("  no longer valid: " + ", ".join(f"{f} {i.records}" for f, i in r.invalid.items()))
    out.append(f"  stale (not updated for {r.stale_days} days): {r.stale}")
    return out


def _duplicates(crm: Any, planted: Sequence[tuple[str, str]] | None, top: int) -> list[str]:
    """Duplicate customers found with no configuration, the evidence, and a merge that is undone again."""
    with crm.session() as s:
        clusters = s.customers.find_duplicates()  # streams the store; nothing labelled, nothing tuned
        ids = [i for c in clusters for i in c.ids]
        names = {c.id: c.name for c in s.customers.find({"id": {"in": ids}})} if ids else {}
    pairs = sorted((m for c in clusters for m in c.pairs), key=lambda m: (-m.score, str(m.a), str(m.b)))
    found = {frozenset((str(m.a), str(m.b))) for m in pairs}
    line = f"Duplicate customers: {len(clusters)} groups, {len(pairs)} scored pairs"
    if planted is not None:
        hits = sum(frozenset(p) in found for p in planted)
        line += f"; {hits} of the {len(planted)} planted near-duplicates found"
    out = [line]
    rows = []
    for m in pairs[:top]:
        evidence = ", ".join(f"{f} {m.levels[f]} {m.field_scores[f]:+.1f}" for f in m.field_scores if m.levels[f] != "missing")
        rows.append([names.get(m.a, str(m.a)), names.get(m.b, str(m.b)), f"{m.score:.3f}", evidence])
    out += _table(["customer", "looks like", "p(same)", "evidence (bits per field)"], rows, lambda i: i == 2)
    if clusters:
        first = clusters[0]
        with crm.session() as s:
            record = s.customers.merge(str(first.ids[0]), [str(i) for i in first.ids[1:]])
            moved = len(record.relinked)
            s.customers.unmerge(record.id)
        out.append(
            f"  Merged {len(first.ids)} records of {names.get(first.ids[0], first.ids[0])!r} ({moved} linked records "
            "re-pointed), then took the merge back with unmerge: every record restored."
        )
    return out


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= MAX_CUSTOMERS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_CUSTOMERS:,}, got {value}")
    return value


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def register(subparsers: Any) -> None:
    """Add ``pycrm demo`` to the command line (see :mod:`pycrm.cli`)."""
    parser = subparsers.add_parser("demo", help=HELP, description=HELP[0].upper() + HELP[1:] + ".")
    configure(parser)
    parser.set_defaults(run=run)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        default=DEFAULT_DB,
        metavar="PATH",
        help=f"SQLite file to (re)create (default: {DEFAULT_DB}); 'memory://' keeps it in memory. An existing "
        "file is replaced only if an earlier `pycrm demo` made it, or with --force",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace --db even if it is a SQLite store the demo did not make (its data is lost)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default: {DEFAULT_SEED})")
    parser.add_argument(
        "--customers",
        type=_positive,
        default=DEFAULT_CUSTOMERS,
        metavar="N",
        help=f"how many customers (default: {DEFAULT_CUSTOMERS})",
    )
    parser.add_argument(
        "--as-of",
        type=_date,
        default=DEFAULT_AS_OF,
        metavar="YYYY-MM-DD",
        help=f"the sample's 'today' (default: {DEFAULT_AS_OF})",
    )


_SQLITE_MAGIC = b"SQLite format 3\x00"
#: The SQLite header's application id (bytes 68-71) the demo stamps on its stores: ``pycrm demo`` replaces
#: a file carrying it, and no other store without ``--force``.
DEMO_APPLICATION_ID = int.from_bytes(b"pcDm", "big")


def _is_demo_store(head: bytes) -> bool:
    return len(head) >= 72 and int.from_bytes(head[68:72], "big") == DEMO_APPLICATION_ID


def _target(db: str, force: bool = False) -> Path | None:
    """The SQLite file to write, or None for ``memory://``. Refuses URLs of server databases, files that are
    not SQLite, and a SQLite store an earlier demo did not make (unless ``force``)."""
    from pycrm.errors import ValidationError

    if db.strip() in ("memory://", "memory:"):
        return None
    if db.startswith("sqlite:///"):
        db = db[len("sqlite:///") :]
    elif "://" in db:
        raise ValidationError(f"{db}: the demo writes a SQLite file or memory://, not a server database", field="--db")
    path = Path(db)
    if path.is_dir():
        raise ValidationError(f"{db}: is a directory", field="--db")
    if not path.resolve().parent.is_dir():
        raise ValidationError(f"{db}: no such directory: {path.resolve().parent}", field="--db")
    if path.exists() and path.stat().st_size:
        with path.open("rb") as f:
            head = f.read(100)
        if not head.startswith(_SQLITE_MAGIC):
            raise ValidationError(f"{db}: exists and is not a SQLite database; not overwriting it", field="--db")
        if not force and not _is_demo_store(head):
            raise ValidationError(
                f"{db}: exists and is not a store pycrm demo made; not overwriting it (pass --force to replace it "
                "and lose its data)",
                field="--db",
            )
    return path


def _stamp(path: Path) -> None:
    """Mark ``path`` as a demo store (:data:`DEMO_APPLICATION_ID`), so a later demo may replace it."""
    import sqlite3

    con = sqlite3.connect(path)
    try:
        con.execute(f"PRAGMA application_id = {DEMO_APPLICATION_ID:d}")  # an int constant: PRAGMA takes no parameters
        con.commit()
    finally:
        con.close()


def run(args: argparse.Namespace) -> int:
    import pycrm

    target = _target(args.db, args.force)
    started = time.perf_counter()
    sample = generate(seed=args.seed, customers=args.customers, as_of=args.as_of)
    if target is None:
        with pycrm.open("memory://", default_region="CN", custom_fields=CUSTOM_FIELDS) as crm:
            save(crm, sample)
            text = report(crm, as_of=sample.as_of, planted=sample.duplicates)
        where = "memory:// (not kept)"
    else:
        # Build in a fresh file beside the target and move it into place (pycrm._files), so a failed run
        # leaves the old file alone and nothing planted beside it is followed.
        with replacing(target) as partial:
            try:
                with pycrm.open(f"sqlite:///{partial.resolve()}", default_region="CN", custom_fields=CUSTOM_FIELDS) as crm:
                    save(crm, sample)
                    text = report(crm, as_of=sample.as_of, planted=sample.duplicates)
                _stamp(partial)
                for suffix in ("-wal", "-shm", "-journal"):  # a stale journal must not be replayed onto the new file
                    target.with_name(target.name + suffix).unlink(missing_ok=True)
            finally:
                for leftover in (partial.with_name(partial.name + x) for x in ("-wal", "-shm", "-journal")):
                    leftover.unlink(missing_ok=True)
        where = str(target)
    elapsed = time.perf_counter() - started
    print(
        f"pycrm demo: seed {sample.seed}, {len(sample.customers):,} customers "
        f"({len(sample.duplicates)} planted near-duplicates), as of {sample.as_of}"
    )
    print(f"Stored in {where} in {elapsed:.1f} s\n")
    print(text)
    return 0
