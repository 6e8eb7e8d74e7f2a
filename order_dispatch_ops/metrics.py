"""``order-dispatch metrics``: the product's Prometheus endpoint, served by its own process.

Why a process of its own: Celery workers are several processes (and restart), and
prometheus-client's multi-process mode (a shared directory of mmap files, cleaned by hand when
a process dies) is fragile. Everything here is read from Redis instead, so one small process
sees the whole deployment, however many workers and hosts there are:

- gauges (queue depth and oldest job's age per vendor queue, delayed-retry schedule, dead
  letters, in-doubt jobs, result stream length and consumer-group lag, circuit states) are read
  from Redis at each scrape;
- counters and the vendor-latency histogram are derived from the result stream, read in the
  process's own consumer group (``NOACK``: nothing to acknowledge, nothing piles up). A
  restarted process resumes where its group stopped; its counters start again from zero, which
  Prometheus's ``rate()`` and ``increase()`` expect of a counter.

Label values stay bounded: ``vendor`` is one of the vendors the product knows, ``account`` one
of the configured accounts (anything else is ``other``), ``status``, ``reason`` and ``state``
come from closed enums, ``group`` from the consumer groups an operator created.
"""

from __future__ import annotations

import threading
import wsgiref.simple_server
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import redis
from prometheus_client import CollectorRegistry, Counter, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

from order_dispatch.contract import ErrorKind, EventStatus, ResultEvent
from order_dispatch.keys import CircuitState, Keys
from order_dispatch.logs import get_logger
from order_dispatch.results import parse_entry, process_name
from order_dispatch_ops.auth import basic_auth
from order_dispatch_ops.state import StateReader

NAMESPACE = "order_dispatch"
OTHER = "other"
#: Attempts that ended without calling the vendor: no latency to observe.
_NO_VENDOR_CALL = frozenset(
    {ErrorKind.VALIDATION, ErrorKind.INTERNAL, ErrorKind.CIRCUIT_OPEN, ErrorKind.RATE_LIMITED}
)
#: Vendor calls take from tens of milliseconds to the read timeout (30 s by default).
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

log = get_logger(__name__)


class Labels:
    """Maps event fields to bounded label values."""

    def __init__(self, vendors: Sequence[str], accounts: Mapping[str, Sequence[str]]) -> None:
        self.vendors = frozenset(vendors)
        self.accounts = {v: frozenset(a) for v, a in accounts.items()}

    def of(self, event: ResultEvent) -> tuple[str, str]:
        """``(vendor, account)`` for ``event``, each ``other`` when not known."""
        if event.vendor not in self.vendors:
            return OTHER, OTHER
        account = event.account if event.account in self.accounts.get(event.vendor, ()) else OTHER
        return event.vendor, account


class RedisCollector(Collector):
    """The gauges, read from Redis at each scrape (``order_dispatch_up`` 0 when it cannot be)."""

    def __init__(self, reader: StateReader) -> None:
        self.reader = reader

    def collect(self) -> Iterator[Metric]:
        """One snapshot of Redis, as metric families."""
        up = GaugeMetricFamily(
            f"{NAMESPACE}_redis_up", "1 when Redis answered this scrape, else 0."
        )
        try:
            snap = self.reader.snapshot()
        except redis.RedisError as exc:
            log.warning("metrics scrape could not read Redis", error=str(exc))
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up

        depth = GaugeMetricFamily(
            f"{NAMESPACE}_queue_depth",
            "Jobs waiting in a vendor's queue (every known vendor, consumed or not).",
            labels=["vendor", "queue"],
        )
        age = GaugeMetricFamily(
            f"{NAMESPACE}_queue_oldest_job_age_seconds",
            "Age of the oldest job waiting in a vendor's queue (0 when empty).",
            labels=["vendor", "queue"],
        )
        for q in snap.queues:
            depth.add_metric([q.vendor, q.name], q.depth)
            age.add_metric([q.vendor, q.name], q.oldest_age_s or 0.0)
        yield depth
        yield age

        for name, doc, value in (
            ("schedule_size", "Jobs waiting in the delayed-retry schedule.", snap.schedule_size),
            (
                "dead_letters",
                "Jobs kept for replay (dead-lettered or in doubt).",
                snap.dead_letters,
            ),
            ("in_doubt", "Jobs that ended in doubt and wait for a person.", snap.in_doubt),
            (
                "quarantined_messages",
                "Messages the workers could not read or run, kept in the quarantine.",
                snap.quarantined,
            ),
            ("results_stream_length", "Entries in the result stream.", snap.stream_length),
        ):
            gauge = GaugeMetricFamily(f"{NAMESPACE}_{name}", doc)
            gauge.add_metric([], value)
            yield gauge

        lag = GaugeMetricFamily(
            f"{NAMESPACE}_results_group_lag",
            "Result events not yet delivered to a consumer group (absent when Redis cannot tell).",
            labels=["group"],
        )
        pending = GaugeMetricFamily(
            f"{NAMESPACE}_results_group_pending",
            "Result events delivered to a consumer group and not yet acknowledged.",
            labels=["group"],
        )
        for g in snap.groups:
            if g.lag is not None:
                lag.add_metric([g.name], g.lag)
            pending.add_metric([g.name], g.pending)
        yield lag
        yield pending

        circuit = GaugeMetricFamily(
            f"{NAMESPACE}_circuit_state",
            "1 for the state a vendor account's circuit breaker is in, 0 for the others.",
            labels=["vendor", "account", "state"],
        )
        for (vendor, account), current in sorted(snap.circuits.items()):
            for state in CircuitState:
                circuit.add_metric([vendor, account, state.value], int(state is current))
        yield circuit


