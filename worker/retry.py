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
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

from order_dispatch.settings import RetryPolicy
from worker.outcomes import Outcome, OutcomeKind


class Verdict(StrEnum):
    """What the pipeline does with an outcome."""

    ACCEPT = "accept"
    REJECT = "reject"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"
    IN_DOUBT = "in_doubt"


@dataclass(frozen=True, slots=True)
class Decision:
    """A verdict, the wait before the next attempt (for RETRY) and why, for the log."""

    verdict: Verdict
    delay_s: float = 0.0
    reason: str = ""


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff after failed attempt number ``attempt`` (1-based)."""
    ceiling = min(policy.max_delay_s, policy.base_delay_s * (2 ** (attempt - 1)))
    return (rng or random).uniform(0, ceiling)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


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
        return Decision(Verdict.ACCEPT, reason="vendor accepted")
    if outcome.kind is OutcomeKind.PERMANENT:
        return Decision(Verdict.REJECT, reason="permanent failure")
    if outcome.kind is OutcomeKind.UNKNOWN and not repeat_safe:
        return Decision(
            Verdict.IN_DOUBT,
            reason="the vendor may have acted and repeating the request is not safe",
        )
    if attempt >= policy.max_attempts:
        return Decision(Verdict.DEAD_LETTER, reason=f"gave up after {attempt} attempts")
    if outcome.retry_after_s is not None:
        delay = min(outcome.retry_after_s, policy.retry_after_cap_s)
        return Decision(Verdict.RETRY, delay, reason="vendor asked to retry after a delay")
    return Decision(Verdict.RETRY, backoff_delay(attempt, policy, rng), reason="backoff")
