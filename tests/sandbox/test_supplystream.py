"""SupplyStream / SEKO iHub simulator against docs/supplystream.txt and NOTES.md §4.

``fixtures/supplystream/websubmit.{json,xml}`` are the document's two sample requests made valid:
non-breaking spaces (which make the JSON sample invalid) turned into spaces, CurrencyCode "GBP"
(the sample's "string" exceeds 3 characters), DCCode "DC1" (the sandbox's demo DC), the order GUID
a real UUID, and in JSON LineNumber and Quantity 1 instead of the placeholder 0.
"""

from __future__ import annotations

import copy
import json
import re
import time
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import httpx
import pytest
from defusedxml.ElementTree import fromstring

from order_dispatch_sandbox.runner import BackgroundSandbox
from order_dispatch_sandbox.supplystream import DEFAULT_API_KEY, SupplyStreamSimulator
from tests.sandbox.conftest import DELETE, Serve, changed, set_faults, vendor_orders

FIXTURES = Path(__file__).parent / "fixtures" / "supplystream"
BASE = "/supplystream/api/salesorders"
SUBMIT = f"{BASE}/v4/websubmit"
KEY = {"api_key": DEFAULT_API_KEY}
DENIED = {"Message": "Authorization has been denied for this request."}
OK = {"Success": True, "Code": 0, "Message": ""}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SAMPLE_JSON_GUID = "c75d6d3b-fa49-496f-9031-ea51b4d05af2"
SAMPLE_XML_GUID = "6f0c7a52-1d3e-4b8a-9c41-2f5e8d7a0b13"
XML = {"Content-Type": "application/xml"}


def order(number: str = "SO-1001", **web: Any) -> dict[str, Any]:
    """A small valid v4 web sales order."""
    return {
        "WebSalesOrder": {"SalesOrderNumber": number, "CurrencyCode": "GBP", **web},
        "SalesOrderHeader": {"DCCode": "DC1"},
        "DeliveryDetails": {
            "FirstName": "Stephen", "LastName": "Jones", "Line1": "23 Victoria Street",
            "City": "Windsor", "PostcodeZip": "SL4 1HE", "CountryCode": "GB",
        },
        "List": {"SalesOrderLineItem": [{"LineNumber": 1, "ProductCode": "100083", "Quantity": 2}]},
    }


def submit(client: httpx.Client, body: Any, **params: str) -> httpx.Response:
    return client.post(SUBMIT, params={**KEY, **params}, json=body)


def fault(client: httpx.Client, **spec: Any) -> None:
    set_faults(client, "supplystream", **spec)


def held(client: httpx.Client) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = vendor_orders(client, "supplystream")["orders"]
    return orders


def xml_of(response: httpx.Response) -> Element:
    assert response.headers["content-type"].startswith("application/xml")
    root: Element = fromstring(response.content)
    return root


def failure(message: str) -> dict[str, Any]:
    """The vendor doc's websubmit failure shape (unwrapped, GUID null)."""
    return {"CallStatus": {"Success": False, "Code": 100, "Message": message}, "GUID": None}


def wrapped_failure(message: str) -> dict[str, Any]:
    """The response-codes page's failure shape (wrapped in Response, no GUID)."""
    return {"Response": {"CallStatus": {"Success": False, "Code": 100, "Message": message}}}


# The documented samples, made valid.


def test_json_sample_is_accepted_with_the_documented_answer(client: httpx.Client) -> None:
    sample = json.loads((FIXTURES / "websubmit.json").read_text())
    response = submit(client, sample)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"CallStatus": OK, "GUID": SAMPLE_JSON_GUID}
    [stored] = held(client)
    assert stored["GUID"] == SAMPLE_JSON_GUID
    assert stored["SalesOrderNumber"] == "string"
    assert stored["DCCode"] == "DC1"
    assert stored["Status"] == "To Be Picked"
    assert stored["Request"]["List"]["SalesOrderLineItem"][0]["Quantity"] == 1


