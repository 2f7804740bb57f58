"""``find_duplicates``: read, block, compare, fit, score, cluster."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Hashable, Iterable, Iterator, Mapping
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from pycrm.dedup import _blocking, _cluster, _model
from pycrm.dedup._records import Columns, check_fields, load
from pycrm.domain._checks import check_iterable
from pycrm.errors import FieldError, ValidationError

__all__ = ["DEFAULT_THRESHOLD", "Cluster", "Match", "Result", "find_duplicates", "run"]

I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]
F64 = npt.NDArray[np.float64]

_U_SAMPLE = 30_000
_U_PSEUDO = 100.0
_SEED = 20240601

#: Pairs whose match probability is at least this are linked: the Bayes decision, no tuning needed.
DEFAULT_THRESHOLD = 0.5


@attrs.frozen(eq=True, unsafe_hash=False)
class Match:
    """Two records that look like the same customer, and why.

    ``score`` is the probability (0-1) that they are the same; ``field_scores`` the evidence of each
    field in bits (``log2`` of how much likelier the field's agreement is among true matches than among
    other pairs): positive for, negative against, 0 when a value is missing. ``levels`` names each
    field's agreement level (``"exact"``, ``"typo"``, ``"different"``, ``"missing"``, ...).
    """

    a: Hashable
    b: Hashable
    score: float
    field_scores: Mapping[str, float] = attrs.field(factory=dict)
    levels: Mapping[str, str] = attrs.field(factory=dict)

    def __hash__(self) -> int:
        return hash((self.a, self.b, self.score))


@attrs.frozen
class Cluster:
    """Records that are one customer: their ``ids`` (in input order) and the scored ``pairs`` among them."""

    ids: tuple[Hashable, ...]
    pairs: tuple[Match, ...]

    def __len__(self) -> int:
        return len(self.ids)


@attrs.frozen
class Result:
    """Everything a run produced, for benchmarks and diagnostics."""

    columns: Columns
    blocking: _blocking.Blocking
    model: _model.FSModel
    threshold: float
    probabilities: F64
    groups: tuple[I64, ...]
    clusters: tuple[Cluster, ...]
    seconds: dict[str, float]


def _check_threshold(threshold: Any) -> float:
    if threshold is None:
        return DEFAULT_THRESHOLD
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
        raise ValidationError([FieldError("threshold", "range", f"must be a probability between 0 and 1, got {threshold!r}")])
    return float(threshold)


class _Scorer:
    """Level vectors and probabilities of any record pairs, given the columns (and, later, a model)."""

    def __init__(self, cols: Columns) -> None:
        self.cols = cols
        self.groups = cols.groups()
        self.n_levels = [len(s.kind.levels) for s in cols.specs]
        self.model: _model.FSModel | None = None
        self.design: _model.Design | None = None
        self._table: F64 | None = None
        self._not_name: npt.NDArray[np.bool_] | None = None

    def levels(self, a: I64, b: I64) -> I8:
        cols = self.cols
        out = np.empty((len(a), len(cols.specs)), dtype=np.int8, order="F")
        for f, (space, codes) in enumerate(zip(cols.spaces, cols.codes)):
            out[:, f] = space.compare_codes(codes[a], codes[b])
        for g in self.groups:
            self._swap(out, g, a, b)
        return out

    def _cost(self, lev: I8, f: int) -> npt.NDArray[np.float64]:
        top = self.n_levels[f] - 1
        return np.where(lev < 0, 0.5, lev / top)

    def _swap(self, out: I8, group: list[int], a: I64, b: I64) -> None:
        """Where two fields of one kind hold each other's values (surname given as first name), use that.

        Crosswise, only equality counts (an exact value in the other field); that is cheap, and a swap
        with typos on top still has the other fields to speak for it.
        """
        cols = self.cols
        for x, y in ((group[i], group[j]) for i in range(len(group)) for j in range(i + 1, len(group))):
            cx, cy = cols.codes[x], cols.codes[y]
            ax, ay, bx, by = cx[a], cy[a], cx[b], cy[b]
            lxy = np.where((ax >= 0) & (by >= 0), np.where(ax == by, 0, self.n_levels[x] - 1), -1).astype(np.int8)
            lyx = np.where((ay >= 0) & (bx >= 0), np.where(ay == bx, 0, self.n_levels[y] - 1), -1).astype(np.int8)
            hit = np.flatnonzero((lxy == 0) | (lyx == 0))
            if len(hit) == 0:
                continue
            straight = self._cost(out[hit, x], x) + self._cost(out[hit, y], y)
            crossed = self._cost(lxy[hit], x) + self._cost(lyx[hit], y)
            better = hit[crossed < straight - 1e-9]
            out[better, x] = lxy[better]
            out[better, y] = lyx[better]

    def fit(self, levels: I8, random_levels: I8) -> _model.FSModel:
        """Fit the model to candidate pairs ``levels``, u anchored on ``random_levels`` (random record pairs)."""
        design = self.design = _model.design(random_levels, self.n_levels)
        defaults = design.u_default()
        u_start = []
        enc_random = design.encode(random_levels)
        for k, n_lev in enumerate(design.n_levels):
            col = enc_random[:, k]
            seen = np.bincount(col[col >= 0].astype(np.int64), minlength=n_lev).astype(float) + _U_PSEUDO * defaults[k]
            u_start.append(seen / seen.sum())
        rows, counts, _ = _model.pattern_table(design.encode(levels))
        names = ["+".join(self.cols.fields[f] for f in g) for g in design.groups]
        bound = _model.max_prior(self.cols.n, len(levels))
        m_start = design.m_start()
        model = _model.fit(names, design.n_levels, rows, counts, u_start=u_start, m_start=m_start, prior_bound=bound)
        exact = [_model.exact_level(design, k) for k in range(len(design.groups))]
        why = _model.problem(model, exact, bound)
        if why is not None:
            model = self._fallback(model, why, m_start, u_start, rows, counts, exact, bound)
        self.model = model
        self._table = model.weight_table([len(g) == 1 for g in design.groups])
        # columns that are more than a name: a pair agreeing on nothing else is not linked on its name
        self._not_name = np.array([any(self.cols.specs[f].kind.name != "name" for f in g) for g in design.groups])
        return model

    @staticmethod
    def _fallback(
        model: _model.FSModel,
        why: str,
        m_start: list[F64],
        u_start: list[F64],
        rows: npt.NDArray[np.int16],
        counts: I64,
        exact: list[int],
        bound: float,
    ) -> _model.FSModel:
        """Safe default weights: u as seen on random pairs, m putting matches on exact agreement (no other
        level is evidence for a match), and a match rate of the candidates on which at least two fields
        agree exactly (within the bound)."""
        m_safe, u_safe = [], []
        for k, (mf, uf) in enumerate(zip(m_start, u_start)):
            # as in the fit, no level is impossible (a joint level 0, "all missing", never occurs)
            uk = np.clip(np.asarray(uf, dtype=float), 1e-4, None)
            uk = uk / uk.sum()
            # only exact agreement speaks for a match: a typo-level likeness is no evidence here
            mk = np.minimum(mf, uk)
            mk[exact[k]] = 0.0
            mk[exact[k]] = max(1.0 - float(mk.sum()), mf[exact[k]])
            m_safe.append(np.clip(mk / mk.sum(), 1e-9, None))
            u_safe.append(uk)
        total = float(counts.sum())
        strong = (rows == np.array(exact, dtype=rows.dtype)).sum(axis=1) >= 2
        prior = float(np.clip(float(counts[strong].sum()) / max(total, 1.0), 1.0 / max(total, 1.0), bound))
        return _model.FSModel(
            model.fields,
            tuple(tuple(float(x) for x in mf) for mf in m_safe),
            tuple(tuple(float(x) for x in uf) for uf in u_safe),
            min(prior, 1 - 1e-9),
            model.iterations,
            model.converged,
            fallback=why,
        )

    def _column_bits(self, levels: I8) -> tuple[F64, npt.NDArray[np.int16]]:
        assert self._table is not None and self.design is not None
        enc = self.design.encode(levels)
        out = np.empty(enc.shape, dtype=np.float64)
        for k in range(enc.shape[1]):
            out[:, k] = self._table[k][enc[:, k]]  # level -1 picks the last column, which is 0
        return out, enc

    def bits(self, levels: I8) -> F64:
        """Evidence per field (pairs x fields), in bits; a group of dependent fields shares its weight equally."""
        assert self.design is not None
        col_bits, _ = self._column_bits(levels)
        out = np.zeros(levels.shape, dtype=np.float64)
        for k, g in enumerate(self.design.groups):
            if len(g) == 1:
                out[:, g[0]] = col_bits[:, k]
                continue
            present = np.stack([levels[:, f] >= 0 for f in g], axis=1)
            share = col_bits[:, k] / np.maximum(present.sum(axis=1), 1)
            for i, f in enumerate(g):
                out[:, f] = np.where(present[:, i], share, 0.0)
        return out

    def probability(self, levels: I8) -> F64:
        assert self.model is not None
        col_bits, _ = self._column_bits(levels)
        logit2 = self.model.prior_weight + col_bits.sum(axis=1)
        if self._not_name is not None and len(self._not_name):
            # a name alone (common names are shared by strangers) never links a pair whose other
            # fields are there and disagree; with nothing else to compare, the name speaks
            other = col_bits[:, self._not_name]
            only_name = ~(other > 0).any(axis=1) & (other < 0).any(axis=1)
            logit2 = np.where(only_name, np.minimum(logit2, -1.0), logit2)
        result: F64 = 1.0 / (1.0 + np.exp2(-np.clip(logit2, -1000, 1000)))
        return result

    def score_pairs(self, a: I64, b: I64) -> F64:
        return self.probability(self.levels(a, b))


def _random_pairs(n: int) -> tuple[I64, I64]:
    """Random pairs of records (all pairs when there are few), nearly all of them different customers."""
    if n < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if n * (n - 1) // 2 <= _U_SAMPLE:
        ia, ib = np.triu_indices(n, 1)
        return ia.astype(np.int64), ib.astype(np.int64)
    rng = np.random.default_rng(_SEED)
    a = rng.integers(0, n, _U_SAMPLE, dtype=np.int64)
    b = rng.integers(0, n, _U_SAMPLE, dtype=np.int64)
    ok = a != b
    return a[ok], b[ok]


def run(
    records: Iterable[Any],
    *,
    fields: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    threshold: float | None = None,
) -> Result:
    """The whole pipeline, keeping every intermediate result (``find_duplicates`` returns ``.clusters``)."""
    thr = _check_threshold(threshold)
    check_fields(fields)
    check_iterable("records", records, "an iterable of records")
    with _bulk():
        return _run(records, fields, thr)


@contextlib.contextmanager
def _bulk() -> Iterator[None]:
    """Pause the cyclic garbage collector while millions of acyclic objects are built (restored after).

    The run creates no reference cycles; without the pause, collections triggered by the sheer number of
    new objects cost more than the work itself on large inputs.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _run(records: Iterable[Any], fields: Mapping[str, str] | Iterable[tuple[str, str]] | None, thr: float) -> Result:
    clock = _Clock()
    cols = load(records, fields)
    n = cols.n
    scorer = _Scorer(cols)
    clock("read")
    blocking = _blocking.candidate_pairs(
        n,
        cols.fields,
        [cols.tokens(f) for f in range(len(cols.specs))],
        [cols.first_elements(f) for f in range(len(cols.specs))],
    )
    a, b = blocking.a, blocking.b
    clock("block")
    levels = scorer.levels(a, b)
    clock("compare")
    random_levels = scorer.levels(*_random_pairs(n))
    clock("sample")
    model = scorer.fit(levels, random_levels)
    prob = scorer.probability(levels)
    clock("fit")
    groups = _cluster.group(n, a, b, prob, thr, scorer.score_pairs)
    groups.sort(key=lambda g: int(g[0]))
    clock("cluster")
    clusters = _clusters(cols, scorer, groups)
    clock("explain")
    return Result(cols, blocking, model, thr, prob, tuple(groups), tuple(clusters), dict(clock.laps))


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self._t
        self._t = now


