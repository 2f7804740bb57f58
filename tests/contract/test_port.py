"""The storage port: each adapter offers the capabilities it declares, and a transaction without them
(a wrapper forwarding only the ``Transaction`` protocol, as a guard around the store may be) gets the
plain paths with the same results, or a clean refusal.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pycrm
from pycrm import Customer, Money, Opportunity, Order
from pycrm._crm import CRM
from pycrm.io import backup, export_file, import_file
from pycrm.storage import port

UTC = dt.UTC

TX_CAPABILITIES = (
    port.Reports,
    port.RFMPushdown,
    port.PreparedWrites,
    port.BulkMode,
    port.RowStreams,
    port.RowLocks,
    port.UniqueKeys,
    port.KeyLocks,
    port.Counters,
    port.GroupedCounts,
    port.Snapshots,
    port.FileBacked,
    port.DueQueries,
)
STORE_CAPABILITIES = (port.ExclusiveHold, port.FileCopies, port.DriverErrors, port.DeclaredKeys)
#: The methods every adapter's transaction has: the Transaction protocol, nothing more.
PLAIN = frozenset(n for n in vars(port.Transaction) if not n.startswith("_"))


class PlainTransaction:
    """Forwards exactly the ``Transaction`` protocol to a real transaction: no capability shows through."""

    def __init__(self, tx: Any):
        self._tx = tx

    def __getattr__(self, name: str) -> Any:
        if name not in PLAIN:
            raise AttributeError(name)
        return getattr(self._tx, name)


class PlainStore:
    def __init__(self, store: Any):
        self._store = store

    def begin(self) -> PlainTransaction:
        return PlainTransaction(self._store.begin())

    def close(self) -> None:
        self._store.close()

    @property
    def url(self) -> str:
        return str(self._store.url)


def _capabilities(obj: Any, protocols: tuple[type, ...]) -> set[str]:
    return {p.__name__ for p in protocols if isinstance(obj, p)}


def test_each_adapter_offers_its_declared_capabilities(crm: pycrm.CRM, adapter: str) -> None:
    tx = crm.store.begin()
    try:
        got = _capabilities(tx, TX_CAPABILITIES)
    finally:
        tx.rollback()
    if adapter == "memory":
        assert got == {"Snapshots", "UniqueKeys", "KeyLocks", "Counters", "GroupedCounts", "DueQueries"}
        assert _capabilities(crm.store, STORE_CAPABILITIES) == {"DeclaredKeys"}
    else:
        assert got == {c.__name__ for c in TX_CAPABILITIES}
        assert _capabilities(crm.store, STORE_CAPABILITIES) == {"ExclusiveHold", "FileCopies", "DriverErrors", "DeclaredKeys"}
    assert _capabilities(PlainTransaction(None), TX_CAPABILITIES) == set()


def test_only_an_sqlite_file_is_shared_with_other_processes(crm: pycrm.CRM, adapter: str, tmp_path: Path) -> None:
    tx = crm.store.begin()
    try:
        file = tx.database_file() if isinstance(tx, port.FileBacked) else None
    finally:
        tx.rollback()
    if adapter == "sqlite":
        assert file is not None and Path(file).samefile(tmp_path / "crm.db")
    else:
        assert file is None
    with pycrm.open("sqlite://") as in_memory:
        tx = in_memory.store.begin()
        try:
            assert tx.database_file() is None
            with pytest.raises(pycrm.CRMError, match="not an SQLite file"):
                tx.file_opener()
        finally:
            tx.rollback()


def _fill(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        a = s.customers.add(Customer("Acme", emails=["a@acme.example"], tags={"vip"}, custom={"tier": "gold"}))
        b = s.customers.add(Customer("Blue Harbor", country="US"))
        s.orders.add_many(
            [
                Order(a.id, dt.datetime(2024, 1, 5, tzinfo=UTC), Money("120.50", "CNY")),
                Order(a.id, dt.datetime(2024, 2, 5, tzinfo=UTC), Money("80", "CNY")),
                Order(b.id, dt.datetime(2024, 2, 9, tzinfo=UTC), Money("5", "CNY")),
            ]
        )
        s.opportunities.add(Opportunity(a.id, "Renewal", amount=Money("1000", "CNY"), stage="qualification"))


def _results(crm: pycrm.CRM) -> Iterator[Any]:
    with crm.session() as s:
        yield s.analytics.rfm(as_of="2024-03-01", bins=3)
        yield list(s.analytics.forecast(period=None))
        yield list(s.analytics.top_customers(n=5))
        yield list(s.analytics.ticket_summary())
    for fmt in ("csv", "jsonl"):
        out = io.StringIO()
        export_file(crm, out, "customers", format=fmt, fields=["id", "name", "emails", "tags", "custom.tier", "updated_at"])
        yield out.getvalue()


@pytest.fixture
def plain(crm: pycrm.CRM) -> pycrm.CRM:
    """The same store, seen through transactions that offer no capability."""
    return CRM(PlainStore(crm.store), default_region="CN")


def test_without_capabilities_reports_and_exports_fall_back_to_the_same_results(crm: pycrm.CRM, plain: pycrm.CRM) -> None:
    _fill(crm)
    assert list(_results(plain)) == list(_results(crm))


def test_without_capabilities_an_import_inserts_entities(plain: pycrm.CRM, tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("name,emails\nAcme,a@acme.example\nBlue,b@blue.example\n", encoding="utf-8")
    report = import_file(plain, path, exclusive=True)
    assert (report.created, report.exclusive) == (2, False)
    with plain.session() as s:
        assert sorted(c.name for c in s.customers.find()) == ["Acme", "Blue"]


def test_without_snapshots_a_backup_is_refused_and_writes_nothing(plain: pycrm.CRM, tmp_path: Path) -> None:
    out = tmp_path / "backups"
    out.mkdir()
    with pytest.raises(pycrm.CRMError, match="cannot read one consistent point in time"):
        backup(plain, out / "crm.jsonl")
    with pytest.raises(pycrm.ValidationError, match="method='sqlite' needs a SQLite store"):
        backup(plain, out / "crm.db", method="sqlite")
    assert list(out.iterdir()) == []
