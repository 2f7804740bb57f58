"""``pycrm.open`` and the ``CRM`` handle."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import attrs

from pycrm.domain import ENTITIES, Customer, CustomField, Pipeline, User, register_pipeline
from pycrm.domain._checks import arg_type, check_count, check_flag, check_iterable, check_mapping
from pycrm.domain._values import check_region
from pycrm.domain._values import default_region as _region_scope
from pycrm.errors import FieldError, ValidationError, quote
from pycrm.security import FieldRules, KeyRing
from pycrm.storage import Session
from pycrm.storage._attachments import AttachmentLimits
from pycrm.storage._blobs import BlobStore, blob_store
from pycrm.storage._guard import SecurityConfig
from pycrm.storage._journal import AuditLog
from pycrm.storage.port import Store

__all__ = ["CRM", "open"]


class CRM:
    """An opened store. Use ``crm.session()`` for a unit of work; close it (or use ``with``) when done."""

    def __init__(
        self,
        store: Store,
        *,
        default_region: str | None = None,
        custom_fields: Mapping[str, Sequence[CustomField]] | None = None,
        security: SecurityConfig | None = None,
        outbox: bool = False,
        merge_rules: Mapping[str, Mapping[str, str]] | None = None,
        required_fields: Mapping[str, Sequence[str]] | None = None,
        blobs: Any = None,
        attachment_limits: AttachmentLimits | None = None,
    ):
        from pycrm.automation._dispatch import Handlers
        from pycrm.storage._journal import check_rules

        self.merge_rules = check_rules(merge_rules, "merge_rules")

        self._store = store
        self.outbox_on = outbox
        self.handlers = Handlers()
        self.default_region = default_region
        self.custom_fields: dict[str, tuple[CustomField, ...]] = {k: tuple(v) for k, v in (custom_fields or {}).items()}
        self.security = security if security is not None else SecurityConfig()
        #: built-in fields every record of a repository must fill (``pycrm.open(required_fields=...)``)
        self.required_fields: dict[str, tuple[str, ...]] = _required_fields(required_fields)
        #: where attachment content lives (``pycrm.open(blobs=...)``), and what it may be
        self.blobs: BlobStore | None = blob_store(blobs)
        if attachment_limits is not None and not isinstance(attachment_limits, AttachmentLimits):
            raise arg_type("attachment_limits", "an AttachmentLimits", attachment_limits)
        self.attachment_limits = attachment_limits if attachment_limits is not None else AttachmentLimits()
        _declare_unique(store, self.custom_fields)
        _declare_indexes(store, self.custom_fields)

    @property
    def audit(self) -> AuditLog:
        """The store's audit trail: ``crm.audit.verify()``, ``crm.audit.history(id)``, ``crm.audit.head()``."""

        def begin() -> tuple[Any, bool]:
            return self._store.begin(), True

        return AuditLog(begin, self.security.audit_key)

    @property
    def url(self) -> str:
        return str(self._store.url)

    @property
    def store(self) -> Store:
        """The storage adapter (``MemoryStore`` or ``SQLStore``): a :class:`~pycrm.storage.port.Store`, with the
        capabilities it offers (``isinstance(crm.store, pycrm.storage.port.FileCopies)``, ...)."""
        return self._store

    @contextmanager
    def session(self, actor: User | None = None) -> Iterator[Session]:
        """A unit of work: commit on clean exit, rollback on exception.

        ``actor=None`` is the system actor (full rights, for scripts).
        """
        if actor is not None and not isinstance(actor, User):
            raise ValidationError([FieldError("actor", "type", f"expected a User or None, got {type(actor).__name__}")])
        s = Session(
            self._store,
            actor=actor,
            default_region=self.default_region,
            custom_fields=self.custom_fields,
            security=self.security,
            outbox=self.outbox_on,
            merge_rules=self.merge_rules,
            required_fields=self.required_fields,
            blobs=self.blobs,
            attachment_limits=self.attachment_limits,
        )
        with _region_scope(self.default_region):
            try:
                yield s
                s.commit()
            finally:
                s.close()

    # ---- automation (pycrm.automation; docs/automation.md) ----
    def on(self, *types: Any, name: str | None = None) -> Any:
        """A decorator registering a handler for events of ``types`` (event classes or custom event names),
        called by :meth:`dispatch` in this process: ``@crm.on(pycrm.automation.StageChanged)``."""
        return self.handlers.on(*types, name=name)

    def dispatch(self, **kw: Any) -> Any:
        """Deliver the outbox's due events to the handlers registered here (:func:`pycrm.automation.dispatch`:
        at least once, in order per record, failures retried with backoff, then dead-lettered)."""
        from pycrm.automation._dispatch import dispatch

        return dispatch(self._store, self.handlers, **kw)

    def run_due(self, rules: Any, *, now: Any = None, chunk: int | None = None) -> Any:
        """Evaluate time rules (``pycrm.automation.DormantCustomers(90)``, ...) at ``now`` and write the events they
        fire to the outbox, each record once per period (:func:`pycrm.automation.run_due`); for the host's
        scheduler. Returns a :class:`pycrm.automation.DueResult`."""
        from pycrm.automation._due import CHUNK, run_due

        return run_due(self, rules, now=now, chunk=CHUNK if chunk is None else chunk)

    @property
    def outbox(self) -> Any:
        """The outbox: ``crm.outbox.counts()``, ``.entries(state)``, ``.dead()``, ``.replay(seqs)``."""
        from pycrm.automation._dispatch import OutboxView

        return OutboxView(self._store)

    def rotate_keys(self, *, batch_size: int = 1000) -> int:
        """Re-encrypt every encrypted value not under the key ring's active key; returns how many rows and
        records changed.

        Covers every place an envelope lives: the rows, merge records (their snapshots, which ``unmerge``
        brings back) and archived records (see :mod:`pycrm.storage._rotate`); once it has run, the old keys
        can leave the ring. Runs in batches of ``batch_size`` rows or records, each its own transaction, so a
        large store is rotated without one long lock; an interrupted rotation can simply be run again. Needs
        every old key in the ring (a missing one is an EncryptionError naming it and the row or record).
        """
        check_count("batch_size", batch_size)
        from pycrm.storage._rotate import rotate_store

        return rotate_store(self, batch_size)

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> CRM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<CRM {self.url}>"


