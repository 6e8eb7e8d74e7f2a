"""The worker's check that Redis keeps its data across a restart (append-only file).

Queued jobs, the ledger and the result stream all live in Redis: a Redis that restarts without
its data loses every queued job, and its workers then send again orders the vendors already
have (their ledger is gone too). The worker refuses such a Redis unless
``ORDER_DISPATCH_ALLOW_NON_PERSISTENT_REDIS`` says otherwise (tests, demos), and then says so
in its log at every connection.
"""

from __future__ import annotations

import redis

from order_dispatch.logs import get_logger

log = get_logger("worker.persistence")


class RedisNotPersistent(RuntimeError):
    """Redis runs without append-only persistence, and the settings do not allow it."""


def check_persistence(client: redis.Redis, *, allowed: bool) -> bool | None:
    """Whether Redis has ``appendonly yes``: True, False (allowed, and logged loudly), or None
    when Redis will not tell (``CONFIG`` disabled, as on some managed services; logged).

    Raises :class:`RedisNotPersistent` when it has not and ``allowed`` is False.
    """
    try:
        reply = client.config_get("appendonly")
    except redis.ResponseError as exc:
        log.warning(
            "cannot check that Redis persists its data (CONFIG GET appendonly was refused); "
            "make sure it runs with append-only persistence (appendonly yes), or a restart "
            "of Redis loses every queued job",
            error=str(exc),
        )
        return None
    if reply.get("appendonly") == "yes":
        return True
    if not allowed:
        raise RedisNotPersistent(
            "Redis runs without append-only persistence (appendonly no): a restart of Redis "
            "would lose every queued job and the ledger that keeps orders from being sent "
            "twice. Run it with 'appendonly yes' (CONFIG SET appendonly yes, and in its "
            "config file), or set ORDER_DISPATCH_ALLOW_NON_PERSISTENT_REDIS=true for tests "
            "and demos"
        )
    log.warning(
        "REDIS DOES NOT PERSIST: allowed by ORDER_DISPATCH_ALLOW_NON_PERSISTENT_REDIS; a "
        "restart of Redis loses every queued job; never run real orders like this",
        appendonly=reply.get("appendonly"),
    )
    return False
