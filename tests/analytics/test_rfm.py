"""RFM: the pure function against a literal transcription of the contract's rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pycrm
from pycrm.analytics import DEFAULT_SEGMENTS, rfm, segment_of

UTC = dt.UTC


def oracle(book, as_of: dt.date, bins: int = 5):
    """shared/API.md's rules, written as plainly as possible (O(n^2) on purpose)."""
    per: dict[str, list] = {}
    for cid, at, amount in book:
        if at.date() <= as_of:
            per.setdefault(cid, []).append((at, amount))
    n = len(per)
    rows = {}
    for cid, orders in per.items():
        rows[cid] = ((as_of - max(a for a, _ in orders).date()).days, len(orders), sum(x for _, x in orders))
    out = []
    for cid in sorted(rows):
        rec, freq, mon = rows[cid]
        rank_r = 1 + sum(1 for o in rows.values() if o[0] > rec)
        rank_f = 1 + sum(1 for o in rows.values() if o[1] < freq)
        rank_m = 1 + sum(1 for o in rows.values() if o[2] < mon)
        r, f, m = (1 + bins * (k - 1) // n for k in (rank_r, rank_f, rank_m))
        out.append((cid, rec, freq, mon, r, f, m, segment_of(r, f)))
    return out


days = st.integers(min_value=0, max_value=60)
books = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", "e", "f", "g"]),
        days.map(lambda d: dt.datetime(2024, 1, 1, 12, tzinfo=UTC) + dt.timedelta(days=d)),
        st.integers(min_value=0, max_value=500).map(Decimal),
    ),
    max_size=40,
)


@given(books, days, st.integers(min_value=1, max_value=7))
def test_rfm_follows_the_contract_rules(book, as_of_day, bins):
    as_of = dt.date(2024, 1, 1) + dt.timedelta(days=as_of_day)
    got = [
        (s.customer_id, s.recency_days, s.frequency, s.monetary, s.r, s.f, s.m, s.segment)
        for s in rfm(book, as_of=as_of, bins=bins)
    ]
    want = oracle(book, as_of, bins)
    assert got == want


@given(books, days)
def test_scores_stay_in_range_and_orders_are_interchangeable(book, as_of_day):
    as_of = dt.date(2024, 1, 1) + dt.timedelta(days=as_of_day)
    scores = rfm(book, as_of=as_of)
    assert all(1 <= s.r <= 5 and 1 <= s.f <= 5 and 1 <= s.m <= 5 for s in scores)
    assert all(s.segment is not None for s in scores)  # the default map covers every (r, f)
    as_orders = [pycrm.Order(c, at, pycrm.Money(a, "CNY")) for c, at, a in book]
    assert rfm(as_orders, as_of=as_of) == scores


def test_default_segment_map_covers_every_score_pair_in_contract_order():
    assert segment_of(5, 5) == "Champions"
    assert segment_of(1, 5) == "Can't Lose Them"
    assert segment_of(3, 4) == "Loyal Customers"
    assert segment_of(4, 1) == "Promising"
    assert segment_of(5, 1) == "New Customers"
    assert segment_of(4, 3) == "Potential Loyalists"
    assert all(segment_of(r, f) for r in range(1, 6) for f in range(1, 6))
    assert next(s.name for s in DEFAULT_SEGMENTS) == "Hibernating"


def test_orders_after_as_of_do_not_count_and_as_of_before_everything_is_empty():
    book = [("a", dt.datetime(2024, 5, 1, tzinfo=UTC), Decimal(10)), ("a", dt.datetime(2024, 6, 1, tzinfo=UTC), Decimal(99))]
    (only,) = rfm(book, as_of="2024-05-01")
    assert (only.frequency, only.monetary, only.recency_days) == (1, Decimal(10), 0)
    assert rfm(book, as_of=dt.date(2020, 1, 1)) == []
    assert rfm([], as_of=dt.date(2020, 1, 1)) == []


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (("a", dt.datetime(2024, 1, 1, tzinfo=UTC), "-5"), "orders[0].amount"),
        (("a", dt.datetime(2024, 1, 1, tzinfo=UTC), "abc"), "orders[0].amount"),
        (("a", dt.datetime(2024, 1, 1, tzinfo=UTC), 1.5), "orders[0].amount"),
        (("a", "yesterday", "5"), "orders[0].occurred_at"),
        (("", dt.datetime(2024, 1, 1, tzinfo=UTC), "5"), "orders[0].customer_id"),
        ({"customer_id": "a", "amount": "1"}, "orders[0].occurred_at"),
    ],
)
def test_bad_orders_name_the_row_and_column(row, field):
    with pytest.raises(pycrm.ValidationError) as err:
        rfm([row], as_of="2024-12-31")
    assert field in err.value.fields


def test_mixed_currencies_and_bad_as_of_are_refused():
    at = dt.datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(pycrm.ValidationError, match="currency"):
        rfm([pycrm.Order("a", at, pycrm.Money(1, "CNY")), pycrm.Order("b", at, pycrm.Money(1, "USD"))], as_of="2024-02-01")
    with pytest.raises(pycrm.ValidationError) as err:
        rfm([], as_of="not a date")
    assert err.value.fields == ["as_of"]
