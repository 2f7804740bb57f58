"""The three speed targets of issue 2, each measured side by side with its floor in the same run.

- ``add_many``: 100,000 customers into a SQLite file, vs email-validator + phonenumbers alone plus raw
  ``sqlite3.executemany`` of the resulting rows (target <= 1.5x).
- ``lookup``: ``get`` by id and ``find(where={"emails": x})`` on a 1,000,000-customer SQLite store, vs the
  same lookup as a prepared raw ``sqlite3`` statement on the same file (target: median <= 3x).
- ``memory``: the memory adapter holding 1,000,000 customers: peak RSS and bytes per customer beyond the
  strings themselves (target <= 1 KiB), next to a plain-tuple layout of the same strings.

Each ``bench_*`` function returns a dict with ``rows`` (figures for the table) and ``details``.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import itertools
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _data import DATA_VERSION, Row, customer_rows
from _util import RESULTS, profile_call, summary

__all__ = ["BENCHMARKS", "Config", "bench_add_many", "bench_lookup", "bench_memory"]

SEED = 20240601


@dataclass
class Config:
    n_add: int = 100_000
    n_store: int = 1_000_000
    n_memory: int = 1_000_000
    repeat: int = 3
    samples: int = 2_000
    profile: bool = False
    quick: bool = False
    log: Callable[[str], None] = print
    profiles: dict[str, str] = field(default_factory=dict)


def _figure(
    name: str, pycrm: float, floor: float, unit: str, target: float | None, *, ratio_target: bool = True, note: str = ""
) -> dict[str, Any]:
    """One line of the table. ``target`` is a ratio (``ratio_target``) or an absolute ceiling in ``unit``."""
    ratio = pycrm / floor if floor else float("nan")
    if target is None:
        ok = None
    elif ratio_target:
        ok = ratio <= target
    else:
        ok = pycrm <= target
    return {
        "figure": name,
        "pycrm": pycrm,
        "floor": floor,
        "unit": unit,
        "ratio": ratio,
        "target": target,
        "ratio_target": ratio_target,
        "ok": ok,
        "note": note,
    }


def sql_adapter_error() -> str | None:
    """None when ``pycrm.open("sqlite:///...")`` works; else why not (the SQL adapter may not exist yet)."""
    import tempfile

    import pycrm

    with tempfile.TemporaryDirectory() as d:
        try:
            pycrm.open(f"sqlite:///{d}/probe.db").close()
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
    return None


# --------------------------------------------------------------------------------------------------
# Schema discovery: the raw-sqlite3 floors use the adapter's own tables, found by name.
# --------------------------------------------------------------------------------------------------


@dataclass
class Schema:
    customers: str
    customer_cols: list[str]
    emails: str | None  # child table of normalized e-mail addresses
    email_fk: str | None
    email_value: str | None
    phones: str | None
    phone_fk: str | None
    phone_value: str | None
    ddl: list[str]
    table_sql: dict[str, list[str]]  # CREATE TABLE + CREATE INDEX statements per table
    columns: dict[str, list[tuple[str, bool]]]  # (name, NOT NULL without default) per table
    journal_mode: str

    def key(self) -> str:
        return hashlib.sha1("\n".join(self.ddl).encode()).hexdigest()[:10]


def _columns(con: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]


def _child(con: sqlite3.Connection, tables: list[str], word: str, parent: str) -> tuple[str | None, str | None, str | None]:
    """(table, column pointing at the customer, column holding the value) of the customers' ``word`` table."""
    for t in sorted(tables, key=len):
        low = t.lower()
        if word not in low or "customer" not in low:
            continue
        cols = _columns(con, t)
        fks = [r[3] for r in con.execute(f'PRAGMA foreign_key_list("{t}")') if r[2] == parent]
        fk = fks[0] if fks else next((c for c in cols if c.lower() in ("customer_id", "owner_id", "entity_id")), None)
        value = next((c for c in cols if c.lower() in ("value", word[:-1], "normalized", "address", "e164", "number")), None)
        if fk and value:
            return t, fk, value
    return None, None, None


