"""A requested stop, bounded in time, and the worker's exit status.

Celery's warm shutdown (SIGTERM) stops taking jobs and waits for the running ones, with no limit:
a thread pool cannot cancel a thread. Here the wait is bounded. Once a stop is requested, a
watchdog gives the running jobs ``shutdown_timeout_s``; past it, their messages go back to the
queue and the process exits. A job cut off this way is an interrupted attempt: its next
delivery finds it in flight and reconciles (or ends ``in_doubt``), as after a killed worker.

The exit status: 0 after a requested stop (SIGTERM, SIGINT, SIGQUIT), Celery's own status when
the worker stopped by itself (1 after an unrecoverable error), and :data:`EX_CONFIG` when it
refused to start or to go on (a Redis that does not persist, wrong account settings). A
supervisor that restarts on failure then restarts every worker that did not mean to stop.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from order_dispatch.logs import get_logger

log = get_logger("worker.shutdown")

#: Exit status of a worker that refuses its configuration (sysexits.h EX_CONFIG).
EX_CONFIG = 78

#: Set once a stop was requested; waits (through a Redis outage) give up when it is.
requested = threading.Event()

_lock = threading.Lock()
_watchdog: threading.Timer | None = None
_celery_status: int | None = None


def request_stop(timeout_s: float) -> None:
    """Note that a stop was requested, and hand the running jobs back after ``timeout_s``."""
    global _watchdog
    requested.set()
    with _lock:
        if _watchdog is None:
            _watchdog = threading.Timer(timeout_s, _hand_back, args=(timeout_s,))
            _watchdog.name = "shutdown-watchdog"
            _watchdog.daemon = True
            _watchdog.start()


def note_exit(celery_status: int | None) -> None:
    """Keep the exit status Celery chose for its worker (the ``worker_shutdown`` signal's)."""
    global _celery_status
    _celery_status = celery_status


def exit_status() -> int:
    """The worker process's exit status: 0 after a requested stop, else Celery's (1 when the
    worker ended without one)."""
    if requested.is_set():
        return 0
    return 1 if _celery_status is None else _celery_status


def _hand_back(timeout_s: float) -> None:
    """The stop took too long: requeue every message still held, then end the process."""
    from celery.worker import state

    held = [r for r in list(state.requests.values()) if not r.acknowledged]
    log.warning(
        "running jobs did not finish in time; their messages go back to the queue",
        timeout_s=timeout_s,
        jobs=len(held),
        job_ids=[_job_id(r) for r in held],
    )
    for request in held:
        try:
            request.message.reject(requeue=True)
        except Exception as exc:  # one message that cannot go back must not keep the others
            log.error(
                "could not requeue a message; it comes back after the visibility timeout",
                job_id=_job_id(request),
                error=f"{type(exc).__name__}: {exc}",
            )
    logging.shutdown()
    os._exit(0)


def _job_id(request: Any) -> str | None:
    kwargs = getattr(request, "kwargs", None)
    job_id = kwargs.get("job_id") if isinstance(kwargs, dict) else None
    return job_id if isinstance(job_id, str) else None
