"""Sales, customer and service reports inside the database: the same results as ``pycrm.analytics``.

Reached through ``SQLTransaction.report(name, **kw)``; ``storage/_analytics.py`` calls it with the
parsed conditions (the caller's ``where`` and the actor's scope) and the report's checked arguments.
Every function returns the finished :class:`~pycrm.analytics.Report`, or ``None`` when the data needs
what only the pure function does (an error it would raise with a row index, an unknown pipeline, an
amount beyond exact 64-bit arithmetic on SQLite): the caller then streams entities into the pure function,
which raises or computes exactly as on the memory adapter.

How the figures stay identical to the pure functions:

* counts, sums of money (``amount_e4``: exact integers) and sums of durations (whole microseconds) are
  computed in SQL over small groups (period x owner x pipeline x stage x ...), then merged in Python;
* periods: the first day of the week / month / quarter / year is computed in SQL, labelled in Python;
* medians: ``ROW_NUMBER()`` and ``COUNT(*)`` over each group's partition pick the one or two middle
  durations in SQL; means and medians are then rounded exactly from whole microseconds
  (``pycrm.analytics._common.exact_mean_median``, which the pure functions use too);
* per-deal rounding (a converted amount, amount x probability, each half-even to 4 places) is done per
  row in SQL with integer arithmetic (``_round_div``) on exact integers (SQLite) or NUMERIC/DECIMAL;
* dated currency rates and stage probabilities enter as bound parameters of ``CASE`` expressions;
* the funnel reads only (stage, created_at, stage_history) of the pipeline's deals, in batches through
  a Core select, and shares its counting with the pure function (``funnel_of``).

Every ``where``/scope condition is compiled by the store's condition builder (``tx.queries``) into the
innermost SELECT, with its values bound under the names it chose; constants of the SQL itself (period
keywords) are literals.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import Grouping
from sqlalchemy.sql.sqltypes import NullType
from sqlalchemy.sql.visitors import cloned_traverse

from pycrm.analytics import (
    CustomerActivityRow,
    ForecastRow,
    FunnelRow,
    RateTable,
    Report,
    SalesCycleRow,
    ServiceTimeRow,
    TicketCountRow,
    TopCustomerRow,
    WinRateRow,
)
from pycrm.analytics._basket import (
    MAX_ITEMSET_LEN,
    AlsoBoughtRow,
    BasketCounts,
    FrequentItemsets,
    also_bought_report,
    min_basket_count,
)
from pycrm.analytics._basket import frequent_itemsets as mine_itemsets
from pycrm.analytics._campaigns import CampaignKpiRow, Candidate, Sale, campaign_report
from pycrm.analytics._clv import PurchaseSummary, _new_summary
from pycrm.analytics._common import (
    DAY_US,
    HOUR_US,
    exact_mean_median,
    period_label,
    periods_between,
    previous_start,
    ratio,
    sort_key,
)
from pycrm.analytics._products import ProductSalesRow, sales_report
from pycrm.analytics._sales import forecast_order, funnel_of
from pycrm.analytics._scoring import deal_records
from pycrm.analytics._service import (
    _PRIORITY_ORDER,
    Group,
    SatisfactionRow,
    satisfaction_report,
    ticket_count_report,
)
from pycrm.analytics._timeseries import SalesSeriesRow, series_report
from pycrm.domain import (
    SLA_HOURS,
    Activity,
    Campaign,
    CampaignMember,
    CampaignResponse,
    Customer,
    Interaction,
    Opportunity,
    Order,
    Pipeline,
    Product,
    Stage,
    StageKind,
    Survey,
    Ticket,
    TicketPriority,
    User,
    get_pipeline,
)
from pycrm.errors import ValidationError
from pycrm.storage._where import Condition
from pycrm.storage.sql.mapping import _tags_in as tags_in
from pycrm.storage.sql.mapping import money_in
from pycrm.storage.sql.tables import (
    activities,
    campaign_members,
    campaign_responses,
    customers,
    interactions,
    opportunities,
    order_lines,
    orders,
    products,
    surveys,
    tickets,
    users,
)
from pycrm.storage.sql.tables import orders as orders_table

if TYPE_CHECKING:
    from pycrm.storage.sql.store import SQLTransaction

__all__ = [
    "activity_counts",
    "also_bought",
    "campaign_kpis",
    "customer_activity",
    "forecast",
    "frequent_itemsets",
    "funnel",
    "interaction_times",
    "order_times",
    "product_sales",
    "purchase_summary",
    "sales_cycle",
    "sales_series",
    "satisfaction",
    "scoring_customers",
    "scoring_deals",
    "service_times",
    "sla",
    "ticket_summary",
    "ticket_times",
    "top_customers",
    "win_rate",
]

#: Rate-table entries and probability values a statement may carry as CASE branches.
MAX_CASES = 2000
#: Largest magnitude of an intermediate product in SQLite's 64-bit integers.
_INT64 = 2**63 - 1
_UTC = dt.UTC


# ---------------------------------------------------------------------------------------------------
# plumbing
# ---------------------------------------------------------------------------------------------------


def _filter(
    tx: SQLTransaction, kind: type[Any], conditions: Sequence[Condition], names: list[str] | None = None
) -> tuple[list[Any], dict[str, Any]]:
    """The conditions as SQLAlchemy clauses on ``kind``'s table, and their bound values by name; ``names``:
    the parameter names a statement's other filters took already (their values are not returned again)."""
    names = [] if names is None else names
    taken = len(names)
    clauses, binders = tx.queries._where(kind, list(conditions), names)
    values: list[Any] = []
    for c, bind in zip(conditions, binders):
        values += bind(c.value)
    # the binders give driver-ready values (the adapter's own codec): keep SQLAlchemy from converting again
    wanted = set(names[taken:])

    def raw(bind: Any) -> None:
        if bind.key in wanted:
            bind.type = NullType()

    return [cloned_traverse(c, {}, {"bindparam": raw}) for c in clauses], dict(zip(names[taken:], values))


def _dialect(tx: SQLTransaction) -> str:
    return str(tx.source())  # "sqlite", "postgresql" or "mysql" (MariaDB too)


def _rows(tx: SQLTransaction, stmt: Any, params: dict[str, Any]) -> list[Any]:
    return tx._core(lambda conn: conn.execute(stmt, params).fetchall())  # type: ignore[no-any-return]


def _naive(at: dt.datetime) -> dt.datetime:
    return at.astimezone(_UTC).replace(tzinfo=None)


def _day(d: str, col: Any) -> Any:
    """The (UTC) date of a naive UTC date-time column."""
    if d == "sqlite":
        return sa.func.substr(col, 1, 10)  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff'
    if d == "postgresql":
        return sa.cast(col, sa.Date)
    return sa.func.date(col)


def _date(d: str, value: dt.date) -> Any:
    return sa.literal(value.isoformat(), sa.String) if d == "sqlite" else sa.literal(value, sa.Date)


def _to_date(value: Any) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    y, m, day = str(value)[:10].split("-")
    return dt.date(int(y), int(m), int(day))


def _const(text: str) -> Any:
    """A constant of the SQL itself (a keyword or format chosen here, never a caller's value)."""
    return sa.literal_column(text)


def _idiv(d: str, a: Any, b: Any) -> Any:
    """Integer division of non-negative integers (parenthesized: custom operators carry no precedence)."""
    if d == "postgresql":
        return sa.func.div(a, b, type_=sa.Numeric)
    op = "DIV" if d == "mysql" else "/"
    a, b = (x if isinstance(x, sa.ColumnElement) else sa.literal(x, sa.BigInteger) for x in (a, b))
    return Grouping(Grouping(a).op(op, return_type=sa.BigInteger)(Grouping(b)))


def _period_start(d: str, day: Any, period: str | None, nullable: bool = False) -> Any:
    """The first day of the period holding ``day`` (a date expression); a fixed day for ``None``."""
    if period is None:
        expr: Any = _const("'0001-01-01'")
    elif d == "sqlite":
        if period == "week":
            expr = sa.func.date(day, _const("'-6 days'"), _const("'weekday 1'"))
        elif period == "month":
            expr = sa.func.substr(day, 1, 7).concat(_const("'-01'"))
        elif period == "year":
            expr = sa.func.substr(day, 1, 4).concat(_const("'-01-01'"))
        else:
            month = sa.cast(sa.func.substr(day, 6, 2), sa.Integer)
            first = _idiv(d, month - 1, _const("3")) * 3 + 1
            expr = sa.func.substr(day, 1, 5).concat(sa.func.substr(_const("'0'").concat(first), -2)).concat(_const("'-01'"))
    elif d == "postgresql":
        expr = sa.cast(sa.func.date_trunc(_const(f"'{period}'"), sa.cast(day, sa.DateTime)), sa.Date)
    elif period == "week":
        expr = sa.func.subdate(day, sa.func.weekday(day))
    elif period == "month":
        expr = sa.func.subdate(day, sa.func.dayofmonth(day) - 1)
    elif period == "year":
        expr = sa.func.subdate(day, sa.func.dayofyear(day) - 1)
    else:
        expr = sa.func.concat(sa.func.year(day), _const("'-'"), (sa.func.quarter(day) - 1) * 3 + 1, _const("'-01'"))
    if nullable:
        return sa.case((day.is_(None), sa.null()), else_=expr)
    return expr


