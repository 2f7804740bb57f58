"""``crm.audit.verify()`` never raises on a malformed row: it names the row (its seq) and what is wrong.

Each shape of tampering a store can hold is written straight into the audit table (SQL) or the memory
store's log, on entry 2 of a 4-entry trail; verify must report entry 2 (or, where the row's seq itself
cannot be read, the seq expected there) with a reason a person can act on. The trail is written one entry
per write, and by ``add_many`` (entries 1-3 in one write, whose shared time, actor, action and entity are
encoded once, without an actor and with one), so entry 2 is one written each way. ``entries()`` either reads the
row or raises a CRMError naming it, never a parser's exception. Shapes a column type makes impossible on
an adapter (a text seq in an integer column) are tried where they can be stored.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

import pycrm
from pycrm import Customer, User
from pycrm.errors import CRMError
from pycrm.security import verify

ANY = ("memory", "sqlite", "postgres", "mysql")
MEMORY = ("memory",)
TEXT_TIME = ("memory", "sqlite")  # where a time column can hold any text
MISSING = object()


@attrs.frozen
class Shape:
    """One way a row can be malformed: the changes to entry 2, where they can be stored, what verify says."""

    name: str
    changes: dict[str, Any]
    adapters: tuple[str, ...] = ANY
    seq: int = 2
    reason: str = ""
    sql_changes: dict[str, Any] | None = None  # when the SQL form differs (text where memory holds objects)


SHAPES = [
    Shape(
        "diff is not JSON",
        {"diff": '{"name": [null, "Acme"'},
        reason=r"entry 2 is malformed: its diff is not (valid JSON \(.*\)|a JSON object \(text\))",
    ),
    Shape("diff is an array", {"diff": [1, 2]}, sql_changes={"diff": "[1, 2]"}, reason=r"diff is not a JSON object \(an array\)"),
    Shape("diff is null", {"diff": None}, sql_changes={"diff": "null"}, reason=r"diff is not a JSON object \(null\)"),
    Shape("diff is a number", {"diff": 7}, sql_changes={"diff": "7"}, reason=r"diff is not a JSON object \(a number\)"),
    Shape("hash too short", {"hash": "abc"}, reason=r"entry 2 is malformed: its hash 'abc' is not 64 lowercase hexadecimal"),
    Shape("hash too long", {"hash": "a" * 65}, adapters=MEMORY, reason=r"its hash 'a+' is not 64"),
    Shape("hash not hex", {"hash": "z" * 64}, reason=r"its hash 'z+' is not 64 lowercase hexadecimal digits"),
    Shape("hash upper case", {"hash": "A" * 64}, reason=r"its hash 'A+' is not 64 lowercase"),
    Shape("hash empty", {"hash": ""}, reason=r"its hash '' is not 64"),
    Shape("hash missing", {"hash": MISSING}, adapters=MEMORY, reason=r"entry 2 is malformed: it has no hash"),
    Shape("hash null", {"hash": None}, adapters=MEMORY, reason=r"its hash None is not 64"),
    Shape("hash a number", {"hash": 12}, adapters=MEMORY, reason=r"its hash 12 is not 64"),
    Shape("prev_hash too short", {"prev_hash": "0" * 63}, reason=r"its prev_hash '0+' is not 64"),
    Shape("action unknown", {"action": "explode"}, reason=r"entry 2 is malformed: it has an unknown action 'explode'"),
    Shape("action null", {"action": None}, adapters=MEMORY, reason=r"unknown action None"),
    Shape("action a number", {"action": 3}, adapters=MEMORY, reason=r"unknown action 3"),
    Shape("entity empty", {"entity": ""}, reason=r"its entity '' is not a repository name"),
    Shape("entity null", {"entity": None}, adapters=MEMORY, reason=r"its entity None is not a repository name"),
    Shape("actor a number", {"actor_id": 42}, adapters=MEMORY, reason=r"its actor_id 42 is neither text nor null"),
    Shape("entity_id a list", {"entity_id": ["c1"]}, adapters=MEMORY, reason=r"its entity_id \['c1'\] is neither text nor null"),
    Shape("time not a time", {"at": "garbage"}, adapters=TEXT_TIME, reason=r"its time 'garbage' is not an ISO 8601 date-time"),
    Shape("time a number", {"at": 12345}, adapters=MEMORY, reason=r"its time 12345 is not an ISO 8601"),
    Shape("time null", {"at": None}, adapters=MEMORY, reason=r"its time None is not an ISO 8601"),
    Shape("time without zone", {"at": "2024-05-01T09:00:00"}, adapters=MEMORY, reason=r"has no time zone"),
    Shape(
        "seq text",
        {"seq": "2"},
        adapters=MEMORY,
        reason=r"the entry after entry 1 is malformed: its seq '2' is not a whole number >= 1",
    ),
    Shape("seq a fraction", {"seq": 2.0}, adapters=MEMORY, reason=r"its seq 2.0 is not a whole number"),
    Shape("seq true", {"seq": True}, adapters=MEMORY, reason=r"its seq True is not a whole number"),
    Shape("seq null", {"seq": None}, adapters=MEMORY, reason=r"its seq None is not a whole number"),
    Shape("seq missing", {"seq": MISSING}, adapters=MEMORY, reason=r"the entry after entry 1 is malformed: it has no seq"),
    Shape("several fields missing", {"diff": MISSING, "at": MISSING}, adapters=MEMORY, reason=r"it has no at, diff"),
    Shape("row not a mapping", {"*": ["not", "a", "row"]}, adapters=MEMORY, reason=r"it is not an audit row \(an array\)"),
    # well-formed rows that do not fit the chain
    Shape("content altered", {"actor_id": "u9"}, reason=r"entry 2 was altered: its hash does not match its content"),
    Shape("entity_id nulled", {"entity_id": None}, reason=r"entry 2 was altered"),
    Shape("hash of another entry", {"hash": "f" * 64}, reason=r"entry 2 was altered"),
    Shape("prev_hash of another chain", {"prev_hash": "1" * 64}, reason=r"entry 2 does not follow the one before it"),
    Shape("gap", {"*": MISSING}, reason=r"entry 2 is missing \(the next one is 3\)"),
    Shape("reordered", {"swap": 3}, reason=r"entry 2 does not follow the one before it"),
    Shape("seq repeated", {"seq": 1}, adapters=MEMORY, reason=r"entry 1 is out of place: expected 2", seq=1),
]


ADMIN = User("Root", "root@example.com", roles=["admin"], id="admin-1")
TRAILS = ("one_by_one", "add_many", "add_many_by_an_actor")


def _trail(crm: pycrm.CRM, how: str = "one_by_one") -> None:
    """Four audit entries: three creates and an update (the creates one by one, or by one ``add_many``,
    by the system or by an actor)."""
    if how == "one_by_one":
        for n in range(1, 4):
            with crm.session() as s:
                s.customers.add(Customer(f"Acme {n}", id=f"c{n}"))
    else:
        with crm.session(actor=ADMIN if how == "add_many_by_an_actor" else None) as s:
            s.customers.add_many([Customer(f"Acme {n}", id=f"c{n}", emails=[f"a{n}@example.com"]) for n in range(1, 4)])
    with crm.session() as s:
        c = s.customers.get("c1")
        c.status = "active"
        s.customers.update(c)


def _tamper_memory(crm: pycrm.CRM, shape: Shape) -> None:
    log: list[Any] = crm.store._audit_log
    i = next(i for i, r in enumerate(log) if r["seq"] == 2)
    row = log[i]
    for field, value in shape.changes.items():
        if field == "*":
            if value is MISSING:
                del log[i]
            else:
                log[i] = value
        elif field == "swap":
            j = next(j for j, r in enumerate(log) if r["seq"] == value)
            log[i]["seq"], log[j]["seq"] = log[j]["seq"], log[i]["seq"]
            log[i], log[j] = log[j], log[i]
        elif value is MISSING:
            del row[field]
        else:
            row[field] = value


def _tamper_sql(crm: pycrm.CRM, shape: Shape) -> None:
    changes = shape.sql_changes if shape.sql_changes is not None else shape.changes
    with crm.store.engine.begin() as conn:
        for field, value in changes.items():
            if field == "*":
                conn.execute(sa.text("DELETE FROM pycrm_audit WHERE seq = 2"))
            elif field == "swap":
                conn.execute(sa.text("UPDATE pycrm_audit SET seq = 1000 WHERE seq = 2"))
                conn.execute(sa.text("UPDATE pycrm_audit SET seq = 2 WHERE seq = :other"), {"other": value})
                conn.execute(sa.text("UPDATE pycrm_audit SET seq = :other WHERE seq = 1000"), {"other": value})
            else:  # column names come from the shapes above, never from input
                conn.execute(sa.text(f"UPDATE pycrm_audit SET {field} = :v WHERE seq = 2"), {"v": value})


def _saved(crm: pycrm.CRM, adapter: str) -> Callable[[], None]:
    """A function that puts the audit trail back as it is now."""
    if adapter == "memory":
        log = copy.deepcopy(crm.store._audit_log)

        def put_back() -> None:
            crm.store._audit_log[:] = copy.deepcopy(log)

        return put_back
    table = sa.Table("pycrm_audit", sa.MetaData(), autoload_with=crm.store.engine)
    with crm.store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(table)).mappings()]

    def restore() -> None:
        with crm.store.engine.begin() as conn:
            conn.execute(sa.delete(table))
            conn.execute(sa.insert(table), rows)

    return restore


@pytest.mark.parametrize("how", TRAILS)
def test_verify_names_every_malformed_row(crm: pycrm.CRM, adapter: str, how: str) -> None:
    _trail(crm, how)
    assert crm.audit.verify().ok
    put_back = _saved(crm, adapter)
    failures = []
    tried = 0
    for shape in SHAPES:
        if adapter not in shape.adapters:
            continue
        tried += 1
        (_tamper_memory if adapter == "memory" else _tamper_sql)(crm, shape)
        try:
            result = crm.audit.verify()
            if result.ok or result.first_bad_seq != shape.seq or not re.search(shape.reason, result.reason):
                failures.append(f"{shape.name}: {result!r}")
            try:
                list(crm.audit.entries())
                crm.audit.history("c1")
            except CRMError:
                pass
            assert crm.audit.head() is not None
        except Exception as exc:
            failures.append(f"{shape.name}: raised {type(exc).__name__}: {exc}")
        finally:
            put_back()
        assert crm.audit.verify().ok, f"{shape.name}: not put back"
    assert tried >= (len(SHAPES) if adapter == "memory" else 17)
    assert not failures, "\n".join(failures)


def test_entries_name_a_malformed_row(crm: pycrm.CRM, adapter: str) -> None:
    _trail(crm)
    (_tamper_memory if adapter == "memory" else _tamper_sql)(crm, SHAPES[0])
    with pytest.raises(CRMError, match=r"audit\[2\].*diff is not"):
        list(crm.audit.entries())


def test_the_verify_function_takes_rows_and_malformed_entries() -> None:
    """``pycrm.security.verify`` on entries built in code: wrong types are named too, not raised."""
    import datetime as dt

    from pycrm.security import make_entry

    at = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
    e1 = make_entry(None, at=at, actor_id=None, action="create", entity="customers", entity_id="c1", diff={})
    e2 = make_entry(e1, at=at, actor_id=None, action="update", entity="customers", entity_id="c1", diff={"a": [1, 2]})
    assert verify([e1, e2]).ok and verify([e1.to_data(), e2.to_data()]).ok
    for bad, reason in [
        (attrs.evolve(e2, seq="2"), r"the entry after entry 1 is malformed: its seq '2'"),
        (attrs.evolve(e2, at="noon"), r"entry 2 is malformed: its time 'noon'"),
        (attrs.evolve(e2, diff=["a"]), r"entry 2 is malformed: its diff is not a JSON object \(an array\)"),
        (attrs.evolve(e2, diff={"a": float("nan")}), r"entry 2 was altered"),
        (attrs.evolve(e2, diff={"a": object()}), r"entry 2 was altered"),
        (attrs.evolve(e2, hash=None), r"entry 2 is malformed: its hash None"),
    ]:
        result = verify([e1, bad])
        assert not result.ok and re.search(reason, result.reason), (bad, result)
    assert verify([e1, None]).reason == "the entry after entry 1 is malformed: it is not an audit row (null)"  # type: ignore[list-item]
