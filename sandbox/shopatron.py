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
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from sandbox.base import (
    SimulatorSettings,
    VendorSimulator,
    json_response,
    read_json,
    retry_after_header,
)

DEFAULT_API_KEY = "sandbox-shopatron-api-key"
DEFAULT_CLIENT_SECRET = "sandbox-shopatron-client-secret"
DEFAULT_TOKEN_TTL_S = 3600.0

#: OMS status codes and their names (kibocommerce.com/oms-dev/get-started/status-codes/).
OMS_CODES = {
    5000: "GENERIC_OK",
    5001: "GENERIC_UNAVAILABLE",
    5002: "GENERIC_NOT_FOUND",
    5003: "GENERIC_BAD_REQUEST",
    5004: "GENERIC_NOT_AUTHORIZED",
    5005: "GENERIC_NOT_ALLOWED",
    5006: "GENERIC_SERVER_ERROR",
    5010: "MISSING_QUERY_PARAM",
    5011: "MISSING_REQUEST_DATA",
    5012: "ID_MISMATCH",
    5013: "INVALID_ID",
    5014: "INVALID_QUERY_PARAM",
    5015: "INVALID_REQUEST_DATA",
    5016: "UNSUPPORTED_QUERY_PARAM",
    5017: "NO_VALID_QUERY_PARAMS",
}
_CODE_OF_STATUS = {400: 5003, 401: 5004, 403: 5004, 404: 5002, 405: 5005, 500: 5006, 503: 5001}

#: "orderStatus enum The status that the order is in at the time of import (SHIPPED, READY, or
#: CANCELLED)."
IMPORT_STATUSES = ("SHIPPED", "READY", "CANCELLED")
CREATED_STATUS = "READY"
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

_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_SEARCH_PARAMS = frozenset(
    ("manufacturerID", "orderStatus", "orderID", "externalOrderID", "perPage", "page")
)

#: A validation problem: (OMS code, field path, message).
Problem = tuple[int, str, str]
Check = Callable[[Any, str], Problem | None]


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


# Validation: small checkers built once, each returning the first problem or None.


def _invalid(path: str, message: str) -> Problem:
    return (5015, path, f"{path} {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _string(
    min_len: int = 0, max_len: int | None = None, pattern: re.Pattern[str] | None = None
) -> Check:
    def check(value: Any, path: str) -> Problem | None:
        if not isinstance(value, str):
            return _invalid(path, "must be a string")
        if len(value) < min_len:
            return _invalid(path, f"must be at least {min_len} characters long")
        if max_len is not None and len(value) > max_len:
            return _invalid(path, f"must be at most {max_len} characters long")
        if pattern is not None and not pattern.search(value):
            return _invalid(path, f"{value!r} does not match {pattern.pattern}")
        return None

    return check


def _integer(minimum: int) -> Check:
    def check(value: Any, path: str) -> Problem | None:
        if not _is_int(value):
            return _invalid(path, "must be an integer")
        if value < minimum:
            return _invalid(path, f"must be at least {minimum}")
        return None

    return check


def _number(minimum: float) -> Check:
    def check(value: Any, path: str) -> Problem | None:
        if not _is_number(value):
            return _invalid(path, "must be a number")
        if value < minimum:
            return _invalid(path, f"must be at least {minimum:g}")
        return None

    return check


def _boolean(value: Any, path: str) -> Problem | None:
    return None if isinstance(value, bool) else _invalid(path, "must be a boolean")


def _enum(values: Iterable[str], shown: str = "") -> Check:
    allowed = frozenset(values)
    shown = shown or "one of " + ", ".join(sorted(allowed))

    def check(value: Any, path: str) -> Problem | None:
        if value not in allowed:
            return _invalid(path, f"{value!r} is not {shown}")
        return None

    return check


def _date_time(value: Any, path: str) -> Problem | None:
    if isinstance(value, str) and "T" in value:
        try:
            datetime.fromisoformat(value)
            return None
        except ValueError:
            pass
    return _invalid(path, "must be a date-time (RFC 3339)")


def _ipv4(value: Any, path: str) -> Problem | None:
    if isinstance(value, str):
        try:
            ipaddress.IPv4Address(value)
            return None
        except ValueError:
            pass
    return _invalid(path, "must be an IPv4 address")


def _any_object(value: Any, path: str) -> Problem | None:
    return None if isinstance(value, dict) else _invalid(path, "must be an object")


def _any_array(value: Any, path: str) -> Problem | None:
    return None if isinstance(value, list) else _invalid(path, "must be an array")


