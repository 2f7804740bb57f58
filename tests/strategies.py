"""Hypothesis strategies for pycrm's tests, all in one module.

Data looks like what a CRM in China, the US and the UK holds: Chinese and English names, company
names, e-mail addresses, phone numbers written the many ways people write them (spaces, dashes,
brackets, ``0086`` and ``+86`` prefixes, full-width digits), money with at most four decimal places,
and timezone-aware datetimes.
"""

from __future__ import annotations

import datetime as dt
import string
from decimal import Decimal
from typing import Any, NamedTuple

import phonenumbers
from hypothesis import strategies as st

from pycrm import Contact, Customer, Money, Opportunity, Order, Ticket

# ---------------------------------------------------------------- names

SURNAMES = [
    "王",
    "李",
    "张",
    "刘",
    "陈",
    "杨",
    "黄",
    "赵",
    "吴",
    "周",
    "徐",
    "孙",
    "马",
    "朱",
    "胡",
    "郭",
    "欧阳",
    "司马",
    "诸葛",
]
GIVEN_CHARS = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华梅雷晓红建国志"
FIRST_NAMES = ["James", "Mary", "Olivia", "Liam", "Noah", "Emma", "Wei", "Mei", "Chloe", "Seán", "José", "Zoë"]
LAST_NAMES = ["Smith", "Johnson", "O'Brien", "Brown", "Taylor", "Wong", "Li", "García", "Müller", "Nguyen"]
CN_CITIES = ["北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "南京"]
CN_WORDS = ["华夏", "长城", "东方", "新世纪", "金桥", "蓝天", "鸿运", "科创"]
CN_SUFFIXES = ["科技有限公司", "贸易有限公司", "集团股份有限公司", "电子商务有限公司", "餐饮管理有限公司"]
EN_WORDS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Cyberdyne", "Northwind"]
EN_SUFFIXES = ["Ltd", "LLC", "Inc.", "plc", "Trading Co.", "& Sons", "GmbH"]

chinese_person_names = st.builds(
    lambda surname, given: surname + given, st.sampled_from(SURNAMES), st.text(GIVEN_CHARS, min_size=1, max_size=2)
)
english_person_names = st.builds(lambda first, last: f"{first} {last}", st.sampled_from(FIRST_NAMES), st.sampled_from(LAST_NAMES))
person_names = st.one_of(chinese_person_names, english_person_names)
chinese_company_names = st.builds(
    lambda c, w, s: c + w + s, st.sampled_from(CN_CITIES), st.sampled_from(CN_WORDS), st.sampled_from(CN_SUFFIXES)
)
english_company_names = st.builds(lambda w, s: f"{w} {s}", st.sampled_from(EN_WORDS), st.sampled_from(EN_SUFFIXES))
company_names = st.one_of(chinese_company_names, english_company_names)
names = st.one_of(person_names, company_names)

# ---------------------------------------------------------------- e-mail addresses

_LOCAL = st.from_regex(r"[a-z0-9]{1,10}([._+-][a-z0-9]{1,8}){0,2}", fullmatch=True)
_LABEL = st.from_regex(r"[a-z][a-z0-9]{0,9}(-[a-z0-9]{1,6})?", fullmatch=True)
_TLDS = st.sampled_from(["com", "cn", "net", "org", "io", "co.uk", "com.cn", "example"])

#: Canonical (lower-case, trimmed) e-mail addresses.
emails = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}", _LOCAL, st.lists(_LABEL, min_size=1, max_size=2), _TLDS
)

_FULL_WIDTH = {c: chr(ord(c) + 0xFEE0) for c in string.ascii_letters + string.digits + "@.+-_()"}
_FULL_WIDTH[" "] = "\u3000"  # ideographic space


def full_width(text: str) -> str:
    """The same text typed with a Chinese input method: ``１３８`` for ``138``, ``＠`` for ``@``."""
    return "".join(_FULL_WIDTH.get(ch, ch) for ch in text)


