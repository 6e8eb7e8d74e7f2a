"""The quarantine stream, read and acted on: what the workers set aside, for the command line
and the console alike.

Each entry of the stream ``<prefix>:quarantine`` holds a message exactly as it arrived (text,
or base64 when it is not UTF-8), the queue it came from, when, why, and which worker set it
aside (:class:`worker.quarantine.Quarantine` writes them). An operator lists them, sends one
back to its queue (:meth:`QuarantineShelf.requeue`: one Lua step, so a message is never both
queued and quarantined, nor lost between the two) or drops it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from order_dispatch.broker import queue_key
from order_dispatch.keys import Keys
from order_dispatch.logs import get_logger

log = get_logger("order_dispatch.quarantine")


@dataclass(frozen=True, slots=True)
class QuarantinedMessage:
    """One quarantine entry, as read back."""

    entry_id: str
    raw: bytes
    """The message as it arrived."""
    encoding: str
    """How the stream holds ``raw``: ``utf-8`` text, or ``base64``."""
    queue: str
    at: datetime
    reason: str
    worker: str
    task: str | None = None
    task_id: str | None = None
    job_id: str | None = None

    def as_json(self, *, raw: bool = False) -> dict[str, Any]:
        """The entry as JSON; with ``raw``, the message too (it may carry customer data)."""
        doc: dict[str, Any] = {
            "id": self.entry_id,
            "at": self.at.isoformat(),
            "queue": self.queue,
            "reason": self.reason,
            "worker": self.worker,
            "task": self.task,
            "task_id": self.task_id,
            "job_id": self.job_id,
            "bytes": len(self.raw),
        }
        if raw:
            text, encoding = encode_raw(self.raw)
            doc.update(raw=text, encoding=encoding)
        return doc


def encode_raw(raw: bytes | str) -> tuple[str, str]:
    """``raw`` as stored: (text, ``"utf-8"``) when it is UTF-8, else (base64, ``"base64"``)."""
    if isinstance(raw, str):
        return raw, "utf-8"
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def decode_raw(text: str, encoding: str) -> bytes:
    """The bytes :func:`encode_raw` stored as ``text``."""
    if encoding == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"quarantine entry: raw is not base64 ({exc})") from None
    return text.encode("utf-8")


class QuarantineShelf:
    """Reads, requeues and deletes the quarantined messages of one key prefix."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def entries(self, count: int | None = None) -> list[QuarantinedMessage]:
        """The quarantined messages, oldest first (at most ``count``)."""
        rows = self.client.xrange(self.keys.quarantine, count=count)
        assert rows is not None  # XRANGE answers an array, never nil
        return [_entry(entry_id, fields) for entry_id, fields in rows]


    def get(self, entry_id: str) -> QuarantinedMessage | None:
        """The entry ``entry_id``, or None when there is none."""
        rows = self.client.xrange(self.keys.quarantine, entry_id, entry_id)
        return _entry(*rows[0]) if rows else None

    def delete(self, entry_id: str) -> bool:
        """Drop entry ``entry_id``; False when there was none."""
        return bool(self.client.xdel(self.keys.quarantine, entry_id))

    def requeue(self, entry_id: str) -> QuarantinedMessage:
        """Send entry ``entry_id``'s message back to the queue it came from (at its priority,
        behind the waiting jobs) and drop the entry, in one step. :class:`QuarantineError`
        when there is no such entry or it names no queue."""
        found = self.get(entry_id)
        if found is None:
            raise QuarantineError(f"no quarantined message {entry_id}")
        if not found.queue:
            raise QuarantineError(
                f"quarantined message {entry_id} names no queue; it cannot be sent back"
            )
        target = queue_key(found.queue, _priority(found.raw))
        moved = self._requeue(keys=[self.keys.quarantine, target], args=[entry_id, found.raw])
        if not int(moved):
            raise QuarantineError(f"no quarantined message {entry_id}")
        log.warning("quarantined message sent back to its queue", entry=entry_id, queue=target)
        return found

    @property
    def _requeue(self) -> Any:
        return self.client.register_script(_REQUEUE_LUA)


class QuarantineError(ValueError):
    """A quarantine entry that is not there, or cannot be sent back."""


# KEYS: quarantine stream, queue list. ARGV: entry id, message. The push first: a full Redis
# refuses it before anything changed.
_REQUEUE_LUA = """
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
"""


def _priority(raw: bytes) -> int:
    """The priority a kombu envelope carries (0 for anything else)."""
    try:
        value = json.loads(raw).get("properties", {}).get("priority", 0)
    except (ValueError, AttributeError):
        return 0
    return value if isinstance(value, int) and 0 <= value <= 255 else 0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry(entry_id: Any, fields: Any) -> QuarantinedMessage:
    f = {_text(k): _text(v) for k, v in fields.items()}
    return QuarantinedMessage(
        entry_id=_text(entry_id),
        raw=decode_raw(f["raw"], f.get("encoding", "utf-8")),
        encoding=f.get("encoding", "utf-8"),
        queue=f["queue"],
        at=datetime.fromisoformat(f["at"]),
        reason=f["reason"],
        worker=f.get("worker", ""),
        task=f.get("task"),
        task_id=f.get("task_id"),
        job_id=f.get("job_id"),
    )
