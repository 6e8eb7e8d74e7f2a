"""The Sophio simulator against docs/sophio.txt and NOTES.md §1 (ShipStation V1 semantics)."""

from __future__ import annotations

import base64
import copy
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from order_dispatch_sandbox.runner import BackgroundSandbox
from order_dispatch_sandbox.sophio import DEFAULT_API_KEY, DEFAULT_API_SECRET, SophioSimulator
from tests.sandbox.conftest import DELETE, Serve, changed, set_faults, vendor_orders

FIXTURES = Path(__file__).parent / "fixtures" / "sophio"
SAMPLE: dict[str, Any] = json.loads((FIXTURES / "sample_request.json").read_text())
SAMPLE_RESPONSE: dict[str, Any] = json.loads((FIXTURES / "sample_response.json").read_text())

#: The document's own example: 'sophio':'orders' -> c29waGlvOm9yZGVycw==
DOC_AUTH = "c29waGlvOm9yZGVycw=="
AUTH = base64.b64encode(f"{DEFAULT_API_KEY}:{DEFAULT_API_SECRET}".encode()).decode()
URL = f"/sophio/createorder.wws?action=CREATE&authentication={quote(AUTH, safe='')}"
DENIED = {"Message": "Authorization has been denied for this request."}


def order(**changes: Any) -> dict[str, Any]:
    """The document's sample request with top-level fields replaced."""
    body = copy.deepcopy(SAMPLE)
    body.update(changes)
    return body


def post(client: httpx.Client, body: Any, url: str = URL) -> httpx.Response:
    """POST an order (a dict as JSON, bytes as they are)."""
    if isinstance(body, bytes):
        return client.post(url, content=body, headers={"Content-Type": "application/json"})
    return client.post(url, json=body)


def held(client: httpx.Client) -> dict[str, Any]:
    """What the simulated Sophio holds, from the admin API."""
    return vendor_orders(client, "sophio")


def faults(client: httpx.Client, **spec: Any) -> None:
    """Set Sophio's faults through the admin API."""
    set_faults(client, "sophio", **spec)


# The documented sample


def test_documented_sample_is_accepted_with_the_documented_response_shape(
    client: httpx.Client,
) -> None:
    answer = post(client, SAMPLE)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert list(body) == list(SAMPLE_RESPONSE)
    for key in ("billTo", "shipTo", "weight", "dimensions", "insuranceOptions",
                "internationalOptions", "advancedOptions"):
        assert set(body[key]) == set(SAMPLE_RESPONSE[key]), key
    assert set(body["items"][0]) == set(SAMPLE_RESPONSE["items"][0])
    assert set(body["items"][0]["weight"]) == {"value", "units", "WeightUnits"}

    # server fields
    assert isinstance(body["orderId"], int)
    assert [type(i["orderItemId"]) for i in body["items"]] == [int, int]
    assert body["items"][0]["orderItemId"] != body["items"][1]["orderItemId"]
    timestamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}$")
    assert timestamp.match(body["createDate"]) and body["modifyDate"] == body["createDate"]
    assert timestamp.match(body["items"][0]["createDate"])
    assert body["orderTotal"] == 71.63  # 2 x 7.46 + 47.46 + 0 tax + 9.25 shipping
    assert body["externallyFulfilled"] is False
    assert body["shipTo"]["addressVerified"] == "Address validation warning"  # postalCode "0752"
    assert body["billTo"]["addressVerified"] is None
    assert body["weight"] == {"value": 2.07, "units": "pounds", "WeightUnits": 3}
    assert body["items"][0]["weight"] == {"value": 0.37, "units": "pounds", "WeightUnits": 3}

    # the data sent is echoed back
    assert body["orderNumber"] == "296594"
    assert body["orderKey"] == "322759-106515"
    assert body["orderDate"] == "2018-07-17T12:08:06"
    assert body["orderStatus"] == "awaiting_shipment"
    assert body["customerId"] == 225846
    assert body["shipTo"]["postalCode"] == "0752"
    assert body["shipTo"]["street1"] == "185 Airport Exchange Blvd"
    assert body["items"][1]["sku"] == "SNA-3401222"
    assert body["items"][1]["options"] == [{"name": "size", "value": ""}]
    assert body["confirmation"] == "delivery"
    assert body["tagIds"] == [53974]
    assert body["dimensions"] == {"units": "inches", "length": 24, "width": 8.75, "height": 0.1}
    # request "AdvancedOptions", response "advancedOptions"; "" for an int becomes null
    assert "AdvancedOptions" not in body
    advanced = body["advancedOptions"]
    assert advanced["source"] == "400402"
    assert advanced["customField1"] == "153102358691-1749930787005"
    assert advanced["billToCountryCode"] == "US"
    assert advanced["warehouseId"] is None and advanced["storeId"] is None
    assert advanced["billToParty"] is None and advanced["mergedIds"] == []

    stored = held(client)
    assert stored["count"] == 1
    assert stored["orders"][0] == body


