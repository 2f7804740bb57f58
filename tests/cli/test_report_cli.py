"""``pycrm report sales|customers|service|products|forecast|campaigns|leads``: tables from a store, exit statuses and
one-line errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

import pycrm
import pycrm.cli
from pycrm import Customer, Money, Opportunity, Order, OrderLine, Product, Survey, Ticket
from pycrm.cli import main

UTC = dt.UTC


@pytest.fixture(autouse=True)
def _report_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command is listed in ``pycrm.cli.COMMANDS`` (added here too, so this runs before it is)."""
    monkeypatch.setitem(pycrm.cli.COMMANDS, "report", "pycrm.analytics._report_cli")


@pytest.fixture
def store(tmp_path: Path) -> Path:
    db = tmp_path / "crm.db"
    t0 = dt.datetime(2024, 3, 1, 9, tzinfo=UTC)
    with pycrm.open(f"sqlite:///{db}") as crm, crm.session() as s:
        a = s.customers.add(Customer("Acme Ltd"))
        b = s.customers.add(Customer("上海星辰科技有限公司"))
        won = Opportunity(a.id, "won", Money(5000, "CNY"), created_at=t0 - dt.timedelta(days=20))
        won.win(at=t0 + dt.timedelta(days=5))
        lost = Opportunity(b.id, "lost", Money(100, "CNY"), created_at=t0)
        lost.lose("price", at=t0 + dt.timedelta(days=6))
        open_ = Opportunity(b.id, "open", Money(2000, "CNY"), stage="proposal", expected_close=dt.date(2024, 4, 10))
        s.opportunities.add_many([won, lost, open_])
        s.orders.add_many(
            [
                Order(a.id, t0 - dt.timedelta(days=10), Money(700, "CNY")),  # February 20
                Order(b.id, t0 + dt.timedelta(days=2), Money(1200, "CNY")),
                Order(a.id, t0 + dt.timedelta(days=200), Money(99999, "CNY")),  # after --as-of
            ]
        )
        t = Ticket(a.id, "help", priority="urgent", created_at=t0)
        t.move_to("open", at=t0 + dt.timedelta(hours=2))
        t.move_to("resolved", at=t0 + dt.timedelta(hours=8))
        s.tickets.add_many([t, Ticket(b.id, "more help", created_at=t0 + dt.timedelta(days=1))])
        day = dt.timedelta(days=1)
        s.surveys.add_many(
            [
                Survey(a.id, "csat", t0 + day, score=5, answered_at=t0 + 2 * day, ticket_id=t.id),
                Survey(a.id, "csat", t0 + 2 * day, score=4, answered_at=t0 + 2 * day),
                Survey(b.id, "csat", t0 + 3 * day, score=2, answered_at=t0 + 4 * day),
                Survey(b.id, "csat", t0 + 3 * day),  # not answered
                Survey(a.id, "nps", t0 + day, score=10, answered_at=t0 + day),
                Survey(b.id, "nps", t0 + day, score=3, answered_at=t0 + day),
                Survey(b.id, "nps", t0 + day, score=9, answered_at=t0 + day),
                Survey(a.id, "nps", t0 + 200 * day, score=0, answered_at=t0 + 200 * day),  # after --as-of
            ]
        )
    return db


