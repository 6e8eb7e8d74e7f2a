"""``order-dispatch bench``: the product, its Celery floor, Celery's defaults and a no-queue
ceiling, in one run.

Everything runs on this machine: Redis (embedded with AOF on unless ``REDIS_URL`` is set), the
sandbox in its own process with SourceOrders answering after a fixed latency, and the systems
measured:

- **product**: ``order-dispatch worker`` as the README starts it, default settings (one process
  per core), fed through :class:`producers.enqueue.Producer`; ledger, result events, the rate
  limit and task events all on;
- **floor**: the product's Celery setup running a task that only writes its event
  (:mod:`benchmarks.floor`): what the queue itself lets through;
- **floor_call**: the same with the vendor call made the product's way first
  (:mod:`benchmarks.floor_call`): what Celery lets through when every task calls the vendor,
  before any of the pipeline's own work (ledger, gate, translation, record, logs);
- **baseline**: Celery's defaults doing the same job (:mod:`benchmarks.baseline`);
- **ceiling**: one asyncio process sending the same requests over the product's HTTP client,
  no queue at all.

Each is measured twice over: a burst (every order queued at once; orders/s from the first
enqueue to the last terminal result event, CPU seconds of the worker processes per 1,000 orders,
their peak RSS) and a fixed offered load (orders queued at an even pace; latency from enqueue to
the terminal event). Every configuration runs ``repeat`` times and the median is reported.
Then ``enqueue_many``'s rate, and one worker process's memory with many orders in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis

from benchmarks.baseline import TASK as BASELINE_TASK
from order_dispatch.contract import EventStatus
from order_dispatch.keys import Keys
from order_dispatch.settings import Settings
from order_dispatch_cli.embedded_redis import EmbeddedRedis
from order_dispatch_cli.swarm import default_processes, this_command
from order_dispatch_sandbox.runner import free_port
from order_dispatch_sandbox.sourceorders import DEFAULT_API_KEY
from producers.enqueue import Producer

SYSTEMS = ("product", "floor", "floor_call", "baseline", "ceiling")
SWEEP_LATENCIES_MS = (10, 50, 200, 1000)
SWEEP_CONCURRENCY = (8, 16, 32, 64, 128)
#: Threads per process against vendor latency (default processes): what picks the default.
SWEEP_SLOW_LATENCIES_MS = (50, 1000, 3000)
SWEEP_SLOW_CONCURRENCY = (32, 128, 256, 512)
#: High enough never to throttle the benchmark, so the limiter runs without holding orders back.
RATE_LIMIT_PER_MINUTE = 10_000_000
_TERMINAL = {s.value for s in EventStatus if s.terminal}

CHECKOUT = Path(__file__).resolve().parents[1]
#: The product's threads per worker process by default: the floor runs as many.
PRODUCT_THREADS: int = Settings.model_fields["worker_concurrency"].default


def checkout_env() -> dict[str, str]:
    """This environment with the checkout on ``PYTHONPATH``: the benchmark's Celery apps
    (:mod:`benchmarks.floor`, :mod:`benchmarks.baseline`) ship with the repository, not the
    wheel."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(CHECKOUT), path) if p)}


@dataclass(frozen=True)
class Options:
    """What one ``order-dispatch bench`` run measures."""

    orders: int = 2000
    """Orders in the product's and the ceiling's burst."""
    baseline_orders: int = 300
    latency_ms: float = 50.0
    offered: float = 300.0
    """Orders/s offered in the latency measurement."""
    offered_s: float = 5.0
    repeat: int = 3
    processes: int = 0
    """Product worker processes; 0: the worker's default, one per core."""
    in_flight: int = 1000
    """Orders one worker process holds in flight for the memory measurement (0: skip)."""
    in_flight_latency_ms: float = 10_000.0
    slow_latency_ms: float = 1000.0
    """Vendor latency of the slow-vendor run (0: skip it)."""
    slow_orders: int = 1000
    """Orders in the slow-vendor run: one burst through the product with default settings,
    timed from the first enqueue to the last terminal event."""
    sweep: bool = False
    sweep_orders: int = 1000
    enqueue_jobs: int = 5000
    systems: tuple[str, ...] = SYSTEMS
    out: Path = Path("bench-results")
    plot: bool = True
    webhooks: int = 0
    """Endpoints for ``--webhooks`` (0: the usual systems instead)."""
    receiver_ms: float = 50.0
    """How long the webhook receiver takes to answer."""


@dataclass
class Measure:
    """One measurement of one system in one configuration."""

    system: str
    config: dict[str, Any]
    orders: int = 0
    throughput: float = 0.0
    """Orders/s from the first enqueue to the last terminal event (burst)."""
    cpu_s_per_1000: float = 0.0
    peak_rss_mb: float = 0.0
    """Peak RSS of all the system's processes together."""
    offered: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    """p50/p95/p99 from enqueue to terminal event at ``offered`` orders/s."""
    statuses: dict[str, int] = field(default_factory=dict)
    peak_rss_each_mb: float = 0.0
    """Peak RSS of its largest process."""
    done_s: float = 0.0
    """Seconds from the first enqueue of the burst to its last terminal event."""


