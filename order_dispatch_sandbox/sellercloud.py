"""SellerCloud simulator: ``/sellercloud/rest/api/...`` (docs: sellercloud.txt, NOTES.md §5).

Documented (docs/sellercloud.txt, NOTES.md §5, the swagger subset beside NOTES.md):
- ``POST /rest/api/token`` with ``{"Username", "Password"}`` (both required) answers
  ``access_token``, ``token_type`` ``"Bearer"``, ``username``, ``expires_in``, ``.issued``,
  ``.expires``; "Each Access Token will be valid for 60 minutes"; every other call sends
  ``Authorization: Bearer <token>``; "If user is not authenticated, then response will be
  Status Code 401 => Not Valid Token".
- ``POST /rest/api/Orders`` (``OrderBaseModel``) answers 200 with a bare int32, the new order ID.
  Required: CustomerDetails (Email, FirstName, LastName), OrderDetails (CompanyID, and "Channel is
  mandatory", an int enum; the document's own sample sends the name ``"Local_Store"``), and per the
  swagger ShippingAddress and BillingAddress (the document's table says "No": see the switch below).
- ``GET /rest/api/Orders/{id}`` (SingleOrderDataDto: ``Statuses`` {OrderStatus, ShippingStatus,
  PaymentStatus, DropshipStatus} and ``OrderDetails.OrderSourceOrderId``);
  ``GET /rest/api/Orders?model.orderSourceOrderIDList=...`` (repeatable) with ``model.pageNumber``
  (default 1), ``model.pageSize`` (default 10, max 50), ``model.orderIDs``, ``model.companyID``,
  ``model.orderStatus`` -> ``{"Items": [...], "TotalResults": n}``;
  ``PUT /rest/api/Orders/StatusCode`` ``{"Orders": [ids], "Status": -1}`` -> the updated ids;
  ``DELETE /rest/api/Orders/{id}``. Enums as in the swagger (OrderStatus -1 Canceled ... 999 Void).
- Rate limit "10,800 requests/hour per user", all endpoints count; when hit:
  ``{"Error": "Too many requests.", "RateLimitResetTime": "2022-01-14T09:38:49.9856571Z"}``.
- 500 Internal Server Error exists.

Chosen where the document is silent (each a choice, NOTES.md §5.3 "[I]"):
- errors are ASP.NET WebAPI shaped (the swagger names ``SellerCloud.Delta.WebApi``): 401
  ``{"Message": "Not Valid Token"}`` with ``WWW-Authenticate: Bearer`` for a missing, unknown or
  expired token; validation 400 ``{"Message": "The request is invalid.", "ModelState":
  {"model.OrderDetails.Channel": ["The Channel field is required."], ...}}`` listing every
  problem, keyed by the parameter name (``model``, ``request`` for StatusCode) and field path,
  with Json.NET-like texts for wrong types; a wrong username or password at the token endpoint
  is 400 ``{"Message": "Username or password is invalid."}`` (not 401, so a client that refreshes
  its token on 401 cannot loop); unknown order 404 ``{"Message": "Order <id> was not found."}``;
  a body that is not JSON (or form, for the token) is 415 with the .NET media-type message;
  injected 5xx are ``{"Message": "An error has occurred."}``.
- the rate limit answers HTTP 429 (status not stated) with the documented body and no
  ``Retry-After`` header (none is documented); the window is a fixed hour from the user's first
  counted request; requests without a valid token or credentials count for nobody. Injected
  rate limits use the same body with ``RateLimitResetTime`` = now + ``retry_after`` (1 s when
  unset), plus ``Retry-After`` when the fault sets one.
- ``.issued`` / ``.expires`` are ISO 8601 UTC (swagger ``date-time``), ``expires_in`` = TTL in s.
- a company must be one of the sandbox's known companies (``company_ids``); Channel accepts the
  swagger's ints or their names (case-insensitive, as Json.NET reads enums); ints outside the
  swagger enum are refused. Ints must be JSON integers (no numeric strings), fields are matched
  case-sensitively, unknown fields are ignored (Json.NET's default), ``PaymentDetails`` (in the
  document, not in the swagger model) is accepted and ignored. Email format is not checked.
- a product line needs ProductID and Qty >= 1 (products themselves are not looked up); Products
  may be missing or empty ("Is Required: No").
- a new order is OrderStatus InProcess (2), ShippingStatus Unshipped (1), PaymentStatus
  NoPayment (10), DropshipStatus None (0); ids are ints from 1000001 up.
- ``GET /Orders/{id}`` answers the created parts (every swagger field, missing ones null) plus
  ``ID``, ``Statuses`` and ``OrderDetails`` ``CreatedOn`` / ``LastUpdated``; OrderDate defaults
  to the creation time. A non-integer id is 400 (ModelState ``id``).
- list items are flat (ID, CompanyID, Channel, OrderSourceOrderID, StatusCode, ShippingStatus,
  PaymentStatus, DropShipStatus, TimeOfOrder, LastUpdate), sorted by ID; no filter = all orders;
  pageSize outside 1..50 or pageNumber < 1 is refused with 400 (not clamped).
- StatusCode leaves out of its answer ids it does not know, and refuses to cancel (-1) a
  FullyShipped order (also left out); any other change is applied.
- bodies must be ``application/json`` or ``text/json`` (the token also takes a form); paths are
  matched case-sensitively (ASP.NET would not), query names case-insensitively.
- an injected malformed answer is cut-off JSON (``{"Items":[{"ID":10000``), never a bare
  integer, which would still parse.

Switchable unknowns (:class:`SellerCloudSettings`, ``ORDER_DISPATCH_SANDBOX_SELLERCLOUD_<NAME>``):
- ``reject_duplicate_source_id`` (default False, NOTES.md §5.3: "Assume POST is NOT idempotent"):
  True refuses a second order with the same OrderSourceOrderID in the same company with 400,
  naming the existing order ID.
- ``require_addresses`` (default True, as the swagger): False accepts orders without
  ShippingAddress / BillingAddress, as the document's table says.
- ``rate_limit_per_hour`` (default 10800, 0 = unlimited), ``token_ttl_s`` (default 3600),
  ``username`` / ``password`` / ``company_ids`` (demo defaults below).
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from types import GenericAlias
from typing import Annotated, Any, ClassVar

from aiohttp import web
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
)

from order_dispatch_sandbox import aspnet
from order_dispatch_sandbox.aspnet import Required, RequiredObject
from order_dispatch_sandbox.base import (
    SimulatorSettings,
    VendorSimulator,
    json_response,
    model_of,
    retry_after_header,
    status_reason,
)

DEFAULT_USERNAME = "sandbox-sellercloud-user"
DEFAULT_PASSWORD = "sandbox-sellercloud-password"
DEFAULT_COMPANY_IDS = "1"
DEFAULT_TOKEN_TTL_S = 3600
DEFAULT_RATE_LIMIT_PER_HOUR = 10800

_INT32 = (-(2**31), 2**31 - 1)
_JSON_TYPES = ("application/json", "text/json")
_FORM = "application/x-www-form-urlencoded"


class _Enum:
    """An int enum of the swagger that Json.NET also reads from names."""

    def __init__(self, net_type: str, members: dict[str, int]) -> None:
        self.net_type = net_type
        self.members = members
        self.values = set(members.values())
        self.by_name = {k.lower(): v for k, v in members.items()}

    @property
    def convert(self) -> BeforeValidator:
        """The field type that binds this enum."""
        return _convert(self.net_type, self.parse)

    def parse(self, value: Any) -> int | None:
        """The member's value, or None when ``value`` is not one."""
        if isinstance(value, str):
            stripped = value.strip()
            if stripped.lstrip("-").isdigit():
                value = int(stripped)
            else:
                return self.by_name.get(stripped.lower())
        if isinstance(value, int) and not isinstance(value, bool) and value in self.values:
            return value
        return None


