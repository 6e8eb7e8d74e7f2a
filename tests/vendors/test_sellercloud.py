"""SellerCloud adapter: the shared vendor contract plus SellerCloud's own cases.

Fixtures (the swagger's request model filled with an order, the documented answers) come first,
then the tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, ClassVar

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from order_dispatch.contract import ErrorKind, Job, Operation
from order_dispatch.settings import VendorAccount
from tests.vendors.contract import (
    ErrorCase,
    ExpectedRequest,
    VendorContract,
    as_httpx,
    run_sender,
)
from worker.outcomes import OutcomeKind
from worker.vendors.base import (
    ConfigurationError,
    LookupKind,
    TranslationError,
    UnparsableResponse,
    VendorResponse,
)
from worker.vendors.sellercloud import SellerCloud

BASE = "https://tt.api.sellercloud.com"
ACCOUNT = VendorAccount(
    base_url=f"{BASE}/",
    credentials={"username": "api-user@example.com", "password": "pa55-w0rd-sc"},
    options={"company_id": 163, "channel": "Local_Store"},
)
ORDERS_URL = f"{BASE}/rest/api/Orders"
TOKEN_URL = f"{BASE}/rest/api/token"

# The swagger's CreateTokenResponse (expires_in as in the old document's sample).
TOKEN_ANSWER = VendorResponse.make(
    200,
    {
        "access_token": "tok-8f3a1c",
        "token_type": "bearer",
        "username": "api-user@example.com",
        "expires_in": 1800,
        ".issued": "2024-05-01T10:00:00Z",
        ".expires": "2024-05-01T10:30:00Z",
    },
)
AUTH_HEADERS = {"Authorization": "Bearer tok-8f3a1c", "Content-Type": "application/json"}

ORDER: dict[str, Any] = {
    "order_id": "SO-1001",
    "placed_at": "2024-05-01T10:00:00-04:00",
    "ship_by": "2024-05-03T17:00:00Z",
    "customer": {
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "company": "Analytical Engines & Co",
        "wholesale": True,
    },
    "ship_to": {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "company": "Analytical Engines & Co",
        "line1": "1 Main St",
        "line2": "Suite 2",
        "line3": "Floor 3",
        "city": "Brooklyn",
        "region": "NY",
        "postal_code": "11201",
        "country": "US",
        "phone": "555-0100",
    },
    "bill_to": {
        "first_name": "Charles",
        "last_name": "Babbage",
        "line1": "2 Side St",
        "city": "London",
        "postal_code": "W1",
        "country": "GB",
    },
    "items": [
        {
            "line_id": "L1",
            "sku": "SKU-1",
            "name": "Difference engine <mk II>",
            "quantity": 2,
            "unit_price": "12.5",
            "tax": "1.25",
            "discount": "0.5",
            "options": {"size": "L", "color": "brass"},
        },
        {"sku": "SKU-2", "quantity": 1, "unit_price": "3", "tax": "0.25"},
    ],
    "totals": {"shipping": "4.75", "tax": "1.5", "discount": "0.5"},
    "shipping": {
        "carrier": "UPS",
        "service": "UPSGround",
        "weight": {"value": "2.5", "unit": "lb"},
        "dimensions": {"length": "10", "width": "8", "height": "4", "unit": "in"},
        "instructions": "Leave at the back door",
    },
    "gift": {"message": 'Happy birthday, "Ada"!', "wrap": True},
    "notes": {"customer": "Call before delivery", "internal": "VIP"},
    "vendor_options": {"OrderDetails": {"MarketingSource": 3}},
}

# OrderBaseModel as the swagger names it. Amounts are exact in binary too, so the body read back
# from the wire (floats) compares equal; exactness itself is tested on the bytes below.
EXPECTED_CREATE_BODY: dict[str, Any] = {
    "CustomerDetails": {
        "Email": "ada@example.com",
        "FirstName": "Ada",
        "LastName": "Lovelace",
        "Business": "Analytical Engines & Co",
        "IsWholesale": True,
    },
    "OrderDetails": {
        "CompanyID": 163,
        "Channel": 0,
        "OrderSourceOrderID": "SO-1001",
        "OrderDate": "2024-05-01T14:00:00Z",
        "GiftOrder": True,
        "MarketingSource": 3,
    },
    "ShippingAddress": {
        "Business": "Analytical Engines & Co",
        "FirstName": "Ada",
        "LastName": "Lovelace",
        "Address": "1 Main St",
        "Address2": "Suite 2, Floor 3",
        "City": "Brooklyn",
        "State": "NY",
        "ZipCode": "11201",
        "Country": "US",
        "Phone": "555-0100",
    },
    "BillingAddress": {
        "FirstName": "Charles",
        "LastName": "Babbage",
        "Address": "2 Side St",
        "City": "London",
        "ZipCode": "W1",
        "Country": "GB",
    },
    "ShippingMethodDetails": {
        "ShippingFee": Decimal("4.75"),
        "Carrier": "UPS",
        "ShippingMethod": "UPSGround",
        "Weight": {"Pounds": Decimal("2.5")},
        "Dimension": {"Width": Decimal(8), "Height": Decimal(4), "Length": Decimal(10)},
        "PromiseDate": "2024-05-03T17:00:00Z",
    },
    "Products": [
        {
            "ProductID": "SKU-1",
            "Qty": 2,
            "SitePrice": Decimal("12.5"),
            "ProductName": "Difference engine <mk II>",
            "ReferenceID": "L1",
            "LineTaxTotal": Decimal("1.25"),
            "DiscountValue": Decimal("0.5"),
            "DiscountType": 0,
            "Notes": "size: L; color: brass",
        },
        {"ProductID": "SKU-2", "Qty": 1, "SitePrice": Decimal(3), "LineTaxTotal": Decimal("0.25")},
    ],
    "Notes": [
        {"Category": 1, "Note": "Call before delivery"},
        {"Category": 1, "Note": "Leave at the back door"},
        {"Category": 0, "Note": "VIP"},
    ],
    "GiftDetails": {"UseGiftWrap": True, "GiftMessage": 'Happy birthday, "Ada"!'},
}

MINIMAL_ORDER: dict[str, Any] = {
    "order_id": "SO-2",
    "placed_at": "2024-05-01T10:00:00Z",
    "customer": {"email": "grace@example.com"},
    "ship_to": {
        "first_name": "Grace",
        "last_name": "Hopper",
        "line1": "3 Navy Rd",
        "city": "Arlington",
        "country": "US",
    },
    "items": [{"sku": "SKU-9", "quantity": 1, "unit_price": "0"}],
}
MINIMAL_ADDRESS = {
    "FirstName": "Grace",
    "LastName": "Hopper",
    "Address": "3 Navy Rd",
    "City": "Arlington",
    "Country": "US",
}
EXPECTED_MINIMAL_BODY: dict[str, Any] = {
    "CustomerDetails": {"Email": "grace@example.com", "FirstName": "Grace", "LastName": "Hopper"},
    "OrderDetails": {
        "CompanyID": 163,
        "Channel": 0,
        "OrderSourceOrderID": "SO-2",
        "OrderDate": "2024-05-01T10:00:00Z",
    },
    "ShippingAddress": MINIMAL_ADDRESS,
    "BillingAddress": MINIMAL_ADDRESS,
    "ShippingMethodDetails": {"ShippingFee": Decimal(0)},
    "Products": [{"ProductID": "SKU-9", "Qty": 1, "SitePrice": Decimal(0)}],
}

# "200 with an int32 = new order ID".
CREATE_ANSWER = VendorResponse.make(200, b"1000001")

# SingleOrderDataDto, the parts the adapter reads.
ORDER_ANSWER = {
    "ID": 1000001,
    "OrderDetails": {"CompanyID": 163, "OrderSourceOrderId": "SO-1001"},
    "Statuses": {"OrderStatus": 2, "ShippingStatus": 1, "PaymentStatus": 10, "DropshipStatus": 0},
}

# The document's own rate-limit answer.
RATE_LIMIT_BODY = {
    "Error": "Too many requests.",
    "RateLimitResetTime": "2022-01-14T09:38:49.9856571Z",
}

ERRORS = [
    ErrorCase(
        "validation (ModelState)",
        VendorResponse.make(
            400,
            {
                "Message": "The request is invalid.",
                "ModelState": {
                    "model.OrderDetails.Channel": ["The Channel field is required."],
                    "model.CustomerDetails.Email": ["The Email field is required."],
                },
            },
        ),
        OutcomeKind.PERMANENT,
        ErrorKind.VENDOR_REJECTED,
        message="The request is invalid. model.OrderDetails.Channel: The Channel field is "
        "required.; model.CustomerDetails.Email: The Email field is required.",
    ),
    ErrorCase(
        "not valid token",
        VendorResponse.make(401, {"Message": "Not Valid Token"}, {"WWW-Authenticate": "Bearer"}),
        OutcomeKind.PERMANENT,
        ErrorKind.AUTH,
        message="Not Valid Token",
    ),
    ErrorCase(
        "unknown order",
        VendorResponse.make(404, {"Message": "Order 5 was not found."}),
        OutcomeKind.PERMANENT,
        ErrorKind.VENDOR_REJECTED,
        message="Order 5 was not found.",
    ),
    ErrorCase(
        "rate limited, reset time passed",
        VendorResponse.make(429, RATE_LIMIT_BODY),
        OutcomeKind.RETRYABLE,
        ErrorKind.RATE_LIMITED,
        message="Too many requests. (the limit resets at 2022-01-14T09:38:49.9856571Z)",
        code="Too many requests.",
        retry_after_s=0.0,
    ),
    ErrorCase(
        "the rate-limit body under another status (the status is not documented)",
        VendorResponse.make(400, RATE_LIMIT_BODY),
        OutcomeKind.RETRYABLE,
        ErrorKind.RATE_LIMITED,
        code="Too many requests.",
        retry_after_s=0.0,
    ),
    ErrorCase(
        "internal server error",
        VendorResponse.make(500, {"Message": "An error has occurred."}),
        OutcomeKind.RETRYABLE,
        ErrorKind.VENDOR_UNAVAILABLE,
        message="An error has occurred.",
    ),
    ErrorCase(
        "duplicate OrderSourceOrderID",
        VendorResponse.make(
            400,
            {
                "Message": "The request is invalid.",
                "ModelState": {
                    "model.OrderDetails.OrderSourceOrderID": [
                        "Order with OrderSourceOrderID 'SO-1001' already exists: order 1000001."
                    ]
                },
            },
        ),
        OutcomeKind.PERMANENT,
        ErrorKind.VENDOR_REJECTED,
        message="already exists: order 1000001.",
        already_exists=True,
    ),
    ErrorCase(
        "unsupported media type",
        VendorResponse.make(
            415,
            {
                "Message": "The request entity's media type 'text/plain' is not supported for "
                "this resource."
            },
        ),
        OutcomeKind.PERMANENT,
        ErrorKind.VENDOR_REJECTED,
        message="media type 'text/plain' is not supported",
    ),
]


def job(operation: str, vendor_order_id: str = "1000001", **changes: Any) -> Job:
    """A get_status or cancel job."""
    doc = {
        "vendor": "sellercloud",
        "operation": operation,
        "order_id": "SO-1001",
        "vendor_order_id": vendor_order_id,
        **changes,
    }
    return Job.model_validate(doc)


def create_job(**order_changes: Any) -> Job:
    return Job.model_validate({"vendor": "sellercloud", "order": {**ORDER, **order_changes}})


def account(**options: Any) -> VendorAccount:
    return ACCOUNT.model_copy(update={"options": options})


def summary(
    order_id: int, *, source: str = "SO-1001", company: int = 163, status: int = 2
) -> dict[str, Any]:
    """One ``Items`` entry of the order list."""
    return {
        "ID": order_id,
        "CompanyID": company,
        "Channel": 0,
        "OrderSourceOrderID": source,
        "StatusCode": status,
    }


class TestSellerCloud(VendorContract):
    vendor_cls = SellerCloud
    account = ACCOUNT

    full_job: ClassVar[dict[str, Any]] = {"vendor": "sellercloud", "order": ORDER}
    full_request = ExpectedRequest(
        "POST", ORDERS_URL, headers=AUTH_HEADERS, json=EXPECTED_CREATE_BODY
    )
    minimal_job: ClassVar[dict[str, Any]] = {"vendor": "sellercloud", "order": MINIMAL_ORDER}
    minimal_request = ExpectedRequest(
        "POST", ORDERS_URL, headers=AUTH_HEADERS, json=EXPECTED_MINIMAL_BODY
    )
    success = CREATE_ANSWER
    success_vendor_order_id = "1000001"
    success_vendor_status = None
    errors = ERRORS
    unparsable = VendorResponse.make(200, '{"Items":[{"ID":10000')
    token_answer = TOKEN_ANSWER

    # Operations

    def test_create_is_not_repeat_safe_but_status_reads_and_cancels_are(self) -> None:
        vendor = self.vendor()

        assert not vendor.repeat_safe(Operation.CREATE)
        assert vendor.repeat_safe(Operation.GET_STATUS)
        assert vendor.repeat_safe(Operation.CANCEL)

    def test_get_status_reads_the_order_and_reports_its_order_status(self) -> None:
        vendor = self.vendor()
        status_job = job("get_status")

        request = vendor.translate(status_job)
        outcome = vendor.read(status_job, VendorResponse.make(200, ORDER_ANSWER))

        assert (request.method, request.url(BASE), request.json) == (
            "GET",
            f"{ORDERS_URL}/1000001",
            None,
        )
        assert outcome.kind is OutcomeKind.SUCCESS
        assert (outcome.vendor_order_id, outcome.vendor_status) == ("1000001", "InProcess")

    @pytest.mark.parametrize(
        ("value", "name"), [(-1, "Canceled"), (3, "Completed"), (200, "OnHold"), (7, "7")]
    )
    def test_every_order_status_has_its_swagger_name(self, value: int, name: str) -> None:
        answer = {**ORDER_ANSWER, "Statuses": {"OrderStatus": value}}

        outcome = self.vendor().read(job("get_status"), VendorResponse.make(200, answer))

        assert outcome.vendor_status == name

    def test_an_order_without_statuses_is_an_unreadable_answer(self) -> None:
        outcome = self.vendor().read(job("get_status"), VendorResponse.make(200, {"ID": 1}))

        assert outcome.kind is OutcomeKind.UNKNOWN
        assert outcome.error is not None and "Statuses.OrderStatus" in outcome.error.message

    def test_cancel_sets_the_status_code_to_canceled(self) -> None:
        request = self.vendor().translate(job("cancel"))

        assert (request.method, request.url(BASE)) == ("PUT", f"{ORDERS_URL}/StatusCode")
        assert request.json == {"Orders": [1000001], "Status": -1}

    def test_a_cancel_the_vendor_lists_as_updated_is_accepted(self) -> None:
        outcome = self.vendor().read(job("cancel"), VendorResponse.make(200, [1000001]))

        assert outcome.kind is OutcomeKind.SUCCESS
        assert (outcome.vendor_order_id, outcome.vendor_status) == ("1000001", "Canceled")

    def test_a_cancel_left_out_of_the_updated_orders_is_rejected(self) -> None:
        outcome = self.vendor().read(job("cancel"), VendorResponse.make(200, []))

        assert outcome.kind is OutcomeKind.PERMANENT
        assert outcome.error is not None
        assert outcome.error.kind is ErrorKind.VENDOR_REJECTED
        assert "did not cancel order 1000001" in outcome.error.message
        assert outcome.body == "[]"

    def test_a_cancel_answer_that_is_not_a_list_is_unreadable(self) -> None:
        outcome = self.vendor().read(job("cancel"), VendorResponse.make(200, b""))

        assert outcome.kind is OutcomeKind.UNKNOWN
        assert outcome.error is not None and "unreadable" in outcome.error.message

    @pytest.mark.parametrize("operation", ["get_status", "cancel"])
    @pytest.mark.parametrize("bad", ["soo_123", "12.5", "0", "2147483648"])
    def test_a_vendor_order_id_that_is_no_sellercloud_id_is_refused(
        self, operation: str, bad: str
    ) -> None:
        with pytest.raises(TranslationError) as caught:
            self.vendor().translate(job(operation, bad))

        assert caught.value.field == "vendor_order_id"
        assert "SellerCloud order ID" in str(caught.value)

    @pytest.mark.parametrize(
        "answer", [b'"1000001"', b"1000001", b" 1000001\n"]
    )
    def test_the_create_answer_is_the_bare_order_id(self, answer: bytes) -> None:
        outcome = self.vendor().read(self.job(), VendorResponse.make(200, answer))

        assert outcome.vendor_order_id == "1000001"

    @pytest.mark.parametrize("answer", [b"{}", b"true", b"0", b"null", b'"abc"', b""])
    def test_a_create_answer_without_an_order_id_is_unknown(self, answer: bytes) -> None:
        outcome = self.vendor().read(self.job(), VendorResponse.make(200, answer))

        assert outcome.kind is OutcomeKind.UNKNOWN
        assert outcome.body == answer.decode()

    # Account settings

    def test_the_channel_is_a_name_in_any_case_or_a_number_sent_as_the_number(self) -> None:
        for channel, number in (("Local_Store", 0), ("website", 6), (21, 21), ("42", 42)):
            vendor = SellerCloud(account(company_id=1, channel=channel))
            body = vendor.translate(self.job()).json

            assert body["OrderDetails"]["Channel"] == number, channel

    def test_the_company_id_may_come_as_text_from_the_environment(self) -> None:
        vendor = SellerCloud(account(company_id="7", channel="Website"))

        assert vendor.translate(self.job()).json["OrderDetails"]["CompanyID"] == 7

    @pytest.mark.parametrize(
        ("options", "variable", "why"),
        [
            ({"channel": "Website"}, "COMPANY_ID", "Field required"),
            ({"company_id": 1}, "CHANNEL", "Field required"),
            ({"company_id": 0, "channel": "Website"}, "COMPANY_ID", "greater than 0"),
            ({"company_id": "one", "channel": "Website"}, "COMPANY_ID", "integer"),
            ({"company_id": 1, "channel": "Shopify"}, "CHANNEL", "not a SellerCloud channel"),
            ({"company_id": 1, "channel": 8}, "CHANNEL", "Local_Store (0)"),
            ({"company_id": 1, "channel": 0, "chanel": 1}, "CHANEL", "Extra inputs"),
        ],
    )
    def test_a_missing_or_wrong_option_names_its_variable(
        self, options: dict[str, Any], variable: str, why: str
    ) -> None:
        with pytest.raises(ConfigurationError) as caught:
            SellerCloud(account(**options))

        message = str(caught.value)
        assert f"ORDER_DISPATCH_ACCOUNTS__SELLERCLOUD__DEFAULT__OPTIONS__{variable}" in message
        assert why in message

    # Limits and what the vendor requires

    @pytest.mark.parametrize(
        ("field", "customer"),
        [
            ("email", {"first_name": "A", "last_name": "B"}),
            ("first_name", {"email": "a@example.com", "last_name": "B"}),
            ("last_name", {"email": "a@example.com", "first_name": "A"}),
        ],
    )
    def test_customer_details_the_vendor_requires_are_refused_when_missing_everywhere(
        self, field: str, customer: dict[str, Any]
    ) -> None:
        ship_to = {"line1": "1 Main St", "city": "Brooklyn", "country": "US"}
        order = {**MINIMAL_ORDER, "customer": customer, "ship_to": ship_to}

        with pytest.raises(TranslationError) as caught:
            self.vendor().translate(self.job({"vendor": "sellercloud", "order": order}))

        assert caught.value.field == f"order.customer.{field}"
        assert "mandatory" in str(caught.value)

    def test_customer_names_and_email_fall_back_to_the_billing_then_the_shipping_address(
        self,
    ) -> None:
        bill_to = {"first_name": "Bill", "line1": "1 Main St", "city": "X", "country": "US"}
        ship_to = {**MINIMAL_ORDER["ship_to"], "email": "ship@example.com"}
        order = {**MINIMAL_ORDER, "customer": {}, "bill_to": bill_to, "ship_to": ship_to}

        body = self.vendor().translate(self.job({"vendor": "sellercloud", "order": order})).json

        assert body["CustomerDetails"] == {
            "Email": "ship@example.com",
            "FirstName": "Bill",
            "LastName": "Hopper",
        }

    def test_a_quantity_beyond_int32_is_refused(self) -> None:
        items = [{"sku": "A", "quantity": 2**31, "unit_price": "1"}]

        with pytest.raises(TranslationError) as caught:
            self.vendor().translate(create_job(items=items, totals={}))

        assert caught.value.field == "order.items.0.quantity"
        assert "int32" in str(caught.value)

    @pytest.mark.parametrize("total", ["tax", "discount"])
    def test_an_order_level_amount_must_be_the_sum_of_the_lines(self, total: str) -> None:
        totals = {**ORDER["totals"], total: "9.99"}

        with pytest.raises(TranslationError) as caught:
            self.vendor().translate(create_job(totals=totals))

        assert caught.value.field == f"order.totals.{total}"
        assert "is 9.99 but the items' amounts add up to" in str(caught.value)

    def test_vendor_options_may_not_replace_our_reference(self) -> None:
        options = {"OrderDetails": {"OrderSourceOrderID": "other"}}

        with pytest.raises(TranslationError) as caught:
            self.vendor().translate(create_job(vendor_options=options))

        assert caught.value.field == "order.vendor_options.OrderDetails.OrderSourceOrderID"

    def test_vendor_options_add_top_level_parts(self) -> None:
        options = {"PaymentDetails": {"PaymentMethod": "Cash"}}

        body = self.vendor().translate(create_job(vendor_options=options)).json

        assert body["PaymentDetails"] == {"PaymentMethod": "Cash"}
        assert body["OrderDetails"]["OrderSourceOrderID"] == "SO-1001"

    def test_money_is_exact_on_the_wire(self) -> None:
        items = [{"sku": "A", "quantity": 3, "unit_price": "19.99", "tax": "0.10"}]
        request = self.vendor().translate(
            create_job(items=items, totals={"shipping": "0.30", "tax": "0.1"})
        )

        body = request.body()

        assert body is not None
        assert b'"SitePrice":19.99' in body.replace(b" ", b"")
        assert b'"LineTaxTotal":0.10' in body.replace(b" ", b"")
        assert b'"ShippingFee":0.30' in body.replace(b" ", b"")
        assert json.loads(body, parse_float=Decimal)["Products"][0]["SitePrice"] == Decimal(
            "19.99"
        )

    def test_metric_weights_and_sizes_are_converted(self) -> None:
        shipping = {
            "weight": {"value": "1", "unit": "kg"},
            "dimensions": {"length": "25.4", "width": "10", "height": "2.54", "unit": "cm"},
        }

        details = self.vendor().translate(create_job(shipping=shipping)).json[
            "ShippingMethodDetails"
        ]

        assert details["Weight"] == {"Ounces": Decimal("35.27")}
        assert details["Dimension"] == {
            "Width": Decimal("3.94"),
            "Height": Decimal("1.00"),
            "Length": Decimal("10.00"),
        }

    @settings(max_examples=50, deadline=None)
    @given(
        text=st.text(
            st.characters(codec="utf-8"), min_size=1, max_size=80
        ).filter(lambda s: s.strip() != "")
    )
    def test_text_survives_the_json_body_intact(self, text: str) -> None:
        tricky = f'{text} & <b> "quoted" \'single\' é 漢字 🙂'
        order_job = create_job(
            customer={"email": "a@example.com", "first_name": text, "last_name": tricky[:255]},
            notes={"customer": tricky},
        )

        body = self.vendor().translate(order_job).body()

        assert body is not None
        sent = json.loads(body)
        assert order_job.order is not None
        assert sent["CustomerDetails"]["FirstName"] == order_job.order.customer.first_name
        assert sent["CustomerDetails"]["LastName"] == order_job.order.customer.last_name
        assert sent["Notes"][0]["Note"] == tricky

    # Auth

    def test_the_token_request_posts_the_username_and_password(self) -> None:
        request = self.vendor().token_request()

        assert (request.method, request.url(BASE)) == ("POST", TOKEN_URL)
        assert request.json == {"Username": "api-user@example.com", "Password": "pa55-w0rd-sc"}

    def test_the_token_lives_as_long_as_the_answer_says_or_sixty_minutes(self) -> None:
        vendor = self.vendor()
        without = VendorResponse.make(200, {"access_token": "t", "token_type": "bearer"})

        assert vendor.parse_token(TOKEN_ANSWER).expires_in_s == 1800
        assert vendor.parse_token(without).expires_in_s == 3600

    @pytest.mark.parametrize("answer", [{"token_type": "bearer"}, {"access_token": ""}, []])
    def test_a_token_answer_without_a_token_is_unreadable(self, answer: Any) -> None:
        with pytest.raises(UnparsableResponse):
            self.vendor().parse_token(VendorResponse.make(200, answer))

    def test_refused_credentials_are_an_auth_failure_without_sending_the_order(self) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            assert str(request.url) == TOKEN_URL, "the order must not be sent"
            return httpx.Response(400, json={"Message": "Username or password is invalid."})

        outcome, seen, _ = run_sender(self.vendor(), self.job(), handler)

        assert outcome.kind is OutcomeKind.PERMANENT
        assert outcome.error is not None and outcome.error.kind is ErrorKind.AUTH
        assert "Username or password is invalid." in outcome.error.message
        assert len(seen) == 1

    def test_the_token_is_sent_as_a_bearer_header(self) -> None:
        _, seen, _ = run_sender(self.vendor(), job("get_status"), self.answering(
            VendorResponse.make(200, ORDER_ANSWER)
        ))

        assert [str(r.url) for r in seen] == [TOKEN_URL, f"{ORDERS_URL}/1000001"]
        assert seen[1].headers["Authorization"] == "Bearer tok-8f3a1c"
        assert "Authorization" not in seen[0].headers

    # Retry hints

    def test_the_rate_limit_reset_time_is_the_wait_when_there_is_no_retry_after(self) -> None:
        reset = datetime.now(UTC) + timedelta(seconds=90)
        in_paris = reset.astimezone(timezone(timedelta(hours=2))).isoformat()
        body = {"Error": "Too many requests.", "RateLimitResetTime": in_paris}

        outcome = self.vendor().read(self.job(), VendorResponse.make(429, body))

        assert outcome.retry_after_s is not None and 85 < outcome.retry_after_s <= 90

    def test_retry_after_wins_over_the_reset_time(self) -> None:
        reset = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        body = {"Error": "Too many requests.", "RateLimitResetTime": reset}

        outcome = self.vendor().read(
            self.job(), VendorResponse.make(429, body, {"Retry-After": "3"})
        )

        assert outcome.retry_after_s == 3.0

    def test_a_reset_time_without_a_zone_is_utc(self) -> None:
        reset = (datetime.now(UTC) + timedelta(seconds=60)).replace(tzinfo=None).isoformat()
        body = {"Error": "Too many requests.", "RateLimitResetTime": reset}

        outcome = self.vendor().read(self.job(), VendorResponse.make(429, body))

        assert outcome.retry_after_s is not None and 55 < outcome.retry_after_s <= 60

    # Reconciliation

    def test_the_duplicate_refusal_means_already_exists_for_creates_only(self) -> None:
        duplicate = next(c for c in ERRORS if c.already_exists).response
        other = ERRORS[0].response

        assert self.vendor().read(self.job(), duplicate).already_exists
        assert not self.vendor().read(job("cancel"), duplicate).already_exists
        assert not self.vendor().read(self.job(), other).already_exists

    def test_the_lookup_asks_for_our_reference_in_the_accounts_company(self) -> None:
        vendor = self.vendor()

        request = vendor.lookup_request(self.job())

        assert request is not None
        assert (request.method, request.url(BASE)) == ("GET", ORDERS_URL)
        assert request.params == {
            "model.orderSourceOrderIDList": "SO-1001",
            "model.companyID": "163",
            "model.pageSize": "50",
        }
        assert vendor.lookup_authoritative
        assert vendor.lookup_request(job("cancel")) is None

    def test_one_matching_order_is_found_with_its_id_and_status(self) -> None:
        answer = {"Items": [summary(1000007, status=2)], "TotalResults": 1}

        lookup = self.vendor().parse_lookup(self.job(), VendorResponse.make(200, answer))

        assert lookup.kind is LookupKind.FOUND
        assert (lookup.vendor_order_id, lookup.vendor_status) == ("1000007", "InProcess")

    def test_no_order_is_not_found(self) -> None:
        answer = {"Items": [], "TotalResults": 0}

        lookup = self.vendor().parse_lookup(self.job(), VendorResponse.make(200, answer))

        assert lookup.kind is LookupKind.NOT_FOUND

    @pytest.mark.parametrize(
        ("answer", "detail"),
        [
            ({"Items": [summary(1), summary(2)], "TotalResults": 2}, "2 orders carry"),
            ({"Items": [summary(1, source="SO-9")], "TotalResults": 1}, "filter applied"),
            ({"Items": [summary(1, company=5)], "TotalResults": 1}, "filter applied"),
            ({"Items": [], "TotalResults": 3}, "filter applied"),
        ],
    )
    def test_an_ambiguous_lookup_cannot_tell(self, answer: dict[str, Any], detail: str) -> None:
        lookup = self.vendor().parse_lookup(self.job(), VendorResponse.make(200, answer))

        assert lookup.kind is LookupKind.UNKNOWN
        assert detail in lookup.detail

    def test_a_refused_lookup_cannot_tell(self) -> None:
        answer = VendorResponse.make(500, {"Message": "An error has occurred."})

        lookup = self.vendor().parse_lookup(self.job(), answer)

        assert lookup.kind is LookupKind.UNKNOWN
        assert "HTTP 500: An error has occurred." in lookup.detail

    @pytest.mark.parametrize(
        "answer", [b'{"Items":[{"ID":10000', b"[]", b'{"Items": 3}', b'{"Items": [{"ID": "x"}]}']
    )
    def test_an_unreadable_lookup_answer_is_an_error(self, answer: bytes) -> None:
        with pytest.raises(UnparsableResponse):
            self.vendor().parse_lookup(self.job(), VendorResponse.make(200, answer))

    def test_the_lookup_goes_out_with_the_token(self) -> None:
        import asyncio

        from order_dispatch.settings import Settings
        from worker.vendors.sender import Sender

        answer = VendorResponse.make(200, {"Items": [summary(1000003)], "TotalResults": 1})
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return as_httpx(TOKEN_ANSWER if str(request.url) == TOKEN_URL else answer)

        async def go() -> Any:
            async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
                return await Sender(client, Settings()).lookup(self.vendor(), self.job())

        lookup = asyncio.run(go())

        assert lookup.kind is LookupKind.FOUND and lookup.vendor_order_id == "1000003"
        assert seen[1].headers["Authorization"] == "Bearer tok-8f3a1c"
        assert dict(seen[1].url.params)["model.orderSourceOrderIDList"] == "SO-1001"

