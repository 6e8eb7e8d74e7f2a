"""``order-dispatch config show``: the effective configuration, every secret masked."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import SecretStr

from order_dispatch import redact
from order_dispatch.settings import Settings
from order_dispatch_cli.errors import masked_url

#: Secrets the commands read beside the settings (logins and tokens), shown only as set or not.
OTHER_SECRETS = (
    "FLOWER_BASIC_AUTH",
    "ORDER_DISPATCH_METRICS_BASIC_AUTH",
    "ORDER_DISPATCH_SANDBOX_ADMIN_TOKEN",
)


def masked_text(value: str) -> str:
    """``value`` with a URL's password and secret query values masked (``api_key=***``), and
    any configured credential masked wherever it appears."""
    if "://" in value:
        value = masked_url(value)
        parts = urlsplit(value)
        if parts.query:
            query = [
                (k, redact.MASK if redact.is_secret_key(k) and v else v)
                for k, v in parse_qsl(parts.query, keep_blank_values=True)
            ]
            value = urlunsplit(parts._replace(query=urlencode(query, safe="*")))
    return redact.text(value)


def masked(node: Any, secret: bool = False) -> Any:
    """A JSON-ready copy of ``node`` with every secret masked: credentials, values under keys
    that name a secret (``secret``: ``node`` is one; maps keep their keys), passwords and
    secret query values in URLs."""
    if isinstance(node, dict):
        return {str(k): masked(v, secret or redact.is_secret_key(str(k))) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [masked(v, secret) for v in node]
    if isinstance(node, SecretStr):
        return redact.MASK if node.get_secret_value() else ""
    if secret and node not in (None, ""):
        return redact.MASK
    return masked_text(node) if isinstance(node, str) else node


def effective(settings: Settings) -> dict[str, Any]:
    """Every setting as the product runs with it (defaults included), what is derived from
    them, and which of the other secrets are set; secrets masked."""
    redact.register(settings.secrets())
    shown: dict[str, Any] = masked(settings.model_dump())
    from order_dispatch.redis_client import broker_url

    shown["derived"] = {
        # kombu's Sentinel URL lists one URL per sentinel, each with the master's password.
        "broker": ";".join(masked_text(url) for url in broker_url(settings).split(";")),
        "sentinels": [f"{host}:{port}" for host, port in settings.sentinels],
        "wait_replicas": settings.wait_replicas,
        "broker_is_redis": settings.broker_is_redis,
        "visibility_timeout_s": settings.effective_visibility_timeout_s,
        "lease_s": settings.lease_s,
    }
    shown["other_secrets"] = {
        name: (redact.MASK if os.environ.get(name) else None) for name in OTHER_SECRETS
    }
    return shown
