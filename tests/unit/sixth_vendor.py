"""A made-up sixth vendor, Acme, as docs/adding-a-vendor.md builds one: an adapter, a simulator
and (in ``test_catalog.py``) a catalog entry, and nothing else. The tests register the entry and
check that every place that should know the vendors knows Acme."""

from __future__ import annotations

from typing import Any, ClassVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from order_dispatch.contract import Job
from order_dispatch_sandbox.base import SimulatorSettings, VendorSimulator, json_response
from worker.outcomes import Outcome
from worker.vendors.base import (
    Translator,
    UnparsableResponse,
    VendorAdapter,
    VendorRequest,
    VendorResponse,
    require,
)


class AcmeOptions(BaseModel):
    """The account's warehouse."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warehouse: int = Field(ge=1)


class AcmeTranslator(Translator[AcmeOptions]):
    """Jobs -> ``POST /orders``."""

    vendor = "acme"

    def create(self, job: Job) -> VendorRequest:
        """``POST /orders`` with the reference, the warehouse, the buyer's email and the lines."""
        order = job.order
        assert order is not None
        body = {
            "reference": order.order_id,
            "warehouse": self.options.warehouse,
            "email": require("order.customer.email", order.customer.email),
            "lines": [{"sku": i.sku, "qty": i.quantity} for i in order.items],
        }
        return VendorRequest("POST", "/orders", json=body)


class Acme(VendorAdapter[AcmeOptions]):
    """Acme: ``X-Acme-Key`` auth; the answer is ``{"id", "status"}``."""

    name = "acme"
    translator_class = AcmeTranslator
    options_model = AcmeOptions

    def authorize(self, request: VendorRequest, token: str | None) -> VendorRequest:
        """Adds ``X-Acme-Key``."""
        return request.with_headers(**{"X-Acme-Key": self.account.secret("api_key") or ""})

    def parse_success(self, job: Job, response: VendorResponse) -> Outcome:
        """``id`` and ``status``."""
        data = response.json_object()
        if not isinstance(data.get("id"), str):
            raise UnparsableResponse("no id")
        status = data.get("status")
        return Outcome.success(
            data["id"], status if isinstance(status, str) else None,
            http_status=response.status, body=response.text,
        )


class AcmeSettings(SimulatorSettings):
    """The simulator's key."""

    api_key: SecretStr = SecretStr("sandbox-acme-key")


class AcmeSimulator(VendorSimulator):
    """``POST /acme/orders``: stores the order and answers its id."""

    name = "acme"
    settings_class = AcmeSettings
    demo_options: ClassVar[dict[str, Any]] = {"warehouse": 7}

    def routes(self) -> list[web.RouteDef]:
        """One endpoint."""
        return [web.post("/orders", self.create)]

    async def create(self, request: web.Request) -> web.Response:
        """Store the order; 401 without the key, 400 without the warehouse."""
        if request.headers.get("X-Acme-Key") != self.api_key:
            return json_response({"error": "bad key"}, status=401)
        body: dict[str, Any] = await request.json()
        if body.get("warehouse") != 7:
            return json_response({"error": "unknown warehouse"}, status=400)
        order_id = f"acme-{self.next_number()}"
        self.store[order_id] = body
        return json_response({"id": order_id, "status": "new"})
