"""The EM fit does not manufacture matches on a file without duplicates, and says when it fell back."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import numpy as np
import pytest

from pycrm.dedup import _model
from pycrm.dedup._find import run

from ._data import strangers


def test_a_file_without_duplicates_links_next_to_nothing_and_says_why() -> None:
    records = strangers(20_000)
    names = Counter(r["name"] for r in records)
    assert sum(c * (c - 1) // 2 for c in names.values()) > 10_000  # many strangers share a name
    result = run(records)
    assert len(result.blocking.a) > 5_000  # the names gave the fit plenty of candidate pairs
    linked = sum(len(c) * (len(c) - 1) // 2 for c in result.clusters)
    assert linked <= 10  # the target: at most 100 per 200,000 records
    assert result.model.fallback is not None
    assert result.model.prior <= _model.max_prior(20_000, len(result.blocking.a))


def test_a_file_with_duplicates_keeps_its_fit(people_1000: tuple[list[dict[str, Any]], set[Any]]) -> None:
    records, truth = people_1000
    result = run(records)
    assert result.model.fallback is None and result.model.converged
    found = {tuple(sorted(p)) for c in result.clusters for p in itertools.combinations(c.ids, 2)}
    assert len(found & truth) / len(truth) >= 0.95


def test_the_prior_never_passes_its_bound() -> None:
    rng = np.random.default_rng(3)
    levels = np.where(rng.random((5_000, 2)) < 0.5, 0, 1).astype(np.int8)
    rows, counts, _ = _model.pattern_table(levels)
    model = _model.fit(["a", "b"], [2, 2], rows, counts, prior_bound=0.01)
    assert model.prior <= 0.01
    assert _model.max_prior(1_000, 100_000) == _model.MAX_PAIRS_PER_RECORD * 1_000 / 100_000


def test_evidence_from_one_field_only_is_a_degenerate_fit() -> None:
    # a fit whose "matches" agree on field a only (m ≈ u on b): a common name shared by strangers
    model = _model.FSModel(("a", "b"), ((0.99, 0.01), (0.05, 0.95)), ((0.01, 0.99), (0.05, 0.95)), 0.4, 20, True)
    why = _model.problem(model, [0, 0], 1 - 1e-9)
    assert why is not None and "fields that do: a)" in why
    rng = np.random.default_rng(5)
    good = _model.fit(["a", "b", "c"], [3, 2, 4], *_model.pattern_table(_two_field_matches(rng))[:2])
    assert _model.problem(good, [0, 0, 0], 1 - 1e-9) is None


def _two_field_matches(rng: np.random.Generator) -> np.ndarray:
    n = 20_000
    match = rng.random(n) < 0.2
    cols = [
        np.where(match, rng.choice(3, n, p=[0.85, 0.1, 0.05]), rng.choice(3, n, p=[0.05, 0.15, 0.8])),
        np.where(match, rng.choice(2, n, p=[0.9, 0.1]), rng.choice(2, n, p=[0.2, 0.8])),
        np.where(match, rng.choice(4, n, p=[0.7, 0.2, 0.05, 0.05]), rng.choice(4, n, p=[0.02, 0.08, 0.2, 0.7])),
    ]
    return np.stack(cols, axis=1).astype(np.int8)


def test_not_converging_is_reported() -> None:
    levels = np.stack([np.arange(1000) % 2, np.arange(1000) % 3 // 2], axis=1).astype(np.int8)
    rows, counts, _ = _model.pattern_table(levels)
    model = _model.fit(["a", "b"], [2, 2], rows, counts, max_iter=1)
    assert not model.converged
    assert _model.problem(model, [0, 0], 1 - 1e-9) == "EM did not converge in 1 iterations"


def test_the_safe_defaults_still_find_clear_duplicates(
    people_1000: tuple[list[dict[str, Any]], set[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # force the fallback on a file with duplicates (and fields modelled jointly: suburb, postcode, state)
    monkeypatch.setattr(_model, "problem", lambda *args: "forced")
    records, truth = people_1000
    result = run(records)
    assert result.model.fallback == "forced"
    assert any("+" in f for f in result.model.fields)
    single = [w for f, w in zip(result.model.fields, result.model.weights) if "+" not in f]
    assert single and all(w[0] > 0 for w in single)  # exact agreement speaks for a match ...
    assert all(max(w[1:]) <= 1e-9 for w in single)  # ... no other level does
    found = {tuple(sorted(p)) for c in result.clusters for p in itertools.combinations(c.ids, 2)}
    assert len(found & truth) / len(truth) >= 0.95
