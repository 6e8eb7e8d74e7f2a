"""The sender's token handling when the vendor refuses tokens: a revoked token is replaced, a
token revoked while another task fetched it is replaced once more, a real refusal ends."""

from __future__ import annotations

import asyncio
import itertools
import json

import httpx

from order_dispatch.contract import Job
from order_dispatch.settings import Settings
from tests.vendors.test_sellercloud import ACCOUNT, ORDER, TOKEN_URL
from worker.outcomes import Outcome, OutcomeKind
from worker.vendors.sellercloud import SellerCloud
from worker.vendors.sender import Sender


def run(accepted_tokens: set[str], jobs: int = 1) -> tuple[list[Outcome], list[str], int]:
    """Submit ``jobs`` creates at once; tokens are issued as t1, t2, ...; the vendor accepts
    only ``accepted_tokens``. The outcomes, the tokens each order request carried, fetches."""
    numbers = itertools.count(1)
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            token = f"t{next(numbers)}"
            return httpx.Response(200, json={"access_token": token, "expires_in": 1800})
        token = request.headers["Authorization"].removeprefix("Bearer ")
        sent.append(token)
        if token not in accepted_tokens:
            return httpx.Response(401, json={"Message": "Authorization has been denied"})
        return httpx.Response(200, content=json.dumps(1000 + len(sent)).encode())

    vendor = SellerCloud(ACCOUNT)
    job = Job.model_validate({"vendor": "sellercloud", "order": ORDER})

    async def go() -> tuple[list[Outcome], int]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            sender = Sender(client, Settings())
            outcomes = await asyncio.gather(
                *(sender.submit(vendor, job, vendor.translate(job)) for _ in range(jobs))
            )
            return list(outcomes), sender.tokens.fetches

    outcomes, fetches = asyncio.run(go())
    return outcomes, sent, fetches


def test_a_revoked_token_is_replaced_and_the_request_resent() -> None:
    [outcome], sent, fetches = run({"t2"})

    assert outcome.kind is OutcomeKind.SUCCESS
    assert (sent, fetches) == (["t1", "t2"], 2)


def test_a_refusal_of_a_token_fetched_after_a_refusal_is_real() -> None:
    [outcome], sent, fetches = run(set())

    assert outcome.kind is OutcomeKind.PERMANENT
    assert outcome.error is not None and outcome.error.kind.value == "auth"
    assert (sent, fetches) == (["t1", "t2"], 2)  # no third try, no loop


def test_a_token_revoked_while_another_task_fetched_it_is_replaced_once_more() -> None:
    # Two tasks share t1 (refused). One of them fetches t2, which the vendor also refuses
    # (revoked as it was issued); the other, which used t2 without fetching it, fetches t3.
    outcomes, sent, fetches = run({"t3"}, jobs=2)

    assert [o.kind for o in outcomes].count(OutcomeKind.SUCCESS) >= 1
    assert sent.count("t3") >= 1 and fetches == 3
