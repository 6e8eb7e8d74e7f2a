"""Console sessions in Redis: started from a key's owner, renewed while used, ended on logout,
after ``idle_s`` without use and ``max_s`` after login; the cookie itself is never stored."""

from __future__ import annotations

import uuid

import redis

from order_dispatch_api.console.sessions import Principal, SessionStore, same

PAM = Principal("pam", frozenset({"read", "operate"}), "k1")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_holds_the_key_s_owner_and_a_csrf_token_not_the_cookie(
    redis_client: redis.Redis,
) -> None:
    prefix = f"ods-{uuid.uuid4().hex[:6]}"
    store = SessionStore(redis_client, prefix)

    cookie, started = store.start(PAM)
    found = store.get(cookie)

    assert found is not None and found.principal == PAM and found.csrf == started.csrf
    assert found.can("operate") and not found.can("read:orders")
    names = [k.decode() if isinstance(k, bytes) else k for k in redis_client.keys(f"{prefix}:*")]
    values = [str(redis_client.get(k)) for k in names]
    assert all("csrf" in v for v in values)
    assert len(names) == 1 and not any(cookie in text for text in [*names, *values])
    assert store.get("someone-else's-guess") is None and store.get(None) is None


def test_a_session_ends_on_logout_when_idle_and_past_its_maximum_age(
    redis_client: redis.Redis,
) -> None:
    clock = Clock()
    store = SessionStore(
        redis_client, f"ods-{uuid.uuid4().hex[:6]}", idle_s=60, max_s=300, clock=clock
    )

    cookie, _ = store.start(PAM)
    key = store._key(cookie)
    assert 0 < redis_client.ttl(key) <= 60  # idle expiry, renewed on use
    clock.now += 299
    assert store.get(cookie) is not None
    clock.now += 2
    assert store.get(cookie) is None and not redis_client.exists(key)

    other, _ = store.start(PAM)
    store.end(other)
    assert store.get(other) is None


def test_tokens_compare_in_constant_time_and_never_match_when_missing() -> None:
    assert same("abc", "abc")
    assert not same("abc", "abd")
    assert not same("", "")
    assert not same(None, "abc")
