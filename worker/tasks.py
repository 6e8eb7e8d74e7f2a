"""The Celery task: thin. It hands the job to the pipeline and turns its answer into a wait.

Its arguments are ids only (``job_id``, ``run``, ``attempt``): the job itself is loaded from
the job store, so customer data never sits in broker messages, task events or Flower. A short
wait is a Celery countdown; a longer one goes to the durable schedule in Redis
(:mod:`worker.schedule`), never held in a worker's memory past the visibility timeout. (With
RabbitMQ as the broker every wait is a countdown: RabbitMQ returns a dead worker's unacked
messages at once, so there is no visibility timeout to outlive.)
"""

from __future__ import annotations

import time
from typing import Any

from celery import Task

from order_dispatch.keys import DISPATCH_TASK, task_display_args, task_display_name
from worker import runtime
from worker.app import app


@app.task(name=DISPATCH_TASK, bind=True, acks_late=True, ignore_result=True, max_retries=None)
def dispatch(
    self: Task[Any, Any], job_id: str, run: int = 1, attempt: int = 1, deferred: bool = False
) -> str:
    """Run one attempt of the stored job ``job_id``; a wait re-queues it after the delay.

    Returns what the delivery came to (``accepted soo_1``, ``rejected (vendor_rejected, HTTP
    400)``, ``in_doubt (transport)``...): Flower shows it as the task's result, so an order the
    vendor refused does not pass for a plain success.
    """
    rt = runtime.current()
    step = rt.pipeline.run(job_id, run, attempt, deferred=deferred)
    if step.retry_in_s is None:
        return step.summary
    assert step.queue is not None
    durable = rt.settings.broker_is_redis  # the schedule moves messages into Redis queues
    if durable and step.retry_in_s > rt.settings.schedule_threshold_s:
        rt.schedule.add(
            job_id=job_id,
            run=run,
            attempt=step.attempt,
            deferred=step.deferred,
            queue=step.queue,
            priority=step.priority,
            due=time.time() + step.retry_in_s,
            display=step.display,
        )
        return step.summary
    raise self.retry(
        kwargs={"job_id": job_id, "run": run, "attempt": step.attempt, "deferred": step.deferred},
        countdown=step.retry_in_s,
        max_retries=None,
        queue=step.queue,
        priority=step.priority,
        # What Flower shows of the retry: the job's ids, not the bare arguments.
        shadow=task_display_name(step.display or {}),
        kwargsrepr=task_display_args(step.display or {}),  # type: ignore[call-arg]
    )
