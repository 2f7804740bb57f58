"""The access policy on the storage port (storage/_gate.py), attacked as an intruder would.

* Every operation of the port has a rule, and the gate offers nothing without one: a new adapter method
  or capability fails :func:`test_every_port_operation_has_a_rule` until someone decides its rule.
* Every public call reachable from a session is listed in :data:`SURFACE` with an attack: a sales rep
  reaching for another owner's records. A new method fails :func:`test_the_surface_is_listed` until it is
  listed, and then has to pass the attack: scoped (nothing of the other owner's records comes back, in a
  result or an error message) or refused, and nothing of theirs changes.
* The same surface on the rep's own records, with field rules hiding and masking some of their fields:
  nothing hidden or masked shows (:func:`test_no_call_shows_a_field_the_actor_sees_hidden_or_masked`).
* The steps that pass by the gate, and those that read rows as stored through it, are few and named
  (:func:`test_the_steps_past_the_gate_are_pinned`, :func:`test_the_reads_of_rows_as_stored_are_pinned`).
"""

from __future__ import annotations

import datetime as dt
import inspect
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pycrm
import pycrm.io as pio
from pycrm import (
    Campaign,
    CampaignMember,
    CampaignResponse,
    Contact,
    Customer,
    Incoming,
    Interaction,
    Money,
    NotFound,
    Opportunity,
    Order,
    PermissionDenied,
    Survey,
    Task,
    Ticket,
    User,
    ValidationError,
)
from pycrm.automation import CustomEvent
from pycrm.domain import ENTITY_REPOSITORIES
from pycrm.domain._codec import to_data
from pycrm.security import FieldRules
from pycrm.service import SlaPolicy, SlaTarget
from pycrm.storage import port
from pycrm.storage._gate import RULES, Gate, gate_operations
from tests.contract.test_port import TX_CAPABILITIES

REP = User("Rep", "rep@example.com", roles=["sales"], team_id="t1", id="u1")
AT = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
SRC = Path(pycrm.__file__).parent

#: The transaction-side protocols of the port: the plain transaction and each optional capability.
PORT_PROTOCOLS = (port.Transaction, *TX_CAPABILITIES)


def _members(proto: type) -> set[str]:
    return {n for n, v in vars(proto).items() if not n.startswith("_") and (callable(v) or isinstance(v, property))}


def test_every_port_operation_has_a_rule() -> None:
    declared = set().union(*(_members(p) for p in PORT_PROTOCOLS))
    assert declared - set(RULES) == set(), "a port operation without a rule in storage/_gate.py RULES"
    offered = gate_operations()
    assert offered <= set(RULES)
    refused = {n for n, rule in RULES.items() if rule == "refused"}
    assert not offered & refused, "the gate offers an operation whose rule is to refuse it"
    assert declared >= offered - {"get_for"}, "the gate offers an operation the port does not declare"


def test_the_gate_offers_no_capability_that_passes_the_row_checks(crm: pycrm.CRM) -> None:
    with crm.session(actor=REP) as s:
        tx = s._transaction()
        assert isinstance(tx, Gate)
        for proto in (port.PreparedWrites, port.Snapshots, port.FileBacked):
            assert not isinstance(tx, proto), proto.__name__
        for name, rule in RULES.items():
            if rule == "refused":
                assert not hasattr(tx, name), name
    with crm.session() as s:  # the system actor gets the adapter's own transaction
        assert not isinstance(s._transaction(), Gate)


def _calls(pattern: str) -> list[tuple[str, str]]:
    """(module, reason) of every call in the package matching ``pattern`` (its group: the reason given)."""
    found = ((p, m) for p in SRC.rglob("*.py") for m in re.findall(pattern, p.read_text(encoding="utf-8")))
    return sorted((str(p.relative_to(SRC)), m) for p, m in found)


