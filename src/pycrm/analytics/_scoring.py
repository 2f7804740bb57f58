"""Lead scoring: a calibrated, explainable win probability for open deals and leads, learned from the won and
lost deals of the store (naive Bayes, as Odoo's predictive lead scoring, then Platt-calibrated).

**Features.** Each deal is described, *as it was when it was decided* (closed deals: at ``closed_at``; open
deals and leads: at ``as_of``), by

- its customer's ``category``, ``country``, ``kind`` and ``tags``, its ``owner``, ``pipeline``, ``currency``;
- ``stage``: the last open stage it was in (a closed deal's stage before the closing move);
- numbers, cut into bins at the training deals' quantiles (``bins``, a missing value in no bin): ``amount``,
  ``age_days`` (creation to decision), ``stage_days`` (time in that last open stage), ``moves`` (stage
  changes before the decision) and the customer's ``interactions``, ``tickets`` and ``orders`` dated
  before the decision.

A lead (a customer whose status is ``lead`` or ``prospect``, without an open deal) is scored on the
customer's features alone: naive Bayes leaves a missing feature out, which is exactly the model without it.

**Model.** For every feature value ``v``, ``log P(v | won) / P(v | lost)`` with Laplace smoothing
``smoothing`` over the feature's values seen in training plus one for an unseen value; a tag counts when
present. The raw score ``s`` is the prior log-odds plus the sum of those. Naive Bayes is over-confident
when features go together, so ``P(won) = 1 / (1 + exp(-(a*s + b)))`` with ``a``, ``b`` fitted (Platt scaling,
by Newton's method) on *out-of-fold* scores: the training deals are cut into ``folds`` parts, and each part
is scored by the counts of the others.

**Explanations.** A score's log-odds is ``intercept + sum(contributions)``: each feature value's
contribution is ``a * log P(v | won) / P(v | lost)``, and a :class:`LeadScore` lists them by size.

**Holdout.** :meth:`LeadScoring.evaluate` trains on the older closed deals and tests on the newest
``holdout`` fraction (by ``closed_at``): AUC, Brier score, and the Brier score of always answering the
training base rate.

Too little history -- fewer than :data:`MIN_CLOSED` closed deals, or fewer than :data:`MIN_PER_CLASS` won
or lost -- is a ValidationError saying how many are needed.

>>> import datetime as dt
>>> from pycrm import Customer, Money, Opportunity
>>> t0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
>>> customers = [Customer(f"C{i}", id=f"c{i}", country="DE" if i % 2 else "FR", status="active") for i in range(40)]
>>> deals = []
>>> for i in range(40):
...     o = Opportunity(f"c{i}", f"D{i}", Money(1000, "EUR"), id=f"o{i}", created_at=t0)
...     if i % 2 and i % 10:      # the German customers win, but for one in five
...         o.win(at=t0 + dt.timedelta(days=i + 1))
...     elif i % 2 or i % 10:
...         o.lose("no budget", at=t0 + dt.timedelta(days=i + 1))
...     else:
...         o.move_to("qualification", at=t0 + dt.timedelta(days=2))
...     deals.append(o)
>>> scoring = lead_scoring(deals, customers=customers, as_of=t0 + dt.timedelta(days=60))
>>> [(s.opportunity_id, round(s.probability, 2)) for s in scoring.scores()][:2]
[('o0', 0.01), ('o10', 0.01)]
>>> s = scoring.explain("o0"); s.reasons[0].feature, s.reasons[0].value
('country', 'FR')
>>> abs(scoring.model.intercept + sum(r.contribution for r in s.all_reasons) - s.log_odds) < 1e-9
True
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from pycrm.analytics._common import aware, opt_aware
from pycrm.analytics._report import Report
from pycrm.domain import Customer, Opportunity, StageKind, get_pipeline, utcnow
from pycrm.domain._checks import check_flag, check_iterable
from pycrm.domain._html import MAX_HTML_ROWS, attrs_table, html_table, key_value_table
from pycrm.errors import FieldError, ValidationError, quote

__all__ = [
    "LEAD_STATUSES",
    "MIN_CLOSED",
    "MIN_PER_CLASS",
    "DealFeatures",
    "LeadEvaluation",
    "LeadReason",
    "LeadScore",
    "LeadScoring",
    "LeadScoringModel",
    "auc_score",
    "brier_score",
    "deal_features",
    "fit_lead_scoring",
    "lead_scoring",
]

#: The least history a model is fitted on: closed deals in all, and won and lost ones each.
MIN_CLOSED = 20
MIN_PER_CLASS = 5
#: Customer statuses scored as leads (when they have no open deal).
LEAD_STATUSES = ("lead", "prospect")
#: The categorical features, then the numeric ones (binned), in the order explanations break ties.
CATEGORICAL = ("stage", "pipeline", "owner", "currency", "category", "country", "kind")
NUMERIC = ("amount", "age_days", "stage_days", "moves", "interactions", "tickets", "orders")
TAG = "tag"
_DAY = 86_400.0


@attrs.frozen
class DealFeatures:
    """One deal (or lead) as the model sees it. ``won``: True / False for a closed deal, None for an open deal
    or a lead; ``decided_at``: the closing time of a closed deal, ``as_of`` otherwise. ``opportunity_id`` is
    None for a lead scored without a deal."""

    opportunity_id: str | None
    customer_id: str
    won: bool | None
    decided_at: dt.datetime
    categorical: tuple[tuple[str, str], ...]
    numeric: tuple[tuple[str, float], ...]
    tags: tuple[str, ...] = ()

    @property
    def record_id(self) -> str:
        return self.opportunity_id if self.opportunity_id is not None else self.customer_id


@attrs.frozen
class LeadReason:
    """A feature value and how much it moved the log-odds of winning (positive: towards winning)."""

    feature: str
    value: str
    contribution: float


@attrs.frozen
class LeadScore:
    """The win probability of an open deal (or of a lead, ``opportunity_id`` None) and the features that moved
    it most (``reasons``, largest first; ``all_reasons`` has every one)."""

    opportunity_id: str | None
    customer_id: str
    probability: float
    log_odds: float
    reasons: tuple[LeadReason, ...]
    all_reasons: tuple[LeadReason, ...] = attrs.field(repr=False, eq=False)


@attrs.frozen
class LeadScoreRow:
    """One line of ``pycrm report leads``: a deal's rank, name, stage, win probability and top reasons."""

    rank: int
    deal: str
    stage: str
    win_probability: Any
    why: str


