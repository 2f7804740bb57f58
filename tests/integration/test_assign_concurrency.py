"""Concurrent round-robin assignments (issue 22, "a fair, persistent pointer that holds under concurrent
assignments").

Several processes, started together behind a barrier, each make N round-robin assignments, a session each,
on one store. Every turn is taken once (the union of the turns is 1..P*N without duplicates) and the users'
counts differ by at most one. On SQLite (a file), PostgreSQL and MariaDB.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from typing import Any

import pycrm
from pycrm import User
from pycrm.automation import RoundRobin, assign
from tests.integration._together import run_together

#: Processes assigning at once, and assignments each.
PROCESSES = 4
EACH = 15
USERS = ["u1", "u2", "u3"]
_TURN = re.compile(r"turn (\d+) -> (\w+)")


def _assigner(url: str, barrier: Any, results: Any) -> None:
    """One process: open the store, wait for the others, make EACH assignments, report (turn, user) pairs."""
    try:
        crm = pycrm.open(url)
        try:
            rr = RoundRobin("race", USERS)
            got = []
            barrier.wait(timeout=120)
            for _ in range(EACH):
                with crm.session() as s:
                    chosen = assign(s, rr)
                m = _TURN.search(chosen.reason)
                assert m is not None and m.group(2) == chosen.user_id, chosen.reason
                got.append((int(m.group(1)), chosen.user_id))
            results.put((os.getpid(), "ok", got))
        finally:
            crm.close()
    except BaseException as exc:  # the parent reports what failed where
        results.put((os.getpid(), "error", f"{type(exc).__name__}: {exc}"))


def test_concurrent_round_robins_take_every_turn_once(sql_url: str) -> None:
    with pycrm.open(sql_url) as crm, crm.session() as s:
        s.users.add_many([User(u.upper(), f"{u}@example.com", id=u) for u in USERS])
    out = run_together(_assigner, [(sql_url,)] * PROCESSES, "assigners")
    assert [r for r in out if r[1] != "ok"] == []
    pairs = [pair for r in out for pair in r[2]]
    turns = sorted(t for t, _ in pairs)
    assert turns == list(range(1, PROCESSES * EACH + 1))  # no turn twice, none lost
    assert all(u == USERS[(t - 1) % len(USERS)] for t, u in pairs)
    counts = Counter(u for _, u in pairs)
    assert max(counts.values()) - min(counts.values()) <= 1, counts
    with pycrm.open(sql_url) as crm, crm.session() as s:  # the pointer persisted: the next turn follows
        assert assign(s, RoundRobin("race", USERS)).reason.endswith(f"turn {PROCESSES * EACH + 1} -> u1")
