"""What the jobs are doing, per vendor and account: attempts in flight, retries and deferrals
waiting (from the delivery ledgers), and the last hour's outcomes and rate-limit pauses (from
the result stream).

:mod:`order_dispatch_ops.state` reads the product-wide gauges; this module adds the per-account
breakdown that the operator console's overview shows. Ledgers carry no vendor, so each open
ledger is joined with its job's enqueue receipt (ids only, no order).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis

from order_dispatch.contract import ErrorKind, EventStatus
from order_dispatch.keys import Keys
from order_dispatch.results import parse_entry

#: Ledger states counted (``done`` ledgers are the past).
OPEN_STATES = ("in_flight", "waiting", "deferred")
#: Stream entries read for one window at most; past it the counts say ``capped``.
MAX_ENTRIES = 200_000

VendorAccount = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Activity:
    """Per ``(vendor, account)``: open ledgers by state, events of the window by status, and
    when each account's rate-limit pause ends (epoch seconds; only pauses not over at ``now``)."""

    now: float
    window_s: float
    ledgers: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    events: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    paused_until: dict[VendorAccount, float] = field(default_factory=dict)
    capped: bool = False
    """True when the window held more than :data:`MAX_ENTRIES` events (counts are a floor)."""

    def pairs(self) -> set[VendorAccount]:
        """Every vendor account seen in the ledgers or the window."""
        return {(v, a) for v, a, _ in self.ledgers} | {(v, a) for v, a, _ in self.events}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ids(raw: Any) -> VendorAccount | None:
    try:
        receipt = json.loads(raw) if raw else None
    except ValueError:
        return None
    if not isinstance(receipt, dict) or not receipt.get("vendor"):
        return None
    return str(receipt["vendor"]), str(receipt.get("account") or "default")


class ActivityReader:
    """Reads an :class:`Activity` on one Redis and key prefix."""

    def __init__(self, client: redis.Redis, keys: Keys, *, window_s: float = 3600.0) -> None:
        self.client = client
        self.keys = keys
        self.window_s = window_s

    def read(self) -> Activity:
        """Ledgers and the window's events; raises :class:`redis.RedisError` when Redis cannot
        be reached."""
        seconds, micros = self.client.time()
        now = seconds + micros / 1e6
        ledgers: Counter[tuple[str, str, str]] = Counter()
        self._ledgers(ledgers)
        events: Counter[tuple[str, str, str]] = Counter()
        paused: dict[VendorAccount, float] = {}
        capped = self._events(events, paused, now)
        return Activity(now, self.window_s, ledgers, events, paused, capped)

    def _ledgers(self, into: Counter[tuple[str, str, str]]) -> None:
        prefix = self.keys.ledger("")
        names = list(self.client.scan_iter(match=self.keys.ledger("*"), count=1000))
        for start in range(0, len(names), 500):
            chunk = names[start : start + 500]
            pipe = self.client.pipeline(transaction=False)
            for name in chunk:
                pipe.hget(name, "state")
            states = pipe.execute()
            open_ = [
                (_text(name)[len(prefix) :], _text(state))
                for name, state in zip(chunk, states, strict=True)
                if state is not None and _text(state) in OPEN_STATES
            ]
            if not open_:
                continue
            pipe = self.client.pipeline(transaction=False)
            for job_id, _ in open_:
                pipe.hget(self.keys.job(job_id), "receipt")
            for (_, state), raw in zip(open_, pipe.execute(), strict=True):
                ids = _ids(raw)
                if ids is not None:
                    into[(*ids, state)] += 1

    def _events(
        self,
        events: Counter[tuple[str, str, str]],
        paused: dict[VendorAccount, float],
        now: float,
    ) -> bool:
        start = str(int((now - self.window_s) * 1000))
        read = 0
        while read < MAX_ENTRIES:
            batch = self.client.xrange(self.keys.results, start, "+", count=1000) or []
            for entry_id, fields in batch:
                event = parse_entry(entry_id, fields).event
                if event is None:
                    continue
                pair = (event.vendor, event.account)
                events[(*pair, event.status.value)] += 1
                if (
                    event.status is EventStatus.DEFERRED
                    and event.error is not None
                    and event.error.kind is ErrorKind.RATE_LIMITED
                    and event.retry_in_s is not None
                ):
                    until = event.occurred_at.timestamp() + event.retry_in_s
                    if until > max(now, paused.get(pair, 0.0)):
                        paused[pair] = until
            read += len(batch)
            if len(batch) < 1000:
                return False
            start = "(" + parse_entry(batch[-1][0], None).entry_id
        return True