@attrs.frozen
class LeadEvaluation:
    """A time-based holdout: fitted on the ``train`` oldest closed deals, tested on the ``test`` newest (closed
    at or after ``split_at``). ``auc``: the chance a won test deal scores above a lost one; ``brier``: the mean
    squared error of the probabilities; ``base_rate``: the test deals' win rate; ``brier_base``: the Brier
    score of always answering the training win rate (a useful model scores lower)."""

    train: int
    test: int
    split_at: dt.datetime
    auc: float
    brier: float
    base_rate: float
    brier_base: float

    def _repr_html_(self) -> str:
        return attrs_table(self)


def _fail(field: str, code: str, message: str) -> ValidationError:
    return ValidationError([FieldError(field, code, message)])


def _check_float(value: Any, field: str, low: float, high: float, *, low_open: bool = True) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value > high or value < low or (low_open and value == low):
        bound = f"({low}, {high}]" if low_open else f"[{low}, {high}]"
        raise _fail(field, "out_of_range", f"must be a number in {bound}, got {quote(value)}")
    return float(value)


def _check_int(value: Any, field: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _fail(field, "out_of_range", f"must be a whole number from {low} to {high}, got {quote(value)}")
    return value


# ---------------------------------------------------------------------------------------------------------
# Features from entities
# ---------------------------------------------------------------------------------------------------------


def _ts(value: Any, field: str) -> float:
    """The POSIX time of an aware datetime (anything else: the ValidationError of ``aware``)."""
    if type(value) is dt.datetime and value.tzinfo is dt.UTC:  # what the store gives: the fast path
        return value.timestamp()
    return aware(value, field).timestamp()


def _times(rows: Iterable[Any], field: str, name: str) -> dict[str, list[float]]:
    """customer id -> sorted POSIX times of ``field`` of ``rows``."""
    out: dict[str, list[float]] = defaultdict(list)
    for i, row in enumerate(check_iterable(name, rows)):
        at = getattr(row, field, None)
        if at is None:
            continue
        if not isinstance(getattr(row, "customer_id", None), str):
            raise _fail(f"{name}[{i}]", "type", f"expected a record with a customer_id, got {type(row).__name__}")
        out[row.customer_id].append(_ts(at, f"{name}[{i}].{field}"))
    for v in out.values():
        v.sort()
    return out


def _last_open(opp: Opportunity, closed: bool) -> tuple[str | None, dt.datetime | None, int]:
    """(the last open stage, when the deal entered it, stage moves before the decision)."""
    history = opp.stage_history
    if not closed:
        entered = opp.created_at
        for change in reversed(history):
            if change.to_stage == opp.stage:
                entered = change.at
                break
        return opp.stage, entered, len(history)
    if not history:
        return None, None, 0
    stage = history[-1].from_stage
    entered = opp.created_at
    for change in reversed(history[:-1]):
        if change.to_stage == stage:
            entered = change.at
            break
    return stage, entered, len(history) - 1


def _customer_features(customer: Customer | None) -> tuple[list[tuple[str, str]], tuple[str, ...]]:
    if customer is None:
        return [], ()
    cats = [(name, value) for name, value in (("category", customer.category), ("country", customer.country)) if value]
    cats.append(("kind", customer.kind))
    return cats, tuple(sorted(customer.tags))


_NONE: list[float] = []


def _engagement(customer_id: str, at: float, sources: Mapping[str, dict[str, list[float]]]) -> list[tuple[str, float]]:
    return [(name, float(bisect.bisect_left(times.get(customer_id, _NONE), at))) for name, times in sources.items()]


#: One deal as :func:`_assemble` reads it: (id, customer id, pipeline name, won (None: open), the last open
#: stage, the POSIX time it was entered, stage moves before the decision, currency, amount, owner id, the
#: POSIX creation time, the decision time and its POSIX time). Made from entities by :func:`_entity_records`
#: and from a store's columns by :func:`deal_records`.
_Record = tuple[
    str, str, str, "bool | None", "str | None", "float | None", int, str, float, "str | None", "float | None", dt.datetime, float
]


def _entity_records(opportunities: Iterable[Opportunity], now: dt.datetime, stamp: float) -> Iterable[_Record]:
    for i, opp in enumerate(check_iterable("opportunities", opportunities, "a list of Opportunity objects")):
        if not isinstance(opp, Opportunity):
            raise _fail(f"opportunities[{i}]", "type", f"expected an Opportunity, got {type(opp).__name__}")
        kind = opp.pipeline.stage(opp.stage).kind
        closed = kind is not StageKind.OPEN
        created = None if opp.created_at is None else _ts(opp.created_at, f"opportunities[{i}].created_at")
        if closed:
            if opp.closed_at is None:  # a closed deal without a closing time cannot be placed in time
                continue
            decided = opp.closed_at
            at = _ts(decided, f"opportunities[{i}].closed_at")
        else:
            if created is not None and created > stamp:
                continue
            decided, at = now, stamp
        stage, entered, moves = _last_open(opp, closed)
        entered_at = None if entered is None else _ts(entered, f"opportunities[{i}].stage_history")
        won = kind is StageKind.WON if closed else None
        yield (
            str(opp.id),
            str(opp.customer_id),
            opp.pipeline.name,
            won,
            stage,
            entered_at,
            moves,
            opp.amount.currency,
            float(opp.amount.amount),
            opp.owner_id,
            created,
            decided,
            at,
        )


def deal_records(rows: Iterable[Sequence[Any]], now: dt.datetime) -> Iterable[_Record]:
    """:data:`_Record` of stored deals, from their columns ``(id, customer_id, pipeline, stage, currency, amount
    (a float), owner_id, created_at, closed_at, stage_history)``: the times aware datetimes (or None) and
    the history its stored JSON text (or the list a driver parsed). Only the one ``at`` of the history a
    feature needs is parsed."""
    stamp = now.timestamp()
    kinds: dict[tuple[str, str], StageKind] = {}
    loads = json.loads
    iso = dt.datetime.fromisoformat
    for oid, cid, pipeline, stage, currency, amount, owner, created_at, closed_at, history in rows:
        kind = kinds.get((pipeline, stage))
        if kind is None:
            kind = kinds[pipeline, stage] = get_pipeline(pipeline).stage(stage).kind
        closed = kind is not StageKind.OPEN
        created = None if created_at is None else _ts(created_at, f"opportunities[{oid}].created_at")
        if closed:
            if closed_at is None:
                continue
            decided, at = closed_at, _ts(closed_at, f"opportunities[{oid}].closed_at")
        else:
            if created is not None and created > stamp:
                continue
            decided, at = now, stamp
        moves = loads(history) if isinstance(history, (str, bytes, bytearray)) else history
        n = len(moves)
        last: str | None = stage
        when: Any = created_at
        if closed:
            if not n:
                last, when = None, None
            else:
                last = moves[-1]["from"]
                n -= 1
        for j in range(n - 1, -1, -1):
            if moves[j]["to"] == last:
                when = moves[j]["at"]
                break
        if isinstance(when, str):
            when = iso(when)
        entered = None if when is None else _ts(when, f"opportunities[{oid}].stage_history")
        won = kind is StageKind.WON if closed else None
        yield (oid, cid, pipeline, won, last, entered, n, currency, amount, owner, created, decided, at)


def deal_features(
    opportunities: Iterable[Opportunity],
    *,
    customers: Iterable[Customer] = (),
    interactions: Iterable[Any] | None = (),
    tickets: Iterable[Any] | None = (),
    orders: Iterable[Any] | None = (),
    as_of: dt.datetime | None = None,
    leads: bool = True,
) -> list[DealFeatures]:
    """The features of every deal (closed and open) and, with ``leads``, of every customer whose status is in
    :data:`LEAD_STATUSES` without an open deal. Engagement counts come from ``interactions``
    (``occurred_at``), ``tickets`` (``created_at``) and ``orders`` (``occurred_at``) of the same customer
    dated before the decision; None for a source leaves its feature out (an actor that may not read it).
    Open deals and leads are seen at ``as_of`` (default: now); deals created after it are left out."""
    now = opt_aware(as_of, "as_of") or utcnow()
    check_flag("leads", leads)
    by_id: dict[str, Customer] = {}
    for i, c in enumerate(check_iterable("customers", customers, "a list of Customer objects")):
        if not isinstance(c, Customer):
            raise _fail(f"customers[{i}]", "type", f"expected a Customer, got {type(c).__name__}")
        by_id[str(c.id)] = c
    sources = _sources(interactions, tickets, orders)
    return _assemble(_entity_records(opportunities, now, now.timestamp()), by_id, sources, now, leads)


def _sources(
    interactions: Iterable[Any] | None, tickets: Iterable[Any] | None, orders: Iterable[Any] | None
) -> dict[str, dict[str, list[float]]]:
    sources: dict[str, dict[str, list[float]]] = {}
    for name, rows, field in (
        ("interactions", interactions, "occurred_at"),
        ("tickets", tickets, "created_at"),
        ("orders", orders, "occurred_at"),
    ):
        if rows is not None:
            sources[name] = _times(rows, field, name)
    return sources


def _assemble(
    records: Iterable[_Record],
    by_id: Mapping[str, Any],
    sources: Mapping[str, dict[str, list[float]]],
    now: dt.datetime,
    leads: bool,
) -> list[DealFeatures]:
    """The :class:`DealFeatures` of ``records`` and, with ``leads``, of the leads among ``by_id`` (customers, or
    objects with their ``kind``, ``category``, ``country``, ``tags`` and ``status``) without an open deal."""
    stamp = now.timestamp()
    out: list[DealFeatures] = []
    open_customers: set[str] = set()
    described: dict[str, tuple[list[tuple[str, str]], tuple[str, ...]]] = {}
    bisect_left = bisect.bisect_left
    srcs = list(sources.items())
    for oid, cid, pipeline, won, stage, entered, moves, currency, amount, owner, created, decided, at in records:
        if won is None:
            open_customers.add(cid)
        seen = described.get(cid)
        if seen is None:
            seen = described[cid] = _customer_features(by_id.get(cid))
        cats = [("pipeline", pipeline), ("currency", currency), *seen[0]]
        if stage is not None:
            cats.insert(0, ("stage", stage))
        if owner:
            cats.append(("owner", owner))
        nums: list[tuple[str, float]] = [("amount", amount), ("moves", float(moves))]
        if created is not None:
            nums.append(("age_days", max(0.0, (at - created) / _DAY)))
        if entered is not None:
            nums.append(("stage_days", max(0.0, (at - entered) / _DAY)))
        for name, times in srcs:
            nums.append((name, float(bisect_left(times.get(cid, _NONE), at))))
        out.append(DealFeatures(oid, cid, won, decided, tuple(cats), tuple(nums), seen[1]))
    if leads:
        for cid, customer in by_id.items():
            if customer.status in LEAD_STATUSES and cid not in open_customers:
                cats, tags = _customer_features(customer)
                nums = _engagement(cid, stamp, sources)
                out.append(DealFeatures(None, cid, None, now, tuple(cats), tuple(nums), tags))
    return out


# ---------------------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------------------


def _sigmoid(x: Any) -> Any:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _check_history(closed: Sequence[DealFeatures], what: str = "closed deals") -> None:
    won = sum(1 for d in closed if d.won)
    lost = len(closed) - won
    if len(closed) < MIN_CLOSED or won < MIN_PER_CLASS or lost < MIN_PER_CLASS:
        raise _fail(
            "history",
            "too_little",
            f"lead scoring needs at least {MIN_CLOSED} {what} with at least {MIN_PER_CLASS} won and "
            f"{MIN_PER_CLASS} lost; there are {len(closed)} ({won} won, {lost} lost)",
        )


def _edges(values: Any, bins: int) -> list[float]:
    """Inner cut points at the quantiles of ``values`` (distinct, so equal values share a bin)."""
    if len(values) == 0:
        return []
    qs = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1], method="lower") if bins > 1 else []
    return sorted({float(q) for q in qs})


