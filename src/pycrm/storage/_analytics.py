"""``s.analytics``: reports computed where the data lives.

A transaction that offers a pushdown (the SQL adapter) computes inside the database; otherwise the pure
functions of :mod:`pycrm.analytics` run over a stream of entities. Both give identical results.

The sales, customer and service reports take the pure function's keyword arguments plus ``where``, a
repository filter (shared/API.md) choosing which opportunities, orders or tickets are read; entities
stream through the store in batches, never all loaded at once by the store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
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
    service_times,
    ticket_summary,
    top_customers,
    win_rate,
)
from pycrm.analytics._rfm import _cutoff, _new_score, _segment_table
from pycrm.domain import DEFAULT_PIPELINE, Customer, Entity, Opportunity, Order, Pipeline, Ticket
from pycrm.errors import FieldError, ValidationError
from pycrm.storage._where import parse_where

if TYPE_CHECKING:
    from pycrm.storage._repository import Session


class SessionAnalytics:
    """Analytics over the session's store: ``s.analytics.rfm(as_of=...)``."""

    def __init__(self, session: Session):
        self._s = session

    def _stream(self, kind: type[Entity], where: Mapping[str, Any] | None) -> Iterator[Any]:
        """Entities of ``kind`` matching ``where``, read in batches of 5,000."""
        self._s._check_open()
        conds = parse_where(kind, where, region=self._s.default_region)
        tx: Any = self._s._transaction()
        return tx.iter(kind, conds, 5000)  # type: ignore[no-any-return]

    def rfm(
        self,
        *,
        as_of: dt.date | dt.datetime | str,
        bins: int = 5,
        segments: Sequence[SegmentRule] = DEFAULT_SEGMENTS,
    ) -> list[RFMScore]:
        """RFM scores of every customer with orders on or before ``as_of`` (same rules as ``pycrm.analytics.rfm``)."""
        self._s._check_open()
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise ValidationError([FieldError("bins", "type", f"expected a whole number >= 1, got {bins!r}")])
        cutoff, ref_date = _cutoff(as_of)
        tx: Any = self._s._transaction()
        pushdown = getattr(tx, "rfm", None)
        if pushdown is None:
            return rfm(tx.iter(Order, [], 5000), as_of=as_of, bins=bins, segments=segments)
        currencies, rows = pushdown(cutoff, ref_date, bins)
        if len(currencies) > 1:
            mixed = ", ".join(sorted(currencies))
            problem = FieldError("orders.amount.currency", "currency_mismatch", f"orders mix {mixed}; convert first")
            raise ValidationError([problem])
        table = _segment_table(bins, segments)
        make = _new_score
        return [make(row[0], row[1], row[2], row[3], row[4], row[5], row[6], table[row[4]][row[5]]) for row in rows]

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
        """Weighted forecast of the stored opportunities (same rules as ``pycrm.analytics.forecast``)."""
        return forecast(self._stream(Opportunity, where), period=period, by=by, rates=rates, start=start, end=end)

    def funnel(self, *, pipeline: Pipeline | str = DEFAULT_PIPELINE, where: Mapping[str, Any] | None = None) -> Report[FunnelRow]:
        """Funnel and time in stage of one pipeline's opportunities (``pycrm.analytics.funnel``)."""
        name = pipeline.name if isinstance(pipeline, Pipeline) else pipeline
        scope = {**(where or {}), "pipeline": name} if isinstance(name, str) else where
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
        return sales_cycle(self._stream(Opportunity, where), period=period, by=by, start=start, end=end)

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
        best = top_customers(self._stream(Order, where), n=n, rates=rates, start=start, end=end)
        tx: Any = self._s._transaction()
        names = {}
        for row in best:
            customer = tx.get(Customer, row.customer_id)
            if customer is not None:
                names[row.customer_id] = customer.name
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
        """Tickets counted by status and/or priority (``pycrm.analytics.ticket_summary``)."""
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
        return service_times(self._stream(Ticket, where), period=period, by=by, start=start, end=end, as_of=as_of)
