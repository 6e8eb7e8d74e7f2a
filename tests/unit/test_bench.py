"""The benchmark's own arithmetic: percentiles, the even pace of the offered load, the report."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import pytest

from benchmarks.harness import Measure, markdown, paced, percentiles


def test_percentiles_are_milliseconds_of_the_nearest_ranks() -> None:
    cuts = percentiles([n / 1000 for n in range(1, 101)])  # 1..100 ms, in seconds
    assert cuts["p50"] == pytest.approx(50.5)
    assert cuts["p95"] == pytest.approx(95.05)
    assert cuts["p99"] == pytest.approx(99.01)


def test_paced_queues_the_offered_rate_evenly() -> None:
    batches: list[list[dict[str, Any]]] = []
    started = time.time()
    sent = paced(batches.append, "t", rate=200, seconds=0.5)
    assert len(sent) == 100
    assert len({j["job_id"] for b in batches for j in b}) == 100
    # A pace, not a burst: no order goes before its turn (order n at n / rate s). A starved
    # process may send late, in a bigger batch, never early, so this holds on a loaded machine.
    for n, job_id in enumerate(sorted(sent)):
        assert sent[job_id] >= started + n / 200 - 0.001, (job_id, sent[job_id] - started)
    assert len(batches) > 10


def test_report_has_every_system_and_the_ratios() -> None:
    lat = {"p50": 55.0, "p95": 60.0, "p99": 70.0}
    main = [
        Measure("product", {}, 100, 600.0, 1.5, 90.0, offered=300.0, latency_ms=lat),
        Measure("floor", {}, 100, 1000.0, 1.0, 140.0, offered=300.0, latency_ms=lat),
        Measure("floor_call", {}, 100, 750.0, 1.25, 150.0, offered=300.0, latency_ms=lat),
        Measure("baseline", {}, 100, 40.0, 3.0, 230.0, offered=300.0, latency_ms=lat),
        Measure("ceiling", {}, 100, 1200.0, 0.5, 80.0, offered=300.0, latency_ms=lat),
    ]
    results = {
        "machine": {"cpus": 2},
        "options": {"latency_ms": 50, "orders": 100, "baseline_orders": 50, "offered": 300,
                    "offered_s": 5, "repeat": 3},
        "enqueue": {"enqueue_many": 6000.0, "enqueue": 2000.0, "batch": 500},
        "main": [asdict(m) for m in main],
        "in_flight": {"in_flight": 1000, "held_at_once": 998, "vendor_latency_ms": 10000.0,
                      "peak_rss_mb": 193.4, "statuses": {"accepted": 1000}},
    }
    text = markdown(results)
    assert "| product | 600 | 55 | 60 | 70 | 1.50 | 90 |" in text
    assert "product / baseline: **15.00**" in text
    assert "product / floor: **0.60**" in text
    assert "product / floor_call: **0.80**" in text
    assert "| floor_call | 750 | 55 | 60 | 70 | 1.25 | 150 |" in text
    assert (
        "CPU per order: the queue **1.00 ms** (floor), one vendor call inside Celery **0.25 ms** "
        "(floor_call - floor), the pipeline's own **0.25 ms** (product - floor_call)"
    ) in text
    assert "**998** orders in flight at once, peak RSS **193 MB**" in text
    assert "product / ceiling: **0.50**" in text
    assert "**6,000** orders/s" in text
