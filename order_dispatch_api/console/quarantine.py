"""The quarantine as the console reads and acts on it, in one place.

Entries are those :class:`worker.quarantine.Quarantine` writes (the stream
``<prefix>:quarantine``: the raw message, its queue, when, why, which worker). Requeue pushes the
raw message back to its queue and removes the entry, in one Lua script, so a message is never
both queued and quarantined, nor lost between the two; delete removes the entry. Both check
that the entry is still there, and the log names the operator and the entry, never the message
(it may carry customer data).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from order_dispatch.keys import Keys
from order_dispatch.logs import get_logger

log = get_logger("order_dispatch_api.console")

# KEYS: quarantine stream, target queue (list). ARGV: entry id, raw message.
# 1 when requeued, 0 when the entry was gone.
_REQUEUE_LUA = """
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
"""


class EntryGone(LookupError):
    """The quarantine entry is not there (requeued or deleted meanwhile)."""


@dataclass(frozen=True, slots=True)
class Message:
    """A quarantine entry as stored: the raw message and where it came from."""

    entry_id: str
    raw: bytes
    queue: str
    at: datetime
    reason: str
    worker: str
    job_id: str | None
    task: str | None


@dataclass(frozen=True, slots=True)
class Entry:
    """A quarantined message as the console lists it."""

    entry_id: str
    at: datetime
    queue: str
    reason: str
    size: int
    worker: str
    job_id: str | None
    task: str | None


class QuarantineDesk:
    """List, requeue and delete quarantined messages of one key prefix."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.keys = Keys(prefix)
        self._requeue = client.register_script(_REQUEUE_LUA)

    def entries(self, limit: int = 500) -> list[Entry]:
        """The oldest ``limit`` entries."""
        rows = self.client.xrange(self.keys.quarantine, count=limit) or []
        return [_shown(_entry(entry_id, fields)) for entry_id, fields in rows]

    def _get(self, entry_id: str) -> Message:
        try:
            rows = self.client.xrange(self.keys.quarantine, entry_id, entry_id)
        except redis.ResponseError:  # not a stream id at all
            rows = []
        if not rows:
            raise EntryGone(f"quarantine entry {entry_id} is not there (requeued or deleted?)")
        return _entry(*rows[0])

    def requeue(self, entry_id: str, operator: str) -> str:
        """Push entry ``entry_id``'s message back to its queue and drop the entry; the queue."""
        message = self._get(entry_id)
        done = self._requeue(
            keys=[self.keys.quarantine, message.queue], args=[entry_id, message.raw]
        )
        if int(done) != 1:
            raise EntryGone(f"quarantine entry {entry_id} is not there (requeued or deleted?)")
        log.info(
            "quarantined message requeued",
            entry=entry_id,
            queue=message.queue,
            operator=operator,
            job_id=message.job_id,
        )
        return message.queue

    def delete(self, entry_id: str, operator: str) -> None:
        """Drop entry ``entry_id`` (its message is gone for good)."""
        message = self._get(entry_id)
        if int(self.client.xdel(self.keys.quarantine, entry_id)) != 1:
            raise EntryGone(f"quarantine entry {entry_id} is not there (requeued or deleted?)")
        log.info(
            "quarantined message deleted",
            entry=entry_id,
            queue=message.queue,
            operator=operator,
            job_id=message.job_id,
        )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry(entry_id: Any, fields: Any) -> Message:
    """An entry as :class:`worker.quarantine.Quarantine` writes it (``raw`` as text, or base64
    when ``encoding`` says so)."""
    f = {_text(k): _text(v) for k, v in fields.items()}
    raw = f.get("raw", "")
    try:
        data = (
            base64.b64decode(raw, validate=True)
            if f.get("encoding") == "base64"
            else raw.encode("utf-8")
        )
    except binascii.Error:
        data = raw.encode("utf-8")
    return Message(
        entry_id=_text(entry_id),
        raw=data,
        queue=f.get("queue", ""),
        at=datetime.fromisoformat(f["at"]),
        reason=f.get("reason", ""),
        worker=f.get("worker", ""),
        job_id=f.get("job_id"),
        task=f.get("task"),
    )


def _shown(m: Message) -> Entry:
    return Entry(m.entry_id, m.at, m.queue, m.reason, len(m.raw), m.worker, m.job_id, m.task)