def _num(x: float) -> str:
    """A bin edge as a reason shows it: ``12,500``, ``97.7``, ``0.25``."""
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def _bin_label(edges: Sequence[float], k: int) -> str:
    """The text of bin ``k`` (bins are told apart by number: two edges may look alike once rounded)."""
    num = _num

    if not edges:
        return "any"
    if k == 0:
        return f"<= {num(edges[0])}"
    if k == len(edges):
        return f"> {num(edges[-1])}"
    return f"{num(edges[k - 1])} < x <= {num(edges[k])}"


@attrs.frozen
class _Table:
    """Log-likelihood ratios of one feature's values (``unseen``: a value never seen in training)."""

    ratios: Mapping[str, float]
    unseen: float


def _ratio_tables(codes: Any, y: Any, sizes: int, alpha: float, mask: Any | None = None) -> tuple[Any, float]:
    """log P(v|won)/P(v|lost) for each code 0..sizes-1 (and for an unseen value), over the rows of ``mask``."""
    if mask is not None:
        codes, y = codes[mask], y[mask]
    present = codes >= 0
    won = np.bincount(codes[present & y], minlength=sizes).astype(float)
    lost = np.bincount(codes[present & ~y], minlength=sizes).astype(float)
    k = sizes + 1
    nw, nl = won.sum() + alpha * k, lost.sum() + alpha * k
    table = np.log((won + alpha) / nw) - np.log((lost + alpha) / nl)
    return table, math.log(alpha / nw) - math.log(alpha / nl)


