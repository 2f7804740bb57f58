"""Comparators: one per kind of field, each turning pairs of normalized values into agreement levels.

Level 0 is always "exact" (equal after normalization) and the last level is "different"; the levels in
between are kind-specific ("typo", "swapped day/month", ...). A missing value on either side is level -1
and counts as no evidence. String similarity is computed by rapidfuzz in C++, many pairs per call, on
every core (``rapidfuzz.process.cpdist(..., workers=-1)``).

Values live in a :class:`Space`: every distinct normalized value is stored once (as an *element*), and a
record's field is a *code*, the tuple of its elements (one for a plain value, several for a list of
e-mail addresses or phones). Comparing two codes compares their elements and keeps the best level.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, JaroWinkler, Levenshtein

from pycrm.dedup import _normalize as nz

__all__ = ["KINDS", "Kind", "Space", "get_kind"]

I8 = npt.NDArray[np.int8]
I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]

WORKERS = -1  # every core
_UNIQUE_FACTOR = 3  # de-duplicate element pairs first when pairs outnumber elements this much


def _arr(values: Sequence[str]) -> npt.NDArray[np.object_]:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _sim(scorer: Any, a: npt.NDArray[np.object_], b: npt.NDArray[np.object_]) -> F32:
    if len(a) == 0:
        return np.zeros(0, dtype=np.float32)
    res: F32 = process.cpdist(a, b, scorer=scorer, workers=WORKERS, dtype=np.float32)
    return res


def _dist(a: npt.NDArray[np.object_], b: npt.NDArray[np.object_], cutoff: int = 3) -> npt.NDArray[np.int32]:
    if len(a) == 0:
        return np.zeros(0, dtype=np.int32)
    res: npt.NDArray[np.int32] = process.cpdist(a, b, scorer=OSA.distance, score_cutoff=cutoff, workers=WORKERS, dtype=np.int32)
    return res


def _by_thresholds(sim: F32, thresholds: Sequence[float]) -> I8:
    """Level 1 for sim >= thresholds[0], 2 for >= thresholds[1], ..., len(thresholds)+1 below all."""
    level = np.full(len(sim), len(thresholds) + 1, dtype=np.int8)
    for i in range(len(thresholds) - 1, -1, -1):
        level[sim >= thresholds[i]] = i + 1
    return level


def _factorize(values: Sequence[str]) -> I64:
    index: dict[str, int] = {}
    return np.fromiter((index.setdefault(v, len(index)) for v in values), dtype=np.int64, count=len(values))


# ---------------------------------------------------------------- the kinds


@attrs.frozen
class Kind:
    """How one kind of field is normalized, blocked and compared.

    ``normalize(raw, region) -> str``; ``key(normalized)`` decides equality (level 0);
    ``block(normalized)`` is the blocking token; ``prepare(elements)`` precomputes per-element data
    once; ``compare(prepared, ea, eb)`` returns the levels of element pairs that are not equal.
    """

    name: str
    levels: tuple[str, ...]
    normalize: Callable[[str, str | None], str]
    compare: Callable[[Any, I64, I64], I8]
    prepare: Callable[[list[str]], Any]
    key: Callable[[str], str] = attrs.field(default=lambda s: s)
    block: Callable[[str], str] = attrs.field(default=lambda s: s)
    #: fields of this kind may be compared across (given name vs surname, address line 1 vs line 2)
    swappable: bool = False


def _nospace(s: str) -> str:
    return s.replace(" ", "")


# -- names and free text


def _prep_strings(elements: list[str]) -> dict[str, Any]:
    return {
        "s": _arr(elements),
        "ns": _arr([_nospace(e) for e in elements]),
        "spaced": np.fromiter((" " in e for e in elements), dtype=bool, count=len(elements)),
    }


def _name_compare(p: dict[str, Any], ea: I64, eb: I64) -> I8:
    """Jaro-Winkler; for names of several words also word order ignored and spaces ignored."""
    s, ns = p["s"], p["ns"]
    sim = _sim(JaroWinkler.normalized_similarity, s[ea], s[eb])
    words = np.flatnonzero((p["spaced"][ea] | p["spaced"][eb]) & (sim < 0.92))
    if len(words):
        wa, wb = ea[words], eb[words]
        alt = np.maximum(_sim(fuzz.token_sort_ratio, s[wa], s[wb]) / 100, _sim(Levenshtein.normalized_similarity, ns[wa], ns[wb]))
        sim[words] = np.maximum(sim[words], alt)
    return _by_thresholds(sim, (0.92, 0.8))


def _text_compare(p: dict[str, Any], ea: I64, eb: I64) -> I8:
    """Jaro-Winkler with spaces ignored."""
    ns = p["ns"]
    return _by_thresholds(_sim(JaroWinkler.normalized_similarity, ns[ea], ns[eb]), (0.92, 0.8))


def _name_block(s: str) -> str:
    return nz.soundex(_nospace(s)) if s.isascii() else _nospace(s)[:4]


# -- addresses


def _prep_address(elements: list[str]) -> dict[str, Any]:
    p = _prep_strings(elements)
    p["digits"] = _factorize([" ".join("".join(ch if ch.isdigit() else " " for ch in e).split()) for e in elements])
    p["has_digits"] = np.fromiter((any(ch.isdigit() for ch in e) for e in elements), dtype=bool, count=len(elements))
    return p


def _address_compare(p: dict[str, Any], ea: I64, eb: I64) -> I8:
    """Levenshtein with spaces ignored, then word order ignored where that may help; other house numbers cap it."""
    s, ns = p["s"], p["ns"]
    sim = _sim(Levenshtein.normalized_similarity, ns[ea], ns[eb])
    maybe = np.flatnonzero((sim >= 0.5) & (sim < 0.9))
    if len(maybe):
        ma, mb = ea[maybe], eb[maybe]
        sim[maybe] = np.maximum(sim[maybe], _sim(fuzz.token_sort_ratio, s[ma], s[mb]) / 100)
    level = _by_thresholds(sim, (0.9, 0.75))
    other_number = p["has_digits"][ea] & p["has_digits"][eb] & (p["digits"][ea] != p["digits"][eb])
    level[other_number] = np.maximum(level[other_number], 2)
    return level


# -- exact, ids, postcodes


def _prep_none(elements: list[str]) -> dict[str, Any]:
    return {"s": _arr(elements)}


def _exact_compare(p: dict[str, Any], ea: I64, eb: I64) -> I8:
    return np.ones(len(ea), dtype=np.int8)


def _id_compare(p: dict[str, Any], ea: I64, eb: I64) -> I8:
    s = p["s"]
    d = _dist(s[ea], s[eb])
    short = np.minimum(p["len"][ea], p["len"][eb])
    level = np.full(len(ea), 3, dtype=np.int8)
    level[(d == 2) & (short >= 6)] = 2
    level[(d == 1) & (short >= 4)] = 1
    return level


def _prep_id(elements: list[str]) -> dict[str, Any]:
    return {"s": _arr(elements), "len": np.fromiter(map(len, elements), dtype=np.int64, count=len(elements))}


def _postcode_compare(p: dict[str, Any], ea: I64, eb: I64) -> I8:
    s = p["s"]
    d = _dist(s[ea], s[eb], cutoff=2)
    return np.where(d <= 1, 1, 2).astype(np.int8)


# -- e-mail addresses


def _prep_email(elements: list[str]) -> dict[str, Any]:
    return {"s": _arr(elements), "local": _factorize([e.split("@", 1)[0] for e in elements])}


def _email_compare(p: dict[str, Any], ea: I64, eb: I64) -> I8:
    s = p["s"]
    d = _dist(s[ea], s[eb], cutoff=2)
    level = np.full(len(ea), 3, dtype=np.int8)
    level[p["local"][ea] == p["local"][eb]] = 2
    level[d <= 1] = 1
    return level


# -- phones


def _prep_phone(elements: list[str]) -> dict[str, Any]:
    return {"s": _arr(elements), "tail": _factorize([e[-8:] if len(e) >= 8 else e for e in elements])}


def _phone_compare(p: dict[str, Any], ea: I64, eb: I64) -> I8:
    s = p["s"]
    d = _dist(s[ea], s[eb], cutoff=2)
    level = np.full(len(ea), 3, dtype=np.int8)
    level[d <= 1] = 2
    level[p["tail"][ea] == p["tail"][eb]] = 1
    return level


# -- dates


def _prep_date(elements: list[str]) -> dict[str, Any]:
    n = len(elements)
    y = np.zeros(n, dtype=np.int64)
    m = np.zeros(n, dtype=np.int64)
    d = np.zeros(n, dtype=np.int64)
    for i, e in enumerate(elements):
        if len(e) == 8 and e.isdigit():
            y[i], m[i], d[i] = int(e[:4]), int(e[4:6]), int(e[6:])
    return {"s": _arr(elements), "y": y, "m": m, "d": d}


def _date_compare(p: dict[str, Any], ea: I64, eb: I64) -> I8:
    y, m, d = p["y"], p["m"], p["d"]
    ya, yb, ma, mb, da, db = y[ea], y[eb], m[ea], m[eb], d[ea], d[eb]
    dist = _dist(p["s"][ea], p["s"][eb])
    level = np.full(len(ea), 3, dtype=np.int8)
    known = (ya > 0) & (yb > 0)
    level[(known & (ya == yb)) | (dist == 2)] = 2
    swapped = known & (ya == yb) & (ma == db) & (da == mb)
    partial = known & (ya == yb) & (((ma == mb) & ((da == 0) | (db == 0))) | (ma == 0) | (mb == 0))
    level[swapped | partial | (dist <= 1)] = 1
    return level


def _date_normalize(raw: str, region: str | None) -> str:
    return nz.normalize_date(raw)


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "name",
            ("exact", "close", "similar", "different"),
            lambda raw, region: nz.normalize_name(raw),
            _name_compare,
            _prep_strings,
            key=_nospace,
            block=_name_block,
            swappable=True,
        ),
        Kind(
            "text",
            ("exact", "close", "similar", "different"),
            lambda raw, region: nz.normalize_text(raw),
            _text_compare,
            _prep_strings,
            key=_nospace,
            block=_nospace,
        ),
        Kind("exact", ("exact", "different"), lambda raw, region: nz.normalize_text(raw), _exact_compare, _prep_none),
        Kind(
            "email",
            ("exact", "typo", "same mailbox name", "different"),
            lambda raw, region: nz.normalize_email(raw),
            _email_compare,
            _prep_email,
        ),
        Kind(
            "phone",
            ("exact", "same number", "typo", "different"),
            nz.normalize_phone,
            _phone_compare,
            _prep_phone,
        ),
        Kind("date", ("exact", "close", "same year", "different"), _date_normalize, _date_compare, _prep_date),
        Kind(
            "postcode",
            ("exact", "typo", "different"),
            lambda raw, region: nz.normalize_postcode(raw),
            _postcode_compare,
            _prep_none,
        ),
        Kind(
            "address",
            ("exact", "close", "similar", "different"),
            lambda raw, region: nz.normalize_address(raw),
            _address_compare,
            _prep_address,
            key=_nospace,
            block=_nospace,
            swappable=True,
        ),
        Kind(
            "id",
            ("exact", "typo", "two typos", "different"),
            lambda raw, region: nz.normalize_id(raw),
            _id_compare,
            _prep_id,
        ),
    )
}


def get_kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        from pycrm.errors import FieldError, ValidationError

        raise ValidationError(
            [FieldError("fields", "unknown_kind", f"unknown comparator kind {name!r}; use one of {', '.join(KINDS)}")]
        ) from None


# ---------------------------------------------------------------- value spaces


class Space:
    """The distinct values of one field (or of a group of swappable fields of one kind)."""

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self.elements: list[str] = []
        self._elem_index: dict[str, int] = {}
        self.code_elems: list[tuple[int, ...]] = []
        self._code_index: dict[tuple[int, ...], int] = {}
        self._prepared: Any = None
        self._single: I64 | None = None
        self._tokens: I64 | None = None

    def element(self, normalized: str) -> int:
        key = self.kind.key(normalized)
        idx = self._elem_index.get(key)
        if idx is None:
            idx = self._elem_index[key] = len(self.elements)
            self.elements.append(normalized)
        return idx

    def code(self, elems: tuple[int, ...]) -> int:
        c = self._code_index.get(elems)
        if c is None:
            c = self._code_index[elems] = len(self.code_elems)
            self.code_elems.append(elems)
        return c

    # ---- after loading

    @property
    def prepared(self) -> Any:
        if self._prepared is None:
            self._prepared = self.kind.prepare(self.elements)
        return self._prepared

    @property
    def single(self) -> I64:
        """Element of each code, or -1 for codes holding several elements."""
        if self._single is None:
            self._single = np.fromiter(
                (e[0] if len(e) == 1 else -1 for e in self.code_elems), dtype=np.int64, count=len(self.code_elems)
            )
        return self._single

    @property
    def element_tokens(self) -> I64:
        """Blocking token id of each element."""
        if self._tokens is None:
            self._tokens = _factorize([self.kind.block(e) for e in self.elements])
        return self._tokens

    def compare_elements(self, ea: I64, eb: I64) -> I8:
        """Levels of element pairs (0 where equal)."""
        out = np.zeros(len(ea), dtype=np.int8)
        todo = np.flatnonzero(ea != eb)
        if len(todo) == 0:
            return out
        a, b = np.minimum(ea[todo], eb[todo]), np.maximum(ea[todo], eb[todo])
        n_el = len(self.elements)
        if len(todo) > _UNIQUE_FACTOR * n_el:
            uniq, inverse = np.unique(a * n_el + b, return_inverse=True)
            out[todo] = self.kind.compare(self.prepared, uniq // n_el, uniq % n_el)[inverse]
        else:
            out[todo] = self.kind.compare(self.prepared, a, b)
        return out

    def compare_codes(self, ca: I64, cb: I64) -> I8:
        """Levels of code pairs: -1 where either side is missing (code -1), else the best element level."""
        out = np.full(len(ca), -1, dtype=np.int8)
        valid = (ca >= 0) & (cb >= 0)
        out[valid & (ca == cb)] = 0
        todo = np.flatnonzero(valid & (ca != cb))
        if len(todo) == 0:
            return out
        single = self.single
        sa, sb = single[ca[todo]], single[cb[todo]]
        simple = (sa >= 0) & (sb >= 0)
        out[todo[simple]] = self.compare_elements(sa[simple], sb[simple])
        multi = todo[~simple]
        if len(multi):
            owners: list[int] = []
            xa: list[int] = []
            xb: list[int] = []
            starts = []
            for i in multi.tolist():
                starts.append(len(owners))
                for e1 in self.code_elems[ca[i]]:
                    for e2 in self.code_elems[cb[i]]:
                        owners.append(i)
                        xa.append(e1)
                        xb.append(e2)
            lev = self.compare_elements(np.array(xa, dtype=np.int64), np.array(xb, dtype=np.int64))
            out[multi] = np.minimum.reduceat(lev, np.array(starts, dtype=np.int64))
        return out
