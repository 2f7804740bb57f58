"""The unit of work: commit on a clean exit, roll back on an exception, nothing half-written."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

import pycrm
from pycrm import ConcurrencyError, CRMError, Customer, Money, Order, ValidationError

UTC = dt.UTC


class Boom(Exception):
    pass


def count(crm: pycrm.CRM, repo: str = "customers") -> int:
    with crm.session() as s:
        return int(getattr(s, repo).count())


def test_a_clean_exit_commits(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        c = s.customers.add(Customer("Acme Ltd"))
        s.orders.add(Order(c.id, dt.datetime(2025, 1, 1, tzinfo=UTC), Money("10.00", "CNY")))
    with crm.session() as s:
        assert s.customers.get(c.id).name == "Acme Ltd"
        assert s.orders.count({"customer_id": c.id}) == 1


def test_an_exception_rolls_everything_back_and_propagates_unchanged(crm: pycrm.CRM) -> None:
    keep = Customer("Keep", tags=["old"])
    doomed = Customer("Doomed")
    with crm.session() as s:
        s.customers.add(keep)
        s.customers.add(doomed)
    with pytest.raises(Boom), crm.session() as s:
        new = s.customers.add(Customer("Never stored"))
        s.orders.add(Order(new.id, dt.datetime(2025, 1, 1, tzinfo=UTC), Money(1)))
        keep.tags = ["changed"]
        s.customers.update(keep)
        s.customers.delete(doomed.id)
        s.customers.add_many([Customer("Bulk 1"), Customer("Bulk 2")])
        raise Boom
    with crm.session() as s:
        assert sorted(c.name for c in s.customers.find()) == ["Doomed", "Keep"]
        got = s.customers.get(keep.id)
        assert (got.tags, got.version) == (frozenset({"old"}), 1)
        assert s.orders.count() == 0


def test_a_validation_error_inside_a_session_leaves_nothing_behind(crm: pycrm.CRM) -> None:
    with pytest.raises(ValidationError), crm.session() as s:
        s.customers.add(Customer("First"))
        s.customers.add(Customer("Second"))
        s.orders.add(Order("no-such-customer", dt.datetime(2025, 1, 1, tzinfo=UTC), Money(1)))
    assert count(crm) == 0


def test_a_failing_add_many_in_the_middle_of_a_session_rolls_the_session_back(crm: pycrm.CRM) -> None:
    bad = [Customer("B1"), Customer("B2", emails=["b2@example.com"]), Customer("B3")]
    bad[1].emails.append("oops")
    with pytest.raises(ValidationError), crm.session() as s:
        s.customers.add(Customer("Before"))
        s.customers.add_many(bad)
        s.customers.add(Customer("After"))  # never reached
    assert count(crm) == 0


def test_a_caught_add_many_failure_adds_none_of_its_items(crm: pycrm.CRM) -> None:
    bad = [Customer("B1"), Customer("B2", emails=["b2@example.com"]), Customer("B3")]
    bad[1].emails.append("oops")
    with crm.session() as s:
        s.customers.add(Customer("Before"))
        with pytest.raises(ValidationError):
            s.customers.add_many(bad)
        s.customers.add(Customer("After"))
    with crm.session() as s:
        assert sorted(c.name for c in s.customers.find()) == ["After", "Before"]


def test_an_add_many_whose_input_breaks_half_way_adds_nothing(crm: pycrm.CRM) -> None:
    def rows() -> Iterator[Customer]:
        yield Customer("Row 1")
        yield Customer("Row 2")
        raise Boom("the CSV file ended early")

    with crm.session() as s:
        s.customers.add(Customer("Before"))
        with pytest.raises(Boom):
            s.customers.add_many(rows())
        assert s.customers.count() == 1
    with crm.session() as s:
        assert [c.name for c in s.customers.find()] == ["Before"]


def test_an_uncommitted_session_is_invisible_to_another(crm: pycrm.CRM) -> None:
    with crm.session() as writer:
        writer.customers.add(Customer("Pending"))
        with crm.session() as reader:
            assert reader.customers.count() == 0
            assert reader.customers.find({"name": "Pending"}) == []
    assert count(crm) == 1


def test_a_rolled_back_add_does_not_leave_the_object_looking_stored(crm: pycrm.CRM) -> None:
    c = Customer("Ghost")
    with pytest.raises(ValidationError), crm.session() as s:
        s.customers.add(c)
        s.orders.add(Order("nobody", dt.datetime(2025, 1, 1, tzinfo=UTC), Money(1)))
    assert count(crm) == 0
    with crm.session() as s:  # the same object can be added again in a new session
        s.customers.add(c)
    assert count(crm) == 1


def test_a_session_cannot_be_used_after_it_ends(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        pass
    with pytest.raises(CRMError):
        s.customers.add(Customer("Late"))
    with pytest.raises(CRMError):
        s.customers.find()
    assert count(crm) == 0


def test_a_concurrency_error_rolls_back_the_whole_session(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        c = s.customers.add(Customer("Acme Ltd"))
    with crm.session() as s:
        stale = s.customers.get(c.id)
        fresh = s.customers.get(c.id)
        fresh.status = "active"
        s.customers.update(fresh)
    with pytest.raises(ConcurrencyError), crm.session() as s:
        s.customers.add(Customer("Added before the conflict"))
        stale.status = "churned"
        s.customers.update(stale)
    with crm.session() as s:
        assert [(x.name, x.status) for x in s.customers.find()] == [("Acme Ltd", "active")]


def test_many_sessions_one_after_another(crm: pycrm.CRM) -> None:
    for i in range(30):
        with crm.session() as s:
            s.customers.add(Customer(f"C{i}"))
        if i % 3 == 0:
            with pytest.raises(Boom), crm.session() as s:
                s.customers.add(Customer(f"Rolled back {i}"))
                raise Boom
    assert count(crm) == 30


def test_the_crm_is_a_context_manager(store_url: str) -> None:
    with pycrm.open(store_url, default_region="CN") as crm:
        with crm.session() as s:
            s.customers.add(Customer("Acme Ltd"))
        with crm.session() as s:
            assert s.customers.count() == 1


def test_a_session_goes_on_after_a_caught_concurrency_error(crm: pycrm.CRM) -> None:
    """A bulk edit that skips the records someone else changed keeps the rest of its work."""
    with crm.session() as s:
        c = s.customers.add(Customer("Acme Ltd"))
    with crm.session() as first:
        mine = first.customers.get(c.id)
        with crm.session() as second:
            theirs = second.customers.get(c.id)
            theirs.status = "active"
            second.customers.update(theirs)
        mine.status = "churned"
        with pytest.raises(ConcurrencyError):
            first.customers.update(mine)
        first.customers.add(Customer("Added after the conflict"))
    with crm.session() as s:
        assert sorted((x.name, x.status) for x in s.customers.find()) == [
            ("Acme Ltd", "active"),
            ("Added after the conflict", "lead"),
        ]
