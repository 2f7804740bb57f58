"""``s.personal``: the rights of the people in a store -- access (export), erasure, and marketing consent.

* ``export(id)`` -- everything stored about one customer (its contacts, deals, tickets, interactions,
  orders, tasks, merge history and audit history) or one contact, as JSON-safe data;
* ``erase(id)`` -- anonymize a customer (with its contacts and the free text of its interactions and
  tickets) or one contact, keeping ids and amounts so orders, deals and every aggregate stay as they were;
* ``marketing_list(channel, ...)`` -- contacts that may be reached on a channel: consent is explicit
  (:func:`pycrm.security.consent_allows`), erased people never appear.

Each call runs under the session's actor: ``export`` needs the export right on the record, ``erase`` the
update right, and both are recorded in the audit trail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from pycrm.domain import Contact, Customer, Interaction, Opportunity, Order, Ticket, utcnow
from pycrm.domain._codec import to_data
from pycrm.errors import FieldError, NotFound, ValidationError
from pycrm.security import (
    ANONYMIZED_PREFIX,
    PERSONAL_CUSTOM_KEYS,
    anonymize_contact,
    anonymize_customer,
    consent_allows,
)

if TYPE_CHECKING:
    from pycrm.storage._repository import Session

__all__ = ["ERASED_TEXT", "PersonalData"]

#: What replaces the free text (interaction and ticket subjects) about an erased person.
ERASED_TEXT = "[erased]"

_CHILDREN: tuple[tuple[str, type[Any]], ...] = (
    ("contacts", Contact),
    ("opportunities", Opportunity),
    ("tickets", Ticket),
    ("interactions", Interaction),
    ("orders", Order),
)


class PersonalData:
    """Personal-data requests over one session (``s.personal``)."""

    def __init__(self, session: Session):
        self._s = session

    def _which(self, id: Any) -> tuple[str, Any]:
        if not isinstance(id, str) or not id or len(id) > 64:
            raise ValidationError([FieldError("id", "invalid_id", f"not an id: {str(id)[:70]!r}")])
        tx = self._s._transaction()
        if tx.get(Customer, id) is not None:
            return "customers", self._s.customers
        if tx.get(Contact, id) is not None:
            return "contacts", self._s.contacts
        raise NotFound(f"no customer or contact with id {id!r}")

    # ---------------------------------------------------------------- access
    def export(self, id: str) -> dict[str, Any]:
        """Everything stored about the customer or contact ``id``, as JSON-safe data (``to_data`` form).

        Values are shown as the actor may see them (decrypted; masked for roles with field rules). The
        export is recorded in the audit trail.
        """
        self._s._check_open()
        name, repo = self._which(id)
        s = self._s
        conds = s._conditions(repo.kind, {"id": id}, "export")
        rows = s._transaction().find(repo.kind, conds, [], None, 0)
        if not rows:
            raise NotFound(f"no {repo.kind.__name__} with id {id!r}")
        record = s._present(repo.kind, rows[0])
        out: dict[str, Any] = {"exported_at": utcnow().isoformat(), "kind": name, "record": to_data(record)}
        if name == "customers":
            for child_name, _ in _CHILDREN:
                child_repo = s._repository(child_name)
                out[child_name] = [to_data(e) for e in child_repo._iter("export", {"customer_id": id}, 1000)]
            ids = [id, *(c["id"] for c in out["contacts"])]
            out["tasks"] = [to_data(t) for t in s.tasks._iter("read", {"related_id": {"in": ids}}, 1000)]
            out["merges"] = [m.to_data() for m in s.customers.merges() if id in (m.survivor_id, *m.duplicate_ids)]
        if s._security.audit:  # the entries about this record, as the actor sees them (scoped, masked)
            out["audit"] = [e.to_data() for e in s.audit.history(id)]
        s._event(repo.kind, "export", id, {"what": "personal data"}, lasting=True)
        return out

    # ---------------------------------------------------------------- erasure
    def erase(self, id: str, *, personal_keys: Iterable[str] = PERSONAL_CUSTOM_KEYS) -> dict[str, int]:
        """Anonymize the customer or contact ``id`` (see :mod:`pycrm.security._personal`); returns counts.

        A customer takes its contacts with it, and the subjects and bodies of its interactions and the
        subjects and descriptions of its tickets are replaced by :data:`ERASED_TEXT`. Ids, amounts, dates,
        stages and statuses stay, so orders, deals and every report keep their figures. Running it again
        changes nothing. All of it happens or none of it does.
        """
        self._s._check_open()
        name, _ = self._which(id)
        s = self._s
        counts: dict[str, int] = {}
        with s._atomic():
            if name == "contacts":
                counts["contacts"] = self._save(s.contacts, [s.contacts.get(id)], anonymize_contact)
            else:
                customer = s.customers.get(id)
                keys = frozenset(personal_keys)
                counts["customers"] = self._save(s.customers, [customer], lambda c: anonymize_customer(c, personal_keys=keys))
                counts["contacts"] = self._save(s.contacts, list(s.contacts.iter({"customer_id": id})), anonymize_contact)
                counts["interactions"] = self._save(
                    s.interactions,
                    list(s.interactions.iter({"customer_id": id})),
                    lambda i: attrs.evolve(i, subject=ERASED_TEXT, body=""),
                )
                counts["tickets"] = self._save(
                    s.tickets,
                    list(s.tickets.iter({"customer_id": id})),
                    lambda t: attrs.evolve(t, subject=ERASED_TEXT, description=""),
                )
            s._event(Customer if name == "customers" else Contact, "erase", id, {k: v for k, v in counts.items() if v})
        return counts

    @staticmethod
    def _save(repo: Any, entities: list[Any], change: Any) -> int:
        n = 0
        for e in entities:
            new = change(e)
            if to_data(new) != to_data(e):
                repo.update(new)
                n += 1
        return n

    # ---------------------------------------------------------------- consent
    def marketing_list(
        self,
        channel: str,
        *,
        customer_ids: Iterable[str] | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> list[Contact]:
        """Contacts that consented to ``channel`` (explicitly), optionally of some customers (a segment:
        ``customer_ids=segment_members(...)``) and matching ``where``; anonymized contacts never appear.
        """
        self._s._check_open()
        consent_allows({}, channel)  # checks the channel name
        filters = dict(where or {})
        if customer_ids is not None:
            ids = [customer_ids] if isinstance(customer_ids, str) else list(customer_ids)
            filters["customer_id"] = {"in": ids}
        out = []
        for c in self._s.contacts.iter(filters or None):
            if c.first_name != ANONYMIZED_PREFIX and consent_allows(c, channel):
                out.append(c)
        return out
