"""The worker's HTTP layer: one async client per process, transport errors mapped in one place.

Vendor HTTP goes through one shared :class:`httpx.AsyncClient` on the process's event loop
(:mod:`worker.runtime`), over the aiohttp transport (``httpx-aiohttp``): httpx's own async pool
degrades past about 50 requests in flight, the aiohttp transport keeps aiohttp's speed. The
client builds each request; the sender hands it straight to the transport the client mounts for
its URL (:func:`worker.vendors.sender.exchange`), without the client's auth, redirect and
cookie layers, which vendor calls do not use.

Transport errors are classified by the phase the request reached, since that decides whether the
vendor may have acted on it. Only a failure *before* the request was written is "not sent".
Through ``httpx-aiohttp`` the httpx exception class does not say the phase: a connection the
vendor drops after storing an order arrives as :class:`httpx.ConnectTimeout` whose cause is an
aiohttp ``ClientOSError``. So the aiohttp cause, when there is one, decides.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp
import aiohttp.abc
import httpx
from aiohttp.abc import ResolveResult
from httpx_aiohttp import AiohttpTransport

from order_dispatch.contract import ErrorKind
from order_dispatch.egress import refusal
from order_dispatch.settings import HttpSettings

USER_AGENT = "order-dispatch/0.1"


def new_client(settings: HttpSettings) -> httpx.AsyncClient:
    """The process's vendor client: aiohttp transport, the configured timeouts and pool."""
    limits = httpx.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_connections,
    )
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=limits),
        timeout=httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
        limits=limits,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    )


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


def _aiohttp_cause(exc: BaseException) -> BaseException | None:
    cause = exc.__cause__
    return cause if isinstance(cause, aiohttp.ClientError | TimeoutError) else None


def classify_transport_error(exc: httpx.TransportError) -> TransportFailure:
    """What a transport error means: its kind, a message, and whether it may have been sent."""
    name = type(exc).__name__
    cause = _aiohttp_cause(exc)
    if cause is not None:
        detail = f"{type(cause).__name__}: {cause}"
        # aiohttp.ConnectionTimeoutError: the connect (or pool) phase ran out of time.
        if isinstance(cause, aiohttp.ConnectionTimeoutError):
            return TransportFailure(ErrorKind.TIMEOUT, f"connect timeout ({detail})", False)
        if isinstance(cause, aiohttp.ClientConnectorError):
            return TransportFailure(ErrorKind.TRANSPORT, f"cannot connect ({detail})", False)
        if isinstance(cause, aiohttp.ServerTimeoutError | TimeoutError):
            return TransportFailure(ErrorKind.TIMEOUT, f"no answer in time ({detail})", True)
        return TransportFailure(
            ErrorKind.TRANSPORT, f"connection failed mid-request ({detail})", True
        )
    # httpx's own transports name the phase in the class.
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return TransportFailure(ErrorKind.TIMEOUT, f"connect timeout ({name}: {exc})", False)
    if isinstance(exc, httpx.ConnectError):
        return TransportFailure(ErrorKind.TRANSPORT, f"cannot connect ({name}: {exc})", False)
    if isinstance(exc, httpx.TimeoutException):
        return TransportFailure(ErrorKind.TIMEOUT, f"no answer in time ({name})", True)
    return TransportFailure(
        ErrorKind.TRANSPORT, f"connection failed mid-request ({name}: {exc})", True
    )


@contextlib.contextmanager
def map_transport_errors() -> Iterator[None]:
    """Turn httpx's transport exceptions into :class:`TransportFailure` (the one place)."""
    try:
        yield
    except httpx.TransportError as exc:
        raise classify_transport_error(exc) from exc


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


class GuardedResolver(aiohttp.abc.AbstractResolver):
    """Resolves as aiohttp does, then hands the connection only the addresses the SSRF guard
    allows (:func:`order_dispatch.egress.refusal`): the socket connects to an address already
    checked, with no second lookup for a rebinding name to change. A name left with no allowed
    address fails to connect, saying why."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The allowed addresses of ``host``."""
        found = await self._inner.resolve(host, port, family)
        allowed = [r for r in found if refusal(r["host"]) is None]
        if not allowed:
            why = "; ".join(f"{r['host']} is {refusal(r['host'])}" for r in found)
            raise OSError(errno.EHOSTUNREACH, f"{host} resolves only to refused addresses ({why})")
        return allowed

    async def close(self) -> None:
        """Close the inner resolver."""
        await self._inner.close()


def new_webhook_session(settings: HttpSettings, *, allow_private: bool) -> aiohttp.ClientSession:
    """The session of webhook deliveries, aiohttp's own (a delivery is a bare POST: httpx's layer
    on top doubled the CPU of each one): the same timeouts and pool size as the vendor client,
    redirects off (per request), no cookies kept, no compressed answer asked for and none
    inflated (the 64 KB cap holds on the wire), and (unless ``allow_private``) a resolver that
    connects only to addresses the SSRF guard allows. Call it on the event loop that uses it."""
    connector = aiohttp.TCPConnector(
        limit=settings.max_connections,
        resolver=None if allow_private else GuardedResolver(),
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(
            sock_connect=settings.connect_timeout_s,
            sock_read=settings.read_timeout_s,
            connect=settings.read_timeout_s,
        ),
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
    )
