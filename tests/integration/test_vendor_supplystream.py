"""SupplyStream end to end: producer -> Redis -> a real worker -> the iHub sandbox over HTTP.

One worker serves three SupplyStream accounts: ``default`` (JSON), ``xml`` (XML both ways) and
``nodc`` (a DC code the sandbox does not map, so every create is refused in an HTTP 200).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from order_dispatch.contract import Job, ResultEvent
from order_dispatch.keys import Keys
from order_dispatch_cli.demo import demo_accounts
from order_dispatch_sandbox.runner import BackgroundSandbox
from producers.enqueue import Producer
from tests.integration.conftest import Events, WorkerProcess, unique
from worker.vendors.supplystream import client_guid

pytestmark = pytest.mark.integration

NOTES = 'Ring twice & wait — "fragile" <glass> ☺'


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"odt-ss-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def ss_worker(
    prefix: str, sandbox: BackgroundSandbox, worker_env_factory: Callable[..., dict[str, str]]
) -> Iterator[WorkerProcess]:
    default = demo_accounts(sandbox)["supplystream"]["default"]
    accounts = {
        "supplystream": {
            "default": default,
            "xml": {**default, "options": {"dc_code": "DC1", "format": "xml"}},
            "nodc": {**default, "options": {"dc_code": "NOPE"}},
        }
    }
    env = worker_env_factory(prefix, ORDER_DISPATCH_ACCOUNTS=json.dumps(accounts))
    proc = WorkerProcess(env, concurrency=4, vendors="supplystream")
    yield proc
    proc.close()


@pytest.fixture
def ss(
    ss_worker: WorkerProcess, redis_client: redis.Redis, prefix: str
) -> tuple[Producer, Events]:
    return Producer(redis_client, key_prefix=prefix), Events(redis_client, Keys(prefix))


def create_job(order_id: str, account: str = "default") -> dict[str, Any]:
    return {
        "vendor": "supplystream",
        "account": account,
        "order": {
            "order_id": order_id,
            "placed_at": "2026-11-20T10:00:00+00:00",
            "currency": "GBP",
            "customer": {"email": "zoe@example.com", "first_name": "Zoë", "last_name": "O'Brien"},
            "ship_to": {
                "company": "Jones & Sons <Windsor>",
                "line1": "23 Victoria Street",
                "city": "Windsor",
                "postal_code": "SL4 1HE",
                "country": "GB",
            },
            "items": [{"sku": "100083", "quantity": 2, "unit_price": "9.99"}],
            "totals": {"shipping": "4.95"},
            "notes": {"customer": NOTES},
        },
    }


def held(admin: httpx.Client) -> tuple[list[dict[str, Any]], int]:
    """The orders the sandbox holds, and how many requests it has had."""
    answer = admin.get("/_sandbox/orders", params={"vendor": "supplystream"}).json()
    return answer["orders"], answer["requests"]


def run(ss: tuple[Producer, Events], job: dict[str, Any]) -> tuple[ResultEvent, list[ResultEvent]]:
    """Enqueue ``job``; its terminal event and every event it had."""
    producer, events = ss
    receipt = producer.enqueue(job)
    done = events.wait_terminal([receipt.job_id])
    assert receipt.job_id in done, f"no terminal event for {receipt.job_id}"
    return done[receipt.job_id], events.of(receipt.job_id)


def test_a_json_and_an_xml_create_are_accepted_with_their_guids(
    ss: tuple[Producer, Events], sandbox_admin: httpx.Client
) -> None:
    json_job, xml_job = create_job(unique("ss-json")), create_job(unique("ss-xml"), "xml")

    for job in (json_job, xml_job):
        event, history = run(ss, job)

        guid = client_guid(Job.model_validate(job))
        assert (event.status, event.vendor_order_id, event.attempt) == ("accepted", guid, 1)
        assert [e.status for e in history] == ["accepted"]
        assert event.vendor_response is None  # success events carry no vendor body
    orders, _ = held(sandbox_admin)
    assert [(o["SalesOrderNumber"], o["Format"]) for o in orders] == [
        (json_job["order"]["order_id"], "json"),
        (xml_job["order"]["order_id"], "xml"),
    ]
    for order in orders:
        request = order["Request"]
        assert request["WebSalesOrder"]["Notes"] == NOTES
        assert request["DeliveryDetails"]["Line1"] == "Jones & Sons <Windsor>"
        assert request["DeliveryDetails"]["FirstName"] == "Zoë"
    assert orders[1]["Request"]["WebSalesOrder"]["SubTotal"] == "19.98"  # XML: text


def test_get_status_and_cancel_are_accepted(
    ss: tuple[Producer, Events], sandbox_admin: httpx.Client
) -> None:
    create = create_job(unique("ss-cancel"))
    created, _ = run(ss, create)
    order_id, guid = create["order"]["order_id"], created.vendor_order_id
    reference = {"vendor": "supplystream", "order_id": order_id, "vendor_order_id": guid}

    status, _ = run(ss, {**reference, "operation": "get_status"})
    cancel_doc = {**create, **reference, "operation": "cancel"}
    cancel_doc["order"] = {**create["order"], "vendor_options": {"reason_code": "001"}}
    cancelled, _ = run(ss, cancel_doc)

    assert (status.status, status.vendor_order_id, status.vendor_status) == (
        "accepted", guid, "To Be Picked"
    )  # fmt: skip
    assert (cancelled.status, cancelled.vendor_order_id) == ("accepted", guid)
    orders, _ = held(sandbox_admin)
    assert [(o["GUID"], o["Status"], o["ReasonCode"]) for o in orders] == [
        (guid, "Cancelled", "001")
    ]


def test_success_false_in_a_200_is_rejected_with_the_vendors_message(
    ss: tuple[Producer, Events], sandbox_admin: httpx.Client
) -> None:
    event, history = run(ss, create_job(unique("ss-nodc"), "nodc"))

    assert event.status == "rejected"
    assert event.error is not None
    assert (event.error.kind, event.error.http_status, event.error.code) == (
        "vendor_rejected", 200, "100"
    )  # fmt: skip
    assert event.error.message == "Error. Invalid Mapping - DC"
    assert event.error.retryable is False
    assert [e.status for e in history] == ["rejected"]
    assert held(sandbox_admin)[0] == []


def test_a_dropped_answer_to_a_create_is_reconciled_by_its_guid_never_resent(
    ss: tuple[Producer, Events], sandbox_admin: httpx.Client
) -> None:
    sandbox_admin.post(
        "/_sandbox/faults/supplystream", json={"drop_after_commit_next": 1}
    ).raise_for_status()
    job = create_job(unique("ss-drop"))

    event, history = run(ss, job)

    orders, requests = held(sandbox_admin)
    guid = client_guid(Job.model_validate(job))
    assert [o["GUID"] for o in orders] == [guid]  # the order exists once
    assert requests == 2  # the create, then the status read by its GUID: no second create
    assert (event.status, event.vendor_order_id, event.reconciled) == ("accepted", guid, True)
    assert event.vendor_status == "To Be Picked"
    assert [e.status for e in history] == ["accepted"]


def test_a_create_the_vendor_already_has_is_reconciled_not_duplicated(
    ss: tuple[Producer, Events], sandbox_admin: httpx.Client
) -> None:
    job = create_job(unique("ss-again"))
    first, _ = run(ss, job)

    # The same order again under another job id (a replay by another producer).
    again, history = run(ss, {**job, "job_id": f"replay-{uuid.uuid4().hex[:8]}"})

    assert again.status == "accepted" and again.reconciled is True
    assert again.vendor_order_id == first.vendor_order_id
    assert [e.status for e in history] == ["accepted"]
    assert len(held(sandbox_admin)[0]) == 1
