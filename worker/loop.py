"""An asyncio event loop served by a thread of its own, for coroutines submitted from others.

Each worker process runs one (:mod:`worker.runtime`): every vendor call of every task thread
runs on it through one shared ``httpx.AsyncClient``, on uvloop where it is installed
(:mod:`order_dispatch.eventloop`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from order_dispatch.eventloop import new_event_loop
from worker.slots import Slots

T = TypeVar("T")


class EventLoopThread:
    """An asyncio event loop served by a daemon thread; coroutines are submitted from others."""

    def __init__(
        self,
        name: str = "vendor-io",
        slots: Slots | None = None,
        new_loop: Callable[[], asyncio.AbstractEventLoop] = new_event_loop,
    ) -> None:
        self.slots = slots or Slots(0)
        self.loop = new_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result (from any other thread), giving up
        the caller's slot (:mod:`worker.slots`) while it waits."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        with self.slots.given_up():
            return future.result(timeout)

    def close(self) -> None:
        """Cancel what still runs, stop the loop and end its thread."""
        if not self._thread.is_alive():
            return

        async def _cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.run(_cancel_all(), timeout=5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            if not self._thread.is_alive():
                self.loop.close()