@st.composite
def email_spellings(draw: st.DrawFn) -> tuple[str, str]:
    """(a way a person might type an address, the canonical address it means)."""
    canonical = draw(emails)
    flips = draw(st.lists(st.booleans(), min_size=len(canonical), max_size=len(canonical)))
    typed = "".join(ch.upper() if up else ch for ch, up in zip(canonical, flips))
    if draw(st.booleans()):
        typed = full_width(typed)
    pad = st.sampled_from(["", " ", "  ", "\t", "\u3000"])
    return draw(pad) + typed + draw(pad), canonical


#: Text that is not an e-mail address however it is read.
not_emails = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "plainaddress",
            "@example.com",
            "user@",
            "a@@b.com",
            "a b@c.com",
            "user@exa mple.com",
            "user@.com",
            "user@com.",
            "a..b@c.com",
            ".a@b.com",
            "a@b@c.com",
            "'; DROP TABLE customers; --",
        ]
    ),
    st.text(string.ascii_letters + string.digits + ".-_", max_size=20),  # no '@' at all
)

# ---------------------------------------------------------------- phone numbers


class PhoneCase(NamedTuple):
    """One way of writing a phone number, the region needed to read it, and its E.164 form."""

    spelling: str
    region: str | None
    e164: str


def _valid(e164: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:  # pragma: no cover - the builders only make well-formed numbers
        return False


_CN_MOBILE_PREFIXES = [
    str(p)
    for p in [*range(130, 140), 150, 151, 152, 153, 155, 156, 157, 158, 159, *range(180, 190), 166, 176, 177, 178, 198, 199]
]
_US_AREAS = ["201", "202", "206", "212", "213", "303", "305", "312", "404", "415", "503", "617", "646", "650", "718", "773"]


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=n, max_size=n)


cn_mobile_nsn = st.builds(lambda p, rest: p + rest, st.sampled_from(_CN_MOBILE_PREFIXES), _digits(8)).filter(
    lambda d: _valid("+86" + d)
)
cn_beijing_nsn = st.builds(lambda first, rest: "10" + first + rest, st.sampled_from("2345678"), _digits(7)).filter(
    lambda d: _valid("+86" + d)
)
us_nsn = st.builds(
    lambda area, ex1, ex2, line: area + ex1 + ex2 + line,
    st.sampled_from(_US_AREAS),
    st.sampled_from("23456789"),
    _digits(2),
    _digits(4),
).filter(lambda d: d[3:5] != "11" and d[3:6] != "555" and _valid("+1" + d))
uk_mobile_nsn = st.builds(lambda second, rest: "7" + second + rest, st.sampled_from("45789"), _digits(8)).filter(
    lambda d: _valid("+44" + d)
)


def _cn_mobile_spellings(d: str) -> list[tuple[str, str | None]]:
    a, b, c = d[:3], d[3:7], d[7:]
    return [
        (f"+86 {a} {b} {c}", None),
        (f"+86{d}", None),
        (f"0086 {d}", None),
        (f"0086-{a}-{b}-{c}", None),
        (f"(+86) {a}-{b}-{c}", None),
        (f"+86-{a}-{b}-{c}", None),
        (f"{a} {b} {c}", "CN"),
        (d, "CN"),
        (f"{a}-{b}-{c}", "CN"),
    ]


def _cn_landline_spellings(d: str) -> list[tuple[str, str | None]]:
    rest = d[2:]
    return [
        (f"+86 10 {rest[:4]} {rest[4:]}", None),
        (f"0086 10 {rest}", None),
        (f"010 {rest[:4]} {rest[4:]}", "CN"),
        (f"(010) {rest[:4]}-{rest[4:]}", "CN"),
        (f"010-{rest}", "CN"),
        (f"+86 (0)10 {rest}", None),
    ]


def _us_spellings(d: str) -> list[tuple[str, str | None]]:
    a, e, n = d[:3], d[3:6], d[6:]
    return [
        (f"+1 ({a}) {e}-{n}", None),
        (f"+1{d}", None),
        (f"001 {a} {e} {n}", None),
        (f"({a}) {e}-{n}", "US"),
        (f"{a}.{e}.{n}", "US"),
        (f"1-{a}-{e}-{n}", "US"),
        (f"{a}-{e}-{n}", "US"),
    ]


