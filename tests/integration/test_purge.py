"""``order-dispatch purge``: an order's personal data removed on request, its ids and statuses
kept. The events are written by the worker's own ledger, against a real Redis."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import redis

from order_dispatch.contract import ErrorInfo, ErrorKind, EventStatus, Job, ResultEvent
from order_dispatch.keys import Keys
from order_dispatch.results import parse_entry
from order_dispatch.store import JobStore
from order_dispatch_ops.actions import OperationRefused, Operations
from producers.enqueue import Producer
from tests.integration.conftest import cli, order_job

pytestmark = pytest.mark.integration

#: What the order of :func:`order_job` says about its customer, as found in Redis.
PERSONAL = ("Beesly", "Slough", "pam@example.com", "Scranton", "Jim Halpert")


@pytest.fixture
def keys() -> Keys:
    return Keys(f"odpg-{uuid.uuid4().hex[:6]}")


@pytest.fixture
def ledger(redis_client: redis.Redis, keys: Keys) -> JobStore:
    return JobStore(redis_client, keys, results_maxlen=1000, ttl_s=86400, retention_s=3600)


def failed_run(
    client: redis.Redis, keys: Keys, ledger: JobStore, data: dict[str, Any], end: EventStatus
) -> Job:
    """Enqueue ``data`` and record two failed attempts that end the run with ``end``, each
    carrying the vendor's echo of the address, as a worker would with no masking at all."""
    job_id = Producer(client, key_prefix=keys.prefix).enqueue(data).job_id
    job = Job.model_validate_json(client.get(keys.document(job_id)) or b"")
    for attempt, status in ((1, EventStatus.RETRY_SCHEDULED), (2, end)):
        assert ledger.begin_attempt(job_id, attempt, "host-1")
        event = ResultEvent.for_job(
            job,
            run=1,
            run_token="t0000000",
            attempt=attempt,
            status=status,
            error=ErrorInfo(
                kind=ErrorKind.VENDOR_UNAVAILABLE,
                code="E500",
                message="cannot ship to Pam Beesly, 1725 Slough Ave",
                http_status=500,
            ),
            vendor_response='{"error": "no route to Scranton for pam@example.com"}',
        )
        assert ledger.record(job, event, request="POST /v1/orders", http_status=500).written
    return job


def everything(client: redis.Redis, keys: Keys) -> str:
    """Every value under ``keys``'s prefix, as text."""
    found: list[str] = []
    for name in client.scan_iter(match=f"{keys.prefix}:*"):
        kind = client.type(name)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "string":
            found.append(repr(client.get(name)))
        elif kind == "hash":
            found.append(repr(client.hgetall(name)))
        elif kind == "list":
            found.append(repr(client.lrange(name, 0, -1)))
        elif kind == "stream":
            found.append(repr(client.xrange(name)))
        else:
            found.append(repr(client.zrange(name, 0, -1)))
    return "\n".join(found)


