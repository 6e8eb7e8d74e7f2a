"""Shopatron / Kibo OMS (Integration API v2): historic order import and create order.

Operations:

- ``import`` -> ``POST /api/v2/importOrder/`` (Historic Order Import): an order that already
  exists elsewhere, with ``orderStatus`` from the order's status (``shipped`` -> ``SHIPPED``,
  ``awaiting_shipment`` -> ``READY``, ``cancelled`` -> ``CANCELLED``; the others have no
  equivalent and are refused before sending);
- ``create`` -> ``POST /api/v2/createOrder/``: a new order to fulfil. The body is the import's
  without ``orderStatus``; a ``shipped`` or ``cancelled`` order is refused (it would be fulfilled
  again: import it instead).

Auth: OAuth2 client credentials. ``POST /oauthserver/oauth2/token`` on the base URL, or at the
account option ``token_url`` (Kibo's live token host, ``auth.shopatron.com``, is not the API
host), with ``Authorization: Basic base64(api_key:client_secret)`` and the form
``grant_type=client_credentials``. Every call then carries ``Authorization: Bearer <token>`` and
``API-Key: <api_key>``. The sender caches the token per worker process, fetches it once for all
concurrent tasks, refreshes it before ``expires_in`` runs out and after a 401 or 403.

What the document says, and what we chose where it is silent:

- ``externalOrderID`` ("a client-generated unique identifier", 1-100 characters) is our
  ``order_id``; ``manufacturerID`` and ``catalogID`` are account options;
- ``locale`` is ``en-US``, the documented default; ``currency`` is the order's;
- ``customerIP`` is required and IPv4 only. An import without ``customer.ip`` sends ``0.0.0.0``,
  as the document's own historic import does; a create needs the buyer's address (the document:
  "providing the incorrect address will hinder the fraud review process");
- ``sendEmail`` (default "true"): an import sends ``false`` (the customer was told about the
  order when it happened); a create leaves the vendor's default;
- ``orderPayments``: one payment whose ``paymentType`` is ``payment.type`` (the codes "vary
  depending on implementation"), billed to ``bill_to`` or else ``ship_to``. An import without a
  payment type uses the no-operation type ``NO``, and an imported ``NO`` payment carries
  ``noOperationType`` ``HI``, as in the document's historic import; a create needs a type;
- ``shippingMethod.shippingType`` is ``shipping.requested_service`` or ``shipping.service``, else
  ``standard`` (the document's example); ``importedCreationDate`` (import only) is ``placed_at``;
- the documented address has no name fields: the buyer's name travels in ``customer`` (taken
  from ``customer``, else ``bill_to``, else ``ship_to``); a gift recipient in ``orderGift``;
- item tax, discounts and order totals have no documented field with a known meaning and are not
  sent; ``vendor_options`` is merged into the body for fields the order does not carry
  (``landingCode``, ``fraudData``, ``allowSplit``, ...), except the identity fields
  ``externalOrderID`` and ``manufacturerID`` that reconciliation relies on;
- the success body is not documented: we read ``orderID`` (the vendor's order id) and
  ``orderStatus``;
- errors carry OMS codes (5001-5017, "GENERIC_BAD_REQUEST", "INVALID_REQUEST_DATA", ...). The API
  gateway (Mashery) throttles with a 403 and ``X-Mashery-Error-Code: ERR_403_DEVELOPER_OVER_QPS``
  (or ``..._OVER_RATE``): those are rate limits, not refused credentials.

Idempotency and reconciliation policy: ``externalOrderID`` is our reference, and the order
search (``GET /api/v2/order/?externalOrderID=...&manufacturerID=...``) finds an order by it.
A create or import whose answer was lost is looked up: found -> ``accepted`` with the vendor's
``orderID``, marked reconciled; an empty answer (``totalCount`` 0) is taken as proof that the
vendor never stored the order (``lookup_authoritative``), and the request is sent again; any
other answer (the search refuses the parameter, ignores it, or shows several orders) leaves the
job ``in_doubt`` for a person. The vendor's refusal of a duplicate ``externalOrderID`` (400 with
code 5015 naming ``externalOrderID``) is an "already have it" answer and is reconciled the same
way, so sending an order twice ends with the first order's id. The document does not say that
duplicates are refused; if the vendor accepted them and its search lagged behind its writes, a
resend after a lost answer could make a second order.
"""

from __future__ import annotations

