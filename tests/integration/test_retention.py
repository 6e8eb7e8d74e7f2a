"""Retention: the job document outlives its run's end by the retention window only, receipts
keep their longer life without the order, the dead letters hold ids, the stream is trimmed by
age. Against a real Redis."""

from __future__ import annotations

import json
import uuid

import pytest
import redis

from order_dispatch.contract import EventStatus, Job, ResultEvent
from order_dispatch.keys import Keys
from order_dispatch.store import JobStore
from producers.enqueue import Producer
from tests.integration.conftest import order_job

pytestmark = pytest.mark.integration

RECEIPT_TTL = 30 * 86400
RETENTION = 600


def setup(client: redis.Redis) -> tuple[Keys, Producer, JobStore]:
    keys = Keys(f"odret-{uuid.uuid4().hex[:6]}")
    producer = Producer(client, key_prefix=keys.prefix, receipt_ttl_s=RECEIPT_TTL)
    ledger = JobStore(
        client,
        keys,
        results_maxlen=1000,
        ttl_s=RECEIPT_TTL,
        retention_s=RETENTION,
        results_max_age_s=3600,
    )
    return keys, producer, ledger


def end(ledger: JobStore, job: Job, status: EventStatus) -> None:
    event = ResultEvent.for_job(job, run=1, run_token="t0000000", attempt=1, status=status)
    assert ledger.record(job, event).written


@pytest.mark.parametrize(
    "status", [EventStatus.ACCEPTED, EventStatus.REJECTED, EventStatus.DEAD_LETTERED]
)
def test_a_finished_jobs_document_is_kept_for_the_window_and_its_receipt_longer(
    redis_client: redis.Redis, status: EventStatus
) -> None:
    keys, producer, ledger = setup(redis_client)
    data = order_job(f"RET-{status.value}")
    job_id = producer.enqueue(data).job_id
    job = Job.model_validate(data)
    assert redis_client.ttl(keys.document(job_id)) > RECEIPT_TTL - 60

    end(ledger, job, status)

    assert 0 < redis_client.ttl(keys.document(job_id)) <= RETENTION
    assert redis_client.ttl(keys.job(job_id)) > RECEIPT_TTL - 60
    assert redis_client.hkeys(keys.job(job_id)) and b"job" not in redis_client.hkeys(
        keys.job(job_id)
    )
    assert "Beesly" not in redis_client.hget(keys.job(job_id), "receipt").decode()  # type: ignore[union-attr]


def test_an_in_doubt_job_keeps_its_document_until_a_person_decides(
    redis_client: redis.Redis,
) -> None:
    keys, producer, ledger = setup(redis_client)
    data = order_job("RET-DOUBT")
    job_id = producer.enqueue(data).job_id

    end(ledger, Job.model_validate(data), EventStatus.IN_DOUBT)

    assert redis_client.ttl(keys.document(job_id)) > RECEIPT_TTL - 60


def test_the_dead_letters_hold_ids_not_the_order(redis_client: redis.Redis) -> None:
    keys, producer, ledger = setup(redis_client)
    data = order_job("RET-DEAD")
    job_id = producer.enqueue(data).job_id

    end(ledger, Job.model_validate(data), EventStatus.DEAD_LETTERED)

    kept = json.loads(redis_client.hget(keys.dead_letters, job_id) or b"{}")
    assert (kept["vendor"], kept["order_id"]) == ("sourceorders", "RET-DEAD")
    assert "order" not in kept and "Beesly" not in json.dumps(kept)


def test_the_result_stream_is_trimmed_by_age(redis_client: redis.Redis) -> None:
    keys, producer, ledger = setup(redis_client)
    for n in range(1, 301):  # from 1970: long past the hour kept
        redis_client.xadd(keys.results, {"event": "{}"}, id=f"1-{n}")
    data = order_job("RET-AGE")
    producer.enqueue(data)

    end(ledger, Job.model_validate(data), EventStatus.ACCEPTED)

    # Trimming is approximate (whole nodes of the stream, 100 entries each by default).
    old = redis_client.xrange(keys.results, "-", "1-999") or []
    assert len(old) < 100
    assert redis_client.xlen(keys.results) == len(old) + 1
