"""Bulk work collects garbage less often while it runs, and puts the process's setting back after."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import pycrm
from pycrm import ValidationError
from pycrm._runtime import BULK_GC_THRESHOLD, bulk_gc
from pycrm.io import ImportRejected, import_file


@pytest.fixture(autouse=True)
def default_thresholds() -> Iterator[None]:
    found = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*found)


def test_thresholds_are_raised_inside_and_restored_after() -> None:
    with bulk_gc():
        assert gc.get_threshold() == BULK_GC_THRESHOLD
        with bulk_gc():  # nested: still raised, restored only by the outer block
            pass
        assert gc.get_threshold() == BULK_GC_THRESHOLD
    assert gc.get_threshold() == (700, 10, 10)
    with pytest.raises(RuntimeError), bulk_gc():
        raise RuntimeError("a failed bulk operation")
    assert gc.get_threshold() == (700, 10, 10)


def test_blocks_in_several_threads_share_one_setting() -> None:
    inside, release = threading.Barrier(3), threading.Event()

    def work() -> None:
        with bulk_gc():
            inside.wait()
            release.wait()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    inside.wait()
    assert gc.get_threshold() == BULK_GC_THRESHOLD
    release.set()
    for t in threads:
        t.join()
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.parametrize("setting", [(0, 10, 10), (100_000, 10, 10)])
def test_rarer_or_no_collection_is_left_alone(setting: tuple[int, int, int]) -> None:
    gc.set_threshold(*setting)
    with bulk_gc():
        assert gc.get_threshold() == setting
    assert gc.get_threshold() == setting


def test_a_setting_changed_meanwhile_is_kept() -> None:
    with bulk_gc():
        gc.set_threshold(5000, 10, 10)  # the application's own choice, made during the block
    assert gc.get_threshold() == (5000, 10, 10)


def test_a_disabled_collector_is_left_alone() -> None:
    gc.disable()
    try:
        with bulk_gc():
            assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.enable()


def test_an_import_puts_the_setting_back_whether_it_succeeds_or_not(tmp_path: Path) -> None:
    seen: list[tuple[int, int, int]] = []
    good = tmp_path / "good.csv"
    good.write_text("名称,邮箱\nAcme,a@acme.com\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("名称,邮箱\nAcme,not-an-address\n", encoding="utf-8")
    with pycrm.open("memory://") as crm:
        report = import_file(crm, good, progress=lambda n: seen.append(gc.get_threshold()))
        assert report.created == 1 and seen == [BULK_GC_THRESHOLD]
        assert gc.get_threshold() == (700, 10, 10)
        with pytest.raises(ImportRejected):
            import_file(crm, bad)
        assert gc.get_threshold() == (700, 10, 10)


def test_add_many_runs_with_the_bulk_setting_and_puts_it_back(tmp_path: Path) -> None:
    seen: list[tuple[int, int, int]] = []

    def customers() -> Iterator[pycrm.Customer]:  # read while add_many runs
        seen.append(gc.get_threshold())
        yield pycrm.Customer("Acme", emails=["a@acme.com"])

    with pycrm.open(f"sqlite:///{tmp_path / 'crm.db'}") as crm, crm.session() as s:
        assert s.customers.add_many(customers()) == 1
        assert seen == [BULK_GC_THRESHOLD]
        assert gc.get_threshold() == (700, 10, 10)
        with pytest.raises(ValidationError):
            s.customers.add_many([pycrm.Customer("Acme"), "not a customer"])  # type: ignore[list-item]
        assert gc.get_threshold() == (700, 10, 10)
        assert s.customers.count() == 1
