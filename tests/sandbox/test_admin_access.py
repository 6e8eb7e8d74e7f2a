"""The sandbox's admin API answers this host, or the admin token: ``order-dispatch sandbox``
listening on every interface, asked over loopback and over this machine's own address."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from order_dispatch_sandbox.runner import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "admin-token-for-tests"


def own_address() -> str | None:
    """This machine's address on its default route (no packet is sent), None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(s.getsockname()[0])
    return None if address.startswith("127.") else address


@pytest.fixture(scope="module")
def address() -> str:
    found = own_address()
    if found is None:
        pytest.skip("this machine has no address but loopback")
    return found


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    number = free_port()
    env = {**os.environ, "ORDER_DISPATCH_SANDBOX_ADMIN_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "order_dispatch_cli", "sandbox", "--host", "0.0.0.0", "--port",
         str(number)],
        env=env,
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{number}/_sandbox/health", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    yield number
    proc.terminate()
    proc.wait(10)


def test_this_host_may_use_the_admin_api(port: int) -> None:
    answer = httpx.get(f"http://127.0.0.1:{port}/_sandbox/faults")

    assert answer.status_code == 200 and "sourceorders" in answer.json()


def test_another_host_needs_the_token(address: str, port: int) -> None:
    base = f"http://{address}:{port}"

    refused = httpx.post(f"{base}/_sandbox/reset")
    wrong = httpx.get(f"{base}/_sandbox/orders?vendor=sophio", headers={"X-Sandbox-Token": "x"})
    allowed = httpx.post(f"{base}/_sandbox/reset", headers={"X-Sandbox-Token": TOKEN})
    health = httpx.get(f"{base}/_sandbox/health")
    vendor = httpx.get(f"{base}/sourceorders/v1/orders/nope")

    assert (refused.status_code, wrong.status_code) == (403, 403)
    assert refused.json() == {
        "error": "the sandbox admin API answers this host only, or requests with the "
        "X-Sandbox-Token header set to ORDER_DISPATCH_SANDBOX_ADMIN_TOKEN"
    }
    assert allowed.status_code == 200 and health.status_code == 200
    assert vendor.status_code != 403  # the simulators themselves answer everyone
