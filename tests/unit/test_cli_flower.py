"""``order-dispatch flower`` refuses to expose Flower without a login."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from order_dispatch_cli.flower import FlowerConfigError, flower_argv
from order_dispatch_cli.main import main
from order_dispatch_ops.auth import is_loopback


def run_flower(monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, list[list[str]]]:
    captured: list[list[str]] = []
    def fake_celery_main(app: object, argv: list[str]) -> int:
        captured.append(argv)
        return 0

    monkeypatch.setattr("order_dispatch_cli.main.celery_main", fake_celery_main)
    result = CliRunner().invoke(main, ["flower", *args])
    return result.exit_code, result.output, captured


def test_localhost_needs_no_login(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWER_BASIC_AUTH", raising=False)

    code, output, captured = run_flower(monkeypatch)

    assert code == 0, output
    assert captured == [["flower", "--address=127.0.0.1", "--port=5555"]]


def test_a_public_address_without_a_login_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWER_BASIC_AUTH", raising=False)

    code, output, captured = run_flower(monkeypatch, "--address", "0.0.0.0")

    assert code == 2
    assert "FLOWER_BASIC_AUTH" in output and "0.0.0.0" in output
    assert captured == []


def test_a_public_address_with_a_login_starts_and_the_password_stays_off_argv(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLOWER_BASIC_AUTH", "ops:s3cret-pw")
    monkeypatch.setenv("FLOWER_PORT", "5600")

    code, output, captured = run_flower(monkeypatch, "--address", "0.0.0.0", "--persistent=True")

    assert code == 0, output
    assert captured == [["flower", "--address=0.0.0.0", "--port=5600", "--persistent=True"]]
    assert "s3cret-pw" not in " ".join(captured[0])


@pytest.mark.parametrize(
    ("extra", "env", "message"),
    [
        (["--basic_auth=a:b"], {}, "not on the command line"),
        ([], {"FLOWER_BASIC_AUTH": "ops:"}, "user:password with both parts"),
        ([], {"FLOWER_BASIC_AUTH": "ops"}, "user:password with both parts"),
        ([], {}, "without a login"),
    ],
)
def test_bad_login_settings_name_the_setting(
    extra: list[str], env: dict[str, str], message: str
) -> None:
    with pytest.raises(FlowerConfigError, match=message):
        flower_argv("", 5555, extra, env)


def test_oauth_counts_as_a_login() -> None:
    argv = flower_argv("10.0.0.5", 5555, ["--auth=.*@example\\.com"], {})

    assert argv[1] == "--address=10.0.0.5"


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("", False),
        ("10.1.2.3", False),
        ("flower.internal", False),
    ],
)
def test_loopback(address: str, local: bool) -> None:
    assert is_loopback(address) is local
