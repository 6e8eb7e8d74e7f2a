"""The quarantine: messages a worker could not decode or run, kept instead of dropped.

Each entry of the stream ``<prefix>:quarantine`` holds the message exactly as it arrived (text,
or base64 when it is not UTF-8), the queue it came from, when, why, and which worker set it
aside. Nothing in it is retried: an operator reads the reason (``order-dispatch quarantine
list``, ``show ID``, or the console), fixes the cause, and sends the message back to its queue
(``requeue ID``) or drops the entry (``delete ID``): :mod:`order_dispatch.quarantine` reads and
acts on the entries for both.

The log says that a message was quarantined and why, never what it holds: a message that is not
ours may carry customer data.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import redis

from order_dispatch import redact
from order_dispatch.keys import Keys
from order_dispatch.logs import get_logger
from order_dispatch.quarantine import (
    QuarantinedMessage,
    QuarantineError,
    QuarantineShelf,
    decode_raw,
    encode_raw,
)
from order_dispatch.results import process_name
from worker.outage import ride_out

__all__ = [
    "Quarantine",
    "QuarantineError",
    "QuarantinedMessage",
    "decode_raw",
    "encode_raw",
    "envelope",
]

log = get_logger("worker.quarantine")

#: Longest reason kept; exception texts can be long.
_REASON_MAX = 500


def envelope(message: Any) -> bytes:
    """The raw envelope of a kombu message (what the Redis list held), as well as kombu still
    knows it: the decoded payload for a virtual-transport message, else the body."""
    payload = getattr(message, "_raw", None)
    if isinstance(payload, dict):
        return json.dumps(payload).encode()
    body = getattr(message, "body", b"")
    return body if isinstance(body, bytes) else str(body).encode()


class Quarantine(QuarantineShelf):
    """Writes (and reads) the quarantine stream of one key prefix."""

    def __init__(self, client: redis.Redis, keys: Keys, *, worker: str | None = None) -> None:
        super().__init__(client, keys)
        self.worker = worker or process_name()

    def put(
        self,
        raw: bytes | str,
        *,
        queue: str,
        reason: str,
        task: str | None = None,
        task_id: str | None = None,
        job_id: str | None = None,
    ) -> str:
        """Keep ``raw`` with its ``reason``; the entry id. Waits through a Redis outage (a
        message that cannot be kept must not be let go)."""
        text, encoding = encode_raw(raw)
        reason = redact.text(reason)[:_REASON_MAX]
        fields: dict[str, str] = {
            "raw": text,
            "encoding": encoding,
            "queue": queue,
            "at": datetime.now(UTC).isoformat(),
            "reason": reason,
            "worker": self.worker,
        }
        ids = {"task": task, "task_id": task_id, "job_id": job_id}
        fields.update({k: v for k, v in ids.items() if v})
        entry: bytes | str = ride_out(
            lambda: self.client.xadd(self.keys.quarantine, fields),  # type: ignore[arg-type]
            what="quarantine a message",
            queue=queue,
        )
        entry_id = entry.decode() if isinstance(entry, bytes) else entry
        # The reason and the ids only: the message itself may carry customer data.
        log.error(
            "message quarantined",
            reason=reason,
            queue=queue,
            bytes=len(raw),
            entry=entry_id,
            **{k: v for k, v in ids.items() if v},
        )
        return entry_id
