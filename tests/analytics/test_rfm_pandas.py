"""``rfm(DataFrame)``: the vectorized path gives exactly what the object path gives, and bad cells are named."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pycrm
from pycrm.analytics import rfm

pd = pytest.importorskip("pandas")
np = pytest.importorskip("numpy")

UTC = dt.UTC
START = dt.datetime(2024, 1, 1, tzinfo=UTC)
ZONES = [UTC, dt.timezone(dt.timedelta(hours=8)), dt.timezone(dt.timedelta(hours=-5, minutes=-30))]

books = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", "e", "é", "Z", "a1"]),
        st.integers(min_value=0, max_value=60 * 24 * 60),  # minutes after START
        st.sampled_from(ZONES),
        st.sampled_from(["0", "10", "10.5", "99.99", "0.0001", "12345.6789", "500", "3.25"]),
    ),
    max_size=40,
)
as_ofs = st.one_of(
    st.integers(min_value=-2, max_value=62).map(lambda d: (START + dt.timedelta(days=d)).date()),
    st.integers(min_value=-2 * 1440, max_value=62 * 1440).map(lambda m: START + dt.timedelta(minutes=m, seconds=30)),
)


def tuples(book):
    return [(c, (START + dt.timedelta(minutes=m)).astimezone(z), Decimal(a)) for c, m, z, a in book]


def frame(book, amounts: str = "float", times: str = "datetime64"):
    rows = tuples(book)
    if times == "datetime64":
        at = pd.to_datetime([t for _, t, _ in rows], utc=True) if rows else pd.Series([], dtype="datetime64[ns, UTC]")
    else:  # objects: aware datetimes in their own zones
        at = pd.Series([t for _, t, _ in rows], dtype=object)
    if amounts == "float":
        amount = pd.Series([float(a) for _, _, a in rows], dtype="float64")
    elif amounts == "decimal":
        amount = pd.Series([a for _, _, a in rows], dtype=object)
    else:  # strings
        amount = pd.Series([str(a) for _, _, a in rows], dtype=object)
    return pd.DataFrame(
        {
            "customer_id": pd.Series([c for c, _, _ in rows], dtype=object),
            "occurred_at": list(at) if times != "datetime64" else at,
            "amount": amount,
        }
    )


@given(
    books,
    as_ofs,
    st.integers(min_value=1, max_value=7),
    st.sampled_from(["float", "decimal", "text"]),
    st.sampled_from(["datetime64", "objects"]),
)
def test_the_dataframe_path_equals_the_object_path(book, as_of, bins, amounts, times):
    want = rfm(tuples(book), as_of=as_of, bins=bins)
    got = rfm(frame(book, amounts, times), as_of=as_of, bins=bins)
    assert got == want
    assert all(type(s.monetary) is Decimal and type(s.r) is int and type(s.recency_days) is int for s in got)


@given(books, as_ofs)
def test_integer_amounts_and_other_id_dtypes_agree(book, as_of):
    whole = [(c, m, z, str(int(Decimal(a)))) for c, m, z, a in book]
    want = rfm(tuples(whole), as_of=as_of)
    df = frame(whole)
    df["amount"] = df["amount"].astype("int64")
    assert rfm(df, as_of=as_of) == want
    df["customer_id"] = df["customer_id"].astype("category")
    assert rfm(df, as_of=as_of) == want
    df["customer_id"] = df["customer_id"].astype("string")
    assert rfm(df, as_of=as_of) == want


def test_a_worked_example_with_orders_after_as_of_and_a_shuffled_index():
    df = pd.DataFrame(
        {
            "customer_id": ["a", "b", "a", "b"],
            "occurred_at": pd.to_datetime(
                ["2024-01-05", "2023-06-01", "2024-03-01T08:00+08:00", "2024-05-01"], utc=True, format="ISO8601"
            ),
            "amount": [100.0, 20.0, 50.0, 999.0],
            "currency": ["CNY", "cny", "CNY", "USD"],  # the USD order is after as_of, so it does not count
        },
        index=[7, 3, 9, 1],
    )
    scores = rfm(df, as_of=dt.date(2024, 3, 31))
    assert [(s.customer_id, s.recency_days, s.frequency, s.monetary, s.segment) for s in scores] == [
        ("a", 30, 2, Decimal(150), "Need Attention"),
        ("b", 304, 1, Decimal(20), "Hibernating"),
    ]
    assert str(scores[0].monetary) == "150"  # as few decimal places as the amounts need


def test_nothing_counted_and_empty_frames_give_no_scores():
    empty = pd.DataFrame({"customer_id": [], "occurred_at": pd.Series([], dtype="datetime64[ns, UTC]"), "amount": []})
    assert rfm(empty, as_of="2024-01-01") == []
    df = pd.DataFrame({"customer_id": ["a"], "occurred_at": pd.to_datetime(["2024-05-01"], utc=True), "amount": [1]})
    assert rfm(df, as_of="2024-01-01") == []


def _fields(df, as_of="2024-12-31"):
    with pytest.raises(pycrm.ValidationError) as err:
        rfm(df, as_of=as_of)
    return err.value.fields, str(err.value)


def good(**cols):
    base = {
        "customer_id": ["a", "b", "c"],
        "occurred_at": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"], utc=True),
        "amount": [1.0, 2.0, 3.0],
    }
    return pd.DataFrame({**base, **cols})


@pytest.mark.parametrize(
    ("cols", "field"),
    [
        ({"amount": [1.0, float("nan"), 3.0]}, "orders[1].amount"),
        ({"amount": [1.0, -2.0, 3.0]}, "orders[1].amount"),
        ({"amount": [1.0, 2.0, float("inf")]}, "orders[2].amount"),
        ({"amount": [1.0, 0.00001, 3.0]}, "orders[1].amount"),
        ({"amount": [1.0, 2.0, 1e15]}, "orders[2].amount"),
        ({"amount": ["1", "two", "3"]}, "orders[1].amount"),
        ({"amount": ["1", None, "3"]}, "orders[1].amount"),
        ({"amount": pd.array([1, None, 3], dtype="Int64")}, "orders[1].amount"),
        ({"customer_id": ["a", "", "c"]}, "orders[1].customer_id"),
        ({"customer_id": ["a", None, "c"]}, "orders[1].customer_id"),
        ({"customer_id": ["a", 5, "c"]}, "orders[1].customer_id"),
        ({"occurred_at": ["2024-01-01", "yesterday", "2024-01-03"]}, "orders[1].occurred_at"),
        ({"occurred_at": ["2024-01-01", "2024-01-02T10:00:00", "2024-01-03"]}, "orders[1].occurred_at"),
        ({"occurred_at": ["2024-01-01", None, "2024-01-03"]}, "orders[1].occurred_at"),
        ({"occurred_at": pd.to_datetime(["2024-01-01", None, "2024-01-03"], utc=True)}, "orders[1].occurred_at"),
        ({"occurred_at": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"])}, "orders[0].occurred_at"),
        ({"occurred_at": [1, 2, 3]}, "orders[0].occurred_at"),
        ({"currency": ["CNY", "USD", "CNY"]}, "orders[1].currency"),
        ({"currency": ["CNY", "XXY", "CNY"]}, "orders[1].currency"),
    ],
)
def test_bad_cells_name_the_row_and_column(cols, field):
    fields, _ = _fields(good(**cols))
    assert field in fields


def test_missing_columns_are_named_and_labels_are_given_for_a_custom_index():
    fields, _ = _fields(pd.DataFrame({"customer_id": ["a"], "amount": [1]}))
    assert fields == ["orders.occurred_at"]
    df = good(amount=[1.0, -2.0, -3.0])
    df.index = ["x", "y", "z"]
    fields, text = _fields(df)
    assert fields == ["orders[1].amount", "orders[2].amount"]
    assert "'y'" in text


def test_negative_amounts_and_other_currencies_after_as_of_do_not_matter_like_on_the_object_path():
    df = good(amount=[1.0, 2.0, -3.0], currency=["CNY", "CNY", "USD"])
    assert [s.customer_id for s in rfm(df, as_of="2024-01-02")] == ["a", "b"]
    with pytest.raises(pycrm.ValidationError):
        rfm([("c", dt.datetime(2024, 1, 3, tzinfo=UTC), Decimal(-3))], as_of="2024-01-03")


def test_many_bad_rows_are_summarized_not_listed_one_by_one():
    df = pd.DataFrame(
        {"customer_id": ["a"] * 1000, "occurred_at": pd.to_datetime(["2024-01-01"] * 1000, utc=True), "amount": [-1] * 1000}
    )
    fields, text = _fields(df)
    assert len(fields) == 10
    assert "990 more rows" in text


def test_importing_and_using_the_object_path_does_not_import_pandas():
    code = (
        "import sys, datetime as dt\n"
        "from pycrm.analytics import rfm\n"
        "rfm([('a', dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), 5)], as_of='2024-02-01')\n"
        "print('pandas' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
