"""The delivery policy: every decision a delivery takes, as pure functions. No Redis, no I/O.

A delivery of a job asks these questions in this order; the pipeline (:mod:`worker.pipeline`)
fetches the facts (ledger, gate, vendor answer, lookup) and does what the answers say.

1. **Plan** (:func:`plan`): given what the ledger says, run, wait, reconcile a dead attempt,
   or drop the message.
2. **Not before** (:func:`not_before`): a job whose ``not_before`` is ahead waits for it.
3. **Hold** (:func:`hold`): a job the gate did not admit (rate limit, open circuit) waits.
4. **Reconcile** (:func:`needs_lookup`, :func:`reconcile`, :func:`settle_interrupted`): after
   an answer that does not say whether the vendor has the order, the vendor's lookup decides.
5. **Decide** (:func:`decide`): accepted, rejected, retried later, in doubt or dead-lettered.
6. **Circuit** (:func:`circuit_report`, :func:`vendor_pause`): what the answer tells the
   account's circuit breaker and shared rate limit.
7. **Next** (:func:`follow_up`) and **where a wait goes** (:func:`place_wait`): the attempt to
   run after the wait, and whether the wait is a Celery countdown or sits in the durable
   schedule.

Waiting for ``not_before``, a rate limit or an open circuit is not an attempt: the same attempt
runs again. Jitter everywhere, so that retries after a shared failure do not arrive in waves.

The plan, from the ledger read at the start of a delivery (a message can arrive more than once:
a lost ack, a dead worker's message restored, a retry already superseded, and while another
delivery of the same job is in flight):

========================================  =====================================================
ledger                                     plan
========================================  =====================================================
the run has its terminal event             ``FINISHED``: nothing to do
an attempt in flight, lease not expired    ``WAIT`` until the lease ends, then look again
an attempt in flight, lease expired        ``INTERRUPTED``: its worker died mid-request; the
                                           pipeline reconciles or repeats it (same attempt)
a later attempt already ran                ``STALE``: drop this message
this attempt failed and scheduled a retry  ``RUN`` the retry (attempt + 1): the ack was lost
otherwise (new, deferred, or a retry)      ``RUN`` this attempt
========================================  =====================================================

The decision on an outcome:

- Success is accepted; a permanent failure is rejected at once and never retried.
- Throttling (the vendor's 429) is not failure: the job is ``deferred`` for the vendor's hint
  (``Retry-After``, or the vendor's own header or body field) plus jitter, without counting as an
  attempt, however long the storm lasts.
- An outcome that may have happened (the request went out, no answer came back) is retried only
  when repeating the operation is safe at that vendor; otherwise the job is ``in_doubt``.
- Other retryable failures wait with exponential backoff and jitter (a draw between half and
  all of ``base * 2**(attempt-1)``, capped), or the vendor's hint plus jitter, until the policy's
  attempts or time budget run out: then the job is dead-lettered, to be replayed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from order_dispatch.contract import ErrorInfo, ErrorKind, EventStatus
from order_dispatch.settings import RetryPolicy
from order_dispatch.store import LedgerEntry, LedgerState
from worker.limits import Admission
from worker.limits import Verdict as GateVerdict
from worker.outcomes import Outcome, OutcomeKind
from worker.vendors.base import Lookup, LookupKind

#: A vendor's hint is stretched by up to this share (and at least a second) of random jitter.
HINT_JITTER_SHARE = 0.2

#: Failures that count toward opening a vendor account's circuit: the vendor or the way to it
#: is down. A refusal, a throttle or our own defect says nothing about the vendor's health.
CIRCUIT_FAILURES = frozenset({ErrorKind.VENDOR_UNAVAILABLE, ErrorKind.TIMEOUT, ErrorKind.TRANSPORT})


# --- 1. the plan -------------------------------------------------------------------------------


class Action(StrEnum):
    """What a delivery does."""

    FINISHED = "finished"
    WAIT = "wait"
    INTERRUPTED = "interrupted"
    STALE = "stale"
    RUN = "run"


@dataclass(frozen=True, slots=True)
class Plan:
    """The action, the attempt it concerns, how long to wait (``WAIT``), and the start time of
    the dead attempt being taken over (``INTERRUPTED``)."""

    action: Action
    attempt: int
    wait_s: float = 0.0
    take_over: str | None = None

    @property
    def sends(self) -> bool:
        """True when this delivery goes on towards the vendor (``RUN`` or ``INTERRUPTED``)."""
        return self.action in (Action.RUN, Action.INTERRUPTED)


def plan(entry: LedgerEntry, attempt: int, lease_s: float) -> Plan:
    """The plan for a delivery of attempt ``attempt`` given the ledger ``entry``."""
    if entry.terminal_event_id is not None:
        return Plan(Action.FINISHED, attempt)
    if entry.state is LedgerState.IN_FLIGHT:
        if entry.age_s < lease_s:
            return Plan(Action.WAIT, attempt, wait_s=lease_s - entry.age_s)
        return Plan(Action.INTERRUPTED, max(attempt, entry.attempt), take_over=entry.started_at)
    if entry.attempt > attempt:
        return Plan(Action.STALE, attempt)
    if entry.attempt == attempt and entry.state is LedgerState.WAITING:
        return Plan(Action.RUN, attempt + 1)
    return Plan(Action.RUN, attempt)


# --- 2, 3. waits that are not attempts -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Postpone:
    """A wait that is not an attempt: how long, why (``not_before``, ``rate_limited``,
    ``circuit_open``), and the error its ``deferred`` event explains it with (None for
    ``not_before``, which is no error)."""

    wait_s: float
    reason: str
    error: ErrorInfo | None = None


def not_before(when: datetime | None, now: datetime) -> Postpone | None:
    """The wait for a job's ``not_before`` at ``now``; None when it is not ahead."""
    if when is None:
        return None
    wait = (when - now).total_seconds()
    return Postpone(wait, "not_before") if wait > 0 else None


