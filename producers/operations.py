"""What operators do with jobs that need a person: list dead letters, replay, resolve, read the
timeline, purge an order's personal data.

It lives beside the producer API and loads what that loads (redis-py, the contract, the task
message builder), not Celery or httpx: a replay is an enqueue of a stored job's next run, and an
operator's shell should not need the worker's stack to do it.

Every action is one Lua script, so it happens whole or not at all, and each one checks again,
inside the script, that the job is where the operator saw it (same run, run ended). Each action
writes a result event and a timeline entry:

- **replay** starts run N+1 of a job whose run N ended (dead-lettered, in doubt or rejected),
  optionally with a corrected order: new run token, ledger reset, out of the dead letters, a
  ``replayed`` event, and a task message for attempt 1 of run N+1 on the vendor's queue. Workers
  skip any message of an older run, so run N+1 has its own single terminal event.
- **resolve** records an operator's decision about an ``in_doubt`` job as the terminal event of
  a new run N+1 (``accepted`` or ``rejected``, with ``operator`` and ``note`` set). Run N keeps
  its ``in_doubt``; no vendor call is made; exactly one terminal event per run still holds.
- **purge** removes an ended job's personal data on request: its job document, and the vendor's
  answers, error messages and operators' notes from its timeline, its dead-letter event and its
  result events (those are deleted from the stream; the timeline keeps their ids and statuses).
  Receipt, ledger, timeline and dead letters stay as the audit trail of ids and statuses. A
  ``purged`` event (not terminal) records it. An ``in_doubt`` job is refused until resolved.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import redis
from pydantic import ValidationError
from redis.commands.core import Script

from order_dispatch.contract import EventStatus, Job, ResultEvent, format_validation_errors
from order_dispatch.keys import Keys
from order_dispatch.results import parse_entry
from order_dispatch.settings import get_settings
from order_dispatch.timeline import MAX_ENTRIES, Action, TimelineEntry
from producers.enqueue import Receipt, validate_job
from producers.message import dispatch_kwargs, queue_key, task_message

#: The statuses a job waits in the dead letters with.
DeadStatus = Literal["dead_lettered", "in_doubt"]
#: How a person resolves an ``in_doubt`` job.
Resolution = Literal["accepted", "rejected"]

#: Run statuses a replay may follow; replaying an accepted job would send the order again.
_REPLAYABLE = frozenset({EventStatus.DEAD_LETTERED, EventStatus.IN_DOUBT, EventStatus.REJECTED})

# Shared head of every action script. KEYS[1] job hash, KEYS[2] run N's terminal marker,
# KEYS[3] ledger, KEYS[4] dead letters, KEYS[5] dead-letter events, KEYS[6] results stream,
# KEYS[7] timeline. ARGV[1] run N, ARGV[2] job id. Refuses unless run N is the current run and
# it ended (its terminal marker, or the job waits in the dead letters).
_RUN_ENDED = """
local run = tonumber(redis.call('HGET', KEYS[1], 'run') or ARGV[1])
if run ~= tonumber(ARGV[1]) then return {0, 'run', tostring(run)} end
if redis.call('EXISTS', KEYS[2]) == 0 and redis.call('HEXISTS', KEYS[4], ARGV[2]) == 0 then
  return {0, 'running', tostring(run)}
end
"""

# The head of replay and resolve: ARGV[3] new run token, ARGV[4] ttl s, ARGV[5] event id,
# ARGV[6] event json, ARGV[7] status, ARGV[8] stream maxlen, ARGV[9] timeline entry,
# ARGV[10] timeline cap.
_ACTION_HEAD = (
    _RUN_ENDED
    + """
local ttl = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'run', run + 1, 'run_id', ARGV[3])
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('DEL', KEYS[3])
redis.call('HDEL', KEYS[4], ARGV[2])
redis.call('HDEL', KEYS[5], ARGV[2])
local id = redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[8], '*',
  'event_id', ARGV[5], 'job_id', ARGV[2], 'status', ARGV[7], 'event', ARGV[6])
