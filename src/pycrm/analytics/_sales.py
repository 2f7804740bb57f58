"""Sales reports over opportunities: weighted forecast, funnel and time in stage, win rate, sales cycle.

The reference semantics (a database pushdown must agree exactly):

- **Money.** Every report is in one currency. Without a :class:`RateTable` all amounts must share a
  currency (another one raises ``ValidationError`` naming it and the date); with one, each amount is
  converted to ``rates.base`` at the rate of the report date of its row (below), rounded half-even to 4
  places like :class:`~pycrm.domain.Money` arithmetic.
- **Dates.** An opportunity's forecast date is ``expected_close``, or for a closed deal without one the UTC
  date of ``closed_at``; a deal without either lands in period ``None``. Win rate and sales cycle use the
  UTC date of ``closed_at`` (falling back to ``expected_close``). ``start``/``end`` are inclusive days and
  keep undated rows (period ``None``).
- **Forecast.** Lost deals count zero, won deals their full amount, open deals ``amount × probability``
  (the stage's probability, or ``probability_override``), each rounded half-even to 4 places.
- **Funnel.** A deal *reached* a step when its history (initial stage, every stage moved to) shows it in
  that step or a later one: steps are the pipeline's open stages in order, then its won stage, so a
  skipped stage still counts as passed and the funnel never widens. ``conversion`` is reached(next step)
  / reached(step). Time in stage counts completed stays only: from entering the stage (``created_at`` for
  the first stage) to the next move.
- **Win rate** = won / (won + lost) of deals closed in the period; **sales cycle** = days from
  ``created_at`` to ``closed_at`` of won deals (fractional days; deals without ``created_at`` are left out).
- Ratios are Decimals rounded half-even to 4 places, days to 2; an undefined ratio or mean is ``None``.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from pycrm.analytics._common import (
    DAY_US,
    as_tuple,
    aware,
    check_period,
    check_range,
    day,
    entities_of,
    mean_median_us,
    micros,
    opt_aware,
    period_label,
    quantize,
    ratio,
    sort_key,
    within,
)
from pycrm.analytics._report import Report
from pycrm.domain import DEFAULT_PIPELINE, Money, Opportunity, Pipeline, Stage, StageKind, get_pipeline
from pycrm.domain._values import _check_currency, _to_decimal
from pycrm.errors import FieldError, ValidationError

__all__ = [
    "ForecastRow",
    "FunnelRow",
    "RateTable",
    "SalesCycleRow",
    "WinRateRow",
    "forecast",
    "funnel",
    "sales_cycle",
    "win_rate",
]

# ---------------------------------------------------------------------------------------------
# Currency rates
# ---------------------------------------------------------------------------------------------


def _rate_entries(value: Any) -> tuple[tuple[str, dt.date, Decimal], ...]:
    """(currency, date, rate) sorted, from ``{(currency, date): rate}`` or (currency, date, rate) triples."""
    if isinstance(value, Mapping):
        items = [(*k, v) if isinstance(k, tuple) else (k, None, v) for k, v in value.items()]
    else:
        try:
            items = [tuple(x) for x in value]
        except TypeError:
            expected = "expected {(currency, date): rate} or (currency, date, rate) rows"
            raise ValidationError([FieldError("rates", "type", expected)]) from None
    errors: list[FieldError] = []
    seen: dict[tuple[str, dt.date], Decimal] = {}
    for i, item in enumerate(items):
        if len(item) != 3:
            errors.append(FieldError(f"rates[{i}]", "type", "expected (currency, date, rate)"))
            continue
        cur, on, rate = item
        where = f"rates[{i}]"
        try:
            cur = _check_currency(cur, f"{where}.currency")
            where = f"rates[{cur} {on}]"
            on = day(on, f"{where}.date")
            rate = _to_decimal(rate, where)
            if rate <= 0:
                raise ValidationError([FieldError(where, "range", f"a rate must be positive, got {rate}")])
        except ValidationError as exc:
            errors += exc.errors
            continue
        if seen.get((cur, on), rate) != rate:
            errors.append(FieldError(where, "conflict", f"two different {cur} rates on {on}"))
        seen[(cur, on)] = rate
    if errors:
        raise ValidationError(errors)
    return tuple(sorted((c, d, r) for (c, d), r in seen.items()))


def _base(value: Any) -> str:
    return _check_currency(value, "base")


@attrs.frozen
class RateTable:
    """Dated exchange rates into one ``base`` currency: 1 unit of ``currency`` is worth ``rate`` of base.

    A lookup uses the latest rate dated on or before the day asked for; the base itself is always 1.
    Rates are Decimals (or decimal strings); floats are refused like in ``Money``.

    >>> rt = RateTable("CNY", {("USD", dt.date(2024, 1, 1)): "7.10", ("USD", dt.date(2024, 3, 1)): "7.20"})
    >>> rt.rate("USD", dt.date(2024, 2, 15)), rt.rate("usd", "2024-03-01"), rt.rate("CNY", dt.date(1999, 1, 1))
    (Decimal('7.10'), Decimal('7.20'), Decimal('1'))
    >>> rt.convert(Money(100, "USD"), dt.date(2024, 4, 1))
    Money(amount=Decimal('720.0000'), currency='CNY')
    >>> rt.rate("USD", dt.date(2023, 12, 31))
    Traceback (most recent call last):
    ...
    pycrm.errors.ValidationError: rates.USD: no USD to CNY rate on or before 2023-12-31
    """

    base: str = attrs.field(converter=_base)
    entries: tuple[tuple[str, dt.date, Decimal], ...] = attrs.field(default=(), converter=_rate_entries)

    def __attrs_post_init__(self) -> None:
        wrong = [e for e in self.entries if e[0] == self.base and e[2] != 1]
        if wrong:
            raise ValidationError([FieldError(f"rates[{self.base} {wrong[0][1]}]", "range", "the base currency's rate is 1")])

    @property
    def currencies(self) -> frozenset[str]:
        """Every currency the table converts (the base included)."""
        return frozenset({self.base, *(c for c, _, _ in self.entries)})

    def rate(self, currency: str, on: dt.date | dt.datetime | str) -> Decimal:
        """Units of ``base`` per unit of ``currency`` on a day; ValidationError naming both when unknown."""
        cur = _check_currency(currency, "currency")
        when = day(on, "date")
        if cur == self.base:
            return Decimal(1)
        i = bisect_right(self.entries, (cur, when), key=lambda e: (e[0], e[1]))
        if i and self.entries[i - 1][0] == cur:
            return self.entries[i - 1][2]
        day_text = "ever" if when == dt.date.max else f"on or before {when.isoformat()}"
        raise ValidationError([FieldError(f"rates.{cur}", "missing_rate", f"no {cur} to {self.base} rate {day_text}")])

    def convert(self, money: Money, on: dt.date | dt.datetime | str) -> Money:
        """``money`` in the base currency, at the rate of ``on`` (rounded half-even to 4 places)."""
        if money.currency == self.base:
            return money
        return Money(money.amount, self.base) * self.rate(money.currency, on)


class _Converter:
    """Amounts of one report in one currency: through the rate table, or all in the first currency met."""

    def __init__(self, rates: RateTable | None):
        if rates is not None and not isinstance(rates, RateTable):
            raise ValidationError([FieldError("rates", "type", f"expected a RateTable, got {type(rates).__name__}")])
        self.rates = rates
        self.currency: str | None = rates.base if rates is not None else None

    def __call__(self, money: Any, on: dt.date | None, where: str) -> Decimal:
        if not isinstance(money, Money):
            raise ValidationError([FieldError(f"{where}.amount", "type", f"expected Money, got {type(money).__name__}")])
        if self.rates is not None:
            return self.rates.convert(money, on or dt.date.max).amount
        if self.currency is None:
            self.currency = money.currency
        elif money.currency != self.currency:
            when = f" on {on.isoformat()}" if on is not None else ""
            raise ValidationError(
                [
                    FieldError(
                        f"{where}.amount.currency",
                        "currency_mismatch",
                        f"{money.currency}{when} differs from {self.currency}; pass rates=RateTable(...) to convert",
                    )
                ]
            )
        return money.amount


# ---------------------------------------------------------------------------------------------
# Reading opportunities
# ---------------------------------------------------------------------------------------------


def _stage_of(opp: Any, where: str) -> Stage:
    pipeline = getattr(opp, "pipeline", None)
    if not isinstance(pipeline, Pipeline):
        raise ValidationError([FieldError(f"{where}.pipeline", "type", "expected a Pipeline (is this an Opportunity?)")])
    try:
        return pipeline.stage(opp.stage)
    except ValidationError as exc:
        raise exc.prefixed(where) from None


def _forecast_day(opp: Any, stage: Stage, where: str) -> dt.date | None:
    if opp.expected_close is not None:
        return opp.expected_close  # type: ignore[no-any-return]
    if stage.is_closed:
        closed = opt_aware(opp.closed_at, f"{where}.closed_at")
        return closed.date() if closed else None
    return None


def _closed_day(opp: Any, where: str) -> dt.date | None:
    closed = opt_aware(opp.closed_at, f"{where}.closed_at")
    if closed is not None:
        return closed.date()
    return opp.expected_close  # type: ignore[no-any-return]


def _probability(opp: Any, stage: Stage) -> Decimal:
    override = getattr(opp, "probability_override", None)
    return override if override is not None else stage.probability


# ---------------------------------------------------------------------------------------------
# Forecast
# ---------------------------------------------------------------------------------------------

FORECAST_GROUPS = ("owner", "stage", "category", "region")


@attrs.frozen
class ForecastRow:
    """One group of a weighted forecast. Group fields not asked for are ``None``.

    ``deals`` counts every deal in the group (lost ones too); ``open_amount`` and ``won_amount`` are
    unweighted; ``weighted`` = won in full + open × probability. ``region``: the customer's country.
    """

    period: str | None
    owner_id: str | None
    stage: str | None
    forecast_category: str | None
    currency: str | None
    deals: int
    open_amount: Decimal
    won_amount: Decimal
    weighted: Decimal
    region: str | None = None


def forecast(
    opportunities: Iterable[Any],
    *,
    period: str | None = "month",
    by: str | Sequence[str] = (),
    rates: RateTable | None = None,
    start: dt.date | dt.datetime | str | None = None,
    end: dt.date | dt.datetime | str | None = None,
    regions: Mapping[str, str | None] | None = None,
) -> Report[ForecastRow]:
    """Pipeline-weighted forecast per period of the forecast date, optionally by owner, stage, category or
    region.

    ``by`` names extra groups among ``owner``, ``stage``, ``category`` (the stage's forecast category) and
    ``region`` (the customer's country: ``regions`` maps customer ids to countries; a customer missing from
    it gives the ``None`` group). Rows are sorted by period (``None``, the undated deals, last), then the
    groups (``None`` last).

    >>> from pycrm.domain import Opportunity
    >>> a = Opportunity("c1", "A", Money(1000, "CNY"), stage="proposal", expected_close=dt.date(2024, 1, 20))
    >>> b = Opportunity("c1", "B", Money(500, "CNY"), stage="negotiation", expected_close=dt.date(2024, 1, 5))
    >>> c = Opportunity("c2", "C", Money(200, "CNY"), stage="prospecting", expected_close=dt.date(2024, 2, 1))
    >>> b.win(at=dt.datetime(2024, 1, 5, tzinfo=dt.UTC))
    >>> for row in forecast([a, b, c]):
    ...     print(row.period, row.deals, row.open_amount, row.won_amount, row.weighted)
    2024-01 2 1000 500 1100.0000
    2024-02 1 200 0 20.0000
    >>> [(r.region, r.weighted) for r in forecast([a, b, c], period=None, by="region", regions={"c1": "CN"})]
    [('CN', Decimal('1100.0000')), (None, Decimal('20.0000'))]
    """
    period = check_period(period)
    groups = as_tuple(by, FORECAST_GROUPS)
    lo, hi = check_range(start, end)
    money = _Converter(rates)
    if "region" in groups and not isinstance(regions, Mapping):
        needs = "grouping by region needs regions: a mapping of customer id to country"
        raise ValidationError([FieldError("regions", "required", needs)])
    sums: dict[tuple[Any, ...], list[Any]] = {}
    order: dict[str, int] = {}
    for i, opp in enumerate(entities_of(opportunities, "opportunities", Opportunity)):
        where = f"opportunities[{i}]"
        stage = _stage_of(opp, where)
        when = _forecast_day(opp, stage, where)
        if when is not None and not within(when, lo, hi):
            continue
        amount = money(opp.amount, when, where)
        key = (
            None if when is None else period_label(when, period),
            opp.owner_id if "owner" in groups else None,
            stage.name if "stage" in groups else None,
            stage.forecast_category.value if "category" in groups else None,
            _region(regions or {}, opp.customer_id) if "region" in groups else None,
        )
        order.setdefault(stage.name, opp.pipeline.stage_names.index(stage.name))
        s = sums.setdefault(key, [0, Decimal(0), Decimal(0), Decimal(0)])
        s[0] += 1
        if stage.kind is StageKind.WON:
            s[2] += amount
            s[3] += amount
        elif stage.kind is StageKind.OPEN:
            s[1] += amount
            s[3] += quantize(amount * _probability(opp, stage), 4)

    rows = []
    for k in sorted(sums, key=forecast_order(order)):
        deals, open_amount, won_amount, weighted = sums[k]
        rows.append(ForecastRow(k[0], k[1], k[2], k[3], money.currency, deals, open_amount, won_amount, weighted, k[4]))
    return Report(ForecastRow, rows, title="Weighted forecast", x="period", y="weighted")


def _region(regions: Mapping[str, Any], customer_id: str) -> str | None:
    value = regions.get(customer_id)
    if value is not None and not isinstance(value, str):
        problem = f"expected a country code or None, got {type(value).__name__}"
        raise ValidationError([FieldError(f"regions[{customer_id!r}]", "type", problem)])
    return value


def forecast_order(order: Mapping[str, int]) -> Any:
    """The sort key of a forecast group (period, owner, stage, category, region), stages in pipeline
    ``order`` (stage name -> position); shared with the SQL pushdown."""

    def sort(k: tuple[Any, ...]) -> tuple[Any, ...]:
        stage = sort_key(None if k[2] is None else (order[k[2]], k[2]))
        return (sort_key(k[0]), sort_key(k[1]), stage, sort_key(k[3]), sort_key(k[4]))

    return sort


# ---------------------------------------------------------------------------------------------
# Funnel and time in stage
# ---------------------------------------------------------------------------------------------


@attrs.frozen
class FunnelRow:
    """One step of a pipeline's funnel and the completed stays in that stage.

    ``reached``: deals that got to this step or further; ``conversion``: share of them that reached the
    next step (``None`` for the last step); ``stays``, ``mean_days``, ``median_days``: completed stays.
    """

    stage: str
    reached: int
    conversion: Decimal | None
    stays: int
    mean_days: Decimal | None
    median_days: Decimal | None


def funnel(opportunities: Iterable[Any], *, pipeline: Pipeline | str = DEFAULT_PIPELINE) -> Report[FunnelRow]:
    """Per step of ``pipeline``: how many deals reached it, conversion to the next step, time spent in it.

    Only deals of that pipeline (matched by name) count; no such deal gives an empty report.

    >>> from pycrm.domain import Opportunity
    >>> t0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    >>> deals = [Opportunity("c1", f"D{k}", Money(100, "CNY"), created_at=t0) for k in range(4)]
    >>> deals[0].move_to("qualification", at=t0 + dt.timedelta(days=2))
    >>> deals[0].win(at=t0 + dt.timedelta(days=5))
    >>> deals[1].move_to("proposal", at=t0 + dt.timedelta(days=4))
    >>> deals[1].lose("price", at=t0 + dt.timedelta(days=10))
    >>> for row in funnel(deals):
    ...     print(row.stage, row.reached, row.conversion, row.stays, row.mean_days)
    prospecting 4 0.5000 2 3.00
    qualification 2 1.0000 1 3.00
    needs_analysis 2 1.0000 0 None
    proposal 2 0.5000 1 6.00
    negotiation 1 1.0000 0 None
    closed_won 1 None 0 None
    """
    pipeline = _funnel_pipeline(pipeline)

    def records() -> Iterable[tuple[str, dt.datetime | None, list[tuple[str | None, str, dt.datetime]]]]:
        for i, opp in enumerate(entities_of(opportunities, "opportunities", Opportunity)):
            where = f"opportunities[{i}]"
            if getattr(getattr(opp, "pipeline", None), "name", None) != pipeline.name:
                continue
            moves = [
                (c.from_stage, c.to_stage, aware(c.at, f"{where}.stage_history[{j}].at")) for j, c in enumerate(opp.stage_history)
            ]
            yield opp.stage, opt_aware(opp.created_at, f"{where}.created_at"), moves

    return funnel_of(pipeline, records())


def _funnel_pipeline(pipeline: Any) -> Pipeline:
    if isinstance(pipeline, str):
        pipeline = get_pipeline(pipeline)
    if not isinstance(pipeline, Pipeline):
        raise ValidationError([FieldError("pipeline", "type", f"expected a Pipeline or its name, got {type(pipeline).__name__}")])
    return pipeline


def funnel_of(
    pipeline: Pipeline, records: Iterable[tuple[str, dt.datetime | None, Sequence[tuple[str | None, str, dt.datetime]]]]
) -> Report[FunnelRow]:
    """The funnel from (current stage, created_at, [(from_stage, to_stage, at), ...]) per deal of ``pipeline``
    (date-times aware): the core of :func:`funnel`, shared with the SQL adapter, which reads these columns."""
    steps = [s.name for s in pipeline.stages if s.kind is StageKind.OPEN] + [
        s.name for s in pipeline.stages if s.kind is StageKind.WON
    ]
    index = {name: k for k, name in enumerate(steps)}
    open_steps = {s.name for s in pipeline.stages if s.kind is StageKind.OPEN}
    reached = [0] * len(steps)
    stays: dict[str, list[int]] = defaultdict(list)
    seen = 0
    for stage, created, history in records:
        seen += 1
        visited = {stage, *(c[1] for c in history), *(c[0] for c in history)}
        furthest = max((index[s] for s in visited if s in index), default=-1)
        for k in range(furthest + 1):
            reached[k] += 1
        entered = created
        for left, _, at in history:
            if entered is not None and left is not None and at >= entered and left in open_steps:
                stays[left].append(micros(at - entered))
            entered = at
    if not seen:
        return Report(FunnelRow, title=f"Funnel of pipeline {pipeline.name!r}", x="stage", y="reached")
    rows = []
    for k, name in enumerate(steps):
        conversion = ratio(reached[k + 1], reached[k]) if k + 1 < len(steps) else None
        spans = stays.get(name, [])
        mean, median = mean_median_us(spans, DAY_US)
        rows.append(FunnelRow(name, reached[k], conversion, len(spans), mean, median))
    return Report(FunnelRow, rows, title=f"Funnel of pipeline {pipeline.name!r}", x="stage", y="reached")


# ---------------------------------------------------------------------------------------------
# Win rate and sales cycle
# ---------------------------------------------------------------------------------------------


@attrs.frozen
class WinRateRow:
    """Deals closed in a period (by owner when asked): ``win_rate`` = won / (won + lost), ``None`` if neither."""

    period: str | None
    owner_id: str | None
    won: int
    lost: int
    win_rate: Decimal | None


def win_rate(
    opportunities: Iterable[Any],
    *,
    period: str | None = "month",
    by: str | Sequence[str] = (),
    start: dt.date | dt.datetime | str | None = None,
    end: dt.date | dt.datetime | str | None = None,
) -> Report[WinRateRow]:
    """Won and lost deals per period of closing (``by="owner"`` splits by owner); open deals are ignored.

    >>> from pycrm.domain import Opportunity
    >>> at = dt.datetime(2024, 2, 10, tzinfo=dt.UTC)
    >>> deals = [Opportunity("c1", f"D{k}", Money(100, "CNY")) for k in range(4)]
    >>> deals[0].win(at=at); deals[1].win(at=at); deals[2].lose("price", at=at)
    >>> win_rate(deals, period="quarter")
    Report(WinRateRow, [WinRateRow(period='2024-Q1', owner_id=None, won=2, lost=1, win_rate=Decimal('0.6667'))])
    """
    period = check_period(period)
    groups = as_tuple(by, ("owner",))
    lo, hi = check_range(start, end)
    counts: dict[tuple[str | None, str | None], list[int]] = {}
    for i, opp in enumerate(entities_of(opportunities, "opportunities", Opportunity)):
        where = f"opportunities[{i}]"
        stage = _stage_of(opp, where)
        if not stage.is_closed:
            continue
        when = _closed_day(opp, where)
        if when is not None and not within(when, lo, hi):
            continue
        key = (None if when is None else period_label(when, period), opp.owner_id if "owner" in groups else None)
        c = counts.setdefault(key, [0, 0])
        c[0 if stage.kind is StageKind.WON else 1] += 1
    rows = [
        WinRateRow(*k, won, lost, ratio(won, won + lost))
        for k, (won, lost) in sorted(counts.items(), key=lambda kv: (sort_key(kv[0][0]), sort_key(kv[0][1])))
    ]
    return Report(WinRateRow, rows, title="Win rate", x="period", y="win_rate")


@attrs.frozen
class SalesCycleRow:
    """Won deals closed in a period: days from ``created_at`` to ``closed_at``."""

    period: str | None
    owner_id: str | None
    deals: int
    mean_days: Decimal | None
    median_days: Decimal | None


def sales_cycle(
    opportunities: Iterable[Any],
    *,
    period: str | None = "month",
    by: str | Sequence[str] = (),
    start: dt.date | dt.datetime | str | None = None,
    end: dt.date | dt.datetime | str | None = None,
) -> Report[SalesCycleRow]:
    """Sales-cycle length of won deals per period of closing: mean and median days, created to closed.

    >>> from pycrm.domain import Opportunity
    >>> t0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    >>> deals = [Opportunity("c1", f"D{k}", Money(100, "CNY"), created_at=t0) for k in range(3)]
    >>> for k, d in enumerate(deals):
    ...     d.win(at=t0 + dt.timedelta(days=10 * (k + 1), hours=12))
    >>> sales_cycle(deals, period=None)[0]
    SalesCycleRow(period='all', owner_id=None, deals=3, mean_days=Decimal('20.50'), median_days=Decimal('20.50'))
    """
    period = check_period(period)
    groups = as_tuple(by, ("owner",))
    lo, hi = check_range(start, end)
    spans: dict[tuple[str | None, str | None], list[int]] = {}
    for i, opp in enumerate(entities_of(opportunities, "opportunities", Opportunity)):
        where = f"opportunities[{i}]"
        stage = _stage_of(opp, where)
        if stage.kind is not StageKind.WON:
            continue
        created = opt_aware(opp.created_at, f"{where}.created_at")
        closed = opt_aware(opp.closed_at, f"{where}.closed_at")
        if created is None or closed is None or closed < created:
            continue
        when = closed.date()
        if not within(when, lo, hi):
            continue
        key = (period_label(when, period), opp.owner_id if "owner" in groups else None)
        spans.setdefault(key, []).append(micros(closed - created))
    rows = [
        SalesCycleRow(*k, len(v), *mean_median_us(v, DAY_US))
        for k, v in sorted(spans.items(), key=lambda kv: (sort_key(kv[0][0]), sort_key(kv[0][1])))
    ]
    return Report(SalesCycleRow, rows, title="Sales cycle (days, won deals)", x="period", y="mean_days")