def discover_schema(path: Path) -> Schema:
    """Find the customers table and its e-mail and phone child tables in a pycrm SQLite file."""
    con = sqlite3.connect(path)
    try:
        rows = con.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type DESC, name"
        ).fetchall()  # tables before indexes
        tables = [n for t, n, _, _ in rows if t == "table"]
        customers = next((t for t in tables if t.lower() in ("customers", "customer", "crm_customers")), None)
        if customers is None:
            raise RuntimeError(f"no customers table among {tables}; update benchmarks/bench_core.py")
        ddl = [s for _, _, _, s in rows]
        for version_table in [t for t in tables if "alembic" in t.lower()]:
            ddl += [f"{version_table} {v}" for (v,) in con.execute(f'SELECT * FROM "{version_table}"')]
        table_sql: dict[str, list[str]] = {}
        for _, _, tbl, sql in rows:
            table_sql.setdefault(tbl, []).append(sql)
        columns = {
            t: [(r[1], bool(r[3]) and r[4] is None and not r[5]) for r in con.execute(f'PRAGMA table_info("{t}")')]
            for t in tables
        }
        journal = str(con.execute("PRAGMA journal_mode").fetchone()[0])
        e = _child(con, tables, "emails", customers)
        p = _child(con, tables, "phones", customers)
        return Schema(
            customers, _columns(con, customers), *e, *p, ddl=ddl, table_sql=table_sql, columns=columns, journal_mode=journal
        )
    finally:
        con.close()


def _empty_store_schema(workdir: Path) -> Schema:
    """The schema ``pycrm.open`` creates, read from a fresh empty store."""
    import pycrm

    probe = workdir / "schema-probe.db"
    _fresh(probe)
    pycrm.open(f"sqlite:///{probe}").close()
    try:
        return discover_schema(probe)
    finally:
        _fresh(probe)


# --------------------------------------------------------------------------------------------------
# 1. add_many
# --------------------------------------------------------------------------------------------------


def _fresh(path: Path) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _row_maker(schema: Schema, table: str, exprs: dict[str, str], args: str) -> tuple[str, Callable[..., tuple[Any, ...]]]:
    """(INSERT statement, a function building one row tuple) for ``table`` of the adapter's schema; columns
    not in ``exprs`` get NULL (and a required one without a default is an error to fix here)."""
    cols = schema.columns[table]
    missing = [c for c, required in cols if required and c not in exprs]
    if missing:
        raise RuntimeError(f"floor: no value for required column(s) {missing} of {table}; update bench_core.py")
    body = ", ".join(exprs.get(c, "None") for c, _ in cols)
    make = eval(f"lambda {args}: ({body},)", {"json": json})
    names = ", ".join(f'"{c}"' for c, _ in cols)
    marks = ", ".join("?" for _ in cols)
    return f'INSERT INTO "{table}" ({names}) VALUES ({marks})', make


def floor_add(rows: Sequence[Row], path: Path, schema: Schema) -> dict[str, float]:
    """Validate with email-validator and phonenumbers alone, then raw ``executemany`` in one transaction
    into the adapter's own customers, e-mail and phone tables (same DDL, indexes, foreign keys on, same
    journal mode)."""
    import email_validator
    import phonenumbers

    assert schema.emails and schema.phones and schema.email_fk and schema.phone_fk
    validate_email = email_validator.validate_email
    parse, is_valid, fmt = phonenumbers.parse, phonenumbers.is_valid_number, phonenumbers.format_number
    e164 = phonenumbers.PhoneNumberFormat.E164
    cust_sql, make_customer = _row_maker(
        schema,
        schema.customers,
        {
            "id": "cid",
            "version": "1",
            "created_at": "now",
            "updated_at": "now",
            "name": "name",
            "kind": "kind",
            "status": "'lead'",
            "emails": "ej",
            "phones": "pj",
            "addresses": "'[]'",
            "tags": "'[]'",
            "custom": "'{}'",
        },
        "cid, now, name, kind, ej, pj",
    )
    email_sql, make_email = _row_maker(schema, schema.emails, {schema.email_fk: "cid", schema.email_value: "v"}, "cid, v")
    phone_sql, make_phone = _row_maker(schema, schema.phones, {schema.phone_fk: "cid", schema.phone_value: "v"}, "cid, v")
    dumps = json.dumps
    _fresh(path)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute(f"PRAGMA journal_mode = {schema.journal_mode}")
    con.execute("PRAGMA foreign_keys = ON")
    for t in (schema.customers, schema.emails, schema.phones):
        for stmt in schema.table_sql[t]:
            con.execute(stmt)
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(" ")
    customers, emails, phones = [], [], []
    for i, (name, kind, email, phone) in enumerate(rows):
        e = validate_email(email, check_deliverability=False).normalized.lower()
        num = parse(phone, "CN")
        if not is_valid(num):
            raise ValueError(phone)
        p = fmt(num, e164)
        cid = f"01J{i:023d}"
        customers.append(make_customer(cid, now, name, kind, dumps([e]), dumps([p])))
        emails.append(make_email(cid, e))
        phones.append(make_phone(cid, p))
    t1 = time.perf_counter()
    con.execute("BEGIN")
    con.executemany(cust_sql, customers)
    con.executemany(email_sql, emails)
    con.executemany(phone_sql, phones)
    con.execute("COMMIT")
    t2, c2 = time.perf_counter(), time.process_time()
    con.close()
    return {"total": t2 - t0, "validate": t1 - t0, "insert": t2 - t1, "cpu": c2 - c0}


