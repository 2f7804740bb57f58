"""Lead scores on every adapter: stored on the deal and filtered by ``where``; ``s.analytics.lead_scoring`` and
``score_leads`` equal the pure function over what the actor reads, and an actor scoring sees nothing of
another owner's records (its deals are neither scored, explained, written nor counted in the model)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from decimal import Decimal

import pytest

import pycrm
from pycrm import Customer, Interaction, Money, Opportunity, Order, Permission, PermissionDenied, Role, User, ValidationError
from pycrm.analytics import DealFeatures, lead_scoring
from pycrm.security import FieldRules
from pycrm.storage.port import Reports

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
AS_OF = dt.datetime(2024, 12, 31, tzinfo=dt.UTC)
REP = User("Rep", "rep@example.com", roles=["sales"], team_id="t1", id="u1")
ANALYST = User("Ana", "ana@example.com", roles=["analyst"], id="u7")


def _fill(crm: pycrm.CRM, seed: int = 11) -> None:
    rng = random.Random(seed)
    with crm.session() as s:
        for i in range(60):
            owner = "u1" if i % 2 else "u2"
            country = rng.choice(["DE", "FR", "CN"])
            cid = f"k{i:02d}"
            s.customers.add(
                Customer(f"Kunde {i}", id=cid, owner_id=owner, country=country, status="active" if i < 54 else "lead")
            )
            if i >= 54:
                continue
            for _ in range(rng.randint(0, 3)):
                s.interactions.add(Interaction(cid, "call", T0 + dt.timedelta(days=rng.randint(0, 300))))
            if rng.random() < 0.5:
                s.orders.add(Order(cid, T0 + dt.timedelta(days=rng.randint(0, 300)), Money(100, "EUR")))
            for j in range(2):
                created = T0 + dt.timedelta(days=rng.randint(0, 200))
                o = Opportunity(cid, f"D{i}-{j}", Money(rng.randint(1, 50) * 100, "EUR"), owner_id=owner, created_at=created)
                o.id = f"o{i:02d}{j}"
                if rng.random() < 0.5:
                    o.move_to("qualification", at=created + dt.timedelta(days=3))
                if i % 9 == 0 and j == 0:  # left open
                    s.opportunities.add(o)
                    continue
                p_win = {"DE": 0.75, "FR": 0.4, "CN": 0.15}[country]
                closed = created + dt.timedelta(days=rng.randint(5, 60))
                if rng.random() < p_win:
                    o.win(at=closed)
                else:
                    o.lose("price", at=closed)
                s.opportunities.add(o)


def test_the_score_is_stored_and_filtered(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        c = s.customers.add(Customer("Acme", id="c1"))
        for name, p in (("A", "0.95"), ("B", 0.7), ("C", "0.69995"), ("D", 0.123456), ("E", None)):
            at = None if p is None else dt.datetime(2026, 12, 7, 9, tzinfo=dt.UTC)
            s.opportunities.add(Opportunity(str(c.id), name, Money(10, "EUR"), win_probability=p, scored_at=at, id=f"o{name}"))
    with crm.session() as s:

        def names(where: dict[str, object]) -> list[str]:
            return sorted(o.name for o in s.opportunities.find(where))

        assert s.opportunities.get("oA").win_probability == Decimal("0.9500")
        assert s.opportunities.get("oD").win_probability == Decimal("0.1235")  # kept to 4 places
        assert s.opportunities.get("oC").win_probability == Decimal("0.7000")
        assert s.opportunities.get("oE").scored_at is None
        assert names({"win_probability": {"gte": 0.7}}) == ["A", "B", "C"]
        assert names({"win_probability": {"gt": "0.7"}}) == ["A"]
        assert names({"win_probability": {"lt": Decimal("0.7")}}) == ["D"]
        assert names({"win_probability": {"is_null": True}}) == ["E"]
        assert names({"win_probability": {"in": ["0.1235", "0.95"]}}) == ["A", "D"]
        assert names({"scored_at": {"gte": "2026-12-07T00:00:00+00:00"}}) == ["A", "B", "C", "D"]
        ranked = s.opportunities.find({"win_probability": {"is_null": False}}, order_by="-win_probability")
        assert [o.name for o in ranked] == ["A", "B", "C", "D"] or [o.name for o in ranked][:1] == ["A"]
        for bad in (1.5, -0.1, "high", float("nan")):
            with pytest.raises(ValidationError) as exc:
                s.opportunities.add(Opportunity(str(c.id), "X", Money(1, "EUR"), win_probability=bad))
            assert exc.value.fields == ["win_probability"]


def test_score_leads_stores_what_the_pure_model_computes(crm: pycrm.CRM) -> None:
    _fill(crm)
    with crm.session() as s:
        opps = list(s.opportunities.iter())
        customers = list(s.customers.iter())
        interactions = list(s.interactions.iter())
        orders = list(s.orders.iter())
    expected = lead_scoring(opps, customers=customers, interactions=interactions, tickets=[], orders=orders, as_of=AS_OF)
    with crm.session() as s:
        got = s.analytics.lead_scoring(as_of=AS_OF)
        assert got.scores() == expected.scores()
        assert got.evaluate() == expected.evaluate()
        assert any(x.opportunity_id is None for x in got.scores())  # the leads without deals
        s.analytics.score_leads(as_of=AS_OF)
    four = Decimal("0.0001")
    want = {x.opportunity_id: Decimal(repr(x.probability)).quantize(four) for x in expected.scores() if x.opportunity_id}
    assert len(want) == 6
    with crm.session() as s:
        stored = {str(o.id): o.win_probability for o in s.opportunities.find({"win_probability": {"is_null": False}})}
        assert stored == want
        assert all(o.scored_at == AS_OF for o in s.opportunities.find({"win_probability": {"is_null": False}}))
        cut = sorted(want.values())[3]
        assert {str(o.id) for o in s.opportunities.find({"win_probability": {"gte": cut}})} == {
            k for k, v in want.items() if v >= cut
        }
        assert s.opportunities.count({"stage": {"startswith": "closed"}, "win_probability": {"is_null": False}}) == 0


def test_an_actor_scores_only_what_it_reads(crm: pycrm.CRM) -> None:
    _fill(crm)
    with crm.session(actor=REP) as s:
        opps = list(s.opportunities.iter())
        customers = list(s.customers.iter())
        interactions = list(s.interactions.iter())
        orders = list(s.orders.iter())
        tickets = list(s.tickets.iter())
    assert opps and {o.owner_id for o in opps} == {"u1"} and {c.owner_id for c in customers} == {"u1"}
    theirs = {"o000", "o180", "o360"}  # u2's open deals (customers 0, 18, 36)
    with crm.session() as s:
        assert {str(o.id) for o in s.opportunities.find({"stage": {"in": ["prospecting", "qualification"]}})} >= theirs
    expected = lead_scoring(opps, customers=customers, interactions=interactions, tickets=tickets, orders=orders, as_of=AS_OF)
    with crm.session(actor=REP) as s:
        got = s.analytics.lead_scoring(as_of=AS_OF)
        assert got.scores() == expected.scores()  # the model never saw another owner's deals
        assert got.model == expected.model
        seen = {x.customer_id for x in got.scores()} | {d.customer_id for d in got.deals}
        assert all(int(c[1:]) % 2 == 1 for c in seen)
        for other in theirs:
            with pytest.raises(ValidationError, match="not an open deal"):
                got.explain(other)
        s.analytics.score_leads(as_of=AS_OF)
    with crm.session() as s:
        scored = {str(o.id) for o in s.opportunities.find({"win_probability": {"is_null": False}})}
        assert scored and scored.isdisjoint(theirs)
        assert all(s.opportunities.get(i).owner_id == "u1" for i in scored)
    with crm.session(actor=REP) as s:  # and a filter on the score finds none of them either
        assert {str(o.id) for o in s.opportunities.find({"win_probability": {"gte": 0}})} == scored
    with crm.session(actor=ANALYST) as s:  # reads everything, writes nothing
        assert len(s.analytics.lead_scoring(as_of=AS_OF).scores()) > len(expected.scores())
        with pytest.raises(PermissionDenied):
            s.analytics.score_leads(as_of=AS_OF)


def test_too_little_history_is_refused_with_what_is_needed(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        s.customers.add(Customer("Acme", id="c1"))
        o = Opportunity("c1", "Only", Money(1, "EUR"))
        o.win()
        s.opportunities.add(o)
        with pytest.raises(ValidationError, match=r"at least 20 closed deals .* there are 1 \(1 won, 0 lost\)"):
            s.analytics.score_leads()
        assert s.opportunities.count({"win_probability": {"is_null": False}}) == 0


def test_the_store_reads_the_features_the_entities_give(crm: pycrm.CRM) -> None:
    """The SQL adapter reads columns, not entities: stage re-entries, a deal closed straight from its first
    stage, one created after ``as_of``, tags and a ``where`` give exactly the pure function's features."""
    _fill(crm, seed=5)
    with crm.session() as s:
        s.customers.add(Customer("Tagged", id="kt", country="DE", category="Retail", tags=["vip", "b2b"], status="prospect"))
        for i in range(6):
            o = Opportunity("kt", f"Loop {i}", Money("1234.5678", "EUR"), owner_id="u1", created_at=T0, id=f"loop{i}")
            for d, stage in enumerate(("qualification", "prospecting", "qualification", "proposal")[: i % 4 + 1]):
                o.move_to(stage, at=T0 + dt.timedelta(days=d + 1, microseconds=7))
            if i < 4:
                if i % 2:
                    o.win(at=T0 + dt.timedelta(days=30 + i))
                else:
                    o.lose("price", at=T0 + dt.timedelta(days=30 + i))
            s.opportunities.add(o)
        direct = Opportunity("kt", "Direct", Money(5, "EUR"), created_at=T0, id="direct")
        direct.win(at=T0 + dt.timedelta(hours=1))
        s.opportunities.add(direct)
        s.opportunities.add(Opportunity("k01", "Later", Money(5, "EUR"), created_at=AS_OF + dt.timedelta(days=1), id="later"))
    for where in (None, {"owner_id": "u1"}):
        with crm.session() as s:
            opps = list(s.opportunities.find(where or {}))
            customers = list(s.customers.iter())
            interactions = list(s.interactions.iter())
            orders = list(s.orders.iter())
            expected = lead_scoring(opps, customers=customers, interactions=interactions, tickets=[], orders=orders, as_of=AS_OF)
            got = s.analytics.lead_scoring(as_of=AS_OF, where=where)

        def key(d: DealFeatures) -> str:
            return d.record_id

        assert sorted(got.deals, key=key) == sorted(expected.deals, key=key)
        assert got.model == expected.model and got.scores() == expected.scores()
        assert {"loop4", "loop5"} <= {x.record_id for x in got.deals if x.won is None}  # "kt" has open deals: no lead
        assert "kt" not in {x.record_id for x in got.deals} and {x.tags for x in got.deals if x.customer_id == "kt"} == {
            ("b2b", "vip")
        }
        assert "later" not in {x.record_id for x in got.deals}
        loop = {d.record_id: dict(d.numeric) for d in got.deals}
        assert loop["loop2"]["moves"] == 3.0
        assert where or loop["direct"]["moves"] == 0.0


