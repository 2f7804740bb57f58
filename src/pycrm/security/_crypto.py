"""Encryption at rest for fields a host marks sensitive, and blind indexes to find them by equality.

Each value is encrypted with AES-256-GCM (``cryptography``'s AESGCM) under a fresh random 96-bit nonce.
The associated data binds the ciphertext to its field (``"customers.national_id"``) and key id, so a
ciphertext copied into another column, or relabelled with another key id, does not decrypt. The stored
text is a compact envelope carrying the key id, so keys can rotate while old rows stay readable::

    enc:v1:<key id>:<base64url(nonce || ciphertext || tag), no padding>

A :class:`KeyRing` holds the keys by id, one of them active (used to encrypt), and optionally a separate
*index key* for blind indexes: a keyed HMAC-SHA256 of the normalized value (and the field), truncated to
128 bits and written as 32 hex digits, stored in its own indexed column for equality look-ups. The same
value in the same field always gives the same index; without the index key the index reveals nothing
but equality (and so value frequencies: index only fields where that is acceptable).

>>> ring = KeyRing({"k1": bytes(range(32))}, active="k1", index_key=bytes(range(32, 64)))
>>> token = ring.encrypt("110101199003077777", "customers.national_id")
>>> token.startswith("enc:v1:k1:"), "1101" in token
(True, False)
>>> ring.decrypt(token, "customers.national_id")
'110101199003077777'
>>> ring.decrypt(token, "contacts.national_id")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
pycrm.errors.EncryptionError: cannot decrypt contacts.national_id with key 'k1': wrong key, or the value was altered...
>>> ring.blind_index("Li.Lei@Example.com ", "customers.emails") == ring.blind_index("li.lei@example.com", "customers.emails")
True
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import unicodedata
from collections.abc import Callable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pycrm.errors import EncryptionError, FieldError, ValidationError

__all__ = ["ENVELOPE_PREFIX", "KeyRing", "is_encrypted", "normalize_for_index"]

#: Every encrypted value this version writes starts with this.
ENVELOPE_PREFIX = "enc:v1:"
#: The form of any envelope, whatever its version (``enc:v<version>:``): a value of this form is never plain
#: data, so one with a version this code does not know is refused, not returned as it is.
_ENVELOPE = re.compile(r"enc:v[^:]*:")
KEY_BYTES = 32
NONCE_BYTES = 12
INDEX_BYTES = 16
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


def is_encrypted(value: object) -> bool:
    """Whether ``value`` has the form of an envelope (``enc:v<version>:...``), by its form, not its key.

    Any version counts: an envelope of a version this code cannot read is still not plain data, and
    :meth:`KeyRing.decrypt` refuses it with an EncryptionError naming the version.

    >>> is_encrypted("enc:v1:k1:AAAA"), is_encrypted("enc:v9:k1:AAAA"), is_encrypted("hello")
    (True, True, False)
    """
    return isinstance(value, str) and _ENVELOPE.match(value) is not None


def normalize_for_index(value: str) -> str:
    """The form values are compared in by blind indexes: NFKC, trimmed, inner spaces collapsed, case-folded.

    >>> normalize_for_index("  ＡＢＣ  Def ")
    'abc def'
    """
    if not isinstance(value, str):
        raise ValidationError([FieldError("value", "type", f"expected text, got {type(value).__name__}")])
    return " ".join(unicodedata.normalize("NFKC", value).split()).casefold()


def _b64decode(text: str, what: str) -> bytes:
    text = text.strip().translate(str.maketrans("-_", "+/")) if isinstance(text, str) else ""
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise EncryptionError(f"{what} is not valid base64") from None


def _utf8(text: str, field: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise EncryptionError(f"{field}: contains a lone surrogate, which is not valid Unicode text") from None


def _check_key(key_id: str, key: object) -> bytes:
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise EncryptionError(f"key id {key_id!r} must be 1 to 32 letters, digits, '_' or '-'")
    if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
        size = len(key) if isinstance(key, (bytes, bytearray)) else type(key).__name__
        raise EncryptionError(f"key {key_id!r} must be {KEY_BYTES} bytes (AES-256), got {size}")
    return bytes(key)


class KeyRing:
    """Field encryption keys by id, one active, and an optional separate blind index key.

    Keys never appear in ``repr`` or in error messages. Build one from raw bytes, from base64 text
    (:meth:`from_base64`) or from the environment (:meth:`from_env`); :meth:`generate_key` makes a key.
    """

    __slots__ = ("_aead", "_index_key", "_keys", "active")

    def __init__(self, keys: Mapping[str, bytes], active: str, *, index_key: bytes | None = None) -> None:
        if not isinstance(keys, Mapping) or not keys:
            raise EncryptionError("a key ring needs at least one key")
        self._keys = {kid: _check_key(kid, key) for kid, key in keys.items()}
        if active not in self._keys:
            raise EncryptionError(f"the active key {active!r} is not in the key ring (keys: {', '.join(sorted(self._keys))})")
        self.active: str = active
        if index_key is not None:
            index_key = _check_key("index", index_key)
            if index_key in self._keys.values():
                raise EncryptionError("the index key must differ from every encryption key")
        self._index_key = index_key
        self._aead = {kid: AESGCM(key) for kid, key in self._keys.items()}

    @staticmethod
    def generate_key() -> bytes:
        """32 random bytes from the operating system: a new AES-256 or index key."""
        return secrets.token_bytes(KEY_BYTES)

    @classmethod
    def from_base64(cls, keys: Mapping[str, str], active: str, *, index_key: str | None = None) -> KeyRing:
        """Keys as base64 (standard or URL-safe, padding optional) text.

        >>> k = base64.b64encode(bytes(32)).decode()
        >>> KeyRing.from_base64({"2024": k}, active="2024")
        KeyRing(keys=['2024'], active='2024', index_key=False)
        """
        raw = {kid: _b64decode(text, f"key {kid!r}") for kid, text in keys.items()}
        return cls(raw, active, index_key=None if index_key is None else _b64decode(index_key, "the index key"))

    @classmethod
    def from_env(cls, var: str = "PYCRM_KEYS", *, environ: Mapping[str, str] | None = None) -> KeyRing:
        """From environment variables: ``PYCRM_KEYS="k2:<base64>,k1:<base64>"`` (the first listed is
        active unless ``PYCRM_KEYS_ACTIVE`` names one) and ``PYCRM_KEYS_INDEX=<base64>`` for the index key.

        >>> k1, k2 = (base64.b64encode(bytes([i]) * 32).decode() for i in (1, 2))
        >>> KeyRing.from_env(environ={"PYCRM_KEYS": f"k2:{k2}, k1:{k1}"})
        KeyRing(keys=['k1', 'k2'], active='k2', index_key=False)
        """
        env = os.environ if environ is None else environ
        spec = env.get(var, "").strip()
        if not spec:
            raise EncryptionError(f"environment variable {var} is not set (expected 'key_id:base64key,...')")
        keys: dict[str, str] = {}
        for item in spec.split(","):
            kid, sep, text = item.strip().partition(":")
            if not sep or not kid:
                raise EncryptionError(f"{var}: {kid or item.strip()!r} is not 'key_id:base64key'")
            if kid in keys:
                raise EncryptionError(f"{var}: key id {kid!r} is listed twice")
            keys[kid] = text
        active = env.get(f"{var}_ACTIVE", "").strip() or next(iter(keys))
        index = env.get(f"{var}_INDEX", "").strip() or None
        return cls.from_base64(keys, active, index_key=index)

    def __repr__(self) -> str:
        return f"KeyRing(keys={sorted(self._keys)}, active={self.active!r}, index_key={self._index_key is not None})"

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    # ---------------------------------------------------------------- encryption

    @staticmethod
    def _aad(key_id: str, field: str) -> bytes:
        return f"{ENVELOPE_PREFIX}{key_id}|{field}".encode()

    @staticmethod
    def _check_field(field: str) -> None:
        if not isinstance(field, str) or not field:
            raise EncryptionError(f"field must be a non-empty name such as 'customers.national_id', got {field!r}")

    def encrypt(self, value: str, field: str) -> str:
        """The envelope of ``value`` for ``field`` (``"<repository>.<field>"``) under the active key.

        A new random nonce each time: encrypting one value twice gives two different envelopes.
        """
        self._check_field(field)
        if not isinstance(value, str):
            raise EncryptionError(f"{field}: only text is encrypted, got {type(value).__name__}")
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead[self.active].encrypt(nonce, _utf8(value, field), self._aad(self.active, field))
        body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
        return f"{ENVELOPE_PREFIX}{self.active}:{body}"

    def key_id(self, token: str, field: str = "value") -> str:
        """The id of the key ``token`` was encrypted with."""
        kid, _ = self._split(token, field)
        return kid

    def _split(self, token: str, field: str) -> tuple[str, bytes]:
        if not is_encrypted(token):
            raise EncryptionError(f"{field}: not an encrypted value (expected '{ENVELOPE_PREFIX}<key id>:<data>')")
        if not token.startswith(ENVELOPE_PREFIX):
            version = token[4 : token.index(":", 4)]
            raise EncryptionError(
                f"{field}: unknown envelope version {version[:16]!r} (this version of pycrm reads {ENVELOPE_PREFIX[4:-1]!r})"
            )
        kid, sep, body = token[len(ENVELOPE_PREFIX) :].partition(":")
        if not sep or not _KEY_ID.fullmatch(kid):
            raise EncryptionError(f"{field}: malformed encrypted value (no key id)")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise EncryptionError(f"{field}: malformed encrypted value (bad base64)") from None
        if len(raw) < NONCE_BYTES + 16:
            raise EncryptionError(f"{field}: malformed encrypted value (too short)")
        return kid, raw

    def decrypt(self, token: str, field: str) -> str:
        """The text ``encrypt(value, field)`` sealed. EncryptionError names the missing key id, or the
        field when the key is wrong or the value was altered or belongs to another field."""
        self._check_field(field)
        kid, raw = self._split(token, field)
        aead = self._aead.get(kid)
        if aead is None:
            raise EncryptionError(
                f"cannot decrypt {field}: no key {kid!r} in the key ring (keys: {', '.join(sorted(self._keys))})"
            )
        try:
            plain = aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], self._aad(kid, field))
        except InvalidTag:
            raise EncryptionError(
                f"cannot decrypt {field} with key {kid!r}: wrong key, or the value was altered or belongs to another field"
            ) from None
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError:  # pragma: no cover - authenticated data we encrypted ourselves is UTF-8
            raise EncryptionError(f"cannot decrypt {field}: not UTF-8 text") from None

    def needs_rotation(self, token: str, field: str = "value") -> bool:
        """Whether ``token`` is under a key other than the active one."""
        return self.key_id(token, field) != self.active

    def rotate(self, token: str, field: str) -> str:
        """``token`` re-encrypted under the active key (unchanged when it already is).

        Old keys stay in the ring until every row is rotated; then they can be dropped.
        """
        if not self.needs_rotation(token, field):
            self.decrypt(token, field)  # still proves it is intact
            return token
        return self.encrypt(self.decrypt(token, field), field)

    # ---------------------------------------------------------------- blind index

    def blind_index(self, value: str, field: str, *, normalize: Callable[[str], str] = normalize_for_index) -> str:
        """HMAC-SHA256 under the index key of the field and the normalized value, 128 bits as 32 hex digits.

        Equal values (after ``normalize``) in one field give equal indexes; the field is part of the MAC,
        so equal values in two fields do not. A look-up by index can (rarely) meet a collision, so compare
        the decrypted value too.
        """
        self._check_field(field)
        if self._index_key is None:
            raise EncryptionError(f"{field}: no index key in the key ring; blind indexes need one (index_key=...)")
        if not isinstance(value, str):
            raise EncryptionError(f"{field}: only text is indexed, got {type(value).__name__}")
        msg = _utf8(field, "field") + b"\x00" + _utf8(normalize(value), field)
        return hmac.new(self._index_key, msg, hashlib.sha256).digest()[:INDEX_BYTES].hex()
