"""The SourceOrders simulator against docs/sourceorders.txt and NOTES.md §2."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from order_dispatch_sandbox.runner import BackgroundSandbox
from order_dispatch_sandbox.sourceorders import DEFAULT_API_KEY
from tests.sandbox.conftest import DELETE, changed, set_faults, vendor_orders

KEY = {"X-API-KEY": DEFAULT_API_KEY}
ORDERS = "/sourceorders/v1/orders"

# The document's own create request (its curl quoting made valid).
SAMPLE: dict[str, Any] = {
    "items": [{"attributes": [{"name": "link", "value": "https://www.example.com"}],
               "quantity": 1, "skuCode": "sop_0123456789"}],
    "shippingAddress": {
        "city": "Hastings", "company": "Dunder Mifflin", "country": "US",
        "email": "michael.scott@test.com", "firstName": "Michael", "lastName": "Scott",
        "phone": "866-207-0447", "phoneExt": "", "postalCode": "55033",
        "stateOrProvince": "MN", "street1": "741 Spiral Blvd", "street2": "",
    },
}
MODEL_KEYS = {"createdDate", "items", "lastUpdatedDate", "merchantId", "orderId",
              "promisedArrivalDate", "shippingAddress", "status"}


def create(client: httpx.Client, body: Any = None, **kw: Any) -> httpx.Response:
    return client.post(ORDERS, json=SAMPLE if body is None else body, headers=KEY, **kw)


def held(client: httpx.Client) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = vendor_orders(client, "sourceorders")["orders"]
    return orders


def faults(client: httpx.Client, **spec: Any) -> httpx.Response:
    return set_faults(client, "sourceorders", **spec)


# Documented behaviour


def test_the_documented_sample_is_created_with_the_documented_model(
    client: httpx.Client,
) -> None:
    answer = create(client)

    body = answer.json()
    assert answer.status_code == 200
    assert set(body) == MODEL_KEYS
    assert body["orderId"].startswith("soo_") and body["status"] == "RECEIVED"
    assert body["merchantId"].startswith("som_")
    assert body["items"][0]["itemId"].startswith("soi_")
    assert body["items"][0]["skuCode"] == "sop_0123456789"
    assert body["shippingAddress"] == SAMPLE["shippingAddress"]
    assert body["createdDate"].endswith("Z") and body["promisedArrivalDate"].endswith("Z")


def test_get_returns_the_stored_order(client: httpx.Client) -> None:
    created = create(client).json()

    answer = client.get(f"{ORDERS}/{created['orderId']}", headers=KEY)

    assert answer.status_code == 200 and answer.json() == created


def test_put_merges_the_address_while_received(client: httpx.Client) -> None:
    created = create(client).json()
    change = {"company": "Michael Scott Paper Company", "phone": "800-555-1234"}

    answer = client.put(f"{ORDERS}/{created['orderId']}", json={"shippingAddress": change},
                        headers=KEY)

    address = answer.json()["shippingAddress"]
    assert answer.status_code == 200 and answer.json()["status"] == "RECEIVED"
    assert address["company"] == "Michael Scott Paper Company"
    assert address["phone"] == "800-555-1234"
    assert address["street1"] == "741 Spiral Blvd"  # kept


def test_put_is_refused_once_the_order_left_received(client: httpx.Client) -> None:
    order_id = create(client).json()["orderId"]
    client.post(f"/_sandbox/orders/sourceorders/{order_id}/status",
                json={"status": "IN PRODUCTION"}).raise_for_status()

    answer = client.put(f"{ORDERS}/{order_id}", json={"shippingAddress": {"phone": "1"}},
                        headers=KEY)

    assert answer.status_code == 409
    assert "only allowed on orders with status RECEIVED" in answer.json()["message"]
    assert client.get(f"{ORDERS}/{order_id}", headers=KEY).json()["status"] == "IN PRODUCTION"


def test_unknown_orders_are_404(client: httpx.Client) -> None:
    for answer in (client.get(f"{ORDERS}/soo_0000000000", headers=KEY),
                   client.put(f"{ORDERS}/soo_0000000000", json={"shippingAddress": {}},
                              headers=KEY)):
        assert answer.status_code == 404
        assert answer.json() == {"error": "Not Found",
                                 "message": "Order soo_0000000000 not found"}


@pytest.mark.parametrize(("body", "message"), [
    (changed(SAMPLE, "items", DELETE), "items must be a non-empty array"),
    (changed(SAMPLE, "items", []), "items must be a non-empty array"),
    (changed(SAMPLE, "shippingAddress", DELETE), "shippingAddress must be an object"),
    (changed(SAMPLE, "items.0.skuCode", "ABC-1"),
     "items[0].skuCode 'ABC-1' is not a known product"),
    (changed(SAMPLE, "items.0.skuCode", DELETE), "items[0].skuCode is required"),
    (changed(SAMPLE, "items.0.quantity", 0), "items[0].quantity must be a positive integer"),
    (changed(SAMPLE, "items.0.quantity", "1"), "items[0].quantity must be a positive integer"),
    (changed(SAMPLE, "items.0.attributes", [{"name": "link"}]), "items[0].attributes must be"),
    (changed(SAMPLE, "shippingAddress.postalCode", DELETE),
     "shippingAddress.postalCode is required"),
    (changed(SAMPLE, "shippingAddress.street1", DELETE), "shippingAddress.street1 is required"),
    (changed(SAMPLE, "shippingAddress.stateOrProvince", ""),
     "shippingAddress.stateOrProvince is required for US and CA"),
    (changed(SAMPLE, "shippingAddress.country", "USA"),
     "shippingAddress.country must be a 2-letter"),
    (changed(SAMPLE, "shippingAddress.zip", "1"), "shippingAddress.zip is not a known field"),
    ([], "body must be a JSON object"),
])
def test_invalid_orders_get_400_naming_the_field(
    client: httpx.Client, body: Any, message: str
) -> None:
    answer = create(client, body)

    assert answer.status_code == 400
    assert answer.json()["error"] == "Bad Request"
    assert answer.json()["message"].startswith(message)
    assert held(client) == []


def test_a_body_that_is_not_json_is_400(client: httpx.Client) -> None:
    answer = client.post(ORDERS, content=b"{items: 1", headers=KEY)

    assert answer.status_code == 400 and "not valid JSON" in answer.json()["message"]


@pytest.mark.parametrize("headers", [{}, {"X-API-KEY": "wrong"}, {"x-api-key": "WRONG"}])
def test_missing_or_wrong_key_is_401(client: httpx.Client, headers: dict[str, str]) -> None:
    for answer in (client.post(ORDERS, json=SAMPLE, headers=headers),
                   client.get(f"{ORDERS}/soo_1", headers=headers)):
        assert answer.status_code == 401
        assert answer.json() == {"error": "Unauthorized", "message": "Missing or invalid API key"}
    assert held(client) == []


def test_the_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from order_dispatch_sandbox.sourceorders import SourceOrdersSimulator

    monkeypatch.setenv("ORDER_DISPATCH_SANDBOX_SOURCEORDERS_API_KEY", "k-env")

    assert SourceOrdersSimulator.from_env().api_key == "k-env"


# Faults, as a plain HTTP client sees them


def test_fail_next_answers_in_the_vendor_shape_with_retry_after(client: httpx.Client) -> None:
    faults(client, fail_next=2, status=503, retry_after=3)

    answers = [create(client) for _ in range(3)]

    assert [a.status_code for a in answers] == [503, 503, 200]
    assert answers[0].headers["Retry-After"] == "3"
    assert answers[0].json()["error"] == "Service Unavailable"
    assert len(held(client)) == 1


def test_fail_next_429_and_a_custom_body(client: httpx.Client) -> None:
    faults(client, fail_next=1, status=429)
    limited = create(client)
    faults(client, fail_next=1, status=422, body={"error": "x", "message": "custom"})
    custom = create(client)

    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    assert custom.status_code == 422 and custom.json()["message"] == "custom"


def test_rates_are_repeatable_with_a_seed(client: httpx.Client) -> None:
    def run() -> list[int]:
        client.delete("/_sandbox/faults/sourceorders")
        faults(client, error_rate=0.3, error_status=502, rate_limit_rate=0.2, seed=7)
        return [create(client).status_code for _ in range(30)]

    first, second = run(), run()

    assert first == second
    assert {502, 429, 200} == set(first)


def test_reset_next_drops_the_connection_and_stores_nothing(client: httpx.Client) -> None:
    faults(client, reset_next=1)

    with pytest.raises(httpx.TransportError):
        create(client)
    assert held(client) == []


def test_drop_after_commit_stores_the_order_but_no_answer_comes(client: httpx.Client) -> None:
    faults(client, drop_after_commit_next=1)

    with pytest.raises(httpx.TransportError):
        create(client)
    assert len(held(client)) == 1


def test_hang_outlasts_the_client_timeout(client: httpx.Client) -> None:
    faults(client, hang_next=1, hang_s=1.0)

    with pytest.raises(httpx.ReadTimeout):
        create(client, timeout=0.2)
    assert held(client) == []


def test_malformed_answer_is_200_with_a_cut_off_body(client: httpx.Client) -> None:
    faults(client, malformed_next=1)

    answer = create(client)

    assert answer.status_code == 200
    with pytest.raises(ValueError):
        answer.json()
    assert len(held(client)) == 1  # the vendor did take it


def test_latency_fixed_and_outage(client: httpx.Client) -> None:
    faults(client, latency={"ms": 150})
    started = time.monotonic()
    create(client)
    slow = time.monotonic() - started
    faults(client, latency={"ms": 0}, outage_s=30)
    down = create(client)

    assert slow >= 0.15
    assert down.status_code == 503 and int(down.headers["Retry-After"]) > 0
    assert client.get("/_sandbox/faults").json()["sourceorders"]["outage_remaining_s"] > 0


# The admin API


def test_admin_describes_clears_and_validates_faults(client: httpx.Client) -> None:
    faults(client, fail_next=3, status=500)
    described = client.get("/_sandbox/faults").json()
    cleared = client.delete("/_sandbox/faults/sourceorders").json()
    bad = client.post("/_sandbox/faults/sourceorders", json={"fail_next": -1, "colour": 1})
    unknown = client.post("/_sandbox/faults/nowhere", json={})

    assert described["sourceorders"]["pending"] == {"fail": 3}
    assert set(described) == {"sourceorders", "sophio", "shopatron", "supplystream",
                              "sellercloud"}
    assert cleared["sourceorders"]["pending"] == {}
    assert bad.status_code == 400
    assert {d["loc"][0] for d in bad.json()["details"]} == {"fail_next", "colour"}
    assert unknown.status_code == 404


def test_admin_counts_and_resets(client: httpx.Client) -> None:
    create(client)
    create(client)
    listed = client.get("/_sandbox/orders", params={"vendor": "sourceorders"}).json()
    client.post("/_sandbox/reset", params={"vendor": "sourceorders"}).raise_for_status()

    assert (listed["vendor"], listed["count"], listed["requests"]) == ("sourceorders", 2, 2)
    assert held(client) == []
    assert client.get("/_sandbox/health").json()["ok"] is True


def test_each_vendor_is_served_under_its_prefix(sandbox: BackgroundSandbox) -> None:
    assert sandbox.vendor_url("sellercloud") == f"{sandbox.url}/sellercloud"
    with httpx.Client(base_url=sandbox.url) as c:
        vendors = c.get("/_sandbox/health").json()["vendors"]
    assert vendors == ["sellercloud", "shopatron", "sophio", "sourceorders", "supplystream"]
