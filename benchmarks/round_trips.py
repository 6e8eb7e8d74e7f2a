"""Redis round trips and CPU per order of the worker's pipeline alone, without Celery.

    python benchmarks/round_trips.py [--orders 2000] [--threads 32] [--asyncio]

Enqueues ``--orders`` orders with the producer, then runs each through the pipeline (the
vendor answers at once over httpx's mock transport, from ``--threads`` threads, as the
worker's pool does) against an embedded Redis, counting what the Redis clients send (one per
command or pipeline: a round trip) and the process's CPU time. ``--asyncio`` also times the
same Redis work issued from the event loop with ``redis.asyncio`` (the claim and the record
scripts, handed to the loop from the threads as the vendor call is), to compare with the task
threads' blocking client.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import redis

from order_dispatch.settings import Settings, VendorAccount
from order_dispatch_cli.embedded_redis import EmbeddedRedis
from producers.enqueue import Producer
from worker.loop import EventLoopThread
from worker.pipeline import Pipeline
from worker.vendors.sender import Sender


class Counter:
    """Counts what every Redis connection sends."""

    def __init__(self) -> None:
        self.count = 0
        original = redis.connection.AbstractConnection.send_packed_command
        counter = self

        def counted(conn: Any, command: Any, check_health: bool = True) -> None:
            counter.count += 1
            original(conn, command, check_health)  # type: ignore[no-untyped-call]

        redis.connection.AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def order(n: int, tag: str) -> dict[str, Any]:
    return {
        "vendor": "sourceorders",
        "order": {
            "order_id": f"RT-{tag}-{n}",
            "placed_at": "2026-11-20T10:00:00+00:00",
            "customer": {"email": "pam@example.com", "first_name": "Pam", "last_name": "B"},
            "ship_to": {
                "first_name": "Pam",
                "last_name": "B",
                "line1": "1725 Slough Ave",
                "city": "Scranton",
                "region": "PA",
                "postal_code": "18505",
                "country": "US",
            },
            "items": [{"sku": "sop_0123456789", "quantity": 2, "unit_price": "9.99"}],
        },
    }


def run_pipeline(url: str, orders: int, threads: int) -> dict[str, float]:
    prefix = f"rt-{uuid.uuid4().hex[:6]}"
    config = Settings(
        redis_url=url,
        key_prefix=prefix,
        accounts={
            "sourceorders": {
                "default": VendorAccount(base_url="https://so.test", credentials={"api_key": "k"})
            }
        },
    )
    client = redis.Redis.from_url(url, max_connections=threads + 4)
    io = EventLoopThread()

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"orderId": "soo_1", "status": "RECEIVED"})

    async def new_client() -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(answer))

    pipeline = Pipeline(config, client, Sender(io.run(new_client()), config), io)
    producer = Producer(client, key_prefix=prefix)
    warm = producer.enqueue(order(0, "warm")).job_id
    pipeline.run(warm, 1, 1)
    ids = [r.job_id for r in producer.enqueue_many([order(n, prefix) for n in range(orders)])]
    counter = Counter()
    before_cpu, before_wall = cpu_s(), time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        steps = list(pool.map(lambda job_id: pipeline.run(job_id, 1, 1), ids))
    wall, cpu = time.perf_counter() - before_wall, cpu_s() - before_cpu
    io.close()
    assert all(s.retry_in_s is None for s in steps), "every order should be accepted at once"
    return {
        "round_trips_per_order": counter.count / orders,
        "cpu_ms_per_order": cpu * 1000 / orders,
        "orders_per_s": orders / wall,
    }


def run_scripts(url: str, orders: int, threads: int, use_loop: bool | str) -> dict[str, float]:
    """Two script calls per order (the claim's script stands for both), from ``threads``
    threads: with the blocking client; or on the event loop's ``redis.asyncio`` client, each
    call handed over (``True``) or both in one hand-over (``"one-hop"``, as if the whole
    attempt ran on the loop)."""
    from order_dispatch.store import lua

    sync = redis.Redis.from_url(url, max_connections=threads + 4)
    keys = [f"rt:{n}" for n in range(4)]
    args = [
        "1",
        "1",
        "w",
        "60",
        "t",
        "{}",
        "r:{vendor}:{account}",
        "c:{vendor}:{account}",
        "1",
        "1",
    ]
    io = EventLoopThread()
    call: Callable[[], Any]
    if use_loop:
        import redis.asyncio as aredis

        async def make() -> Any:
            return aredis.Redis.from_url(url, max_connections=threads + 4)

        aclient = io.run(make())
        script = aclient.register_script(lua.CLAIM)

        def call() -> Any:
            return io.run(script(keys=keys, args=args))
    else:
        script = sync.register_script(lua.CLAIM)

        def call() -> Any:
            return script(keys=keys, args=args)

    if use_loop == "one-hop":

        async def both() -> Any:
            await script(keys=keys, args=args)
            return await script(keys=keys, args=args)

        def once() -> Any:
            return io.run(both())

        call = once
        n = orders
    else:
        n = orders * 2
    call()
    before_cpu, before_wall = cpu_s(), time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: call(), range(n)))
    wall, cpu = time.perf_counter() - before_wall, cpu_s() - before_cpu
    io.close()
    return {"cpu_ms_per_order": cpu * 1000 / orders, "orders_per_s": orders / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--asyncio", action="store_true", help="compare redis.asyncio")
    opts = parser.parse_args()
    os.environ.setdefault("ORDER_DISPATCH_LOG_LEVEL", "WARNING")
    with EmbeddedRedis() as server:
        url = server.url
        print("pipeline:", run_pipeline(url, opts.orders, opts.threads))
        if opts.asyncio:
            print("two scripts, task threads:", run_scripts(url, opts.orders, opts.threads, False))
            print("two scripts, event loop:  ", run_scripts(url, opts.orders, opts.threads, True))
            print(
                "two scripts, event loop, one hand-over:",
                run_scripts(url, opts.orders, opts.threads, "one-hop"),
            )


if __name__ == "__main__":
    main()
