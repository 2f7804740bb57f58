"""Field checkers shared by the entities. Each takes (value, field path) and returns the clean value
or raises ValidationError naming the field."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pycrm.errors import FieldError, ValidationError, quote

Checker = Callable[[Any, str], Any]

MAX_TEXT = 100_000
MAX_NAME = 300

#: Deepest nesting of a custom field's value (lists and objects inside one another).
MAX_CUSTOM_DEPTH = 20

#: Deepest nesting of any JSON text pycrm parses from outside: a JSON Lines record, a JSON cell, a backup
#: line, a mapping file, a ``--where``. Python's JSON parser recurses, one stack frame per level, so text
#: nested near Python's recursion limit (1,000) would raise RecursionError; :func:`json_loads` refuses it
#: by name first, well below that limit. Every valid record nests far less (custom values at most
#: :data:`MAX_CUSTOM_DEPTH` deep, refused past it with the field's own error).
MAX_JSON_DEPTH = 200


class JSONTooDeep(ValueError):
    """JSON text nested deeper than :data:`MAX_JSON_DEPTH`; ``key`` is the top-level key holding the deep
    part ("" when the text is not an object). A ValueError, like every other reason text is not JSON."""

    def __init__(self, key: str):
        self.key = key
        super().__init__(f"nested deeper than {MAX_JSON_DEPTH} levels")


# a JSON string (escapes included), or one bracket
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def too_deep(text: str) -> str | None:
    """The top-level key under which ``text`` nests deeper than MAX_JSON_DEPTH ("" outside an object), or
    None. Linear in the text; brackets inside strings do not count."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return None  # the common case, at the cost of two C loops
    depth, key = 0, ""
    for m in _JSON_TOKEN.finditer(text):
        token = m.group()
        if token in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return key
        elif token in "]}":
            depth -= 1
        elif depth == 1:
            key = token  # a key, or a plain value that the next key replaces
    return None


def json_loads(text: str | bytes) -> Any:
    """``json.loads`` that raises :class:`JSONTooDeep` (a ValueError) for text nested deeper than
    :data:`MAX_JSON_DEPTH` instead of overflowing Python's stack with RecursionError."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    key = too_deep(text)
    if key is not None:
        try:
            name = json.loads(key) if key else ""
        except ValueError:
            name = key
        raise JSONTooDeep(str(name))
    return json.loads(text)


def fail(field: str, code: str, message: str) -> ValidationError:
    return ValidationError([FieldError(field, code, message)])


#: Largest ``limit``, ``offset`` and ``batch_size`` (2**53, the largest whole number every database and
#: JSON agree on): a bigger one would overflow a 64-bit SQL integer instead of meaning anything.
MAX_ROWS = 2**53


def count_error(name: str, value: Any, minimum: int) -> FieldError | None:
    """The problem with a row count argument (``limit``, ``offset``, ``batch_size``), or None: it must be a
    whole number from ``minimum`` to :data:`MAX_ROWS`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        return FieldError(name, "type", f"expected a whole number >= {minimum}, got {quote(value)}")
    if value > MAX_ROWS:
        return FieldError(name, "too_large", f"expected a whole number <= {MAX_ROWS:,} (2**53), got {quote(value)}")
    return None


def check_count(name: str, value: Any, minimum: int = 1) -> None:
    """Raise ValidationError naming ``name`` unless ``value`` is a whole number in ``minimum..MAX_ROWS``."""
    error = count_error(name, value, minimum)
    if error is not None:
        raise ValidationError([error])


# ---- arguments of public functions: checked where they enter, naming the parameter ----


def arg_type(name: str, expected: str, value: Any) -> ValidationError:
    """The error for argument ``name`` of the wrong type: ``expected a mapping, got int``."""
    return fail(name, "type", f"expected {expected}, got {type(value).__name__}")


def check_flag(name: str, value: Any) -> bool:
    """``value`` if it is True or False, else ValidationError naming ``name`` (no truthy junk)."""
    if not isinstance(value, bool):
        raise arg_type(name, "True or False", value)
    return value


def check_mapping(name: str, value: Any, *, optional: bool = True) -> Any:
    """``value`` if it is a mapping (or None when ``optional``), else ValidationError naming ``name``."""
    if value is None and optional:
        return None
    if not isinstance(value, Mapping):
        raise arg_type(name, "a mapping" + (" or None" if optional else ""), value)
    return value


def check_iterable(name: str, value: Any, what: str = "a list") -> Any:
    """``value`` if it can be iterated as a collection of items: not None, a string, bytes or a mapping."""
    if isinstance(value, (str, bytes, bytearray, Mapping)) or not isinstance(value, Iterable):
        raise arg_type(name, what, value)
    return value


