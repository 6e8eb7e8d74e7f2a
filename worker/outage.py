"""Telling a Redis outage from a defect, and riding an outage out.

An outage (Redis unreachable, restarting, loading its data, out of memory, read-only, unable to
persist, busy, short of the replicas ``min-replicas-to-write`` asks for) says nothing about the
job: the same call succeeds once Redis is back. A defect (a key of the wrong type, a bad
argument, a bug) fails the same way every time. The worker waits out the first and quarantines
what fails with the second.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from redis.backoff import EqualJitterBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    ClusterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    TryAgainError,
)
from redis.retry import Retry

from order_dispatch.logs import get_logger

T = TypeVar("T")

log = get_logger("worker.outage")

# Replies redis-py has no class for, that a healthy Redis does not give.
_OUTAGE_REPLIES = ("MISCONF ", "BUSY ", "NOREPLICAS ")
# The same errors met by a command inside a Lua script come back inside the script's error
# ("Error running script ...: @user_script:7: -OOM command not allowed ...").
_OUTAGE_IN_SCRIPT = (
    "-OOM ",
    "-MISCONF ",
    "-READONLY ",
    "-LOADING ",
    "-BUSY ",
    "-MASTERDOWN ",
    "-NOREPLICAS ",
)

#: Longest pause between two tries while Redis is out.
BACKOFF_CAP_S = 2.0
#: First pause (each later one doubles, with jitter, up to the cap).
BACKOFF_BASE_S = 0.05
#: Seconds between two log lines about the same outage.
_LOG_EVERY_S = 5.0


class _CappedBackoff(EqualJitterBackoff):
    """redis-py's equal-jitter backoff, whose ``2 ** failures`` overflows a float after about
    a thousand failures (half an hour of outage at the cap)."""

    def compute(self, failures: int) -> float:
        """The pause after ``failures`` failures."""
        return super().compute(min(failures, 32))


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` says Redis is out (down, restarting, out of memory, read-only...),
    not that the call itself is wrong."""
    if isinstance(exc, AuthenticationError | AuthorizationError):
        return False  # a wrong password or ACL does not heal by waiting
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError | socket.timeout):
        return True  # BusyLoadingError (LOADING) is a ConnectionError too
    if isinstance(exc, OutOfMemoryError | ReadOnlyError | TryAgainError | ClusterDownError):
        return True
    if not isinstance(exc, redis.ResponseError):
        return False
    text = str(exc)
    return text.startswith(_OUTAGE_REPLIES) or any(code in text for code in _OUTAGE_IN_SCRIPT)


def ride_out(
    call: Callable[[], T],
    *,
    what: str,
    max_wait_s: float | None = None,
    stop: threading.Event | None = None,
    **context: object,
) -> T:
    """``call()``, tried again through a Redis outage with a capped, jittered backoff.

    Gives up (raising the outage's error) after ``max_wait_s`` seconds, or when ``stop`` is set;
    never with neither. Any other error is raised at once. ``what`` and ``context`` name the
    call in the log (one warning when the outage starts, then one every few seconds).
    """
    started = time.monotonic()
    last_log = 0.0

    def failed(exc: Exception, failures: int) -> None:
        nonlocal last_log
        waited = time.monotonic() - started
        if (max_wait_s is not None and waited >= max_wait_s) or (stop and stop.is_set()):
            raise exc
        if time.monotonic() - last_log >= _LOG_EVERY_S:
            last_log = time.monotonic()
            log.warning(
                "Redis is out; trying again",
                what=what,
                error=f"{type(exc).__name__}: {exc}",
                tries=failures,
                waited_s=round(waited, 1),
                **context,
            )

    retry = Retry(
        _CappedBackoff(cap=BACKOFF_CAP_S, base=BACKOFF_BASE_S),
        retries=-1,
        supported_errors=(redis.RedisError, socket.timeout),
    )
    result = retry.call_with_retry(call, failed, is_retryable=is_outage, with_failure_count=True)
    if last_log:
        log.info("Redis is back", what=what, waited_s=round(time.monotonic() - started, 1))
    return result
