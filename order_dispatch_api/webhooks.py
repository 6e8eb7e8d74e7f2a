"""``/v1/webhooks/endpoints``: webhook endpoints over HTTP, for keys with the ``operate`` scope.

The same operations as ``order-dispatch webhooks`` (:class:`order_dispatch.webhooks.EndpointBook`
does the work): add (the secret is in that answer only), list, read, disable, enable, delete,
rotate the secret, send a ping. The app mounts it with its own scope check::

    app.include_router(webhooks.router(require(Scope.OPERATE)))

It reads the process's synchronous Redis client, key names and settings from
``request.app.state.api`` (``sync``, ``keys``, ``settings``); every call runs in the thread
pool, since adding an endpoint resolves its host name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from order_dispatch.egress import EndpointRefused
from order_dispatch.webhooks import EVENT_TYPES, EndpointBook, EndpointNotFound, ping_job
from order_dispatch_api.problems import responses
from producers.enqueue import Producer

EndpointId = Annotated[str, Path(pattern=r"^ep_[0-9a-f]{16}$", description="The endpoint's id.")]


class NewEndpoint(BaseModel):
    """An endpoint to register."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048, description="https URL (see the SSRF guard).")
    events: list[str] = Field(
        default_factory=list,
        description=f"Statuses to send ({', '.join(EVENT_TYPES)}); empty: all.",
    )
    vendor: str | None = Field(None, max_length=64, description="Only this vendor's events.")
    description: str | None = Field(None, max_length=500)
    rate_per_minute: float | None = Field(None, ge=0, description="Requests a minute (0: none).")


class Disable(BaseModel):
    """Why an endpoint is disabled."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field("disabled by an operator", max_length=500)


def _book(request: Request) -> EndpointBook:
    api = request.app.state.api
    return EndpointBook(api.sync, api.keys)


@contextlib.contextmanager
def _known(endpoint_id: str) -> Iterator[None]:
    """Run the block; an unknown ``endpoint_id`` becomes a 404."""
    try:
        yield
    except EndpointNotFound:
        raise HTTPException(404, f"no webhook endpoint {endpoint_id!r}") from None


def router(operate: Callable[..., Awaitable[Any]]) -> APIRouter:
    """The endpoints, each behind the ``operate`` dependency."""
    routes = APIRouter(
        prefix="/v1/webhooks",
        dependencies=[Depends(operate)],
        tags=["webhooks"],
        responses=responses(401, 403, 413, 415, 422, 429, 503),
    )
    one = responses(404)

    @routes.post("/endpoints", status_code=201)
    async def add(request: Request, new: NewEndpoint) -> dict[str, Any]:
        """Register an endpoint; the answer holds its secret, shown this once."""
        book = _book(request)
        allow = bool(request.app.state.api.settings.webhooks_allow_private)
        try:
            endpoint = await run_in_threadpool(
                lambda: book.add(
                    new.url,
                    allow_private=allow,
                    events=new.events,
                    vendor=new.vendor,
                    description=new.description,
                    rate_per_minute=new.rate_per_minute,
                )
            )
        except EndpointRefused as exc:
            raise HTTPException(422, f"url refused: {exc}") from None
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return {**endpoint.public(), "secret": endpoint.secrets[0].value}

    @routes.get("/endpoints")
    async def list_(request: Request) -> dict[str, Any]:
        """Every endpoint, oldest first (never a secret)."""
        endpoints = await run_in_threadpool(_book(request).all)
        return {"endpoints": [e.public() for e in endpoints]}

    @routes.get("/endpoints/{endpoint_id}", responses=one)
    async def get(request: Request, endpoint_id: EndpointId) -> dict[str, Any]:
        """One endpoint (never its secret)."""
        with _known(endpoint_id):
            endpoint = await run_in_threadpool(_book(request).get, endpoint_id)
        return endpoint.public()

    @routes.post("/endpoints/{endpoint_id}/disable", responses=one)
    async def disable(
        request: Request, endpoint_id: EndpointId, body: Annotated[Disable | None, Body()] = None
    ) -> dict[str, Any]:
        """Stop sending to the endpoint."""
        reason = (body or Disable()).reason
        with _known(endpoint_id):
            endpoint = await run_in_threadpool(_book(request).disable, endpoint_id, reason)
        return endpoint.public()

    @routes.post("/endpoints/{endpoint_id}/enable", responses=one)
    async def enable(request: Request, endpoint_id: EndpointId) -> dict[str, Any]:
        """Send to the endpoint again."""
        with _known(endpoint_id):
            endpoint = await run_in_threadpool(_book(request).enable, endpoint_id)
        return endpoint.public()

    @routes.delete("/endpoints/{endpoint_id}", status_code=204, responses=one)
    async def delete(request: Request, endpoint_id: EndpointId) -> Response:
        """Forget the endpoint."""
        with _known(endpoint_id):
            await run_in_threadpool(_book(request).delete, endpoint_id)
        return Response(status_code=204)

    @routes.post("/endpoints/{endpoint_id}/rotate-secret", responses=one)
    async def rotate(request: Request, endpoint_id: EndpointId) -> dict[str, Any]:
        """A new secret (in this answer only); the old one signs beside it for 24 h."""
        with _known(endpoint_id):
            _, secret = await run_in_threadpool(_book(request).rotate_secret, endpoint_id)
        return {"id": endpoint_id, "secret": secret}

    @routes.post("/endpoints/{endpoint_id}/test", status_code=202, responses=one)
    async def test(request: Request, endpoint_id: EndpointId) -> dict[str, Any]:
        """Queue a ``webhook.ping`` to the endpoint; its job id follows it in the timeline."""
        book = _book(request)

        def ping() -> str:
            book.get(endpoint_id)
            producer = Producer(book.client, key_prefix=book.keys.prefix)
            try:
                return producer.enqueue_deliveries([ping_job(endpoint_id)])[0].job_id
            finally:
                producer.close()

        with _known(endpoint_id):

            job_id = await run_in_threadpool(ping)
        return {"job_id": job_id}

    return routes
