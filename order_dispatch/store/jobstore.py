"""The job store: the one owner of a job's record in Redis (see :mod:`order_dispatch.store`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from order_dispatch.broker import queue_of
from order_dispatch.contract import EventStatus, Job, ResultEvent
from order_dispatch.keys import WAKE_TOKENS, Keys
from order_dispatch.settings import CircuitSettings, Settings
from order_dispatch.store import lua
from order_dispatch.store.codec import epoch, text
from order_dispatch.store.operator import OperatorWrites
from order_dispatch.store.reading import JobReads
from order_dispatch.store.records import (
    KEPT_FOR_REPLAY,
    Admission,
    Claim,
    GateFeedback,
    GateLimit,
    LedgerEntry,
    LedgerState,
    Recorded,
    Verdict,
)
from order_dispatch.timeline import MAX_ENTRIES, TimelineEntry

#: Fields of a job that hold the order and its customer's data: never in the dead letters.
_PERSONAL_FIELDS = frozenset({"order", "address"})


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


class JobStore(JobReads, OperatorWrites):
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
            keys, args = self.enqueue_call(job)
            self._enqueue(keys=keys, args=args, client=pipe)
        return [self.enqueued(reply) for reply in pipe.execute()]

    def enqueue_call(self, job: NewJob) -> tuple[list[str], list[str | int]]:
        """The keys and arguments of :data:`~order_dispatch.store.lua.ENQUEUE` that record
        ``job``: for a caller that runs the script on a client of its own (the HTTP API's
        asyncio client); :meth:`enqueued` reads its reply."""
        keys = [self.keys.job(job.job_id), self.keys.document(job.job_id)]
        if job.queue_list is not None:
            keys += [job.queue_list, self.keys.fetch_wake(queue_of(job.queue_list))]
        args: list[str | int] = [
            job.receipt,
            job.doc,
            job.message or "",
            self.ttl_s,
            job.run_id,
            epoch(job.not_before),
            WAKE_TOKENS,
        ]
        return keys, args

    @staticmethod
    def enqueued(reply: Sequence[Any]) -> Enqueued:
        """What the enqueue script's ``reply`` says."""
        return Enqueued(bool(int(reply[0])), str(text(reply[1])), text(reply[2]) == "1")

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
            {str(text(k)): text(v) for k, v in raw.items()},
            text(terminal),
            seconds + micros / 1e6,
            text(current_run),
            text(run_id),
            text(doc if doc is not None else old_doc),
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
        fields = {str(text(k)): text(v) for k, v in zip(it, it, strict=True)}
        entry = _entry(
            fields,
            text(terminal),
            int(seconds) + int(micros) / 1e6,
            text(current_run),
            text(run_id),
            text(doc),
        )
        admission = None
        if text(verdict):
            admission = Admission(
                Verdict(str(text(verdict))),
                float(str(text(wait))),
                str(text(state)),
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
        return Recorded(bool(int(reply[0])), str(text(reply[2]) or ""))


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