def pycrm_add(rows: Sequence[Row], path: Path) -> dict[str, float]:
    """Customer objects from the raw strings + ``add_many`` + commit, in one session, the audit trail on
    (the default, said here so the figure cannot silently lose it)."""
    import pycrm

    Customer = pycrm.Customer
    _fresh(path)
    crm = pycrm.open(f"sqlite:///{path}", default_region="CN", audit=True)
    try:
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        with crm.session() as s:
            cs = [Customer(name, kind=kind, emails=[email], phones=[phone]) for name, kind, email, phone in rows]
            t1 = time.perf_counter()
            s.customers.add_many(cs)
            t2 = time.perf_counter()
        t3, c3 = time.perf_counter(), time.process_time()
    finally:
        crm.close()
    del cs
    return {"total": t3 - t0, "construct": t1 - t0, "add_many": t2 - t1, "commit": t3 - t2, "cpu": c3 - c0}


def _count(path: Path, table: str) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
    finally:
        con.close()


def bench_add_many(cfg: Config) -> dict[str, Any]:
    n = cfg.n_add
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = list(customer_rows(n, SEED))
    floor_path, pycrm_path = RESULTS / "add-floor.db", RESULTS / "add-pycrm.db"
    schema = _empty_store_schema(RESULTS)
    cfg.log(f"add_many: {n:,} customers, {cfg.repeat} rounds, floor and pycrm alternating")
    floors: list[dict[str, float]] = []
    ours: list[dict[str, float]] = []
    try:
        for r in range(cfg.repeat):
            floors.append(floor_add(rows, floor_path, schema))
            gc.collect()
            ours.append(pycrm_add(rows, pycrm_path))
            gc.collect()
            cfg.log(f"  round {r + 1}: floor {floors[-1]['total']:.2f} s, pycrm {ours[-1]['total']:.2f} s")
        stored = _count(pycrm_path, schema.customers)
        if stored != n:
            raise RuntimeError(f"pycrm stored {stored} customers, expected {n}")
        if cfg.profile:
            cfg.profiles["add_many"] = profile_call(lambda: pycrm_add(rows, pycrm_path), RESULTS / "add_many.prof")
    finally:
        for p in (floor_path, pycrm_path):
            _fresh(p)

    def med(runs: list[dict[str, float]], k: str) -> float:
        return statistics.median(x[k] for x in runs)

    ft, pt = med(floors, "total"), med(ours, "total")
    label = f"add_many {n:,} customers, audit trail on"
    out = [
        _figure(f"{label} (median of {cfg.repeat})", pt, ft, "s", 1.5),
        _figure("  per customer", pt / n, ft / n, "s", None),
        _figure("  CPU time of this process (steadier on a shared machine)", med(ours, "cpu"), med(floors, "cpu"), "s", None),
        _figure("  pycrm: build Customer objects | floor: validate", med(ours, "construct"), med(floors, "validate"), "s", None),
        _figure(
            "  pycrm: add_many + commit | floor: executemany",
            med(ours, "add_many") + med(ours, "commit"),
            med(floors, "insert"),
            "s",
            None,
        ),
    ]
    floor_ddl = [x for t in (schema.customers, schema.emails, schema.phones) for x in schema.table_sql[t or ""]]
    return {
        "rows": out,
        "details": {
            "n": n,
            "floor_runs": floors,
            "pycrm_runs": ours,
            "audit": True,
            "floor_ddl": floor_ddl,
            "journal_mode": schema.journal_mode,
        },
    }


# --------------------------------------------------------------------------------------------------
# 2. lookups on a big store
# --------------------------------------------------------------------------------------------------

BUILD_CHUNK = 50_000


def _store_paths(n: int, schema: Schema) -> tuple[Path, Path]:
    stem = f"store-{n}-d{DATA_VERSION}-s{SEED}-{schema.key()}"
    return RESULTS / f"{stem}.db", RESULTS / f"{stem}.json"


