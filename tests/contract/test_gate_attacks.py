"""The gate on the storage port (storage/_gate.py) attacked where tests/contract/test_gate.py does not reach:
guesses confirmed by comparisons, filters hidden in archive rules, reports over masked values, exports
whose audit entry a rollback takes back, refusals left out of the trail, and the gate's own operations
called directly (``s._transaction()``) to forge journal entries, count other owners' rows or plant
merge records, or read rows and records past the field rules. Each test is one hole found, on every adapter;
those marked "held" pin attacks that failed.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import pycrm
import pycrm.io as pio
from pycrm import Contact, Customer, Incoming, Money, Order, PermissionDenied, Survey, Task, Ticket, User, ValidationError
from pycrm.domain import CustomField, Permission, Role, utcnow
from pycrm.domain._codec import to_data
from pycrm.security import DEFAULT_FIELD_RULES, FieldRules, KeyRing
from pycrm.storage.port import Condition, OrderBy, Reports, RFMPushdown, RowStreams

AT = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
REP = User("Rep", "rep@example.com", roles=["sales"], team_id="t1", id="u1")
MANAGER = User("Boss", "boss@example.com", roles=["manager"], team_id="t1", id="m1")
ANALYST = User("Ana", "ana@example.com", roles=["analyst"], id="a1")
#: A host role that works its own customers and orders, with amounts and names masked by FIELD_RULES.
#: Erasing a contact also rewrites its campaign memberships, interactions, activities and attachments: an actor
#: erasing a person must be able to update every record erased with them (else PermissionDenied, nothing written).
CLERK_ROLE = Role(
    "clerk",
    [
        Permission(e, "*", "own")
        for e in ("customers", "contacts", "orders", "campaign_members", "interactions", "activities", "attachments")
    ],
)
CLERK = User("Clerk", "clerk@example.com", roles=[CLERK_ROLE], id="u1")
FIELD_RULES = FieldRules({"clerk": {"orders.amount": "redact", "contacts.emails": "hide"}})
NATIONAL_ID = "110101199003077777"
LATER = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)


def _customer(crm: pycrm.CRM, **kw: Any) -> Customer:
    with crm.session() as s:
        return s.customers.add(
            Customer(
                "Mine Co", owner_id="u1", team_id="t1", emails=["li.lei@example.com"], custom={"national_id": NATIONAL_ID}, **kw
            )
        )


def _outcome(call: Callable[[], Any]) -> str:
    try:
        return repr(call())
    except (PermissionDenied, ValidationError) as exc:
        return f"{type(exc).__name__}: {exc}"


# ---------------------------------------------------------------- guesses confirmed by a comparison


def test_apply_does_not_confirm_a_guess_of_a_masked_or_hidden_value(crm: pycrm.CRM) -> None:
    """``changes.apply`` with the stored version tells "unchanged" from "conflict" by comparing the incoming
    data with the record: the analyst sees e-mails masked and the national id hidden, so a guess must get
    the same answer whether right or wrong (as long as it looks the same masked)."""
    c = _customer(crm)
    with crm.session(actor=ANALYST) as s:
        version = s.customers.get(c.id).version

        def apply(data: dict[str, Any]) -> str:
            return _outcome(lambda: s.changes.apply([Incoming("customers", str(c.id), "upsert", version, data)]))

        assert apply({"emails": ["li.lei@example.com"]}) == apply({"emails": ["l0@example.com"]})
        assert apply({"custom": {"national_id": NATIONAL_ID}}) == apply({"custom": {"national_id": "999"}})


def test_apply_creates_a_record_with_the_checks_of_add(open_crm: Callable[..., pycrm.CRM]) -> None:
    """A record new to the store, sent through ``changes.apply``, skipped what ``add`` checks: it stored a
    masked-looking e-mail (``l***@example.com``, what a masked read shows) and a custom value of the wrong
    type for a declared custom field."""
    crm = open_crm(custom_fields={"customers": [CustomField("tier", "integer")]})

    def apply(s: Any, id: str, data: dict[str, Any]) -> Any:
        return s.changes.apply([Incoming("customers", id, "upsert", 1, {"name": "New", "owner_id": "u1", **data})])

    with crm.session(actor=REP) as s:
        with pytest.raises(ValidationError, match="masked value"):
            apply(s, "new1", {"emails": ["l***@example.com"]})
        with pytest.raises(ValidationError, match="tier"):
            apply(s, "new2", {"custom": {"tier": "gold"}})
        assert apply(s, "new3", {"custom": {"tier": 1}}).applied == [("customers", "new3")]
    with crm.session() as s:
        assert [c.id for c in s.customers.find()] == ["new3"]


def test_masked_values_sent_back_through_apply_keep_the_real_ones(open_crm: Callable[..., pycrm.CRM]) -> None:
    """Held: ``changes.apply`` with the masks the actor read, a hidden list sent empty and a custom mapping
    without the hidden key keeps the real values; a mask copied into another field is refused."""
    rules = {"customers.name": "mask", "customers.emails": "hide", "customers.custom.national_id": "hide"}
    crm = open_crm(field_rules=FieldRules({"clerk": rules}))
    c = _customer(crm)
    with crm.session(actor=CLERK) as s:
        data = {"name": "M***", "emails": [], "custom": {"tier": "b"}, "status": "active"}
        assert s.changes.apply([Incoming("customers", str(c.id), "upsert", 2, data)]).applied == [("customers", c.id)]
        with pytest.raises(ValidationError, match="masked value"):
            s.changes.apply([Incoming("customers", str(c.id), "upsert", 3, {"category": "M***"})])
    with crm.session() as s:
        back = s.customers.get(str(c.id))
    assert (back.name, [e.value for e in back.emails], back.custom, back.status) == (
        "Mine Co",
        ["li.lei@example.com"],
        {"national_id": NATIONAL_ID, "tier": "b"},
        "active",
    )


def test_an_export_imported_back_keeps_the_hidden_and_masked_values(open_crm: Callable[..., pycrm.CRM], tmp_path: Path) -> None:
    """Held: a file exported by an actor that sees the name masked and the e-mails and national id hidden,
    edited and imported back by it, changes what it changed and nothing it could not see."""
    rules = {"customers.name": "mask", "customers.emails": "hide", "customers.custom.national_id": "hide"}
    crm = open_crm(field_rules=FieldRules({"clerk": rules}))
    c = _customer(crm)
    path = tmp_path / "mine.csv"
    with crm.session(actor=CLERK) as s:
        pio.export_file(s, path, "customers", fields=["id", "name", "emails", "status", "owner_id", "custom.national_id"])
    text = path.read_text(encoding="utf-8")
    assert "Mine Co" not in text and "li.lei" not in text and NATIONAL_ID not in text
    path.write_text(text.replace(",lead,", ",active,"), encoding="utf-8")
    with crm.session(actor=CLERK) as s:
        assert pio.import_file(s, path, key="id").updated == 1
    with crm.session() as s:
        back = s.customers.get(str(c.id))
    assert (back.name, [e.value for e in back.emails], back.custom, back.status) == (
        "Mine Co",
        ["li.lei@example.com"],
        {"national_id": NATIONAL_ID},
        "active",
    )


def test_an_archive_rule_cannot_filter_on_a_masked_or_hidden_field(crm: pycrm.CRM) -> None:
    """A dry run of ``archive`` with a rule's ``where`` on the hidden national id answered differently for
    a right and a wrong guess; it is refused like the same filter on ``find``."""
    _customer(crm)
    with crm.session(actor=ANALYST) as s:
        for where in ({"custom.national_id": NATIONAL_ID}, {"custom.national_id": "1"}, {"emails": "li.lei@example.com"}):
            rule = pio.older_than("customers", 0, where=where)
            with pytest.raises(ValidationError, match="masked or hidden"):
                pio.archive(s, [rule], as_of=LATER, dry_run=True)


def test_reports_do_not_add_up_values_masked_for_the_actor(open_crm: Callable[..., pycrm.CRM]) -> None:
    """Order amounts redacted for a role were read back exactly through the reports that sum them (one
    order: the revenue *is* its amount); a report over a field the actor sees masked is refused."""
    crm = open_crm(field_rules=FIELD_RULES)
    with crm.session() as s:
        c = s.customers.add(Customer("Mine Co", owner_id="u1"))
        s.orders.add(Order(str(c.id), AT, Money("1234.56", "CNY")))
    with crm.session(actor=CLERK) as s:
        assert str(s.orders.find()[0].amount) == "***"
        for report in (
            lambda: s.analytics.top_customers(),
            lambda: s.analytics.rfm(as_of="2025-12-31"),
            lambda: s.analytics.purchase_summary(calibration_end="2025-12-31"),
            lambda: s.analytics.customer_activity(),
        ):
            with pytest.raises(ValidationError, match="'amount' is masked or hidden"):
                report()
    with crm.session(actor=User("Owner", "o@example.com", roles=["sales"], id="u1")) as s:  # no rule: reports run
        assert [str(r.revenue) for r in s.analytics.top_customers()] == ["1234.56"]


#: Filters that would narrow a hidden (national id) or masked (e-mails, name) value down, every operator.
NARROWING = [
    *({"custom.national_id": {op: v}} for op, v in (("eq", NATIONAL_ID), ("ne", "x"), ("in", ["1"]), ("is_null", False))),
    *({"emails": {op: v}} for op, v in (("eq", "li.lei@example.com"), ("ne", "x@y.example"), ("in", []), ("is_null", True))),
    *({"name": {op: "M"}} for op in ("startswith", "contains", "gt", "gte", "lt", "lte", "ne", "eq")),
    {"name": {"in": ["Mine Co"]}},
    {"name": {"is_null": False}},
]


def test_no_path_filters_on_a_masked_or_hidden_field(open_crm: Callable[..., pycrm.CRM]) -> None:
    """Held: every read path that takes a filter refuses one on a field the actor sees masked or hidden."""
    crm = open_crm(field_rules=FieldRules({"analyst": {**DEFAULT_FIELD_RULES.rules["analyst"], "customers.name": "mask"}}))
    _customer(crm)
    with crm.session(actor=ANALYST) as s:
        paths: list[Callable[[dict[str, Any]], Any]] = [
            lambda w: s.customers.find(w),
            lambda w: s.customers.count(w),
            lambda w: list(s.customers.iter(w)),
            lambda w: s.customers.find_duplicates(w),
            lambda w: pio.export_file(s, io.StringIO(), "customers", where=w),
            lambda w: list(pio.archived(s, "customers", w)),
        ]
        for where in NARROWING:
            for path in paths:
                with pytest.raises(ValidationError, match="masked or hidden"):
                    path(where)
        for field in ("name", "-name"):
            with pytest.raises(ValidationError, match="masked or hidden"):
                s.customers.find(order_by=field)
        with pytest.raises(ValidationError, match="masked or hidden"):
            s.personal.marketing_list("email", where={"emails": "li.lei@example.com"})


def test_the_currency_of_a_masked_amount_is_masked_too(open_crm: Callable[..., pycrm.CRM]) -> None:
    """``currency`` is a filter and sort name reading the currency of ``amount``: with the amount redacted,
    a count by currency still told it."""
    crm = open_crm(field_rules=FIELD_RULES)
    with crm.session() as s:
        c = s.customers.add(Customer("Mine Co", owner_id="u1"))
        s.orders.add(Order(str(c.id), AT, Money("1234.56", "CNY")))
    with crm.session(actor=CLERK) as s:
        with pytest.raises(ValidationError, match="'currency' is masked or hidden"):
            s.orders.count({"currency": "CNY"})
        with pytest.raises(ValidationError, match="'currency' is masked or hidden"):
            s.orders.find(order_by="currency")


# ---------------------------------------------------------------- the audit trail


def test_an_export_stays_in_the_trail_when_its_session_rolls_back(crm: pycrm.CRM) -> None:
    """The rows have left the store once ``export_file`` or ``personal.export`` returns: the caller rolling
    its session back must not take the audit entry of the export with it."""
    c = _customer(crm)
    with crm.session(actor=REP) as s:
        out = io.StringIO()
        assert pio.export_file(s, out, "customers") == 1
        assert "Mine Co" in out.getvalue()
        s.rollback()
    with crm.session(actor=User("Admin", "admin@example.com", roles=["admin"], id="ad")) as s:
        got = s.personal.export(str(c.id))
        assert got["record"]["name"] == "Mine Co"
        s.rollback()
    with crm.session() as s:
        exports = [(e.actor_id, e.entity, e.entity_id) for e in s.audit.entries() if e.action == "export"]
    assert exports == [("u1", "customers", None), ("ad", "customers", c.id)]


def test_the_trail_shows_no_entry_about_a_kind_the_actor_cannot_read(crm: pycrm.CRM) -> None:
    """The analyst reads no tasks and no users, yet ``audit.entries()`` and ``audit.history()`` showed every
    task and user entry in clear (the visibility check told it which exist, as it tells a writer)."""
    with crm.session() as s:
        s.users.add(User("Boss Secret", "boss@corp.example", roles=["admin"], id="u9"))
        task = s.tasks.add(Task("SECRET plan", AT, assignee_id="u9"))
    _customer(crm)
    with crm.session(actor=ANALYST) as s:
        assert [e.entity for e in s.audit.entries()] == ["customers"]
        assert s.audit.history(str(task.id)) == s.audit.history("no-such-id") == []


def test_an_unmerge_refused_is_in_the_trail(crm: pycrm.CRM) -> None:
    """Every permission failure is recorded; ``unmerge`` refused a sales rep without a trace."""
    with crm.session() as s:
        a = s.customers.add(Customer("A", owner_id="u1"))
        b = s.customers.add(Customer("B", owner_id="u1"))
        merge = s.customers.merge(str(a.id), str(b.id))
    with pytest.raises(PermissionDenied), crm.session(actor=REP) as s:
        s.customers.unmerge(merge.id)
    with crm.session() as s:
        denied = [e.diff for e in s.audit.entries() if e.action == "permission_denied"]
    assert [(d["action"], "merge customers" in d["message"]) for d in denied] == [("merge", True)]


# ---------------------------------------------------------------- the gate's operations called directly


def test_the_gate_takes_no_journal_entry_in_another_actors_name(crm: pycrm.CRM) -> None:
    """``journal`` is "the session's own entries": through the gate, an entry naming another actor (an
    admin deleting a record, say) is refused, and the trail holds none."""
    c = _customer(crm)
    forged = {"at": utcnow(), "actor_id": "admin", "action": "delete", "entity": "customers", "entity_id": c.id, "diff": {}}
    with pytest.raises(PermissionDenied), crm.session(actor=REP) as s:
        s._transaction().journal([], [forged])
    with pytest.raises(PermissionDenied), crm.session(actor=REP) as s:
        s._transaction().journal([{**forged, "op": "delete", "version": None, "fields": []}], [])
    with crm.session() as s:
        assert [e.actor_id for e in s.audit.entries() if e.action == "delete"] == []
        assert s.changes.since(0)[-1].op == "create"


def test_the_gate_counts_no_rows_of_other_owners(crm: pycrm.CRM) -> None:
    """``referencing`` counts the records pointing at some ids so a delete can be refused: through the gate
    it counted any owner's rows by any field (how many customers ``u2`` owns, how many contacts another
    owner's customer has)."""
    mine = _customer(crm)
    with crm.session() as s:
        theirs = s.customers.add(Customer("Theirs", owner_id="u2"))
        s.contacts.add(Contact(str(theirs.id), "Their", "Contact"))
        s.contacts.add(Contact(str(mine.id), "My", "Contact"))
    with crm.session(actor=MANAGER) as s:  # deletes the team's customers: counts what points at those only
        tx = s._transaction()
        with pytest.raises(PermissionDenied):
            tx.referencing(Customer, "owner_id", ["u2"])
        assert tx.referencing(Contact, "customer_id", [str(theirs.id)]) == 0
        assert tx.referencing(Contact, "customer_id", [str(mine.id), str(theirs.id)]) == 1
    with pytest.raises(PermissionDenied), crm.session(actor=REP) as s:  # deletes no customer: counts nothing
        s._transaction().referencing(Contact, "customer_id", [str(mine.id)])


