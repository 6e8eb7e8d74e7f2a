"""The pipeline every job goes through: translate -> submit -> classify -> decide -> emit.

It knows nothing of Celery: it takes a job document and its attempt number and returns whether
to run again later. Tasks stay thin; this is where the logic lives and is tested.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import redis
import structlog
from pydantic import ValidationError

from order_dispatch import redact
from order_dispatch.contract import (
    ErrorInfo,
    ErrorKind,
    EventStatus,
    Job,
    Operation,
    ResultEvent,
    format_validation_errors,
)
from order_dispatch.keys import Keys
from order_dispatch.logs import get_logger
from order_dispatch.settings import Settings
from worker.ledger import JobLedger, LedgerEntry, LedgerState
from worker.outage import ride_out
from worker.outcomes import Outcome, OutcomeKind
from worker.retry import Decision, decide
from worker.runtime import EventLoopThread
from worker.vendors import UnknownVendor
from worker.vendors.base import ConfigurationError, Lookup, LookupKind, TranslationError, Vendor
from worker.vendors.sender import Sender

log = get_logger("worker.pipeline")


@dataclass(frozen=True, slots=True)
class Step:
    """What the task does next: nothing (``retry_in_s`` None), or run ``attempt`` after a wait.

    ``deferred`` is True when the wait is not a failed attempt (``not_before`` in the future).
    """

    retry_in_s: float | None = None
    attempt: int = 1
    deferred: bool = False
    queue: str | None = None
    """The vendor queue to wait in (set with ``retry_in_s``)."""


DONE = Step()


class Pipeline:
    """Runs one attempt of one job; one instance per worker process, shared by its threads."""

    def __init__(
        self,
        settings: Settings,
        redis_client: redis.Redis,
        sender: Sender,
        io: EventLoopThread,
        worker_name: str | None = None,
    ) -> None:
        self.settings = settings
        self.sender = sender
        self.io = io
        self.keys = Keys(settings.key_prefix)
        self.ledger = JobLedger(
            redis_client,
            self.keys,
            results_maxlen=settings.results_maxlen,
            ttl_s=settings.receipt_ttl_s,
        )
        self.worker_name = worker_name or f"{socket.gethostname()}-{os.getpid()}"
        # How long an attempt in flight holds its job: its vendor call ends by the deadline.
        self._lease_s = settings.lease_s
        redact.register(settings.secrets())

    def run(self, job_id: str, run: int = 1, attempt: int = 1, *, deferred: bool = False) -> Step:
        """Run attempt ``attempt`` (1-based) of run ``run`` of the stored job ``job_id``.

        The job is loaded from the job store in the same round trip as its ledger. ``deferred``
        says the job already announced that it waits for ``not_before``.
        """
        started = time.monotonic()
        previous = self.ledger.read(job_id, run)
        if previous.job_doc is None:
            log.error("job not in the job store (expired or purged); nothing sent", job_id=job_id)
            return DONE
        if run < previous.current_run:
            log.info("message of an earlier run; a replay superseded it", job_id=job_id, run=run)
            return DONE
        this_run = Run(run, previous.run_id)
        try:
            doc = json.loads(previous.job_doc)
            job = Job.model_validate(doc)
        except (ValueError, ValidationError) as exc:
            return self._refuse_document(job_id, previous.job_doc, exc, attempt, this_run)
        with structlog_context(job, attempt):
            return self._run(job, attempt, this_run, started, deferred, previous)

    def _run(
        self,
        job: Job,
        attempt: int,
        run: Run,
        started: float,
        deferred: bool,
        previous: LedgerEntry,
    ) -> Step:
        if previous.terminal_event_id is not None:
            log.info("job already finished; nothing to do")
            return DONE
        if job.not_before is not None:
            wait = (job.not_before - datetime.now(UTC)).total_seconds()
            if wait > 0:
                return self._defer(job, attempt, run, wait, started, announce=not deferred)
        try:
            vendor = self.sender.vendor(job.vendor, job.account)
        except (ConfigurationError, UnknownVendor) as exc:
            error = ErrorInfo(kind=ErrorKind.INTERNAL, message=str(exc))
            return self._finish(
                job,
                attempt,
                run,
                Decision(EventStatus.DEAD_LETTERED, reason=str(exc)),
                Outcome(OutcomeKind.PERMANENT, error=error),
                started,
            )
        take_over: str | None = None
        if previous.state == LedgerState.IN_FLIGHT:
            # An attempt holds the job. Past its lease the worker that began it is dead, and its
            # request may have been sent.
            lease = self._lease_s
            if previous.age_s < lease:
                log.info(
                    "another delivery of this job is in flight; checking again later",
                    in_flight_attempt=previous.attempt,
                )
                return Step(
                    lease - previous.age_s, attempt, deferred, self.keys.queue(job.vendor)
                )
            if not vendor.repeat_safe(job.operation):
                lookup = self.io.run(self.sender.lookup(vendor, job))
                if lookup.kind is LookupKind.FOUND:
                    log.warning("interrupted attempt found; the vendor has the order")
                    return self._finish(
                        job,
                        max(attempt, previous.attempt),
                        run,
                        Decision(EventStatus.ACCEPTED, reason="reconciled by lookup"),
                        _found(lookup),
                        started,
                        reconciled=True,
                    )
                if not (lookup.kind is LookupKind.NOT_FOUND and vendor.lookup_authoritative):
                    message = (
                        f"attempt {previous.attempt} was interrupted {previous.age_s:.0f} s ago "
                        "after its request may have reached the vendor, and the vendor cannot "
                        f"tell whether it has the order ({lookup.detail or lookup.kind.value}); "
                        "decide by hand whether the vendor has it"
                    )
                    error = ErrorInfo(kind=ErrorKind.TRANSPORT, message=message, retryable=False)
                    return self._finish(
                        job,
                        max(attempt, previous.attempt),
                        run,
                        Decision(EventStatus.IN_DOUBT, reason="interrupted attempt"),
                        Outcome(OutcomeKind.UNKNOWN, error=error),
                        started,
                    )
                log.warning("interrupted attempt; the vendor has no such order, sending again")
            else:
                log.warning(
                    "interrupted attempt found; repeating it is safe",
                    previous_attempt=previous.attempt,
                )
            take_over = previous.started_at
            attempt = max(attempt, previous.attempt)
        elif previous.attempt > attempt:
            log.info(
                "stale delivery: a later attempt already ran; dropping it",
                latest_attempt=previous.attempt,
            )
            return DONE
        elif previous.attempt == attempt and previous.state == LedgerState.WAITING:
            # This attempt already failed and scheduled its retry, but its message came back
            # (the ack was lost): run it as that retry.
            attempt += 1
        try:
            request = vendor.translate(job)
        except TranslationError as exc:
            outcome = Outcome.failure(
                OutcomeKind.PERMANENT, ErrorKind.VALIDATION, str(exc), code=exc.field
            )
            return self._finish(
                job,
                attempt,
                run,
                Decision(EventStatus.REJECTED, reason="translation"),
                outcome,
                started,
            )
        if not self.ledger.begin_attempt(
            job.job_id, attempt, self.worker_name, take_over=take_over
        ):
            log.info("another delivery of this job just started; checking again later")
            return Step(self._lease_s, attempt, deferred, self.keys.queue(job.vendor))
        try:
            outcome = self.io.run(self.sender.submit(vendor, job, request))
        except Exception as exc:  # a defect in an adapter must not lose the job
            log.exception("adapter failed")
            outcome = Outcome.failure(
                OutcomeKind.UNKNOWN,
                ErrorKind.INTERNAL,
                f"internal error while submitting: {type(exc).__name__}: {exc}",
            )
        repeat_safe = vendor.repeat_safe(job.operation)
        reconciled = False
        if outcome.already_exists or (outcome.kind is OutcomeKind.UNKNOWN and not repeat_safe):
            outcome, reconciled = self._reconcile(vendor, job, outcome)
        decision = decide(outcome, attempt, self.settings.retry, repeat_safe=repeat_safe)
        return self._finish(job, attempt, run, decision, outcome, started, reconciled=reconciled)

    def _reconcile(self, vendor: Vendor, job: Job, outcome: Outcome) -> tuple[Outcome, bool]:
        """Ask the vendor whether it has the order after an unknown or "already have it"
        answer; the outcome to decide on, and whether a lookup settled it."""
        lookup = self.io.run(self.sender.lookup(vendor, job))
        log.info("reconciliation lookup", lookup=lookup.kind.value, detail=lookup.detail or None)
        if lookup.kind is LookupKind.FOUND:
            return _found(lookup), True
        if (
            lookup.kind is LookupKind.NOT_FOUND
            and vendor.lookup_authoritative
            and not outcome.already_exists
            and outcome.error is not None
        ):
            # The vendor provably does not have it: the lost request may be sent again.
            error = outcome.error.model_copy(
                update={"message": f"{outcome.error.message}; the vendor does not have the order"}
            )
            return replace(outcome, kind=OutcomeKind.RETRYABLE, error=error), True
        if outcome.already_exists and outcome.error is not None:
            # The vendor says it has the order but cannot show it: a person decides.
            error = outcome.error.model_copy(
                update={
                    "message": f"{outcome.error.message} (the vendor says it already has this "
                    f"order, but the lookup found {lookup.detail or lookup.kind.value})"
                }
            )
            return replace(outcome, kind=OutcomeKind.UNKNOWN, error=error), False
        return outcome, False

    def _finish(
        self,
        job: Job,
        attempt: int,
        run: Run,
        decision: Decision,
        outcome: Outcome,
        started: float,
        *,
        reconciled: bool = False,
    ) -> Step:
        status = decision.status
        error = outcome.error
        if error is not None:
            error = error.model_copy(update={"message": redact.text(error.message)})
        event = _event(
            job,
            run,
            attempt,
            status,
            started,
            vendor_order_id=outcome.vendor_order_id or job.vendor_order_id,
            vendor_status=outcome.vendor_status,
            retry_in_s=round(decision.delay_s, 3)
            if decision.status is EventStatus.RETRY_SCHEDULED
            else None,
            error=error,
            vendor_response=redact.text(outcome.body) if outcome.body is not None else None,
            reconciled=reconciled or None,
        )
        # Once the vendor answered, the answer is kept through a Redis outage: tried again until
        # Redis takes it, never dropped (a lost accepted order would come back in doubt).
        written = ride_out(
            lambda: self.ledger.record(job, event),
            what="record the outcome",
            status=status.value,
            vendor_order_id=event.vendor_order_id,
        )
        log.info(
            "job event" if written else "run already ended; event not written",
            status=status.value,
            reason=decision.reason,
            vendor_order_id=event.vendor_order_id,
            error_kind=error.kind.value if error else None,
            error=error.message if error else None,
            http_status=outcome.http_status,
            retry_in_s=event.retry_in_s,
        )
        if decision.status is EventStatus.RETRY_SCHEDULED and written:
            return Step(decision.delay_s, attempt + 1, False, self.keys.queue(job.vendor))
        return DONE

    def _defer(
        self, job: Job, attempt: int, run: Run, wait: float, started: float, *, announce: bool
    ) -> Step:
        """Wait for ``not_before`` in slices short enough for the broker's visibility timeout;
        waiting is not an attempt. The first slice emits a ``deferred`` event."""
        slice_s = min(wait, self.settings.retry.retry_after_cap_s)
        if announce:
            event = _event(
                job,
                run,
                attempt,
                EventStatus.DEFERRED,
                started,
                vendor_order_id=job.vendor_order_id,
                retry_in_s=round(wait, 3),
            )
            self.ledger.record(job, event)
            log.info("job deferred until not_before", wait_s=round(wait, 3))
        return Step(slice_s, attempt, True, self.keys.queue(job.vendor))

    def _refuse_document(
        self, job_id: str, raw: str, exc: ValueError, attempt: int, run: Run
    ) -> Step:
        """A stored job that fails the contract (a producer that skipped validation): rejected."""
        errors = (
            format_validation_errors(exc) if isinstance(exc, ValidationError) else [str(exc)]
        )
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = {}
        doc = doc if isinstance(doc, dict) else {}
        order = doc.get("order") if isinstance(doc.get("order"), dict) else {}
        order_id = str(doc.get("order_id") or (order or {}).get("order_id") or "unknown")
        vendor = str(doc.get("vendor") or "unknown")
        log.error("job fails the contract", job_id=job_id, errors=errors)
        try:
            operation = Operation(doc.get("operation", "create"))
        except ValueError:
            operation = Operation.CREATE
        placeholder = Job.model_construct(
            job_id=job_id,
            vendor=vendor,
            account=str(doc.get("account") or "default"),
            operation=operation,
            order_id=order_id,
            order=None,
            vendor_order_id=None,
            enqueued_at=None,
        )
        event = _event(
            placeholder,
            run,
            attempt,
            EventStatus.REJECTED,
            time.monotonic(),
            error=ErrorInfo(kind=ErrorKind.VALIDATION, message="; ".join(errors)),
        )
        self.ledger.record(placeholder, event)
        return DONE


def _found(lookup: Lookup) -> Outcome:
    """The outcome of a lookup that found the order."""
    return Outcome.success(
        lookup.vendor_order_id, lookup.vendor_status, http_status=None, body=None
    )


@dataclass(frozen=True, slots=True)
class Run:
    """Which run of a job: its number (1, 2, ... as replays start new ones) and unique token."""

    number: int
    id: str


def _event(
    job: Job, run: Run, attempt: int, status: EventStatus, started: float, **fields: Any
) -> ResultEvent:
    """The result event of ``job``'s attempt. Its id is stable for (job, run, attempt, status)
    and carries the run's token, so a run started anew (after a replay, or a Redis that lost
    its data) never reuses an earlier run's event ids."""
    return ResultEvent(
        event_id=f"{job.job_id}:{run.number}.{run.id[:8]}:{attempt}:{status.value}",
        job_id=job.job_id,
        run=run.number,
        order_id=job.ref,
        vendor=job.vendor,
        account=job.account,
        operation=job.operation,
        status=status,
        terminal=status.terminal,
        attempt=attempt,
        occurred_at=datetime.now(UTC),
        enqueued_at=job.enqueued_at,
        duration_ms=int((time.monotonic() - started) * 1000),
        **fields,
    )


@contextlib.contextmanager
def structlog_context(job: Job, attempt: int) -> Iterator[None]:
    """Bind job id, order id, vendor and attempt to every log line inside the block."""
    values = {
        "job_id": job.job_id,
        "order_id": job.ref,
        "vendor": job.vendor,
        "account": job.account,
        "operation": job.operation.value,
        "attempt": attempt,
    }
    with structlog.contextvars.bound_contextvars(**values):
        yield
