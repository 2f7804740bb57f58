"""Sales series and their forecast: seasonality found, intervals that cover, a backtest that beats the
seasonal-naive forecast, short histories, bad input and the optional dependency."""

from __future__ import annotations

import datetime as dt
import math
import random
import subprocess
import sys
from decimal import Decimal

import pytest

import pycrm
from pycrm.analytics import RateTable, forecast_sales, sales_series
from pycrm.analytics._clv import MissingDependencyError
from pycrm.domain import Money, Order
from pycrm.errors import CRMError, ValidationError

UTC = dt.UTC


def _monthly(values: list[float], first: dt.date = dt.date(2020, 1, 1), cid: str = "a") -> list[Order]:
    """One order per month with the value of that month (cents kept)."""
    out = []
    for k, v in enumerate(values):
        m = first.month - 1 + k
        day = dt.datetime(first.year + m // 12, m % 12 + 1, 15, tzinfo=UTC)
        out.append(Order(cid, day, Money(Decimal(repr(round(v, 2))), "CNY")))
    return out


def _seasonal(n: int, seed: int = 7) -> list[float]:
    """A yearly pattern (December peak, summer dip) on a rising level, with a little noise."""
    rng = random.Random(seed)
    shape = [0.9, 0.85, 1.0, 1.05, 1.0, 0.8, 0.75, 0.85, 1.05, 1.15, 1.3, 1.6]
    return [(1000 + 8 * t) * shape[t % 12] + rng.gauss(0, 15) for t in range(n)]


# ---------------------------------------------------------------- the series


def test_series_is_hand_checked_and_gapless() -> None:
    orders = [
        Order("a", dt.datetime(2024, 1, 31, 23, 59, tzinfo=UTC), Money("10.5", "CNY")),
        Order("b", dt.datetime(2024, 2, 1, 0, 0, tzinfo=UTC), Money(3, "CNY")),
        Order("a", dt.datetime(2024, 4, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))), Money(1, "CNY")),  # March 31 UTC
    ]
    rows = sales_series(orders)
    assert [(r.period, r.start, r.orders, r.revenue) for r in rows] == [
        ("2024-01", dt.date(2024, 1, 1), 1, Decimal("10.5")),
        ("2024-02", dt.date(2024, 2, 1), 1, Decimal(3)),
        ("2024-03", dt.date(2024, 3, 1), 1, Decimal(1)),
    ]
    weeks = sales_series(orders, period="week", start="2024-01-29", end="2024-02-11")
    assert [(r.period, r.orders) for r in weeks] == [("2024-W05", 2), ("2024-W06", 0)]
    assert sales_series([]) == []
    assert [r.period for r in sales_series([], start="2024-01-01", end="2024-02-01")] == ["2024-01", "2024-02"]
    owners = sales_series(orders, by="owner", owners={"a": "u1"})
    assert [(r.owner_id, r.period, r.orders) for r in owners] == [
        ("u1", "2024-01", 1),
        ("u1", "2024-02", 0),
        ("u1", "2024-03", 1),
        (None, "2024-01", 0),
        (None, "2024-02", 1),
        (None, "2024-03", 0),
    ]


def test_series_converts_and_refuses_mixed_currencies() -> None:
    orders = [Order("a", dt.datetime(2024, 1, 5, tzinfo=UTC), Money(2, "USD")), *_monthly([5.0], dt.date(2024, 1, 1))]
    rates = RateTable("CNY", {("USD", dt.date(2023, 1, 1)): "7.1"})
    assert [(r.revenue, r.currency) for r in sales_series(orders, rates=rates)] == [(Decimal("19.2000"), "CNY")]
    with pytest.raises(ValidationError) as err:
        sales_series(orders)
    assert err.value.fields == ["orders[1].amount.currency"]