# --- the parts everything runs on -----------------------------------------------------------


class Sandbox:
    """The vendor sandbox in a child process, SourceOrders answering after a fixed latency."""

    def __init__(self, latency_ms: float, log_dir: Path) -> None:
        self.port = free_port()
        faults = json.dumps({"sourceorders": {"latency": {"ms": latency_ms}}})
        self._log = open(log_dir / "sandbox.log", "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "order_dispatch_cli", "sandbox", "--port", str(self.port),
             "--faults", faults],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.admin = f"http://127.0.0.1:{self.port}/_sandbox"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{self.admin}/health")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("the sandbox did not start") from None
                time.sleep(0.05)

    @property
    def base_url(self) -> str:
        """SourceOrders' base URL in the sandbox."""
        return f"http://127.0.0.1:{self.port}/sourceorders"

    def set_latency(self, ms: float) -> None:
        """Answer after ``ms`` from now on, and forget the orders stored so far."""
        httpx.post(f"{self.admin}/reset").raise_for_status()
        httpx.post(
            f"{self.admin}/faults/sourceorders", json={"latency": {"ms": ms}}
        ).raise_for_status()

    def close(self) -> None:
        """Stop the sandbox."""
        self.proc.terminate()
        self.proc.wait(10)
        self._log.close()


class Sampler:
    """Samples the processes (and their children) of ``pids``: peak RSS, CPU seconds used."""

    def __init__(self, pids: Sequence[int], interval_s: float = 0.05) -> None:
        self.roots = [psutil.Process(p) for p in pids]
        self.interval_s = interval_s
        self.peak_rss = 0
        self.peak_rss_each = 0
        """The highest RSS of any one process seen (a worker process, its parent, a child)."""
        self._cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree(self) -> list[psutil.Process]:
        procs: list[psutil.Process] = []
        for root in self.roots:
            with contextlib.suppress(psutil.Error):
                procs += [root, *root.children(recursive=True)]
        return procs

    def sample(self) -> None:
        """Take one sample now."""
        rss = 0
        for proc in self._tree():
            with contextlib.suppress(psutil.Error):
                one = proc.memory_info().rss
                rss += one
                self.peak_rss_each = max(self.peak_rss_each, one)
                times = proc.cpu_times()
                self._cpu[proc.pid] = times.user + times.system
        self.peak_rss = max(self.peak_rss, rss)

    @property
    def cpu_s(self) -> float:
        """CPU seconds used by every process seen so far (as of the last sample)."""
        return sum(self._cpu.values())

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> Sampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def order(n: int, tag: str) -> dict[str, Any]:
    """Job ``n`` of a run: a SourceOrders create with a job id of its own."""
    return {
        "job_id": f"{tag}-{n:06d}",
        "vendor": "sourceorders",
        "order": {
            "order_id": f"{tag}-{n:06d}",
            "placed_at": "2026-11-20T10:00:00Z",
            "ship_to": {
                "first_name": "Ada",
                "last_name": "Byron",
                "line1": "1 Main St",
                "city": "Hastings",
                "region": "MN",
                "postal_code": "55033",
                "country": "US",
            },
            "items": [{"sku": "sop_0123456789", "quantity": 1, "unit_price": "9.99"}],
        },
    }


