"""Workers stopped or killed with jobs queued or in flight: every job still ends exactly once."""

from __future__ import annotations

import signal
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis

from order_dispatch.contract import ResultEvent
from order_dispatch.keys import Keys
from producers.enqueue import Producer
from tests.integration.conftest import (
    QUICK_RECOVERY,
    Events,
    WorkerProcess,
    tagged_jobs,
    vendor_copies,
    wait_until,
)

pytestmark = pytest.mark.integration


def _finish_with_a_new_worker(
    env: dict[str, str], stopped: WorkerProcess, events: Events, ids: list[str]
) -> dict[str, ResultEvent]:
    """Start a second worker; every job must then end with exactly one terminal event."""
    second = WorkerProcess(env, concurrency=4)
    try:
        done = events.wait_terminal(ids, timeout=60)
    finally:
        second.close()
        stopped.close()
    terminal = Counter(e.job_id for e in events.all() if e.terminal)
    assert set(done) == set(ids), f"jobs without a terminal event: {set(ids) - set(done)}"
    assert all(terminal[i] == 1 for i in ids), terminal
    return done


def test_warm_stop_and_restart_with_jobs_queued(
    redis_client: redis.Redis,
    worker_env_factory: Callable[..., dict[str, str]],
    sandbox_admin: httpx.Client,
) -> None:
    prefix = f"odr-{uuid.uuid4().hex[:6]}"
    keys, events = Keys(prefix), Events(redis_client, Keys(prefix))
    sandbox_admin.post("/_sandbox/faults/sourceorders", json={"latency": {"ms": 150}})
    receipts = Producer(redis_client, key_prefix=prefix).enqueue_many(tagged_jobs(prefix, 30))
    ids = [r.job_id for r in receipts]

    first = WorkerProcess(worker_env_factory(prefix), concurrency=4)
    wait_until(lambda: len([e for e in events.all() if e.terminal]) >= 4, 30)
    assert first.stop(signal.SIGTERM) == 0
    ended_before_restart = {e.job_id for e in events.all() if e.terminal}
    assert len(ended_before_restart) < 30, "the stop came too late to prove anything"
    assert redis_client.llen(keys.queue("sourceorders")) > 0

    done = _finish_with_a_new_worker(worker_env_factory(prefix), first, events, ids)

    assert all(e.status == "accepted" for e in done.values())
    copies = vendor_copies(sandbox_admin)
    assert sum(copies.values()) == 30 and max(copies.values()) == 1


def test_killed_worker_jobs_end_once_and_are_never_sent_twice(
    redis_client: redis.Redis,
    worker_env_factory: Callable[..., dict[str, str]],
    sandbox_admin: httpx.Client,
) -> None:
    prefix = f"odk-{uuid.uuid4().hex[:6]}"
    env = worker_env_factory(prefix, **QUICK_RECOVERY)
    events = Events(redis_client, Keys(prefix))
    # Slow vendor: requests are in flight (and the vendor stores them) when the worker dies.
    sandbox_admin.post("/_sandbox/faults/sourceorders", json={"latency": {"ms": 1500}})
    receipts = Producer(redis_client, key_prefix=prefix).enqueue_many(tagged_jobs(prefix, 8))
    ids = [r.job_id for r in receipts]

    first = WorkerProcess(env, concurrency=4)
    wait_until(
        lambda: (
            sandbox_admin.get("/_sandbox/orders", params={"vendor": "sourceorders"}).json()[
                "requests"
            ]
            >= 4
        ),
        20,
    )
    first.stop(signal.SIGKILL)
    sandbox_admin.post("/_sandbox/faults/sourceorders", json={"latency": {"ms": 0}})

    done = _finish_with_a_new_worker(env, first, events, ids)

    statuses = Counter(e.status.value for e in done.values())
    assert statuses["in_doubt"] >= 1, statuses  # the ones killed mid-request
    assert statuses["accepted"] + statuses["in_doubt"] == 8, statuses
    copies = vendor_copies(sandbox_admin)
    assert max(copies.values()) == 1, f"an order was sent twice: {copies}"
    in_doubt = [e for e in done.values() if e.status == "in_doubt"]
    assert all("interrupted" in (e.error.message if e.error else "") for e in in_doubt)


def test_jobs_waiting_in_the_durable_schedule_outlive_a_killed_worker(
    redis_client: redis.Redis,
    worker_env_factory: Callable[..., dict[str, str]],
    sandbox_admin: httpx.Client,
) -> None:
    prefix = f"ods-{uuid.uuid4().hex[:6]}"
    env = worker_env_factory(prefix, **QUICK_RECOVERY)  # waits over 2 s go to the schedule
    keys, events = Keys(prefix), Events(redis_client, Keys(prefix))
    later = (datetime.now(UTC) + timedelta(seconds=8)).isoformat()
    jobs = [{**job, "not_before": later} for job in tagged_jobs(prefix, 10)]
    ids = [r.job_id for r in Producer(redis_client, key_prefix=prefix).enqueue_many(jobs)]

    first = WorkerProcess(env, concurrency=4)
    wait_until(lambda: redis_client.zcard(keys.schedule) == 10, 20)
    assert {e.status for e in events.all()} == {"deferred"}
    first.stop(signal.SIGKILL)
    assert redis_client.zcard(keys.schedule) == 10, "the kill lost scheduled jobs"
    assert vendor_copies(sandbox_admin) == {}

    done = _finish_with_a_new_worker(env, first, events, ids)

    assert all(e.status == "accepted" for e in done.values())
    assert all(e.attempt == 1 for e in done.values()), "a wait is not an attempt"
    copies = vendor_copies(sandbox_admin)
    assert sum(copies.values()) == 10 and max(copies.values()) == 1
