"""Junk in every argument of every public callable: success, or a ``pycrm.CRMError`` -- nothing else.

The callables are found by introspection, so a new public function is covered without editing this file:

* everything callable in ``__all__`` of ``pycrm``, ``pycrm.io``, ``pycrm.analytics``, ``pycrm.dedup``, ``pycrm.automation`` and
  ``pycrm.security`` (functions, and the constructors of entities, value objects, rules and results);
* the public methods of ``CRM`` and of every public object a session carries (the repositories, and
  ``analytics``, ``quality``, ``audit``, ``changes``, ``personal``), called on memory and on SQLite (the SQL adapter
  matters: a driver's ProgrammingError escapes there and not in memory);
* ``pycrm.cli.main``, with each command's own options (read off its parser) followed by junk.

Each parameter gets either a sensible value (by its name, see :func:`sensible`), junk (None, ints of any
size, nan and inf, bytes, odd Unicode, lists, dicts, frozensets, nested, bare objects) or is left out when it
has a default; it is passed by position or by keyword, as the signature allows. A returned iterator is read,
a returned context manager entered, so checks deferred to first use run too. Only the few callables in
:data:`SKIPPED` are left out, each for the reason it gives.
"""

from __future__ import annotations

import datetime as dt
import enum
import importlib
import inspect
import io
import math
import os
import sys
import typing
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import pycrm
from pycrm import Contact, CRMError, Customer, Money, Opportunity, Order, Task, Ticket
from pycrm.cli import COMMANDS, build_parser, main

MODULES = ["pycrm", "pycrm.io", "pycrm.analytics", "pycrm.dedup", "pycrm.security", "pycrm.automation"]
#: The session's public objects whose methods are called (its repositories are found by type).
SESSION_PARTS = ["analytics", "audit", "changes", "personal", "quality"]

#: Left out, each with its reason; everything else public is called.
SKIPPED = {
    "pycrm.CRM": "built by pycrm.open (which is called), around an adapter object",
    "pycrm.Session": "built by CRM.session (which is called), around an adapter object",
    "pycrm.Repository": "built by the session (its methods are called)",
    "pycrm.io.register_section": "adds to the process-wide list of backup sections (for adapter authors)",
    "pycrm.security.register_role": "adds to the process-wide role registry",
    "crm.close": "takes no arguments and ends the store the other calls use",
    "pycrm.automation.Strategy": "a Protocol that assignment strategies implement, not a class to call",
    "pycrm.automation.TimeRule": "the base class of time rules, to extend (its subclasses are called)",
}

ODD_TEXT = [
    "",
    " ",
    "\x00",
    "\ud800",
    "a\udfffb",
    "\u202e\u200b",
    "😀" * 3,
    "İǅß\u0301",
    "\n\r\t",
    "x" * 301,
    "'; DROP TABLE customers; --",
    "%s %(x)s {0}",
    "..",
    "/",
    "memory://",
    "sqlite://",
    "sqlite:///:memory:",
    "NaN",
    "-1",
    "1e309",
    "0001-01-01",
    "9999-12-31T23:59:59+14:00",
    "customers",
    "name",
    "custom.x",
    "id",
    "email",
    "csv",
    "xlsx",
]
ODD_VALUES: list[Any] = [
    2**63,
    -(2**63) - 1,
    2**64,
    10**100,
    -(10**100),
    math.nan,
    math.inf,
    -math.inf,
    Decimal("NaN"),
    Decimal("Infinity"),
    Decimal("1e999999"),
    complex(1, 1),
    dt.date(1, 1, 1),
    dt.datetime.max,
    dt.datetime(2020, 1, 1),  # naive
    dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    dt.timedelta(days=-1),
    b"\xff\xfe",
    bytearray(b"x"),
    object,
    type,
    Ellipsis,
    NotImplemented,
    range(3),
]

hashables = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=6), st.sampled_from(ODD_TEXT))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.binary(max_size=8),
    st.text(max_size=8),
    st.sampled_from(ODD_TEXT),
    st.sampled_from(ODD_VALUES),
    st.builds(object),
)
junk = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(hashables, inner, max_size=3),
        st.frozensets(hashables, max_size=3),
    ),
    max_leaves=6,
)


