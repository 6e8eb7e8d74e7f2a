"""The vendor registry: vendor name -> submitter class, imported on first use.

Adding a vendor means adding its module here and nothing else.
"""

from __future__ import annotations

import importlib

from worker.vendors.base import Submitter

_ADAPTERS: dict[str, str] = {
    "sourceorders": "worker.vendors.sourceorders:SourceOrdersSubmitter",
}


class UnknownVendor(LookupError):
    """No adapter is registered under that name."""


def known_vendors() -> list[str]:
    """Names of every registered vendor."""
    return sorted(_ADAPTERS)


def submitter_class(vendor: str) -> type[Submitter]:
    """The submitter class of ``vendor``."""
    try:
        module_name, _, attr = _ADAPTERS[vendor].partition(":")
    except KeyError:
        raise UnknownVendor(
            f"no adapter for vendor {vendor!r} (known: {', '.join(known_vendors())})"
        ) from None
    cls: type[Submitter] = getattr(importlib.import_module(module_name), attr)
    return cls
