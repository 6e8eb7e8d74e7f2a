"""Sophio simulator: ``POST /sophio/createorder.wws?action=CREATE&authentication=...``
(docs: sophio.txt; NOTES.md §1.1, §1.2 and §6).

Documented (docs/sophio.txt):
- one endpoint, ``createorder.wws?action=CREATE`` on the store's URL; the body is ShipStation's
  V1 Order JSON;
- auth is the query parameter ``authentication``, the Base64 of ``APIKEY:APISECRET``
  ("if the API KEY given is 'sophio' and the API Secret is 'orders' then the querystring variable
  to send would be: authentication=c29waGlvOm9yZGVycw=="). The demo defaults here
  (:data:`DEFAULT_API_KEY`, :data:`DEFAULT_API_SECRET`) are distinctive strings instead, as every
  simulator's are: the product masks credential values wherever they appear, and masking the
  words "sophio" and "orders" would garble logs and events. ``--set sophio.api_key=sophio
  --set sophio.api_secret=orders`` makes the document's own string work;
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
- ``api_key`` / ``api_secret`` (defaults ``sandbox-sophio-api-key`` /
  ``sandbox-sophio-api-secret``; the document's example is ``sophio`` / ``orders``).
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
from typing import Annotated, Any, ClassVar, Self, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from order_dispatch_sandbox import aspnet
from order_dispatch_sandbox.aspnet import Required, RequiredObject, conversion, problem
from order_dispatch_sandbox.base import (
    SimulatorSettings,
    VendorSimulator,
    json_response,
    model_of,
    read_json,
    retry_after_header,
    status_reason,
)

DEFAULT_API_KEY = "sandbox-sophio-api-key"
DEFAULT_API_SECRET = "sandbox-sophio-api-secret"
DEFAULT_RATE_LIMIT_PER_MINUTE = 40

ORDER_STATUSES = ("awaiting_payment", "awaiting_shipment", "on_hold", "shipped", "cancelled")
LOCKED_STATUSES = ("shipped", "cancelled")
WEIGHT_UNITS = {"ounces": 1, "grams": 2, "pounds": 3}
DIMENSION_UNITS = ("inches", "centimeters")
CONFIRMATIONS = ("none", "delivery", "signature", "adult_signature", "direct_signature")
BILL_TO_PARTIES = ("my_account", "my_other_account", "recipient", "third_party")
CONTENTS = ("merchandise", "documents", "gift", "returned_goods", "sample")
NON_DELIVERY = ("return_to_sender", "treat_as_abandoned")


try:
    _PACIFIC: tzinfo = ZoneInfo("America/Los_Angeles")
except ZoneInfoNotFoundError:  # no tz database on this machine: PST all year
    _PACIFIC = timezone(timedelta(hours=-8), "PST")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_US_ZIP = re.compile(r"^\d{5}(-\d{4})?$")

_T = TypeVar("_T")


def _now() -> str:
    return datetime.now(_PACIFIC).replace(tzinfo=None).isoformat(timespec="milliseconds")


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


def _show(value: Any) -> str:
    if value is None:
        return "value {null}"
    if isinstance(value, str):
        return f"string '{value}'"
    return f"{_kind(value)} {value!r}"


# The order body as pydantic models that bind like Json.NET (names case-insensitive, unknown names
# ignored, its lenient conversions) and fail with ASP.NET's texts.


def _string(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise conversion(f"Unexpected token {_kind(value)} when reading a string.")


def _convert(target: str, parse: Callable[[Any], Any]) -> BeforeValidator:
    """Json.NET's conversion to ``target``: null and blank strings are null; a value ``parse``
    refuses (ValueError, TypeError) is "Could not convert ... to <target>."."""

    def convert(value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        try:
            return parse(value)
        except (TypeError, ValueError):
            raise conversion(f"Could not convert {_show(value)} to {target}.") from None

    return BeforeValidator(convert)


def _integer(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(value)
    return int(value.strip() if isinstance(value, str) else value)


def _decimal(value: Any) -> float | int:
    if isinstance(value, str) and math.isfinite(number := float(value)):
        return number
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    raise ValueError(value)


def _date(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    datetime.fromisoformat(value.strip())
    return value


def _boolean(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise conversion(f"Could not convert {_show(value)} to boolean.")


def _array(value: Any) -> list[Any] | None:
    if value is None or isinstance(value, list):
        return value
    raise conversion(f"Cannot deserialize {_show(value)} into an array.")


def _max_length(limit: int) -> AfterValidator:
    def check(value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and len(value) > limit:
            name = info.field_name
            raise problem(f"The field {name} must be a string with a maximum length of {limit}.")
        return value

    return AfterValidator(check)


def _one_of(values: tuple[str, ...]) -> AfterValidator:
    def check(value: str | None, info: ValidationInfo) -> str | None:
        if value and value not in values:
            name = info.field_name
            raise problem(f"'{value}' is not a valid {name}. Valid values: {', '.join(values)}.")
        return value or None

    return AfterValidator(check)


def _country(value: str | None, info: ValidationInfo) -> str | None:
    if value and not _COUNTRY.match(value):
        raise problem(f"The field {info.field_name} must be a two-letter ISO country code.")
    return value or None


def _quantity(value: int | None, info: ValidationInfo) -> int | None:
    if value is not None and not 1 <= value <= 2_147_483_647:
        raise problem(f"The field {info.field_name} must be between 1 and 2147483647.")
    return value


_Str = Annotated[str | None, BeforeValidator(_string)]
_Int = Annotated[int | None, _convert("integer", _integer)]
_Decimal = Annotated[int | float | None, _convert("decimal", _decimal)]
_Bool = Annotated[bool | None, BeforeValidator(_boolean)]
_Date = Annotated[str | None, _convert("DateTime", _date)]
_Country = Annotated[_Str, AfterValidator(_country)]
_List = Annotated[list[_T] | None, BeforeValidator(_array)]


class _NetModel(BaseModel):
    """A Json.NET-like binding of one .NET type; a member left null takes its default."""

    #: The .NET type's name (the model's), as conversion errors show it.
    net_type: ClassVar[str]
    #: Member names by their lower case; the members whose default is not null.
    lower_names: ClassVar[dict[str, str]]
    defaulted: ClassVar[list[str]]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.net_type = cls.__name__
        fields = cls.model_fields
        cls.lower_names = {name.lower(): name for name in fields}
        cls.defaulted = [
            n for n, f in fields.items() if f.get_default(call_default_factory=True) is not None
        ]

    @model_validator(mode="before")
    @classmethod
    def _bind(cls, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise conversion(f"Error converting {_show(value)} to type '{cls.net_type}'.")
        names = cls.lower_names
        return {names[key.lower()]: v for key, v in value.items() if key.lower() in names}

    @model_validator(mode="after")
    def _null_is_default(self) -> Self:
        for name in self.defaulted:
            if getattr(self, name) is None:
                default = type(self).model_fields[name].get_default(call_default_factory=True)
                setattr(self, name, default)
        return self


_ReqStr = Required[_Str]
_ReqDate = Required[_Date]
_ReqDecimal = Required[_Decimal]
_ReqCountry = Required[_Country]
_WeightUnits = Required[Annotated[_Str, _one_of(tuple(WEIGHT_UNITS))]]
_DimensionUnits = Required[Annotated[_Str, _one_of(DIMENSION_UNITS)]]
_OrderNumber = Required[Annotated[_Str, _max_length(50)]]
_OrderStatus = Required[Annotated[_Str, _one_of(ORDER_STATUSES)]]
_Quantity = Required[Annotated[_Int, AfterValidator(_quantity)]]
_Ints = _List[_Int]


def _net(name: str, base: type[_NetModel] | None = None, /, **fields: Any) -> type[_NetModel]:
    """A Json.NET-bound .NET type ``name`` (its ``net_type``) with ``fields`` in their order."""
    model: type[_NetModel] = model_of(name, base or _NetModel, **fields)  # type: ignore[assignment]
    return model


def _list_of(model: type[_NetModel]) -> Any:
    return _List[model]  # type: ignore[misc, valid-type]


def _required(model: type[_NetModel]) -> Any:
    return (RequiredObject[model | None], None)  # type: ignore[misc, valid-type]


_Address = _net(
    "Address",
    name=_ReqStr, company=_Str, street1=_Str, street2=_Str, street3=_Str, city=_Str, state=_Str,
    postalCode=_Str, country=_Country, phone=_Str, residential=_Bool,
)
# shipTo: billTo's type, with more members required
_ShipTo = _net(
    "Address", _Address,
    street1=_ReqStr, city=_ReqStr, postalCode=_ReqStr, country=_ReqCountry,
)
_Weight = _net("Weight", value=_ReqDecimal, units=_WeightUnits)
_Dimensions = _net(
    "Dimensions", units=_DimensionUnits, length=_Decimal, width=_Decimal, height=_Decimal
)
_OrderItem = _net(
    "OrderItem",
    lineItemKey=_Str, sku=_ReqStr, name=_Str, imageUrl=_Str, weight=_Weight | None,
    quantity=_Quantity, unitPrice=_Decimal, taxAmount=_Decimal, shippingAmount=_Decimal,
    warehouseLocation=_Str,
    options=(_list_of(_net("ItemOption", name=_Str, value=_Str)), Field(default_factory=list)),
    productId=_Int, fulfillmentSku=_Str, adjustment=(_Bool, False), upc=_Str,
)
_InsuranceOptions = _net(
    "InsuranceOptions",
    provider=_Str, insureShipment=(_Bool, False), insuredValue=(_Decimal, 0.0),
)
_CustomsItem = _net(
    "CustomsItem",
    customsItemId=_Int, description=_Str, quantity=_Int, value=_Decimal,
    harmonizedTariffCode=_Str, countryOfOrigin=_Country,
)
_InternationalOptions = _net(
    "InternationalOptions",
    contents=Annotated[_Str, _one_of(CONTENTS)], customsItems=_list_of(_CustomsItem),
    nonDelivery=Annotated[_Str, _one_of(NON_DELIVERY)],
)
_AdvancedOptions = _net(
    "AdvancedOptions",
    warehouseId=_Int, nonMachinable=(_Bool, False), saturdayDelivery=(_Bool, False),
    containsAlcohol=(_Bool, False), mergedOrSplit=(_Bool, False),
    mergedIds=(_Ints, Field(default_factory=list)), parentId=_Int, storeId=_Int,
    customField1=_Str, customField2=_Str, customField3=_Str, source=_Str,
    billToParty=Annotated[_Str, _one_of(BILL_TO_PARTIES)], billToAccount=_Str,
    billToPostalCode=_Str, billToCountryCode=_Country, billToMyOtherAccount=_Int,
)
#: ShipStation's V1 Order as the request binds it.
_Order = _net(
    "Order",
    orderNumber=_OrderNumber, orderKey=_Str, orderDate=_ReqDate, paymentDate=_Date,
    shipByDate=_Date, orderStatus=_OrderStatus, customerId=_Int, customerUsername=_Str,
    customerEmail=_Str, billTo=_required(_Address), shipTo=_required(_ShipTo),
    items=(_list_of(_OrderItem), Field(default_factory=list)), amountPaid=_Decimal,
    taxAmount=_Decimal, shippingAmount=_Decimal, customerNotes=_Str, internalNotes=_Str,
    gift=(_Bool, False), giftMessage=_Str, paymentMethod=_Str, requestedShippingService=_Str,
    carrierCode=_Str, serviceCode=_Str, packageCode=_Str,
    confirmation=(Annotated[_Str, _one_of(CONFIRMATIONS)], "none"), shipDate=_Date,
    holdUntilDate=_Date, weight=_Weight | None, dimensions=_Dimensions | None,
    insuranceOptions=(_InsuranceOptions | None, Field(default_factory=_InsuranceOptions)),
    internationalOptions=(
        _InternationalOptions | None, Field(default_factory=_InternationalOptions)
    ),
    advancedOptions=(_AdvancedOptions | None, Field(default_factory=_AdvancedOptions)),
    tagIds=_Ints,
)


def model_state(exc: ValidationError) -> dict[str, list[str]]:
    """Sophio's ModelState for an order that did not bind: its first problem only
    (``{"apiOrder.items[1].quantity": [reason]}``)."""
    key, reasons = next(iter(aspnet.model_state(exc, "apiOrder").items()))
    return {key: reasons[:1]}


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


class SophioSettings(SimulatorSettings):
    """Sophio's credentials and switches (``ORDER_DISPATCH_SANDBOX_SOPHIO_<NAME>``)."""

    api_key: str = DEFAULT_API_KEY
    api_secret: SecretStr = SecretStr(DEFAULT_API_SECRET)
    upsert_by_order_key: bool = True
    rate_limit_per_minute: int = Field(DEFAULT_RATE_LIMIT_PER_MINUTE, ge=0)