def _tag_tables(rows: Any, codes: Any, y: Any, n_won: float, n_lost: float, sizes: int, alpha: float) -> Any:
    """log P(tag|won)/P(tag|lost) of each tag as a present-or-absent feature."""
    yw = y[rows]
    won = np.bincount(codes[yw], minlength=sizes).astype(float)
    lost = np.bincount(codes[~yw], minlength=sizes).astype(float)
    return np.log((won + alpha) / (n_won + 2 * alpha)) - np.log((lost + alpha) / (n_lost + 2 * alpha))


def _platt(s: Any, y: Any) -> tuple[float, float]:
    """(a, b) minimizing the log loss of sigmoid(a*s + b), Newton's method with a tiny ridge on ``a``-1 and
    ``b`` so that separable scores stay finite; Platt's smoothed targets avoid probabilities of 0 or 1."""
    n1 = float(y.sum())
    n0 = float(len(y) - n1)
    t = np.where(y, (n1 + 1) / (n1 + 2), 1 / (n0 + 2))
    a, b = 1.0, 0.0
    ridge = 1e-6 * len(y)
    for _ in range(100):
        p = _sigmoid(a * s + b)
        r = p - t
        w = np.maximum(p * (1 - p), 1e-12)
        g = np.array([np.dot(r, s) + ridge * (a - 1), r.sum() + ridge * b])
        h = np.array([[np.dot(w * s, s) + ridge, np.dot(w, s)], [np.dot(w, s), w.sum() + ridge]])
        step = np.linalg.solve(h, g)
        a, b = a - float(step[0]), b - float(step[1])
        if abs(step[0]) + abs(step[1]) < 1e-9 * (1 + abs(a) + abs(b)):
            break
    return a, b


