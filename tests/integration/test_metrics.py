"""``order-dispatch metrics`` scraped after a small mixed run against a real worker and the
sandbox: every series carries the value the run implies."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from order_dispatch.keys import Keys
from order_dispatch_sandbox.runner import free_port
from producers.enqueue import Producer
from tests.integration.conftest import ROOT, Events, WorkerProcess, order_job, unique
from worker.vendors import known_vendors

pytestmark = pytest.mark.integration

LOGIN = ("prom", "metrics-test-pw")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class MetricsProcess:
    """A real ``order-dispatch metrics`` subprocess."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        self.log = tempfile.NamedTemporaryFile("w+", prefix="od-test-metrics-", suffix=".log")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "order_dispatch_cli", "metrics", "--port", str(self.port)],
            env=env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.url, auth=LOGIN).raise_for_status()
                return
            except httpx.HTTPError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    log = Path(self.log.name).read_text()
                    raise RuntimeError(f"metrics did not start:\n{log}") from None
                time.sleep(0.1)

    def scrape(self) -> Samples:
        response = httpx.get(self.url, auth=LOGIN)
        response.raise_for_status()
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples
        }

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)
        self.log.close()


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
def run_env(worker_env_factory: Callable[..., dict[str, str]]) -> dict[str, str]:
    env = worker_env_factory(unique("odm"))
    accounts = json.loads(env["ORDER_DISPATCH_ACCOUNTS"])
    # Sophio has an account but no worker here: its queue must show all the same.
    accounts["sophio"] = {
        "default": {
            "base_url": "http://127.0.0.1:9/sophio",
            "credentials": {"api_key": "metrics-key", "api_secret": "metrics-secret"},
        }
    }
    env["ORDER_DISPATCH_ACCOUNTS"] = json.dumps(accounts)
    env["ORDER_DISPATCH_METRICS_BASIC_AUTH"] = ":".join(LOGIN)
    return env


@pytest.fixture
def metrics(run_env: dict[str, str]) -> Iterator[MetricsProcess]:
    proc = MetricsProcess(run_env)
    yield proc
    proc.close()


def test_a_scrape_needs_the_login_when_one_is_set(metrics: MetricsProcess) -> None:
    assert httpx.get(metrics.url).status_code == 401
    assert httpx.get(metrics.url, auth=("prom", "wrong")).status_code == 401


