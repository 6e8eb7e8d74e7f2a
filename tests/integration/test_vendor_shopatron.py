"""Shopatron end to end: producer -> Redis -> real worker processes -> the Kibo OMS simulator over
HTTP -> result stream. Tokens, reconciliation by ``externalOrderID`` and both operations."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from order_dispatch.contract import EventStatus
from order_dispatch.keys import Keys
from producers.enqueue import Producer
from tests.integration.conftest import Events, WorkerProcess, unique

pytestmark = pytest.mark.integration

TOKEN_PATH = "/oauthserver/oauth2/token"


def shopatron_job(order_id: str, operation: str = "create", **changes: Any) -> dict[str, Any]:
    """A valid Shopatron job for ``order_id``."""
    order: dict[str, Any] = {
        "order_id": order_id,
        "placed_at": "2026-11-20T10:00:00+00:00",
        "customer": {
            "email": "pam@example.com",
            "first_name": "Pam",
            "last_name": "Beesly",
            "ip": "203.0.113.7",
        },
        "ship_to": {
            "line1": "1725 Slough Ave",
            "city": "Scranton",
            "region": "PA",
            "postal_code": "18505",
            "country": "US",
        },
        "items": [{"sku": "P-1", "name": "Copy paper", "quantity": 2, "unit_price": "9.99"}],
        "payment": {"type": "CC", "amount": "19.98"},
    }
    order.update(changes)
    return {"vendor": "shopatron", "operation": operation, "order": order}


def held(admin: httpx.Client) -> dict[str, Any]:
    """What the simulator holds and has counted."""
    answer: dict[str, Any] = admin.get("/_sandbox/orders", params={"vendor": "shopatron"}).json()
    return answer


def stored_for(admin: httpx.Client, job: dict[str, Any]) -> list[dict[str, Any]]:
    """The simulator's orders that hold ``job``'s reference."""
    ref = job["order"]["order_id"]
    return [o for o in held(admin)["orders"] if o["externalOrderID"] == ref]


def token_requests(admin: httpx.Client) -> int:
    count: int = held(admin)["requests_by_path"].get(TOKEN_PATH, 0)
    return count


def faults(admin: httpx.Client, **spec: Any) -> None:
    admin.post("/_sandbox/faults/shopatron", json=spec).raise_for_status()


class Lane:
    """One key prefix: its producer and its result stream."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.prefix = prefix
        self.producer = Producer(client, key_prefix=prefix)
        self.events = Events(client, Keys(prefix))

    def run(self, jobs: list[dict[str, Any]], timeout: float = 30) -> list[str]:
        """Enqueue ``jobs`` and wait until each has ended; their job ids."""
        job_ids = [self.producer.enqueue(j).job_id for j in jobs]
        done = self.events.wait_terminal(job_ids, timeout)
        assert len(done) == len(set(job_ids)), f"{len(done)} of {len(job_ids)} jobs ended"
        return job_ids

    def accepted(self, job_ids: list[str]) -> int:
        wanted = set(job_ids)
        return len(
            {e.job_id for e in self.events.all() if e.job_id in wanted and e.status == "accepted"}
        )


@pytest.fixture(scope="module")
def lane_prefix() -> str:
    return f"odt-shop-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def shopatron_worker(
    lane_prefix: str, worker_env_factory: Callable[..., dict[str, str]]
) -> Iterator[WorkerProcess]:
    """A worker consuming only Shopatron jobs of this module's prefix."""
    proc = WorkerProcess(worker_env_factory(lane_prefix), vendors="shopatron")
    yield proc
    proc.close()


@pytest.fixture
def lane(redis_client: redis.Redis, lane_prefix: str) -> Lane:
    return Lane(redis_client, lane_prefix)


def warm_up(lane: Lane) -> None:
    """One order through, so the worker holds a valid token before the test's faults."""
    (job_id,) = lane.run([shopatron_job(unique("warm"))])
    assert lane.events.of(job_id)[-1].status == "accepted"


def test_an_import_and_a_create_are_accepted_with_the_vendors_order_id(
    shopatron_worker: WorkerProcess, lane: Lane, sandbox_admin: httpx.Client
) -> None:
    text = 'Suite "B" & <3> — Zoë'
    imported = shopatron_job(unique("imp"), "import", status="shipped")
    created = shopatron_job(unique("new"))
    created["order"]["ship_to"]["line2"] = text

    job_ids = lane.run([imported, created])

    events = [lane.events.of(j)[-1] for j in job_ids]
    assert [(e.status, e.attempt, e.vendor_status) for e in events] == [
        ("accepted", 1, "SHIPPED"),
        ("accepted", 1, "READY"),
    ]
    orders = {o["externalOrderID"]: o for o in held(sandbox_admin)["orders"]}
    for event in events:
        stored = orders[event.order_id]
        assert event.vendor_order_id == str(stored["orderID"])
        assert stored["manufacturerID"] == 1001
    assert orders[created["order"]["order_id"]]["shippingAddress"]["addressLine2"] == text


