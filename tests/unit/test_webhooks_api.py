"""The HTTP API's webhook endpoints (``order_dispatch_api.webhooks``) on a real Redis, mounted on
a bare FastAPI app whose ``operate`` check is a stand-in for the API's key check."""

import asyncio
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import redis

fastapi = pytest.importorskip("fastapi")
from fastapi import Request  # noqa: E402

from order_dispatch.keys import Keys  # noqa: E402
from order_dispatch_api.webhooks import router  # noqa: E402


class InProcess:
    """Calls the app in process (httpx's ASGI transport), one event loop per call."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(call())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)


OPERATOR = {"authorization": "Bearer operate"}


async def operate(request: Request) -> None:
    if request.headers.get("authorization") != OPERATOR["authorization"]:
        raise fastapi.HTTPException(403, "this needs an API key with the 'operate' scope")


def client_for(redis_client: redis.Redis, *, allow_private: bool) -> tuple[InProcess, Keys]:
    app = fastapi.FastAPI()
    keys = Keys(f"odapi-{uuid.uuid4().hex[:6]}")
    app.state.api = SimpleNamespace(
        sync=redis_client,
        keys=keys,
        settings=SimpleNamespace(webhooks_allow_private=allow_private),
    )
    app.include_router(router(operate))
    return InProcess(app), keys


@pytest.fixture
def api(redis_client: redis.Redis) -> Iterator[tuple[InProcess, Keys]]:
    yield client_for(redis_client, allow_private=True)


def test_add_list_rotate_disable_enable_test_delete(
    api: tuple[InProcess, Keys], redis_client: redis.Redis
) -> None:
    client, keys = api

    added = client.post(
        "/v1/webhooks/endpoints",
        json={"url": "http://127.0.0.1:9/hook", "events": ["accepted"]},
        headers=OPERATOR,
    )
    assert added.status_code == 201, added.text
    endpoint_id, secret = added.json()["id"], added.json()["secret"]
    assert secret.startswith("whsec_")

    listed = client.get("/v1/webhooks/endpoints", headers=OPERATOR).json()["endpoints"]
    assert [e["id"] for e in listed] == [endpoint_id]
    assert secret not in str(listed) and "secrets" not in listed[0]

    rotated = client.post(f"/v1/webhooks/endpoints/{endpoint_id}/rotate-secret", headers=OPERATOR)
    assert rotated.status_code == 200 and rotated.json()["secret"] != secret

    disabled = client.post(
        f"/v1/webhooks/endpoints/{endpoint_id}/disable",
        json={"reason": "maintenance"},
        headers=OPERATOR,
    )
    assert disabled.json()["enabled"] is False
    assert disabled.json()["disabled_reason"] == "maintenance"
    enabled = client.post(f"/v1/webhooks/endpoints/{endpoint_id}/enable", headers=OPERATOR)
    assert enabled.json()["enabled"] is True

    pinged = client.post(f"/v1/webhooks/endpoints/{endpoint_id}/test", headers=OPERATOR)
    assert pinged.status_code == 202
    assert pinged.json()["job_id"].startswith(f"webhooks:{endpoint_id}:msg_")
    assert redis_client.llen(keys.queue("webhooks")) == 1

    assert (
        client.delete(f"/v1/webhooks/endpoints/{endpoint_id}", headers=OPERATOR).status_code == 204
    )
    missing = client.get(f"/v1/webhooks/endpoints/{endpoint_id}", headers=OPERATOR)
    assert missing.status_code == 404


def test_without_the_operate_scope_nothing_is_done(api: tuple[InProcess, Keys]) -> None:
    client, _ = api

    refused = client.post("/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/"})

    assert refused.status_code == 403
    assert client.get("/v1/webhooks/endpoints", headers=OPERATOR).json()["endpoints"] == []


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://localhost/hook", "localhost resolves to 127.0.0.1, which is loopback"),
        ("https://169.254.169.254/latest/meta-data", "cloud metadata"),
        ("https://10.0.0.8/", "private"),
        ("http://93.184.215.14/", "must be https"),
    ],
)
def test_the_ssrf_guard_refuses_urls(redis_client: redis.Redis, url: str, why: str) -> None:
    client, _ = client_for(redis_client, allow_private=False)
    refused = client.post("/v1/webhooks/endpoints", json={"url": url}, headers=OPERATOR)

    assert refused.status_code == 422
    assert why in refused.json()["detail"]


def test_an_endpoint_added_after_the_last_one_was_deleted_starts_at_the_stream_s_end(
    api: tuple[InProcess, Keys], redis_client: redis.Redis
) -> None:
    client, keys = api
    first = client.post(
        "/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/"}, headers=OPERATOR
    ).json()["id"]
    client.delete(f"/v1/webhooks/endpoints/{first}", headers=OPERATOR)
    redis_client.xadd(keys.results, {"event": "{}"})  # written while no endpoint existed

    client.post("/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/"}, headers=OPERATOR)

    group = redis_client.xinfo_groups(keys.results)[0]
    newest: Any = redis_client.xrevrange(keys.results, count=1)
    assert group["last-delivered-id"] == newest[0][0]
