"""RFM over a pandas DataFrame, vectorized: the same scores as :func:`pycrm.analytics.rfm` on objects.

``rfm(df, as_of=...)`` lands here when ``df`` is a DataFrame with columns ``customer_id``, ``occurred_at``,
``amount`` and optionally ``currency``. pandas is imported only then (it is an optional dependency).

Column types, and how each is read:

- ``customer_id``: strings (``object``, ``string`` or ``category`` dtype); empty or missing ids are refused.
- ``occurred_at``: timezone-aware ``datetime64`` (any unit, any zone), or objects: aware datetimes,
  dates (midnight UTC, as on the object path) and ISO 8601 strings (a bare ``YYYY-MM-DD`` is a date; a
  date-time needs an offset or ``Z``). Naive date-times are refused, as on the object path.
- ``amount``: integers; floats, read as the decimal they print as (``19.99`` is ``Decimal("19.99")``);
  or objects holding Decimals, ints, floats or decimal strings. At most 4 decimal places, below 10^14.
  NaN, infinities and missing values are refused; so are negative amounts among counted orders.
- ``currency``: ISO 4217 codes; missing values mean "not stated". Counted orders must share one.

Problems raise :class:`pycrm.ValidationError`, with fields such as ``orders[3].amount``, where 3 is the
row's position (``df.iloc[3]``); the message also gives the index label when it differs. Sums are exact
(integers of 1/10,000 units), so ``monetary`` equals the object path's Decimal.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from pycrm.analytics._rfm import RFMScore, SegmentRule, _new_score, _SegmentTable
from pycrm.domain._iso4217 import MINOR_UNITS
from pycrm.domain._values import MONEY_LIMIT, _to_amount
from pycrm.errors import FieldError, ValidationError

__all__ = ["rfm_frame"]

REQUIRED = ("customer_id", "occurred_at", "amount")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_DAY = dt.date(1970, 1, 1).toordinal()
_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
_MAX_LISTED = 10  # rows named per kind of problem; the last message counts the rest
_SAFE_FLOAT = 2.0**53 / 10**4  # below this, float -> 1/10,000 units is exact by the round-trip check


class _Problems:
    """Row problems, grouped by (column, code), listing the first few rows of each."""

    def __init__(self, index: Any) -> None:
        self.errors: list[FieldError] = []
        self._index = index
        self._plain = _is_default_index(index)

    def field(self, pos: int, column: str) -> str:
        return f"orders[{pos}].{column}"

    def label(self, pos: int) -> str:
        return "" if self._plain else f" (index label {self._index[pos]!r})"

    def add(self, rows: Sequence[int], column: str, code: str, message: Callable[[int], str]) -> None:
        listed = list(rows[:_MAX_LISTED])
        for k, pos in enumerate(listed):
            more = len(rows) - len(listed) if k == len(listed) - 1 else 0
            extra = f"; {more} more rows have this problem" if more else ""
            self.errors.append(FieldError(self.field(pos, column), code, message(pos) + self.label(pos) + extra))

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def _libs() -> tuple[Any, Any]:
    """numpy and pandas, imported now (untyped here: pandas ships no type information)."""
    return importlib.import_module("numpy"), importlib.import_module("pandas")


def _clamp(ticks: int) -> int:
    """A bound for comparing with int64 ticks (dates far beyond 2262 in nanoseconds)."""
    return max(-(2**63) + 1, min(ticks, 2**63 - 1))


def _is_default_index(index: Any) -> bool:
    _, pd = _libs()
    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1


def rfm_frame(
    df: Any,
    *,
    cutoff: dt.datetime,
    ref_date: dt.date,
    whole_day: bool,
    bins: int,
    segments: Sequence[SegmentRule],
) -> list[RFMScore]:
    """The DataFrame path of ``rfm`` (``cutoff`` and ``ref_date`` from ``_rfm._cutoff``; ``whole_day``
    when ``as_of`` was a date, so every order dated on or before ``ref_date`` counts)."""
    np, pd = _libs()

    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValidationError([FieldError(f"orders.{c}", "required", "the DataFrame has no such column") for c in missing])
    if not df.columns.is_unique:
        dup = sorted({str(c) for c in df.columns[df.columns.duplicated()] if c in (*REQUIRED, "currency")})
        if dup:
            raise ValidationError([FieldError(f"orders.{c}", "duplicate", "the DataFrame has this column twice") for c in dup])
    problems = _Problems(df.index)
    codes, ids = _customer_ids(df["customer_id"], problems)
    ticks, per_day = _times(df["occurred_at"], problems)
    e4, places = _amounts(df["amount"], problems)
    problems.raise_if_any()

    # which orders count
    ref_day = ref_date.toordinal() - _EPOCH_DAY
    if whole_day:
        counted = ticks <= _clamp((ref_day + 1) * per_day - 1)
    else:
        as_of_us = (cutoff - _EPOCH) // dt.timedelta(microseconds=1)
        per_second = per_day // 86_400
        if per_second >= 10**6:
            counted = ticks <= _clamp(as_of_us * (per_second // 10**6))
        else:
            counted = ticks <= _clamp(as_of_us // (10**6 // per_second))
    all_counted = bool(counted.all())
    if not all_counted and not counted.any():
        if "currency" in df.columns:
            _currencies(df["currency"], counted, problems)
        problems.raise_if_any()
        return []
    # negative amounts and currencies: only counted orders must be in order (as on the object path)
    neg = e4 < 0 if all_counted else (e4 < 0) & counted
    if neg.any():
        rows = np.flatnonzero(neg).tolist()
        problems.add(rows, "amount", "negative", lambda p: "is negative; record refunds separately")
    if "currency" in df.columns:
        _currencies(df["currency"], None if all_counted else counted, problems)
    problems.raise_if_any()

    if not all_counted:
        codes, ticks, e4 = codes[counted], ticks[counted], e4[counted]
    # number the customers with counted orders in id order
    order = _sorted_order(ids)
    present = np.bincount(codes, minlength=len(ids))[order] > 0
    keep = order[present]
    n = len(keep)
    renumber = np.full(len(ids), -1, dtype=np.intp)
    renumber[keep] = np.arange(n)
    codes = renumber[codes]
    ids = ids[keep]
    freq = np.bincount(codes, minlength=n)
    last = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last, codes, ticks)
    if len(e4) and int(np.abs(e4).max()) * int(freq.max()) < 2**63:
        mon: Any = np.zeros(n, dtype=np.int64)
        np.add.at(mon, codes, e4)
    else:  # sums that could overflow 64 bits: Python integers (slow, exact; amounts near 10^14)
        mon = pd.Series(e4.astype(object)).groupby(codes).sum().to_numpy()
    rec = ref_day - last // per_day

    def score(below: Any) -> Any:
        return 1 + (bins * below) // n

    r = score(n - np.searchsorted(np.sort(rec), rec, side="right"))
    f = score(np.searchsorted(np.sort(freq), freq, side="left"))
    m = score(np.searchsorted(np.sort(mon), mon, side="left"))
    # the segment of each (r, f) pair that occurs, once per pair (not a bins x bins table)
    pairs, inverse = np.unique(r * (bins + 1) + f, return_inverse=True)
    table = _SegmentTable(segments)
    seg = np.array([table[divmod(int(k), bins + 1)] for k in pairs.tolist()], dtype=object)[inverse.reshape(-1)]
    if places == 4:
        monetary = [Decimal(k).scaleb(-4) for k in mon.tolist()]
    elif places == 0:
        monetary = list(map(Decimal, (mon // 10**4).tolist()))
    else:
        monetary = [Decimal(k).scaleb(-places) for k in (mon // 10 ** (4 - places)).tolist()]
    return list(
        map(_new_score, ids.tolist(), rec.tolist(), freq.tolist(), monetary, r.tolist(), f.tolist(), m.tolist(), seg.tolist())
    )


# ---------------------------------------------------------------- columns


def _customer_ids(col: Any, problems: _Problems) -> tuple[Any, Any]:
    """``(codes, ids)``: a code per row into ``ids``, a numpy object array of distinct non-empty str."""
    np, pd = _libs()

    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy().astype(np.intp)
        ids = np.asarray(col.cat.categories, dtype=object)
    else:
        values = col.to_numpy(dtype=object, na_value=None) if col.dtype.name != "object" else col.to_numpy()
        codes, ids = pd.factorize(values)
        ids = np.asarray(ids, dtype=object)
    missing = codes < 0
    if missing.any():
        problems.add(np.flatnonzero(missing).tolist(), "customer_id", "required", lambda p: "no customer id")
    if pd.api.types.infer_dtype(ids, skipna=False) != "string" or bool((ids == "").any()):
        bad = [k for k, v in enumerate(ids.tolist()) if not isinstance(v, str) or not v]
        if bad:
            rows = np.flatnonzero(np.isin(codes, bad)).tolist()
            problems.add(rows, "customer_id", "required", lambda p: f"not a customer id: {ids[codes[p]]!r}")
    return codes, ids


def _sorted_order(ids: Any) -> Any:
    """Positions that sort distinct str ``ids`` as Python does (code point order)."""
    np, _ = _libs()
    if len(ids) and max(map(len, ids.tolist())) <= 64:
        fixed = ids.astype(str)  # numpy's fixed-width strings sort in C, by code point
        order = np.argsort(fixed, kind="stable")
        ranked = fixed[order]
        if not (ranked[1:] == ranked[:-1]).any():  # fixed-width drops trailing NULs: then sort as objects
            return order
    return np.argsort(ids, kind="stable")


def _times(col: Any, problems: _Problems) -> tuple[Any, int]:
    """Order times as int64 ticks since the epoch (UTC) and the ticks in a day."""
    np, pd = _libs()

    dtype = col.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        arr = col.array
        ticks = arr.asi8
        nat = ticks == np.iinfo(np.int64).min
        if nat.any():
            problems.add(np.flatnonzero(nat).tolist(), "occurred_at", "required", lambda p: "no date (NaT)")
        return ticks, 86_400 * _PER_SECOND[arr.unit]
    if dtype.kind == "M":
        problems.add(
            [0] if len(col) else [],
            "occurred_at",
            "naive_datetime",
            lambda p: "the column has no time zone; use df['occurred_at'].dt.tz_localize('UTC')",
        )
        return np.zeros(len(col), dtype=np.int64), 86_400 * 10**6
    if dtype.name != "object" and not isinstance(dtype, pd.StringDtype):
        problems.add(
            [0] if len(col) else [],
            "occurred_at",
            "type",
            lambda p: f"expected timezone-aware date-times, the column is {dtype}",
        )
        return np.zeros(len(col), dtype=np.int64), 86_400 * 10**6
    out = np.zeros(len(col), dtype=np.int64)
    bad: dict[str, dict[int, str]] = {}
    one_us = dt.timedelta(microseconds=1)
    nat, isna = pd.NaT, pd.isna
    for pos, v in enumerate(col.tolist()):
        try:
            if v is None or v is nat or (not isinstance(v, (str, dt.date)) and isna(v)):
                raise _Bad("required", "no date")
            at = _one_time(v)
        except _Bad as exc:
            bad.setdefault(exc.code, {})[pos] = exc.message
            continue
        out[pos] = (at - _EPOCH) // one_us
    for code, msgs in bad.items():
        problems.add(list(msgs), "occurred_at", code, msgs.__getitem__)
    return out, 86_400 * 10**6


class _Bad(Exception):
    def __init__(self, code: str, message: str) -> None:
        self.code, self.message = code, message


def _one_time(v: Any) -> dt.datetime:
    if isinstance(v, str):
        t = v.strip()
        try:
            if len(t) == 10:
                d = dt.date.fromisoformat(t)
                return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)
            v = dt.datetime.fromisoformat(t.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise _Bad("invalid_datetime", f"{t[:40]!r} is not an ISO 8601 date or date-time") from None
    if isinstance(v, dt.datetime):
        if v.tzinfo is None or v.utcoffset() is None:
            raise _Bad("naive_datetime", f"{v} needs a timezone (an offset such as +08:00, or Z)")
        return v
    if isinstance(v, dt.date):
        return dt.datetime(v.year, v.month, v.day, tzinfo=dt.UTC)
    raise _Bad("type", f"expected a datetime, got {type(v).__name__}")


def _amounts(col: Any, problems: _Problems) -> tuple[Any, int]:
    """Amounts as int64 units of 1/10,000 and the decimal places the output needs (0 to 4)."""
    np, pd = _libs()

    dtype = col.dtype
    n = len(col)
    if dtype.kind in "iu":
        if col.hasnans:
            problems.add(np.flatnonzero(col.isna().to_numpy()).tolist(), "amount", "required", lambda p: "no amount")
            return np.zeros(n, dtype=np.int64), 0
        big = (col.abs() >= int(MONEY_LIMIT)).to_numpy(dtype=bool)
        if big.any():
            problems.add(np.flatnonzero(big).tolist(), "amount", "out_of_range", lambda p: "is too large (limit 10^14)")
            return np.zeros(n, dtype=np.int64), 0
        return col.to_numpy(dtype=np.int64) * 10**4, 0
    if dtype.kind == "f":
        x = col.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(x)
        if bad.any():
            problems.add(np.flatnonzero(bad).tolist(), "amount", "invalid_amount", lambda p: f"{x[p]} is not an amount")
            return np.zeros(n, dtype=np.int64), 0
        big = np.abs(x) >= float(MONEY_LIMIT)
        if big.any():
            problems.add(np.flatnonzero(big).tolist(), "amount", "out_of_range", lambda p: f"{x[p]!r} is too large (limit 10^14)")
            return np.zeros(n, dtype=np.int64), 0
        scaled = np.rint(x * 1e4)
        inexact = scaled / 1e4 != x  # more than 4 places in the shortest form (exact below _SAFE_FLOAT)
        e4 = scaled.astype(np.int64)
        large = np.abs(x) >= _SAFE_FLOAT
        if large.any():  # beyond 2**53 units the round trip is not a proof: ask Decimal
            for pos in np.flatnonzero(large).tolist():
                dec = Decimal(repr(float(x[pos])))
                inexact[pos] = dec != dec.quantize(Decimal("0.0001"))
                if not inexact[pos]:
                    e4[pos] = int(dec.scaleb(4))
        if inexact.any():
            problems.add(
                np.flatnonzero(inexact).tolist(), "amount", "too_precise", lambda p: f"{x[p]!r} has more than 4 decimal places"
            )
        return e4, _places(e4)
    values = col.to_numpy(dtype=object)
    out = np.zeros(n, dtype=np.int64)
    problems_of: dict[str, dict[int, str]] = {}
    isna = pd.isna
    for pos, v in enumerate(values.tolist()):
        try:
            if isinstance(v, float):
                if v != v:
                    raise ValidationError([FieldError("", "required", "no amount (NaN)")])
                v = repr(v)  # a float means the decimal it prints as
            elif hasattr(v, "amount") and hasattr(v, "currency"):
                v = v.amount
            elif v is None or (not isinstance(v, (str, int, Decimal)) and isna(v)):
                raise ValidationError([FieldError("", "required", "no amount")])
            out[pos] = int(_to_amount(v, "").scaleb(4))
        except ValidationError as exc:
            e = exc.errors[0]
            problems_of.setdefault(e.code, {})[pos] = e.message
        except (TypeError, ValueError, OverflowError):
            problems_of.setdefault("type", {})[pos] = f"expected a decimal amount, got {type(v).__name__}"
    for code, msgs in problems_of.items():
        problems.add(list(msgs), "amount", code, msgs.__getitem__)
    return out, _places(out)


def _places(e4: Any) -> int:
    """The fewest decimal places (0 to 4) that show every amount exactly."""
    for places in range(4):
        if not (e4 % 10 ** (4 - places)).any():
            return places
    return 4


def _currencies(col: Any, counted: Any, problems: _Problems) -> None:
    """Every stated currency is an ISO 4217 code; counted orders state at most one (first one wins)."""
    np, pd = _libs()

    values = col.to_numpy(dtype=object, na_value=None)
    stated = ~pd.isna(values)
    uniq = pd.unique(values[stated])
    canon: dict[Any, str] = {}
    for u in uniq.tolist():
        if isinstance(u, str) and u.upper() in MINOR_UNITS:
            canon[u] = u.upper()
        else:
            rows = np.flatnonzero(stated & (values == u)).tolist()
            problems.add(rows, "currency", "invalid_currency", lambda p: f"not an ISO 4217 currency: {values[p]!r}")
    if problems.errors:
        return
    use = stated if counted is None else stated & counted
    if len(set(canon[u] for u in pd.unique(values[use]).tolist())) <= 1:
        return
    positions = np.flatnonzero(use)
    upper = np.array([canon[v] for v in values[positions].tolist()], dtype=object)
    first = upper[0]
    differ = positions[upper != first].tolist()
    problems.add(
        differ,
        "currency",
        "currency_mismatch",
        lambda p: f"{canon[values[p]]} differs from {first}; convert to one currency first",
    )