def test_concurrent_creates_fetch_one_token_per_worker_process(
    worker_env_factory: Callable[..., dict[str, str]],
    redis_client: redis.Redis,
    sandbox_admin: httpx.Client,
) -> None:
    fresh = Lane(redis_client, f"odt-shop-{uuid.uuid4().hex[:6]}")
    env = worker_env_factory(fresh.prefix)
    workers = [WorkerProcess(env, concurrency=16, vendors="shopatron") for _ in range(2)]
    try:
        # A little latency keeps both processes busy at once, every thread wanting the token.
        faults(sandbox_admin, latency={"ms": 10})

        job_ids = fresh.run([shopatron_job(unique(f"c{n}")) for n in range(200)], timeout=60)

        assert fresh.accepted(job_ids) == 200
        assert held(sandbox_admin)["count"] == 200
        assert all("job event" in w.output() for w in workers), "both processes took jobs"
        assert token_requests(sandbox_admin) == 2
    finally:
        for w in workers:
            w.close()


def test_tokens_expiring_mid_run_fail_no_order_and_cost_one_refresh(
    shopatron_worker: WorkerProcess, lane: Lane, sandbox_admin: httpx.Client
) -> None:
    warm_up(lane)
    before = token_requests(sandbox_admin)
    faults(sandbox_admin, latency={"ms": 20})
    job_ids = [lane.producer.enqueue(shopatron_job(unique(f"e{n}"))).job_id for n in range(100)]
    deadline = time.monotonic() + 30
    while (done_before := lane.accepted(job_ids)) < 10 and time.monotonic() < deadline:
        time.sleep(0.01)

    faults(sandbox_admin, expire_tokens=True)
    done = lane.events.wait_terminal(job_ids)

    assert 10 <= done_before < 100, "the tokens expired mid-run"
    assert {e.status for e in done.values()} == {EventStatus.ACCEPTED}
    assert len(done) == 100
    assert all(e.attempt == 1 for e in done.values())
    assert token_requests(sandbox_admin) == before + 1


def test_a_duplicate_external_order_id_is_accepted_with_the_first_orders_id(
    shopatron_worker: WorkerProcess, lane: Lane, sandbox_admin: httpx.Client
) -> None:
    job = shopatron_job(unique("dup"))
    (first,) = lane.run([job])
    (second,) = lane.run([{**job, "job_id": unique("same-order-again")}])

    original = lane.events.of(first)[-1]
    again = lane.events.of(second)
    assert (original.status, original.reconciled) == ("accepted", None)
    assert [(e.status, e.reconciled) for e in again] == [("accepted", True)]
    assert again[0].vendor_order_id == original.vendor_order_id
    assert held(sandbox_admin)["count"] == 1


def test_a_connection_dropped_after_the_vendor_stored_the_order_is_reconciled(
    shopatron_worker: WorkerProcess, lane: Lane, sandbox_admin: httpx.Client
) -> None:
    warm_up(lane)
    faults(sandbox_admin, drop_after_commit_next=1)
    job = shopatron_job(unique("drop"))

    (job_id,) = lane.run([job])

    history = lane.events.of(job_id)
    stored = stored_for(sandbox_admin, job)
    assert [(e.status, e.attempt, e.reconciled) for e in history] == [("accepted", 1, True)]
    assert [str(o["orderID"]) for o in stored] == [history[0].vendor_order_id]


def test_a_request_lost_before_the_vendor_stored_it_is_sent_again(
    shopatron_worker: WorkerProcess, lane: Lane, sandbox_admin: httpx.Client
) -> None:
    warm_up(lane)
    faults(sandbox_admin, reset_next=1)
    job = shopatron_job(unique("lost"))

    (job_id,) = lane.run([job])

    history = lane.events.of(job_id)
    assert [(e.status, e.attempt) for e in history] == [
        ("retry_scheduled", 1),
        ("accepted", 2),
    ]
    assert history[0].error is not None
    assert "the vendor does not have the order" in history[0].error.message
    stored = stored_for(sandbox_admin, job)
    assert len(stored) == 1


def test_a_job_from_a_producer_that_skipped_the_vendor_check_is_rejected_by_the_worker_alike(
    shopatron_worker: WorkerProcess,
    lane: Lane,
    sandbox_admin: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from order_dispatch import catalog
    from producers.enqueue import InvalidJob

    job = shopatron_job(unique("noip"))
    del job["order"]["customer"]["ip"]
    with pytest.raises(InvalidJob) as door:
        lane.producer.enqueue(job)
    # An older producer, which knew no vendor requirements, queues it anyway.
    monkeypatch.setattr(catalog, "check", lambda job: [])

    (job_id,) = lane.run([job])

    [event] = lane.events.of(job_id)
    assert event.status == EventStatus.REJECTED and event.error is not None
    assert event.error.kind == "validation"
    assert [event.error.message] == door.value.errors
    assert event.error.code == "order.customer.ip"
    assert stored_for(sandbox_admin, job) == []