def collect(
    client: redis.Redis, stream: str, wanted: set[str], timeout_s: float = 300.0
) -> dict[str, tuple[str, float]]:
    """Read ``stream`` from the start until every job in ``wanted`` has a terminal event:
    job id -> (status, when the event was written, Unix seconds from the stream entry id)."""
    done: dict[str, tuple[str, float]] = {}
    last = "0-0"
    deadline = time.monotonic() + timeout_s
    while len(done) < len(wanted):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{len(wanted) - len(done)} of {len(wanted)} orders had no terminal event "
                f"after {timeout_s:.0f} s"
            )
        reply: Any = client.xread({stream: last}, count=1000, block=200)
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                last = entry_id.decode()
                job_id = fields[b"job_id"].decode()
                status = fields[b"status"].decode()
                if job_id in wanted and status in _TERMINAL and job_id not in done:
                    done[job_id] = (status, int(last.split("-")[0]) / 1000)
    return done


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50, p95 and p99 of ``values`` (seconds) in milliseconds."""
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": cuts[49] * 1000, "p95": cuts[94] * 1000, "p99": cuts[98] * 1000}


def _count(statuses: Sequence[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return counts


# --- queued systems: product and baseline ----------------------------------------------------


@dataclass
class Queued:
    """A queued system under test: how to start its workers, queue orders, find their events."""

    name: str
    commands: list[list[str]]
    env: dict[str, str]
    stream: str
    enqueue: Callable[[list[dict[str, Any]]], None]

    @contextlib.contextmanager
    def running(self, log_dir: Path) -> Iterator[list[int]]:
        """Start the worker processes; stop them (SIGTERM, warm shutdown) on leaving."""
        logs = [open(log_dir / f"{self.name}-{i}.log", "ab") for i in range(len(self.commands))]  # noqa: SIM115
        procs = [
            subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
            for cmd, log in zip(self.commands, logs, strict=True)
        ]
        try:
            yield [p.pid for p in procs]
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for log in logs:
                log.close()


def measure_queued(
    system: Queued,
    client: redis.Redis,
    config: dict[str, Any],
    orders: int,
    offered: float,
    offered_s: float,
    log_dir: Path,
) -> Measure:
    """Burst then fixed offered load through ``system``'s running workers."""
    tag = uuid.uuid4().hex[:8]
    result = Measure(system.name, config, orders=orders)
    with system.running(log_dir) as pids:
        # Warm up: the workers are up and connected once these come back.
        warm = [order(n, f"{tag}w") for n in range(20)]
        system.enqueue(warm)
        collect(client, system.stream, {j["job_id"] for j in warm}, timeout_s=120)
        jobs = [order(n, f"{tag}b") for n in range(orders)]
        with Sampler(pids) as sampler:
            cpu_before = sampler.cpu_s
            started = time.time()
            for i in range(0, orders, 500):
                system.enqueue(jobs[i : i + 500])
            done = collect(client, system.stream, {j["job_id"] for j in jobs})
            sampler.sample()
            cpu = sampler.cpu_s - cpu_before
        result.done_s = max(t for _s, t in done.values()) - started
        result.throughput = orders / result.done_s
        result.cpu_s_per_1000 = cpu / orders * 1000
        result.peak_rss_mb = sampler.peak_rss / 2**20
        result.peak_rss_each_mb = sampler.peak_rss_each / 2**20
        result.statuses = _count([s for s, _t in done.values()])
        if offered_s > 0:
            result.offered = offered
            sent = paced(system.enqueue, f"{tag}l", offered, offered_s)
            got = collect(client, system.stream, set(sent))
            result.latency_ms = percentiles([got[j][1] - t for j, t in sent.items()])
            for status, n in _count([s for s, _t in got.values()]).items():
                result.statuses[status] = result.statuses.get(status, 0) + n
    return result


def paced(
    enqueue: Callable[[list[dict[str, Any]]], None], tag: str, rate: float, seconds: float
) -> dict[str, float]:
    """Queue ``rate`` orders a second for ``seconds``, evenly; job id -> when it was queued."""
    total = int(rate * seconds)
    sent: dict[str, float] = {}
    started = time.time()
    n = 0
    while n < total:
        due = min(total, int((time.time() - started) * rate) + 1)
        if due > n:
            batch = [order(i, tag) for i in range(n, due)]
            now = time.time()
            enqueue(batch)
            sent.update((j["job_id"], now) for j in batch)
            n = due
        time.sleep(max(0.0, started + n / rate - time.time()))
    return sent


def product(
    client: redis.Redis,
    redis_url: str,
    sandbox: Sandbox,
    processes: int,
    *,
    events: bool = True,
    threads: int = 0,
    settings: dict[str, str] | None = None,
) -> Queued:
    """The product as the README runs it: ``order-dispatch worker``, default settings."""
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    account = {
        "base_url": sandbox.base_url,
        "credentials": {"api_key": DEFAULT_API_KEY},
        "rate_limit_per_minute": RATE_LIMIT_PER_MINUTE,
    }
    env = {
        **os.environ,
        "ORDER_DISPATCH_REDIS_URL": redis_url,
        "ORDER_DISPATCH_KEY_PREFIX": prefix,
        "ORDER_DISPATCH_ACCOUNTS": json.dumps({"sourceorders": {"default": account}}),
        "ORDER_DISPATCH_TASK_EVENTS": "true" if events else "false",
    }
    if threads:
        env["ORDER_DISPATCH_WORKER_CONCURRENCY"] = str(threads)
        # The HTTP pool at or above the threads, as the README's tuning table asks.
        env["ORDER_DISPATCH_HTTP__MAX_CONNECTIONS"] = str(max(100, threads))
    env.update(settings or {})
    producer = Producer(client, key_prefix=prefix)
    command = [*this_command(), "--hostname", f"bench-{prefix}@%h"]
    if processes:  # else the default: one process per core
        command += ["--processes", str(processes)]

    def enqueue(jobs: list[dict[str, Any]]) -> None:
        producer.enqueue_many(jobs)

    return Queued("product", [command], env, Keys(prefix).results, enqueue)


