"""Names of everything the product keeps in Redis, in one place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

#: The one task the workers run; producers write messages for it by name.
DISPATCH_TASK = "worker.tasks.dispatch"
#: The most wake tokens a :meth:`Keys.fetch_wake` list holds: more than the worker processes that
#: may be waiting at once, and no more (tokens nobody waited for only cost a look each).
WAKE_TOKENS = 64


def task_display_name(job: Mapping[str, Any]) -> str:
    """The name Flower, ``celery inspect`` and the worker's logs show for ``job``'s task.

    ``dispatch:<vendor>:<operation>`` (Celery's ``shadow`` name): the worker still runs
    :data:`DISPATCH_TASK`, and an operator can filter by vendor and operation.
    """
    return f"dispatch:{job.get('vendor')}:{job.get('operation', 'create')}"


def task_display_args(job: Mapping[str, Any]) -> str:
    """The arguments Flower and ``celery inspect`` show for ``job``'s task (Celery's
    ``kwargsrepr``): ids only, never the order itself (customer data) or credentials."""
    shown = {k: job.get(k) for k in ("job_id", "vendor", "order_id")}
    return repr(shown)


def queue_for(vendor: str, prefix: str = "od") -> str:
    """The Celery queue of a vendor: one per vendor, so a slow vendor cannot starve the others."""
    return f"{prefix}.{vendor}"


@dataclass(frozen=True, slots=True)
class Keys:
    """Redis key names under one prefix."""

    prefix: str = "od"

    def queue(self, vendor: str) -> str:
        """The Celery queue (a Redis list) of ``vendor``'s jobs."""
        return queue_for(vendor, self.prefix)

    def job(self, job_id: str) -> str:
        """Hash: the job's enqueue receipt (the duplicate check) and its current run; ids only."""
        return f"{self.prefix}:job:{job_id}"

    def document(self, job_id: str) -> str:
        """String: the job document (the order, with its customer's personal data). Kept while
        the job is open, then ``job_retention_s`` after its run ended (dead-lettered,
        rejected or accepted); an ``in_doubt`` job is open until a person decides."""
        return f"{self.prefix}:doc:{job_id}"

    def ledger(self, job_id: str) -> str:
        """Hash: the job's delivery ledger (the attempt in flight, with its worker, start and
        delivery token; the last outcome)."""
        return f"{self.prefix}:ledger:{job_id}"

    def terminal(self, job_id: str, run: int) -> str:
        """String: the event id of a run's terminal event (exactly one per run)."""
        return f"{self.prefix}:terminal:{job_id}:{run}"

    def rate(self, vendor: str, account: str) -> str:
        """String: the GCRA timestamp of a vendor account's rate limit."""
        return f"{self.prefix}:rate:{vendor}:{account}"

    @property
    def results(self) -> str:
        """Stream: result events."""
        return f"{self.prefix}:results"

    @property
    def dead_letters(self) -> str:
        """Hash: job id -> the ids of dead-lettered and in-doubt jobs (vendor, account,
        operation, order id; no order), for listing; replay reads :meth:`document`.

        Each one's status (:data:`DEAD_LETTER_STATUSES`) is that of its event in
        :attr:`dead_events`, which, like this hash, never expires.
        """
        return f"{self.prefix}:dead"

    @property
    def dead_events(self) -> str:
        """Hash: job id -> the terminal event that put the job in :attr:`dead_letters`."""
        return f"{self.prefix}:dead:events"

    def timeline(self, job_id: str) -> str:
        """List: the job's timeline (attempts and operators' actions, oldest first, capped)."""
        return f"{self.prefix}:timeline:{job_id}"

    @property
    def quarantine(self) -> str:
        """Stream: messages the workers could not decode or run, each with its raw bytes and
        the reason."""
        return f"{self.prefix}:quarantine"

    @property
    def schedule(self) -> str:
        """Sorted set: jobs waiting for a delayed retry, scored by when they are due."""
        return f"{self.prefix}:schedule"

    @property
    def schedule_unreadable(self) -> str:
        """Hash: schedule entries that were not task messages (set aside, with when)."""
        return f"{self.prefix}:schedule:unreadable"

    @property
    def fetch_workers(self) -> str:
        """Hash: every worker process that takes messages (reliable fetch), id -> when it
        started; an entry goes when the worker stops cleanly or a sweep finds it dead."""
        return f"{self.prefix}:fetch:workers"

    def fetch_alive(self, worker: str) -> str:
        """String with a TTL: a worker's heartbeat; gone, the worker is dead."""
        return f"{self.prefix}:fetch:alive:{worker}"

    def fetch_wake(self, queue: str) -> str:
        """List of at most :data:`WAKE_TOKENS` tokens for ``queue`` (a queue's name, as
        :meth:`queue` gives it): each enqueue to it pushes one, and a worker serving it whose
        queues were empty waits on it (``BLPOP`` on its queues' wake lists) between looks, so a
        new job wakes a worker that will take it, never one that serves other vendors only."""
        return f"{self.prefix}:fetch:wake:{queue}"

    def fetch_held(self, worker: str) -> str:
        """List: the messages a worker took off its queues and has not acked, each as
        ``<queue list>\\n<message>``."""
        return f"{self.prefix}:fetch:held:{worker}"

    @property
    def webhook_endpoints(self) -> str:
        """Hash: webhook endpoint id -> the endpoint (URL, subscriptions, secrets)."""
        return f"{self.prefix}:webhooks:endpoints"

    @property
    def webhook_failing(self) -> str:
        """Hash: webhook endpoint id -> when it started failing (epoch s; none: not failing)."""
        return f"{self.prefix}:webhooks:failing"

    def circuit(self, vendor: str, account: str) -> str:
        """Hash: the circuit breaker of one vendor account; field ``state`` is one of
        :class:`CircuitState` (no key: closed)."""
        return f"{self.prefix}:circuit:{vendor}:{account}"

    def api_key(self, key_id: str) -> str:
        """Hash: one HTTP API key: its name, scopes, SHA-256 digest (never the key), rate limit,
        when it was created and revoked."""
        return f"{self.prefix}:api:key:{key_id}"

    @property
    def api_keys(self) -> str:
        """Set: the ids of every HTTP API key (revoked ones included)."""
        return f"{self.prefix}:api:keys"

    def api_rate(self, key_id: str) -> str:
        """String: the GCRA timestamp of one HTTP API key's rate limit."""
        return f"{self.prefix}:api:rate:{key_id}"

    @property
    def replication_probe(self) -> str:
        """String: written just before a ``WAIT`` for replicas (with Sentinel), so the wait
        covers every write of the connection before it."""
        return f"{self.prefix}:replication-probe"

    def api_circuit(self, key_id: str) -> str:
        """Hash: never written. The vendor gate's GCRA function (which the API key check
        calls) reads a circuit breaker beside the rate; an API key's is always closed."""
        return f"{self.prefix}:api:circuit:{key_id}"


#: The statuses a job waits in :attr:`Keys.dead_letters` with: ``dead_lettered`` (a person may
#: replay it) and ``in_doubt`` (a person decides whether the vendor has it).
DEAD_LETTER_STATUSES = ("dead_lettered", "in_doubt")


def terminal_status(marker: str | None) -> str | None:
    """The status a run ended with, read from its :meth:`Keys.terminal` marker (the terminal
    event's id, ``<job>:<run>.<token>:<attempt>:<status>``); None without a marker."""
    return marker.rsplit(":", 1)[-1] if marker is not None else None


class CircuitState(StrEnum):
    """A circuit breaker's state, as the ``state`` field of :meth:`Keys.circuit` holds it."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
