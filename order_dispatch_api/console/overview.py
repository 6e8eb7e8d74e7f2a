"""The overview's figures per vendor and account, from what ``order_dispatch_ops`` reads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis

from order_dispatch.keys import Keys
from order_dispatch_api.console.store import DeadLetter
from order_dispatch_ops.activity import ActivityReader
from order_dispatch_ops.state import StateReader


@dataclass(frozen=True, slots=True)
class AccountRow:
    """One vendor account's line."""

    account: str
    in_flight: int
    retrying: int
    deferred: int
    dead_lettered: int
    in_doubt: int
    circuit: str
    paused_s: float | None
    """Seconds the account's rate-limit pause still runs, None when not paused."""
    accepted: int
    rejected: int


@dataclass(frozen=True, slots=True)
class VendorBlock:
    """One vendor: its queue, then its accounts."""

    vendor: str
    depth: int | None
    """None when the queues are not in Redis (another broker)."""
    oldest_age_s: float | None
    accounts: list[AccountRow]


@dataclass(frozen=True, slots=True)
class Overview:
    """The whole page."""

    vendors: list[VendorBlock]
    dead_letters: int
    in_doubt: int
    schedule_size: int
    window_s: float
    capped: bool


def read_overview(
    client: redis.Redis,
    prefix: str,
    vendors: Sequence[str],
    accounts: Mapping[str, Sequence[str]],
    dead: Sequence[DeadLetter],
    *,
    queues_in_redis: bool = True,
) -> Overview:
    """Every figure of the overview (dead letters as the store listed them)."""
    keys = Keys(prefix)
    snap = StateReader(client, keys, vendors, accounts, queues_in_redis=queues_in_redis).snapshot()
    activity = ActivityReader(client, keys).read()
    dead_count = Counter((d.vendor, d.account, d.status) for d in dead)
    queues = {q.vendor: q for q in snap.queues}
    blocks = []
    for vendor in sorted({*vendors, *(v for v, _ in activity.pairs())}):
        names = {
            *accounts.get(vendor, ()),
            *(a for v, a in snap.circuits if v == vendor),
            *(a for v, a in activity.pairs() if v == vendor),
            *(d.account for d in dead if d.vendor == vendor),
        } or {"default"}
        rows = []
        for account in sorted(names):
            paused = activity.paused_until.get((vendor, account))
            ledgers, events = activity.ledgers, activity.events
            rows.append(
                AccountRow(
                    account=account,
                    in_flight=ledgers[(vendor, account, "in_flight")],
                    retrying=ledgers[(vendor, account, "waiting")],
                    deferred=ledgers[(vendor, account, "deferred")],
                    dead_lettered=dead_count[(vendor, account, "dead_lettered")],
                    in_doubt=dead_count[(vendor, account, "in_doubt")],
                    circuit=snap.circuits.get((vendor, account), "closed"),
                    paused_s=None if paused is None else paused - activity.now,
                    accepted=events[(vendor, account, "accepted")],
                    rejected=events[(vendor, account, "rejected")],
                )
            )
        queue = queues.get(vendor)
        blocks.append(
            VendorBlock(
                vendor,
                queue.depth if queue else None,
                queue.oldest_age_s if queue else None,
                rows,
            )
        )
    return Overview(
        blocks,
        snap.dead_letters,
        snap.in_doubt,
        snap.schedule_size,
        activity.window_s,
        activity.capped,
    )
