"""The product's state as Redis holds it, read in a few round trips: queues, delayed retries,
dead letters, in-doubt jobs, circuits, the result stream and its consumer groups.

Every read tolerates an absent key (a feature not in use yet reads as zero). Queues are read
for every vendor the product knows, consumed by a worker or not: kombu LPUSHes and BRPOPs, so
a queue's oldest message is at index -1 of its list (one list per priority step).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis

from order_dispatch.keys import CircuitState, Keys
from order_dispatch.store import JobStore
from producers.message import message_job, queue_keys

#: Past this many entries, counting a consumer group's lag by hand (Redis < 7) stops.
LAG_COUNT_CAP = 100_000


@dataclass(frozen=True, slots=True)
class QueueState:
    """One vendor's queue: jobs waiting, and the age of the oldest (None when empty or unknown)."""

    vendor: str
    name: str
    depth: int
    oldest_age_s: float | None


@dataclass(frozen=True, slots=True)
class GroupState:
    """A consumer group of the result stream: entries not yet delivered to it (``lag``; None
    when Redis cannot tell) and delivered but not acknowledged (``pending``)."""

    name: str
    lag: int | None
    pending: int
    consumers: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything :class:`StateReader` reads, at one moment (Redis's clock: ``now``)."""

    now: float
    queues: list[QueueState]
    schedule_size: int
    dead_letters: int
    in_doubt: int
    """Dead letters whose run ended ``in_doubt``, counted by the job store from the same
    entries ``dlq list`` shows (:meth:`~order_dispatch.store.JobStore.dead_letter_counts`)."""
    stream_length: int
    groups: list[GroupState]
    circuits: dict[tuple[str, str], CircuitState] = field(default_factory=dict)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class StateReader:
    """Reads a :class:`Snapshot` for ``vendors`` and their configured ``accounts``."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        vendors: Sequence[str],
        accounts: Mapping[str, Sequence[str]] | None = None,
        *,
        queues_in_redis: bool = True,
    ) -> None:
        self.client = client
        self.keys = keys
        self.vendors = list(vendors)
        self.queues_in_redis = queues_in_redis
        self.accounts = {v: list((accounts or {}).get(v, ())) for v in self.vendors}
        self.store = JobStore(client, keys)

    def snapshot(self) -> Snapshot:
        """Read everything; raises :class:`redis.RedisError` when Redis cannot be reached."""
        # With another broker (RabbitMQ) the queues are not in Redis: that broker reports them.
        lists = {
            vendor: queue_keys(self.keys.queue(vendor))
            for vendor in (self.vendors if self.queues_in_redis else [])
        }
        circuits = [(v, a) for v in self.vendors for a in self.accounts[v]]
        pipe = self.client.pipeline(transaction=False)
        pipe.time()
        for names in lists.values():
            for name in names:
                pipe.llen(name)
                pipe.lindex(name, -1)
        pipe.zcard(self.keys.schedule)
        pipe.hlen(self.keys.dead_letters)
        pipe.xlen(self.keys.results)
        for vendor, account in circuits:
            pipe.hget(self.keys.circuit(vendor, account), "state")
        replies = iter(pipe.execute())

        seconds, micros = next(replies)
        now = seconds + micros / 1e6
        queues = []
        for vendor, names in lists.items():
            depth, oldest = 0, None
            for _name in names:
                length, tail = next(replies), next(replies)
                depth += length
                if tail is not None:
                    age = self._age(tail, now)
                    if age is not None and (oldest is None or age > oldest):
                        oldest = age
            queues.append(QueueState(vendor, self.keys.queue(vendor), depth, oldest))
        schedule_size, dead, stream_length = next(replies), next(replies), next(replies)
        states = {}
        for vendor, account in circuits:
            raw = next(replies)
            try:
                states[vendor, account] = CircuitState(_text(raw)) if raw else CircuitState.CLOSED
            except ValueError:
                states[vendor, account] = CircuitState.CLOSED
        return Snapshot(
            now=now,
            queues=queues,
            schedule_size=schedule_size,
            dead_letters=dead,
            in_doubt=self.store.dead_letter_counts().in_doubt if dead else 0,
            stream_length=stream_length,
            groups=self._groups(),
            circuits=states,
        )

    def _age(self, raw: bytes, now: float) -> float | None:
        """Seconds since the job in message ``raw`` was enqueued, by the Redis clock."""
        job = message_job(raw)
        if job is None:
            return None
        stamp = job.get("enqueued_at")
        if not stamp and job.get("job_id"):
            # A message that carries only the job id: the enqueue receipt has the time.
            stamp = self.store.receipt(str(job["job_id"])).get("enqueued_at")
        try:
            return max(0.0, now - datetime.fromisoformat(str(stamp)).timestamp())
        except ValueError:
            return None

    def _groups(self) -> list[GroupState]:
        try:
            infos = self.client.xinfo_groups(self.keys.results)
        except redis.ResponseError:  # no stream yet
            return []
        groups = []
        for info in infos:
            name = _text(info["name"])
            lag = info.get("lag")
            if "lag" not in info:  # Redis < 7 does not say: count what follows the group
                lag = self._count_after(_text(info["last-delivered-id"]))
            groups.append(
                GroupState(
                    name, None if lag is None else int(lag), info["pending"], info["consumers"]
                )
            )
        return groups

    def _count_after(self, last_id: str) -> int | None:
        count, start = 0, f"({last_id}"
        while count < LAG_COUNT_CAP:
            entries = self.client.xrange(self.keys.results, min=start, count=1000)
            if not entries:
                return count
            count += len(entries)
            start = f"({_text(entries[-1][0])}"
        return None