def test_series_bad_input_is_named() -> None:
    orders = _monthly([1.0, 2.0])
    for kwargs, field in (
        ({"period": "fortnight"}, "period"),
        ({"period": None}, "period"),
        ({"by": "colour"}, "by"),
        ({"by": "region"}, "regions"),  # grouping by region needs the customers' countries
        ({"by": "owner", "owners": {"a": 3}}, "owners['a']"),
        ({"start": "2024-13-01"}, "start"),
    ):
        with pytest.raises(ValidationError) as err:
            sales_series(orders, **kwargs)
        assert field in err.value.fields
    with pytest.raises(ValidationError) as err:
        sales_series(["not an order"])
    assert err.value.fields == ["orders[0]"]


# ---------------------------------------------------------------- the forecast


def test_seasonal_forecast_beats_seasonal_naive_and_its_intervals_cover_the_truth() -> None:
    pytest.importorskip("statsmodels")
    covered = total = 0
    for seed in (1, 2, 3):
        values = _seasonal(60, seed)
        train, truth = values[:48], values[48:]
        fc = forecast_sales(_monthly(train), horizon=12, level=0.95)
        assert fc.method is not None and fc.method.endswith(("A)", "M)"))  # seasonal
        assert [p.period for p in fc.points] == [f"2024-{m:02d}" for m in range(1, 13)]
        covered += sum(p.lower <= Decimal(repr(v)) <= p.upper for p, v in zip(fc.points, truth))
        total += len(truth)
        assert all(p.lower <= p.value <= p.upper for p in fc.points)
        # the December peak is forecast above the July dip
        assert fc.points[11].value > fc.points[6].value * Decimal("1.5")
        (row,) = fc.evaluate(folds=3, horizon=6)
        assert row.folds == 3 and row.horizon == 6
        assert row.mase is not None and row.naive_mase is not None
        assert row.mase < 1 and row.mase < row.naive_mase and row.relative is not None and row.relative < 1
        assert row.mape is not None and 0 < row.mape < 10 and row.smape is not None
    assert covered >= 0.9 * total  # 95% intervals


def test_the_backtest_is_checked_by_hand_on_a_pure_season() -> None:
    """A series that repeats exactly every year: the in-sample seasonal-naive error is 0, so no MASE (not a
    division by zero), and the model learns the season as well."""
    pytest.importorskip("statsmodels")
    from pycrm.analytics._timeseries import _scale, _snaive

    # the pieces of MASE by hand: seasonal-naive repeats the last season, the scale is its in-sample error
    assert _snaive([1.0, 2, 3, 4, 5, 6], 4, 4) == [3, 4, 5, 6]
    assert _snaive([1.0, 2, 3], 2, 4) == [3, 3]  # shorter than a season: the naive forecast
    assert _scale([1.0, 2, 4, 8, 5, 6], 4) == (abs(5 - 1) + abs(6 - 2)) / 2
    assert _scale([1.0, 2, 4], 12) == (1 + 2) / 2
    shape = [100.0, 80, 90, 120, 130, 110, 70, 60, 95, 140, 160, 200]
    fc = forecast_sales(_monthly(shape * 3), horizon=3)
    (row,) = fc.evaluate(folds=2)
    assert row.mase is None and row.naive_mase is None and row.relative is None
    assert row.mae < 5 and row.mape is not None and row.mape < 5


def test_forecast_by_group_and_to_dict() -> None:
    pytest.importorskip("statsmodels")
    book = _monthly(_seasonal(30, 1), cid="a") + _monthly([50.0 + k for k in range(30)], cid="b")
    fc = forecast_sales(book, horizon=2, by="region", regions={"a": "CN", "b": "DE"}, measure="orders")
    assert [(p.region, p.period) for p in fc.points] == [
        ("CN", "2022-07"),
        ("CN", "2022-08"),
        ("DE", "2022-07"),
        ("DE", "2022-08"),
    ]
    assert all(p.value == 1 for p in fc.points)  # one order a month: a constant series
    assert fc.method is None and set(fc.methods) == {("CN", None), ("DE", None)}
    data = fc.to_dict()
    assert data["measure"] == "orders" and data["by"] == ["region"] and len(data["points"]) == 4
    assert data["points"][0] == {"period": "2022-07", "start": "2022-07-01", "region": "CN", "owner_id": None} | {
        k: str(getattr(fc.points[0], k)) for k in ("value", "lower", "upper")
    }
    assert len(fc.evaluate()) == 2