def test_the_gate_lets_no_actor_plant_a_merge_record(crm: pycrm.CRM) -> None:
    """A merge record names the records its merge re-pointed, and ``unmerge`` points them back past the
    gate: one written through the gate by a manager re-pointed a contact of the team's customer to another
    team's customer. Merge records are written by merges only."""
    with crm.session() as s:
        ours = s.customers.add(Customer("Ours", owner_id="m1", team_id="t1"))
        theirs = s.customers.add(Customer("Theirs", owner_id="u2", team_id="t2"))
        contact = s.contacts.add(Contact(str(ours.id), "Our", "Contact"))
    record = {
        "id": "planted",
        "kind": "customers",
        "survivor_id": ours.id,
        "duplicate_ids": [],
        "rules": {},
        "at": AT.isoformat(),
        "actor_id": "m1",
        "relinked": [["contacts", contact.id, "customer_id", theirs.id]],
        "before": {str(ours.id): to_data(ours)},
        "after": to_data(ours),
        "survivor_version": 1,
        "undone_at": None,
        "undone_by": None,
    }
    with crm.session(actor=MANAGER) as s:
        tx = s._transaction()
        pointer = {"merge_id": "planted", "survivor_id": ours.id}
        for stream, key, data in (("merges", "planted", record), ("merged_customers", "x1", pointer)):
            with pytest.raises(PermissionDenied):
                tx.record_put(stream, key, data)
        with pytest.raises(PermissionDenied):
            tx.record_delete("merges", "planted")
        s.rollback()
    with crm.session() as s:
        assert s.contacts.get(str(contact.id)).customer_id == ours.id
        assert s.customers.merges() == []