def test_xml_sample_is_accepted_with_the_documented_answer(client: httpx.Client) -> None:
    response = client.post(
        SUBMIT, params=KEY, content=(FIXTURES / "websubmit.xml").read_bytes(), headers=XML
    )
    assert response.status_code == 200
    root = xml_of(response)
    assert root.tag == "Response"
    assert root.findtext("CallStatus/Success") == "true"
    assert root.findtext("CallStatus/Code") == "0"
    assert root.findtext("CallStatus/Message") == ""
    assert root.findtext("GUID") == SAMPLE_XML_GUID
    [stored] = held(client)
    assert stored["Format"] == "xml"
    assert stored["Request"]["List"]["SalesOrderLineItem"][0]["LineNumber"] == "1"
    assert stored["Request"]["SalesOrderHeader"] == {"DCCode": "DC1"}


def test_hub_generates_a_guid_when_none_is_sent(client: httpx.Client) -> None:
    response = submit(client, order())
    guid = response.json()["GUID"]
    assert UUID.match(guid)
    assert [o["GUID"] for o in held(client)] == [guid]


def test_token_is_interchangeable_with_api_key(client: httpx.Client) -> None:
    response = client.post(SUBMIT, params={"token": DEFAULT_API_KEY}, json=order())
    assert response.json()["CallStatus"] == OK


def test_accept_overrides_the_request_format(client: httpx.Client) -> None:
    response = client.post(
        SUBMIT, params=KEY, json=order(), headers={"Accept": "application/xml"}
    )
    assert xml_of(response).findtext("CallStatus/Success") == "true"


# Documented failures: HTTP 200, Success false, Code 100.


def test_unknown_dc_is_the_documented_failure(client: httpx.Client) -> None:
    body = order()
    body["SalesOrderHeader"]["DCCode"] = "string"
    response = submit(client, body)
    assert response.status_code == 200
    assert response.json() == failure("Error. Invalid Mapping - DC")
    assert held(client) == []


def test_missing_dc_is_an_invalid_mapping(client: httpx.Client) -> None:
    body = order()
    del body["SalesOrderHeader"]
    assert submit(client, body).json() == failure("Error. Invalid Mapping - DC")


def test_unknown_dc_in_xml_is_the_documented_xml_failure(client: httpx.Client) -> None:
    text = (FIXTURES / "websubmit.xml").read_text().replace("<DCCode>DC1<", "<DCCode>NOPE<")
    response = client.post(SUBMIT, params=KEY, content=text, headers=XML)
    assert response.status_code == 200
    root = xml_of(response)
    assert root.findtext("CallStatus/Success") == "false"
    assert root.findtext("CallStatus/Code") == "100"
    assert root.findtext("CallStatus/Message") == "Error. Invalid Mapping - DC"
    guid = root.find("GUID")
    assert guid is not None and guid.text is None
    assert held(client) == []


