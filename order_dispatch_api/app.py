"""The ASGI app: ``create_app()`` builds it; routers add endpoints.

``/v1`` (:data:`v1`) holds the jobs and events endpoints; ``/healthz``, ``/readyz`` and
``/metrics`` sit at the root. Another router (the operator console) is added the same way, with
:func:`require` for its scope checks and :attr:`Api.keys` / :attr:`Api.jobs` for its reads.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import redis
import redis.asyncio
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from order_dispatch.contract import VENDOR_OPERATIONS, Job, ResultEvent
from order_dispatch.keys import Keys
from order_dispatch.results import parse_entry
from order_dispatch.settings import Settings, get_settings
from order_dispatch.store import JobStore
from order_dispatch_api import clients, metrics, webhooks
from order_dispatch_api import keystore as ks
from order_dispatch_api.enqueue import AsyncProducer
from order_dispatch_api.intake import (
    JOB_PATH,
    UNAVAILABLE,
    JobLane,
    invalid,
    lacks,
    read_job,
    read_json,
    receipt_response,
    refused,
    unavailable,
)
from order_dispatch_api.jobs import JobReader, JobStatus
from order_dispatch_api.problems import (
    FieldError,
    Problem,
    ProblemError,
    field_errors,
    on_http_error,
    on_problem,
    on_validation_error,
    problem_response,
    responses,
)
from producers.enqueue import InvalidJob, Producer, Receipt, validate_job

VERSION = "1"

_CURSOR = re.compile(r"^(0|\d{1,20}-\d{1,20})$")


@dataclass
class Api:
    """What the endpoints share in one process: settings, clients, the producer, readers."""

    settings: Settings
    keys: Keys
    client: redis.asyncio.Redis
    poll_client: redis.asyncio.Redis
    sync: redis.Redis
    producer: Producer
    enqueuer: AsyncProducer
    auth: ks.Authenticator
    jobs: JobReader

    @classmethod
    def build(cls, settings: Settings) -> Api:
        """Clients and helpers for ``settings`` (nothing is connected yet)."""
        keys = Keys(settings.key_prefix)
        client = clients.async_client(settings)
        sync = clients.sync_client(settings)
        producer = Producer(sync, key_prefix=settings.key_prefix)
        return cls(
            settings=settings,
            keys=keys,
            client=client,
            poll_client=clients.async_client(settings, long_poll=True),
            sync=sync,
            producer=producer,
            enqueuer=AsyncProducer(producer, client),
            auth=ks.Authenticator(client, keys),
            jobs=JobReader(JobStore.from_settings(sync, settings)),
        )

    async def close(self) -> None:
        """Close every connection."""
        await self.client.aclose()
        await self.poll_client.aclose()
        self.producer.close()
        self.sync.close()


def api_of(request: Request) -> Api:
    """The process's :class:`Api`."""
    api: Api = request.app.state.api
    return api


def require(scope: ks.Scope) -> Callable[[Request], Awaitable[ks.Caller]]:
    """A dependency: the caller, whose key must be valid, within its rate limit and hold
    ``scope`` (401, 429, 403)."""

    async def check(request: Request) -> ks.Caller:
        api = api_of(request)
        try:
            caller = await api.auth.check(request.headers.get("authorization"))
        except ks.Denied as denied:
            raise refused(denied) from None
        if scope not in caller.scopes:
            raise lacks(scope)
        request.state.caller = caller
        return caller

    return check


Enqueuer = Annotated[ks.Caller, Depends(require(ks.Scope.ENQUEUE))]
Reader = Annotated[ks.Caller, Depends(require(ks.Scope.READ))]

AUTH_RESPONSES = responses(401, 403, 429, 503)


_JOB_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}},
}


class JobBatch(BaseModel):
    """A batch of jobs, enqueued all or nothing."""

    jobs: list[Job] = Field(description="Up to max_batch_jobs (1,000) jobs.")


class Receipts(BaseModel):
    """The receipt of every job of a batch, in the batch's order."""

    receipts: list[Receipt]


