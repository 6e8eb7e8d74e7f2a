"""How a real worker process stops: its exit status, and a SIGTERM bounded in time.

0 after a requested stop; non-zero when it stops by itself, so a supervisor that restarts on
failure restarts it; 78 (EX_CONFIG) when it refuses its configuration. A SIGTERM lets running
jobs finish within ``shutdown_timeout_s``; past it, their messages go back to the queue.
"""

from __future__ import annotations

import json
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis

from order_dispatch.keys import Keys
from order_dispatch_cli.demo import worker_command
from order_dispatch_cli.embedded_redis import EmbeddedRedis
from producers.enqueue import Producer
from tests.integration.conftest import ROOT, Events, WorkerProcess, order_job, wait_until

pytestmark = pytest.mark.integration

EX_CONFIG = 78


def _exit_of(env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    """Run a worker that is expected to stop by itself; its exit status and log."""
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(
            worker_command("sourceorders", 2), env=env, cwd=ROOT, stdout=log, stderr=log
        )
        try:
            status = proc.wait(timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        log.seek(0)
        return status, log.read()


@pytest.fixture
def persistent_redis() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(appendonly=True) as server:
        yield server


@pytest.fixture
def persistent_env(
    persistent_redis: EmbeddedRedis, worker_env_factory: Callable[..., dict[str, str]]
) -> dict[str, str]:
    """A worker's environment on ``persistent_redis``, without the allowance."""
    return worker_env_factory(
        f"ode-{uuid.uuid4().hex[:6]}",
        ORDER_DISPATCH_REDIS_URL=persistent_redis.url,
        ORDER_DISPATCH_ALLOW_NON_PERSISTENT_REDIS="false",
    )


@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT], ids=["SIGTERM", "SIGINT", "SIGQUIT"]
)
def test_a_requested_stop_exits_zero(
    sig: int, worker_env_factory: Callable[..., dict[str, str]]
) -> None:
    worker = WorkerProcess(worker_env_factory(f"ode-{uuid.uuid4().hex[:6]}"), concurrency=2)

    assert worker.stop(sig) == 0, worker.output()[-2000:]
    worker.close()


def test_a_redis_without_persistence_is_refused(
    worker_env_factory: Callable[..., dict[str, str]],
) -> None:
    env = worker_env_factory(
        f"ode-{uuid.uuid4().hex[:6]}", ORDER_DISPATCH_ALLOW_NON_PERSISTENT_REDIS="false"
    )

    status, log = _exit_of(env)

    assert status == EX_CONFIG, log[-2000:]
    assert "appendonly no" in log
    assert "ORDER_DISPATCH_ALLOW_NON_PERSISTENT_REDIS" in log
    assert "ready." not in log


def test_a_persistent_redis_is_served_without_the_allowance(persistent_env: dict[str, str]) -> None:
    worker = WorkerProcess(persistent_env, concurrency=2)
    output = worker.output()
    worker.close()

    assert "DOES NOT PERSIST" not in output


def test_redis_losing_persistence_while_served_stops_the_worker_non_zero(
    persistent_redis: EmbeddedRedis, persistent_env: dict[str, str]
) -> None:
    worker = WorkerProcess(persistent_env, concurrency=2)
    client = redis.Redis.from_url(persistent_redis.url)

    client.config_set("appendonly", "no")
    client.client_kill_filter(_type="normal", skipme=True)  # the worker reconnects and checks
    try:
        status = worker.proc.wait(60)
    finally:
        client.close()
        worker.close()

    assert status == EX_CONFIG, worker.output()[-2000:]


def test_wrong_account_settings_are_refused(
    worker_env_factory: Callable[..., dict[str, str]],
) -> None:
    accounts = {"sourceorders": {"default": {"base_url": "http://127.0.0.1:9/sourceorders"}}}
    env = worker_env_factory(
        f"ode-{uuid.uuid4().hex[:6]}", ORDER_DISPATCH_ACCOUNTS=json.dumps(accounts)
    )

    status, log = _exit_of(env)

    assert status == EX_CONFIG, log[-2000:]
    assert "refusing to start" in log
    assert "api_key" in log


