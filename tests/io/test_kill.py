"""A SIGKILL in the middle of an import leaves the store as it was (all-or-nothing) or at a batch boundary."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "SIGKILL") or not Path("/proc/self/stat").exists(), reason="needs SIGKILL and /proc"
)

BATCH = 500
ROWS = 20_000

SCRIPT = """
import sys, pycrm
from pycrm.io import import_file
crm = pycrm.open(sys.argv[1], default_region="CN")
def progress(n):
    print(n, flush=True)
import_file(crm, sys.argv[2], per_batch=sys.argv[3] == "batch", batch_size={batch}, workers=2, progress=progress,
            exclusive=sys.argv[3] == "exclusive")
print("done", flush=True)
""".replace("{batch}", str(BATCH))


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _gone(pids: list[int], within: float = 20.0) -> bool:
    """Whether every process of ``pids`` has ended (or is a zombie) within ``within`` seconds."""
    import time

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z":
                alive.append(pid)
        if not alive:
            return True
        time.sleep(0.05)
    return False


def _count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM customers").fetchone()[0])


@pytest.mark.parametrize("mode", ["all", "batch", "exclusive"])
def test_kill_mid_import(tmp_path: Path, mode: str) -> None:
    db = tmp_path / "crm.db"
    import pycrm

    with pycrm.open(f"sqlite:///{db}") as crm, crm.session() as s:
        s.customers.add(pycrm.Customer("Before"))
    csv_path = tmp_path / "c.csv"
    csv_path.write_text("name,email\n" + "".join(f"Name {i},user{i}@example.com\n" for i in range(ROWS)))
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, f"sqlite:///{db}", str(csv_path), mode],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    seen = 0
    for line in proc.stdout:  # wait until several batches went through, then kill in the middle
        if line.strip() == "done":
            break
        seen = int(line)
        if seen >= 4 * BATCH:
            break
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the import finished before it could be killed"
    assert workers, "the import ran no worker process"
    assert _gone(workers), "a worker process outlived the killed import"
    if mode == "exclusive":  # killed without a write-ahead log: the rollback journal is left behind
        assert (tmp_path / "crm.db-journal").exists()
        assert not (tmp_path / "crm.db-wal").exists()
    count = _count(db)
    if mode in ("all", "exclusive"):
        assert count == 1
    else:
        assert (count - 1) % BATCH == 0
        assert 4 * BATCH <= count - 1 < ROWS
    with pycrm.open(f"sqlite:///{db}") as crm, crm.session() as s:  # usable, in write-ahead-log mode again
        assert s.customers.count() == count
    assert db.read_bytes()[18:20] == b"\x02\x02"