def test_the_steps_past_the_gate_are_pinned() -> None:
    """``Session._unguarded`` hands out the adapter's transaction: each use keeps the store consistent
    whatever the actor sees, and a new one must be added here, with its reason, on purpose."""
    assert _calls(r'_unguarded\(\s*"([^"]+)"') == [
        ("storage/_attachments.py", "gc compares the blob store with every attachment row"),
        ("storage/_merging.py", "a merge re-points every record that points at a duplicate"),
        ("storage/_merging.py", "an unmerge points back every record its merge re-pointed"),
        ("storage/_personal.py", "an erasure erases the audit diffs of the records it erased"),
        ("storage/_personal.py", "an erasure erases the custom events about the records it erased"),
        ("storage/_personal.py", "an erasure rewrites the merge and archive records of the records it erased"),
        ("storage/_personal.py", "an erasure rewrites the merge and archive records of the records it erased"),
        ("storage/_repository.py", "a record on another owner's order lines is still in use"),
        ("storage/_repository.py", "a unique field (a product's SKU) is unique among every record, seen or not"),
        ("storage/_repository.py", "the events of the session's own writes, checked as they were made"),
        ("storage/_repository.py", "the policy looks up the row a scope follows"),
        ("storage/_repository.py", "verify hashes the trail as stored; only its result leaves"),
    ]


def test_the_reads_of_rows_as_stored_are_pinned() -> None:
    """``Session._stored`` (and ``session.unit.stored``) hands out rows and records as stored: inside the row
    scope, but without the field rules. Each use moves or rewrites them as they are and presents what it hands
    back itself; a new one must be added here, with its reason, on purpose."""
    assert _calls(r'\b_?stored\(\s*"([^"]+)"') == [
        ("io/_archive.py", "archived() matches the records as stored (blind indexes) and presents each one"),
        ("io/_archive.py", "archiving moves the rows as they are stored"),
        ("io/_archive.py", "unarchiving brings the records back as they were stored"),
        ("storage/_journal.py", "apply builds the incoming version on the row as stored"),
        ("storage/_merging.py", "an unmerge restores the records and the survivor as the merge kept them"),
        ("storage/_merging.py", "merges() lists the records as kept and presents each one"),
        ("storage/_personal.py", "an erasure anonymizes the fields the actor sees hidden or masked too"),
        ("storage/_personal.py", "an erasure reads the archived records it rewrites as they are kept"),
        ("storage/_personal.py", "an erasure reads the merge records it rewrites as they are kept"),
    ]


# ---------------------------------------------------------------- the intruder


class World:
    """A store where the rep owns one customer and another owner has everything else, marked SECRET."""

    def __init__(self, crm: pycrm.CRM, owner: str = "u2", team: str = "t2"):
        with crm.session() as s:
            self.mine = s.customers.add(Customer("Mine Co", owner_id="u1", team_id="t1", emails=["me@mine.example"]))
            theirs = s.customers.add(
                Customer(
                    "SECRET Theirs Co",
                    owner_id=owner,
                    team_id=team,
                    emails=["secret@theirs.example"],
                    custom={"note": "SECRET note"},
                )
            )
            dup = s.customers.add(Customer("SECRET Theirs Dup", owner_id=owner, team_id=team, emails=["dup@theirs.example"]))
            self.contact = s.contacts.add(Contact(theirs.id, "SECRET", "Person", emails=["person@theirs.example"]))
            self.order = s.orders.add(Order(theirs.id, AT, Money("99", "CNY")))
            self.deal = s.opportunities.add(Opportunity(theirs.id, "SECRET deal", Money("500", "CNY"), owner_id=owner))
            self.ticket = s.tickets.add(Ticket(theirs.id, "SECRET ticket"))
            self.note = s.interactions.add(Interaction(theirs.id, "note", AT, subject="SECRET call", user_id=owner))
            self.survey = s.surveys.add(
                Survey(theirs.id, "csat", AT, score=1, comment="SECRET complaint", user_id=owner, answered_at=AT)
            )
            self.task = s.tasks.add(Task("SECRET task", AT, assignee_id=owner, related_id=theirs.id))
            self.campaign = s.campaigns.add(Campaign("SECRET campaign", "email", spend=Money("700", "CNY"), owner_id=owner))
            self.member = s.campaign_members.add(CampaignMember(str(self.campaign.id), str(theirs.id), AT))
            self.response = s.campaign_responses.add(
                CampaignResponse(str(self.member.id), str(self.campaign.id), str(theirs.id), "sent", AT)
            )
            self.my_task = s.tasks.add(Task("Call back", AT, assignee_id="u1", related_id=dup.id))
            self.merge = s.customers.merge(theirs.id, dup.id)
            self.theirs, self.dup = s.customers.get(theirs.id), dup

    def snapshot(self, crm: pycrm.CRM) -> dict[str, Any]:
        with crm.session() as s:
            return {r: [to_data(e) for e in getattr(s, r).find()] for r in ENTITY_REPOSITORIES if r != "users"} | {
                "merges": [m.to_data() for m in s.customers.merges()],
            }


