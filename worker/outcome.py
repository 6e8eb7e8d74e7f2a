"""How a dispatch task ends, so that Celery's task state (what Flower shows) tells the truth.

The pipeline records every outcome (ledger, result event, timeline) before the task ends, and
sums it up in a few words (:attr:`worker.pipeline.Step.summary`, first word the event status).
The task then ends as that outcome reads:

- ``accepted`` (and anything that is not a failure: a run that had already ended, a job no
  longer stored): it returns the summary, state ``SUCCESS``;
- ``rejected``, ``dead_lettered``, ``in_doubt``: it raises :class:`DeliveryFailed` with the
  summary as its text, state ``FAILURE``, the reason as the exception;
- a retry or a deferral (``retry_scheduled``, ``deferred``): Celery's ``Retry`` carrying
  :class:`Waiting`, state ``RETRY``. A wait in the durable schedule stays ``RETRY`` until the
  next attempt starts; a short one (a countdown) is held by a worker with its ETA, which Flower
  shows as ``RECEIVED``.

Celery would reject the message of a failed late-ack task without requeue (and the transport
would quarantine it). A :class:`DeliveryFailed` is no defect: its outcome is recorded, so
:class:`DispatchRequest` acks the message, as for a success, and sends Celery's ``task-failed``
event. Every other exception keeps Celery's handling (``task_acks_on_failure = False``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from celery.exceptions import Retry
from celery.utils.saferepr import saferepr
from celery.worker.request import Request

from order_dispatch.contract import EventStatus

#: Terminal statuses whose task ends in ``FAILURE``.
FAILED = frozenset({EventStatus.REJECTED, EventStatus.DEAD_LETTERED, EventStatus.IN_DOUBT})


class DeliveryFailed(Exception):
    """The delivery ended ``rejected``, ``dead_lettered`` or ``in_doubt``; its outcome is
    recorded. The text is the pipeline's summary (``rejected (vendor_rejected, HTTP 400)``)."""


class Waiting(Exception):
    """The next attempt waits (a retry or a deferral); the text is the pipeline's summary
    (``retry_scheduled in 41.3 s (vendor_unavailable, HTTP 503)``). Carried by Celery's
    ``Retry``, never raised alone."""


def status_of(summary: str) -> EventStatus | None:
    """The event status a summary starts with, if it starts with one."""
    word = summary.split(" ", 1)[0]
    try:
        return EventStatus(word)
    except ValueError:
        return None


def failure(summary: str) -> DeliveryFailed | None:
    """The exception that ends a task whose delivery came to ``summary``, or None (success)."""
    return DeliveryFailed(summary) if status_of(summary) in FAILED else None


def waiting(summary: str, wait_s: float) -> Retry:
    """The ``Retry`` that ends a task whose next attempt waits ``wait_s`` seconds in the durable
    schedule (nothing to publish: the schedule holds the message)."""
    return Retry(exc=Waiting(summary), when=datetime.now(UTC) + timedelta(seconds=wait_s))


class DispatchRequest(Request):
    """Celery's request, except that a task ended by :class:`DeliveryFailed` has its message
    acked (its outcome is recorded), and still reports ``task-failed``."""

    def on_failure(
        self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False
    ) -> None:
        """Ack a recorded failure; leave any other exception to Celery."""
        exc = exc_info.exception
        if not isinstance(exc, DeliveryFailed):  # billiard's ExceptionWithTraceback wraps it
            exc = getattr(exc, "exc", exc)
        if not isinstance(exc, DeliveryFailed):
            super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)
            return
        from celery.worker.state import task_ready

        task_ready(self)
        self.acknowledge()
        if send_failed_event:
            self.send_event("task-failed", exception=saferepr(exc), traceback="")
