"""The pipeline every job goes through: load -> plan -> translate -> gate -> submit -> decide ->
record.

It knows nothing of Celery: it takes a job id, its run and attempt, and returns whether to run
again later (a :class:`Step`). It only orchestrates: every decision is a pure function of
:mod:`worker.policy`; the facts come from the ledger and the gate in Redis and from the vendor.
Redis is the job store's (:mod:`order_dispatch.store`), touched twice per attempt:
:meth:`Pipeline._claim` before the vendor call (the job document and ledger, the vendor gate and
the in-flight mark, in one round trip) and :meth:`Pipeline._record` after it (the outcome, its
result event and timeline entry, and what the vendor's answer tells the circuit breaker and the
shared rate limit). A delivery the claim cannot settle alone (an interrupted attempt, a vendor
account not seen yet by this process) asks the gate and marks the attempt in flight in
:meth:`Pipeline._start`.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
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
from order_dispatch.store import Claim, GateFeedback, GateLimit, JobStore, LedgerEntry
from order_dispatch.webhooks import EndpointBook
from worker import policy
from worker.limits import Admission, RateLimit, VendorGate
from worker.limits import Verdict as GateVerdict
from worker.loop import EventLoopThread
from worker.outage import ride_out
from worker.outcomes import Outcome, OutcomeKind
from worker.policy import Action, Decision, Postpone, Verdict
from worker.vendors import UnknownVendor
from worker.vendors.base import ConfigurationError, Lookup, TranslationError, Vendor, VendorRequest
from worker.vendors.sender import Sender
from worker.vendors.webhooks import Webhooks

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


@dataclass(frozen=True, slots=True)
class Run:
    """Which run of a job: its number (1, 2, ... as replays start new ones) and unique token."""

    number: int
    id: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery of one attempt of a job: the job, its run, the attempt, when the delivery
    started (monotonic) and whether the job already announced that it waits (``deferred``)."""

    job: Job
    run: Run
    attempt: int
    started: float
    deferred: bool = False
    token: str = ""
    """This delivery's token: its in-flight mark carries it."""
    claimed: bool = False
    """True when the claim marked the attempt in flight for this delivery."""
    probe: bool = False
    """True when the claim took the half-open circuit's one probe for this delivery."""

    def event(self, status: EventStatus, **fields: Any) -> ResultEvent:
        """The result event of this attempt (see :meth:`ResultEvent.for_job` for its id)."""
        return ResultEvent.for_job(
            self.job,
            run=self.run.number,
            run_token=self.run.id,
            attempt=self.attempt,
            status=status,
            duration_ms=int((time.monotonic() - self.started) * 1000),
            **fields,
        )


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
        self.store = JobStore.from_settings(redis_client, settings)
        self.gate = VendorGate(redis_client, self.keys, settings.circuit, settings.lease_s)
        self.endpoints = EndpointBook(redis_client, self.keys)
        self.worker_name = worker_name or f"{socket.gethostname()}-{os.getpid()}"
        # How long an attempt in flight holds its job: its vendor call ends by the deadline.
        self._lease_s = settings.lease_s
        # The gate limits of the vendor accounts this process has sent to: the claim asks the
        # gate of those in the same round trip as it loads the job.
        self._limits: dict[tuple[str, str], GateLimit] = {}
        for vendor_name, accounts in settings.accounts.items():
            for account in accounts:
                with contextlib.suppress(ConfigurationError, UnknownVendor):
                    self._remember_limit(sender.vendor(vendor_name, account))
        redact.register(settings.secrets())

    def run(
        self,
        job_id: str,
        run: int = 1,
        attempt: int = 1,
        *,
        deferred: bool = False,
        token: str | None = None,
    ) -> Step:
        """Run attempt ``attempt`` (1-based) of run ``run`` of the stored job ``job_id``.

        The job is loaded from the job store in the same round trip as its ledger, the gate and
        the in-flight mark (:meth:`_claim`). ``deferred`` says the job already announced that it
        waits for ``not_before``. ``token`` names this delivery (one is made when not given): a
        delivery run again with the same token after a lost reply knows its own in-flight mark.
        The calling thread holds one of the process's slots (:mod:`worker.slots`) except while
        it waits for the vendor.
        """
        with self.io.slots.held():
            return self._run(job_id, run, attempt, deferred, token or uuid.uuid4().hex)

    def _run(self, job_id: str, run: int, attempt: int, deferred: bool, token: str) -> Step:
        started = time.monotonic()
        claim = self._claim(job_id, run, attempt, token)
        previous = claim.entry
        if previous.job_doc is None:
            log.error("job not in the job store (expired or purged); nothing sent", job_id=job_id)
            return Step(summary="job not in the job store; nothing sent")
        if run < previous.current_run:
            log.info("message of an earlier run; a replay superseded it", job_id=job_id, run=run)
            return Step(summary=f"superseded by run {previous.current_run}")
        this_run = Run(run, previous.run_id)
        try:
            job = Job.model_validate_json(previous.job_doc)
        except ValidationError as exc:
            return self._refuse_document(job_id, previous.job_doc, exc, attempt, this_run)
        with structlog_context(job, attempt):
            probe = claim.admission is not None and claim.admission.verdict is GateVerdict.PROBE
            d = Delivery(job, this_run, attempt, started, deferred, token, claim.claimed, probe)
            return self._deliver(d, previous, claim)

    # --- the steps of a delivery ----------------------------------------------------------------

    def _deliver(self, d: Delivery, previous: LedgerEntry, claim: Claim) -> Step:
        """Plan the delivery from the ledger, then wait, settle or send."""
        if claim.own:
            log.info("the in-flight mark is this delivery's own (an earlier reply was lost)")
            plan = policy.Plan(Action.RUN, previous.attempt)
        else:
            plan = policy.plan(previous, d.attempt, self._lease_s)
        if (
            claim.claimed
            and not claim.own
            and (plan.action, plan.attempt) != (Action.RUN, d.attempt)
        ):
            raise RuntimeError(
                f"the job store claimed attempt {d.attempt}, the policy plans {plan.action} "
                f"of attempt {plan.attempt}"
            )
        if not plan.sends:
            return self._skip(d, plan, previous)
        d = replace(d, attempt=plan.attempt)
        wait = policy.not_before(d.job.not_before, datetime.now(UTC))
        if wait is not None:
            return self._postpone(d, wait)
        try:
            vendor = self.sender.vendor(d.job.vendor, d.job.account)
        except (ConfigurationError, UnknownVendor) as exc:
            error = ErrorInfo(kind=ErrorKind.INTERNAL, message=str(exc))
            outcome = Outcome(OutcomeKind.PERMANENT, error=error)
            return self._finish(d, policy.unsendable(EventStatus.DEAD_LETTERED, outcome, str(exc)))
        if plan.action is Action.INTERRUPTED:
            settled = self._settle_interrupted(vendor, d, previous)
            if settled is not None:
                return self._finish(d, settled)
        try:
            request = vendor.translate(d.job)
        except TranslationError as exc:
            outcome = Outcome.failure(
                OutcomeKind.PERMANENT, ErrorKind.VALIDATION, str(exc), code=exc.field
            )
            return self._finish(d, policy.unsendable(EventStatus.REJECTED, outcome, "translation"))
        return self._send(d, vendor, request, plan.take_over, claim)

    def _skip(self, d: Delivery, plan: policy.Plan, previous: LedgerEntry) -> Step:
        """A delivery that sends nothing: the run ended, a later attempt ran, or another
        delivery is in flight (look again when its lease ends)."""
        if plan.action is Action.FINISHED:
            log.info("job already finished; nothing to do")
            return Step(summary="run already ended")
        if plan.action is Action.STALE:
            log.info("stale delivery: a later attempt already ran", latest=previous.attempt)
            return Step(summary=f"stale: attempt {previous.attempt} already ran")
        log.info("another delivery is in flight; checking again later", other=previous.attempt)
        step = self._wait(d.job, plan.wait_s, d.attempt, deferred=d.deferred)
        return replace(step, summary="another delivery in flight")

    def _settle_interrupted(
        self, vendor: Vendor, d: Delivery, previous: LedgerEntry
    ) -> Verdict | None:
        """An attempt whose worker died mid-request: its verdict, or None to send it again."""
        if vendor.repeat_safe(d.job.operation):
            log.warning("interrupted attempt found; repeating it is safe", previous=d.attempt)
            return None
        lookup = self._lookup(vendor, d.job)
        verdict = policy.settle_interrupted(
            lookup, authoritative=vendor.lookup_authoritative, previous=previous
        )
        if verdict is None:
            log.warning("interrupted attempt; the vendor has no such order, sending again")
        elif verdict.reconciled:
            log.warning("interrupted attempt found; the vendor has the order")
        return verdict

    def _send(
        self,
        d: Delivery,
        vendor: Vendor,
        request: VendorRequest,
        take_over: str | None,
        claim: Claim,
    ) -> Step:
        """Pass the gate, mark the attempt in flight (unless the claim did both), call the
        vendor, judge and record."""
        limit = self._remember_limit(vendor)
        if d.claimed:
            # The claim asked the gate and marked the attempt. A mark found after a lost reply
            # (own) leaves the gate's answer unknown: report a success too, so a probe that went
            # out closes its circuit.
            admission = claim.admission or Admission(GateVerdict.OK, 0.0, "unknown", 0)
        else:
            gated = self._start(d, limit, take_over, claim.admission)
            if isinstance(gated, Step):
                return gated
            admission = gated
        outcome = self._submit(vendor, d.job, request)
        feedback = self._feedback(d.job, admission, limit, outcome)
        verdict = self._judge(vendor, d, outcome)
        if isinstance(vendor, Webhooks):
            verdict = self._endpoint_verdict(vendor, verdict)
        return self._finish(
            d, verdict, request=request.summary(vendor.account.base_url), feedback=feedback
        )

    def _judge(self, vendor: Vendor, d: Delivery, outcome: Outcome) -> Verdict:
        """The verdict on the vendor's answer, after a lookup when the answer leaves it open."""
        repeat_safe = vendor.repeat_safe(d.job.operation)
        reconciled = False
        if policy.needs_lookup(outcome, repeat_safe=repeat_safe):
            lookup = self._lookup(vendor, d.job)
            outcome, reconciled = policy.reconcile(
                outcome, lookup, authoritative=vendor.lookup_authoritative
            )
        retry = self.settings.retry_policy(d.job.vendor)
        decision = policy.decide(
            outcome, d.attempt, retry, repeat_safe=repeat_safe, age_s=_age_s(d.job)
        )
        return Verdict(decision, outcome, reconciled)

    def _endpoint_verdict(self, vendor: Webhooks, verdict: Verdict) -> Verdict:
        """A webhook delivery's answer tells its endpoint's failing clock; a 410, or failing
        for ``webhooks_disable_after_s``, disables the endpoint, and this delivery's event
        says so."""
        endpoint = vendor.endpoint.id
        after_s = self.settings.webhooks_disable_after_s
        success = verdict.outcome.kind is OutcomeKind.SUCCESS
        failing_s = self.endpoints.observe(
            endpoint, success=success, now=time.time(), clock_seen=vendor.clock_seen
        )
        vendor.clock_seen = not success
        reason = policy.endpoint_disable(verdict.outcome, failing_s, after_s)
        if reason is None:
            return verdict
        self.endpoints.disable(endpoint, reason)
        self.sender.forget_endpoint(endpoint)
        log.warning("webhook endpoint disabled", endpoint=endpoint, reason=reason)
        return policy.endpoint_disabled(verdict, endpoint, reason)

    def _finish(
        self,
        d: Delivery,
        verdict: Verdict,
        *,
        request: str | None = None,
        feedback: GateFeedback | None = None,
    ) -> Step:
        """Record the attempt's event (kept through a Redis outage), log it, and say what runs
        next."""
        if feedback is None and d.probe:
            feedback = GateFeedback(unprobe=True)  # the probe was taken, and no call made
        event = self._outcome_event(d, verdict)
        # Once the vendor answered, the answer is kept through a Redis outage: tried again until
        # Redis takes it, never dropped (a lost accepted order would come back in doubt).
        written = ride_out(
            lambda: self._record(
                d.job,
                event,
                request=request,
                http_status=verdict.outcome.http_status,
                feedback=feedback,
            ),
            what="record the outcome",
            status=event.status.value,
            vendor_order_id=event.vendor_order_id,
        )
        error = event.error
        log.info(
            "job event" if written else "run already ended; event not written",
            status=event.status.value,
            reason=verdict.decision.reason,
            vendor_order_id=event.vendor_order_id,
            error_kind=error.kind.value if error else None,
            error=error.message if error else None,
            http_status=verdict.outcome.http_status,
            retry_in_s=event.retry_in_s,
        )
        if not written:
            return Step(summary="run already ended")
        return self._next(d, verdict.decision, _summary(event))

    def _outcome_event(self, d: Delivery, verdict: Verdict) -> ResultEvent:
        """The attempt's result event: ids, status, the error explained and masked, and the
        vendor's answer only when something failed, masked and cut short (it echoes the
        customer's address)."""
        decision, outcome = verdict.decision, verdict.outcome
        error = outcome.error
        if error is not None:
            message = privacy.mask(redact.text(error.message), privacy.personal_values(d.job))
            error = error.model_copy(update={"message": message})
        body = outcome.body if outcome.kind is not OutcomeKind.SUCCESS else None
        retrying = decision.status is EventStatus.RETRY_SCHEDULED
        return d.event(
            decision.status,
            vendor_order_id=outcome.vendor_order_id or d.job.vendor_order_id,
            vendor_status=outcome.vendor_status,
            retry_in_s=round(decision.delay_s, 3) if retrying else None,
            error=error,
            vendor_response=privacy.excerpt(
                redact.text(body) if body is not None else None,
                d.job,
                self.settings.event_body_chars,
            ),
            reconciled=verdict.reconciled or None,
        )

    def _next(self, d: Delivery, decision: Decision, summary: str) -> Step:
        """The step after a recorded decision: a wait before the next (or the same) attempt,
        or nothing when the run ended."""
        follow = policy.follow_up(decision, d.attempt)
        if follow is None:
            return Step(summary=summary)
        step = self._wait(d.job, decision.delay_s, follow.attempt, deferred=follow.deferred)
        return replace(step, summary=summary)

    def _postpone(self, d: Delivery, wait: Postpone) -> Step:
        """Wait without spending an attempt (``not_before``, rate limit, open circuit). The first
        wait of a job announces itself with a ``deferred`` event; the waits after it do not."""
        if not d.deferred:
            event = d.event(
                EventStatus.DEFERRED,
                vendor_order_id=d.job.vendor_order_id,
                retry_in_s=round(wait.wait_s, 3),
                error=wait.error,
            )
            self._record(d.job, event)
            log.info("job deferred", reason=wait.reason, wait_s=round(wait.wait_s, 3))
        elif d.claimed:
            self.store.release(d.job, d.token, unprobe=d.probe)
        step = self._wait(d.job, wait.wait_s, d.attempt, deferred=True)
        return replace(step, summary=f"deferred in {wait.wait_s:.1f} s ({wait.reason})")

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

    # --- Redis ------------------------------------------------------------------------------

    def _remember_limit(self, vendor: Vendor) -> RateLimit | None:
        """``vendor``'s rate limit, remembered for the claims of its account's jobs."""
        limit = _rate_limit(vendor)
        key = (vendor.name, vendor.account_name)
        self._limits[key] = limit.gate if limit else GateLimit(0.0, 0.0)
        return limit

    def _claim(self, job_id: str, run: int, attempt: int, token: str) -> Claim:
        """The job's ledger for ``run`` with its document and, when the attempt simply runs now
        on an account this process knows, the gate's answer and the in-flight mark: one round
        trip."""
        return self.store.claim(job_id, run, attempt, self.worker_name, token, self._limits)

    def _start(
        self,
        d: Delivery,
        limit: RateLimit | None,
        take_over: str | None,
        admission: Admission | None,
    ) -> Admission | Step:
        """Pass the account's gate (unless the claim already asked it: ``admission``) and mark
        the attempt in flight: the admission, or the step when the job must wait (the gate held
        it, or another delivery just started)."""
        if admission is None:
            admission = self.gate.admit(d.job.vendor, d.job.account, limit)
        if not admission.allowed:
            return self._postpone(d, policy.hold(admission))
        if not self.store.begin_attempt(
            d.job.job_id, d.attempt, self.worker_name, token=d.token, take_over=take_over
        ):
            log.info("another delivery of this job just started; checking again later")
            return self._wait(d.job, self._lease_s, d.attempt, deferred=d.deferred)
        return admission

    def _record(
        self,
        job: Job,
        event: ResultEvent,
        *,
        request: str | None = None,
        http_status: int | None = None,
        feedback: GateFeedback | None = None,
    ) -> bool:
        """Write ``event`` with the ledger and the timeline, and ``feedback`` to the gate; False
        when the run already ended."""
        recorded = self.store.record(
            job,
            event,
            worker=self.worker_name,
            request=request,
            http_status=http_status,
            feedback=feedback,
        )
        if recorded.transition:
            log.warning(
                f"circuit {recorded.transition}",
                circuit=recorded.transition,
                error=event.error.message if event.error else None,
            )
        return recorded.written

    def _feedback(
        self, job: Job, admission: Admission, limit: RateLimit | None, outcome: Outcome
    ) -> GateFeedback:
        """What the call showed the circuit breaker and the shared rate limit: written with
        the attempt's outcome, in the same round trip."""
        report = policy.circuit_report(outcome, admission)
        cap = self.settings.retry_policy(job.vendor).retry_after_cap_s
        return GateFeedback(
            success=None if report is None else report is policy.Report.SUCCESS,
            pause_s=policy.vendor_pause(outcome, cap),
            limit=limit.gate if limit else None,
        )

    # --- the vendor -----------------------------------------------------------------------------

    def _submit(self, vendor: Vendor, job: Job, request: VendorRequest) -> Outcome:
        """Send ``request``; a defect in an adapter becomes an unknown outcome, never lost."""
        try:
            return self.io.run(self.sender.submit(vendor, job, request))
        except Exception as exc:
            log.exception("adapter failed")
            return Outcome.failure(
                OutcomeKind.UNKNOWN,
                ErrorKind.INTERNAL,
                f"internal error while submitting: {type(exc).__name__}: {exc}",
            )

    def _lookup(self, vendor: Vendor, job: Job) -> Lookup:
        """Ask the vendor whether it has the order."""
        lookup = self.io.run(self.sender.lookup(vendor, job))
        log.info("reconciliation lookup", lookup=lookup.kind.value, detail=lookup.detail or None)
        return lookup

    # --- a document that fails the contract -----------------------------------------------------

    def _refuse_document(
        self, job_id: str, raw: str, exc: ValueError, attempt: int, run: Run
    ) -> Step:
        """A stored job that fails the contract (a producer that skipped validation): rejected."""
        errors = format_validation_errors(exc) if isinstance(exc, ValidationError) else [str(exc)]
        log.error("job fails the contract", job_id=job_id, errors=errors)
        placeholder = _placeholder(job_id, raw)
        event = Delivery(placeholder, run, attempt, time.monotonic()).event(
            EventStatus.REJECTED,
            error=ErrorInfo(kind=ErrorKind.VALIDATION, message="; ".join(errors)),
        )
        self._record(placeholder, event)
        return Step(summary=_summary(event))


def _placeholder(job_id: str, raw: str) -> Job:
    """What a document that fails the contract still says of its job (ids only), unchecked."""
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = {}
    doc = doc if isinstance(doc, dict) else {}
    order = doc.get("order") if isinstance(doc.get("order"), dict) else {}
    try:
        operation = Operation(doc.get("operation", "create"))
    except ValueError:
        operation = Operation.CREATE
    return Job.model_construct(
        job_id=job_id,
        vendor=str(doc.get("vendor") or "unknown"),
        account=str(doc.get("account") or "default"),
        operation=operation,
        order_id=str(doc.get("order_id") or (order or {}).get("order_id") or "unknown"),
        order=None,
        vendor_order_id=None,
        enqueued_at=None,
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
