"""Importing: mapping, conversion, validation, upserts, dry runs, all-or-nothing and per-batch, bad files."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import pycrm
from pycrm.io import ImportRejected, import_file

CUSTOMERS_CN = (
    "客户编号,名称,手机,邮箱,地址,标签\n"
    "C1,华为技术,138 0013 8000,Sales@Huawei.com,深圳,vip;big\n"
    "C2,小米,13900139000,b@mi.com,北京,\n"
)


def _names(crm: pycrm.CRM) -> list[str]:
    with crm.session() as s:
        return sorted(c.name for c in s.customers.find())


def test_chinese_headers_map_and_convert(crm: pycrm.CRM, write_csv: Callable[..., Path]) -> None:
    report = import_file(crm, write_csv("c.csv", CUSTOMERS_CN))
    assert (report.created, report.updated, report.unchanged, report.problems) == (2, 0, 0, [])
    assert report.keys == ["custom.external_id"]
    with crm.session() as s:
        (c,) = s.customers.find({"custom.external_id": "C1"})
    assert c.name == "华为技术"
    assert [str(p) for p in c.phones] == ["+8613800138000"]
    assert [e.value for e in c.emails] == ["sales@huawei.com"]
    assert c.addresses[0].street == "深圳"
    assert c.tags == frozenset({"vip", "big"})


def test_same_file_twice_changes_nothing(crm: pycrm.CRM, write_csv: Callable[..., Path]) -> None:
    path = write_csv("c.csv", CUSTOMERS_CN)
    import_file(crm, path)
    with crm.session() as s:
        before = {c.id: (c.version, c.updated_at) for c in s.customers.find()}
    again = import_file(crm, path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    with crm.session() as s:
        assert {c.id: (c.version, c.updated_at) for c in s.customers.find()} == before  # not re-written


def test_changed_rows_update_by_key(crm: pycrm.CRM, write_csv: Callable[..., Path]) -> None:
    import_file(crm, write_csv("c.csv", CUSTOMERS_CN))
    changed = CUSTOMERS_CN.replace("小米,", "小米科技,")
    report = import_file(crm, write_csv("c2.csv", changed + "C3,OPPO,,,,\n"))
    assert (report.created, report.updated, report.unchanged) == (1, 1, 1)
    with crm.session() as s:
        (c,) = s.customers.find({"custom.external_id": "C2"})
        assert (c.name, c.version) == ("小米科技", 2)
        assert s.customers.count() == 3


def test_upsert_by_email_and_by_phone(crm: pycrm.CRM, write_csv: Callable[..., Path]) -> None:
    import_file(crm, write_csv("a.csv", "name,email\nAcme,info@acme.com\n"))
    r = import_file(crm, write_csv("b.csv", "name,email\nAcme Ltd,INFO@acme.com\n"))
    assert (r.keys, r.created, r.updated) == (["emails"], 0, 1)
    import_file(crm, write_csv("p.csv", "name,phone\nBeta,13800138000\n"))
    r = import_file(crm, write_csv("p2.csv", "name,phone\nBeta,+86 138-0013-8000\n"))
    assert (r.keys, r.unchanged) == (["phones"], 1)
    assert _names(crm) == ["Acme Ltd", "Beta"]


def test_dry_run_reports_every_problem_and_writes_nothing(crm: pycrm.CRM, write_csv: Callable[..., Path]) -> None:
    import_file(crm, write_csv("c.csv", CUSTOMERS_CN))
    bad = CUSTOMERS_CN + "C3,,13900,nope,上海,\nC1,重复,,,,\nC4,新客户,,c@new.com,,\n"
    report = import_file(crm, write_csv("bad.csv", bad), dry_run=True)
    where = sorted((p.row, p.column) for p in report.problems)
    assert where == [(4, "名称"), (4, "手机"), (4, "邮箱"), (5, "客户编号")]
    assert next(p for p in report.problems if p.column == "邮箱").value == "nope"
    assert (report.created, report.unchanged) == (1, 2)
    assert _names(crm) == ["华为技术", "小米"]


def test_all_or_nothing_leaves_store_unchanged(crm: pycrm.CRM, write_csv: Callable[..., Path]) -> None:
    rows = "".join(f"E{i},Name {i},,user{i}@example.com,,\n" for i in range(25))
    path = write_csv("c.csv", "客户编号,名称,手机,邮箱,地址,标签\n" + rows + "E99,Bad,,not-an-email,,\n")
    with pytest.raises(ImportRejected) as info:
        import_file(crm, path, batch_size=10, workers=1)
    (problem,) = info.value.report.problems
    assert (problem.row, problem.column) == (27, "邮箱")
    assert "row 27, column '邮箱'" in str(info.value)
    assert isinstance(info.value, pycrm.ValidationError)
    assert _names(crm) == []


def test_per_batch_commits_clean_batches(crm: pycrm.CRM, write_csv: Callable[..., Path]) -> None:
    rows = [f"E{i},Name {i},,user{i}@example.com,,\n" for i in range(30)]
    rows[15] = "E15,Bad,,not-an-email,,\n"
    path = write_csv("c.csv", "客户编号,名称,手机,邮箱,地址,标签\n" + "".join(rows))
    with pytest.raises(ImportRejected) as info:
        import_file(crm, path, batch_size=10, per_batch=True, workers=1)
    assert info.value.report.committed_rows == 20
    with crm.session() as s:
        assert s.customers.count() == 20  # batches 1 and 3; batch 2 (rows 11-20) had the bad row


def test_session_target_rolls_back_only_the_import(crm: pycrm.CRM, write_csv: Callable[..., Path]) -> None:
    with crm.session() as s:
        s.customers.add(pycrm.Customer("Kept"))
        with pytest.raises(ImportRejected):
            import_file(s, write_csv("c.csv", "name,email\nX,x@x.com\nY,bad\n"))
        s.customers.add(pycrm.Customer("Also kept"))
    assert _names(crm) == ["Also kept", "Kept"]


def test_orders_reference_customers_by_external_id(crm: pycrm.CRM, write_csv: Callable[..., Path]) -> None:
    import_file(crm, write_csv("c.csv", CUSTOMERS_CN))
    orders = (
        '订单号,客户编号,下单时间,金额,币种\nO1,C1,2024/5/1 9:30,"¥1,234.50",\n'
        "O2,C2,2024年5月2日,99 USD,\nO3,C9,2024-05-03,10,\nO4,C1,yesterday,abc,\n"
    )
    report = import_file(crm, write_csv("o.csv", orders), "orders", timezone="Asia/Shanghai", dry_run=True)
    assert sorted((p.row, p.column) for p in report.problems) == [(4, "客户编号"), (5, "下单时间"), (5, "金额")]
    report = import_file(crm, write_csv("o2.csv", orders.rsplit("\nO3", 1)[0] + "\n"), "orders", timezone="Asia/Shanghai")
    assert report.created == 2
    with crm.session() as s:
        (o1,) = s.orders.find({"order_no": "O1"})
        (c1,) = s.customers.find({"custom.external_id": "C1"})
        (o2,) = s.orders.find({"order_no": "O2"})
    assert o1.customer_id == c1.id
    assert (o1.amount.amount, o1.amount.currency) == (Decimal("1234.50"), "CNY")
    assert o1.occurred_at == dt.datetime(2024, 5, 1, 1, 30, tzinfo=dt.UTC)
    assert (o2.amount.amount, o2.amount.currency) == (Decimal("99"), "USD")


def test_explicit_mapping_and_mapping_file(crm: pycrm.CRM, write_csv: Callable[..., Path], tmp_path: Path) -> None:
    path = write_csv("c.csv", "Firma,Telefon,Nummer,Ignorieren\nAcme,13800138000,A-1,x\n")
    mapping_file = tmp_path / "m.json"
    mapping_file.write_text(
        json.dumps({"Firma": "name", "Telefon": "phones", "Nummer": "custom.external_id", "Ignorieren": None})
    )
    report = import_file(crm, path, mapping=mapping_file)
    assert (report.created, report.keys, report.ignored_columns) == (1, ["custom.external_id"], ["Ignorieren"])
    with pytest.raises(pycrm.ValidationError) as info:
        import_file(crm, path, mapping={"Firma": "nmae", "Nope": "name"})
    assert sorted(e.code for e in info.value.errors) == ["bad_target", "unknown_column"]


def test_missing_required_column(crm: pycrm.CRM, write_csv: Callable[..., Path]) -> None:
    with pytest.raises(pycrm.ValidationError) as info:
        import_file(crm, write_csv("c.csv", "email,phone\na@b.com,1\n"))
    assert "row 1, column 'name'" in str(info.value)
    with pytest.raises(pycrm.ValidationError) as info:
        import_file(crm, write_csv("o.csv", "date,amount\n2024-01-01,1\n"), "orders")
    assert {e.field.rsplit("column ", 1)[1] for e in info.value.errors} == {"'customer_id'"}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_encodings_are_detected(crm: pycrm.CRM, write_csv: Callable[..., Path], encoding: str) -> None:
    report = import_file(crm, write_csv("c.csv", CUSTOMERS_CN, encoding))
    assert report.encoding == encoding
    assert _names(crm) == ["华为技术", "小米"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"PK\x03\x04\x14\x00junk", "ZIP archive"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "PNG image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG image"),
        ("name,email\nCaf\u00e9,a@b.com\n".encode("latin-1"), "row 2, column 'name': the text is neither UTF-8 nor GB18030"),
        (b"", "empty"),
    ],
)
def test_bad_files_name_the_place(crm: pycrm.CRM, write_csv: Callable[..., Path], content: bytes, expected: str) -> None:
    with pytest.raises(pycrm.ValidationError) as info:
        import_file(crm, write_csv("bad.csv", content))
    assert expected in str(info.value)
    assert "bad.csv" in str(info.value)
    assert _names(crm) == []


def test_ragged_rows_and_mixed_encoding(crm: pycrm.CRM, write_csv: Callable[..., Path]) -> None:
    report = import_file(crm, write_csv("r.csv", "name,email\nA,a@x.com,extra\nB\nC,c@x.com\n"), dry_run=True)
    assert [(p.row, p.column) for p in report.problems] == [(2, "#3"), (3, "email")]
    assert report.created == 1
    mixed = b"name,email\nC,c@x.com\n" + "D\u00e9,d@x.com\n".encode("latin-1")
    with pytest.raises(pycrm.ValidationError, match="row 3, column 'name'"):
        import_file(crm, write_csv("m.csv", mixed))


def test_xlsx_and_jsonl(crm: pycrm.CRM, write_xlsx: Callable[..., Path], write_csv: Callable[..., Path]) -> None:
    xlsx = write_xlsx(
        "c.xlsx", [["名称", "电话", "客户编号"], ["华为", 13800138000, "C1"], [None, None, None], ["小米", "13900139000", "C2"]]
    )
    assert import_file(crm, xlsx).created == 2
    jsonl = write_csv("c.jsonl", '{"name": "OPPO", "phones": ["+8613700137000"], "tags": ["a", "b"]}\n[1]\n{"name": ""}\n')
    report = import_file(crm, jsonl, dry_run=True)
    assert [(p.row, p.column) for p in report.problems] == [(2, None), (3, "name")]
    with pytest.raises(pycrm.ValidationError, match="not an XLSX workbook"):
        import_file(crm, write_csv("fake.xlsx", "name\nA\n"))
    assert _names(crm) == ["华为", "小米"]


def test_contacts_full_name_and_bad_customer(crm: pycrm.CRM, write_csv: Callable[..., Path]) -> None:
    import_file(crm, write_csv("c.csv", CUSTOMERS_CN))
    path = write_csv("k.csv", "客户编号,姓名,职位,邮箱\nC1,王小明,经理,wang@huawei.com\nC1,Ada Lovelace,CTO,ada@x.com\n")
    assert import_file(crm, path, "contacts").created == 2
    with crm.session() as s:
        names = sorted((k.last_name, k.first_name, k.full_name) for k in s.contacts.find())
    assert names == [("Lovelace", "Ada", "Ada Lovelace"), ("王", "小明", "王小明")]


def test_parallel_validation_matches_serial(crm: pycrm.CRM, write_csv: Callable[..., Path]) -> None:
    rows = "".join(f"E{i},Name {i},1380013{i:04d},user{i}@example.com,,t{i % 3}\n" for i in range(1200))
    path = write_csv("c.csv", "客户编号,名称,手机,邮箱,地址,标签\n" + rows + "E5,dup,,,,\n")
    serial = import_file(crm, path, batch_size=100, workers=1, dry_run=True)
    parallel = import_file(crm, path, batch_size=100, workers=2, dry_run=True)
    assert (
        [str(p) for p in parallel.problems]
        == [str(p) for p in serial.problems]
        == [f"{path}, row 1202, column '客户编号': duplicate key: custom.external_id 'E5' is also on row 7"]
    )
    assert parallel.created == serial.created == 1200


def test_workers_read_addresses_as_the_caller_does(crm: pycrm.CRM, write_csv: Callable[..., Path]) -> None:
    """The workers remember e-mail domain checks; good and bad addresses still read as they do without."""
    domains = ["Example.COM", "例子.中国", "bad_domain.com", "-x.com", "sub.example.com"]
    rows = "".join(f"E{i},Name {i},user{i}@{domains[i % 5]}\n" for i in range(600))
    path = write_csv("c.csv", "客户编号,名称,邮箱\n" + rows)
    serial = import_file(crm, path, batch_size=50, workers=1, dry_run=True)
    parallel = import_file(crm, path, batch_size=50, workers=2, dry_run=True)
    assert [str(p) for p in parallel.problems] == [str(p) for p in serial.problems]
    assert len(serial.problems) == 240 and "bad_domain.com" in str(serial.problems[0])
    assert parallel.created == serial.created == 360


def test_bad_arguments(crm: pycrm.CRM, write_csv: Callable[..., Path]) -> None:
    path = write_csv("c.csv", CUSTOMERS_CN)
    for kwargs in ({"batch_size": 0}, {"timezone": "Mars/Base"}, {"key": "addresses"}, {"workers": 0}, {"format": "pdf"}):
        with pytest.raises(pycrm.ValidationError):
            import_file(crm, path, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(pycrm.ValidationError, match="users"):
        import_file(crm, path, "users")
    with pytest.raises(pycrm.ValidationError, match="no such file"):
        import_file(crm, path.with_name("missing.csv"))


def test_duplicate_keys_found_once_the_key_index_spills_to_disk(
    crm: pycrm.CRM, write_csv: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past SEEN_IN_MEMORY key values the index of keys seen lives in a temporary SQLite file (memory stays
    flat for big files): a repeat far from its first row is still reported with that row, and nothing else is."""
    import pycrm.io._import as imp

    monkeypatch.setattr(imp, "SEEN_IN_MEMORY", 5)
    rows = "".join(f"E{i},Name {i},user{i}@example.com\n" for i in range(40))
    path = write_csv("c.csv", "客户编号,名称,邮箱\n" + rows + "E3,again,x@example.com\nE39,again,y@example.com\n")
    report = import_file(crm, path, batch_size=7, dry_run=True)
    assert [str(p) for p in report.problems] == [
        f"{path}, row 42, column '客户编号': duplicate key: custom.external_id 'E3' is also on row 5",
        f"{path}, row 43, column '客户编号': duplicate key: custom.external_id 'E39' is also on row 41",
    ]
    assert report.created == 40


