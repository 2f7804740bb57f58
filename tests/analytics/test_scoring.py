"""Lead scoring, the pure model: separable data, calibration against known probabilities, explanations that
add up, the features read as of the decision, and too little history refused."""

from __future__ import annotations

import datetime as dt
import math
import random

import numpy as np
import pytest

from pycrm import Customer, Interaction, Money, Opportunity, Order, Ticket, ValidationError
from pycrm.analytics import (
    DealFeatures,
    LeadScoring,
    auc_score,
    brier_score,
    deal_features,
    fit_lead_scoring,
    lead_scoring,
)

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _deal(i: int, won: bool | None, cats: dict[str, str], nums: dict[str, float] | None = None, tags=()) -> DealFeatures:
    return DealFeatures(
        f"o{i}", f"c{i}", won, T0 + dt.timedelta(hours=i), tuple(cats.items()), tuple((nums or {}).items()), tuple(tags)
    )


def test_separable_data_scores_an_auc_near_one() -> None:
    rng = random.Random(1)
    deals = []
    for i in range(400):
        won = rng.random() < 0.4
        country = ("DE" if rng.random() < 0.97 else "FR") if won else ("FR" if rng.random() < 0.97 else "DE")
        deals.append(_deal(i, won, {"country": country, "owner": rng.choice("abc")}, {"amount": rng.uniform(1, 100)}))
    ev = LeadScoring(deals).evaluate(holdout=0.25)
    assert (ev.train, ev.test) == (300, 100)
    assert ev.auc > 0.95
    assert ev.brier < 0.06 < ev.brier_base
    assert 0.2 < ev.base_rate < 0.6


def test_probabilities_are_calibrated_on_data_with_known_probabilities() -> None:
    # a naive-Bayes world: the class first, then independent features given it; the true P(won | x) is known
    rng = np.random.default_rng(7)
    prior = 0.3
    p_country = {True: [0.6, 0.3, 0.1], False: [0.2, 0.3, 0.5]}
    p_stage = {True: [0.1, 0.3, 0.6], False: [0.5, 0.3, 0.2]}
    n = 20_000
    y = rng.random(n) < prior
    deals, truth = [], []
    for i in range(n):
        c = int(rng.choice(3, p=p_country[bool(y[i])]))
        s = int(rng.choice(3, p=p_stage[bool(y[i])]))
        won = prior * p_country[True][c] * p_stage[True][s]
        lost = (1 - prior) * p_country[False][c] * p_stage[False][s]
        truth.append(won / (won + lost))
        deals.append(_deal(i, bool(y[i]), {"country": f"k{c}", "stage": f"s{s}"}))
    model = fit_lead_scoring(deals)
    p = model.probabilities(deals)
    assert float(np.max(np.abs(p - np.array(truth)))) < 0.03
    # and in bins of predicted probability, the observed win rate matches the mean prediction
    for lo in (0.0, 0.2, 0.4, 0.6):
        sel = (p >= lo) & (p < lo + 0.2)
        if sel.sum() > 500:
            assert abs(float(y[sel].mean()) - float(p[sel].mean())) < 0.03


def test_the_explanations_add_up_to_the_log_odds() -> None:
    rng = random.Random(3)
    deals = [
        _deal(
            i,
            rng.random() < 0.5 if i < 200 else None,
            {"country": rng.choice(["DE", "FR", "CN"]), "stage": rng.choice(["a", "b"])},
            {"amount": rng.uniform(0, 1000), "interactions": float(rng.randint(0, 9))},
            tags=rng.sample(["vip", "eu", "new"], rng.randint(0, 2)),
        )
        for i in range(220)
    ]
    scoring = LeadScoring(deals)
    scores = scoring.scores()
    assert len(scores) == 20
    assert [s.probability for s in scores] == sorted((s.probability for s in scores), reverse=True)
    for s in scores:
        assert math.isclose(scoring.model.intercept + math.fsum(r.contribution for r in s.all_reasons), s.log_odds)
        assert math.isclose(s.probability, 1 / (1 + math.exp(-s.log_odds)))
        assert len(s.reasons) == 3
        assert [abs(r.contribution) for r in s.reasons] == sorted((abs(r.contribution) for r in s.all_reasons), reverse=True)[:3]
    one = scores[0]
    assert scoring.explain(str(one.opportunity_id), top=5).all_reasons == one.all_reasons
    with pytest.raises(ValidationError, match="not an open deal"):
        scoring.explain("o0")  # closed


def test_too_little_history_says_how_much_is_needed() -> None:
    few = [_deal(i, i % 2 == 0, {"country": "DE"}) for i in range(12)]
    needs = r"at least 20 closed deals with at least 5 won and 5 lost; there are 12 \(6 won, 6 lost\)"
    with pytest.raises(ValidationError, match=needs):
        fit_lead_scoring(few)
    one_class = [_deal(i, True, {"country": "DE"}) for i in range(50)]
    with pytest.raises(ValidationError, match=r"there are 50 \(50 won, 0 lost\)"):
        LeadScoring(one_class)
    # a holdout whose newest deals are all lost
    deals = [_deal(i, i % 2 == 0 if i < 40 else False, {"country": "DE"}) for i in range(50)]
    with pytest.raises(ValidationError, match="all lost"):
        LeadScoring(deals).evaluate(holdout=0.2)
    with pytest.raises(ValidationError, match="older closed deals to train on"):
        LeadScoring(deals).evaluate(holdout=0.9)
    for bad in ({"bins": 0}, {"smoothing": 0}, {"smoothing": float("nan")}, {"folds": 1}):
        with pytest.raises(ValidationError):
            fit_lead_scoring(deals, **bad)  # type: ignore[arg-type]