def test_body_not_json_is_the_documented_wrapped_failure(client: httpx.Client) -> None:
    response = client.post(
        SUBMIT, params=KEY, content=b"hello", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200
    assert response.json() == wrapped_failure(
        "Cannot process json receipt A JSONObject text must begin with '{' at character 1"
    )


def test_broken_json_is_a_wrapped_failure(client: httpx.Client) -> None:
    response = client.post(
        SUBMIT,
        params=KEY,
        content=b'{"WebSalesOrder": {',
        headers={"Content-Type": "application/json"},
    )
    message = response.json()["Response"]["CallStatus"]["Message"]
    assert message.startswith("Cannot process json receipt ")
    assert message.endswith("at character 20")


def test_broken_xml_is_an_xml_failure(client: httpx.Client) -> None:
    response = client.post(SUBMIT, params=KEY, content=b"<Request><WebSalesOrder>", headers=XML)
    root = xml_of(response)
    assert root.findtext("CallStatus/Code") == "100"
    assert (root.findtext("CallStatus/Message") or "").startswith("Cannot process xml receipt ")


def test_xml_entities_are_refused_not_expanded(client: httpx.Client) -> None:
    bomb = b'<!DOCTYPE r [<!ENTITY a "aaaa">]><Request>&a;</Request>'
    root = xml_of(client.post(SUBMIT, params=KEY, content=bomb, headers=XML))
    assert root.findtext("CallStatus/Success") == "false"
    assert held(client) == []


def test_other_content_types_are_unsupported(client: httpx.Client) -> None:
    response = client.post(
        SUBMIT, params=KEY, content=b"x", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert response.json() == {
        "Message": "The request entity's media type 'text/plain' is not supported for this "
        "resource."
    }


_LINE0 = "List.SalesOrderLineItem.0"
INVALID = [
    ("WebSalesOrder.SalesOrderNumber", DELETE, "WebSalesOrder.SalesOrderNumber is required"),
    ("WebSalesOrder.SalesOrderNumber", "  ", "WebSalesOrder.SalesOrderNumber is required"),
    ("WebSalesOrder.SalesOrderNumber", "N" * 51,
     "WebSalesOrder.SalesOrderNumber is longer than 50 characters"),
    ("WebSalesOrder.Notes", "n" * 4001, "WebSalesOrder.Notes is longer than 4000 characters"),
    ("WebSalesOrder.CurrencyCode", "GBPX",
     "WebSalesOrder.CurrencyCode is longer than 3 characters"),
    ("WebSalesOrder.SpecialInstructions", "s" * 401,
     "WebSalesOrder.SpecialInstructions is longer than 400 characters"),
    ("WebSalesOrder.GUID", "g" * 101, "WebSalesOrder.GUID is longer than 100 characters"),
    ("WebSalesOrder.GiftWrap", "yes", "WebSalesOrder.GiftWrap must be true or false"),
    ("WebSalesOrder.ShippingTotal", "1.10", "WebSalesOrder.ShippingTotal must be a number"),
    ("WebSalesOrder.SalesOrderDate", "yesterday",
     "WebSalesOrder.SalesOrderDate must be an ISO 8601 date"),
    ("WebSalesOrder.CourierName", {"name": "DHL"}, "WebSalesOrder.CourierName must be a string"),
    ("SalesOrderHeader.DCCode", "D" * 101, "SalesOrderHeader.DCCode is longer than 100 characters"),
    ("DeliveryDetails.PostcodeZip", "P" * 21,
     "DeliveryDetails.PostcodeZip is longer than 20 characters"),
    ("DeliveryDetails.City", "C" * 51, "DeliveryDetails.City is longer than 50 characters"),
    ("DeliveryDetails", "Windsor", "DeliveryDetails must be an object"),
    ("BillingDetails", {"EmailAddress": "e" * 151},
     "BillingDetails.EmailAddress is longer than 150 characters"),
    ("List.SalesOrderLineItem", [], "List.SalesOrderLineItem must contain at least one line item"),
    ("List", DELETE, "List.SalesOrderLineItem must contain at least one line item"),
    (f"{_LINE0}.Quantity", DELETE, "List.SalesOrderLineItem[0].Quantity is required"),
    (f"{_LINE0}.LineNumber", DELETE, "List.SalesOrderLineItem[0].LineNumber is required"),
    (f"{_LINE0}.LineNumber", "1", "List.SalesOrderLineItem[0].LineNumber must be an integer"),
    (f"{_LINE0}.Quantity", 1.5, "List.SalesOrderLineItem[0].Quantity must be an integer"),
    (f"{_LINE0}.Quantity", True, "List.SalesOrderLineItem[0].Quantity must be an integer"),
    (f"{_LINE0}.Quantity", 0, "List.SalesOrderLineItem[0].Quantity must be at least 1"),
    (f"{_LINE0}.ProductCode", "p" * 101,
     "List.SalesOrderLineItem[0].ProductCode is longer than 100 characters"),
    (f"{_LINE0}.UnitPrice", "9.99", "List.SalesOrderLineItem[0].UnitPrice must be a number"),
    ("TaxItems", {"Type": "VAT"}, "TaxItems must be an array"),
]


@pytest.mark.parametrize(
    ("path", "value", "problem"), INVALID, ids=[f"{p}={str(v)[:8]}" for p, v, _ in INVALID]
)
def test_invalid_orders_are_refused(
    client: httpx.Client, path: str, value: Any, problem: str
) -> None:
    body = changed(order(), path, value)
    response = submit(client, body)
    assert response.status_code == 200
    assert response.json() == failure(f"Error. {problem}.")
    assert held(client) == []


def test_v1_style_request_wrapper_is_refused(client: httpx.Client) -> None:
    response = submit(client, {"Request": order()})
    assert response.json() == failure("Error. WebSalesOrder.SalesOrderNumber is required.")


def test_strings_may_be_json_numbers(client: httpx.Client) -> None:
    response = submit(client, order(number=123456))  # type: ignore[arg-type]
    assert response.json()["CallStatus"] == OK
    assert held(client)[0]["SalesOrderNumber"] == "123456"


def test_xml_values_are_checked_as_text(client: httpx.Client) -> None:
    text = (FIXTURES / "websubmit.xml").read_text()
    text = text.replace("<Quantity>1</Quantity>", "<Quantity>two</Quantity>")
    root = xml_of(client.post(SUBMIT, params=KEY, content=text, headers=XML))
    assert root.findtext("CallStatus/Message") == (
        "Error. List.SalesOrderLineItem[0].Quantity must be an integer."
    )
    assert held(client) == []


# Auth: api_key/token query parameter; the vendor has no expiring tokens.


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", SUBMIT),
        ("GET", f"{BASE}/v4/{SAMPLE_JSON_GUID}/status"),
        ("GET", f"{BASE}/v1/{SAMPLE_JSON_GUID}/status.json"),
        ("GET", f"{BASE}/v1/{SAMPLE_JSON_GUID}/tracking.json"),
        ("POST", f"{BASE}/v3/SO-1001/cancel"),
        ("POST", f"{BASE}/v1/{SAMPLE_JSON_GUID}/cancel/reasoncode/001.json"),
    ],
)
def test_bad_credentials_get_the_documented_401(
    client: httpx.Client, method: str, path: str
) -> None:
    for params in ({}, {"api_key": "wrong"}, {"token": "wrong"}, {"api_key": ""}):
        response = client.request(method, path, params=params, json=order())
        assert response.status_code == 401, params
        assert response.json() == DENIED
    assert held(client) == []


