"""Enqueueing from the event loop: :class:`producers.enqueue.Producer`'s validation, job ids
and receipts, and the job store's own enqueue script, run on the API's asyncio Redis client.

With the queues in Redis a job is validated on the loop and recorded in one awaited script call
(no worker thread). With another broker (RabbitMQ) the producer's blocking path runs in a
worker thread: it records the job, publishes with confirms, then clears the mark.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import redis.asyncio
from starlette.concurrency import run_in_threadpool

from order_dispatch.contract import Job
from order_dispatch.store import JobStore, lua
from producers.enqueue import Producer, Receipt, validate_job


class AsyncProducer:
    """``enqueue`` and ``enqueue_many`` for asyncio, sharing :class:`Producer`'s code and the
    job store's script."""

    def __init__(self, producer: Producer, client: redis.asyncio.Redis) -> None:
        self.producer = producer
        self.store: JobStore = producer.store
        self.client = client
        self._script = client.register_script(lua.ENQUEUE)

    async def enqueue(self, data: Job | Mapping[str, Any]) -> Receipt:
        """Validate and queue one job (:class:`~producers.enqueue.InvalidJob` when invalid)."""
        if not self.producer.queues_in_redis:
            return await run_in_threadpool(self.producer.enqueue, data)
        return await self.enqueue_valid(validate_job(data), self._run_script)

    async def _run_script(self, keys: list[str], args: list[str | int]) -> Any:
        return await self._script(keys=keys, args=args)

    async def enqueue_valid(
        self, job: Job, run: Callable[[list[str], list[str | int]], Awaitable[Sequence[Any]]]
    ) -> Receipt:
        """Queue ``job`` (validated) through ``run``, which runs the job store's enqueue script
        with the keys and arguments given (or a script that includes it) and returns its
        reply. Only when the queues are in Redis."""
        item, new = self.producer.prepare(job, push=True)
        keys, args = self.store.enqueue_call(new)
        reply = await run(keys, args)
        return self.producer.receipt_of(item, self.store.enqueued(reply))

    async def enqueue_many(self, jobs: Sequence[Job]) -> list[Receipt]:
        """Queue validated ``jobs`` in one round trip."""
        if not self.producer.queues_in_redis:
            return await run_in_threadpool(self.producer.enqueue_many, jobs)
        prepared = [self.producer.prepare(job, push=True) for job in jobs]
        pipe = self.client.pipeline(transaction=False)
        for n, (_, new) in enumerate(prepared):
            keys, args = self.store.enqueue_call(new)
            if n == 0:  # through the script object: the pipeline then loads it if Redis lacks it
                await self._script(keys=keys, args=args, client=pipe)
            else:  # queued as such: spares redis-py's per-call type checks (~6% of a batch's CPU)
                pipe.evalsha(self._script.sha, len(keys), *keys, *args)
        replies = await pipe.execute()
        return [
            self.producer.receipt_of(item, self.store.enqueued(reply))
            for (item, _), reply in zip(prepared, replies, strict=True)
        ]