def test_seen_keys_match_exactly_on_disk() -> None:
    from pycrm.io._import import _SeenKeys

    seen = _SeenKeys(limit=1)
    seen.add({("custom.n", 1): 2, ("custom.n", "1"): 3})
    seen.add({("custom.n", 2.5): 4, ("id", "a"): 5})
    try:
        assert seen.db is not None
        assert seen.lookup(
            [("custom.n", True), ("custom.n", "1"), ("custom.n", 2.5), ("id", "a"), ("id", "b"), ("emails", "a")]
        ) == {
            ("custom.n", True): 2,
            ("custom.n", "1"): 3,
            ("custom.n", 2.5): 4,
            ("id", "a"): 5,
        }
    finally:
        seen.close()


def test_a_rejected_import_leaves_nothing_in_the_change_feed(crm: pycrm.CRM, write_csv: Callable[..., Path]) -> None:
    """Into an open session: the batches written before the bad one are rolled back with their feed entries."""
    rows = "".join(f"E{i},Name {i}\n" for i in range(30)) + "E31,\n"
    path = write_csv("c.csv", "客户编号,名称\n" + rows)
    with crm.session() as s:
        start = s.changes.last_seq()
        with pytest.raises(ImportRejected):
            import_file(s, path, batch_size=10)
        s.customers.add(pycrm.Customer("kept"))
    with crm.session() as s:
        assert [(e.op, e.entity) for e in s.changes.since(start)] == [("create", "customers")]
        assert [c.name for c in s.customers.find()] == ["kept"]


