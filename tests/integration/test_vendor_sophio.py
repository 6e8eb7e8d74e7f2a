"""Sophio end to end: producer -> Redis -> a real worker process -> the Sophio simulator over
HTTP -> result stream.

One worker serves two accounts of the same store: ``default`` (the adapter's default: a lost
answer to a create is in doubt) and ``upsert`` (the account says the store upserts by
``orderKey``, so a create is repeat-safe).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import redis

from order_dispatch.contract import ErrorKind, EventStatus, ResultEvent
from order_dispatch.keys import Keys
from order_dispatch_sandbox.app import SIMULATORS
from order_dispatch_sandbox.runner import BackgroundSandbox
from order_dispatch_sandbox.sophio import DEFAULT_API_KEY, DEFAULT_API_SECRET, SophioSimulator
from producers.enqueue import Producer, Receipt
from tests.integration.conftest import Events, WorkerProcess, order_job, unique
from tests.vendors.test_sophio import ORDER

pytestmark = pytest.mark.integration

#: The longest Retry-After (or X-Rate-Limit-Reset) the worker waits here, to keep tests short.
RETRY_AFTER_CAP_S = 0.3
#: The demo account's authentication value, unpadded (so within every URL form) and as sent.
_AUTHENTICATION = base64.b64encode(f"{DEFAULT_API_KEY}:{DEFAULT_API_SECRET}".encode()).decode()
AUTHENTICATION_FORMS = (_AUTHENTICATION.rstrip("="), quote(_AUTHENTICATION, safe=""))


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


@dataclass
class Store:
    """The Sophio store as a test drives it: the worker, the queue, the events, the sandbox."""

    worker: WorkerProcess
    producer: Producer
    events: Events
    admin: httpx.Client
    simulator: SophioSimulator

    def enqueue(self, name: str, account: str = "default", **job: Any) -> Receipt:
        """Queue a create of a fresh order (``job`` overrides fields of the job)."""
        return self.producer.enqueue(
            {**order_job(unique(name)), "vendor": "sophio", "account": account, **job}
        )

    def outcome(self, receipt: Receipt) -> ResultEvent:
        """The job's terminal event, once it exists."""
        return self.events.wait_terminal([receipt.job_id])[receipt.job_id]

    def wait_for(self, receipt: Receipt, status: EventStatus, timeout: float = 30) -> ResultEvent:
        """The job's first event with ``status``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events.of(receipt.job_id):
                if event.status == status:
                    return event
            time.sleep(0.02)
        raise AssertionError(f"no {status.value} event for {receipt.job_id} within {timeout} s")

    def inject(self, **faults: Any) -> None:
        """Faults for the simulator's next requests."""
        self.admin.post("/_sandbox/faults/sophio", json=faults).raise_for_status()

    def orders(self) -> list[dict[str, Any]]:
        """The orders the simulator holds."""
        orders: list[dict[str, Any]] = self.admin.get(
            "/_sandbox/orders", params={"vendor": "sophio"}
        ).json()["orders"]
        return orders


@pytest.fixture
def store(
    sophio_worker: WorkerProcess,
    redis_client: redis.Redis,
    prefix: str,
    sandbox: BackgroundSandbox,
    sandbox_admin: httpx.Client,
) -> Store:
    simulator = sandbox.app[SIMULATORS]["sophio"]
    assert isinstance(simulator, SophioSimulator)
    return Store(
        sophio_worker,
        Producer(redis_client, key_prefix=prefix),
        Events(redis_client, Keys(prefix)),
        sandbox_admin,
        simulator,
    )


def test_a_create_is_accepted_with_sophios_order_id(store: Store) -> None:
    # The document's sample order, with a discount on a line (1.00) and on the order (2.00):
    # totals.discount is the whole discount, the line's included.
    order = {
        **ORDER,
        "order_id": unique("create"),
        "items": [{**ORDER["items"][0], "discount": "1.00"}, ORDER["items"][1]],
        "totals": {**ORDER["totals"], "discount": "3.00"},
    }
    receipt = store.producer.enqueue({"vendor": "sophio", "order": order})

    event = store.outcome(receipt)

    assert event.status == EventStatus.ACCEPTED, event.error
    assert event.attempt == 1
    assert event.vendor_status == "awaiting_shipment"
    [stored] = store.orders()
    assert event.vendor_order_id == str(stored["orderId"])
    assert stored["orderKey"] == receipt.order_id
    assert stored["shipTo"]["name"] == "Steve Smith"
    # 2 x 7.46 + 47.46 - 1.00 - 2.00 + 9.25 shipping
    assert stored["orderTotal"] == 68.63
    assert [i["adjustment"] for i in stored["items"]] == [False, False, True, True]


