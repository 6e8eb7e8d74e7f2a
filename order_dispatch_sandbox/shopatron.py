"""Shopatron / Kibo OMS simulator: ``/shopatron/...`` (docs: shopatron.txt, NOTES.md §3).

Endpoints (the real hosts are ``auth.shopatron.com`` for the token and
``integration.shopatron.com`` for the rest; here both live under the one prefix):

- ``POST /oauthserver/oauth2/token`` — OAuth2 client credentials;
- ``POST /api/v2/importOrder/`` — Historic Order Import;
- ``POST /api/v2/createOrder/`` — Create Order;
- ``GET  /api/v2/order/?...`` — order search.

Documented (the vendor page and NOTES.md §3):

- auth: form body ``grant_type=client_credentials`` with ``Authorization: Basic
  base64(apikey:secret)``; the answer holds ``access_token``; tokens are valid "normally 1 hour",
  expiry "defined in the response"; later calls send ``Authorization: Bearer <token>`` **and**
  ``API-Key: <api key>``; clients re-acquire "before expiry or on 401 or 403";
- importOrder's table of parameters "necessary ... to return a successful response":
  externalOrderID (string, length 1-100, "client-generated unique"), manufacturerID (integer ≥ 1),
  catalogID (integer ≥ 0), locale, currency (ISO enum), customer, orderItems, shippingMethod,
  shippingAddress, orderPayments, customerIP (IPv4), sendEmail (boolean), orderStatus
  (SHIPPED | READY | CANCELLED); optional ones with their bounds (orderID ≥ 1, cartID ≤ 512,
  shippingTax ≥ 0, shippingTaxRate ≥ 0, orderComment ≤ 1000, landingCode 10-200, ...);
  billing addressLine1..3 up to 250 characters; ``forceItemTaxOverride`` makes
  ``orderItem -> itemSpecifics -> itemTaxOverride`` required;
- createOrder: the same, without orderStatus, assignedLocation and useInventory;
- OMS codes: 5001 GENERIC_UNAVAILABLE (503), 5002 NOT_FOUND (404), 5003 GENERIC_BAD_REQUEST (400),
  5004 GENERIC_NOT_AUTHORIZED (403), 5006 GENERIC_SERVER_ERROR (500), 5010-5017 detailed 400s;
- search: ``manufacturerID``, ``orderStatus``, ``orderID`` (comma list), ``perPage`` (default 10,
  max 100), ``page``; the sibling shipment search answers ``{totalCount, collection}``;
- the doc's own sample has ``"manufacturerID":01010``, which is not JSON.

Chosen where the document is silent (all choices):

- error envelope: ``{"code": <OMS code>, "error": <OMS code name>, "message": <text>}`` plus
  ``"field"`` (path of the first bad field) on validation errors; HTTP status as the OMS code's
  equivalent (400 for every 501x code); a body that is not JSON (the doc's sample as written) →
  400/5003; a missing required field (or ``null`` in it) → 400/5011; any other bad value → 400/5015;
  only the first problem is reported;
- auth failures: a missing or wrong ``API-Key`` → 403/5004 (the gateway checks the key first);
  a missing, unknown or expired Bearer token → 401/5004 with ``WWW-Authenticate: Bearer``; both
  are in the "re-acquire on 401 or 403" set. The token endpoint answers in RFC 6749 shape:
  400 ``invalid_request`` / ``unsupported_grant_type``, 401 ``invalid_client``;
  the token answer is ``{"access_token", "token_type": "Bearer", "expires_in"}``;
- ``locale`` and ``sendEmail`` are required on importOrder although defaults are given (they are in
  the "necessary" table); on createOrder ``sendEmail`` is optional;
- optional fields may be ``null`` (the sample sends ``"orderID":null``, ``"orderComment":null``);
  top-level fields not in the endpoint's table are refused (5015), so createOrder refuses
  ``orderStatus``; importOrder accepts both ``importedCreationDate`` (table) and
  ``orderCreationDate`` (prose), as date-times;
- nested objects (the schema is not public): customer needs firstName, lastName, email; each
  order item needs ``product.partNumber``, ``product.name``, ``itemSpecifics.quantity`` (≥ 1) and
  ``itemSpecifics.actualPrice`` (≥ 0) — "Part Number, Price and Quantity, Name"; shippingMethod
  needs ``shippingType``; every address (shipping too, not only billing) needs addressLine1
  (≤ 250), city, postalCode, a 2-letter countryCode, addressLine2/3 ≤ 250; each payment needs
  ``paymentMethod.billingAddress`` and ``paymentMethod.paymentType`` (any code: they "vary
  depending on implementation"); customOrderData keys 1-100 and string values 1-1000 characters
  (the bounds of the custom-order-data endpoint); customerIP any IPv4 (the sample's ``0.0.0.0``
  too); locales look like ``en-US``;
- success of import/create: HTTP 200 ``{"orderID": <int>, "externalOrderID", "manufacturerID",
  "orderStatus"}``; order ids start at 100001 unless a free ``orderID`` is sent (a taken one is
  5015); importOrder keeps the sent ``orderStatus``, createOrder orders start ``READY``;
- search: at least one filter (manufacturerID, orderStatus, orderID, externalOrderID) or 400/5017;
  unknown parameters 400/5016; bad values 400/5014; orderStatus and externalOrderID take comma
  lists like orderID; answer ``{"totalCount": N, "collection": [orders by orderID]}``; a stored
  order is the request body plus ``orderID``, ``orderStatus`` and ``orderCreationDate``;
- injected failures use the same envelope (503 → 5001, 500 and other 5xx → 5006, 4xx → the
  matching generic code); an injected 429 carries ``Retry-After`` (60 unless set) and
  ``x-vol-correlation`` as Kibo's newer platform does, with code 5001.

Credentials and token lifetime are settings ``api_key``, ``client_secret`` and ``token_ttl_s``
(demo defaults :data:`DEFAULT_API_KEY`, :data:`DEFAULT_CLIENT_SECRET`, 3600 s);
:meth:`ShopatronSimulator.expire_tokens` (admin fault ``expire_tokens``) ends every token now.

Switchable unknowns (:class:`ShopatronSettings`, env ``ORDER_DISPATCH_SANDBOX_SHOPATRON_<NAME>``):

- ``reject_duplicate_external_id`` (default True): a second order with an externalOrderID already
  held for the same manufacturerID is refused with 400/5015 naming the existing ``orderID``;
  False creates a second order;
- ``search_by_external_id`` (default True): order search accepts ``externalOrderID``; False
  refuses it as an unsupported parameter (400/5016), as the real search may.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import secrets
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from types import GenericAlias
from typing import Annotated, Any, ClassVar, Literal

from aiohttp import web
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
)

from order_dispatch_sandbox.base import (
    SimulatorSettings,
    VendorSimulator,
    json_path,
    json_response,
    model_of,
    read_json,
    retry_after_header,
)

DEFAULT_API_KEY = "sandbox-shopatron-api-key"
DEFAULT_CLIENT_SECRET = "sandbox-shopatron-client-secret"
DEFAULT_TOKEN_TTL_S = 3600.0

#: OMS status codes and their names (kibocommerce.com/oms-dev/get-started/status-codes/).
OMS_CODES = {
    5000: "GENERIC_OK", 5001: "GENERIC_UNAVAILABLE", 5002: "GENERIC_NOT_FOUND",
    5003: "GENERIC_BAD_REQUEST", 5004: "GENERIC_NOT_AUTHORIZED", 5005: "GENERIC_NOT_ALLOWED",
    5006: "GENERIC_SERVER_ERROR", 5010: "MISSING_QUERY_PARAM", 5011: "MISSING_REQUEST_DATA",
    5012: "ID_MISMATCH", 5013: "INVALID_ID", 5014: "INVALID_QUERY_PARAM",
    5015: "INVALID_REQUEST_DATA", 5016: "UNSUPPORTED_QUERY_PARAM", 5017: "NO_VALID_QUERY_PARAMS",
}
_CODE_OF_STATUS = {400: 5003, 401: 5004, 403: 5004, 404: 5002, 405: 5005, 500: 5006, 503: 5001}

CREATED_STATUS = "READY"
#: The members of a placed order that import and create answer with.
_ANSWERED = ("orderID", "externalOrderID", "manufacturerID", "orderStatus")
FIRST_ORDER_ID = 100001

#: ISO 4217 currency codes.
CURRENCIES = frozenset(
    (
        "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
        "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
        "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
        "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ",
        "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD",
        "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
        "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
        "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
        "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR",
        "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB",
        "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS",
        "VES", "VND", "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWL",
    )
)

_LOCALE = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"

#: A validation problem: (OMS code, field path, message).
Problem = tuple[int, str, str]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def oms_error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> web.Response:
    """An error in the (chosen) OMS envelope ``{code, error, message, ...}``."""
    body = {"code": code, "error": OMS_CODES.get(code, "GENERIC_ERROR"), "message": message}
    body.update(extra)
    return json_response(body, status=status, headers=headers)


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="oauth2"'
    return json_response({"error": error, "error_description": description}, status, headers)


# The order bodies as pydantic models. JSON types are taken as they are (strict: no "1010" for an
# integer); a required member that is missing or null is 5011, any other problem 5015.


def _currency(value: str) -> str:
    if value not in CURRENCIES:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code")
    return value


def _date_time(value: str) -> str:
    if "T" not in value:
        raise ValueError("must be a date-time (RFC 3339)")
    datetime.fromisoformat(value)
    return value


def _ipv4(value: str) -> str:
    ipaddress.IPv4Address(value)
    return value


_Text = Annotated[str, Field(min_length=1)]
# "a valid billing address (which supports up to 250 characters per addressLine1, addressLine2,
# and addressLine3)"
_AddressLine = Annotated[str, Field(max_length=250)]
_Locale = Annotated[str, Field(min_length=2, max_length=35, pattern=_LOCALE)]
_Amount = Annotated[float, Field(ge=0)]
_CustomDataName = Annotated[str, Field(min_length=1, max_length=100)]
_CustomDataValue = Annotated[str, Field(min_length=1, max_length=1000)]
_DateTime = Annotated[str, AfterValidator(_date_time)]


class _Strict(BaseModel, strict=True):
    """JSON values as they are sent; members a model does not list are not checked."""


class _Closed(_Strict, extra="forbid"):
    """A body whose members are all listed: others are refused."""


def _strict(name: str, base: type[BaseModel] = _Strict, /, **fields: Any) -> type[BaseModel]:
    """A strict model of ``fields`` in their order, each required unless given as ``_opt(type)``."""
    defs = {k: v if isinstance(v, tuple) else (v, ...) for k, v in fields.items()}
    return model_of(name, base, **defs)


def _opt(annotation: Any) -> tuple[Any, None]:
    """An optional member, which may be null."""
    return (annotation | None, None)


_Address = _strict(
    "Address",
    addressLine1=Annotated[_AddressLine, Field(min_length=1)], city=_Text, postalCode=_Text,
    countryCode=Annotated[str, Field(pattern=r"^[A-Z]{2}$")], addressLine2=_opt(_AddressLine),
    addressLine3=_opt(_AddressLine), state=_opt(str),
)
_OrderItem = _strict(
    "OrderItem",
    # "Part Number, Price and Quantity, Name"
    product=_strict("Product", partNumber=_Text, name=_Text),
    itemSpecifics=_strict(
        "ItemSpecifics", quantity=Annotated[int, Field(ge=1)], actualPrice=_Amount,
        itemTaxOverride=_opt(_Amount), shipping=_opt(_Amount), shippingTax=_opt(_Amount),
    ),
)
_PaymentMethod = _strict("PaymentMethod", billingAddress=_Address, paymentType=_Text)
_Email = Annotated[str, Field(min_length=3, max_length=255, pattern="@")]
#: A createOrder body: importOrder's table without orderStatus, assignedLocation and
#: useInventory; sendEmail optional. Optional members may be null; others are refused.
CreateOrder = _strict(
    "CreateOrder",
    _Closed,
    # importOrder's "Required Parameters" table, in the document's order.
    externalOrderID=Annotated[str, Field(min_length=1, max_length=100)],
    manufacturerID=Annotated[int, Field(ge=1)], catalogID=Annotated[int, Field(ge=0)],
    locale=_Locale, currency=Annotated[str, AfterValidator(_currency)],
    customer=_strict("Customer", firstName=_Text, lastName=_Text, email=_Email),
    orderItems=Annotated[GenericAlias(list, _OrderItem), Field(min_length=1)],
    shippingMethod=_strict("ShippingMethod", shippingType=_Text, shippingClass=_opt(str)),
    shippingAddress=_Address,
    orderPayments=Annotated[
        GenericAlias(list, _strict("Payment", paymentMethod=_PaymentMethod)), Field(min_length=1)
    ],
    customerIP=Annotated[str, AfterValidator(_ipv4)], sendEmail=_opt(bool),
    # The optional parameters, with the document's bounds.
    orderID=_opt(Annotated[int, Field(ge=1)]), cartID=_opt(Annotated[str, Field(max_length=512)]),
    currencyLocale=_opt(_Locale),
    orderGift=_opt(_strict("Gift", recipient=_opt(str), message=_opt(str))),
    shippingTax=_opt(_Amount), shippingTaxRate=_opt(_Amount), forceItemTaxOverride=_opt(bool),
    orderComment=_opt(Annotated[str, Field(max_length=1000)]), optInRetailer=_opt(bool),
    landingCode=_opt(Annotated[str, Field(min_length=10, max_length=200)]),
    # The bounds of the custom-order-data endpoint.
    customOrderData=_opt(dict[_CustomDataName, _CustomDataValue]),
    fraudData=_opt(list[dict[str, Any]]), allowSplit=_opt(bool), isTestOrder=_opt(bool),
    expectedDeliveryDate=_opt(_DateTime), promotions=_opt(list[dict[str, Any]]),
    discounts=_opt(list[dict[str, Any]]), channel=_opt(str),
)
#: An importOrder body (Historic Order Import).
ImportOrder = _strict(
    "ImportOrder", CreateOrder,
    sendEmail=bool,
    # "orderStatus enum The status that the order is in at the time of import (SHIPPED, READY, or
    # CANCELLED)."
    orderStatus=Literal["SHIPPED", "READY", "CANCELLED"],
    importedCreationDate=_opt(_DateTime),
    # The prose says "If the order is imported without a specified orderCreationDate".
    orderCreationDate=_opt(_DateTime), assignedLocation=_opt(str), useInventory=_opt(bool),
)


_SHOWN = {
    "model_type": "must be an object",
    "dict_type": "must be an object",
    "extra_forbidden": "is not a property of this request",
}


def order_problem(body: dict[str, Any], *, importing: bool) -> Problem | None:
    """Shopatron's answer to an invalid order body, or None: the first problem pydantic found,
    5011 for a required member missing or null, 5015 for any other, with the path of the field;
    then what the model cannot say, a missing itemTaxOverride under forceItemTaxOverride."""
    try:
        order = (ImportOrder if importing else CreateOrder).model_validate(body).model_dump()
    except ValidationError as exc:
        error = exc.errors()[0]
        path, loc = json_path(error["loc"]), error["loc"]
        if error["type"] == "missing" or (error["input"] is None and isinstance(loc[-1], str)):
            return (5011, path, f"{path} is required")
        shown = _SHOWN.get(error["type"])
        return (5015, path, f"{path} {shown}" if shown else f"{path}: {error['msg']}")
    if order["forceItemTaxOverride"]:
        # "forceItemTaxOverride ... force the orderItem -> itemSpecifics -> itemTaxOverride to be
        # required"
        for n, item in enumerate(order["orderItems"]):
            if item["itemSpecifics"]["itemTaxOverride"] is None:
                path = f"orderItems[{n}].itemSpecifics.itemTaxOverride"
                return (5011, path, f"{path} is required when forceItemTaxOverride is true")
    return None


def _comma_list(value: str) -> list[str]:
    return [v for v in value.split(",") if v]


class _Search(BaseModel):
    """Order search's query: comma lists, numbers as query strings."""

    manufacturerID: Annotated[int, Field(ge=1)] | None = None
    orderStatus: Annotated[list[str], BeforeValidator(_comma_list)] = []
    orderID: Annotated[list[Annotated[int, Field(ge=1)]], BeforeValidator(_comma_list)] = []
    externalOrderID: Annotated[list[str], BeforeValidator(_comma_list)] = []
    perPage: Annotated[int, Field(ge=1, le=100)] = 10
    page: Annotated[int, Field(ge=1)] = 1


