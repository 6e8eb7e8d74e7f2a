"""``enqueue`` and ``enqueue_many``: validated, de-duplicated, atomic enqueueing of jobs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import redis
from pydantic import BaseModel, ConfigDict, ValidationError

from order_dispatch.contract import Job, format_validation_errors
from order_dispatch.keys import Keys
from order_dispatch.settings import get_settings
from producers.message import dispatch_kwargs, queue_key, task_message

# Atomically: if the job id is known, return its first receipt; else record job, receipt and
# run 1, and push the task message (which carries ids only). KEYS: job hash, queue list.
# ARGV: receipt, job, message, ttl seconds, run id.
_ENQUEUE_LUA = """
local first = redis.call('HGET', KEYS[1], 'receipt')
if first then return {0, first} end
redis.call('HSET', KEYS[1], 'receipt', ARGV[1], 'job', ARGV[2], 'run', 1, 'run_id', ARGV[5])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
redis.call('LPUSH', KEYS[2], ARGV[3])
return {1, ARGV[1]}
"""


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


def validate_job(data: Job | Mapping[str, Any], *, source: str = "") -> Job:
    """``data`` as a :class:`Job`, or :class:`InvalidJob` naming every bad field."""
    if isinstance(data, Job):
        return data
    try:
        return Job.model_validate(data)
    except ValidationError as exc:
        raise InvalidJob(
            format_validation_errors(exc), order_id=_order_id_of(data), source=source
        ) from None


class Producer:
    """Enqueues jobs into the workers' Redis. Thread-safe; reuse one per process."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        key_prefix: str | None = None,
        receipt_ttl_s: int | None = None,
    ) -> None:
        settings = get_settings()
        self.client = client
        self.keys = Keys(key_prefix or settings.key_prefix)
        self.receipt_ttl_s = receipt_ttl_s or settings.receipt_ttl_s
        self._script = client.register_script(_ENQUEUE_LUA)

    @classmethod
    def from_url(cls, url: str | None = None, **kwargs: Any) -> Producer:
        """A producer on ``url`` (default: the configured ``REDIS_URL``)."""
        return cls(redis.Redis.from_url(url or get_settings().redis_url), **kwargs)

    def _prepare(self, job: Job) -> tuple[list[str], list[str | int]]:
        job = job.stamped()
        assert job.enqueued_at is not None
        queue = self.keys.queue(job.vendor)
        receipt = Receipt(
            job_id=job.job_id,
            task_id=str(uuid.uuid4()),
            vendor=job.vendor,
            account=job.account,
            operation=job.operation.value,
            order_id=job.ref,
            queue=queue,
            enqueued_at=job.enqueued_at,
        )
        job_doc = job.model_dump(mode="json", exclude_none=True)
        message = task_message(
            receipt.task_id,
            dispatch_kwargs(job.job_id, run=1, attempt=1),
            queue=queue,
            priority=job.priority,
        )
        return (
            [self.keys.job(job.job_id), queue_key(queue, job.priority)],
            [
                receipt.model_dump_json(),
                json.dumps(job_doc),
                message,
                self.receipt_ttl_s,
                receipt.task_id,
            ],
        )

    @staticmethod
    def _receipt(reply: Sequence[Any]) -> Receipt:
        created, raw = int(reply[0]), reply[1]
        receipt = Receipt.model_validate_json(raw)
        return receipt if created else receipt.model_copy(update={"duplicate": True})

    def enqueue(self, job: Job | Mapping[str, Any]) -> Receipt:
        """Validate and queue one job; a job id seen before returns its first receipt."""
        keys, args = self._prepare(validate_job(job))
        return self._receipt(self._script(keys=keys, args=args))

    def enqueue_many(self, jobs: Iterable[Job | Mapping[str, Any]]) -> list[Receipt]:
        """Validate every job, then queue them all in one pipelined round trip.

        Validation comes first: if any job is invalid, :class:`InvalidJob` is raised for the
        first bad one and nothing is queued. Duplicates within the batch or of earlier jobs get
        the first receipt.
        """
        validated = [validate_job(job, source=f"job {n}") for n, job in enumerate(jobs)]
        if not validated:
            return []
        pipe = self.client.pipeline(transaction=False)
        for job in validated:
            keys, args = self._prepare(job)
            self._script(keys=keys, args=args, client=pipe)
        return [self._receipt(reply) for reply in pipe.execute()]


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