def _label(value: Any, period: str | None) -> str | None:
    start = _to_date(value)
    return None if start is None else period_label(start, period)


def _span_us(d: str, a: Any, b: Any) -> Any:
    """Whole microseconds from ``a`` to ``b`` (naive UTC date-time columns), exactly."""
    if d == "sqlite":
        seconds = sa.cast(sa.func.strftime(_const("'%s'"), b), sa.BigInteger) - sa.cast(
            sa.func.strftime(_const("'%s'"), a), sa.BigInteger
        )
        fraction = sa.cast(sa.func.substr(b, 21, 6), sa.BigInteger) - sa.cast(sa.func.substr(a, 21, 6), sa.BigInteger)
        return seconds * 1_000_000 + fraction
    if d == "postgresql":
        epoch = (sa.extract("epoch", b) - sa.extract("epoch", a)) * 1_000_000
        return sa.cast(epoch, sa.Numeric(30, 0))
    return sa.func.timestampdiff(_const("MICROSECOND"), a, b)


def _int(value: Any) -> int:
    return 0 if value is None else int(value)


def _floor_div(d: str, x: Any, den: int) -> Any:
    n = sa.literal(den, sa.BigInteger)
    return sa.case((x >= 0, _idiv(d, x, n)), else_=-_idiv(d, n - 1 - x, n))


def _round_div(d: str, x: Any, den: int) -> Any:
    """``x / den`` rounded half-even to a whole number (``x`` a whole-number expression, ``den`` > 0)."""
    if den == 1:
        return x
    q = _floor_div(d, x, den)
    r = x - q * den
    up = sa.or_(2 * r > den, sa.and_(2 * r == den, q % 2 != 0))
    return q + sa.case((up, 1), else_=0)


def _exact(d: str, col: Any) -> Any:
    """An integer column for exact products: NUMERIC / DECIMAL where the database has one."""
    if d == "postgresql":
        return sa.cast(col, sa.Numeric(38, 0))
    if d == "mysql":
        return sa.cast(col, sa.Numeric(65, 0))
    return col


def _places(value: Decimal) -> int:
    exp = value.normalize().as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


def _scaled(value: Decimal, places: int) -> int:
    return int(value.scaleb(places))


def _amount(sum_e4: Any, scale: Any) -> Decimal:
    """A sum of amounts in 1/10,000 units, written with ``scale`` places (as Decimal addition would)."""
    places = max(0, _int(scale))
    return (Decimal(_int(sum_e4)).scaleb(-4)).quantize(Decimal(1).scaleb(-places))


class _Stages:
    """Stage definitions of the (pipeline, stage) pairs found in the data; None when one is unknown."""

    def __init__(self, pairs: Sequence[tuple[str, str]]):
        self.stage: dict[tuple[str, str], Stage] = {}
        self.pipeline: dict[str, Pipeline] = {}
        for name, stage in pairs:
            pipeline = self.pipeline.get(name)
            if pipeline is None:
                pipeline = self.pipeline[name] = get_pipeline(name)
            self.stage[(name, stage)] = pipeline.stage(stage)

    def pairs(self, kinds: Sequence[StageKind]) -> list[tuple[str, str]]:
        return [k for k, s in self.stage.items() if s.kind in kinds]


def _stages(pairs: Sequence[tuple[str, str]]) -> _Stages | None:
    try:
        return _Stages(pairs)
    except ValidationError:
        return None  # the pure function reports the deal with the unknown pipeline or stage


def _pair_in(t: sa.Table, pairs: Sequence[tuple[str, str]]) -> Any:
    if not pairs:
        return sa.false()
    return sa.or_(*[sa.and_(t.c.pipeline == p, t.c.stage == s) for p, s in pairs])


def _in_range(day: Any, d: str, lo: dt.date | None, hi: dt.date | None, keep_null: bool) -> list[Any]:
    """``lo <= day <= hi`` (inclusive days), undated rows kept when ``keep_null``."""
    parts = []
    if lo is not None:
        parts.append(day >= _date(d, lo))
    if hi is not None:
        parts.append(day <= _date(d, hi))
    if not parts:
        return []
    return [sa.or_(day.is_(None), sa.and_(*parts))] if keep_null else parts


def _datetime_range(col: Any, lo: dt.date | None, hi: dt.date | None) -> list[Any]:
    """``lo <= date(col) <= hi`` on a naive UTC date-time column, through its index."""
    parts = []
    if lo is not None:
        parts.append(col >= dt.datetime.combine(lo, dt.time.min))
    if hi is not None and hi < dt.date.max:
        parts.append(col < dt.datetime.combine(hi + dt.timedelta(days=1), dt.time.min))
    return parts


def _middles(
    tx: SQLTransaction, params: dict[str, Any], keys: Sequence[Any], span: Any, where: Sequence[Any], table: sa.Table
) -> dict[tuple[Any, ...], list[int]]:
    """Per group of ``keys``: the one or two middle values of ``span`` (by ROW_NUMBER over the group)."""
    d = _dialect(tx)
    inner = (
        sa.select(*[k.label(f"k{i}") for i, k in enumerate(keys)], span.label("span")).select_from(table).where(*where).subquery()
    )
    part = [inner.c[f"k{i}"] for i in range(len(keys))] or None
    ranked = sa.select(
        *[inner.c[f"k{i}"] for i in range(len(keys))],
        inner.c.span,
        sa.func.row_number().over(partition_by=part, order_by=inner.c.span).label("rn"),
        sa.func.count().over(partition_by=part).label("cnt"),
    ).subquery()
    keep = sa.or_(ranked.c.rn == _idiv(d, ranked.c.cnt + 1, 2), ranked.c.rn == _idiv(d, ranked.c.cnt + 2, 2))
    stmt = sa.select(*[ranked.c[f"k{i}"] for i in range(len(keys))], ranked.c.span).where(keep)
    out: dict[tuple[Any, ...], list[int]] = {}
    for row in _rows(tx, stmt, params):
        out.setdefault(tuple(row[:-1]), []).append(int(row[-1]))
    return out


def _span_sums(d: str, a: Any, b: Any, when: Any) -> list[Any]:
    """SUM of the microseconds from ``a`` to ``b`` over the rows where ``when`` holds, as column(s) whose
    total is ``sum(col * 10**(6*k))``: on SQLite whole seconds and the microsecond parts apart, so no
    64-bit sum overflows."""
    if d == "sqlite":
        seconds = sa.cast(sa.func.strftime(_const("'%s'"), b), sa.BigInteger) - sa.cast(
            sa.func.strftime(_const("'%s'"), a), sa.BigInteger
        )
        fraction = sa.cast(sa.func.substr(b, 21, 6), sa.BigInteger) - sa.cast(sa.func.substr(a, 21, 6), sa.BigInteger)
        return [sa.func.sum(sa.case((when, fraction))), sa.func.sum(sa.case((when, seconds)))]
    return [sa.func.sum(sa.case((when, _span_us(d, a, b))))]


def _total(parts: Sequence[Any]) -> int:
    return sum(_int(v) * 10 ** (6 * k) for k, v in enumerate(parts))


# ---------------------------------------------------------------------------------------------------
# currency conversion and probabilities, per row
# ---------------------------------------------------------------------------------------------------


def _rate_cases(
    d: str, rates: RateTable, currency: Any, day: Any, spans: dict[str, tuple[dt.date | None, dt.date | None]]
) -> tuple[Any, int, int] | None:
    """(CASE giving rate x 10**K per row or NULL, 10**K, largest rate numerator) for the currencies in
    ``spans`` (currency -> first and last day of its rows; ``day`` NULL means the latest rate)."""
    chosen: list[tuple[str, dt.date, Decimal, bool]] = []
    for cur, (first, last) in spans.items():
        if cur == rates.base:
            continue
        entries = [e for e in rates.entries if e[0] == cur]
        if not entries:
            continue
        keep = []
        for k, (_, on, rate) in enumerate(entries):
            latest = k == len(entries) - 1
            following = entries[k + 1][1] if not latest else None
            if latest or ((last is None or on <= last) and (first is None or following is None or following > first)):
                keep.append((cur, on, rate, latest))
        chosen += keep
    if len(chosen) > MAX_CASES:
        return None
    places = max((_places(r) for _, _, r, _ in chosen), default=0)
    whens = []
    for cur, on, rate, latest in sorted(chosen, key=lambda e: (e[0], e[1]), reverse=True):
        on_or_after = day >= _date(d, on)
        test = sa.or_(day.is_(None), on_or_after) if latest else on_or_after
        whens.append((sa.and_(currency == cur, test), sa.literal(_scaled(rate, places), sa.BigInteger)))
    whens.append((currency == rates.base, sa.literal(10**places, sa.BigInteger)))
    biggest = max((_scaled(r, places) for _, _, r, _ in chosen), default=10**places)
    return sa.case(*whens, else_=sa.null()), 10**places, max(biggest, 10**places)


