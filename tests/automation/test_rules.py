"""Rules as data (pycrm.automation._rules): loading and checking, loops refused, and firing once per event as the
automation actor, on every adapter."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pycrm
from pycrm import Customer, Money, Opportunity, Task, User, ValidationError
from pycrm.automation import AUTOMATION, CustomEvent, Rules, StageChanged, install_rules, load_rules
from pycrm.automation._calendar import BusinessCalendar
from pycrm.automation._rules import HANDLER_NAME, firing_key
from pycrm.domain._events import CustomerUpdated, RuleFired
from pycrm.storage.port import Outbox

FOLLOW_UP = {
    "name": "proposal follow-up",
    "when": "StageChanged",
    "if": {"to_stage": "proposal"},
    "then": [{"create_task": {"title": "Follow up {record.name}", "due_in_business_days": 2, "assignee": "owner"}}],
}
FRIDAY = dt.datetime(2026, 12, 4, 10, 30, tzinfo=dt.UTC)


def _deal(crm: pycrm.CRM, owner: str | None = "u1", name: str = "Big deal") -> Opportunity:
    with crm.session() as s:
        c = s.customers.add(Customer("Acme", owner_id=owner))
        return s.opportunities.add(Opportunity(str(c.id), name, Money(1000, "USD"), owner_id=owner))


def _move(crm: pycrm.CRM, id: str, stage: str) -> None:
    with crm.session() as s:
        o = s.opportunities.get(id)
        o.move_to(stage)
        s.opportunities.update(o)


def _tasks(crm: pycrm.CRM) -> list[Task]:
    with crm.session() as s:
        return s.tasks.find(order_by="id")


def _events(crm: pycrm.CRM, name: str) -> list[Any]:
    return [e.event for e in crm.outbox.entries() if e.name == name]


# ---------------------------------------------------------------- the worked example and each action


def test_a_deal_entering_proposal_creates_a_follow_up_task_for_its_owner(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(outbox=True)
    install_rules(crm, [FOLLOW_UP])
    deal = _deal(crm)
    _move(crm, str(deal.id), "qualification")
    crm.dispatch()
    assert _tasks(crm) == []  # another stage: the rule's `if` does not hold
    _move(crm, str(deal.id), "proposal")
    result = crm.dispatch()
    assert result.failures == 0 and result.dead == 0
    (task,) = _tasks(crm)
    assert task.title == "Follow up Big deal"
    assert task.assignee_id == "u1" and task.related_id == deal.id
    (moved,) = [e for e in _events(crm, "StageChanged") if e.to_stage == "proposal"]
    assert task.due_at == BusinessCalendar().add_business_days(moved.at, 2)
    # the firing is recorded, once, as the automation actor; the audit trail names it
    (fired,) = _events(crm, "RuleFired")
    assert (fired.rule, fired.cause, fired.entity_id, fired.actor_id) == ("proposal follow-up", moved.key, deal.id, "automation")
    (created,) = crm.audit.history(str(task.id))
    assert created.actor_id == "automation" and created.action == "create"
    assert [e.actor_id for e in _events(crm, "TaskCreated")] == ["automation"]


def test_business_days_skip_the_weekend() -> None:
    crm = pycrm.open("memory://", outbox=True)
    rules = install_rules(crm, [FOLLOW_UP])
    deal = _deal(crm)
    event = StageChanged(entity_id=deal.id, pipeline="default", from_stage="prospecting", to_stage="proposal", at=FRIDAY)
    assert rules.handle(event) == 1
    (task,) = _tasks(crm)
    assert task.due_at == dt.datetime(2026, 12, 8, 10, 30, tzinfo=dt.UTC)  # Friday + 2 working days: Tuesday


def test_a_host_calendar_and_due_in_hours() -> None:
    crm = pycrm.open("memory://", outbox=True)
    shanghai = BusinessCalendar(timezone="Asia/Shanghai", holidays=["2026-12-07"])
    rules = install_rules(
        crm,
        [
            FOLLOW_UP,
            {
                "name": "call back",
                "when": "StageChanged",
                "then": [{"create_task": {"title": "Call", "due_in_hours": 4, "assignee": "u9", "related": None}}],
            },
        ],
        calendar=shanghai,
    )
    deal = _deal(crm)
    rules.handle(StageChanged(entity_id=deal.id, to_stage="proposal", at=FRIDAY))
    by_title = {t.title: t for t in _tasks(crm)}
    assert by_title["Follow up Big deal"].due_at == dt.datetime(2026, 12, 9, 10, 30, tzinfo=dt.UTC)  # Monday off
    assert by_title["Call"].due_at == FRIDAY + dt.timedelta(hours=4)
    assert (by_title["Call"].assignee_id, by_title["Call"].related_id) == ("u9", None)


def test_assign_owner_set_field_move_to_stage_and_emit(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(outbox=True)
    turns = iter(["u7", "u8"])
    picked: list[Any] = []

    def next_rep(session: Any, record: Any) -> str:
        picked.append(record.id)
        return next(turns)

    install_rules(
        crm,
        [
            {"name": "route new customers", "when": "CustomerCreated", "then": [{"assign_owner": {"assigner": "round"}}]},
            {
                "name": "qualified customers",
                "when": "OpportunityCreated",
                "then": [{"set_field": {"expected_close": "2027-01-31"}}, {"move_to_stage": "qualification"}],
            },
            {
                "name": "won",
                "when": "DealWon",
                "then": [{"emit": {"name": "deal.celebrate", "data": {"bell": 1}}}],
            },
        ],
        assigners={"round": next_rep},
    )
    heard: list[CustomEvent] = []
    crm.on("deal.celebrate", name="bell")(heard.append)
    deal = _deal(crm, owner=None)
    result = crm.dispatch()
    assert result.failures == 0
    with crm.session() as s:
        customer = s.customers.get(deal.customer_id)
        stored = s.opportunities.get(str(deal.id))
    assert customer.owner_id == "u7" and picked == [customer.id]
    assert stored.stage == "qualification" and stored.expected_close == dt.date(2027, 1, 31)
    assert stored.stage_history[-1].by == "automation"
    assert [e.to_user for e in _events(crm, "Assigned")] == ["u7"]
    with crm.session() as s:
        o = s.opportunities.get(str(deal.id))
        o.win()
        s.opportunities.update(o)
    crm.dispatch()
    assert [(e.name, e.payload, e.entity_id, e.actor_id) for e in heard] == [
        ("deal.celebrate", {"bell": 1}, deal.id, "automation")
    ]


def test_where_is_on_the_record(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(outbox=True)
    install_rules(
        crm,
        [
            {
                "name": "vip",
                "when": "CustomerUpdated",
                "if": {"fields": "status"},
                "where": {"status": "active", "country": {"in": ["CN", "DE"]}},
                "then": [{"set_field": {"category": "vip"}}],
            }
        ],
    )
    with crm.session() as s:
        cn = s.customers.add(Customer("Cn", country="CN"))
        us = s.customers.add(Customer("Us", country="US"))
    with crm.session() as s:
        for c in (s.customers.get(str(cn.id)), s.customers.get(str(us.id))):
            c.status = "active"
            s.customers.update(c)
    assert crm.dispatch().failures == 0
    with crm.session() as s:
        assert s.customers.get(str(cn.id)).category == "vip"
        assert s.customers.get(str(us.id)).category is None
    assert [e.entity_id for e in _events(crm, "RuleFired")] == [cn.id]  # the one the rule changed: `if` on fields


def test_a_rule_fires_once_per_event_however_often_it_is_delivered(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(outbox=True)
    rules = install_rules(crm, [FOLLOW_UP])
    deal = _deal(crm)
    _move(crm, str(deal.id), "proposal")
    crm.dispatch()
    (event,) = [e for e in _events(crm, "StageChanged")]
    assert rules.handle(event) == 0  # delivered again: the marker is there, nothing happens
    assert rules.handle(event) == 0
    assert len(_tasks(crm)) == 1 and len(_events(crm, "RuleFired")) == 1
    other = StageChanged(entity_id=deal.id, to_stage="proposal")  # another event: fires
    assert rules.handle(other) == 1 and len(_tasks(crm)) == 2
    assert _events(crm, "RuleFired")[-1].key == firing_key("proposal follow-up", other.key)


def test_one_handler_is_installed(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(outbox=True)
    rules = Rules(crm, [FOLLOW_UP, {**FOLLOW_UP, "name": "other", "when": "vip.welcome", "about": "opportunities"}])
    rules.install()
    assert [h.name for h in crm.handlers] == [HANDLER_NAME]
    with pytest.raises(ValidationError, match="is registered"):
        rules.install()


# ---------------------------------------------------------------- failures, scope, records gone


def test_a_failing_action_is_recorded_and_rolled_back(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(outbox=True)
    install_rules(
        crm,
        [
            {
                "name": "reopen",
                "when": "DealWon",
                "then": [{"create_task": {"title": "Won", "due_in_hours": 1}}, {"move_to_stage": "proposal"}],
            }
        ],
    )
    deal = _deal(crm)
    with crm.session() as s:
        o = s.opportunities.get(str(deal.id))
        o.win()
        s.opportunities.update(o)
    result = crm.dispatch()
    assert result.failures == 1 and result.retrying == 1
    (entry,) = [e for e in crm.outbox.entries("pending")]
    assert entry.name == "DealWon" and "'reopen'" in (entry.error or "") and "TransitionError" in (entry.error or "")
    assert _tasks(crm) == [] and _events(crm, "RuleFired") == []  # the marker went with the actions


def test_a_record_gone_is_skipped_not_retried(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(outbox=True)
    install_rules(
        crm,
        [{"name": "tag", "when": "CustomerUpdated", "if": {"fields": "status"}, "then": [{"set_field": {"category": "seen"}}]}],
    )
    with crm.session() as s:
        c = s.customers.add(Customer("Gone Co"))
    with crm.session() as s:
        got = s.customers.get(str(c.id))
        got.status = "active"
        s.customers.update(got)
    with crm.session() as s:
        s.customers.delete(str(c.id))
    result = crm.dispatch()
    assert result.failures == 0 and result.dead == 0 and crm.outbox.counts()["pending"] == 0
    assert _events(crm, "RuleFired") == []


def test_a_narrower_automation_actor_stays_in_its_scope(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(outbox=True)
    bot = User("Bot", "bot@example.com", roles=["sales"], id="bot")
    install_rules(
        crm,
        [{"name": "tag", "when": "CustomerUpdated", "if": {"fields": "status"}, "then": [{"set_field": {"category": "seen"}}]}],
        actor=bot,
    )
    with crm.session() as s:
        mine = s.customers.add(Customer("Mine", owner_id="bot"))
        theirs = s.customers.add(Customer("Theirs", owner_id="u2"))
    with crm.session() as s:
        for id in (mine.id, theirs.id):
            c = s.customers.get(str(id))
            c.status = "active"
            s.customers.update(c)
    result = crm.dispatch()
    assert result.failures == 1
    (entry,) = crm.outbox.entries("pending")
    assert entry.event is not None and entry.event.entity_id == theirs.id
    assert "NotFound" in (entry.error or "")
    with crm.session() as s:
        assert s.customers.get(str(mine.id)).category == "seen"
        assert s.customers.get(str(theirs.id)).category is None
    assert [(e.entity_id, e.actor_id) for e in _events(crm, "RuleFired")] == [(mine.id, "bot")]


def test_an_actor_that_may_read_but_not_write_fails_the_rule(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(outbox=True)
    desk = User("Desk bot", "desk@example.com", roles=["support"], id="desk")  # reads every customer, updates none
    rule = {"name": "tag", "when": "CustomerCreated", "then": [{"set_field": {"category": "new"}}]}
    install_rules(crm, [rule], actor=desk)
    with crm.session() as s:
        c = s.customers.add(Customer("Read Only Co"))
    result = crm.dispatch()
    assert result.failures == 1
    (entry,) = crm.outbox.entries("pending")
    assert "'tag': PermissionDenied" in (entry.error or "")
    with crm.session() as s:
        assert s.customers.get(str(c.id)).category is None
    assert _events(crm, "RuleFired") == []
    (denied,) = [e for e in crm.audit.entries() if e.action == "permission_denied"]
    assert denied.actor_id == "desk"


def test_the_marker_is_not_reachable_through_an_actors_transaction(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(outbox=True)
    rep = User("Rep", "rep@example.com", roles=["sales"], id="u1")
    marker = RuleFired(rule="r", cause="c1", key=firing_key("r", "c1"))
    with crm.session(rep) as s:
        tx = s._transaction()
        assert not isinstance(tx, Outbox) and not hasattr(tx, "outbox_add")
        with pytest.raises(ValidationError, match="RuleFired"):
            s._fire_once(CustomEvent(name="x"))  # type: ignore[arg-type]
    with crm.session(AUTOMATION) as s:
        assert s._fire_once(marker) is True
    with crm.session(AUTOMATION) as s:
        assert s._fire_once(marker) is False
    with crm.session() as s:
        assert s._fire_once(RuleFired(rule="r", cause="c2", key=firing_key("r", "c2"))) is True
        s.rollback()  # rolled back: not there
    with crm.session() as s:
        assert s._fire_once(RuleFired(rule="r", cause="c2", key=firing_key("r", "c2"))) is True
    plain = open_crm() if crm.url != "memory://" else pycrm.open("memory://")
    with plain.session() as s, pytest.raises(pycrm.CRMError, match="outbox"):
        s._fire_once(marker)


# ---------------------------------------------------------------- loading and checking


def _problems(source: Any, **kw: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        load_rules(source, **kw)
    return {e.field: e.code for e in info.value.errors}


def test_every_problem_of_a_rule_file_is_named_by_its_path() -> None:
    bad = [
        {"name": "a", "when": "StageChangd", "then": [{"create_task": {"title": "x", "due_in_hours": 1}}]},
        {
            "name": "b",
            "when": "StageChanged",
            "if": {"to_stag": "proposal", "pipeline": {"like": "x"}},
            "where": {"amount_x": 1},
            "then": [
                {"create_task": {"title": "Call {record.nme} {record.stage_history}", "due_in_business_days": -1}},
                {"create_tsk": {}},
                {"set_field": {"stage": "won", "expected_close": "soon", "nope": 1}},
                {"move_to_stage": "nowhere"},
                {"emit": {"name": "Bad Name"}},
                {"assign_owner": {"assigner": "nobody"}},
            ],
        },
        {"name": "b", "when": "vip.welcome", "then": [{"set_field": {"status": "active"}}]},
        {"name": "c", "when": "CustomerDeleted", "then": [{"set_field": {"status": "active"}}]},
        {"name": "d", "when": "Updated", "extra": 1, "then": [{"create_task": {"title": "{record.name}", "due_in_hours": 1}}]},
        {"name": "e", "when": "TicketOpened", "then": []},
    ]
    got = _problems(bad, assigners=["round"])
    assert got == {
        "rules[0].when": "unknown_event",
        "rules[1].if.to_stag": "unknown_field",
        "rules[1].if.pipeline": "unknown_operator",
        "rules[1].where.amount_x": "unknown_field",
        "rules[1].then[0].create_task.title": "invalid_placeholder",
        "rules[1].then[0].create_task.due_in_business_days": "range",
        "rules[1].then[1].create_tsk": "unknown_action",
        "rules[1].then[2].set_field.stage": "read_only",
        "rules[1].then[2].set_field.expected_close": got["rules[1].then[2].set_field.expected_close"],
        "rules[1].then[2].set_field.nope": "unknown_field",
        "rules[1].then[3].move_to_stage": "unknown_stage",
        "rules[1].then[4].emit.name": "invalid_name",
        "rules[1].then[5].assign_owner.assigner": "unknown_assigner",
        "rules[2].then[0].set_field": "needs_about",
        "rules[3]": "record_gone",
        "rules[4].extra": "unknown_key",
        "rules[4].then[0].create_task.title": "needs_about",
        "rules[5].then": "type",
    }
    with pytest.raises(ValidationError) as info:
        load_rules(bad, assigners=["round"])
    text = str(info.value)
    assert "{record.nme}" in text and "{record.stage_history}" in text  # both placeholders named
    assert _problems([FOLLOW_UP, FOLLOW_UP]) == {"rules[1].name": "duplicate"}


def test_rules_load_from_json_and_toml_text_and_files(tmp_path: Path) -> None:
    toml = """
