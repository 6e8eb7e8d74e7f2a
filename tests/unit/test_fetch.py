"""The reliable fetch's Redis steps (worker.fetch) on the embedded Redis: take, give back,
reconcile, and the sweep that returns a dead worker's messages and ends its leases."""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from order_dispatch.broker import queue_key, task_message
from order_dispatch.keys import Keys
from order_dispatch.settings import Settings
from worker import fetch


@pytest.fixture
def keys() -> Keys:
    return Keys(f"odu-{uuid.uuid4().hex[:6]}")


def _take(client: redis.Redis, held_key: str, *lists: str) -> list[bytes] | None:
    reply = client.eval(fetch.TAKE_LUA, 1 + len(lists), held_key, *lists)
    return reply  # type: ignore[no-any-return]


def test_a_take_moves_the_oldest_message_of_the_first_non_empty_list(
    redis_client: redis.Redis, keys: Keys
) -> None:
    high, low = queue_key("q", 0), queue_key("q", 9)
    held = keys.fetch_held("w1")
    redis_client.lpush(low, b"low")
    redis_client.lpush(high, b"first", b"second")

    taken = [_take(redis_client, held, high, low) for _ in range(4)]

    assert taken[:3] == [
        [high.encode(), b"first"],
        [high.encode(), b"second"],
        [low.encode(), b"low"],
    ]
    assert taken[3] is None
    assert redis_client.lrange(held, 0, -1) == [
        fetch.element(low.encode(), b"low"),
        fetch.element(high.encode(), b"second"),
        fetch.element(high.encode(), b"first"),
    ]


def test_a_take_refused_for_memory_moves_nothing(redis_client: redis.Redis, keys: Keys) -> None:
    queue, held = queue_key("q-oom", 0), keys.fetch_held("w1")
    redis_client.lpush(queue, b"m")
    redis_client.config_set("maxmemory", 1)
    try:
        with pytest.raises(redis.ResponseError, match="OOM"):
            _take(redis_client, held, queue)
    finally:
        redis_client.config_set("maxmemory", 0)
    assert redis_client.lrange(queue, 0, -1) == [b"m"] and not redis_client.exists(held)


def test_give_back_to_the_front_or_the_back_and_only_once(
    redis_client: redis.Redis, keys: Keys
) -> None:
    queue = f"{keys.prefix}.q"
    redis_client.lpush(queue, b"a", b"b")
    fetcher = fetch.Fetcher(redis_client, keys, "w1")
    first = _take(redis_client, fetcher.held_key, queue)
    assert first is not None
    item = fetch.element(*first)

    assert fetcher.give_back(item, front=True)
    assert not fetcher.give_back(item, front=True)  # no longer held
    assert redis_client.lrange(queue, 0, -1) == [b"b", b"a"]  # "a" is taken next again
    second = _take(redis_client, fetcher.held_key, queue)
    assert second is not None and second[1] == b"a"
    fetcher.give_back(fetch.element(*second), front=False)
    assert redis_client.lrange(queue, 0, -1) == [b"a", b"b"]  # taken last
    assert redis_client.llen(fetcher.held_key) == 0


def test_reconcile_gives_back_only_what_this_process_does_not_hold(
    redis_client: redis.Redis, keys: Keys
) -> None:
    queue = f"{keys.prefix}.q"
    redis_client.lpush(queue, b"held", b"lost")
    fetcher = fetch.Fetcher(redis_client, keys, "w1")
    held_reply, lost_reply = (_take(redis_client, fetcher.held_key, queue) for _ in range(2))
    assert held_reply is not None and lost_reply is not None
    held_item = fetch.element(*held_reply)
    fetch.held.add(held_item)  # delivered; the other take's reply never arrived
    try:
        assert fetcher.reconcile() == 1
    finally:
        fetch.held.discard(held_item)
    assert redis_client.lrange(queue, 0, -1) == [b"lost"]
    assert redis_client.lrange(fetcher.held_key, 0, -1) == [held_item]


def _dispatch_message(job_id: str, queue: str) -> bytes:
    return task_message("task-1", {"job_id": job_id, "run": 1, "attempt": 1}, queue=queue).encode()


