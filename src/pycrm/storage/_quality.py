"""Data quality: how complete, valid and fresh the records of one repository are (``s.quality``).

``s.quality.report("customers")`` gives, over the records the session's actor may read (and ``where``):

* **completeness** per field: how many records have it filled (a list or tag set non-empty, a text not
  empty, a custom field present). Counted in the database on SQL stores, one ``COUNT`` per field through the
  storage port's ``count`` with an ``is_null`` condition (the actor's row scope ANDed inside the query);
  fields the ``where`` language cannot filter (``addresses``, ``consent``) are counted while streaming;
* **validity**: stored phones and e-mail addresses re-checked with today's rules
  (``PhoneNumber.parse`` / ``EmailAddress.parse``): how many records hold one that no longer parses, with
  a sample of their ids; the records stream in batches, nothing of them is kept but the ids of the
  sample;
* **stale** records: not updated for ``stale_days`` days before ``as_of`` (a ``COUNT`` in the database);
* **duplicates** (``duplicates=True``, costly): the share of records in a duplicate cluster of
  :func:`pycrm.dedup.find_duplicates`.

``s.quality.scores("customers", below=0.5)`` gives each record a score from 0 to 1 -- the mean of its
completeness (share of the fields filled), its validity (share of its phones and e-mails that parse) and its
freshness (1 when updated within ``stale_days``, else 0) -- with the reasons it lost points.

Actors: the counts cover the rows the actor may read, nothing else. A field the actor sees **masked or
hidden** is left out of the default fields (listed in ``skipped``) and naming one in ``fields`` is a
ValidationError -- the gate refuses any condition on such a field, a count included, so a report never says
anything of it. :func:`quality_of` is the pure function over records that the store's counts equal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from pycrm.domain import ENTITIES, EmailAddress, Entity, PhoneNumber
from pycrm.domain._checks import check_count
from pycrm.errors import CRMError, FieldError, ValidationError
from pycrm.storage._where import FIELD_KINDS, Condition, parse_where
from pycrm.storage.evaluate import matches

if TYPE_CHECKING:
    from pycrm.storage._repository import Session

__all__ = ["FieldCompleteness", "Invalid", "QualityReport", "RecordScore", "SessionQuality", "quality_of", "score_of"]

_BASE = ("id", "version", "created_at", "updated_at")
#: the fields a report covers when none are named (declared custom fields are added to them)
DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "customers": ("emails", "phones", "addresses", "country", "category", "owner_id", "tags"),
    "contacts": ("customer_id", "first_name", "last_name", "emails", "phones", "title"),
}
#: fields whose stored values are re-checked with the current parsing rules
_VALIDATED = {"emails": "email", "phones": "phone", "email": "email", "phone": "phone"}
SAMPLE = 10  # ids kept per invalid field
_BATCH = 5000
MAX_STALE_DAYS = 100_000


@attrs.frozen
class FieldCompleteness:
    filled: int
    share: float  # filled / total (1.0 for an empty set of records)


@attrs.frozen
class Invalid:
    records: int  # records holding at least one value of the field that no longer parses
    sample: tuple[str, ...]  # up to 10 of their ids, in id order


@attrs.frozen
class QualityReport:
    entity: str
    total: int
    as_of: dt.datetime
    stale_days: int
    stale: int
    completeness: dict[str, FieldCompleteness]
    invalid: dict[str, Invalid]
    duplicates: float | None = None  # share of the records in a duplicate cluster (duplicates=True)
    skipped: dict[str, str] = attrs.field(factory=dict)  # field -> why it is not reported (masked/hidden)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (what ``pycrm quality --format json`` prints)."""
        return {
            "entity": self.entity,
            "total": self.total,
            "as_of": self.as_of.isoformat(),
            "stale_days": self.stale_days,
            "stale": self.stale,
            "completeness": {f: {"filled": c.filled, "share": round(c.share, 4)} for f, c in self.completeness.items()},
            "invalid": {f: {"records": i.records, "sample": list(i.sample)} for f, i in self.invalid.items()},
            "duplicates": self.duplicates,
            "skipped": dict(self.skipped),
        }


@attrs.frozen
class RecordScore:
    id: str
    score: float
    reasons: tuple[str, ...]  # "missing: emails", "invalid: phones", "stale: not updated for 400 days"


