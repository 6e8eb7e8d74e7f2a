"""SourceOrders: create, get status, update the shipping address.

Idempotency and reconciliation policy: SourceOrders takes no client reference and offers no
lookup or list, so a create whose answer was lost cannot be checked or safely repeated. Such a
job ends ``in_doubt`` for an operator, never resubmitted blindly. ``get_status`` (GET) and
``update_address`` (a PUT of the same fields) are safe to repeat.
"""

from __future__ import annotations

from typing import Any, ClassVar

from order_dispatch.contract import Address, Job, Operation, PartialAddress
from worker.outcomes import Outcome
from worker.vendors.base import (
    Translator,
    UnparsableResponse,
    VendorAdapter,
    VendorRequest,
    VendorResponse,
)

_ADDRESS_MAP = {
    "first_name": "firstName",
    "last_name": "lastName",
    "company": "company",
    "city": "city",
    "region": "stateOrProvince",
    "postal_code": "postalCode",
    "country": "country",
    "phone": "phone",
    "email": "email",
}


def _address(
    address: Address | PartialAddress, *, fallback_email: str | None = None, full: bool
) -> dict[str, str]:
    fields = address.model_dump(exclude_none=True)
    out = {vendor: str(fields[ours]) for ours, vendor in _ADDRESS_MAP.items() if ours in fields}
    if "line1" in fields:
        out["street1"] = fields["line1"]
    extra = [fields[k] for k in ("line2", "line3") if fields.get(k)]
    if extra or "line2" in fields:
        out["street2"] = ", ".join(extra)
    if full:
        # The document's samples always send every key, empty when unknown.
        out.setdefault("company", "")
        out.setdefault("street2", "")
        out.setdefault("phone", "")
        out["phoneExt"] = ""
        if "email" not in out and fallback_email:
            out["email"] = fallback_email
    return out


class SourceOrdersTranslator(Translator[None]):
    """Normalized jobs -> SourceOrders requests."""

    vendor = "sourceorders"

    def create(self, job: Job) -> VendorRequest:
        """``POST /v1/orders`` with ``items`` and ``shippingAddress``."""
        order = job.order
        assert order is not None
        items = [
            {
                "attributes": [{"name": k, "value": v} for k, v in item.attributes.items()],
                "quantity": item.quantity,
                "skuCode": item.sku,
            }
            for item in order.items
        ]
        body: dict[str, Any] = {
            "items": items,
            "shippingAddress": _address(
                order.ship_to, fallback_email=order.customer.email, full=True
            ),
        }
        return VendorRequest("POST", "/v1/orders", json=body)

    def get_status(self, job: Job) -> VendorRequest:
        """``GET /v1/orders/:orderId``."""
        return VendorRequest("GET", f"/v1/orders/{job.vendor_order_id}")

    def update_address(self, job: Job) -> VendorRequest:
        """``PUT /v1/orders/:orderId`` with the changed address fields only (the vendor merges)."""
        assert job.address is not None
        return VendorRequest(
            "PUT",
            f"/v1/orders/{job.vendor_order_id}",
            json={"shippingAddress": _address(job.address, full=False)},
        )


class SourceOrders(VendorAdapter[None]):
    """SourceOrders: ``X-API-KEY`` auth; the answer is the order model."""

    name = "sourceorders"
    translator_class = SourceOrdersTranslator
    repeat_safe_operations: ClassVar[frozenset[Operation]] = frozenset(
        {Operation.GET_STATUS, Operation.UPDATE_ADDRESS}
    )

    def authorize(self, request: VendorRequest, token: str | None) -> VendorRequest:
        """Adds ``X-API-KEY``."""
        api_key = self.account.secret("api_key")
        assert api_key is not None
        return request.with_headers(**{"X-API-KEY": api_key, "Accept": "application/json"})

    def parse_success(self, job: Job, response: VendorResponse) -> Outcome:
        """The order model: ``orderId`` ("will always start with soo") and ``status``."""
        data = response.json_object()
        order_id = data.get("orderId")
        if not isinstance(order_id, str) or not order_id.startswith("soo"):
            raise UnparsableResponse(f"no 'soo' orderId in the answer (got {order_id!r})")
        status = data.get("status")
        return Outcome.success(
            order_id,
            status if isinstance(status, str) else None,
            http_status=response.status,
            body=response.text,
        )
