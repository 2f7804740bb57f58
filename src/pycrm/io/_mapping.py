"""Column-to-field mapping: explicit (a dict or a JSON/TOML file) or automatic from English or Chinese headers.

A *target* is what a column fills:

* a field of the entity (``name``, ``emails``, ``occurred_at``, ``amount``...);
* ``currency`` (with ``amount``) for opportunities and orders;
* ``custom.<key>`` (a custom field) and ``address.<street|city|postcode|region|country>`` for customers;
* ``full_name`` for contacts (split into first and last name, family name first for Chinese names);
* ``customer.<field>`` for the other kinds: the customer is looked up by ``id``, ``name``, ``emails``,
  ``phones`` or ``custom.<key>`` (``customer.custom.external_id``);
* ``None`` (or ``""``, ``"-"``, ``"ignore"``): the column is not imported.

>>> resolve("customers", ["客户编号", "名称", "手机", "邮箱", "地址", "备注"])[0]
{'客户编号': 'custom.external_id', '名称': 'name', '手机': 'phones', '邮箱': 'emails', '地址': 'address.street'}
>>> resolve("orders", ["Order No", "Customer ID", "Date", "Total", "Currency"])[0]
{'Order No': 'order_no', 'Customer ID': 'customer_id', 'Date': 'occurred_at', 'Total': 'amount', 'Currency': 'currency'}
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from pycrm._files import file_failure
from pycrm.domain import ENTITIES, Entity
from pycrm.domain._checks import JSONTooDeep, check_mapping, check_names, check_path, json_loads, text, too_deep
from pycrm.errors import FieldError, ValidationError, quote

__all__ = [
    "ADDRESS_PARTS",
    "CUSTOMER_LOOKUPS",
    "EXPORT_FIELDS",
    "IMPORT_KINDS",
    "field_types",
    "load_mapping",
    "required_fields",
    "resolve",
    "valid_target",
]

IMPORT_KINDS = ("customers", "contacts", "opportunities", "tickets", "interactions", "orders", "surveys")
ADDRESS_PARTS = ("street", "city", "postcode", "region", "country")
CUSTOMER_LOOKUPS = ("id", "name", "emails", "phones")
_IGNORE = (None, "", "-", "ignore")
_READ_ONLY = ("version", "updated_at")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

#: Columns of an export when no fields are chosen (the order of the file), per kind.
EXPORT_FIELDS: dict[str, tuple[str, ...]] = {
    "customers": (
        "id",
        "name",
        "kind",
        "emails",
        "phones",
        "addresses",
        "country",
        "category",
        "status",
        "owner_id",
        "team_id",
        "tags",
        "custom",
        "created_at",
    ),
    "contacts": (
        "id",
        "customer_id",
        "first_name",
        "last_name",
        "emails",
        "phones",
        "title",
        "is_primary",
        "consent",
        "custom",
        "created_at",
    ),
    "opportunities": (
        "id",
        "customer_id",
        "name",
        "amount",
        "currency",
        "stage",
        "expected_close",
        "owner_id",
        "pipeline",
        "probability_override",
        "lost_reason",
        "closed_at",
        "stage_history",
        "win_probability",
        "scored_at",
        "custom",
        "created_at",
    ),
    "tickets": (
        "id",
        "customer_id",
        "subject",
        "description",
        "priority",
        "status",
        "category",
        "channel",
        "assignee_id",
        "first_response_at",
        "resolved_at",
        "closed_at",
        "status_history",
        "custom",
        "created_at",
    ),
    "interactions": (
        "id",
        "customer_id",
        "kind",
        "occurred_at",
        "subject",
        "body",
        "user_id",
        "duration",
        "direction",
        "channel",
        "contact_id",
        "opportunity_id",
        "outcome",
        "custom",
        "created_at",
    ),
    "orders": ("id", "customer_id", "occurred_at", "amount", "currency", "order_no", "lines", "custom", "created_at"),
    "surveys": (
        "id",
        "customer_id",
        "kind",
        "sent_at",
        "score",
        "comment",
        "ticket_id",
        "interaction_id",
        "user_id",
        "answered_at",
        "custom",
        "created_at",
    ),
}

_COMMON = {
    "id": ("id", "record id", "编号id", "系统编号"),
    "created_at": ("created", "created at", "creation date", "创建时间", "创建日期"),
    "updated_at": ("updated", "updated at", "更新时间", "修改时间"),
}
_CUSTOMER_REF = {
    "customer_id": ("customer id", "customerid", "客户id"),
    "customer.custom.external_id": (
        "customer no",
        "customer number",
        "customer code",
        "external customer id",
        "客户编号",
        "客户代码",
        "客户号",
    ),
    "customer.name": ("customer", "customer name", "company", "account", "客户", "客户名称", "客户名", "公司", "公司名称"),
    "customer.emails": ("customer email", "客户邮箱"),
    "customer.phones": ("customer phone", "客户电话"),
}
_SYNONYMS: dict[str, dict[str, tuple[str, ...]]] = {
    "customers": {
        "name": (
            "name",
            "company",
            "company name",
            "customer",
            "customer name",
            "account",
            "account name",
            "姓名",
            "名称",
            "公司",
            "公司名称",
            "客户",
            "客户名称",
            "客户名",
            "企业名称",
            "单位名称",
        ),
        "kind": ("kind", "type", "customer type", "类型", "客户类型"),
        "emails": ("email", "emails", "e-mail", "mail", "email address", "邮箱", "电子邮件", "电子邮箱", "邮件", "邮箱地址"),
        "phones": (
            "phone",
            "phones",
            "tel",
            "telephone",
            "mobile",
            "cell",
            "phone number",
            "mobile phone",
            "电话",
            "手机",
            "手机号",
            "手机号码",
            "联系电话",
            "电话号码",
            "座机",
        ),
        "addresses": ("addresses",),
        "address.street": ("address", "street", "street address", "地址", "详细地址", "街道", "联系地址"),
        "address.city": ("city", "城市", "市"),
        "address.postcode": ("postcode", "postal code", "zip", "zip code", "邮编", "邮政编码"),
        "address.region": ("state", "province", "region", "省", "省份", "地区"),
        "country": ("country", "country code", "国家", "国家代码"),
        "category": ("category", "industry category", "分类", "类别", "客户分类"),
        "status": ("status", "状态", "客户状态"),
        "owner_id": ("owner id", "owner_id"),
        "team_id": ("team id", "team_id"),
        "tags": ("tags", "tag", "labels", "标签"),
        "custom": ("custom",),
        "custom.external_id": (
            "external id",
            "external_id",
            "customer no",
            "customer number",
            "customer code",
            "code",
            "客户编号",
            "客户代码",
            "编号",
            "客户号",
        ),
    },
    "contacts": {
        "full_name": ("name", "full name", "contact", "contact name", "姓名", "联系人", "联系人姓名"),
        "first_name": ("first name", "given name", "firstname", "名"),
        "last_name": ("last name", "surname", "family name", "lastname", "姓"),
        "emails": ("email", "emails", "e-mail", "mail", "邮箱", "电子邮件", "电子邮箱"),
        "phones": ("phone", "phones", "tel", "telephone", "mobile", "cell", "电话", "手机", "手机号", "联系电话"),
        "title": ("title", "job title", "position", "职位", "职务", "头衔"),
        "is_primary": ("primary", "is primary", "main contact", "主要联系人", "首要联系人"),
        "consent": ("consent",),
    },
    "opportunities": {
        "name": ("name", "opportunity", "deal", "deal name", "opportunity name", "商机", "商机名称", "名称"),
        "amount": ("amount", "value", "deal value", "金额", "商机金额"),
        "currency": ("currency", "币种", "货币"),
        "stage": ("stage", "阶段", "销售阶段"),
        "expected_close": ("expected close", "close date", "expected close date", "预计成交日期", "预计成交"),
        "owner_id": ("owner id", "owner_id"),
        "pipeline": ("pipeline", "销售流程"),
        "probability_override": ("probability", "概率", "赢率"),
        "lost_reason": ("lost reason", "输单原因"),
        "closed_at": ("closed at", "关闭时间"),
        "stage_history": ("stage history",),
        "win_probability": ("win probability", "lead score", "score", "预测赢率", "线索评分"),
        "scored_at": ("scored at", "评分时间"),
    },
    "tickets": {
        "subject": ("subject", "title", "主题", "标题"),
        "description": ("description", "details", "描述", "内容", "详情"),
        "priority": ("priority", "优先级"),
        "status": ("status", "状态"),
        "category": ("category", "ticket category", "分类", "类别", "工单分类"),
        "channel": ("channel", "source", "渠道", "来源"),
        "assignee_id": ("assignee id", "assignee_id"),
        "first_response_at": ("first response at", "首次响应时间"),
        "resolved_at": ("resolved at", "解决时间"),
        "closed_at": ("closed at", "关闭时间"),
        "status_history": ("status history",),
    },
    "interactions": {
        "kind": ("kind", "type", "类型", "方式"),
        "occurred_at": ("occurred at", "date", "time", "datetime", "日期", "时间", "发生时间"),
        "subject": ("subject", "title", "主题", "标题"),
        "body": ("body", "content", "notes", "note", "内容", "备注", "记录"),
        "user_id": ("user id", "user_id"),
        "duration": ("duration", "duration seconds", "seconds", "时长", "通话时长"),
        "direction": ("direction", "呼入呼出", "方向"),
        "channel": ("channel", "渠道"),
        "contact_id": ("contact id", "contact_id"),
        "opportunity_id": ("opportunity id", "opportunity_id", "deal id"),
        "outcome": ("outcome", "result", "结果"),
    },
    "orders": {
        "occurred_at": (
            "occurred at",
            "date",
            "order date",
            "time",
            "purchase date",
            "日期",
            "下单时间",
            "订单日期",
            "时间",
            "下单日期",
            "购买日期",
        ),
        "amount": ("amount", "total", "order total", "value", "金额", "订单金额", "总额", "总金额", "实付金额"),
        "currency": ("currency", "币种", "货币"),
        "order_no": ("order no", "order number", "order id", "order_no", "订单号", "订单编号"),
        "lines": ("lines", "order lines", "line items", "items", "订单明细", "明细"),
    },
    "surveys": {
        "kind": ("kind", "type", "survey type", "类型", "问卷类型"),
        "sent_at": ("sent at", "sent", "date sent", "发送时间"),
        "score": ("score", "rating", "评分", "分数"),
        "comment": ("comment", "feedback", "remarks", "评价", "意见", "备注"),
        "ticket_id": ("ticket id", "ticket_id", "工单id"),
        "interaction_id": ("interaction id", "interaction_id"),
        "user_id": ("user id", "agent id", "user_id", "agent_id"),
        "answered_at": ("answered at", "answered", "response date", "回复时间"),
    },
}


def _norm(header: str) -> str:
    return re.sub(r"[\s_\-:：]+", " ", str(header).strip().lower()).strip()


def _table(kind: str) -> dict[str, str]:
    table: dict[str, str] = {}
    groups = [_SYNONYMS[kind], _COMMON] + ([_CUSTOMER_REF] if kind != "customers" else [])
    for group in groups:
        for target, names in group.items():
            for n in names:
                table.setdefault(_norm(n), target)
    return table


_TABLES = {k: _table(k) for k in IMPORT_KINDS}


def field_types(kind: str) -> dict[str, str]:
    """Field name -> annotation text (``"list[EmailAddress]"``, ``"Money"``...) of the entity kind."""
    cls = ENTITIES[kind]
    return {a.name: (a.type if isinstance(a.type, str) else getattr(a.type, "__name__", str(a.type))) for a in attrs.fields(cls)}


def required_fields(kind: str) -> list[str]:
    """The fields an import must fill (those without a default)."""
    return [a.name for a in attrs.fields(ENTITIES[kind]) if a.default is attrs.NOTHING]


def valid_target(kind: str, target: str) -> str | None:
    """Why ``target`` cannot be filled for ``kind`` (None when it can)."""
    types = field_types(kind)
    if target in types:
        return None
    if target == "currency" and "Money" in types.values():
        return None
    if "custom" in types and target.startswith("custom."):
        return None if _KEY.fullmatch(target[7:]) else f"{target[7:]!r} is not a custom field key"
    if kind == "customers" and target.startswith("address."):
        return None if target[8:] in ADDRESS_PARTS else f"an address has no part {target[8:]!r} ({', '.join(ADDRESS_PARTS)})"
    if kind == "contacts" and target == "full_name":
        return None
    if kind != "customers" and target.startswith("customer."):
        look = target[9:]
        if look in CUSTOMER_LOOKUPS or (look.startswith("custom.") and _KEY.fullmatch(look[7:])):
            return None
        return f"customers are looked up by {', '.join(CUSTOMER_LOOKUPS)} or custom.<key>, not {look!r}"
    return f"{ENTITIES[kind].__name__} has no field {target!r}"


def resolve(
    kind: str, header: Sequence[str], mapping: Mapping[str, str | None] | None = None, *, file: str = "mapping"
) -> tuple[dict[str, str], list[str]]:
    """(column -> target for the imported columns, columns left out). ``mapping`` overrides the automatic one.

    Explicit entries naming a column the file does not have, or a target the kind does not have, raise
    ValidationError (all of them at once). Automatic mapping never maps two columns to one target.
    """
    if not isinstance(kind, str) or kind not in IMPORT_KINDS:
        raise ValidationError(
            [FieldError("entity", "unknown_entity", f"cannot import {quote(kind)} (use one of: {', '.join(IMPORT_KINDS)})")]
        )
    header = list(check_names("header", header, one_ok=False))
    text(file, "file", max_len=4096)
    errors: list[FieldError] = []
    out: dict[str, str] = {}
    explicit = dict(check_mapping("mapping", mapping) or {})
    for col, target in explicit.items():
        if col not in header:
            errors.append(
                FieldError(
                    f"{file}: {quote(col)}",
                    "unknown_column",
                    f"the file has no column {quote(col)} (columns: {', '.join(header)})",
                )
            )
        elif target not in _IGNORE:
            if not isinstance(target, str):
                errors.append(FieldError(f"{file}: {col}", "bad_target", f"expected a field name, got {quote(target)}"))
                continue
            why = valid_target(kind, target)
            if why is not None:
                errors.append(FieldError(f"{file}: {col}", "bad_target", why))
            else:
                out[col] = target
    taken = set(out.values())
    table = _TABLES[kind]
    types = field_types(kind)
    skipped: list[str] = []
    for col in header:
        if not col or col in explicit:
            if col and explicit.get(col) in _IGNORE:
                skipped.append(col)
            continue
        target = col if (col in types or valid_target(kind, col) is None) else table.get(_norm(col))
        if target is None or target in _READ_ONLY or target in taken:
            skipped.append(col)
            continue
        out[col] = target
        taken.add(target)
    counts: dict[str, list[str]] = {}
    for col, target in out.items():
        counts.setdefault(target, []).append(col)
    for target, cols in counts.items():
        if len(cols) > 1:
            errors.append(
                FieldError(f"{file}: {cols[1]}", "duplicate_target", f"columns {', '.join(map(repr, cols))} all fill {target!r}")
            )
    if errors:
        raise ValidationError(errors)
    return {c: out[c] for c in header if c in out}, skipped


def load_mapping(path: str | os.PathLike[str]) -> dict[str, str | None]:
    """A mapping file: a JSON object or a TOML table ``column = "field"`` (``[mapping]`` table allowed)."""
    p = check_path("path", path)
    try:
        with open(p, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise file_failure(exc, p, "read") from None
    try:
        if p.lower().endswith(".toml"):
            import tomllib

            text = data.decode("utf-8-sig")
            if too_deep(text) is not None:  # tomllib recurses as json does
                raise JSONTooDeep("")
            obj: Any = tomllib.loads(text)
        else:
            obj = json_loads(data.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError([FieldError(p, "bad_mapping", f"not a JSON object or TOML table ({exc})")]) from None
    if isinstance(obj, dict) and isinstance(obj.get("mapping"), dict):
        obj = obj["mapping"]
    if not isinstance(obj, dict) or not all(isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in obj.items()):
        raise ValidationError([FieldError(p, "bad_mapping", 'expected {"column": "field", ...} with text values')])
    return dict(obj)


def entity_class(kind: str) -> type[Entity]:
    return ENTITIES[kind]
