"""``order-dispatch api``: the start-up checks, then uvicorn with the API's bounds.

Refuses to start (:class:`ConfigurationError`, exit 78) on an address other machines reach
while no API key exists; a Redis that does not answer stops it too (exit 3).
"""

from __future__ import annotations

import os
import tempfile

from order_dispatch.keys import Keys
from order_dispatch.settings import Settings, get_settings
from order_dispatch_api import clients
from order_dispatch_api.keystore import KeyStore
from order_dispatch_ops.auth import is_loopback


class ConfigurationError(Exception):
    """A configuration the API will not run with, in words saying what to change."""


def check(host: str, settings: Settings) -> None:
    """The start-up checks: Redis answers (else redis raises), and a non-loopback address has
    at least one active key."""
    client = clients.sync_client(settings)
    try:
        client.ping()
        if not is_loopback(host) and not KeyStore(client, Keys(settings.key_prefix)).any_active():
            raise ConfigurationError(
                f"would listen on {host or 'every interface'} with no API key: create one "
                "(order-dispatch api-keys create --name NAME --scope enqueue) or listen on "
                "127.0.0.1"
            )
    finally:
        client.close()


def app_factory() -> object:
    """The ASGI app, as each uvicorn worker process builds it."""
    from order_dispatch import logs
    from order_dispatch_api.app import create_app

    settings = get_settings()
    logs.configure(settings.log_level)
    return create_app(settings)


def serve(host: str, port: int, workers: int) -> None:
    """Check, then serve until stopped (SIGTERM or SIGINT)."""
    import uvicorn

    settings = get_settings()
    check(host, settings)
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="od-api-metrics-")
    bounds = settings.api
    from order_dispatch_api.protocol import BoundedHttpToolsProtocol

    uvicorn.run(
        "order_dispatch_api.server:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=BoundedHttpToolsProtocol,
        loop="auto",
        limit_concurrency=bounds.max_concurrency,
        timeout_keep_alive=int(max(1, bounds.keep_alive_s)),
        h11_max_incomplete_event_size=bounds.max_header_bytes,
        access_log=False,
        server_header=False,
        log_level="warning",
        timeout_graceful_shutdown=int(bounds.request_timeout_s + bounds.max_wait_s),
    )
