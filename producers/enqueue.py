"""``enqueue`` and ``enqueue_many``: validated, de-duplicated, atomic enqueueing of jobs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import redis
from pydantic import BaseModel, ConfigDict, ValidationError

from order_dispatch import catalog, money
from order_dispatch.contract import WEBHOOKS, Job, format_validation_errors
from order_dispatch.keys import Keys
from order_dispatch.redis_client import wait_for_replicas
from order_dispatch.settings import get_settings
from order_dispatch.store import Enqueued, JobStore, NewJob
from producers.message import dispatch_kwargs, queue_key, task_message

if TYPE_CHECKING:
    from producers.broker import BrokerPublisher


class InvalidJob(ValueError):
    """A job that fails validation; ``errors`` names every bad field (``order.items.0.sku: ..``)."""

    def __init__(self, errors: list[str], *, order_id: str | None = None, source: str = "") -> None:
        self.errors = errors
        self.order_id = order_id
        self.source = source
        where = f"{source}: " if source else ""
        which = f"order {order_id!r}" if order_id else "job"
        super().__init__(f"{where}{which} is invalid: " + "; ".join(errors))


class Receipt(BaseModel):
    """Proof that a job is queued. ``duplicate`` is True when the job id was already queued;
    the other fields are then those of the first enqueue."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    task_id: str
    vendor: str
    account: str
    operation: str
    order_id: str
    queue: str
    enqueued_at: datetime
    duplicate: bool = False


def _order_id_of(data: Any) -> str | None:
    if isinstance(data, Mapping):
        order = data.get("order")
        if isinstance(order, Mapping) and isinstance(order.get("order_id"), str):
            return str(order["order_id"])
        if isinstance(data.get("order_id"), str):
            return str(data["order_id"])
    return None


def job_size(data: Any) -> int:
    """The size in bytes of ``data`` as compact JSON (what the job store would hold)."""
    if isinstance(data, Job):
        return len(data.model_dump_json(exclude_none=True).encode())
    try:
        return len(json.dumps(data, separators=(",", ":"), default=str).encode())
    except (TypeError, ValueError):
        return 0  # not JSON at all: validation says why


def validate_job(
    data: Job | Mapping[str, Any], *, source: str = "", max_bytes: int | None = None
) -> Job:
    """``data`` as a :class:`Job`, or :class:`InvalidJob` naming every bad field.

    The one check of the door, whichever way a job comes in (the producer API, ``order-dispatch
    enqueue``, the HTTP API): the contract, then what the job's vendor requires for its
    operation (:func:`order_dispatch.catalog.check`: required fields, length and value limits),
    each named with the field path and message the worker would give. A job larger than
    ``max_bytes`` (default: the ``max_job_bytes`` setting) is refused before it is parsed.
    """
    limit = max_bytes or get_settings().max_job_bytes
    size = job_size(data)
    if size > limit:
        raise InvalidJob(
            [
                f"(document): is {size:,} bytes as JSON; at most {limit:,} "
                "(setting ORDER_DISPATCH_MAX_JOB_BYTES)"
            ],
            order_id=_order_id_of(data),
            source=source,
        )
    if isinstance(data, Job):
        job = data
    else:
        try:
            job = Job.model_validate(data)
        except ValidationError as exc:
            raise InvalidJob(
                format_validation_errors(exc), order_id=_order_id_of(data), source=source
            ) from None
    if job.vendor == WEBHOOKS:
        raise InvalidJob(
            ["vendor: 'webhooks' deliveries are made by the workers from result events"],
            order_id=job.ref,
            source=source,
        )
    problems = [str(p) for p in catalog.check(job)]
    if job.order is not None:
        # Money the vendor has no field for is refused here, not dropped by the translator.
        problems += [f"{path}: {reason}" for path, reason in money.uncarried(job.vendor, job.order)]
    if problems:
        raise InvalidJob(problems, order_id=job.ref, source=source)
    return job


@dataclass(frozen=True, slots=True)
class _Prepared:
    job: Job
    doc: str
    """The job as stored: JSON, without unset fields."""
    receipt: Receipt


