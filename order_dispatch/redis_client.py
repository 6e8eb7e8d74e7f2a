"""Every Redis client of the product, from the settings: one server, or the master Sentinel names.

Without Sentinel, ``redis_url`` names the server. With ``redis_sentinels`` set (comma-separated
``host:port`` pairs) and ``redis_sentinel_master`` (the name the sentinels monitor), each client
asks the sentinels for the current master and, after a failover, reconnects to the new one;
``redis_url`` still gives the database number, the password and TLS. Producers, workers, the
job store, metrics, health and the API all build their clients here, and Celery's broker uses
kombu's ``sentinel://`` transport from the same settings (:func:`broker_url`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

from order_dispatch.keys import Keys
from order_dispatch.settings import Settings, get_settings

#: Seconds a sentinel may take to answer which server is the master.
SENTINEL_TIMEOUT_S = 2.0


def redis_client(
    settings: Settings | None = None, *, url: str | None = None, **kwargs: Any
) -> redis.Redis:
    """A Redis client on the product's Redis: the master the sentinels name when Sentinel is
    configured, else the server of ``redis_url``. ``url`` (a command's ``--redis-url``) names a
    server explicitly and bypasses Sentinel; ``kwargs`` go to redis-py (``socket_timeout``...).
    """
    settings = settings or get_settings()
    if url is not None and url != settings.redis_url:
        return redis.Redis.from_url(url, **kwargs)
    sentinels = settings.sentinels
    if not sentinels:
        return redis.Redis.from_url(settings.redis_url, **kwargs)
    client: redis.Redis = _sentinel(settings).master_for(
        settings.redis_sentinel_master,
        redis_class=redis.Redis,
        **_server_kwargs(settings),
        **kwargs,
    )
    return client


def async_redis_client(settings: Settings | None = None, **kwargs: Any) -> redis.asyncio.Redis:
    """:func:`redis_client` for asyncio code (the HTTP API): the master the sentinels name when
    Sentinel is configured, else the server of ``redis_url``."""
    settings = settings or get_settings()
    sentinels = settings.sentinels
    if not sentinels:
        return redis.asyncio.Redis.from_url(settings.redis_url, **kwargs)
    sentinel_kwargs: dict[str, Any] = {"socket_timeout": SENTINEL_TIMEOUT_S}
    if settings.redis_sentinel_password is not None:
        sentinel_kwargs["password"] = settings.redis_sentinel_password.get_secret_value()
    sentinel = AsyncSentinel(sentinels, sentinel_kwargs=sentinel_kwargs)
    client: redis.asyncio.Redis = sentinel.master_for(
        settings.redis_sentinel_master,
        redis_class=redis.asyncio.Redis,
        **_server_kwargs(settings),
        **kwargs,
    )
    return client


class NotReplicated(redis.RedisError):
    """Fewer replicas than ``redis_wait_replicas`` confirmed a write within the timeout."""


def wait_for_replicas(client: redis.Redis, settings: Settings | None = None) -> int:
    """Block until ``wait_replicas`` replicas hold every write the master accepted so far (on
    any connection: a small write on this one puts its replication offset past them, then
    ``WAIT``); the replicas that confirmed. Raises :class:`NotReplicated` when too few did
    within ``redis_wait_timeout_ms``; returns 0 at once when no replica is asked for."""
    settings = settings or get_settings()
    wanted = settings.wait_replicas
    if wanted <= 0:
        return 0
    pipe = client.pipeline(transaction=False)
    pipe.set(Keys(settings.key_prefix).replication_probe, "1", px=60_000)
    pipe.wait(wanted, settings.redis_wait_timeout_ms)
    _, confirmed = pipe.execute()
    if int(confirmed) < wanted:
        raise NotReplicated(
            f"{confirmed} of {wanted} replicas confirmed the write within "
            f"{settings.redis_wait_timeout_ms} ms"
        )
    return int(confirmed)


def _sentinel(settings: Settings) -> Sentinel:
    sentinel_kwargs: dict[str, Any] = {"socket_timeout": SENTINEL_TIMEOUT_S}
    if settings.redis_sentinel_password is not None:
        sentinel_kwargs["password"] = settings.redis_sentinel_password.get_secret_value()
    return Sentinel(settings.sentinels, sentinel_kwargs=sentinel_kwargs)


def _server_kwargs(settings: Settings) -> dict[str, Any]:
    """What ``redis_url`` says of the server besides where it is: database, user, password,
    TLS."""
    parts = urlsplit(settings.redis_url)
    found: dict[str, Any] = {}
    path = parts.path.lstrip("/")
    if path.isdigit():
        found["db"] = int(path)
    if parts.username:
        found["username"] = unquote(parts.username)
    if parts.password:
        found["password"] = unquote(parts.password)
    if parts.scheme == "rediss":
        found["ssl"] = True
    return found


def broker_url(settings: Settings) -> str:
    """Celery's broker URL: ``broker_url``; else, with Sentinel, kombu's
    ``sentinel://host:port;sentinel://host:port/<db>`` (the master's name goes in the transport
    options, :func:`broker_transport_options`); else ``redis_url``."""
    if settings.broker_url or not settings.sentinels:
        return settings.broker
    parts = urlsplit(settings.redis_url)
    auth = parts.netloc.rpartition("@")[0]  # the master's user and password, as written
    user = f"{auth}@" if auth else ""
    db = _server_kwargs(settings).get("db", 0)
    return ";".join(f"sentinel://{user}{_host(h)}:{p}/{db}" for h, p in settings.sentinels)


def broker_transport_options(settings: Settings) -> dict[str, Any]:
    """What kombu's Sentinel transport needs besides the URL (empty without Sentinel)."""
    if settings.broker_url or not settings.sentinels:
        return {}
    options: dict[str, Any] = {"master_name": settings.redis_sentinel_master}
    sentinel_kwargs: dict[str, Any] = {"socket_timeout": SENTINEL_TIMEOUT_S}
    if settings.redis_sentinel_password is not None:
        sentinel_kwargs["password"] = settings.redis_sentinel_password.get_secret_value()
    options["sentinel_kwargs"] = sentinel_kwargs
    return options


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
