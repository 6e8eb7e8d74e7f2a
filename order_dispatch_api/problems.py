"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error the API answers is a :class:`Problem`: ``type`` (a URI clients match on),
``title``, ``status``, ``detail``, and for invalid input an ``errors`` list naming each bad
field by its JSON pointer (``/order/items/0/sku``; ``/jobs/3/vendor`` in a batch) with its
message. The input itself is never echoed: it may hold a customer's personal data.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

MEDIA_TYPE = "application/problem+json"
#: Problem types are URNs (``urn:order-dispatch:problem:invalid``), listed in the README's
#: section on the HTTP API.
TYPE_BASE = "urn:order-dispatch:problem:"


class FieldError(BaseModel):
    """One bad field: where (a JSON pointer into the request body, or the query or path
    parameter's name) and why."""

    pointer: str | None = Field(
        None, description="JSON pointer (RFC 6901) to the body's field, '' for the whole body."
    )
    parameter: str | None = Field(None, description="The query or path parameter.")
    detail: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(description="URI of the problem type; match on this.")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = Field(
        None, description="Every bad field, for a request that failed validation."
    )


TITLES: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Missing, wrong or revoked API key"),
    403: ("forbidden", "The API key lacks the scope this needs"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("too-large", "Request body too large"),
    415: ("unsupported-media-type", "The body is not JSON"),
    422: ("invalid", "The request is invalid"),
    429: ("rate-limited", "Rate limit reached"),
    503: ("unavailable", "Service unavailable"),
}


class ProblemError(Exception):
    """Raise to answer a problem."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or str(status))
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
) -> JSONResponse:
    """The problem+json response of ``status``."""
    slug, title = TITLES.get(status, ("error", "Error"))
    body = Problem(
        type=TYPE_BASE + slug,
        title=title,
        status=status,
        detail=detail,
        instance=instance,
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        headers=headers,
        media_type=MEDIA_TYPE,
    )


def pointer(path: str, prefix: str = "") -> str:
    """``order.items.0.sku`` as the JSON pointer ``/order/items/0/sku`` under ``prefix``."""
    if path in ("", "(document)"):
        return prefix
    parts = [p.replace("~", "~0").replace("/", "~1") for p in path.split(".")]
    return prefix + "/" + "/".join(parts)


def field_errors(lines: list[str], prefix: str = "") -> list[FieldError]:
    """``path: message`` lines (:class:`~producers.enqueue.InvalidJob`) as field errors."""
    out = []
    for line in lines:
        path, sep, message = line.partition(": ")
        if not sep:
            path, message = "", line
        out.append(FieldError(pointer=pointer(path, prefix), detail=message))
    return out


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries declaring ``codes`` as problem+json (with Retry-After on
    429 and 503)."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {
            "description": TITLES.get(code, ("", "Error"))[1],
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        if code in (429, 503):
            entry["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before trying again.",
                    "schema": {"type": "integer"},
                }
            }
        out[code] = entry
    return out


async def on_problem(request: Request, exc: Exception) -> JSONResponse:
    """Handler of :class:`ProblemError`."""
    assert isinstance(exc, ProblemError)
    return problem_response(exc.status, exc.detail, errors=exc.errors, headers=exc.headers)


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors (unknown route 404, 405) as problems."""
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names only the first route of the path; a path may have several (GET, POST).
        headers["Allow"] = ", ".join(sorted(_allowed(request)))
    return problem_response(exc.status_code, detail, headers=headers)


def _allowed(request: Request) -> set[str]:
    """Every method some route of the request's path answers."""
    allowed: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            allowed |= getattr(route, "methods", None) or set()
    return allowed


async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's parameter validation as a 422 problem naming each parameter (never its
    value)."""
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        where, rest = (loc[0], loc[1:]) if loc else ("body", [])
        message = str(err.get("msg", "invalid"))
        if where == "body":
            errors.append(FieldError(pointer=pointer(".".join(rest)), detail=message))
        else:
            errors.append(FieldError(parameter=".".join(rest) or where, detail=message))
    return problem_response(422, "The request's parameters are invalid.", errors=errors)