# ---------------------------------------------------------------- the store the calls work on


class World:
    """A store with one record of each kind, and files to import, restore and export to."""

    def __init__(self, url: str, folder: Path):
        self.folder = folder
        self.crm = pycrm.open(url, default_region="CN")
        at = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
        with self.crm.session() as s:
            a = s.customers.add(Customer("Acme", emails=["a@acme.example"], custom={"tier": "gold"}))
            b = s.customers.add(Customer("Acme Ltd", emails=["a@acme.example"]))
            c = s.customers.add(Customer("Spare"))
            s.contacts.add(Contact(a.id, "Ann", emails=["ann@acme.example"], consent={"email": True}))
            s.opportunities.add(Opportunity(a.id, "Deal", Money(100, "USD")))
            s.tickets.add(Ticket(a.id, "Help"))
            s.orders.add(Order(a.id, at, Money(10, "USD")))
            s.tasks.add(Task("Call", at))
            s.users.add(pycrm.User("Uma", "uma@acme.example", roles=["sales_rep"]))
            merged = s.customers.merge(a.id, [c.id])
        self.ids = [a.id, b.id]
        self.merge_id = merged.id
        self.csv = folder / "in.csv"
        self.csv.write_text("name,email\nZed,zed@z.example\n", encoding="utf-8")
        self.backup = folder / "crm.jsonl"
        pycrm.io.backup(self.crm, self.backup)


def sensible(name: str, w: World, s: Any) -> list[Any]:
    """Good values for a parameter called ``name`` (empty: only junk is tried)."""
    at = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    table: dict[str, list[Any]] = {
        "target": [w.crm, s],
        "crm": [w.crm],
        "session": [s],
        "crm_or_session": [w.crm, s],
        "path": [str(w.csv), str(w.backup), str(w.folder / "out.csv"), str(w.folder / "out.jsonl")],
        "entity": ["customers", "contacts", Customer("New")],
        "entities": [[Customer("Many")]],
        "id": w.ids,
        "survivor_id": w.ids[:1],
        "duplicate_ids": [w.ids[1:]],
        "merge_id": [w.merge_id],
        "ids": [w.ids],
        "customer_id": w.ids[:1],
        "where": [None, {"name": "Acme"}],
        "order_by": ["name", None],
        "limit": [1, None],
        "offset": [0],
        "batch_size": [10],
        "cursor": [0],
        "as_of": [dt.date(2025, 6, 1)],
        "calibration_end": [dt.date(2025, 6, 1)],
        "start": [None, dt.date(2024, 1, 1)],
        "end": [None, dt.date(2026, 1, 1)],
        "period": ["month"],
        "repository": ["customers", "tickets"],
        "days": [30],
        "rules": [None, [pycrm.io.tickets_closed(30)]],
        "name": ["Acme"],
        "first_name": ["Ann"],
        "title": ["Call"],
        "subject": ["Help"],
        "kind": ["company", "call"],
        "amount": [Money(1, "USD"), 1],
        "currency": ["USD"],
        "occurred_at": [at],
        "due_at": [at],
        "at": [at],
        "email": ["x@y.example"],
        "value": ["x@y.example", "+8613800138000"],
        "channel": ["email"],
        "changes": [[]],
        "orders": [[]],
        "opportunities": [[]],
        "tickets": [[]],
        "records": [[]],
        "scores": [[]],
        "text": ["tickets_closed:30"],
        "target_url": ["memory://"],
    }
    return table.get(name, [])


_ENUM_CALL = inspect.Signature([inspect.Parameter("value", inspect.Parameter.POSITIONAL_OR_KEYWORD)])


