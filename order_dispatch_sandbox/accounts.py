"""The vendor accounts that point the product at the sandbox: ``ORDER_DISPATCH_ACCOUNTS``.

One ``default`` account per vendor, its ``base_url`` the sandbox's ``/<vendor>`` prefix, its
credentials and options the ones the simulator accepts: its settings as the environment gives
them (``ORDER_DISPATCH_SANDBOX_<VENDOR>_<NAME>``, what ``--set`` writes), else its demo
defaults. ``order-dispatch sandbox --print-accounts`` prints them; the demo and the tests use
them; the README's table of demo credentials is checked against them.
"""

from __future__ import annotations

from typing import Any

from order_dispatch_sandbox.sellercloud import SellerCloudSettings
from order_dispatch_sandbox.shopatron import ShopatronSettings
from order_dispatch_sandbox.sophio import SophioSettings
from order_dispatch_sandbox.sourceorders import SourceOrdersSettings
from order_dispatch_sandbox.supplystream import SupplyStreamSettings

#: Account options the sandbox takes for every order (it checks none of Shopatron's ids).
SHOPATRON_OPTIONS = {"manufacturer_id": "1001", "catalog_id": "1"}
SELLERCLOUD_CHANNEL = "Local_Store"


def _first(codes: str) -> str:
    return next((c.strip() for c in codes.split(",") if c.strip()), "")


def sandbox_accounts(base_url: str, *, from_env: bool = True) -> dict[str, dict[str, Any]]:
    """``ORDER_DISPATCH_ACCOUNTS`` for the sandbox at ``base_url`` (``http://127.0.0.1:8787``):
    each simulator's credentials from the environment (``from_env``), else its demo defaults.

    Raises ValueError naming the variable when a sandbox setting in the environment is wrong.
    """
    base = base_url.rstrip("/")

    def settings(cls: Any) -> Any:
        return cls.from_env() if from_env else cls.build()

    sourceorders = settings(SourceOrdersSettings)
    sophio = settings(SophioSettings)
    shopatron = settings(ShopatronSettings)
    supplystream = settings(SupplyStreamSettings)
    sellercloud = settings(SellerCloudSettings)
    return {
        "sourceorders": {
            "default": {
                "base_url": f"{base}/sourceorders",
                "credentials": {"api_key": _secret(sourceorders.api_key)},
            }
        },
        "sophio": {
            "default": {
                "base_url": f"{base}/sophio",
                "credentials": {
                    "api_key": _secret(sophio.api_key),
                    "api_secret": _secret(sophio.api_secret),
                },
            }
        },
        "shopatron": {
            "default": {
                "base_url": f"{base}/shopatron",
                "credentials": {
                    "api_key": _secret(shopatron.api_key),
                    "client_secret": _secret(shopatron.client_secret),
                },
                "options": dict(SHOPATRON_OPTIONS),
            }
        },
        "supplystream": {
            "default": {
                "base_url": f"{base}/supplystream",
                "credentials": {"api_key": _secret(supplystream.api_key)},
                "options": {"dc_code": _first(supplystream.dc_codes), "format": "json"},
            }
        },
        "sellercloud": {
            "default": {
                "base_url": f"{base}/sellercloud",
                "credentials": {
                    "username": _secret(sellercloud.username),
                    "password": _secret(sellercloud.password),
                },
                "options": {
                    "company_id": int(_first(sellercloud.company_ids)),
                    "channel": SELLERCLOUD_CHANNEL,
                },
            }
        },
    }


def _secret(value: Any) -> str:
    """A setting's plain value (``SecretStr`` unwrapped)."""
    reveal = getattr(value, "get_secret_value", None)
    return str(reveal() if reveal is not None else value)
