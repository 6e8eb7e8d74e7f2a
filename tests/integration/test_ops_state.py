"""The state reader against a real Redis: every priority list of a queue, the enqueue receipt
when a message carries only the job id, foreign data tolerated, absent keys read as zero."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import redis

from order_dispatch.contract import EventStatus, Job, ResultEvent
from order_dispatch.keys import CircuitState, Keys
from order_dispatch_ops.state import StateReader
from producers.enqueue import Producer
from producers.message import task_message
from tests.integration.conftest import order_job, unique

pytestmark = pytest.mark.integration


def test_an_unused_prefix_reads_as_zero(redis_client: redis.Redis) -> None:
    snap = StateReader(redis_client, Keys(unique("ods")), ["sophio"], {"sophio": ["a"]}).snapshot()

    assert [(q.depth, q.oldest_age_s) for q in snap.queues] == [(0, None)]
    assert (snap.schedule_size, snap.dead_letters, snap.in_doubt, snap.stream_length) == (0,) * 4
    assert snap.groups == []
    assert snap.circuits == {("sophio", "a"): CircuitState.CLOSED}


def test_depth_and_oldest_age_span_every_priority_list(redis_client: redis.Redis) -> None:
    keys = Keys(unique("ods"))
    producer = Producer(redis_client, key_prefix=keys.prefix)
    now = datetime.now(UTC)
    for minutes, priority in ((5, 0), (30, 9), (1, 3)):
        job = order_job(unique("p"))
        job.update(priority=priority, enqueued_at=(now - timedelta(minutes=minutes)).isoformat())
        producer.enqueue(job)
    # A message with only the job id (the receipt has the time), and foreign data.
    old = producer.enqueue(
        {**order_job(unique("r")), "enqueued_at": (now - timedelta(hours=2)).isoformat()}
    )
    queue = keys.queue("sourceorders")
    redis_client.rpop(queue)
    redis_client.rpush(queue, task_message("t", {"job": {"job_id": old.job_id}}, queue=queue))
    redis_client.lpush(queue, b"\x00 not a message")

    [q] = StateReader(redis_client, keys, ["sourceorders"]).snapshot().queues

    assert q.depth == 5
    assert q.oldest_age_s is not None and 7190 < q.oldest_age_s < 7260


def test_in_doubt_is_read_from_each_dead_letter_s_event(redis_client: redis.Redis) -> None:
    """The in-doubt count comes from the dead letters' own events (which never expire), the
    same entries ``dlq list`` shows, not from the ledgers (which do)."""
    keys = Keys(unique("ods"))
    pipe = redis_client.pipeline(transaction=False)
    for n in range(1200):  # more than one HSCAN page
        job = Job.model_validate({**order_job(f"o{n}"), "job_id": f"j{n}"})
        status = EventStatus.IN_DOUBT if n % 3 == 0 else EventStatus.DEAD_LETTERED
        event = ResultEvent.for_job(job, run=1, run_token="t", attempt=1, status=status)
        pipe.hset(keys.dead_letters, f"j{n}", json.dumps({"job_id": f"j{n}"}))
        pipe.hset(keys.dead_events, f"j{n}", event.model_dump_json())
    pipe.execute()
    redis_client.hset(keys.circuit("sophio", "a"), "state", "half_open")

    snap = StateReader(redis_client, keys, ["sophio"], {"sophio": ["a"]}).snapshot()

    assert (snap.dead_letters, snap.in_doubt) == (1200, 400)
    assert snap.circuits == {("sophio", "a"): CircuitState.HALF_OPEN}
