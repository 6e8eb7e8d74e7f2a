"""SourceOrders adapter: the shared vendor contract plus SourceOrders' own cases.

Fixtures (the document's own request and answer) come first, then the tests."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from order_dispatch.contract import ErrorKind, Job, Operation
from order_dispatch.settings import VendorAccount
from tests.vendors.contract import ErrorCase, ExpectedRequest, VendorContract
from worker.outcomes import OutcomeKind
from worker.vendors.base import UnsupportedOperation, VendorResponse
from worker.vendors.sourceorders import SourceOrders

ACCOUNT = VendorAccount(base_url="https://api.sourceorders.test/", credentials={"api_key": "k-123"})
URL = "https://api.sourceorders.test/v1/orders"


ORDER: dict[str, Any] = {
    "order_id": "A-1",
    "placed_at": "2023-08-01T14:37:54Z",
    "customer": {"email": "michael.scott@test.com"},
    "ship_to": {
        "first_name": "Michael",
        "last_name": "Scott",
        "company": "Dunder Mifflin",
        "line1": "741 Spiral Blvd",
        "city": "Hastings",
        "region": "MN",
        "postal_code": "55033",
        "country": "US",
        "phone": "866-207-0447",
    },
    "items": [
        {
            "sku": "sop_0123456789",
            "quantity": 1,
            "unit_price": "10",
            "attributes": {"link": "https://www.example.com"},
        }
    ],
}

# The document's own create request, with the keys our order fills.
EXPECTED_CREATE_BODY = {
    "items": [
        {
            "attributes": [{"name": "link", "value": "https://www.example.com"}],
            "quantity": 1,
            "skuCode": "sop_0123456789",
        }
    ],
    "shippingAddress": {
        "city": "Hastings",
        "company": "Dunder Mifflin",
        "country": "US",
        "email": "michael.scott@test.com",
        "firstName": "Michael",
        "lastName": "Scott",
        "phone": "866-207-0447",
        "phoneExt": "",
        "postalCode": "55033",
        "stateOrProvince": "MN",
        "street1": "741 Spiral Blvd",
        "street2": "",
    },
}

VENDOR_ANSWER = {
    "createdDate": "2023-08-01T14:37:54.869Z",
    "items": [
        {
            "attributes": [{"name": "link", "value": "https://www.example.com"}],
            "itemId": "soi_0123456789",
            "quantity": 1,
            "skuCode": "sop_0123456789",
        }
    ],
    "lastUpdatedDate": "2023-10-15T14:37:54.869Z",
    "merchantId": "som_0123456789",
    "orderId": "soo_3299399716",
    "promisedArrivalDate": "2023-11-07Z",
    "shippingAddress": EXPECTED_CREATE_BODY["shippingAddress"],
    "status": "RECEIVED",
}

MINIMAL_ORDER: dict[str, Any] = {
    "order_id": "A-2",
    "placed_at": "2023-08-01T14:37:54Z",
    "ship_to": {"line1": "741 Spiral Blvd", "city": "Hastings", "country": "US"},
    "items": [{"sku": "sop_1", "quantity": 2, "unit_price": "0"}],
}

FULL_REQUEST = ExpectedRequest(
    "POST", URL, headers={"X-API-KEY": "k-123"}, json=EXPECTED_CREATE_BODY
)
MINIMAL_REQUEST = ExpectedRequest(
    "POST",
    URL,
    headers={"X-API-KEY": "k-123"},
    json={
        "items": [{"attributes": [], "quantity": 2, "skuCode": "sop_1"}],
        "shippingAddress": {
            "city": "Hastings",
            "company": "",
            "country": "US",
            "phone": "",
            "phoneExt": "",
            "street1": "741 Spiral Blvd",
            "street2": "",
        },
    },
)
ERRORS = [
    ErrorCase(
        "validation",
        VendorResponse.make(
            400, {"error": "Bad Request", "message": "items[0].skuCode is required"}
        ),
        OutcomeKind.PERMANENT,
        ErrorKind.VENDOR_REJECTED,
        message="items[0].skuCode is required",
        code="Bad Request",
    ),
    ErrorCase(
        "bad key",
        VendorResponse.make(
            401, {"error": "Unauthorized", "message": "Missing or invalid API key"}
        ),
        OutcomeKind.PERMANENT,
        ErrorKind.AUTH,
        message="Missing or invalid API key",
    ),
    ErrorCase(
        "unknown order",
        VendorResponse.make(404, {"error": "Not Found", "message": "Order soo_1 not found"}),
        OutcomeKind.PERMANENT,
        ErrorKind.VENDOR_REJECTED,
        message="Order soo_1 not found",
    ),
    ErrorCase(
        "request timeout", VendorResponse.make(408, {}), OutcomeKind.RETRYABLE, ErrorKind.TIMEOUT
    ),
    ErrorCase(
        "html 500",
        VendorResponse.make(500, "<html>oops</html>"),
        OutcomeKind.RETRYABLE,
        ErrorKind.VENDOR_UNAVAILABLE,
        message="<html>oops</html>",
    ),
]


class TestSourceOrders(VendorContract):
    vendor_cls = SourceOrders
    account = ACCOUNT

    full_job: ClassVar[dict[str, Any]] = {"vendor": "sourceorders", "order": ORDER}
    full_request = FULL_REQUEST
    minimal_job: ClassVar[dict[str, Any]] = {"vendor": "sourceorders", "order": MINIMAL_ORDER}
    minimal_request = MINIMAL_REQUEST
    success = VendorResponse.make(200, VENDOR_ANSWER)
    success_vendor_order_id = "soo_3299399716"
    success_vendor_status = "RECEIVED"
    errors = ERRORS
    unparsable = VendorResponse.make(200, '{"orderId": "soo_12')

    def test_update_address_sends_only_the_changed_fields(self) -> None:
        job = Job.model_validate(
            {
                "vendor": "sourceorders",
                "operation": "update_address",
                "order_id": "A-1",
                "vendor_order_id": "soo_3299399716",
                "address": {"company": "Michael Scott Paper Company", "phone": "800-555-1234"},
            }
        )

        request = self.vendor().translate(job)

        assert (request.method, request.path) == ("PUT", "/v1/orders/soo_3299399716")
        assert request.json == {
            "shippingAddress": {"company": "Michael Scott Paper Company", "phone": "800-555-1234"}
        }

    def test_get_status_reads_the_order(self) -> None:
        job = Job.model_validate(
            {
                "vendor": "sourceorders",
                "operation": "get_status",
                "order_id": "A-1",
                "vendor_order_id": "soo_1",
            }
        )

        request = self.vendor().translate(job)

        assert (request.method, request.path, request.json) == ("GET", "/v1/orders/soo_1", None)

    def test_cancel_is_refused_at_the_door_and_by_the_translator(self) -> None:
        with pytest.raises(ValueError, match="sourceorders does not support operation 'cancel'"):
            Job.model_validate(
                {
                    "vendor": "sourceorders",
                    "operation": "cancel",
                    "order_id": "A",
                    "vendor_order_id": "soo_1",
                }
            )
        job = Job.model_construct(
            vendor="sourceorders", operation=Operation.CANCEL, order_id="A", vendor_order_id="x"
        )
        with pytest.raises(UnsupportedOperation, match="does not support 'cancel'"):
            self.vendor().translate(job)

    @pytest.mark.parametrize("answer", ['{"status": "RECEIVED"}', "[]", "{}"])
    def test_an_answer_without_a_soo_id_is_unknown(self, answer: str) -> None:
        outcome = self.vendor().read(self.job(), VendorResponse.make(200, answer))

        assert outcome.kind is OutcomeKind.UNKNOWN
        assert outcome.body == answer

    def test_create_is_not_repeat_safe_but_reads_and_address_puts_are(self) -> None:
        vendor = self.vendor()

        assert [vendor.repeat_safe(op) for op in SourceOrders.operations] == [
            op is not Operation.CREATE for op in SourceOrders.operations
        ]

    def test_there_is_no_lookup_by_our_reference(self) -> None:
        assert self.vendor().lookup_request(self.job()) is None
