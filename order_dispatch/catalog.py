"""The vendor catalog: one entry per vendor, the one place a vendor's facts are listed.

Everything outside a vendor's own adapter and simulator reads it: the contract (which vendors
and operations a job may name), the worker's adapter registry, the sandbox's simulators, the
demo, ``order-dispatch preview``, the producer's door (:func:`check`) and the README's vendor
table. Adding a vendor is one entry here, one adapter, one simulator, their tests and a docs
page (``docs/adding-a-vendor.md``).

An entry holds facts, not code. The adapter, the simulator and the account options model are
import paths (``"worker.vendors.sophio:Sophio"``), so this module, at the bottom of the house,
imports no worker or sandbox code; :func:`load` imports one when asked. The options models stay
beside their adapters: they carry vendor knowledge (SellerCloud's channel table, Sophio's
time-zone check), the adapters read them on every request, and they need nothing of the
worker, so a tool that validates account options imports the model alone.

The requirements are what a vendor refuses that can be seen in the job alone, as data per
operation: required fields, length and value limits, the values it takes (a status, a code) and
the form of a value (an IPv4 address). The door refuses a job that breaks one with the field
path and message the vendor's adapter gives when the worker translates the job
(``tests/vendors/contract.py`` proves it for each requirement). The adapters keep their own
checks, for jobs queued by older producers and for what depends on the account (SupplyStream's
XML format). A requirement is listed only where the adapter refuses exactly that, so the door
never refuses an order the worker would send.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple

from order_dispatch.operation import Operation

if TYPE_CHECKING:
    from order_dispatch.contract import Job

__all__ = [
    "CATALOG",
    "OPERATIONS",
    "Choice",
    "Length",
    "Maximum",
    "Pattern",
    "Problem",
    "Required",
    "Requirement",
    "UnknownVendor",
    "VendorEntry",
    "check",
    "entry",
    "load",
    "names",
]

#: The largest value of a signed 32-bit integer, the type of many vendors' quantities.
INT32_MAX = 2**31 - 1


def _paths(value: str | tuple[str, ...]) -> tuple[str, ...]:
    paths = (value,) if isinstance(value, str) else tuple(value)
    if not paths or (len(paths) > 1 and any("*" in p for p in paths)):
        raise ValueError(f"{value!r}: one path with '*', or candidate paths without")
    return paths


@dataclass(frozen=True, slots=True)
class Required:
    """A value the vendor needs. The first of ``paths`` that is set (neither None nor empty) is
    the one sent; when none is, the job is refused naming the first path. ``*`` in a (single)
    path stands for every item of a list or every value of a map. With ``within``, the rule
    applies only when that path holds a value (a billing address's name, when there is one)."""

    paths: str | tuple[str, ...]
    message: str = "is required by this vendor"
    within: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "paths", _paths(self.paths))


@dataclass(frozen=True, slots=True)
class Length:
    """Text the vendor takes ``min`` to ``max`` characters of. The value checked is the first of
    ``paths`` that is not None (the one the adapter sends), and the error names that path; ``*``
    and ``within`` as for :class:`Required`. A value that is not text is not checked here."""

    paths: str | tuple[str, ...]
    max: int | None = None
    min: int = 0
    too_long: str = "is {length} characters; the vendor accepts at most {max}"
    too_short: str = "is {length} characters; the vendor accepts at least {min}"
    within: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "paths", _paths(self.paths))


@dataclass(frozen=True, slots=True)
class Maximum:
    """A whole number the vendor takes at most ``max`` of (``*`` as for :class:`Required`)."""

    path: str
    max: int
    message: str = "is {value}; the vendor accepts at most {max}"


@dataclass(frozen=True, slots=True)
class Choice:
    """A value the vendor takes only from ``allowed`` (when given) and never from ``refused``;
    None is not checked. With ``keys``, a ``*`` path's map keys are checked instead of its
    values. The message may use ``{value!r}`` and ``{values}`` (the allowed ones, listed)."""

    path: str
    message: str
    allowed: tuple[str, ...] | None = None
    refused: tuple[str, ...] = ()
    keys: bool = False


