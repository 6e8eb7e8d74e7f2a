"""The vendor registry: vendor name -> adapter class, imported on first use.

Adding a vendor means adding its module here, its operations to
:data:`order_dispatch.catalog.OPERATIONS`, and its test file.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from worker.vendors.base import Vendor

_ADAPTERS: dict[str, str] = {
    "sellercloud": "worker.vendors.sellercloud:SellerCloud",
    "shopatron": "worker.vendors.shopatron:Shopatron",
    "sophio": "worker.vendors.sophio:Sophio",
    "sourceorders": "worker.vendors.sourceorders:SourceOrders",
    "supplystream": "worker.vendors.supplystream:SupplyStream",
}


class UnknownVendor(LookupError):
    """No adapter is registered under that name."""


def known_vendors() -> list[str]:
    """Names of every registered vendor."""
    return sorted(_ADAPTERS)


def vendor_class(vendor: str) -> type[Vendor]:
    """The adapter class of ``vendor``."""
    try:
        module_name, _, attr = _ADAPTERS[vendor].partition(":")
    except KeyError:
        raise UnknownVendor(
            f"no adapter for vendor {vendor!r} (known: {', '.join(known_vendors())})"
        ) from None
    cls: type[Vendor] = getattr(importlib.import_module(module_name), attr)
    return cls