@attrs.frozen
class LeadScoringModel:
    """A fitted model: ``score(deal)`` gives a :class:`LeadScore`. ``intercept`` is the calibrated prior
    log-odds; ``slope`` the calibration's ``a``; ``edges`` the bins of each numeric feature."""

    intercept: float
    slope: float
    tables: Mapping[str, _Table] = attrs.field(repr=False)
    tag_ratios: Mapping[str, float] = attrs.field(repr=False)
    edges: Mapping[str, tuple[float, ...]] = attrs.field(repr=False)
    trained: int = 0
    base_rate: float = 0.0

    def _repr_html_(self) -> str:
        return attrs_table(self)

    def _reasons(self, deal: DealFeatures) -> list[LeadReason]:
        a = self.slope
        out = []
        for name, value in deal.categorical:
            table = self.tables.get(name)
            if table is not None:
                out.append(LeadReason(name, value, a * table.ratios.get(value, table.unseen)))
        for name, x in deal.numeric:
            table, edges = self.tables.get(name), self.edges.get(name)
            if table is not None and edges is not None:
                k = bisect.bisect_left(edges, x)
                out.append(LeadReason(name, _bin_label(edges, k), a * table.ratios.get(str(k), table.unseen)))
        for tag in deal.tags:
            r = self.tag_ratios.get(tag)
            if r is not None:
                out.append(LeadReason(TAG, tag, a * r))
        return out

    def score(self, deal: DealFeatures, *, top: int = 3) -> LeadScore:
        """The win probability of ``deal`` and its ``top`` reasons (largest absolute contribution first)."""
        reasons = self._reasons(deal)
        z = self.intercept + math.fsum(r.contribution for r in reasons)
        p = 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0
        ranked = tuple(sorted(reasons, key=lambda r: -abs(r.contribution)))
        return LeadScore(deal.opportunity_id, deal.customer_id, p, z, ranked[:top], ranked)

    def probabilities(self, deals: Sequence[DealFeatures]) -> Any:
        """The win probabilities of ``deals`` (a NumPy array)."""
        return np.array([self.score(d, top=0).probability for d in deals], dtype=float)


