"""Attachments on every adapter: content streamed to the blob store (deduplicated by SHA-256), read back,
listed with their record; scoping ("not yours" looks like "not there"), erasure, export, merge, bad input
(size, refused or contradicted media types: nothing written), a crash between the blob and the commit, gc,
and an fsspec filesystem."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pycrm
from pycrm import Attachment, AttachmentLimits, Contact, Customer, Opportunity, Ticket, User
from pycrm.domain import Money
from pycrm.errors import NotFound, PermissionDenied, ValidationError
from pycrm.storage import FsspecBlobStore, LocalBlobStore

REP = User("Rep", "rep@example.com", roles=["sales"], team_id="t1", id="u1")
OTHER = User("Other", "other@example.com", roles=["sales"], team_id="t2", id="u2")
SUPPORT = User("Desk", "desk@example.com", roles=["support"], id="u3")
ANALYST = User("Ana", "ana@example.com", roles=["analyst"], id="u4")

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40  # 10 KB and a bit
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 5000
OGG = b"OggS" + b"\x01" * 3000


class Counting(io.RawIOBase):
    """A readable stream of ``size`` bytes that records the largest read asked of it (never the whole)."""

    def __init__(self, head: bytes, size: int):
        self.head, self.size, self.pos, self.largest = head, size, 0, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        self.largest = max(self.largest, n if n >= 0 else self.size)
        if self.pos >= self.size:
            return b""
        n = self.size - self.pos if n < 0 else min(n, self.size - self.pos)
        out = bytes((self.head[i] if i < len(self.head) else i % 251) for i in range(self.pos, self.pos + n))
        self.pos += n
        return out


def _blobs(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def world(open_crm: Callable[..., pycrm.CRM], tmp_path: Path) -> dict[str, Any]:
    crm = open_crm(blobs=tmp_path / "blobs")
    with crm.session() as s:
        mine = s.customers.add(Customer("Mine", owner_id="u1", team_id="t1"))
        theirs = s.customers.add(Customer("Theirs", owner_id="u2", team_id="t2"))
        k = s.contacts.add(Contact(str(mine.id), "Li", "Lei"))
        opp = s.opportunities.add(Opportunity(str(theirs.id), "Deal", Money("10", "EUR"), owner_id="u2"))
        t = s.tickets.add(Ticket(str(mine.id), "Broken"))
    return {"crm": crm, "mine": mine, "theirs": theirs, "contact": k, "opp": opp, "ticket": t, "root": tmp_path / "blobs"}


def test_add_streams_hashes_and_reads_back(world: dict[str, Any]) -> None:
    crm, mine = world["crm"], world["mine"]
    with crm.session(actor=REP) as s:
        a = s.attachments.add(mine, "contract.pdf", io.BytesIO(PDF))
        assert (a.name, a.media_type, a.size, a.sha256) == (
            "contract.pdf",
            "application/pdf",
            len(PDF),
            hashlib.sha256(PDF).hexdigest(),
        )
        assert (a.record_kind, a.record_id, a.customer_id, a.uploaded_by, a.version) == ("customers", mine.id, mine.id, "u1", 1)
        voice = s.attachments.add(world["contact"], "note.ogg", io.BytesIO(OGG))
        assert (voice.media_type, voice.customer_id, voice.record_kind) == ("audio/ogg", mine.id, "contacts")
    with crm.session(actor=REP) as s:
        assert [x.id for x in s.attachments.list(mine)] == [a.id]
        assert [x.id for x in s.attachments.list(("contacts", str(world["contact"].id)))] == [voice.id]
        with s.attachments.open(str(a.id)) as f:
            assert f.read() == PDF
        assert s.attachments.get(str(a.id)) == a
        assert s.attachments.count({"size": {"gt": 5000}}) == 1


def test_content_is_read_in_chunks_and_identical_content_is_stored_once(world: dict[str, Any], tmp_path: Path) -> None:
    crm, mine = world["crm"], world["mine"]
    big = Counting(b"%PDF-1.4", 3 * 1024 * 1024)
    with crm.session() as s:
        a = s.attachments.add(mine, "big.pdf", big)
        assert a.size == 3 * 1024 * 1024 and big.largest <= 1 << 16
        path = tmp_path / "same.pdf"
        path.write_bytes(PDF)
        one = s.attachments.add(mine, path)  # a path: the name is the file's
        two = s.attachments.add(world["ticket"], "copy.pdf", str(path))
        assert one.name == "same.pdf" and one.sha256 == two.sha256
    assert len(_blobs(world["root"])) == 2  # the big file and the PDF, once


def test_another_owners_attachment_is_not_there(world: dict[str, Any]) -> None:
    crm = world["crm"]
    with crm.session() as s:
        secret = s.attachments.add(world["theirs"], "secret.pdf", io.BytesIO(PDF))
        deal = s.attachments.add(world["opp"], "offer.pdf", io.BytesIO(PDF + b"x"))
        mine = s.attachments.add(world["mine"], "mine.pdf", io.BytesIO(PDF + b"y"))
    with crm.session(actor=REP) as s:
        for att in (secret, deal):
            with pytest.raises(NotFound) as by_id:
                s.attachments.get(str(att.id))
            assert str(by_id.value) == f"no Attachment with id {att.id!r}"  # the words of a missing one
            with pytest.raises(NotFound):
                s.attachments.open(str(att.id))
        with pytest.raises(NotFound) as missing:
            s.attachments.get("nope")
        assert str(missing.value) == "no Attachment with id 'nope'"
        assert [a.id for a in s.attachments.find()] == [mine.id]
        assert s.attachments.count({"sha256": secret.sha256}) == 0
        with pytest.raises(NotFound):
            s.attachments.list(world["theirs"])
        with pytest.raises(NotFound):  # a file cannot be added to a record outside the scope either
            s.attachments.add(("customers", str(world["theirs"].id)), "x.pdf", io.BytesIO(PDF))


def test_a_role_without_read_on_the_records_kind_sees_none_of_its_attachments(world: dict[str, Any]) -> None:
    crm = world["crm"]
    with crm.session() as s:
        on_ticket = s.attachments.add(world["ticket"], "photo.png", io.BytesIO(PNG))
        on_deal = s.attachments.add(world["opp"], "offer.pdf", io.BytesIO(PDF))
    with crm.session(actor=SUPPORT) as s:  # support reads every ticket, no deal
        assert [a.id for a in s.attachments.find()] == [on_ticket.id]
        with pytest.raises(NotFound):
            s.attachments.get(str(on_deal.id))
    with crm.session(actor=ANALYST) as s, pytest.raises(PermissionDenied):  # the analyst reads no attachment at all
        s.attachments.find()


def test_oversized_and_refused_types_name_the_field_and_write_nothing(open_crm: Callable[..., pycrm.CRM], tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    crm = open_crm(blobs=root, attachment_limits=AttachmentLimits(max_size=4096, media_types=["application/pdf", "image/png"]))
    with crm.session() as s:
        c = s.customers.add(Customer("Acme"))
    cases: list[tuple[Any, str | None, str, str]] = [
        (io.BytesIO(PDF), None, "content", "too_large"),
        (io.BytesIO(OGG[:1000]), None, "media_type", "refused"),
        (io.BytesIO(PNG[:1000]), "application/pdf", "media_type", "mismatch"),
        (io.BytesIO(b"MZ\x90\x00 an executable"), None, "media_type", "refused"),
    ]
    for stream, declared, field, code in cases:
        with crm.session() as s:
            with pytest.raises(ValidationError) as exc:
                s.attachments.add(c, "file.pdf" if declared else "file.bin", stream, media_type=declared)
            assert (exc.value.fields, exc.value.errors[0].code) == ([field], code)
    assert _blobs(root) == []
    with crm.session() as s:
        assert s.attachments.count() == 0
        with pytest.raises(ValidationError) as bad:
            s.attachments.add(("planets", "x"), "a.pdf", io.BytesIO(PDF))
        assert bad.value.fields == ["record"]
        with pytest.raises(ValidationError) as text:
            s.attachments.add(c, "a.pdf", io.StringIO("%PDF- not bytes"))
        assert text.value.fields == ["content"]


def test_without_a_blob_store_attachments_name_the_setting(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm()
    with crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        with pytest.raises(ValidationError) as exc:
            s.attachments.add(c, "a.pdf", io.BytesIO(PDF))
        assert exc.value.fields == ["blobs"]


def test_a_crash_between_the_blob_and_the_commit_leaves_a_working_store(world: dict[str, Any]) -> None:
    """The blob is written first: a unit of work that then fails leaves content no row references (never a
    row without content); the store works on, and ``gc`` collects the orphan."""
    crm, root = world["crm"], world["root"]
    with pytest.raises(RuntimeError), crm.session() as s:
        s.attachments.add(world["mine"], "lost.pdf", io.BytesIO(PDF))
        raise RuntimeError("power cut before the commit")
    assert len(_blobs(root)) == 1
    with crm.session() as s:
        assert s.attachments.count() == 0
        kept = s.attachments.add(world["mine"], "kept.png", io.BytesIO(PNG))
        assert s.attachments.gc().get("removed") == 0  # the orphan is young: an upload may still be on its way
    with crm.session() as s:
        import datetime as dt

        assert s.attachments.gc(older_than=dt.timedelta(0)) == {"removed": 1, "kept": 1}
        with s.attachments.open(str(kept.id)) as f:
            assert f.read() == PNG
    with crm.session(actor=REP) as s, pytest.raises(PermissionDenied):
        s.attachments.gc()


def test_delete_removes_the_content_unless_another_attachment_holds_it(world: dict[str, Any]) -> None:
    crm, root = world["crm"], world["root"]
    with crm.session() as s:
        a = s.attachments.add(world["mine"], "a.pdf", io.BytesIO(PDF))
        b = s.attachments.add(world["ticket"], "b.pdf", io.BytesIO(PDF))
    with crm.session() as s:
        s.attachments.delete(str(a.id))
    assert len(_blobs(root)) == 1
    with pytest.raises(RuntimeError), crm.session() as s:  # rolled back: the content stays
        s.attachments.delete(str(b.id))
        raise RuntimeError
    assert len(_blobs(root)) == 1
    with crm.session() as s:
        s.attachments.delete(str(b.id))
    assert _blobs(root) == []


def test_erasure_takes_the_persons_files_and_keeps_content_another_record_holds(world: dict[str, Any]) -> None:
    crm, root = world["crm"], world["root"]
    with crm.session() as s:
        s.attachments.add(world["mine"], "passport.png", io.BytesIO(PNG))
        s.attachments.add(world["contact"], "voice.ogg", io.BytesIO(OGG))
        shared = s.attachments.add(world["mine"], "terms.pdf", io.BytesIO(PDF))
        other = s.attachments.add(world["theirs"], "terms.pdf", io.BytesIO(PDF))
        data = s.personal.export(str(world["mine"].id))
        assert sorted(a["name"] for a in data["attachments"]) == ["passport.png", "terms.pdf", "voice.ogg"]
    with crm.session() as s:
        counts = s.personal.erase(str(world["mine"].id))
        assert counts["attachments"] == 3
    with crm.session() as s:
        assert [a.id for a in s.attachments.find()] == [other.id]
        with s.attachments.open(str(other.id)) as f:
            assert f.read() == PDF
    assert [p.name for p in _blobs(root)] == [shared.sha256]  # the photo and the voice are gone


def test_erasing_a_contact_takes_its_files_only(world: dict[str, Any]) -> None:
    crm, root = world["crm"], world["root"]
    with crm.session() as s:
        keep = s.attachments.add(world["mine"], "contract.pdf", io.BytesIO(PDF))
        s.attachments.add(world["contact"], "voice.ogg", io.BytesIO(OGG))
    with crm.session() as s:
        assert s.personal.erase(str(world["contact"].id))["attachments"] == 1
    with crm.session() as s:
        assert [a.id for a in s.attachments.find()] == [keep.id]
    assert [p.name for p in _blobs(root)] == [keep.sha256]


def test_merge_moves_the_attachments_with_the_customer(world: dict[str, Any]) -> None:
    crm = world["crm"]
    with crm.session() as s:
        dup = s.customers.add(Customer("Mine (dup)", owner_id="u1"))
        a = s.attachments.add(dup, "contract.pdf", io.BytesIO(PDF))
        s.customers.merge(str(world["mine"].id), str(dup.id))
    with crm.session(actor=REP) as s:
        moved = s.attachments.get(str(a.id))
        assert (moved.customer_id, moved.record_id) == (world["mine"].id, world["mine"].id)
        assert [x.id for x in s.attachments.list(world["mine"])] == [a.id]


def test_a_customer_with_attachments_is_in_use(world: dict[str, Any]) -> None:
    crm = world["crm"]
    with crm.session() as s:
        c = s.customers.add(Customer("Short-lived"))
        s.attachments.add(c, "a.pdf", io.BytesIO(PDF))
        with pytest.raises(ValidationError, match="still referenced"):
            s.customers.delete(str(c.id))


def test_metadata_rows_need_their_content(world: dict[str, Any]) -> None:
    """``add(Attachment(...))`` (a restore, a copy): an actor may add only the metadata of content already in
    the blob store, for a record it can read, with that record's customer."""
    crm = world["crm"]
    mine = str(world["mine"].id)
    with crm.session(actor=REP) as s:
        with pytest.raises(ValidationError) as exc:
            s.attachments.add(Attachment(mine, "customers", mine, "x.pdf", "application/pdf", 1, "ab" * 32))
        assert exc.value.fields == ["sha256"]
        real = s.attachments.add(world["mine"], "real.pdf", io.BytesIO(PDF))
        with pytest.raises(ValidationError) as wrong:
            s.attachments.add(Attachment(str(world["theirs"].id), "customers", mine, "x.pdf", "application/pdf", 1, real.sha256))
        assert wrong.value.fields == ["customer_id"]
        copy = s.attachments.add(Attachment(mine, "customers", mine, "copy.pdf", "application/pdf", real.size, real.sha256))
        assert copy.version == 1