# ------------------------------------------------------------------------------------------ the field plan
@attrs.frozen
class _Plan:
    entity: str
    kind: type[Entity]
    fields: tuple[str, ...]
    conditions: dict[str, tuple[Condition, ...]]  # field -> what "filled" is, when the where language says it
    validated: tuple[str, ...]
    skipped: dict[str, str]
    custom: dict[str, str]


def _kind_of(entity: Any) -> type[Entity]:
    kind = ENTITIES.get(entity) if isinstance(entity, str) else None
    if kind is None:
        raise ValidationError([FieldError("entity", "unknown_entity", f"no repository named {entity!r}")])
    return kind


def _plain_fields(kind: type[Entity]) -> tuple[str, ...]:
    return tuple(a.name for a in attrs.fields(kind) if a.name not in _BASE and a.name != "custom")


def _defaults(entity: str, kind: type[Entity]) -> tuple[str, ...]:
    if entity in DEFAULT_FIELDS:
        return DEFAULT_FIELDS[entity]
    out = []
    for a in attrs.fields(kind):
        if a.name in _BASE or a.name == "custom":
            continue
        if a.default is None or isinstance(a.default, attrs.Factory):  # type: ignore[arg-type]
            out.append(a.name)
    return tuple(out)


def _plan(
    entity: Any,
    fields: Sequence[str] | None,
    custom: Mapping[str, str],
    blocked: Mapping[str, str] | None = None,
) -> _Plan:
    """Which fields a report covers and how each is counted; ValidationError naming an unknown field or one
    the actor may not see (``blocked``: field -> "masked or hidden")."""
    kind = _kind_of(entity)
    blocked = blocked or {}
    known = set(_plain_fields(kind)) | {f"custom.{k}" for k in custom}
    explicit = fields is not None
    if fields is None:
        chosen = [*_defaults(entity, kind), *(f"custom.{k}" for k in sorted(custom))]
    elif isinstance(fields, str) or not isinstance(fields, Iterable):
        raise ValidationError([FieldError("fields", "type", "expected a list of field names")])
    else:
        chosen = list(fields)
    errors = []
    for f in chosen:
        if not isinstance(f, str) or f not in known:
            errors.append(FieldError(f"fields.{f}", "unknown_field", f"{entity} has no field {f!r} to report on"))
        elif explicit and f in blocked:
            errors.append(
                FieldError(f"fields.{f}", "masked", f"{f!r} is masked or hidden for this actor; it cannot report on it")
            )
    if not chosen:
        errors.append(FieldError("fields", "empty", "no field to report on"))
    if errors:
        raise ValidationError(errors)
    skipped = {f: blocked[f] for f in chosen if f in blocked}
    chosen = list(dict.fromkeys(f for f in chosen if f not in blocked))
    kinds = FIELD_KINDS[kind]
    conditions: dict[str, tuple[Condition, ...]] = {}
    for f in chosen:
        fk = custom.get(f[7:], "custom") if f.startswith("custom.") else kinds.get(f)
        if fk is None:
            continue  # addresses, consent: counted while streaming
        spec: dict[str, Any] = {"is_null": False}
        conds = parse_where(kind, {f: spec}, custom=custom)
        if fk == "text":
            conds += parse_where(kind, {f: {"ne": ""}}, custom=custom)
        conditions[f] = tuple(conds)
    validated = tuple(f for f in chosen if f in _VALIDATED)
    return _Plan(entity, kind, tuple(chosen), conditions, validated, skipped, dict(custom))


def _filled(entity: Any, field: str, plan: _Plan) -> bool:
    conds = plan.conditions.get(field)
    if conds is not None:
        return all(matches(entity, c) for c in conds)
    value = getattr(entity, field, None)
    return bool(value)


def _invalid_value(field: str, value: Any) -> bool:
    if value is None:
        return False
    values = value if isinstance(value, (list, tuple, frozenset, set)) else [value]
    for v in values:
        try:
            if _VALIDATED[field] == "phone":
                PhoneNumber.parse(str(v))
            else:
                EmailAddress.parse(str(v))
        except CRMError:
            return True
    return False