def build_store(cfg: Config, n: int, path: Path, meta_path: Path) -> dict[str, Any]:
    """Fill a SQLite store with ``n`` customers through ``add_many`` in chunks; keep a seeded sample of
    (id, stored e-mail, raw e-mail) for the lookups."""
    import pycrm

    Customer = pycrm.Customer
    want = min(n, cfg.samples * 2 + 400)  # two disjoint samples (timing, warm-up) with room to spare
    picked = set(random.Random(SEED + 1).sample(range(n), want))
    sample: list[dict[str, Any]] = []
    _fresh(path)
    tmp = Path(f"{path}.building")
    _fresh(tmp)
    crm = pycrm.open(f"sqlite:///{tmp}", default_region="CN")
    t0 = time.perf_counter()
    rows = customer_rows(n, SEED)
    done = 0
    try:
        while done < n:
            chunk = list(itertools.islice(rows, BUILD_CHUNK))
            with crm.session() as s:
                cs = [Customer(name, kind=kind, emails=[email], phones=[phone]) for name, kind, email, phone in chunk]
                s.customers.add_many(cs)
            for j, c in enumerate(cs):
                if done + j in picked:
                    sample.append({"i": done + j, "id": c.id, "email": c.emails[0].value, "raw_email": chunk[j][2]})
            done += len(chunk)
            el = time.perf_counter() - t0
            cfg.log(f"  built {done:,}/{n:,} customers ({el:.0f} s, ~{el / done * (n - done):.0f} s to go)")
    finally:
        crm.close()
    for suffix in ("-wal", "-shm", "-journal"):
        if Path(f"{tmp}{suffix}").exists():
            # checkpoint/close cleanly so the cached file stands alone
            con = sqlite3.connect(tmp)
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            con.close()
            break
    os.replace(tmp, path)
    _fresh(tmp)
    random.Random(SEED + 2).shuffle(sample)
    meta = {"n": n, "build_seconds": time.perf_counter() - t0, "sample": sample}
    meta_path.write_text(json.dumps(meta))
    return meta


def _time_calls(fn: Callable[[Any], Any], args: Sequence[Any]) -> list[float]:
    pc = time.perf_counter_ns
    out = []
    for a in args:
        t = pc()
        fn(a)
        out.append((pc() - t) / 1e9)
    return out


