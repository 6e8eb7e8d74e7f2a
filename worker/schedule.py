"""The durable retry schedule: long waits sit in Redis, not in a worker's memory.

kombu's Redis transport redelivers any message unacked for longer than the visibility timeout,
so a countdown longer than that runs twice (celery issues 2599, 4400, 5935). The product's
reliable fetch (:mod:`worker.fetch`) has no visibility timeout, but a countdown still lives in
one worker's memory and held list until due, and comes back only once that worker is seen dead;
a long wait belongs in Redis. Waits longer than
``schedule_threshold_s`` are therefore written to a sorted set (score: when due) as ready-made
task messages. Every worker process runs a :class:`Scheduler` thread that moves due messages to
their queue; the move is one Lua script (``ZREM`` then ``LPUSH`` only if this caller removed
it), so any number of schedulers never enqueue a message twice.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

import redis

from order_dispatch.broker import dispatch_kwargs, queue_key, task_message
from order_dispatch.keys import Keys
from order_dispatch.logs import get_logger

log = get_logger("worker.schedule")

# KEYS: schedule, unreadable entries. ARGV: now (epoch seconds), batch size. Moves due messages
# (an entry that is not ours is set aside, never dropped); returns how many it took.
_MOVE_DUE_LUA = """
local now = ARGV[1]
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local moved = 0
for _, member in ipairs(due) do
  if redis.call('ZREM', KEYS[1], member) == 1 then
    local ok, entry = pcall(cjson.decode, member)
    if ok and type(entry) == 'table' and type(entry['list']) == 'string'
        and type(entry['message']) == 'string' then
      redis.call('LPUSH', entry['list'], entry['message'])
    else
      redis.call('HSET', KEYS[2], member, now)
    end
    moved = moved + 1
  end
end
return moved
"""


class DurableSchedule:
    """Task messages waiting in Redis for their time."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._move_due = client.register_script(_MOVE_DUE_LUA)

    def add(
        self,
        *,
        job_id: str,
        run: int,
        attempt: int,
        deferred: bool,
        queue: str,
        priority: int,
        due: float,
        display: Mapping[str, Any] | None = None,
        task_id: str | None = None,
    ) -> None:
        """Schedule attempt ``attempt`` of ``job_id`` on ``queue`` at epoch time ``due``
        (``display``: the ids Flower shows for it; ``task_id``: the task it goes on, as a Celery
        retry keeps its task's id, else a new one)."""
        kwargs = dispatch_kwargs(job_id, run=run, attempt=attempt)
        if deferred:
            kwargs["deferred"] = True
        message = task_message(
            task_id or str(uuid.uuid4()), kwargs, queue=queue, priority=priority, display=display
        )
        member = json.dumps({"list": queue_key(queue, priority), "message": message})
        self.client.zadd(self.keys.schedule, {member: due})

    def move_due(self, now: float | None = None, batch: int = 500) -> int:
        """Move the messages due by ``now`` (default: this host's clock) to their queues."""
        when = time.time() if now is None else now
        keys = [self.keys.schedule, self.keys.schedule_unreadable]
        return int(self._move_due(keys=keys, args=[repr(when), batch]))

    def size(self) -> int:
        """How many messages wait."""
        return int(self.client.zcard(self.keys.schedule))


class Scheduler:
    """A daemon thread that moves due messages every ``interval_s`` (one per worker process)."""

    def __init__(self, schedule: DurableSchedule, interval_s: float = 0.25) -> None:
        self.schedule = schedule
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="od-scheduler", daemon=True)

    def start(self) -> Scheduler:
        """Start the thread."""
        self._thread.start()
        return self

    def _loop(self) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                moved = self.schedule.move_due()
                while moved >= 500 and not self._stop.is_set():
                    moved = self.schedule.move_due()
                if failing:
                    log.info("schedule reachable again")
                failing = False
            except redis.RedisError as exc:
                # Redis away: the messages stay in the sorted set; try again next tick.
                if not failing:
                    log.warning("cannot move due messages", error=str(exc))
                failing = True
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        """Stop the thread (waits for the current tick)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
