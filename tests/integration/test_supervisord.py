"""``deploy/supervisord.conf`` run by a real supervisord: the worker answers ``inspect ping``
and dispatches, ``supervisorctl stop`` ends it cleanly (exit 0, in-flight jobs finished, the
rest back in the queue), and a worker that dies is started again."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from order_dispatch.keys import Keys
from order_dispatch_sandbox.runner import free_port
from producers.enqueue import Producer
from tests.integration.conftest import (
    FAST_RECOVERY,
    ROOT,
    Events,
    tagged_jobs,
    unique,
    vendor_copies,
    wait_until,
)

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
FLOWER_LOGIN = ("ops", "supervised-flower-pw")


class Supervisor:
    """supervisord (foreground) with a copy of the product's config, and its XML-RPC API."""

    def __init__(self, env: dict[str, str], base: Path) -> None:
        self.base = base
        self.conf = base / "supervisord.conf"
        shutil.copy(ROOT / "deploy" / "supervisord.conf", self.conf)
        self.proc = subprocess.Popen(
            [str(BIN / "supervisord"), "-c", str(self.conf)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )

    def call(self, method: str, *args: Any) -> Any:
        """Call ``supervisor.<method>`` over the control socket, on a connection of its own."""
        from supervisor.xmlrpc import SupervisorTransport

        socket_url = f"unix://{self.base / 'run' / 'supervisor.sock'}"
        transport = SupervisorTransport(None, None, socket_url)
        try:
            proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
            return getattr(proxy.supervisor, method)(*args)
        finally:
            transport.close()

    def info(self, name: str) -> dict[str, Any]:
        info: dict[str, Any] = self.call("getProcessInfo", name)
        return info

    def wait_running(self, name: str, timeout: float = 60, not_pid: int = 0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                info = self.info(name)
                if info["statename"] == "RUNNING" and info["pid"] != not_pid:
                    return info
            except (OSError, xmlrpc.client.Fault):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{name} not running:\n{self.logs()}")
            time.sleep(0.2)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted((self.base / "log").iterdir())
        )

    def shutdown(self) -> int:
        if self.proc.poll() is None:
            try:
                self.call("shutdown")
            except Exception:  # any failure of the control socket: stop it by signal
                self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def supervised(
    worker_env_factory: Callable[..., dict[str, str]],
) -> Iterator[tuple[Supervisor, dict[str, str]]]:
    pytest.importorskip("supervisor", reason="supervisor is not installed (the 'dev' extra)")
    # A short directory: the control socket's path must fit in 108 bytes.
    base = Path(tempfile.mkdtemp(prefix="od-sv-"))
    (base / "run").mkdir()
    (base / "log").mkdir()
    env = worker_env_factory(
        unique("odsv"),
        ORDER_DISPATCH_RUN_DIR=str(base / "run"),
        ORDER_DISPATCH_LOG_DIR=str(base / "log"),
        ORDER_DISPATCH_WORKER_CONCURRENCY="4",
        ORDER_DISPATCH_WORKER_PROCESSES="2",  # a set of two, whatever the core count
        # A killed worker's jobs come back after the visibility timeout: keep it short here.
        **FAST_RECOVERY,
        ORDER_DISPATCH_RETRY__RETRY_AFTER_CAP_S="2",
        FLOWER_PORT=str(free_port()),
        FLOWER_BASIC_AUTH=":".join(FLOWER_LOGIN),
        ORDER_DISPATCH_METRICS_PORT=str(free_port()),
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    supervisor = Supervisor(env, base)
    try:
        yield supervisor, env
    finally:
        code = supervisor.shutdown()
        shutil.rmtree(base, ignore_errors=True)
        assert code == 0, f"supervisord exited {code}"


def test_supervised_worker_pings_dispatches_stops_cleanly_and_is_restarted_when_it_dies(
    supervised: tuple[Supervisor, dict[str, str]],
    redis_client: redis.Redis,
    sandbox_admin: httpx.Client,
) -> None:
    supervisor, env = supervised
    prefix = env["ORDER_DISPATCH_KEY_PREFIX"]
    keys, events = Keys(prefix), Events(redis_client, Keys(prefix))
    producer = Producer(redis_client, key_prefix=prefix)
    queue = keys.queue("sourceorders")
    first = supervisor.wait_running("worker:worker1")
    for name in ("flower", "metrics"):
        supervisor.wait_running(name)

    # Given a running worker: it answers Celery's ping and dispatches an order.
    ping = subprocess.run(
        [str(BIN / "celery"), "-A", "worker.app", "inspect", "ping", "--timeout", "10",
         "-d", f"worker1-1@{socket.gethostname()},worker1-2@{socket.gethostname()}"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ping.returncode == 0 and ping.stdout.count("pong") == 2, ping.stdout + ping.stderr
    [receipt] = producer.enqueue_many(tagged_jobs(f"{prefix}-one", 1))
    assert events.wait_terminal([receipt.job_id])[receipt.job_id].status == "accepted"
    # ... and so do Flower and the metrics endpoint it starts beside the worker.
    flower = f"http://127.0.0.1:{env['FLOWER_PORT']}"
    assert httpx.get(f"{flower}/healthcheck", auth=FLOWER_LOGIN).status_code == 200
    scrape = httpx.get(f"http://127.0.0.1:{env['ORDER_DISPATCH_METRICS_PORT']}/metrics").text
    assert "order_dispatch_redis_up 1.0" in scrape

    # When supervisorctl stops the worker with requests in flight at a slow vendor:
    sandbox_admin.post("/_sandbox/reset").raise_for_status()
    sandbox_admin.post("/_sandbox/faults/sourceorders", json={"latency": {"ms": 1500}})
    ids = [r.job_id for r in producer.enqueue_many(tagged_jobs(f"{prefix}-stop", 24))]
    wait_until(lambda: sum(vendor_copies(sandbox_admin).values()) >= 1, 20)
    assert supervisor.call("stopProcess", "worker:worker1") is True

    # Then it exited 0, every request it had sent ended accepted, and the rest wait queued.
    stopped = supervisor.info("worker:worker1")
    assert stopped["statename"] == "STOPPED" and stopped["exitstatus"] == 0, stopped
    ended = {e.job_id: e for e in events.all() if e.terminal and e.job_id in ids}
    assert 1 <= len(ended) < 24, len(ended)
    assert all(e.status == "accepted" for e in ended.values())
    assert sum(vendor_copies(sandbox_admin).values()) == len(ended)
    assert redis_client.llen(queue) == 24 - len(ended)

    # When it is started again, the queued rest is dispatched, each order once.
    sandbox_admin.post("/_sandbox/faults/sourceorders", json={"latency": {"ms": 0}})
    supervisor.call("startProcess", "worker:worker1")
    done = events.wait_terminal(ids, timeout=60)
    assert set(done) == set(ids) and all(e.status == "accepted" for e in done.values())
    assert max(vendor_copies(sandbox_admin).values()) == 1

    # When the worker dies mid-request (SIGKILL), supervisord starts a new one, which ends
    # every job exactly once: accepted, or in doubt for the request the kill cut off.
    sandbox_admin.post("/_sandbox/faults/sourceorders", json={"latency": {"ms": 1500}})
    before = sum(vendor_copies(sandbox_admin).values())
    killed_ids = [r.job_id for r in producer.enqueue_many(tagged_jobs(f"{prefix}-kill", 4))]
    wait_until(lambda: sum(vendor_copies(sandbox_admin).values()) > before, 20)
    victim = supervisor.info("worker:worker1")["pid"]
    assert victim != first["pid"]
    os.kill(victim, signal.SIGKILL)
    supervisor.wait_running("worker:worker1", not_pid=victim)
    sandbox_admin.post("/_sandbox/faults/sourceorders", json={"latency": {"ms": 0}})

    done = events.wait_terminal(killed_ids, timeout=60)
    terminal = Counter(e.job_id for e in events.all() if e.terminal)
    assert set(done) == set(killed_ids), supervisor.logs()
    assert all(terminal[i] == 1 for i in killed_ids)
    assert {e.status for e in done.values()} <= {"accepted", "in_doubt"}
    assert max(vendor_copies(sandbox_admin).values()) == 1
