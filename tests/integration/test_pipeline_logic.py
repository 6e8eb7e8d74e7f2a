"""The pipeline without Celery: real Redis for the ledger and stream, a mock vendor over httpx."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from order_dispatch.contract import EventStatus
from order_dispatch.keys import Keys
from order_dispatch.settings import RetryPolicy, Settings, VendorAccount
from tests.integration.conftest import Events, order_job, unique
from worker.loop import EventLoopThread
from worker.pipeline import Pipeline
from worker.vendors.sender import Sender

pytestmark = pytest.mark.integration


def make(
    redis_client: redis.Redis, handler: Callable[[httpx.Request], httpx.Response],
    **settings: object,
) -> tuple[Pipeline, Events, list[httpx.Request]]:
    prefix = f"odp-{uuid.uuid4().hex[:6]}"
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    config = Settings(
        key_prefix=prefix,
        accounts={"sourceorders": {"default": VendorAccount(
            base_url="https://so.test", credentials={"api_key": "k-secret-1"})}},
        retry=RetryPolicy(max_attempts=3, base_delay_s=1, max_delay_s=4),
        **settings,  # type: ignore[arg-type]
    )
    io = EventLoopThread()
    _loops.append(io)

    async def new_client() -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(record))

    sender = Sender(io.run(new_client()), config)
    pipeline = Pipeline(config, redis_client, sender, io)
    return pipeline, Events(redis_client, Keys(prefix)), seen


def put(pipeline: Pipeline, job: dict[str, Any], job_id: str | None = None) -> str:
    """Store ``job`` in the job store as a producer does (run 1); its job id."""
    from order_dispatch.contract import Job

    job_id = job_id or Job.model_validate(job).job_id
    key = pipeline.keys.job(job_id)
    client = pipeline.store.client
    client.set(pipeline.keys.document(job_id), json.dumps(job))
    ids = {"job_id": job_id, "vendor": job["vendor"], "account": job.get("account", "default")}
    client.hsetnx(key, "receipt", json.dumps(ids))
    due = Job.model_validate(job).not_before if "not_before" in job else None
    client.hsetnx(key, "not_before", due.timestamp() if due else 0)
    client.hsetnx(key, "run", 1)
    client.hsetnx(key, "run_id", uuid.uuid4().hex)
    return job_id


_loops: list[EventLoopThread] = []


@pytest.fixture(autouse=True)
def _close_loops() -> Iterator[None]:
    yield
    while _loops:
        _loops.pop().close()


def accepted(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"orderId": "soo_1", "status": "RECEIVED"})


def job_id_of(job: dict[str, Any]) -> str:
    from order_dispatch.contract import Job

    return Job.model_validate(job).job_id


def began_long_ago(pipeline: Pipeline, job_id: str, attempt: int, seconds: float) -> None:
    """The ledger as a worker leaves it when it dies mid-request ``seconds`` ago."""
    assert pipeline.store.begin_attempt(job_id, attempt, "dead-worker")
    key = pipeline.keys.ledger(job_id)
    started = float(pipeline.store.client.hget(key, "started_at"))  # type: ignore[arg-type]
    pipeline.store.client.hset(key, "started_at", f"{started - seconds:.6f}")


def test_a_redelivered_create_interrupted_mid_request_ends_in_doubt(
    redis_client: redis.Redis,
) -> None:
    pipeline, events, seen = make(redis_client, accepted)
    job = order_job(unique("crash"))
    job_id = job_id_of(job)
    # The first delivery marked its attempt in flight and then its worker died, long ago.
    began_long_ago(pipeline, job_id, 1, seconds=3600)

    step = pipeline.run(put(pipeline, job), attempt=1)

    assert step.retry_in_s is None
    assert [e.status for e in events.of(job_id)] == [EventStatus.IN_DOUBT]
    assert seen == []  # not sent again
    assert redis_client.hexists(pipeline.keys.dead_letters, job_id)


def test_a_redelivered_status_read_is_simply_repeated(redis_client: redis.Redis) -> None:
    pipeline, events, seen = make(redis_client, accepted)
    job = {"vendor": "sourceorders", "operation": "get_status", "order_id": unique("st"),
           "vendor_order_id": "soo_1"}
    job_id = job_id_of(job)
    began_long_ago(pipeline, job_id, 1, seconds=3600)

    pipeline.run(put(pipeline, job), attempt=1)

    assert [e.status for e in events.of(job_id)] == [EventStatus.ACCEPTED]
    assert len(seen) == 1


def test_a_delivery_while_another_is_in_flight_waits_and_sends_nothing(
    redis_client: redis.Redis,
) -> None:
    pipeline, events, seen = make(redis_client, accepted)
    job = order_job(unique("busy"))
    job_id = job_id_of(job)
    began_long_ago(pipeline, job_id, 1, seconds=10)  # well inside the lease
    lease = pipeline.settings.lease_s  # the vendor call's deadline plus a margin

    step = pipeline.run(put(pipeline, job), attempt=1)

    assert step.retry_in_s is not None and lease - 11 < step.retry_in_s <= lease - 10
    assert step.attempt == 1
    assert seen == [] and events.all() == []


def test_a_stale_delivery_of_an_earlier_attempt_is_dropped(redis_client: redis.Redis) -> None:
    pipeline, events, seen = make(redis_client, lambda r: httpx.Response(503))
    job = order_job(unique("stale"))
    pipeline.run(put(pipeline, job), attempt=1)
    pipeline.run(put(pipeline, job), attempt=2)

    step = pipeline.run(put(pipeline, job), attempt=1)  # the first message again, its ack lost

    assert step.retry_in_s is None
    assert len(seen) == 2
    assert [e.attempt for e in events.all()] == [1, 2]


def test_an_attempt_whose_retry_was_scheduled_runs_as_that_retry(
    redis_client: redis.Redis,
) -> None:
    answers = iter([httpx.Response(503), *[accepted(None) for _ in range(3)]])  # type: ignore[arg-type]
    pipeline, events, seen = make(redis_client, lambda r: next(answers))
    job = order_job(unique("lost-ack"))
    pipeline.run(put(pipeline, job), attempt=1)

    pipeline.run(put(pipeline, job), attempt=1)  # redelivered original: runs as attempt 2
    pipeline.run(put(pipeline, job), attempt=2)  # the scheduled retry: the job already ended

    assert [(e.attempt, e.status) for e in events.all()] == [
        (1, "retry_scheduled"), (2, "accepted")]
    assert len(seen) == 2


def test_two_deliveries_cannot_both_start_an_attempt(redis_client: redis.Redis) -> None:
    pipeline, _, _ = make(redis_client, accepted)
    job_id = job_id_of(order_job(unique("race")))

    first = pipeline.store.begin_attempt(job_id, 1, "w1")
    second = pipeline.store.begin_attempt(job_id, 1, "w2")
    stale = pipeline.store.load(job_id).started_at
    takeover = pipeline.store.begin_attempt(job_id, 2, "w3", take_over=stale)

    assert (first, second, takeover) == (True, False, True)


def test_a_finished_job_delivered_again_does_nothing(redis_client: redis.Redis) -> None:
    pipeline, events, seen = make(redis_client, accepted)
    job = order_job(unique("again"))

    pipeline.run(put(pipeline, job), attempt=1)
    pipeline.run(put(pipeline, job), attempt=1)

    assert len(seen) == 1
    assert len(events.all()) == 1


def test_retry_steps_count_attempts_and_then_dead_letter(redis_client: redis.Redis) -> None:
    pipeline, events, _ = make(redis_client, lambda r: httpx.Response(502, text="bad gw"))
    job = order_job(unique("502"))

    steps = [pipeline.run(put(pipeline, job), attempt=n) for n in (1, 2, 3)]

    assert [s.attempt for s in steps[:2]] == [2, 3]
    assert all(s.retry_in_s is not None and 0 <= s.retry_in_s <= 4 for s in steps[:2])
    assert steps[2].retry_in_s is None
    assert [e.status for e in events.all()] == ["retry_scheduled", "retry_scheduled",
                                                "dead_lettered"]
    assert (last_error := events.all()[-1].error) is not None
    assert last_error.message == "bad gw"


def test_an_unconfigured_account_is_dead_lettered_with_the_setting_to_fix(
    redis_client: redis.Redis,
) -> None:
    pipeline, events, seen = make(redis_client, accepted)
    job = order_job(unique("acct"))
    job["account"] = "eu"

    pipeline.run(put(pipeline, job), attempt=1)

    event = events.all()[0]
    assert event.status == "dead_lettered" and event.error is not None
    assert "ORDER_DISPATCH_ACCOUNTS__SOURCEORDERS__EU__BASE_URL" in event.error.message
    assert seen == []


def test_a_job_that_skipped_validation_is_rejected_with_field_paths(
    redis_client: redis.Redis,
) -> None:
    pipeline, events, _ = make(redis_client, accepted)
    job = order_job(unique("raw"), currency="usd")  # stored by a producer that skipped checks

    pipeline.run(put(pipeline, job, job_id=unique("raw-job")), attempt=1)

    event = events.all()[0]
    assert event.status == "rejected" and event.error is not None
    assert event.error.kind == "validation"
    assert "order.currency" in event.error.message
    assert event.order_id == job["order"]["order_id"]


def test_secrets_echoed_by_the_vendor_are_masked_in_the_event(redis_client: redis.Redis) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        key = request.headers["X-API-KEY"]
        return httpx.Response(401, json={"message": f"key {key} revoked", "key": key})

    pipeline, events, _ = make(redis_client, echo)

    pipeline.run(put(pipeline, order_job(unique("leak"))), attempt=1)

    event = events.all()[0]
    assert event.error is not None and event.error.message == "key *** revoked"
    assert event.vendor_response is not None and "k-secret-1" not in event.vendor_response
    assert event.error.kind == "auth"
