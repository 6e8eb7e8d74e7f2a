"""Celery task messages (protocol 2, JSON) for the Redis transport, written without Celery.

Writing the message ourselves lets a producer check for a duplicate job and queue the job in one
atomic server-side step, and queue a whole batch in one round trip; Celery's own ``send_task``
can do neither. The format is Celery's documented message protocol v2 as kombu's Redis transport
stores it; ``tests/unit/test_message.py`` checks it against what Celery itself produces.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import uuid
from bisect import bisect
from typing import Any

from order_dispatch.keys import DISPATCH_TASK

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


def task_message(
    task_id: str,
    kwargs: dict[str, Any],
    *,
    queue: str,
    priority: int = 0,
    task: str = DISPATCH_TASK,
) -> str:
    """The JSON envelope kombu's Redis transport stores for one task call."""
    body = json.dumps(
        [[], kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    )
    headers: dict[str, Any] = {
        "lang": "py",
        "task": task,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": "()",
        "kwargsrepr": repr(kwargs),
        "origin": _ORIGIN,
        "ignore_result": True,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
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
