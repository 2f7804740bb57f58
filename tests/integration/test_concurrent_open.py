"""Several processes opening one empty database at once (web workers starting together): the schema is
created once, under a lock (an advisory lock on PostgreSQL, ``GET_LOCK`` on MariaDB, SQLite's write lock),
and every process opens the store."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pycrm

OPENERS = 8

OPENER = textwrap.dedent(
    """
    import sys
    import pycrm
    url, go = sys.argv[1], sys.argv[2]
    print("ready", flush=True)
    sys.stdin.readline()  # all start together
    crm = pycrm.open(url)
    with crm.session() as s:
        s.customers.add(pycrm.Customer(f"Opened by {go}"))
    crm.close()
    print("ok", flush=True)
    """
)


def test_eight_processes_open_an_empty_database_at_once(sql_url: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, sql_url, str(i)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(OPENERS)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:  # release them as close together as the pipes allow
        assert p.stdin is not None
        p.stdin.write("\n")
        p.stdin.flush()
    results = [p.communicate(timeout=300) for p in procs]
    failed = [(p.returncode, err.strip().splitlines()[-1:]) for p, (_, err) in zip(procs, results) if p.returncode != 0]
    assert failed == []
    assert all(out.strip().endswith("ok") for out, _ in results)
    crm = pycrm.open(sql_url)
    try:
        with crm.session() as s:
            assert sorted(c.name for c in s.customers.find()) == [f"Opened by {i}" for i in range(OPENERS)]
    finally:
        crm.close()
    if sql_url.startswith("sqlite:///"):  # the lock file goes with its last holder
        assert not Path(sql_url[len("sqlite:///") :] + ".pycrm-lock").exists()
