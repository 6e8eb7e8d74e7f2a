"""``order-dispatch quarantine list | show | requeue | delete`` on a real Redis, and a requeued
message run by a real worker.

A job's task message, quarantined (as a defect since fixed would have left it), is listed, shown
whole, sent back to its queue, and then accepted by a worker; another entry is deleted.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import httpx
import pytest
import redis

from order_dispatch.broker import queue_keys
from order_dispatch.keys import Keys
from producers.enqueue import Producer
from tests.integration.conftest import Events, WorkerProcess, cli, order_job, unique
from worker.quarantine import Quarantine

pytestmark = pytest.mark.integration


def test_list_show_requeue_and_delete(
    redis_client: redis.Redis,
    redis_url: str,
    worker_env_factory: Callable[..., dict[str, str]],
    sandbox_admin: httpx.Client,
) -> None:
    prefix = f"odq-{uuid.uuid4().hex[:6]}"
    keys = Keys(prefix)
    queue = keys.queue("sourceorders")
    receipt = Producer(redis_client, key_prefix=prefix).enqueue(order_job(unique("q")))
    raw = redis_client.rpop(queue)  # no worker yet: the message is still queued
    assert isinstance(raw, bytes)
    quarantine = Quarantine(redis_client, keys, worker="test")
    kept = quarantine.put(
        raw, queue=queue, reason="a defect, since fixed", task_id=receipt.task_id,
        job_id=receipt.job_id,
    )  # fmt: skip
    junk = quarantine.put(b"\xff not a message", queue=queue, reason="not JSON")

    listed = cli(redis_url, prefix, "quarantine", "list")
    as_json = cli(redis_url, prefix, "quarantine", "list", "--json")
    shown = cli(redis_url, prefix, "quarantine", "show", kept)

    assert listed.exit_code == 0, listed.output
    assert kept in listed.output and junk in listed.output and "2 messages" in listed.output
    assert "a defect, since fixed" in listed.output and receipt.job_id in listed.output
    rows = [json.loads(line) for line in as_json.output.splitlines()]
    assert [r["id"] for r in rows] == [kept, junk] and "raw" not in rows[0]
    assert rows[0]["job_id"] == receipt.job_id and rows[0]["queue"] == queue
    assert json.loads(shown.output)["raw"] == raw.decode()

    requeued = cli(redis_url, prefix, "quarantine", "requeue", kept)
    deleted = cli(redis_url, prefix, "quarantine", "delete", junk)
    again = cli(redis_url, prefix, "quarantine", "requeue", kept)
    bad_id = cli(redis_url, prefix, "quarantine", "show", "nonsense")

    assert requeued.exit_code == 0 and f"requeued {kept} to {queue}" in requeued.output
    assert deleted.exit_code == 0 and f"deleted {junk}" in deleted.output
    assert again.exit_code == 1 and f"no quarantined message {kept}" in again.output
    assert bad_id.exit_code == 1 and "is not a quarantine entry id" in bad_id.output
    assert quarantine.entries() == []
    assert sum(int(redis_client.llen(k)) for k in queue_keys(queue)) == 1
    assert cli(redis_url, prefix, "quarantine", "list").output.strip() == "the quarantine is empty"

    # The requeued message runs like any other.
    worker = WorkerProcess(worker_env_factory(prefix), concurrency=2, vendors="sourceorders")
    try:
        done = Events(redis_client, keys).wait_terminal([receipt.job_id], timeout=30)
    finally:
        worker.close()
    assert done[receipt.job_id].status == "accepted"
