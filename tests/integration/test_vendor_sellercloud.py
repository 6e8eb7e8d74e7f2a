"""SellerCloud end to end: producer -> Redis -> real worker processes -> the SellerCloud
simulator over HTTP -> result stream.

The worker of this module consumes only SellerCloud's queue under its own key prefix. The sandbox
is reset before every test, which also expires every token: each test starts with the worker
holding a token the vendor no longer accepts.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from order_dispatch.contract import EventStatus, ResultEvent
from order_dispatch.keys import Keys
from order_dispatch_sandbox.app import SIMULATORS
from order_dispatch_sandbox.runner import BackgroundSandbox
from order_dispatch_sandbox.sellercloud import SellerCloudSimulator
from producers.enqueue import Producer
from tests.integration.conftest import Events, WorkerProcess, unique

pytestmark = pytest.mark.integration

NAME = 'Zoë "Z" <O\'Brien> & 漢字 🙂'


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"odt-sc-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def worker_env(prefix: str, worker_env_factory: Callable[..., dict[str, str]]) -> dict[str, str]:
    return worker_env_factory(prefix)


@pytest.fixture(scope="module")
def sc_worker(worker_env: dict[str, str]) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(worker_env, concurrency=32, vendors="sellercloud")
    yield proc
    proc.close()


@pytest.fixture
def producer(redis_client: redis.Redis, prefix: str) -> Producer:
    return Producer(redis_client, key_prefix=prefix)


@pytest.fixture
def events(redis_client: redis.Redis, prefix: str) -> Events:
    return Events(redis_client, Keys(prefix))


@pytest.fixture
def vendor(sandbox: BackgroundSandbox, sandbox_admin: httpx.Client) -> SellerCloudSimulator:
    """The SellerCloud simulator itself (reset by ``sandbox_admin``), for its token count."""
    sim = sandbox.app[SIMULATORS]["sellercloud"]
    assert isinstance(sim, SellerCloudSimulator)
    return sim


def create(order_id: str) -> dict[str, Any]:
    return {
        "vendor": "sellercloud",
        "order": {
            "order_id": order_id,
            "placed_at": "2026-11-20T10:00:00+00:00",
            "customer": {"email": "zoe@example.com", "first_name": NAME, "last_name": "Kaur"},
            "ship_to": {
                "first_name": NAME,
                "last_name": "Kaur",
                "line1": "1725 Slough Ave",
                "city": "Scranton",
                "region": "PA",
                "postal_code": "18505",
                "country": "US",
            },
            "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": "19.99", "tax": "0.10"}],
            "totals": {"shipping": "4.99", "tax": "0.10"},
        },
    }


def on_order(operation: str, order_id: str, vendor_order_id: str) -> dict[str, Any]:
    return {
        "vendor": "sellercloud",
        "operation": operation,
        "order_id": order_id,
        "vendor_order_id": vendor_order_id,
    }


def stored(admin: httpx.Client) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = admin.get(
        "/_sandbox/orders", params={"vendor": "sellercloud"}
    ).json()["orders"]
    return orders


def source_id(order: dict[str, Any]) -> str:
    """The OrderSourceOrderID of an order as the vendor stores it."""
    value: str = order["OrderDetails"]["OrderSourceOrderId"]
    return value


def wait_for(events: Events, job_ids: list[str], count: int, timeout: float = 30) -> None:
    """Until ``count`` of ``job_ids`` have their terminal event."""
    deadline = time.monotonic() + timeout
    while len(events.wait_terminal(job_ids, timeout=0)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} jobs ended in {timeout} s"
        time.sleep(0.01)


def accepted_once(events: Events, job_ids: list[str]) -> list[ResultEvent]:
    """The terminal events of ``job_ids``, after checking each job's history is one
    ``accepted`` event of its first attempt."""
    done = events.wait_terminal(job_ids, timeout=60)
    histories: dict[str, list[tuple[int, str]]] = {j: [] for j in job_ids}
    for event in events.all():
        if event.job_id in histories:
            histories[event.job_id].append((event.attempt, event.status))
    failed = {j: h for j, h in histories.items() if h != [(1, EventStatus.ACCEPTED)]}
    assert not failed, f"{len(failed)} jobs did not simply succeed: {list(failed.items())[:3]}"
    return [done[j] for j in job_ids]


def test_create_status_and_cancel_are_accepted_with_the_vendors_id(
    sc_worker: WorkerProcess, producer: Producer, events: Events, sandbox_admin: httpx.Client
) -> None:
    created = producer.enqueue(create(unique("sc")))
    [event] = accepted_once(events, [created.job_id])
    vendor_id = event.vendor_order_id
    assert vendor_id is not None and vendor_id.isdigit()

    status = producer.enqueue(on_order("get_status", created.order_id, vendor_id))
    [read] = accepted_once(events, [status.job_id])
    cancel = producer.enqueue(on_order("cancel", created.order_id, vendor_id))
    [cancelled] = accepted_once(events, [cancel.job_id])

    [order] = stored(sandbox_admin)
    assert order["ID"] == int(vendor_id)
    assert order["OrderDetails"]["OrderSourceOrderId"] == created.order_id
    assert order["CustomerDetails"]["FirstName"] == NAME
    assert order["ShippingAddress"]["FirstName"] == NAME
    assert order["Products"][0]["SitePrice"] == 19.99
    assert (read.vendor_order_id, read.vendor_status) == (vendor_id, "InProcess")
    assert (cancelled.vendor_order_id, cancelled.vendor_status) == (vendor_id, "Canceled")
    assert order["Statuses"]["OrderStatus"] == -1


def test_200_concurrent_creates_take_one_token_per_worker_process(
    sc_worker: WorkerProcess,
    worker_env: dict[str, str],
    producer: Producer,
    events: Events,
    sandbox_admin: httpx.Client,
    vendor: SellerCloudSimulator,
) -> None:
    second = WorkerProcess(worker_env, concurrency=32, vendors="sellercloud")
    try:
        order_ids = [unique("many") for _ in range(200)]
        receipts = producer.enqueue_many(create(o) for o in order_ids)

        done = accepted_once(events, [r.job_id for r in receipts])
        logs = [sc_worker.output(), second.output()]
    finally:
        second.close()

    working = [log for log in logs if any(o in log for o in order_ids)]
    assert len(working) == 2, "both worker processes should have taken orders"
    assert vendor.tokens_issued == len(working)
    sources = sorted(source_id(o) for o in stored(sandbox_admin))
    assert sources == sorted(order_ids)
    assert len({e.vendor_order_id for e in done}) == 200


def test_tokens_expiring_mid_run_fail_no_order_and_are_fetched_once_more(
    sc_worker: WorkerProcess,
    producer: Producer,
    events: Events,
    sandbox_admin: httpx.Client,
    vendor: SellerCloudSimulator,
) -> None:
    sandbox_admin.post(
        "/_sandbox/faults/sellercloud", json={"latency": {"ms": 40}}
    ).raise_for_status()
    order_ids = [unique("expire") for _ in range(100)]
    job_ids = [r.job_id for r in producer.enqueue_many(create(o) for o in order_ids)]

    wait_for(events, job_ids, 10)
    before = vendor.tokens_issued
    sandbox_admin.post("/_sandbox/faults/sellercloud", json={"expire_tokens": True})
    expired_at = len(events.wait_terminal(job_ids, timeout=0))
    accepted_once(events, job_ids)

    assert expired_at < 90, "the tokens should expire while orders are still being sent"
    assert (before, vendor.tokens_issued) == (1, 2)
    assert len(stored(sandbox_admin)) == 100


def test_a_create_whose_answer_is_lost_after_the_commit_is_found_not_sent_again(
    sc_worker: WorkerProcess, producer: Producer, events: Events, sandbox_admin: httpx.Client
) -> None:
    warm_up = producer.enqueue(create(unique("warm")))
    accepted_once(events, [warm_up.job_id])  # the worker holds a valid token again
    sandbox_admin.post(
        "/_sandbox/faults/sellercloud", json={"drop_after_commit_next": 1}
    ).raise_for_status()

    lost = producer.enqueue(create(unique("lost")))
    event = events.wait_terminal([lost.job_id])[lost.job_id]

    mine = [o for o in stored(sandbox_admin) if source_id(o) == lost.order_id]
    assert len(mine) == 1
    assert [e.status for e in events.of(lost.job_id)] == [EventStatus.ACCEPTED]
    assert event.reconciled is True
    assert event.vendor_order_id == str(mine[0]["ID"])


def test_a_create_lost_before_the_commit_is_not_found_and_sent_again(
    sc_worker: WorkerProcess, producer: Producer, events: Events, sandbox_admin: httpx.Client
) -> None:
    warm_up = producer.enqueue(create(unique("warm")))
    accepted_once(events, [warm_up.job_id])
    sandbox_admin.post("/_sandbox/faults/sellercloud", json={"reset_next": 1}).raise_for_status()

    lost = producer.enqueue(create(unique("reset")))
    event = events.wait_terminal([lost.job_id])[lost.job_id]

    history = events.of(lost.job_id)
    assert [(e.attempt, e.status) for e in history] == [
        (1, EventStatus.RETRY_SCHEDULED),
        (2, EventStatus.ACCEPTED),
    ]
    assert history[0].error is not None
    assert "the vendor does not have the order" in history[0].error.message
    mine = [o for o in stored(sandbox_admin) if source_id(o) == lost.order_id]
    assert [str(o["ID"]) for o in mine] == [event.vendor_order_id]


def test_a_refused_duplicate_is_reconciled_to_the_existing_order(
    sc_worker: WorkerProcess,
    producer: Producer,
    events: Events,
    sandbox_admin: httpx.Client,
    vendor: SellerCloudSimulator,
) -> None:
    order_id = unique("dup")
    first = producer.enqueue(create(order_id))
    [original] = accepted_once(events, [first.job_id])
    vendor.reject_duplicate_source_id = True
    try:
        again = producer.enqueue({**create(order_id), "job_id": unique("resent")})
        event = events.wait_terminal([again.job_id])[again.job_id]
    finally:
        vendor.reject_duplicate_source_id = False

    assert [e.status for e in events.of(again.job_id)] == [EventStatus.ACCEPTED]
    assert event.reconciled is True
    assert event.vendor_order_id == original.vendor_order_id
    assert len(stored(sandbox_admin)) == 1
