"""The job store's reads for people and for monitoring: where a job stands, its timeline,
the dead letters and their counts, the jobs of an order."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from pydantic import ValidationError

from order_dispatch.contract import ResultEvent
from order_dispatch.keys import Keys, terminal_status
from order_dispatch.store.codec import JobNotFound, as_event, as_object, text
from order_dispatch.store.records import (
    DeadLetter,
    DeadLetterCounts,
    DeadStatus,
    JobStatus,
    JobTimeline,
    LedgerState,
    Phase,
)
from order_dispatch.timeline import TimelineEntry


class JobReads:
    """The reads of :class:`~order_dispatch.store.JobStore` that change nothing."""

    client: redis.Redis
    keys: Keys

    def status(self, job_id: str) -> JobStatus:
        """Where ``job_id`` stands now: queued, in flight, retrying (with when its next attempt
        is due), deferred, or terminal; its attempts, vendor order id and last error. One
        round trip; :class:`JobNotFound` when neither the job store nor the dead letters know
        it."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(self.keys.job(job_id), "receipt", "run")
        pipe.hmget(self.keys.ledger(job_id), "state", "attempt", "last_status")
        pipe.lindex(self.keys.timeline(job_id), -1)
        pipe.hget(self.keys.dead_letters, job_id)
        pipe.hget(self.keys.dead_events, job_id)
        (receipt, run), (state, attempts, last_status), last, dead, dead_event = pipe.execute()
        ids = {**as_object(text(dead)), **as_object(text(receipt))}
        if not ids and last is None:
            raise JobNotFound(f"no job {job_id!r}: not in the job store nor in the dead letters")
        event = as_event(dead_event)
        number = int(run) if run is not None else (event.run if event else 1)
        entry = None
        if last is not None:
            try:
                entry = TimelineEntry.model_validate_json(last)
            except ValidationError:
                entry = None
        marker = text(self.client.get(self.keys.terminal(job_id, number)))
        ended = terminal_status(marker) or (event.status.value if event else None)
        status = text(last_status) or (entry.status.value if entry else None) or ended
        phase = _phase(text(state), ended)
        when = None
        if entry is not None and entry.retry_in_s is not None and phase is not Phase.TERMINAL:
            when = entry.at + timedelta(seconds=entry.retry_in_s)
        error = entry.error if entry is not None else (event.error if event else None)
        return JobStatus(
            job_id=job_id,
            phase=phase,
            run=number,
            attempts=int(text(attempts) or 0),
            status=ended if phase is Phase.TERMINAL else status,
            vendor=ids.get("vendor"),
            account=ids.get("account"),
            operation=ids.get("operation"),
            order_id=ids.get("order_id"),
            vendor_order_id=(entry.vendor_order_id if entry else None)
            or (event.vendor_order_id if event else None),
            last_error=f"{error.kind.value}: {error.message}" if error else None,
            next_attempt_at=when,
            updated_at=entry.at if entry else (event.occurred_at if event else None),
        )

    def receipt(self, job_id: str) -> dict[str, Any]:
        """``job_id``'s enqueue receipt (ids, queue, ``enqueued_at``); empty when unknown."""
        return as_object(text(self.client.hget(self.keys.job(job_id), "receipt")))

    def timeline(self, job_id: str) -> JobTimeline:
        """``job_id``'s timeline, oldest entry first (:class:`JobNotFound` if none is known)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.lrange(self.keys.timeline(job_id), 0, -1)
        pipe.hget(self.keys.job(job_id), "run")
        pipe.hget(self.keys.ledger(job_id), "state")
        pipe.hexists(self.keys.dead_letters, job_id)
        raw, run, state, dead = pipe.execute()
        if not raw and run is None and not dead:
            raise JobNotFound(f"no job {job_id!r}: not in the job store nor in the dead letters")
        entries = []
        for item in raw:
            try:
                entries.append(TimelineEntry.model_validate_json(item))
            except ValidationError:
                continue  # written by a newer version; the rest still tell the story
        return JobTimeline(job_id, int(run or 1), text(state), entries)

    def dead_letters(
        self,
        *,
        vendor: str | None = None,
        since: datetime | None = None,
        status: DeadStatus | None = None,
    ) -> list[DeadLetter]:
        """Jobs in the dead letters, oldest first, filtered by vendor, time and status."""
        found = [
            d
            for d in self._scan_dead_letters()
            if (vendor is None or d.vendor == vendor)
            and (status is None or d.status == status)
            and (since is None or (d.at is not None and d.at >= since))
        ]
        epoch = datetime.min.replace(tzinfo=UTC)
        return sorted(found, key=lambda d: (d.at or epoch, d.job_id))

    def dead_letter_counts(self) -> DeadLetterCounts:
        """How many jobs wait in the dead letters, by status, read from the same entries as
        :meth:`dead_letters` (the dead letters never expire, so the two always agree)."""
        if not self.client.hlen(self.keys.dead_letters):
            return DeadLetterCounts()
        counts = Counter(d.status for d in self._scan_dead_letters())
        return DeadLetterCounts(sum(counts.values()), dict(counts))

    def _scan_dead_letters(self) -> Iterator[DeadLetter]:
        batch: list[tuple[str, str]] = []
        for job_id, doc in self.client.hscan_iter(self.keys.dead_letters, count=500):
            batch.append((str(text(job_id)), str(text(doc))))
            if len(batch) >= 500:
                yield from self._dead_batch(batch)
                batch = []
        yield from self._dead_batch(batch)

    def _dead_batch(self, batch: list[tuple[str, str]]) -> Iterator[DeadLetter]:
        if not batch:
            return
        raw_events = self.client.hmget(self.keys.dead_events, [job_id for job_id, _ in batch])
        for (job_id, doc), raw in zip(batch, raw_events, strict=True):
            yield _dead_letter(job_id, doc, as_event(raw))

    def jobs_of_order(
        self, order_id: str, *, vendor: str | None = None, account: str | None = None
    ) -> list[str]:
        """The ids of the jobs the job store or the dead letters know for ``order_id`` (of
        ``vendor`` and ``account`` when given), sorted."""
        wanted = {"order_id": order_id, "vendor": vendor, "account": account}

        def matches(ids: Mapping[str, Any]) -> bool:
            return all(v is None or ids.get(k) == v for k, v in wanted.items())

        found: set[str] = set()
        names = list(self.client.scan_iter(match=self.keys.job("*"), count=1000))
        for start in range(0, len(names), 500):
            pipe = self.client.pipeline(transaction=False)
            for name in names[start : start + 500]:
                pipe.hget(name, "receipt")
            for raw in pipe.execute():
                receipt = as_object(text(raw))
                if matches(receipt) and isinstance(receipt.get("job_id"), str):
                    found.add(receipt["job_id"])
        for job_id, doc in self.client.hscan_iter(self.keys.dead_letters, count=500):
            if matches(as_object(text(doc))):
                found.add(str(text(job_id)))
        return sorted(found)


def _phase(state: str | None, ended: str | None) -> Phase:
    if ended is not None:
        return Phase.TERMINAL
    return {
        LedgerState.IN_FLIGHT.value: Phase.IN_FLIGHT,
        LedgerState.WAITING.value: Phase.RETRYING,
        LedgerState.DEFERRED.value: Phase.DEFERRED,
        LedgerState.DONE.value: Phase.TERMINAL,
    }.get(state or "", Phase.QUEUED)


def identity_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What a replay may not change, as far as ``doc`` (maybe broken) says it."""
    order = doc.get("order")
    return {
        "vendor": doc.get("vendor"),
        "account": doc.get("account", "default"),
        "operation": doc.get("operation", "create"),
        "order_id": doc.get("order_id")
        or (order.get("order_id") if isinstance(order, Mapping) else None),
    }


def _dead_letter(job_id: str, doc: str, event: ResultEvent | None) -> DeadLetter:
    if event is not None:
        return DeadLetter.of_event(job_id, event)
    said = identity_of(as_object(doc))
    return DeadLetter(
        job_id=job_id,
        vendor=str(said["vendor"] or "?"),
        account=str(said["account"]),
        operation=str(said["operation"]),
        order_id=str(said["order_id"] or "?"),
        status="unknown",
        run=1,
        attempt=None,
        at=None,
        error=None,
    )
