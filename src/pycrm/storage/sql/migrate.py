"""Schema migrations: ``upgrade(connection)`` runs ``alembic upgrade head`` through Alembic's API.

The migration scripts live in ``migrations/`` next to this module (packaged with pycrm). The connection
is handed to ``env.py`` through ``config.attributes``; pycrm's version table is ``pycrm_alembic_version``
so it can share a database with a host application's own Alembic history.

Every revision must be restartable: a crash (a killed process, a lost connection) can stop it at any
statement, and the next ``pycrm.open`` runs it again from its start. On MariaDB/MySQL each DDL statement
commits on its own and Alembic records the revision only after its last step, so the tables made before
the crash are there and the revision number is the old one; on PostgreSQL and SQLite the whole upgrade is
one transaction and nothing is left. So a migration script never calls ``alembic.op``'s DDL unchecked: it
uses the checking steps of :mod:`pycrm.storage.sql.migrate_ops` (``create_table``, ``create_index``,
``add_column``, ``drop_*``, ``rename_table``), each of which looks at what exists and does only what is
missing, and makes its data steps safe to repeat (``insert_missing``, or an ``UPDATE`` that writes the
same values again). ``tests/integration/test_crash_open.py`` kills openers after each statement and checks
that the next open completes the schema.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

__all__ = ["MIGRATIONS", "alembic_config", "head_revision", "upgrade"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: sa.Connection | None = None) -> object:
    """An Alembic ``Config`` for pycrm's migrations (optionally bound to ``connection``)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()  # type: ignore[arg-type]


def upgrade(connection: sa.Connection, revision: str = "head") -> None:
    """Bring the schema on ``connection`` up to ``revision``; the caller commits."""
    from alembic import command

    command.upgrade(alembic_config(connection), revision)  # type: ignore[arg-type]
