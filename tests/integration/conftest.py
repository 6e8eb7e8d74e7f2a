"""Integration fixtures: the sandbox, real Celery worker processes, result-event helpers."""

from __future__ import annotations

import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from click.testing import CliRunner, Result

from order_dispatch.contract import ResultEvent
from order_dispatch.keys import Keys
from order_dispatch.results import parse_entry
from order_dispatch.settings import get_settings
from order_dispatch_cli.demo import worker_command, worker_env
from order_dispatch_cli.main import main
from order_dispatch_sandbox.runner import BackgroundSandbox
from producers.enqueue import Producer
from worker.vendors import known_vendors

pytestmark = pytest.mark.integration

#: Settings that bring a killed worker's jobs back within seconds: a 6 s lease (4 s deadline +
#: 2 s), countdowns up to 2 s, a worker dead 5 s after its last heartbeat (and a 10 s
#: visibility timeout swept every second, for messages of kombu's own unacked hash).
FAST_RECOVERY = {
    "ORDER_DISPATCH_VISIBILITY_TIMEOUT_S": "10",
    "ORDER_DISPATCH_HTTP__CONNECT_TIMEOUT_S": "1",
    "ORDER_DISPATCH_HTTP__READ_TIMEOUT_S": "3",
    "ORDER_DISPATCH_HTTP__DEADLINE_S": "4",
    "ORDER_DISPATCH_LEASE_MARGIN_S": "2",
    "ORDER_DISPATCH_SCHEDULE_THRESHOLD_S": "2",
    "ORDER_DISPATCH_RESTORE_INTERVAL_S": "1",
    "ORDER_DISPATCH_RESTORE_THROTTLE": "1",
    # A killed worker's messages come back 5 s after its last heartbeat.
    "ORDER_DISPATCH_FETCH_HEARTBEAT_S": "1",
    "ORDER_DISPATCH_FETCH_DEAD_AFTER_S": "5",
}

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def sandbox() -> Iterator[BackgroundSandbox]:
    with BackgroundSandbox() as server:
        yield server


@pytest.fixture
def sandbox_admin(sandbox: BackgroundSandbox) -> Iterator[httpx.Client]:
    """An HTTP client on the sandbox, with every vendor reset before and after the test."""
    with httpx.Client(base_url=sandbox.url, timeout=10) as client:
        client.post("/_sandbox/reset").raise_for_status()
        yield client
        client.post("/_sandbox/reset").raise_for_status()


class WorkerProcess:
    """A real ``order-dispatch worker`` (Celery) subprocess with its own log file."""

    def __init__(
        self, env: dict[str, str], concurrency: int = 8, vendors: str | None = None
    ) -> None:
        # The log lives as long as the worker, closed in close().
        self.log = tempfile.NamedTemporaryFile("w+", prefix="od-test-worker-", suffix=".log")  # noqa: SIM115
        self.proc = subprocess.Popen(
            worker_command(vendors or ",".join(known_vendors()), concurrency),
            env=env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.close()  # no process or log file left behind for a worker that did not start
            raise

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready." in self.output():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited {self.proc.returncode}:\n{self.output()}")
            time.sleep(0.1)
        raise RuntimeError(f"worker not ready after {timeout} s:\n{self.output()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def close(self) -> None:
        self.stop()
        self.log.close()


#: FAST_RECOVERY with vendor hints capped at 2 s, for tests that restart workers or Redis.
QUICK_RECOVERY = {**FAST_RECOVERY, "ORDER_DISPATCH_RETRY__RETRY_AFTER_CAP_S": "2"}


@pytest.fixture(scope="session")
def worker_env_factory(redis_url: str, sandbox: BackgroundSandbox) -> Callable[..., dict[str, str]]:
    def make(prefix: str, **overrides: str) -> dict[str, str]:
        settings = {
            "ORDER_DISPATCH_RETRY__BASE_DELAY_S": "0.05",
            "ORDER_DISPATCH_RETRY__MAX_DELAY_S": "0.5",
            "ORDER_DISPATCH_RETRY__MAX_ATTEMPTS": "5",
            "ORDER_DISPATCH_HTTP__READ_TIMEOUT_S": "5",
            # The session's redis-server keeps nothing on disk.
            "ORDER_DISPATCH_ALLOW_NON_PERSISTENT_REDIS": "true",
            "PYTHONPATH": str(ROOT),
        }
        return worker_env(redis_url, prefix, sandbox, **{**settings, **overrides})

    return make


@pytest.fixture(scope="session")
def shared_prefix() -> str:
    return f"odt-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def worker(
    shared_prefix: str, worker_env_factory: Callable[..., dict[str, str]]
) -> Iterator[WorkerProcess]:
    """One worker for the tests that do not stop it."""
    proc = WorkerProcess(worker_env_factory(shared_prefix))
    yield proc
    proc.close()


