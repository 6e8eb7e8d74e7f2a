"""Publishing task messages to a broker that is not Redis (RabbitMQ), with kombu.

Imported only when ``ORDER_DISPATCH_BROKER_URL`` names such a broker, so the producer API stays
light otherwise. Each vendor queue is declared exactly as the workers declare it (a durable
quorum queue bound to a direct exchange of the same name), so a job queued before any worker
started is kept; publishes are confirmed by the broker.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from kombu import Connection, Exchange, Queue

from producers.message import task_body_and_headers


def quorum_queue(name: str) -> Queue:
    """The queue Celery creates for ``name`` with ``task_create_missing_queue_type='quorum'``."""
    return Queue(
        name,
        Exchange(name, "direct"),
        name,
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )


class BrokerPublisher:
    """Publishes dispatch task messages over one kombu connection (thread-safe)."""

    def __init__(self, url: str) -> None:
        self._connection = Connection(url, transport_options={"confirm_publish": True})
        self._lock = threading.Lock()
        self._declared: set[str] = set()

    def publish(
        self,
        task_id: str,
        kwargs: dict[str, Any],
        *,
        queue: str,
        priority: int,
        display: Mapping[str, Any] | None = None,
    ) -> None:
        """Publish one task call to ``queue``; returns once the broker confirmed it."""
        body, headers = task_body_and_headers(task_id, kwargs, display=display)
        target = quorum_queue(queue)
        with self._lock:
            producer = self._connection.Producer()
            producer.publish(
                body,
                exchange=target.exchange,
                routing_key=queue,
                declare=[] if queue in self._declared else [target],
                headers=headers,
                correlation_id=task_id,
                reply_to="",
                delivery_mode=2,
                priority=priority,
                content_type="application/json",
                content_encoding="utf-8",
                retry=True,
                retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
            )
            self._declared.add(queue)

    def close(self) -> None:
        """Close the connection."""
        self._connection.release()
