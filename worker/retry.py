"""The retry decision, in one place: given an outcome and the attempt number, what next.

Retryable outcomes wait with exponential backoff and full jitter (Celery's and AWS's formula:
a uniform draw up to ``base * 2**(attempt-1)``, capped), or exactly what the vendor's
``Retry-After`` asks (capped) when it gives one. Permanent outcomes end at once. An outcome that
may have happened (the request went out, no answer came back) is retried only when repeating
the operation is safe at that vendor; otherwise the job is ``in_doubt`` and waits for a person.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from order_dispatch.contract import EventStatus
from order_dispatch.settings import RetryPolicy
from worker.outcomes import Outcome, OutcomeKind


@dataclass(frozen=True, slots=True)
class Decision:
    """The status the attempt ends in, the wait before the next attempt (for
    ``retry_scheduled``) and why, for the log."""

    status: EventStatus
    delay_s: float = 0.0
    reason: str = ""


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff after failed attempt number ``attempt`` (1-based)."""
    ceiling = min(policy.max_delay_s, policy.base_delay_s * (2 ** (attempt - 1)))
    return (rng or random).uniform(0, ceiling)


def decide(
    outcome: Outcome,
    attempt: int,
    policy: RetryPolicy,
    *,
    repeat_safe: bool,
    rng: random.Random | None = None,
) -> Decision:
    """The verdict on ``outcome`` of attempt ``attempt``.

    ``repeat_safe`` says whether sending the same request again cannot create a second effect at
    the vendor (an idempotent operation, or a vendor-side idempotency key).
    """
    if outcome.kind is OutcomeKind.SUCCESS:
        return Decision(EventStatus.ACCEPTED, reason="vendor accepted")
    if outcome.kind is OutcomeKind.PERMANENT:
        return Decision(EventStatus.REJECTED, reason="permanent failure")
    if outcome.kind is OutcomeKind.UNKNOWN and not repeat_safe:
        return Decision(
            EventStatus.IN_DOUBT,
            reason="the vendor may have acted and repeating the request is not safe",
        )
    if attempt >= policy.max_attempts:
        return Decision(EventStatus.DEAD_LETTERED, reason=f"gave up after {attempt} attempts")
    if outcome.retry_after_s is not None:
        delay = min(outcome.retry_after_s, policy.retry_after_cap_s)
        return Decision(
            EventStatus.RETRY_SCHEDULED, delay, reason="vendor asked to retry after a delay"
        )
    return Decision(
        EventStatus.RETRY_SCHEDULED, backoff_delay(attempt, policy, rng), reason="backoff"
    )