def test_401_in_xml_when_xml_was_sent(client: httpx.Client) -> None:
    text = (FIXTURES / "websubmit.xml").read_text()
    response = client.post(SUBMIT, params={"api_key": "wrong"}, content=text, headers=XML)
    assert response.status_code == 401
    assert xml_of(response).findtext("Message") == DENIED["Message"]


def test_credentials_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, local: Serve
) -> None:
    monkeypatch.setenv("ORDER_DISPATCH_SANDBOX_SUPPLYSTREAM_API_KEY", "live-key")
    monkeypatch.setenv("ORDER_DISPATCH_SANDBOX_SUPPLYSTREAM_DC_CODES", "LON, MAN")
    sim = SupplyStreamSimulator.from_env()
    assert sim.api_key == "live-key"
    assert sim.dc_codes == {"LON", "MAN"}
    c = local(SupplyStreamSimulator(api_key="live-key", dc_codes="LON,MAN"))
    assert c.post(SUBMIT, params=KEY, json=order()).status_code == 401
    body = order()
    body["SalesOrderHeader"]["DCCode"] = "MAN"
    assert c.post(SUBMIT, params={"api_key": "live-key"}, json=body).json()["CallStatus"] == OK
    body["SalesOrderHeader"]["DCCode"] = "DC1"
    body["WebSalesOrder"]["SalesOrderNumber"] = "SO-2"
    answer = c.post(SUBMIT, params={"api_key": "live-key"}, json=body).json()
    assert answer == failure("Error. Invalid Mapping - DC")


def test_expire_tokens_leaves_the_static_key_valid(client: httpx.Client) -> None:
    fault(client, expire_tokens=True)
    assert submit(client, order()).json()["CallStatus"] == OK


# State: status, tracking, cancel; what the vendor holds.


def test_status_v1_json_is_wrapped_with_an_empty_message_object(client: httpx.Client) -> None:
    guid = submit(client, order()).json()["GUID"]
    response = client.get(f"{BASE}/v1/{guid}/status.json", params={"token": DEFAULT_API_KEY})
    assert response.json() == {
        "Response": {
            "CallStatus": {"Success": True, "Code": 0, "Message": {}},
            "Status": "To Be Picked",
            "GUID": guid,
        }
    }


def test_status_v1_xml_on_the_legacy_path(client: httpx.Client) -> None:
    guid = submit(client, order()).json()["GUID"]
    response = client.get(
        f"/supplystream/hub/api/salesorders/v1/{guid}/status.xml", params={"token": DEFAULT_API_KEY}
    )
    root = xml_of(response)
    assert root.findtext("CallStatus/Success") == "true"
    assert root.findtext("Status") == "To Be Picked"
    assert root.findtext("GUID") == guid


