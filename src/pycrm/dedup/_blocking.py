"""Blocking: which pairs of records are worth comparing at all.

Each field yields a blocking token per record (a phonetic code for names, the normalized value for
e-mail addresses, phones, ids, dates, postcodes). Records sharing a token form a block, and every pair
inside a block is a candidate. Keys are chosen from the data, with no configuration:

* a field whose blocks are small enough (at most ``budget`` pairs per record) is a key on its own
  (names block on a phonetic code, so "Jon" meets "John");
* two coarse fields (say surname and postcode, compared exactly) together are a key when their
  conjunction is small enough; a field is coarse when it gives too many pairs or leaves too many records
  in oversized blocks;
* a block larger than ``max_block`` records is left out (a placeholder such as ``N/A`` or a very common
  name); the conjunctions still cover its records.

The candidates are the union over all keys, so a duplicate is found when any one key survives its
typos, and the number of candidates grows about linearly with the number of records.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import attrs
import numpy as np
import numpy.typing as npt

__all__ = ["BlockKey", "Blocking", "candidate_pairs"]

I64 = npt.NDArray[np.int64]

MAX_BLOCK = 20
BUDGET = 1.0  # pairs per record for one key
MIN_COVERAGE = 0.8  # a key leaving more records than this in oversized blocks is also combined with others


@attrs.frozen
class BlockKey:
    """One blocking key: its field names and the candidate pairs it produced."""

    fields: tuple[str, ...]
    pairs: int


@attrs.frozen
class Blocking:
    """Candidate pairs ``a < b`` (record positions) and the keys that produced them."""

    a: I64
    b: I64
    keys: tuple[BlockKey, ...]


@attrs.frozen
class _Blocks:
    """Records sorted by token, with the start and size of every block."""

    records: I64
    starts: I64
    sizes: I64

    @classmethod
    def of(cls, rec: I64, tok: I64) -> _Blocks:
        order = np.argsort(tok, kind="quicksort")  # order inside a block does not matter
        st = tok[order]
        starts = np.flatnonzero(np.concatenate(([True], st[1:] != st[:-1]))) if len(st) else np.zeros(0, dtype=np.int64)
        sizes = np.diff(np.append(starts, len(st)))
        return cls(rec[order], starts, sizes)

    def estimate(self, max_block: int) -> tuple[int, float]:
        """Pairs from the blocks of at most ``max_block`` records, and the share of records in such blocks."""
        if len(self.records) == 0:
            return 0, 1.0
        small = self.sizes[self.sizes <= max_block]
        return int((small * (small - 1) // 2).sum()), float(small.sum()) / len(self.records)

    def pairs(self, max_block: int, n: int) -> I64:
        """Pair codes ``lo * n + hi`` of the records sharing a block of at most ``max_block`` records."""
        r, starts, sizes = self.records, self.starts, self.sizes
        keep = (sizes >= 2) & (sizes <= max_block)
        out = []
        for size in np.unique(sizes[keep]).tolist():
            g = starts[keep & (sizes == size)]
            ti, tj = np.triu_indices(size, 1)
            ra = r[g[:, None] + ti[None, :]].ravel()
            rb = r[g[:, None] + tj[None, :]].ravel()
            lo, hi = np.minimum(ra, rb), np.maximum(ra, rb)
            ok = lo != hi
            out.append(lo[ok] * n + hi[ok])
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def candidate_pairs(
    n: int,
    fields: Sequence[str],
    tokens: Sequence[tuple[I64, I64]],
    firsts: Sequence[I64],
    *,
    max_block: int = MAX_BLOCK,
    budget: float = BUDGET,
) -> Blocking:
    """Candidate pairs over ``n`` records.

    ``tokens[i]`` is ``(records, tokens)`` for field ``i`` (a record may appear several times when the
    field holds a list); ``firsts[i]`` is one exact value per record (-1 when missing), for conjunctions.
    """
    limit = max(budget * n, 1000)
    chosen: list[tuple[tuple[str, ...], _Blocks]] = []
    coarse: list[int] = []
    for i, (rec, tok) in enumerate(tokens):
        if len(rec) < 2:
            continue
        blocks = _Blocks.of(rec, tok)
        pairs, coverage = blocks.estimate(max_block)
        if pairs <= limit:
            chosen.append(((fields[i],), blocks))
        if pairs > limit or coverage < MIN_COVERAGE:
            coarse.append(i)
    for i, j in itertools.combinations(coarse, 2):
        fi, fj = firsts[i], firsts[j]
        present = np.flatnonzero((fi >= 0) & (fj >= 0))
        if len(present) < 2:
            continue
        tok = fi[present] * (int(fj.max()) + 1) + fj[present]
        blocks = _Blocks.of(present.astype(np.int64), tok)
        if blocks.estimate(max_block)[0] <= limit:
            chosen.append(((fields[i], fields[j]), blocks))
    codes = []
    keys = []
    for names, blocks in chosen:
        p = blocks.pairs(max_block, n)
        keys.append(BlockKey(names, len(p)))
        codes.append(p)
    if codes:
        allp = np.sort(np.concatenate(codes))
        if len(allp):
            allp = allp[np.concatenate(([True], allp[1:] != allp[:-1]))]
    else:
        allp = np.zeros(0, dtype=np.int64)
    return Blocking(allp // n, allp % n, tuple(keys))
