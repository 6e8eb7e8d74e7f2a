"""SupplyStream's translator: the web sales order, its fields and their limits, in JSON or XML
(the adapter and what the vendor's answers say are in :mod:`worker.vendors.supplystream.read`;
the vendor's behaviour and the choices made where its document is silent are in
:mod:`worker.vendors.supplystream`)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import MAX_PREC, Decimal, Inexact, InvalidOperation, localcontext
from typing import Any, Literal
from urllib.parse import quote
from xml.etree.ElementTree import Element, SubElement, tostring

from pydantic import BaseModel, ConfigDict, Field

from order_dispatch import money
from order_dispatch.contract import (
    Address,
    Customer,
    Item,
    Job,
    OrderStatus,
)
from worker.vendors.base import (
    REPLACES_A_TRANSLATED_FIELD,
    TranslationError,
    Translator,
    VendorRequest,
    check_length,
)

Kind = Literal["str", "num", "bool", "date", "int"]
Spec = tuple[Kind, int | None]
Scalar = str | Decimal | bool | int


def _s(limit: int | None = None) -> Spec:
    return ("str", limit)


_NUM: Spec = ("num", None)
_BOOL: Spec = ("bool", None)
_DATE: Spec = ("date", None)

# Every field of the document, in the document's order (XML is written in this order), with its
# kind and length limit.
_WEB_SALES_ORDER: dict[str, Spec] = {
    "SalesInvoiceNumber": _s(100), "DocumentIdentifier": _s(100), "NIFNumber": _s(100),
    "ShippingVAT": _NUM, "ShippingExVAT": _NUM, "CustomsValueTotal": _NUM,
    "DiscountPriceTotal": _NUM, "GiftWrap": _BOOL, "GiftMessage": _s(500),
    "ShippingTerm": _s(50), "ShippingTermLocation": _s(50), "GiftMessageFrom": _s(100),
    "GiftMessageTo": _s(100), "CourierShopID": _s(50), "PurchaseOrderNumber": _s(),
    "GroupReference": _s(), "ShippingTotal": _NUM, "TaxTotal": _NUM, "SubTotal": _NUM,
    "OrderType": _s(100), "CurrencyCode": _s(3), "CarrierCustomerAccountNo": _s(100),
    "CourierName": _s(100), "CourierService": _s(100), "DeliveryAddressLocationType": _s(100),
    "DoNotPushToDC": _BOOL, "GUID": _s(100), "LocationType": _s(100), "Notes": _s(4000),
    "NotificationMethod": _s(50), "OnHold": _BOOL, "SalesOrderDate": _DATE,
    "SalesOrderNumber": _s(50), "SalesOrderReference": _s(50), "ScheduledShipDate": _DATE,
    "ShipmentTerms": _s(100), "SpecialInstructions": _s(400), "UltimateDestination": _s(100),
}  # fmt: skip
_ADDRESS: dict[str, Spec] = {
    "City": _s(50), "ContactCode": _s(100), "CountryCode": _s(20), "County": _s(50),
    "EmailAddress": _s(150), "FirstName": _s(50), "LastName": _s(50), "Line1": _s(100),
    "Line2": _s(100), "Line3": _s(100), "Line4": _s(100), "PhoneNumber": _s(20),
    "PostcodeZip": _s(20), "Title": _s(20),
}  # fmt: skip
_RETAIL: dict[str, Spec] = {
    **{
        k: _s()
        for k in (
            "Gs1Prefix", "MarkForDcCode", "MarkForDcName", "MarkForDcDept", "MarkForDcLine1",
            "MarkForDcLine2", "MarkForDcLine3", "MarkForDcLine4", "MarkForDcCity",
            "MarkForDcCountyState", "MarkForDcPostCodeZip", "MarkForDcCountryCode",
        )
    },
    **dict.fromkeys(
        ("PoDate", "ShipByDate", "ShipAfterDate", "ArriveByDate", "CancelByDate"), _DATE
    ),
    **{k: _s() for k in ("SiteId", "StoreId", "StoreName", "ShipToDcCode", "ShipToDcDeptNo")},
}  # fmt: skip
#: The sections holding one object each, in the document's order.
SECTIONS: dict[str, dict[str, Spec]] = {
    "WebSalesOrder": _WEB_SALES_ORDER,
    "SalesOrderHeader": {"DCCode": _s(100)},
    "DeliveryDetails": {"DeliveryContactIDNumber": _s(), **_ADDRESS},
    "BillingDetails": _ADDRESS,
    "RetailCompliance": _RETAIL,
}
_LINE: dict[str, Spec] = {
    "UnitDiscountPrice": _NUM, "OrderLineMessage": _s(100), "SecondaryCurrencyCode": _s(),
    "SecondaryUnitPrice": _NUM, "SecondaryVAT": _NUM, "StyleCode": _s(), "ASNNumber": _s(),
    "CustomsValue": _NUM, "Channel": _s(100), "CountryCode": _s(100), "CurrencyCode": _s(3),
    "EAN": _s(100), "ExternalDocumentNo": _s(100), "GUID": _s(100), "LineNumber": ("int", None),
    "LotNo": _s(100), "ProductCode": _s(100), "Quantity": ("int", None), "UnitPrice": _NUM,
    "VAT": _NUM,
}  # fmt: skip
_TAX: dict[str, Spec] = {"Type": _s(), "Value": _s()}
#: Fields that carry the order's identity: vendor_options cannot change them.
_RESERVED = {("WebSalesOrder", "SalesOrderNumber"), ("WebSalesOrder", "GUID")}

#: The documented cancellation reason codes.
REASON_CODES = {
    "001": "Customer Request",
    "002": "Order Delayed",
    "003": "Duplicate",
    "004": "Item not available",
    "005": "Cannot ship to address",
    "006": "Other",
}

#: The namespace of the client GUIDs this product derives (a fixed, arbitrary UUID).
GUID_NAMESPACE = uuid.UUID("5b0f8c64-5f2e-4d43-9a0e-3c7d2f51a9e8")

_BASE = "/api/salesorders"
_MEDIA = {"json": "application/json", "xml": "application/xml"}
# Characters XML 1.0 cannot carry (control characters, unpaired surrogates, U+FFFE/U+FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class SupplyStreamOptions(BaseModel):
    """Per-account options: the DC every order goes to, and the wire format."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dc_code: str = Field(min_length=1, max_length=100, description="SalesOrderHeader.DCCode.")
    format: Literal["json", "xml"] = Field("json", description="Request and answer format.")


