"""The shared base of vendor adapters: a pure translator and a submitter with a fixed pipeline.

A vendor module subclasses :class:`Translator` (normalized job -> :class:`VendorRequest`, no
I/O) and :class:`Submitter` (auth, send, parse). The submitter's :meth:`Submitter.submit` is the
template method: vendors override hooks, never the pipeline. HTTP status classification is done
here, once, for every vendor.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import httpx

from order_dispatch.contract import ErrorKind, Job, Operation
from order_dispatch.settings import VendorAccount
from worker.http import TransportFailure, map_transport_errors, parse_retry_after
from worker.outcomes import Outcome, OutcomeKind


class ConfigurationError(Exception):
    """The account settings are missing or wrong (deliberately not a vendor failure)."""


class TranslationError(ValueError):
    """The job cannot be expressed in the vendor's terms; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class UnsupportedOperation(TranslationError):
    """The vendor offers no way to do what the job asks."""


class UnparsableResponse(ValueError):
    """A 2xx answer whose body is not what the vendor documents."""


@dataclass(frozen=True, slots=True)
class VendorRequest:
    """One HTTP request to a vendor, relative to the account's base URL."""

    method: str
    path: str
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    def with_headers(self, **headers: str) -> VendorRequest:
        """A copy with extra headers."""
        return replace(self, headers={**self.headers, **headers})


class Translator:
    """Turns a job into the vendor's request. Pure: no I/O, no clock, no randomness.

    Override the method of each operation the vendor supports; the others raise
    :class:`UnsupportedOperation`.
    """

    vendor: ClassVar[str] = ""

    def __init__(self, account: VendorAccount) -> None:
        self.account = account

    def request_for(self, job: Job) -> VendorRequest:
        """The request for ``job``'s operation."""
        method: Callable[[Job], VendorRequest] = {
            Operation.CREATE: self.create,
            Operation.IMPORT: self.import_order,
            Operation.UPDATE_ADDRESS: self.update_address,
            Operation.CANCEL: self.cancel,
            Operation.GET_STATUS: self.get_status,
        }[job.operation]
        return method(job)

    def _unsupported(self, job: Job) -> VendorRequest:
        raise UnsupportedOperation(
            "operation", f"{self.vendor} does not support {job.operation.value!r}"
        )

    def create(self, job: Job) -> VendorRequest:
        """Create the order."""
        return self._unsupported(job)

    def import_order(self, job: Job) -> VendorRequest:
        """Import a historic order."""
        return self._unsupported(job)

    def update_address(self, job: Job) -> VendorRequest:
        """Change the shipping address of an existing vendor order."""
        return self._unsupported(job)

    def cancel(self, job: Job) -> VendorRequest:
        """Cancel an existing vendor order."""
        return self._unsupported(job)

    def get_status(self, job: Job) -> VendorRequest:
        """Read an existing vendor order's status."""
        return self._unsupported(job)


