"""A ready handler that POSTs events to a URL, signed: :class:`Webhook`, :func:`webhook`, :func:`verify_signature`.

Each event goes out as one compact UTF-8 JSON document: ``event.to_json()`` plus ``"record"``, the record the
event is about as the webhook's ``actor`` sees it (its field rules: masked values masked, hidden fields
absent; a record outside its scope, deleted or not readable by it: ``null``). Headers::

    Content-Type: application/json
    X-Pycrm-Event: DealWon                         (event.name)
    X-Pycrm-Delivery: 5b2c...                      (event.key: the same on every delivery of the event)
    X-Pycrm-Timestamp: 1767225600                  (unix seconds when this request was signed)
    X-Pycrm-Signature: v1=<hex HMAC-SHA256(secret, b"<timestamp>." + body)>

A receiver checks the request with :func:`verify_signature` (which also refuses old timestamps: replays)
and drops a delivery key it has already processed (delivery is at least once).

Transport: httpx (``pip install "pycrm[automation]"``), one client per webhook, an explicit ``timeout`` for
connecting, writing and each read, no redirects followed, no cookies kept, no proxy, netrc or certificate
settings taken from the environment. 2xx is delivered. A timeout, a connection error, 5xx, 408 and 429 are tried again at
once, ``attempts`` tries in all with at most one second of pauses, then :class:`WebhookError` (the
dispatcher retries the event later with its own backoff and finally dead-letters it); any other answer
fails at once. After a failure the target rests for ``cooldown`` seconds: events for it meanwhile fail
without a request (they are retried later), so a dead target costs one timeout per cool-down, not one per
event, and never holds up the other handlers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import TYPE_CHECKING, Any, TypeVar

from pycrm.automation._dispatch import event_types
from pycrm.domain import User
from pycrm.domain._codec import to_data
from pycrm.domain._events import Event
from pycrm.errors import CRMError, FieldError, NotFound, PermissionDenied, ValidationError, quote

if TYPE_CHECKING:
    import httpx

    from pycrm._crm import CRM

__all__ = ["SIGNATURE_VERSION", "Webhook", "WebhookError", "sign", "verify_signature", "webhook"]

#: The scheme of the signature header's value (``v1=<hex>``).
SIGNATURE_VERSION = "v1"
#: The shortest secret accepted, in bytes (after UTF-8 encoding).
MIN_SECRET = 16
MAX_SECRET = 4096
#: Pauses between the tries of one delivery (seconds); their sum is at most one second.
PAUSES = (0.1, 0.2, 0.3, 0.4)
#: How much of a response body is read (then the connection is dropped rather than read further).
MAX_RESPONSE = 64 * 1024
T = TypeVar("T")
_RETRY_STATUS = frozenset({408, 429})
_NAME_CHARS = re.compile(r"[^\w.:<>-]+")
_HEADERS = {
    "event": "X-Pycrm-Event",
    "delivery": "X-Pycrm-Delivery",
    "timestamp": "X-Pycrm-Timestamp",
    "signature": "X-Pycrm-Signature",
}


class WebhookError(CRMError):
    """A webhook delivery failed. ``url``: the target without credentials or query; ``status``: the HTTP
    status answered (None for a timeout, a connection error or a target resting after a failure);
    ``retryable``: whether trying again later may help. The message never holds the secret."""

    def __init__(self, message: str, *, url: str, status: int | None = None, retryable: bool = True):
        super().__init__(message)
        self.url = url
        self.status = status
        self.retryable = retryable


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:
        raise CRMError('webhooks need httpx: pip install "pycrm[automation]"') from None
    return httpx


def _bad(field: str, code: str, message: str) -> ValidationError:
    return ValidationError([FieldError(field, code, message)])


def _secret(value: Any, field: str = "secret") -> bytes:
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not isinstance(value, bytes):
        raise _bad(field, "type", f"expected str or bytes, got {type(value).__name__}")
    if not MIN_SECRET <= len(value) <= MAX_SECRET:
        raise _bad(field, "length", f"must be {MIN_SECRET} to {MAX_SECRET} bytes, got {len(value)}")
    return value


def _number(field: str, value: Any, low: float, high: float, unit: str = "seconds") -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or not low <= value <= high:
        raise _bad(field, "range", f"must be {low:g} to {high:g} {unit}, got {quote(value)}")
    return float(value)


def _whole(field: str, value: Any, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _bad(field, "range", f"must be a whole number from {low} to {high}, got {quote(value)}")
    return value


def _parse_url(value: Any) -> Any:
    httpx = _httpx()
    if not isinstance(value, str):
        raise _bad("url", "type", f"expected a URL string, got {type(value).__name__}")
    try:
        url = httpx.URL(value.strip())
    except (httpx.InvalidURL, ValueError, TypeError):
        raise _bad("url", "invalid_url", f"not a URL: {quote(_shown_text(value), 70)}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise _bad("url", "invalid_url", f"expected an http:// or https:// URL with a host, got {quote(_shown(url), 70)}")
    return url


def _shown(url: Any) -> str:
    """A URL as messages and handler names show it: no user, password, query or fragment."""
    port = f":{url.port}" if url.port is not None else ""
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}{port}{url.path}"


def _shown_text(value: str) -> str:
    """An unparsable URL with what looks like credentials or a query cut off."""
    text = value.split("?", 1)[0].split("#", 1)[0]
    scheme, sep, rest = text.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else text.rpartition("@")[2]


def _event_types(events: Any) -> tuple[type[Event] | str, ...]:
    if isinstance(events, type | str) or not isinstance(events, Iterable):
        events = (events,)
    return event_types(events, "events")


def _actor(value: Any) -> User | None:
    if value is not None and not isinstance(value, User):
        raise _bad("actor", "type", f"expected a pycrm.User or None, got {type(value).__name__}")
    if value is not None:
        from pycrm.security import Policy

        try:
            Policy(value)  # an unknown role fails now, not at the first delivery
        except ValidationError as exc:
            raise exc.prefixed("actor") from None
    return value


def sign(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``: ``v1=<hex HMAC-SHA256>`` over
    ``b"<timestamp>." + body``.

    >>> sign(b"0123456789abcdef", 1767225600, b'{"event":"DealWon"}')[:11]
    'v1=8758dddc'
    """
    key = _secret(secret)
    mac = hmac.new(key, f"{int(timestamp)}.".encode("ascii") + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def _header(headers: Mapping[str, Any], name: str) -> Any:
    if name in headers:
        return headers[name]
    wanted = name.lower()
    for k, v in headers.items():
        if isinstance(k, str) and k.lower() == wanted:
            return v
    return None


def verify_signature(
    secret: str | bytes,
    headers_or_values: Mapping[str, Any] | tuple[Any, Any],
    body: bytes | str,
    *,
    tolerance: float = 300,
    now: float | None = None,
) -> int:
    """Check a webhook request as a receiver: its signature over ``body`` (the raw bytes received, before
    any JSON parsing) with ``secret``, and that its timestamp is within ``tolerance`` seconds of ``now``
    (default: the clock), so a request recorded and replayed later is refused. ``headers_or_values``: the
    request's headers (any mapping; names in any case) or the pair ``(timestamp, signature)``.

    Returns the request's timestamp; a failed check is a :class:`~pycrm.errors.ValidationError` naming the
    header (``X-Pycrm-Signature`` or ``X-Pycrm-Timestamp``). The signature is compared in constant time.
    Delivery is at least once: after this check, drop a ``X-Pycrm-Delivery`` (the body's ``key``) you
    have processed before.
    """
    key = _secret(secret)
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not isinstance(body, bytes):
        raise _bad("body", "type", f"expected the raw request body as bytes, got {type(body).__name__}")
    tolerance = _number("tolerance", tolerance, 1, 86400)
    if isinstance(headers_or_values, Mapping):
        stamp = _header(headers_or_values, _HEADERS["timestamp"])
        signature = _header(headers_or_values, _HEADERS["signature"])
    elif isinstance(headers_or_values, tuple) and len(headers_or_values) == 2:
        stamp, signature = headers_or_values
    else:
        raise _bad("headers_or_values", "type", "expected the request's headers or a (timestamp, signature) pair")
    ts_field, sig_field = _HEADERS["timestamp"], _HEADERS["signature"]
    if isinstance(stamp, bytes):
        stamp = stamp.decode("ascii", "replace")
    if stamp is None or stamp == "":
        raise _bad(ts_field, "required", "missing")
    text = str(stamp).strip()
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise _bad(ts_field, "invalid", f"not unix seconds: {quote(stamp)}")
    timestamp = int(text)
    clock = time.time() if now is None else _number("now", now, 0, 1e11, "unix seconds")
    if abs(clock - timestamp) > tolerance:
        raise _bad(ts_field, "expired", f"{timestamp} is more than {tolerance:g} s from now: a replayed or delayed request")
    if isinstance(signature, bytes):
        signature = signature.decode("ascii", "replace")
    if not isinstance(signature, str) or not signature.strip():
        raise _bad(sig_field, "required", "missing")
    expected = sign(key, timestamp, body).encode("ascii")
    ok = False
    for part in signature.split(","):  # several during a change of secret at the sender: any may match
        ok |= hmac.compare_digest(part.strip().encode("ascii", "replace"), expected)
    if not ok:
        raise _bad(sig_field, "invalid_signature", "does not match the body and timestamp (wrong secret or altered request)")
    return timestamp


class Webhook:
    """A handler POSTing each event it is given to ``url``, signed with ``secret`` (see the module docstring).

    ``events``: the event types it takes (classes, type names, custom event names; default every event);
    ``actor``: the :class:`~pycrm.User` whose view of the record is sent (its roles' scopes and field
    rules apply; None: the system actor, every field); ``timeout``: seconds for connecting, writing and each
    read (0.1 to 60); ``attempts``: tries per delivery (1 to 5); ``cooldown``: seconds a target that failed
    rests (0 to 3600; 0 never); ``name``: the handler's name in the outbox (default
    ``webhook:<url without query>``, characters a handler name cannot hold replaced by ``_``).

    Register it with :func:`webhook` or :meth:`register`; one delivery (``hook(event)``) takes at most
    ``attempts`` tries of ``timeout`` per step plus one second of pauses.
    """

    def __init__(
        self,
        url: str,
        secret: str | bytes,
        *,
        events: Iterable[type[Event] | str] | type[Event] | str = (Event,),
        actor: User | None = None,
        timeout: float = 5.0,
        attempts: int = 2,
        cooldown: float = 30.0,
        name: str | None = None,
    ):
        errors: list[FieldError] = []

        def check(fn: Callable[..., T], *args: Any) -> T:
            try:
                return fn(*args)
            except ValidationError as exc:
                errors.extend(exc.errors)
                return None  # type: ignore[return-value]  # never kept: the errors are raised below

        self._url = check(_parse_url, url)
        self._secret = check(_secret, secret)
        self.events = check(_event_types, events)
        self.actor = check(_actor, actor)
        self.timeout = check(_number, "timeout", timeout, 0.1, 60)
        self.attempts = check(_whole, "attempts", attempts, 1, 5)
        self.cooldown = check(_number, "cooldown", cooldown, 0, 3600)
        if name is not None and (not isinstance(name, str) or not name):
            errors.append(FieldError("name", "invalid_name", f"expected a handler name, got {quote(name)}"))
        if errors:
            raise ValidationError(errors)  # every problem at once
        self.url = _shown(self._url)
        if name is None:
            name = "webhook:" + _NAME_CHARS.sub("_", self.url)
            if len(name) > 200:
                name = name[:183] + "-" + hashlib.sha256(name.encode()).hexdigest()[:16]
        self.name = name
        self._crm: CRM | None = None
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._failed_at: float | None = None  # time.monotonic() of the last failure
        self._last_error = ""

    def __repr__(self) -> str:
        return f"<Webhook {self.name} -> {self.url}>"

    @classmethod
    def from_config(cls, config: Any, *, path: str = "webhooks[0]") -> Webhook:
        """A webhook from a config mapping (a TOML/JSON table): ``url``, ``secret_env`` (the name of an
        environment variable holding the secret) or ``secret``, and optionally ``events`` (type names),
        ``timeout``, ``attempts``, ``cooldown``, ``name``. Errors name the key under ``path``.

        >>> import pycrm
        >>> hook = Webhook.from_config({"url": "https://hooks.example.com/crm", "secret": "0123456789abcdef0123",
        ...                             "events": ["DealWon"], "timeout": 5})
        >>> hook.name, [e.__name__ for e in hook.events], hook.timeout
        ('webhook:https:_hooks.example.com_crm', ['DealWon'], 5.0)
        >>> try:
        ...     Webhook.from_config({"url": "ftp://x", "secret": "s"}, path="webhooks[2]")
        ... except pycrm.ValidationError as exc:
        ...     exc.fields
        ['webhooks[2].url', 'webhooks[2].secret']
        """
        if not isinstance(path, str):
            raise _bad("path", "type", f"expected a str, got {type(path).__name__}")
        if not isinstance(config, Mapping):
            raise _bad(path, "type", f"expected a table of webhook settings, got {type(config).__name__}")
        known = {"url", "secret", "secret_env", "events", "timeout", "attempts", "cooldown", "name"}
        unknown = sorted(str(k) for k in config if k not in known)
        if unknown:
            raise ValidationError(
                [FieldError(f"{path}.{k}", "unknown_key", f"not a webhook setting ({', '.join(sorted(known))})") for k in unknown]
            )
        errors: list[FieldError] = []
        if "url" not in config:
            errors.append(FieldError(f"{path}.url", "required", "missing"))
        secret: Any = None
        if ("secret" in config) == ("secret_env" in config):
            errors.append(FieldError(f"{path}.secret_env", "required", "give exactly one of secret_env and secret"))
        elif "secret_env" in config:
            var = config["secret_env"]
            if not isinstance(var, str) or not var:
                errors.append(FieldError(f"{path}.secret_env", "type", "expected the name of an environment variable"))
            elif not os.environ.get(var):
                errors.append(FieldError(f"{path}.secret_env", "missing_env", f"the environment variable {var!r} is not set"))
            else:
                secret = os.environ[var]
        else:
            secret = config["secret"]
        if errors:
            raise ValidationError(errors)
        kw = {k: config[k] for k in ("events", "timeout", "attempts", "cooldown", "name") if k in config}
        if isinstance(kw.get("events"), str):
            kw["events"] = [kw["events"]]
        try:
            return cls(config["url"], secret, **kw)
        except ValidationError as exc:
            renamed = [
                FieldError("secret_env" if e.field == "secret" and "secret_env" in config else e.field, e.code, e.message)
                for e in exc.errors
            ]
            raise ValidationError(renamed).prefixed(path) from None

    # ---- registration ----
    def register(self, crm: CRM) -> Webhook:
        """Add this webhook to ``crm``'s handlers (``crm.dispatch()`` then calls it); returns it."""
        from pycrm._crm import CRM

        if not isinstance(crm, CRM):
            raise _bad("crm", "type", f"expected a pycrm.CRM, got {type(crm).__name__}")
        if self._crm is not None and self._crm is not crm:
            raise _bad("crm", "registered", f"{self.name} is registered with another CRM; make another Webhook")
        crm.handlers.add(self, *self.events, name=self.name)
        self._crm = crm
        return self

    # ---- what is sent ----
    def record(self, event: Event) -> dict[str, Any] | None:
        """The record ``event`` is about as the actor sees it (``to_data`` form, hidden fields left out), or
        None: no record, deleted, outside the actor's scope, or a repository the actor may not read."""
        crm = self._crm
        if crm is None:
            raise CRMError(f"{self.name} is not registered with a CRM: use pycrm.automation.webhook(crm, ...)")
        if event.entity is None or event.entity_id is None:
            return None
        from pycrm.security import Policy

        policy = Policy(self.actor)
        if policy.allowed(event.entity, "read") is None:
            return None  # not asked: a refused read would be written to the audit trail on every delivery
        try:
            with crm.session(actor=self.actor) as s:
                entity = s.unit.repository(event.entity).get(event.entity_id)
        except (NotFound, PermissionDenied):
            return None
        data = to_data(entity)
        if self.actor is not None:
            rules = crm.security.field_rules.resolve(policy.roles, event.entity)
            for field, rule in rules.items():
                if rule == "hide" and field in data:
                    del data[field]  # absent, not shown empty (hidden custom keys are removed already)
        return data

    def body(self, event: Event) -> bytes:
        """The request body for ``event``: compact UTF-8 JSON of ``event.to_json()`` and ``"record"``."""
        doc = {**event.to_json(), "record": self.record(event)}
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")

    def headers(self, event: Event, body: bytes, timestamp: int) -> dict[str, str]:
        """The request headers for ``body`` of ``event`` signed at ``timestamp`` (unix seconds)."""
        return {
            "Content-Type": "application/json",
            _HEADERS["event"]: event.name,
            _HEADERS["delivery"]: event.key,
            _HEADERS["timestamp"]: str(timestamp),
            _HEADERS["signature"]: sign(self._secret, timestamp, body),
        }

    # ---- delivery ----
    def __call__(self, event: Event) -> None:
        """Deliver ``event``: return once the target answered 2xx, else raise :class:`WebhookError`."""
        self._check_resting()
        self.send(event, self.body(event))

    def _check_resting(self) -> None:
        with self._lock:
            failed_at, last = self._failed_at, self._last_error
        if failed_at is None:
            return
        ago = time.monotonic() - failed_at
        if ago < self.cooldown:
            raise WebhookError(
                f"webhook {self.url}: not tried: it failed {ago:.1f} s ago ({last}); it rests {self.cooldown:g} s",
                url=self.url,
            )

    def _client_once(self) -> Any:
        with self._lock:
            if self._client is None:
                httpx = _httpx()
                t = self.timeout
                self._client = httpx.Client(
                    timeout=httpx.Timeout(connect=t, read=t, write=t, pool=t),
                    follow_redirects=False,
                    cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),  # keeps none
                    trust_env=False,
                    headers={"User-Agent": "pycrm-webhook"},
                )
            return self._client

    def send(self, event: Event, body: bytes) -> None:
        """POST ``body`` (see :meth:`body`) for ``event``: ``attempts`` tries while the failure is one to try
        again (timeout, connection error, 5xx, 408, 429), then :class:`WebhookError`."""
        httpx = _httpx()
        client = self._client_once()
        failure: WebhookError | None = None
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(PAUSES[attempt - 1])
            stamp = int(time.time())
            try:
                with client.stream("POST", self._url, content=body, headers=self.headers(event, body, stamp)) as response:
                    status = response.status_code
                    _drain(response)
            except httpx.TransportError as exc:
                failure = WebhookError(f"webhook {self.url}: {self._cause(exc)}", url=self.url)
                continue
            if 200 <= status < 300:
                with self._lock:
                    self._failed_at = None
                return
            retryable = status >= 500 or status in _RETRY_STATUS
            note = " (redirects are not followed)" if 300 <= status < 400 else ""
            failure = WebhookError(
                f"webhook {self.url}: answered HTTP {status}{note}", url=self.url, status=status, retryable=retryable
            )
            if not retryable:
                raise failure
        assert failure is not None
        tries = f" after {self.attempts} tries" if self.attempts > 1 else ""
        with self._lock:
            self._failed_at = time.monotonic()
            self._last_error = str(failure).removeprefix(f"webhook {self.url}: ")
        raise WebhookError(f"{failure}{tries}", url=self.url, status=failure.status, retryable=failure.retryable)

    def _cause(self, exc: BaseException) -> str:
        text = str(exc) or "no detail"
        for secret_text in (str(self._url), self._url.password, self._url.query.decode("ascii", "replace")):
            if secret_text:
                text = text.replace(secret_text, "…")
        if len(text) > 200:
            text = text[:199] + "…"
        kind = "timed out" if isinstance(exc, _httpx().TimeoutException) else "failed"
        return f"{kind} ({type(exc).__name__}: {text})"

    def close(self) -> None:
        """Close the HTTP client (a later delivery opens a new one)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


def _drain(response: Any) -> None:
    """Read a small answer (so the connection can be used again); a large one is dropped with its connection."""
    seen = 0
    for chunk in response.iter_raw():
        seen += len(chunk)
        if seen > MAX_RESPONSE:
            break


def webhook(crm: CRM, url: str, secret: str | bytes, **kw: Any) -> Webhook:
    """A :class:`Webhook` for ``url`` registered with ``crm`` (its handlers; ``crm.dispatch()`` delivers).

    ``kw``: ``events``, ``actor``, ``timeout``, ``attempts``, ``cooldown``, ``name`` (see :class:`Webhook`).
    """
    return Webhook(url, secret, **kw).register(crm)
