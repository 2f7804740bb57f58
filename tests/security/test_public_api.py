"""pycrm.security: a pinned, sorted ``__all__``, and the module stays pure (no SQLAlchemy, no store)."""

from __future__ import annotations

import subprocess
import sys

import pycrm.security
from tests.unit.test_public_api import isort_order

SECURITY_ALL = [
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


def test_security_all_is_pinned_and_sorted() -> None:
    assert pycrm.security.__all__ == SECURITY_ALL
    assert isort_order(SECURITY_ALL) == SECURITY_ALL
    for name in SECURITY_ALL:
        assert hasattr(pycrm.security, name), name


def test_importing_security_does_not_import_sqlalchemy() -> None:
    code = "import sys, pycrm.security\nprint(sorted(m for m in sys.modules if m.split('.')[0] == 'sqlalchemy'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
