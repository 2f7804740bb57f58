"""Inserts of many rows (storage/sql/bulk.py): COPY on PostgreSQL, the driver's multi-row INSERT on MariaDB.

The same writes (``add_many`` of every column type, an import through prepared rows and one through
entities, an encrypted field with its blind index, the change feed and the audit trail) are run against a
fresh store three ways: one ``INSERT`` a row (the reference), ``executemany`` (the path before COPY) and the
adapter's own; every table must then hold exactly the same rows. Time and ids are fixed for the runs, so
even the audit trail's hash chain must match. Values that need escaping in COPY's text format (tabs,
newlines, backslashes, ``\\N``, control characters next to NUL, Chinese text, long text) come back as they
went in, and a write that fails in its last batch leaves nothing behind.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

import pycrm
from pycrm import Contact, Customer, Interaction, Money, Order, Task, ValidationError
from pycrm.domain import new_id, utcnow
from pycrm.domain._checks import new_ids
from pycrm.io import ImportRejected, import_file
from pycrm.security import KeyRing
from pycrm.storage.sql import bulk
from tests.conftest import store_url_for

KEYRING = KeyRing({"k1": bytes(range(32))}, active="k1", index_key=bytes(range(32, 64)))
ENCRYPTED = {"customers": ["custom.national_id"]}
AT = dt.datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=dt.UTC)

#: Text that COPY's text format must escape, or that a careless encoder would change.
TRICKY = [
    "tab\there\tand there",
    "line\nbreak\r\nand carriage\rreturn",
    "back\\slash \\N \\. \\t \\x41 end\\",
    "\\N",
    "\\.",
    "中文客户 张三（北京）有限公司",
    "emoji 😀 and 𝄞 outside the BMP",
    "\x01\x02 control \x1f\x7f next to NUL's place",
    "\u2028line separator\u2029paragraph",
    "quotes ' \" ; -- /* */ %s %(x)s ? :x $1",
    "  spaces around  ",
    "",
]
LONG = "长文本 with \\ and \t " * 4000  # ~80,000 characters


def _paths() -> list[Any]:
    return [pytest.param(a, id=a, marks=getattr(pytest.mark, a)) for a in ("postgres", "mysql")]


@pytest.fixture(params=_paths())
def server(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every pycrm module's ``utcnow`` gives :data:`AT` and ``new_id``/``new_ids`` count: two runs write the same
    rows."""
    counter = itertools.count(1)
    for name, module in list(sys.modules.items()):
        if not name.startswith("pycrm"):
            continue
        if getattr(module, "utcnow", None) is utcnow:
            monkeypatch.setattr(module, "utcnow", lambda: AT)
        if getattr(module, "new_id", None) is new_id:
            monkeypatch.setattr(module, "new_id", lambda: f"{next(counter):032x}")
        if getattr(module, "new_ids", None) is new_ids:  # add_many's ids, made together
            monkeypatch.setattr(module, "new_ids", lambda n: [f"{next(counter):032x}" for _ in range(n)])


def _one_row_at_a_time(cur: Any, stmt: Any, rows: list[tuple[Any, ...]]) -> None:
    """The reference path: one INSERT statement a row."""
    for row in rows:
        cur.execute(stmt.sql, stmt.bind(row))


def _use(path: str, monkeypatch: pytest.MonkeyPatch, seen: list[tuple[str | None, int]]) -> None:
    from pycrm.storage.sql import store

    if path == "rowwise":
        monkeypatch.setattr(store, "insert_many", _one_row_at_a_time)
        return
    if path == "executemany":
        monkeypatch.setattr(bulk, "COPY_MIN_ROWS", 10**9)

    def spy(cur: Any, stmt: Any, rows: list[tuple[Any, ...]]) -> None:
        seen.append((stmt.copy, len(rows)))
        bulk.insert_many(cur, stmt, rows)

    monkeypatch.setattr(store, "insert_many", spy)


def _write_csv(path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["name", "email", "phone", "tags", "external_id", "note"])
        for i in range(30):
            text = TRICKY[i % len(TRICKY)]
            w.writerow(
                [
                    f"导入 {i} {text}".strip() or "x",
                    f"imp{i}@example.com",
                    f"1390000{i:04d}",
                    "vip;b2b" if i % 3 else "",
                    f"E{i}",
                    text,
                ]
            )


