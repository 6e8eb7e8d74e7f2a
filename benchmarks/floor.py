"""The benchmark's Celery floor: what Celery itself costs per order in the product's setup.

The product's Celery configuration (``celeryconfig``: thread pool, late acks, prefetch 1, the
product's transport and consumer, task events on) and the same ids-only messages, running a
task that does nothing but write its order's result event. Whatever the product does beyond
this (ledger, gate, vendor call, record) is the pipeline's cost; this is the most the queue
lets one process carry. ``order-dispatch bench`` starts it as ``celery -A benchmarks.floor
worker``; its environment names the stream (``BENCH_FLOOR_STREAM``) and, as for the product,
Redis (``ORDER_DISPATCH_REDIS_URL``).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import redis
from celery import Celery

TASK = "bench.floor.dispatch"

app = Celery("bench_floor")
app.config_from_object("worker.celeryconfig")


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(os.environ["ORDER_DISPATCH_REDIS_URL"])


def write_event(job_id: str, status: str) -> str:
    """The job's result event on the run's stream (``BENCH_FLOOR_STREAM``); ``status``."""
    _redis().xadd(os.environ["BENCH_FLOOR_STREAM"], {"job_id": job_id, "status": status})
    return status


@app.task(name=TASK, ignore_result=True)
def dispatch(**kwargs: Any) -> str:
    """Write the job's terminal event, nothing else."""
    return write_event(kwargs["job_id"], "accepted")
