"""The vendor registry: vendor name -> adapter class, imported on first use.

The adapters are those :data:`order_dispatch.catalog.CATALOG` names; adding a vendor is its
catalog entry, its module here and its test file (``docs/adding-a-vendor.md``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from order_dispatch import catalog
from order_dispatch.catalog import UnknownVendor

if TYPE_CHECKING:
    from worker.vendors.base import Vendor

__all__ = ["UnknownVendor", "known_vendors", "vendor_class"]


def known_vendors() -> list[str]:
    """Names of every registered vendor."""
    return catalog.names()


def vendor_class(vendor: str) -> type[Vendor]:
    """The adapter class of ``vendor``."""
    try:
        path = catalog.CATALOG[vendor].adapter
    except KeyError:
        raise UnknownVendor(
            f"no adapter for vendor {vendor!r} (known: {', '.join(known_vendors())})"
        ) from None
    cls: type[Vendor] = catalog.load(path)
    return cls
