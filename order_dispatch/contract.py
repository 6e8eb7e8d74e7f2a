"""The contract: normalized order, job envelope and result event.

These three documents cross process boundaries: producers write jobs, workers read them and
write result events, consumers read those. This module imports nothing heavier than pydantic so
that any producer can validate an order without pulling in Celery, httpx or vendor code.

Rules that hold for every model here:
- unknown fields are refused (``extra="forbid"``), so a misspelt field is an error, not a loss;
- money is :class:`~decimal.Decimal` (JSON numbers or strings in, strings out), never float;
- datetimes must carry a zone;
- countries are ISO 3166-1 alpha-2, currencies ISO 4217 (three upper-case letters).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from order_dispatch import catalog, money
from order_dispatch.operation import Operation

SCHEMA_VERSION: Literal[1] = 1

__all__ = [
    "SCHEMA_VERSION",
    "VENDOR_OPERATIONS",
    "WEBHOOKS",
    "Address",
    "Customer",
    "ErrorInfo",
    "ErrorKind",
    "EventStatus",
    "FieldPathError",
    "Gift",
    "Item",
    "Job",
    "NormalizedOrder",
    "Notes",
    "Operation",
    "OrderStatus",
    "Payment",
    "ResultEvent",
    "Shipping",
    "Totals",
    "Trace",
    "ValidationError",
    "Weight",
    "default_job_id",
    "format_validation_errors",
]


def _strict_decimal(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite number")
    return value


#: Money and quantities with fractions: Decimal in, a fixed-point string out.
Money = Annotated[
    Decimal,
    Field(allow_inf_nan=False),
    AfterValidator(_strict_decimal),
    PlainSerializer(lambda v: format(v, "f"), return_type=str, when_used="json"),
]
NonNegativeMoney = Annotated[Money, Field(ge=0)]
CountryCode = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{2}$"),
    Field(description="ISO 3166-1 alpha-2 country code, upper case (e.g. US, GB)."),
]
CurrencyCode = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    Field(description="ISO 4217 currency code, upper case (e.g. USD)."),
]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)]
Identifier = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]


#: Bounds of the free-form maps (``custom``, ``vendor_options``, an item's ``options`` and
#: ``attributes``): they are stored with the job and sent to the vendor, so they are small.
MAP_MAX_ENTRIES = 50
MAP_KEY_MAX_CHARS = 100
MAP_TEXT_MAX_CHARS = 1000
#: ``vendor_options`` may nest objects and lists, at most this deep and this many values in all.
OPTIONS_MAX_DEPTH = 4
OPTIONS_MAX_VALUES = 200


class FieldPathError(ValueError):
    """A validation error below the field being validated: ``subpath`` continues its path
    (``format_validation_errors`` joins them, e.g. ``order.custom.note``)."""

    def __init__(self, subpath: str, message: str) -> None:
        self.subpath = subpath
        self.message = message
        super().__init__(f"{subpath}: {message}" if subpath else message)


def _check_key(path: str, key: str) -> None:
    if not key:
        raise FieldPathError(path, "a key must not be empty")
    if len(key) > MAP_KEY_MAX_CHARS:
        raise FieldPathError(
            path, f"key {key[:20]!r}... is {len(key)} characters; at most {MAP_KEY_MAX_CHARS}"
        )


def _check_text(path: str, text: str) -> None:
    if len(text) > MAP_TEXT_MAX_CHARS:
        raise FieldPathError(path, f"is {len(text)} characters; at most {MAP_TEXT_MAX_CHARS}")


def _text_map(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAP_MAX_ENTRIES:
        raise ValueError(f"has {len(value)} entries; at most {MAP_MAX_ENTRIES}")
    for key, text in value.items():
        _check_key("", key)
        _check_text(key, text)
    return value


def _options_map(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAP_MAX_ENTRIES:
        raise ValueError(f"has {len(value)} entries; at most {MAP_MAX_ENTRIES}")
    count = 0

    def walk(path: str, node: Any, depth: int) -> None:
        nonlocal count
        count += 1
        if count > OPTIONS_MAX_VALUES:
            raise ValueError(f"holds more than {OPTIONS_MAX_VALUES} values in all")
        if depth > OPTIONS_MAX_DEPTH:
            raise FieldPathError(path, f"nests deeper than {OPTIONS_MAX_DEPTH} levels")
        if isinstance(node, str):
            _check_text(path, node)
        elif isinstance(node, dict):
            if len(node) > MAP_MAX_ENTRIES:
                raise FieldPathError(path, f"has {len(node)} entries; at most {MAP_MAX_ENTRIES}")
            for key, item in node.items():
                _check_key(path, str(key))
                walk(f"{path}.{key}", item, depth + 1)
        elif isinstance(node, list):
            if len(node) > MAP_MAX_ENTRIES:
                raise FieldPathError(path, f"has {len(node)} items; at most {MAP_MAX_ENTRIES}")
            for n, item in enumerate(node):
                walk(f"{path}.{n}", item, depth + 1)

    for key, item in value.items():
        _check_key("", key)
        walk(key, item, 1)
    return value


#: A small map of text to text (see :data:`MAP_MAX_ENTRIES` and the bounds beside it).
TextMap = Annotated[
    dict[str, str],
    AfterValidator(_text_map),
    Field(
        description=f"At most {MAP_MAX_ENTRIES} entries; keys up to {MAP_KEY_MAX_CHARS} "
        f"characters, values up to {MAP_TEXT_MAX_CHARS}."
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class OrderStatus(StrEnum):
    """The order's own state as the merchant sees it (ShipStation's vocabulary)."""

    AWAITING_PAYMENT = "awaiting_payment"
    AWAITING_SHIPMENT = "awaiting_shipment"
    ON_HOLD = "on_hold"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


class Address(_Model):
    """A postal address; ``country`` is ISO 3166-1 alpha-2."""

    first_name: ShortText | None = None
    last_name: ShortText | None = None
    company: ShortText | None = None
    line1: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
    line2: ShortText | None = None
    line3: ShortText | None = None
    city: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    region: ShortText | None = Field(None, description="State, province or county.")
    postal_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)] | None = (
        None
    )
    country: CountryCode
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = None
    email: Email | None = None
    residential: bool | None = None


class PartialAddress(_Model):
    """Address fields for an update: every field optional, at least one given."""

    first_name: ShortText | None = None
    last_name: ShortText | None = None
    company: ShortText | None = None
    line1: ShortText | None = None
    line2: ShortText | None = None
    line3: ShortText | None = None
    city: ShortText | None = None
    region: ShortText | None = None
    postal_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)] | None = (
        None
    )
    country: CountryCode | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = None
    email: Email | None = None
    residential: bool | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> PartialAddress:
        if not self.model_fields_set:
            raise ValueError("an address update needs at least one field")
        return self


class Customer(_Model):
    """Who bought; some vendors require email and names."""

    id: ShortText | None = None
    email: Email | None = None
    first_name: ShortText | None = None
    last_name: ShortText | None = None
    company: ShortText | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = None
    ip: ShortText | None = None
    wholesale: bool = False


class Weight(_Model):
    """A weight with its unit."""

    value: Annotated[Money, Field(ge=0)]
    unit: Literal["lb", "oz", "g", "kg"]


class Dimensions(_Model):
    """Package dimensions with their unit."""

    length: Annotated[Money, Field(ge=0)]
    width: Annotated[Money, Field(ge=0)]
    height: Annotated[Money, Field(ge=0)]
    unit: Literal["in", "cm"]


class Item(_Model):
    """One order line."""

    line_id: ShortText | None = None
    sku: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    name: ShortText | None = None
    quantity: Annotated[int, Field(ge=1, strict=True)]
    unit_price: NonNegativeMoney = Field(
        description="The price of one unit, before discounts and taxes."
    )
    tax: NonNegativeMoney | None = Field(
        None, description="The tax on the whole line (all its units); part of totals.tax."
    )
    discount: NonNegativeMoney | None = Field(
        None,
        description="The discount on the whole line (all its units), an amount; part of "
        "totals.discount.",
    )
    weight: Weight | None = None
    upc: ShortText | None = None
    ean: ShortText | None = None
    image_url: Annotated[str, StringConstraints(max_length=2048)] | None = None
    options: TextMap = Field(default_factory=dict)
    attributes: TextMap = Field(
        default_factory=dict,
        description="Per-SKU attributes some vendors require (SourceOrders).",
    )


class Totals(_Model):
    """The order's whole amounts; unit prices, and each line's tax and discount, live on the
    items.

    ``discount`` and ``tax`` are the order's whole discount and tax: the items' ``discount`` and
    ``tax`` included, plus whatever applies to the order as a whole (a coupon; tax on
    shipping). Left at 0 on an order whose items carry some, they are the items' sum; a value
    smaller than the items' sum is refused. A producer can check::

        paid = sum(quantity * unit_price) - discount + tax + shipping

    (:mod:`order_dispatch.money` holds the rule, and which vendor carries which part.)
    """

    shipping: NonNegativeMoney = Field(
        Decimal("0"), description="What the customer pays for shipping, before tax."
    )
    tax: NonNegativeMoney = Field(
        Decimal("0"),
        description="The order's whole tax: the items' tax included, plus tax not on an item "
        "(on shipping, say). 0 (the default): the items' sum. Never less than the items' sum.",
    )
    discount: NonNegativeMoney = Field(
        Decimal("0"),
        description="The order's whole discount: the items' discounts included, plus any on "
        "the order as a whole (a coupon). 0 (the default): the items' sum. Never less than the "
        "items' sum.",
    )
    paid: NonNegativeMoney | None = Field(
        None,
        description="What the customer paid in all: sum(quantity * unit_price) - discount + "
        "tax + shipping.",
    )


class Shipping(_Model):
    """How the order ships."""

    carrier: ShortText | None = None
    service: ShortText | None = None
    requested_service: ShortText | None = None
    package: ShortText | None = None
    confirmation: ShortText | None = None
    ship_date: AwareDatetime | None = None
    weight: Weight | None = None
    dimensions: Dimensions | None = None
    instructions: Annotated[str, StringConstraints(max_length=1000)] | None = None


class Payment(_Model):
    """How the order was paid."""

    method: ShortText | None = None
    type: ShortText | None = None
    transaction_id: ShortText | None = None
    authorization_id: ShortText | None = None
    amount: NonNegativeMoney | None = None


class Gift(_Model):
    """Gift options."""

    message: Annotated[str, StringConstraints(max_length=500)] | None = None
    sender: ShortText | None = None
    recipient: ShortText | None = None
    wrap: bool = False


class Notes(_Model):
    """Free-text notes."""

    customer: Annotated[str, StringConstraints(max_length=4000)] | None = None
    internal: Annotated[str, StringConstraints(max_length=4000)] | None = None


class NormalizedOrder(_Model):
    """One order as every producer writes it, whatever the vendor."""

    order_id: Identifier = Field(description="The producer's unique reference for the order.")
    order_number: Identifier | None = None
    placed_at: AwareDatetime
    paid_at: AwareDatetime | None = None
    ship_by: AwareDatetime | None = None
    status: OrderStatus = OrderStatus.AWAITING_SHIPMENT
    currency: CurrencyCode = "USD"
    customer: Customer = Field(default_factory=Customer)
    ship_to: Address
    bill_to: Address | None = None
    items: Annotated[list[Item], Field(min_length=1, max_length=1000)]
    totals: Totals = Field(default_factory=Totals)
    shipping: Shipping = Field(default_factory=Shipping)
    payment: Payment | None = None
    gift: Gift | None = None
    notes: Notes | None = None
    custom: TextMap = Field(default_factory=dict)
    vendor_options: Annotated[dict[str, Any], AfterValidator(_options_map)] = Field(
        default_factory=dict,
        description="Escape hatch merged into the vendor payload for fields this model lacks. "
        f"At most {MAP_MAX_ENTRIES} entries, {OPTIONS_MAX_DEPTH} levels and "
        f"{OPTIONS_MAX_VALUES} values in all; keys up to {MAP_KEY_MAX_CHARS} characters, text "
        f"up to {MAP_TEXT_MAX_CHARS}. Each vendor refuses keys that would replace what the "
        "translator sets.",
    )

    @model_validator(mode="after")
    def _totals_hold_their_items(self) -> NormalizedOrder:
        for path, reason in money.contradictions(self):
            raise FieldPathError(path.removeprefix("order."), reason)
        return self


class Trace(_Model):
    """Where a job came from, for correlation across systems."""

    producer: ShortText | None = None
    trace_id: ShortText | None = None


#: The vendors the product supports and the operations each one offers: a live view of
#: :data:`order_dispatch.catalog.OPERATIONS`, which producers check jobs against.
VENDOR_OPERATIONS: Mapping[str, frozenset[Operation]] = catalog.OPERATIONS


#: The "vendor" of webhook deliveries: a delivery is a job of this vendor whose account is the
#: endpoint's id and whose operation is ``notify`` (see ``order_dispatch.webhooks``).
WEBHOOKS = "webhooks"
_WEBHOOK_OPERATIONS = frozenset({Operation.NOTIFY})


def _vendor_name(value: str) -> str:
    if value == WEBHOOKS:
        return value
    if value not in catalog.CATALOG:
        raise ValueError(f"unknown vendor {value!r}; valid vendors: {', '.join(catalog.names())}")
    return value


VendorName = Annotated[str, AfterValidator(_vendor_name)]
AccountName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$"), Field(description="Account name.")
]


def default_job_id(vendor: str, account: str, operation: str, order_id: str) -> str:
    """The stable job id: the same order sent the same way always gets the same id."""
    digest = hashlib.sha256(f"{vendor}\x1f{account}\x1f{operation}\x1f{order_id}".encode())
    return f"{vendor}:{account}:{operation}:{digest.hexdigest()[:24]}"


# What each operation needs from the order field.
_NEEDS_FULL_ORDER = {Operation.CREATE, Operation.IMPORT}
_NEEDS_VENDOR_ID = {Operation.UPDATE_ADDRESS, Operation.CANCEL, Operation.GET_STATUS}


class Job(_Model):
    """What a producer enqueues: one operation on one order for one vendor account.

    ``create`` and ``import`` carry a full ``order``. ``update_address`` carries ``order_id``,
    ``vendor_order_id`` and ``address``; ``cancel`` and ``get_status`` carry ``order_id`` and
    ``vendor_order_id``. ``job_id`` defaults to a stable hash of vendor, account, operation and
    order id, so enqueueing the same thing twice is recognised as a duplicate.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    job_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] = ""
    vendor: VendorName
    account: AccountName = "default"
    operation: Operation = Operation.CREATE
    order_id: Identifier | None = Field(
        None, description="Required when no full order is given; taken from the order otherwise."
    )
    order: NormalizedOrder | None = None
    address: PartialAddress | None = Field(None, description="The new address (update_address).")
    vendor_order_id: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    priority: Annotated[int, Field(ge=0, le=9)] = 0
    not_before: AwareDatetime | None = None
    trace: Trace = Field(default_factory=Trace)
    enqueued_at: AwareDatetime | None = None
    event: dict[str, Any] | None = Field(
        None,
        description="notify only: the webhook payload (type, timestamp, data: the result event).",
    )

    @field_validator("operation")
    @classmethod
    def _offered(cls, operation: Operation, info: ValidationInfo) -> Operation:
        vendor = info.data.get("vendor")
        if vendor == WEBHOOKS:
            offered = _WEBHOOK_OPERATIONS
        else:
            offered = VENDOR_OPERATIONS.get(vendor or "", frozenset(Operation) - {Operation.NOTIFY})
        if operation not in offered:
            raise ValueError(
                f"{vendor} does not support operation {operation.value!r}; "
                f"it supports: {', '.join(sorted(o.value for o in offered))}"
            )
        return operation

    @model_validator(mode="after")
    def _fill_and_check(self) -> Job:
        if self.operation in _NEEDS_FULL_ORDER and self.order is None:
            raise ValueError(f"operation {self.operation.value!r} needs 'order'")
        if self.operation in _NEEDS_VENDOR_ID and not self.vendor_order_id:
            raise ValueError(f"operation {self.operation.value!r} needs 'vendor_order_id'")
        if self.operation is Operation.UPDATE_ADDRESS and self.address is None:
            raise ValueError("operation 'update_address' needs 'address'")
        if (self.operation is Operation.NOTIFY) != (self.event is not None):
            raise ValueError("'event' is given with operation 'notify' and only with it")
        if self.order is not None:
            if self.order_id is not None and self.order_id != self.order.order_id:
                raise ValueError("'order_id' differs from 'order.order_id'")
            object.__setattr__(self, "order_id", self.order.order_id)
        if self.order_id is None:
            raise ValueError("'order_id' is required (or a full 'order')")
        if not self.job_id:
            object.__setattr__(
                self,
                "job_id",
                default_job_id(self.vendor, self.account, self.operation.value, self.order_id),
            )
        return self

    @property
    def ref(self) -> str:
        """The order id this job is about (always set after validation)."""
        assert self.order_id is not None
        return self.order_id

    def stamped(self, now: datetime | None = None) -> Job:
        """A copy with ``enqueued_at`` set (kept if already set)."""
        if self.enqueued_at is not None:
            return self
        return self.model_copy(update={"enqueued_at": now or datetime.now(UTC)})


