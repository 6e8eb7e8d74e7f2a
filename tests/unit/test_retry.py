"""The retry decision: one predicate, every outcome kind, backoff bounds, Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from order_dispatch.contract import ErrorKind, EventStatus
from order_dispatch.settings import RetryPolicy
from worker.http import parse_retry_after
from worker.outcomes import Outcome, OutcomeKind
from worker.retry import backoff_delay, decide

POLICY = RetryPolicy(max_attempts=4, base_delay_s=2, max_delay_s=30, retry_after_cap_s=60)


def failure(kind: OutcomeKind, retry_after: float | None = None) -> Outcome:
    return Outcome.failure(kind, ErrorKind.VENDOR_UNAVAILABLE, "x", retry_after_s=retry_after)


@pytest.mark.parametrize(
    ("outcome", "attempt", "repeat_safe", "verdict"),
    [
        (Outcome.success("v", "s", http_status=200, body=None), 1, False, EventStatus.ACCEPTED),
        (failure(OutcomeKind.PERMANENT), 1, True, EventStatus.REJECTED),
        (failure(OutcomeKind.RETRYABLE), 1, False, EventStatus.RETRY_SCHEDULED),
        (failure(OutcomeKind.RETRYABLE), 3, False, EventStatus.RETRY_SCHEDULED),
        (failure(OutcomeKind.RETRYABLE), 4, False, EventStatus.DEAD_LETTERED),
        (failure(OutcomeKind.UNKNOWN), 1, False, EventStatus.IN_DOUBT),
        (failure(OutcomeKind.UNKNOWN), 4, False, EventStatus.IN_DOUBT),
        (failure(OutcomeKind.UNKNOWN), 1, True, EventStatus.RETRY_SCHEDULED),
        (failure(OutcomeKind.UNKNOWN), 4, True, EventStatus.DEAD_LETTERED),
    ],
)
def test_verdicts(outcome: Outcome, attempt: int, repeat_safe: bool, verdict: EventStatus) -> None:
    assert decide(outcome, attempt, POLICY, repeat_safe=repeat_safe).status is verdict


def test_retry_after_is_honoured_and_capped() -> None:
    asked = decide(failure(OutcomeKind.RETRYABLE, 12), 1, POLICY, repeat_safe=False)
    greedy = decide(failure(OutcomeKind.RETRYABLE, 3600), 1, POLICY, repeat_safe=False)

    assert asked.delay_s == 12
    assert greedy.delay_s == 60


@given(st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=2**32))
def test_backoff_stays_within_the_exponential_ceiling(attempt: int, seed: int) -> None:
    delay = backoff_delay(attempt, POLICY, random.Random(seed))

    assert 0 <= delay <= min(POLICY.max_delay_s, POLICY.base_delay_s * 2 ** (attempt - 1))


def test_backoff_is_jittered() -> None:
    rng = random.Random(1)

    assert len({round(backoff_delay(5, POLICY, rng), 6) for _ in range(20)}) == 20


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        (None, None),
        ("soon", None),
        ("Sun, 22 Nov 2026 10:00:30 GMT", 30.0),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    now = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)

    assert parse_retry_after(header, now) == seconds