@pytest.fixture
def producer(redis_client: redis.Redis, shared_prefix: str) -> Producer:
    return Producer(redis_client, key_prefix=shared_prefix)


class Events:
    """Reads the result stream of one key prefix."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def all(self) -> list[ResultEvent]:
        entries = self.client.xrange(self.keys.results)
        assert entries is not None  # XRANGE answers an array, never nil
        return [e for e in (parse_entry(i, f).event for i, f in entries) if e is not None]

    def of(self, job_id: str) -> list[ResultEvent]:
        return [e for e in self.all() if e.job_id == job_id]

    def wait_terminal(self, job_ids: list[str], timeout: float = 30) -> dict[str, ResultEvent]:
        deadline = time.monotonic() + timeout
        while True:
            done = {e.job_id: e for e in self.all() if e.terminal and e.job_id in job_ids}
            if len(done) == len(set(job_ids)) or time.monotonic() > deadline:
                return done
            time.sleep(0.1)


@pytest.fixture
def events(redis_client: redis.Redis, shared_prefix: str) -> Events:
    return Events(redis_client, Keys(shared_prefix))


def order_job(order_id: str, **order_changes: Any) -> dict[str, Any]:
    """A valid SourceOrders create job for ``order_id``."""
    order: dict[str, Any] = {
        "order_id": order_id,
        "placed_at": "2026-11-20T10:00:00+00:00",
        "customer": {"email": "pam@example.com", "first_name": "Pam", "last_name": "Beesly"},
        "ship_to": {
            "first_name": "Pam",
            "last_name": "Beesly",
            "line1": "1725 Slough Ave",
            "city": "Scranton",
            "region": "PA",
            "postal_code": "18505",
            "country": "US",
        },
        "items": [
            {
                "sku": "sop_0123456789",
                "quantity": 2,
                "unit_price": "9.99",
                "attributes": {"link": "https://example.com/a.png"},
            }
        ],
    }
    order.update(order_changes)
    return {"vendor": "sourceorders", "order": order}


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def tagged_jobs(tag: str, n: int) -> list[dict[str, Any]]:
    """``n`` SourceOrders create jobs, orders ``<tag>-000``..., each reference also in the
    ship-to company (SourceOrders keeps no reference of ours; the company field carries it)."""
    jobs = []
    for i in range(n):
        order_id = f"{tag}-{i:03d}"
        job = order_job(order_id)
        job["order"]["ship_to"]["company"] = order_id
        jobs.append(job)
    return jobs


def vendor_copies(admin: httpx.Client, tag: str = "") -> Counter[str]:
    """How many times SourceOrders holds each order of :func:`tagged_jobs` (``tag`` filters)."""
    orders = admin.get("/_sandbox/orders", params={"vendor": "sourceorders"}).json()["orders"]
    return Counter(
        str(o["shippingAddress"].get("company"))
        for o in orders
        if str(o["shippingAddress"].get("company", "")).startswith(tag)
    )


def wait_until(predicate: Callable[[], bool], timeout: float) -> None:
    """Poll ``predicate`` until it holds; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def cli(redis_url: str, prefix: str, *args: str) -> Result:
    """Run ``order-dispatch ARGS`` on ``prefix``'s keys (settings are read afresh)."""
    get_settings.cache_clear()
    env = {"REDIS_URL": redis_url, "ORDER_DISPATCH_KEY_PREFIX": prefix}
    try:
        return CliRunner().invoke(main, list(args), env=env)
    finally:
        get_settings.cache_clear()