def bench_lookup(cfg: Config) -> dict[str, Any]:
    import pycrm

    n = cfg.n_store
    RESULTS.mkdir(parents=True, exist_ok=True)
    schema = _empty_store_schema(RESULTS)
    path, meta_path = _store_paths(n, schema)
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        cfg.log(f"lookup: reusing cached {n:,}-customer store {path.name}")
    else:
        cfg.log(f"lookup: building a {n:,}-customer store {path.name} (cached for later runs)")
        meta = build_store(cfg, n, path, meta_path)
    sample = meta["sample"]
    k = min(cfg.samples, len(sample) // 2)
    timed, warm = sample[:k], sample[k : 2 * k]
    if schema.emails is None:
        raise RuntimeError(f"found no customer e-mail table in {schema.ddl}; update discover_schema()")

    cols = ", ".join(f'c."{c}"' for c in schema.customer_cols)
    raw_get_sql = f'SELECT {cols} FROM "{schema.customers}" c WHERE c.id = ?'
    raw_find_sql = (
        f'SELECT {cols} FROM "{schema.customers}" c JOIN "{schema.emails}" e ON e."{schema.email_fk}" = c.id '
        f'WHERE e."{schema.email_value}" = ?'
    )
    con = sqlite3.connect(path)
    cur = con.cursor()

    def raw_get(i: str) -> Any:
        row = cur.execute(raw_get_sql, (i,)).fetchone()
        assert row is not None
        return row

    def raw_find(e: str) -> Any:
        rows = cur.execute(raw_find_sql, (e,)).fetchall()
        assert len(rows) == 1
        return rows

    crm = pycrm.open(f"sqlite:///{path}", default_region="CN")
    results: dict[str, list[float]] = {}
    try:
        with crm.session() as s:  # a fresh session, used for every pycrm lookup
            get, find = s.customers.get, s.customers.find
            from pycrm import EmailAddress

            pre = {x["email"]: EmailAddress.parse(x["email"]) for x in timed + warm}

            def p_get(i: str) -> Any:
                return get(i)

            def p_find(e: str) -> Any:
                found = find(where={"emails": e})
                assert len(found) == 1
                return found

            def p_find_pre(e: str) -> Any:
                return find(where={"emails": pre[e]})

            checks = [
                ("get", raw_get, p_get, "id"),
                ("find", raw_find, p_find, "email"),
            ]
            extras = [
                ("find_raw_email", p_find, "raw_email"),
                ("find_parsed_email", p_find_pre, "email"),
            ]
            # warm both sides (caches, statement caches), then time: floor, pycrm, floor, pycrm
            for _, rf, pf, key in checks:
                _time_calls(rf, [x[key] for x in warm])
                _time_calls(pf, [x[key] for x in warm])
            for name, rf, pf, key in checks:
                args = [x[key] for x in timed]
                a1 = _time_calls(rf, args)
                b1 = _time_calls(pf, args)
                a2 = _time_calls(rf, args)
                b2 = _time_calls(pf, args)
                results[f"{name}_floor"] = a1 + a2
                results[f"{name}_pycrm"] = b1 + b2
            for name, fn, key in extras:
                results[name] = _time_calls(fn, [x[key] for x in timed])
            if cfg.profile:
                ids = [x["id"] for x in timed]
                emails = [x["email"] for x in timed]

                def loop() -> None:
                    for _ in range(5):
                        for i in ids:
                            get(i)
                        for e in emails:
                            find(where={"emails": e})

                cfg.profiles["lookup"] = profile_call(loop, RESULTS / "lookup.prof")
    finally:
        crm.close()
        con.close()

    st = {k: summary(v) for k, v in results.items()}
    out = []
    for name, label in (("get", "get(id)"), ("find", 'find(where={"emails": x})')):
        f, p = st[f"{name}_floor"], st[f"{name}_pycrm"]
        out.append(_figure(f"{label} on {n:,} median", p["median"], f["median"], "s", 3.0))
        out.append(_figure(f"{label} on {n:,} p95", p["p95"], f["p95"], "s", None))
    out.append(
        _figure("  find, e-mail as typed (mixed case)", st["find_raw_email"]["median"], st["find_floor"]["median"], "s", None)
    )
    out.append(
        _figure("  find, EmailAddress already parsed", st["find_parsed_email"]["median"], st["find_floor"]["median"], "s", None)
    )
    return {
        "rows": out,
        "details": {
            "n": n,
            "store": str(path),
            "samples": k,
            "build_seconds": meta.get("build_seconds"),
            "floor_sql": {"get": raw_get_sql, "find": raw_find_sql},
            "stats": st,
        },
    }


# --------------------------------------------------------------------------------------------------
# 3. memory adapter
# --------------------------------------------------------------------------------------------------


def _memory_child(mode: str, n: int) -> dict[str, Any]:
    child = Path(__file__).resolve().parent / "_memory_child.py"
    proc = subprocess.run([sys.executable, str(child), mode, str(n), str(SEED)], capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"memory child ({mode}) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def bench_memory(cfg: Config) -> dict[str, Any]:
    n = cfg.n_memory
    cfg.log(f"memory: {n:,} customers in the memory adapter (own process), then the plain-tuple floor")
    ours = _memory_child("pycrm", n)
    cfg.log(f"  pycrm: {ours['beyond_strings_per_customer']:.0f} B/customer beyond strings, load {ours['load_seconds']:.0f} s")
    floor = _memory_child("plain", n)
    if cfg.profile:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import _memory_child as mc

        small = min(n, 100_000)
        cfg.profiles["memory"] = profile_call(lambda: mc.load_pycrm(small, SEED), RESULTS / "memory_load.prof")
    peak = max(ours["peak_rss"], ours["rss_after"])
    floor_peak = max(floor["peak_rss"], floor["rss_after"])
    out = [
        _figure(
            f"memory {n:,} customers: B/customer beyond strings",
            ours["beyond_strings_per_customer"],
            floor["beyond_strings_per_customer"],
            "B",
            1024,
            ratio_target=False,
        ),
        _figure("  RSS growth per customer (incl. strings)", ours["bytes_per_customer"], floor["bytes_per_customer"], "B", None),
        _figure("  string payload per customer", ours["str_bytes"] / n, floor["str_bytes"] / n, "B", None),
        _figure("  peak RSS of the process", peak, floor_peak, "B", None),
        _figure("  load time", ours["load_seconds"], floor["load_seconds"], "s", None),
    ]
    return {"rows": out, "details": {"pycrm": ours, "floor": floor}}


BENCHMARKS: dict[str, Callable[[Config], dict[str, Any]]] = {
    "add_many": bench_add_many,
    "lookup": bench_lookup,
    "memory": bench_memory,
}
