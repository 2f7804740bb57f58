"""The Fellegi–Sunter model, fitted by expectation–maximization on the candidate pairs (no labels).

A pair is a vector of agreement levels, one per field (-1 where a value is missing). Among matches,
field ``f`` shows level ``l`` with probability ``m[f][l]``; among non-matches with ``u[f][l]``; fields are
taken as independent given the match status, and a fraction ``prior`` of the candidates are matches.
EM alternates between the posterior match probability of every pair and the m, u and prior that
best explain those posteriors, until nothing moves. It runs over the distinct level vectors with their
counts, so a million candidates cost no more than a few thousand patterns.

The evidence of one field is its weight ``log2(m/u)`` (bits): positive when the level is more common
among matches, negative when it is more common among non-matches, 0 when a value is missing.

Weak Dirichlet priors (a few pseudo-pairs) keep the estimates sensible on tiny inputs: ``m`` leans to
exact agreement, ``u`` to the levels seen on random pairs of records.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

__all__ = ["Design", "FSModel", "design", "fit", "max_prior", "pattern_table", "problem"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]
I16 = npt.NDArray[np.int16]

PSEUDO_PAIRS = 5.0
MAX_GROUP = 4
_EPS = 1e-9
#: A record has at most this many duplicates on average: the match rate among ``pairs`` candidates over
#: ``n`` records is at most ``MAX_PAIRS_PER_RECORD * n / pairs``.
MAX_PAIRS_PER_RECORD = 3.0
#: A model column "speaks for" matches when its exact agreement is this much likelier among matches ...
SUPPORT_RATIO = 4.0
#: ... and at least this common among them; a fit with fewer than two such columns is degenerate.
SUPPORT_MIN_M = 0.2


@attrs.frozen
class FSModel:
    """Fitted m and u per field and level, the prior match rate among candidates, and how EM went."""

    fields: tuple[str, ...]
    m: tuple[tuple[float, ...], ...]
    u: tuple[tuple[float, ...], ...]
    prior: float
    iterations: int
    converged: bool
    #: Why the fitted weights were replaced by safe defaults (``None`` when the fit was used).
    fallback: str | None = None

    @property
    def weights(self) -> tuple[tuple[float, ...], ...]:
        """``log2(m/u)`` per field and level: the bits of evidence that level carries."""
        return tuple(tuple(math.log2(mi / ui) for mi, ui in zip(mf, uf)) for mf, uf in zip(self.m, self.u))

    @property
    def prior_weight(self) -> float:
        return math.log2(self.prior / (1 - self.prior))

    def weight_table(self, ordered: Sequence[bool] | None = None) -> F64:
        """Weights as an array ``(fields, max levels + 1)``; the last column (index -1) is 0 for missing.

        For the fields marked ``ordered`` (levels from best to worst agreement) a level never weighs more
        than a better one, and exact agreement is never evidence against: a typo is no stronger evidence
        than an exact agreement, even where the candidate pairs (chosen for agreeing) make exact
        agreements common among non-matches.
        """
        width = max((len(w) for w in self.m), default=0) + 1
        table = np.zeros((len(self.m), width))
        for f, w in enumerate(self.weights):
            row = np.array(w)
            if ordered is not None and ordered[f]:
                row[0] = max(row[0], 0.0)
                row = np.minimum.accumulate(row)
            table[f, : len(w)] = row
        return table


def pattern_table(levels: npt.NDArray[np.integer[Any]]) -> tuple[I16, I64, I64]:
    """Distinct rows of ``levels`` (pairs x columns), their counts, and each pair's row index."""
    if levels.shape[0] == 0:
        return levels.astype(np.int16), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    radices = [int(levels[:, f].max()) + 2 for f in range(levels.shape[1])]
    if math.prod(radices) < 2**62:
        code = np.zeros(levels.shape[0], dtype=np.int64)
        for f, radix in enumerate(radices):
            code = code * radix + (levels[:, f].astype(np.int64) + 1)
        uniq, inverse, counts = np.unique(code, return_inverse=True, return_counts=True)
        rows = np.zeros((len(uniq), levels.shape[1]), dtype=np.int16)
        rest = uniq.copy()
        for f in range(levels.shape[1] - 1, -1, -1):
            rows[:, f] = rest % radices[f] - 1
            rest //= radices[f]
        return rows, counts.astype(np.int64), inverse.astype(np.int64)
    rows, inverse, counts = np.unique(levels, axis=0, return_inverse=True, return_counts=True)
    return rows.astype(np.int16), counts.astype(np.int64), inverse.reshape(-1).astype(np.int64)


# ---------------------------------------------------------------- fields that move together