def test_status_v4_is_unwrapped(client: httpx.Client) -> None:
    guid = submit(client, order(GUID="my-own-guid-1")).json()["GUID"]
    assert guid == "my-own-guid-1"
    response = client.get(f"{BASE}/v4/{guid}/status", params=KEY)
    assert response.json() == {"CallStatus": OK, "Status": "To Be Picked", "GUID": guid}


def test_status_of_an_unknown_guid(client: httpx.Client) -> None:
    v4 = client.get(f"{BASE}/v4/nope/status", params=KEY).json()
    assert v4 == failure("Error. Sales Order does not exist.")
    v1 = client.get(f"{BASE}/v1/nope/status.json", params=KEY).json()
    assert v1 == wrapped_failure("Error. Sales Order does not exist.")


def test_admin_status_advances_the_order(client: httpx.Client) -> None:
    guid = submit(client, order()).json()["GUID"]
    answer = client.post(
        f"/_sandbox/orders/supplystream/{guid}/status", json={"status": "Being Picked"}
    ).json()
    assert answer["Status"] == "Being Picked"
    status = client.get(f"{BASE}/v4/{guid}/status", params=KEY).json()
    assert status["Status"] == "Being Picked"
    refused = client.post(
        f"/_sandbox/orders/supplystream/{guid}/status", json={"status": "Shipped"}
    ).json()
    assert refused["error"] == "unknown status 'Shipped'"
    assert held(client)[0]["Status"] == "Being Picked"


def test_tracking_once_dispatched(client: httpx.Client) -> None:
    guid = submit(client, order(CourierName="DPD")).json()["GUID"]
    url = f"{BASE}/v1/{guid}/tracking.json"
    before = client.get(url, params=KEY).json()
    assert before == wrapped_failure("Error. Sales Order has not been dispatched.")
    client.post(f"/_sandbox/orders/supplystream/{guid}/status", json={"status": "Dispatched"})
    after = client.get(url, params=KEY).json()["Response"]
    assert after["CallStatus"] == {"Success": True, "Code": 0, "Message": {}}
    assert after["Courier"] == "DPD"
    assert after["GUID"] == guid
    assert re.fullmatch(r"\d{15}L", after["TrackingNumber"])


def test_cancel_v3_by_sales_order_number(client: httpx.Client) -> None:
    guid = submit(client, order("SOTest234")).json()["GUID"]
    response = client.post(
        f"{BASE}/v3/SOTest234/cancel", params={**KEY, "reasonCode": "001"}
    )
    assert response.status_code == 200
    assert response.json() == {"CallStatus": OK, "GUID": None}
    [stored] = held(client)
    assert (stored["GUID"], stored["Status"], stored["ReasonCode"]) == (guid, "Cancelled", "001")
    again = client.post(f"{BASE}/v3/SOTest234/cancel", params=KEY)
    assert again.json() == {"CallStatus": OK, "GUID": None}


def test_cancel_v3_of_an_unknown_order_is_the_documented_rejection(client: httpx.Client) -> None:
    response = client.post(f"{BASE}/v3/123/cancel", params={**KEY, "reasonCode": "001"})
    assert response.status_code == 200
    assert response.json() == wrapped_failure(
        "Error Submitting Sales Order Cancellation: 123 - Error. Sales Order does not exist."
    )


def test_cancel_with_an_unknown_reason_code(client: httpx.Client) -> None:
    submit(client, order("SO-9"))
    response = client.post(f"{BASE}/v3/SO-9/cancel", params={**KEY, "reasonCode": "007"})
    assert response.json() == wrapped_failure(
        "Error Submitting Sales Order Cancellation: SO-9 - Error. Invalid Reason Code."
    )
    assert held(client)[0]["Status"] == "To Be Picked"


