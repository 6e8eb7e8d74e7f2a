"""Reliable fetch with real worker processes: a killed worker's jobs come back at once when a
worker of the same host sees its process gone, else when its heartbeat lapses (seconds, at the
default settings), and a stopped worker leaves nothing held.

The killed worker holds its jobs in its held list (``<prefix>:fetch:held:<id>``); the test reads
that list, kills the worker with SIGKILL, and times how long the jobs take to end under a second
worker with the product's default heartbeat (5 s), death (30 s) and lease (90 s) settings: on
the same host, and as if the killed worker had run on another host (its entry says so), where
only the lapsed heartbeat tells. A
job the killed worker had in flight finds its attempt's lease ended by the sweep and settles as
an interrupted attempt (SourceOrders cannot be asked: ``in_doubt``); none reaches the vendor
twice. `-s` shows the figure.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
import redis

from order_dispatch.keys import WAKE_TOKENS, Keys
from producers.enqueue import Producer
from tests.integration.conftest import (
    Events,
    WorkerProcess,
    tagged_jobs,
    vendor_copies,
    wait_until,
)

pytestmark = pytest.mark.integration


def _workers(client: redis.Redis, keys: Keys) -> set[str]:
    return {w.decode() if isinstance(w, bytes) else w for w in client.hkeys(keys.fetch_workers)}


def _held(client: redis.Redis, keys: Keys, worker: str) -> int:
    return int(client.llen(keys.fetch_held(worker)))


@pytest.mark.parametrize("where", ["same-host", "other-host"])
def test_kill_9_of_a_worker_holding_150_jobs_recovers_within_seconds_at_defaults(
    where: str,
    redis_client: redis.Redis,
    worker_env_factory: Callable[..., dict[str, str]],
    sandbox_admin: httpx.Client,
) -> None:
    prefix = f"odf-{uuid.uuid4().hex[:6]}"
    keys, events = Keys(prefix), Events(redis_client, Keys(prefix))
    env = worker_env_factory(prefix)  # the product's heartbeat, death and lease settings
    sandbox_admin.post("/_sandbox/faults/sourceorders", json={"latency": {"ms": 1000}})
    receipts = Producer(redis_client, key_prefix=prefix).enqueue_many(tagged_jobs(prefix, 600))
    ids = [r.job_id for r in receipts]

    first = WorkerProcess(env, concurrency=180, vendors="sourceorders")
    try:
        wait_until(lambda: len(_workers(redis_client, keys)) == 1, 30)
        (victim,) = _workers(redis_client, keys)
        if where == "other-host":
            # As if it ran on another host: only its heartbeat can tell that it died.
            entry = json.loads(redis_client.hget(keys.fetch_workers, victim) or "{}")
            entry["host"] = "another-host:1"
            redis_client.hset(keys.fetch_workers, victim, json.dumps(entry))
        wait_until(lambda: _held(redis_client, keys, victim) >= 150, 60)
        first.stop(signal.SIGKILL)
        killed_at = time.monotonic()
        held_at_kill = _held(redis_client, keys, victim)
        ended_before = len(events.wait_terminal(ids, timeout=0))
        second = WorkerProcess(env, concurrency=180, vendors="sourceorders")
        try:
            wait_until(lambda: _held(redis_client, keys, victim) == 0, 60)
            returned_s = time.monotonic() - killed_at
            done = events.wait_terminal(ids, timeout=120)
            recovered_s = time.monotonic() - killed_at
        finally:
            second.close()
    finally:
        first.close()
    terminal = Counter(e.job_id for e in events.all() if e.terminal)
    statuses = Counter(e.status.value for e in done.values())
    copies = vendor_copies(sandbox_admin, prefix)
    print(
        f"\nkill -9 at defaults ({where}): {held_at_kill} jobs held, {ended_before}/600 ended "
        f"before the kill; given back {returned_s:.1f} s and all ended {recovered_s:.1f} s "
        f"after it; {dict(statuses)}; vendor holds "
        f"{len(copies)} orders, {sum(n - 1 for n in copies.values())} duplicates"
    )

    assert held_at_kill >= 150
    assert set(done) == set(ids), f"jobs without a terminal event: {len(set(ids) - set(done))}"
    assert all(terminal[i] == 1 for i in ids)
    assert max(copies.values()) == 1, "an order reached the vendor twice"
    assert set(statuses) <= {"accepted", "in_doubt"}, statuses
    accepted = {e.order_id for e in done.values() if e.status == "accepted"}
    assert accepted <= set(copies)
    assert recovered_s <= 45, f"recovery took {recovered_s:.1f} s"
    assert _held(redis_client, keys, victim) == 0
    assert victim not in _workers(redis_client, keys), "the dead worker is still listed"


def test_a_worker_stopped_and_restarted_leaves_nothing_held_and_runs_nothing_twice(
    redis_client: redis.Redis,
    worker_env_factory: Callable[..., dict[str, str]],
    sandbox_admin: httpx.Client,
) -> None:
    prefix = f"ods-{uuid.uuid4().hex[:6]}"
    keys, events = Keys(prefix), Events(redis_client, Keys(prefix))
    env = worker_env_factory(prefix)
    sandbox_admin.post("/_sandbox/faults/sourceorders", json={"latency": {"ms": 300}})
    receipts = Producer(redis_client, key_prefix=prefix).enqueue_many(tagged_jobs(prefix, 120))
    ids = [r.job_id for r in receipts]

    first = WorkerProcess(env, concurrency=16, vendors="sourceorders")
    try:
        wait_until(lambda: len(_workers(redis_client, keys)) == 1, 30)
        (stopped,) = _workers(redis_client, keys)
        wait_until(lambda: len(events.wait_terminal(ids, timeout=0)) >= 20, 60)
        held_at_stop = _held(redis_client, keys, stopped)
        assert first.stop(signal.SIGTERM) == 0
        output = first.output()
    finally:
        first.close()
    held_after = _held(redis_client, keys, stopped)
    listed_after = stopped in _workers(redis_client, keys)
    second = WorkerProcess(env, concurrency=16, vendors="sourceorders")
    try:
        done = events.wait_terminal(ids, timeout=90)
        second_output = second.output()
    finally:
        second.close()
    terminal = Counter(e.job_id for e in events.all() if e.terminal)
    statuses = Counter(e.status.value for e in done.values())
    copies = vendor_copies(sandbox_admin, prefix)
    print(
        f"\nSIGTERM with {held_at_stop} held: {held_after} left held after the stop; "
        f"{dict(statuses)}"
    )

    assert held_at_stop > 0
    assert held_after == 0 and not listed_after, "the stopped worker left messages held"
    assert "did not finish in time" not in output
    assert set(done) == set(ids) and all(terminal[i] == 1 for i in ids)
    assert statuses == {"accepted": 120}, statuses  # no attempt was interrupted
    assert len(copies) == 120 and max(copies.values()) == 1
    # No delivery met its own job still in flight: nothing was handed out while running.
    assert "another delivery is in flight" not in second_output
    assert "another delivery of this job just started" not in second_output


@pytest.mark.parametrize(
    "bystanders", [[], ["sophio", "shopatron"]], ids=["alone", "beside-other-vendors-workers"]
)
def test_a_job_enqueued_while_the_worker_idles_wakes_it_without_waiting_for_the_next_look(
    redis_client: redis.Redis,
    worker_env_factory: Callable[..., dict[str, str]],
    sandbox_admin: httpx.Client,
    bystanders: list[str],
) -> None:
    """An idle worker looks at its queues every ``FETCH_IDLE_POLL_S`` (here its most, 1 s);
    each enqueue pushes a wake token that ends its wait at once. Without it each of these
    jobs, enqueued at a random point of the worker's wait, would wait half a second on average
    (all five under 0.5 s by chance: 1 in 32).

    Beside it, ``bystanders``: idle workers that serve other vendors only. The token goes to the
    wake list of the job's queue, on which only a worker serving that queue waits. With one
    wake list for all, the bystanders took the tokens and each job waited for the SourceOrders
    worker's next look (measured: 0.81 s for every job)."""
    prefix = f"odw-{uuid.uuid4().hex[:6]}"
    keys, events = Keys(prefix), Events(redis_client, Keys(prefix))
    env = worker_env_factory(prefix, ORDER_DISPATCH_FETCH_IDLE_POLL_S="1")
    sandbox_admin.post("/_sandbox/faults/sourceorders", json={})
    producer = Producer(redis_client, key_prefix=prefix)
    workers = [WorkerProcess(env, concurrency=2, vendors=vendor) for vendor in bystanders]
    workers.append(WorkerProcess(env, concurrency=4, vendors="sourceorders"))
    try:
        warm = producer.enqueue(tagged_jobs(f"{prefix}w", 1)[0]).job_id
        assert events.wait_terminal([warm], timeout=60)
        took = []
        for job in tagged_jobs(prefix, 5):
            time.sleep(1.2)  # every worker found its queues empty and waits
            started = time.monotonic()
            job_id = producer.enqueue(job).job_id
            assert events.wait_terminal([job_id], timeout=10)
            took.append(time.monotonic() - started)
    finally:
        for worker in workers:
            worker.close()
    print(f"\nenqueue to terminal event while idle: {[round(t, 3) for t in took]} s")
    assert max(took) < 0.5, took
    assert int(redis_client.llen(keys.fetch_wake(keys.queue("sourceorders")))) <= WAKE_TOKENS
    for vendor in bystanders:  # no token where nothing was enqueued: none for them to take
        assert redis_client.exists(keys.fetch_wake(keys.queue(vendor))) == 0


def test_the_wake_list_stays_short_when_no_worker_waits(redis_client: redis.Redis) -> None:
    prefix = f"odw-{uuid.uuid4().hex[:6]}"
    keys = Keys(prefix)
    Producer(redis_client, key_prefix=prefix).enqueue_many(tagged_jobs(prefix, 300))
    wake = keys.fetch_wake(keys.queue("sourceorders"))
    assert int(redis_client.llen(wake)) == WAKE_TOKENS
    assert int(redis_client.llen(keys.queue("sourceorders"))) == 300
    redis_client.delete(wake, keys.queue("sourceorders"))
