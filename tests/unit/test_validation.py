"""Validation: every problem of a record at once, with field paths a form can point at."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycrm import (
    Address,
    Contact,
    Customer,
    FieldError,
    Interaction,
    Money,
    Opportunity,
    Order,
    Survey,
    Task,
    Ticket,
    User,
    ValidationError,
)
from pycrm.domain import CustomField, check_custom, default_region
from tests.strategies import BAD_TEXT, customers

NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def fields_of(call: Any) -> list[str]:
    with pytest.raises(ValidationError) as info:
        call()
    assert all(isinstance(e, FieldError) and e.message for e in info.value.errors)
    return info.value.fields


def test_a_customer_form_reports_every_problem_at_once() -> None:
    fields = fields_of(
        lambda: Customer(
            "",
            kind="alien",
            emails=["ok@acme.example", "nope", "fine@acme.example", "@"],
            phones=["+86 138 0013 8000", "12"],
            addresses=[{"city": "Shanghai"}, {"country": "Atlantis"}],
            country="XX",
            category="Retail//Online",
            status="asleep",
            tags=["vip", ""],
            custom={"score": 1.5},
        )
    )
    assert sorted(fields) == sorted(
        [
            "name",
            "kind",
            "emails[1]",
            "emails[3]",
            "phones[1]",
            "addresses[1].country",
            "country",
            "category",
            "status",
            "tags[1]",
            "custom.score",
        ]
    )


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (
            lambda: Contact("", "", emails=["x"], is_primary="yes", consent={"sms": "y"}),
            ["customer_id", "first_name", "emails[0]", "is_primary", "consent.sms"],
        ),
        (lambda: Opportunity("", "", 1000.0, expected_close="someday"), ["customer_id", "name", "amount", "expected_close"]),
        (lambda: Opportunity("c1", "Deal", Money(1), stage="won"), ["stage"]),
        (lambda: Ticket("c1", "", priority="p0"), ["subject", "priority"]),
        (lambda: Interaction("c1", "telepathy", dt.datetime(2025, 1, 1)), ["kind", "occurred_at"]),
        (lambda: Order("c1", "yesterday", {"amount": "1.00001", "currency": "CNY"}), ["occurred_at", "amount"]),
        (lambda: Order("c1", NOW, {"amount": "1", "currency": "ABC"}), ["amount.currency"]),
        (lambda: Task("", "tomorrow", done=1), ["title", "due_at", "done"]),
        (lambda: User("", "not-an-email", roles=[""]), ["name", "email", "roles[0]"]),
    ],
)
def test_each_entity_reports_all_its_problems(build: Any, expected: list[str]) -> None:
    assert sorted(fields_of(build)) == sorted(expected)


def test_assignment_is_validated_and_a_refused_value_is_not_kept() -> None:
    c = Customer("Acme Ltd", emails=["sales@acme.example"])
    with pytest.raises(ValidationError) as info:
        c.emails = ["sales@acme.example", "broken"]
    assert info.value.fields == ["emails[1]"]
    assert [e.value for e in c.emails] == ["sales@acme.example"]
    with pytest.raises(ValidationError):
        c.name = "   "
    assert c.name == "Acme Ltd"
    c.emails = ["NEW@acme.example"]
    assert c.emails[0].value == "new@acme.example"


def test_naive_datetimes_are_refused_and_aware_ones_become_utc() -> None:
    assert fields_of(lambda: Task("Call back", dt.datetime(2025, 1, 1, 9))) == ["due_at"]
    shanghai = dt.timezone(dt.timedelta(hours=8))
    t = Task("Call back", dt.datetime(2025, 1, 1, 9, tzinfo=shanghai))
    assert t.due_at == dt.datetime(2025, 1, 1, 1, tzinfo=dt.UTC)
    assert t.due_at.utcoffset() == dt.timedelta(0)
    assert Task("Call back", "2025-01-01T09:00:00Z").due_at == dt.datetime(2025, 1, 1, 9, tzinfo=dt.UTC)


def test_texts_with_nul_or_lone_surrogates_are_refused_naming_the_field() -> None:
    for bad in BAD_TEXT:
        assert fields_of(lambda bad=bad: Customer(bad)) == ["name"]
        assert fields_of(lambda bad=bad: Ticket("c1", "ok", description=bad)) == ["description"]


def test_text_limits() -> None:
    assert fields_of(lambda: Customer("x" * 301)) == ["name"]
    Customer("x" * 300)
    assert fields_of(lambda: Ticket("c1", "ok", description="x" * 100_001)) == ["description"]
    assert Ticket("c1", "ok", description="界" * 100_000).description == "界" * 100_000


def test_category_paths_and_tags_are_tidied() -> None:
    c = Customer("Acme Ltd", category=" Retail / Online ", tags=[" vip", "b2b", "vip "])
    assert c.category == "Retail/Online"
    assert c.tags == frozenset({"vip", "b2b"})


def test_addresses_accept_mappings_and_report_nested_paths() -> None:
    c = Customer("Acme Ltd", addresses=[{"street": "1 Main St", "city": "Shanghai", "country": "cn"}])
    assert c.addresses == [Address(street="1 Main St", city="Shanghai", country="CN")]
    assert sorted(fields_of(lambda: Customer("Acme", addresses=[{"town": "x", "country": 5}, "Main St"]))) == [
        "addresses[0].country",
        "addresses[0].town",
        "addresses[1]",
    ]
    both_bad = {"street": "1 Main St", "city": 7, "country": "XX"}
    assert fields_of(lambda: Address.from_mapping(both_bad, "home")) == ["home.city", "home.country"]


def test_from_mapping_names_unknown_and_missing_fields() -> None:
    assert fields_of(lambda: Customer.from_mapping({"nmae": "Acme"})) == ["nmae"]
    assert fields_of(lambda: Order.from_mapping({"customer_id": "c1"})) == ["occurred_at", "amount"]
    row = {"name": "Acme Ltd", "emails": ["a@acme.example"], "tags": ["vip"]}
    assert Customer.from_mapping(row).to_mapping()["emails"] == ["a@acme.example"]


def test_custom_fields_are_checked_against_definitions() -> None:
    defs = [
        CustomField("tier", "choice", choices=("gold", "silver")),
        CustomField("seats", "integer", required=True),
        CustomField("since", "date"),
        CustomField("budget", "decimal"),
        CustomField("active", "boolean"),
    ]
    check_custom({"tier": "gold", "seats": 5, "since": "2024-02-29", "budget": "12.50", "active": True}, defs)
    with pytest.raises(ValidationError) as info:
        check_custom({"tier": "bronze", "since": "2024-02-30", "budget": "lots", "active": "yes", "colour": "red"}, defs)
    assert sorted(info.value.fields) == sorted(
        ["custom.tier", "custom.since", "custom.budget", "custom.active", "custom.colour", "custom.seats"]
    )


def test_validation_error_is_a_crm_error_and_a_value_error() -> None:
    err = ValidationError([FieldError("a", "x", "bad"), FieldError("b", "y", "worse")])
    assert str(err) == "a: bad; b: worse"
    assert err.fields == ["a", "b"]
    assert err.prefixed("[2]").fields == ["[2].a", "[2].b"]
    assert isinstance(err, ValueError)


# Anything a caller might pass, of any type: the answer is the value or a ValidationError, never a crash.
anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.decimals(),
    st.text(max_size=20),
    st.binary(max_size=8),
    st.lists(st.one_of(st.text(max_size=10), st.integers(), st.none()), max_size=3),
    st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5), st.floats()), max_size=2),
    st.sampled_from([Decimal("NaN"), dt.datetime(2025, 1, 1), dt.date(2025, 1, 1), object(), Money(1), frozenset({"a"})]),
    st.sampled_from(BAD_TEXT),
)

FIELDS = {
    Customer: [
        "name",
        "kind",
        "emails",
        "phones",
        "addresses",
        "country",
        "category",
        "status",
        "owner_id",
        "team_id",
        "tags",
        "custom",
    ],
    Contact: ["customer_id", "first_name", "last_name", "emails", "phones", "title", "is_primary", "consent"],
    Opportunity: [
        "customer_id",
        "name",
        "amount",
        "stage",
        "expected_close",
        "owner_id",
        "pipeline",
        "probability_override",
        "lost_reason",
        "closed_at",
    ],
    Ticket: ["customer_id", "subject", "description", "priority", "status", "assignee_id", "category", "channel"],
    Interaction: ["customer_id", "kind", "occurred_at", "subject", "body", "user_id"],
    Order: ["customer_id", "occurred_at", "amount", "order_no"],
    Task: ["title", "due_at", "assignee_id", "related_id", "done"],
    User: ["name", "email", "roles", "team_id"],
    # score and answered_at read each other: an assignment checks one, the store both (test_surveys.py)
    Survey: ["customer_id", "kind", "sent_at", "comment", "ticket_id", "interaction_id", "user_id"],
}
VALID = {
    Customer: lambda: Customer("Acme Ltd"),
    Contact: lambda: Contact("c1", "Li"),
    Opportunity: lambda: Opportunity("c1", "Deal", Money(1)),
    Ticket: lambda: Ticket("c1", "Help"),
    Interaction: lambda: Interaction("c1", "call", NOW),
    Order: lambda: Order("c1", NOW, Money(1)),
    Task: lambda: Task("Call", NOW),
    User: lambda: User("Li Lei", "li@acme.example"),
    Survey: lambda: Survey("c1", "nps", NOW),
}
CASES = [(kind, f) for kind, fs in FIELDS.items() for f in fs]


@pytest.mark.parametrize(("kind", "field"), CASES, ids=[f"{k.__name__}.{f}" for k, f in CASES])
@given(value=anything)
def test_any_value_in_any_field_is_accepted_or_a_validation_error_naming_it(kind: type, field: str, value: Any) -> None:
    entity = VALID[kind]()
    with default_region("CN"):
        try:
            setattr(entity, field, value)
        except ValidationError as exc:
            assert exc.fields and all(f == field or f.startswith((f"{field}[", f"{field}.")) for f in exc.fields)
        else:
            entity.__attrs_post_init__()  # what was accepted is valid: checking the whole record again passes


@given(customers())
def test_generated_customers_are_valid_and_survive_their_own_mapping(c: Customer) -> None:
    again = Customer.from_mapping(c.to_mapping())
    assert again == c


# Tags and flat custom fields are checked first without building a field path per value; whatever that
# quick check does not take goes through the value-by-value check, which names each bad value.
_odd_text = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["", "   ", " vip ", "a\x00b", "\ud800", "界\udfff", "x" * 100, "x" * 101, "k" * 201, "界" * 201]),
)


def _outcome(call: Any) -> Any:
    try:
        return ("ok", call())
    except ValidationError as exc:
        return ("refused", exc.errors)


_SHAPES = st.sampled_from([list, tuple, iter, lambda v: (x for x in v)])


@given(st.lists(_odd_text, max_size=5), _SHAPES)
def test_tags_are_checked_and_named_as_each_tag_alone_would_be(values: list[str], shape: Any) -> None:
    from pycrm.domain import _checks

    def one_by_one() -> frozenset[str]:
        out, errors = [], []
        for i, t in enumerate(values):
            try:
                out.append(_checks.text(t, f"tags[{i}]", required=True, max_len=100).strip())
            except ValidationError as exc:
                errors += exc.errors
        if errors:
            raise ValidationError(errors)
        return frozenset(out)

    assert _outcome(lambda: _checks.tags(shape(values), "tags")) == _outcome(one_by_one)


def test_a_generator_of_tags_is_checked_whole() -> None:
    assert fields_of(lambda: Customer("Acme", tags=(t.strip() for t in ["vip", "", "b2b"]))) == ["tags[1]"]
    assert Customer("Acme", tags=(t for t in [" vip", "b2b"])).tags == frozenset({"vip", "b2b"})


# st.text never makes lone surrogates, so texts are joined from characters here
@given(st.lists(st.one_of(st.characters(), st.sampled_from(["\ud800", "\udbff", "\udfff", "\x00"])), max_size=6).map("".join))
def test_text_refuses_exactly_what_utf_8_cannot_encode(value: str) -> None:
    from pycrm.domain import _checks

    try:
        value.encode("utf-8")
        encodes = True
    except UnicodeEncodeError:
        encodes = False
    got = _outcome(lambda: _checks.text(value, "f"))
    if "\x00" in value:
        assert got[0] == "refused" and got[1][0].code == "nul_character"
    elif encodes:
        assert got == ("ok", value)
    else:
        assert got[0] == "refused" and [e.code for e in got[1]] == ["invalid_unicode"]


@given(st.dictionaries(_odd_text, st.one_of(_odd_text, st.none(), st.integers(), st.lists(_odd_text, max_size=2)), max_size=4))
def test_custom_values_are_checked_and_named_as_the_nested_check_names_them(values: dict[str, Any]) -> None:
    from pycrm.domain import _checks

    def nested() -> dict[str, Any]:
        _checks._json_safe(values, "custom")
        return dict(values)

    assert _outcome(lambda: _checks.json_dict(values, "custom")) == _outcome(nested)


def test_a_str_subclass_cannot_skip_the_unicode_check() -> None:
    class Claims(str):
        def isascii(self) -> bool:
            return True

    assert fields_of(lambda: Customer(Claims("Acme \ud800"))) == ["name"]


def test_ids_made_together_are_the_ids_made_one_by_one_would_be() -> None:
    """``new_ids`` (add_many's) and ``new_id`` share one sequence: 32 hex digits, unique, each later one sorting
    after every earlier one, whichever made it."""
    from pycrm.domain._checks import new_id, new_ids

    made = [new_id(), *new_ids(3), new_id(), *new_ids(1000), *new_ids(0), new_id()]
    assert len(made) == 1006 == len(set(made))
    assert made == sorted(made)
    assert all(len(i) == 32 and int(i, 16) >= 0 and i == i.lower() for i in made)
    assert new_ids(-1) == []
