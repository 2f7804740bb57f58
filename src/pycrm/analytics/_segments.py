"""RFM segments: how many customers each segment holds, who moved between two dates, who is in one.

Pure functions over lists of :class:`RFMScore` (from :func:`pycrm.analytics.rfm` or
``s.analytics.rfm``), plus two conveniences that take a session and ask its store for the scores.

- :func:`segment_sizes`: one row per segment in the segment map's order, empty segments included,
  then any other segment names found in the scores (alphabetically), then customers with no segment.
  ``share`` is customers / all scored customers, a Decimal rounded half-even to 4 places (``None``
  when nobody was scored).
- :func:`segment_moves`: the customers whose segment changed between two score lists (``None`` on
  one side: the customer has no score there, e.g. no order yet), and the transition counts
  (from, to, customers) of every customer, those who stayed put included.
- :func:`segment_members`: the ids of one segment's customers, ready for
  ``s.customers.find(where={"id": {"in": ids}})``.

>>> import datetime as dt
>>> from decimal import Decimal
>>> from pycrm.analytics import RFMScore
>>> scores = [RFMScore("a", 3, 9, Decimal(900), 5, 5, 5, "Champions"),
...           RFMScore("b", 90, 1, Decimal(10), 1, 1, 1, "Hibernating"),
...           RFMScore("c", 5, 8, Decimal(700), 5, 5, 4, "Champions")]
>>> [(row.segment, row.customers, row.share) for row in segment_sizes(scores) if row.customers]
[('Hibernating', 1, Decimal('0.3333')), ('Champions', 2, Decimal('0.6667'))]
>>> segment_members(scores, "Champions")
['a', 'c']
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, Protocol

import attrs

from pycrm.analytics._common import ratio
from pycrm.analytics._report import Report
from pycrm.analytics._rfm import DEFAULT_SEGMENTS, RFMScore, SegmentRule, _cutoff, check_segments
from pycrm.errors import FieldError, ValidationError

__all__ = [
    "SegmentMoveRow",
    "SegmentMoves",
    "SegmentSizeRow",
    "SegmentTransitionRow",
    "moves_in_store",
    "segment_members",
    "segment_moves",
    "segment_sizes",
    "segments_of_store",
]


@attrs.frozen
class SegmentSizeRow:
    """Customers in one segment and their share of all scored customers."""

    segment: str | None
    customers: int
    share: Decimal | None


@attrs.frozen
class SegmentMoveRow:
    """A customer whose segment changed; ``None`` means no score on that side."""

    customer_id: str
    from_segment: str | None
    to_segment: str | None


@attrs.frozen
class SegmentTransitionRow:
    """How many customers went from one segment to another (the same segment: they stayed)."""

    from_segment: str | None
    to_segment: str | None
    customers: int


@attrs.frozen
class SegmentMoves:
    """The result of :func:`segment_moves`: the moved customers and the transition counts."""

    moves: Report[SegmentMoveRow]
    transitions: Report[SegmentTransitionRow]


def _names(segments: Sequence[SegmentRule]) -> list[str]:
    """Segment names in map order, each once."""
    return list(dict.fromkeys(s.name for s in check_segments(segments)))


def _checked(scores: Iterable[RFMScore], field: str) -> dict[str, str | None]:
    """customer_id -> segment; every item an RFMScore, every customer once."""
    if isinstance(scores, (str, bytes)) or not isinstance(scores, Iterable):
        raise ValidationError([FieldError(field, "type", "expected a list of RFMScore")])
    out: dict[str, str | None] = {}
    errors: list[FieldError] = []
    for i, s in enumerate(scores):
        if not isinstance(s, RFMScore):
            errors.append(FieldError(f"{field}[{i}]", "type", f"expected an RFMScore, got {type(s).__name__}"))
        elif s.customer_id in out:
            errors.append(FieldError(f"{field}[{i}].customer_id", "duplicate", f"{s.customer_id!r} is scored twice"))
        else:
            out[s.customer_id] = s.segment
        if len(errors) >= 20:
            break
    if errors:
        raise ValidationError(errors)
    return out


def _order_key(segments: Sequence[SegmentRule], seen: Iterable[str | None]) -> dict[str | None, int]:
    """Sort position of every segment name: no segment (None) first, the map's order, then others A-Z."""
    names = _names(segments)
    extra = sorted({s for s in seen if s is not None} - set(names))
    return {None: 0, **{name: k + 1 for k, name in enumerate([*names, *extra])}}