@dataclass(frozen=True, slots=True)
class Pattern:
    """Text the vendor takes only in one form: ``regex`` must match all of it (None and empty
    text, which a :class:`Required` rule covers where needed, are not checked). The message may
    use ``{value!r}``."""

    path: str
    regex: str
    message: str


Requirement = Required | Length | Maximum | Choice | Pattern


class Problem(NamedTuple):
    """A requirement a job breaks: the field's path and what is wrong with it."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True, slots=True)
class VendorEntry:
    """Everything the house outside a vendor's adapter and simulator knows about the vendor."""

    #: The vendor's name in jobs, queues, settings and the sandbox's path prefix.
    name: str
    #: How people write it (the README's table).
    title: str
    operations: frozenset[Operation]
    #: ``module:Class`` of the adapter (a :class:`worker.vendors.base.VendorAdapter` subclass).
    adapter: str
    #: ``module:Class`` of the simulator (an :class:`order_dispatch_sandbox.base.VendorSimulator`).
    simulator: str
    #: ``module:Class`` of the account options model (a pydantic model), or None: no options.
    options: str | None
    #: Credentials an account must carry (``ORDER_DISPATCH_ACCOUNTS__<V>__<A>__CREDENTIALS__*``).
    credentials: tuple[str, ...]
    #: The vendor's page (``docs/vendors/<name>.md``).
    docs: str
    #: How requests are authenticated, in a few words (the README's table).
    auth: str
    #: What becomes of a ``create`` whose answer was lost (the README's table).
    lost_create: str
    #: What the door checks, per operation (see the module docstring).
    requirements: Mapping[Operation, tuple[Requirement, ...]] = field(default_factory=dict)


class UnknownVendor(LookupError):
    """No vendor of that name is in the catalog."""


_SHOPATRON_CUSTOMER = "is required by this vendor (and neither bill_to nor ship_to has one)"
_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
#: An IPv4 address as Python's ``ipaddress`` reads one (no leading zeros).
IPV4 = rf"{_OCTET}(\.{_OCTET}){{3}}"
_SHOPATRON_ORDER: tuple[Requirement, ...] = (
    *(
        Required(
            (f"order.customer.{name}", f"order.bill_to.{name}", f"order.ship_to.{name}"),
            _SHOPATRON_CUSTOMER,
        )
        for name in ("first_name", "last_name", "email")
    ),
    Required("order.items.*.name"),
    *(
        Length(f"order.{side}.line{n}", max=250)
        for side in ("ship_to", "bill_to")
        for n in (1, 2, 3)
    ),
    Required("order.ship_to.postal_code"),
    Required("order.bill_to.postal_code", within="order.bill_to"),
    Length("order.notes.customer", max=1000),
    Length("order.custom.*", min=1, too_short="is empty; the vendor accepts 1 to 1000 characters"),
    Length("order.vendor_options.cartID", max=512),
    Length("order.vendor_options.landingCode", min=10, max=200),
    Pattern(
        "order.customer.ip", IPV4, "{value!r} is not an IPv4 address; the vendor accepts only IPv4"
    ),
)
_SHOPATRON_IMPORT: tuple[Requirement, ...] = (
    Choice(
        "order.status",
        "Shopatron imports shipped, awaiting_shipment (READY) or cancelled orders, not {value!r}",
        allowed=("shipped", "awaiting_shipment", "cancelled"),
    ),
)
_SHOPATRON_CREATE: tuple[Requirement, ...] = (
    Choice(
        "order.status",
        "a create makes a new order to fulfil, not a {value!r} one; send it with operation "
        "'import'",
        refused=("shipped", "cancelled"),
    ),
    Required(
        "order.customer.ip",
        "is required by this vendor to create an order: the buyer's external IPv4 address, "
        "used for fraud review",
    ),
    Required(
        "order.payment.type",
        "is required by this vendor to create an order (a payment type code such as CC, PP or "
        "NO; the codes vary by merchant)",
    ),
)

