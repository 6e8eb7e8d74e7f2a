"""The Celery application, configured from :mod:`celeryconfig`, and its process hooks."""

from __future__ import annotations

from typing import Any

from celery import Celery, signals

from order_dispatch import logs, redact
from order_dispatch.settings import get_settings
from worker.http import close_shared_client

app = Celery("order_dispatch")
app.config_from_object("celeryconfig")
app.autodiscover_tasks(["worker"], related_name="tasks", force=True)


@signals.setup_logging.connect
def _setup_logging(**_: Any) -> None:
    """Celery leaves logging to us: structlog JSON with secrets masked."""
    logs.configure(get_settings().log_level)


@signals.worker_init.connect
def _worker_init(**_: Any) -> None:
    """Register every configured credential for redaction before any task runs."""
    redact.register(get_settings().secrets())


@signals.worker_shutdown.connect
def _worker_shutdown(**_: Any) -> None:
    """Close the shared HTTP client."""
    close_shared_client()
