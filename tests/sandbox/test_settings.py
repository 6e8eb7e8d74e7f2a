"""Simulator settings: pydantic-settings models read from ``ORDER_DISPATCH_SANDBOX_<VENDOR>_*``."""

from __future__ import annotations

import pytest

from order_dispatch_sandbox.registry import all_simulators
from order_dispatch_sandbox.sellercloud import SellerCloudSettings, SellerCloudSimulator
from order_dispatch_sandbox.sophio import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    SophioSettings,
    SophioSimulator,
)


def test_keywords_override_the_demo_defaults_not_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDER_DISPATCH_SANDBOX_SOPHIO_API_KEY", "from-env")
    sim = SophioSimulator(rate_limit_per_minute=0)
    assert (sim.api_key, sim.rate_limit_per_minute) == (DEFAULT_API_KEY, 0)
    assert sim.settings == SophioSettings.build(rate_limit_per_minute=0)


def test_a_settings_object_reads_the_environment_and_keywords_override_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDER_DISPATCH_SANDBOX_SOPHIO_API_KEY", "from-env")
    monkeypatch.setenv("ORDER_DISPATCH_SANDBOX_SOPHIO_RATE_LIMIT_PER_MINUTE", "7")
    settings = SophioSettings()
    assert SophioSimulator(settings).settings is settings
    sim = SophioSimulator(settings, rate_limit_per_minute=0)
    assert (sim.api_key, sim.rate_limit_per_minute) == ("from-env", 0)


def test_secrets_stay_out_of_the_settings_repr() -> None:
    settings = SellerCloudSettings.build(password="hunter2")
    assert "hunter2" not in repr(settings)
    assert SellerCloudSimulator(settings).password == "hunter2"
    assert DEFAULT_API_SECRET not in repr(SophioSettings.build())


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("ORDER_DISPATCH_SANDBOX_SOPHIO_RATE_LIMIT", "3", "is not a sandbox setting"),
        ("ORDER_DISPATCH_SANDBOX_SOPHIO_RATE_LIMIT_PER_MINUTE", "lots", "valid integer"),
        ("ORDER_DISPATCH_SANDBOX_SOPHIO_RATE_LIMIT_PER_MINUTE", "-1", "greater than or equal"),
        ("ORDER_DISPATCH_SANDBOX_SHOPATRON_SEARCH_BY_EXTERNAL_ID", "maybe", "valid boolean"),
        ("ORDER_DISPATCH_SANDBOX_SELLERCLOUD_COMPANY_IDS", "one", "pattern"),
    ],
)
def test_a_bad_setting_in_the_environment_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name) as refused:
        all_simulators()
    assert problem in str(refused.value)


def test_a_keyword_that_is_no_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="rate_limit"):
        SophioSimulator(rate_limit=0)