def _snapshot(crm: pycrm.CRM) -> tuple[list[Any], list[Any], list[Any]]:
    """Records (without ids and times), change events and audit diffs of a store, in a comparable form."""
    from pycrm.domain._codec import to_data

    with crm.session() as s:
        records = sorted(
            (json.dumps({k: v for k, v in to_data(c).items() if k not in ("id", "created_at", "updated_at")}, sort_keys=True))
            for c in s.customers.iter()
        )
        events = sorted((e.entity, e.op, e.version, e.fields) for e in s.changes.since(0, 100_000))
        diffs = sorted(
            json.dumps({k: v for k, v in e.diff.items() if k not in ("id", "created_at")}, sort_keys=True)
            for e in s.audit.entries()
        )
    return records, events, diffs


@pytest.mark.parametrize("workers", [1, 2])
def test_rows_prepared_by_the_workers_store_what_entities_would(
    sql_url: str, write_csv: Callable[..., Path], workers: int
) -> None:
    """On a SQL store the converting processes make the new rows and their audit diffs; what lands (records,
    change feed, audit trail that verifies, ids matching the entries) is what ``add_many`` of the same rows
    gives on the memory store."""
    rows = "".join(
        f'E{i},Name {i} "q",1380013{i:04d},User{i}@Example.com,深圳 {i},{"vip;b2b" if i % 3 else ""}\n' for i in range(450)
    )
    path = write_csv("c.csv", "客户编号,名称,手机,邮箱,城市,标签\n" + rows)
    with pycrm.open(sql_url, default_region="CN") as sql, pycrm.open("memory://", default_region="CN") as mem:
        with sql.session() as s:
            assert s._prepared_dialect(pycrm.Customer) in ("sqlite", "postgresql", "mysql")
        got = import_file(sql, path, batch_size=100, workers=workers)
        want = import_file(mem, path, batch_size=100, workers=workers)
        assert got.created == want.created == 450
        assert _snapshot(sql) == _snapshot(mem)
        assert sql.audit.verify()
        with sql.session() as s:
            ids = {c.id for c in s.customers.iter()}
            assert {e.entity_id for e in s.audit.entries()} == ids == {e.id for e in s.changes.since(0, 10_000)}
            one = s.customers.find({"custom.external_id": "E7"})[0]
            assert one.version == 1 and one.created_at == one.updated_at
            assert s.customers.find({"emails": "user7@example.com"})[0].id == one.id
        again = import_file(sql, path, batch_size=100, workers=workers)  # now every row matches: nothing changes
        assert (again.created, again.updated, again.unchanged) == (0, 0, 450)


