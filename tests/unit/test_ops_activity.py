"""The overview's per-account activity, read from ledgers, receipts and the result stream of a
real Redis (written here the way the worker and the producer write them)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from order_dispatch.keys import Keys
from order_dispatch_ops.activity import ActivityReader


def event(job_id: str, vendor: str, account: str, status: str, at: datetime, **more: Any) -> str:
    return json.dumps(
        {
            "event_id": f"{job_id}:{status}:{at.timestamp()}",
            "job_id": job_id,
            "order_id": f"o-{job_id}",
            "vendor": vendor,
            "account": account,
            "operation": "create",
            "status": status,
            "terminal": status in ("accepted", "rejected", "dead_lettered", "in_doubt"),
            "attempt": 1,
            "occurred_at": at.isoformat(),
            **more,
        }
    )


def test_ledgers_and_the_last_hour_s_events_are_counted_per_vendor_account(
    redis_client: redis.Redis,
) -> None:
    keys = Keys(f"oda-{uuid.uuid4().hex[:6]}")
    open_jobs = {
        "j1": ("sophio", "east", "in_flight"),
        "j2": ("sophio", "east", "in_flight"),
        "j3": ("sophio", "west", "waiting"),
        "j4": ("sellercloud", "default", "deferred"),
        "j5": ("sellercloud", "default", "done"),
    }
    for job_id, (vendor, account, state) in open_jobs.items():
        redis_client.hset(keys.ledger(job_id), "state", state)
        receipt = {"job_id": job_id, "vendor": vendor, "account": account}
        redis_client.hset(keys.job(job_id), "receipt", json.dumps(receipt))
    redis_client.hset(keys.ledger("orphan"), "state", "in_flight")  # no receipt: not counted

    now = datetime.fromtimestamp(float(redis_client.time()[0]), UTC)
    old = now - timedelta(hours=2)
    pause = {"kind": "rate_limited", "message": "slow down"}
    entries = [
        event("a0", "sophio", "east", "accepted", old),  # before the window
        event("a1", "sophio", "east", "accepted", now),
        event("a2", "sophio", "east", "accepted", now),
        event("r1", "sophio", "west", "rejected", now),
        event("d1", "sellercloud", "default", "deferred", now, error=pause, retry_in_s=120),
    ]
    for seq, raw in enumerate(entries):
        at = datetime.fromisoformat(json.loads(raw)["occurred_at"])
        redis_client.xadd(keys.results, {"event": raw}, id=f"{int(at.timestamp() * 1000)}-{seq}")

    activity = ActivityReader(redis_client, keys).read()

    assert dict(activity.ledgers) == {
        ("sophio", "east", "in_flight"): 2,
        ("sophio", "west", "waiting"): 1,
        ("sellercloud", "default", "deferred"): 1,
    }
    assert dict(activity.events) == {
        ("sophio", "east", "accepted"): 2,
        ("sophio", "west", "rejected"): 1,
        ("sellercloud", "default", "deferred"): 1,
    }
    (until,) = activity.paused_until.values()
    assert list(activity.paused_until) == [("sellercloud", "default")]
    assert 100 < until - activity.now <= 121
    assert not activity.capped
