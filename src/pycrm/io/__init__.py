"""Import, export, backup/restore and archiving: data in and out of a store.

Import and export (see docs/io.md):

* :func:`import_file` reads CSV (UTF-8, UTF-8 with BOM, GB18030), XLSX or JSON Lines into customers,
  contacts, opportunities, tickets, interactions or orders, with automatic or explicit column mapping,
  validation of every row, dry runs, upserts by key, all-or-nothing or per-batch commits;
* :func:`export_file` writes the records matching a ``where`` filter, the fields chosen, to CSV, XLSX or
  JSON Lines, streaming, honouring the actor's scope and masking. An export imports back unchanged.

Backup, restore and archiving (see docs/lifecycle.md):

* :func:`backup` writes a consistent logical dump (JSON Lines, optionally gzip) of any store, or an SQLite
  online-backup copy; :func:`restore` loads one into an empty store of any adapter, all or nothing, and
  :func:`verify` compares counts and checksums per kind; ``backup(..., base=previous)`` writes an increment
  (what the change feed shows changed since), and ``restore(..., increments=[...])`` restores to any point of
  the chain;
* :func:`archive` moves records matching retention rules (:func:`tickets_closed`,
  :func:`customers_inactive`, :func:`tasks_done`, :func:`older_than`) out of the live tables and
  :func:`unarchive` brings them back; :func:`archived` reads them.
"""

from pycrm.io._archive import (
    ArchiveResult,
    Rule,
    archive,
    archived,
    customers_inactive,
    older_than,
    parse_rule,
    tasks_done,
    tickets_closed,
    unarchive,
)
from pycrm.io._backup import BackupResult, GroupCheck, Section, Verification, backup, register_section, restore, verify
from pycrm.io._export import EXTRA_FIELDS, export_fields, export_file
from pycrm.io._import import DEFAULT_KEYS, ImportRejected, ImportReport, Problem, import_file
from pycrm.io._mapping import EXPORT_FIELDS, IMPORT_KINDS, load_mapping, resolve

__all__ = [
    "DEFAULT_KEYS",
    "EXPORT_FIELDS",
    "EXTRA_FIELDS",
    "IMPORT_KINDS",
    "ArchiveResult",
    "BackupResult",
    "GroupCheck",
    "ImportRejected",
    "ImportReport",
    "Problem",
    "Rule",
    "Section",
    "Verification",
    "archive",
    "archived",
    "backup",
    "customers_inactive",
    "export_fields",
    "export_file",
    "import_file",
    "load_mapping",
    "older_than",
    "parse_rule",
    "register_section",
    "resolve",
    "restore",
    "tasks_done",
    "tickets_closed",
    "unarchive",
    "verify",
]
