"""Field masking through a store, on every adapter: what each role reads, and what it may write back.

An actor whose role masks or hides a field reads the masked form on every path; saving the entity with
other fields changed keeps the real stored values; a masked value copied into another field or another
record is refused with a ValidationError naming the field, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import pycrm
from pycrm import Contact, Customer, Permission, Role, User, ValidationError
from pycrm.domain._codec import to_data
from pycrm.security import FieldRules

RULES = FieldRules(
    {
        "clerk": {"*.phones": "mask", "customers.emails": "mask", "customers.custom.national_id": "national_id"},
        "hider": {"customers.phones": "hide", "customers.emails": "hide", "customers.custom.national_id": "hide"},
        "analyst": {"*.emails": "mask", "*.phones": "mask", "customers.custom.national_id": "hide"},
    }
)
EVERYTHING = [Permission("*", "*", "all")]
CLERK = User("Clerk", "clerk@example.com", roles=[Role("clerk", EVERYTHING)], id="u1")
HIDER = User("Hider", "hider@example.com", roles=[Role("hider", EVERYTHING)], id="u2")
ANALYST = User("Analyst", "analyst@example.com", roles=["analyst"], id="u3")
ADMIN = User("Admin", "admin@example.com", roles=["admin"], id="u4")
CLERK_AND_ADMIN = User("Both", "both@example.com", roles=[Role("clerk", EVERYTHING), "admin"], id="u5")
CLERK_AND_HIDER = User("Mixed", "mixed@example.com", roles=[Role("clerk", EVERYTHING), Role("hider", EVERYTHING)], id="u6")

NATIONAL_ID = "110101199003077777"
REAL = {
    "phones": ["+8613800138000"],
    "emails": ["li.lei@example.com"],
    "custom": {"national_id": NATIONAL_ID, "tier": "gold"},
}
MASKED = {
    "phones": ["+86 138****8000"],
    "emails": ["l***@example.com"],
    "custom": {"national_id": "**************7777", "tier": "gold"},
}
HIDDEN: dict[str, Any] = {"phones": [], "emails": [], "custom": {"tier": "gold"}}


@pytest.fixture
def masked_crm(open_crm: Callable[..., pycrm.CRM]) -> pycrm.CRM:
    return open_crm(field_rules=RULES)


def _seed(crm: pycrm.CRM) -> tuple[str, str]:
    with crm.session() as s:
        c = s.customers.add(
            Customer(
                "Acme",
                emails=["Li.Lei@example.com"],
                phones=["138 0013 8000"],
                custom={"national_id": NATIONAL_ID, "tier": "gold"},
            )
        )
        k = s.contacts.add(Contact(c.id, "Lei", "Li", phones=["+86 139 1234 5678"], emails=["lei@acme.example"]))
    return str(c.id), str(k.id)


def _seen(c: Customer) -> dict[str, Any]:
    return {
        "phones": [str(p) for p in c.phones],
        "emails": [str(getattr(e, "value", e)) for e in c.emails],
        "custom": dict(c.custom),
    }


def _stored(crm: pycrm.CRM) -> dict[str, Any]:
    with crm.session() as s:
        return {e.id: to_data(e) for repo in ("customers", "contacts") for e in getattr(s, repo).iter()}


READERS = [
    (CLERK, MASKED),
    (HIDER, HIDDEN),
    (ANALYST, {**MASKED, "custom": {"tier": "gold"}}),
    (ADMIN, REAL),
    (CLERK_AND_ADMIN, REAL),  # a role without a rule for the field shows it
    (CLERK_AND_HIDER, MASKED),  # a mask beats hiding
]


def test_each_role_reads_masked_or_hidden_fields_on_every_path(masked_crm: pycrm.CRM) -> None:
    cid, kid = _seed(masked_crm)
    for actor, expected in READERS:
        with masked_crm.session(actor=actor) as s:
            got = [
                s.customers.get(cid),
                *s.customers.find(),
                *s.customers.iter(batch_size=1),
            ]
            if expected == REAL:  # filters match the real value for those who see it ...
                got += [*s.customers.find({"phones": "138 0013 8000"}), *s.customers.find({"emails": "li.lei@example.com"})]
            else:  # ... and are refused to the others: a narrowing filter would read the value back
                for where in ({"phones": "138 0013 8000"}, {"emails": "li.lei@example.com"}):
                    with pytest.raises(ValidationError, match="masked or hidden"):
                        s.customers.count(where)
                got += [s.customers.get(cid), s.customers.get(cid)]
            assert len(got) == 5, actor.id
            for c in got:
                assert _seen(c) == expected, actor.id
                assert c.name == "Acme"
    with masked_crm.session(actor=CLERK) as s:  # "*.phones" reaches the other repositories too
        k = s.contacts.get(kid)
        assert [str(p) for p in k.phones] == ["+86 139****5678"]
        assert [e.value for e in k.emails] == ["lei@acme.example"]  # only customers.emails is masked for clerks
    with masked_crm.session(actor=ANALYST) as s:
        k = s.contacts.find()[0]
        assert [str(p) for p in k.phones] == ["+86 139****5678"]
        assert [str(e) for e in k.emails] == ["l***@acme.example"]
    with masked_crm.session() as s:  # the system actor reads the real values; reading changed nothing
        assert _seen(s.customers.get(cid)) == REAL
        assert s.customers.get(cid).version == 1


def test_saving_a_masked_entity_with_other_changes_keeps_the_real_values(masked_crm: pycrm.CRM) -> None:
    for actor in (CLERK, HIDER, CLERK_AND_HIDER):
        cid, _ = _seed(masked_crm)
        with masked_crm.session(actor=actor) as s:
            c = s.customers.get(cid)
            c.status = "active"
            c.custom["tier"] = "platinum"
            saved = s.customers.update(c)
            assert saved.version == 2
        with masked_crm.session() as s:
            c = s.customers.get(cid)
            assert c.status == "active" and c.version == 2
            assert _seen(c) == {**REAL, "custom": {"national_id": NATIONAL_ID, "tier": "platinum"}}, actor.id
        last = list(masked_crm.audit.entries())[-1]
        assert (last.action, last.actor_id, last.entity_id) == ("update", actor.id, cid)
        # the trail records what the actor changed, nothing about the fields it could not see
        assert last.diff == {
            "status": ["lead", "active"],
            "custom": [{"national_id": NATIONAL_ID, "tier": "gold"}, {"national_id": NATIONAL_ID, "tier": "platinum"}],
        }
    cid, _ = _seed(masked_crm)
    with masked_crm.session(actor=CLERK) as s:  # a field replaced with a new value keeps the new value
        c = s.customers.get(cid)
        c.phones = ["+86 139 0000 1111"]  # typed in by the clerk: a real number
        s.customers.update(c)
    with masked_crm.session() as s:
        c = s.customers.get(cid)
        assert [p.e164 for p in c.phones] == ["+8613900001111"]
        assert [e.value for e in c.emails] == ["li.lei@example.com"]
        assert c.custom["national_id"] == NATIONAL_ID


def test_an_email_appended_in_place_to_a_masked_list_is_not_silently_lost(masked_crm: pycrm.CRM) -> None:
    for actor in (CLERK, HIDER):
        cid, _ = _seed(masked_crm)
        with masked_crm.session(actor=actor) as s:
            c = s.customers.get(cid)
            c.emails.append("new@example.com")
            try:
                s.customers.update(c)
            except ValidationError:
                continue  # refusing the write is an acceptable answer; dropping the new address is not
        with masked_crm.session() as s:
            assert "new@example.com" in [e.value for e in s.customers.get(cid).emails], actor.id


#: (the field the error must name, a write that copies a masked value there); ``c`` is the clerk's view.
COPIES: list[tuple[str, Callable[[Any, Customer], object]]] = [
    ("name", lambda s, c: s.customers.update(_set(c, name=c.phones[0]))),
    ("name", lambda s, c: s.customers.update(_set(c, name=c.emails[0]))),
    ("custom.backup", lambda s, c: s.customers.update(_set(c, custom={**c.custom, "backup": c.custom["national_id"]}))),
    ("emails[0]", lambda s, c: s.customers.add(Customer("Copy", emails=[c.emails[0]]))),
    ("name", lambda s, c: s.customers.add(Customer(c.phones[0]))),
    ("custom.national_id", lambda s, c: s.customers.add(Customer("Copy", custom={"national_id": c.custom["national_id"]}))),
    ("emails[0]", lambda s, c: s.contacts.add(Contact(c.id, "Copy", "Cat", emails=[c.emails[0]]))),
    ("phones[0]", lambda s, c: s.contacts.add(Contact(c.id, "Copy", "Cat", phones=[c.phones[0]]))),
    # the Masked marker lost on the way, the shape of a masked address kept
    ("emails[0]", lambda s, c: s.customers.add(Customer("Copy", emails=[str(c.emails[0])]))),
]


def _refused(crm: pycrm.CRM, cases: list[tuple[str, Callable[[Any, Customer], object]]]) -> None:
    cid, _ = _seed(crm)
    before = _stored(crm)
    with crm.session(actor=CLERK) as s:
        for i, (field, write) in enumerate(cases):
            c = s.customers.get(cid)
            with pytest.raises(ValidationError) as info:
                write(s, c)
            assert [e.field for e in info.value.errors] == [field], i
            assert info.value.errors[0].code in ("masked", "invalid_phone"), i
    assert _stored(crm) == before  # the session committed: nothing of the refused writes was kept


def test_a_masked_value_copied_elsewhere_is_refused_naming_the_field(masked_crm: pycrm.CRM) -> None:
    _refused(masked_crm, COPIES)


def test_a_masked_value_copied_into_the_category_is_refused(masked_crm: pycrm.CRM) -> None:
    _refused(masked_crm, [("category", lambda s, c: s.customers.update(_set(c, category=c.custom["national_id"])))])


def _set(entity: Any, **changes: Any) -> Any:
    for name, value in changes.items():
        setattr(entity, name, value)
    return entity


def test_a_ticket_category_or_channel_masked_or_hidden_reads_masked_and_no_report_groups_by_it(
    open_crm: Callable[..., pycrm.CRM],
) -> None:
    from pycrm import Ticket

    rules = FieldRules({"outsourcer": {"tickets.category": "mask", "tickets.channel": "hide"}})
    crm = open_crm(field_rules=rules)
    agent = User("Agent", "agent@example.com", roles=[Role("outsourcer", EVERYTHING)], id="u7")
    with crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        t = s.tickets.add(Ticket(c.id, "Paper jam", category="Hardware/Printer", channel="phone"))
    with crm.session(actor=agent) as s:
        seen = s.tickets.get(t.id)
        assert seen.category != "Hardware/Printer" and seen.channel is None
        for where in ({"category": {"startswith": "Hardware/"}}, {"channel": "phone"}):
            with pytest.raises(ValidationError, match="masked or hidden"):
                s.tickets.find(where)
        for by in ("category", "channel", ("status", "channel")):
            with pytest.raises(ValidationError, match="masked or hidden") as err:
                s.analytics.ticket_summary(by=by)
            assert set(err.value.fields) <= {"category", "channel"}
        # reports that do not group by them still run
        assert [(r.status, r.tickets) for r in s.analytics.ticket_summary(by="status")] == [("new", 1)]
        assert [r.tickets for r in s.analytics.service_times()] == [1]
        seen.subject = "Paper jam, tray 2"
        s.tickets.update(seen)  # the real category and channel are kept
    with crm.session() as s:
        again = s.tickets.get(t.id)
        assert (again.subject, again.category, again.channel) == ("Paper jam, tray 2", "Hardware/Printer", "phone")
