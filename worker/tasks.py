"""The Celery task: thin. It hands the job to the pipeline and turns the answer into a retry."""

from __future__ import annotations

import threading
from typing import Any

import redis
from celery import Task

from order_dispatch.keys import DISPATCH_TASK, queue_for
from order_dispatch.settings import get_settings
from worker.app import app
from worker.http import shared_client
from worker.pipeline import Pipeline

_lock = threading.Lock()
_pipeline: Pipeline | None = None


def get_pipeline() -> Pipeline:
    """The process's pipeline (created on first use, shared by the pool's threads)."""
    global _pipeline
    if _pipeline is None:
        with _lock:
            if _pipeline is None:
                settings = get_settings()
                _pipeline = Pipeline(
                    settings, redis.Redis.from_url(settings.redis_url), shared_client(settings.http)
                )
    return _pipeline


@app.task(name=DISPATCH_TASK, bind=True, acks_late=True, ignore_result=True, max_retries=None)
def dispatch(
    self: Task[Any, Any], job: dict[str, Any], attempt: int = 1, deferred: bool = False
) -> None:
    """Run one attempt of ``job``; a retryable failure re-queues it after the chosen wait."""
    step = get_pipeline().run(job, attempt=attempt, deferred=deferred)
    if step.retry_in_s is not None:
        raise self.retry(
            kwargs={"job": job, "attempt": step.attempt, "deferred": step.deferred},
            countdown=step.retry_in_s,
            max_retries=None,
            queue=queue_for(str(job.get("vendor")), get_settings().key_prefix),
        )