def _product(d: str, amount_e4: Any, rate: tuple[Any, int, int] | None) -> Any:
    """amount x rate numerator (NULL without a rate): a column of the first layer, rounded in the next."""
    if rate is None:
        return sa.null()
    return _exact(d, amount_e4) * rate[0]


def _converted(d: str, layer: Any, rate: tuple[Any, int, int] | None, base: str | None) -> tuple[Any, Any]:
    """(the amount in the report currency, 1/10,000 units, rounded per row; the places it is written with),
    from a layer with ``amount_e4``, ``amount_scale``, ``currency`` and the ``product`` column."""
    c = layer.c
    if rate is None or base is None:
        return c.amount_e4, c.amount_scale
    value = _round_div(d, c.product, rate[1])
    exact = sa.case((c.currency == base, c.amount_e4), else_=value)
    return exact, sa.case((c.currency == base, c.amount_scale), (c.product.is_(None), sa.null()), else_=4)


# ---------------------------------------------------------------------------------------------------
# sales
# ---------------------------------------------------------------------------------------------------


def forecast(
    tx: SQLTransaction,
    *,
    conditions: Sequence[Condition],
    period: str | None,
    groups: tuple[str, ...],
    rates: RateTable | None,
    lo: dt.date | None,
    hi: dt.date | None,
    regions: Sequence[Condition] | None = None,
) -> Report[ForecastRow] | None:
    """The weighted forecast; by ``region``: the country of the deal's customer among the customers the
    actor may read (``regions``: their scope, given by the gate; one it may not read gives ``None``)."""
    d = _dialect(tx)
    t = opportunities
    names: list[str] = []
    where, params = _filter(tx, Opportunity, conditions, names)
    probe = (
        sa.select(
            t.c.pipeline,
            t.c.stage,
            t.c.currency,
            t.c.probability_override,
            sa.func.max(sa.func.abs(t.c.amount_e4)),
            sa.func.min(t.c.expected_close),
            sa.func.max(t.c.expected_close),
            sa.func.min(t.c.closed_at),
            sa.func.max(t.c.closed_at),
        )
        .where(*where)
        .group_by(t.c.pipeline, t.c.stage, t.c.currency, t.c.probability_override)
    )
    found = _rows(tx, probe, params)
    stages = _stages(sorted({(r[0], r[1]) for r in found}))
    if stages is None:
        return None
    closed = stages.pairs((StageKind.WON, StageKind.LOST))
    fday = sa.case(
        (t.c.expected_close.is_not(None), t.c.expected_close),
        (_pair_in(t, closed), _day(d, t.c.closed_at)),
        else_=sa.null(),
    )
    # probabilities: the stage's, or the deal's override (stored as the exact decimal text given)
    probs: dict[tuple[str, str], Decimal] = {k: s.probability for k, s in stages.stage.items()}
    overrides = {r[3]: Decimal(r[3]) for r in found if r[3] is not None}
    if len(probs) + len(overrides) > MAX_CASES:
        return None
    places = max((_places(p) for p in [*probs.values(), *overrides.values()]), default=0)
    prob_whens = [
        (t.c.probability_override == text, sa.literal(_scaled(p, places), sa.BigInteger)) for text, p in overrides.items()
    ]
    prob_whens += [
        (sa.and_(t.c.pipeline == k[0], t.c.stage == k[1]), sa.literal(_scaled(p, places), sa.BigInteger))
        for k, p in probs.items()
    ]
    prob = sa.case(*prob_whens, else_=sa.literal(0, sa.BigInteger)) if prob_whens else sa.literal(0, sa.BigInteger)
    currencies = sorted({r[2] for r in found})
    rate = None
    if rates is not None:
        spans: dict[str, tuple[dt.date | None, dt.date | None]] = {}
        for r in found:
            days = [x for x in (_to_date(r[5]), _to_date(r[6]), _to_date(r[7]), _to_date(r[8])) if x is not None]
            first, last = spans.get(r[2], (None, None))
            low = min(days, default=None) if first is None else min([first, *days])
            high = max(days, default=None) if last is None else max([last, *days])
            spans[r[2]] = (low, high)
        spans = {c: (s[0], s[1]) for c, s in spans.items()}
        rate = _rate_cases(d, rates, t.c.currency, fday, spans)
        if rate is None:
            return None
    if d == "sqlite":  # 64-bit integers: give up on amounts whose products could overflow
        biggest = max((_int(r[4]) for r in found), default=0)
        factor = rate[2] if rate is not None else 1
        if biggest * factor >= _INT64 or biggest * factor * 10**places >= _INT64:
            return None
    source: Any = t
    region: Any = sa.null()
    if "region" in groups and regions is not None:  # None: no scope given (the gate gives one), nothing joined
        on, more = _filter(tx, Customer, regions, names)
        params.update(more)
        source = t.outerjoin(customers, sa.and_(customers.c.id == t.c.customer_id, *on))
        region = customers.c.country
    layer = (
        sa.select(
            _period_start(d, fday, period, nullable=True).label("p"),
            (t.c.owner_id if "owner" in groups else sa.null()).label("owner"),
            region.label("region"),
            t.c.pipeline,
            t.c.stage,
            t.c.currency,
            t.c.amount_e4,
            t.c.amount_scale,
            _product(d, t.c.amount_e4, rate).label("product"),
            prob.label("prob"),
        )
        .select_from(source)
        .where(*where, *_in_range(fday, d, lo, hi, keep_null=True))
        .offset(0)  # a fence: the database computes each row's values once instead of inlining them
        .subquery()
    )
    conv, cscale = _converted(d, layer, rate, rates.base if rates else None)
    lc = layer.c
    inner = (
        sa.select(
            lc.p,
            lc.owner,
            lc.region,
            lc.pipeline,
            lc.stage,
            lc.currency,
            _exact(d, conv).label("conv"),
            cscale.label("cscale"),
            lc.prob,
        )
        .offset(0)
        .subquery()
    )
    weighted = _round_div(d, inner.c.conv * inner.c.prob, 10**places)
    keys = [inner.c.p, inner.c.owner, inner.c.region, inner.c.pipeline, inner.c.stage, inner.c.currency]
    stmt = sa.select(
        *keys,
        sa.func.count(),
        sa.func.count(inner.c.conv),
        sa.func.sum(inner.c.conv),
        sa.func.max(inner.c.cscale),
        sa.func.sum(weighted),
    ).group_by(*keys)
    got = _rows(tx, stmt, params)
    if any(_int(r[6]) != _int(r[7]) for r in got):
        return None  # a missing rate: the pure function names the deal and the day
    kept = {r[5] for r in got}
    if rates is None and len(kept) > 1:
        return None  # mixed currencies: the pure function names the first deal that differs
    currency = rates.base if rates is not None else (next(iter(kept)) if kept else None)
    del currencies
    sums: dict[tuple[Any, ...], list[Any]] = {}
    order: dict[str, int] = {}
    for p, owner, region_of, pipeline, stage_name, _, n, _, total, scale, wsum in got:
        stage = stages.stage[(pipeline, stage_name)]
        key = (
            _label(p, period),
            owner,
            stage.name if "stage" in groups else None,
            stage.forecast_category.value if "category" in groups else None,
            region_of,
        )
        order.setdefault(stage.name, stages.pipeline[pipeline].stage_names.index(stage.name))
        s = sums.setdefault(key, [0, 0, 0, 0, 0, 0, 0, False])  # deals, open e4, scale, won e4, scale, weighted e4, any open
        s[0] += n
        if stage.kind is StageKind.WON:
            s[3] += _int(total)
            s[4] = max(s[4], _int(scale))
            s[5] += _int(total)
        elif stage.kind is StageKind.OPEN:
            s[1] += _int(total)
            s[2] = max(s[2], _int(scale))
            s[5] += _int(wsum)
            s[7] = True

    rows = []
    for k in sorted(sums, key=forecast_order(order)):
        n, open_e4, open_scale, won_e4, won_scale, w, _, any_open = sums[k]
        wscale = max(won_scale, 4) if any_open else won_scale
        weighted_amount = (Decimal(w).scaleb(-4)).quantize(Decimal(1).scaleb(-wscale))
        rows.append(
            ForecastRow(
                *(k[0], k[1], k[2], k[3], currency, n),
                *(_amount(open_e4, open_scale), _amount(won_e4, won_scale), weighted_amount, k[4]),
            )
        )
    return Report(ForecastRow, rows, title="Weighted forecast", x="period", y="weighted")


def funnel(tx: SQLTransaction, *, conditions: Sequence[Condition], pipeline: Pipeline, batch: int = 5000) -> Report[FunnelRow]:
    """The funnel from the (stage, created_at, stage_history) columns, read in batches by id.

    The stage history is JSON on the opportunity row; following it inside the database would need each
    engine's JSON functions, so the columns come out (never whole entities) and ``funnel_of`` counts."""
    t = opportunities
    where, params = _filter(tx, Opportunity, conditions)

    def records() -> Iterator[tuple[str, dt.datetime | None, list[tuple[str | None, str, dt.datetime]]]]:
        after: str | None = None
        while True:
            stmt = sa.select(t.c.id, t.c.stage, t.c.created_at, t.c.stage_history).where(*where, t.c.pipeline == pipeline.name)
            if after is not None:
                stmt = stmt.where(t.c.id > after)
            rows = _rows(tx, stmt.order_by(t.c.id).limit(batch), params)
            for _, stage, created, history in rows:
                moves = []
                for c in json.loads(history) if isinstance(history, str) else history:
                    at = dt.datetime.fromisoformat(c["at"])
                    moves.append((c["from"], c["to"], at.astimezone(_UTC) if at.tzinfo else at.replace(tzinfo=_UTC)))
                yield stage, _aware(created), moves
            if len(rows) < batch:
                return
            after = rows[-1][0]

    return funnel_of(pipeline, records())


