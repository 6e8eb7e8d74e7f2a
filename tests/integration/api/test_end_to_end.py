"""End to end over HTTP: a job enqueued through the API is sent by a real worker to the sandbox,
and its events are read back through /v1/events, by Python and by a Node client."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from order_dispatch_api.keystore import Scope
from tests.integration.api.conftest import ApiProcess, api_env, bearer
from tests.integration.conftest import WorkerProcess, order_job, vendor_copies

pytestmark = pytest.mark.integration

NODE_CLIENT = Path(__file__).parent / "node" / "follow.mjs"


@pytest.fixture(scope="module")
def e2e_api(
    redis_url: str, api_prefix: str, worker_env_factory: Callable[..., dict[str, str]]
) -> Iterator[ApiProcess]:
    worker = WorkerProcess(worker_env_factory(api_prefix), concurrency=4)
    proc = ApiProcess(api_env(redis_url, api_prefix))
    yield proc
    proc.close()
    worker.close()


def test_a_job_enqueued_over_http_is_sent_and_its_events_read_back_over_http(
    e2e_api: ApiProcess, make_key: Callable[..., str], sandbox_admin: httpx.Client
) -> None:
    key = make_key(Scope.ENQUEUE, Scope.READ)
    order_id = f"E2E-{uuid.uuid4().hex[:8]}"
    body = order_job(order_id)
    body["order"]["ship_to"]["company"] = order_id  # SourceOrders keeps no reference of ours
    receipt = httpx.post(e2e_api.url + "/v1/jobs", json=body, headers=bearer(key)).json()

    terminal = None
    after = "0"
    deadline = time.monotonic() + 60
    while terminal is None and time.monotonic() < deadline:
        page = httpx.get(
            e2e_api.url + "/v1/events",
            params={"after": after, "wait": 5},
            headers=bearer(key),
            timeout=15,
        ).json()
        terminal = next(
            (e for e in page["events"] if e["job_id"] == receipt["job_id"] and e["terminal"]),
            None,
        )
        after = page["next"]

    assert terminal is not None, "no terminal event within 60 s"
    assert terminal["status"] == "accepted"
    status = httpx.get(f"{e2e_api.url}/v1/jobs/{receipt['job_id']}", headers=bearer(key)).json()
    assert status["status"] == "accepted"
    assert status["terminal"] is True
    assert status["attempts"] == 1
    assert status["vendor_order_id"] == terminal["vendor_order_id"]
    timeline = httpx.get(
        f"{e2e_api.url}/v1/jobs/{receipt['job_id']}/timeline", headers=bearer(key)
    ).json()
    assert [e["status"] for e in timeline["entries"]] == ["accepted"]
    assert timeline["entries"][0]["request"].startswith("POST ")
    assert vendor_copies(sandbox_admin, order_id) == {order_id: 1}


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_a_node_client_enqueues_reads_the_status_and_follows_the_events(
    e2e_api: ApiProcess, make_key: Callable[..., str], tmp_path: Path
) -> None:
    key = make_key(Scope.ENQUEUE, Scope.READ)
    body = tmp_path / "job.json"
    body.write_text(json.dumps(order_job(f"NODE-{uuid.uuid4().hex[:8]}")))

    out = subprocess.run(
        ["node", str(NODE_CLIENT), e2e_api.url, key, str(body)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )

    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["receipt"]["duplicate"] is False
    assert result["status"]["job_id"] == result["receipt"]["job_id"]
    assert result["status"]["status"] in {"queued", "in_flight", "accepted"}
    assert result["terminal"]["status"] == "accepted"
    assert result["terminal"]["job_id"] == result["receipt"]["job_id"]


def test_health_covers_the_api(
    e2e_api: ApiProcess,
    api_prefix: str,
    worker_env_factory: Callable[..., dict[str, str]],
) -> None:
    from tests.integration.test_health import run_health

    env = worker_env_factory(api_prefix)
    ok_code, ok_out = run_health(env, "--api-url", e2e_api.url)
    env["ORDER_DISPATCH_API_URL"] = "http://127.0.0.1:9"
    bad_code, bad_out = run_health(env)

    assert ok_code == 0, ok_out
    assert f"API at {e2e_api.url} ready" in ok_out
    assert bad_code == 1
    assert bad_out.startswith("unhealthy: API at http://127.0.0.1:9 unreachable")
