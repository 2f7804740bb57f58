"""The arguments of ``pycrm.io``'s public functions, checked where they enter.

Each check raises a ValidationError naming the parameter (``target``, ``path``, ``progress``...) for a value
of the wrong type, before anything is read or written, so junk never reaches a file, a session or the
store as another exception type.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pycrm.domain import User
from pycrm.domain._checks import arg_type, check_flag, check_path, text

if TYPE_CHECKING:
    from pycrm import CRM
    from pycrm.storage import Session

__all__ = [
    "check_actor",
    "check_callback",
    "check_crm",
    "check_file_or_stream",
    "check_flag",
    "check_option",
    "check_path",
    "check_session",
    "check_target",
]


def check_crm(value: Any, name: str = "crm") -> CRM:
    """``value`` if it is an opened store (``pycrm.open``)."""
    from pycrm import CRM

    if not isinstance(value, CRM):
        raise arg_type(name, "a CRM (from pycrm.open)", value)
    return value


def check_session(value: Any, name: str = "session") -> Session:
    """``value`` if it is a session (``crm.session()``)."""
    from pycrm.storage import Session

    if not isinstance(value, Session):
        raise arg_type(name, "a Session (from crm.session())", value)
    return value


def check_target(value: Any, name: str = "target") -> CRM | Session:
    """``value`` if it is a CRM or a Session: what the functions that open their own session take."""
    from pycrm import CRM
    from pycrm.storage import Session

    if not isinstance(value, (CRM, Session)):
        raise arg_type(name, "a CRM or a Session", value)
    return value


def check_actor(value: Any, name: str = "actor") -> User | None:
    if value is not None and not isinstance(value, User):
        raise arg_type(name, "a User or None", value)
    return value


def check_callback(value: Any, name: str = "progress") -> Any:
    """``value`` if it is None or callable."""
    if value is not None and not callable(value):
        raise arg_type(name, "a function or None", value)
    return value


def check_option(value: Any, name: str) -> str | None:
    """A short optional text option (``format``, ``encoding``, ``sheet``): None or text of at most 200 characters."""
    return text(value, name, max_len=200, optional=True)  # type: ignore[no-any-return]


def check_file_or_stream(value: Any, name: str = "path") -> Any:
    """A file name (as text), ``"-"`` or an open text stream (anything with ``write``)."""
    if isinstance(value, (str, os.PathLike)):
        return check_path(name, value)
    if not callable(getattr(value, "write", None)):
        raise arg_type(name, "a file name or a text stream", value)
    return value
