"""API keys (scopes, digests, the check script) and problem details, on a real Redis."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio

from order_dispatch.keys import Keys
from order_dispatch_api.keystore import (
    Authenticator,
    Denied,
    KeyStore,
    MissingScope,
    Refusal,
    Scope,
    digest,
    key_id_of,
    parse_scopes,
)
from order_dispatch_api.problems import field_errors, pointer
from producers.enqueue import Producer, validate_job
from tests.integration.conftest import order_job


def test_scopes_are_parsed_and_unknown_ones_named() -> None:
    assert parse_scopes("enqueue, read:orders") == {Scope.ENQUEUE, Scope.READ_ORDERS}
    with pytest.raises(ValueError, match="unknown scope 'admin'"):
        parse_scopes("enqueue,admin")
    with pytest.raises(ValueError, match="at least one"):
        parse_scopes(" , ")


def test_a_key_is_shown_once_and_only_its_digest_is_stored(redis_client: redis.Redis) -> None:
    keys = Keys("odunit-keys")
    store = KeyStore(redis_client, keys)

    token, record = store.create("billing", {Scope.READ}, 60)

    assert key_id_of(token) == record.key_id
    stored: dict[bytes, bytes] = redis_client.hgetall(keys.api_key(record.key_id))  # type: ignore[assignment]
    assert stored[b"hash"] == digest(token).encode()
    assert all(token.encode() not in v for v in stored.values())
    assert [k.key_id for k in store.list()] == [record.key_id]
    assert store.any_active()
    assert store.revoke(record.key_id).revoked_at is not None
    assert not store.any_active()
    with pytest.raises(KeyError):
        store.revoke("0000000000000000")


def test_the_check_grants_scopes_spends_the_rate_and_refuses_the_rest(
    redis_client: redis.Redis, redis_url: str
) -> None:
    keys = Keys("odunit-check")
    store = KeyStore(redis_client, keys)
    token, record = store.create("t", {Scope.READ_ORDERS}, 6)  # a burst of 1, then 1 per 10 s

    async def run() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        auth = Authenticator(client, keys)
        caller = await auth.check(f"Bearer {token}", now=1000.0)
        assert caller.scopes == {Scope.READ_ORDERS, Scope.READ}  # read:orders includes read
        with pytest.raises(Denied) as rated:
            await auth.check(f"Bearer {token}", now=1001.0)
        assert rated.value.reason is Refusal.RATE and rated.value.wait_s == pytest.approx(9)
        assert (await auth.check(f"bearer {token}", now=1010.0)).key_id == record.key_id
        for header, reason in [
            (None, Refusal.MISSING),
            ("Bearer " + token[:-1] + ("A" if token[-1] != "A" else "B"), Refusal.WRONG),
            (f"Token {token}", Refusal.WRONG),
        ]:
            with pytest.raises(Denied) as denied:
                await auth.check(header, now=2000.0)
            assert denied.value.reason is reason
        store.revoke(record.key_id)
        with pytest.raises(Denied) as revoked:
            await auth.check(f"Bearer {token}", now=3000.0)
        assert revoked.value.reason is Refusal.REVOKED
        await client.aclose()

    asyncio.run(run())


def test_a_wrong_secret_spends_nothing_of_the_key_s_rate(
    redis_client: redis.Redis, redis_url: str
) -> None:
    keys = Keys("odunit-drain")
    token, record = KeyStore(redis_client, keys).create("t", {Scope.READ}, 6)
    wrong = token[:-2] + ("xy" if not token.endswith("xy") else "yz")

    async def run() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        auth = Authenticator(client, keys)
        for _ in range(5):
            with pytest.raises(Denied):
                await auth.check(f"Bearer {wrong}", now=1000.0)
        assert (await auth.check(f"Bearer {token}", now=1000.0)).key_id == record.key_id
        await client.aclose()

    asyncio.run(run())


def test_field_paths_become_json_pointers() -> None:
    assert pointer("order.items.0.sku") == "/order/items/0/sku"
    assert pointer("(document)") == ""
    assert pointer("custom.a/b~c", "/jobs/2") == "/jobs/2/custom/a~1b~0c"
    errors = field_errors(["order.currency: bad", "no path here"], "/jobs/1")
    assert [(e.pointer, e.detail) for e in errors] == [
        ("/jobs/1/order/currency", "bad"),
        ("/jobs/1", "no path here"),
    ]


def test_the_key_check_and_the_enqueue_run_as_one_script_that_writes_nothing_when_refused(
    redis_client: redis.Redis, redis_url: str
) -> None:
    keys = Keys("odunit-checked")
    store = KeyStore(redis_client, keys)
    token, record = store.create("t", {Scope.ENQUEUE}, 6)  # a burst of 1, then 1 per 10 s
    reader, _ = store.create("r", {Scope.READ}, 600)
    producer = Producer(redis_client, key_prefix="odunit-checked")

    def call(order_id: str) -> tuple[str, list[str], list[str | int]]:
        job = validate_job(order_job(order_id))
        _, new = producer.prepare(job, push=True)
        return (job.job_id, *producer.store.enqueue_call(new))

    async def run() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        auth = Authenticator(client, keys)
        key = auth.presented(f"Bearer {token}")
        assert auth.known(f"Bearer {token}", Scope.ENQUEUE) is None  # never checked yet

        job_id, names, args = call("CHK-1")
        caller, reply = await auth.check_and_enqueue(key, Scope.ENQUEUE, names, args)
        assert caller.key_id == record.key_id
        assert producer.store.enqueued(reply).created
        assert auth.known(f"Bearer {token}", Scope.ENQUEUE) == key
        assert auth.known(f"Bearer {token}", Scope.READ) is None

        job_id, names, args = call("CHK-2")
        with pytest.raises(Denied) as rated:  # the burst is spent: nothing written
            await auth.check_and_enqueue(key, Scope.ENQUEUE, names, args)
        assert rated.value.reason is Refusal.RATE and 0 < rated.value.wait_s <= 10
        assert not redis_client.exists(keys.job(job_id), keys.document(job_id))
        assert auth.known(f"Bearer {token}", Scope.ENQUEUE) is None  # until the wait is over

        store.revoke(record.key_id)
        redis_client.delete(keys.api_rate(record.key_id))
        with pytest.raises(Denied) as revoked:
            await auth.check_and_enqueue(key, Scope.ENQUEUE, names, args)
        assert revoked.value.reason is Refusal.REVOKED
        assert not redis_client.exists(keys.job(job_id), keys.document(job_id))

        read_key = auth.presented(f"Bearer {reader}")
        with pytest.raises(MissingScope):
            await auth.check_and_enqueue(read_key, Scope.ENQUEUE, names, args)
        assert not redis_client.exists(keys.job(job_id), keys.document(job_id))
        assert redis_client.exists(keys.api_rate(read_key.key_id))  # its cell was spent
        await client.aclose()

    asyncio.run(run())


def test_a_remembered_key_is_forgotten_when_redis_refuses_it(
    redis_client: redis.Redis, redis_url: str
) -> None:
    keys = Keys("odunit-forget")
    store = KeyStore(redis_client, keys)
    token, record = store.create("t", {Scope.ENQUEUE}, 600)

    async def run() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        auth = Authenticator(client, keys)
        await auth.check(f"Bearer {token}")
        assert auth.known(f"Bearer {token}", Scope.ENQUEUE) is not None
        wrong = token[:-2] + ("xy" if not token.endswith("xy") else "yz")
        assert auth.known(f"Bearer {wrong}", Scope.ENQUEUE) is None
        store.revoke(record.key_id)
        with pytest.raises(Denied):
            await auth.check(f"Bearer {token}")
        assert auth.known(f"Bearer {token}", Scope.ENQUEUE) is None
        await client.aclose()

    asyncio.run(run())
