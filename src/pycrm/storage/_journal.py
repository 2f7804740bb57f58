"""The journal of a store: the change feed (``s.changes``) and the audit trail (``s.audit``, ``crm.audit``).

A session collects one change event per stored-row change (and, when auditing is on, one audit draft per
change or event) and hands them to its transaction at commit. The adapter numbers them under a lock held
to the end of the transaction, so sequence numbers follow commit order with no gaps, and chains the audit
entries (:func:`pycrm.security.make_entry`). Both are written in the same transaction as the changes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from pycrm.domain import ENTITIES, Customer, utcnow
from pycrm.domain._checks import check_count, check_iterable, check_mapping, is_id
from pycrm.domain._codec import _plan, from_data, to_data
from pycrm.errors import ConcurrencyError, FieldError, ValidationError, quote
from pycrm.security import AuditEntry, VerifyResult, verify
from pycrm.security._audit import check_draft, diff_text, entry_hashes, entry_header, erasure_of, legacy_seal
from pycrm.storage.port import RowLocks

if TYPE_CHECKING:
    from pycrm.storage._repository import Session

__all__ = ["ApplyResult", "AuditLog", "ChangeEvent", "ChangeFeed", "Incoming", "chain", "number_changes"]

CHANGE_OPS = ("create", "update", "delete", "archive", "unarchive")


@attrs.frozen
class ChangeEvent:
    """One committed change: ``seq`` orders the feed; ``fields`` names what changed (no values)."""

    seq: int
    entity: str
    id: str
    op: str
    version: int | None
    fields: tuple[str, ...]
    at: dt.datetime
    actor_id: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ChangeEvent:
        return cls(
            seq=int(row["seq"]),
            entity=row["entity"],
            id=row["entity_id"],
            op=row["op"],
            version=row["version"],
            fields=tuple(row["fields"]),
            at=row["at"],
            actor_id=row["actor_id"],
        )


def number_changes(last_seq: int, drafts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Change rows with sequence numbers following ``last_seq``."""
    return [{**d, "seq": last_seq + i} for i, d in enumerate(drafts, start=1)]


def chain(last_seq: int, last_hash: str, drafts: Sequence[Mapping[str, Any]], key: bytes | None) -> list[AuditEntry]:
    """Audit entries following the entry ``(last_seq, last_hash)`` (``(0, GENESIS_HASH)`` for none)."""
    return [e for e, _ in chain_texts(last_seq, last_hash, drafts, key)]


def chain_texts(
    last_seq: int, last_hash: str, drafts: Sequence[Mapping[str, Any]], key: bytes | None
) -> list[tuple[AuditEntry, str]]:
    """:func:`chain`, each entry with its diff's canonical JSON."""
    out: list[tuple[AuditEntry, str]] = []
    for d, (seq, text, prev, digest, dd) in zip(drafts, chain_rows(last_seq, last_hash, drafts, key)):
        diff = d["diff"] if d.get("diff") is not None else json.loads(text)
        at = d["at"].astimezone(dt.UTC)
        out.append(
            (
                AuditEntry(seq, at, d["actor_id"], d["action"], d["entity"], d["entity_id"], diff, prev, digest, dd),
                text,
            )
        )
    return out


def chain_rows(
    last_seq: int, last_hash: str, drafts: Sequence[Mapping[str, Any]], key: bytes | None
) -> list[tuple[int, str, str, str, str]]:
    """``(seq, diff JSON, prev_hash, hash, diff_digest)`` of the entries following ``(last_seq, last_hash)``: what a SQL
    store writes, without building entries. A draft holds ``at``, ``actor_id``, ``action``, ``entity``,
    ``entity_id`` and ``diff``, or instead of ``diff`` its canonical JSON as ``diff_text`` (made where the
    row was built, as an import's worker processes do).

    The entries of one write share their time, actor, action and entity: that part of the hashed JSON
    (:func:`~pycrm.security._audit.entry_header`) is checked and encoded once for each run of drafts
    sharing it; each entry then costs its diff's digest and its own hash.
    """
    out: list[tuple[int, str, str, str, str]] = []
    seq, prev = last_seq, last_hash
    prev_text = _TEXT(prev)  # as JSON; from here on each is a hex digest this loop made
    shared: tuple[Any, ...] = (_UNSET,)
    at_text = head = middle = ""
    sha = hashlib.sha256
    text_of = _TEXT
    for d in drafts:
        at, actor, action, entity = d["at"], d["actor_id"], d["action"], d["entity"]
        if at is not shared[0] or actor != shared[1] or action != shared[2] or entity != shared[3]:
            check_draft(action, at)
            shared = (at, actor, action, entity)
            at_text = at.astimezone(dt.UTC).isoformat()
            head, middle = entry_header(at_text, actor, action, entity)
        text = d.get("diff_text")
        if text is None:
            text = diff_text(d["diff"])
        eid = d["entity_id"]
        seq += 1
        if key is None:  # the common case: hashlib directly, no call of a helper
            dd = sha(text.encode()).hexdigest()
            digest = sha(
                f'{head}{dd}{middle}{"null" if eid is None else text_of(eid)},"prev_hash":{prev_text},"seq":{seq}}}'.encode()
            ).hexdigest()
        else:
            dd, digest = entry_hashes(seq, prev, at_text, actor, action, entity, eid, text, key)
        out.append((seq, text, prev, digest, dd))
        prev = digest
        prev_text = f'"{digest}"'
    return out


