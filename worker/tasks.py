"""The Celery task: thin. It hands the job to the pipeline and turns the answer into a retry.

Its arguments are ids only (``job_id``, ``run``, ``attempt``): the job itself is loaded from
the job store, so customer data never sits in broker messages, task events or Flower. A short
wait is a Celery countdown; a longer one goes to the durable schedule in Redis
(:mod:`worker.schedule`), never held in a worker's memory past the visibility timeout. (With
RabbitMQ as the broker every wait is a countdown: RabbitMQ returns a dead worker's unacked
messages at once, so there is no visibility timeout to outlive.)

The task ends as its delivery came to (:mod:`worker.outcome`), once the outcome is recorded:
``SUCCESS`` with the summary as result (``accepted soo_1``), ``FAILURE`` with the reason as the
exception (``DeliveryFailed('rejected (vendor_rejected, HTTP 400)')``, its message acked), or
``RETRY`` while the next attempt waits. That is what Flower shows.

Apart from that recorded failure, the task never lets an exception reach Celery, which would
reject the message without requeue (late acks with ``task_acks_on_failure=False``) and so
delete it:

- arguments that are not a dispatch call, or a job that fails for a reason waiting will not
  cure (a ledger key of the wrong type, a defect): the message goes to the quarantine;
- a Redis outage (down, out of memory, read-only): the call is tried again with a capped
  backoff until Redis is back; a stop requested meanwhile sends the message back to the queue.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from celery import Task
from celery.exceptions import Reject
from celery.worker import state as worker_state
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from order_dispatch.contract import format_validation_errors
from order_dispatch.keys import DISPATCH_TASK, Keys, task_display_args, task_display_name
from order_dispatch.logs import get_logger
from order_dispatch.redis_client import NotReplicated, wait_for_replicas
from worker import policy, runtime
from worker.app import app
from worker.outage import is_outage, ride_out
from worker.outcome import DeliveryFailed, Waiting, failure, waiting
from worker.pipeline import Step
from worker.quarantine import Quarantine, envelope
from worker.shutdown import requested

log = get_logger("worker.tasks")


class DispatchCall(BaseModel):
    """The dispatch task's arguments, checked before anything runs."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    job_id: str = Field(min_length=1)
    run: int = Field(1, ge=1)
    attempt: int = Field(1, ge=1)
    deferred: bool = False


@app.task(
    name=DISPATCH_TASK,
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=None,
    Request="worker.outcome:DispatchRequest",
    throws=(DeliveryFailed,),
)
def dispatch(self: Task[Any, Any], *args: Any, **kwargs: Any) -> str:
    """Run one attempt of the stored job ``job_id`` (keyword arguments ``job_id``, ``run``,
    ``attempt``, ``deferred``); a wait re-queues it after the chosen delay."""
    try:
        if args:
            raise ValueError("positional arguments: the task takes keyword arguments only")
        call = DispatchCall.model_validate(kwargs)
    except ValidationError as exc:
        _quarantine(self, "not a dispatch call: " + "; ".join(format_validation_errors(exc)))
        return "quarantined: not a dispatch call"
    except ValueError as exc:
        _quarantine(self, f"not a dispatch call: {exc}")
        return "quarantined: not a dispatch call"
    rt = runtime.current()
    # One token per delivery: a run tried again through a Redis outage (its reply to the
    # in-flight mark maybe lost) finds the mark its own and sends, instead of waiting it out.
    token = uuid.uuid4().hex
    try:
        step = ride_out(
            lambda: rt.pipeline.run(
                call.job_id, call.run, call.attempt, deferred=call.deferred, token=token
            ),
            what="run a job",
            stop=requested,
            job_id=call.job_id,
        )
        retry = None
        if step.retry_in_s is not None:
            retry = ride_out(
                lambda: _schedule(self, call, step),
                what="schedule the next attempt",
                stop=requested,
                job_id=call.job_id,
            )
    except Exception as exc:
        if is_outage(exc):
            log.warning(
                "stopping while Redis is out; the job goes back to its queue",
                job_id=call.job_id,
                error=f"{type(exc).__name__}: {exc}",
            )
            raise Reject(exc, requeue=True) from exc
        log.exception("job failed; quarantined", job_id=call.job_id)
        _quarantine(self, f"the job failed: {type(exc).__name__}: {exc}", job_id=call.job_id)
        return "quarantined: the job failed"
    _replicated(rt.redis, call.job_id)
    if retry is not None:
        raise retry
    ending = failure(step.summary)
    if ending is not None:
        raise ending
    return step.summary


