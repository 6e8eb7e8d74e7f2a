"""Sophio simulator: ``POST /sophio/createorder.wws?action=CREATE&authentication=...``
(docs: sophio.txt; NOTES.md §1.1, §1.2 and §6).

Documented (docs/sophio.txt):
- one endpoint, ``createorder.wws?action=CREATE`` on the store's URL; the body is ShipStation's
  V1 Order JSON;
- auth is the query parameter ``authentication``, the Base64 of ``APIKEY:APISECRET``
  ("if the API KEY given is 'sophio' and the API Secret is 'orders' then the querystring variable
  to send would be: authentication=c29waGlvOm9yZGVycw=="). Those are the demo defaults here
  (:data:`DEFAULT_API_KEY`, :data:`DEFAULT_API_SECRET`), so the document's own string works;
- success: "the data sent would be echo'd back for confirmation", with server fields as the
  sample response shows: ``orderId`` (int), ``createDate``, ``modifyDate``,
  ``items[].orderItemId``, ``shipTo.addressVerified``, ``orderTotal``, ``externallyFulfilled``,
  ``advancedOptions`` (lower-case a, while the sample request sends ``AdvancedOptions``) and
  ``"WeightUnits"`` (int) in every weight object.
- nothing about errors, HTTP codes, rate limits, lookup or cancel (NOTES.md §1.1, §7).

ShipStation V1 semantics mirrored (NOTES.md §1.2): required ``orderNumber`` (≤ 50),
``orderDate``, ``orderStatus`` (awaiting_payment, awaiting_shipment, on_hold, shipped,
cancelled), ``billTo``, ``shipTo``; two-letter ``country``; weight units pounds|ounces|grams;
``confirmation`` none|delivery|signature|adult_signature|direct_signature; no partial updates
(an update replaces the whole order); shipped and cancelled orders are locked from modification;
rate-limit headers ``X-Rate-Limit-Limit``/``-Remaining``/``-Reset`` (seconds) on answers and 429
``{"message": "Too Many Requests"}``, 40 requests a minute per API key.

Choices where the document is silent (marked [choice]):
- [choice] errors are ASP.NET Web API shaped, as ShipStation's are (NOTES.md §1.2):
  401 ``{"Message": "Authorization has been denied for this request."}`` for a missing, malformed
  or wrong ``authentication``; 400 ``{"Message": "The request is invalid.", "ModelState":
  {"apiOrder.<path>": ["<reason>"]}}`` for the first invalid field (Json.NET paths such as
  ``items[1].quantity``); 400 ``{"Message": ...}`` for a missing or unknown ``action`` and for an
  update of a shipped/cancelled order; 405 for a method other than POST; injected failures use
  the same ``{"Message": ...}`` shape, injected 429s the ShipStation rate-limit shape.
- [choice] order of checks: method, auth, rate limit, action, body. 401 answers carry no
  rate-limit headers (no API key to count against); neither do injected failures other than 429.
- [choice] ``action`` is compared case-insensitively; ``CREATE`` is the only action.
- [choice] ``authentication`` is accepted URL-encoded or with raw ``=`` padding, with or without
  padding, and with ``+`` decoded to a space by form decoding (NOTES.md §1.1 [I]).
- [choice] property names are matched case-insensitively and unknown properties are ignored,
  as Json.NET does by default — which is why the sample's ``AdvancedOptions`` is accepted. Json.NET
  conversions are mirrored too: numbers and numeric strings for numeric fields, ``""`` as null for
  nullable numbers/dates/enums (the sample's ``"warehouseId": ""``), numbers for string fields.
- [choice] required beyond ShipStation's list: ``shipTo`` needs name, street1, city, postalCode and
  country; ``billTo`` needs name; each item needs ``sku`` and an integer ``quantity`` ≥ 1.
  ``postalCode`` has no format check (the sample's ``"0752"`` must pass). ``items`` may be absent.
- [choice] dates are ISO 8601 (``2018-07-17T12:08:06``, ``2018-07-17 12:08:06``, ``2018-07-17``)
  and echoed as sent; ``createDate``/``modifyDate`` are Pacific time without offset, with
  milliseconds, as ShipStation answers in PST/PDT.
- [choice] ``orderTotal`` = sum of quantity * unitPrice + taxAmount + shippingAmount (the sample
  response: 51.37 + 0.00 + 9.25 = 60.62).
- [choice] ``WeightUnits``: ounces = 1 (the sample), grams = 2, pounds = 3 (unconfirmed).
- [choice] ``shipTo.addressVerified`` is "Address validated successfully" for a US address with a
  ZIP or ZIP+4, "Address validation warning" otherwise; ``billTo.addressVerified`` is null.
- [choice] ids: ``orderId`` counts up from 123456, ``orderItemId`` from 328070751 (the sample's
  values); without ``orderKey`` a 32-hex-digit key is generated, as ShipStation does.
- [choice] the rate-limit window is a fixed minute per API key starting at its first request;
  a refused request is not stored. ``POST /_sandbox/reset`` restarts the windows.

Switchable unknowns (:class:`SophioSettings`, from env ``ORDER_DISPATCH_SANDBOX_SOPHIO_<NAME>``):
- ``upsert_by_order_key`` (default True = ShipStation: an ``orderKey`` already held updates that
  order and answers its ``orderId``; updating a shipped or cancelled order is refused with 400).
  False: every POST creates a new order, duplicates included.
- ``rate_limit_per_minute`` (default 40, ShipStation's V1 limit; 0 = unlimited, no headers). The
  sandbox used for more traffic raises it with
  ``ORDER_DISPATCH_SANDBOX_SOPHIO_RATE_LIMIT_PER_MINUTE``.
- ``api_key`` / ``api_secret`` (defaults ``sophio`` / ``orders``, the document's example).
"""

