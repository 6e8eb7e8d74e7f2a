"""The retry decision, in one place: given an outcome, the attempt and the time, what next.

- Success is accepted; a permanent failure is rejected at once and never retried.
- Throttling (the vendor's 429) is not failure: the job is ``deferred`` for the vendor's hint
  (``Retry-After``, or the vendor's own header or body field) plus jitter, without counting as an
  attempt, however long the storm lasts.
- An outcome that may have happened (the request went out, no answer came back) is retried only
  when repeating the operation is safe at that vendor; otherwise the job is ``in_doubt``.
- Other retryable failures wait with exponential backoff and jitter (a draw between half and
  all of ``base * 2**(attempt-1)``, capped), or the vendor's hint plus jitter, until the policy's
  attempts or time budget run out: then the job is dead-lettered, to be replayed.

Jitter everywhere, so that retries after a shared failure do not arrive in waves.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from order_dispatch.contract import ErrorKind, EventStatus
from order_dispatch.settings import RetryPolicy
from worker.outcomes import Outcome, OutcomeKind

#: A vendor's hint is stretched by up to this share (and at least a second) of random jitter.
HINT_JITTER_SHARE = 0.2


@dataclass(frozen=True, slots=True)
class Decision:
    """The status the attempt ends in, the wait before the next try (for ``retry_scheduled``
    and ``deferred``) and why, for the log. A ``deferred`` job tries the same attempt again."""

    status: EventStatus
    delay_s: float = 0.0
    reason: str = ""


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter after failed attempt number ``attempt`` (1-based)."""
    ceiling = min(policy.max_delay_s, policy.base_delay_s * (2 ** (attempt - 1)))
    return (rng or random).uniform(ceiling / 2, ceiling)


def jittered(hint_s: float, rng: random.Random | None = None) -> float:
    """A vendor's wait hint plus random jitter (never less than the hint)."""
    return hint_s + (rng or random).uniform(0, max(1.0, hint_s * HINT_JITTER_SHARE))


def decide(
    outcome: Outcome,
    attempt: int,
    policy: RetryPolicy,
    *,
    repeat_safe: bool,
    age_s: float = 0.0,
    rng: random.Random | None = None,
) -> Decision:
    """The verdict on ``outcome`` of attempt ``attempt`` of a job enqueued ``age_s`` ago.

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
    hint = outcome.retry_after_s
    if outcome.error is not None and outcome.error.kind is ErrorKind.RATE_LIMITED:
        wait = jittered(min(hint, policy.retry_after_cap_s) if hint is not None else 1.0, rng)
        return Decision(EventStatus.DEFERRED, wait, reason="throttled by the vendor")
    if attempt >= policy.max_attempts:
        return Decision(EventStatus.DEAD_LETTERED, reason=f"gave up after {attempt} attempts")
    if hint is not None:
        delay = jittered(min(hint, policy.retry_after_cap_s), rng)
        reason = "vendor asked to retry after a delay"
    else:
        delay = backoff_delay(attempt, policy, rng)
        reason = "backoff"
    if age_s + delay > policy.give_up_after_s:
        return Decision(
            EventStatus.DEAD_LETTERED,
            reason=f"gave up: {policy.give_up_after_s:.0f} s since enqueue would pass",
        )
    return Decision(EventStatus.RETRY_SCHEDULED, delay, reason=reason)