#: A value no draft holds (``chain_rows``' "no entries encoded yet").
_UNSET = object()
#: JSON text of a str (what the canonical encoder writes for one).
_TEXT = json.encoder.encode_basestring


def erased_row(
    row: Mapping[str, Any], records: Mapping[str, frozenset[str]], marker: Mapping[str, Any], key: bytes | None
) -> dict[str, Any] | None:
    """A stored audit row (``to_data`` form) with its diff erased, when it is about one of ``records``
    (repository -> ids) and neither an ``erase`` entry nor erased already; else None. An entry written
    before revision 0006 (no digest) gets :func:`~pycrm.security._audit.legacy_seal` as its digest."""
    ids = records.get(str(row.get("entity")))
    if not ids or row.get("entity_id") not in ids or row.get("action") == "erase" or erasure_of(row.get("diff")):
        return None
    out = {**row, "diff": dict(marker)}
    if row.get("diff_digest") is None:
        out["diff_digest"] = legacy_seal(row, key)
    return out


def require_all(session: Session, what: str) -> None:
    """The journals span every record: only an actor that reads everything (admin, system) may read them."""
    guard = session._guard
    if not guard.reads_everything():
        from pycrm.errors import PermissionDenied

        exc = PermissionDenied(f"{guard.policy._who()} may not {what}: it needs read access to every record")
        guard.denied(Customer, "read", None, exc)  # recorded in the audit trail, even if the session rolls back
        raise exc


def _check_int(value: Any, field: str, *, low: int) -> int:
    check_count(field, value, low)  # at most MAX_ROWS: a bigger number would overflow a SQL integer
    return int(value)