def _declare_unique(store: Store, fields: Mapping[str, Sequence[CustomField]]) -> None:
    """Custom fields declared ``unique=True`` become keys the store holds unique (``storage/_keys.py``)."""
    from pycrm.storage._keys import declare

    errors = []
    names = []
    for repository, defs in fields.items():
        for d in defs:
            if not isinstance(d, CustomField) or not d.unique:
                continue
            if repository != "customers":
                where = f"custom_fields.{repository}.{d.name}"
                errors.append(FieldError(where, "unsupported", "only customers' custom fields can be unique"))
            names.append(f"custom.{d.name}")
    if errors:
        raise ValidationError(errors)
    if names:
        declare(store, Customer, names)


def _declare_indexes(store: Store, fields: Mapping[str, Sequence[CustomField]]) -> None:
    """Custom fields declared ``indexed=True`` get their index in a SQL store (``storage/sql/custom.py``); a
    memory store scans, so has nothing to create."""
    from pycrm.storage.port import CustomIndexes

    if not isinstance(store, CustomIndexes):
        return
    for repository, defs in fields.items():
        indexed = [d for d in defs if isinstance(d, CustomField) and d.indexed]
        if indexed:
            store.index_custom_fields(ENTITIES[repository], indexed)


#: Fields that cannot be declared required: kept by the store, or required or defaulted by the entity already.
_NOT_REQUIRABLE = frozenset({"id", "version", "created_at", "updated_at", "custom"})


