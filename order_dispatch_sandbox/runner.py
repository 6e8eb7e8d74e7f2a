"""Run the sandbox in a background thread of the current process (demo and tests)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterable

from aiohttp import web

from order_dispatch.eventloop import new_event_loop
from order_dispatch_sandbox.app import SIMULATORS, build_app
from order_dispatch_sandbox.base import VendorSimulator


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BackgroundSandbox:
    """The sandbox server on 127.0.0.1, served from a daemon thread with its own event loop."""

    def __init__(
        self, port: int | None = None, simulators: Iterable[VendorSimulator] | None = None
    ) -> None:
        self.port = port or free_port()
        self.app = build_app(simulators)
        self._loop = new_event_loop()
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="sandbox")

    @property
    def url(self) -> str:
        """Base URL of the server (``http://127.0.0.1:PORT``)."""
        return f"http://127.0.0.1:{self.port}"

    def simulator(self, vendor: str) -> VendorSimulator:
        """The simulator serving ``vendor`` (KeyError when it serves none of that name)."""
        return self.app[SIMULATORS][vendor]

    def vendor_url(self, vendor: str) -> str:
        """A vendor's base URL as the product's account settings want it."""
        return f"{self.url}/{vendor}"

    def start(self) -> BackgroundSandbox:
        """Start serving; returns once the port is listening."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        """Stop serving and end the thread."""
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()

    def __enter__(self) -> BackgroundSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
