"""A requested stop, bounded in time, and the worker's exit status.

Celery's warm shutdown (SIGTERM) stops taking jobs and waits for the running ones, with no limit:
a thread pool cannot cancel a thread. Here the wait is bounded. Once a stop is requested, a
watchdog gives the running jobs ``shutdown_timeout_s``; past it, their messages go back to the
queue and the process exits. A job cut off this way is an interrupted attempt: its next
delivery finds it in flight and reconciles (or ends ``in_doubt``), as after a killed worker.

A cold stop (SIGQUIT, or a second Ctrl+C) hands the running jobs back at once: Celery's own cold
shutdown tries to kill them, which a thread pool cannot do.

The exit status: 0 after a requested stop (SIGTERM, SIGINT, SIGQUIT), Celery's own status when
the worker stopped by itself (1 after an unrecoverable error), and :data:`EX_CONFIG` when it
refused to start or to go on (a Redis that does not persist, wrong account settings). A
supervisor that restarts on failure then restarts every worker that did not mean to stop.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from order_dispatch.logs import get_logger

log = get_logger("worker.shutdown")

#: Exit status of a worker that refuses its configuration (sysexits.h EX_CONFIG).
EX_CONFIG = 78

#: Set once a stop was requested; waits (through a Redis outage) give up when it is.
requested = threading.Event()

_lock = threading.Lock()
_watchdog: threading.Timer | None = None
_deadline = 0.0
_celery_status: int | None = None


def request_stop(timeout_s: float) -> None:
    """Note that a stop was requested, and hand the running jobs back after ``timeout_s`` (or
    sooner, if an earlier request said so)."""
    global _watchdog, _deadline
    requested.set()
    deadline = time.monotonic() + timeout_s
    with _lock:
        if _watchdog is not None and deadline >= _deadline:
            return
        if _watchdog is not None:
            _watchdog.cancel()
        _deadline = deadline
        _watchdog = threading.Timer(timeout_s, _hand_back, args=(timeout_s,))
        _watchdog.name = "shutdown-watchdog"
        _watchdog.daemon = True
        _watchdog.start()


def stop_now(*_: Any) -> None:
    """A cold stop (SIGQUIT, or Ctrl+C once a stop began): hand the running jobs back to the
    queue at once and end the process."""
    request_stop(0)


def take_over_cold_stop() -> None:
    """Make SIGQUIT (and SIGINT once a stop began) call :func:`stop_now`. Celery's cold
    shutdown would try to kill the running jobs, which a thread pool cannot: the worker then
    stops on ``NotImplementedError``, with exit status 1."""
    from celery import platforms

    platforms.signals["SIGQUIT"] = stop_now
    if requested.is_set():
        platforms.signals["SIGINT"] = stop_now


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
                "could not requeue a message; it stays held and comes back once this worker is "
                "seen dead",
                job_id=_job_id(request),
                error=f"{type(exc).__name__}: {exc}",
            )
    from worker import fetch

    fetch.stop_liveness()  # leaves the workers hash if every message went back
    logging.shutdown()
    os._exit(0)


def _job_id(request: Any) -> str | None:
    kwargs = getattr(request, "kwargs", None)
    job_id = kwargs.get("job_id") if isinstance(kwargs, dict) else None
    return job_id if isinstance(job_id, str) else None
