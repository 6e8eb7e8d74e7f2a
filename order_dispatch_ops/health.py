"""``order-dispatch health``: one verdict on the whole deployment, for people and probes.

Unhealthy when the broker or Redis cannot be reached, no worker answers a ping, a queue's
oldest job is older than a threshold, dead letters or in-doubt jobs number more than a
threshold, or a vendor account's circuit is open. The verdict is one line (or JSON) and the
exit status (0 healthy, 1 not).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import redis

from order_dispatch.keys import CircuitState
from order_dispatch_ops.state import Snapshot, StateReader


class BrokerUnreachable(RuntimeError):
    """The Celery broker did not answer (raised by the worker-ping callable)."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Limits past which the deployment is unhealthy."""

    max_age_s: float = 600.0
    """Oldest job waiting in any vendor queue, in seconds."""
    max_dead: int = 100
    """Jobs kept in the dead-letter hash (dead-lettered and in doubt)."""
    max_in_doubt: int = 10
    """Jobs that ended in doubt and wait for a person."""
    max_quarantined: int = 10
    """Messages in the quarantine (each one waits for a person)."""


@dataclass(frozen=True, slots=True)
class Check:
    """One finding: what was checked, whether it passed, and what was seen."""

    name: str
    ok: bool
    detail: str


@dataclass(slots=True)
class Report:
    """All checks, and the workers that answered."""

    checks: list[Check] = field(default_factory=list)
    workers: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(c.ok for c in self.checks)

    def line(self) -> str:
        """The verdict in one line: ``ok: ...`` or ``unhealthy: <every failed check>``."""
        if self.ok:
            return "ok: " + "; ".join(c.detail for c in self.checks)
        return "unhealthy: " + "; ".join(c.detail for c in self.checks if not c.ok)

    def to_json(self) -> str:
        """The verdict, the line and every check, as one JSON object."""
        return json.dumps(
            {
                "ok": self.ok,
                "summary": self.line(),
                "workers": self.workers,
                "checks": [asdict(c) for c in self.checks],
            }
        )


def _queue_checks(snap: Snapshot, limits: Thresholds) -> list[Check]:
    old = [
        q for q in snap.queues if q.oldest_age_s is not None and q.oldest_age_s > limits.max_age_s
    ]
    if old:
        return [
            Check(
                "queue_age",
                False,
                f"queue {q.name}: oldest job {q.oldest_age_s:.0f} s old "
                f"(limit {limits.max_age_s:.0f} s, {q.depth} waiting)",
            )
            for q in old
        ]
    oldest = max((q.oldest_age_s or 0.0 for q in snap.queues), default=0.0)
    waiting = sum(q.depth for q in snap.queues)
    return [Check("queue_age", True, f"{waiting} jobs queued, oldest {oldest:.0f} s")]


def _count_check(name: str, what: str, count: int, limit: int) -> Check:
    if count > limit:
        return Check(name, False, f"{count} {what} (limit {limit})")
    return Check(name, True, f"{count} {what}")


def _circuit_checks(snap: Snapshot) -> list[Check]:
    open_ = sorted(k for k, state in snap.circuits.items() if state is CircuitState.OPEN)
    if open_:
        return [Check("circuit", False, f"circuit {v}/{a} open") for v, a in open_]
    return [Check("circuit", True, f"{len(snap.circuits)} circuits not open")]


def api_check(url: str, timeout: float) -> Check:
    """The HTTP API at ``url`` answers its readiness probe (``/readyz``) with 200."""
    import urllib.error
    import urllib.request

    probe = url.rstrip("/") + "/readyz"
    try:
        with urllib.request.urlopen(probe, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        return Check("api", False, f"API at {url} unreachable: {exc}")
    if status != 200:
        return Check("api", False, f"API at {url} not ready ({status} from /readyz)")
    return Check("api", True, f"API at {url} ready")


def evaluate(
    reader: StateReader,
    ping_workers: Callable[[], list[str]],
    limits: Thresholds,
    api: Callable[[], Check] | None = None,
) -> Report:
    """Run every check. ``ping_workers`` returns the names of the workers that answered, or
    raises :class:`BrokerUnreachable`; ``api`` checks the HTTP API when one is deployed."""
    report = Report()
    if api is not None:
        report.checks.append(api())
    try:
        report.workers = sorted(ping_workers())
    except BrokerUnreachable as exc:
        report.checks.append(Check("broker", False, f"broker unreachable: {exc}"))
    else:
        report.checks.append(Check("broker", True, "broker reachable"))
        if report.workers:
            count = len(report.workers)
            answered = f"{count} worker{'' if count == 1 else 's'} answered"
            report.checks.append(Check("workers", True, answered))
        else:
            report.checks.append(
                Check("workers", False, "no worker consuming the dispatch queues answered")
            )
    try:
        snap = reader.snapshot()
    except redis.RedisError as exc:
        report.checks.append(Check("redis", False, f"Redis unreachable: {exc}"))
        return report
    report.checks.extend(_queue_checks(snap, limits))
    report.checks.append(
        _count_check("dead_letters", "dead letters", snap.dead_letters, limits.max_dead)
    )
    report.checks.append(
        _count_check("in_doubt", "jobs in doubt", snap.in_doubt, limits.max_in_doubt)
    )
    report.checks.append(
        _count_check(
            "quarantine", "messages quarantined", snap.quarantined, limits.max_quarantined
        )
    )
    report.checks.extend(_circuit_checks(snap))
    return report
