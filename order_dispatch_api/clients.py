"""The API's Redis clients, all made here through the product's client factory
(:mod:`order_dispatch.redis_client`: one server, or the master that Sentinel names)."""

from __future__ import annotations

import redis
import redis.asyncio

from order_dispatch.redis_client import async_redis_client, redis_client
from order_dispatch.settings import Settings


def sync_client(settings: Settings) -> redis.Redis:
    """The blocking client: the producer (enqueue) and the operators' reads, in worker threads."""
    return redis_client(
        settings, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30
    )


def async_client(settings: Settings, *, long_poll: bool = False) -> redis.asyncio.Redis:
    """The asyncio client: keys and rate limits, job status, result events. ``long_poll``: for
    blocking stream reads, with a socket timeout past the longest wait."""
    timeout = settings.api.max_wait_s + 5 if long_poll else 5
    return async_redis_client(
        settings,
        socket_timeout=timeout,
        socket_connect_timeout=2,
        health_check_interval=30,
        max_connections=settings.api.max_concurrency,
    )
