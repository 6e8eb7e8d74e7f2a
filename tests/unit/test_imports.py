"""Importing the producer API stays light: no httpx, no Celery, no worker or vendor code."""

from __future__ import annotations

import json
import subprocess
import sys


def modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; import json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def test_the_producer_api_imports_no_worker_code() -> None:
    loaded = modules_after("import producers; from producers import enqueue, enqueue_many")

    heavy = {
        m
        for m in loaded
        if m.split(".")[0] in {"httpx", "celery", "kombu", "worker", "sandbox", "aiohttp"}
    }
    assert heavy == set()
    assert "producers.enqueue" in loaded


def test_the_contract_imports_nothing_heavier_than_pydantic() -> None:
    loaded = modules_after("import order_dispatch.contract")

    assert {m.split(".")[0] for m in loaded} & {
        "redis",
        "httpx",
        "celery",
        "structlog",
        "pydantic_settings",
    } == set()