import base64
import ipaddress
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from order_dispatch.contract import (
    Address,
    ErrorKind,
    Item,
    Job,
    NormalizedOrder,
    OrderStatus,
)
from worker.outcomes import Outcome, OutcomeKind
from worker.vendors.base import (
    Lookup,
    TranslationError,
    Translator,
    UnparsableResponse,
    VendorAdapter,
    VendorRequest,
    VendorResponse,
    check_length,
    require,
)

TOKEN_PATH = "/oauthserver/oauth2/token"
IMPORT_PATH = "/api/v2/importOrder/"
CREATE_PATH = "/api/v2/createOrder/"
SEARCH_PATH = "/api/v2/order/"

LOCALE = "en-US"
#: "addressLine1, addressLine2, and addressLine3" each "supports up to 250 characters".
ADDRESS_LINE_MAX = 250
#: "orderComment string The customer-entered order comments field. The maximum length is 1000."
ORDER_COMMENT_MAX = 1000
#: Custom order data: names of 1 to 100 characters, values of 1 to 1000.
CUSTOM_NAME_MAX = 100
CUSTOM_VALUE_MAX = 1000
#: Documented length bounds of top-level text a producer may pass in ``vendor_options``.
OPTION_TEXT_BOUNDS = {
    "cartID": (0, 512),
    "orderComment": (0, ORDER_COMMENT_MAX),
    "landingCode": (10, 200),
}
#: Top-level fields reconciliation depends on; ``vendor_options`` may not replace them.
IDENTITY_FIELDS = ("externalOrderID", "manufacturerID")

#: "orderStatus enum The status that the order is in at the time of import (SHIPPED, READY, or
#: CANCELLED)."
IMPORT_STATUS = {
    OrderStatus.SHIPPED: "SHIPPED",
    OrderStatus.AWAITING_SHIPMENT: "READY",
    OrderStatus.CANCELLED: "CANCELLED",
}
#: "NO: No-Operation", with the document's historic import's ``"noOperationType":"HI"``.
NO_OPERATION_PAYMENT = "NO"
HISTORIC_NO_OPERATION = "HI"
DEFAULT_SHIPPING_TYPE = "standard"
#: The customer's fields the vendor needs (ours -> theirs).
CUSTOMER_FIELDS = (("first_name", "firstName"), ("last_name", "lastName"), ("email", "email"))
#: The document's own historic import sends this when the buyer's address is unknown.
UNKNOWN_CUSTOMER_IP = "0.0.0.0"

_REJECTED = (OutcomeKind.PERMANENT, ErrorKind.VENDOR_REJECTED)
#: OMS codes (Kibo's status-code page) and the Mashery gateway's throttling codes. 5001
#: GENERIC_UNAVAILABLE and 5006 GENERIC_SERVER_ERROR mean what their HTTP status (503, 500, or
#: 429 when throttled) says, so the status decides for them.
ERROR_CODES: dict[str, tuple[OutcomeKind, ErrorKind]] = {
    "5002": _REJECTED,  # GENERIC_NOT_FOUND
    "5003": _REJECTED,  # GENERIC_BAD_REQUEST
    "5004": (OutcomeKind.PERMANENT, ErrorKind.AUTH),  # GENERIC_NOT_AUTHORIZED
    "5005": _REJECTED,  # GENERIC_NOT_ALLOWED
    "5010": _REJECTED,  # MISSING_QUERY_PARAM
    "5011": _REJECTED,  # MISSING_REQUEST_DATA
    "5012": _REJECTED,  # ID_MISMATCH
    "5013": _REJECTED,  # INVALID_ID
    "5014": _REJECTED,  # INVALID_QUERY_PARAM
    "5015": _REJECTED,  # INVALID_REQUEST_DATA
    "5016": _REJECTED,  # UNSUPPORTED_QUERY_PARAM
    "5017": _REJECTED,  # NO_VALID_QUERY_PARAMS
    "ERR_403_DEVELOPER_OVER_QPS": (OutcomeKind.RETRYABLE, ErrorKind.RATE_LIMITED),
    "ERR_403_DEVELOPER_OVER_RATE": (OutcomeKind.RETRYABLE, ErrorKind.RATE_LIMITED),
    "ERR_403_SERVICE_OVER_QPS": (OutcomeKind.RETRYABLE, ErrorKind.RATE_LIMITED),
}
DUPLICATE_CODE = "5015"


