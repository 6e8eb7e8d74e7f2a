"""The sandbox server: every simulator under its prefix, faults applied in one middleware,
and the admin API under ``/_sandbox/``.

Admin API:
- ``GET  /_sandbox/health`` -> ``{"ok": true, "vendors": [...]}``
- ``GET  /_sandbox/faults`` -> live fault state of every vendor
- ``POST /_sandbox/faults/{vendor}`` body :class:`~order_dispatch_sandbox.faults.FaultSpec`
  -> merged state
- ``DELETE /_sandbox/faults/{vendor}`` -> clear that vendor's faults
- ``GET  /_sandbox/orders?vendor=NAME`` -> what the vendor received
  (``{"vendor", "count", "requests", "requests_by_path", "orders"}``)
- ``POST /_sandbox/orders/{vendor}/{order_id}/status`` body ``{"status": ".."}`` -> set a status
- ``POST /_sandbox/reset`` (optional ``?vendor=NAME``) -> forget orders, tokens and faults

Only ``health`` answers everyone. The rest answers requests from this host (loopback), or
carrying the token of ``ORDER_DISPATCH_SANDBOX_ADMIN_TOKEN`` in the ``X-Sandbox-Token`` header;
anything else gets 403.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from order_dispatch.eventloop import new_event_loop
from order_dispatch_sandbox.base import VendorSimulator, json_response, retry_after_header
from order_dispatch_sandbox.faults import FaultSpec, VendorFaults
from order_dispatch_sandbox.registry import all_simulators

SIMULATORS = web.AppKey("simulators", dict[str, VendorSimulator])
FAULTS = web.AppKey("faults", dict[str, VendorFaults])
ADMIN_TOKEN = web.AppKey("admin_token", str)
#: The variable holding the admin API's token, and the header that carries it.
ADMIN_TOKEN_ENV = "ORDER_DISPATCH_SANDBOX_ADMIN_TOKEN"
ADMIN_TOKEN_HEADER = "X-Sandbox-Token"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _drop_connection(request: web.Request) -> None:
    """Close the client's connection at once, with a TCP reset, sending nothing."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class _Dropped(web.HTTPException):
    """Raised after the connection was dropped, so aiohttp writes nothing."""

    status_code = 599


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Apply the vendor's faults to a request addressed to a simulator."""
    vendor = request.path.split("/", 2)[1]
    sims: dict[str, VendorSimulator] = request.app[SIMULATORS]
    sim = sims.get(vendor)
    if sim is None:
        return await handler(request)
    sim.requests += 1
    sim.requests_by_path[request.path.removeprefix(f"/{vendor}")] += 1
    faults: VendorFaults = request.app[FAULTS][vendor]
    delay = faults.latency.draw(faults.rng)
    if delay:
        await asyncio.sleep(delay)
    action = faults.next_action()
    if action is None:
        return await handler(request)
    faults.injected += 1
    if action == "outage":
        return sim.error_response(503, faults.retry_after or faults.outage_remaining())
    if action == "fail":
        if faults.body is not None:
            return json_response(
                faults.body, status=faults.status, headers=retry_after_header(faults.retry_after)
            )
        if faults.status == 429:
            return sim.rate_limited_response(faults.retry_after)
        return sim.error_response(faults.status, faults.retry_after)
    if action == "error":
        return sim.error_response(faults.error_status, None)
    if action == "rate_limit":
        return sim.rate_limited_response(faults.retry_after)
    if action == "reset":
        _drop_connection(request)
        raise _Dropped()
    if action == "hang":
        await asyncio.sleep(faults.hang_s)
        _drop_connection(request)
        raise _Dropped()
    response = await handler(request)
    if action == "drop_after_commit":
        _drop_connection(request)
        raise _Dropped()
    # malformed: the vendor's status line and headers, a broken body
    return web.Response(
        body=sim.malformed_body(response.content_type),
        status=200,
        content_type=response.content_type or None,
    )


