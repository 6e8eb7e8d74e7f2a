"""Taking jobs in over HTTP: reading a job request's body, the answers it gets, and the lane
that serves ``POST /v1/jobs`` for a key already known to be right.

:class:`JobLane` answers ``POST /v1/jobs`` in front of FastAPI's routing and dependencies when
the process's :class:`~order_dispatch_api.keystore.Authenticator` remembers the request's key
as right and holding the ``enqueue`` scope: it reads and validates the body, then checks the key,
spends a cell of its rate limit and enqueues the job in one Redis script. Every other request,
and every refusal's answer, goes through the route (``order_dispatch_api.app.post_job``) and its
key check, so both give the same answers in the same order: the key's 401, 429 or 403 first,
then the body's 413, 415 or 422.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import redis
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from order_dispatch_api import keystore as ks
from order_dispatch_api.problems import FieldError, ProblemError, field_errors, problem_response
from producers.enqueue import InvalidJob, Receipt, validate_job

if TYPE_CHECKING:
    from order_dispatch_api.app import Api

#: Redis errors that mean "not now" (503 and Retry-After), not a defect.
UNAVAILABLE: tuple[type[Exception], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ReadOnlyError,
)

JOB_PATH = "/v1/jobs"
JOB_BYTES_SETTING = "ORDER_DISPATCH_MAX_JOB_BYTES"


def refused(denied: ks.Denied) -> ProblemError:
    """The answer to a refused key: 429 with Retry-After, or 401."""
    if denied.reason is ks.Refusal.RATE:
        wait = max(1, int(denied.wait_s + 0.999))
        return ProblemError(
            429,
            f"this key's rate limit is reached; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    detail = {
        ks.Refusal.MISSING: "send the key as 'Authorization: Bearer <key>'",
        ks.Refusal.WRONG: "the API key is not valid",
        ks.Refusal.REVOKED: "the API key was revoked",
    }[denied.reason]
    return ProblemError(401, detail, headers={"WWW-Authenticate": "Bearer"})


def lacks(scope: ks.Scope) -> ProblemError:
    """The answer to a right key without ``scope``: 403."""
    return ProblemError(403, f"this needs an API key with the {scope.value!r} scope")


def unavailable(exc: Exception, retry_after_s: int) -> JSONResponse:
    """Redis (or the broker) does not answer: 503 with Retry-After; nothing was written."""
    return problem_response(
        503,
        f"Redis is not answering ({type(exc).__name__}); nothing was done, try again",
        headers={"Retry-After": str(retry_after_s)},
    )


def _content_type_ok(request: Request) -> bool:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def read_json(request: Request, limit: int, setting: str) -> Any:
    """The request's JSON body: 415 unless it is JSON, 413 above ``limit`` bytes (refused from
    its Content-Length before reading, or as soon as the bytes read pass it)."""
    if not _content_type_ok(request):
        raise ProblemError(415, "send the body as JSON, with 'Content-Type: application/json'")
    length = request.headers.get("content-length")
    too_large = f"the body is larger than {limit:,} bytes (setting {setting})"
    if length is not None and length.isdigit() and int(length) > limit:
        raise ProblemError(413, too_large)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ProblemError(413, too_large)
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProblemError(415, f"the body is not JSON ({exc})") from None


async def read_job(request: Request, limit: int) -> Any:
    """The body of ``POST /v1/jobs`` as a mapping: :func:`read_json`'s answers, and 422 unless
    it is a JSON object."""
    data = await read_json(request, limit, JOB_BYTES_SETTING)
    if not isinstance(data, dict):
        raise ProblemError(
            422,
            "the body must be a JSON object: one job",
            errors=[FieldError(pointer="", detail="not a JSON object")],
        )
    return data


def invalid(exc: InvalidJob) -> ProblemError:
    """The 422 of an invalid job, each bad field by its pointer."""
    return ProblemError(422, str(exc), errors=field_errors(exc.errors))


def receipt_response(receipt: Receipt) -> Response:
    """201 with the receipt of a new job; 200 with the first receipt of a duplicate."""
    return Response(
        receipt.model_dump_json(),
        status_code=200 if receipt.duplicate else 201,
        media_type="application/json",
        headers={"Location": f"{JOB_PATH}/{receipt.job_id}"},
    )


class JobLane:
    """ASGI middleware: ``POST /v1/jobs`` from a key the process knows to be right, validated
    before one Redis script checks the key and enqueues (see the module's docstring); every
    other request goes on to ``app``. ``route`` is the route's own object, which the metrics
    label requests by."""

    def __init__(self, app: ASGIApp, route: object) -> None:
        self.app = app
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != JOB_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        api: Api = scope["app"].state.api
        request = Request(scope, receive)
        authorization = request.headers.get("authorization")
        key = api.auth.known(authorization, ks.Scope.ENQUEUE)
        if key is None or not api.enqueuer.producer.queues_in_redis:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        try:
            response = await self._enqueue(api, request, key, authorization)
        except ProblemError as exc:
            response = problem_response(
                exc.status, exc.detail, errors=exc.errors, headers=exc.headers
            )
        except UNAVAILABLE as exc:
            response = unavailable(exc, api.settings.api.retry_after_s)
        await response(scope, receive, send)

    @staticmethod
    async def _enqueue(
        api: Api, request: Request, key: ks.Presented, authorization: str | None
    ) -> Response:
        try:
            data = await read_job(request, api.settings.max_job_bytes)
            job = validate_job(data)
        except (ProblemError, InvalidJob) as exc:
            # The key's own refusal comes first, and its cell is spent, as on the route.
            try:
                await api.auth.check(authorization)
            except ks.Denied as denied:
                raise refused(denied) from None
            if isinstance(exc, InvalidJob):
                raise invalid(exc) from None
            raise

        async def checked(keys: list[str], args: list[str | int]) -> list[Any]:
            try:
                _, reply = await api.auth.check_and_enqueue(key, ks.Scope.ENQUEUE, keys, args)
            except ks.Denied as denied:
                raise refused(denied) from None
            except ks.MissingScope as missing:
                raise lacks(missing.scope) from None
            return reply

        return receipt_response(await api.enqueuer.enqueue_valid(job, checked))