def _aware(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=_UTC)  # type: ignore[no-any-return]


def win_rate(
    tx: SQLTransaction,
    *,
    conditions: Sequence[Condition],
    period: str | None,
    groups: tuple[str, ...],
    lo: dt.date | None,
    hi: dt.date | None,
) -> Report[WinRateRow] | None:
    d = _dialect(tx)
    t = opportunities
    where, params = _filter(tx, Opportunity, conditions)
    stages = _stages([tuple(r) for r in _rows(tx, sa.select(t.c.pipeline, t.c.stage).where(*where).distinct(), params)])
    if stages is None:
        return None
    closed = stages.pairs((StageKind.WON, StageKind.LOST))
    cday = sa.func.coalesce(_day(d, t.c.closed_at), t.c.expected_close)
    inner = (
        sa.select(
            _period_start(d, cday, period, nullable=True).label("p"),
            (t.c.owner_id if "owner" in groups else sa.null()).label("owner"),
            t.c.pipeline,
            t.c.stage,
        )
        .where(*where, _pair_in(t, closed), *_in_range(cday, d, lo, hi, keep_null=True))
        .subquery()
    )
    keys = [inner.c.p, inner.c.owner, inner.c.pipeline, inner.c.stage]
    counts: dict[tuple[str | None, str | None], list[int]] = {}
    for p, owner, pipeline, stage, n in _rows(tx, sa.select(*keys, sa.func.count()).group_by(*keys), params):
        c = counts.setdefault((_label(p, period), owner), [0, 0])
        c[0 if stages.stage[(pipeline, stage)].kind is StageKind.WON else 1] += int(n)
    rows = [
        WinRateRow(*k, won, lost, ratio(won, won + lost))
        for k, (won, lost) in sorted(counts.items(), key=lambda kv: (sort_key(kv[0][0]), sort_key(kv[0][1])))
    ]
    return Report(WinRateRow, rows, title="Win rate", x="period", y="win_rate")


def sales_cycle(
    tx: SQLTransaction,
    *,
    conditions: Sequence[Condition],
    period: str | None,
    groups: tuple[str, ...],
    lo: dt.date | None,
    hi: dt.date | None,
) -> Report[SalesCycleRow] | None:
    d = _dialect(tx)
    t = opportunities
    where, params = _filter(tx, Opportunity, conditions)
    stages = _stages([tuple(r) for r in _rows(tx, sa.select(t.c.pipeline, t.c.stage).where(*where).distinct(), params)])
    if stages is None:
        return None
    won = stages.pairs((StageKind.WON,))
    filters = [
        *where,
        _pair_in(t, won),
        t.c.closed_at.is_not(None),
        t.c.closed_at >= t.c.created_at,
        *_datetime_range(t.c.closed_at, lo, hi),
    ]
    keys = [_period_start(d, _day(d, t.c.closed_at), period), t.c.owner_id if "owner" in groups else sa.null()]
    inner = sa.select(*[k.label(f"k{i}") for i, k in enumerate(keys)], t.c.created_at, t.c.closed_at).where(*filters).subquery()
    gk = [inner.c.k0, inner.c.k1]
    sums = _span_sums(d, inner.c.created_at, inner.c.closed_at, sa.true())
    got = _rows(tx, sa.select(*gk, sa.func.count(), *sums).group_by(*gk), params)
    middles = _middles(tx, params, keys, _span_us(d, t.c.created_at, t.c.closed_at), filters, t)
    acc: dict[tuple[str | None, str | None], list[Any]] = {}
    for row in got:
        key = (_label(row[0], period), row[1])
        acc[key] = [int(row[2]), _total(row[3:]), middles[(row[0], row[1])]]
    rows = [
        SalesCycleRow(*k, n, *exact_mean_median(total, n, mid, DAY_US))
        for k, (n, total, mid) in sorted(acc.items(), key=lambda kv: (sort_key(kv[0][0]), sort_key(kv[0][1])))
    ]
    return Report(SalesCycleRow, rows, title="Sales cycle (days, won deals)", x="period", y="mean_days")


# ---------------------------------------------------------------------------------------------------
# customers
# ---------------------------------------------------------------------------------------------------


def customer_activity(
    tx: SQLTransaction, *, conditions: Sequence[Condition], period: str, lo: dt.date | None, hi: dt.date | None
) -> Report[CustomerActivityRow]:
    """Per (period, the customer's previous active period): how many customers, from one statement."""
    d = _dialect(tx)
    t = orders
    where, params = _filter(tx, Order, conditions)
    active = (
        sa.select(t.c.customer_id, _period_start(d, _day(d, t.c.occurred_at), period).label("p"))
        .where(*where)
        .distinct()
        .subquery()
    )
    lagged = sa.select(
        active.c.p, sa.func.lag(active.c.p).over(partition_by=active.c.customer_id, order_by=active.c.p).label("lp")
    ).subquery()
    stmt = sa.select(lagged.c.p, lagged.c.lp, sa.func.count()).group_by(lagged.c.p, lagged.c.lp)
    n_active: dict[dt.date, int] = {}
    new: dict[dt.date, int] = {}
    retained: dict[dt.date, int] = {}
    for p, lp, n in _rows(tx, stmt, params):
        start, last = _to_date(p), _to_date(lp)
        assert start is not None
        n_active[start] = n_active.get(start, 0) + int(n)
        if last is None:
            new[start] = new.get(start, 0) + int(n)
        elif last == previous_start(start, period):
            retained[start] = retained.get(start, 0) + int(n)
    if lo is None and hi is None and not n_active:
        return Report(CustomerActivityRow, title="Customer activity", x="period", y="active")
    begin = lo if lo is not None else min(n_active, default=hi)
    finish = hi if hi is not None else max(n_active, default=lo)
    assert begin is not None and finish is not None
    rows = []
    for p in periods_between(begin, finish, period):
        now = n_active.get(p, 0)
        before = n_active.get(previous_start(p, period), 0)
        kept = retained.get(p, 0)
        churned = before - kept
        rows.append(
            CustomerActivityRow(period_label(p, period), now, new.get(p, 0), kept, churned, before, ratio(churned, before))
        )
    return Report(CustomerActivityRow, rows, title="Customer activity", x="period", y=("active", "new", "churned"))


def top_customers(
    tx: SQLTransaction,
    *,
    conditions: Sequence[Condition],
    n: int,
    rates: RateTable | None,
    lo: dt.date | None,
    hi: dt.date | None,
) -> Report[TopCustomerRow] | None:
    """The ``n`` best customers ranked in SQL (revenue descending, then id); names are left to the caller."""
    d = _dialect(tx)
    t = orders
    where, params = _filter(tx, Order, conditions)
    where = [*where, *_datetime_range(t.c.occurred_at, lo, hi)]
    probe = (
        sa.select(t.c.currency, sa.func.max(t.c.amount_e4), sa.func.min(t.c.occurred_at), sa.func.max(t.c.occurred_at))
        .where(*where)
        .group_by(t.c.currency)
    )
    found = _rows(tx, probe, params)
    if rates is None and len(found) > 1:
        return None  # mixed currencies: the pure function names the first order that differs
    day = _day(d, t.c.occurred_at)
    rate = None
    if rates is not None:
        spans = {r[0]: (_to_date(r[2]), _to_date(r[3])) for r in found}
        rate = _rate_cases(d, rates, t.c.currency, day, spans)
        if rate is None:
            return None
        if d == "sqlite" and max((_int(r[1]) for r in found), default=0) * rate[2] >= _INT64:
            return None
    layer = sa.select(
        t.c.customer_id, t.c.currency, t.c.amount_e4, t.c.amount_scale, _product(d, t.c.amount_e4, rate).label("product")
    ).where(*where)
    layer_q = layer.offset(0).subquery()
    conv, cscale = _converted(d, layer_q, rate, rates.base if rates else None)
    inner = sa.select(layer_q.c.customer_id, _exact(d, conv).label("conv"), cscale.label("cscale")).subquery()
    revenue = sa.func.sum(inner.c.conv)
    stmt = (
        sa.select(inner.c.customer_id, sa.func.count(), revenue, sa.func.max(inner.c.cscale), sa.func.count(inner.c.conv))
        .group_by(inner.c.customer_id)
        .order_by(revenue.desc(), inner.c.customer_id)
    )
    if rate is not None:  # a missing rate anywhere fails the whole report, as in the pure function
        missing = sa.select(sa.func.count()).select_from(inner).where(inner.c.conv.is_(None))
        if _int(_rows(tx, missing, params)[0][0]):
            return None
    got = _rows(tx, stmt.limit(n), params)
    currency = rates.base if rates is not None else (found[0][0] if found else None)
    rows = [
        TopCustomerRow(k, cid, None, int(cnt), _amount(total, scale), currency)
        for k, (cid, cnt, total, scale, _) in enumerate(got, start=1)
    ]
    return Report(TopCustomerRow, rows, title="Top customers by revenue", x="customer_id", y="revenue")


