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

import httpx
import pytest

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


def test_a_rejected_order_is_told_apart_from_an_accepted_one(
    flower: str,
    worker: WorkerProcess,
    producer: Producer,
    events: Events,
    sandbox_admin: httpx.Client,
) -> None:
    sandbox_admin.post(
        "/_sandbox/faults/sourceorders", json={"fail_next": 1, "status": 400}
    ).raise_for_status()
    receipt = producer.enqueue(order_job(unique("flower-no")))
    assert events.wait_terminal([receipt.job_id])[receipt.job_id].status == "rejected"

    deadline = time.monotonic() + 20
    while True:
        tasks = httpx.get(f"{flower}/api/tasks", auth=LOGIN, params={"limit": 1000}).json()
        ours = [t for t in tasks.values() if receipt.job_id in (t.get("kwargs") or "")]
        if any(t.get("result") for t in ours) or time.monotonic() > deadline:
            break
        time.sleep(0.2)

    [task] = ours
    # Celery's state is SUCCESS (the task ran to its end); its result says what became of it.
    assert task["result"].strip("'\"") == "rejected (vendor_rejected, HTTP 400)", task