def client_guid(job: Job) -> str:
    """The GUID this product sends with ``job``'s order: the same for every attempt and replay."""
    return str(uuid.uuid5(GUID_NAMESPACE, f"{job.vendor}\x1f{job.account}\x1f{job.ref}"))


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fixed(value: Decimal) -> Decimal:
    """``value`` written without an exponent (``1E+2`` -> ``100``), exactly."""
    return Decimal(format(value, "f"))


class _Body:
    """A websubmit body under construction; every value is checked as it goes in."""

    def __init__(self, xml: bool, overridable: frozenset[str] = frozenset()) -> None:
        self.xml = xml
        self.overridable = overridable
        self.sections: dict[str, dict[str, Scalar]] = {name: {} for name in SECTIONS}
        self.lines: list[dict[str, Scalar]] = []
        self.taxes: list[dict[str, Scalar]] = []

    def put(self, section: str, key: str, value: Any, path: str) -> None:
        """Set ``section.key`` from our field ``path`` (skipped when None)."""
        if value is not None:
            self.sections[section][key] = self.check(SECTIONS[section][key], value, path)

    def check(self, spec: Spec, value: Any, path: str) -> Scalar:
        """``value`` as the field's kind wants it, or TranslationError naming ``path``."""
        kind, limit = spec
        if kind == "bool":
            if not isinstance(value, bool):
                raise TranslationError(path, "must be true or false")
            return value
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise TranslationError(path, "must be an integer")
            return value
        if kind == "num":
            return _number(value, path)
        if kind == "date":
            if isinstance(value, datetime):
                return _utc(value)
            if not isinstance(value, str):
                raise TranslationError(path, "must be an ISO 8601 date")
            try:
                datetime.fromisoformat(value)
            except ValueError:
                raise TranslationError(path, "must be an ISO 8601 date") from None
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise TranslationError(path, "must be text")
        text = check_length(path, str(value), limit) if limit is not None else str(value)
        assert text is not None
        bad = (_NOT_XML if self.xml else _SURROGATE).search(text)
        if bad is not None:
            raise TranslationError(
                path,
                f"contains the character U+{ord(bad.group()):04X}, which "
                + ("XML cannot carry" if self.xml else "is not valid Unicode text"),
            )
        return text

    def merge(self, extras: Mapping[str, Any]) -> None:
        """Add ``order.vendor_options`` sections (see the module docstring)."""
        for name, fields in extras.items():
            path = f"order.vendor_options.{name}"
            if name == "reason_code":
                continue
            if name == "TaxItems":
                if not isinstance(fields, list):
                    raise TranslationError(path, "must be a list of {Type, Value} objects")
                self.taxes += [self._fields(_TAX, t, f"{path}.{n}") for n, t in enumerate(fields)]
                continue
            if name not in SECTIONS:
                known = ", ".join([*SECTIONS, "TaxItems", "reason_code"])
                raise TranslationError(path, f"is not a SupplyStream section (known: {known})")
            checked = self._fields(SECTIONS[name], fields, path)
            section = self.sections[name]
            for key, value in checked.items():
                if (name, key) in _RESERVED:
                    raise TranslationError(
                        f"{path}.{key}", "is set from the job and cannot be overridden"
                    )
                replaces = key in section and section[key] != value
                if replaces and f"{name}.{key}" not in self.overridable:
                    raise TranslationError(f"{path}.{key}", REPLACES_A_TRANSLATED_FIELD)
            section.update(checked)

    def _fields(self, specs: dict[str, Spec], fields: Any, path: str) -> dict[str, Scalar]:
        if not isinstance(fields, dict):
            raise TranslationError(path, "must be an object")
        out: dict[str, Scalar] = {}
        for key, value in fields.items():
            if key not in specs:
                raise TranslationError(f"{path}.{key}", "is not a field SupplyStream knows")
            if value is not None:
                out[key] = self.check(specs[key], value, f"{path}.{key}")
        return out

    def document(self) -> dict[str, Any]:
        """The body as the document orders it; empty sections left out."""
        doc: dict[str, Any] = {}
        for name, specs in SECTIONS.items():
            fields = self.sections[name]
            if fields:
                doc[name] = {k: fields[k] for k in specs if k in fields}
        lines = [{k: line[k] for k in _LINE if k in line} for line in self.lines]
        doc["List"] = {"SalesOrderLineItem": lines}
        if self.taxes:
            doc["TaxItems"] = [{k: t[k] for k in _TAX if k in t} for t in self.taxes]
        return doc


