"""What one session's actor may see and do, applied by the repositories on every read and write.

The rules themselves are pure (:mod:`pycrm.security`); this module puts them where the data flows:

* **Row scopes**: ``conditions(kind, where, action)`` ANDs the caller's filter with the actor's scope
  (``Policy.scope_conditions`` parsed into storage conditions), so the SQL adapter runs it as a WHERE and
  the memory adapter as a predicate; a filter can narrow what a user sees, never widen it.
* **Writes**: ``check_write`` refuses rows outside the actor's scope (before and after the change).
* **Field security**: ``present`` decrypts and masks what is read; ``prepare_update`` puts the stored
  values back into fields that are still masked and refuses masked values anywhere else.
* **Encryption at rest**: ``seal`` turns the host's sensitive custom fields into AES-256-GCM envelopes
  plus a keyed blind index (kept as ``custom["__bi_<key>"]``), so equality filters still work.

The system actor (``actor=None``) skips scopes and masking; encryption applies to everyone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pycrm.domain import ENTITIES, ENTITY_REPOSITORIES, Entity, User
from pycrm.errors import EncryptionError, FieldError, PermissionDenied, ValidationError
from pycrm.security import (
    CHANGED,
    DEFAULT_FIELD_RULES,
    FieldRules,
    KeyRing,
    Policy,
    assert_unmasked,
    is_encrypted,
    mask_data,
    mask_entity,
    masked_fields,
    restore_masked,
)
from pycrm.security._masking import refuse_mask_texts
from pycrm.storage._where import Condition, InValues, parse_scope, parse_where

__all__ = ["BLIND_PREFIX", "Guard", "SecurityConfig", "check_encrypted"]

#: Custom-field key holding the blind index of an encrypted custom value.
BLIND_PREFIX = "__bi_"
#: List fields that may be encrypted; each stored element is ``bi:<blind index>|<envelope>`` (see seal).
SEALED_LISTS = ("emails", "phones")


def check_encrypted(encrypted: Mapping[str, Iterable[str]] | None, keyring: KeyRing | None) -> dict[str, tuple[str, ...]]:
    """``{"customers": ["custom.national_id"]}`` checked: known repositories, ``custom.<key>`` paths, a key ring."""
    out: dict[str, tuple[str, ...]] = {}
    errors: list[FieldError] = []
    for repo, fields in (encrypted or {}).items():
        kind = ENTITIES.get(repo)
        if kind is None:
            errors.append(FieldError(f"encrypted.{repo}", "unknown_entity", f"no repository named {repo!r}"))
            continue
        names = [fields] if isinstance(fields, str) else list(fields)
        for f in names:
            if f in SEALED_LISTS and f in _attr_names(kind):
                continue
            key = f[7:] if isinstance(f, str) and f.startswith("custom.") else ""
            if not key or not key.isidentifier() or key.startswith(BLIND_PREFIX) or "custom" not in _attr_names(kind):
                errors.append(
                    FieldError(
                        f"encrypted.{repo}",
                        "unsupported",
                        f"{f!r}: encryption applies to custom fields ('custom.<key>'), emails and phones",
                    )
                )
        out[repo] = tuple(names)
    if out and keyring is None:
        errors.append(FieldError("keyring", "required", "encrypted fields need a KeyRing (pycrm.security.KeyRing)"))
    if errors:
        raise ValidationError(errors)
    return out


def _attr_names(kind: type) -> tuple[str, ...]:
    return tuple(a.name for a in kind.__attrs_attrs__)  # type: ignore[attr-defined]


class SecurityConfig:
    """The store-wide settings a CRM hands to each session (see ``pycrm.open``)."""

    def __init__(
        self,
        *,
        field_rules: FieldRules | None = None,
        keyring: KeyRing | None = None,
        encrypted: Mapping[str, Iterable[str]] | None = None,
        audit: bool = True,
        audit_key: bytes | None = None,
    ) -> None:
        if field_rules is not None and not isinstance(field_rules, FieldRules):
            raise ValidationError([FieldError("field_rules", "type", "expected pycrm.security.FieldRules")])
        if keyring is not None and not isinstance(keyring, KeyRing):
            raise ValidationError([FieldError("keyring", "type", "expected pycrm.security.KeyRing")])
        self.field_rules = DEFAULT_FIELD_RULES if field_rules is None else field_rules
        self.keyring = keyring
        self.encrypted = check_encrypted(encrypted, keyring)
        self.audit = bool(audit)
        self.audit_key = audit_key


class Guard:
    """One session's view of the security settings for its actor."""

    def __init__(
        self,
        actor: User | None,
        config: SecurityConfig,
        region: str | None,
        on_denied: Callable[[type[Entity], str, str | None, PermissionDenied], None] | None = None,
        custom: Mapping[type[Entity], Mapping[str, str]] | None = None,
    ):
        self.actor = actor
        self._on_denied = on_denied
        self.system = actor is None
        self.policy = Policy(actor)  # unknown role names fail here, when the session opens
        self.config = config
        self.region = region
        self._scopes: dict[tuple[type[Entity], str], list[Condition]] = {}
        self._rules: dict[type[Entity], dict[str, str]] = {}
        # per kind: encrypted custom keys, and encrypted list fields (emails, phones)
        self._sealed: dict[type[Entity], tuple[str, ...]] = {
            ENTITIES[repo]: tuple(f[7:] for f in fields if f.startswith("custom.")) for repo, fields in config.encrypted.items()
        }
        self._lists: dict[type[Entity], tuple[str, ...]] = {
            ENTITIES[repo]: tuple(f for f in fields if f in SEALED_LISTS) for repo, fields in config.encrypted.items()
        }
        # per kind: the declared custom fields' filter kinds; an encrypted one filters untyped (equality only,
        # through its blind index)
        self._custom: dict[type[Entity], dict[str, str]] = {
            kind: {k: v for k, v in types.items() if k not in self._sealed.get(kind, ())}
            for kind, types in (custom or {}).items()
        }

    # ---------------------------------------------------------------- reading
    def scope(self, kind: type[Entity], action: str) -> list[Condition]:
        """The actor's scope for ``action`` on ``kind`` as conditions; PermissionDenied if not granted."""
        key = (kind, action)
        got = self._scopes.get(key)
        if got is None:
            try:
                data = self.policy.scope_conditions(kind.entity_name(), action)
            except PermissionDenied as exc:
                if self._on_denied is not None:
                    self._on_denied(kind, action, None, exc)
                raise
            got = self._scopes[key] = parse_scope(kind, data, self._custom.get(kind))
        return got

    def reads_everything(self) -> bool:
        """Whether the actor reads every record of every repository (the system actor, an admin): the journals
        and the audit chain span them all."""
        policy = self.policy
        return self.system or all(policy.allowed(r, "read") == "all" for r in ENTITY_REPOSITORIES)

    def denied(self, kind: type[Entity], action: str, entity_id: str | None, exc: PermissionDenied) -> None:
        """Record a refusal (the session writes it to the audit trail even when it rolls back)."""
        if self._on_denied is not None:
            self._on_denied(kind, action, entity_id, exc)

    def conditions(self, kind: type[Entity], where: Mapping[str, Any] | None, action: str = "read") -> list[Condition]:
        conds = parse_where(kind, where, region=self.region, custom=self._custom.get(kind))
        if conds and not self.system:
            self.check_visible_fields(kind, [c.field for c in conds], "filter")
        if kind in self._sealed and conds:
            conds = [self._blind_list(kind, self._blind(kind, c)) for c in conds]
        if self.system:
            return conds
        scope = self.scope(kind, action)
        return [*conds, *scope] if scope else conds

    def _blind_list(self, kind: type[Entity], c: Condition) -> Condition:
        """``{"emails": x}`` on encrypted emails: matched through the blind index kept in the index table."""
        if c.field not in self._lists.get(kind, ()) or c.op == "is_null":
            return c
        ring = self.config.keyring
        assert ring is not None
        field = f"{kind.entity_name()}.{c.field}"
        value: Any = InValues(_list_index(ring, v, field) for v in c.value) if c.op == "in" else _list_index(ring, c.value, field)
        return Condition(c.field, c.op, value, c.kind)

    def _blind(self, kind: type[Entity], c: Condition) -> Condition:
        key = c.field[7:] if c.kind == "custom" else ""
        if key not in self._sealed[kind] or c.op == "is_null":
            return c
        ring = self.config.keyring
        assert ring is not None
        field = f"{kind.entity_name()}.custom.{key}"

        def index(v: Any) -> str:
            return ring.blind_index(_encode(v), field, normalize=_same)

        value: Any = InValues(index(v) for v in c.value) if c.op == "in" else index(c.value)
        return Condition(f"custom.{BLIND_PREFIX}{key}", c.op, value, "custom")

    def check_visible_fields(self, kind: type[Entity], fields: Iterable[str], use: str) -> None:
        """ValidationError naming each field the actor sees masked or hidden: it cannot ``use`` them (filter,
        sort), or a narrowing filter would read the value back one character at a time."""
        rules = self.rules(kind)
        if not rules:
            return
        bad = []
        for f in fields:
            top = f.split(".", 2)[:2] if f.startswith("custom.") else [f.split(".", 1)[0]]
            if ".".join(top) in rules or top[0] in rules or _PART_OF.get(f) in rules:
                bad.append(f)
        if bad:
            raise ValidationError(
                [FieldError(f, "masked", f"{f!r} is masked or hidden for this actor; it cannot {use} by it") for f in bad]
            )

    def mask_diff(self, kind: type[Entity], diff: Any) -> Any:
        """An audit diff (``{field: [old, new]}``) with the fields the actor sees masked shown masked."""
        rules = self.rules(kind)
        if not rules or not isinstance(diff, Mapping):
            return diff
        pairs = {f: v for f, v in diff.items() if isinstance(v, list) and len(v) == 2}
        before = mask_data({f: v[0] for f, v in pairs.items()}, rules)
        after = mask_data({f: v[1] for f, v in pairs.items()}, rules)
        return {f: ([before[f], after[f]] if f in pairs else v) for f, v in diff.items()}

    def present_data(self, kind: type[Entity], data: Any) -> Any:
        """A stored snapshot (``to_data`` form, as merge records keep them) as the actor may see it: masked,
        and without the blind indexes of encrypted values (the store's own; equal ones would tell the actor
        which records share a value it may not read)."""
        if self.system or not isinstance(data, Mapping):
            return data
        custom = data.get("custom")
        if isinstance(custom, Mapping) and any(str(k).startswith(BLIND_PREFIX) for k in custom):
            data = {**data, "custom": {k: v for k, v in custom.items() if not str(k).startswith(BLIND_PREFIX)}}
        rules = self.rules(kind)
        return mask_data(data, rules) if rules else data

    def rules(self, kind: type[Entity]) -> dict[str, str]:
        got = self._rules.get(kind)
        if got is None:
            got = {} if self.system else self.config.field_rules.resolve(self.policy.roles, kind.entity_name())
            self._rules[kind] = got
        return got

    def needs_presenting(self, kind: type[Entity]) -> bool:
        return kind in self._sealed or bool(self.rules(kind))

    def present(self, kind: type[Entity], entity: Any) -> Any:
        """The stored entity as the actor may see it: decrypted, then hidden/masked fields applied."""
        if kind in self._sealed:
            entity = self.unseal(kind, entity)
        rules = self.rules(kind)
        return mask_entity(entity, rules) if rules else entity

    # ---------------------------------------------------------------- writing
    def check_write(self, kind: type[Entity], action: str, entity: Entity, lookup: Callable[[str, str], Entity | None]) -> None:
        """PermissionDenied unless the actor may ``action`` this row (checked on the row as it will be stored)."""
        if not self.system:
            try:
                self.policy.check_entity(entity, action, lookup=lookup)
            except PermissionDenied as exc:
                if self._on_denied is not None:
                    self._on_denied(kind, action, entity.id, exc)
                raise

    def prepare_update(self, kind: type[Entity], entity: Any, stored_plain: Any) -> Any:
        """What to store for an update: values still masked come back from ``stored_plain``."""
        if self.system:
            return entity
        if masked_fields(entity):
            return restore_masked(entity, stored_plain)
        rules = self.rules(kind)
        if rules:  # a copy that lost its record of what was masked (through JSON and back, say): by the rules
            entity = restore_by_rules(entity, stored_plain, rules)
        assert_unmasked(entity)
        return entity

    def check_new(self, entity: Entity) -> None:
        if not self.system:
            assert_unmasked(entity)

    # ---------------------------------------------------------------- encryption
    def sealed_fields(self, kind: type[Entity]) -> tuple[str, ...]:
        """What is encrypted on ``kind``: custom keys and list fields (empty: nothing)."""
        return self._sealed.get(kind, ()) + self._lists.get(kind, ())

    def seal(self, kind: type[Entity], entity: Any, stored: Any = None, stored_plain: Any = None) -> Any:
        """A copy to store with the sensitive custom values encrypted (``entity`` unchanged).

        On an update, a value equal to the stored one keeps its stored envelope (so an unchanged secret
        does not look changed in the audit trail or the change feed).
        """
        lists = self._lists.get(kind, ())
        if lists:
            entity = self._seal_lists(kind, entity, lists, stored, stored_plain)
        keys = self._sealed.get(kind)
        if not keys or not any(k in entity.custom for k in keys):
            return entity
        ring = self.config.keyring
        assert ring is not None
        custom = dict(entity.custom)
        for k in keys:
            custom.pop(BLIND_PREFIX + k, None)
            unchanged = stored_plain is not None and k in custom and stored_plain.custom.get(k, _MISSING) == custom[k]
            if unchanged and k in stored.custom:
                custom[k] = stored.custom[k]
                if BLIND_PREFIX + k in stored.custom:
                    custom[BLIND_PREFIX + k] = stored.custom[BLIND_PREFIX + k]
                continue
            if k in custom and custom[k] is not None:
                field = f"{kind.entity_name()}.custom.{k}"
                text = _encode(custom[k])
                custom[k] = ring.encrypt(text, field)
                custom[BLIND_PREFIX + k] = ring.blind_index(text, field, normalize=_same)
        return _with(entity, custom=custom)

    def _seal_lists(self, kind: type[Entity], entity: Any, lists: tuple[str, ...], stored: Any, stored_plain: Any) -> Any:
        ring = self.config.keyring
        assert ring is not None
        changes: dict[str, Any] = {}
        for name in lists:
            items = getattr(entity, name)
            if not items:
                continue
            # on an update, an element that was stored before keeps its stored form
            kept: dict[str, Any] = {}
            if stored is not None and stored_plain is not None:
                kept = {_text_of(p): s for p, s in zip(getattr(stored_plain, name), getattr(stored, name))}
            field = f"{kind.entity_name()}.{name}"
            make = type(items[0])
            out = []
            for item in items:
                text = _text_of(item)
                if text in kept:
                    out.append(kept[text])
                else:
                    out.append(make(f"{_list_index(ring, text, field)}|{ring.encrypt(text, field)}"))
            changes[name] = out
        return _with(entity, **changes) if changes else entity

    def unseal(self, kind: type[Entity], entity: Any) -> Any:
        lists = self._lists.get(kind, ())
        if lists:
            entity = self._unseal_lists(kind, entity, lists)
        keys = self._sealed.get(kind, ())
        custom = entity.custom if keys else {}
        if not any(k in custom or BLIND_PREFIX + k in custom for k in keys):
            return entity
        ring = self.config.keyring
        assert ring is not None
        out = dict(custom)
        for k in keys:
            out.pop(BLIND_PREFIX + k, None)
            token = out.get(k)
            if isinstance(token, str) and is_encrypted(token):
                field = f"{kind.entity_name()}.custom.{k}"
                try:
                    out[k] = json.loads(ring.decrypt(token, field))
                except (EncryptionError, ValueError) as exc:  # ValueError: sealed text that is not JSON
                    raise EncryptionError(f"{kind.__name__} {entity.id!r}: {exc}") from None
        return _with(entity, custom=out)

    def _unseal_lists(self, kind: type[Entity], entity: Any, lists: tuple[str, ...]) -> Any:
        ring = self.config.keyring
        assert ring is not None
        changes: dict[str, Any] = {}
        for name in lists:
            items = getattr(entity, name)
            if not any(_text_of(i).startswith(LIST_INDEX_PREFIX) or is_encrypted(_text_of(i)) for i in items):
                continue
            field = f"{kind.entity_name()}.{name}"
            out = []
            for item in items:
                text = _text_of(item)
                if text.startswith(LIST_INDEX_PREFIX) or is_encrypted(text):  # a bare envelope is not plain data either
                    try:
                        text = ring.decrypt(text.split("|", 1)[1] if text.startswith(LIST_INDEX_PREFIX) else text, field)
                    except (EncryptionError, IndexError) as exc:
                        raise EncryptionError(f"{kind.__name__} {entity.id!r}: {exc}") from None
                out.append(type(item)(text))
            changes[name] = out
        return _with(entity, **changes) if changes else entity

    def redact_diff(self, kind: type[Entity], diff: dict[str, Any]) -> dict[str, Any]:
        """An audit diff with encrypted values replaced by :data:`~pycrm.security.CHANGED`."""
        for name in self._lists.get(kind, ()):
            if name in diff:
                diff = {**diff, name: CHANGED}
        keys = self._sealed.get(kind)
        if not keys or "custom" not in diff:
            return diff
        was, now = diff["custom"]
        before, after = dict(was or {}), dict(now or {})
        for k in [k for k in (*before, *after) if k.startswith(BLIND_PREFIX)]:
            before.pop(k, None)
            after.pop(k, None)
        secret_changed = False
        for k in keys:
            if before.get(k, _MISSING) != after.get(k, _MISSING):
                secret_changed = True  # shown on the side(s) that hold a value, never in clear
                if k in before:
                    before[k] = CHANGED
                if k in after:
                    after[k] = CHANGED
            else:
                before.pop(k, None)
                after.pop(k, None)
        if before == after and not secret_changed:
            return {f: v for f, v in diff.items() if f != "custom"}
        return {**diff, "custom": [None if was is None else before, None if now is None else after]}


