"""Everything the product and its broker write to Redis sits under the configured prefix,
except kombu's own keys, which the README lists."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest
import redis

from order_dispatch.keys import Keys
from order_dispatch_cli.embedded_redis import EmbeddedRedis
from producers.enqueue import Producer
from tests.integration.conftest import ROOT, Events, WorkerProcess, order_job, unique

pytestmark = pytest.mark.integration

#: kombu's Redis transport: queue bindings, unacked messages and their restore lock, and the
#: reply lists of `celery inspect`; README, "Keys and names".
KOMBU_KEYS = (
    "_kombu.binding.*",
    "_kombu.binding_deadlines",
    "_kombu.binding_permanent.*",
    "unacked",
    "unacked_index",
    "unacked_mutex",
    "*.reply.celery.pidbox",
)


def test_every_key_is_under_the_prefix_or_one_of_kombus(
    worker_env_factory: Callable[..., dict[str, str]], sandbox_admin: httpx.Client
) -> None:
    prefix = unique("odk")
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)
        env = {**worker_env_factory(prefix), "ORDER_DISPATCH_REDIS_URL": server.url}
        seen: set[str] = set()

        def look() -> None:
            seen.update(k.decode() if isinstance(k, bytes) else k for k in client.keys("*"))

        worker = WorkerProcess(env, concurrency=4)
        try:
            # A retry (Celery's own message, held unacked while it waits) and plain jobs.
            sandbox_admin.post(
                "/_sandbox/faults/sourceorders",
                json={"fail_next": 1, "status": 503, "latency": {"ms": 300}},
            ).raise_for_status()
            receipts = Producer(client, key_prefix=prefix).enqueue_many(
                [order_job(unique("k")) for _ in range(4)]
            )
            deadline = time.monotonic() + 30
            events = Events(client, Keys(prefix))
            while len(events.wait_terminal([r.job_id for r in receipts], timeout=0.1)) < 4:
                look()
                assert time.monotonic() < deadline
            subprocess.run(
                [sys.executable, "-m", "celery", "-A", "worker.app", "inspect", "ping"],
                env=env, cwd=ROOT, capture_output=True, timeout=60, check=True,
            )  # fmt: skip
            look()
        finally:
            worker.close()
        look()
        client.close()

    outside = {
        k
        for k in seen
        if not k.startswith((f"{prefix}:", f"{prefix}."))
        and not any(fnmatch.fnmatchcase(k, pattern) for pattern in KOMBU_KEYS)
    }
    assert outside == set()
    assert any(k.startswith(f"{prefix}:") for k in seen)
    readme = (ROOT / "README.md").read_text()
    assert all(
        f"`{pattern.replace('*', '<queue>', 1)}`" in readme or f"`{pattern}`" in readme
        for pattern in KOMBU_KEYS
    )