class ChangeFeed:
    """``s.changes``: pull what changed since a cursor; apply changes coming from another system."""

    def __init__(self, session: Session):
        self._s = session

    def since(self, cursor: int = 0, limit: int = 1000) -> list[ChangeEvent]:
        """Committed changes with ``seq > cursor``, oldest first, at most ``limit``.

        Keep the last ``seq`` you processed as the next cursor: a consumer that stops half way resumes
        without losing or repeating an event. Changes still uncommitted in this session are not included.
        """
        self._s._check_open()
        _check_int(cursor, "cursor", low=0)
        _check_int(limit, "limit", low=1)
        require_all(self._s, "read the change feed")
        return [ChangeEvent.from_row(r) for r in self._s._transaction().changes_since(cursor, limit)]

    def last_seq(self) -> int:
        """The ``seq`` of the newest committed change (0 for none): a cursor for "from now on"."""
        self._s._check_open()
        require_all(self._s, "read the change feed")
        return int(self._s._transaction().changes_last())

    def apply(self, changes: Iterable[Incoming], *, rules: Mapping[str, Mapping[str, str]] | None = None) -> ApplyResult:
        """Apply changes from another system, idempotently, refusing ones that conflict.

        Each :class:`Incoming` carries the sender's version of a record (``op`` ``upsert`` or ``delete``).
        An upsert of a record that does not exist creates it with that version; one whose local version is
        one less is applied (the sender moved on from what we hold); one whose local version is the same
        and whose data equals ours is already applied (``unchanged``). Anything else -- the local record was
        changed here, or the sender skipped a version -- is a conflict: reported, not applied. A delete
        applies to the same version and is unchanged when the record is already gone. All changes apply
        together or, if one is invalid, none do; conflicts do not stop the others.

        An upsert that carries its ``base`` (the record as the sender last saw it, the common ancestor) is
        merged field by field instead (three-way, see docs/changes.md): the fields only one side changed
        are combined into a new version; a field both sides changed to different values follows its rule
        in ``rules`` (``{entity: {field or "*": "server_wins" | "device_wins" | "latest_wins" | "union"}}``)
        or makes the record a conflict naming the fields (``result.conflict_fields``).
        """
        self._s._check_open()
        check_iterable("changes", changes, "a list of Incoming changes")
        checked = check_rules(rules)
        opened = self._s._merge_rules  # pycrm.open(merge_rules=...): the store's rules, this call's on top
        if opened:
            checked = {e: {**opened.get(e, {}), **checked.get(e, {})} for e in {*opened, *checked}}
        result = ApplyResult()
        with self._s._atomic():
            for i, inc in enumerate(changes):
                if not isinstance(inc, Incoming):
                    raise ValidationError([FieldError(f"changes[{i}]", "type", "expected pycrm.Incoming")])
                self._apply_one(inc, result, checked)
        return result

    @staticmethod
    def _build(kind: type[Any], inc: Incoming, local: Any) -> Any:
        """The incoming version as an entity: ``inc.data`` decoded onto the local record (or a new one)."""
        decoders = dict(_plan(kind))
        where = f"changes[{inc.entity}:{inc.id}]"
        data = dict(inc.data or {})
        unknown = sorted(k for k in data if k not in decoders)
        if unknown:
            raise ValidationError(
                [FieldError(f"{where}.{unknown[0]}", "unknown_field", f"{kind.__name__} has no field {unknown[0]!r}")]
            )
        values: dict[str, Any] = {}
        for k, v in data.items():
            if k in ("id", "version", "created_at", "updated_at"):
                continue
            try:
                values[k] = decoders[k](v) if v is not None else None
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ValidationError([FieldError(f"{where}.{k}", "invalid_value", f"cannot read {v!r}: {exc}")]) from None
        try:
            if local is None:
                entity = kind(**values, id=inc.id)
            else:
                entity = from_data(kind, to_data(local))
                for k in decoders:  # in field order: an order's amount before the lines that must add up to it
                    if k in values:
                        setattr(entity, k, values[k])
        except ValidationError as exc:
            raise exc.prefixed(where) from None
        except TypeError as exc:
            raise ValidationError([FieldError(where, "invalid_data", str(exc))]) from None
        now = utcnow()
        object.__setattr__(entity, "version", inc.version)
        if entity.created_at is None:
            object.__setattr__(entity, "created_at", now)
        object.__setattr__(entity, "updated_at", now)
        return entity

    def _apply_one(self, inc: Incoming, result: ApplyResult, rules: Mapping[str, Mapping[str, str]]) -> None:
        repo = self._s._repository(inc.entity)
        tx = self._s._transaction()
        kind = repo.kind
        if isinstance(tx, RowLocks):  # held from the comparison to the write, so no update in between is lost
            tx.lock(kind, [inc.id])
        local = self._s._stored("apply builds the incoming version on the row as stored").get(kind, inc.id)
        key = (inc.entity, inc.id)
        if inc.op == "delete":
            if local is None:
                result.unchanged.append(key)
            elif local.version == inc.version:
                repo.delete(inc.id)
                result.applied.append(key)
            else:
                result.conflicts.append((inc.entity, inc.id, f"local version {local.version}, incoming {inc.version}"))
            return
        plain = self._s._guard.unseal(kind, local) if local is not None else None
        incoming: Any = self._build(kind, inc, plain)
        if local is None:  # a new record: the checks of ``add`` (custom fields, no masked-looking values)
            repo._check_custom(incoming, f"changes[{inc.entity}:{inc.id}]")
            self._s._guard.check_new(incoming)
            repo._check_references([incoming])
            self._s._guard.check_write(kind, "create", incoming, repo._lookup)
            stored = self._s._guard.seal(kind, incoming)
            tx.insert(kind, [stored])
            self._s._journal(kind, "create", None, stored)
            result.applied.append(key)
            return
        assert plain is not None
        if inc.base is not None:
            self._merge(inc, local, plain, result, rules.get(inc.entity, {}))
            return
        # compared as the actor sees both: "unchanged" must not confirm a guess at a value it sees masked
        guard = self._s._guard
        same = {k: v for k, v in guard.present_data(kind, to_data(plain)).items() if k != "updated_at"} == {
            k: v for k, v in guard.present_data(kind, to_data(incoming)).items() if k != "updated_at"
        }
        if local.version == inc.version and same:
            result.unchanged.append(key)
        elif local.version == inc.version - 1:
            object.__setattr__(incoming, "version", local.version)
            try:
                repo.update(incoming)
            except ConcurrencyError as exc:  # pragma: no cover - another session in between
                result.conflicts.append((inc.entity, inc.id, str(exc)))
                return
            result.applied.append(key)
        else:
            result.conflicts.append((inc.entity, inc.id, f"local version {local.version}, incoming {inc.version}"))

    def _merge(self, inc: Incoming, local: Any, plain: Any, result: ApplyResult, rules: Mapping[str, str]) -> None:
        """The three-way merge of an upsert carrying its ``base`` (see :meth:`apply`)."""
        repo = self._s._repository(inc.entity)
        kind = repo.kind
        key = (inc.entity, inc.id)
        where = f"changes[{inc.entity}:{inc.id}]"
        base = dict(inc.base or {})
        seen_version = base.get("version", inc.version - 1)
        if type(seen_version) is not int or not 1 <= seen_version <= inc.version:
            message = f"base version {seen_version!r} is not a version up to the incoming {inc.version}"
            raise ValidationError([FieldError(f"{where}.base.version", "invalid_value", message)])
        unknown = sorted(k for k in base if k not in dict(_plan(kind)))
        if unknown:
            raise ValidationError(
                [FieldError(f"{where}.base.{unknown[0]}", "unknown_field", f"{kind.__name__} has no field {unknown[0]!r}")]
            )
        guard = self._s._guard
        # the actor's scope before any outcome: "unchanged" or "conflict" must not tell of a record it cannot write
        guard.check_write(kind, "update", plain, repo._lookup)
        if local.version < seen_version:  # the sender saw a version this store never had
            result.conflicts.append((inc.entity, inc.id, f"local version {local.version}, base {seen_version}"))
            return
        seen = guard.present_data(kind, to_data(plain))  # the server's record as this actor sees it
        data = dict(inc.data or {})
        hidden = set(guard.rules(kind))
        values: dict[str, Any] = {}  # field -> the merged value, to_data form
        both: list[str] = []
        for k, mine in data.items():
            if k in _META or mine == base.get(k, _UNSET):
                continue  # not changed on the sender's side (a masked value sent back as read is not a change)
            here = seen.get(k)
            masked = k in hidden or any(h.startswith(f"{k}.") for h in hidden)
            if masked and local.version > seen_version:
                # a mask can hide a change made here: a field the actor cannot see whole, changed by the sender
                # while the record moved on, is a conflict (no rule merges values the actor cannot see)
                both.append(k)
                continue
            if here == mine:
                continue  # both sides made the same change
            if k in base and here == base[k]:
                values[k] = mine  # changed on the sender's side only
                continue
            rule = rules.get(k, rules.get("*"))
            if rule is None:
                both.append(k)
            elif rule == "device_wins":
                values[k] = mine
            elif rule == "latest_wins":
                values[k] = mine if _sender_time(data, where) > local.updated_at else here
            elif rule == "union":
                values[k] = _union(here, base.get(k), mine, f"{where}.{k}")
            # server_wins: the server's value stays
        if both:
            result.conflicts.append(
                (inc.entity, inc.id, f"changed here and by the sender: {', '.join(sorted(both))} (local version {local.version})")
            )
            result.conflict_fields[key] = tuple(sorted(both))
            return
        decoders = dict(_plan(kind))
        merged = from_data(kind, to_data(plain))
        changed = False
        for k, v in values.items():
            if v == seen.get(k):
                continue
            try:
                decoded = decoders[k](v) if v is not None else None
                setattr(merged, k, decoded)
            except ValidationError as exc:
                raise exc.prefixed(where) from None
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ValidationError([FieldError(f"{where}.{k}", "invalid_value", f"cannot read {v!r}: {exc}")]) from None
            changed = True
        if not changed:
            result.unchanged.append(key)
            return
        try:
            repo.update(merged)
        except ConcurrencyError as exc:  # pragma: no cover - another session in between
            result.conflicts.append((inc.entity, inc.id, str(exc)))
            return
        result.applied.append(key)


