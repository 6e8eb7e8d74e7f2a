"""Every simulator the sandbox ships, by vendor name."""

from __future__ import annotations

from sandbox.base import VendorSimulator
from sandbox.sourceorders import SourceOrdersSimulator


def all_simulators() -> list[VendorSimulator]:
    """A fresh instance of each simulator, with its demo credentials."""
    classes: list[type[VendorSimulator]] = [
        SourceOrdersSimulator,
    ]
    return [cls.from_env() for cls in classes]
