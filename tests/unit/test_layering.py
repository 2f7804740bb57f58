"""The layering of pycrm's packages holds: the import-linter contracts in pyproject.toml are kept.

This test is how CI checks them (CI runs the suite; import-linter is in the ``tests`` extra); ``nox -s
lint`` runs ``lint-imports`` too. A broken contract fails with import-linter's own report: the contract
and the import chain that breaks it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import importlinter.api
import pytest

import pycrm

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
#: The contracts the layering rests on (docs/storage.md, "The port"); removing one must be deliberate.
CONTRACTS = {"domain", "port", "neutral", "adapters", "sql"}


def test_the_layering_contracts_are_declared() -> None:
    contracts = importlinter.api.read_configuration(str(PYPROJECT))["contracts_options"]
    assert {c.get("id") for c in contracts} >= CONTRACTS


def test_the_layering_contracts_are_kept() -> None:
    # the pycrm under test (this checkout's src/ or the installed one), analysed in a fresh interpreter
    src = str(Path(pycrm.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]), "NO_COLOR": "1"}
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
            "--config",
            str(PYPROJECT),
            "--no-cache",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    report = run.stdout + run.stderr
    if run.returncode != 0:
        broken = report[report.find("Broken contracts") :] if "Broken contracts" in report else report
        pytest.fail(f"import-linter: a layering contract is broken\n{broken}", pytrace=False)
    assert "BROKEN" not in report and "kept, 0 broken" in report


def test_code_built_on_a_session_uses_its_unit_of_work() -> None:
    """``pycrm.io`` (and the other packages over storage) take what they need of a session from
    ``session.unit``, never from the session's or a repository's underscored members."""
    import re

    pattern = re.compile(r"\b(?:s|session|sess|target|self\.s|repo|self\.repo)\._[a-z]\w*")
    offenders = []
    for package in ("io", "analytics", "dedup", "security"):
        for path in sorted((Path(pycrm.__file__).parent / package).glob("*.py")):
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if pattern.search(line):
                    offenders.append(f"{package}/{path.name}:{n}: {line.strip()}")
    assert offenders == []
