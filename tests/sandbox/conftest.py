"""A sandbox server for the simulator tests: one per session, state reset around each test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sandbox.runner import BackgroundSandbox


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[BackgroundSandbox]:
    with BackgroundSandbox() as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: BackgroundSandbox) -> Iterator[BackgroundSandbox]:
    """The running sandbox with every vendor's orders, tokens and faults cleared."""
    httpx.post(f"{sandbox_server.url}/_sandbox/reset").raise_for_status()
    yield sandbox_server
    httpx.post(f"{sandbox_server.url}/_sandbox/reset").raise_for_status()


@pytest.fixture
def client(sandbox: BackgroundSandbox) -> Iterator[httpx.Client]:
    """A plain HTTP client on the sandbox's base URL."""
    with httpx.Client(base_url=sandbox.url, timeout=10) as c:
        yield c
