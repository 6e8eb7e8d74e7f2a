"""The Shopatron / Kibo OMS simulator against its document (docs/shopatron.txt, NOTES.md §3)."""

from __future__ import annotations

import base64
import copy
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from order_dispatch_sandbox.shopatron import (
    DEFAULT_API_KEY,
    DEFAULT_CLIENT_SECRET,
    ShopatronSimulator,
)
from tests.sandbox.conftest import DELETE, Serve, changed, set_faults, vendor_orders

FIXTURES = Path(__file__).parent / "fixtures" / "shopatron"
#: The document's full request, byte for byte ("manufacturerID":01010 is not JSON).
SAMPLE_AS_DOCUMENTED = (FIXTURES / "import_order_sample_as_documented.txt").read_text()
#: The same request made valid JSON (manufacturerID 1010).
SAMPLE: dict[str, Any] = json.loads((FIXTURES / "import_order_sample.json").read_text())

TOKEN = "/shopatron/oauthserver/oauth2/token"
IMPORT = "/shopatron/api/v2/importOrder/"
CREATE = "/shopatron/api/v2/createOrder/"
SEARCH = "/shopatron/api/v2/order/"


def basic(key: str = DEFAULT_API_KEY, secret: str = DEFAULT_CLIENT_SECRET) -> str:
    return "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()


def get_token(
    client: httpx.Client, key: str = DEFAULT_API_KEY, secret: str = DEFAULT_CLIENT_SECRET
) -> str:
    grant = {"grant_type": "client_credentials"}
    r = client.post(TOKEN, data=grant, headers={"Authorization": basic(key, secret)})
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


def auth(
    client: httpx.Client, key: str = DEFAULT_API_KEY, secret: str = DEFAULT_CLIENT_SECRET
) -> dict[str, str]:
    return {"Authorization": f"Bearer {get_token(client, key, secret)}", "API-Key": key}


def sample(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(SAMPLE)
    body.update(changes)
    return body


def create_sample(**changes: Any) -> dict[str, Any]:
    body = sample()
    for key in ("orderStatus", "assignedLocation", "useInventory"):
        del body[key]
    body.update(changes)
    return body


def held(client: httpx.Client) -> dict[str, Any]:
    return vendor_orders(client, "shopatron")


def faults(client: httpx.Client, **spec: Any) -> None:
    set_faults(client, "shopatron", **spec)


@pytest.fixture
def headers(client: httpx.Client) -> dict[str, str]:
    return auth(client)


# The documented sample


def test_token_answer_has_bearer_token_and_expiry(client: httpx.Client) -> None:
    r = client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(), "Accept": "application/json"},
    )
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert len(body["access_token"]) >= 20


def test_documented_sample_is_imported(client: httpx.Client, headers: dict[str, str]) -> None:
    r = client.post(IMPORT, json=SAMPLE, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "orderID": 100001,
        "externalOrderID": "0987654321",
        "manufacturerID": 1010,
        "orderStatus": "SHIPPED",
    }
    answer = held(client)
    assert answer["count"] == 1
    order = answer["orders"][0]
    assert order["orderID"] == 100001
    assert order["externalOrderID"] == "0987654321"
    assert order["orderStatus"] == "SHIPPED"
    assert order["orderItems"][0]["product"]["partNumber"] == "0123456"
    assert order["orderCreationDate"].endswith("Z")


