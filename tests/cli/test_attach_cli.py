"""``pycrm attach add|list|get``: a file in, listed, and back out byte for byte; bad input exits 2."""

from __future__ import annotations

from pathlib import Path

import pytest

import pycrm
from pycrm.cli import main

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 300


def test_add_list_get(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "crm.db"
    with pycrm.open(f"sqlite:///{db}") as crm, crm.session() as s:
        cid = str(s.customers.add(pycrm.Customer("Acme")).id)
    (tmp_path / "contract.pdf").write_bytes(PDF)
    blobs = str(tmp_path / "blobs")
    assert main(["attach", "add", "--store", str(db), "--blobs", blobs, "customers", cid, str(tmp_path / "contract.pdf")]) == 0
    aid = capsys.readouterr().out.strip()
    assert main(["attach", "list", "--store", str(db), "--blobs", blobs, "customers", cid]) == 0
    assert capsys.readouterr().out == f"{aid}\tapplication/pdf\t{len(PDF)}\tcontract.pdf\n"
    out = tmp_path / "copy.pdf"
    assert main(["attach", "get", "--store", str(db), "--blobs", blobs, aid, str(out)]) == 0
    assert out.read_bytes() == PDF
    (tmp_path / "song.mp3").write_bytes(b"ID3" + bytes(100))
    status = main(
        [
            "attach",
            "add",
            "--store",
            str(db),
            "--blobs",
            blobs,
            "customers",
            cid,
            str(tmp_path / "song.mp3"),
            "--type",
            "image/png",
        ]
    )
    err = capsys.readouterr().err
    assert status == 2 and "media_type" in err
    assert main(["attach", "list", "--store", str(db), "--blobs", blobs, "customers", "nobody"]) == 2