class ShopatronOptions(BaseModel):
    """A Shopatron account's options: the merchant's ids every order carries, and where the
    token server lives when it is not on the API host."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    manufacturer_id: int = Field(ge=1, description="manufacturerID: 'The minimum value is 1'.")
    catalog_id: int = Field(ge=0, description="catalogID: 'The minimum value is 0'.")
    token_url: HttpUrl | None = Field(
        None,
        description="Absolute URL of the OAuth2 token endpoint (default: the base URL's "
        "/oauthserver/oauth2/token).",
    )


class ShopatronTranslator(Translator[ShopatronOptions]):
    """Normalized jobs -> Kibo OMS ``importOrder`` and ``createOrder`` requests."""

    vendor = "shopatron"

    def import_order(self, job: Job) -> VendorRequest:
        """``POST /api/v2/importOrder/`` with ``orderStatus`` from the order's status."""
        return VendorRequest("POST", IMPORT_PATH, json=self._body(job, importing=True))

    def create(self, job: Job) -> VendorRequest:
        """``POST /api/v2/createOrder/``."""
        return VendorRequest("POST", CREATE_PATH, json=self._body(job, importing=False))

    def _body(self, job: Job, *, importing: bool) -> dict[str, Any]:
        order = job.order
        assert order is not None
        options = self.options
        body: dict[str, Any] = {
            "externalOrderID": order.order_id,
            "manufacturerID": options.manufacturer_id,
            "catalogID": options.catalog_id,
            "locale": LOCALE,
            "currency": order.currency,
        }
        if importing:
            body["orderStatus"] = _import_status(order.status)
            body["importedCreationDate"] = order.placed_at.isoformat()
            body["sendEmail"] = False
        elif order.status in (OrderStatus.SHIPPED, OrderStatus.CANCELLED):
            raise TranslationError(
                "order.status",
                f"a create makes a new order to fulfil, not a {order.status.value!r} one; "
                "send it with operation 'import'",
            )
        body["customer"] = _customer(order)
        body["customerIP"] = _customer_ip(order, importing=importing)
        body["orderItems"] = [_item(item, n) for n, item in enumerate(order.items)]
        shipping = order.shipping
        body["shippingMethod"] = {
            "shippingType": shipping.requested_service or shipping.service or DEFAULT_SHIPPING_TYPE
        }
        body["shippingAddress"] = _address(order.ship_to, "order.ship_to")
        body["orderPayments"] = [_payment(order, importing=importing)]
        if order.gift is not None and (order.gift.recipient or order.gift.message):
            gift = {"recipient": order.gift.recipient, "message": order.gift.message}
            body["orderGift"] = {k: v for k, v in gift.items() if v}
        if order.notes is not None and order.notes.customer:
            body["orderComment"] = check_length(
                "order.notes.customer", order.notes.customer, ORDER_COMMENT_MAX
            )
        if order.custom:
            body["customOrderData"] = _custom_data(order.custom)
        _check_vendor_options(order.vendor_options)
        return body


def _import_status(status: OrderStatus) -> str:
    try:
        return IMPORT_STATUS[status]
    except KeyError:
        raise TranslationError(
            "order.status",
            f"Shopatron imports shipped, awaiting_shipment (READY) or cancelled orders, not "
            f"{status.value!r}",
        ) from None


def _customer(order: NormalizedOrder) -> dict[str, Any]:
    """The buyer; names and email fall back to the billing, then the shipping address."""
    customer = order.customer
    sources = [a for a in (order.bill_to, order.ship_to) if a is not None]
    out: dict[str, Any] = {}
    for ours, theirs in CUSTOMER_FIELDS:
        value = getattr(customer, ours) or next(
            (getattr(a, ours) for a in sources if getattr(a, ours)), None
        )
        if not value:
            raise TranslationError(
                f"order.customer.{ours}",
                "is required by this vendor (and neither bill_to nor ship_to has one)",
            )
        out[theirs] = value
    if customer.phone:
        out["phone1"] = customer.phone
    return out


def _customer_ip(order: NormalizedOrder, *, importing: bool) -> str:
    ip = order.customer.ip
    if not ip:
        if importing:
            return UNKNOWN_CUSTOMER_IP
        raise TranslationError(
            "order.customer.ip",
            "is required by this vendor to create an order: the buyer's external IPv4 address, "
            "used for fraud review",
        )
    try:
        ipaddress.IPv4Address(ip)
    except ValueError:
        raise TranslationError(
            "order.customer.ip", f"{ip!r} is not an IPv4 address; the vendor accepts only IPv4"
        ) from None
    return ip


