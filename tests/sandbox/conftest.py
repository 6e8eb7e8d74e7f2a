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


@pytest.fixture(scope="session")
def session_client(sandbox_server: BackgroundSandbox) -> Iterator[httpx.Client]:
    """One HTTP client for the session (a new client per test costs tens of ms)."""
    with httpx.Client(base_url=sandbox_server.url, timeout=10) as c:
        yield c


@pytest.fixture
def sandbox(
    sandbox_server: BackgroundSandbox, session_client: httpx.Client
) -> Iterator[BackgroundSandbox]:
    """The running sandbox with every vendor's orders, tokens and faults cleared."""
    session_client.post("/_sandbox/reset").raise_for_status()
    yield sandbox_server
    session_client.post("/_sandbox/reset").raise_for_status()


@pytest.fixture
def client(sandbox: BackgroundSandbox, session_client: httpx.Client) -> httpx.Client:
    """A plain HTTP client on the sandbox's base URL."""
    return session_client
