"""A load generator for the HTTP API: keep-alive connections, closed loop or an offered rate.

Runs in its own process (:func:`run_in_process`) so the API's processes and the generator each
have their own interpreter. Latency is measured from when a request was due to be sent (open
loop), so a stalled server is not hidden by requests that were never sent.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Sequence
from typing import Any

import aiohttp


async def _closed(
    url: str, headers: dict[str, str], bodies: Sequence[bytes], connections: int
) -> dict[str, Any]:
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    todo = iter(bodies)
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def client() -> None:
            for body in todo:
                started = time.perf_counter()
                async with session.post(url, data=body) as response:
                    await response.read()
                latencies.append(time.perf_counter() - started)
                statuses[response.status] = statuses.get(response.status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return {"elapsed_s": elapsed, "statuses": statuses, "latencies": latencies}


async def _offered(
    url: str, headers: dict[str, str], bodies: Sequence[bytes], rate: float, connections: int
) -> dict[str, Any]:
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one(body: bytes, due: float) -> None:
            async with session.post(url, data=body) as response:
                await response.read()
            latencies.append(time.perf_counter() - due)
            statuses[response.status] = statuses.get(response.status, 0) + 1

        # Warm the connections up first (not measured).
        warm = [session.get(url.rsplit("/v1/", 1)[0] + "/healthz") for _ in range(connections)]
        for response in await asyncio.gather(*warm):
            response.release()
        tasks = []
        started = time.perf_counter()
        for n, body in enumerate(bodies):
            due = started + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(body, due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    return {"elapsed_s": elapsed, "statuses": statuses, "latencies": latencies}


def _child(conn: Any, kind: str, args: tuple[Any, ...]) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    coro = _closed(*args) if kind == "closed" else _offered(*args)
    conn.send(asyncio.run(coro))
    conn.close()


def run_in_process(kind: str, *args: Any) -> dict[str, Any]:
    """``closed`` (url, headers, bodies, connections) or ``offered`` (url, headers, bodies,
    rate, connections), run in a child process; its statuses, latencies and elapsed time."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, kind, args))
    proc.start()
    result: dict[str, Any] = parent.recv()
    proc.join()
    return result