def test_the_series_carry_what_a_mixed_run_did(
    metrics: MetricsProcess,
    run_env: dict[str, str],
    redis_client: redis.Redis,
    sandbox_admin: httpx.Client,
) -> None:
    prefix = run_env["ORDER_DISPATCH_KEY_PREFIX"]
    keys, events = Keys(prefix), Events(redis_client, Keys(prefix))
    producer = Producer(redis_client, key_prefix=prefix)
    faults = "/_sandbox/faults/sourceorders"

    # Given two jobs waiting for a vendor no worker consumes ...
    started = time.monotonic()
    for _ in range(2):
        job = order_job(unique("sophio"))
        job["vendor"] = "sophio"
        producer.enqueue(job)
    # ... and a run at SourceOrders: one rejected, one retried then accepted, two accepted, one
    # whose answer is lost (in doubt), one for an unknown account (dead-lettered), one deferred.
    worker = WorkerProcess(run_env, concurrency=4, vendors="sourceorders")
    try:

        def one(fault: dict[str, Any] | None, job: dict[str, Any], wait: bool = True) -> None:
            if fault:
                sandbox_admin.post(faults, json=fault).raise_for_status()
            receipt = producer.enqueue(job)
            if wait:
                assert receipt.job_id in events.wait_terminal([receipt.job_id])

        one({"fail_next": 1, "status": 400}, order_job(unique("rejected")))
        one({"fail_next": 1, "status": 503}, order_job(unique("retried")))
        one(None, order_job(unique("ok")))
        one(None, order_job(unique("ok")))
        one({"drop_after_commit_next": 1}, order_job(unique("lost")))
        one(None, {**order_job(unique("nosuch")), "account": "nosuch"})
        later = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
        one(None, {**order_job(unique("later")), "not_before": later}, wait=False)
        # Given also delayed retries, an open circuit and a consumer group behind.
        later_s = time.time() + 3600
        redis_client.zadd(keys.schedule, {"a": later_s, "b": later_s, "c": later_s})
        redis_client.hset(keys.circuit("sourceorders", "default"), "state", "open")
        deadline = time.monotonic() + 20
        while not any(e.status == "deferred" for e in events.all()):
            assert time.monotonic() < deadline, "no deferred event"
            time.sleep(0.1)
        redis_client.xgroup_create(keys.results, "billing", id="0")
        redis_client.xreadgroup("billing", "b-1", {keys.results: ">"}, count=2)
    finally:
        worker.close()
    stream_length = redis_client.xlen(keys.results)

    # When the endpoint is scraped (once it has read every event) ...
    expected_events = {
        ("default", "accepted"): 3,
        ("default", "rejected"): 1,
        ("default", "retry_scheduled"): 1,
        ("default", "in_doubt"): 1,
        ("default", "deferred"): 1,
        ("default", "dead_lettered"): 0,
        ("other", "dead_lettered"): 1,
    }
    deadline = time.monotonic() + 20
    while True:
        samples = metrics.scrape()
        seen = {
            (account, status): value(
                samples,
                "order_dispatch_events_total",
                vendor="sourceorders",
                account=account,
                status=status,
            )
            for account, status in expected_events
        }
        if seen == expected_events or time.monotonic() > deadline:
            break
        time.sleep(0.2)

    # Then every series says what happened.
    assert seen == expected_events
    so = {"vendor": "sourceorders", "account": "default"}
    assert value(samples, "order_dispatch_deferrals_total", reason="not_before", **so) == 1
    # Latency of each attempt that called the vendor: rejected, retried (2), accepted (2), lost.
    assert value(samples, "order_dispatch_vendor_latency_seconds_count", **so) == 6
    assert value(samples, "order_dispatch_vendor_latency_seconds_bucket", le="+Inf", **so) == 6
    assert value(samples, "order_dispatch_redis_up") == 1
    sophio = {"vendor": "sophio", "queue": f"{prefix}.sophio"}
    assert value(samples, "order_dispatch_queue_depth", **sophio) == 2
    age = value(samples, "order_dispatch_queue_oldest_job_age_seconds", **sophio)
    assert age is not None and 0 < age <= time.monotonic() - started + 1
    # The deferred job waits in the durable schedule (ten minutes is past the countdown limit).
    so_queue = {"vendor": "sourceorders", "queue": f"{prefix}.sourceorders"}
    assert value(samples, "order_dispatch_queue_depth", **so_queue) == 0
    assert value(samples, "order_dispatch_schedule_size") == 3 + 1
    assert value(samples, "order_dispatch_dead_letters") == 2
    assert value(samples, "order_dispatch_in_doubt") == 1
    assert value(samples, "order_dispatch_quarantined_messages") == 0
    assert value(samples, "order_dispatch_results_stream_length") == stream_length
    assert value(samples, "order_dispatch_results_group_lag", group="billing") == stream_length - 2
    assert value(samples, "order_dispatch_results_group_pending", group="billing") == 2
    assert value(samples, "order_dispatch_results_group_lag", group="metrics") == 0
    for state, expected in (("open", 1), ("closed", 0), ("half_open", 0)):
        assert value(samples, "order_dispatch_circuit_state", state=state, **so) == expected
    closed = {"vendor": "sophio", "account": "default", "state": "closed"}
    assert value(samples, "order_dispatch_circuit_state", **closed) == 1
    # Label values stay within the known vendors (webhook deliveries' "webhooks" among them: its
    # queue is every worker's), the configured accounts and "other".
    labels = {dict(k[1]).get("vendor") for k in samples} | {
        dict(k[1]).get("account") for k in samples
    }
    assert labels - {None} <= {*known_vendors(), "webhooks", "default", "other"}
