"""CLV and churn risk: the published CDNOW fits, the formulas against the papers, and the bad-input contract.

The CDNOW 1/10 sample (tests/analytics/data, see the README there) is the data set of Fader, Hardie and
Lee (2005): 2,357 customers who first bought in the first quarter of 1997, calibrated on the 39 weeks to
1997-09-30, purchases aggregated per day, times in weeks.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import special
from scipy.special import hyp2f1

from pycrm import Money, Order, ValidationError
from pycrm.analytics import (
    BGNBDModel,
    CLVScore,
    CustomerSummary,
    GammaGammaModel,
    MissingDependencyError,
    PurchaseSummary,
    clv,
    customer_lifetime_value,
    fit_bgnbd,
    fit_gamma_gamma,
    purchase_summary,
)
from pycrm.analytics._clv import _alive_purchases_by_quadrature, _conditional_purchases, _log_p_alive
from pycrm.errors import CRMError

UTC = dt.UTC
DATA = Path(__file__).parent / "data" / "CDNOW_sample.txt"
CALIBRATION_END = dt.date(1997, 9, 30)


def cdnow_orders() -> list[tuple[str, dt.date, Decimal]]:
    """(customer id in the sample, date, dollar value) per line: the 2nd, 3rd and 5th columns."""
    out = []
    for line in DATA.read_text().splitlines():
        _master_id, cid, day, _cds, value = line.split()
        out.append((cid, dt.date(int(day[:4]), int(day[4:6]), int(day[6:])), Decimal(value)))
    return out


@pytest.fixture(scope="module")
def cdnow() -> list[tuple[str, dt.date, Decimal]]:
    return cdnow_orders()


@pytest.fixture(scope="module")
def calibration(cdnow) -> PurchaseSummary:
    return purchase_summary(cdnow, calibration_end=CALIBRATION_END, unit="W")


@pytest.fixture(scope="module")
def bgnbd(calibration) -> BGNBDModel:
    return fit_bgnbd(calibration)


@pytest.fixture(scope="module")
def gamma_gamma(calibration) -> GammaGammaModel:
    return fit_gamma_gamma(calibration)


def close(got: float, want: float, rel: float = 0.01) -> bool:
    return abs(got - want) <= rel * abs(want)


# ---------------------------------------------------------------- the published results


def test_the_cdnow_calibration_summary_is_the_papers(calibration):
    assert len(calibration) == 2357
    assert calibration.calibration_end == CALIBRATION_END
    assert sum(1 for c in calibration if c.frequency > 0) == 946  # 1,411 made no repeat purchase
    first = calibration.rows[0]
    # Customer 1 bought on 1997-01-01 (two lines that day), 01-18 and 08-02 within calibration.
    assert (first.customer_id, first.frequency) == ("0001", 2)
    assert first.recency == pytest.approx(213 / 7)
    assert pytest.approx(272 / 7) == first.T  # 38.86 weeks
    assert first.monetary_value == pytest.approx((29.73 + 14.96) / 2)


def test_bgnbd_reproduces_fader_hardie_lee_2005_on_cdnow(bgnbd):
    assert close(bgnbd.r, 0.243)
    assert close(bgnbd.alpha, 4.414)
    assert close(bgnbd.a, 0.793)
    assert close(bgnbd.b, 2.426)
    assert bgnbd.log_likelihood == pytest.approx(-9582.4, abs=0.1)
    assert (bgnbd.n_customers, bgnbd.unit) == (2357, "W")


def test_gamma_gamma_reproduces_fader_hardie_2013_on_the_calibration_summary(gamma_gamma, cdnow):
    # The published fit is over the 946 customers with repeat purchases in the 39 calibration weeks,
    # spend being the mean of the repeat purchases (lifetimes' cdnow_customers_summary_with_transactions).
    assert close(gamma_gamma.p, 6.25)
    assert close(gamma_gamma.q, 3.74)
    assert close(gamma_gamma.gamma, 15.44)
    assert gamma_gamma.n_customers == 946
    # The whole 78 weeks is not what was published: 1,139 repeat customers and other parameters.
    full = fit_gamma_gamma(purchase_summary(cdnow, calibration_end="1998-06-30", unit="W"))
    assert full.n_customers == 1139
    assert not close(full.p, 6.25, rel=0.05)


def test_the_papers_worked_example_customer_1():
    # Fader, Hardie and Lee (2005), section 5: x = 2, t_x = 30.43, T = 38.86 expects 1.226 purchases in 39 weeks.
    m = BGNBDModel(0.243, 4.414, 0.793, 2.426, unit="W")
    assert m.expected_purchases(39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=5e-4)


def test_days_and_weeks_give_the_same_model(cdnow, bgnbd):
    days = purchase_summary(cdnow, calibration_end=CALIBRATION_END, unit="D")
    m = fit_bgnbd(days)
    assert m.unit == "D"
    assert close(m.r, bgnbd.r, 1e-3) and close(m.a, bgnbd.a, 1e-3) and close(m.b, bgnbd.b, 1e-3)
    assert close(m.alpha, 7 * bgnbd.alpha, 1e-3)  # alpha is a time scale
    repeats = sum(c.frequency for c in days)
    assert m.log_likelihood == pytest.approx(bgnbd.log_likelihood - repeats * math.log(7), abs=0.05)


def test_clv_on_cdnow_is_the_discounted_sum_of_monthly_spend(calibration, bgnbd, gamma_gamma):
    scores = customer_lifetime_value(calibration, bgnbd, gamma_gamma, months=12, discount_rate=0.01)
    assert [s.customer_id for s in scores] == [c.customer_id for c in calibration]
    for s in scores[:40]:
        value = gamma_gamma.expected_average_value(s.frequency, s.monetary_value)
        want, before = 0.0, 0.0
        for month in range(1, 13):
            upto = bgnbd.expected_purchases(month * 4.345, s.frequency, s.recency, s.T)
            want += value * (upto - before) / 1.01**month
            before = upto
        assert s.clv == pytest.approx(want, rel=1e-9)
        assert s.expected_purchases == pytest.approx(before, rel=1e-9)
        assert s.expected_average_value == pytest.approx(value, rel=1e-12)
        assert s.p_alive == pytest.approx(bgnbd.p_alive(s.frequency, s.recency, s.T), rel=1e-12)
    assert all(math.isfinite(s.clv) and s.clv >= 0 and 0 <= s.churn_risk <= 1 for s in scores)
    # Repeat buyers are worth more than one-time buyers, on average.
    repeat = [s.clv for s in scores if s.frequency > 0]
    once = [s.clv for s in scores if s.frequency == 0]
    assert sum(repeat) / len(repeat) > 3 * sum(once) / len(once)


def test_clv_in_one_call_agrees_with_the_steps(cdnow, calibration, bgnbd, gamma_gamma):
    got = clv(cdnow, as_of=CALIBRATION_END, unit="W", months=6, discount_rate=0.02)
    want = customer_lifetime_value(calibration, bgnbd, gamma_gamma, months=6, discount_rate=0.02)
    assert [g.customer_id for g in got] == [w.customer_id for w in want]
    assert all(g.clv == pytest.approx(w.clv, rel=1e-4) for g, w in zip(got, want))


# ---------------------------------------------------------------- formulas


def paper_p_alive(r, alpha, a, b, x, tx, T):
    if x == 0:
        return 1.0
    return 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x))


def paper_expected(r, alpha, a, b, t, x, tx, T):
    """Eq. 10 of Fader, Hardie and Lee (2005), as printed."""
    c = a + b + x - 1
    head = c / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, c, t / (alpha + T + t)))
    return head * paper_p_alive(r, alpha, a, b, x, tx, T)


params = st.floats(min_value=0.05, max_value=20)
histories = st.tuples(st.integers(0, 30), st.floats(0, 1), st.floats(0.5, 60)).map(
    lambda h: (h[0], h[1] * h[2] if h[0] else 0.0, h[2])
)


@given(params, params, params, params, st.floats(0.5, 100), histories)
def test_predictions_follow_the_paper(r, alpha, a, b, t, history):
    x, tx, T = history
    if abs(a - 1) < 1e-3 or abs(a + b + x - 1) < 1e-3:
        return  # the printed formula divides by zero there
    m = BGNBDModel(r, alpha, a, b)
    want = paper_expected(r, alpha, a, b, t, x, tx, T)
    got = m.expected_purchases(t, x, tx, T)
    assert got == pytest.approx(want, rel=1e-6, abs=1e-9)
    assert m.p_alive(x, tx, T) == pytest.approx(paper_p_alive(r, alpha, a, b, x, tx, T), rel=1e-9, abs=1e-300)


any_param = st.floats(min_value=-9, max_value=9).map(math.exp)


@given(any_param, any_param, any_param, any_param, histories)
def test_predictions_are_finite_and_grow_with_the_horizon(r, alpha, a, b, history):
    m = BGNBDModel(r, alpha, a, b, unit="W")
    x, tx, T = history
    values = [m.expected_purchases(t, x, tx, T) for t in (0, 1, 10, 52)]
    assert values[0] == 0
    assert all(math.isfinite(v) for v in values)
    assert all(later >= earlier * (1 - 1e-6) for earlier, later in itertools.pairwise(values))
    assert 0 <= m.p_alive(x, tx, T) <= 1


def test_a_degenerate_fit_still_predicts_its_limit():
    # r and alpha in the millions: every customer buys at rate r/alpha = 0.5; a near 0: nobody drops out.
    # SciPy's 2F1 gives NaN here; the prediction is still the Poisson limit, 0.5 * t.
    m = BGNBDModel(3e8, 6e8, 1e-6, 2.0, unit="W")
    assert m.expected_purchases(52, 5, 20, 30) == pytest.approx(26, rel=1e-3)
    assert m.p_alive(5, 20, 30) == pytest.approx(1, abs=1e-4)


@given(params, params, params, params, st.floats(0.5, 100), histories)
def test_the_quadrature_fallback_agrees_with_the_closed_form(r, alpha, a, b, t, history):
    x, _, T = history
    if abs(a - 1) < 1e-3:
        return
    closed = _conditional_purchases(special, r, alpha, a, b, t, np.array([float(x)]), np.zeros(1), np.array([T]))
    closed /= np.exp(_log_p_alive(r, alpha, a, b, np.array([float(x)]), np.zeros(1), np.array([T])))
    k, s = np.array([r + x]), np.array([t / (alpha + T)])
    assert _alive_purchases_by_quadrature(special, a, np.array([b + x]), k, s)[0] == pytest.approx(closed[0], rel=2e-3)


def test_a_equal_to_one_is_the_limit_not_a_division_by_zero():
    near = [BGNBDModel(0.5, 5.0, a, 2.0).expected_purchases(20, 3, 10, 30) for a in (1 - 1e-4, 1.0, 1 + 1e-4)]
    assert math.isfinite(near[1])
    assert near[0] == pytest.approx(near[1], rel=1e-3) and near[2] == pytest.approx(near[1], rel=1e-3)


def test_gamma_gamma_shrinks_toward_the_population_mean():
    gg = GammaGammaModel(6.25, 3.74, 15.44)
    population = 6.25 * 15.44 / 2.74
    assert gg.expected_average_value(0, 0) == pytest.approx(population)
    one, many = gg.expected_average_value(1, 100), gg.expected_average_value(50, 100)
    assert population < one < many < 100


# ---------------------------------------------------------------- summaries


DAY0 = dt.datetime(2024, 1, 1, 9, tzinfo=UTC)
books = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d"]),
        st.integers(0, 120).map(lambda d: DAY0 + dt.timedelta(days=d, hours=d % 7)),
        st.integers(0, 500).map(Decimal),
    ),
    max_size=40,
)


@given(books, st.integers(0, 130), st.sampled_from(["D", "W"]), st.sampled_from(["D", "W"]))
def test_summary_follows_the_definitions(book, end_day, freq, unit):
    end = DAY0.date() + dt.timedelta(days=end_day)
    got = purchase_summary(book, calibration_end=end, freq=freq, unit=unit)
    step = 7 if freq == "W" else 1
    scale = 7 if unit == "W" else 1

    def period(d: dt.date) -> int:  # days since a Monday, rounded down to the period
        n = (d - dt.date(2023, 1, 2)).days
        return n - n % step

    per: dict[str, dict[int, Decimal]] = {}
    for cid, at, amount in book:
        if at.date() <= end:
            per.setdefault(cid, {}).setdefault(period(at.date()), Decimal(0))
            per[cid][period(at.date())] += amount
    assert [c.customer_id for c in got] == sorted(per)
    for c in got:
        ps = sorted(per[c.customer_id])
        assert c.frequency == len(ps) - 1
        assert c.recency == (ps[-1] - ps[0]) / scale
        assert (period(end) - ps[0]) / scale == c.T
        repeat = [per[c.customer_id][p] for p in ps[1:]]
        assert c.monetary_value == pytest.approx(float(sum(repeat) / len(repeat)) if repeat else 0.0)
        assert 0 <= c.recency <= c.T


def test_an_empty_book_and_a_cutoff_before_every_order_give_an_empty_summary():
    assert len(purchase_summary([], calibration_end="2024-01-01")) == 0
    book = [("a", DAY0, 10), ("b", DAY0 + dt.timedelta(days=3), 20)]
    s = purchase_summary(book, calibration_end="2023-12-31")
    assert (len(s), s.calibration_end) == (0, dt.date(2023, 12, 31))
    assert customer_lifetime_value(s, BGNBDModel(1, 1, 1.5, 1), GammaGammaModel(2, 3, 4)) == []
    with pytest.raises(ValidationError) as err:
        fit_bgnbd(s)
    assert err.value.errors[0].code == "too_few_customers"
    with pytest.raises(ValidationError):
        clv([], as_of="2024-01-01")


def test_one_order_and_same_day_orders_are_no_repeat_purchase():
    book = [
        Order("one", DAY0, Money(10, "USD")),
        Order("sameday", DAY0, Money(10, "USD")),
        Order("sameday", DAY0 + dt.timedelta(hours=5), Money(15, "USD")),
        {"customer_id": "twice", "occurred_at": DAY0, "amount": Money(5, "USD")},
        ("twice", DAY0 + dt.timedelta(days=14), Money(7, "USD")),
    ]
    s = {c.customer_id: c for c in purchase_summary(book, calibration_end=dt.date(2024, 1, 29), unit="W")}
    assert s["one"] == CustomerSummary("one", 0, 0.0, 4.0, 0.0)
    assert s["sameday"] == CustomerSummary("sameday", 0, 0.0, 4.0, 0.0)
    assert s["twice"] == CustomerSummary("twice", 1, 2.0, 4.0, 7.0)
    m = BGNBDModel(0.243, 4.414, 0.793, 2.426, unit="W")
    scores = customer_lifetime_value(PurchaseSummary(list(s.values()), unit="W"), m, GammaGammaModel(6.25, 3.74, 15.44))
    assert all(isinstance(c, CLVScore) and math.isfinite(c.clv) and c.clv > 0 for c in scores)
    assert [c.p_alive for c in scores][:2] == [1.0, 1.0]


def test_a_book_of_first_purchases_only_cannot_be_fitted():
    # Twenty customers, each with two orders, all on the last day of calibration.
    book = [(f"c{k}", DAY0 + dt.timedelta(hours=h), 10) for k in range(20) for h in (0, 3)]
    summary = purchase_summary(book, calibration_end=DAY0.date())
    assert {(c.frequency, c.recency, c.T, c.monetary_value) for c in summary} == {(0, 0.0, 0.0, 0.0)}
    with pytest.raises(ValidationError) as err:
        fit_bgnbd(purchase_summary(book, calibration_end=DAY0.date()))
    assert err.value.errors[0].code == "no_repeat_purchases"
    with pytest.raises(ValidationError) as err:
        fit_gamma_gamma(purchase_summary(book, calibration_end=DAY0.date()))
    assert err.value.errors[0].code == "too_few_customers"


def test_too_few_customers_is_a_clear_validation_error():
    rows = [CustomerSummary(f"c{k}", k % 3, k % 3, 10.0, 5.0 * (k % 3)) for k in range(9)]
    for fit in (fit_bgnbd, fit_gamma_gamma):
        with pytest.raises(ValidationError) as err:
            fit(PurchaseSummary(rows))
        assert err.value.fields == ["summary"]
        assert "at least 10" in str(err.value)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("order", "field", "code"),
    [
        (("a", DAY0, -5), "orders[1].amount", "negative"),
        (("a", DAY0, "abc"), "orders[1].amount", "invalid_amount"),
        (("a", DAY0, 1.5), "orders[1].amount", "type"),
        (("a", DAY0, None), "orders[1].amount", "type"),
        (("a", "2024-01-01", 5), "orders[1].occurred_at", "type"),
        (("a", dt.datetime(2024, 1, 1), 5), "orders[1].occurred_at", "naive_datetime"),
        (("", DAY0, 5), "orders[1].customer_id", "required"),
        ({"customer_id": "a", "amount": 5}, "orders[1].occurred_at", "required"),
        (("a", DAY0, Money(5, "EUR")), "orders[1].amount.currency", "currency_mismatch"),
        (42, "orders[1]", "type"),
    ],
)
def test_bad_orders_name_the_row_and_column(order, field, code):
    book = [("z", DAY0, Money(1, "USD")), order]
    for call in (
        lambda: purchase_summary(book, calibration_end="2024-12-31"),
        lambda: clv(book, as_of="2024-12-31"),
    ):
        with pytest.raises(ValidationError) as err:
            call()
        assert (err.value.errors[0].field, err.value.errors[0].code) == (field, code)


def test_every_bad_row_is_reported_at_once():
    book = [("a", DAY0, -1), ("b", DAY0, "x"), ("c", DAY0, 3)]
    with pytest.raises(ValidationError) as err:
        purchase_summary(book, calibration_end="2024-12-31")
    assert err.value.fields == ["orders[0].amount", "orders[1].amount"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"calibration_end": "31/12/2024"}, "calibration_end"),
        ({"calibration_end": None}, "calibration_end"),
        ({"calibration_end": "2024-12-31", "freq": "M"}, "freq"),
        ({"calibration_end": "2024-12-31", "unit": "days"}, "unit"),
        ({"calibration_end": "2024-12-31", "unit": ["W"]}, "unit"),
    ],
)
def test_bad_summary_options(kwargs, field):
    with pytest.raises(ValidationError) as err:
        purchase_summary([("a", DAY0, 1)], **kwargs)
    assert err.value.fields == [field]


@pytest.mark.parametrize("orders", [None, 5, "a,2024-01-01,5", {"customer_id": "a"}])
def test_orders_that_are_not_a_book(orders):
    with pytest.raises(ValidationError) as err:
        purchase_summary(orders, calibration_end="2024-12-31")
    assert err.value.fields == ["orders"]


@pytest.mark.parametrize(
    ("args", "fields"),
    [
        (("c", 1, 5.0, 4.0), ["recency"]),
        (("c", 0, 2.0, 4.0), ["recency"]),
        (("c", -1, 0.0, 4.0), ["frequency"]),
        (("c", 1.0, 0.0, 4.0), ["frequency"]),
        (("c", 1, "3", 4.0), ["recency"]),
        (("c", 1, 3.0, float("nan")), ["T"]),
        (("c", 1, 3.0, 4.0, -2.0), ["monetary_value"]),
        (("", 1, 3.0, 4.0, float("inf")), ["customer_id", "monetary_value"]),
    ],
)
def test_bad_customer_summaries(args, fields):
    with pytest.raises(ValidationError) as err:
        CustomerSummary(*args)
    assert err.value.fields == fields


def test_bad_purchase_summaries():
    row = CustomerSummary("a", 0, 0, 1)
    with pytest.raises(ValidationError) as err:
        PurchaseSummary([row, row, "b"], unit="Y")  # type: ignore[list-item]
    assert err.value.fields == ["unit", "rows[1].customer_id", "rows[2]"]
    with pytest.raises(ValidationError) as err:
        PurchaseSummary(5)  # type: ignore[arg-type]
    assert err.value.fields == ["rows"]


def test_bad_models_and_model_arguments():
    with pytest.raises(ValidationError) as err:
        BGNBDModel(0, -1, float("nan"), "b")  # type: ignore[arg-type]
    assert err.value.fields == ["r", "alpha", "a", "b"]
    with pytest.raises(ValidationError) as err:
        GammaGammaModel(1, 0, 2)
    assert err.value.fields == ["q"]
    m = BGNBDModel(0.243, 4.414, 0.793, 2.426, unit="W")
    with pytest.raises(ValidationError) as err:
        m.expected_purchases(-1, 1, 2, 3)
    assert err.value.fields == ["t"]
    with pytest.raises(ValidationError) as err:
        m.p_alive(2, 10, 5)
    assert err.value.fields == ["recency"]
    with pytest.raises(ValidationError) as err:
        GammaGammaModel(1, 2, 3).expected_average_value(-1, "x")  # type: ignore[arg-type]
    assert err.value.fields == ["frequency", "monetary_value"]
    # q <= 1: the population has no finite mean spend, so a customer without repeat purchases has none either.
    with pytest.raises(ValidationError) as err:
        GammaGammaModel(1, 0.5, 3).expected_average_value(0, 0)
    assert err.value.fields == ["q"]


def test_bad_clv_arguments(calibration, bgnbd, gamma_gamma):
    with pytest.raises(ValidationError) as err:
        customer_lifetime_value(calibration, bgnbd, gamma_gamma, months=-1, discount_rate="1%")  # type: ignore[arg-type]
    assert err.value.fields == ["months", "discount_rate"]
    days = PurchaseSummary(calibration.rows, unit="D")
    with pytest.raises(ValidationError) as err:
        customer_lifetime_value(days, bgnbd, gamma_gamma)
    assert err.value.fields == ["purchases.unit"]
    with pytest.raises(ValidationError) as err:
        customer_lifetime_value([], gamma_gamma, bgnbd)  # type: ignore[arg-type]
    assert err.value.fields == ["summary"]
    with pytest.raises(ValidationError) as err:
        fit_bgnbd(calibration, penalizer=-1)
    assert err.value.fields == ["penalizer"]
    zero = customer_lifetime_value(calibration, bgnbd, gamma_gamma, months=0)
    assert all(s.clv == 0 and s.expected_purchases == 0 for s in zero)


@given(
    st.lists(
        st.tuples(st.sampled_from([f"c{k}" for k in range(14)]), st.integers(0, 90), st.integers(0, 300)),
        min_size=0,
        max_size=80,
    ),
    st.floats(0, 1),
)
def test_clv_on_any_book_is_finite_or_a_validation_error(book, penalizer):
    orders = [(cid, DAY0 + dt.timedelta(days=d), amount) for cid, d, amount in book]
    try:
        scores = clv(orders, as_of="2024-03-31", unit="W", penalizer=penalizer)
    except ValidationError:
        return
    for s in scores:
        values = (s.p_alive, s.churn_risk, s.expected_purchases, s.expected_average_value, s.clv)
        assert all(math.isfinite(v) for v in values)
        assert 0 <= s.p_alive <= 1 and s.clv >= 0 and s.expected_purchases >= 0


# ---------------------------------------------------------------- SciPy is optional


def test_without_scipy_the_fit_says_what_to_install(monkeypatch, calibration):
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)
    monkeypatch.setitem(sys.modules, "scipy.special", None)
    with pytest.raises(MissingDependencyError) as err:
        fit_bgnbd(calibration)
    assert isinstance(err.value, CRMError) and isinstance(err.value, ImportError)
    assert 'pip install "pycrm[analytics]"' in str(err.value)
    # Summaries need only numpy.
    assert len(purchase_summary([("a", DAY0, 1)], calibration_end="2024-12-31")) == 1


def test_importing_analytics_does_not_import_scipy():
    code = "import sys, pycrm.analytics; print(any(m == 'scipy' or m.startswith('scipy.') for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_arrays_are_plain_floats(calibration):
    arrays = calibration._arrays()
    assert all(a.dtype == np.float64 and len(a) == len(calibration) for a in arrays)


# ---------------------------------------------------------------- P(X(t) = n)


def _pmf_by_integration(r: float, alpha: float, a: float, b: float, t: float, n: int) -> float:
    """P(X(t) = n) straight from the model's story, integrated numerically (SciPy quad), not from eq. 8.

    Given a purchase rate lam and a drop-out probability p, a new customer makes n purchases by t either by
    staying active through all n, ``(1-p)^n Poisson(n; lam t)``, or, for n > 0, by dropping out right after
    the n-th, which came before t: ``p (1-p)^(n-1) P(Poisson(lam t) >= n)`` (Fader, Hardie and Lee 2005,
    section 3). Then lam ~ Gamma(r, alpha) and p ~ Beta(a, b) are integrated out: p with quad's algebraic
    weight ``p^(a-1) (1-p)^(b-1)``, lam after the substitution u = lam^r, which removes lam^(r-1) at 0.
    """
    from scipy import integrate, stats

    def given_rate(lam: float) -> float:
        def given_p(p: float) -> float:
            active = (1 - p) ** n * stats.poisson.pmf(n, lam * t)
            left = p * (1 - p) ** (n - 1) * stats.poisson.sf(n - 1, lam * t) if n > 0 else 0.0
            return float(active + left)

        got, _ = integrate.quad(given_p, 0, 1, weight="alg", wvar=(a - 1, b - 1))
        return got / math.exp(special.betaln(a, b))

    def over_u(u: float) -> float:  # Gamma(r, alpha) density in u = lam^r: alpha^r e^(-alpha lam) / (r Gamma(r)) du
        lam = u ** (1 / r)
        return math.exp(r * math.log(alpha) - alpha * lam - special.gammaln(r)) / r * given_rate(lam)

    got, _ = integrate.quad(over_u, 0, np.inf, limit=200)
    return got


CDNOW = (0.243, 4.414, 0.793, 2.426)


@pytest.mark.parametrize("t", [1.0, 39.0])
@pytest.mark.parametrize("n", [0, 1, 12])
def test_the_probability_of_n_purchases_is_eq_8_checked_by_integration(t, n):
    """CDNOW's parameters (Fader, Hardie and Lee 2005); the reference is the numerical integral above."""
    m = BGNBDModel(*CDNOW, unit="W")
    assert m.probability_of_purchases(t, n) == pytest.approx(_pmf_by_integration(*CDNOW, t, n), rel=1e-6, abs=1e-10)


@pytest.mark.parametrize("t", [0.5, 39.0, 78.0, 520.0])
def test_the_probabilities_sum_to_one_and_their_mean_is_eq_9(t):
    m = BGNBDModel(*CDNOW, unit="W")
    p = [m.probability_of_purchases(t, n) for n in range(3000)]
    assert all(0 <= x <= 1 for x in p)
    assert sum(p) == pytest.approx(1.0, abs=1e-6)
    assert sum(n * x for n, x in enumerate(p)) == pytest.approx(m.expected_purchases_new(t), rel=1e-4)


def test_the_probability_of_purchases_at_time_zero_and_bad_arguments():
    m = BGNBDModel(*CDNOW, unit="W")
    assert (m.probability_of_purchases(0, 0), m.probability_of_purchases(0, 3)) == (1.0, 0.0)
    with pytest.raises(ValidationError) as bad:
        m.probability_of_purchases(-1, 1.5)
    assert {e.field for e in bad.value.errors} == {"t", "n"}