def test_documented_response_sample_order_is_echoed(client: httpx.Client) -> None:
    """The response sample, sent back as a request, echoes its own values."""
    body = copy.deepcopy(SAMPLE_RESPONSE)
    answer = post(client, body)
    assert answer.status_code == 200
    echoed = answer.json()
    assert isinstance(echoed["orderId"], int)
    assert echoed["orderNumber"] == SAMPLE_RESPONSE["orderNumber"]
    assert echoed["shipTo"]["addressVerified"] == "Address validated successfully"  # 49548-5606
    assert echoed["items"][0]["weight"] == {"value": 19.2, "units": "ounces", "WeightUnits": 1}
    assert echoed["orderTotal"] == 60.62
    assert echoed["advancedOptions"]["warehouseId"] == 163700
    assert echoed["advancedOptions"]["billToParty"] == "third_party"
    assert echoed["shipByDate"] == "2018-07-25T21:07:51.0000000"


def test_lower_case_advanced_options_and_json_net_conversions(client: httpx.Client) -> None:
    body = order()
    advanced = body.pop("AdvancedOptions")
    body["advancedOptions"] = {**advanced, "warehouseId": "163700", "storeId": 281550}
    body["customerId"] = "225846"
    body["ORDERNUMBER"] = body.pop("orderNumber")
    answer = post(client, body)
    assert answer.status_code == 200
    echoed = answer.json()
    assert echoed["advancedOptions"]["warehouseId"] == 163700
    assert echoed["advancedOptions"]["storeId"] == 281550
    assert echoed["customerId"] == 225846
    assert echoed["orderNumber"] == "296594"


def test_order_number_of_50_characters_is_accepted(client: httpx.Client) -> None:
    answer = post(client, order(orderNumber="N" * 50))
    assert answer.status_code == 200
    assert answer.json()["orderNumber"] == "N" * 50


def test_minimal_order_gets_defaults(client: httpx.Client) -> None:
    minimal = {
        "orderNumber": "M-1",
        "orderDate": "2018-07-17 12:08:06",
        "orderStatus": "awaiting_payment",
        "billTo": {"name": "Steve Smith"},
        "shipTo": {"name": "Steve Smith", "street1": "185 Exchange Blvd", "city": "West Orange",
                   "postalCode": "07052", "country": "US"},
    }
    answer = post(client, minimal)
    assert answer.status_code == 200
    body = answer.json()
    assert list(body) == list(SAMPLE_RESPONSE)
    assert body["items"] == [] and body["orderTotal"] == 0
    assert re.fullmatch(r"[0-9a-f]{32}", body["orderKey"])
    assert body["confirmation"] == "none" and body["gift"] is False
    assert body["insuranceOptions"] == {"provider": None, "insureShipment": False,
                                        "insuredValue": 0.0}
    assert body["shipTo"]["addressVerified"] == "Address validated successfully"
    assert body["weight"] is None and body["shipTo"]["state"] is None


