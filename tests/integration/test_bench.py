"""``order-dispatch bench --quick`` runs every system and the slow-vendor run for real and
writes its reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration


def test_quick_bench_measures_every_system_and_writes_its_reports(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ORDER_DISPATCH_") and k != "REDIS_URL"}
    run = subprocess.run(
        [sys.executable, "-m", "order_dispatch_cli", "bench", "--quick", "--orders", "200",
         "--in-flight", "50",
         "--out", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )

    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    main = {m["system"]: m for m in results["main"]}
    assert set(main) == {"product", "floor", "floor_call", "baseline", "ceiling"}
    for name, m in main.items():
        assert m["throughput"] > 0, name
        assert set(m["statuses"]) == {"accepted"}, (name, m["statuses"])
    assert main["product"]["config"]["processes"] == len(os.sched_getaffinity(0))
    assert results["in_flight"]["held_at_once"] == 50
    slow = results["slow"]
    assert slow["statuses"] == {"accepted": 100}
    assert slow["done_s"] >= 1.0  # the vendor answers after 1 s
    assert 0 < slow["peak_rss_each_mb"] <= slow["peak_rss_mb"]
    assert results["enqueue"]["enqueue_many"] > 0
    assert "| product |" in (tmp_path / "results.md").read_text()
    assert "product / floor" in run.stdout