def test_purge_removes_the_orders_personal_data_and_keeps_ids_and_statuses(
    redis_client: redis.Redis, keys: Keys, ledger: JobStore, redis_url: str
) -> None:
    # Given: an order dead-lettered after two failures whose answers echo the customer
    order_id = f"PG-{uuid.uuid4().hex[:6]}"
    job = failed_run(redis_client, keys, ledger, order_job(order_id), EventStatus.DEAD_LETTERED)
    assert all(word in everything(redis_client, keys) for word in PERSONAL[:4])

    # When: the customer asks to be forgotten
    result = cli(redis_url, keys.prefix, "purge", "--order", order_id, "--by", "pam",
                 "--note", "request 42")  # fmt: skip

    # Then: no trace of the customer is left under the prefix
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"purged {job.job_id} (order {order_id}, sourceorders): document removed, "
        "2 timeline entries and 2 result events cleared\n"
    )
    stored = everything(redis_client, keys)
    assert [word for word in PERSONAL if word in stored] == []
    assert redis_client.exists(keys.document(job.job_id)) == 0

    # And: the audit trail of ids and statuses stays
    shown = json.loads(cli(redis_url, keys.prefix, "timeline", job.job_id, "--json").stdout)
    entries = shown["entries"]
    assert [(e["attempt"], e["status"], e.get("action")) for e in entries] == [
        (1, "retry_scheduled", None),
        (2, "dead_lettered", None),
        (2, "purged", "purge"),
    ]
    assert entries[0]["error"] == {
        "kind": "vendor_unavailable", "code": "E500", "message": "[purged]",
        "http_status": 500, "retryable": False,
    }  # fmt: skip
    assert "response" not in entries[0] and entries[0]["request"] == "POST /v1/orders"
    assert (entries[2]["operator"], entries[2]["note"]) == ("pam", "request 42")
    assert entries[2]["detail"] == (
        "personal data removed: the job document, 2 timeline entries and 2 result events cleared"
    )
    listed = cli(redis_url, keys.prefix, "dlq", "list", "--json")
    dead = json.loads(listed.stdout)
    assert (dead["job_id"], dead["order_id"], dead["status"], dead["error"]) == (
        job.job_id, order_id, "dead_lettered", "[purged]")  # fmt: skip
    receipt = json.loads(redis_client.hget(keys.job(job.job_id), "receipt") or b"")
    assert (receipt["job_id"], receipt["order_id"]) == (job.job_id, order_id)

    # And: consumers read one "purged" event in place of the failures' events
    stream = [parse_entry(i, f).event for i, f in redis_client.xrange(keys.results) or []]
    (purged,) = [e for e in stream if e is not None]
    assert (purged.status, purged.terminal, purged.order_id, purged.operator) == (
        EventStatus.PURGED, False, order_id, "pam")  # fmt: skip


def test_purge_of_a_job_by_id_past_its_retention_clears_what_is_left(
    redis_client: redis.Redis, keys: Keys, ledger: JobStore, redis_url: str
) -> None:
    job = failed_run(
        redis_client, keys, ledger, order_job(f"PG-{uuid.uuid4().hex[:6]}"), EventStatus.REJECTED
    )
    redis_client.delete(keys.document(job.job_id))  # its retention ran out

    first = cli(redis_url, keys.prefix, "purge", "--job", job.job_id)
    again = cli(redis_url, keys.prefix, "purge", "--job", job.job_id)

    assert first.exit_code == 0, first.output
    assert first.stdout.endswith(": no document left, 2 timeline entries and 2 result events "
                                 "cleared\n")  # fmt: skip
    assert again.stdout.endswith(": no document left, 0 timeline entries and 0 result events "
                                 "cleared\n")  # fmt: skip
    assert [word for word in PERSONAL if word in everything(redis_client, keys)] == []


def test_a_running_job_is_refused_and_the_others_of_the_order_purged(
    redis_client: redis.Redis, keys: Keys, ledger: JobStore, redis_url: str
) -> None:
    # Given: one order sent to two vendors; one job ended, the other still waits in its queue
    order_id = f"PG-{uuid.uuid4().hex[:6]}"
    ended = failed_run(redis_client, keys, ledger, order_job(order_id), EventStatus.REJECTED)
    waiting = Producer(redis_client, key_prefix=keys.prefix).enqueue(
        {**order_job(order_id), "vendor": "supplystream", "account": "east"}
    )

    result = cli(redis_url, keys.prefix, "purge", "--order", order_id)
    narrowed = cli(redis_url, keys.prefix, "purge", "--order", order_id, "--vendor", "sourceorders")
    by_id = cli(redis_url, keys.prefix, "purge", "--job", waiting.job_id)

    assert result.exit_code == 1
    assert result.stdout.startswith(f"purged {ended.job_id} (order {order_id}, sourceorders)")
    refusal = (
        f"job {waiting.job_id!r} is still running: run 1 has no terminal event yet; "
        "purge it once it has ended"
    )
    assert result.stderr == f"refused {waiting.job_id}: {refusal}\n"
    assert narrowed.exit_code == 0 and waiting.job_id not in narrowed.output
    assert (by_id.exit_code, by_id.stderr) == (1, f"Error: {refusal}\n")
    assert redis_client.exists(keys.document(waiting.job_id)) == 1