def _uk_spellings(d: str) -> list[tuple[str, str | None]]:
    a, b = d[:4], d[4:]
    return [
        (f"+44 {a} {b}", None),
        (f"+44{d}", None),
        (f"0044 {a} {b}", None),
        (f"+44 (0){a} {b}", None),
        (f"0{a} {b}", "GB"),
        (f"0{d}", "GB"),
    ]


_FAMILIES = [
    (cn_mobile_nsn, "+86", _cn_mobile_spellings),
    (cn_beijing_nsn, "+86", _cn_landline_spellings),
    (us_nsn, "+1", _us_spellings),
    (uk_mobile_nsn, "+44", _uk_spellings),
]


@st.composite
def phone_cases(draw: st.DrawFn, *, international_only: bool = False) -> PhoneCase:
    """A CN (mobile or Beijing landline), US or UK number, spelled one of many ways."""
    nsn_strategy, cc, spell = draw(st.sampled_from(_FAMILIES))
    nsn = draw(nsn_strategy)
    options = [s for s in spell(nsn) if not (international_only and s[1] is not None)]
    spelling, region = draw(st.sampled_from(options))
    if draw(st.booleans()):
        spelling = full_width(spelling)
    if region is None and not international_only:
        # An international spelling reads the same whatever the local region is.
        region = draw(st.sampled_from([None, "CN", "US", "GB"]))
    return PhoneCase(spelling, region, cc + nsn)


#: E.164 numbers that are valid (as stored by pycrm).
phone_e164 = phone_cases().map(lambda case: case.e164)

# ---------------------------------------------------------------- money

CURRENCIES = ["CNY", "USD", "GBP", "EUR", "JPY", "HKD", "KWD"]


@st.composite
def amounts(draw: st.DrawFn, *, max_abs: int = 10**14 - 1, min_value: int | None = None) -> Decimal:
    """Decimals with 0 to 4 decimal places and |amount| < 10^14, the range every database stores exactly."""
    places = draw(st.integers(0, 4))
    scale = 10**places
    lo = -max_abs * scale if min_value is None else min_value * scale
    n = draw(st.one_of(st.integers(lo, max_abs * scale), st.integers(max(lo, -1000), 1000)))
    return Decimal(n).scaleb(-places)


currencies = st.sampled_from(CURRENCIES)
money = st.builds(Money, amounts(), currencies)
positive_money = st.builds(Money, amounts(max_abs=10**9, min_value=0), currencies)

# ---------------------------------------------------------------- time

UTC = dt.UTC
ZONES = [
    UTC,
    dt.timezone(dt.timedelta(hours=8)),
    dt.timezone(dt.timedelta(hours=-5)),
    dt.timezone(dt.timedelta(hours=5, minutes=45)),
    dt.timezone(dt.timedelta(hours=-9, minutes=-30)),
]

#: Timezone-aware datetimes (any of a few offsets) between 1901 and 2199.
aware_datetimes = st.datetimes(
    min_value=dt.datetime(1901, 1, 2), max_value=dt.datetime(2199, 12, 30), timezones=st.sampled_from(ZONES)
)
#: Timezone-aware datetimes in this century, as business data mostly is.
recent_datetimes = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2040, 12, 31), timezones=st.sampled_from(ZONES)
)
dates = st.dates(min_value=dt.date(1901, 1, 1), max_value=dt.date(2199, 12, 31))

# ---------------------------------------------------------------- hostile text

