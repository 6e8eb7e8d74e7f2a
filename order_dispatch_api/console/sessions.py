"""Console sessions: an API key exchanged for a session cookie, and the CSRF token of its forms.

An operator types an API key once; the console checks it with the API's key store and keeps a
session in Redis, ``<prefix>:console:session:<sha256 of the cookie>`` (the cookie itself is
never stored), holding the key's name and scopes and the session's CSRF token. The session
expires ``idle_s`` after its last use and at most ``max_s`` after login. The cookie is HttpOnly,
SameSite=Strict, path ``/console``, and Secure whenever the request came over TLS.

Every form carries the session's CSRF token; the server compares it in constant time. The
login form, which has no session yet, uses a double-submit token: a random value both in a
short-lived cookie and in the form.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis

#: The session cookie, and the login form's double-submit cookie.
COOKIE = "od_console"
LOGIN_COOKIE = "od_console_login"
#: Scopes the console knows: ``read`` sees, ``read:orders`` also sees orders, ``operate`` acts.
READ, READ_ORDERS, OPERATE = "read", "read:orders", "operate"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a key belongs to: its name (named as the operator in events) and its scopes."""

    name: str
    scopes: frozenset[str]
    key_id: str | None = None
    """The key's id in the key store, to end the session when the key is revoked."""


class KeyCheck(Protocol):
    """What the console needs of the API's key store (its authenticator)."""

    async def __call__(self, key: str) -> Principal | None:
        """The key's owner, or None for a wrong or revoked key."""


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in operator."""

    principal: Principal
    csrf: str
    started: float

    def can(self, scope: str) -> bool:
        """True when the session's key has ``scope``."""
        return scope in self.principal.scopes


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    """Constant-time comparison of two tokens (False when either is missing)."""
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode(), b.encode())


class SessionStore:
    """Sessions of one key prefix, in Redis."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        *,
        idle_s: int = 1800,
        max_s: int = 8 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.idle_s = idle_s
        self.max_s = max_s
        self.clock = clock

    def _key(self, token: str) -> str:
        return f"{self.prefix}:console:session:{_digest(token)}"

    def start(self, principal: Principal) -> tuple[str, Session]:
        """A new session for ``principal``: the cookie value and the session."""
        token = secrets.token_urlsafe(32)
        session = Session(principal, secrets.token_urlsafe(32), self.clock())
        doc = {
            "name": principal.name,
            "scopes": sorted(principal.scopes),
            "key_id": principal.key_id,
            "csrf": session.csrf,
            "started": session.started,
        }
        self.client.set(self._key(token), json.dumps(doc), ex=self.idle_s)
        return token, session

    def get(self, token: str | None) -> Session | None:
        """The session of cookie ``token``, renewed for another ``idle_s``; None when there is
        none, it expired, or it is older than ``max_s``."""
        if not token:
            return None
        key = self._key(token)
        raw = self.client.get(key)
        if raw is None:
            return None
        try:
            doc = json.loads(raw)
            session = Session(
                Principal(str(doc["name"]), frozenset(doc["scopes"]), doc.get("key_id")),
                str(doc["csrf"]),
                float(doc["started"]),
            )
        except (ValueError, KeyError, TypeError):
            self.client.delete(key)
            return None
        if self.clock() - session.started > self.max_s:
            self.client.delete(key)
            return None
        self.client.expire(key, self.idle_s)
        return session

    def end(self, token: str | None) -> None:
        """Log out: the session is gone."""
        if token:
            self.client.delete(self._key(token))
