"""Every simulator the sandbox ships, by vendor name."""

from __future__ import annotations

from order_dispatch_sandbox.base import VendorSimulator
from order_dispatch_sandbox.sellercloud import SellerCloudSimulator
from order_dispatch_sandbox.shopatron import ShopatronSimulator
from order_dispatch_sandbox.sophio import SophioSimulator
from order_dispatch_sandbox.sourceorders import SourceOrdersSimulator
from order_dispatch_sandbox.supplystream import SupplyStreamSimulator


def all_simulators() -> list[VendorSimulator]:
    """A fresh instance of each simulator, with its demo credentials."""
    classes: list[type[VendorSimulator]] = [
        SourceOrdersSimulator,
        ShopatronSimulator,
        SellerCloudSimulator,
        SupplyStreamSimulator,
        SophioSimulator,
    ]
    return [cls.from_env() for cls in classes]
