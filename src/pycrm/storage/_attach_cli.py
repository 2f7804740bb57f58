"""``pycrm attach``: attachments from the command line (docs/attachments.md).

* ``pycrm attach add --store URL --blobs DIR_OR_URL KIND ID FILE [--type MEDIA_TYPE]`` -- attach a file to a
  record (``KIND``: customers, contacts, opportunities, tickets, interactions, orders); prints its id;
* ``pycrm attach list --store URL --blobs ... KIND ID`` -- one line per attachment: id, media type, size, name;
* ``pycrm attach get --store URL --blobs ... ID OUT`` -- write the content to ``OUT`` (``-``: standard output).

Runs as the system actor (a script's rights). Exit status 0, 2 on bad input (a refused type, a file too large,
an unknown record), 3 when the store or a file fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pycrm.errors import FieldError, ValidationError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "attach",
        help="attach a file to a record, list a record's attachments, get one's content",
        description="Attachments: content in the blob store named by --blobs, metadata in the store.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_ in (
        ("add", "attach FILE to the record KIND ID"),
        ("list", "list the attachments of KIND ID"),
        ("get", "write ID's content to OUT"),
    ):
        a = actions.add_parser(name, help=help_)
        a.add_argument("--store", required=True, metavar="URL", help="store URL or SQLite file")
        a.add_argument("--blobs", required=True, metavar="DIR_OR_URL", help="where the content lives (a directory or fsspec URL)")
        if name == "get":
            a.add_argument("id")
            a.add_argument("out", help="a file to write, or - for standard output")
        else:
            a.add_argument("kind")
            a.add_argument("record_id")
        if name == "add":
            a.add_argument("file")
            a.add_argument("--type", dest="media_type", metavar="MEDIA_TYPE", help="the declared media type (checked)")
        a.set_defaults(run=run)


def _url(store: str) -> str:
    url = store.strip()
    if "://" not in url:
        if not Path(url).is_file():
            raise ValidationError([FieldError("--store", "bad_store", f"{url}: no such store")])
        url = f"sqlite:///{url}"
    return url


def run(args: argparse.Namespace) -> int:
    import pycrm

    with pycrm.open(_url(args.store), blobs=args.blobs) as crm, crm.session() as s:
        if args.action == "add":
            a = s.attachments.add((args.kind, args.record_id), Path(args.file).name, args.file, media_type=args.media_type)
            print(a.id)
        elif args.action == "list":
            for a in s.attachments.list((args.kind, args.record_id)):
                print(f"{a.id}\t{a.media_type}\t{a.size}\t{a.name}")
        else:
            with s.attachments.open(args.id) as f:
                if args.out == "-":
                    while chunk := f.read(1 << 16):
                        sys.stdout.buffer.write(chunk)
                    sys.stdout.buffer.flush()
                else:
                    from pycrm._files import open_replacing

                    with open_replacing(Path(args.out), "wb") as out:
                        while chunk := f.read(1 << 16):
                            out.write(chunk)
    return 0
