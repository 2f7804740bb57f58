"""Merging duplicates with survivorship rules, and the record that lets a merge be undone.

A merge keeps one record (the *survivor*), fills its fields from the whole group by a rule per field,
re-points every record that referred to a duplicate (contacts, opportunities, tickets, interactions,
orders, surveys, campaign members and responses) to the survivor, and deletes the duplicates. A
:class:`MergeRecord` kept in the store holds snapshots of every record as it was and every re-pointed
link, so ``unmerge`` restores them exactly.
The storage layer runs both inside one atomic block of the session's unit of work
(``Repository.merge`` / ``Repository.unmerge``).

Rules, per field:

``primary``
    the survivor's value; when it is empty, the first non-empty value among the duplicates (in the order
    given). The default for single values.
``most_recent``
    the non-empty value of the record updated last.
``most_complete``
    the longest non-empty value (text length, number of items).
``union``
    lists: the survivor's items, then the duplicates' items not already there; tags: the union;
    dicts (custom fields): the survivor's keys, plus the duplicates' keys it lacks. The default for
    lists, tags and custom fields.

>>> from pycrm.domain import Customer
>>> keep = Customer("Acme Ltd", emails=["sales@acme.com"], country=None, id="c1")
>>> dup = Customer("ACME LIMITED (HK)", emails=["info@acme.com", "sales@acme.com"], country="HK", id="c2")
>>> values, used = plan_merge(keep, [dup], {"name": "most_complete"})
>>> values["name"], [e.value for e in values["emails"]], values["country"]
('ACME LIMITED (HK)', ['sales@acme.com', 'info@acme.com'], 'HK')
>>> used["name"], used["emails"], used["country"]
('most_complete', 'union', 'primary')
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from pycrm.domain import Entity
from pycrm.errors import FieldError, ValidationError, quote

__all__ = ["RULES", "MergeRecord", "Relink", "merge_fields", "plan_merge"]

RULES = ("primary", "most_recent", "most_complete", "union")

#: Fields a merge never takes from the duplicates: identity and bookkeeping.
_FIXED = frozenset({"id", "version", "created_at", "updated_at"})


@attrs.frozen
class Relink:
    """One record re-pointed by a merge: ``entity`` (repository name) ``id`` had ``field`` = ``old_id``."""

    entity: str
    id: str
    field: str
    old_id: str


@attrs.frozen
class MergeRecord:
    """What a merge did, kept in the store so that ``unmerge`` can take it back.

    ``before`` holds every merged record as it was (JSON-safe data, by id) and ``after`` the survivor as
    the merge left it; ``relinked`` lists the re-pointed records. ``undone_at`` is set by ``unmerge``.
    """

    id: str
    kind: str
    survivor_id: str
    duplicate_ids: tuple[str, ...]
    rules: Mapping[str, str]
    at: dt.datetime
    actor_id: str | None
    relinked: tuple[Relink, ...]
    before: Mapping[str, Mapping[str, Any]] = attrs.field(repr=False)
    after: Mapping[str, Any] = attrs.field(repr=False)
    survivor_version: int
    undone_at: dt.datetime | None = None
    undone_by: str | None = None

    def to_data(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "survivor_id": self.survivor_id,
            "duplicate_ids": list(self.duplicate_ids),
            "rules": dict(self.rules),
            "at": self.at.isoformat(),
            "actor_id": self.actor_id,
            "relinked": [[r.entity, r.id, r.field, r.old_id] for r in self.relinked],
            "before": dict(self.before),
            "after": dict(self.after),
            "survivor_version": self.survivor_version,
            "undone_at": None if self.undone_at is None else self.undone_at.isoformat(),
            "undone_by": self.undone_by,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> MergeRecord:
        return cls(
            id=data["id"],
            kind=data["kind"],
            survivor_id=data["survivor_id"],
            duplicate_ids=tuple(data["duplicate_ids"]),
            rules=dict(data["rules"]),
            at=dt.datetime.fromisoformat(data["at"]),
            actor_id=data["actor_id"],
            relinked=tuple(Relink(*r) for r in data["relinked"]),
            before=dict(data["before"]),
            after=dict(data["after"]),
            survivor_version=data["survivor_version"],
            undone_at=None if data["undone_at"] is None else dt.datetime.fromisoformat(data["undone_at"]),
            undone_by=data.get("undone_by"),
        )


def merge_fields(kind: type[Entity]) -> dict[str, str]:
    """The fields a merge fills for ``kind``, with their default rule."""
    if not (isinstance(kind, type) and issubclass(kind, Entity)):
        raise ValidationError([FieldError("kind", "type", f"expected an entity class such as Customer, got {quote(kind)}")])
    out = {}
    for a in attrs.fields(kind):
        if a.name in _FIXED:
            continue
        t = a.type if isinstance(a.type, str) else str(a.type)
        out[a.name] = "union" if t.startswith(("list[", "frozenset[", "dict[")) else "primary"
    return out


def _present(v: Any) -> bool:
    return v is not None and v != "" and not (isinstance(v, (list, tuple, frozenset, set, dict)) and not v)


def _size(v: Any) -> int:
    return len(v) if isinstance(v, (str, list, tuple, frozenset, set, dict)) else 0


def _union(values: list[Any]) -> Any:
    first = values[0]
    if isinstance(first, frozenset):
        out_set: frozenset[Any] = frozenset()
        for v in values:
            out_set |= v
        return out_set if out_set else first
    if isinstance(first, dict):
        merged: dict[str, Any] = {}
        for v in reversed(values):
            merged.update({k: x for k, x in v.items() if x is not None})
        merged.update(first)  # the survivor wins where it has a key
        return merged
    out: list[Any] = []
    for v in values:
        for item in v:
            if item not in out:
                out.append(item)
    return out


def _pick(rule: str, name: str, records: Sequence[Entity]) -> Any:
    values = [getattr(r, name) for r in records]
    if rule == "union":
        if not isinstance(values[0], (list, frozenset, dict)):
            return _pick("primary", name, records)
        return _union(values)
    present = [(r, v) for r, v in zip(records, values) if _present(v)]
    if not present:
        return values[0]
    if rule == "most_recent":
        best = present[0]
        for r, v in present[1:]:
            if r.updated_at is not None and (best[0].updated_at is None or r.updated_at > best[0].updated_at):
                best = (r, v)
        return best[1]
    if rule == "most_complete":
        best = present[0]
        for r, v in present[1:]:
            if _size(v) > _size(best[1]):
                best = (r, v)
        return best[1]
    return present[0][1]  # primary


def plan_merge(
    survivor: Entity, duplicates: Sequence[Entity], rules: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The survivor's new field values and the rule used for each field.

    ``rules`` overrides the defaults of :func:`merge_fields` per field; an unknown field or rule is a
    ValidationError naming it.
    """
    if not isinstance(survivor, Entity):
        raise ValidationError([FieldError("survivor", "type", f"expected an entity, got {type(survivor).__name__}")])
    kind = type(survivor)
    if isinstance(duplicates, (str, bytes)) or not isinstance(duplicates, Sequence) or not duplicates:
        raise ValidationError([FieldError("duplicates", "type", f"expected a list of {kind.__name__} objects")])
    for i, d in enumerate(duplicates):
        if type(d) is not kind:
            raise ValidationError([FieldError(f"duplicates[{i}]", "type", f"expected {kind.__name__}, got {type(d).__name__}")])
    used = merge_fields(kind)
    if rules is not None:
        if not isinstance(rules, Mapping):
            raise ValidationError(
                [FieldError("rules", "type", f"expected a mapping of field to rule, got {type(rules).__name__}")]
            )
        errors = []
        for field, rule in rules.items():
            if not isinstance(field, str) or field not in used:
                errors.append(
                    FieldError(f"rules.{field}", "unknown_field", f"{kind.__name__} has no mergeable field {quote(field)}")
                )
            elif not isinstance(rule, str) or rule not in RULES:
                errors.append(FieldError(f"rules.{field}", "invalid_choice", f"{quote(rule)} is not one of {', '.join(RULES)}"))
            else:
                used[field] = rule
        if errors:
            raise ValidationError(errors)
    records = [survivor, *duplicates]
    return {name: _pick(rule, name, records) for name, rule in used.items()}, used