class ShopatronSettings(SimulatorSettings):
    """Shopatron's credentials, token lifetime and switches
    (``ORDER_DISPATCH_SANDBOX_SHOPATRON_<NAME>``)."""

    api_key: str = DEFAULT_API_KEY
    client_secret: SecretStr = SecretStr(DEFAULT_CLIENT_SECRET)
    token_ttl_s: float = Field(DEFAULT_TOKEN_TTL_S, ge=0)
    reject_duplicate_external_id: bool = True
    search_by_external_id: bool = True


class ShopatronSimulator(VendorSimulator):
    """Kibo OMS (Shopatron) integration API v2 as documented, in memory."""

    name = "shopatron"
    demo_options: ClassVar[dict[str, Any]] = {"manufacturer_id": "1001", "catalog_id": "1"}
    settings_class = ShopatronSettings
    settings: ShopatronSettings
    #: A cut-off import answer.
    malformed = b'{"orderID":1000'

    def __init__(self, settings: ShopatronSettings | None = None, /, **overrides: Any) -> None:
        super().__init__(settings, **overrides)
        credentials = f"{self.api_key}:{self.client_secret}".encode()
        self._basic = "Basic " + base64.b64encode(credentials).decode()
        #: token -> monotonic expiry
        self._tokens: dict[str, float] = {}
        #: externalOrderID -> orderIDs holding it (any manufacturer)
        self._by_external: dict[str, list[int]] = {}
        self._next_order_id = FIRST_ORDER_ID

    def routes(self) -> list[web.RouteDef]:
        """Token, importOrder, createOrder and order search."""
        return [
            web.post("/oauthserver/oauth2/token", self.token),
            web.post("/api/v2/importOrder/", self.import_order),
            web.post("/api/v2/createOrder/", self.create_order),
            web.get("/api/v2/order/", self.search),
        ]

    def reset(self) -> None:
        """Forget every order and token."""
        super().reset()
        self._by_external.clear()
        self._next_order_id = FIRST_ORDER_ID
        self._tokens.clear()

    def expire_tokens(self) -> None:
        """Invalidate every token issued so far."""
        now = time.monotonic()
        for token in self._tokens:
            self._tokens[token] = now

    def set_status(self, order_id: str, status: str) -> dict[str, Any]:
        """Move an order to ``status`` (admin API), e.g. ``SHIPPED``."""
        order = self.store[order_id]
        order["orderStatus"] = status
        return order

    # Auth

    async def token(self, request: web.Request) -> web.Response:
        """``POST /oauthserver/oauth2/token`` (client credentials, Basic auth)."""
        if request.content_type != "application/x-www-form-urlencoded":
            return _oauth_error(
                400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded"
            )
        auth = request.headers.get("Authorization", "")
        if auth != self._basic:
            return _oauth_error(401, "invalid_client", _basic_problem(auth))
        form = await request.post()
        grant = form.get("grant_type")
        if grant is None:
            return _oauth_error(400, "invalid_request", "grant_type is required")
        if grant != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", f"grant_type {grant!r}")
        now = time.monotonic()
        if len(self._tokens) > 1000:
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
        token = secrets.token_urlsafe(24)
        self._tokens[token] = now + self.token_ttl_s
        expires_in = max(1, math.ceil(self.token_ttl_s))
        body = {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}
        return json_response(body, headers={"Cache-Control": "no-store"})

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("API-Key")
        if key != self.api_key:
            what = "API-Key header is required" if key is None else "API-Key is not valid"
            return oms_error(403, 5004, what)
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _bearer_error("Authorization: Bearer <access_token> is required", "")
        expiry = self._tokens.get(token)
        if expiry is None:
            return _bearer_error("access token is not valid", "invalid_token")
        if expiry <= time.monotonic():
            return _bearer_error("access token has expired", "invalid_token")
        return None

    # Orders

    async def import_order(self, request: web.Request) -> web.Response:
        """``POST /api/v2/importOrder/`` (Historic Order Import)."""
        return await self._place(request, importing=True)

    async def create_order(self, request: web.Request) -> web.Response:
        """``POST /api/v2/createOrder/``."""
        return await self._place(request, importing=False)

    async def _place(self, request: web.Request, *, importing: bool) -> web.Response:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        body, reason = await read_json(request)
        if reason is not None:
            return oms_error(400, 5003, reason)
        if not isinstance(body, dict):
            return oms_error(400, 5003, "body must be a JSON object")
        if (problem := order_problem(body, importing=importing)) is not None:
            code, path, message = problem
            return oms_error(400, code, message, field=path)
        external = body["externalOrderID"]
        manufacturer = body["manufacturerID"]
        holders = self._by_external.get(external, [])
        if self.reject_duplicate_external_id:
            for held in holders:
                if self.store[str(held)]["manufacturerID"] == manufacturer:
                    return oms_error(
                        400, 5015,
                        f"externalOrderID {external!r} already exists as order {held}",
                        field="externalOrderID", orderID=held,
                    )
        order_id = body.get("orderID")
        if order_id is None:
            while str(self._next_order_id) in self.store:
                self._next_order_id += 1
            order_id = self._next_order_id
            self._next_order_id += 1
        elif str(order_id) in self.store:
            return oms_error(
                400, 5015, f"orderID {order_id} already exists", field="orderID", orderID=order_id
            )
        status = body["orderStatus"] if importing else CREATED_STATUS
        created = body.get("importedCreationDate") or body.get("orderCreationDate") or _now()
        order = {**body, "orderID": order_id, "orderStatus": status, "orderCreationDate": created}
        self.store[str(order_id)] = order
        self._by_external[external] = [*holders, order_id]
        return json_response({k: order[k] for k in _ANSWERED})

    async def search(self, request: web.Request) -> web.Response:
        """``GET /api/v2/order/?manufacturerID=&orderStatus=&orderID=1,2&perPage=&page=``."""
        if (denied := self._unauthorized(request)) is not None:
            return denied
        query = request.query
        for key in query:
            if key not in _Search.model_fields or (
                key == "externalOrderID" and not self.search_by_external_id
            ):
                return oms_error(400, 5016, f"query parameter {key!r} is not supported")
        try:
            search = _Search.model_validate({key: query[key] for key in query})
        except ValidationError as exc:
            error = exc.errors()[0]
            return oms_error(400, 5014, f"{json_path(error['loc'])}: {error['msg']}")
        manufacturer, ids = search.manufacturerID, search.orderID
        statuses, externals = search.orderStatus, search.externalOrderID
        if not (manufacturer or ids or statuses or externals):
            return oms_error(
                400, 5017,
                "no valid query parameters: give manufacturerID, orderStatus, orderID or "
                "externalOrderID",
            )
        if ids:
            candidates: Iterable[dict[str, Any]] = (
                self.store[str(i)] for i in sorted(set(ids)) if str(i) in self.store
            )
        elif externals:
            found = {i for e in externals for i in self._by_external.get(e, ())}
            candidates = (self.store[str(i)] for i in sorted(found))
        else:
            candidates = sorted(self.store.values(), key=lambda o: int(o["orderID"]))
        matches = [
            o for o in candidates
            if (not manufacturer or o["manufacturerID"] == manufacturer)
            and (not statuses or o["orderStatus"] in statuses)
            and (not externals or o["externalOrderID"] in externals)
        ]
        start = (search.page - 1) * search.perPage
        return json_response(
            {"totalCount": len(matches), "collection": matches[start : start + search.perPage]}
        )

    # Failure shapes

    def error_response(self, status: int, retry_after: float | None) -> web.Response:
        """Injected failures in the OMS envelope (503 -> 5001, 500 -> 5006, ...)."""
        code = _CODE_OF_STATUS.get(status, 5006 if status >= 500 else 5003)
        return oms_error(
            status, code, "The service is unavailable, try again later",
            headers=retry_after_header(retry_after),
        )

    def rate_limited_response(self, retry_after: float | None) -> web.Response:
        """429 with ``Retry-After`` (60 by default) and ``x-vol-correlation``, like Kibo's KCCP."""
        headers = retry_after_header(retry_after if retry_after is not None else 60)
        headers["x-vol-correlation"] = uuid.uuid4().hex
        return oms_error(429, 5001, "Too Many Requests", headers=headers)


def _bearer_error(message: str, error: str) -> web.Response:
    challenge = 'Bearer realm="OMS"' + (f', error="{error}"' if error else "")
    return oms_error(401, 5004, message, headers={"WWW-Authenticate": challenge})


def _basic_problem(auth: str) -> str:
    scheme, _, encoded = auth.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return "Authorization: Basic base64(apikey:secret) is required"
    try:
        base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return "client credentials are not valid base64"
    return "client authentication failed"