def hold(admission: Admission, rng: random.Random | None = None) -> Postpone:
    """The wait of a job the gate did not admit: the gate's wait plus jitter."""
    circuit = admission.verdict is GateVerdict.CIRCUIT
    kind = ErrorKind.CIRCUIT_OPEN if circuit else ErrorKind.RATE_LIMITED
    wait = jittered(admission.wait_s, rng)
    what = "the circuit is open" if circuit else "the account's rate limit is reached"
    error = ErrorInfo(kind=kind, message=f"{what}; waiting {wait:.1f} s", retryable=True)
    return Postpone(wait, kind.value, error)


# --- 4. reconciliation ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an attempt came to: the decision, the outcome it rests on (its error explains the
    event), and whether a lookup at the vendor settled it."""

    decision: Decision
    outcome: Outcome
    reconciled: bool = False


def needs_lookup(outcome: Outcome, *, repeat_safe: bool) -> bool:
    """True when the vendor must be asked whether it has the order before deciding: it said it
    already has it, or the request may have reached it and sending it again is not safe."""
    return outcome.already_exists or (outcome.kind is OutcomeKind.UNKNOWN and not repeat_safe)


def reconcile(outcome: Outcome, lookup: Lookup, *, authoritative: bool) -> tuple[Outcome, bool]:
    """The outcome to decide on after ``lookup``, and whether the lookup settled it.

    ``authoritative``: the vendor's "not found" proves it does not have the order."""
    if lookup.kind is LookupKind.FOUND:
        return found(lookup), True
    error = outcome.error
    if error is None:
        return outcome, False
    if lookup.kind is LookupKind.NOT_FOUND and authoritative and not outcome.already_exists:
        # The vendor provably does not have it: the lost request may be sent again.
        message = f"{error.message}; the vendor does not have the order"
        return _with(outcome, OutcomeKind.RETRYABLE, message), True
    if outcome.already_exists:
        # The vendor says it has the order but cannot show it: a person decides.
        message = (
            f"{error.message} (the vendor says it already has this order, but the lookup found "
            f"{lookup.detail or lookup.kind.value})"
        )
        return _with(outcome, OutcomeKind.UNKNOWN, message), False
    return outcome, False


def settle_interrupted(
    lookup: Lookup, *, authoritative: bool, previous: LedgerEntry
) -> Verdict | None:
    """The verdict on an attempt whose worker died mid-request and whose repeat is not safe,
    given what the vendor's lookup found; None when the request may be sent again."""
    if lookup.kind is LookupKind.FOUND:
        decision = Decision(EventStatus.ACCEPTED, reason="reconciled by lookup")
        return Verdict(decision, found(lookup), reconciled=True)
    if lookup.kind is LookupKind.NOT_FOUND and authoritative:
        return None
    message = (
        f"attempt {previous.attempt} was interrupted {previous.age_s:.0f} s ago "
        "after its request may have reached the vendor, and the vendor cannot "
        f"tell whether it has the order ({lookup.detail or lookup.kind.value}); "
        "decide by hand whether the vendor has it"
    )
    error = ErrorInfo(kind=ErrorKind.TRANSPORT, message=message, retryable=False)
    decision = Decision(EventStatus.IN_DOUBT, reason="interrupted attempt")
    return Verdict(decision, Outcome(OutcomeKind.UNKNOWN, error=error))


def found(lookup: Lookup) -> Outcome:
    """The outcome of a lookup that found the order."""
    return Outcome.success(
        lookup.vendor_order_id, lookup.vendor_status, http_status=None, body=None
    )


