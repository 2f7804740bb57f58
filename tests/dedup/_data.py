"""Small, deterministic data sets with known duplicates, for the dedup tests."""

from __future__ import annotations

import random
from typing import Any

GIVEN = [
    "james",
    "mary",
    "olivia",
    "liam",
    "noah",
    "emma",
    "wei",
    "mei",
    "chloe",
    "jack",
    "lachlan",
    "kylee",
    "joshua",
    "isabella",
    "thomas",
    "charlotte",
    "william",
    "sophie",
    "daniel",
    "grace",
]
SURNAMES = [
    "smith",
    "johnson",
    "obrien",
    "brown",
    "taylor",
    "wong",
    "li",
    "garcia",
    "mueller",
    "nguyen",
    "paterson",
    "eglinton",
    "stephenson",
    "purdon",
    "waller",
    "berry",
    "julius",
    "bishop",
    "lombardi",
    "harrington",
]
STREETS = [
    "main street",
    "giblin street",
    "goldfinch circuit",
    "maltby circuit",
    "ramsay place",
    "dumas street",
    "blacket street",
    "neworra place",
    "yerralee road",
    "florey drive",
    "fowles street",
    "rose scott circuit",
]
SUBURBS = [
    ("st james", "4011", "wa"),
    ("bittern", "4814", "qld"),
    ("canterbury", "2776", "vic"),
    ("coolaroo", "3465", "nsw"),
    ("garbutt", "2260", "vic"),
    ("eureka", "2263", "nsw"),
    ("worongary", "6225", "qld"),
]


def _typo(rng: random.Random, s: str) -> str:
    i = rng.randrange(len(s))
    return s[:i] + rng.choice("abcdefghijklmnopqrstuvwxyz") + s[i + 1 :]


def people(n: int, seed: int = 7, dup_rate: float = 0.3) -> tuple[list[dict[str, Any]], set[tuple[str, str]]]:
    """``n`` person records (FEBRL-like columns), about ``dup_rate`` of them duplicates with one or two
    typos or a missing value; returns the records and the true pairs."""
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    truth: set[tuple[str, str]] = set()
    k = 0
    while len(records) < n:
        suburb, postcode, state = rng.choice(SUBURBS)
        org = {
            "given_name": rng.choice(GIVEN),
            "surname": rng.choice(SURNAMES),
            "address": f"{rng.randint(1, 200)} {rng.choice(STREETS)}",
            "suburb": suburb,
            "postcode": postcode,
            "state": state,
            "date_of_birth": f"{rng.randint(1930, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}",
            "soc_sec_id": str(rng.randint(1_000_000, 9_999_999)),
        }
        group = [dict(org, id=f"p{k}-0")]
        if rng.random() < dup_rate:
            dup = dict(org, id=f"p{k}-1")
            for f in rng.sample(["given_name", "surname", "address", "date_of_birth", "soc_sec_id", "suburb"], 2):
                dup[f] = None if rng.random() < 0.2 else _typo(rng, dup[f])
            group.append(dup)
            truth.add((f"p{k}-0", f"p{k}-1"))
        records += group
        k += 1
    kept = {r["id"] for r in records[:n]}
    return records[:n], {p for p in truth if p[0] in kept and p[1] in kept}


_CN_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_CN_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华梅建国文辉鑫宇浩欣怡子涵晨雨思嘉婷博"
_FIRST = [*(g.title() for g in GIVEN), "Oscar", "Ruby", "Leo", "Zoe", "Adam", "Lily", "Ryan", "Hannah", "Peter", "Kate"]
_LAST = [*(s.title() for s in SURNAMES), "Chen", "Zhang", "Liu", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma"]


def strangers(n: int, seed: int = 11) -> list[dict[str, Any]]:
    """``n`` different people: unique phones and e-mails, common Chinese and Latin names (each shared by
    a few records), and e-mails made of the name, so strangers' e-mails look alike; no duplicates."""
    rng = random.Random(seed)
    phones = rng.sample(range(10**8, 10**9), n)
    out = []
    for i in range(n):
        if rng.random() < 0.7:
            name = rng.choice(_CN_SURNAMES) + rng.choice(_CN_GIVEN) + rng.choice(_CN_GIVEN)
            local = f"user{i}"
        else:
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            name = f"{first} {last}"
            local = f"{first}.{last}.{i:x}".lower()
        out.append({"id": f"s{i}", "name": name, "phone": f"+86 13{phones[i]}", "email": f"{local}@example.com"})
    return out
