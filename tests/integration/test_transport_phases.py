"""Transport errors classified by phase, through the transport the worker really uses.

``httpx-aiohttp`` reports a connection the vendor drops after storing an order as
``httpx.ConnectTimeout``; only the aiohttp cause tells that the request had been written. Each
case runs the real :class:`Sender` and its aiohttp-backed client against the sandbox over HTTP.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest

from order_dispatch.contract import ErrorKind, Job
from order_dispatch.settings import HttpSettings, Settings, VendorAccount
from order_dispatch_sandbox.runner import BackgroundSandbox, free_port
from order_dispatch_sandbox.sourceorders import DEFAULT_API_KEY
from tests.integration.conftest import order_job, unique
from worker.http import new_client
from worker.outcomes import Outcome, OutcomeKind
from worker.vendors.sender import Sender
from worker.vendors.sourceorders import SourceOrders

pytestmark = pytest.mark.integration


def send(base_url: str, settings: Settings | None = None, **http: Any) -> Outcome:
    settings = settings or Settings(http=HttpSettings(**http))
    account = VendorAccount(base_url=base_url, credentials={"api_key": DEFAULT_API_KEY})
    vendor = SourceOrders(account)
    job = Job.model_validate(order_job(unique("phase")))

    async def go() -> Outcome:
        client = new_client(settings.http)
        try:
            return await Sender(client, settings).submit(vendor, job, vendor.translate(job))
        finally:
            await client.aclose()

    return asyncio.run(go())


def stored(admin: httpx.Client) -> int:
    return len(admin.get("/_sandbox/orders", params={"vendor": "sourceorders"}).json()["orders"])


@pytest.mark.parametrize(
    ("fault", "error_kind"),
    [
        ({"drop_after_commit_next": 1}, ErrorKind.TRANSPORT),
        ({"reset_next": 1}, ErrorKind.TRANSPORT),
        ({"hang_next": 1, "hang_s": 3}, ErrorKind.TIMEOUT),
    ],
)
def test_a_request_that_reached_the_vendor_is_never_called_unsent(
    sandbox: BackgroundSandbox,
    sandbox_admin: httpx.Client,
    fault: dict[str, Any],
    error_kind: ErrorKind,
) -> None:
    sandbox_admin.post("/_sandbox/faults/sourceorders", json=fault).raise_for_status()

    outcome = send(sandbox.vendor_url("sourceorders"), read_timeout_s=1, deadline_s=10)

    assert outcome.kind is OutcomeKind.UNKNOWN, outcome.error
    assert outcome.error is not None and outcome.error.kind is error_kind
    assert outcome.error.retryable  # unknown: only an operation safe to repeat is sent again


def test_the_dropped_commit_really_was_stored(
    sandbox: BackgroundSandbox, sandbox_admin: httpx.Client
) -> None:
    sandbox_admin.post("/_sandbox/faults/sourceorders", json={"drop_after_commit_next": 1})

    outcome = send(sandbox.vendor_url("sourceorders"))

    assert outcome.kind is OutcomeKind.UNKNOWN
    assert stored(sandbox_admin) == 1  # resending would have made a duplicate


def test_a_refused_connection_was_not_sent_and_retries() -> None:
    port = free_port()  # nothing listens there

    outcome = send(f"http://127.0.0.1:{port}/sourceorders")

    assert outcome.kind is OutcomeKind.RETRYABLE
    assert outcome.error is not None and "cannot connect" in outcome.error.message


def test_a_connect_timeout_was_not_sent_and_retries() -> None:
    # A listening socket whose accept queue is full: the TCP handshake never completes.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        fillers = []
        for _ in range(8):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        try:
            outcome = send(
                f"http://127.0.0.1:{port}/sourceorders", connect_timeout_s=0.5, deadline_s=40
            )
        finally:
            for s in fillers:
                s.close()

    assert outcome.kind is OutcomeKind.RETRYABLE, outcome.error
    assert outcome.error is not None and outcome.error.kind is ErrorKind.TIMEOUT


def test_the_product_deadline_ends_a_slow_call_as_unknown(
    sandbox: BackgroundSandbox, sandbox_admin: httpx.Client
) -> None:
    sandbox_admin.post("/_sandbox/faults/sourceorders", json={"latency": {"ms": 3000}})

    # Settings refuse a deadline below the timeouts; built unchecked here to see it fire alone.
    settings = Settings.model_construct(http=HttpSettings(read_timeout_s=30, deadline_s=0.5))

    outcome = send(sandbox.vendor_url("sourceorders"), settings)

    assert outcome.kind is OutcomeKind.UNKNOWN
    assert outcome.error is not None and "deadline" in outcome.error.message