def baseline(redis_url: str, sandbox: Sandbox) -> Queued:
    """Celery's defaults doing the same job (see :mod:`benchmarks.baseline`)."""
    from benchmarks.baseline import app

    queue = f"bench-baseline-{uuid.uuid4().hex[:6]}"
    env = {
        **checkout_env(),
        "BENCH_BASELINE_REDIS_URL": redis_url,
        "BENCH_BASELINE_STREAM": f"{queue}-results",
        "BENCH_BASELINE_BASE_URL": sandbox.base_url,
        "BENCH_BASELINE_API_KEY": DEFAULT_API_KEY,
    }
    command = [sys.executable, "-m", "celery", "-A", "benchmarks.baseline", "worker", "-Q",
               queue, "--loglevel", "WARNING", "--hostname", f"{queue}@%h"]
    app.conf.update(broker_url=redis_url)

    def enqueue(jobs: list[dict[str, Any]]) -> None:
        for job in jobs:
            app.send_task(BASELINE_TASK, args=[job], queue=queue)

    return Queued("baseline", [command], env, f"{queue}-results", enqueue)


def floor(
    client: redis.Redis, redis_url: str, processes: int, sandbox: Sandbox | None = None
) -> Queued:
    """The product's Celery setup with a task that only writes its event
    (:mod:`benchmarks.floor`), as many processes as the product runs; with ``sandbox``, a task
    that makes the vendor call first (:mod:`benchmarks.floor_call`)."""
    from benchmarks import floor as floor_app
    from benchmarks import floor_call as floor_call_app
    from order_dispatch.broker import dispatch_kwargs, queue_key, task_message

    app_module = floor_app if sandbox is None else floor_call_app
    module, task = app_module.__name__, app_module.TASK
    name = module.rsplit(".", 1)[1]
    queue = f"bench-{name.replace('_', '-')}-{uuid.uuid4().hex[:6]}"
    env = {
        **checkout_env(),
        "ORDER_DISPATCH_REDIS_URL": redis_url,
        "ORDER_DISPATCH_KEY_PREFIX": queue,
        "BENCH_FLOOR_STREAM": f"{queue}-results",
    }
    if sandbox is not None:
        env["BENCH_FLOOR_VENDOR_URL"] = sandbox.base_url
        env["BENCH_FLOOR_API_KEY"] = DEFAULT_API_KEY
    commands = [
        [sys.executable, "-m", "celery", "-A", module, "worker", "--pool",
         "threads", "--concurrency", str(PRODUCT_THREADS), "-Q", queue, "--task-events",
         "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
         "--hostname", f"{queue}-{n}@%h"]
        for n in range(processes)
    ]
    def enqueue(jobs: list[dict[str, Any]]) -> None:
        pipe = client.pipeline(transaction=False)
        for job in jobs:
            pipe.lpush(queue_key(queue, 0), task_message(
                str(uuid.uuid4()), dispatch_kwargs(job["job_id"], run=1, attempt=1),
                queue=queue, task=task))
        pipe.execute()

    return Queued(name, commands, env, f"{queue}-results", enqueue)


# --- the ceiling: no queue --------------------------------------------------------------------


def _ceiling_child(
    base_url: str, orders: int, offered: float, offered_s: float, pool: int, out: Any
) -> None:
    """In a process of its own: the burst and the paced load, straight to the vendor."""
    import resource

    from order_dispatch.contract import Job
    from order_dispatch.settings import HttpSettings, VendorAccount
    from worker.http import new_client
    from worker.vendors.sourceorders import SourceOrders

    vendor = SourceOrders(
        VendorAccount.model_validate(
            {"base_url": base_url, "credentials": {"api_key": DEFAULT_API_KEY}}
        )
    )

    async def main() -> dict[str, Any]:
        client = new_client(HttpSettings(max_connections=pool))
        gate = asyncio.Semaphore(pool)
        statuses: list[str] = []

        async def send(job: dict[str, Any]) -> float:
            async with gate:
                request = vendor.authorize(vendor.translate(Job.model_validate(job)), None)
                response = await client.request(
                    request.method,
                    request.url(base_url),
                    content=request.body(),
                    headers={**request.headers, "Content-Type": "application/json"},
                )
                statuses.append("accepted" if response.is_success else "rejected")
                return time.time()

        await asyncio.gather(*(send(order(n, "cw")) for n in range(20)))
        statuses.clear()
        jobs = [order(n, "cb") for n in range(orders)]
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.time()
        ends = await asyncio.gather(*(send(j) for j in jobs))
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        latencies: list[float] = []
        if offered_s > 0:

            async def at(n: int, due: float) -> None:
                await asyncio.sleep(max(0.0, due - time.time()))
                queued = time.time()
                latencies.append(await send(order(n, "cl")) - queued)

            begin = time.time()
            total = int(offered * offered_s)
            await asyncio.gather(*(at(n, begin + n / offered) for n in range(total)))
        await client.aclose()
        return {
            "throughput": orders / (max(ends) - started),
            "cpu_s_per_1000": cpu / orders * 1000,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "latencies": latencies,
            "statuses": _count(statuses),
        }

    out.send(asyncio.run(main()))


