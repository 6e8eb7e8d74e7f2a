"""The Celery application, configured from :mod:`worker.celeryconfig`, and its process hooks.

A worker refuses to start with wrong account settings (exit status ``EX_CONFIG``), and a stop
requested by a signal is bounded in time (:mod:`worker.shutdown`).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from celery import Celery, signals
from celery.exceptions import CPendingDeprecationWarning

from order_dispatch import logs, redact
from order_dispatch.settings import get_settings
from worker import fetch, runtime, shutdown

app = Celery("order_dispatch")
app.config_from_object("worker.celeryconfig")
app.autodiscover_tasks(["worker"], related_name="tasks", force=True)


class AccountSettingsError(RuntimeError):
    """A configured vendor account is missing a setting or has a wrong one."""


@signals.setup_logging.connect
def _setup_logging(**_: Any) -> None:
    """Celery leaves logging to us: structlog JSON with secrets masked. Celery's two lines per
    task ("received", "succeeded in") only below INFO: the product's ``job event`` line says
    the same and more, and each line costs CPU at hundreds of orders a second. Its warnings and
    errors (a task that failed) stay."""
    level = get_settings().log_level
    logs.configure(level)
    if logging.getLevelName(level.upper()) != logging.DEBUG:
        for name in ("celery.worker.strategy", "celery.app.trace"):
            logging.getLogger(name).setLevel(logging.WARNING)


@signals.worker_init.connect
def _worker_init(**_: Any) -> None:
    """Before any task runs: mask every credential, refuse wrong account settings (naming the
    variable to fix), and start the process's event loop and HTTP client."""
    from worker.vendors.sender import check_accounts

    settings = get_settings()
    redact.register(settings.secrets())
    problems = check_accounts(settings)
    if problems:
        # Celery logs and ignores an exception raised here; SystemExit ends the process.
        logs.configure(settings.log_level)
        error = AccountSettingsError("; ".join(problems))
        logs.get_logger("worker.app").critical("refusing to start", reason=str(error))
        raise SystemExit(shutdown.EX_CONFIG) from error
    runtime.start(settings)


@signals.worker_shutdown.connect
def _worker_stopped(sender: Any = None, **_: Any) -> None:
    """Keep Celery's exit status: ``app.start`` returns None whatever it was; stop the
    heartbeat (the consumer has given back what it held)."""
    shutdown.note_exit(getattr(sender, "exitcode", None))
    fetch.stop_liveness()


@signals.worker_ready.connect
def _worker_ready(**_: Any) -> None:
    """Celery has set its signal handlers and warning filters: SIGQUIT becomes the product's
    cold stop, and one warning goes."""
    shutdown.take_over_cold_stop()
    # celeryconfig keeps running jobs on a lost connection on purpose (its reason is there);
    # Celery warns at every lost connection that it may cancel them one day all the same.
    warnings.filterwarnings(
        "ignore",
        message=r"\s*In Celery 5\.1 we introduced an optional breaking change",
        category=CPendingDeprecationWarning,
    )


@signals.worker_shutting_down.connect
def _worker_shutting_down(**_: Any) -> None:
    """A stop was requested (SIGTERM, SIGINT): bound the wait for running jobs; a second
    Ctrl+C or a SIGQUIT now stops at once."""
    shutdown.request_stop(get_settings().shutdown_timeout_s)
    shutdown.take_over_cold_stop()


@signals.worker_process_init.connect
def _worker_process_init(**_: Any) -> None:
    """A prefork child starts its own runtime (a loop does not survive fork)."""
    runtime.start(get_settings())


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def _worker_shutdown(**_: Any) -> None:
    """Close the process's HTTP client and event loop."""
    runtime.stop()
