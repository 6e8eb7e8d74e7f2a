"""The shared base of vendor adapters: pure translator, pure reader, base-owned sender.

A vendor module holds one :class:`Translator` subclass (job -> :class:`VendorRequest`, pure) and
one :class:`VendorAdapter` subclass that declares the vendor's facts (account options, error
codes, reconciliation) and implements small pure hooks:

- auth: :meth:`Vendor.authorize` adds credentials to a request; token vendors also declare
  :meth:`Vendor.token_request` (the base reads an OAuth2 bearer-token answer);
- reading: :meth:`Vendor.read` is the template every answer goes through (business errors in a
  2xx, the success parse, the vendor's error shape, its code table, retry hints, "already have
  it" answers); vendors override the hooks it calls, never the template;
- reconciliation: :meth:`Vendor.lookup_request` and :meth:`Vendor.parse_lookup` find an order by
  our reference.

An adapter is generic in its account options model: ``Shopatron(VendorAdapter[ShopatronOptions])``
has ``self.options`` (and its translator's) of that type, validated once when it is built. Its
operations and credentials come from its :mod:`order_dispatch.catalog` entry.

Nothing here does I/O: :class:`worker.vendors.sender.Sender` owns the HTTP client, the token
cache, the transport-error mapping and logging. Vendor modules never touch the client.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar, cast
from urllib.parse import urlencode, urlsplit
from xml.etree.ElementTree import Element

import httpx
import simplejson
from defusedxml import ElementTree as SafeElementTree
from pydantic import BaseModel, ValidationError

from order_dispatch import catalog, redact
from order_dispatch.contract import ErrorKind, Job, Operation
from order_dispatch.settings import VendorAccount
from worker.http import parse_retry_after
from worker.outcomes import Outcome, OutcomeKind

#: An adapter's account options model (None: the vendor takes no options).
OptionsT = TypeVar("OptionsT", bound=BaseModel | None)


#: Why a ``vendor_options`` value that would change what the translator set is refused.
REPLACES_A_TRANSLATED_FIELD = (
    "would replace a field the translator sets from the order; set it through the order's own "
    "fields (vendor_options only adds fields the order has no place for)"
)


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
    """An answer whose body is not what the vendor documents."""


@dataclass(frozen=True, slots=True)
class VendorRequest:
    """One HTTP request to a vendor.

    ``path`` is relative to the account's base URL, or an absolute ``http(s)://`` URL when the
    endpoint lives on another host (a token server). ``json`` is sent as JSON; ``content`` as
    raw bytes (XML).
    """

    method: str
    path: str
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    def with_headers(self, **headers: str) -> VendorRequest:
        """A copy with extra headers."""
        return replace(self, headers={**self.headers, **headers})

    def with_params(self, **params: str) -> VendorRequest:
        """A copy with extra query parameters."""
        return replace(self, params={**self.params, **params})

    def body(self) -> bytes | None:
        """The bytes sent: ``content``, or ``json`` encoded with exact decimals and unicode
        kept as it is (no binary floats on the way to a vendor)."""
        if self.content is not None:
            return self.content
        if self.json is None:
            return None
        return encode_json(self.json)

    def url(self, base_url: str) -> str:
        """The absolute URL, without the query string."""
        if self.path.startswith(("http://", "https://")):
            return self.path
        return base_url.rstrip("/") + self.path

    def summary(self, base_url: str) -> str:
        """``METHOD /path?query`` for people (the job's timeline): no host, no credentials in
        the URL, secret query values masked."""
        path = urlsplit(self.url(base_url)).path or "/"
        query = urlencode(redact.value(self.params), safe="*")
        return redact.text(f"{self.method} {path}" + (f"?{query}" if query else ""))


def encode_json(data: Any) -> bytes:
    """JSON with :class:`~decimal.Decimal` written as an exact number."""
    return simplejson.dumps(data, use_decimal=True, ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class VendorResponse:
    """A vendor's HTTP answer as the pure reader sees it: status, headers, body bytes."""

    status: int
    headers: httpx.Headers
    body: bytes
    reason: str = ""

    @classmethod
    def of(cls, response: httpx.Response) -> VendorResponse:
        """From an httpx response whose body was read."""
        return cls(response.status_code, response.headers, response.content, response.reason_phrase)

    @classmethod
    def make(
        cls, status: int, body: bytes | str | Any = b"", headers: Mapping[str, str] | None = None
    ) -> VendorResponse:
        """A response built by hand (tests, previews); a non-bytes, non-str body becomes JSON."""
        if isinstance(body, str):
            raw = body.encode()
        elif isinstance(body, bytes):
            raw = body
        else:
            raw = json.dumps(body).encode()
        return cls(status, httpx.Headers(headers or {}), raw)

    @property
    def ok(self) -> bool:
        """A 2xx status."""
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        """The body as text (undecodable bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The JSON body, or :class:`UnparsableResponse`."""
        try:
            return json.loads(self.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UnparsableResponse(f"not JSON ({exc})") from None

    def json_object(self) -> dict[str, Any]:
        """The JSON object of the body, or :class:`UnparsableResponse`."""
        data = self.json()
        if not isinstance(data, dict):
            raise UnparsableResponse(f"expected a JSON object, got {type(data).__name__}")
        return data

    def xml(self) -> Element:
        """The XML root element, parsed safely (defusedxml), or :class:`UnparsableResponse`."""
        try:
            root: Element = SafeElementTree.fromstring(self.body)
        except Exception as exc:  # ParseError and defusedxml's refusals alike
            raise UnparsableResponse(f"not XML ({type(exc).__name__}: {exc})") from None
        return root


@dataclass(frozen=True, slots=True)
class Token:
    """An access token and how long it lives (None: until the vendor refuses it)."""

    value: str
    expires_in_s: float | None = None


class LookupKind(StrEnum):
    """What looking an order up by our reference found."""

    FOUND = "found"
    NOT_FOUND = "not_found"
    UNKNOWN = "unknown"
    """The vendor's answer cannot tell (an error, an ambiguous match)."""


@dataclass(frozen=True, slots=True)
class Lookup:
    """The result of a lookup: found (with the vendor's id and status), not found, or unknown."""

    kind: LookupKind
    vendor_order_id: str | None = None
    vendor_status: str | None = None
    detail: str = ""

    @classmethod
    def found(cls, vendor_order_id: str, vendor_status: str | None = None) -> Lookup:
        """The vendor has the order."""
        return cls(LookupKind.FOUND, vendor_order_id, vendor_status)

    @classmethod
    def not_found(cls) -> Lookup:
        """The vendor has no such order."""
        return cls(LookupKind.NOT_FOUND)

    @classmethod
    def unknown(cls, detail: str) -> Lookup:
        """The answer cannot tell; ``detail`` says why."""
        return cls(LookupKind.UNKNOWN, detail=detail)


class Translator(Generic[OptionsT]):
    """Turns a job into the vendor's request. Pure: no I/O, no clock, no randomness.

    Override the method of each operation the vendor supports; the others raise
    :class:`UnsupportedOperation`. ``options`` is the account's validated
    :attr:`Vendor.options_model` (None for a vendor without options). The translator leaves
    ``order.vendor_options`` to :meth:`Vendor.translate`, which merges them.
    """

    vendor: ClassVar[str] = ""

    def __init__(self, account: VendorAccount, options: OptionsT) -> None:
        self.account = account
        self.options = options

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


def check_length(field_path: str, value: str | None, limit: int) -> str | None:
    """``value`` unchanged, or :class:`TranslationError` if longer than the vendor's ``limit``.

    Never truncates: a value the vendor would cut or refuse is a validation error here.
    """
    if value is not None and len(value) > limit:
        raise TranslationError(
            field_path, f"is {len(value)} characters; the vendor accepts at most {limit}"
        )
    return value


def require(field_path: str, value: Any) -> Any:
    """``value``, or :class:`TranslationError` when the vendor requires it and it is missing."""
    if value is None or value == "":
        raise TranslationError(field_path, "is required by this vendor")
    return value


class VendorAdapter(Generic[OptionsT]):
    """One vendor account's adapter: declared facts plus pure hooks (see the module docstring).

    A vendor module subclasses it with its options model (``VendorAdapter[SophioOptions]``, or
    ``VendorAdapter[None]``); code that handles any vendor names :data:`Vendor`.

    Required in a subclass: :attr:`name` (its catalog entry's), :attr:`translator_class`,
    :meth:`authorize` and :meth:`parse_success`. Everything else has a default.
    """

    #: The vendor's name in jobs, queues and settings.
    name: ClassVar[str] = ""
    translator_class: ClassVar[type[Translator[Any]]] = Translator
    #: Operations the vendor supports: its catalog entry's (set when the subclass is made).
    operations: ClassVar[frozenset[Operation]] = frozenset()
    #: Operations that may be sent again without a second effect at the vendor.
    repeat_safe_operations: ClassVar[frozenset[Operation]] = frozenset({Operation.GET_STATUS})
    #: Credentials the account must carry: its catalog entry's (set when the subclass is made).
    required_credentials: ClassVar[tuple[str, ...]] = ()
    #: The model of the account's ``options`` (per-merchant values every order needs).
    options_model: ClassVar[type[BaseModel] | None] = None
    #: Vendor error code -> (outcome kind, error kind), overriding the HTTP status's meaning.
    error_codes: ClassVar[Mapping[str, tuple[OutcomeKind, ErrorKind]]] = {}
    #: Vendor error codes that mean "I already have this order".
    already_exists_codes: ClassVar[frozenset[str]] = frozenset()
    #: True when "not found" from :meth:`parse_lookup` proves the vendor never got the order,
    #: so sending it again is safe.
    lookup_authoritative: ClassVar[bool] = False
    #: The vendor's documented request rate, shared by every worker (None: no limit known).
    #: An account's ``rate_limit_per_minute`` overrides it.
    default_rate_limit_per_minute: ClassVar[float | None] = None
    #: Fields of the JSON body (dotted paths, e.g. ``advancedOptions.storeId``) that an order's
    #: ``vendor_options`` may replace; any other field the translator sets is refused.
    overridable_options: ClassVar[frozenset[str]] = frozenset()
    #: Fields of the JSON body (dotted paths) that ``vendor_options`` may not hold at all, with
    #: why: the identity fields reconciliation relies on.
    reserved_options: ClassVar[Mapping[str, str]] = {}
    #: False when the translator places ``order.vendor_options`` itself (a body that is not a
    #: JSON object, or one whose options are typed per field).
    merges_vendor_options: ClassVar[bool] = True
    #: How long a token lives when the token answer has no ``expires_in`` (None: until the
    #: vendor refuses it).
    default_token_life_s: ClassVar[float | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        entry = catalog.CATALOG.get(cls.name)
        if entry is not None and "name" in cls.__dict__:
            cls.operations = entry.operations
            cls.required_credentials = entry.credentials

    def __init__(self, account: VendorAccount, *, account_name: str = "default") -> None:
        self.account = account
        self.account_name = account_name
        missing = [c for c in self.required_credentials if not account.secret(c)]
        if missing:
            raise ConfigurationError(
                "; ".join(
                    f"the {self.name} account {account_name!r} has no credential {c!r} "
                    f"(set {self.setting_name('credentials', c)})"
                    for c in missing
                )
            )
        options: BaseModel | None = None
        if self.options_model is not None:
            try:
                options = self.options_model.model_validate(account.options)
            except ValidationError as exc:
                problems = "; ".join(
                    f"{self.setting_name('options', *map(str, e['loc']))}: {e['msg']}"
                    for e in exc.errors()
                )
                raise ConfigurationError(
                    f"the {self.name} account {account_name!r} has wrong options: {problems}"
                ) from None
        #: The account's validated options (the subclass's ``OptionsT``).
        self.options: OptionsT = cast(OptionsT, options)
        self.translator: Translator[OptionsT] = self.translator_class(account, self.options)

    def secrets(self) -> list[str]:
        """Values to mask wherever they appear: the credentials, plus any form the vendor
        derives from them (override to add, e.g. an encoded query parameter)."""
        return [v.get_secret_value() for v in self.account.credentials.values()]

    def setting_name(self, *path: str) -> str:
        """The environment variable that sets ``path`` of this account."""
        parts = ["ORDER_DISPATCH_ACCOUNTS", self.name, self.account_name, *path]
        return "__".join(p.upper() for p in parts)

    # Translation

    def translate(self, job: Job) -> VendorRequest:
        """The vendor request for ``job`` (raises :class:`TranslationError`).

        ``order.vendor_options`` adds fields the order has no place for, merged into the JSON
        body at any depth. A key listed in :attr:`reserved_options` is refused, and so is one
        that would replace a value the translator set from the order (unless listed in
        :attr:`overridable_options`), so a stray option can never change the order sent.
        """
        request = self.translator.request_for(job)
        order = job.order
        if (
            order is None
            or not order.vendor_options
            or not self.merges_vendor_options
            or not isinstance(request.json, dict)
        ):
            return request
        for path, why in self.reserved_options.items():
            if _has_path(order.vendor_options, path):
                raise TranslationError(f"order.vendor_options.{path}", why)
        _refuse_overrides(order.vendor_options, request.json, "", self.overridable_options)
        return replace(request, json=_merged(request.json, order.vendor_options))

    def repeat_safe(self, operation: Operation) -> bool:
        """True when ``operation`` can be repeated after an unknown outcome."""
        return operation in self.repeat_safe_operations

    # Auth hooks (pure)

    @property
    def uses_tokens(self) -> bool:
        """True when requests need a token from :meth:`token_request`."""
        return type(self).token_request is not VendorAdapter.token_request

    def authorize(self, request: VendorRequest, token: str | None) -> VendorRequest:
        """``request`` with the vendor's credentials added (``token`` for token vendors)."""
        raise NotImplementedError(f"{type(self).__name__} must implement authorize")

    def token_request(self) -> VendorRequest:
        """The request that fetches an access token (token vendors only)."""
        raise NotImplementedError(f"{type(self).__name__} uses no tokens")

    def parse_token(self, response: VendorResponse) -> Token:
        """The token in a 2xx answer to :meth:`token_request` (raise UnparsableResponse).

        By default an OAuth2 bearer-token answer (RFC 6749, 5.1): ``access_token``,
        ``token_type`` Bearer when given, and ``expires_in`` seconds (else
        :attr:`default_token_life_s`)."""
        data = response.json_object()
        value = data.get("access_token")
        if not isinstance(value, str) or not value:
            raise UnparsableResponse("the token answer has no access_token")
        token_type = data.get("token_type")
        if token_type is not None and str(token_type).lower() != "bearer":
            raise UnparsableResponse(f"token_type {token_type!r} is not Bearer")
        expires_in = data.get("expires_in")
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
            expires_in = 0
        if expires_in > 0:
            return Token(value, float(expires_in))
        return Token(value, self.default_token_life_s)

    # Reading (pure): the template and its hooks

    @property
    def rate_limit_per_minute(self) -> float | None:
        """The limit in force for this account (None or 0: none)."""
        configured = self.account.rate_limit_per_minute
        limit = self.default_rate_limit_per_minute if configured is None else configured
        return limit or None

    def read(self, job: Job, response: VendorResponse) -> Outcome:
        """What an answer means; the template every vendor shares."""
        outcome = self._read(job, response)
        throttle = self.throttle_hint(response)
        return replace(outcome, throttle_s=throttle) if throttle is not None else outcome

    def throttle_hint(self, response: VendorResponse) -> float | None:
        """Seconds until the vendor admits requests again when its answer says the limit is
        used up; by default from ``X-Rate-Limit-Remaining: 0`` with ``X-Rate-Limit-Reset``."""
        remaining = response.headers.get("X-Rate-Limit-Remaining")
        reset = response.headers.get("X-Rate-Limit-Reset")
        if remaining is None or reset is None:
            return None
        try:
            return max(0.0, float(reset)) if int(float(remaining)) <= 0 else None
        except ValueError:
            return None

    def _read(self, job: Job, response: VendorResponse) -> Outcome:
        if response.ok:
            try:
                failure = self.business_error(job, response)
                if failure is not None:
                    return failure
                return self.parse_success(job, response)
            except UnparsableResponse as exc:
                return Outcome.failure(
                    OutcomeKind.UNKNOWN,
                    ErrorKind.TRANSPORT,
                    f"the vendor answered {response.status} with an unreadable body: {exc}",
                    http_status=response.status,
                    body=response.text,
                )
        code, message = self.error_detail(response)
        kind, error_kind = classify_status(response.status)
        if code is not None and code in self.error_codes:
            kind, error_kind = self.error_codes[code]
        retry_after = None
        if kind is OutcomeKind.RETRYABLE:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is None:
                retry_after = self.retry_hint(response)
        return Outcome.failure(
            kind,
            error_kind,
            message or f"HTTP {response.status} {response.reason}".rstrip(),
            http_status=response.status,
            code=code,
            body=response.text,
            retry_after_s=retry_after,
            already_exists=self.already_exists(job, response, code, message),
        )

    def business_error(self, job: Job, response: VendorResponse) -> Outcome | None:
        """A failure reported inside a 2xx answer, or None (most vendors)."""
        return None

    def parse_success(self, job: Job, response: VendorResponse) -> Outcome:
        """The outcome of a 2xx answer (raise :class:`UnparsableResponse` if unreadable)."""
        raise NotImplementedError(f"{type(self).__name__} must implement parse_success")

    def error_detail(self, response: VendorResponse) -> tuple[str | None, str]:
        """The vendor's error code and message from a non-2xx answer (a generic JSON reader)."""
        try:
            data = response.json()
        except UnparsableResponse:
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

    def retry_hint(self, response: VendorResponse) -> float | None:
        """Seconds to wait from a vendor-specific hint when there is no ``Retry-After``."""
        return None

    def already_exists(
        self, job: Job, response: VendorResponse, code: str | None, message: str
    ) -> bool:
        """True when a refusal means the vendor already has this order."""
        return code is not None and code in self.already_exists_codes

    # Reconciliation (pure)

    def lookup_request(self, job: Job) -> VendorRequest | None:
        """The request that finds ``job``'s order by our reference; None when the vendor has
        no such lookup."""
        return None

    def parse_lookup(self, job: Job, response: VendorResponse) -> Lookup:
        """What the answer to :meth:`lookup_request` found."""
        return Lookup.unknown(f"{self.name} has no lookup by our reference")


#: An adapter of any vendor (what the registry, the sender and the pipeline handle).
Vendor = VendorAdapter[Any]


def _refuse_overrides(
    options: Mapping[str, Any], base: Any, prefix: str, allowed: frozenset[str]
) -> None:
    """Raise :class:`TranslationError` for the first option that replaces a value in ``base``."""
    if not isinstance(base, Mapping):
        return
    for key, value in options.items():
        path = f"{prefix}{key}"
        if key not in base or path in allowed:
            continue
        current = base[key]
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            _refuse_overrides(value, current, f"{path}.", allowed)
        elif current != value and not _same_json(current, value):
            raise TranslationError(f"order.vendor_options.{path}", REPLACES_A_TRANSLATED_FIELD)


def _has_path(options: Mapping[str, Any], dotted: str) -> bool:
    node: Any = options
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return False
        node = node[key]
    return True


def _merged(body: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` with ``options`` added, objects merged at every depth (a value the translator
    set was already refused or allowed by :func:`_refuse_overrides`)."""
    merged = dict(body)
    for key, value in options.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = _merged(current, value)
        else:
            merged[key] = value
    return merged


def _same_json(a: Any, b: Any) -> bool:
    return bool(encode_json(a) == encode_json(b))


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