def check_names(name: str, value: Any, *, optional: bool = False, one_ok: bool = True) -> Any:
    """A list of names (texts) from a name, a list, tuple or set of names: a tuple of them, or None when
    ``optional`` and ``value`` is None."""
    if value is None and optional:
        return None
    if isinstance(value, str) and one_ok:
        value = (value,)
    check_iterable(name, value, "a name or a list of names" if one_ok else "a list of names")
    items = tuple(value)
    errors = []
    for i, v in enumerate(items):
        try:
            text(v, f"{name}[{i}]", max_len=MAX_NAME)
        except ValidationError as exc:
            errors += exc.errors
    if errors:
        raise ValidationError(errors)
    return items


def check_path(name: str, value: Any) -> str:
    """A file name argument: text or an ``os.PathLike`` giving text, not empty, without NUL characters."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise arg_type(name, "a file name", value)
    text(value, name, required=True, max_len=4096)
    return value


def text(value: Any, field: str, *, required: bool = False, max_len: int = MAX_TEXT, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise fail(field, "type", f"expected text, got {type(value).__name__}")
    if required and not value.strip():
        raise fail(field, "required", "must not be empty")
    if len(value) > max_len:
        raise fail(field, "too_long", f"at most {max_len} characters, got {len(value)}")
    if "\x00" in value:
        raise fail(field, "nul_character", "must not contain NUL characters")
    if not str.isascii(value) and not _encodes(value):  # str's own test: a subclass cannot skip the check
        raise fail(field, "invalid_unicode", "contains a lone surrogate, which is not valid Unicode text")
    return value


def _encodes(value: str) -> bool:
    """Whether ``value`` is valid Unicode text (no lone surrogates), so that it encodes as UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _plain_text(value: Any, max_len: int) -> bool:
    """True only if ``text(value, field, max_len=max_len)`` takes ``value`` as it is (checked without naming a
    field); False for anything else, such as a ``str`` subclass, which then goes through ``text``."""
    return type(value) is str and len(value) <= max_len and "\x00" not in value and (value.isascii() or _encodes(value))


def name(value: Any, field: str) -> Any:
    return text(value, field, required=True, max_len=MAX_NAME)


def opt_name(value: Any, field: str) -> Any:
    return text(value, field, max_len=MAX_NAME, optional=True)


def is_id(value: Any) -> bool:
    """Whether ``value`` can be a record's id: text of 1 to 64 characters, no NUL, valid Unicode."""
    return isinstance(value, str) and 0 < len(value) <= 64 and "\x00" not in value and (value.isascii() or _encodes(value))


def opt_id(value: Any, field: str) -> Any:
    return text(value, field, max_len=64, optional=True) or None


def req_id(value: Any, field: str) -> Any:
    return text(value, field, required=True, max_len=64)


def choice(options: Iterable[str]) -> Checker:
    opts = tuple(options)

    def check(value: Any, field: str) -> Any:
        raw = getattr(value, "value", value)
        if raw not in opts:
            raise fail(field, "invalid_choice", f"{quote(raw)} is not one of {', '.join(opts)}")
        return raw

    return check


def boolean(value: Any, field: str) -> Any:
    if not isinstance(value, bool):
        raise fail(field, "type", f"expected true or false, got {quote(value)}")
    return value


