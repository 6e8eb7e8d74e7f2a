"""What the job store hands out: plain, frozen values read from a job's record."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from order_dispatch.contract import EventStatus, ResultEvent
from order_dispatch.keys import DEAD_LETTER_STATUSES
from order_dispatch.timeline import TimelineEntry

#: The statuses a job waits in the dead letters with (see :data:`DEAD_LETTER_STATUSES`).
DeadStatus = Literal["dead_lettered", "in_doubt"]
#: Terminal statuses whose job waits in the dead letters for replay or a decision.
KEPT_FOR_REPLAY = frozenset(EventStatus(s) for s in DEAD_LETTER_STATUSES)


class LedgerState(StrEnum):
    """Where a job's delivery stands, as the ledger hash's ``state`` field says."""

    IN_FLIGHT = "in_flight"
    """An attempt began and its request may be out."""
    WAITING = "waiting"
    """An attempt ended without a terminal outcome; the next one is scheduled."""
    DEFERRED = "deferred"
    """The job waits without spending an attempt (throttled, circuit open, not_before)."""
    DONE = "done"
    """The run ended with its terminal event."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A job's ledger as read at the start of an attempt.

    ``terminal_event_id`` is set when the run already ended. ``started_at`` is the Redis clock
    (epoch seconds, as stored) when the last attempt began;
    ``age_s`` is how long ago that was, by the same clock.
    """

    state: LedgerState | None
    attempt: int
    started_at: str | None
    age_s: float
    terminal_event_id: str | None
    job_doc: str | None = None
    """The stored job (JSON), or None when the job store no longer has it."""
    current_run: int = 1
    """The job's current run (a replay starts the next one)."""
    run_id: str = ""
    """The current run's unique token (event ids carry it, so no two runs share one)."""
    token: str | None = None
    """The token of the delivery that marked the attempt in flight."""


class Verdict(StrEnum):
    """What the vendor gate says about a vendor call."""

    OK = "ok"
    PROBE = "probe"
    """The circuit is half open and this call is its one probe."""
    CIRCUIT = "circuit"
    """The circuit is open: wait."""
    RATE = "rate"
    """The account's rate limit is reached: wait."""


@dataclass(frozen=True, slots=True)
class Admission:
    """The gate's answer: go, or wait ``wait_s``; with the circuit's state for reporting."""

    verdict: Verdict
    wait_s: float
    circuit_state: str
    failures: int

    @property
    def allowed(self) -> bool:
        """True when the call may go out now."""
        return self.verdict in (Verdict.OK, Verdict.PROBE)


@dataclass(frozen=True, slots=True)
class GateLimit:
    """A vendor account's rate limit as the gate's scripts take it: seconds between requests
    at an even pace (0: no limit) and the burst tolerance."""

    interval_s: float
    tolerance_s: float


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Requests a minute and the burst allowed above an even pace."""

    per_minute: float

    @property
    def interval_s(self) -> float:
        """Seconds between requests at an even pace."""
        return 60.0 / self.per_minute

    @property
    def tolerance_s(self) -> float:
        """GCRA's burst tolerance: about ten seconds' worth of requests may go at once."""
        burst = max(1, math.ceil(self.per_minute / 6))
        return self.interval_s * (burst - 1)

    @property
    def gate(self) -> GateLimit:
        """The limit as the job store's gate scripts take it."""
        return GateLimit(self.interval_s, self.tolerance_s)


@dataclass(frozen=True, slots=True)
class Claim:
    """The first round trip of an attempt (:meth:`JobStore.claim`).

    ``entry`` is the record as it was before this call. ``claimed`` is True when the attempt is
    now marked in flight by this delivery (``own`` when it already was: a retry after a lost
    reply). ``admission`` is the gate's answer when the gate was asked, else None.
    """

    entry: LedgerEntry
    claimed: bool
    own: bool = False
    admission: Admission | None = None


@dataclass(frozen=True, slots=True)
class GateFeedback:
    """What a vendor call taught the gate, written with the attempt's outcome.

    ``success``: None to leave the circuit alone, True or False to report the call to it.
    ``pause_s``: admit nobody to the account for that long (the vendor throttled us).
    """

    success: bool | None = None
    pause_s: float | None = None
    limit: GateLimit | None = None
    unprobe: bool = False
    """True when the attempt took the half-open circuit's probe and made no call: give it
    back, so another call probes at once."""


