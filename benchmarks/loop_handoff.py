"""CPU per vendor call handed from task threads to the worker's event loop: the standard
library's loop against uvloop, and the same calls made on the loop directly (no hand-over).

    python benchmarks/loop_handoff.py [--calls 3000] [--threads 32] [--latency-ms 50]

A local aiohttp server (its own process) answers each POST after ``--latency-ms``; the calls go
through the product's vendor client (:func:`worker.http.new_client`: httpx over aiohttp) on an
:class:`worker.loop.EventLoopThread`, from ``--threads`` threads as the worker's pool makes them,
and then as ``--threads`` coroutines on the loop itself. Each variant runs twice, interleaved;
printed: calls/s and this process's CPU per call (every thread's, the loop's included).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from aiohttp import web

from order_dispatch.settings import HttpSettings
from order_dispatch_sandbox.runner import free_port
from worker.http import new_client
from worker.loop import EventLoopThread


def _serve(port: int, latency_s: float) -> None:
    async def order(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(latency_s)
        return web.json_response({"id": "ord_1"})

    app = web.Application()
    app.router.add_post("/orders", order)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _measure(
    make_loop: Callable[[], asyncio.AbstractEventLoop],
    url: str,
    calls: int,
    threads: int,
    *,
    direct: bool,
) -> tuple[float, float]:
    io = EventLoopThread(new_loop=make_loop)

    async def make() -> httpx.AsyncClient:
        return new_client(HttpSettings())

    client = io.run(make())

    async def call() -> int:
        response = await client.post(url, content=b'{"order": 1}')
        return response.status_code

    async def many(n: int) -> None:
        gate = asyncio.Semaphore(threads)

        async def one() -> None:
            async with gate:
                await call()

        await asyncio.gather(*(one() for _ in range(n)))

    def run(n: int, pool: ThreadPoolExecutor) -> None:
        if direct:
            io.run(many(n))
        else:
            list(pool.map(lambda _: io.run(call()), range(n)))

    with ThreadPoolExecutor(threads) as pool:
        run(200, pool)  # connections open, code warm
        cpu, started = time.process_time(), time.perf_counter()
        run(calls, pool)
        cpu, elapsed = time.process_time() - cpu, time.perf_counter() - started
    io.run(client.aclose())
    io.close()
    return calls / elapsed, cpu / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    port = free_port()
    server = multiprocessing.Process(
        target=_serve, args=(port, args.latency_ms / 1000), daemon=True
    )
    server.start()
    url = f"http://127.0.0.1:{port}/orders"
    deadline = time.monotonic() + 10
    while True:
        try:
            httpx.post(url, content=b"{}")
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise SystemExit("the test server did not start") from None
            time.sleep(0.05)
    loops: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
    try:
        import uvloop

        loops["uvloop"] = uvloop.new_event_loop
    except ImportError:
        print("uvloop is not installed: the standard library's loop only")
    results: dict[str, list[Any]] = {}
    try:
        for _round in range(2):
            for name, make_loop in loops.items():
                for direct in (False, True):
                    label = f"{name}, {'on the loop' if direct else 'handed from threads'}"
                    results.setdefault(label, []).append(
                        _measure(make_loop, url, args.calls, args.threads, direct=direct)
                    )
    finally:
        server.terminate()
    print(f"{args.calls} calls, {args.threads} at once, the server answering after "
          f"{args.latency_ms:g} ms; two rounds, interleaved")
    print("| loop | calls/s | CPU ms per call |")
    print("|---|---:|---:|")
    for label, runs in results.items():
        rates = ", ".join(f"{r:,.0f}" for r, _ in runs)
        cpus = ", ".join(f"{c:.3f}" for _, c in runs)
        print(f"| {label} | {rates} | {cpus} |")


if __name__ == "__main__":
    main()
