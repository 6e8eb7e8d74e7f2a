"""Prometheus metrics of the API: requests by route, method and status, and their latency.

With several API processes (``--workers N``) the values live in files under
``PROMETHEUS_MULTIPROC_DIR`` (set by ``order-dispatch api``) and a scrape of any process adds up
all of them.
"""

from __future__ import annotations

import functools
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "order_dispatch_api_requests",
    "HTTP API requests answered, by route template, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "order_dispatch_api_request_seconds",
    "HTTP API request latency (until the answer is sent), by route template and method.",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)


@functools.lru_cache(maxsize=1024)
def _count(route: str, method: str, status: int) -> Counter:
    return REQUESTS.labels(route, method, str(status))


@functools.lru_cache(maxsize=1024)
def _latency(route: str, method: str) -> Histogram:
    return LATENCY.labels(route, method)


def observe(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request and its latency. Each route template, method and status
    keeps its own series (routes are templates, so their number is bounded)."""
    _count(route, method, status).inc()
    _latency(route, method).observe(seconds)


def exposition() -> tuple[bytes, str]:
    """The metrics in the text exposition format, and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