def _invalid_share(entity: Any, plan: _Plan) -> tuple[float, list[str]]:
    total = bad = 0
    fields = []
    for f in plan.validated:
        value = getattr(entity, f, None)
        values = [] if value is None else (list(value) if isinstance(value, (list, tuple, frozenset, set)) else [value])
        n = sum(1 for v in values if _invalid_value(f, v))
        total += len(values)
        bad += n
        if n:
            fields.append(f)
    return (1.0 if total == 0 else (total - bad) / total), fields


def _cutoff(as_of: Any, stale_days: Any) -> tuple[dt.datetime, int, dt.datetime]:
    if as_of is None:
        as_of = dt.datetime.now(dt.UTC)
    if not isinstance(as_of, dt.datetime) or as_of.tzinfo is None:
        raise ValidationError([FieldError("as_of", "type", "expected a timezone-aware datetime")])
    if isinstance(stale_days, bool) or not isinstance(stale_days, int) or not 0 < stale_days <= MAX_STALE_DAYS:
        raise ValidationError(
            [FieldError("stale_days", "range", f"expected a whole number of days from 1 to {MAX_STALE_DAYS}, got {stale_days!r}")]
        )
    as_of = as_of.astimezone(dt.UTC)
    return as_of, stale_days, as_of - dt.timedelta(days=stale_days)


def _stale(entity: Any, cutoff: dt.datetime) -> bool:
    at = entity.updated_at
    return at is not None and bool(at < cutoff)


# ------------------------------------------------------------------------------------------ pure functions
def quality_of(
    records: Iterable[Any],
    entity: str,
    *,
    fields: Sequence[str] | None = None,
    custom: Mapping[str, str] | None = None,
    stale_days: int = 365,
    as_of: dt.datetime | None = None,
) -> QualityReport:
    """The report over ``records`` (entities of repository ``entity``) computed in Python: what
    ``s.quality.report`` equals on every store. ``custom``: declared custom fields by name -> filter kind."""
    plan = _plan(entity, fields, custom or {})
    at, days, cutoff = _cutoff(as_of, stale_days)
    total = stale = 0
    filled = dict.fromkeys(plan.fields, 0)
    invalid: dict[str, list[str]] = {f: [] for f in plan.validated}
    counts = dict.fromkeys(plan.validated, 0)
    for e in sorted(records, key=lambda r: str(r.id)):
        total += 1
        stale += _stale(e, cutoff)
        for f in plan.fields:
            filled[f] += _filled(e, f, plan)
        for f in plan.validated:
            if _invalid_value(f, getattr(e, f, None)):
                counts[f] += 1
                if len(invalid[f]) < SAMPLE:
                    invalid[f].append(str(e.id))
    return QualityReport(
        entity,
        total,
        at,
        days,
        stale,
        {f: FieldCompleteness(n, n / total if total else 1.0) for f, n in filled.items()},
        {f: Invalid(counts[f], tuple(invalid[f])) for f in plan.validated},
    )


def score_of(entity: Any, plan: _Plan, cutoff: dt.datetime, days: int, as_of: dt.datetime) -> RecordScore:
    missing = [f for f in plan.fields if not _filled(entity, f, plan)]
    completeness = 1 - len(missing) / len(plan.fields)
    validity, bad = _invalid_share(entity, plan)
    stale = _stale(entity, cutoff)
    reasons = [f"missing: {f}" for f in missing] + [f"invalid: {f}" for f in bad]
    if stale:
        reasons.append(f"stale: not updated for {(as_of - entity.updated_at).days} days (limit {days})")
    score = round((completeness + validity + (0.0 if stale else 1.0)) / 3, 4)
    return RecordScore(str(entity.id), score, tuple(reasons))


