"""An archive rule whose ``where`` names an encrypted field matches through the blind index, as ``find``
does (it matched nothing before: the rule compared the clear value with the stored envelope)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pycrm
from pycrm import Customer
from pycrm.io import archive, archived, older_than
from tests.contract.test_encryption_store import ENCRYPTED, KEYRING

LATER = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)


def test_an_archive_rule_on_an_encrypted_field_matches(open_crm: Callable[..., pycrm.CRM]) -> None:
    crm = open_crm(keyring=KEYRING, encrypted=ENCRYPTED)
    with crm.session() as s:
        gone = s.customers.add(Customer("Li Lei", custom={"national_id": "110101199003077777"}))
        kept = s.customers.add(Customer("Han Meimei", custom={"national_id": "220101199003071234"}))
    rule = older_than("customers", 1, where={"custom.national_id": "110101199003077777"})
    with crm.session() as s:
        result = archive(s, [rule], as_of=LATER)
    assert result.counts == {"customers": 1}
    with crm.session() as s:
        assert [c.id for c in s.customers.find()] == [kept.id]
        assert [c.custom["national_id"] for c in archived(s, "customers")] == ["110101199003077777"]
        assert gone.id not in {c.id for c in s.customers.find()}
