"""The Celery task: thin. It hands the job to the pipeline and turns its answer into a wait.

Its arguments are ids only (``job_id``, ``run``, ``attempt``): the job itself is loaded from
the job store, so customer data never sits in broker messages, task events or Flower. A short
wait is a Celery countdown; a longer one goes to the durable schedule in Redis
(:mod:`worker.schedule`), never held in a worker's memory past the visibility timeout.
"""

from __future__ import annotations

import time
from typing import Any

from celery import Task

from order_dispatch.keys import DISPATCH_TASK
from worker import runtime
from worker.app import app


@app.task(name=DISPATCH_TASK, bind=True, acks_late=True, ignore_result=True, max_retries=None)
def dispatch(
    self: Task[Any, Any], job_id: str, run: int = 1, attempt: int = 1, deferred: bool = False
) -> None:
    """Run one attempt of the stored job ``job_id``; a wait re-queues it after the delay."""
    rt = runtime.current()
    step = rt.pipeline.run(job_id, run, attempt, deferred=deferred)
    if step.retry_in_s is None:
        return
    assert step.queue is not None
    if step.retry_in_s > rt.settings.schedule_threshold_s:
        rt.schedule.add(
            job_id=job_id,
            run=run,
            attempt=step.attempt,
            deferred=step.deferred,
            queue=step.queue,
            priority=step.priority,
            due=time.time() + step.retry_in_s,
        )
        return
    raise self.retry(
        kwargs={"job_id": job_id, "run": run, "attempt": step.attempt, "deferred": step.deferred},
        countdown=step.retry_in_s,
        max_retries=None,
        queue=step.queue,
        priority=step.priority,
    )
