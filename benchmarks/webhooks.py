"""``order-dispatch bench --webhooks``: webhook deliveries beside dispatch, in the same run.

The product's workers (``order-dispatch worker``, default settings, webhooks allowed to a
private address) first dispatch a burst of orders with no endpoint (the CPU an order costs
alone), then the same burst while every ``accepted`` result event goes to ``endpoints``
endpoints on a local receiver (its own process, aiohttp) that answers 204 after
``receiver_ms``. Reported: dispatch orders/s (first enqueue to the last order's terminal
event), webhook events/s per endpoint (first enqueue to the last delivery's ``accepted`` event,
as the result stream records them), deliveries/s over all endpoints, the ratio of webhook
events/s to dispatch orders/s (the target: at least 1 with 2 endpoints), how far the last
delivery trailed the last order, and the workers' CPU per order alone and per delivery (the
second burst's CPU less the first's, per delivery).

A burst is more work than the workers carry at once, and a delivery cannot start before its
order ended, so in a burst the last delivery trails the last order by however much delivery
work is left then; the burst ratio says how much that is. Whether deliveries keep pace with
dispatch is the even-load measurement after the burst: orders offered evenly at
:data:`PACED_SHARE` of what the workers carried in the burst with the deliveries included
(orders / time to the last delivery), and the ratio and trail at that load.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis

from order_dispatch.contract import WEBHOOKS, EventStatus
from order_dispatch.keys import Keys
from order_dispatch.webhooks import EndpointBook
from order_dispatch_sandbox.runner import free_port

_TERMINAL = {s.value for s in EventStatus if s.terminal}
Order = Callable[[int, str], dict[str, Any]]
"""Makes job ``n`` of a run tagged ``tag``."""

#: The even load offered after the burst, as a share of the burst's orders/s with deliveries
#: included: a load the workers carry with room for the noise of a shared machine.
PACED_SHARE = 0.8


def _serve(port: int, latency_s: float) -> None:
    from aiohttp import web

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(latency_s)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


@contextlib.contextmanager
def receiver(latency_ms: float) -> Iterator[str]:
    """A receiver answering 204 after ``latency_ms``, in a process of its own: its URL."""
    port = free_port()
    proc = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(port, latency_ms / 1000), daemon=True
    )
    proc.start()
    try:
        import httpx

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                httpx.post(f"http://127.0.0.1:{port}/hook", content=b"{}", timeout=1)
                break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        proc.terminate()
        proc.join(5)


@dataclass
class WebhookMeasure:
    """One run: dispatch beside webhook deliveries."""

    orders: int
    endpoints: int
    receiver_ms: float
    dispatch_per_s: float = 0.0
    events_per_s: float = 0.0
    """Events delivered per second to each endpoint."""
    deliveries_per_s: float = 0.0
    ratio: float = 0.0
    """events_per_s / dispatch_per_s."""
    trail_s: float = 0.0
    """How long after the last order's terminal event the last delivery was accepted."""
    alone_per_s: float = 0.0
    """Dispatch orders/s of the first burst, with no endpoint."""
    cpu_ms_per_order: float = 0.0
    """Worker CPU per order in the first burst (no endpoint)."""
    cpu_ms_per_delivery: float = 0.0
    """Worker CPU per delivery: the second burst's CPU less the first's, per delivery (the
    fan-out included)."""
    carried_per_s: float = 0.0
    """Orders/s the workers carried in the second burst with every delivery included: orders
    / time from the first enqueue to the last delivery."""
    paced_rate: float = 0.0
    """Orders/s offered evenly after the burst: :data:`PACED_SHARE` of ``carried_per_s``."""
    paced_dispatch_per_s: float = 0.0
    paced_events_per_s: float = 0.0
    paced_ratio: float = 0.0
    paced_trail_s: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)