def test_null_members_take_their_defaults(client: httpx.Client) -> None:
    body = order(gift=None, confirmation="", insuranceOptions=None, tagIds=None)
    body["items"][0].update(options=None, adjustment=None)
    answer = post(client, body)
    assert answer.status_code == 200, answer.text
    echoed = answer.json()
    assert (echoed["gift"], echoed["confirmation"], echoed["tagIds"]) == (False, "none", None)
    assert echoed["insuranceOptions"] == {
        "provider": None, "insureShipment": False, "insuredValue": 0.0
    }
    assert (echoed["items"][0]["options"], echoed["items"][0]["adjustment"]) == ([], False)


# Validation


INVALID_CASES = [
    ("orderNumber", DELETE, "apiOrder.orderNumber", "The orderNumber field is required."),
    ("orderNumber", "", "apiOrder.orderNumber", "The orderNumber field is required."),
    ("orderNumber", "N" * 51, "apiOrder.orderNumber",
     "The field orderNumber must be a string with a maximum length of 50."),
    ("orderNumber", {"n": 1}, "apiOrder.orderNumber", "when reading a string"),
    ("orderDate", DELETE, "apiOrder.orderDate", "The orderDate field is required."),
    ("orderDate", "yesterday", "apiOrder.orderDate", "Could not convert string 'yesterday' to "
     "DateTime. Path 'orderDate'."),
    ("shipDate", "2018-13-45", "apiOrder.shipDate", "to DateTime"),
    ("orderStatus", DELETE, "apiOrder.orderStatus", "The orderStatus field is required."),
    ("orderStatus", "pending", "apiOrder.orderStatus",
     "'pending' is not a valid orderStatus. Valid values: awaiting_payment, awaiting_shipment, "
     "on_hold, shipped, cancelled."),
    ("billTo", DELETE, "apiOrder.billTo", "The billTo field is required."),
    ("billTo", "Steve", "apiOrder.billTo", "to type 'Address'"),
    ("billTo.name", DELETE, "apiOrder.billTo.name", "The name field is required."),
    ("billTo.country", "U", "apiOrder.billTo.country", "two-letter ISO country code"),
    ("shipTo", DELETE, "apiOrder.shipTo", "The shipTo field is required."),
    ("shipTo.country", "USA", "apiOrder.shipTo.country", "two-letter ISO country code"),
    ("shipTo.country", DELETE, "apiOrder.shipTo.country", "The country field is required."),
    ("shipTo.street1", "", "apiOrder.shipTo.street1", "The street1 field is required."),
    ("shipTo.postalCode", DELETE, "apiOrder.shipTo.postalCode",
     "The postalCode field is required."),
    ("shipTo.residential", "maybe", "apiOrder.shipTo.residential", "to boolean"),
    ("customerId", "abc", "apiOrder.customerId",
     "Could not convert string 'abc' to integer. Path 'customerId'."),
    ("amountPaid", "lots", "apiOrder.amountPaid", "to decimal"),
    ("items", {"sku": "x"}, "apiOrder.items", "into an array"),
    ("items.0.sku", DELETE, "apiOrder.items[0].sku", "The sku field is required."),
    ("items.1.quantity", 0, "apiOrder.items[1].quantity",
     "The field quantity must be between 1 and 2147483647."),
    ("items.0.quantity", "two", "apiOrder.items[0].quantity", "to integer"),
    ("items.0.weight.units", "kilograms", "apiOrder.items[0].weight.units",
     "'kilograms' is not a valid units. Valid values: ounces, grams, pounds."),
    ("weight.units", DELETE, "apiOrder.weight.units", "The units field is required."),
    ("weight.units", "stones", "apiOrder.weight.units", "is not a valid units"),
    ("dimensions.units", "feet", "apiOrder.dimensions.units",
     "'feet' is not a valid units. Valid values: inches, centimeters."),
    ("confirmation", "carrier_pigeon", "apiOrder.confirmation",
     "'carrier_pigeon' is not a valid confirmation. Valid values: none, delivery, signature, "
     "adult_signature, direct_signature."),
    ("tagIds", ["x"], "apiOrder.tagIds[0]", "to integer"),
    ("AdvancedOptions.warehouseId", "main", "apiOrder.advancedOptions.warehouseId", "to integer"),
    ("AdvancedOptions.billToParty", "someone", "apiOrder.advancedOptions.billToParty",
     "is not a valid billToParty"),
    ("internationalOptions", {"contents": "junk"}, "apiOrder.internationalOptions.contents",
     "is not a valid contents"),
]


