"""Shared fixtures: a private Redis server for the whole session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

from order_dispatch_cli.embedded_redis import EmbeddedRedis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    """A redis-server of our own (isolated from whatever else uses the machine's Redis)."""
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read the developer's own ORDER_DISPATCH_* or REDIS_URL settings."""
    for name in list(os.environ):
        if name.startswith("ORDER_DISPATCH_") or name == "REDIS_URL":
            monkeypatch.delenv(name)
    from order_dispatch.settings import get_settings

    get_settings.cache_clear()