def test_the_gate_applies_the_field_rules_too(crm: pycrm.CRM) -> None:
    """The gate put the row scope on every read, but not the field rules: through ``s._transaction()`` the
    analyst read the national id it sees hidden and the e-mail it sees masked in clear, and filtered on them."""
    c = _customer(crm)
    with crm.session(actor=ANALYST) as s:
        tx = s._transaction()
        for row in (tx.get(Customer, str(c.id)), *tx.find(Customer, [], [], None, 0), *tx.iter(Customer, [], 10)):
            assert "national_id" not in row.custom
            assert "li.lei@" not in repr(row.emails)
        for field, op, value in (("custom.national_id", "startswith", "1101"), ("emails", "eq", "li.lei@example.com")):
            with pytest.raises(ValidationError, match="masked or hidden"):
                tx.count(Customer, [Condition(field, op, value, "custom" if field.startswith("custom.") else "text")])
        with pytest.raises(ValidationError, match="masked or hidden"):
            tx.find(Customer, [], [OrderBy("emails", False)], None, 0)


def test_the_gate_refuses_reports_and_raw_rows_over_masked_fields(open_crm: Callable[..., pycrm.CRM]) -> None:
    """A report reads its fields whole (one order's revenue is its amount) and raw row streams leave as
    stored: through the gate, neither over a field the actor sees masked, whatever the caller checked; rows
    read one by one come redacted."""
    crm = open_crm(field_rules=FIELD_RULES)
    with crm.session() as s:
        mine = s.customers.add(Customer("Mine Co", owner_id="u1"))
        s.orders.add(Order(str(mine.id), AT, Money("99", "CNY")))
        s.contacts.add(Contact(str(mine.id), "Li", "Lei", emails=["li.lei@example.com"]))
    with crm.session(actor=CLERK) as s:
        tx = s._transaction()
        assert "99" not in repr([o.amount for o in tx.find(Order, [], [], None, 0)])
        assert [c.emails for c in tx.iter(Contact, [], 10)] == [[]]
        if isinstance(tx, Reports):
            with pytest.raises(ValidationError, match="masked or hidden"):
                tx.report("top_customers", conditions=[], n=3, rates=None, lo=None, hi=None)
        if isinstance(tx, RFMPushdown):
            with pytest.raises(ValidationError, match="masked or hidden"):
                tx.rfm(AT, AT.date(), 5, [])
        if isinstance(tx, RowStreams):
            with pytest.raises(PermissionDenied, match="encrypted or masked"):
                tx.export_batches(Contact, [], ["id", "emails"], flat=str, json_native=False, batch_size=10)


