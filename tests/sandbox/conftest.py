"""A sandbox server for the simulator tests: one per session, state reset around each test; a
server of its own for a simulator with other settings; helpers every vendor's tests share."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from order_dispatch_sandbox.base import VendorSimulator
from order_dispatch_sandbox.runner import BackgroundSandbox

#: Starts a sandbox serving only the given simulator; answers a client on it.
Serve = Callable[[VendorSimulator], httpx.Client]

class _Delete:
    def __repr__(self) -> str:
        return "DELETE"


#: The value that makes :func:`changed` delete the member.
DELETE: Any = _Delete()


def changed(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``body`` with the member at the dotted ``path`` (``items.1.quantity``,
    numbers index lists) set to ``value``, or deleted when ``value`` is :data:`DELETE`."""
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    node: Any = body
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value
    return body


def vendor_orders(client: httpx.Client, vendor: str) -> dict[str, Any]:
    """What the simulated ``vendor`` holds and was asked, from the admin API."""
    answer = client.get("/_sandbox/orders", params={"vendor": vendor})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert body["count"] == len(body["orders"])
    return body


def set_faults(client: httpx.Client, vendor: str, **spec: Any) -> httpx.Response:
    """Set ``vendor``'s faults through the admin API."""
    answer = client.post(f"/_sandbox/faults/{vendor}", json=spec)
    answer.raise_for_status()
    return answer


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


@pytest.fixture
def local() -> Iterator[Serve]:
    """Start a sandbox of its own serving one simulator, built with settings of the test's
    choosing (``local(SophioSimulator(rate_limit_per_minute=2))``); a client on it. Servers and
    clients stop after the test."""
    with ExitStack() as started:

        def serve(simulator: VendorSimulator) -> httpx.Client:
            server = started.enter_context(BackgroundSandbox(simulators=[simulator]))
            return started.enter_context(httpx.Client(base_url=server.url, timeout=10))

        yield serve