def _number(value: Any, path: str) -> Decimal:
    if isinstance(value, bool):
        raise TranslationError(path, "must be a number")
    if isinstance(value, float):
        value = repr(value)  # the shortest text that reads back as this float
    try:
        number = Decimal(value) if isinstance(value, int | str | Decimal) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise TranslationError(path, "must be a number")
    return _fixed(number)


def to_xml(document: Mapping[str, Any]) -> bytes:
    """``document`` as the document's ``<Request>`` XML (UTF-8, text escaped)."""
    root = Element("Request")
    for name, value in document.items():
        section = SubElement(root, name)
        if name == "List":
            for line in value["SalesOrderLineItem"]:
                _xml_fields(SubElement(section, "SalesOrderLineItem"), line)
        elif name == "TaxItems":
            for tax in value:
                _xml_fields(SubElement(section, "TaxItem"), tax)
        else:
            _xml_fields(section, value)
    raw: bytes = tostring(root, encoding="utf-8", xml_declaration=True)
    # ElementTree leaves a carriage return in text as it is, and every XML parser turns it into
    # a line feed; as a character reference it survives. Text is the only place one can occur.
    return raw.replace(b"\r", b"&#13;")


def _xml_fields(element: Element, fields: Mapping[str, Scalar]) -> None:
    for key, value in fields.items():
        child = SubElement(element, key)
        if isinstance(value, bool):
            child.text = "true" if value else "false"
        elif isinstance(value, Decimal):
            child.text = format(value, "f")
        else:
            child.text = str(value)


