"""Signed webhooks end to end: real Redis, real Celery workers, real HTTP to a receiver in the
test that verifies every request with the ``standardwebhooks`` library."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis
from standardwebhooks import Webhook, WebhookVerificationError

from order_dispatch.keys import Keys
from order_dispatch.webhooks import Endpoint, EndpointBook, Secret
from producers.enqueue import Producer
from tests.integration.conftest import (
    FAST_RECOVERY,
    Events,
    WorkerProcess,
    cli,
    order_job,
    unique,
    wait_until,
)

pytestmark = pytest.mark.integration


@dataclass
class Received:
    """One request the receiver got: its id, whether it verified, the payload."""

    msg_id: str
    verified: bool
    payload: dict[str, Any]
    timestamp: int


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that verifies each request with standardwebhooks against
    ``secrets``, then answers as ``mode`` says: ``ok`` (204), ``gone`` (410), ``slow`` (sleep
    past the worker's timeout the first time an id comes, then 204), ``drop`` (read, then close
    without answering the first time an id comes: the answer is lost)."""

    secrets: list[str] = field(default_factory=list)
    mode: str = "ok"
    port: int = 0
    got: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _seen: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not self.port:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.port = s.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.note(body, headers)
                first = receiver.first(headers.get("webhook-id", ""))
                if receiver.mode == "drop" and first:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if receiver.mode == "slow" and first:
                    time.sleep(3)
                status = 410 if receiver.mode == "gone" else 204
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def first(self, msg_id: str) -> bool:
        with self.lock:
            if msg_id in self._seen:
                return False
            self._seen.add(msg_id)
            return True

    def note(self, body: bytes, headers: dict[str, str]) -> None:
        verified, data = False, json.loads(body)
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
                verified = True
            except (WebhookVerificationError, ValueError):
                continue
        with self.lock:
            self.got.append(
                Received(headers["webhook-id"], verified, data, int(headers["webhook-timestamp"]))
            )

    def event_ids(self) -> set[str]:
        with self.lock:
            return {r.payload["data"].get("event_id") for r in self.got}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


WEBHOOK_WORKER = {
    **FAST_RECOVERY,
    "ORDER_DISPATCH_HTTP__READ_TIMEOUT_S": "1",
    "ORDER_DISPATCH_HTTP__DEADLINE_S": "2",
    "ORDER_DISPATCH_VENDOR_RETRY__WEBHOOKS__BASE_DELAY_S": "0.5",
    "ORDER_DISPATCH_VENDOR_RETRY__WEBHOOKS__MAX_DELAY_S": "2",
    "ORDER_DISPATCH_VENDOR_RETRY__WEBHOOKS__MAX_ATTEMPTS": "200",
    "ORDER_DISPATCH_CIRCUIT__OPEN_S": "1",
    "ORDER_DISPATCH_CIRCUIT__MAX_OPEN_S": "2",
}


@pytest.fixture(scope="module")
def hook_prefix() -> str:
    return f"odw-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def hook_worker(
    hook_prefix: str, worker_env_factory: Callable[..., dict[str, str]]
) -> Iterator[WorkerProcess]:
    env = worker_env_factory(
        hook_prefix, ORDER_DISPATCH_WEBHOOKS_ALLOW_PRIVATE="true", **WEBHOOK_WORKER
    )
    proc = WorkerProcess(env, concurrency=16, vendors="sourceorders,webhooks")
    yield proc
    proc.close()


@pytest.fixture
def private_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_DISPATCH_WEBHOOKS_ALLOW_PRIVATE", "true")


def add_endpoint(redis_url: str, prefix: str, url: str, *args: str) -> tuple[str, str]:
    result = cli(redis_url, prefix, "webhooks", "add", url, *args)
    assert result.exit_code == 0, result.output
    fields = dict(line.split(":", 1) for line in result.stdout.splitlines() if ":" in line)
    return fields["id"].strip(), fields["secret"].strip()


def endpoint(client: redis.Redis, prefix: str, endpoint_id: str) -> Endpoint:
    return EndpointBook(client, Keys(prefix)).get(endpoint_id)