@pytest.mark.parametrize(
    ("status", "cancelled"),
    [
        ("Being Picked", True),
        ("Pick Complete", True),
        ("To Dispatch", False),
        ("Dispatched", False),
    ],
)
def test_cancel_is_refused_from_to_dispatch_on(
    client: httpx.Client, status: str, cancelled: bool
) -> None:
    guid = submit(client, order("SO-7")).json()["GUID"]
    client.post(f"/_sandbox/orders/supplystream/{guid}/status", json={"status": status})
    answer = client.post(f"{BASE}/v3/SO-7/cancel", params={**KEY, "reasonCode": "002"}).json()
    if cancelled:
        assert answer == {"CallStatus": OK, "GUID": None}
        assert held(client)[0]["Status"] == "Cancelled"
    else:
        assert answer == wrapped_failure(
            "Error Submitting Sales Order Cancellation: SO-7 - Error. "
            f"Sales Order is {status} and cannot be cancelled."
        )
        assert held(client)[0]["Status"] == status


def test_cancel_v1_by_guid(client: httpx.Client) -> None:
    guid = submit(client, order()).json()["GUID"]
    url = f"{BASE}/v1/{guid}/cancel/reasoncode/004.json"
    response = client.post(url, params={"token": DEFAULT_API_KEY}, json={"Cancel": "Order"})
    assert response.json() == {
        "Response": {"CallStatus": {"Success": True, "Code": 0, "Message": {}}}
    }
    assert held(client)[0]["ReasonCode"] == "004"
    status = client.get(f"{BASE}/v1/{guid}/status.json", params=KEY).json()
    assert status["Response"]["Status"] == "Cancelled"


def test_the_sandbox_counts_what_the_vendor_received(client: httpx.Client) -> None:
    submit(client, order("A-1"))
    submit(client, order("A-2"))
    bad = order("A-3")
    bad["SalesOrderHeader"]["DCCode"] = "X"
    submit(client, bad)
    answer = client.get("/_sandbox/orders", params={"vendor": "supplystream"}).json()
    assert answer["count"] == 2
    assert answer["requests"] == 3
    assert sorted(o["SalesOrderNumber"] for o in answer["orders"]) == ["A-1", "A-2"]


def test_unknown_service_is_the_iis_404_page(client: httpx.Client) -> None:
    response = client.get("/supplystream/api/nothing/v9/here", params=KEY)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>404 - File or directory not found.</title>" in response.text


# Switchable unknowns.


def test_duplicate_order_number_is_refused_by_default(client: httpx.Client) -> None:
    first = submit(client, order("SO-DUP")).json()
    second = submit(client, order("SO-DUP")).json()
    assert first["CallStatus"] == OK
    assert second == failure(
        "Error Submitting Sales Order: SO-DUP - Error. Sales Order Number already exists."
    )
    assert len(held(client)) == 1


def test_duplicate_order_number_accepted_when_switched_off(
    local: Serve,
) -> None:
    c = local(SupplyStreamSimulator(reject_duplicate_order_number=False))
    guids = [c.post(SUBMIT, params=KEY, json=order("SO-DUP")).json()["GUID"] for _ in range(2)]
    assert guids[0] != guids[1]
    orders = c.get("/_sandbox/orders", params={"vendor": "supplystream"}).json()["orders"]
    assert [o["GUID"] for o in orders] == guids
    c.post(f"{BASE}/v3/SO-DUP/cancel", params=KEY)
    orders = c.get("/_sandbox/orders", params={"vendor": "supplystream"}).json()["orders"]
    assert [o["Status"] for o in orders] == ["Cancelled", "Cancelled"]


def test_a_client_guid_already_in_use_is_refused(local: Serve) -> None:
    c = local(SupplyStreamSimulator(reject_duplicate_order_number=False))
    assert c.post(SUBMIT, params=KEY, json=order("A", GUID="g-1")).json()["GUID"] == "g-1"
    again = c.post(SUBMIT, params=KEY, json=order("B", GUID="g-1")).json()
    assert again == failure("Error Submitting Sales Order: B - Error. GUID already exists.")


@pytest.mark.parametrize("wrap", [False, True])
def test_wrapping_of_json_failures_is_switchable(
    local: Serve, wrap: bool
) -> None:
    c = local(SupplyStreamSimulator(wrap_json_failures=wrap))
    body = order()
    body["SalesOrderHeader"]["DCCode"] = "string"
    answer = c.post(SUBMIT, params=KEY, json=body).json()
    expected = wrapped_failure if wrap else failure
    assert answer == expected("Error. Invalid Mapping - DC")
    assert c.get(f"{BASE}/v4/x/status", params=KEY).json() == expected(
        "Error. Sales Order does not exist."
    )
    # Successes stay unwrapped either way.
    body["SalesOrderHeader"]["DCCode"] = "DC1"
    assert c.post(SUBMIT, params=KEY, json=body).json()["CallStatus"] == OK


