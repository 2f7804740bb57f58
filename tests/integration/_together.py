"""Processes started together behind a barrier, for the concurrency tests."""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Callable, Sequence
from typing import Any

import pytest


def run_together(target: Callable[..., None], arguments: Sequence[tuple[Any, ...]], what: str) -> list[tuple[Any, ...]]:
    """Start ``target(*args, barrier, results)`` in a process per ``args`` (spawned), with a barrier they all
    wait at; gather what each puts on ``results`` (one tuple each). ``what``: the processes, for a failure."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(arguments))
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, barrier, results)) for args in arguments]
    for p in procs:
        p.start()
    out: list[tuple[Any, ...]] = []
    try:
        for _ in procs:
            out.append(results.get(timeout=300))
    except queue.Empty:  # pragma: no cover - a hung process
        pytest.fail(f"only {len(out)} of {len(procs)} {what} reported: {out}")
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():  # pragma: no cover
                p.kill()
    return out
