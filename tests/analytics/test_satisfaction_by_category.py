"""``pycrm.analytics.satisfaction`` grouped by the category of the ticket each survey is about."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import attrs
import pytest

import pycrm
from pycrm import Survey
from pycrm.analytics import SatisfactionRow, satisfaction
from pycrm.analytics._service import SATISFACTION_GROUPS

AT = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
DONE = AT + dt.timedelta(hours=1)


def _nps(score: int | None, ticket: str | None, *, days: int = 0, agent: str | None = None) -> Survey:
    sent = AT + dt.timedelta(days=days)
    answered = None if score is None else sent + dt.timedelta(hours=1)
    return Survey("c1", "nps", sent, score=score, answered_at=answered, ticket_id=ticket, user_id=agent)


def test_the_row_has_a_category_after_the_segment_and_category_is_a_group() -> None:
    names = [a.name for a in attrs.fields(SatisfactionRow)]
    assert names[:5] == ["period", "user_id", "team_id", "segment", "category"]
    assert names[5:] == [
        *("sent", "answered", "response_rate", "mean_score", "csat_pct"),
        *("promoters", "passives", "detractors", "nps"),
    ]
    assert SATISFACTION_GROUPS == ("agent", "team", "segment", "category")


def test_surveys_about_no_ticket_or_an_unknown_one_fall_in_the_none_group_listed_last() -> None:
    cats = {"t1": "Billing/Invoice", "t2": "Billing", "t3": None}
    surveys = [
        _nps(10, "t1"),
        _nps(3, "t1"),
        _nps(9, "t2"),
        _nps(None, "t2"),
        _nps(8, "t3"),  # a ticket without a category
        _nps(0, "gone"),  # a ticket not in the mapping (deleted, or one the actor may not read)
        _nps(7, None),
    ]
    rows = satisfaction(surveys, kind="nps", by="category", categories=cats)
    got = [(r.category, r.sent, r.answered, r.promoters, r.passives, r.detractors, r.nps) for r in rows]
    assert got == [
        ("Billing", 2, 1, 1, 0, 0, Decimal("100.00")),
        ("Billing/Invoice", 2, 2, 1, 0, 1, Decimal("0.00")),
        (None, 3, 3, 0, 2, 1, Decimal("-33.33")),
    ]
    assert all(r.segment is None and r.team_id is None and r.user_id is None for r in rows)


def test_category_combines_with_agent_and_period_and_is_left_empty_when_not_grouped() -> None:
    cats = {"t1": "Hardware/Printer"}
    surveys = [_nps(10, "t1", agent="u1"), _nps(2, "t1", days=40, agent="u1"), _nps(9, None, agent="u2")]
    rows = satisfaction(surveys, kind="nps", by=("category", "agent"), period="month", categories=cats)
    assert [(r.period, r.user_id, r.category, r.sent) for r in rows] == [
        ("2026-03", "u1", "Hardware/Printer", 1),
        ("2026-03", "u2", None, 1),
        ("2026-04", "u1", "Hardware/Printer", 1),
    ]
    ungrouped = satisfaction(surveys, kind="nps", by="agent", categories=cats)
    assert [(r.user_id, r.category, r.sent) for r in ungrouped] == [("u1", None, 2), ("u2", None, 1)]


@pytest.mark.parametrize("categories", [None, [("t1", "Billing")], "Billing"])
def test_grouping_by_category_needs_a_mapping_of_ticket_ids(categories: object) -> None:
    with pytest.raises(pycrm.ValidationError) as exc:
        satisfaction([_nps(9, "t1")], kind="nps", by="category", categories=categories)  # type: ignore[arg-type]
    assert [(e.field, e.code) for e in exc.value.errors] == [("categories", "required")]
    with pytest.raises(pycrm.ValidationError) as bad:
        satisfaction([], by="ticket_category")
    assert bad.value.fields == ["by"]
