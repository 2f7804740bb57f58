"""CLV on the store ``pycrm demo`` builds: Gamma-Gamma finds no finite mean spend there (q <= 1), the error
says what does work, and doing what it says works."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import pycrm
from pycrm import ValidationError
from pycrm._demo import CUSTOM_FIELDS, DEFAULT_AS_OF
from pycrm.analytics import fit_gamma_gamma
from pycrm.cli import main

pytest.importorskip("scipy")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("demo") / "pycrm-demo.db"
    assert main(["demo", "--db", str(db)]) == 0  # the default demo: seed, size and date as shipped
    return db


def _open(db: Path) -> pycrm.CRM:
    return pycrm.open(f"sqlite:///{db}", default_region="CN", custom_fields=CUSTOM_FIELDS)


def test_clv_on_the_demo_says_why_not_and_not_to_use_a_penalizer(demo: Path) -> None:
    with _open(demo) as crm, crm.session() as s:
        with pytest.raises(ValidationError) as got:
            s.analytics.clv(as_of=DEFAULT_AS_OF)
        (error,) = got.value.errors
        assert (error.field, error.code) == ("q", "infinite_mean")
        assert "A penalizer does not help" in error.message and "where={'customer_id': {'in': ids}}" in error.message
        # Why a penalizer is no cure: the fitted q is at most 1, and the penalty pulls it lower still.
        summary = s.analytics.purchase_summary(calibration_end=DEFAULT_AS_OF)
        plain = fit_gamma_gamma(summary).q
        assert plain <= 1
        assert fit_gamma_gamma(summary, penalizer=0.001).q < plain
        assert fit_gamma_gamma(summary, penalizer=0.01).q < plain


def test_following_the_advice_scores_every_demo_customer(demo: Path) -> None:
    """Business and consumer customers scored separately, as the error suggests: both fits give a finite
    mean spend, and every customer with orders gets one finite CLV."""
    with _open(demo) as crm, crm.session() as s:
        buyers = {row.customer_id for row in s.analytics.purchase_summary(calibration_end=DEFAULT_AS_OF)}
        groups: dict[str, list[str]] = {}
        for c in s.customers.iter():
            groups.setdefault(c.kind, []).append(str(c.id))
        assert set(groups) == {"company", "person"}
        scored: list[str] = []
        for ids in groups.values():
            scores = s.analytics.clv(as_of=DEFAULT_AS_OF, where={"customer_id": {"in": ids}})
            assert scores and all(math.isfinite(x.clv) and x.clv >= 0 and 0 <= x.p_alive <= 1 for x in scores)
            scored += [x.customer_id for x in scores]
    assert sorted(scored) == sorted(buyers)
