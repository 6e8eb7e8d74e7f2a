"""The delivery policy's pure functions beyond the plan (``test_inflight.py``) and the retry
decision (``test_retry.py``): waits, reconciliation, the circuit, what runs next, where a wait
goes. No Redis, no vendor: facts built by hand."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from order_dispatch.contract import ErrorKind, EventStatus
from order_dispatch.store import LedgerEntry, LedgerState
from worker import policy
from worker.limits import Admission, Verdict
from worker.outcomes import Outcome, OutcomeKind
from worker.policy import Decision, FollowUp, Place, Report
from worker.vendors.base import Lookup, LookupKind

NOW = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
FOUND = Lookup.found("v-1", "open")
NOT_FOUND = Lookup(LookupKind.NOT_FOUND)
UNKNOWN = Lookup(LookupKind.UNKNOWN, detail="HTTP 500")


def failed(kind: OutcomeKind, error: ErrorKind, *, already_exists: bool = False) -> Outcome:
    return Outcome.failure(kind, error, "the vendor said no", already_exists=already_exists)


LOST = failed(OutcomeKind.UNKNOWN, ErrorKind.TIMEOUT)
DUPLICATE = failed(OutcomeKind.PERMANENT, ErrorKind.VENDOR_REJECTED, already_exists=True)
OK = Outcome.success("v-1", "open", http_status=200, body=None)


def admission(
    verdict: Verdict = Verdict.OK, wait_s: float = 0.0, state: str = "closed", failures: int = 0
) -> Admission:
    return Admission(verdict, wait_s, state, failures)


# --- waits that are not attempts ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("ahead_s", "wait_s"),
    [(None, None), (-5.0, None), (0.0, None), (0.5, 0.5), (3600.0, 3600.0)],
    ids=["no not_before", "passed", "now", "half a second", "an hour"],
)
def test_not_before_waits_only_when_ahead(ahead_s: float | None, wait_s: float | None) -> None:
    when = NOW + timedelta(seconds=ahead_s) if ahead_s is not None else None

    wait = policy.not_before(when, NOW)

    assert (wait.wait_s if wait else None) == wait_s
    if wait is not None:
        assert wait.reason == "not_before" and wait.error is None


@pytest.mark.parametrize(
    ("verdict", "kind", "words"),
    [
        (Verdict.RATE, ErrorKind.RATE_LIMITED, "rate limit is reached"),
        (Verdict.CIRCUIT, ErrorKind.CIRCUIT_OPEN, "circuit is open"),
    ],
)
def test_a_held_job_waits_the_gate_s_wait_explained(
    verdict: Verdict, kind: ErrorKind, words: str
) -> None:
    wait = policy.hold(admission(verdict, 4.0), random.Random(1))

    assert wait.reason == kind.value
    assert wait.error is not None and wait.error.kind is kind and wait.error.retryable
    assert words in wait.error.message and f"{wait.wait_s:.1f} s" in wait.error.message


@given(st.floats(min_value=0, max_value=3600), st.integers(min_value=0, max_value=2**32))
def test_a_hold_never_ends_before_the_gate_s_wait(gate_wait: float, seed: int) -> None:
    wait = policy.hold(admission(Verdict.RATE, gate_wait), random.Random(seed))

    assert gate_wait <= wait.wait_s <= gate_wait + max(1.0, gate_wait * policy.HINT_JITTER_SHARE)


# --- reconciliation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "lookup", "authoritative", "kind", "settled", "says"),
    [
        (LOST, FOUND, False, OutcomeKind.SUCCESS, True, None),
        (DUPLICATE, FOUND, True, OutcomeKind.SUCCESS, True, None),
        (LOST, NOT_FOUND, True, OutcomeKind.RETRYABLE, True, "does not have the order"),
        (LOST, NOT_FOUND, False, OutcomeKind.UNKNOWN, False, None),
        (LOST, UNKNOWN, True, OutcomeKind.UNKNOWN, False, None),
        (DUPLICATE, NOT_FOUND, True, OutcomeKind.UNKNOWN, False, "lookup found not_found"),
        (DUPLICATE, UNKNOWN, False, OutcomeKind.UNKNOWN, False, "lookup found HTTP 500"),
    ],
    ids=[
        "lost answer, found",
        "duplicate, found",
        "lost answer, provably not there",
        "lost answer, not found but not authoritative",
        "lost answer, lookup failed",
        "duplicate the lookup cannot see",
        "duplicate, lookup failed",
    ],
)
def test_reconciliation_verdicts(
    outcome: Outcome,
    lookup: Lookup,
    authoritative: bool,
    kind: OutcomeKind,
    settled: bool,
    says: str | None,
) -> None:
    after, reconciled = policy.reconcile(outcome, lookup, authoritative=authoritative)

    assert (after.kind, reconciled) == (kind, settled)
    if kind is OutcomeKind.SUCCESS:
        assert after.vendor_order_id == "v-1" and after.error is None
    else:
        assert after.error is not None and after.error.message.startswith("the vendor said no")
        assert says is None or says in after.error.message


@pytest.mark.parametrize(
    ("outcome", "repeat_safe", "needed"),
    [
        (OK, False, False),
        (LOST, False, True),
        (LOST, True, False),
        (DUPLICATE, True, True),
        (failed(OutcomeKind.RETRYABLE, ErrorKind.VENDOR_UNAVAILABLE), False, False),
        (failed(OutcomeKind.PERMANENT, ErrorKind.VENDOR_REJECTED), False, False),
    ],
    ids=["accepted", "lost, unsafe", "lost, safe", "duplicate", "503", "400"],
)
def test_the_vendor_is_asked_only_when_its_answer_leaves_it_open(
    outcome: Outcome, repeat_safe: bool, needed: bool
) -> None:
    assert policy.needs_lookup(outcome, repeat_safe=repeat_safe) is needed


def interrupted(attempt: int = 2, age_s: float = 120.0) -> LedgerEntry:
    return LedgerEntry(LedgerState.IN_FLIGHT, attempt, "1700000000.000000", age_s, None)


@pytest.mark.parametrize(
    ("lookup", "authoritative", "status"),
    [
        (FOUND, False, EventStatus.ACCEPTED),
        (NOT_FOUND, True, None),
        (NOT_FOUND, False, EventStatus.IN_DOUBT),
        (UNKNOWN, True, EventStatus.IN_DOUBT),
    ],
    ids=["found", "provably not there: send again", "not found, not authoritative", "unknown"],
)
def test_an_interrupted_attempt_is_settled_by_the_lookup(
    lookup: Lookup, authoritative: bool, status: EventStatus | None
) -> None:
    verdict = policy.settle_interrupted(lookup, authoritative=authoritative, previous=interrupted())

    assert (verdict.decision.status if verdict else None) is status
    if status is EventStatus.ACCEPTED:
        assert verdict is not None and verdict.reconciled
    if status is EventStatus.IN_DOUBT:
        assert verdict is not None and not verdict.reconciled
        error = verdict.outcome.error
        assert error is not None and not error.retryable
        assert "attempt 2 was interrupted 120 s ago" in error.message
        assert "decide by hand" in error.message


# --- the circuit and the shared rate limit -------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "gate", "report"),
    [
        (ErrorKind.VENDOR_UNAVAILABLE, admission(), Report.FAILURE),
        (ErrorKind.TIMEOUT, admission(), Report.FAILURE),
        (ErrorKind.TRANSPORT, admission(), Report.FAILURE),
        (ErrorKind.TIMEOUT, admission(Verdict.PROBE, state="half_open"), Report.FAILURE),
        (None, admission(), None),
        (None, admission(failures=3), Report.SUCCESS),
        (None, admission(Verdict.PROBE, state="half_open"), Report.SUCCESS),
        (ErrorKind.VENDOR_REJECTED, admission(), None),
        (ErrorKind.VENDOR_REJECTED, admission(failures=2), Report.SUCCESS),
        (ErrorKind.RATE_LIMITED, admission(), None),
        (ErrorKind.AUTH, admission(), None),
        (ErrorKind.INTERNAL, admission(), None),
    ],
    ids=[
        "503",
        "timeout",
        "connection",
        "failed probe",
        "success, healthy circuit: no write",
        "success resets the count",
        "successful probe closes",
        "refusal: the vendor is up",
        "refusal resets the count",
        "429 is no outage",
        "401 is no outage",
        "our defect is no outage",
    ],
)
def test_what_trips_the_circuit(
    error: ErrorKind | None, gate: Admission, report: Report | None
) -> None:
    outcome = OK if error is None else failed(OutcomeKind.RETRYABLE, error)

    assert policy.circuit_report(outcome, gate) is report


def test_every_error_kind_is_classified_for_the_circuit() -> None:
    """A new error kind must be placed on purpose: an outage of the vendor, or not."""
    outages = {k for k in ErrorKind if k in policy.CIRCUIT_FAILURES}

    assert outages == {ErrorKind.VENDOR_UNAVAILABLE, ErrorKind.TIMEOUT, ErrorKind.TRANSPORT}


@pytest.mark.parametrize(
    ("outcome", "pause"),
    [
        (OK, None),
        (Outcome(OutcomeKind.SUCCESS, throttle_s=3.0), 3.0),
        (Outcome.failure(OutcomeKind.RETRYABLE, ErrorKind.RATE_LIMITED, "429"), 1.0),
        (
            Outcome.failure(
                OutcomeKind.RETRYABLE, ErrorKind.RATE_LIMITED, "429", retry_after_s=7.0
            ),
            7.0,
        ),
        (
            Outcome.failure(
                OutcomeKind.RETRYABLE, ErrorKind.RATE_LIMITED, "429", retry_after_s=900.0
            ),
            60.0,
        ),
        (failed(OutcomeKind.RETRYABLE, ErrorKind.VENDOR_UNAVAILABLE), None),
    ],
    ids=["no signal", "limit used up", "429 without a hint", "429 with a hint", "capped", "503"],
)
def test_the_vendor_s_pause_for_everyone(outcome: Outcome, pause: float | None) -> None:
    assert policy.vendor_pause(outcome, cap_s=60.0) == pause


@given(
    st.one_of(st.none(), st.floats(min_value=0, max_value=1e6)),
    st.one_of(st.none(), st.floats(min_value=0, max_value=1e6)),
    st.floats(min_value=0.001, max_value=3600),
)
def test_a_pause_never_exceeds_the_cap(
    throttle: float | None, hint: float | None, cap: float
) -> None:
    throttled = Outcome(OutcomeKind.SUCCESS, throttle_s=throttle)
    refused = Outcome.failure(
        OutcomeKind.RETRYABLE, ErrorKind.RATE_LIMITED, "429", retry_after_s=hint
    )

    for outcome in (throttled, refused):
        pause = policy.vendor_pause(outcome, cap)
        assert pause is None or 0 < pause <= cap


# --- what runs next, and where the wait goes -----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "follow"),
    [
        (EventStatus.RETRY_SCHEDULED, FollowUp(4, deferred=False)),
        (EventStatus.DEFERRED, FollowUp(3, deferred=True)),
        (EventStatus.ACCEPTED, None),
        (EventStatus.REJECTED, None),
        (EventStatus.IN_DOUBT, None),
        (EventStatus.DEAD_LETTERED, None),
    ],
)
def test_what_runs_after_a_decision(status: EventStatus, follow: FollowUp | None) -> None:
    assert policy.follow_up(Decision(status, 2.0), 3) == follow


@pytest.mark.parametrize(
    ("wait_s", "redis_broker", "place"),
    [
        (0.5, True, Place.COUNTDOWN),
        (30.0, True, Place.COUNTDOWN),
        (30.001, True, Place.SCHEDULE),
        (86_400.0, True, Place.SCHEDULE),
        (86_400.0, False, Place.COUNTDOWN),
    ],
    ids=["short", "at the threshold", "past it", "a day", "RabbitMQ: always a countdown"],
)
def test_where_a_wait_goes(wait_s: float, redis_broker: bool, place: Place) -> None:
    assert policy.place_wait(wait_s, broker_is_redis=redis_broker, threshold_s=30.0) is place


@given(
    st.floats(min_value=0, max_value=1e7),
    st.floats(min_value=0, max_value=1e7),
    st.floats(min_value=0, max_value=1e5),
)
def test_a_longer_wait_never_goes_back_to_a_countdown(a: float, b: float, threshold: float) -> None:
    short, long = sorted((a, b))
    places = [
        policy.place_wait(w, broker_is_redis=True, threshold_s=threshold) for w in (short, long)
    ]

    assert places != [Place.SCHEDULE, Place.COUNTDOWN]
