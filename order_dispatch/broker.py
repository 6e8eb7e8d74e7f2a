"""Celery task messages (protocol 2, JSON) for the Redis transport, written without Celery.

Writing the message ourselves lets a producer check for a duplicate job and queue the job in one
atomic server-side step, and queue a whole batch in one round trip; Celery's own ``send_task``
can do neither. The format is Celery's documented message protocol v2 as kombu's Redis transport
stores it; ``tests/unit/test_message.py`` checks it against what Celery itself produces. The
worker's durable retry schedule writes the same messages, so the format lives in the foundation.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import uuid
from bisect import bisect
from collections.abc import Mapping
from typing import Any

from order_dispatch.keys import DISPATCH_TASK, task_display_args, task_display_name

# kombu.transport.redis: PRIORITY_STEPS and Channel.sep
_PRIORITY_STEPS = (0, 3, 6, 9)
_PRIORITY_SEP = "\x06\x16"
_ORIGIN = f"{os.getpid()}@{socket.gethostname()}"


def dispatch_kwargs(job_id: str, *, run: int, attempt: int) -> dict[str, Any]:
    """The dispatch task's arguments: ids only. The job itself stays in the job store, so no
    customer data sits in broker messages, task events, ``celery inspect`` or Flower."""
    return {"job_id": job_id, "run": run, "attempt": attempt}


def queue_key(queue: str, priority: int) -> str:
    """The Redis list kombu reads for ``queue`` at ``priority`` (0 is served first)."""
    step = _PRIORITY_STEPS[bisect(_PRIORITY_STEPS, priority) - 1]
    return f"{queue}{_PRIORITY_SEP}{step}" if step else queue


def queue_of(queue_list: str) -> str:
    """The queue whose list (at any priority, as :func:`queue_key` names it) is ``queue_list``."""
    return queue_list.partition(_PRIORITY_SEP)[0]


def queue_keys(queue: str) -> list[str]:
    """Every Redis list kombu keeps for ``queue``: one per priority step, highest first."""
    return [queue_key(queue, step) for step in _PRIORITY_STEPS]


def task_body_and_headers(
    task_id: str,
    kwargs: dict[str, Any],
    *,
    task: str = DISPATCH_TASK,
    display: Mapping[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The JSON body and the headers of one task call in Celery's message protocol 2.

    Flower and ``celery inspect`` show the task as :func:`~order_dispatch.keys.task_display_name`
    with :func:`~order_dispatch.keys.task_display_args` of ``display`` (job id, vendor,
    operation, order id): ids, not the order.
    """
    job = display if display is not None else kwargs
    body = json.dumps(
        [[], kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    )
    headers: dict[str, Any] = {
        "lang": "py",
        "task": task,
        "id": task_id,
        "shadow": task_display_name(job),
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": "()",
        "kwargsrepr": task_display_args(job),
        "origin": _ORIGIN,
        "ignore_result": True,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    return body, headers


def task_message(
    task_id: str,
    kwargs: dict[str, Any],
    *,
    queue: str,
    priority: int = 0,
    task: str = DISPATCH_TASK,
    display: Mapping[str, Any] | None = None,
) -> str:
    """The JSON envelope kombu's Redis transport stores for one task call."""
    body, headers = task_body_and_headers(task_id, kwargs, task=task, display=display)
    envelope = {
        "body": base64.b64encode(body.encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": {
            "correlation_id": task_id,
            "reply_to": "",
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": priority,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    return json.dumps(envelope)


def message_job(raw: bytes | str) -> dict[str, Any] | None:
    """What a dispatch task message as stored in a queue (ours or one Celery wrote for a retry)
    says of its job: the ``job`` argument of older messages, else the ids-only arguments (with
    ``job_id``); None for anything else. Never raises: queues may hold foreign data."""
    try:
        envelope = json.loads(raw)
        body = envelope["body"]
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        _args, kwargs, _embed = json.loads(body)
        job = kwargs.get("job", kwargs if isinstance(kwargs.get("job_id"), str) else None)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return job if isinstance(job, dict) else None
