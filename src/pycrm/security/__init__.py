"""Security building blocks, pure: roles and row scopes, field masking, field encryption, the audit
chain, and personal-data helpers. The storage layer applies them; nothing here opens a store.

* :mod:`._policy` -- built-in roles, ``Policy(actor)``: ``allowed``/``check``/``scope_conditions``/``visible``;
* :mod:`._masking` -- ``FieldRules``, ``mask_entity``, the ``Masked`` marker, ``assert_unmasked``/``restore_masked``;
* :mod:`._crypto` -- ``KeyRing``: AES-256-GCM envelopes ``enc:v1:<key id>:...``, rotation, blind indexes;
* :mod:`._audit` -- ``AuditEntry``, ``diff``, ``chain_hash``, ``make_entry``, ``verify``;
* :mod:`._personal` -- ``anonymize_customer``, ``anonymize_contact``, ``consent_allows``.

>>> from pycrm.domain import User
>>> Policy(User("Ann", "ann@example.com", roles=["analyst"], id="u9")).allowed("orders", "export")
'all'
"""

from pycrm.security._audit import (
    AUDIT_ACTIONS,
    CHANGED,
    GENESIS_HASH,
    AuditEntry,
    VerifyResult,
    canonical_json,
    chain_hash,
    diff,
    make_entry,
    verify,
)
from pycrm.security._crypto import ENVELOPE_PREFIX, KeyRing, is_encrypted, normalize_for_index
from pycrm.security._masking import (
    DEFAULT_FIELD_RULES,
    MASKS,
    FieldRules,
    Masked,
    assert_unmasked,
    mask_data,
    mask_email,
    mask_entity,
    mask_national_id,
    mask_phone,
    mask_text,
    masked_fields,
    redact,
    restore_masked,
)
from pycrm.security._personal import (
    ANONYMIZED_PREFIX,
    PERSONAL_CUSTOM_KEYS,
    anonymize_contact,
    anonymize_customer,
    consent_allows,
    short_hash,
    without_personal_keys,
)
from pycrm.security._policy import BUILTIN_ROLES, Lookup, Policy, get_role, matches, register_role

__all__ = [
    "ANONYMIZED_PREFIX",
    "AUDIT_ACTIONS",
    "BUILTIN_ROLES",
    "CHANGED",
    "DEFAULT_FIELD_RULES",
    "ENVELOPE_PREFIX",
    "GENESIS_HASH",
    "MASKS",
    "PERSONAL_CUSTOM_KEYS",
    "AuditEntry",
    "FieldRules",
    "KeyRing",
    "Lookup",
    "Masked",
    "Policy",
    "VerifyResult",
    "anonymize_contact",
    "anonymize_customer",
    "assert_unmasked",
    "canonical_json",
    "chain_hash",
    "consent_allows",
    "diff",
    "get_role",
    "is_encrypted",
    "make_entry",
    "mask_data",
    "mask_email",
    "mask_entity",
    "mask_national_id",
    "mask_phone",
    "mask_text",
    "masked_fields",
    "matches",
    "normalize_for_index",
    "redact",
    "register_role",
    "restore_masked",
    "short_hash",
    "verify",
    "without_personal_keys",
]
