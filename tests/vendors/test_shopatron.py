"""Shopatron / Kibo OMS adapter: the shared vendor contract plus Shopatron's own cases.

Fixtures (the document's own historic import, the answers) come first, then the tests."""

from __future__ import annotations

import base64
import copy
import json
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import parse_qs

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from order_dispatch.contract import ErrorKind, Job, Operation
from order_dispatch.settings import VendorAccount
from tests.vendors.contract import ErrorCase, ExpectedRequest, VendorContract, as_httpx, run_sender
from worker.outcomes import OutcomeKind
from worker.vendors.base import (
    ConfigurationError,
    LookupKind,
    TranslationError,
    UnparsableResponse,
    VendorResponse,
)
from worker.vendors.shopatron import Shopatron

BASE_URL = "https://integration.shopatron.test"
TOKEN_URL = "https://auth.shopatron.test/oauthserver/oauth2/token"
IMPORT_URL = f"{BASE_URL}/api/v2/importOrder/"
CREATE_URL = f"{BASE_URL}/api/v2/createOrder/"
ACCOUNT = VendorAccount(
    base_url=BASE_URL,
    credentials={"api_key": "key-123", "client_secret": "secret-456"},
    options={"manufacturer_id": "1010", "catalog_id": "0", "token_url": TOKEN_URL},
)
BASIC = "Basic " + base64.b64encode(b"key-123:secret-456").decode()
AUTH_HEADERS = {"API-Key": "key-123", "Authorization": "Bearer tok-1"}

# The document's historic import ("Shipped non-inventory gift order Sent with standard shipping
# Paid for with a no-op payment type ... Currency - USD One order item") as a normalized order.
ORDER: dict[str, Any] = {
    "order_id": "0987654321",
    "placed_at": "2023-08-01T14:37:54+00:00",
    "status": "shipped",
    "currency": "USD",
    "customer": {
        "first_name": "Test",
        "last_name": "Customer",
        "email": "testcustomer@kibocommerce.com",
        "phone": "0001110000",
        "ip": "0.0.0.0",
    },
    "ship_to": {
        "line1": "55 Example St",
        "city": "Phoenix",
        "region": "CA",
        "postal_code": "00000",
        "country": "US",
        "phone": "000-111-0000",
    },
    "bill_to": {
        "line1": "15 Example Blvd.",
        "city": "Phoenix",
        "region": "CA",
        "postal_code": "93420",
        "country": "US",
        "phone": "000-111-2222",
    },
    "items": [
        {
            "sku": "0123456",
            "name": "Part 1",
            "quantity": 1,
            "unit_price": "1.00",
            "upc": "8989898989",
            "image_url": "http:/picture.jpeg",
            "options": {"color": "blue"},
        }
    ],
    "shipping": {"service": "standard"},
    "payment": {
        "type": "NO",
        "transaction_id": "12123",
        "authorization_id": "48484",
        "amount": "20",
    },
    "gift": {"recipient": "Test Customer", "message": "this is the gift message0001"},
    "custom": {
        "Custom Data Key 1": "Custom Data Value 001",
        "Custom Data Key 2": "Custom Data Value 002",
        "Custom Data Key 3": "Custom Data Value 003",
    },
    "vendor_options": {
        "assignedLocation": "00000055",
        "useInventory": False,
        "shippingTax": 2,
        "optInRetailer": True,
        "landingCode": "TestLandingCode",
        "fraudData": [
            {
                "fraudType": "KOUNT",
                "fraudScore": 350,
                "fraudTransactionID": "ASDF324234142",
                "fraudState": "ACCEPTED",
            }
        ],
        "allowSplit": True,
    },
}