def test_sample_as_documented_is_not_json(client: httpx.Client, headers: dict[str, str]) -> None:
    r = client.post(
        IMPORT,
        content=SAMPLE_AS_DOCUMENTED,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == 5003
    assert body["error"] == "GENERIC_BAD_REQUEST"
    assert "not valid JSON" in body["message"]
    assert held(client)["count"] == 0


def test_create_order_accepts_the_sample_without_import_fields(
    client: httpx.Client, headers: dict[str, str]
) -> None:
    body = create_sample()
    del body["sendEmail"]
    r = client.post(CREATE, json=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "orderID": 100001,
        "externalOrderID": "0987654321",
        "manufacturerID": 1010,
        "orderStatus": "READY",
    }
    assert held(client)["orders"][0]["orderStatus"] == "READY"


@pytest.mark.parametrize("field", ["orderStatus", "assignedLocation", "useInventory"])
def test_create_order_refuses_import_only_fields(
    client: httpx.Client, headers: dict[str, str], field: str
) -> None:
    body = create_sample(**{field: SAMPLE[field]})
    r = client.post(CREATE, json=body, headers=headers)
    assert r.status_code == 400
    assert r.json()["code"] == 5015
    assert r.json()["field"] == field


def test_imported_creation_date_is_kept(client: httpx.Client, headers: dict[str, str]) -> None:
    body = sample(importedCreationDate="2023-04-05T06:07:08Z")
    assert client.post(IMPORT, json=body, headers=headers).status_code == 200
    assert held(client)["orders"][0]["orderCreationDate"] == "2023-04-05T06:07:08Z"


# Validation


_BILLING = "orderPayments.0.paymentMethod.billingAddress"

INVALID = [
    ("externalOrderID", DELETE, 5011, "externalOrderID"),
    ("externalOrderID", None, 5011, "externalOrderID"),
    ("externalOrderID", "", 5015, "externalOrderID"),
    ("externalOrderID", "x" * 101, 5015, "externalOrderID"),
    ("externalOrderID", 987654321, 5015, "externalOrderID"),
    ("manufacturerID", 0, 5015, "manufacturerID"),
    ("manufacturerID", "1010", 5015, "manufacturerID"),
    ("manufacturerID", 10.5, 5015, "manufacturerID"),
    ("catalogID", -1, 5015, "catalogID"),
    ("catalogID", DELETE, 5011, "catalogID"),
    ("locale", DELETE, 5011, "locale"),
    ("locale", "English", 5015, "locale"),
    ("currency", "usd", 5015, "currency"),
    ("currency", "ZZZ", 5015, "currency"),
    ("customer", DELETE, 5011, "customer"),
    ("customer", "Test Customer", 5015, "customer"),
    ("customer.email", DELETE, 5011, "customer.email"),
    ("customer.email", "nobody", 5015, "customer.email"),
    ("orderItems", [], 5015, "orderItems"),
    ("orderItems", DELETE, 5011, "orderItems"),
    ("orderItems.0.product.partNumber", DELETE, 5011, "orderItems[0].product.partNumber"),
    ("orderItems.0.product.name", "", 5015, "orderItems[0].product.name"),
    ("orderItems.0.itemSpecifics.quantity", 0, 5015, "orderItems[0].itemSpecifics.quantity"),
    ("orderItems.0.itemSpecifics.quantity", 1.5, 5015, "orderItems[0].itemSpecifics.quantity"),
    ("orderItems.0.itemSpecifics.actualPrice", -1, 5015, "orderItems[0].itemSpecifics.actualPrice"),
    (
        "orderItems.0.itemSpecifics.itemTaxOverride", None, 5011,
        "orderItems[0].itemSpecifics.itemTaxOverride",
    ),
    ("shippingMethod", DELETE, 5011, "shippingMethod"),
    ("shippingMethod.shippingType", DELETE, 5011, "shippingMethod.shippingType"),
    ("shippingAddress", DELETE, 5011, "shippingAddress"),
    ("shippingAddress.countryCode", "USA", 5015, "shippingAddress.countryCode"),
    ("shippingAddress.addressLine1", DELETE, 5011, "shippingAddress.addressLine1"),
    ("orderPayments", [], 5015, "orderPayments"),
    ("orderPayments", DELETE, 5011, "orderPayments"),
    (
        "orderPayments.0.paymentMethod.paymentType", DELETE, 5011,
        "orderPayments[0].paymentMethod.paymentType",
    ),
    (
        f"{_BILLING}.addressLine1", "x" * 251, 5015,
        "orderPayments[0].paymentMethod.billingAddress.addressLine1",
    ),
    (
        f"{_BILLING}.addressLine2", "x" * 251, 5015,
        "orderPayments[0].paymentMethod.billingAddress.addressLine2",
    ),
    (
        f"{_BILLING}.addressLine3", "x" * 251, 5015,
        "orderPayments[0].paymentMethod.billingAddress.addressLine3",
    ),
    ("customerIP", DELETE, 5011, "customerIP"),
    ("customerIP", "10.0.0.256", 5015, "customerIP"),
    ("customerIP", "::1", 5015, "customerIP"),
    ("sendEmail", DELETE, 5011, "sendEmail"),
    ("sendEmail", "true", 5015, "sendEmail"),
    ("orderStatus", DELETE, 5011, "orderStatus"),
    ("orderStatus", "CANCELED", 5015, "orderStatus"),
    ("orderStatus", "PENDING", 5015, "orderStatus"),
    ("orderID", 0, 5015, "orderID"),
    ("importedCreationDate", "yesterday", 5015, "importedCreationDate"),
    ("cartID", "c" * 513, 5015, "cartID"),
    ("shippingTax", -2, 5015, "shippingTax"),
    ("shippingTaxRate", -0.1, 5015, "shippingTaxRate"),
    ("orderComment", "c" * 1001, 5015, "orderComment"),
    ("landingCode", "TooShort", 5015, "landingCode"),
    ("landingCode", "L" * 201, 5015, "landingCode"),
    ("allowSplit", "yes", 5015, "allowSplit"),
    ("fraudData", {"fraudType": "KOUNT"}, 5015, "fraudData"),
    ("customOrderData", {"key": "v" * 1001}, 5015, "customOrderData.key"),
    ("expectedDeliveryDate", "soon", 5015, "expectedDeliveryDate"),
    ("orderNumber", "A-1", 5015, "orderNumber"),
]


@pytest.mark.parametrize(
    ("path", "value", "code", "field"),
    INVALID,
    ids=[f"{c[0]}={'del' if c[1] is DELETE else str(c[1])[:12]}" for c in INVALID],
)
def test_import_order_refuses_invalid_data(
    client: httpx.Client, headers: dict[str, str], path: str, value: Any, code: int, field: str
) -> None:
    body = changed(sample(), path, value)
    r = client.post(IMPORT, json=body, headers=headers)
    assert r.status_code == 400, r.text
    answer = r.json()
    assert answer["code"] == code
    assert answer["error"] == {5011: "MISSING_REQUEST_DATA", 5015: "INVALID_REQUEST_DATA"}[code]
    assert answer["field"] == field
    assert field in answer["message"]
    assert held(client)["count"] == 0


VALID_EDGES = [
    ("externalOrderID", "x"),
    ("externalOrderID", "x" * 100),
    ("manufacturerID", 1),
    ("orderStatus", "READY"),
    ("orderStatus", "CANCELLED"),
    ("landingCode", "L" * 10),
    ("landingCode", "L" * 200),
    ("orderComment", "c" * 1000),
    ("cartID", "c" * 512),
    ("orderID", 7),
    ("currency", "EUR"),
    (f"{_BILLING}.addressLine1", "x" * 250),
    ("forceItemTaxOverride", False),
]


@pytest.mark.parametrize(("path", "value"), VALID_EDGES)
def test_import_order_accepts_bounds(
    client: httpx.Client, headers: dict[str, str], path: str, value: Any
) -> None:
    body = changed(sample(), path, value)
    if path == "forceItemTaxOverride":
        body["orderItems"][0]["itemSpecifics"]["itemTaxOverride"] = None
    r = client.post(IMPORT, json=body, headers=headers)
    assert r.status_code == 200, r.text
    assert held(client)["count"] == 1


def test_create_order_validates_like_import(client: httpx.Client, headers: dict[str, str]) -> None:
    r = client.post(CREATE, json=create_sample(landingCode="short"), headers=headers)
    assert r.status_code == 400
    assert (r.json()["code"], r.json()["field"]) == (5015, "landingCode")
    r = client.post(CREATE, json=create_sample(externalOrderID=""), headers=headers)
    assert (r.json()["code"], r.json()["field"]) == (5015, "externalOrderID")


@pytest.mark.parametrize("content", ["[1, 2]", '"order"', "", "{"])
def test_body_that_is_not_an_object_is_a_bad_request(
    client: httpx.Client, headers: dict[str, str], content: str
) -> None:
    r = client.post(IMPORT, content=content, headers=headers)
    assert r.status_code == 400
    assert r.json()["code"] == 5003


def test_taken_order_id_is_refused(client: httpx.Client, headers: dict[str, str]) -> None:
    assert client.post(IMPORT, json=sample(orderID=5), headers=headers).json()["orderID"] == 5
    r = client.post(IMPORT, json=sample(orderID=5, externalOrderID="other"), headers=headers)
    assert r.status_code == 400
    assert r.json()["code"] == 5015
    assert r.json()["orderID"] == 5


# Auth


@pytest.mark.parametrize(
    ("headers", "data", "status", "error"),
    [
        ({"Authorization": basic(secret="wrong")}, {"grant_type": "client_credentials"}, 401,
         "invalid_client"),
        ({"Authorization": basic(key="other")}, {"grant_type": "client_credentials"}, 401,
         "invalid_client"),
        ({}, {"grant_type": "client_credentials"}, 401, "invalid_client"),
        ({"Authorization": "Basic !!!"}, {"grant_type": "client_credentials"}, 401,
         "invalid_client"),
        ({"Authorization": basic()}, {"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"Authorization": basic()}, {}, 400, "invalid_request"),
    ],
    ids=["wrong-secret", "wrong-key", "no-auth", "not-base64", "password-grant", "no-grant"],
)
def test_token_refusals(
    client: httpx.Client, headers: dict[str, str], data: dict[str, str], status: int, error: str
) -> None:
    r = client.post(TOKEN, data=data, headers=headers)
    assert r.status_code == status
    assert r.json()["error"] == error
    if status == 401:
        assert r.headers["WWW-Authenticate"].startswith("Basic")


def test_token_needs_a_form_body(client: httpx.Client) -> None:
    r = client.post(
        TOKEN, json={"grant_type": "client_credentials"}, headers={"Authorization": basic()}
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"


def test_api_key_is_required_and_checked(client: httpx.Client, headers: dict[str, str]) -> None:
    bearer = {"Authorization": headers["Authorization"]}
    r = client.post(IMPORT, json=SAMPLE, headers=bearer)
    assert r.status_code == 403
    assert r.json() == {
        "code": 5004,
        "error": "GENERIC_NOT_AUTHORIZED",
        "message": "API-Key header is required",
    }
    r = client.post(IMPORT, json=SAMPLE, headers={**bearer, "API-Key": "wrong"})
    assert r.status_code == 403
    assert r.json()["code"] == 5004
    assert held(client)["count"] == 0


@pytest.mark.parametrize(
    "authorization", [None, "Bearer", "Basic " + "x" * 20, "Bearer not-a-token"]
)
def test_bearer_token_is_required(client: httpx.Client, authorization: str | None) -> None:
    hdrs = {"API-Key": DEFAULT_API_KEY}
    if authorization is not None:
        hdrs["Authorization"] = authorization
    r = client.post(IMPORT, json=SAMPLE, headers=hdrs)
    assert r.status_code == 401
    assert r.json()["code"] == 5004
    assert r.headers["WWW-Authenticate"].startswith('Bearer realm="OMS"')
    assert client.get(SEARCH, params={"orderID": "1"}, headers=hdrs).status_code == 401
    assert held(client)["count"] == 0


def test_expired_token_is_refused_until_reacquired(client: httpx.Client) -> None:
    hdrs = auth(client)
    assert client.post(IMPORT, json=SAMPLE, headers=hdrs).status_code == 200
    faults(client, expire_tokens=True)
    r = client.post(IMPORT, json=sample(externalOrderID="2"), headers=hdrs)
    assert r.status_code == 401
    assert r.json()["message"] == "access token has expired"
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    r = client.post(IMPORT, json=sample(externalOrderID="2"), headers=auth(client))
    assert r.status_code == 200
    assert held(client)["count"] == 2


def test_token_expires_after_its_ttl(local: Serve) -> None:
    c = local(ShopatronSimulator(token_ttl_s=0.2))
    r = c.post(TOKEN, data={"grant_type": "client_credentials"}, headers={"Authorization": basic()})
    assert r.json()["expires_in"] == 1
    hdrs = {"Authorization": f"Bearer {r.json()['access_token']}", "API-Key": DEFAULT_API_KEY}
    assert c.get(SEARCH, params={"orderID": "1"}, headers=hdrs).status_code == 200
    time.sleep(0.25)
    r = c.get(SEARCH, params={"orderID": "1"}, headers=hdrs)
    assert r.status_code == 401
    assert r.json()["message"] == "access token has expired"


def test_credentials_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, local: Serve
) -> None:
    monkeypatch.setenv("ORDER_DISPATCH_SANDBOX_SHOPATRON_API_KEY", "env-key")
    monkeypatch.setenv("ORDER_DISPATCH_SANDBOX_SHOPATRON_CLIENT_SECRET", "env-secret")
    monkeypatch.setenv("ORDER_DISPATCH_SANDBOX_SHOPATRON_REJECT_DUPLICATE_EXTERNAL_ID", "false")
    sim = ShopatronSimulator.from_env()
    assert (sim.api_key, sim.client_secret) == ("env-key", "env-secret")
    assert sim.reject_duplicate_external_id is False
    assert sim.search_by_external_id is True
    c = local(sim)
    r = c.post(TOKEN, data={"grant_type": "client_credentials"}, headers={"Authorization": basic()})
    assert r.status_code == 401
    hdrs = auth(c, "env-key", "env-secret")
    assert c.post(IMPORT, json=SAMPLE, headers=hdrs).status_code == 200


# State: search and admin


def _import_three(client: httpx.Client, headers: dict[str, str]) -> None:
    for ext, status, manufacturer in [("A", "SHIPPED", 1010), ("B", "READY", 1010),
                                      ("C", "READY", 2020)]:
        body = sample(externalOrderID=ext, orderStatus=status, manufacturerID=manufacturer)
        assert client.post(IMPORT, json=body, headers=headers).status_code == 200


def ids(answer: dict[str, Any]) -> list[int]:
    return [o["orderID"] for o in answer["collection"]]


def _search(client: httpx.Client, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    r = client.get(SEARCH, params=params, headers=headers)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def test_search_filters(client: httpx.Client, headers: dict[str, str]) -> None:
    _import_three(client, headers)
    answer = _search(client, headers, manufacturerID=1010)
    assert answer["totalCount"] == 2
    assert ids(answer) == [100001, 100002]
    assert ids(_search(client, headers, manufacturerID=1010, orderStatus="READY")) == [100002]
    assert ids(_search(client, headers, orderID="100003,100001,999")) == [100001, 100003]
    assert ids(_search(client, headers, externalOrderID="C")) == [100003]
    assert _search(client, headers, externalOrderID="C")["collection"][0]["manufacturerID"] == 2020
    assert _search(client, headers, orderStatus="CANCELLED") == {"totalCount": 0, "collection": []}


def test_search_pages(client: httpx.Client, headers: dict[str, str]) -> None:
    _import_three(client, headers)
    answer = _search(client, headers, orderStatus="SHIPPED,READY", perPage=2, page=2)
    assert answer["totalCount"] == 3
    assert [o["orderID"] for o in answer["collection"]] == [100003]
    answer = _search(client, headers, orderStatus="READY,SHIPPED")
    assert len(answer["collection"]) == 3


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, 5017),
        ({"perPage": "10"}, 5017),
        ({"manufacturerID": "1", "perPage": "101"}, 5014),
        ({"manufacturerID": "1", "perPage": "0"}, 5014),
        ({"manufacturerID": "1", "page": "x"}, 5014),
        ({"manufacturerID": "abc"}, 5014),
        ({"orderID": "1,two"}, 5014),
        ({"manufacturerID": "1", "sort": "orderID"}, 5016),
    ],
)
def test_search_refusals(
    client: httpx.Client, headers: dict[str, str], params: dict[str, str], code: int
) -> None:
    r = client.get(SEARCH, params=params, headers=headers)
    assert r.status_code == 400
    assert r.json()["code"] == code


def test_admin_status_change_shows_in_search(client: httpx.Client, headers: dict[str, str]) -> None:
    body = sample(orderStatus="READY")
    order_id = client.post(IMPORT, json=body, headers=headers).json()["orderID"]
    r = client.post(f"/_sandbox/orders/shopatron/{order_id}/status", json={"status": "SHIPPED"})
    assert r.status_code == 200
    assert r.json()["orderStatus"] == "SHIPPED"
    found = _search(client, headers, orderID=str(order_id))["collection"]
    assert [o["orderStatus"] for o in found] == ["SHIPPED"]
    assert client.post(
        "/_sandbox/orders/shopatron/424242/status", json={"status": "SHIPPED"}
    ).status_code == 404


def test_admin_counts_what_was_received(client: httpx.Client, headers: dict[str, str]) -> None:
    client.post(IMPORT, json=sample(externalOrderID="1"), headers=headers)
    client.post(CREATE, json=create_sample(externalOrderID="2"), headers=headers)
    client.post(IMPORT, json=sample(externalOrderID=""), headers=headers)
    answer = held(client)
    assert answer["vendor"] == "shopatron"
    assert answer["count"] == 2
    assert answer["requests"] == 4  # the token request and three orders
    assert answer["requests_by_path"] == {
        "/oauthserver/oauth2/token": 1,
        "/api/v2/importOrder/": 2,
        "/api/v2/createOrder/": 1,
    }
    assert sorted(o["externalOrderID"] for o in answer["orders"]) == ["1", "2"]


# Switchable unknowns


def test_duplicate_external_id_is_refused_by_default(
    client: httpx.Client, headers: dict[str, str]
) -> None:
    assert client.post(IMPORT, json=SAMPLE, headers=headers).status_code == 200
    for path, body in [(IMPORT, SAMPLE), (CREATE, create_sample())]:
        r = client.post(path, json=body, headers=headers)
        assert r.status_code == 400
        assert r.json() == {
            "code": 5015,
            "error": "INVALID_REQUEST_DATA",
            "message": "externalOrderID '0987654321' already exists as order 100001",
            "field": "externalOrderID",
            "orderID": 100001,
        }
    # Another manufacturer's externalOrderIDs are its own.
    assert client.post(IMPORT, json=sample(manufacturerID=2020), headers=headers).status_code == 200
    assert held(client)["count"] == 2


def lenient() -> ShopatronSimulator:
    """A Shopatron that takes duplicate externalOrderIDs and cannot search by them."""
    return ShopatronSimulator(reject_duplicate_external_id=False, search_by_external_id=False)


def test_duplicate_external_id_creates_a_second_order_when_switched_off(local: Serve) -> None:
    c = local(lenient())
    hdrs = auth(c)
    first = c.post(IMPORT, json=SAMPLE, headers=hdrs)
    second = c.post(IMPORT, json=SAMPLE, headers=hdrs)
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.json()["orderID"], second.json()["orderID"]) == (100001, 100002)
    assert held(c)["count"] == 2
    found = _search(c, hdrs, manufacturerID=1010)["collection"]
    assert [o["externalOrderID"] for o in found] == ["0987654321", "0987654321"]


