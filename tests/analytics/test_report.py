"""``Report``: a list of frozen rows with a DataFrame, a plot and a text table; and ``s.analytics`` reports
on every adapter giving exactly what the pure functions give over the same entities."""

from __future__ import annotations

import datetime as dt
import math
import sys
from collections.abc import Callable
from decimal import Decimal

import attrs
import pytest

import pycrm
from pycrm import Customer, Money, Opportunity, Order, Ticket
from pycrm.analytics import (
    ForecastRow,
    RateTable,
    Report,
    TopCustomerRow,
    customer_activity,
    forecast,
    funnel,
    sales_cycle,
    service_times,
    ticket_summary,
    top_customers,
    win_rate,
)

UTC = dt.UTC


@attrs.frozen
class Row:
    period: str | None
    deals: int
    amount: Decimal | None


def sample() -> Report[Row]:
    return Report(Row, [Row("2024-01", 3, Decimal("1234.5")), Row(None, 12, None)], title="Deals", x="period", y="amount")


def test_a_report_is_a_list_of_rows_that_knows_its_columns() -> None:
    r = sample()
    assert isinstance(r, list) and len(r) == 2 and r[0].deals == 3
    assert r == [Row("2024-01", 3, Decimal("1234.5")), Row(None, 12, None)]
    assert r.columns == ("period", "deals", "amount") and r.row_type is Row
    assert Report(Row).columns == ("period", "deals", "amount") and Report(Row) == []
    assert repr(Report(Row)) == "Report(Row, [])"
    with pytest.raises(pycrm.ValidationError) as caught:  # not an attrs class: bad input, named
        Report(dict)  # type: ignore[type-var]
    assert caught.value.fields == ["row_type"]


def test_to_text_aligns_numbers_and_shows_empty_reports() -> None:
    assert sample().to_text() == "\n".join(
        [
            "Deals",
            "  period   deals   amount",
            "  2024-01      3  1,234.5",
            "              12",
        ]
    )
    assert Report(Row, title="Nothing").to_text(["period"]) == "Nothing\n  period\n  (none)"
    with pytest.raises(pycrm.ValidationError):
        sample().to_text(["nope"])


def test_to_dataframe_has_one_column_per_field() -> None:
    pd = pytest.importorskip("pandas")
    df = sample().to_dataframe()
    assert list(df.columns) == ["period", "deals", "amount"]
    assert df["amount"].iloc[0] == 1234.5 and isinstance(df["amount"].iloc[0], float)
    assert df["deals"].tolist() == [3, 12]
    exact = sample().to_dataframe(exact=True)
    assert exact["amount"].iloc[0] == Decimal("1234.5") and isinstance(exact["amount"].iloc[0], Decimal)
    empty = forecast([]).to_dataframe()
    assert isinstance(empty, pd.DataFrame) and empty.empty
    assert list(empty.columns) == [a.name for a in attrs.fields(ForecastRow)]
    # enums become their values, None stays missing, never NaN from a division
    df = ticket_summary([Ticket("c", "s")]).to_dataframe()
    assert df.to_dict("records") == [{"status": "new", "priority": None, "tickets": 1, "category": None, "channel": None}]


def test_to_dataframe_without_pandas_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # makes `import pandas` raise ImportError
    with pytest.raises(pycrm.CRMError, match=r'pip install "pycrm\[pandas\]"'):
        sample().to_dataframe()


def test_plot_without_matplotlib_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(pycrm.CRMError, match=r'pip install "pycrm\[plot\]"'):
        sample().plot()


def test_plot_checks_its_columns_before_importing_anything() -> None:
    with pytest.raises(pycrm.ValidationError) as err:
        sample().plot(y="nope", kind="pie")
    assert err.value.fields == ["nope", "kind"]
    with pytest.raises(pycrm.ValidationError) as err:
        Report(Row).plot()
    assert err.value.fields == ["y"]


def test_plot_returns_a_figure() -> None:
    pytest.importorskip("matplotlib")
    fig = sample().plot()
    ax = fig.axes[0]
    assert ax.get_title() == "Deals" and [t.get_text() for t in ax.get_xticklabels()] == ["2024-01", "(none)"]
    assert len(sample().plot(y=["deals", "amount"], kind="line").axes[0].lines) == 2


# ---------------------------------------------------------------------------------------------- s.analytics


