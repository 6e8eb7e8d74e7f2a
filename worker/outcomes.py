"""What a submit came to, as data: a closed set of outcome kinds with their context."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from order_dispatch.contract import ErrorInfo, ErrorKind

#: Longest vendor body kept in an outcome (and so in a result event).
MAX_BODY_CHARS = 2000


class OutcomeKind(StrEnum):
    """How a vendor call ended."""

    SUCCESS = "success"
    """The vendor did what was asked."""
    PERMANENT = "permanent"
    """The vendor (or our validation) refused; trying again gives the same answer."""
    RETRYABLE = "retryable"
    """It did not happen, and may if tried again (timeouts to connect, 408/429/5xx)."""
    UNKNOWN = "unknown"
    """It may or may not have happened (the request went out, the answer did not come back)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """One vendor call's result: kind, vendor ids, the error explained, the raw body."""

    kind: OutcomeKind
    vendor_order_id: str | None = None
    vendor_status: str | None = None
    error: ErrorInfo | None = None
    http_status: int | None = None
    body: str | None = None
    retry_after_s: float | None = None
    already_exists: bool = False
    """The vendor refused because it already has this order (a reconciliation signal)."""
    throttle_s: float | None = None
    """The vendor said its limit is used up for this long (e.g. ``X-Rate-Limit-Remaining: 0``)."""

    @classmethod
    def success(
        cls,
        vendor_order_id: str | None,
        vendor_status: str | None,
        *,
        http_status: int | None,
        body: str | None,
    ) -> Outcome:
        """The vendor accepted."""
        return cls(
            OutcomeKind.SUCCESS, vendor_order_id, vendor_status, None, http_status, truncate(body)
        )

    @classmethod
    def failure(
        cls,
        kind: OutcomeKind,
        error_kind: ErrorKind,
        message: str,
        *,
        http_status: int | None = None,
        code: str | None = None,
        body: str | None = None,
        retry_after_s: float | None = None,
        already_exists: bool = False,
    ) -> Outcome:
        """A failure of the given kind, explained."""
        error = ErrorInfo(
            kind=error_kind,
            code=code,
            message=message,
            http_status=http_status,
            retryable=kind in (OutcomeKind.RETRYABLE, OutcomeKind.UNKNOWN),
        )
        return cls(
            kind, None, None, error, http_status, truncate(body), retry_after_s, already_exists
        )


def truncate(body: str | None, limit: int = MAX_BODY_CHARS) -> str | None:
    """``body`` cut to ``limit`` characters, marked when cut."""
    if body is None or len(body) <= limit:
        return body
    return body[:limit] + f"...[{len(body) - limit} more characters]"