_SOPHIO_NAME = "is required by this vendor when last_name is empty (the address needs a name)"
_SOPHIO_CREATE: tuple[Requirement, ...] = (
    Required(
        ("order.bill_to.first_name", "order.bill_to.last_name"), _SOPHIO_NAME, "order.bill_to"
    ),
    Required(("order.ship_to.first_name", "order.ship_to.last_name"), _SOPHIO_NAME),
    Required("order.ship_to.postal_code"),
    Maximum("order.items.*.quantity", INT32_MAX),
    Choice(
        "order.shipping.confirmation",
        "is {value!r}; the vendor takes one of {values}",
        allowed=("none", "delivery", "signature", "adult_signature", "direct_signature"),
    ),
    Choice(
        "order.custom.*",
        "has no place at this vendor; it takes {values}",
        allowed=("customField1", "customField2", "customField3"),
        keys=True,
    ),
)


def _sellercloud_customer(name: str, label: str) -> Required:
    return Required(
        (f"order.customer.{name}", f"order.bill_to.{name}", f"order.ship_to.{name}"),
        f"is required by SellerCloud (CustomerDetails.{label} is mandatory) and neither the "
        "customer nor an address has it",
    )


_SELLERCLOUD_CREATE: tuple[Requirement, ...] = (
    _sellercloud_customer("email", "Email"),
    _sellercloud_customer("first_name", "FirstName"),
    _sellercloud_customer("last_name", "LastName"),
    Maximum(
        "order.items.*.quantity",
        INT32_MAX,
        "is {value}; SellerCloud's Qty is an int32 (at most {max})",
    ),
)


def _supplystream_address(side: str) -> tuple[Requirement, ...]:
    """iHub's address fields (``DeliveryDetails``, ``BillingDetails``); phone and email fall
    back to the customer's. The customer's names are sent only for an address without names, a
    case the door leaves to the worker."""
    within = f"order.{side}"
    limits = {"first_name": 50, "last_name": 50, "company": 100, "line1": 100, "line2": 100}
    limits |= {"line3": 100, "city": 50, "region": 50}
    return (
        *(Length(f"{within}.{name}", max=limit) for name, limit in limits.items()),
        Length((f"{within}.phone", "order.customer.phone"), max=20, within=within),
        Length((f"{within}.email", "order.customer.email"), max=150, within=within),
    )


_SUPPLYSTREAM_CREATE: tuple[Requirement, ...] = (
    Choice(
        "order.status",
        "is {value!r}; SupplyStream would fulfil it, so only open orders can be created there",
        refused=("shipped", "cancelled"),
    ),
    Length("order.shipping.carrier", max=100),
    Length(("order.shipping.service", "order.shipping.requested_service"), max=100),
    Length("order.shipping.instructions", max=400),
    Length("order.gift.sender", max=100),
    Length("order.gift.recipient", max=100),
    *_supplystream_address("ship_to"),
    *_supplystream_address("bill_to"),
    Length("order.items.*.ean", max=100),
)

