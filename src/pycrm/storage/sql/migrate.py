"""Schema migrations: ``upgrade(connection)`` runs ``alembic upgrade head`` through Alembic's API.

The migration scripts live in ``migrations/`` next to this module (packaged with pycrm). The connection
is handed to ``env.py`` through ``config.attributes``; pycrm's version table is ``pycrm_alembic_version``
so it can share a database with a host application's own Alembic history.
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
