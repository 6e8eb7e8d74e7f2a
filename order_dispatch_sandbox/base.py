"""What every simulated vendor is: routes under its prefix, in-memory state, vendor-like errors."""

from __future__ import annotations

import itertools
import json
import os
import time
from collections import Counter
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any, ClassVar, Self

from aiohttp import web
from pydantic import BaseModel, SecretStr, ValidationError, create_model
from pydantic_settings import BaseSettings


class SimulatorSettings(BaseSettings, extra="forbid", frozen=True):
    """Base of a simulator's settings: its credentials and the switches for what its vendor's
    document leaves open.

    Each vendor subclasses it as ``<Vendor>Settings``, which reads the environment variables
    ``ORDER_DISPATCH_SANDBOX_<VENDOR>_<NAME>``: setting ``rate_limit_per_minute`` of Sophio is
    ``ORDER_DISPATCH_SANDBOX_SOPHIO_RATE_LIMIT_PER_MINUTE`` (what ``order-dispatch sandbox --set
    sophio.rate_limit_per_minute=0`` sets). Constructing a subclass reads the environment, as
    pydantic-settings does; :meth:`build` does not.
    """

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        vendor = cls.__name__.removesuffix("Settings").upper()
        cls.model_config["env_prefix"] = f"ORDER_DISPATCH_SANDBOX_{vendor}_"

    @classmethod
    def build(cls, settings: SimulatorSettings | None = None, /, **overrides: Any) -> Self:
        """``settings`` (default: the demo defaults, whatever the environment says) with
        ``overrides`` applied and validated: ``SophioSettings.build(rate_limit_per_minute=0)``."""
        if isinstance(settings, cls) and not overrides:
            return settings
        if settings is None:
            fields = cls.model_fields.items()
            values = {name: f.get_default(call_default_factory=True) for name, f in fields}
        else:
            values = dict(settings)
        return cls(**{**values, **overrides})

    @classmethod
    def from_env(cls) -> Self:
        """The settings from the environment; unset ones keep their demo defaults.

        Raises ValueError naming the variable when one under the prefix is not a setting or its
        value is not valid.
        """
        prefix = str(cls.model_config.get("env_prefix", "")).upper()
        for key in os.environ:
            name = key.upper().removeprefix(prefix).lower()
            if key.upper().startswith(prefix) and name not in cls.model_fields:
                known = ", ".join(prefix + n.upper() for n in cls.model_fields)
                raise ValueError(f"{key} is not a sandbox setting (known: {known})")
        try:
            return cls()
        except ValidationError as exc:
            raise ValueError(
                "; ".join(f"{prefix}{str(e['loc'][0]).upper()}: {e['msg']}" for e in exc.errors())
            ) from None


class VendorSimulator:
    """Base of the vendor simulators.

    A subclass sets :attr:`name` (the path prefix) and :attr:`settings_class`, implements
    :meth:`routes`, keeps what it received in :attr:`store`, and may override the hooks that shape
    injected failures so they look like the vendor's own (:meth:`error_response`,
    :meth:`rate_limited_response`).

    It is built from its settings, from keyword overrides of the demo defaults, or both:
    ``SophioSimulator(SophioSettings())`` (the environment), ``SophioSimulator(api_key="k")``.
    Its settings read as its attributes, secrets revealed (``sim.api_secret``); assigning one
    changes it for this instance only.
    """

    #: The path prefix and the vendor's name in the product (``/sourceorders/...``).
    name: ClassVar[str] = ""
    #: The vendor's settings model.
    settings_class: ClassVar[type[SimulatorSettings]] = SimulatorSettings
    #: The body of an injected malformed answer: a cut-off answer of the vendor's.
    malformed: ClassVar[bytes] = b'{"orderId": "soo_12'
    #: The options of a product account that talks to this simulator with its demo settings
    #: (the demo's accounts; credentials are the settings named like the adapter's).
    demo_options: ClassVar[dict[str, Any]] = {}

    def __init__(self, settings: SimulatorSettings | None = None, /, **overrides: Any) -> None:
        self.settings = self.settings_class.build(settings, **overrides)
        self.store: dict[str, dict[str, Any]] = {}
        self.requests = 0
        #: Requests received per path under the prefix (``/oauthserver/oauth2/token``: tokens).
        self.requests_by_path: Counter[str] = Counter()
        self._ids = itertools.count(1)
        self._windows: dict[str, tuple[float, int]] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or "settings" not in self.__dict__:
            raise AttributeError(name)
        value = getattr(self.settings, name)
        return value.get_secret_value() if isinstance(value, SecretStr) else value

    @classmethod
    def from_env(cls) -> Self:
        """An instance with the settings the environment holds (see :class:`SimulatorSettings`)."""
        return cls(cls.settings_class.from_env())

    def demo_credentials(self, names: Iterable[str]) -> dict[str, str]:
        """The credentials ``names`` (an adapter's) as this simulator accepts them."""
        return {name: str(getattr(self, name)) for name in names}

    def routes(self) -> list[web.RouteDef]:
        """The vendor's endpoints, with paths relative to the prefix (``/v1/orders``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement routes")

    def reset(self) -> None:
        """Forget every order, token and rate-limit window (``POST /_sandbox/reset``)."""
        self.store.clear()
        self.requests = 0
        self.requests_by_path.clear()
        self._ids = itertools.count(1)
        self._windows.clear()

    def expire_tokens(self) -> None:
        """Make every token issued so far invalid (vendors with tokens override this)."""

    def orders(self) -> list[dict[str, Any]]:
        """What the vendor holds, as the vendor would show it (``GET /_sandbox/orders``)."""
        return list(self.store.values())

    def next_number(self) -> int:
        """A fresh sequence number for ids."""
        return next(self._ids)

    def count_request(self, key: str, window_s: float) -> tuple[int, float]:
        """Count a request of ``key`` in its fixed window of ``window_s``, which starts at the
        key's first request: the requests counted in the window, and when it ends (epoch s)."""
        now = time.time()
        start, used = self._windows.get(key, (0.0, 0))
        if now >= start + window_s:
            start, used = now, 0
        self._windows[key] = (start, used + 1)
        return used + 1, start + window_s

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
        return self.malformed


def status_reason(status: int) -> str:
    """The standard reason phrase of an HTTP status."""
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


def json_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as the JSON path vendors show: ``items[1].quantity``.

    A bad dictionary key (pydantic's ``[key]`` marker) is named by the key itself.
    """
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part != "[key]":
            path += f".{part}" if path else part
    return path


def model_of(name: str, base: type[BaseModel] = BaseModel, /, **fields: Any) -> type[BaseModel]:
    """A model of ``fields`` in their order: ``name=type`` (optional, default None) or
    ``name=(type, default)`` (``...`` for required), for request bodies that are field tables."""
    defs = {k: v if isinstance(v, tuple) else (v, None) for k, v in fields.items()}
    return create_model(name, __base__=base, **defs)  # type: ignore[call-overload, no-any-return]


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