def test_a_429_from_the_rate_limit_is_deferred_and_accepted(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store.simulator, "rate_limit_per_minute", 1)
    first = store.enqueue("rate-1")
    store.outcome(first)

    second = store.enqueue("rate-2")
    limited = store.wait_for(second, EventStatus.DEFERRED)
    # The minute's window passes: the store takes requests again.
    monkeypatch.setattr(store.simulator, "rate_limit_per_minute", 0)
    event = store.outcome(second)

    # The first answer said "X-Rate-Limit-Remaining: 0": the account's shared bucket holds the
    # second order before it is sent (or, if the pause had passed, the vendor's 429 defers it).
    assert limited.error is not None and limited.error.kind is ErrorKind.RATE_LIMITED
    assert limited.error.http_status in (None, 429)
    assert limited.retry_in_s is not None and limited.retry_in_s <= RETRY_AFTER_CAP_S + 1
    # Throttling is not failure: the attempt was not spent.
    assert event.status == EventStatus.ACCEPTED and event.attempt == 1
    assert sorted(o["orderKey"] for o in store.orders()) == sorted(
        [first.order_id, second.order_id]
    )


def test_a_lost_answer_is_in_doubt_by_default_and_never_sent_twice(store: Store) -> None:
    store.inject(drop_after_commit_next=1)

    receipt = store.enqueue("lost")
    event = store.outcome(receipt)

    assert event.status == EventStatus.IN_DOUBT
    assert event.error is not None and event.error.kind == ErrorKind.TRANSPORT
    assert [o["orderKey"] for o in store.orders()] == [receipt.order_id]


def test_a_lost_answer_is_resent_where_the_store_upserts_by_order_key(store: Store) -> None:
    store.inject(drop_after_commit_next=1)

    receipt = store.enqueue("upsert", account="upsert")
    event = store.outcome(receipt)
    history = [(e.attempt, e.status) for e in store.events.of(receipt.job_id)]

    assert history == [(1, EventStatus.RETRY_SCHEDULED), (2, EventStatus.ACCEPTED)]
    [stored] = store.orders()
    assert stored["orderKey"] == receipt.order_id
    assert event.vendor_order_id == str(stored["orderId"])


def test_an_order_the_store_holds_and_shipped_is_in_doubt_not_duplicated(store: Store) -> None:
    first = store.enqueue("shipped")
    vendor_id = store.outcome(first).vendor_order_id
    store.admin.post(
        f"/_sandbox/orders/sophio/{vendor_id}/status", json={"status": "shipped"}
    ).raise_for_status()

    # The same order again under another job id (a producer's replay).
    again = store.enqueue(
        "replay", order=order_job(first.order_id)["order"], job_id=unique("replay")
    )
    event = store.outcome(again)

    assert event.status == EventStatus.IN_DOUBT
    assert event.error is not None and event.error.http_status == 400
    assert "locked from modification" in event.error.message
    assert "already has this order" in event.error.message
    assert len(store.orders()) == 1


def test_the_authentication_value_never_reaches_the_log_or_events(store: Store) -> None:
    accepted = store.enqueue("leak-ok")
    store.outcome(accepted)
    store.inject(fail_next=1, status=401)
    refused = store.enqueue("leak-401")
    store.outcome(refused)
    store.inject(reset_next=1)
    dropped = store.enqueue("leak-reset")
    store.outcome(dropped)

    log = store.worker.output()
    raw_events = json.dumps([e.model_dump(mode="json") for e in store.events.all()])
    assert store.outcome(refused).status == EventStatus.REJECTED
    assert store.outcome(dropped).status == EventStatus.IN_DOUBT
    for receipt in (accepted, refused, dropped):
        assert receipt.order_id in log  # the log covers all three
    for form in AUTHENTICATION_FORMS:
        assert form not in log
        assert form not in raw_events
