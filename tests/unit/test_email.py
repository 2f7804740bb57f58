"""E-mail addresses: however they are typed, they are stored in one canonical form (no network)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycrm import Customer, EmailAddress, User, ValidationError
from pycrm.domain._values import memoize_email_domains
from tests.strategies import email_spellings, emails, not_emails


@given(email_spellings())
def test_any_spelling_reads_as_the_canonical_address(pair: tuple[str, str]) -> None:
    typed, canonical = pair
    assert EmailAddress.parse(typed).value == canonical
    assert str(EmailAddress.parse(typed)) == canonical


@given(emails)
def test_parsing_is_idempotent(address: str) -> None:
    parsed = EmailAddress.parse(address)
    assert EmailAddress.parse(parsed.value) == parsed
    assert EmailAddress.parse(parsed) is parsed


@given(not_emails)
def test_non_addresses_are_validation_errors_naming_the_field(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        EmailAddress.parse(text, field="emails[3]")
    assert info.value.fields == ["emails[3]"]
    assert info.value.errors[0].code == "invalid_email"


@given(st.one_of(st.text(max_size=60), st.integers(), st.none(), st.binary(max_size=8), st.lists(st.text(), max_size=2)))
def test_any_input_parses_or_raises_validation_error(value: object) -> None:
    try:
        address = EmailAddress.parse(value, field="email")
    except ValidationError as exc:
        assert exc.fields == ["email"]
    else:
        assert "@" in address.value
        assert address.value == address.value.strip().lower()


def test_no_network_is_needed_for_unknown_domains() -> None:
    assert EmailAddress.parse("someone@no-such-domain-pycrm-test.example").value == "someone@no-such-domain-pycrm-test.example"


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("  Li.Lei@Example.COM ", "li.lei@example.com"),
        ("ＬＩ＠ＥＸＡＭＰＬＥ．ＣＯＭ", "li@example.com"),
        ("sales+cn@Acme.com.CN", "sales+cn@acme.com.cn"),
    ],
)
def test_known_spellings(typed: str, canonical: str) -> None:
    assert EmailAddress.parse(typed).value == canonical


def test_entities_store_parsed_addresses() -> None:
    c = Customer("Acme Ltd", emails=["Sales@Acme.example", " ops@ACME.example"])
    assert [e.value for e in c.emails] == ["sales@acme.example", "ops@acme.example"]
    u = User("Han Meimei", "HMM@Example.com")
    assert u.email == EmailAddress("hmm@example.com")


def test_every_bad_address_in_a_list_is_reported_with_its_index() -> None:
    with pytest.raises(ValidationError) as info:
        Customer("Acme Ltd", emails=["ok@acme.example", "nope", "fine@acme.example", "a@@b"])
    assert info.value.fields == ["emails[1]", "emails[3]"]


def _answer(text: str) -> tuple[str, str]:
    try:
        return "ok", EmailAddress.parse(text).value
    except ValidationError as exc:
        return "error", exc.errors[0].message


_DOMAINS = [
    "example.com",
    "Example.COM",
    "例子.中国",
    "bad_domain.com",
    "a..b",
    "-x.com",
    "localhost",
    "example.local",
    "x" * 70 + ".com",
    "1.2.3.4",
]


@contextmanager
def _remembered_domains() -> Iterator[Any]:
    """Domain checks remembered inside the block, as in an import's workers; the check found, after."""
    module = sys.modules["email_validator.validate_email"]
    original = module.validate_email_domain_name  # type: ignore[attr-defined]
    try:
        assert memoize_email_domains()
        assert not memoize_email_domains()  # once is enough
        yield module.validate_email_domain_name  # type: ignore[attr-defined]
    finally:
        module.validate_email_domain_name = original  # type: ignore[attr-defined]


_USERS = st.from_regex(r"[a-z][a-z.]{0,11}", fullmatch=True)


@given(st.lists(st.one_of(emails, not_emails, st.builds("{}@{}".format, _USERS, st.sampled_from(_DOMAINS))), max_size=30))
def test_remembered_domain_checks_give_the_same_answers(texts: list[str]) -> None:
    """An import's workers remember each domain's check (``memoize_email_domains``): every address, good or
    bad, reads as it does without it, with the same message, the first time and again."""
    plain = [_answer(t) for t in texts * 2]
    with _remembered_domains():
        assert [_answer(t) for t in texts * 2] == plain


def test_remembered_domain_checks_are_used_for_repeated_domains() -> None:
    with _remembered_domains() as check:
        for i in range(50):
            assert EmailAddress.parse(f"user{i}@Example{i % 3}.com").value == f"user{i}@example{i % 3}.com"
        info = check.cache_info()
        assert (info.misses, info.hits) == (3, 47)
        for _ in range(2):  # a failing domain is checked each time
            with pytest.raises(ValidationError, match="bad_domain"):
                EmailAddress.parse("a@bad_domain.com")
        assert check.cache_info().misses == 5
