"""A merge against updates committed by another process while it runs (issue: "a merge loses committed edits").

A second process updates the duplicate (or the survivor) as fast as it can while this one merges. Whatever
the interleaving, every update the other process saw committed must be in what the merge read: the
merge record's snapshot of the duplicate holds the last committed edit, and an update that comes after
the merge fails (the duplicate is gone) instead of vanishing. Updates of the survivor do not starve a
merge: it holds its rows (``RowLocks``), so it goes through within a few tries.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pycrm
from pycrm import ConcurrencyError, Customer

#: Updates the other process tries.
UPDATES = 150

UPDATER = textwrap.dedent(
    """
    import json, sys
    import pycrm
    from pycrm import ConcurrencyError, NotFound
    url, target, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    crm = pycrm.open(url)
    done = []
    print("started", flush=True)
    for i in range(n):
        try:
            with crm.session() as s:
                c = s.customers.get(target)
                c.name = f"v{i}"
                s.customers.update(c)
            done.append(i)
        except ConcurrencyError:
            continue
        except NotFound:
            break
    crm.close()
    print(json.dumps(done), flush=True)
    """
)


def _start(url: str, target: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", UPDATER, url, target, str(UPDATES)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    return proc


def _finish(proc: subprocess.Popen[str]) -> list[int]:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    return list(json.loads(out.strip().splitlines()[-1]))


def _merge_with_retries(crm: pycrm.CRM, survivor: str, duplicate: str) -> tuple[Any, int]:
    for attempt in range(1, 101):
        try:
            with crm.session() as s:
                return s.customers.merge(survivor, duplicate), attempt
        except ConcurrencyError:
            continue
    raise AssertionError("the merge never went through in 100 tries")


def test_a_merge_loses_no_update_of_the_duplicate_committed_meanwhile(sql_url: str) -> None:
    crm = pycrm.open(sql_url)
    try:
        with crm.session() as s:
            keep = s.customers.add(Customer("Acme", emails=["a@acme.example"]))
            dup = s.customers.add(Customer("start", emails=["b@acme.example"]))
        proc = _start(sql_url, str(dup.id))
        try:
            record, _ = _merge_with_retries(crm, str(keep.id), str(dup.id))
        finally:
            done = _finish(proc)
        seen = record.before[dup.id]["name"]
        # every update the other process saw committed happened before the merge read the duplicate
        assert seen == (f"v{done[-1]}" if done else "start"), (seen, done[-5:])
        with crm.session() as s:
            assert s.customers.count() == 1
            assert [e.value for e in s.customers.get(keep.id).emails] == ["a@acme.example", "b@acme.example"]
    finally:
        crm.close()


def test_updates_of_the_survivor_do_not_starve_a_merge(sql_url: str) -> None:
    crm = pycrm.open(sql_url)
    try:
        with crm.session() as s:
            keep = s.customers.add(Customer("Acme"))
            dup = s.customers.add(Customer("ACME Ltd", country="CN"))
        proc = _start(sql_url, str(keep.id))
        try:
            record, attempts = _merge_with_retries(crm, str(keep.id), str(dup.id))
        finally:
            done = _finish(proc)
        assert attempts <= 5, attempts
        with crm.session() as s:
            final = s.customers.get(keep.id)
        # the merge's own write and every committed update of the other process are all there, in order
        assert final.country == "CN"
        assert final.version == 1 + len(done) + 1
        assert record.survivor_id == keep.id
    finally:
        crm.close()