_Encoded = tuple[dict[str, Any], dict[str, list[str]], dict[str, tuple[float, ...]]]


def _encode(deals: Sequence[DealFeatures], bins: int) -> _Encoded:
    """Per feature, an int array of value codes (-1: missing), the value labels, and the numeric bin edges."""
    n = len(deals)
    index: dict[str, dict[str, int]] = {f: {} for f in CATEGORICAL}
    lists: dict[str, list[int]] = {f: [-1] * n for f in CATEGORICAL}
    nan = math.nan
    floats: dict[str, list[float]] = {f: [nan] * n for f in NUMERIC}
    for i, d in enumerate(deals):
        for name, value in d.categorical:
            seen = index[name]
            code = seen.get(value)
            if code is None:
                code = seen[value] = len(seen)
            lists[name][i] = code
        for name, x in d.numeric:
            floats[name][i] = x
    codes = {f: np.array(v, dtype=np.int64) for f, v in lists.items()}
    raw = {f: np.array(v, dtype=float) for f, v in floats.items()}
    labels = {f: list(index[f]) for f in CATEGORICAL}
    edges: dict[str, tuple[float, ...]] = {}
    for f in NUMERIC:
        col = raw[f]
        have = ~np.isnan(col)
        if not have.any():
            continue
        e = _edges(col[have], bins)
        edges[f] = tuple(e)
        c = np.full(n, -1, dtype=np.int64)
        c[have] = np.searchsorted(np.array(e, dtype=float), col[have], side="left")
        codes[f] = c
        labels[f] = [str(k) for k in range(len(e) + 1)]
    return codes, labels, edges


def fit_lead_scoring(deals: Iterable[DealFeatures], *, bins: int = 5, smoothing: float = 1.0, folds: int = 5) -> LeadScoringModel:
    """Fit on the closed deals among ``deals`` (open ones are ignored). ValidationError when there are too few
    (:data:`MIN_CLOSED`, :data:`MIN_PER_CLASS`), or for a bad ``bins`` (1..20), ``smoothing`` (> 0, <= 100) or
    ``folds`` (2..20)."""
    bins = _check_int(bins, "bins", 1, 20)
    alpha = _check_float(smoothing, "smoothing", 0.0, 100.0)
    folds = _check_int(folds, "folds", 2, 20)
    # in time order (then by id): the folds, and so the model, do not depend on the order deals come in
    closed = sorted((d for d in _check_deals(deals) if d.won is not None), key=lambda d: (d.decided_at, d.record_id))
    _check_history(closed)
    y = np.fromiter((bool(d.won) for d in closed), dtype=bool, count=len(closed))
    codes, labels, edges = _encode(closed, bins)
    n = len(closed)
    fold = np.arange(n) % folds
    tag_index: dict[str, int] = {}
    tag_rows: list[int] = []
    tag_codes: list[int] = []
    for i, d in enumerate(closed):
        for tag in d.tags:
            code = tag_index.setdefault(tag, len(tag_index))
            tag_rows.append(i)
            tag_codes.append(code)
    trows = np.array(tag_rows, dtype=np.int64)
    tcodes = np.array(tag_codes, dtype=np.int64)
    # out-of-fold raw scores, for the calibration
    oof = np.zeros(n)
    for k in range(folds):
        train = fold != k
        test = ~train
        nw = float(y[train].sum())
        nl = float(train.sum() - nw)
        oof[test] += math.log((nw + alpha) / (nl + alpha))
        for f, c in codes.items():
            if not labels[f]:
                continue
            table, unseen = _ratio_tables(c, y, len(labels[f]), alpha, train)
            # a value first seen in this fold's rows is an unseen value to the others' counts
            seen_elsewhere = np.bincount(c[train & (c >= 0)], minlength=len(labels[f])) > 0
            t = np.where(seen_elsewhere, table, unseen)
            ct = c[test]
            oof[test] += np.where(ct >= 0, t[np.maximum(ct, 0)], 0.0)
        if len(tag_index):
            keep = train[trows]
            tt = _tag_tables(trows[keep], tcodes[keep], y, nw, nl, len(tag_index), alpha)
            on_test = ~keep
            np.add.at(oof, trows[on_test], tt[tcodes[on_test]])
    a, b = _platt(oof, y)
    nw, nl = float(y.sum()), float(n - y.sum())
    prior = math.log((nw + alpha) / (nl + alpha))
    tables: dict[str, _Table] = {}
    for f, c in codes.items():
        if not labels[f]:
            continue
        table, unseen = _ratio_tables(c, y, len(labels[f]), alpha)
        tables[f] = _Table(dict(zip(labels[f], (float(v) for v in table))), unseen)
    tag_ratios: dict[str, float] = {}
    if tag_index:
        tt = _tag_tables(trows, tcodes, y, nw, nl, len(tag_index), alpha)
        tag_ratios = {tag: float(tt[code]) for tag, code in tag_index.items()}
    return LeadScoringModel(a * prior + b, a, tables, tag_ratios, edges, n, nw / n)