def measure_ceiling(
    sandbox: Sandbox, config: dict[str, Any], orders: int, offered: float, offered_s: float,
    pool: int,
) -> Measure:
    """One asyncio process, the product's HTTP client, ``pool`` requests in flight, no queue."""
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_ceiling_child, args=(sandbox.base_url, orders, offered, offered_s, pool, send)
    )
    proc.start()
    try:
        got: dict[str, Any] = receive.recv()
    finally:
        proc.join(60)
    result = Measure("ceiling", config, orders=orders, offered=offered if offered_s else 0.0)
    result.throughput = got["throughput"]
    result.cpu_s_per_1000 = got["cpu_s_per_1000"]
    result.peak_rss_mb = got["peak_rss_mb"]
    result.statuses = got["statuses"]
    if got["latencies"]:
        result.latency_ms = percentiles(got["latencies"])
    return result


# --- memory with many orders in flight --------------------------------------------------------


def measure_in_flight(
    client: redis.Redis, redis_url: str, sandbox: Sandbox, in_flight: int, latency_ms: float,
    log_dir: Path, restore_ms: float,
) -> dict[str, Any]:
    """One worker process with ``in_flight`` threads and connections, the vendor answering after
    ``latency_ms``: ``in_flight`` orders queued at once; the most held unacked at one time (the
    workers' held lists: delivered, unfinished messages), and the process's peak RSS."""
    sandbox.set_latency(latency_ms)
    queued = product(
        client, redis_url, sandbox, 1, threads=in_flight,
        settings={"ORDER_DISPATCH_HTTP__MAX_CONNECTIONS": str(in_flight)},
    )
    tag = uuid.uuid4().hex[:8]
    jobs = [order(n, f"{tag}f") for n in range(in_flight)]
    peak = 0
    try:
        with queued.running(log_dir) as pids:
            warm = [order(n, f"{tag}w") for n in range(5)]
            queued.enqueue(warm)
            collect(client, queued.stream, {j["job_id"] for j in warm}, timeout_s=120)
            with Sampler(pids) as sampler:
                for i in range(0, in_flight, 500):
                    queued.enqueue(jobs[i : i + 500])
                wanted = {j["job_id"] for j in jobs}
                deadline = time.monotonic() + latency_ms / 1000 + 60
                while peak < in_flight and time.monotonic() < deadline:
                    peak = max(peak, _held(client, queued.stream))
                    time.sleep(0.05)
                done = collect(client, queued.stream, wanted, timeout_s=latency_ms / 1000 + 300)
                sampler.sample()
    finally:
        sandbox.set_latency(restore_ms)
    return {
        "in_flight": in_flight,
        "held_at_once": peak,
        "vendor_latency_ms": latency_ms,
        "peak_rss_mb": sampler.peak_rss / 2**20,
        "statuses": _count([s for s, _t in done.values()]),
    }


def _held(client: redis.Redis, results_key: str) -> int:
    """Messages the product's workers hold (their held lists), for the prefix of
    ``results_key``."""
    keys = Keys(results_key.rsplit(":", 1)[0])
    workers = client.hkeys(keys.fetch_workers)
    if not workers:
        return 0
    pipe = client.pipeline(transaction=False)
    for worker in workers:
        pipe.llen(keys.fetch_held(worker.decode() if isinstance(worker, bytes) else worker))
    return sum(int(n) for n in pipe.execute())


def measure_slow(
    client: redis.Redis, redis_url: str, sandbox: Sandbox, options: Options, log_dir: Path
) -> Measure:
    """The product with default settings and a slow vendor: one burst of ``slow_orders``,
    timed from the first enqueue to the last terminal event, with the peak RSS of its
    largest process (median of ``repeat`` runs)."""
    sandbox.set_latency(options.slow_latency_ms)
    config = {"latency_ms": options.slow_latency_ms, "processes": 0, "events": True}
    try:
        runs = [
            measure_queued(
                product(client, redis_url, sandbox, options.processes), client, config,
                options.slow_orders, 0.0, 0.0, log_dir,
            )
            for _ in range(options.repeat)
        ]
    finally:
        sandbox.set_latency(options.latency_ms)
    return _median(runs)


# --- enqueue_many -------------------------------------------------------------------------------


