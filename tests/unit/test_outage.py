"""Telling a Redis outage from a defect, and riding one out (no Redis: the calls are stubs)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import redis
from redis import exceptions as rx

from worker.outage import is_outage, ride_out


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """The backoff's pauses are not what is tested here."""
    monkeypatch.setattr("redis.retry.sleep", lambda _: None)


@pytest.mark.parametrize(
    "exc",
    [
        rx.ConnectionError("Connection refused"),
        rx.TimeoutError("Timeout reading from socket"),
        rx.BusyLoadingError("Redis is loading the dataset in memory"),
        rx.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        rx.ReadOnlyError("You can't write against a read only replica."),
        rx.ResponseError("MISCONF Redis is configured to save RDB snapshots, but it's unable"),
        rx.ResponseError("BUSY Redis is busy running a script."),
        rx.ResponseError(
            "Error running script (call to f_d31f): @user_script:7: @user_script: 7: -OOM "
            "command not allowed when used memory > 'maxmemory'."
        ),
    ],
    ids=lambda e: type(e).__name__ + ":" + str(e)[:12],
)
def test_an_outage_is_recognised(exc: Exception) -> None:
    assert is_outage(exc)


@pytest.mark.parametrize(
    "exc",
    [
        rx.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        rx.ExecAbortError("Transaction discarded because of previous errors."),
        rx.AuthenticationError("invalid username-password pair"),
        rx.NoPermissionError("this user has no permissions to run the 'config' command"),
        ValueError("not a Redis error"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_defect_is_not_an_outage(exc: Exception) -> None:
    assert not is_outage(exc)


def _failing(times: int, exc: Exception) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise exc
        return "done"

    return calls, call


def test_an_outage_is_waited_out_until_redis_answers() -> None:
    calls, call = _failing(5, redis.ConnectionError("Connection refused"))

    assert ride_out(call, what="test") == "done"
    assert len(calls) == 6


def test_a_defect_is_raised_at_once() -> None:
    calls, call = _failing(5, redis.ResponseError("WRONGTYPE Operation against a key"))

    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        ride_out(call, what="test")
    assert len(calls) == 1


def test_a_requested_stop_ends_the_wait_with_the_outage() -> None:
    stop = threading.Event()
    stop.set()
    calls, call = _failing(100, redis.ConnectionError("Connection refused"))

    with pytest.raises(redis.ConnectionError):
        ride_out(call, what="test", stop=stop)
    assert len(calls) == 1


def test_the_wait_can_be_bounded() -> None:
    calls, call = _failing(10**9, redis.ConnectionError("Connection refused"))

    with pytest.raises(redis.ConnectionError):
        ride_out(call, what="test", max_wait_s=0.2)
    assert len(calls) > 1


def test_the_pause_stays_capped_however_long_the_outage() -> None:
    from worker.outage import BACKOFF_CAP_S, _CappedBackoff

    backoff = _CappedBackoff(cap=BACKOFF_CAP_S, base=0.05)

    assert all(BACKOFF_CAP_S / 2 <= backoff.compute(n) <= BACKOFF_CAP_S for n in (10, 2000))