@pytest.fixture
def hooks(
    redis_url: str, redis_client: redis.Redis, hook_prefix: str, private_ok: None
) -> Iterator[list[str]]:
    """Endpoint ids a test adds; deleted after it, so tests on the shared worker stay apart."""
    added: list[str] = []
    yield added
    book = EndpointBook(redis_client, Keys(hook_prefix))
    for endpoint_id in added:
        book.delete(endpoint_id)


def test_a_receiver_down_for_10_s_gets_every_event_once_back_and_a_lost_answer_is_resent(
    hook_worker: WorkerProcess,
    redis_url: str,
    redis_client: redis.Redis,
    hook_prefix: str,
    receiver: Receiver,
    hooks: list[str],
) -> None:
    endpoint_id, secret = add_endpoint(redis_url, hook_prefix, receiver.url, "--events", "accepted")
    hooks.append(endpoint_id)
    receiver.secrets = [secret]
    producer = Producer(redis_client, key_prefix=hook_prefix)
    events = Events(redis_client, Keys(hook_prefix))
    tag = unique("down")

    down_at = time.monotonic()
    receipts = producer.enqueue_many([order_job(f"{tag}-{i}") for i in range(20)])
    done = events.wait_terminal([r.job_id for r in receipts], timeout=60)
    assert {e.status for e in done.values()} == {"accepted"}
    time.sleep(max(0.0, 10 - (time.monotonic() - down_at)))
    receiver.mode = "drop"  # back, but the first answer to each delivery is lost
    receiver.start()

    wanted = {e.event_id for e in done.values()}

    def copies() -> dict[str, int]:
        with receiver.lock:
            counts: dict[str, int] = {}
            for r in receiver.got:
                counts[r.msg_id] = counts.get(r.msg_id, 0) + 1
            return counts

    # Every event arrives, and each one again after its first answer was lost.
    wait_until(
        lambda: wanted <= receiver.event_ids() and min(copies().values(), default=0) >= 2,
        timeout=90,
    )

    assert all(r.verified for r in receiver.got)
    by_id: dict[str, list[Received]] = {}
    for r in receiver.got:
        by_id.setdefault(r.msg_id, []).append(r)
    assert len(by_id) == len(wanted)
    # Each delivery came at least twice (the first answer was lost), with the same id and body.
    assert all(len(copies) >= 2 for copies in by_id.values())
    assert all(len({json.dumps(c.payload) for c in copies}) == 1 for copies in by_id.values())
    assert {c.payload["type"] for c in receiver.got} == {"order.accepted"}


def test_a_receiver_answering_410_gets_its_endpoint_disabled_and_the_event_recorded(
    hook_worker: WorkerProcess,
    redis_url: str,
    redis_client: redis.Redis,
    hook_prefix: str,
    receiver: Receiver,
    hooks: list[str],
) -> None:
    receiver.mode = "gone"
    receiver.start()
    endpoint_id, secret = add_endpoint(redis_url, hook_prefix, receiver.url)
    hooks.append(endpoint_id)
    receiver.secrets = [secret]
    producer = Producer(redis_client, key_prefix=hook_prefix)
    events = Events(redis_client, Keys(hook_prefix))

    producer.enqueue(order_job(unique("gone")))
    wait_until(lambda: not endpoint(redis_client, hook_prefix, endpoint_id).enabled, 30)

    found = endpoint(redis_client, hook_prefix, endpoint_id)
    assert found.disabled_reason == "the receiver answered 410 Gone"
    recorded = [
        e
        for e in events.all()
        if e.vendor == "webhooks" and e.account == endpoint_id and e.status == "dead_lettered"
    ]
    assert recorded and recorded[0].error is not None
    assert recorded[0].error.code == "endpoint_disabled"
    listed = cli(redis_url, hook_prefix, "dlq", "list", "--vendor", "webhooks", "--json")
    assert recorded[0].job_id in listed.output
    assert all(r.verified for r in receiver.got)


