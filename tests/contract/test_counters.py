"""The ``Counters`` capability (named counters, a round robin's turns) on every adapter: commit, rollback,
atomic blocks, bad names, and through the gate."""

from __future__ import annotations

import pytest

import pycrm
from pycrm import User, ValidationError
from pycrm.storage import port
from pycrm.storage._gate import Gate


def _bump(crm: pycrm.CRM, name: str, times: int = 1, *, commit: bool = True) -> list[int]:
    tx = crm.store.begin()
    assert isinstance(tx, port.Counters)
    try:
        got = [tx.next_value(name) for _ in range(times)]
    except BaseException:
        tx.rollback()
        raise
    if commit:
        tx.commit()
    else:
        tx.rollback()
    return got


def test_a_counter_counts_from_one_and_keeps_its_value(crm: pycrm.CRM) -> None:
    assert _bump(crm, "rr:sales", 3) == [1, 2, 3]
    assert _bump(crm, "rr:sales") == [4]
    assert _bump(crm, "rr:support") == [1]  # counters are independent


def test_a_rolled_back_increment_is_undone(crm: pycrm.CRM) -> None:
    assert _bump(crm, "rr:sales", 2) == [1, 2]
    assert _bump(crm, "rr:sales", 5, commit=False) == [3, 4, 5, 6, 7]
    assert _bump(crm, "rr:sales") == [3]


def test_a_failed_atomic_block_undoes_its_increments(crm: pycrm.CRM) -> None:
    tx = crm.store.begin()
    assert isinstance(tx, port.Counters)
    try:
        assert tx.next_value("rr:x") == 1
        with pytest.raises(RuntimeError), tx.atomic():
            assert tx.next_value("rr:x") == 2
            raise RuntimeError("undo")
        assert tx.next_value("rr:x") == 2
        tx.commit()
    finally:
        tx.rollback()
    assert _bump(crm, "rr:x") == [3]


def test_counters_leave_the_journal_alone(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        s.customers.add(pycrm.Customer("Acme"))
    before = crm.audit.verify()
    assert _bump(crm, "rr:audit", 2) == [1, 2]
    with crm.session() as s:
        assert s.changes.last_seq() == 1
    assert crm.audit.verify() == before


@pytest.mark.parametrize("name", ["changes", "audit", "rr:", ":x", "rr:" + "x" * 30, "rr:a b", "RR:x", 7, None, "rr:é"])
def test_a_bad_counter_name_is_refused_by_name(crm: pycrm.CRM, name: object) -> None:
    tx = crm.store.begin()
    assert isinstance(tx, port.Counters)
    try:
        with pytest.raises(ValidationError) as err:
            tx.next_value(name)  # type: ignore[arg-type]
        assert err.value.errors[0].field == "name"
    finally:
        tx.rollback()


def test_an_actor_reaches_counters_through_the_gate(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        s.users.add(User("Rep", "rep@example.com", roles=["sales"], id="u1"))
    rep = User("Rep", "rep@example.com", roles=["sales"], id="u1")
    with crm.session(actor=rep) as s:
        tx = s.unit.transaction()
        assert isinstance(tx, Gate) and isinstance(tx, port.Counters)
        assert tx.next_value("rr:team") == 1
    assert _bump(crm, "rr:team") == [2]


# ---------------------------------------------------------------- GroupedCounts


def _count_by(crm: pycrm.CRM, kind: type, where: dict | None, field: str, limit: int = 10) -> dict:
    with crm.session() as s:
        tx = s.unit.transaction()
        assert isinstance(tx, port.GroupedCounts)
        return tx.count_by(kind, s.unit.conditions(kind, where), field, limit)


def test_grouped_counts_count_rows_per_value(crm: pycrm.CRM) -> None:
    from pycrm import Customer, Ticket

    with crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        s.tickets.add_many(
            [
                Ticket(c.id, f"t{i}", assignee_id=a, status=st)
                for i, (a, st) in enumerate(
                    [("u1", "new"), ("u1", "open"), ("u2", "new"), ("u2", "closed"), (None, "new"), ("u3", "resolved")]
                )
            ]
        )
    assert _count_by(crm, Ticket, None, "assignee_id") == {"u1": 2, "u2": 2, "u3": 1, None: 1}
    open_ = {"status": {"in": ["new", "open", "pending"]}, "assignee_id": {"in": ["u1", "u2", "u3"]}}
    assert _count_by(crm, Ticket, open_, "assignee_id") == {"u1": 2, "u2": 1}
    assert _count_by(crm, Ticket, None, "status") == {"new": 3, "open": 1, "closed": 1, "resolved": 1}
    assert _count_by(crm, Ticket, {"subject": "none"}, "assignee_id") == {}
    with pytest.raises(ValidationError) as err:
        _count_by(crm, Ticket, None, "assignee_id", limit=3)
    assert (err.value.errors[0].field, err.value.errors[0].code) == ("limit", "too_many")
    with crm.session() as s:  # the transaction's own writes count
        s.tickets.add(Ticket(c.id, "new one", assignee_id="u3"))
        tx = s.unit.transaction()
        assert isinstance(tx, port.GroupedCounts)
        assert tx.count_by(Ticket, [], "assignee_id", 10)["u3"] == 2


@pytest.mark.parametrize(
    ("field", "limit", "bad"),
    [
        ("emails", 5, "field"),
        ("amount", 5, "field"),
        ("nope", 5, "field"),
        ("owner_id", 0, "limit"),
        ("owner_id", True, "limit"),
        ("owner_id", 10**6, "limit"),
    ],
)
def test_a_bad_grouped_count_is_refused_by_name(crm: pycrm.CRM, field: str, limit: int, bad: str) -> None:
    from pycrm import Customer

    with pytest.raises(ValidationError) as err:
        _count_by(crm, Customer, None, field, limit)
    assert err.value.errors[0].field == bad


def test_an_actor_counts_in_its_scope_and_not_by_a_masked_field(open_crm) -> None:  # type: ignore[no-untyped-def]
    from pycrm import Customer
    from pycrm.security import FieldRules

    crm = open_crm(field_rules=FieldRules({"sales": {"customers.team_id": "hide"}}))
    with crm.session() as s:
        s.customers.add_many([Customer("Mine", owner_id="u1", team_id="t1"), Customer("Theirs", owner_id="u2", team_id="t2")])
    rep = User("Rep", "rep@example.com", roles=["sales"], id="u1")
    with crm.session(actor=rep) as s:
        tx = s.unit.transaction()
        assert isinstance(tx, Gate) and isinstance(tx, port.GroupedCounts)
        assert tx.count_by(Customer, [], "owner_id", 10) == {"u1": 1}  # the other owner's row is not there
        with pytest.raises(ValidationError) as err:
            tx.count_by(Customer, [], "team_id", 10)
        assert err.value.errors[0].field == "team_id"
