"""Webhook endpoints and what is sent to them: the book of endpoints in Redis, their secrets,
the Standard Webhooks payload and signature, and the delivery jobs the fan-out makes.

A delivery is a job like any order's (vendor :data:`~order_dispatch.contract.WEBHOOKS`, account
the endpoint's id, operation ``notify``, the payload in ``event``), so it runs on the delivery
machinery every order uses: its queue ``<prefix>.webhooks``, the retry policy and the durable
schedule, the per-account circuit breaker and rate limit (here: per endpoint), the ledger, the
timeline, the dead letters and replay. The signature follows Standard Webhooks 1.0
(https://www.standardwebhooks.com/): ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets as secrets_module
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import redis
from pydantic import BaseModel, ConfigDict, Field

from order_dispatch.contract import WEBHOOKS, EventStatus, Job, Operation, ResultEvent
from order_dispatch.egress import check_url
from order_dispatch.keys import Keys

#: How long a rotated-out secret keeps signing beside the new one.
ROTATION_OVERLAP_S = 24 * 3600
#: The consumer group of the fan-out on the results stream.
FANOUT_GROUP = "webhooks"
#: The statuses an endpoint may subscribe to (all of them when it names none).
EVENT_TYPES = tuple(s.value for s in EventStatus)
SECRET_PREFIX = "whsec_"


class EndpointNotFound(LookupError):
    """No endpoint has that id."""


class Secret(BaseModel):
    """One signing secret (``whsec_`` + base64) and until when it signs (None: no end)."""

    model_config = ConfigDict(frozen=True)

    value: str
    expires_at: float | None = None


class Endpoint(BaseModel):
    """A registered receiver: where events go, which ones, and how they are signed."""

    model_config = ConfigDict(frozen=True)

    id: str
    url: str
    events: list[str] = Field(default_factory=list, description="Statuses; empty: every one.")
    vendor: str | None = None
    description: str | None = None
    enabled: bool = True
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    rate_per_minute: float | None = None
    created_at: datetime
    secrets: list[Secret]

    def signing_secrets(self, now: float | None = None) -> list[str]:
        """The secrets that sign now: the newest first, then any rotated out less than a day
        ago."""
        now = time.time() if now is None else now
        return [s.value for s in self.secrets if s.expires_at is None or s.expires_at > now]

    def wants(self, event: ResultEvent) -> bool:
        """True when this endpoint subscribed to ``event`` (and is enabled)."""
        return (
            self.enabled
            and event.vendor != WEBHOOKS
            and (not self.events or event.status.value in self.events)
            and (self.vendor is None or self.vendor == event.vendor)
        )

    def public(self) -> dict[str, Any]:
        """What listings show: everything but the secrets."""
        return self.model_dump(mode="json", exclude={"secrets"})


def new_secret() -> str:
    """A fresh ``whsec_`` secret: 32 random bytes, base64."""
    return SECRET_PREFIX + base64.b64encode(secrets_module.token_bytes(32)).decode()


def _key_bytes(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


def sign(msg_id: str, timestamp: int, body: bytes, secrets: Sequence[str]) -> str:
    """The ``webhook-signature`` header: ``v1,<b64>`` per secret, space-separated."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(_key_bytes(s), signed, hashlib.sha256).digest()).decode()
        for s in secrets
    )


def message_id(event_id: str) -> str:
    """The ``webhook-id`` of an event: the same for every endpoint and every retry.

    Derived from the event id (``msg_`` + 32 hex digits of its SHA-256) rather than the id
    itself: the specification forbids a full stop in the id and ids chosen by a user, and an
    event id holds both (``<job id>:<run>.<token>:...``, the job id chosen by the producer).
    The payload's ``data.event_id`` carries the event id itself."""
    return "msg_" + hashlib.sha256(event_id.encode()).hexdigest()[:32]


def payload(event: ResultEvent) -> dict[str, Any]:
    """The Standard Webhooks payload of a result event: ``type`` ``order.<status>``,
    ``timestamp`` when it happened, ``data`` the event as the results stream has it."""
    return {
        "type": f"order.{event.status.value}",
        "timestamp": event.occurred_at.isoformat(),
        "data": event.model_dump(mode="json", exclude_none=True),
    }


