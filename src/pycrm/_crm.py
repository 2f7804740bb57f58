"""``pycrm.open`` and the ``CRM`` handle."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from pycrm.domain import CustomField, Pipeline, User, register_pipeline
from pycrm.domain._values import check_region
from pycrm.domain._values import default_region as _region_scope
from pycrm.errors import FieldError, ValidationError
from pycrm.storage import Session

__all__ = ["CRM", "open"]


class CRM:
    """An opened store. Use ``crm.session()`` for a unit of work; close it (or use ``with``) when done."""

    def __init__(
        self, store: Any, *, default_region: str | None = None, custom_fields: Mapping[str, Sequence[CustomField]] | None = None
    ):
        self._store = store
        self.default_region = default_region
        self.custom_fields: dict[str, tuple[CustomField, ...]] = {k: tuple(v) for k, v in (custom_fields or {}).items()}

    @property
    def url(self) -> str:
        return str(self._store.url)

    @property
    def store(self) -> Any:
        """The storage adapter (``MemoryStore`` or ``SQLStore``)."""
        return self._store

    @contextmanager
    def session(self, actor: User | None = None) -> Iterator[Session]:
        """A unit of work: commit on clean exit, rollback on exception.

        ``actor=None`` is the system actor (full rights, for scripts).
        """
        if actor is not None and not isinstance(actor, User):
            raise ValidationError([FieldError("actor", "type", f"expected a User or None, got {type(actor).__name__}")])
        s = Session(self._store, actor=actor, default_region=self.default_region, custom_fields=self.custom_fields)
        with _region_scope(self.default_region):
            try:
                yield s
                s.commit()
            finally:
                s.close()

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> CRM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<CRM {self.url}>"


def open(
    target: Any,
    *,
    default_region: str | None = None,
    custom_fields: Mapping[str, Iterable[CustomField]] | None = None,
    pipelines: Iterable[Pipeline] = (),
    echo: bool = False,
) -> CRM:
    """Open a store: ``"memory://"``, a SQLAlchemy URL (SQLite, PostgreSQL, MariaDB/MySQL) or an Engine.

    The SQL schema is created or upgraded on first open.

    >>> import pycrm
    >>> with pycrm.open("memory://", default_region="CN") as crm:
    ...     with crm.session() as s:
    ...         c = s.customers.add(pycrm.Customer("韩梅梅", kind="person", phones=["138 0013 8000"]))
    ...     with crm.session() as s:
    ...         [x.name for x in s.customers.find({"phones": "+86 138-0013-8000"})]
    ['韩梅梅']
    """
    region = check_region(default_region, "default_region") if default_region is not None else None
    fields = {k: tuple(v) for k, v in (custom_fields or {}).items()}
    for p in pipelines:
        register_pipeline(p)
    if isinstance(target, str) and target.strip() in ("memory://", "memory:"):
        from pycrm.storage.memory import MemoryStore

        return CRM(MemoryStore(), default_region=region, custom_fields=fields)
    if isinstance(target, str):
        if "://" not in target:
            raise ValidationError(
                [FieldError("url", "invalid_url", f"{target!r} is not a store URL (try 'sqlite:///crm.db' or 'memory://')")]
            )
    else:
        try:
            from sqlalchemy.engine import Engine
        except ImportError:  # pragma: no cover - SQLAlchemy is a dependency
            Engine = ()  # type: ignore[assignment,misc]
        if not isinstance(target, Engine):
            raise ValidationError(
                [FieldError("url", "type", f"expected a URL or a SQLAlchemy Engine, got {type(target).__name__}")]
            )
    from pycrm.storage.sql import SQLStore

    return CRM(SQLStore(target, echo=echo), default_region=region, custom_fields=fields)
