"""The job store: the one owner of a job's record in Redis.

A job's record is its receipt and current run (``<prefix>:job:<id>``), its document (the order,
``<prefix>:doc:<id>``), its delivery ledger (``<prefix>:ledger:<id>``), one terminal marker per
run, its result events in the results stream, its timeline, and, when a person must act, its
entry in the dead letters. :class:`JobStore` reads and writes all of it; every write is one Lua
script (:mod:`order_dispatch.store.lua`), so it happens whole or not at all. Everything else in
the product calls the store:

- the producers enqueue (:meth:`JobStore.enqueue`);
- the worker runs an attempt in two round trips: :meth:`JobStore.claim` before the vendor call
  (load the job and ledger, ask the vendor gate, mark the attempt in flight under the
  delivery's token) and :meth:`JobStore.record` after it (event, ledger, timeline, dead letter,
  and what the call taught the gate);
- the operator actions (:mod:`order_dispatch_ops.actions`) list dead letters and replay, resolve
  and purge jobs through it;
- health and the metrics count the dead letters with :meth:`JobStore.dead_letter_counts`, from
  the same entries ``dlq list`` shows;
- the HTTP API reads :meth:`JobStore.status` and :meth:`JobStore.timeline`.

The store never builds a Redis client: it takes one, so whoever owns the connection settings
(Sentinel, TLS) builds them all in one place.
"""

from order_dispatch.store.codec import JobNotFound
from order_dispatch.store.jobstore import Enqueued, JobStore, NewJob, dead_letter_ids
from order_dispatch.store.operator import ActionRefused, PurgeView
from order_dispatch.store.reading import identity_of
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

__all__ = [
    "KEPT_FOR_REPLAY",
    "ActionRefused",
    "Admission",
    "Claim",
    "DeadLetter",
    "DeadLetterCounts",
    "DeadStatus",
    "Enqueued",
    "GateFeedback",
    "GateLimit",
    "JobNotFound",
    "JobStatus",
    "JobStore",
    "JobTimeline",
    "LedgerEntry",
    "LedgerState",
    "NewJob",
    "Phase",
    "PurgeView",
    "Recorded",
    "StoredJob",
    "Verdict",
    "dead_letter_ids",
    "identity_of",
]