def body_of(job: Job) -> bytes:
    """The exact bytes a delivery sends (and signs): its payload as compact JSON."""
    return json.dumps(job.event, separators=(",", ":"), ensure_ascii=False).encode()


def delivery_job(endpoint_id: str, event: ResultEvent) -> Job:
    """The delivery of ``event`` to an endpoint: one stable job id per (endpoint, event), so
    the fan-out making it twice (a worker that died before its ack) queues it once."""
    msg = message_id(event.event_id)
    return Job(
        job_id=f"{WEBHOOKS}:{endpoint_id}:{msg}",
        vendor=WEBHOOKS,
        account=endpoint_id,
        operation=Operation.NOTIFY,
        order_id=event.order_id[:50],
        event=payload(event),
    )


def ping_job(endpoint_id: str) -> Job:
    """A ``webhook.ping`` delivery to one endpoint (``webhooks test``)."""
    now = datetime.now(UTC)
    msg = "msg_" + secrets_module.token_hex(16)
    return Job(
        job_id=f"{WEBHOOKS}:{endpoint_id}:{msg}",
        vendor=WEBHOOKS,
        account=endpoint_id,
        operation=Operation.NOTIFY,
        order_id="ping",
        event={
            "type": "webhook.ping",
            "timestamp": now.isoformat(),
            "data": {"endpoint_id": endpoint_id, "message": "ping from order-dispatch"},
        },
    )


def msg_id_of(job: Job) -> str:
    """The ``webhook-id`` a delivery job sends (the last part of its job id)."""
    return job.job_id.rsplit(":", 1)[-1]


