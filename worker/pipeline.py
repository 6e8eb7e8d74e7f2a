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

from order_dispatch import privacy, redact
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
from worker.inflight import Action, plan_delivery
from worker.ledger import JobLedger, LedgerEntry
from worker.limits import Admission, RateLimit, VendorGate
from worker.limits import Verdict as GateVerdict
from worker.outage import ride_out
from worker.outcomes import Outcome, OutcomeKind
from worker.retry import Decision, decide, jittered
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
    priority: int = 0
    display: dict[str, str] | None = None
    """What Flower shows of the job in the waiting message: ids only."""
    summary: str = ""
    """What this delivery came to, in a few words (the task's result, as Flower shows it)."""


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
            retention_s=settings.job_retention_s,
            results_max_age_s=settings.results_max_age_s,
        )
        self.gate = VendorGate(redis_client, self.keys, settings.circuit, settings.lease_s)
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
            return Step(summary="job not in the job store; nothing sent")
        if run < previous.current_run:
            log.info("message of an earlier run; a replay superseded it", job_id=job_id, run=run)
            return Step(summary=f"superseded by run {previous.current_run}")
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
        plan = plan_delivery(previous, attempt, self._lease_s)
        if plan.action is Action.FINISHED:
            log.info("job already finished; nothing to do")
            return Step(summary="run already ended")
        if plan.action is Action.STALE:
            log.info("stale delivery: a later attempt already ran", latest=previous.attempt)
            return Step(summary=f"stale: attempt {previous.attempt} already ran")
        if plan.action is Action.WAIT:
            log.info("another delivery is in flight; checking again later", other=previous.attempt)
            return replace(
                self._wait(job, plan.wait_s, attempt, deferred=deferred),
                summary="another delivery in flight",
            )
        attempt = plan.attempt
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
        if plan.action is Action.INTERRUPTED:
            settled = self._interrupted(vendor, job, attempt, run, previous, started)
            if settled is not None:
                return settled
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
        limit = _rate_limit(vendor)
        admission = self.gate.admit(job.vendor, job.account, limit)
        if not admission.allowed:
            return self._hold(job, attempt, run, admission, started, announce=not deferred)
        if not self.ledger.begin_attempt(
            job.job_id, attempt, self.worker_name, take_over=plan.take_over
        ):
            log.info("another delivery of this job just started; checking again later")
            return self._wait(job, self._lease_s, attempt, deferred=deferred)
        try:
            outcome = self.io.run(self.sender.submit(vendor, job, request))
        except Exception as exc:  # a defect in an adapter must not lose the job
            log.exception("adapter failed")
            outcome = Outcome.failure(
                OutcomeKind.UNKNOWN,
                ErrorKind.INTERNAL,
                f"internal error while submitting: {type(exc).__name__}: {exc}",
            )
        self._observe(job, admission, limit, outcome)
        repeat_safe = vendor.repeat_safe(job.operation)
        reconciled = False
        if outcome.already_exists or (outcome.kind is OutcomeKind.UNKNOWN and not repeat_safe):
            outcome, reconciled = self._reconcile(vendor, job, outcome)
        decision = decide(
            outcome,
            attempt,
            self.settings.retry_policy(job.vendor),
            repeat_safe=repeat_safe,
            age_s=_age_s(job),
        )
        return self._finish(
            job,
            attempt,
            run,
            decision,
            outcome,
            started,
            reconciled=reconciled,
            request=request.summary(vendor.account.base_url),
        )

    def _interrupted(
        self,
        vendor: Vendor,
        job: Job,
        attempt: int,
        run: Run,
        previous: LedgerEntry,
        started: float,
    ) -> Step | None:
        """An attempt whose worker died mid-request: settle it, or None to send it again."""
        if vendor.repeat_safe(job.operation):
            log.warning("interrupted attempt found; repeating it is safe", previous=attempt)
            return None
        lookup = self.io.run(self.sender.lookup(vendor, job))
        if lookup.kind is LookupKind.FOUND:
            log.warning("interrupted attempt found; the vendor has the order")
            return self._finish(
                job,
                attempt,
                run,
                Decision(EventStatus.ACCEPTED, reason="reconciled by lookup"),
                _found(lookup),
                started,
                reconciled=True,
            )
        if lookup.kind is LookupKind.NOT_FOUND and vendor.lookup_authoritative:
            log.warning("interrupted attempt; the vendor has no such order, sending again")
            return None
        message = (
            f"attempt {previous.attempt} was interrupted {previous.age_s:.0f} s ago "
            "after its request may have reached the vendor, and the vendor cannot "
            f"tell whether it has the order ({lookup.detail or lookup.kind.value}); "
            "decide by hand whether the vendor has it"
        )
        error = ErrorInfo(kind=ErrorKind.TRANSPORT, message=message, retryable=False)
        return self._finish(
            job,
            attempt,
            run,
            Decision(EventStatus.IN_DOUBT, reason="interrupted attempt"),
            Outcome(OutcomeKind.UNKNOWN, error=error),
            started,
        )

    def _hold(
        self,
        job: Job,
        attempt: int,
        run: Run,
        admission: Admission,
        started: float,
        *,
        announce: bool,
    ) -> Step:
        """Defer a job the gate did not admit (rate limit or open circuit): not an attempt."""
        circuit = admission.verdict is GateVerdict.CIRCUIT
        kind = ErrorKind.CIRCUIT_OPEN if circuit else ErrorKind.RATE_LIMITED
        wait = jittered(admission.wait_s)
        if announce:
            what = "the circuit is open" if circuit else "the account's rate limit is reached"
            error = ErrorInfo(kind=kind, message=f"{what}; waiting {wait:.1f} s", retryable=True)
            event = _event(
                job,
                run,
                attempt,
                EventStatus.DEFERRED,
                started,
                vendor_order_id=job.vendor_order_id,
                retry_in_s=round(wait, 3),
                error=error,
            )
            self.ledger.record(job, event, worker=self.worker_name)
            log.info("job deferred", reason=kind.value, wait_s=round(wait, 3))
        step = self._wait(job, wait, attempt, deferred=True)
        return replace(step, summary=f"deferred in {wait:.1f} s ({kind.value})")

    def _observe(
        self, job: Job, admission: Admission, limit: RateLimit | None, outcome: Outcome
    ) -> None:
        """Feed the circuit breaker and the shared rate limit with what the call showed.

        Best effort: the vendor has answered, and its answer must be recorded even when Redis
        is away at this moment; a missed breaker or bucket update only costs accuracy."""
        try:
            self._feed_gate(job, admission, limit, outcome)
        except redis.RedisError as exc:
            log.warning("circuit and rate-limit update skipped (Redis)", error=str(exc))

    def _feed_gate(
        self, job: Job, admission: Admission, limit: RateLimit | None, outcome: Outcome
    ) -> None:
        error_kind = outcome.error.kind if outcome.error else None
        if error_kind in _CIRCUIT_FAILURES:
            transition = self.gate.report(job.vendor, job.account, success=False)
        elif admission.circuit_state != "closed" or admission.failures:
            transition = self.gate.report(job.vendor, job.account, success=True)
        else:
            transition = ""
        if transition:
            log.warning(
                f"circuit {transition}",
                circuit=transition,
                error=outcome.error.message if outcome.error else None,
            )
        pause = outcome.throttle_s
        if error_kind is ErrorKind.RATE_LIMITED:
            pause = max(pause or 0.0, outcome.retry_after_s or 1.0)
        if pause:
            cap = self.settings.retry_policy(job.vendor).retry_after_cap_s
            self.gate.pause(job.vendor, job.account, min(pause, cap), limit)

    def _wait(self, job: Job, delay_s: float, attempt: int, *, deferred: bool) -> Step:
        """Run ``attempt`` of ``job`` again after ``delay_s`` (``deferred``: not a failure)."""
        return Step(
            delay_s,
            attempt,
            deferred,
            self.keys.queue(job.vendor),
            job.priority,
            {
                "job_id": job.job_id,
                "vendor": job.vendor,
                "operation": job.operation.value,
                "order_id": job.ref,
            },
        )

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
        request: str | None = None,
    ) -> Step:
        status = decision.status
        error = outcome.error
        if error is not None:
            message = privacy.mask(redact.text(error.message), privacy.personal_values(job))
            error = error.model_copy(update={"message": message})
        # Consumers need ids, statuses and the error explained; the vendor's answer only when
        # something failed, masked and cut short (it echoes the customer's address).
        body = outcome.body if outcome.kind is not OutcomeKind.SUCCESS else None
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
            vendor_response=privacy.excerpt(
                redact.text(body) if body is not None else None,
                job,
                self.settings.event_body_chars,
            ),
            reconciled=reconciled or None,
        )
        # Once the vendor answered, the answer is kept through a Redis outage: tried again until
        # Redis takes it, never dropped (a lost accepted order would come back in doubt).
        written = ride_out(
            lambda: self.ledger.record(
                job,
                event,
                worker=self.worker_name,
                request=request,
                http_status=outcome.http_status,
            ),
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
        if not written:
            return Step(summary="run already ended")
        summary = _summary(event)
        if decision.status is EventStatus.RETRY_SCHEDULED:
            return replace(
                self._wait(job, decision.delay_s, attempt + 1, deferred=False), summary=summary
            )
        if decision.status is EventStatus.DEFERRED:
            return replace(
                self._wait(job, decision.delay_s, attempt, deferred=True), summary=summary
            )
        return Step(summary=summary)

    def _defer(
        self, job: Job, attempt: int, run: Run, wait: float, started: float, *, announce: bool
    ) -> Step:
        """Wait for ``not_before`` (in the durable schedule when long); waiting is not an
        attempt. The first wait emits a ``deferred`` event."""
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
            self.ledger.record(job, event, worker=self.worker_name)
            log.info("job deferred until not_before", wait_s=round(wait, 3))
        step = self._wait(job, wait, attempt, deferred=True)
        return replace(step, summary=f"deferred in {wait:.1f} s (not_before)")

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
        self.ledger.record(placeholder, event, worker=self.worker_name)
        return Step(summary=_summary(event))


#: Failures that count toward opening a vendor account's circuit.
_CIRCUIT_FAILURES = frozenset(
    {ErrorKind.VENDOR_UNAVAILABLE, ErrorKind.TIMEOUT, ErrorKind.TRANSPORT}
)


def _rate_limit(vendor: Vendor) -> RateLimit | None:
    per_minute = vendor.rate_limit_per_minute
    return RateLimit(per_minute) if per_minute else None


def _age_s(job: Job) -> float:
    """How long ago the job was enqueued."""
    if job.enqueued_at is None:
        return 0.0
    return max(0.0, (datetime.now(UTC) - job.enqueued_at).total_seconds())


def _summary(event: ResultEvent) -> str:
    """An event in a few words, ids and kinds only: ``accepted soo_1``, ``rejected
    (vendor_rejected, HTTP 400)``, ``retry_scheduled in 2.0 s (vendor_unavailable)``."""
    words = [event.status.value]
    if event.vendor_order_id and event.status is EventStatus.ACCEPTED:
        words.append(event.vendor_order_id)
    if event.retry_in_s is not None:
        words.append(f"in {event.retry_in_s:.1f} s")
    if event.error is not None:
        detail = event.error.kind.value
        if event.error.http_status:
            detail += f", HTTP {event.error.http_status}"
        words.append(f"({detail})")
    if event.reconciled:
        words.append("(reconciled)")
    return " ".join(words)


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
    """The result event of ``job``'s attempt (see :meth:`ResultEvent.for_job` for its id)."""
    return ResultEvent.for_job(
        job,
        run=run.number,
        run_token=run.id,
        attempt=attempt,
        status=status,
        duration_ms=int((time.monotonic() - started) * 1000),
        **fields,
    )


@contextlib.contextmanager
def structlog_context(job: Job, attempt: int) -> Iterator[None]:
    """Bind job id, order id, vendor and attempt to every log line inside the block, and mask
    the job's personal values in each of them."""
    values = {
        "job_id": job.job_id,
        "order_id": job.ref,
        "vendor": job.vendor,
        "account": job.account,
        "operation": job.operation.value,
        "attempt": attempt,
    }
    with structlog.contextvars.bound_contextvars(**values), privacy.scope(job):
        yield