from __future__ import annotations

import base64
import itertools
import math
import re
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from sandbox.base import (
    SimulatorSettings,
    VendorSimulator,
    json_response,
    read_json,
    retry_after_header,
    status_reason,
)

DEFAULT_API_KEY = "sophio"
DEFAULT_API_SECRET = "orders"
DEFAULT_RATE_LIMIT_PER_MINUTE = 40

ORDER_STATUSES = ("awaiting_payment", "awaiting_shipment", "on_hold", "shipped", "cancelled")
LOCKED_STATUSES = ("shipped", "cancelled")
WEIGHT_UNITS = {"ounces": 1, "grams": 2, "pounds": 3}
DIMENSION_UNITS = ("inches", "centimeters")
CONFIRMATIONS = ("none", "delivery", "signature", "adult_signature", "direct_signature")
BILL_TO_PARTIES = ("my_account", "my_other_account", "recipient", "third_party")
CONTENTS = ("merchandise", "documents", "gift", "returned_goods", "sample")
NON_DELIVERY = ("return_to_sender", "treat_as_abandoned")

DENIED = "Authorization has been denied for this request."
INVALID = "The request is invalid."

try:
    _PACIFIC: tzinfo = ZoneInfo("America/Los_Angeles")
except ZoneInfoNotFoundError:  # no tz database on this machine: PST all year
    _PACIFIC = timezone(timedelta(hours=-8), "PST")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_US_ZIP = re.compile(r"^\d{5}(-\d{4})?$")
_WINDOW_S = 60.0

Converter = Callable[[Any, str], Any]


