"""``order-dispatch demo``: one real end-to-end run on this machine.

Redis (embedded unless ``REDIS_URL`` is set), the vendor sandbox, a real Celery worker process,
the sample orders enqueued through the producer API, and their result events read back from the
stream with a consumer group. The sandbox is told to fail the first two requests with 503 so the
retries show. Returns 0 when every queued sample order has its terminal event.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click
import httpx
import redis

from order_dispatch import catalog
from order_dispatch.contract import ResultEvent
from order_dispatch.keys import Keys
from order_dispatch.results import ResultConsumer
from order_dispatch_cli import swarm
from order_dispatch_cli.embedded_redis import EmbeddedRedis
from order_dispatch_sandbox.runner import BackgroundSandbox
from producers.enqueue import InvalidJob, Producer
from producers.files import read_records

_COLOR = {
    "accepted": "green",
    "rejected": "red",
    "retry_scheduled": "yellow",
    "dead_lettered": "red",
    "in_doubt": "magenta",
    "deferred": "yellow",
}


SAMPLES = Path(__file__).parent / "samples"


def _samples(name: str = "demo-orders.jsonl") -> list[Any]:
    with (SAMPLES / name).open() as f:
        return [r.data for r in read_records(f, name)]


def _invalid_sample() -> Any:
    return json.loads((SAMPLES / "invalid-order.json").read_text())


def worker_command(vendors: str, concurrency: int, processes: int = 1) -> list[str]:
    """The command line of an ``order-dispatch worker`` child: one process unless asked."""
    return [
        *swarm.this_command(), "--vendors", vendors, "--concurrency", str(concurrency),
        "--processes", str(processes),
    ]


def demo_accounts(sandbox: BackgroundSandbox) -> dict[str, dict[str, Any]]:
    """One ``default`` account per catalogued vendor, pointed at ``sandbox`` with the
    credentials and options its simulator accepts."""
    accounts: dict[str, dict[str, Any]] = {}
    for vendor in catalog.names():
        simulator = sandbox.simulator(vendor)
        account: dict[str, Any] = {
            "base_url": sandbox.vendor_url(vendor),
            "credentials": simulator.demo_credentials(catalog.entry(vendor).credentials),
        }
        if simulator.demo_options:
            account["options"] = dict(simulator.demo_options)
        accounts[vendor] = {"default": account}
    return accounts


def worker_env(
    redis_url: str, prefix: str, sandbox: BackgroundSandbox, **settings: str
) -> dict[str, str]:
    """The environment of a worker that talks to ``sandbox`` with its demo credentials, one
    ``default`` account per vendor.

    The caller's own ``ORDER_DISPATCH_*`` and ``REDIS_URL`` are left out; ``settings`` adds some.
    """
    accounts = demo_accounts(sandbox)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ORDER_DISPATCH_") and k != "REDIS_URL"
    }
    env.update(
        {
            "ORDER_DISPATCH_REDIS_URL": redis_url,
            "ORDER_DISPATCH_KEY_PREFIX": prefix,
            "ORDER_DISPATCH_ACCOUNTS": json.dumps(accounts),
        }
    )
    env.update(settings)
    return env


def _show(event: ResultEvent) -> None:
    detail = event.vendor_order_id or ""
    if event.error is not None:
        detail = f"{event.error.kind.value}: {event.error.message}"
    if event.retry_in_s is not None:
        detail += f" (retry in {event.retry_in_s:.2f} s)"
    click.echo(
        f"  {event.vendor:<13} {event.order_id:<15} attempt {event.attempt}  "
        + click.style(f"{event.status.value:<16}", fg=_COLOR.get(event.status.value))
        + f" {detail}"
    )


def run_demo(timeout: float = 90.0) -> int:
    """Run the demo; the exit status (0 = every sample order ended)."""
    prefix = f"od-demo-{uuid.uuid4().hex[:8]}"
    keys = Keys(prefix)
    with ExitStack() as stack:
        redis_url = os.environ.get("REDIS_URL")
        server: EmbeddedRedis | None = None
        if redis_url:
            click.echo(f"Redis: {redis_url} (REDIS_URL)")
        else:
            # With append-only persistence, as the worker requires of a Redis.
            server = stack.enter_context(EmbeddedRedis(appendonly=True))
            redis_url = server.url
            click.echo(f"Redis: embedded redis-server on port {server.port}")
        sandbox = stack.enter_context(BackgroundSandbox())
        click.echo(f"Sandbox: {sandbox.url} (SourceOrders at {sandbox.vendor_url('sourceorders')})")
        httpx.post(
            f"{sandbox.url}/_sandbox/faults/sourceorders",
            json={"fail_next": 2, "status": 503, "retry_after": 1},
        ).raise_for_status()
        click.echo("Sandbox: SourceOrders will answer 503 (Retry-After: 1) to the first 2 requests")

        log = stack.enter_context(
            tempfile.NamedTemporaryFile("w+", suffix=".log", prefix="od-worker-")
        )
        env = worker_env(
            redis_url,
            prefix,
            sandbox,
            ORDER_DISPATCH_RETRY__BASE_DELAY_S="0.5",
            ORDER_DISPATCH_RETRY__MAX_DELAY_S="5",
            # A Redis of the user's may run without persistence: fine for a demo (the worker
            # says so in its log), never for real orders.
            ORDER_DISPATCH_ALLOW_NON_PERSISTENT_REDIS="true" if server is None else "false",
        )
        worker = subprocess.Popen(
            worker_command(",".join(catalog.names()), 16),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        stack.callback(_stop, worker)
        click.echo(f"Worker: pid {worker.pid}, logs in {log.name}")

        client = redis.Redis.from_url(redis_url)
        producer = Producer(client, key_prefix=prefix)
        try:
            producer.enqueue(_invalid_sample())
        except InvalidJob as exc:
            click.echo("Producer refused an invalid order at the door, as it should:")
            for line in exc.errors:
                click.echo(f"  {line}")
        orders = _samples()
        receipts = producer.enqueue_many(orders + _samples("demo-vendors.jsonl"))
        again = producer.enqueue_many(orders[:1])
        vendors = sorted({r.vendor for r in receipts})
        click.echo(
            f"Producer: queued {len(receipts)} orders for {len(vendors)} vendors in one round "
            f"trip; re-sending one gave duplicate={again[0].duplicate}"
        )

        pending = {r.job_id for r in receipts}
        by_vendor: dict[str, list[ResultEvent]] = {v: [] for v in vendors}
        consumer = ResultConsumer(client, "demo", "demo-1", keys=keys, block_ms=500)
        deadline = time.monotonic() + timeout
        click.echo("Result events:")
        while pending and time.monotonic() < deadline:
            if worker.poll() is not None:
                click.echo(f"worker exited with {worker.returncode}; see {log.name}", err=True)
                break
            for delivery in consumer.read():
                event = delivery.event
                consumer.ack(delivery.entry_id)
                if event is None:
                    continue
                _show(event)
                if event.terminal and event.job_id in pending:
                    pending.discard(event.job_id)
                    by_vendor[event.vendor].append(event)
        tally = Counter(e.status.value for events in by_vendor.values() for e in events)
        summary = ", ".join(f"{n} {s}" for s, n in sorted(tally.items()))
        if pending:
            click.echo(
                f"Summary: {summary or 'nothing'}; {len(pending)} of {len(receipts)} "
                f"orders without a terminal event after {timeout:.0f} s",
                err=True,
            )
            log.seek(0)
            sys.stderr.write(log.read()[-4000:])
            return 1
        click.echo("Per vendor:")
        for vendor, ended in by_vendor.items():
            counts = Counter(e.status.value for e in ended)
            ids = ", ".join(e.vendor_order_id for e in ended if e.vendor_order_id)
            click.echo(
                f"  {vendor:<13} "
                + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                + (f" (vendor ids: {ids})" if ids else "")
            )
        click.echo(f"Summary: all {len(receipts)} orders ended: {summary}")
        return 0
    return 1


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
