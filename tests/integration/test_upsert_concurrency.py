"""Concurrent upserts of the same keys (issue: "concurrent upserts duplicate records").

Several processes, started together behind a barrier, import one-row files keyed on the same external id
(a key the store holds unique) or the same e-mail (not unique by nature: matched under the upsert lock).
Afterwards there is exactly one customer per key, every import succeeded (one created it, the others
updated it or found it unchanged), and importing again works. On SQLite (a file), PostgreSQL and MariaDB.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import pycrm
from pycrm import Customer
from pycrm.io import import_file
from tests.integration._together import run_together

#: Processes importing at once.
PROCESSES = 6


def _importer(url: str, path: str, key: str, barrier: Any, results: Any) -> None:
    """One process: open the store, wait for the others, import ``path`` keyed on ``key``, report."""
    try:
        crm = pycrm.open(url)
        try:
            barrier.wait(timeout=120)
            report = import_file(crm, path, key=key)
            results.put((os.getpid(), "ok", report.created, report.updated, report.unchanged))
        finally:
            crm.close()
    except BaseException as exc:  # the parent reports what failed where
        results.put((os.getpid(), "error", f"{type(exc).__name__}: {exc}", 0, 0))


def _run_together(url: str, files: list[Path], key: str) -> list[tuple[Any, ...]]:
    return run_together(_importer, [(url, str(f), key) for f in files], "importers")


def _files(tmp_path: Path, header: str, rows: list[str]) -> list[Path]:
    out = []
    for i, row in enumerate(rows):
        f = tmp_path / f"one-row-{i}.csv"
        f.write_text(f"{header}\n{row}\n", encoding="utf-8")
        out.append(f)
    return out


def _prepared(sql_url: str) -> None:
    """The schema made once before the race (concurrent first opens have their own test)."""
    pycrm.open(sql_url).close()


@pytest.mark.parametrize("same_file", [True, False], ids=["same-file", "different-names"])
def test_concurrent_imports_keyed_on_an_external_id_make_one_customer(sql_url: str, tmp_path: Path, same_file: bool) -> None:
    _prepared(sql_url)
    rows = ["E1,Acme Ltd,a@acme.example"] * PROCESSES if same_file else [f"E1,Acme {i},a@acme.example" for i in range(PROCESSES)]
    files = _files(tmp_path, "custom.external_id,name,emails", rows)
    results = _run_together(sql_url, files, "custom.external_id")
    assert [r for r in results if r[1] != "ok"] == []
    assert sum(r[2] for r in results) == 1  # one created it
    assert sum(r[3] + r[4] for r in results) == PROCESSES - 1  # the others updated it or found it as it was
    if not same_file:
        assert sum(r[3] for r in results) == PROCESSES - 1
    with pycrm.open(sql_url) as crm:
        with crm.session() as s:
            (c,) = s.customers.find()
            assert c.custom == {"external_id": "E1"}
            assert c.version == 1 + sum(r[3] for r in results)
        again = import_file(crm, files[0], key="custom.external_id")  # the key matches one record: no refusal
        assert (again.created, again.updated + again.unchanged) == (0, 1)
        with crm.session() as s:
            assert s.customers.count() == 1


def test_concurrent_imports_keyed_on_an_email_match_under_the_lock(sql_url: str, tmp_path: Path) -> None:
    _prepared(sql_url)
    rows = [f"Acme {i},a@acme.example,+8613800138{i:03d}" for i in range(PROCESSES)]
    files = _files(tmp_path, "name,emails,phones", rows)
    results = _run_together(sql_url, files, "emails")
    assert [r for r in results if r[1] != "ok"] == []
    assert sum(r[2] for r in results) == 1
    assert sum(r[3] for r in results) == PROCESSES - 1  # every later one saw the earlier ones' customer
    with pycrm.open(sql_url, default_region="CN") as crm:
        with crm.session() as s:
            (c,) = s.customers.find({"emails": "a@acme.example"})
            assert c.version == PROCESSES
        again = import_file(crm, files[0], key="emails")  # updates, or finds it as it is if its import came last
        assert (again.created, again.updated + again.unchanged) == (0, 1)
        with crm.session() as s:
            assert s.customers.count() == 1


def test_a_key_taken_meanwhile_turns_the_row_into_an_update(open_crm: Any, tmp_path: Path) -> None:
    """The key index of a large store is read once; a value another session adds after that (not an import:
    it takes no upsert lock) makes the row's insert fail with duplicate_key, and the import matches the
    row again and updates that customer instead (memory, SQLite, PostgreSQL, MariaDB)."""
    crm = open_crm()
    with crm.session() as s:
        s.customers.add_many([Customer(f"Old {i}", custom={"external_id": f"O{i}"}) for i in range(25)])
    path = tmp_path / "two.csv"
    path.write_text("custom.external_id,name\nN1,First\nN2,Second\n", encoding="utf-8")

    def meanwhile(done: int) -> None:
        if done == 1:  # the first batch is committed; the second is about to be looked up
            with crm.session() as s:
                s.customers.add(Customer("Added meanwhile", custom={"external_id": "N2"}))

    report = import_file(crm, path, per_batch=True, batch_size=1, workers=1, progress=meanwhile)
    assert (report.created, report.updated, report.problems) == (1, 1, [])
    with crm.session() as s:
        (c,) = s.customers.find({"custom.external_id": "N2"})
        assert (c.name, c.version) == ("Second", 2)
        assert s.customers.count() == 27


def test_threads_importing_into_one_memory_store_make_one_customer(tmp_path: Path) -> None:
    """The memory adapter's upsert lock: threads of one process importing the same keys at once."""
    import threading
    import time

    crm = pycrm.open("memory://")
    files = _files(tmp_path, "name,emails", [f"Acme {i},a@acme.example" for i in range(4)])
    barrier = threading.Barrier(len(files))
    reports: list[Any] = []

    def run(path: Path) -> None:
        barrier.wait(timeout=60)
        try:
            # a pause after the look-up and the write, before the commit: another import would look up meanwhile
            reports.append(import_file(crm, path, key="emails", progress=lambda done: time.sleep(0.2)))
        except Exception as exc:  # pragma: no cover - reported below
            reports.append(exc)

    threads = [threading.Thread(target=run, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert all(not isinstance(r, Exception) for r in reports), reports
    assert (sum(r.created for r in reports), sum(r.updated for r in reports)) == (1, len(files) - 1)
    with crm.session() as s:
        assert s.customers.count() == 1