def segment_sizes(scores: Iterable[RFMScore], *, segments: Sequence[SegmentRule] = DEFAULT_SEGMENTS) -> Report[SegmentSizeRow]:
    """Customers per segment, in the segment map's order, empty segments included.

    Segment names in the scores that the map does not know follow (alphabetically), then a ``None``
    row for customers no rule matched, when there are any.

    >>> from decimal import Decimal
    >>> from pycrm.analytics import RFMScore
    >>> rows = segment_sizes([RFMScore("a", 1, 3, Decimal(50), 5, 5, 4, "Champions"),
    ...                       RFMScore("b", 80, 1, Decimal(5), 1, 1, 1, "Hibernating")])
    >>> [(row.segment, row.customers, str(row.share)) for row in rows][:3]
    [('Hibernating', 1, '0.5000'), ('At Risk', 0, '0.0000'), ("Can't Lose Them", 0, '0.0000')]
    >>> rows[-1], rows.columns
    (SegmentSizeRow(segment='Champions', customers=1, share=Decimal('0.5000')), ('segment', 'customers', 'share'))
    """
    by_customer = _checked(scores, "scores")
    counts = Counter(by_customer.values())
    total = len(by_customer)
    order = _order_key(segments, counts)
    names = sorted((n for n in order if n is not None), key=order.__getitem__)
    rows = [SegmentSizeRow(name, counts[name], ratio(counts[name], total)) for name in names]
    if counts[None]:
        rows.append(SegmentSizeRow(None, counts[None], ratio(counts[None], total)))
    return Report(SegmentSizeRow, rows, title="RFM segments", x="segment", y="customers")


def segment_moves(
    before_scores: Iterable[RFMScore],
    after_scores: Iterable[RFMScore],
    *,
    segments: Sequence[SegmentRule] = DEFAULT_SEGMENTS,
) -> SegmentMoves:
    """Who changed segment between two score lists, and the (from, to) transition counts.

    ``moves`` lists, by customer id, every customer whose segment differs, including customers scored on
    one side only (``None`` on the other: a new customer appears ``from_segment=None``). ``transitions``
    counts every customer of either side by (from, to), staying put included, ordered by the segment
    map with ``None`` first.

    >>> from decimal import Decimal
    >>> from pycrm.analytics import RFMScore
    >>> before = [RFMScore("a", 9, 1, Decimal(5), 5, 1, 1, "New Customers")]
    >>> after = [RFMScore("a", 2, 4, Decimal(80), 5, 5, 5, "Champions"),
    ...          RFMScore("b", 0, 1, Decimal(9), 5, 1, 1, "New Customers")]
    >>> result = segment_moves(before, after)
    >>> [(m.customer_id, m.from_segment, m.to_segment) for m in result.moves]
    [('a', 'New Customers', 'Champions'), ('b', None, 'New Customers')]
    >>> [(t.from_segment, t.to_segment, t.customers) for t in result.transitions]
    [(None, 'New Customers', 1), ('New Customers', 'Champions', 1)]
    """
    before = _checked(before_scores, "before_scores")
    after = _checked(after_scores, "after_scores")
    moves: list[SegmentMoveRow] = []
    pairs: Counter[tuple[str | None, str | None]] = Counter()
    for cid in sorted(before.keys() | after.keys()):
        was, now = before.get(cid), after.get(cid)
        pairs[was, now] += 1
        if was != now:
            moves.append(SegmentMoveRow(cid, was, now))
    order = _order_key(segments, [*before.values(), *after.values()])
    transitions = [
        SegmentTransitionRow(a, b, k) for (a, b), k in sorted(pairs.items(), key=lambda p: (order[p[0][0]], order[p[0][1]]))
    ]
    return SegmentMoves(
        Report(SegmentMoveRow, moves, title="Segment moves", x="customer_id"),
        Report(SegmentTransitionRow, transitions, title="Segment transitions", x="to_segment", y="customers"),
    )