def test_the_sweep_returns_a_dead_workers_messages_and_ends_its_leases(
    redis_client: redis.Redis, keys: Keys
) -> None:
    settings = Settings(key_prefix=keys.prefix, redis_url=_url(redis_client))
    queue = f"{keys.prefix}.q"
    for job in ("job-a", "job-b", "job-c"):
        redis_client.lpush(queue, _dispatch_message(job, queue))
    for _ in range(3):
        _take(redis_client, keys.fetch_held("dead"), queue)
    redis_client.hset(keys.fetch_workers, "dead", "0")
    started = f"{time.time():.6f}"
    # job-a's attempt is the dead worker's; job-b's is another worker's; job-c never began.
    redis_client.hset(keys.ledger("job-a"), mapping={"state": "in_flight", "worker": "dead",
                                                      "started_at": started})  # fmt: skip
    redis_client.hset(keys.ledger("job-b"), mapping={"state": "in_flight", "worker": "alive",
                                                      "started_at": started})  # fmt: skip
    sweeper = fetch.Liveness(settings, worker="sweeper")
    try:
        redis_client.set(keys.fetch_alive("dead"), "1", px=60_000)
        assert sweeper.recover("dead") == 0  # its heartbeat is there: nothing happens
        redis_client.delete(keys.fetch_alive("dead"))

        assert sweeper.recover("dead") == 3
    finally:
        sweeper.client.close()

    assert redis_client.llen(queue) == 3 and redis_client.llen(keys.fetch_held("dead")) == 0
    assert not redis_client.hexists(keys.fetch_workers, "dead")
    ended = float(redis_client.hget(keys.ledger("job-a"), "started_at") or 0)
    assert time.time() - ended >= settings.lease_s  # the next delivery takes it over
    assert redis_client.hget(keys.ledger("job-a"), "lease_ended") is not None
    assert redis_client.hget(keys.ledger("job-b"), "started_at") == started.encode()
    assert not redis_client.exists(keys.ledger("job-c"))


def test_a_clean_stop_leaves_the_workers_hash_only_with_nothing_held(
    redis_client: redis.Redis, keys: Keys
) -> None:
    settings = Settings(key_prefix=keys.prefix, redis_url=_url(redis_client))
    liveness = fetch.Liveness(settings, worker="w1")
    liveness.register()
    redis_client.lpush(keys.fetch_held("w1"), b"q\nm")
    liveness._stop.set()
    liveness.stop()
    assert redis_client.hexists(keys.fetch_workers, "w1")  # a sweep returns the rest later

    liveness = fetch.Liveness(settings, worker="w2")
    liveness.register()
    liveness.stop()
    assert not redis_client.hexists(keys.fetch_workers, "w2")
    assert not redis_client.exists(keys.fetch_alive("w2"))


def test_identity_is_stable_in_a_process_and_names_host_and_pid() -> None:
    import os

    assert fetch.identity() == fetch.identity()
    assert f"-{os.getpid()}-" in fetch.identity()


def _url(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    host, port = kwargs.get("host", "127.0.0.1"), kwargs.get("port", 6379)
    return f"redis://{host}:{port}/{kwargs.get('db', 0)}"


def test_a_worker_of_this_host_whose_process_is_gone_is_known_dead() -> None:
    import json
    import os
    import subprocess
    import sys

    mine = json.loads(fetch.registration())
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    gone_pid = int(ended.stdout)

    def entry(pid: int, host: str = mine["host"]) -> str:
        return json.dumps({"at": 0, "pid": pid, "host": host})

    assert fetch.known_gone("w-gone", entry(gone_pid))
    assert fetch.known_gone("w-earlier-life-of-this-pid", entry(os.getpid()))
    assert not fetch.known_gone(fetch.identity(), entry(os.getpid()))
    assert not fetch.known_gone("w-parent", entry(os.getppid()))  # still running
    assert not fetch.known_gone("w-elsewhere", entry(gone_pid, host="another-host:1"))
    assert not fetch.known_gone("w-old-entry", "1733480000.0")