def measure_enqueue(redis_url: str, jobs: int = 5000, batch: int = 500) -> dict[str, float]:
    """Orders validated and queued per second by ``enqueue_many`` (and by ``enqueue``)."""
    client = redis.Redis.from_url(redis_url)
    tag = uuid.uuid4().hex[:6]
    many = Producer(client, key_prefix=f"benchq{tag}")
    docs = [order(n, f"{tag}m") for n in range(jobs)]
    started = time.perf_counter()
    for i in range(0, jobs, batch):
        many.enqueue_many(docs[i : i + batch])
    rate_many = jobs / (time.perf_counter() - started)
    one = Producer(client, key_prefix=f"benchq{tag}1")
    singles = docs[: max(1, jobs // 5)]
    started = time.perf_counter()
    for doc in singles:
        one.enqueue(doc)
    rate_one = len(singles) / (time.perf_counter() - started)
    for prefix in (f"benchq{tag}", f"benchq{tag}1"):
        for key in client.scan_iter(f"{prefix}*", count=1000):
            client.delete(key)
    client.close()
    return {"enqueue_many": rate_many, "enqueue": rate_one, "batch": batch, "jobs": jobs}


# --- one run ----------------------------------------------------------------------------------


def _median(measures: list[Measure]) -> Measure:
    """The median of every figure over repeats of one configuration."""
    first = measures[0]
    result = Measure(first.system, first.config, orders=first.orders, offered=first.offered)
    result.throughput = statistics.median(m.throughput for m in measures)
    result.cpu_s_per_1000 = statistics.median(m.cpu_s_per_1000 for m in measures)
    result.peak_rss_mb = max(m.peak_rss_mb for m in measures)
    result.peak_rss_each_mb = max(m.peak_rss_each_mb for m in measures)
    result.done_s = statistics.median(m.done_s for m in measures)
    if all(m.latency_ms for m in measures):
        result.latency_ms = {
            k: statistics.median(m.latency_ms[k] for m in measures) for k in first.latency_ms
        }
    for m in measures:
        for status, n in m.statuses.items():
            result.statuses[status] = result.statuses.get(status, 0) + n
    return result


def run(options: Options, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Everything ``options`` asks for; the results as a JSON-ready dict (also written out)."""
    options.out.mkdir(parents=True, exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix="od-bench-"))
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
        "logs": str(log_dir),
    }
    # Append-only on, as the README asks of a production Redis (and workers may insist on it).
    embedded = None if os.environ.get("REDIS_URL") else EmbeddedRedis(appendonly=True).start()
    redis_url = embedded.url if embedded else os.environ["REDIS_URL"]
    client = redis.Redis.from_url(redis_url)
    sandbox = Sandbox(options.latency_ms, log_dir)
    try:
        if options.webhooks:
            results["webhooks"] = _webhooks(options, client, redis_url, sandbox, log_dir, say)
            return results
        say(f"enqueue_many: validating and queueing {options.enqueue_jobs} orders")
        results["enqueue"] = measure_enqueue(redis_url, options.enqueue_jobs)
        say(f"  {results['enqueue']['enqueue_many']:,.0f} orders/s")
        results["main"] = [asdict(m) for m in _main(options, client, redis_url, sandbox, log_dir,
                                                      say)]
        if options.slow_latency_ms and options.slow_orders:
            say(f"slow vendor: {options.slow_orders} orders at "
                f"{options.slow_latency_ms:g} ms, default settings")
            slow = measure_slow(client, redis_url, sandbox, options, log_dir)
            results["slow"] = asdict(slow)
            say(f"  done {slow.done_s:.1f} s after enqueue, largest process "
                f"{slow.peak_rss_each_mb:.0f} MB; " + _line(slow))
        if options.in_flight:
            say(f"memory: one worker process holding {options.in_flight} orders in flight")
            results["in_flight"] = measure_in_flight(
                client, redis_url, sandbox, options.in_flight, options.in_flight_latency_ms,
                log_dir, options.latency_ms,
            )
            say(f"  {results['in_flight']['held_at_once']} held at once, peak RSS "
                f"{results['in_flight']['peak_rss_mb']:.0f} MB {results['in_flight']['statuses']}")
        if options.sweep:
            results["sweep"] = [asdict(m) for m in _sweep(options, client, redis_url, sandbox,
                                                           log_dir, say)]
    finally:
        sandbox.close()
        client.close()
        if embedded is not None:
            embedded.cleanup()
    write_reports(results, options.out, plot=options.plot)
    return results


def _main(
    options: Options, client: redis.Redis, redis_url: str, sandbox: Sandbox, log_dir: Path,
    say: Callable[[str], None],
) -> list[Measure]:
    processes = options.processes or default_processes()
    config = {"latency_ms": options.latency_ms, "processes": processes, "events": True}
    runs: dict[str, list[Measure]] = {s: [] for s in options.systems}
    for i in range(options.repeat):
        for system in options.systems:
            say(f"[{i + 1}/{options.repeat}] {system}")
            if system == "ceiling":
                m = measure_ceiling(sandbox, config, options.orders, options.offered,
                                    options.offered_s, pool=100)
            else:
                if system == "product":
                    queued = product(client, redis_url, sandbox, options.processes)
                elif system == "floor":
                    queued = floor(client, redis_url, processes)
                elif system == "floor_call":
                    queued = floor(client, redis_url, processes, sandbox)
                else:
                    queued = baseline(redis_url, sandbox)
                orders = options.baseline_orders if system == "baseline" else options.orders
                # The baseline cannot keep up with the offered load: a short burst of it shows
                # how its latency grows without taking minutes.
                offered_s = options.offered_s if system != "baseline" else min(
                    options.offered_s, 1.0)
                m = measure_queued(queued, client, config, orders, options.offered, offered_s,
                                   log_dir)
            say("  " + _line(m))
            runs[system].append(m)
    return [_median(ms) for ms in runs.values()]


def _webhooks(
    options: Options, client: redis.Redis, redis_url: str, sandbox: Sandbox, log_dir: Path,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Dispatch beside webhook deliveries (:mod:`benchmarks.webhooks`), ``repeat`` runs."""
    from benchmarks import webhooks

    runs = []
    for i in range(options.repeat):
        say(f"[{i + 1}/{options.repeat}] product with {options.webhooks} webhook endpoints")
        m = webhooks.measure_webhooks(
            lambda settings: product(client, redis_url, sandbox, options.processes,
                                     settings=settings),
            client, order, orders=options.orders, endpoints=options.webhooks,
            receiver_ms=options.receiver_ms, log_dir=log_dir, paced=paced,
            paced_s=max(options.offered_s, 10.0) if options.offered_s else 0.0,
        )
        say(f"  dispatch {m.dispatch_per_s:,.0f} orders/s, webhooks {m.events_per_s:,.0f} "
            f"events/s per endpoint ({m.deliveries_per_s:,.0f} deliveries/s), ratio "
            f"{m.ratio:.2f}, last delivery {m.trail_s:.2f} s after the last order {m.statuses}; "
            f"CPU {m.cpu_ms_per_order:.2f} ms per order alone ({m.alone_per_s:,.0f}/s), "
            f"{m.cpu_ms_per_delivery:.2f} ms per delivery, {m.carried_per_s:,.0f} orders/s "
            "carried with deliveries; "
            f"paced at {m.paced_rate:.0f}/s: ratio {m.paced_ratio:.2f}, last delivery "
            f"{m.paced_trail_s:.2f} s after the last order")
        runs.append(m)
    return webhooks.median(runs)


def _sweep(
    options: Options, client: redis.Redis, redis_url: str, sandbox: Sandbox, log_dir: Path,
    say: Callable[[str], None],
) -> list[Measure]:
    configs: list[dict[str, Any]] = [
        {"latency_ms": lat, "processes": p, "events": ev, "threads": 0}
        for lat in SWEEP_LATENCIES_MS for p in (1, 2) for ev in (True, False)
    ]
    configs += [{"latency_ms": 50, "processes": 1, "events": True, "threads": t}
                for t in SWEEP_CONCURRENCY]
    # A slow vendor needs orders in flight, not cores: in flight = orders/s x latency. Threads
    # per process against memory per process, at the default processes.
    configs += [{"latency_ms": lat, "processes": default_processes(), "events": True,
                 "threads": t}
                for lat in SWEEP_SLOW_LATENCIES_MS for t in SWEEP_SLOW_CONCURRENCY]
    runs: list[list[Measure]] = [[] for _ in configs]
    repeats = max(1, min(options.repeat, 2))
    for i in range(repeats):
        for n, config in enumerate(configs):
            sandbox.set_latency(config["latency_ms"])
            orders = options.sweep_orders
            say(f"[sweep {i + 1}/{repeats}] {config}")
            queued = product(client, redis_url, sandbox, config["processes"],
                             events=config["events"],
                             threads=config["threads"])
            m = measure_queued(queued, client, config, orders, 0.0, 0.0, log_dir)
            say("  " + _line(m))
            runs[n].append(m)
    sandbox.set_latency(options.latency_ms)
    return [_median(ms) for ms in runs]


def _line(m: Measure) -> str:
    lat = m.latency_ms
    at = f", p50/p99 {lat['p50']:.0f}/{lat['p99']:.0f} ms at {m.offered:.0f}/s" if lat else ""
    return (f"{m.throughput:7.0f} orders/s, {m.cpu_s_per_1000:5.2f} CPU s/1000, "
            f"{m.peak_rss_mb:4.0f} MB{at} {m.statuses}")


# --- reports ------------------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    """The results as Markdown tables."""
    if "webhooks" in results:
        from benchmarks import webhooks

        return "\n".join(webhooks.markdown(results["webhooks"])).strip() + "\n"
    opts = results["options"]
    main = {m["system"]: m for m in results["main"]}
    lines = [
        f"Vendor latency {opts['latency_ms']:g} ms; burst of {opts['orders']} orders "
        f"(baseline {opts['baseline_orders']}); latency at {opts['offered']:g} orders/s offered "
        f"for {opts['offered_s']:g} s (baseline 1 s); median of {opts['repeat']} runs; "
        f"{results['machine']['cpus']} CPUs.",
        "",
        "| system | orders/s | p50 ms | p95 ms | p99 ms | CPU s / 1,000 orders | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in SYSTEMS:
        if name not in main:
            continue
        m = main[name]
        lat = m["latency_ms"] or {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
        lines.append(
            f"| {name} | {m['throughput']:,.0f} | {lat['p50']:,.0f} | {lat['p95']:,.0f} | "
            f"{lat['p99']:,.0f} | {m['cpu_s_per_1000']:.2f} | {m['peak_rss_mb']:.0f} |"
        )
    lines.append("")
    if "product" in main:
        p = main["product"]["throughput"]
        for other in ("floor", "floor_call", "baseline", "ceiling"):
            if other in main:
                lines.append(f"- product / {other}: **{p / main[other]['throughput']:.2f}**")
    if {"product", "floor", "floor_call"} <= main.keys():
        cpu = {name: main[name]["cpu_s_per_1000"] for name in ("product", "floor", "floor_call")}
        lines.append(
            f"- CPU per order: the queue **{cpu['floor']:.2f} ms** (floor), one vendor call "
            f"inside Celery **{cpu['floor_call'] - cpu['floor']:.2f} ms** (floor_call - floor), "
            f"the pipeline's own **{cpu['product'] - cpu['floor_call']:.2f} ms** "
            f"(product - floor_call)"
        )
    lines.append(f"- `enqueue_many`: **{results['enqueue']['enqueue_many']:,.0f}** orders/s "
                 f"validated and queued (batches of {results['enqueue']['batch']}); "
                 f"`enqueue` one at a time: {results['enqueue']['enqueue']:,.0f}/s")
    if results.get("slow"):
        slow = results["slow"]
        lines.append(
            f"- slow vendor ({slow['config']['latency_ms'] / 1000:g} s), default settings: "
            f"{slow['orders']:,} orders done **{slow['done_s']:.1f} s** after enqueue "
            f"({slow['throughput']:,.0f} orders/s), largest worker process "
            f"**{slow['peak_rss_each_mb']:.0f} MB**, {slow['cpu_s_per_1000']:.2f} CPU s / 1,000"
        )
    if results.get("in_flight"):
        f = results["in_flight"]
        lines.append(
            f"- memory: one worker process with {f['in_flight']:,} threads and connections, "
            f"the vendor answering after {f['vendor_latency_ms'] / 1000:g} s: "
            f"**{f['held_at_once']:,}** orders in flight at once, peak RSS "
            f"**{f['peak_rss_mb']:.0f} MB**"
        )
    if results.get("sweep"):
        lines += ["", "Sweep (product, burst; median):", "",
                  "| vendor latency ms | processes | threads each | task events | orders/s | "
                  "orders/s per process | done s | CPU s / 1,000 | peak RSS MB | "
                  "largest process MB |",
                  "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
        for m in results["sweep"]:
            c = m["config"]
            lines.append(
                f"| {c['latency_ms']} | {c['processes']} | {c['threads'] or 'default'} | "
                f"{'on' if c['events'] else 'off'} | {m['throughput']:,.0f} | "
                f"{m['throughput'] / c['processes']:,.0f} | {m.get('done_s', 0):.1f} | "
                f"{m['cpu_s_per_1000']:.2f} | {m['peak_rss_mb']:.0f} | "
                f"{m.get('peak_rss_each_mb', 0):.0f} |"
            )
    return "\n".join(lines) + "\n"


def write_reports(results: dict[str, Any], out: Path, *, plot: bool) -> None:
    """``results.json``, ``results.md`` and, with matplotlib installed, ``results.png``."""
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(results))
    if plot:
        with contextlib.suppress(ImportError):
            _plot(results, out / "results.png")


def _plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    main = list(results["main"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    names = [m["system"] for m in main]
    left.bar(names, [m["throughput"] for m in main], color=[f"C{n}" for n in range(len(main))])
    left.set_ylabel("orders/s end to end")
    left.set_title(f"Throughput, {results['options']['latency_ms']:g} ms vendor latency")
    for m in main:
        if m["latency_ms"]:
            right.plot(["p50", "p95", "p99"], [m["latency_ms"][k] for k in ("p50", "p95", "p99")],
                       marker="o", label=m["system"])
    right.set_yscale("log")
    right.set_ylabel("ms from enqueue to terminal event")
    right.set_title(f"Latency at {results['options']['offered']:g} orders/s offered")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