def _next_period(d: str, start: Any, days: int) -> Any:
    """The day ``days`` after ``start`` (a date expression): the end, exclusive, of the period it begins."""
    if d == "sqlite":
        return sa.func.date(start, _const(f"'+{days} days'"))
    if d == "postgresql":
        return start + _const(str(days))  # date + integer is a date
    return sa.func.adddate(start, days)


def purchase_summary(
    tx: SQLTransaction, *, conditions: Sequence[Condition], cutoff: dt.datetime, ref_date: dt.date, freq: str, unit: str
) -> PurchaseSummary | None:
    """Frequency, recency, T and monetary value per customer (``pycrm.analytics.purchase_summary``).

    One pass over the counted orders in customer order (the covering index ``(customer_id, occurred_at,
    amount_e4, currency)`` of revision 0011, so no sort and no visit of the table's rows): per customer the
    first and last order, the number of distinct purchase periods and the total; then, for customers with a
    repeat purchase, the value of the first period by one index range read. The repeat value is the total
    less that."""
    d = _dialect(tx)
    t = orders
    where, params = _filter(tx, Order, conditions)
    kinds = _rows(tx, sa.select(t.c.currency).where(*where).distinct().limit(2), params)
    if len(kinds) > 1:
        return None  # mixed currencies: the pure function names the order
    week = freq == "W"

    def period(at: Any) -> Any:
        day = _day(d, at)
        return _period_start(d, day, "week") if week else day

    counted = sa.select(t.c.customer_id, t.c.occurred_at, t.c.amount_e4).where(*where, t.c.occurred_at <= _naive(cutoff))
    base = counted.subquery("counted")
    agg = (
        sa.select(
            base.c.customer_id,
            sa.func.min(base.c.occurred_at).label("first_at"),
            sa.func.max(base.c.occurred_at).label("last_at"),
            sa.func.count(sa.distinct(period(base.c.occurred_at))).label("n"),
            sa.func.sum(base.c.amount_e4).label("total"),
        )
        .group_by(base.c.customer_id)
        .subquery("per_customer")
    )
    again = counted.subquery("first_period")
    first = period(agg.c.first_at)
    head = (
        sa.select(sa.func.sum(again.c.amount_e4))
        .where(
            again.c.customer_id == agg.c.customer_id,
            again.c.occurred_at >= first,
            again.c.occurred_at < _next_period(d, first, 7 if week else 1),
        )
        .scalar_subquery()
    )
    stmt = sa.select(
        agg.c.customer_id,
        first,
        period(agg.c.last_at),
        agg.c.n,
        agg.c.total,
        sa.case((agg.c.n > 1, head), else_=agg.c.total),
    ).order_by(agg.c.customer_id)
    scale = 7 if unit == "W" else 1
    end = ref_date - dt.timedelta(days=ref_date.weekday()) if week else ref_date
    rows = []
    make, day_of, dec = _new_summary, _to_date, Decimal
    for cid, first_p, last_p, count, total, head_v in _rows(tx, stmt, params):
        first_day, last_day = day_of(first_p), day_of(last_p)
        assert first_day is not None and last_day is not None
        frequency = int(count) - 1
        value = float(dec(int(total) - int(head_v)).scaleb(-4) / frequency) if frequency else 0.0
        rows.append(make(cid, frequency, (last_day - first_day).days / scale, (end - first_day).days / scale, value))
    return PurchaseSummary(rows, calibration_end=ref_date, freq=freq, unit=unit)


# ---------------------------------------------------------------------------------------------------
# service
# ---------------------------------------------------------------------------------------------------


def ticket_summary(
    tx: SQLTransaction, *, conditions: Sequence[Condition], groups: tuple[str, ...], lo: dt.date | None, hi: dt.date | None
) -> Report[TicketCountRow]:
    t = tickets
    where, params = _filter(tx, Ticket, conditions)
    names = ("status", "priority", "category", "channel")
    # one count per group that occurs: the columns not grouped by are a NULL in the select list, not a group
    shown = [t.c[n] if n in groups else sa.null().label(n) for n in names]
    stmt = (
        sa.select(*shown, sa.func.count())
        .where(*where, *_datetime_range(t.c.created_at, lo, hi))
        .group_by(*(t.c[n] for n in names if n in groups))
    )
    counts: dict[tuple[str | None, str | None, str | None, str | None], int] = {}
    for status, priority, category, channel, n in _rows(tx, stmt, params):
        key = (status, priority, category, channel)
        counts[key] = counts.get(key, 0) + int(n)
    return ticket_count_report(counts, groups)


def service_times(
    tx: SQLTransaction,
    *,
    conditions: Sequence[Condition],
    period: str | None,
    groups: tuple[str, ...],
    lo: dt.date | None,
    hi: dt.date | None,
    now: dt.datetime,
) -> Report[ServiceTimeRow]:
    d = _dialect(tx)
    t = tickets
    where, params = _filter(tx, Ticket, conditions)
    where = [*where, *_datetime_range(t.c.created_at, lo, hi)]
    keys = [_period_start(d, _day(d, t.c.created_at), period), t.c.priority if "priority" in groups else sa.null()]
    end = sa.func.coalesce(t.c.resolved_at, t.c.closed_at)
    sla = {p.value: SLA_HOURS[p] * HOUR_US for p in TicketPriority}
    due_us = sa.case(*[(t.c.priority == p, sa.literal(us, sa.BigInteger)) for p, us in sla.items()], else_=sa.null())
    # unresolved: breached when as_of is past created + SLA, i.e. created_at < as_of - SLA
    late_open = sa.or_(
        *[
            sa.and_(t.c.priority == p, t.c.created_at < _naive(now - dt.timedelta(microseconds=us)))
            for p, us in sla.items()
            if now - dt.timedelta(microseconds=us) > dt.datetime.min.replace(tzinfo=_UTC)
        ]
    )
    breached = sa.case(
        (end.is_not(None), sa.case((_span_us(d, t.c.created_at, end) > due_us, 1), else_=0)), (late_open, 1), else_=0
    )
    responded = sa.and_(t.c.first_response_at.is_not(None), t.c.first_response_at >= t.c.created_at)
    resolved = sa.and_(t.c.resolved_at.is_not(None), t.c.resolved_at >= t.c.created_at)
    inner = (
        sa.select(
            *[k.label(f"k{i}") for i, k in enumerate(keys)],
            t.c.created_at,
            t.c.first_response_at,
            t.c.resolved_at,
            sa.case((responded, 1), else_=0).label("responded"),
            sa.case((resolved, 1), else_=0).label("resolved"),
            breached.label("breached"),
        )
        .where(*where)
        .subquery()
    )
    ic = inner.c
    gk = [ic.k0, ic.k1]
    resp_sums = _span_sums(d, ic.created_at, ic.first_response_at, ic.responded == 1)
    reso_sums = _span_sums(d, ic.created_at, ic.resolved_at, ic.resolved == 1)
    stmt = sa.select(
        *gk,
        sa.func.count(),
        sa.func.sum(ic.responded),
        sa.func.sum(ic.resolved),
        sa.func.sum(ic.breached),
        *resp_sums,
        *reso_sums,
    ).group_by(*gk)
    got = _rows(tx, stmt, params)
    k = len(resp_sums)
    resp_mid = _middles(tx, params, keys, _span_us(d, t.c.created_at, t.c.first_response_at), [*where, responded], t)
    reso_mid = _middles(tx, params, keys, _span_us(d, t.c.created_at, t.c.resolved_at), [*where, resolved], t)
    acc = {}
    for row in got:
        n_resp, n_reso = _int(row[3]), _int(row[4])
        response = exact_mean_median(_total(row[6 : 6 + k]), n_resp, resp_mid.get((row[0], row[1]), []), HOUR_US)
        resolution = exact_mean_median(_total(row[6 + k :]), n_reso, reso_mid.get((row[0], row[1]), []), HOUR_US)
        acc[(_label(row[0], period), row[1])] = (int(row[2]), n_resp, response, n_reso, resolution, _int(row[5]))
    rows = []
    for key in sorted(acc, key=lambda k: (sort_key(k[0]), _PRIORITY_ORDER.get(k[1] or "", -1))):
        n, n_resp, response, n_reso, resolution, late = acc[key]
        rows.append(ServiceTimeRow(*key, n, n_resp, *response, n_reso, *resolution, late, ratio(late, n)))
    y = ("mean_response_hours", "mean_resolution_hours")
    return Report(ServiceTimeRow, rows, title="Service times (hours)", x="period", y=y)


