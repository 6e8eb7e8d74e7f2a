"""SourceOrders simulator: ``/sourceorders/v1/orders[/ID]`` (docs: sourceorders.txt).

Documented: ``X-API-KEY`` auth; ``POST /v1/orders`` creates (``orderId`` ``soo_...``, status
``RECEIVED``); ``GET /v1/orders/:orderId`` reads; ``PUT /v1/orders/:orderId`` updates the
shipping address, "Updates are only allowed on orders with status RECEIVED"; the PUT sample sends
three fields and the answer keeps the rest, so a PUT merges.

Chosen where the document is silent (NOTES.md section 2, "[I]"):
- errors are ``{"error": <reason>, "message": <text>}``: 401 for a missing or wrong key,
  400 for validation, 404 for an unknown order, 409 for a PUT on an order not RECEIVED;
- required address fields (the "formatting guide" is not public): firstName, lastName, street1,
  city, postalCode, country (2 letters); stateOrProvince for US and CA;
- a ``skuCode`` is a SourceOrders product code, ``sop_`` and letters or digits; others are
  refused as unknown products. No external reference is stored: the vendor has none.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from order_dispatch_sandbox.base import (
    SimulatorSettings,
    VendorSimulator,
    json_response,
    read_json,
    retry_after_header,
    status_reason,
)

DEFAULT_API_KEY = "sandbox-sourceorders-key"

_SKU = re.compile(r"^sop_[0-9A-Za-z]{1,40}$")
_ADDRESS_FIELDS = (
    "city", "company", "country", "email", "firstName", "lastName", "phone", "phoneExt",
    "postalCode", "stateOrProvince", "street1", "street2",
)
_REQUIRED_ADDRESS = ("firstName", "lastName", "street1", "city", "postalCode", "country")
STATUSES = ("RECEIVED", "IN PRODUCTION", "SHIPPED", "CANCELED")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(status: int, error: str, message: str) -> web.Response:
    return json_response({"error": error, "message": message}, status=status)


def _bad(message: str) -> web.Response:
    return _error(400, "Bad Request", message)


def _address_problems(address: Any, *, partial: bool) -> str | None:
    if not isinstance(address, dict):
        return "shippingAddress must be an object"
    for key, value in address.items():
        if key not in _ADDRESS_FIELDS:
            return f"shippingAddress.{key} is not a known field"
        if not isinstance(value, str):
            return f"shippingAddress.{key} must be a string"
    if not partial:
        for key in _REQUIRED_ADDRESS:
            if not address.get(key, "").strip():
                return f"shippingAddress.{key} is required"
        if address["country"] in ("US", "CA") and not address.get("stateOrProvince", "").strip():
            return "shippingAddress.stateOrProvince is required for US and CA"
    country = address.get("country")
    if country is not None and not re.fullmatch(r"[A-Z]{2}", country):
        return "shippingAddress.country must be a 2-letter ISO country code"
    return None


def _item_problems(items: Any) -> str | None:
    if not isinstance(items, list) or not items:
        return "items must be a non-empty array"
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            return f"items[{n}] must be an object"
        sku = item.get("skuCode")
        if not isinstance(sku, str) or not sku:
            return f"items[{n}].skuCode is required"
        if not _SKU.match(sku):
            return f"items[{n}].skuCode {sku!r} is not a known product"
        qty = item.get("quantity")
        if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
            return f"items[{n}].quantity must be a positive integer"
        attrs = item.get("attributes", [])
        if not isinstance(attrs, list) or not all(
            isinstance(a, dict)
            and isinstance(a.get("name"), str)
            and isinstance(a.get("value"), str)
            for a in attrs
        ):
            return f"items[{n}].attributes must be an array of {{name, value}} strings"
    return None


class SourceOrdersSettings(SimulatorSettings):
    """SourceOrders' key and merchant (``ORDER_DISPATCH_SANDBOX_SOURCEORDERS_<NAME>``)."""

    api_key: SecretStr = SecretStr(DEFAULT_API_KEY)
    merchant_id: str = "som_0123456789"