def _item(item: Item, n: int) -> dict[str, Any]:
    path = f"order.items.{n}"
    product: dict[str, Any] = {
        "partNumber": item.sku,
        # "the crucial elements in this structure include: Part Number Price and Quantity Name"
        "name": require(f"{path}.name", item.name),
    }
    if item.upc:
        product["UPC"] = item.upc
    specifics: dict[str, Any] = {"actualPrice": item.unit_price, "quantity": item.quantity}
    if item.line_id:
        specifics["externalItemID"] = item.line_id
    if item.image_url:
        specifics["customItemData"] = {"image_url": item.image_url}
    if item.options:
        specifics["options"] = dict(item.options)
    return {"product": product, "itemSpecifics": specifics}


def _address(address: Address, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n, line in enumerate((address.line1, address.line2, address.line3), start=1):
        if line:
            out[f"addressLine{n}"] = check_length(f"{path}.line{n}", line, ADDRESS_LINE_MAX)
    out["city"] = address.city
    if address.region:
        out["state"] = address.region
    out["postalCode"] = require(f"{path}.postal_code", address.postal_code)
    out["countryCode"] = address.country
    if address.phone:
        out["phone"] = address.phone
    return out


def _payment(order: NormalizedOrder, *, importing: bool) -> dict[str, Any]:
    payment = order.payment
    payment_type = payment.type if payment is not None else None
    if order.bill_to is not None:
        billing = _address(order.bill_to, "order.bill_to")
    else:
        billing = _address(order.ship_to, "order.ship_to")
    if not payment_type and not importing:
        raise TranslationError(
            "order.payment.type",
            "is required by this vendor to create an order (a payment type code such as CC, PP "
            "or NO; the codes vary by merchant)",
        )
    method: dict[str, Any] = {
        "billingAddress": billing,
        "paymentType": payment_type or NO_OPERATION_PAYMENT,
    }
    if importing and method["paymentType"] == NO_OPERATION_PAYMENT:
        method["noOperationType"] = HISTORIC_NO_OPERATION
    out: dict[str, Any] = {"paymentMethod": method}
    if payment is not None:
        fields = (
            ("transactionID", payment.transaction_id),
            ("authorizationID", payment.authorization_id),
            ("authAmount", payment.amount),
        )
        out.update((theirs, value) for theirs, value in fields if value is not None)
    return out


def _custom_data(custom: dict[str, str]) -> dict[str, str]:
    for name, value in custom.items():
        path = f"order.custom.{name}"
        if not 1 <= len(name) <= CUSTOM_NAME_MAX:
            raise TranslationError(
                path,
                f"the name is {len(name)} characters; the vendor accepts 1 to {CUSTOM_NAME_MAX}",
            )
        if not value:
            raise TranslationError(
                path, f"is empty; the vendor accepts 1 to {CUSTOM_VALUE_MAX} characters"
            )
        check_length(path, value, CUSTOM_VALUE_MAX)
    return dict(custom)


def _check_vendor_options(extra: dict[str, Any]) -> None:
    """The documented bounds of top-level text passed in ``vendor_options`` (the base merges
    them, and refuses the identity fields)."""
    for key, value in extra.items():
        path = f"order.vendor_options.{key}"
        bounds = OPTION_TEXT_BOUNDS.get(key)
        if bounds is not None and isinstance(value, str):
            low, high = bounds
            if len(value) < low:
                raise TranslationError(
                    path, f"is {len(value)} characters; the vendor accepts at least {low}"
                )
            check_length(path, value, high)


class Shopatron(VendorAdapter[ShopatronOptions]):
    """Kibo OMS: OAuth2 client credentials plus ``API-Key``; lookup by ``externalOrderID``."""

    name = "shopatron"
    translator_class = ShopatronTranslator
    options_model = ShopatronOptions
    error_codes = ERROR_CODES
    already_exists_codes = frozenset({DUPLICATE_CODE})
    lookup_authoritative = True
    reserved_options = dict.fromkeys(
        IDENTITY_FIELDS,
        "is set from the order and the account; looking the order up depends on it",
    )

    def _credential(self, name: str) -> str:
        value = self.account.secret(name)
        assert value is not None
        return value

    def _basic_credentials(self) -> str:
        pair = f"{self._credential('api_key')}:{self._credential('client_secret')}"
        return base64.b64encode(pair.encode()).decode()

    def secrets(self) -> list[str]:
        """The credentials and their Base64 pair sent to the token endpoint."""
        return [*super().secrets(), self._basic_credentials()]

    # Auth

    def token_request(self) -> VendorRequest:
        """``POST /oauthserver/oauth2/token`` (or ``token_url``): Basic auth, form body."""
        return VendorRequest(
            "POST",
            str(self.options.token_url or TOKEN_PATH),
            content=urlencode({"grant_type": "client_credentials"}).encode(),
            headers={
                "Authorization": f"Basic {self._basic_credentials()}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )

    def authorize(self, request: VendorRequest, token: str | None) -> VendorRequest:
        """Adds ``Authorization: Bearer`` and ``API-Key``: the API wants both."""
        assert token is not None
        return request.with_headers(
            **{
                "Authorization": f"Bearer {token}",
                "API-Key": self._credential("api_key"),
                "Accept": "application/json",
            }
        )

    # Reading

    def parse_success(self, job: Job, response: VendorResponse) -> Outcome:
        """``orderID`` (the vendor's id) and ``orderStatus`` of the placed order."""
        data = response.json_object()
        order_id = _order_id(data)
        if order_id is None:
            raise UnparsableResponse(f"no orderID in the answer (got {data.get('orderID')!r})")
        external = data.get("externalOrderID")
        if external is not None and str(external) != job.ref:
            raise UnparsableResponse(
                f"the answer is about externalOrderID {external!r}, not {job.ref!r}"
            )
        status = data.get("orderStatus")
        return Outcome.success(
            order_id,
            status if isinstance(status, str) else None,
            http_status=response.status,
            body=response.text,
        )

    def error_detail(self, response: VendorResponse) -> tuple[str | None, str]:
        """The gateway's throttling code (``X-Mashery-Error-Code``) when there is one, else the
        OMS code and message of the body."""
        gateway_code = response.headers.get("X-Mashery-Error-Code")
        if gateway_code:
            return gateway_code, response.text.strip()[:500] or gateway_code
        return super().error_detail(response)

    def already_exists(
        self, job: Job, response: VendorResponse, code: str | None, message: str
    ) -> bool:
        """5015 about ``externalOrderID``. 5015 (INVALID_REQUEST_DATA) is any bad value, but the
        reference is checked before sending, so only its being taken is left to refuse."""
        if not super().already_exists(job, response, code, message):
            return False
        try:
            field = response.json_object().get("field")
        except UnparsableResponse:
            field = None
        return field == "externalOrderID" or "externalorderid" in message.lower()

    # Reconciliation

    def lookup_request(self, job: Job) -> VendorRequest:
        """``GET /api/v2/order/?externalOrderID=...&manufacturerID=...``."""
        return VendorRequest(
            "GET",
            SEARCH_PATH,
            params={
                "externalOrderID": job.ref,
                "manufacturerID": str(self.options.manufacturer_id),
            },
        )

    def parse_lookup(self, job: Job, response: VendorResponse) -> Lookup:
        """``{totalCount, collection}``: one order with our reference is found; an empty answer
        is not found; anything else cannot tell."""
        if not response.ok:
            code, message = self.error_detail(response)
            return Lookup.unknown(
                f"the order search answered {response.status}"
                + (f" ({code})" if code else "")
                + f": {message}"
            )
        data = response.json_object()
        collection = data.get("collection")
        total = data.get("totalCount")
        if not isinstance(collection, list) or not isinstance(total, int):
            raise UnparsableResponse("expected {totalCount, collection}")
        manufacturer = self.options.manufacturer_id
        ours = [
            o
            for o in collection
            if isinstance(o, dict)
            and str(o.get("externalOrderID")) == job.ref
            and str(o.get("manufacturerID", manufacturer)) == str(manufacturer)
        ]
        ids = [_order_id(o) for o in ours]
        if len(ours) > 1:
            return Lookup.unknown(
                f"{len(ours)} orders hold externalOrderID {job.ref!r}: {', '.join(map(str, ids))}"
            )
        if ours:
            if ids[0] is None:
                raise UnparsableResponse("the order found has no orderID")
            status = ours[0].get("orderStatus")
            return Lookup.found(ids[0], status if isinstance(status, str) else None)
        if total == 0 and not collection:
            return Lookup.not_found()
        return Lookup.unknown(
            f"the search answered {total} order(s), none with externalOrderID {job.ref!r} "
            "(it may not filter by externalOrderID)"
        )


def _order_id(data: dict[str, Any]) -> str | None:
    value = data.get("orderID")
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        return None
    return str(value)