#: Fields the merge never takes from the sender.
_META = frozenset({"id", "version", "created_at", "updated_at"})
#: The rules a field's merge can follow when both sides changed it.
MERGE_RULES = ("server_wins", "device_wins", "latest_wins", "union")


def _is_list(kind: type[Any], name: str) -> bool:
    for f in attrs.fields(kind):
        if f.name == name:
            text = f.type if isinstance(f.type, str) else repr(f.type)
            return text.startswith(("list[", "frozenset[", "tuple[", "set["))
    return False


def check_rules(rules: Any, name: str = "rules") -> dict[str, dict[str, str]]:
    """``rules`` of :meth:`ChangeFeed.apply` (``merge_rules`` of ``pycrm.open``) checked: known entities and
    fields, known rules, ``union`` on list fields only; ValidationError naming the first that is not."""
    if rules is None:
        return {}
    check_mapping(name, rules)
    out: dict[str, dict[str, str]] = {}
    for entity, fields in rules.items():
        kind = ENTITIES.get(entity) if isinstance(entity, str) else None
        if kind is None:
            raise ValidationError([FieldError(f"{name}.{entity}", "unknown_entity", f"no repository named {quote(entity)}")])
        check_mapping(f"{name}.{entity}", fields)
        names = {k for k, _ in _plan(kind)} - _META
        for field, rule in fields.items():
            where = f"{name}.{entity}.{field}"
            if field != "*" and field not in names:
                raise ValidationError([FieldError(where, "unknown_field", f"{kind.__name__} has no field {quote(field)}")])
            if rule not in MERGE_RULES:
                raise ValidationError(
                    [FieldError(where, "invalid_choice", f"{quote(rule)} is not one of {', '.join(MERGE_RULES)}")]
                )
            if rule == "union" and field != "*" and not _is_list(kind, field):
                raise ValidationError([FieldError(where, "invalid_choice", f"'union' needs a list field; {field} is not one")])
        out[entity] = dict(fields)
    return out


