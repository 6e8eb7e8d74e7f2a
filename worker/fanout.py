"""The webhook fan-out: every result event, to every endpoint subscribed to it, as a delivery job.

Each worker process runs one :class:`Fanout` thread, a consumer in the group ``webhooks`` on the
results stream (:class:`order_dispatch.results.ResultConsumer`). For a batch of events it
queues one delivery job per (event, subscribed endpoint) in one round trip, then acknowledges
the batch. Nothing is lost between the two steps: a process that dies after reading leaves its
entries pending in the group, and another process claims them once they have been idle for
``min_idle_ms`` (looking every :data:`CLAIM_EVERY_S`) and queues them again. Queueing again is
harmless: a delivery's job id is stable per (endpoint, event), so the job store keeps the first
one and queues no second message.

The group is made when the first endpoint is added, at the stream's end; until then the thread
only looks, once a second, whether an endpoint exists. The fan-out's lag is the group's, which
``order-dispatch metrics`` and ``health`` already report for every group on the stream.
"""

from __future__ import annotations

import threading
import time

import redis

from order_dispatch.keys import Keys
from order_dispatch.logs import get_logger
from order_dispatch.results import ResultConsumer
from order_dispatch.webhooks import FANOUT_GROUP, Endpoint, EndpointBook, delivery_job
from producers.enqueue import Producer

log = get_logger("worker.fanout")

#: How long an endpoint list read from Redis is used.
ENDPOINTS_CACHE_S = 1.0
#: After a batch shorter than a full one, how long the fan-out lets events gather before its
#: next read: each read costs the same few round trips however few events it brings, and under
#: load a read that returns at the first event brings one or two.
LINGER_S = 0.05
#: How often the fan-out looks for a dead process's batches (``XAUTOCLAIM``), at most: not on
#: every batch, which would cost a round trip per batch for what happens once in a while.
CLAIM_EVERY_S = 5.0


class Fanout:
    """A daemon thread turning result events into webhook deliveries (see the module docstring)."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        consumer: str,
        *,
        batch: int = 200,
        min_idle_ms: int = 30_000,
        block_ms: int = 1000,
        linger_s: float = LINGER_S,
    ) -> None:
        self.client = client
        self.linger_s = linger_s
        self.keys = keys
        self.book = EndpointBook(client, keys)
        self.producer = Producer(client, key_prefix=keys.prefix)
        self.consumer = ResultConsumer(
            client,
            FANOUT_GROUP,
            consumer,
            keys=keys,
            min_idle_ms=min_idle_ms,
            count=batch,
            block_ms=block_ms,
            claim_every_s=min(min_idle_ms / 1000, CLAIM_EVERY_S),
        )
        self._endpoints: tuple[float, list[Endpoint]] = (0.0, [])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="od-webhook-fanout", daemon=True)
        self.queued = 0
        self.last_read = 0
        """How many entries the last batch held."""

    def start(self) -> Fanout:
        """Start the thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread (after its current batch)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def endpoints(self) -> list[Endpoint]:
        """The endpoints, read at most once per :data:`ENDPOINTS_CACHE_S` (to know whether
        there is anything to do; a batch reads them afresh)."""
        at, endpoints = self._endpoints
        if time.monotonic() - at >= ENDPOINTS_CACHE_S:
            endpoints = self.book.all()
            self._endpoints = (time.monotonic(), endpoints)
        return endpoints

    def step(self) -> int:
        """Read one batch, queue its deliveries, acknowledge it: how many deliveries it
        queued (entries with no subscriber are acknowledged too)."""
        if not self.endpoints():
            self.last_read = 0
            self._stop.wait(ENDPOINTS_CACHE_S)
            return 0
        batch = self.consumer.read()
        self.last_read = len(batch)
        if not batch:
            return 0
        # Read after the batch: an endpoint added before an event was written is always seen.
        endpoints = self.book.all()
        self._endpoints = (time.monotonic(), endpoints)
        jobs = [
            delivery_job(endpoint.id, entry.event)
            for entry in batch
            if entry.event is not None
            for endpoint in endpoints
            if endpoint.wants(entry.event)
        ]
        self.producer.enqueue_deliveries(jobs)
        self.consumer.ack(*(entry.entry_id for entry in batch))
        self.queued += len(jobs)
        return len(jobs)

    def _loop(self) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                self.step()
                if 0 < self.last_read < self.consumer.count:
                    self._stop.wait(self.linger_s)
                if failing:
                    log.info("webhook fan-out running again")
                failing = False
            except redis.RedisError as exc:
                # The batch stays pending in the group: re-read at the next turn.
                self.consumer._own_backlog = True
                if not failing:
                    log.warning("webhook fan-out cannot reach Redis", error=str(exc))
                failing = True
                self._stop.wait(1.0)
            except Exception:
                self.consumer._own_backlog = True
                log.exception("webhook fan-out failed; its batch stays pending")
                self._stop.wait(1.0)
