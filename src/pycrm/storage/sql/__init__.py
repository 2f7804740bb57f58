"""The SQL adapter: SQLite, PostgreSQL and MariaDB/MySQL through SQLAlchemy 2.

``pycrm.open("sqlite:///crm.db")`` (or a PostgreSQL / MariaDB URL, or an Engine) opens a
:class:`SQLStore`; the schema lives in :mod:`pycrm.storage.sql.tables` and is created and upgraded by the
Alembic migrations in ``migrations/``. Importing this package opens no connection.
"""

from pycrm.storage.sql.migrate import upgrade
from pycrm.storage.sql.store import SQLStore, SQLTransaction, is_engine
from pycrm.storage.sql.tables import metadata

__all__ = ["SQLStore", "SQLTransaction", "is_engine", "metadata", "upgrade"]
