"""Fault injection, per vendor: what the simulated vendor does wrong, and when.

One-shot faults apply to the next N requests, in the order listed in :data:`ONE_SHOT`; rates
apply to every request with a probability; an outage answers 503 to everything until it ends;
latency delays every answer. All of it is set through ``/_sandbox/faults/{vendor}``.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: One-shot fault kinds, checked in this order.
ONE_SHOT = ("fail", "reset", "hang", "drop_after_commit", "malformed")

Action = Literal[
    "fail", "reset", "hang", "drop_after_commit", "malformed", "outage", "error", "rate_limit"
]


class Latency(BaseModel):
    """Delay before answering: fixed, or drawn uniformly or from a normal (ms, clipped at 0)."""

    model_config = ConfigDict(extra="forbid")

    distribution: Literal["fixed", "uniform", "normal"] = "fixed"
    ms: float = Field(0.0, ge=0, description="Fixed delay, or the mean of 'normal'.")
    min_ms: float = Field(0.0, ge=0)
    max_ms: float = Field(0.0, ge=0)
    stddev_ms: float = Field(0.0, ge=0)

    def draw(self, rng: random.Random) -> float:
        """One delay in seconds."""
        if self.distribution == "uniform":
            return rng.uniform(self.min_ms, max(self.min_ms, self.max_ms)) / 1000
        if self.distribution == "normal":
            return max(0.0, rng.gauss(self.ms, self.stddev_ms)) / 1000
        return self.ms / 1000


class FaultSpec(BaseModel):
    """A change to a vendor's faults, as posted to the admin API (every field optional)."""

    model_config = ConfigDict(extra="forbid")

    fail_next: int | None = Field(None, ge=0, description="Answer the next N with `status`.")
    status: int = Field(503, ge=400, le=599)
    retry_after: float | None = Field(None, ge=0, description="Retry-After on injected answers.")
    body: Any = Field(None, description="Body of injected failures (default: vendor-like).")
    reset_next: int | None = Field(None, ge=0, description="Drop the connection, no answer.")
    hang_next: int | None = Field(None, ge=0, description="Hold the request, then drop it.")
    hang_s: float = Field(60.0, ge=0)
    drop_after_commit_next: int | None = Field(
        None, ge=0, description="Run the request (store the order), then drop the connection."
    )
    malformed_next: int | None = Field(None, ge=0, description="Answer 200 with a broken body.")
    error_rate: float | None = Field(None, ge=0, le=1, description="Share of requests -> 5xx.")
    error_status: int = Field(500, ge=500, le=599)
    rate_limit_rate: float | None = Field(None, ge=0, le=1, description="Share -> 429.")
    latency: Latency | None = None
    outage_s: float | None = Field(None, ge=0, description="Answer 503 to all for N seconds.")
    expire_tokens: bool = Field(False, description="Expire every token issued so far, now.")
    seed: int | None = None


@dataclass
class VendorFaults:
    """The live fault state of one simulated vendor."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ONE_SHOT, 0))
    status: int = 503
    retry_after: float | None = None
    body: Any = None
    hang_s: float = 60.0
    error_rate: float = 0.0
    error_status: int = 500
    rate_limit_rate: float = 0.0
    latency: Latency = field(default_factory=Latency)
    outage_until: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    injected: int = 0

    def apply(self, spec: FaultSpec) -> None:
        """Merge a posted change into the live state."""
        for kind in ONE_SHOT:
            n = getattr(spec, f"{kind}_next")
            if n is not None:
                self.counts[kind] = n
        # These are set by every change; the rates and latency only when given.
        for name in ("status", "retry_after", "body", "hang_s", "error_status"):
            setattr(self, name, getattr(spec, name))
        for name in ("error_rate", "rate_limit_rate", "latency"):
            if getattr(spec, name) is not None:
                setattr(self, name, getattr(spec, name))
        if spec.outage_s is not None:
            self.outage_until = time.monotonic() + spec.outage_s if spec.outage_s else 0.0
        if spec.seed is not None:
            self.rng.seed(spec.seed)

    def next_action(self) -> Action | None:
        """The fault to apply to the request arriving now (consumes one-shot counts)."""
        if self.outage_until and time.monotonic() < self.outage_until:
            return "outage"
        for kind in ONE_SHOT:
            if self.counts[kind] > 0:
                self.counts[kind] -= 1
                return kind  # type: ignore[return-value]
        if self.error_rate and self.rng.random() < self.error_rate:
            return "error"
        if self.rate_limit_rate and self.rng.random() < self.rate_limit_rate:
            return "rate_limit"
        return None

    def outage_remaining(self) -> float:
        """Seconds left of the current outage (0 when none)."""
        return max(0.0, self.outage_until - time.monotonic())

    def describe(self) -> dict[str, Any]:
        """The state as JSON for ``GET /_sandbox/faults``."""
        return {
            "pending": {k: v for k, v in self.counts.items() if v},
            "status": self.status,
            "retry_after": self.retry_after,
            "error_rate": self.error_rate,
            "error_status": self.error_status,
            "rate_limit_rate": self.rate_limit_rate,
            "latency": self.latency.model_dump(),
            "outage_remaining_s": round(self.outage_remaining(), 3),
            "injected": self.injected,
        }
