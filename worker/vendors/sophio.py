"""Sophio: create an order in a Sophio store (``createorder.wws``), in ShipStation's order JSON.

Operations: ``create`` only. The document describes one page, ``POST
https://{store}/createorder.wws?action=CREATE``, whose body is ShipStation's V1 Order JSON and
whose answer echoes the order with Sophio's fields added, among them the numeric ``orderId``.

Auth: the query parameter ``authentication``, the Base64 of ``api_key:api_secret`` (credentials
``api_key`` and ``api_secret``). It travels in the URL, so :meth:`Sophio.secrets` registers the
encoded value in every form it can take in a URL, and redaction masks it wherever it appears.

What the document leaves unsaid, and what we chose:

- errors, HTTP codes and rate limits: none are documented. Sophio takes ShipStation's order
  format, so ShipStation's shapes are read: ASP.NET Web API errors (``{"Message": ...,
  "ModelState": {"apiOrder.shipTo.name": [...]}}``) and its 429 with ``X-Rate-Limit-Reset``
  (seconds) when there is no ``Retry-After``. Any other body is carried as it came.
- a 2xx answer without an ``orderId`` is unreadable: the order may or may not exist.
- dates are sent without a zone, as the document's sample does, in the account's ``time_zone``
  (default ``America/Los_Angeles``: ShipStation asks for Pacific time).
- ShipStation's required fields (``orderNumber`` of at most 50 characters, ``orderDate``,
  ``orderStatus``, ``billTo``, ``shipTo``) and the address fields a parcel needs (name, street,
  city, postal code, country) are checked before sending. Without a billing address, ``billTo``
  carries the customer's name only.
- discounts have no field: each becomes a ShipStation "adjustment" line with a negative price.
- ``custom`` keys ``customField1`` to ``customField3`` go to ``advancedOptions``; any other key
  is refused rather than lost. ``vendor_options`` is merged into the body, except ``orderKey``.

Idempotency and reconciliation policy: every create carries ``orderKey`` = our order id.
ShipStation documents ``orderKey`` as an upsert key ("if the orderKey is specified, the method
becomes idempotent and the existing order with that key will be updated"), but Sophio does not
say it kept that. Sophio has no lookup either. So by default a create whose answer was lost
(a timeout after sending, a dropped connection, an interrupted worker) ends ``in_doubt`` for an
operator and is never resent blindly. An account whose Sophio store is known to upsert by
``orderKey`` sets the option ``upsert_by_order_key``: a create is then repeat-safe, a lost answer
is retried, and the repeat updates the same order and answers its ``orderId``. A refusal to
update an order that has shipped or was cancelled means the vendor has it: it is marked
"already exists", and with no lookup to confirm it a person decides.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict

from order_dispatch.contract import (
    Address,
    Customer,
    Dimensions,
    Item,
    Job,
    NormalizedOrder,
    Operation,
    Weight,
)
from worker.http import parse_retry_after
from worker.outcomes import Outcome
from worker.vendors.base import (
    TranslationError,
    Translator,
    UnparsableResponse,
    VendorAdapter,
    VendorRequest,
    VendorResponse,
    check_length,
    require,
)

#: ShipStation: "orderNumber ... max-length 50".
ORDER_NUMBER_MAX = 50
#: ShipStation's quantity is a 32-bit integer.
QUANTITY_MAX = 2_147_483_647
CONFIRMATIONS = ("none", "delivery", "signature", "adult_signature", "direct_signature")
CUSTOM_FIELDS = ("customField1", "customField2", "customField3")
_WEIGHT_UNITS = {"lb": "pounds", "oz": "ounces", "g": "grams"}
_DIMENSION_UNITS = {"in": "inches", "cm": "centimeters"}


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (an IANA name such as America/Chicago)"
        ) from None
    return value


class SophioOptions(BaseModel):
    """Per-account options of a Sophio store."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    upsert_by_order_key: bool = False
    """The store updates the order already holding an ``orderKey`` instead of adding another
    (ShipStation's rule, unconfirmed for Sophio): a create may then be repeated safely."""
    time_zone: Annotated[str, AfterValidator(_time_zone)] = "America/Los_Angeles"
    """The zone of the store's zone-less dates."""


def _name(first: str | None, last: str | None) -> str | None:
    return " ".join(part for part in (first, last) if part) or None


def _address(field_path: str, address: Address, *, parcel: bool) -> dict[str, Any]:
    """A ShipStation Address; ``parcel`` addresses also need what a label needs."""
    name = _name(address.first_name, address.last_name)
    if name is None:
        raise TranslationError(
            f"{field_path}.first_name",
            "is required by this vendor when last_name is empty (the address needs a name)",
        )
    out: dict[str, Any] = {
        "name": name,
        "company": address.company,
        "street1": address.line1,
        "street2": address.line2,
        "street3": address.line3,
        "city": address.city,
        "state": address.region,
        "postalCode": address.postal_code,
        "country": address.country,
        "phone": address.phone,
        "residential": address.residential,
    }
    if parcel:
        require(f"{field_path}.postal_code", address.postal_code)
    return _without_none(out)


