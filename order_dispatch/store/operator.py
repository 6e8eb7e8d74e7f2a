"""The job store's writes for operators' actions: replay, resolve and purge (the rules, and
the words operators read, are :mod:`order_dispatch_ops.actions`')."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from redis.commands.core import Script

from order_dispatch.broker import queue_of
from order_dispatch.contract import EventStatus, ResultEvent
from order_dispatch.keys import WAKE_TOKENS, Keys, terminal_status
from order_dispatch.store.codec import JobNotFound, as_event, as_object, epoch, text
from order_dispatch.store.records import StoredJob
from order_dispatch.timeline import MAX_ENTRIES, TimelineEntry


class ActionRefused(Exception):
    """An operator action's script refused: the run had not ended, or the job changed since it
    was read. ``why`` is ``running``, ``run`` or ``timeline``; ``run`` the job's run now."""

    def __init__(self, job_id: str, why: str, run: int) -> None:
        self.job_id, self.why, self.run = job_id, why, run
        super().__init__(f"job {job_id!r}: {why} (run {run})")


@dataclass(frozen=True, slots=True)
class PurgeView:
    """A job as a purge reads it before deciding what to remove."""

    job_id: str
    ids: dict[str, Any]
    """Receipt fields over dead-letter ids: vendor, account, operation, order_id, ..."""
    run: int
    run_id: str
    ended: str | None
    """The status in run ``run``'s terminal marker; None without one."""
    dead: bool
    dead_event: str | None
    old_event: dict[str, Any]
    has_document: bool
    timeline: list[str]
    attempt: int | None


