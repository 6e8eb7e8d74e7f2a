"""The Celery task: thin. It hands the job to the pipeline and turns the answer into a retry."""

from __future__ import annotations

from typing import Any

from celery import Task

from order_dispatch.keys import DISPATCH_TASK, queue_for
from worker import runtime
from worker.app import app


@app.task(name=DISPATCH_TASK, bind=True, acks_late=True, ignore_result=True, max_retries=None)
def dispatch(
    self: Task[Any, Any], job: dict[str, Any], attempt: int = 1, deferred: bool = False
) -> None:
    """Run one attempt of ``job``; a retryable failure re-queues it after the chosen wait."""
    rt = runtime.current()
    step = rt.pipeline.run(job, attempt=attempt, deferred=deferred)
    if step.retry_in_s is not None:
        raise self.retry(
            kwargs={"job": job, "attempt": step.attempt, "deferred": step.deferred},
            countdown=step.retry_in_s,
            max_retries=None,
            queue=queue_for(str(job.get("vendor")), rt.settings.key_prefix),
        )
