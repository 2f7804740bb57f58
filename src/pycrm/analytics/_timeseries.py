"""Sales over time: revenue and order count per week, month, quarter or year, and their forecast with
seasonality (exponential smoothing, ETS), with prediction intervals and a backtest on the store's own history.

The reference semantics of :func:`sales_series` (the SQL pushdown must agree exactly):

- an order counts in the calendar period (UTC) of the date of ``occurred_at``; ``start``/``end`` are
  inclusive days;
- ``revenue`` is the exact sum of the amounts (Decimal addition), all in one currency or converted by a
  :class:`~pycrm.analytics.RateTable` at the rate of the order's day, like the other reports;
- the series runs over every period from ``start`` (or the first order's period) to ``end`` (or the last
  order's period), quiet periods included with ``orders=0`` and ``revenue=0``: a time series has no gaps;
- ``by`` splits it into one series per group: ``region`` (the customer's ``country``) or ``owner`` (the
  customer's ``owner_id``); a customer missing from the mapping gives the ``None`` group. Every group
  runs over the same periods. (``category``, the product category, will join them with order lines.)

:func:`forecast_sales` fits an ETS model (statsmodels' ``ETSModel``: error, trend and seasonality each
additive or multiplicative, chosen by AICc) to each series and forecasts ``horizon`` periods, with
prediction intervals at ``level``. It needs the ``forecast`` extra (``pip install "pycrm[forecast]"``).
Seasonality needs two full seasons of history (24 months, 104 weeks, 8 quarters); with less, ``seasonal=
"auto"`` falls back to a model without seasonality (at least :data:`MIN_HISTORY` periods), an explicit
``seasonal="add"`` or ``"mul"`` is refused with a ValidationError saying how much history is needed.
Forecasts and bounds are never negative (revenue and order counts are not).

``SalesForecast.evaluate()`` backtests the same model choice on the history: rolling origins, each fitting
on the periods before it and forecasting the next ``horizon`` periods, and reports the MASE (mean absolute
error scaled by the in-sample error of the seasonal-naive forecast, Hyndman & Koehler 2006) of the model
and of the seasonal-naive forecast itself on the same folds, their ratio, MAPE and sMAPE.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from pycrm.analytics._clv import MissingDependencyError
from pycrm.analytics._common import (
    as_tuple,
    aware,
    check_period,
    check_range,
    entities_of,
    next_start,
    period_label,
    period_start,
    periods_between,
    quantize,
    sort_key,
    within,
)
from pycrm.analytics._report import Report
from pycrm.analytics._sales import RateTable, _Converter
from pycrm.domain import Order
from pycrm.domain._html import key_value_table
from pycrm.errors import FieldError, ValidationError, quote

__all__ = [
    "MEASURES",
    "MIN_HISTORY",
    "SEASONS",
    "SERIES_GROUPS",
    "BacktestRow",
    "ForecastPoint",
    "SalesForecast",
    "SalesSeriesRow",
    "forecast_sales",
    "forecast_series",
    "sales_series",
]

#: What :func:`sales_series` may split by: the customer's country (``region``) or owner (``owner``).
SERIES_GROUPS = ("region", "owner")
#: What a forecast forecasts: a series' ``revenue`` or its ``orders`` (the count).
MEASURES = ("revenue", "orders")
#: Periods in a season, per period: the seasonality a forecast looks for (a year has none).
SEASONS: Mapping[str, int] = {"week": 52, "month": 12, "quarter": 4, "year": 1}
#: The fewest periods of history a forecast without seasonality accepts.
MIN_HISTORY = 4
#: Longest forecast horizon, in periods.
MAX_HORIZON = 520
_SEASONAL = ("auto", "add", "mul", None)

#: A group of a series: (region, owner_id).
Group = tuple[str | None, str | None]


# ---------------------------------------------------------------------------------------------------
# the series
# ---------------------------------------------------------------------------------------------------


@attrs.frozen
class SalesSeriesRow:
    """Orders and revenue of one period (of one group, when split ``by`` region or owner: the fields not
    grouped by are ``None``). ``start`` is the first day of the period."""

    period: str
    start: dt.date
    region: str | None
    owner_id: str | None
    orders: int
    revenue: Decimal
    currency: str | None


def check_series_period(period: Any) -> str:
    """``period`` of a series: one of week, month, quarter, year (a series needs one)."""
    if period is None:
        needs = "a sales series needs a period (week, month, quarter, year)"
        raise ValidationError([FieldError("period", "required", needs)])
    checked = check_period(period)
    assert checked is not None
    return checked


def series_groups(by: Any) -> tuple[str, ...]:
    """``by`` of :func:`sales_series` checked: some of :data:`SERIES_GROUPS`."""
    return as_tuple(by, SERIES_GROUPS)


def series_report(
    sums: Mapping[tuple[dt.date, str | None, str | None], tuple[int, Decimal]],
    period: str,
    lo: dt.date | None,
    hi: dt.date | None,
    currency: str | None,
) -> Report[SalesSeriesRow]:
    """The rows of :func:`sales_series` from (period start, region, owner) -> (orders, revenue): every group
    over every period from ``lo`` (or the first) to ``hi`` (or the last), zeros where nothing was sold.
    Shared with the SQL pushdown, so both give the same rows."""
    title = "Sales by " + period
    if not sums and (lo is None or hi is None):
        return Report(SalesSeriesRow, title=title, x="period", y="revenue")
    begin = lo if lo is not None else min(k[0] for k in sums)
    finish = hi if hi is not None else max(k[0] for k in sums)
    starts = periods_between(begin, finish, period)
    groups = sorted({(k[1], k[2]) for k in sums} or {(None, None)}, key=lambda g: (sort_key(g[0]), sort_key(g[1])))
    rows = []
    zero = (0, Decimal(0))
    for region, owner in groups:
        for p in starts:
            n, revenue = sums.get((p, region, owner), zero)
            rows.append(SalesSeriesRow(period_label(p, period), p, region, owner, n, revenue, currency))
    return Report(SalesSeriesRow, rows, title=title, x="period", y="revenue")


def _mapping(value: Any, name: str, group: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        needs = f"grouping by {group} needs {name}: a mapping of customer id to {what}"
        raise ValidationError([FieldError(name, "required", needs)])
    return value


def _group_value(mapping: Mapping[str, Any], key: str, name: str) -> str | None:
    value = mapping.get(key)
    if value is not None and not isinstance(value, str):
        raise ValidationError(
            [FieldError(f"{name}[{quote(key)}]", "type", f"expected a text or None, got {type(value).__name__}")]
        )
    return value


def sales_series(
    orders: Iterable[Any],
    *,
    period: str = "month",
    by: str | Sequence[str] = (),
    rates: RateTable | None = None,
    start: dt.date | dt.datetime | str | None = None,
    end: dt.date | dt.datetime | str | None = None,
    regions: Mapping[str, str | None] | None = None,
    owners: Mapping[str, str | None] | None = None,
) -> Report[SalesSeriesRow]:
    """Orders and revenue per period (see the module for the rules), optionally split ``by`` ``region``
    (``regions`` maps customer ids to countries) or ``owner`` (``owners`` maps customer ids to owner ids).

    >>> from pycrm.domain import Money, Order
    >>> def o(cid, month, amount):
    ...     return Order(cid, dt.datetime(2024, month, 10, tzinfo=dt.UTC), Money(amount, "CNY"))
    >>> book = [o("a", 1, 100), o("b", 1, "50.5"), o("a", 3, 20)]
    >>> for r in sales_series(book):
    ...     print(r.period, r.orders, r.revenue)
    2024-01 2 150.5
    2024-02 0 0
    2024-03 1 20
    >>> by_region = sales_series(book, by="region", regions={"a": "CN", "b": "DE"}, end="2024-02-29")
    >>> for r in by_region:
    ...     print(r.region, r.period, r.orders, r.revenue)
    CN 2024-01 1 100
    CN 2024-02 0 0
    DE 2024-01 1 50.5
    DE 2024-02 0 0
    """
    period = check_series_period(period)
    groups = series_groups(by)
    lo, hi = check_range(start, end)
    money = _Converter(rates)
    errors: list[FieldError] = []
    for group, name, what in (("region", "regions", "country"), ("owner", "owners", "owner id")):
        if group in groups:
            try:
                _mapping(regions if group == "region" else owners, name, group, what)
            except ValidationError as exc:
                errors += exc.errors
    if errors:
        raise ValidationError(errors)
    sums: dict[tuple[dt.date, str | None, str | None], tuple[int, Decimal]] = {}
    for i, order in enumerate(entities_of(orders, "orders", Order)):
        where = f"orders[{i}]"
        when = aware(order.occurred_at, f"{where}.occurred_at").date()
        if not within(when, lo, hi):
            continue
        amount = money(order.amount, when, where)
        key = (
            period_start(when, period),
            _group_value(regions or {}, order.customer_id, "regions") if "region" in groups else None,
            _group_value(owners or {}, order.customer_id, "owners") if "owner" in groups else None,
        )
        n, total = sums.get(key, (0, Decimal(0)))
        sums[key] = (n + 1, total + amount)
    return series_report(sums, period, lo, hi, money.currency)


# ---------------------------------------------------------------------------------------------------
# forecasting
# ---------------------------------------------------------------------------------------------------


def _statsmodels() -> tuple[Any, Any, Any]:
    """``(ETSModel, numpy, pandas)``, imported on first use."""
    try:
        ets = importlib.import_module("statsmodels.tsa.exponential_smoothing.ets")
        np = importlib.import_module("numpy")
        pd = importlib.import_module("pandas")
    except ImportError:
        raise MissingDependencyError(
            'sales forecasts need statsmodels: pip install "pycrm[forecast]" (or pip install "statsmodels>=0.14")'
        ) from None
    return ets.ETSModel, np, pd


@attrs.frozen
class ForecastPoint:
    """One forecast period (of one group): the point forecast and its prediction interval."""

    period: str
    start: dt.date
    region: str | None
    owner_id: str | None
    value: Decimal
    lower: Decimal
    upper: Decimal


@attrs.frozen
class BacktestRow:
    """The backtest of one series (see the module): ``mase`` of the model, ``naive_mase`` of the seasonal-
    naive forecast on the same folds, ``relative`` = mase / naive_mase (below 1: the model does better),
    ``mape`` and ``smape`` in percent (``None`` when undefined: a series of zeros)."""

    region: str | None
    owner_id: str | None
    method: str
    folds: int
    horizon: int
    mae: float
    mase: float | None
    naive_mase: float | None
    relative: float | None
    mape: float | None
    smape: float | None


@attrs.frozen
class _Fit:
    method: str
    mean: list[float]
    lower: list[float]
    upper: list[float]


def _check_forecast_args(horizon: Any, measure: Any, seasonal: Any, level: Any) -> None:
    errors = []
    if not isinstance(horizon, int) or isinstance(horizon, bool):
        errors.append(FieldError("horizon", "type", f"expected a whole number of periods, got {type(horizon).__name__}"))
    elif not 1 <= horizon <= MAX_HORIZON:
        errors.append(FieldError("horizon", "out_of_range", f"{horizon} is outside 1..{MAX_HORIZON} periods"))
    if measure not in MEASURES:
        errors.append(FieldError("measure", "invalid_choice", f"{quote(measure)} is not one of {', '.join(MEASURES)}"))
    if seasonal not in _SEASONAL:
        errors.append(FieldError("seasonal", "invalid_choice", f"{quote(seasonal)} is not one of auto, add, mul or None"))
    if not isinstance(level, float | int) or isinstance(level, bool) or not 0 < level < 1:
        errors.append(FieldError("level", "out_of_range", f"{quote(level)} is not a probability between 0 and 1 (e.g. 0.95)"))
    if errors:
        raise ValidationError(errors)


def _label(group: Group, groups: tuple[str, ...]) -> str:
    parts = [f"{g} {quote(v)}" for g, v in zip(("region", "owner"), group) if g in groups]
    return "the series of " + ", ".join(parts) if parts else "the series"


def _candidates(y: list[float], season: int, seasonal: str | None, where: str, field: str = "seasonal") -> list[dict[str, Any]]:
    """The ETS models to try on ``y``: seasonal ones with two seasons of history, else trend-only ones."""
    n = len(y)
    positive = all(v > 0 for v in y)
    if seasonal in ("add", "mul"):
        if season < 2:
            raise ValidationError([FieldError(field, "invalid", "a yearly series has no seasonality; use seasonal=None")])
        if n < 2 * season:
            needs = f"seasonality needs two seasons of history ({2 * season} periods), {where} has {n}"
            raise ValidationError([FieldError("history", "too_short", needs)])
        if seasonal == "mul" and not positive:
            needs = f"multiplicative seasonality needs positive values, {where} has a zero"
            raise ValidationError([FieldError(field, "invalid", needs)])
    if n < MIN_HISTORY:
        needs = f"a forecast needs at least {MIN_HISTORY} periods of history, {where} has {n}"
        if season >= 2:
            needs += f" (and {2 * season} for seasonality)"
        raise ValidationError([FieldError("history", "too_short", needs)])
    kinds: list[str | None]
    if seasonal in ("add", "mul"):
        kinds = [seasonal]
    elif seasonal == "auto" and season >= 2 and n >= 2 * season:
        kinds = ["add", "mul"] if positive else ["add"]
    else:
        kinds = [None]
    out = []
    for s in kinds:
        for trend, damped in ((None, False), ("add", False), ("add", True)):
            error = "mul" if s == "mul" else "add"
            spec: dict[str, Any] = {"error": error, "trend": trend, "seasonal": s, "damped_trend": damped}
            if s is not None:
                spec["seasonal_periods"] = season
            out.append(spec)
    return out


def _name(spec: Mapping[str, Any]) -> str:
    letter = {None: "N", "add": "A", "mul": "M"}
    trend = "N" if spec["trend"] is None else "Ad" if spec["damped_trend"] else "A"
    return f"ETS({letter[spec['error']]},{trend},{letter[spec['seasonal']]})"


def _fit(y: list[float], horizon: int, specs: list[dict[str, Any]], level: float, where: str) -> _Fit:
    """The forecast of the candidate with the lowest AICc (a constant series: that constant)."""
    if max(y) == min(y):
        flat = [y[-1]] * horizon
        return _Fit("constant", flat, flat, flat)
    ets_model, np, pd = _statsmodels()
    series = pd.Series(np.asarray(y, dtype=float))
    # initial states from the first seasons (Hyndman et al. 2008): far faster than estimating a dozen
    # seasonal states by likelihood; statsmodels needs ten values (two seasons for seasonal models)
    init = "heuristic" if len(y) >= 10 else "estimated"
    best: tuple[float, Any, dict[str, Any]] | None = None
    for spec in specs:
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                fitted = ets_model(series, initialization_method=init, **spec).fit(disp=False)
        except (ValueError, np.linalg.LinAlgError):
            continue
        score = float(fitted.aicc)
        if math.isfinite(score) and (best is None or score < best[0]):
            best = (score, fitted, spec)
    if best is None:
        raise ValidationError([FieldError("history", "no_fit", f"no exponential-smoothing model fits {where}")])
    _, fitted, spec = best
    n = len(y)
    kwargs: dict[str, Any] = {}
    if spec["error"] == "mul" or spec["seasonal"] == "mul":  # intervals simulated: a fixed seed, the same every run
        params = inspect.signature(fitted.simulate).parameters
        kwargs["rng" if "rng" in params else "random_state"] = np.random.default_rng(0) if "rng" in params else 0
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        frame = fitted.get_prediction(start=n, end=n + horizon - 1, **kwargs).summary_frame(alpha=1 - level)
    mean = [float(v) for v in frame["mean"]]
    lower = [float(v) for v in frame["pi_lower"]]
    upper = [float(v) for v in frame["pi_upper"]]
    if not all(math.isfinite(v) for v in (*mean, *lower, *upper)):
        raise ValidationError([FieldError("history", "no_fit", f"the forecast of {where} is not finite")])
    return _Fit(_name(spec), mean, lower, upper)


def _money(value: float) -> Decimal:
    return quantize(Decimal(repr(max(0.0, value))), 2)


def _snaive(train: list[float], horizon: int, season: int) -> list[float]:
    m = season if season >= 2 and len(train) >= season else 1
    return [train[len(train) - m + (i % m)] for i in range(horizon)]


def _scale(train: list[float], season: int) -> float:
    m = season if season >= 2 and len(train) > season else 1
    diffs = [abs(train[i] - train[i - m]) for i in range(m, len(train))]
    return sum(diffs) / len(diffs) if diffs else 0.0


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@attrs.frozen(eq=False)
class SalesForecast:
    """The forecast of a sales series: ``points`` (a Report of :class:`ForecastPoint`), the ``history`` it
    was fitted on, the model chosen per group (``methods``), and :meth:`evaluate`, a backtest."""

    measure: str
    period: str
    horizon: int
    level: float
    currency: str | None
    groups: tuple[str, ...]
    points: Report[ForecastPoint]
    history: Report[SalesSeriesRow]
    methods: Mapping[Group, str]
    seasonal: str | None = "auto"

    def _repr_html_(self) -> str:
        """The forecast's settings and models, then its points (the first rows of them)."""
        models = "; ".join(f"{' / '.join(str(v) for v in g if v is not None) or 'all'}: {m}" for g, m in self.methods.items())
        items = [
            ("measure", self.measure),
            ("period", self.period),
            ("horizon", self.horizon),
            ("level", self.level),
            ("currency", self.currency),
            ("by", ", ".join(self.groups)),
            ("models", models),
        ]
        return key_value_table("Sales forecast", items) + "\n" + self.points._repr_html_()

    @property
    def method(self) -> str | None:
        """The model of a forecast of one series (``None`` when split into several)."""
        return next(iter(self.methods.values())) if len(self.methods) == 1 else None

    def _series(self) -> dict[Group, list[float]]:
        out: dict[Group, list[float]] = {}
        for r in self.history:
            out.setdefault((r.region, r.owner_id), []).append(float(r.revenue if self.measure == "revenue" else r.orders))
        return out

    def evaluate(self, *, folds: int = 3, horizon: int | None = None) -> Report[BacktestRow]:
        """Backtest on the history: ``folds`` rolling origins (the last ``folds`` periods from which
        ``horizon`` periods, default the forecast's, can still be checked), each model refitted on the
        periods before its origin; one row per series. A history too short for one fold: ValidationError
        saying how many periods are needed."""
        h = self.horizon if horizon is None else horizon
        _check_forecast_args(h, self.measure, self.seasonal, self.level)
        if not isinstance(folds, int) or isinstance(folds, bool) or not 1 <= folds <= 100:
            raise ValidationError([FieldError("folds", "out_of_range", f"{quote(folds)} is outside 1..100")])
        season = SEASONS[self.period]
        rows = []
        for group, y in self._series().items():
            where = _label(group, self.groups)
            least = MIN_HISTORY if self.seasonal in ("auto", None) else 2 * season
            n = len(y)
            if n - h < least:
                needs = f"a backtest over {h} periods needs at least {least + h} periods of history, {where} has {n}"
                raise ValidationError([FieldError("history", "too_short", needs)])
            origins = list(range(max(least, n - h - folds + 1), n - h + 1))
            errors: list[float] = []
            mases: list[float] = []
            naive_mases: list[float] = []
            ape: list[float] = []
            sape: list[float] = []
            method = ""
            for t in origins:
                train, truth = y[:t], y[t : t + h]
                fit = _fit(train, h, _candidates(train, season, self.seasonal, where), self.level, where)
                method = fit.method
                guess = [max(0.0, v) for v in fit.mean]
                naive = _snaive(train, h, season)
                err = [abs(a - b) for a, b in zip(truth, guess)]
                errors += err
                scale = _scale(train, season)
                if scale > 0:
                    mases.append(sum(err) / len(err) / scale)
                    naive_mases.append(sum(abs(a - b) for a, b in zip(truth, naive)) / len(truth) / scale)
                ape += [100 * e / abs(a) for a, e in zip(truth, err) if a != 0]
                sape += [200 * e / (abs(a) + abs(b)) for a, b, e in zip(truth, guess, err) if abs(a) + abs(b) > 0]
            mase = sum(mases) / len(mases) if mases else None
            naive_mase = sum(naive_mases) / len(naive_mases) if naive_mases else None
            relative = mase / naive_mase if mase is not None and naive_mase else None
            rows.append(
                BacktestRow(
                    group[0],
                    group[1],
                    method,
                    len(origins),
                    h,
                    round(sum(errors) / len(errors), 4),
                    _rounded(mase),
                    _rounded(naive_mase),
                    _rounded(relative),
                    _rounded(sum(ape) / len(ape) if ape else None),
                    _rounded(sum(sape) / len(sape) if sape else None),
                )
            )
        return Report(BacktestRow, rows, title=f"Backtest of the {self.measure} forecast (MASE)", x="method", y="mase")

    def to_dict(self) -> dict[str, Any]:
        """Plain values (dates and Decimals as text): measure, period, horizon, level, currency, methods, points."""
        return {
            "measure": self.measure,
            "period": self.period,
            "horizon": self.horizon,
            "level": self.level,
            "currency": self.currency,
            "by": list(self.groups),
            "methods": [{"region": g[0], "owner_id": g[1], "method": m} for g, m in self.methods.items()],
            "points": [
                {
                    **attrs.asdict(p),
                    "start": p.start.isoformat(),
                    "value": str(p.value),
                    "lower": str(p.lower),
                    "upper": str(p.upper),
                }
                for p in self.points
            ],
        }


