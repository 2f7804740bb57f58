"""Field encryption: round trips, fresh nonces, tampering and misplaced values caught with a clear error,
rotation, blind indexes, and no plaintext in what is stored."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycrm.errors import CRMError, EncryptionError
from pycrm.security import ENVELOPE_PREFIX, KeyRing, is_encrypted, normalize_for_index

K1, K2, INDEX = bytes([1]) * 32, bytes([2]) * 32, bytes([9]) * 32
FIELD = "customers.national_id"


def ring(active: str = "k1", **keys: bytes) -> KeyRing:
    return KeyRing(keys or {"k1": K1, "k2": K2}, active=active, index_key=INDEX)


def body(token: str) -> bytes:
    data = token.rsplit(":", 1)[1]
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def retoken(token: str, raw: bytes) -> str:
    return token.rsplit(":", 1)[0] + ":" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@given(st.text(max_size=200))
def test_round_trip(value: str) -> None:
    r = ring()
    token = r.encrypt(value, FIELD)
    assert token.startswith(f"{ENVELOPE_PREFIX}k1:") and is_encrypted(token)
    assert r.decrypt(token, FIELD) == value


def test_the_envelope_is_compact_ascii_text() -> None:
    token = ring().encrypt("110101199003077777", FIELD)
    assert token.isascii() and " " not in token and "=" not in token
    assert len(body(token)) == 12 + len("110101199003077777") + 16  # nonce + ciphertext + tag


def test_every_encryption_uses_a_fresh_nonce() -> None:
    r = ring()
    tokens = [r.encrypt("same value", FIELD) for _ in range(200)]
    assert len(set(tokens)) == 200
    assert len({body(t)[:12] for t in tokens}) == 200


@given(st.text(min_size=4, max_size=60).filter(lambda s: len(s.encode()) >= 4))
def test_no_plaintext_in_the_stored_bytes(value: str) -> None:
    token = ring().encrypt(value, FIELD)
    raw = body(token)
    assert value.encode() not in raw
    assert value not in token or value in f"{ENVELOPE_PREFIX}k1:"  # a value that is part of the header itself


@pytest.mark.parametrize("position", [0, 11, 12, -1])  # nonce, first ciphertext byte, tag
def test_a_flipped_bit_anywhere_is_detected(position: int) -> None:
    r = ring()
    token = r.encrypt("110101199003077777", FIELD)
    raw = bytearray(body(token))
    raw[position] ^= 0x01
    with pytest.raises(EncryptionError, match=f"cannot decrypt {FIELD} with key 'k1'") as info:
        r.decrypt(retoken(token, bytes(raw)), FIELD)
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no InvalidTag traceback attached


def test_a_value_moved_to_another_field_does_not_decrypt() -> None:
    r = ring()
    token = r.encrypt("110101199003077777", FIELD)
    with pytest.raises(EncryptionError, match=r"cannot decrypt contacts\.national_id"):
        r.decrypt(token, "contacts.national_id")


def test_relabelling_the_key_id_does_not_decrypt() -> None:
    """k1 and k2 share nothing here, but even with the same bytes the key id is bound in."""
    same = KeyRing({"k1": K1, "k1b": K1}, active="k1")
    token = same.encrypt("secret", FIELD)
    with pytest.raises(EncryptionError):
        same.decrypt(token.replace(":k1:", ":k1b:"), FIELD)


def test_the_wrong_key_names_the_field() -> None:
    token = ring().encrypt("secret", FIELD)
    impostor = KeyRing({"k1": bytes([7]) * 32}, active="k1")
    with pytest.raises(EncryptionError, match=f"cannot decrypt {FIELD} with key 'k1': wrong key"):
        impostor.decrypt(token, FIELD)


def test_a_missing_key_id_is_named() -> None:
    token = ring(active="k2").encrypt("secret", FIELD)
    only_k1 = KeyRing({"k1": K1}, active="k1")
    with pytest.raises(EncryptionError, match="no key 'k2' in the key ring") as info:
        only_k1.decrypt(token, FIELD)
    assert isinstance(info.value, CRMError) and not isinstance(info.value, KeyError)


@pytest.mark.parametrize("token", ["plain text", "enc:v1:", "enc:v1:k1", "enc:v1:k1:!!!", "enc:v1:k1:AAAA", "enc:v1:bad id:AAAA"])
def test_malformed_envelopes_are_a_clear_error(token: str) -> None:
    with pytest.raises(EncryptionError, match=FIELD):
        ring().decrypt(token, FIELD)


def test_rotation_re_encrypts_under_the_active_key() -> None:
    old = ring(active="k1")
    token = old.encrypt("110101199003077777", FIELD)
    new = ring(active="k2")
    assert new.needs_rotation(token, FIELD)
    rotated = new.rotate(token, FIELD)
    assert new.key_id(rotated) == "k2" and not new.needs_rotation(rotated)
    assert new.decrypt(rotated, FIELD) == "110101199003077777"
    assert new.rotate(rotated, FIELD) == rotated  # already current: unchanged
    with pytest.raises(EncryptionError, match="no key 'k2'"):
        KeyRing({"k1": K1}, active="k1").decrypt(rotated, FIELD)  # the old ring cannot read it


def test_rotating_a_tampered_value_fails() -> None:
    r = ring()
    token = r.encrypt("x", FIELD)
    raw = bytearray(body(token))
    raw[-1] ^= 1
    with pytest.raises(EncryptionError):
        r.rotate(retoken(token, bytes(raw)), FIELD)


@given(st.text(max_size=20), st.text(max_size=20))
def test_blind_indexes_are_equal_exactly_for_equal_normalized_values(a: str, b: str) -> None:
    r = ring()
    assert (r.blind_index(a, FIELD) == r.blind_index(b, FIELD)) == (normalize_for_index(a) == normalize_for_index(b))
    assert r.blind_index(a, FIELD) == ring(active="k2").blind_index(a, FIELD)  # not tied to the active key


def test_blind_indexes_ignore_case_width_and_spacing() -> None:
    r = ring()
    assert r.blind_index(" Li.Lei@Example.COM ", FIELD) == r.blind_index("li.lei@example.com", FIELD)
    assert r.blind_index("ＡＢＣ  123", FIELD) == r.blind_index("abc 123", FIELD)
    assert r.blind_index("+8613800138000", FIELD, normalize=str) != r.blind_index("+86 138 0013 8000", FIELD, normalize=str)


def test_blind_indexes_differ_by_value_field_and_index_key() -> None:
    r = ring()
    a = r.blind_index("110101199003077777", FIELD)
    assert len(a) == 32 and int(a, 16) >= 0
    assert a != r.blind_index("110101199003077778", FIELD)
    assert a != r.blind_index("110101199003077777", "contacts.national_id")
    other = KeyRing({"k1": K1}, active="k1", index_key=bytes([8]) * 32)
    assert a != other.blind_index("110101199003077777", FIELD)
    assert "110101199003077777" not in a


def test_the_index_key_is_separate_and_required() -> None:
    with pytest.raises(EncryptionError, match="must differ"):
        KeyRing({"k1": K1}, active="k1", index_key=K1)
    with pytest.raises(EncryptionError, match="no index key"):
        KeyRing({"k1": K1}, active="k1").blind_index("x", FIELD)


def test_key_ring_construction_errors() -> None:
    with pytest.raises(EncryptionError, match="32 bytes"):
        KeyRing({"k1": b"short"}, active="k1")
    with pytest.raises(EncryptionError, match="active key 'k3'"):
        KeyRing({"k1": K1}, active="k3")
    with pytest.raises(EncryptionError, match="key id"):
        KeyRing({"a:b": K1}, active="a:b")
    with pytest.raises(EncryptionError, match="at least one key"):
        KeyRing({}, active="k1")
    with pytest.raises(EncryptionError, match="not valid base64"):
        KeyRing.from_base64({"k1": "not base64!"}, active="k1")


def test_keys_never_show_in_repr() -> None:
    text = repr(ring())
    assert text == "KeyRing(keys=['k1', 'k2'], active='k1', index_key=True)"
    assert base64.b64encode(K1).decode() not in text


def test_from_base64_and_from_env() -> None:
    b64 = {k: base64.b64encode(v).decode() for k, v in {"k1": K1, "k2": K2}.items()}
    url = base64.urlsafe_b64encode(K2).rstrip(b"=").decode()
    r = KeyRing.from_base64({"k1": b64["k1"], "k2": url}, active="k2", index_key=base64.b64encode(INDEX).decode())
    token = r.encrypt("x", FIELD)
    assert ring(active="k2").decrypt(token, FIELD) == "x"
    env = {"CRM_KEYS": f"k2:{b64['k2']}, k1:{b64['k1']}", "CRM_KEYS_INDEX": base64.b64encode(INDEX).decode()}
    from_env = KeyRing.from_env("CRM_KEYS", environ=env)
    assert from_env.active == "k2" and from_env.key_ids == {"k1", "k2"}
    assert from_env.blind_index("x", FIELD) == ring().blind_index("x", FIELD)
    assert KeyRing.from_env("CRM_KEYS", environ={**env, "CRM_KEYS_ACTIVE": "k1"}).active == "k1"
    with pytest.raises(EncryptionError, match="CRM_KEYS is not set"):
        KeyRing.from_env("CRM_KEYS", environ={})
    with pytest.raises(EncryptionError, match="listed twice"):
        KeyRing.from_env("CRM_KEYS", environ={"CRM_KEYS": f"k1:{b64['k1']},k1:{b64['k2']}"})
    assert len(KeyRing.generate_key()) == 32 and KeyRing.generate_key() != KeyRing.generate_key()


def test_only_text_is_encrypted() -> None:
    with pytest.raises(EncryptionError, match="only text"):
        ring().encrypt(b"bytes", FIELD)  # type: ignore[arg-type]
    with pytest.raises(EncryptionError, match="field must be"):
        ring().encrypt("x", "")
