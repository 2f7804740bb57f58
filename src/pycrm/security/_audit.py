"""A tamper-evident audit trail: every entry carries the hash of the one before it.

An :class:`AuditEntry` records who did what to which record, with a field-by-field ``diff``; its ``hash``
is SHA-256 (or HMAC-SHA256, with a key) over a canonical JSON encoding of its fields and the previous
entry's hash. :func:`verify` walks a trail and reports the first entry that does not fit: one edited in
place (its hash no longer matches), one deleted (a gap in ``seq``, and the next ``prev_hash`` points to
nothing), one inserted (a repeated ``seq`` or a broken link), entries swapped.

What a plain hash chain cannot show: someone able to write the table can rewrite *every* entry from the
point of change onwards, recomputing the hashes, and can drop entries at the end. Two defences, both
optional: a secret ``key`` (HMAC) that the writer of the table does not hold, so recomputed hashes do not
verify; and an anchor, the last ``(seq, hash)`` kept somewhere else (a log shipper, a signed daily
digest), passed as ``head`` to :func:`verify`. The trade-off of the key: whoever verifies needs it too,
and losing it makes the trail unverifiable (not unreadable); rotate it by starting a new trail whose
first entry's ``prev_hash`` is the last hash under the old key.

Erasable diffs: an entry written since schema revision 0006 also carries ``diff_digest``, SHA-256 (HMAC
under the key) of its diff's canonical JSON, and its hash covers that digest *instead of* the diff. Erasing
a person (``s.personal.erase``) replaces the diffs of the entries about them by a marker naming the erasure,
``{"erased": "<erasure id>"}``, and keeps digest and hash: the chain still verifies, and :func:`verify`
checks that each erased entry names an erasure recorded later in the trail that erased that very record.
Entries written before revision 0006 hash their diff itself; when one is erased its digest becomes a seal
over its other fields (:func:`legacy_seal`), which then stand in for its hash.

>>> import datetime as dt
>>> at = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.timezone.utc)
>>> first = make_entry(None, at=at, actor_id="u1", action="create", entity="customers", entity_id="c1",
...                    diff=diff(None, {"name": "Acme"}))
>>> second = make_entry(first, at=at, actor_id="u1", action="update", entity="customers", entity_id="c1",
...                     diff=diff({"name": "Acme"}, {"name": "Acme Ltd"}))
>>> second.seq, second.prev_hash == first.hash, second.diff
(2, True, {'name': ['Acme', 'Acme Ltd']})
>>> verify([first, second])
VerifyResult(ok=True, first_bad_seq=None, reason='', erased=0)
>>> import attrs
>>> verify([first, attrs.evolve(second, diff={"name": ["Acme", "Evil Ltd"]})])
VerifyResult(ok=False, first_bad_seq=2, reason='entry 2 was altered: its hash does not match its content', erased=0)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import operator
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from pycrm.domain import Address, EmailAddress, PhoneNumber
from pycrm.domain._checks import check_iterable, check_names
from pycrm.domain._checks import text as check_text
from pycrm.domain._codec import _out
from pycrm.errors import FieldError, ValidationError, quote

__all__ = [
    "AUDIT_ACTIONS",
    "CHANGED",
    "GENESIS_HASH",
    "AuditEntry",
    "VerifyResult",
    "canonical_json",
    "chain_hash",
    "diff",
    "erasure_marker",
    "make_entry",
    "verify",
]

#: What an audit entry can record.
AUDIT_ACTIONS = (
    "create",
    "update",
    "delete",
    "merge",
    "unmerge",
    "export",
    "permission_denied",
    "archive",
    "unarchive",
    "erase",
    "assign",
)
#: The ``prev_hash`` of the first entry of a trail.
GENESIS_HASH = "0" * 64
#: What the diff shows for a sensitive (encrypted) field that changed, instead of its values.
CHANGED = "changed"
#: Fields left out of diffs by default: they change on every write and say nothing about it.
NOISE = ("version", "updated_at")


def canonical_json(value: Any) -> bytes:
    """UTF-8 JSON with sorted keys, no whitespace and non-ASCII kept as is: one byte string per value.

    >>> canonical_json({"b": 1, "a": ["é", None]})
    b'{"a":["\\xc3\\xa9",null],"b":1}'
    """
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError (a lone surrogate) is a ValueError too
        raise ValidationError([FieldError("diff", "type", f"audit data must be JSON-safe: {quote(str(exc), 200)}")]) from None


def diff(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    sensitive_fields: Iterable[str] = (),
    *,
    ignore: Iterable[str] = NOISE,
) -> dict[str, Any]:
    """``{field: [old, new]}`` for every field that differs between two JSON-safe snapshots (``to_data``).

    ``before=None`` is a creation (every field ``[None, new]``), ``after=None`` a deletion. A field in
    ``sensitive_fields`` that changed shows only ``"changed"``: the trail must not undo the encryption.

    >>> diff({"name": "Acme", "national_id": "enc:v1:k1:AAA", "version": 1},
    ...      {"name": "Acme", "national_id": "enc:v1:k1:BBB", "version": 2}, ["national_id"])
    {'national_id': 'changed'}
    """
    old = dict(_snapshot(before, "before"))
    new = dict(_snapshot(after, "after"))
    skip = set(check_names("ignore", ignore, one_ok=False))
    secret = set(check_names("sensitive_fields", sensitive_fields, one_ok=False))
    out: dict[str, Any] = {}
    for field in sorted(set(old) | set(new)):
        if field in skip:
            continue
        a, b = old.get(field), new.get(field)
        if a == b and type(a) is type(b):
            continue
        out[field] = CHANGED if field in secret else [a, b]
    return out


def _snapshot(value: Any, field: str) -> Mapping[str, Any]:
    """A snapshot given to :func:`diff`: None (nothing) or a mapping of field names."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValidationError(
            [FieldError(field, "type", f"expected a mapping of field names or None, got {type(value).__name__}")]
        )
    return value


