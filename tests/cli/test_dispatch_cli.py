"""``pycrm dispatch``: rules and webhooks from a config file, a host's handlers, the outbox's state."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import pycrm
from pycrm import Customer, Money, Opportunity, User
from pycrm.cli import main

CONFIG = """
[calendar]
timezone = "UTC"

[assigners]
sales = { round_robin = ["u1", "u2"] }

[[rules]]
name = "proposal follow-up"
when = "StageChanged"
if = { to_stage = "proposal" }
then = [{ create_task = { title = "Follow up {record.name}", due_in_business_days = 2, assignee = "owner" } }]

[[rules]]
name = "new customers get an owner"
when = "CustomerCreated"
then = [{ assign_owner = { assigner = "sales" } }]
"""


def _store(tmp_path: Path) -> str:
    db = tmp_path / "crm.db"
    with pycrm.open(f"sqlite:///{db}") as crm, crm.session() as s:  # no events for the users
        for u in ("u1", "u2"):
            s.users.add(User(u.upper(), email=f"{u}@example.com", roles=["sales"], id=u))
    with pycrm.open(f"sqlite:///{db}", outbox=True) as crm, crm.session() as s:
        c = s.customers.add(Customer("Acme"))
        deal = s.opportunities.add(Opportunity(str(c.id), "Big deal", Money(100, "USD"), owner_id="u7"))
        deal.move_to("proposal")
        s.opportunities.update(deal)
    return str(db)


def test_dispatch_runs_the_rules_of_a_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = _store(tmp_path)
    config = tmp_path / "automation.toml"
    config.write_text(CONFIG, encoding="utf-8")
    assert main(["dispatch", db, "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "dead 0" in out and "outbox: 0 pending" in out
    with pycrm.open(f"sqlite:///{db}") as crm, crm.session() as s:
        [task] = s.tasks.find()
        [customer] = s.customers.find()
    assert (task.title, task.assignee_id) == ("Follow up Big deal", "u7")
    assert customer.owner_id == "u1"
    with pycrm.open(f"sqlite:///{db}") as crm, crm.session() as s:
        [why] = [e for e in s.audit.history(str(customer.id)) if e.action == "assign"]
    assert (why.actor_id, why.diff["user_id"], why.diff["strategy"]) == ("automation", "u1", "round_robin")
    assert "turn" in why.diff["reason"]
    assert main(["dispatch", db, "--config", str(config)]) == 0  # nothing left: nothing fires twice
    with pycrm.open(f"sqlite:///{db}") as crm, crm.session() as s:
        assert s.tasks.count() == 1


def test_dispatch_calls_a_hosts_hook_and_reports_the_outbox(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = _store(tmp_path)
    (tmp_path / "myhooks.py").write_text(
        "seen = []\ndef register(crm):\n    crm.handlers.add(lambda e: seen.append(e.name), 'Created', name='mine')\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["dispatch", db, "--status"]) == 0
    assert "outbox: 4 pending, 0 done, 0 dead" in capsys.readouterr().out
    assert main(["dispatch", db, "--handlers", "myhooks:register", "--limit", "2"]) == 0
    assert sys.modules["myhooks"].seen == ["CustomerCreated", "OpportunityCreated"]
    assert "outbox: 2 pending, 2 done" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "text", "message"),
    [
        ([], None, "no handlers"),
        (["--config", "{cfg}"], "bad = 1\n", "bad: not one of calendar, assigners, rules, webhooks"),
        (["--config", "{cfg}"], '[[rules]]\nname = "x"\nwhen = "Nope"\nthen = []\n', "rules[0].when: no event named 'Nope'"),
        (["--config", "{cfg}"], "[[rules]\n", "cannot be read"),
        (["--config", "{cfg}"], '[assigners]\nx = { coin = ["u1"] }\n', "assigners.x.coin"),
        (["--config", "{cfg}"], '[[webhooks]]\nurl = "ftp://x"\nsecret = "0123456789abcdef"\n', "webhooks[0].url"),
        (["--handlers", "no_such_module:fn"], None, "--handlers"),
        (["--batch", "0", "--handlers", "x:y"], None, "--batch"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], text: str | None, message: str
) -> None:
    db = _store(tmp_path)
    cfg = tmp_path / "c.toml"
    if text is not None:
        cfg.write_text(text, encoding="utf-8")
    assert main(["dispatch", db, *(a.replace("{cfg}", str(cfg)) for a in args)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    with pycrm.open(f"sqlite:///{db}") as crm:
        assert crm.outbox.counts()["pending"] == 4  # nothing was delivered
