"""Starting the API (exit 78 for a configuration it refuses, 3 without Redis) and Redis going
away under it (503 with Retry-After, nothing written)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis

from order_dispatch.keys import Keys
from order_dispatch_api.keystore import KeyStore, Scope
from order_dispatch_cli.embedded_redis import EmbeddedRedis
from order_dispatch_sandbox.runner import free_port
from tests.integration.api.conftest import ApiProcess, api_env, bearer
from tests.integration.conftest import order_job

pytestmark = pytest.mark.integration


def test_a_non_loopback_address_without_any_key_is_refused_with_78(
    redis_url: str,
) -> None:
    proc = ApiProcess(api_env(redis_url, "odapi-nokeys"), "--host", "0.0.0.0", wait=False)
    try:
        assert proc.wait() == 78
        assert "no API key" in proc.output()
    finally:
        proc.close()


def test_bad_settings_are_refused_with_78(redis_url: str) -> None:
    env = api_env(redis_url, "odapi-bad", ORDER_DISPATCH_API__MAX_BATCH_JOBS="0")
    proc = ApiProcess(env, wait=False)
    try:
        assert proc.wait() == 78
        assert "ORDER_DISPATCH_API__MAX_BATCH_JOBS" in proc.output()
    finally:
        proc.close()


def test_no_redis_is_exit_3() -> None:
    proc = ApiProcess(api_env(f"redis://127.0.0.1:{free_port()}/0", "odapi-x"), wait=False)
    try:
        assert proc.wait() == 3
        assert "cannot reach Redis" in proc.output()
    finally:
        proc.close()


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(appendonly=True).start()
    yield server
    server.cleanup()


def test_redis_down_is_503_with_retry_after_and_nothing_is_written(
    own_redis: EmbeddedRedis,
) -> None:
    prefix = "odapi-down"
    client = redis.Redis.from_url(own_redis.url)
    key, _ = KeyStore(client, Keys(prefix)).create("t", {Scope.ENQUEUE, Scope.READ}, 60_000)
    client.close()
    api = ApiProcess(api_env(own_redis.url, prefix))
    try:
        body = order_job("DOWN-1")
        own_redis.stop()

        answer = httpx.post(api.url + "/v1/jobs", json=body, headers=bearer(key), timeout=20)
        batch = httpx.post(
            api.url + "/v1/jobs/batch", json={"jobs": [body]}, headers=bearer(key), timeout=20
        )
        ready = httpx.get(api.url + "/readyz", timeout=20)

        assert answer.status_code == 503
        assert answer.headers["content-type"] == "application/problem+json"
        assert int(answer.headers["retry-after"]) >= 1
        assert batch.status_code == 503
        assert ready.status_code == 503
        own_redis.start()  # the same data directory: what was written before is back
        client = redis.Redis.from_url(own_redis.url)
        assert client.keys(f"{prefix}:job:*") == []
        assert client.llen(Keys(prefix).queue("sourceorders")) == 0
        client.close()
        again = httpx.post(api.url + "/v1/jobs", json=body, headers=bearer(key), timeout=20)
        assert again.status_code == 201  # and it recovers without a restart
    finally:
        api.close()


def test_a_slow_client_is_cut_off_at_the_request_time_bound(redis_url: str) -> None:
    import socket
    import time

    prefix = "odapi-slow"
    client = redis.Redis.from_url(redis_url)
    key, _ = KeyStore(client, Keys(prefix)).create("t", {Scope.ENQUEUE}, 60_000)
    client.close()
    api = ApiProcess(api_env(redis_url, prefix, ORDER_DISPATCH_API__REQUEST_TIMEOUT_S="1"))
    try:
        with socket.create_connection(("127.0.0.1", api.port), timeout=10) as sock:
            started = time.monotonic()
            sock.sendall(
                b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Authorization: Bearer {key}\r\nContent-Length: 1000\r\n\r\n".encode()
                + b'{"vendor": '  # and nothing more
            )
            reply = sock.recv(4096)
            waited = time.monotonic() - started
            while b"}" not in reply and (more := sock.recv(4096)):
                reply += more
        healthy = httpx.get(api.url + "/healthz")
    finally:
        api.close()

    assert reply.startswith(b"HTTP/1.1 503"), reply[:200]
    assert b"longer than 1 s" in reply
    assert 0.9 <= waited < 5
    assert healthy.status_code == 200