def _collect(
    client: redis.Redis,
    stream: str,
    start_id: str,
    orders: set[str],
    deliveries: int,
    timeout_s: float = 300,
) -> tuple[dict[str, float], list[float], dict[str, int]]:
    """Read ``stream`` after ``start_id`` until every order of ``orders`` ended and
    ``deliveries`` webhook deliveries ended: order job id -> when its terminal event was
    written, the times of the deliveries' terminal events, and the statuses counted."""
    done: dict[str, float] = {}
    delivered: list[float] = []
    statuses: dict[str, int] = {}
    last = start_id
    deadline = time.monotonic() + timeout_s
    while len(done) < len(orders) or len(delivered) < deliveries:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"after {timeout_s:.0f} s: {len(done)}/{len(orders)} orders ended, "
                f"{len(delivered)}/{deliveries} deliveries"
            )
        reply: Any = client.xread({stream: last}, count=1000, block=200)
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                last = entry_id.decode()
                at = int(last.split("-")[0]) / 1000
                job_id = fields[b"job_id"].decode()
                status = fields[b"status"].decode()
                if status not in _TERMINAL:
                    continue
                if job_id.startswith(f"{WEBHOOKS}:"):
                    delivered.append(at)
                    key = f"webhook {status}"
                    statuses[key] = statuses.get(key, 0) + 1
                elif job_id in orders and job_id not in done:
                    done[job_id] = at
                    statuses[status] = statuses.get(status, 0) + 1
    return done, delivered, statuses


def _warm(system: Any, client: redis.Redis, order: Order, tag: str, endpoints: int) -> None:
    """20 orders (and their deliveries) through running workers: they are up, connected and
    their fan-outs see the endpoints once these ended."""
    last: Any = client.xrevrange(system.stream, count=1)
    start_id = last[0][0].decode() if last else "0-0"
    warm = [order(n, tag) for n in range(20)]
    system.enqueue(warm)
    _collect(client, system.stream, start_id, {j["job_id"] for j in warm}, 20 * endpoints, 120)


def _burst(
    system: Any,
    client: redis.Redis,
    order: Order,
    pids: list[int],
    tag: str,
    orders: int,
    endpoints: int,
    started: float | None = None,
) -> tuple[float, dict[str, float], list[float], float, dict[str, int]]:
    """A burst of ``orders`` and their deliveries: seconds to the last order's terminal event,
    when each order and delivery ended, the workers' CPU seconds, the statuses."""
    from benchmarks.harness import Sampler

    last: Any = client.xrevrange(system.stream, count=1)
    start_id = last[0][0].decode() if last else "0-0"
    jobs = [order(n, tag) for n in range(orders)]
    with Sampler(pids) as sampler:
        cpu_before = sampler.cpu_s
        started = time.time() if started is None else started
        for i in range(0, orders, 500):
            system.enqueue(jobs[i : i + 500])
        done, delivered, statuses = _collect(
            client, system.stream, start_id, {j["job_id"] for j in jobs}, orders * endpoints
        )
        sampler.sample()
        cpu = sampler.cpu_s - cpu_before
    return max(done.values()) - started, done, delivered, cpu, statuses