@dataclass(frozen=True, slots=True)
class Recorded:
    """What :meth:`JobStore.record` did: whether the event was written, and the circuit's
    transition ('opened', 'reopened', 'closed' or '')."""

    written: bool
    transition: str = ""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A job waiting for a person, as ``dlq list`` shows it."""

    job_id: str
    vendor: str
    account: str
    operation: str
    order_id: str
    status: str
    """``dead_lettered``, ``in_doubt``, or ``unknown`` when its event is missing."""
    run: int
    attempt: int | None
    at: datetime | None
    """When it got there."""
    error: str | None

    @classmethod
    def of_event(cls, job_id: str, event: ResultEvent) -> DeadLetter:
        """The dead letter ``event`` (the job's terminal event) describes."""
        return cls(
            job_id=job_id,
            vendor=event.vendor,
            account=event.account,
            operation=event.operation.value,
            order_id=event.order_id,
            status=event.status.value,
            run=event.run,
            attempt=event.attempt,
            at=event.occurred_at,
            error=event.error.message if event.error else None,
        )

    def as_json(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "job_id": self.job_id,
            "vendor": self.vendor,
            "account": self.account,
            "operation": self.operation,
            "order_id": self.order_id,
            "status": self.status,
            "run": self.run,
            "attempt": self.attempt,
            "at": self.at.isoformat() if self.at else None,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class DeadLetterCounts:
    """How many jobs wait in the dead letters, by status: what health, the metrics and
    ``dlq list`` all count from the same entries."""

    total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def in_doubt(self) -> int:
        """Jobs whose run ended ``in_doubt``."""
        return self.by_status.get(EventStatus.IN_DOUBT.value, 0)


@dataclass(frozen=True, slots=True)
class JobTimeline:
    """A job's timeline with where it stands now."""

    job_id: str
    run: int
    state: str | None
    """The ledger's state (``in_flight``, ``waiting``, ``done``), None when it has none."""
    entries: list[TimelineEntry]

    def as_json(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "job_id": self.job_id,
            "run": self.run,
            "state": self.state,
            "entries": [e.model_dump(mode="json", exclude_none=True) for e in self.entries],
        }


@dataclass(frozen=True, slots=True)
class StoredJob:
    """A job as the operator actions find it: its document, current run, and how that run
    ended."""

    job_id: str
    doc: str
    run: int
    ended: EventStatus | None
    """How run ``run`` ended; None while it runs."""


class Phase(StrEnum):
    """Where a job stands, as :meth:`JobStore.status` says it."""

    QUEUED = "queued"
    """Enqueued; no attempt has begun."""
    IN_FLIGHT = "in_flight"
    """An attempt is out at the vendor (or its worker died mid-request)."""
    RETRYING = "retrying"
    """An attempt failed; the next one is scheduled (``next_attempt_at``)."""
    DEFERRED = "deferred"
    """Waiting without spending an attempt (rate limit, open circuit, ``not_before``)."""
    TERMINAL = "terminal"
    """The current run ended (``status`` says how)."""


@dataclass(frozen=True, slots=True)
class JobStatus:
    """Where a job stands now, in one read (:meth:`JobStore.status`)."""

    job_id: str
    phase: Phase
    run: int
    attempts: int
    """Attempts begun in the current run."""
    status: str | None
    """The last event's status (``accepted``, ``retry_scheduled``, ...), None before any."""
    vendor: str | None
    account: str | None
    operation: str | None
    order_id: str | None
    vendor_order_id: str | None
    last_error: str | None
    """The last event's error, ``kind: message``."""
    next_attempt_at: datetime | None
    """When a retry or a deferred job is due (from its last event)."""
    updated_at: datetime | None
    """When the last event happened."""

    def as_json(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "job_id": self.job_id,
            "phase": self.phase.value,
            "run": self.run,
            "attempts": self.attempts,
            "status": self.status,
            "vendor": self.vendor,
            "account": self.account,
            "operation": self.operation,
            "order_id": self.order_id,
            "vendor_order_id": self.vendor_order_id,
            "last_error": self.last_error,
            "next_attempt_at": self.next_attempt_at.isoformat() if self.next_attempt_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }
