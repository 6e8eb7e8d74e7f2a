"""SupplyStream (SEKO iHub) adapter: the shared vendor contract plus SupplyStream's own cases.

Fixtures (the document's answers, our order and its exact request) come first, then the tests."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from decimal import Decimal as D
from typing import Any
from xml.etree.ElementTree import Element

import httpx
import pytest
from defusedxml.ElementTree import fromstring
from hypothesis import given, settings
from hypothesis import strategies as st

from order_dispatch.contract import ErrorKind, Job, Operation
from order_dispatch.settings import VendorAccount
from tests.vendors.contract import ErrorCase, ExpectedRequest, VendorContract, run_sender
from worker.outcomes import OutcomeKind
from worker.vendors.base import (
    ConfigurationError,
    LookupKind,
    TranslationError,
    UnparsableResponse,
    VendorRequest,
    VendorResponse,
)
from worker.vendors.supplystream import SECTIONS, SupplyStream, client_guid

BASE_URL = "https://ihub.supplystream.test:8081"
ACCOUNT = VendorAccount(
    base_url=BASE_URL,
    credentials={"api_key": "k-123"},
    options={"dc_code": "DC1"},
)
XML_ACCOUNT = ACCOUNT.model_copy(update={"options": {"dc_code": "DC1", "format": "xml"}})
SUBMIT = f"{BASE_URL}/api/salesorders/v4/websubmit"
JSON_MEDIA = "application/json"
XML_MEDIA = "application/xml"

ORDER: dict[str, Any] = {
    "order_id": "SS-1001",
    "order_number": "1001",
    "placed_at": "2026-03-13T16:45:33.494+01:00",
    "status": "on_hold",
    "currency": "GBP",
    "customer": {"email": "stephen@example.com", "phone": "01753 000000"},
    "ship_to": {
        "first_name": "Stephen",
        "last_name": "Jones",
        "company": "Jones & Sons <Windsor>",
        "line1": "23 Victoria Street",
        "line2": "Flat 2",
        "city": "Windsor",
        "region": "Berkshire",
        "postal_code": "SL4 1HE",
        "country": "GB",
        "phone": "01753 123456",
    },
    "bill_to": {
        "first_name": "Zoë",
        "last_name": "O'Brien",
        "line1": "1 \"Quoted\" Lane",
        "city": "Slough",
        "postal_code": "SL1 1AA",
        "country": "GB",
        "email": "zoe@example.com",
    },
    "items": [
        {"sku": "100083", "quantity": 2, "unit_price": "10.10", "tax": "2.02", "ean": "501"},
        {"sku": "100084", "quantity": 3, "unit_price": "0.1"},
    ],
    "totals": {"shipping": "4.95", "tax": "2.02", "discount": "1.00"},
    "shipping": {
        "carrier": "DHL",
        "service": "Next Day",
        "ship_date": "2026-03-14T09:00:00Z",
        "instructions": "Leave with neighbour",
    },
    "gift": {"message": "Happy birthday ☺", "sender": "Ann", "recipient": "Bo", "wrap": True},
    "notes": {"customer": "Ring twice", "internal": "not sent"},
}
FULL_JOB: dict[str, Any] = {"vendor": "supplystream", "order": ORDER}
FULL_GUID = client_guid(Job.model_validate(FULL_JOB))

# Our full order in the document's v4 JSON shape.
EXPECTED_CREATE_BODY: dict[str, Any] = {
    "WebSalesOrder": {
        "DiscountPriceTotal": D("1.00"),
        "GiftWrap": True,
        "GiftMessage": "Happy birthday ☺",
        "GiftMessageFrom": "Ann",
        "GiftMessageTo": "Bo",
        "ShippingTotal": D("4.95"),
        "TaxTotal": D("2.02"),
        "SubTotal": D("20.50"),
        "CurrencyCode": "GBP",
        "CourierName": "DHL",
        "CourierService": "Next Day",
        "GUID": FULL_GUID,
        "Notes": "Ring twice",
        "OnHold": True,
        "SalesOrderDate": "2026-03-13T15:45:33.494Z",
        "SalesOrderNumber": "SS-1001",
        "SalesOrderReference": "1001",
        "ScheduledShipDate": "2026-03-14T09:00:00.000Z",
        "SpecialInstructions": "Leave with neighbour",
    },
    "SalesOrderHeader": {"DCCode": "DC1"},
    "DeliveryDetails": {
        "City": "Windsor",
        "CountryCode": "GB",
        "County": "Berkshire",
        "EmailAddress": "stephen@example.com",
        "FirstName": "Stephen",
        "LastName": "Jones",
        "Line1": "Jones & Sons <Windsor>",
        "Line2": "23 Victoria Street",
        "Line3": "Flat 2",
        "PhoneNumber": "01753 123456",
        "PostcodeZip": "SL4 1HE",
    },
    "BillingDetails": {
        "City": "Slough",
        "CountryCode": "GB",
        "EmailAddress": "zoe@example.com",
        "FirstName": "Zoë",
        "LastName": "O'Brien",
        "Line1": '1 "Quoted" Lane',
        "PhoneNumber": "01753 000000",
        "PostcodeZip": "SL1 1AA",
    },
    "List": {
        "SalesOrderLineItem": [
            {
                "EAN": "501",
                "LineNumber": 1,
                "ProductCode": "100083",
                "Quantity": 2,
                "UnitPrice": D("10.10"),
                "VAT": D("2.02"),
            },
            {"LineNumber": 2, "ProductCode": "100084", "Quantity": 3, "UnitPrice": D("0.1")},
        ]
    },
}

MINIMAL_ORDER: dict[str, Any] = {
    "order_id": "SS-2",
    "placed_at": "2026-03-13T15:45:33Z",
    "ship_to": {"line1": "23 Victoria Street", "city": "Windsor", "country": "GB"},
    "items": [{"sku": "100083", "quantity": 1, "unit_price": "0"}],
}
MINIMAL_JOB: dict[str, Any] = {"vendor": "supplystream", "order": MINIMAL_ORDER}
MINIMAL_BODY: dict[str, Any] = {
    "WebSalesOrder": {
        "DiscountPriceTotal": 0,
        "ShippingTotal": 0,
        "TaxTotal": 0,
        "SubTotal": 0,
        "CurrencyCode": "USD",
        "GUID": client_guid(Job.model_validate(MINIMAL_JOB)),
        "OnHold": False,
        "SalesOrderDate": "2026-03-13T15:45:33.000Z",
        "SalesOrderNumber": "SS-2",
    },
    "SalesOrderHeader": {"DCCode": "DC1"},
    "DeliveryDetails": {"City": "Windsor", "CountryCode": "GB", "Line1": "23 Victoria Street"},
    "List": {
        "SalesOrderLineItem": [
            {"LineNumber": 1, "ProductCode": "100083", "Quantity": 1, "UnitPrice": 0}
        ]
    },
}
JSON_HEADERS = {"Content-Type": JSON_MEDIA, "Accept": JSON_MEDIA}
KEY = {"api_key": "k-123"}

# The document's answers.
SUCCESS_JSON = {
    "CallStatus": {"Success": True, "Code": 0, "Message": ""},
    "GUID": "c75d6d3b-fa49-496f-9031-ea51b4d05af2",
}
FAILURE_JSON = {
    "CallStatus": {"Success": False, "Code": 100, "Message": "Error. Invalid Mapping - DC"},
    "GUID": None,
}
SUCCESS_XML = (
    "<Response>\n<CallStatus>\n<Success>true</Success>\n<Code>0</Code>\n<Message></Message>\n"
    "</CallStatus>\n<GUID>40b60548-2690-46f0-bcf6-7ba0c8ce92fa</GUID>\n</Response>"
)
FAILURE_XML = (
    "<Response>\n<CallStatus>\n<Success>false</Success>\n<Code>100</Code>\n"
    "<Message>Error. Invalid Mapping - DC</Message>\n</CallStatus>\n<GUID />\n</Response>"
)
# The response-codes page: failures wrapped in a Response object, without a GUID.
UNREADABLE_BODY = {
    "Response": {
        "CallStatus": {
            "Success": False,
            "Code": 100,
            "Message": "Cannot process json receipt A JSONObject text must begin with '{' at "
            "character 1",
        }
    }
}
CANCEL_REFUSED = {
    "Response": {
        "CallStatus": {
            "Success": False,
            "Code": 100,
            "Message": "Error Submitting Sales Order Cancellation: 123 - Error. Sales Order does "
            "not exist.",
        }
    }
}
DENIED = {"Message": "Authorization has been denied for this request."}
IIS_404 = (
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
    '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\r\n'
    '<html xmlns="http://www.w3.org/1999/xhtml">\r\n<head>\r\n'
    "<title>404 - File or directory not found.</title>\r\n</head>\r\n<body></body></html>"
)
# (sandbox choice) a duplicate SalesOrderNumber, modelled on the vendor's Product Master answer.
DUPLICATE = {
    "CallStatus": {
        "Success": False,
        "Code": 100,
        "Message": "Error Submitting Sales Order: SS-1001 - Error. Sales Order Number already "
        "exists.",
    },
    "GUID": None,
}


def _json(status: int, body: Any) -> VendorResponse:
    return VendorResponse.make(status, body, {"Content-Type": "application/json; charset=utf-8"})


def _xml(status: int, body: str) -> VendorResponse:
    return VendorResponse.make(status, body, {"Content-Type": "application/xml; charset=utf-8"})


def _rejected(name: str, response: VendorResponse, message: str, **kw: Any) -> ErrorCase:
    return ErrorCase(
        name,
        response,
        OutcomeKind.PERMANENT,
        ErrorKind.VENDOR_REJECTED,
        message=message,
        code=kw.pop("code", "100"),
        **kw,
    )


ERRORS = [
    _rejected("invalid DC (JSON)", _json(200, FAILURE_JSON), "Error. Invalid Mapping - DC"),
    _rejected("invalid DC (XML)", _xml(200, FAILURE_XML), "Error. Invalid Mapping - DC"),
    _rejected(
        "unreadable body, wrapped",
        _json(200, UNREADABLE_BODY),
        "Cannot process json receipt A JSONObject text must begin with '{' at character 1",
    ),
    _rejected(
        "cancellation refused, wrapped",
        _json(200, CANCEL_REFUSED),
        "Sales Order does not exist.",
    ),
    _rejected(
        "duplicate order number",
        _json(200, DUPLICATE),
        "Sales Order Number already exists.",
        already_exists=True,
    ),
    ErrorCase(
        "wrong key",
        _json(401, DENIED),
        OutcomeKind.PERMANENT,
        ErrorKind.AUTH,
        message="Authorization has been denied for this request.",
    ),
    ErrorCase(
        "wrong key, asked for XML",
        _xml(401, f"<Error><Message>{DENIED['Message']}</Message></Error>"),
        OutcomeKind.PERMANENT,
        ErrorKind.AUTH,
        message="Authorization has been denied for this request.",
    ),
    ErrorCase(
        "invalid service",
        VendorResponse.make(404, IIS_404, {"Content-Type": "text/html"}),
        OutcomeKind.PERMANENT,
        ErrorKind.VENDOR_REJECTED,
        message="404 - File or directory not found.",
    ),
    ErrorCase(
        "unsupported media type",
        _json(415, {"Message": "The request entity's media type 'text/plain' is not supported"}),
        OutcomeKind.PERMANENT,
        ErrorKind.VENDOR_REJECTED,
        message="media type 'text/plain' is not supported",
    ),
]


def job(doc: dict[str, Any], **changes: Any) -> Job:
    return Job.model_validate({**doc, **changes})


def order_job(account: str = "default", **order: Any) -> Job:
    return job(FULL_JOB, account=account, order={**ORDER, **order})


def status_job(vendor_order_id: str = FULL_GUID) -> Job:
    return job(
        {"vendor": "supplystream", "operation": "get_status", "order_id": "SS-1001"},
        vendor_order_id=vendor_order_id,
    )


def cancel_job(order_id: str = "SS-1001", **vendor_options: Any) -> Job:
    doc: dict[str, Any] = {
        "vendor": "supplystream",
        "operation": "cancel",
        "order_id": order_id,
        "vendor_order_id": FULL_GUID,
    }
    if vendor_options:
        doc["order"] = {**ORDER, "order_id": order_id, "vendor_options": vendor_options}
    return job(doc)


def xml_vendor() -> SupplyStream:
    return SupplyStream(XML_ACCOUNT)


def xml_dict(element: Element) -> Any:
    """An XML request as the JSON document it stands for (all values text)."""
    if element.tag == "List":
        return {"SalesOrderLineItem": [xml_dict(i) for i in element]}
    if element.tag == "TaxItems":
        return [xml_dict(t) for t in element]
    if len(element):
        return {child.tag: xml_dict(child) for child in element}
    return element.text or ""


def text_at(root: Element, path: str) -> str | None:
    """The text of the element at ``path`` (which must exist)."""
    element = root.find(path)
    assert element is not None, path
    return element.text


def as_text(document: Any) -> Any:
    """A JSON document with every value written as the XML writes it."""
    if isinstance(document, dict):
        return {k: as_text(v) for k, v in document.items()}
    if isinstance(document, list):
        return [as_text(v) for v in document]
    if isinstance(document, bool):
        return "true" if document else "false"
    return format(document, "f") if isinstance(document, Decimal) else str(document)


class TestSupplyStream(VendorContract):
    vendor_cls = SupplyStream
    account = ACCOUNT

    full_job = FULL_JOB
    full_request = ExpectedRequest(
        "POST", SUBMIT, params=KEY, headers=JSON_HEADERS, json=EXPECTED_CREATE_BODY
    )
    minimal_job = MINIMAL_JOB
    minimal_request = ExpectedRequest(
        "POST", SUBMIT, params=KEY, headers=JSON_HEADERS, json=MINIMAL_BODY
    )
    success = _json(200, SUCCESS_JSON)
    success_vendor_order_id = "c75d6d3b-fa49-496f-9031-ea51b4d05af2"
    success_vendor_status = None
    errors = ERRORS
    # The sandbox's cut-off answer.
    unparsable = _json(200, '{"CallStatus":{"Success":true,"Code":0,"Message":""},"GUID":"c7')

    def assert_request(
        self, request: VendorRequest | httpx.Request, expected: ExpectedRequest
    ) -> None:
        if isinstance(request, VendorRequest):
            # The key is added by authorize(), after translation.
            params = {k: v for k, v in expected.params.items() if k != "api_key"}
            expected = replace(expected, params=params)
        elif expected.json is not None:
            # Money is exact on the wire: read it back as Decimal, not float.
            assert json.loads(request.content, parse_float=Decimal) == expected.json
            expected = replace(expected, json=None)
        super().assert_request(request, expected)

    # The request on the wire

    def test_the_key_goes_in_the_query_and_its_encoded_forms_are_masked(self) -> None:
        account = VendorAccount(
            base_url=BASE_URL, credentials={"api_key": "a+b/c d"}, options={"dc_code": "DC1"}
        )
        vendor = SupplyStream(account)

        _, seen, _ = run_sender(vendor, self.job(), self.answering(self.success))

        assert seen[0].url.params["api_key"] == "a+b/c d"
        assert {"a+b/c d", "a%2Bb%2Fc%20d", "a%2Bb%2Fc+d"} <= set(vendor.secrets())
        assert str(seen[0].url).split("api_key=")[1] in vendor.secrets()

    def test_money_is_exact_on_the_wire(self) -> None:
        items = [
            {"sku": "A", "quantity": 3, "unit_price": "0.1"},
            {"sku": "B", "quantity": 7, "unit_price": "12345678901234567890.123456789"},
        ]
        totals = {"shipping": "12345678901234567890.123456789", "tax": "1E+2"}
        _, seen, _ = run_sender(
            self.vendor(), order_job(items=items, totals=totals), self.answering(self.success)
        )

        wire = seen[0].content.decode()
        assert '"SubTotal": 86419752308641975231.164197523,' in wire
        assert '"ShippingTotal": 12345678901234567890.123456789,' in wire
        assert '"TaxTotal": 100,' in wire
        web = json.loads(wire, parse_float=Decimal)["WebSalesOrder"]
        assert web["SubTotal"] == Decimal("86419752308641975231.164197523")

    def test_an_xml_account_sends_the_documents_xml_in_its_order(self) -> None:
        request = xml_vendor().translate(self.job())

        assert request.json is None and request.content is not None
        assert request.headers == {"Content-Type": XML_MEDIA, "Accept": XML_MEDIA}
        assert request.content.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n<Request>")
        root = fromstring(request.content)
        assert xml_dict(root) == as_text(EXPECTED_CREATE_BODY)
        web = [child.tag for child in root.iterfind("WebSalesOrder/*")]
        assert web == [k for k in SECTIONS["WebSalesOrder"] if k in web]
        assert [child.tag for child in root] == [
            "WebSalesOrder", "SalesOrderHeader", "DeliveryDetails", "BillingDetails", "List"
        ]  # fmt: skip

    def test_xml_text_survives_escaping_and_carriage_returns(self) -> None:
        notes = 'a & b < c > d "e" \'f\'\r\nline ☺ 𝄞'
        request = xml_vendor().translate(order_job(notes={"customer": notes}))

        assert request.content is not None
        assert b"&amp; b &lt; c &gt; d" in request.content
        assert text_at(fromstring(request.content), "WebSalesOrder/Notes") == notes

    @settings(max_examples=60, deadline=None)
    @given(
        text=st.text(
            st.characters(blacklist_categories=["Cs"], blacklist_characters="\ufffe\uffff").filter(
                lambda c: c in "\t\n\r" or c >= " "
            ),
            min_size=1,
            max_size=200,
        )
    )
    def test_any_xml_text_round_trips_through_xml_and_json(self, text: str) -> None:
        changed = order_job(notes={"customer": text}, shipping={"instructions": text})

        xml_request = xml_vendor().translate(changed)
        json_request = self.vendor().translate(changed)

        assert xml_request.content is not None
        root = fromstring(xml_request.content)
        assert text_at(root, "WebSalesOrder/Notes") == text
        assert text_at(root, "WebSalesOrder/SpecialInstructions") == text
        body = json.loads(json_request.body() or b"")
        assert body["WebSalesOrder"]["Notes"] == text

    def test_a_character_xml_cannot_carry_is_refused_for_xml_accounts_only(self) -> None:
        bell = order_job(notes={"customer": "ding\x07"})

        with pytest.raises(TranslationError) as caught:
            xml_vendor().translate(bell)

        assert caught.value.field == "order.notes.customer"
        assert "U+0007" in str(caught.value)
        assert self.vendor().translate(bell).json["WebSalesOrder"]["Notes"] == "ding\x07"

    def test_an_unpaired_surrogate_is_refused(self) -> None:
        # The contract refuses one in the order's own fields; vendor_options are not checked.
        extras = {"WebSalesOrder": {"PurchaseOrderNumber": "x\ud800"}}

        with pytest.raises(TranslationError) as caught:
            self.vendor().translate(order_job(vendor_options=extras))

        assert caught.value.field == "order.vendor_options.WebSalesOrder.PurchaseOrderNumber"
        assert "U+D800" in str(caught.value)

    # Limits

    @pytest.mark.parametrize(
        ("change", "field", "limit"),
        [
            ({"shipping": {"instructions": "i" * 401}}, "order.shipping.instructions", 400),
            ({"shipping": {"carrier": "c" * 101}}, "order.shipping.carrier", 100),
            ({"ship_to": {**ORDER["ship_to"], "city": "c" * 51}}, "order.ship_to.city", 50),
            ({"ship_to": {**ORDER["ship_to"], "phone": "1" * 21}}, "order.ship_to.phone", 20),
            ({"ship_to": {**ORDER["ship_to"], "region": "r" * 51}}, "order.ship_to.region", 50),
            ({"customer": {"phone": "2" * 21}, "ship_to": MINIMAL_ORDER["ship_to"]},
             "order.customer.phone", 20),
            ({"items": [{"sku": "s", "ean": "5" * 101, "quantity": 1, "unit_price": "1"}]},
             "order.items.0.ean", 100),
            ({"gift": {"sender": "g" * 101}}, "order.gift.sender", 100),
        ],
    )  # fmt: skip
    def test_a_value_longer_than_the_vendor_takes_is_a_validation_error(
        self, change: dict[str, Any], field: str, limit: int
    ) -> None:
        with pytest.raises(TranslationError) as caught:
            self.vendor().translate(order_job(**change))

        assert caught.value.field == field
        assert f"at most {limit}" in str(caught.value)

    def test_a_value_at_the_limit_is_sent_whole(self) -> None:
        notes = "n" * 3999 + "☺"

        request = self.vendor().translate(order_job(notes={"customer": notes}))

        assert request.json["WebSalesOrder"]["Notes"] == notes

    # Mapping choices

    @pytest.mark.parametrize(
        ("status", "held"),
        [("awaiting_shipment", False), ("on_hold", True), ("awaiting_payment", True)],
    )
    def test_held_and_unpaid_orders_go_on_hold(self, status: str, held: bool) -> None:
        request = self.vendor().translate(order_job(status=status))

        assert request.json["WebSalesOrder"]["OnHold"] is held

    @pytest.mark.parametrize("status", ["shipped", "cancelled"])
    def test_a_shipped_or_cancelled_order_is_not_created(self, status: str) -> None:
        with pytest.raises(TranslationError, match=r"order\.status: is '.*'; SupplyStream would"):
            self.vendor().translate(order_job(status=status))

    def test_names_come_from_the_customer_when_the_address_has_none(self) -> None:
        customer = {"first_name": "Pam", "last_name": "Beesly", "email": "pam@example.com"}

        request = self.vendor().translate(
            order_job(customer=customer, ship_to=MINIMAL_ORDER["ship_to"], bill_to=None)
        )

        delivery = request.json["DeliveryDetails"]
        assert (delivery["FirstName"], delivery["LastName"]) == ("Pam", "Beesly")
        assert delivery["EmailAddress"] == "pam@example.com"
        assert "BillingDetails" not in request.json

    def test_the_ship_by_date_is_the_scheduled_ship_date_when_no_ship_date_is_given(self) -> None:
        request = self.vendor().translate(
            order_job(shipping={}, ship_by="2026-03-20T12:00:00-05:00")
        )

        assert request.json["WebSalesOrder"]["ScheduledShipDate"] == "2026-03-20T17:00:00.000Z"

    def test_the_client_guid_is_stable_per_account_and_order(self) -> None:
        again = order_job(notes={"customer": "changed"})

        assert client_guid(again) == FULL_GUID
        assert client_guid(order_job(account="eu")) != FULL_GUID
        assert client_guid(order_job(order_id="SS-1002")) != FULL_GUID
        assert client_guid(status_job()) == FULL_GUID  # the same order, another operation

    # vendor_options

    def test_vendor_options_add_fields_to_the_documents_sections(self) -> None:
        extras = {
            "WebSalesOrder": {"CourierShopID": "S1", "DoNotPushToDC": True, "ShippingVAT": 0.99},
            "SalesOrderHeader": {"DCCode": "DC2"},
            "RetailCompliance": {"StoreId": "42", "ShipByDate": "2026-03-20T00:00:00Z"},
            "TaxItems": [{"Type": "VAT", "Value": "20"}],
            "reason_code": "003",
        }

        request = self.vendor().translate(order_job(vendor_options=extras))

        body = request.json
        assert body["WebSalesOrder"]["CourierShopID"] == "S1"
        assert body["WebSalesOrder"]["DoNotPushToDC"] is True
        assert body["WebSalesOrder"]["ShippingVAT"] == Decimal("0.99")
        assert body["SalesOrderHeader"] == {"DCCode": "DC2"}
        assert body["RetailCompliance"] == extras["RetailCompliance"]
        assert body["TaxItems"] == [{"Type": "VAT", "Value": "20"}]
        assert list(body)[-1] == "TaxItems"
        xml = xml_vendor().translate(order_job(vendor_options=extras)).content
        assert xml is not None
        assert text_at(fromstring(xml), "TaxItems/TaxItem/Type") == "VAT"

    @pytest.mark.parametrize(
        ("extras", "field", "reason"),
        [
            ({"Bogus": {}}, "order.vendor_options.Bogus", "not a SupplyStream section"),
            ({"WebSalesOrder": {"Colour": "red"}}, "order.vendor_options.WebSalesOrder.Colour",
             "not a field SupplyStream knows"),
            ({"WebSalesOrder": {"GUID": "mine"}}, "order.vendor_options.WebSalesOrder.GUID",
             "cannot be overridden"),
            ({"WebSalesOrder": {"SalesOrderNumber": "x"}},
             "order.vendor_options.WebSalesOrder.SalesOrderNumber", "cannot be overridden"),
            ({"WebSalesOrder": {"OnHold": "yes"}}, "order.vendor_options.WebSalesOrder.OnHold",
             "true or false"),
            ({"WebSalesOrder": {"TaxTotal": "lots"}},
             "order.vendor_options.WebSalesOrder.TaxTotal", "must be a number"),
            ({"WebSalesOrder": {"TaxTotal": "NaN"}},
             "order.vendor_options.WebSalesOrder.TaxTotal", "must be a number"),
            ({"WebSalesOrder": {"ShipmentTerms": "t" * 101}},
             "order.vendor_options.WebSalesOrder.ShipmentTerms", "at most 100"),
            ({"RetailCompliance": {"PoDate": "soon"}},
             "order.vendor_options.RetailCompliance.PoDate", "ISO 8601"),
            ({"DeliveryDetails": {"Title": ["Dr"]}},
             "order.vendor_options.DeliveryDetails.Title", "must be text"),
            ({"BillingDetails": "x"}, "order.vendor_options.BillingDetails", "must be an object"),
            ({"TaxItems": {"Type": "VAT"}}, "order.vendor_options.TaxItems", "must be a list"),
            ({"TaxItems": [{"Rate": 1}]}, "order.vendor_options.TaxItems.0.Rate",
             "not a field"),
        ],
    )  # fmt: skip
    def test_wrong_vendor_options_name_the_field(
        self, extras: dict[str, Any], field: str, reason: str
    ) -> None:
        with pytest.raises(TranslationError) as caught:
            self.vendor().translate(order_job(vendor_options=extras))

        assert caught.value.field == field
        assert reason in str(caught.value)

    # Account settings

    @pytest.mark.parametrize(
        ("options", "variable"),
        [
            ({}, "ORDER_DISPATCH_ACCOUNTS__SUPPLYSTREAM__DEFAULT__OPTIONS__DC_CODE"),
            ({"dc_code": ""}, "ORDER_DISPATCH_ACCOUNTS__SUPPLYSTREAM__DEFAULT__OPTIONS__DC_CODE"),
            ({"dc_code": "DC1", "format": "csv"},
             "ORDER_DISPATCH_ACCOUNTS__SUPPLYSTREAM__DEFAULT__OPTIONS__FORMAT"),
            ({"dc_code": "DC1", "dc": "x"},
             "ORDER_DISPATCH_ACCOUNTS__SUPPLYSTREAM__DEFAULT__OPTIONS__DC"),
        ],
    )  # fmt: skip
    def test_wrong_options_are_a_configuration_error_naming_the_variable(
        self, options: dict[str, Any], variable: str
    ) -> None:
        with pytest.raises(ConfigurationError, match=variable):
            SupplyStream(ACCOUNT.model_copy(update={"options": options}))

    # Answers

    def test_an_xml_account_reads_the_documents_xml_answers(self) -> None:
        vendor = xml_vendor()

        ok = vendor.read(self.job(), _xml(200, SUCCESS_XML))
        refused = vendor.read(self.job(), _xml(200, FAILURE_XML))

        assert (ok.kind, ok.vendor_order_id) == (
            OutcomeKind.SUCCESS, "40b60548-2690-46f0-bcf6-7ba0c8ce92fa"
        )  # fmt: skip
        assert refused.kind is OutcomeKind.PERMANENT
        assert refused.error is not None and refused.error.message == "Error. Invalid Mapping - DC"
        assert refused.body == FAILURE_XML

    def test_the_answers_format_follows_its_content_type_then_the_account(self) -> None:
        unlabelled = VendorResponse.make(200, SUCCESS_XML.encode())

        assert xml_vendor().read(self.job(), unlabelled).kind is OutcomeKind.SUCCESS
        assert self.vendor().read(self.job(), _xml(200, SUCCESS_XML)).kind is OutcomeKind.SUCCESS
        assert self.vendor().read(self.job(), unlabelled).kind is OutcomeKind.UNKNOWN

    @pytest.mark.parametrize(
        "body",
        [
            {"CallStatus": {"Success": "false", "Code": "100", "Message": "Error. No"}},
            {"Response": {"CallStatus": {"Success": False, "Code": 100, "Message": "Error. No"}}},
        ],
    )
    def test_success_false_is_never_accepted(self, body: dict[str, Any]) -> None:
        outcome = self.vendor().read(self.job(), _json(200, body))

        assert outcome.kind is OutcomeKind.PERMANENT
        assert outcome.error is not None
        assert (outcome.error.message, outcome.error.code) == ("Error. No", "100")
        assert outcome.already_exists is False

    def test_a_refusal_without_a_message_says_so(self) -> None:
        outcome = self.vendor().read(
            self.job(), _json(200, {"CallStatus": {"Success": False, "Code": 100, "Message": {}}})
        )

        assert outcome.error is not None
        assert outcome.error.message == "the vendor refused without a message (Code 100)"

    @pytest.mark.parametrize(
        "body",
        [
            {"GUID": "x"},
            {"CallStatus": {"Success": "maybe"}, "GUID": "x"},
            {"CallStatus": {"Success": True, "Code": 0, "Message": ""}, "GUID": None},
            [],
        ],
    )
    def test_an_answer_without_a_readable_call_status_or_guid_is_unknown(self, body: Any) -> None:
        outcome = self.vendor().read(self.job(), _json(200, body))

        assert outcome.kind is OutcomeKind.UNKNOWN
        assert outcome.error is not None and "unreadable" in outcome.error.message
        assert outcome.body == json.dumps(body)

    def test_the_guid_already_held_is_an_already_exists_answer_for_creates_only(self) -> None:
        message = "Error Submitting Sales Order: SS-1001 - Error. GUID already exists."
        body = {"CallStatus": {"Success": False, "Code": 100, "Message": message}, "GUID": None}

        assert self.vendor().read(self.job(), _json(200, body)).already_exists is True
        assert self.vendor().read(status_job(), _json(200, body)).already_exists is False

    # get_status and cancel

    def test_get_status_reads_the_guid(self) -> None:
        vendor = self.vendor()
        answer = {**SUCCESS_JSON, "Status": "Being Picked"}

        outcome, seen, _ = run_sender(vendor, status_job(), self.answering(_json(200, answer)))

        assert seen[0].method == "GET"
        assert str(seen[0].url) == (
            f"{BASE_URL}/api/salesorders/v4/{FULL_GUID}/status?api_key=k-123"
        )
        assert seen[0].headers["Accept"] == JSON_MEDIA
        assert (outcome.kind, outcome.vendor_status) == (OutcomeKind.SUCCESS, "Being Picked")
        assert outcome.vendor_order_id == SUCCESS_JSON["GUID"]

    def test_get_status_of_an_unknown_order_is_rejected_and_a_status_less_answer_unknown(
        self,
    ) -> None:
        gone = {"CallStatus": {"Success": False, "Code": 100, "Message": "Error. Sales Order "
                               "does not exist."}, "GUID": None}  # fmt: skip

        refused = self.vendor().read(status_job(), _json(200, gone))
        blank = self.vendor().read(status_job(), _json(200, SUCCESS_JSON))

        assert refused.kind is OutcomeKind.PERMANENT
        assert blank.kind is OutcomeKind.UNKNOWN

    def test_ids_in_paths_are_escaped(self) -> None:
        vendor = self.vendor()

        status = vendor.translate(status_job("a/b?c"))
        cancel = vendor.translate(cancel_job("SO 1/2"))

        assert status.path == "/api/salesorders/v4/a%2Fb%3Fc/status"
        assert cancel.path == "/api/salesorders/v3/SO%201%2F2/cancel"

    def test_cancel_goes_by_the_order_number_with_the_reason_when_given(self) -> None:
        vendor = xml_vendor()

        plain = vendor.translate(cancel_job())
        with_reason = vendor.translate(cancel_job(reason_code="005"))

        assert (plain.method, plain.path, plain.params) == (
            "POST", "/api/salesorders/v3/SS-1001/cancel", {}
        )  # fmt: skip
        assert plain.headers == {"Accept": XML_MEDIA}
        assert plain.body() is None
        assert with_reason.params == {"reasonCode": "005"}

    @pytest.mark.parametrize("reason", ["7", "007", 1, "Customer Request", ["001"]])
    def test_a_reason_that_is_not_a_documented_code_is_refused(self, reason: Any) -> None:
        with pytest.raises(TranslationError) as caught:
            self.vendor().translate(cancel_job(reason_code=reason))

        assert caught.value.field == "order.vendor_options.reason_code"
        assert "001 (Customer Request)" in str(caught.value)

    def test_cancel_answers(self) -> None:
        done = {"CallStatus": {"Success": True, "Code": 0, "Message": ""}, "GUID": None}

        accepted = self.vendor().read(cancel_job(), _json(200, done))
        refused = self.vendor().read(cancel_job(), _json(200, CANCEL_REFUSED))

        assert (accepted.kind, accepted.vendor_order_id) == (OutcomeKind.SUCCESS, FULL_GUID)
        assert refused.kind is OutcomeKind.PERMANENT and refused.already_exists is False

    def test_only_reads_and_cancels_are_repeat_safe(self) -> None:
        vendor = self.vendor()

        assert not vendor.repeat_safe(Operation.CREATE)
        assert vendor.repeat_safe(Operation.GET_STATUS) and vendor.repeat_safe(Operation.CANCEL)

    # Reconciliation

    def test_a_create_is_looked_up_by_its_client_guid(self) -> None:
        request = xml_vendor().lookup_request(self.job())

        assert request is not None
        assert (request.method, request.path) == (
            "GET", f"/api/salesorders/v4/{FULL_GUID}/status"
        )  # fmt: skip
        assert request.headers == {"Accept": XML_MEDIA}
        assert self.vendor().lookup_request(status_job()) is None
        assert self.vendor().lookup_request(cancel_job()) is None
        assert SupplyStream.lookup_authoritative is True

    @pytest.mark.parametrize(
        ("response", "kind", "status"),
        [
            (_json(200, {**SUCCESS_JSON, "GUID": FULL_GUID, "Status": "To Be Picked"}),
             LookupKind.FOUND, "To Be Picked"),
            (_xml(200, SUCCESS_XML.replace("<GUID>", "<Status>Dispatched</Status><GUID>")),
             LookupKind.FOUND, "Dispatched"),
            (_json(200, {"CallStatus": {"Success": False, "Code": 100,
                                        "Message": "Error. Sales Order does not exist."},
                         "GUID": None}), LookupKind.NOT_FOUND, None),
            (_xml(200, FAILURE_XML.replace("Invalid Mapping - DC", "Sales Order does not exist.")),
             LookupKind.NOT_FOUND, None),
            (_json(200, FAILURE_JSON), LookupKind.UNKNOWN, None),
            (_json(401, DENIED), LookupKind.UNKNOWN, None),
            (VendorResponse.make(404, IIS_404), LookupKind.UNKNOWN, None),
            (_json(503, {}), LookupKind.UNKNOWN, None),
        ],
    )  # fmt: skip
    def test_lookup_answers(
        self, response: VendorResponse, kind: LookupKind, status: str | None
    ) -> None:
        lookup = self.vendor().parse_lookup(self.job(), response)

        assert lookup.kind is kind, lookup
        assert lookup.vendor_status == status
        if kind is LookupKind.FOUND:
            assert lookup.vendor_order_id in (FULL_GUID, "40b60548-2690-46f0-bcf6-7ba0c8ce92fa")
        if kind is LookupKind.UNKNOWN:
            assert lookup.detail

    def test_an_unreadable_lookup_answer_raises_for_the_sender_to_report(self) -> None:
        with pytest.raises(UnparsableResponse):
            self.vendor().parse_lookup(self.job(), _json(200, '{"CallStatus": '))
