"""A large import keyed on an encrypted field puts no key value in clear in a temporary file.

Past ``SEEN_IN_MEMORY`` key values (100,000; lowered here so the test is small) the import keeps the keys
it has seen in a temporary SQLite file. While the import runs, every temporary file is read byte by byte:
the files in the temporary directory and every regular file the process holds open (deleted ones too),
the input file aside. None holds a national id, an e-mail address or a phone number of the file (the
fields the store encrypts); the keys' file is there and holds keyed hashes; duplicates are still found
once the keys spilled.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pycrm
import pycrm.io._import as imp
from pycrm.io import ImportRejected, import_file
from pycrm.security import KeyRing

RING = KeyRing({"k1": bytes(range(32))}, active="k1", index_key=bytes(range(32, 64)))
ENCRYPTED = {"customers": ["custom.national_id", "emails", "phones"]}
MAPPING = {"name": "name", "national_id": "custom.national_id", "email": "emails", "phone": "phones"}
ROWS = 400


def national_id(i: int) -> str:
    return f"3301061988{i:08d}"


def csv_text(rows: range, extra: str = "") -> str:
    lines = [f"Person {i},{national_id(i)},person{i}@example.com,1390000{i:04d}\n" for i in rows]
    return "name,national_id,email,phone\n" + "".join(lines) + extra


def clear_values(rows: range) -> list[bytes]:
    return [v.encode() for i in rows for v in (national_id(i), f"person{i}@example.com", f"+861390000{i:04d}")]


def scan(tmp: Path, skip: Path) -> dict[str, bytes]:
    """Every temporary file's bytes: the temporary directory's files and the process's open regular files."""
    skipped = os.stat(skip)
    out: dict[str, bytes] = {}
    for p in tmp.rglob("*"):
        if p.is_file():
            out[str(p)] = p.read_bytes()
    for fd in os.listdir("/proc/self/fd"):
        link = f"/proc/self/fd/{fd}"
        try:
            st = os.stat(link)
            if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) == (skipped.st_dev, skipped.st_ino):
                continue
            with open(link, "rb") as f:
                out[os.readlink(link)] = f.read()
        except OSError:  # closed in between, or not readable: not ours
            continue
    return out


@pytest.fixture
def tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary directory of the test's own, where the import's temporary files go."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setattr(imp, "SEEN_IN_MEMORY", 50)
    return tmp


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads open files through /proc")
def test_no_clear_key_value_reaches_a_temporary_file(
    open_crm: Callable[..., pycrm.CRM], tmp_dir: Path, write_csv: Callable[..., Path]
) -> None:
    crm = open_crm(keyring=RING, encrypted=ENCRYPTED)
    path = write_csv("people.csv", csv_text(range(ROWS)))
    secrets = clear_values(range(ROWS))
    seen: dict[str, bytes] = {}

    def progress(done: int) -> None:
        seen.update(scan(tmp_dir, path))

    report = import_file(crm, path, mapping=MAPPING, key="custom.national_id", batch_size=40, workers=1, progress=progress)
    assert report.created == ROWS
    keys_files = [name for name in seen if os.path.basename(name).startswith("pycrm-import-keys-")]
    assert keys_files, "the keys spilled to a temporary file"
    assert all(len(seen[name]) > 0 for name in keys_files)
    for name, data in seen.items():
        for value in secrets:
            assert value not in data, f"{value.decode()} in clear in {name}"
    assert not list(tmp_dir.iterdir())  # the keys' file is gone once the import ends
    with crm.session() as s:
        assert [c.name for c in s.customers.find({"custom.national_id": national_id(ROWS - 1)})] == [f"Person {ROWS - 1}"]


def test_duplicates_are_found_among_spilled_encrypted_keys(
    open_crm: Callable[..., pycrm.CRM], tmp_dir: Path, write_csv: Callable[..., Path]
) -> None:
    crm = open_crm(keyring=RING, encrypted=ENCRYPTED)
    again = f"Again,{national_id(3)},again@example.com,13911112222\n"
    path = write_csv("people.csv", csv_text(range(200), again))
    with pytest.raises(ImportRejected) as info:
        import_file(crm, path, mapping=MAPPING, key="custom.national_id", batch_size=40, workers=1)
    assert [p.message for p in info.value.report.problems] == [
        f"duplicate key: custom.national_id {national_id(3)!r} is also on row 5"
    ]
    assert not list(tmp_dir.iterdir())


def test_keys_spilled_hashed_match_exactly_by_kind_of_value(tmp_dir: Any) -> None:
    seen = imp._SeenKeys(limit=1, hashed=frozenset({"custom.n"}))
    try:
        seen.add({("custom.n", 1): 2, ("custom.n", "1"): 3, ("custom.n", "ü"): 4, ("custom.n", "\ud800"): 7})
        seen.add({("custom.n", 2.5): 5, ("id", "a"): 6, ("id", "i1"): 8})
        assert seen.path is not None and os.path.dirname(seen.path) == str(tmp_dir)
        wanted = [("custom.n", True), ("custom.n", "1"), ("custom.n", "ü"), ("custom.n", "\ud800"), ("custom.n", 2.5)]
        assert seen.lookup([*wanted, ("custom.n", "i1"), ("id", "a"), ("id", 1)]) == {
            ("custom.n", True): 2,
            ("custom.n", "1"): 3,
            ("custom.n", "ü"): 4,
            ("custom.n", "\ud800"): 7,
            ("custom.n", 2.5): 5,
            ("id", "a"): 6,
        }
        data = Path(seen.path).read_bytes()
        assert b"\xc3\xbc" not in data and b"i1" in data  # the hashed key's text is not there; the other key's is
    finally:
        seen.close()
    assert not list(Path(tmp_dir).iterdir())


def test_a_temporary_file_that_cannot_be_made_is_a_crm_error(
    open_crm: Callable[..., pycrm.CRM], tmp_dir: Path, write_csv: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    crm = open_crm(keyring=RING, encrypted=ENCRYPTED)
    path = write_csv("people.csv", csv_text(range(100)))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_dir / "gone"))  # no such directory: the file cannot be made
    with pytest.raises(pycrm.CRMError, match=r"the import's temporary file of the keys seen .*gone"):
        import_file(crm, path, mapping=MAPPING, key="custom.national_id", batch_size=40, workers=1)
    with crm.session() as s:
        assert s.customers.count() == 0