def test_an_fsspec_filesystem_holds_the_content(open_crm: Callable[..., pycrm.CRM]) -> None:
    pytest.importorskip("fsspec")
    import uuid

    url = f"memory://pycrm-test-{uuid.uuid4().hex}"
    crm = open_crm(blobs=url)
    with crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        a = s.attachments.add(c, "voice.ogg", io.BytesIO(OGG))
        b = s.attachments.add(c, "again.ogg", io.BytesIO(OGG))
    with crm.session() as s, s.attachments.open(str(b.id)) as f:
        assert f.read() == OGG
    store = crm.blobs
    assert isinstance(store, FsspecBlobStore)
    assert [name for name, _ in store.list()] == [a.sha256]
    with crm.session() as s:
        s.attachments.delete(str(a.id))
        s.attachments.delete(str(b.id))
    assert list(store.list()) == []


def test_a_blob_store_object_plugs_in(open_crm: Callable[..., pycrm.CRM], tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "mine")
    crm = open_crm(blobs=blobs)
    assert crm.blobs is blobs
    with crm.session() as s:
        a = s.attachments.add(s.customers.add(Customer("Acme")), "a.png", io.BytesIO(PNG))
    assert blobs.exists(a.sha256)
    with pytest.raises(ValidationError) as exc:
        open_crm(blobs=42)
    assert exc.value.fields == ["blobs"]


