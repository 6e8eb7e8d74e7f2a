"""The console in the API's app: the API's Redis client, key store and authenticator."""

from __future__ import annotations

import redis
from fastapi import APIRouter, FastAPI

from order_dispatch.settings import Settings
from order_dispatch_api import keystore as ks
from order_dispatch_api.console.pages import ConsoleConfig, console_router
from order_dispatch_api.console.sessions import Principal
from worker.vendors import known_vendors


def console_for(app: FastAPI, settings: Settings) -> APIRouter:
    """The console's routes, reading the :class:`~order_dispatch_api.app.Api` the app builds
    when it starts (``app.state.api``)."""

    def client() -> redis.Redis:
        sync: redis.Redis = app.state.api.sync
        return sync

    async def check_key(key: str) -> Principal | None:
        try:
            caller = await app.state.api.auth.check(f"Bearer {key}")
        except ks.Denied:
            return None
        return Principal(caller.name, frozenset(s.value for s in caller.scopes), caller.key_id)

    def key_revoked(key_id: str) -> bool:
        name = app.state.api.keys.api_key(key_id)
        pipe = client().pipeline(transaction=False)
        pipe.exists(name)
        pipe.hexists(name, "revoked_at")
        exists, revoked = pipe.execute()
        return not exists or bool(revoked)

    def keys_exist() -> bool:
        return ks.KeyStore(client(), app.state.api.keys).any_active()

    return console_router(
        ConsoleConfig(
            redis=client,
            prefix=settings.key_prefix,
            vendors=known_vendors(),
            accounts={v: sorted(names) for v, names in settings.accounts.items()},
            check_key=check_key,
            keys_exist=keys_exist,
            key_revoked=key_revoked,
            queues_in_redis=settings.broker_is_redis,
        )
    )
