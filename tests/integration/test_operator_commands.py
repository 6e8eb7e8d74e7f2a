"""The operators' commands end to end: a real worker process, the sandbox over HTTP, real Redis,
and the ``order-dispatch`` command line."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from order_dispatch.contract import ResultEvent
from order_dispatch.keys import Keys
from producers.enqueue import Producer
from tests.integration.conftest import Events, WorkerProcess, cli, order_job, unique

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def operator_prefix() -> str:
    return f"odo-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def operator_worker(
    operator_prefix: str, worker_env_factory: Callable[..., dict[str, str]]
) -> Iterator[WorkerProcess]:
    """A worker of this module's own: these tests fail the vendor on purpose, so its circuit
    breaker must neither open on them nor be left open by other tests."""
    env = worker_env_factory(operator_prefix, ORDER_DISPATCH_CIRCUIT__FAILURE_THRESHOLD="1000")
    proc = WorkerProcess(env)
    yield proc
    proc.close()


@pytest.fixture
def producer(redis_client: redis.Redis, operator_prefix: str) -> Producer:
    return Producer(redis_client, key_prefix=operator_prefix)


@pytest.fixture
def events(redis_client: redis.Redis, operator_prefix: str) -> Events:
    return Events(redis_client, Keys(operator_prefix))


def wait_run_ends(events: Events, job_id: str, run: int, timeout: float = 60) -> ResultEvent:
    """The terminal event of ``job_id``'s run ``run`` (generous: the machine may be busy)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in events.of(job_id):
            if e.terminal and e.run == run:
                return e
        time.sleep(0.1)
    raise AssertionError(f"run {run} of {job_id} did not end: {events.of(job_id)}")


def vendor_orders(admin: httpx.Client) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = admin.get(
        "/_sandbox/orders", params={"vendor": "sourceorders"}
    ).json()["orders"]
    return orders


def one_terminal_per_run(events: list[ResultEvent]) -> dict[int, str]:
    runs: dict[int, list[str]] = {}
    for e in events:
        if e.terminal:
            runs.setdefault(e.run, []).append(e.status.value)
    assert all(len(statuses) == 1 for statuses in runs.values()), runs
    assert len({e.event_id for e in events}) == len(events)
    return {run: statuses[0] for run, statuses in runs.items()}


