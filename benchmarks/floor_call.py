"""The floor with the vendor call: the product's Celery setup running a task that makes the
vendor's HTTP call the product's way, then writes its order's result event.

The task hands one request to the process's event loop over the product's HTTP client
(:func:`worker.http.new_client`, on :class:`worker.loop.EventLoopThread`), sent as the product
sends it (:func:`worker.vendors.sender.exchange`), waits for the answer on its thread as the
product's task does, and writes the event. No ledger, no rate limit, no
translation (the body is translated once at import), no logs. The gap between this and
:mod:`benchmarks.floor` is what one vendor call costs inside Celery; the gap between this and
the product is the pipeline's own cost. ``order-dispatch bench`` starts it as ``celery -A
benchmarks.floor_call worker``; its environment names the stream (``BENCH_FLOOR_STREAM``),
Redis (``ORDER_DISPATCH_REDIS_URL``) and the vendor (``BENCH_FLOOR_VENDOR_URL``,
``BENCH_FLOOR_API_KEY``). Its task joins the floor's Celery app.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import httpx

from benchmarks.floor import app, write_event
from order_dispatch.contract import Job
from order_dispatch.settings import HttpSettings, VendorAccount
from worker.http import new_client
from worker.loop import EventLoopThread
from worker.vendors.sender import exchange
from worker.vendors.sourceorders import SourceOrders

TASK = "bench.floor_call.dispatch"
__all__ = ["TASK", "app", "dispatch"]


@cache
def _vendor() -> tuple[EventLoopThread, httpx.AsyncClient, str, bytes, dict[str, str]]:
    from benchmarks.harness import order

    base_url = os.environ["BENCH_FLOOR_VENDOR_URL"]
    vendor = SourceOrders(VendorAccount.model_validate(
        {"base_url": base_url, "credentials": {"api_key": os.environ["BENCH_FLOOR_API_KEY"]}}))
    request = vendor.authorize(vendor.translate(Job.model_validate(order(0, "fc"))), None)
    loop = EventLoopThread()
    client = loop.run(_new_client())
    headers = {**request.headers, "Content-Type": "application/json"}
    return loop, client, request.url(base_url), request.body() or b"", headers


async def _new_client() -> httpx.AsyncClient:
    return new_client(HttpSettings())


async def _post(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]) -> int:
    request = client.build_request("POST", url, content=body, headers=headers)
    response = await exchange(client, request)
    return response.status


@app.task(name=TASK, ignore_result=True)
def dispatch(**kwargs: Any) -> str:
    """Make the vendor call, then write the job's terminal event."""
    loop, client, url, body, headers = _vendor()
    status = loop.run(_post(client, url, body, headers))
    return write_event(kwargs["job_id"], "accepted" if status < 300 else "rejected")