def satisfaction(
    tx: SQLTransaction,
    *,
    conditions: Sequence[Condition],
    kind: str,
    groups: tuple[str, ...],
    period: str | None,
    lo: dt.date | None,
    hi: dt.date | None,
    teams: Sequence[Condition] | None = None,
    segments: Sequence[Condition] | None = None,
    categories: Sequence[Condition] | None = None,
) -> Report[SatisfactionRow]:
    """Surveys counted by (period, agent, team, segment, ticket category, score) in SQL; the rows made by the
    pure function's :func:`~pycrm.analytics._service.satisfaction_report`. The agent's team, the customer's
    category and the category of the ticket the survey is about come from the users, customers and tickets
    the actor may read (``teams`` / ``segments`` / ``categories``: their scope, given by the gate), joined on
    their ids; a row it may not read gives the ``None`` group, as in the pure function."""
    d = _dialect(tx)
    v = surveys
    names: list[str] = []
    where, params = _filter(tx, Survey, conditions, names)
    source: Any = v
    team: Any = sa.null()
    segment: Any = sa.null()
    category: Any = sa.null()
    if "team" in groups and teams is not None:  # None: no scope given (the gate gives one), so nothing joined
        on, more = _filter(tx, User, teams, names)
        params.update(more)
        source = source.outerjoin(users, sa.and_(users.c.id == v.c.user_id, *on))
        team = users.c.team_id
    if "segment" in groups and segments is not None:
        on, more = _filter(tx, Customer, segments, names)
        params.update(more)
        source = source.outerjoin(customers, sa.and_(customers.c.id == v.c.customer_id, *on))
        segment = customers.c.category
    if "category" in groups and categories is not None:
        on, more = _filter(tx, Ticket, categories, names)
        params.update(more)
        source = source.outerjoin(tickets, sa.and_(tickets.c.id == v.c.ticket_id, *on))
        category = tickets.c.category
    keys = [
        _period_start(d, _day(d, v.c.sent_at), period),
        v.c.user_id if "agent" in groups else sa.null(),
        team,
        segment,
        category,
        v.c.score,
    ]
    inner = (
        sa.select(*[k.label(f"k{i}") for i, k in enumerate(keys)])
        .select_from(source)
        .where(*where, v.c.kind == sa.literal(kind, sa.String), *_datetime_range(v.c.sent_at, lo, hi))
        .subquery()
    )
    gk = list(inner.c)
    stmt = sa.select(*gk, sa.func.count()).group_by(*gk)
    tallies: dict[Group, tuple[int, dict[int, int]]] = {}
    for start, agent, team_id, segment_of, category_of, score, n in _rows(tx, stmt, params):
        key: Group = (_label(start, period), agent, team_id, segment_of, category_of)
        sent, scores = tallies.get(key, (0, {}))
        if score is not None:
            scores[int(score)] = scores.get(int(score), 0) + int(n)
        tallies[key] = (sent + int(n), scores)
    return satisfaction_report(kind, tallies)


def sla(tx: SQLTransaction, **kw: Any) -> Any:
    """SLA compliance (``pycrm.service.sla_compliance``) in the database: see ``storage/sql/_sla.py``."""
    from pycrm.storage.sql._sla import sla as compute

    return compute(tx, **kw)


# ---------------------------------------------------------------------------------------------------
# sales over time
# ---------------------------------------------------------------------------------------------------


def sales_series(
    tx: SQLTransaction,
    *,
    conditions: Sequence[Condition],
    period: str,
    groups: tuple[str, ...],
    rates: RateTable | None,
    lo: dt.date | None,
    hi: dt.date | None,
    regions: Sequence[Condition] | None = None,
    owners: Sequence[Condition] | None = None,
) -> Report[SalesSeriesRow] | None:
    """Orders counted and amounts summed per (period, customer country, customer owner) in SQL, the gaps
    filled by the pure function's :func:`~pycrm.analytics._timeseries.series_report`. The country and owner
    come from the customers the actor may read (``regions`` / ``owners``: their scope, given by the gate),
    joined on the order's ``customer_id``; a customer it may not read gives the ``None`` group."""
    d = _dialect(tx)
    t = orders
    names: list[str] = []
    where, params = _filter(tx, Order, conditions, names)
    where = [*where, *_datetime_range(t.c.occurred_at, lo, hi)]
    probe = (
        sa.select(t.c.currency, sa.func.max(t.c.amount_e4), sa.func.min(t.c.occurred_at), sa.func.max(t.c.occurred_at))
        .where(*where)
        .group_by(t.c.currency)
    )
    found = _rows(tx, probe, params)
    if rates is None and len(found) > 1:
        return None  # mixed currencies: the pure function names the first order that differs
    day = _day(d, t.c.occurred_at)
    rate = None
    if rates is not None:
        rate = _rate_cases(d, rates, t.c.currency, day, {r[0]: (_to_date(r[2]), _to_date(r[3])) for r in found})
        if rate is None:
            return None
        if d == "sqlite" and max((_int(r[1]) for r in found), default=0) * rate[2] >= _INT64:
            return None
    source: Any = t
    region: Any = sa.null()
    owner: Any = sa.null()
    scope = regions if "region" in groups else owners if "owner" in groups else None
    if scope is not None:  # None: no scope given (the gate gives one), so nothing joined
        on, more = _filter(tx, Customer, scope, names)
        params.update(more)
        source = source.outerjoin(customers, sa.and_(customers.c.id == t.c.customer_id, *on))
        region = customers.c.country if "region" in groups else sa.null()
        owner = customers.c.owner_id if "owner" in groups else sa.null()
    layer = (
        sa.select(
            _period_start(d, day, period).label("p"),
            region.label("region"),
            owner.label("owner"),
            t.c.currency,
            t.c.amount_e4,
            t.c.amount_scale,
            _product(d, t.c.amount_e4, rate).label("product"),
        )
        .select_from(source)
        .where(*where)
        .offset(0)  # a fence: each row's converted amount computed once
        .subquery()
    )
    conv, cscale = _converted(d, layer, rate, rates.base if rates else None)
    lc = layer.c
    inner = sa.select(lc.p, lc.region, lc.owner, _exact(d, conv).label("conv"), cscale.label("cscale")).subquery()
    keys = [inner.c.p, inner.c.region, inner.c.owner]
    stmt = sa.select(
        *keys, sa.func.count(), sa.func.count(inner.c.conv), sa.func.sum(inner.c.conv), sa.func.max(inner.c.cscale)
    ).group_by(*keys)
    got = _rows(tx, stmt, params)
    if any(_int(r[3]) != _int(r[4]) for r in got):
        return None  # a missing rate: the pure function names the order and the day
    sums: dict[tuple[dt.date, str | None, str | None], tuple[int, Decimal]] = {}
    for p, region_of, owner_of, n, _, total, scale in got:
        start = _to_date(p)
        assert start is not None
        sums[(start, region_of, owner_of)] = (int(n), _amount(total, scale))
    currency = rates.base if rates is not None else (found[0][0] if found else None)
    return series_report(sums, period, lo, hi, currency)


# ---------------------------------------------------------------------------------------------------
# campaign KPIs
# ---------------------------------------------------------------------------------------------------


