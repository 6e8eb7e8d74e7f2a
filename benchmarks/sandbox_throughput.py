"""Sandbox throughput in its fixed-latency mode, against a bare aiohttp server as the baseline.

Both servers run in their own process on 127.0.0.1, answer after the same fixed latency, and
receive the same bounded load from one aiohttp client process with N requests in flight:
the baseline does nothing but sleep and answer; the sandbox runs the SourceOrders simulator's
full create (auth, validation, storing) behind the fault middleware. Prints requests/s of each
and the ratio. The sandbox must not be the bottleneck at 1,000 requests/s.

    python benchmarks/sandbox_throughput.py [--requests 6000] [--concurrency 200] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import time

import aiohttp
from aiohttp import web

from order_dispatch_sandbox.runner import free_port

BODY = {
    "items": [{"skuCode": "sop_0123456789", "quantity": 1,
               "attributes": [{"name": "link", "value": "https://example.com"}]}],
    "shippingAddress": {"firstName": "Michael", "lastName": "Scott", "street1": "741 Spiral Blvd",
                        "city": "Hastings", "stateOrProvince": "MN", "postalCode": "55033",
                        "country": "US"},
}


def _baseline(port: int, latency_s: float) -> None:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(latency_s)
        return web.json_response({"orderId": "soo_1", "status": "RECEIVED"})

    app = web.Application()
    app.router.add_post("/sourceorders/v1/orders", handler)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def _sandbox(port: int, latency_s: float) -> None:
    from order_dispatch_sandbox.app import serve

    serve("127.0.0.1", port, faults={"sourceorders": {"latency": {"ms": latency_s * 1000}}})


async def _load(port: int, requests: int, concurrency: int) -> tuple[float, int]:
    url = f"http://127.0.0.1:{port}/sourceorders/v1/orders"
    payload = json.dumps(BODY).encode()
    headers = {"X-API-KEY": "sandbox-sourceorders-key", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    failures = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(100):  # wait for the server
            try:
                async with session.post(url, data=payload, headers=headers):
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        remaining = requests

        async def worker() -> None:
            nonlocal remaining, failures
            while remaining > 0:
                remaining -= 1
                async with session.post(url, data=payload, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        failures += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return requests / (time.perf_counter() - started), failures


def measure(target: str, requests: int, concurrency: int, latency_ms: float) -> tuple[float, int]:
    """Requests per second (and failures) of one server kind under the load."""
    port = free_port()
    serve = _baseline if target == "baseline" else _sandbox
    proc = multiprocessing.Process(target=serve, args=(port, latency_ms / 1000), daemon=True)
    proc.start()
    try:
        return asyncio.run(_load(port, requests, concurrency))
    finally:
        proc.terminate()
        proc.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    ideal = args.concurrency / (args.latency_ms / 1000) if args.latency_ms else float("inf")
    print(f"{args.requests} POST creates, {args.concurrency} in flight, "
          f"{args.latency_ms:.0f} ms latency (ideal {ideal:,.0f} req/s)")
    base, base_fail = measure("baseline", args.requests, args.concurrency, args.latency_ms)
    sand, sand_fail = measure("sandbox", args.requests, args.concurrency, args.latency_ms)
    print(f"baseline (bare aiohttp, sleep + answer): {base:8,.0f} req/s  failures {base_fail}")
    print(f"sandbox  (SourceOrders create + faults): {sand:8,.0f} req/s  failures {sand_fail}")
    print(f"sandbox / baseline: {sand / base:.2f}")


if __name__ == "__main__":
    main()
