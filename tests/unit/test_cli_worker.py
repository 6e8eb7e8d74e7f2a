"""``order-dispatch worker`` builds Celery's command line from the product's defaults."""

from __future__ import annotations

import threading

import pytest
from click.testing import CliRunner

from order_dispatch_cli import swarm
from order_dispatch_cli.main import main
from worker.vendors import known_vendors


def run_worker(
    monkeypatch: pytest.MonkeyPatch, *args: str, celery_status: int | None = 0
) -> tuple[list[str], int]:
    """The argv given to Celery, and the command's exit status when Celery returns
    ``celery_status``."""
    from worker import shutdown
    from worker.app import app

    captured: list[list[str]] = []

    def start(argv: list[str]) -> None:
        captured.append(argv)
        shutdown.note_exit(celery_status)  # as the worker_shutdown signal does

    monkeypatch.setattr(app, "start", start)
    if "--processes" not in args:
        args = ("--processes", "1", *args)
    result = CliRunner().invoke(main, ["worker", *args])
    return captured[0], result.exit_code


def test_defaults_are_threads_every_vendor_queue_and_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv, status = run_worker(monkeypatch)

    assert status == 0
    assert argv[0] == "worker"
    assert argv[argv.index("--pool") + 1] == "threads"
    assert argv[argv.index("--concurrency") + 1] == "512"
    queues = ",".join(f"od.{v}" for v in [*known_vendors(), "webhooks"])
    assert argv[argv.index("--queues") + 1] == queues
    assert "od.sophio" in argv[argv.index("--queues") + 1]
    assert "--task-events" in argv


def test_extra_arguments_go_through_to_celery(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_DISPATCH_KEY_PREFIX", "shop1")

    argv, status = run_worker(
        monkeypatch, "--vendors", "sourceorders", "-c", "64", "--hostname", "so@%h", "-O", "fair"
    )

    assert argv[argv.index("--queues") + 1] == "shop1.sourceorders"
    assert argv[argv.index("--concurrency") + 1] == "64"
    assert argv[-4:] == ["--hostname", "so@%h", "-O", "fair"]
    assert status == 0


@pytest.mark.parametrize(("celery_status", "expected"), [(1, 1), (78, 78), (None, 1)])
def test_celery_exit_status_reaches_the_shell(
    monkeypatch: pytest.MonkeyPatch, celery_status: int | None, expected: int
) -> None:
    _, status = run_worker(monkeypatch, celery_status=celery_status)

    assert status == expected


def test_a_requested_stop_exits_zero_whatever_celery_says(monkeypatch: pytest.MonkeyPatch) -> None:
    from worker import shutdown

    monkeypatch.setattr(shutdown, "requested", _set_event())

    _, status = run_worker(monkeypatch, celery_status=1)  # Celery's status after SIGINT

    assert status == 0


def _set_event() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


def test_by_default_one_process_per_core_each_a_numbered_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[list[list[str]]] = []

    def run(self: swarm.Swarm) -> int:
        started.append(self.commands)
        return 0

    monkeypatch.setattr(swarm.Swarm, "run", run)
    monkeypatch.setattr(swarm, "default_processes", lambda: 3)

    args = ["worker", "--vendors", "sophio", "-n", "w1@%h", "-O", "fair"]
    result = CliRunner().invoke(main, args)

    assert result.exit_code == 0
    (commands,) = started
    assert len(commands) == 3
    for n, command in enumerate(commands, 1):
        assert command == [
            *swarm.this_command(),
            *("--vendors", "sophio", "--processes", "1", "-n", f"w1-{n}@%h", "-O", "fair"),
        ]


def test_the_processes_setting_and_option(monkeypatch: pytest.MonkeyPatch) -> None:
    counts: list[int] = []

    def run(processes: int, head: list[str], args: list[str]) -> int:
        counts.append(processes)
        return 0

    monkeypatch.setattr(swarm, "run", run)
    monkeypatch.setenv("ORDER_DISPATCH_WORKER_PROCESSES", "4")

    CliRunner().invoke(main, ["worker"])
    CliRunner().invoke(main, ["worker", "--processes", "2"])

    assert counts == [4, 2]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], ["--hostname", "worker-2@%h"]),
        (["--hostname", "so@%h", "-O", "fair"], ["--hostname", "so-2@%h", "-O", "fair"]),
        (["-n", "so"], ["-n", "so-2"]),
        (["--hostname=so@example"], ["--hostname=so-2@example"]),
    ],
)
def test_each_child_gets_a_node_name_of_its_own(args: list[str], expected: list[str]) -> None:
    assert swarm.child_args(args, 2) == expected


def test_a_single_process_is_named_as_the_first_of_a_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--processes 1`` without ``--hostname``: ``worker-1@%h`` as documented, not Celery's
    ``celery@%h``; a name given is kept as it is (the compose file's ``worker@%h``)."""
    argv, _ = run_worker(monkeypatch)
    assert argv[-2:] == ["--hostname", "worker-1@%h"]

    argv, _ = run_worker(monkeypatch, "-n", "so@%h")
    assert argv[-2:] == ["-n", "so@%h"] and "worker-1@%h" not in argv
