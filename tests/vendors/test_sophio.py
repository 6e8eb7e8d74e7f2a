"""Sophio adapter: the shared vendor contract plus Sophio's own cases.

Fixtures (an order shaped after the document's sample request, its exact translation, the
document's sample answer and the error shapes) come first, then the tests."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from order_dispatch import redact
from order_dispatch.contract import ErrorKind, Job, Operation
from order_dispatch.settings import Settings, VendorAccount
from tests.vendors.contract import ErrorCase, ExpectedRequest, VendorContract, run_sender
from worker.outcomes import OutcomeKind
from worker.vendors.base import (
    ConfigurationError,
    TranslationError,
    UnsupportedOperation,
    VendorRequest,
    VendorResponse,
)
from worker.vendors.sender import Sender
from worker.vendors.sophio import Sophio

# A key and secret whose Base64 holds "+", "/" and "=" padding, the characters a URL escapes.
ACCOUNT = VendorAccount(
    base_url="https://demo.sophio.test/",
    credentials={"api_key": "k-sophio>1", "api_secret": "s3cr3t?>"},
)
AUTHENTICATION = "ay1zb3BoaW8+MTpzM2NyM3Q/Pg=="
URL = "https://demo.sophio.test/createorder.wws"

# The document's sample answer ("In a real order the data sent would be echo'd back").
SAMPLE_ANSWER = (
    Path(__file__).parents[1] / "sandbox" / "fixtures" / "sophio" / "sample_response.json"
).read_text()

# The document's sample request, as a normalized order.
ORDER: dict[str, Any] = {
    "order_id": "322759-106515",
    "order_number": "296594",
    "placed_at": "2018-07-17T12:08:06-07:00",
    "paid_at": "2018-07-17T19:08:06Z",
    "ship_by": "2018-07-17T12:08:06-07:00",
    "status": "awaiting_shipment",
    "customer": {"email": "buyer@gmail.com"},
    "bill_to": {
        "first_name": "Steve",
        "last_name": "Smith",
        "line1": "185 Exchange Blvd",
        "city": "West Orange",
        "region": "NJ",
        "postal_code": "07052",
        "country": "US",
        "phone": "201-731-9692",
        "residential": True,
    },
    "ship_to": {
        "first_name": "Steve",
        "last_name": "Smith",
        "line1": "185 Airport Exchange Blvd",
        "city": "West Orange",
        "region": "NJ",
        "postal_code": "0752",
        "country": "US",
        "phone": "201-731-9692",
        "residential": True,
    },
    "items": [
        {
            "line_id": "222637",
            "sku": "VIC-OS32372",
            "name": "Engine Oil Pan Gasket fits 2007-2011 Toyota Tundra Land Cruiser",
            "weight": {"value": "0.37", "unit": "lb"},
            "quantity": 2,
            "unit_price": "7.46",
            "tax": "0",
            "options": {"size": ""},
        },
        {
            "line_id": "222638",
            "sku": "SNA-3401222",
            "name": "Power Steering Pressure Line Hose Assembly fits 2006-2008 Honda Civic",
            "weight": {"value": "1.72", "unit": "lb"},
            "quantity": 1,
            "unit_price": "47.46",
            "tax": "0",
            "options": {"size": ""},
        },
    ],
    "totals": {"shipping": "9.25", "tax": "0", "paid": "66.63"},
    "shipping": {
        "carrier": "ups",
        "service": "ups_ground",
        "requested_service": "Priority Mail",
        "package": "package",
        "confirmation": "delivery",
        "ship_date": "2018-07-17T09:00:00-07:00",
        "weight": {"value": "2.0700", "unit": "lb"},
        "dimensions": {"length": "24", "width": "8.7500", "height": "0.1000", "unit": "in"},
    },
    "payment": {"method": "Credit Card"},
    "custom": {"customField1": "153102358691-1749930787005", "customField2": "296594"},
    "vendor_options": {"advancedOptions": {"source": "400402"}, "tagIds": [53974]},
}


def _address(street: str, postal_code: str) -> dict[str, Any]:
    return {
        "name": "Steve Smith",
        "street1": street,
        "city": "West Orange",
        "state": "NJ",
        "postalCode": postal_code,
        "country": "US",
        "phone": "201-731-9692",
        "residential": True,
    }


# The document's sample request, with the keys our order fills.
EXPECTED_BODY: dict[str, Any] = {
    "orderNumber": "296594",
    "orderKey": "322759-106515",
    "orderDate": "2018-07-17T12:08:06",
    "paymentDate": "2018-07-17T12:08:06",
    "shipByDate": "2018-07-17T12:08:06",
    "orderStatus": "awaiting_shipment",
    "customerUsername": "buyer@gmail.com",
    "customerEmail": "buyer@gmail.com",
    "billTo": _address("185 Exchange Blvd", "07052"),
    "shipTo": _address("185 Airport Exchange Blvd", "0752"),
    "items": [
        {
            "lineItemKey": "222637",
            "sku": "VIC-OS32372",
            "name": "Engine Oil Pan Gasket fits 2007-2011 Toyota Tundra Land Cruiser",
            "weight": {"value": Decimal("0.37"), "units": "pounds"},
            "quantity": 2,
            "unitPrice": Decimal("7.46"),
            "taxAmount": Decimal("0"),
            "options": [{"name": "size", "value": ""}],
        },
        {
            "lineItemKey": "222638",
            "sku": "SNA-3401222",
            "name": "Power Steering Pressure Line Hose Assembly fits 2006-2008 Honda Civic",
            "weight": {"value": Decimal("1.72"), "units": "pounds"},
            "quantity": 1,
            "unitPrice": Decimal("47.46"),
            "taxAmount": Decimal("0"),
            "options": [{"name": "size", "value": ""}],
        },
    ],
    "amountPaid": Decimal("66.63"),
    "taxAmount": Decimal("0"),
    "shippingAmount": Decimal("9.25"),
    "paymentMethod": "Credit Card",
    "requestedShippingService": "Priority Mail",
    "carrierCode": "ups",
    "serviceCode": "ups_ground",
    "packageCode": "package",
    "confirmation": "delivery",
    "shipDate": "2018-07-17",
    "weight": {"value": Decimal("2.0700"), "units": "pounds"},
    "dimensions": {
        "units": "inches",
        "length": Decimal("24"),
        "width": Decimal("8.7500"),
        "height": Decimal("0.1000"),
    },
    "advancedOptions": {
        "customField1": "153102358691-1749930787005",
        "customField2": "296594",
        "source": "400402",
    },
    "tagIds": [53974],
}

MINIMAL_ORDER: dict[str, Any] = {
    "order_id": "A-2",
    "placed_at": "2026-01-15T20:00:00Z",
    "ship_to": {
        "last_name": "Scott",
        "line1": "741 Spiral Blvd",
        "city": "Hastings",
        "postal_code": "55033",
        "country": "US",
    },
    "items": [{"sku": "DOR-931-861", "quantity": 1, "unit_price": "51.37"}],
}
MINIMAL_BODY: dict[str, Any] = {
    "orderNumber": "A-2",
    "orderKey": "A-2",
    "orderDate": "2026-01-15T12:00:00",  # 20:00 UTC is noon in Pacific standard time
    "orderStatus": "awaiting_shipment",
    "billTo": {"name": "Scott"},
    "shipTo": {
        "name": "Scott",
        "street1": "741 Spiral Blvd",
        "city": "Hastings",
        "postalCode": "55033",
        "country": "US",
    },
    "items": [{"sku": "DOR-931-861", "quantity": 1, "unitPrice": Decimal("51.37")}],
    "taxAmount": Decimal("0"),
    "shippingAmount": Decimal("0"),
}

FULL_REQUEST = ExpectedRequest(
    "POST",
    URL,
    params={"action": "CREATE"},
    headers={"Content-Type": "application/json", "Accept": "application/json"},
    json=EXPECTED_BODY,
)
MINIMAL_REQUEST = ExpectedRequest("POST", URL, params={"action": "CREATE"}, json=MINIMAL_BODY)

DENIED = {"Message": "Authorization has been denied for this request."}
INVALID = {
    "Message": "The request is invalid.",
    "ModelState": {"apiOrder.shipTo.name": ["The name field is required."]},
}
LOCKED = {
    "Message": "Order 123456 (orderKey '322759-106515') is shipped; shipped and cancelled orders "
    "are locked from modification through the API."
}
RATE_HEADERS = {
    "X-Rate-Limit-Limit": "40",
    "X-Rate-Limit-Remaining": "0",
    "X-Rate-Limit-Reset": "20",
}

ERRORS = [
    ErrorCase(
        "invalid field",
        VendorResponse.make(400, INVALID),
        OutcomeKind.PERMANENT,
        ErrorKind.VENDOR_REJECTED,
        message="The request is invalid. apiOrder.shipTo.name: The name field is required.",
        code="apiOrder.shipTo.name",
    ),
    ErrorCase(
        "missing action",
        VendorResponse.make(400, {"Message": "The action parameter is required."}),
        OutcomeKind.PERMANENT,
        ErrorKind.VENDOR_REJECTED,
        message="The action parameter is required.",
    ),
    ErrorCase(
        "order locked",
        VendorResponse.make(400, LOCKED),
        OutcomeKind.PERMANENT,
        ErrorKind.VENDOR_REJECTED,
        message="locked from modification",
        already_exists=True,
    ),
    ErrorCase(
        "bad authentication",
        VendorResponse.make(401, DENIED),
        OutcomeKind.PERMANENT,
        ErrorKind.AUTH,
        message="Authorization has been denied for this request.",
    ),
    ErrorCase(
        "wrong method",
        VendorResponse.make(
            405, {"Message": "The requested resource does not support http method 'GET'."}
        ),
        OutcomeKind.PERMANENT,
        ErrorKind.VENDOR_REJECTED,
        message="does not support http method",
    ),
    ErrorCase(
        "request timeout", VendorResponse.make(408, b""), OutcomeKind.RETRYABLE, ErrorKind.TIMEOUT
    ),
    ErrorCase(
        "rate limit, reset header only",
        VendorResponse.make(429, {"message": "Too Many Requests"}, RATE_HEADERS),
        OutcomeKind.RETRYABLE,
        ErrorKind.RATE_LIMITED,
        message="Too Many Requests",
        retry_after_s=20.0,
    ),
    ErrorCase(
        "rate limit, Retry-After first",
        VendorResponse.make(
            429, {"message": "Too Many Requests"}, {**RATE_HEADERS, "Retry-After": "3"}
        ),
        OutcomeKind.RETRYABLE,
        ErrorKind.RATE_LIMITED,
        retry_after_s=3.0,
    ),
    ErrorCase(
        "server error with detail",
        VendorResponse.make(
            500, {"Message": "An error has occurred.", "ExceptionMessage": "Timeout expired."}
        ),
        OutcomeKind.RETRYABLE,
        ErrorKind.VENDOR_UNAVAILABLE,
        message="An error has occurred. Timeout expired.",
    ),
    ErrorCase(
        "unavailable, rate headers are no hint",
        VendorResponse.make(503, {"Message": "The service is unavailable."}, RATE_HEADERS),
        OutcomeKind.RETRYABLE,
        ErrorKind.VENDOR_UNAVAILABLE,
        message="The service is unavailable.",
    ),
    ErrorCase(
        "html error page",
        VendorResponse.make(502, "<html><body>Bad Gateway</body></html>"),
        OutcomeKind.RETRYABLE,
        ErrorKind.VENDOR_UNAVAILABLE,
        message="<html><body>Bad Gateway</body></html>",
    ),
]


def _job(order: dict[str, Any] | None = None, **changes: Any) -> Job:
    return Job.model_validate({"vendor": "sophio", "order": {**(order or ORDER), **changes}})


def _body(job: Job, account: VendorAccount = ACCOUNT) -> dict[str, Any]:
    request = Sophio(account).translate(job)
    body = request.body()
    assert body is not None
    data: dict[str, Any] = json.loads(body, parse_float=Decimal)
    return data


def _with_options(**options: Any) -> VendorAccount:
    return ACCOUNT.model_copy(update={"options": options})


class TestSophio(VendorContract):
    vendor_cls = Sophio
    account = ACCOUNT

    full_job: ClassVar[dict[str, Any]] = {"vendor": "sophio", "order": ORDER}
    full_request = FULL_REQUEST
    minimal_job: ClassVar[dict[str, Any]] = {"vendor": "sophio", "order": MINIMAL_ORDER}
    minimal_request = MINIMAL_REQUEST
    success = VendorResponse.make(200, SAMPLE_ANSWER)
    success_vendor_order_id = "123456"
    success_vendor_status = "awaiting_shipment"
    errors = ERRORS
    unparsable = VendorResponse.make(200, b'{"orderId":123456,"orderNumber":"2965')

    def assert_request(
        self, request: VendorRequest | httpx.Request, expected: ExpectedRequest
    ) -> None:
        """On the wire the query also carries ``authentication``, and money is compared as
        exact decimals."""
        if isinstance(request, VendorRequest):
            super().assert_request(request, expected)
            return
        assert request.url.params.get("authentication") == AUTHENTICATION
        without_auth = httpx.Request(
            request.method,
            request.url.copy_remove_param("authentication"),
            headers=request.headers,
            content=request.content,
        )
        super().assert_request(without_auth, replace(expected, json=None))
        assert json.loads(request.content, parse_float=Decimal) == expected.json

    # Request

    def test_the_authentication_of_the_documents_example(self) -> None:
        account = VendorAccount(
            base_url="https://demo.sophio.com",
            credentials={"api_key": "sophio", "api_secret": "orders"},
        )

        assert Sophio(account).authentication == "c29waGlvOm9yZGVycw=="

    def test_authentication_is_url_encoded_on_the_wire(self) -> None:
        _, seen, _ = run_sender(self.vendor(), self.job(), self.answering(self.success))

        assert "authentication=ay1zb3BoaW8%2BMTpzM2NyM3Q%2FPg%3D%3D" in str(seen[0].url)

    def test_the_translated_request_carries_no_credential(self) -> None:
        request = self.vendor().translate(self.job())

        rendered = repr(request) + str(request.body())
        assert "authentication" not in request.params
        assert AUTHENTICATION not in rendered and "s3cr3t" not in rendered

    def test_money_is_sent_as_exact_decimal_numbers(self) -> None:
        body = self.vendor().translate(self.job()).body()

        assert body is not None
        assert b'"unitPrice": 7.46' in body and b'"amountPaid": 66.63' in body
        assert b'"width": 8.7500' in body and b'"value": 2.0700' in body

    @given(st.decimals(min_value=0, max_value=10**12, allow_nan=False, places=4))
    def test_any_price_reaches_the_wire_exactly(self, price: Decimal) -> None:
        item = {**MINIMAL_ORDER["items"][0], "unit_price": str(price)}
        body = _body(_job(MINIMAL_ORDER, items=[item]))

        sent = body["items"][0]["unitPrice"]
        assert isinstance(sent, Decimal) and str(sent) == str(price)

    @given(
        st.text(st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=100).filter(
            str.strip
        )
    )
    def test_text_survives_unicode_ampersands_brackets_and_quotes(self, text: str) -> None:
        ship_to = {**MINIMAL_ORDER["ship_to"], "company": f'{text} & <"Co">'}
        job = _job(MINIMAL_ORDER, ship_to=ship_to)

        assert job.order is not None
        assert _body(job)["shipTo"]["company"] == job.order.ship_to.company

    def test_unicode_is_sent_as_utf8_not_escaped(self) -> None:
        ship_to = {**MINIMAL_ORDER["ship_to"], "company": "Café Zürich & Söhne <GmbH>"}
        body = self.vendor().translate(_job(MINIMAL_ORDER, ship_to=ship_to)).body()

        assert body is not None and "Café Zürich & Söhne <GmbH>".encode() in body

    def test_dates_are_zone_less_in_the_accounts_time_zone(self) -> None:
        account = _with_options(time_zone="America/Chicago")

        body = _body(_job(MINIMAL_ORDER), account)

        assert body["orderDate"] == "2026-01-15T14:00:00"

    def test_summer_dates_follow_daylight_saving_time(self) -> None:
        body = _body(_job(MINIMAL_ORDER, placed_at="2026-07-01T19:00:00Z"))

        assert body["orderDate"] == "2026-07-01T12:00:00"

    def test_without_a_billing_address_bill_to_carries_the_customers_name(self) -> None:
        customer = {"first_name": "Michael", "company": "Dunder Mifflin", "phone": "555-0100"}

        body = _body(_job(MINIMAL_ORDER, customer=customer))

        assert body["billTo"] == {
            "name": "Michael",
            "company": "Dunder Mifflin",
            "phone": "555-0100",
        }

    def test_discounts_become_adjustment_lines(self) -> None:
        items = [{**MINIMAL_ORDER["items"][0], "line_id": "L1", "discount": "5.10"}]

        # totals.discount is the order's whole discount: 5.10 on the item and 2.50 on the order.
        body = _body(_job(MINIMAL_ORDER, items=items, totals={"discount": "7.60"}))

        assert body["items"][1:] == [
            {
                "lineItemKey": "L1-discount",
                "sku": "DOR-931-861",
                "name": "Discount: DOR-931-861",
                "quantity": 1,
                "unitPrice": Decimal("-5.10"),
                "adjustment": True,
            },
            {
                "sku": "DISCOUNT",
                "name": "Order discount",
                "quantity": 1,
                "unitPrice": Decimal("-2.5"),
                "adjustment": True,
            },
        ]

    def test_kilograms_become_grams_exactly(self) -> None:
        shipping = {"weight": {"value": "1.2345", "unit": "kg"}}

        body = _body(_job(MINIMAL_ORDER, shipping=shipping))

        assert body["weight"] == {"value": Decimal("1234.5000"), "units": "grams"}

    def test_the_payment_amount_stands_in_for_amount_paid(self) -> None:
        body = _body(_job(MINIMAL_ORDER, payment={"method": "Check", "amount": "51.37"}))

        assert (body["amountPaid"], body["paymentMethod"]) == (Decimal("51.37"), "Check")

    def test_gift_notes_and_customer_id(self) -> None:
        body = _body(
            _job(
                MINIMAL_ORDER,
                customer={"id": "cust-9", "email": "x@example.com"},
                gift={"message": "Happy birthday"},
                notes={"customer": "Leave at the door", "internal": "VIP"},
            )
        )

        assert body["customerUsername"] == "cust-9"
        assert (body["gift"], body["giftMessage"]) == (True, "Happy birthday")
        assert (body["customerNotes"], body["internalNotes"]) == ("Leave at the door", "VIP")

    # Limits, before anything is sent

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            (
                {"ship_to": {**MINIMAL_ORDER["ship_to"], "last_name": None}},
                "order.ship_to.first_name",
            ),
            (
                {"ship_to": {**MINIMAL_ORDER["ship_to"], "postal_code": None}},
                "order.ship_to.postal_code",
            ),
            (
                {"bill_to": {**MINIMAL_ORDER["ship_to"], "last_name": None}},
                "order.bill_to.first_name",
            ),
            ({"shipping": {"confirmation": "carrier_pigeon"}}, "order.shipping.confirmation"),
            ({"custom": {"gift_wrap_colour": "red"}}, "order.custom.gift_wrap_colour"),
            ({"vendor_options": {"orderKey": "other"}}, "order.vendor_options.orderKey"),
        ],
    )
    def test_what_the_vendor_would_refuse_is_a_translation_error(
        self, changes: dict[str, Any], field: str
    ) -> None:
        with pytest.raises(TranslationError) as caught:
            self.vendor().translate(_job(MINIMAL_ORDER, **changes))

        assert caught.value.field == field

    def test_an_order_number_longer_than_50_is_refused_not_cut(self) -> None:
        job = _job(MINIMAL_ORDER)
        assert job.order is not None
        long_order = job.order.model_copy(update={"order_number": "N" * 51})

        with pytest.raises(TranslationError, match="51 characters; the vendor accepts at most 50"):
            self.vendor().translate(job.model_copy(update={"order": long_order}))

    def test_a_quantity_beyond_int32_is_refused(self) -> None:
        items = [{**MINIMAL_ORDER["items"][0], "quantity": 2**31}]

        with pytest.raises(TranslationError) as caught:
            self.vendor().translate(_job(MINIMAL_ORDER, items=items))

        assert caught.value.field == "order.items.0.quantity"

    # Operations and options

    def test_only_create_is_offered(self) -> None:
        job = Job.model_construct(
            vendor="sophio", operation=Operation.CANCEL, order_id="A", vendor_order_id="1"
        )

        with pytest.raises(UnsupportedOperation, match="does not support 'cancel'"):
            self.vendor().translate(job)

    def test_a_create_is_repeat_safe_only_when_the_account_says_the_store_upserts(self) -> None:
        assert self.vendor().repeat_safe(Operation.CREATE) is False
        assert Sophio(_with_options(upsert_by_order_key=True)).repeat_safe(Operation.CREATE)

    @pytest.mark.parametrize(
        ("options", "variable"),
        [
            ({"upsert_by_order_key": "maybe"}, "OPTIONS__UPSERT_BY_ORDER_KEY"),
            ({"time_zone": "Mars/Olympus_Mons"}, "OPTIONS__TIME_ZONE"),
            ({"upsert": True}, "OPTIONS__UPSERT"),
        ],
    )
    def test_a_wrong_option_is_a_configuration_error_naming_the_variable(
        self, options: dict[str, Any], variable: str
    ) -> None:
        with pytest.raises(ConfigurationError) as caught:
            Sophio(_with_options(**options))

        assert f"ORDER_DISPATCH_ACCOUNTS__SOPHIO__DEFAULT__{variable}" in str(caught.value)

    def test_a_missing_secret_is_named(self) -> None:
        account = VendorAccount(base_url=ACCOUNT.base_url, credentials={"api_key": "k-sophio"})

        with pytest.raises(ConfigurationError, match="CREDENTIALS__API_SECRET"):
            Sophio(account)

    # Reading

    @pytest.mark.parametrize(
        ("answer", "vendor_order_id"),
        [({"orderId": 7, "orderStatus": "on_hold"}, "7"), ({"orderId": "7"}, "7")],
    )
    def test_the_order_id_is_read_as_text(
        self, answer: dict[str, Any], vendor_order_id: str
    ) -> None:
        outcome = self.vendor().read(self.job(), VendorResponse.make(200, answer))

        assert outcome.kind is OutcomeKind.SUCCESS
        assert outcome.vendor_order_id == vendor_order_id

    @pytest.mark.parametrize(
        "answer",
        ['{"orderNumber": "296594"}', '{"orderId": true}', '{"orderId": null}', "[]", "OK"],
    )
    def test_an_answer_without_an_order_id_is_unknown_with_its_body(self, answer: str) -> None:
        outcome = self.vendor().read(self.job(), VendorResponse.make(200, answer))

        assert outcome.kind is OutcomeKind.UNKNOWN
        assert outcome.error is not None and "unreadable" in outcome.error.message
        assert outcome.body == answer

    def test_every_invalid_field_is_in_the_message(self) -> None:
        state = {"apiOrder.orderDate": ["The orderDate field is required."], "apiOrder.x": "bad"}
        answer = VendorResponse.make(
            400, {"Message": "The request is invalid.", "ModelState": state}
        )

        outcome = self.vendor().read(self.job(), answer)

        assert outcome.error is not None
        assert outcome.error.message == (
            "The request is invalid. apiOrder.orderDate: The orderDate field is required. "
            "apiOrder.x: bad"
        )
        assert outcome.error.code == "apiOrder.orderDate"

    def test_there_is_no_lookup_by_our_reference(self) -> None:
        vendor = self.vendor()

        assert vendor.lookup_request(self.job()) is None
        assert vendor.lookup_authoritative is False

    # Secrets

    def test_secrets_hold_every_url_form_of_the_authentication(self) -> None:
        secrets = self.vendor().secrets()

        assert {
            "k-sophio>1",
            "s3cr3t?>",
            AUTHENTICATION,
            "ay1zb3BoaW8+MTpzM2NyM3Q/Pg",
            "ay1zb3BoaW8%2BMTpzM2NyM3Q%2FPg%3D%3D",
            "ay1zb3BoaW8%2bMTpzM2NyM3Q%2fPg%3d%3d",
        } <= set(secrets)

    def test_the_authentication_is_masked_once_the_sender_registered_it(self) -> None:
        settings = Settings(accounts={"sophio": {"default": ACCOUNT}})
        url = "https://demo.sophio.test/createorder.wws?action=CREATE&authentication="

        async def register() -> None:
            async with httpx.AsyncClient() as client:
                Sender(client, settings).vendor("sophio", "default")

        asyncio.run(register())

        for leaked in (
            f"GET {url}ay1zb3BoaW8%2BMTpzM2NyM3Q%2FPg%3D%3D failed",
            f"GET {url}ay1zb3BoaW8%2bMTpzM2NyM3Q%2fPg%3d%3d failed",
            f"GET {url}ay1zb3BoaW8+MTpzM2NyM3Q/Pg== failed",
            f"GET {url}ay1zb3BoaW8+MTpzM2NyM3Q/Pg failed",
        ):
            assert redact.text(leaked) == f"GET {url}*** failed"