def _sender_time(data: Mapping[str, Any], where: str) -> dt.datetime:
    """The sender's ``updated_at`` (what ``latest_wins`` compares with the local one)."""
    raw = data.get("updated_at")
    try:
        at = raw if isinstance(raw, dt.datetime) else dt.datetime.fromisoformat(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        at = None
    if at is None or at.utcoffset() is None:
        message = "latest_wins needs the sender's updated_at, an ISO date-time with a time zone"
        raise ValidationError([FieldError(f"{where}.updated_at", "required", message)])
    return at


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _union(here: Any, base: Any, mine: Any, where: str) -> list[Any]:
    """A list field merged three-way: the server's items, less the ones the sender removed since ``base``,
    plus the ones the sender added (order: the server's, then the sender's new ones)."""
    for name, v in (("local", here), ("sent", mine)):
        if v is not None and not isinstance(v, list | tuple):
            raise ValidationError([FieldError(where, "invalid_value", f"'union' needs lists; the {name} value is not one")])
    before = {_key(x) for x in base or ()} if isinstance(base, list | tuple) else set()
    sent = {_key(x) for x in mine or ()}
    out = [x for x in here or () if not (_key(x) in before and _key(x) not in sent)]
    have = {_key(x) for x in out}
    for x in mine or ():
        k = _key(x)
        if k not in have and k not in before:
            out.append(x)
            have.add(k)
    return out


@attrs.frozen
class Incoming:
    """A change from another system: its version of record ``id`` (``data`` as ``to_data`` gives it)."""

    entity: str = attrs.field()
    id: str = attrs.field()
    op: str = attrs.field()
    version: int = attrs.field()
    data: Mapping[str, Any] | None = attrs.field(default=None)
    #: The record as the sender last saw it, the common ancestor (``to_data`` form; its ``version``, or
    #: ``version - 1`` when it has none, is at most ``version``): given, an upsert is merged field by field
    #: with what changed here since (:meth:`ChangeFeed.apply`).
    base: Mapping[str, Any] | None = attrs.field(default=None, kw_only=True)

    @entity.validator
    def _entity(self, _: Any, value: str) -> None:
        if not isinstance(value, str) or value not in ENTITIES:
            raise ValidationError([FieldError("entity", "unknown_entity", f"no repository named {quote(value)}")])

    @id.validator
    def _id(self, _: Any, value: str) -> None:
        if not is_id(value):
            raise ValidationError([FieldError("id", "invalid_id", f"not an id: {quote(value, 70)}")])

    @op.validator
    def _op(self, _: Any, value: str) -> None:
        if value not in ("upsert", "delete"):
            raise ValidationError([FieldError("op", "invalid_choice", f"{quote(value)} is not 'upsert' or 'delete'")])

    @version.validator
    def _version(self, _: Any, value: int) -> None:
        _check_int(value, "version", low=1)

    @data.validator
    def _data(self, _: Any, value: Any) -> None:
        check_mapping("data", value)

    @base.validator
    def _base(self, _: Any, value: Any) -> None:
        check_mapping("base", value)


@attrs.define
class ApplyResult:
    """What :meth:`ChangeFeed.apply` did: ``(entity, id)`` pairs, conflicts with a reason."""

    applied: list[tuple[str, str]] = attrs.field(factory=list)
    unchanged: list[tuple[str, str]] = attrs.field(factory=list)
    conflicts: list[tuple[str, str, str]] = attrs.field(factory=list)
    #: ``(entity, id)`` -> the fields both sides changed, for conflicts of a merge (an ``Incoming`` with a base).
    conflict_fields: dict[tuple[str, str], tuple[str, ...]] = attrs.field(factory=dict)


class AuditLog:
    """``s.audit`` / ``crm.audit``: read and verify the audit trail."""

    def __init__(self, begin: Any, key: bytes | None, check: Any = None, check_all: Any = None, begin_stored: Any = None):
        self._begin = begin  # () -> (transaction, owned): the session's transaction or a fresh one
        self._key = key
        self._check = check  # before any read (the session is open)
        self._check_all = check_all  # before a read of the whole chain (the actor reads everything)
        # () -> (transaction, owned) reading the rows as stored, for verify() (only its result leaves)
        self._begin_stored = begin_stored or begin

    def _entries(self, entity_id: str | None = None, batch: int = 5000) -> Iterator[AuditEntry]:
        for r in self._rows(entity_id, batch):
            yield AuditEntry.from_data(r)

    def _rows(self, entity_id: str | None = None, batch: int = 5000, *, stored: bool = False) -> Iterator[dict[str, Any]]:
        """The stored rows, as read (``verify`` checks their shape itself, so a malformed one is named);
        ``stored``: as stored, not as the actor sees them (for ``verify``, which hashes them)."""
        tx, owned = (self._begin_stored if stored else self._begin)()
        try:
            after = 0
            while True:
                rows = tx.audit_list(after, batch, entity_id)
                yield from rows
                if len(rows) < batch or type(rows[-1].get("seq")) is not int:
                    return
                after = rows[-1]["seq"]
        finally:
            if owned:
                tx.rollback()

    def history(self, id: str) -> list[AuditEntry]:
        """Every audit entry about the record ``id``, oldest first (diffs as stored: secrets never in clear).

        In a session of an actor, only the entries about records the actor can read, their values masked
        as the actor sees the records."""
        if not is_id(id):
            raise ValidationError([FieldError("id", "invalid_id", f"not an id: {quote(id, 70)}")])
        if self._check is not None:
            self._check()
        return list(self._entries(id))

    def entries(self) -> Iterator[AuditEntry]:
        """The whole trail in ``seq`` order, streamed (in a session of an actor: scoped and masked, as
        :meth:`history`)."""
        if self._check is not None:
            self._check()
        return self._entries()

    def verify(self, *, head: tuple[int, str] | None = None) -> VerifyResult:
        """Check the whole chain as stored: the first entry edited, deleted, inserted or malformed is named
        (never an exception for what a row holds).

        ``head=(seq, hash)`` is an anchor kept outside the database (see :func:`pycrm.security.verify`).
        Only for an actor that reads every record (the chain spans them all).
        """
        if self._check_all is not None:
            self._check_all()
        return verify(self._rows(stored=True), key=self._key, head=head)

    def head(self) -> tuple[int, str] | None:
        """``(seq, hash)`` of the newest entry: keep it elsewhere as an anchor for :meth:`verify`.

        Reads that one entry (not the whole trail); only for an actor that reads every record."""
        if self._check_all is not None:
            self._check_all()
        tx, owned = self._begin()
        try:
            last = tx.audit_last()
        finally:
            if owned:
                tx.rollback()
        return None if last is None else (int(last["seq"]), last["hash"])
