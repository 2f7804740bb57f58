"""The webhook handler against a real HTTP server on 127.0.0.1, on every adapter.

What a receiver gets (the event, the record as the webhook's actor sees it, signed headers it can verify and
replays it can refuse), what a failing target costs (retried within bounds, then retried by the dispatcher
and dead-lettered; a hanging target never holds up the other handlers), and bad settings refused naming the
field or the config path.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import pycrm
from pycrm import CRMError, Customer, Permission, Role, User, ValidationError
from pycrm.automation import (
    CustomerCreated,
    CustomerUpdated,
    DealWon,
    Event,
    Retry,
    Webhook,
    WebhookError,
    verify_signature,
    webhook,
)
from pycrm.security import FieldRules

SECRET = "s3cret-for-tests-0123456789"
EVERYTHING = [Permission("*", "*", "all")]
RULES = FieldRules({"viewer": {"customers.emails": "mask", "customers.phones": "hide", "customers.custom.national_id": "hide"}})
VIEWER = User("Viewer", "viewer@example.com", roles=[Role("viewer", EVERYTHING)], id="u9")
REP = User("Wang Fang", "wang.fang@example.com", roles=["sales"], id="u1")


class Target:
    """A local HTTP server answering from a script: each request takes the next answer (the last one
    repeats): an HTTP status, or ``"hang"`` (no answer until the test ends)."""

    def __init__(self, *answers: int | str, cookie: bool = False) -> None:
        self.answers = list(answers) or [200]
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.release = threading.Event()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    target.requests.append((dict(self.headers.items()), body))
                    answer = target.answers[min(len(target.requests), len(target.answers)) - 1]
                if answer == "hang":
                    target.release.wait(30)
                    return
                self.send_response(int(answer))
                if cookie:
                    self.send_header("Set-Cookie", "session=abc; Path=/")
                if 300 <= int(answer) < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def docs(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[..., Target]]:
    made: list[Target] = []

    def start(*answers: int | str, **kw: Any) -> Target:
        t = Target(*answers, **kw)
        made.append(t)
        return t

    yield start
    for t in made:
        t.close()


@pytest.fixture
def hooks() -> Iterator[list[Webhook]]:
    made: list[Webhook] = []
    yield made
    for h in made:
        h.close()


@pytest.fixture
def ocrm(open_crm: Callable[..., pycrm.CRM]) -> pycrm.CRM:
    return open_crm(outbox=True, field_rules=RULES)


@pytest.fixture
def mem() -> Iterator[pycrm.CRM]:
    """A memory store, for tests of the transport alone (they need no adapter)."""
    with pycrm.open("memory://", outbox=True) as crm:
        yield crm


def _customer(crm: pycrm.CRM, name: str = "Acme", **kw: Any) -> str:
    with crm.session() as s:
        return s.customers.add(Customer(name, **kw)).id


def _hook(crm: pycrm.CRM, hooks: list[Webhook], url: str, **kw: Any) -> Webhook:
    kw.setdefault("events", (CustomerCreated,))
    h = webhook(crm, url, SECRET, **kw)
    hooks.append(h)
    return h


# ---------------------------------------------------------------------------- what a receiver gets


def test_a_delivery_is_signed_json_of_the_event_and_its_record(ocrm: pycrm.CRM, serve: Any, hooks: Any) -> None:
    target = serve(200)
    _hook(ocrm, hooks, target.url)
    cid = _customer(ocrm, "王芳贸易", emails=["li.lei@example.com"])
    result = ocrm.dispatch()
    assert result.delivered == 1 and result.failures == 0
    [(headers, body)] = target.requests
    doc = json.loads(body.decode("utf-8"))
    assert doc["event"] == "CustomerCreated" and doc["entity"] == "customers" and doc["entity_id"] == cid
    assert doc["record"]["name"] == "王芳贸易" and doc["record"]["emails"] == ["li.lei@example.com"]
    assert "王芳贸易".encode() in body and b": " not in body  # compact UTF-8, not \\u escapes
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Pycrm-Event"] == "CustomerCreated"
    assert headers["X-Pycrm-Delivery"] == doc["key"]
    assert verify_signature(SECRET, headers, body) == int(headers["X-Pycrm-Timestamp"])
    [entry] = ocrm.outbox.entries()
    assert entry.state == "done" and entry.key == doc["key"]


def test_a_tampered_body_a_wrong_secret_and_an_old_timestamp_are_refused(ocrm: pycrm.CRM, serve: Any, hooks: Any) -> None:
    target = serve(200)
    _hook(ocrm, hooks, target.url)
    _customer(ocrm)
    ocrm.dispatch()
    [(headers, body)] = target.requests
    stamp = int(headers["X-Pycrm-Timestamp"])
    with pytest.raises(ValidationError) as bad:
        verify_signature(SECRET, headers, body.replace(b"Acme", b"Acmf"))
    assert bad.value.fields == ["X-Pycrm-Signature"]
    with pytest.raises(ValidationError) as bad:
        verify_signature("another-secret-0123456789", headers, body)
    assert bad.value.fields == ["X-Pycrm-Signature"]
    with pytest.raises(ValidationError) as bad:  # replayed ten minutes later
        verify_signature(SECRET, headers, body, now=stamp + 600)
    assert bad.value.fields == ["X-Pycrm-Timestamp"] and bad.value.errors[0].code == "expired"
    with pytest.raises(ValidationError) as bad:  # a timestamp moved forward to pass the window: signature fails
        verify_signature(SECRET, {**headers, "X-Pycrm-Timestamp": str(stamp + 600)}, body, now=stamp + 600)
    assert bad.value.fields == ["X-Pycrm-Signature"]
    lower = {k.lower(): v for k, v in headers.items()}  # header names in any case; the values as a pair
    assert verify_signature(SECRET, lower, body, now=stamp + 299) == stamp
    assert verify_signature(SECRET, (stamp, headers["X-Pycrm-Signature"]), body, now=stamp) == stamp


def test_the_record_is_read_as_the_actor_sees_it(ocrm: pycrm.CRM, serve: Any, hooks: Any) -> None:
    target = serve(200)
    _hook(ocrm, hooks, target.url, actor=VIEWER)
    _customer(
        ocrm,
        emails=["li.lei@example.com"],
        phones=["+86 138 0013 8000"],
        custom={"national_id": "110101199003077777", "tier": "gold"},
    )
    assert ocrm.dispatch().delivered == 1
    [(_, body)] = target.requests
    record = json.loads(body)["record"]
    assert record["emails"] == ["l***@example.com"]  # masked
    assert "phones" not in record  # hidden: absent, not shown empty
    assert record["custom"] == {"tier": "gold"}
    assert b"li.lei" not in body and b"8000" not in body and b"110101" not in body


def test_a_scoped_actor_never_receives_another_owners_record(ocrm: pycrm.CRM, serve: Any, hooks: Any) -> None:
    target = serve(200)
    _hook(ocrm, hooks, target.url, actor=REP, events=(CustomerCreated, "UserCreated"))
    mine = _customer(ocrm, "Mine", owner_id="u1")
    theirs = _customer(ocrm, "Theirs", owner_id="u2", emails=["boss@theirs.example"])
    with ocrm.session() as s:
        s.users.add(User("Other", "other@example.com", roles=["sales"], id="u2"))
    assert ocrm.dispatch().delivered == 3
    docs = {d["entity_id"]: d for d in target.docs()}
    assert docs[mine]["record"]["name"] == "Mine"
    assert docs[theirs]["record"] is None and docs["u2"]["record"] is None
    assert all(b"Theirs" not in body and b"boss@" not in body for _, body in target.requests)


def test_a_deleted_record_arrives_as_null(ocrm: pycrm.CRM, serve: Any, hooks: Any) -> None:
    target = serve(200)
    _hook(ocrm, hooks, target.url, events=("CustomerDeleted",))
    cid = _customer(ocrm)
    with ocrm.session() as s:
        s.customers.delete(cid)
    assert ocrm.dispatch().delivered == 2
    [doc] = target.docs()
    assert doc["event"] == "CustomerDeleted" and doc["record"] is None


# ---------------------------------------------------------------------------- failing targets


def test_500_then_200_is_delivered_once(ocrm: pycrm.CRM, serve: Any, hooks: Any) -> None:
    target = serve(500, 200)
    _hook(ocrm, hooks, target.url, attempts=2)
    _customer(ocrm)
    result = ocrm.dispatch()
    assert (result.delivered, result.failures) == (1, 0)
    assert len(target.requests) == 2
    assert len({h["X-Pycrm-Delivery"] for h, _ in target.requests}) == 1
    assert ocrm.outbox.counts()["done"] == 1


def test_a_target_answering_500_ends_in_the_dead_letters_with_its_error(ocrm: pycrm.CRM, serve: Any, hooks: Any) -> None:
    target = serve(500)
    hook = _hook(ocrm, hooks, target.url + "?token=query-secret-xyz", attempts=2)
    _customer(ocrm)
    result = ocrm.dispatch(retry=Retry(attempts=2, base=0))
    assert result.dead == 1 and result.delivered == 0
    [dead] = ocrm.outbox.dead()
    assert dead.attempts == 2
    assert dead.error is not None and "HTTP 500" in dead.error and target.url in dead.error
    assert SECRET not in dead.error and "query-secret" not in dead.error
    assert "query-secret" not in hook.name
    assert 2 <= len(target.requests) <= 4  # two tries, then the target rests: the redelivery fails fast


def test_the_idempotency_key_is_the_same_on_every_redelivery(ocrm: pycrm.CRM, serve: Any, hooks: Any) -> None:
    target = serve(503, 500, 200)
    _hook(ocrm, hooks, target.url, attempts=1, cooldown=0)
    _customer(ocrm)
    result = ocrm.dispatch(retry=Retry(attempts=5, base=0))
    assert result.delivered == 1 and result.failures == 2
    assert len(target.requests) == 3
    keys = {h["X-Pycrm-Delivery"] for h, _ in target.requests} | {d["key"] for d in target.docs()}
    assert len(keys) == 1
    [entry] = ocrm.outbox.entries()
    assert entry.state == "done" and entry.key in keys


def test_a_hanging_or_failing_target_is_bounded_and_blocks_no_other_handler(ocrm: pycrm.CRM, serve: Any, hooks: Any) -> None:
    hang, fail = serve("hang"), serve(500)
    _hook(ocrm, hooks, hang.url, timeout=0.2, attempts=2)
    _hook(ocrm, hooks, fail.url, attempts=2)
    seen: list[str] = []
    ocrm.on(CustomerCreated, name="others")(lambda e: seen.append(e.key))
    n = 20
    with ocrm.session() as s:
        for i in range(n):
            s.customers.add(Customer(f"Customer {i}"))
    started = time.monotonic()
    result = ocrm.dispatch(retry=Retry(attempts=3, base=60))
    took = time.monotonic() - started
    assert took < 10, took  # 20 events x 2 tries x 0.2 s would be 8 s; the resting target costs one timeout
    assert len(seen) == n  # the other handler took every event
    assert result.retrying == n and result.delivered == 0
    assert len(hang.requests) <= 2 and len(fail.requests) <= 2
    entries = ocrm.outbox.entries("pending")
    assert len(entries) == n
    for e in entries:
        assert e.delivered == ("others",) and e.attempts == 1
        assert e.error is not None and hang.url in e.error and fail.url in e.error
    assert any("timed out" in (e.error or "") for e in entries)
    # dead after the dispatcher's attempts, the other handler not called again
    later = ocrm.dispatch(now=pycrm.domain.utcnow() + dt.timedelta(days=1), retry=Retry(attempts=2, base=60))
    assert later.dead == n and len(seen) == n
    assert len(ocrm.outbox.dead()) == n


def test_other_4xx_and_redirects_fail_at_once(mem: pycrm.CRM, serve: Any, hooks: Any) -> None:
    gone, moved = serve(404), serve(302)
    hook_404 = _hook(mem, hooks, gone.url, attempts=5, events=(CustomerCreated,))
    hook_302 = _hook(mem, hooks, moved.url, attempts=5, events=(CustomerUpdated,), name="moved")
    event = CustomerCreated(entity_id="c1")
    with pytest.raises(WebhookError) as err:
        hook_404(event)
    assert err.value.status == 404 and not err.value.retryable and "HTTP 404" in str(err.value)
    assert len(gone.requests) == 1
    with pytest.raises(WebhookError) as err:
        hook_302(CustomerUpdated(entity_id="c1"))
    assert err.value.status == 302 and "redirects are not followed" in str(err.value)
    assert len(moved.requests) == 1


def test_a_refused_payload_does_not_make_the_target_rest(mem: pycrm.CRM, serve: Any, hooks: Any) -> None:
    target = serve(422, 200)
    hook = _hook(mem, hooks, target.url)
    with pytest.raises(WebhookError):
        hook(CustomerCreated(entity_id="c1"))
    hook(CustomerCreated(entity_id="c2"))
    assert len(target.requests) == 2


def test_no_cookie_is_kept(mem: pycrm.CRM, serve: Any, hooks: Any) -> None:
    target = serve(200, cookie=True)
    hook = _hook(mem, hooks, target.url)
    hook(CustomerCreated(entity_id="c1"))
    hook(CustomerCreated(entity_id="c2"))
    assert [h.get("Cookie") for h, _ in target.requests] == [None, None]


# ---------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": 42}, "url"),
        ({"secret": "short"}, "secret"),
        ({"secret": 1234567890123456789}, "secret"),
        ({"timeout": 0.01}, "timeout"),
        ({"timeout": 61}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"attempts": 0}, "attempts"),
        ({"attempts": 6}, "attempts"),
        ({"attempts": True}, "attempts"),
        ({"cooldown": -1}, "cooldown"),
        ({"events": ()}, "events"),
        ({"events": (int,)}, "events[0]"),
        ({"events": ("Bad Name!",)}, "events[0]"),
        ({"actor": "admin"}, "actor"),
        ({"actor": User("X", "x@example.com", roles=["no-such-role"], id="u7")}, "actor.roles[0]"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_settings_name_the_field(kw: dict[str, Any], field: str) -> None:
    args = {"url": "https://hooks.example.com/crm", "secret": SECRET, **kw}
    with pytest.raises(ValidationError) as bad:
        Webhook(args.pop("url"), args.pop("secret"), **args)
    assert bad.value.fields == [field]


def test_a_bad_name_is_refused_when_registered(ocrm: pycrm.CRM) -> None:
    with pytest.raises(ValidationError) as bad:
        webhook(ocrm, "https://hooks.example.com/crm", SECRET, name="has spaces")
    assert bad.value.fields == ["name"]
    webhook(ocrm, "https://hooks.example.com/crm", SECRET)
    with pytest.raises(ValidationError) as bad:  # the same target twice: the same default name
        webhook(ocrm, "https://hooks.example.com/crm?other=1", SECRET)
    assert bad.value.fields == ["name"]


def test_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYCRM_TEST_HOOK_SECRET", SECRET)
    hook = Webhook.from_config(
        {"url": "https://hooks.example.com/won", "secret_env": "PYCRM_TEST_HOOK_SECRET", "events": ["DealWon"], "timeout": 2}
    )
    assert hook.events == (DealWon,) and hook.timeout == 2.0 and hook.attempts == 2
    assert hook.name == "webhook:https:_hooks.example.com_won"
    assert Webhook.from_config({"url": "https://h.example.com/", "secret": SECRET}).events == (Event,)

    def fields(config: Any, path: str = "webhooks[3]") -> list[str]:
        with pytest.raises(ValidationError) as bad:
            Webhook.from_config(config, path=path)
        return bad.value.fields

    assert fields([]) == ["webhooks[3]"]
    assert fields({"secret": SECRET}) == ["webhooks[3].url"]
    assert fields({"url": "https://h.example.com/"}) == ["webhooks[3].secret_env"]
    assert fields({"url": "https://h.example.com/", "secret_env": "PYCRM_TEST_NO_SUCH_VAR"}) == ["webhooks[3].secret_env"]
    monkeypatch.setenv("PYCRM_TEST_SHORT", "short")
    assert fields({"url": "https://h.example.com/", "secret_env": "PYCRM_TEST_SHORT"}) == ["webhooks[3].secret_env"]
    assert fields({"url": "https://h.example.com/", "secret": SECRET, "events": ["DealWon", "no way"]}) == [
        "webhooks[3].events[1]"
    ]
    assert fields({"url": "https://h.example.com/", "secret": SECRET, "timeout": "5"}) == ["webhooks[3].timeout"]
    assert fields({"url": "https://h.example.com/", "secret": SECRET, "retries": 3}) == ["webhooks[3].retries"]
    assert fields({"url": "gopher://h", "secret": SECRET}, path="hooks.won") == ["hooks.won.url"]


def test_messages_never_show_credentials_or_the_secret() -> None:
    with pytest.raises(ValidationError) as bad:
        Webhook("ftp://user:pa55word@example.com/x?token=q-secret", SECRET)
    assert "pa55word" not in str(bad.value) and "q-secret" not in str(bad.value)
    hook = Webhook("https://user:pa55word@example.com/x?token=q-secret", SECRET)
    assert "pa55word" not in repr(hook) and SECRET not in repr(hook) and "q-secret" not in hook.name


def test_a_connection_refused_is_a_webhook_error_naming_the_url(mem: pycrm.CRM, serve: Any, hooks: Any) -> None:
    target = serve(200)
    url = target.url
    target.close()  # nothing listens there any more
    hook = _hook(mem, hooks, url, attempts=2, timeout=1)
    with pytest.raises(WebhookError) as err:
        hook(CustomerCreated(entity_id="c1"))
    assert url in str(err.value) and err.value.retryable and err.value.status is None
    with pytest.raises(WebhookError) as err:  # resting: no request, fails at once
        hook(CustomerCreated(entity_id="c2"))
    assert "not tried" in str(err.value)


def test_an_unregistered_webhook_says_how_to_register_it() -> None:
    with pytest.raises(CRMError, match="not registered"):
        Webhook("https://hooks.example.com/crm", SECRET)(CustomerCreated(entity_id="c1"))


def test_without_httpx_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(CRMError, match=r"pip install \"pycrm\[automation\]\""):
        Webhook("https://hooks.example.com/crm", SECRET)


def test_verify_signature_refuses_bad_input() -> None:
    body = b'{"event":"DealWon"}'
    with pytest.raises(ValidationError) as bad:
        verify_signature(SECRET, {}, body)
    assert bad.value.fields == ["X-Pycrm-Timestamp"]
    with pytest.raises(ValidationError) as bad:
        verify_signature(SECRET, {"X-Pycrm-Timestamp": "12ab"}, body)
    assert bad.value.fields == ["X-Pycrm-Timestamp"]
    with pytest.raises(ValidationError) as bad:
        verify_signature(SECRET, {"X-Pycrm-Timestamp": str(int(time.time()))}, body)
    assert bad.value.fields == ["X-Pycrm-Signature"]
    with pytest.raises(ValidationError) as bad:
        verify_signature(SECRET, "headers", body)  # type: ignore[arg-type]
    assert bad.value.fields == ["headers_or_values"]
    with pytest.raises(ValidationError) as bad:
        verify_signature("short", {}, body)
    assert bad.value.fields == ["secret"]
    with pytest.raises(ValidationError) as bad:
        verify_signature(SECRET, {}, body, tolerance=0)
    assert bad.value.fields == ["tolerance"]


def test_every_bad_setting_is_named_at_once() -> None:
    with pytest.raises(ValidationError) as bad:
        Webhook("ftp://example.com/x", "short", timeout=0, attempts=9, events=["nope nope"])
    assert bad.value.fields == ["url", "secret", "events[0]", "timeout", "attempts"]


def test_408_and_429_are_tried_again(mem: pycrm.CRM, serve: Any, hooks: Any) -> None:
    target = serve(429, 408, 200)
    hook = _hook(mem, hooks, target.url, attempts=3)
    hook(CustomerCreated(entity_id="c1"))
    assert len(target.requests) == 3


def test_a_resting_target_is_tried_again_after_its_cool_down(
    mem: pycrm.CRM, serve: Any, hooks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pycrm.automation._webhook as module

    clock = [1000.0]

    fake = types.SimpleNamespace(monotonic=lambda: clock[0], time=time.time, sleep=time.sleep)
    monkeypatch.setattr(module, "time", fake)
    target = serve(500, 200)
    hook = _hook(mem, hooks, target.url, attempts=1, cooldown=30)
    with pytest.raises(WebhookError, match="HTTP 500"):
        hook(CustomerCreated(entity_id="c1"))
    clock[0] += 29
    with pytest.raises(WebhookError, match=r"not tried: it failed 29\.0 s ago \(answered HTTP 500\)"):
        hook(CustomerCreated(entity_id="c2"))
    assert len(target.requests) == 1
    clock[0] += 2
    hook(CustomerCreated(entity_id="c3"))
    hook(CustomerCreated(entity_id="c4"))  # the 2xx ended the rest
    assert len(target.requests) == 3


def test_a_long_url_gets_a_short_stable_name(mem: pycrm.CRM) -> None:
    url = "https://hooks.example.com/" + "segment/" * 40
    hook = webhook(mem, url, SECRET)
    assert len(hook.name) <= 200 and hook.name == Webhook(url, SECRET).name
    assert hook.name != Webhook(url + "x", SECRET).name
