"""The Fellegi–Sunter model learns m, u and the match rate from unlabelled pairs."""

from __future__ import annotations

import numpy as np
import pytest

from pycrm.dedup import _model

TRUE_M = [np.array([0.85, 0.10, 0.05]), np.array([0.90, 0.10]), np.array([0.70, 0.20, 0.05, 0.05])]
TRUE_U = [np.array([0.05, 0.15, 0.80]), np.array([0.20, 0.80]), np.array([0.02, 0.08, 0.20, 0.70])]


def synthetic(n: int, prior: float, seed: int = 1, missing: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    is_match = rng.random(n) < prior
    levels = np.empty((n, len(TRUE_M)), dtype=np.int8)
    for f, (m, u) in enumerate(zip(TRUE_M, TRUE_U)):
        levels[:, f] = np.where(is_match, rng.choice(len(m), n, p=m), rng.choice(len(u), n, p=u))
        levels[rng.random(n) < missing, f] = -1
    return levels, is_match


@pytest.mark.parametrize("prior", [0.05, 0.3])
def test_em_recovers_m_u_and_prior_without_labels(prior: float) -> None:
    levels, _ = synthetic(40_000, prior)
    rows, counts, _ = _model.pattern_table(levels)
    model = _model.fit(["a", "b", "c"], [3, 2, 4], rows, counts)
    assert model.converged
    assert model.prior == pytest.approx(prior, abs=0.02)
    for f in range(3):
        assert np.allclose(model.m[f], TRUE_M[f], atol=0.03), (f, model.m[f])
        assert np.allclose(model.u[f], TRUE_U[f], atol=0.03), (f, model.u[f])


def test_weights_say_agreement_is_evidence_for_and_disagreement_against() -> None:
    levels, _ = synthetic(20_000, 0.2)
    rows, counts, _ = _model.pattern_table(levels)
    model = _model.fit(["a", "b", "c"], [3, 2, 4], rows, counts)
    for w in model.weights:
        assert w[0] > 2 and w[-1] < -1


def test_pattern_table_round_trips() -> None:
    levels, _ = synthetic(5_000, 0.2)
    rows, counts, inverse = _model.pattern_table(levels)
    assert counts.sum() == len(levels)
    assert (rows[inverse] == levels).all()


def test_no_pairs_gives_the_priors_not_an_error() -> None:
    model = _model.fit(["a"], [2], np.zeros((0, 1), dtype=np.int8), np.zeros(0, dtype=np.int64))
    assert model.converged and len(model.m[0]) == 2