def campaign_kpis(
    tx: SQLTransaction,
    *,
    conditions: Sequence[Condition],
    clv: Decimal | None,
    members: Sequence[Condition],
    responses: Sequence[Condition],
    orders: Sequence[Condition],
    deals: Sequence[Condition],
) -> Report[CampaignKpiRow] | None:
    """The campaign KPIs: member counts per campaign, each sale after a touch (with the customer's first touch
    in the campaign and its last touch before the sale), the member customers' first orders and the mean
    revenue per buying customer counted in SQL over the rows the actor may read (each kind's scope, given by
    the gate); the window and the figures by the pure function's
    :func:`~pycrm.analytics._campaigns.campaign_report`. None (the pure function) for a deal in an unknown
    pipeline or stage."""
    cs = tx.find(Campaign, list(conditions), [], None, 0)
    ids = [str(c.id) for c in cs]
    if not ids:
        return campaign_report([], {}, [], {}, {}, clv)
    m, r, o, t = campaign_members, campaign_responses, orders_table, opportunities
    names: list[str] = []
    mw, params = _filter(tx, CampaignMember, members, names)
    rw, more = _filter(tx, CampaignResponse, responses, names)
    params.update(more)
    ow, more = _filter(tx, Order, orders, names)
    params.update(more)
    dw, more = _filter(tx, Opportunity, deals, names)
    params.update(more)
    in_ids = m.c.campaign_id.in_(sa.bindparam("campaign_ids", ids, expanding=True))
    params["campaign_ids"] = ids

    def flag(kinds: Sequence[str]) -> Any:
        return sa.func.max(sa.case((r.c.kind.in_([sa.literal(k, sa.String) for k in kinds]), 1), else_=0))

    per_member = (
        sa.select(
            m.c.campaign_id.label("cid"),
            flag(("sent",)).label("sent"),
            flag(CampaignResponse.RESPONSES).label("responded"),
            flag(("unsubscribed",)).label("unsub"),
            flag(("bounced",)).label("bounced"),
        )
        .select_from(m.outerjoin(r, sa.and_(r.c.member_id == m.c.id, *rw)))
        .where(in_ids, *mw)
        .group_by(m.c.campaign_id, m.c.id)
        .subquery()
    )
    pm = per_member.c
    counts: dict[str, tuple[int, int, int, int, int]] = {}
    stmt = sa.select(
        pm.cid, sa.func.count(), sa.func.sum(pm.sent), sa.func.sum(pm.responded), sa.func.sum(pm.unsub), sa.func.sum(pm.bounced)
    ).group_by(pm.cid)
    for cid, n, sent, responded, unsub, bounced in _rows(tx, stmt, params):
        counts[cid] = (int(n), int(sent or 0), int(responded or 0), int(unsub or 0), int(bounced or 0))
    touch = sa.and_(r.c.kind.in_([sa.literal(k, sa.String) for k in CampaignResponse.TOUCHES]), *rw)
    touched = m.join(r, sa.and_(r.c.member_id == m.c.id, touch))
    first_touch: dict[tuple[str, str], dt.datetime] = {}
    stmt = sa.select(m.c.campaign_id, m.c.customer_id, sa.func.min(r.c.at)).select_from(touched).where(in_ids, *mw)
    for cid, customer, at in _rows(tx, stmt.group_by(m.c.campaign_id, m.c.customer_id), params):
        first_touch[(cid, customer)] = _aware(at)  # type: ignore[assignment]
    candidates: list[Candidate] = []
    sale_cols = (
        (o, "order", o.c.occurred_at, sa.true(), ow),
        (t, "deal", t.c.closed_at, None, dw),
    )
    for table, kind, at_col, _, where in sale_cols:
        extra: list[Any] = []
        if kind == "deal":
            pairs = sa.select(t.c.pipeline, t.c.stage).where(*dw).distinct()
            stages = _stages([tuple(x) for x in _rows(tx, pairs, params)])
            if stages is None:
                return None
            extra = [_pair_in(t, stages.pairs((StageKind.WON,))), t.c.closed_at.is_not(None)]
        keys = (m.c.campaign_id, m.c.customer_id, table.c.id, at_col, table.c.amount_e4, table.c.amount_scale, table.c.currency)
        joined = touched.join(table, sa.and_(table.c.customer_id == m.c.customer_id, at_col >= r.c.at))
        stmt = sa.select(*keys, sa.func.max(r.c.at)).select_from(joined).where(in_ids, *mw, *where, *extra).group_by(*keys)
        for cid, customer, sid, at, e4, scale, currency, last in _rows(tx, stmt, params):
            sale: Sale = (kind, sid, _aware(at), money_in(int(e4), int(scale), currency).amount, currency)  # type: ignore[assignment]
            candidates.append((cid, customer, sale, first_touch[(cid, customer)], _aware(last)))  # type: ignore[arg-type]
    buyers = sa.select(m.c.customer_id).where(in_ids, *mw)
    stmt = (
        sa.select(o.c.customer_id, sa.func.min(o.c.occurred_at)).where(o.c.customer_id.in_(buyers), *ow).group_by(o.c.customer_id)
    )
    first_orders = {customer: _aware(at) for customer, at in _rows(tx, stmt, params)}
    stmt = sa.select(o.c.currency, sa.func.sum(o.c.amount_e4), sa.func.count(sa.distinct(o.c.customer_id))).where(*ow)
    mean = {cur: Decimal(int(total)).scaleb(-4) / int(n) for cur, total, n in _rows(tx, stmt.group_by(o.c.currency), params) if n}
    return campaign_report(cs, counts, candidates, first_orders, mean, clv)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------
# lead scoring's engagement counts: two columns, not whole entities
# ---------------------------------------------------------------------------------------------------


def _times(tx: SQLTransaction, kind: type[Any], table: sa.Table, column: str, conditions: Sequence[Condition]) -> list[Any]:
    """(customer_id, aware UTC datetime) of each row matching ``conditions`` whose ``column`` is set: what
    ``pycrm.analytics.deal_features`` reads of interactions, tickets and orders."""
    where, params = _filter(tx, kind, conditions)
    col = table.c[column]
    rows = _rows(tx, sa.select(table.c.customer_id, _raw(col)).where(*where, col.is_not(None)), params)
    aware = _dt_reader(tx)
    return [_Time(r[0], aware(r[1])) for r in rows]


def _raw(col: Any) -> Any:
    """``col`` as the driver gives it (no SQLAlchemy result processing): the adapter's codec reads it, as it
    reads entities -- SQLite's datetime text by ``fromisoformat``, not a regular expression per value."""
    return sa.type_coerce(col, sa.Text()).label(col.name)


def _dt_reader(tx: SQLTransaction) -> Any:
    """A column's datetime as an aware UTC datetime (None stays None)."""
    dt_in = tx.codec.dt_in

    def aware(v: Any) -> Any:  # naive UTC from the column type (every dialect), else the adapter's own text
        if isinstance(v, dt.datetime):
            return v.replace(tzinfo=_UTC) if v.tzinfo is None else v.astimezone(_UTC)
        return dt_in(v)

    return aware


class _Time:
    """One row of :func:`_times`, read as an entity is (``customer_id`` and the time field by name)."""

    __slots__ = ("created_at", "customer_id", "occurred_at")

    def __init__(self, customer_id: str, at: Any):
        self.customer_id = customer_id
        self.occurred_at = self.created_at = at


def activity_counts(tx: SQLTransaction, *, conditions: Sequence[Condition], group: str) -> dict[Any, int]:
    """Behaviour events matching ``conditions`` counted per ``group`` (``kind``, ``customer`` or ``day``) in
    the database: key -> count, a day as a date."""
    where, params = _filter(tx, Activity, conditions)
    t = activities
    key = t.c.kind if group == "kind" else t.c.customer_id if group == "customer" else _day(_dialect(tx), t.c.occurred_at)
    rows = _rows(tx, sa.select(key, sa.func.count()).where(*where).group_by(key), params)
    if group != "day":
        return {r[0]: int(r[1]) for r in rows}
    return {(r[0] if isinstance(r[0], dt.date) else dt.date.fromisoformat(str(r[0])[:10])): int(r[1]) for r in rows}


def interaction_times(tx: SQLTransaction, *, conditions: Sequence[Condition]) -> list[Any]:
    return _times(tx, Interaction, interactions, "occurred_at", conditions)


def ticket_times(tx: SQLTransaction, *, conditions: Sequence[Condition]) -> list[Any]:
    return _times(tx, Ticket, tickets, "created_at", conditions)


def order_times(tx: SQLTransaction, *, conditions: Sequence[Condition]) -> list[Any]:
    return _times(tx, Order, orders, "occurred_at", conditions)


def scoring_deals(tx: SQLTransaction, *, conditions: Sequence[Condition], as_of: dt.datetime) -> list[Any]:
    """The records ``pycrm.analytics.deal_features`` makes of the deals matching ``conditions``, from ten
    columns -- (id, customer_id, pipeline, stage, currency, amount, owner_id, created_at, closed_at,
    stage_history) -- never whole entities: the amount from its exact integer, the times by the adapter's
    codec, and of the stage history only the one time a feature needs (``_scoring.deal_records``)."""
    t = opportunities
    where, params = _filter(tx, Opportunity, conditions)
    stmt = sa.select(
        *(t.c.id, t.c.customer_id, t.c.pipeline, t.c.stage, t.c.currency, t.c.amount_e4, t.c.owner_id),
        *(_raw(t.c.created_at), _raw(t.c.closed_at), _raw(t.c.stage_history)),
    ).where(*where)
    aware = _dt_reader(tx)
    rows = [
        (oid, cid, p, st, cur, int(e4) / 10_000, owner, aware(c), aware(cl), h)
        for oid, cid, p, st, cur, e4, owner, c, cl, h in _rows(tx, stmt, params)
    ]
    return list(deal_records(rows, as_of))


class ScoringCustomer:
    """What lead scoring reads of a customer: ``id``, ``kind``, ``category``, ``country``, ``tags``, ``status``."""

    __slots__ = ("category", "country", "id", "kind", "status", "tags")

    def __init__(self, id: str, kind: str, category: str | None, country: str | None, tags: frozenset[str], status: str):
        self.id, self.kind, self.category, self.country, self.tags, self.status = id, kind, category, country, tags, status


def scoring_customers(tx: SQLTransaction, *, conditions: Sequence[Condition]) -> list[Any]:
    """(id, kind, category, country, tags, status) of the customers matching ``conditions``, as
    :class:`ScoringCustomer`: what ``pycrm.analytics.deal_features`` reads of them, without whole entities."""
    t = customers
    where, params = _filter(tx, Customer, conditions)
    stmt = sa.select(t.c.id, t.c.kind, t.c.category, t.c.country, _raw(t.c.tags), t.c.status).where(*where)
    return [ScoringCustomer(i, k, cat, c, tags_in(tags), st) for i, k, cat, c, tags, st in _rows(tx, stmt, params)]


def _category_level(d: str, col: Any, level: int | None) -> Any:
    """The first ``level`` parts of the category path ``col`` (all of it for None), in SQL: MariaDB's
    ``SUBSTRING_INDEX``, PostgreSQL's regular-expression ``substring``, SQLite's ``pycrm_path_prefix`` (a
    function the adapter registers); ``level`` is a bound value."""
    if level is None:
        return col
    if d == "mysql":
        return sa.func.substring_index(col, sa.literal("/", sa.String), sa.literal(level, sa.Integer))
    if d == "postgresql":
        pattern = "^((?:[^/]*/){0,%d}[^/]*)" % (level - 1)  # noqa: UP031 - a whole number checked 1..20
        return sa.func.substring(col, sa.literal(pattern, sa.String))
    return sa.func.pycrm_path_prefix(col, sa.literal(level, sa.Integer))


