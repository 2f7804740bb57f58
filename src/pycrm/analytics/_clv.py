"""Customer lifetime value and churn risk: BG/NBD for purchases, Gamma-Gamma for spend.

The pipeline, in the terms of the literature:

1. :func:`purchase_summary` turns an order book into one :class:`CustomerSummary` per customer:
   ``frequency`` (repeat purchases: distinct purchase periods minus one), ``recency`` (first to last
   purchase), ``T`` (first purchase to the end of calibration) and ``monetary_value`` (mean value of the
   repeat purchases). Purchases are aggregated per day (``freq="D"``) or per Monday-to-Sunday week
   (``freq="W"``); times are counted in days or weeks (``unit``).
2. :func:`fit_bgnbd` fits the BG/NBD model of Fader, Hardie and Lee, "Counting Your Customers the Easy
   Way" (Marketing Science 24(2), 2005) by maximum likelihood: purchases follow a Poisson process whose
   rate is Gamma(r, alpha) across customers, and after each purchase a customer drops out with a
   probability that is Beta(a, b) across customers. It gives P(alive) (churn risk is ``1 - P(alive)``)
   and the expected number of purchases in the next ``t`` units.
3. :func:`fit_gamma_gamma` fits the Gamma-Gamma spend model of Fader, Hardie and Lee, "RFM and CLV:
   Using Iso-Value Curves for Customer Base Analysis" (JMR 42(4), 2005) and Fader and Hardie, "The
   Gamma-Gamma Model of Monetary Value" (2013) on customers with repeat purchases, giving each
   customer's expected average spend per purchase.
4. :func:`customer_lifetime_value` adds the two up, month by month, as discounted cash flow:
   ``sum over m = 1..months of value * (E[purchases by month m] - E[purchases by month m-1]) / (1 + rate)^m``
   with a month of 30 days or 4.345 weeks (the convention of the ``lifetimes`` package).

:func:`clv` runs all four on an order book. numpy is a core dependency; the fits need SciPy, the
``analytics`` extra (``pip install "pycrm[analytics]"``), imported only when a model is fitted or used.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import math
import types
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any, Literal

import attrs
import numpy as np
import numpy.typing as npt

from pycrm.analytics._report import Report
from pycrm.analytics._rfm import _cutoff, _row
from pycrm.domain._html import attrs_table
from pycrm.errors import CRMError, FieldError, ValidationError

__all__ = [
    "BGNBDModel",
    "CLVScore",
    "CustomerSummary",
    "GammaGammaModel",
    "MissingDependencyError",
    "PurchaseSummary",
    "clv",
    "customer_lifetime_value",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "purchase_summary",
]

Period = Literal["D", "W"]
_PERIOD_DAYS = {"D": 1, "W": 7}
#: Length of a month in each time unit, as ``lifetimes.utils._customer_lifetime_value`` counts it.
_MONTH = {"D": 30.0, "W": 4.345}
#: Fewer customers than this do not determine a four-parameter (BG/NBD) or three-parameter (Gamma-Gamma) model.
MIN_CUSTOMERS = 10
#: Bounds of the log-parameters during the fit: every parameter stays in [e^-20, e^20].
_LOG_BOUND = 20.0
#: Most errors reported at once for a bad order book (every bad row is still checked).
_MAX_ERRORS = 50

Array = npt.NDArray[np.float64]


class MissingDependencyError(CRMError, ImportError):
    """An optional dependency is not installed; the message names the ``pip install`` line."""


def _scipy() -> tuple[Any, Any]:
    """``(scipy.optimize, scipy.special)``, imported on first use."""
    try:
        optimize = importlib.import_module("scipy.optimize")
        special = importlib.import_module("scipy.special")
    except ImportError:
        raise MissingDependencyError(
            'CLV models need SciPy: pip install "pycrm[analytics]" (or pip install "scipy>=1.11")'
        ) from None
    return optimize, special


# ---------------------------------------------------------------- checks


def _number(value: Any, field: str, errors: list[FieldError], *, positive: bool = False) -> float:
    """``value`` as a finite float >= 0 (> 0 with ``positive``); a FieldError in ``errors`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, np.integer, np.floating)):
        errors.append(FieldError(field, "type", f"expected a number, got {type(value).__name__}"))
        return 0.0
    x = float(value)
    if not math.isfinite(x):
        errors.append(FieldError(field, "not_finite", f"{value!r} is not a finite number"))
    elif positive and x <= 0:
        errors.append(FieldError(field, "not_positive", f"{value!r} must be greater than 0"))
    elif x < 0:
        errors.append(FieldError(field, "negative", f"{value!r} must not be negative"))
    return x


def _whole(value: Any, field: str, errors: list[FieldError], *, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        errors.append(FieldError(field, "type", f"expected a whole number, got {type(value).__name__}"))
        return 0
    if value < low:
        errors.append(FieldError(field, "out_of_range", f"{value!r} must be >= {low}"))
    return int(value)


def _period(value: Any, field: str, errors: list[FieldError]) -> str:
    if not isinstance(value, str) or value not in _PERIOD_DAYS:
        errors.append(FieldError(field, "invalid_choice", f"expected 'D' (days) or 'W' (weeks), got {value!r}"))
    return str(value)


def _customer(frequency: Any, recency: Any, T: Any, prefix: str = "") -> tuple[int, float, float]:
    """A customer's (frequency, recency, T) checked together; raises ValidationError naming every bad field."""
    errors: list[FieldError] = []
    x = _whole(frequency, f"{prefix}frequency", errors)
    tx = _number(recency, f"{prefix}recency", errors)
    big_t = _number(T, f"{prefix}T", errors)
    if not errors:
        if tx > big_t:
            errors.append(FieldError(f"{prefix}recency", "after_T", f"recency {tx} is later than T {big_t}"))
        if x == 0 and tx != 0:
            errors.append(FieldError(f"{prefix}recency", "no_repeat", "must be 0 when frequency is 0"))
    if errors:
        raise ValidationError(errors)
    return x, tx, big_t


# ---------------------------------------------------------------- summary


def _float(value: Any) -> Any:
    """Numbers as floats (Decimals too); anything else unchanged, for the row check to name."""
    if isinstance(value, (int, float, Decimal, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    return value


@attrs.frozen
class CustomerSummary:
    """One customer's purchase history in the terms of the BG/NBD and Gamma-Gamma models.

    ``frequency`` is the number of repeat purchase periods, ``recency`` and ``T`` are times (in the
    summary's unit) from the first purchase to the last one and to the end of calibration, and
    ``monetary_value`` is the mean value of the repeat purchases (0.0 without repeat purchases).

    >>> CustomerSummary("c1", frequency=2, recency=30.43, T=38.86, monetary_value=22.35)
    CustomerSummary(customer_id='c1', frequency=2, recency=30.43, T=38.86, monetary_value=22.35)
    >>> CustomerSummary("c2", frequency=1, recency=40, T=38)
    Traceback (most recent call last):
    ...
    pycrm.errors.ValidationError: recency: recency 40.0 is later than T 38.0
    """

    customer_id: str
    frequency: int
    recency: float = attrs.field(converter=_float)
    T: float = attrs.field(converter=_float)
    monetary_value: float = attrs.field(default=0.0, converter=_float)

    def __attrs_post_init__(self) -> None:
        errors: list[FieldError] = []
        if not isinstance(self.customer_id, str) or not self.customer_id:
            errors.append(FieldError("customer_id", "required", f"not a customer id: {self.customer_id!r}"))
        try:
            _customer(self.frequency, self.recency, self.T)
        except ValidationError as exc:
            errors += exc.errors
        _number(self.monetary_value, "monetary_value", errors)
        if errors:
            raise ValidationError(errors)


def _summary_maker() -> Any:
    """A fast ``CustomerSummary(...)`` for figures a store computed and checked by construction (a whole
    frequency, times 0 <= recency <= T, a value >= 0): fills the slots directly. Falls back to the
    constructor if the layout is unexpected."""
    names = [a.name for a in attrs.fields(CustomerSummary)]
    slots = [CustomerSummary.__dict__.get(n) for n in names]
    if not all(isinstance(x, types.MemberDescriptorType) for x in slots):
        return CustomerSummary
    s0, s1, s2, s3, s4 = (x.__set__ for x in slots)  # type: ignore[union-attr]
    new = object.__new__

    def make(cid: str, frequency: int, recency: float, T: float, monetary_value: float) -> CustomerSummary:
        o = new(CustomerSummary)
        s0(o, cid)
        s1(o, frequency)
        s2(o, recency)
        s3(o, T)
        s4(o, monetary_value)
        return o

    return make


_new_summary: Any = _summary_maker()


def _rows(value: Iterable[CustomerSummary]) -> tuple[CustomerSummary, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ValidationError([FieldError("rows", "type", "expected an iterable of CustomerSummary")])
    return tuple(value)


@attrs.frozen
class PurchaseSummary:
    """The per-customer summaries of one order book, with how they were counted.

    ``calibration_end`` is the last day counted (None for summaries made elsewhere), ``freq`` the
    purchase period (``"D"`` or ``"W"``) and ``unit`` the time unit of ``recency`` and ``T``. Build one
    with :func:`purchase_summary`, or directly from figures computed elsewhere:

    >>> s = PurchaseSummary([CustomerSummary("a", 0, 0, 10), CustomerSummary("b", 1, 3, 8, 5)], unit="W")
    >>> len(s), [r.customer_id for r in s], s.unit
    (2, ['a', 'b'], 'W')
    """

    rows: tuple[CustomerSummary, ...] = attrs.field(converter=_rows)
    calibration_end: dt.date | None = attrs.field(default=None, kw_only=True)
    freq: str = attrs.field(default="D", kw_only=True)
    unit: str = attrs.field(default="D", kw_only=True)

    def __attrs_post_init__(self) -> None:
        errors: list[FieldError] = []
        _period(self.freq, "freq", errors)
        _period(self.unit, "unit", errors)
        if self.calibration_end is not None and not isinstance(self.calibration_end, dt.date):
            errors.append(FieldError("calibration_end", "type", f"expected a date, got {type(self.calibration_end).__name__}"))
        seen: set[str] = set()
        for i, row in enumerate(self.rows):
            if not isinstance(row, CustomerSummary):
                errors.append(FieldError(f"rows[{i}]", "type", f"expected a CustomerSummary, got {type(row).__name__}"))
            elif row.customer_id in seen:
                errors.append(FieldError(f"rows[{i}].customer_id", "duplicate", f"{row.customer_id!r} appears twice"))
            else:
                seen.add(row.customer_id)
        if errors:
            raise ValidationError(errors)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[CustomerSummary]:
        return iter(self.rows)

    def report(self) -> Report[CustomerSummary]:
        """The rows as a :class:`Report` (a list with ``to_text()``, ``to_dataframe()`` and ``plot()``)."""
        end = f" to {self.calibration_end.isoformat()}" if self.calibration_end is not None else ""
        title = f"Purchase summary{end} (unit {self.unit})"
        return Report._trusted(CustomerSummary, list(self.rows), title=title, x="customer_id", y=("monetary_value",))

    def to_dataframe(self) -> Any:
        """A pandas DataFrame, one row per customer: ``customer_id``, ``frequency`` (int64), ``recency``,
        ``T`` and ``monetary_value`` (float64). Raises :class:`pycrm.CRMError` without pandas."""
        return self.report().to_dataframe()

    def _repr_html_(self) -> str:
        return self.report()._repr_html_()

    def _arrays(self) -> tuple[Array, Array, Array, Array]:
        """(frequency, recency, T, monetary_value) as float arrays."""
        n = len(self.rows)
        out = np.empty((4, n), dtype=np.float64)
        for k, r in enumerate(self.rows):
            out[0, k], out[1, k], out[2, k], out[3, k] = r.frequency, r.recency, r.T, r.monetary_value
        return out[0], out[1], out[2], out[3]


def purchase_summary(
    orders: Iterable[Any],
    *,
    calibration_end: dt.date | dt.datetime | str,
    freq: Period = "D",
    unit: Period = "D",
) -> PurchaseSummary:
    """Frequency, recency, T and monetary value per customer, sorted by customer id.

    ``orders`` are Order objects, mappings or ``(customer_id, occurred_at, amount)`` tuples, all in one
    currency, amounts not negative. Only orders on or before ``calibration_end`` count (a date means the
    whole day, UTC); customers whose first order is later are absent, so an empty book (or a
    ``calibration_end`` before every order) gives an empty summary. Orders in the same period
    (``freq``: ``"D"`` a UTC day, ``"W"`` a Monday-to-Sunday week) are one purchase whose value is their sum;
    ``frequency`` counts the periods after the first, ``monetary_value`` is the mean value of those
    repeat purchases. Times are in days (``unit="D"``) or weeks (``unit="W"``).

    >>> import datetime as dt
    >>> book = [("a", dt.date(2024, 1, 1), 30), ("a", dt.date(2024, 1, 1), 20), ("a", dt.date(2024, 1, 15), 40),
    ...         ("a", dt.date(2024, 1, 29), 60), ("b", dt.date(2024, 1, 22), 10), ("b", dt.date(2024, 3, 1), 99)]
    >>> s = purchase_summary(book, calibration_end="2024-02-26", unit="W")
    >>> s.calibration_end, len(s)
    (datetime.date(2024, 2, 26), 2)
    >>> for r in s:
    ...     print(r.customer_id, r.frequency, r.recency, r.T, r.monetary_value)
    a 2 4.0 8.0 50.0
    b 0 0.0 5.0 0.0
    >>> purchase_summary([("a", dt.date(2024, 1, 1), -5)], calibration_end="2024-02-26")
    Traceback (most recent call last):
    ...
    pycrm.errors.ValidationError: orders[0].amount: -5 is negative; record refunds separately
    """
    errors: list[FieldError] = []
    _period(freq, "freq", errors)
    _period(unit, "unit", errors)
    if errors:
        raise ValidationError(errors)
    cutoff, ref_date = _cutoff(calibration_end, "calibration_end")
    if isinstance(orders, (str, bytes, Mapping)) or not isinstance(orders, Iterable):
        raise ValidationError([FieldError("orders", "type", f"expected an iterable of orders, got {type(orders).__name__}")])
    step = _PERIOD_DAYS[freq]

    def period_of(day: dt.date) -> dt.date:
        return day - dt.timedelta(days=day.weekday()) if step == 7 else day

    per: dict[str, dict[dt.date, Decimal]] = {}
    currency: str | None = None
    for i, order in enumerate(orders):
        try:
            cid, at, amount, cur = _row(order, i)
        except ValidationError as exc:
            errors += exc.errors
            continue
        if cur is not None:
            if currency is None:
                currency = cur
            elif cur != currency:
                errors.append(
                    FieldError(
                        f"orders[{i}].amount.currency",
                        "currency_mismatch",
                        f"{cur} differs from {currency}; convert to one currency first",
                    )
                )
        if amount < 0:
            errors.append(FieldError(f"orders[{i}].amount", "negative", f"{amount} is negative; record refunds separately"))
        if errors or at > cutoff:
            continue
        key = period_of(at.astimezone(dt.UTC).date())
        periods = per.setdefault(cid, {})
        periods[key] = periods.get(key, Decimal(0)) + amount
    if errors:
        raise ValidationError(errors[:_MAX_ERRORS])
    scale = _PERIOD_DAYS[unit]
    end = period_of(ref_date)
    rows = []
    for cid in sorted(per):
        periods = per[cid]
        keys = sorted(periods)
        first, frequency = keys[0], len(keys) - 1
        value = sum((periods[k] for k in keys[1:]), Decimal(0)) / frequency if frequency else Decimal(0)
        rows.append(CustomerSummary(cid, frequency, (keys[-1] - first).days / scale, (end - first).days / scale, float(value)))
    return PurchaseSummary(rows, calibration_end=ref_date, freq=freq, unit=unit)


# ---------------------------------------------------------------- BG/NBD


def _bgnbd_ll(special: Any, r: float, alpha: float, a: float, b: float, x: Array, tx: Array, T: Array) -> Array:
    """Each customer's log-likelihood under BG/NBD (Fader, Hardie and Lee 2005, eq. 6)."""
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    beta_ab = special.betaln(a, b)
    stays = special.betaln(a, b + x) - beta_ab - (r + x) * np.log(alpha + T)
    repeat = x > 0
    # Dropped out right after the last purchase: only customers with a repeat purchase can have.
    xr = np.where(repeat, x, 1.0)
    left = special.betaln(a + 1, b + xr - 1) - beta_ab - (r + xr) * np.log(alpha + tx)
    return np.asarray(common + np.where(repeat, np.logaddexp(stays, left), stays), dtype=np.float64)


def _log_p_alive(r: float, alpha: float, a: float, b: float, x: Array, tx: Array, T: Array) -> Array:
    """log P(alive | x, t_x, T); 0 for customers without repeat purchases."""
    repeat = x > 0
    xr = np.where(repeat, x, 1.0)
    odds = np.log(a) - np.log(b + xr - 1) + (r + xr) * (np.log(alpha + T) - np.log(alpha + tx))
    return np.where(repeat, -np.logaddexp(0.0, odds), 0.0)


def _conditional_purchases(
    special: Any, r: float, alpha: float, a: float, b: float, t: float, x: Array, tx: Array, T: Array
) -> Array:
    """E[purchases in (T, T + t] | x, t_x, T] (Fader, Hardie and Lee 2005, eq. 10).

    That is P(alive) times the expectation for a customer still alive, whose rate is
    Gamma(r + x, alpha + T) and drop-out probability Beta(a, b + x) after the data. The Gauss
    hypergeometric term of the paper is taken through Euler's transformation,
    ``2F1(r+x, b+x; c; z) = (1-z)^(c-r-b-2x) 2F1(c-r-x, c-b-x; c; z)`` with ``c = a+b+x-1`` and
    ``1 - z = (alpha+T)/(alpha+T+t)``, which leaves ``(1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)``:
    parameters that do not grow with x, so frequent buyers stay accurate. Where SciPy's 2F1 gives no
    finite value or one outside the bounds the expectation must keep (degenerate fits: r and alpha in the
    millions, a near 0), the expectation is integrated over the drop-out probability instead.
    """
    if t == 0:
        return np.zeros_like(x)
    e = a if abs(a - 1.0) >= 1e-7 else 1.0 + 1e-7  # the formula is 0/0 at a = 1; take the limit from just above
    c = e + b + x - 1
    z = t / (alpha + T + t)
    k = r + x
    s = t / (alpha + T)
    with np.errstate(all="ignore"):
        tail = np.exp((e - 1) * np.log1p(-z)) * special.hyp2f1(e + b - 1 - r, e - 1, c, z)
        alive = np.asarray(c / (e - 1) * (1 - tail), dtype=np.float64)
        # An alive customer expects g(p) = (1 - (1 + p*s)^-k) / p purchases, which falls from k*s at p = 0
        # to 1 - (1 + s)^-k at p = 1, so the mean over p lies between the two.
        low, high = -np.expm1(-k * np.log1p(s)), k * s
        off = ~np.isfinite(alive) | (alive < low * (1 - 1e-9)) | (alive > high * (1 + 1e-9))
        if np.any(off):
            alive[off] = _alive_purchases_by_quadrature(special, a, b + x[off], k[off], s[off])
        return np.asarray(alive * np.exp(_log_p_alive(r, alpha, a, b, x, tx, T)), dtype=np.float64)


@functools.cache
def _gauss_legendre(n: int = 64) -> tuple[Array, Array]:
    """Gauss-Legendre nodes and weights on (0, 1)."""
    nodes, weights = np.polynomial.legendre.leggauss(n)
    return (nodes + 1) / 2, weights / 2


def _alive_purchases_by_quadrature(special: Any, a: float, bx: Array, k: Array, s: Array) -> Array:
    """E[g(p)] for p ~ Beta(a, bx) as an integral over the quantile u = F(p), in two Gauss-Legendre panels.

    ``g(p) = (1 - (1 + p*s)^-k) / p`` turns over at ``p = 1/s``; the panels meet at that quantile. Accurate
    to about 1e-4 relative, which is far below the uncertainty of the degenerate fits that need it.
    """
    nodes, weights = _gauss_legendre()
    cut = special.betainc(a, bx, np.minimum(1.0, 1.0 / s))[:, None]
    u = np.concatenate([cut * nodes, cut + (1 - cut) * nodes], axis=1)
    w = np.concatenate([cut * weights, (1 - cut) * weights], axis=1)
    p = special.betaincinv(a, bx[:, None], u)
    kk, ss = k[:, None], s[:, None]
    g = np.where(p > 0, -np.expm1(-kk * np.log1p(p * ss)) / np.where(p > 0, p, 1.0), kk * ss)
    return np.asarray(np.sum(g * w, axis=1), dtype=np.float64)


def _positive(value: Any, field: str, errors: list[FieldError]) -> float:
    return _number(value, field, errors, positive=True)


@attrs.frozen
class BGNBDModel:
    """A fitted (or given) BG/NBD model: purchase rate Gamma(r, alpha), drop-out Beta(a, b), times in ``unit``.

    ``log_likelihood`` and ``n_customers`` describe the fit (0.0 and 0 for a model built by hand).

    >>> m = BGNBDModel(r=0.243, alpha=4.414, a=0.793, b=2.426, unit="W")  # CDNOW, Fader, Hardie and Lee 2005
    >>> round(m.p_alive(frequency=2, recency=30.43, T=38.86), 3)
    0.727
    >>> round(m.expected_purchases(39, frequency=2, recency=30.43, T=38.86), 3)
    1.226
    >>> round(m.expected_purchases_new(39), 3)  # repeat purchases of a new customer in 39 weeks
    1.197
    """

    r: float = attrs.field(converter=_float)
    alpha: float = attrs.field(converter=_float)
    a: float = attrs.field(converter=_float)
    b: float = attrs.field(converter=_float)
    unit: str = attrs.field(default="D", kw_only=True)
    log_likelihood: float = attrs.field(default=0.0, kw_only=True, converter=_float)
    n_customers: int = attrs.field(default=0, kw_only=True)

    def _repr_html_(self) -> str:
        return attrs_table(self)

    def __attrs_post_init__(self) -> None:
        errors: list[FieldError] = []
        for name in ("r", "alpha", "a", "b"):
            _positive(getattr(self, name), name, errors)
        _period(self.unit, "unit", errors)
        if errors:
            raise ValidationError(errors)

    def p_alive(self, frequency: int, recency: float, T: float) -> float:
        """The probability that a customer with this history has not dropped out (churn risk is 1 minus it)."""
        x, tx, big_t = _customer(frequency, recency, T)
        return float(
            np.exp(_log_p_alive(self.r, self.alpha, self.a, self.b, np.array([x], float), np.array([tx]), np.array([big_t])))[0]
        )

    def expected_purchases(self, t: float, frequency: int, recency: float, T: float) -> float:
        """The expected number of purchases in the next ``t`` units by a customer with this history."""
        errors: list[FieldError] = []
        horizon = _number(t, "t", errors)
        if errors:
            raise ValidationError(errors)
        x, tx, big_t = _customer(frequency, recency, T)
        _, special = _scipy()
        got = _conditional_purchases(
            special, self.r, self.alpha, self.a, self.b, horizon, np.array([x], float), np.array([tx]), np.array([big_t])
        )
        return _finite(got, "expected_purchases")[0]

    def expected_purchases_new(self, t: float) -> float:
        """The expected number of repeat purchases in the ``t`` units after a new customer's first purchase (eq. 9)."""
        return self.expected_purchases(t, 0, 0.0, 0.0)

    def probability_of_purchases(self, t: float, n: int) -> float:
        """P(X(t) = n): the probability that a new customer makes exactly ``n`` repeat purchases in the ``t``
        units after their first purchase (Fader, Hardie and Lee 2005, eq. 8).

        The sum over n is 1, and the mean of n is :meth:`expected_purchases_new`.

        >>> m = BGNBDModel(r=0.243, alpha=4.414, a=0.793, b=2.426, unit="W")
        >>> [round(m.probability_of_purchases(39, n), 4) for n in range(4)]
        [0.5738, 0.1994, 0.0854, 0.0459]
        """
        errors: list[FieldError] = []
        horizon = _number(t, "t", errors)
        count = _whole(n, "n", errors)
        if errors:
            raise ValidationError(errors)
        if horizon == 0:
            return 1.0 if count == 0 else 0.0
        _, special = _scipy()
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        beta_ab = special.betaln(a, b)
        # Still active at t with n purchases: a NBD(r, alpha) count of n, times P(no drop-out after n) = B(a, b+n)/B(a, b).
        log_nbd = (
            special.gammaln(r + count)
            - special.gammaln(r)
            - special.gammaln(count + 1.0)
            + r * (math.log(alpha) - math.log(alpha + horizon))
            + count * (math.log(horizon) - math.log(alpha + horizon))
        )
        got = math.exp(special.betaln(a, b + count) - beta_ab + log_nbd)
        if count > 0:
            # Dropped out right after the n-th purchase, which came before t: B(a+1, b+n-1)/B(a, b) times
            # P(NBD count >= n) = 1 - sum_{j<n} NBD(j), the regularized incomplete beta I(n, r; t/(alpha+t)).
            reached = special.betainc(count, r, horizon / (alpha + horizon))
            got += math.exp(special.betaln(a + 1.0, b + count - 1.0) - beta_ab) * float(reached)
        return _finite(np.array([got]), "probability_of_purchases")[0]


def _finite(values: Array, what: str) -> list[float]:
    """Values that are all finite, as floats; a CRMError (never a NaN) when the model cannot give them."""
    if not np.all(np.isfinite(values)):
        raise ValidationError(
            [
                FieldError(
                    what, "not_finite", "the model parameters give no finite value here; refit with more data or a penalizer"
                )
            ]
        )
    return [float(v) for v in values]


def _summary(summary: Any) -> PurchaseSummary:
    if not isinstance(summary, PurchaseSummary):
        raise ValidationError(
            [FieldError("summary", "type", f"expected a PurchaseSummary (see purchase_summary), got {type(summary).__name__}")]
        )
    return summary


def _penalizer(value: Any) -> float:
    errors: list[FieldError] = []
    out = _number(value, "penalizer", errors)
    if errors:
        raise ValidationError(errors)
    return out


def _minimize(objective: Any, n: int) -> Any:
    """Minimize over log-parameters in [-20, 20]: L-BFGS-B from 0 (every parameter 1), Nelder-Mead if it stalls."""
    optimize, _ = _scipy()
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * n
    with np.errstate(all="ignore"):
        res = optimize.minimize(objective, np.zeros(n), method="L-BFGS-B", bounds=bounds)
        if not res.success or not np.isfinite(res.fun):
            polished = optimize.minimize(
                objective, res.x, method="Nelder-Mead", bounds=bounds, options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 4000}
            )
            if np.isfinite(polished.fun) and (polished.fun <= res.fun or not np.isfinite(res.fun)):
                res = polished
    if not np.isfinite(res.fun) or not np.all(np.isfinite(res.x)):
        raise ValidationError([FieldError("summary", "no_fit", "the likelihood could not be maximized on this data")])
    return res


def fit_bgnbd(summary: PurchaseSummary, *, penalizer: float = 0.0) -> BGNBDModel:
    """Fit BG/NBD by maximum likelihood (log-parameters, L-BFGS-B) on a :class:`PurchaseSummary`.

    Needs at least 10 customers, some with a repeat purchase and some observed for a while (``T > 0``);
    otherwise the data do not determine the model and a ValidationError says why. ``penalizer`` adds
    ``penalizer * (r² + alpha² + a² + b²)`` to the mean negative log-likelihood (as ``lifetimes`` does),
    which keeps small or odd data sets away from extreme parameters.

    >>> rows = [CustomerSummary(f"c{k}", k % 4, float(k % 4) * 5, 30.0, 10.0 * (k % 4)) for k in range(12)]
    >>> fit_bgnbd(PurchaseSummary(rows[:5]))
    Traceback (most recent call last):
    ...
    pycrm.errors.ValidationError: summary: too few customers to fit BG/NBD (5; at least 10 are needed)
    >>> m = fit_bgnbd(PurchaseSummary(rows))
    >>> m.n_customers, m.r > 0, m.log_likelihood < 0
    (12, True, True)
    """
    summary = _summary(summary)
    pen = _penalizer(penalizer)
    x, tx, T, _ = summary._arrays()
    _enough(len(x), "BG/NBD")
    if not np.any(x > 0):
        raise ValidationError(
            [FieldError("summary", "no_repeat_purchases", "no customer has a repeat purchase; BG/NBD cannot be fitted")]
        )
    if not np.any(T > 0):
        raise ValidationError([FieldError("summary", "no_observation_time", "every customer's T is 0; BG/NBD cannot be fitted")])
    _, special = _scipy()
    # Customers with the same history contribute the same term: fit on the distinct histories, weighted.
    keys, weights = np.unique(np.stack([x, tx, T], axis=1), axis=0, return_counts=True)
    ux, utx, uT = keys[:, 0], keys[:, 1], keys[:, 2]
    n = float(len(x))

    def objective(theta: Array) -> float:
        r, alpha, a, b = np.exp(theta)
        ll = float(np.dot(weights, _bgnbd_ll(special, r, alpha, a, b, ux, utx, uT)))
        return -ll / n + pen * float(np.sum(np.exp(2 * theta)))

    res = _minimize(objective, 4)
    r, alpha, a, b = (float(v) for v in np.exp(res.x))
    ll = float(np.dot(weights, _bgnbd_ll(special, r, alpha, a, b, ux, utx, uT)))
    return BGNBDModel(r, alpha, a, b, unit=summary.unit, log_likelihood=ll, n_customers=len(x))


def _enough(n: int, model: str) -> None:
    if n < MIN_CUSTOMERS:
        raise ValidationError(
            [
                FieldError(
                    "summary", "too_few_customers", f"too few customers to fit {model} ({n}; at least {MIN_CUSTOMERS} are needed)"
                )
            ]
        )


# ---------------------------------------------------------------- Gamma-Gamma


def _gamma_gamma_ll(special: Any, p: float, q: float, gamma: float, x: Array, m: Array) -> Array:
    """Each customer's log-density of their mean spend ``m`` over ``x`` purchases (Fader and Hardie 2013, eq. 5)."""
    px = p * x
    return np.asarray(
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * np.log(gamma)
        + px * np.log(x)
        + (px - 1) * np.log(m)
        - (px + q) * np.log(gamma + x * m),
        dtype=np.float64,
    )


@attrs.frozen
class GammaGammaModel:
    """A fitted (or given) Gamma-Gamma spend model: spend per purchase Gamma(p, nu), nu ~ Gamma(q, gamma).

    >>> gg = GammaGammaModel(p=6.25, q=3.74, gamma=15.44)  # CDNOW, Fader and Hardie 2013
    >>> round(gg.expected_average_value(frequency=2, monetary_value=22.35), 2)
    24.66
    >>> round(gg.expected_average_value(frequency=0, monetary_value=0), 2)  # the population mean
    35.22
    """

    p: float = attrs.field(converter=_float)
    q: float = attrs.field(converter=_float)
    gamma: float = attrs.field(converter=_float)
    log_likelihood: float = attrs.field(default=0.0, kw_only=True, converter=_float)
    n_customers: int = attrs.field(default=0, kw_only=True)

    def _repr_html_(self) -> str:
        return attrs_table(self)

    def __attrs_post_init__(self) -> None:
        errors: list[FieldError] = []
        for name in ("p", "q", "gamma"):
            _positive(getattr(self, name), name, errors)
        if errors:
            raise ValidationError(errors)

    def expected_average_value(self, frequency: int, monetary_value: float) -> float:
        """E[spend per purchase | frequency, monetary_value]: the customer's mean, shrunk toward the population's.

        A customer without repeat purchases gets the population mean ``p * gamma / (q - 1)``, which is
        finite only when ``q > 1``; in general the value is finite only when ``p * frequency + q > 1``, and
        otherwise a ValidationError (field ``q``, code ``infinite_mean``) says so and what to do instead.
        """
        errors: list[FieldError] = []
        x = _whole(frequency, "frequency", errors)
        m = _number(monetary_value, "monetary_value", errors)
        if errors:
            raise ValidationError(errors)
        return _finite(self._expected(np.array([x], float), np.array([m])), "expected_average_value")[0]

    def _expected(self, x: Array, m: Array) -> Array:
        denominator = self.p * x + self.q - 1
        if np.any(denominator <= 0):
            raise ValidationError(
                [
                    FieldError(
                        "q",
                        "infinite_mean",
                        f"q = {self.q:.4g} gives no finite mean spend for customers with few purchases: spend per "
                        "purchase differs between customers by orders of magnitude. A penalizer does not help (it "
                        "pulls q down). Score groups of customers whose spend is alike separately, e.g. business and "
                        "consumer customers, each with where={'customer_id': {'in': ids}} (or one order book per group)",
                    )
                ]
            )
        return np.asarray(self.p * (self.gamma + x * m) / denominator, dtype=np.float64)


def fit_gamma_gamma(summary: PurchaseSummary, *, penalizer: float = 0.0) -> GammaGammaModel:
    """Fit Gamma-Gamma by maximum likelihood on the customers with a repeat purchase of positive value.

    Only repeat purchases enter ``monetary_value`` (the first purchase often differs in kind), so
    customers with ``frequency == 0`` say nothing about spend; at least 10 customers with repeat
    purchases are needed. ``penalizer`` works as in :func:`fit_bgnbd`. The model assumes spend and
    purchase frequency are independent; check that on your data before trusting CLV.

    >>> rows = [CustomerSummary(f"c{k}", 1 + k % 3, 10.0, 20.0, 10.0 + 7 * (k % 5)) for k in range(12)]
    >>> gg = fit_gamma_gamma(PurchaseSummary(rows))
    >>> gg.n_customers, round(gg.expected_average_value(1, 10.0), 2) > 10
    (12, True)
    """
    summary = _summary(summary)
    pen = _penalizer(penalizer)
    x, _, _, m = summary._arrays()
    used = (x > 0) & (m > 0)
    _enough(int(used.sum()), "Gamma-Gamma (customers with a repeat purchase)")
    ux, um = x[used], m[used]
    _, special = _scipy()
    n = float(len(ux))

    def objective(theta: Array) -> float:
        p, q, gamma = np.exp(theta)
        return -float(np.sum(_gamma_gamma_ll(special, p, q, gamma, ux, um))) / n + pen * float(np.sum(np.exp(2 * theta)))

    res = _minimize(objective, 3)
    p, q, gamma = (float(v) for v in np.exp(res.x))
    ll = float(np.sum(_gamma_gamma_ll(special, p, q, gamma, ux, um)))
    return GammaGammaModel(p, q, gamma, log_likelihood=ll, n_customers=len(ux))


# ---------------------------------------------------------------- CLV


@attrs.frozen
class CLVScore:
    """One customer's CLV figures over the horizon.

    ``expected_purchases`` is over the whole horizon, ``expected_average_value`` the Gamma-Gamma
    expected spend per purchase, ``clv`` the discounted sum of expected spend, ``churn_risk`` is
    ``1 - p_alive``. ``frequency``, ``recency``, ``T`` and ``monetary_value`` repeat the summary.
    """

    customer_id: str
    frequency: int
    recency: float
    T: float
    monetary_value: float
    p_alive: float
    churn_risk: float
    expected_purchases: float
    expected_average_value: float
    clv: float


def customer_lifetime_value(
    summary: PurchaseSummary,
    purchases: BGNBDModel,
    spend: GammaGammaModel,
    *,
    months: int = 12,
    discount_rate: float = 0.01,
) -> Report[CLVScore]:
    """CLV per customer over ``months``, discounted monthly at ``discount_rate``, in summary order.

    For month m = 1..months, the expected purchases in that month (the BG/NBD expectation by the end of
    month m minus that by the end of month m-1, a month being 30 days or 4.345 weeks) times the
    Gamma-Gamma expected spend, divided by ``(1 + discount_rate) ** m``, summed. This is the
    discounted-cash-flow definition of ``lifetimes``' ``customer_lifetime_value``.

    >>> bg = BGNBDModel(r=0.243, alpha=4.414, a=0.793, b=2.426, unit="W")
    >>> gg = GammaGammaModel(p=6.25, q=3.74, gamma=15.44)
    >>> s = PurchaseSummary([CustomerSummary("1", 2, 30.43, 38.86, 22.35), CustomerSummary("3", 0, 0, 38.86)], unit="W")
    >>> for c in customer_lifetime_value(s, bg, gg, months=12, discount_rate=0.01):
    ...     print(c.customer_id, round(c.expected_purchases, 3), round(c.churn_risk, 3), round(c.clv, 2))
    1 1.562 0.273 36.29
    3 0.253 0.0 8.37
    """
    summary = _summary(summary)
    errors: list[FieldError] = []
    if not isinstance(purchases, BGNBDModel):
        errors.append(FieldError("purchases", "type", f"expected a BGNBDModel, got {type(purchases).__name__}"))
    elif purchases.unit != summary.unit:
        errors.append(
            FieldError(
                "purchases.unit", "unit_mismatch", f"the model counts in {purchases.unit!r}, the summary in {summary.unit!r}"
            )
        )
    if not isinstance(spend, GammaGammaModel):
        errors.append(FieldError("spend", "type", f"expected a GammaGammaModel, got {type(spend).__name__}"))
    horizon = _whole(months, "months", errors)
    rate = _number(discount_rate, "discount_rate", errors)
    if errors:
        raise ValidationError(errors)
    x, tx, T, m = summary._arrays()
    if len(x) == 0:
        return _clv_report([])
    _, special = _scipy()
    r, alpha, a, b = purchases.r, purchases.alpha, purchases.a, purchases.b
    value = spend._expected(x, m)
    month = _MONTH[summary.unit]
    clv = np.zeros_like(x)
    before = np.zeros_like(x)
    with np.errstate(all="ignore"):
        for k in range(1, horizon + 1):
            upto = _conditional_purchases(special, r, alpha, a, b, k * month, x, tx, T)
            clv += value * (upto - before) / (1 + rate) ** k
            before = upto
        alive = np.exp(_log_p_alive(r, alpha, a, b, x, tx, T))
    _finite(np.concatenate([clv, before, alive, value]), "clv")
    return _clv_report(
        [
            CLVScore(row.customer_id, row.frequency, row.recency, row.T, row.monetary_value, p, 1.0 - p, e, v, c)
            for row, p, e, v, c in zip(summary.rows, alive.tolist(), before.tolist(), value.tolist(), clv.tolist())
        ]
    )


def _clv_report(scores: list[CLVScore]) -> Report[CLVScore]:
    return Report._trusted(CLVScore, scores, title="Customer lifetime value", x="customer_id", y=("clv",))


def clv(
    orders: Iterable[Any],
    *,
    as_of: dt.date | dt.datetime | str,
    months: int = 12,
    discount_rate: float = 0.01,
    freq: Period = "D",
    unit: Period = "D",
    penalizer: float = 0.0,
) -> Report[CLVScore]:
    """Summarize ``orders`` up to ``as_of``, fit BG/NBD and Gamma-Gamma, and score every customer.

    The one-call form of :func:`purchase_summary`, :func:`fit_bgnbd`, :func:`fit_gamma_gamma` and
    :func:`customer_lifetime_value`, sorted by customer id. The fits need at least 10 customers (10 with
    repeat purchases for spend); fewer, including an empty book, raise ValidationError.

    >>> clv([], as_of="2024-03-31")
    Traceback (most recent call last):
    ...
    pycrm.errors.ValidationError: summary: too few customers to fit BG/NBD (0; at least 10 are needed)
    """
    _cutoff(as_of)  # the day check, naming ``as_of``
    summary = purchase_summary(orders, calibration_end=as_of, freq=freq, unit=unit)
    purchases = fit_bgnbd(summary, penalizer=penalizer)
    spend = fit_gamma_gamma(summary, penalizer=penalizer)
    return customer_lifetime_value(summary, purchases, spend, months=months, discount_rate=discount_rate)
