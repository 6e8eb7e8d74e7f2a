"""The base-owned sender: auth, sending, the transport-error mapping and logging for every vendor.

Vendor modules are pure (:mod:`worker.vendors.base`); this is where their requests meet the
network. Everything here runs on the worker process's event loop (:mod:`worker.runtime`).

Tokens: one cache per worker process, keyed by (vendor, account), shared by every concurrent
task. When many tasks need a token at the same moment it is fetched once; it is refreshed
before it expires; after a 401/403 it is dropped, fetched again and the request resent (at most
twice, for a token revoked while it was being fetched).
A token fetch that fails is classified like any other failure of a request that never carried
the order: connection problems and 5xx retry, a refusal of the credentials is an auth failure.
It never makes an order ``in_doubt``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import httpx
from httpx_aiohttp.transport import map_aiohttp_exceptions

from order_dispatch import redact
from order_dispatch.contract import WEBHOOKS, ErrorKind, Job
from order_dispatch.egress import refusal
from order_dispatch.logs import get_logger
from order_dispatch.settings import Settings
from order_dispatch.webhooks import EndpointBook, EndpointNotFound
from worker.http import TransportFailure, map_transport_errors, new_webhook_session
from worker.outcomes import Outcome, OutcomeKind
from worker.vendors import UnknownVendor, vendor_class
from worker.vendors.base import (
    ConfigurationError,
    Lookup,
    Token,
    UnparsableResponse,
    Vendor,
    VendorRequest,
    VendorResponse,
    classify_status,
)
from worker.vendors.webhooks import BODY_LIMIT, Webhooks

log = get_logger("worker.vendors")

#: Sends of one request at most when the vendor keeps refusing tokens (the first and resends).
MAX_TOKEN_SENDS = 3
#: A token is refreshed when less than this share of its life, or this many seconds, is left.
REFRESH_SHARE = 0.1
REFRESH_MIN_S = 30.0
#: How long a worker process keeps a webhook endpoint read from Redis.
ENDPOINT_CACHE_S = 1.0


class TokenFailure(Exception):
    """The token could not be had; ``outcome`` says what that means for the job."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        super().__init__(outcome.error.message if outcome.error else "token fetch failed")


@dataclass(slots=True)
class _CachedToken:
    token: Token
    refresh_at: float  # monotonic
    generation: int


@dataclass(frozen=True, slots=True)
class Held:
    """A token as a task holds it: its value, which fetch it came from, and whether this task's
    own call fetched it."""

    value: str
    generation: int
    fetched_here: bool


class TokenCache:
    """Access tokens per (vendor, account) for one worker process; fetched once at a time."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], _CachedToken] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self.fetches = 0

    async def get(self, vendor: Vendor, fetch: Callable[[Vendor], Awaitable[Token]]) -> Held:
        """A valid token for ``vendor``'s account, fetching it if there is none or it is old."""
        key = (vendor.name, vendor.account_name)
        cached = self._tokens.get(key)
        if cached is not None and time.monotonic() < cached.refresh_at:
            return Held(cached.token.value, cached.generation, False)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(key)
            if cached is not None and time.monotonic() < cached.refresh_at:
                return Held(cached.token.value, cached.generation, False)
            token = await fetch(vendor)
            redact.register([token.value])
            self.fetches += 1
            life = token.expires_in_s
            refresh_in = (
                float("inf")
                if life is None
                else max(0.0, life - max(REFRESH_MIN_S, life * REFRESH_SHARE))
            )
            self._tokens[key] = _CachedToken(token, time.monotonic() + refresh_in, self.fetches)
            return Held(token.value, self.fetches, True)

    def invalidate(self, vendor: Vendor, held: Held) -> None:
        """Drop ``held`` if it is still the cached token (a 401 says it stopped working)."""
        key = (vendor.name, vendor.account_name)
        cached = self._tokens.get(key)
        if cached is not None and cached.generation == held.generation:
            del self._tokens[key]