def _object(required: dict[str, Check], optional: dict[str, Check] | None = None) -> Check:
    """An object with required and optional (nullable) members; other members are not checked."""
    optional = optional or {}

    def check(value: Any, path: str) -> Problem | None:
        if not isinstance(value, dict):
            return _invalid(path, "must be an object")
        for key, member in required.items():
            sub = f"{path}.{key}"
            if value.get(key) is None:
                return (5011, sub, f"{sub} is required")
            if (problem := member(value[key], sub)) is not None:
                return problem
        for key, member in optional.items():
            if value.get(key) is not None and (problem := member(value[key], f"{path}.{key}")):
                return problem
        return None

    return check


def _array(item: Check, min_items: int = 0) -> Check:
    def check(value: Any, path: str) -> Problem | None:
        if not isinstance(value, list):
            return _invalid(path, "must be an array")
        if len(value) < min_items:
            return _invalid(path, f"must have at least {min_items} item(s)")
        for n, element in enumerate(value):
            if (problem := item(element, f"{path}[{n}]")) is not None:
                return problem
        return None

    return check


def _custom_data(value: Any, path: str) -> Problem | None:
    if not isinstance(value, dict):
        return _invalid(path, "must be an object")
    for key, member in value.items():
        if not 1 <= len(key) <= 100:
            return _invalid(f"{path}.{key}", "name must be 1 to 100 characters long")
        if not isinstance(member, str) or not 1 <= len(member) <= 1000:
            return _invalid(f"{path}.{key}", "must be a string of 1 to 1000 characters")
    return None


_ADDRESS = _object(
    {
        # "a valid billing address (which supports up to 250 characters per addressLine1,
        # addressLine2, and addressLine3)"
        "addressLine1": _string(1, 250),
        "city": _string(1),
        "postalCode": _string(1),
        "countryCode": _string(2, 2, _COUNTRY),
    },
    {"addressLine2": _string(0, 250), "addressLine3": _string(0, 250), "state": _string()},
)
_CUSTOMER = _object(
    {"firstName": _string(1), "lastName": _string(1), "email": _string(3, 255, re.compile("@"))},
)
_ORDER_ITEM = _object(
    {
        "product": _object({"partNumber": _string(1), "name": _string(1)}),
        "itemSpecifics": _object(
            {"quantity": _integer(1), "actualPrice": _number(0)},
            {"itemTaxOverride": _number(0), "shipping": _number(0), "shippingTax": _number(0)},
        ),
    }
)
_PAYMENT = _object(
    {"paymentMethod": _object({"billingAddress": _ADDRESS, "paymentType": _string(1)})}
)

#: importOrder's "Required Parameters" table, in the document's order.
_IMPORT_REQUIRED: dict[str, Check] = {
    "externalOrderID": _string(1, 100),
    "manufacturerID": _integer(1),
    "catalogID": _integer(0),
    "locale": _string(2, 35, _LOCALE),
    "currency": _enum(CURRENCIES, "an ISO 4217 currency code"),
    "customer": _CUSTOMER,
    "orderItems": _array(_ORDER_ITEM, 1),
    "shippingMethod": _object({"shippingType": _string(1)}, {"shippingClass": _string()}),
    "shippingAddress": _ADDRESS,
    "orderPayments": _array(_PAYMENT, 1),
    "customerIP": _ipv4,
    "sendEmail": _boolean,
    "orderStatus": _enum(IMPORT_STATUSES),
}
#: Optional parameters shared by importOrder and createOrder (nullable).
_COMMON_OPTIONAL: dict[str, Check] = {
    "orderID": _integer(1),
    "cartID": _string(0, 512),
    "currencyLocale": _string(2, 35, _LOCALE),
    "orderGift": _object({}, {"recipient": _string(), "message": _string()}),
    "shippingTax": _number(0),
    "shippingTaxRate": _number(0),
    "forceItemTaxOverride": _boolean,
    "orderComment": _string(0, 1000),
    "optInRetailer": _boolean,
    "landingCode": _string(10, 200),
    "customOrderData": _custom_data,
    "fraudData": _array(_any_object),
    "allowSplit": _boolean,
    "isTestOrder": _boolean,
    "expectedDeliveryDate": _date_time,
    "promotions": _array(_any_object),
    "discounts": _array(_any_object),
    "channel": _string(),
}
_IMPORT_OPTIONAL: dict[str, Check] = {
    **_COMMON_OPTIONAL,
    "importedCreationDate": _date_time,
    # The prose says "If the order is imported without a specified orderCreationDate".
    "orderCreationDate": _date_time,
    "assignedLocation": _string(),
    "useInventory": _boolean,
}
_CREATE_REQUIRED = {
    k: v for k, v in _IMPORT_REQUIRED.items() if k not in ("sendEmail", "orderStatus")
}
_CREATE_OPTIONAL: dict[str, Check] = {**_COMMON_OPTIONAL, "sendEmail": _boolean}


