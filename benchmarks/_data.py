"""Deterministic, realistic customer rows for the benchmarks.

``customer_rows(n, seed)`` yields ``(name, kind, email, phone)`` tuples of raw text as an import would
see it: Chinese and English person names, Chinese and English company names, unique e-mail addresses
(some with upper-case letters, so normalization has work to do) and unique CN mobile numbers written
the ways people write them (``13800138000``, ``138 0013 8000``, ``+86 138-0013-8000``, ``0086 ...``).
The same ``(n, seed)`` always gives the same rows, and row ``i`` does not depend on ``n``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

__all__ = ["DATA_VERSION", "Row", "customer_rows"]

#: Bump when the generated rows change, so cached stores are rebuilt.
DATA_VERSION = 1

Row = tuple[str, str, str, str]  # name, kind, email, phone

# fmt: off
_SURNAMES = [
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"), ("黄", "huang"),
    ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"), ("马", "ma"), ("朱", "zhu"),
    ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("高", "gao"), ("林", "lin"), ("罗", "luo"), ("郑", "zheng"),
    ("梁", "liang"), ("谢", "xie"), ("宋", "song"), ("唐", "tang"), ("许", "xu"), ("韩", "han"), ("冯", "feng"),
    ("邓", "deng"), ("曹", "cao"), ("彭", "peng"), ("曾", "zeng"), ("萧", "xiao"), ("田", "tian"), ("董", "dong"),
    ("潘", "pan"), ("欧阳", "ouyang"), ("司马", "sima"), ("诸葛", "zhuge"), ("上官", "shangguan"),
]
_GIVEN = [
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"), ("强", "qiang"),
    ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"), ("杰", "jie"), ("娟", "juan"),
    ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀", "xiu"), ("霞", "xia"), ("平", "ping"), ("刚", "gang"),
    ("桂", "gui"), ("英", "ying"), ("华", "hua"), ("梅", "mei"), ("建", "jian"), ("国", "guo"), ("文", "wen"),
    ("辉", "hui"), ("鑫", "xin"), ("宇", "yu"), ("浩", "hao"), ("欣", "xin"), ("怡", "yi"), ("子", "zi"),
    ("涵", "han"), ("晨", "chen"), ("雨", "yu"), ("思", "si"), ("嘉", "jia"), ("婷", "ting"), ("博", "bo"),
]
_FIRST = [
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William", "Elizabeth",
    "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
    "Daniel", "Emily", "Matthew", "Olivia", "Anthony", "Sophie", "Mark", "Chloe", "Paul", "Grace", "Kevin",
    "Hannah", "Oliver", "Amelia", "Jack", "Isla", "Harry", "Ava", "George", "Mia",
]
_LAST = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Wilson", "Taylor",
    "Anderson", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris", "Clark", "Lewis",
    "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Green", "Baker", "O'Brien", "Evans",
    "Hughes", "Edwards", "Collins", "Stewart", "Morris", "Murphy", "Cook", "Rogers",
]
_CITIES = [
    "上海", "北京", "深圳", "广州", "杭州", "成都", "南京", "武汉", "苏州", "西安", "重庆", "天津",
]
_CN_WORDS = [
    "华信", "恒通", "金鼎", "瑞丰", "宏达", "新世纪", "中联", "东方", "远航", "百盛", "锦程", "天成",
]
_CN_TRADES = [
    "科技", "贸易", "电子", "物流", "餐饮", "文化传媒", "医疗器械", "建材", "服饰", "信息技术",
]
_EN_WORDS = [
    "Acme", "Globex", "Initech", "Summit", "Harbor", "Pioneer", "Evergreen", "Northwind", "Bluebird", "Apex",
]
_EN_TRADES = [
    "Trading", "Logistics", "Software", "Foods", "Textiles", "Consulting", "Electronics", "Media",
]
_EN_FORMS = [
    "Ltd", "Limited", "Co.", "Inc.", "LLC", "GmbH", "Pte. Ltd.",
]
_PERSONAL_DOMAINS = [
    "qq.com", "163.com", "126.com", "sina.com", "foxmail.com", "gmail.com", "outlook.com", "hotmail.com",
    "yahoo.com", "icloud.com",
]
_COMPANY_TLDS = [
    "com.cn", "cn", "com", "net", "co.uk", "com.hk",
]
# CN mobile prefixes that libphonenumber accepts as valid for every subscriber number.
_MOBILE_PREFIXES = [
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155",
    "156", "157", "158", "159", "170", "176", "177", "178", "180", "181", "182", "183", "184", "185", "186",
    "187", "188", "189", "191", "198", "199",
]
# fmt: on
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _B36[r] + out
        if not n:
            return out


def _phone(i: int, rng: random.Random) -> str:
    # (i * a + b) mod 10**8 with gcd(a, 10) == 1 is a permutation: subscriber numbers never repeat.
    sub = f"{(i * 48_271_009 + 13_579_246) % 100_000_000:08d}"
    p = rng.choice(_MOBILE_PREFIXES)
    style = rng.random()
    if style < 0.40:
        return p + sub
    if style < 0.65:
        return f"{p} {sub[:4]} {sub[4:]}"
    if style < 0.85:
        return f"+86 {p} {sub[:4]} {sub[4:]}"
    if style < 0.95:
        return f"+86-{p}-{sub[:4]}-{sub[4:]}"
    return f"0086 {p}{sub}"


def _maybe_title(local: str, rng: random.Random) -> str:
    return local.title() if rng.random() < 0.15 else local


def customer_rows(n: int, seed: int = 20240601) -> Iterator[Row]:
    """``n`` rows of raw customer text; deterministic in ``seed``."""
    rng = random.Random(seed)
    for i in range(n):
        tag = _base36(i)
        r = rng.random()
        if r < 0.55:  # Chinese person
            sn, spy = rng.choice(_SURNAMES)
            given = [rng.choice(_GIVEN) for _ in range(rng.choice((1, 2, 2)))]
            name = sn + "".join(g for g, _ in given)
            gpy = "".join(p for _, p in given)
            local = rng.choice((f"{gpy}.{spy}", f"{spy}{gpy}", f"{spy}_{gpy}"))
            email = f"{_maybe_title(local, rng)}.{tag}@{rng.choice(_PERSONAL_DOMAINS)}"
            kind = "person"
        elif r < 0.85:  # English person
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            name = f"{first} {last}"
            local = f"{first}.{last}".replace("'", "").lower()
            email = f"{_maybe_title(local, rng)}.{tag}@{rng.choice(_PERSONAL_DOMAINS)}"
            kind = "person"
        elif r < 0.95:  # Chinese company
            word = rng.choice(_CN_WORDS)
            name = f"{rng.choice(_CITIES)}{word}{rng.choice(_CN_TRADES)}有限公司"
            box = rng.choice(("sales", "info", "service", "contact"))
            email = f"{box}.{tag}@{rng.choice(_EN_WORDS).lower()}-{tag}.{rng.choice(_COMPANY_TLDS)}"
            kind = "company"
        else:  # English company
            word = rng.choice(_EN_WORDS)
            name = f"{word} {rng.choice(_EN_TRADES)} {rng.choice(_EN_FORMS)}"
            email = f"{rng.choice(('sales', 'hello', 'office'))}.{tag}@{word.lower()}{tag}.{rng.choice(_COMPANY_TLDS)}"
            kind = "company"
        yield name, kind, email, _phone(i, rng)
