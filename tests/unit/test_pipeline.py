"""Opportunity pipelines: every move of the transition table, reopening, and pipelines that hosts build."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
from decimal import Decimal

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycrm import DEFAULT_PIPELINE, Money, Opportunity, Pipeline, Stage, TransitionError, ValidationError
from pycrm.domain import ForecastCategory, StageKind, get_pipeline, register_pipeline

STAGES = list(DEFAULT_PIPELINE.stage_names)
OPEN = ["prospecting", "qualification", "needs_analysis", "proposal", "negotiation"]
CLOSED = ["closed_won", "closed_lost"]
AT = dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC)


def deal(stage: str = "prospecting", pipeline: Pipeline = DEFAULT_PIPELINE) -> Opportunity:
    return Opportunity("c1", "年度采购", Money("120000.00", "CNY"), stage=stage, pipeline=pipeline)


def snapshot(o: Opportunity) -> dict:
    return copy.deepcopy(attrs.asdict(o, recurse=False))


def test_default_pipeline_is_the_contracts() -> None:
    assert [(s.name, s.probability, s.kind) for s in DEFAULT_PIPELINE.stages] == [
        ("prospecting", Decimal("0.10"), StageKind.OPEN),
        ("qualification", Decimal("0.20"), StageKind.OPEN),
        ("needs_analysis", Decimal("0.40"), StageKind.OPEN),
        ("proposal", Decimal("0.60"), StageKind.OPEN),
        ("negotiation", Decimal("0.80"), StageKind.OPEN),
        ("closed_won", Decimal("1.0"), StageKind.WON),
        ("closed_lost", Decimal("0.0"), StageKind.LOST),
    ]
    assert DEFAULT_PIPELINE.initial == "prospecting"
    assert get_pipeline("default") is DEFAULT_PIPELINE
    assert deal().stage == "prospecting"


@pytest.mark.parametrize(("a", "b"), list(itertools.product(STAGES, STAGES)))
def test_every_move_of_the_default_pipeline(a: str, b: str) -> None:
    o = deal(a)
    before = snapshot(o)
    allowed = a in OPEN and b != a and b != "closed_lost"  # losing goes through lose(reason)
    if not allowed:
        with pytest.raises(TransitionError, match="lose\\(reason\\)" if b == "closed_lost" else None):
            o.move_to(b, at=AT, by="u1")
        assert snapshot(o) == before
        return
    o.move_to(b, at=AT, by="u1")
    assert o.stage == b
    assert o.probability == DEFAULT_PIPELINE.stage(b).probability
    assert o.stage_history[-1].from_stage == a
    assert o.stage_history[-1].to_stage == b
    assert o.stage_history[-1].at == AT
    assert o.stage_history[-1].by == "u1"
    assert len(o.stage_history) == 1
    assert o.is_closed == (b in CLOSED)
    assert o.closed_at == (AT if b in CLOSED else None)


@pytest.mark.parametrize("target", ["unknown", "", "Prospecting", None, 3])
def test_moving_to_a_stage_that_does_not_exist_changes_nothing(target: object) -> None:
    o = deal("proposal")
    before = snapshot(o)
    with pytest.raises((TransitionError, ValidationError)):
        o.move_to(target)  # type: ignore[arg-type]
    assert snapshot(o) == before


@pytest.mark.parametrize("start", OPEN)
def test_win_and_lose_close_an_open_deal(start: str) -> None:
    won, lost = deal(start), deal(start)
    won.win(at=AT)
    assert (won.stage, won.is_won, won.probability, won.closed_at) == ("closed_won", True, Decimal("1.0"), AT)
    lost.lose("price too high", at=AT)
    assert (lost.stage, lost.is_won, lost.probability, lost.lost_reason) == (
        "closed_lost",
        False,
        Decimal("0.0"),
        "price too high",
    )


@pytest.mark.parametrize("reason", ["", "   ", None, 42, "nul\x00"])
def test_losing_needs_a_reason_and_changes_nothing_without_one(reason: object) -> None:
    o = deal("negotiation")
    before = snapshot(o)
    with pytest.raises(ValidationError) as info:
        o.lose(reason)  # type: ignore[arg-type]
    assert info.value.fields == ["reason"]
    assert snapshot(o) == before


@pytest.mark.parametrize(("closed", "target"), list(itertools.product(CLOSED, STAGES)))
def test_reopen_takes_a_closed_deal_back_to_any_open_stage(closed: str, target: str) -> None:
    o = deal("negotiation")
    o.win() if closed == "closed_won" else o.lose("budget cut")
    before = snapshot(o)
    if target in CLOSED:
        with pytest.raises(TransitionError):
            o.reopen(target)
        assert snapshot(o) == before
        return
    o.reopen(target, at=AT, by="u2")
    assert (o.stage, o.is_closed, o.closed_at, o.lost_reason) == (target, False, None, None)
    assert (o.stage_history[-1].from_stage, o.stage_history[-1].to_stage, o.stage_history[-1].by) == (closed, target, "u2")


@pytest.mark.parametrize("stage", OPEN)
def test_reopening_an_open_deal_is_refused(stage: str) -> None:
    o = deal(stage)
    before = snapshot(o)
    with pytest.raises(TransitionError):
        o.reopen("prospecting")
    assert snapshot(o) == before


@pytest.mark.parametrize("stage", CLOSED)
def test_a_closed_deal_cannot_win_or_lose_again(stage: str) -> None:
    o = deal(stage)
    before = snapshot(o)
    with pytest.raises(TransitionError):
        o.win()
    with pytest.raises(TransitionError):
        o.lose("again")
    assert snapshot(o) == before


def test_probability_override_wins_over_the_stage() -> None:
    o = deal("proposal")
    o.probability_override = Decimal("0.35")
    assert o.probability == Decimal("0.35")
    assert o.weighted_amount == Money("42000.00", "CNY")
    o.probability_override = None
    assert o.probability == Decimal("0.60")
    with pytest.raises(ValidationError) as info:
        o.probability_override = Decimal("1.5")
    assert info.value.fields == ["probability_override"]


@given(st.lists(st.tuples(st.sampled_from(["move", "win", "lose", "reopen"]), st.sampled_from(STAGES)), max_size=30))
def test_random_walks_keep_history_and_stage_consistent(steps: list[tuple[str, str]]) -> None:
    o = deal()
    moves = 0
    for action, stage in steps:
        before = snapshot(o)
        try:
            if action == "move":
                o.move_to(stage)
            elif action == "win":
                o.win()
            elif action == "lose":
                o.lose("no budget")
            else:
                o.reopen(stage)
        except TransitionError:
            assert snapshot(o) == before
        else:
            moves += 1
            assert o.stage_history[-1].to_stage == o.stage
            assert o.stage_history[-1].from_stage == before["stage"]
        assert len(o.stage_history) == moves
        assert o.probability == DEFAULT_PIPELINE.stage(o.stage).probability
        assert (o.closed_at is not None) == o.is_closed
        if o.lost_reason is not None:
            assert o.stage == "closed_lost"


# ---------------------------------------------------------------- host-defined pipelines

STRICT = Pipeline(
    "strict-test",
    [
        Stage("lead", "0.1"),
        Stage("demo", "0.5"),
        Stage("contract", "0.9", forecast_category="commit"),
        Stage("won", 1, kind="won", forecast_category="closed"),
        Stage("lost", 0, kind="lost", forecast_category="omitted"),
    ],
    transitions=[
        ("lead", "demo"),
        ("demo", "contract"),
        ("contract", "won"),
        ("lead", "lost"),
        ("demo", "lost"),
        ("contract", "lost"),
    ],
    reopen_to=["lead"],
)


@pytest.mark.parametrize(("a", "b"), list(itertools.product(STRICT.stage_names, STRICT.stage_names)))
def test_a_stricter_pipeline_allows_exactly_its_transitions(a: str, b: str) -> None:
    o = deal(a, STRICT)
    before = snapshot(o)
    move = (lambda: o.lose("no budget")) if b == "lost" else (lambda: o.move_to(b))
    if (a, b) in STRICT.transitions:
        move()
        assert o.stage == b
    else:
        with pytest.raises(TransitionError):
            move()
        assert snapshot(o) == before


def test_reopen_to_limits_where_closed_deals_go() -> None:
    o = deal("contract", STRICT)
    o.lose("went with a competitor")
    with pytest.raises(TransitionError):
        o.reopen("demo")
    o.reopen("lead")
    assert o.stage == "lead"


def test_a_looser_pipeline_is_just_data() -> None:
    loose = Pipeline(
        "loose-test", [Stage("a", "0.5"), Stage("b", "0.7"), Stage("done", 1, kind="won"), Stage("x", 0, kind="lost")]
    )
    o = deal("b", loose)
    o.move_to("a")
    o.win()
    assert o.stage == "done"
    assert loose.stage("b").forecast_category is ForecastCategory.PIPELINE


def test_registered_pipelines_are_found_by_name_and_names_do_not_clash() -> None:
    register_pipeline(STRICT)
    assert register_pipeline(STRICT) is STRICT  # the same one again is fine
    assert get_pipeline("strict-test") is STRICT
    assert Opportunity("c1", "x", Money(1), stage="demo", pipeline="strict-test").pipeline is STRICT
    clash = Pipeline("strict-test", [Stage("only", "0.5"), Stage("w", 1, kind="won")])
    with pytest.raises(ValidationError):
        register_pipeline(clash)
    with pytest.raises(ValidationError) as info:
        Opportunity("c1", "x", Money(1), pipeline="never-registered")
    assert info.value.fields == ["pipeline"]


def _won() -> Stage:
    return Stage("won", 1, kind="won")


def _lost() -> Stage:
    return Stage("lost", 0, kind="lost")


@pytest.mark.parametrize(
    ("stages", "kwargs", "code"),
    [
        pytest.param([], {}, "required", id="no-stages"),
        pytest.param([_won(), Stage("a", "0.5")], {}, "initial_closed", id="first-stage-closed"),
        pytest.param([Stage("a", "0.1"), Stage("a", "0.2"), _won()], {}, "duplicate", id="duplicate-names"),
        pytest.param([Stage("a", "0.1"), _won()], {"transitions": [("a", "nowhere")]}, "unknown", id="unknown-target"),
        pytest.param(
            [Stage("a", "0.1"), Stage("b", "0.2"), _won()], {"transitions": [("a", "won")]}, "unreachable", id="unreachable-stage"
        ),
        pytest.param(
            [Stage("a", "0.1"), _won()], {"transitions": [("a", "won"), ("won", "a")]}, "final_has_exit", id="final-with-exit"
        ),
        pytest.param([Stage("a", "0.1"), _won()], {"reopen_to": ["won"]}, "unknown", id="reopen-to-closed"),
        pytest.param([Stage("a", "0.1"), _won()], {"reopen_to": ["zzz"]}, "unknown", id="reopen-to-unknown"),
    ],
)
def test_pipelines_built_wrong_are_refused(stages: list[Stage], kwargs: dict, code: str) -> None:
    with pytest.raises(ValidationError) as info:
        Pipeline("broken", stages, **kwargs)
    assert code in [e.code for e in info.value.errors]


@pytest.mark.parametrize("probability", ["1.5", -1, "abc", "NaN", None])
def test_stage_probabilities_must_be_between_0_and_1(probability: object) -> None:
    with pytest.raises(ValidationError):
        Stage("x", probability)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Stage("x", "0.5", kind="closed"), "kind"),
        (lambda: Stage("x", "0.5", kind="WON"), "kind"),
        (lambda: Stage("x", "0.5", forecast_category="maybe"), "forecast_category"),
        (lambda: Pipeline("p", [{"name": "x"}]), "stages"),
        (lambda: Pipeline("p", "abc"), "stages"),
        (lambda: Pipeline("p", [Stage("a", "0.1")], transitions=[("a",)]), "transitions"),
        (lambda: Pipeline("p", [Stage("a", "0.1")], transitions=5), "transitions"),
        (lambda: Pipeline("p", [Stage("a", "0.1")], reopen_to=3), "reopen_to"),
    ],
)
def test_malformed_definitions_are_validation_errors_naming_the_part(build: object, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        build()  # type: ignore[operator]
    assert info.value.fields == [field]


def test_pipelines_can_be_built_from_plain_data() -> None:
    p = Pipeline(
        "from-json-test",
        [{"name": "new", "probability": "0.2"}, {"name": "won", "probability": 1, "kind": "won", "forecast_category": "closed"}],
        transitions=[["new", "won"]],
    )
    assert p.stage("won").kind is StageKind.WON
    assert p.can_move("new", "won") and not p.can_move("won", "new")


def test_a_new_deal_starts_in_its_pipelines_first_stage() -> None:
    renewals = register_pipeline(
        Pipeline("renewals-test", [Stage("due", "0.5"), Stage("renewed", 1, kind="won"), Stage("churned", 0, kind="lost")])
    )
    assert Opportunity("c1", "Renewal", Money(1, "CNY"), pipeline="renewals-test").stage == "due"
    assert Opportunity("c1", "Renewal", Money(1, "CNY"), pipeline=renewals).probability == Decimal("0.5")
    assert Opportunity("c1", "New", Money(1, "CNY")).stage == "prospecting"