@pytest.mark.parametrize(
    ("field", "value", "key", "reason"),
    INVALID_CASES,
    ids=[f"{c[0]}={c[1]!r}"[:60] for c in INVALID_CASES],
)
def test_invalid_orders_are_refused(
    client: httpx.Client, field: str, value: Any, key: str, reason: str
) -> None:
    body = changed(order(), field, value)
    answer = post(client, body)
    assert answer.status_code == 400
    problem = answer.json()
    assert problem["Message"] == "The request is invalid."
    assert list(problem["ModelState"]) == [key]
    assert reason in problem["ModelState"][key][0]
    assert held(client)["count"] == 0


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "A non-empty request body is required."),
        (b'{"orderNumber": "1",', "body is not valid JSON"),
        (b"[1, 2]", "Cannot deserialize StartArray into type 'Order'."),
    ],
    ids=["empty", "broken-json", "array"],
)
def test_bodies_that_are_not_an_order_are_refused(
    client: httpx.Client, raw: bytes, reason: str
) -> None:
    answer = post(client, raw)
    assert answer.status_code == 400
    problem = answer.json()
    assert problem["Message"] == "The request is invalid."
    assert reason in problem["ModelState"]["apiOrder"][0]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "The action parameter is required; use action=CREATE."),
        ("action=DELETE&", "The action 'DELETE' is not supported; use action=CREATE."),
    ],
    ids=["missing", "unknown"],
)
def test_missing_or_unknown_action_is_refused(
    client: httpx.Client, query: str, message: str
) -> None:
    answer = post(client, SAMPLE, f"/sophio/createorder.wws?{query}authentication={AUTH}")
    assert answer.status_code == 400
    assert answer.json() == {"Message": message}
    assert held(client)["count"] == 0


def test_action_is_case_insensitive(client: httpx.Client) -> None:
    answer = post(client, SAMPLE, f"/sophio/createorder.wws?action=create&authentication={AUTH}")
    assert answer.status_code == 200


def test_other_methods_get_405(client: httpx.Client) -> None:
    answer = client.get(URL)
    assert answer.status_code == 405
    assert answer.json() == {
        "Message": "The requested resource does not support http method 'GET'."
    }
    assert answer.headers["Allow"] == "POST"


# Auth


@pytest.mark.parametrize(
    "auth",
    [DOC_AUTH, quote(DOC_AUTH, safe=""), DOC_AUTH.rstrip("=")],
    ids=["raw-padding", "url-encoded", "unpadded"],
)
def test_documented_authentication_string_is_accepted(
    local: Serve, auth: str
) -> None:
    c = local(SophioSimulator(api_key="sophio", api_secret="orders"))
    answer = post(c, SAMPLE, f"/sophio/createorder.wws?action=CREATE&authentication={auth}")
    assert answer.status_code == 200


def _b64(text: str) -> str:
    return quote(base64.b64encode(text.encode()).decode(), safe="")