# ------------------------------------------------------------------------------------------ the session's
class SessionQuality:
    """Data quality over the session's store, scoped for its actor: ``s.quality.report("customers")``."""

    def __init__(self, session: Session):
        self._s = session

    def _custom(self, kind: type[Entity]) -> dict[str, str]:
        from pycrm.storage._where import filter_kinds

        declared = filter_kinds(self._s._custom_fields).get(kind, {})
        return dict(declared)

    def _blocked(self, kind: type[Entity], names: Iterable[str]) -> dict[str, str]:
        guard = self._s._guard
        if guard.system or not guard.rules(kind):
            return {}
        out = {}
        for f in names:
            try:
                guard.check_visible_fields(kind, [f], "report on")
            except ValidationError:
                out[f] = "masked or hidden for this actor"
        return out

    def _setup(self, entity: Any, fields: Sequence[str] | None) -> _Plan:
        self._s._check_open()
        kind = _kind_of(entity)
        custom = self._custom(kind)
        names = [*_plain_fields(kind), *(f"custom.{k}" for k in custom)]
        self._s._conditions(kind, None, "read")  # PermissionDenied for an actor that reads none of them
        return _plan(entity, fields, custom, self._blocked(kind, names))

    def _stream(self, plan: _Plan, where: Mapping[str, Any] | None) -> Iterable[Any]:
        return self._s._repository(plan.entity).iter(where, batch_size=_BATCH)

    def report(
        self,
        entity: str,
        *,
        fields: Sequence[str] | None = None,
        stale_days: int = 365,
        as_of: dt.datetime | None = None,
        where: Mapping[str, Any] | None = None,
        duplicates: bool = False,
    ) -> QualityReport:
        """Completeness per field, validity of phones and e-mails, stale records (and with ``duplicates=True``
        the duplicate rate) over the records of ``entity`` the actor may read that match ``where``.

        Completeness and staleness are ``COUNT`` queries in the database on SQL stores; phones and e-mails
        stream in batches of 5,000. Equal to :func:`quality_of` over the same records."""
        plan = self._setup(entity, fields)
        at, days, cutoff = _cutoff(as_of, stale_days)
        s, kind = self._s, plan.kind
        tx = s._transaction()
        base = s._conditions(kind, where, "read")
        total = tx.count(kind, base)
        stale_c = [Condition("updated_at", "lt", cutoff, "datetime")]
        stale = tx.count(kind, [*base, *stale_c])
        filled = {f: tx.count(kind, [*base, *plan.conditions[f]]) for f in plan.fields if f in plan.conditions}
        streamed = [f for f in plan.fields if f not in plan.conditions]
        invalid: dict[str, list[str]] = {f: [] for f in plan.validated}
        counts = dict.fromkeys(plan.validated, 0)
        if streamed or plan.validated:
            for f in streamed:
                filled[f] = 0
            for e in self._stream(plan, where):
                for f in streamed:
                    filled[f] += bool(getattr(e, f, None))
                for f in plan.validated:
                    if _invalid_value(f, getattr(e, f, None)):
                        counts[f] += 1
                        if len(invalid[f]) < SAMPLE:
                            invalid[f].append(str(e.id))
        dup = None
        if duplicates:
            clusters = s._repository(entity).find_duplicates(where)
            in_clusters = sum(len(c) for c in clusters)
            dup = in_clusters / total if total else 0.0
        return QualityReport(
            entity,
            total,
            at,
            days,
            stale,
            {f: FieldCompleteness(filled[f], filled[f] / total if total else 1.0) for f in plan.fields},
            {f: Invalid(counts[f], tuple(invalid[f])) for f in plan.validated},
            dup,
            plan.skipped,
        )

    def scores(
        self,
        entity: str,
        *,
        where: Mapping[str, Any] | None = None,
        below: float | None = None,
        fields: Sequence[str] | None = None,
        stale_days: int = 365,
        as_of: dt.datetime | None = None,
        limit: int | None = None,
    ) -> list[RecordScore]:
        """The score of each record of ``entity`` the actor may read that matches ``where``, in id order, with
        the reasons it lost points; ``below``: only scores under it; ``limit``: at most that many.

        The records stream in batches (the score needs the values); what is kept is the scores returned."""
        plan = self._setup(entity, fields)
        at, days, cutoff = _cutoff(as_of, stale_days)
        if below is not None and (isinstance(below, bool) or not isinstance(below, (int, float)) or not 0 <= below <= 1):
            raise ValidationError([FieldError("below", "range", f"expected a number from 0 to 1, got {below!r}")])
        if limit is not None:
            check_count("limit", limit)
        out: list[RecordScore] = []
        for e in self._stream(plan, where):
            r = score_of(e, plan, cutoff, days, at)
            if below is None or r.score < below:
                out.append(r)
                if limit is not None and len(out) >= limit:
                    break
        return out
