"""The sender hands a vendor request straight to the client's transport
(:func:`worker.vendors.sender.exchange`): what the client would have added still reaches the
vendor (its default headers, its timeouts, the transport mounted for the URL), and the
answer is read whole."""

from __future__ import annotations

import asyncio

import httpx

from order_dispatch.contract import Job
from order_dispatch.settings import HttpSettings, Settings, VendorAccount
from tests.vendors.test_sourceorders import ORDER
from worker.http import USER_AGENT, new_client
from worker.outcomes import OutcomeKind
from worker.vendors.sender import Sender
from worker.vendors.sourceorders import SourceOrders

BASE_URL = "http://vendor.test/sourceorders"


def submit(client: httpx.AsyncClient) -> OutcomeKind:
    vendor = SourceOrders(
        VendorAccount.model_validate({"base_url": BASE_URL, "credentials": {"api_key": "k"}})
    )
    job = Job.model_validate({"vendor": "sourceorders", "order": ORDER})

    async def go() -> OutcomeKind:
        async with client:
            outcome = await Sender(client, Settings()).submit(vendor, job, vendor.translate(job))
            return outcome.kind

    return asyncio.run(go())


def answer(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            201,
            json={"orderId": "soo_1", "status": "received"},
            headers={"Set-Cookie": "session=abc"},
        )

    return httpx.MockTransport(handler)


def test_the_request_carries_the_clients_headers_and_timeouts() -> None:
    seen: list[httpx.Request] = []
    client = new_client(HttpSettings(connect_timeout_s=2.5, read_timeout_s=7.0))
    client._transport = answer(seen)  # the product's client, its transport swapped for a mock

    assert submit(client) is OutcomeKind.SUCCESS

    [request] = seen
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["Content-Type"] == "application/json"
    assert request.extensions["timeout"] == {
        "connect": 2.5, "read": 7.0, "write": 7.0, "pool": 7.0
    }
    assert str(request.url) == f"{BASE_URL}/v1/orders"


def test_the_transport_mounted_for_the_url_takes_the_request() -> None:
    default: list[httpx.Request] = []
    mounted: list[httpx.Request] = []
    client = httpx.AsyncClient(
        transport=answer(default), mounts={"http://vendor.test": answer(mounted)}
    )

    assert submit(client) is OutcomeKind.SUCCESS
    assert (len(mounted), len(default)) == (1, 0)


def test_no_cookie_a_vendor_sets_is_kept_for_the_next_request() -> None:
    seen: list[httpx.Request] = []
    client = httpx.AsyncClient(transport=answer(seen))

    assert submit(client) is OutcomeKind.SUCCESS
    assert submit(httpx.AsyncClient(transport=answer(seen), cookies=client.cookies)) is (
        OutcomeKind.SUCCESS
    )
    assert [r.headers.get("Cookie") for r in seen] == [None, None]
