"""The durable schedule: due messages move once, whatever number of schedulers run."""

from __future__ import annotations

import base64
import json
import threading
import uuid

import redis

from order_dispatch.keys import Keys
from worker.schedule import DurableSchedule

T0 = 1_800_000_000.0


def schedule_for(client: redis.Redis) -> DurableSchedule:
    return DurableSchedule(client, Keys(f"ods-{uuid.uuid4().hex[:6]}"))


def kwargs_of(raw: bytes | str) -> dict[str, object]:
    body = json.loads(base64.b64decode(json.loads(raw)["body"]))
    kwargs: dict[str, object] = body[1]
    return kwargs


def test_a_message_moves_to_its_queue_when_due(redis_client: redis.Redis) -> None:
    schedule = schedule_for(redis_client)
    queue = schedule.keys.queue("sophio")
    schedule.add(job_id="j1", run=2, attempt=3, deferred=True, queue=queue, priority=0, due=T0 + 60)

    early = schedule.move_due(now=T0 + 59)
    due = schedule.move_due(now=T0 + 60)

    assert (early, due) == (0, 1)
    [raw] = redis_client.lrange(queue, 0, -1)
    assert kwargs_of(raw) == {"job_id": "j1", "run": 2, "attempt": 3, "deferred": True}
    assert schedule.size() == 0


def test_racing_schedulers_never_enqueue_twice(redis_client: redis.Redis) -> None:
    schedule = schedule_for(redis_client)
    queue = schedule.keys.queue("sellercloud")
    for n in range(300):
        schedule.add(
            job_id=f"j{n}", run=1, attempt=2, deferred=False, queue=queue, priority=0, due=T0
        )
    others = [
        DurableSchedule(redis.Redis.from_url(_url(redis_client)), schedule.keys) for _ in range(4)
    ]

    threads = [threading.Thread(target=s.move_due, kwargs={"now": T0, "batch": 7}) for s in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    while schedule.move_due(now=T0, batch=7):
        pass

    ids = [str(kwargs_of(raw)["job_id"]) for raw in redis_client.lrange(queue, 0, -1)]
    assert sorted(ids) == sorted(f"j{n}" for n in range(300))


def _url(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"