class EventStatus(StrEnum):
    """What a result event says about a job."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DEAD_LETTERED = "dead_lettered"
    IN_DOUBT = "in_doubt"
    RETRY_SCHEDULED = "retry_scheduled"
    DEFERRED = "deferred"
    REPLAYED = "replayed"
    """An operator started a new run of the job (the run's first event)."""
    PURGED = "purged"
    """An operator removed the order's personal data on request; ids and statuses stay."""

    @property
    def terminal(self) -> bool:
        """True for the statuses that end a job's run."""
        return self in _TERMINAL


_TERMINAL = frozenset(
    {EventStatus.ACCEPTED, EventStatus.REJECTED, EventStatus.DEAD_LETTERED, EventStatus.IN_DOUBT}
)


class ErrorKind(StrEnum):
    """Why something failed; the retry decision is keyed on this and the HTTP status."""

    VALIDATION = "validation"
    AUTH = "auth"
    VENDOR_REJECTED = "vendor_rejected"
    RATE_LIMITED = "rate_limited"
    VENDOR_UNAVAILABLE = "vendor_unavailable"
    TIMEOUT = "timeout"
    TRANSPORT = "transport"
    CIRCUIT_OPEN = "circuit_open"
    INTERNAL = "internal"


class ErrorInfo(_Model):
    """A failure, explained: what kind, the vendor's code and message, and whether it retries."""

    kind: ErrorKind
    code: str | None = None
    message: str
    http_status: int | None = None
    retryable: bool = False


class ResultEvent(_Model):
    """One thing that happened to a job, as downstream consumers read it."""

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: str = Field(description="Stable: the same happening always has the same id.")
    job_id: str
    run: int = Field(1, ge=1, description="Which run of the job (a replay starts a new run).")
    order_id: str
    vendor: str
    account: str
    operation: Operation
    status: EventStatus
    terminal: bool
    vendor_order_id: str | None = None
    vendor_status: str | None = None
    attempt: int = Field(ge=1)
    retry_in_s: float | None = Field(None, description="For retry_scheduled: the wait chosen.")
    error: ErrorInfo | None = None
    vendor_response: str | None = Field(None, description="Raw body, truncated, secrets redacted.")
    occurred_at: AwareDatetime
    enqueued_at: AwareDatetime | None = None
    duration_ms: int | None = None
    reconciled: bool | None = Field(
        None,
        description="True when the outcome was learnt by looking the order up at the vendor "
        "(an interrupted attempt, or the vendor's 'already have it'), not from a submit's answer.",
    )
    operator: str | None = Field(
        None,
        description="Who made this event by hand: set on 'replayed' and on the outcome an "
        "operator decided for an in_doubt job (then no vendor call was made in this run).",
    )
    note: str | None = Field(None, max_length=2000, description="The operator's note.")

    @classmethod
    def for_job(
        cls,
        job: Job,
        *,
        run: int,
        run_token: str,
        attempt: int,
        status: EventStatus,
        **fields: Any,
    ) -> ResultEvent:
        """The event of ``job``'s attempt ``attempt`` in run ``run`` (``occurred_at`` now unless
        given). Its id is stable for (job, run, attempt, status) and carries the run's token,
        so a run started anew (a replay, or a Redis that lost its data) never reuses an earlier
        run's event ids."""
        fields.setdefault("occurred_at", datetime.now(UTC))
        return cls(
            event_id=f"{job.job_id}:{run}.{run_token[:8]}:{attempt}:{status.value}",
            job_id=job.job_id,
            run=run,
            order_id=job.ref,
            vendor=job.vendor,
            account=job.account,
            operation=job.operation,
            status=status,
            terminal=status.terminal,
            attempt=attempt,
            enqueued_at=job.enqueued_at,
            **fields,
        )

    @model_validator(mode="after")
    def _terminal_matches_status(self) -> ResultEvent:
        if self.terminal != self.status.terminal:
            raise ValueError(f"terminal={self.terminal} contradicts status {self.status.value!r}")
        return self


def format_validation_errors(exc: ValidationError, *, max_errors: int = 50) -> list[str]:
    """Every error of ``exc`` as ``field.path: message`` (the path a producer can act on)."""
    lines = []
    for err in exc.errors(include_url=False)[:max_errors]:
        path = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, FieldPathError):
            path = ".".join(p for p in (path, cause.subpath) if p)
            message = cause.message
        lines.append(f"{path or '(document)'}: {message}")
    return lines
