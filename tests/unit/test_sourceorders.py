"""SourceOrders adapter: golden translation, request shape, parsing, classification.

The same groups as every vendor's file: translation, request, success parse, error parse,
unparsable answer, 429 / 5xx / timeout classification, missing credentials.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from order_dispatch.contract import Job, Operation
from order_dispatch.settings import VendorAccount
from worker.outcomes import OutcomeKind
from worker.vendors.base import ConfigurationError, UnsupportedOperation
from worker.vendors.sourceorders import SourceOrdersSubmitter, SourceOrdersTranslator

ACCOUNT = VendorAccount(base_url="https://api.sourceorders.test/", credentials={"api_key": "k-123"})


def create_job() -> Job:
    return Job.model_validate({"vendor": "sourceorders", "order": ORDER})


def submitter(handler: Callable[[httpx.Request], httpx.Response]) -> SourceOrdersSubmitter:
    return SourceOrdersSubmitter(httpx.Client(transport=httpx.MockTransport(handler)), ACCOUNT)


def test_create_translates_to_the_documented_body() -> None:
    request = SourceOrdersTranslator(ACCOUNT).request_for(create_job())

    assert (request.method, request.path) == ("POST", "/v1/orders")
    assert request.json == EXPECTED_CREATE_BODY


def test_update_address_sends_only_the_changed_fields() -> None:
    job = Job.model_validate(
        {
            "vendor": "sourceorders",
            "operation": "update_address",
            "order_id": "A-1",
            "vendor_order_id": "soo_3299399716",
            "address": {"company": "Michael Scott Paper Company", "phone": "800-555-1234"},
        }
    )

    request = SourceOrdersTranslator(ACCOUNT).request_for(job)

    assert (request.method, request.path) == ("PUT", "/v1/orders/soo_3299399716")
    assert request.json == {
        "shippingAddress": {"company": "Michael Scott Paper Company", "phone": "800-555-1234"}
    }


def test_cancel_is_refused_as_unsupported() -> None:
    job = Job.model_validate(
        {
            "vendor": "sourceorders",
            "operation": "cancel",
            "order_id": "A",
            "vendor_order_id": "soo_1",
        }
    )

    with pytest.raises(UnsupportedOperation, match="does not support 'cancel'"):
        SourceOrdersTranslator(ACCOUNT).request_for(job)


def test_submit_sends_the_key_header_to_the_account_url() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=VENDOR_ANSWER)

    s = submitter(handler)
    outcome = s.submit(create_job(), s.translate(create_job()))

    assert str(seen[0].url) == "https://api.sourceorders.test/v1/orders"
    assert seen[0].headers["X-API-KEY"] == "k-123"
    assert json.loads(seen[0].content) == EXPECTED_CREATE_BODY
    assert outcome.kind is OutcomeKind.SUCCESS
    assert (outcome.vendor_order_id, outcome.vendor_status) == ("soo_3299399716", "RECEIVED")


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "error_kind", "retry_after"),
    [
        (
            400,
            {"error": "Bad Request", "message": "items[0].skuCode is required"},
            {},
            OutcomeKind.PERMANENT,
            "vendor_rejected",
            None,
        ),
        (
            401,
            {"error": "Unauthorized", "message": "Missing or invalid API key"},
            {},
            OutcomeKind.PERMANENT,
            "auth",
            None,
        ),
        (
            404,
            {"error": "Not Found", "message": "Order soo_1 not found"},
            {},
            OutcomeKind.PERMANENT,
            "vendor_rejected",
            None,
        ),
        (408, {}, {}, OutcomeKind.RETRYABLE, "timeout", None),
        (
            429,
            {"message": "slow down"},
            {"Retry-After": "7"},
            OutcomeKind.RETRYABLE,
            "rate_limited",
            7.0,
        ),
        (503, {"message": "down"}, {}, OutcomeKind.RETRYABLE, "vendor_unavailable", None),
        (500, "<html>oops</html>", {}, OutcomeKind.RETRYABLE, "vendor_unavailable", None),
    ],
)
def test_answers_are_classified(
    status: int,
    body: str | dict[str, str],
    headers: dict[str, str],
    kind: OutcomeKind,
    error_kind: str,
    retry_after: float | None,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    s = submitter(handler)
    outcome = s.submit(create_job(), s.translate(create_job()))

    assert outcome.kind is kind
    assert outcome.error is not None and outcome.error.kind == error_kind
    assert outcome.error.http_status == status
    assert outcome.retry_after_s == retry_after
    if isinstance(body, dict) and body.get("message"):
        assert outcome.error.message == body["message"]


@pytest.mark.parametrize("answer", ['{"orderId": "soo_12', '{"status": "RECEIVED"}', "[]"])
def test_an_unreadable_2xx_is_an_unknown_outcome(answer: str) -> None:
    s = submitter(lambda r: httpx.Response(200, text=answer))

    outcome = s.submit(create_job(), s.translate(create_job()))

    assert outcome.kind is OutcomeKind.UNKNOWN
    assert outcome.body == answer


@pytest.mark.parametrize(
    ("exc", "kind", "error_kind"),
    [
        (httpx.ConnectError("refused"), OutcomeKind.RETRYABLE, "transport"),
        (httpx.ConnectTimeout("slow"), OutcomeKind.RETRYABLE, "timeout"),
        (httpx.ReadTimeout("slow"), OutcomeKind.UNKNOWN, "timeout"),
        (httpx.RemoteProtocolError("dropped"), OutcomeKind.UNKNOWN, "transport"),
    ],
)
def test_transport_errors_say_whether_the_request_may_have_arrived(
    exc: Exception, kind: OutcomeKind, error_kind: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    s = submitter(handler)
    outcome = s.submit(create_job(), s.translate(create_job()))

    assert (outcome.kind, outcome.error and outcome.error.kind) == (kind, error_kind)


def test_missing_api_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="'api_key'"):
        SourceOrdersSubmitter(httpx.Client(), VendorAccount(base_url="https://x"))


def test_create_is_not_repeat_safe_but_reads_and_address_puts_are() -> None:
    s = submitter(lambda r: httpx.Response(200))

    assert [
        s.repeat_safe(op)
        for op in (Operation.CREATE, Operation.GET_STATUS, Operation.UPDATE_ADDRESS)
    ] == [
        False,
        True,
        True,
    ]


ORDER: dict[str, object] = {
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
