"""End to end: producer -> Redis -> real Celery worker -> sandbox over HTTP -> result stream."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import redis

from order_dispatch.contract import EventStatus
from order_dispatch.keys import Keys
from producers.enqueue import InvalidJob, Producer
from tests.integration.conftest import Events, WorkerProcess, order_job, unique

pytestmark = pytest.mark.integration


def _vendor_orders(admin: httpx.Client) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = admin.get(
        "/_sandbox/orders", params={"vendor": "sourceorders"}
    ).json()["orders"]
    return orders


def test_an_order_is_accepted_with_the_vendors_id(
    worker: WorkerProcess, producer: Producer, events: Events, sandbox_admin: httpx.Client
) -> None:
    receipt = producer.enqueue(order_job(unique("ok")))

    done = events.wait_terminal([receipt.job_id])

    event = done[receipt.job_id]
    assert event.status == "accepted"
    assert event.vendor_order_id is not None and event.vendor_order_id.startswith("soo_")
    assert event.vendor_status == "RECEIVED"
    assert event.attempt == 1
    assert [o["orderId"] for o in _vendor_orders(sandbox_admin)] == [event.vendor_order_id]
    assert [e.status for e in events.of(receipt.job_id)] == ["accepted"]


def test_the_same_job_twice_makes_one_vendor_order(
    worker: WorkerProcess, producer: Producer, events: Events, sandbox_admin: httpx.Client
) -> None:
    job = order_job(unique("twice"))

    first = producer.enqueue(job)
    second = producer.enqueue(job)
    done = events.wait_terminal([first.job_id])

    assert not first.duplicate and second.duplicate
    assert second.task_id == first.task_id
    assert done[first.job_id].status == "accepted"
    assert len(_vendor_orders(sandbox_admin)) == 1
    assert len(events.of(first.job_id)) == 1


def test_an_invalid_order_is_refused_and_nothing_is_queued(
    producer: Producer, redis_client: redis.Redis, shared_prefix: str
) -> None:
    keys = Keys(shared_prefix)
    before = redis_client.llen(keys.queue("sourceorders"))
    job = order_job(unique("bad"), placed_at="2026-11-20T10:00:00", currency="dollars")

    with pytest.raises(InvalidJob) as caught:
        producer.enqueue(job)

    assert "order.placed_at" in str(caught.value)
    assert "order.currency" in str(caught.value)
    assert caught.value.order_id == job["order"]["order_id"]
    assert redis_client.llen(keys.queue("sourceorders")) == before
    assert redis_client.keys(f"{shared_prefix}:job:*{job['order']['order_id']}*") == []


def test_a_vendor_4xx_is_rejected_with_the_vendors_message(
    worker: WorkerProcess, producer: Producer, events: Events, sandbox_admin: httpx.Client
) -> None:
    job = order_job(unique("4xx"))
    del job["order"]["ship_to"]["postal_code"]

    receipt = producer.enqueue(job)
    event = events.wait_terminal([receipt.job_id])[receipt.job_id]

    assert event.status == "rejected"
    assert event.error is not None
    assert event.error.kind == "vendor_rejected"
    assert event.error.http_status == 400
    assert event.error.message == "shippingAddress.postalCode is required"
    assert event.error.retryable is False
    assert event.attempt == 1
    assert _vendor_orders(sandbox_admin) == []


def test_two_503s_then_success_is_accepted_after_retries(
    worker: WorkerProcess, producer: Producer, events: Events, sandbox_admin: httpx.Client
) -> None:
    sandbox_admin.post(
        "/_sandbox/faults/sourceorders", json={"fail_next": 2, "status": 503, "retry_after": 0}
    ).raise_for_status()

    receipt = producer.enqueue(order_job(unique("retry")))
    events.wait_terminal([receipt.job_id])
    history = events.of(receipt.job_id)

    assert [(e.attempt, e.status) for e in history] == [
        (1, "retry_scheduled"),
        (2, "retry_scheduled"),
        (3, "accepted"),
    ]
    assert all(e.error and e.error.http_status == 503 for e in history[:2])
    assert all(e.error and e.error.kind == "vendor_unavailable" for e in history[:2])
    retry_in = history[0].retry_in_s
    assert retry_in is not None and 0.0 <= retry_in <= 1.0  # Retry-After: 0, plus jitter
    assert len(_vendor_orders(sandbox_admin)) == 1


def test_retries_end_dead_lettered_when_exhausted(
    worker: WorkerProcess,
    producer: Producer,
    events: Events,
    sandbox_admin: httpx.Client,
    redis_client: redis.Redis,
    shared_prefix: str,
) -> None:
    sandbox_admin.post(
        "/_sandbox/faults/sourceorders", json={"fail_next": 10, "status": 500}
    ).raise_for_status()

    receipt = producer.enqueue(order_job(unique("exhaust")))
    event = events.wait_terminal([receipt.job_id])[receipt.job_id]

    assert event.status == "dead_lettered"
    assert event.attempt == 5  # ORDER_DISPATCH_RETRY__MAX_ATTEMPTS in the worker's env
    assert [e.status for e in events.of(receipt.job_id)].count(EventStatus.RETRY_SCHEDULED) == 4
    assert redis_client.hexists(Keys(shared_prefix).dead_letters, receipt.job_id)


def test_a_dropped_answer_to_a_create_is_in_doubt_not_resubmitted(
    worker: WorkerProcess, producer: Producer, events: Events, sandbox_admin: httpx.Client
) -> None:
    sandbox_admin.post(
        "/_sandbox/faults/sourceorders", json={"drop_after_commit_next": 1}
    ).raise_for_status()

    receipt = producer.enqueue(order_job(unique("drop")))
    event = events.wait_terminal([receipt.job_id])[receipt.job_id]

    assert event.status == "in_doubt"
    assert event.error is not None and event.error.kind == "transport"
    assert len(_vendor_orders(sandbox_admin)) == 1  # the vendor has it; we did not send twice


def test_status_and_address_update_follow_the_vendors_rule(
    worker: WorkerProcess, producer: Producer, events: Events, sandbox_admin: httpx.Client
) -> None:
    created = producer.enqueue(order_job(unique("upd")))
    vendor_id = events.wait_terminal([created.job_id])[created.job_id].vendor_order_id
    order_id = created.order_id

    update = producer.enqueue(
        {
            "vendor": "sourceorders",
            "operation": "update_address",
            "order_id": order_id,
            "vendor_order_id": vendor_id,
            "address": {"company": "Michael Scott Paper Company"},
        }
    )
    ok = events.wait_terminal([update.job_id])[update.job_id]
    sandbox_admin.post(
        f"/_sandbox/orders/sourceorders/{vendor_id}/status", json={"status": "IN PRODUCTION"}
    ).raise_for_status()
    status = producer.enqueue(
        {
            "vendor": "sourceorders",
            "operation": "get_status",
            "order_id": order_id,
            "vendor_order_id": vendor_id,
        }
    )
    late = producer.enqueue(
        {
            "vendor": "sourceorders",
            "operation": "update_address",
            "order_id": order_id,
            "vendor_order_id": vendor_id,
            "address": {"line1": "1 Late St"},
            "job_id": unique("late-update"),
        }
    )
    done = events.wait_terminal([status.job_id, late.job_id])

    assert ok.status == "accepted" and ok.vendor_status == "RECEIVED"
    stored = _vendor_orders(sandbox_admin)[0]
    assert stored["shippingAddress"]["company"] == "Michael Scott Paper Company"
    assert stored["shippingAddress"]["street1"] == "1725 Slough Ave"
    assert done[status.job_id].vendor_status == "IN PRODUCTION"
    assert done[late.job_id].status == "rejected"
    late_error = done[late.job_id].error
    assert late_error is not None
    assert "only allowed on orders with status RECEIVED" in late_error.message


def test_no_secret_reaches_events_or_logs(
    worker: WorkerProcess, producer: Producer, events: Events, sandbox_admin: httpx.Client
) -> None:
    from order_dispatch_sandbox.sourceorders import DEFAULT_API_KEY

    receipt = producer.enqueue(order_job(unique("secret")))
    events.wait_terminal([receipt.job_id])

    raw = "".join(str(e.model_dump()) for e in events.all())
    assert DEFAULT_API_KEY not in raw
    assert DEFAULT_API_KEY not in worker.output()
    assert '"job_id"' in worker.output()  # the log is there, and structured


def test_not_before_defers_without_spending_an_attempt(
    worker: WorkerProcess, producer: Producer, events: Events, sandbox_admin: httpx.Client
) -> None:
    from datetime import UTC, datetime, timedelta

    not_before = datetime.now(UTC) + timedelta(seconds=1.5)
    job = order_job(unique("later"))
    job["not_before"] = not_before.isoformat()

    receipt = producer.enqueue(job)
    event = events.wait_terminal([receipt.job_id])[receipt.job_id]
    history = events.of(receipt.job_id)

    assert [(e.status, e.attempt) for e in history] == [("deferred", 1), ("accepted", 1)]
    assert history[0].retry_in_s is not None and 0 < history[0].retry_in_s <= 1.5
    assert event.occurred_at >= not_before


def test_broker_messages_carry_ids_not_customer_data(
    redis_client: redis.Redis, worker_env_factory: Any, sandbox_admin: httpx.Client
) -> None:
    import base64
    import json
    import uuid

    prefix = f"odm-{uuid.uuid4().hex[:6]}"
    producer = Producer(redis_client, key_prefix=prefix)
    # A vendor answering 503 keeps the job cycling through retries (the messages Flower shows).
    sandbox_admin.post("/_sandbox/faults/sourceorders", json={"fail_next": 1, "status": 503})
    receipt = producer.enqueue(order_job(unique("ids"), notes={"customer": "Pam's secret note"}))
    queued = redis_client.lrange(Keys(prefix).queue("sourceorders"), 0, -1)
    worker = WorkerProcess(worker_env_factory(prefix), concurrency=2)
    try:
        events = Events(redis_client, Keys(prefix))
        assert events.wait_terminal([receipt.job_id])[receipt.job_id].status == "accepted"
        log = worker.output()
    finally:
        worker.close()

    [raw] = queued
    envelope = json.loads(raw)
    body = json.loads(base64.b64decode(envelope["body"]))
    assert body[1] == {"job_id": receipt.job_id, "run": 1, "attempt": 1}
    for text in (str(raw), json.dumps(body), envelope["headers"]["kwargsrepr"]):
        assert "Beesly" not in text and "Slough" not in text and "secret note" not in text
    assert "Beesly" not in log and "secret note" not in log