def test_the_gate_refuses_a_mask_written_back(open_crm: Callable[..., pycrm.CRM]) -> None:
    """A row read through the gate and written back through it as it was shown: the missing hidden value
    and the redacted amount are refused there, whatever the repository checked before."""
    crm = open_crm(field_rules=FIELD_RULES)
    with crm.session() as s:
        mine = s.customers.add(Customer("Mine Co", owner_id="u1"))
        order = s.orders.add(Order(str(mine.id), AT, Money("99", "CNY")))
        person = s.contacts.add(Contact(str(mine.id), "Li", "Lei", emails=["li.lei@example.com"]))
    with crm.session(actor=CLERK) as s:
        tx = s._transaction()
        for kind, id in ((Contact, person.id), (Order, order.id)):
            shown = tx.get(kind, str(id))
            assert shown is not None
            with pytest.raises(ValidationError):
                tx.update(kind, shown, shown.version)
        s.rollback()
    with crm.session() as s:
        assert [e.value for e in s.contacts.get(str(person.id)).emails] == ["li.lei@example.com"]
        assert s.orders.get(str(order.id)).amount == Money("99", "CNY")


def test_a_merge_of_a_kind_the_actor_cannot_read_does_not_break_its_merges(crm: pycrm.CRM) -> None:
    """``merges()`` reads every merge record: one about tasks made the analyst's ``customers.merges()`` fail
    with "may not read tasks" (and a refusal in the trail) instead of leaving it out."""
    with crm.session() as s:
        a, b = (s.tasks.add(Task("Call", AT, assignee_id="u9")) for _ in range(2))
        s.tasks.merge(str(a.id), str(b.id))
        c, d = (s.customers.add(Customer("Twin", owner_id="u1")) for _ in range(2))
        merge = s.customers.merge(str(c.id), str(d.id))
    with crm.session(actor=ANALYST) as s:
        assert [m.id for m in s.customers.merges()] == [merge.id]
    with crm.session() as s:
        assert [e for e in s.audit.entries() if e.action == "permission_denied"] == []