def fill(crm: pycrm.CRM) -> None:
    t0 = dt.datetime(2024, 1, 1, 9, tzinfo=UTC)

    def at(days: float) -> dt.datetime:
        return t0 + dt.timedelta(days=days)

    with crm.session() as s:
        a = s.customers.add(Customer("Acme Ltd"))
        b = s.customers.add(Customer("北京华信科技有限公司"))
        deals = []
        for k in range(6):
            o = Opportunity(
                a.id if k % 2 else b.id,
                f"deal {k}",
                Money(1000 * (k + 1), "CNY"),
                owner_id=f"u{k % 2}",
                expected_close=dt.date(2024, 1 + k, 15),
                created_at=at(0),
            )
            if k >= 1:
                o.move_to("qualification", at=at(k))
            if k >= 2:
                o.move_to("proposal", at=at(2 * k))
            if k in (3, 4):
                o.win(at=at(3 * k))
            if k == 5:
                o.lose("price", at=at(20))
            deals.append(o)
        s.opportunities.add_many(deals)
        s.orders.add_many(
            [
                Order(a.id, at(1), Money("100.5", "CNY")),
                Order(b.id, at(40), Money(300, "CNY")),
                Order(a.id, at(70), Money(50, "CNY")),
            ]
        )
        ts = []
        for k, priority in enumerate(["urgent", "high", "normal"]):
            t = Ticket(a.id, f"ticket {k}", priority=priority, created_at=at(k))
            t.move_to("open", at=at(k) + dt.timedelta(hours=1 + k))
            if k < 2:
                t.move_to("resolved", at=at(k) + dt.timedelta(hours=10 * (k + 1)))
            ts.append(t)
        s.tickets.add_many(ts)


def test_session_reports_agree_with_the_pure_functions(crm: pycrm.CRM) -> None:
    fill(crm)
    as_of = dt.datetime(2024, 6, 1, tzinfo=UTC)
    with crm.session() as s:
        opps = list(s.opportunities.iter())
        orders = list(s.orders.iter())
        tickets = list(s.tickets.iter())
        checks: list[tuple[Report, Report]] = [
            (s.analytics.forecast(by=("owner", "stage")), forecast(opps, by=("owner", "stage"))),
            (s.analytics.forecast(period="quarter", start="2024-02-01"), forecast(opps, period="quarter", start="2024-02-01")),
            (s.analytics.funnel(), funnel(opps)),
            (s.analytics.win_rate(period=None), win_rate(opps, period=None)),
            (s.analytics.sales_cycle(by="owner"), sales_cycle(opps, by="owner")),
            (s.analytics.customer_activity(), customer_activity(orders)),
            (s.analytics.ticket_summary(by=("status", "priority")), ticket_summary(tickets, by=("status", "priority"))),
            (s.analytics.service_times(as_of=as_of), service_times(tickets, as_of=as_of)),
        ]
        for got, want in checks:
            assert got == want and got.row_type is want.row_type and got
        assert s.analytics.forecast(where={"owner_id": "u1"}) == forecast([o for o in opps if o.owner_id == "u1"])
        top = s.analytics.top_customers(n=5)
        names = {c.id: c.name for c in s.customers.iter()}
        assert top == top_customers(orders, n=5, names=names)
        assert [(r.name, r.revenue) for r in top] == [("北京华信科技有限公司", 300), ("Acme Ltd", Decimal("150.5"))]
        usd = s.analytics.top_customers(rates=RateTable("USD", [("CNY", "2024-01-01", "0.125")]))
        assert [r.revenue for r in usd] == [Decimal("37.5"), Decimal("18.8125")]  # 300 / 8; 100.5 / 8 + 50 / 8


def test_session_reports_on_an_empty_store_and_bad_input(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        calls: list[Callable[[], Report]] = [
            s.analytics.forecast,
            s.analytics.funnel,
            s.analytics.win_rate,
            s.analytics.sales_cycle,
            s.analytics.customer_activity,
            s.analytics.top_customers,
            s.analytics.ticket_summary,
            s.analytics.service_times,
        ]
        for call in calls:
            assert call() == []
        with pytest.raises(pycrm.ValidationError) as err:
            s.analytics.forecast(where={"colour": "red"})
        assert err.value.fields
        with pytest.raises(pycrm.ValidationError) as err:
            s.analytics.top_customers(n=-1)
        assert err.value.fields == ["n"]
    with pytest.raises(pycrm.CRMError, match="session has ended"):
        s.analytics.forecast()


def test_top_customer_rows_carry_names_from_the_store(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        c = s.customers.add(Customer("Zed"))
        s.orders.add(Order(c.id, dt.datetime(2024, 1, 1, tzinfo=UTC), Money(5, "EUR")))
    with crm.session() as s:
        assert s.analytics.top_customers() == [TopCustomerRow(1, c.id, "Zed", 1, Decimal(5), "EUR")]


def test_plot_draws_the_rows_on_a_figure() -> None:
    pytest.importorskip("matplotlib")
    fig = sample().plot()
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches] == [1234.5, 0.0]  # None is drawn as a zero bar
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2024-01", "(none)"] and ax.get_title() == "Deals"
    lines = sample().plot(x="period", y=["deals", "amount"], kind="line").axes[0].lines
    assert [list(line.get_ydata()[:1]) for line in lines] == [[3.0], [1234.5]]
    assert math.isnan(lines[1].get_ydata()[1])  # a missing value is a gap in a line, not a zero
