"""Every read and action of the console on jobs, in one module.

The operators' actions (replay, replay with a corrected order, resolve, purge) and their reads
(dead letters, timeline) are those of the command line, :mod:`producers.operations`: the same
Lua scripts, the same result event and timeline entry, with the operator named. What the
command line does not read (one job's summary, its order, the rejected jobs) is read here from
the same keys. When the job store moves, this is the one file of the console to change.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from order_dispatch.contract import EventStatus, ResultEvent
from order_dispatch.keys import Keys
from order_dispatch.results import parse_entry
from producers.enqueue import InvalidJob
from producers.operations import (
    DeadLetter,
    JobNotFound,
    JobTimeline,
    OperationRefused,
    Operations,
    Purged,
    corrected_job,
    parse_since,
)

__all__ = [
    "DeadLetter",
    "InvalidJob",
    "JobNotFound",
    "JobStore",
    "JobSummary",
    "JobTimeline",
    "OperationRefused",
    "Purged",
    "corrected_job",
    "parse_since",
]

#: Result-stream entries read at most when looking for rejected jobs.
MAX_STREAM_SCAN = 200_000


@dataclass(frozen=True, slots=True)
class JobSummary:
    """One job as the job page heads it: ids, where it stands, and its stored order (JSON text,
    None when purged or expired)."""

    job_id: str
    vendor: str
    account: str
    operation: str
    order_id: str
    run: int
    status: str
    """The current run's terminal status, else the ledger's state (``queued`` when none)."""
    attempt: int | None
    enqueued_at: str | None
    document: str | None


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _object(text: str | None) -> dict[str, Any]:
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class JobStore:
    """The console's door to the job store, for one Redis and key prefix."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.keys = Keys(prefix)

    def operations(self, operator: str) -> Operations:
        """The command line's operations, acting as ``operator`` (the key's name)."""
        return Operations(self.client, key_prefix=self.prefix, operator=operator)

    def dead_letters(self) -> list[DeadLetter]:
        """Dead-lettered and in-doubt jobs, oldest first."""
        return self.operations("console").dead_letters()

    def timeline(self, job_id: str) -> JobTimeline:
        """``job_id``'s timeline (:class:`JobNotFound` when unknown)."""
        return self.operations("console").timeline(job_id)

    def jobs_of_order(self, order_id: str) -> list[str]:
        """The ids of the jobs known for ``order_id``."""
        return self.operations("console").jobs_of_order(order_id)

    def summary(self, job_id: str) -> JobSummary:
        """Where ``job_id`` stands (:class:`JobNotFound` when nothing is known of it)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(self.keys.job(job_id), "receipt", "run", "job")
        pipe.hget(self.keys.dead_letters, job_id)
        pipe.hget(self.keys.dead_events, job_id)
        pipe.hmget(self.keys.ledger(job_id), "state", "last_status", "attempt")
        pipe.get(self.keys.document(job_id))
        (receipt, run, old_doc), dead_doc, dead_event, ledger, doc = pipe.execute()
        ids = {**_object(_text(dead_doc)), **_object(_text(receipt))}
        event = _object(_text(dead_event))
        if not ids and not event:
            raise JobNotFound(f"no job {job_id!r}: not in the job store nor in the dead letters")
        number = int(run) if run is not None else int(event.get("run", 1))
        marker = _text(self.client.get(self.keys.terminal(job_id, number)))
        state, _last, attempt = (_text(v) for v in ledger)
        if marker is not None:
            status = marker.rsplit(":", 1)[-1]
        elif dead_doc is not None:
            status = str(event.get("status") or EventStatus.DEAD_LETTERED.value)
        else:
            status = state or "queued"
        order: dict[str, Any] = ids["order"] if isinstance(ids.get("order"), dict) else {}
        return JobSummary(
            job_id=job_id,
            vendor=str(ids.get("vendor") or event.get("vendor") or "?"),
            account=str(ids.get("account") or event.get("account") or "default"),
            operation=str(ids.get("operation") or event.get("operation") or "create"),
            order_id=str(ids.get("order_id") or order.get("order_id") or event.get("order_id")),
            run=number,
            status=status,
            attempt=int(attempt) if attempt else event.get("attempt"),
            enqueued_at=ids.get("enqueued_at"),
            document=_text(doc) or _text(old_doc),
        )

    def rejected(self, since: datetime | None = None) -> list[DeadLetter]:
        """Jobs whose current run ended ``rejected`` (read from the result stream, from
        ``since`` on), oldest first, in the shape of a dead letter."""
        latest: dict[str, ResultEvent] = {}
        for event in self._events(since):
            if event.terminal:
                latest[event.job_id] = event
            elif event.status is EventStatus.REPLAYED:
                latest.pop(event.job_id, None)
        candidates = [e for e in latest.values() if e.status is EventStatus.REJECTED]
        if not candidates:
            return []
        pipe = self.client.pipeline(transaction=False)
        for e in candidates:
            pipe.hget(self.keys.job(e.job_id), "run")
        current = pipe.execute()
        found = [
            DeadLetter(
                job_id=e.job_id,
                vendor=e.vendor,
                account=e.account,
                operation=e.operation.value,
                order_id=e.order_id,
                status=e.status.value,
                run=e.run,
                attempt=e.attempt,
                at=e.occurred_at,
                error=e.error.message if e.error else None,
            )
            for e, run in zip(candidates, current, strict=True)
            if run is None or int(run) == e.run
        ]
        return sorted(found, key=lambda d: (d.at or datetime.min.replace(tzinfo=UTC), d.job_id))

    def _events(self, since: datetime | None) -> Iterator[ResultEvent]:
        start = str(int(since.timestamp() * 1000)) if since is not None else "-"
        read = 0
        while read < MAX_STREAM_SCAN:
            batch = self.client.xrange(self.keys.results, start, "+", count=1000) or []
            for entry_id, fields in batch:
                event = parse_entry(entry_id, fields).event
                if event is not None:
                    yield event
            read += len(batch)
            if len(batch) < 1000:
                return
            start = "(" + parse_entry(batch[-1][0], None).entry_id
