"""A job's timeline: every attempt and every operator action, for people finding out what happened.

The worker appends one entry for each result event it writes, in the same atomic step as the
event; the operator commands (replay, resolve, purge) append one for each action. Entries live in
a Redis list, ``<prefix>:timeline:<job_id>``, oldest first, capped at :data:`MAX_ENTRIES`, and
expire with the job. Nothing secret goes in: the request is summarised as method and path with
secret query values masked, and bodies and messages are redacted and cut to an excerpt.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from order_dispatch import redact
from order_dispatch.contract import ErrorInfo, EventStatus, ResultEvent

#: Entries kept per job (the oldest are dropped first).
MAX_ENTRIES = 500
#: Longest vendor body excerpt kept in an entry.
EXCERPT_CHARS = 500

Action = Literal["replay", "resolve", "purge"]


class TimelineEntry(BaseModel):
    """One line of a job's history: an attempt's event as the worker saw it, or an action."""

    model_config = ConfigDict(frozen=True)

    at: AwareDatetime
    run: int = Field(ge=1)
    attempt: int = Field(ge=1)
    status: EventStatus
    event_id: str
    recorded: bool = Field(
        True,
        description="False when no event was written: the run had already ended, or a replay "
        "had started a newer one (a late delivery; its request may still have reached the "
        "vendor).",
    )
    worker: str | None = Field(None, description="The worker process (host-pid) that ran it.")
    request: str | None = Field(None, description="Method and path, e.g. 'POST /v1/orders'.")
    http_status: int | None = None
    response: str | None = Field(None, description="The vendor's body: redacted excerpt.")
    error: ErrorInfo | None = None
    vendor_order_id: str | None = None
    retry_in_s: float | None = None
    reconciled: bool | None = None
    duration_ms: int | None = None
    action: Action | None = Field(None, description="Set on an operator's action.")
    operator: str | None = None
    note: str | None = None
    detail: str | None = Field(None, description="What the action did, in words.")

    @classmethod
    def of_event(cls, event: ResultEvent, **fields: Any) -> TimelineEntry:
        """The entry of ``event``; ``fields`` adds what the event does not carry (worker,
        request, http_status, action, detail)."""
        status = fields.pop("http_status", None)
        if status is None and event.error is not None:
            status = event.error.http_status
        request = fields.pop("request", None)
        return cls(
            at=event.occurred_at,
            run=event.run,
            attempt=event.attempt,
            status=event.status,
            event_id=event.event_id,
            request=redact.text(request) if request else None,
            http_status=status,
            response=excerpt(event.vendor_response),
            error=event.error,
            vendor_order_id=event.vendor_order_id,
            retry_in_s=event.retry_in_s,
            reconciled=event.reconciled,
            duration_ms=event.duration_ms,
            operator=event.operator,
            note=event.note,
            **fields,
        )

    def to_json(self) -> str:
        """The entry as stored: compact JSON without empty fields."""
        return self.model_dump_json(exclude_none=True)


def excerpt(body: str | None, limit: int = EXCERPT_CHARS) -> str | None:
    """``body`` redacted and cut to ``limit`` characters, marked when cut."""
    if body is None:
        return None
    body = redact.text(body)
    return body if len(body) <= limit else body[:limit] + f"...[{len(body) - limit} more]"