def test_a_receiver_slower_than_the_timeout_is_retried_not_waited_on(
    hook_worker: WorkerProcess,
    redis_url: str,
    redis_client: redis.Redis,
    hook_prefix: str,
    receiver: Receiver,
    hooks: list[str],
) -> None:
    receiver.mode = "slow"
    receiver.start()
    endpoint_id, secret = add_endpoint(redis_url, hook_prefix, receiver.url, "--events", "accepted")
    hooks.append(endpoint_id)
    receiver.secrets = [secret]
    producer = Producer(redis_client, key_prefix=hook_prefix)
    events = Events(redis_client, Keys(hook_prefix))

    receipt = producer.enqueue(order_job(unique("slow")))
    done = events.wait_terminal([receipt.job_id])
    wait_until(
        lambda: any(
            e.vendor == "webhooks" and e.account == endpoint_id and e.status == "accepted"
            for e in events.all()
        ),
        30,
    )

    mine = [e for e in events.all() if e.vendor == "webhooks" and e.account == endpoint_id]
    timed_out = [e for e in mine if e.status == "retry_scheduled"]
    assert timed_out and timed_out[0].error is not None
    assert timed_out[0].error.kind == "timeout"
    assert done[receipt.job_id].event_id in receiver.event_ids()
    assert all(r.verified for r in receiver.got)


def test_after_rotate_secret_both_secrets_verify_for_a_day(
    hook_worker: WorkerProcess,
    redis_url: str,
    redis_client: redis.Redis,
    hook_prefix: str,
    receiver: Receiver,
    hooks: list[str],
) -> None:
    receiver.start()
    endpoint_id, old = add_endpoint(redis_url, hook_prefix, receiver.url, "--events", "purged")
    hooks.append(endpoint_id)

    rotated = cli(redis_url, hook_prefix, "webhooks", "rotate-secret", endpoint_id)
    assert rotated.exit_code == 0, rotated.output
    new = rotated.stdout.split("secret:", 1)[1].strip()
    time.sleep(1.5)  # workers keep an endpoint read from Redis for a second
    pinged = cli(redis_url, hook_prefix, "webhooks", "test", endpoint_id)
    assert pinged.exit_code == 0, pinged.output
    wait_until(lambda: bool(receiver.got), 30)

    got = receiver.got[0]
    assert got.payload["type"] == "webhook.ping"
    for secret, verifies in (
        (new, True),
        (old, True),
        (Secret(value="whsec_" + "A" * 43).value, False),
    ):
        receiver.secrets = [secret]
        receiver.got.clear()
        receiver._seen.clear()
        cli(redis_url, hook_prefix, "webhooks", "test", endpoint_id)
        wait_until(lambda: bool(receiver.got), 30)
        assert receiver.got[0].verified is verifies


def test_ssrf_a_name_resolving_to_127_0_0_1_is_refused_at_save_and_at_connect(
    redis_url: str,
    redis_client: redis.Redis,
    receiver: Receiver,
    worker_env_factory: Callable[..., dict[str, str]],
) -> None:
    prefix = f"ods-{uuid.uuid4().hex[:6]}"
    receiver.start()

    refused = cli(redis_url, prefix, "webhooks", "add", f"https://localhost:{receiver.port}/hook")
    assert refused.exit_code != 0
    assert "localhost resolves to 127.0.0.1, which is loopback" in refused.output
    for url in ("https://169.254.169.254/latest", "https://10.0.0.8/", "https://[::1]/"):
        result = cli(redis_url, prefix, "webhooks", "add", url)
        assert result.exit_code != 0 and "refused" in result.output, url
    plain = cli(redis_url, prefix, "webhooks", "add", "http://93.184.215.14/")
    assert "must be https" in plain.output

    # A name that passed the check when saved and resolves to loopback when sent (DNS
    # rebinding): the worker's resolver refuses to connect.
    book = EndpointBook(redis_client, Keys(prefix))
    saved = book.add(receiver.url, allow_private=True)
    rebound = saved.model_copy(update={"url": f"http://localhost:{receiver.port}/hook"})
    redis_client.hset(Keys(prefix).webhook_endpoints, saved.id, rebound.model_dump_json())
    env = worker_env_factory(prefix, **WEBHOOK_WORKER)
    proc = WorkerProcess(env, concurrency=4, vendors="sourceorders,webhooks")
    try:
        producer = Producer(redis_client, key_prefix=prefix)
        events = Events(redis_client, Keys(prefix))
        producer.enqueue(order_job(unique("ssrf")))
        wait_until(
            lambda: any(
                e.vendor == "webhooks"
                and e.error is not None
                and "localhost resolves only to refused addresses (127.0.0.1 is loopback)"
                in e.error.message
                for e in events.all()
            ),
            40,
        )
    finally:
        proc.close()
    assert receiver.got == []