class Evidence(dict[str, Any]):
    """A read-only dict: the per-field evidence of a match, shared by the matches with the same levels."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("match evidence is read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _refuse  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self.items()))


def _clusters(cols: Columns, scorer: _Scorer, groups: list[I64]) -> list[Cluster]:
    if not groups:
        return []
    a, b, offsets = _cluster.all_pairs(groups)
    lev = scorer.levels(a, b)
    # pairs with the same levels have the same evidence: work it out once per pattern
    rows, _, inverse = _model.pattern_table(lev)
    rows8 = rows.astype(np.int8)
    names = cols.fields
    labels = [(*s.kind.levels, "missing") for s in cols.specs]
    bits_rows = np.round(scorer.bits(rows8), 3).tolist()
    prob_rows = scorer.probability(rows8).tolist()
    scores = [Evidence(zip(names, r)) for r in bits_rows]
    level_names = [Evidence((nm, labels[f][lv]) for f, (nm, lv) in enumerate(zip(names, r))) for r in rows8.tolist()]
    ids = cols.ids
    ida = [ids[i] for i in a.tolist()]
    idb = [ids[i] for i in b.tolist()]
    pat = inverse.tolist()
    out = []
    for k, g in enumerate(groups):
        lo, hi = offsets[k], offsets[k + 1]
        matches = [Match(ida[i], idb[i], prob_rows[pat[i]], scores[pat[i]], level_names[pat[i]]) for i in range(lo, hi)]
        if len(matches) > 1:
            matches.sort(key=_by_score)
        out.append(Cluster(tuple([ids[i] for i in g.tolist()]), tuple(matches)))
    return out


def _by_score(m: Match) -> float:
    return -m.score


def find_duplicates(
    records: Iterable[Any],
    *,
    fields: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    threshold: float | None = None,
) -> list[Cluster]:
    """Groups of records that are the same customer, found with no labelled data and no tuning.

    ``records`` are customers, contacts or mappings (any iterable, read once). ``fields`` maps field
    names to comparator kinds (``name text exact email phone date postcode address id``); without it,
    customers and contacts use their name, e-mail, phone and address fields and mappings the columns
    recognised by name. ``threshold`` is the match probability above which two records are linked
    (default 0.5). Records without an ``id`` are identified by their position.
    """
    return list(run(records, fields=fields, threshold=threshold).clusters)
