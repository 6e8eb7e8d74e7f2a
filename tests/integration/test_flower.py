"""Flower, started by ``order-dispatch flower``, against a real worker: login everywhere, and
tasks shown by vendor and ids, never with the order's customer data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from order_dispatch.keys import Keys
from order_dispatch_sandbox.runner import free_port
from producers.enqueue import Producer
from tests.integration.conftest import ROOT, Events, WorkerProcess, order_job, unique

pytestmark = pytest.mark.integration

LOGIN = ("ops", "flower-test-pw")


@pytest.fixture(scope="module")
def flower(redis_url: str, shared_prefix: str) -> Iterator[str]:
    pytest.importorskip("flower", reason="Flower is not installed (the 'flower' extra)")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDER_DISPATCH_", "FLOWER_"))}
    env.update(
        ORDER_DISPATCH_REDIS_URL=redis_url,
        ORDER_DISPATCH_KEY_PREFIX=shared_prefix,
        FLOWER_BASIC_AUTH=":".join(LOGIN),
        PYTHONPATH=str(ROOT),
    )
    with tempfile.NamedTemporaryFile("w+", prefix="od-test-flower-", suffix=".log") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "order_dispatch_cli", "flower", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/healthcheck", auth=LOGIN).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Flower did not start:\n{Path(log.name).read_text()}")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            proc.wait(20)


def test_every_page_and_the_metrics_need_the_login(flower: str) -> None:
    for path in ("/", "/tasks", "/api/tasks", "/metrics", "/healthcheck"):
        assert httpx.get(flower + path).status_code == 401, path
        assert httpx.get(flower + path, auth=("ops", "wrong")).status_code == 401, path
    assert httpx.get(f"{flower}/metrics", auth=LOGIN).status_code == 200


def test_tasks_show_vendor_and_ids_not_the_customer(
    flower: str,
    worker: WorkerProcess,
    producer: Producer,
    events: Events,
    sandbox_admin: httpx.Client,
) -> None:
    # The first attempt gets a 503, so the task Flower shows last is Celery's retry message.
    sandbox_admin.post(
        "/_sandbox/faults/sourceorders", json={"fail_next": 1, "status": 503}
    ).raise_for_status()
    order_id = unique("flower")
    receipt = producer.enqueue(order_job(order_id))
    assert events.wait_terminal([receipt.job_id])[receipt.job_id].status == "accepted"

    deadline = time.monotonic() + 20
    while True:
        tasks = httpx.get(f"{flower}/api/tasks", auth=LOGIN, params={"limit": 1000}).json()
        ours = [t for t in tasks.values() if receipt.job_id in (t.get("kwargs") or "")]
        if any(t["state"] == "SUCCESS" for t in ours) or time.monotonic() > deadline:
            break
        time.sleep(0.2)

    # One task: a Celery retry keeps the task id, and Flower shows its last delivery.
    [task] = ours
    assert task["state"] == "SUCCESS" and task["retries"] == 1, task
    assert task["name"] == "dispatch:sourceorders:create"
    assert f"'order_id': '{order_id}'" in task["kwargs"]
    assert "'vendor': 'sourceorders'" in task["kwargs"]
    assert task["result"].strip("'\"").startswith("accepted soo_"), task["result"]
    shown = json.dumps(task)
    assert "pam@example.com" not in shown and "Slough" not in shown


def _task_of(flower: str, job_id: str, states: set[str], timeout: float = 30) -> dict[str, Any]:
    """Flower's task for ``job_id`` once it is in one of ``states`` (the last one seen else)."""
    deadline = time.monotonic() + timeout
    ours: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        tasks = httpx.get(f"{flower}/api/tasks", auth=LOGIN, params={"limit": 1000}).json()
        ours = [t for t in tasks.values() if job_id in (t.get("kwargs") or "")]
        if any(t["state"] in states for t in ours):
            break
        time.sleep(0.2)
    assert len(ours) == 1, ours  # one task per job: a retry keeps the task id
    return ours[0]


