"""Every read and action of the console on jobs, in one module.

The operators' actions (replay, replay with a corrected order, resolve, purge) and their reads
(dead letters, timeline) are those of the command line, :mod:`order_dispatch_ops.actions`: the
same Lua scripts, the same result event and timeline entry, with the operator named. What the
command line does not read (one job's summary, its order, the rejected jobs) is read here from
the job store (:mod:`order_dispatch.store`) and the result stream. This is the one file of the
console that knows where jobs are kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from order_dispatch.contract import EventStatus, ResultEvent
from order_dispatch.keys import Keys
from order_dispatch.results import parse_entry
from order_dispatch.store import JobNotFound as NotInStore
from order_dispatch.store import JobStore as StoreOfJobs
from order_dispatch.store import Phase
from order_dispatch_ops.actions import (
    DeadLetter,
    JobNotFound,
    JobTimeline,
    OperationRefused,
    Operations,
    Purged,
    corrected_job,
    parse_since,
)
from producers.enqueue import InvalidJob

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


class JobStore:
    """The console's door to the job store, for one Redis and key prefix."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.keys = Keys(prefix)
        self.jobs = StoreOfJobs(client, self.keys)

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
        try:
            now = self.jobs.status(job_id)
        except NotInStore as exc:
            raise JobNotFound(str(exc)) from None
        try:
            document: str | None = self.jobs.stored(job_id).doc
        except NotInStore:
            document = None
        receipt = self.jobs.receipt(job_id)
        terminal = now.phase is Phase.TERMINAL
        return JobSummary(
            job_id=job_id,
            vendor=now.vendor or "?",
            account=now.account or "default",
            operation=now.operation or "create",
            order_id=now.order_id or "?",
            run=now.run,
            status=(now.status or "?") if terminal else now.phase.value,
            attempt=now.attempts or None,
            enqueued_at=receipt.get("enqueued_at"),
            document=document,
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
            DeadLetter.of_event(e.job_id, e)
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