def test_short_history_falls_back_or_says_how_much_is_needed() -> None:
    pytest.importorskip("statsmodels")
    short = _monthly(_seasonal(15))
    fc = forecast_sales(short, horizon=3)  # less than two seasons: no seasonality
    assert fc.method is not None and fc.method.endswith("N)")
    for seasonal in ("add", "mul"):
        with pytest.raises(ValidationError) as err:
            forecast_sales(short, seasonal=seasonal)
        assert err.value.fields == ["history"] and "24 periods" in str(err.value) and "has 15" in str(err.value)
    with pytest.raises(ValidationError) as err:
        forecast_sales(_monthly([1.0, 2.0, 3.0]))
    assert err.value.fields == ["history"] and "at least 4 periods" in str(err.value)
    with pytest.raises(ValidationError) as err:
        forecast_sales([])
    assert err.value.fields == ["history"]
    with pytest.raises(ValidationError) as err:
        fc.evaluate(horizon=12)  # 15 periods leave 3 to fit on
    assert err.value.fields == ["history"] and "at least 16 periods" in str(err.value)
    zero_month = _monthly([v if k != 5 else 0.0 for k, v in enumerate(_seasonal(30))])
    with pytest.raises(ValidationError) as err:
        forecast_sales(zero_month, seasonal="mul")
    assert err.value.fields == ["seasonal"]
    assert forecast_sales(zero_month).method is not None  # auto: additive only
    with pytest.raises(ValidationError) as err:
        forecast_sales(_monthly(_seasonal(60)), period="year", seasonal="add")
    assert err.value.fields == ["seasonal"]


def test_forecast_bad_input_is_named() -> None:
    orders = _monthly(_seasonal(30))
    for kwargs, field in (
        ({"horizon": 0}, "horizon"),
        ({"horizon": -1}, "horizon"),
        ({"horizon": 2.5}, "horizon"),
        ({"horizon": True}, "horizon"),
        ({"period": "fortnight"}, "period"),
        ({"by": "colour"}, "by"),
        ({"measure": "profit"}, "measure"),
        ({"level": 95}, "level"),
        ({"seasonal": "multiplicative"}, "seasonal"),
    ):
        with pytest.raises(ValidationError) as err:
            forecast_sales(orders, **kwargs)
        assert field in err.value.fields, kwargs


def test_forecasts_are_never_negative() -> None:
    pytest.importorskip("statsmodels")
    falling = _monthly([max(1.0, 500.0 - 60 * k) for k in range(9)])
    fc = forecast_sales(falling, horizon=6)
    assert all(p.lower >= 0 and p.value >= 0 and math.isfinite(float(p.upper)) for p in fc.points)


def test_without_statsmodels_the_forecast_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "statsmodels.tsa.exponential_smoothing.ets", None)
    with pytest.raises(MissingDependencyError) as err:
        forecast_sales(_monthly(_seasonal(30)))
    assert isinstance(err.value, CRMError) and isinstance(err.value, ImportError)
    assert 'pip install "pycrm[forecast]"' in str(err.value)
    assert len(sales_series(_monthly([1.0]))) == 1  # the series needs nothing
    with pycrm.open("memory://") as crm, crm.session() as s, pytest.raises(MissingDependencyError):
        s.analytics.forecast_sales()


def test_importing_analytics_does_not_import_statsmodels() -> None:
    code = "import sys, pycrm.analytics; print(any(m.startswith('statsmodels') for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
