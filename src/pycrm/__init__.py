"""pycrm: embeddable CRM domain logic.

>>> import pycrm
>>> crm = pycrm.open("memory://")
>>> with crm.session() as s:
...     acme = s.customers.add(pycrm.Customer("Acme Ltd", emails=["sales@acme.example"]))
>>> acme.version
1
"""

from pycrm import domain, errors
from pycrm._crm import CRM, open
from pycrm.domain import (
    DEFAULT_PIPELINE,
    Activity,
    Address,
    Attachment,
    Campaign,
    CampaignMember,
    CampaignResponse,
    Contact,
    Customer,
    CustomField,
    EmailAddress,
    Interaction,
    Money,
    Opportunity,
    Order,
    OrderLine,
    Permission,
    PhoneNumber,
    Pipeline,
    Product,
    Role,
    Stage,
    Survey,
    Task,
    Ticket,
    TicketPriority,
    TicketStatus,
    User,
)
from pycrm.errors import (
    ConcurrencyError,
    CRMError,
    FieldError,
    NotFound,
    PermissionDenied,
    StorageError,
    TransitionError,
    ValidationError,
)
from pycrm.storage import AttachmentLimits, LocalBlobStore, Repository, Session
from pycrm.storage._journal import ApplyResult, ChangeEvent, Incoming

__version__ = "0.1.0.dev0"

__all__ = [
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