class _Invalid(Exception):
    """The first problem found in the body: a Json.NET path and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


def _now() -> str:
    return datetime.now(_PACIFIC).replace(tzinfo=None).isoformat(timespec="milliseconds")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "StartObject"
    if isinstance(value, list):
        return "StartArray"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int | float):
        return "Number"
    return "String"


def _string(value: Any, path: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise _Invalid(path, f"Unexpected token {_kind(value)} when reading a string. Path '{path}'.")


def _limited(max_length: int) -> Converter:
    def convert(value: Any, path: str) -> str | None:
        text = _string(value, path)
        if text is not None and len(text) > max_length:
            name = path.rsplit(".", 1)[-1]
            raise _Invalid(
                path, f"The field {name} must be a string with a maximum length of {max_length}."
            )
        return text

    return convert


def _integer(value: Any, path: str) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise _Invalid(path, f"Could not convert {_show(value)} to integer. Path '{path}'.")


def _decimal(value: Any, path: str) -> float | int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return number
    raise _Invalid(path, f"Could not convert {_show(value)} to decimal. Path '{path}'.")


def _boolean(value: Any, path: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _Invalid(path, f"Could not convert {_show(value)} to boolean. Path '{path}'.")


def _date(value: Any, path: str) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            return value
    raise _Invalid(path, f"Could not convert {_show(value)} to DateTime. Path '{path}'.")


def _enum(values: tuple[str, ...]) -> Converter:
    def convert(value: Any, path: str) -> str | None:
        text = _string(value, path)
        if not text:
            return None
        if text not in values:
            name = path.rsplit(".", 1)[-1]
            raise _Invalid(
                path, f"'{text}' is not a valid {name}. Valid values: {', '.join(values)}."
            )
        return text

    return convert


def _country(value: Any, path: str) -> str | None:
    text = _string(value, path)
    if text and not _COUNTRY.match(text):
        name = path.rsplit(".", 1)[-1]
        raise _Invalid(path, f"The field {name} must be a two-letter ISO country code.")
    return text or None


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f"string '{value}'"
    return f"{_kind(value)} {value!r}"


def _list_of(item: Converter) -> Converter:
    def convert(value: Any, path: str) -> list[Any] | None:
        if value is None:
            return None
        if not isinstance(value, list):
            raise _Invalid(path, f"Cannot deserialize {_show(value)} into an array. Path '{path}'.")
        return [item(v, f"{path}[{n}]") for n, v in enumerate(value)]

    return convert


class _Model:
    """A Json.NET-like object binding: case-insensitive names, unknown names ignored."""

    def __init__(
        self,
        type_name: str,
        fields: dict[str, Converter],
        defaults: dict[str, Callable[[], Any]] | None = None,
        required: tuple[str, ...] = (),
    ) -> None:
        self.type_name = type_name
        self.fields = fields
        self.lower = {name.lower(): name for name in fields}
        self.defaults = defaults or {}
        self.required = required

    def __call__(self, value: Any, path: str) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise _Invalid(
                path, f"Error converting {_show(value)} to type '{self.type_name}'. Path '{path}'."
            )
        out: dict[str, Any] = dict.fromkeys(self.fields)
        for key, raw in value.items():
            name = self.lower.get(key.lower())
            if name is not None:
                out[name] = self.fields[name](raw, _join(path, name))
        for name in self.required:
            if out[name] is None or out[name] == "":
                raise _Invalid(_join(path, name), f"The {name} field is required.")
        for name, default in self.defaults.items():
            if out[name] is None:
                out[name] = default()
        return out


def _quantity(value: Any, path: str) -> int | None:
    number = _integer(value, path)
    if number is not None and not 1 <= number <= 2_147_483_647:
        raise _Invalid(path, "The field quantity must be between 1 and 2147483647.")
    return number


_ADDRESS_FIELDS: dict[str, Converter] = {
    "name": _string, "company": _string, "street1": _string, "street2": _string,
    "street3": _string, "city": _string, "state": _string, "postalCode": _string,
    "country": _country, "phone": _string, "residential": _boolean,
}
_SHIP_TO = _Model(
    "Address", _ADDRESS_FIELDS, required=("name", "street1", "city", "postalCode", "country")
)
_BILL_TO = _Model("Address", _ADDRESS_FIELDS, required=("name",))
_WEIGHT = _Model(
    "Weight",
    {"value": _decimal, "units": _enum(tuple(WEIGHT_UNITS))},
    required=("value", "units"),
)
_DIMENSIONS = _Model(
    "Dimensions",
    {"units": _enum(DIMENSION_UNITS), "length": _decimal, "width": _decimal, "height": _decimal},
    required=("units",),
)
_OPTION = _Model("ItemOption", {"name": _string, "value": _string})
_ITEM = _Model(
    "OrderItem",
    {
        "lineItemKey": _string, "sku": _string, "name": _string, "imageUrl": _string,
        "weight": _WEIGHT, "quantity": _quantity, "unitPrice": _decimal, "taxAmount": _decimal,
        "shippingAmount": _decimal, "warehouseLocation": _string,
        "options": _list_of(_OPTION), "productId": _integer, "fulfillmentSku": _string,
        "adjustment": _boolean, "upc": _string,
    },
    defaults={"options": list, "adjustment": lambda: False},
    required=("sku", "quantity"),
)
_INSURANCE = _Model(
    "InsuranceOptions",
    {"provider": _string, "insureShipment": _boolean, "insuredValue": _decimal},
    defaults={"insureShipment": lambda: False, "insuredValue": lambda: 0.0},
)
_CUSTOMS_ITEM = _Model(
    "CustomsItem",
    {
        "customsItemId": _integer, "description": _string, "quantity": _integer,
        "value": _decimal, "harmonizedTariffCode": _string, "countryOfOrigin": _country,
    },
)
_INTERNATIONAL = _Model(
    "InternationalOptions",
    {
        "contents": _enum(CONTENTS), "customsItems": _list_of(_CUSTOMS_ITEM),
        "nonDelivery": _enum(NON_DELIVERY),
    },
)
_ADVANCED = _Model(
    "AdvancedOptions",
    {
        "warehouseId": _integer, "nonMachinable": _boolean, "saturdayDelivery": _boolean,
        "containsAlcohol": _boolean, "mergedOrSplit": _boolean,
        "mergedIds": _list_of(_integer), "parentId": _integer, "storeId": _integer,
        "customField1": _string, "customField2": _string, "customField3": _string,
        "source": _string, "billToParty": _enum(BILL_TO_PARTIES), "billToAccount": _string,
        "billToPostalCode": _string, "billToCountryCode": _country,
        "billToMyOtherAccount": _integer,
    },
    defaults={
        "nonMachinable": lambda: False, "saturdayDelivery": lambda: False,
        "containsAlcohol": lambda: False, "mergedOrSplit": lambda: False, "mergedIds": list,
    },
)
_ORDER = _Model(
    "Order",
    {
        "orderNumber": _limited(50), "orderKey": _string, "orderDate": _date,
        "paymentDate": _date, "shipByDate": _date, "orderStatus": _enum(ORDER_STATUSES),
        "customerId": _integer, "customerUsername": _string, "customerEmail": _string,
        "billTo": _BILL_TO, "shipTo": _SHIP_TO, "items": _list_of(_ITEM),
        "amountPaid": _decimal, "taxAmount": _decimal, "shippingAmount": _decimal,
        "customerNotes": _string, "internalNotes": _string, "gift": _boolean,
        "giftMessage": _string, "paymentMethod": _string, "requestedShippingService": _string,
        "carrierCode": _string, "serviceCode": _string, "packageCode": _string,
        "confirmation": _enum(CONFIRMATIONS), "shipDate": _date, "holdUntilDate": _date,
        "weight": _WEIGHT, "dimensions": _DIMENSIONS, "insuranceOptions": _INSURANCE,
        "internationalOptions": _INTERNATIONAL, "advancedOptions": _ADVANCED,
        "tagIds": _list_of(_integer),
    },
    defaults={
        "items": list, "gift": lambda: False, "confirmation": lambda: "none",
        "insuranceOptions": lambda: _INSURANCE({}, "insuranceOptions"),
        "internationalOptions": lambda: _INTERNATIONAL({}, "internationalOptions"),
        "advancedOptions": lambda: _ADVANCED({}, "advancedOptions"),
    },
    required=("orderNumber", "orderDate", "orderStatus", "billTo", "shipTo"),
)

#: The answer's keys, in the order of the document's sample response.
_ORDER_KEYS = (
    "orderId", "orderNumber", "orderKey", "orderDate", "createDate", "modifyDate", "paymentDate",
    "shipByDate", "orderStatus", "customerId", "customerUsername", "customerEmail", "billTo",
    "shipTo", "items", "orderTotal", "amountPaid", "taxAmount", "shippingAmount",
    "customerNotes", "internalNotes", "gift", "giftMessage", "paymentMethod",
    "requestedShippingService", "carrierCode", "serviceCode", "packageCode", "confirmation",
    "shipDate", "holdUntilDate", "weight", "dimensions", "insuranceOptions",
    "internationalOptions", "advancedOptions", "tagIds", "userId", "externallyFulfilled",
    "externallyFulfilledBy", "labelMessages",
)


def _with_weight_units(weight: dict[str, Any] | None) -> dict[str, Any] | None:
    if weight is None:
        return None
    return {**weight, "WeightUnits": WEIGHT_UNITS[weight["units"]]}


def _address_verified(ship_to: dict[str, Any]) -> str:
    if ship_to["country"].upper() == "US" and _US_ZIP.match(ship_to["postalCode"]):
        return "Address validated successfully"
    return "Address validation warning"


def _order_total(order: dict[str, Any]) -> float:
    total: float = sum(item["quantity"] * (item["unitPrice"] or 0) for item in order["items"])
    total += (order["taxAmount"] or 0) + (order["shippingAmount"] or 0)
    return round(total, 2)


def _message(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return json_response({"Message": message}, status=status, headers=headers)


class SophioSettings(SimulatorSettings):
    """Sophio's credentials and switches (``ORDER_DISPATCH_SANDBOX_SOPHIO_<NAME>``)."""

    model_config = SettingsConfigDict(env_prefix="ORDER_DISPATCH_SANDBOX_SOPHIO_")

    api_key: str = DEFAULT_API_KEY
    api_secret: SecretStr = SecretStr(DEFAULT_API_SECRET)
    upsert_by_order_key: bool = True
    rate_limit_per_minute: int = Field(DEFAULT_RATE_LIMIT_PER_MINUTE, ge=0)


