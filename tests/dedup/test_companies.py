"""Company names: the same company written the Chinese or English way matches; different companies don't."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pycrm import Customer
from pycrm.dedup import KINDS, find_duplicates

SAME = [
    ("Acme Co., Ltd.", "ACME LIMITED"),
    ("Acme, Inc.", "acme incorporated"),
    ("ＡＣＭＥ　ＣＯ．，ＬＴＤ．", "Acme Co Ltd"),
    ("Siemens AG", "SIEMENS"),
    ("Robert Bosch GmbH", "robert bosch"),
    ("Procter & Gamble Co.", "Procter and Gamble"),
    ("The Coca-Cola Company", "Coca Cola Co"),
    ("Lenovo (Beijing) Ltd", "LENOVO"),
    ("华为技术有限公司", "华为技术股份有限公司"),
    ("阿里巴巴（中国）网络技术有限公司", "阿里巴巴网络技术有限公司"),
    ("上海携程商务有限公司", "携程商务（上海）有限公司"),
    ("腾讯科技(深圳)有限公司", "深圳腾讯科技有限公司"),
    ("北京字节跳动科技有限公司", "北京字节跳动科技有限责任公司"),
    ("小米科技有限责任公司", "小米科技 有限公司"),
]

DIFFERENT = [
    ("华为技术有限公司", "中兴通讯股份有限公司"),
    ("北京字节跳动科技有限公司", "北京百度网讯科技有限公司"),
    ("Acme Ltd", "Apex Ltd"),
    ("Globex Corporation", "Initech LLC"),
    ("Apple Inc", "Applied Materials Inc"),
    ("阿里巴巴网络技术有限公司", "网易网络有限公司"),
]


def test_distinct_companies_with_similar_names_are_not_merged() -> None:
    rows = [{"id": str(i), "name": a, "phone": f"+86 21 6{i:03d} 1234"} for i, (a, _) in enumerate(DIFFERENT)] + [
        {"id": f"{i}b", "name": b, "phone": f"+86 10 8{i:03d} 5678"} for i, (_, b) in enumerate(DIFFERENT)
    ]
    rows += [{"id": f"x{i}", "name": f"公司{i}号", "phone": f"+86 20 3{i:03d} 0000"} for i in range(30)]
    assert find_duplicates(rows) == []


def name_level(a: str, b: str) -> str:
    kind = KINDS["name"]
    na, nb = kind.normalize(a, None), kind.normalize(b, None)
    if kind.key(na) == kind.key(nb):
        return "exact"
    level = kind.compare(kind.prepare([na, nb]), np.array([0]), np.array([1]))[0]
    return kind.levels[level]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_variants_of_one_company_compare_as_the_same_name(a: str, b: str) -> None:
    assert name_level(a, b) == "exact"


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_different_companies_do_not_compare_as_close_names(a: str, b: str) -> None:
    assert name_level(a, b) in ("similar", "different")


CN_WORDS = ["华夏", "长城", "东方", "新世纪", "金桥", "蓝天", "鸿运", "科创", "星河", "远航", "博雅", "恒信"]
CN_TRADES = ["科技", "贸易", "电子商务", "餐饮管理", "物流", "医药"]
EN_WORDS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Cyberdyne", "Northwind", "Contoso"]
EN_TRADES = ["Trading", "Software", "Logistics", "Foods", "Pharma", "Robotics"]


def company_book(seed: int = 3) -> tuple[list[Customer], set[frozenset[str]]]:
    """About 150 distinct companies with phones and e-mails, and variant records of some of them."""
    rng = random.Random(seed)
    customers: list[Customer] = []
    truth: set[frozenset[str]] = set()
    names = {f"{w}{t}有限公司" for w in CN_WORDS for t in CN_TRADES} | {f"{w} {t} Ltd" for w in EN_WORDS for t in EN_TRADES}
    for i, name in enumerate(sorted(names)[:150]):
        cn = not name.isascii()
        phone = f"+86 21 {rng.randint(3000, 6999)} {rng.randint(1000, 9999)}" if cn else f"+1 212 555 {rng.randint(1000, 9999)}"
        email = f"info{i}@{'corp' if cn else name.split()[0].lower()}{i}.com"
        customers.append(Customer(name, phones=[phone], emails=[email], id=f"c{i}"))
        if i % 5 == 0:
            if cn:
                variant = name.replace("有限公司", "股份有限公司").replace("科技", "科技（上海）")
            else:
                variant = name.upper().replace(" LTD", " LIMITED")
            customers.append(Customer(variant, phones=[phone.replace(" ", "")], id=f"c{i}v"))
            truth.add(frozenset({f"c{i}", f"c{i}v"}))
    rng.shuffle(customers)
    return customers, truth


def test_company_variants_are_found_and_nothing_else() -> None:
    customers, truth = company_book()
    found = {frozenset(c.ids) for c in find_duplicates(customers)}
    assert found == truth
