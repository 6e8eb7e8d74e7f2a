"""Poison: whatever arrives on a vendor queue, a real worker keeps it and keeps serving.

Each bad message is pushed onto the queue as a producer (or an intruder) would, and must end in
the quarantine with its raw bytes and its reason; a good order sent after it must still be
accepted; the worker's log must not carry the customer data the bad message held.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from order_dispatch.keys import DISPATCH_TASK, Keys
from order_dispatch_cli.embedded_redis import EmbeddedRedis
from producers.enqueue import Producer
from producers.message import task_message
from tests.integration.conftest import (
    Events,
    WorkerProcess,
    order_job,
    tagged_jobs,
    unique,
    vendor_copies,
    wait_until,
)
from worker.quarantine import Quarantine, QuarantinedMessage

pytestmark = pytest.mark.integration

#: Customer data carried by the bad messages; the worker's log must never show it.
PII = "Beesly-1725-Slough"


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"odq-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def poison_worker(
    prefix: str, worker_env_factory: Callable[..., dict[str, str]]
) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(worker_env_factory(prefix), concurrency=4)
    yield proc
    proc.close()


@pytest.fixture
def quarantine(redis_client: redis.Redis, prefix: str) -> Quarantine:
    return Quarantine(redis_client, Keys(prefix))


def _push(client: redis.Redis, prefix: str, raw: bytes | str) -> None:
    client.lpush(Keys(prefix).queue("sourceorders"), raw)


def _quarantined(quarantine: Quarantine, match: Callable[[QuarantinedMessage], bool]) -> (
    QuarantinedMessage
):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = [e for e in quarantine.entries() if match(e)]
        if found:
            assert len(found) == 1, found
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"not quarantined; quarantine holds {quarantine.entries()}")


def _still_serves(
    worker: WorkerProcess, client: redis.Redis, prefix: str, sandbox_admin: httpx.Client
) -> None:
    """A good order after the bad message is accepted; the worker is alive; no PII logged."""
    receipt = Producer(client, key_prefix=prefix).enqueue(order_job(unique("after")))
    done = Events(client, Keys(prefix)).wait_terminal([receipt.job_id])
    assert done[receipt.job_id].status == "accepted"
    assert worker.proc.poll() is None, worker.output()[-3000:]
    assert PII not in worker.output()


def _message(kwargs: dict[str, Any], *, queue: str, task: str = DISPATCH_TASK) -> str:
    return task_message(str(uuid.uuid4()), kwargs, queue=queue, task=task)


@pytest.mark.parametrize(
    ("raw", "reason", "encoding"),
    [
        (b"\xff\xfe" + PII.encode() + b"\x00", "not JSON", "base64"),
        (f"order for {PII}, not JSON".encode(), "not JSON", "utf-8"),
        (json.dumps({"customer": PII}).encode(), "no 'properties' field", "utf-8"),
        (json.dumps([PII]).encode(), "not a Celery message", "utf-8"),
    ],
    ids=["not-utf8", "not-json", "json-not-envelope", "json-list"],
)
def test_an_unreadable_message_is_quarantined_raw(
    raw: bytes,
    reason: str,
    encoding: str,
    poison_worker: WorkerProcess,
    quarantine: Quarantine,
    redis_client: redis.Redis,
    prefix: str,
    sandbox_admin: httpx.Client,
) -> None:
    _push(redis_client, prefix, raw)

    entry = _quarantined(quarantine, lambda e: e.raw == raw)

    assert reason in entry.reason
    assert entry.queue == Keys(prefix).queue("sourceorders")
    assert entry.encoding == encoding
    _still_serves(poison_worker, redis_client, prefix, sandbox_admin)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"run": 1, "attempt": 1}, "job_id: Field required"),
        ({"job_id": 123, "run": "one"}, "job_id: Input should be a valid string"),
        ({"job_id": "j-1", "attempt": 0}, "attempt: Input should be greater than or equal to 1"),
        ({"job_id": "j-1", "order": {"name": PII}}, "order: Extra inputs are not permitted"),
    ],
    ids=["missing-job-id", "wrong-types", "attempt-zero", "order-in-message"],
)
def test_a_broken_dispatch_call_is_quarantined(
    kwargs: dict[str, Any],
    reason: str,
    poison_worker: WorkerProcess,
    quarantine: Quarantine,
    redis_client: redis.Redis,
    prefix: str,
    sandbox_admin: httpx.Client,
) -> None:
    queue = Keys(prefix).queue("sourceorders")
    raw = _message(kwargs, queue=queue)
    task_id = json.loads(raw)["headers"]["id"]
    _push(redis_client, prefix, raw)

    entry = _quarantined(quarantine, lambda e: e.task_id == task_id)

    assert entry.reason.startswith("not a dispatch call: ")
    assert reason in entry.reason
    assert entry.task == DISPATCH_TASK
    assert json.loads(entry.raw)["headers"]["id"] == task_id  # the envelope as it arrived
    _still_serves(poison_worker, redis_client, prefix, sandbox_admin)


def test_an_unknown_task_is_quarantined_and_not_logged(
    poison_worker: WorkerProcess,
    quarantine: Quarantine,
    redis_client: redis.Redis,
    prefix: str,
    sandbox_admin: httpx.Client,
) -> None:
    queue = Keys(prefix).queue("sourceorders")
    raw = _message({"customer": PII}, queue=queue, task="shop.tasks.send_invoice")
    task_id = json.loads(raw)["headers"]["id"]
    _push(redis_client, prefix, raw)

    entry = _quarantined(quarantine, lambda e: e.task_id == task_id)

    assert "unknown task 'shop.tasks.send_invoice'" in entry.reason
    assert json.loads(entry.raw) == json.loads(raw)
    # Logged by name and id (the line follows the quarantine write: wait for it) ...
    wait_until(lambda: task_id in poison_worker.output(), 10)
    _still_serves(poison_worker, redis_client, prefix, sandbox_admin)  # ... not by content


def test_a_job_whose_ledger_has_the_wrong_type_is_quarantined(
    poison_worker: WorkerProcess,
    quarantine: Quarantine,
    redis_client: redis.Redis,
    prefix: str,
    sandbox_admin: httpx.Client,
) -> None:
    job = order_job(unique("wrongtype"))
    job["order"]["ship_to"]["company"] = PII
    from order_dispatch.contract import Job

    job_id = Job.model_validate(job).job_id
    redis_client.set(Keys(prefix).ledger(job_id), "not a hash")

    Producer(redis_client, key_prefix=prefix).enqueue(job)
    entry = _quarantined(quarantine, lambda e: e.job_id == job_id)

    assert "WRONGTYPE" in entry.reason
    assert entry.reason.startswith("the job failed: ResponseError")
    assert json.loads(entry.raw)["headers"]["task"] == DISPATCH_TASK
    _still_serves(poison_worker, redis_client, prefix, sandbox_admin)


def test_redis_out_of_memory_for_a_while_loses_and_quarantines_nothing(
    worker_env_factory: Callable[..., dict[str, str]], sandbox_admin: httpx.Client
) -> None:
    prefix = f"odm-{uuid.uuid4().hex[:6]}"
    sandbox_admin.post("/_sandbox/faults/sourceorders", json={"latency": {"ms": 100}})
    with EmbeddedRedis() as server:  # our own: the test fills its memory
        client = redis.Redis.from_url(server.url)
        keys, events = Keys(prefix), Events(client, Keys(prefix))
        receipts = Producer(client, key_prefix=prefix).enqueue_many(tagged_jobs(prefix, 60))
        ids = [r.job_id for r in receipts]
        worker = WorkerProcess(
            worker_env_factory(prefix, ORDER_DISPATCH_REDIS_URL=server.url), concurrency=8
        )
        try:
            wait_until(lambda: len(events.wait_terminal(ids, timeout=0)) >= 5, 30)
            client.config_set("maxmemory", 1)  # every write that may grow memory is refused
            time.sleep(3)
            during = len(events.wait_terminal(ids, timeout=0))
            client.config_set("maxmemory", 0)
            done = events.wait_terminal(ids, timeout=60)
            output = worker.output()
            assert worker.proc.poll() is None, output[-3000:]
        finally:
            worker.close()
        terminal = Counter(e.job_id for e in events.all() if e.terminal)
        quarantined = Quarantine(client, keys).entries()
        client.close()

    assert "OOM" in output, "Redis was never out of memory while the worker ran"
    assert during < len(ids), "every job ended before Redis ran out of memory"
    assert set(done) == set(ids), f"lost: {set(ids) - set(done)}"
    assert all(terminal[i] == 1 for i in ids), terminal
    assert {e.status for e in done.values()} == {"accepted"}
    assert quarantined == []
    copies = vendor_copies(sandbox_admin, prefix)
    assert len(copies) == 60 and max(copies.values()) == 1, copies
