"""SellerCloud (Delta REST API): create an order, read its status, cancel it.

Operations:

- ``create``: ``POST /rest/api/Orders`` with the ``OrderBaseModel``; the answer is a bare
  integer, the new order ID (the vendor's id in our events);
- ``get_status``: ``GET /rest/api/Orders/{id}``; the status reported is the name of
  ``Statuses.OrderStatus`` (``InProcess``, ``Completed``, ``Canceled``...);
- ``cancel``: ``PUT /rest/api/Orders/StatusCode`` with ``{"Orders": [id], "Status": -1}``; the
  answer lists the orders the vendor changed, and an order left out of it was not cancelled.

Auth: ``POST /rest/api/token`` with ``{"Username", "Password"}`` (the account's ``username`` and
``password``) answers an ``access_token`` sent as ``Authorization: Bearer``. The sender fetches
it once per worker process, refreshes it before ``expires_in`` runs out (60 minutes when the
answer does not say) and after a 401 "Not Valid Token".

Account options: ``company_id`` (``OrderDetails.CompanyID``) and ``channel``
(``OrderDetails.Channel``, one of the vendor's channel names or numbers, sent as the number).

What the document leaves open and what we chose:

- addresses: the page marks them optional but the swagger requires both, so both are always
  sent (the billing address is the shipping address when the order has none);
- ``CustomerDetails`` needs Email, FirstName and LastName: taken from ``customer``, else from
  the billing address, else from the shipping address; missing everywhere is a validation error;
- money: the vendor takes amounts per product line only (``SitePrice``, ``LineTaxTotal``,
  ``DiscountValue``) plus ``ShippingFee``, with no documented precision, so amounts go as exact
  JSON numbers. An order-level tax or discount is accepted only when it equals the sum of the
  items' (it cannot be sent otherwise); an item's ``discount`` is its line's fixed amount;
- text has no documented length limit, so none is enforced; ``Qty`` and order IDs are int32;
- errors have no documented shape: ASP.NET's ``{"Message"}`` and ``{"Message", "ModelState"}``
  are read, the rate-limit body ``{"Error": "Too many requests.", "RateLimitResetTime"}`` is a
  retry at the reset time whatever its HTTP status (the status is not documented).

Idempotency and reconciliation: the create is not idempotent (the vendor documents no
duplicate check), so it is never repeated blindly. Every order carries our ``order_id`` as
``OrderDetails.OrderSourceOrderID``; when a create's answer is lost (or the vendor refuses a
duplicate ``OrderSourceOrderID``, which some accounts may do), the order is looked up with
``GET /rest/api/Orders?model.orderSourceOrderIDList=<order_id>&model.companyID=<company_id>``:
exactly one match is the order (accepted with its ID, ``reconciled``); several matches, or an
answer that does not show the filter applied, cannot tell (``in_doubt``). The lookup is
authoritative: the list reads the orders the create writes, and the create only answers once
the order has its ID, so "no order with this OrderSourceOrderID in this company" means the lost
request did not create one and sending it again is safe. The one gap: a request that timed out
while the vendor was still working on it, and committed after the lookup ran.
``get_status`` (a GET) and ``cancel`` (setting the same status again) are safe to repeat.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from order_dispatch.contract import (
    Address,
    Dimensions,
    ErrorKind,
    Item,
    Job,
    NormalizedOrder,
    Operation,
    Weight,
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
)

INT32_MAX = 2**31 - 1

TOKEN_PATH = "/rest/api/token"
ORDERS_PATH = "/rest/api/Orders"

#: "Each Access Token will be valid for 60 minutes" (used when the answer has no expires_in).
DEFAULT_TOKEN_LIFE_S = 3600.0

#: The rate-limit answer's ``Error``, used as its code.
RATE_LIMITED = "Too many requests."

#: ``OrderDetails.Channel`` as the swagger lists it ("0 = Local_Store , 1 = eBayOrder , ...").
CHANNELS: dict[str, int] = {
    "Local_Store": 0, "eBayOrder": 1, "eBaySingleItem": 2, "Yahoo": 3, "Amazon": 4,
    "PriceGrabber": 5, "Website": 6, "Buy": 7, "NewEggMall": 12, "Magento": 15,
    "QuickBooks": 16, "RMS": 17, "Cart32": 18, "Sears": 19, "FBA": 20, "Wholesale": 21,
    "Overstock": 22, "NewEggdotcom": 23, "Etsy": 24, "Bonanza": 25, "PriceFalls": 26,
    "Wayfair": 27, "UnbeatableSale": 28, "VendorCentral": 29, "Hayneedle": 30,
    "SmartBargains": 31, "uBid": 32, "ATGStores": 33, "StacksAndStacks": 34,
    "Sharkstores": 35, "BestBuy": 36, "Kohls": 37, "Staples": 38, "OneStopPlus": 39,
    "Meijer": 40, "Sonsi": 41, "Walmart": 42, "HSN": 43, "NewEgg_Business": 44, "KMart": 45,
    "Wish": 46, "SPRichards": 47, "FingerHut": 48, "Groupon": 49, "Walmart_Marketplace": 50,
    "ShopHQ": 51, "PriceMinister": 52, "GS": 53, "DrugStore": 54, "MercadoLibre": 55,
    "JET": 56, "ElevenMain": 57, "SearsVendor": 58, "Choxi": 59, "TradeMe": 60, "Tanga": 61,
    "Target": 62, "GrouponMarketplace": 63, "Reverb": 64, "BedBathAndBeyond": 65,
    "Dropship_Central": 66, "DSW": 67, "Houzz": 68, "Gilt": 69, "BestBuyDS": 70,
    "TopHatter": 71, "HomeDepot": 72, "MassGenie": 73, "Cdiscount": 74, "GrouponGateway": 75,
    "SBN": 76, "GoogleExpress": 77, "Target_Plus": 78, "WFS": 79,
}
_CHANNELS_BY_LOWER = {name.lower(): value for name, value in CHANNELS.items()}

#: ``Statuses.OrderStatus`` names by value, as the swagger lists them.
ORDER_STATUSES: dict[int, str] = {
    1: "ShoppingCart", 2: "InProcess", 3: "Completed", 100: "ProblemOrder", 200: "OnHold",
    300: "Quote", 999: "Void", -1: "Canceled",
}
CANCELED = -1

# OrderNoteCategory: "General = 0, Customer_Instructions = 1, Customer_Service_Note = 2".
_NOTE_GENERAL = 0
_NOTE_CUSTOMER_INSTRUCTIONS = 1
# DiscountType: "0 = FixedAmount , 1 = Percentage".
_DISCOUNT_FIXED_AMOUNT = 0

_GRAMS_PER_OUNCE = Decimal("28.349523125")
_CM_PER_INCH = Decimal("2.54")
_HUNDREDTHS = Decimal("0.01")


def _channel(value: Any) -> Any:
    """A channel name (any case, as Json.NET reads enum names) or number -> its number."""
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            value = int(text)
        elif text.lower() in _CHANNELS_BY_LOWER:
            return _CHANNELS_BY_LOWER[text.lower()]
    if isinstance(value, int) and not isinstance(value, bool) and value in CHANNELS.values():
        return value
    raise ValueError(
        f"{value!r} is not a SellerCloud channel; use a name or number of the vendor's list: "
        + ", ".join(f"{name} ({number})" for name, number in CHANNELS.items())
    )


class SellerCloudOptions(BaseModel):
    """The account's fixed values every SellerCloud order carries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    company_id: int = Field(
        gt=0, le=INT32_MAX, description="OrderDetails.CompanyID: the company the orders go to."
    )
    channel: Annotated[int, BeforeValidator(_channel)] = Field(
        description="OrderDetails.Channel: a channel name (Local_Store, Website, Wholesale...) "
        "or its number; sent as the number."
    )


