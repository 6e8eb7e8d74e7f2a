"""The operator console under test: served by a real ``order-dispatch api`` process on the
test's Redis and key prefix; and a headless Chromium from Debian's packages to drive it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis

from order_dispatch.keys import Keys as RedisKeys
from order_dispatch_api.keystore import KeyStore, parse_scopes
from tests.integration import debian
from tests.integration.api.conftest import ApiProcess, api_env

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


class ApiKeys:
    """API keys made with the API's own key store (as ``order-dispatch api-keys create``)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.store = KeyStore(client, RedisKeys(prefix))

    def add(self, name: str, *scopes: str) -> str:
        key, _record = self.store.create(name, parse_scopes(scopes), rate_per_minute=6000)
        return key


@contextmanager
def console_server(redis_url: str, prefix: str) -> Iterator[ApiProcess]:
    """A real ``order-dispatch api`` process (the console included) on a free port of
    127.0.0.1, on ``redis_url`` and key ``prefix``."""
    proc = ApiProcess(api_env(redis_url, prefix))
    try:
        yield proc
    finally:
        proc.close()


def ensure_chromium() -> str:
    """Debian's chromium, installed with apt-get when missing (:mod:`tests.integration.debian`)."""
    return debian.ensure(CHROMIUM, "chromium")


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
