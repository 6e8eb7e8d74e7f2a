"""What operators do with jobs that need a person: list dead letters, replay, resolve, read the
timeline, purge an order's personal data.

The command line calls them, and so can the HTTP API and an operator console: nothing here
depends on the command line, Celery or httpx (a replay is an enqueue of a stored job's next
run, and an operator's shell should not need the worker's stack to do it). The rules and the
words for operators are here; the reads and writes are the job store's
(:mod:`order_dispatch.store`).

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

from order_dispatch.broker import dispatch_kwargs, queue_key, task_message
from order_dispatch.contract import EventStatus, Job, ResultEvent, format_validation_errors
from order_dispatch.results import parse_entry
from order_dispatch.settings import get_settings
from order_dispatch.store import (
    ActionRefused,
    DeadLetter,
    DeadStatus,
    JobStore,
    JobTimeline,
    StoredJob,
    identity_of,
)
from order_dispatch.store import JobNotFound as NotInStore
from order_dispatch.timeline import TimelineEntry
from producers.enqueue import Receipt, validate_job

__all__ = [
    "DeadLetter",
    "DeadStatus",
    "JobNotFound",
    "JobTimeline",
    "OperationRefused",
    "Operations",
    "Purged",
    "Resolution",
    "corrected_job",
    "parse_since",
    "whoami",
]

#: How a person resolves an ``in_doubt`` job.
Resolution = Literal["accepted", "rejected"]

#: Run statuses a replay may follow; replaying an accepted job would send the order again.
_REPLAYABLE = frozenset({EventStatus.DEAD_LETTERED, EventStatus.IN_DOUBT, EventStatus.REJECTED})

#: What a purge leaves in place of an error message.
PURGED = "[purged]"
#: Free-text fields of events and timeline entries that may carry personal data: the vendor's
#: answer and the operator's note (an error's message is replaced by :data:`PURGED`).
_FREE_TEXT = ("vendor_response", "response", "note")


class OperationRefused(Exception):
    """An action that cannot be done, with the reason in words an operator can act on."""


class JobNotFound(OperationRefused, NotInStore):
    """The job id is neither in the job store nor in the dead letters."""


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
        overrides: dict[str, Any] = {"key_prefix": key_prefix or settings.key_prefix}
        if ttl_s:
            overrides["receipt_ttl_s"] = ttl_s
        if results_maxlen:
            overrides["results_maxlen"] = results_maxlen
        self.client = client
        self.store = JobStore.from_settings(client, settings.model_copy(update=overrides))
        self.keys = self.store.keys
        self.operator = operator or whoami()

    @classmethod
    def from_url(cls, url: str | None = None, **kwargs: Any) -> Operations:
        """Operations on ``url`` (default: the configured ``REDIS_URL``)."""
        return cls(redis.Redis.from_url(url or get_settings().redis_url), **kwargs)

    # Reading

    def dead_letters(
        self,
        *,
        vendor: str | None = None,
        since: datetime | None = None,
        status: DeadStatus | None = None,
    ) -> list[DeadLetter]:
        """Jobs in the dead letters, oldest first, filtered by vendor, time and status."""
        return self.store.dead_letters(vendor=vendor, since=since, status=status)

    def timeline(self, job_id: str) -> JobTimeline:
        """``job_id``'s timeline, oldest entry first (:class:`JobNotFound` if none is known)."""
        try:
            return self.store.timeline(job_id)
        except NotInStore as exc:
            raise JobNotFound(str(exc)) from None

    def _stored(self, job_id: str) -> StoredJob:
        try:
            return self.store.stored(job_id)
        except NotInStore as exc:
            raise JobNotFound(str(exc)) from None

    # Acting

    def replay(self, job_id: str, *, order: Any = None, note: str | None = None) -> ResultEvent:
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
        entry = TimelineEntry.of_event(event, action="replay", detail=detail)
        with _refusals(job_id, stored.run):
            self.store.replay(
                stored,
                event,
                run_id,
                entry,
                doc=doc,
                receipt=receipt.model_dump_json(),
                queue_list=queue_key(queue, job.priority),
                message=message,
                not_before=job.not_before,
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
        entry = TimelineEntry.of_event(event, action="resolve", detail=detail)
        with _refusals(job_id, stored.run):
            self.store.resolve(stored, event, run_id, entry)
        return event

    def jobs_of_order(
        self, order_id: str, *, vendor: str | None = None, account: str | None = None
    ) -> list[str]:
        """The ids of the jobs the job store or the dead letters know for ``order_id`` (of
        ``vendor`` and ``account`` when given), sorted."""
        return self.store.jobs_of_order(order_id, vendor=vendor, account=account)

    def purge(self, job_id: str, *, note: str | None = None) -> Purged:
        """Remove ``job_id``'s personal data (see the module docstring); what was removed.

        Raises :class:`JobNotFound` and :class:`OperationRefused` (the job's run has not ended:
        a worker still needs its document).
        """
        try:
            view = self.store.purge_view(job_id)
        except NotInStore as exc:
            raise JobNotFound(str(exc)) from None
        ids, run, old_event = view.ids, view.run, view.old_event
        if view.ended is None and not view.dead:
            raise OperationRefused(
                f"job {job_id!r} is still running: run {run} has no terminal event yet; "
                "purge it once it has ended"
            )
        ended = view.ended if view.ended is not None else old_event.get("status")
        if ended == EventStatus.IN_DOUBT.value:
            raise OperationRefused(
                f"job {job_id!r} is in doubt: run {run} waits for a person's decision, which "
                "needs its order; resolve it first (order-dispatch resolve), then purge it"
            )
        purged = [_without_free_text(raw) for raw in view.timeline]
        kept = [t for t in purged if t is not None]
        cleared = sum(1 for raw, t in zip(view.timeline, purged, strict=True) if raw != t)
        stream_ids = self._free_text_events(job_id, ids.get("enqueued_at"))
        attempt_number = int(view.attempt or old_event.get("attempt") or 1)
        event = ResultEvent(
            event_id=f"{job_id}:{run}.{view.run_id[:8]}:{attempt_number}:purged",
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
            f"personal data removed: {'the job document, ' if view.has_document else ''}"
            f"{cleared} timeline entries and {len(stream_ids)} result events cleared"
        )
        entry = TimelineEntry.of_event(event, action="purge", detail=detail)
        with _refusals(job_id, run):
            self.store.purge(
                view,
                event,
                entry,
                dead_event=_without_free_text(view.dead_event or "") or "",
                timeline=kept,
                stream_ids=stream_ids,
            )
        return Purged(
            job_id,
            ids["order_id"],
            ids["vendor"],
            view.has_document,
            cleared,
            len(stream_ids),
            event,
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


@contextlib.contextmanager
def _refusals(job_id: str, run: int) -> Iterator[None]:
    """Turn the store's refusal of an action into :class:`OperationRefused` saying why (the
    run had not ended, or the job changed since it was read)."""
    try:
        yield
    except ActionRefused as exc:
        if exc.why == "running":
            raise OperationRefused(
                f"job {job_id!r} is still running: run {exc.run} has not ended"
            ) from None
        if exc.why == "timeline":
            raise OperationRefused(
                f"job {job_id!r} changed meanwhile (its timeline); try again"
            ) from None
        raise OperationRefused(
            f"job {job_id!r} changed meanwhile: it is now in run {exc.run}, not {run}; "
            "look at its timeline and try again"
        ) from None


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
    was = {"job_id": job_id, **identity_of(base)}
    now = {"job_id": job.job_id, **identity_of(job.model_dump(mode="json"))}
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


def _valid(stored: StoredJob, action: str) -> Job:
    """The stored job, or :class:`OperationRefused` when it breaks the contract."""
    try:
        return Job.model_validate_json(stored.doc)
    except ValidationError as exc:
        problems = "; ".join(format_validation_errors(exc))
        raise OperationRefused(
            f"the stored job {stored.job_id!r} breaks the contract ({problems}); {action}"
        ) from None
