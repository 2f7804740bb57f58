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