class Sender:
    """Sends vendor requests for every task of one worker process."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        settings: Settings,
        *,
        webhook_session: aiohttp.ClientSession | None = None,
        endpoints: EndpointBook | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.tokens = TokenCache()
        self._vendors: dict[tuple[str, str], Vendor] = {}
        self.webhook_session = webhook_session
        """The session webhook deliveries go out on (:func:`worker.http.new_webhook_session`);
        made on first use when not given."""
        self.endpoints = endpoints
        # Endpoints read from Redis, kept a moment: a disable or a rotation applies within it.
        self._endpoints: dict[str, tuple[float, Webhooks]] = {}

    def vendor(self, vendor: str, account: str) -> Vendor:
        """The adapter of ``vendor``'s account ``account`` (ConfigurationError, UnknownVendor).

        For :data:`WEBHOOKS` the account is an endpoint id, read from the endpoint book (kept
        for :data:`ENDPOINT_CACHE_S`); a disabled or unknown endpoint is a ConfigurationError.
        """
        if vendor == WEBHOOKS:
            return self._webhook_vendor(account)
        key = (vendor, account)
        adapter = self._vendors.get(key)
        if adapter is None:
            adapter = build_vendor(self.settings, vendor, account)
            redact.register(adapter.secrets())
            adapter = self._vendors.setdefault(key, adapter)
        return adapter

    def _webhook_vendor(self, endpoint_id: str) -> Webhooks:
        now = time.monotonic()
        cached = self._endpoints.get(endpoint_id)
        if cached is not None and now - cached[0] < ENDPOINT_CACHE_S:
            adapter = cached[1]
        else:
            if self.endpoints is None:
                raise ConfigurationError("this worker has no webhook endpoint book")
            try:
                endpoint, failing_since = self.endpoints.get_with_clock(endpoint_id)
            except EndpointNotFound as exc:
                raise ConfigurationError(str(exc)) from None
            adapter = Webhooks(
                endpoint,
                default_rate_per_minute=self.settings.webhooks_rate_per_minute,
                clock_seen=failing_since is not None,
            )
            redact.register(adapter.secrets())
            self._endpoints[endpoint_id] = (now, adapter)
        if not adapter.endpoint.enabled:
            raise ConfigurationError(
                f"webhook endpoint {endpoint_id} is disabled "
                f"({adapter.endpoint.disabled_reason or 'by an operator'}); "
                "replay the delivery once it is enabled"
            )
        return adapter

    def forget_endpoint(self, endpoint_id: str) -> None:
        """Read the endpoint from Redis again at its next delivery."""
        self._endpoints.pop(endpoint_id, None)

    async def submit(self, vendor: Vendor, job: Job, request: VendorRequest) -> Outcome:
        """Authenticate, send and read ``request``: the pipeline every vendor shares."""
        try:
            async with asyncio.timeout(self.settings.http.deadline_s):
                response = await self._send_authorized(vendor, request)
        except TokenFailure as failure:
            return failure.outcome
        except TransportFailure as failure:
            kind = OutcomeKind.UNKNOWN if failure.maybe_sent else OutcomeKind.RETRYABLE
            log.info("vendor call failed", error=failure.message, maybe_sent=failure.maybe_sent)
            return Outcome.failure(kind, failure.kind, failure.message)
        except TimeoutError:
            message = f"no answer within the deadline of {self.settings.http.deadline_s:g} s"
            return Outcome.failure(OutcomeKind.UNKNOWN, ErrorKind.TIMEOUT, message)
        return vendor.read(job, response)

    async def lookup(self, vendor: Vendor, job: Job) -> Lookup:
        """Find ``job``'s order at the vendor by our reference (reconciliation)."""
        request = vendor.lookup_request(job)
        if request is None:
            return Lookup.unknown(f"{vendor.name} offers no lookup by our reference")
        try:
            async with asyncio.timeout(self.settings.http.deadline_s):
                response = await self._send_authorized(vendor, request)
        except TokenFailure as failure:
            return Lookup.unknown(f"lookup failed: {failure}")
        except TransportFailure as failure:
            return Lookup.unknown(f"lookup failed: {failure.message}")
        except TimeoutError:
            return Lookup.unknown("lookup got no answer within the deadline")
        try:
            return vendor.parse_lookup(job, response)
        except UnparsableResponse as exc:
            return Lookup.unknown(f"lookup answer unreadable: {exc}")

    async def _send_authorized(self, vendor: Vendor, request: VendorRequest) -> VendorResponse:
        if not vendor.uses_tokens:
            return await self._send(vendor, vendor.authorize(request, None))
        held = await self.tokens.get(vendor, self._fetch_token)
        response = await self._send(vendor, vendor.authorize(request, held.value))
        renewed = False
        for _ in range(MAX_TOKEN_SENDS - 1):
            if response.status not in (401, 403) or renewed:
                # A token this call fetched after a refusal, refused too: the refusal is real.
                return response
            # The token may have been revoked or expired early: drop it and resend with a new
            # one. A token that another task fetched meanwhile may itself be already revoked
            # (revocation racing a fetch); then this call fetches one of its own.
            log.info("vendor refused the token; using a new one", http_status=response.status)
            self.tokens.invalidate(vendor, held)
            held = await self.tokens.get(vendor, self._fetch_token)
            renewed = held.fetched_here
            response = await self._send(vendor, vendor.authorize(request, held.value))
        return response

    async def _fetch_token(self, vendor: Vendor) -> Token:
        request = vendor.token_request()
        try:
            response = await self._send(vendor, request)
        except TransportFailure as failure:
            # The order was not sent: whatever happened to the token request, retrying is safe.
            raise TokenFailure(
                Outcome.failure(
                    OutcomeKind.RETRYABLE, failure.kind, f"token request: {failure.message}"
                )
            ) from None
        if not response.ok:
            kind, error_kind = classify_status(response.status)
            if response.status == 400:
                # OAuth2 (RFC 6749 5.2) answers 400 invalid_client for bad client credentials.
                kind, error_kind = OutcomeKind.PERMANENT, ErrorKind.AUTH
            code, message = vendor.error_detail(response)
            raise TokenFailure(
                Outcome.failure(
                    kind,
                    error_kind,
                    f"token request refused: {message or response.status}",
                    http_status=response.status,
                    code=code,
                    body=response.text,
                )
            )
        try:
            return vendor.parse_token(response)
        except UnparsableResponse as exc:
            raise TokenFailure(
                Outcome.failure(
                    OutcomeKind.RETRYABLE,
                    ErrorKind.AUTH,
                    f"token answer unreadable: {exc}",
                    http_status=response.status,
                    body=response.text,
                )
            ) from None

    async def _send(self, vendor: Vendor, request: VendorRequest) -> VendorResponse:
        if isinstance(vendor, Webhooks):
            return await self._send_webhook(vendor, request)
        headers = request.headers
        if request.json is not None and request.content is None:
            headers = {"Content-Type": "application/json", **headers}
        built = self.client.build_request(
            request.method,
            request.url(vendor.account.base_url),
            content=request.body(),
            headers=headers,
            params=request.params or None,
        )
        with map_transport_errors():
            return await exchange(self.client, built)

    async def _send_webhook(self, vendor: Webhooks, request: VendorRequest) -> VendorResponse:
        """POST a delivery: an IP-literal host checked here (the resolver sees names only),
        redirects not followed, the answer's body read up to :data:`BODY_LIMIT` bytes."""
        url = request.url(vendor.account.base_url)
        host = urlsplit(url).hostname or ""
        if not self.settings.webhooks_allow_private:
            with contextlib.suppress(ValueError):
                why = refusal(host.strip("[]"))
                if why is not None:
                    raise TransportFailure(
                        ErrorKind.TRANSPORT, f"cannot connect: {host} is {why} (refused)", False
                    )
        if self.webhook_session is None:
            self.webhook_session = new_webhook_session(
                self.settings.http, allow_private=self.settings.webhooks_allow_private
            )
        with map_transport_errors(), map_aiohttp_exceptions():
            async with self.webhook_session.request(
                request.method,
                url,
                data=request.body(),
                headers=request.headers,
                allow_redirects=False,
            ) as response:
                body = bytearray()
                while len(body) < BODY_LIMIT:
                    chunk = await response.content.read(BODY_LIMIT - len(body))
                    if not chunk:
                        break
                    body.extend(chunk)
        return VendorResponse(
            response.status,
            httpx.Headers(list(response.raw_headers)),
            bytes(body),
            response.reason or "",
        )