BILLING_ADDRESS = {
    "addressLine1": "15 Example Blvd.",
    "phone": "000-111-2222",
    "city": "Phoenix",
    "postalCode": "93420",
    "state": "CA",
    "countryCode": "US",
}
# The document's full request, with the fields our order fills ("manufacturerID":01010 is not
# JSON; the account's 1010 is sent). The document sends "sendEmail":true; an import sends false.
EXPECTED_IMPORT_BODY: dict[str, Any] = {
    "externalOrderID": "0987654321",
    "manufacturerID": 1010,
    "catalogID": 0,
    "orderStatus": "SHIPPED",
    "importedCreationDate": "2023-08-01T14:37:54+00:00",
    "assignedLocation": "00000055",
    "useInventory": False,
    "locale": "en-US",
    "currency": "USD",
    "sendEmail": False,
    "customer": {
        "firstName": "Test",
        "lastName": "Customer",
        "email": "testcustomer@kibocommerce.com",
        "phone1": "0001110000",
    },
    "orderItems": [
        {
            "product": {"partNumber": "0123456", "name": "Part 1", "UPC": "8989898989"},
            "itemSpecifics": {
                "actualPrice": Decimal("1.00"),
                "quantity": 1,
                "customItemData": {"image_url": "http:/picture.jpeg"},
                "options": {"color": "blue"},
            },
        }
    ],
    "shippingMethod": {"shippingType": "standard"},
    "shippingAddress": {
        "addressLine1": "55 Example St",
        "phone": "000-111-0000",
        "city": "Phoenix",
        "postalCode": "00000",
        "state": "CA",
        "countryCode": "US",
    },
    "orderPayments": [
        {
            "paymentMethod": {
                "billingAddress": BILLING_ADDRESS,
                "paymentType": "NO",
                "noOperationType": "HI",
            },
            "transactionID": "12123",
            "authorizationID": "48484",
            "authAmount": Decimal("20"),
        }
    ],
    "customerIP": "0.0.0.0",
    "shippingTax": 2,
    "optInRetailer": True,
    "landingCode": "TestLandingCode",
    "customOrderData": {
        "Custom Data Key 1": "Custom Data Value 001",
        "Custom Data Key 2": "Custom Data Value 002",
        "Custom Data Key 3": "Custom Data Value 003",
    },
    "fraudData": [
        {
            "fraudType": "KOUNT",
            "fraudScore": 350,
            "fraudTransactionID": "ASDF324234142",
            "fraudState": "ACCEPTED",
        }
    ],
    "allowSplit": True,
    "orderGift": {"recipient": "Test Customer", "message": "this is the gift message0001"},
}

MINIMAL_ORDER: dict[str, Any] = {
    "order_id": "M-1",
    "placed_at": "2026-11-20T10:00:00+00:00",
    "customer": {"email": "pam@example.com"},
    "ship_to": {
        "first_name": "Pam",
        "last_name": "Beesly",
        "line1": "1725 Slough Ave",
        "city": "Scranton",
        "postal_code": "18505",
        "country": "US",
    },
    "items": [{"sku": "P-1", "name": "Paper", "quantity": 2, "unit_price": "9.99"}],
}
MINIMAL_ADDRESS = {
    "addressLine1": "1725 Slough Ave",
    "city": "Scranton",
    "postalCode": "18505",
    "countryCode": "US",
}
# An import of an order awaiting shipment with nothing but what the contract and the vendor need:
# the buyer's IP and the payment fall back to the document's historic-import values.
EXPECTED_MINIMAL_BODY: dict[str, Any] = {
    "externalOrderID": "M-1",
    "manufacturerID": 1010,
    "catalogID": 0,
    "orderStatus": "READY",
    "importedCreationDate": "2026-11-20T10:00:00+00:00",
    "locale": "en-US",
    "currency": "USD",
    "sendEmail": False,
    "customer": {"firstName": "Pam", "lastName": "Beesly", "email": "pam@example.com"},
    "orderItems": [
        {
            "product": {"partNumber": "P-1", "name": "Paper"},
            "itemSpecifics": {"actualPrice": Decimal("9.99"), "quantity": 2},
        }
    ],
    "shippingMethod": {"shippingType": "standard"},
    "shippingAddress": MINIMAL_ADDRESS,
    "orderPayments": [
        {
            "paymentMethod": {
                "billingAddress": MINIMAL_ADDRESS,
                "paymentType": "NO",
                "noOperationType": "HI",
            }
        }
    ],
    "customerIP": "0.0.0.0",
}

