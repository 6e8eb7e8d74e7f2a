"""Importing the producer API stays light: no httpx, no Celery, no worker or vendor code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; import json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def test_the_producer_api_imports_no_worker_code() -> None:
    loaded = modules_after("import producers; from producers import enqueue, enqueue_many")

    heavy = {
        m
        for m in loaded
        if m.split(".")[0]
        in {"httpx", "celery", "kombu", "worker", "order_dispatch_sandbox", "aiohttp"}
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


def test_the_foundation_imports_nothing_above_it() -> None:
    """Layers point one way: contract, settings, keys, logs, redaction and results import no
    worker, producer, sandbox or command-line module (those import the foundation)."""
    import order_dispatch

    foundation = sorted(
        f"order_dispatch.{p.stem}"
        for p in Path(order_dispatch.__file__).parent.glob("*.py")
        if p.stem != "__init__"
    )
    assert {"order_dispatch.contract", "order_dispatch.settings", "order_dispatch.redact"} <= set(
        foundation
    )

    loaded = modules_after("; ".join(f"import {m}" for m in foundation))

    above = {
        m
        for m in loaded
        if m.split(".")[0]
        in {"worker", "producers", "order_dispatch_sandbox", "order_dispatch_cli"}
    }
    assert above == set()


def test_ops_reads_redis_without_worker_sandbox_or_command_line_code() -> None:
    """``ops`` (state, metrics, health, probe, operators' actions) imports the foundation and
    the producers (message format, the door's validation); the command line hands it the
    workers' vendors and Celery app. The actions import no command-line code: an HTTP API or
    a console calls them too."""
    loaded = modules_after(
        "import order_dispatch_ops.state, order_dispatch_ops.metrics, order_dispatch_ops.health, "
        "order_dispatch_ops.probe, order_dispatch_ops.auth, order_dispatch_ops.actions"
    )

    above = {"worker", "order_dispatch_sandbox", "order_dispatch_cli", "celery"}
    assert {m for m in loaded if m.split(".")[0] in above} == set()


def test_the_package_installs_only_names_that_carry_the_product_s_name() -> None:
    """Site-packages gains ``order_dispatch*`` and the design card's ``worker`` and ``producers``,
    nothing generic such as ``cli``, ``ops``, ``sandbox`` or ``celeryconfig``."""
    import tomllib

    config = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    setuptools = config["tool"]["setuptools"]
    top = {name.split(".")[0] for name in setuptools["packages"]}
    top |= set(setuptools.get("py-modules", []))

    assert {n for n in top if not n.startswith("order_dispatch")} == {"worker", "producers"}