def _csv(tmp: Path) -> Path:
    path = tmp / "in.csv"
    path.write_text("id,name,owner_id\nsneaky,Sneaky,u1\n", encoding="utf-8")
    return path


def _incoming(w: World) -> list[Incoming]:
    data = {"name": "SECRET overwritten", "owner_id": "u2"}
    return [Incoming("customers", str(w.theirs.id), "upsert", w.theirs.version + 1, data)]


Attack = Callable[[Any, World, Path], Any]

#: Every public call reachable from a session, with an attack on the other owner's records.
#: An SLA policy whose targets look at the customer's tier: its report reads customers too.
_SLA = SlaPolicy([SlaTarget("gold", customer_tags=["gold"], resolution="2h"), SlaTarget("all", resolution="8h")])

SURFACE: dict[str, Attack] = {
    # repositories (each attacked on the kinds the other owner holds)
    "repository.add": lambda s, w, t: s.contacts.add(Contact(str(w.theirs.id), "Planted", "Contact")),
    "repository.add_many": lambda s, w, t: s.orders.add_many([Order(str(w.theirs.id), AT, Money("1", "CNY"))]),
    "repository.get": lambda s, w, t: [
        _try(lambda r=r, i=i: getattr(s, r).get(i))
        for r, i in [
            ("customers", w.theirs.id),
            ("customers", w.dup.id),
            ("contacts", w.contact.id),
            ("orders", w.order.id),
            ("opportunities", w.deal.id),
            ("tickets", w.ticket.id),
            ("interactions", w.note.id),
            ("surveys", w.survey.id),
            ("tasks", w.task.id),
            ("campaigns", w.campaign.id),
            ("campaign_members", w.member.id),
            ("campaign_responses", w.response.id),
        ]
    ],
    "repository.update": lambda s, w, t: s.customers.update(_renamed(w.theirs)),
    "repository.delete": lambda s, w, t: [_try(lambda: s.tasks.delete(w.task.id)), _try(lambda: s.contacts.delete(w.contact.id))],
    "repository.find": lambda s, w, t: [
        s.customers.find(),
        s.customers.find({"name": {"startswith": "S"}}),
        s.customers.find({"owner_id": "u2"}),
        s.tasks.find({"related_id": str(w.theirs.id)}),
        s.contacts.find(),
        s.opportunities.find(),
        s.surveys.find(),
        s.surveys.find({"user_id": "u2"}),
        s.surveys.find({"customer_id": str(w.theirs.id)}),
        s.campaigns.find(),
        s.campaign_members.find({"campaign_id": str(w.campaign.id)}),
        s.campaign_responses.find({"customer_id": str(w.theirs.id)}),
    ],
    "repository.count": lambda s, w, t: [
        s.customers.count({"owner_id": "u2"}),
        s.orders.count(),
        s.tickets.count(),
        s.surveys.count(),
    ],
    "repository.iter": lambda s, w, t: [
        list(getattr(s, r).iter()) for r in ("customers", "contacts", "orders", "tasks", "surveys")
    ],
    "repository.find_duplicates": lambda s, w, t: s.customers.find_duplicates(),
    "repository.merge": lambda s, w, t: s.customers.merge(str(w.mine.id), str(w.theirs.id)),
    "repository.unmerge": lambda s, w, t: s.customers.unmerge(w.merge.id),
    "repository.merges": lambda s, w, t: s.customers.merges(),
    # analytics
    "analytics.rfm": lambda s, w, t: s.analytics.rfm(as_of="2025-12-31"),
    "quality.report": lambda s, w, t: [
        s.quality.report("customers", duplicates=True),
        s.quality.report("contacts"),
        s.quality.report("opportunities"),
        _try(lambda: s.quality.report("customers", fields=["emails", "custom.note"])),
    ],
    "quality.scores": lambda s, w, t: [s.quality.scores("customers"), s.quality.scores("contacts"), s.quality.scores("tickets")],
    "analytics.forecast": lambda s, w, t: s.analytics.forecast(by="owner_id"),
    "analytics.sales_series": lambda s, w, t: s.analytics.sales_series(by=("region", "owner"), period="week"),
    "analytics.forecast_sales": lambda s, w, t: s.analytics.forecast_sales(by="region", period="week", horizon=2),
    "analytics.funnel": lambda s, w, t: s.analytics.funnel(),
    "analytics.win_rate": lambda s, w, t: s.analytics.win_rate(),
    "analytics.sales_cycle": lambda s, w, t: s.analytics.sales_cycle(),
    "analytics.customer_activity": lambda s, w, t: s.analytics.customer_activity(),
    "analytics.top_customers": lambda s, w, t: s.analytics.top_customers(),
    "analytics.ticket_summary": lambda s, w, t: s.analytics.ticket_summary(),
    "analytics.service_times": lambda s, w, t: s.analytics.service_times(),
    "analytics.sla": lambda s, w, t: s.analytics.sla(_SLA, by=("agent", "target")),
    "analytics.product_sales": lambda s, w, t: [
        *(s.analytics.product_sales(by=by) for by in ("product", "category", "region", "owner")),
        s.analytics.product_sales(by="owner", where={"customer_id": str(w.theirs.id)}),
    ],
    "analytics.frequent_itemsets": lambda s, w, t: [
        s.analytics.frequent_itemsets(min_support=1),
        s.analytics.frequent_itemsets(min_support=1, where={"customer_id": str(w.theirs.id)}),
    ],
    "analytics.basket_rules": lambda s, w, t: [
        s.analytics.basket_rules(min_support=1, min_threshold=0),
        s.analytics.basket_rules(min_support=1, min_threshold=0, where={"customer_id": str(w.theirs.id)}),
    ],
    "analytics.also_bought": lambda s, w, t: [
        *(s.analytics.also_bought(p) for p in ("p1", "p2", "nope")),
        s.analytics.also_bought("p1", where={"customer_id": str(w.theirs.id)}),
    ],
    "analytics.satisfaction": lambda s, w, t: [
        s.analytics.satisfaction(by=("agent", "team", "segment", "category")),
        s.analytics.satisfaction(kind="nps", where={"customer_id": str(w.theirs.id)}),
    ],
    "analytics.campaign_kpis": lambda s, w, t: [s.analytics.campaign_kpis(), s.analytics.campaign_kpis(clv=1)],
    "analytics.activity_counts": lambda s, w, t: [
        *(s.analytics.activity_counts(by=by, days=3650) for by in ("kind", "customer", "day", "segment")),
        s.analytics.activity_counts(by="customer", where={"customer_id": str(w.theirs.id)}),
    ],
    # campaigns
    "campaigns.add_members": lambda s, w, t: [
        _try(lambda: s.campaigns.add_members(str(w.campaign.id), where={})),
        _try(
            lambda: s.campaigns.add_members(
                s.campaigns.add(Campaign("Mine", "email", owner_id="u1")), customer_ids=[str(w.theirs.id)]
            )
        ),
    ],
    "campaigns.respond": lambda s, w, t: _try(lambda: s.campaigns.respond(str(w.member.id), "unsubscribed")),
    "campaigns.members": lambda s, w, t: _try(lambda: s.campaigns.members(str(w.campaign.id))),
    "campaigns.responses": lambda s, w, t: _try(lambda: s.campaigns.responses(str(w.campaign.id))),
    "campaigns.kpis": lambda s, w, t: s.campaigns.kpis(),
    "analytics.purchase_summary": lambda s, w, t: s.analytics.purchase_summary(calibration_end="2025-12-31"),
    "analytics.clv": lambda s, w, t: s.analytics.clv(as_of="2025-12-31"),
    "analytics.lead_scoring": lambda s, w, t: s.analytics.lead_scoring(where={"customer_id": str(w.theirs.id)}),
    "analytics.score_leads": lambda s, w, t: s.analytics.score_leads(),
    # journals
    "audit.history": lambda s, w, t: [s.audit.history(str(w.theirs.id)), s.audit.history(str(w.mine.id))],
    "audit.entries": lambda s, w, t: list(s.audit.entries()),
    "audit.verify": lambda s, w, t: s.audit.verify(),
    "audit.head": lambda s, w, t: s.audit.head(),
    "changes.since": lambda s, w, t: s.changes.since(0),
    "changes.last_seq": lambda s, w, t: s.changes.last_seq(),
    "changes.apply": lambda s, w, t: s.changes.apply(_incoming(w)),
    # personal data
    "personal.export": lambda s, w, t: [_try(lambda: s.personal.export(str(w.theirs.id))), s.personal.export(str(w.mine.id))],
    "personal.erase": lambda s, w, t: s.personal.erase(str(w.theirs.id)),
    "personal.marketing_list": lambda s, w, t: s.personal.marketing_list("email"),
    # the unit of work
    "session.commit": lambda s, w, t: s.commit(),
    "session.rollback": lambda s, w, t: s.rollback(),
    "session.close": lambda s, w, t: s.close(),
    "session.emit": lambda s, w, t: _emit(s, str(w.theirs.id)),
    # pycrm.io with a session
    "io.export_file": lambda s, w, t: _exported(s, t),
    "io.import_file": lambda s, w, t: pio.import_file(s, _csv(t), key="id"),
    "io.archive": lambda s, w, t: pio.archive(s, [pio.older_than("customers", 1)], as_of=dt.datetime(2099, 1, 1, tzinfo=dt.UTC)),
    "io.unarchive": lambda s, w, t: pio.unarchive(s, "customers", [str(w.theirs.id)]),
    "io.archived": lambda s, w, t: list(pio.archived(s, "customers")),
}