@pytest.mark.parametrize(
    "query",
    [
        "action=CREATE",
        "action=CREATE&authentication=",
        f"action=CREATE&authentication={_b64('sophio:wrong')}",
        f"action=CREATE&authentication={_b64('someone:orders')}",
        f"action=CREATE&authentication={_b64('sophio')}",
        "action=CREATE&authentication=sophio:orders",
        "action=CREATE&authentication=!!not-base64!!",
    ],
    ids=["missing", "empty", "wrong-secret", "wrong-key", "no-secret", "not-encoded", "garbage"],
)
def test_missing_or_wrong_credentials_get_401(client: httpx.Client, query: str) -> None:
    answer = post(client, SAMPLE, f"/sophio/createorder.wws?{query}")
    assert answer.status_code == 401
    assert answer.json() == DENIED
    assert "X-Rate-Limit-Limit" not in answer.headers
    assert held(client)["count"] == 0


def test_credentials_are_constructor_keywords(local: Serve) -> None:
    c = local(SophioSimulator(api_key="k+/", api_secret="s3cr3t?"))
    mine = f"/sophio/createorder.wws?action=CREATE&authentication={_b64('k+/:s3cr3t?')}"
    assert post(c, SAMPLE, mine).status_code == 200
    assert post(c, SAMPLE, URL).status_code == 401


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_DISPATCH_SANDBOX_SOPHIO_API_KEY", "envkey")
    monkeypatch.setenv("ORDER_DISPATCH_SANDBOX_SOPHIO_UPSERT_BY_ORDER_KEY", "false")
    monkeypatch.setenv("ORDER_DISPATCH_SANDBOX_SOPHIO_RATE_LIMIT_PER_MINUTE", "1000")
    sim = SophioSimulator.from_env()
    assert (sim.api_key, sim.api_secret) == ("envkey", DEFAULT_API_SECRET)
    assert sim.upsert_by_order_key is False
    assert sim.rate_limit_per_minute == 1000


# State: upsert by orderKey (switchable), lock, admin API


def test_orders_are_counted_by_the_admin_api(client: httpx.Client) -> None:
    first = post(client, order(orderKey="k-1")).json()
    second = post(client, order(orderKey="k-2", orderNumber="296595")).json()
    stored = held(client)
    assert stored["count"] == 2
    assert [o["orderId"] for o in stored["orders"]] == [first["orderId"], second["orderId"]]
    assert second["orderId"] > first["orderId"]


def test_same_order_key_updates_the_order_by_default(client: httpx.Client) -> None:
    first = post(client, order()).json()
    changed = order(orderStatus="on_hold", customerNotes="leave at the door")
    changed["shipTo"]["name"] = "Stephen Smith"
    changed["items"] = changed["items"][:1]
    time.sleep(0.002)
    second = post(client, changed)
    assert second.status_code == 200
    updated = second.json()
    assert updated["orderId"] == first["orderId"]
    assert updated["createDate"] == first["createDate"]
    assert updated["modifyDate"] > first["modifyDate"]
    assert updated["shipTo"]["name"] == "Stephen Smith"
    assert updated["orderStatus"] == "on_hold"
    # no partial updates: the whole order is replaced, the item keeps its orderItemId
    assert [i["orderItemId"] for i in updated["items"]] == [first["items"][0]["orderItemId"]]
    assert updated["orderTotal"] == round(2 * 7.46 + 9.25, 2)
    stored = held(client)
    assert stored["count"] == 1
    assert stored["orders"][0]["customerNotes"] == "leave at the door"


def test_orders_without_order_key_are_always_new(client: httpx.Client) -> None:
    body = order()
    del body["orderKey"]
    first = post(client, body).json()
    second = post(client, body).json()
    assert first["orderId"] != second["orderId"]
    assert first["orderKey"] != second["orderKey"]
    assert held(client)["count"] == 2