class EventPage(BaseModel):
    """Result events after a cursor, oldest first."""

    events: list[ResultEvent]
    next: str = Field(description="The cursor to send as `after` for the next page.")


v1 = APIRouter(prefix="/v1")


@v1.post(
    "/jobs",
    status_code=201,
    summary="Enqueue one job",
    openapi_extra={"requestBody": _JOB_BODY},
    responses={
        201: {"model": Receipt, "description": "Queued: the receipt."},
        200: {"model": Receipt, "description": "Queued before: the first receipt, duplicate."},
        **responses(413, 415, 422),
        **AUTH_RESPONSES,
    },
)
async def post_job(request: Request, caller: Enqueuer) -> Response:
    """Validate and queue one job. The same job id (the stable id of vendor, account,
    operation and order id, or the job's own `job_id`) always gets its first receipt back."""
    api = api_of(request)
    data = await read_job(request, api.settings.max_job_bytes)
    try:
        receipt = await api.enqueuer.enqueue(data)
    except InvalidJob as exc:
        raise invalid(exc) from None
    return receipt_response(receipt)


@v1.post(
    "/jobs/batch",
    status_code=201,
    summary="Enqueue a batch of jobs, all or nothing",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobBatch"}}},
        }
    },
    responses={
        201: {"model": Receipts, "description": "Queued (some or all of them new)."},
        200: {"model": Receipts, "description": "Every job was queued before."},
        **responses(413, 415, 422),
        **AUTH_RESPONSES,
    },
)
async def post_batch(request: Request, caller: Enqueuer) -> Response:
    """Validate every job, then queue them all in one round trip, or none: an invalid job is
    named by its index and field path (`/jobs/3/order/items/0/sku`) and nothing is queued."""
    api = api_of(request)
    limit = api.settings.api.max_batch_jobs
    data = await read_json(
        request, api.settings.api.max_batch_bytes, "ORDER_DISPATCH_API__MAX_BATCH_BYTES"
    )
    jobs = data.get("jobs") if isinstance(data, dict) else None
    if not isinstance(jobs, list):
        raise ProblemError(
            422,
            'the body must be {"jobs": [job, ...]}',
            errors=[FieldError(pointer="/jobs", detail="a list of jobs is required")],
        )
    if not 1 <= len(jobs) <= limit:
        raise ProblemError(
            422,
            f"a batch holds 1 to {limit:,} jobs (setting ORDER_DISPATCH_API__MAX_BATCH_JOBS)",
            errors=[FieldError(pointer="/jobs", detail=f"{len(jobs)} jobs; 1 to {limit} allowed")],
        )
    try:
        # Validating up to 1,000 jobs takes tens of ms: off the event loop.
        valid = await run_in_threadpool(_validate_batch, jobs)
    except _InvalidBatch as exc:
        raise ProblemError(
            422, f"{exc.count} of {len(jobs)} jobs are invalid; none was queued", errors=exc.errors
        ) from None
    receipts = await api.enqueuer.enqueue_many(valid)
    body = Receipts(receipts=receipts).model_dump_json()
    created = any(not r.duplicate for r in receipts)
    return Response(body, status_code=201 if created else 200, media_type="application/json")


class _InvalidBatch(Exception):
    def __init__(self, count: int, errors: list[FieldError]) -> None:
        self.count = count
        self.errors = errors


def _validate_batch(jobs: list[Any]) -> list[Job]:
    valid: list[Job] = []
    errors: list[FieldError] = []
    count = 0
    for n, data in enumerate(jobs):
        if not isinstance(data, dict):
            count += 1
            errors.append(FieldError(pointer=f"/jobs/{n}", detail="not a JSON object"))
            continue
        try:
            valid.append(validate_job(data))
        except InvalidJob as exc:
            count += 1
            errors.extend(field_errors(exc.errors, prefix=f"/jobs/{n}"))
    if errors:
        raise _InvalidBatch(count, errors)
    return valid


