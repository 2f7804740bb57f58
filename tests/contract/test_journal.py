"""The journal on every adapter: the change feed (``s.changes``) and the hash-chained audit trail.

The feed gives one event per committed row change, in commit order, pageable by cursor without loss or
repeats, with nothing of a rolled-back unit of work; ``apply`` replays another system's changes
idempotently. The audit trail records who changed what (and who was refused), and ``verify`` names the
first entry edited, deleted or inserted behind the library's back.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa

import pycrm
from pycrm import Contact, Customer, Money, Order, PermissionDenied, User, ValidationError
from pycrm.domain._codec import to_data
from pycrm.security import chain_hash
from pycrm.storage._journal import ChangeEvent, Incoming

UTC = dt.UTC
T0 = dt.datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
ADMIN = User("Root", "root@example.com", roles=["admin"], id="admin-1")
SALES = User("Rep", "rep@example.com", roles=["sales"], team_id="t1", id="rep-1")


class Boom(Exception):
    pass


def _feed(crm: pycrm.CRM, cursor: int = 0) -> list[ChangeEvent]:
    with crm.session() as s:
        return s.changes.since(cursor, limit=100_000)


def _last(crm: pycrm.CRM) -> int:
    with crm.session() as s:
        return s.changes.last_seq()


def _brief(events: list[ChangeEvent]) -> list[tuple[str, str, str, int | None]]:
    return [(e.entity, e.id, e.op, e.version) for e in events]


# ---------------------------------------------------------------- the change feed


def test_every_change_yields_an_ordered_event_with_op_version_and_fields(crm: pycrm.CRM) -> None:
    start = _last(crm)
    with crm.session() as s:
        c = s.customers.add(Customer("Acme", emails=["sales@acme.com"]))
        k = s.contacts.add(Contact(c.id, "Lei", "Li"))
    with crm.session() as s:
        c = s.customers.get(c.id)
        c.name, c.status = "Acme Ltd", "active"
        s.customers.update(c)
    with crm.session() as s:
        s.contacts.delete(k.id)
        d = s.customers.add(Customer("ACME LIMITED", phones=["+86 138 0013 8000"]))
        o = s.orders.add(Order(d.id, T0, Money("10", "CNY")))
    with crm.session() as s:
        record = s.customers.merge(c.id, [d.id])
    with crm.session() as s:
        s.customers.unmerge(record.id)
    events = _feed(crm, start)
    assert _brief(events) == [
        ("customers", c.id, "create", 1),
        ("contacts", k.id, "create", 1),
        ("customers", c.id, "update", 2),
        ("contacts", k.id, "delete", None),
        ("customers", d.id, "create", 1),
        ("orders", o.id, "create", 1),
        # the merge: the order re-pointed, the duplicate removed, the survivor given its phone
        ("orders", o.id, "update", 2),
        ("customers", d.id, "delete", None),
        ("customers", c.id, "update", 3),
        # the unmerge: the phone taken off again (first: a unique key goes back with the duplicate), the
        # duplicate back as it was, the order back on it
        ("customers", c.id, "update", 4),
        ("customers", d.id, "create", 1),
        ("orders", o.id, "update", 3),
    ]
    assert [e.seq for e in events] == list(range(start + 1, start + 1 + len(events)))
    assert all(e.at.tzinfo is not None and e.actor_id is None for e in events)
    assert [e.at for e in events] == sorted(e.at for e in events)
    fields = [set(e.fields) for e in events]
    assert fields[2] == {"name", "status"}
    assert fields[6] == fields[11] == {"customer_id"}
    assert fields[8] == fields[9] == {"phones"}
    for i in (0, 1, 3, 4, 7, 10):  # creations and deletions name the fields the record had
        assert {"id", "created_at"} <= fields[i]
        assert not fields[i] & {"version", "updated_at"}
    assert "emails" in fields[0] and "first_name" in fields[3] and "phones" in fields[7]
    assert all(isinstance(f, str) for e in events for f in e.fields)  # names only, never values

    cursor = events[-1].seq
    with crm.session(actor=ADMIN) as s:
        by_admin = s.customers.add(Customer("By the admin"))
    with crm.session(actor=SALES) as s:
        s.customers.add(Customer("By the rep", owner_id=SALES.id))
    assert [(e.id == by_admin.id, e.actor_id) for e in _feed(crm, cursor)] == [(True, "admin-1"), (False, "rep-1")]


def test_since_pages_without_loss_or_repeats(crm: pycrm.CRM) -> None:
    for batch in range(3):
        with crm.session() as s:
            s.customers.add_many([Customer(f"C{batch}-{i}") for i in range(6)])
            first = s.customers.find({"name": f"C{batch}-0"})[0]
            first.status = "active"
            s.customers.update(first)
    assert len(_feed(crm)) == 21
    for limit in (1, 3, 7, 1000):
        seen: list[ChangeEvent] = []
        cursor = pages = 0
        while True:
            with crm.session() as s:
                page = s.changes.since(cursor, limit=limit)
            assert 0 <= len(page) <= limit
            if not page:
                break
            pages += 1
            if pages == 1:  # a change committed while the consumer is half way is picked up on a later page
                with crm.session() as s:
                    late = s.customers.add(Customer(f"Late for {limit}"))
            seen += page
            cursor = page[-1].seq
        everything = _feed(crm)
        assert seen == everything, limit  # no loss, no repeat, the late change included
        assert [e.seq for e in seen] == list(range(1, len(seen) + 1))
        assert (seen[-1].id, seen[-1].op, seen[-1].seq) == (late.id, "create", _last(crm))
    assert _feed(crm, _last(crm)) == []
    with crm.session() as s:
        for cursor, limit in ((-1, 10), (0, 0), ("5", 10), (True, 10)):
            with pytest.raises(ValidationError):
                s.changes.since(cursor, limit)  # type: ignore[arg-type]


def test_changes_of_a_rolled_back_session_never_appear(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        keep = s.customers.add(Customer("Kept"))
    start = _last(crm)
    with pytest.raises(Boom), crm.session() as s:
        gone = s.customers.add(Customer("Rolled back"))
        kept = s.customers.get(keep.id)
        kept.name = "Renamed, then rolled back"
        s.customers.update(kept)
        assert s.changes.since(start) == []  # not even inside the session before commit
        raise Boom
    assert _feed(crm, start) == []
    assert _last(crm) == start
    with crm.session() as s:
        before = s.changes.last_seq()
        with pytest.raises(ValidationError):  # all or none: the good change in the batch is not applied
            s.changes.apply(
                [
                    Incoming("customers", "inc-ok", "upsert", 1, _data(Customer("Fine", id="inc-ok"))),
                    Incoming("customers", "inc-bad", "upsert", 1, {**_data(Customer("X", id="inc-bad")), "status": "bogus"}),
                ]
            )
        after = s.customers.add(Customer("After the failure"))
        assert s.changes.last_seq() == before
    assert _brief(_feed(crm, start)) == [("customers", after.id, "create", 1)]
    with crm.session() as s:
        assert s.customers.count() == 2 and s.customers.get(keep.id).name == "Kept"
    assert gone.id not in {e.id for e in _feed(crm)}


def test_a_failed_block_keeps_the_journal_of_the_writes_before_it(open_crm: Any) -> None:
    """Entries of writes made before an atomic block are not undone with the block, even when a flush inside
    it (a big block flushes every few thousand entries) is what writes them. Entering a block writes nothing
    (the journal's locks are taken at commit or at a big flush, not ahead of the rows a block changes)."""
    crm = open_crm(audit=True)
    start = _last(crm)
    with crm.session() as s:
        before = s.customers.add(Customer("Before the block"))
        flushes = s._flushes
        with pytest.raises(Boom), s._atomic():
            assert s._flushes == flushes
            s.customers.add(Customer("In the failed block"))
            s._flush()
            raise Boom
        with pytest.raises(Boom), s._atomic():  # a failed block that did not flush
            s.customers.add(Customer("In another failed block"))
            raise Boom
        after = s.customers.add(Customer("After the block"))
    assert _brief(_feed(crm, start)) == [("customers", before.id, "create", 1), ("customers", after.id, "create", 1)]
    assert [e.entity_id for e in crm.audit.entries() if e.action == "create"][-2:] == [before.id, after.id]
    assert crm.audit.verify().ok


def _data(entity: Any) -> dict[str, Any]:
    if entity.created_at is None:
        object.__setattr__(entity, "created_at", T0)
        object.__setattr__(entity, "updated_at", T0)
    return to_data(entity)


def _snapshot(crm: pycrm.CRM) -> dict[str, Any]:
    with crm.session() as s:
        return {e.id: to_data(e) for e in s.customers.iter()}


def test_apply_is_idempotent_applies_next_versions_and_reports_conflicts(crm: pycrm.CRM) -> None:
    remote = _data(Customer("Remote Co", emails=["hq@remote.example"], id="r-1"))
    v1 = Incoming("customers", "r-1", "upsert", 1, remote)
    with crm.session() as s:
        result = s.changes.apply([v1])
    assert result.applied == [("customers", "r-1")] and not result.conflicts
    state, cursor = _snapshot(crm), _last(crm)
    with crm.session() as s:
        again = s.changes.apply([v1])
    assert again.unchanged == [("customers", "r-1")] and again.applied == [] and again.conflicts == []
    assert _snapshot(crm) == state  # the second delivery changed nothing ...
    assert _feed(crm, cursor) == []  # ... and told nobody anything changed

    v2 = Incoming("customers", "r-1", "upsert", 2, {**remote, "name": "Remote Co Ltd"})
    with crm.session() as s:
        assert s.changes.apply([v2]).applied == [("customers", "r-1")]
        assert s.changes.apply([v2]).unchanged == [("customers", "r-1")]
        c = s.customers.get("r-1")
        assert (c.name, c.version, [e.value for e in c.emails]) == ("Remote Co Ltd", 2, ["hq@remote.example"])
    assert [(e.op, e.version, e.fields) for e in _feed(crm, cursor)] == [("update", 2, ("name",))]

    with crm.session() as s:  # changed here meanwhile: the sender's next version is a conflict
        c = s.customers.get("r-1")
        c.status = "active"
        s.customers.update(c)
    state = _snapshot(crm)
    v3 = Incoming("customers", "r-1", "upsert", 3, {**remote, "name": "Remote Three"})
    v9 = Incoming("customers", "r-1", "upsert", 9, {**remote, "name": "Remote Nine"})
    fresh = Incoming("customers", "r-2", "upsert", 1, _data(Customer("Second", id="r-2")))
    with crm.session() as s:
        result = s.changes.apply([v3, v9, fresh])
    assert [(e, i) for e, i, _ in result.conflicts] == [("customers", "r-1"), ("customers", "r-1")]
    assert "local version 3" in result.conflicts[1][2] and "9" in result.conflicts[1][2]
    assert result.applied == [("customers", "r-2")]  # conflicts do not stop the others
    with crm.session() as s:
        assert s.customers.get("r-1").name == "Remote Co Ltd"
        assert s.customers.get("r-2").version == 1
    assert {k: v for k, v in _snapshot(crm).items() if k != "r-2"} == state

    gone = Incoming("customers", "r-2", "delete", 1)
    with crm.session() as s:
        assert s.changes.apply([Incoming("customers", "r-1", "delete", 2)]).conflicts  # a stale delete is refused
        assert s.changes.apply([gone]).applied == [("customers", "r-2")]
        assert s.changes.apply([gone]).unchanged == [("customers", "r-2")]
        assert s.customers.count() == 1

    theirs = Incoming("customers", "r-9", "upsert", 1, _data(Customer("Not mine", owner_id="someone-else", id="r-9")))
    with crm.session(actor=SALES) as s, pytest.raises(PermissionDenied):  # applied changes go through the scope
        s.changes.apply([theirs])
    with crm.session() as s:
        assert s.customers.count() == 1


# ---------------------------------------------------------------- the audit trail


def _entries(crm: pycrm.CRM) -> list[Any]:
    return list(crm.audit.entries())


def test_the_audit_trail_records_who_changed_what_and_who_was_refused(open_crm: Any) -> None:
    crm = open_crm()
    assert crm.audit.head() is None  # an empty trail has no anchor yet
    with crm.session() as s:
        s.users.add(User("Rep", "rep@example.com", team_id="t1", id=SALES.id))
    with crm.session(actor=ADMIN) as s:
        c = s.customers.add(Customer("Acme", owner_id="rep-1", status="lead"))
        d = s.customers.add(Customer("Acme dup", owner_id="someone-else"))
    with crm.session(actor=SALES) as s:
        mine = s.customers.get(c.id)
        mine.status = "active"
        s.customers.update(mine)
    with pytest.raises(PermissionDenied), crm.session(actor=SALES) as s:
        s.customers.delete(c.id)  # sales may not delete customers at all
    with crm.session(actor=SALES) as s, pytest.raises(PermissionDenied):
        assert s.orders.count() == 0  # reading orders is allowed ...
        s.users.delete(SALES.id)  # ... deleting users is not
    with crm.session(actor=ADMIN) as s:
        record = s.customers.merge(c.id, [d.id])
    with crm.session(actor=ADMIN) as s:
        s.customers.unmerge(record.id)
        s.customers.delete(d.id)

    everything = _entries(crm)
    assert [e.seq for e in everything] == list(range(1, len(everything) + 1))
    # the merge may also touch the survivor with nothing to fill in (an update with an empty diff): not asserted
    trail = [e for e in everything if e.diff or e.action != "update"]
    brief = [(e.action, e.entity, e.entity_id, e.actor_id) for e in trail]
    assert brief == [
        ("create", "users", "rep-1", None),
        ("create", "customers", c.id, "admin-1"),
        ("create", "customers", d.id, "admin-1"),
        ("update", "customers", c.id, "rep-1"),
        ("permission_denied", "customers", c.id, "rep-1"),
        ("permission_denied", "users", "rep-1", "rep-1"),
        ("delete", "customers", d.id, "admin-1"),  # the merge removes the duplicate ...
        ("merge", "customers", c.id, "admin-1"),  # ... and says what it did
        ("create", "customers", d.id, "admin-1"),
        ("unmerge", "customers", c.id, "admin-1"),
        ("delete", "customers", d.id, "admin-1"),
    ]
    assert trail[1].diff["name"] == [None, "Acme"] and trail[1].diff["owner_id"] == [None, "rep-1"]
    assert trail[3].diff == {"status": ["lead", "active"]}
    assert trail[4].diff["action"] == "delete" and "may not delete customers" in trail[4].diff["message"]
    assert trail[5].diff["action"] == "delete"
    assert trail[6].diff["name"] == ["Acme dup", None]
    assert trail[7].diff == {"merge_id": record.id, "duplicate_ids": [d.id]}
    assert trail[9].diff["merge_id"] == record.id
    assert all(e.at.tzinfo is not None for e in trail)
    assert all(json.loads(json.dumps(e.diff)) == e.diff for e in trail)

    with crm.session(actor=ADMIN) as s:
        history = s.audit.history(c.id)
    history = [e for e in history if e.diff or e.action != "update"]
    assert [e.action for e in history] == ["create", "update", "permission_denied", "merge", "unmerge"]
    assert [e.seq for e in history] == [e.seq for e in trail if e.entity_id == c.id]
    with crm.session() as s:
        assert [e.action for e in s.audit.history(d.id)] == ["create", "delete", "create", "delete"]
        assert s.audit.history("never-existed") == []
    assert crm.audit.verify().ok
    assert crm.audit.head() == (everything[-1].seq, everything[-1].hash)
    with pytest.MonkeyPatch.context() as mp:  # the anchor is read on its own, not by walking the whole trail
        mp.setattr(type(crm.audit), "_entries", lambda *a, **k: pytest.fail("head() read the whole trail"))
        assert crm.audit.head() == (everything[-1].seq, everything[-1].hash)

    quiet = open_crm(audit=False)  # the same database on SQL, a new store on memory
    entries, changes = len(_entries(quiet)), len(_feed(quiet))
    with quiet.session() as s:
        s.customers.add(Customer("Quiet"))
    assert len(_entries(quiet)) == entries  # nothing audited ...
    assert len(_feed(quiet)) == changes + 1  # ... while the change feed is kept all the same


def _batch(n: int) -> list[Customer]:
    """New customers of varied shapes: several e-mails and phones, addresses, custom values, tags, owners."""
    return [
        Customer(
            f"客户 {i}",
            kind="person" if i % 2 else "company",
            emails=[f"c{i}@example.com"] + ([f"Other.{i}@Example.org"] if i % 3 == 0 else []),
            phones=[f"+86 138{i:08d}"] if i % 4 else [],
            addresses=[{"city": "上海", "street": f"{i} 南京路"}] if i % 5 == 0 else [],
            tags=["vip"] if i % 7 == 0 else [],
            custom={"ref": f"r{i}"} if i % 2 else {},
            owner_id="rep-1" if i % 6 else None,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("actor", [None, ADMIN], ids=["system", "admin"])
def test_add_many_journals_each_new_row_as_add_does(open_crm: Any, adapter: str, actor: User | None) -> None:
    """add_many writes its journal in one pass (the audit diffs encoded together, drafts made in bulk, flushed
    every 2,000): the drafts equal those of journalling each row on its own, byte for byte, and the stored
    trail, across flushes, holds each row's created diff and verifies."""
    from pycrm.security._audit import created_diff
    from pycrm.storage._repository import stamp_new

    crm = open_crm()
    at = dt.datetime(2024, 3, 1, 9, 0, 0, 123456, tzinfo=UTC)
    rows = _batch(40)
    for i, c in enumerate(rows):
        stamp_new(c, at if i % 9 else at + dt.timedelta(days=i))  # mostly the write's time, some created before
    with crm.session(actor=actor) as one, crm.session(actor=actor) as bulk:
        for c in rows:
            one._journal(Customer, "create", None, c, at=at)
        bulk._journal_created(Customer, rows, at)
        assert bulk._changes == one._changes and bulk._audit == one._audit
        assert len(bulk._audit) == len(rows) and all(a["diff_text"] for a in bulk._audit)
        one.rollback()  # drafts of rows never stored: not written
        bulk.rollback()

    with crm.session() as s:
        s.users.add(User("Rep", "rep@example.com", team_id="t1", id="rep-1"))
    start = _last(crm)
    head = crm.audit.head()
    made = _batch(2_100)  # more than one flush
    with crm.session(actor=actor) as s:
        assert s.customers.add_many(made) == len(made)
        single = s.customers.add(Customer("One by one", emails=["one@example.com"]))
    events = _feed(crm, start)
    assert [(e.op, e.id, e.version) for e in events] == [("create", c.id, 1) for c in [*made, single]]
    assert {e.fields for e in events} == {events[-1].fields}  # every new row names the same fields as add's
    assert all(e.actor_id == (actor.id if actor else None) for e in events)
    trail = [e for e in _entries(crm) if head is None or e.seq > head[0]]
    assert [(e.action, e.entity_id) for e in trail] == [("create", c.id) for c in [*made, single]]
    assert all(e.diff == created_diff(to_data(c)) for e, c in zip(trail, [*made, single]))
    assert crm.audit.verify().ok

    # the first entry of the second flush, chained onto the hash the first flush left: a change of its diff,
    # its actor or its link is named
    second = trail[2000].seq
    for column, value in (("diff", '{"name":[null,"forged"]}'), ("actor_id", "forger"), ("prev_hash", "1" * 64)):
        if adapter == "memory":
            row = _row(crm, adapter, second)
            kept = row[column]
            row[column] = json.loads(value) if column == "diff" else value
        else:
            kept = _row(crm, adapter, second)[column]
            _sql(crm, f"UPDATE pycrm_audit SET {column} = :v WHERE seq = :seq", v=value, seq=second)
        result = crm.audit.verify()
        assert (result.ok, result.first_bad_seq) == (False, second), (column, result)
        if adapter == "memory":
            row[column] = kept
        else:
            _sql(crm, f"UPDATE pycrm_audit SET {column} = :v WHERE seq = :seq", v=kept, seq=second)
    assert crm.audit.verify().ok


NOT_EVERYTHING = [
    SALES,
    User("Lead", "lead@example.com", roles=["manager"], team_id="t1", id="m-1"),
    User("Help", "help@example.com", roles=["support"], id="s-1"),
    User("Numbers", "numbers@example.com", roles=["analyst"], id="a-1"),
]


def test_only_actors_that_read_everything_may_read_the_journal(crm: pycrm.CRM) -> None:
    for actor in NOT_EVERYTHING:
        with crm.session() as s:
            c = s.customers.add(Customer(f"Acme for {actor.id}", owner_id=actor.id, team_id="t1"))
        with crm.session(actor=actor) as s:
            assert s.customers.get(c.id).owner_id == actor.id  # the actor sees the record ...
            with pytest.raises(PermissionDenied, match="change feed"):  # ... but not the store-wide journals
                s.changes.since(0)
            with pytest.raises(PermissionDenied, match="change feed"):
                s.changes.last_seq()
            with pytest.raises(PermissionDenied, match="every record"):  # the chain spans every record
                s.audit.verify()
            with pytest.raises(PermissionDenied, match="every record"):
                s.audit.head()
            # the trail of the records the actor reads, and of nothing else
            assert [(e.action, e.entity_id) for e in s.audit.history(c.id)] == [("create", c.id)]
            assert {e.entity_id for e in s.audit.entries()} <= {x.id for x in s.customers.find()} | {actor.id}
        with crm.session(actor=ADMIN) as s:
            assert s.changes.since(0)[-1].id == c.id
            assert [e.action for e in s.audit.history(c.id)] == ["create"]


# ---------------------------------------------------------------- tampering


AUDIT_KEY = b"a key the database's writers do not hold"


def _trail(open_crm: Any) -> tuple[pycrm.CRM, list[Any]]:
    crm = open_crm(audit_key=AUDIT_KEY)
    with crm.session(actor=ADMIN) as s:
        c = s.customers.add(Customer("Acme", status="lead"))
    for status in ("active", "inactive", "active"):
        with crm.session(actor=ADMIN) as s:
            c = s.customers.get(c.id)
            c.status = status
            s.customers.update(c)
    with crm.session(actor=ADMIN) as s:
        s.customers.delete(c.id)
    trail = _entries(crm)
    assert len(trail) == 5 and crm.audit.verify().ok
    return crm, trail


def _sql(crm: pycrm.CRM, statement: str, **params: Any) -> None:
    with crm.store.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def _forged(after: Any) -> dict[str, Any]:
    """An entry that follows ``after``, hashed the way someone without the audit key would."""
    content = {
        "seq": after.seq + 1,
        "at": after.at.isoformat(),
        "actor_id": "admin-1",
        "action": "update",
        "entity": "customers",
        "entity_id": after.entity_id,
        "diff": {"status": ["inactive", "vip"]},
    }
    return {**content, "prev_hash": after.hash, "hash": chain_hash(after.hash, content)}


def _row(crm: pycrm.CRM, adapter: str, seq: int) -> dict[str, Any]:
    if adapter == "memory":
        return next(r for r in crm.store._audit_log if r["seq"] == seq)
    with crm.store.engine.connect() as conn:
        return dict(conn.execute(sa.text("SELECT * FROM pycrm_audit WHERE seq = :seq"), {"seq": seq}).mappings().one())


def _insert(crm: pycrm.CRM, adapter: str, row: dict[str, Any]) -> None:
    if adapter == "memory":
        crm.store._audit_log.append(row)
        crm.store._audit_log.sort(key=lambda r: r["seq"])
    else:
        names = ", ".join(row)
        _sql(crm, f"INSERT INTO pycrm_audit ({names}) VALUES ({', '.join(':' + n for n in row)})", **row)


def _delete(crm: pycrm.CRM, adapter: str, seq: int, *, and_later: bool = False) -> None:
    if adapter == "memory":
        log = crm.store._audit_log
        log[:] = [r for r in log if r["seq"] < seq or (r["seq"] > seq and not and_later)]
    else:
        _sql(crm, f"DELETE FROM pycrm_audit WHERE seq {'>=' if and_later else '='} :seq", seq=seq)


def test_tampering_in_the_database_is_detected_and_the_first_bad_entry_named(open_crm: Any, adapter: str) -> None:
    crm, trail = _trail(open_crm)

    # an entry edited in place
    original = dict(_row(crm, adapter, 3))
    forged_diff = {"status": ["lead", "churned"]}
    if adapter == "memory":
        _row(crm, adapter, 3)["diff"] = forged_diff
    else:
        _sql(crm, "UPDATE pycrm_audit SET diff = :diff WHERE seq = :seq", diff=json.dumps(forged_diff), seq=3)
    assert _entries(crm)[2].diff == forged_diff  # the edit is really in the store
    result = crm.audit.verify()
    assert (result.ok, result.first_bad_seq) == (False, 3) and "altered" in result.reason
    _delete(crm, adapter, 3)
    _insert(crm, adapter, original)
    assert crm.audit.verify().ok  # put back as it was, the chain holds again

    # an entry deleted
    _delete(crm, adapter, 2)
    result = crm.audit.verify()
    assert (result.ok, result.first_bad_seq) == (False, 2) and "missing" in result.reason

    # an entry inserted: the gap filled with an entry of the forger's own
    impostor = {**_forged(trail[0]), "at": original["at"]}
    if adapter != "memory":
        impostor["diff"] = json.dumps(impostor["diff"])
    _insert(crm, adapter, impostor)
    assert [e.seq for e in _entries(crm)] == [1, 2, 3, 4, 5]
    result = crm.audit.verify()
    assert (result.ok, result.first_bad_seq) == (False, 2), result

    # one added at the end, hashed without the audit key
    _delete(crm, adapter, 2)
    _insert(crm, adapter, {**_row_like(trail[1], adapter)})
    assert crm.audit.verify().ok
    extra = _forged(trail[-1])
    if adapter != "memory":
        extra = {**extra, "at": trail[-1].at.replace(tzinfo=None), "diff": json.dumps(extra["diff"])}
    _insert(crm, adapter, extra)
    result = crm.audit.verify()
    assert (result.ok, result.first_bad_seq) == (False, 6) and "altered" in result.reason

    # entries cut off the end: only an anchor kept elsewhere shows it
    _delete(crm, adapter, 6)
    anchor = crm.audit.head()
    assert anchor == (5, trail[-1].hash)
    _delete(crm, adapter, 4, and_later=True)
    assert crm.audit.verify().ok
    result = crm.audit.verify(head=anchor)
    assert (result.ok, result.first_bad_seq) == (False, 4)


def _row_like(entry: Any, adapter: str) -> dict[str, Any]:
    """A stored row for an entry read back from the trail."""
    data = entry.to_data()
    if adapter == "memory":
        return data
    return {**data, "at": entry.at.astimezone(UTC).replace(tzinfo=None), "diff": json.dumps(entry.diff)}
