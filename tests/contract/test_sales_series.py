"""``s.analytics.sales_series`` (revenue and orders per period, by region or owner) equals the pure function on
every adapter, computed inside the database on SQL stores, within the actor's scope; the forecast from the
store equals the forecast of the pure series."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pycrm
from pycrm import Customer, Money, Opportunity, Order, User
from pycrm.analytics import RateTable, forecast, sales_series
from tests.contract.test_reports_pushdown import _build_deal, deals

UTC = dt.UTC
T0 = dt.datetime(2024, 1, 1, tzinfo=UTC)
DB = settings(
    max_examples=max(8, settings.default.max_examples // 3),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
RATES = RateTable("CNY", [("USD", "2023-06-01", "7.1"), ("USD", "2024-02-01", "7.2345")])
AMOUNTS = ["0", "10", "10.00", "99.99", "0.0001", "0.0005", "12345.6789", "500", "3.3"]
#: (country, owner) of the customers: customer 3 is owned by u2 (the rep u1 may not read it), 4 has neither.
CUSTOMERS = [("CN", "u1"), ("DE", "u1"), ("CN", "u1"), ("US", "u2"), (None, None)]
GROUPINGS: list[Any] = [(), "region", "owner", ("region", "owner"), ("owner", "region")]

order_books = st.lists(
    st.tuples(
        st.integers(0, 4),
        st.integers(min_value=0, max_value=400 * 24 * 60),
        st.sampled_from(AMOUNTS),
        st.sampled_from(["CNY", "CNY", "CNY", "USD"]),
    ),
    max_size=25,
)


def _same(pushed: Callable[[], Any], pure: Callable[[], Any]) -> None:
    """Equal rows with equal text (so Decimal places agree), or the same error."""
    try:
        expected = pure()
    except pycrm.ValidationError as exc:
        with pytest.raises(pycrm.ValidationError) as got:
            pushed()
        assert [(e.field, e.code) for e in got.value.errors] == [(e.field, e.code) for e in exc.errors]
        return
    result = pushed()
    assert result == expected
    assert repr(list(result)) == repr(list(expected))
    assert (result.title, result.x, result.y) == (expected.title, expected.x, expected.y)


def _fill(crm: pycrm.CRM, book: list[tuple[Any, ...]]) -> list[str]:
    with crm.session() as s:
        s.users.add(User("Rep", "rep@example.com", roles=["sales"], id="u1"))
        ids = [str(s.customers.add(Customer(f"C{i}", country=c, owner_id=o)).id) for i, (c, o) in enumerate(CUSTOMERS)]
        s.orders.add_many([Order(ids[k], T0 + dt.timedelta(minutes=m), Money(a, cur)) for k, m, a, cur in book])
    return ids


def _empty(crm: pycrm.CRM) -> None:
    with crm.session() as s:  # Hypothesis examples share the store: leave it empty
        for repo in (s.orders, s.customers, s.users):
            for e in list(repo.iter()):
                repo.delete(e.id)


@DB
@given(book=order_books, period=st.sampled_from(["week", "month", "quarter", "year"]), lo=st.integers(-5, 400))
def test_sales_series_agrees(crm: pycrm.CRM, book: list[tuple[Any, ...]], period: str, lo: int) -> None:
    ids = _fill(crm, book)
    regions = {ids[i]: c for i, (c, _) in enumerate(CUSTOMERS)}
    owners = {ids[i]: o for i, (_, o) in enumerate(CUSTOMERS)}
    start = (T0 + dt.timedelta(days=lo)).date()
    rep = User("Rep", "rep@example.com", roles=["sales"], id="u1")
    try:
        with crm.session() as s:
            stored = list(s.orders.iter())
            cny = [o for o in stored if o.amount.currency == "CNY"]
            a = s.analytics
            for by in GROUPINGS:
                _same(
                    lambda by=by: a.sales_series(period=period, by=by),
                    lambda by=by: sales_series(stored, period=period, by=by, regions=regions, owners=owners),
                )
                _same(
                    lambda by=by: a.sales_series(period=period, by=by, rates=RATES, start=start),
                    lambda by=by: sales_series(
                        stored, period=period, by=by, rates=RATES, start=start, regions=regions, owners=owners
                    ),
                )
            _same(
                lambda: a.sales_series(period=period, end=start, rates=RATES),
                lambda: sales_series(stored, period=period, end=start, rates=RATES),
            )
            _same(
                lambda: a.sales_series(period=period, by="region", where={"currency": "CNY"}),
                lambda: sales_series(cny, period=period, by="region", regions=regions),
            )
            _same(
                lambda: a.sales_series(period=period, start=start, end=start + dt.timedelta(days=60), where={"currency": "CNY"}),
                lambda: sales_series(cny, period=period, start=start, end=start + dt.timedelta(days=60)),
            )
        with crm.session(actor=rep) as s:  # the rep's own customers' orders; the others are not there
            mine = [o for o in stored if o.customer_id != ids[3] and o.customer_id != ids[4]]
            readable = {k: v for k, v in regions.items() if owners[k] == "u1"}
            for by in ("region", ("region", "owner")):
                _same(
                    lambda by=by: s.analytics.sales_series(period=period, by=by, rates=RATES),
                    lambda by=by: sales_series(mine, period=period, by=by, rates=RATES, regions=readable, owners=owners),
                )
    finally:
        _empty(crm)


def _hand_book(crm: pycrm.CRM) -> list[str]:
    """Orders of 2024 by hand: January 100 + 50.5 (CN, DE), March 20 (CN) and 7.25 (US, customer of u2)."""
    return _fill(
        crm,
        [
            (0, 9 * 24 * 60, "100", "CNY"),  # 2024-01-10, CN, u1
            (1, 20 * 24 * 60, "50.5", "CNY"),  # 2024-01-21, DE, u1
            (2, 70 * 24 * 60, "20", "CNY"),  # 2024-03-11, CN, u1
            (3, 80 * 24 * 60 + 60 * 23 + 59, "7.25", "CNY"),  # 2024-03-21 23:59, US, u2
        ],
    )


def test_series_by_hand(crm: pycrm.CRM) -> None:
    _hand_book(crm)
    with crm.session() as s:
        rows = [(r.period, r.orders, r.revenue, r.currency) for r in s.analytics.sales_series()]
        assert rows == [
            ("2024-01", 2, Decimal("150.5"), "CNY"),
            ("2024-02", 0, Decimal(0), "CNY"),
            ("2024-03", 2, Decimal("27.25"), "CNY"),
        ]
        by_region = [(r.region, r.period, r.orders, str(r.revenue)) for r in s.analytics.sales_series(by="region")]
        assert by_region == [
            ("CN", "2024-01", 1, "100"),
            ("CN", "2024-02", 0, "0"),
            ("CN", "2024-03", 1, "20"),
            ("DE", "2024-01", 1, "50.5"),
            ("DE", "2024-02", 0, "0"),
            ("DE", "2024-03", 0, "0"),
            ("US", "2024-01", 0, "0"),
            ("US", "2024-02", 0, "0"),
            ("US", "2024-03", 1, "7.25"),
        ]
        quarters = s.analytics.sales_series(period="quarter", by="owner", start="2023-12-01")
        assert [(r.period, r.owner_id, r.orders, str(r.revenue)) for r in quarters] == [
            ("2023-Q4", "u1", 0, "0"),
            ("2024-Q1", "u1", 3, "170.5"),
            ("2023-Q4", "u2", 0, "0"),
            ("2024-Q1", "u2", 1, "7.25"),
        ]
        weeks = s.analytics.sales_series(period="week", start="2024-03-18", end="2024-03-24")
        assert [(r.period, r.start, r.orders) for r in weeks] == [("2024-W12", dt.date(2024, 3, 18), 1)]
    rep = User("Rep", "rep@example.com", roles=["sales"], id="u1")
    with crm.session(actor=rep) as s:  # u2's customer's order is not there, nor is its country
        assert [(r.region, r.orders) for r in s.analytics.sales_series(by="region", period="year")] == [("CN", 2), ("DE", 1)]
        assert sum(r.revenue for r in s.analytics.sales_series()) == Decimal("170.5")


def test_bad_input_is_named(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        a = s.analytics
        for call, field in (
            (lambda: a.sales_series(period="fortnight"), "period"),
            (lambda: a.sales_series(period=None), "period"),  # type: ignore[arg-type]
            (lambda: a.sales_series(by="colour"), "by"),
            (lambda: a.sales_series(by="category"), "by"),
            (lambda: a.sales_series(start="2024-02-01", end="2024-01-01"), "end"),
            (lambda: a.forecast_sales(horizon=0), "horizon"),
            (lambda: a.forecast_sales(horizon=-3), "horizon"),
            (lambda: a.forecast_sales(measure="profit"), "measure"),
            (lambda: a.forecast_sales(by="colour"), "by"),
            (lambda: a.forecast_sales(period="fortnight"), "period"),
            (lambda: a.forecast_sales(level=1.5), "level"),
            (lambda: a.forecast_sales(seasonal="yes"), "seasonal"),
        ):
            with pytest.raises(pycrm.ValidationError) as err:
                call()
            assert field in err.value.fields


def test_mixed_currencies_raise_like_the_pure_function(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        c = s.customers.add(Customer("A"))
        s.orders.add(Order(c.id, T0, Money(1, "CNY")))
        s.orders.add(Order(c.id, T0 + dt.timedelta(days=1), Money(1, "GBP")))
    with crm.session() as s:
        for call in (lambda: s.analytics.sales_series(), lambda: s.analytics.sales_series(rates=RATES)):
            with pytest.raises(pycrm.ValidationError) as err:
                call()
            assert err.value.errors[0].code in ("currency_mismatch", "missing_rate")
            assert "GBP" in str(err.value)


def test_sql_adapters_compute_inside_the_database(crm: pycrm.CRM, adapter: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if adapter == "memory":
        pytest.skip("the memory adapter streams into the pure functions by design")
    from pycrm.storage._analytics import SessionAnalytics

    def no_streaming(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("streamed entities instead of computing in the database")

    _hand_book(crm)
    monkeypatch.setattr(SessionAnalytics, "_stream", no_streaming)
    monkeypatch.setattr(SessionAnalytics, "_related", no_streaming)
    with crm.session() as s:
        assert len(s.analytics.sales_series(by=("region", "owner"), rates=RATES)) == 9


def test_forecast_from_the_store_is_the_forecast_of_its_series(crm: pycrm.CRM) -> None:
    pytest.importorskip("statsmodels")
    from pycrm.analytics._timeseries import forecast_series

    with crm.session() as s:
        c = s.customers.add(Customer("A", country="CN"))
        for m in range(30):
            day = dt.datetime(2022 + m // 12, m % 12 + 1, 3, tzinfo=UTC)
            s.orders.add(Order(c.id, day, Money(100 + 40 * (m % 12 in (10, 11)) + m, "CNY")))
    with crm.session() as s:
        fc = s.analytics.forecast_sales(horizon=3, by="region")
        series = s.analytics.sales_series(by="region")
        assert fc.history == series
        assert fc.points == forecast_series(series, period="month", horizon=3, by="region").points
        assert [(p.period, p.region) for p in fc.points] == [("2024-07", "CN"), ("2024-08", "CN"), ("2024-09", "CN")]


# ---------------------------------------------------------------------------------------------------
# the weighted forecast by region (the customer's country)
# ---------------------------------------------------------------------------------------------------


@DB
@given(specs=deals, period=st.sampled_from([None, "month", "quarter"]))
def test_forecast_by_region_agrees(crm: pycrm.CRM, specs: list[dict[str, Any]], period: str | None) -> None:
    ids = _fill(crm, [])
    # deals of customers 0 (CN, u1), 3 (US, owned by u2: the rep may not read it) and 4 (no country)
    picked = [ids[0], ids[3], ids[4]]
    with crm.session() as s:
        s.opportunities.add_many([_build_deal(picked, spec) for spec in specs])
    regions = {ids[i]: c for i, (c, _) in enumerate(CUSTOMERS)}
    rep = User("Rep", "rep@example.com", roles=["sales"], id="u1")
    try:
        with crm.session() as s:
            stored = list(s.opportunities.iter())
            a = s.analytics
            for by in ("region", ("owner", "region"), ("region", "stage", "category")):
                _same(
                    lambda by=by: a.forecast(period=period, by=by, rates=RATES),
                    lambda by=by: forecast(stored, period=period, by=by, rates=RATES, regions=regions),
                )
            _same(
                lambda: a.forecast(period=period, by="region", where={"currency": "CNY"}),
                lambda: forecast([o for o in stored if o.amount.currency == "CNY"], period=period, by="region", regions=regions),
            )
        with crm.session(actor=rep) as s:
            mine = [o for o in stored if o.owner_id == "u1" or o.customer_id == ids[0]]  # mine, or my customer's
            readable = {ids[0]: "CN"}
            _same(
                lambda: s.analytics.forecast(period=period, by="region", rates=RATES),
                lambda: forecast(mine, period=period, by="region", rates=RATES, regions=readable),
            )
    finally:
        with crm.session() as s:
            for e in list(s.opportunities.iter()):
                s.opportunities.delete(e.id)
        _empty(crm)


def test_forecast_by_region_by_hand(crm: pycrm.CRM, adapter: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = _fill(crm, [])
    with crm.session() as s:
        for cid, amount, stage in (
            (0, "1000", "proposal"),
            (1, "500", "negotiation"),
            (0, "200", "prospecting"),
            (3, "70", "closed_won"),
        ):
            s.opportunities.add(
                Opportunity(ids[cid], "d", Money(amount, "CNY"), stage=stage, expected_close=T0.date(), owner_id="u1")
            )
    if adapter != "memory":
        from pycrm.storage._analytics import SessionAnalytics

        def no_streaming(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("streamed entities instead of computing in the database")

        monkeypatch.setattr(SessionAnalytics, "_stream", no_streaming)
        monkeypatch.setattr(SessionAnalytics, "_related", no_streaming)
    with crm.session() as s:
        got = [(r.region, r.deals, str(r.weighted)) for r in s.analytics.forecast(period=None, by="region")]
        # CN: 1000 x 0.6 + 200 x 0.1; DE: 500 x 0.8; US: won in full
        assert got == [("CN", 2, "620.0000"), ("DE", 1, "400.0000"), ("US", 1, "70")]
    rep = User("Rep", "rep@example.com", roles=["sales"], id="u1")
    with crm.session(actor=rep) as s:  # the deal is the rep's, its customer (owned by u2) is not: no region
        got = [(r.region, r.deals) for r in s.analytics.forecast(period=None, by="region")]
        assert got == [("CN", 2), ("DE", 1), (None, 1)]
    with crm.session() as s, pytest.raises(pycrm.ValidationError) as err:
        s.analytics.forecast(by="colour")
    assert err.value.fields == ["by"] and "region" in str(err.value)


@pytest.mark.parametrize("rule", ["mask", "hide"])
def test_a_country_or_owner_the_actor_sees_masked_is_no_group(open_crm: Callable[..., pycrm.CRM], rule: str) -> None:
    """Grouping by region or owner would give the masked values back: refused, naming the field; the series
    without the group still works."""
    from pycrm.security import FieldRules

    crm = open_crm(field_rules=FieldRules({"sales": {"customers.country": rule, "customers.owner_id": rule}}))
    _hand_book(crm)
    with crm.session() as s:
        s.opportunities.add(Opportunity(s.customers.find()[0].id, "d", Money(10, "CNY"), owner_id="u1"))
    rep = User("Rep", "rep@example.com", roles=["sales"], id="u1")
    with crm.session(actor=rep) as s:
        for call in (
            lambda: s.analytics.sales_series(by="region"),
            lambda: s.analytics.sales_series(by="owner"),
            lambda: s.analytics.forecast(by="region"),
        ):
            with pytest.raises(pycrm.ValidationError, match="masked or hidden") as err:
                call()
            assert any(f in str(err.value) for f in ("country", "owner_id"))
        assert sum(r.orders for r in s.analytics.sales_series()) == 3
        assert len(s.analytics.forecast(by="owner")) == 1
