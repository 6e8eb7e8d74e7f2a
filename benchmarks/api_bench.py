"""``order-dispatch bench --api``: the HTTP API's intake against ``Producer`` from Python.

On this machine, in one run: Redis (embedded with AOF on unless ``REDIS_URL`` is set),
``order-dispatch api`` with ``workers`` processes, and load generators in their own processes:
``wrk`` for the closed-loop single-job measure when it is installed (:mod:`benchmarks.api_wrk`),
else and for the others aiohttp over keep-alive connections (:mod:`benchmarks.api_load`).
Measured:

- **floor**: ``Producer.enqueue`` one job at a time and ``enqueue_many`` in batches of 500, from
  Python in this process (what the API wraps);
- **single**: ``POST /v1/jobs``, one job a request, as fast as the connections go (jobs/s;
  wrk's latencies are from each request's sending);
- **latency**: ``POST /v1/jobs`` at a fixed offered rate, latency from when each request was
  due (p50, p95, p99);
- **batch**: ``POST /v1/jobs/batch`` with ``batch`` jobs a request (jobs/s).

Every job is new (its own job id), so each is validated, stored and queued.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import redis

from benchmarks import api_wrk
from benchmarks.api_load import run_in_process
from benchmarks.harness import measure_enqueue, order, percentiles
from order_dispatch.keys import Keys
from order_dispatch_api.keystore import KeyStore, Scope
from order_dispatch_cli.embedded_redis import EmbeddedRedis
from order_dispatch_sandbox.runner import free_port


@dataclass(frozen=True)
class ApiOptions:
    """What ``bench --api`` runs."""

    workers: int = 2
    single_jobs: int = 6000
    """Jobs of the single-job measure with the Python generator."""
    single_s: float = 5.0
    """Seconds of the single-job measure with wrk."""
    wrk: bool = True
    """Use wrk for the single-job measure when it is installed."""
    connections: int = 32
    offered: float = 750.0
    offered_s: float = 6.0
    batch: int = 500
    batch_jobs: int = 30_000
    batch_connections: int = 4
    floor_jobs: int = 5000


class _Api:
    def __init__(self, redis_url: str, prefix: str, workers: int, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("ORDER_DISPATCH_") and k != "REDIS_URL"
        }
        env.update({"ORDER_DISPATCH_REDIS_URL": redis_url, "ORDER_DISPATCH_KEY_PREFIX": prefix})
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "order_dispatch_cli",
                "api",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"api exited {self.proc.returncode}: see {log}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"api not ready: see {log}")
            time.sleep(0.2)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _bodies(n: int, tag: str) -> list[bytes]:
    return [json.dumps(order(i, tag)).encode() for i in range(n)]


def _rate_line(result: dict[str, Any], jobs: int) -> dict[str, Any]:
    lat = result.get("latency_ms") or percentiles(result["latencies"])
    return {
        "jobs": jobs,
        "jobs_per_s": jobs / result["elapsed_s"],
        "latency_ms": lat,
        "statuses": {str(k): v for k, v in result["statuses"].items()},
        "generator": result.get("generator", "python"),
    }


def run_api(options: ApiOptions, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Every measure of :class:`ApiOptions`; the results as a JSON-ready dict."""
    embedded = None if os.environ.get("REDIS_URL") else EmbeddedRedis(appendonly=True).start()
    redis_url = embedded.url if embedded else os.environ["REDIS_URL"]
    prefix = f"benchapi{uuid.uuid4().hex[:6]}"
    client = redis.Redis.from_url(redis_url)
    token, _ = KeyStore(client, Keys(prefix)).create("bench", {Scope.ENQUEUE}, 10_000_000)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    log = Path(tempfile.gettempdir()) / f"od-bench-api-{prefix}.log"
    results: dict[str, Any] = {"options": asdict(options), "cpus": os.cpu_count()}
    api = _Api(redis_url, prefix, options.workers, log)
    try:
        say(f"floor: Producer.enqueue and enqueue_many, {options.floor_jobs} jobs")
        results["floor"] = measure_enqueue(redis_url, options.floor_jobs)
        say(
            f"  enqueue {results['floor']['enqueue']:,.0f}/s, "
            f"enqueue_many {results['floor']['enqueue_many']:,.0f}/s"
        )
        if options.wrk and api_wrk.available():
            say(
                f"single: POST /v1/jobs for {options.single_s:g} s, {options.connections} "
                "connections (wrk)"
            )
            single = api_wrk.run(
                api.url,
                "/v1/jobs",
                headers,
                order(0, f"s{prefix}"),
                id_field="job_id",
                tag=f"s{prefix}",
                connections=options.connections,
                seconds=options.single_s,
            )
            results["single"] = _rate_line(single, single["requests"])
        else:
            say(
                f"single: POST /v1/jobs, {options.single_jobs} jobs, {options.connections} "
                "connections"
            )
            bodies = _bodies(options.single_jobs, f"s{prefix}")
            single = run_in_process(
                "closed", api.url + "/v1/jobs", headers, bodies, options.connections
            )
            results["single"] = _rate_line(single, options.single_jobs)
        say(f"  {results['single']['jobs_per_s']:,.0f} jobs/s {results['single']['statuses']}")
        n = int(options.offered * options.offered_s)
        say(f"latency: POST /v1/jobs at {options.offered:g}/s for {options.offered_s:g} s")
        paced = run_in_process(
            "offered", api.url + "/v1/jobs", headers, _bodies(n, f"l{prefix}"), options.offered, 64
        )
        results["latency"] = _rate_line(paced, n)
        lat = results["latency"]["latency_ms"]
        say(
            f"  p50 {lat['p50']:.1f} p95 {lat['p95']:.1f} p99 {lat['p99']:.1f} ms "
            f"{results['latency']['statuses']}"
        )
        say(f"batch: POST /v1/jobs/batch, {options.batch_jobs} jobs in batches of {options.batch}")
        tag = f"b{prefix}"
        jobs = [order(i, tag) for i in range(options.batch_jobs)]
        batches = [
            json.dumps({"jobs": jobs[i : i + options.batch]}).encode()
            for i in range(0, len(jobs), options.batch)
        ]
        batched = run_in_process(
            "closed", api.url + "/v1/jobs/batch", headers, batches, options.batch_connections
        )
        results["batch"] = _rate_line(batched, options.batch_jobs)
        say(f"  {results['batch']['jobs_per_s']:,.0f} jobs/s {results['batch']['statuses']}")
    finally:
        api.close()
        for key in client.scan_iter(f"{prefix}*", count=1000):
            client.delete(key)
        client.close()
        if embedded is not None:
            embedded.cleanup()
    return results