def arguments(data: st.DataObject, fn: Callable[..., Any], w: World, s: Any) -> tuple[list[Any], dict[str, Any]]:
    """Positional and keyword arguments for ``fn``: per parameter a sensible value, junk, or nothing."""
    try:
        # an enumeration is called with one value: its other parameters build a new enumeration (Python's API)
        sig = _ENUM_CALL if isinstance(fn, enum.EnumMeta) else inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature (an exception class): one or two junk args
        return data.draw(st.lists(junk, max_size=2), label="args"), {}
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    positional = True
    for p in sig.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            if positional:
                args += data.draw(st.lists(junk, max_size=2), label=f"*{p.name}")
            continue
        if p.kind is p.VAR_KEYWORD:
            continue
        good = sensible(p.name, w, s)
        choices = ["junk"] + (["good"] if good else []) + (["omit"] if p.default is not p.empty else [])
        how = data.draw(st.sampled_from(choices), label=f"{p.name}?")
        if how == "omit":
            positional = False  # later parameters go by keyword
            continue
        value = data.draw(st.sampled_from(good) if how == "good" else junk, label=p.name)
        by_position = p.kind is p.POSITIONAL_ONLY or (
            p.kind is p.POSITIONAL_OR_KEYWORD and positional and data.draw(st.booleans(), label=f"{p.name} by position")
        )
        if by_position:
            args.append(value)
        else:
            positional = False
            kwargs[p.name] = value
    return args, kwargs


def use(result: Any) -> None:
    """Run what a call deferred: read an iterator, enter a context manager, close what was opened."""
    if isinstance(result, pycrm.CRM):
        result.close()
    elif isinstance(result, Iterator):
        for _ in zip(range(3), result):
            pass
    elif hasattr(result, "__enter__") and hasattr(result, "__exit__") and not isinstance(result, (io.IOBase,)):
        with result:
            pass


def call(fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], where: str) -> None:
    try:
        use(fn(*args, **kwargs))
    except CRMError:
        pass
    except Exception as exc:
        shown = ", ".join([*(_short(a) for a in args), *(f"{k}={_short(v)}" for k, v in kwargs.items())])
        raise AssertionError(f"{where}({shown}) raised {type(exc).__name__}: {str(exc)[:300]}") from exc


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


# ---------------------------------------------------------------- what is called


def module_callables() -> list[str]:
    out = []
    for name in MODULES:
        module = importlib.import_module(name)
        for attr in module.__all__:
            obj = getattr(module, attr)
            if inspect.ismodule(obj) or not callable(obj) or f"{name}.{attr}" in SKIPPED:
                continue
            if typing.get_origin(obj) is not None:  # a type alias such as Callable[[str, str], Entity | None]
                continue
            out.append(f"{name}.{attr}")
    return out


def _public_methods(obj: Any) -> list[str]:
    return [m for m in dir(obj) if not m.startswith("_") and inspect.ismethod(getattr(obj, m, None))]


def store_callables() -> list[str]:
    """``crm.<method>``, ``crm.audit.<method>`` and ``session.<part>.<method>``, read off a live store."""
    with pycrm.open("memory://") as crm, crm.session() as s:
        out = [f"crm.{m}" for m in _public_methods(crm)] + [f"crm.audit.{m}" for m in _public_methods(crm.audit)]
        repos = [a for a in dir(s) if isinstance(getattr(s, a), pycrm.Repository)]
        for part in [*repos, *SESSION_PARTS]:
            out += [f"session.{part}.{m}" for m in _public_methods(getattr(s, part))]
    return [c for c in out if c not in SKIPPED]


def resolve(path: str, w: World, s: Any) -> Callable[..., Any]:
    head, *rest = path.split(".")
    if head == "session":
        obj: Any = s
    elif head == "crm":
        obj = w.crm
    else:
        module, _, attr = path.rpartition(".")
        return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
    for part in rest:
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


MODULE_CALLABLES = module_callables()
STORE_CALLABLES = store_callables()
#: Parameters through which a module function reaches a store: those run on SQLite too, the others (pure
#: constructors and functions) on memory only, where they behave the same.
STORE_PARAMS = {"target", "crm", "session", "crm_or_session"}


def _reaches_a_store(path: str) -> bool:
    module, _, attr = path.rpartition(".")
    fn = getattr(importlib.import_module(module), attr)
    try:
        return bool(STORE_PARAMS & set(inspect.signature(fn).parameters)) or path == "pycrm.open"
    except (TypeError, ValueError):
        return False


MODULE_CASES = [
    pytest.param(adapter, path, id=f"{adapter}-{path}")
    for path in MODULE_CALLABLES
    for adapter in (["memory", "sqlite"] if _reaches_a_store(path) else ["memory"])
]

