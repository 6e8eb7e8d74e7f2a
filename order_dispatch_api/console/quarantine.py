"""The quarantine as the console reads and acts on it, in one place.

Entries are those :class:`worker.quarantine.Quarantine` writes; listing, requeue and delete are
the command line's own (:class:`order_dispatch.quarantine.QuarantineShelf`: requeue pushes the
raw message back to its queue, at its priority, and removes the entry in one Lua step). The log
names the operator and the entry, never the message (it may carry customer data).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import redis

from order_dispatch.keys import Keys
from order_dispatch.logs import get_logger
from order_dispatch.quarantine import QuarantinedMessage, QuarantineError, QuarantineShelf

log = get_logger("order_dispatch_api.console")


class EntryGone(LookupError):
    """The quarantine entry is not there (requeued or deleted meanwhile)."""


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
        self.shelf = QuarantineShelf(client, Keys(prefix))

    def entries(self, limit: int = 500) -> list[Entry]:
        """The oldest ``limit`` entries."""
        return [_shown(m) for m in self.shelf.entries(limit)]

    def _get(self, entry_id: str) -> QuarantinedMessage:
        try:
            found = self.shelf.get(entry_id)
        except redis.ResponseError:  # not a stream id at all
            found = None
        if found is None:
            raise EntryGone(f"quarantine entry {entry_id} is not there (requeued or deleted?)")
        return found

    def requeue(self, entry_id: str, operator: str) -> str:
        """Push entry ``entry_id``'s message back to its queue and drop the entry; the queue."""
        message = self._get(entry_id)
        try:
            self.shelf.requeue(entry_id)
        except QuarantineError as exc:
            raise EntryGone(str(exc)) from None
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
        if not self.shelf.delete(entry_id):
            raise EntryGone(f"quarantine entry {entry_id} is not there (requeued or deleted?)")
        log.info(
            "quarantined message deleted",
            entry=entry_id,
            queue=message.queue,
            operator=operator,
            job_id=message.job_id,
        )


def _shown(m: QuarantinedMessage) -> Entry:
    return Entry(m.entry_id, m.at, m.queue, m.reason, len(m.raw), m.worker, m.job_id, m.task)
