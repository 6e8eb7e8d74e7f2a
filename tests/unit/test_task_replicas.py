"""The dispatch task after the outcome is recorded: what the wait for a replica decides.

The pipeline and Redis are stand-ins here (the task's own decision is under test); the
failover itself runs for real in ``tests/integration/test_sentinel.py``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import redis
from celery.exceptions import Reject

from order_dispatch.redis_client import NotReplicated
from worker import runtime, tasks
from worker.pipeline import Step


class _Pipeline:
    def __init__(self) -> None:
        self.runs = 0

    def run(self, job_id: str, run: int, attempt: int, **_: Any) -> Step:
        self.runs += 1
        return Step(summary="accepted soo_1")


def _task_with(monkeypatch: pytest.MonkeyPatch, wait: Exception | None) -> _Pipeline:
    pipeline = _Pipeline()
    monkeypatch.setattr(runtime, "current", lambda: SimpleNamespace(redis=None, pipeline=pipeline))

    def wait_for_replicas(_client: Any) -> int:
        if wait is not None:
            raise wait
        return 1

    monkeypatch.setattr(tasks, "wait_for_replicas", wait_for_replicas)
    return pipeline


def test_a_redis_lost_while_the_outcome_waits_for_a_replica_sends_the_message_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline = _task_with(monkeypatch, redis.ConnectionError("Connection closed by server."))
    with pytest.raises(Reject) as raised:
        tasks.dispatch.run(job_id="job-1", run=1, attempt=1)
    assert raised.value.requeue is True  # type: ignore[attr-defined]  # set by its __init__
    assert pipeline.runs == 1


def test_a_replica_that_does_not_confirm_in_time_lets_the_job_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _task_with(monkeypatch, NotReplicated("0 of 1 replicas confirmed the write within 1000 ms"))
    assert tasks.dispatch.run(job_id="job-1", run=1, attempt=1) == "accepted soo_1"


def test_a_confirmed_outcome_ends_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    _task_with(monkeypatch, None)
    assert tasks.dispatch.run(job_id="job-1", run=1, attempt=1) == "accepted soo_1"
