"""``order-dispatch health`` against a real Redis and a real worker: each unhealthy condition
gives exit 1 and a one-line reason; a healthy deployment gives exit 0."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis

from order_dispatch.contract import EventStatus, Job, ResultEvent
from order_dispatch.keys import Keys
from producers.enqueue import Producer
from tests.integration.conftest import ROOT, WorkerProcess, order_job, unique

pytestmark = pytest.mark.integration


def run_health(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", "order_dispatch_cli", "health", "--timeout", "1", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, result.stdout.strip() + result.stderr.strip()


@pytest.fixture
def env_of(
    worker_env_factory: Callable[..., dict[str, str]],
) -> Callable[[str], dict[str, str]]:
    def make(prefix: str) -> dict[str, str]:
        env = worker_env_factory(prefix)
        accounts = json.loads(env["ORDER_DISPATCH_ACCOUNTS"])
        # An account at a vendor no worker consumes: its queue counts all the same.
        accounts["sophio"] = {"default": {"base_url": "http://127.0.0.1:9/sophio"}}
        env["ORDER_DISPATCH_ACCOUNTS"] = json.dumps(accounts)
        return env

    return make


def test_a_running_worker_and_empty_queues_are_healthy(
    worker: WorkerProcess, shared_prefix: str, env_of: Callable[[str], dict[str, str]]
) -> None:
    code, out = run_health(env_of(shared_prefix))

    assert code == 0, out
    assert out.startswith("ok: ") and "1 workers answered" in out and "\n" not in out


def test_no_worker_of_this_deployment(
    worker: WorkerProcess, env_of: Callable[[str], dict[str, str]]
) -> None:
    # The session's worker answers pings, but consumes another prefix's queues.
    code, out = run_health(env_of(unique("odh")))

    assert code == 1
    assert out == "unhealthy: no worker consuming the dispatch queues answered"


def test_each_unhealthy_condition_is_named_on_one_line_and_in_json(
    worker: WorkerProcess,
    shared_prefix: str,
    redis_client: redis.Redis,
    env_of: Callable[[str], dict[str, str]],
) -> None:
    prefix = unique("odh")
    env = {**env_of(prefix), "ORDER_DISPATCH_KEY_PREFIX": prefix}
    keys = Keys(prefix)
    # A job waiting an hour in a queue no worker consumes.
    job = order_job(unique("old"))
    job["vendor"] = "sophio"
    job["enqueued_at"] = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    Producer(redis_client, key_prefix=prefix).enqueue(job)
    # Three dead letters, two of them in doubt; an open circuit.
    for n, status in enumerate(["dead_lettered", "in_doubt", "in_doubt"]):
        dead = Job.model_validate({**order_job(f"dead-{n}"), "job_id": f"job-{n}"})
        event = ResultEvent.for_job(
            dead, run=1, run_token="t", attempt=1, status=EventStatus(status)
        )
        redis_client.hset(keys.dead_letters, f"job-{n}", "{}")
        redis_client.hset(keys.dead_events, f"job-{n}", event.model_dump_json())
    redis_client.hset(keys.circuit("sophio", "default"), "state", "open")

    code, out = run_health(env, "--max-dead", "2", "--max-in-doubt", "1")

    assert code == 1
    assert "\n" not in out
    assert out.startswith("unhealthy: no worker consuming the dispatch queues answered; ")
    assert re.search(
        rf"queue {prefix}\.sophio: oldest job 36\d\d s old \(limit 600 s, 1 waiting\)", out
    )
    assert "3 dead letters (limit 2)" in out
    assert "2 jobs in doubt (limit 1)" in out
    assert "circuit sophio/default open" in out

    code, out = run_health(
        env, "--json", "--max-age", "7200", "--max-dead", "5", "--max-in-doubt", "1"
    )
    verdict = json.loads(out)
    failed = {c["name"] for c in verdict["checks"] if not c["ok"]}
    assert code == 1 and verdict["ok"] is False
    assert failed == {"workers", "in_doubt", "circuit"}
    assert verdict["summary"].startswith("unhealthy: ")


def test_an_unreachable_broker(env_of: Callable[[str], dict[str, str]]) -> None:
    env = {**env_of(unique("odh")), "ORDER_DISPATCH_REDIS_URL": "redis://127.0.0.1:1/0"}

    code, out = run_health(env)

    assert code == 1
    assert out.startswith("unhealthy: broker unreachable: ") and "\n" not in out
