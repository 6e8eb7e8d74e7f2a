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

from order_dispatch.contract import EventStatus, Operation, ResultEvent
from order_dispatch.keys import Keys
from order_dispatch_cli.main import main
from order_dispatch_sandbox.runner import free_port
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


def test_enqueue_refuses_an_order_its_vendor_would_refuse_naming_the_worker_s_field(
    tmp_path: Path, env: dict[str, str], redis_client: redis.Redis
) -> None:
    order = {
        **order_job("CLI-SHO")["order"],
        "customer": {"email": "b@example.com", "first_name": "Bo", "last_name": "Ng"},
        "payment": {"type": "CC"},
    }
    order["items"] = [{**order["items"][0], "name": "A thing"}]
    no_ip = {"vendor": "shopatron", "order": order}
    path = tmp_path / "orders.jsonl"
    path.write_text(json.dumps(no_ip) + "\n" + json.dumps(order_job("CLI-OK")) + "\n")

    result = CliRunner().invoke(main, ["enqueue", "--quiet", str(path)], env=env)

    assert result.exit_code == 1
    assert "queued 1, duplicates 0, invalid 1" in result.stdout
    assert (
        f"{path}:1: order 'CLI-SHO' is invalid: order.customer.ip: is required by this vendor "
        "to create an order" in result.stderr
    )
    assert redis_client.llen(Keys(env["ORDER_DISPATCH_KEY_PREFIX"]).queue("shopatron")) == 0


def test_enqueue_reads_bare_orders_from_stdin_and_a_pretty_printed_object(
    tmp_path: Path, env: dict[str, str], redis_client: redis.Redis
) -> None:
    single = tmp_path / "order.json"
    single.write_text(json.dumps(order_job("ONE-1")["order"], indent=2))
    stdin = json.dumps(order_job("STDIN-1")["order"]) + "\n"

    result = CliRunner().invoke(
        main, ["enqueue", "--vendor", "sourceorders", str(single), "-"], input=stdin, env=env
    )

    assert result.exit_code == 0, result.output
    assert "queued 2, duplicates 0, invalid 0" in result.stdout
    assert redis_client.llen(Keys(env["ORDER_DISPATCH_KEY_PREFIX"]).queue("sourceorders")) == 2


@pytest.mark.parametrize(
    ("content", "stderr"),
    [
        ("", "invalid: {path}: holds no records (the file is empty)\n"),
        ("\n# none\n", "invalid: {path}: holds no records (only blank lines and comments)\n"),
        (
            "[\n  {}\n]\n",
            "invalid: {path}:1: is a JSON array; write one JSON object a line (JSON Lines), or "
            "one object in a .json file\n",
        ),
    ],
)
def test_enqueue_refuses_arrays_and_files_without_records(
    tmp_path: Path, env: dict[str, str], content: str, stderr: str
) -> None:
    path = tmp_path / "orders.jsonl"
    path.write_text(content)

    result = CliRunner().invoke(main, ["enqueue", "--quiet", str(path)], env=env)

    assert result.exit_code == 1
    assert result.stdout == "queued 0, duplicates 0, invalid 1\n"
    assert result.stderr == stderr.format(path=path)


def test_enqueue_reports_a_job_over_the_size_limit_and_queues_the_rest(
    tmp_path: Path, env: dict[str, str], redis_client: redis.Redis
) -> None:
    big = order_job("BIG-1", custom={f"k{n}": "v" * 1000 for n in range(50)})
    path = tmp_path / "orders.jsonl"
    path.write_text(json.dumps(order_job("SMALL-1")) + "\n" + json.dumps(big) + "\n")

    result = CliRunner().invoke(
        main, ["enqueue", "--quiet", str(path)], env={**env, "ORDER_DISPATCH_MAX_JOB_BYTES": "4096"}
    )

    assert result.exit_code == 1
    assert result.stdout == "queued 1, duplicates 0, invalid 1\n"
    assert result.stderr.startswith(f"invalid: {path}:2: order 'BIG-1' is invalid: (document): is ")
    assert result.stderr.endswith(
        "bytes as JSON; at most 4,096 (setting ORDER_DISPATCH_MAX_JOB_BYTES)\n"
    )
    assert redis_client.llen(Keys(env["ORDER_DISPATCH_KEY_PREFIX"]).queue("sourceorders")) == 1


def test_unreachable_redis_is_one_line_and_exit_3(tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    path.write_text(json.dumps(order_job("DOWN-1")) + "\n")
    port = free_port()

    result = CliRunner().invoke(
        main, ["enqueue", "--quiet", str(path)], env={"REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    )
    debug = CliRunner().invoke(
        main,
        ["--debug", "enqueue", "--quiet", str(path)],
        env={"REDIS_URL": f"redis://127.0.0.1:{port}/0"},
    )

    line = (
        f"error: cannot reach Redis (Error 111 connecting to 127.0.0.1:{port}. Connection "
        "refused); check that it runs, or set ORDER_DISPATCH_REDIS_URL (or REDIS_URL, or "
        "--redis-url)\n"
    )
    assert (result.exit_code, result.stderr) == (3, line)
    assert debug.exit_code == 3
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.endswith(line)


@pytest.mark.parametrize(
    ("variables", "line"),
    [
        (
            {"ORDER_DISPATCH_ACCOUNTS": "{bad"},
            "error: bad settings: ORDER_DISPATCH_ACCOUNTS is not valid JSON: Expecting property "
            "name enclosed in double quotes: line 1 column 2 (char 1)\n",
        ),
        (
            {"ORDER_DISPATCH_ACCOUNTS": '{"sophio": {"default": {"url": "x"}}}'},
            "error: bad settings: ORDER_DISPATCH_ACCOUNTS__SOPHIO__DEFAULT__BASE_URL: Field "
            "required; ORDER_DISPATCH_ACCOUNTS__SOPHIO__DEFAULT__URL: Extra inputs are not "
            "permitted\n",
        ),
    ],
)
def test_bad_settings_are_one_line_and_exit_3(
    tmp_path: Path, variables: dict[str, str], line: str
) -> None:
    path = tmp_path / "orders.jsonl"
    path.write_text(json.dumps(order_job("CONF-1")) + "\n")

    result = CliRunner().invoke(main, ["enqueue", "--quiet", str(path)], env=variables)

    assert (result.exit_code, result.stderr) == (3, line)


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
        [sys.executable, "-m", "order_dispatch_cli", "sandbox", "--port", str(port),
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
