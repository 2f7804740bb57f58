"""Repository semantics, the same on every adapter: add get update delete find count iter add_many."""

from __future__ import annotations

import datetime as dt

import pytest

import pycrm
from pycrm import ConcurrencyError, Contact, Customer, Money, NotFound, Opportunity, Order, Task, Ticket, ValidationError
from tests.contract._data import children, full_customer

KINDS = ["contacts", "opportunities", "tickets", "interactions", "orders", "tasks", "users", "surveys"]


def add_customer(crm: pycrm.CRM, name: str = "Acme Ltd", **kw: object) -> Customer:
    with crm.session() as s:
        return s.customers.add(Customer(name, **kw))


# ---------------------------------------------------------------- add / get


def test_add_assigns_a_string_id_version_1_and_utc_timestamps(crm: pycrm.CRM) -> None:
    c = Customer("Acme Ltd")
    with crm.session() as s:
        added = s.customers.add(c)
    assert added is c
    assert isinstance(c.id, str) and c.id
    assert c.version == 1
    assert c.created_at is not None and c.created_at.utcoffset() == dt.timedelta(0)
    assert c.updated_at == c.created_at


def test_ids_are_time_ordered(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        ids = [s.customers.add(Customer(f"Customer {i}")).id for i in range(20)]
        bulk = [Customer(f"Bulk {i}") for i in range(5)]
        s.customers.add_many(bulk)
        ids += [c.id for c in bulk]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_a_given_id_is_kept(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        s.customers.add(Customer("Acme Ltd", id="crm-legacy-000042"))
    with crm.session() as s:
        assert s.customers.get("crm-legacy-000042").name == "Acme Ltd"


def test_adding_an_existing_id_is_a_validation_error(crm: pycrm.CRM) -> None:
    add_customer(crm, id="dup-1")
    with pytest.raises(ValidationError) as info, crm.session() as s:
        s.customers.add(Customer("Other", id="dup-1"))
    assert info.value.fields == ["id"]
    with crm.session() as s:
        assert s.customers.get("dup-1").name == "Acme Ltd"
        assert s.customers.count() == 1


def test_every_kind_round_trips_every_field(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        customer = s.customers.add(full_customer())
        records = children(customer.id)
        for repo, record in records.items():
            getattr(s, repo).add(record)
    with crm.session() as s:
        got = s.customers.get(customer.id)
        assert got == customer
        assert got.phones[0].e164 == "+8613800138000"
        assert got.tags == frozenset({"vip", "重点客户"})
        for repo, record in records.items():
            again = getattr(s, repo).get(record.id)
            assert again == record, repo
            assert type(again) is type(record)


def test_get_of_a_missing_id_raises_not_found(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        for repo in ["customers", *KINDS]:
            with pytest.raises(NotFound):
                getattr(s, repo).get("no-such-id")


@pytest.mark.parametrize("bad", ["", None, 42, "x" * 65, ["a"]])
def test_get_with_something_that_is_not_an_id_is_a_validation_error(crm: pycrm.CRM, bad: object) -> None:
    with crm.session() as s, pytest.raises(ValidationError) as info:
        s.customers.get(bad)  # type: ignore[arg-type]
    assert info.value.fields == ["id"]


def test_what_get_returns_is_a_copy(crm: pycrm.CRM) -> None:
    c = add_customer(crm, emails=["a@acme.example"], tags=["vip"])
    with crm.session() as s:
        got = s.customers.get(c.id)
        got.name = "Changed but not saved"
        got.emails.append("b@acme.example")
    with crm.session() as s:
        again = s.customers.get(c.id)
    assert again.name == "Acme Ltd"
    assert [e.value for e in again.emails] == ["a@acme.example"]


def test_adding_the_wrong_kind_is_a_validation_error(crm: pycrm.CRM) -> None:
    with crm.session() as s, pytest.raises(ValidationError):
        s.customers.add(Task("Call", dt.datetime(2025, 1, 1, tzinfo=dt.UTC)))  # type: ignore[arg-type]


def test_in_place_changes_are_validated_on_add_and_update(crm: pycrm.CRM) -> None:
    c = Customer("Acme Ltd", emails=["a@acme.example"])
    c.emails.append("not an email")  # list changed in place, behind the validators' back
    with crm.session() as s, pytest.raises(ValidationError) as info:
        s.customers.add(c)
    assert info.value.fields == ["emails[1]"]
    assert c.id is None and c.version == 0  # a refused add leaves the object as it was
    stored = add_customer(crm, emails=["a@acme.example"])
    stored.emails.append("still not an email")
    with crm.session() as s, pytest.raises(ValidationError) as info:
        s.customers.update(stored)
    assert info.value.fields == ["emails[1]"]
    assert stored.version == 1


def test_add_many_checks_again_what_changed_since_the_entities_were_built(crm: pycrm.CRM) -> None:
    """add_many checks again only what can have changed without a check (values in lists and dicts, and
    checks that read other fields), and that still catches every such change: nothing is stored."""
    from pycrm.domain import Pipeline, Stage

    other = Pipeline("recheck-test", [Stage("new", "0.1"), Stage("won", 1, kind="won"), Stage("lost", 0, kind="lost")])
    owner = add_customer(crm)
    fine = [Customer(f"Fine {i}", emails=[f"f{i}@example.com"], phones=["+86 138 0013 8000"]) for i in range(3)]
    changed = [
        Customer("Mails", emails=["a@example.com"]),
        Customer("Phones", phones=["+86 138 0013 8000"]),
        Customer("Custom", custom={"note": "ok"}),
    ]
    changed[0].emails.append("not an email")
    changed[1].phones.append("12")
    changed[2].custom["note"] = object()
    with crm.session() as s, pytest.raises(ValidationError) as info:
        s.customers.add_many([*fine, *changed])
    assert info.value.fields == ["[3].emails[1]", "[4].phones[1]", "[5].custom.note"]
    opp = Opportunity(owner.id, "Deal", Money("10", "USD"), stage="proposal")
    opp.pipeline = other  # its stage was checked against the default pipeline, not this one
    with crm.session() as s, pytest.raises(ValidationError) as info:
        s.opportunities.add_many([opp])
    assert info.value.fields == ["[0].stage"]
    with crm.session() as s:
        assert s.customers.count() == 1 and s.opportunities.count() == 0
        assert s.customers.add_many(fine) == 3  # unchanged entities: stored as built
        assert [[str(p) for p in c.phones] for c in fine] == [["+8613800138000"]] * 3


# ---------------------------------------------------------------- update


def test_update_bumps_version_and_stores_the_change(crm: pycrm.CRM) -> None:
    c = add_customer(crm)
    created = c.created_at
    c.name = "Acme Holdings"
    c.status = "active"
    with crm.session() as s:
        s.customers.update(c)
    assert c.version == 2
    assert c.updated_at >= created
    with crm.session() as s:
        got = s.customers.get(c.id)
    assert (got.name, got.status, got.version, got.created_at) == ("Acme Holdings", "active", 2, created)
    assert got == c


def test_a_stale_update_raises_concurrency_error_and_changes_nothing(crm: pycrm.CRM) -> None:
    c = add_customer(crm)
    with crm.session() as s:
        mine = s.customers.get(c.id)
        theirs = s.customers.get(c.id)
        theirs.name = "Theirs"
        s.customers.update(theirs)
    mine.name = "Mine"
    with pytest.raises(ConcurrencyError), crm.session() as s:
        s.customers.update(mine)
    assert mine.version == 1  # the failed update did not pretend to succeed
    with crm.session() as s:
        got = s.customers.get(c.id)
    assert (got.name, got.version) == ("Theirs", 2)


def test_a_stale_update_between_two_open_sessions(crm: pycrm.CRM) -> None:
    c = add_customer(crm)
    with pytest.raises(ConcurrencyError), crm.session() as first:
        mine = first.customers.get(c.id)
        with crm.session() as second:
            theirs = second.customers.get(c.id)
            theirs.status = "active"
            second.customers.update(theirs)
        mine.status = "churned"
        first.customers.update(mine)
    with crm.session() as s:
        got = s.customers.get(c.id)
    assert (got.status, got.version) == ("active", 2)


def test_updating_twice_in_one_session_needs_the_current_version(crm: pycrm.CRM) -> None:
    c = add_customer(crm)
    with crm.session() as s:
        c.name = "One"
        s.customers.update(c)
        c.name = "Two"
        s.customers.update(c)
        assert c.version == 3
        old = s.customers.get(c.id)
        object.__setattr__(old, "version", 2)
        with pytest.raises(ConcurrencyError):
            s.customers.update(old)
    with crm.session() as s:
        assert (s.customers.get(c.id).name, s.customers.get(c.id).version) == ("Two", 3)


def test_updating_a_deleted_entity_raises_not_found(crm: pycrm.CRM) -> None:
    c = add_customer(crm)
    with crm.session() as s:
        s.customers.delete(c.id)
    with crm.session() as s, pytest.raises(NotFound):
        s.customers.update(c)


def test_updating_an_entity_that_was_never_added_is_a_validation_error(crm: pycrm.CRM) -> None:
    with crm.session() as s, pytest.raises(ValidationError) as info:
        s.customers.update(Customer("Never stored"))
    assert info.value.fields == ["id"]


def test_state_machine_moves_are_stored(crm: pycrm.CRM) -> None:
    c = add_customer(crm)
    with crm.session() as s:
        opp = s.opportunities.add(Opportunity(c.id, "Renewal", Money("5000", "USD")))
        t = s.tickets.add(Ticket(c.id, "Printer on fire", priority="urgent"))
    opp.move_to("negotiation", by="u1")
    opp.win(by="u1")
    t.move_to("open")
    with crm.session() as s:
        s.opportunities.update(opp)
        s.tickets.update(t)
    with crm.session() as s:
        got = s.opportunities.get(opp.id)
        tk = s.tickets.get(t.id)
    assert (got.stage, got.is_won, [h.to_stage for h in got.stage_history]) == ("closed_won", True, ["negotiation", "closed_won"])
    assert got.closed_at == opp.closed_at
    assert tk.status == "open" and tk.first_response_at == t.first_response_at


# ---------------------------------------------------------------- delete


def test_delete_removes_and_a_second_delete_raises_not_found(crm: pycrm.CRM) -> None:
    c = add_customer(crm)
    with crm.session() as s:
        s.customers.delete(c.id)
        with pytest.raises(NotFound):
            s.customers.get(c.id)
        assert s.customers.count() == 0
    with crm.session() as s:
        with pytest.raises(NotFound):
            s.customers.get(c.id)
        with pytest.raises(NotFound):
            s.customers.delete(c.id)


# ---------------------------------------------------------------- references


@pytest.mark.parametrize("repo", ["contacts", "opportunities", "tickets", "interactions", "orders", "surveys"])
def test_a_child_of_an_unknown_customer_is_a_validation_error(crm: pycrm.CRM, repo: str) -> None:
    record = children("no-such-customer")[repo]
    with pytest.raises(ValidationError) as info, crm.session() as s:
        getattr(s, repo).add(record)
    assert info.value.fields == ["customer_id"]
    with crm.session() as s:
        assert getattr(s, repo).count() == 0


@pytest.mark.parametrize("repo", ["contacts", "opportunities", "tickets", "interactions", "orders", "surveys"])
def test_a_referenced_customer_cannot_be_deleted(crm: pycrm.CRM, repo: str) -> None:
    c = add_customer(crm)
    record = children(c.id)[repo]
    with crm.session() as s:
        getattr(s, repo).add(record)
    with pytest.raises(ValidationError) as info, crm.session() as s:
        s.customers.delete(c.id)
    assert info.value.fields == ["id"]
    with crm.session() as s:
        assert s.customers.get(c.id).name == "Acme Ltd"
        getattr(s, repo).delete(record.id)
        s.customers.delete(c.id)
    with crm.session() as s:
        assert s.customers.count() == 0


def test_moving_a_child_to_an_unknown_customer_is_a_validation_error(crm: pycrm.CRM) -> None:
    c = add_customer(crm)
    with crm.session() as s:
        contact = s.contacts.add(Contact(c.id, "Lei", "Li"))
    contact.customer_id = "gone"
    with pytest.raises(ValidationError) as info, crm.session() as s:
        s.contacts.update(contact)
    assert info.value.fields == ["customer_id"]
    with crm.session() as s:
        assert s.contacts.get(contact.id).customer_id == c.id


def test_a_child_may_point_at_a_customer_added_in_the_same_session(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        c = s.customers.add(Customer("Acme Ltd"))
        s.orders.add(Order(c.id, dt.datetime(2025, 1, 1, tzinfo=dt.UTC), Money("10.00", "CNY")))
        assert s.orders.count({"customer_id": c.id}) == 1


# ---------------------------------------------------------------- add_many


def test_add_many_adds_everything_and_returns_the_count(crm: pycrm.CRM) -> None:
    batch = [Customer(f"客户 {i}", emails=[f"c{i}@example.com"], phones=[f"+86 138 0013 {8000 + i}"]) for i in range(50)]
    with crm.session() as s:
        assert s.customers.add_many(iter(batch)) == 50
        assert s.customers.add_many([]) == 0
    assert all(c.version == 1 and c.id for c in batch)
    with crm.session() as s:
        assert s.customers.count() == 50
        assert s.customers.get(batch[7].id) == batch[7]
        assert [c.name for c in s.customers.find({"phones": "138 0013 8049"})] == ["客户 49"]


def test_add_many_is_all_or_nothing(crm: pycrm.CRM) -> None:
    batch = [Customer("Good 1"), Customer("Good 2", emails=["ok@example.com"]), Customer("Good 3")]
    batch[1].emails.append("broken")
    batch[2].name = "Still good"
    with pytest.raises(ValidationError) as info, crm.session() as s:
        s.customers.add_many(batch)
    assert info.value.fields == ["[1].emails[1]"]
    assert [(c.id, c.version, c.created_at) for c in batch] == [(None, 0, None)] * 3  # none stamped: nothing stored
    with crm.session() as s:
        assert s.customers.count() == 0


def test_add_many_reports_every_bad_item(crm: pycrm.CRM) -> None:
    c = add_customer(crm)
    orders = [Order(c.id, dt.datetime(2025, 1, i, tzinfo=dt.UTC), Money(i)) for i in range(1, 6)]
    orders[1].customer_id = "nobody"
    orders[3].customer_id = "nobody-else"
    with pytest.raises(ValidationError) as info, crm.session() as s:
        s.orders.add_many(orders)
    assert info.value.fields == ["[1].customer_id", "[3].customer_id"]
    with crm.session() as s:
        assert s.orders.count() == 0


def test_add_many_refuses_repeated_ids(crm: pycrm.CRM) -> None:
    with pytest.raises(ValidationError) as info, crm.session() as s:
        s.customers.add_many([Customer("A", id="same"), Customer("B", id="other"), Customer("C", id="same")])
    assert info.value.fields == ["[2].id"]
    with crm.session() as s:
        assert s.customers.count() == 0


def test_add_many_refuses_ids_already_stored(crm: pycrm.CRM) -> None:
    add_customer(crm, id="taken")
    with pytest.raises(ValidationError) as info, crm.session() as s:
        s.customers.add_many([Customer("A"), Customer("B", id="taken")])
    assert info.value.fields == ["[1].id"]
    with crm.session() as s:
        assert s.customers.count() == 1


def test_add_many_of_children_checks_parents_in_bulk(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        ids = [c.id for c in [s.customers.add(Customer(f"C{i}")) for i in range(3)]]
        n = s.orders.add_many(Order(ids[i % 3], dt.datetime(2025, 1, 1 + i, tzinfo=dt.UTC), Money(i + 1)) for i in range(30))
    assert n == 30
    with crm.session() as s:
        assert [s.orders.count({"customer_id": i}) for i in ids] == [10, 10, 10]


# ---------------------------------------------------------------- find / count / iter


def test_find_count_and_iter_agree(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        s.customers.add_many(Customer(f"C{i:02d}", status="active" if i % 3 else "lead") for i in range(25))
    with crm.session() as s:
        everyone = s.customers.find()
        active = s.customers.find({"status": "active"})
        assert len(everyone) == s.customers.count() == 25
        assert len(active) == s.customers.count({"status": "active"}) == 16
        streamed = list(s.customers.iter(batch_size=4))
        assert [c.id for c in streamed] == sorted(c.id for c in everyone)
        assert [c.id for c in s.customers.iter({"status": "active"}, batch_size=5)] == sorted(c.id for c in active)
        assert [c.id for c in s.customers.iter({"status": "active"}, batch_size=1000)] == sorted(c.id for c in active)
        assert everyone == sorted(everyone, key=lambda c: c.id)  # no order_by: id order


def test_iter_streams_lazily(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        s.customers.add_many(Customer(f"C{i}") for i in range(10))
    with crm.session() as s:
        stream = s.customers.iter(batch_size=3)
        first = next(stream)
        rest = list(stream)
    assert len(rest) == 9
    assert first.id < rest[0].id


@pytest.mark.parametrize("size", [0, -1, 1.5, "10", True, None])
def test_iter_with_a_bad_batch_size_is_a_validation_error(crm: pycrm.CRM, size: object) -> None:
    with crm.session() as s, pytest.raises(ValidationError) as info:
        list(s.customers.iter(batch_size=size))  # type: ignore[arg-type]
    assert info.value.fields == ["batch_size"]


def test_reads_see_the_sessions_own_writes(crm: pycrm.CRM) -> None:
    keep = add_customer(crm, "Keep")
    gone = add_customer(crm, "Gone")
    with crm.session() as s:
        s.customers.add(Customer("New", tags=["fresh"]))
        s.customers.delete(gone.id)
        keep.name = "Kept"
        s.customers.update(keep)
        assert sorted(c.name for c in s.customers.find()) == ["Kept", "New"]
        assert s.customers.count() == 2
        assert [c.name for c in s.customers.iter({"tags": "fresh"})] == ["New"]
        assert [c.name for c in s.customers.find({"name": "Kept"})] == ["Kept"]
        assert s.customers.count({"name": "Gone"}) == 0


def test_entities_from_find_can_be_updated(crm: pycrm.CRM) -> None:
    add_customer(crm, "Acme Ltd")
    with crm.session() as s:
        (c,) = s.customers.find({"name": "Acme Ltd"})
        c.status = "active"
        s.customers.update(c)
    with crm.session() as s:
        assert [(x.status, x.version) for x in s.customers.iter()] == [("active", 2)]
