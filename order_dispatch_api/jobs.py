"""Every read of job state the HTTP API makes, in one module.

The job status (:meth:`JobReader.status`) is read from the job hash (receipt, run), the delivery
ledger (state, attempts, last status) and the job's timeline (when the next attempt is due, the
vendor's order id, the last error); the timeline (:meth:`JobReader.timeline`) is
:meth:`producers.operations.Operations.timeline`, what ``order-dispatch timeline --json``
shows. When the job store offers its own status read, this module is the one to change.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Literal

import redis
import redis.asyncio
from pydantic import BaseModel, Field, ValidationError

from order_dispatch import privacy, redact
from order_dispatch.contract import ErrorInfo, EventStatus, Job
from order_dispatch.keys import Keys
from order_dispatch.timeline import TimelineEntry
from producers.enqueue import Receipt
from producers.operations import JobNotFound, Operations

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

#: Timeline entries read back for the vendor's order id and the last error.
_RECENT = 50


class LastError(BaseModel):
    """The last failure of the job, its message masked (secrets and the order's personal data)."""

    kind: str
    code: str | None = None
    message: str
    http_status: int | None = None
    retryable: bool = False
    at: datetime | None = None


class JobStatus(BaseModel):
    """Where a job stands (``GET /v1/jobs/{job_id}``)."""

    job_id: str
    vendor: str
    account: str
    operation: str
    order_id: str
    queue: str
    enqueued_at: datetime
    run: int = Field(ge=1, description="The job's current run (a replay starts the next).")
    status: JobState
    terminal: bool = Field(description="True once the current run has ended.")
    attempts: int = Field(ge=0, description="Attempts made in the current run.")
    next_attempt_at: datetime | None = Field(
        None, description="When the next attempt is due (retrying or deferred)."
    )
    vendor_order_id: str | None = None
    last_error: LastError | None = None
    updated_at: datetime | None = Field(None, description="The last event of the job.")
    order: dict[str, Any] | None = Field(
        None,
        description="The order as stored (personal data): only for keys with `read:orders`, "
        "and only while the job store keeps it.",
    )


class JobReader:
    """Reads job state for the API: asyncio for the status, the operators' module (in a
    worker thread) for the timeline."""

    def __init__(self, client: redis.asyncio.Redis, sync_client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._operations = Operations(sync_client, key_prefix=keys.prefix)

    async def status(self, job_id: str, *, with_order: bool) -> JobStatus | None:
        """``job_id``'s status, None when no such job is known."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(self.keys.job(job_id), "receipt", "run")
        pipe.hmget(self.keys.ledger(job_id), "state", "attempt", "last_status")
        pipe.lrange(self.keys.timeline(job_id), -_RECENT, -1)
        pipe.get(self.keys.document(job_id))
        (raw_receipt, run), (state, attempt, last_status), raw_entries, doc = await pipe.execute()
        if raw_receipt is None:
            return None
        receipt = Receipt.model_validate_json(raw_receipt)
        entries = _entries(raw_entries)
        job = _job(doc)
        found = _state(_text(state), _text(last_status))
        latest = entries[-1] if entries else None
        next_at = None
        if found in ("retrying", "deferred") and latest and latest.retry_in_s is not None:
            next_at = latest.at + timedelta(seconds=latest.retry_in_s)
        return JobStatus(
            job_id=job_id,
            vendor=receipt.vendor,
            account=receipt.account,
            operation=receipt.operation,
            order_id=receipt.order_id,
            queue=receipt.queue,
            enqueued_at=receipt.enqueued_at,
            run=int(run or 1),
            status=found,
            terminal=found not in ("queued", "in_flight", "retrying", "deferred"),
            attempts=int(attempt or 0) if found != "queued" else 0,
            next_attempt_at=next_at,
            vendor_order_id=next(
                (e.vendor_order_id for e in reversed(entries) if e.vendor_order_id), None
            ),
            last_error=_last_error(entries, job),
            updated_at=latest.at if latest else None,
            order=_order(doc) if with_order and job is not None else None,
        )

    def timeline(self, job_id: str) -> dict[str, Any] | None:
        """``job_id``'s timeline as ``order-dispatch timeline --json`` shows it, None when no
        such job is known (blocking: call it in a worker thread)."""
        try:
            return self._operations.timeline(job_id).as_json()
        except JobNotFound:
            return None


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _state(ledger_state: str | None, last_status: str | None) -> JobState:
    if ledger_state is None:
        return "queued"
    if ledger_state == "in_flight":
        return "in_flight"
    if ledger_state == "waiting":
        return "retrying"
    if ledger_state == "deferred":
        return "deferred"
    if ledger_state == "done" and last_status in (
        "accepted",
        "rejected",
        "dead_lettered",
        "in_doubt",
    ):
        return last_status  # type: ignore[return-value]
    return "queued"


def _entries(raw: list[Any]) -> list[TimelineEntry]:
    out = []
    for item in raw:
        try:
            out.append(TimelineEntry.model_validate_json(item))
        except ValidationError:
            continue  # written by a newer version
    return out


def _job(doc: Any) -> Job | None:
    if doc is None:
        return None
    try:
        return Job.model_validate_json(doc)
    except ValidationError:
        return None


def _order(doc: Any) -> dict[str, Any] | None:
    data = json.loads(doc)
    order = data.get("order") if isinstance(data, dict) else None
    return order if isinstance(order, dict) else None


def _last_error(entries: list[TimelineEntry], job: Job | None) -> LastError | None:
    for entry in reversed(entries):
        if entry.error is not None and entry.status is not EventStatus.ACCEPTED:
            return _masked(entry.error, entry.at, job)
    return None


def _masked(error: ErrorInfo, at: datetime, job: Job | None) -> LastError:
    values = privacy.personal_values(job) if job is not None else []
    return LastError(
        kind=error.kind.value,
        code=error.code,
        message=privacy.mask(redact.text(error.message), values),
        http_status=error.http_status,
        retryable=error.retryable,
        at=at,
    )