def test_merges_by_an_actor_still_work_with_merge_records_written_by_the_merge(crm: pycrm.CRM) -> None:
    """The merge itself writes (and its unmerge updates) the records, for an actor allowed to merge."""
    with crm.session() as s:
        a = s.customers.add(Customer("Ours", owner_id="m1", team_id="t1"))
        b = s.customers.add(Customer("Ours dup", owner_id="m1", team_id="t1"))
        s.contacts.add(Contact(str(b.id), "Their", "Contact"))
    with crm.session(actor=MANAGER) as s:
        merge = s.customers.merge(str(a.id), str(b.id))
        assert [r.entity for r in merge.relinked] == ["contacts"]
    with crm.session(actor=MANAGER) as s:
        assert [m.id for m in s.customers.merges()] == [merge.id]
        s.customers.unmerge(merge.id)
    with crm.session() as s:
        assert [c.customer_id for c in s.contacts.find()] == [b.id]
        assert s.customers.merges()[0].undone_by == "m1"


def test_merge_records_show_no_blind_index_of_a_hidden_value(open_crm: Callable[..., pycrm.CRM]) -> None:
    """Merge records keep the rows as stored: the blind index of an encrypted national id stayed in the
    snapshots a manager who sees the national id hidden was shown (equal indexes: the same number)."""
    ring = KeyRing({"k1": bytes(range(32))}, active="k1", index_key=bytes(range(32, 64)))
    rules = FieldRules({"manager": {"customers.custom.national_id": "hide"}})
    crm = open_crm(keyring=ring, encrypted={"customers": ["custom.national_id"]}, field_rules=rules)
    with crm.session() as s:
        a = s.customers.add(Customer("Ours", owner_id="m1", team_id="t1", custom={"national_id": NATIONAL_ID}))
        b = s.customers.add(Customer("Ours dup", owner_id="m1", team_id="t1", custom={"national_id": NATIONAL_ID}))
    with crm.session(actor=MANAGER) as s:
        shown = [s.customers.merge(str(a.id), str(b.id)), *s.customers.merges()]
    for record in shown:
        for snapshot in (*record.before.values(), record.after):
            assert snapshot["custom"] == {}, snapshot["custom"]