redis.call('RPUSH', KEYS[7], ARGV[9])
redis.call('LTRIM', KEYS[7], -tonumber(ARGV[10]), -1)
redis.call('EXPIRE', KEYS[7], ttl)
"""
)

# Replay. KEYS[8] the vendor queue (list), KEYS[9] the job document. ARGV[11] job json,
# ARGV[12] receipt json (kept if the job store has one), ARGV[13] task message for attempt 1 of
# run N+1. The job is open again: its document is kept as long as its receipt.
_REPLAY_LUA = (
    _ACTION_HEAD
    + """
redis.call('SET', KEYS[9], ARGV[11], 'EX', ttl)
redis.call('HDEL', KEYS[1], 'job')
redis.call('HSETNX', KEYS[1], 'receipt', ARGV[12])
redis.call('LPUSH', KEYS[8], ARGV[13])
return {1, id}
"""
)

# Resolve. KEYS[8] run N+1's terminal marker, KEYS[9] the job document. ARGV[11] how long the
# document outlives the decision. The decision is run N+1's terminal event.
_RESOLVE_LUA = (
    _ACTION_HEAD
    + """
redis.call('SET', KEYS[8], ARGV[5], 'EX', ttl)
local left = redis.call('TTL', KEYS[9])
if left == -1 or left > tonumber(ARGV[11]) then
  redis.call('EXPIRE', KEYS[9], tonumber(ARGV[11]))
end
redis.call('HSET', KEYS[3], 'state', 'done', 'last_event', ARGV[5], 'last_status', ARGV[7])
redis.call('EXPIRE', KEYS[3], ttl)
return {1, id}
"""
)


# Purge, after the head's check. KEYS[8] the job document. ARGV[3] the timeline's length as
# read, ARGV[4] its last entry as read, ARGV[5] the purged dead-letter event ('' for none),
# ARGV[6] event id, ARGV[7] event json, ARGV[8] stream maxlen, ARGV[9] timeline cap, ARGV[10]
# ttl s, ARGV[11] the purge's timeline entry, ARGV[12] n, ARGV[13 .. 12+n] the purged timeline,
# then the stream entries to delete. Refuses unless the timeline is as read.
_PURGE_LUA = (
    _RUN_ENDED
    + """
if redis.call('LLEN', KEYS[7]) ~= tonumber(ARGV[3])
    or (redis.call('LINDEX', KEYS[7], -1) or '') ~= ARGV[4] then
  return {0, 'timeline', tostring(run)}
end
redis.call('DEL', KEYS[8])
redis.call('HDEL', KEYS[1], 'job')
if ARGV[5] ~= '' and redis.call('HEXISTS', KEYS[5], ARGV[2]) == 1 then
  redis.call('HSET', KEYS[5], ARGV[2], ARGV[5])
end
local left = redis.call('PTTL', KEYS[7])
redis.call('DEL', KEYS[7])
local n = tonumber(ARGV[12])
for i = 13, 12 + n do redis.call('RPUSH', KEYS[7], ARGV[i]) end
redis.call('RPUSH', KEYS[7], ARGV[11])
redis.call('LTRIM', KEYS[7], -tonumber(ARGV[9]), -1)
if left > 0 then
  redis.call('PEXPIRE', KEYS[7], left)
else
  redis.call('EXPIRE', KEYS[7], tonumber(ARGV[10]))
end
for i = 13 + n, #ARGV do redis.call('XDEL', KEYS[6], ARGV[i]) end
local id = redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[8], '*',
  'event_id', ARGV[6], 'job_id', ARGV[2], 'status', 'purged', 'event', ARGV[7])