def _bill_to_from_customer(customer: Customer, ship_to: Address) -> dict[str, Any]:
    name = _name(customer.first_name, customer.last_name) or _name(
        ship_to.first_name, ship_to.last_name
    )
    return _without_none({"name": name, "company": customer.company, "phone": customer.phone})


def _weight(weight: Weight | None) -> dict[str, Any] | None:
    if weight is None:
        return None
    if weight.unit == "kg":
        # ShipStation's weight units are pounds, ounces and grams only.
        return {"value": weight.value * 1000, "units": "grams"}
    return {"value": weight.value, "units": _WEIGHT_UNITS[weight.unit]}


def _dimensions(dimensions: Dimensions | None) -> dict[str, Any] | None:
    if dimensions is None:
        return None
    return {
        "units": _DIMENSION_UNITS[dimensions.unit],
        "length": dimensions.length,
        "width": dimensions.width,
        "height": dimensions.height,
    }


def _without_none(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _items(items: list[Item]) -> list[dict[str, Any]]:
    out = []
    for n, item in enumerate(items):
        if item.quantity > QUANTITY_MAX:
            raise TranslationError(
                f"order.items.{n}.quantity",
                f"is {item.quantity}; the vendor accepts at most {QUANTITY_MAX}",
            )
        out.append(
            _without_none(
                {
                    "lineItemKey": item.line_id,
                    "sku": item.sku,
                    "name": item.name,
                    "imageUrl": item.image_url,
                    "weight": _weight(item.weight),
                    "quantity": item.quantity,
                    "unitPrice": item.unit_price,
                    "taxAmount": item.tax,
                    "options": [{"name": k, "value": v} for k, v in item.options.items()] or None,
                    "upc": item.upc,
                }
            )
        )
    for item in items:
        if item.discount:
            # ShipStation: "adjustment ... Indicates that the OrderItem is a non-physical
            # adjustment to the order (e.g. a discount or promotional code)".
            out.append(
                _without_none(
                    {
                        "lineItemKey": f"{item.line_id}-discount" if item.line_id else None,
                        "sku": item.sku,
                        "name": f"Discount: {item.name or item.sku}",
                        "quantity": 1,
                        "unitPrice": -item.discount,
                        "adjustment": True,
                    }
                )
            )
    return out


def _advanced_options(order: NormalizedOrder) -> dict[str, str] | None:
    for key in order.custom:
        if key not in CUSTOM_FIELDS:
            raise TranslationError(
                f"order.custom.{key}",
                f"has no place at this vendor; it takes {', '.join(CUSTOM_FIELDS)}",
            )
    return dict(order.custom) or None


class SophioTranslator(Translator[SophioOptions]):
    """Normalized jobs -> ``createorder.wws`` requests (ShipStation V1 Order JSON)."""

    vendor = "sophio"

    def _local(self, moment: datetime) -> str:
        zone = ZoneInfo(self.options.time_zone)
        return moment.astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds")

    def create(self, job: Job) -> VendorRequest:
        """``POST /createorder.wws?action=CREATE`` with the order; ``orderKey`` is our id."""
        order = job.order
        assert order is not None
        shipping = order.shipping
        if shipping.confirmation is not None and shipping.confirmation not in CONFIRMATIONS:
            raise TranslationError(
                "order.shipping.confirmation",
                f"is {shipping.confirmation!r}; the vendor takes one of {', '.join(CONFIRMATIONS)}",
            )
        bill_to = (
            _address("order.bill_to", order.bill_to, parcel=False)
            if order.bill_to is not None
            else _bill_to_from_customer(order.customer, order.ship_to)
        )
        items = _items(order.items)
        if order.totals.discount:
            items.append(
                {
                    "sku": "DISCOUNT",
                    "name": "Order discount",
                    "quantity": 1,
                    "unitPrice": -order.totals.discount,
                    "adjustment": True,
                }
            )
        paid = order.totals.paid
        if paid is None and order.payment is not None:
            paid = order.payment.amount
        body = _without_none(
            {
                "orderNumber": check_length(
                    "order.order_number" if order.order_number else "order.order_id",
                    order.order_number or order.order_id,
                    ORDER_NUMBER_MAX,
                ),
                "orderKey": job.ref,
                "orderDate": self._local(order.placed_at),
                "paymentDate": self._local(order.paid_at) if order.paid_at else None,
                "shipByDate": self._local(order.ship_by) if order.ship_by else None,
                "orderStatus": order.status.value,
                "customerUsername": order.customer.id or order.customer.email,
                "customerEmail": order.customer.email or order.ship_to.email,
                "billTo": bill_to,
                "shipTo": _address("order.ship_to", order.ship_to, parcel=True),
                "items": items,
                "amountPaid": paid,
                "taxAmount": order.totals.tax,
                "shippingAmount": order.totals.shipping,
                "customerNotes": order.notes.customer if order.notes else None,
                "internalNotes": order.notes.internal if order.notes else None,
                "gift": True if order.gift is not None else None,
                "giftMessage": order.gift.message if order.gift is not None else None,
                "paymentMethod": order.payment.method if order.payment else None,
                "requestedShippingService": shipping.requested_service,
                "carrierCode": shipping.carrier,
                "serviceCode": shipping.service,
                "packageCode": shipping.package,
                "confirmation": shipping.confirmation,
                "shipDate": self._local(shipping.ship_date)[:10] if shipping.ship_date else None,
                "weight": _weight(shipping.weight),
                "dimensions": _dimensions(shipping.dimensions),
                "advancedOptions": _advanced_options(order),
            }
        )
        return VendorRequest("POST", "/createorder.wws", json=body, params={"action": "CREATE"})


class Sophio(VendorAdapter[SophioOptions]):
    """Sophio: Base64 ``key:secret`` in the ``authentication`` query parameter; the answer is
    the order echoed with its ``orderId``."""

    name = "sophio"
    translator_class = SophioTranslator
    options_model = SophioOptions
    reserved_options: ClassVar[dict[str, str]] = {
        "orderKey": "is set from order_id: it is the key that makes a repeated create safe"
    }

    @property
    def authentication(self) -> str:
        """The ``authentication`` value: Base64 of ``api_key:api_secret``."""
        pair = f"{self.account.secret('api_key')}:{self.account.secret('api_secret')}"
        return base64.b64encode(pair.encode()).decode("ascii")

    def secrets(self) -> list[str]:
        """The credentials, and the ``authentication`` value as it may appear in a URL:
        padded or not, raw or percent-encoded (upper- or lower-case escapes)."""
        forms = []
        for value in (self.authentication, self.authentication.rstrip("=")):
            encoded = quote(value, safe="")
            forms += [value, encoded, _lower_escapes(encoded)]
        return [*super().secrets(), *dict.fromkeys(forms)]

    def repeat_safe(self, operation: Operation) -> bool:
        """A create is repeat-safe only where the account says the store upserts by
        ``orderKey``."""
        if operation is Operation.CREATE:
            return self.options.upsert_by_order_key
        return super().repeat_safe(operation)

    def authorize(self, request: VendorRequest, token: str | None) -> VendorRequest:
        """Adds the ``authentication`` query parameter."""
        return request.with_params(authentication=self.authentication).with_headers(
            Accept="application/json"
        )

    def parse_success(self, job: Job, response: VendorResponse) -> Outcome:
        """The echoed order: ``orderId`` (a number in the document's sample) and
        ``orderStatus``."""
        data = response.json_object()
        order_id = data.get("orderId")
        if isinstance(order_id, bool) or not isinstance(order_id, int | str) or order_id == "":
            raise UnparsableResponse(f"no orderId in the answer (got {order_id!r})")
        status = data.get("orderStatus")
        return Outcome.success(
            str(order_id),
            status if isinstance(status, str) else None,
            http_status=response.status,
            body=response.text,
        )

    def error_detail(self, response: VendorResponse) -> tuple[str | None, str]:
        """ASP.NET Web API errors, as ShipStation answers: ``Message``, and for invalid input
        ``ModelState`` (field path -> reasons); the first field path is the code."""
        try:
            data = response.json()
        except UnparsableResponse:
            data = None
        if not isinstance(data, dict) or not (
            "Message" in data or "message" in data or "ModelState" in data
        ):
            return super().error_detail(response)
        parts = [str(data.get("Message") or data.get("message") or "")]
        code = None
        state = data.get("ModelState")
        if isinstance(state, dict):
            for key, reasons in state.items():
                code = code or str(key)
                listed = reasons if isinstance(reasons, list) else [reasons]
                parts.append(f"{key}: {' '.join(str(r) for r in listed)}")
        if data.get("ExceptionMessage"):
            parts.append(str(data["ExceptionMessage"]))
        return code, " ".join(p for p in parts if p)

    def retry_hint(self, response: VendorResponse) -> float | None:
        """ShipStation's 429: "stop making requests until X-Rate-Limit-Reset seconds have
        elapsed"."""
        if response.status != 429:
            return None
        return parse_retry_after(response.headers.get("X-Rate-Limit-Reset"))

    def already_exists(
        self, job: Job, response: VendorResponse, code: str | None, message: str
    ) -> bool:
        """A refusal to update the order already holding our ``orderKey`` because it shipped
        or was cancelled: ShipStation's "locked from modification through the API"."""
        return response.status == 400 and "locked from modification" in message.lower()


def _lower_escapes(encoded: str) -> str:
    """``encoded`` with its percent escapes in lower case (``%3d``), as some clients write."""
    parts = encoded.split("%")
    return parts[0] + "".join("%" + p[:2].lower() + p[2:] for p in parts[1:])