def _required_fields(value: Any) -> dict[str, tuple[str, ...]]:
    """``required_fields`` checked: repository name -> names of built-in fields of its entity."""
    check_mapping("required_fields", value)
    out: dict[str, tuple[str, ...]] = {}
    errors: list[FieldError] = []
    for repo, names in (value or {}).items():
        kind = ENTITIES.get(repo) if isinstance(repo, str) else None
        if kind is None:
            errors.append(
                FieldError(
                    f"required_fields.{repo}", "unknown_entity", f"no repository named {quote(repo)} ({', '.join(ENTITIES)})"
                )
            )
            continue
        items = tuple(check_iterable(f"required_fields.{repo}", names, "a list of field names"))
        fields = attrs.fields_dict(kind)
        for i, name in enumerate(items):
            if not isinstance(name, str) or name not in fields or name in _NOT_REQUIRABLE or name.startswith("_"):
                errors.append(
                    FieldError(
                        f"required_fields.{repo}[{i}]",
                        "unknown_field",
                        f"{quote(name)} is not a field of {kind.__name__} that can be required "
                        "(custom fields are required with CustomField(..., required=True))",
                    )
                )
        out[repo] = tuple(dict.fromkeys(items))
    if errors:
        raise ValidationError(errors)
    return {k: v for k, v in out.items() if v}


def _custom_fields(value: Any) -> dict[str, tuple[CustomField, ...]]:
    """``custom_fields`` checked: repository name -> CustomField objects."""
    check_mapping("custom_fields", value)
    out: dict[str, tuple[CustomField, ...]] = {}
    for repo, defs in (value or {}).items():
        if not isinstance(repo, str) or repo not in ENTITIES or "custom" not in attrs.fields_dict(ENTITIES[repo]):
            holders = ", ".join(r for r, k in ENTITIES.items() if "custom" in attrs.fields_dict(k))
            raise ValidationError(
                [FieldError(f"custom_fields.{repo}", "unknown_entity", f"{quote(repo)} has no custom fields ({holders} have)")]
            )
        items = tuple(check_iterable(f"custom_fields.{repo}", defs, "a list of CustomField objects"))
        for i, d in enumerate(items):
            if not isinstance(d, CustomField):
                raise ValidationError(
                    [FieldError(f"custom_fields.{repo}[{i}]", "type", f"expected a CustomField, got {type(d).__name__}")]
                )
        out[repo] = items
    return out


