"""What every simulated vendor is: routes under its prefix, in-memory state, vendor-like errors."""

from __future__ import annotations

import inspect
import itertools
import json
import os
import threading
from collections import Counter
from typing import Any, ClassVar, Self

from aiohttp import web


class VendorSimulator:
    """Base of the vendor simulators.

    A subclass sets :attr:`name` (the path prefix), implements :meth:`routes`, keeps what it
    received in :attr:`store`, and may override the hooks that shape injected failures so they
    look like the vendor's own (:meth:`error_response`, :meth:`rate_limited_response`).
    """

    #: The path prefix and the vendor's name in the product (``/sourceorders/...``).
    name: ClassVar[str] = ""

    def __init__(self) -> None:
        self.store: dict[str, dict[str, Any]] = {}
        self.requests = 0
        #: Requests received per path under the prefix (``/oauthserver/oauth2/token``: tokens).
        self.requests_by_path: Counter[str] = Counter()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> Self:
        """An instance whose constructor keywords come from the environment where set.

        Keyword ``api_key`` of vendor ``sourceorders`` is read from
        ``ORDER_DISPATCH_SANDBOX_SOURCEORDERS_API_KEY``; unset ones keep their demo defaults.
        """
        kwargs: dict[str, Any] = {}
        for param in inspect.signature(cls.__init__).parameters.values():
            if param.name == "self" or param.kind not in (
                param.POSITIONAL_OR_KEYWORD,
                param.KEYWORD_ONLY,
            ):
                continue
            raw = os.environ.get(f"ORDER_DISPATCH_SANDBOX_{cls.name.upper()}_{param.name.upper()}")
            if raw is None:
                continue
            default = param.default
            if isinstance(default, bool):
                kwargs[param.name] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif isinstance(default, int | float):
                kwargs[param.name] = type(default)(raw)
            else:
                kwargs[param.name] = raw
        return cls(**kwargs)

    def routes(self) -> list[web.RouteDef]:
        """The vendor's endpoints, with paths relative to the prefix (``/v1/orders``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement routes")

    def reset(self) -> None:
        """Forget every order and token (``POST /_sandbox/reset``)."""
        self.store.clear()
        self.requests = 0
        self.requests_by_path.clear()
        self._ids = itertools.count(1)

    def expire_tokens(self) -> None:
        """Make every token issued so far invalid (vendors with tokens override this)."""

    def orders(self) -> list[dict[str, Any]]:
        """What the vendor holds, as the vendor would show it (``GET /_sandbox/orders``)."""
        return list(self.store.values())

    def next_number(self) -> int:
        """A fresh sequence number for ids."""
        return next(self._ids)

    # Failure shapes: overridden so injected failures look like the vendor's own answers.

    def error_response(self, status: int, retry_after: float | None) -> web.Response:
        """The answer to an injected failure with HTTP ``status``."""
        return json_response(
            {"error": status_reason(status), "message": "injected failure"},
            status=status,
            headers=retry_after_header(retry_after),
        )

    def rate_limited_response(self, retry_after: float | None) -> web.Response:
        """The answer to an injected rate limit."""
        return self.error_response(429, retry_after if retry_after is not None else 1)

    def malformed_body(self, content_type: str) -> bytes:
        """The body of an injected malformed answer (the real answer was ``content_type``)."""
        return b'{"orderId": "soo_12'


def status_reason(status: int) -> str:
    """The standard reason phrase of an HTTP status."""
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def retry_after_header(retry_after: float | None) -> dict[str, str]:
    """``{"Retry-After": "N"}`` (whole seconds, rounded up) or nothing."""
    if retry_after is None:
        return {}
    seconds = int(retry_after) if retry_after == int(retry_after) else int(retry_after) + 1
    return {"Retry-After": str(seconds)}


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON answer (compact, UTF-8)."""
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


async def read_json(request: web.Request) -> tuple[Any, str | None]:
    """The request's JSON body, or ``(None, reason)`` when it is not JSON."""
    raw = await request.read()
    try:
        return json.loads(raw), None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"body is not valid JSON: {exc}"