def product_sales(
    tx: SQLTransaction,
    *,
    conditions: Sequence[Condition],
    by: str,
    level: int | None,
    lo: dt.date | None,
    hi: dt.date | None,
    categories: Sequence[Condition] | None = None,
    regions: Sequence[Condition] | None = None,
    owners: Sequence[Condition] | None = None,
) -> Report[ProductSalesRow]:
    """Order lines counted and summed by (group, currency) in SQL, over ``order_lines`` joined to the orders the
    conditions (the actor's scope among them) select; the rows made by the pure function's
    :func:`~pycrm.analytics._products.sales_report`. A category comes from the products and a country or owner
    from the customers the actor may read (``categories`` / ``regions`` / ``owners``: their scope, given by the
    gate), joined on their ids: a row it may not read gives the ``None`` group, as in the pure function."""
    d = _dialect(tx)
    o, li = orders, order_lines
    names: list[str] = []
    where, params = _filter(tx, Order, conditions, names)
    source: Any = li.join(o, o.c.id == li.c.order_id)
    if by == "product":
        group: Any = li.c.product_id
    elif by == "category":
        on, more = _filter(tx, Product, categories or (), names)
        params.update(more)
        source = source.outerjoin(products, sa.and_(products.c.id == li.c.product_id, *on))
        group = _category_level(d, products.c.category, level)
    else:
        on, more = _filter(tx, Customer, (regions if by == "region" else owners) or (), names)
        params.update(more)
        source = source.outerjoin(customers, sa.and_(customers.c.id == o.c.customer_id, *on))
        group = customers.c.country if by == "region" else customers.c.owner_id
    inner = (
        sa.select(group.label("g"), li.c.currency.label("cur"), li.c.order_id, li.c.quantity, li.c.amount_e4)
        .select_from(source)
        .where(*where, *_datetime_range(o.c.occurred_at, lo, hi))
        .subquery()
    )
    stmt = sa.select(
        inner.c.g,
        inner.c.cur,
        sa.func.count(sa.distinct(inner.c.order_id)),
        sa.func.count(),
        sa.func.sum(inner.c.quantity),
        sa.func.sum(inner.c.amount_e4),
    ).group_by(inner.c.g, inner.c.cur)
    tallies = {(g, str(cur)): (int(n_orders), int(n), int(q), int(e4)) for g, cur, n_orders, n, q, e4 in _rows(tx, stmt, params)}
    return sales_report(tallies, by)


# ---------------------------------------------------------------------------------------------------
# basket analysis: item and pair counts in the database, larger itemsets from the few baskets that need them
# ---------------------------------------------------------------------------------------------------


def _baskets(
    tx: SQLTransaction, conditions: Sequence[Condition], lo: dt.date | None, hi: dt.date | None
) -> tuple[Any, dict[str, Any]]:
    """The distinct ``(order_id, product_id)`` of the lines of the orders the conditions select (with lines,
    ``occurred_at`` from ``lo`` to ``hi``): the baskets, as a CTE."""
    o, li = orders, order_lines
    where, params = _filter(tx, Order, conditions)
    b = (
        sa.select(o.c.id.label("order_id"), li.c.product_id.label("product_id"))
        .select_from(o.join(li, li.c.order_id == o.c.id))  # orders first: their lines by the primary key
        .where(*where, *_datetime_range(o.c.occurred_at, lo, hi))
        .distinct()
        .cte("b")
    )
    return b, params


def _n_baskets(tx: SQLTransaction, conditions: Sequence[Condition], lo: dt.date | None, hi: dt.date | None) -> int:
    """The orders the conditions select that have lines."""
    o, li = orders, order_lines
    where, params = _filter(tx, Order, conditions)
    has_lines = sa.exists(sa.select(li.c.order_id).where(li.c.order_id == o.c.id))
    stmt = sa.select(sa.func.count()).select_from(o).where(*where, *_datetime_range(o.c.occurred_at, lo, hi), has_lines)
    return int(_rows(tx, stmt, params)[0][0])


def frequent_itemsets(
    tx: SQLTransaction,
    *,
    conditions: Sequence[Condition],
    min_support: float | int,
    max_len: int | None,
    max_itemsets: int,
    lo: dt.date | None,
    hi: dt.date | None,
) -> FrequentItemsets | None:
    """``pycrm.analytics.frequent_itemsets`` over the baskets of :func:`_baskets`: the number of baskets, the
    frequent items and the frequent pairs counted in SQL (``HAVING COUNT(*) >= min_basket_count``, the pairs
    by a self-join on the order with ``a.product_id < b.product_id``), then only the lines of the orders with
    three or more frequent products streamed to the miner (``counts=``). None (the entities are then read)
    on mlxtend's float edge, where a pair needs one basket more than an item (see docs/basket.md): the pure
    function decides it from all the baskets."""
    b, params = _baskets(tx, conditions, lo, hi)
    n = _n_baskets(tx, conditions, lo, hi)
    single = min_basket_count(min_support, n)
    if isinstance(min_support, float) and n and single < math.ceil(min_support * n):
        return None
    m = sa.literal(single, sa.Integer)
    stmt = sa.select(b.c.product_id, sa.func.count()).group_by(b.c.product_id).having(sa.func.count() >= m)
    items = {str(p): int(k) for p, k in _rows(tx, stmt, params)}
    cap = MAX_ITEMSET_LEN if max_len is None else max_len
    pairs: dict[tuple[str, str], int] = {}
    rest: Any = None
    if cap >= 2 and len(items) >= 2:
        frequent = sa.select(b.c.product_id).group_by(b.c.product_id).having(sa.func.count() >= m)
        f = sa.select(b.c.order_id, b.c.product_id).where(b.c.product_id.in_(frequent)).cte("f")
        x, y = f.alias("x"), f.alias("y")
        stmt = (
            sa.select(x.c.product_id, y.c.product_id, sa.func.count())
            .select_from(x.join(y, sa.and_(x.c.order_id == y.c.order_id, x.c.product_id < y.c.product_id)))
            .group_by(x.c.product_id, y.c.product_id)
            .having(sa.func.count() >= m)
        )
        pairs = {(str(p), str(q)): int(k) for p, q, k in _rows(tx, stmt, params)}
        if cap >= 3 and pairs:
            big = sa.select(f.c.order_id).group_by(f.c.order_id).having(sa.func.count() >= sa.literal(3, sa.Integer)).subquery()
            rest = sa.select(f.c.order_id, f.c.product_id).select_from(f.join(big, big.c.order_id == f.c.order_id))
    counts = BasketCounts(n, items, pairs)
    kw: dict[str, Any] = {"min_support": min_support, "max_len": max_len, "counts": counts, "max_itemsets": max_itemsets}
    if rest is None:
        return mine_itemsets([], **kw)

    def mine(conn: Any) -> FrequentItemsets:  # the lines streamed from the cursor straight into the miner
        result = conn.execution_options(yield_per=20_000).execute(rest, params)
        return mine_itemsets(((str(o), str(p)) for o, p in result), **kw)

    return tx._core(mine)  # type: ignore[no-any-return]


def also_bought(
    tx: SQLTransaction,
    *,
    conditions: Sequence[Condition],
    product: str,
    top: int | None,
    min_count: int,
    lo: dt.date | None,
    hi: dt.date | None,
) -> Report[AlsoBoughtRow]:
    """``pycrm.analytics.also_bought`` from counts in SQL: the baskets, those holding ``product``, the other
    products of those (a self-join on the order, ``HAVING COUNT(*) >= min_count``) and their baskets among all."""
    b, params = _baskets(tx, conditions, lo, hi)
    n = _n_baskets(tx, conditions, lo, hi)
    p = sa.literal(product, b.c.product_id.type)
    n_with = int(_rows(tx, sa.select(sa.func.count()).select_from(b).where(b.c.product_id == p), params)[0][0])
    if not n_with:
        return also_bought_report(product, n, 0, {}, {}, top)
    x, y = b.alias("x"), b.alias("y")
    co = (
        sa.select(y.c.product_id.label("item"), sa.func.count().label("k"))
        .select_from(x.join(y, sa.and_(x.c.order_id == y.c.order_id, y.c.product_id != x.c.product_id)))
        .where(x.c.product_id == p)
        .group_by(y.c.product_id)
        .having(sa.func.count() >= sa.literal(min_count, sa.Integer))
        .subquery()
    )
    stmt = (
        sa.select(co.c.item, co.c.k, sa.func.count())
        .select_from(co.join(b, b.c.product_id == co.c.item))
        .group_by(co.c.item, co.c.k)
    )
    got = _rows(tx, stmt, params)
    return also_bought_report(product, n, n_with, {str(i): int(k) for i, k, _ in got}, {str(i): int(c) for i, _, c in got}, top)
