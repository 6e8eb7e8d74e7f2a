"""How many of a worker process's task threads run Python at once.

A task thread spends most of a slow vendor's call waiting on the event loop; it holds no CPU
then, but with hundreds of threads in flight the ones that are runnable (starting a job,
recording one) all fight for the GIL at once, and Celery's consumer thread, which takes the
next message off the queue, waits behind them. A thread therefore holds one of a few *slots*
while it runs Python (:meth:`Slots.held`) and gives it up while it waits for the vendor
(:meth:`Slots.given_up`): many orders in flight, few threads runnable.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Slots:
    """At most ``size`` threads inside :meth:`held` at once, less those inside
    :meth:`given_up`; ``size`` 0: no limit."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._free = threading.Semaphore(size) if size else None
        self._mine = threading.local()

    @contextmanager
    def held(self) -> Iterator[None]:
        """Run the block holding a slot (waiting for one first)."""
        if self._free is None or getattr(self._mine, "held", False):
            yield
            return
        self._free.acquire()
        self._mine.held = True
        try:
            yield
        finally:
            self._mine.held = False
            self._free.release()

    @contextmanager
    def given_up(self) -> Iterator[None]:
        """Run the block (a wait) without this thread's slot, if it holds one."""
        if self._free is None or not getattr(self._mine, "held", False):
            yield
            return
        self._mine.held = False
        self._free.release()
        try:
            yield
        finally:
            self._free.acquire()
            self._mine.held = True