def cells(out: str) -> list[list[str]]:
    """The output's lines as lists of whitespace-separated cells."""
    return [line.split() for line in out.splitlines()]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["report", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_sales_report(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "sales", "--store", str(store), "--as-of", "2024-03-31", "--periods", "2")
    assert status == 0 and err == ""
    assert "pycrm report sales: as of 2024-03-31, by month" in out
    # March: 5000 won in full, the lost deal counts zero; April: 2000 x 0.60
    table = cells(out)
    assert ["2024-03", "2", "0", "5,000", "5,000"] in table
    assert ["2024-04", "1", "2,000", "0", "1,200"] in table
    assert "Win rate, 2024-02 to 2024-03" in out and ["2024-03", "1", "1", "0.5"] in table
    assert ["2024-03", "1", "25", "25"] in table  # created Feb 10, won Mar 6: 25 days
    assert "closed_won" in out and "Funnel of pipeline 'default'" in out


def test_customers_report(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "customers", "--store", f"sqlite:///{store}", "--as-of", "2024-03-31", "--top", "1")
    assert status == 0 and err == ""
    # period, active, new, retained, churned, previously active, churn rate: Acme (February) churned
    assert ["2024-03", "1", "1", "0", "1", "1", "1"] in cells(out)
    assert "Top 1 customers by revenue up to 2024-03-31 (CNY)" in out
    assert "上海星辰科技有限公司" in out and "1,200" in out and "99,999" not in out


def test_service_report_by_quarter(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "service", "--store", str(store), "--as-of", "2024-03-31", "--period", "quarter")
    assert status == 0 and err == ""
    table = cells(out)
    assert "Tickets by status" in out and ["new", "1"] in table and ["resolved", "1"] in table
    assert ["urgent", "1"] in table and ["normal", "1"] in table
    # one urgent ticket answered in 2 h, resolved in 8 h (late for its 4 h SLA); the normal one is past 72 h
    assert ["2024-Q1", "2", "2", "2", "8", "8", "2"] in table
    # CSAT: 2 of the 3 answers score 4 or 5; NPS: 2 promoters and 1 detractor of 3 (the later survey left out)
    assert "Satisfaction 2022-Q4 to 2024-Q1: CSAT 66.67% (3 of 4 answered), NPS 33.33 (3 of 3 answered)" in out
    assert ["2024-Q1", "4", "3", "0.75", "3.67", "66.67"] in table
    assert ["2024-Q1", "3", "3", "2", "0", "1", "33.33"] in table


def test_service_report_with_an_sla_policy(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "sla.toml"
    policy.write_text(
        '[[targets]]\nname = "urgent"\npriority = ["urgent"]\nfirst_response = "1h"\nresolution = "4h"\n'
        '[[targets]]\nname = "standard"\nresolution = "3d"\n'
        '[calendar]\nweekdays = ["mon", "tue", "wed", "thu", "fri"]\nstart = "09:00"\nend = "18:00"\n',
        encoding="utf-8",
    )
    status, out, err = run(capsys, "service", "--store", str(store), "--as-of", "2024-03-31", "--sla", str(policy))
    assert status == 0 and err == "", err
    table = cells(out)
    assert "SLA compliance (business time)" in out
    # Friday 1 March 09:00: answered after 2 h (late for 1 h), resolved after 8 business hours (late for 4 h)
    assert ["2024-03", "urgent", "1", "0", "0", "1", "0", "8"] in table
    # the normal ticket, opened on Saturday 2 March, still open after 3 x 24 business hours: breached by the 31st
    # (no first-response target: that column and the median are empty)
    assert ["2024-03", "normal", "1", "0", "1", "0"] in table
    bad = tmp_path / "bad.toml"
    bad.write_text('[[targets]]\nname = "x"\nresolution = "soon"\n', encoding="utf-8")
    status, out, err = run(capsys, "service", "--store", str(store), "--sla", str(bad))
    assert status == 2 and f"{bad}: targets[0].resolution" in err
    status, out, err = run(capsys, "sales", "--store", str(store), "--sla", str(policy))
    assert status == 2 and "--sla" in err


def test_products_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "shop.db"
    t0 = dt.datetime(2024, 3, 1, 9, tzinfo=UTC)
    with pycrm.open(f"sqlite:///{db}") as crm, crm.session() as s:
        a = s.customers.add(Customer("Acme Ltd", country="DE", owner_id="u1"))
        b = s.customers.add(Customer("上海星辰科技有限公司", country="CN"))
        tea = s.products.add(Product("TEA-1", "Sencha 100 g", category="Tea/Green"))
        cup = s.products.add(Product("CUP-1", "Cup", category="Kitchen/Cups"))
        s.orders.add_many(
            [
                Order.from_lines(a.id, t0, [OrderLine(tea.id, 3, Money("10.00")), OrderLine(cup.id, 1, Money("4.50"))]),
                Order.from_lines(b.id, t0, [OrderLine(tea.id, 1, Money("10.00"), discount="1.00")]),
                Order.from_lines(b.id, t0 + dt.timedelta(days=100), [OrderLine(cup.id, 99, Money("4.50"))]),  # later
                Order(b.id, t0, Money(500, "CNY")),  # no lines: not in the product report
            ]
        )
    status, out, err = run(capsys, "products", "--store", str(db), "--as-of", "2024-03-31", "--top", "1", "--level", "1")
    assert status == 0 and err == ""
    assert "Top 1 products by revenue, 2023-10 to 2024-03" in out
    assert "1. TEA-1  Sencha 100 g  CNY  2  4  39.00" in out and "CUP-1  Cup" not in out
    table = cells(out)
    assert ["Tea", "CNY", "2", "2", "4", "39.0"] in table and ["Kitchen", "CNY", "1", "1", "1", "4.5"] in table
    assert ["DE", "CNY", "1", "2", "4", "34.5"] in table and ["CN", "CNY", "1", "1", "1", "9.0"] in table
    assert ["u1", "CNY", "1", "2", "4", "34.5"] in table and ["CNY", "1", "1", "1", "9.0"] in table  # no owner
    status, _, err = run(capsys, "products", "--store", str(db), "--level", "0")
    assert status == 2 and "--level" in err


def test_an_empty_store_prints_empty_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "empty.db"
    pycrm.open(f"sqlite:///{db}").close()
    for what in ("sales", "customers", "service"):
        status, out, err = run(capsys, what, "--store", str(db), "--as-of", "2024-01-31")
        assert status == 0 and "(none)" in out and err == ""
        if what == "service":
            assert "CSAT - (no surveys), NPS - (no surveys)" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["sales", "--as-of", "31/03/2024"], "--as-of"),
        (["sales", "--period", "day"], "--period"),
        (["customers", "--top", "0"], "--top"),
        (["service", "--periods", "many"], "--periods"),
        (["sales", "--store", "{tmp}/nope.db"], "nope.db"),
        (["sales", "--store", "{tmp}/notes.txt"], "is not a SQLite database"),
        (["sales", "--store", "postgresql+psycopg://nobody@127.0.0.1:1/none"], "cannot open"),
        (["forecasts"], "invalid choice"),
        (["forecast", "--horizon", "0"], "--horizon"),
        (["forecast", "--by", "colour"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    (tmp_path / "notes.txt").write_text("not a database\n", encoding="utf-8")
    status, _, err = run(capsys, *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert status == 2
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err
    assert not (tmp_path / "nope.db").exists()  # a report never creates a store


def test_the_default_store_is_the_demo_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    status, _, err = run(capsys, "sales")
    assert status == 2 and "pycrm-demo.db" in err and "pycrm demo" in err
    assert main(["demo", "--customers", "30"]) == 0
    capsys.readouterr()
    for what in ("sales", "customers", "service"):
        status, out, err = run(capsys, what, "--as-of", "2026-06-30")
        assert status == 0 and err == "" and "Traceback" not in out


@pytest.fixture
def usd_store(store: Path) -> Path:
    with pycrm.open(f"sqlite:///{store}") as crm, crm.session() as s:
        c = s.customers.add(Customer("Dollar Inc"))
        s.orders.add(Order(c.id, dt.datetime(2024, 3, 5, tzinfo=UTC), Money(1000, "USD")))
        s.opportunities.add(Opportunity(c.id, "usd", Money(100, "USD"), stage="proposal", expected_close=dt.date(2024, 3, 20)))
    return store


def test_rates_convert_several_currencies(usd_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rates = tmp_path / "rates.csv"
    rates.write_text("currency,date,rate,source\nUSD,2024-01-01,7.1,ecb\nUSD,2024-03-01,7.25,ecb\n\n", encoding="utf-8")
    args = ["--store", str(usd_store), "--as-of", "2024-03-31", "--rates", str(rates), "--base", "CNY"]
    status, out, err = run(capsys, "customers", *args)
    assert status == 0 and err == ""
    top = next(row for row in cells(out) if row and row[0] == "1")
    assert top[1:3] == ["Dollar", "Inc"] and "7,250" in top  # 1000 USD at the March rate
    assert "(CNY)" in out
    status, out, err = run(capsys, "sales", *args)
    forecast_rows = [row for row in cells(out.split("Funnel")[0]) if row[:1] == ["2024-03"]]
    # March: 5,000 CNY won in full, 100 USD open = 725 CNY at the March rate, weighted 725 x 0.60 = 435
    assert status == 0 and forecast_rows[0][1:] == ["3", "725", "5,000", "5,435"]
    status, _, err = run(capsys, "customers", "--store", str(usd_store), "--as-of", "2024-03-31")
    assert status == 2 and "USD" in err and "rates" in err  # without a rate table: which currency, what to do


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("date,currency\n2024-01-01,USD\n", "row 1, column rate"),
        ("date,currency,rate\n2024-13-01,USD,7\n", "row 2, column date"),
        ("date,currency,rate\n2024-01-01,USD,7\n2024-01-02,dollar,7\n", "row 3, column currency"),
        ("date,currency,rate\n2024-01-01,USD,seven\n", "row 2, column rate"),
        ("date,currency,rate\n2024-01-01,USD,-1\n", "row 2, column rate"),
        ("date,currency,rate\n2024-01-01,CNY,2\n", "row 2, column rate"),
        ("date,currency,rate\n2024-01-01,USD,7\n2024-01-01,USD,7.5\n", "row 3, column rate"),
        ("", "row 1"),
    ],
)
def test_bad_rate_files_name_file_row_and_column(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    rates = tmp_path / "rates.csv"
    rates.write_text(text, encoding="utf-8")
    status, _, err = run(capsys, "sales", "--store", str(store), "--rates", str(rates), "--base", "CNY")
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert str(rates) in err and expected in err


def test_rates_need_a_readable_file_and_a_base(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "sales", "--store", str(store), "--rates", str(tmp_path / "none.csv"), "--base", "CNY")
    assert status == 2 and "none.csv" in err and err.count("\n") == 1
    (tmp_path / "r.csv").write_text("date,currency,rate\n", encoding="utf-8")
    status, _, err = run(capsys, "sales", "--store", str(store), "--rates", str(tmp_path / "r.csv"))
    assert status == 2 and "--base" in err
    status, _, err = run(capsys, "sales", "--store", str(store), "--rates", str(tmp_path / "r.csv"), "--base", "XX")
    assert status == 2 and "--base" in err


def test_a_store_that_cannot_be_read_is_one_line_and_exit_2(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3

    with sqlite3.connect(store) as db:  # a table dropped behind pycrm's back: reading it fails in the driver
        db.execute("PRAGMA foreign_keys = OFF")
        db.execute("DROP TABLE opportunities")
    status, out, err = run(capsys, "sales", "--store", str(store), "--as-of", "2024-03-31")
    assert status == 2 and out == "" and "Traceback" not in err and err.count("\n") == 1
    assert f"--store {store}: cannot read the store: OperationalError" in err and "opportunities" in err


@pytest.fixture
def seasonal_store(tmp_path: Path) -> Path:
    """Thirty months of orders with a December peak, from two countries."""
    db = tmp_path / "seasonal.db"
    with pycrm.open(f"sqlite:///{db}") as crm, crm.session() as s:
        cn = s.customers.add(Customer("Acme", country="CN"))
        de = s.customers.add(Customer("Globex", country="DE"))
        orders = []
        for m in range(30):
            day = dt.datetime(2022 + m // 12, m % 12 + 1, 10, tzinfo=UTC)
            peak = 3 if m % 12 == 11 else 1
            orders.append(Order(cn.id, day, Money(1000 * peak + 10 * m + (m * 37) % 50, "CNY")))
            orders.append(Order(de.id, day, Money(500 + (m * 53) % 40, "CNY")))
        s.orders.add_many(orders)
    return db


def test_forecast_report(seasonal_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("statsmodels")
    # as of the middle of July 2024: July is under way, so the forecast starts after June
    status, out, err = run(capsys, "forecast", "--store", str(seasonal_store), "--as-of", "2024-07-15", "--periods", "3")
    assert status == 0 and err == ""
    assert "Orders and revenue by month, 2024-05 to 2024-07 (CNY)" in out
    assert "Forecast of revenue, 3 months after 2024-06 (95% prediction intervals)" in out
    table = out.split("Forecast of revenue")[1].split("Model:")[0]
    assert [line.split()[0] for line in table.strip().splitlines()[2:]] == ["2024-07", "2024-08", "2024-09"]
    assert "Model: all: ETS(" in out and "MASE of the model and of the seasonal-naive forecast" in out
    status, out, err = run(
        capsys, "forecast", "--store", str(seasonal_store), "--as-of", "2024-06-30", "--by", "region", "--measure", "orders"
    )
    assert status == 0 and "Forecast of orders, 3 months after 2024-06" in out
    assert "CN: " in out and "DE: " in out


def test_forecast_report_needs_history_and_the_extra(
    store: Path, seasonal_store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("statsmodels")
    status, _, err = run(capsys, "forecast", "--store", str(store), "--as-of", "2024-03-31")
    assert status == 2 and err.count("\n") == 1 and "at least 4 periods of history" in err
    import sys

    monkeypatch.setitem(sys.modules, "statsmodels.tsa.exponential_smoothing.ets", None)
    status, _, err = run(capsys, "forecast", "--store", str(seasonal_store), "--as-of", "2024-06-30")
    assert status == 2 and err.count("\n") == 1 and 'pip install "pycrm[forecast]"' in err


def test_campaigns_report(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Launch (e-mail, 300 CNY) reached the consenting customer B on March 1st; B's 1,200 CNY order two days
    later is its first: 1 conversion, 1 acquired, CAC 300, ROI (1200 - 300) / 300 = 3."""
    from pycrm import Campaign, Contact

    t0 = dt.datetime(2024, 3, 1, 9, tzinfo=UTC)
    with pycrm.open(f"sqlite:///{store}") as crm, crm.session() as s:
        b = s.customers.find({"name": "上海星辰科技有限公司"})[0]
        s.contacts.add(Contact(str(b.id), "Li", "Lei", consent={"email": True}))
        k = s.campaigns.add(Campaign("Launch", "email", spend=Money(300, "CNY")))
        (member,) = s.campaigns.add_members(k, where={}, at=t0 - dt.timedelta(days=1))
        s.campaigns.respond(str(member.id), "sent", at=t0)
        s.campaigns.respond(str(member.id), "clicked", at=t0)
    status, out, err = run(capsys, "campaigns", "--store", str(store))
    assert status == 0 and err == ""
    assert "Campaign KPIs" in out
    row = next(line for line in cells(out) if line and line[0] == "Launch")
    assert row[:6] == ["Launch", "email", "1", "1", "1", "1"]
    assert row[6:] == ["1,200", "300", "1", "300", "3", "169.83"]


def test_leads_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.contract.test_lead_scores import _fill

    db = tmp_path / "leads.db"
    with pycrm.open(f"sqlite:///{db}") as crm:
        _fill(crm)
    status, out, err = run(capsys, "leads", "--store", str(db), "--as-of", "2024-12-31", "--top", "3")
    assert status == 0 and err == ""
    assert "Open deals most likely to be won (trained on 102 closed deals)" in out
    ranked = [line.split() for line in out.splitlines() if line.split()[:1] in (["1"], ["2"], ["3"])]
    assert len(ranked) == 3 and all(r[1].startswith("D") for r in ranked)
    probabilities = [float(r[3]) for r in ranked]
    assert probabilities == sorted(probabilities, reverse=True)
    assert "Holdout: trained on the 81 older closed deals, tested on the newest 21: AUC" in out
    # too little history: one line on stderr, exit 2
    empty = tmp_path / "empty.db"
    pycrm.open(f"sqlite:///{empty}").close()
    status, out, err = run(capsys, "leads", "--store", str(empty))
    assert status == 2 and "at least 20 closed deals" in err and len(err.strip().splitlines()) == 1


def test_basket_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The top rules by lift, products by name, with support, confidence and lift; bad thresholds named."""
    db = tmp_path / "basket.db"
    t0 = dt.datetime(2024, 3, 5, 10, tzinfo=UTC)
    with pycrm.open(f"sqlite:///{db}") as crm, crm.session() as s:
        c = s.customers.add(Customer("Acme Ltd"))
        tea, milk, cake = (s.products.add(Product(f"SKU-{n}", n)) for n in ("Sencha tea", "Milk", "Cake"))

        def order(*items: Any, at: dt.datetime = t0) -> Order:
            return Order.from_lines(c.id, at, [OrderLine(p.id, 1, Money("1.00")) for p in items])

        s.orders.add_many(
            [order(tea, milk), order(tea, milk), order(tea), order(cake), order(milk, cake, at=t0 + dt.timedelta(days=100))]
        )
    args = ["--store", str(db), "--as-of", "2024-03-31"]
    status, out, err = run(capsys, "basket", *args, "--min-support", "0.5", "--min-confidence", "0.6", "--top", "1")
    assert status == 0 and err == ""
    assert "Top 1 of 2 association rules by lift (support >= 0.5, confidence >= 0.6)" in out
    # 4 orders up to --as-of: milk -> tea (2 of 2 orders with milk, lift 1 / 0.75) ranks first
    assert "1. Milk  ->  Sencha tea  2  0.5000  1.0000  1.3333" in out and "SKU-" not in out
    status, out, err = run(capsys, "basket", *args, "--min-support", "0", "--min-confidence", "1.5")
    assert status == 2 and "--min-support" in err and "--min-confidence" in err
