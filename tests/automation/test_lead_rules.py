"""The ``score_leads`` rule action: closing a deal refits the lead-scoring model and stores the open deals'
scores (on every adapter); a rule that would re-trigger itself is refused; too little history does nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import pycrm
from pycrm import Customer, Money, Opportunity, ValidationError
from pycrm.automation import install_rules, load_rules
from tests.contract.test_lead_scores import _fill

RESCORE = {
    "name": "rescore on close",
    "when": "StageChanged",
    "if": {"to_stage": {"in": ["closed_won", "closed_lost"]}},
    "then": [{"score_leads": {}}],
}


def _scored(crm: pycrm.CRM) -> dict[str, object]:
    with crm.session() as s:
        return {str(o.id): o.win_probability for o in s.opportunities.find({"win_probability": {"is_null": False}})}


def test_closing_a_deal_rescores_the_open_ones(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(outbox=True)
    install_rules(crm, [RESCORE])
    _fill(crm)
    crm.dispatch()
    assert _scored(crm) == {}  # adding deals changes no stage: nothing fired
    with crm.session() as s:
        open_ = s.opportunities.find({"stage": {"in": ["prospecting", "qualification"]}}, order_by="id")
        assert len(open_) == 6
        first = open_[0]
        first.win()
        s.opportunities.update(first)
    crm.dispatch()
    scored = _scored(crm)
    assert set(scored) == {str(o.id) for o in open_[1:]}
    with crm.session() as s:
        expected = {x.opportunity_id: x.probability for x in s.analytics.lead_scoring(leads=False).scores()}
    assert set(expected) == set(scored)
    assert all(abs(float(scored[k]) - p) < 0.01 for k, p in expected.items())  # refit at dispatch time, scored the same


def test_too_little_history_does_nothing(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(outbox=True)
    install_rules(crm, [RESCORE])
    with crm.session() as s:
        s.customers.add(Customer("Acme", id="c1"))
        for name in ("A", "B"):
            s.opportunities.add(Opportunity("c1", name, Money(1, "EUR"), id=f"o{name}"))
        o = s.opportunities.get("oA")
        o.win()
        s.opportunities.update(o)
    result = crm.dispatch()
    assert result.delivered > 0 and crm.outbox.counts()["dead"] == 0
    assert _scored(crm) == {}


def test_a_rescoring_rule_that_triggers_itself_is_refused() -> None:
    loop = {"name": "loop", "when": "OpportunityUpdated", "then": [{"score_leads": {}}]}
    with pytest.raises(ValidationError, match="loop"):
        load_rules([loop])
    # on changes of other fields only it is fine
    load_rules([{**loop, "if": {"fields": "amount"}}])
    with pytest.raises(ValidationError) as exc:
        load_rules([{**RESCORE, "then": [{"score_leads": {"where": {"nope": 1}, "x": 2}}]}])
    assert "rules[0].then[0].score_leads.x" in exc.value.fields
