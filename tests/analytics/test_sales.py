"""Sales reports: rate table, weighted forecast, funnel and time in stage, win rate, sales cycle.

Expected values are worked out by hand in the comments.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

import pycrm
from pycrm import Money, Opportunity, Pipeline, Stage
from pycrm.analytics import (
    ForecastRow,
    FunnelRow,
    RateTable,
    Report,
    SalesCycleRow,
    WinRateRow,
    forecast,
    funnel,
    sales_cycle,
    win_rate,
)

UTC = dt.UTC
T0 = dt.datetime(2024, 1, 1, 9, tzinfo=UTC)
D = Decimal


def at(days: float) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


def deal(
    amount: int | str = 1000,
    currency: str = "CNY",
    *,
    close: dt.date | None = None,
    owner: str | None = None,
    moves: tuple[tuple[str, float], ...] = (),
    win: float | None = None,
    lose: float | None = None,
    override: str | None = None,
    created: float | None = 0,
) -> Opportunity:
    o = Opportunity(
        "c1",
        "deal",
        Money(amount, currency),
        expected_close=close,
        owner_id=owner,
        created_at=None if created is None else at(created),
        probability_override=override,
    )
    for stage, day in moves:
        o.move_to(stage, at=at(day))
    if win is not None:
        o.win(at=at(win))
    if lose is not None:
        o.lose("price", at=at(lose))
    return o


# ---------------------------------------------------------------------------------------------- rates


def test_rate_table_uses_the_latest_rate_on_or_before_the_day() -> None:
    rt = RateTable("cny", [("USD", "2024-01-01", "7.10"), ("usd", dt.date(2024, 2, 1), D("7.20")), ("EUR", "2024-01-15", 8)])
    assert rt.base == "CNY" and rt.currencies == {"CNY", "USD", "EUR"}
    assert rt.rate("USD", dt.date(2024, 1, 1)) == D("7.10")
    assert rt.rate("USD", dt.date(2024, 1, 31)) == D("7.10")
    assert rt.rate("USD", dt.date(2024, 2, 1)) == D("7.20")
    assert rt.rate("USD", dt.datetime(2030, 1, 1, tzinfo=UTC)) == D("7.20")
    assert rt.rate("EUR", "2024-01-15") == 8
    assert rt.rate("CNY", dt.date(1900, 1, 1)) == 1
    # 12.34 USD x 7.10 = 87.614 CNY; 0.3333 EUR x 8 = 2.6664
    assert rt.convert(Money("12.34", "USD"), dt.date(2024, 1, 20)) == Money("87.614", "CNY")
    assert rt.convert(Money("0.3333", "EUR"), dt.date(2024, 1, 20)) == Money("2.6664", "CNY")
    assert rt.convert(Money(5, "CNY"), dt.date(1900, 1, 1)) == Money(5, "CNY")


def test_a_missing_rate_names_the_currency_and_the_date() -> None:
    rt = RateTable("CNY", {("USD", dt.date(2024, 1, 1)): "7.1"})
    with pytest.raises(pycrm.ValidationError) as err:
        rt.rate("USD", dt.date(2023, 12, 31))
    assert err.value.errors[0].code == "missing_rate"
    assert "USD" in str(err.value) and "2023-12-31" in str(err.value)
    with pytest.raises(pycrm.ValidationError, match="JPY"):
        rt.convert(Money(1, "JPY"), dt.date(2024, 6, 1))


@pytest.mark.parametrize(
    ("entries", "field"),
    [
        ([("USD", "2024-01-01", 7.1)], "rates[USD 2024-01-01]"),  # a float
        ([("USD", "2024-01-01", "0")], "rates[USD 2024-01-01]"),
        ([("XXY", "2024-01-01", "1")], "rates[0].currency"),
        ([("USD", "01/02/2024", "1")], "rates[USD 01/02/2024].date"),
        ([("USD", dt.datetime(2024, 1, 1), "1")], "rates[USD 2024-01-01 00:00:00].date"),  # naive
        ([("USD", "2024-01-01", "7"), ("USD", "2024-01-01", "8")], "rates[USD 2024-01-01]"),
        ([("USD", "2024-01-01")], "rates[0]"),
    ],
)
def test_bad_rates_are_validation_errors_naming_the_entry(entries: list, field: str) -> None:
    with pytest.raises(pycrm.ValidationError) as err:
        RateTable("CNY", entries)
    assert err.value.fields == [field]


def test_bad_base_and_base_rate() -> None:
    with pytest.raises(pycrm.ValidationError) as err:
        RateTable("cnyy")
    assert err.value.fields == ["base"]
    with pytest.raises(pycrm.ValidationError):
        RateTable("CNY", [("CNY", "2024-01-01", "2")])
    assert RateTable("CNY", [("CNY", "2024-01-01", "1")]).rate("CNY", "2024-01-01") == 1


# ---------------------------------------------------------------------------------------------- forecast


def book() -> list[Opportunity]:
    return [
        # January: open proposal 1000 x 0.60 = 600; won 500 in full; lost 300 counts zero
        deal(1000, close=dt.date(2024, 1, 20), owner="u1", moves=(("proposal", 1),)),
        deal(500, close=dt.date(2024, 1, 5), owner="u2", win=4),
        deal(300, close=dt.date(2024, 1, 9), owner="u1", lose=8),
        # February: prospecting 200 x 0.10 = 20; negotiation 400 with override 0.25 = 100
        deal(200, close=dt.date(2024, 2, 1), owner="u2"),
        deal(400, close=dt.date(2024, 2, 29), owner="u1", moves=(("negotiation", 2),), override="0.25"),
        # no expected close: period None, 50 x 0.10 = 5
        deal(50),
    ]


def test_forecast_by_month_counts_lost_zero_won_in_full_and_open_weighted() -> None:
    got = forecast(book())
    assert isinstance(got, Report) and got.row_type is ForecastRow
    assert got == [
        ForecastRow("2024-01", None, None, None, "CNY", 3, D(1000), D(500), D(1100)),
        ForecastRow("2024-02", None, None, None, "CNY", 2, D(600), D(0), D(120)),
        ForecastRow(None, None, None, None, "CNY", 1, D(50), D(0), D(5)),
    ]


def test_forecast_by_owner_stage_and_category() -> None:
    by_owner = forecast(book(), period="quarter", by="owner")
    assert [(r.period, r.owner_id, r.deals, r.weighted) for r in by_owner] == [
        ("2024-Q1", "u1", 3, D(700)),  # 600 + 0 + 100
        ("2024-Q1", "u2", 2, D(520)),  # 500 + 20
        (None, None, 1, D(5)),
    ]
    by_stage = forecast(book(), period=None, by=("stage", "category"))
    assert [(r.period, r.stage, r.forecast_category, r.deals, r.weighted) for r in by_stage] == [
        ("all", "prospecting", "pipeline", 1, D(20)),  # in pipeline order
        ("all", "proposal", "best_case", 1, D(600)),
        ("all", "negotiation", "commit", 1, D(100)),
        ("all", "closed_won", "closed", 1, D(500)),
        ("all", "closed_lost", "omitted", 1, D(0)),
        (None, "prospecting", "pipeline", 1, D(5)),
    ]


def test_forecast_by_week_and_date_range() -> None:
    got = forecast(book(), period="week", start="2024-01-08", end=dt.date(2024, 1, 31))
    # 2024-01-09 is in ISO week 2, 2024-01-20 in week 3; the undated deal stays
    assert [(r.period, r.deals, r.weighted) for r in got] == [("2024-W02", 1, 0), ("2024-W03", 1, 600), (None, 1, 5)]


def test_forecast_weights_round_half_even_per_deal() -> None:
    # 0.05 x 0.10 = 0.005 -> 0.0050 (4 places, exact); 0.0005 x 0.10 = 0.00005 -> 0.0000 (half-even)
    got = forecast([deal("0.05", close=dt.date(2024, 1, 1)), deal("0.0005", close=dt.date(2024, 1, 1))])
    assert got[0].weighted == D("0.0050")


def test_forecast_converts_currencies_at_the_forecast_date() -> None:
    rates = RateTable("CNY", [("USD", "2024-01-01", "7"), ("USD", "2024-02-01", "8")])
    deals = [
        deal(100, "USD", close=dt.date(2024, 1, 31), moves=(("proposal", 1),)),  # 700 x 0.6 = 420
        deal(100, "USD", close=dt.date(2024, 2, 1), win=3),  # 800 in full
        deal(1000, "CNY", close=dt.date(2024, 2, 2)),  # 100
        deal(10, "USD"),  # undated: the latest rate, 80 x 0.1 = 8
    ]
    got = forecast(deals, rates=rates)
    assert [(r.period, r.currency, r.open_amount, r.won_amount, r.weighted) for r in got] == [
        ("2024-01", "CNY", 700, 0, 420),
        ("2024-02", "CNY", 1000, 800, 900),
        (None, "CNY", 80, 0, 8),
    ]


def test_mixed_currencies_without_rates_name_the_currency_and_date() -> None:
    deals = [deal(1, "CNY", close=dt.date(2024, 1, 1)), deal(1, "USD", close=dt.date(2024, 3, 5))]
    with pytest.raises(pycrm.ValidationError) as err:
        forecast(deals)
    assert err.value.fields == ["opportunities[1].amount.currency"]
    assert "USD" in str(err.value) and "2024-03-05" in str(err.value)
    with pytest.raises(pycrm.ValidationError) as err:
        forecast(deals, rates=RateTable("CNY", [("USD", "2024-04-01", "7")]))  # a rate, but only from April
    assert "USD" in str(err.value) and "2024-03-05" in str(err.value)


def test_empty_inputs_give_empty_reports_with_columns() -> None:
    for report in (forecast([]), funnel([]), win_rate([]), sales_cycle([])):
        assert report == [] and isinstance(report, Report) and report.columns
    assert forecast([], rates=RateTable("CNY")) == []
    # open deals only: no win rate, no sales cycle
    assert win_rate([deal()]) == [] and sales_cycle([deal()]) == []


@pytest.mark.parametrize(
    ("kwargs", "fields"),
    [
        ({"period": "day"}, ["period"]),
        ({"by": "team"}, ["by"]),
        ({"start": dt.datetime(2024, 1, 1)}, ["start"]),  # naive
        ({"start": "2024-02-01", "end": "2024-01-01"}, ["end"]),
        ({"end": "tomorrow"}, ["end"]),
        ({"rates": {"USD": 7}}, ["rates"]),
    ],
)
def test_bad_arguments_are_validation_errors(kwargs: dict, fields: list[str]) -> None:
    with pytest.raises(pycrm.ValidationError) as err:
        forecast(book(), **kwargs)
    assert err.value.fields == fields


def test_naive_datetimes_in_entities_are_validation_errors() -> None:
    o = deal(win=3)
    object.__setattr__(o, "closed_at", dt.datetime(2024, 1, 4))  # bypassing the entity's own check
    for report in (win_rate, sales_cycle):
        with pytest.raises(pycrm.ValidationError) as err:
            report([deal(win=1), o])
        assert err.value.fields == ["opportunities[1].closed_at"]
        assert err.value.errors[0].code == "naive_datetime"
    o = deal(moves=(("proposal", 1),))
    object.__setattr__(o, "created_at", dt.datetime(2024, 1, 1))
    with pytest.raises(pycrm.ValidationError) as err:
        funnel([o])
    assert err.value.fields == ["opportunities[0].created_at"]


# ---------------------------------------------------------------------------------------------- funnel


def test_funnel_counts_reached_steps_conversion_and_time_in_stage() -> None:
    deals = [
        # prospecting 0-2, qualification 2-5, won at 5
        deal(moves=(("qualification", 2),), win=5),
        # prospecting 0-4, proposal (skipping two stages) 4-10, lost
        deal(moves=(("proposal", 4),), lose=10),
        # prospecting 0-1, needs_analysis 1-3, back to qualification 3-9, still there
        deal(moves=(("needs_analysis", 1), ("qualification", 3))),
        # still in prospecting
        deal(),
        # another pipeline: ignored
        Opportunity("c1", "x", Money(1, "CNY"), pipeline=_other()),
    ]
    got = funnel(deals)
    assert got.row_type is FunnelRow
    assert [(r.stage, r.reached, r.conversion) for r in got] == [
        ("prospecting", 4, D("0.75")),
        ("qualification", 3, D(1)),  # deals 1, 2 (skipped it) and 3
        ("needs_analysis", 3, D("0.6667")),  # deals 1 and 2 went further; deal 3 went back from it
        ("proposal", 2, D("0.5")),
        ("negotiation", 1, D(1)),
        ("closed_won", 1, None),
    ]
    stays = {r.stage: (r.stays, r.mean_days, r.median_days) for r in got}
    assert stays["prospecting"] == (3, D("2.33"), D("2.00"))  # 2, 4, 1 days
    assert stays["qualification"] == (1, D("3.00"), D("3.00"))  # deal 3 is still in it: not counted
    assert stays["needs_analysis"] == (1, D("2.00"), D("2.00"))
    assert stays["proposal"] == (1, D("6.00"), D("6.00"))
    assert stays["negotiation"] == (0, None, None) and stays["closed_won"] == (0, None, None)


def _other() -> Pipeline:
    p = Pipeline("two-step", [Stage("new", "0.5"), Stage("won", 1, kind="won"), Stage("lost", 0, kind="lost")])
    return pycrm.domain.register_pipeline(p)


def test_funnel_of_a_named_pipeline_and_without_created_at() -> None:
    p = _other()
    a = Opportunity("c1", "a", Money(1, "CNY"), pipeline=p)  # no created_at: the first stay is unknown
    a.move_to("won", at=at(3))
    b = Opportunity("c1", "b", Money(1, "CNY"), pipeline=p)
    got = funnel([a, b, deal()], pipeline="two-step")
    assert got == [FunnelRow("new", 2, D("0.5"), 0, None, None), FunnelRow("won", 1, None, 0, None, None)]
    assert funnel([deal()], pipeline=p) == []
    with pytest.raises(pycrm.ValidationError):
        funnel([], pipeline="nope")


# ---------------------------------------------------------------------------------------------- win rate, cycle


def test_win_rate_per_period_of_closing_and_by_owner() -> None:
    deals = [
        deal(owner="a", win=5),  # January
        deal(owner="b", lose=10),
        deal(owner="a", lose=20),
        deal(owner="a", win=40),  # February 10
        deal(owner="b", moves=(("proposal", 3),)),  # open: ignored
    ]
    assert win_rate(deals) == [
        WinRateRow("2024-01", None, 1, 2, D("0.3333")),
        WinRateRow("2024-02", None, 1, 0, D(1)),
    ]
    assert [(r.owner_id, r.won, r.lost, r.win_rate) for r in win_rate(deals, period="year", by="owner")] == [
        ("a", 2, 1, D("0.6667")),
        ("b", 0, 1, D(0)),
    ]
    assert win_rate(deals, start="2024-02-01") == [WinRateRow("2024-02", None, 1, 0, D(1))]


def test_sales_cycle_mean_and_median_days_of_won_deals() -> None:
    deals = [
        deal(win=10),
        deal(win=20.5),
        deal(created=5, win=15),  # 10 days
        deal(win=35),  # February 5: 35 days
        deal(lose=3),  # lost: not a sale
        deal(created=None, win=12),  # no created_at: left out
    ]
    assert sales_cycle(deals) == [
        SalesCycleRow("2024-01", None, 3, D("13.50"), D("10.00")),  # (10 + 20.5 + 10) / 3 = 13.5
        SalesCycleRow("2024-02", None, 1, D("35.00"), D("35.00")),
    ]
    assert sales_cycle(deals, period=None) == [SalesCycleRow("all", None, 4, D("18.88"), D("15.25"))]