def test_prepared_rows_are_taken_only_where_nothing_is_checked_row_by_row(sql_url: str) -> None:
    from pycrm.domain import utcnow
    from pycrm.storage.sql.prepared import prepare_rows

    admin = pycrm.User("Root", "root@example.com", roles=["admin"], id="admin-1")
    with pycrm.open(sql_url, default_region="CN") as crm:
        with crm.session() as s:
            dialect = s._prepared_dialect(pycrm.Customer)
        assert dialect is not None
        with crm.session(actor=admin) as s:
            assert s._prepared_dialect(pycrm.Customer) is None
            batch = prepare_rows(pycrm.Customer, [pycrm.Customer("A")], dialect, utcnow(), True)
            with pytest.raises(pycrm.CRMError, match="cannot go into"):
                s.customers._add_prepared(batch)
        other = "mysql" if dialect != "mysql" else "sqlite"
        with crm.session() as s:
            with pytest.raises(pycrm.CRMError, match="cannot go into"):
                s.customers._add_prepared(prepare_rows(pycrm.Customer, [pycrm.Customer("B")], other, utcnow(), True))
            with pytest.raises(pycrm.CRMError, match="audit diffs"):
                s.customers._add_prepared(prepare_rows(pycrm.Customer, [pycrm.Customer("C")], dialect, utcnow(), False))
            taken = pycrm.Customer("D", id="c-taken")
            s.customers.add(taken)
            s.commit()
            with pytest.raises(pycrm.ValidationError, match="exists"):
                s.customers._add_prepared(
                    prepare_rows(pycrm.Customer, [pycrm.Customer("E", id="c-taken")], dialect, utcnow(), True)
                )
            orphan = pycrm.Order("no-such-customer", utcnow(), pycrm.Money("1", "CNY"))
            with pytest.raises(pycrm.ValidationError, match="no customer"):
                s.orders._add_prepared(prepare_rows(pycrm.Order, [orphan], dialect, utcnow(), True))
            assert [c.name for c in s.customers.find()] == ["D"]
            assert s.orders.count() == 0
