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
from worker.policy import backoff_delay, decide

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


@given(st.floats(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=2**32))
def test_retry_after_is_honoured_capped_and_jittered(hint: float, seed: int) -> None:
    decision = decide(
        failure(OutcomeKind.RETRYABLE, hint), 1, POLICY, repeat_safe=False, rng=random.Random(seed)
    )

    asked = min(hint, POLICY.retry_after_cap_s)
    assert decision.status is EventStatus.RETRY_SCHEDULED
    assert asked <= decision.delay_s <= asked + max(1.0, asked * 0.2)


def test_retries_after_one_hint_do_not_arrive_together() -> None:
    rng = random.Random(7)
    waits = [
        decide(failure(OutcomeKind.RETRYABLE, 1), 1, POLICY, repeat_safe=False, rng=rng).delay_s
        for _ in range(200)
    ]

    assert min(waits) >= 1.0 and max(waits) <= 2.0
    # Spread over the jitter window: no tenth of a second holds more than a quarter of them.
    buckets = [sum(1 for w in waits if 1 + i / 10 <= w < 1 + (i + 1) / 10) for i in range(10)]
    assert max(buckets) < 50


def throttled(retry_after: float | None) -> Outcome:
    return Outcome.failure(
        OutcomeKind.RETRYABLE, ErrorKind.RATE_LIMITED, "429", retry_after_s=retry_after
    )


@pytest.mark.parametrize("attempt", [1, 4, 50])
def test_throttling_defers_without_spending_an_attempt_however_late(attempt: int) -> None:
    decision = decide(throttled(5), attempt, POLICY, repeat_safe=False, age_s=10**7)

    assert decision.status is EventStatus.DEFERRED
    assert 5 <= decision.delay_s <= 6


def test_a_throttle_without_a_hint_waits_about_a_second() -> None:
    decision = decide(throttled(None), 1, POLICY, repeat_safe=False)

    assert decision.status is EventStatus.DEFERRED and 1 <= decision.delay_s <= 2


def test_the_time_budget_dead_letters_a_retry_that_would_end_too_late() -> None:
    policy = RetryPolicy(max_attempts=100, base_delay_s=10, max_delay_s=10, give_up_after_s=60)

    early = decide(failure(OutcomeKind.RETRYABLE), 2, policy, repeat_safe=False, age_s=5)
    late = decide(failure(OutcomeKind.RETRYABLE), 2, policy, repeat_safe=False, age_s=55)

    assert early.status is EventStatus.RETRY_SCHEDULED
    assert late.status is EventStatus.DEAD_LETTERED and "since enqueue" in late.reason


def test_the_default_policy_keeps_trying_for_at_least_a_day() -> None:
    policy = RetryPolicy()
    rng = random.Random(3)
    age, attempt = 0.0, 1
    while True:
        decision = decide(
            failure(OutcomeKind.RETRYABLE), attempt, policy, repeat_safe=False, age_s=age, rng=rng
        )
        if decision.status is not EventStatus.RETRY_SCHEDULED:
            break
        age += decision.delay_s
        attempt += 1

    assert decision.status is EventStatus.DEAD_LETTERED
    assert 86_400 - policy.max_delay_s <= age <= 86_400
    assert attempt < policy.max_attempts  # the time budget, not the attempt cap, ended it


@given(st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=2**32))
def test_backoff_stays_within_the_exponential_ceiling(attempt: int, seed: int) -> None:
    delay = backoff_delay(attempt, POLICY, random.Random(seed))

    ceiling = min(POLICY.max_delay_s, POLICY.base_delay_s * 2 ** (attempt - 1))
    assert ceiling / 2 <= delay <= ceiling


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