def test_search_by_external_id_by_default(client: httpx.Client, headers: dict[str, str]) -> None:
    client.post(IMPORT, json=SAMPLE, headers=headers)
    answer = _search(client, headers, externalOrderID="0987654321", manufacturerID=1010)
    assert [o["orderID"] for o in answer["collection"]] == [100001]


def test_search_by_external_id_refused_when_switched_off(local: Serve) -> None:
    c = local(lenient())
    r = c.get(SEARCH, params={"externalOrderID": "0987654321"}, headers=auth(c))
    assert r.status_code == 400
    assert r.json()["code"] == 5016
    assert "externalOrderID" in r.json()["message"]


# Faults


def test_fail_next_503_with_retry_after(client: httpx.Client, headers: dict[str, str]) -> None:
    faults(client, fail_next=1, status=503, retry_after=7)
    r = client.post(IMPORT, json=SAMPLE, headers=headers)
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "7"
    assert r.json()["code"] == 5001
    assert r.json()["error"] == "GENERIC_UNAVAILABLE"
    assert held(client)["count"] == 0
    assert client.post(IMPORT, json=SAMPLE, headers=headers).status_code == 200


@pytest.mark.parametrize(("retry_after", "header"), [(None, "60"), (2.5, "3")])
def test_fail_next_429(
    client: httpx.Client, headers: dict[str, str], retry_after: float | None, header: str
) -> None:
    faults(client, fail_next=1, status=429, retry_after=retry_after)
    r = client.post(IMPORT, json=SAMPLE, headers=headers)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == header
    assert len(r.headers["x-vol-correlation"]) == 32
    assert r.json()["message"] == "Too Many Requests"
    assert held(client)["count"] == 0