def test_a_dead_lettered_job_replayed_with_a_corrected_order_is_accepted_in_run_2(
    operator_worker: WorkerProcess,
    producer: Producer,
    events: Events,
    sandbox_admin: httpx.Client,
    redis_url: str,
    operator_prefix: str,
    tmp_path: Path,
) -> None:
    # Given: a job that used up its 5 attempts on a failing vendor
    sandbox_admin.post("/_sandbox/faults/sourceorders", json={"fail_next": 5, "status": 500})
    job = order_job(unique("replay"))
    job_id = producer.enqueue(job).job_id
    assert wait_run_ends(events, job_id, 1).status == "dead_lettered"
    listed = cli(redis_url, operator_prefix, "dlq", "list", "--vendor", "sourceorders", "--json")
    mine = [json.loads(line) for line in listed.stdout.splitlines()]
    mine = [d for d in mine if d["job_id"] == job_id]
    assert listed.exit_code == 0 and len(mine) == 1
    assert (mine[0]["status"], mine[0]["run"], mine[0]["attempt"]) == ("dead_lettered", 1, 5)
    assert mine[0]["error"] == "The service is unavailable, try again"  # the sandbox says

    # When: an operator replays it with a corrected address (after a try with a broken one)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**job["order"], "currency": "dollars"}))
    refused = cli(redis_url, operator_prefix, "replay", job_id, "--order", str(broken))
    fixed = tmp_path / "fixed.json"
    ship_to = {**job["order"]["ship_to"], "line2": "Suite 200"}
    fixed.write_text(json.dumps({**job["order"], "ship_to": ship_to}))
    replayed = cli(
        redis_url, operator_prefix, "replay", job_id, "--order", str(fixed),
        "--note", "added the suite", "--by", "pam",
    )

    # Then: run 2 is accepted with the corrected order, one terminal event per run
    assert refused.exit_code == 1
    assert refused.stderr.startswith("invalid: corrected order: order.currency: String should")
    assert replayed.exit_code == 0, replayed.output
    assert replayed.stdout == f"replayed {job_id}: run 2 queued\n"
    accepted = wait_run_ends(events, job_id, 2)
    assert accepted.status == "accepted" and accepted.attempt == 1
    history = events.of(job_id)
    assert one_terminal_per_run(history) == {1: "dead_lettered", 2: "accepted"}
    assert [(e.run, e.status) for e in history if e.run == 2] == [
        (2, "replayed"), (2, "accepted")]
    assert history[-2].operator == "pam" and history[-2].note == "added the suite"
    (order,) = vendor_orders(sandbox_admin)
    assert order["orderId"] == accepted.vendor_order_id
    assert order["shippingAddress"]["street2"] == "Suite 200"
    after = cli(redis_url, operator_prefix, "dlq", "list", "--json")
    assert job_id not in after.stdout

    # And: the timeline shows every attempt, who ran it, and the operator's action
    shown = cli(redis_url, operator_prefix, "timeline", job_id, "--json")
    assert shown.exit_code == 0, shown.output
    timeline = json.loads(shown.stdout)
    assert (timeline["run"], timeline["state"]) == (2, "done")
    entries = timeline["entries"]
    assert [(e["run"], e["attempt"], e["status"], e.get("action")) for e in entries] == [
        *[(1, n, "retry_scheduled", None) for n in range(1, 5)],
        (1, 5, "dead_lettered", None),
        (2, 1, "replayed", "replay"),
        (2, 1, "accepted", None),
    ]
    attempts = [e for e in entries if "action" not in e]
    assert all(e["request"] == "POST /sourceorders/v1/orders" for e in attempts)
    assert all(e["worker"] and e["http_status"] in (500, 200) for e in attempts)
    assert attempts[0]["response"] and "sandbox-sourceorders-key" not in shown.stdout
    assert entries[5]["operator"] == "pam"
    table = cli(redis_url, operator_prefix, "timeline", job_id)
    assert table.stdout.startswith(f"job {job_id}: run 2, done\n")
    assert "operator pam" in table.stdout and "vendor order soo_" in table.stdout


def test_an_in_doubt_job_resolved_by_an_operator_ends_with_the_decision(
    operator_worker: WorkerProcess,
    producer: Producer,
    events: Events,
    sandbox_admin: httpx.Client,
    redis_url: str,
    operator_prefix: str,
) -> None:
    # Given: a create whose answer was lost after the vendor stored it (SourceOrders: no lookup)
    sandbox_admin.post("/_sandbox/faults/sourceorders", json={"drop_after_commit_next": 1})
    job_id = producer.enqueue(order_job(unique("doubt"))).job_id
    assert wait_run_ends(events, job_id, 1).status == "in_doubt"
    (order,) = vendor_orders(sandbox_admin)
    listed = cli(redis_url, operator_prefix, "dlq", "list", "--status", "in_doubt")
    assert job_id in listed.stdout

    too_long = cli(redis_url, operator_prefix, "resolve", job_id, "--as", "accepted",
                   "--note", "x" * 2001)
    assert too_long.exit_code == 1
    assert too_long.stderr == "invalid: note: String should have at most 2000 characters\n"

    # When: the operator finds the order at the vendor and says so
    resolved = cli(
        redis_url, operator_prefix, "resolve", job_id, "--as", "accepted",
        "--vendor-order-id", order["orderId"], "--note", "found in the portal", "--by", "pam",
    )

    # Then: the decision is run 2's terminal event; nothing was sent again
    assert resolved.exit_code == 0, resolved.output
    assert resolved.stdout == f"resolved {job_id}: accepted in run 2\n"
    history = events.of(job_id)
    assert one_terminal_per_run(history) == {1: "in_doubt", 2: "accepted"}
    decision = history[-1]
    assert (decision.vendor_order_id, decision.operator, decision.note) == (
        order["orderId"], "pam", "found in the portal")
    assert len(vendor_orders(sandbox_admin)) == 1
    assert job_id not in cli(redis_url, operator_prefix, "dlq", "list").stdout
    entries = json.loads(cli(redis_url, operator_prefix, "timeline", job_id, "--json").stdout)[
        "entries"
    ]
    assert [(e["status"], e.get("action")) for e in entries] == [
        ("in_doubt", None), ("accepted", "resolve")]
    assert entries[0]["error"]["kind"] == "transport" and entries[0]["worker"]

    # And: a second decision is refused
    again = cli(redis_url, operator_prefix, "resolve", job_id, "--as", "rejected")
    assert again.exit_code == 1
    assert again.stderr == (
        f"Error: job {job_id!r} is not in doubt: run 2 ended accepted; "
        "only an in_doubt job can be resolved\n"
    )


