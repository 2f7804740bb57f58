"""Counts of behaviour events (:class:`~pycrm.domain.Activity`): how many of a kind, in a time window, per
kind, customer, day or customer segment. The pure function here; ``s.analytics.activity_counts`` counts in
the database on SQL stores (equal to it, see the contract tests).

>>> import datetime as dt
>>> from pycrm import Activity
>>> at = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
>>> rows = [Activity("a", "web_visit", at), Activity("a", "web_visit", at), Activity("b", "app_open", at)]
>>> activity_counts(rows, by="kind")
[ActivityCountRow(key='app_open', activities=1), ActivityCountRow(key='web_visit', activities=2)]
>>> activity_counts(rows, by="segment", kind="web_visit", segments={"a": "Champions"})
[ActivityCountRow(key='Champions', activities=2)]
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from pycrm.analytics._common import opt_aware
from pycrm.domain import Activity
from pycrm.domain._checks import check_iterable, check_mapping
from pycrm.errors import FieldError, ValidationError

__all__ = ["ACTIVITY_GROUPS", "ActivityCountRow", "activity_counts", "check_activity_group", "count_rows"]

#: What ``by`` may name: the event's kind, its customer, its (UTC) day, or its customer's segment.
ACTIVITY_GROUPS = ("kind", "customer", "day", "segment")


@attrs.frozen
class ActivityCountRow:
    """How many events fall under ``key`` (a kind, a customer id, a date or a segment; ``None``: a customer
    with no segment)."""

    key: Any
    activities: int


def check_activity_group(by: Any) -> str:
    if by not in ACTIVITY_GROUPS:
        raise ValidationError([FieldError("by", "invalid_choice", f"{by!r} is not one of {', '.join(ACTIVITY_GROUPS)}")])
    return str(by)


def _sort_key(row: ActivityCountRow) -> tuple[bool, str]:
    return (row.key is None, "" if row.key is None else str(row.key))


def count_rows(counts: Mapping[Any, int]) -> list[ActivityCountRow]:
    """Rows of ``counts`` (key -> events), in key order, ``None`` last, zero counts left out."""
    return sorted((ActivityCountRow(k, n) for k, n in counts.items() if n), key=_sort_key)


def activity_counts(
    activities: Iterable[Any],
    *,
    by: str = "kind",
    kind: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    segments: Mapping[str, str | None] | None = None,
) -> list[ActivityCountRow]:
    """Events per ``by`` (one of :data:`ACTIVITY_GROUPS`), of ``kind`` only when given, that happened at or
    after ``since`` and before ``until``. ``by="segment"`` needs ``segments`` (customer id -> segment; a
    customer not in it counts under ``None``)."""
    group = check_activity_group(by)
    check_iterable("activities", activities, "a list of Activity objects")
    if kind is not None and not isinstance(kind, str):
        raise ValidationError([FieldError("kind", "type", f"expected text, got {type(kind).__name__}")])
    since, until = opt_aware(since, "since"), opt_aware(until, "until")
    check_mapping("segments", segments)
    if group == "segment" and segments is None:
        raise ValidationError([FieldError("segments", "required", "counting by segment needs the customers' segments")])
    counts: Counter[Any] = Counter()
    for i, a in enumerate(activities):
        if not isinstance(a, Activity):
            raise ValidationError([FieldError(f"activities[{i}]", "type", f"expected an Activity, got {type(a).__name__}")])
        if kind is not None and a.kind != kind:
            continue
        if (since is not None and a.occurred_at < since) or (until is not None and a.occurred_at >= until):
            continue
        if group == "kind":
            counts[a.kind] += 1
        elif group == "customer":
            counts[a.customer_id] += 1
        elif group == "day":
            counts[a.occurred_at.astimezone(dt.UTC).date()] += 1
        else:
            assert segments is not None
            counts[segments.get(a.customer_id)] += 1
    return count_rows(counts)
