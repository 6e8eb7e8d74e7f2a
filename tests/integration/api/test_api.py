"""The HTTP API as a client meets it: a real ``order-dispatch api`` process on a real Redis."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis

from order_dispatch.keys import Keys
from order_dispatch_api.keystore import KeyStore, Scope
from producers.enqueue import validate_job
from tests.integration.api.conftest import ApiProcess, bearer
from tests.integration.conftest import order_job

pytestmark = pytest.mark.integration


def job(order_id: str | None = None, **changes: Any) -> dict[str, Any]:
    return order_job(order_id or f"API-{uuid.uuid4().hex[:10]}", **changes)


def post(api: ApiProcess, key: str, body: Any, path: str = "/v1/jobs") -> httpx.Response:
    return httpx.post(api.url + path, json=body, headers=bearer(key), timeout=10)


# --- enqueue, duplicates, batches ---------------------------------------------------------------


def test_a_new_job_gets_201_and_its_receipt_and_a_duplicate_the_same_receipt(
    api: ApiProcess, full_key: str, redis_client: redis.Redis, api_prefix: str
) -> None:
    body = job()

    first = post(api, full_key, body)
    again = post(api, full_key, body)

    assert first.status_code == 201, first.text
    receipt = first.json()
    assert receipt["duplicate"] is False
    assert first.headers["location"] == f"/v1/jobs/{receipt['job_id']}"
    assert again.status_code == 200
    assert again.json() == {**receipt, "duplicate": True}
    keys = Keys(api_prefix)
    assert redis_client.llen(keys.queue("sourceorders")) >= 1
    assert redis_client.exists(keys.document(receipt["job_id"]))


def test_a_batch_is_queued_whole_with_receipts_in_order(api: ApiProcess, full_key: str) -> None:
    jobs = [job() for _ in range(3)]

    answer = post(api, full_key, {"jobs": jobs}, "/v1/jobs/batch")

    assert answer.status_code == 201, answer.text
    receipts = answer.json()["receipts"]
    assert [r["order_id"] for r in receipts] == [j["order"]["order_id"] for j in jobs]
    again = post(api, full_key, {"jobs": jobs}, "/v1/jobs/batch")
    assert again.status_code == 200
    assert [r["task_id"] for r in again.json()["receipts"]] == [r["task_id"] for r in receipts]


def test_a_batch_with_invalid_jobs_queues_nothing_and_names_each_by_index_and_path(
    api: ApiProcess, full_key: str, redis_client: redis.Redis, api_prefix: str
) -> None:
    good = job()
    bad = job(currency="dollars")
    worse = job()
    del worse["order"]["items"]
    queue = Keys(api_prefix).queue("sourceorders")
    before = redis_client.llen(queue)

    answer = post(api, full_key, {"jobs": [good, bad, worse]}, "/v1/jobs/batch")

    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    pointers = {e["pointer"] for e in problem["errors"]}
    assert "/jobs/1/order/currency" in pointers
    assert "/jobs/2/order/items" in pointers
    assert not any(p.startswith("/jobs/0") for p in pointers)
    assert redis_client.llen(queue) == before
    status = httpx.get(f"{api.url}/v1/jobs/sourceorders:default:create:x", headers=bearer(full_key))
    assert status.status_code == 404
    ids = post(api, full_key, good).json()
    assert ids["duplicate"] is False  # the good job of the refused batch was not queued


# --- errors: 413, 415, 422, 429, 431 -------------------------------------------------------------


def test_invalid_job_is_422_problem_naming_every_bad_field_without_echoing_input(
    api: ApiProcess, full_key: str
) -> None:
    body = job(currency="dollars")
    body["order"]["ship_to"]["country"] = "Pennsylvania"
    body["order"]["customer"]["email"] = "pam-at-example"

    answer = post(api, full_key, body)

    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == 422
    assert problem["type"] == "urn:order-dispatch:problem:invalid"
    pointers = {e["pointer"] for e in problem["errors"]}
    assert {"/order/currency", "/order/ship_to/country"} <= pointers
    assert "Pennsylvania" not in answer.text


def test_a_body_above_max_job_bytes_is_413_before_it_is_parsed(
    api: ApiProcess, full_key: str
) -> None:
    huge = b'{"vendor": "' + b"x" * (256 * 1024) + b'"}'
    answer = httpx.post(
        api.url + "/v1/jobs",
        content=huge,
        headers={**bearer(full_key), "Content-Type": "application/json"},
    )
    not_json_either = httpx.post(
        api.url + "/v1/jobs",
        content=b"{" * (300 * 1024),
        headers={**bearer(full_key), "Content-Type": "application/json"},
    )

    assert answer.status_code == 413
    assert answer.json()["type"] == "urn:order-dispatch:problem:too-large"
    assert not_json_either.status_code == 413  # refused before parsing: never a 415


def test_a_body_that_is_not_json_is_415(api: ApiProcess, full_key: str) -> None:
    form = httpx.post(
        api.url + "/v1/jobs", data={"vendor": "sourceorders"}, headers=bearer(full_key)
    )
    broken = httpx.post(
        api.url + "/v1/jobs",
        content=b'{"vendor": ',
        headers={**bearer(full_key), "Content-Type": "application/json"},
    )

    assert form.status_code == 415
    assert broken.status_code == 415
    assert broken.headers["content-type"] == "application/problem+json"


def test_past_its_rate_limit_a_key_gets_429_with_retry_after(
    api: ApiProcess, make_key: Callable[..., str]
) -> None:
    slow = make_key(Scope.READ, rate_per_minute=6)  # one request, then one every 10 s

    first = httpx.get(api.url + "/v1/events", headers=bearer(slow))
    second = httpx.get(api.url + "/v1/events", headers=bearer(slow))

    assert first.status_code == 200
    assert second.status_code == 429
    assert 1 <= int(second.headers["retry-after"]) <= 10
    assert second.json()["type"] == "urn:order-dispatch:problem:rate-limited"


def test_a_request_head_above_the_bound_is_refused(api: ApiProcess, full_key: str) -> None:
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000)
        reply = sock.recv(4096)

    assert reply.startswith(b"HTTP/1.1 431")


def test_parameters_out_of_bounds_are_422_naming_the_parameter(
    api: ApiProcess, full_key: str
) -> None:
    answer = httpx.get(api.url + "/v1/events?limit=0&after=x", headers=bearer(full_key))

    assert answer.status_code == 422
    assert {e["parameter"] for e in answer.json()["errors"]} == {"limit", "after"}


def test_unknown_routes_answer_problems(api: ApiProcess) -> None:
    answer = httpx.get(api.url + "/v2/nothing")

    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


# --- keys and scopes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer odk_0123456789abcdef_" + "x" * 43},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
    ids=["none", "unknown", "malformed", "basic"],
)
def test_a_missing_or_wrong_key_is_401(api: ApiProcess, headers: dict[str, str]) -> None:
    answer = httpx.post(api.url + "/v1/jobs", json=job(), headers=headers)

    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.headers["content-type"] == "application/problem+json"


def test_a_key_with_a_wrong_secret_is_401(api: ApiProcess, full_key: str) -> None:
    tampered = full_key[:-4] + ("aaaa" if not full_key.endswith("aaaa") else "bbbb")

    assert post(api, tampered, job()).status_code == 401


def test_a_revoked_key_is_401_from_its_next_request(
    api: ApiProcess, make_key: Callable[..., str], redis_url: str, api_prefix: str
) -> None:
    key = make_key(Scope.ENQUEUE)
    assert post(api, key, job()).status_code == 201

    store = KeyStore(redis.Redis.from_url(redis_url), Keys(api_prefix))
    store.revoke(key.split("_")[1])

    refused = job()
    answer = post(api, key, refused)
    assert answer.status_code == 401
    assert "revoked" in answer.json()["detail"]
    assert post(api, key, job(currency="dollars")).status_code == 401  # key first
    client = redis.Redis.from_url(redis_url)
    assert not client.exists(Keys(api_prefix).job(validate_job(refused).job_id))
    client.close()


def test_a_known_key_past_its_rate_limit_gets_429_and_nothing_is_queued(
    api: ApiProcess, make_key: Callable[..., str], redis_url: str, api_prefix: str
) -> None:
    key = make_key(Scope.ENQUEUE, rate_per_minute=6)  # one request, then one every 10 s
    assert post(api, key, job()).status_code == 201

    refused = [job() for _ in range(3)]
    answers = [post(api, key, body) for body in refused]

    assert [a.status_code for a in answers] == [429, 429, 429]
    assert all(1 <= int(a.headers["retry-after"]) <= 10 for a in answers)
    client = redis.Redis.from_url(redis_url)
    assert not any(client.exists(Keys(api_prefix).job(validate_job(b).job_id)) for b in refused)
    client.close()


def test_a_known_key_s_invalid_jobs_get_the_same_problems(
    api: ApiProcess, make_key: Callable[..., str]
) -> None:
    key = make_key(Scope.ENQUEUE)
    assert post(api, key, job()).status_code == 201

    invalid = post(api, key, job(currency="dollars"))
    not_object = post(api, key, [job()])
    not_json = httpx.post(
        api.url + "/v1/jobs",
        content=b'{"vendor": ',
        headers={**bearer(key), "Content-Type": "application/json"},
    )

    assert invalid.status_code == 422
    assert invalid.headers["content-type"] == "application/problem+json"
    assert [e["pointer"] for e in invalid.json()["errors"]] == ["/order/currency"]
    assert not_object.status_code == 422
    assert not_object.json()["errors"] == [{"pointer": "", "detail": "not a JSON object"}]
    assert not_json.status_code == 415


def test_each_scope_opens_its_endpoints_only(
    api: ApiProcess, make_key: Callable[..., str], full_key: str
) -> None:
    enqueue = make_key(Scope.ENQUEUE)
    read = make_key(Scope.READ)
    receipt = post(api, full_key, job()).json()
    status_url = f"{api.url}/v1/jobs/{receipt['job_id']}"

    assert post(api, read, job()).status_code == 403
    assert post(api, read, {"jobs": [job()]}, "/v1/jobs/batch").status_code == 403
    for path in (
        status_url,
        status_url + "/timeline",
        api.url + "/v1/events",
        api.url + "/metrics",
    ):
        assert httpx.get(path, headers=bearer(enqueue)).status_code == 403, path
        assert httpx.get(path, headers=bearer(read)).status_code == 200, path
    forbidden = httpx.get(status_url, headers=bearer(enqueue))
    assert forbidden.json()["type"] == "urn:order-dispatch:problem:forbidden"


def test_the_order_itself_is_shown_only_to_read_orders_keys(
    api: ApiProcess, make_key: Callable[..., str], full_key: str
) -> None:
    receipt = post(api, full_key, job()).json()
    url = f"{api.url}/v1/jobs/{receipt['job_id']}"

    plain = httpx.get(url, headers=bearer(make_key(Scope.READ))).json()
    personal = httpx.get(url, headers=bearer(make_key(Scope.READ_ORDERS))).json()

    assert plain["status"] == "queued"
    assert "order" not in plain
    assert "Beesly" not in json.dumps(plain)
    assert personal["order"]["ship_to"]["last_name"] == "Beesly"


def test_metrics_count_requests_by_route_and_status(api: ApiProcess, full_key: str) -> None:
    post(api, full_key, job())
    httpx.get(api.url + "/metrics")  # refused: 401, counted too

    text = httpx.get(api.url + "/metrics", headers=bearer(full_key)).text

    assert 'order_dispatch_api_requests_total{method="POST",route="/v1/jobs",status="201"}' in text
    assert 'route="/metrics",status="401"' in text
    assert "order_dispatch_api_request_seconds_bucket" in text


def test_readyz_and_healthz(api: ApiProcess) -> None:
    assert httpx.get(api.url + "/healthz").json() == {"status": "ok", "checks": {}}
    ready = httpx.get(api.url + "/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"redis": "ok"}


def test_events_are_read_after_a_cursor_and_long_poll(
    api: ApiProcess, full_key: str, redis_client: redis.Redis, api_prefix: str
) -> None:
    stream = Keys(api_prefix).results
    first = httpx.get(api.url + "/v1/events", headers=bearer(full_key)).json()
    cursor = first["next"]

    empty = httpx.get(
        api.url + f"/v1/events?after={cursor}&wait=0.3", headers=bearer(full_key)
    ).json()
    assert empty == {"events": [], "next": cursor}
    redis_client.xadd(stream, {"event_id": "x", "status": "junk"})  # unreadable: skipped
    page = httpx.get(api.url + f"/v1/events?after={cursor}&wait=5", headers=bearer(full_key)).json()
    assert page["events"] == []
    assert page["next"] != cursor  # the cursor moves past it


def test_api_keys_commands_create_list_and_revoke(
    api: ApiProcess, redis_url: str, api_prefix: str
) -> None:
    from tests.integration.conftest import cli

    created = cli(
        redis_url, api_prefix, "api-keys", "create", "--name", "cli", "--scope", "enqueue,read"
    )
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    key_id = key.split("_")[1]
    assert post(api, key, job()).status_code == 201

    listed = cli(redis_url, api_prefix, "api-keys", "list", "--json")
    mine = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {k["key_id"]: k["scopes"] for k in mine}[key_id] == ["enqueue", "read"]
    assert key not in listed.output and key.split("_")[2] not in listed.output

    assert cli(redis_url, api_prefix, "api-keys", "revoke", key_id).exit_code == 0
    assert post(api, key, job()).status_code == 401
    unknown = cli(redis_url, api_prefix, "api-keys", "create", "--name", "x", "--scope", "admin")
    assert unknown.exit_code == 2 and "unknown scope 'admin'" in unknown.output
    assert cli(redis_url, api_prefix, "api-keys", "revoke", "0" * 16).exit_code == 1