@pytest.mark.parametrize("status", ["shipped", "cancelled"])
def test_shipped_or_cancelled_orders_are_locked(client: httpx.Client, status: str) -> None:
    first = post(client, order()).json()
    admin = client.post(f"/_sandbox/orders/sophio/{first['orderId']}/status",
                        json={"status": status})
    assert admin.status_code == 200 and admin.json()["orderStatus"] == status
    again = post(client, order(customerNotes="changed"))
    assert again.status_code == 400
    assert again.json() == {
        "Message": f"Order {first['orderId']} (orderKey '322759-106515') is {status}; shipped "
        "and cancelled orders are locked from modification through the API."
    }
    stored = held(client)
    assert stored["count"] == 1
    assert stored["orders"][0]["orderStatus"] == status
    assert stored["orders"][0]["customerNotes"] == ""


def test_cancel_by_resubmitting_with_cancelled_status(client: httpx.Client) -> None:
    first = post(client, order()).json()
    cancelled = post(client, order(orderStatus="cancelled")).json()
    assert cancelled["orderId"] == first["orderId"]
    assert cancelled["orderStatus"] == "cancelled"
    assert post(client, order()).status_code == 400


def test_on_hold_orders_can_still_be_updated(client: httpx.Client) -> None:
    first = post(client, order()).json()
    client.post(f"/_sandbox/orders/sophio/{first['orderId']}/status", json={"status": "on_hold"})
    again = post(client, order(orderStatus="awaiting_shipment"))
    assert again.status_code == 200
    assert again.json()["orderId"] == first["orderId"]


def test_admin_refuses_unknown_status(client: httpx.Client) -> None:
    first = post(client, order()).json()
    answer = client.post(f"/_sandbox/orders/sophio/{first['orderId']}/status",
                         json={"status": "lost"})
    assert "unknown orderStatus 'lost'" in answer.json()["error"]
    assert held(client)["orders"][0]["orderStatus"] == "awaiting_shipment"


def test_without_upsert_every_post_creates_an_order(local: Serve) -> None:
    c = local(SophioSimulator(upsert_by_order_key=False))
    first = post(c, order()).json()
    second = post(c, order()).json()
    assert first["orderId"] != second["orderId"]
    assert first["orderKey"] == second["orderKey"] == "322759-106515"
    c.post(f"/_sandbox/orders/sophio/{second['orderId']}/status", json={"status": "shipped"})
    third = post(c, order())
    assert third.status_code == 200
    assert held(c)["count"] == 3


# Rate limit (switchable)


def test_rate_limit_headers_and_429(local: Serve) -> None:
    c = local(SophioSimulator(rate_limit_per_minute=2))
    first = post(c, order(orderKey="a"))
    assert first.status_code == 200
    assert first.headers["X-Rate-Limit-Limit"] == "2"
    assert first.headers["X-Rate-Limit-Remaining"] == "1"
    assert 1 <= int(first.headers["X-Rate-Limit-Reset"]) <= 60
    invalid = post(c, order(orderStatus="nope"))
    assert invalid.status_code == 400 and invalid.headers["X-Rate-Limit-Remaining"] == "0"
    limited = post(c, order(orderKey="b"))
    assert limited.status_code == 429
    assert limited.json() == {"message": "Too Many Requests"}
    assert limited.headers["X-Rate-Limit-Remaining"] == "0"
    assert limited.headers["Retry-After"] == limited.headers["X-Rate-Limit-Reset"]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert held(c)["count"] == 1
    c.post("/_sandbox/reset").raise_for_status()
    assert post(c, order(orderKey="b")).status_code == 200


def test_default_rate_limit_is_40_a_minute(local: Serve) -> None:
    c = local(SophioSimulator())
    answer = post(c, SAMPLE)
    assert answer.headers["X-Rate-Limit-Limit"] == "40"
    assert answer.headers["X-Rate-Limit-Remaining"] == "39"