def _requests_seen(admin: httpx.Client) -> int:
    reply = admin.get("/_sandbox/orders", params={"vendor": "sourceorders"}).json()
    return int(reply["requests"])


def test_sigterm_lets_running_jobs_finish_within_the_bound(
    redis_client: redis.Redis,
    worker_env_factory: Callable[..., dict[str, str]],
    sandbox_admin: httpx.Client,
) -> None:
    prefix = f"ods-{uuid.uuid4().hex[:6]}"
    events = Events(redis_client, Keys(prefix))
    sandbox_admin.post("/_sandbox/faults/sourceorders", json={"latency": {"ms": 1500}})
    receipts = Producer(redis_client, key_prefix=prefix).enqueue_many(
        [order_job(f"{prefix}-{i}") for i in range(4)]
    )
    worker = WorkerProcess(
        worker_env_factory(prefix, ORDER_DISPATCH_SHUTDOWN_TIMEOUT_S="20"), concurrency=4
    )
    wait_until(lambda: _requests_seen(sandbox_admin) >= 4, 20)

    started = time.monotonic()
    status = worker.stop(signal.SIGTERM)
    took = time.monotonic() - started
    worker.close()

    assert status == 0
    assert took < 20, "the worker waited out the whole bound for jobs of 1.5 s"
    done = events.wait_terminal([r.job_id for r in receipts], timeout=0)
    assert {e.status for e in done.values()} == {"accepted"} and len(done) == 4


@pytest.mark.parametrize(
    ("sig", "bound_s"),
    [(signal.SIGTERM, 2.0), (signal.SIGQUIT, 0.0)],
    ids=["SIGTERM-past-the-bound", "SIGQUIT-at-once"],
)
def test_a_stop_hands_running_jobs_back_past_its_bound(
    sig: int,
    bound_s: float,
    redis_client: redis.Redis,
    worker_env_factory: Callable[..., dict[str, str]],
    sandbox_admin: httpx.Client,
) -> None:
    prefix = f"ods-{uuid.uuid4().hex[:6]}"
    keys, events = Keys(prefix), Events(redis_client, Keys(prefix))
    env = worker_env_factory(
        prefix,
        ORDER_DISPATCH_SHUTDOWN_TIMEOUT_S="2",  # SIGQUIT does not wait at all
        ORDER_DISPATCH_HTTP__CONNECT_TIMEOUT_S="1",
        ORDER_DISPATCH_HTTP__READ_TIMEOUT_S="3",
        ORDER_DISPATCH_HTTP__DEADLINE_S="4",
        ORDER_DISPATCH_LEASE_MARGIN_S="1",
    )
    sandbox_admin.post("/_sandbox/faults/sourceorders", json={"latency": {"ms": 10_000}})
    receipts = Producer(redis_client, key_prefix=prefix).enqueue_many(
        [order_job(f"{prefix}-{i}") for i in range(4)]
    )
    ids = [r.job_id for r in receipts]
    first = WorkerProcess(env, concurrency=4)
    wait_until(lambda: _requests_seen(sandbox_admin) >= 4, 20)

    started = time.monotonic()
    status = first.stop(sig)
    took = time.monotonic() - started
    back = redis_client.llen(keys.queue("sourceorders"))
    log = first.output()
    first.close()

    assert status == 0, log[-2000:]
    assert bound_s <= took < bound_s + 7, f"stopped after {took:.1f} s; bound {bound_s} s"
    assert back == 4, f"{back} of 4 messages back in the queue"
    assert "go back to the queue" in log

    sandbox_admin.post("/_sandbox/faults/sourceorders", json={"latency": {"ms": 0}})
    second = WorkerProcess(env, concurrency=4)
    try:
        done = events.wait_terminal(ids, timeout=60)
    finally:
        second.close()
    terminal = Counter(e.job_id for e in events.all() if e.terminal)
    assert set(done) == set(ids) and all(terminal[i] == 1 for i in ids), terminal
    # Cut off mid-request: SourceOrders cannot say whether it has the order.
    assert {e.status for e in done.values()} <= {"accepted", "in_doubt"}
    orders = sandbox_admin.get("/_sandbox/orders", params={"vendor": "sourceorders"}).json()
    assert len(orders["orders"]) <= 4
