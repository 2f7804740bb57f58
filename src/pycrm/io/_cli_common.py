"""What ``pycrm import`` and ``pycrm export`` share: opening the store named by ``--store``."""

from __future__ import annotations

from pathlib import Path

import pycrm
from pycrm.errors import FieldError, ValidationError

__all__ = ["open_store"]

_SQLITE_MAGIC = b"SQLite format 3\x00"


def open_store(store: str, *, region: str | None, create: bool) -> pycrm.CRM:
    """Open ``--store``: a store URL, or a SQLite file (created by imports, never by exports)."""
    text = store.strip()
    if "://" in text and not text.startswith("sqlite:///"):
        return pycrm.open(text, default_region=region)
    path = Path(text[len("sqlite:///") :] if text.startswith("sqlite:///") else text)
    if path.is_dir():
        raise ValidationError([FieldError("--store", "bad_store", f"{path}: is a directory, not a SQLite file")])
    if path.exists() and path.stat().st_size:
        with path.open("rb") as f:
            if f.read(len(_SQLITE_MAGIC)) != _SQLITE_MAGIC:
                raise ValidationError([FieldError("--store", "bad_store", f"{path}: is not a SQLite database")])
    elif not create:
        raise ValidationError([FieldError("--store", "bad_store", f"{path}: no such store (import into it first)")])
    elif not path.resolve().parent.is_dir():
        raise ValidationError([FieldError("--store", "bad_store", f"{path}: no such directory: {path.resolve().parent}")])
    return pycrm.open(f"sqlite:///{path}", default_region=region)