class OperatorWrites:
    """The operator actions' reads and writes of :class:`~order_dispatch.store.JobStore`."""

    client: redis.Redis
    keys: Keys
    ttl_s: int
    results_maxlen: int
    retention_s: int
    _replay: Script
    _resolve: Script
    _purge: Script

    def stored(self, job_id: str) -> StoredJob:
        """``job_id``'s document, current run and how that run ended (:class:`JobNotFound`)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(self.keys.job(job_id), "job", "run")
        pipe.hget(self.keys.dead_letters, job_id)
        pipe.hget(self.keys.dead_events, job_id)
        pipe.get(self.keys.document(job_id))
        (old_doc, run), dead_doc, dead_event, doc = pipe.execute()
        doc = text(doc) or text(old_doc) or text(dead_doc)
        if doc is None:
            raise JobNotFound(f"no job {job_id!r}: not in the job store nor in the dead letters")
        event = as_event(dead_event)
        number = int(run) if run is not None else (event.run if event else 1)
        marker = text(self.client.get(self.keys.terminal(job_id, number)))
        said = terminal_status(marker)
        ended: EventStatus | None = None
        try:
            ended = EventStatus(said) if said is not None else None
        except ValueError:
            ended = None
        if ended is None and dead_doc is not None:
            ended = event.status if event is not None else EventStatus.DEAD_LETTERED
        return StoredJob(job_id, doc, number, ended)

    def replay(
        self,
        stored: StoredJob,
        event: ResultEvent,
        run_id: str,
        entry: TimelineEntry,
        *,
        doc: str,
        receipt: str,
        queue_list: str,
        message: str,
        not_before: datetime | None = None,
    ) -> None:
        """Start run N+1 of ``stored`` (run N ended): new run token ``run_id``, ledger reset,
        out of the dead letters, ``event`` (``replayed``) and ``entry`` written, ``doc`` stored,
        and ``message`` (attempt 1 of run N+1) pushed to ``queue_list``, with a wake token for
        an idle worker of its queue.
        :class:`ActionRefused` when the job changed since ``stored`` was read."""
        self._act(
            self._replay,
            stored,
            event,
            run_id,
            entry,
            extra_keys=[
                queue_list,
                self.keys.document(stored.job_id),
                self.keys.fetch_wake(queue_of(queue_list)),
            ],
            extra_args=[doc, receipt, message, epoch(not_before), str(WAKE_TOKENS)],
        )

    def resolve(
        self, stored: StoredJob, event: ResultEvent, run_id: str, entry: TimelineEntry
    ) -> None:
        """Record a person's decision (``event``) as the terminal event of run N+1; run N keeps
        its ``in_doubt``. :class:`ActionRefused` when the job changed since it was read."""
        self._act(
            self._resolve,
            stored,
            event,
            run_id,
            entry,
            extra_keys=[
                self.keys.terminal(stored.job_id, stored.run + 1),
                self.keys.document(stored.job_id),
            ],
            extra_args=[str(self.retention_s)],
        )

    def _act(
        self,
        script: Any,
        stored: StoredJob,
        event: ResultEvent,
        run_id: str,
        entry: TimelineEntry,
        *,
        extra_keys: list[str],
        extra_args: list[str],
    ) -> None:
        job_id = stored.job_id
        reply = script(
            keys=[
                self.keys.job(job_id),
                self.keys.terminal(job_id, stored.run),
                self.keys.ledger(job_id),
                self.keys.dead_letters,
                self.keys.dead_events,
                self.keys.results,
                self.keys.timeline(job_id),
                *extra_keys,
            ],
            args=[
                stored.run,
                job_id,
                run_id,
                self.ttl_s,
                event.event_id,
                event.model_dump_json(exclude_none=True),
                event.status.value,
                self.results_maxlen,
                entry.to_json(),
                MAX_ENTRIES,
                *extra_args,
            ],
        )
        _check(reply, job_id)

    def purge_view(self, job_id: str) -> PurgeView:
        """What a purge of ``job_id`` works from, read in one round trip plus the marker."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(self.keys.job(job_id), "receipt", "run", "run_id")
        pipe.hget(self.keys.dead_letters, job_id)
        pipe.hget(self.keys.dead_events, job_id)
        pipe.exists(self.keys.document(job_id))
        pipe.lrange(self.keys.timeline(job_id), 0, -1)
        pipe.hget(self.keys.ledger(job_id), "attempt")
        (receipt, run_text, run_id), dead_doc, dead_event, has_doc, raw_timeline, attempt = (
            pipe.execute()
        )
        ids = {**as_object(text(dead_doc)), **as_object(text(receipt))}
        old_event = as_object(text(dead_event))
        if not ids.get("vendor") or not ids.get("order_id"):
            raise JobNotFound(f"no job {job_id!r}: not in the job store nor in the dead letters")
        run = int(run_text) if run_text is not None else int(old_event.get("run", 1))
        marker = text(self.client.get(self.keys.terminal(job_id, run)))
        return PurgeView(
            job_id=job_id,
            ids=ids,
            run=run,
            run_id=text(run_id) or "",
            ended=terminal_status(marker) if marker is not None else None,
            dead=dead_doc is not None,
            dead_event=text(dead_event),
            old_event=old_event,
            has_document=bool(has_doc),
            timeline=[text(raw) or "" for raw in raw_timeline],
            attempt=int(attempt) if attempt is not None else None,
        )

    def purge(
        self,
        view: PurgeView,
        event: ResultEvent,
        entry: TimelineEntry,
        *,
        dead_event: str,
        timeline: Sequence[str],
        stream_ids: Sequence[str],
    ) -> None:
        """Remove the personal data of the job ``view`` was read from: its document, the
        dead-letter event replaced by ``dead_event`` ('' to keep), the timeline replaced by
        ``timeline`` plus ``entry``, the stream entries ``stream_ids`` deleted, and ``event``
        (``purged``) written. :class:`ActionRefused` when the job changed since it was read."""
        job_id = view.job_id
        reply = self._purge(
            keys=[
                self.keys.job(job_id),
                self.keys.terminal(job_id, view.run),
                self.keys.ledger(job_id),
                self.keys.dead_letters,
                self.keys.dead_events,
                self.keys.results,
                self.keys.timeline(job_id),
                self.keys.document(job_id),
            ],
            args=[
                view.run,
                job_id,
                len(view.timeline),
                view.timeline[-1] if view.timeline else "",
                dead_event,
                event.event_id,
                event.model_dump_json(exclude_none=True),
                self.results_maxlen,
                MAX_ENTRIES,
                self.ttl_s,
                entry.to_json(),
                len(timeline),
                *timeline,
                *stream_ids,
            ],
        )
        _check(reply, job_id)


def _check(reply: Any, job_id: str) -> None:
    if int(reply[0]) != 1:
        raise ActionRefused(job_id, str(text(reply[1])), int(str(text(reply[2]))))
