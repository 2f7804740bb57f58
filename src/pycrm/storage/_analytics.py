"""``s.analytics``: reports computed where the data lives.

A transaction that offers a pushdown (:class:`~pycrm.storage.port.Reports` and
:class:`~pycrm.storage.port.RFMPushdown`: the SQL adapter) computes inside the database; otherwise the
pure functions of :mod:`pycrm.analytics` run over a stream of entities. Both give identical results.

The sales, customer and service reports take the pure function's keyword arguments plus ``where``, a
repository filter (shared/API.md) choosing which opportunities, orders or tickets are read; entities
stream through the store in batches, never all loaded at once by the store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pycrm.analytics import (
    DEFAULT_SEGMENTS,
    CustomerActivityRow,
    ForecastRow,
    FunnelRow,
    RateTable,
    Report,
    RFMScore,
    SalesCycleRow,
    SatisfactionRow,
    SegmentRule,
    ServiceTimeRow,
    TicketCountRow,
    TopCustomerRow,
    WinRateRow,
    customer_activity,
    forecast,
    funnel,
    rfm,
    sales_cycle,
    satisfaction,
    service_times,
    ticket_summary,
    top_customers,
    win_rate,
)
from pycrm.analytics._activities import ActivityCountRow, activity_counts, check_activity_group, count_rows
from pycrm.analytics._basket import (
    MAX_ITEMSETS,
    AlsoBoughtRow,
    AssociationRule,
    FrequentItemsets,
    Metric,
    also_bought,
    association_rules,
    check_also_bought,
    check_mining,
    check_rules,
    frequent_itemsets,
    order_baskets,
)
from pycrm.analytics._campaigns import CampaignKpiRow, campaign_kpis, check_clv
from pycrm.analytics._clv import (
    CLVScore,
    PurchaseSummary,
    _scipy,
    customer_lifetime_value,
    fit_bgnbd,
    fit_gamma_gamma,
    purchase_summary,
)
from pycrm.analytics._clv import _period as _clv_period
from pycrm.analytics._common import as_tuple, check_period, check_range, opt_aware
from pycrm.analytics._products import ProductSalesRow, check_product_sales, product_sales
from pycrm.analytics._rfm import _cutoff, _new_score, _SegmentTable, check_bins, check_segments, rfm_report
from pycrm.analytics._sales import FORECAST_GROUPS, _Converter, _funnel_pipeline
from pycrm.analytics._scoring import LEAD_STATUSES, LeadScoring, _assemble, _entity_records, _sources
from pycrm.analytics._service import _as_of, check_satisfaction, ticket_groups
from pycrm.analytics._timeseries import (
    SalesForecast,
    SalesSeriesRow,
    _check_forecast_args,
    _statsmodels,
    check_series_period,
    forecast_series,
    sales_series,
    series_groups,
)
from pycrm.domain import (
    DEFAULT_PIPELINE,
    Activity,
    Campaign,
    CampaignMember,
    CampaignResponse,
    Customer,
    Entity,
    Interaction,
    Opportunity,
    Order,
    Pipeline,
    Product,
    Survey,
    Ticket,
    User,
)
from pycrm.domain import utcnow as _utcnow
from pycrm.domain._checks import check_count, check_mapping
from pycrm.errors import FieldError, PermissionDenied, ValidationError
from pycrm.storage._gate import REPORT_GROUP_READS, REPORT_READS
from pycrm.storage.port import Reports, RFMPushdown

if TYPE_CHECKING:
    from pycrm.storage._repository import Session


#: What :meth:`SessionAnalytics.product_sales` reads besides the orders, per grouping: (the report's argument,
#: the kind, its field).
_PRODUCT_JOINS: dict[str, tuple[str, type[Entity], str]] = {
    "category": ("categories", Product, "category"),
    "region": ("regions", Customer, "country"),
    "owner": ("owners", Customer, "owner_id"),
}


class SessionAnalytics:
    """Analytics over the session's store: ``s.analytics.rfm(as_of=...)``."""

    def __init__(self, session: Session):
        self._s = session

    def _check_reads(self, kind: type[Entity]) -> None:
        """ValidationError naming each field a report over ``kind`` reads that the actor sees masked or hidden."""
        guard = self._s._guard
        if not guard.system:
            guard.check_visible_fields(kind, REPORT_READS[kind], "report on")

    def _stream(self, kind: type[Entity], where: Mapping[str, Any] | None) -> Iterator[Any]:
        """Entities of ``kind`` matching ``where`` (and the actor's scope), read in batches of 5,000."""
        self._s._check_open()
        self._check_reads(kind)
        conds = self._s._conditions(kind, where, "read")
        return self._s._transaction().iter(kind, conds, 5000)

    def _pushdown(self, name: str, entity: type[Entity], where: Mapping[str, Any] | None, **kw: Any) -> Any:
        """The report computed by the store (:class:`~pycrm.storage.port.Reports`), or None: no pushdown, or
        the data needs the pure function (which then raises or computes from the stream)."""
        self._s._check_open()
        self._check_reads(entity)
        tx = self._s._transaction()
        if not isinstance(tx, Reports):
            return None
        return tx.report(name, conditions=self._s._conditions(entity, where, "read"), **kw)

    def rfm(
        self,
        *,
        as_of: dt.date | dt.datetime | str,
        bins: int = 5,
        segments: Sequence[SegmentRule] = DEFAULT_SEGMENTS,
    ) -> Report[RFMScore]:
        """RFM scores of every customer with orders on or before ``as_of`` (same rules as ``pycrm.analytics.rfm``)."""
        self._s._check_open()
        self._check_reads(Order)
        check_bins(bins)
        check_segments(segments)
        cutoff, ref_date = _cutoff(as_of)
        tx = self._s._transaction()
        scope = self._s._conditions(Order, None, "read")  # the actor's row scope (none for the system actor)
        if not isinstance(tx, RFMPushdown):
            return rfm(tx.iter(Order, scope, 5000), as_of=as_of, bins=bins, segments=segments)
        currencies, rows = tx.rfm(cutoff, ref_date, bins, scope)
        if len(currencies) > 1:
            mixed = ", ".join(sorted(currencies))
            problem = FieldError("orders.amount.currency", "currency_mismatch", f"orders mix {mixed}; convert first")
            raise ValidationError([problem])
        table = _SegmentTable(segments)
        make = _new_score
        return rfm_report([make(row[0], row[1], row[2], row[3], row[4], row[5], row[6], table[row[4], row[5]]) for row in rows])

    # ---- sales ----
    def forecast(
        self,
        *,
        period: str | None = "month",
        by: str | Sequence[str] = (),
        rates: RateTable | None = None,
        start: dt.date | dt.datetime | str | None = None,
        end: dt.date | dt.datetime | str | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> Report[ForecastRow]:
        """Weighted forecast of the stored opportunities (same rules as ``pycrm.analytics.forecast``). By
        ``region``: the country of the deal's customer, among the customers the actor may read (one it may
        not read falls in the ``None`` group), so it needs the read right on customers, ``country`` unmasked."""
        checked = check_period(period)
        groups = as_tuple(by, FORECAST_GROUPS)
        lo, hi = check_range(start, end)
        _Converter(rates)  # the type check of ``rates``
        joins: dict[str, list[Any]] = {"regions": []} if "region" in groups else {}
        got = self._pushdown("forecast", Opportunity, where, period=checked, groups=groups, rates=rates, lo=lo, hi=hi, **joins)
        if got is not None:
            return got  # type: ignore[no-any-return]
        regions = {str(c.id): c.country for c in self._related(Customer, "country")} if joins else None
        return forecast(
            self._stream(Opportunity, where), period=period, by=by, rates=rates, start=start, end=end, regions=regions
        )

    def funnel(self, *, pipeline: Pipeline | str = DEFAULT_PIPELINE, where: Mapping[str, Any] | None = None) -> Report[FunnelRow]:
        """Funnel and time in stage of one pipeline's opportunities (``pycrm.analytics.funnel``)."""
        check_mapping("where", where)
        name = pipeline.name if isinstance(pipeline, Pipeline) else pipeline
        scope = {**(where or {}), "pipeline": name} if isinstance(name, str) else where
        resolved = _funnel_pipeline(pipeline)
        got = self._pushdown("funnel", Opportunity, scope, pipeline=resolved)
        if got is not None:
            return got  # type: ignore[no-any-return]
        return funnel(self._stream(Opportunity, scope), pipeline=pipeline)

    def win_rate(
        self,
        *,
        period: str | None = "month",
        by: str | Sequence[str] = (),
        start: dt.date | dt.datetime | str | None = None,
        end: dt.date | dt.datetime | str | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> Report[WinRateRow]:
        """Won / (won + lost) per period of closing (``pycrm.analytics.win_rate``)."""
        checked = check_period(period)
        groups = as_tuple(by, ("owner",))
        lo, hi = check_range(start, end)
        got = self._pushdown("win_rate", Opportunity, where, period=checked, groups=groups, lo=lo, hi=hi)
        if got is not None:
            return got  # type: ignore[no-any-return]
        return win_rate(self._stream(Opportunity, where), period=period, by=by, start=start, end=end)

    def sales_cycle(
        self,
        *,
        period: str | None = "month",
        by: str | Sequence[str] = (),
        start: dt.date | dt.datetime | str | None = None,
        end: dt.date | dt.datetime | str | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> Report[SalesCycleRow]:
        """Days from creation to winning, per period of closing (``pycrm.analytics.sales_cycle``)."""
        checked = check_period(period)
        groups = as_tuple(by, ("owner",))
        lo, hi = check_range(start, end)
        got = self._pushdown("sales_cycle", Opportunity, where, period=checked, groups=groups, lo=lo, hi=hi)
        if got is not None:
            return got  # type: ignore[no-any-return]
        return sales_cycle(self._stream(Opportunity, where), period=period, by=by, start=start, end=end)

    # ---- sales over time ----
    def sales_series(
        self,
        *,
        period: str = "month",
        by: str | Sequence[str] = (),
        rates: RateTable | None = None,
        start: dt.date | dt.datetime | str | None = None,
        end: dt.date | dt.datetime | str | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> Report[SalesSeriesRow]:
        """Orders and revenue per period of the stored orders (``pycrm.analytics.sales_series``), split ``by``
        ``region`` (the customer's ``country``) or ``owner`` (the customer's ``owner_id``): those come from
        the customers the actor may read (one it may not read falls in the ``None`` group), so grouping needs
        the read right on customers and those fields unmasked."""
        grain = check_series_period(period)
        groups = series_groups(by)
        lo, hi = check_range(start, end)
        _Converter(rates)
        joins: dict[str, list[Any]] = {arg: [] for arg, group in (("regions", "region"), ("owners", "owner")) if group in groups}
        got = self._pushdown("sales_series", Order, where, period=grain, groups=groups, rates=rates, lo=lo, hi=hi, **joins)
        if got is not None:
            return got  # type: ignore[no-any-return]
        regions = owners = None
        if "regions" in joins:
            regions = {str(c.id): c.country for c in self._related(Customer, "country")}
        if "owners" in joins:
            owners = {str(c.id): c.owner_id for c in self._related(Customer, "owner_id")}
        return sales_series(
            self._stream(Order, where), period=grain, by=by, rates=rates, start=start, end=end, regions=regions, owners=owners
        )

    def forecast_sales(
        self,
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
        where: Mapping[str, Any] | None = None,
    ) -> SalesForecast:
        """Forecast of :meth:`sales_series` with seasonality and prediction intervals
        (``pycrm.analytics.forecast_sales``): the series comes from the store (SQL on the SQL adapter), then an
        ETS model is fitted per series. Needs statsmodels (``pip install "pycrm[forecast]"``); without it
        raises ``MissingDependencyError``, a ``CRMError``, before reading anything."""
        _check_forecast_args(horizon, measure, seasonal, level)
        _statsmodels()
        history = self.sales_series(period=period, by=by, rates=rates, start=start, end=end, where=where)
        return forecast_series(history, period=period, horizon=horizon, measure=measure, seasonal=seasonal, level=level, by=by)

    # ---- customers ----
    def customer_activity(
        self,
        *,
        period: str = "month",
        start: dt.date | dt.datetime | str | None = None,
        end: dt.date | dt.datetime | str | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> Report[CustomerActivityRow]:
        """New, active, retained and churned customers per period (``pycrm.analytics.customer_activity``)."""
        if period is None:
            needs = "customer activity needs a period (week, month, quarter, year)"
            raise ValidationError([FieldError("period", "required", needs)])
        grain = check_period(period)
        lo, hi = check_range(start, end)
        got = self._pushdown("customer_activity", Order, where, period=grain, lo=lo, hi=hi)
        if got is not None:
            return got  # type: ignore[no-any-return]
        return customer_activity(self._stream(Order, where), period=period, start=start, end=end)

    def top_customers(
        self,
        *,
        n: int = 10,
        rates: RateTable | None = None,
        start: dt.date | dt.datetime | str | None = None,
        end: dt.date | dt.datetime | str | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> Report[TopCustomerRow]:
        """The best customers by order revenue, with their names (``pycrm.analytics.top_customers``)."""
        check_count("n", n)
        lo, hi = check_range(start, end)
        _Converter(rates)
        best = self._pushdown("top_customers", Order, where, n=n, rates=rates, lo=lo, hi=hi)
        if best is None:
            best = top_customers(self._stream(Order, where), n=n, rates=rates, start=start, end=end)
        tx = self._s._transaction()
        names = {}
        for row in best:
            customer = tx.get(Customer, row.customer_id)
            if customer is not None:  # the name as this actor may see it (masked or hidden by field rules)
                names[row.customer_id] = self._s._present(Customer, customer).name
        rows = [TopCustomerRow(r.rank, r.customer_id, names.get(r.customer_id), r.orders, r.revenue, r.currency) for r in best]
        return Report(TopCustomerRow, rows, title=best.title, x=best.x, y=best.y)

    # ---- service ----
    def ticket_summary(
        self,
        *,
        by: str | Sequence[str] = "status",
        start: dt.date | dt.datetime | str | None = None,
        end: dt.date | dt.datetime | str | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> Report[TicketCountRow]:
        """Tickets counted by status, priority, category and/or channel (``pycrm.analytics.ticket_summary``)."""
        groups = ticket_groups(by)
        lo, hi = check_range(start, end)
        guard = self._s._guard
        grouped = [g for g in groups if g in REPORT_GROUP_READS["ticket_summary"]]
        if grouped and not guard.system:  # a count per category shows the categories
            guard.check_visible_fields(Ticket, grouped, "report on")
        got = self._pushdown("ticket_summary", Ticket, where, groups=groups, lo=lo, hi=hi)
        if got is not None:
            return got  # type: ignore[no-any-return]
        return ticket_summary(self._stream(Ticket, where), by=by, start=start, end=end)

    def service_times(
        self,
        *,
        period: str | None = "month",
        by: str | Sequence[str] = (),
        start: dt.date | dt.datetime | str | None = None,
        end: dt.date | dt.datetime | str | None = None,
        as_of: dt.datetime | dt.date | str | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> Report[ServiceTimeRow]:
        """Response and resolution hours and SLA breaches (``pycrm.analytics.service_times``)."""
        checked = check_period(period)
        groups = as_tuple(by, ("priority",))
        lo, hi = check_range(start, end)
        now = _as_of(as_of)
        got = self._pushdown("service_times", Ticket, where, period=checked, groups=groups, lo=lo, hi=hi, now=now)
        if got is not None:
            return got  # type: ignore[no-any-return]
        return service_times(self._stream(Ticket, where), period=period, by=by, start=start, end=end, as_of=now)

    def sla(
        self,
        policy: Any,
        *,
        period: str | None = "month",
        by: str | Sequence[str] = (),
        start: dt.date | dt.datetime | str | None = None,
        end: dt.date | dt.datetime | str | None = None,
        as_of: dt.datetime | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> Any:
        """SLA compliance of the tickets this session sees under ``policy`` (``pycrm.service.sla_compliance``):
        the customers it reads decide targets on tier or segment (a customer it cannot read is no customer),
        the users it reads give the agents' teams (``by="team"`` needs the right to read users)."""
        from pycrm.domain import utcnow
        from pycrm.service._report import GROUPS, sla_compliance
        from pycrm.service._sla import SlaPolicy, _aware

        if not isinstance(policy, SlaPolicy):
            raise ValidationError([FieldError("policy", "type", f"expected an SlaPolicy, got {type(policy).__name__}")])
        checked = check_period(period)
        groups = as_tuple(by, GROUPS)
        reads = [f for f in ("category", "channel") if f in groups or any(getattr(t, f) is not None for t in policy.targets)]
        guard = self._s._guard
        if reads and not guard.system:  # a target or a group per category shows the categories
            guard.check_visible_fields(Ticket, reads, "report on")
        lo, hi = check_range(start, end)
        now = _aware(as_of, "as_of") if as_of is not None else utcnow()
        team_scope: list[Any] | None = None  # the users joined for ``team``, within this actor's read scope
        if "team" in groups:
            self._check_reads(User)
            team_scope = self._s._conditions(User, None, "read")
        got = self._pushdown(
            "sla", Ticket, where, policy=policy, period=checked, groups=groups, lo=lo, hi=hi, now=now, team_scope=team_scope
        )
        if got is not None:
            return got
        tickets = list(self._stream(Ticket, where))
        customers: list[Any] = []
        if policy.reads_customers:
            wanted = {t.customer_id for t in tickets}
            customers = [c for c in self._stream(Customer, None) if c.id in wanted]
        users = list(self._stream(User, None)) if "team" in groups else []
        return sla_compliance(
            tickets, policy, customers=customers, users=users, period=period, by=by, start=start, end=end, as_of=now
        )

    def campaign_kpis(
        self, *, where: Mapping[str, Any] | None = None, clv: Decimal | int | None = None
    ) -> Report[CampaignKpiRow]:
        """The KPIs of the campaigns matching ``where`` (``pycrm.analytics.campaign_kpis``), from the members,
        responses, orders and won deals the actor may read (another owner's customers count for nothing). It
        needs the read right on each of them and their report fields unmasked. ``clv``: a customer value to
        use instead of the mean revenue per buying customer."""
        value = check_clv(clv)
        for kind in (CampaignMember, CampaignResponse, Order, Opportunity):
            self._check_reads(kind)
        joins: dict[str, list[Any]] = {"members": [], "responses": [], "orders": [], "deals": []}
        got = self._pushdown("campaign_kpis", Campaign, where, clv=value, **joins)
        if got is not None:
            return got  # type: ignore[no-any-return]
        return campaign_kpis(
            list(self._stream(Campaign, where)),
            self._stream(CampaignMember, None),
            self._stream(CampaignResponse, None),
            self._stream(Order, None),
            self._stream(Opportunity, None),
            clv=value,
        )

    def product_sales(
        self,
        *,
        by: str = "product",
        start: dt.date | dt.datetime | str | None = None,
        end: dt.date | dt.datetime | str | None = None,
        level: int | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> Report[ProductSalesRow]:
        """Revenue, quantity, lines and orders of the order lines of the orders the actor may read, per
        ``product``, ``category`` (rolled up to ``level`` parts), ``region`` (the customer's country) or ``owner``
        (the customer's owner) (``pycrm.analytics.product_sales``). ``where`` filters the orders. Grouping by
        category reads the products' categories (it needs the read right on products); by region or owner the
        country or owner of the customers the actor may read (one it may not read is the ``None`` group)."""
        checked, lvl = check_product_sales(by, level)
        lo, hi = check_range(start, end)
        arg, kind, field = _PRODUCT_JOINS.get(checked, (None, None, None))
        joins: dict[str, list[Any]] = {arg: []} if arg is not None else {}
        got = self._pushdown("product_sales", Order, where, by=checked, level=lvl, lo=lo, hi=hi, **joins)
        if got is not None:
            return got  # type: ignore[no-any-return]
        mapping: dict[str, Any] = {}
        if arg is not None and kind is not None and field is not None:
            mapping[arg] = {str(e.id): getattr(e, field) for e in self._related(kind, field)}
        return product_sales(self._stream(Order, where), by=checked, start=start, end=end, level=lvl, **mapping)

    # ---- basket analysis ----
    def frequent_itemsets(
        self,
        *,
        min_support: float | int,
        max_len: int | None = None,
        max_itemsets: int = MAX_ITEMSETS,
        start: dt.date | dt.datetime | str | None = None,
        end: dt.date | dt.datetime | str | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> FrequentItemsets:
        """The frequent itemsets (``pycrm.analytics.frequent_itemsets``) of the baskets of the orders the actor may
        read: one basket per order with lines (its distinct products), orders from ``start`` to ``end``
        (inclusive UTC days of ``occurred_at``) matching ``where``. On SQL the item and pair counts are made in
        the database and only the orders with three or more frequent products are read (docs/basket.md)."""
        check_mining(min_support, max_len, max_itemsets)
        lo, hi = check_range(start, end)
        kw: dict[str, Any] = {"min_support": min_support, "max_len": max_len, "max_itemsets": max_itemsets}
        got = self._pushdown("frequent_itemsets", Order, where, lo=lo, hi=hi, **kw)
        if got is not None:
            return got  # type: ignore[no-any-return]
        return frequent_itemsets(order_baskets(self._stream(Order, where), start=start, end=end), **kw)

    def basket_rules(
        self,
        *,
        min_support: float | int,
        metric: Metric = "confidence",
        min_threshold: float = 0.8,
        min_confidence: float | None = None,
        min_lift: float | None = None,
        max_len: int | None = None,
        start: dt.date | dt.datetime | str | None = None,
        end: dt.date | dt.datetime | str | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> Report[AssociationRule]:
        """Association rules (``pycrm.analytics.association_rules``) of the itemsets of
        :meth:`frequent_itemsets`; every argument is checked before any line is read."""
        check_rules(metric, min_threshold, min_confidence, min_lift)
        fi = self.frequent_itemsets(min_support=min_support, max_len=max_len, start=start, end=end, where=where)
        return association_rules(fi, metric=metric, min_threshold=min_threshold, min_confidence=min_confidence, min_lift=min_lift)

    def also_bought(
        self,
        product_id: str,
        *,
        top: int | None = 10,
        min_count: int = 1,
        start: dt.date | dt.datetime | str | None = None,
        end: dt.date | dt.datetime | str | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> Report[AlsoBoughtRow]:
        """ "Customers who bought ``product_id`` also bought" (``pycrm.analytics.also_bought``) over the baskets
        of :meth:`frequent_itemsets`."""
        check_also_bought(product_id, top, min_count, "product_id")
        lo, hi = check_range(start, end)
        got = self._pushdown("also_bought", Order, where, product=product_id, top=top, min_count=min_count, lo=lo, hi=hi)
        if got is not None:
            return got  # type: ignore[no-any-return]
        baskets = order_baskets(self._stream(Order, where), start=start, end=end)
        return also_bought(baskets, product_id, top=top, min_count=min_count)

    # ---- CLV and churn risk ----
    def activity_counts(
        self,
        *,
        by: str = "kind",
        kind: str | None = None,
        since: dt.datetime | None = None,
        days: int | None = None,
        as_of: dt.datetime | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> list[ActivityCountRow]:
        """Behaviour events the actor may read, counted per ``by`` -- ``kind``, ``customer``, ``day`` (UTC) or
        ``segment`` (the customer's RFM segment as of ``as_of``, from ``s.analytics.rfm``: needs the read right
        on orders; a customer without orders counts under ``None``) -- of ``kind`` only when given, since
        ``since`` or in the ``days`` before ``as_of`` (default: now), up to ``as_of``. Counted in the
        database on SQL stores (equal to ``pycrm.analytics.activity_counts``)."""
        group = check_activity_group(by)
        end = opt_aware(as_of, "as_of") or _utcnow()
        start = opt_aware(since, "since")
        if days is not None:
            check_count("days", days)
            if start is not None:
                raise ValidationError([FieldError("days", "conflict", "give since or days, not both")])
            start = end - dt.timedelta(days=days)
        if kind is not None and not isinstance(kind, str):
            raise ValidationError([FieldError("kind", "type", f"expected text, got {type(kind).__name__}")])
        chosen: dict[str, Any] = {"occurred_at": {"lt": end, **({"gte": start} if start is not None else {})}}
        if kind is not None:
            chosen["kind"] = kind
        extra = dict(check_mapping("where", where)) if where is not None else {}
        both = sorted(set(extra) & set(chosen))
        if both:
            raise ValidationError([FieldError(f"where.{k}", "conflict", "given by the report's own arguments") for k in both])
        wanted = {**extra, **chosen}
        segments: dict[str, str | None] | None = None
        if group == "segment":
            segments = {sc.customer_id: sc.segment for sc in self.rfm(as_of=end)}
        got = self._pushdown("activity_counts", Activity, wanted, group="customer" if group == "segment" else group)
        if got is None:
            return activity_counts(self._stream(Activity, wanted), by=group, segments=segments)
        if segments is None:
            return count_rows(got)
        per: dict[str | None, int] = {}
        for customer, n in got.items():
            key = segments.get(customer)
            per[key] = per.get(key, 0) + n
        return count_rows(per)

    def satisfaction(
        self,
        *,
        kind: str = "csat",
        by: str | Sequence[str] = (),
        period: str | None = None,
        start: dt.date | dt.datetime | str | None = None,
        end: dt.date | dt.datetime | str | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> Report[SatisfactionRow]:
        """CSAT or NPS of the surveys the actor may read (``pycrm.analytics.satisfaction``). Grouping by
        ``team`` reads the agents' ``team_id``, by ``segment`` the customers' ``category`` and by ``category``
        the ``category`` of the tickets the surveys are about, of the users, customers and tickets the actor
        may read (one it may not read falls in the ``None`` group): it needs the read right on users /
        customers / tickets, and those fields unmasked."""
        checked_kind, groups = check_satisfaction(kind, by)
        grain = check_period(period)
        lo, hi = check_range(start, end)
        joined = (("teams", "team"), ("segments", "segment"), ("categories", "category"))
        joins: dict[str, list[Any]] = {arg: [] for arg, group in joined if group in groups}
        got = self._pushdown("satisfaction", Survey, where, kind=checked_kind, groups=groups, period=grain, lo=lo, hi=hi, **joins)
        if got is not None:
            return got  # type: ignore[no-any-return]
        teams = segments = categories = None
        if "teams" in joins:
            teams = {str(u.id): u.team_id for u in self._related(User, "team_id")}
        if "segments" in joins:
            segments = {str(c.id): c.category for c in self._related(Customer, "category")}
        if "categories" in joins:
            categories = {str(t.id): t.category for t in self._related(Ticket, "category")}
        return satisfaction(
            self._stream(Survey, where),
            kind=kind,
            by=by,
            period=period,
            start=start,
            end=end,
            teams=teams,
            segments=segments,
            categories=categories,
        )

    def _related(self, kind: type[Entity], field: str) -> Iterator[Any]:
        """The rows of ``kind`` the actor may read, for a report that groups by their ``field`` (which must not
        be masked or hidden for the actor), read in batches of 5,000."""
        guard = self._s._guard
        if not guard.system:
            guard.check_visible_fields(kind, (field,), "report on")
        return self._s._transaction().iter(kind, self._s._conditions(kind, None, "read"), 5000)

    def purchase_summary(
        self,
        *,
        calibration_end: dt.date | dt.datetime | str,
        freq: str = "D",
        unit: str = "D",
        where: Mapping[str, Any] | None = None,
    ) -> PurchaseSummary:
        """Frequency, recency, T and monetary value per customer from the stored orders
        (``pycrm.analytics.purchase_summary``; computed inside the database on the SQL adapter)."""
        errors: list[FieldError] = []
        _clv_period(freq, "freq", errors)
        _clv_period(unit, "unit", errors)
        if errors:
            raise ValidationError(errors)
        cutoff, ref_date = _cutoff(calibration_end, "calibration_end")
        got = self._pushdown("purchase_summary", Order, where, cutoff=cutoff, ref_date=ref_date, freq=freq, unit=unit)
        if got is not None:
            return got  # type: ignore[no-any-return]
        return purchase_summary(self._stream(Order, where), calibration_end=calibration_end, freq=freq, unit=unit)  # type: ignore[arg-type]

    def clv(
        self,
        *,
        as_of: dt.date | dt.datetime | str,
        months: int = 12,
        discount_rate: float = 0.01,
        freq: str = "D",
        unit: str = "D",
        penalizer: float = 0.0,
        where: Mapping[str, Any] | None = None,
    ) -> Report[CLVScore]:
        """CLV and P(alive) per customer from the stored orders up to ``as_of`` (``pycrm.analytics.clv``):
        the purchase summary comes from the store (SQL on the SQL adapter), then BG/NBD and Gamma-Gamma are
        fitted. Needs SciPy (``pip install "pycrm[analytics]"``); without it raises ``MissingDependencyError``,
        a ``CRMError``, before reading anything."""
        _scipy()
        _cutoff(as_of)  # the day check, naming ``as_of``
        summary = self.purchase_summary(calibration_end=as_of, freq=freq, unit=unit, where=where)
        purchases = fit_bgnbd(summary, penalizer=penalizer)
        spend = fit_gamma_gamma(summary, penalizer=penalizer)
        return customer_lifetime_value(summary, purchases, spend, months=months, discount_rate=discount_rate)

    # ---- lead scoring ----
    def _readable(self, kind: type[Entity], fields: Sequence[str], report: str) -> list[Any] | None:
        """The rows of ``kind`` the actor may read (``fields`` unmasked) -- the columns ``report`` reads on a
        store that computes reports, else the entities -- or None when the actor may not read ``kind`` at
        all: lead scoring then leaves out what ``kind`` would tell (a customer's features, an engagement
        count), rather than refusing."""
        try:
            conds = self._s._conditions(kind, None, "read")
        except PermissionDenied:
            return None
        guard = self._s._guard
        if not guard.system:
            guard.check_visible_fields(kind, fields, "score leads on")
        tx = self._s._transaction()
        if isinstance(tx, Reports):
            return tx.report(report, conditions=conds)  # type: ignore[no-any-return]
        return list(tx.iter(kind, conds, 5000))

    def _times(self, report: str, kind: type[Entity], field: str) -> list[Any] | None:
        """The (customer_id, ``field``) of the rows of ``kind`` the actor may read -- two columns read by the
        store (the SQL adapter's ``report``), or the entities -- or None when it may not read ``kind``."""
        return self._readable(kind, ("customer_id", field), report)

    def lead_scoring(
        self,
        *,
        as_of: dt.datetime | None = None,
        where: Mapping[str, Any] | None = None,
        leads: bool = True,
        bins: int = 5,
        smoothing: float = 1.0,
        folds: int = 5,
    ) -> LeadScoring:
        """A lead-scoring model fitted on the closed deals this session reads (``where`` narrows them) and the
        scores of its open deals and leads, as ``pycrm.analytics.lead_scoring`` (docs/scoring.md): the
        customers, interactions, tickets and orders are read within the actor's scope too (a kind it may not
        read leaves its features out). Nothing is written; :meth:`score_leads` stores the scores. On the SQL
        adapter only the columns the features need are read (one query per kind), never whole entities."""
        check_mapping("where", where)
        now = opt_aware(as_of, "as_of") or _utcnow()
        kw: dict[str, Any] = {"bins": bins, "smoothing": smoothing, "folds": folds}
        records: list[Any] | None = self._pushdown("scoring_deals", Opportunity, where, as_of=now)
        if records is None:  # no pushdown: the entities, made records as the pure function makes them
            records = list(_entity_records(self._stream(Opportunity, where), now, now.timestamp()))
        customers = self._readable(Customer, ("kind", "category", "country", "tags", "status"), "scoring_customers")
        wanted = {r[1] for r in records}
        if leads and customers is not None:
            wanted |= {str(c.id) for c in customers if c.status in LEAD_STATUSES}
        else:
            leads = False

        def mine(rows: list[Any] | None) -> list[Any] | None:
            return None if rows is None else [r for r in rows if str(r.customer_id) in wanted]

        sources = _sources(
            mine(self._times("interaction_times", Interaction, "occurred_at")),
            mine(self._times("ticket_times", Ticket, "created_at")),
            mine(self._times("order_times", Order, "occurred_at")),
        )
        by_id = {str(c.id): c for c in customers or () if str(c.id) in wanted}
        return LeadScoring(_assemble(records, by_id, sources, now, leads), **kw)

    def score_leads(
        self,
        *,
        as_of: dt.datetime | None = None,
        where: Mapping[str, Any] | None = None,
        bins: int = 5,
        smoothing: float = 1.0,
        folds: int = 5,
    ) -> LeadScoring:
        """Fit as :meth:`lead_scoring` does and store each open deal's score on the deal: ``win_probability``
        (4 places) and ``scored_at`` (``as_of``, default now), for the open deals this session may update
        (``where`` narrows them); one ``OpportunityUpdated`` each. Needs the update right on opportunities
        (PermissionDenied otherwise, before anything is read). Returns the fitted :class:`LeadScoring`."""
        from decimal import Decimal

        check_mapping("where", where)
        when = opt_aware(as_of, "as_of") or _utcnow()
        writable = self._s._conditions(Opportunity, where, "update")  # PermissionDenied first
        scoring = self.lead_scoring(as_of=when, where=where, leads=False, bins=bins, smoothing=smoothing, folds=folds)
        scores = {s.opportunity_id: s for s in scoring.scores(top=0)}
        repo = self._s.opportunities
        for deal in list(self._s._transaction().iter(Opportunity, writable, 5000)):
            got = scores.get(str(deal.id))
            if got is None or not isinstance(deal, Opportunity):
                continue
            deal.win_probability = Decimal(repr(got.probability))
            deal.scored_at = when
            repo.update(deal)
        return scoring
