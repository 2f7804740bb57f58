"""Configuration documents (TOML or JSON files) read with every problem named by file and field.

Shared by the configuration readers (``pycrm dispatch --config``, ``SlaPolicy.load``); depends on nothing but
the errors.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

from pycrm.errors import FieldError, ValidationError

__all__ = ["MAX_DOCUMENT_BYTES", "read_document", "under"]

#: The largest configuration document read (a policy of 500 rules with 100 calendars fits many times over).
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024


def _bad(where: str, code: str, message: str) -> ValidationError:
    return ValidationError([FieldError(where, code, message)])


def under(exc: ValidationError, where: str, path: str = "") -> ValidationError:
    """``exc`` with each field named ``<file>: <path>.<field>``."""

    def name(field: str) -> str:
        inner = ".".join(x for x in (path, field) if x)
        return f"{where}: {inner}" if inner else where

    return ValidationError([FieldError(name(e.field), e.code, e.message) for e in exc.errors])


def read_document(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The table at the top of the ``.toml`` or ``.json`` file ``path`` (at most :data:`MAX_DOCUMENT_BYTES`);
    a ValidationError naming the file when it cannot be read."""
    if not isinstance(path, (str, os.PathLike)):
        raise _bad("path", "type", f"expected a file path, got {type(path).__name__}")
    try:
        p = Path(path)
    except TypeError:  # an os.PathLike whose __fspath__ does not give text
        raise _bad("path", "type", "expected a file path") from None
    if p.suffix.lower() not in (".toml", ".json"):
        raise _bad(str(p), "bad_config", "expected a .toml or .json file")
    try:
        with p.open("rb") as f:
            raw = f.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        raise _bad(str(p), "bad_config", "no such file") from None
    except (OSError, ValueError) as exc:  # a directory, no permission, a NUL in the name
        raise _bad(str(p), "bad_config", f"cannot be opened: {exc.strerror if isinstance(exc, OSError) else exc}") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise _bad(str(p), "too_large", f"is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(str(p), "bad_config", "not UTF-8 text") from None
    try:
        data = tomllib.loads(text) if p.suffix.lower() == ".toml" else json.loads(text)
    except RecursionError:
        raise _bad(str(p), "bad_config", "nested too deeply") from None
    except ValueError as exc:  # not TOML / JSON, or a number too long to convert
        raise _bad(str(p), "bad_config", f"cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise _bad(str(p), "bad_config", "expected a table (an object) at the top")
    return data