def measure_webhooks(
    make_product: Callable[[dict[str, str]], Any],
    client: redis.Redis,
    order: Order,
    *,
    orders: int,
    endpoints: int,
    receiver_ms: float,
    log_dir: Path,
    paced: Callable[..., dict[str, float]] | None = None,
    paced_s: float = 10.0,
) -> WebhookMeasure:
    """One run (see the module docstring); ``make_product`` builds the product's workers with
    extra settings."""
    result = WebhookMeasure(orders, endpoints, receiver_ms)
    settings = {"ORDER_DISPATCH_WEBHOOKS_ALLOW_PRIVATE": "true"}
    with receiver(receiver_ms) as url:
        system = make_product(settings)
        keys = Keys(system.stream.rsplit(":", 1)[0])
        book = EndpointBook(client, keys)
        tag = uuid.uuid4().hex[:8]
        with system.running(log_dir) as pids:
            _warm(system, client, order, f"{tag}v", 0)
            alone = _burst(system, client, order, pids, f"{tag}a", orders, 0)
            alone_s, alone_cpu = alone[0], alone[3]
            result.alone_per_s = orders / alone_s
            result.cpu_ms_per_order = alone_cpu / orders * 1000
            for _ in range(endpoints):
                book.add(url, allow_private=True, events=["accepted"])
            _warm(system, client, order, f"{tag}w", endpoints)
            started = time.time()
            _, done, delivered, cpu, statuses = _burst(
                system, client, order, pids, f"{tag}b", orders, endpoints, started
            )
            result.cpu_ms_per_delivery = (
                (cpu - alone_cpu) / (orders * endpoints) * 1000 if endpoints else 0.0
            )
            result.carried_per_s = orders / (max(delivered) - started)
            if paced is not None and paced_s > 0:
                rate = result.carried_per_s * PACED_SHARE
                last: Any = client.xrevrange(system.stream, count=1)
                paced_id = last[0][0].decode() if last else "0-0"
                sent = paced(system.enqueue, f"{tag}p", rate, paced_s)
                got, arrived, _ = _collect(
                    client, system.stream, paced_id, set(sent), len(sent) * endpoints
                )
                first = min(sent.values())
                result.paced_rate = rate
                result.paced_dispatch_per_s = len(sent) / (max(got.values()) - first)
                result.paced_events_per_s = len(sent) / (max(arrived) - first)
                result.paced_ratio = result.paced_events_per_s / result.paced_dispatch_per_s
                result.paced_trail_s = max(arrived) - max(got.values())
    dispatch_s = max(done.values()) - started
    webhooks_s = max(delivered) - started
    result.dispatch_per_s = orders / dispatch_s
    result.events_per_s = orders / webhooks_s
    result.deliveries_per_s = orders * endpoints / webhooks_s
    result.ratio = result.events_per_s / result.dispatch_per_s
    result.trail_s = max(delivered) - max(done.values())
    result.statuses = statuses
    return result


def median(runs: list[WebhookMeasure]) -> dict[str, Any]:
    """The run with the median ratio, with every run's ratio beside it."""
    ordered = sorted(runs, key=lambda m: m.ratio)
    chosen = asdict(ordered[len(ordered) // 2])
    chosen["ratios"] = [round(m.ratio, 3) for m in runs]
    chosen["ratio_median"] = statistics.median(m.ratio for m in runs)
    return chosen


def markdown(result: dict[str, Any]) -> list[str]:
    """The webhooks measurement as Markdown lines."""
    return [
        "",
        f"Webhooks: {result['orders']:,} orders, every accepted event to {result['endpoints']} "
        f"endpoints on a local receiver answering in {result['receiver_ms']:g} ms "
        f"(run with the median ratio; ratios of all runs: {result['ratios']}):",
        "",
        "| dispatch orders/s | webhook events/s per endpoint | deliveries/s | "
        "events/s ÷ orders/s | last delivery after last order |",
        "|---:|---:|---:|---:|---:|",
        f"| {result['dispatch_per_s']:,.0f} | {result['events_per_s']:,.0f} | "
        f"{result['deliveries_per_s']:,.0f} | **{result['ratio']:.2f}** | "
        f"{result['trail_s']:.2f} s |",
        "",
        f"Worker CPU: {result['cpu_ms_per_order']:.2f} ms per order alone (a burst with no "
        f"endpoint: {result['alone_per_s']:,.0f} orders/s), {result['cpu_ms_per_delivery']:.2f} "
        f"ms per delivery; with the deliveries the workers carried "
        f"{result['carried_per_s']:,.0f} orders/s.",
        "",
        f"Then {result['paced_rate']:.0f} orders/s offered evenly ({PACED_SHARE:.0%} of what the "
        f"workers carried with the deliveries): dispatch {result['paced_dispatch_per_s']:.1f} "
        f"orders/s, webhooks {result['paced_events_per_s']:.1f} events/s per endpoint, ratio "
        f"**{result['paced_ratio']:.2f}**, last delivery {result['paced_trail_s']:.2f} s after "
        "the last order.",
        "",
        f"Statuses: {result['statuses']}",
    ]
