"""Every simulator the sandbox ships, by vendor name."""

from __future__ import annotations

from sandbox.base import VendorSimulator
from sandbox.sellercloud import SellerCloudSimulator
from sandbox.shopatron import ShopatronSimulator
from sandbox.sophio import SophioSimulator
from sandbox.sourceorders import SourceOrdersSimulator
from sandbox.supplystream import SupplyStreamSimulator


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
