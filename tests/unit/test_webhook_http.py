"""A webhook delivery's HTTP on a real local receiver: signed as Standard Webhooks verifies,
redirects not followed, the answer read up to 64 KB, uncompressed, and an answer lost after the
request went out is an unknown outcome (sent again: the receiver dedupes)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from standardwebhooks import Webhook

from order_dispatch.contract import EventStatus, Job, Operation, ResultEvent
from order_dispatch.settings import Settings
from order_dispatch.webhooks import Endpoint, Secret, delivery_job, new_secret
from worker.http import new_webhook_session
from worker.outcomes import Outcome, OutcomeKind
from worker.vendors.base import VendorResponse
from worker.vendors.sender import Sender
from worker.vendors.webhooks import BODY_LIMIT, Webhooks

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _event() -> ResultEvent:
    return ResultEvent(
        event_id="sophio:default:create:abc:1.deadbeef:1:accepted",
        job_id="sophio:default:create:abc",
        order_id="A-1",
        vendor="sophio",
        account="default",
        operation=Operation.CREATE,
        status=EventStatus.ACCEPTED,
        terminal=True,
        attempt=1,
        occurred_at=datetime(2026, 12, 1, tzinfo=UTC),
    )


class Receiver:
    """A local receiver whose ``/hook`` runs the handler a test gives it."""

    def __init__(self) -> None:
        self.handler: Handler | None = None
        self.seen: list[tuple[str, dict[str, str], bytes]] = []

    async def hook(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append((request.path, dict(request.headers), body))
        assert self.handler is not None
        return await self.handler(request)


async def _deliver(handler: Handler, secret: str, path: str = "/hook") -> tuple[Receiver, Outcome]:
    """Start a receiver answering with ``handler``, send one delivery to it: what it saw, and
    the delivery's outcome."""
    found = Receiver()
    found.handler = handler
    app = web.Application()
    app.router.add_post("/hook", found.hook)
    app.router.add_post("/elsewhere", found.hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        outcome = await _send(f"http://127.0.0.1:{port}{path}", secret=secret)
    finally:
        await runner.cleanup()
    return found, outcome


async def _send(url: str, *, secret: str) -> Outcome:
    settings = Settings(webhooks_allow_private=True)
    endpoint = Endpoint(
        id="ep_0123456789abcdef", url=url, created_at=datetime.now(UTC),
        secrets=[Secret(value=secret)],
    )  # fmt: skip
    vendor = Webhooks(endpoint)
    session = new_webhook_session(settings.http, allow_private=True)
    sender = Sender(None, settings, webhook_session=session)  # type: ignore[arg-type]
    job = delivery_job(endpoint.id, _event())
    try:
        outcome = await sender.submit(vendor, job, vendor.translate(job))
    finally:
        await session.close()
    return outcome


def test_a_delivery_verifies_and_asks_for_no_compression() -> None:
    secret = new_secret()
    found, outcome = asyncio.run(_deliver(lambda request: _answer(204), secret))
    assert outcome.kind is OutcomeKind.SUCCESS
    [(_, headers, body)] = found.seen
    Webhook(secret).verify(body, headers)
    assert headers["Accept-Encoding"] == "identity"


def test_a_redirect_is_not_followed() -> None:
    found, outcome = asyncio.run(
        _deliver(lambda request: _answer(307, headers={"Location": "/elsewhere"}), new_secret())
    )
    assert outcome.kind is OutcomeKind.RETRYABLE
    assert [path for path, _, _ in found.seen] == ["/hook"]


def test_the_answer_is_read_up_to_64_kb(monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[int] = []
    original = Webhooks.read

    def spy(self: Webhooks, job: Job, response: VendorResponse) -> Outcome:
        read.append(len(response.body))
        return original(self, job, response)

    monkeypatch.setattr(Webhooks, "read", spy)
    _, outcome = asyncio.run(
        _deliver(lambda request: _answer(500, body=b"x" * (4 * BODY_LIMIT)), new_secret())
    )
    assert outcome.kind is OutcomeKind.RETRYABLE
    assert read == [BODY_LIMIT]


def test_an_answer_lost_after_the_request_went_out_is_unknown() -> None:
    async def drop(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        await asyncio.sleep(0.1)
        return web.Response(status=204)

    found, outcome = asyncio.run(_deliver(drop, new_secret()))
    assert outcome.kind is OutcomeKind.UNKNOWN
    assert len(found.seen) == 1


async def _answer(status: int, **fields: Any) -> web.Response:
    return web.Response(status=status, **fields)
