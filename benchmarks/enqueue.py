"""Enqueue throughput: ``enqueue_many`` (one pipelined round trip) against one ``enqueue`` per job.

Both write the same kind of jobs to an embedded Redis on this machine; the per-job loop is the
baseline. Validation is included in both (it is part of enqueueing).

    python benchmarks/enqueue.py [--jobs 5000] [--batch 500]
"""

from __future__ import annotations

import argparse
import time
import uuid

import redis

from cli.embedded_redis import EmbeddedRedis
from producers.enqueue import Producer


def _job(n: int, tag: str) -> dict[str, object]:
    return {"vendor": "sourceorders", "order": {
        "order_id": f"{tag}-{n:06d}", "placed_at": "2026-11-20T10:00:00Z",
        "ship_to": {"line1": "1 Main St", "city": "Hastings", "postal_code": "55033",
                    "country": "US"},
        "items": [{"sku": "sop_1", "quantity": 1, "unit_price": "9.99"}],
    }}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)
        one = Producer(client, key_prefix=f"b1-{uuid.uuid4().hex[:4]}")
        many = Producer(client, key_prefix=f"b2-{uuid.uuid4().hex[:4]}")
        jobs = [_job(n, "x") for n in range(args.jobs)]

        started = time.perf_counter()
        for job in jobs:
            one.enqueue(job)
        loop = args.jobs / (time.perf_counter() - started)

        started = time.perf_counter()
        for i in range(0, args.jobs, args.batch):
            many.enqueue_many(jobs[i:i + args.batch])
        batched = args.jobs / (time.perf_counter() - started)

        started = time.perf_counter()
        for i in range(0, args.jobs, args.batch):
            many.enqueue_many(jobs[i:i + args.batch])
        dupes = args.jobs / (time.perf_counter() - started)

    print(f"{args.jobs} jobs")
    print(f"baseline: enqueue() one by one:       {loop:8,.0f} jobs/s")
    print(f"enqueue_many(), batches of {args.batch:<5}:    {batched:8,.0f} jobs/s "
          f"({batched / loop:.1f}x)")
    print(f"enqueue_many(), all duplicates:        {dupes:8,.0f} jobs/s")


if __name__ == "__main__":
    main()
