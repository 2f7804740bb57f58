"""Developer tasks: ``nox`` runs tests, lint, typing and docs; ``nox -s bench`` and ``nox -s demo`` on request.

Dependencies come from pyproject.toml's PEP 735 ``[dependency-groups]``, read by nox and handed to pip as
plain requirements, so any pip works. Server databases are opt-in through the environment, as in CI::

    PYCRM_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
    PYCRM_TEST_MYSQL_URL=mysql+pymysql://root@127.0.0.1:3306/test nox -s tests

Without them the PostgreSQL and MariaDB tests are skipped (they fail instead under ``CI=true``);
the memory and SQLite adapters are always tested. Arguments after ``--`` go to the tool
(``nox -s tests -- -k where -x``, ``nox -s bench -- --quick``, ``nox -s demo -- --seed 7``).
"""

from __future__ import annotations

import os

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_external_run = True
nox.options.sessions = ["tests", "lint", "typing", "docs"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = nox.project.python_versions(PYPROJECT)
DATABASE_ENV = ("PYCRM_TEST_POSTGRES_URL", "PYCRM_TEST_MYSQL_URL")


def _group(name: str) -> tuple[str, ...]:
    """A dependency group as requirement strings (``include-group`` resolved); empty when absent."""
    if name not in PYPROJECT.get("dependency-groups", {}):
        return ()
    return nox.project.dependency_groups(PYPROJECT, name)


def _databases(session: nox.Session) -> dict[str, str]:
    env = {k: os.environ[k] for k in DATABASE_ENV if os.environ.get(k)}
    on = ["memory", "sqlite"] + [k.split("_")[2].lower() for k in env]
    session.log(f"adapters under test: {', '.join(on)} (set {' / '.join(DATABASE_ENV)} for the servers)")
    return env


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole suite: unit, contract (every adapter), integration, and the doctests in src/ and docs/."""
    session.install("-e", ".", *_group("tests"))
    env = _databases(session)
    session.run("python", "-m", "pytest", *session.posargs, env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole tree, then the layering contracts of pyproject.toml (import-linter)."""
    session.install("-e", ".", "ruff>=0.5", "import-linter>=2.5")
    session.run("ruff", "check", *(session.posargs or ["."]))
    session.run("lint-imports", "--no-cache")


@nox.session(python=PYTHONS[0])
def typing(session: nox.Session) -> None:
    """mypy, strict on src/ (configured in pyproject.toml)."""
    session.install("-e", ".", *_group("typing"))
    session.run("mypy", *session.posargs)


@nox.session(python=PYTHONS[0])
def docs(session: nox.Session) -> None:
    """Every ``>>>`` example in docs/*.md and README.md runs as a doctest."""
    session.install("-e", ".", *_group("docs"))
    session.run("python", "-m", "pytest", "docs", "README.md", "-p", "no:cacheprovider", *session.posargs)


#: The benchmark scripts of later issues, run after benchmarks/run.py by ``nox -s bench``.
BENCH_SCRIPTS = (
    "bench_dedup.py",
    "bench_rfm.py",
    "bench_clv.py",
    "bench_reports.py",
    "bench_io.py",
    "bench_lifecycle.py",
    "bench_basket.py",
    "bench_basket_store.py",
)


@nox.session(python=PYTHONS[0])
def bench(session: nox.Session) -> None:
    """The speed targets next to their floors, each beside its baseline in the same run.

    ``benchmarks/run.py`` (core and security figures; ``-- --quick`` for a smoke run of those alone), then,
    without arguments, every issue's own benchmark script (dedup, RFM, CLV, reports, import/export, backup, basket analysis).
    """
    session.install(".[all]", *_group("bench"))
    session.run("python", "benchmarks/run.py", *session.posargs)
    if not session.posargs:
        for script in BENCH_SCRIPTS:
            session.run("python", f"benchmarks/{script}")


@nox.session(python=PYTHONS[0])
def demo(session: nox.Session) -> None:
    """``pycrm demo`` from a clean install, writing its SQLite file in a scratch directory."""
    session.install(".")
    tmp = session.create_tmp()
    session.chdir(tmp)
    session.run("pycrm", "demo", *session.posargs)