class EventCounters:
    """Counters and the latency histogram, fed with result events."""

    def __init__(self, registry: CollectorRegistry, labels: Labels) -> None:
        self.labels = labels
        self.events = Counter(
            f"{NAMESPACE}_events",
            "Result events by status (accepted, rejected, dead_lettered, in_doubt, "
            "retry_scheduled, deferred).",
            ["vendor", "account", "status"],
            registry=registry,
        )
        self.deferrals = Counter(
            f"{NAMESPACE}_deferrals",
            "Jobs put off without spending an attempt, by reason (rate_limited, circuit_open, "
            "not_before).",
            ["vendor", "account", "reason"],
            registry=registry,
        )
        self.latency = Histogram(
            f"{NAMESPACE}_vendor_latency_seconds",
            "Duration of attempts that called the vendor, as the worker measured them.",
            ["vendor", "account"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        # Every series exists from the start at 0, so alerts on rate() see the first event.
        for vendor in sorted(labels.vendors):
            for account in [*sorted(labels.accounts.get(vendor, ())), OTHER]:
                for status in EventStatus:
                    self.events.labels(vendor, account, status.value)

    def observe(self, event: ResultEvent) -> None:
        """Count ``event``."""
        vendor, account = self.labels.of(event)
        self.events.labels(vendor, account, event.status.value).inc()
        kind = event.error.kind if event.error is not None else None
        if event.status is EventStatus.DEFERRED:
            reason = kind.value if kind is not None else "not_before"
            self.deferrals.labels(vendor, account, reason).inc()
        elif event.duration_ms is not None and kind not in _NO_VENDOR_CALL:
            self.latency.labels(vendor, account).observe(event.duration_ms / 1000)


class StreamFollower:
    """Reads the result stream in consumer group ``group`` (from its end, on first use) and
    feeds :class:`EventCounters`; runs in a daemon thread until :meth:`stop`."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        counters: EventCounters,
        group: str = "metrics",
        *,
        block_ms: int = 1000,
    ) -> None:
        self.client = client
        self.stream = keys.results
        self.counters = counters
        self.group = group
        self.consumer = process_name()
        self.block_ms = block_ms
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="metrics-stream")

    def ensure_group(self) -> None:
        """Create the group at the stream's end unless it exists."""
        try:
            self.client.xgroup_create(self.stream, self.group, id="$", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read_once(self) -> int:
        """Read and count one batch; the number of entries read."""
        try:
            reply: Any = self.client.xreadgroup(
                self.group,
                self.consumer,
                {self.stream: ">"},
                count=500,
                block=self.block_ms,
                noack=True,
            )
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self.ensure_group()
            return 0
        read = 0
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                read += 1
                event = parse_entry(entry_id, fields).event
                if event is not None:
                    self.counters.observe(event)
        return read

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.read_once()
            except redis.RedisError as exc:
                log.warning("metrics could not read the result stream", error=str(exc))
                self._stop.wait(1.0)

    def start(self) -> StreamFollower:
        """Create the group and start following."""
        self.ensure_group()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop following (returns within one block timeout)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.block_ms / 1000 + 5)


def build_registry(
    client: redis.Redis,
    keys: Keys,
    vendors: Sequence[str],
    accounts: Mapping[str, Sequence[str]],
    group: str = "metrics",
    *,
    queues_in_redis: bool = True,
) -> tuple[CollectorRegistry, StreamFollower]:
    """A registry with every series, and the (not yet started) stream follower feeding it.

    ``queues_in_redis`` False (the broker is RabbitMQ): no queue series; the broker has them.
    """
    registry = CollectorRegistry()
    reader = StateReader(client, keys, vendors, accounts, queues_in_redis=queues_in_redis)
    registry.register(RedisCollector(reader))
    counters = EventCounters(registry, Labels(vendors, accounts))
    return registry, StreamFollower(client, keys, counters, group)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr (scrapes every few seconds would drown the real logs)."""


def make_server(
    registry: CollectorRegistry, address: str, port: int, logins: Sequence[str] = ()
) -> WSGIServer:
    """An HTTP server for ``registry`` on ``address:port`` (``/metrics``, and any other path),
    behind basic auth when ``logins`` are given; call ``serve_forever()`` on it."""
    app = make_wsgi_app(registry)
    if logins:
        app = basic_auth(app, list(logins), realm="order-dispatch metrics")
    return wsgiref.simple_server.make_server(
        address, port, app, ThreadingWSGIServer, handler_class=_QuietHandler
    )
