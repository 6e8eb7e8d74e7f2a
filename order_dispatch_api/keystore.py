"""API keys: created once and shown once, stored as a SHA-256 digest, checked in constant time.

A key reads ``odk_<id>_<secret>``: the id finds its record (``Keys.api_key``), the secret (256
random bits) is never stored. The record holds the digest of the whole key, the key's name and
scopes, its rate limit and when it was created and revoked. Checking a key and spending one cell
of its rate limit (the product's GCRA: the vendor gate's ``admit`` function of
:mod:`order_dispatch.store.lua`, whose circuit breaker stays closed for a key) is one Redis
round trip; the digest is then
compared again with :func:`hmac.compare_digest`, which decides. A revoked key is refused at its
next request, in every API process.

Keys never go into a log: only their id (``key_id``) and name do.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import redis
import redis.asyncio

from order_dispatch.keys import Keys
from order_dispatch.store.lua import ENQUEUE_FN, GATE_FN
from order_dispatch.store.records import RateLimit


class Scope(StrEnum):
    """What a key may do."""

    ENQUEUE = "enqueue"
    """POST /v1/jobs and /v1/jobs/batch."""
    READ = "read"
    """Job status and timeline, result events, metrics: ids, statuses, masked errors."""
    READ_ORDERS = "read:orders"
    """``read``, and the orders themselves (their customers' personal data)."""
    OPERATE = "operate"
    """Operators' actions (the console): replay, resolve, purge."""


#: Scopes a scope brings with it.
_IMPLIES: dict[Scope, frozenset[Scope]] = {Scope.READ_ORDERS: frozenset({Scope.READ})}

_TOKEN = re.compile(r"odk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")


def parse_scopes(text: str | Iterable[str]) -> frozenset[Scope]:
    """``enqueue,read`` as scopes; :class:`ValueError` naming an unknown one."""
    names = text.split(",") if isinstance(text, str) else list(text)
    found: set[Scope] = set()
    for name in (n.strip() for n in names):
        if not name:
            continue
        try:
            found.add(Scope(name))
        except ValueError:
            known = ", ".join(s.value for s in Scope)
            raise ValueError(f"unknown scope {name!r} (known: {known})") from None
    if not found:
        raise ValueError("give at least one scope")
    return frozenset(found)


def _with_implied(scopes: Iterable[Scope]) -> frozenset[Scope]:
    out = set(scopes)
    for scope in list(out):
        out |= _IMPLIES.get(scope, frozenset())
    return frozenset(out)


def digest(token: str) -> str:
    """The stored form of a key: SHA-256 of the whole key, hex. A key holds 256 random bits, so
    a fast hash is enough (nothing to brute-force, unlike a password)."""
    return hashlib.sha256(token.encode()).hexdigest()


def key_id_of(token: str) -> str | None:
    """The id of a well-formed key, else None."""
    match = _TOKEN.fullmatch(token)
    return match[1] if match else None


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's record (never the key itself)."""

    key_id: str
    name: str
    scopes: frozenset[Scope]
    rate_per_minute: float
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        """False once revoked."""
        return self.revoked_at is None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready fields (``api-keys list --json``)."""
        return {
            "key_id": self.key_id,
            "name": self.name,
            "scopes": sorted(s.value for s in self.scopes),
            "rate_per_minute": self.rate_per_minute,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _record(key_id: str, raw: dict[Any, Any]) -> ApiKey:
    fields = {_text(k): _text(v) for k, v in raw.items()}
    revoked = fields.get("revoked_at")
    return ApiKey(
        key_id=key_id,
        name=fields.get("name", ""),
        scopes=frozenset(Scope(s) for s in fields.get("scopes", "").split(",") if s),
        rate_per_minute=float(fields.get("rate_per_minute", "0") or 0),
        created_at=datetime.fromisoformat(fields["created_at"]),
        revoked_at=datetime.fromisoformat(revoked) if revoked else None,
    )


class KeyStore:
    """Creates, lists and revokes keys (the ``api-keys`` commands); synchronous."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def create(
        self, name: str, scopes: Iterable[Scope], rate_per_minute: float
    ) -> tuple[str, ApiKey]:
        """A new key and its record; the key is in no other place, so show it once."""
        if not name.strip():
            raise ValueError("a key needs a name (who or what uses it)")
        if rate_per_minute <= 0:
            raise ValueError("the rate limit must be above 0 requests a minute")
        key_id = secrets.token_hex(8)
        token = f"odk_{key_id}_{secrets.token_urlsafe(32)}"
        limit = RateLimit(rate_per_minute)
        record = ApiKey(
            key_id, name.strip(), frozenset(scopes), rate_per_minute, datetime.now(UTC), None
        )
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(
            self.keys.api_key(key_id),
            mapping={
                "name": record.name,
                "scopes": ",".join(sorted(s.value for s in record.scopes)),
                "hash": digest(token),
                "rate_per_minute": repr(rate_per_minute),
                "interval_s": repr(limit.interval_s),
                "tolerance_s": repr(limit.tolerance_s),
                "created_at": record.created_at.isoformat(),
            },
        )
        pipe.sadd(self.keys.api_keys, key_id)
        pipe.execute()
        return token, record

    def list(self) -> list[ApiKey]:
        """Every key's record, oldest first."""
        ids = sorted(_text(i) for i in self.client.smembers(self.keys.api_keys))
        pipe = self.client.pipeline(transaction=False)
        for key_id in ids:
            pipe.hgetall(self.keys.api_key(key_id))
        found = [_record(i, raw) for i, raw in zip(ids, pipe.execute(), strict=True) if raw]
        return sorted(found, key=lambda k: (k.created_at, k.key_id))

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke ``key_id`` (or a whole key); :class:`KeyError` when there is no such key."""
        key_id = key_id_of(key_id) or key_id
        name = self.keys.api_key(key_id)
        if not self.client.exists(name):
            raise KeyError(f"no API key with id {key_id!r}")
        self.client.hsetnx(name, "revoked_at", datetime.now(UTC).isoformat())
        return _record(key_id, self.client.hgetall(name))

    def any_active(self) -> bool:
        """True when at least one key is not revoked."""
        return any(k.active for k in self.list())


class Refusal(StrEnum):
    """Why a request's key was not let through."""

    MISSING = "missing"
    WRONG = "wrong"
    REVOKED = "revoked"
    RATE = "rate"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the key's id, name and scopes (with those they imply)."""

    key_id: str
    name: str
    scopes: frozenset[Scope]


