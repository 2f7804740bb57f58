"""Fixtures for the dedup tests."""

from __future__ import annotations

from typing import Any

import pytest

from ._data import people


@pytest.fixture(scope="session")
def people_1000() -> tuple[list[dict[str, Any]], set[tuple[str, str]]]:
    return people(1000)