def test_error_rate_answers_oms_server_error(
    client: httpx.Client, headers: dict[str, str]
) -> None:
    faults(client, error_rate=1.0, error_status=500)
    r = client.post(IMPORT, json=SAMPLE, headers=headers)
    assert r.status_code == 500
    assert (r.json()["code"], r.json()["error"]) == (5006, "GENERIC_SERVER_ERROR")
    client.delete("/_sandbox/faults/shopatron").raise_for_status()
    assert client.post(IMPORT, json=SAMPLE, headers=headers).status_code == 200


def test_outage_answers_503(client: httpx.Client, headers: dict[str, str]) -> None:
    faults(client, outage_s=5)
    r = client.get(SEARCH, params={"orderID": "1"}, headers=headers)
    assert r.status_code == 503
    assert r.json()["code"] == 5001
    assert 1 <= int(r.headers["Retry-After"]) <= 5


def test_malformed_answer_still_stores_the_order(
    client: httpx.Client, headers: dict[str, str]
) -> None:
    faults(client, malformed_next=1)
    r = client.post(IMPORT, json=SAMPLE, headers=headers)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)
    assert held(client)["count"] == 1


def test_reset_drops_the_connection_without_storing(
    client: httpx.Client, headers: dict[str, str]
) -> None:
    faults(client, reset_next=1)
    with pytest.raises(httpx.TransportError):
        client.post(IMPORT, json=SAMPLE, headers=headers)
    assert held(client)["count"] == 0