#: Every vendor, by name.
CATALOG: dict[str, VendorEntry] = {
    entry.name: entry
    for entry in (
        VendorEntry(
            name="sellercloud",
            title="SellerCloud",
            operations=frozenset({Operation.CREATE, Operation.GET_STATUS, Operation.CANCEL}),
            adapter="worker.vendors.sellercloud:SellerCloud",
            simulator="order_dispatch_sandbox.sellercloud:SellerCloudSimulator",
            options="worker.vendors.sellercloud:SellerCloudOptions",
            credentials=("username", "password"),
            docs="docs/vendors/sellercloud.md",
            auth="token from `/rest/api/token`",
            lost_create="looked up by `OrderSourceOrderID`",
            requirements={Operation.CREATE: _SELLERCLOUD_CREATE},
        ),
        VendorEntry(
            name="shopatron",
            title="Shopatron / Kibo OMS",
            operations=frozenset({Operation.CREATE, Operation.IMPORT}),
            adapter="worker.vendors.shopatron:Shopatron",
            simulator="order_dispatch_sandbox.shopatron:ShopatronSimulator",
            options="worker.vendors.shopatron:ShopatronOptions",
            credentials=("api_key", "client_secret"),
            docs="docs/vendors/shopatron.md",
            auth="OAuth2 client credentials + `API-Key`",
            lost_create="looked up by `externalOrderID`: found → `accepted`, absent → sent "
            'again; code 5015 on `externalOrderID` = "already have it"',
            requirements={
                Operation.CREATE: (*_SHOPATRON_ORDER, *_SHOPATRON_CREATE),
                Operation.IMPORT: (*_SHOPATRON_IMPORT, *_SHOPATRON_ORDER),
            },
        ),
        VendorEntry(
            name="sophio",
            title="Sophio",
            operations=frozenset({Operation.CREATE}),
            adapter="worker.vendors.sophio:Sophio",
            simulator="order_dispatch_sandbox.sophio:SophioSimulator",
            options="worker.vendors.sophio:SophioOptions",
            credentials=("api_key", "api_secret"),
            docs="docs/vendors/sophio.md",
            auth="`authentication=` base64 query parameter (masked everywhere, URLs included)",
            lost_create="`in_doubt`; repeated when the account says the store upserts by "
            "`orderKey`",
            requirements={Operation.CREATE: _SOPHIO_CREATE},
        ),
        VendorEntry(
            name="sourceorders",
            title="SourceOrders",
            operations=frozenset(
                {Operation.CREATE, Operation.GET_STATUS, Operation.UPDATE_ADDRESS}
            ),
            adapter="worker.vendors.sourceorders:SourceOrders",
            simulator="order_dispatch_sandbox.sourceorders:SourceOrdersSimulator",
            options=None,
            credentials=("api_key",),
            docs="docs/vendors/sourceorders.md",
            auth="`X-API-KEY`",
            lost_create="`in_doubt` (no reference, no lookup)",
        ),
        VendorEntry(
            name="supplystream",
            title="SupplyStream / SEKO iHub",
            operations=frozenset({Operation.CREATE, Operation.GET_STATUS, Operation.CANCEL}),
            adapter="worker.vendors.supplystream:SupplyStream",
            simulator="order_dispatch_sandbox.supplystream:SupplyStreamSimulator",
            options="worker.vendors.supplystream:SupplyStreamOptions",
            credentials=("api_key",),
            docs="docs/vendors/supplystream.md",
            auth="`api_key=` query parameter",
            lost_create="looked up by a GUID derived from the order; HTTP 200 with "
            "`Success=false` is `rejected`",
            requirements={Operation.CREATE: _SUPPLYSTREAM_CREATE},
        ),
    )
}


def names() -> list[str]:
    """Every vendor's name, sorted."""
    return sorted(CATALOG)


def entry(vendor: str) -> VendorEntry:
    """The entry of ``vendor``, or :class:`UnknownVendor` listing the known ones."""
    try:
        return CATALOG[vendor]
    except KeyError:
        raise UnknownVendor(
            f"unknown vendor {vendor!r}; valid vendors: {', '.join(names())}"
        ) from None


class _Operations(Mapping[str, frozenset[Operation]]):
    """Vendor name -> its operations, read from :data:`CATALOG` at every access."""

    def __getitem__(self, vendor: str) -> frozenset[Operation]:
        return CATALOG[vendor].operations

    def __iter__(self) -> Iterator[str]:
        return iter(names())

    def __len__(self) -> int:
        return len(CATALOG)