def test_verify_by_an_actor_with_field_rules_checks_the_chain_as_stored(open_crm: Callable[..., pycrm.CRM]) -> None:
    """An actor that reads every record may verify the chain; with a field rule its entries come masked, and
    ``verify()`` hashed the masked diffs: "entry 1 was altered" on an untouched trail (a false alarm)."""
    auditor = User("Aud", "aud@example.com", roles=[Role("auditor", [Permission("*", "read", "all")])], id="au")
    crm = open_crm(field_rules=FieldRules({"auditor": {"customers.emails": "mask"}}))
    _customer(crm)
    with crm.session(actor=auditor) as s:
        assert [e.diff["emails"] for e in s.audit.entries()] == [[None, ["l***@example.com"]]]
        assert s.audit.verify().ok


# ---------------------------------------------------------------- erasure (owned by the erasure work)


def test_erasure_by_an_actor_that_sees_fields_hidden_erases_them(open_crm: Callable[..., pycrm.CRM]) -> None:
    """``personal.erase`` anonymizes the record as the actor reads it: a field hidden from the actor reads
    empty, the anonymized copy leaves it empty, and the update -- which never drops a field the actor cannot
    see -- puts the stored e-mail back. The person keeps their e-mail address after "erasure"."""
    crm = open_crm(field_rules=FIELD_RULES)
    with crm.session() as s:
        c = s.customers.add(Customer("Mine Co", owner_id="u1"))
        person = s.contacts.add(Contact(str(c.id), "Li", "Lei", emails=["li.lei@example.com"]))
    with crm.session(actor=CLERK) as s:
        s.personal.erase(str(person.id))
    with crm.session() as s:
        assert s.contacts.get(str(person.id)).emails == []


