"""``order-dispatch config show``: every setting, every secret masked."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from order_dispatch.settings import get_settings
from order_dispatch_cli.config import masked_text
from order_dispatch_cli.main import main

SECRETS = ("hunter2", "rabbit-pw", "so-key-123456", "url-pw", "query-key", "opt-token", "f-pw")

ENV = {
    "REDIS_URL": "redis://:hunter2@redis.internal:6379/0",
    "ORDER_DISPATCH_BROKER_URL": "amqp://dispatch:rabbit-pw@rabbit:5672//",
    "ORDER_DISPATCH_KEY_PREFIX": "shop",
    "ORDER_DISPATCH_JOB_RETENTION_S": "3600",
    "ORDER_DISPATCH_ACCOUNTS": json.dumps(
        {
            "sourceorders": {
                "default": {
                    "base_url": "https://user:url-pw@api.sourceorders.com/?api_key=query-key&v=2",
                    "credentials": {"api_key": "so-key-123456", "spare": ""},
                    "options": {"access_token": "opt-token", "note": "key so-key-123456 here"},
                }
            }
        }
    ),
    "FLOWER_BASIC_AUTH": "ops:f-pw",
}


def show(env: dict[str, str]) -> tuple[int, str, str]:
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["config", "show"], env=env)
    finally:
        get_settings.cache_clear()
    return result.exit_code, result.stdout, result.stderr


def test_config_show_prints_every_setting_with_its_secrets_masked() -> None:
    code, out, err = show(ENV)

    assert (code, err) == (0, "")
    assert [s for s in SECRETS if s in out] == []
    shown = json.loads(out)
    assert shown["redis_url"] == "redis://:***@redis.internal:6379/0"
    assert shown["broker_url"] == "amqp://dispatch:***@rabbit:5672//"
    assert (shown["key_prefix"], shown["job_retention_s"]) == ("shop", 3600)
    assert shown["results_max_age_s"] == 7 * 86400 and shown["max_job_bytes"] == 256 * 1024
    account = shown["accounts"]["sourceorders"]["default"]
    assert account == {
        "base_url": "https://user:***@api.sourceorders.com/?api_key=***&v=2",
        "credentials": {"api_key": "***", "spare": ""},
        "rate_limit_per_minute": None,
        "options": {"access_token": "***", "note": "key *** here"},
    }
    assert shown["derived"]["broker_is_redis"] is False
    assert shown["other_secrets"] == {
        "FLOWER_BASIC_AUTH": "***",
        "ORDER_DISPATCH_METRICS_BASIC_AUTH": None,
        "ORDER_DISPATCH_SANDBOX_ADMIN_TOKEN": None,
    }


def test_config_show_with_bad_settings_is_one_line_and_exit_3() -> None:
    code, out, err = show({"ORDER_DISPATCH_RETRY__MAX_ATTEMPTS": "0"})

    assert (code, out) == (3, "")
    assert err == (
        "error: bad settings: ORDER_DISPATCH_RETRY__MAX_ATTEMPTS: "
        "Input should be greater than or equal to 1\n"
    )


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain", "plain"),
        ("https://x.example/a?b=1", "https://x.example/a?b=1"),
        ("https://x.example/?token=abc&b=1", "https://x.example/?token=***&b=1"),
        ("redis://u:p@h/0", "redis://u:***@h/0"),
    ],
)
def test_masked_text(text: str, shown: str) -> None:
    assert masked_text(text) == shown
