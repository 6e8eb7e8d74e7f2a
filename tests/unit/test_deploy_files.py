"""What can be checked here of the deployment files (no Docker engine on the test machines)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_redis_worker_sandbox_and_flower() -> None:
    services = compose()["services"]

    assert set(services) >= {"redis", "worker", "sandbox", "flower"}
    redis_cmd = services["redis"]["command"]
    assert "--appendonly" in redis_cmd and "noeviction" in redis_cmd
    assert services["worker"]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert services["worker"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_compose_commands_are_the_documented_cli_commands() -> None:
    services = compose()["services"]
    readme = (ROOT / "README.md").read_text()

    for name in ("worker", "sandbox"):
        command = services[name]["command"]
        assert command[0] == "order-dispatch"
        assert command[1] in main.commands  # type: ignore[attr-defined]
        assert f"order-dispatch {command[1]}" in readme
    flower = services["flower"]["command"]
    assert flower[:3] == ["celery", "-A", "worker.app"] and "flower" in flower


def test_the_worker_accounts_in_compose_are_valid_settings() -> None:
    import json

    from order_dispatch.settings import Settings

    raw = compose()["services"]["worker"]["environment"]["ORDER_DISPATCH_ACCOUNTS"]
    settings = Settings(accounts=json.loads(raw))

    assert settings.account("sourceorders", "default") is not None


def test_dockerfile_copies_what_exists() -> None:
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one() -> None:
    head = (ROOT / "README.md").read_text().splitlines()[:6]
    makefile = (ROOT / "Makefile").read_text()

    assert any(line.startswith("make demo") for line in head)
    assert any(line.startswith("make test") for line in head)
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def _product_command(command: str) -> str:
    """The ``order-dispatch`` subcommand a deployment file runs (it must exist)."""
    words = command.split()
    assert Path(words[0]).name == "order-dispatch", command
    assert words[1] in main.commands, command  # type: ignore[attr-defined]
    return words[1]


def test_supervisord_runs_workers_flower_metrics_and_an_optional_sandbox() -> None:
    import configparser

    conf = configparser.RawConfigParser()
    conf.read(ROOT / "deploy" / "supervisord.conf")
    programs = {
        s.removeprefix("program:"): conf[s] for s in conf.sections() if s.startswith("program:")
    }

    assert {n: _product_command(p["command"]) for n, p in programs.items()} == {
        "worker": "worker",
        "flower": "flower",
        "metrics": "metrics",
        "sandbox": "sandbox",
    }
    assert programs["sandbox"]["autostart"] == "false"
    worker = programs["worker"]
    assert worker["stopsignal"] == "TERM" and worker["exitcodes"] == "0"
    assert int(worker["stopwaitsecs"]) > 300  # the default task time limit


def test_systemd_units_run_product_commands_and_stop_with_a_warm_shutdown() -> None:
    import configparser

    units = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
    commands = set()
    for path in units:
        unit = configparser.RawConfigParser(strict=False)
        unit.optionxform = str  # type: ignore[assignment,method-assign]
        unit.read(path)
        service = unit["Service"]
        commands.add(_product_command(service["ExecStart"]))
        assert service["KillSignal"] == "SIGTERM" and service["Restart"] == "on-failure", path
        assert "WantedBy" in unit["Install"]
    assert commands == {"worker", "flower", "metrics"}
    worker = configparser.RawConfigParser(strict=False)
    worker.read(ROOT / "deploy" / "systemd" / "order-dispatch-worker@.service")
    assert int(worker["Service"]["TimeoutStopSec"]) > 300