def test_an_in_doubt_job_is_purged_once_a_person_decided(
    redis_client: redis.Redis, keys: Keys, ledger: JobStore, redis_url: str
) -> None:
    job = failed_run(
        redis_client, keys, ledger, order_job(f"PG-{uuid.uuid4().hex[:6]}"), EventStatus.IN_DOUBT
    )

    refused = cli(redis_url, keys.prefix, "purge", "--job", job.job_id)
    resolved = cli(redis_url, keys.prefix, "resolve", job.job_id, "--as", "rejected")
    purged = cli(redis_url, keys.prefix, "purge", "--job", job.job_id)

    assert (refused.exit_code, refused.stderr) == (
        1,
        f"Error: job {job.job_id!r} is in doubt: run 1 waits for a person's decision, which "
        "needs its order; resolve it first (order-dispatch resolve), then purge it\n",
    )
    assert resolved.exit_code == 0 and purged.exit_code == 0, purged.output
    assert [word for word in PERSONAL if word in everything(redis_client, keys)] == []


def test_a_timeline_written_while_purging_refuses_the_purge(
    redis_client: redis.Redis,
    keys: Keys,
    ledger: JobStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job = failed_run(
        redis_client, keys, ledger, order_job(f"PG-{uuid.uuid4().hex[:6]}"), EventStatus.REJECTED
    )
    operations = Operations(redis_client, key_prefix=keys.prefix)
    read_stream = operations._free_text_events

    def meanwhile(job_id: str, since: Any) -> list[str]:
        # A late attempt's entry (its run had ended), written between reading and purging.
        redis_client.rpush(keys.timeline(job_id), '{"response": "Pam Beesly"}')
        return read_stream(job_id, since)

    monkeypatch.setattr(operations, "_free_text_events", meanwhile)

    with pytest.raises(OperationRefused) as refused:
        operations.purge(job.job_id)

    assert str(refused.value) == f"job {job.job_id!r} changed meanwhile (its timeline); try again"
    assert redis_client.exists(keys.document(job.job_id)) == 1


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["purge", "--order", "NOPE"], 1,
         "Error: no job for order 'NOPE' in the job store or the dead letters\n"),
        (["purge", "--order", "NOPE", "--vendor", "sophio", "--account", "east"], 1,
         "Error: no job for order 'NOPE', vendor 'sophio', account 'east' in the job store "
         "or the dead letters\n"),
        (["purge", "--job", "nope"], 1,
         "Error: no job 'nope': not in the job store nor in the dead letters\n"),
        (["purge"], 2, "Error: give --order ID or --job JOB (one of them)"),
        (["purge", "--order", "A", "--job", "j"], 2,
         "Error: give --order ID or --job JOB (one of them)"),
        (["purge", "--job", "j", "--vendor", "sophio"], 2,
         "Error: --vendor and --account narrow --order; --job names one job"),
        (["purge", "--order", "A", "--vendor", "acme"], 2,
         "Error: Invalid value for '--vendor': 'acme'"),
    ],
)  # fmt: skip
def test_purge_says_what_is_wrong(
    redis_url: str, keys: Keys, args: list[str], code: int, message: str
) -> None:
    result = cli(redis_url, keys.prefix, *args)

    assert result.exit_code == code, result.output
    if code == 1:
        assert result.stderr == message
    else:
        error = next(line for line in result.stderr.splitlines() if line.startswith("Error:"))
        assert error.startswith(message)
