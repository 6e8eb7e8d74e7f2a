"""The benchmark's baseline: the same job done the way Celery's defaults and a plain task do it.

Nothing here is the product. It is what a developer writes first: Celery with every default
(prefork pool, one child per core, prefetch multiplier 4, early acks, no task events), the
whole job in the message, and a task that validates it, makes one blocking ``httpx`` request
and writes the outcome to a Redis stream. ``order-dispatch bench`` starts it as
``celery -A benchmarks.baseline worker -Q <queue>``; its environment names the broker
(``BENCH_BASELINE_REDIS_URL``), the stream (``BENCH_BASELINE_STREAM``) and the vendor
(``BENCH_BASELINE_BASE_URL``, ``BENCH_BASELINE_API_KEY``).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import httpx
import redis
from celery import Celery

from order_dispatch.contract import Job
from order_dispatch.settings import VendorAccount
from worker.vendors.sourceorders import SourceOrders

TASK = "bench.baseline.dispatch"

app = Celery("bench_baseline", broker=os.environ.get("BENCH_BASELINE_REDIS_URL"))


@cache
def _vendor() -> SourceOrders:
    account = VendorAccount.model_validate(
        {
            "base_url": os.environ["BENCH_BASELINE_BASE_URL"],
            "credentials": {"api_key": os.environ["BENCH_BASELINE_API_KEY"]},
        }
    )
    return SourceOrders(account)


@cache
def _http() -> httpx.Client:
    # One client per pool child (created after the fork), so connections are reused.
    return httpx.Client(timeout=30)


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(os.environ["BENCH_BASELINE_REDIS_URL"])


@app.task(name=TASK)
def dispatch(job: dict[str, Any]) -> None:
    """Validate ``job``, send it to the vendor, write the outcome to the result stream."""
    order = Job.model_validate(job)
    vendor = _vendor()
    request = vendor.authorize(vendor.translate(order), None)
    response = _http().request(
        request.method,
        request.url(vendor.account.base_url),
        content=request.body(),
        headers={**request.headers, "Content-Type": "application/json"},
    )
    status = "accepted" if response.is_success else "rejected"
    _redis().xadd(os.environ["BENCH_BASELINE_STREAM"], {"job_id": order.job_id, "status": status})
