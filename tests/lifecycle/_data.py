"""A small store with every kind of record, a merge (records streams), and a snapshot to compare stores."""

from __future__ import annotations

from typing import Any

import pycrm
from pycrm.domain import ENTITIES
from pycrm.domain._codec import to_data
from tests.contract._data import children, full_customer


def fill(crm: pycrm.CRM, n: int = 3) -> None:
    """``n`` customers with one record of every kind each (the order with a line of the one product), plus
    two customers merged into one."""
    with crm.session() as s:
        tea = s.products.add(pycrm.Product("TEA-001", "龙井 Longjing 250 g", category="Tea/Green", unit="tin"))
        for i in range(n):
            c = s.customers.add(full_customer(f"客户 {i}"))
            for repo, e in children(str(c.id)).items():
                if repo == "users":
                    e.email = f"user{i}@example.com"  # type: ignore[attr-defined]
                if repo == "orders":
                    o: Any = e
                    o.lines = [pycrm.OrderLine(str(tea.id), 5, pycrm.Money("21.99", "USD"), discount="10.00")]
                getattr(s, repo).add(e)
        a = s.customers.add(pycrm.Customer("Dup Ltd", emails=["dup@example.com"]))
        b = s.customers.add(pycrm.Customer("Dup Limited", emails=["dup@example.com"]))
    with crm.session() as s:
        s.customers.merge(str(a.id), [str(b.id)])


def snapshot(crm: pycrm.CRM) -> dict[str, Any]:
    """Codec data of every entity by repository (in id order) and every record stream."""
    with crm.session() as s:
        tx = s._transaction()
        out: dict[str, Any] = {k: [to_data(e) for e in getattr(s, k).iter()] for k in ENTITIES}
        out["records"] = {stream: tx.record_list(stream) for stream in tx.record_streams()}
    return out


def is_empty(crm: pycrm.CRM) -> bool:
    snap = snapshot(crm)
    return not snap.pop("records") and not any(snap.values())