def test_auc_and_brier() -> None:
    assert auc_score([True, False], [0.9, 0.1]) == 1.0
    assert auc_score([True, False], [0.1, 0.9]) == 0.0
    assert auc_score([True, False, True, False], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert brier_score([True, False], [1.0, 0.0]) == 0.0
    with pytest.raises(ValidationError):
        auc_score([True, True], [0.1, 0.2])


def test_features_are_read_as_they_were_at_the_decision() -> None:
    c = Customer("Acme", id="c1", country="DE", category="Retail/Food", tags=["vip"], status="active")
    lead = Customer("Lead", id="c2", kind="person")
    won = Opportunity("c1", "W", Money(500, "EUR"), id="o1", owner_id="u1", created_at=T0)
    won.move_to("qualification", at=T0 + dt.timedelta(days=2))
    won.move_to("proposal", at=T0 + dt.timedelta(days=5))
    won.win(at=T0 + dt.timedelta(days=9))
    open_ = Opportunity("c1", "O", Money(900, "EUR"), id="o2", created_at=T0 + dt.timedelta(days=20))
    later = T0 + dt.timedelta(days=10)
    inter = [Interaction("c1", "call", T0 + dt.timedelta(days=d)) for d in (1, 3, 12)]
    tickets = [Ticket("c1", "Help", created_at=T0 + dt.timedelta(days=4))]
    orders = [Order("c1", later, Money(5, "EUR")), Order("c2", T0, Money(5, "EUR"))]
    as_of = T0 + dt.timedelta(days=30)
    got = {
        d.record_id: d
        for d in deal_features([won, open_], customers=[c, lead], interactions=inter, tickets=tickets, orders=orders, as_of=as_of)
    }
    w = got["o1"]
    assert w.won is True and w.decided_at == won.closed_at
    assert dict(w.categorical) == {
        "stage": "proposal",  # the last open stage, not closed_won
        "pipeline": "default",
        "currency": "EUR",
        "category": "Retail/Food",
        "country": "DE",
        "kind": "company",
        "owner": "u1",
    }
    assert dict(w.numeric) == {
        "amount": 500.0,
        "moves": 2.0,
        "age_days": 9.0,
        "stage_days": 4.0,
        "interactions": 2.0,  # the one on day 12 came after the decision
        "tickets": 1.0,
        "orders": 0.0,
    }
    assert w.tags == ("vip",)
    o = got["o2"]
    assert o.won is None and o.decided_at == as_of
    assert dict(o.numeric)["interactions"] == 3.0 and dict(o.numeric)["stage_days"] == 10.0
    assert dict(o.categorical)["stage"] == "prospecting"
    ld = got["c2"]  # a lead without deals: its customer's features only
    assert ld.opportunity_id is None and dict(ld.categorical) == {"kind": "person"}
    assert dict(ld.numeric) == {"interactions": 0.0, "tickets": 0.0, "orders": 1.0}
    # an actor that may not read tickets: the feature is left out
    none = deal_features([won], customers=[c], tickets=None, as_of=as_of)
    assert "tickets" not in dict(none[0].numeric)


def test_lead_scoring_from_entities_scores_open_deals_and_leads() -> None:
    rng = random.Random(5)
    customers, opps = [], []
    for i in range(120):
        region = rng.choice(["DE", "FR"])
        customers.append(Customer(f"C{i}", id=f"c{i}", country=region, status="active" if i < 100 else "lead"))
        o = Opportunity(f"c{i}", f"D{i}", Money(rng.randint(1, 9) * 100, "EUR"), id=f"o{i}", created_at=T0)
        if i < 100:
            good = rng.random() < (0.8 if region == "DE" else 0.2)
            if good:
                o.win(at=T0 + dt.timedelta(days=i + 1))
            else:
                o.lose("price", at=T0 + dt.timedelta(days=i + 1))
        elif i < 110:
            opps.append(o)
            continue
        else:
            continue  # leads without deals
        opps.append(o)
    scoring = lead_scoring(opps, customers=customers, as_of=T0 + dt.timedelta(days=200))
    scores = scoring.scores()
    assert {s.opportunity_id for s in scores if s.opportunity_id} == {f"o{i}" for i in range(100, 110)}
    assert {s.customer_id for s in scores if s.opportunity_id is None} == {f"c{i}" for i in range(110, 120)}
    by_country = {}
    for s in scores:
        by_country.setdefault(customers[int(s.customer_id[1:])].country, []).append(s.probability)
    assert min(by_country["DE"]) > max(by_country["FR"])
    assert scoring.scores(n=3) == scores[:3]
