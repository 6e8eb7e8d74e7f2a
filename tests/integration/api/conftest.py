"""A real ``order-dispatch api`` process on a free port, and keys for it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from order_dispatch.keys import Keys
from order_dispatch_api.keystore import KeyStore, Scope
from order_dispatch_sandbox.runner import free_port

ROOT = Path(__file__).resolve().parents[3]


class ApiProcess:
    """``order-dispatch api`` in a subprocess, with its own log file."""

    def __init__(self, env: dict[str, str], *args: str, wait: bool = True) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile("w+", prefix="od-test-api-", suffix=".log")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "order_dispatch_cli", "api", "--port", str(self.port), *args],
            env=env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        if wait:
            try:
                self._wait_ready()
            except BaseException:
                self.close()
                raise

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"api exited {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"api not ready after {timeout} s:\n{self.output()}")

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def api_env(redis_url: str, prefix: str, **settings: str) -> dict[str, str]:
    """The API's environment: this Redis and key prefix, nothing of the caller's settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ORDER_DISPATCH_") and k != "REDIS_URL"
    }
    env.update({"ORDER_DISPATCH_REDIS_URL": redis_url, "ORDER_DISPATCH_KEY_PREFIX": prefix})
    env.update(settings)
    return env


@pytest.fixture(scope="module")
def api_prefix() -> str:
    import uuid

    return f"odapi-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def api(redis_url: str, api_prefix: str) -> Iterator[ApiProcess]:
    proc = ApiProcess(api_env(redis_url, api_prefix))
    yield proc
    proc.close()


@pytest.fixture(scope="module")
def make_key(redis_url: str, api_prefix: str) -> Iterator[Callable[..., str]]:
    client = redis.Redis.from_url(redis_url)
    store = KeyStore(client, Keys(api_prefix))

    def make(*scopes: Scope, rate_per_minute: float = 600_000) -> str:
        token, _ = store.create("test", scopes or (Scope.ENQUEUE,), rate_per_minute)
        return token

    yield make
    client.close()


@pytest.fixture(scope="module")
def full_key(make_key: Callable[..., str]) -> str:
    return make_key(Scope.ENQUEUE, Scope.READ_ORDERS, Scope.OPERATE)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
