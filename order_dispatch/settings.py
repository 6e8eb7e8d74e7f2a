"""Configuration, read from the environment (``ORDER_DISPATCH_*``; ``REDIS_URL`` also works).

Vendor accounts are nested: ``ORDER_DISPATCH_ACCOUNTS`` holds JSON such as
``{"sourceorders": {"default": {"base_url": "https://api.sourceorders.com",
"credentials": {"api_key": "..."}}}}``, or set one value at a time with ``__`` between levels:
``ORDER_DISPATCH_ACCOUNTS__SOURCEORDERS__DEFAULT__BASE_URL=...``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class VendorAccount(BaseModel):
    """One merchant's account at one vendor: where to send, how to authenticate, fixed options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str
    credentials: dict[str, SecretStr] = Field(default_factory=dict)
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Per-account values every order needs (e.g. Shopatron manufacturerID).",
    )

    def secret(self, name: str) -> str | None:
        """The plain value of credential ``name``, or None when it is not configured."""
        value = self.credentials.get(name)
        return value.get_secret_value() if value is not None else None


class RetryPolicy(BaseModel):
    """How retryable failures are retried (see :mod:`worker.retry`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(8, ge=1, description="Attempts in all, the first included.")
    base_delay_s: float = Field(2.0, ge=0)
    max_delay_s: float = Field(300.0, ge=0)
    retry_after_cap_s: float = Field(600.0, ge=0, description="Longest Retry-After honoured.")


class HttpSettings(BaseModel):
    """Timeouts and pool size of the worker's shared HTTP client."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connect_timeout_s: float = Field(5.0, gt=0)
    read_timeout_s: float = Field(30.0, gt=0)
    deadline_s: float = Field(
        60.0,
        gt=0,
        description="Longest one vendor call may take in all (token fetch, request, one resend "
        "after a refused token); the product's own deadline, enforced on the event loop.",
    )
    max_connections: int = Field(100, ge=1)


class Settings(BaseSettings):
    """Everything the product reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="ORDER_DISPATCH_",
        env_nested_delimiter="__",
        extra="ignore",
        frozen=True,
    )

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("ORDER_DISPATCH_REDIS_URL", "REDIS_URL"),
    )
    key_prefix: str = Field("od", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    results_maxlen: int = Field(1_000_000, ge=1000, description="Approximate stream length cap.")
    receipt_ttl_s: int = Field(
        30 * 86400, ge=60, description="How long a job id stays a duplicate."
    )
    task_time_limit_s: int = Field(300, ge=5)
    visibility_timeout_s: int = Field(3600, ge=10)
    restore_interval_s: int = Field(
        10, ge=1, description="How often workers look for unacked jobs past the visibility timeout."
    )
    restore_throttle: int = Field(10, ge=1, description="Scan on every Nth of those looks.")
    lease_margin_s: float = Field(
        30.0, ge=1, description="How long an attempt's lease outlives its vendor call's deadline."
    )
    worker_concurrency: int = Field(32, ge=1)
    shutdown_timeout_s: float = Field(
        30.0,
        gt=0,
        description="How long a stopping worker (SIGTERM) lets its running jobs finish; past "
        "it, they go back to the queue and the worker exits.",
    )
    allow_non_persistent_redis: bool = Field(
        False,
        description="Let the worker start on a Redis without append-only persistence (tests, "
        "demos): a restart of such a Redis loses every queued job.",
    )
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    http: HttpSettings = Field(default_factory=HttpSettings)
    accounts: dict[str, dict[str, VendorAccount]] = Field(default_factory=dict)
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _visibility_covers_waits(self) -> Settings:
        # Celery's Redis transport redelivers anything unacked for longer than the visibility
        # timeout; a task plus the longest countdown we schedule must fit well inside it.
        longest = self.task_time_limit_s + max(self.retry.max_delay_s, self.retry.retry_after_cap_s)
        if self.visibility_timeout_s <= longest:
            raise ValueError(
                f"visibility_timeout_s ({self.visibility_timeout_s}) must exceed the task time "
                f"limit plus the longest retry wait ({longest:.0f} s), or Redis redelivers "
                "tasks that are still waiting and they run twice"
            )
        return self

    @property
    def lease_s(self) -> float:
        """How long an attempt in flight holds its job: the vendor call's deadline plus a
        margin, so a live call is never taken for a dead one."""
        return self.http.deadline_s + self.lease_margin_s

    def account(self, vendor: str, name: str) -> VendorAccount | None:
        """The configured account, or None."""
        return self.accounts.get(vendor, {}).get(name)

    def secrets(self) -> list[str]:
        """Every configured credential value, for redaction."""
        return [
            v.get_secret_value()
            for accounts in self.accounts.values()
            for acct in accounts.values()
            for v in acct.credentials.values()
            if v.get_secret_value()
        ]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()