def test_rate_limit_zero_is_unlimited(local: Serve) -> None:
    c = local(SophioSimulator(rate_limit_per_minute=0))
    answers = [post(c, order(orderKey=str(n))) for n in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert all("X-Rate-Limit-Limit" not in a.headers for a in answers)


# Faults, as they look for Sophio


def test_fail_next_503_with_retry_after(client: httpx.Client) -> None:
    faults(client, fail_next=1, status=503, retry_after=7)
    failed = post(client, SAMPLE)
    assert failed.status_code == 503
    assert failed.json() == {"Message": "The service is unavailable."}
    assert failed.headers["Retry-After"] == "7"
    assert held(client)["count"] == 0
    assert post(client, SAMPLE).status_code == 200


def test_fail_next_429_looks_like_shipstation(client: httpx.Client) -> None:
    faults(client, fail_next=1, status=429, retry_after=5)
    failed = post(client, SAMPLE)
    assert failed.status_code == 429
    assert failed.json() == {"message": "Too Many Requests"}
    assert failed.headers["Retry-After"] == "5"
    assert failed.headers["X-Rate-Limit-Remaining"] == "0"
    assert failed.headers["X-Rate-Limit-Reset"] == "5"


def test_fail_next_500_and_error_rate(client: httpx.Client) -> None:
    faults(client, fail_next=1, status=500)
    failed = post(client, SAMPLE)
    assert (failed.status_code, failed.json()) == (500, {"Message": "An error has occurred."})
    faults(client, error_rate=1.0, error_status=502)
    failed = post(client, SAMPLE)
    assert (failed.status_code, failed.json()) == (502, {"Message": "Bad Gateway"})
    assert held(client)["count"] == 0


def test_rate_limit_rate_and_outage(client: httpx.Client) -> None:
    faults(client, rate_limit_rate=1.0)
    limited = post(client, SAMPLE)
    assert limited.status_code == 429 and limited.json() == {"message": "Too Many Requests"}
    client.delete("/_sandbox/faults/sophio").raise_for_status()
    faults(client, outage_s=5)
    down = post(client, SAMPLE)
    assert down.status_code == 503
    assert down.json() == {"Message": "The service is unavailable."}
    assert 1 <= int(down.headers["Retry-After"]) <= 5


def test_malformed_answer_after_storing(client: httpx.Client) -> None:
    faults(client, malformed_next=1)
    answer = post(client, SAMPLE)
    assert answer.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.content)
    assert held(client)["count"] == 1


def test_reset_stores_nothing(client: httpx.Client) -> None:
    faults(client, reset_next=1)
    with pytest.raises(httpx.TransportError):
        post(client, SAMPLE)
    assert held(client)["count"] == 0
    assert post(client, SAMPLE).status_code == 200


def test_hang_then_drop(sandbox: BackgroundSandbox, client: httpx.Client) -> None:
    faults(client, hang_next=1, hang_s=0.3)
    with (
        httpx.Client(base_url=sandbox.url, timeout=0.1) as impatient,
        pytest.raises(httpx.ReadTimeout),
    ):
        post(impatient, SAMPLE)
    assert held(client)["count"] == 0


def test_drop_after_commit_then_retry_with_same_order_key(client: httpx.Client) -> None:
    faults(client, drop_after_commit_next=1)
    with pytest.raises(httpx.TransportError):
        post(client, SAMPLE)
    stored = held(client)
    assert stored["count"] == 1
    retried = post(client, SAMPLE)
    assert retried.status_code == 200
    assert retried.json()["orderId"] == stored["orders"][0]["orderId"]
    assert held(client)["count"] == 1


def test_latency(client: httpx.Client) -> None:
    faults(client, latency={"distribution": "fixed", "ms": 80})
    started = time.monotonic()
    assert post(client, SAMPLE).status_code == 200
    assert time.monotonic() - started >= 0.08


def test_expire_tokens_does_not_touch_static_keys(client: httpx.Client) -> None:
    faults(client, expire_tokens=True)
    assert post(client, SAMPLE).status_code == 200