def forecast_series(
    history: Report[SalesSeriesRow],
    *,
    period: str,
    horizon: int = 6,
    measure: str = "revenue",
    seasonal: str | None = "auto",
    level: float = 0.95,
    by: str | Sequence[str] = (),
) -> SalesForecast:
    """The forecast of a series of :func:`sales_series` (``by``: the groups it was split by); see
    :func:`forecast_sales`. Shared by the pure function and ``s.analytics.forecast_sales``."""
    _check_forecast_args(horizon, measure, seasonal, level)
    _statsmodels()
    period = check_series_period(period)
    groups = series_groups(by)
    if not history:
        raise ValidationError([FieldError("history", "too_short", f"no orders to forecast from (needs {MIN_HISTORY} periods)")])
    first = history[0]
    season = SEASONS[period]
    series: dict[Group, list[SalesSeriesRow]] = {}
    for r in history:
        series.setdefault((r.region, r.owner_id), []).append(r)
    points = []
    methods: dict[Group, str] = {}
    for group, rows in series.items():
        where = _label(group, groups)
        y = [float(r.revenue if measure == "revenue" else r.orders) for r in rows]
        fit = _fit(y, horizon, _candidates(y, season, seasonal, where), float(level), where)
        methods[group] = fit.method
        at = rows[-1].start
        for k in range(horizon):
            at = next_start(at, period)
            points.append(
                ForecastPoint(
                    period_label(at, period),
                    at,
                    group[0],
                    group[1],
                    _money(fit.mean[k]),
                    _money(fit.lower[k]),
                    _money(fit.upper[k]),
                )
            )
    title = f"Forecast of {measure} by {period} ({level:.0%} intervals)"
    currency = first.currency if measure == "revenue" else None
    report = Report(ForecastPoint, points, title=title, x="period", y="value", currency=currency)
    return SalesForecast(measure, period, horizon, float(level), first.currency, groups, report, history, methods, seasonal)


