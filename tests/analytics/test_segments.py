"""Segment sizes, moves and members over RFM scores, and the session conveniences on every adapter."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pycrm
from pycrm import Customer, Money, Order
from pycrm.analytics import DEFAULT_SEGMENTS, RFMScore, SegmentRule, rfm
from pycrm.analytics._segments import (
    SegmentMoveRow,
    SegmentSizeRow,
    SegmentTransitionRow,
    moves_in_store,
    segment_members,
    segment_moves,
    segment_sizes,
    segments_of_store,
)

UTC = dt.UTC
NAMES = [s.name for s in DEFAULT_SEGMENTS]


def score(cid: str, segment: str | None) -> RFMScore:
    return RFMScore(cid, 1, 1, Decimal(1), 1, 1, 1, segment)


score_lists = st.dictionaries(st.sampled_from([f"c{i}" for i in range(12)]), st.sampled_from([*NAMES, None]), max_size=12).map(
    lambda d: [score(c, s) for c, s in sorted(d.items())]
)


def test_sizes_list_every_segment_in_map_order_with_shares():
    rows = segment_sizes([score("a", "Champions"), score("b", "Champions"), score("c", "At Risk")])
    assert [r.segment for r in rows] == NAMES
    assert rows[NAMES.index("Champions")] == SegmentSizeRow("Champions", 2, Decimal("0.6667"))
    assert rows[NAMES.index("At Risk")] == SegmentSizeRow("At Risk", 1, Decimal("0.3333"))
    assert rows[0] == SegmentSizeRow("Hibernating", 0, Decimal(0))
    assert sum(r.customers for r in rows) == 3


def test_sizes_of_nobody_have_no_shares_and_unmapped_names_come_last():
    assert all(r.customers == 0 and r.share is None for r in segment_sizes([]))
    rows = segment_sizes([score("a", "VIP"), score("b", None), score("c", "Champions")])
    assert [r.segment for r in rows][-2:] == ["VIP", None]
    custom = (SegmentRule("Top", (4, 5), (4, 5)), SegmentRule("Rest", (1, 5), (1, 5)), SegmentRule("Top", (1, 1), (5, 5)))
    assert [r.segment for r in segment_sizes([], segments=custom)] == ["Top", "Rest"]


@given(score_lists, score_lists)
def test_moves_are_exactly_the_customers_whose_segment_differs(before, after):
    result = segment_moves(before, after)
    was = {s.customer_id: s.segment for s in before}
    now = {s.customer_id: s.segment for s in after}
    everyone = sorted(was.keys() | now.keys())
    assert list(result.moves) == [SegmentMoveRow(c, was.get(c), now.get(c)) for c in everyone if was.get(c) != now.get(c)]
    counts = Counter((was.get(c), now.get(c)) for c in everyone)
    assert {(t.from_segment, t.to_segment): t.customers for t in result.transitions} == counts
    order = {None: -1, **{n: k for k, n in enumerate(NAMES)}}
    keys = [(order[t.from_segment], order[t.to_segment]) for t in result.transitions]
    assert keys == sorted(keys)
    assert sum(t.customers for t in result.transitions) == len(everyone)


@given(score_lists)
def test_members_partition_the_scored_customers(scores):
    seen = [c for name in [*NAMES, None] for c in segment_members(scores, name)]
    assert sorted(seen) == sorted(s.customer_id for s in scores)
    for row in segment_sizes(scores):
        assert len(segment_members(scores, row.segment)) == row.customers


def test_bad_input_is_refused_with_the_field_named():
    with pytest.raises(pycrm.ValidationError) as err:
        segment_members([score("a", "Champions")], "Champion")
    assert err.value.fields == ["name"]
    with pytest.raises(pycrm.ValidationError) as err:
        segment_sizes([score("a", "Champions"), ("b", "Champions")])
    assert err.value.fields == ["scores[1]"]
    with pytest.raises(pycrm.ValidationError) as err:
        segment_moves([score("a", None)], [score("a", None), score("a", "At Risk")])
    assert err.value.fields == ["after_scores[1].customer_id"]


def test_reports_have_columns_and_render_as_text():
    result = segment_moves([], [score("a", "Promising")])
    assert result.moves.columns == ("customer_id", "from_segment", "to_segment")
    assert list(result.transitions) == [SegmentTransitionRow(None, "Promising", 1)]
    assert "Promising" in segment_sizes([score("a", "Promising")]).to_text()


def test_store_conveniences_members_filter_and_moves(crm: pycrm.CRM) -> None:
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    with crm.session() as s:
        ids = [s.customers.add(Customer(f"C{i}")).id for i in range(6)]
        orders = [
            Order(ids[k], start + dt.timedelta(days=d), Money(a, "CNY"))
            for k, d, a in [(0, 1, 10), (0, 40, 90), (1, 2, 5), (2, 30, 300), (2, 31, 30), (2, 58, 1), (3, 59, 20), (4, 70, 8)]
        ]
        s.orders.add_many(orders)
    with crm.session() as s:
        sizes = segments_of_store(s, as_of="2024-03-01")
        assert sizes == segment_sizes(rfm(orders, as_of="2024-03-01"))
        assert sum(r.customers for r in sizes) == 4
        moves = moves_in_store(s, "2024-03-01", "2024-03-31")
        assert moves == segment_moves(rfm(orders, as_of="2024-03-01"), rfm(orders, as_of="2024-03-31"))
        assert SegmentMoveRow(ids[4], None, moves.moves[-1].to_segment) in moves.moves  # first order on March 11
        scores = s.analytics.rfm(as_of="2024-03-31")
        for name in {x.segment for x in scores}:
            members = segment_members(scores, name)
            found = s.customers.find(where={"id": {"in": members}})
            assert sorted(c.id for c in found) == members
        with pytest.raises(pycrm.ValidationError) as err:
            moves_in_store(s, "2024-03-31", "2024-03-01")
        assert err.value.fields == ["to_date"]
        with pytest.raises(pycrm.ValidationError) as err:
            moves_in_store(s, "soon", "2024-03-01")
        assert err.value.fields == ["from_date"]