SQL_FRAGMENTS = [
    "'; DROP TABLE customers; --",
    "Robert'); DROP TABLE students;--",
    '" OR 1=1 --',
    "' OR '1'='1",
    "1; SELECT pg_sleep(0); --",
    "%",
    "_",
    "\\",
    "\\'",
    "%' OR name LIKE '%",
    "`backtick`",
    "$$dollar$$",
    "/* comment */",
    "?",
    ":name",
    "%(name)s",
]
WEIRD_UNICODE = [
    "北京华夏科技有限公司",
    "😀🎉👩‍👩‍👧‍👦",
    "𠜎𠜱𠝹𠱓",  # outside the Basic Multilingual Plane
    "Ａｃｍｅ　株式会社",
    "e\u0301",  # combining accent
    "\u200b\u200d\ufeff",  # zero-width characters
    "\u202eevil",  # right-to-left override
    "ıİßẞﬁ",
    "line\nbreak\r\ttab",
    " leading and trailing ",
    "\uffff\ufffe",
]
BAD_TEXT = ["nul\x00byte", "\x00", "lone \ud800 surrogate", "\udfff", "pair reversed \udc00\ud800"]

#: Text that is valid Unicode without NUL: pycrm must store it and read it back exactly.
storable_texts = st.one_of(
    st.sampled_from(SQL_FRAGMENTS + WEIRD_UNICODE),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1, max_size=40),
)
#: Anything at all, including NUL bytes and lone surrogates: pycrm either refuses it or keeps it exactly.
hostile_texts = st.one_of(
    storable_texts,
    st.sampled_from(BAD_TEXT),
    st.text(st.characters(exclude_categories=[]), max_size=30),
    st.builds(lambda ch, n: ch * n, st.sampled_from(["a", "界", "😀"]), st.integers(250, 350)),
)

# ---------------------------------------------------------------- entities

TAGS = ["vip", "b2b", "b2c", "重点客户", "newsletter", "wholesale"]
CATEGORIES = ["Retail/Online", "Retail/Offline", "Manufacturing", "Services/Consulting", "餐饮/连锁"]

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=20).filter(lambda s: "\x00" not in s)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def customers(draw: st.DrawFn, **overrides: Any) -> Customer:
    """A valid Customer; phones are international spellings, so they parse whatever the country."""
    kind = draw(st.sampled_from(["company", "person"]))
    fields: dict[str, Any] = {
        "name": draw(company_names if kind == "company" else person_names),
        "kind": kind,
        "emails": draw(st.lists(emails, max_size=3, unique=True)),
        "phones": [c.spelling for c in draw(st.lists(phone_cases(international_only=True), max_size=2))],
        "country": draw(st.sampled_from([None, "CN", "US", "GB"])),
        "category": draw(st.none() | st.sampled_from(CATEGORIES)),
        "status": draw(st.sampled_from(Customer.STATUSES)),
        "tags": draw(st.frozensets(st.sampled_from(TAGS), max_size=3)),
        "custom": draw(st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=8), json_values, max_size=3)),
    }
    fields.update(overrides)
    return Customer(**fields)


@st.composite
def contacts(draw: st.DrawFn, customer_id: str) -> Contact:
    return Contact(
        customer_id,
        draw(st.sampled_from(FIRST_NAMES) | st.sampled_from(GIVEN_CHARS)),
        draw(st.sampled_from(LAST_NAMES) | st.sampled_from(SURNAMES)),
        emails=draw(st.lists(emails, max_size=2, unique=True)),
        phones=[c.spelling for c in draw(st.lists(phone_cases(international_only=True), max_size=2))],
        title=draw(st.none() | st.sampled_from(["CEO", "采购经理", "Buyer"])),
        is_primary=draw(st.booleans()),
        consent=draw(st.dictionaries(st.sampled_from(["email", "sms", "phone"]), st.booleans())),
    )


@st.composite
def orders(draw: st.DrawFn, customer_id: str) -> Order:
    return Order(
        customer_id,
        draw(recent_datetimes),
        draw(positive_money),
        order_no=draw(st.none() | st.from_regex(r"SO-[0-9]{4,8}", fullmatch=True)),
    )


@st.composite
def opportunities(draw: st.DrawFn, customer_id: str) -> Opportunity:
    return Opportunity(
        customer_id,
        draw(st.sampled_from(["年度采购", "Renewal 2025", "Pilot", "扩容项目"])),
        draw(positive_money),
        expected_close=draw(st.none() | dates),
        win_probability=draw(st.none() | st.floats(0, 1) | st.decimals(0, 1, places=6)),
        scored_at=draw(st.none() | recent_datetimes),
    )


