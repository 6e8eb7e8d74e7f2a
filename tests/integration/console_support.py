"""The operator console under test: served over real HTTP by uvicorn on a free port, on the
test's Redis and key prefix; and a headless Chromium from Debian's packages to drive it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
import uvicorn
from fastapi import FastAPI

from order_dispatch_api.console import ConsoleConfig, Principal, console_router
from worker.vendors import known_vendors

CHROMIUM = "/usr/bin/chromium"
#: How the tests launch Chromium: headless, no sandbox (root in a container), nothing that
#: reaches the network on its own.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Keys:
    """API keys for the tests: key -> its owner.

    Stands in for the API's key store until the console is served by the API's own app
    (``order_dispatch_api.app``), whose key store and authenticator it then uses.
    """

    def __init__(self) -> None:
        self.keys: dict[str, Principal] = {}

    def add(self, name: str, *scopes: str) -> str:
        key = f"odk_test_{name}_{os.urandom(8).hex()}"
        self.keys[key] = Principal(name, frozenset(scopes))
        return key

    async def check(self, key: str) -> Principal | None:
        return self.keys.get(key)

    def exist(self) -> bool:
        return bool(self.keys)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def console_server(client: redis.Redis, prefix: str, keys: Keys) -> Iterator[str]:
    """The console on ``http://127.0.0.1:<port>``, served by uvicorn in a thread."""
    app = FastAPI()
    config = ConsoleConfig(
        client=client,
        prefix=prefix,
        vendors=known_vendors(),
        accounts={},
        check_key=keys.check,
        keys_exist=keys.exist,
        refresh_s=5,
    )
    app.include_router(console_router(config))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the console server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def ensure_chromium() -> str:
    """Debian's chromium, installed with apt-get when missing; the test is skipped (saying why)
    where it cannot be."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip(f"no {CHROMIUM}, and apt-get cannot install it here (not root, or no apt)")
    for args in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        if done.returncode != 0:
            pytest.skip(f"could not install chromium ({' '.join(args)}): {done.stderr[-500:]}")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"apt-get installed chromium but {CHROMIUM} is not there")
    return CHROMIUM


@contextmanager
def browser() -> Iterator[Any]:
    """A headless Chromium driven by Playwright (skips when Playwright is not installed)."""
    playwright_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright for Python is not installed (pip install .[dev])"
    )
    executable = ensure_chromium()
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