def _with(outcome: Outcome, kind: OutcomeKind, message: str) -> Outcome:
    assert outcome.error is not None
    return replace(outcome, kind=kind, error=outcome.error.model_copy(update={"message": message}))


# --- 5. the decision -----------------------------------------------------------------------------


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


def unsendable(status: EventStatus, outcome: Outcome, reason: str) -> Verdict:
    """The verdict on a job that cannot be sent at all: ``rejected`` when its order cannot be
    translated (no retry cures it), ``dead_lettered`` when its account is not configured (a
    replay does, once it is)."""
    return Verdict(Decision(status, reason=reason), outcome)


# --- 6. the circuit breaker and the shared rate limit ------------------------------------------


class Report(StrEnum):
    """What an attempt tells its account's circuit breaker."""

    FAILURE = "failure"
    SUCCESS = "success"


def circuit_report(outcome: Outcome, admission: Admission) -> Report | None:
    """A failure when the vendor or the way to it was down (:data:`CIRCUIT_FAILURES`); a success
    when the circuit is not closed or counts failures (to close or reset it); else nothing: a
    closed circuit with no failures needs no write."""
    if outcome.error is not None and outcome.error.kind in CIRCUIT_FAILURES:
        return Report.FAILURE
    if admission.circuit_state != "closed" or admission.failures:
        return Report.SUCCESS
    return None


def vendor_pause(outcome: Outcome, cap_s: float) -> float | None:
    """How long the vendor asked everyone sending to the account to pause (a throttle signal,
    or a 429 with its wait, at least a second), capped at ``cap_s``; None when it did not."""
    pause = outcome.throttle_s
    if outcome.error is not None and outcome.error.kind is ErrorKind.RATE_LIMITED:
        pause = max(pause or 0.0, outcome.retry_after_s or 1.0)
    return min(pause, cap_s) if pause else None


# --- 7. what runs next, and where the wait goes ------------------------------------------------


@dataclass(frozen=True, slots=True)
class FollowUp:
    """The attempt to run after a wait, and whether the wait is not a failure (``deferred``)."""

    attempt: int
    deferred: bool


def follow_up(decision: Decision, attempt: int) -> FollowUp | None:
    """What runs after ``decision`` on attempt ``attempt``: the next attempt after a retry, the
    same one after a deferral; None when the run ended."""
    if decision.status is EventStatus.RETRY_SCHEDULED:
        return FollowUp(attempt + 1, deferred=False)
    if decision.status is EventStatus.DEFERRED:
        return FollowUp(attempt, deferred=True)
    return None


class Place(StrEnum):
    """Where a wait is kept."""

    COUNTDOWN = "countdown"
    """A Celery countdown: the message waits in a worker, unacked."""
    SCHEDULE = "schedule"
    """The durable schedule in Redis (:mod:`worker.schedule`)."""


def place_wait(wait_s: float, *, broker_is_redis: bool, threshold_s: float) -> Place:
    """Where a wait of ``wait_s`` goes: the durable schedule when it is longer than
    ``threshold_s`` on a Redis broker (a countdown held past the visibility timeout would run
    twice, and one held by a dead worker waits that timeout), else a countdown. With RabbitMQ
    every wait is a countdown: it returns a dead worker's unacked messages at once."""
    if broker_is_redis and wait_s > threshold_s:
        return Place.SCHEDULE
    return Place.COUNTDOWN


# --- webhook endpoints ---------------------------------------------------------------------------


def endpoint_disable(outcome: Outcome, failing_s: float, after_s: float) -> str | None:
    """Why a webhook endpoint is disabled after this answer, or None: it answered 410 Gone, or
    it has failed for ``after_s`` (``failing_s`` so far) without one success."""
    if outcome.http_status == 410:
        return "the receiver answered 410 Gone"
    if outcome.kind is not OutcomeKind.SUCCESS and failing_s >= after_s:
        return f"failing for {failing_s / 86400:.1f} days without a success"
    return None


def endpoint_disabled(verdict: Verdict, endpoint_id: str, reason: str) -> Verdict:
    """The delivery's verdict once its endpoint is disabled: dead-lettered (replay it after
    ``webhooks enable``), its error saying so; this is the event that records the disabling."""
    outcome = verdict.outcome
    error = ErrorInfo(
        kind=ErrorKind.VENDOR_REJECTED,
        code="endpoint_disabled",
        message=f"webhook endpoint {endpoint_id} disabled: {reason}",
        http_status=outcome.http_status,
    )
    return Verdict(
        Decision(EventStatus.DEAD_LETTERED, reason="endpoint disabled"),
        replace(outcome, kind=OutcomeKind.PERMANENT, error=error),
        verdict.reconciled,
    )
