"""The SellerCloud simulator against docs/sellercloud.txt, NOTES.md §5 and the swagger subset.

The document's sample request (``fixtures/sellercloud/create_order.json``) is the document's
CustomerDetails and OrderDetails fragments verbatim except ``CompanyID`` 1 instead of 0 (the
sandbox's demo company; 0 is no company), with the "object ... check swagger" parts filled in
from the swagger models (addresses, shipping, products, notes, gift) and an empty PaymentDetails.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from order_dispatch_sandbox.sellercloud import (
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    SellerCloudSimulator,
)
from tests.sandbox.conftest import DELETE, Serve, changed, set_faults, vendor_orders

FIXTURES = Path(__file__).parent / "fixtures" / "sellercloud"
API = "/sellercloud/rest/api"
CREDENTIALS = {"Username": DEFAULT_USERNAME, "Password": DEFAULT_PASSWORD}
NOT_VALID_TOKEN = {"Message": "Not Valid Token"}
INVALID = "The request is invalid."


def sample() -> dict[str, Any]:
    """The document's sample request, made valid."""
    body: dict[str, Any] = json.loads((FIXTURES / "create_order.json").read_text())
    return body


def order(source_id: str = "SO-1001", company_id: int = 1) -> dict[str, Any]:
    """A realistic order as an adapter would send it."""
    address = {
        "FirstName": "Ada", "LastName": "Lovelace", "Address": "1 Main St", "City": "Brooklyn",
        "State": "NY", "ZipCode": "11201", "Country": "US", "Phone": "555-0100",
    }
    return {
        "CustomerDetails": {"Email": "ada@example.com", "FirstName": "Ada", "LastName": "Lovelace"},
        "OrderDetails": {
            "CompanyID": company_id, "Channel": 21, "OrderSourceOrderID": source_id,
            "OrderDate": "2024-05-01 10:00:00",
        },
        "ShippingAddress": address,
        "BillingAddress": dict(address),
        "ShippingMethodDetails": {"Carrier": "UPS", "ShippingMethod": "UPSGround"},
        "Products": [
            {"ProductID": "SKU-1", "Qty": 2, "SitePrice": 9.5, "DiscountType": 1},
        ],
    }


def token(client: httpx.Client, credentials: dict[str, str] = CREDENTIALS) -> str:
    response = client.post(f"{API}/token", json=credentials)
    assert response.status_code == 200, response.text
    value: str = response.json()["access_token"]
    return value


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
def auth(client: httpx.Client) -> dict[str, str]:
    """Headers with a fresh token of the demo user."""
    return bearer(token(client))


def create(client: httpx.Client, auth: dict[str, str], body: dict[str, Any]) -> int:
    response = client.post(f"{API}/Orders", json=body, headers=auth)
    assert response.status_code == 200, response.text
    order_id = response.json()
    assert isinstance(order_id, int)
    return order_id


def admin_orders(client: httpx.Client) -> dict[str, Any]:
    return vendor_orders(client, "sellercloud")


def faults(client: httpx.Client, **spec: Any) -> None:
    set_faults(client, "sellercloud", **spec)


def parse_time(value: str) -> float:
    assert value.endswith("Z") and len(value.split(".")[1]) == 8, value  # 7 digits + Z
    return datetime.fromisoformat(value).timestamp()


# --- the documented sample and the documented success shapes -----------------------------------


def test_token_answer_has_the_documented_fields(client: httpx.Client) -> None:
    before = time.time()
    response = client.post(f"{API}/token", json=CREDENTIALS)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "access_token", "token_type", "username", "expires_in", ".issued", ".expires"
    }
    assert body["token_type"] == "Bearer"
    assert body["username"] == DEFAULT_USERNAME
    assert body["expires_in"] == 3600  # "valid for 60 minutes"
    issued, expires = parse_time(body[".issued"]), parse_time(body[".expires"])
    assert before - 1 <= issued <= time.time() + 1
    assert expires - issued == pytest.approx(3600, abs=0.01)
    assert len(body["access_token"]) >= 32


def test_token_accepts_a_form_as_the_swagger_says(client: httpx.Client) -> None:
    response = client.post(f"{API}/token", data=CREDENTIALS)
    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"