return {1, id}
"""
)

#: What a purge leaves in place of an error message.
PURGED = "[purged]"
#: Free-text fields of events and timeline entries that may carry personal data: the vendor's
#: answer and the operator's note (an error's message is replaced by :data:`PURGED`).
_FREE_TEXT = ("vendor_response", "response", "note")


class OperationRefused(Exception):
    """An action that cannot be done, with the reason in words an operator can act on."""


class JobNotFound(OperationRefused):
    """The job id is neither in the job store nor in the dead letters."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A job waiting for a person, as ``dlq list`` shows it."""

    job_id: str
    vendor: str
    account: str
    operation: str
    order_id: str
    status: str
    """``dead_lettered``, ``in_doubt``, or ``unknown`` when its event is missing."""
    run: int
    attempt: int | None
    at: datetime | None
    """When it got there."""
    error: str | None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "job_id": self.job_id,
            "vendor": self.vendor,
            "account": self.account,
            "operation": self.operation,
            "order_id": self.order_id,
            "status": self.status,
            "run": self.run,
            "attempt": self.attempt,
            "at": self.at.isoformat() if self.at else None,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class JobTimeline:
    """A job's timeline with where it stands now."""

    job_id: str
    run: int
    state: str | None
    """The ledger's state (``in_flight``, ``waiting``, ``done``), None when it has none."""
    entries: list[TimelineEntry]

    def as_json(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "job_id": self.job_id,
            "run": self.run,
            "state": self.state,
            "entries": [e.model_dump(mode="json", exclude_none=True) for e in self.entries],
        }


@dataclass(frozen=True, slots=True)
class _Stored:
    """A job as the operations find it: its document, current run, and how that run ended."""

    job_id: str
    doc: str
    run: int
    ended: EventStatus | None
    """How run ``run`` ended; None while it runs."""


