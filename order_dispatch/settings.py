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
    rate_limit_per_minute: float | None = Field(
        None,
        ge=0,
        description="Requests a minute shared by every worker (None: the vendor's documented "
        "default; 0: no limit).",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Per-account values every order needs (e.g. Shopatron manufacturerID).",
    )

    def secret(self, name: str) -> str | None:
        """The plain value of credential ``name``, or None when it is not configured."""
        value = self.credentials.get(name)
        return value.get_secret_value() if value is not None else None


class RetryPolicy(BaseModel):
    """How failed attempts are retried (see :mod:`worker.policy`).

    The defaults keep trying for a day: backoff doubles from ``base_delay_s`` up to
    ``max_delay_s``, each wait drawn between half and all of that ceiling (jitter), until
    ``give_up_after_s`` has passed since the job was enqueued or ``max_attempts`` were made.
    Throttling (429, rate limits, an open circuit) defers a job without counting as an attempt.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(100, ge=1, description="Attempts in all, the first included.")
    base_delay_s: float = Field(2.0, ge=0)
    max_delay_s: float = Field(1800.0, ge=0)
    give_up_after_s: float = Field(
        86_400.0, gt=0, description="No new attempt once this long has passed since enqueue."
    )
    retry_after_cap_s: float = Field(3600.0, ge=0, description="Longest Retry-After honoured.")


class CircuitSettings(BaseModel):
    """When to stop calling a vendor account that keeps failing (see :mod:`worker.limits`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    failure_threshold: int = Field(
        10, ge=1, description="Consecutive failures (5xx, timeouts, connection errors) to open."
    )
    open_s: float = Field(30.0, gt=0, description="How long it stays open before one probe.")
    max_open_s: float = Field(600.0, gt=0, description="Longest open period after failed probes.")


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
    max_connections: int = Field(
        512,
        ge=1,
        description="Connections the process keeps to vendors. At or above the worker's "
        "threads (each holds at most one request, plus token fetches), or requests queue in "
        "the pool.",
    )


class ApiSettings(BaseModel):
    """The HTTP API (``order-dispatch api``): its bounds and its keys' default rate limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_limit_per_minute: float = Field(
        120_000,
        gt=0,
        description="Requests a minute one API key may make (shared by every API process, "
        "about ten seconds' worth may come at once); `api-keys create --rate-per-minute` sets "
        "a key's own.",
    )
    max_batch_jobs: int = Field(1000, ge=1, le=10_000, description="Jobs in one batch request.")
    max_batch_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="Largest batch request body, in bytes."
    )
    max_header_bytes: int = Field(
        16 * 1024, ge=1024, description="Largest request head (request line and headers)."
    )
    request_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Longest a request may take, its body's upload included (a long poll of "
        "/v1/events adds its wait); past it the answer is 503.",
    )
    max_concurrency: int = Field(
        1000,
        ge=1,
        description="Connections and requests one API process holds at once; past it, 503.",
    )
    keep_alive_s: float = Field(5.0, gt=0, description="How long an idle connection is kept.")
    max_wait_s: float = Field(
        30.0, ge=0, le=30, description="Longest long poll of /v1/events (its `wait`)."
    )
    retry_after_s: int = Field(
        5, ge=1, description="Retry-After sent with a 503 when Redis does not answer."
    )


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
    redis_sentinels: str = Field(
        "",
        description="Redis Sentinel: the sentinels as comma-separated host:port pairs (empty: "
        "no Sentinel, redis_url names the server). With sentinels, every Redis client of the "
        "product (producers, workers, broker, job store, metrics, health) asks them for the "
        "master of redis_sentinel_master and follows a failover; redis_url still gives the "
        "database, the password and TLS (its host and port are not used).",
    )
    redis_sentinel_master: str = Field(
        "mymaster", description="The name the sentinels monitor the product's Redis under."
    )
    redis_sentinel_password: SecretStr | None = Field(
        None, description="The sentinels' own password, when they require one."
    )
    redis_wait_replicas: int | None = Field(
        None,
        ge=0,
        description="Replicas that must hold a receipt (enqueue) and a job's outcome with its "
        "result event (before the worker acks the message) before either counts as written: "
        "Redis WAIT. Default: 1 with Sentinel, else 0 (no wait).",
    )
    redis_wait_timeout_ms: int = Field(
        1000,
        ge=1,
        description="Longest wait for those replicas; past it an enqueue fails (enqueueing "
        "again is safe: the job id makes it a duplicate) and a worker logs a warning.",
    )
    broker_url: str | None = Field(
        None,
        description="Celery broker when it is not the Redis above (amqp://... for RabbitMQ); "
        "the ledger, receipts and results stay in Redis.",
    )
    key_prefix: str = Field("od", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    results_maxlen: int = Field(1_000_000, ge=1000, description="Approximate stream length cap.")
    results_max_age_s: int = Field(
        7 * 86400,
        ge=60,
        description="Result events older than this are trimmed from the stream (approximately, "
        "as each new event is written), whatever its length.",
    )
    receipt_ttl_s: int = Field(
        30 * 86400, ge=60, description="How long a job id stays a duplicate."
    )
    job_retention_s: int = Field(
        7 * 86400,
        ge=60,
        description="How long a job's document (the order, with its customer's data) is kept "
        "after the job's run ended, for replay and timelines. The receipt (ids only) stays "
        "for receipt_ttl_s.",
    )
    max_job_bytes: int = Field(
        256 * 1024, ge=1024, description="Largest job document accepted at enqueue, in bytes."
    )
    event_body_chars: int = Field(
        1000,
        ge=0,
        description="Longest excerpt of a vendor's answer carried by a failure's result event "
        "(known personal fields masked); 0 leaves the answer out. Success events never carry it.",
    )
    task_time_limit_s: int = Field(300, ge=5)
    visibility_timeout_s: int | None = Field(
        None,
        ge=10,
        description="Redis redelivers a job unacked this long (a dead worker's); default: the "
        "lease plus the longest countdown plus a minute.",
    )
    schedule_threshold_s: float = Field(
        30.0,
        ge=0,
        description="Waits up to this long are Celery countdowns; longer ones wait in the "
        "durable schedule in Redis.",
    )
    restore_interval_s: int = Field(
        10, ge=1, description="How often workers look for unacked jobs past the visibility timeout."
    )
    restore_throttle: int = Field(
        1, ge=1, description="Scan on every Nth of those looks (1: every look; one cheap query)."
    )
    fetch_heartbeat_s: float = Field(
        5.0,
        gt=0,
        description="How often each worker process renews its heartbeat (a Redis key with a "
        "TTL of fetch_dead_after_s).",
    )
    fetch_dead_after_s: float = Field(
        30.0,
        gt=0,
        description="A worker whose heartbeat is this old is dead: the messages it had taken "
        "go back to their queues, and the attempts it had in flight are no longer its own.",
    )
    fetch_sweep_s: float = Field(
        1.0,
        gt=0,
        description="How often each worker process looks for workers whose heartbeat lapsed "
        "(one HKEYS and one EXISTS per worker, in one round trip).",
    )
    fetch_idle_poll_s: float = Field(
        0.05,
        gt=0,
        le=1,
        description="How long a worker whose queues are all empty waits before it looks again "
        "(the fetch moves a message atomically, which Redis cannot do blocking on several "
        "lists). A job enqueued by the producer API or the HTTP API, or replayed, wakes a "
        "waiting worker of its queue at once; a message that reaches a queue another way (a "
        "retry, the durable schedule) waits for the next look.",
    )
    lease_margin_s: float = Field(
        30.0, ge=1, description="How long an attempt's lease outlives its vendor call's deadline."
    )
    worker_concurrency: int = Field(
        512,
        ge=1,
        description="Threads per worker process: the orders it has in flight. Needed: peak "
        "orders/s x vendor latency; a thread waiting for its vendor holds no CPU and about "
        "25 KB. 512 covers a vendor answering in 1 s (1,000 orders in flight on 2 "
        "processes), and costs nothing at 50 ms (README, Tuning).",
    )
    worker_running_threads: int = Field(
        0,
        ge=0,
        description="Task threads of a process that may run Python at once (0: all); the "
        "others wait for their vendor's answer or for a turn. A bound of 4 once halved the "
        "slow-vendor time; since the worker collects garbage less often it costs 2-4% CPU and "
        "helps at no latency measured (README, Tuning), so none is set by default.",
    )
    worker_processes: int = Field(
        0,
        ge=0,
        description="Processes per `order-dispatch worker` (0: one per core). One process uses "
        "at most one core (the GIL); on 2 cores, 2 processes measured 497 orders/s against "
        "308 for one at 50 ms (README, Tuning). Set it where the core count is not what the "
        "process may use (a container with a CPU quota).",
    )
    task_events: bool = Field(
        True,
        description="Workers send Celery task events (Flower needs them): three per job, sent in "
        "batches; off measured 512 against 497 orders/s on 2 processes at 50 ms (README, "
        "Tuning).",
    )
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
    webhooks_allow_private: bool = Field(
        False,
        description="Let webhook endpoints be plain http and resolve to loopback, private, "
        "link-local or metadata addresses (tests, a receiver inside the deployment).",
    )
    webhooks_disable_after_s: float = Field(
        5 * 86_400.0,
        gt=0,
        description="A webhook endpoint failing without a success for this long is disabled "
        "(its deliveries also give up after this long).",
    )
    webhooks_rate_per_minute: float = Field(
        6000.0,
        ge=0,
        description="Default rate limit of one webhook endpoint, shared by every worker "
        "(0: none); `webhooks add --rate` sets one per endpoint.",
    )
    webhooks_fanout_batch: int = Field(
        200, ge=1, description="Result events the webhook fan-out reads per round trip."
    )
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    vendor_retry: dict[str, RetryPolicy] = Field(
        default_factory=dict, description="Per-vendor retry policies replacing ``retry``."
    )
    circuit: CircuitSettings = Field(default_factory=CircuitSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    accounts: dict[str, dict[str, VendorAccount]] = Field(default_factory=dict)
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _lease_covers_timeouts(self) -> Settings:
        # A call still waiting on its connect and read timeouts must not be taken for dead.
        timeouts = self.http.connect_timeout_s + self.http.read_timeout_s
        if self.http.deadline_s < timeouts:
            raise ValueError(
                f"http.deadline_s ({self.http.deadline_s:g}) must be at least the connect plus "
                f"read timeouts ({timeouts:g} s): the lease (deadline + {self.lease_margin_s:g} "
                "s) must outlive any call still in flight"
            )
        return self

    @model_validator(mode="after")
    def _heartbeat_fits(self) -> Settings:
        # One late beat must not make a live worker look dead.
        if self.fetch_dead_after_s < 2 * self.fetch_heartbeat_s:
            raise ValueError(
                f"fetch_dead_after_s ({self.fetch_dead_after_s:g}) must be at least twice "
                f"fetch_heartbeat_s ({self.fetch_heartbeat_s:g}): one late heartbeat would "
                "make a live worker look dead"
            )
        return self

    @model_validator(mode="after")
    def _visibility_covers_waits(self) -> Settings:
        # Celery's Redis transport redelivers anything unacked for longer than the visibility
        # timeout: a running attempt (its lease) or a countdown must end well inside it.
        longest = self.lease_s + self.schedule_threshold_s
        if self.visibility_timeout_s is not None and self.visibility_timeout_s <= longest:
            raise ValueError(
                f"visibility_timeout_s ({self.visibility_timeout_s}) must exceed the lease plus "
                f"the longest countdown ({longest:.0f} s), or Redis redelivers tasks that are "
                "still running or waiting and they run twice"
            )
        return self

    @property
    def effective_visibility_timeout_s(self) -> int:
        """The visibility timeout in force: as set, or derived from the lease."""
        if self.visibility_timeout_s is not None:
            return self.visibility_timeout_s
        return int(self.lease_s + self.schedule_threshold_s + 60)

    def retry_policy(self, vendor: str) -> RetryPolicy:
        """The retry policy of ``vendor``. Webhook deliveries (``webhooks``) default to
        backoff up to an hour for ``webhooks_disable_after_s`` (the Standard Webhooks
        schedule's shape: seconds, then minutes, then hours, for days)."""
        if vendor == "webhooks" and vendor not in self.vendor_retry:
            return RetryPolicy(
                max_attempts=1000,
                base_delay_s=5.0,
                max_delay_s=3600.0,
                give_up_after_s=self.webhooks_disable_after_s,
            )
        return self.vendor_retry.get(vendor, self.retry)

    @property
    def lease_s(self) -> float:
        """How long an attempt in flight holds its job: the vendor call's deadline plus a
        margin, so a live call is never taken for a dead one."""
        return self.http.deadline_s + self.lease_margin_s

    @property
    def broker(self) -> str:
        """The Celery broker's URL: ``broker_url``, else the Redis of ``redis_url``."""
        return self.broker_url or self.redis_url

    @property
    def wait_replicas(self) -> int:
        """Replicas a receipt and an outcome wait for: ``redis_wait_replicas``, else 1 with
        Sentinel and 0 without."""
        if self.redis_wait_replicas is not None:
            return self.redis_wait_replicas
        return 1 if self.sentinels else 0

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        """The sentinels of ``redis_sentinels`` as (host, port); empty without Sentinel."""
        found = []
        for item in self.redis_sentinels.split(","):
            item = item.strip()
            if not item:
                continue
            host, _, port = item.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(
                    f"redis_sentinels: {item!r} is not host:port (e.g. 10.0.0.5:26379)"
                )
            found.append((host.strip("[]"), int(port)))
        return found

    @property
    def broker_is_redis(self) -> bool:
        """True when the queues live in Redis (then the producer queues atomically there)."""
        return self.broker.startswith(("redis://", "rediss://", "unix://"))

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
