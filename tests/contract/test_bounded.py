"""Bounded work: inputs of any size either work at a cost linear in their size or are refused with a
ValidationError naming the field, on every adapter -- never a driver's OperationalError, an
OverflowError or a RecursionError, and never an aborted session.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pycrm
from pycrm import Customer, Money, Opportunity, Order, Ticket, User, ValidationError
from pycrm.analytics import DEFAULT_SEGMENTS, MAX_BINS, MAX_DAY, MIN_DAY, SegmentRule, customer_activity, rfm
from pycrm.storage import MAX_IN_VALUES, MAX_ROWS

DB = settings(
    max_examples=max(6, settings.default.max_examples // 4),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

UTC = dt.UTC
T0 = dt.datetime(2024, 3, 1, 12, 0, tzinfo=UTC)

#: name -> (created_at, tags, custom tier, e-mail)
ROWS: dict[str, tuple[dt.datetime, list[str], Any, str]] = {
    "Ann": (T0, ["vip"], "gold", "ann@a.example"),
    "Bob": (T0 + dt.timedelta(days=1), ["b2b", "vip"], 5, "bob@b.example"),
    "Cy": (T0 + dt.timedelta(microseconds=1), [], True, "cy@c.example"),
    "Di": (T0 + dt.timedelta(days=400), ["重点"], "5", "di@d.example"),
    "Ed": (T0 - dt.timedelta(days=1), ["b2b"], None, "ed@e.example"),
}


def field_value(name: str, field: str) -> Any:
    created, tags, tier, email = ROWS[name]
    return {"name": name, "created_at": created, "tags": tags, "custom.tier": tier, "emails": [email]}[field]


def decoys(field: str, n: int) -> list[Any]:
    """``n`` filter values that match none of ROWS."""
    if field == "name":
        return [f"nobody {i}" for i in range(n)]
    if field == "created_at":
        return [T0 + dt.timedelta(seconds=7 + i) for i in range(n)]
    if field == "emails":
        return [f"x{i}@nowhere.example" for i in range(n)]
    if field == "tags":
        return [f"t{i}" for i in range(n)]
    return [(f"g{i}" if i % 3 == 0 else (i + 10 if i % 3 == 1 else 10**9 + i)) for i in range(n)]  # custom


def matches(name: str, field: str, values: list[Any]) -> bool:
    have = field_value(name, field)
    if field in ("tags", "emails"):
        return bool(set(have) & set(values))
    if field == "custom.tier":  # type-exact: True is not 1, "5" is not 5
        return have is not None and any(type(v) is type(have) and v == have for v in values)
    return have in values


@pytest.fixture
def store(crm: pycrm.CRM) -> pycrm.CRM:
    with crm.session() as s:
        for name, (created, tags, tier, email) in ROWS.items():
            custom = {} if tier is None else {"tier": tier}
            s.customers.add(Customer(name, created_at=created, tags=tags, custom=custom, emails=[email]))
    return crm


FIELDS = ["name", "created_at", "tags", "emails", "custom.tier"]
picks = st.lists(st.sampled_from([*ROWS, "True-as-1"]), max_size=4)


@DB
@given(field=st.sampled_from(FIELDS), n=st.sampled_from([0, 1, 499, 500, 501, 1000, 2500]), picked=picks, at=st.integers(0, 2500))
def test_in_lists_of_any_length_match_the_same_rows_on_every_adapter(
    store: pycrm.CRM, field: str, n: int, picked: list[str], at: int
) -> None:
    values = decoys(field, n)
    for name in picked:
        if name == "True-as-1":
            if field != "custom.tier":
                continue
            real: Any = 1  # must not match Cy's True
        else:
            real = field_value(name, field)
            if real is None or real == []:
                continue
            if isinstance(real, list):
                real = real[0]
        values.insert(min(at, len(values)), real)
    want = {name for name in ROWS if matches(name, field, values)}
    with store.session() as s:
        got = {c.name for c in s.customers.find({field: {"in": values}})}
        assert s.customers.count({field: {"in": values}}) == len(want)
    assert got == want


def test_a_thousand_value_custom_in_list_works(store: pycrm.CRM) -> None:
    # SQLite raised "Expression tree is too large (maximum depth 1000)" through sqlalchemy.
    values = [*decoys("custom.tier", 1000), "gold", 5, True]
    with store.session() as s:
        assert {c.name for c in s.customers.find({"custom.tier": {"in": values}})} == {"Ann", "Bob", "Cy"}


@pytest.mark.parametrize("field", ["name", "created_at", "tags", "custom.tier", "id"])
def test_more_in_values_than_a_driver_takes_parameters_work_and_keep_the_session(store: pycrm.CRM, field: str) -> None:
    # 70,000 > 65,535, the parameter limit of PostgreSQL and MariaDB (psycopg raised OperationalError and
    # aborted the session); the statement is built in time linear in the list (7 s for 40,000 before).
    with store.session() as s:
        ann = s.customers.find({"name": "Ann"})[0]
        real = {"name": "Ann", "created_at": T0, "tags": "vip", "custom.tier": "gold", "id": ann.id}[field]
        values = [*(decoys(field, 70_000) if field != "id" else [f"cus_{i:020d}" for i in range(70_000)]), real]
        found = s.customers.find({field: {"in": values}})
        assert "Ann" in {c.name for c in found}
        assert s.customers.count() == len(ROWS)  # the session still works


def test_an_in_list_past_the_limit_is_refused_naming_the_field(store: pycrm.CRM) -> None:
    with store.session() as s:
        with pytest.raises(ValidationError) as exc:
            s.customers.find({"name": {"in": [f"n{i}" for i in range(MAX_IN_VALUES + 1)]}})
        assert [e.field for e in exc.value.errors] == ["where.name.in"]
        assert f"{MAX_IN_VALUES:,}" in str(exc.value)
        assert s.customers.count({"name": {"in": [f"n{i}" for i in range(MAX_IN_VALUES)]}}) == 0


# ---------------------------------------------------------------- limit, offset, batch_size


@given(
    limit=st.one_of(st.none(), st.integers(0, MAX_ROWS), st.integers(MAX_ROWS + 1, 2**70)),
    offset=st.one_of(st.integers(0, MAX_ROWS), st.integers(MAX_ROWS + 1, 2**70)),
)
@DB
def test_limit_and_offset_are_bounded(store: pycrm.CRM, limit: int | None, offset: int) -> None:
    bad = [name for name, v in (("limit", limit), ("offset", offset)) if v is not None and v > MAX_ROWS]
    with store.session() as s:
        if bad:
            with pytest.raises(ValidationError) as exc:
                s.customers.find(limit=limit, offset=offset)
            assert [e.field for e in exc.value.errors] == bad
        else:
            got = s.customers.find(limit=limit, offset=offset, order_by="name")
            assert [c.name for c in got] == sorted(ROWS)[offset:][:limit]
        assert s.customers.count() == len(ROWS)


def test_find_limit_two_to_the_64_is_a_validation_error(store: pycrm.CRM) -> None:
    with store.session() as s:
        with pytest.raises(ValidationError, match="limit"):
            s.customers.find(limit=2**64)
        with pytest.raises(ValidationError, match="batch_size"):
            list(s.customers.iter(batch_size=2**64))
        assert len(list(s.customers.iter(batch_size=MAX_ROWS))) == len(ROWS)


# ---------------------------------------------------------------- rfm bins

CALLS: list[int] = []


class CountingRule(SegmentRule):
    """A segment rule that counts how often it is asked: the work ``rfm`` does per bins."""

    def matches(self, r: int, f: int) -> bool:
        CALLS.append(1)
        return bool(super().matches(r, f))


COUNTING = tuple(CountingRule(rule.name, rule.r, rule.f) for rule in DEFAULT_SEGMENTS)


def test_rfm_bins_are_bounded_and_cost_nothing_per_bin(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        ids = [s.customers.add(Customer(f"C{i}")).id for i in range(3)]
        for i, cid in enumerate(ids):
            s.orders.add(Order(cid, T0 - dt.timedelta(days=i), Money(10 * (i + 1), "CNY")))
    with crm.session() as s:
        for bad in (0, MAX_BINS + 1, 2**64, True, "5"):
            with pytest.raises(ValidationError) as exc:
                s.analytics.rfm(as_of=T0.date(), bins=bad)
            assert [e.field for e in exc.value.errors] == ["bins"]
        CALLS.clear()
        got = s.analytics.rfm(as_of=T0.date(), bins=MAX_BINS, segments=COUNTING)
        # one segment lookup per (r, f) pair met, never a MAX_BINS x MAX_BINS table (10**6 pairs)
        assert len(CALLS) <= len(ids) * len(COUNTING)
        orders = list(s.orders.find())
    assert got == rfm(orders, as_of=T0.date(), bins=MAX_BINS)
    assert sorted(x.r for x in got) == [1, 334, 667]
    CALLS.clear()
    rfm(orders, as_of=T0.date(), bins=MAX_BINS, segments=COUNTING)
    assert len(CALLS) <= len(ids) * len(COUNTING)
    with pytest.raises(ValidationError, match="bins"):
        rfm(orders, as_of=T0.date(), bins=MAX_BINS + 1)


def test_rfm_on_a_data_frame_bounds_bins_too() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {"customer_id": ["a", "b", "a"], "occurred_at": [T0, T0 - dt.timedelta(days=3), T0], "amount": [1, 2, 3]}
    )
    CALLS.clear()
    got = rfm(frame, as_of=T0.date(), bins=MAX_BINS, segments=COUNTING)
    assert len(CALLS) <= 2 * len(COUNTING)
    assert [(x.customer_id, x.r, x.f) for x in got] == [("a", 501, 501), ("b", 1, 1)]
    with pytest.raises(ValidationError, match="bins"):
        rfm(frame, as_of=T0.date(), bins=2**64)


# ---------------------------------------------------------------- report dates

#: every report entry point that takes a day, and the argument it names
REPORTS: dict[str, tuple[str, Any]] = {
    "rfm": ("as_of", lambda a, d: a.rfm(as_of=d)),
    "forecast": ("start", lambda a, d: a.forecast(start=d)),
    "win_rate": ("end", lambda a, d: a.win_rate(end=d)),
    "sales_cycle": ("start", lambda a, d: a.sales_cycle(start=d)),
    "customer_activity": ("start", lambda a, d: a.customer_activity(start=d)),
    "customer_activity.end": ("end", lambda a, d: a.customer_activity(end=d, period="week")),
    "top_customers": ("end", lambda a, d: a.top_customers(end=d)),
    "ticket_summary": ("start", lambda a, d: a.ticket_summary(start=d)),
    "service_times": ("as_of", lambda a, d: a.service_times(as_of=d)),
    "purchase_summary": ("calibration_end", lambda a, d: a.purchase_summary(calibration_end=d)),
    "clv": ("as_of", lambda a, d: a.clv(as_of=d)),
}
PLUS_ONE = dt.timezone(dt.timedelta(hours=1))
days = st.one_of(
    st.sampled_from([dt.date(1, 1, 1), dt.date(999, 12, 31), dt.date(1000, 1, 1), dt.date(9998, 12, 31), dt.date(9999, 12, 31)]),
    st.dates(),
)
spellings = st.sampled_from(["date", "text", "utc", "+01:00"])


def spell(d: dt.date, how: str) -> Any:
    if how == "text":
        return d.isoformat()
    if how == "utc":
        return dt.datetime.combine(d, dt.time(12), UTC)
    if how == "+01:00":  # 0001-01-01 00:30+01:00 is before datetime.min in UTC
        return dt.datetime.combine(d, dt.time(0, 30), PLUS_ONE)
    return d


@pytest.fixture
def book(crm: pycrm.CRM) -> pycrm.CRM:
    with crm.session() as s:
        ids = [s.customers.add(Customer(f"C{i}")).id for i in range(3)]
        s.orders.add_many([Order(cid, T0 - dt.timedelta(days=30 * i), Money(10 + i, "CNY")) for i, cid in enumerate(ids)])
        s.tickets.add(Ticket(ids[0], "help", created_at=T0))
        s.opportunities.add(Opportunity(ids[0], "deal", Money(5, "CNY"), created_at=T0))
    return crm


@DB
@given(d=days, how=spellings, report=st.sampled_from(sorted(REPORTS)))
def test_report_days_outside_the_supported_range_are_refused_naming_the_argument(
    book: pycrm.CRM, d: dt.date, how: str, report: str
) -> None:
    field, call = REPORTS[report]
    value = spell(d, how)
    utc_day = value.astimezone(UTC).date() if isinstance(value, dt.datetime) and d.year > 1 else d
    with book.session() as s:
        if (how == "+01:00" and d == dt.date(1, 1, 1)) or not MIN_DAY <= utc_day <= MAX_DAY:
            with pytest.raises(ValidationError) as exc:
                call(s.analytics, value)
            assert [e.field for e in exc.value.errors] == [field]
        else:
            try:
                call(s.analytics, value)
            except ValidationError as exc:  # clv on three customers: too few to fit, and it says so
                assert report == "clv" and "too few customers" in str(exc)
        assert s.customers.count() == 3  # the session still works


def test_reports_over_records_at_both_ends_of_the_calendar(crm: pycrm.CRM) -> None:
    first, last = dt.datetime(1, 1, 1, tzinfo=UTC), dt.datetime(9999, 12, 31, 23, 59, tzinfo=UTC)
    with crm.session() as s:
        for i, at in enumerate((first, last)):
            c = s.customers.add(Customer(f"C{i}", created_at=at))
            s.orders.add(Order(c.id, at, Money(10, "CNY")))
            s.tickets.add(Ticket(c.id, "help", created_at=at))
    with crm.session() as s:
        orders = s.orders.find()
        for period in ("quarter", "year"):  # 0001 to 9999: every period, the first without a previous one
            rows = list(s.analytics.customer_activity(period=period))
            assert (rows[0].active, rows[0].churned, rows[-1].active, rows[-1].new) == (1, 0, 1, 1)
            assert rows == list(customer_activity(orders, period=period))
        rows = list(s.analytics.customer_activity(period="week", start="9998-12-01"))  # up to the last week
        assert rows[-1].period == "9999-W52" and rows[-1].active == 1
        assert rows == list(customer_activity(orders, period="week", start="9998-12-01"))
        assert sum(r.tickets for r in s.analytics.service_times(period="year")) == 2


# ---------------------------------------------------------------- numbers and instants past what a database holds


@DB
@given(
    value=st.one_of(st.integers(-(2**70), -(2**63) - 1), st.integers(2**63, 2**70), st.integers(-(2**63), 2**63 - 1)),
    op=st.sampled_from(["eq", "ne", "gt", "lte", "in"]),
)
def test_integer_filters_past_64_bits_are_refused_everywhere(store: pycrm.CRM, value: int, op: str) -> None:
    where = {"version": {op: [value, 1] if op == "in" else value}}
    with store.session() as s:
        if -(2**63) <= value < 2**63:
            got = {c.version for c in s.customers.find(where)}  # every customer has version 1
            assert got == (
                {1} if {"eq": value == 1, "ne": value != 1, "gt": value < 1, "lte": value >= 1, "in": True}[op] else set()
            )
        else:
            with pytest.raises(ValidationError) as exc:
                s.customers.count(where)
            assert exc.value.errors[0].field.startswith(f"where.version.{op}")
        assert s.customers.count() == len(ROWS)


def test_an_instant_before_year_1_in_utc_is_refused_naming_the_field(store: pycrm.CRM) -> None:
    early = dt.datetime(1, 1, 1, 0, 30, tzinfo=PLUS_ONE)  # 0000-12-31 23:30 UTC
    with store.session() as s:
        with pytest.raises(ValidationError) as exc:
            s.customers.find({"created_at": {"lt": early}})
        assert [e.field for e in exc.value.errors] == ["where.created_at.lt"]
        with pytest.raises(ValidationError) as exc:
            s.customers.add(Customer("Early", created_at=early))
        assert [e.field for e in exc.value.errors] == ["created_at"]
        first = dt.datetime(1, 1, 1, tzinfo=UTC)
        assert s.customers.count({"created_at": {"gte": first}}) == len(ROWS)


def test_counts_past_2_to_the_53_are_refused_naming_the_argument(store: pycrm.CRM, tmp_path) -> None:
    from pycrm.io import export_file, import_file

    big = MAX_ROWS + 1
    source = tmp_path / "in.csv"
    source.write_text("name\nNew\n", encoding="utf-8")
    calls = {
        "batch_size": [
            lambda s: export_file(store, tmp_path / "out.csv", batch_size=big),
            lambda s: import_file(store, source, entity="customers", batch_size=big),
            lambda s: store.rotate_keys(batch_size=big),
        ],
        "n": [lambda s: s.analytics.top_customers(n=big)],
        "limit": [lambda s: s.changes.since(limit=big)],
        "cursor": [lambda s: s.changes.since(cursor=big)],
    }
    for field, fns in calls.items():
        for fn in fns:
            with store.session() as s:
                with pytest.raises(ValidationError) as exc:
                    fn(s)
                assert [e.field for e in exc.value.errors] == [field]
    with store.session() as s:
        assert s.customers.count() == len(ROWS) and s.changes.since(cursor=MAX_ROWS) == []


@pytest.mark.parametrize("n", [3, 701])
def test_long_in_lists_on_every_field_kind(crm: pycrm.CRM, n: int) -> None:
    """Dates, money, decimals, currencies, e-mail addresses and ids: one array or JSON parameter past 500."""
    with crm.session() as s:
        c = s.customers.add(Customer("A"))
        deal = Opportunity(c.id, "o", Money("5.25", "CNY"), expected_close=dt.date(2024, 1, 1))
        deal.probability_override = Decimal("0.35")
        s.opportunities.add_many([deal, Opportunity(c.id, "p", Money("7", "USD"), expected_close=dt.date(2025, 1, 1))])
        s.users.add(User("Bob", email="bob@x.example"))
    cases: list[tuple[str, str, list[Any]]] = [
        (
            "opportunities",
            "expected_close",
            [dt.date(2000, 1, 1) + dt.timedelta(days=i) for i in range(n)] + [dt.date(2024, 1, 1)],
        ),
        ("opportunities", "amount", [1000 + Decimal(i) / 100 for i in range(n)] + [Decimal("5.25")]),
        ("opportunities", "probability_override", [Decimal("0.5") + Decimal(i) / 10**5 for i in range(n)] + [Decimal("0.35")]),
        ("opportunities", "currency", [f"X{i:02d}"[:3] for i in range(n)] + ["usd"]),
        ("users", "email", [f"u{i}@x.example" for i in range(n)] + ["BOB@x.example"]),
        ("customers", "id", [f"{i:032x}" for i in range(n)] + [c.id]),
    ]
    with crm.session() as s:
        for repo, field, values in cases:
            assert len(getattr(s, repo).find({field: {"in": values}})) == 1, field
            assert getattr(s, repo).count({field: {"in": values[:-1]}}) == 0, field


def test_long_in_lists_on_encrypted_fields(open_crm: Any) -> None:
    """Encrypted e-mails and custom fields are matched through blind indexes: long lists work there too."""
    from pycrm.security import KeyRing

    ring = KeyRing({"k1": bytes(range(32))}, active="k1", index_key=bytes(range(32, 64)))
    crm = open_crm(keyring=ring, encrypted={"customers": ["emails", "custom.national_id"]})
    with crm.session() as s:
        s.customers.add(Customer("A", emails=["a@x.example"], custom={"national_id": "110101"}))
    emails = [f"n{i}@x.example" for i in range(1200)]
    ids = [f"id{i}" for i in range(1200)]
    with crm.session() as s:
        assert [c.name for c in s.customers.find({"emails": {"in": [*emails, "A@x.example"]}})] == ["A"]
        assert [c.name for c in s.customers.find({"custom.national_id": {"in": [*ids, "110101"]}})] == ["A"]
        assert s.customers.count({"emails": {"in": emails}}) == 0
