"""Personal data: anonymizing a customer or a contact (the right to erasure), and marketing consent.

Anonymizing keeps the record and its id, so what refers to it (orders, tickets, opportunities) and the
totals computed from it (RFM, revenue by segment) stay as they were; what identifies the person goes:
the name becomes ``Anonymized <hash>`` (a short hash of the id, the same every time, so a repeated
request changes nothing), e-mail addresses, phones and addresses are emptied, custom values under
personal keys are removed. Tags, status, category, country, owner and team stay: they describe the
business relation, not the person. The functions are pure: they return a new entity and store nothing.

>>> from pycrm.domain import Contact, Customer
>>> c = Customer("李雷", kind="person", emails=["li.lei@example.com"], phones=["+86 138 0013 8000"],
...              tags={"vip"}, custom={"national_id": "110101199003077777", "tier": "gold"}, id="c1")
>>> a = anonymize_customer(c)
>>> a.name, a.emails, a.phones, sorted(a.tags), a.custom, a.id
('Anonymized 727d8138de', [], [], ['vip'], {'tier': 'gold'}, 'c1')
>>> consent_allows(Contact("c1", "Ada", consent={"email": True}), "email")
True
>>> consent_allows(Contact("c1", "Ada"), "sms")
False
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from pycrm.domain import Contact, Customer
from pycrm.domain._checks import check_names
from pycrm.domain._checks import text as check_text
from pycrm.errors import FieldError, ValidationError, quote

__all__ = [
    "ANONYMIZED_PREFIX",
    "PERSONAL_CUSTOM_KEYS",
    "anonymize_contact",
    "anonymize_customer",
    "consent_allows",
    "short_hash",
    "without_personal_keys",
]

ANONYMIZED_PREFIX = "Anonymized"

#: Custom keys removed by default (compared case-insensitively, ``-`` and spaces as ``_``).
PERSONAL_CUSTOM_KEYS: frozenset[str] = frozenset(
    {
        "national_id",
        "id_number",
        "id_card",
        "passport",
        "passport_no",
        "ssn",
        "tax_id",
        "birthday",
        "birth_date",
        "date_of_birth",
        "dob",
        "gender",
        "phone",
        "mobile",
        "email",
        "address",
        "home_address",
        "wechat",
        "wechat_id",
        "qq",
        "line_id",
        "whatsapp",
        "bank_account",
        "iban",
        "card_number",
    }
)


def short_hash(entity_id: str, length: int = 10) -> str:
    """The first ``length`` hex digits of SHA-256 over ``pycrm-anonymized:<id>``.

    >>> short_hash("c1")
    '727d8138de'
    """
    check_text(entity_id, "entity_id", required=True, max_len=64)
    if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= 64:
        raise ValidationError([FieldError("length", "range", f"expected a whole number from 1 to 64, got {quote(length)}")])
    return hashlib.sha256(f"pycrm-anonymized:{entity_id}".encode()).hexdigest()[:length]


def _key(k: str) -> str:
    return str(k).strip().lower().replace("-", "_").replace(" ", "_")


def _require_id(entity: Any, kind: str) -> str:
    if entity.id is None:
        raise ValidationError([FieldError("id", "required", f"only a stored {kind} (with an id) can be anonymized")])
    return str(entity.id)


def anonymize_customer(customer: Customer, *, personal_keys: Iterable[str] = PERSONAL_CUSTOM_KEYS) -> Customer:
    """A copy of ``customer`` with what identifies it removed (see the module docstring); ids kept.

    ``personal_keys`` names the custom keys to remove; pass ``PERSONAL_CUSTOM_KEYS | {"vip_card"}`` to add.
    """
    if not isinstance(customer, Customer):
        raise ValidationError([FieldError("customer", "type", f"expected a Customer, got {type(customer).__name__}")])
    ident = _require_id(customer, "customer")
    custom = without_personal_keys(customer.custom, personal_keys)
    return attrs.evolve(
        customer, name=f"{ANONYMIZED_PREFIX} {short_hash(ident)}", emails=[], phones=[], addresses=[], custom=custom
    )


def without_personal_keys(custom: Mapping[str, Any], personal_keys: Iterable[str] = PERSONAL_CUSTOM_KEYS) -> dict[str, Any]:
    """``custom`` without the keys named in ``personal_keys`` (compared lower-case, ``-`` and spaces as ``_``).

    >>> without_personal_keys({"national_id": "110101199003077777", "Tier": "gold"})
    {'Tier': 'gold'}
    """
    drop = {_key(k) for k in check_names("personal_keys", personal_keys, one_ok=False)}
    if not isinstance(custom, Mapping):
        raise ValidationError([FieldError("custom", "type", f"expected a mapping of custom values, got {type(custom).__name__}")])
    return {k: v for k, v in custom.items() if _key(k) not in drop}


def anonymize_contact(contact: Contact, *, personal_keys: Iterable[str] = PERSONAL_CUSTOM_KEYS) -> Contact:
    """A copy of ``contact``: first name ``Anonymized``, last name a short hash of the id, no e-mails,
    phones or title, no consent (so nothing more is sent), and no custom values under ``personal_keys``
    (as on a customer); ``customer_id``, ``is_primary`` and id kept."""
    if not isinstance(contact, Contact):
        raise ValidationError([FieldError("contact", "type", f"expected a Contact, got {type(contact).__name__}")])
    ident = _require_id(contact, "contact")
    custom = without_personal_keys(contact.custom, personal_keys)
    return attrs.evolve(
        contact,
        first_name=ANONYMIZED_PREFIX,
        last_name=short_hash(ident),
        emails=[],
        phones=[],
        title=None,
        consent={},
        custom=custom,
    )


def consent_allows(contact: Contact | Mapping[str, Any], channel: str) -> bool:
    """Whether marketing may reach ``contact`` on ``channel`` (``"email"``, ``"sms"``, ``"phone"``...).

    Only an explicit ``True`` for the channel allows it: a missing answer is no. An explicit
    ``{"marketing": False}`` withdraws every channel. ``contact`` may also be its ``consent`` mapping.

    >>> consent_allows({"email": True, "marketing": False}, "email")
    False
    """
    if not isinstance(contact, (Contact, Mapping)):
        raise ValidationError([FieldError("contact", "type", f"expected a Contact or its consent, got {type(contact).__name__}")])
    consent = contact if isinstance(contact, Mapping) else contact.consent
    if not isinstance(channel, str) or not channel:
        raise ValidationError([FieldError("channel", "type", f"expected a channel name, got {quote(channel)}")])
    if consent.get("marketing") is False:
        return False
    return consent.get(channel) is True
