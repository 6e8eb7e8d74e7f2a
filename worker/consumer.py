"""Celery's consumer, changed so that a message it cannot route is quarantined, not dropped,
so that it serves only a Redis that persists, and so that task events go out in batches.

Celery rejects a message with an unknown task name, an unknown format, an invalid envelope or a
body it cannot decode: on Redis that deletes it, after logging it whole (customer data
included). Here each goes to the quarantine with the reason, is acked, and the log names the
task and its id only.

At every connection (the first and each one after Redis came back) the consumer checks that
Redis persists its data (:mod:`worker.persistence`); it stops the worker (exit status
``EX_CONFIG``) on one that does not, unless the settings allow it. Configured as
``worker_consumer`` in celeryconfig.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer
from vine import promise

from order_dispatch.keys import DISPATCH_TASK
from order_dispatch.logs import get_logger
from order_dispatch.redis_client import redis_client
from order_dispatch.settings import get_settings
from worker.persistence import RedisNotPersistent, check_persistence
from worker.quarantine import envelope
from worker.shutdown import EX_CONFIG

_log = logging.getLogger(__name__)
log = get_logger("worker.consumer")


class Consumer(CeleryConsumer):
    """Celery's consumer; what it cannot hand to a task goes to the quarantine."""

    connection_errors: tuple[type[BaseException], ...]

    def connect(self) -> Any:
        """Connect to the broker, then refuse a Redis that does not persist."""
        connection = super().connect()
        settings = get_settings()
        client = redis_client(settings)
        try:
            check_persistence(client, allowed=settings.allow_non_persistent_redis)
        except RedisNotPersistent as exc:
            log.critical("refusing to serve this Redis", reason=str(exc))
            raise SystemExit(EX_CONFIG) from None
        finally:
            client.close()
        return connection

    #: Task events wait up to this long to go out together (Celery publishes the buffered ones
    #: at its next loop turn, a publish for every event or two at hundreds of orders a second).
    #: Flower sees a job's events this much later.
    EVENT_FLUSH_S = 0.05
    _flush_pending = False
    _last_flush = 0.0

    hub: Any

    def on_send_event_buffered(self) -> Any:
        """A task event was buffered (from any thread): have the loop flush the buffer soon."""
        if self.hub and not self._flush_pending:
            self._flush_pending = True
            self.hub.call_soon(self._flush_events_in_time)

    def _flush_events_in_time(self) -> None:
        # On the consumer's loop: flush, or come back when EVENT_FLUSH_S has passed.
        wait = self._last_flush + self.EVENT_FLUSH_S - time.monotonic()
        if wait > 0:
            self.hub.call_later(wait, self._flush_events_in_time)
            return
        self._flush_pending = False  # before the flush: events buffered from now on schedule one
        self._last_flush = time.monotonic()
        self._flush_events()  # type: ignore[attr-defined]

    def on_unknown_message(self, body: Any, message: Any) -> None:
        """A message without a task name (not a Celery task message)."""
        self._quarantine(message, "not a task message: its headers name no task")

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        """A task message for a task this worker does not have."""
        name = _headers(message).get("task")
        self._quarantine(message, f"unknown task {name!r} (workers run {DISPATCH_TASK!r})")

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        """A task message that breaks Celery's message protocol or content rules."""
        self._quarantine(message, f"invalid task message: {type(exc).__name__}: {exc}")

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        """A message whose body cannot be decoded."""
        self._quarantine(message, f"its body cannot be decoded: {type(exc).__name__}: {exc}")

    def create_task_handler(self, promise: type[promise] = promise) -> Callable[..., Any]:
        """Celery's handler of incoming messages; what makes it fail is quarantined."""
        handle = super().create_task_handler(promise)
        connection_errors: tuple[type[BaseException], ...] = tuple(self.connection_errors)

        def on_task_received(message: Any) -> None:
            try:
                handle(message)
            except connection_errors:
                raise
            except Exception as exc:
                self._quarantine(message, f"cannot be received: {type(exc).__name__}: {exc}")

        return on_task_received

    def _quarantine(self, message: Any, reason: str) -> None:
        headers = _headers(message)
        fields: dict[str, Any] = {
            "queue": (message.delivery_info or {}).get("routing_key") or "",
            "reason": reason,
            "task": headers.get("task") if isinstance(headers.get("task"), str) else None,
            "task_id": headers.get("id") if isinstance(headers.get("id"), str) else None,
        }
        # The channel of worker.broker's transport (celeryconfig's broker_transport).
        message.channel.quarantine(envelope(message), **fields)
        message.ack_log_error(_log, self.connection_errors)


def _headers(message: Any) -> dict[str, Any]:
    headers = getattr(message, "headers", None)
    return headers if isinstance(headers, dict) else {}
