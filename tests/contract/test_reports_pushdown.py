"""``s.analytics`` sales, customer and service reports on every adapter give exactly the pure results.

On the SQL adapters the reports are computed inside the database (``storage/sql/_reports.py``); the pure
functions of ``pycrm.analytics`` over the stored entities are the oracle. Random data covers ties, empty
stores, single rows, several currencies (with and without a rate table), won, lost and reopened deals,
probability overrides, tickets without responses, surveys not answered yet, and ``where`` filters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pycrm
from pycrm import Customer, Money, Opportunity, Order, Survey, Ticket, User
from pycrm.analytics import (
    RateTable,
    customer_activity,
    forecast,
    funnel,
    purchase_summary,
    sales_cycle,
    satisfaction,
    service_times,
    ticket_summary,
    top_customers,
    win_rate,
)

UTC = dt.UTC
T0 = dt.datetime(2024, 1, 1, tzinfo=UTC)
DB = settings(
    max_examples=max(8, settings.default.max_examples // 3),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
RATES = RateTable("CNY", [("USD", "2023-06-01", "7.1"), ("USD", "2024-02-01", "7.2345"), ("EUR", "2023-12-01", "7.77777")])
AMOUNTS = ["0", "10", "10.00", "99.99", "0.0001", "0.0005", "12345.6789", "500", "3.3"]
OPEN = ["prospecting", "qualification", "needs_analysis", "proposal", "negotiation"]

minutes = st.integers(min_value=0, max_value=120 * 24 * 60)
deals = st.lists(
    st.fixed_dictionaries(
        {
            "customer": st.integers(0, 2),
            "amount": st.sampled_from(AMOUNTS),
            "currency": st.sampled_from(["CNY", "CNY", "USD", "EUR"]),
            "owner": st.sampled_from([None, "u1", "u2"]),
            "created": minutes,
            "close": st.one_of(st.none(), st.integers(0, 150)),
            "moves": st.lists(st.tuples(st.sampled_from(OPEN), st.integers(0, 20 * 24 * 60)), max_size=3),
            "end": st.sampled_from([None, None, "won", "lost", "reopened"]),
            "override": st.sampled_from([None, None, None, "0.33", "0.125", "1", "0"]),
        }
    ),
    max_size=12,
)
order_books = st.lists(
    st.tuples(st.integers(0, 4), minutes, st.sampled_from(AMOUNTS), st.sampled_from(["CNY", "CNY", "CNY", "USD"])), max_size=25
)
ticket_sets = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.sampled_from(["low", "normal", "high", "urgent"]),
        minutes,
        st.lists(st.sampled_from(["open", "pending", "resolved", "closed"]), max_size=4),
        st.integers(1, 3 * 24 * 60),
        # paths that sort differently by bytes and by case, a branch and its parent, and none
        st.sampled_from([None, "Hardware", "Hardware/Printer", "hardware", "Billing", "软件/登录"]),
        st.sampled_from([None, *Ticket.CHANNELS]),
    ),
    max_size=15,
)

survey_sets = st.lists(
    st.tuples(
        st.integers(0, 3),  # customer (3: a customer the rep does not own)
        st.sampled_from(["csat", "nps"]),
        minutes,
        st.one_of(st.none(), st.integers(0, 10)),  # score (csat: clamped to 1..5)
        st.sampled_from([None, "u1", "u2", "u3", "ghost"]),  # the agent (ghost: no such user)
        # the ticket it is about: none, one of SURVEYED_TICKETS (3: of the customer the rep does not own),
        # or 4: an id no ticket has
        st.sampled_from([None, None, 0, 1, 2, 3, 4]),
    ),
    max_size=20,
)
#: Customers' categories (segments) and the agents' teams in the satisfaction contract test.
SEGMENTS = ["retail", "b2b", None, "Retail"]
TEAMS = {"u1": "t1", "u2": "t2", "u3": None}
#: The categories of the tickets surveys are about: a branch and its parent, byte and case order, none.
SURVEYED_TICKETS = st.lists(
    st.sampled_from([None, "Billing", "Billing/Invoice", "billing", "Hardware/Printer", "软件/登录"]), min_size=4, max_size=4
)


def _same(pushed: Callable[[], Any], pure: Callable[[], Any]) -> None:
    """Both give equal results (and equal text, so Decimal places agree), or both raise the same error."""
    try:
        expected = pure()
    except pycrm.ValidationError as exc:
        with pytest.raises(pycrm.ValidationError) as got:
            pushed()
        assert [(e.field, e.code) for e in got.value.errors] == [(e.field, e.code) for e in exc.errors]
        return
    result = pushed()
    assert result == expected
    assert repr(list(result)) == repr(list(expected))
    assert (result.title, result.x, result.y) == (expected.title, expected.x, expected.y)


def _build_deal(ids: list[str], spec: dict[str, Any]) -> Opportunity:
    created = T0 + dt.timedelta(minutes=spec["created"])
    close = None if spec["close"] is None else (T0 + dt.timedelta(days=spec["close"])).date()
    opp = Opportunity(
        ids[spec["customer"]],
        "deal",
        Money(spec["amount"], spec["currency"]),
        expected_close=close,
        owner_id=spec["owner"],
        created_at=created,
    )
    at = created
    for stage, later in spec["moves"]:
        at += dt.timedelta(minutes=later)
        if stage != opp.stage:
            opp.move_to(stage, at=at)
    if spec["end"] is not None:
        at += dt.timedelta(hours=7, microseconds=3)
        if spec["end"] == "lost":
            opp.lose("price", at=at)
        else:
            opp.win(at=at)
            if spec["end"] == "reopened":
                opp.reopen("proposal", at=at + dt.timedelta(days=1))
    if spec["override"] is not None:
        opp.probability_override = Decimal(spec["override"])
    return opp


def _build_ticket(ids: list[str], spec: tuple[Any, ...]) -> Ticket:
    cust, priority, created, moves, step, category, channel = spec
    at = T0 + dt.timedelta(minutes=created)
    t = Ticket(ids[cust], "help", priority=priority, created_at=at, category=category, channel=channel)
    for status in moves:
        at += dt.timedelta(minutes=step, microseconds=1)
        try:
            t.move_to(status, at=at)
        except pycrm.TransitionError:
            continue
    return t


def _build_survey(ids: list[str], spec: tuple[Any, ...], tickets: list[str] | None = None) -> Survey:
    """The survey of ``spec``: about the ``tickets`` id its last item picks (beyond them: an id of no ticket)."""
    cust, kind, sent, score, agent, *about = spec
    pick = about[0] if about else None
    ticket = None if pick is None else tickets[pick] if tickets and pick < len(tickets) else "no-such-ticket"
    at = T0 + dt.timedelta(minutes=sent, microseconds=7)
    if score is not None and kind == "csat":
        score = 1 + score % 5
    answered = None if score is None else at + dt.timedelta(hours=1)
    return Survey(
        ids[cust], kind, at, score=score, answered_at=answered, user_id=agent, ticket_id=ticket, comment="fine" if score else ""
    )


def _empty(crm: pycrm.CRM) -> None:
    with crm.session() as s:  # Hypothesis examples share the store: leave it empty
        for repo in (s.surveys, s.orders, s.opportunities, s.tickets, s.customers, s.users):
            for e in list(repo.iter()):
                repo.delete(e.id)


@DB
@given(specs=deals, period=st.sampled_from([None, "week", "month", "quarter", "year"]), lo=st.integers(-5, 160))
def test_sales_reports_agree(crm: pycrm.CRM, specs: list[dict[str, Any]], period: str | None, lo: int) -> None:
    with crm.session() as s:
        ids = [s.customers.add(Customer(f"C{i}")).id for i in range(3)]
        s.opportunities.add_many([_build_deal(ids, spec) for spec in specs])
    start = (T0 + dt.timedelta(days=lo)).date()
    try:
        with crm.session() as s:
            stored = list(s.opportunities.iter())
            mine = [o for o in stored if o.owner_id == "u1"]
            a = s.analytics
            for by in [(), ("owner",), ("stage", "category"), ("owner", "stage", "category")]:
                _same(
                    lambda by=by: a.forecast(period=period, by=by, rates=RATES),
                    lambda by=by: forecast(stored, period=period, by=by, rates=RATES),
                )
            _same(lambda: a.forecast(period=period), lambda: forecast(stored, period=period))
            _same(
                lambda: a.forecast(period=period, start=start, rates=RATES),
                lambda: forecast(stored, period=period, start=start, rates=RATES),
            )
            cny = {"amount": {"gte": 0}, "owner_id": "u1"}
            _same(lambda: a.forecast(period=period, where=cny, end=start), lambda: forecast(mine, period=period, end=start))
            _same(lambda: a.funnel(), lambda: funnel(stored))
            _same(lambda: a.funnel(where={"owner_id": "u1"}), lambda: funnel(mine))
            for by in [(), "owner"]:
                _same(lambda by=by: a.win_rate(period=period, by=by), lambda by=by: win_rate(stored, period=period, by=by))
                _same(lambda by=by: a.sales_cycle(period=period, by=by), lambda by=by: sales_cycle(stored, period=period, by=by))
            _same(lambda: a.win_rate(period=period, start=start), lambda: win_rate(stored, period=period, start=start))
            _same(lambda: a.sales_cycle(period=period, end=start), lambda: sales_cycle(stored, period=period, end=start))
            _same(lambda: a.win_rate(where={"owner_id": "u1"}), lambda: win_rate(mine))
            cut = T0 + dt.timedelta(days=lo)
            early = [o for o in stored if o.created_at <= cut]
            _same(lambda: a.sales_cycle(where={"created_at": {"lte": cut}}), lambda: sales_cycle(early))
            _same(lambda: a.funnel(where={"created_at": {"lte": cut}}), lambda: funnel(early))
            dated = [o for o in stored if o.expected_close is not None and o.expected_close >= start]
            _same(lambda: a.forecast(where={"expected_close": {"gte": start}}, rates=RATES), lambda: forecast(dated, rates=RATES))
    finally:
        _empty(crm)


@DB
@given(
    book=order_books, period=st.sampled_from(["week", "month", "quarter", "year"]), lo=st.integers(-5, 130), n=st.integers(1, 6)
)
def test_customer_reports_agree(crm: pycrm.CRM, book: list[tuple[Any, ...]], period: str, lo: int, n: int) -> None:
    with crm.session() as s:
        ids = [s.customers.add(Customer(f"C{i}")).id for i in range(5)]
        s.orders.add_many([Order(ids[k], T0 + dt.timedelta(minutes=m), Money(a, cur)) for k, m, a, cur in book])
    start = (T0 + dt.timedelta(days=lo)).date()
    try:
        with crm.session() as s:
            stored = list(s.orders.iter())
            cny = [o for o in stored if o.amount.currency == "CNY"]
            names = {c.id: c.name for c in s.customers.iter()}
            a = s.analytics
            _same(lambda: a.customer_activity(period=period), lambda: customer_activity(stored, period=period))
            _same(
                lambda: a.customer_activity(period=period, start=start),
                lambda: customer_activity(stored, period=period, start=start),
            )
            _same(
                lambda: a.customer_activity(period=period, end=start), lambda: customer_activity(stored, period=period, end=start)
            )
            _same(
                lambda: a.customer_activity(period=period, where={"currency": "CNY"}),
                lambda: customer_activity(cny, period=period),
            )
            _same(lambda: a.top_customers(n=n), lambda: top_customers(stored, n=n, names=names))
            _same(lambda: a.top_customers(n=n, rates=RATES), lambda: top_customers(stored, n=n, rates=RATES, names=names))
            _same(
                lambda: a.top_customers(n=n, start=start, rates=RATES),
                lambda: top_customers(stored, n=n, start=start, rates=RATES, names=names),
            )
            _same(lambda: a.top_customers(n=n, where={"currency": "CNY"}), lambda: top_customers(cny, n=n, names=names))
            cut = T0 + dt.timedelta(days=lo)
            early = [o for o in cny if o.occurred_at < cut]
            _same(
                lambda: a.customer_activity(period=period, where={"currency": "CNY", "occurred_at": {"lt": cut}}),
                lambda: customer_activity(early, period=period),
            )
    finally:
        _empty(crm)


@DB
@given(specs=ticket_sets, period=st.sampled_from([None, "week", "month"]), lo=st.integers(-5, 130), as_of=st.integers(0, 130))
def test_service_reports_agree(crm: pycrm.CRM, specs: list[tuple[Any, ...]], period: str | None, lo: int, as_of: int) -> None:
    with crm.session() as s:
        ids = [s.customers.add(Customer(f"C{i}")).id for i in range(3)]
        s.tickets.add_many([_build_ticket(ids, spec) for spec in specs])
    start = (T0 + dt.timedelta(days=lo)).date()
    now = T0 + dt.timedelta(days=as_of, minutes=7)
    try:
        with crm.session() as s:
            stored = list(s.tickets.iter())
            high = [t for t in stored if t.priority.value == "high"]
            a = s.analytics
            groupings = ["status", "priority", ("status", "priority"), "category", "channel", ("category", "channel")]
            for by in [*groupings, ("channel", "priority", "category", "status")]:
                _same(lambda by=by: a.ticket_summary(by=by), lambda by=by: ticket_summary(stored, by=by))
            printers = [t for t in stored if (t.category or "").startswith("Hardware/")]
            _same(
                lambda: a.ticket_summary(by="channel", where={"category": {"startswith": "Hardware/"}}),
                lambda: ticket_summary(printers, by="channel"),
            )
            _same(lambda: a.ticket_summary(start=start), lambda: ticket_summary(stored, start=start))
            _same(lambda: a.ticket_summary(where={"priority": "high"}), lambda: ticket_summary(high))
            early = [t for t in stored if t.created_at <= now]
            _same(lambda: a.ticket_summary(where={"created_at": {"lte": now}}), lambda: ticket_summary(early))
            for by in [(), "priority"]:
                _same(
                    lambda by=by: a.service_times(period=period, by=by, as_of=now),
                    lambda by=by: service_times(stored, period=period, by=by, as_of=now),
                )
            _same(
                lambda: a.service_times(period=period, end=start, as_of=now),
                lambda: service_times(stored, period=period, end=start, as_of=now),
            )
            _same(
                lambda: a.service_times(period=period, where={"priority": "high"}, as_of=start),
                lambda: service_times(high, period=period, as_of=start),
            )
    finally:
        _empty(crm)


@DB
@given(specs=survey_sets, period=st.sampled_from([None, "week", "month"]), lo=st.integers(-5, 130), cats=SURVEYED_TICKETS)
def test_satisfaction_agrees(
    crm: pycrm.CRM, specs: list[tuple[Any, ...]], period: str | None, lo: int, cats: list[str | None]
) -> None:
    rep = User("Rep", "rep@example.com", roles=["sales"], team_id="t1", id="u1")
    with crm.session() as s:
        for uid, team in TEAMS.items():
            s.users.add(User(f"User {uid}", f"{uid}@example.com", team_id=team, id=uid))
        ids = [s.customers.add(Customer(f"C{i}", category=SEGMENTS[i], owner_id="u2" if i == 3 else "u1")).id for i in range(4)]
        # ticket i is customer i's (3: the customer the rep does not own), whoever the survey is sent to
        tickets = [s.tickets.add(Ticket(ids[i], "help", category=cat, created_at=T0)).id for i, cat in enumerate(cats)]
        # always one survey of the rep's customer about the ticket it may not read
        s.surveys.add_many([_build_survey(ids, spec, tickets) for spec in [*specs, (0, "csat", 60, 4, "u1", 3)]])
    start = (T0 + dt.timedelta(days=lo)).date()
    teams = {u: t for u, t in TEAMS.items()}
    segments = dict(zip(ids, SEGMENTS))
    categories = dict(zip(tickets, cats))
    try:
        with crm.session() as s:
            stored = list(s.surveys.iter())
            a = s.analytics
            for kind in ("csat", "nps"):
                groupings = ["agent", "team", "segment", "category", ("agent", "team", "segment", "category")]
                for by in [(), *groupings, ("category", "agent")]:
                    _same(
                        lambda by=by, kind=kind: a.satisfaction(kind=kind, by=by, period=period),
                        lambda by=by, kind=kind: satisfaction(
                            stored, kind=kind, by=by, period=period, teams=teams, segments=segments, categories=categories
                        ),
                    )
                _same(
                    lambda kind=kind: a.satisfaction(
                        kind=kind, by="category", start=start, where={"ticket_id": {"is_null": False}}
                    ),
                    lambda kind=kind: satisfaction(
                        [v for v in stored if v.ticket_id is not None],
                        kind=kind,
                        by="category",
                        start=start,
                        categories=categories,
                    ),
                )
                _same(
                    lambda kind=kind: a.satisfaction(kind=kind, period=period, start=start),
                    lambda kind=kind: satisfaction(stored, kind=kind, period=period, start=start),
                )
                _same(
                    lambda kind=kind: a.satisfaction(kind=kind, end=start, where={"user_id": "u1"}),
                    lambda kind=kind: satisfaction([v for v in stored if v.user_id == "u1"], kind=kind, end=start),
                )
        with crm.session(actor=rep) as s:  # the rep's own customers' surveys, the teams of the users it may read
            mine = [v for v in stored if v.customer_id != ids[3]]
            seen = {u: t for u, t in TEAMS.items() if t == "t1"}  # sales reads its team's users
            readable = dict(zip(tickets[:3], cats[:3]))  # and its own customers' tickets
            by = ("team", "segment", "category")
            _same(
                lambda: s.analytics.satisfaction(by=by, period=period),
                lambda: satisfaction(mine, by=by, period=period, teams=seen, segments=segments, categories=readable),
            )
    finally:
        _empty(crm)


@DB
@given(book=order_books, cal=st.integers(-5, 130), freq=st.sampled_from(["D", "W"]), unit=st.sampled_from(["D", "W"]))
def test_purchase_summary_agrees(crm: pycrm.CRM, book: list[tuple[Any, ...]], cal: int, freq: str, unit: str) -> None:
    with crm.session() as s:
        ids = [s.customers.add(Customer(f"C{i}")).id for i in range(5)]
        s.orders.add_many([Order(ids[k], T0 + dt.timedelta(minutes=m), Money(a, "CNY")) for k, m, a, _ in book])
    end = (T0 + dt.timedelta(days=cal)).date()
    try:
        with crm.session() as s:
            stored = list(s.orders.iter())
            _same(
                lambda: _as_report(s.analytics.purchase_summary(calibration_end=end, freq=freq, unit=unit)),
                lambda: _as_report(purchase_summary(stored, calibration_end=end, freq=freq, unit=unit)),
            )
    finally:
        _empty(crm)


class _as_report(list[Any]):
    def __init__(self, summary: Any):
        super().__init__(summary.rows)
        self.title, self.x, self.y = (summary.calibration_end, summary.freq, summary.unit)


def test_empty_store_and_single_rows(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        a = s.analytics
        assert list(a.forecast()) == [] and list(a.funnel()) == [] and list(a.win_rate()) == []
        assert list(a.sales_cycle()) == [] and list(a.customer_activity()) == [] and list(a.top_customers()) == []
        assert list(a.ticket_summary()) == [] and list(a.service_times()) == []
        assert [r.period for r in a.customer_activity(start="2024-01-01", end="2024-02-10")] == ["2024-01", "2024-02"]
        c = s.customers.add(Customer("Solo"))
        s.orders.add(Order(c.id, T0, Money("12.50", "CNY")))
        deal = Opportunity(c.id, "one", Money("1000", "CNY"), stage="proposal", created_at=T0)
        s.opportunities.add(deal)
        s.tickets.add(Ticket(c.id, "no answer yet", priority="urgent", created_at=T0))
    with crm.session() as s:
        a = s.analytics
        (top,) = a.top_customers()
        assert (top.name, top.orders, str(top.revenue), top.currency) == ("Solo", 1, "12.50", "CNY")
        (row,) = a.forecast(period=None)
        assert (row.period, str(row.open_amount), str(row.weighted)) == (None, "1000", "600.0000")
        (svc,) = a.service_times(as_of="2024-01-01")
        assert (svc.tickets, svc.responded, svc.mean_response_hours, svc.breached) == (1, 0, None, 1)


def test_mixed_currencies_and_missing_rates_raise_like_the_pure_functions(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        c = s.customers.add(Customer("A"))
        s.orders.add(Order(c.id, T0, Money(1, "CNY")))
        s.orders.add(Order(c.id, T0 + dt.timedelta(days=1), Money(1, "GBP")))
        s.opportunities.add(Opportunity(c.id, "x", Money(5, "GBP"), expected_close=T0.date()))
    with crm.session() as s:
        for call in (lambda: s.analytics.top_customers(), lambda: s.analytics.top_customers(rates=RATES)):
            with pytest.raises(pycrm.ValidationError) as err:
                call()
            assert err.value.errors[0].code in ("currency_mismatch", "missing_rate")
        with pytest.raises(pycrm.ValidationError, match="GBP"):
            s.analytics.forecast(rates=RATES)
        assert [r.customer_id for r in s.analytics.top_customers(where={"currency": "CNY"})] == [c.id]
        with pytest.raises(pycrm.ValidationError) as bad:
            s.analytics.forecast(by="colour")
        assert bad.value.fields == ["by"]


def test_sql_adapters_compute_inside_the_database(crm: pycrm.CRM, adapter: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """On SQL stores no report streams entities (the fallback is only for data the pure function rejects)."""
    if adapter == "memory":
        pytest.skip("the memory adapter streams into the pure functions by design")
    from pycrm.storage._analytics import SessionAnalytics

    def no_streaming(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("streamed entities instead of computing in the database")

    with crm.session() as s:
        ids = [s.customers.add(Customer(f"C{i}")).id for i in range(3)]
        specs = [
            {
                "customer": k % 3, "amount": AMOUNTS[k % 9], "currency": ["CNY", "USD"][k % 2],
                "owner": ["u1", None][k % 2], "created": 1000 * k, "close": k * 7 if k % 4 else None,
                "moves": [(OPEN[k % 5], 600)], "end": [None, "won", "lost"][k % 3], "override": ["0.33", None][k % 2],
            }
            for k in range(12)
        ]  # fmt: skip
        s.opportunities.add_many([_build_deal(ids, spec) for spec in specs])
        s.orders.add_many([Order(ids[k % 3], T0 + dt.timedelta(days=k), Money(AMOUNTS[k % 9], "CNY")) for k in range(20)])
        s.tickets.add_many([_build_ticket(ids, (k % 3, "high", 100 * k, ["open", "resolved"], 90, None, None)) for k in range(6)])
        s.surveys.add_many([_build_survey(ids, (k % 3, "csat", 100 * k, k, "u1")) for k in range(6)])
    monkeypatch.setattr(SessionAnalytics, "_stream", no_streaming)
    with crm.session() as s:
        a = s.analytics
        assert len(a.forecast(rates=RATES, by=("owner", "stage"))) > 0
        assert len(a.forecast(where={"currency": "CNY"})) > 0
        assert len(a.funnel()) > 0 and len(a.win_rate()) > 0 and len(a.sales_cycle()) > 0
        assert len(a.customer_activity()) > 0 and len(a.top_customers(n=2)) == 2
        assert len(a.ticket_summary()) > 0 and len(a.service_times(by="priority")) > 0
        assert len(a.satisfaction(by=("agent", "team", "segment"), period="month")) > 0
        assert len(a.purchase_summary(calibration_end="2024-12-31")) == 3


def test_clv_from_the_store_matches_clv_of_its_orders(crm: pycrm.CRM, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("scipy")
    from pycrm.analytics import clv

    with crm.session() as s:
        ids = [s.customers.add(Customer(f"C{i}")).id for i in range(30)]
        book = [
            Order(ids[i], T0 + dt.timedelta(days=(i * 7 + 11 * k) % 300, hours=k), Money(f"{10 + (i * k) % 37}.5", "CNY"))
            for i in range(30)
            for k in range(1 + i % 5)
        ]
        s.orders.add_many(book)
    with crm.session() as s:
        stored = list(s.orders.iter())
        got = s.analytics.clv(as_of="2024-10-31", months=6)
        assert got == clv(stored, as_of="2024-10-31", months=6)
        assert len(got) == 30 and all(0 <= r.p_alive <= 1 for r in got)
        import pycrm.storage._analytics as analytics
        from pycrm.analytics._clv import MissingDependencyError

        def no_scipy() -> Any:
            raise MissingDependencyError('CLV models need SciPy: pip install "pycrm[analytics]"')

        monkeypatch.setattr(analytics, "_scipy", no_scipy)
        with pytest.raises(pycrm.CRMError, match="SciPy"):
            s.analytics.clv(as_of="2024-10-31")