# ---------------------------------------------------------------------------------------------------------
# Evaluation measures
# ---------------------------------------------------------------------------------------------------------


def _outcomes(y: Any, p: Any) -> tuple[Any, Any]:
    """``y`` (won or lost, each a bool) and ``p`` (probabilities, each a real number) as numpy arrays of the
    same length; a ValidationError naming the argument otherwise."""
    ys = list(check_iterable("y", y, "a list of booleans"))
    ps = list(check_iterable("p", p, "a list of probabilities"))
    for i, v in enumerate(ys):
        if not isinstance(v, bool | np.bool_):
            raise _fail(f"y[{i}]", "type", f"expected a boolean, got {type(v).__name__}")
    for i, v in enumerate(ps):
        if isinstance(v, bool) or not isinstance(v, int | float | np.floating | np.integer) or not math.isfinite(v):
            raise _fail(f"p[{i}]", "type", f"expected a finite number, got {quote(v)}")
    if len(ys) != len(ps):
        raise _fail("p", "length", f"{len(ps)} probabilities for {len(ys)} outcomes")
    if not ys:
        raise _fail("y", "empty", "no outcomes")
    return np.asarray(ys, dtype=bool), np.asarray(ps, dtype=float)


def auc_score(y: Sequence[bool] | Any, p: Sequence[float] | Any) -> float:
    """The area under the ROC curve: the chance a positive scores above a negative (ties count half).

    >>> auc_score([True, False, True, False], [0.9, 0.1, 0.4, 0.4])
    0.875
    """
    yy, pp = _outcomes(y, p)
    n1 = int(yy.sum())
    n0 = len(yy) - n1
    if n1 == 0 or n0 == 0:
        raise _fail("y", "one_class", "AUC needs both won and lost deals")
    order = np.argsort(pp, kind="mergesort")
    ranks = np.empty(len(pp))
    sorted_p = pp[order]
    # average ranks of ties
    _, start, counts = np.unique(sorted_p, return_index=True, return_counts=True)
    avg = start + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[yy].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def brier_score(y: Sequence[bool] | Any, p: Sequence[float] | Any) -> float:
    """The mean squared difference between the probabilities and what happened (1 won, 0 lost).

    >>> brier_score([True, False], [0.8, 0.4])
    0.1
    """
    yy, pp = _outcomes(y, p)
    return round(float(np.mean((pp - yy) ** 2)), 12)


# ---------------------------------------------------------------------------------------------------------
# A model with the deals it was fitted on and scores
# ---------------------------------------------------------------------------------------------------------


def _check_deals(deals: Iterable[DealFeatures]) -> tuple[DealFeatures, ...]:
    """``deals`` as a tuple, each a :class:`DealFeatures` (a ValidationError naming the first that is not)."""
    out = tuple(check_iterable("deals", deals, "a list of DealFeatures"))
    for i, d in enumerate(out):
        if not isinstance(d, DealFeatures):
            raise _fail(f"deals[{i}]", "type", f"expected DealFeatures, got {type(d).__name__}")
    return out


