"""``order-dispatch worker`` builds Celery's command line from the product's defaults."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.main import main
from worker.vendors import known_vendors


def run_worker(monkeypatch: pytest.MonkeyPatch, *args: str) -> list[str]:
    from worker.app import app

    captured: list[list[str]] = []
    monkeypatch.setattr(app, "worker_main", lambda argv: captured.append(argv))
    result = CliRunner().invoke(main, ["worker", *args])
    assert result.exit_code == 0, result.output
    return captured[0]


def test_defaults_are_threads_every_vendor_queue_and_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv = run_worker(monkeypatch)

    assert argv[0] == "worker"
    assert argv[argv.index("--pool") + 1] == "threads"
    assert argv[argv.index("--concurrency") + 1] == "32"
    assert argv[argv.index("--queues") + 1] == ",".join(f"od.{v}" for v in known_vendors())
    assert "od.sophio" in argv[argv.index("--queues") + 1]
    assert "--task-events" in argv


def test_extra_arguments_go_through_to_celery(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_DISPATCH_KEY_PREFIX", "shop1")

    argv = run_worker(
        monkeypatch, "--vendors", "sourceorders", "-c", "64", "--hostname", "so@%h", "-O", "fair"
    )

    assert argv[argv.index("--queues") + 1] == "shop1.sourceorders"
    assert argv[argv.index("--concurrency") + 1] == "64"
    assert argv[-4:] == ["--hostname", "so@%h", "-O", "fair"]