class SupplyStreamTranslator(Translator[SupplyStreamOptions]):
    """Normalized jobs -> iHub requests (JSON or XML by the account's ``format``)."""

    vendor = "supplystream"
    #: The distribution centre comes from the account; one order may be routed to another.
    overridable_options = frozenset({"SalesOrderHeader.DCCode"})

    def _headers(self, *, body: bool) -> dict[str, str]:
        media = _MEDIA[self.options.format]
        return {"Content-Type": media, "Accept": media} if body else {"Accept": media}

    def create(self, job: Job) -> VendorRequest:
        """``POST /api/salesorders/v4/websubmit`` with the web sales order."""
        order = job.order
        assert order is not None
        if order.status in (OrderStatus.SHIPPED, OrderStatus.CANCELLED):
            raise TranslationError(
                "order.status",
                f"is {order.status.value!r}; SupplyStream would fulfil it, so only open orders "
                "can be created there",
            )
        body = _Body(xml=self.options.format == "xml", overridable=self.overridable_options)
        _web_sales_order(body, job)
        body.put("SalesOrderHeader", "DCCode", self.options.dc_code, "options.dc_code")
        _address(body, "DeliveryDetails", order.ship_to, "order.ship_to", order.customer)
        if order.bill_to is not None:
            _address(body, "BillingDetails", order.bill_to, "order.bill_to", order.customer)
        for n, item in enumerate(order.items):
            line: dict[str, Scalar] = {"LineNumber": n + 1, "Quantity": item.quantity}
            for key, value, source in (
                ("ProductCode", item.sku, "sku"),
                ("EAN", item.ean, "ean"),
                ("UnitPrice", item.unit_price, "unit_price"),
                ("VAT", item.tax, "tax"),
            ):
                if value is not None:
                    line[key] = body.check(_LINE[key], value, f"order.items.{n}.{source}")
            body.lines.append(line)
        body.merge(order.vendor_options)
        document = body.document()
        path = f"{_BASE}/v4/websubmit"
        headers = self._headers(body=True)
        if body.xml:
            return VendorRequest("POST", path, content=to_xml(document), headers=headers)
        return VendorRequest("POST", path, json=document, headers=headers)

    def get_status(self, job: Job) -> VendorRequest:
        """``GET /api/salesorders/v4/{guid}/status``."""
        assert job.vendor_order_id is not None
        return self.status_request(job.vendor_order_id)

    def status_request(self, guid: str) -> VendorRequest:
        """The status read of the order ``guid``."""
        return VendorRequest(
            "GET", f"{_BASE}/v4/{quote(guid, safe='')}/status", headers=self._headers(body=False)
        )

    def cancel(self, job: Job) -> VendorRequest:
        """``POST /api/salesorders/v3/{SalesOrderNumber}/cancel`` (``reasonCode`` if given)."""
        params: dict[str, str] = {}
        reason = job.order.vendor_options.get("reason_code") if job.order is not None else None
        if reason is not None:
            if not isinstance(reason, str) or reason not in REASON_CODES:
                codes = ", ".join(f"{c} ({name})" for c, name in REASON_CODES.items())
                raise TranslationError(
                    "order.vendor_options.reason_code", f"is {reason!r}; use one of {codes}"
                )
            params["reasonCode"] = reason
        return VendorRequest(
            "POST",
            f"{_BASE}/v3/{quote(job.ref, safe='')}/cancel",
            headers=self._headers(body=False),
            params=params,
        )


