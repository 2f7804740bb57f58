"""Files pycrm writes (backups, exports, scores, duplicate pairs, demo stores) appear whole under their
name or not at all, through a fresh temporary file beside them: a file or symbolic link planted at
``FILE.part`` or any other name is never followed or overwritten, and a failed write leaves the old file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pycrm
from pycrm import Customer
from pycrm.cli import main
from pycrm.io import backup, export_file, restore, verify

DB = settings(
    max_examples=max(5, settings.default.max_examples // 4),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SECRET = "the victim's own content\n"


def plant(folder: Path, names: list[str], victim: Path) -> None:
    """Symbolic links named ``names`` in ``folder``, all pointing at ``victim``."""
    for name in names:
        link = folder / name
        if not link.exists() and not link.is_symlink():
            link.symlink_to(victim)


def untouched(victim: Path) -> bool:
    return victim.read_text(encoding="utf-8") == SECRET


def leftovers(folder: Path, keep: set[str]) -> list[str]:
    """Regular files in ``folder`` other than ``keep`` (temporary files left behind)."""
    return sorted(p.name for p in folder.iterdir() if p.name not in keep and not p.is_symlink())


def planted_names(target: str) -> st.SearchStrategy[list[str]]:
    usual = [f"{target}.part", f".{target}.part", f"{target}.tmp", f"{target}~", f".{target}.partial", f"{target}.part.db"]
    return st.lists(st.one_of(st.sampled_from(usual), st.from_regex(r"\.?[a-z]{1,8}(\.tmp|\.part)?", fullmatch=True)), max_size=6)


@pytest.fixture
def filled(crm: pycrm.CRM) -> pycrm.CRM:
    with crm.session() as s:
        s.customers.add_many([Customer(f"Customer {i}", tags=["vip"] if i % 2 else []) for i in range(25)])
    return crm


@DB
@given(suffix=st.sampled_from([".jsonl", ".jsonl.gz"]), names=planted_names("crm.jsonl"))
def test_a_backup_never_follows_a_planted_link(filled: pycrm.CRM, tmp_path_factory, suffix: str, names: list[str]) -> None:
    folder = tmp_path_factory.mktemp("backup")
    victim = folder.parent / f"{folder.name}-victim.txt"
    victim.write_text(SECRET, encoding="utf-8")
    target = folder / f"crm{suffix}"
    plant(folder, [n.replace("crm.jsonl", target.name) for n in names], victim)
    made = backup(filled, target)
    assert made.counts["customers"] == 25
    assert untouched(victim)
    assert verify(filled, target).ok
    assert leftovers(folder, {target.name}) == []
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # a new backup is readable by its owner only


@pytest.mark.parametrize("suffix", [".db", ".db.gz"])
def test_a_sqlite_backup_never_follows_a_planted_link(tmp_path: Path, suffix: str) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text(SECRET, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    target = out / f"copy{suffix}"
    plant(out, [f"{target.name}.part", f"{target.name}.part.db", f".{target.name}.part"], victim)
    with pycrm.open(f"sqlite:///{tmp_path / 'live.db'}") as crm:
        with crm.session() as s:
            s.customers.add(Customer("Acme"))
        assert backup(crm, target, method="sqlite").counts["customers"] == 1
    assert untouched(victim)
    assert leftovers(out, {target.name}) == []
    with pycrm.open("memory://") as fresh:
        assert restore(fresh, target).ok
        with fresh.session() as s:
            assert [c.name for c in s.customers.find()] == ["Acme"]


def test_a_backup_over_an_old_one_keeps_its_mode_and_a_failed_one_keeps_the_old_file(
    filled: pycrm.CRM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    target = folder / "crm.jsonl"
    backup(filled, target)
    os.chmod(target, 0o640)
    old = target.read_bytes()
    from pycrm.io import _backup

    def broken(*args: object, **kwargs: object) -> object:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_backup, "_lines", broken)
    with pytest.raises(pycrm.StorageError, match=r"crm\.jsonl: .*disk is full"):
        backup(filled, target)
    assert target.read_bytes() == old and leftovers(folder, {target.name}) == []
    monkeypatch.undo()
    backup(filled, target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


@DB
@given(fmt=st.sampled_from(["csv", "jsonl", "xlsx"]), names=planted_names("out.csv"))
def test_an_export_never_follows_a_planted_link(filled: pycrm.CRM, tmp_path_factory, fmt: str, names: list[str]) -> None:
    if fmt == "xlsx":
        pytest.importorskip("openpyxl")
    folder = tmp_path_factory.mktemp("export")
    victim = folder.parent / f"{folder.name}-victim.txt"
    victim.write_text(SECRET, encoding="utf-8")
    target = folder / f"out.{fmt}"
    plant(folder, [n.replace("out.csv", target.name) for n in names], victim)
    assert export_file(filled, target, "customers") == 25
    assert untouched(victim)
    assert leftovers(folder, {target.name}) == []


def test_an_export_onto_a_link_replaces_the_link_and_a_failed_export_keeps_the_old_file(
    filled: pycrm.CRM, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text(SECRET, encoding="utf-8")
    folder = tmp_path / "exports"
    folder.mkdir()
    target = folder / "out.csv"
    target.symlink_to(victim)
    assert export_file(filled, target, "customers") == 25
    assert untouched(victim) and not target.is_symlink()
    old = target.read_bytes()

    def stop(n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_file(filled, target, "customers", batch_size=5, progress=stop)
    assert target.read_bytes() == old
    assert leftovers(folder, {target.name}) == []


def test_the_command_line_outputs_never_follow_a_planted_link(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text(SECRET, encoding="utf-8")
    orders = tmp_path / "orders.csv"
    orders.write_text("cust,day,amt\na,2024-01-05,100\nb,2024-02-01,5\n", encoding="utf-8")
    people = tmp_path / "people.csv"
    people.write_text("id,name\n1,Zhang Wei\n2,Zhang  Wei\n", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    names = ["scores.csv", "pairs.csv", "demo.db"]
    plant(out, [f"{n}{x}" for n in names for x in (".part", ".tmp")] + [f".{n}.{os.getpid()}.partial" for n in names], victim)
    rfm_args = ["--customer-column", "cust", "--date-column", "day", "--amount-column", "amt", "--as-of", "2024-03-31"]
    assert main(["rfm", str(orders), *rfm_args, "-o", str(out / "scores.csv")]) == 0
    assert main(["dedup", str(people), "--id-column", "id", "--output", str(out / "pairs.csv")]) == 0
    assert main(["demo", "--db", str(out / "demo.db"), "--customers", "20"]) == 0
    capsys.readouterr()
    assert untouched(victim)
    assert leftovers(out, set(names)) == []
    assert (out / "scores.csv").read_text(encoding="utf-8").startswith("customer_id,")