@st.composite
def tickets(draw: st.DrawFn, customer_id: str) -> Ticket:
    return Ticket(
        customer_id,
        draw(st.sampled_from(["Printer on fire", "发票抬头错误", "Cannot log in"])),
        description=draw(st.text(max_size=40).filter(lambda s: "\x00" not in s)),
        priority=draw(st.sampled_from(["low", "normal", "high", "urgent"])),
        category=draw(st.none() | st.sampled_from(["Hardware", "Hardware/Printer", "软件/登录", "Billing"])),
        channel=draw(st.none() | st.sampled_from(Ticket.CHANNELS)),
    )


# ---------------------------------------------------------------- security: users, roles and scoped records


class SecurityWorld(NamedTuple):
    """Rows of every kind, by repository, with ids fixed in advance so a policy can look them up."""

    rows: dict[str, list[Any]]

    def lookup(self, repository: str, ident: str) -> Any:
        return next((r for r in self.rows.get(repository, ()) if r.id == ident), None)

    def ids(self, repository: str) -> set[str]:
        return {r.id for r in self.rows[repository]}


#: Stored user ids, and what records may point at: a stored user, one never stored, nobody.
SCOPE_USER_IDS = ["u0", "u1", "u2"]
SCOPE_PEOPLE = [*SCOPE_USER_IDS, "u9", None]
SCOPE_TEAMS = ["t1", "t2", None]
SCOPE_EMAILS = ["ana@example.com", "bo@example.org", "chen@example.cn"]
SCOPE_PHONES = ["+86 138 0013 8000", "+1 650-253-0000", "+44 7911 123456"]
SCOPE_AT = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
SCOPE_REPOSITORIES = (
    "customers",
    "contacts",
    "opportunities",
    "tickets",
    "interactions",
    "orders",
    "tasks",
    "users",
    "surveys",
    "campaigns",
    "campaign_members",
    "campaign_responses",
)


