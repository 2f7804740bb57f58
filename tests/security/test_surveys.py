"""Satisfaction surveys (``s.surveys``) end to end on every adapter: the entity's checks, the repository, the
row scopes that follow the survey's customer, the analyst's redacted comment (and filters that would read it),
erasure and export of a person's surveys, merges, events and backups; attacked as an intruder would."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

import pycrm
from pycrm import Customer, NotFound, PermissionDenied, Survey, User, ValidationError
from pycrm.io import backup, restore
from pycrm.storage._personal import ERASED_TEXT

UTC = dt.UTC
SENT = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LATER = SENT + dt.timedelta(hours=3)
REP = User("Rep", "rep@example.com", roles=["sales"], team_id="t1", id="u1")
OTHER_REP = User("Other", "other@example.com", roles=["sales"], team_id="t2", id="u2")
MANAGER = User("Boss", "boss@example.com", roles=["manager"], team_id="t1", id="m1")
SUPPORT = User("Desk", "desk@example.com", roles=["support"], id="d1")
ANALYST = User("Ana", "ana@example.com", roles=["analyst"], id="a1")
#: A host role that reads customers and nothing else: surveys are denied by default.
NOBODY = User("Guest", "guest@example.com", roles=[pycrm.Role("guest", [("customers", "read", "all")])], id="g1")


# ---------------------------------------------------------------- the entity


def test_a_survey_is_sent_then_answered() -> None:
    s = Survey("c1", "csat", SENT)
    assert s.score is None and s.answered_at is None and not s.is_answered
    s.answer(5, "kind and quick", at=LATER)
    assert (s.score, s.comment, s.answered_at, s.is_answered) == (5, "kind and quick", LATER, True)


@pytest.mark.parametrize(
    ("kind", "score", "ok"),
    [
        *[("csat", 1, True), ("csat", 5, True), ("csat", 0, False), ("csat", 6, False)],
        *[("nps", 0, True), ("nps", 10, True), ("nps", 11, False), ("nps", -1, False)],
    ],
)
def test_the_score_must_be_in_the_kind_s_scale(kind: str, score: int, ok: bool) -> None:
    if ok:
        assert Survey("c1", kind, SENT, score=score, answered_at=LATER).score == score
        return
    with pytest.raises(ValidationError) as info:
        Survey("c1", kind, SENT, score=score, answered_at=LATER)
    assert info.value.fields == ["score"] and info.value.errors[0].code == "out_of_range"


@pytest.mark.parametrize("bad", [True, False, 4.0, "4", [4]])
def test_a_score_that_is_not_a_whole_number_is_refused(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        Survey("c1", "nps", SENT, score=bad, answered_at=LATER)  # type: ignore[arg-type]
    assert info.value.fields == ["score"] and info.value.errors[0].code == "type"


def test_answered_at_goes_with_the_score_and_not_before_sent_at() -> None:
    with pytest.raises(ValidationError) as info:
        Survey("c1", "csat", SENT, score=4)
    assert info.value.fields == ["answered_at"] and info.value.errors[0].code == "required"
    with pytest.raises(ValidationError) as info:
        Survey("c1", "csat", SENT, answered_at=LATER)
    assert info.value.fields == ["answered_at"]
    with pytest.raises(ValidationError) as info:
        Survey("c1", "csat", SENT, score=4, answered_at=SENT - dt.timedelta(seconds=1))
    assert info.value.fields == ["answered_at"] and info.value.errors[0].code == "out_of_range"
    s = Survey("c1", "csat", SENT)
    with pytest.raises(ValidationError) as info:
        s.answer(4, at=SENT - dt.timedelta(days=1))
    assert info.value.fields == ["answered_at"] and s.score is None  # nothing changed
    with pytest.raises(ValidationError) as info:
        s.answer(9, at=LATER)
    assert info.value.fields == ["score"] and s.score is None


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(ValidationError) as info:
        Survey("", "ces", "not a date", comment="x" * 5001)  # type: ignore[arg-type]
    assert sorted(info.value.fields) == ["comment", "customer_id", "kind", "sent_at"]


# ---------------------------------------------------------------- the repository on every adapter


def _world(crm: pycrm.CRM) -> dict[str, str]:
    with crm.session() as s:
        mine = s.customers.add(Customer("Mine Co", owner_id="u1", team_id="t1"))
        team = s.customers.add(Customer("Team Co", owner_id="u3", team_id="t1"))
        theirs = s.customers.add(Customer("Theirs Co", owner_id="u2", team_id="t2"))
        a = s.surveys.add(Survey(str(mine.id), "csat", SENT, score=5, comment="lovely", answered_at=LATER, user_id="u1"))
        b = s.surveys.add(Survey(str(team.id), "nps", SENT, user_id="u1"))
        c = s.surveys.add(Survey(str(theirs.id), "csat", SENT, score=1, comment="SECRET rant", answered_at=LATER, user_id="u1"))
    return {"mine": str(mine.id), "team": str(team.id), "theirs": str(theirs.id), "a": str(a.id), "b": str(b.id), "c": str(c.id)}


def test_surveys_round_trip_filter_and_order(crm: pycrm.CRM) -> None:
    ids = _world(crm)
    with crm.session() as s:
        got = s.surveys.get(ids["a"])
        assert (got.kind, got.score, got.comment, got.answered_at, got.sent_at) == ("csat", 5, "lovely", LATER, SENT)
        assert got.version == 1 and got.created_at is not None
        assert {v.id for v in s.surveys.find({"score": {"gte": 4}})} == {ids["a"]}
        assert {v.id for v in s.surveys.find({"score": {"is_null": True}})} == {ids["b"]}
        assert [v.score for v in s.surveys.find({"kind": "csat"}, order_by="score")] == [1, 5]
        assert s.surveys.count({"customer_id": ids["theirs"]}) == 1
        pending = s.surveys.get(ids["b"])
        pending.answer(10, "would recommend", at=LATER)
        s.surveys.update(pending)
    with crm.session() as s:
        assert s.surveys.get(ids["b"]).score == 10
        s.surveys.delete(ids["b"])
        with pytest.raises(NotFound):
            s.surveys.get(ids["b"])


def test_a_survey_needs_a_stored_customer(crm: pycrm.CRM) -> None:
    with crm.session() as s, pytest.raises(ValidationError, match="no customer with id"):
        s.surveys.add(Survey("no-such-customer", "csat", SENT))


def test_the_scope_follows_the_survey_s_customer(crm: pycrm.CRM) -> None:
    ids = _world(crm)
    with crm.session(actor=REP) as s:  # sales: own customers' surveys only, even those rating someone else
        assert {v.id for v in s.surveys.find()} == {ids["a"]}
        assert s.surveys.count() == 1
    with crm.session(actor=MANAGER) as s:  # manager: the team's customers
        assert {v.id for v in s.surveys.find()} == {ids["a"], ids["b"]}
    with crm.session(actor=SUPPORT) as s:  # the help desk: every survey
        assert {v.id for v in s.surveys.find()} == {ids["a"], ids["b"], ids["c"]}
    with crm.session(actor=NOBODY) as s, pytest.raises(PermissionDenied, match="may not read surveys"):
        s.surveys.find()  # default deny: a role without a survey permission reads none


def test_an_intruder_gets_nothing_of_another_owner_s_survey(crm: pycrm.CRM) -> None:
    ids = _world(crm)
    with crm.session(actor=REP) as s:
        for call in (
            lambda: s.surveys.get(ids["c"]),
            lambda: s.surveys.delete(ids["c"]),
        ):
            with pytest.raises((NotFound, PermissionDenied)) as info:
                call()
            assert "SECRET" not in str(info.value)
        assert s.surveys.find({"customer_id": ids["theirs"]}) == []  # a filter cannot widen the scope
        assert s.surveys.find({"user_id": "u1"}) == [s.surveys.get(ids["a"])]  # rated agent != owner
        assert s.surveys.count({"comment": {"contains": "SECRET"}}) == 0
        with pytest.raises(ValidationError, match="no customer with id"):  # planting one on their customer
            s.surveys.add(Survey(ids["theirs"], "csat", SENT))
        mine = s.surveys.get(ids["a"])
        mine.customer_id = ids["theirs"]  # moving one's own survey onto their customer
        with pytest.raises((ValidationError, PermissionDenied)):
            s.surveys.update(mine)
    with crm.session() as s:
        assert s.surveys.get(ids["c"]).comment == "SECRET rant"
        assert s.surveys.get(ids["a"]).customer_id == ids["mine"]


def test_the_analyst_sees_scores_not_comments_and_cannot_filter_on_them(crm: pycrm.CRM) -> None:
    ids = _world(crm)
    with crm.session(actor=ANALYST) as s:
        got = s.surveys.get(ids["c"])
        assert got.score == 1 and got.comment == "***"
        assert all("SECRET" not in repr(v) for v in s.surveys.find())
        for call in (
            lambda: s.surveys.find({"comment": {"startswith": "SECRET"}}),
            lambda: s.surveys.count({"comment": "SECRET rant"}),
            lambda: s.surveys.find(order_by="comment"),
        ):
            with pytest.raises(ValidationError) as info:
                call()
            assert info.value.fields and "comment" in info.value.fields[0]
        with pytest.raises(PermissionDenied):
            s.surveys.update(got)  # the analyst changes nothing


# ---------------------------------------------------------------- personal data, merges, events, backups


def test_export_and_erasure_of_a_person_cover_their_surveys(crm: pycrm.CRM) -> None:
    ids = _world(crm)
    with crm.session() as s:
        out = s.personal.export(ids["theirs"])
        assert [v["comment"] for v in out["surveys"]] == ["SECRET rant"]
        counts = s.personal.erase(ids["theirs"])
        assert counts["surveys"] == 1
    with crm.session() as s:
        v = s.surveys.get(ids["c"])
        assert v.comment == ERASED_TEXT and v.score == 1 and v.answered_at == LATER  # the figures stay
        assert s.surveys.get(ids["a"]).comment == "lovely"  # someone else's stays
        assert s.personal.erase(ids["theirs"])["surveys"] == 0  # again: nothing left to change


def test_merging_customers_moves_their_surveys_and_unmerge_moves_them_back(crm: pycrm.CRM) -> None:
    ids = _world(crm)
    with crm.session() as s:
        record = s.customers.merge(ids["mine"], [ids["team"]])
        assert {v.customer_id for v in s.surveys.find({"id": {"in": [ids["a"], ids["b"]]}})} == {ids["mine"]}
    with crm.session() as s:
        s.customers.unmerge(record.id)
    with crm.session() as s:
        assert s.surveys.get(ids["b"]).customer_id == ids["team"]


def test_surveys_raise_their_events(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(outbox=True)
    with crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        v = s.surveys.add(Survey(str(c.id), "nps", SENT))
        v.answer(3, at=LATER)
        s.surveys.update(v)
        s.surveys.delete(str(v.id))
    names = [(e.name, e.event.entity) for e in crm.outbox.entries()][1:]
    assert names == [("SurveyCreated", "surveys"), ("SurveyUpdated", "surveys"), ("SurveyDeleted", "surveys")]


def test_backup_and_restore_keep_surveys(crm: pycrm.CRM, tmp_path: Path) -> None:
    _world(crm)
    result = backup(crm, tmp_path / "crm.jsonl.gz")
    assert result.counts["surveys"] == 3
    with pycrm.open(f"sqlite:///{tmp_path}/copy.db") as target:
        assert restore(target, tmp_path / "crm.jsonl.gz").ok
        with target.session() as s, crm.session() as t:
            assert sorted(map(repr, s.surveys.iter())) == sorted(map(repr, t.surveys.iter()))


def test_a_score_and_answered_at_left_apart_by_assignment_are_refused_by_the_store(crm: pycrm.CRM) -> None:
    """An assignment checks its own field; ``score`` and ``answered_at`` read each other, so the store checks
    both again before writing: a survey scored without an answer time (or the reverse) is never stored."""
    ids = _world(crm)
    with crm.session() as s:
        pending = s.surveys.get(ids["b"])
        pending.score = 7  # answer() sets answered_at too; a bare assignment does not
        with pytest.raises(ValidationError) as info:
            s.surveys.update(pending)
        assert info.value.fields == ["answered_at"]
        answered = s.surveys.get(ids["a"])
        answered.kind = "nps"  # a csat 5 is a valid nps score: fine
        s.surveys.update(answered)
        again = s.surveys.get(ids["a"])
        with pytest.raises(ValidationError) as info:
            again.score = 11
        assert info.value.fields == ["score"]
    with crm.session() as s:
        assert s.surveys.get(ids["b"]).score is None and s.surveys.get(ids["a"]).kind == "nps"


def test_the_change_feed_carries_surveys_to_another_store(crm: pycrm.CRM) -> None:
    from pycrm import Incoming
    from pycrm.domain._codec import to_data

    ids = _world(crm)
    with crm.session() as s:
        pending = s.surveys.get(ids["b"])
        pending.answer(8, "ok", at=LATER)
        s.surveys.update(pending)
    with crm.session() as s:  # the feed holds committed changes
        feed = [(e.entity, e.id, e.op) for e in s.changes.since(0) if e.entity == "surveys"]
        assert feed[-1] == ("surveys", ids["b"], "update")
        assert [e.fields for e in s.changes.since(0) if e.entity == "surveys"][-1] == ("answered_at", "comment", "score")
        incoming = [Incoming("customers", ids["team"], "upsert", 1, to_data(s.customers.get(ids["team"])))]
        incoming.append(Incoming("surveys", ids["b"], "upsert", 2, to_data(s.surveys.get(ids["b"]))))
    copy = pycrm.open("memory://")
    with copy.session() as t:
        assert len(t.changes.apply(incoming).applied) == 2
    with copy.session() as t:
        got = t.surveys.get(ids["b"])
        assert (got.score, got.comment, got.answered_at) == (8, "ok", LATER)


# ---------------------------------------------------------------- attacks (adversarial review)


def test_erasing_a_merged_away_customer_erases_the_comments_the_merge_moved(crm: pycrm.CRM) -> None:
    """The duplicate's surveys (and tickets) live on under the survivor; ``unmerge`` points them back. Erasing
    the merged-away person must erase their free text there too, or the unmerge brings the comments back."""
    from pycrm import Ticket

    ids = _world(crm)
    with crm.session() as s:
        ticket = s.tickets.add(Ticket(ids["theirs"], "SECRET complaint", description="SECRET details"))
        record = s.customers.merge(ids["mine"], [ids["theirs"]])
    with crm.session() as s:
        assert s.surveys.get(ids["c"]).customer_id == ids["mine"]  # moved to the survivor
        counts = s.personal.erase(ids["theirs"])  # the merged-away person
        assert counts["surveys"] == 1 and counts["tickets"] == 1
    with crm.session() as s:
        assert s.surveys.get(ids["c"]).comment == ERASED_TEXT and s.surveys.get(ids["c"]).score == 1
        assert s.tickets.get(str(ticket.id)).subject == ERASED_TEXT
        assert s.surveys.get(ids["a"]).comment == "lovely"  # the survivor's own survey stays
        s.customers.unmerge(record.id)
    with crm.session() as s:
        back = s.surveys.get(ids["c"])
        assert back.customer_id == ids["theirs"] and back.comment == ERASED_TEXT
        assert s.tickets.get(str(ticket.id)).description == ""
        assert all("SECRET" not in repr(v) for v in s.surveys.iter())
        assert s.personal.erase(ids["theirs"])["surveys"] == 0  # again (live now): nothing left


def test_another_owner_s_survey_is_not_there_for_any_call(crm: pycrm.CRM) -> None:
    ids = _world(crm)
    with crm.session(actor=REP) as s:
        forged = Survey(ids["theirs"], "csat", SENT, score=5, answered_at=LATER, id=ids["c"])
        forged.version = 1
        with pytest.raises(NotFound):
            s.surveys.update(forged)  # answering it by a forged object
        assert ids["c"] not in {v.id for v in s.surveys.iter()}
        assert s.surveys.find({"id": ids["c"]}) == [] and s.surveys.count({"id": {"in": [ids["c"]]}}) == 0
        with pytest.raises(NotFound):
            s.personal.export(ids["theirs"])
        # reports group only what the rep may read: its customer's survey, by agent, team or segment
        for by in ("agent", "team", "segment"):
            rows = list(s.analytics.satisfaction(by=by))
            assert sum(r.sent for r in rows) == 1 and all(r.csat_pct == 100 for r in rows)
    with crm.session() as s:
        v = s.surveys.get(ids["c"])
        assert (v.score, v.comment, v.version) == (1, "SECRET rant", 1)


def test_the_analyst_cannot_narrow_the_satisfaction_report_on_a_redacted_comment(crm: pycrm.CRM) -> None:
    _world(crm)
    with crm.session(actor=ANALYST) as s:
        for where in ({"comment": {"startswith": "S"}}, {"comment": {"is_null": False}}, {"comment": ""}):
            with pytest.raises(ValidationError) as info:
                s.analytics.satisfaction(where=where)
            assert info.value.fields == ["comment"]
        assert sum(r.sent for r in s.analytics.satisfaction(where={"score": {"lte": 1}})) == 1  # scores are visible


def _deep(n: int = 50_000) -> list[object]:
    out: list[object] = []
    cur = out
    for _ in range(n):
        nxt: list[object] = []
        cur.append(nxt)
        cur = nxt
    return out


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: Survey("c1", _deep(), SENT), "kind"),  # type: ignore[arg-type]
        (lambda: pycrm.analytics.satisfaction([], kind=_deep()), "kind"),  # type: ignore[arg-type]
        (lambda: pycrm.analytics.satisfaction([], period=_deep()), "period"),  # type: ignore[arg-type]
        (lambda: pycrm.analytics.satisfaction([], by=_deep()), "by"),  # type: ignore[arg-type]
        (lambda: Survey("c1", "csat", SENT, score=10**5000, answered_at=LATER), "score"),
        (lambda: Survey("c1", "csat", SENT, comment="x" * 10**6), "comment"),
        (lambda: Survey("c1", "csat", dt.datetime(2026, 3, 2, 9)), "sent_at"),  # naive
        (lambda: Survey("c1", "csat", SENT).answer(float("nan"), at=LATER), "score"),  # type: ignore[arg-type]
        (lambda: Survey("c1", "csat", SENT).answer(3, at=dt.datetime(2026, 3, 2, 12)), "at"),  # naive
    ],
)
def test_junk_arguments_are_a_validation_error_naming_the_field(call: Callable[[], object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        call()
    assert info.value.fields == [field]


def test_junk_arguments_to_the_store_s_survey_calls_name_the_field(crm: pycrm.CRM) -> None:
    _world(crm)
    with crm.session() as s:
        for call, field in (
            (lambda: s.analytics.satisfaction(kind=_deep()), "kind"),  # type: ignore[arg-type]
            (lambda: s.analytics.satisfaction(period=_deep()), "period"),  # type: ignore[arg-type]
            (lambda: s.analytics.satisfaction(start=float("nan")), "start"),  # type: ignore[arg-type]
            (lambda: s.surveys.find(limit=10**5000), "limit"),
            (lambda: s.surveys.find({"score": {"gte": float("nan")}}), "score"),
            (lambda: s.surveys.find({"score": 10**5000}), "score"),
        ):
            with pytest.raises(ValidationError) as info:
                call()
            assert info.value.fields and field in info.value.fields[0], (field, info.value.fields)


def test_a_masked_comment_and_a_hidden_score_are_never_written_back_nor_narrowed(
    open_crm: Callable[..., pycrm.CRM],
) -> None:
    """A host role that updates surveys but sees the comment redacted and the score hidden: what it reads is
    not what it writes back, and no filter, sort or report reads the values for it."""
    from pycrm.security import FieldRules

    crm = open_crm(field_rules=FieldRules({"editor": {"surveys.comment": "redact", "surveys.score": "hide"}}))
    role = pycrm.Role("editor", [("surveys", "read", "all"), ("surveys", "update", "all"), ("customers", "read", "all")])
    editor = User("Ed", "ed@example.com", roles=[role], id="e1")
    ids = _world(crm)
    with crm.session(actor=editor) as s:
        seen = s.surveys.get(ids["c"])
        assert (seen.comment, seen.score) == ("***", None)
        seen.user_id = "u9"  # a legitimate change of another field
        s.surveys.update(seen)
        for call in (
            lambda: s.surveys.count({"score": {"lte": 1}}),
            lambda: s.surveys.find({"score": None}),
            lambda: s.surveys.find({"comment": {"contains": "S"}}),
            lambda: s.surveys.find(order_by="score"),
            lambda: s.analytics.satisfaction(),
        ):
            with pytest.raises(ValidationError) as info:
                call()
            assert info.value.fields[0] in ("score", "comment")
    with crm.session() as s:
        stored = s.surveys.get(ids["c"])
        assert (stored.comment, stored.score, stored.user_id) == ("SECRET rant", 1, "u9")


@pytest.mark.parametrize("bad", [[1], {"a": 1}, 5, float("nan")])
def test_a_team_or_segment_that_is_not_a_text_is_a_validation_error_naming_the_entry(bad: object) -> None:
    surveys = [Survey("c1", "csat", SENT, score=3, answered_at=LATER, user_id="u1", id="s1")]
    with pytest.raises(ValidationError) as info:
        pycrm.analytics.satisfaction(surveys, by="team", teams={"u1": bad})  # type: ignore[dict-item]
    assert info.value.fields == ["teams['u1']"]
    with pytest.raises(ValidationError) as info:
        pycrm.analytics.satisfaction(surveys, by="segment", segments={"c1": bad})  # type: ignore[dict-item]
    assert info.value.fields == ["segments['c1']"]
    (row,) = pycrm.analytics.satisfaction(surveys, by=("team", "segment"), teams={"u1": "east"}, segments={"c1": None})
    assert (row.team_id, row.segment, row.sent) == ("east", None, 1)