def _web_sales_order(body: _Body, job: Job) -> None:
    order = job.order
    assert order is not None
    shipping = order.shipping

    def put(key: str, value: Any, path: str) -> None:
        body.put("WebSalesOrder", key, value, path)

    put("SalesOrderNumber", order.order_id, "order.order_id")
    put("SalesOrderReference", order.order_number, "order.order_number")
    put("GUID", client_guid(job), "job")
    put("SalesOrderDate", order.placed_at, "order.placed_at")
    if shipping.ship_date is not None:
        put("ScheduledShipDate", shipping.ship_date, "order.shipping.ship_date")
    else:
        put("ScheduledShipDate", order.ship_by, "order.ship_by")
    put("CurrencyCode", order.currency, "order.currency")
    put("CourierName", shipping.carrier, "order.shipping.carrier")
    if shipping.service is not None:
        put("CourierService", shipping.service, "order.shipping.service")
    else:
        put("CourierService", shipping.requested_service, "order.shipping.requested_service")
    put("SpecialInstructions", shipping.instructions, "order.shipping.instructions")
    if order.notes is not None:
        put("Notes", order.notes.customer, "order.notes.customer")
    if order.gift is not None:
        put("GiftWrap", order.gift.wrap, "order.gift.wrap")
        put("GiftMessage", order.gift.message, "order.gift.message")
        put("GiftMessageFrom", order.gift.sender, "order.gift.sender")
        put("GiftMessageTo", order.gift.recipient, "order.gift.recipient")
    held = order.status in (OrderStatus.ON_HOLD, OrderStatus.AWAITING_PAYMENT)
    put("OnHold", held, "order.status")
    put("SubTotal", _subtotal(order.items), "order.items")
    put("ShippingTotal", order.totals.shipping, "order.totals.shipping")
    # The order's whole tax and discount, the items' included (order_dispatch.money).
    amounts = money.amounts(order)
    put("TaxTotal", amounts.tax, "order.totals.tax")
    put("DiscountPriceTotal", amounts.discount, "order.totals.discount")


def _subtotal(items: list[Item]) -> Decimal:
    """The exact sum of unit price times quantity (no rounding to the default 28 digits)."""
    with localcontext() as context:
        context.prec = MAX_PREC
        context.traps[Inexact] = True
        return sum((item.unit_price * item.quantity for item in items), Decimal(0))


def _address(
    body: _Body,
    section: str,
    address: Address,
    path: str,
    customer: Customer,
) -> None:
    """One address section; names, phone and email fall back to the customer's."""

    def put(key: str, value: Any, source: str) -> None:
        body.put(section, key, value, source)

    def either(ours: str, fallback: str | None) -> tuple[str | None, str]:
        value = getattr(address, ours)
        return (value, f"{path}.{ours}") if value else (fallback, f"order.customer.{ours}")

    # The names come as a pair: both ours, or both the customer's.
    named = bool(address.first_name or address.last_name)
    owner: Address | Customer = address if named else customer
    where = path if named else "order.customer"
    for key, ours in (("FirstName", "first_name"), ("LastName", "last_name")):
        put(key, getattr(owner, ours), f"{where}.{ours}")
    # iHub addresses have no company field: the company is the first address line.
    lines = [(getattr(address, f), f"{path}.{f}") for f in ("company", "line1", "line2", "line3")]
    for n, (value, source) in enumerate([(v, p) for v, p in lines if v], start=1):
        put(f"Line{n}", value, source)
    put("City", address.city, f"{path}.city")
    put("County", address.region, f"{path}.region")
    put("PostcodeZip", address.postal_code, f"{path}.postal_code")
    put("CountryCode", address.country, f"{path}.country")
    put("PhoneNumber", *either("phone", customer.phone))
    put("EmailAddress", *either("email", customer.email))