def segment_members(
    scores: Iterable[RFMScore], name: str | None, *, segments: Sequence[SegmentRule] = DEFAULT_SEGMENTS
) -> list[str]:
    """Ids of the customers in segment ``name``, sorted; ``None`` selects customers no rule matched.

    Use the list as a filter: ``s.customers.find(where={"id": {"in": ids}})``. A name that is neither in
    the segment map nor in the scores (a typo) raises ``ValidationError``; an empty segment gives ``[]``.

    >>> from decimal import Decimal
    >>> from pycrm.analytics import RFMScore
    >>> segment_members([RFMScore("a", 1, 3, Decimal(50), 5, 5, 4, "Champions")], "At Risk")
    []
    """
    by_customer = _checked(scores, "scores")
    if name is not None:
        if not isinstance(name, str):
            raise ValidationError([FieldError("name", "type", f"expected a segment name, got {type(name).__name__}")])
        if name not in _names(segments) and name not in by_customer.values():
            known = ", ".join(_names(segments))
            raise ValidationError([FieldError("name", "unknown_segment", f"no segment {name!r}; the map has {known}")])
    return sorted(cid for cid, seg in by_customer.items() if seg == name)


# ---------------------------------------------------------------- over a session's store


class _Analytics(Protocol):
    def rfm(self, *, as_of: Any, bins: int = ..., segments: Sequence[SegmentRule] = ...) -> list[RFMScore]: ...


class _Session(Protocol):
    @property
    def analytics(self) -> _Analytics: ...


def _check_session(session: Any) -> None:
    if not callable(getattr(getattr(session, "analytics", None), "rfm", None)):
        raise ValidationError([FieldError("session", "type", f"expected a Session, got {type(session).__name__}")])


def segments_of_store(
    session: _Session,
    *,
    as_of: dt.date | dt.datetime | str,
    bins: int = 5,
    segments: Sequence[SegmentRule] = DEFAULT_SEGMENTS,
) -> Report[SegmentSizeRow]:
    """:func:`segment_sizes` of ``session.analytics.rfm(as_of=...)`` (computed inside the database on SQL stores)."""
    _check_session(session)
    return segment_sizes(session.analytics.rfm(as_of=as_of, bins=bins, segments=segments), segments=segments)


def _when(value: Any, field: str) -> dt.datetime:
    try:
        return _cutoff(value)[0]
    except ValidationError as exc:
        raise ValidationError([attrs.evolve(e, field=field) for e in exc.errors]) from None


def moves_in_store(
    session: _Session,
    from_date: dt.date | dt.datetime | str,
    to_date: dt.date | dt.datetime | str,
    *,
    bins: int = 5,
    segments: Sequence[SegmentRule] = DEFAULT_SEGMENTS,
) -> SegmentMoves:
    """:func:`segment_moves` from the store's scores as of ``from_date`` to those as of ``to_date``.

    ``to_date`` before ``from_date`` raises ``ValidationError`` (swap them to look back in time).
    """
    _check_session(session)
    start, end = _when(from_date, "from_date"), _when(to_date, "to_date")
    if end < start:
        raise ValidationError([FieldError("to_date", "before_start", f"{to_date} is before from_date {from_date}")])
    before = session.analytics.rfm(as_of=from_date, bins=bins, segments=segments)
    after = session.analytics.rfm(as_of=to_date, bins=bins, segments=segments)
    return segment_moves(before, after, segments=segments)
