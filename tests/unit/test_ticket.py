"""The ticket lifecycle: new → open → pending ⇄ open → resolved → closed, resolved → open; closed is final."""

from __future__ import annotations

import copy
import datetime as dt
import enum
import itertools

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycrm import Ticket, TicketPriority, TicketStatus, TransitionError, ValidationError
from pycrm.domain import TICKET_LIFECYCLE, Lifecycle

S = TicketStatus
ALLOWED = {
    (S.NEW, S.OPEN),
    (S.OPEN, S.PENDING),
    (S.PENDING, S.OPEN),
    (S.OPEN, S.RESOLVED),
    (S.RESOLVED, S.CLOSED),
    (S.RESOLVED, S.OPEN),
}
AT = dt.datetime(2025, 5, 4, 8, 0, tzinfo=dt.UTC)


def snapshot(t: Ticket) -> dict:
    return copy.deepcopy(attrs.asdict(t, recurse=False))


def test_the_table_is_exactly_the_contracts() -> None:
    assert set(TICKET_LIFECYCLE.transitions) == ALLOWED
    assert TICKET_LIFECYCLE.initial is S.NEW
    assert set(TICKET_LIFECYCLE.finals) == {S.CLOSED}
    assert [s.value for s in S] == ["new", "open", "pending", "resolved", "closed"]
    assert [p.value for p in TicketPriority] == ["low", "normal", "high", "urgent"]
    assert Ticket("c1", "Printer on fire").status is S.NEW


@pytest.mark.parametrize(("a", "b"), list(itertools.product(S, S)))
def test_every_move(a: TicketStatus, b: TicketStatus) -> None:
    t = Ticket("c1", "发票抬头错误", status=a)
    before = snapshot(t)
    if (a, b) not in ALLOWED:
        with pytest.raises(TransitionError):
            t.move_to(b, at=AT)
        assert snapshot(t) == before
        return
    t.move_to(b.value, at=AT, by="agent-7")
    assert t.status is b
    assert (t.status_history[-1].from_status, t.status_history[-1].to_status) == (a.value, b.value)
    assert (t.status_history[-1].at, t.status_history[-1].by) == (AT, "agent-7")


@pytest.mark.parametrize("target", ["closed ", "Open", "reopened", "", None, 1])
def test_unknown_statuses_are_transition_errors_that_change_nothing(target: object) -> None:
    t = Ticket("c1", "Cannot log in", status="open")
    before = snapshot(t)
    with pytest.raises(TransitionError):
        t.move_to(target)  # type: ignore[arg-type]
    assert snapshot(t) == before


def test_closed_is_final() -> None:
    t = Ticket("c1", "Cannot log in")
    for s in ("open", "resolved", "closed"):
        t.move_to(s)
    for target in S:
        with pytest.raises(TransitionError):
            t.move_to(target)
    assert t.status is S.CLOSED


def test_timestamps_follow_the_moves() -> None:
    t1, t2, t3, t4 = (AT + dt.timedelta(hours=h) for h in (1, 2, 3, 4))
    t = Ticket("c1", "Printer on fire", priority="urgent")
    t.move_to("open", at=t1)
    assert t.first_response_at == t1
    t.move_to("pending", at=t2)
    t.move_to("open", at=t3)
    assert t.first_response_at == t1  # the first response stays the first
    t.move_to("resolved", at=t4)
    assert t.resolved_at == t4
    t.move_to("open", at=t4)  # reopened: no longer resolved
    assert t.resolved_at is None
    t.move_to("resolved", at=t4)
    t.move_to("closed", at=t4)
    assert t.closed_at == t4
    assert [c.to_status for c in t.status_history] == ["open", "pending", "open", "resolved", "open", "resolved", "closed"]


def test_sla_due_time_follows_the_priority() -> None:
    t = Ticket("c1", "Printer on fire", priority="urgent", created_at=AT)
    assert t.sla_due_at == AT + dt.timedelta(hours=4)
    assert t.is_breached(now=AT + dt.timedelta(hours=5))
    assert not t.is_breached(now=AT + dt.timedelta(hours=3))


@given(st.lists(st.sampled_from(list(S)), max_size=25))
def test_random_walks_never_leave_the_table(targets: list[TicketStatus]) -> None:
    t = Ticket("c1", "Random")
    for target in targets:
        before = t.status
        try:
            t.move_to(target)
        except TransitionError:
            assert t.status is before
        else:
            assert (before, target) in ALLOWED
    assert all((S(c.from_status), S(c.to_status)) in ALLOWED for c in t.status_history)


def test_lifecycles_built_wrong_are_refused() -> None:
    class Light(enum.Enum):
        RED = "red"
        GREEN = "green"
        BROKEN = "broken"

    with pytest.raises(ValidationError):  # BROKEN unreachable
        Lifecycle("light", Light, Light.RED, {(Light.RED, Light.GREEN)}, {Light.GREEN})
    with pytest.raises(ValidationError):  # a final state with a way out
        Lifecycle(
            "light",
            Light,
            Light.RED,
            {(Light.RED, Light.GREEN), (Light.GREEN, Light.BROKEN), (Light.BROKEN, Light.RED)},
            {Light.BROKEN},
        )
    ok = Lifecycle("light", Light, Light.RED, {(Light.RED, Light.GREEN), (Light.GREEN, Light.BROKEN)}, {Light.BROKEN})
    assert ok.can_move(Light.RED, Light.GREEN) and not ok.can_move(Light.BROKEN, Light.RED)


@pytest.mark.parametrize(
    ("field", "value"), [("priority", "critical"), ("status", "done"), ("subject", ""), ("subject", "x" * 501)]
)
def test_bad_ticket_fields_are_validation_errors(field: str, value: str) -> None:
    kwargs = {field: value}
    with pytest.raises(ValidationError) as info:
        Ticket("c1", **{"subject": "ok", **kwargs})
    assert info.value.fields == [field]