def test_an_update_renames_and_never_repoints_the_content(world: dict[str, Any]) -> None:
    crm = world["crm"]
    with crm.session() as s:
        a = s.attachments.add(world["mine"], "scan.pdf", io.BytesIO(PDF))
        other = s.attachments.add(world["theirs"], "secret.png", io.BytesIO(PNG))
    with crm.session(actor=REP) as s:
        mine = s.attachments.get(str(a.id))
        mine.sha256 = other.sha256
        mine.size = other.size
        with pytest.raises(ValidationError) as exc:
            s.attachments.update(mine)
        assert exc.value.fields == ["sha256", "size"]
        fresh = s.attachments.get(str(a.id))
        fresh.name = "signed contract.pdf"
        assert s.attachments.update(fresh).version == 2
    with crm.session(actor=REP) as s, s.attachments.open(str(a.id)) as f:
        assert f.read() == PDF


def test_erasing_a_merged_away_customer_takes_the_files_the_merge_moved(world: dict[str, Any]) -> None:
    """A merge moves a duplicate's files to the survivor; erasing the duplicate (by its old id) takes them
    from the survivor too, rows and content, and an unmerge brings nothing of them back."""
    crm, root = world["crm"], world["root"]
    with crm.session() as s:
        dup = s.customers.add(Customer("Mine (dup)", owner_id="u1"))
        moved = s.attachments.add(dup, "passport.png", io.BytesIO(PNG))
        keep = s.attachments.add(world["mine"], "contract.pdf", io.BytesIO(PDF))
        merged = s.customers.merge(str(world["mine"].id), str(dup.id))
    with crm.session() as s:
        assert s.personal.erase(str(dup.id))["attachments"] == 1
    with crm.session() as s:
        assert [a.id for a in s.attachments.find()] == [keep.id]
        with pytest.raises(NotFound):
            s.attachments.get(str(moved.id))
        s.customers.unmerge(str(merged.id))
    with crm.session() as s:
        assert [a.id for a in s.attachments.find()] == [keep.id]
    assert [p.name for p in _blobs(root)] == [keep.sha256]


def test_erasing_an_archived_customer_takes_its_archived_files(world: dict[str, Any]) -> None:
    """Archiving a customer archives its files; erasing the person removes those archived rows and their
    content (unarchiving brings back no file)."""
    import datetime as dt

    from pycrm.domain import utcnow
    from pycrm.io._archive import archive, archived, customers_inactive

    crm, root = world["crm"], world["root"]
    with crm.session() as s:
        gone = s.customers.add(Customer("Dormant Ltd"))
        s.attachments.add(gone, "id-card.png", io.BytesIO(PNG))
        keep = s.attachments.add(world["theirs"], "contract.pdf", io.BytesIO(PDF))
    later = utcnow() + dt.timedelta(days=1000)
    done = archive(crm, [customers_inactive(730)], as_of=later)
    assert str(gone.id) in done.moved["customers"] and done.moved["attachments"]
    with crm.session() as s:
        assert sorted(a.name for a in archived(s, "attachments")) == ["contract.pdf", "id-card.png"]
        s.personal.erase(str(gone.id))
    with crm.session() as s:  # the other customer's archived file and its content stay
        assert [a.id for a in archived(s, "attachments")] == [keep.id]
    assert [p.name for p in _blobs(root)] == [keep.sha256]