@v1.get(
    "/jobs/{job_id}",
    summary="Where a job stands",
    response_model=JobStatus,
    response_model_exclude_none=True,
    responses={**responses(404, 422), **AUTH_RESPONSES},
)
async def get_job(
    request: Request, caller: Reader, job_id: Annotated[str, Path(min_length=1, max_length=200)]
) -> JobStatus:
    """The job's run, status (queued, in_flight, retrying with the next attempt's time,
    deferred, or how the run ended), attempts, the vendor's order id and the last error
    (masked). The order itself only for keys with the `read:orders` scope."""
    api = api_of(request)
    with_order = ks.Scope.READ_ORDERS in caller.scopes
    found = await run_in_threadpool(api.jobs.status, job_id, with_order=with_order)
    if found is None:
        raise ProblemError(404, f"no job {job_id!r}")
    return found


class Timeline(BaseModel):
    """A job's history: each attempt and each operator action, oldest first."""

    job_id: str
    run: int
    state: str | None = None
    entries: list[dict[str, Any]]


@v1.get(
    "/jobs/{job_id}/timeline",
    summary="A job's timeline",
    response_model=Timeline,
    responses={**responses(404, 422), **AUTH_RESPONSES},
)
async def get_timeline(
    request: Request, caller: Reader, job_id: Annotated[str, Path(min_length=1, max_length=200)]
) -> Any:
    """What `order-dispatch timeline JOB --json` shows: every attempt (time, request method and
    path, the vendor's status, a masked excerpt, outcome, worker) and every operator action."""
    found = await run_in_threadpool(api_of(request).jobs.timeline, job_id)
    if found is None:
        raise ProblemError(404, f"no job {job_id!r}")
    return found


@v1.get(
    "/events",
    summary="Result events after a cursor (long poll)",
    response_model=EventPage,
    response_model_exclude_none=True,
    responses={**responses(422), **AUTH_RESPONSES},
)
async def get_events(
    request: Request,
    caller: Reader,
    after: Annotated[
        str,
        Query(
            pattern=_CURSOR.pattern,
            description="The cursor of the last page (`next`); 0 for the oldest event kept.",
        ),
    ] = "0",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    wait: Annotated[
        float, Query(ge=0, le=30, description="Seconds to wait for an event (at most 30).")
    ] = 0,
) -> Any:
    """Result events after `after`, oldest first, waiting up to `wait` seconds (at most the
    setting `api.max_wait_s`, 30 s) when there is none yet. Delivery is at least once: keep
    the last `next` and treat an `event_id` seen before as done."""
    api = api_of(request)
    wait_ms = int(min(wait, api.settings.api.max_wait_s) * 1000)
    cursor = "0-0" if after == "0" else after
    reply: Any = await api.poll_client.xread(
        {api.keys.results: cursor}, count=limit, block=wait_ms or None
    )
    events: list[ResultEvent] = []
    for _, entries in reply or []:
        for entry_id, fields in entries:
            delivery = parse_entry(entry_id, fields)
            cursor = delivery.entry_id
            if delivery.event is not None:
                events.append(delivery.event)
    return {"events": events, "next": cursor}


ops = APIRouter()


class Health(BaseModel):
    """A probe's answer."""

    status: str
    checks: dict[str, str] = Field(default_factory=dict)


@ops.get("/healthz", summary="The process is alive", response_model=Health)
async def healthz() -> Any:
    """200 while the process serves requests."""
    return {"status": "ok"}


@ops.get(
    "/readyz",
    summary="Redis and the broker answer",
    response_model=Health,
    responses={503: {"model": Health, "description": "Redis or the broker does not answer."}},
)
async def readyz(request: Request) -> Any:
    """200 when Redis (and the broker, when it is not that Redis) answers, else 503."""
    api = api_of(request)
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(api.client.ping(), 2)
        checks["redis"] = "ok"
    except (redis.RedisError, TimeoutError) as exc:
        checks["redis"] = f"unreachable: {type(exc).__name__}"
    if not api.settings.broker_is_redis:
        checks["broker"] = await run_in_threadpool(_broker_check, api.settings.broker)
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks},
        status_code=200 if ok else 503,
    )


