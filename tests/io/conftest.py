"""Helpers for the import/export tests: writing small files in every format and encoding."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """Write ``text`` to ``name`` under tmp_path in ``encoding`` (bytes given are written as they are)."""

    def write(name: str, text: str | bytes, encoding: str = "utf-8") -> Path:
        p = tmp_path / name
        p.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
        return p

    return write


@pytest.fixture
def write_xlsx(tmp_path: Path) -> Callable[..., Path]:
    def write(name: str, rows: list[list[Any]]) -> Path:
        import openpyxl

        wb = openpyxl.Workbook()
        ws = wb.active
        assert ws is not None
        for r in rows:
            ws.append(r)
        p = tmp_path / name
        wb.save(p)
        return p

    return write
