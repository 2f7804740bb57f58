"""Every error pycrm raises on purpose.

::

    CRMError
    ├── ValidationError      bad input; ``.errors`` lists every FieldError at once
    ├── NotFound             no entity with that id
    ├── ConcurrencyError     stale ``version`` on update
    ├── PermissionDenied     the actor's roles do not allow the action
    ├── TransitionError      an illegal move in a pipeline or ticket lifecycle
    ├── EncryptionError      a field cannot be encrypted or decrypted (missing key, wrong key, altered value)
    └── StorageError         the store cannot do what was asked: a full disk, a read-only or damaged file,
                             a file that is not a database, a lost connection (names the store)

Bad input from a caller never surfaces as another exception type.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

__all__ = [
    "CRMError",
    "ConcurrencyError",
    "EncryptionError",
    "FieldError",
    "NotFound",
    "PermissionDenied",
    "StorageError",
    "TransitionError",
    "ValidationError",
]

#: The longest message one :class:`FieldError` keeps: past it the middle is cut out (a 10 MB value quoted in
#: a message leaves its first and last characters, and the words around them).
MAX_MESSAGE = 400


def elide(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` as it is up to ``limit`` characters, else its start and end around `` … ``.

    >>> elide("x" * 1000, 20)
    'xxxxxxxxxx … xxxxxxx'
    """
    if len(text) <= limit:
        return text
    head = limit // 2
    tail = limit - head - 3
    return f"{text[:head]} … {text[-tail:]}" if tail > 0 else text[:limit]


def quote(value: object, limit: int = 40) -> str:
    """A bad value as a message quotes it: its ``repr``, cut to at most ``limit`` characters.

    >>> quote("x" * 100)
    "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx..."
    >>> quote(None)
    'None'
    """
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shown(value: object) -> str:
    return elide(value if isinstance(value, str) else str(value))


@attrs.frozen
class FieldError:
    """One problem with one field: ``field`` is a path such as ``emails[1]`` or ``row 3.email``."""

    field: str = attrs.field(converter=_shown)
    code: str
    message: str = attrs.field(converter=_shown)

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class CRMError(Exception):
    """Base of every pycrm error."""


class ValidationError(CRMError, ValueError):
    """Bad input. ``errors`` holds every problem found, so a caller can fix a form in one pass.

    >>> err = ValidationError([FieldError("name", "required", "must not be empty")])
    >>> str(err)
    'name: must not be empty'
    >>> err.fields
    ['name']
    """

    def __init__(self, errors: Iterable[FieldError] | str, *, field: str | None = None, code: str = "invalid"):
        if isinstance(errors, (str, FieldError)) or not isinstance(errors, Iterable):
            errors = [errors]  # type: ignore[list-item]
        self.errors: list[FieldError] = [
            e if isinstance(e, FieldError) else FieldError(field or "", str(code), str(e)) for e in errors
        ]
        super().__init__("; ".join(str(e) for e in self.errors) or "invalid input")

    @property
    def fields(self) -> list[str]:
        return [e.field for e in self.errors]

    def prefixed(self, prefix: str) -> ValidationError:
        """The same errors with every field path put under ``prefix`` (``row 3``, ``customers[2]``)."""
        sep = "" if not prefix else "."
        return ValidationError(
            FieldError(f"{prefix}{sep}{e.field}" if e.field else prefix, e.code, e.message) for e in self.errors
        )


class NotFound(CRMError, LookupError):
    """No entity with that id (in the actor's view)."""


class ConcurrencyError(CRMError):
    """The entity was changed by someone else since it was read (stale ``version``)."""


class PermissionDenied(CRMError):
    """The actor may not do this."""


class TransitionError(CRMError):
    """An illegal move in a state machine; nothing was changed."""


class EncryptionError(CRMError):
    """An encrypted field cannot be read or written: its key is missing, the key is wrong, or the stored
    value was altered or moved from another field. The message names the key id or the field, never a key."""


class StorageError(CRMError):
    """The store failed, not the input: the disk is full, the file is read-only, damaged or not a database,
    the connection was lost. The message names the store (path or URL, password hidden) and the cause; the
    unit of work that met it was rolled back, so the store is as the last commit left it."""