def _replicated(client: Any, job_id: str) -> None:
    """With replicas asked for (Sentinel): the outcome and its result event are on a replica
    before the message is acked, so a failover cannot lose a terminal event whose message is
    gone. A replica that does not confirm in time is logged; the job goes on (a master left
    without replicas must not hold every job back).

    Redis lost during the wait (a failover's kill of the master, most likely) may have taken the
    outcome with it: the message goes back to its queue instead of being acked. Run again, the
    job finds its outcome (the run ended: nothing more happens) or, if the outcome was lost, its
    attempt in flight, settled by reconciliation once its lease ends: never a job without a
    terminal event."""
    try:
        wait_for_replicas(client)
    except NotReplicated as exc:
        log.warning("outcome not confirmed by a replica", job_id=job_id, error=str(exc))
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning(
            "Redis was lost while the outcome waited for a replica; the job goes back to its "
            "queue to find whether the outcome survived",
            job_id=job_id,
            error=f"{type(exc).__name__}: {exc}",
        )
        raise Reject(exc, requeue=True) from exc


def _schedule(task: Task[Any, Any], call: DispatchCall, step: Step) -> Exception:
    """Publish the next attempt, in the durable schedule when the wait is long, else as a
    Celery countdown; either way the exception that ends this attempt: Celery's ``Retry``."""
    assert step.queue is not None and step.retry_in_s is not None
    rt = runtime.current()
    place = policy.place_wait(
        step.retry_in_s,
        broker_is_redis=rt.settings.broker_is_redis,
        threshold_s=rt.settings.schedule_threshold_s,
    )
    if place is policy.Place.SCHEDULE:
        rt.schedule.add(
            job_id=call.job_id,
            run=call.run,
            attempt=step.attempt,
            deferred=step.deferred,
            queue=step.queue,
            priority=step.priority,
            due=time.time() + step.retry_in_s,
            display=step.display,
            task_id=task.request.id,
        )
        return waiting(step.summary, step.retry_in_s)
    try:
        return task.retry(  # type: ignore[call-arg]  # kwargsrepr is an apply_async option
            kwargs={
                "job_id": call.job_id,
                "run": call.run,
                "attempt": step.attempt,
                "deferred": step.deferred,
            },
            exc=Waiting(step.summary),
            countdown=step.retry_in_s,
            max_retries=None,
            queue=step.queue,
            priority=step.priority,
            throw=False,
            # What Flower shows of the retry: the job's ids, not the bare arguments.
            shadow=task_display_name(step.display or {}),
            kwargsrepr=task_display_args(step.display or {}),
        )
    except Reject as exc:
        # Celery turns a failed publish into a reject without requeue: the message would go.
        reason = getattr(exc, "reason", None)
        if isinstance(reason, Exception):
            raise reason from None
        raise


def _quarantine(task: Task[Any, Any], reason: str, *, job_id: str | None = None) -> None:
    """Keep this task's message in the quarantine with ``reason``."""
    request = task.request
    # The message as it arrived, from the worker's record of the requests it holds.
    held = worker_state.requests.get(request.id) if request.id else None
    raw = (
        envelope(held.message)
        if held is not None
        else json.dumps({"args": request.args, "kwargs": request.kwargs}, default=str).encode()
    )
    Quarantine(runtime.current().redis, Keys(runtime.current().settings.key_prefix)).put(
        raw,
        queue=(request.delivery_info or {}).get("routing_key") or "",
        reason=reason,
        task=task.name,
        task_id=request.id,
        job_id=job_id,
    )
