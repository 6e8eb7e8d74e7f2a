"""The metrics HTTP server's login, and the container health probe that reads it from the
environment (real sockets on 127.0.0.1)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Gauge

from order_dispatch_ops.auth import parse_logins
from order_dispatch_ops.metrics import make_server
from order_dispatch_ops.probe import main as probe_main
from order_dispatch_ops.probe import probe
from order_dispatch_sandbox.runner import free_port


@pytest.fixture
def metrics_url() -> Iterator[str]:
    registry = CollectorRegistry()
    Gauge("probe_test", "A gauge.", registry=registry).set(1)
    port = free_port()
    server = make_server(registry, "127.0.0.1", port, ["prom:pw-1", "other:pw-2"])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/metrics"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_the_probe_passes_with_either_login_from_the_environment(
    metrics_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for login in ("prom:pw-1", "other:pw-2,prom:pw-1"):
        monkeypatch.setenv("PROBE_LOGIN", login)
        assert probe(metrics_url, "PROBE_LOGIN") is None
        assert probe_main([metrics_url, "PROBE_LOGIN"]) == 0


def test_the_probe_fails_on_a_wrong_or_missing_login_and_a_closed_port(
    metrics_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROBE_LOGIN", "prom:wrong")
    monkeypatch.delenv("NO_SUCH_LOGIN", raising=False)

    assert probe(metrics_url) == f"{metrics_url}: HTTP 401"
    assert probe(metrics_url, "PROBE_LOGIN") == f"{metrics_url}: HTTP 401"
    assert probe(metrics_url, "NO_SUCH_LOGIN") == "NO_SUCH_LOGIN is not set"
    closed = f"http://127.0.0.1:{free_port()}/"
    assert (probe(closed) or "").startswith(closed)
    assert probe_main([closed]) == 1
    assert probe_main([]) == 2


@pytest.mark.parametrize("value", ["prom", "prom:", ":pw", "a:b,c"])
def test_logins_need_a_user_and_a_password(value: str) -> None:
    with pytest.raises(ValueError, match="SETTING: each entry must be user:password"):
        parse_logins(value, "SETTING")
