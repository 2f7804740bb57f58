"""Pure domain model: entities, value objects, state machines and validation.

Imports only the standard library, attrs, phonenumbers and email-validator (no ORM, no I/O).
"""

from pycrm.domain._checks import new_id
from pycrm.domain._custom import CustomField, check_custom, check_required
from pycrm.domain._entities import (
    ACTIONS,
    ENTITY_REPOSITORIES,
    SCOPES,
    SLA_HOURS,
    Contact,
    Customer,
    Entity,
    Interaction,
    Opportunity,
    Order,
    Permission,
    Role,
    StageChange,
    StatusChange,
    Survey,
    Task,
    Ticket,
    User,
    utcnow,
)
from pycrm.domain._machine import (
    DEFAULT_PIPELINE,
    TICKET_LIFECYCLE,
    ForecastCategory,
    Lifecycle,
    Pipeline,
    Stage,
    StageKind,
    TicketPriority,
    TicketStatus,
    get_pipeline,
    register_pipeline,
)
from pycrm.domain._values import Address, EmailAddress, Money, PhoneNumber, current_region, default_region

#: Entity class by repository name.
ENTITIES: dict[str, type[Entity]] = {
    "customers": Customer,
    "contacts": Contact,
    "opportunities": Opportunity,
    "tickets": Ticket,
    "interactions": Interaction,
    "orders": Order,
    "tasks": Task,
    "users": User,
    "surveys": Survey,
}

__all__ = [
    "ACTIONS",
    "DEFAULT_PIPELINE",
    "ENTITIES",
    "ENTITY_REPOSITORIES",
    "SCOPES",
    "SLA_HOURS",
    "TICKET_LIFECYCLE",
    "Address",
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
    "Permission",
    "PhoneNumber",
    "Pipeline",
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