def _from_loopback(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address((request.remote or "").split("%")[0]).is_loopback
    except ValueError:
        return False


@web.middleware
async def admin_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The admin API (but its health) for this host's requests, or with the admin token."""
    if not request.path.startswith("/_sandbox/") or request.path == "/_sandbox/health":
        return await handler(request)
    token = request.app[ADMIN_TOKEN]
    given = request.headers.get(ADMIN_TOKEN_HEADER, "")
    if _from_loopback(request) or (token and hmac.compare_digest(given, token)):
        return await handler(request)
    return json_response(
        {
            "error": f"the sandbox admin API answers this host only, or requests with the "
            f"{ADMIN_TOKEN_HEADER} header set to {ADMIN_TOKEN_ENV}"
        },
        status=403,
    )


def _vendor(request: web.Request) -> VendorSimulator:
    name = request.match_info.get("vendor") or request.query.get("vendor", "")
    sims: dict[str, VendorSimulator] = request.app[SIMULATORS]
    if name not in sims:
        raise web.HTTPNotFound(
            text=json.dumps({"error": f"unknown vendor {name!r}", "vendors": sorted(sims)}),
            content_type="application/json",
        )
    return sims[name]


async def _health(request: web.Request) -> web.Response:
    sims: dict[str, VendorSimulator] = request.app[SIMULATORS]
    return json_response({"ok": True, "vendors": sorted(sims)})


async def _get_faults(request: web.Request) -> web.Response:
    return json_response({name: f.describe() for name, f in request.app[FAULTS].items()})


async def _post_faults(request: web.Request) -> web.Response:
    sim = _vendor(request)
    try:
        spec = FaultSpec.model_validate_json(await request.read() or b"{}")
    except ValidationError as exc:
        return json_response(
            {"error": "invalid fault spec", "details": exc.errors(include_url=False)}, status=400
        )
    faults: VendorFaults = request.app[FAULTS][sim.name]
    faults.apply(spec)
    if spec.expire_tokens:
        sim.expire_tokens()
    return json_response({sim.name: faults.describe()})


async def _delete_faults(request: web.Request) -> web.Response:
    sim = _vendor(request)
    request.app[FAULTS][sim.name] = VendorFaults()
    return json_response({sim.name: request.app[FAULTS][sim.name].describe()})


async def _orders(request: web.Request) -> web.Response:
    sim = _vendor(request)
    orders = sim.orders()
    return json_response(
        {
            "vendor": sim.name,
            "count": len(orders),
            "requests": sim.requests,
            "requests_by_path": dict(sim.requests_by_path),
            "orders": orders,
        }
    )


async def _set_status(request: web.Request) -> web.Response:
    sim = _vendor(request)
    body = await request.json()
    order_id = request.match_info["order_id"]
    setter = getattr(sim, "set_status", None)
    if setter is None:
        return json_response({"error": f"{sim.name} has no settable status"}, status=400)
    if order_id not in sim.store:
        return json_response({"error": f"no order {order_id!r} at {sim.name}"}, status=404)
    try:
        return json_response(setter(order_id, str(body.get("status", ""))))
    except ValueError as exc:
        return json_response({"error": str(exc)}, status=400)


async def _reset(request: web.Request) -> web.Response:
    names = [request.query["vendor"]] if "vendor" in request.query else None
    sims: dict[str, VendorSimulator] = request.app[SIMULATORS]
    for name, sim in sims.items():
        if names is None or name in names:
            sim.reset()
            sim.expire_tokens()
            request.app[FAULTS][name] = VendorFaults()
    return json_response({"reset": names or sorted(sims)})


def build_app(simulators: Iterable[VendorSimulator] | None = None) -> web.Application:
    """The sandbox application with the given simulators (default: all of them); the admin
    API's token is ``ORDER_DISPATCH_SANDBOX_ADMIN_TOKEN`` (none: this host only)."""
    sims = {s.name: s for s in (simulators if simulators is not None else all_simulators())}
    app = web.Application(
        middlewares=[admin_guard, fault_middleware], client_max_size=8 * 1024 * 1024
    )
    app[ADMIN_TOKEN] = os.environ.get(ADMIN_TOKEN_ENV, "")
    app[SIMULATORS] = sims
    app[FAULTS] = {name: VendorFaults() for name in sims}
    app.router.add_get("/_sandbox/health", _health)
    app.router.add_get("/_sandbox/faults", _get_faults)
    app.router.add_post("/_sandbox/faults/{vendor}", _post_faults)
    app.router.add_delete("/_sandbox/faults/{vendor}", _delete_faults)
    app.router.add_get("/_sandbox/orders", _orders)
    app.router.add_post("/_sandbox/orders/{vendor}/{order_id}/status", _set_status)
    app.router.add_post("/_sandbox/reset", _reset)
    for sim in sims.values():
        sub = web.Application()
        sub.add_routes(sim.routes())
        app.add_subapp(f"/{sim.name}", sub)
    return app


def apply_faults(app: web.Application, faults: dict[str, Any]) -> None:
    """Set faults from ``{vendor: FaultSpec JSON}`` (raises ValueError naming the problem)."""
    for vendor, spec in faults.items():
        if vendor not in app[FAULTS]:
            raise ValueError(f"unknown vendor {vendor!r} in faults")
        try:
            app[FAULTS][vendor].apply(FaultSpec.model_validate(spec))
        except ValidationError as exc:
            raise ValueError(f"invalid faults for {vendor}: {exc}") from None


def serve(
    host: str = "127.0.0.1",
    port: int = 8787,
    simulators: Iterable[VendorSimulator] | None = None,
    faults: dict[str, Any] | None = None,
) -> None:
    """Run the sandbox until interrupted."""
    app = build_app(simulators)
    apply_faults(app, faults or {})
    web.run_app(app, host=host, port=port, access_log=None, print=None, loop=new_event_loop())