def _check_key(key: Any) -> None:
    if key is not None and not isinstance(key, bytes):
        raise ValidationError([FieldError("key", "type", f"expected bytes or None, got {type(key).__name__}")])


def _content(
    seq: int, at: dt.datetime, actor_id: str | None, action: str, entity: str, entity_id: str | None, diff: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "seq": seq,
        "at": at.isoformat(),
        "actor_id": actor_id,
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "diff": dict(diff),
    }


def chain_hash(prev_hash: str, entry_fields: Mapping[str, Any], *, key: bytes | None = None) -> str:
    """SHA-256 (HMAC-SHA256 under ``key``) in hex of ``canonical_json({**entry_fields, "prev_hash": prev_hash})``.

    ``entry_fields`` are the entry's content: ``seq``, ``at`` (ISO 8601 text), ``actor_id``, ``action``,
    ``entity``, ``entity_id``, ``diff``.
    """
    if not isinstance(prev_hash, str):
        raise ValidationError([FieldError("prev_hash", "type", f"expected text, got {type(prev_hash).__name__}")])
    _snapshot(entry_fields, "entry_fields")
    _check_key(key)
    return _digest(canonical_json({**entry_fields, "prev_hash": prev_hash}), key)


def _digest(data: bytes, key: bytes | None) -> str:
    if key is not None:
        return hmac.new(key, data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


@attrs.frozen
class AuditEntry:
    """One line of the trail. Build with :func:`make_entry`; store with ``to_data`` / ``from_data``.

    ``diff_digest`` (entries written since revision 0006): the digest of the diff's canonical JSON, which
    the hash covers instead of the diff, so the diff can be erased (see the module docstring); None for an
    entry whose hash covers its diff."""

    seq: int
    at: dt.datetime
    actor_id: str | None
    action: str
    entity: str
    entity_id: str | None
    diff: Mapping[str, Any]
    prev_hash: str
    hash: str
    diff_digest: str | None = None

    def content(self) -> dict[str, Any]:
        """The hashed fields, as ``chain_hash`` takes them: the diff's digest in place of the diff, if any."""
        out = _content(self.seq, self.at, self.actor_id, self.action, self.entity, self.entity_id, self.diff)
        if self.diff_digest is not None:
            del out["diff"]
            out["diff_digest"] = self.diff_digest
        return out

    def to_data(self) -> dict[str, Any]:
        """A JSON-safe dict (``at`` as ISO 8601 text; ``diff_digest`` only when the entry has one)."""
        out = _content(self.seq, self.at, self.actor_id, self.action, self.entity, self.entity_id, self.diff)
        if self.diff_digest is not None:
            out["diff_digest"] = self.diff_digest
        return {**out, "prev_hash": self.prev_hash, "hash": self.hash}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> AuditEntry:
        """The entry ``to_data`` made (not verified: that is what :func:`verify` is for).

        A malformed row (a field missing or of the wrong type, a diff that is not a JSON object, a hash
        that is not 64 hex digits) is a ValidationError naming the entry and what is wrong.
        """
        entry, problem = read_row(data)
        if entry is None:
            seq = data.get("seq") if isinstance(data, Mapping) else None
            where = f"audit[{seq}]" if _is_seq(seq) else "audit"
            raise ValidationError([FieldError(where, "invalid_data", f"not audit entry data: {problem}")])
        return entry


class MalformedJSON(str):
    """Stored diff text that is not JSON, as a store reads it back: :func:`verify` names the entry."""

    error: str

    def __new__(cls, text: str, error: str) -> MalformedJSON:
        self = super().__new__(cls, text)
        self.error = error
        return self


#: The fields of a stored audit row.
ROW_FIELDS = ("seq", "at", "actor_id", "action", "entity", "entity_id", "diff", "prev_hash", "hash")
_HASH = re.compile(r"[0-9a-f]{64}")


def _is_seq(value: Any) -> bool:
    return type(value) is int and value >= 1


def read_row(data: Any) -> tuple[AuditEntry | None, str]:
    """A stored row (``AuditEntry.to_data`` as read back) as an entry, or (None, what is wrong with it).

    Checks the shape only (every field there, of its type): whether the entry fits the chain is
    :func:`verify`'s part. ``at`` may be ISO 8601 text or a date-time; either must carry its time zone.
    """
    if not isinstance(data, Mapping):
        return None, f"it is not an audit row ({_json_kind(data)})"
    missing = [f for f in ROW_FIELDS if f not in data]
    if missing:
        return None, f"it has no {', '.join(missing)}"
    seq, at, diff = data["seq"], data["at"], data["diff"]
    if not _is_seq(seq):
        return None, f"its seq {_shown(seq)} is not a whole number >= 1"
    when = at
    if isinstance(at, str):
        try:
            when = dt.datetime.fromisoformat(at)
        except ValueError:
            when = None
    if not isinstance(when, dt.datetime):
        return None, f"its time {_shown(at)} is not an ISO 8601 date-time"
    if when.utcoffset() is None:
        return None, f"its time {_shown(at)} has no time zone"
    for name in ("actor_id", "entity_id"):
        if data[name] is not None and not isinstance(data[name], str):
            return None, f"its {name} {_shown(data[name])} is neither text nor null"
    if not isinstance(data["action"], str) or data["action"] not in AUDIT_ACTIONS:
        return None, f"it has an unknown action {_shown(data['action'])}"
    if not isinstance(data["entity"], str) or not data["entity"]:
        return None, f"its entity {_shown(data['entity'])} is not a repository name"
    if isinstance(diff, MalformedJSON):
        return None, f"its diff is not valid JSON ({diff.error})"
    if not isinstance(diff, Mapping):
        return None, f"its diff is not a JSON object ({_json_kind(diff)})"
    digest = data.get("diff_digest")
    for name, value in (("prev_hash", data["prev_hash"]), ("hash", data["hash"]), ("diff_digest", digest)):
        if (value is not None or name != "diff_digest") and (not isinstance(value, str) or not _HASH.fullmatch(value)):
            return None, f"its {name} {_shown(value)} is not 64 lowercase hexadecimal digits"
    entry = AuditEntry(
        seq,
        when,
        data["actor_id"],
        data["action"],
        data["entity"],
        data["entity_id"],
        diff,
        data["prev_hash"],
        data["hash"],
        digest,
    )
    return entry, ""


def _json_kind(value: Any) -> str:
    """What a value is, in JSON's words: null, text, an array, a number..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (list, tuple)):
        return "an array"
    return f"a {type(value).__name__}"


def _shown(value: Any) -> str:
    """A stored value in a message: its repr, cut short (a tampered field can be long)."""
    text = repr(value)
    return text if len(text) <= 70 else text[:67] + "..."


def make_entry(
    prev: AuditEntry | None,
    *,
    at: dt.datetime,
    actor_id: str | None,
    action: str,
    entity: str,
    entity_id: str | None,
    diff: Mapping[str, Any],
    key: bytes | None = None,
) -> AuditEntry:
    """The entry that follows ``prev`` (None: the first of a trail), hashed and linked.

    ``at`` must be timezone-aware; it is kept in UTC. ``diff`` must be JSON-safe (:func:`diff` makes one).
    """
    if prev is not None and not isinstance(prev, AuditEntry):
        raise ValidationError([FieldError("prev", "type", f"expected an AuditEntry or None, got {type(prev).__name__}")])
    for name, value in (("actor_id", actor_id), ("entity_id", entity_id)):
        check_text(value, name, max_len=64, optional=True)
    check_text(entity, "entity", required=True, max_len=64)
    _snapshot(diff, "diff")
    _check_key(key)
    seq, prev_hash = (0, GENESIS_HASH) if prev is None else (prev.seq, prev.hash)
    entry, _ = make_entry_text(
        seq, prev_hash, at=at, actor_id=actor_id, action=action, entity=entity, entity_id=entity_id, diff=diff, key=key
    )
    return entry


_sha256 = hashlib.sha256
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_TEXT = json.encoder.encode_basestring  # what _CANONICAL gives for a str


def _name(value: str | None) -> str:
    return "null" if value is None else _TEXT(value)


def created_diff(data: Mapping[str, Any]) -> dict[str, Any]:
    """The diff of a new row from its ``to_data``: ``[None, value]`` for every field with a value but NOISE.

    >>> created_diff({"name": "Acme", "version": 1, "tags": [], "country": None})
    {'name': [None, 'Acme']}
    """
    return {k: [None, v] for k, v in data.items() if k not in NOISE and v is not None and v != [] and v != {}}


#: Per entity class: the JSON keys (``"name":[null,``) of the fields a diff of a new row can show, sorted,
#: and a getter of those fields' values.
_NAMES: dict[type, tuple[tuple[str, ...], Any]] = {}
#: The last time stamp ``created_diff_texts`` wrote and its text: held here, so the object cannot be freed and
#: its identity reused while it is the one compared against.
_LAST_TIME: tuple[Any, str] = (None, "")


def _address_text(a: Any) -> str:
    """The canonical JSON of an Address (text or null fields), keys sorted."""
    return (
        f'{{"city":{_name(a.city)},"country":{_name(a.country)},"postcode":{_name(a.postcode)},'
        f'"region":{_name(a.region)},"street":{_name(a.street)}}}'
    )


def _created_fields(cls: type) -> tuple[tuple[str, ...], Any]:
    """(JSON keys, getter of the values) of ``cls``'s fields that a created diff can show, built once."""
    got = _NAMES.get(cls)
    if got is None:
        names = [a for a in sorted(f.name for f in attrs.fields(cls)) if a not in NOISE]
        get = operator.attrgetter(*names) if len(names) > 1 else lambda e: tuple(getattr(e, a) for a in names)
        got = _NAMES[cls] = (tuple(_TEXT(a) + ":[null," for a in names), get)
    return got


def created_diff_text(entity: Any) -> str:
    """``diff_text(created_diff(to_data(entity)))`` for an attrs entity, without building the dicts: each
    field's canonical JSON is written directly (plain text, lists of e-mails, phones, addresses or text,
    times), the rest through ``to_data``'s conversion and the canonical encoder.
    """
    return created_diff_texts((entity,))[0]


def created_diff_texts(entities: Iterable[Any]) -> list[str]:
    """:func:`created_diff_text` of each entity, in one pass (``add_many`` and an import's workers encode
    thousands of new rows: the field look-up and the time stamps' text are shared)."""
    global _LAST_TIME
    last_time, last_text = _LAST_TIME
    out: list[str] = []
    seen: Any = None
    keys: tuple[str, ...] = ()
    values: Any = None
    for entity in entities:
        cls = type(entity)
        if cls is not seen:
            seen = cls
            keys, values = _created_fields(cls)
        parts = []
        for key, v in zip(keys, values(entity)):
            if v is None:
                continue
            t = type(v)
            if t is str:
                text = _TEXT(v)
            elif t is list or t is frozenset:
                if not v:
                    continue
                text = _list_text(v, t is frozenset)
            elif t is dt.datetime:
                if v is not last_time:  # the entities of one write share their time stamps (the same object)
                    last_time, last_text = v, _TEXT(v.isoformat())
                text = last_text
            elif t is dict:
                if not v:
                    continue
                one = next(iter(v.items())) if len(v) == 1 else None
                if one is not None and type(one[0]) is str and type(one[1]) is str:  # one text value
                    text = f"{{{_TEXT(one[0])}:{_TEXT(one[1])}}}"
                elif all(type(k) is str and type(x) is str for k, x in v.items()):  # flat text, as custom fields often are
                    text = "{" + ",".join([f"{_TEXT(k)}:{_TEXT(x)}" for k, x in sorted(v.items())]) + "}"
                else:
                    text = diff_text(_out(v))
            elif t is bool:
                text = "true" if v else "false"
            elif t is int:
                text = str(v)
            else:
                o = _out(v)
                if o == [] or o == {}:
                    continue
                text = diff_text(o)
            parts.append(f"{key}{text}]")
        out.append("{" + ",".join(parts) + "}")
    _LAST_TIME = (last_time, last_text)
    return out


def _list_text(v: Any, is_set: bool) -> str:
    """The canonical JSON of a non-empty list (or set, sorted) of one kind of value."""
    if len(v) == 1:  # one e-mail address, one phone number, one tag
        (x,) = v
        t = type(x)
        if t is str:
            return f"[{_TEXT(x)}]"
        if not is_set and t is EmailAddress:
            return f"[{_TEXT(x.value)}]"
        if not is_set and t is PhoneNumber:
            return f"[{_TEXT(x.e164)}]"
    first = type(next(iter(v)))
    if all(type(x) is first for x in v):
        if first is str:
            return "[" + ",".join([_TEXT(x) for x in (sorted(v) if is_set else v)]) + "]"
        if not is_set:
            if first is EmailAddress or first is PhoneNumber:
                return "[" + ",".join([_TEXT(str(x)) for x in v]) + "]"
            if first is Address:
                return "[" + ",".join([_address_text(a) for a in v]) + "]"
    return diff_text(_out(v))


def diff_text(diff: Mapping[str, Any]) -> str:
    """The canonical JSON of a diff, as hashed and stored (raises ValidationError when not JSON-safe)."""
    try:
        return _CANONICAL(diff)
    except (TypeError, ValueError) as exc:
        raise ValidationError([FieldError("diff", "type", f"audit data must be JSON-safe: {exc}")]) from None


def entry_hashes(
    seq: int,
    prev_hash: str,
    at_text: str,
    actor_id: str | None,
    action: str,
    entity: str,
    entity_id: str | None,
    diff_json: str,
    key: bytes | None = None,
) -> tuple[str, str]:
    """``(diff_digest, hash)`` of an entry written since revision 0006: the digest of ``diff_json`` (the
    diff's canonical JSON), and :func:`chain_hash` of the entry with that digest in place of the diff."""
    head, middle = entry_header(at_text, actor_id, action, entity)
    digest = _digest(diff_json.encode(), key)
    text = f'{head}{digest}{middle}{_name(entity_id)},"prev_hash":{_TEXT(prev_hash)},"seq":{seq}}}'
    return digest, _digest(text.encode(), key)


def entry_header(at_text: str, actor_id: str | None, action: str, entity: str) -> tuple[str, str]:
    """The canonical JSON that :func:`chain_hash` hashes for an entry, in the parts the entries of one write
    share: the text before the diff's digest, and the text from the digest to the entity id. What follows is
    ``<entity id>,"prev_hash":"<hash>","seq":<seq>}`` (keys sorted, as :func:`canonical_json` writes them)."""
    return (
        f'{{"action":{_TEXT(action)},"actor_id":{_name(actor_id)},"at":{_TEXT(at_text)},"diff_digest":"',
        f'","entity":{_TEXT(entity)},"entity_id":',
    )


#: The one key of an erased entry's diff (its value: the id of the erasure, named in the ``erase`` entry).
ERASED = "erased"


def erasure_marker(erasure_id: str) -> dict[str, str]:
    """What replaces the diff of an entry about an erased person: ``{"erased": erasure_id}``."""
    return {ERASED: erasure_id}


def erasure_of(diff: Any) -> str | None:
    """The erasure id an erased entry's diff names, or None when the diff is no erasure marker."""
    if isinstance(diff, Mapping) and len(diff) == 1 and isinstance(diff.get(ERASED), str) and diff[ERASED]:
        return str(diff[ERASED])
    return None


def legacy_seal(row: Mapping[str, Any], key: bytes | None = None) -> str:
    """The ``diff_digest`` an erasure gives an entry written before revision 0006 (whose hash covers the
    diff it loses): SHA-256 (HMAC under ``key``) over its other fields, hash and ``prev_hash`` included.

    ``row`` holds the entry's fields, ``at`` as UTC ISO 8601 text or a date-time."""
    at = row["at"]
    fields = {name: row[name] for name in ("seq", "actor_id", "action", "entity", "entity_id", "prev_hash", "hash")}
    fields["at"] = at.astimezone(dt.UTC).isoformat() if isinstance(at, dt.datetime) else at
    return _digest(canonical_json({"erased_entry": fields}), key)


def check_draft(action: str, at: Any) -> None:
    """An entry's action is one of AUDIT_ACTIONS and its time is timezone-aware (ValidationError if not)."""
    errors: list[FieldError] = []
    if not isinstance(action, str) or action not in AUDIT_ACTIONS:
        errors.append(FieldError("action", "invalid_choice", f"{quote(action)} is not one of {', '.join(AUDIT_ACTIONS)}"))
    if not isinstance(at, dt.datetime) or at.tzinfo is None or at.utcoffset() is None:
        errors.append(FieldError("at", "naive_datetime", "must be a timezone-aware datetime"))
    if errors:
        raise ValidationError(errors)


def make_entry_text(
    prev_seq: int,
    prev_hash: str,
    *,
    at: dt.datetime,
    actor_id: str | None,
    action: str,
    entity: str,
    entity_id: str | None,
    diff: Mapping[str, Any],
    key: bytes | None = None,
) -> tuple[AuditEntry, str]:
    """:func:`make_entry` after the entry ``(prev_seq, prev_hash)`` (``(0, GENESIS_HASH)``: the first), also
    returning the diff's canonical JSON: the writer stores that text, so the diff is encoded once.
    """
    check_draft(action, at)
    at = at.astimezone(dt.UTC)
    seq = prev_seq + 1
    text = diff_text(diff)
    dd, digest = entry_hashes(seq, prev_hash, at.isoformat(), actor_id, action, entity, entity_id, text, key)
    return AuditEntry(seq, at, actor_id, action, entity, entity_id, dict(diff), prev_hash, digest, dd), text


@attrs.frozen
class VerifyResult:
    """``ok``, else the ``seq`` of the first entry that does not fit (or where one is missing) and why;
    ``erased``: how many entries of a trail that verified had their diff erased."""

    ok: bool
    first_bad_seq: int | None = None
    reason: str = ""
    erased: int = 0

    def __bool__(self) -> bool:
        return self.ok


def _anchor(value: Any, field: str) -> tuple[int, str]:
    """A ``(seq, hash)`` pair given to :func:`verify`: a whole number >= 0 and a text, else ValidationError."""
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and isinstance(value[0], int)
        and not isinstance(value[0], bool)
        and 0 <= value[0] <= 2**63 - 1
        and isinstance(value[1], str)
    )
    if not ok:
        raise ValidationError([FieldError(field, "type", f"expected (seq, hash): a whole number and a text, got {quote(value)}")])
    return value[0], value[1]


