"""Customer data only where the README's "Data and retention" table says it may be.

Orders with recognisable personal data go through every path a real worker takes with the
sandbox over HTTP (accepted, retried, rejected, dead-lettered, in doubt) and the vendor's
error answers echo the customer back; a message for an unknown task carries personal data too.
Then the result stream, the worker's log, the broker's messages (sampled while they wait and
while a worker holds them) and every Redis key past the retention window are searched.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis

from order_dispatch.broker import queue_key, task_message
from order_dispatch.keys import Keys
from order_dispatch.privacy import MASK
from order_dispatch_ops.actions import Operations
from producers.enqueue import Producer
from tests.integration.conftest import Events, WorkerProcess, order_job

pytestmark = pytest.mark.integration

RETENTION_S = 60
#: Parts of every customer's data below; none may be found where the table says it may not be.
PERSONAL = ("Zelda", "Quixotic", "Marmalade", "Quahogville", "privacy.example", "555 0199")


def personal_order(order_id: str, n: int) -> dict[str, Any]:
    """A SourceOrders job whose customer is recognisable anywhere."""
    person = {"first_name": f"Zelda{n}", "last_name": "Quixotic"}
    ship_to = {
        **person,
        "line1": f"{n}7 Marmalade Lane",
        "city": "Quahogville",
        "region": "RI",
        "postal_code": "02860",
        "country": "US",
        "phone": "+1 401 555 0199",
        "email": f"zelda{n}@privacy.example",
    }
    customer = {**person, "email": f"zelda{n}@privacy.example"}
    return order_job(order_id, customer=customer, ship_to=ship_to)


def echo(n: int) -> dict[str, Any]:
    """A vendor's error answer that quotes the customer back, in text and in named fields."""
    return {
        "error": f"cannot deliver to Zelda{n} Quixotic at {n}7 Marmalade Lane, Quahogville",
        "shippingAddress": {"email": f"zelda{n}@privacy.example", "phone": "+1 401 555 0199"},
    }


def found(text: str) -> list[str]:
    return [part for part in PERSONAL if part.lower() in text.lower()]


class Broker:
    """Samples every task message the broker holds: the queues, the retry schedule, and the
    messages workers hold unacked (kombu's ``unacked`` hash), base64 bodies decoded."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self.messages: set[str] = set()

    def sample(self) -> None:
        raw: list[Any] = list(self.client.hvals("unacked"))
        raw += self.client.zrange(self.keys.schedule, 0, -1)
        for name in self.client.scan_iter(match=f"{self.keys.prefix}.*"):
            raw += self.client.lrange(name, 0, -1)
        for item in raw:
            text = item.decode() if isinstance(item, bytes) else str(item)
            self.messages.add(text + "\n" + _decoded_body(text))


def _decoded_body(text: str) -> str:
    try:
        envelope = json.loads(text)
        if isinstance(envelope, list):  # unacked: [message, exchange, routing key]
            envelope = envelope[0]
        return base64.b64decode(envelope["body"]).decode()
    except (ValueError, KeyError, TypeError, IndexError):
        return ""


def wait_ended(events: Events, broker: Broker, job_id: str, timeout: float = 60) -> str:
    """The status ``job_id``'s run ended with, sampling the broker meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        broker.sample()
        done = events.wait_terminal([job_id], timeout=0)
        if done:
            return done[job_id].status.value
        time.sleep(0.02)
    raise AssertionError(f"{job_id} did not end: {events.of(job_id)}")


def holding_personal_data(client: redis.Redis, prefix: str) -> dict[str, list[str]]:
    """Every key under ``prefix`` that holds personal data, with what was found."""
    held: dict[str, list[str]] = {}
    for raw_name in client.scan_iter(match=f"{prefix}*"):
        name = raw_name.decode()
        kind = client.type(name)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        items: list[Any]
        if kind == "string":
            items = [client.get(name)]
        elif kind == "hash":
            items = [*client.hgetall(name).items()]
        elif kind == "list":
            items = client.lrange(name, 0, -1)
        elif kind == "stream":
            entries = client.xrange(name) or []
            items = [v for _, fields in entries for v in (fields or {}).values()]
        else:
            items = client.zrange(name, 0, -1)
        texts = [i.decode() if isinstance(i, bytes) else repr(i) for i in items]
        parts = found("\n".join(t + _decoded_body(t) for t in texts))
        if parts:
            held[name] = parts
    return held


def expire_past_retention(client: redis.Redis, prefix: str, window_s: int) -> int:
    """Do what Redis does once ``window_s`` has passed: drop every key under ``prefix`` that
    expires within it. How many were dropped."""
    dropped = 0
    for name in client.scan_iter(match=f"{prefix}*"):
        if 0 < client.ttl(name) <= window_s:
            client.delete(name)
            dropped += 1
    return dropped