class LeadScoring:
    """A fitted :class:`LeadScoringModel` with the deals it knows: ``scores()`` of the open deals and leads,
    ``explain(id)`` of one of them (an opportunity id, or a lead's customer id), ``evaluate()`` on a
    time-based holdout of the closed ones."""

    def __init__(self, deals: Sequence[DealFeatures], *, bins: int = 5, smoothing: float = 1.0, folds: int = 5):
        self.deals = _check_deals(deals)
        self._params = {"bins": bins, "smoothing": smoothing, "folds": folds}
        self.model = fit_lead_scoring(self.deals, bins=bins, smoothing=smoothing, folds=folds)
        self._open = {d.record_id: d for d in self.deals if d.won is None}

    @property
    def closed(self) -> int:
        return self.model.trained

    def _repr_html_(self) -> str:
        """The model's figures and the open deals and leads, most likely first (the first rows of them)."""
        head = key_value_table(
            "Lead scoring",
            [
                ("closed deals fitted", self.closed),
                ("open deals and leads", len(self._open)),
                ("base rate", self.model.base_rate),
            ],
        )
        rows = (
            (s.opportunity_id, s.customer_id, round(s.probability, 4), "; ".join(f"{r.feature}={r.value}" for r in s.reasons))
            for s in self.scores(n=MAX_HTML_ROWS, top=2)
        )
        table = html_table("Scores", ("opportunity_id", "customer_id", "probability", "reasons"), rows, total=len(self._open))
        return head + "\n" + table

    def scores(self, *, n: int | None = None, top: int = 3) -> Report[LeadScore]:
        """The scores of the open deals and leads, most likely first (``n``: only the first n); a :class:`Report`
        (a list with ``to_dataframe()``, whose ``reasons`` column holds the :class:`LeadReason` tuples)."""
        if n is not None:
            _check_int(n, "n", 0, 10**9)
        _check_int(top, "top", 0, 100)
        out = sorted(
            (self.model.score(d, top=top) for d in self._open.values()),
            key=lambda s: (-s.probability, s.opportunity_id is None, s.opportunity_id or s.customer_id),
        )
        return Report._trusted(
            LeadScore, out if n is None else out[:n], title="Lead scores", x="opportunity_id", y=("probability",)
        )

    def explain(self, id: str, *, top: int = 3) -> LeadScore:
        """The score of one open deal (its id) or lead (its customer's id). NotFound-like ValidationError for
        an id the model does not know (not open, not a lead, or not readable by the actor)."""
        _check_int(top, "top", 0, 100)
        deal = self._open.get(id) if isinstance(id, str) else None
        if deal is None:
            raise _fail("id", "unknown", f"{quote(id)} is not an open deal or a lead this model scored")
        return self.model.score(deal, top=top)

    def evaluate(self, *, holdout: float = 0.2) -> LeadEvaluation:
        """Fit on the older closed deals, test on the newest ``holdout`` fraction (by closing time, 0 < holdout
        < 1). The training part needs :data:`MIN_CLOSED` deals as a fit does, the test part a won and a lost."""
        frac = _check_float(holdout, "holdout", 0.0, 1.0)
        if frac >= 1.0:
            raise _fail("holdout", "out_of_range", "must be below 1 (some deals must be left to train on)")
        closed = sorted((d for d in self.deals if d.won is not None), key=lambda d: (d.decided_at, d.record_id))
        n_test = max(1, math.ceil(len(closed) * frac))
        train, test = closed[: len(closed) - n_test], closed[len(closed) - n_test :]
        _check_history(train, "older closed deals to train on")
        y = np.array([bool(d.won) for d in test])
        if y.all() or not y.any():
            raise _fail(
                "holdout",
                "one_class",
                f"the newest {len(test)} closed deals are all {'won' if y.all() else 'lost'}; "
                "the test needs at least one won and one lost deal (a larger holdout)",
            )
        model = fit_lead_scoring(train, **self._params)  # type: ignore[arg-type]
        p = model.probabilities(test)
        base = model.base_rate
        return LeadEvaluation(
            len(train),
            len(test),
            test[0].decided_at,
            round(auc_score(y, p), 6),
            round(brier_score(y, p), 6),
            round(float(y.mean()), 6),
            round(brier_score(y, np.full(len(y), base)), 6),
        )


def lead_scoring(
    opportunities: Iterable[Opportunity],
    *,
    customers: Iterable[Customer] = (),
    interactions: Iterable[Any] | None = (),
    tickets: Iterable[Any] | None = (),
    orders: Iterable[Any] | None = (),
    as_of: dt.datetime | None = None,
    leads: bool = True,
    bins: int = 5,
    smoothing: float = 1.0,
    folds: int = 5,
) -> LeadScoring:
    """Fit a lead-scoring model on the closed deals among ``opportunities`` and score the open ones and the
    leads (:func:`deal_features` says what is read)."""
    deals = deal_features(
        opportunities, customers=customers, interactions=interactions, tickets=tickets, orders=orders, as_of=as_of, leads=leads
    )
    return LeadScoring(deals, bins=bins, smoothing=smoothing, folds=folds)