@attrs.frozen
class Design:
    """Model columns over field columns: one per independent field, one per group of dependent fields.

    Fields whose exact agreements go together among random pairs far more often than chance (a city
    and its postcode, a state and its postcode) break the model's independence assumption and would
    count the same evidence two or three times. Such a group becomes one model column whose levels are
    the joint levels of its fields, with m and u estimated for each combination.
    """

    groups: tuple[tuple[int, ...], ...]
    field_levels: tuple[int, ...]

    @property
    def n_levels(self) -> tuple[int, ...]:
        return tuple(
            self.field_levels[g[0]] if len(g) == 1 else math.prod(self.field_levels[f] + 1 for f in g) for g in self.groups
        )

    def encode(self, levels: npt.NDArray[np.int8]) -> I16:
        """Levels per model column (-1 when every field of the column is missing)."""
        out = np.empty((levels.shape[0], len(self.groups)), dtype=np.int16, order="F")
        for k, g in enumerate(self.groups):
            if len(g) == 1:
                out[:, k] = levels[:, g[0]]
                continue
            code = np.zeros(levels.shape[0], dtype=np.int64)
            for f in reversed(g):
                code = code * (self.field_levels[f] + 1) + (levels[:, f].astype(np.int64) + 1)
            out[:, k] = np.where(code == 0, -1, code)
        return out

    def decode(self, k: int, level: int) -> list[int]:
        """Field levels of model column ``k`` at ``level``."""
        g = self.groups[k]
        if len(g) == 1:
            return [level]
        out = []
        for f in g:
            radix = self.field_levels[f] + 1
            out.append(level % radix - 1)
            level //= radix
        return out

    def u_default(self) -> list[F64]:
        """Where u starts before looking at the data: mostly "different"."""
        starts = []
        for k, g in enumerate(self.groups):
            if len(g) == 1:
                starts.append(_u_default(self.field_levels[g[0]]))
                continue
            marginals = [_u_default(self.field_levels[f]) for f in g]
            p = np.zeros(self.n_levels[k])
            for level in range(1, len(p)):
                p[level] = math.prod(0.1 if lv < 0 else 0.9 * marg[lv] for lv, marg in zip(self.decode(k, level), marginals))
            starts.append(p / p.sum())
        return starts

    def m_start(self) -> list[F64]:
        starts = []
        for k, g in enumerate(self.groups):
            if len(g) == 1:
                starts.append(_m_prior(self.field_levels[g[0]]))
                continue
            marginals = [_m_prior(self.field_levels[f]) for f in g]
            p = np.zeros(self.n_levels[k])
            for level in range(1, len(p)):
                p[level] = math.prod(0.1 if lv < 0 else 0.9 * marg[lv] for lv, marg in zip(self.decode(k, level), marginals))
            starts.append(p / p.sum())
        return starts


def design(
    random_levels: npt.NDArray[np.int8],
    field_levels: Sequence[int],
    *,
    lift: float = 2.0,
    min_count: int = 10,
    min_rate: float = 0.01,
) -> Design:
    """Group fields whose exact agreements co-occur on random pairs ``lift`` times more than by chance.

    Only fields that agree on at least ``min_rate`` of random pairs are considered: for them the double
    counting matters, and their co-agreement is not explained by the few true matches in the sample.
    """
    n_fields = len(field_levels)
    parent = list(range(n_fields))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    exact = [random_levels[:, f] == 0 for f in range(n_fields)]
    present = [random_levels[:, f] >= 0 for f in range(n_fields)]
    edges = []
    for f in range(n_fields):
        for g in range(f + 1, n_fields):
            both = present[f] & present[g]
            n = int(both.sum())
            together = int((exact[f] & exact[g] & both).sum())
            if n == 0 or together < min_count:
                continue
            ef, eg = int((exact[f] & both).sum()), int((exact[g] & both).sum())
            if ef < min_rate * n or eg < min_rate * n:
                continue
            expected = ef * eg / n
            if together / expected >= lift:
                edges.append((together / expected, f, g))
    size = [1] * n_fields
    for _, f, g in sorted(edges, reverse=True):
        rf, rg = root(f), root(g)
        if rf != rg and size[rf] + size[rg] <= MAX_GROUP:
            parent[rg] = rf
            size[rf] += size[rg]
    groups: dict[int, list[int]] = {}
    for f in range(n_fields):
        groups.setdefault(root(f), []).append(f)
    return Design(tuple(tuple(g) for g in sorted(groups.values())), tuple(field_levels))


def _u_default(k: int) -> F64:
    u = np.full(k, 0.02)
    u[0] = 0.01
    u[-1] = 1.0 - u[:-1].sum()
    return u


def _m_prior(n_levels: int) -> F64:
    p = np.full(n_levels, 0.04)
    p[0] = 0.8
    out: F64 = p / p.sum()
    return out


def _loglik(rows: npt.NDArray[np.integer[Any]], probs: Sequence[F64]) -> F64:
    out = np.zeros(rows.shape[0])
    for f, p in enumerate(probs):
        col = rows[:, f]
        ok = col >= 0
        out[ok] += np.log(p[col[ok]])
    return out