@dataclass(frozen=True, slots=True)
class Purged:
    """What a purge removed from one job."""

    job_id: str
    order_id: str
    vendor: str
    document: bool
    """True when the job document was still there (and now is not)."""
    timeline_entries: int
    """Timeline entries that lost a vendor answer, an error message or a note."""
    stream_events: int
    """Result events deleted from the stream for carrying one of those."""
    event: ResultEvent

    def line(self) -> str:
        """One line for people."""
        document = "document removed" if self.document else "no document left"
        return (
            f"purged {self.job_id} (order {self.order_id}, {self.vendor}): {document}, "
            f"{self.timeline_entries} timeline entries and {self.stream_events} result events "
            "cleared"
        )


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``--since``: an ISO 8601 time (UTC when it has no zone) or a duration back from now,
    ``30s``, ``15m``, ``2h``, ``7d`` or ``1w``."""
    now = now or datetime.now(UTC)
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
        return now - timedelta(**{unit[match[2]]: int(match[1])})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an ISO time (2026-11-20T10:00:00Z) nor a duration "
            "(30s, 15m, 2h, 7d, 1w)"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def whoami() -> str:
    """The login name of the person at the keyboard, the default ``operator``."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class Operations:
    """Operators' actions on one Redis and key prefix (see the module docstring)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        key_prefix: str | None = None,
        ttl_s: int | None = None,
        results_maxlen: int | None = None,
        operator: str | None = None,
    ) -> None:
        settings = get_settings()
        self.client = client
        self.keys = Keys(key_prefix or settings.key_prefix)
        self.ttl_s = ttl_s or settings.receipt_ttl_s
        self.results_maxlen = results_maxlen or settings.results_maxlen
        self.retention_s = settings.job_retention_s
        self.operator = operator or whoami()
        self._replay = client.register_script(_REPLAY_LUA)
        self._resolve = client.register_script(_RESOLVE_LUA)
        self._purge = client.register_script(_PURGE_LUA)

    @classmethod
    def from_url(cls, url: str | None = None, **kwargs: Any) -> Operations:
        """Operations on ``url`` (default: the configured ``REDIS_URL``)."""
        from order_dispatch.redis_client import redis_client

        return cls(redis_client(url=url), **kwargs)

    # Reading

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

    def _scan_dead_letters(self) -> Iterator[DeadLetter]:
        batch: list[tuple[str, str]] = []
        for job_id, doc in self.client.hscan_iter(self.keys.dead_letters, count=500):
            batch.append((str(_text(job_id)), str(_text(doc))))
            if len(batch) >= 500:
                yield from self._dead_batch(batch)
                batch = []
        yield from self._dead_batch(batch)

    def _dead_batch(self, batch: list[tuple[str, str]]) -> Iterator[DeadLetter]:
        if not batch:
            return
        raw_events = self.client.hmget(self.keys.dead_events, [job_id for job_id, _ in batch])
        for (job_id, doc), raw in zip(batch, raw_events, strict=True):
            event = None
            if raw is not None:
                try:
                    event = ResultEvent.model_validate_json(raw)
                except ValidationError:
                    event = None
            yield _dead_letter(job_id, doc, event)

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
        return JobTimeline(job_id, int(run or 1), _text(state), entries)

    def _stored(self, job_id: str) -> _Stored:
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(self.keys.job(job_id), "job", "run")
        pipe.hget(self.keys.dead_letters, job_id)
        pipe.hget(self.keys.dead_events, job_id)
        pipe.get(self.keys.document(job_id))
        (old_doc, run), dead_doc, dead_event, doc = pipe.execute()
        doc = _text(doc) or _text(old_doc) or _text(dead_doc)
        if doc is None:
            raise JobNotFound(f"no job {job_id!r}: not in the job store nor in the dead letters")
        event = None
        if dead_event is not None:
            try:
                event = ResultEvent.model_validate_json(dead_event)
            except ValidationError:
                event = None
        number = int(run) if run is not None else (event.run if event else 1)
        marker = _text(self.client.get(self.keys.terminal(job_id, number)))
        ended: EventStatus | None = None
        if marker is not None:
            try:
                ended = EventStatus(marker.rsplit(":", 1)[-1])
            except ValueError:
                ended = None
        if ended is None and dead_doc is not None:
            ended = event.status if event is not None else EventStatus.DEAD_LETTERED
        return _Stored(job_id, doc, number, ended)

    # Acting

    def replay(
        self, job_id: str, *, order: Any = None, note: str | None = None
    ) -> ResultEvent:
        """Start the next run of ``job_id``, with ``order`` (a corrected order, or a whole
        corrected job) in place of the stored one if given. The ``replayed`` event.

        Raises :class:`OperationRefused` (still running, already accepted, a corrected job
        for another order) and :class:`~producers.enqueue.InvalidJob` (a corrected order that
        breaks the contract).
        """
        stored = self._stored(job_id)
        if stored.ended is None:
            raise OperationRefused(
                f"job {job_id!r} is still running: run {stored.run} has no terminal event yet; "
                "replay it once it has ended"
            )
        if stored.ended not in _REPLAYABLE:
            raise OperationRefused(
                f"job {job_id!r} was {stored.ended.value} in run {stored.run}; a replay would "
                "send the order to the vendor again (enqueue a new job to do that on purpose)"
            )
        if order is not None:
            job = corrected_job(job_id, stored.doc, order)
            doc = json.dumps(job.model_dump(mode="json", exclude_none=True))
            how = "with a corrected order"
        else:
            job = _valid(stored, "replay it with a corrected order")
            doc, how = stored.doc, "with the same order"
        run_id = uuid.uuid4().hex
        event = self._event(job, stored.run + 1, run_id, EventStatus.REPLAYED, note=note)
        detail = f"run {stored.run + 1} started {how} (run {stored.run} ended {stored.ended.value})"
        queue = self.keys.queue(job.vendor)
        receipt = Receipt(
            job_id=job_id,
            task_id=str(uuid.uuid4()),
            vendor=job.vendor,
            account=job.account,
            operation=job.operation.value,
            order_id=job.ref,
            queue=queue,
            enqueued_at=job.enqueued_at or event.occurred_at,
        )
        message = task_message(
            receipt.task_id,
            dispatch_kwargs(job_id, run=stored.run + 1, attempt=1),
            queue=queue,
            priority=job.priority,
        )
        self._act(
            self._replay,
            stored,
            event,
            run_id,
            "replay",
            detail,
            extra_keys=[queue_key(queue, job.priority), self.keys.document(job_id)],
            extra_args=[doc, receipt.model_dump_json(), message],
        )
        return event

    def replay_many(
        self,
        *,
        vendor: str | None = None,
        since: datetime | None = None,
        status: DeadStatus | None = "dead_lettered",
        note: str | None = None,
    ) -> list[tuple[str, ResultEvent | OperationRefused]]:
        """Replay every dead letter that matches; each job id with its ``replayed`` event, or
        why it was refused (one refusal does not stop the others)."""
        done: list[tuple[str, ResultEvent | OperationRefused]] = []
        for dead in self.dead_letters(vendor=vendor, since=since, status=status):
            try:
                done.append((dead.job_id, self.replay(dead.job_id, note=note)))
            except OperationRefused as exc:
                done.append((dead.job_id, exc))
        return done

    def resolve(
        self,
        job_id: str,
        outcome: Resolution,
        *,
        vendor_order_id: str | None = None,
        note: str | None = None,
    ) -> ResultEvent:
        """Record a person's decision on an ``in_doubt`` job as the terminal event of its next
        run (no vendor call is made). The event; :class:`OperationRefused` unless in doubt."""
        status = EventStatus(outcome)
        if vendor_order_id is not None and status is not EventStatus.ACCEPTED:
            raise OperationRefused("--vendor-order-id goes with --as accepted only")
        stored = self._stored(job_id)
        if stored.ended is None:
            raise OperationRefused(
                f"job {job_id!r} is still running: run {stored.run} has no terminal event yet; "
                "only an in_doubt job can be resolved"
            )
        if stored.ended is not EventStatus.IN_DOUBT:
            raise OperationRefused(
                f"job {job_id!r} is not in doubt: run {stored.run} ended {stored.ended.value}; "
                "only an in_doubt job can be resolved"
            )
        job = _valid(stored, "replay it with a corrected order instead")
        run_id = uuid.uuid4().hex
        event = self._event(
            job,
            stored.run + 1,
            run_id,
            status,
            note=note,
            vendor_order_id=vendor_order_id or job.vendor_order_id,
        )
        detail = f"run {stored.run} (in_doubt) resolved as {status.value} in run {stored.run + 1}"
        self._act(
            self._resolve,
            stored,
            event,
            run_id,
            "resolve",
            detail,
            extra_keys=[self.keys.terminal(job_id, stored.run + 1), self.keys.document(job_id)],
            extra_args=[str(self.retention_s)],
        )
        return event

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
                receipt = _object(_text(raw) or "")
                if matches(receipt) and isinstance(receipt.get("job_id"), str):
                    found.add(receipt["job_id"])
        for job_id, doc in self.client.hscan_iter(self.keys.dead_letters, count=500):
            if matches(_object(str(_text(doc)))):
                found.add(str(_text(job_id)))
        return sorted(found)

    def purge(self, job_id: str, *, note: str | None = None) -> Purged:
        """Remove ``job_id``'s personal data (see the module docstring); what was removed.

        Raises :class:`JobNotFound` and :class:`OperationRefused` (the job's run has not ended:
        a worker still needs its document).
        """
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
        ids = {**_object(_text(dead_doc) or ""), **_object(_text(receipt) or "")}
        old_event = _object(_text(dead_event) or "")
        if not ids.get("vendor") or not ids.get("order_id"):
            raise JobNotFound(f"no job {job_id!r}: not in the job store nor in the dead letters")
        run = int(run_text) if run_text is not None else int(old_event.get("run", 1))
        marker = _text(self.client.get(self.keys.terminal(job_id, run)))
        if marker is None and dead_doc is None:
            raise OperationRefused(
                f"job {job_id!r} is still running: run {run} has no terminal event yet; "
                "purge it once it has ended"
            )
        ended = marker.rsplit(":", 1)[-1] if marker is not None else old_event.get("status")
        if ended == EventStatus.IN_DOUBT.value:
            raise OperationRefused(
                f"job {job_id!r} is in doubt: run {run} waits for a person's decision, which "
                "needs its order; resolve it first (order-dispatch resolve), then purge it"
            )
        timeline = [_text(raw) or "" for raw in raw_timeline]
        purged = [_without_free_text(raw) for raw in timeline]
        kept = [t for t in purged if t is not None]
        cleared = sum(1 for raw, t in zip(timeline, purged, strict=True) if raw != t)
        stream_ids = self._free_text_events(job_id, ids.get("enqueued_at"))
        attempt_number = int(attempt or old_event.get("attempt") or 1)
        event = ResultEvent(
            event_id=f"{job_id}:{run}.{(_text(run_id) or '')[:8]}:{attempt_number}:purged",
            job_id=job_id,
            run=run,
            order_id=ids["order_id"],
            vendor=ids["vendor"],
            account=ids.get("account", "default"),
            operation=ids.get("operation", "create"),
            status=EventStatus.PURGED,
            terminal=False,
            attempt=attempt_number,
            occurred_at=datetime.now(UTC),
            operator=self.operator,
            note=note,
        )
        detail = (
            f"personal data removed: {'the job document, ' if has_doc else ''}"
            f"{cleared} timeline entries and {len(stream_ids)} result events cleared"
        )
        entry = TimelineEntry.of_event(event, action="purge", detail=detail)
        reply = self._purge(
            keys=[
                self.keys.job(job_id),
                self.keys.terminal(job_id, run),
                self.keys.ledger(job_id),
                self.keys.dead_letters,
                self.keys.dead_events,
                self.keys.results,
                self.keys.timeline(job_id),
                self.keys.document(job_id),
            ],
            args=[
                run,
                job_id,
                len(timeline),
                timeline[-1] if timeline else "",
                _without_free_text(_text(dead_event) or "") or "",
                event.event_id,
                event.model_dump_json(exclude_none=True),
                self.results_maxlen,
                MAX_ENTRIES,
                self.ttl_s,
                entry.to_json(),
                len(kept),
                *kept,
                *stream_ids,
            ],
        )
        _check_reply(reply, job_id, run)
        return Purged(
            job_id, ids["order_id"], ids["vendor"], bool(has_doc), cleared, len(stream_ids), event
        )

    def _free_text_events(self, job_id: str, since: Any) -> list[str]:
        """The stream entries of ``job_id``'s events that carry a vendor's answer, an error
        message or a note, read from ``since`` (the job's enqueue time) on."""
        start = "-"
        if isinstance(since, str):
            with contextlib.suppress(ValueError):
                start = str(int(datetime.fromisoformat(since).timestamp() * 1000) - 1000)
        found: list[str] = []
        while True:
            batch = self.client.xrange(self.keys.results, start, "+", count=1000) or []
            for entry_id, fields in batch:
                delivery = parse_entry(entry_id, fields)
                event = delivery.raw.get("event", "")
                if delivery.raw.get("job_id") == job_id and _without_free_text(event) != event:
                    found.append(delivery.entry_id)
            if len(batch) < 1000:
                return found
            start = "(" + parse_entry(batch[-1][0], None).entry_id

    def _event(
        self, job: Job, run: int, run_id: str, status: EventStatus, **fields: Any
    ) -> ResultEvent:
        """An operator's event: the first of its run."""
        return ResultEvent.for_job(
            job,
            run=run,
            run_token=run_id,
            attempt=1,
            status=status,
            operator=self.operator,
            **fields,
        )

    def _act(
        self,
        script: Script,
        stored: _Stored,
        event: ResultEvent,
        run_id: str,
        action: Action,
        detail: str,
        *,
        extra_keys: list[str],
        extra_args: list[str],
    ) -> None:
        job_id = stored.job_id
        entry = TimelineEntry.of_event(event, action=action, detail=detail)
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
        _check_reply(reply, job_id, stored.run)


def _check_reply(reply: Any, job_id: str, run: int) -> None:
    """Nothing when an action script did its work; else :class:`OperationRefused` saying why
    (the run had not ended, or the job changed since it was read)."""
    if int(reply[0]) == 1:
        return
    why, now = _text(reply[1]), _text(reply[2])
    if why == "running":
        raise OperationRefused(f"job {job_id!r} is still running: run {now} has not ended")
    if why == "timeline":
        raise OperationRefused(f"job {job_id!r} changed meanwhile (its timeline); try again")
    raise OperationRefused(
        f"job {job_id!r} changed meanwhile: it is now in run {now}, not {run}; "
        "look at its timeline and try again"
    )


def corrected_job(job_id: str, stored_doc: str, data: Any) -> Job:
    """The job a replay of ``job_id`` runs: ``data`` is a corrected order (it replaces the stored
    job's ``order``) or a whole job (it has ``vendor``). It must pass the contract and keep the
    stored job's vendor, account, operation and order id (the stored document may itself break
    the contract: only what it does say is compared)."""
    if not isinstance(data, Mapping):
        raise OperationRefused("the corrected order must be a JSON object")
    base = _object(stored_doc)
    if "vendor" in data:
        doc = {"job_id": job_id, "enqueued_at": base.get("enqueued_at"), **data}
    else:
        if not isinstance(base.get("order"), dict):
            raise OperationRefused(
                f"job {job_id!r} carries no order to replace; give a whole corrected job "
                "(with vendor, account, operation) instead"
            )
        doc = {**base, "job_id": job_id, "order": dict(data)}
        doc.pop("order_id", None)
    job = validate_job(doc, source="corrected order")
    was = {"job_id": job_id, **_identity(base)}
    now = {"job_id": job.job_id, **_identity(job.model_dump(mode="json"))}
    for name, value in was.items():
        if value is not None and value != now[name]:
            raise OperationRefused(
                f"{name}: the corrected job has {now[name]!r}, the job being replayed {value!r}; "
                "a replay keeps vendor, account, operation and order id (enqueue a new job for "
                "another)"
            )
    return job


def _object(text: str) -> dict[str, Any]:
    """``text`` as a JSON object, or an empty one when it is not."""
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _identity(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What a replay may not change, as far as ``doc`` (maybe broken) says it."""
    order = doc.get("order")
    return {
        "vendor": doc.get("vendor"),
        "account": doc.get("account", "default"),
        "operation": doc.get("operation", "create"),
        "order_id": doc.get("order_id")
        or (order.get("order_id") if isinstance(order, Mapping) else None),
    }


def _without_free_text(text: str) -> str | None:
    """A stored event or timeline entry (JSON) without its free text: no vendor answer, no
    note, the error's message replaced by :data:`PURGED`; ``text`` itself when it has none.
    None when ``text`` is not a JSON object (it cannot be told apart from personal data)."""
    data = _object(text)
    if not data:
        return None
    error = data.get("error")
    if not any(name in data for name in _FREE_TEXT) and not (
        isinstance(error, dict) and error.get("message") not in (None, PURGED)
    ):
        return text
    for name in _FREE_TEXT:
        data.pop(name, None)
    if isinstance(error, dict) and error.get("message"):
        error["message"] = PURGED
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _valid(stored: _Stored, action: str) -> Job:
    """The stored job, or :class:`OperationRefused` when it breaks the contract."""
    try:
        return Job.model_validate_json(stored.doc)
    except ValidationError as exc:
        problems = "; ".join(format_validation_errors(exc))
        raise OperationRefused(
            f"the stored job {stored.job_id!r} breaks the contract ({problems}); {action}"
        ) from None


def _dead_letter(job_id: str, doc: str, event: ResultEvent | None) -> DeadLetter:
    if event is not None:
        return DeadLetter(
            job_id=job_id,
            vendor=event.vendor,
            account=event.account,
            operation=event.operation.value,
            order_id=event.order_id,
            status=event.status.value,
            run=event.run,
            attempt=event.attempt,
            at=event.occurred_at,
            error=event.error.message if event.error else None,
        )
    said = _identity(_object(doc))
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