# Fault modes as they look for this vendor.


@pytest.mark.parametrize(
    ("status", "retry_after", "marker"),
    [
        (503, 7, "HTTP Error 503. The service is unavailable."),
        (429, 2, "HTTP Error 429. Too Many Requests."),
        (500, None, "<h2>500 - Internal server error.</h2>"),
        (502, None, "<h2>502 - Bad Gateway.</h2>"),
    ],
)
def test_fail_next_answers_like_iis(
    client: httpx.Client, status: int, retry_after: int | None, marker: str
) -> None:
    fault(client, fail_next=1, status=status, retry_after=retry_after)
    response = submit(client, order())
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert marker in response.text
    expected_retry = None if retry_after is None else str(retry_after)
    assert response.headers.get("Retry-After") == expected_retry
    assert held(client) == []
    assert submit(client, order()).json()["CallStatus"] == OK


def test_fail_next_401_is_the_documented_json(client: httpx.Client) -> None:
    fault(client, fail_next=1, status=401)
    response = submit(client, order())
    assert (response.status_code, response.json()) == (401, DENIED)


def test_rate_limit_rate_and_error_rate(client: httpx.Client) -> None:
    fault(client, rate_limit_rate=1.0)
    limited = submit(client, order())
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "1")
    fault(client, rate_limit_rate=0.0, error_rate=1.0, error_status=502)
    assert submit(client, order()).status_code == 502
    assert held(client) == []


def test_outage_answers_503_until_cleared(client: httpx.Client) -> None:
    fault(client, outage_s=30)
    for _ in range(2):
        response = client.get(f"{BASE}/v4/x/status", params=KEY)
        assert response.status_code == 503
        assert 0 < int(response.headers["Retry-After"]) <= 30
    client.delete("/_sandbox/faults/supplystream").raise_for_status()
    assert client.get(f"{BASE}/v4/x/status", params=KEY).status_code == 200


def test_malformed_answer_is_broken_json_but_the_order_is_kept(client: httpx.Client) -> None:
    fault(client, malformed_next=1)
    response = submit(client, order())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert len(held(client)) == 1


def test_malformed_answer_to_xml_is_broken_xml(client: httpx.Client) -> None:
    from xml.etree.ElementTree import ParseError

    from defusedxml.ElementTree import fromstring

    fault(client, malformed_next=1)
    response = client.post(
        SUBMIT, params=KEY, content=(FIXTURES / "websubmit.xml").read_bytes(), headers=XML
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    with pytest.raises(ParseError):
        fromstring(response.content)
    assert len(held(client)) == 1


def test_reset_drops_the_connection_before_the_order_is_taken(client: httpx.Client) -> None:
    fault(client, reset_next=1)
    with pytest.raises(httpx.TransportError):
        submit(client, order())
    assert held(client) == []


def test_drop_after_commit_keeps_the_order_findable_by_client_guid(client: httpx.Client) -> None:
    fault(client, drop_after_commit_next=1)
    body = order("SO-LOST", GUID="5d9a4c1e-7f2b-4e8a-b3c6-0a1d2e3f4a5b")
    with pytest.raises(httpx.TransportError):
        submit(client, body)
    status = client.get(f"{BASE}/v4/5d9a4c1e-7f2b-4e8a-b3c6-0a1d2e3f4a5b/status", params=KEY)
    assert status.json()["Status"] == "To Be Picked"
    retry = submit(client, copy.deepcopy(body)).json()
    assert retry["CallStatus"]["Success"] is False
    assert len(held(client)) == 1


def test_hang_holds_then_drops(sandbox: BackgroundSandbox) -> None:
    with httpx.Client(base_url=sandbox.url, timeout=0.1) as c:
        fault(c, hang_next=1, hang_s=0.3)
        with pytest.raises(httpx.ReadTimeout):
            submit(c, order())
        assert held(c) == []


def test_fixed_latency(client: httpx.Client) -> None:
    fault(client, latency={"distribution": "fixed", "ms": 80})
    started = time.perf_counter()
    assert submit(client, order()).json()["CallStatus"] == OK
    assert time.perf_counter() - started >= 0.08