_CHANNELS = [
    "Local_Store", "eBayOrder", "eBaySingleItem", "Yahoo", "Amazon", "PriceGrabber", "Website",
    "Buy", "NewEggMall", "Magento", "QuickBooks", "RMS", "Cart32", "Sears", "FBA", "Wholesale",
    "Overstock", "NewEggdotcom", "Etsy", "Bonanza", "PriceFalls", "Wayfair", "UnbeatableSale",
    "VendorCentral", "Hayneedle", "SmartBargains", "uBid", "ATGStores", "StacksAndStacks",
    "Sharkstores", "BestBuy", "Kohls", "Staples", "OneStopPlus", "Meijer", "Sonsi", "Walmart",
    "HSN", "NewEgg_Business", "KMart", "Wish", "SPRichards", "FingerHut", "Groupon",
    "Walmart_Marketplace", "ShopHQ", "PriceMinister", "GS", "DrugStore", "MercadoLibre", "JET",
    "ElevenMain", "SearsVendor", "Choxi", "TradeMe", "Tanga", "Target", "GrouponMarketplace",
    "Reverb", "BedBathAndBeyond", "Dropship_Central", "DSW", "Houzz", "Gilt", "BestBuyDS",
    "TopHatter", "HomeDepot", "MassGenie", "Cdiscount", "GrouponGateway", "SBN", "GoogleExpress",
    "Target_Plus", "WFS",
]
_CHANNEL_VALUES = [0, 1, 2, 3, 4, 5, 6, 7, 12, *range(15, 80)]
CHANNEL = _Enum("OrderChannelType", dict(zip(_CHANNELS, _CHANNEL_VALUES, strict=True)))
ORDER_STATUS = _Enum(
    "OrderStatusCode",
    {"ShoppingCart": 1, "InProcess": 2, "Completed": 3, "ProblemOrder": 100, "OnHold": 200,
     "Quote": 300, "Void": 999, "Canceled": -1},
)
SHIPPING_STATUS = _Enum(
    "ShippingStatus",
    {"Unknown": 0, "Unshipped": 1, "PartiallyShipped": 2, "FullyShipped": 3, "ReadyForPickup": 4},
)
DISCOUNT_TYPE = _Enum("DiscountType", {"FixedAmount": 0, "Percentage": 1})
NOTE_CATEGORY = _Enum(
    "OrderNoteCategory", {"General": 0, "Customer_Instructions": 1, "Customer_Service_Note": 2}
)
CANCELED = -1

