"""The vendor accounts that point the product at the sandbox: ``ORDER_DISPATCH_ACCOUNTS``.

One ``default`` account per catalogued vendor, its ``base_url`` the sandbox's ``/<vendor>``
prefix, its credentials (the names the vendor's catalog entry lists) and options the ones the
simulator accepts: its settings as the environment gives them
(``ORDER_DISPATCH_SANDBOX_<VENDOR>_<NAME>``, what ``--set`` writes), else its demo defaults.
``order-dispatch sandbox --print-accounts`` prints them; the demo and the tests use them; the
README's table of demo credentials is checked against them.
"""

from __future__ import annotations

from typing import Any

from order_dispatch import catalog
from order_dispatch_sandbox.registry import simulator_class


def sandbox_accounts(base_url: str, *, from_env: bool = True) -> dict[str, dict[str, Any]]:
    """``ORDER_DISPATCH_ACCOUNTS`` for the sandbox at ``base_url`` (``http://127.0.0.1:8787``):
    each simulator's credentials from the environment (``from_env``), else its demo defaults.

    Raises ValueError naming the variable when a sandbox setting in the environment is wrong.
    """
    base = base_url.rstrip("/")
    accounts: dict[str, dict[str, Any]] = {}
    for vendor in catalog.names():
        cls = simulator_class(vendor)
        simulator = cls.from_env() if from_env else cls()
        account: dict[str, Any] = {
            "base_url": f"{base}/{vendor}",
            "credentials": simulator.demo_credentials(catalog.entry(vendor).credentials),
        }
        options = simulator.account_options()
        if options:
            account["options"] = options
        accounts[vendor] = {"default": account}
    return accounts