def test_a_merge_rule_cannot_pick_a_value_the_actor_sees_hidden(open_crm: Callable[..., pycrm.CRM]) -> None:
    """A merge rule names a field and picks whose value the survivor keeps: for a field the actor sees
    hidden, the pick is made blind (and a comparison of the outcomes would tell the values apart)."""
    crm = open_crm(field_rules=FieldRules({"manager": {"customers.emails": "hide"}}))
    with crm.session() as s:
        a = s.customers.add(Customer("Ours", owner_id="m1", team_id="t1", emails=["a@ours.example"]))
        b = s.customers.add(Customer("Ours dup", owner_id="m1", team_id="t1", emails=["b@ours.example"]))
    with crm.session(actor=MANAGER) as s:
        with pytest.raises(ValidationError, match="masked or hidden"):
            s.customers.merge(str(a.id), str(b.id), rules={"emails": "primary"})
        merged = s.customers.merge(str(a.id), str(b.id), rules={"name": "most_complete"})
        assert merged.after.get("emails") in (None, [])
    with crm.session() as s:
        assert sorted(e.value for e in s.customers.get(str(a.id)).emails) == ["a@ours.example", "b@ours.example"]


def test_a_task_cannot_follow_a_record_outside_the_actors_scope(crm: pycrm.CRM) -> None:
    """A task's ``related_id`` is a soft reference, re-pointed by merges and archived with its record: a rep's
    task related to another owner's customer was re-pointed when that customer was merged away (telling the
    rep of the merge and its survivor) and vanished when it was archived. For an actor, the record must be one
    it reads; "not yours" and "not there" give the same error."""
    with crm.session() as s:
        mine = s.customers.add(Customer("Mine Co", owner_id="u1", team_id="t1"))
        theirs = s.customers.add(Customer("Theirs Co", owner_id="u2", team_id="t2"))
    with crm.session(actor=REP) as s:
        errors = []
        for related in (str(theirs.id), "no-such-record"):
            with pytest.raises(ValidationError) as exc:
                s.tasks.add(Task("Call", AT, assignee_id="u1", related_id=related))
            errors.append(str(exc.value).replace(related, "ID"))
        assert errors[0] == errors[1]
        with pytest.raises(ValidationError, match="no record with id"):
            s.tasks.add_many([Task("Call", AT, assignee_id="u1", related_id=str(theirs.id))])
        task = s.tasks.add(Task("Call", AT, assignee_id="u1", related_id=str(mine.id)))
        task.related_id = str(theirs.id)
        with pytest.raises(ValidationError, match="no record with id"):
            s.tasks.update(task)
    with crm.session() as s:
        assert [t.related_id for t in s.tasks.find()] == [mine.id]
        s.customers.update(_owned_by(s.customers.get(str(mine.id)), "u2"))
    with crm.session(actor=REP) as s:  # its own task keeps pointing where it did, though it no longer reads it
        mine_task = s.tasks.find()[0]
        mine_task.title = "Call again"
        s.tasks.update(mine_task)


def _owned_by(c: Customer, owner: str) -> Customer:
    """``c`` handed to another owner."""
    c.owner_id = owner
    return c


def test_the_satisfaction_report_joins_only_what_the_actor_may_read(open_crm: Callable[..., pycrm.CRM]) -> None:
    """The satisfaction report groups by the agent's team and the customer's segment, read from users and
    customers joined in the store: called on the gate directly with teams or segments conditions of the
    caller's own (none: "every row"), the gate puts the actor's read scope of users / customers in their
    place, refuses a field the actor sees masked, and a kind it may not read at all."""
    rules = FieldRules({"clerk": {"customers.category": "redact"}})
    crm = open_crm(field_rules=rules)
    clerk = User("Clerk", "clerk@example.com", roles=[Role("clerk", [("surveys", "read", "all"), ("customers", "read", "all")])])
    with crm.session() as s:
        s.users.add(User("Them", "them@example.com", team_id="SECRET-team", id="u2"))
        mine = s.customers.add(Customer("Mine Co", owner_id="u1", team_id="t1", category="Retail"))
        theirs = s.customers.add(Customer("Theirs Co", owner_id="u2", team_id="t2", category="SECRET-segment"))
        for c in (mine, theirs):
            s.surveys.add(Survey(str(c.id), "csat", AT, score=5, answered_at=AT, user_id="u2"))
    with crm.session(actor=MANAGER) as s:  # the team's customers and users: not u2's team nor theirs' segment
        tx = s._transaction()
        kw = {"kind": "csat", "groups": ("team", "segment"), "period": None, "lo": None, "hi": None}
        got = tx.report("satisfaction", conditions=[], teams=[], segments=[], **kw) if isinstance(tx, Reports) else None
        for report in (got, s.analytics.satisfaction(by=("team", "segment"))):
            if report is not None:
                assert [(r.team_id, r.segment, r.sent) for r in report] == [(None, "Retail", 1)]
        if isinstance(tx, Reports):  # grouping without the join arguments joins nothing
            bare = tx.report("satisfaction", conditions=[], **kw)
            assert [(r.team_id, r.segment, r.sent) for r in bare] == [(None, None, 1)]
    with crm.session(actor=clerk) as s:
        with pytest.raises(ValidationError, match="masked or hidden"):
            s.analytics.satisfaction(by="segment")
        with pytest.raises(PermissionDenied, match="may not read users"):
            s.analytics.satisfaction(by="team")
        assert [r.sent for r in s.analytics.satisfaction()] == [2]  # no join: scores only
    # default rules: the analyst sees the comment redacted, and a report cannot filter on it
    with open_crm().session(actor=ANALYST) as s, pytest.raises(ValidationError, match="comment"):
        s.analytics.satisfaction(where={"comment": {"startswith": "S"}})