def order_problem(body: dict[str, Any], *, importing: bool) -> Problem | None:
    """The first problem of an importOrder (``importing``) or createOrder body, or None."""
    required = _IMPORT_REQUIRED if importing else _CREATE_REQUIRED
    optional = _IMPORT_OPTIONAL if importing else _CREATE_OPTIONAL
    for key, check in required.items():
        if body.get(key) is None:
            return (5011, key, f"{key} is required")
        if (problem := check(body[key], key)) is not None:
            return problem
    for key, value in body.items():
        if key in required:
            continue
        member = optional.get(key)
        if member is None:
            return _invalid(key, "is not a property of this request")
        if value is not None and (problem := member(value, key)) is not None:
            return problem
    if body.get("forceItemTaxOverride") is True:
        # "forceItemTaxOverride ... force the orderItem -> itemSpecifics -> itemTaxOverride to be
        # required"
        for n, item in enumerate(body["orderItems"]):
            if item["itemSpecifics"].get("itemTaxOverride") is None:
                path = f"orderItems[{n}].itemSpecifics.itemTaxOverride"
                return (5011, path, f"{path} is required when forceItemTaxOverride is true")
    return None


class ShopatronSettings(SimulatorSettings):
    """Shopatron's credentials, token lifetime and switches
    (``ORDER_DISPATCH_SANDBOX_SHOPATRON_<NAME>``)."""

    model_config = SettingsConfigDict(env_prefix="ORDER_DISPATCH_SANDBOX_SHOPATRON_")

    api_key: str = DEFAULT_API_KEY
    client_secret: SecretStr = SecretStr(DEFAULT_CLIENT_SECRET)
    token_ttl_s: float = Field(DEFAULT_TOKEN_TTL_S, ge=0)
    reject_duplicate_external_id: bool = True
    search_by_external_id: bool = True


class ShopatronSimulator(VendorSimulator):
    """Kibo OMS (Shopatron) integration API v2 as documented, in memory."""

    name = "shopatron"
    settings_class = ShopatronSettings
    settings: ShopatronSettings

    def __init__(self, settings: ShopatronSettings | None = None, /, **overrides: Any) -> None:
        super().__init__(settings, **overrides)
        self.api_key = self.settings.api_key
        self.client_secret = self.settings.client_secret.get_secret_value()
        self.token_ttl_s = self.settings.token_ttl_s
        self.reject_duplicate_external_id = self.settings.reject_duplicate_external_id
        self.search_by_external_id = self.settings.search_by_external_id
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
        return json_response(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": max(1, math.ceil(self.token_ttl_s)),
            },
            headers={"Cache-Control": "no-store"},
        )

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
        problem = order_problem(body, importing=importing)
        if problem is not None:
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
        return json_response(
            {
                "orderID": order_id,
                "externalOrderID": external,
                "manufacturerID": manufacturer,
                "orderStatus": status,
            }
        )

    async def search(self, request: web.Request) -> web.Response:
        """``GET /api/v2/order/?manufacturerID=&orderStatus=&orderID=1,2&perPage=&page=``."""
        if (denied := self._unauthorized(request)) is not None:
            return denied
        query = request.query
        for key in query:
            if key not in _SEARCH_PARAMS or (
                key == "externalOrderID" and not self.search_by_external_id
            ):
                return oms_error(400, 5016, f"query parameter {key!r} is not supported")
        try:
            per_page = _int_param(query, "perPage", 10, 1, 100)
            page = _int_param(query, "page", 1, 1, None)
            manufacturer = _int_param(query, "manufacturerID", 0, 1, None)
            ids = [_to_int("orderID", v, 1) for v in _list_param(query, "orderID")]
        except ValueError as exc:
            return oms_error(400, 5014, str(exc))
        statuses = _list_param(query, "orderStatus")
        externals = _list_param(query, "externalOrderID")
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
        start = (page - 1) * per_page
        return json_response(
            {"totalCount": len(matches), "collection": matches[start : start + per_page]}
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

    def malformed_body(self, content_type: str) -> bytes:
        """A cut-off import answer."""
        return b'{"orderID":1000'


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


def _list_param(query: Any, key: str) -> list[str]:
    return [v for v in query.get(key, "").split(",") if v]


def _to_int(key: str, raw: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{key} {raw!r} is not an integer") from None
    if value < minimum:
        raise ValueError(f"{key} must be at least {minimum}")
    return value


def _int_param(query: Any, key: str, default: int, minimum: int, maximum: int | None) -> int:
    raw = query.get(key)
    if raw is None:
        return default
    value = _to_int(key, raw, minimum)
    if maximum is not None and value > maximum:
        raise ValueError(f"{key} must be at most {maximum}")
    return value