def _try(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except (PermissionDenied, NotFound, ValidationError) as exc:
        return exc


def _emit(s: Any, id: str) -> Any:
    """An event about ``id``: refused for another owner's record; on the actor's own, written when the store
    keeps an outbox (else a CRMError saying it keeps none)."""
    try:
        return s.emit(CustomEvent(name="poke", entity="customers", entity_id=id))
    except (PermissionDenied, NotFound):
        raise
    except pycrm.CRMError as exc:
        assert "outbox" in str(exc)
        return exc


def _renamed(c: Any) -> Any:
    c.name = "SECRET renamed"
    return c


def _exported(s: Any, tmp: Path) -> str:
    out = io.StringIO()
    pio.export_file(s, out, "customers")
    pio.export_file(s, out, "contacts")
    return out.getvalue()


def _surface() -> set[str]:
    """Every public callable reachable from a session, named as in :data:`SURFACE`."""
    from pycrm.storage import Repository, Session
    from pycrm.storage._analytics import SessionAnalytics
    from pycrm.storage._campaigns import CampaignRepository
    from pycrm.storage._journal import AuditLog, ChangeFeed
    from pycrm.storage._personal import PersonalData
    from pycrm.storage._quality import SessionQuality

    def public(cls: type) -> set[str]:
        return {n for n, v in vars(cls).items() if not n.startswith("_") and inspect.isfunction(v)}

    names = {f"repository.{n}" for n in public(Repository)}
    for prefix, cls in (
        ("analytics", SessionAnalytics),
        ("audit", AuditLog),
        ("changes", ChangeFeed),
        ("personal", PersonalData),
        ("quality", SessionQuality),
    ):
        names |= {f"{prefix}.{n}" for n in public(cls)}
    names |= {f"session.{n}" for n in public(Session)}
    names |= {f"campaigns.{n}" for n in public(CampaignRepository)}
    for n in pio.__all__:
        fn = getattr(pio, n)
        if inspect.isfunction(fn) and next(iter(inspect.signature(fn).parameters), None) in ("target", "session"):
            names.add(f"io.{n}")
    return names


def test_the_surface_is_listed() -> None:
    assert _surface() == set(SURFACE), "list the new public call in SURFACE, with an attack"


#: What of the other owner's records would show in a result or a message: their text, their addresses, their
#: owner and team (an id the intruder typed may be echoed back: it says nothing the intruder did not know).
MARKERS = ("SECRET", "secret@", "dup@", "person@", "'u2'", "'t2'", "Decimal('500", "Decimal('99")


def _leaks(value: Any, w: World) -> list[str]:
    text = repr(value) + (str(value) if isinstance(value, BaseException) else "")
    return [x for x in MARKERS if x in text]


@pytest.mark.parametrize("name", sorted(SURFACE))
def test_an_intruder_reaches_nothing_of_another_owner(crm: pycrm.CRM, tmp_path: Path, name: str) -> None:
    w = World(crm)
    before = w.snapshot(crm)
    with crm.session(actor=REP) as s:
        try:
            got = SURFACE[name](s, w, tmp_path)
        except (PermissionDenied, NotFound, ValidationError) as exc:
            got = exc
    assert _leaks(got, w) == [], f"{name} showed the other owner's data: {got!r}"[:2000]
    after = w.snapshot(crm)
    for repo in before:  # nothing of theirs changed (the rep's own records may)
        theirs_before = [r for r in before[repo] if _leaks(r, w)]
        theirs_after = [r for r in after[repo] if _leaks(r, w)]
        assert theirs_after == theirs_before, f"{name} changed the other owner's {repo}"


#: Rules for the rep: its customers' e-mails and notes hidden, its contacts' e-mails masked, deal amounts hidden.
HIDING = FieldRules(
    {
        "sales": {
            "customers.emails": "hide",
            "customers.custom.note": "hide",
            "contacts.emails": "mask",
            "opportunities.amount": "hide",
        }
    }
)
#: Calls whose attack in SURFACE hands in the system's copy of a record (with every value): here the rep
#: works on the copy it reads itself.
OWN: dict[str, Attack] = {
    "repository.update": lambda s, w, t: s.customers.update(_renamed(s.customers.get(str(w.theirs.id)))),
}
#: What of those fields would show in clear (a masked e-mail keeps its first letter and its domain only).
HIDDEN = ("secret@", "dup@", "SECRET note", "person@", "Decimal('500")


@pytest.mark.parametrize("name", sorted(SURFACE))
def test_no_call_shows_a_field_the_actor_sees_hidden_or_masked(
    open_crm: Callable[..., pycrm.CRM], tmp_path: Path, name: str
) -> None:
    """The same surface on the rep's own records, whose e-mails, notes and deal amounts it sees hidden or
    masked: no call shows them in clear, in a result, a file or a message (the gate presents every row and
    record it hands out, and refuses filters, sorts and reports over such fields)."""
    crm = open_crm(field_rules=HIDING)
    w = World(crm, owner="u1", team="t1")
    out = tmp_path / "out"  # the files a call writes (the store may live in tmp_path)
    out.mkdir()
    attack = OWN.get(name, SURFACE[name])
    with crm.session(actor=REP) as s:
        try:
            got = attack(s, w, out)
        except (PermissionDenied, NotFound, ValidationError) as exc:
            got = exc
    text = repr(got) + (str(got) if isinstance(got, BaseException) else "")
    text += "".join(p.read_text(encoding="utf-8", errors="replace") for p in out.rglob("*") if p.is_file())
    assert [x for x in HIDDEN if x in text] == [], f"{name} showed a hidden or masked value: {text!r}"[:2000]


def test_an_export_is_audited_like_a_write(crm: pycrm.CRM) -> None:
    w = World(crm)
    with crm.session(actor=REP) as s:
        assert pio.export_file(s, io.StringIO(), "customers", where={"name": {"startswith": "Mine"}}) == 1
    with crm.session() as s:
        exports = [e for e in s.audit.entries() if e.action == "export"]
    assert [(e.actor_id, e.entity, e.diff["rows"], e.diff["filter"]) for e in exports] == [("u1", "customers", 1, ["name"])]
    assert w.mine.id is not None


def test_a_refusal_is_audited_even_when_the_session_rolls_back(crm: pycrm.CRM) -> None:
    w = World(crm)
    with pytest.raises(PermissionDenied), crm.session(actor=REP) as s:
        s.changes.since(0)
    with crm.session() as s:
        denied = [e for e in s.audit.entries() if e.action == "permission_denied"]
    assert [e.actor_id for e in denied] == ["u1"]
    assert "change feed" in denied[0].diff["message"]
    assert w.theirs.id not in denied[0].diff["message"]


def test_not_yours_and_not_there_read_the_same(crm: pycrm.CRM) -> None:
    w = World(crm)
    with crm.session(actor=REP) as s:
        for call in (s.customers.get, s.customers.delete, s.contacts.delete, s.audit.history, s.personal.export):
            messages = []
            for id in (str(w.theirs.id), str(w.dup.id), str(w.contact.id), "no-such-id"):
                try:
                    messages.append(repr(call(id)))
                except NotFound as exc:
                    messages.append(str(exc).replace(id, "<id>"))
            assert len(set(messages)) == 1, messages


def test_a_value_read_masked_and_written_back_keeps_the_real_one(open_crm: Callable[..., pycrm.CRM]) -> None:
    """Through JSON and back (the copy forgets it was masked), a masked value is still not stored, and a
    field the role cannot see is not emptied."""
    from pycrm.domain._codec import from_data
    from pycrm.security import FieldRules

    rules = FieldRules({"sales": {"customers.name": "mask", "customers.emails": "hide", "customers.custom.id_no": "mask"}})
    crm = open_crm(field_rules=rules)
    with crm.session() as s:
        c = s.customers.add(Customer("Mine Co", owner_id="u1", emails=["li@x.example"], custom={"id_no": "110101199003077777"}))
    with crm.session(actor=REP) as s:
        seen = s.customers.get(c.id)
        assert (seen.name, seen.emails, seen.custom["id_no"]) == ("M***", [], "1***")
        copy = from_data(Customer, to_data(seen))  # through JSON and back: plain text, no record of the masks
        copy.status = "active"
        s.customers.update(copy)
        copy = from_data(Customer, to_data(s.customers.get(c.id)))
        copy.category = "M***"  # the text of a mask, copied into another field
        with pytest.raises(ValidationError, match="masked value"):
            s.customers.update(copy)
        for where in ({"custom.id_no": "110101199003077777"}, {"name": {"startswith": "M"}}, {"emails": "li@x.example"}):
            with pytest.raises(ValidationError, match="masked or hidden"):
                s.customers.count(where)
        with pytest.raises(ValidationError, match="masked or hidden"):
            s.customers.find(order_by="name")
    with crm.session() as s:
        back = s.customers.get(c.id)
    assert (back.name, back.status, [e.value for e in back.emails], back.custom["id_no"]) == (
        "Mine Co",
        "active",
        ["li@x.example"],
        "110101199003077777",
    )


def test_personal_export_and_apply_show_and_confirm_nothing_masked(open_crm: Callable[..., pycrm.CRM]) -> None:
    """The audit and merge parts of a personal export are masked like its record; ``changes.apply`` neither
    confirms a guess at a masked value ("unchanged") nor stores the mask it was sent back."""
    from pycrm import Permission, Role
    from pycrm.security import FieldRules

    rules = FieldRules({"clerk": {"customers.custom.id_no": "national_id"}})
    crm = open_crm(field_rules=rules)
    clerk = User("Clerk", "clerk@example.com", roles=[Role("clerk", [Permission("*", "*", "own")])], id="u1")
    secret = "110101199003077777"
    with crm.session() as s:
        c = s.customers.add(Customer("Mine Co", owner_id="u1", custom={"id_no": secret}))
        d = s.customers.add(Customer("Mine Co dup", owner_id="u1", custom={"id_no": "220101199003071234"}))
        s.customers.merge(str(c.id), str(d.id))
        c = s.customers.get(c.id)
    with crm.session(actor=clerk) as s:
        out = s.personal.export(str(c.id))
        assert out["audit"] and out["merges"]
        assert secret not in repr(out) and "220101199003071234" not in repr(out)
        seen = to_data(s.customers.get(c.id))
        for guess in (secret, "990101199003077777"):  # right or wrong (the same last 4 shown), one answer
            result = s.changes.apply(
                [Incoming("customers", str(c.id), "upsert", c.version, {**seen, "custom": {"id_no": guess}})]
            )
            assert (result.unchanged, result.applied, result.conflicts) == ([("customers", str(c.id))], [], []), guess
        s.changes.apply([Incoming("customers", str(c.id), "upsert", c.version + 1, {**seen, "status": "active"})])
    with crm.session() as s:
        back = s.customers.get(c.id)
    assert (back.status, back.custom["id_no"]) == ("active", secret)


def test_a_merge_re_points_what_the_actor_cannot_see_and_names_only_what_it_can(crm: pycrm.CRM) -> None:
    from pycrm import Permission, Role

    merger = User(
        "Merger",
        "merger@example.com",
        roles=[Role("merger", [Permission("customers", "*", "own"), Permission("tasks", "*", "own")])],
        id="u1",
    )
    with crm.session() as s:
        keep = s.customers.add(Customer("Acme", owner_id="u1"))
        dup = s.customers.add(Customer("ACME Ltd", owner_id="u1"))
        mine = s.tasks.add(Task("Mine", AT, assignee_id="u1", related_id=dup.id))
        theirs = s.tasks.add(Task("SECRET theirs", AT, assignee_id="u2", related_id=dup.id))
    with crm.session(actor=merger) as s:
        record = s.customers.merge(str(keep.id), str(dup.id))
        assert [r.id for r in record.relinked] == [mine.id]  # the other owner's task is not named ...
        assert [r.id for m in s.customers.merges() for r in m.relinked] == [mine.id]
    with crm.session() as s:  # ... but it moved too: it would otherwise point at nothing
        assert {t.id: t.related_id for t in s.tasks.find()} == {mine.id: keep.id, theirs.id: keep.id}
        assert {r.id for r in s.customers.merges()[0].relinked} == {mine.id, theirs.id}
    with crm.session(actor=merger) as s:
        s.customers.unmerge(record.id)
    with crm.session() as s:
        assert {t.id: t.related_id for t in s.tasks.find()} == {mine.id: dup.id, theirs.id: dup.id}


def test_a_report_names_only_the_customers_the_actor_reads(crm: pycrm.CRM) -> None:
    from pycrm import Permission, Role

    counter = User(
        "Counter",
        "counter@example.com",
        roles=[Role("counter", [Permission("orders", "read", "all"), Permission("customers", "read", "own")])],
        id="u1",
    )
    with crm.session() as s:
        mine = s.customers.add(Customer("Mine Co", owner_id="u1"))
        theirs = s.customers.add(Customer("SECRET Theirs Co", owner_id="u2"))
        s.orders.add(Order(str(mine.id), AT, Money("10", "CNY")))
        s.orders.add(Order(str(theirs.id), AT, Money("99", "CNY")))
    with crm.session(actor=counter) as s:
        rows = list(s.analytics.top_customers())
    assert {r.customer_id: r.name for r in rows} == {mine.id: "Mine Co", theirs.id: None}