class Submitter:
    """Sends a job to a vendor and says what came of it.

    Subclasses set :attr:`translator_class`, :attr:`required_credentials`,
    :attr:`repeat_safe_operations`, and implement :meth:`authenticate` and
    :meth:`parse_success`; :meth:`error_detail` reads the vendor's error shape.
    """

    vendor: ClassVar[str] = ""
    translator_class: ClassVar[type[Translator]] = Translator
    #: Credentials the account must carry.
    required_credentials: ClassVar[tuple[str, ...]] = ()
    #: Operations that may be sent again without a second effect at the vendor.
    repeat_safe_operations: ClassVar[frozenset[Operation]] = frozenset({Operation.GET_STATUS})

    def __init__(self, client: httpx.Client, account: VendorAccount) -> None:
        missing = [c for c in self.required_credentials if not account.secret(c)]
        if missing:
            raise ConfigurationError(
                f"the {self.vendor} account has no credential {', '.join(map(repr, missing))}"
            )
        self.client = client
        self.account = account
        self.translator = self.translator_class(account)

    def repeat_safe(self, operation: Operation) -> bool:
        """True when ``operation`` can be repeated after an unknown outcome."""
        return operation in self.repeat_safe_operations

    def translate(self, job: Job) -> VendorRequest:
        """The vendor request for ``job`` (raises :class:`TranslationError`)."""
        return self.translator.request_for(job)

    def submit(self, job: Job, request: VendorRequest) -> Outcome:
        """Authenticate, send and classify: the fixed pipeline every vendor shares."""
        request = self.authenticate(request)
        url = self.account.base_url.rstrip("/") + request.path
        try:
            with map_transport_errors():
                response = self.client.request(
                    request.method,
                    url,
                    json=request.json,
                    content=request.content,
                    headers=request.headers,
                    params=request.params or None,
                )
        except TransportFailure as failure:
            kind = OutcomeKind.UNKNOWN if failure.maybe_sent else OutcomeKind.RETRYABLE
            return Outcome.failure(kind, failure.kind, failure.message)
        return self.classify(job, response)

    def classify(self, job: Job, response: httpx.Response) -> Outcome:
        """Map an HTTP answer to an outcome; 2xx bodies go to :meth:`parse_success`."""
        status = response.status_code
        body = response.text
        if 200 <= status < 300:
            try:
                return self.parse_success(job, response)
            except UnparsableResponse as exc:
                return Outcome.failure(
                    OutcomeKind.UNKNOWN,
                    ErrorKind.TRANSPORT,
                    f"the vendor answered {status} with an unreadable body: {exc}",
                    http_status=status,
                    body=body,
                )
        code, message = self.error_detail(response)
        kind, error_kind = classify_status(status)
        return Outcome.failure(
            kind,
            error_kind,
            message or f"HTTP {status} {response.reason_phrase}",
            http_status=status,
            code=code,
            body=body,
            retry_after_s=(
                parse_retry_after(response.headers.get("Retry-After"))
                if kind is OutcomeKind.RETRYABLE
                else None
            ),
        )

    # Hooks

    def authenticate(self, request: VendorRequest) -> VendorRequest:
        """Add the vendor's credentials to ``request``."""
        raise NotImplementedError(f"{type(self).__name__} must implement authenticate")

    def parse_success(self, job: Job, response: httpx.Response) -> Outcome:
        """The outcome of a 2xx answer (raise :class:`UnparsableResponse` if unreadable)."""
        raise NotImplementedError(f"{type(self).__name__} must implement parse_success")

    def error_detail(self, response: httpx.Response) -> tuple[str | None, str]:
        """The vendor's error code and message from a non-2xx answer (generic JSON reader)."""
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None, response.text.strip()[:500]
        if isinstance(data, dict):
            message = next(
                (
                    str(data[k])
                    for k in ("message", "Message", "error_description", "error", "Error")
                    if data.get(k)
                ),
                "",
            )
            code = data.get("code") or data.get("Code") or data.get("error")
            return (str(code) if code is not None and str(code) != message else None), message
        return None, str(data)[:500]


def classify_status(status: int) -> tuple[OutcomeKind, ErrorKind]:
    """What a non-2xx HTTP status means: 401/403 auth and other 4xx are permanent; 408, 429
    and 5xx are retryable."""
    if status in (401, 403):
        return OutcomeKind.PERMANENT, ErrorKind.AUTH
    if status == 408:
        return OutcomeKind.RETRYABLE, ErrorKind.TIMEOUT
    if status == 429:
        return OutcomeKind.RETRYABLE, ErrorKind.RATE_LIMITED
    if status >= 500:
        return OutcomeKind.RETRYABLE, ErrorKind.VENDOR_UNAVAILABLE
    return OutcomeKind.PERMANENT, ErrorKind.VENDOR_REJECTED


def json_body(response: httpx.Response) -> dict[str, Any]:
    """The JSON object of a 2xx answer, or :class:`UnparsableResponse`."""
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UnparsableResponse(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UnparsableResponse(f"expected a JSON object, got {type(data).__name__}")
    return data
