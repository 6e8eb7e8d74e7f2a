"""Every simulator the sandbox ships, by vendor name: those :mod:`order_dispatch.catalog` names."""

from __future__ import annotations

from order_dispatch import catalog
from order_dispatch_sandbox.base import VendorSimulator


def simulator_class(vendor: str) -> type[VendorSimulator]:
    """The simulator class of ``vendor`` (:class:`~order_dispatch.catalog.UnknownVendor`)."""
    cls: type[VendorSimulator] = catalog.load(catalog.entry(vendor).simulator)
    return cls


def all_simulators() -> list[VendorSimulator]:
    """A fresh instance of each simulator, with its settings from the environment."""
    return [simulator_class(vendor).from_env() for vendor in catalog.names()]
