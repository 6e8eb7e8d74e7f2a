"""Enqueueing from the event loop: :class:`producers.enqueue.Producer`'s own validation, job
ids, receipts and Lua script, run on the API's asyncio Redis client.

With the queues in Redis, a job is validated on the loop and recorded in one awaited script
call (no worker thread). With another broker (RabbitMQ) the producer's blocking path runs in a
worker thread: it records, publishes with confirms, then clears the mark.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio
from starlette.concurrency import run_in_threadpool

from order_dispatch.contract import Job
from producers.enqueue import ENQUEUE_LUA, Producer, Receipt, validate_job


class AsyncProducer:
    """``enqueue`` and ``enqueue_many`` for asyncio, sharing :class:`Producer`'s code."""

    def __init__(self, producer: Producer, client: redis.asyncio.Redis) -> None:
        self.producer = producer
        self.client = client
        self._script = client.register_script(ENQUEUE_LUA)

    async def enqueue(self, data: Job | Mapping[str, Any]) -> Receipt:
        """Validate and queue one job (:class:`~producers.enqueue.InvalidJob` when invalid)."""
        if not self.producer.queues_in_redis:
            return await run_in_threadpool(self.producer.enqueue, data)
        item = self.producer.prepare(validate_job(data))
        keys, args = self.producer.record_call(item, push=True)
        reply = await self._script(keys=keys, args=args)
        return self.producer.receipt_of(item, reply)

    async def enqueue_many(self, jobs: Sequence[Job]) -> list[Receipt]:
        """Queue validated ``jobs`` in one round trip (all are recorded, or the call fails)."""
        if not self.producer.queues_in_redis:
            return await run_in_threadpool(self.producer.enqueue_many, jobs)
        items = [self.producer.prepare(job) for job in jobs]
        pipe = self.client.pipeline(transaction=False)
        for item in items:
            keys, args = self.producer.record_call(item, push=True)
            await self._script(keys=keys, args=args, client=pipe)
        replies = await pipe.execute()
        return [
            self.producer.receipt_of(item, reply)
            for item, reply in zip(items, replies, strict=True)
        ]