class Producer:
    """Enqueues jobs into the workers' Redis. Thread-safe; reuse one per process.

    With a broker other than Redis (``broker_url``, default ``ORDER_DISPATCH_BROKER_URL``:
    RabbitMQ) the jobs and receipts stay in Redis and the task messages (ids only) go to the
    broker: the job is recorded first, marked unpublished, then its message is published
    (confirmed) and the mark cleared. A producer that dies in between leaves the mark, and
    enqueueing the job again publishes it; the workers' ledger runs it once.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        key_prefix: str | None = None,
        receipt_ttl_s: int | None = None,
        broker_url: str | None = None,
    ) -> None:
        settings = get_settings()
        self.client = client
        self.keys = Keys(key_prefix or settings.key_prefix)
        self.receipt_ttl_s = receipt_ttl_s or settings.receipt_ttl_s
        self.store = JobStore(
            client,
            self.keys,
            ttl_s=self.receipt_ttl_s,
            results_maxlen=settings.results_maxlen,
            retention_s=settings.job_retention_s,
            results_max_age_s=settings.results_max_age_s,
        )
        url = broker_url or settings.broker_url
        self._publisher: BrokerPublisher | None = None
        if url and not url.startswith(("redis://", "rediss://", "unix://")):
            from producers.broker import BrokerPublisher

            self._publisher = BrokerPublisher(url)

    @classmethod
    def from_url(cls, url: str | None = None, **kwargs: Any) -> Producer:
        """A producer on ``url`` (default: the configured ``REDIS_URL``)."""
        from order_dispatch.redis_client import redis_client

        return cls(redis_client(url=url), **kwargs)

    def _prepare(self, job: Job) -> _Prepared:
        job = job.stamped()
        assert job.enqueued_at is not None
        receipt = Receipt(
            job_id=job.job_id,
            task_id=str(uuid.uuid4()),
            vendor=job.vendor,
            account=job.account,
            operation=job.operation.value,
            order_id=job.ref,
            queue=self.keys.queue(job.vendor),
            enqueued_at=job.enqueued_at,
        )
        return _Prepared(job, job.model_dump_json(exclude_none=True), receipt)

    def _new_job(self, item: _Prepared, *, push: bool) -> NewJob:
        """What the store records for ``item`` (with its message when ``push``)."""
        receipt = item.receipt
        if not push:
            return NewJob(
                receipt.job_id,
                item.doc,
                receipt.model_dump_json(),
                receipt.task_id,
                not_before=item.job.not_before,
            )
        message = task_message(
            receipt.task_id,
            dispatch_kwargs(receipt.job_id, run=1, attempt=1),
            queue=receipt.queue,
            priority=item.job.priority,
            display=_display(receipt),
        )
        return NewJob(
            receipt.job_id,
            item.doc,
            receipt.model_dump_json(),
            receipt.task_id,
            queue_key(receipt.queue, item.job.priority),
            message,
            item.job.not_before,
        )

    def prepare(self, job: Job, *, push: bool) -> tuple[_Prepared, NewJob]:
        """``job`` (validated) stamped and given its receipt, and what the store records for it
        (with its task message when ``push``): for callers that run the store's enqueue script
        on a client of their own (the HTTP API's asyncio client)."""
        item = self._prepare(job)
        return item, self._new_job(item, push=push)

    @property
    def queues_in_redis(self) -> bool:
        """True when the task message goes on a Redis list in the same script as the job (no
        other broker to publish to)."""
        return self._publisher is None

    def receipt_of(self, item: _Prepared, reply: Enqueued) -> Receipt:
        """The receipt the store's ``reply`` means for ``item``: its own when new, the first
        one (marked duplicate) when the job id was queued before."""
        return item.receipt if reply.created else self._receipt(reply)

    def close(self) -> None:
        """Close the broker connection, if the broker is not Redis (the Redis client is the
        caller's to close)."""
        if self._publisher is not None:
            self._publisher.close()

    @staticmethod
    def _receipt(reply: Enqueued) -> Receipt:
        receipt = Receipt.model_validate_json(reply.receipt)
        return receipt if reply.created else receipt.model_copy(update={"duplicate": True})

    def enqueue(self, job: Job | Mapping[str, Any]) -> Receipt:
        """Validate and queue one job; a job id seen before returns its first receipt."""
        return self._enqueue([self._prepare(validate_job(job))])[0]

    def enqueue_deliveries(self, jobs: Iterable[Job]) -> list[Receipt]:
        """Queue webhook deliveries (made by the workers' fan-out, already valid) in one
        round trip; a delivery already queued keeps its first receipt."""
        items = [self._prepare(job) for job in jobs]
        return self._enqueue(items) if items else []

    def enqueue_many(self, jobs: Iterable[Job | Mapping[str, Any]]) -> list[Receipt]:
        """Validate every job, then queue them all in one pipelined round trip.

        Validation comes first: if any job is invalid, :class:`InvalidJob` is raised for the
        first bad one and nothing is queued. Duplicates within the batch or of earlier jobs get
        the first receipt.
        """
        validated = [validate_job(job, source=f"job {n}") for n, job in enumerate(jobs)]
        return self._enqueue([self._prepare(job) for job in validated]) if validated else []

    def _enqueue(self, items: list[_Prepared]) -> list[Receipt]:
        push = self._publisher is None
        replies = self.store.enqueue([self._new_job(item, push=push) for item in items])
        # With replicas asked for (Sentinel), a receipt counts once a replica holds it: a
        # failover right after it cannot lose the job. Failing here, enqueueing again is safe.
        wait_for_replicas(self.client)
        if self._publisher is not None:
            self._publish_unpublished(items, replies, self._publisher)
        # A new job's receipt is the one just written; a duplicate's is read back.
        return [
            item.receipt if reply.created else self._receipt(reply)
            for item, reply in zip(items, replies, strict=True)
        ]

    def _publish_unpublished(
        self, items: list[_Prepared], replies: list[Enqueued], publisher: BrokerPublisher
    ) -> None:
        """Publish every recorded job whose message is not confirmed yet, then clear its mark."""
        done: set[str] = set()
        for item, reply in zip(items, replies, strict=True):
            receipt = self._receipt(reply)
            if reply.published or receipt.job_id in done:
                continue
            publisher.publish(
                receipt.task_id,
                dispatch_kwargs(receipt.job_id, run=1, attempt=1),
                queue=receipt.queue,
                priority=item.job.priority,
                display=_display(receipt),
            )
            self.store.mark_published(receipt.job_id)
            done.add(receipt.job_id)


def _display(receipt: Receipt) -> dict[str, str]:
    """What Flower and ``celery inspect`` show of a job: ids, never the order."""
    return {
        "job_id": receipt.job_id,
        "vendor": receipt.vendor,
        "operation": receipt.operation,
        "order_id": receipt.order_id,
    }


_default: Producer | None = None


def _producer() -> Producer:
    global _default
    if _default is None:
        _default = Producer.from_url()
    return _default


def enqueue(job: Job | Mapping[str, Any]) -> Receipt:
    """Queue one job on the configured Redis (see :meth:`Producer.enqueue`)."""
    return _producer().enqueue(job)


def enqueue_many(jobs: Iterable[Job | Mapping[str, Any]]) -> list[Receipt]:
    """Queue many jobs in one round trip (see :meth:`Producer.enqueue_many`)."""
    return _producer().enqueue_many(jobs)