@st.composite
def security_worlds(draw: st.DrawFn) -> SecurityWorld:
    """Users in teams, customers with random owners and teams, and records of every kind under them."""
    from pycrm import Interaction, Survey, Task, User

    people = st.sampled_from(SCOPE_PEOPLE)
    teams = st.sampled_from(SCOPE_TEAMS)
    hours = st.integers(min_value=-48, max_value=48).map(lambda h: SCOPE_AT + dt.timedelta(hours=h))
    rows: dict[str, list[Any]] = {r: [] for r in SCOPE_REPOSITORIES}
    for uid in SCOPE_USER_IDS:
        rows["users"].append(User(f"User {uid}", f"{uid}@example.com", team_id=draw(teams), id=uid))
    n = draw(st.integers(min_value=1, max_value=4))
    for i in range(n):
        rows["customers"].append(
            Customer(
                draw(company_names),
                emails=draw(st.lists(st.sampled_from(SCOPE_EMAILS), max_size=2, unique=True)),
                phones=draw(st.lists(st.sampled_from(SCOPE_PHONES), max_size=1)),
                status=draw(st.sampled_from(Customer.STATUSES)),
                owner_id=draw(people),
                team_id=draw(teams),
                tags=draw(st.frozensets(st.sampled_from(TAGS[:3]), max_size=2)),
                custom=draw(st.sampled_from([{}, {"tier": "gold"}, {"tier": "silver", "seats": 5}])),
                id=f"cu{i}",
            )
        )
    parents = st.sampled_from([c.id for c in rows["customers"]])
    few = st.integers(min_value=1, max_value=3)
    for i in range(draw(few)):
        rows["contacts"].append(
            Contact(
                draw(parents),
                draw(st.sampled_from(FIRST_NAMES)),
                draw(st.sampled_from(LAST_NAMES)),
                emails=draw(st.lists(st.sampled_from(SCOPE_EMAILS), max_size=1)),
                id=f"co{i}",
            )
        )
    for i in range(draw(few)):
        rows["opportunities"].append(
            Opportunity(
                draw(parents),
                "Deal",
                Money(draw(st.sampled_from(["10", "2500.5", "99999"])), "CNY"),
                owner_id=draw(people),
                id=f"op{i}",
            )
        )
    for i in range(draw(few)):
        rows["tickets"].append(
            Ticket(draw(parents), "Help", priority=draw(st.sampled_from(["low", "high"])), assignee_id=draw(people), id=f"ti{i}")
        )
    for i in range(draw(few)):
        rows["interactions"].append(
            Interaction(draw(parents), draw(st.sampled_from(["call", "email"])), draw(hours), user_id=draw(people), id=f"in{i}")
        )
    for i in range(draw(few)):
        rows["orders"].append(
            Order(
                draw(parents),
                draw(hours),
                Money(draw(st.sampled_from(["10", "2500.5"])), draw(st.sampled_from(["CNY", "USD"]))),
                id=f"or{i}",
            )
        )
    for i in range(draw(few)):
        rows["tasks"].append(
            Task(
                "Follow up",
                draw(hours),
                assignee_id=draw(people),
                related_id=draw(st.none() | parents),
                done=draw(st.booleans()),
                id=f"ta{i}",
            )
        )
    for i in range(draw(few)):
        answered = draw(st.booleans())
        rows["surveys"].append(
            Survey(
                draw(parents),
                "csat",
                SCOPE_AT,
                score=draw(st.integers(min_value=1, max_value=5)) if answered else None,
                comment=draw(st.sampled_from(["", "great", "slow reply"])) if answered else "",
                user_id=draw(people),
                answered_at=SCOPE_AT + dt.timedelta(hours=1) if answered else None,
                id=f"su{i}",
            )
        )
    from pycrm import Campaign, CampaignMember, CampaignResponse

    for i in range(draw(few)):
        rows["campaigns"].append(
            Campaign("Promo", draw(st.sampled_from(["email", "sms"])), owner_id=draw(people), window_days=draw(few), id=f"ca{i}")
        )
    campaigns = st.sampled_from([c.id for c in rows["campaigns"]])
    for i in range(draw(few)):
        rows["campaign_members"].append(CampaignMember(draw(campaigns), draw(parents), draw(hours), id=f"me{i}"))
    for i in range(draw(few)):
        member = draw(st.sampled_from(rows["campaign_members"]))
        kind = draw(st.sampled_from(["sent", "opened", "bounced"]))
        rows["campaign_responses"].append(
            CampaignResponse(member.id, member.campaign_id, member.customer_id, kind, draw(hours), id=f"re{i}")
        )
    return SecurityWorld(rows)


@st.composite
def custom_roles(draw: st.DrawFn) -> Any:
    """A host-defined role: a few random (entity, action, scope) permissions, wildcards included."""
    from pycrm import Permission, Role
    from pycrm.domain import ACTIONS, SCOPES

    perms = draw(
        st.lists(
            st.builds(
                Permission,
                st.sampled_from(["*", *SCOPE_REPOSITORIES]),
                st.sampled_from(["*", *ACTIONS]),
                st.sampled_from(SCOPES),
            ),
            min_size=1,
            max_size=5,
        )
    )
    return Role(f"custom_{draw(st.integers(0, 99))}", perms)


@st.composite
def scoped_actors(draw: st.DrawFn) -> Any:
    """A user acting on the store: a stored user, an unknown one or an unsaved one (no id), with built-in
    and custom roles, in a team or in none."""
    from pycrm import User

    uid = draw(st.sampled_from([*SCOPE_USER_IDS, *SCOPE_USER_IDS, "u9", None]))
    roles = draw(
        st.lists(
            st.one_of(st.sampled_from(["admin", "manager", "sales", "support", "analyst"]), custom_roles()),
            min_size=1,
            max_size=2,
        )
    )
    return User(f"Actor {uid}", f"{uid or 'new'}@example.com", roles=roles, team_id=draw(st.sampled_from(SCOPE_TEAMS)), id=uid)