def open(
    target: Any,
    *,
    default_region: str | None = None,
    custom_fields: Mapping[str, Iterable[CustomField]] | None = None,
    pipelines: Iterable[Pipeline] = (),
    echo: bool = False,
    field_rules: FieldRules | None = None,
    keyring: KeyRing | None = None,
    encrypted: Mapping[str, Iterable[str]] | None = None,
    audit: bool = True,
    audit_key: bytes | None = None,
    outbox: bool = False,
    merge_rules: Mapping[str, Mapping[str, str]] | None = None,
    required_fields: Mapping[str, Iterable[str]] | None = None,
    blobs: Any = None,
    attachment_limits: AttachmentLimits | None = None,
) -> CRM:
    """Open a store: ``"memory://"``, a SQLAlchemy URL (SQLite, PostgreSQL, MariaDB/MySQL) or an Engine.

    The SQL schema is created or upgraded on first open.

    Security (see docs/security.md): ``field_rules`` -- which fields each role sees hidden or masked
    (default ``pycrm.security.DEFAULT_FIELD_RULES``); ``encrypted`` -- sensitive custom fields stored
    encrypted, e.g. ``{"customers": ["custom.national_id"]}``, with keys from ``keyring``
    (``pycrm.security.KeyRing``); ``audit`` -- keep the hash-chained audit trail (on by default),
    ``audit_key`` -- an HMAC key for it that the database's writers do not hold.

    ``custom_fields`` -- typed fields added to any repository but users (``{"contacts": [CustomField("score",
    "integer", indexed=True)]}``); ``required_fields`` -- built-in fields every record of a repository must
    fill in this store, e.g. ``{"customers": ["emails", "phones"]}``: ``add``, ``update`` and imports refuse a
    record without them (see docs/domain.md).

    Automation (see docs/automation.md): ``outbox=True`` writes the domain events every change raises to the
    store's outbox, in the same transaction; ``crm.dispatch()`` delivers them to handlers (``crm.on``).

    Attachments (see docs/attachments.md): ``blobs`` -- where their content lives: a local directory (a path or
    ``file://`` URL), any fsspec URL (``s3://bucket/crm``, ``memory://crm``; the ``blobs`` extra) or a
    :class:`pycrm.storage.BlobStore`; ``attachment_limits`` -- an :class:`pycrm.AttachmentLimits` (size limit,
    accepted media types).

    Sync (see docs/changes.md): ``merge_rules`` -- how ``s.changes.apply`` settles a field both sides changed,
    ``{"customers": {"tags": "union", "*": "server_wins"}}``; the rules of an ``apply`` call go on top.

    >>> import pycrm
    >>> with pycrm.open("memory://", default_region="CN") as crm:
    ...     with crm.session() as s:
    ...         c = s.customers.add(pycrm.Customer("韩梅梅", kind="person", phones=["138 0013 8000"]))
    ...     with crm.session() as s:
    ...         [x.name for x in s.customers.find({"phones": "+86 138-0013-8000"})]
    ['韩梅梅']
    """
    region = check_region(default_region, "default_region") if default_region is not None else None
    check_flag("echo", echo)
    check_flag("audit", audit)
    check_flag("outbox", outbox)
    if audit_key is not None and not isinstance(audit_key, bytes):
        raise arg_type("audit_key", "bytes or None", audit_key)
    fields = _custom_fields(custom_fields)
    from pycrm.storage._journal import check_rules

    rules = check_rules(merge_rules, "merge_rules")
    required = _required_fields(required_fields)
    if attachment_limits is not None and not isinstance(attachment_limits, AttachmentLimits):
        raise arg_type("attachment_limits", "an AttachmentLimits", attachment_limits)
    files = (blob_store(blobs), attachment_limits)
    pipelines = tuple(check_iterable("pipelines", pipelines, "a list of Pipeline objects"))
    for i, p in enumerate(pipelines):
        if not isinstance(p, Pipeline):
            raise ValidationError([FieldError(f"pipelines[{i}]", "type", f"expected a Pipeline, got {type(p).__name__}")])
    security = SecurityConfig(field_rules=field_rules, keyring=keyring, encrypted=encrypted, audit=audit, audit_key=audit_key)
    for p in pipelines:
        register_pipeline(p)
    if isinstance(target, str) and target.strip() in ("memory://", "memory:"):
        from pycrm.storage.memory import MemoryStore

        return _crm(MemoryStore(), region, fields, security, outbox, rules, required, files)
    if isinstance(target, str) and "://" not in target:
        raise ValidationError(
            [FieldError("url", "invalid_url", f"{quote(target)} is not a store URL (try 'sqlite:///crm.db' or 'memory://')")]
        )
    from pycrm.storage.sql import SQLStore, is_engine

    if not isinstance(target, str) and not is_engine(target):
        raise ValidationError([FieldError("url", "type", f"expected a URL or a SQLAlchemy Engine, got {type(target).__name__}")])
    return _crm(SQLStore(target, echo=echo), region, fields, security, outbox, rules, required, files)


def _crm(
    store: Store,
    region: str | None,
    fields: dict[str, tuple[CustomField, ...]],
    security: SecurityConfig,
    outbox: bool,
    rules: Mapping[str, Mapping[str, str]],
    required: dict[str, tuple[str, ...]],
    files: tuple[BlobStore | None, AttachmentLimits | None] = (None, None),
) -> CRM:
    try:
        return CRM(
            store,
            default_region=region,
            custom_fields=fields,
            security=security,
            outbox=outbox,
            merge_rules=rules,
            required_fields=required,
            blobs=files[0],
            attachment_limits=files[1],
        )
    except BaseException:
        store.close()
        raise
