"""Normalization: the same value written differently normalizes the same; normalizing twice changes nothing."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycrm.dedup import KINDS
from pycrm.dedup import _normalize as nz

NORMALIZERS = {
    "text": nz.normalize_text,
    "name": nz.normalize_name,
    "address": nz.normalize_address,
    "email": nz.normalize_email,
    "id": nz.normalize_id,
    "postcode": nz.normalize_postcode,
    "date": nz.normalize_date,
    "phone": lambda s: nz.normalize_phone(s, "CN"),
}

ascii_words = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
any_text = st.text(max_size=40)


def fullwidth(text: str) -> str:
    return "".join("\u3000" if ch == " " else chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


@pytest.mark.parametrize("kind", sorted(NORMALIZERS))
@given(text=any_text)
def test_normalizing_twice_changes_nothing(kind: str, text: str) -> None:
    normalize = NORMALIZERS[kind]
    once = normalize(text)
    assert normalize(once) == once


@pytest.mark.parametrize("kind", ["text", "name", "address", "email", "id", "postcode"])
@given(text=ascii_words)
def test_full_width_forms_normalize_like_half_width(kind: str, text: str) -> None:
    normalize = NORMALIZERS[kind]
    assert normalize(fullwidth(text)) == normalize(text)


@pytest.mark.parametrize("kind", ["text", "name", "address", "email", "id", "postcode"])
@given(text=ascii_words)
def test_case_does_not_matter(kind: str, text: str) -> None:
    normalize = NORMALIZERS[kind]
    assert normalize(text.upper()) == normalize(text.lower())


@given(
    words=st.lists(st.text(alphabet="abcdefghij", min_size=1, max_size=8), min_size=1, max_size=4),
    pad=st.sampled_from([" ", "  ", " , ", ". ", "\t"]),
)
def test_punctuation_and_spacing_do_not_matter_in_names(words: list[str], pad: str) -> None:
    assert nz.normalize_name(pad.join(words) + pad) == nz.normalize_name(" ".join(words))


@given(
    prefix=st.sampled_from(["130", "138", "150", "186", "199"]),
    rest=st.integers(0, 99_999_999),
    style=st.sampled_from(["{p} {a} {b}", "{p}-{a}-{b}", "+86 {p}{a}{b}", "0086 {p} {a} {b}", "(+86) {p} {a}-{b}", "{p}{a}{b}"]),
)
def test_phones_written_any_way_normalize_to_one_e164(prefix: str, rest: int, style: str) -> None:
    digits = f"{rest:08d}"
    written = style.format(p=prefix, a=digits[:4], b=digits[4:])
    assert nz.normalize_phone(fullwidth(written), "CN") == nz.normalize_phone(written, "CN") == f"+86{prefix}{digits}"


@given(day=st.dates(dt.date(1900, 1, 1), dt.date(2099, 12, 31)))
def test_dates_written_any_way_normalize_the_same(day: dt.date) -> None:
    expected = day.strftime("%Y%m%d")
    forms = [
        day.isoformat(),
        day.strftime("%Y%m%d"),
        day.strftime("%Y/%m/%d"),
        day.strftime("%B %d, %Y"),
        day.strftime("%d %b %Y"),
        f"{day.year}年{day.month}月{day.day}日",
        day,
        dt.datetime(day.year, day.month, day.day, 12, 30),
    ]
    if day.day > 12:  # unambiguous day-first and month-first
        forms += [day.strftime("%d/%m/%Y"), day.strftime("%m/%d/%Y")]
    for form in forms:
        assert nz.normalize_date(form) == expected, form


def _level(kind: str, a: str, b: str) -> str:
    k = KINDS[kind]
    na, nb = k.normalize(a, None), k.normalize(b, None)
    if k.key(na) == k.key(nb):
        return k.levels[0]
    prepared = k.prepare([na, nb])
    level = k.compare(prepared, np.array([0]), np.array([1]))[0]
    return k.levels[level]


@given(day=st.dates(dt.date(1900, 1, 13), dt.date(2099, 12, 31)).filter(lambda d: d.day <= 12 and d.day != d.month))
def test_a_day_month_swap_is_close_not_different(day: dt.date) -> None:
    swapped = f"{day.year}{day.day:02d}{day.month:02d}"
    assert _level("date", day.isoformat(), swapped) == "close"


def test_partial_dates_agree_with_full_ones() -> None:
    assert nz.normalize_date("1990-03") == "19900300"
    assert _level("date", "1990-03", "1990-03-05") == "close"
    assert _level("date", "1990", "1990-03-05") == "close"
    assert _level("date", "1990-03-05", "1972-11-20") == "different"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("12 Main St.", "12 main street"),
        ("Apt 5, 12 Main Rd", "apartment 5 12 main road"),
        ("上海市长宁区福泉路99号", "长宁区福泉路９９号"),
        ("广东省深圳市南山区科技园", "南山区科技园"),
        ("中国北京市海淀区中关村大街1号", "海淀区中关村大街1号"),
    ],
)
def test_address_variants_normalize_the_same(a: str, b: str) -> None:
    assert nz.normalize_address(a) == nz.normalize_address(b)


def test_other_house_numbers_are_not_close() -> None:
    assert _level("address", "12 main street", "14 main street") in ("similar", "different")
    assert _level("address", "12 main street", "12 mian street") == "close"


def test_emails_ignore_case_spaces_and_mailto() -> None:
    assert nz.normalize_email(" MAILTO:Li.Lei@Example.COM ") == "li.lei@example.com"
    assert _level("email", "li.lei@example.com", "li.lei@exmaple.com") in ("typo", "different")
    assert _level("email", "li.lei@example.com", "li.lei@qq.com") == "same mailbox name"


def test_local_and_international_phone_forms_are_the_same_number() -> None:
    assert _level("phone", "021-34064888", "+86 21 3406 4888") == "same number"