def fit(
    fields: Sequence[str],
    n_levels: Sequence[int],
    rows: npt.NDArray[np.integer[Any]],
    counts: I64,
    *,
    u_start: Sequence[F64] | None = None,
    m_start: Sequence[F64] | None = None,
    prior_start: float = 0.1,
    fix_u: bool = False,
    prior_bound: float = 1 - 1e-9,
    max_iter: int = 500,
    tol: float = 1e-7,
) -> FSModel:
    """Fit m, u and the prior by EM on distinct level vectors ``rows`` seen ``counts`` times.

    ``u_start`` (per field, per level) is where u starts and what its prior leans to; by default the
    levels are taken as equally likely among non-matches. With ``fix_u`` only m and the prior are fitted.
    The prior never exceeds ``prior_bound`` (see :func:`max_prior`).
    """
    n_fields = len(fields)
    m_prior = [np.asarray(p, dtype=float) for p in m_start] if m_start is not None else [_m_prior(n) for n in n_levels]
    if u_start is None:
        u_prior = [np.full(n, 1.0 / n) for n in n_levels]
    else:
        u_prior = [np.clip(np.asarray(u, dtype=float), 1e-4, None) for u in u_start]
        u_prior = [u / u.sum() for u in u_prior]
    m = [p.copy() for p in m_prior]
    u = [p.copy() for p in u_prior]
    bound = float(min(max(prior_bound, 1e-9), 1 - 1e-9))
    prior = min(prior_start, bound)
    c = counts.astype(float)
    total = float(c.sum())
    iterations = 0
    converged = False
    if total == 0:
        return _model(fields, m, u, prior, 0, True)
    onehots = []
    for f in range(n_fields):
        col = rows[:, f]
        ok = col >= 0
        onehots.append((np.flatnonzero(ok), col[ok].astype(np.int64)))
    for iterations in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        logit = math.log(prior) - math.log1p(-prior) + _loglik(rows, m) - _loglik(rows, u)
        g = 1.0 / (1.0 + np.exp(-np.clip(logit, -700, 700)))
        wm, wu = c * g, c * (1.0 - g)
        new_m, new_u = [], []
        for f in range(n_fields):
            idx, lev = onehots[f]
            k = n_levels[f]
            mm = np.bincount(lev, weights=wm[idx], minlength=k) + PSEUDO_PAIRS * m_prior[f]
            uu = np.bincount(lev, weights=wu[idx], minlength=k) + PSEUDO_PAIRS * u_prior[f]
            new_m.append(np.clip(mm / mm.sum(), _EPS, None))
            new_u.append(u[f] if fix_u else np.clip(uu / uu.sum(), _EPS, None))
        new_prior = float(np.clip((wm.sum() + 1.0) / (total + 2.0), 1e-9, bound))
        delta = max(
            abs(new_prior - prior),
            max(float(np.abs(a - b).max()) for a, b in zip(new_m, m)),
            max(float(np.abs(a - b).max()) for a, b in zip(new_u, u)),
        )
        m, u, prior = new_m, new_u, new_prior
        if delta < tol:
            converged = True
            break
    return _model(fields, m, u, prior, iterations, converged)


def _model(fields: Sequence[str], m: Sequence[F64], u: Sequence[F64], prior: float, it: int, ok: bool) -> FSModel:
    return FSModel(
        tuple(fields),
        tuple(tuple(float(x) for x in mf) for mf in m),
        tuple(tuple(float(x) for x in uf) for uf in u),
        float(prior),
        it,
        ok,
    )


def max_prior(n_records: int, n_pairs: int) -> float:
    """The highest sane match rate among ``n_pairs`` candidates over ``n_records`` records."""
    if n_pairs <= 0:
        return 1 - 1e-9
    return float(min(MAX_PAIRS_PER_RECORD * n_records / n_pairs, 1 - 1e-9))


def exact_level(dsg: Design, k: int) -> int:
    """The level of model column ``k`` at which every field agrees exactly."""
    g = dsg.groups[k]
    if len(g) == 1:
        return 0
    code = 0
    for f in reversed(g):
        code = code * (dsg.field_levels[f] + 1) + 1
    return code


def problem(model: FSModel, exact: Sequence[int], bound: float) -> str | None:
    """Why a fit cannot be trusted, or ``None``: no convergence, the match rate at its bound, or fewer
    than two fields whose exact agreement speaks for a match (all "evidence" from one field, such as a
    common name shared by different people, or m ≈ u everywhere)."""
    if not model.converged:
        return f"EM did not converge in {model.iterations} iterations"
    if model.prior >= bound * (1 - 1e-6) and bound < 1 - 1e-6:
        return f"the match rate reached its bound ({bound:.3g})"
    support = [
        name
        for name, mf, uf, lv in zip(model.fields, model.m, model.u, exact)
        if mf[lv] >= SUPPORT_MIN_M and mf[lv] >= SUPPORT_RATIO * uf[lv]
    ]
    if len(support) < 2:
        said = ", ".join(support) if support else "none"
        return f"fewer than two fields tell matches apart (fields that do: {said})"
    return None