class SourceOrdersSimulator(VendorSimulator):
    """SourceOrders' order API as documented, in memory."""

    name = "sourceorders"
    settings_class = SourceOrdersSettings
    settings: SourceOrdersSettings

    def routes(self) -> list[web.RouteDef]:
        """POST/GET/PUT on /v1/orders."""
        return [
            web.post("/v1/orders", self.create),
            web.get("/v1/orders/{order_id}", self.get),
            web.put("/v1/orders/{order_id}", self.update),
        ]

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        if request.headers.get("X-API-KEY") != self.api_key:
            return _error(401, "Unauthorized", "Missing or invalid API key")
        return None

    async def create(self, request: web.Request) -> web.Response:
        """``POST /v1/orders``."""
        if (denied := self._unauthorized(request)) is not None:
            return denied
        body, problem = await read_json(request)
        if problem is not None:
            return _bad(problem)
        if not isinstance(body, dict):
            return _bad("body must be a JSON object")
        problem = _item_problems(body.get("items")) or _address_problems(
            body.get("shippingAddress"), partial=False
        )
        if problem is not None:
            return _bad(problem)
        n = self.next_number()
        now = _now()
        order_id = f"soo_{3299399700 + n:010d}"
        order: dict[str, Any] = {
            "createdDate": now,
            "items": [
                {
                    "attributes": item.get("attributes", []),
                    "itemId": f"soi_{5380620000 + n * 100 + i:010d}",
                    "quantity": item["quantity"],
                    "skuCode": item["skuCode"],
                }
                for i, item in enumerate(body["items"])
            ],
            "lastUpdatedDate": now,
            "merchantId": self.merchant_id,
            "orderId": order_id,
            "promisedArrivalDate": (datetime.now(UTC) + timedelta(days=14)).date().isoformat()
            + "Z",
            "shippingAddress": {k: body["shippingAddress"].get(k, "") for k in _ADDRESS_FIELDS},
            "status": "RECEIVED",
        }
        self.store[order_id] = order
        return json_response(order)

    async def get(self, request: web.Request) -> web.Response:
        """``GET /v1/orders/:orderId``."""
        if (denied := self._unauthorized(request)) is not None:
            return denied
        order = self.store.get(request.match_info["order_id"])
        if order is None:
            return _error(404, "Not Found", f"Order {request.match_info['order_id']} not found")
        return json_response(order)

    async def update(self, request: web.Request) -> web.Response:
        """``PUT /v1/orders/:orderId`` (shipping address, only while RECEIVED)."""
        if (denied := self._unauthorized(request)) is not None:
            return denied
        order_id = request.match_info["order_id"]
        order = self.store.get(order_id)
        if order is None:
            return _error(404, "Not Found", f"Order {order_id} not found")
        body, problem = await read_json(request)
        if problem is not None:
            return _bad(problem)
        if not isinstance(body, dict) or "shippingAddress" not in body:
            return _bad("shippingAddress is required")
        problem = _address_problems(body["shippingAddress"], partial=True)
        if problem is not None:
            return _bad(problem)
        if order["status"] != "RECEIVED":
            return _error(
                409,
                "Conflict",
                f"Updates are only allowed on orders with status RECEIVED; order {order_id} "
                f"is {order['status']}",
            )
        order["shippingAddress"].update(body["shippingAddress"])
        order["lastUpdatedDate"] = _now()
        return json_response(order)

    def set_status(self, order_id: str, status: str) -> dict[str, Any]:
        """Advance an order (admin API), e.g. to ``IN PRODUCTION``."""
        order = self.store[order_id]
        order["status"] = status
        order["lastUpdatedDate"] = _now()
        return order

    def error_response(self, status: int, retry_after: float | None) -> web.Response:
        """Injected failures in the same ``{error, message}`` shape as real ones."""
        return json_response(
            {"error": status_reason(status), "message": "The service is unavailable, try again"},
            status=status,
            headers=retry_after_header(retry_after),
        )
