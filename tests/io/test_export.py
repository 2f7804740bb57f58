"""Exporting: filters, field choice, every format, round trips, the raw-row path agreeing with entities."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pycrm
from pycrm.domain import Address, Contact, Customer, Interaction, Money, Opportunity, Order, Survey, Ticket
from pycrm.domain._codec import to_data
from pycrm.io import EXPORT_FIELDS, IMPORT_KINDS, export_file, import_file


def _seed(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        c = s.customers.add(
            Customer(
                "Acme, Inc",
                emails=["a@x.com", "b@x.com"],
                phones=["13800138000"],
                tags={"vip", "a;b"},
                custom={"external_id": "C1", "n": 3},
                addresses=[Address(street="1 Rd", city="深圳")],
                status="active",
            )
        )
        s.customers.add(Customer("李雷", kind="person", custom={"external_id": "C2"}))
        assert c.id is not None
        s.contacts.add(Contact(c.id, "Ada", "Lovelace", emails=["ada@x.com"], is_primary=True, consent={"email": True}))
        o = Opportunity(c.id, "Deal", Money("12.50", "EUR"), expected_close=dt.date(2025, 1, 2))
        o.move_to("proposal")
        s.opportunities.add(o)
        t = Ticket(c.id, "Broken", description="line 1\nline 2")
        t.move_to("open")
        s.tickets.add(t)
        s.interactions.add(Interaction(c.id, "call", dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC), subject="hi"))
        s.orders.add(Order(c.id, dt.datetime(2024, 5, 1, 9, 30, 1, 123, tzinfo=dt.UTC), Money("99.9", "CNY"), order_no="O1"))
        sent = dt.datetime(2024, 5, 2, 8, 0, 0, 7, tzinfo=dt.UTC)
        s.surveys.add(Survey(c.id, "nps", sent, score=0, comment="slow, but fixed; 慢", answered_at=sent, ticket_id=t.id))
        s.surveys.add(Survey(c.id, "csat", sent, user_id="u1"))


def _records(crm: pycrm.CRM, kind: str) -> list[dict[str, object]]:
    with crm.session() as s:
        return [{k: v for k, v in to_data(e).items() if k not in ("version", "updated_at")} for e in getattr(s, kind).find()]


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "jsonl"])
def test_export_then_import_gives_the_same_records(crm: pycrm.CRM, tmp_path: Path, fmt: str) -> None:
    _seed(crm)
    copy = pycrm.open("memory://", default_region="CN")
    for kind in IMPORT_KINDS:
        path = tmp_path / f"{kind}.{fmt}"
        assert export_file(crm, path, kind) == len(_records(crm, kind))
        assert import_file(copy, path, kind).created == len(_records(crm, kind))
        assert import_file(copy, path, kind).unchanged == len(_records(crm, kind))  # idempotent
        assert _records(copy, kind) == _records(crm, kind)


def test_raw_rows_and_entities_write_the_same_bytes(sql_url: str, tmp_path: Path) -> None:
    crm = pycrm.open(sql_url, default_region="CN")
    try:
        _seed(crm)
        for kind in IMPORT_KINDS:
            for fmt in ("csv", "jsonl"):
                fields = [*EXPORT_FIELDS[kind], "version", "updated_at"] + (
                    ["custom.external_id", "custom.n"] if kind == "customers" else []
                )
                raw, ent = tmp_path / f"raw.{fmt}", tmp_path / f"ent.{fmt}"
                export_file(crm, raw, kind, fields=fields, raw=True)
                export_file(crm, ent, kind, fields=fields, raw=False)
                assert raw.read_text() == ent.read_text(), (kind, fmt)
    finally:
        crm.close()


def test_where_and_fields(crm: pycrm.CRM) -> None:
    _seed(crm)
    out = io.StringIO()
    n = export_file(crm, out, "customers", where={"status": "active"}, fields=["name", "emails", "custom.external_id"])
    assert n == 1
    assert out.getvalue() == 'name,emails,custom.external_id\n"Acme, Inc",a@x.com; b@x.com,C1\n'
    out = io.StringIO()
    export_file(crm, out, "orders", fields=["amount", "currency", "order_no"], format="jsonl", where={"amount": {"gte": 50}})
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [{"amount": "99.9", "currency": "CNY", "order_no": "O1"}]


def test_bad_export_arguments(crm: pycrm.CRM, tmp_path: Path) -> None:
    with pytest.raises(pycrm.ValidationError) as info:
        export_file(crm, tmp_path / "x.csv", "customers", fields=["name", "nmae"])
    assert info.value.fields == ["fields[1]"]
    with pytest.raises(pycrm.ValidationError):
        export_file(crm, tmp_path / "x.csv", "customers", where={"nope": 1})
    with pytest.raises(pycrm.ValidationError):
        export_file(crm, tmp_path / "x.csv", "users")
    with pytest.raises(pycrm.ValidationError):
        export_file(crm, io.StringIO(), "customers", format="xlsx")


class _MaskingSession(pycrm.storage.Session):
    """A session whose actor sees masked e-mails and only active customers (what the security layer will do)."""

    def _conditions(self, kind, where, action="read"):  # type: ignore[no-untyped-def]
        return super()._conditions(kind, {**(where or {}), "status": "active"}, action)

    def _present(self, kind, entity):  # type: ignore[no-untyped-def]
        if kind is Customer:
            object.__setattr__(entity, "emails", [])
            object.__setattr__(entity, "name", entity.name[0] + "***")
        return entity

    def _raw_rows_ok(self, kind):  # type: ignore[no-untyped-def]
        return False


def test_export_goes_through_scope_and_masking_hooks(crm: pycrm.CRM) -> None:
    _seed(crm)
    s = _MaskingSession(crm.store, default_region="CN")
    try:
        out = io.StringIO()
        assert export_file(s, out, "customers", fields=["name", "emails"]) == 1
    finally:
        s.close()
    assert out.getvalue() == "name,emails\nA***,\n"


def test_raw_rows_agree_with_entities_on_awkward_values(sql_url: str, tmp_path: Path) -> None:
    """Values that defeat the column-at-once shortcuts (separators, quotes, escapes, brackets, line breaks,
    nulls, whole-second times) mixed with plain ones, across several batches: the same bytes either way."""
    crm = pycrm.open(sql_url, default_region="CN")
    awkward_tags = [
        set(),
        {"vip"},
        {"a;b"},
        {'say "hi"'},
        {"[x"},
        {"x]"},
        {"back\\slash"},
        {"中文，逗号"},
        {"a|b", "c"},
        {"tab\there"},
    ]
    names = ["Plain", "Acme, Inc", 'The "Best"', "line\nbreak", "cr\rhere", " spaced ", "深圳 公司", "[bracket"]
    customs: list[dict[str, object]] = [
        {},
        {"external_id": "X"},
        {"n": 3, "f": "1.50", "b": True},
        {"nested": {"a": [1, "b"]}},
        {"s": "é\u2028"},
    ]
    try:
        with crm.session() as s:
            for i in range(60):
                c = Customer(
                    names[i % len(names)] + str(i),
                    emails=[f"u{i}@x.com"] + ([f"v{i}@y.org"] if i % 3 == 0 else []),
                    phones=["13800138000"] if i % 4 == 0 else [],
                    tags=awkward_tags[i % len(awkward_tags)],
                    custom={k: f"{v}{i}" if k == "external_id" else v for k, v in customs[i % len(customs)].items()},
                    addresses=[Address(street="1 Rd", city="深圳")] if i % 2 else [],
                    category=None if i % 5 else "b2b",
                )
                if i % 7 == 0:
                    c.created_at = dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC)  # whole seconds: no fraction written
                s.customers.add(c)
        fields = [*EXPORT_FIELDS["customers"], "version", "updated_at", "custom.external_id", "custom.n"]
        for fmt in ("csv", "jsonl"):
            for batch_size in (7, 5000):
                raw, ent = tmp_path / f"raw.{fmt}", tmp_path / f"ent.{fmt}"
                export_file(crm, raw, "customers", fields=fields, raw=True, batch_size=batch_size)
                export_file(crm, ent, "customers", fields=fields, raw=False, batch_size=batch_size)
                assert raw.read_bytes() == ent.read_bytes(), (fmt, batch_size)
        # one column, blank values: csv.writer quotes a lone empty field
        export_file(crm, tmp_path / "raw1.csv", "customers", fields=["category"], raw=True, batch_size=7)
        export_file(crm, tmp_path / "ent1.csv", "customers", fields=["category"], raw=False, batch_size=7)
        assert (tmp_path / "raw1.csv").read_bytes() == (tmp_path / "ent1.csv").read_bytes()
    finally:
        crm.close()


@given(
    st.integers(1, 4).flatmap(
        lambda width: st.lists(
            st.lists(
                st.one_of(st.none(), st.text(alphabet=st.sampled_from('ab ,"\n\r\x00;[]中'), max_size=6)),
                min_size=width,
                max_size=width,
            ),
            max_size=6,
        )
    )
)
def test_writing_columns_gives_what_csv_writer_gives(rows: list[list[str | None]]) -> None:
    from pycrm.io._formats import open_writer

    header = [f"c{i}" for i in range(len(rows[0]) if rows else 2)]
    got, want = io.StringIO(), io.StringIO()
    w = open_writer(got, "csv", header)
    w.write_columns([[r[j] for r in rows] for j in range(len(header))])
    w.close()
    ref = open_writer(want, "csv", header)
    ref.write_many(rows)
    ref.close()
    assert got.getvalue() == want.getvalue()
