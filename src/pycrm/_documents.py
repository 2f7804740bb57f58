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

__all__ = ["read_document", "under"]


def _bad(where: str, code: str, message: str) -> ValidationError:
    return ValidationError([FieldError(where, code, message)])


def under(exc: ValidationError, where: str, path: str = "") -> ValidationError:
    """``exc`` with each field named ``<file>: <path>.<field>``."""

    def name(field: str) -> str:
        inner = ".".join(x for x in (path, field) if x)
        return f"{where}: {inner}" if inner else where

    return ValidationError([FieldError(name(e.field), e.code, e.message) for e in exc.errors])


def read_document(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The table at the top of the ``.toml`` or ``.json`` file ``path``; a ValidationError naming the file
    when it cannot be read."""
    p = Path(path)
    if p.suffix.lower() not in (".toml", ".json"):
        raise _bad(str(p), "bad_config", "expected a .toml or .json file")
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _bad(str(p), "bad_config", "no such file") from None
    except UnicodeDecodeError:
        raise _bad(str(p), "bad_config", "not UTF-8 text") from None
    try:
        data = tomllib.loads(text) if p.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise _bad(str(p), "bad_config", f"cannot be read: {exc}") from None
    except RecursionError:
        raise _bad(str(p), "bad_config", "nested too deeply") from None
    if not isinstance(data, dict):
        raise _bad(str(p), "bad_config", "expected a table (an object) at the top")
    return data