def _broker_check(url: str) -> str:
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as exc:  # kombu raises each transport's own errors
        return f"unreachable: {type(exc).__name__}"


@ops.get(
    "/metrics",
    summary="Prometheus metrics",
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "OK"},
        **AUTH_RESPONSES,
    },
)
async def get_metrics(caller: Reader) -> Response:
    """Requests by route, method and status, and their latency (needs the `read` scope)."""
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


class Observe:
    """ASGI middleware: each request's count and latency by route template and status, and
    the request time bound (past it, 503 if nothing was answered yet)."""

    def __init__(self, app: ASGIApp, timeout_s: float, long_poll_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.long_poll_s = long_poll_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0  # none answered yet

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        timeout = self.timeout_s
        if scope["path"] == "/v1/events":
            timeout += self.long_poll_s

        try:
            async with asyncio.timeout(timeout) as deadline:
                await self.app(scope, receive, sending)
        except TimeoutError:
            if not deadline.expired():
                raise
            if not status:
                response = problem_response(
                    503,
                    f"the request took longer than {timeout:g} s",
                    headers={"Retry-After": "1"},
                )
                await response(scope, receive, sending)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "(unmatched)"
            metrics.observe(path, scope["method"], status or 500, time.perf_counter() - started)


async def on_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """Redis (or the broker) does not answer: 503 with Retry-After; nothing was written."""
    return unavailable(exc, api_of(request).settings.api.retry_after_s)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API app on ``settings`` (default: the environment's)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        api = Api.build(settings)
        app.state.api = api
        try:
            yield
        finally:
            await api.close()

    app = FastAPI(
        title="order-dispatch",
        version=VERSION,
        summary="Enqueue orders for fulfilment vendors, look them up, follow their results.",
        lifespan=lifespan,
        openapi_tags=[],
    )
    app.include_router(v1)
    app.include_router(ops)
    app.include_router(webhooks.router(require(ks.Scope.OPERATE)))
    from order_dispatch_api.console.wiring import console_for

    app.include_router(console_for(app, settings))
    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    for error in UNAVAILABLE:
        app.add_exception_handler(error, on_unavailable)
    _broker_errors(app)
    app.add_middleware(JobLane, route=_route(v1, JOB_PATH, "POST"))
    app.add_middleware(
        Observe, timeout_s=settings.api.request_timeout_s, long_poll_s=settings.api.max_wait_s
    )
    _document(app)
    return app


def _route(router: APIRouter, path: str, method: str) -> BaseRoute:
    """The route of ``router`` that answers ``method`` on ``path``."""
    for route in router.routes:
        if getattr(route, "path", None) == path and method in getattr(route, "methods", ()):
            return route
    raise LookupError(f"no route {method} {path}")


def _broker_errors(app: FastAPI) -> None:
    try:
        from kombu.exceptions import OperationalError
    except ImportError:
        return
    app.add_exception_handler(OperationalError, on_unavailable)


def _document(app: FastAPI) -> None:
    """OpenAPI: the Job and Problem schemas as components, and bearer auth."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {})
        found = components.setdefault("schemas", {})
        job = Job.model_json_schema(ref_template="#/components/schemas/{model}")
        found.update(job.pop("$defs", {}))
        job["properties"]["vendor"]["enum"] = sorted(VENDOR_OPERATIONS)
        found["Job"] = job
        batch = JobBatch.model_json_schema(ref_template="#/components/schemas/{model}")
        batch.pop("$defs", None)
        batch["properties"]["jobs"]["maxItems"] = 1000
        batch["properties"]["jobs"]["minItems"] = 1
        found["JobBatch"] = batch
        problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        found.update(problem.pop("$defs", {}))
        found["Problem"] = problem
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        for path, operations in schema.get("paths", {}).items():
            if path.startswith("/v1/") or path == "/metrics":
                for operation in operations.values():
                    operation["security"] = [{"bearer": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
