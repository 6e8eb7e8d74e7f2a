"""The same product with RabbitMQ as the broker: jobs go through quorum queues on RabbitMQ,
while receipts, the ledger and result events stay in Redis. Skipped when no RabbitMQ answers
on 127.0.0.1:5672 (guest/guest)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis

from order_dispatch.keys import Keys
from producers.enqueue import Producer
from tests.integration.conftest import ROOT, Events, WorkerProcess, order_job, unique

pytestmark = pytest.mark.integration

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


def rabbitmq_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def amqp_env(worker_env_factory: Callable[..., dict[str, str]]) -> Iterator[dict[str, str]]:
    if not rabbitmq_answers():
        pytest.skip("no RabbitMQ answers on 127.0.0.1:5672 (guest/guest): RabbitMQ test skipped")
    env = worker_env_factory(unique("odq"), ORDER_DISPATCH_BROKER_URL=AMQP_URL)
    yield env
    from kombu import Connection

    from producers.broker import quorum_queue

    queue = quorum_queue(Keys(env["ORDER_DISPATCH_KEY_PREFIX"]).queue("sourceorders"))
    with Connection(AMQP_URL) as conn:
        bound = queue(conn.default_channel)
        bound.delete()
        bound.exchange.delete()


def test_jobs_flow_through_rabbitmq_quorum_queues_and_results_stay_in_redis(
    amqp_env: dict[str, str], redis_client: redis.Redis, sandbox_admin: httpx.Client
) -> None:
    prefix = amqp_env["ORDER_DISPATCH_KEY_PREFIX"]
    keys, events = Keys(prefix), Events(redis_client, Keys(prefix))
    producer = Producer(redis_client, key_prefix=prefix, broker_url=AMQP_URL)
    # Queued before any worker runs: the producer declares the queue, nothing is lost.
    sandbox_admin.post(
        "/_sandbox/faults/sourceorders", json={"fail_next": 1, "status": 503}
    ).raise_for_status()
    jobs = [order_job(unique("mq")) for _ in range(4)]
    try:
        receipts = producer.enqueue_many(jobs)
        assert producer.enqueue(jobs[0]).duplicate  # the duplicate check still holds
    finally:
        producer.close()

    worker = WorkerProcess(amqp_env, concurrency=4)
    try:
        done = events.wait_terminal([r.job_id for r in receipts], timeout=60)
        # Health asks the workers through RabbitMQ, and reads the rest from Redis.
        health = subprocess.run(
            [sys.executable, "-m", "order_dispatch_cli", "health", "--timeout", "2"],
            env=amqp_env, cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        worker.close()
    assert health.returncode == 0, health.stdout + health.stderr
    assert health.stdout.startswith("ok: broker reachable; 1 worker answered")

    assert {r.job_id for r in receipts} == set(done), worker.output()[-3000:]
    assert all(e.status == "accepted" for e in done.values())
    # The 503 was retried with a countdown: Celery's delayed delivery on RabbitMQ.
    assert any(e.status == "retry_scheduled" for e in events.all())
    assert all(redis_client.hget(keys.ledger(r.job_id), "state") == b"done" for r in receipts)
    assert not redis_client.exists(keys.queue("sourceorders"))  # the queue is not in Redis

    from amqp.exceptions import PreconditionFailed
    from kombu import Connection

    # The queue is a quorum queue: declaring it as a classic one is refused.
    with Connection(AMQP_URL) as conn, pytest.raises(PreconditionFailed, match="quorum"):
        conn.default_channel.queue_declare(  # type: ignore[attr-defined]  # kombu: amqp Channel
            keys.queue("sourceorders"),
            durable=True,
            auto_delete=False,
            arguments={"x-queue-type": "classic"},
        )
