"""Records in, columns out: which fields to compare, and their values read once into value spaces.

Records are entities (``Customer``, ``Contact``, any object with attributes) or mappings (a CSV row, a
dict). They are read once, in one pass, so any iterable works, a generator or a store's ``iter()``
included; what is kept per record is its id and one integer per field.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from pycrm.dedup._compare import Kind, Space, get_kind
from pycrm.domain import Address, Contact, Customer, EmailAddress, PhoneNumber, current_region
from pycrm.domain._checks import check_iterable
from pycrm.errors import FieldError, ValidationError, quote

__all__ = ["CONTACT_FIELDS", "CUSTOMER_FIELDS", "Columns", "FieldSpec", "infer_fields", "load", "resolve_fields"]

I64 = npt.NDArray[np.int64]

#: Fields compared for customers when ``fields`` is not given.
CUSTOMER_FIELDS: dict[str, str] = {
    "name": "name",
    "emails": "email",
    "phones": "phone",
    "addresses": "address",
    "postcode": "postcode",
}
#: Fields compared for contacts when ``fields`` is not given.
CONTACT_FIELDS: dict[str, str] = {
    "first_name": "name",
    "last_name": "name",
    "emails": "email",
    "phones": "phone",
    "customer_id": "exact",
}

# header words -> kind, first match wins; matched against the lower-cased header split on non-letters
_HEADER_RULES: tuple[tuple[str, str], ...] = (
    (r"soc_?sec|ssn|passport|national_?id|tax_?(id|no|number)|vat|credit_?code|licen[cs]e|身份证|信用代码|税号", "id"),
    (r"^(id|uuid|guid|pk|key|rec|record|row|rec_id|record_id|row_id)$|_id$|^id_", "skip"),
    (r"e_?mail|^mail$|邮箱|电子邮件", "email"),
    (r"phone|mobile|^tel|telephone|cell|^fax|电话|手机|联系方式", "phone"),
    (r"post_?code|postal|^zip|zip_?code|^plz$|邮编|邮政编码", "postcode"),
    (r"street_?(number|no|num)$|house_?(number|no|num)$|^(number|no|num)$", "exact"),
    (r"birth|^dob$|生日|出生", "date"),
    (r"addr|street|^line_?\d|地址|街道", "address"),
    (r"name|^company|^customer$|^org|organi[sz]ation|^contact$|surname|given|^first$|^last$|姓名|名称|公司|客户|姓|名", "name"),
    (r"^(state|province|country|region|county|gender|sex)$|省|国家", "exact"),
    (r"city|suburb|town|district|locality|城市|区", "text"),
)


@attrs.frozen
class FieldSpec:
    """One compared field: its name in the records and its comparator kind."""

    name: str
    kind: Kind


def infer_fields(columns: Iterable[str], *, id_column: str | None = None) -> dict[str, str]:
    """Comparator kinds for the columns recognised by their header; others are left out.

    >>> infer_fields(["id", "Company Name", "E-mail", "Mobile", "Address", "Zip", "Notes"], id_column="id")
    {'Company Name': 'name', 'E-mail': 'email', 'Mobile': 'phone', 'Address': 'address', 'Zip': 'postcode'}
    """
    check_iterable("columns", columns, "a list of column names")
    if id_column is not None and not isinstance(id_column, str):
        raise ValidationError([FieldError("id_column", "type", f"expected a column name, got {type(id_column).__name__}")])
    out: dict[str, str] = {}
    for col in columns:
        if col == id_column or not isinstance(col, str):
            continue
        key = re.sub(r"[^0-9a-z\u4e00-\u9fff]+", "_", col.strip().lower()).strip("_")
        for pattern, kind in _HEADER_RULES:
            if re.search(pattern, key):
                if kind != "skip":
                    out[col] = kind
                break
    return out


def check_fields(fields: Any) -> Any:
    """``fields`` if it is None, a mapping or a list of (field, kind) pairs, else ValidationError (checked
    before any record is read)."""
    if fields is None or isinstance(fields, Mapping):
        return fields
    return check_iterable("fields", fields, "a mapping of field to kind or (field, kind) pairs")


def resolve_fields(fields: Mapping[str, str] | Iterable[tuple[str, str]] | None, first: Any) -> list[tuple[str, str]]:
    """The (field, kind) pairs to compare, given explicitly or chosen from the first record."""
    if fields is None:
        if isinstance(first, Customer):
            pairs = list(CUSTOMER_FIELDS.items())
        elif isinstance(first, Contact):
            pairs = list(CONTACT_FIELDS.items())
        elif isinstance(first, Mapping):
            pairs = list(infer_fields([k for k in first if isinstance(k, str)], id_column="id").items())
        else:
            names = [n for n in getattr(type(first), "__attrs_attrs__", ()) if isinstance(n, attrs.Attribute)]
            pairs = list(infer_fields([a.name for a in names], id_column="id").items())
        if not pairs:
            raise ValidationError(
                [FieldError("fields", "no_fields", "no field was recognised for matching; pass fields={'column': 'kind'}")]
            )
        return pairs
    items = list(fields.items()) if isinstance(fields, Mapping) else list(check_fields(fields))
    errors = []
    out: list[tuple[str, str]] = []
    for item in items:
        if not isinstance(item, (tuple, list)) or len(item) != 2 or not isinstance(item[0], str) or not isinstance(item[1], str):
            errors.append(FieldError("fields", "type", f"expected (field, kind) pairs of text, got {quote(item)}"))
            continue
        try:
            get_kind(item[1])
        except ValidationError as exc:
            errors += [FieldError(f"fields.{item[0]}", e.code, e.message) for e in exc.errors]
            continue
        out.append((item[0], item[1]))
    if not out and not errors:
        errors.append(FieldError("fields", "no_fields", "name at least one field to compare"))
    if errors:
        raise ValidationError(errors)
    return out


# ---------------------------------------------------------------- reading values


def _flatten(value: Any, kind: str, out: list[str]) -> None:
    if value is None:
        return
    if isinstance(value, str):
        if value.strip():
            out.append(value)
    elif isinstance(value, EmailAddress):
        out.append(value.value)
    elif isinstance(value, PhoneNumber):
        out.append(value.e164)
    elif isinstance(value, Address):
        if kind == "postcode":
            if value.postcode:
                out.append(value.postcode)
        else:
            text = " ".join(p for p in (value.street, value.city, value.region) if p)
            if text:
                out.append(text)
    elif isinstance(value, (dt.date, dt.datetime)):
        out.append(value.isoformat())
    elif isinstance(value, bool):
        out.append(str(value).lower())
    elif isinstance(value, float):
        if not math.isnan(value):
            out.append(str(int(value)) if value.is_integer() else repr(value))
    elif isinstance(value, (int,)):
        out.append(str(value))
    elif isinstance(value, Mapping):
        _flatten(Address.from_mapping(dict(value)) if kind in ("address", "postcode") else str(value), kind, out)
    elif isinstance(value, Iterable):
        for v in value:
            _flatten(v, kind, out)
    else:
        out.append(str(value))


_MISSING = object()


def _get(record: Any, name: str) -> Any:
    if isinstance(record, Mapping):
        return record.get(name)
    value = getattr(record, name, _MISSING)
    if value is _MISSING:
        if name == "postcode" and hasattr(record, "addresses"):
            return [a.postcode for a in record.addresses if getattr(a, "postcode", None)]
        return None
    return value


_CHUNK = 8192


def _chunks(it: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(it)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _raise_duplicate(ids: list[Hashable], chunk_ids: list[Hashable]) -> None:
    first: dict[Hashable, int] = {}
    for pos, rid in enumerate(itertools.chain(ids, chunk_ids)):
        if rid in first:
            raise ValidationError(
                [FieldError(f"records[{pos}].id", "duplicate_id", f"id {rid!r} appears twice (first at records[{first[rid]}])")]
            )
        first[rid] = pos


class Columns:
    """Every record's id and, per field, a code into that field's value space (-1: missing)."""

    def __init__(self, specs: Sequence[FieldSpec], spaces: Sequence[Space], ids: list[Hashable], codes: list[I64]):
        self.specs = list(specs)
        self.spaces = list(spaces)
        self.ids = ids
        self.codes = codes

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def fields(self) -> list[str]:
        return [s.name for s in self.specs]

    def groups(self) -> list[list[int]]:
        """Indexes of fields sharing a value space (swappable fields of one kind), two or more each."""
        by_space: dict[int, list[int]] = {}
        for i, sp in enumerate(self.spaces):
            by_space.setdefault(id(sp), []).append(i)
        return [g for g in by_space.values() if len(g) > 1]

    def tokens(self, f: int) -> tuple[I64, I64]:
        """(record, blocking token) rows of field ``f``; a record holding a list appears once per element."""
        space, codes = self.spaces[f], self.codes[f]
        single = space.single
        etok = space.element_tokens
        present = np.flatnonzero(codes >= 0)
        sc = single[codes[present]]
        simple = sc >= 0
        rec = [present[simple]]
        tok = [etok[sc[simple]]]
        multi = present[~simple]
        if len(multi):
            mr: list[int] = []
            mt: list[int] = []
            for r in multi.tolist():
                for e in space.code_elems[codes[r]]:
                    mr.append(r)
                    mt.append(int(etok[e]))
            rec.append(np.array(mr, dtype=np.int64))
            tok.append(np.array(mt, dtype=np.int64))
        return np.concatenate(rec), np.concatenate(tok)

    def first_elements(self, f: int) -> I64:
        """One value per record (its first element, exact), -1 when missing: the token of conjunctions."""
        space, codes = self.spaces[f], self.codes[f]
        first = np.fromiter((e[0] for e in space.code_elems), dtype=np.int64, count=len(space.code_elems))
        out = np.full(len(codes), -1, dtype=np.int64)
        ok = codes >= 0
        out[ok] = first[codes[ok]]
        return out


def load(records: Iterable[Any], fields: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> Columns:
    """Read every record once into columns; ``fields`` as for ``find_duplicates``."""
    it: Iterator[Any] = iter(records)
    try:
        first = next(it)
    except StopIteration:
        pairs = resolve_fields(fields, {}) if fields is not None else []
        specs = [FieldSpec(n, get_kind(k)) for n, k in pairs]
        return Columns(specs, [Space(s.kind) for s in specs], [], [np.zeros(0, dtype=np.int64) for _ in specs])
    pairs = resolve_fields(fields, first)
    specs = [FieldSpec(n, get_kind(k)) for n, k in pairs]
    shared: dict[str, Space] = {}
    spaces: list[Space] = []
    for s in specs:
        if s.kind.swappable:
            spaces.append(shared.setdefault(s.kind.name, Space(s.kind)))
        else:
            spaces.append(Space(s.kind))
    region = current_region()
    caches: list[dict[Any, int]] = [{None: -1} for _ in specs]
    lists: list[list[int]] = [[] for _ in specs]
    ids: list[Hashable] = []
    seen: set[Hashable] = set()

    def code_of(space: Space, kind: Kind, raws: list[str], reg: str | None) -> int:
        elems = set()
        for raw in raws:
            norm = kind.normalize(raw, reg)
            if norm:
                elems.add(space.element(norm))
        return space.code(tuple(sorted(elems))) if elems else -1

    def slow(f: int, value: Any, reg: str | None) -> int:
        kind, space = specs[f].kind, spaces[f]
        key: Any = value
        if kind.name == "phone" and reg != region:
            key = (reg, value)
        try:
            c = caches[f].get(key)
        except TypeError:  # unhashable: a list of e-mail addresses, say
            key, c = None, None
        if c is None:
            if value.__class__ is str:
                norm = kind.normalize(value, reg) if value.strip() else ""
                c = space.code((space.element(norm),)) if norm else -1
            else:
                raws: list[str] = []
                _flatten(value, kind.name, raws)
                c = code_of(space, kind, raws, reg)
            if key is not None:
                caches[f][key] = c
        return c

    names = [s.name for s in specs]
    pos = 0
    for chunk in _chunks(itertools.chain([first], it), _CHUNK):
        all_maps = all(isinstance(r, Mapping) for r in chunk)
        chunk_ids = [r.get("id") if isinstance(r, Mapping) else getattr(r, "id", None) for r in chunk]
        for i, rid in enumerate(chunk_ids):
            if rid is None or rid == "":
                chunk_ids[i] = pos + i
        try:
            seen.update(chunk_ids)
        except TypeError:
            bad = next(i for i, r in enumerate(chunk_ids) if not isinstance(r, Hashable))
            raise ValidationError(
                [FieldError(f"records[{pos + bad}].id", "type", f"an id must be text or a number, got {chunk_ids[bad]!r}")]
            ) from None
        if len(seen) != len(ids) + len(chunk_ids):
            _raise_duplicate(ids, chunk_ids)
        ids.extend(chunk_ids)
        regions: list[str | None] = [region] * len(chunk)
        if not all_maps:
            for i, r in enumerate(chunk):
                country = None if isinstance(r, Mapping) else getattr(r, "country", None)
                if isinstance(country, str) and country:
                    regions[i] = country
        # one pass over each record (not one per field): records stay in the CPU cache
        rows = [tuple(map(r.get, names)) for r in chunk] if all_maps else [tuple(_get(r, n) for n in names) for r in chunk]
        columns = list(zip(*rows)) if names else []
        for f, spec in enumerate(specs):
            raw = columns[f]
            get = caches[f].get
            try:
                codes = [get(v, -2) for v in raw]
            except TypeError:
                codes = [-2] * len(raw)
            if all_maps and -2 in codes:  # new values: normalize each distinct one once
                for v in {v for v, c in zip(raw, codes) if c == -2}:
                    caches[f][v] = slow(f, v, region)
                codes = [get(v, -2) for v in raw]
            if not all_maps and spec.kind.name == "phone":
                codes = [-2 if regions[i] != region else c for i, c in enumerate(codes)]
            if -2 in codes:
                codes = [slow(f, raw[i], regions[i]) if c == -2 else c for i, c in enumerate(codes)]
            lists[f].extend(codes)
        pos += len(chunk)
    return Columns(specs, spaces, ids, [np.array(lst, dtype=np.int64) for lst in lists])