def test_masked_customer_features_are_refused_not_read(open_crm: Callable[..., pycrm.CRM]) -> None:
    """An actor who sees a customer field the features read masked cannot score on it: a ValidationError naming
    the field, from the analytics call and from the store's own report."""
    rules = FieldRules({"masker": {"customers.country": "mask", "customers.tags": "hide"}})
    crm = open_crm(field_rules=rules)
    _fill(crm)
    masker = User("Mask", "mask@example.com", roles=[Role("masker", [Permission("*", "*", "all")])], id="u9")
    with crm.session(actor=masker) as s:
        with pytest.raises(ValidationError) as exc:
            s.analytics.lead_scoring(as_of=AS_OF)
        assert set(exc.value.fields) == {"country", "tags"}
        tx = s._transaction()
        if isinstance(tx, Reports):
            with pytest.raises(ValidationError) as exc:
                tx.report("scoring_customers", conditions=[])
            assert set(exc.value.fields) == {"country", "tags"}
            deals = tx.report("scoring_deals", conditions=[], as_of=AS_OF)  # nothing masked there
            assert {r[0] for r in deals} == {str(o.id) for o in s.opportunities.iter()}
    with crm.session(actor=REP) as s:  # called directly, the reports keep to the actor's scope
        tx = s._transaction()
        if isinstance(tx, Reports):
            mine = {str(o.id) for o in s.opportunities.iter()}
            assert {r[0] for r in tx.report("scoring_deals", conditions=[], as_of=AS_OF)} == mine
            assert {c.id for c in tx.report("scoring_customers", conditions=[])} == {str(c.id) for c in s.customers.iter()}
            assert mine and all(int(i[1:3]) % 2 == 1 for i in mine)  # u1's customers are the odd ones
