"""What a job asks a vendor to do (re-exported by :mod:`order_dispatch.contract`).

It lives apart from the contract so that the vendor catalog, which the contract reads, can name
operations without importing the contract.
"""

from __future__ import annotations

from enum import StrEnum


class Operation(StrEnum):
    """What a job asks the vendor to do; each vendor's catalog entry lists the ones it offers."""

    CREATE = "create"
    IMPORT = "import"
    UPDATE_ADDRESS = "update_address"
    CANCEL = "cancel"
    GET_STATUS = "get_status"
    NOTIFY = "notify"
    """A signed webhook delivery of a result event (vendor ``webhooks``), made by the workers'
    fan-out, never by a producer."""
