"""Every read of job state the HTTP API makes, in one module, through the job store.

:meth:`JobReader.status` is :meth:`order_dispatch.store.JobStore.status` (where the job stands)
with its receipt (queue, when enqueued) and, for keys with ``read:orders``, its order;
:meth:`JobReader.timeline` is :meth:`~order_dispatch.store.JobStore.timeline`, what
``order-dispatch timeline --json`` shows. Both block on Redis: call them in a worker thread.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from order_dispatch import privacy, redact
from order_dispatch.contract import Job
from order_dispatch.store import JobNotFound, JobStore
from order_dispatch.store.records import Phase

#: Where a job stands: waiting in its queue, an attempt out, waiting for its next attempt,
#: waiting without spending one (throttled), or how its run ended.
JobState = Literal[
    "queued",
    "in_flight",
    "retrying",
    "deferred",
    "accepted",
    "rejected",
    "dead_lettered",
    "in_doubt",
]
_ENDS = ("accepted", "rejected", "dead_lettered", "in_doubt")


class JobStatus(BaseModel):
    """Where a job stands (``GET /v1/jobs/{job_id}``)."""

    job_id: str
    vendor: str | None = None
    account: str | None = None
    operation: str | None = None
    order_id: str | None = None
    queue: str | None = None
    enqueued_at: datetime | None = None
    run: int = Field(ge=1, description="The job's current run (a replay starts the next).")
    status: JobState
    terminal: bool = Field(description="True once the current run has ended.")
    attempts: int = Field(ge=0, description="Attempts begun in the current run.")
    next_attempt_at: datetime | None = Field(
        None, description="When the next attempt is due (retrying or deferred)."
    )
    vendor_order_id: str | None = None
    last_error: str | None = Field(
        None,
        description="The last error, `kind: message`, with secrets and the order's personal "
        "data masked.",
    )
    updated_at: datetime | None = Field(None, description="When the job's last event happened.")
    order: dict[str, Any] | None = Field(
        None,
        description="The order as stored (personal data): only for keys with `read:orders`, "
        "and only while the job store keeps it.",
    )


class JobReader:
    """Reads job state for the API (blocking: run in a worker thread)."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def status(self, job_id: str, *, with_order: bool) -> JobStatus | None:
        """``job_id``'s status, None when no such job is known."""
        try:
            found = self.store.status(job_id)
        except JobNotFound:
            return None
        receipt = self.store.receipt(job_id)
        try:
            doc: str | None = self.store.stored(job_id).doc
        except JobNotFound:
            doc = None  # purged, or past its retention
        job = _job(doc)
        if found.phase is Phase.TERMINAL:
            status = found.status if found.status in _ENDS else "dead_lettered"
        else:
            status = found.phase.value
        error = found.last_error
        if error is not None:
            values = privacy.personal_values(job) if job is not None else []
            error = privacy.mask(redact.text(error), values)
        return JobStatus(
            job_id=job_id,
            vendor=found.vendor,
            account=found.account,
            operation=found.operation,
            order_id=found.order_id,
            queue=receipt.get("queue"),
            enqueued_at=receipt.get("enqueued_at"),
            run=found.run,
            status=status,
            terminal=found.phase is Phase.TERMINAL,
            attempts=found.attempts,
            next_attempt_at=found.next_attempt_at,
            vendor_order_id=found.vendor_order_id,
            last_error=error,
            updated_at=found.updated_at,
            order=_order(doc) if with_order else None,
        )

    def timeline(self, job_id: str) -> dict[str, Any] | None:
        """``job_id``'s timeline as ``order-dispatch timeline --json`` shows it, None when no
        such job is known."""
        try:
            return self.store.timeline(job_id).as_json()
        except JobNotFound:
            return None


def _job(doc: str | None) -> Job | None:
    if doc is None:
        return None
    try:
        return Job.model_validate_json(doc)
    except ValidationError:
        return None


def _order(doc: str | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    data = json.loads(doc)
    order = data.get("order") if isinstance(data, dict) else None
    return order if isinstance(order, dict) else None
