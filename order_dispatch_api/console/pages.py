"""The operator console's pages: a FastAPI router of server-rendered Jinja2 pages under
``/console``.

Pages: overview, needs a person (filtered, paged, bulk replay after a confirmed count), job
(summary, timeline, order, actions), the corrected-order editor, purge confirmation,
quarantine, search. Every page needs a session (:mod:`.sessions`); every action is a POST that
carries the session's CSRF token and checks the ``operate`` scope on the server. Orders are
shown only to keys with ``read:orders``. Templates autoescape everything: what a vendor or an
order says is text, never markup. URLs carry job ids and filters, never an order's data; search
is a POST so order ids stay out of URLs and access logs.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import urlencode

import redis
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from order_dispatch import privacy
from order_dispatch.contract import EventStatus, Job
from order_dispatch.logs import get_logger
from order_dispatch.timeline import TimelineEntry
from order_dispatch_api.console import editor
from order_dispatch_api.console.overview import read_overview
from order_dispatch_api.console.quarantine import EntryGone, QuarantineDesk
from order_dispatch_api.console.sessions import (
    COOKIE,
    LOGIN_COOKIE,
    OPERATE,
    READ,
    READ_ORDERS,
    KeyCheck,
    Principal,
    Session,
    SessionStore,
    same,
)
from order_dispatch_api.console.store import (
    DeadLetter,
    InvalidJob,
    JobNotFound,
    JobStore,
    OperationRefused,
    corrected_job,
    parse_since,
)
from order_dispatch_ops.auth import is_loopback

log = get_logger("order_dispatch_api.console")

PAGE_SIZE = 25
#: Statuses the "needs a person" page lists.
NEEDS = ("dead_lettered", "in_doubt", "rejected")
#: Statuses a bulk replay takes (an in-doubt job may have reached the vendor: one by one).
BULK_REPLAYABLE = frozenset({"dead_lettered", "rejected"})
#: Jobs one bulk replay sends at most (oldest first), so it ends well within the API's request
#: time bound; the rest are counted and confirmed again.
BULK_MAX = 200
STATIC = {"console.css": "text/css", "console.js": "text/javascript"}
#: Content Security Policy: nothing but this site's own script, style and forms.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass
class ConsoleConfig:
    """What the console runs on: Redis (``redis`` gives the process's blocking client) and key
    prefix, the vendors and accounts, and the API's key check (``keys_exist`` says whether any
    active key exists)."""

    redis: Callable[[], redis.Redis]
    prefix: str
    vendors: Sequence[str]
    accounts: Mapping[str, Sequence[str]]
    check_key: KeyCheck
    keys_exist: Callable[[], bool]
    key_revoked: Callable[[str], bool] = lambda _key_id: False
    """True when the key a session came from has been revoked (its session ends)."""
    queues_in_redis: bool = True
    idle_s: int = 1800
    max_s: int = 8 * 3600
    refresh_s: int = 10
    overview_cache_s: float = 5.0
    """How long one reading of the overview's figures serves every operator's page (each
    reading scans the dead letters, the open ledgers and the last hour of events)."""
    templates: Environment = field(
        default_factory=lambda: Environment(
            loader=PackageLoader("order_dispatch_api.console", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
        )
    )


class _Denied(Exception):
    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status
        self.why = why


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _when(at: datetime | str | None) -> str:
    if at is None:
        return "-"
    if isinstance(at, str):
        try:
            return _when(datetime.fromisoformat(at))
        except ValueError:
            return at
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def console_router(config: ConsoleConfig) -> APIRouter:
    """The console's routes, to include in the API's app."""
    router = APIRouter(prefix="/console", include_in_schema=False)
    env = config.templates
    env.filters["ago"] = _ago
    env.filters["when"] = _when
    parts = _Parts(config)
    cached: list[Any] = [0.0, None]  # when, Overview

    def render(
        request: Request,
        name: str,
        session: Session | None,
        status: int = 200,
        **context: Any,
    ) -> Response:
        html = env.get_template(name).render(
            session=session,
            csrf=session.csrf if session else "",
            path=request.url.path,
            refresh_s=config.refresh_s,
            **context,
        )
        return _secured(HTMLResponse(html, status_code=status))

    def _login_refused(request: Request, error: str) -> Response:
        """The login page again, 403, with ``error`` and no form to send."""
        return render(
            request, "login.html", None, 403, login_csrf="", open_local=False, error=error
        )

    def session_of(request: Request) -> Session | None:
        cookie = request.cookies.get(COOKIE)
        session = parts.sessions().get(cookie)
        key_id = session.principal.key_id if session else None
        if key_id and config.key_revoked(key_id):
            parts.sessions().end(cookie)
            return None
        return session

    async def acting(request: Request, scope: str = OPERATE) -> tuple[Session, FormData]:
        """The session and form of an action, or :class:`_Denied`: no session (401), a wrong
        or missing CSRF token (403), a key without ``scope`` (403)."""
        session = session_of(request)
        if session is None:
            raise _Denied(401, "your session has ended: log in again")
        form = await request.form()
        if not same(str(form.get("csrf") or ""), session.csrf):
            raise _Denied(403, "this form's CSRF token is missing or wrong: reload the page")
        if scope != READ_OR_OPERATE and not session.can(scope):
            raise _Denied(
                403,
                f"the key {session.principal.name!r} lacks the {scope!r} scope; "
                "ask for a key that has it",
            )
        return session, form

    def denied(request: Request, exc: _Denied) -> Response:
        return render(request, "denied.html", session_of(request), exc.status, why=exc.why)

    def login_redirect(to: str = "/console/login") -> Response:
        return RedirectResponse(to, status_code=303)

    # Static files and login

    @router.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            return Response(status_code=404)
        body = resources.files("order_dispatch_api.console").joinpath("static", name).read_bytes()
        return Response(body, media_type=STATIC[name], headers={"Cache-Control": "max-age=300"})

    @router.get("/login")
    def login_page(request: Request) -> Response:
        token = secrets.token_urlsafe(24)
        response = render(
            request,
            "login.html",
            None,
            login_csrf=token,
            open_local=not config.keys_exist() and _loopback(request),
        )
        _cookie(response, request, LOGIN_COOKIE, token, max_age=900)
        return response

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        token = str(form.get("csrf") or "")
        if not same(token, request.cookies.get(LOGIN_COOKIE)):
            return _login_refused(request, "the login form expired: reload the page and try again")
        principal: Principal | None
        if not config.keys_exist():
            # The API's rule: with no key created, only this machine may come in.
            if not _loopback(request):
                return _login_refused(
                    request, "no API key exists: the console only serves this machine"
                )
            principal = Principal("local", frozenset({READ, READ_ORDERS, OPERATE}))
        else:
            principal = await config.check_key(str(form.get("key") or "").strip())
        if principal is None or not principal.scopes & {READ, OPERATE}:
            log.info("console login refused")
            fresh = secrets.token_urlsafe(24)
            response = render(
                request,
                "login.html",
                None,
                401,
                login_csrf=fresh,
                open_local=False,
                error="that key is wrong, revoked, or has neither read nor operate",
            )
            _cookie(response, request, LOGIN_COOKIE, fresh, max_age=900)
            return response
        cookie, _session = parts.sessions().start(principal)
        log.info("console login", operator=principal.name, scopes=sorted(principal.scopes))
        response = login_redirect("/console/")
        _cookie(response, request, COOKIE, cookie, max_age=config.max_s)
        response.delete_cookie(LOGIN_COOKIE, path="/console")
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        try:
            await acting(request, READ_OR_OPERATE)
        except _Denied as exc:
            return denied(request, exc)
        parts.sessions().end(request.cookies.get(COOKIE))
        response = login_redirect()
        response.delete_cookie(COOKIE, path="/console")
        return response

    # Pages

    @router.get("/")
    def overview(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return login_redirect()
        now = time.monotonic()
        if cached[1] is None or now - cached[0] > config.overview_cache_s:
            dead = parts.store().dead_letters()
            view = read_overview(
                config.redis(),
                config.prefix,
                config.vendors,
                config.accounts,
                dead,
                queues_in_redis=config.queues_in_redis,
            )
            cached[:] = [now, view]
        return render(request, "overview.html", session, view=cached[1])

    def needs_filter(params: Mapping[str, str]) -> tuple[dict[str, str], list[DeadLetter], str]:
        wanted = {k: params.get(k, "").strip() for k in ("vendor", "account", "status", "since")}
        problem = ""
        since = None
        if wanted["since"]:
            try:
                since = parse_since(wanted["since"])
            except ValueError as exc:
                problem = f"since: {exc}"
        status = wanted["status"] if wanted["status"] in NEEDS else ""
        wanted["status"] = status
        found: list[DeadLetter] = []
        if status in ("", "dead_lettered", "in_doubt"):
            found += [d for d in parts.store().dead_letters() if not status or d.status == status]
        if status in ("", "rejected"):
            found += parts.store().rejected(since)
        found = [
            d
            for d in found
            if (not wanted["vendor"] or d.vendor == wanted["vendor"])
            and (not wanted["account"] or d.account == wanted["account"])
            and (since is None or (d.at is not None and d.at >= since))
        ]
        epoch = datetime.min.replace(tzinfo=UTC)
        found.sort(key=lambda d: (d.at or epoch, d.job_id), reverse=True)
        return wanted, found, problem

    @router.get("/needs")
    def needs(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return login_redirect()
        wanted, found, problem = needs_filter(request.query_params)
        pages = max(1, math.ceil(len(found) / PAGE_SIZE))
        try:
            page = min(pages, max(1, int(request.query_params.get("page", "1"))))
        except ValueError:
            page = 1
        query = {k: v for k, v in wanted.items() if v}
        return render(
            request,
            "needs.html",
            session,
            wanted=wanted,
            rows=found[(page - 1) * PAGE_SIZE : page * PAGE_SIZE],
            total=len(found),
            bulk=sum(1 for d in found if d.status in BULK_REPLAYABLE),
            page=page,
            pages=pages,
            query=urlencode(query),
            problem=problem,
            vendors=sorted(config.vendors),
            statuses=NEEDS,
        )

    @router.post("/needs/replay")
    async def bulk_replay(request: Request) -> Response:
        try:
            session, form = await acting(request)
        except _Denied as exc:
            return denied(request, exc)
        wanted, found, problem = await run_in_threadpool(
            needs_filter, {k: str(v) for k, v in form.items()}
        )
        chosen = [d for d in found if d.status in BULK_REPLAYABLE]
        expected = str(form.get("expected") or "")
        if problem or expected != str(len(chosen)) or form.get("confirm") != "yes":
            changed = bool(expected) and expected != str(len(chosen))
            return render(
                request,
                "bulk_confirm.html",
                session,
                bulk_max=BULK_MAX,
                wanted=wanted,
                chosen=chosen,
                problem=problem,
                changed=changed,
            )
        ops = parts.store().operations(session.principal.name)
        results: list[tuple[DeadLetter, str]] = []
        note = str(form.get("note") or "") or None
        epoch = datetime.min.replace(tzinfo=UTC)
        batch = sorted(chosen, key=lambda d: (d.at or epoch, d.job_id))[:BULK_MAX]
        for d in batch:
            try:
                await run_in_threadpool(ops.replay, d.job_id, note=note)
                results.append((d, "replayed"))
            except OperationRefused as exc:
                results.append((d, f"refused: {exc}"))
        log.info(
            "console bulk replay",
            operator=session.principal.name,
            jobs=len(batch),
            replayed=sum(1 for _, r in results if r == "replayed"),
        )
        return render(
            request, "bulk_done.html", session, results=results, left=len(chosen) - len(batch)
        )

    @router.get("/jobs/{job_id}")
    def job_page(request: Request, job_id: str) -> Response:
        session = session_of(request)
        if session is None:
            return login_redirect()
        try:
            summary = parts.store().summary(job_id)
            timeline = parts.store().timeline(job_id)
        except JobNotFound as exc:
            return render(request, "denied.html", session, 404, why=str(exc))
        order = None
        entries = timeline.entries
        if session.can(READ_ORDERS):
            if summary.document:
                order = json.dumps(editor.order_of(summary.document), indent=2, ensure_ascii=False)
        else:
            entries = _masked(entries, summary.document)
        flash = request.query_params.get("done", "")
        return render(
            request,
            "job.html",
            session,
            job=summary,
            timeline=timeline,
            entries=entries,
            order=order,
            done=_FLASH.get(flash, ""),
            replayable=summary.status in {s.value for s in _REPLAYABLE},
            in_doubt=summary.status == EventStatus.IN_DOUBT.value,
            ended=summary.status in {s.value for s in EventStatus if s.terminal},
        )

    def editor_page(
        request: Request,
        session: Session,
        job_id: str,
        values: Mapping[str, str] | None = None,
        errors: list[str] | None = None,
        status: int = 200,
    ) -> Response:
        summary = parts.store().summary(job_id)
        order = editor.order_of(summary.document)
        if order is None:
            return render(
                request,
                "denied.html",
                session,
                409,
                why=f"job {job_id!r} has no stored order any more (purged or expired)",
            )
        leaves = editor.fields(order)
        by_field, rest = editor.split_errors(errors or [], {f.name for f in leaves})
        return render(
            request,
            "edit.html",
            session,
            status,
            job=summary,
            leaves=leaves,
            values=values or {},
            field_errors=by_field,
            other_errors=rest,
        )

    @router.get("/jobs/{job_id}/edit")
    def edit(request: Request, job_id: str) -> Response:
        session = session_of(request)
        if session is None:
            return login_redirect()
        if not (session.can(OPERATE) and session.can(READ_ORDERS)):
            return denied(
                request,
                _Denied(403, "editing an order needs a key with both 'operate' and 'read:orders'"),
            )
        try:
            return editor_page(request, session, job_id)
        except JobNotFound as exc:
            return render(request, "denied.html", session, 404, why=str(exc))

    @router.post("/jobs/{job_id}/edit")
    async def edit_replay(request: Request, job_id: str) -> Response:
        try:
            session, form = await acting(request)
            if not session.can(READ_ORDERS):
                raise _Denied(403, "editing an order needs the 'read:orders' scope too")
        except _Denied as exc:
            return denied(request, exc)
        values = {k: str(v) for k, v in form.items() if k.startswith("order.")}
        try:
            summary = parts.store().summary(job_id)
            order = editor.order_of(summary.document)
            if order is None:
                raise OperationRefused(f"job {job_id!r} has no stored order any more")
            fixed = editor.corrected(order, values)
            corrected_job(job_id, summary.document or "{}", fixed)
            await run_in_threadpool(
                parts.store().operations(session.principal.name).replay,
                job_id,
                order=fixed,
                note=str(form.get("note") or "") or None,
            )
        except InvalidJob as exc:
            return editor_page(request, session, job_id, values, exc.errors, 422)
        except (OperationRefused, JobNotFound) as exc:
            return editor_page(request, session, job_id, values, [str(exc)], 409)
        log.info("console replay", operator=session.principal.name, job_id=job_id, corrected=True)
        return RedirectResponse(f"/console/jobs/{job_id}?done=replayed", status_code=303)

    @router.post("/jobs/{job_id}/replay")
    async def replay(request: Request, job_id: str) -> Response:
        try:
            session, form = await acting(request)
            await run_in_threadpool(
                parts.store().operations(session.principal.name).replay,
                job_id,
                note=str(form.get("note") or "") or None,
            )
        except _Denied as exc:
            return denied(request, exc)
        except (OperationRefused, InvalidJob) as exc:
            return render(request, "denied.html", session_of(request), 409, why=str(exc))
        log.info("console replay", operator=session.principal.name, job_id=job_id)
        return RedirectResponse(f"/console/jobs/{job_id}?done=replayed", status_code=303)

    @router.post("/jobs/{job_id}/resolve")
    async def resolve(request: Request, job_id: str) -> Response:
        try:
            session, form = await acting(request)
        except _Denied as exc:
            return denied(request, exc)
        outcome = str(form.get("outcome") or "")
        note = str(form.get("note") or "").strip()
        vendor_order_id = str(form.get("vendor_order_id") or "").strip() or None
        problem = ""
        if outcome not in ("accepted", "rejected"):
            problem = "choose accepted or rejected"
        elif not note:
            problem = "a note is required: say how you know"
        elif outcome == "accepted" and not vendor_order_id:
            problem = "accepted needs the vendor's order id"
        elif outcome == "rejected" and vendor_order_id:
            problem = "a vendor order id goes with accepted only"
        if problem:
            return render(request, "denied.html", session, 422, why=problem)
        try:
            await run_in_threadpool(
                parts.store().operations(session.principal.name).resolve,
                job_id,
                outcome,  # type: ignore[arg-type]
                vendor_order_id=vendor_order_id,
                note=note,
            )
        except (OperationRefused, JobNotFound) as exc:
            return render(request, "denied.html", session, 409, why=str(exc))
        log.info("console resolve", operator=session.principal.name, job_id=job_id, outcome=outcome)
        return RedirectResponse(f"/console/jobs/{job_id}?done=resolved", status_code=303)

    @router.get("/jobs/{job_id}/purge")
    def purge_confirm(request: Request, job_id: str) -> Response:
        session = session_of(request)
        if session is None:
            return login_redirect()
        try:
            summary = parts.store().summary(job_id)
        except JobNotFound as exc:
            return render(request, "denied.html", session, 404, why=str(exc))
        return render(request, "purge.html", session, job=summary)

    @router.post("/jobs/{job_id}/purge")
    async def purge(request: Request, job_id: str) -> Response:
        try:
            session, form = await acting(request)
        except _Denied as exc:
            return denied(request, exc)
        if form.get("confirm") != "yes":
            return RedirectResponse(f"/console/jobs/{job_id}/purge", status_code=303)
        try:
            await run_in_threadpool(
                parts.store().operations(session.principal.name).purge,
                job_id,
                note=str(form.get("note") or "") or None,
            )
        except (OperationRefused, JobNotFound) as exc:
            return render(request, "denied.html", session, 409, why=str(exc))
        log.info("console purge", operator=session.principal.name, job_id=job_id)
        return RedirectResponse(f"/console/jobs/{job_id}?done=purged", status_code=303)

    @router.get("/quarantine")
    def quarantine(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return login_redirect()
        done = _FLASH.get(request.query_params.get("done", ""), "")
        entries = parts.desk().entries()
        return render(request, "quarantine.html", session, entries=entries, done=done)

    @router.post("/quarantine/{entry_id}/{action}")
    async def quarantine_act(request: Request, entry_id: str, action: str) -> Response:
        try:
            session, _form = await acting(request)
        except _Denied as exc:
            return denied(request, exc)
        try:
            if action == "requeue":
                parts.desk().requeue(entry_id, session.principal.name)
            elif action == "delete":
                parts.desk().delete(entry_id, session.principal.name)
            else:
                return Response(status_code=404)
        except EntryGone as exc:
            return render(request, "denied.html", session, 409, why=str(exc))
        return RedirectResponse(f"/console/quarantine?done={action}d", status_code=303)

    @router.post("/search")
    async def search(request: Request) -> Response:
        try:
            session, form = await acting(request, READ_OR_OPERATE)
        except _Denied as exc:
            return denied(request, exc)
        wanted = str(form.get("q") or "").strip()
        matches: list[str] = []
        if wanted:
            try:
                parts.store().timeline(wanted)
                matches = [wanted]
            except JobNotFound:
                matches = await run_in_threadpool(parts.store().jobs_of_order, wanted)
        if len(matches) == 1:
            return RedirectResponse(f"/console/jobs/{matches[0]}", status_code=303)
        return render(request, "search.html", session, q=wanted, matches=matches)

    @router.get("/search")
    def search_page(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return login_redirect()
        return render(request, "search.html", session, q="", matches=None)

    return router


#: ``acting`` scope meaning "any logged-in key" (reads that are POSTs: search, logout).
READ_OR_OPERATE = "(any)"
_REPLAYABLE = (EventStatus.DEAD_LETTERED, EventStatus.IN_DOUBT, EventStatus.REJECTED)
_FLASH = {
    "replayed": "Replayed: a new run is queued; this page shows it once a worker sends it.",
    "resolved": "Resolved: the decision is the terminal event of a new run.",
    "purged": "Purged: the order's personal data is gone; ids and statuses stay.",
    "requeued": "Requeued: the message is back on its queue.",
    "deleted": "Deleted: the message is gone.",
}


class _Parts:
    """The console's stores, made on first use with the process's Redis client (the API makes
    its clients when it starts, after the routes exist)."""

    def __init__(self, config: ConsoleConfig) -> None:
        self.config = config
        self._client: redis.Redis | None = None
        self._parts: tuple[SessionStore, JobStore, QuarantineDesk] | None = None

    def _all(self) -> tuple[SessionStore, JobStore, QuarantineDesk]:
        client = self.config.redis()
        if self._parts is None or client is not self._client:
            c = self.config
            self._client = client
            self._parts = (
                SessionStore(client, c.prefix, idle_s=c.idle_s, max_s=c.max_s),
                JobStore(client, c.prefix),
                QuarantineDesk(client, c.prefix),
            )
        return self._parts

    def sessions(self) -> SessionStore:
        return self._all()[0]

    def store(self) -> JobStore:
        return self._all()[1]

    def desk(self) -> QuarantineDesk:
        return self._all()[2]


def _masked(entries: list[TimelineEntry], document: str | None) -> list[TimelineEntry]:
    """``entries`` for a key without ``read:orders``: the vendor's answers, error messages and
    notes with the order's personal values (and personal fields of JSON or XML) masked."""
    try:
        values = privacy.personal_values(Job.model_validate_json(document)) if document else []
    except ValidationError:
        values = []
    shown = []
    for e in entries:
        update: dict[str, Any] = {}
        if e.response:
            update["response"] = privacy.mask(e.response, values)
        if e.error is not None:
            update["error"] = e.error.model_copy(
                update={"message": privacy.mask(e.error.message, values)}
            )
        if e.note:
            update["note"] = privacy.mask(e.note, values)
        shown.append(e.model_copy(update=update))
    return shown


def _loopback(request: Request) -> bool:
    return is_loopback(request.client.host if request.client else "")


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _secured(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response
