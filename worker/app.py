"""The Celery application, configured from :mod:`celeryconfig`, and its process hooks."""

from __future__ import annotations

from typing import Any

from celery import Celery, signals

from order_dispatch import logs, redact
from order_dispatch.settings import get_settings
from worker import runtime

app = Celery("order_dispatch")
app.config_from_object("celeryconfig")
app.autodiscover_tasks(["worker"], related_name="tasks", force=True)


class AccountSettingsError(RuntimeError):
    """A configured vendor account is missing a setting or has a wrong one."""


@signals.setup_logging.connect
def _setup_logging(**_: Any) -> None:
    """Celery leaves logging to us: structlog JSON with secrets masked."""
    logs.configure(get_settings().log_level)


@signals.worker_init.connect
def _worker_init(**_: Any) -> None:
    """Before any task runs: mask every credential, refuse wrong account settings (naming the
    variable to fix), and start the process's event loop and HTTP client."""
    from worker.vendors.sender import check_accounts

    settings = get_settings()
    redact.register(settings.secrets())
    problems = check_accounts(settings)
    if problems:
        raise AccountSettingsError("; ".join(problems))
    runtime.start(settings)


@signals.worker_process_init.connect
def _worker_process_init(**_: Any) -> None:
    """A prefork child starts its own runtime (a loop does not survive fork)."""
    runtime.start(get_settings())


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def _worker_shutdown(**_: Any) -> None:
    """Close the process's HTTP client and event loop."""
    runtime.stop()
