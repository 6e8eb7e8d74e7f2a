"""End-to-end throughput: orders enqueued until every one has its terminal result event.

One machine runs it all: an embedded Redis, the sandbox in its own process (SourceOrders
answering after a fixed latency), one ``order-dispatch worker`` process, and this process as
producer and result reader. The baseline, measured in the same run against the same sandbox, is
the HTTP part alone: the same creates sent straight from as many threads as the worker has,
over one shared ``httpx.Client`` (no queue, no ledger, no events). The gap between the two is
what the queue and the delivery guarantees cost.

    python benchmarks/end_to_end.py [--orders 1000] [--concurrency 64] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import redis

from cli.embedded_redis import EmbeddedRedis
from order_dispatch.keys import Keys
from order_dispatch.results import parse_entry
from producers.enqueue import Producer
from sandbox.runner import free_port
from sandbox.sourceorders import DEFAULT_API_KEY
from worker.vendors.sourceorders import SourceOrdersTranslator


def _job(n: int, tag: str) -> dict[str, object]:
    return {"vendor": "sourceorders", "order": {
        "order_id": f"{tag}-{n:06d}", "placed_at": "2026-11-20T10:00:00Z",
        "ship_to": {"first_name": "A", "last_name": "B", "line1": "1 Main St", "city": "Hastings",
                    "region": "MN", "postal_code": "55033", "country": "US"},
        "items": [{"sku": "sop_0123456789", "quantity": 1, "unit_price": "9.99"}],
    }}


def _wait_http(url: str) -> None:
    for _ in range(200):
        try:
            httpx.get(url)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def baseline(base_url: str, orders: int, concurrency: int) -> float:
    """Orders/s of the bare HTTP part: threads and one shared client, no queue."""
    from order_dispatch.contract import Job
    from order_dispatch.settings import VendorAccount

    translator = SourceOrdersTranslator(VendorAccount(base_url=base_url))
    bodies = [translator.request_for(Job.model_validate(_job(n, "base"))).json
              for n in range(orders)]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(limits=limits, timeout=30) as client:
        def send(body: object) -> int:
            return client.post(f"{base_url}/v1/orders", json=body,
                               headers={"X-API-KEY": DEFAULT_API_KEY}).status_code

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            statuses = list(pool.map(send, bodies))
        elapsed = time.perf_counter() - started
    assert statuses.count(200) == orders, "baseline requests failed"
    return orders / elapsed


def pipeline(
    redis_url: str, base_url: str, orders: int, concurrency: int
) -> tuple[float, dict[str, int]]:
    """Orders/s through producer -> Redis -> worker -> vendor -> result stream."""
    prefix = f"bench-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "ORDER_DISPATCH_REDIS_URL": redis_url,
           "ORDER_DISPATCH_KEY_PREFIX": prefix, "ORDER_DISPATCH_LOG_LEVEL": "WARNING",
           # The benchmark's embedded Redis keeps nothing on disk.
           "ORDER_DISPATCH_ALLOW_NON_PERSISTENT_REDIS": "true",
           "ORDER_DISPATCH_ACCOUNTS": json.dumps({"sourceorders": {"default": {
               "base_url": base_url, "credentials": {"api_key": DEFAULT_API_KEY}}}})}
    worker = subprocess.Popen(
        [sys.executable, "-m", "cli", "worker", "--vendors", "sourceorders",
         "--concurrency", str(concurrency)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis.from_url(redis_url)
    keys = Keys(prefix)
    try:
        time.sleep(3)  # let the worker connect before the clock starts
        jobs = [_job(n, prefix) for n in range(orders)]
        started = time.perf_counter()
        Producer(client, key_prefix=prefix).enqueue_many(jobs)
        while client.xlen(keys.results) < orders:
            if time.perf_counter() - started > 600:
                raise RuntimeError("timed out")
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        statuses: dict[str, int] = {}
        entries = client.xrange(keys.results)
        assert entries is not None  # XRANGE answers an array, never nil
        for entry_id, fields in entries:
            status = parse_entry(entry_id, fields).raw["status"]
            statuses[status] = statuses.get(status, 0) + 1
        return orders / elapsed, statuses
    finally:
        worker.terminate()
        worker.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    port = free_port()
    faults = json.dumps({"sourceorders": {"latency": {"ms": args.latency_ms}}})
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "cli", "sandbox", "--port", str(port),
         "--faults", faults], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}/sourceorders"
    try:
        _wait_http(f"http://127.0.0.1:{port}/_sandbox/health")
        with EmbeddedRedis() as server:
            print(f"{args.orders} orders, {args.concurrency} threads, vendor latency "
                  f"{args.latency_ms:.0f} ms")
            bare = baseline(base_url, args.orders, args.concurrency)
            print(f"baseline (threads + shared httpx.Client, no queue): {bare:7.0f} orders/s")
            rate, statuses = pipeline(server.url, base_url, args.orders, args.concurrency)
            print(f"pipeline (enqueue -> worker -> vendor -> event):    {rate:7.0f} orders/s "
                  f"{statuses}")
            print(f"pipeline / baseline: {rate / bare:.2f}")
    finally:
        sandbox.terminate()
        sandbox.wait(10)


if __name__ == "__main__":
    main()
