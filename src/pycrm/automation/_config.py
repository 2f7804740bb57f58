"""An automation config file: rules, webhooks, the business calendar and assigners (``pycrm dispatch --config``).

A TOML or JSON document::

    [calendar]                          # for due_in_business_days (default Monday to Friday, UTC)
    timezone = "Asia/Shanghai"
    holidays = ["2026-10-01", "2026-10-02"]
    extra_workdays = ["2026-09-27"]

    [assigners]                         # names for {"assigner": name} in rules
    sales = { round_robin = ["u1", "u2", "u3"] }
    support = { least_loaded = ["s1", "s2"] }
    key_accounts = { weighted = { u1 = 2, u2 = 1 } }

    [[rules]]                           # see docs/automation.md, "Rules"
    name = "proposal follow-up"
    when = "StageChanged"
    if = { to_stage = "proposal" }
    then = [{ create_task = { title = "Follow up {record.name}", due_in_business_days = 2, assignee = "owner" } }]

    [[webhooks]]                        # see docs/automation.md, "Webhooks"
    url = "https://erp.example.com/hooks/crm"
    secret_env = "CRM_WEBHOOK_SECRET"
    events = ["DealWon"]

Every problem is a ValidationError naming the file and the path in it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pycrm._documents import read_document, under
from pycrm.errors import FieldError, ValidationError, quote

__all__ = ["apply_config", "load_config"]

_SECTIONS = ("calendar", "assigners", "rules", "webhooks")


def _bad(where: str, code: str, message: str) -> ValidationError:
    return ValidationError([FieldError(where, code, message)])


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The document in ``path`` (``.toml`` or ``.json``), its sections checked by name."""
    p = Path(path)
    data = read_document(p)
    unknown = sorted(k for k in data if k not in _SECTIONS)
    if unknown:
        raise _bad(f"{p}: {unknown[0]}", "unknown_section", f"not one of {', '.join(_SECTIONS)}")
    return data


def _assigner(name: str, spec: Any, where: str) -> Any:
    from pycrm.automation._assign import LeastLoaded, RoundRobin, Weighted, assign

    if not isinstance(spec, Mapping) or len(spec) != 1:
        raise _bad(where, "bad_config", "expected one of round_robin = [...], least_loaded = [...], weighted = {...}")
    ((how, value),) = spec.items()
    try:
        if how == "round_robin":
            strategy: Any = RoundRobin(name, value)
        elif how == "least_loaded":
            strategy = LeastLoaded(value)
        elif how == "weighted":
            strategy = Weighted(name, value)
        else:
            raise _bad(f"{where}.{how}", "unknown", f"{quote(how)} is not round_robin, least_loaded or weighted")
    except ValidationError as exc:
        raise ValidationError(
            [FieldError(f"{where}.{how}.{e.field}".rstrip("."), e.code, e.message) for e in exc.errors]
        ) from None

    def choose(session: Any, record: Any) -> Any:
        return assign(session, strategy, record)  # the rules record its reason in the audit trail

    return choose


def apply_config(crm: Any, path: str | os.PathLike[str]) -> dict[str, int]:
    """Register the rules and webhooks of the config file ``path`` on ``crm``; how many of each."""
    from pycrm.automation._calendar import BusinessCalendar
    from pycrm.automation._rules import install_rules
    from pycrm.automation._webhook import Webhook

    data = load_config(path)
    where = str(path)
    calendar = None
    if "calendar" in data:
        if not isinstance(data["calendar"], Mapping):
            raise _bad(f"{where}: calendar", "bad_config", "expected a table")
        try:
            calendar = BusinessCalendar(**data["calendar"])
        except ValidationError as exc:
            raise under(exc, where, "calendar") from None
        except TypeError as exc:
            raise _bad(f"{where}: calendar", "bad_config", str(exc)) from None
    assigners = data.get("assigners", {})
    if not isinstance(assigners, Mapping):
        raise _bad(f"{where}: assigners", "bad_config", "expected a table of names")
    made = {str(k): _assigner(str(k), v, f"{where}: assigners.{k}") for k, v in assigners.items()}
    rules = data.get("rules", [])
    webhooks = data.get("webhooks", [])
    for name, value in (("rules", rules), ("webhooks", webhooks)):
        if not isinstance(value, list):
            raise _bad(f"{where}: {name}", "bad_config", "expected a list")
    hooks = []
    for i, m in enumerate(webhooks):
        try:
            hooks.append(Webhook.from_config(m, path=f"webhooks[{i}]"))
        except ValidationError as exc:
            raise under(exc, where) from None
    if rules:
        try:
            install_rules(crm, rules, calendar=calendar, assigners=made)
        except ValidationError as exc:
            raise under(exc, where) from None
    for hook in hooks:
        hook.register(crm)
    return {"rules": len(rules), "webhooks": len(hooks)}
