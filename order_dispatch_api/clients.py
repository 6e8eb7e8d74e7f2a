"""The API's Redis clients, all made here (one place to change for Sentinel or TLS)."""

from __future__ import annotations

import redis
import redis.asyncio

from order_dispatch.settings import Settings


def sync_client(settings: Settings) -> redis.Redis:
    """The blocking client: the producer (enqueue) and the operators' reads, in worker threads."""
    return redis.Redis.from_url(
        settings.redis_url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30
    )


def async_client(settings: Settings, *, long_poll: bool = False) -> redis.asyncio.Redis:
    """The asyncio client: keys and rate limits, job status, result events. ``long_poll``: for
    blocking stream reads, with a socket timeout past the longest wait."""
    timeout = settings.api.max_wait_s + 5 if long_poll else 5
    return redis.asyncio.Redis.from_url(
        settings.redis_url,
        socket_timeout=timeout,
        socket_connect_timeout=2,
        health_check_interval=30,
        max_connections=settings.api.max_concurrency,
    )