# The document shows no answer; this is the sandbox's (orderID, externalOrderID, ...).
VENDOR_ANSWER = {
    "orderID": 100001,
    "externalOrderID": "0987654321",
    "manufacturerID": 1010,
    "orderStatus": "SHIPPED",
}
#: An order as the search shows it: the request body plus orderID, orderStatus and a date.
ORDER_HELD: dict[str, Any] = {
    "externalOrderID": "0987654321",
    "manufacturerID": 1010,
    "orderID": 100001,
    "orderStatus": "SHIPPED",
    "orderCreationDate": "2023-08-01T14:37:54+00:00",
}
TOKEN_ANSWER = {"access_token": "tok-1", "token_type": "Bearer", "expires_in": 3600}


def oms_error(status: int, code: int, name: str, message: str, **extra: Any) -> VendorResponse:
    """An answer in the OMS error envelope."""
    return VendorResponse.make(status, {"code": code, "error": name, "message": message, **extra})


ERRORS = [
    ErrorCase(
        "missing request data",
        oms_error(400, 5011, "MISSING_REQUEST_DATA", "customerIP is required", field="customerIP"),
        OutcomeKind.PERMANENT,
        ErrorKind.VENDOR_REJECTED,
        message="customerIP is required",
        code="5011",
    ),
    ErrorCase(
        "invalid request data",
        oms_error(
            400,
            5015,
            "INVALID_REQUEST_DATA",
            "currency 'XXX' is not an ISO 4217 currency code",
            field="currency",
        ),
        OutcomeKind.PERMANENT,
        ErrorKind.VENDOR_REJECTED,
        message="currency 'XXX' is not an ISO 4217 currency code",
        code="5015",
    ),
    ErrorCase(
        "duplicate externalOrderID",
        oms_error(
            400,
            5015,
            "INVALID_REQUEST_DATA",
            "externalOrderID '0987654321' already exists as order 100001",
            field="externalOrderID",
            orderID=100001,
        ),
        OutcomeKind.PERMANENT,
        ErrorKind.VENDOR_REJECTED,
        message="already exists as order 100001",
        code="5015",
        already_exists=True,
    ),
    ErrorCase(
        "not JSON",
        oms_error(400, 5003, "GENERIC_BAD_REQUEST", "body is not valid JSON: Expecting ','"),
        OutcomeKind.PERMANENT,
        ErrorKind.VENDOR_REJECTED,
        message="body is not valid JSON",
        code="5003",
    ),
    ErrorCase(
        "expired token",
        oms_error(401, 5004, "GENERIC_NOT_AUTHORIZED", "access token has expired"),
        OutcomeKind.PERMANENT,
        ErrorKind.AUTH,
        message="access token has expired",
        code="5004",
    ),
    ErrorCase(
        "bad API key",
        oms_error(403, 5004, "GENERIC_NOT_AUTHORIZED", "API-Key is not valid"),
        OutcomeKind.PERMANENT,
        ErrorKind.AUTH,
        message="API-Key is not valid",
    ),
    ErrorCase(
        "not found",
        oms_error(404, 5002, "GENERIC_NOT_FOUND", "no such resource"),
        OutcomeKind.PERMANENT,
        ErrorKind.VENDOR_REJECTED,
        code="5002",
    ),
    ErrorCase(
        "unavailable",
        VendorResponse.make(
            503,
            {"code": 5001, "error": "GENERIC_UNAVAILABLE", "message": "try again later"},
            {"Retry-After": "30"},
        ),
        OutcomeKind.RETRYABLE,
        ErrorKind.VENDOR_UNAVAILABLE,
        message="try again later",
        retry_after_s=30.0,
    ),
    ErrorCase(
        "server error",
        oms_error(500, 5006, "GENERIC_SERVER_ERROR", "internal error"),
        OutcomeKind.RETRYABLE,
        ErrorKind.VENDOR_UNAVAILABLE,
        code="5006",
    ),
    ErrorCase(
        "throttled by the platform",
        VendorResponse.make(
            429,
            {"code": 5001, "error": "GENERIC_UNAVAILABLE", "message": "Too Many Requests"},
            {"Retry-After": "60", "x-vol-correlation": "c0ffee"},
        ),
        OutcomeKind.RETRYABLE,
        ErrorKind.RATE_LIMITED,
        retry_after_s=60.0,
    ),
    ErrorCase(
        "throttled by the gateway",
        VendorResponse.make(
            403,
            "<h1>Developer Over Qps</h1>",
            {"X-Mashery-Error-Code": "ERR_403_DEVELOPER_OVER_QPS"},
        ),
        OutcomeKind.RETRYABLE,
        ErrorKind.RATE_LIMITED,
        message="Developer Over Qps",
        code="ERR_403_DEVELOPER_OVER_QPS",
    ),
]