def verify(
    entries: Iterable[AuditEntry | Mapping[str, Any]],
    *,
    key: bytes | None = None,
    start: tuple[int, str] | None = None,
    head: tuple[int, str] | None = None,
) -> VerifyResult:
    """Check a trail in ``seq`` order, as stored.

    ``entries`` are AuditEntry objects or stored rows (``to_data``). ``start=(seq, prev_hash)`` checks a
    slice that does not begin at the first entry (default: seq 1 after :data:`GENESIS_HASH`).
    ``head=(seq, hash)`` is an anchor kept elsewhere: the trail must reach it, so entries cut off the end
    are found too. ``key`` is the HMAC key the trail was written with.

    Never raises on what it reads: a malformed entry (a field missing or of the wrong type, a diff that is
    not JSON, a hash that is not 64 hex digits) is reported like a tampered one, with its ``seq`` (or, when
    the seq itself cannot be read, the seq expected there) and what is wrong.

    Erased entries (see the module docstring) verify by their digest; each must name an erasure whose
    ``erase`` entry comes later in ``entries`` and lists the entry's record among those it erased, else the
    entry is reported (an entry marked erased to hide what it said). The result counts them (``erased``). A
    slice (``start``) must reach the ``erase`` entries its erased entries name.
    """
    _check_key(key)
    check_iterable("entries", entries, "a list of audit entries")
    expect_seq, expect_prev = _anchor(start, "start") if start is not None else (1, GENESIS_HASH)
    if head is not None:
        head = _anchor(head, "head")
    last: AuditEntry | None = None
    at_head: str | None = None
    pending: dict[str, dict[tuple[str, str | None], int]] = {}  # erasure id -> erased record -> first seq
    recorded: set[str] = set()  # erasures whose entry has been seen
    erased = 0
    for item in entries:
        if isinstance(item, AuditEntry):
            e, problem = read_row(_fields(item))
        else:
            e, problem = read_row(item)
        if e is None:
            seq = item.seq if isinstance(item, AuditEntry) else item.get("seq") if isinstance(item, Mapping) else None
            if _is_seq(seq):
                return VerifyResult(False, seq, f"entry {seq} is malformed: {problem}")
            return VerifyResult(False, expect_seq, f"the entry after entry {expect_seq - 1} is malformed: {problem}")
        if e.seq != expect_seq:
            if e.seq > expect_seq:
                return VerifyResult(False, expect_seq, f"entry {expect_seq} is missing (the next one is {e.seq})")
            return VerifyResult(False, e.seq, f"entry {e.seq} is out of place: expected {expect_seq} (inserted or reordered)")
        if e.prev_hash != expect_prev:
            return VerifyResult(False, e.seq, f"entry {e.seq} does not follow the one before it (inserted, or one was removed)")
        try:
            good, by = _check(e, key)
        except (ValidationError, AttributeError, TypeError, ValueError, OverflowError):
            good, by = False, None
        if not good:
            return VerifyResult(False, e.seq, f"entry {e.seq} was altered: its hash does not match its content")
        if by is not None:
            if by in recorded:
                return VerifyResult(False, e.seq, f"entry {e.seq} is marked erased by erasure {by!r}, recorded before it")
            pending.setdefault(by, {}).setdefault((e.entity, e.entity_id), e.seq)
            erased += 1
        if e.action == "erase":
            bad = _close_erasure(e, pending, recorded)
            if bad is not None:
                return bad
        last, expect_seq, expect_prev = e, e.seq + 1, e.hash
        if head is not None and e.seq == head[0]:
            at_head = e.hash
    if pending:
        by, seq = min(((b, min(m.values())) for b, m in pending.items()), key=lambda x: x[1])
        return VerifyResult(False, seq, f"entry {seq} is marked erased by erasure {by!r}, which no later entry records")
    if head is not None:
        head_seq, head_hash = head
        if last is None or last.seq < head_seq:
            return VerifyResult(False, expect_seq, f"the trail ends before entry {head_seq} (entries were removed from the end)")
        if at_head is not None and not hmac.compare_digest(at_head, head_hash):
            return VerifyResult(False, head_seq, f"entry {head_seq} does not match the anchor (the trail was rewritten)")
    return VerifyResult(True, erased=erased)


