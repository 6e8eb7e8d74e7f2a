"""Shared vendor contract tests: every vendor's test file subclasses :class:`VendorContract`.

As django-anymail does, each vendor test file fills in the vendor's facts (class attributes) and
inherits the same groups of tests:

- golden translation of a full order and of a minimal one;
- request shape (method, URL, headers, body) as sent through the base-owned sender;
- success parse;
- each documented error shape;
- an unparsable body;
- 429, 5xx and timeout classification;
- missing credentials;
- token refresh (token vendors), or that a refused static credential is an auth failure.

The sender runs on an ``httpx.AsyncClient`` over ``httpx.MockTransport``: these are fast unit
tests. The same adapters meet the sandbox over real HTTP in ``tests/integration``.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
import pytest

from order_dispatch import catalog
from order_dispatch.catalog import Choice, Length, Maximum, Pattern, Required, Requirement
from order_dispatch.contract import ErrorKind, Job, Operation, OrderStatus, ValidationError
from order_dispatch.settings import Settings, VendorAccount
from producers.enqueue import InvalidJob, validate_job
from worker.outcomes import Outcome, OutcomeKind
from worker.vendors.base import (
    ConfigurationError,
    TranslationError,
    Vendor,
    VendorRequest,
    VendorResponse,
)
from worker.vendors.sender import Sender

Handler = Callable[[httpx.Request], httpx.Response]


@dataclass(frozen=True)
class ExpectedRequest:
    """What a translated and authorized request must look like on the wire."""

    method: str
    url: str  # absolute, without the query string
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # a subset of the sent headers
    json: Any = None
    content: bytes | None = None


@dataclass(frozen=True)
class ErrorCase:
    """One documented error answer and what it must mean."""

    name: str
    response: VendorResponse
    kind: OutcomeKind
    error_kind: ErrorKind
    message: str | None = None  # a substring of the outcome's message
    code: str | None = None
    retry_after_s: float | None = None
    already_exists: bool = False


def run_sender(
    vendor: Vendor, job: Job, handler: Handler, *, settings: Settings | None = None
) -> tuple[Outcome, list[httpx.Request], Sender]:
    """Send ``job`` through a real :class:`Sender` over a mock transport."""
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    async def go() -> tuple[Outcome, Sender]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as client:
            sender = Sender(client, settings or Settings())
            outcome = await sender.submit(vendor, job, vendor.translate(job))
            return outcome, sender

    outcome, sender = asyncio.run(go())
    return outcome, seen, sender


def sent_body(request: httpx.Request) -> Any:
    """The JSON body of a sent request (or its raw bytes when not JSON)."""
    try:
        return json.loads(request.content)
    except ValueError:
        return request.content


class VendorContract:
    """The tests every vendor passes. Subclasses set the class attributes below."""

    vendor_cls: ClassVar[type[Vendor]]
    account: ClassVar[VendorAccount]
    #: A job document using every order field the vendor maps, and its exact request.
    full_job: ClassVar[dict[str, Any]]
    full_request: ClassVar[ExpectedRequest]
    #: A job document with only what the contract and the vendor require, and its request.
    minimal_job: ClassVar[dict[str, Any]]
    minimal_request: ClassVar[ExpectedRequest]
    #: The vendor's documented success answer to ``full_job`` and the ids it yields.
    success: ClassVar[VendorResponse]
    success_vendor_order_id: ClassVar[str | None]
    success_vendor_status: ClassVar[str | None] = None
    #: Every documented error shape.
    errors: ClassVar[list[ErrorCase]]
    #: A 2xx body the reader cannot make sense of.
    unparsable: ClassVar[VendorResponse]
    #: Answer for a token request (token vendors only).
    token_answer: ClassVar[VendorResponse | None] = None

    # Helpers

    def vendor(self, account: VendorAccount | None = None) -> Vendor:
        return self.vendor_cls(account or self.account)

    def job(self, doc: dict[str, Any] | None = None) -> Job:
        return Job.model_validate(doc or self.full_job)

    def answering(self, response: VendorResponse) -> Handler:
        """A handler that answers tokens with :attr:`token_answer`, anything else with
        ``response``."""
        vendor = self.vendor()
        token_url = vendor.token_request().url(self.account.base_url) if vendor.uses_tokens else ""

        def handler(request: httpx.Request) -> httpx.Response:
            if token_url and str(request.url).split("?")[0] == token_url:
                assert self.token_answer is not None
                return as_httpx(self.token_answer)
            return as_httpx(response)

        return handler

    def assert_request(
        self, request: VendorRequest | httpx.Request, expected: ExpectedRequest
    ) -> None:
        if isinstance(request, VendorRequest):
            assert request.method == expected.method
            assert request.url(self.account.base_url) == expected.url
            assert request.params == expected.params
            if expected.json is not None:
                assert request.json == expected.json
            if expected.content is not None:
                assert request.content == expected.content
            return
        assert request.method == expected.method
        assert str(request.url).split("?")[0] == expected.url
        assert dict(request.url.params) == expected.params
        for name, value in expected.headers.items():
            assert request.headers.get(name) == value, name
        if expected.json is not None:
            assert json.loads(request.content) == expected.json
        if expected.content is not None:
            assert request.content == expected.content

    # Golden translation

    def test_golden_translation_of_a_full_order(self) -> None:
        request = self.vendor().translate(self.job(self.full_job))

        self.assert_request(request, self.full_request)

    def test_golden_translation_of_a_minimal_order(self) -> None:
        request = self.vendor().translate(self.job(self.minimal_job))

        self.assert_request(request, self.minimal_request)

    def test_translation_is_pure(self) -> None:
        vendor = self.vendor()

        assert vendor.translate(self.job()) == vendor.translate(self.job())

    def test_operations_match_the_catalogue(self) -> None:
        from order_dispatch.contract import VENDOR_OPERATIONS

        assert self.vendor_cls.operations == VENDOR_OPERATIONS[self.vendor_cls.name]

    # Request shape

    def test_request_shape_on_the_wire(self) -> None:
        outcome, seen, _ = run_sender(self.vendor(), self.job(), self.answering(self.success))

        order_requests = [r for r in seen if self.is_order_request(r)]
        assert len(order_requests) == 1
        self.assert_request(order_requests[0], self.full_request)
        assert outcome.kind is OutcomeKind.SUCCESS

    def is_order_request(self, request: httpx.Request) -> bool:
        vendor = self.vendor()
        if not vendor.uses_tokens:
            return True
        return str(request.url).split("?")[0] != vendor.token_request().url(self.account.base_url)

    # Success parse

    def test_success_parse(self) -> None:
        outcome = self.vendor().read(self.job(), self.success)

        assert outcome.kind is OutcomeKind.SUCCESS, outcome.error
        assert outcome.vendor_order_id == self.success_vendor_order_id
        assert outcome.vendor_status == self.success_vendor_status
        assert outcome.body is not None

    # Errors

    def test_each_documented_error_shape(self) -> None:
        assert self.errors, "list the vendor's documented error shapes"
        for case in self.errors:
            outcome = self.vendor().read(self.job(), case.response)

            assert outcome.kind is case.kind, case.name
            assert outcome.error is not None, case.name
            assert outcome.error.kind is case.error_kind, case.name
            if case.message is not None:
                assert case.message in outcome.error.message, (case.name, outcome.error.message)
            if case.code is not None:
                assert outcome.error.code == case.code, case.name
            assert outcome.retry_after_s == case.retry_after_s, case.name
            assert outcome.already_exists is case.already_exists, case.name

    def test_an_unparsable_body_is_a_clear_error_with_the_raw_body(self) -> None:
        outcome = self.vendor().read(self.job(), self.unparsable)

        assert outcome.kind in (OutcomeKind.UNKNOWN, OutcomeKind.PERMANENT)
        assert outcome.error is not None and "unreadable" in outcome.error.message
        assert outcome.body is not None and outcome.body[:50] == self.unparsable.text[:50]

    # Classification

    def test_429_is_retryable_and_honours_retry_after(self) -> None:
        outcome = self.vendor().read(
            self.job(), VendorResponse.make(429, b"", {"Retry-After": "7"})
        )

        assert outcome.kind is OutcomeKind.RETRYABLE
        assert outcome.error is not None and outcome.error.kind is ErrorKind.RATE_LIMITED
        assert outcome.retry_after_s == 7.0

    def test_5xx_is_retryable(self) -> None:
        for status in (500, 502, 503):
            outcome = self.vendor().read(self.job(), VendorResponse.make(status, b"oops"))

            assert outcome.kind is OutcomeKind.RETRYABLE, status
            assert outcome.error is not None
            assert outcome.error.kind is ErrorKind.VENDOR_UNAVAILABLE

    def test_a_timeout_after_sending_is_unknown_and_a_refused_connection_retryable(self) -> None:
        token_handler = self.answering(self.success)
        for exc, kind in (
            (httpx.ReadTimeout("slow"), OutcomeKind.UNKNOWN),
            (httpx.ConnectError("refused"), OutcomeKind.RETRYABLE),
        ):

            def handler(request: httpx.Request, exc: Exception = exc) -> httpx.Response:
                if not self.is_order_request(request):
                    return token_handler(request)
                raise exc

            outcome, _, _ = run_sender(self.vendor(), self.job(), handler)

            assert outcome.kind is kind, exc
            assert outcome.error is not None

    # Credentials

    def test_missing_credentials_are_a_configuration_error_naming_the_variable(self) -> None:
        if not self.vendor_cls.required_credentials:
            pytest.skip("the vendor needs no credentials")
        empty = self.account.model_copy(update={"credentials": {}})
        with pytest.raises(ConfigurationError) as caught:
            self.vendor_cls(empty)

        first = self.vendor_cls.required_credentials[0]
        assert (
            f"ORDER_DISPATCH_ACCOUNTS__{self.vendor_cls.name.upper()}__DEFAULT__CREDENTIALS__"
            f"{first.upper()}" in str(caught.value)
        )

    def test_no_credential_is_in_the_outcome(self) -> None:
        outcome, seen, _ = run_sender(self.vendor(), self.job(), self.answering(self.success))

        secrets = [s.get_secret_value() for s in self.account.credentials.values()]
        rendered = repr(outcome)
        assert seen
        assert not [s for s in secrets if s and s in rendered]

    # The door: the catalog's requirements, refused at enqueue as the worker refuses them

    def requirement_job(self, operation: Operation) -> dict[str, Any]:
        """A job document of ``operation`` that the vendor takes (default: :attr:`full_job`
        with that operation); each requirement of the catalog is broken in a copy of it."""
        return {**copy.deepcopy(self.full_job), "operation": operation.value}

    def test_the_catalog_entry_names_this_adapter_and_its_options(self) -> None:
        entry = catalog.entry(self.vendor_cls.name)

        assert catalog.load(entry.adapter) is self.vendor_cls
        assert (entry.options and catalog.load(entry.options)) == self.vendor_cls.options_model
        assert self.vendor_cls.required_credentials == entry.credentials
        assert set(entry.requirements) <= entry.operations

    def test_jobs_the_vendor_takes_pass_the_door(self) -> None:
        entry = catalog.entry(self.vendor_cls.name)
        docs = [self.full_job, self.minimal_job]
        docs += [self.requirement_job(op) for op in entry.requirements]
        for doc in docs:
            self.vendor().translate(Job.model_validate(doc))

            assert validate_job(doc).job_id

    def test_the_door_refuses_each_requirement_with_the_workers_path_and_message(self) -> None:
        entry = catalog.entry(self.vendor_cls.name)
        for operation, rules in entry.requirements.items():
            for rule in rules:
                broken = broken_jobs(rule, self.requirement_job(operation))
                assert broken, rule
                for doc in broken:
                    with pytest.raises(InvalidJob) as door:
                        validate_job(doc)
                    with pytest.raises(TranslationError) as worker:
                        self.vendor().translate(Job.model_validate(doc))

                    assert door.value.errors == [str(worker.value)], (rule, doc)

    def test_the_door_refuses_nothing_the_worker_would_send(self) -> None:
        """Edge values of every field a requirement names (empty, absent, a missing optional
        part): when the door refuses, the worker refuses too, for one of the door's reasons."""
        entry = catalog.entry(self.vendor_cls.name)
        for operation, rules in entry.requirements.items():
            job = self.requirement_job(operation)
            for doc in edge_jobs(rules, job):
                try:
                    Job.model_validate(doc)
                except ValidationError:
                    continue
                try:
                    validate_job(doc)
                except InvalidJob as door:
                    with pytest.raises(TranslationError) as worker:
                        self.vendor().translate(Job.model_validate(doc))
                    assert str(worker.value) in door.errors, (door.errors, doc)

    # Preview

    def test_preview_shows_the_request_with_every_secret_masked(self) -> None:
        from order_dispatch_cli.preview import dump, preview

        settings = Settings(accounts={self.vendor_cls.name: {"default": self.account}})

        shown = dump(preview(self.job(), settings))

        secrets = [s.get_secret_value() for s in self.account.credentials.values()]
        secrets += self.vendor().secrets()
        assert [s for s in secrets if len(s) >= 4 and s in shown] == []
        assert '"method"' in shown and "placeholder_credentials" not in shown

    def test_preview_works_without_an_account(self) -> None:
        from order_dispatch_cli.preview import preview

        shown = preview(self.job(), Settings())

        assert shown["placeholder_credentials"] is True
        assert shown["method"] == self.full_request.method

    # Tokens

    def test_token_refresh(self) -> None:
        vendor = self.vendor()
        if not vendor.uses_tokens:
            outcome = vendor.read(self.job(), VendorResponse.make(401, b"no"))
            assert outcome.kind is OutcomeKind.PERMANENT
            assert outcome.error is not None and outcome.error.kind is ErrorKind.AUTH
            return
        token_url = vendor.token_request().url(self.account.base_url)
        order_calls = 0

        def handler(request: httpx.Request) -> httpx.Response:
            nonlocal order_calls
            if str(request.url).split("?")[0] == token_url:
                assert self.token_answer is not None
                return as_httpx(self.token_answer)
            order_calls += 1
            if order_calls == 1:
                return httpx.Response(401, json={"error": "token expired"})
            return as_httpx(self.success)

        outcome, _, sender = run_sender(vendor, self.job(), handler)

        assert outcome.kind is OutcomeKind.SUCCESS, outcome.error
        assert order_calls == 2
        assert sender.tokens.fetches == 2

    def test_concurrent_requests_share_one_token_fetch(self) -> None:
        vendor = self.vendor()
        if not vendor.uses_tokens:
            pytest.skip("static credentials")
        handler = self.answering(self.success)

        async def go() -> tuple[list[Outcome], int]:
            async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
                sender = Sender(client, Settings())
                job = self.job()
                outcomes = await asyncio.gather(
                    *(sender.submit(vendor, job, vendor.translate(job)) for _ in range(20))
                )
                return list(outcomes), sender.tokens.fetches

        outcomes, fetches = asyncio.run(go())

        assert {o.kind for o in outcomes} == {OutcomeKind.SUCCESS}
        assert fetches == 1

    def test_a_refused_token_connection_retries_and_is_never_in_doubt(self) -> None:
        vendor = self.vendor()
        if not vendor.uses_tokens:
            pytest.skip("static credentials")

        def handler(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused")

        outcome, _, _ = run_sender(vendor, self.job(), handler)

        assert outcome.kind is OutcomeKind.RETRYABLE
        assert outcome.error is not None and "token" in outcome.error.message


def as_httpx(response: VendorResponse) -> httpx.Response:
    """A :class:`VendorResponse` as the mock transport's answer."""
    return httpx.Response(response.status, headers=response.headers, content=response.body)


# Breaking a catalog requirement in a job document


def broken_jobs(rule: Requirement, job: dict[str, Any]) -> list[dict[str, Any]]:
    """Copies of ``job`` that each break ``rule`` once, in every way the rule names (each
    candidate path, each bound). ``*`` is the first item or entry (one is added to an empty
    map); a ``within`` path the job lacks gets a copy of the shipping address."""
    if isinstance(rule, Maximum):
        doc = copy.deepcopy(job)
        _put(doc, _first(doc, rule.path), rule.max + 1)
        return [doc]
    if isinstance(rule, Pattern):
        doc = copy.deepcopy(job)
        _put(doc, _first(doc, rule.path), "no match!")
        return [doc]
    if isinstance(rule, Choice):
        return _off_choice(rule, job)
    assert isinstance(rule.paths, tuple)
    base = copy.deepcopy(job)
    if rule.within is not None and _get(base, rule.within) is None:
        _put(base, rule.within, copy.deepcopy(base["order"]["ship_to"]))
    if isinstance(rule, Required):
        doc = copy.deepcopy(base)
        for path in rule.paths:
            _put(doc, _first(doc, path), None)
        return [doc]
    assert isinstance(rule, Length)
    out = []
    for n, path in enumerate(rule.paths):
        lengths = ([rule.max + 1] if rule.max is not None else []) + (
            [rule.min - 1] if rule.min > 0 else []
        )
        for length in lengths:
            doc = copy.deepcopy(base)
            for earlier in rule.paths[:n]:
                _put(doc, earlier, None)
            _put(doc, _first(doc, path), _text(path, length))
            out.append(doc)
    return out


def _off_choice(rule: Choice, job: dict[str, Any]) -> list[dict[str, Any]]:
    """A copy per refused value, and one with a value (or key) outside the allowed ones that
    the contract takes."""
    def with_value(value: str) -> dict[str, Any] | None:
        doc = copy.deepcopy(job)
        if rule.keys:
            head = rule.path.partition(".*")[0]
            _put(doc, head, {**(_get(doc, head) or {}), value: "a value"})
        else:
            _put(doc, _first(doc, rule.path), value)
        try:
            Job.model_validate(doc)
        except ValidationError:
            return None
        return doc

    out = [with_value(value) for value in rule.refused]
    if rule.allowed is not None:
        others = ["not-a-choice", *(s.value for s in OrderStatus)]
        taken = (with_value(v) for v in others if v not in rule.allowed)
        out.append(next((doc for doc in taken if doc is not None), None))
    assert None not in out, f"the contract refuses every value that breaks {rule}"
    return [doc for doc in out if doc is not None]


def _text(path: str, length: int) -> str:
    if path.endswith("email"):
        domain = "@example.com"
        return "a" * (length - len(domain)) + domain
    return "x" * length


def _first(doc: dict[str, Any], path: str) -> str:
    """``path`` with ``*`` replaced by the first index or key there (a map gets one)."""
    if "*" not in path:
        return path
    head, _, tail = path.partition(".*")
    node = _get(doc, head)
    if isinstance(node, list):
        return f"{head}.0{tail}"
    if not node:
        _put(doc, head, {"note": "a value"})
        node = _get(doc, head)
    return f"{head}.{next(iter(node))}{tail}"


def _get(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(doc, list):
            doc = doc[int(part)]
        elif isinstance(doc, dict):
            doc = doc.get(part)
        else:
            return None
    return doc


def _put(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` (None removes it); parents are made when a value needs them."""
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        if isinstance(node, list):
            node = node[int(part)]
            continue
        if node.get(part) is None:
            if value is None:
                return
            node[part] = {}
        node = node[part]
    if isinstance(node, list):
        node[int(last)] = value
    elif value is None:
        node.pop(last, None)
    else:
        node[last] = value


def edge_jobs(rules: tuple[Requirement, ...], job: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Copies of ``job`` with each path the rules name made empty, then absent; and each
    ``within`` part absent."""
    paths: list[str] = []
    for rule in rules:
        if isinstance(rule, Required | Length):
            assert isinstance(rule.paths, tuple)
            paths += rule.paths
            paths += [rule.within] if rule.within else []
        else:
            paths.append(rule.path)
    for path in dict.fromkeys(paths):
        for value in ("", None):
            doc = copy.deepcopy(job)
            if "*" in path and _get(doc, path.partition(".*")[0]) in (None, {}, []):
                continue
            _put(doc, _first(doc, path), value)
            yield doc