class Denied(Exception):
    """A request refused for its key; ``wait_s`` is set for :attr:`Refusal.RATE`."""

    def __init__(self, reason: Refusal, wait_s: float = 0.0) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.wait_s = wait_s


#: Check a key and spend one cell of its rate limit: ``record``, ``rate`` and ``circuit`` (never
#: written) are its keys, ``presented`` the digest sent, ``now`` '' for Redis's time. Returns
#: {verdict, stored digest, scopes, name, wait s}; verdict: unknown, revoked, wrong, ok, rate.
#: A cell is spent only for the right digest (a wrong key cannot drain a key's budget).
CHECK_FN = (
    GATE_FN
    + """
local function check_key(record, rate, circuit, presented, now)
  local r = redis.call('HMGET', record, 'hash', 'scopes', 'name', 'revoked_at', 'interval_s',
    'tolerance_s')
  if not r[1] then return {'unknown', '', '', '', '0'} end
  if r[4] then return {'revoked', r[1], '', '', '0'} end
  if r[1] ~= presented then return {'wrong', r[1], '', '', '0'} end
  local a = admit(rate, circuit, now, r[5], r[6], 0, 0)
  if a[1] == 'rate' then return {'rate', r[1], r[2], r[3], a[2]} end
  return {'ok', r[1], r[2], r[3], '0'}
end
"""
)

# KEYS: the key's record, its rate key, its circuit. ARGV: the digest presented, now.
_CHECK_LUA = CHECK_FN + "return check_key(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])"

# The key check, its scope and the job's enqueue in one script: the job is recorded only when
# the key is right, not revoked, within its rate and holds the scope. KEYS: the check's three,
# then the enqueue script's (job hash, document, queue and wake lists when the broker is this
# Redis). ARGV: the digest presented, now, the scope, then the enqueue script's seven. Returns the
# check's five fields (verdict 'scope' when the scope is missing: its cell is spent, as with a
# separate check), then the enqueue's three when the verdict is ok.
_CHECK_AND_ENQUEUE_LUA = (
    CHECK_FN
    + ENQUEUE_FN
    + """
local c = check_key(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
if c[1] ~= 'ok' then return c end
if not string.find(',' .. c[3] .. ',', ',' .. ARGV[3] .. ',', 1, true) then
  c[1] = 'scope'
  return c
end
local e = enqueue(KEYS[4], KEYS[5], KEYS[6], KEYS[7], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8],
  ARGV[9], ARGV[10])
c[6], c[7], c[8] = e[1], e[2], e[3]
return c
"""
)


@dataclass(frozen=True, slots=True)
class Presented:
    """A well-formed key as a request sent it: its id and the digest of the whole key."""

    key_id: str
    digest: str


@dataclass(frozen=True, slots=True)
class _Seen:
    digest: str
    caller: Caller
    until: float
    """Monotonic time after which the entry is forgotten."""
    blocked_until: float = 0.0
    """Monotonic time before which the key's rate limit refuses it (its last 429's wait)."""


