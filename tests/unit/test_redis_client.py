"""The product's Redis client factory: one server, or the master Sentinel names."""

from __future__ import annotations

import pytest
import redis
from pydantic import ValidationError
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelConnectionPool
from redis.sentinel import SentinelConnectionPool

from order_dispatch.redis_client import (
    NotReplicated,
    async_redis_client,
    broker_transport_options,
    broker_url,
    redis_client,
    wait_for_replicas,
)
from order_dispatch.settings import Settings


def test_without_sentinels_the_url_names_the_server() -> None:
    settings = Settings(redis_url="redis://10.0.0.1:6380/2")
    client = redis_client(settings)
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("10.0.0.1", 6380, 2)
    assert broker_url(settings) == "redis://10.0.0.1:6380/2"
    assert broker_transport_options(settings) == {}
    assert settings.wait_replicas == 0


def test_with_sentinels_the_master_is_asked_for_and_the_url_gives_db_and_password() -> None:
    settings = Settings(
        redis_url="redis://:s%40cret@ignored:1/3",
        redis_sentinels="10.0.0.5:26379, 10.0.0.6:26380",
        redis_sentinel_master="orders",
    )
    client = redis_client(settings)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "orders"
    assert pool.connection_kwargs["db"] == 3 and pool.connection_kwargs["password"] == "s@cret"
    assert [
        (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
        for s in pool.sentinel_manager.sentinels
    ] == [("10.0.0.5", 26379), ("10.0.0.6", 26380)]
    assert broker_url(settings) == (
        "sentinel://:s%40cret@10.0.0.5:26379/3;sentinel://:s%40cret@10.0.0.6:26380/3"
    )
    assert broker_transport_options(settings)["master_name"] == "orders"
    assert settings.wait_replicas == 1


def test_the_api_s_asyncio_client_follows_the_same_settings() -> None:
    plain = async_redis_client(Settings(redis_url="redis://10.0.0.1:6380/2"))
    kwargs = plain.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("10.0.0.1", 6380, 2)

    sentinel = async_redis_client(
        Settings(
            redis_url="redis://:pw@ignored:1/4",
            redis_sentinels="10.0.0.5:26379",
            redis_sentinel_master="orders",
        ),
        max_connections=7,
    )
    pool = sentinel.connection_pool
    assert isinstance(pool, AsyncSentinelConnectionPool)
    assert pool.service_name == "orders"
    assert pool.connection_kwargs["db"] == 4 and pool.connection_kwargs["password"] == "pw"
    assert pool.max_connections == 7


def test_an_explicit_url_bypasses_sentinel() -> None:
    settings = Settings(redis_sentinels="10.0.0.5:26379")
    client = redis_client(settings, url="redis://127.0.0.1:7000/0")
    assert client.connection_pool.connection_kwargs["port"] == 7000


def test_a_sentinel_that_is_not_host_port_is_named() -> None:
    with pytest.raises(ValueError, match="'nowhere' is not host:port"):
        _ = Settings(redis_sentinels="nowhere").sentinels


def test_a_heartbeat_too_close_to_death_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least twice"):
        Settings(fetch_heartbeat_s=20, fetch_dead_after_s=30)


def test_waiting_for_replicas_that_are_not_there_fails(redis_client: redis.Redis) -> None:
    assert wait_for_replicas(redis_client, Settings()) == 0  # none asked for: no wait
    settings = Settings(redis_wait_replicas=1, redis_wait_timeout_ms=50)
    with pytest.raises(NotReplicated, match="0 of 1 replicas"):
        wait_for_replicas(redis_client, settings)


def test_config_show_masks_the_password_of_every_sentinel_url() -> None:
    from order_dispatch_cli.config import effective

    settings = Settings(
        redis_url="redis://:s3cret@x/0", redis_sentinels="10.0.0.5:26379,10.0.0.6:26380"
    )
    shown = effective(settings)["derived"]
    assert "s3cret" not in shown["broker"] and shown["broker"].count("***") == 2
    assert shown["sentinels"] == ["10.0.0.5:26379", "10.0.0.6:26380"]
