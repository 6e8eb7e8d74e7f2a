"""``order-dispatch demo``, the README's first command, run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.integration.conftest import ROOT
from worker.vendors import known_vendors

pytestmark = pytest.mark.integration


def test_the_demo_sends_every_vendor_an_order_and_exits_0() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDER_DISPATCH_")}
    env.pop("REDIS_URL", None)  # the demo starts its own Redis

    done = subprocess.run(
        [sys.executable, "-m", "order_dispatch_cli", "demo", "--timeout", "120"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    per_vendor = done.stdout.split("Per vendor:")[1].splitlines()
    for vendor in known_vendors():
        [line] = [line for line in per_vendor if line.strip().startswith(vendor + " ")]
        assert "accepted" in line, line
    assert "Summary: all 9 orders ended: 8 accepted, 1 rejected" in done.stdout
