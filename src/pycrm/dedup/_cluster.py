"""Clustering matched pairs into groups without long chains of weak links.

Connected components over the links (pairs scored at or above the threshold) can chain: A looks like
B, B like C, ... and A and F end up together though they share nothing. So each component with more
than two records is checked as a whole: every pair inside it is scored (not only the candidates), and
average-linkage agglomeration rebuilds the groups, joining two groups only while the average match
probability across them stays at or above the threshold. A group is therefore coherent: on average
each member matches the others, not merely a neighbour.

Components too large to score in full (an unusual threshold, a placeholder value) are first split by
dropping their weakest links.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import numpy.typing as npt

__all__ = ["all_pairs", "components", "group"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

MAX_COMPONENT = 300


@lru_cache(maxsize=512)
def _triu(size: int) -> tuple[I64, I64]:
    ti, tj = np.triu_indices(size, 1)
    return ti.astype(np.int64), tj.astype(np.int64)


def all_pairs(groups: list[I64]) -> tuple[I64, I64, list[int]]:
    """Every pair inside every group, concatenated, with the offset where each group's pairs start."""
    pa, pb, offsets = [], [], [0]
    for g in groups:
        ti, tj = _triu(len(g))
        pa.append(g[ti])
        pb.append(g[tj])
        offsets.append(offsets[-1] + len(ti))
    if not pa:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), offsets
    return np.concatenate(pa), np.concatenate(pb), offsets


def components(n: int, a: I64, b: I64) -> I64:
    """Component label (smallest member) of every record, linked by the pairs ``(a[i], b[i])``."""
    parent = np.arange(n, dtype=np.int64)
    if len(a) == 0:
        return parent
    # pointer jumping with min-label propagation: each round halves path lengths
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    while True:
        pl, ph = parent[lo], parent[hi]
        m = np.minimum(pl, ph)
        np.minimum.at(parent, pl, m)
        np.minimum.at(parent, ph, m)
        while True:
            gp = parent[parent]
            if np.array_equal(gp, parent):
                break
            parent = gp
        if np.array_equal(parent[lo], parent[hi]):
            return parent


def _split_large(members: I64, a: I64, b: I64, p: F64, limit: int) -> list[I64]:
    """Split a component by dropping its weakest links until every part has at most ``limit`` members."""
    out: list[I64] = []
    stack = [(members, a, b, p)]
    while stack:
        mem, la, lb, lp = stack.pop()
        if len(mem) <= limit:
            out.append(mem)
            continue
        keep = lp > np.quantile(lp, 0.2)
        if keep.all() or not keep.any():  # ties: drop the weakest fifth by rank
            keep = np.argsort(np.argsort(lp, kind="stable"), kind="stable") >= max(1, len(lp) // 5)
        local = {int(r): i for i, r in enumerate(mem.tolist())}
        ia = np.array([local[int(x)] for x in la[keep]], dtype=np.int64)
        ib = np.array([local[int(x)] for x in lb[keep]], dtype=np.int64)
        lab = components(len(mem), ia, ib)
        for root in np.unique(lab).tolist():
            sub = np.flatnonzero(lab == root)
            if len(sub) < 2:
                continue
            sel = np.isin(ia, sub) & np.isin(ib, sub)
            stack.append((mem[sub], la[keep][sel], lb[keep][sel], lp[keep][sel]))
    return out


def _average_linkage(prob: F64, threshold: float) -> list[list[int]]:
    """Groups of ``range(len(prob))`` joined while the average cross probability is >= threshold."""
    s = len(prob)
    sums = prob.astype(float).copy()
    np.fill_diagonal(sums, 0.0)
    sizes = np.ones(s)
    alive = np.ones(s, dtype=bool)
    groups: list[list[int]] = [[i] for i in range(s)]
    while True:
        avg = sums / np.outer(sizes, sizes)
        avg[~alive, :] = -1
        avg[:, ~alive] = -1
        np.fill_diagonal(avg, -1)
        k = int(np.argmax(avg))
        i, j = divmod(k, s)
        if avg[i, j] < threshold:
            break
        sums[i, :] += sums[j, :]
        sums[:, i] += sums[:, j]
        sums[i, i] = 0.0
        sizes[i] += sizes[j]
        alive[j] = False
        sums[j, :] = 0
        sums[:, j] = 0
        groups[i] += groups[j]
        groups[j] = []
    return [sorted(g) for g in groups if len(g) > 1]


def group(
    n: int,
    a: I64,
    b: I64,
    prob: F64,
    threshold: float,
    score_pairs: Callable[[I64, I64], F64],
    *,
    max_component: int = MAX_COMPONENT,
) -> list[I64]:
    """Groups (arrays of record positions, two or more each) from candidate pairs and their probabilities."""
    link = prob >= threshold
    la, lb, lp = a[link], b[link], prob[link]
    labels = components(n, la, lb)
    roots, sizes = np.unique(labels, return_counts=True)
    out: list[I64] = []
    multi_roots = roots[sizes > 1]
    if len(multi_roots) == 0:
        return out
    order = np.argsort(labels, kind="quicksort")
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, multi_roots)
    ends = np.searchsorted(sorted_labels, multi_roots, side="right")
    big: list[I64] = []
    for st, en in zip(starts.tolist(), ends.tolist()):
        members = order[st:en]
        if len(members) == 2:
            out.append(np.sort(members))
        elif len(members) > max_component:
            sel = np.isin(la, members)
            big.extend(_split_large(members, la[sel], lb[sel], lp[sel], max_component))
        else:
            big.append(np.sort(members))
    if not big:
        return out
    # score every pair inside every component at once
    pa, pb, offsets = all_pairs(big)
    probs = score_pairs(pa, pb)
    for k, members in enumerate(big):
        s = len(members)
        vals = probs[offsets[k] : offsets[k + 1]]
        if vals.min() >= threshold:  # every member matches every other: nothing to split
            out.append(members)
            continue
        mat = np.zeros((s, s))
        ti, tj = _triu(s)
        mat[ti, tj] = vals
        mat[tj, ti] = vals
        for g in _average_linkage(mat, threshold):
            out.append(members[np.array(g, dtype=np.int64)])
    return out
