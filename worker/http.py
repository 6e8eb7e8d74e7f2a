"""The worker's HTTP layer: one shared client per process; transport errors mapped in one place."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from order_dispatch.contract import ErrorKind
from order_dispatch.settings import HttpSettings

_lock = threading.Lock()
_client: httpx.Client | None = None


def shared_client(settings: HttpSettings | None = None) -> httpx.Client:
    """The process's HTTP client (connection pool shared by every task thread)."""
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                s = settings or HttpSettings()
                _client = httpx.Client(
                    timeout=httpx.Timeout(s.read_timeout_s, connect=s.connect_timeout_s),
                    limits=httpx.Limits(
                        max_connections=s.max_connections,
                        max_keepalive_connections=s.max_connections,
                    ),
                    follow_redirects=False,
                    headers={"User-Agent": "order-dispatch/0.1"},
                )
    return _client


def close_shared_client() -> None:
    """Close the process's client (worker shutdown)."""
    global _client
    with _lock:
        if _client is not None:
            _client.close()
            _client = None


@dataclass(frozen=True, slots=True)
class TransportFailure(Exception):
    """A request that got no HTTP answer.

    ``maybe_sent`` is False only when the request certainly never reached the vendor (it could
    not connect); otherwise the vendor may have acted on it.
    """

    kind: ErrorKind
    message: str
    maybe_sent: bool

    def __str__(self) -> str:
        return self.message


@contextlib.contextmanager
def map_transport_errors() -> Iterator[None]:
    """Turn httpx's exceptions into :class:`TransportFailure` (the one place this happens)."""
    try:
        yield
    except httpx.ConnectTimeout as exc:
        raise TransportFailure(ErrorKind.TIMEOUT, f"connect timeout: {exc}", False) from exc
    except httpx.PoolTimeout as exc:
        raise TransportFailure(ErrorKind.TIMEOUT, f"connection pool timeout: {exc}", False) from exc
    except httpx.ConnectError as exc:
        raise TransportFailure(ErrorKind.TRANSPORT, f"cannot connect: {exc}", False) from exc
    except httpx.TimeoutException as exc:
        raise TransportFailure(
            ErrorKind.TIMEOUT, f"no answer in time ({type(exc).__name__})", True
        ) from exc
    except httpx.TransportError as exc:
        raise TransportFailure(
            ErrorKind.TRANSPORT, f"connection failed mid-request: {type(exc).__name__}: {exc}", True
        ) from exc


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