@pytest.mark.parametrize(
    ("fault", "status", "reason"),
    [
        ({"fail_next": 1, "status": 400}, "rejected", "rejected (vendor_rejected, HTTP 400)"),
        (
            {"fail_next": 5, "status": 503},
            "dead_lettered",
            "dead_lettered (vendor_unavailable, HTTP 503)",
        ),
        ({"drop_after_commit_next": 1}, "in_doubt", "in_doubt ("),
    ],
)
def test_a_delivery_that_failed_is_a_failure_with_its_reason_and_loses_no_message(
    flower: str,
    worker: WorkerProcess,
    producer: Producer,
    events: Events,
    sandbox_admin: httpx.Client,
    redis_client: redis.Redis,
    shared_prefix: str,
    fault: dict[str, Any],
    status: str,
    reason: str,
) -> None:
    """Rejected, dead-lettered, in doubt: FAILURE in Flower with the reason as the exception,
    never SUCCESS. The outcome is recorded before the task ends, and Celery's failure handling
    neither drops nor quarantines the message: it is acked, as for a success."""
    sandbox_admin.post("/_sandbox/faults/sourceorders", json=fault).raise_for_status()
    receipt = producer.enqueue(order_job(unique(f"flower-{status}")))
    assert events.wait_terminal([receipt.job_id])[receipt.job_id].status == status

    task = _task_of(flower, receipt.job_id, {"FAILURE", "SUCCESS"})

    assert task["state"] == "FAILURE", task
    assert task["exception"].startswith(f"DeliveryFailed('{reason}"), task
    keys = Keys(shared_prefix)
    quarantined = redis_client.xrange(keys.quarantine) or []
    assert not [e for _, e in quarantined if (e or {}).get(b"job_id") == receipt.job_id.encode()]
    unacked: list[bytes] = redis_client.hvals("unacked")  # type: ignore[assignment]
    assert not [m for m in unacked if receipt.job_id.encode() in m]
    assert [e.status.value for e in events.of(receipt.job_id) if e.terminal] == [status]


def test_a_job_waiting_in_the_durable_schedule_is_a_retry(
    flower: str,
    worker: WorkerProcess,
    producer: Producer,
    sandbox_admin: httpx.Client,
) -> None:
    """A wait past the 30 s threshold sits in the durable schedule: RETRY while the job waits,
    and the next attempt goes on the same task. (A shorter wait is a Celery countdown: the
    worker holds the message with its ETA, and Flower shows it RECEIVED until it runs.)"""
    sandbox_admin.post(
        "/_sandbox/faults/sourceorders", json={"fail_next": 1, "status": 503, "retry_after": 40}
    ).raise_for_status()
    receipt = producer.enqueue(order_job(unique("flower-wait")))

    task = _task_of(flower, receipt.job_id, {"RETRY", "SUCCESS", "FAILURE"})

    assert task["state"] == "RETRY", task
    assert "Waiting('retry_scheduled in 4" in task["exception"], task


def test_the_broker_page_lists_the_dispatch_queues(
    flower: str, worker: WorkerProcess, shared_prefix: str
) -> None:
    """Flower's Broker page answers (it said "'redis' broker is not supported" under the workers'
    own transport) and shows each vendor queue the workers consume."""
    wanted = {f"{shared_prefix}.sourceorders", f"{shared_prefix}.sophio"}
    deadline = time.monotonic() + 30
    while True:
        # Flower asks the workers what they consume when it starts (before this worker did) and
        # when its Workers page is refreshed.
        httpx.get(f"{flower}/api/workers", auth=LOGIN, params={"refresh": "1"}, timeout=30)
        page = httpx.get(f"{flower}/broker", auth=LOGIN)
        queues = httpx.get(f"{flower}/api/queues/length", auth=LOGIN)
        names = (
            {q["name"] for q in queues.json()["active_queues"]}
            if queues.status_code == 200
            else set()
        )
        if (page.status_code == 200 and wanted <= names) or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    assert page.status_code == 200, page.text[:500]
    assert queues.status_code == 200, queues.text[:500]
    assert wanted <= names
    assert f"{shared_prefix}.sourceorders" in page.text