[[rules]]
name = "proposal follow-up"
when = "StageChanged"
if = { to_stage = "proposal" }
then = [{ create_task = { title = "Follow up {record.name}", due_in_business_days = 2, assignee = "owner" } }]
"""
    from_list = load_rules([FOLLOW_UP])
    assert load_rules(json.dumps([FOLLOW_UP])) == from_list
    assert load_rules(json.dumps({"rules": [FOLLOW_UP]})) == from_list
    assert load_rules(toml) == from_list
    (tmp_path / "rules.toml").write_text(toml, encoding="utf-8")
    (tmp_path / "rules.json").write_text(json.dumps([FOLLOW_UP]), encoding="utf-8")
    assert load_rules(tmp_path / "rules.toml") == from_list
    assert load_rules(str(tmp_path / "rules.json")) == from_list
    assert _problems(tmp_path / "missing.json") == {"source": "unreadable"}
    assert _problems(str(tmp_path / "rules.yaml")) == {"source": "invalid_source"}
    assert _problems("[{") == {"source": "invalid_json"}
    assert _problems("name = ") == {"source": "invalid_toml"}
    assert _problems(42) == {"rules": "type"}


def test_a_rule_that_triggers_itself_is_refused() -> None:
    self_loop = {
        "name": "touch",
        "when": "Updated",
        "about": "customers",
        "then": [{"set_field": {"category": "touched"}}],
    }
    with pytest.raises(ValidationError, match=r"'touch' triggers itself in a loop \(touch -> touch\)") as info:
        load_rules([self_loop])
    assert [(e.field, e.code) for e in info.value.errors] == [("rules[0]", "loop")]
    # not when its `if` excludes what its own action changes, nor when it is about another repository
    load_rules([{**self_loop, "if": {"fields": "status"}}])
    load_rules([{**self_loop, "when": "CustomerCreated"}])
    # every firing raises RuleFired: a rule on RuleFired listens to itself, unless its `if` names another rule
    on_fired = {"name": "meta", "when": "RuleFired", "then": [{"create_task": {"title": "x", "due_in_hours": 1}}]}
    assert _problems([on_fired]) == {"rules[0]": "loop"}
    load_rules([{**on_fired, "if": {"rule": "proposal follow-up"}}, FOLLOW_UP])


def test_rules_that_trigger_each_other_are_refused() -> None:
    ping = {"name": "ping", "when": "ping", "about": "customers", "then": [{"emit": "pong"}]}
    pong = {"name": "pong", "when": "pong", "about": "customers", "then": [{"emit": "ping"}]}
    fine = {"name": "fine", "when": "pong", "then": [{"create_task": {"title": "x", "due_in_hours": 1}}]}
    with pytest.raises(ValidationError, match=r"rules 'ping', 'pong' trigger each other in a loop \(ping -> pong -> ping\)"):
        load_rules([fine, ping, pong])
    # stage moves: a rule moving deals out of "proposal" on entering "proposal" does not loop; into it, it does
    hop = {"name": "hop", "when": "StageChanged", "if": {"to_stage": "proposal"}, "then": [{"move_to_stage": "negotiation"}]}
    load_rules([hop])
    back = {"name": "back", "when": "StageChanged", "if": {"to_stage": "negotiation"}, "then": [{"move_to_stage": "proposal"}]}
    assert _problems([hop, back]) == {"rules[0]": "loop"}
    # a task created by a rule on tasks created
    task_loop = {"name": "t", "when": "Created", "then": [{"create_task": {"title": "x", "due_in_hours": 1}}]}
    assert _problems([task_loop]) == {"rules[0]": "loop"}
    load_rules([{**task_loop, "about": "customers"}])


def test_bad_arguments_of_rules() -> None:
    crm = pycrm.open("memory://", outbox=True)
    with pytest.raises(ValidationError, match="crm"):
        Rules("not a crm", [FOLLOW_UP])
    with pytest.raises(pycrm.CRMError, match=r"outbox=True"):
        Rules(pycrm.open("memory://"), [FOLLOW_UP])
    with pytest.raises(ValidationError, match="actor"):
        Rules(crm, [FOLLOW_UP], actor="automation")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="calendar"):
        Rules(crm, [FOLLOW_UP], calendar=object())  # type: ignore[arg-type]
    rule = {"name": "r", "when": "CustomerCreated", "then": [{"assign_owner": {"assigner": "rr"}}]}
    with pytest.raises(ValidationError, match="assigner"):
        Rules(crm, [rule])
    loaded = load_rules([rule])  # names not checked without assigners: Rules checks them
    with pytest.raises(ValidationError, match="rr"):
        Rules(crm, loaded)
    Rules(crm, loaded, assigners={"rr": lambda s, r: None})


def test_an_assigner_giving_nobody_leaves_the_record_as_it_is() -> None:
    crm = pycrm.open("memory://", outbox=True)
    install_rules(
        crm,
        [{"name": "r", "when": "CustomerCreated", "then": [{"assign_owner": {"assigner": "none"}}]}],
        assigners={"none": lambda s, r: None},
    )
    with crm.session() as s:
        c = s.customers.add(Customer("Nobody Co", owner_id="u1"))
    assert crm.dispatch().failures == 0
    with crm.session() as s:
        assert s.customers.get(str(c.id)).owner_id == "u1"


def test_custom_events_and_if_on_their_data(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(outbox=True)
    install_rules(
        crm,
        [
            {
                "name": "welcome",
                "when": "vip.welcome",
                "about": "customers",
                "if": {"tier": {"in": ["gold", "platinum"]}},
                "then": [{"create_task": {"title": "Welcome {record.name} ({record.country})", "due_in_hours": 2}}],
            }
        ],
    )
    with crm.session() as s:
        c = s.customers.add(Customer("Gold Co", country="CN"))
        s.emit(CustomEvent(name="vip.welcome", data={"tier": "gold"}, entity="customers", entity_id=c.id))
        s.emit(CustomEvent(name="vip.welcome", data={"tier": "tin"}, entity="customers", entity_id=c.id))
    assert crm.dispatch().failures == 0
    assert [(t.title, t.related_id) for t in _tasks(crm)] == [("Welcome Gold Co (CN)", c.id)]


def test_the_event_must_be_about_the_rules_repository() -> None:
    crm = pycrm.open("memory://", outbox=True)
    rules = Rules(crm, [{"name": "r", "when": "Updated", "about": "customers", "then": [{"emit": "x"}]}])
    assert rules.matching(CustomerUpdated(entity_id="c1")) == rules.rules
    assert rules.matching(StageChanged(entity_id="o1")) == []


def test_an_assigner_on_a_custom_event_about_no_record() -> None:
    crm = pycrm.open("memory://", outbox=True)
    seen: list[Any] = []

    def pick(session: Any, record: Any) -> str:
        seen.append(record)
        return "u3"

    install_rules(
        crm,
        [
            {
                "name": "n",
                "when": "night.shift",
                "then": [{"create_task": {"title": "Check", "due_in_hours": 8, "assignee": {"assigner": "pick"}}}],
            }
        ],
        assigners={"pick": pick},
    )
    with crm.session() as s:
        s.emit(CustomEvent(name="night.shift"))
    assert crm.dispatch().failures == 0
    assert [(t.assignee_id, t.related_id) for t in _tasks(crm)] == [("u3", None)] and seen == [None]


def test_a_broken_assigner_fails_its_rule_only() -> None:
    crm = pycrm.open("memory://", outbox=True)

    def broken(session: Any, record: Any) -> str:
        raise RuntimeError("the roster is down")

    install_rules(
        crm,
        [
            {"name": "route", "when": "CustomerCreated", "then": [{"assign_owner": {"assigner": "broken"}}]},
            {"name": "greet", "when": "CustomerCreated", "then": [{"create_task": {"title": "Greet", "due_in_hours": 1}}]},
        ],
        assigners={"broken": broken},
    )
    with crm.session() as s:
        s.customers.add(Customer("Roster Co"))
    result = crm.dispatch()
    assert result.failures == 1
    (entry,) = [e for e in crm.outbox.entries("pending") if e.name == "CustomerCreated"]
    assert "'route': RuntimeError: the roster is down" in (entry.error or "")
    assert [t.title for t in _tasks(crm)] == ["Greet"]  # the other rule fired, once
    crm.dispatch(now=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))  # retried: greet does not fire again
    assert [t.title for t in _tasks(crm)] == ["Greet"]


def test_a_bad_toml_file_names_each_problem(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        """
[[rules]]
name = "a"
when = "DealWon"
then = [{ create_task = { title = "Won {record.amount}", due_in_business_days = 2.5, assignee = "owner" } }]

[[rules]]
name = "b"
when = "TicketOpened"
then = [{ assign_owner = "owner" }, { set_field = { priority = "extreme" } }]
""",
        encoding="utf-8",
    )
    assert _problems(path) == {
        "rules[0].then[0].create_task.due_in_business_days": "range",
        "rules[1].then[0].assign_owner": "invalid_assignee",
        "rules[1].then[1].set_field.priority": _problems(path)["rules[1].then[1].set_field.priority"],
    }


def test_a_value_refused_when_the_rule_runs_names_the_rule_path() -> None:
    crm = pycrm.open(
        "memory://", outbox=True, custom_fields={"customers": [pycrm.CustomField("tier", "choice", choices=("gold",))]}
    )
    rule = {"name": "tier", "when": "CustomerCreated", "then": [{"set_field": {"custom.tier": "tin"}}]}
    install_rules(crm, [rule])
    with crm.session() as s:
        s.customers.add(Customer("Tin Co"))
    assert crm.dispatch().failures == 1
    (entry,) = crm.outbox.entries("pending")
    assert "'tier': ValidationError: rules[0].then[0].set_field.custom.tier" in (entry.error or "")