class Authenticator:
    """Checks a request's key and spends one cell of its rate limit (asyncio, one round trip).

    It remembers for :attr:`REMEMBER_S` which keys its checks found right (digest and scopes,
    and the wait of a 429): :meth:`known` reads that memory, so the API can read and validate a
    body before the one script that checks the key again and enqueues
    (:meth:`check_and_enqueue`). The memory never lets a request through by itself: Redis
    decides each request, so a revoked key is refused at its next request, in every process.
    """

    REMEMBER_S = 60.0
    MAX_REMEMBERED = 10_000

    def __init__(self, client: redis.asyncio.Redis, keys: Keys) -> None:
        self.keys = keys
        self._check = client.register_script(_CHECK_LUA)
        self._check_and_enqueue = client.register_script(_CHECK_AND_ENQUEUE_LUA)
        self._seen: dict[str, _Seen] = {}

    @staticmethod
    def presented(authorization: str | None) -> Presented:
        """The key of an ``Authorization`` header, or :class:`Denied` (missing or malformed)."""
        if not authorization:
            raise Denied(Refusal.MISSING)
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        key_id = key_id_of(token) if scheme.lower() == "bearer" else None
        if key_id is None:
            raise Denied(Refusal.WRONG)
        return Presented(key_id, digest(token))

    def _key_names(self, key_id: str) -> list[str]:
        keys = self.keys
        return [keys.api_key(key_id), keys.api_rate(key_id), keys.api_circuit(key_id)]

    async def check(self, authorization: str | None, now: float | None = None) -> Caller:
        """The caller of a request with this ``Authorization`` header, or :class:`Denied`."""
        key = self.presented(authorization)
        reply = await self._check(
            keys=self._key_names(key.key_id), args=[key.digest, "" if now is None else repr(now)]
        )
        return self._verdict(key, reply)

    def known(self, authorization: str | None, scope: Scope) -> Presented | None:
        """The key of this header when a check of the last :attr:`REMEMBER_S` found it right,
        holding ``scope``, and no 429 of it still runs; else None (check it with
        :meth:`check`)."""
        try:
            key = self.presented(authorization)
        except Denied:
            return None
        seen = self._seen.get(key.key_id)
        if seen is None:
            return None
        now = time.monotonic()
        if (
            now >= seen.until
            or now < seen.blocked_until
            or scope not in seen.caller.scopes
            or not hmac.compare_digest(seen.digest, key.digest)
        ):
            return None
        return key

    async def check_and_enqueue(
        self, key: Presented, scope: Scope, keys: list[str], args: list[str | int]
    ) -> tuple[Caller, list[Any]]:
        """Check ``key`` and spend a cell of its rate limit, as :meth:`check`, then, when it
        holds ``scope``, run the job store's enqueue script with ``keys`` and ``args``, all in
        one script: the key's caller and the enqueue's reply. :class:`Denied` or
        :class:`MissingScope` when refused; nothing is then enqueued."""
        reply = await self._check_and_enqueue(
            keys=self._key_names(key.key_id) + keys, args=[key.digest, "", scope.value, *args]
        )
        if _text(reply[0]) == "scope":
            caller = self._verdict(key, ["ok", *reply[1:5]])
            raise MissingScope(caller, scope)
        caller = self._verdict(key, reply[:5])
        return caller, list(reply[5:8])

    def _verdict(self, key: Presented, reply: list[Any]) -> Caller:
        verdict, stored, scopes, name, wait = (_text(v) for v in reply[:5])
        if verdict == "revoked":
            self._seen.pop(key.key_id, None)
            raise Denied(Refusal.REVOKED)
        if verdict == "unknown" or not hmac.compare_digest(stored, key.digest):
            self._seen.pop(key.key_id, None)
            raise Denied(Refusal.WRONG)
        granted = parse_scopes(scopes) if scopes else frozenset()
        caller = Caller(key.key_id, name, _with_implied(granted))
        if verdict == "rate":
            self._remember(key, caller, blocked_s=float(wait))
            raise Denied(Refusal.RATE, float(wait))
        self._remember(key, caller)
        return caller

    def _remember(self, key: Presented, caller: Caller, blocked_s: float = 0.0) -> None:
        if len(self._seen) >= self.MAX_REMEMBERED and key.key_id not in self._seen:
            self._seen.clear()
        now = time.monotonic()
        self._seen[key.key_id] = _Seen(
            key.digest, caller, now + self.REMEMBER_S, now + blocked_s if blocked_s else 0.0
        )


class MissingScope(Exception):
    """A right key without the scope a request needs (403)."""

    def __init__(self, caller: Caller, scope: Scope) -> None:
        super().__init__(scope.value)
        self.caller = caller
        self.scope = scope
