"""``order-dispatch flower``: Flower on the product's Celery app, locked down by default.

Flower itself listens on every interface unless told otherwise, and serves ``/metrics`` and
``/healthcheck`` without a login even when basic auth is on. Here:

- the default address is ``127.0.0.1``;
- listening anywhere else needs a login (``FLOWER_BASIC_AUTH`` or Flower's OAuth ``--auth``),
  or the command refuses to start;
- when a login is configured, ``/metrics`` and ``/healthcheck`` need it too;
- Flower talks to Redis through kombu's own Redis transport, so its Broker page works (under
  the workers' transport, :mod:`worker.broker`, it answers 404: Flower knows brokers by name).

The password is read from the environment only, never from the command line (where ``ps``
would show it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from order_dispatch_ops.auth import parse_logins, require_login_beyond_loopback

#: Flower's own environment variable for ``user:password[,user:password...]``.
BASIC_AUTH_ENV = "FLOWER_BASIC_AUTH"


class FlowerConfigError(ValueError):
    """Flower would run in a way that exposes it; the message says what to set."""


def _has_option(args: Sequence[str], name: str) -> bool:
    return any(a == f"--{name}" or a.startswith(f"--{name}=") for a in args)


def flower_argv(
    address: str, port: int, extra: Sequence[str], env: dict[str, str] | None = None
) -> list[str]:
    """Celery's ``flower`` command line, after checking that a login guards a public address."""
    env = dict(os.environ if env is None else env)
    if _has_option(extra, "basic_auth") or _has_option(extra, "basic-auth"):
        raise FlowerConfigError(
            f"pass the login in {BASIC_AUTH_ENV}, not on the command line (ps shows arguments)"
        )
    basic_auth = env.get(BASIC_AUTH_ENV, "")
    oauth = _has_option(extra, "auth") or bool(env.get("FLOWER_AUTH"))
    try:
        if basic_auth:
            parse_logins(basic_auth, BASIC_AUTH_ENV)
        require_login_beyond_loopback(
            address, bool(basic_auth or oauth), f"{BASIC_AUTH_ENV} (or Flower's --auth)"
        )
    except ValueError as exc:
        raise FlowerConfigError(f"Flower: {exc}") from None
    return ["flower", f"--address={address}", f"--port={port}", *extra]


def protect_monitor_views() -> None:
    """Make Flower's ``/metrics`` and ``/healthcheck`` ask for the same login as its pages."""
    from flower import urls
    from flower.views import monitor
    from tornado.web import HTTPError

    def require_login(handler: Any) -> None:
        # Flower's get_current_user raises 401 for a missing or wrong basic-auth header and
        # returns True when no login is configured at all.
        if not handler.current_user:
            raise HTTPError(401)

    class Metrics(monitor.Metrics):  # type: ignore[misc]
        """Flower's Prometheus endpoint, behind the login."""

        def prepare(self) -> None:
            require_login(self)

    class Healthcheck(monitor.Healthcheck):  # type: ignore[misc]
        """Flower's health check, behind the login."""

        def prepare(self) -> None:
            require_login(self)

    replacements: dict[type, type] = {monitor.Metrics: Metrics, monitor.Healthcheck: Healthcheck}
    urls.handlers[:] = [
        (h[0], replacements[h[1]], *h[2:])
        if isinstance(h, tuple) and len(h) >= 2 and h[1] in replacements
        else h
        for h in urls.handlers
    ]


def plain_redis_transport(app: Any) -> None:
    """Let Flower use kombu's own Redis transport (chosen by the URL's scheme, which Flower's
    Broker page needs). The workers' transport differs only in how it consumes task messages,
    which Flower never does: Flower reads events and sends remote-control commands."""
    if str(app.conf.broker_transport or "").startswith("worker."):
        app.conf.broker_transport = None