def utc(value: Any, field: str) -> dt.datetime:
    """A timezone-aware datetime in UTC; naive ones are refused, dates become midnight UTC."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise fail(field, "invalid_datetime", f"{value[:40]!r} is not an ISO 8601 date-time") from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise fail(field, "naive_datetime", "needs a timezone (use datetime.timezone.utc)")
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:  # e.g. 0001-01-01 00:30+01:00 is before datetime.min in UTC
            raise fail(field, "out_of_range", f"{value.isoformat()} is outside the years 1 to 9999 in UTC") from None
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    raise fail(field, "type", f"expected a datetime, got {type(value).__name__}")


def opt_utc(value: Any, field: str) -> Any:
    return None if value is None else utc(value, field)


def opt_date(value: Any, field: str) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise fail(field, "invalid_date", f"{value[:40]!r} is not an ISO 8601 date") from None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    raise fail(field, "type", f"expected a date, got {type(value).__name__}")


def checked_list(value: Any, kind: type) -> list[Any] | None:
    """A copy of ``value`` when it is a list of ``kind`` values only (items a check made, which it would
    return as they are: an entity checked again), else None."""
    if type(value) is not list:
        return None
    for v in value:
        if type(v) is not kind:
            return None
    return value[:]


def list_of(item: Checker, parsed: type | None = None) -> Checker:
    """A list's check: ``item`` on each element, every problem collected. ``parsed``: the type ``item``
    makes and passes through unchanged, so a list of those alone is taken as it is (see :func:`checked_list`)."""

    def check(value: Any, field: str) -> Any:
        if parsed is not None and (done := checked_list(value, parsed)) is not None:
            return done
        if type(value) is not list and (isinstance(value, (str, bytes)) or not isinstance(value, Iterable)):
            raise fail(field, "type", f"expected a list, got {type(value).__name__}")
        out, errors = [], []
        for i, v in enumerate(value):
            try:
                out.append(item(v, f"{field}[{i}]"))
            except ValidationError as exc:
                errors += exc.errors
        if errors:
            raise ValidationError(errors)
        return out

    return check


#: The one empty tag set every untagged entity shares (an empty frozenset costs 216 bytes each).
NO_TAGS: frozenset[str] = frozenset()


def tags(value: Any, field: str) -> Any:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise fail(field, "type", f"expected a set of tags, got {type(value).__name__}")
    if type(value) not in (list, tuple, set, frozenset):
        value = list(value)  # read once: a generator would be used up by the first pass below
    out = []
    for t in value:  # tags as they usually come: plain, trimmed or not
        if not _plain_text(t, 100) or not (trimmed := t.strip()):
            break
        out.append(trimmed)
    else:
        return frozenset(out) if out else NO_TAGS
    out = []
    errors: list[FieldError] = []
    for i, t in enumerate(value):
        try:
            out.append(text(t, f"{field}[{i}]", required=True, max_len=100).strip())
        except ValidationError as exc:
            errors += exc.errors
    if errors:
        raise ValidationError(errors)
    return frozenset(out) if out else NO_TAGS


def category(value: Any, field: str) -> Any:
    """A category path such as ``Retail/Online``: non-empty parts separated by ``/``."""
    if value is None:
        return None
    value = text(value, field, max_len=MAX_NAME)
    parts = [p.strip() for p in value.split("/")]
    if not all(parts):
        raise fail(field, "invalid_category", f"{value!r} has an empty part; write paths like 'Retail/Online'")
    return "/".join(parts)


def _json_safe(value: Any, field: str, depth: int = 0) -> None:
    if depth > MAX_CUSTOM_DEPTH:
        raise fail(field, "too_deep", "nested too deeply")
    if value is None or isinstance(value, (bool, int)):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
            raise fail(field, "out_of_range", "integers in custom fields must fit in 53 bits")
        return
    if isinstance(value, float):
        raise fail(field, "type", "floats are not stored; use a decimal string")
    if isinstance(value, str):
        text(value, field)
        return
    if isinstance(value, list):
        for i, v in enumerate(value):
            _json_safe(v, f"{field}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise fail(field, "type", "keys must be text")
            text(k, f"{field}.{k!r}", max_len=200)
            _json_safe(v, f"{field}.{k}", depth + 1)
        return
    raise fail(field, "type", f"{type(value).__name__} is not JSON-able")


def json_dict(value: Any, field: str) -> Any:
    if not isinstance(value, dict):
        raise fail(field, "type", f"expected a mapping, got {type(value).__name__}")
    # flat text, as custom fields often are, is checked without building each value's field path
    if not all(_plain_text(k, 200) and _plain_text(v, MAX_TEXT) for k, v in value.items()):
        _json_safe(value, field)
    return dict(value)


# ---- ids: time-ordered, 32 lower-case hex digits ----
_id_lock = threading.Lock()
_last = [0, 0]


def new_id() -> str:
    """A new time-ordered id: later ids sort after earlier ones, also within one millisecond.

    48 bits of milliseconds then 80 random bits (incremented within a millisecond), as 32 hex digits.

    >>> a, b = new_id(), new_id()
    >>> len(a), a < b
    (32, True)
    """
    ms, rnd = _take_ids(1)
    return f"{(ms << 80) | (rnd & _RANDOM_MASK):032x}"


def new_ids(n: int) -> list[str]:
    """``n`` new ids at once: the ids ``n`` calls of :func:`new_id` would give within one millisecond
    (consecutive, sorted, after every id made before), for ``add_many``'s rows.

    >>> a = new_ids(3)
    >>> a == sorted(a) and len(set(a)) == 3 and new_id() > a[-1]
    True
    """
    if n <= 0:
        return []
    ms, rnd = _take_ids(n)
    base = ms << 80
    return [f"{base | (r & _RANDOM_MASK):032x}" for r in range(rnd, rnd + n)]


def _take_ids(n: int) -> tuple[int, int]:
    """(milliseconds, first random part) of ``n`` consecutive new ids: the current millisecond and fresh
    random bits, or, within the millisecond of the last id made, the numbers after it."""
    with _id_lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last[0]:
            ms = _last[0]
            rnd = _last[1] + 1
        else:
            rnd = int.from_bytes(os.urandom(10), "big") >> 1
        _last[0], _last[1] = ms, rnd + n - 1
    return ms, rnd


_RANDOM_MASK = (1 << 80) - 1