class SophioSimulator(VendorSimulator):
    """Sophio's ``createorder.wws`` as documented, with ShipStation V1 order semantics."""

    name = "sophio"
    settings_class = SophioSettings
    settings: SophioSettings
    #: A cut-off order echo.
    malformed = b'{"orderId":123456,"orderNumber":"2965'

    def __init__(self, settings: SophioSettings | None = None, /, **overrides: Any) -> None:
        super().__init__(settings, **overrides)
        credentials = f"{self.api_key}:{self.api_secret}".encode()
        self._token = base64.b64encode(credentials).decode().rstrip("=")
        self._by_order_key: dict[str, str] = {}
        self._item_ids = itertools.count(328_070_751)

    def routes(self) -> list[web.RouteDef]:
        """``/createorder.wws`` (POST; other methods get 405)."""
        return [web.route("*", "/createorder.wws", self.createorder)]

    def reset(self) -> None:
        """Forget orders, the orderKey index and the rate-limit windows."""
        super().reset()
        self._by_order_key.clear()

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
        used, ends = self.count_request(api_key, 60)
        headers = {
            "X-Rate-Limit-Limit": str(limit),
            "X-Rate-Limit-Remaining": str(max(0, limit - used)),
            "X-Rate-Limit-Reset": str(max(1, math.ceil(ends - time.time()))),
        }
        return used <= limit, headers

    # The endpoint

    async def createorder(self, request: web.Request) -> web.Response:
        """``POST /createorder.wws?action=CREATE&authentication=b64(key:secret)``."""
        if request.method != "POST":
            return aspnet.message(
                405,
                f"The requested resource does not support http method '{request.method}'.",
                {"Allow": "POST"},
            )
        api_key = self._authenticate(request)
        if api_key is None:
            return aspnet.message(401, aspnet.DENIED)
        allowed, headers = self._count(api_key)
        if not allowed:
            return json_response(
                {"message": "Too Many Requests"},
                status=429,
                headers={**headers, "Retry-After": headers["X-Rate-Limit-Reset"]},
            )
        action = request.query.get("action")
        if not action:
            text = "The action parameter is required; use action=CREATE."
            return aspnet.message(400, text, headers)
        if action.upper() != "CREATE":
            return aspnet.message(
                400, f"The action '{action}' is not supported; use action=CREATE.", headers
            )
        if not (await request.read()).strip():
            reason = "A non-empty request body is required."
            return aspnet.invalid({"apiOrder": [reason]}, headers)
        body, problem = await read_json(request)
        if problem is not None or not isinstance(body, dict):
            reason = problem or f"Cannot deserialize {_kind(body)} into type 'Order'."
            return aspnet.invalid({"apiOrder": [reason]}, headers)
        try:
            order = _Order.model_validate(body)
        except ValidationError as exc:
            return aspnet.invalid(model_state(exc), headers)
        return self._save(order.model_dump(), headers)

    def _save(self, fields: dict[str, Any], headers: dict[str, str]) -> web.Response:
        now = _now()
        order_key = fields["orderKey"] or None
        existing = None
        if order_key is not None and self.upsert_by_order_key:
            stored_id = self._by_order_key.get(order_key)
            existing = self.store.get(stored_id) if stored_id is not None else None
        if existing is not None and existing["orderStatus"] in LOCKED_STATUSES:
            return aspnet.message(
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
            401: aspnet.DENIED,
            404: "No HTTP resource was found that matches the request URI.",
            500: "An error has occurred.",
            503: "The service is unavailable.",
        }
        return aspnet.message(
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
