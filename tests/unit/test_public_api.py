"""The public surface: pinned ``__all__`` lists, the error tree, and a domain that does not pull in SQLAlchemy."""

from __future__ import annotations

import subprocess
import sys

import pycrm
import pycrm.domain
import pycrm.errors

PYCRM_ALL = [
    "CRM",
    "DEFAULT_PIPELINE",
    "Activity",
    "Address",
    "ApplyResult",
    "Attachment",
    "AttachmentLimits",
    "CRMError",
    "Campaign",
    "CampaignMember",
    "CampaignResponse",
    "ChangeEvent",
    "ConcurrencyError",
    "Contact",
    "CustomField",
    "Customer",
    "EmailAddress",
    "FieldError",
    "Incoming",
    "Interaction",
    "LocalBlobStore",
    "Money",
    "NotFound",
    "Opportunity",
    "Order",
    "OrderLine",
    "Permission",
    "PermissionDenied",
    "PhoneNumber",
    "Pipeline",
    "Product",
    "Repository",
    "Role",
    "Session",
    "Stage",
    "StorageError",
    "Survey",
    "Task",
    "Ticket",
    "TicketPriority",
    "TicketStatus",
    "TransitionError",
    "User",
    "ValidationError",
    "__version__",
    "domain",
    "errors",
    "open",
]

DOMAIN_ALL = [
    "ACTIONS",
    "DEFAULT_PIPELINE",
    "ENTITIES",
    "ENTITY_REPOSITORIES",
    "SCOPES",
    "SLA_HOURS",
    "TICKET_LIFECYCLE",
    "Activity",
    "Address",
    "Attachment",
    "Campaign",
    "CampaignMember",
    "CampaignResponse",
    "Contact",
    "CustomField",
    "Customer",
    "EmailAddress",
    "Entity",
    "ForecastCategory",
    "Interaction",
    "Lifecycle",
    "Money",
    "Opportunity",
    "Order",
    "OrderLine",
    "Permission",
    "PhoneNumber",
    "Pipeline",
    "Product",
    "Role",
    "Stage",
    "StageChange",
    "StageKind",
    "StatusChange",
    "Survey",
    "Task",
    "Ticket",
    "TicketPriority",
    "TicketStatus",
    "User",
    "check_custom",
    "check_required",
    "current_region",
    "default_region",
    "get_pipeline",
    "new_id",
    "register_pipeline",
    "utcnow",
]

ERRORS_ALL = [
    "CRMError",
    "ConcurrencyError",
    "EncryptionError",
    "FieldError",
    "NotFound",
    "PermissionDenied",
    "StorageError",
    "TransitionError",
    "ValidationError",
]


def isort_order(names: list[str]) -> list[str]:
    """The order ruff's RUF022 keeps: CONSTANTS, then Classes, then everything else, each alphabetical."""
    return sorted(names, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n))


def test_pycrm_all_is_pinned_and_sorted() -> None:
    assert pycrm.__all__ == PYCRM_ALL
    assert isort_order(PYCRM_ALL) == PYCRM_ALL
    for name in PYCRM_ALL:
        assert hasattr(pycrm, name), name


def test_pycrm_domain_all_is_pinned_and_sorted() -> None:
    assert pycrm.domain.__all__ == DOMAIN_ALL
    assert isort_order(DOMAIN_ALL) == DOMAIN_ALL
    for name in DOMAIN_ALL:
        assert hasattr(pycrm.domain, name), name


def test_pycrm_errors_all_is_pinned() -> None:
    assert pycrm.errors.__all__ == ERRORS_ALL


def test_domain_names_reexported_from_pycrm_are_the_same_objects() -> None:
    for name in set(PYCRM_ALL) & set(DOMAIN_ALL):
        assert getattr(pycrm, name) is getattr(pycrm.domain, name), name
    for name in set(PYCRM_ALL) & set(ERRORS_ALL):
        assert getattr(pycrm, name) is getattr(pycrm.errors, name), name


def test_the_error_tree() -> None:
    for name in ("ValidationError", "NotFound", "ConcurrencyError", "PermissionDenied", "TransitionError"):
        assert issubclass(getattr(pycrm, name), pycrm.CRMError), name
    assert issubclass(pycrm.CRMError, Exception)


def _fresh(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_the_domain_does_not_import_sqlalchemy() -> None:
    out = _fresh(
        "import sys, pycrm.domain\n"
        "c = pycrm.domain.Customer('Acme Ltd', emails=['a@acme.example'], phones=['+86 138 0013 8000'])\n"
        "print(sorted(m for m in sys.modules if m == 'sqlalchemy' or m.startswith('sqlalchemy.')))"
    )
    assert out == "[]"


def test_the_package_is_marked_typed_for_type_checkers() -> None:
    import importlib.resources

    assert importlib.resources.files("pycrm").joinpath("py.typed").is_file()