class EndpointBook:
    """The endpoints, kept in Redis (hash ``<prefix>:webhooks:endpoints``, id -> JSON), and
    when each one started failing (``<prefix>:webhooks:failing``)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        # The endpoints last parsed, by their stored JSON: a book read often (the fan-out's,
        # once per batch) parses only what changed.
        self._parsed: dict[Any, Endpoint] = {}

    def add(
        self,
        url: str,
        *,
        allow_private: bool,
        events: Iterable[str] = (),
        vendor: str | None = None,
        description: str | None = None,
        rate_per_minute: float | None = None,
    ) -> Endpoint:
        """Register an endpoint (the URL passes the SSRF guard first); its secret is in the
        returned endpoint, shown once."""
        check_url(url, allow_private=allow_private)
        wanted = sorted({e.strip() for e in events if e.strip()})
        unknown = [e for e in wanted if e not in EVENT_TYPES]
        if unknown:
            raise ValueError(
                f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}"
            )
        endpoint = Endpoint(
            id="ep_" + secrets_module.token_hex(8),
            url=url,
            events=wanted,
            vendor=vendor,
            description=description,
            rate_per_minute=rate_per_minute,
            created_at=datetime.now(UTC),
            secrets=[Secret(value=new_secret())],
        )
        # The fan-out's group starts at the stream's end: an endpoint gets the events that
        # happen after it exists, not the past week's. With no endpoint left the fan-out stops
        # reading, so the first endpoint added after that moves the group to the end again.
        try:
            self.client.xgroup_create(self.keys.results, FANOUT_GROUP, id="$", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            if not self.client.hlen(self.keys.webhook_endpoints):
                self.client.xgroup_setid(self.keys.results, FANOUT_GROUP, id="$")
        self.client.hset(self.keys.webhook_endpoints, endpoint.id, endpoint.model_dump_json())
        return endpoint

    def get(self, endpoint_id: str) -> Endpoint:
        """The endpoint ``endpoint_id`` (:class:`EndpointNotFound`)."""
        raw = self.client.hget(self.keys.webhook_endpoints, endpoint_id)
        if raw is None:
            raise EndpointNotFound(f"no webhook endpoint {endpoint_id!r}")
        return Endpoint.model_validate_json(raw)

    def all(self) -> list[Endpoint]:
        """Every endpoint, oldest first."""
        raw: dict[Any, Any] = self.client.hgetall(self.keys.webhook_endpoints)
        parsed = {
            v: self._parsed.get(v) or Endpoint.model_validate_json(v) for v in raw.values()
        }
        self._parsed = parsed
        return sorted(parsed.values(), key=lambda e: (e.created_at, e.id))

    def get_with_clock(self, endpoint_id: str) -> tuple[Endpoint, float | None]:
        """The endpoint ``endpoint_id`` (:class:`EndpointNotFound`) and when its failing clock
        started (None: not failing), in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(self.keys.webhook_endpoints, endpoint_id)
        pipe.hget(self.keys.webhook_failing, endpoint_id)
        raw, since = pipe.execute()
        if raw is None:
            raise EndpointNotFound(f"no webhook endpoint {endpoint_id!r}")
        return Endpoint.model_validate_json(raw), None if since is None else float(since)

    def _update(self, endpoint_id: str, **changes: Any) -> Endpoint:
        """Change fields of one endpoint; retried if another writer changed it meanwhile."""
        key = self.keys.webhook_endpoints
        with self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    raw = pipe.hget(key, endpoint_id)
                    if raw is None:
                        raise EndpointNotFound(f"no webhook endpoint {endpoint_id!r}")
                    endpoint = Endpoint.model_validate_json(raw).model_copy(update=changes)
                    pipe.multi()
                    pipe.hset(key, endpoint_id, endpoint.model_dump_json())
                    pipe.execute()
                    return endpoint
                except redis.WatchError:
                    continue

    def disable(self, endpoint_id: str, reason: str) -> Endpoint:
        """Stop sending to the endpoint; ``reason`` says why (a person, a 410, failing)."""
        self.client.hdel(self.keys.webhook_failing, endpoint_id)
        return self._update(
            endpoint_id, enabled=False, disabled_reason=reason, disabled_at=datetime.now(UTC)
        )

    def enable(self, endpoint_id: str) -> Endpoint:
        """Send to the endpoint again (its failing clock starts over)."""
        self.client.hdel(self.keys.webhook_failing, endpoint_id)
        return self._update(endpoint_id, enabled=True, disabled_reason=None, disabled_at=None)

    def delete(self, endpoint_id: str) -> None:
        """Forget the endpoint (deliveries still queued for it end in the dead letters)."""
        if not self.client.hdel(self.keys.webhook_endpoints, endpoint_id):
            raise EndpointNotFound(f"no webhook endpoint {endpoint_id!r}")
        self.client.hdel(self.keys.webhook_failing, endpoint_id)

    def rotate_secret(self, endpoint_id: str, now: float | None = None) -> tuple[Endpoint, str]:
        """A new secret signs from now on; the old one signs beside it for 24 h."""
        now = time.time() if now is None else now
        endpoint = self.get(endpoint_id)
        fresh = new_secret()
        kept = [
            Secret(value=s.value, expires_at=s.expires_at or now + ROTATION_OVERLAP_S)
            for s in endpoint.secrets
            if s.expires_at is None or s.expires_at > now
        ]
        updated = self._update(endpoint_id, secrets=[Secret(value=fresh), *kept])
        return updated, fresh

    def observe(
        self, endpoint_id: str, *, success: bool, now: float, clock_seen: bool = True
    ) -> float:
        """Note a delivery's answer: a success clears the endpoint's failing clock, a failure
        starts it if it was not running. Returns how long the endpoint has been failing.

        ``clock_seen`` False says the caller saw no clock running a moment ago (its last read of
        the endpoint, and no failure since): a success then writes nothing."""
        key = self.keys.webhook_failing
        if success:
            if clock_seen:
                self.client.hdel(key, endpoint_id)
            return 0.0
        pipe = self.client.pipeline(transaction=False)
        pipe.hsetnx(key, endpoint_id, repr(now))
        pipe.hget(key, endpoint_id)
        _, since = pipe.execute()
        return max(0.0, now - float(since)) if since is not None else 0.0
