"""A worker process's runtime: its event loop, its vendor HTTP client, its pipeline.

Each worker process runs one asyncio event loop in a thread of its own, created when the process
starts and closed when it stops (Celery's worker signals, wired in :mod:`worker.app`). Every
vendor call of every task thread runs on that loop through one shared ``httpx.AsyncClient``;
a task thread hands its coroutine over with
:meth:`worker.loop.EventLoopThread.run` and waits for it.
"""

from __future__ import annotations

import gc
import os
import threading

import aiohttp
import httpx
import redis

from order_dispatch.keys import Keys
from order_dispatch.redis_client import redis_client
from order_dispatch.settings import Settings
from order_dispatch.webhooks import EndpointBook
from worker import fetch
from worker.fanout import Fanout
from worker.http import new_client, new_webhook_session
from worker.loop import EventLoopThread
from worker.pipeline import Pipeline
from worker.schedule import DurableSchedule, Scheduler
from worker.slots import Slots
from worker.vendors.sender import Sender


class Runtime:
    """What one worker process holds for its life: loop, HTTP client, Redis client, pipeline,
    and the scheduler thread that moves due retries from the durable schedule to their queues."""

    def __init__(self, settings: Settings, *, worker_name: str | None = None) -> None:
        self.settings = settings
        self.pid = os.getpid()
        self.slots = Slots(settings.worker_running_threads)
        self.io = EventLoopThread(slots=self.slots)
        self.http: httpx.AsyncClient = self.io.run(_make_client(settings))
        self.webhook_http: aiohttp.ClientSession = self.io.run(_make_webhook_session(settings))
        self.redis: redis.Redis = redis_client(settings)
        keys = Keys(settings.key_prefix)
        self.sender = Sender(
            self.http,
            settings,
            webhook_session=self.webhook_http,
            endpoints=EndpointBook(self.redis, keys),
        )
        # The ledger names an attempt's worker by the id whose heartbeat the sweep watches.
        self.pipeline = Pipeline(
            settings, self.redis, self.sender, self.io, worker_name or fetch.identity()
        )
        self.schedule = DurableSchedule(self.redis, keys)
        self.scheduler = Scheduler(self.schedule).start()
        self.fanout = Fanout(
            self.redis,
            keys,
            self.pipeline.worker_name,
            batch=settings.webhooks_fanout_batch,
        ).start()

    def close(self) -> None:
        """Stop the scheduler and the fan-out, close the HTTP clients on their loop, then the
        loop and Redis."""
        self.scheduler.stop()
        self.fanout.stop()
        try:
            self.io.run(self.webhook_http.close(), timeout=5)
            self.io.run(self.http.aclose(), timeout=5)
        finally:
            self.io.close()
            self.redis.close()


async def _make_client(settings: Settings) -> httpx.AsyncClient:
    # Created on the loop it will serve: aiohttp binds its session to the running loop.
    return new_client(settings.http)


async def _make_webhook_session(settings: Settings) -> aiohttp.ClientSession:
    return new_webhook_session(settings.http, allow_private=settings.webhooks_allow_private)


_lock = threading.Lock()
_runtime: Runtime | None = None

#: The cyclic garbage collector's thresholds in a worker process (Python's: 700, 10, 10).
#: A busy worker allocates fast, and each collection holds the GIL while it walks the heap: on
#: a burst at 1 s vendor latency, py-spy found Celery's consumer thread, which takes messages
#: off the queue, in the collector for half of its samples. Rarer collections, over a heap
#: whose start-up objects are frozen out of them, took 1,000 orders from 9.7 and 8.6 s to 7.1
#: and 6.5 s (README, Tuning) for about 8 MB more per process.
GC_THRESHOLDS = (50_000, 20, 100)


def start(settings: Settings) -> Runtime:
    """Create this process's runtime (idempotent; a forked child makes its own)."""
    global _runtime
    with _lock:
        if _runtime is None or _runtime.pid != os.getpid():
            _runtime = Runtime(settings)
            _collect_less()
        return _runtime


def _collect_less() -> None:
    """Leave what the process built to start (modules, Celery, the clients) out of every
    collection from now on, and collect less often (:data:`GC_THRESHOLDS`)."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def current(settings: Settings | None = None) -> Runtime:
    """This process's runtime, started on first use if a signal did not start it."""
    runtime = _runtime
    if runtime is None or runtime.pid != os.getpid():
        from order_dispatch.settings import get_settings

        runtime = start(settings or get_settings())
    return runtime


def stop() -> None:
    """Close this process's runtime, if any."""
    global _runtime
    with _lock:
        runtime, _runtime = _runtime, None
    if runtime is not None:
        runtime.close()
