"""The job store: the one owner of a job's record in Redis (see :mod:`order_dispatch.store`)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from pydantic import ValidationError

from order_dispatch.contract import EventStatus, Job, ResultEvent
from order_dispatch.keys import Keys, terminal_status
from order_dispatch.settings import CircuitSettings, Settings
from order_dispatch.store import lua
from order_dispatch.store.records import (
    KEPT_FOR_REPLAY,
    Admission,
    Claim,
    DeadLetter,
    DeadLetterCounts,
    DeadStatus,
    GateFeedback,
    GateLimit,
    JobStatus,
    JobTimeline,
    LedgerEntry,
    LedgerState,
    Phase,
    Recorded,
    StoredJob,
    Verdict,
)
from order_dispatch.timeline import MAX_ENTRIES, TimelineEntry

#: Fields of a job that hold the order and its customer's data: never in the dead letters.
_PERSONAL_FIELDS = frozenset({"order", "address"})


class JobNotFound(LookupError):
    """The job id is neither in the job store nor in the dead letters."""


class ActionRefused(Exception):
    """An operator action's script refused: the run had not ended, or the job changed since it
    was read. ``why`` is ``running``, ``run`` or ``timeline``; ``run`` the job's run now."""

    def __init__(self, job_id: str, why: str, run: int) -> None:
        self.job_id, self.why, self.run = job_id, why, run
        super().__init__(f"job {job_id!r}: {why} (run {run})")


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to enqueue, prepared by the producer: its stored document, receipt (JSON), run
    token, and its task message with the queue list it goes to (both None when the broker is
    not this Redis: the job is then recorded unpublished)."""

    job_id: str
    doc: str
    receipt: str
    run_id: str
    queue_list: str | None = None
    message: str | None = None
    not_before: datetime | None = None
    """The job's ``not_before``: the attempt's first round trip leaves the gate alone until
    then."""


@dataclass(frozen=True, slots=True)
class Enqueued:
    """What enqueueing one job found: ``created`` False when the id was known (``receipt`` is
    then the first one); ``published`` False while its message awaits the broker."""

    created: bool
    receipt: str
    published: bool


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _object(text: str | None) -> dict[str, Any]:
    """``text`` as a JSON object, or an empty one when it is not."""
    try:
        data = json.loads(text or "")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _event(raw: Any) -> ResultEvent | None:
    if raw is None:
        return None
    try:
        return ResultEvent.model_validate_json(raw)
    except ValidationError:
        return None


def _state_after(event: ResultEvent) -> LedgerState:
    if event.terminal:
        return LedgerState.DONE
    if event.status is EventStatus.DEFERRED:
        return LedgerState.DEFERRED
    return LedgerState.WAITING


def dead_letter_ids(job: Job) -> dict[str, object]:
    """What the dead letters keep of ``job``: everything but the order and the address."""
    doc = job.model_dump(mode="json", exclude_none=True, exclude=set(_PERSONAL_FIELDS))
    doc["order_id"] = job.ref
    return doc


class JobStore:
    """Reads and writes every job's record: receipt, document, ledger, terminal markers,
    result events, timeline and dead letters (the module docstring of
    :mod:`order_dispatch.store` lists them). Thread-safe; the Redis client is the caller's
    (built by whoever owns the connection settings) and never closed here.
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        ttl_s: int = 30 * 86400,
        results_maxlen: int = 1_000_000,
        retention_s: int = 7 * 86400,
        results_max_age_s: int = 7 * 86400,
        circuit: CircuitSettings | None = None,
        probe_lease_s: float = 60.0,
    ) -> None:
        self.client = client
        self.keys = keys
        self.ttl_s = ttl_s
        self.results_maxlen = results_maxlen
        self.retention_s = retention_s
        self.results_max_age_s = results_max_age_s
        self.circuit = circuit or CircuitSettings()
        self.probe_lease_s = probe_lease_s
        self._enqueue = client.register_script(lua.ENQUEUE)
        self._claim = client.register_script(lua.CLAIM)
        self._begin = client.register_script(lua.BEGIN)
        self._release = client.register_script(lua.RELEASE)
        self._record = client.register_script(lua.RECORD)
        self._replay = client.register_script(lua.REPLAY)
        self._resolve = client.register_script(lua.RESOLVE)
        self._purge = client.register_script(lua.PURGE)

    @classmethod
    def from_settings(cls, client: redis.Redis, settings: Settings) -> JobStore:
        """A store with the product's settings (key prefix, retention, stream bounds)."""
        return cls(
            client,
            Keys(settings.key_prefix),
            ttl_s=settings.receipt_ttl_s,
            results_maxlen=settings.results_maxlen,
            retention_s=settings.job_retention_s,
            results_max_age_s=settings.results_max_age_s,
            circuit=settings.circuit,
            probe_lease_s=settings.lease_s,
        )

    # Enqueue

    def enqueue(self, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """Record ``jobs`` (and push their messages) in one pipelined round trip; a job id
        already known keeps its first receipt."""
        pipe = self.client.pipeline(transaction=False)
        for job in jobs:
            keys = [self.keys.job(job.job_id), self.keys.document(job.job_id)]
            if job.queue_list is not None:
                keys.append(job.queue_list)
            args: list[str | int] = [
                job.receipt,
                job.doc,
                job.message or "",
                self.ttl_s,
                job.run_id,
                _epoch(job.not_before),
            ]
            self._enqueue(keys=keys, args=args, client=pipe)
        return [
            Enqueued(bool(int(r[0])), str(_text(r[1])), _text(r[2]) == "1") for r in pipe.execute()
        ]

    def mark_published(self, job_id: str) -> None:
        """Clear the unpublished mark of ``job_id`` once the broker confirmed its message."""
        self.client.hdel(self.keys.job(job_id), "published")

    # An attempt's life

    def load(self, job_id: str, run: int = 1) -> LedgerEntry:
        """The ledger of ``job_id``, whether ``run`` ended, and the stored job with its current
        run, in one round trip and without changing anything."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(self.keys.ledger(job_id))
        pipe.get(self.keys.terminal(job_id, run))
        pipe.time()
        pipe.hmget(self.keys.job(job_id), "run", "run_id", "job")
        pipe.get(self.keys.document(job_id))
        raw, terminal, (seconds, micros), (current_run, run_id, old_doc), doc = pipe.execute()
        return _entry(
            {str(_text(k)): _text(v) for k, v in raw.items()},
            _text(terminal),
            seconds + micros / 1e6,
            _text(current_run),
            _text(run_id),
            _text(doc if doc is not None else old_doc),
        )

    def claim(
        self,
        job_id: str,
        run: int,
        attempt: int,
        worker: str,
        token: str,
        limits: Mapping[tuple[str, str], GateLimit],
    ) -> Claim:
        """The first round trip of an attempt: load the job and its ledger, and when the ledger
        says this attempt simply runs now (the run is current and open, nothing is in flight,
        no later attempt ran, this one did not already end), ask the vendor gate and, if it
        admits the call, mark the attempt in flight under ``token`` (one per delivery).

        ``limits`` holds the gate limits of the vendor accounts the caller knows, by
        ``(vendor, account)``; a job of another account is loaded only (the caller then asks
        :meth:`~order_dispatch.store.JobStore.begin_attempt` itself). A claim that finds the
        attempt already marked with ``token`` says so (``own``): the reply to an earlier try
        was lost, and the mark is this delivery's.
        """
        table = {f"{v}:{a}": [lim.interval_s, lim.tolerance_s] for (v, a), lim in limits.items()}
        reply = self._claim(
            keys=[
                self.keys.job(job_id),
                self.keys.document(job_id),
                self.keys.ledger(job_id),
                self.keys.terminal(job_id, run),
            ],
            args=[
                str(run),
                str(attempt),
                worker,
                str(self.ttl_s),
                token,
                json.dumps(table, separators=(",", ":")),
                self.keys.rate("{vendor}", "{account}"),
                self.keys.circuit("{vendor}", "{account}"),
                repr(self.probe_lease_s),
                repr(self.circuit.open_s),
            ],
        )
        claimed, raw, terminal, seconds, micros, current_run, run_id, doc = reply[:8]
        verdict, wait, state, failures = reply[8:12]
        it = iter(raw)
        fields = {str(_text(k)): _text(v) for k, v in zip(it, it, strict=True)}
        entry = _entry(
            fields,
            _text(terminal),
            int(seconds) + int(micros) / 1e6,
            _text(current_run),
            _text(run_id),
            _text(doc),
        )
        admission = None
        if _text(verdict):
            admission = Admission(
                Verdict(str(_text(verdict))),
                float(str(_text(wait))),
                str(_text(state)),
                int(failures or 0),
            )
        return Claim(entry, int(claimed) > 0, int(claimed) == 2, admission)

    def begin_attempt(
        self,
        job_id: str,
        attempt: int,
        worker: str,
        *,
        token: str | None = None,
        take_over: str | None = None,
    ) -> bool:
        """Mark attempt ``attempt`` in flight under the delivery's ``token`` before its
        request goes out.

        False when another delivery holds the job (unless its mark is ``take_over``, the
        ``started_at`` of an attempt known to be dead): two deliveries of one job never send at
        once. True also when the mark already carries ``token`` (a retry after a lost reply);
        without one, the call gets a token of its own.
        """
        reply = self._begin(
            keys=[self.keys.ledger(job_id)],
            args=[attempt, worker, self.ttl_s, take_over or "", token or uuid.uuid4().hex],
        )
        return int(reply) > 0

    def release(
        self,
        job: Job,
        token: str,
        state: LedgerState = LedgerState.DEFERRED,
        *,
        unprobe: bool = False,
    ) -> bool:
        """Give back the in-flight mark ``token`` holds, leaving ``state`` (no request went out
        and the job waits instead), and the circuit's probe when ``unprobe``; False when the
        mark is not (any longer) this delivery's."""
        reply = self._release(
            keys=[self.keys.ledger(job.job_id), self.keys.circuit(job.vendor, job.account)],
            args=[token, state.value, "1" if unprobe else "0"],
        )
        return bool(int(reply))

    def record(
        self,
        job: Job,
        event: ResultEvent,
        *,
        worker: str | None = None,
        request: str | None = None,
        http_status: int | None = None,
        feedback: GateFeedback | None = None,
    ) -> Recorded:
        """Write ``event``, the ledger state it implies, the job's timeline entry, its dead
        letter (dead-lettered or in doubt), and what the vendor call taught the gate
        (``feedback``), in one atomic step. Not written (``written`` False) when the run
        already ended or a replay superseded it; the timeline still gets the entry.

        ``worker`` ran the attempt; ``request`` summarises what it sent (method and path);
        ``http_status`` is the vendor's.
        """
        entry = TimelineEntry.of_event(
            event, worker=worker, request=request, http_status=http_status
        )
        feedback = feedback or GateFeedback()
        limit = feedback.limit or GateLimit(0.0, 0.0)
        reply = self._record(
            keys=[
                self.keys.terminal(job.job_id, event.run),
                self.keys.results,
                self.keys.ledger(job.job_id),
                self.keys.dead_letters,
                self.keys.job(job.job_id),
                self.keys.timeline(job.job_id),
                self.keys.dead_events,
                self.keys.document(job.job_id),
                self.keys.rate(job.vendor, job.account),
                self.keys.circuit(job.vendor, job.account),
            ],
            args=[
                event.event_id,
                event.model_dump_json(exclude_none=True),
                self.results_maxlen,
                "1" if event.terminal else "0",
                _state_after(event).value,
                self.ttl_s,
                job.job_id,
                event.status.value,
                json.dumps(dead_letter_ids(job)) if event.status in KEPT_FOR_REPLAY else "",
                entry.to_json(),
                MAX_ENTRIES,
                event.run,
                0 if event.status is EventStatus.IN_DOUBT else self.retention_s,
                self.results_max_age_s,
                "" if feedback.success is None else ("1" if feedback.success else "0"),
                self.circuit.failure_threshold,
                repr(self.circuit.open_s),
                repr(self.circuit.max_open_s),
                "" if not feedback.pause_s else repr(feedback.pause_s),
                repr(limit.tolerance_s),
                "1" if feedback.unprobe else "0",
            ],
        )
        return Recorded(bool(int(reply[0])), str(_text(reply[2]) or ""))

    # Reading for people

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
        ids = {**_object(_text(dead)), **_object(_text(receipt))}
        if not ids and last is None:
            raise JobNotFound(f"no job {job_id!r}: not in the job store nor in the dead letters")
        event = _event(dead_event)
        number = int(run) if run is not None else (event.run if event else 1)
        entry = None
        if last is not None:
            try:
                entry = TimelineEntry.model_validate_json(last)
            except ValidationError:
                entry = None
        marker = _text(self.client.get(self.keys.terminal(job_id, number)))
        ended = terminal_status(marker) or (event.status.value if event else None)
        status = _text(last_status) or (entry.status.value if entry else None) or ended
        phase = _phase(_text(state), ended)
        when = None
        if entry is not None and entry.retry_in_s is not None and phase is not Phase.TERMINAL:
            when = entry.at + timedelta(seconds=entry.retry_in_s)
        error = entry.error if entry is not None else (event.error if event else None)
        return JobStatus(
            job_id=job_id,
            phase=phase,
            run=number,
            attempts=int(_text(attempts) or 0),
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
        return _object(_text(self.client.hget(self.keys.job(job_id), "receipt")))

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
            yield _dead_letter(job_id, doc, _event(raw))

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
                receipt = _object(_text(raw))
                if matches(receipt) and isinstance(receipt.get("job_id"), str):
                    found.add(receipt["job_id"])
        for job_id, doc in self.client.hscan_iter(self.keys.dead_letters, count=500):
            if matches(_object(_text(doc))):
                found.add(str(_text(job_id)))
        return sorted(found)

    # Operator actions (the rules and messages are in order_dispatch_ops.actions)

    def stored(self, job_id: str) -> StoredJob:
        """``job_id``'s document, current run and how that run ended (:class:`JobNotFound`)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(self.keys.job(job_id), "job", "run")
        pipe.hget(self.keys.dead_letters, job_id)
        pipe.hget(self.keys.dead_events, job_id)
        pipe.get(self.keys.document(job_id))
        (old_doc, run), dead_doc, dead_event, doc = pipe.execute()
        doc = _text(doc) or _text(old_doc) or _text(dead_doc)
        if doc is None:
            raise JobNotFound(f"no job {job_id!r}: not in the job store nor in the dead letters")
        event = _event(dead_event)
        number = int(run) if run is not None else (event.run if event else 1)
        marker = _text(self.client.get(self.keys.terminal(job_id, number)))
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
        and ``message`` (attempt 1 of run N+1) pushed to ``queue_list``.
        :class:`ActionRefused` when the job changed since ``stored`` was read."""
        self._act(
            self._replay,
            stored,
            event,
            run_id,
            entry,
            extra_keys=[queue_list, self.keys.document(stored.job_id)],
            extra_args=[doc, receipt, message, _epoch(not_before)],
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
        ids = {**_object(_text(dead_doc)), **_object(_text(receipt))}
        old_event = _object(_text(dead_event))
        if not ids.get("vendor") or not ids.get("order_id"):
            raise JobNotFound(f"no job {job_id!r}: not in the job store nor in the dead letters")
        run = int(run_text) if run_text is not None else int(old_event.get("run", 1))
        marker = _text(self.client.get(self.keys.terminal(job_id, run)))
        return PurgeView(
            job_id=job_id,
            ids=ids,
            run=run,
            run_id=_text(run_id) or "",
            ended=terminal_status(marker) if marker is not None else None,
            dead=dead_doc is not None,
            dead_event=_text(dead_event),
            old_event=old_event,
            has_document=bool(has_doc),
            timeline=[_text(raw) or "" for raw in raw_timeline],
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


def _epoch(when: datetime | None) -> str:
    """``when`` as epoch seconds for the scripts, '0' for none."""
    return repr(when.timestamp()) if when is not None else "0"


def _check(reply: Any, job_id: str) -> None:
    if int(reply[0]) != 1:
        raise ActionRefused(job_id, str(_text(reply[1])), int(str(_text(reply[2]))))


def _entry(
    fields: Mapping[str, str | None],
    terminal: str | None,
    now: float,
    current_run: str | None,
    run_id: str | None,
    doc: str | None,
) -> LedgerEntry:
    started = fields.get("started_at")
    state = fields.get("state")
    return LedgerEntry(
        LedgerState(state) if state else None,
        int(fields.get("attempt") or 0),
        started,
        now - float(started) if started else 0.0,
        terminal,
        doc,
        int(current_run or 1),
        run_id or "",
        fields.get("token"),
    )


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
    said = identity_of(_object(doc))
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