class SophioSimulator(VendorSimulator):
    """Sophio's ``createorder.wws`` as documented, with ShipStation V1 order semantics."""

    name = "sophio"
    settings_class = SophioSettings
    settings: SophioSettings

    def __init__(self, settings: SophioSettings | None = None, /, **overrides: Any) -> None:
        super().__init__(settings, **overrides)
        self.api_key = self.settings.api_key
        self.api_secret = self.settings.api_secret.get_secret_value()
        self.upsert_by_order_key = self.settings.upsert_by_order_key
        self.rate_limit_per_minute = self.settings.rate_limit_per_minute
        credentials = f"{self.api_key}:{self.api_secret}".encode()
        self._token = base64.b64encode(credentials).decode().rstrip("=")
        self._by_order_key: dict[str, str] = {}
        self._windows: dict[str, list[float]] = {}
        self._item_ids = itertools.count(328_070_751)

    def routes(self) -> list[web.RouteDef]:
        """``/createorder.wws`` (POST; other methods get 405)."""
        return [web.route("*", "/createorder.wws", self.createorder)]

    def reset(self) -> None:
        """Forget orders, the orderKey index and the rate-limit windows."""
        super().reset()
        self._by_order_key.clear()
        self._windows.clear()

    # Auth and rate limit

    def _authenticate(self, request: web.Request) -> str | None:
        raw = request.query.get("authentication")
        if not raw:
            return None
        # A raw "+" in the query string arrives as a space after form decoding.
        token = raw.strip().replace(" ", "+").rstrip("=")
        return self.api_key if token == self._token else None

    def _count(self, api_key: str) -> tuple[bool, dict[str, str]]:
        """Count one request against the key's minute; (allowed, rate-limit headers)."""
        limit = self.rate_limit_per_minute
        if limit <= 0:
            return True, {}
        now = time.monotonic()
        window = self._windows.get(api_key)
        if window is None or now >= window[0]:
            window = [now + _WINDOW_S, 0.0]
            self._windows[api_key] = window
        window[1] += 1
        used = int(window[1])
        reset = max(1, math.ceil(window[0] - now))
        headers = {
            "X-Rate-Limit-Limit": str(limit),
            "X-Rate-Limit-Remaining": str(max(0, limit - used)),
            "X-Rate-Limit-Reset": str(reset),
        }
        return used <= limit, headers

    # The endpoint

    async def createorder(self, request: web.Request) -> web.Response:
        """``POST /createorder.wws?action=CREATE&authentication=b64(key:secret)``."""
        if request.method != "POST":
            return _message(
                405,
                f"The requested resource does not support http method '{request.method}'.",
                {"Allow": "POST"},
            )
        api_key = self._authenticate(request)
        if api_key is None:
            return _message(401, DENIED)
        allowed, headers = self._count(api_key)
        if not allowed:
            return json_response(
                {"message": "Too Many Requests"},
                status=429,
                headers={**headers, "Retry-After": headers["X-Rate-Limit-Reset"]},
            )
        action = request.query.get("action")
        if not action:
            return _message(400, "The action parameter is required; use action=CREATE.", headers)
        if action.upper() != "CREATE":
            return _message(
                400, f"The action '{action}' is not supported; use action=CREATE.", headers
            )
        if not (await request.read()).strip():
            return self._invalid("apiOrder", "A non-empty request body is required.", headers)
        body, problem = await read_json(request)
        if problem is not None or not isinstance(body, dict):
            reason = problem or f"Cannot deserialize {_kind(body)} into type 'Order'."
            return self._invalid("apiOrder", reason, headers)
        try:
            order = _ORDER(body, "")
        except _Invalid as exc:
            return self._invalid(_join("apiOrder", exc.path), exc.reason, headers)
        assert order is not None
        return self._save(order, headers)

    def _invalid(self, key: str, reason: str, headers: dict[str, str]) -> web.Response:
        return json_response(
            {"Message": INVALID, "ModelState": {key: [reason]}}, status=400, headers=headers
        )

    def _save(self, fields: dict[str, Any], headers: dict[str, str]) -> web.Response:
        now = _now()
        order_key = fields["orderKey"] or None
        existing = None
        if order_key is not None and self.upsert_by_order_key:
            stored_id = self._by_order_key.get(order_key)
            existing = self.store.get(stored_id) if stored_id is not None else None
        if existing is not None and existing["orderStatus"] in LOCKED_STATUSES:
            return _message(
                400,
                f"Order {existing['orderId']} (orderKey '{order_key}') is "
                f"{existing['orderStatus']}; shipped and cancelled orders are locked from "
                "modification through the API.",
                headers,
            )
        old_items: dict[str, dict[str, Any]] = {}
        if existing is not None:
            old_items = {i["lineItemKey"]: i for i in existing["items"] if i["lineItemKey"]}
        items: list[dict[str, Any]] = []
        for item in fields["items"]:
            old = old_items.get(item["lineItemKey"]) if item["lineItemKey"] else None
            items.append({
                "orderItemId": old["orderItemId"] if old else next(self._item_ids),
                **item,
                "weight": _with_weight_units(item["weight"]),
                "createDate": old["createDate"] if old else now,
                "modifyDate": now,
            })
        ship_to = {**fields["shipTo"], "addressVerified": _address_verified(fields["shipTo"])}
        values: dict[str, Any] = {
            **fields,
            "orderId": existing["orderId"] if existing else 123_455 + self.next_number(),
            "orderKey": order_key or uuid.uuid4().hex,
            "createDate": existing["createDate"] if existing else now,
            "modifyDate": now,
            "billTo": {**fields["billTo"], "addressVerified": None},
            "shipTo": ship_to,
            "items": items,
            "weight": _with_weight_units(fields["weight"]),
            "userId": None,
            "externallyFulfilled": False,
            "externallyFulfilledBy": None,
            "labelMessages": None,
        }
        values["orderTotal"] = _order_total(values)
        order = {key: values.get(key) for key in _ORDER_KEYS}
        self.store[str(values["orderId"])] = order
        self._by_order_key[values["orderKey"]] = str(values["orderId"])
        return json_response(order, headers=headers)

    # Admin API and failure shapes

    def set_status(self, order_id: str, status: str) -> dict[str, Any]:
        """Set an order's ``orderStatus`` (admin API), e.g. to ``shipped`` to lock it."""
        order = self.store[order_id]
        if status not in ORDER_STATUSES:
            return {"error": f"unknown orderStatus {status!r}", "statuses": list(ORDER_STATUSES)}
        order["orderStatus"] = status
        order["modifyDate"] = _now()
        return order

    def error_response(self, status: int, retry_after: float | None) -> web.Response:
        """Injected failures as ASP.NET Web API answers: ``{"Message": ...}``."""
        messages = {
            401: DENIED,
            404: "No HTTP resource was found that matches the request URI.",
            500: "An error has occurred.",
            503: "The service is unavailable.",
        }
        return _message(
            status, messages.get(status, status_reason(status)), retry_after_header(retry_after)
        )

    def rate_limited_response(self, retry_after: float | None) -> web.Response:
        """Injected 429 in ShipStation's shape, with its rate-limit headers."""
        headers = retry_after_header(retry_after if retry_after is not None else 1)
        if self.rate_limit_per_minute > 0:
            headers.update({
                "X-Rate-Limit-Limit": str(self.rate_limit_per_minute),
                "X-Rate-Limit-Remaining": "0",
                "X-Rate-Limit-Reset": headers["Retry-After"],
            })
        return json_response({"message": "Too Many Requests"}, status=429, headers=headers)

    def malformed_body(self, content_type: str) -> bytes:
        """A cut-off order echo."""
        return b'{"orderId":123456,"orderNumber":"2965'