def _convert(net_type: str, parse: Callable[[Any], Any], *, null: bool = True) -> BeforeValidator:
    """A value as Json.NET converts it to ``net_type`` (``parse`` answers None when it cannot:
    "Error converting value"); null stays null unless ``null`` is False."""

    def convert(value: Any) -> Any:
        if (value is None and null) or (parsed := parse(value)) is not None:
            return None if value is None else parsed
        shown = value if isinstance(value, str) else json.dumps(value)
        raise aspnet.conversion(f"Error converting value \"{shown}\" to type '{net_type}'.")

    return BeforeValidator(convert)


def _date_time(value: Any) -> str | None:
    try:
        return value if isinstance(value, str) and datetime.fromisoformat(value.strip()) else None
    except ValueError:
        return None


def _int32(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and _INT32[0] <= value <= _INT32[1]
    return value if ok else None


def _double(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return value if ok else None


_String = Annotated[Any, _convert("System.String", lambda v: v if isinstance(v, str) else None)]
_Int = Annotated[Any, _convert("System.Int32", _int32)]
_Number = Annotated[Any, _convert("System.Double", _double)]
_Bool = Annotated[Any, _convert("System.Boolean", lambda v: v if isinstance(v, bool) else None)]
_DateTime = Annotated[Any, _convert("System.DateTime", _date_time)]


def _object(value: Any, info: ValidationInfo, *, null: bool = True) -> Any:
    if isinstance(value, dict) or (value is None and null):
        return value
    raise aspnet.problem(f"Cannot deserialize the current JSON value into '{info.field_name}'.")


def _array(value: Any, info: ValidationInfo) -> Any:
    if value is None or isinstance(value, list):
        return value or []
    path = info.field_name
    raise aspnet.problem(f"Cannot deserialize the current JSON value into '{path}' (an array).")


def _nested(model: type[BaseModel], *check: AfterValidator, required: bool = False) -> Any:
    """A member holding a ``model`` object (or null), required or not."""
    nested = Annotated[model | None, BeforeValidator(_object), *check]  # type: ignore[valid-type]
    return RequiredObject[nested] if required else nested  # type: ignore[misc]


def _list_of(model: type[BaseModel]) -> Any:
    """A member holding an array of ``model`` objects (null: empty)."""
    item = Annotated[model, BeforeValidator(partial(_object, null=False))]  # type: ignore[valid-type]
    return (Annotated[GenericAlias(list, item), BeforeValidator(_array)], [])


def _context(info: ValidationInfo) -> SellerCloudSimulator:
    sim: SellerCloudSimulator = (info.context or {})["simulator"]
    return sim


def _known_company(value: int | None, info: ValidationInfo) -> int | None:
    if value is not None and value not in _context(info).company_ids:
        raise aspnet.problem(f"Company {value} was not found.")
    return value


def _new_source_id(value: str | None, info: ValidationInfo) -> str | None:
    sim, company = _context(info), info.data.get("CompanyID")
    existing = None
    if value and company is not None and sim.reject_duplicate_source_id:
        existing = sim._duplicate(company, value)
    if existing is not None:
        message = f"Order with OrderSourceOrderID '{value}' already exists: order {existing}."
        raise aspnet.problem(message)
    return value


def _address(value: Any, info: ValidationInfo) -> Any:
    return aspnet.required(value, info) if _context(info).require_addresses else value


def _quantity(value: int | None) -> int | None:
    if value is not None and value < 1:
        raise aspnet.problem("The field Qty must be between 1 and 2147483647.")
    return value


_RequiredString = Required[_String]
_Company = Required[Annotated[_Int, AfterValidator(_known_company)]]
_Channel = Required[Annotated[Any, CHANNEL.convert]]
_SourceId = Annotated[_String, AfterValidator(_new_source_id)]
_Status = RequiredObject[Annotated[Any, ORDER_STATUS.convert]]
_Qty = Required[Annotated[_Int, AfterValidator(_quantity)]]
_OrderIds = RequiredObject[Annotated[
    list[Annotated[Any, _convert("System.Int32", _int32, null=False)]] | None,
    BeforeValidator(lambda v: v if isinstance(v, list) and v else None),  # [] is no list either
]]
_Address = model_of("Address", **dict.fromkeys((
    "Business", "FirstName", "MiddleName", "LastName", "Country", "City", "State", "Region",
    "ZipCode", "Address", "Address2", "Phone", "Fax"), _String))
_Customer = model_of(
    "CustomerDetails", ID=_Int, Email=_RequiredString, FirstName=_RequiredString,
    LastName=_RequiredString, Business=_String, IsWholesale=_Bool,
)
_OrderDetails = model_of(
    "OrderDetails", CompanyID=_Company, MarketingSource=_Int, SalesRepresentative=_Int,
    TaxExempt=_Bool, GiftOrder=_Bool, Channel=_Channel, OrderSourceOrderID=_SourceId,
    DisableInventoryCount=_Bool, OrderDate=_DateTime, EbaySellingManagerSalesRecordNumber=_String,
)
_Product = model_of(
    "Product", ProductID=_RequiredString, ReferenceID=_String, ProductName=_String,
    SitePrice=_Number, DiscountValue=_Number, DiscountType=Annotated[Any, DISCOUNT_TYPE.convert],
    Qty=_Qty, LineTaxTotal=_Number, FinalValueFee=_Number, Notes=_String,
)
_Shipping = model_of(
    "ShippingMethodDetails", Carrier=_String, ShippingMethod=_String,
    Weight=_nested(model_of("Weight", Pounds=_Number, Ounces=_Number)),
    Dimension=_nested(model_of("Dimension", Width=_Number, Height=_Number, Length=_Number)),
    HandlingFee=_Number, ShippingFee=_Number, InsuranceFee=_Number, LockShippingMethod=_Bool,
    RushOrder=_Bool, RequirePinToShip=_Bool, OtherCarrier=_String, OtherMethod=_String,
    PromiseDate=_DateTime,
)
_Gift = model_of(
    "GiftDetails", UseGiftWrap=_Bool, GiftMessage=_String, GiftWrap=_Number, GiftWrapType=_String
)
_Note = model_of("Note", Category=Annotated[Any, NOTE_CATEGORY.convert], Note=_String)
_AddressPart = (_nested(_Address, AfterValidator(_address)), Field(None, validate_default=True))
#: The body of ``POST /Orders`` (OrderBaseModel), bound with the simulator as context.
_Order = model_of(
    "OrderBaseModel",
    CustomerDetails=_nested(_Customer, required=True),
    OrderDetails=_nested(_OrderDetails, required=True),
    ShippingAddress=_AddressPart, BillingAddress=_AddressPart,
    ShippingMethodDetails=_nested(_Shipping), GiftDetails=_nested(_Gift),
    Products=_list_of(_Product), Notes=_list_of(_Note),
)
#: The body of ``PUT /Orders/StatusCode``.
_StatusCodeRequest = model_of("StatusCodeRequest", Orders=_OrderIds, Status=_Status)


def _iso(ts: float) -> str:
    """UTC ISO 8601 with .NET's seven fractional digits (``...49.9856570Z``)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _not_valid_token() -> web.Response:
    return aspnet.message(401, "Not Valid Token", {"WWW-Authenticate": "Bearer"})


class SellerCloudSettings(SimulatorSettings):
    """SellerCloud's user, known companies, limits and switches
    (``ORDER_DISPATCH_SANDBOX_SELLERCLOUD_<NAME>``)."""

    username: str = DEFAULT_USERNAME
    password: SecretStr = SecretStr(DEFAULT_PASSWORD)
    token_ttl_s: int = Field(DEFAULT_TOKEN_TTL_S, ge=0)
    #: Comma-separated CompanyIDs that exist (``1,2``).
    company_ids: str = Field(DEFAULT_COMPANY_IDS, pattern=r"^[0-9, ]*$")
    require_addresses: bool = True
    reject_duplicate_source_id: bool = False
    rate_limit_per_hour: int = Field(DEFAULT_RATE_LIMIT_PER_HOUR, ge=0)


class SellerCloudSimulator(VendorSimulator):
    """SellerCloud's Delta REST order API as documented, in memory."""

    name = "sellercloud"
    demo_options: ClassVar[dict[str, Any]] = {"company_id": 1, "channel": "Local_Store"}
    settings_class = SellerCloudSettings
    settings: SellerCloudSettings
    #: A cut-off answer (not a bare integer, not JSON).
    malformed = b'{"Items":[{"ID":10000'
    #: A setting that tests switch on a running simulator.
    reject_duplicate_source_id: bool

    def __init__(self, settings: SellerCloudSettings | None = None, /, **overrides: Any) -> None:
        super().__init__(settings, **overrides)
        self.company_ids = {int(c) for c in self.settings.company_ids.split(",") if c.strip()}
        self._tokens: dict[str, tuple[str, float]] = {}
        self._by_source: dict[str, list[int]] = {}
        #: Tokens issued since the last reset (tests count token fetches with it).
        self.tokens_issued = 0

    def routes(self) -> list[web.RouteDef]:
        """Token, create, get, list, status code and delete."""
        return [
            web.post("/rest/api/token", self.token),
            web.put("/rest/api/Orders/StatusCode", self.status_code),
            # the document's own endpoint ends with a slash: "/rest/api/Orders/"
            web.post("/rest/api/Orders", self.create),
            web.post("/rest/api/Orders/", self.create),
            web.get("/rest/api/Orders", self.list_orders),
            web.get("/rest/api/Orders/", self.list_orders),
            web.get("/rest/api/Orders/{id}", self.get),
            web.delete("/rest/api/Orders/{id}", self.delete),
        ]

    # --- auth and rate limit -----------------------------------------------------------------

    def _count(self, user: str) -> web.Response | None:
        """Count one request of ``user``; the documented rate-limit answer when over."""
        if self.rate_limit_per_hour <= 0:
            return None
        used, ends = self.count_request(user, 3600)
        if used <= self.rate_limit_per_hour:
            return None
        return json_response(
            {"Error": "Too many requests.", "RateLimitResetTime": _iso(ends)}, status=429
        )

    def _authorize(self, request: web.Request) -> web.Response | None:
        """None when the Bearer token is valid and the user is under the limit."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        entry = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if entry is None:
            return _not_valid_token()
        if time.time() >= entry[1]:
            del self._tokens[token.strip()]
            return _not_valid_token()
        return self._count(entry[0])

    async def _body(
        self, request: web.Request, param: str, *, form: bool = False, auth: bool = True
    ) -> tuple[Any, web.Response | None]:
        """The JSON (or form) body, or the .NET answer to one that cannot be read (or to a
        request without a valid token, unless ``auth`` is False)."""
        if auth and (denied := self._authorize(request)) is not None:
            return None, denied
        if form and request.content_type == _FORM:
            return dict(await request.post()), None
        if request.content_type not in _JSON_TYPES:
            return None, aspnet.unsupported(request)
        raw = await request.read()
        if not raw.strip():
            return None, aspnet.invalid({param: [f"The {param} field is required."]})
        try:
            return json.loads(raw), None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            reason = f"Unexpected character encountered while parsing: {exc}"
            return None, aspnet.invalid({param: [reason]})

    async def token(self, request: web.Request) -> web.Response:
        """``POST /rest/api/token``."""
        body, problem = await self._body(request, "model", form=True, auth=False)
        if problem is not None:
            return problem
        if not isinstance(body, dict):
            return aspnet.invalid({"model": ["The model field is required."]})
        state = {
            f"model.{f}": [f"The {f} field is required."]
            for f in ("Username", "Password") if not isinstance(body.get(f), str) or not body[f]
        }
        if state:
            return aspnet.invalid(state)
        if not (
            secrets.compare_digest(body["Username"].encode(), self.username.encode())
            and secrets.compare_digest(body["Password"].encode(), self.password.encode())
        ):
            return aspnet.message(400, "Username or password is invalid.")
        if (limited := self._count(self.username)) is not None:
            return limited
        now = time.time()
        token = secrets.token_urlsafe(48)
        self._tokens[token] = (self.username, now + self.token_ttl_s)
        self.tokens_issued += 1
        return json_response({
            "access_token": token,
            "token_type": "Bearer",
            "username": self.username,
            "expires_in": self.token_ttl_s,
            ".issued": _iso(now),
            ".expires": _iso(now + self.token_ttl_s),
        })

    def expire_tokens(self) -> None:
        """Every token issued so far becomes a 401 "Not Valid Token"."""
        self._tokens.clear()

    def reset(self) -> None:
        """Forget orders, rate-limit windows, the OrderSourceOrderID index and the token count."""
        super().reset()
        self._by_source.clear()
        self.tokens_issued = 0

    # --- orders ------------------------------------------------------------------------------

    def _validate(self, body: Any) -> tuple[dict[str, Any] | None, dict[str, list[str]]]:
        """The normalized order, or the ModelState of everything wrong with it."""
        if not isinstance(body, dict):
            return None, {"model": ["The model field is required."]}
        try:
            return _Order.model_validate(body, context={"simulator": self}).model_dump(), {}
        except ValidationError as exc:
            return None, aspnet.model_state(exc, "model")

    def _duplicate(self, company_id: int, source_id: str) -> int | None:
        for order_id in self._by_source.get(source_id, ()):
            if self.store[str(order_id)]["OrderDetails"]["CompanyID"] == company_id:
                return order_id
        return None

    async def create(self, request: web.Request) -> web.Response:
        """``POST /rest/api/Orders``: 200 with the new order ID as a bare integer."""
        body, problem = await self._body(request, "model")
        if problem is not None:
            return problem
        order, errors = self._validate(body)
        if order is None:
            return aspnet.invalid(errors)
        order_id = 1000000 + self.next_number()
        now = _iso(time.time())
        details = order["OrderDetails"]
        source_id = details.pop("OrderSourceOrderID")
        # the create model says "OrderSourceOrderID", the read model "OrderSourceOrderId"
        details["OrderSourceOrderId"] = source_id
        details["OrderDate"] = details["OrderDate"] or now
        details["CreatedOn"] = now
        details["LastUpdated"] = now
        self.store[str(order_id)] = {
            "ID": order_id,
            "OrderDetails": details,
            "Statuses": {
                "OrderStatus": ORDER_STATUS.members["InProcess"],
                "ShippingStatus": SHIPPING_STATUS.members["Unshipped"],
                "PaymentStatus": 10,
                "DropshipStatus": 0,
                "RushOrder": bool((order["ShippingMethodDetails"] or {}).get("RushOrder")),
            },
            "CustomerDetails": order["CustomerDetails"],
            "ShippingAddress": order["ShippingAddress"],
            "BillingAddress": order["BillingAddress"],
            "ShippingMethodDetails": order["ShippingMethodDetails"],
            "GiftDetails": order["GiftDetails"],
            "Products": order["Products"],
            "Notes": order["Notes"],
        }
        if source_id:
            self._by_source.setdefault(source_id, []).append(order_id)
        return json_response(order_id)

    def _find(self, request: web.Request) -> dict[str, Any] | web.Response:
        """The order the path's id names, or the answer refusing the request."""
        if (denied := self._authorize(request)) is not None:
            return denied
        raw_id = request.match_info["id"]
        try:
            order_id = int(raw_id)
        except ValueError:
            return aspnet.invalid({"id": [f"The value '{raw_id}' is not valid for id."]})
        order = self.store.get(str(order_id))
        return aspnet.message(404, f"Order {order_id} was not found.") if order is None else order

    async def get(self, request: web.Request) -> web.Response:
        """``GET /rest/api/Orders/{id}``: the SingleOrderDataDto-like order."""
        order = self._find(request)
        return order if isinstance(order, web.Response) else json_response(order)

    async def delete(self, request: web.Request) -> web.Response:
        """``DELETE /rest/api/Orders/{id}``: 200, empty body."""
        order = self._find(request)
        if isinstance(order, web.Response):
            return order
        del self.store[str(order["ID"])]
        ids = self._by_source.get(order["OrderDetails"]["OrderSourceOrderId"] or "", [])
        if order["ID"] in ids:
            ids.remove(order["ID"])
        return web.Response(status=200)

    async def list_orders(self, request: web.Request) -> web.Response:
        """``GET /rest/api/Orders?model....``: ``{"Items": [...], "TotalResults": n}``."""
        if (denied := self._authorize(request)) is not None:
            return denied
        # ASP.NET binds query names case-insensitively, with or without the "model." prefix
        query: dict[str, list[str]] = {}
        for key, value in request.query.items():
            name = key.lower().removeprefix("model.")
            query.setdefault(name, []).append(value)
        state: dict[str, list[str]] = {}

        def ints(name: str, field: str, enum: _Enum | None = None) -> list[int]:
            out: list[int] = []
            for value in query.get(name, []):
                parsed = enum.parse(value) if enum else _int(value)
                if parsed is None:
                    message = f"The value '{value}' is not valid for {field}."
                    state.setdefault(f"model.{field}", []).append(message)
                else:
                    out.append(parsed)
            return out

        page = ints("pagenumber", "pageNumber") or [1]
        size = ints("pagesize", "pageSize") or [10]
        order_ids = set(ints("orderids", "orderIDs"))
        companies = set(ints("companyid", "companyID"))
        statuses = set(ints("orderstatus", "orderStatus", ORDER_STATUS))
        if not state and not 1 <= size[-1] <= 50:
            state["model.pageSize"] = ["The field pageSize must be between 1 and 50."]
        if not state and page[-1] < 1:
            state["model.pageNumber"] = ["The field pageNumber must be at least 1."]
        if state:
            return aspnet.invalid(state)
        if "ordersourceorderidlist" in query:
            wanted = {
                oid for s in query["ordersourceorderidlist"] for oid in self._by_source.get(s, ())
            }
            found = [self.store[str(oid)] for oid in sorted(wanted)]
        else:
            found = sorted(self.store.values(), key=lambda o: int(o["ID"]))
        found = [
            o for o in found
            if (not order_ids or o["ID"] in order_ids)
            and (not companies or o["OrderDetails"]["CompanyID"] in companies)
            and (not statuses or o["Statuses"]["OrderStatus"] in statuses)
        ]
        start = (page[-1] - 1) * size[-1]
        return json_response({
            "Items": [_summary(o) for o in found[start:start + size[-1]]],
            "TotalResults": len(found),
        })

    async def status_code(self, request: web.Request) -> web.Response:
        """``PUT /rest/api/Orders/StatusCode``: the ids whose OrderStatus was changed."""
        body, problem = await self._body(request, "request")
        if problem is not None:
            return problem
        if not isinstance(body, dict):
            return aspnet.invalid({"request": ["The request field is required."]})
        try:
            valid = _StatusCodeRequest.model_validate(body).model_dump()
        except ValidationError as exc:
            return aspnet.invalid(aspnet.model_state(exc, "request"))
        ids, status = valid["Orders"], valid["Status"]
        updated = []
        for order_id in ids:
            order = self.store.get(str(order_id))
            if order is None:
                continue
            statuses = order["Statuses"]
            if status == CANCELED and statuses["ShippingStatus"] == SHIPPING_STATUS.members[
                "FullyShipped"
            ]:
                continue
            statuses["OrderStatus"] = status
            order["OrderDetails"]["LastUpdated"] = _iso(time.time())
            updated.append(order_id)
        return json_response(updated)

    def set_status(self, order_id: str, status: str) -> dict[str, Any]:
        """Change an order (admin API): an OrderStatus int or name (``Completed``, ``-1``), or a
        ShippingStatus name (``FullyShipped`` also makes the order ``Completed``)."""
        order = self.store[order_id]
        statuses = order["Statuses"]
        order_status = ORDER_STATUS.parse(status)
        shipping = SHIPPING_STATUS.parse(status) if order_status is None else None
        if order_status is not None:
            statuses["OrderStatus"] = order_status
        elif shipping is not None and not status.strip().lstrip("-").isdigit():
            statuses["ShippingStatus"] = shipping
            if shipping == SHIPPING_STATUS.members["FullyShipped"]:
                statuses["OrderStatus"] = ORDER_STATUS.members["Completed"]
        else:
            return {
                "error": f"unknown status {status!r}",
                "OrderStatus": ORDER_STATUS.members,
                "ShippingStatus": SHIPPING_STATUS.members,
            }
        order["OrderDetails"]["LastUpdated"] = _iso(time.time())
        return order

    # --- injected failures -------------------------------------------------------------------

    def error_response(self, status: int, retry_after: float | None) -> web.Response:
        """Injected failures in the .NET ``{"Message": ...}`` shape."""
        if status == 401:
            return _not_valid_token()
        message = "An error has occurred." if status >= 500 else status_reason(status)
        return aspnet.message(status, message, retry_after_header(retry_after))

    def rate_limited_response(self, retry_after: float | None) -> web.Response:
        """The documented rate-limit body; ``RateLimitResetTime`` = now + ``retry_after``."""
        reset = time.time() + (retry_after if retry_after is not None else 1)
        return json_response(
            {"Error": "Too many requests.", "RateLimitResetTime": _iso(reset)},
            status=429,
            headers=retry_after_header(retry_after),
        )


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _summary(order: dict[str, Any]) -> dict[str, Any]:
    """One ``Items`` entry of the list answer (flat: MultipleOrderDataDto is not public)."""
    details, statuses = order["OrderDetails"], order["Statuses"]
    return {
        "ID": order["ID"],
        "CompanyID": details["CompanyID"],
        "Channel": details["Channel"],
        "OrderSourceOrderID": details["OrderSourceOrderId"],
        "StatusCode": statuses["OrderStatus"],
        "ShippingStatus": statuses["ShippingStatus"],
        "PaymentStatus": statuses["PaymentStatus"],
        "DropShipStatus": statuses["DropshipStatus"],
        "TimeOfOrder": details["OrderDate"],
        "LastUpdate": details["LastUpdated"],
    }