def markdown(results: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    o = results["options"]
    floor = results["floor"]
    single, paced, batch = results["single"], results["latency"], results["batch"]
    lat = paced["latency_ms"]
    rows = [
        f"HTTP API: {o['workers']} API processes, the load generator and Redis on "
        f"{results['cpus']} CPUs.",
        "",
        "| what | jobs/s | p50 ms | p95 ms | p99 ms | answers |",
        "|---|---:|---:|---:|---:|---|",
        f"| `Producer.enqueue` (Python, one at a time) | {floor['enqueue']:,.0f} | | | | |",
        f"| `Producer.enqueue_many` (Python, batches of {floor['batch']}) | "
        f"{floor['enqueue_many']:,.0f} | | | | |",
        f"| `POST /v1/jobs`, {o['connections']} keep-alive connections "
        f"({single.get('generator', 'python')}) | "
        f"{single['jobs_per_s']:,.0f} | {single['latency_ms']['p50']:.1f} | "
        f"{single['latency_ms']['p95']:.1f} | {single['latency_ms']['p99']:.1f} | "
        f"{single['statuses']} |",
        f"| `POST /v1/jobs` at {o['offered']:g}/s offered | {paced['jobs_per_s']:,.0f} | "
        f"{lat['p50']:.1f} | {lat['p95']:.1f} | {lat['p99']:.1f} | {paced['statuses']} |",
        f"| `POST /v1/jobs/batch`, {o['batch']} a batch | {batch['jobs_per_s']:,.0f} | "
        f"{batch['latency_ms']['p50']:.1f} | {batch['latency_ms']['p95']:.1f} | "
        f"{batch['latency_ms']['p99']:.1f} | {batch['statuses']} |",
    ]
    return "\n".join(rows) + "\n"