def test_documented_sample_creates_an_order_and_answers_a_bare_integer(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    response = client.post(f"{API}/Orders", json=sample(), headers=auth)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.text.isdigit()
    order_id = int(response.text)

    got = client.get(f"{API}/Orders/{order_id}", headers=auth)
    assert got.status_code == 200
    dto = got.json()
    assert dto["ID"] == order_id
    assert dto["Statuses"] == {
        "OrderStatus": 2, "ShippingStatus": 1, "PaymentStatus": 10, "DropshipStatus": 0,
        "RushOrder": True,
    }
    assert dto["OrderDetails"]["OrderSourceOrderId"] == "string"
    assert "OrderSourceOrderID" not in dto["OrderDetails"]
    assert dto["OrderDetails"]["Channel"] == 0  # "Local_Store" read as its enum value
    assert dto["OrderDetails"]["CompanyID"] == 1
    assert dto["CustomerDetails"]["Email"] == "string"
    assert dto["Products"][0]["ProductID"] == "string"
    assert dto["Products"][0]["Qty"] == 1
    assert dto["Notes"] == [{"Category": 1, "Note": "string"}]
    assert dto["ShippingAddress"]["ZipCode"] == "string"
    assert admin_orders(client)["count"] == 1


def test_the_documents_endpoint_with_a_trailing_slash_works(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    response = client.post(f"{API}/Orders/", json=order(), headers=auth)
    assert response.status_code == 200
    assert isinstance(response.json(), int)


@pytest.mark.parametrize(
    ("channel", "stored"),
    [(0, 0), ("Local_Store", 0), (6, 6), ("Website", 6), ("website", 6), (21, 21),
     ("Wholesale", 21), (79, 79)],
)
def test_channel_accepts_the_swagger_ints_and_names(
    client: httpx.Client, auth: dict[str, str], channel: Any, stored: int
) -> None:
    body = order()
    body["OrderDetails"]["Channel"] = channel
    order_id = create(client, auth, body)
    got = client.get(f"{API}/Orders/{order_id}", headers=auth).json()
    assert got["OrderDetails"]["Channel"] == stored


def test_post_is_not_idempotent_by_default(client: httpx.Client, auth: dict[str, str]) -> None:
    first = create(client, auth, order("SO-DUP"))
    second = create(client, auth, order("SO-DUP"))
    assert first != second
    listed = client.get(
        f"{API}/Orders", params={"model.orderSourceOrderIDList": "SO-DUP"}, headers=auth
    ).json()
    assert [item["ID"] for item in listed["Items"]] == [first, second]
    assert listed["TotalResults"] == 2


# --- validation ---------------------------------------------------------------------------------


REQUIRED = "The {} field is required."


@pytest.mark.parametrize(
    ("path", "value", "key", "message"),
    [
        ("CustomerDetails", DELETE, "model.CustomerDetails", REQUIRED.format("CustomerDetails")),
        ("CustomerDetails.Email", DELETE, "model.CustomerDetails.Email",
         REQUIRED.format("Email")),
        ("CustomerDetails.FirstName", "", "model.CustomerDetails.FirstName",
         REQUIRED.format("FirstName")),
        ("CustomerDetails.LastName", None, "model.CustomerDetails.LastName",
         REQUIRED.format("LastName")),
        ("CustomerDetails.IsWholesale", "yes", "model.CustomerDetails.IsWholesale",
         "Error converting value \"yes\" to type 'System.Boolean'. "
         "Path 'CustomerDetails.IsWholesale'."),
        ("OrderDetails", DELETE, "model.OrderDetails", REQUIRED.format("OrderDetails")),
        ("OrderDetails.CompanyID", DELETE, "model.OrderDetails.CompanyID",
         REQUIRED.format("CompanyID")),
        ("OrderDetails.CompanyID", "1", "model.OrderDetails.CompanyID",
         "Error converting value \"1\" to type 'System.Int32'. Path 'OrderDetails.CompanyID'."),
        ("OrderDetails.CompanyID", 99, "model.OrderDetails.CompanyID",
         "Company 99 was not found."),
        ("OrderDetails.Channel", DELETE, "model.OrderDetails.Channel",
         REQUIRED.format("Channel")),
        ("OrderDetails.Channel", 8, "model.OrderDetails.Channel",
         "Error converting value \"8\" to type 'OrderChannelType'. Path 'OrderDetails.Channel'."),
        ("OrderDetails.Channel", "Nowhere", "model.OrderDetails.Channel",
         "Error converting value \"Nowhere\" to type 'OrderChannelType'. "
         "Path 'OrderDetails.Channel'."),
        ("OrderDetails.OrderDate", "yesterday", "model.OrderDetails.OrderDate",
         "Error converting value \"yesterday\" to type 'System.DateTime'. "
         "Path 'OrderDetails.OrderDate'."),
        ("ShippingAddress", DELETE, "model.ShippingAddress", REQUIRED.format("ShippingAddress")),
        ("BillingAddress", DELETE, "model.BillingAddress", REQUIRED.format("BillingAddress")),
        ("ShippingAddress.ZipCode", 11201, "model.ShippingAddress.ZipCode",
         "Error converting value \"11201\" to type 'System.String'. "
         "Path 'ShippingAddress.ZipCode'."),
        ("Products", {"ProductID": "SKU-1", "Qty": 1}, "model.Products",
         "Cannot deserialize the current JSON value into 'Products' (an array)."),
        ("Products.0.ProductID", DELETE, "model.Products[0].ProductID",
         REQUIRED.format("ProductID")),
        ("Products.0.Qty", 0, "model.Products[0].Qty",
         "The field Qty must be between 1 and 2147483647."),
        ("Products.0.Qty", None, "model.Products[0].Qty", REQUIRED.format("Qty")),
        ("Products.0.Qty", 2.5, "model.Products[0].Qty",
         "Error converting value \"2.5\" to type 'System.Int32'. Path 'Products[0].Qty'."),
        ("Products.0.DiscountType", 5, "model.Products[0].DiscountType",
         "Error converting value \"5\" to type 'DiscountType'. Path 'Products[0].DiscountType'."),
        ("Notes", [{"Category": 7, "Note": "x"}], "model.Notes[0].Category",
         "Error converting value \"7\" to type 'OrderNoteCategory'. Path 'Notes[0].Category'."),
    ],
)
def test_invalid_orders_are_refused_with_a_model_state(
    client: httpx.Client,
    auth: dict[str, str],
    path: str,
    value: Any,
    key: str,
    message: str,
) -> None:
    body = changed(order(), path, value)
    response = client.post(f"{API}/Orders", json=body, headers=auth)
    assert response.status_code == 400
    assert response.json() == {"Message": INVALID, "ModelState": {key: [message]}}
    assert admin_orders(client)["count"] == 0


def test_every_problem_is_listed_at_once(client: httpx.Client, auth: dict[str, str]) -> None:
    body = order()
    del body["CustomerDetails"]["Email"]
    del body["OrderDetails"]["Channel"]
    response = client.post(f"{API}/Orders", json=body, headers=auth)
    assert response.status_code == 400
    assert set(response.json()["ModelState"]) == {
        "model.CustomerDetails.Email", "model.OrderDetails.Channel"
    }


def test_products_may_be_missing_and_payment_details_are_ignored(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    body = order()
    del body["Products"]
    body["PaymentDetails"] = {"PaymentMethod": "Cash"}
    order_id = create(client, auth, body)
    got = client.get(f"{API}/Orders/{order_id}", headers=auth).json()
    assert got["Products"] == []
    assert "PaymentDetails" not in got


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The model field is required."),
        (b"[1, 2]", "The model field is required."),
        (b"null", "The model field is required."),
    ],
)
def test_a_body_that_is_no_order_is_refused(
    client: httpx.Client, auth: dict[str, str], content: bytes, message: str
) -> None:
    response = client.post(
        f"{API}/Orders", content=content, headers={**auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {"Message": INVALID, "ModelState": {"model": [message]}}


def test_broken_json_is_refused(client: httpx.Client, auth: dict[str, str]) -> None:
    response = client.post(
        f"{API}/Orders", content=b'{"CustomerDetails": ', headers={
            **auth, "Content-Type": "application/json"
        }
    )
    assert response.status_code == 400
    body = response.json()
    assert body["Message"] == INVALID
    assert body["ModelState"]["model"][0].startswith("Unexpected character encountered")


def test_a_body_that_is_not_json_is_an_unsupported_media_type(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    response = client.post(
        f"{API}/Orders", content=json.dumps(order()), headers={**auth, "Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert response.json() == {
        "Message": "The request entity's media type 'text/plain' is not supported for this "
        "resource."
    }


# --- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("credentials", "status", "body"),
    [
        ({"Username": DEFAULT_USERNAME, "Password": "wrong"}, 400,
         {"Message": "Username or password is invalid."}),
        ({"Username": "someone-else", "Password": DEFAULT_PASSWORD}, 400,
         {"Message": "Username or password is invalid."}),
        ({"Username": DEFAULT_USERNAME}, 400,
         {"Message": INVALID, "ModelState": {"model.Password": [REQUIRED.format("Password")]}}),
        ({}, 400, {"Message": INVALID, "ModelState": {
            "model.Username": [REQUIRED.format("Username")],
            "model.Password": [REQUIRED.format("Password")],
        }}),
    ],
)
def test_token_refuses_bad_credentials(
    client: httpx.Client, credentials: dict[str, str], status: int, body: dict[str, Any]
) -> None:
    response = client.post(f"{API}/token", json=credentials)
    assert response.status_code == status
    assert response.json() == body


ENDPOINTS = [
    ("POST", "/Orders", order()),
    ("GET", "/Orders/1000001", None),
    ("GET", "/Orders?model.orderSourceOrderIDList=SO-1001", None),
    ("PUT", "/Orders/StatusCode", {"Orders": [1000001], "Status": -1}),
    ("DELETE", "/Orders/1000001", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_orders_need_a_valid_bearer_token(
    client: httpx.Client, method: str, path: str, body: Any
) -> None:
    for authorization in (None, "Bearer not-a-token", "Bearer", "Basic dXNlcjpwYXNz"):
        headers = {"Authorization": authorization} if authorization is not None else {}
        response = client.request(method, f"{API}{path}", json=body, headers=headers)
        assert response.status_code == 401, authorization
        assert response.json() == NOT_VALID_TOKEN, authorization
        assert response.headers["WWW-Authenticate"] == "Bearer", authorization


def test_expired_tokens_are_not_valid_and_a_new_one_works(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    assert client.post(f"{API}/Orders", json=order(), headers=auth).status_code == 200
    faults(client, expire_tokens=True)
    response = client.post(f"{API}/Orders", json=order(), headers=auth)
    assert response.status_code == 401
    assert response.json() == NOT_VALID_TOKEN
    assert admin_orders(client)["count"] == 1
    fresh = bearer(token(client))
    assert client.post(f"{API}/Orders", json=order(), headers=fresh).status_code == 200


def test_a_token_past_its_lifetime_is_not_valid(local: Serve) -> None:
    c = local(SellerCloudSimulator(token_ttl_s=0))
    answer = c.post(f"{API}/token", json=CREDENTIALS).json()
    assert answer["expires_in"] == 0
    response = c.get(f"{API}/Orders", headers=bearer(answer["access_token"]))
    assert response.status_code == 401
    assert response.json() == NOT_VALID_TOKEN


def test_credentials_come_from_the_constructor(local: Serve) -> None:
    c = local(SellerCloudSimulator(username="ops@example.com", password="s3cret"))
    assert c.post(f"{API}/token", json=CREDENTIALS).status_code == 400
    answer = c.post(f"{API}/token", json={"Username": "ops@example.com", "Password": "s3cret"})
    assert answer.status_code == 200
    assert answer.json()["username"] == "ops@example.com"


def test_from_env_reads_every_keyword(monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = "ORDER_DISPATCH_SANDBOX_SELLERCLOUD_"
    for name, value in {
        "USERNAME": "env-user", "PASSWORD": "env-pass", "TOKEN_TTL_S": "60",
        "COMPANY_IDS": "3, 4", "REQUIRE_ADDRESSES": "false",
        "REJECT_DUPLICATE_SOURCE_ID": "true", "RATE_LIMIT_PER_HOUR": "5",
    }.items():
        monkeypatch.setenv(prefix + name, value)
    sim = SellerCloudSimulator.from_env()
    assert (sim.username, sim.password, sim.token_ttl_s) == ("env-user", "env-pass", 60)
    assert sim.company_ids == {3, 4}
    assert sim.require_addresses is False
    assert sim.reject_duplicate_source_id is True
    assert sim.rate_limit_per_hour == 5
    default = SellerCloudSimulator()
    assert (default.rate_limit_per_hour, default.token_ttl_s, default.company_ids) == (
        10800, 3600, {1}
    )
    assert default.require_addresses is True and default.reject_duplicate_source_id is False


# --- state: lookup, list, status, cancel, delete ------------------------------------------------


def test_get_unknown_or_malformed_order_ids(client: httpx.Client, auth: dict[str, str]) -> None:
    missing = client.get(f"{API}/Orders/424242", headers=auth)
    assert missing.status_code == 404
    assert missing.json() == {"Message": "Order 424242 was not found."}
    bad = client.get(f"{API}/Orders/abc", headers=auth)
    assert bad.status_code == 400
    assert bad.json() == {
        "Message": INVALID, "ModelState": {"id": ["The value 'abc' is not valid for id."]}
    }


def test_list_by_order_source_order_id(client: httpx.Client, auth: dict[str, str]) -> None:
    a = create(client, auth, order("SO-A"))
    create(client, auth, order("SO-B"))
    c = create(client, auth, order("SO-C"))
    response = client.get(
        f"{API}/Orders",
        params=[("model.orderSourceOrderIDList", "SO-A"), ("model.orderSourceOrderIDList", "SO-C"),
                ("model.orderSourceOrderIDList", "SO-NONE")],
        headers=auth,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["TotalResults"] == 2
    assert [item["ID"] for item in body["Items"]] == [a, c]
    assert body["Items"][0] == {
        "ID": a, "CompanyID": 1, "Channel": 21, "OrderSourceOrderID": "SO-A", "StatusCode": 2,
        "ShippingStatus": 1, "PaymentStatus": 10, "DropShipStatus": 0,
        "TimeOfOrder": "2024-05-01 10:00:00", "LastUpdate": body["Items"][0]["LastUpdate"],
    }
    none = client.get(
        f"{API}/Orders", params={"model.orderSourceOrderIDList": "SO-NONE"}, headers=auth
    ).json()
    assert none == {"Items": [], "TotalResults": 0}


def test_list_pages_default_to_ten_and_stop_at_fifty(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    ids = [create(client, auth, order("SO-MANY")) for _ in range(12)]
    query = {"model.orderSourceOrderIDList": "SO-MANY"}
    first = client.get(f"{API}/Orders", params=query, headers=auth).json()
    assert first["TotalResults"] == 12
    assert [item["ID"] for item in first["Items"]] == ids[:10]
    second = client.get(
        f"{API}/Orders", params={**query, "model.pageNumber": "2"}, headers=auth
    ).json()
    assert [item["ID"] for item in second["Items"]] == ids[10:]
    small = client.get(
        f"{API}/Orders", params={**query, "model.pageSize": "5", "model.pageNumber": "3"},
        headers=auth,
    ).json()
    assert [item["ID"] for item in small["Items"]] == ids[10:]
    too_big = client.get(f"{API}/Orders", params={**query, "model.pageSize": "51"}, headers=auth)
    assert too_big.status_code == 400
    assert too_big.json() == {
        "Message": INVALID,
        "ModelState": {"model.pageSize": ["The field pageSize must be between 1 and 50."]},
    }
    not_int = client.get(f"{API}/Orders", params={"model.pageNumber": "x"}, headers=auth)
    assert not_int.status_code == 400
    assert not_int.json()["ModelState"] == {
        "model.pageNumber": ["The value 'x' is not valid for pageNumber."]
    }


def test_cancel_with_status_code(client: httpx.Client, auth: dict[str, str]) -> None:
    order_id = create(client, auth, order("SO-CANCEL"))
    response = client.put(
        f"{API}/Orders/StatusCode", json={"Orders": [order_id, 999], "Status": -1}, headers=auth
    )
    assert response.status_code == 200
    assert response.json() == [order_id]
    got = client.get(f"{API}/Orders/{order_id}", headers=auth).json()
    assert got["Statuses"]["OrderStatus"] == -1
    canceled = client.get(
        f"{API}/Orders", params={"model.orderStatus": "Canceled"}, headers=auth
    ).json()
    assert [item["ID"] for item in canceled["Items"]] == [order_id]
    in_process = client.get(f"{API}/Orders", params={"model.orderStatus": "2"}, headers=auth)
    assert in_process.json()["TotalResults"] == 0


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        ({"Orders": [1]}, "request.Status", REQUIRED.format("Status")),
        ({"Orders": [], "Status": -1}, "request.Orders", REQUIRED.format("Orders")),
        ({"Orders": [1], "Status": 5}, "request.Status",
         "Error converting value \"5\" to type 'OrderStatusCode'. Path 'Status'."),
        ({"Orders": ["x"], "Status": -1}, "request.Orders[0]",
         "Error converting value \"x\" to type 'System.Int32'. Path 'Orders[0]'."),
    ],
)
def test_status_code_validation(
    client: httpx.Client, auth: dict[str, str], body: dict[str, Any], key: str, message: str
) -> None:
    response = client.put(f"{API}/Orders/StatusCode", json=body, headers=auth)
    assert response.status_code == 400
    assert response.json() == {"Message": INVALID, "ModelState": {key: [message]}}


def test_admin_status_changes_and_shipped_orders_cannot_be_canceled(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    order_id = create(client, auth, order())
    admin = f"/_sandbox/orders/sellercloud/{order_id}/status"
    assert client.post(admin, json={"status": "OnHold"}).json()["Statuses"]["OrderStatus"] == 200
    assert client.post(admin, json={"status": "3"}).json()["Statuses"]["OrderStatus"] == 3
    unknown = client.post(admin, json={"status": "Teleported"}).json()
    assert unknown["error"] == "unknown status 'Teleported'"
    shipped = client.post(admin, json={"status": "FullyShipped"}).json()
    assert shipped["Statuses"]["ShippingStatus"] == 3
    assert shipped["Statuses"]["OrderStatus"] == 3
    response = client.put(
        f"{API}/Orders/StatusCode", json={"Orders": [order_id], "Status": "Canceled"}, headers=auth
    )
    assert response.json() == []
    got = client.get(f"{API}/Orders/{order_id}", headers=auth).json()
    assert got["Statuses"]["OrderStatus"] == 3


def test_delete_forgets_the_order(client: httpx.Client, auth: dict[str, str]) -> None:
    keep = create(client, auth, order("SO-KEEP"))
    gone = create(client, auth, order("SO-GONE"))
    assert admin_orders(client)["count"] == 2
    response = client.delete(f"{API}/Orders/{gone}", headers=auth)
    assert response.status_code == 200
    assert response.content == b""
    assert client.get(f"{API}/Orders/{gone}", headers=auth).status_code == 404
    listed = client.get(
        f"{API}/Orders", params={"model.orderSourceOrderIDList": "SO-GONE"}, headers=auth
    ).json()
    assert listed["TotalResults"] == 0
    held = admin_orders(client)
    assert held["count"] == 1
    assert [o["ID"] for o in held["orders"]] == [keep]
    assert client.delete(f"{API}/Orders/{gone}", headers=auth).status_code == 404


def test_admin_counts_what_the_vendor_received(client: httpx.Client, auth: dict[str, str]) -> None:
    ids = [create(client, auth, order(f"SO-{n}")) for n in range(3)]
    held = admin_orders(client)
    assert held["vendor"] == "sellercloud"
    assert held["count"] == 3
    assert sorted(o["ID"] for o in held["orders"]) == ids
    assert {o["OrderDetails"]["OrderSourceOrderId"] for o in held["orders"]} == {
        "SO-0", "SO-1", "SO-2"
    }


# --- switchable unknowns ------------------------------------------------------------------------


def test_duplicate_source_ids_refused_when_switched_on(local: Serve) -> None:
    c = local(SellerCloudSimulator(reject_duplicate_source_id=True, company_ids="1,2"))
    auth = bearer(token(c))
    first = create(c, auth, order("SO-ONCE"))
    again = c.post(f"{API}/Orders", json=order("SO-ONCE"), headers=auth)
    assert again.status_code == 400
    assert again.json() == {
        "Message": INVALID,
        "ModelState": {"model.OrderDetails.OrderSourceOrderID": [
            f"Order with OrderSourceOrderID 'SO-ONCE' already exists: order {first}."
        ]},
    }
    # another company may use the same reference; orders without one never collide
    create(c, auth, order("SO-ONCE", company_id=2))
    create(c, auth, order(""))
    create(c, auth, order(""))
    held = c.get("/_sandbox/orders", params={"vendor": "sellercloud"}).json()
    assert held["count"] == 4


def test_addresses_optional_when_switched_off(
    client: httpx.Client, auth: dict[str, str], local: Serve
) -> None:
    body = order()
    del body["ShippingAddress"], body["BillingAddress"]
    assert client.post(f"{API}/Orders", json=body, headers=auth).status_code == 400
    c = local(SellerCloudSimulator(require_addresses=False))
    headers = bearer(token(c))
    order_id = create(c, headers, body)
    got = c.get(f"{API}/Orders/{order_id}", headers=headers).json()
    assert got["ShippingAddress"] is None and got["BillingAddress"] is None


def test_known_companies_come_from_the_constructor(local: Serve) -> None:
    c = local(SellerCloudSimulator(company_ids="7,8"))
    auth = bearer(token(c))
    refused = c.post(f"{API}/Orders", json=order(company_id=1), headers=auth)
    assert refused.json()["ModelState"] == {
        "model.OrderDetails.CompanyID": ["Company 1 was not found."]
    }
    seven = create(c, auth, order(company_id=7))
    eight = create(c, auth, order(company_id=8))
    listed = c.get(f"{API}/Orders", params={"model.companyID": "8"}, headers=auth).json()
    assert [item["ID"] for item in listed["Items"]] == [eight]
    both = c.get(
        f"{API}/Orders", params=[("model.companyID", "7"), ("model.companyID", "8")],
        headers=auth,
    ).json()
    assert [item["ID"] for item in both["Items"]] == [seven, eight]


def test_rate_limit_answers_the_documented_body(local: Serve) -> None:
    c = local(SellerCloudSimulator(rate_limit_per_hour=3))
    auth = bearer(token(c))  # 1
    create(c, auth, order())  # 2
    assert c.get(f"{API}/Orders", headers=auth).status_code == 200  # 3
    before = time.time()
    response = c.get(f"{API}/Orders", headers=auth)
    assert response.status_code == 429
    body = response.json()
    assert set(body) == {"Error", "RateLimitResetTime"}
    assert body["Error"] == "Too many requests."
    assert parse_time(body["RateLimitResetTime"]) == pytest.approx(before + 3600, abs=5)
    assert "Retry-After" not in response.headers
    # the token endpoint counts too, and a refused request stores nothing
    assert c.post(f"{API}/token", json=CREDENTIALS).status_code == 429
    assert c.post(f"{API}/Orders", json=order(), headers=auth).status_code == 429
    assert c.get("/_sandbox/orders", params={"vendor": "sellercloud"}).json()["count"] == 1


def test_rate_limit_zero_is_unlimited(local: Serve) -> None:
    c = local(SellerCloudSimulator(rate_limit_per_hour=0))
    auth = bearer(token(c))
    statuses = {c.get(f"{API}/Orders", headers=auth).status_code for _ in range(25)}
    assert statuses == {200}


# --- faults as they look for SellerCloud --------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
def test_fail_next_5xx_is_a_dotnet_error(
    client: httpx.Client, auth: dict[str, str], status: int
) -> None:
    faults(client, fail_next=1, status=status, retry_after=7)
    response = client.post(f"{API}/Orders", json=order(), headers=auth)
    assert response.status_code == status
    assert response.json() == {"Message": "An error has occurred."}
    assert response.headers["Retry-After"] == "7"
    assert admin_orders(client)["count"] == 0
    assert client.post(f"{API}/Orders", json=order(), headers=auth).status_code == 200


def test_fail_next_429_has_the_rate_limit_body(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    faults(client, fail_next=1, status=429, retry_after=30)
    before = time.time()
    response = client.post(f"{API}/Orders", json=order(), headers=auth)
    assert response.status_code == 429
    body = response.json()
    assert body["Error"] == "Too many requests."
    assert parse_time(body["RateLimitResetTime"]) == pytest.approx(before + 30, abs=2)
    assert response.headers["Retry-After"] == "30"
    assert admin_orders(client)["count"] == 0


def test_fail_next_401_looks_like_a_bad_token(client: httpx.Client, auth: dict[str, str]) -> None:
    faults(client, fail_next=1, status=401)
    response = client.get(f"{API}/Orders", headers=auth)
    assert response.status_code == 401
    assert response.json() == NOT_VALID_TOKEN


def test_error_rate_and_rate_limit_rate(client: httpx.Client, auth: dict[str, str]) -> None:
    faults(client, error_rate=1.0, error_status=502)
    response = client.get(f"{API}/Orders", headers=auth)
    assert (response.status_code, response.json()) == (502, {"Message": "An error has occurred."})
    client.delete("/_sandbox/faults/sellercloud").raise_for_status()
    faults(client, rate_limit_rate=1.0)
    before = time.time()
    limited = client.get(f"{API}/Orders", headers=auth)
    assert limited.status_code == 429
    assert limited.json()["Error"] == "Too many requests."
    assert parse_time(limited.json()["RateLimitResetTime"]) == pytest.approx(before + 1, abs=1)
    assert "Retry-After" not in limited.headers


def test_outage_answers_503_with_retry_after(client: httpx.Client, auth: dict[str, str]) -> None:
    faults(client, outage_s=5)
    response = client.get(f"{API}/Orders", headers=auth)
    assert response.status_code == 503
    assert response.json() == {"Message": "An error has occurred."}
    assert 1 <= int(response.headers["Retry-After"]) <= 5


def test_malformed_answer_after_the_order_was_stored(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    faults(client, malformed_next=1)
    response = client.post(f"{API}/Orders", json=order("SO-MALFORMED"), headers=auth)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    assert admin_orders(client)["count"] == 1


def test_reset_drops_the_connection_before_anything_is_stored(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    faults(client, reset_next=1)
    with pytest.raises(httpx.TransportError):
        client.post(f"{API}/Orders", json=order(), headers=auth)
    assert admin_orders(client)["count"] == 0


def test_drop_after_commit_stores_the_order_and_the_list_finds_it(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    faults(client, drop_after_commit_next=1)
    with pytest.raises(httpx.TransportError):
        client.post(f"{API}/Orders", json=order("SO-LOST-ANSWER"), headers=auth)
    held = admin_orders(client)
    assert held["count"] == 1
    found = client.get(
        f"{API}/Orders", params={"model.orderSourceOrderIDList": "SO-LOST-ANSWER"}, headers=auth
    ).json()
    assert found["TotalResults"] == 1
    assert found["Items"][0]["ID"] == held["orders"][0]["ID"]


def test_hang_outlasts_the_client_timeout(client: httpx.Client, auth: dict[str, str]) -> None:
    faults(client, hang_next=1, hang_s=0.3)
    with pytest.raises(httpx.ReadTimeout):
        client.post(f"{API}/Orders", json=order(), headers=auth, timeout=0.1)
    assert admin_orders(client)["count"] == 0


def test_fixed_latency_delays_the_answer(client: httpx.Client, auth: dict[str, str]) -> None:
    faults(client, latency={"distribution": "fixed", "ms": 80})
    started = time.perf_counter()
    assert client.get(f"{API}/Orders", headers=auth).status_code == 200
    assert time.perf_counter() - started >= 0.08
