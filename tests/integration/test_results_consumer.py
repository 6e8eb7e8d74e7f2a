"""The result-stream consumer helper against a real Redis: read, ack, re-read, claim, recover."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
import redis

from order_dispatch.contract import EventStatus, Operation, ResultEvent
from order_dispatch.keys import Keys
from order_dispatch.results import ResultConsumer

pytestmark = pytest.mark.integration


def _event(n: int) -> ResultEvent:
    return ResultEvent(
        event_id=f"job-{n}:1:1:accepted",
        job_id=f"job-{n}",
        order_id=f"o-{n}",
        vendor="sourceorders",
        account="default",
        operation=Operation.CREATE,
        status=EventStatus.ACCEPTED,
        terminal=True,
        attempt=1,
        vendor_order_id=f"soo_{n}",
        occurred_at=datetime.now(UTC),
    )


@pytest.fixture
def keys() -> Keys:
    return Keys(f"odc-{uuid.uuid4().hex[:6]}")


def _publish(client: redis.Redis, keys: Keys, n: int) -> None:
    for i in range(n):
        client.xadd(keys.results, {"event_id": f"e{i}", "event": _event(i).model_dump_json()})


def test_reads_history_acks_and_then_has_nothing_pending(
    redis_client: redis.Redis, keys: Keys
) -> None:
    _publish(redis_client, keys, 5)
    consumer = ResultConsumer(redis_client, "billing", "c1", keys=keys, block_ms=10)

    batch = consumer.read()
    consumer.ack(*(d.entry_id for d in batch))

    assert [d.event.job_id for d in batch if d.event] == [f"job-{i}" for i in range(5)]
    assert redis_client.xpending(keys.results, "billing")["pending"] == 0
    assert consumer.read(block=False) == []


def test_a_restarted_consumer_rereads_what_it_never_acked(
    redis_client: redis.Redis, keys: Keys
) -> None:
    _publish(redis_client, keys, 3)
    crashed = ResultConsumer(redis_client, "billing", "c1", keys=keys, block_ms=10)
    first = crashed.read()
    crashed.ack(first[0].entry_id)  # handled one, then "crashed"

    restarted = ResultConsumer(redis_client, "billing", "c1", keys=keys, block_ms=10)
    again = restarted.read()

    assert [d.entry_id for d in again] == [d.entry_id for d in first[1:]]


def test_entries_of_a_dead_consumer_are_claimed_after_min_idle(
    redis_client: redis.Redis, keys: Keys
) -> None:
    _publish(redis_client, keys, 2)
    ResultConsumer(redis_client, "billing", "dead", keys=keys, block_ms=10).read()
    alive = ResultConsumer(
        redis_client, "billing", "alive", keys=keys, min_idle_ms=200, block_ms=10
    )

    assert alive.read(block=False) == []  # not idle long enough yet
    time.sleep(0.3)
    claimed = alive.read(block=False)

    assert [d.event.job_id for d in claimed if d.event] == ["job-0", "job-1"]
    pending = redis_client.xpending_range(keys.results, "billing", "-", "+", 10)
    assert {p["consumer"] for p in pending} == {b"alive"}


def test_run_acks_only_after_the_handler_returns(redis_client: redis.Redis, keys: Keys) -> None:
    _publish(redis_client, keys, 2)
    consumer = ResultConsumer(redis_client, "billing", "c1", keys=keys, block_ms=10)
    seen: list[str] = []

    def handler(event: ResultEvent) -> None:
        seen.append(event.job_id)
        if len(seen) == 2:
            raise RuntimeError("downstream failed")

    with pytest.raises(RuntimeError):
        consumer.run(handler)

    assert redis_client.xpending(keys.results, "billing")["pending"] == 1


def test_a_lost_group_is_recreated_instead_of_failing(
    redis_client: redis.Redis, keys: Keys
) -> None:
    _publish(redis_client, keys, 1)
    consumer = ResultConsumer(redis_client, "billing", "c1", keys=keys, block_ms=10)
    consumer.ack(*(d.entry_id for d in consumer.read()))
    redis_client.xgroup_destroy(keys.results, "billing")  # as after a Redis restart without AOF

    again = consumer.read(block=False)

    assert [d.event.job_id for d in again if d.event] == ["job-0"]


def test_unreadable_entries_are_acked_and_skipped(redis_client: redis.Redis, keys: Keys) -> None:
    _publish(redis_client, keys, 1)
    redis_client.xadd(keys.results, {"event": "not json"})
    consumer = ResultConsumer(redis_client, "billing", "c1", keys=keys, block_ms=10)
    handled: list[str] = []
    rounds = iter(range(2))

    consumer.run(lambda e: handled.append(e.job_id), stop=lambda: next(rounds, None) is None)

    assert handled == ["job-0"]
    assert redis_client.xpending(keys.results, "billing")["pending"] == 0


def test_a_consumer_without_keys_reads_the_configured_prefix(
    redis_client: redis.Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written from the README (no ``keys``): it follows ORDER_DISPATCH_KEY_PREFIX, as the
    Producer and the workers do, and never reads an empty ``od:results`` instead."""
    from order_dispatch.settings import get_settings

    monkeypatch.setenv("ORDER_DISPATCH_KEY_PREFIX", keys.prefix)
    get_settings.cache_clear()
    try:
        _publish(redis_client, keys, 3)
        consumer = ResultConsumer(redis_client, "billing", block_ms=10)
        batch = consumer.read()
    finally:
        get_settings.cache_clear()

    assert consumer.stream == keys.results
    assert [d.event.job_id for d in batch if d.event] == ["job-0", "job-1", "job-2"]