def _scenario(url: str, tmp_path: Path) -> None:
    """The writes compared between paths (time and ids frozen by the caller)."""
    _write_csv(tmp_path / "in.csv")
    with pycrm.open(url, default_region="CN") as crm:
        # prepared rows: made by the converting step, inserted as they are
        report = import_file(
            crm, tmp_path / "in.csv", workers=1, batch_size=16, key="custom.external_id", mapping={"note": "custom.note"}
        )
        assert report.created == 30
    with pycrm.open(url, default_region="CN", keyring=KEYRING, encrypted=ENCRYPTED) as crm:
        # an encrypted field: the import goes through entities (add_many), sealed, with the blind index
        with (tmp_path / "sealed.csv").open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(
                [["name", "national_id", "note"]] + [[f"密 {i}", f"44030419851212{i:04d}", t] for i, t in enumerate(TRICKY)]
            )
        report = import_file(
            crm, tmp_path / "sealed.csv", workers=1, mapping={"national_id": "custom.national_id", "note": "custom.note"}
        )
        assert report.created == len(TRICKY)
        _add_many(crm)


def _add_many(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        customers = [
            Customer(
                (TRICKY[i % len(TRICKY)] or "empty") + f" #{i}",
                kind="person" if i % 2 else "company",
                emails=[f"c{i}@example.com", f"C{i}.alt@Example.com"] if i % 4 else [],
                phones=[f"13800{i:06d}"] if i % 3 else [],
                country="CN" if i % 5 else None,
                category=TRICKY[(i + 3) % len(TRICKY)] or None,
                tags=[t for t in ("vip", TRICKY[i % len(TRICKY)][:100]) if t] if i % 2 else [],
                custom={
                    "note": TRICKY[(i + 1) % len(TRICKY)],
                    "long": LONG if i == 7 else "short",
                    "n": i,
                    "ok": bool(i % 2),
                    "national_id": f"1101011990030{i:05d}",
                },
            )
            for i in range(24)
        ]
        s.customers.add_many(customers)
        ids = [c.id for c in customers]
        s.contacts.add_many(
            Contact(ids[i], TRICKY[i % len(TRICKY)] or "x", "李", is_primary=bool(i % 2), consent={"email": bool(i % 3)})
            for i in range(12)
        )
        s.orders.add_many(
            Order(ids[i % 5], AT - dt.timedelta(days=i, microseconds=i), Money(f"{i * 1000}.{i:02d}", "CNY"), order_no=f"NO\t{i}")
            for i in range(12)
        )
        s.tasks.add_many(Task(TRICKY[i % len(TRICKY)] or "t", AT + dt.timedelta(hours=i), done=bool(i % 2)) for i in range(10))
        s.interactions.add_many(
            Interaction(ids[i], "note", AT, TRICKY[i % len(TRICKY)] or "s", LONG if i == 0 else TRICKY[i % len(TRICKY)])
            for i in range(9)
        )


_ENVELOPE = re.compile(r"enc:v1:k1:[A-Za-z0-9_=-]+")


def _dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted; sealed values (random nonces) as one marker, JSON as stored text."""
    engine = sa.create_engine(url)
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        out = {}
        with engine.connect() as conn:
            for t in meta.sorted_tables:
                # JSON as the text stored (PostgreSQL's json type keeps it verbatim), not parsed
                cols = [sa.cast(c, sa.Text) if isinstance(c.type, sa.JSON) else c for c in t.columns]
                rows = conn.execute(sa.select(*cols)).all()
                out[t.name] = sorted(
                    (tuple(_ENVELOPE.sub("enc:<sealed>", v) if isinstance(v, str) else v for v in r) for r in rows), key=repr
                )
        return out
    finally:
        engine.dispose()


def _read_back(url: str) -> list[Any]:
    """Every customer as data, encrypted fields opened, and which customers its national id finds (blind index)."""
    with pycrm.open(url, default_region="CN", keyring=KEYRING, encrypted=ENCRYPTED) as crm, crm.session() as s:
        out = []
        for c in s.customers.iter():
            nid = c.custom.get("national_id")
            found = [x.id for x in s.customers.find({"custom.national_id": nid})] if nid else []
            out.append((attrs.asdict(c), found))
        return out


def test_every_insert_path_writes_the_same_rows(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dumps = {}
    entities = {}
    seen: list[tuple[str | None, int]] = []
    for path in ("rowwise", "executemany", "bulk"):
        url = store_url_for(server, tmp_path)
        seen.clear()
        with monkeypatch.context() as m:
            _frozen(m)
            _use(path, m, seen)
            _scenario(url, tmp_path)
        dumps[path] = _dump(url)
        entities[path] = _read_back(url)
    assert dumps["rowwise"]["customers"], "the scenario wrote nothing"
    assert len(dumps["rowwise"]["pycrm_audit"]) >= 30 + len(TRICKY) + 24 + 12 + 12 + 10 + 9
    for path in ("executemany", "bulk"):
        for table, rows in dumps["rowwise"].items():
            assert dumps[path][table] == rows, f"{path}: table {table} differs"
        assert entities[path] == entities["rowwise"]
    copied = [n for sql, n in seen if sql is not None and n >= bulk.COPY_MIN_ROWS]  # in the last ("bulk") run
    if server == "postgres":
        assert len(copied) >= 10, seen  # the bulk run went by COPY
    else:
        assert not copied


def _customers(n: int) -> Iterator[Customer]:
    for i in range(n):
        text = TRICKY[i % len(TRICKY)]
        yield Customer(
            f"{text} {i}".strip() or str(i),
            emails=[f"u{i}@example.com"],
            tags=[text[:100]] if text else [],
            custom={"note": text, "long": LONG if i % 10 == 0 else text},
        )


def test_values_that_need_escaping_come_back_unchanged(sql_url: str) -> None:
    wanted = list(_customers(60))
    with pycrm.open(sql_url, default_region="CN") as crm:
        with crm.session() as s:
            s.customers.add_many(wanted)
        with crm.session() as s:
            got = {c.id: c for c in s.customers.iter()}
            for c in wanted:
                back = got[c.id]
                assert (back.name, back.tags, back.custom) == (c.name, c.tags, c.custom)
            for tags in {c.tags for c in wanted if c.tags}:
                (tag,) = tags
                assert {c.id for c in s.customers.find({"tags": tag})} == {c.id for c in wanted if c.tags == tags}, tag
            for c in wanted[:12]:
                assert [x.id for x in s.customers.find({"emails": c.emails[0].value})] == [c.id]
        assert crm.audit.verify().ok


def _refuse_name(url: str, name: str) -> None:
    """A database-side constraint that fails the insert of a customer named ``name`` (not a pycrm check)."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql(
                    f"CREATE TRIGGER refuse BEFORE INSERT ON customers WHEN NEW.name = '{name}' "
                    "BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            else:
                conn.exec_driver_sql(f"ALTER TABLE customers ADD CONSTRAINT refuse CHECK (name <> '{name}')")
    finally:
        engine.dispose()


def _counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            out = {
                t: int(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one())
                for t in ("customers", "customer_emails", "customer_tags", "pycrm_changes", "pycrm_audit")
            }
            out["sequences"] = int(conn.execute(sa.text("SELECT sum(value) FROM pycrm_sequences")).scalar_one() or 0)
            return out
    finally:
        engine.dispose()


def test_a_failure_in_the_last_batch_leaves_the_store_unchanged(sql_url: str, tmp_path: Path) -> None:
    with pycrm.open(sql_url, default_region="CN") as crm, crm.session() as s:
        s.customers.add_many(Customer(f"before {i}", emails=[f"b{i}@example.com"], tags=["old"]) for i in range(10))
    _refuse_name(sql_url, "REFUSED")
    before = _counts(sql_url)
    path = tmp_path / "c.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["name", "email", "tags"])
        w.writerows([f"客户\t{i}\\", f"n{i}@example.com", "vip"] for i in range(199))
        w.writerow(["REFUSED", "last@example.com", "vip"])  # the last batch's last row
    with pycrm.open(sql_url, default_region="CN") as crm:
        for workers in (1, 2):
            with pytest.raises(ImportRejected) as caught:
                import_file(crm, path, batch_size=50, workers=workers)
            assert caught.value.report.problems, caught.value
            assert _counts(sql_url) == before
        with crm.session() as s:
            with pytest.raises(ValidationError):
                s.customers.add_many([*_customers(30), Customer("REFUSED")])
            assert s.customers.count() == 10  # the failed batch left nothing; the session goes on
            s.customers.add_many(_customers(20))
        assert _counts(sql_url)["customers"] == 30
        assert crm.audit.verify().ok
