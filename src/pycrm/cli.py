"""The ``pycrm`` command: a thin shell over the library.

Each subcommand lives in its own module, listed in :data:`COMMANDS`. A command module defines
``register(subparsers)``, which adds its parser (``subparsers.add_parser(name, help=...)``) and sets
``run`` with ``parser.set_defaults(run=run)``; ``run(args) -> int`` does the work and returns the exit
status.

Bad input raises a :class:`pycrm.CRMError` (build one naming the file, row and column with
:func:`input_error`); ``main`` turns it into one line on stderr and exit status 2, never a traceback.

>>> main(["--version"])  # doctest: +ELLIPSIS
pycrm ...
0
>>> main(["demo", "--db", "memory://", "--customers", "20"])  # doctest: +ELLIPSIS
pycrm demo: seed 42, 20 customers (1 planted near-duplicates), as of 2026-06-30
...
0
>>> main(["demo", "--db", "crm.txt://"])  # bad input: one line on stderr, exit status 2
2
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

__all__ = ["COMMANDS", "EXIT_BAD_INPUT", "EXIT_OK", "EXIT_STORAGE", "build_parser", "input_error", "main"]

EXIT_OK = 0
EXIT_BAD_INPUT = 2
#: The store or a file failed, not the input: a full disk, a read-only or damaged file, a lost connection.
EXIT_STORAGE = 3
#: ``errno`` values of a file that failed for reasons of the machine, not of what was asked (as the library
#: sees them: ``pycrm._files.STORAGE_ERRNOS``).
_STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO})

#: Subcommand name -> module that implements it (``register(subparsers)`` and ``run(args)``), in help order.
#: Later commands plug in here: ``import``, ``export``.
COMMANDS: dict[str, str] = {
    "demo": "pycrm._demo",
    "dedup": "pycrm.dedup._cli",
    "rfm": "pycrm.analytics._cli",
    "report": "pycrm.analytics._report_cli",
    "quality": "pycrm._quality_cli",
    "import": "pycrm.io._import_cli",
    "export": "pycrm.io._export_cli",
    "backup": "pycrm.io._backup_cli",  # also adds restore and verify-backup (same module, registered once)
    "restore": "pycrm.io._backup_cli",
    "verify-backup": "pycrm.io._backup_cli",
    "archive": "pycrm.io._archive_cli",  # also adds unarchive (same module, registered once)
    "unarchive": "pycrm.io._archive_cli",
    "dispatch": "pycrm.automation._dispatch_cli",
    "run-due": "pycrm.automation._cli",
    "attach": "pycrm.storage._attach_cli",
}


def input_error(
    message: str, *, file: str | os.PathLike[str] | None = None, row: int | None = None, column: str | None = None
) -> Exception:
    """A ``ValidationError`` whose one-line message names where the bad input is.

    >>> str(input_error("'abc' is not a date", file="orders.csv", row=3, column="date"))
    "orders.csv, row 3, column 'date': 'abc' is not a date"
    """
    from pycrm.errors import FieldError, ValidationError

    where = ", ".join(
        part
        for part in (
            os.fspath(file) if file is not None else None,
            f"row {row}" if row is not None else None,
            f"column {column!r}" if column is not None else None,
        )
        if part
    )
    return ValidationError([FieldError(where, "bad_input", message)])


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (``pycrm demo: error: ...``) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {_one_line(message)} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from pycrm import __version__

    parser = _Parser(
        prog="pycrm",
        description="pycrm: embeddable CRM library. Exit status 0 on success, 2 on bad input.",
    )
    parser.add_argument("--version", action="version", version=f"pycrm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS.values():
        importlib.import_module(module).register(sub)
    return parser


def _one_line(text: str) -> str:
    """``text`` on one line, printable: runs of white space (line breaks included) become one space, other
    control characters and lone surrogates (from a file name or argument) are written as escapes."""
    return "".join(
        c if c.isprintable() or c == " " else c.encode("unicode_escape", "backslashreplace").decode("ascii")
        for c in " ".join(text.split())
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pycrm`` command; returns the exit status (0 ok, 2 bad input, 3 the store or a file failed)."""
    from pycrm.errors import CRMError, StorageError

    if argv is not None and (
        isinstance(argv, (str, bytes)) or not isinstance(argv, Sequence) or not all(isinstance(a, str) for a in argv)
    ):
        print(f"pycrm: error: expected the arguments as a list of strings, got {type(argv).__name__}", file=sys.stderr)
        return EXIT_BAD_INPUT
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors (argparse exits 2 for those)
        return EXIT_OK if exc.code is None else exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    try:
        status: int = args.run(args)
    except CRMError as exc:
        print(f"pycrm: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_STORAGE if isinstance(exc, StorageError) else EXIT_BAD_INPUT
    except BrokenPipeError:  # `pycrm demo | head`: the reader left; stay quiet
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:  # a file that cannot be read or written is bad input too, named in the message
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"pycrm: error: {where}{_one_line(exc.strerror or str(exc))}", file=sys.stderr)
        return EXIT_STORAGE if exc.errno in _STORAGE_ERRNOS else EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("pycrm: interrupted", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