async def exchange(client: httpx.AsyncClient, request: httpx.Request) -> VendorResponse:
    """Send ``request`` straight to the transport the client mounts for its URL (its own, or a
    proxy's) and read the whole answer.

    ``client.send`` would add only what vendor calls never use (auth flows, redirects, which are
    off, event hooks, the cookie jar, its timing and log line) and, measured, cost about a third
    of the loop's CPU per call; the request itself is built by the client (``build_request``),
    with its default headers and timeouts.
    """
    transport = client._transport_for_url(request.url)  # private; httpx < 1 is pinned
    response = await transport.handle_async_request(request)
    try:
        body = await response.aread()
    finally:
        await response.aclose()
    return VendorResponse(response.status_code, response.headers, body, response.reason_phrase)


def build_vendor(settings: Settings, vendor: str, account: str) -> Vendor:
    """The adapter for a configured account, or ConfigurationError / UnknownVendor."""
    cls = vendor_class(vendor)
    configured = settings.account(vendor, account)
    if configured is None:
        raise ConfigurationError(
            f"no account {account!r} is configured for vendor {vendor!r} "
            f"(set ORDER_DISPATCH_ACCOUNTS__{vendor.upper()}__{account.upper()}__BASE_URL "
            "and its credentials)"
        )
    return cls(configured, account_name=account)


def check_accounts(settings: Settings) -> list[str]:
    """Every problem with the configured accounts, each naming the setting to fix."""
    problems = []
    for vendor, accounts in settings.accounts.items():
        for account in accounts:
            try:
                build_vendor(settings, vendor, account)
            except (ConfigurationError, UnknownVendor) as exc:
                problems.append(str(exc))
    return problems