def forecast_sales(
    orders: Iterable[Any],
    *,
    horizon: int = 6,
    period: str = "month",
    measure: str = "revenue",
    by: str | Sequence[str] = (),
    seasonal: str | None = "auto",
    level: float = 0.95,
    rates: RateTable | None = None,
    start: dt.date | dt.datetime | str | None = None,
    end: dt.date | dt.datetime | str | None = None,
    regions: Mapping[str, str | None] | None = None,
    owners: Mapping[str, str | None] | None = None,
) -> SalesForecast:
    """Forecast ``horizon`` periods of ``measure`` (``revenue`` or ``orders``) from the :func:`sales_series`
    of ``orders`` (one forecast per group with ``by``), with prediction intervals at ``level``; see the
    module. Needs statsmodels (``pip install "pycrm[forecast]"``): without it MissingDependencyError, a
    CRMError. ``end`` should be the last day of the last *complete* period: a period still under way
    looks like a slump.

    >>> from pycrm.domain import Money, Order
    >>> book = [Order("a", dt.datetime(2024, m, 5, tzinfo=dt.UTC), Money(100 + 10 * m, "CNY")) for m in range(1, 9)]
    >>> fc = forecast_sales(book, horizon=2, period="month")
    >>> [p.period for p in fc.points], fc.method.startswith("ETS(")
    (['2024-09', '2024-10'], True)
    >>> all(p.lower <= p.value <= p.upper for p in fc.points)
    True
    """
    _check_forecast_args(horizon, measure, seasonal, level)
    _statsmodels()  # before reading anything
    history = sales_series(orders, period=period, by=by, rates=rates, start=start, end=end, regions=regions, owners=owners)
    return forecast_series(history, period=period, horizon=horizon, measure=measure, seasonal=seasonal, level=level, by=by)
