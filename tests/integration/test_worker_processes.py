"""``order-dispatch worker --processes N``: N real Celery nodes that start and stop as one.

Both processes take jobs; a requested stop reaches every one and the command exits 0; a child
that dies stops the set with a non-zero status (the supervisor restarts it whole); a killed
command leaves no worker process behind; a refused configuration exits 78 as for one process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
import redis

from order_dispatch.keys import Keys
from order_dispatch_cli.demo import worker_command
from producers.enqueue import Producer
from tests.integration.conftest import ROOT, Events, order_job, wait_until

pytestmark = pytest.mark.integration


class Set:
    """``order-dispatch worker --processes 2`` running, with its log."""

    def __init__(self, env: dict[str, str], *extra: str) -> None:
        self.log = tempfile.NamedTemporaryFile("w+", prefix="od-test-set-", suffix=".log")  # noqa: SIM115
        command = [*worker_command("sourceorders", 4, processes=2), *extra]
        self.proc = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()

    def wait_ready(self) -> None:
        wait_until(lambda: self.output().count("ready.") >= 2 or self.proc.poll() is not None, 60)
        assert self.output().count("ready.") == 2, self.output()[-3000:]

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def prefix() -> str:
    return f"odp-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def env(prefix: str, worker_env_factory: Callable[..., dict[str, str]]) -> dict[str, str]:
    return worker_env_factory(prefix)


@pytest.fixture
def started(env: dict[str, str]) -> Iterator[Set]:
    workers = Set(env, "--hostname", "set@%h")
    try:
        workers.wait_ready()
        yield workers
    finally:
        workers.close()


def test_both_processes_take_jobs_and_a_sigterm_stops_them_all_with_zero(
    started: Set, prefix: str, redis_client: redis.Redis
) -> None:
    children = started.children()
    assert len(children) == 2
    assert {f"set-{n}@" in started.output() for n in (1, 2)} == {True}

    receipts = Producer(redis_client, key_prefix=prefix).enqueue_many(
        [order_job(f"{prefix}-{i}") for i in range(60)]
    )
    done = Events(redis_client, Keys(prefix)).wait_terminal([r.job_id for r in receipts], 60)
    assert {e.status for e in done.values()} == {"accepted"} and len(done) == 60
    workers = {
        json.loads(entry)["worker"]
        for r in receipts
        for entry in redis_client.lrange(Keys(prefix).timeline(r.job_id), 0, -1)
        if json.loads(entry).get("worker")
    }
    # Worker ids are host-pid-<random> (worker.fetch.identity).
    assert {w.rsplit("-", 2)[1] for w in workers} == {str(c.pid) for c in children}

    started.proc.send_signal(signal.SIGTERM)
    assert started.proc.wait(40) == 0, started.output()[-3000:]
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)


def test_a_child_that_dies_stops_the_set_non_zero(started: Set) -> None:
    first, second = started.children()

    first.kill()

    assert started.proc.wait(40) == 1, started.output()[-3000:]
    assert "a worker process stopped by itself" in started.output()
    second.wait(5)  # stopped by the set, warm


def test_a_killed_command_leaves_no_worker_behind(started: Set) -> None:
    children = started.children()

    started.proc.kill()
    started.proc.wait()

    gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [] and len(gone) == 2


def test_a_refused_configuration_exits_78(
    prefix: str, worker_env_factory: Callable[..., dict[str, str]]
) -> None:
    accounts = {"sourceorders": {"default": {"base_url": "http://127.0.0.1:9/sourceorders"}}}
    workers = Set(worker_env_factory(prefix, ORDER_DISPATCH_ACCOUNTS=json.dumps(accounts)))
    try:
        assert workers.proc.wait(60) == 78, workers.output()[-3000:]
        assert "refusing to start" in workers.output()
    finally:
        workers.close()


def test_the_default_is_one_process_per_core(env: dict[str, str]) -> None:
    command = [c for c in worker_command("sourceorders", 2) if c not in ("--processes", "1")]
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                log.seek(0)
                if log.read().count("ready.") >= cores:
                    break
                time.sleep(0.2)
            expected = cores if cores > 1 else 0  # one core: the worker itself, no children
            assert len(psutil.Process(proc.pid).children()) == expected
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(40) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
