"""``s.personal``: the rights of the people in a store -- access (export), erasure, and marketing consent.

* ``export(id)`` -- everything stored about one customer (its contacts, deals, tickets, interactions,
  orders, surveys, attachments' metadata, tasks, merge history and audit history) or one contact, as JSON-safe
  data (attachment content: ``s.attachments.open(id)``);
* ``erase(id)`` -- anonymize a customer (with its contacts and the free text of its interactions,
  tickets and surveys) or one contact, keeping ids and amounts so orders, deals and every aggregate stay as they were;
  the person's attachments are deleted, rows and content (see ``s.attachments``);
* ``marketing_list(channel, ...)`` -- contacts that may be reached on a channel: consent is explicit
  (:func:`pycrm.security.consent_allows`), erased people never appear.

Each call runs under the session's actor: ``export`` needs the export right on the record, ``erase`` the
update right, and both are recorded in the audit trail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from pycrm.domain import (
    ENTITIES,
    Activity,
    Attachment,
    CampaignMember,
    CampaignResponse,
    Contact,
    Customer,
    Interaction,
    Opportunity,
    Order,
    Survey,
    Ticket,
    utcnow,
)
from pycrm.domain._checks import check_iterable, check_mapping, check_names, is_id, new_id
from pycrm.domain._codec import from_data, to_data
from pycrm.errors import ConcurrencyError, FieldError, NotFound, ValidationError, quote
from pycrm.security import (
    ANONYMIZED_PREFIX,
    PERSONAL_CUSTOM_KEYS,
    anonymize_contact,
    anonymize_customer,
    consent_allows,
    without_personal_keys,
)
from pycrm.storage._gate import MERGES, archive_stream
from pycrm.storage.port import Outbox

if TYPE_CHECKING:
    from pycrm.storage._repository import Session

__all__ = ["ERASED_TEXT", "PersonalData"]

#: What replaces the free text (interaction and ticket subjects) about an erased person.
ERASED_TEXT = "[erased]"

#: The repositories a person is erased from: how each of their records is anonymized.
_SCRUB: Mapping[str, Callable[[Any, frozenset[str]], Any]] = {
    "customers": lambda c, keys: anonymize_customer(c, personal_keys=keys),
    "contacts": lambda c, keys: anonymize_contact(c, personal_keys=keys),
    # the outcome is free text too (it goes); duration, direction, channel and the links stay for the reports
    "interactions": lambda i, keys: attrs.evolve(
        i, subject=ERASED_TEXT, body="", outcome=None, custom=_impersonal(i.custom, keys)
    ),
    "tickets": lambda t, keys: attrs.evolve(t, subject=ERASED_TEXT, description="", custom=_impersonal(t.custom, keys)),
    "surveys": lambda v, keys: attrs.evolve(v, comment=ERASED_TEXT if v.comment else "", custom=_impersonal(v.custom, keys)),
    # out of every campaign: removed, with no contact to reach (ids, kinds and times stay for the KPIs)
    "campaign_members": lambda m, keys: attrs.evolve(m, contact_id=None, state="removed"),
    # behaviour events: their properties go (a visited path, a search term); kind and time stay for the counts
    "activities": lambda a, keys: attrs.evolve(a, properties={}),
}


def _impersonal(custom: Mapping[str, Any], keys: frozenset[str]) -> dict[str, Any]:
    """The custom values of a record erased with a person, without the personal keys (as on the customer)."""
    return without_personal_keys(custom, keys)


#: A customer's child records erased with it (their free text about the person, their campaign memberships).
_FREE_TEXT = ("contacts", "interactions", "tickets", "surveys", "campaign_members", "activities")
#: Whose personal data requests are: customers and contacts.
_PEOPLE: tuple[tuple[str, type[Any]], ...] = (("customers", Customer), ("contacts", Contact))


def _merged_into(merges: list[tuple[str, Any]], kind: str, ids: set[str]) -> set[str]:
    """``ids`` with every record merged (by a merge not undone) into one of them, and into those, and so on."""
    into: dict[str, list[str]] = {}
    for _, m in merges:
        if m.get("kind") == kind and m.get("undone_at") is None:
            into.setdefault(str(m.get("survivor_id")), []).extend(str(d) for d in m.get("duplicate_ids") or ())
    out, todo = set(ids), list(ids)
    while todo:
        for d in into.get(todo.pop(), ()):
            if d not in out:
                out.add(d)
                todo.append(d)
    return out


_CHILDREN: tuple[tuple[str, type[Any]], ...] = (
    ("contacts", Contact),
    ("opportunities", Opportunity),
    ("tickets", Ticket),
    ("interactions", Interaction),
    ("orders", Order),
    ("surveys", Survey),
    ("campaign_members", CampaignMember),
    ("campaign_responses", CampaignResponse),
    ("activities", Activity),
    ("attachments", Attachment),
)


class PersonalData:
    """Personal-data requests over one session (``s.personal``)."""

    def __init__(self, session: Session):
        self._s = session

    def _which(self, id: Any) -> tuple[str, Any]:
        name, state = self._locate(id)
        if state != "live":
            raise NotFound(f"no customer or contact with id {id!r}")
        return name, self._s._repository(name)

    def _locate(self, id: Any) -> tuple[str, str]:
        """``(repository, state)`` of the customer or contact ``id``: state ``live``, ``merged`` (merged
        away into a survivor the actor can read) or ``archived`` (an archived record the actor can read)."""
        if not is_id(id):
            raise ValidationError([FieldError("id", "invalid_id", f"not an id: {quote(id, 70)}")])
        tx = self._s._transaction()
        for name, kind in _PEOPLE:
            if tx.get(kind, id) is not None:
                return name, "live"
        for name, _ in _PEOPLE:
            if tx.record_get(f"merged_{name}", id) is not None:
                return name, "merged"
            if tx.record_get(archive_stream(name), id) is not None:
                return name, "archived"
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
        """Anonymize the customer or contact ``id`` wherever the store keeps it; returns counts.

        A customer takes its contacts with it, and the subjects, bodies and outcomes of its interactions, the
        subjects and descriptions of its tickets and the comments of its surveys are replaced by
        :data:`ERASED_TEXT` (an empty comment stays empty). Ids, amounts, dates,
        stages and statuses stay, so orders, deals and every report keep their figures.

        The person goes everywhere, not only from the live rows: from the snapshots of merge records
        (so ``unmerge`` brings back anonymized records; the records merged into an erased survivor are
        erased with it, and erasing a merged-away customer erases the free text of the records the merge
        moved from it to the survivor), from archived records (so ``unarchive`` does too), and from the diffs of the audit
        entries about every erased record (replaced by a marker naming this erasure; the chain still
        verifies, see ``pycrm.security._audit``). A contact takes the free text of the interactions held
        with it (``contact_id``) with it. ``id`` may be live, archived or merged away. Counts:
        live rows changed by repository, ``archived`` and ``merges`` records rewritten. The erasure is
        recorded as an ``erase`` entry listing the records it erased. Running it again changes nothing.
        All of it happens or none of it does.
        """
        self._s._check_open()
        name, state = self._locate(id)
        s = self._s
        keys = frozenset(check_names("personal_keys", personal_keys, one_ok=False))
        counts: dict[str, int] = {}
        erased: dict[str, set[str]] = {repo: set() for repo in _SCRUB}
        with s._atomic():
            stored = s._stored("an erasure reads the merge records it rewrites as they are kept")
            merges = list(stored.record_list(MERGES))
            if state == "merged":  # erasing it needs the right to update the record it lives on in
                survivor = stored.record_get(f"merged_{name}", id)["survivor_id"]
                kind = dict(_PEOPLE)[name]
                holder = s._stored_for(kind, survivor, "update")
                if holder is None:
                    raise NotFound(f"no customer or contact with id {id!r}")
                s._guard.check_write(kind, "update", holder, s._repository(name)._lookup)
            roots = _merged_into(merges, name, {id})
            erased[name] |= roots
            if state == "live":
                self._erase_live(name, id, keys, counts, erased)
            elif state == "merged" and name == "customers":
                self._erase_relinked(merges, roots, keys, counts, erased)
            counts["archived"] = self._erase_archived(name, roots, keys, erased)
            erased["contacts"] |= _merged_into(merges, "contacts", erased["contacts"])
            counts["merges"] = self._erase_merges(merges, erased, keys)
            records = {repo: sorted(ids) for repo, ids in erased.items() if ids}
            s._flush()  # this unit of work's events so far go to the outbox first, and are erased with the rest
            outbox = s._unguarded("an erasure erases the custom events about the records it erased")
            if isinstance(outbox, Outbox):
                outbox.outbox_erase(records)
            if s._security.audit:
                erasure = new_id()
                s._flush()  # the entries of this unit of work so far (its own updates included) are erased too
                s._unguarded("an erasure erases the audit diffs of the records it erased").audit_erase(
                    records, erasure, key=s._security.audit_key
                )
                info = {**{k: v for k, v in counts.items() if v}, "erasure": erasure, "records": records}
                s._event(dict(_PEOPLE)[name], "erase", id, info)
        return counts

    def _erase_live(self, name: str, id: str, keys: frozenset[str], counts: dict[str, int], erased: dict[str, set[str]]) -> None:
        s = self._s
        if name == "contacts":
            counts["contacts"] = self._save(s.contacts, [s.contacts.get(id)], keys, erased)
            reached = list(s.campaign_members.iter({"contact_id": id}))
            counts["campaign_members"] = self._save(s.campaign_members, reached, keys, erased)
            spoken = list(s.interactions.iter({"contact_id": id}))  # what was said with the person goes too
            counts["interactions"] = self._save(s.interactions, spoken, keys, erased)
            done = list(s.activities.iter({"contact_id": id}))  # what the person did
            counts["activities"] = self._save(s.activities, done, keys, erased)
            counts["attachments"] = s.attachments._erase({"record_kind": "contacts", "record_id": id})
            return
        counts["customers"] = self._save(s.customers, [s.customers.get(id)], keys, erased)
        for repo in _FREE_TEXT:
            r = s._repository(repo)
            counts[repo] = self._save(r, list(r.iter({"customer_id": id})), keys, erased)
        # the files go, rows and content (content another person's attachment still holds stays for it)
        counts["attachments"] = s.attachments._erase({"customer_id": id})

    def _erase_relinked(
        self,
        merges: list[tuple[str, Any]],
        ids: set[str],
        keys: frozenset[str],
        counts: dict[str, int],
        erased: dict[str, set[str]],
    ) -> None:
        """A merged-away customer's contacts, interactions, tickets and surveys live on under the survivor (and
        ``unmerge`` points them back): anonymize the ones the merges (not undone) re-pointed from ``ids``."""
        moved: dict[str, set[str]] = {}
        for _, m in merges:
            if m.get("kind") != "customers" or m.get("undone_at") is not None:
                continue
            for link in m.get("relinked") or ():
                entity, rid, field, old = (list(link) + [None] * 4)[:4]
                if (entity in _FREE_TEXT or entity == "attachments") and field == "customer_id" and old in ids:
                    moved.setdefault(entity, set()).add(str(rid))
        files = sorted(moved.get("attachments", ()))  # the merge moved them to the survivor: they go too
        for i in range(0, len(files), 500):
            n = self._s.attachments._erase({"id": {"in": files[i : i + 500]}})
            counts["attachments"] = counts.get("attachments", 0) + n
        for repo in _FREE_TEXT:
            wanted = sorted(moved.get(repo, ()))
            if not wanted:
                continue
            r = self._s._repository(repo)
            seen = [e for i in range(0, len(wanted), 500) for e in r.iter({"id": {"in": wanted[i : i + 500]}})]
            counts[repo] = self._save(r, seen, keys, erased)

    def _save(self, repo: Any, seen: list[Any], keys: frozenset[str], erased: dict[str, set[str]]) -> int:
        """Anonymize the rows ``seen`` (read as the actor sees them, which checks its rights) from the rows as
        stored: a field the actor sees hidden or masked is erased too, not put back as an update would."""
        kind = repo.kind
        name = kind.entity_name()
        guard = self._s._guard
        tx = self._s._stored("an erasure anonymizes the fields the actor sees hidden or masked too")
        now = utcnow()
        n = 0
        for e in seen:
            erased[name].add(e.id)
            stored = tx.get(kind, e.id)
            if stored is None:  # pragma: no cover - read a moment ago in this transaction
                raise NotFound(f"no {kind.__name__} with id {e.id!r}")
            plain = guard.unseal(kind, stored)
            new = _SCRUB[name](plain, keys)
            if to_data(new) == to_data(plain):
                continue
            guard.check_write(kind, "update", stored, repo._lookup)
            if e.version != stored.version:  # pragma: no cover - the same transaction read both
                raise ConcurrencyError(f"{kind.__name__} {e.id!r} changed during the erasure; retry")
            repo._write_stored(guard.seal(kind, new, stored, plain), stored, now, tx)
            n += 1
        return n

    def _scrub(self, name: str, data: Mapping[str, Any], keys: frozenset[str]) -> dict[str, Any] | None:
        """A stored snapshot (``to_data`` of the row as stored, notes under ``_`` keys kept) anonymized and
        sealed again, or None when there is nothing personal left in it."""
        kind = ENTITIES[name]
        guard = self._s._guard
        notes = {k: v for k, v in data.items() if k.startswith("_")}
        plain = guard.unseal(kind, from_data(kind, {k: v for k, v in data.items() if not k.startswith("_")}))
        new = _SCRUB[name](plain, keys)
        if to_data(new) == to_data(plain):
            return None
        return {**to_data(guard.seal(kind, new)), **notes}

    def _erase_archived(self, name: str, ids: set[str], keys: frozenset[str], erased: dict[str, set[str]]) -> int:
        """Anonymize the archived records of the erased people: the records themselves, and for customers
        the archived contacts, interactions, tickets and surveys that point at them."""
        s = self._s
        tx = s._stored("an erasure reads the archived records it rewrites as they are kept")
        wanted: list[tuple[str, str, Any]] = []
        for id in sorted(ids):
            data = tx.record_get(archive_stream(name), id)
            if data is not None:
                wanted.append((name, id, data))
        if name == "customers":
            for repo in _FREE_TEXT:
                wanted += [(repo, k, d) for k, d in tx.record_list(archive_stream(repo)) if d.get("customer_id") in ids]
        n = 0
        every = s._unguarded("an erasure rewrites the merge and archive records of the records it erased")
        if name == "customers":  # archived files of the person go, rows and (once unused) content
            stream = archive_stream("attachments")
            files = [(k, d) for k, d in tx.record_list(stream) if d.get("customer_id") in ids]
            for key, data in files:
                file = from_data(Attachment, {k: v for k, v in data.items() if not k.startswith("_")})
                s._guard.check_write(Attachment, "delete", file, s.attachments._lookup)
                every.record_delete(stream, key)
                erased.setdefault("attachments", set()).add(key)
                n += 1
            hashes = sorted({str(d.get("sha256")) for _, d in files})
            if hashes:
                s._after_commit(lambda: s.attachments._drop_unreferenced(hashes))
        for repo, key, data in wanted:
            kind = ENTITIES[repo]
            entity = from_data(kind, {k: v for k, v in data.items() if not k.startswith("_")})
            s._guard.check_write(kind, "update", entity, s._repository(repo)._lookup)
            erased[repo].add(key)
            new = self._scrub(repo, data, keys)
            if new is not None:
                every.record_put(archive_stream(repo), key, new)
                n += 1
        return n

    def _erase_merges(self, merges: list[tuple[str, Any]], erased: dict[str, set[str]], keys: frozenset[str]) -> int:
        """Anonymize the snapshots of the erased records in merge records: what ``unmerge`` would bring back."""
        n = 0
        every = self._s._unguarded("an erasure rewrites the merge and archive records of the records it erased")
        for key, data in merges:
            name = data.get("kind")
            ids = erased.get(name) if isinstance(name, str) else None
            if not ids:
                continue
            before = dict(data.get("before") or {})
            changed = False
            for rid in sorted(set(before) & ids):
                new = self._scrub(name, before[rid], keys)
                if new is not None:
                    before[rid], changed = new, True
            after = data.get("after")
            if data.get("survivor_id") in ids and isinstance(after, Mapping):
                new = self._scrub(name, after, keys)
                if new is not None:
                    after, changed = new, True
            if changed:
                every.record_put(MERGES, key, {**data, "before": before, "after": after})
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
        filters = dict(check_mapping("where", where) or {})
        if customer_ids is not None:
            ids = [customer_ids] if isinstance(customer_ids, str) else list(check_iterable("customer_ids", customer_ids))
            filters["customer_id"] = {"in": ids}
        out = []
        for c in self._s.contacts.iter(filters or None):
            if c.first_name != ANONYMIZED_PREFIX and consent_allows(c, channel):
                out.append(c)
        return out
