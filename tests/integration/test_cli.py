"""The command line against a real Redis and a real sandbox process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis
from click.testing import CliRunner

from cli.main import main
from order_dispatch.contract import EventStatus, Operation, ResultEvent
from order_dispatch.keys import Keys
from sandbox.runner import free_port
from tests.integration.conftest import order_job

pytestmark = pytest.mark.integration


@pytest.fixture
def env(redis_url: str) -> dict[str, str]:
    return {"REDIS_URL": redis_url, "ORDER_DISPATCH_KEY_PREFIX": f"odcli-{uuid.uuid4().hex[:6]}"}


def test_enqueue_reports_queued_duplicates_and_invalid_with_file_and_line(
    tmp_path: Path, env: dict[str, str], redis_client: redis.Redis
) -> None:
    good, other = order_job("CLI-1"), order_job("CLI-2")
    bad = order_job("CLI-3", currency="usd")
    lines = [json.dumps(good), json.dumps(other), json.dumps(good), "{not json", json.dumps(bad)]
    path = tmp_path / "orders.jsonl"
    path.write_text("\n".join(lines) + "\n")

    result = CliRunner().invoke(main, ["enqueue", "--quiet", str(path)], env=env)

    assert result.exit_code == 1
    assert "queued 2, duplicates 1, invalid 2" in result.stdout
    assert f"{path}:4: not valid JSON" in result.stderr
    assert f"{path}:5: order 'CLI-3' is invalid: order.currency" in result.stderr
    queue = Keys(env["ORDER_DISPATCH_KEY_PREFIX"]).queue("sourceorders")
    assert redis_client.llen(queue) == 2


def test_enqueue_reads_bare_orders_from_stdin_and_json_arrays(
    tmp_path: Path, env: dict[str, str], redis_client: redis.Redis
) -> None:
    orders = [order_job(f"ARR-{i}")["order"] for i in range(3)]
    array = tmp_path / "orders.json"
    array.write_text(json.dumps(orders, indent=2))
    stdin = json.dumps(order_job("STDIN-1")["order"]) + "\n"

    result = CliRunner().invoke(
        main, ["enqueue", "--vendor", "sourceorders", str(array), "-"], input=stdin, env=env
    )

    assert result.exit_code == 0, result.output
    assert "queued 4, duplicates 0, invalid 0" in result.stdout
    assert redis_client.llen(Keys(env["ORDER_DISPATCH_KEY_PREFIX"]).queue("sourceorders")) == 4


def test_results_tail_prints_events_as_json_lines(
    env: dict[str, str], redis_client: redis.Redis
) -> None:
    keys = Keys(env["ORDER_DISPATCH_KEY_PREFIX"])
    for n in range(3):
        event = ResultEvent(
            event_id=f"e{n}", job_id=f"j{n}", order_id=f"o{n}", vendor="sourceorders",
            account="default", operation=Operation.CREATE, status=EventStatus.ACCEPTED,
            terminal=True, attempt=1, occurred_at=datetime.now(UTC),
        )
        redis_client.xadd(keys.results, {"event": event.model_dump_json()})

    plain = CliRunner().invoke(main, ["results", "tail", "--from-start", "--count", "3"], env=env)
    grouped = CliRunner().invoke(
        main, ["results", "tail", "--group", "audit", "--count", "3"], env=env
    )

    for result in (plain, grouped):
        assert result.exit_code == 0, result.output
        assert [json.loads(line)["job_id"] for line in result.stdout.splitlines()] == [
            "j0", "j1", "j2"]
    assert redis_client.xpending(keys.results, "audit")["pending"] == 0


def test_sandbox_command_takes_settings_and_faults_at_start() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "sandbox", "--port", str(port),
         "--set", "sourceorders.api_key=k-from-flag",
         "--faults", '{"sourceorders": {"fail_next": 1, "status": 502}}'],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/sourceorders/v1/orders/soo_1"
        deadline = time.monotonic() + 20
        while True:
            try:
                first = httpx.get(url, headers={"X-API-KEY": "k-from-flag"})
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "sandbox did not start"
                time.sleep(0.1)
        second = httpx.get(url, headers={"X-API-KEY": "k-from-flag"})
        wrong = httpx.get(url, headers={"X-API-KEY": "sandbox-sourceorders-key"})
    finally:
        proc.terminate()
        proc.wait(10)

    assert first.status_code == 502
    assert second.status_code == 404  # authenticated; that order does not exist
    assert wrong.status_code == 401


def test_sandbox_command_refuses_bad_faults() -> None:
    result = CliRunner().invoke(main, ["sandbox", "--faults", '{"nowhere": {}}'])

    assert result.exit_code != 0
    assert "unknown vendor 'nowhere'" in result.output