def test_the_satisfaction_report_groups_only_by_ticket_categories_the_actor_may_read(
    open_crm: Callable[..., pycrm.CRM],
) -> None:
    """Grouping surveys by the category of the ticket they are about joins the tickets the actor may read: a
    survey of the rep's customer about another owner's ticket falls in the ``None`` group, as one about no
    ticket does, and that ticket's category shows nowhere (nor when the gate is called with a ``categories``
    scope of the caller's own); an actor seeing the ticket category masked is refused, one that may not read
    tickets is denied."""
    rules = FieldRules({"clerk": {"tickets.category": "redact"}})
    crm = open_crm(field_rules=rules)
    clerk = User("Clerk", "clerk@example.com", roles=[Role("clerk", [("surveys", "read", "all"), ("tickets", "read", "all")])])
    blind = User("Blind", "blind@example.com", roles=[Role("blind", [("surveys", "read", "all")])])
    with crm.session() as s:
        mine = s.customers.add(Customer("Mine Co", owner_id="u1", team_id="t1"))
        theirs = s.customers.add(Customer("Theirs Co", owner_id="u2", team_id="t2"))
        billing = s.tickets.add(Ticket(str(mine.id), "invoice wrong", category="Billing/Invoice"))
        secret = s.tickets.add(Ticket(str(theirs.id), "their issue", category="SECRET/Category"))
        for customer, ticket, score in [(mine, billing, 4), (mine, secret, 1), (mine, None, 5), (theirs, secret, 2)]:
            about = None if ticket is None else str(ticket.id)
            s.surveys.add(Survey(str(customer.id), "csat", AT, score=score, answered_at=AT, ticket_id=about))
    with crm.session() as s:  # the system actor reads every ticket
        everything = [(r.category, r.sent, r.mean_score) for r in s.analytics.satisfaction(by="category")]
        assert everything == [
            ("Billing/Invoice", 1, Decimal("4.00")),
            ("SECRET/Category", 2, Decimal("1.50")),
            (None, 1, Decimal("5.00")),
        ]
    with crm.session(actor=REP) as s:
        tx = s._transaction()
        kw = {"kind": "csat", "groups": ("category",), "period": None, "lo": None, "hi": None}
        got = tx.report("satisfaction", conditions=[], categories=[], **kw) if isinstance(tx, Reports) else None
        for report in (got, s.analytics.satisfaction(by="category"), s.analytics.satisfaction(by=("category", "agent"))):
            if report is not None:
                assert [(r.category, r.sent, r.mean_score) for r in report] == [
                    ("Billing/Invoice", 1, Decimal("4.00")),
                    (None, 2, Decimal("3.00")),
                ]
                assert "SECRET" not in repr(list(report))
    with crm.session(actor=clerk) as s:
        with pytest.raises(ValidationError, match="masked or hidden"):
            s.analytics.satisfaction(by="category")
        tx = s._transaction()
        if isinstance(tx, Reports):  # the gate refuses it too, whatever scope the caller gives
            with pytest.raises(ValidationError, match="masked or hidden"):
                tx.report("satisfaction", conditions=[], categories=[], **kw)
        assert [r.sent for r in s.analytics.satisfaction(by="agent")] == [4]  # no join: scores only
    with crm.session(actor=blind) as s, pytest.raises(PermissionDenied, match="may not read tickets"):
        s.analytics.satisfaction(by="category")
