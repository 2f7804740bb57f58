"""Out-of-range numbers and days on the command line: one line on stderr and exit status 2, never an
OverflowError traceback."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import pycrm
from pycrm import Customer, Money, Order
from pycrm.cli import main


@pytest.fixture
def store(tmp_path: Path) -> Path:
    db = tmp_path / "crm.db"
    with pycrm.open(f"sqlite:///{db}") as crm, crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        s.orders.add(Order(c.id, dt.datetime(2024, 3, 1, tzinfo=dt.UTC), Money(10, "CNY")))
    return db


@pytest.fixture
def orders_csv(tmp_path: Path) -> Path:
    path = tmp_path / "orders.csv"
    path.write_text("cust,day,amt\na,2024-01-05,100\n", encoding="utf-8")
    return path


RFM = ["--customer-column", "cust", "--date-column", "day", "--amount-column", "amt"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["report", "customers", "--store", "{db}", "--as-of", "0001-01-01"], "--as-of"),
        (["report", "sales", "--store", "{db}", "--as-of", "9999-12-31"], "--as-of"),
        (["report", "service", "--store", "{db}", "--as-of", "1000-02-01", "--periods", "3"], "--periods"),
        (["rfm", "{csv}", *RFM, "--as-of", "0001-01-01"], "--as-of"),
        (["rfm", "{csv}", *RFM, "--as-of", "2024-03-31", "--bins", "1000000"], "bins"),
        (["archive", "{db}", "--rule", "customers:400", "--as-of", "0001-01-01"], "customers:400"),
        (["archive", "{db}", "--rule", "tickets-closed:99999999999"], "tickets-closed"),
    ],
)
def test_out_of_range_input_is_one_line_and_exit_2(
    store: Path, orders_csv: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    status = main([a.replace("{db}", str(store)).replace("{csv}", str(orders_csv)) for a in args])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("pycrm: error: ") and err.count("\n") == 1
    assert expected in err and "Traceback" not in err


def test_the_edges_of_the_range_work(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "customers", "--store", str(store), "--as-of", "9998-12-31", "--period", "quarter"]) == 0
    assert "9998-12-31" in capsys.readouterr().out
    assert main(["report", "customers", "--store", str(store), "--as-of", "1000-06-01", "--periods", "2"]) == 0
