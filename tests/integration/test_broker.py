"""The transport's rules on messages it holds, in process against a real Redis: a reject
without requeue quarantines, and a requeue refused by a full Redis waits until Redis takes it."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from kombu import Connection, Exchange, Message, Queue

from order_dispatch.keys import DISPATCH_TASK, Keys
from order_dispatch.settings import get_settings
from order_dispatch_cli.embedded_redis import EmbeddedRedis
from worker.quarantine import Quarantine

pytestmark = pytest.mark.integration


@pytest.fixture
def prefix(monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"odb-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("ORDER_DISPATCH_KEY_PREFIX", name)
    get_settings.cache_clear()
    return name


@pytest.fixture
def held(prefix: str, redis_url: str) -> Iterator[tuple[Connection, Message]]:
    """A task message taken off its queue through the product's transport, not yet acked."""
    yield from _held(prefix, redis_url)


def _held(prefix: str, url: str) -> Iterator[tuple[Connection, Message]]:
    name = Keys(prefix).queue("sourceorders")
    queue = Queue(name, Exchange(name, type="direct"), routing_key=name)
    with Connection(url, transport="worker.broker:Transport") as conn:
        conn.Producer().publish(
            {"job_id": "j-1"},
            exchange=queue.exchange,
            routing_key=name,
            declare=[queue],
            headers={"task": DISPATCH_TASK, "id": "t-1"},
        )
        message = queue(conn.default_channel).get(no_ack=False)
        assert message is not None
        yield conn, message


def test_a_message_rejected_without_requeue_is_quarantined_not_dropped(
    held: tuple[Connection, Message], prefix: str, redis_client: redis.Redis
) -> None:
    _, message = held

    message.reject(requeue=False)

    [entry] = Quarantine(redis_client, Keys(prefix)).entries()
    assert entry.task_id == "t-1" and entry.task == DISPATCH_TASK
    assert entry.reason.startswith("rejected by the worker without requeue")
    assert entry.queue == Keys(prefix).queue("sourceorders")
    assert redis_client.hget("unacked", str(message.delivery_tag)) is None


def test_a_requeue_refused_by_a_full_redis_waits_until_redis_takes_it(prefix: str) -> None:
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)
        for _, message in _held(prefix, server.url):
            client.config_set("maxmemory", 1)
            threading.Timer(1.0, client.config_set, args=("maxmemory", 0)).start()
            started = time.monotonic()

            message.reject(requeue=True)

            assert time.monotonic() - started >= 0.9, "the requeue did not meet a full Redis"
            assert client.llen(Keys(prefix).queue("sourceorders")) == 1
            assert client.hget("unacked", str(message.delivery_tag)) is None
        client.close()
