"""Normalization before comparison: one pure ``str -> str`` function per kind of value.

Every function here is idempotent (normalizing twice changes nothing) and folds case, full-width and
half-width forms (NFKC), punctuation and spacing, so that the comparators see only differences that
matter.

>>> normalize_name("ACME Co., Ltd.")
'acme'
>>> normalize_name("阿里巴巴（中国）网络技术有限公司") == normalize_name("阿里巴巴网络技术有限公司")
True
>>> normalize_address("12 Main St.")
'12 main street'
>>> normalize_date("05/03/1990"), normalize_date("1990年3月5日"), normalize_date("1990")
('19900305', '19900305', '19900000')
>>> normalize_phone("０２０ ７９４６ ００１８", "GB")
'+442079460018'
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache

import phonenumbers

__all__ = [
    "clean_text",
    "normalize_address",
    "normalize_date",
    "normalize_email",
    "normalize_id",
    "normalize_name",
    "normalize_phone",
    "normalize_postcode",
    "normalize_text",
    "soundex",
]

_CJK = r"\u2e80-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f\u3040-\u30ff\uac00-\ud7af"
_CJK_RE = re.compile(f"[{_CJK}]")
_SPACE_NEAR_CJK = re.compile(f"(?<=[{_CJK}]) +| +(?=[{_CJK}])")
_SPACES = re.compile(r"\s+")


def _is_punct(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat[0] in "PSZC"


@lru_cache(maxsize=4096)
def _punct_table_char(ch: str) -> str:
    return " " if _is_punct(ch) else ch


_ASCII_PUNCT = str.maketrans({chr(i): " " for i in range(128) if not chr(i).isalnum()})


def clean_text(value: str) -> str:
    """NFKC, case-folded, punctuation turned into spaces, spaces collapsed, no spaces next to CJK text.

    >>> clean_text("  Ｈｅｌｌｏ,   WORLD! ")
    'hello world'
    >>> clean_text("李 雷")
    '李雷'
    """
    if value.isascii():
        text = value.lower()
        if not text.replace(" ", "").isalnum():
            text = text.translate(_ASCII_PUNCT)
        return " ".join(text.split())
    text = unicodedata.normalize("NFKC", value).casefold()
    text = unicodedata.normalize("NFKC", text)  # casefold can produce characters NFKC would change
    if not text.isascii() or not text.replace(" ", "").isalnum():
        text = "".join(_punct_table_char(ch) for ch in text)
    text = " ".join(text.split())
    if _CJK_RE.search(text):
        text = _SPACE_NEAR_CJK.sub("", text)
    return text


def normalize_text(value: str) -> str:
    """Free text: :func:`clean_text`."""
    return clean_text(value)


# ---------------------------------------------------------------- names and companies

#: English (and other Latin-script) legal forms, removed from the end of a name.
LEGAL_SUFFIXES_EN = frozenset(
    """ltd limited inc incorporated corp corporation co company llc llp plc lp gmbh mbh ag kg ohg ug sa sas sarl
    srl spa bv nv pte pty kk oy ab asa as aps ek se sl slu sro sp zoo nl""".split()  # noqa: SIM905 - a word list
)
_LEGAL_PHRASES_EN = ("z o o", "s a", "s r l", "s p a", "b v", "n v", "l l c", "p l c", "pty ltd", "co ltd")

#: Chinese legal forms, longest first, removed from the end of a name.
LEGAL_SUFFIXES_CN = ("股份有限公司", "有限责任公司", "有限公司", "集团公司", "总公司", "公司")

#: Provinces, autonomous regions and large cities of China (without 省/市/自治区).
CN_PLACES = tuple(
    sorted(
        """北京 天津 上海 重庆 河北 山西 辽宁 吉林 黑龙江 江苏 浙江 安徽 福建 江西 山东 河南 湖北 湖南 广东 海南 四川 贵州
        云南 陕西 甘肃 青海 台湾 内蒙古 广西 西藏 宁夏 新疆 香港 澳门 广州 深圳 杭州 南京 苏州 武汉 成都 西安 长沙
        郑州 青岛 厦门 大连 宁波 济南 沈阳 哈尔滨 长春 福州 合肥 昆明 南昌 石家庄 太原 贵阳 南宁 兰州 海口 无锡 佛山
        东莞 珠海 温州 常州 南通 徐州 烟台 泉州 绍兴 嘉兴 金华 台州 中山 惠州 扬州 乌鲁木齐 呼和浩特 银川 西宁 拉萨""".split(),  # noqa: SIM905
        key=len,
        reverse=True,
    )
)
_CN_PLACE_SUFFIXES = ("维吾尔自治区", "壮族自治区", "回族自治区", "特别行政区", "自治区", "省", "市")
_CN_PLACE_ALT = "|".join(CN_PLACES)
_CN_SUFFIX_ALT = "|".join(_CN_PLACE_SUFFIXES)
_CN_PLACE_PREFIX = re.compile(f"^(?:中国)?(?:{_CN_PLACE_ALT})(?:{_CN_SUFFIX_ALT})?")
_CN_PLACE_PAREN = re.compile(f"[(（]\\s*(?:中国|{_CN_PLACE_ALT})(?:{_CN_SUFFIX_ALT})?\\s*[)）]")
_EN_PAREN_PLACE = re.compile(r"\((?:china|prc|hk|hong kong|shanghai|beijing|shenzhen|guangzhou)\)", re.IGNORECASE)


def _strip_cn(text: str) -> str:
    text = _CN_PLACE_PAREN.sub("", text)
    changed = True
    while changed:
        changed = False
        for suffix in LEGAL_SUFFIXES_CN:
            if text.endswith(suffix) and len(text) > len(suffix) + 1:
                text = text[: -len(suffix)]
                changed = True
                break
    stripped = _CN_PLACE_PREFIX.sub("", text, count=1)
    if len(stripped) >= 2:
        text = stripped
    return text


def _fixed_point(func: Callable[[str], str], value: str) -> str:
    """Apply ``func`` until nothing changes (a few rounds at most), so normalizing is idempotent."""
    for _ in range(6):
        out = func(value)
        if out == value:
            break
        value = out
    return value


def normalize_name(value: str) -> str:
    """A person's or a company's name: :func:`clean_text` less legal forms and places in brackets.

    >>> normalize_name("Acme, Inc.") == normalize_name("ACME INCORPORATED") == normalize_name("Acme")
    True
    >>> normalize_name("上海携程商务有限公司") == normalize_name("携程商务（上海）有限公司")
    True
    >>> normalize_name("Procter & Gamble GmbH")
    'procter and gamble'
    """
    out = _name_once(value)
    if out == value or (out.isascii() and not _name_may_change(out)):
        return out
    return _fixed_point(_name_once, out)


def _name_may_change(text: str) -> bool:
    words = text.split(" ")
    return len(words) > 1 and (words[0] == "the" or words[-1] in LEGAL_SUFFIXES_EN or words[-1] == "and")


def _name_once(value: str) -> str:
    text = unicodedata.normalize("NFKC", value)
    if _CJK_RE.search(text):
        text = _strip_cn(text.replace(" ", ""))
    text = _EN_PAREN_PLACE.sub(" ", text).replace("&", " and ")
    text = clean_text(text)
    if text.startswith("the ") and len(text) > 4:
        text = text[4:]
    for phrase in _LEGAL_PHRASES_EN:
        if text.endswith(" " + phrase):
            text = text[: -len(phrase) - 1]
    words = text.split(" ")
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES_EN:
        words.pop()
    if len(words) > 1 and words[-1] == "and":
        words.pop()
    text = " ".join(words)
    if _CJK_RE.search(text):
        text = _strip_cn(text)
    return text


_SOUNDEX = str.maketrans("bfpvcgjkqsxzdtlmnr", "111122222222334556")


def soundex(value: str) -> str:
    """Soundex code of a Latin-script name (letters beyond the code are ignored); other scripts as they are.

    >>> soundex("robert"), soundex("rupert"), soundex("李雷")
    ('r163', 'r163', '李雷')
    """
    letters = "".join(ch for ch in value if "a" <= ch <= "z")
    if not letters:
        return value
    first = letters[0]
    out = [first]
    last = first.translate(_SOUNDEX)
    for ch in letters[1:]:
        code = ch.translate(_SOUNDEX)
        if code.isdigit() and code != last:
            out.append(code)
            if len(out) == 4:
                break
        if ch not in "hw":
            last = code
    return "".join(out).ljust(4, "0")


# ---------------------------------------------------------------- addresses

#: Street-type and other abbreviations, expanded (lower case, after punctuation is removed).
ADDRESS_ABBREVIATIONS = {
    "st": "street",
    "str": "street",
    "rd": "road",
    "ave": "avenue",
    "av": "avenue",
    "blvd": "boulevard",
    "dr": "drive",
    "ln": "lane",
    "ct": "court",
    "cres": "crescent",
    "cr": "crescent",
    "pl": "place",
    "sq": "square",
    "hwy": "highway",
    "pde": "parade",
    "cct": "circuit",
    "tce": "terrace",
    "pkwy": "parkway",
    "apt": "apartment",
    "apmt": "apartment",
    "apmnt": "apartment",
    "ste": "suite",
    "fl": "floor",
    "flr": "floor",
    "bldg": "building",
    "mt": "mount",
    "vlge": "village",
    "nth": "north",
    "sth": "south",
    "rm": "room",
}
_ADDRESS_DROP = frozenset({"no", "nr", "number"})
_CN_ADDRESS_PREFIX = re.compile(f"^(?:中国|中华人民共和国)?(?:(?:{_CN_PLACE_ALT})(?:{_CN_SUFFIX_ALT})?)+")


def normalize_address(value: str) -> str:
    """A street address: :func:`clean_text`, abbreviations expanded, Chinese province/city prefixes removed.

    >>> normalize_address("Apt 5, 12 Main St")
    'apartment 5 12 main street'
    >>> normalize_address("广东省深圳市南山区科技园１号") == normalize_address("南山区科技园1号")
    True
    """
    out = _address_once(value)
    if out.isascii():
        return out
    return _fixed_point(_address_once, out)


def _address_once(value: str) -> str:
    text = clean_text(value)
    if _CJK_RE.search(text):
        stripped = _CN_ADDRESS_PREFIX.sub("", text, count=1)
        text = stripped if stripped else text
    words = [ADDRESS_ABBREVIATIONS.get(w, w) for w in text.split(" ") if w not in _ADDRESS_DROP]
    return " ".join(words) if words else text


# ---------------------------------------------------------------- emails, phones, ids, postcodes


def normalize_email(value: str) -> str:
    """An e-mail address: NFKC, trimmed, lower case, no ``mailto:``.

    >>> normalize_email("  MAILTO:Li.Lei@Example.COM ")
    'li.lei@example.com'
    """
    text = unicodedata.normalize("NFKC", value).strip().lower()
    while text.startswith("mailto:"):
        text = text[7:].strip()
    return unicodedata.normalize("NFKC", "".join(text.split()))


def normalize_phone(value: str, region: str | None = None) -> str:
    """E.164 when the number is valid (local numbers need ``region``); otherwise its digits.

    >>> normalize_phone("0086 138-0013-8000"), normalize_phone("138 0013 8000", "CN")
    ('+8613800138000', '+8613800138000')
    >>> normalize_phone("138 0013 8000")
    '13800138000'
    """
    text = unicodedata.normalize("NFKC", value).strip()
    if text.startswith("00") and len(text) > 2:
        text = "+" + text[2:]
    if text.startswith("+") or region:
        try:
            num = phonenumbers.parse(text, None if text.startswith("+") else region)
        except phonenumbers.NumberParseException:
            num = None
        if num is not None and phonenumbers.is_valid_number(num):
            return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
    digits = "".join(ch for ch in text if ch.isdigit())
    return ("+" + digits) if text.startswith("+") and digits else digits


def normalize_id(value: str) -> str:
    """An identifier (tax number, passport, social security id): upper case letters and digits only.

    >>> normalize_id(" 9131-0000 ab ")
    '91310000AB'
    """
    if value.isascii() and value.isalnum():
        return value.upper()
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).upper())
    return "".join(ch for ch in text if ch.isalnum())


def normalize_postcode(value: str) -> str:
    """A postcode: upper case letters and digits only.

    >>> normalize_postcode(" sw1a 1aa"), normalize_postcode("２００１２０")
    ('SW1A1AA', '200120')
    """
    return normalize_id(value)


# ---------------------------------------------------------------- dates

_MONTHS = {
    name: i + 1
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ]
    )
    for name in names
}
_DATE_PARTS = re.compile(r"\d+|[a-z]+")


def _year(text: str) -> int:
    y = int(text)
    if len(text) <= 2:
        y += 2000 if y <= dt.date.today().year % 100 else 1900
    return y


def _fmt(y: int, m: int, d: int) -> str:
    return f"{y:04d}{m:02d}{d:02d}"


def normalize_date(value: str | dt.date) -> str:
    """A date as ``YYYYMMDD``, ``00`` for an unknown month or day; text that is no date is kept as digits/letters.

    Day-first is assumed when ``05/03/1990`` is ambiguous; the date comparator treats a day/month swap as close.

    >>> normalize_date("1990-03-05"), normalize_date("March 5, 1990"), normalize_date("1990-03")
    ('19900305', '19900305', '19900300')
    >>> normalize_date("12/31/1990"), normalize_date("19160017")
    ('19901231', '19160017')
    """
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return _fmt(value.year, value.month, value.day)
    text = str(value)
    if len(text) == 8 and text.isascii() and text.isdigit() and 1000 <= int(text[:4]) <= 2999:
        return text
    return _fixed_point(_date_once, text)


def _date_once(value: str) -> str:
    text = unicodedata.normalize("NFKC", value).strip().lower()
    text = text.replace("年", "-").replace("月", "-").replace("日", " ").replace("号", " ")
    if "t" in text and text[:4].isdigit():  # ISO date-time
        text = text.split("t", 1)[0]
    parts: list[str] = _DATE_PARTS.findall(text)
    if not parts:
        return ""
    if len(parts) == 1 and parts[0].isdigit():
        p = parts[0]
        if len(p) == 8:
            if not 1000 <= int(p[:4]) <= 2999 and 1000 <= int(p[4:]) <= 2999:
                return p[4:] + p[2:4] + p[:2]
            return p
        if len(p) == 6 and 1000 <= int(p[:4]) <= 2999:
            return p + "00"
        if len(p) == 4:
            return p + "0000"
        return p
    month_word = None
    nums: list[str] = []
    for p in parts:
        if p.isdigit():
            nums.append(p)
        elif p[:3] in _MONTHS or p in _MONTHS:
            month_word = _MONTHS.get(p, _MONTHS.get(p[:3]))
    if month_word is not None:
        if not nums:
            return "".join(parts)
        year_s = next((n for n in nums if len(n) == 4), nums[-1])
        rest = [n for n in nums if n is not year_s]
        day = int(rest[0]) if rest else 0
        return _fmt(_year(year_s), month_word, day if 0 <= day <= 31 else 0)
    if len(nums) >= 2:
        if len(nums[0]) == 4:
            y, m, d = _year(nums[0]), int(nums[1]), int(nums[2]) if len(nums) > 2 else 0
        elif len(nums[-1]) == 4 or len(nums) == 3:
            a = int(nums[0])
            b = int(nums[1]) if len(nums) > 2 else 0
            y = _year(nums[-1])
            if len(nums) == 2:
                d, m = 0, a
            elif b > 12 >= a:
                m, d = a, b
            else:
                d, m = a, b
        else:
            return "".join(nums)
        if 0 <= m <= 12 and 0 <= d <= 31:
            return _fmt(y, m, d)
        return "".join(nums)
    return "".join(parts)