#: The operations each vendor offers (a live view of the catalog).
OPERATIONS: Mapping[str, frozenset[Operation]] = _Operations()


def load(path: str) -> Any:
    """What ``module:attribute`` names, imported (an entry's adapter, simulator or options)."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def check(job: Job) -> list[Problem]:
    """Every requirement of the job's vendor and operation that ``job`` breaks (none for an
    unknown vendor: the contract refuses those)."""
    vendor = CATALOG.get(job.vendor)
    if vendor is None:
        return []
    problems: dict[Problem, None] = {}  # a value sent twice (a fallback) is named once
    for rule in vendor.requirements.get(job.operation, ()):
        problems.update(dict.fromkeys(_broken(rule, job)))
    return list(problems)


def _broken(rule: Requirement, job: Job) -> Iterator[Problem]:
    if isinstance(rule, Choice):
        for path, value in _values(job, rule.path):
            if rule.keys:
                value = path.rpartition(".")[2]
            value = value.value if isinstance(value, Enum) else value
            if value is None:
                continue
            if value in rule.refused or (rule.allowed is not None and value not in rule.allowed):
                listed = ", ".join(rule.allowed or ())
                yield Problem(path, rule.message.format(value=value, values=listed))
        return
    if isinstance(rule, Pattern):
        for path, value in _values(job, rule.path):
            if isinstance(value, str) and value and re.fullmatch(rule.regex, value) is None:
                yield Problem(path, rule.message.format(value=value))
        return
    if isinstance(rule, Maximum):
        for path, value in _values(job, rule.path):
            if isinstance(value, int) and value > rule.max:
                yield Problem(path, rule.message.format(value=value, max=rule.max))
        return
    if rule.within is not None and not _is_set(_value(job, rule.within)):
        return
    assert isinstance(rule.paths, tuple)
    if isinstance(rule, Required):
        if len(rule.paths) == 1:
            for path, value in _values(job, rule.paths[0]):
                if not _is_set(value):
                    yield Problem(path, rule.message)
        elif not any(_is_set(_value(job, path)) for path in rule.paths):
            yield Problem(rule.paths[0], rule.message)
        return
    for path, value in _sent(job, rule.paths):
        if not isinstance(value, str):
            continue
        length = len(value)
        if rule.max is not None and length > rule.max:
            yield Problem(path, rule.too_long.format(length=length, max=rule.max, min=rule.min))
        elif length < rule.min:
            yield Problem(path, rule.too_short.format(length=length, max=rule.max, min=rule.min))


def _sent(job: Job, paths: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    """The value the adapter sends: every place of a single path, or the first candidate that
    is not None."""
    if len(paths) == 1:
        yield from _values(job, paths[0])
        return
    for path in paths:
        value = _value(job, path)
        if value is not None:
            yield path, value
            return


def _is_set(value: Any) -> bool:
    return value is not None and value != ""


def _value(root: Any, path: str) -> Any:
    """The value at ``path`` (no ``*``) in ``root``; a step into nothing gives None."""
    node = root
    for part in _parts(path):
        if node is None:
            return None
        node = node.get(part) if isinstance(node, dict) else getattr(node, part, None)
    return node


@functools.cache
def _parts(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def _values(root: Any, path: str) -> Iterator[tuple[str, Any]]:
    """``(concrete path, value)`` for each place ``path`` names in ``root``: ``*`` gives every
    item of a list or value of a map, named by its index or key."""
    if "*" not in path:
        yield path, _value(root, path)
        return
    head, _, tail = path.partition(".*")
    node = _value(root, head)
    if isinstance(node, dict):
        items: Any = node.items()
    elif isinstance(node, list | tuple):
        items = enumerate(node)
    else:
        return
    for key, child in items:
        at = f"{head}.{key}"
        if tail:
            for below, value in _values(child, tail.removeprefix(".")):
                yield f"{at}.{below}", value
        else:
            yield at, child