def test_personal_data_only_where_the_table_says(
    redis_client: redis.Redis,
    worker_env_factory: Callable[..., dict[str, str]],
    sandbox_admin: httpx.Client,
) -> None:
    keys = Keys(f"odpv-{uuid.uuid4().hex[:6]}")
    env = worker_env_factory(
        keys.prefix,
        ORDER_DISPATCH_JOB_RETENTION_S=str(RETENTION_S),
        ORDER_DISPATCH_CIRCUIT__FAILURE_THRESHOLD="1000",
    )
    producer = Producer(redis_client, key_prefix=keys.prefix)
    events = Events(redis_client, keys)
    broker = Broker(redis_client, keys)
    faults = "/_sandbox/faults/sourceorders"
    paths: list[tuple[str, dict[str, Any] | None, str]] = [
        ("accepted", None, "accepted"),
        ("retried", {"fail_next": 1, "status": 503, "body": echo(2)}, "accepted"),
        ("rejected", {"fail_next": 1, "status": 400, "body": echo(3)}, "rejected"),
        # More failures than the 5 attempts allowed: a request of another job's (a lookup, a
        # redelivery) that takes one of them must not let this job through.
        ("dead", {"fail_next": 10, "status": 500, "body": echo(4)}, "dead_lettered"),
        ("doubt", {"drop_after_commit_next": 1}, "in_doubt"),
    ]
    # A job for a vendor no worker here consumes: its message waits in the queue.
    waiting = producer.enqueue({**personal_order("PV-waiting", 6), "vendor": "sophio"})
    broker.sample()

    worker = WorkerProcess(env, concurrency=4, vendors="sourceorders")
    try:
        ended: dict[str, str] = {}
        for n, (name, fault, expected) in enumerate(paths, start=1):
            if fault is not None:
                sandbox_admin.post(faults, json=fault).raise_for_status()
            job_id = producer.enqueue(personal_order(f"PV-{name}-{keys.prefix}", n)).job_id
            ended[name] = job_id
            assert wait_ended(events, broker, job_id) == expected, events.of(job_id)
            if fault is not None:
                sandbox_admin.delete(faults).raise_for_status()  # what this job left unused
        poison = {"order": {"customer": {"email": "zelda9@privacy.example", "name": "Zelda9"}}}
        queue = keys.queue("sourceorders")
        message = task_message(str(uuid.uuid4()), poison, queue=queue, task="worker.tasks.gone")
        redis_client.lpush(queue_key(queue, 0), message)
        deadline = time.monotonic() + 30
        while "worker.tasks.gone" not in worker.output():
            assert time.monotonic() < deadline, worker.output()[-3000:]
            time.sleep(0.1)
    finally:
        worker.stop()
        log = worker.output()
        worker.close()

    # The result stream: ids, statuses, errors explained; the vendors' echoes masked.
    stream = repr(redis_client.xrange(keys.results))
    assert found(stream) == []
    assert MASK in stream  # the failures' answers are there, masked
    # The worker's log: no personal value at any point, the unknown task's body left out.
    assert found(log) == []
    assert ended["dead"] in log and "worker.tasks.gone" in log
    # The broker: ids only, in the queue, the schedule and while a worker held them.
    assert broker.messages and any(waiting.job_id in m for m in broker.messages)
    assert [found(m) for m in broker.messages if found(m)] == []

    # Redis: the job documents hold the orders (the search finds them), and every job that
    # ended keeps its document for the retention window at most.
    documents = [k for k in holding_personal_data(redis_client, keys.prefix) if ":doc:" in k]
    assert len(documents) == len(paths) + 1
    for name in ("accepted", "retried", "rejected", "dead"):
        assert 0 < redis_client.ttl(keys.document(ended[name])) <= RETENTION_S, name
    assert expire_past_retention(redis_client, keys.prefix, RETENTION_S) >= 4
    # Past it, only the open jobs' documents hold personal data: the one in doubt (until a
    # person decides) and the one still queued; and the quarantine, if the workers keep one,
    # the foreign message as it arrived.
    held = holding_personal_data(redis_client, keys.prefix)
    quarantine = held.pop(f"{keys.prefix}:quarantine", ["Zelda", "privacy.example"])
    assert set(held) == {keys.document(ended["doubt"]), keys.document(waiting.job_id)}, held
    assert quarantine == ["Zelda", "privacy.example"]

    # Once a person decided the job in doubt, a purge leaves only the queued job's order.
    operations = Operations(redis_client, key_prefix=keys.prefix, operator="dpo")
    operations.resolve(ended["doubt"], "rejected")
    operations.purge(ended["doubt"], note="erasure request")
    held = holding_personal_data(redis_client, keys.prefix)
    held.pop(f"{keys.prefix}:quarantine", None)
    assert set(held) == {keys.document(waiting.job_id)}, held