def test_replay_since_replays_the_dead_letters_of_that_window(
    operator_worker: WorkerProcess,
    producer: Producer,
    events: Events,
    sandbox_admin: httpx.Client,
    redis_url: str,
    operator_prefix: str,
) -> None:
    sandbox_admin.post("/_sandbox/faults/sourceorders", json={"fail_next": 10, "status": 503})
    since = datetime.now(UTC).isoformat()
    job_ids = [producer.enqueue(order_job(unique(f"bulk{n}"))).job_id for n in range(2)]
    for job_id in job_ids:
        assert wait_run_ends(events, job_id, 1).status == "dead_lettered"

    result = cli(
        redis_url, operator_prefix, "replay", "--vendor", "sourceorders", "--since", since
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "replayed 2, refused 0"
    for job_id in job_ids:
        assert wait_run_ends(events, job_id, 2).status == "accepted"
        assert one_terminal_per_run(events.of(job_id)) == {1: "dead_lettered", 2: "accepted"}
    assert len(vendor_orders(sandbox_admin)) == 2


@pytest.fixture
def prefix() -> str:
    return f"odop-{uuid.uuid4().hex[:6]}"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["timeline", "nope"], 1,
         "Error: no job 'nope': not in the job store nor in the dead letters\n"),
        (["replay", "nope"], 1,
         "Error: no job 'nope': not in the job store nor in the dead letters\n"),
        (["resolve", "nope", "--as", "accepted"], 1,
         "Error: no job 'nope': not in the job store nor in the dead letters\n"),
        (["replay"], 2, "Error: give a JOB, or --since (with --vendor, --status) to replay many\n"),
        (["replay", "j1", "--since", "2h"], 2,
         "Error: give a JOB, or --vendor/--since/--status to replay many, not both\n"),
        (["replay", "--since", "2h", "--order", "-"], 2,
         "Error: --order corrects one JOB; it cannot go with --since\n"),
        (["dlq", "list", "--since", "yesterday"], 2,
         "Error: Invalid value for '--since': 'yesterday' is neither an ISO time "
         "(2026-11-20T10:00:00Z) nor a duration (30s, 15m, 2h, 7d, 1w)\n"),
        (["resolve", "j1"], 2, "Error: Missing option '--as'."),
        (["resolve", "j1", "--as", "maybe"], 2, "Error: Invalid value for '--as': 'maybe' is not"),
        (["dlq", "list", "--vendor", "acme"], 2, "Error: Invalid value for '--vendor': 'acme'"),
    ],
)
def test_the_commands_say_what_is_wrong(
    redis_url: str, prefix: str, args: list[str], code: int, message: str
) -> None:
    result = cli(redis_url, prefix, *args)

    assert result.exit_code == code, result.output
    if code == 1:
        assert result.stderr == message
    else:  # a usage error: click prints the usage first, then the error
        error = next(line for line in result.stderr.splitlines() if line.startswith("Error:"))
        assert error.startswith(message.rstrip("\n"))


def test_a_corrected_order_that_is_not_json_is_named(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    path = tmp_path / "order.json"
    path.write_text("{not json")

    result = cli(redis_url, prefix, "replay", "j1", "--order", str(path))

    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {path}: not JSON (Expecting property name")


def test_empty_dead_letters_are_said_so(redis_url: str, prefix: str) -> None:
    listed = cli(redis_url, prefix, "dlq", "list")
    replayed = cli(redis_url, prefix, "replay", "--since", "1h")

    assert (listed.exit_code, listed.stdout) == (0, "no jobs in the dead letters match\n")
    assert (replayed.exit_code, replayed.stdout) == (0, "replayed 0, refused 0\n")