_MISSING = object()

#: Filterable names that read a part of another field: the currency of a masked amount is masked too.
_PART_OF = {"currency": "amount"}

#: How a stored element of an encrypted list begins: the blind index the index tables hold (index_text).
LIST_INDEX_PREFIX = "bi:"


def _text_of(item: Any) -> str:
    return str(item.e164 if hasattr(item, "e164") else item.value)


def _list_index(ring: KeyRing, text: str, field: str) -> str:
    """``bi:`` + 29 hex digits of the keyed blind index: fits the 32-character phone index column."""
    return LIST_INDEX_PREFIX + ring.blind_index(text, field, normalize=_same)[:29]


def _same(text: str) -> str:
    return text


def _encode(value: Any) -> str:
    """Custom values are JSON (text, numbers, booleans): encrypted as JSON so the type comes back too."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def restore_by_rules(entity: Any, stored: Any, rules: Mapping[str, str]) -> Any:
    """``entity`` with every field the actor sees hidden or masked put back from ``stored`` where it holds
    what the actor was shown (the mask, or nothing for a hidden field): a write never stores a mask over
    the real value, nor drops a value the actor could not see. A new value the actor typed stays. The
    text of every mask shown is then refused anywhere in the entity (copied into another field, say)."""
    shown = mask_entity(stored, rules)
    values = {a.name: getattr(entity, a.name) for a in type(entity).__attrs_attrs__}
    texts: set[str] = set()
    for path, rule in rules.items():
        field, _, key = path.partition(".")
        if field not in values:
            continue
        if key:
            now, seen, real = (
                _get(values[field], key),
                _get(getattr(shown, field), key),
                _get(getattr(stored, field), key),
            )
            if _plainly(now) == _plainly(seen) or (rule == "hide" and now is _MISSING):
                holder = values[field] = dict(values[field])
                if real is _MISSING:
                    holder.pop(key, None)
                else:
                    holder[key] = real
            texts.update(t for t in _texts(seen) if t)
            continue
        now, seen = values[field], getattr(shown, field)
        if _plainly(now) == _plainly(seen):
            values[field] = getattr(stored, field)
        texts.update(t for t in _texts(seen) if t)
    out = type(entity)._load(values)
    refuse_mask_texts(out, texts)
    return out


def _get(holder: Any, key: str) -> Any:
    return holder.get(key, _MISSING) if isinstance(holder, Mapping) else _MISSING


def _plainly(value: Any) -> Any:
    """A value as text for comparing what was shown with what came back (types lost on the way count not)."""
    if value is _MISSING or value is None:
        return None
    if isinstance(value, (list, tuple, frozenset, set)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [_plainly(v) for v in items] or None
    return _text_of(value) if hasattr(value, "e164") or hasattr(value, "value") else str(value)


def _texts(value: Any) -> list[str]:
    if value is _MISSING or value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _texts(v)]
    return [str(value)] if isinstance(value, str) else []


def _with(entity: Any, **changes: Any) -> Any:
    values = {a.name: getattr(entity, a.name) for a in type(entity).__attrs_attrs__}
    values.update(changes)
    return type(entity)._load(values)
