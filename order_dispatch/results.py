"""Reading result events: a consumer-group helper that does read / ack / reclaim right.

Every job's events land on one Redis Stream (``<prefix>:results``), one entry per event with the
event JSON in field ``event``. Downstream services read them with :class:`ResultConsumer`:

- the group is created on first use (from the start of the stream, so nothing already written
  is missed) and re-created if Redis lost it (``NOGROUP``);
- after a restart the consumer first re-reads its own pending entries (delivered, never acked);
- entries pending on other consumers for longer than ``min_idle_ms`` (their consumer died) are
  claimed with ``XAUTOCLAIM`` and handled here (looked for before every read, or at most every
  ``claim_every_s`` when a busy consumer would rather not pay that round trip on each batch);
- an entry is acked only after the handler returns, so a crash mid-handling re-delivers it.

Events carry a stable ``event_id``: handlers should treat a repeat of an id as already done.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import redis
from pydantic import ValidationError

from order_dispatch.contract import ResultEvent
from order_dispatch.keys import Keys
from order_dispatch.settings import get_settings


@dataclass(frozen=True, slots=True)
class Delivery:
    """One stream entry handed to a consumer: its id, the event, and the raw fields."""

    entry_id: str
    event: ResultEvent | None
    raw: dict[str, str]


def _decode(fields: dict[Any, Any] | None) -> dict[str, str]:
    if not fields:
        return {}
    return {
        (k.decode() if isinstance(k, bytes) else str(k)): (
            v.decode() if isinstance(v, bytes) else str(v)
        )
        for k, v in fields.items()
    }


def parse_entry(entry_id: Any, fields: dict[Any, Any] | None) -> Delivery:
    """A stream entry as a :class:`Delivery` (``event`` is None when unreadable or trimmed)."""
    raw = _decode(fields)
    eid = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    event: ResultEvent | None = None
    if "event" in raw:
        try:
            event = ResultEvent.model_validate_json(raw["event"])
        except ValidationError:
            event = None
    return Delivery(eid, event, raw)


def process_name() -> str:
    """``host-pid``: unique per process, stable for its life (consumer and worker names)."""
    return f"{socket.gethostname()}-{os.getpid()}"


def _keys(keys: Keys | None) -> Keys:
    """``keys``, else the configured prefix's (``ORDER_DISPATCH_KEY_PREFIX``), as ``Producer``."""
    return keys if keys is not None else Keys(get_settings().key_prefix)


class ResultConsumer:
    """Reads result events in a consumer group; see the module docstring for the guarantees.

    The stream is ``keys.results``; without ``keys``, the one under the configured prefix
    (``ORDER_DISPATCH_KEY_PREFIX``, default ``od``), as ``Producer`` and the workers use.
    """

    def __init__(
        self,
        client: redis.Redis,
        group: str,
        consumer: str | None = None,
        *,
        keys: Keys | None = None,
        min_idle_ms: int = 60_000,
        count: int = 100,
        block_ms: int = 2000,
        claim_every_s: float = 0.0,
    ) -> None:
        self.client = client
        self.group = group
        self.consumer = consumer or process_name()
        self.stream = _keys(keys).results
        self.min_idle_ms = min_idle_ms
        self.count = count
        self.block_ms = block_ms
        self.claim_every_s = claim_every_s
        self._claimed_at = float("-inf")
        self._own_backlog = True
        self._group_ready = False

    def ensure_group(self) -> None:
        """Create the group (from the stream's start) unless it exists."""
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _call(self, fn: Callable[[], Any]) -> Any:
        if not self._group_ready:
            self.ensure_group()
        try:
            return fn()
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # Redis lost the group (restart without persistence): make it again, don't spin.
            self.ensure_group()
            self._own_backlog = True
            return fn()

    def claim_abandoned(self) -> list[Delivery]:
        """Entries idle on other consumers for ``min_idle_ms``, now ours (follows the cursor)."""
        claimed: list[Delivery] = []
        cursor: Any = "0-0"
        while True:

            def autoclaim(start: Any = cursor) -> Any:
                return self.client.xautoclaim(
                    self.stream,
                    self.group,
                    self.consumer,
                    self.min_idle_ms,
                    start,
                    count=self.count,
                )

            reply = self._call(autoclaim)
            cursor, entries = reply[0], reply[1]
            claimed.extend(parse_entry(eid, fields) for eid, fields in entries)
            if cursor in (b"0-0", "0-0") or len(claimed) >= self.count:
                return claimed

    def read(self, *, block: bool = True) -> list[Delivery]:
        """The next batch: own pending entries first, then abandoned ones, then new ones."""
        if self._own_backlog:
            reply = self._call(
                lambda: self.client.xreadgroup(
                    self.group, self.consumer, {self.stream: "0"}, count=self.count
                )
            )
            entries = reply[0][1] if reply else []
            if entries:
                return [parse_entry(eid, fields) for eid, fields in entries]
            self._own_backlog = False
        if time.monotonic() - self._claimed_at >= self.claim_every_s:
            claimed = self.claim_abandoned()
            if claimed:
                return claimed
            self._claimed_at = time.monotonic()
        reply = self._call(
            lambda: self.client.xreadgroup(
                self.group,
                self.consumer,
                {self.stream: ">"},
                count=self.count,
                block=self.block_ms if block else None,
            )
        )
        return [parse_entry(eid, fields) for eid, fields in (reply[0][1] if reply else [])]

    def ack(self, *entry_ids: str) -> int:
        """Acknowledge handled entries."""
        if not entry_ids:
            return 0
        return int(self._call(lambda: self.client.xack(self.stream, self.group, *entry_ids)))

    def run(
        self, handler: Callable[[ResultEvent], None], *, stop: Callable[[], bool] = lambda: False
    ) -> None:
        """Handle events until ``stop()`` is true; ack each one after ``handler`` returns.

        Unreadable entries (trimmed away, or not an event) are acked and skipped. If the handler
        raises, the entry stays pending and comes back on the next start (or to another consumer).
        """
        while not stop():
            for delivery in self.read():
                if delivery.event is not None:
                    handler(delivery.event)
                self.ack(delivery.entry_id)


def tail(
    client: redis.Redis,
    *,
    keys: Keys | None = None,
    from_start: bool = False,
    block_ms: int = 2000,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[Delivery]:
    """Follow the stream without a group (nothing is acked; for people watching); the stream
    is the configured prefix's unless ``keys`` says otherwise."""
    stream = _keys(keys).results
    last = "0-0"
    if not from_start:
        newest = client.xrevrange(stream, count=1)
        if newest:
            last = parse_entry(newest[0][0], None).entry_id
    while not stop():
        reply: Any = client.xread({stream: last}, count=500, block=block_ms)
        for _, entries in reply or []:
            for eid, fields in entries:
                delivery = parse_entry(eid, fields)
                last = delivery.entry_id
                yield delivery


def event_json(event: ResultEvent) -> str:
    """One event as a compact JSON line."""
    return json.dumps(event.model_dump(mode="json"), separators=(",", ":"))