def _order_id_number(field_path: str, value: str | None) -> int:
    """A SellerCloud order ID (an int32), or a validation error naming ``field_path``."""
    text = (value or "").strip()
    if not text.isdigit() or not 0 < int(text) <= INT32_MAX:
        raise TranslationError(
            field_path, f"must be a SellerCloud order ID (a whole number such as 1000001), "
            f"got {value!r}"
        )
    return int(text)


def _first(*values: str | None) -> str | None:
    return next((v for v in values if v), None)


def _utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` (the swagger's ``date-time``)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _address(address: Address) -> dict[str, Any]:
    """An ``OrderAddressDto``; keys without a value are left out."""
    street2 = ", ".join(line for line in (address.line2, address.line3) if line)
    fields = {
        "Business": address.company,
        "FirstName": address.first_name,
        "LastName": address.last_name,
        "Address": address.line1,
        "Address2": street2,
        "City": address.city,
        "State": address.region,
        "ZipCode": address.postal_code,
        "Country": address.country,
        "Phone": address.phone,
    }
    return {k: v for k, v in fields.items() if v}


def _customer(order: NormalizedOrder) -> dict[str, Any]:
    """``CustomerDetails``: Email, FirstName and LastName are mandatory."""
    customer = order.customer
    sources = [a for a in (order.bill_to, order.ship_to) if a is not None]
    email = _first(customer.email, *(a.email for a in sources))
    first_name = _first(customer.first_name, *(a.first_name for a in sources))
    last_name = _first(customer.last_name, *(a.last_name for a in sources))
    for field_path, value, label in (
        ("order.customer.email", email, "Email"),
        ("order.customer.first_name", first_name, "FirstName"),
        ("order.customer.last_name", last_name, "LastName"),
    ):
        if not value:
            raise TranslationError(
                field_path,
                f"is required by SellerCloud (CustomerDetails.{label} is mandatory) and neither "
                "the customer nor an address has it",
            )
    details: dict[str, Any] = {"Email": email, "FirstName": first_name, "LastName": last_name}
    if customer.company:
        details["Business"] = customer.company
    if customer.wholesale:
        details["IsWholesale"] = True
    return details


def _weight(weight: Weight) -> dict[str, Decimal]:
    """``{Pounds, Ounces}``; metric weights become ounces to the hundredth."""
    if weight.unit == "lb":
        return {"Pounds": weight.value}
    if weight.unit == "oz":
        return {"Ounces": weight.value}
    grams = weight.value * (1000 if weight.unit == "kg" else 1)
    return {"Ounces": (grams / _GRAMS_PER_OUNCE).quantize(_HUNDREDTHS)}


def _dimensions(dimensions: Dimensions) -> dict[str, Decimal]:
    """``{Width, Height, Length}`` in inches; centimetres are converted to the hundredth."""
    values = {
        "Width": dimensions.width,
        "Height": dimensions.height,
        "Length": dimensions.length,
    }
    if dimensions.unit == "cm":
        return {k: (v / _CM_PER_INCH).quantize(_HUNDREDTHS) for k, v in values.items()}
    return values


def _check_total(field_path: str, total: Decimal, parts: Iterable[Decimal | None]) -> None:
    """An order-level amount SellerCloud cannot take must equal the sum of the lines' amounts."""
    lines = sum((p for p in parts if p is not None), Decimal(0))
    if total and total != lines:
        raise TranslationError(
            field_path,
            f"is {total} but the items' amounts add up to {lines}; SellerCloud takes this amount "
            "per product line only, so give it on the items",
        )


class SellerCloudTranslator(Translator[SellerCloudOptions]):
    """Normalized jobs -> SellerCloud requests."""

    vendor = "sellercloud"

    def create(self, job: Job) -> VendorRequest:
        """``POST /rest/api/Orders`` with the ``OrderBaseModel``."""
        order = job.order
        assert order is not None
        _check_total("order.totals.tax", order.totals.tax, (i.tax for i in order.items))
        _check_total(
            "order.totals.discount", order.totals.discount, (i.discount for i in order.items)
        )
        order_details: dict[str, Any] = {
            "CompanyID": self.options.company_id,
            "Channel": self.options.channel,
            "OrderSourceOrderID": order.order_id,
            "OrderDate": _utc(order.placed_at),
        }
        if order.gift is not None:
            order_details["GiftOrder"] = True
        body: dict[str, Any] = {
            "CustomerDetails": _customer(order),
            "OrderDetails": order_details,
            "ShippingAddress": _address(order.ship_to),
            "BillingAddress": _address(order.bill_to or order.ship_to),
            "ShippingMethodDetails": self._shipping(order),
            "Products": [self._product(n, item) for n, item in enumerate(order.items)],
        }
        notes = self._notes(order)
        if notes:
            body["Notes"] = notes
        if order.gift is not None:
            gift: dict[str, Any] = {"UseGiftWrap": order.gift.wrap}
            if order.gift.message:
                gift["GiftMessage"] = order.gift.message
            body["GiftDetails"] = gift
        return VendorRequest("POST", ORDERS_PATH, json=body)

    @staticmethod
    def _product(n: int, item: Item) -> dict[str, Any]:
        if item.quantity > INT32_MAX:
            raise TranslationError(
                f"order.items.{n}.quantity",
                f"is {item.quantity}; SellerCloud's Qty is an int32 (at most {INT32_MAX})",
            )
        product: dict[str, Any] = {
            "ProductID": item.sku,
            "Qty": item.quantity,
            "SitePrice": item.unit_price,
        }
        if item.name:
            product["ProductName"] = item.name
        if item.line_id:
            product["ReferenceID"] = item.line_id
        if item.tax is not None:
            product["LineTaxTotal"] = item.tax
        if item.discount:
            product["DiscountValue"] = item.discount
            product["DiscountType"] = _DISCOUNT_FIXED_AMOUNT
        if item.options:
            product["Notes"] = "; ".join(f"{k}: {v}" for k, v in item.options.items())
        return product

    @staticmethod
    def _shipping(order: NormalizedOrder) -> dict[str, Any]:
        shipping = order.shipping
        details: dict[str, Any] = {"ShippingFee": order.totals.shipping}
        if shipping.carrier:
            details["Carrier"] = shipping.carrier
        method = shipping.service or shipping.requested_service
        if method:
            details["ShippingMethod"] = method
        if shipping.weight is not None:
            details["Weight"] = _weight(shipping.weight)
        if shipping.dimensions is not None:
            details["Dimension"] = _dimensions(shipping.dimensions)
        if order.ship_by is not None:
            details["PromiseDate"] = _utc(order.ship_by)
        return details

    @staticmethod
    def _notes(order: NormalizedOrder) -> list[dict[str, Any]]:
        notes = []
        if order.notes is not None and order.notes.customer:
            notes.append({"Category": _NOTE_CUSTOMER_INSTRUCTIONS, "Note": order.notes.customer})
        if order.shipping.instructions:
            notes.append(
                {"Category": _NOTE_CUSTOMER_INSTRUCTIONS, "Note": order.shipping.instructions}
            )
        if order.notes is not None and order.notes.internal:
            notes.append({"Category": _NOTE_GENERAL, "Note": order.notes.internal})
        return notes

    def get_status(self, job: Job) -> VendorRequest:
        """``GET /rest/api/Orders/{id}``."""
        order_id = _order_id_number("vendor_order_id", job.vendor_order_id)
        return VendorRequest("GET", f"{ORDERS_PATH}/{order_id}")

    def cancel(self, job: Job) -> VendorRequest:
        """``PUT /rest/api/Orders/StatusCode`` setting the order's status to Canceled (-1)."""
        order_id = _order_id_number("vendor_order_id", job.vendor_order_id)
        return VendorRequest(
            "PUT", f"{ORDERS_PATH}/StatusCode", json={"Orders": [order_id], "Status": CANCELED}
        )


def _status_name(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return ORDER_STATUSES.get(value, str(value))
    return None


def _created_id(answer: Any) -> str:
    """The new order ID of a create's answer: "200 with an int32"."""
    if isinstance(answer, str) and answer.strip().isdigit():
        answer = int(answer)
    if not isinstance(answer, int) or isinstance(answer, bool) or answer <= 0:
        raise UnparsableResponse(f"expected the new order ID (an integer), got {answer!r}")
    return str(answer)


def _reset_time(data: dict[str, Any]) -> datetime | None:
    raw = data.get("RateLimitResetTime")
    if not isinstance(raw, str):
        return None
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    # The document's sample ends in Z; a time without a zone is read as UTC too.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _model_state(data: dict[str, Any]) -> dict[str, list[str]]:
    state = data.get("ModelState")
    if not isinstance(state, dict):
        return {}
    return {
        str(key): [str(m) for m in (msgs if isinstance(msgs, list) else [msgs])]
        for key, msgs in state.items()
    }


class SellerCloud(VendorAdapter[SellerCloudOptions]):
    """SellerCloud: Bearer token from ``/rest/api/token``; create answers the new order ID."""

    name = "sellercloud"
    translator_class = SellerCloudTranslator
    repeat_safe_operations: ClassVar[frozenset[Operation]] = frozenset(
        {Operation.GET_STATUS, Operation.CANCEL}
    )
    options_model = SellerCloudOptions
    error_codes: ClassVar[dict[str, tuple[OutcomeKind, ErrorKind]]] = {
        RATE_LIMITED: (OutcomeKind.RETRYABLE, ErrorKind.RATE_LIMITED),
    }
    lookup_authoritative = True
    reserved_options: ClassVar[dict[str, str]] = {
        "OrderDetails.OrderSourceOrderID": "is set from order_id: it is the reference a lost "
        "answer is reconciled by",
    }
    default_token_life_s = DEFAULT_TOKEN_LIFE_S

    # Auth

    def token_request(self) -> VendorRequest:
        """``POST /rest/api/token`` with the account's username and password."""
        return VendorRequest(
            "POST",
            TOKEN_PATH,
            json={
                "Username": self.account.secret("username"),
                "Password": self.account.secret("password"),
            },
            headers={"Accept": "application/json"},
        )

    def authorize(self, request: VendorRequest, token: str | None) -> VendorRequest:
        """Adds ``Authorization: Bearer <token>``."""
        assert token is not None
        return request.with_headers(Authorization=f"Bearer {token}", Accept="application/json")

    # Reading

    def business_error(self, job: Job, response: VendorResponse) -> Outcome | None:
        """A cancel whose order is not among the updated ones was refused (the vendor leaves
        out orders it does not know or cannot cancel, e.g. shipped ones)."""
        if job.operation is not Operation.CANCEL:
            return None
        updated = response.json()
        if not isinstance(updated, list):
            raise UnparsableResponse(f"expected the list of updated order IDs, got {updated!r}")
        if _order_id_number("vendor_order_id", job.vendor_order_id) in updated:
            return None
        return Outcome.failure(
            OutcomeKind.PERMANENT,
            ErrorKind.VENDOR_REJECTED,
            f"SellerCloud did not cancel order {job.vendor_order_id}: it is not among the orders "
            "it updated (the order is unknown, or it cannot be cancelled, e.g. shipped)",
            http_status=response.status,
            body=response.text,
        )

    def parse_success(self, job: Job, response: VendorResponse) -> Outcome:
        """Create: the new order ID; status: ``Statuses.OrderStatus``; cancel: Canceled."""
        order_id: str | None = job.vendor_order_id
        status: str | None = ORDER_STATUSES[CANCELED]
        if job.operation is Operation.CREATE:
            order_id, status = _created_id(response.json()), None
        elif job.operation is Operation.GET_STATUS:
            data = response.json_object()
            statuses = data.get("Statuses")
            if isinstance(statuses, dict):
                status = _status_name(statuses.get("OrderStatus"))
            else:
                status = None
            if status is None:
                raise UnparsableResponse("no Statuses.OrderStatus in the order")
            if isinstance(data.get("ID"), int):
                order_id = str(data["ID"])
        return Outcome.success(order_id, status, http_status=response.status, body=response.text)

    def error_detail(self, response: VendorResponse) -> tuple[str | None, str]:
        """ASP.NET's ``{"Message", "ModelState"}``, or the rate-limit ``{"Error", ...}``."""
        try:
            data = response.json()
        except UnparsableResponse:
            return None, response.text.strip()[:500]
        if not isinstance(data, dict):
            return None, response.text.strip()[:500]
        error = data.get("Error")
        if "RateLimitResetTime" in data or (
            isinstance(error, str) and error.lower().startswith(RATE_LIMITED.lower().rstrip("."))
        ):
            reset = data.get("RateLimitResetTime")
            return RATE_LIMITED, f"{error or RATE_LIMITED} (the limit resets at {reset})"
        message = str(data.get("Message") or error or "")
        if data.get("MessageDetail"):
            message = f"{message} ({data['MessageDetail']})"
        problems = "; ".join(
            f"{key}: {' '.join(messages)}" for key, messages in _model_state(data).items()
        )
        return None, f"{message} {problems}".strip()

    def retry_hint(self, response: VendorResponse) -> float | None:
        """Seconds until the rate limit's ``RateLimitResetTime``."""
        try:
            data = response.json()
        except UnparsableResponse:
            return None
        reset = _reset_time(data) if isinstance(data, dict) else None
        if reset is None:
            return None
        return max(0.0, (reset - datetime.now(UTC)).total_seconds())

    def already_exists(
        self, job: Job, response: VendorResponse, code: str | None, message: str
    ) -> bool:
        """A create refused because an order with its ``OrderSourceOrderID`` exists (the
        vendor documents no such refusal; accounts that refuse duplicates name that field)."""
        if job.operation is not Operation.CREATE or response.status != 400:
            return False
        try:
            data = response.json()
        except UnparsableResponse:
            return False
        state = _model_state(data) if isinstance(data, dict) else {}
        return any(
            key.lower().endswith("ordersourceorderid")
            and any("already exist" in m.lower() or "duplicate" in m.lower() for m in messages)
            for key, messages in state.items()
        )

    # Reconciliation

    def lookup_request(self, job: Job) -> VendorRequest | None:
        """``GET /rest/api/Orders`` filtered by our order id as OrderSourceOrderID and by the
        account's company (creates only: the other operations are safe to repeat)."""
        if job.operation is not Operation.CREATE:
            return None
        return VendorRequest(
            "GET",
            ORDERS_PATH,
            params={
                "model.orderSourceOrderIDList": job.ref,
                "model.companyID": str(self.options.company_id),
                "model.pageSize": "50",
            },
        )

    def parse_lookup(self, job: Job, response: VendorResponse) -> Lookup:
        """``{"Items": [...], "TotalResults": n}``: one match is the order, none proves it is
        not there, anything else cannot tell."""
        if not response.ok:
            _, message = self.error_detail(response)
            return Lookup.unknown(f"the lookup was answered HTTP {response.status}: {message}")
        data = response.json_object()
        items = data.get("Items")
        total = data.get("TotalResults")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise UnparsableResponse("no Items list in the answer")
        company = self.options.company_id
        matches = [
            item
            for item in items
            if item.get("OrderSourceOrderID", job.ref) == job.ref
            and item.get("CompanyID", company) == company
        ]
        if len(matches) > 1:
            ids = ", ".join(str(m.get("ID")) for m in matches)
            return Lookup.unknown(
                f"{len(matches)} orders carry OrderSourceOrderID {job.ref!r} ({ids}); "
                "decide which one is this job's"
            )
        if not matches:
            if items or (isinstance(total, int) and total > 0):
                return Lookup.unknown(
                    f"the lookup answered {total} orders, none with OrderSourceOrderID "
                    f"{job.ref!r} in company {company} (was the filter applied?)"
                )
            return Lookup.not_found()
        order_id = matches[0].get("ID")
        if not isinstance(order_id, int) or isinstance(order_id, bool):
            raise UnparsableResponse(f"the matching order has no ID (got {order_id!r})")
        return Lookup.found(str(order_id), _status_name(matches[0].get("StatusCode")))