def test_drop_after_commit_then_reconcile_by_external_id(
    client: httpx.Client, headers: dict[str, str]
) -> None:
    faults(client, drop_after_commit_next=1)
    with pytest.raises(httpx.TransportError):
        client.post(IMPORT, json=SAMPLE, headers=headers)
    assert held(client)["count"] == 1
    found = _search(client, headers, externalOrderID="0987654321")["collection"]
    assert [o["orderID"] for o in found] == [100001]
    r = client.post(IMPORT, json=SAMPLE, headers=headers)
    assert (r.status_code, r.json()["orderID"]) == (400, 100001)


def test_hang_outlasts_a_short_client_timeout(
    client: httpx.Client, headers: dict[str, str]
) -> None:
    faults(client, hang_next=1, hang_s=0.3)
    with pytest.raises(httpx.TimeoutException):
        client.post(IMPORT, json=SAMPLE, headers=headers, timeout=0.1)
    assert held(client)["count"] == 0


def test_fixed_latency(client: httpx.Client, headers: dict[str, str]) -> None:
    faults(client, latency={"distribution": "fixed", "ms": 80})
    started = time.monotonic()
    assert client.post(IMPORT, json=SAMPLE, headers=headers).status_code == 200
    assert time.monotonic() - started >= 0.08