def order(**changes: Any) -> dict[str, Any]:
    """A deep copy of the document's order with top-level changes."""
    doc = copy.deepcopy(ORDER)
    doc.update(changes)
    return doc


def job(operation: str = "import", /, **changes: Any) -> Job:
    """A job for the document's order (changed)."""
    return Job.model_validate(
        {"vendor": "shopatron", "operation": operation, "order": order(**changes)}
    )


def create_job(**changes: Any) -> Job:
    """A create of the document's order, awaiting shipment, paid by card."""
    changes.setdefault("status", "awaiting_shipment")
    changes.setdefault("payment", {"type": "CC", "transaction_id": "T-9", "amount": "21.50"})
    return job("create", **changes)


def translation_error(the_job: Job) -> TranslationError:
    with pytest.raises(TranslationError) as caught:
        Shopatron(ACCOUNT).translate(the_job)
    return caught.value


def search_answer(*orders: dict[str, Any], total: int | None = None) -> VendorResponse:
    return VendorResponse.make(
        200, {"totalCount": len(orders) if total is None else total, "collection": list(orders)}
    )


class TestShopatron(VendorContract):
    vendor_cls = Shopatron
    account = ACCOUNT

    full_job: ClassVar[dict[str, Any]] = {
        "vendor": "shopatron",
        "operation": "import",
        "order": ORDER,
    }
    full_request = ExpectedRequest(
        "POST", IMPORT_URL, headers=AUTH_HEADERS, json=EXPECTED_IMPORT_BODY
    )
    minimal_job: ClassVar[dict[str, Any]] = {
        "vendor": "shopatron",
        "operation": "import",
        "order": MINIMAL_ORDER,
    }
    minimal_request = ExpectedRequest(
        "POST", IMPORT_URL, headers=AUTH_HEADERS, json=EXPECTED_MINIMAL_BODY
    )
    success = VendorResponse.make(200, VENDOR_ANSWER)
    success_vendor_order_id = "100001"
    success_vendor_status = "SHIPPED"
    errors = ERRORS
    unparsable = VendorResponse.make(200, '{"orderID":1000')
    token_answer = VendorResponse.make(200, TOKEN_ANSWER)

    def requirement_job(self, operation: Operation) -> dict[str, Any]:
        """The full order; a create of it is one still to fulfil."""
        doc = super().requirement_job(operation)
        if operation is Operation.CREATE:
            doc["order"] = {**doc["order"], "status": "awaiting_shipment"}
        return doc

    # Operations

    def test_create_sends_the_import_body_without_the_import_fields(self) -> None:
        request = self.vendor().translate(create_job())

        assert (request.method, request.url(BASE_URL)) == ("POST", CREATE_URL)
        expected = {
            k: v
            for k, v in EXPECTED_IMPORT_BODY.items()
            if k not in ("orderStatus", "importedCreationDate", "sendEmail")
        }
        expected["orderPayments"] = [
            {
                "paymentMethod": {"billingAddress": BILLING_ADDRESS, "paymentType": "CC"},
                "transactionID": "T-9",
                "authAmount": Decimal("21.50"),
            }
        ]
        assert request.json == expected

    @pytest.mark.parametrize(
        ("status", "sent"),
        [("shipped", "SHIPPED"), ("awaiting_shipment", "READY"), ("cancelled", "CANCELLED")],
    )
    def test_import_status_maps_to_the_three_documented_statuses(
        self, status: str, sent: str
    ) -> None:
        request = self.vendor().translate(job(status=status))

        assert request.json["orderStatus"] == sent

    @pytest.mark.parametrize("status", ["awaiting_payment", "on_hold"])
    def test_import_refuses_a_status_the_vendor_cannot_hold(self, status: str) -> None:
        error = translation_error(job(status=status))

        assert error.field == "order.status"
        assert repr(status) in str(error)

    @pytest.mark.parametrize("status", ["shipped", "cancelled"])
    def test_create_refuses_an_order_that_is_over(self, status: str) -> None:
        error = translation_error(create_job(status=status))

        assert error.field == "order.status"
        assert "operation 'import'" in str(error)

    def test_neither_operation_is_repeat_safe(self) -> None:
        vendor = self.vendor()

        assert not [op for op in Shopatron.operations if vendor.repeat_safe(op)]

    def test_update_address_is_refused_by_the_translator(self) -> None:
        the_job = Job.model_construct(
            vendor="shopatron", operation=Operation.UPDATE_ADDRESS, order_id="A"
        )
        with pytest.raises(TranslationError, match="does not support 'update_address'"):
            self.vendor().translate(the_job)

    # What the vendor requires, checked before sending

    def test_create_needs_the_buyers_ipv4_address_and_import_defaults_it(self) -> None:
        customer = {**ORDER["customer"], "ip": None}

        assert translation_error(create_job(customer=customer)).field == "order.customer.ip"
        assert self.vendor().translate(job(customer=customer)).json["customerIP"] == "0.0.0.0"

    def test_an_ipv6_address_is_refused(self) -> None:
        error = translation_error(job(customer={**ORDER["customer"], "ip": "2001:db8::1"}))

        assert error.field == "order.customer.ip"
        assert "IPv4" in str(error)

    def test_create_needs_a_payment_type(self) -> None:
        error = translation_error(create_job(payment={"transaction_id": "T-9"}))

        assert error.field == "order.payment.type"

    def test_imported_card_payment_has_no_no_operation_type(self) -> None:
        request = self.vendor().translate(job(payment={"type": "CC"}))

        assert request.json["orderPayments"] == [
            {"paymentMethod": {"billingAddress": BILLING_ADDRESS, "paymentType": "CC"}}
        ]

    def test_customer_names_fall_back_to_billing_then_shipping(self) -> None:
        bill_to = {**ORDER["bill_to"], "first_name": "Bill", "last_name": "Payer"}
        ship_to = {**ORDER["ship_to"], "first_name": "Sam", "last_name": "Shipper"}
        customer = {"email": "x@example.com"}

        from_billing = self.vendor().translate(
            job(customer=customer, bill_to=bill_to, ship_to=ship_to)
        )
        from_shipping = self.vendor().translate(
            job(customer=customer, bill_to=None, ship_to=ship_to)
        )

        assert from_billing.json["customer"] == {
            "firstName": "Bill",
            "lastName": "Payer",
            "email": "x@example.com",
        }
        assert from_shipping.json["customer"]["firstName"] == "Sam"

    @pytest.mark.parametrize("missing", ["first_name", "last_name", "email"])
    def test_a_customer_field_missing_everywhere_is_refused(self, missing: str) -> None:
        customer = {k: v for k, v in ORDER["customer"].items() if k != missing}

        assert translation_error(job(customer=customer)).field == f"order.customer.{missing}"

    def test_an_item_without_a_name_is_refused(self) -> None:
        items = [*ORDER["items"], {"sku": "X", "quantity": 1, "unit_price": "1"}]

        error = translation_error(job(items=items))

        assert error.field == "order.items.1.name"
        assert "required" in str(error)

    @pytest.mark.parametrize("address", ["ship_to", "bill_to"])
    def test_an_address_without_a_postal_code_is_refused(self, address: str) -> None:
        changed = {k: v for k, v in ORDER[address].items() if k != "postal_code"}

        assert translation_error(job(**{address: changed})).field == f"order.{address}.postal_code"

    @pytest.mark.parametrize("line", ["line1", "line2", "line3"])
    def test_address_lines_longer_than_250_are_refused(self, line: str) -> None:
        at_limit = self.vendor().translate(job(ship_to={**ORDER["ship_to"], line: "x" * 250}))
        error = translation_error(job(bill_to={**ORDER["bill_to"], line: "x" * 251}))

        assert at_limit.json["shippingAddress"][f"addressLine{line[-1]}"] == "x" * 250
        assert error.field == f"order.bill_to.{line}"
        assert "is 251 characters; the vendor accepts at most 250" in str(error)

    def test_an_order_comment_longer_than_1000_is_refused(self) -> None:
        at_limit = self.vendor().translate(job(notes={"customer": "c" * 1000}))
        error = translation_error(job(notes={"customer": "c" * 1001}))

        assert at_limit.json["orderComment"] == "c" * 1000
        assert error.field == "order.notes.customer"

    @pytest.mark.parametrize(
        ("custom", "reason"),
        # Longer names and values (101, 1001 characters) are refused at the door already.
        [({"key": ""}, "is empty")],
    )
    def test_custom_data_outside_the_vendors_bounds_is_refused(
        self, custom: dict[str, str], reason: str
    ) -> None:
        error = translation_error(job(custom=custom))

        assert error.field == f"order.custom.{next(iter(custom))}"
        assert reason in str(error)

    @pytest.mark.parametrize(
        ("value", "reason"),
        [("TooShort1", "at least 10"), ("L" * 201, "at most 200")],
    )
    def test_vendor_options_are_held_to_the_documented_bounds(
        self, value: str, reason: str
    ) -> None:
        options = {**ORDER["vendor_options"], "landingCode": value}

        error = translation_error(job(vendor_options=options))

        assert error.field == "order.vendor_options.landingCode"
        assert reason in str(error)

    @pytest.mark.parametrize("key", ["externalOrderID", "manufacturerID"])
    def test_vendor_options_cannot_replace_the_reference(self, key: str) -> None:
        error = translation_error(job(vendor_options={key: "other"}))

        assert error.field == f"order.vendor_options.{key}"

    # Money and text on the wire

    def test_money_is_sent_exactly(self) -> None:
        items = [{"sku": "P", "name": "N", "quantity": 3, "unit_price": "0.10"}]
        payment = {"type": "CC", "amount": "1234567890.12345678"}

        body = self.vendor().translate(create_job(items=items, payment=payment)).body()

        assert body is not None
        assert b'"actualPrice": 0.10' in body
        sent = json.loads(body, parse_float=Decimal)
        assert sent["orderPayments"][0]["authAmount"] == Decimal("1234567890.12345678")

    @settings(max_examples=60, deadline=None)
    @given(text=st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=80))
    def test_text_survives_the_json_body(self, text: str) -> None:
        text = text.strip() or "&<\"'>"
        the_job = job(
            customer={**ORDER["customer"], "first_name": text},
            ship_to={**ORDER["ship_to"], "line1": text, "city": text},
            notes={"customer": text},
            gift={"message": text},
        )

        body = self.vendor().translate(the_job).body()

        assert body is not None
        sent = json.loads(body)
        assert sent["customer"]["firstName"] == text
        assert sent["shippingAddress"]["addressLine1"] == text
        assert sent["shippingAddress"]["city"] == text
        assert sent["orderComment"] == text
        assert sent["orderGift"]["message"] == text

    # Auth

    def test_the_token_request_is_oauth2_client_credentials(self) -> None:
        request = self.vendor().token_request()

        assert (request.method, request.url(BASE_URL)) == ("POST", TOKEN_URL)
        assert request.headers["Authorization"] == BASIC
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert request.content is not None
        assert parse_qs(request.content.decode()) == {"grant_type": ["client_credentials"]}

    def test_the_token_endpoint_defaults_to_the_base_url(self) -> None:
        options = {k: v for k, v in ACCOUNT.options.items() if k != "token_url"}
        account = ACCOUNT.model_copy(update={"options": options})

        request = Shopatron(account).token_request()

        assert request.url(BASE_URL) == f"{BASE_URL}/oauthserver/oauth2/token"

    def test_every_call_carries_the_bearer_token_and_the_api_key(self) -> None:
        outcome, seen, _ = run_sender(self.vendor(), self.job(), self.answering(self.success))

        token_call, order_call = seen
        assert str(token_call.url) == TOKEN_URL
        assert token_call.headers["Authorization"] == BASIC
        assert "API-Key" not in token_call.headers
        assert order_call.headers["Authorization"] == "Bearer tok-1"
        assert order_call.headers["API-Key"] == "key-123"
        assert outcome.kind is OutcomeKind.SUCCESS

    def test_the_token_lives_as_long_as_expires_in_says(self) -> None:
        token = self.vendor().parse_token(VendorResponse.make(200, TOKEN_ANSWER))

        assert (token.value, token.expires_in_s) == ("tok-1", 3600.0)

    @pytest.mark.parametrize(
        "answer",
        [{"token_type": "Bearer"}, {"access_token": "t", "token_type": "mac"}, "not json"],
    )
    def test_an_unusable_token_answer_is_unparsable(self, answer: Any) -> None:
        with pytest.raises(UnparsableResponse):
            self.vendor().parse_token(VendorResponse.make(200, answer))

    def test_a_refused_client_is_an_auth_failure_without_sending_the_order(self) -> None:
        refused = httpx.Response(
            401,
            json={"error": "invalid_client", "error_description": "client authentication failed"},
        )

        outcome, seen, _ = run_sender(self.vendor(), self.job(), lambda request: refused)

        assert [str(r.url) for r in seen] == [TOKEN_URL]
        assert outcome.kind is OutcomeKind.PERMANENT
        assert outcome.error is not None and outcome.error.kind is ErrorKind.AUTH
        assert "client authentication failed" in outcome.error.message

    def test_the_base64_credentials_are_masked_too(self) -> None:
        assert BASIC.removeprefix("Basic ") in self.vendor().secrets()

    def test_gateway_throttling_is_retried_not_taken_for_refused_credentials(self) -> None:
        throttled = next(c.response for c in ERRORS if c.name == "throttled by the gateway")
        token = as_httpx(self.token_answer)

        outcome, seen, _ = run_sender(
            self.vendor(),
            self.job(),
            lambda r: token if str(r.url) == TOKEN_URL else as_httpx(throttled),
        )

        assert outcome.kind is OutcomeKind.RETRYABLE
        assert outcome.error is not None and outcome.error.kind is ErrorKind.RATE_LIMITED
        assert len([r for r in seen if str(r.url) == IMPORT_URL]) == 2  # the sender resends once

    # Account options

    @pytest.mark.parametrize(
        ("options", "variable"),
        [
            ({"catalog_id": 0}, "OPTIONS__MANUFACTURER_ID"),
            ({"manufacturer_id": 0, "catalog_id": 0}, "OPTIONS__MANUFACTURER_ID"),
            ({"manufacturer_id": 1, "catalog_id": "first"}, "OPTIONS__CATALOG_ID"),
            (
                {"manufacturer_id": 1, "catalog_id": 0, "token_url": "auth.host"},
                "OPTIONS__TOKEN_URL",
            ),
            (
                {"manufacturer_id": 1, "catalog_id": 0, "manufacturerID": 1},
                "OPTIONS__MANUFACTURERID",
            ),
        ],
    )
    def test_wrong_options_name_the_variable(self, options: dict[str, Any], variable: str) -> None:
        with pytest.raises(ConfigurationError) as caught:
            Shopatron(ACCOUNT.model_copy(update={"options": options}))

        assert f"ORDER_DISPATCH_ACCOUNTS__SHOPATRON__DEFAULT__{variable}" in str(caught.value)

    # Answers

    def test_an_answer_for_another_order_is_unknown(self) -> None:
        answer = VendorResponse.make(200, {**VENDOR_ANSWER, "externalOrderID": "other"})

        outcome = self.vendor().read(self.job(), answer)

        assert outcome.kind is OutcomeKind.UNKNOWN
        assert outcome.error is not None and "'other'" in outcome.error.message

    @pytest.mark.parametrize("answer", ['{"orderStatus": "READY"}', "[]", '{"orderID": true}'])
    def test_an_answer_without_an_order_id_is_unknown(self, answer: str) -> None:
        outcome = self.vendor().read(self.job(), VendorResponse.make(200, answer))

        assert outcome.kind is OutcomeKind.UNKNOWN
        assert outcome.body == answer

    def test_only_a_taken_reference_means_the_vendor_has_the_order(self) -> None:
        taken_order_id = oms_error(
            400, 5015, "INVALID_REQUEST_DATA", "orderID 7 already exists", field="orderID"
        )
        named_in_message = oms_error(
            400, 5015, "INVALID_REQUEST_DATA", "externalOrderID must be unique"
        )
        vendor = self.vendor()

        assert not vendor.read(self.job(), taken_order_id).already_exists
        assert vendor.read(self.job(), named_in_message).already_exists

    # Reconciliation

    def test_the_lookup_searches_by_our_reference_and_manufacturer(self) -> None:
        request = self.vendor().lookup_request(self.job())

        assert request is not None
        assert (request.method, request.url(BASE_URL)) == ("GET", f"{BASE_URL}/api/v2/order/")
        assert request.params == {"externalOrderID": "0987654321", "manufacturerID": "1010"}

    def test_a_lookup_finds_our_order(self) -> None:
        answer = search_answer({**ORDER_HELD, "orderStatus": "READY"})

        lookup = self.vendor().parse_lookup(self.job(), answer)

        assert (lookup.kind, lookup.vendor_order_id, lookup.vendor_status) == (
            LookupKind.FOUND,
            "100001",
            "READY",
        )

    def test_an_empty_search_means_not_found(self) -> None:
        lookup = self.vendor().parse_lookup(self.job(), search_answer())

        assert lookup.kind is LookupKind.NOT_FOUND
        assert Shopatron.lookup_authoritative

    @pytest.mark.parametrize(
        ("answer", "detail"),
        [
            (
                search_answer(ORDER_HELD, {**ORDER_HELD, "orderID": 100002}),
                "2 orders hold externalOrderID",
            ),
            (search_answer({**ORDER_HELD, "externalOrderID": "A-9"}), "none with"),
            (search_answer({**ORDER_HELD, "manufacturerID": 77}), "none with"),
            (search_answer(total=25), "none with"),
            (
                oms_error(
                    400,
                    5016,
                    "UNSUPPORTED_QUERY_PARAM",
                    "query parameter 'externalOrderID' is not supported",
                ),
                "answered 400 (5016): query parameter 'externalOrderID' is not supported",
            ),
        ],
    )
    def test_a_lookup_that_cannot_tell_is_unknown(
        self, answer: VendorResponse, detail: str
    ) -> None:
        lookup = self.vendor().parse_lookup(self.job(), answer)

        assert lookup.kind is LookupKind.UNKNOWN
        assert detail in lookup.detail

    def test_an_unreadable_search_answer_is_unparsable(self) -> None:
        with pytest.raises(UnparsableResponse):
            self.vendor().parse_lookup(self.job(), VendorResponse.make(200, {"orders": []}))
