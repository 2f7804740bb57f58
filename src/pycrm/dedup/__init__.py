"""Duplicate customers: found with no labelled data and no tuning, with the evidence for every match.

>>> from pycrm.dedup import find_duplicates
>>> rows = [
...     {"id": "c1", "name": "上海携程商务有限公司", "phone": "+86 21 3406 4888", "email": ""},
...     {"id": "c2", "name": "携程商务（上海）有限公司", "phone": "021-34064888", "email": ""},
...     {"id": "c3", "name": "Acme Co., Ltd.", "phone": "", "email": "sales@acme.com"},
...     {"id": "c4", "name": "ACME LIMITED", "phone": "", "email": " Sales@ACME.com"},
...     {"id": "c5", "name": "Globex Corporation", "phone": "+1 212 555 0100", "email": "info@globex.com"},
... ]
>>> [c.ids for c in find_duplicates(rows)]
[('c1', 'c2'), ('c3', 'c4')]

How it works: values are normalized (:mod:`._normalize`), candidate pairs come from several blocking
keys unioned (:mod:`._blocking`), each field is compared into agreement levels with rapidfuzz on every
core (:mod:`._compare`), a Fellegi–Sunter model is fitted by EM on the candidates themselves
(:mod:`._model`), and linked pairs are grouped without chaining (:mod:`._cluster`). Merges with
survivorship rules, and their undo, are in :mod:`._merge` (run by ``s.customers.merge`` / ``unmerge``).
"""

from pycrm.dedup._compare import KINDS
from pycrm.dedup._find import DEFAULT_THRESHOLD, Cluster, Match, find_duplicates
from pycrm.dedup._merge import RULES, MergeRecord, Relink, merge_fields, plan_merge
from pycrm.dedup._records import CONTACT_FIELDS, CUSTOMER_FIELDS, infer_fields

__all__ = [
    "CONTACT_FIELDS",
    "CUSTOMER_FIELDS",
    "DEFAULT_THRESHOLD",
    "KINDS",
    "RULES",
    "Cluster",
    "Match",
    "MergeRecord",
    "Relink",
    "find_duplicates",
    "infer_fields",
    "merge_fields",
    "plan_merge",
]