#: Examples per callable (``PYCRM_JUNK_EXAMPLES`` raises it for a longer hunt): about 200 callables run on two
#: adapters, so the default keeps the whole module near a minute.
EXAMPLES = int(os.environ.get("PYCRM_JUNK_EXAMPLES", "12"))
JUNK_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # a failure is reported as found: shrinking it against a store is slow
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.fixture(scope="module", params=["memory", "sqlite"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp(f"junk-{request.param}")
    url = "memory://" if request.param == "memory" else f"sqlite:///{folder / 'crm.db'}"
    w = World(url, folder)
    yield w
    w.crm.close()


@pytest.fixture
def in_folder(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """Relative file names land in the store's folder; stdin reads nothing."""
    monkeypatch.chdir(world.folder)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    return world


def test_the_callables_are_found() -> None:
    found = set(MODULE_CALLABLES) | set(STORE_CALLABLES)
    for expected in ["pycrm.open", "pycrm.Customer", "pycrm.PhoneNumber", "pycrm.io.export_file", "pycrm.io.import_file"]:
        assert expected in found
    for part in ["customers.add", "customers.merge", "analytics.rfm", "changes.apply", "personal.export", "audit.history"]:
        assert f"session.{part}" in found
    assert len(found) > 150


@pytest.mark.parametrize(("world", "path"), MODULE_CASES, indirect=["world"])
@JUNK_SETTINGS
@given(data=st.data())
def test_module_callables_take_junk(in_folder: World, path: str, data: st.DataObject) -> None:
    w = in_folder
    with w.crm.session() as s:
        fn = resolve(path, w, s)
        args, kwargs = arguments(data, fn, w, s)
    if any(isinstance(v, pycrm.Session) for v in [*args, *kwargs.values()]):  # the session is used in one
        with w.crm.session() as s:
            args = [s if isinstance(a, pycrm.Session) else a for a in args]
            kwargs = {k: s if isinstance(v, pycrm.Session) else v for k, v in kwargs.items()}
            call(fn, args, kwargs, path)
    else:
        call(fn, args, kwargs, path)


@pytest.mark.parametrize("path", STORE_CALLABLES)
@JUNK_SETTINGS
@given(data=st.data())
def test_store_methods_take_junk(in_folder: World, path: str, data: st.DataObject) -> None:
    w = in_folder
    try:
        with w.crm.session() as s:
            fn = resolve(path, w, s)
            args, kwargs = arguments(data, fn, w, s)
            call(fn, args, kwargs, path)
    except CRMError:  # the commit refused what the call left (a CRMError is an answer)
        pass


# ---------------------------------------------------------------- the command line


def command_options() -> dict[str, list[str]]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    out = {}
    for name in COMMANDS:
        p = sub.choices[name]  # type: ignore[attr-defined]
        out[name] = [o for a in p._actions for o in a.option_strings if o not in ("-h", "--help")]
    return out


OPTIONS = command_options()
cli_words = st.one_of(st.text(max_size=10), st.sampled_from(ODD_TEXT), st.sampled_from(["-", "--", "-o", "memory://"]))


@settings(max_examples=5 * EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_command_line_takes_junk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, data: st.DataObject) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    command = data.draw(st.sampled_from(sorted(OPTIONS)), label="command")
    words = data.draw(st.lists(st.one_of(st.sampled_from(OPTIONS[command] or ["--x"]), cli_words), max_size=6), label="argv")
    argv = [command, *words]
    if command == "demo":  # a demo store takes seconds: keep it in memory and small
        argv += ["--db", "memory://", "--customers", "5"]
    capsys.readouterr()
    try:
        status = main(argv)
    except SystemExit as exc:  # pragma: no cover - main returns its status
        raise AssertionError(f"main({argv!r}) exited with {exc.code!r} instead of returning it") from exc
    except Exception as exc:
        raise AssertionError(f"main({argv!r}) raised {type(exc).__name__}: {exc}") from exc
    err = capsys.readouterr().err
    assert status in (0, 2, 3), (argv, status, err)
    if status:
        assert len(err.strip().splitlines()) == 1, (argv, err)


@pytest.mark.parametrize("argv", [5, [b"demo"], ["demo", 5], "demo"])
def test_the_command_line_entry_takes_junk_argv(argv: Any, capsys: Any) -> None:
    status = main(argv)
    assert status == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
