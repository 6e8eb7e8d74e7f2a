"""Sophio end to end: producer -> Redis -> a real worker process -> the Sophio simulator over
HTTP -> result stream.

One worker serves two accounts of the same store: ``default`` (the adapter's default: a lost
answer to a create is in doubt) and ``upsert`` (the account says the store upserts by
``orderKey``, so a create is repeat-safe).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from order_dispatch.contract import ErrorKind, EventStatus, ResultEvent
from order_dispatch.keys import Keys
from producers.enqueue import Producer
from sandbox.app import SIMULATORS
from sandbox.runner import BackgroundSandbox
from sandbox.sophio import SophioSimulator
from tests.integration.conftest import Events, WorkerProcess, order_job, unique
from tests.vendors.test_sophio import ORDER

pytestmark = pytest.mark.integration

#: The longest Retry-After (or X-Rate-Limit-Reset) the worker waits here, to keep tests short.
RETRY_AFTER_CAP_S = 0.3
#: The demo credentials (sophio:orders, the document's example) as the query sends them.
AUTHENTICATION_FORMS = ("c29waGlvOm9yZGVycw", "c29waGlvOm9yZGVycw%3D%3D")


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"odt-vs-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def sophio_worker(
    prefix: str, worker_env_factory: Callable[..., dict[str, str]]
) -> Iterator[WorkerProcess]:
    env = worker_env_factory(
        prefix,
        ORDER_DISPATCH_RETRY__MAX_ATTEMPTS="10",
        ORDER_DISPATCH_RETRY__RETRY_AFTER_CAP_S=str(RETRY_AFTER_CAP_S),
        ORDER_DISPATCH_LOG_LEVEL="DEBUG",
    )
    accounts = json.loads(env["ORDER_DISPATCH_ACCOUNTS"])
    accounts["sophio"]["upsert"] = {
        **accounts["sophio"]["default"],
        "options": {"upsert_by_order_key": True},
    }
    env["ORDER_DISPATCH_ACCOUNTS"] = json.dumps(accounts)
    proc = WorkerProcess(env, vendors="sophio")
    yield proc
    proc.close()


@pytest.fixture
def sophio_producer(redis_client: redis.Redis, prefix: str) -> Producer:
    return Producer(redis_client, key_prefix=prefix)


@pytest.fixture
def sophio_events(redis_client: redis.Redis, prefix: str) -> Events:
    return Events(redis_client, Keys(prefix))


@pytest.fixture
def simulator(sandbox: BackgroundSandbox) -> SophioSimulator:
    sim = sandbox.app[SIMULATORS]["sophio"]
    assert isinstance(sim, SophioSimulator)
    return sim


def sophio_job(name: str, account: str = "default") -> dict[str, Any]:
    return {**order_job(unique(name)), "vendor": "sophio", "account": account}


def vendor_orders(admin: httpx.Client) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = admin.get(
        "/_sandbox/orders", params={"vendor": "sophio"}
    ).json()["orders"]
    return orders


def test_a_create_is_accepted_with_sophios_order_id(
    sophio_worker: WorkerProcess,
    sophio_producer: Producer,
    sophio_events: Events,
    sandbox_admin: httpx.Client,
) -> None:
    # The document's sample order, with a discount on a line and on the order.
    order = {
        **ORDER,
        "order_id": unique("create"),
        "items": [{**ORDER["items"][0], "discount": "1.00"}, ORDER["items"][1]],
        "totals": {**ORDER["totals"], "discount": "2.00"},
    }
    receipt = sophio_producer.enqueue({"vendor": "sophio", "order": order})

    event = sophio_events.wait_terminal([receipt.job_id])[receipt.job_id]

    assert event.status == EventStatus.ACCEPTED, event.error
    assert event.attempt == 1
    assert event.vendor_status == "awaiting_shipment"
    [stored] = vendor_orders(sandbox_admin)
    assert event.vendor_order_id == str(stored["orderId"])
    assert stored["orderKey"] == receipt.order_id
    assert stored["shipTo"]["name"] == "Steve Smith"
    # 2 x 7.46 + 47.46 - 1.00 - 2.00 + 9.25 shipping
    assert stored["orderTotal"] == 68.63
    assert [i["adjustment"] for i in stored["items"]] == [False, False, True, True]


def test_a_429_from_the_rate_limit_is_retried_and_accepted(
    sophio_worker: WorkerProcess,
    sophio_producer: Producer,
    sophio_events: Events,
    sandbox_admin: httpx.Client,
    simulator: SophioSimulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(simulator, "rate_limit_per_minute", 1)
    first = sophio_producer.enqueue(sophio_job("rate-1"))
    sophio_events.wait_terminal([first.job_id])

    second = sophio_producer.enqueue(sophio_job("rate-2"))
    limited = _wait_for_event(sophio_events, second.job_id, EventStatus.RETRY_SCHEDULED)
    # The minute's window passes: the store takes requests again.
    monkeypatch.setattr(simulator, "rate_limit_per_minute", 0)
    event = sophio_events.wait_terminal([second.job_id])[second.job_id]

    assert limited.error is not None
    assert (limited.error.kind, limited.error.http_status) == (ErrorKind.RATE_LIMITED, 429)
    assert limited.error.message == "Too Many Requests"
    # The vendor asked for the rest of its minute; the worker waited as long as it may.
    assert limited.retry_in_s == RETRY_AFTER_CAP_S
    assert event.status == EventStatus.ACCEPTED and event.attempt >= 2
    assert sorted(o["orderKey"] for o in vendor_orders(sandbox_admin)) == sorted(
        [first.order_id, second.order_id]
    )


def test_a_lost_answer_is_in_doubt_by_default_and_never_sent_twice(
    sophio_worker: WorkerProcess,
    sophio_producer: Producer,
    sophio_events: Events,
    sandbox_admin: httpx.Client,
) -> None:
    sandbox_admin.post(
        "/_sandbox/faults/sophio", json={"drop_after_commit_next": 1}
    ).raise_for_status()

    receipt = sophio_producer.enqueue(sophio_job("lost"))
    event = sophio_events.wait_terminal([receipt.job_id])[receipt.job_id]

    assert event.status == EventStatus.IN_DOUBT
    assert event.error is not None and event.error.kind == ErrorKind.TRANSPORT
    assert [o["orderKey"] for o in vendor_orders(sandbox_admin)] == [receipt.order_id]


def test_a_lost_answer_is_resent_where_the_store_upserts_by_order_key(
    sophio_worker: WorkerProcess,
    sophio_producer: Producer,
    sophio_events: Events,
    sandbox_admin: httpx.Client,
) -> None:
    sandbox_admin.post(
        "/_sandbox/faults/sophio", json={"drop_after_commit_next": 1}
    ).raise_for_status()

    receipt = sophio_producer.enqueue(sophio_job("upsert", account="upsert"))
    event = sophio_events.wait_terminal([receipt.job_id])[receipt.job_id]
    history = [(e.attempt, e.status) for e in sophio_events.of(receipt.job_id)]

    assert history == [(1, EventStatus.RETRY_SCHEDULED), (2, EventStatus.ACCEPTED)]
    [stored] = vendor_orders(sandbox_admin)
    assert stored["orderKey"] == receipt.order_id
    assert event.vendor_order_id == str(stored["orderId"])


def test_the_authentication_value_never_reaches_the_log_or_events(
    sophio_worker: WorkerProcess,
    sophio_producer: Producer,
    sophio_events: Events,
    sandbox_admin: httpx.Client,
) -> None:
    accepted = sophio_producer.enqueue(sophio_job("leak-ok"))
    sophio_events.wait_terminal([accepted.job_id])
    sandbox_admin.post(
        "/_sandbox/faults/sophio", json={"fail_next": 1, "status": 401}
    ).raise_for_status()
    refused = sophio_producer.enqueue(sophio_job("leak-401"))
    sophio_events.wait_terminal([refused.job_id])
    sandbox_admin.post("/_sandbox/faults/sophio", json={"reset_next": 1}).raise_for_status()
    dropped = sophio_producer.enqueue(sophio_job("leak-reset"))
    done = sophio_events.wait_terminal([dropped.job_id])

    log = sophio_worker.output()
    raw_events = json.dumps([e.model_dump(mode="json") for e in sophio_events.all()])
    assert done[dropped.job_id].error is not None
    assert sophio_events.of(refused.job_id)[-1].status == EventStatus.REJECTED
    for receipt in (accepted, refused, dropped):
        assert receipt.order_id in log  # the log covers all three
    for form in AUTHENTICATION_FORMS:
        assert form not in log
        assert form not in raw_events


def _wait_for_event(
    events: Events, job_id: str, status: EventStatus, timeout: float = 30
) -> ResultEvent:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in events.of(job_id):
            if event.status == status:
                return event
        time.sleep(0.02)
    raise AssertionError(f"no {status.value} event for {job_id} within {timeout} s")


def test_an_order_the_store_holds_and_shipped_is_in_doubt_not_duplicated(
    sophio_worker: WorkerProcess,
    sophio_producer: Producer,
    sophio_events: Events,
    sandbox_admin: httpx.Client,
) -> None:
    job = sophio_job("shipped")
    first = sophio_producer.enqueue(job)
    vendor_id = sophio_events.wait_terminal([first.job_id])[first.job_id].vendor_order_id
    sandbox_admin.post(
        f"/_sandbox/orders/sophio/{vendor_id}/status", json={"status": "shipped"}
    ).raise_for_status()

    again = sophio_producer.enqueue({**job, "job_id": unique("replay")})
    event = sophio_events.wait_terminal([again.job_id])[again.job_id]

    assert event.status == EventStatus.IN_DOUBT
    assert event.error is not None and event.error.http_status == 400
    assert "locked from modification" in event.error.message
    assert "already has this order" in event.error.message
    assert len(vendor_orders(sandbox_admin)) == 1