def _check(e: AuditEntry, key: bytes | None) -> tuple[bool, str | None]:
    """Whether the entry's hash fits its content, and the erasure that erased its diff (None: not erased)."""
    if e.diff_digest is None:  # written before revision 0006: the hash covers the diff
        return hmac.compare_digest(chain_hash(e.prev_hash, e.content(), key=key), e.hash), None
    by = erasure_of(e.diff)
    if hmac.compare_digest(chain_hash(e.prev_hash, e.content(), key=key), e.hash):
        if hmac.compare_digest(_digest(diff_text(e.diff).encode("utf-8"), key), e.diff_digest):
            return True, None
        return by is not None, by
    # an entry written before revision 0006 and erased: its digest seals its other fields
    if by is not None and hmac.compare_digest(legacy_seal(_fields(e), key), e.diff_digest):
        return True, by
    return False, None


def _close_erasure(
    e: AuditEntry, pending: dict[str, dict[tuple[str, str | None], int]], recorded: set[str]
) -> VerifyResult | None:
    """At an ``erase`` entry: the entries marked with its erasure id must be about records it lists."""
    by = e.diff.get("erasure") if isinstance(e.diff, Mapping) else None
    if not isinstance(by, str):
        return None
    recorded.add(by)
    marked = pending.pop(by, {})
    listed = e.diff.get("records")
    covered = {
        (str(repo), id)
        for repo, ids in (listed.items() if isinstance(listed, Mapping) else ())
        if isinstance(ids, list)
        for id in ids
        if isinstance(id, str)
    }
    outside = sorted((seq, record) for record, seq in marked.items() if record not in covered)
    if outside:
        seq, (entity, id) = outside[0]
        return VerifyResult(False, seq, f"entry {seq} is marked erased by erasure {by!r}, which did not erase {entity} {id!r}")
    return None


def _fields(e: AuditEntry) -> dict[str, Any]:
    """An entry's fields as they are (not converted, so a wrong type is seen as it is)."""
    return {name: getattr(e, name) for name in (*ROW_FIELDS, "diff_digest")}
